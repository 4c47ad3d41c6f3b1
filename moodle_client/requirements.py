"""What arche-predict needs from a Moodle site: functions in the external service, capabilities.

One table, used by the error mapping (to tell an admin which capability a ``nopermissions``
error stands for) and by ``check`` (to list what is missing before the first sync fails).
Capability *names* are the English strings Moodle puts in ``nopermissions`` messages
("... permissions to do that (View participants)."): Moodle never sends the capability id.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "CAPABILITY_BY_NAME",
    "GRADING_FUNCTION",
    "LOG_FUNCTION",
    "OPTIONAL_FEATURES",
    "REQUIRED_FUNCTIONS",
    "USERS_COURSES_FUNCTION",
    "FunctionRequirement",
    "OptionalFeature",
    "capability_from_message",
    "normalise_label",
]

LOG_FUNCTION = "local_archepredict_get_course_logs"
#: The courses a user is enrolled in (issue #17): the candidate past offerings of a teacher.
USERS_COURSES_FUNCTION = "core_enrol_get_users_courses"
#: The course total's pass mark (companion plugin 0.2.0): optional, the tool falls back to a
#: teacher's setting or its default without it.
GRADING_FUNCTION = "local_archepredict_get_course_grading"


@dataclass(frozen=True)
class FunctionRequirement:
    """A web-service function the tool calls, why, and the capabilities its token user needs
    (in the course context unless said otherwise)."""

    name: str
    purpose: str
    capabilities: tuple[str, ...]
    #: Needed only when the log source is ``ws`` (the companion plugin).
    log_source_ws_only: bool = False


REQUIRED_FUNCTIONS: tuple[FunctionRequirement, ...] = (
    FunctionRequirement(
        "core_webservice_get_site_info",
        "identify the site and list the functions the token may call",
        (),
    ),
    FunctionRequirement(
        "core_course_get_courses_by_field",
        "find the course by id or short name",
        ("moodle/course:view", "moodle/course:viewhiddencourses"),
    ),
    FunctionRequirement(
        "core_enrol_get_enrolled_users",
        "read the roster and each participant's roles",
        (
            "moodle/course:viewparticipants",
            "moodle/user:viewdetails",
            "moodle/site:accessallgroups",
        ),
    ),
    FunctionRequirement(
        "gradereport_user_get_grade_items",
        "read every participant's grades and the course total",
        (
            "gradereport/user:view",
            "moodle/grade:viewall",
            # Without these Moodle silently drops the activities' grade items (no error).
            "mod/assign:view",
            "mod/quiz:view",
        ),
    ),
    FunctionRequirement(
        "core_course_get_contents",
        "read the course structure (sections and activities)",
        ("moodle/course:viewhiddenactivities", "moodle/course:viewhiddensections"),
    ),
    FunctionRequirement(
        LOG_FUNCTION,
        "read the course's standard log (companion plugin local_archepredict; its 0.4.0 checks "
        "its own capability, earlier versions report/log:view)",
        ("local/archepredict:viewlogs",),
        log_source_ws_only=True,
    ),
)


@dataclass(frozen=True)
class OptionalFeature:
    """A feature the tool does without when the site does not allow it: a missing function or
    capability switches it off, with an explanation where it would be shown, never an error
    (issue #16, item 8). `key` is the one `moodle_site.unavailable_features` uses."""

    key: str
    purpose: str
    functions: tuple[str, ...]
    capabilities: tuple[str, ...]
    #: What the teacher loses while the feature is off (one sentence, for `moodle check`).
    without: str = ""


OPTIONAL_FEATURES: tuple[OptionalFeature, ...] = (
    OptionalFeature(
        "assignments",
        "assignments with their due dates, and who submitted, late or not (student page)",
        ("mod_assign_get_assignments", "mod_assign_get_submissions"),
        # Without viewgrades Moodle answers no submission and a warning, not an error.
        ("mod/assign:view", "mod/assign:viewgrades"),
        "the student page shows no assignment due dates and no submitted, late or missing work",
    ),
    OptionalFeature(
        "quizzes",
        "quizzes with their closing dates; attempts are read from the log and the gradebook",
        ("mod_quiz_get_quizzes_by_courses",),
        ("mod/quiz:view",),
        "the student page shows no quiz closing dates",
    ),
    # Coursework is its only use: a sync without it stores no completion and says why, so it
    # is optional (it used to be listed among the required functions).
    OptionalFeature(
        "completion",
        "each student's activity completion (student page; one call per student)",
        ("core_completion_get_activities_completion_status",),
        ("report/progress:view",),
        "the student page shows no activity completion",
    ),
    # Teacher actions (issue #16, items 1 to 5), recorded on Moodle 5.1 ("Round 2", 3 to 5).
    OptionalFeature(
        "messaging",
        "message the flagged students through Moodle, and the weekly digest to teachers",
        ("core_message_send_instant_messages",),
        # messageanyuser: without it Moodle refuses each recipient the token user shares no
        # course with (msgid -1), and it lets the message past a student's block.
        ("moodle/site:sendmessage", "moodle/site:messageanyuser"),
        "teachers cannot message students from the tool (they get the addresses to copy "
        "instead) and receive no weekly digest",
    ),
    OptionalFeature(
        "notes",
        "a follow-up mirrored as a Moodle course note, when the teacher asks",
        ("core_notes_create_notes",),
        ("moodle/notes:manage",),
        "follow-ups stay in the tool only and cannot be copied to Moodle's course notes",
    ),
    OptionalFeature(
        "groups",
        "the dashboard's filter by Moodle group, and the Moodle group of the flagged students",
        (
            "core_group_get_course_groups",
            "core_group_get_group_members",
            "core_group_create_groups",
            "core_group_add_group_members",
            "core_group_delete_group_members",
        ),
        # managegroups for reading and changing; accessallgroups (already needed for the
        # roster) for members of groups the token user is not in.
        ("moodle/course:managegroups", "moodle/site:accessallgroups"),
        "teachers cannot filter the dashboard by group nor make a Moodle group of the flagged "
        "students",
    ),
    # Teachers link past offerings (issue #17, item 1), recorded on Moodle 5.1 ("Round 2",
    # section 11). Moodle answers no error for a course the token user may not see: it leaves
    # the course out of the list (`moodle_client.offerings`), so these capabilities are what
    # keeps the list whole. The category's courses come from core_course_get_courses_by_field,
    # already required.
    OptionalFeature(
        "past_offerings",
        "propose the Moodle courses a teacher taught as the course's past offerings",
        (USERS_COURSES_FUNCTION,),
        (
            "moodle/course:view",
            "moodle/course:viewhiddencourses",
            "moodle/course:viewparticipants",
            "moodle/user:viewdetails",
        ),
        "teachers cannot pick the course's past offerings in the tool: an administrator links "
        "them with `arche-predict course update --past`",
    ),
)

#: Human capability names (English, as Moodle writes them in error messages) -> capability id.
#: The first two were recorded on Moodle 5.1 (tests/fixtures/moodle-5.1/error_missing_*.json).
CAPABILITY_BY_NAME: dict[str, str] = {
    "view user report": "gradereport/user:view",
    "view participants": "moodle/course:viewparticipants",
    "view grades of other users": "moodle/grade:viewall",
    "view user profiles": "moodle/user:viewdetails",
    "access all groups": "moodle/site:accessallgroups",
    "view course logs": "report/log:view",
    # The companion plugin's own capability (0.4.0), as its English string names it.
    "read a course's standard log for arche-predict": "local/archepredict:viewlogs",
    "view activity completion reports": "report/progress:view",
    "view hidden activities": "moodle/course:viewhiddenactivities",
    "view hidden sections": "moodle/course:viewhiddensections",
    "view hidden courses": "moodle/course:viewhiddencourses",
    "view courses without participation": "moodle/course:view",
    "use rest protocol": "webservice/rest:use",
    "view assignment": "mod/assign:view",
    "view quiz information": "mod/quiz:view",
    # Recorded on Moodle 5.1 for the teacher actions (issue #16).
    "manage groups": "moodle/course:managegroups",
    "send messages to any user": "moodle/site:sendmessage",
    "manage notes": "moodle/notes:manage",
    "view notes": "moodle/notes:view",
    # Coursework beside the risk (issue #16, item 6), recorded on Moodle 5.1.
    "view quiz reports": "mod/quiz:viewreports",
}


@lru_cache(maxsize=4096)
def normalise_label(text: str) -> str:
    """Case-fold, strip accents and apostrophes, collapse spaces: labels that differ only by
    typography ("l\u2019utilisateur", "L'UTILISATEUR", "lutilisateur") compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    for quote in ("'", "\u2019", "\u2018", "`", "\u00b4", '"'):
        stripped = stripped.replace(quote, "")
    return " ".join(stripped.casefold().split())


def capability_from_message(message: str) -> tuple[str | None, tuple[str, ...]]:
    """Extract the capability name from a ``nopermissions`` message and map it to an id.

    Moodle's message ends with ``(<capability name>).``; returns ``(name, (id,))``, or
    ``(name, ())`` when the name is not one we know, or ``(None, ())`` without parentheses.
    """
    start = message.rfind("(")
    end = message.rfind(")")
    if start < 0 or end <= start:
        return None, ()
    name = message[start + 1 : end].strip()
    capability = CAPABILITY_BY_NAME.get(normalise_label(name))
    return name, ((capability,) if capability else ())


def requirement_for(wsfunction: str | None) -> FunctionRequirement | None:
    """The requirement entry of a function (an optional feature's function too: its
    capabilities explain a refusal), or None for a function the tool does not call."""
    for requirement in REQUIRED_FUNCTIONS:
        if requirement.name == wsfunction:
            return requirement
    for feature in OPTIONAL_FEATURES:
        if wsfunction in feature.functions:
            return FunctionRequirement(wsfunction, feature.purpose, feature.capabilities)
    return None

"""Coursework beside the risk (issue #16, item 6): a course's assignments and their
submissions, its quizzes and one student's quiz attempts, each student's activity completion.

Recorded on Moodle 5.1 (tests/fixtures/moodle-5.1/README.md, "Round 2", section 6) and
followed here:

- **Empty is not always nothing.** Without the access it needs, Moodle answers some of these
  calls with an *empty list and a warning* rather than an error: `mod_assign_get_assignments`
  for a course the token user is not enrolled in (`courses: []`, warning "2"), and
  `mod_assign_get_submissions` without `mod/assign:viewgrades` (`assignments: []`, warning "1",
  "No access rights in module context"). Those warnings raise `MissingCapabilityError` here,
  naming the capability, so a caller never mistakes them for "no assignment" or "no
  submission"; an empty answer without a warning is really empty.
- **Ask for few calls.** The submissions of every assignment of a course come in one call, and
  the assignments and quizzes in one call each. Moodle has no bulk call for quiz attempts
  (`mod_quiz_get_user_attempts` is one student and one quiz per call) nor for activity
  completion (`core_completion_get_activities_completion_status` is one student per call):
  the docstrings say what each costs, and the tool reads quiz attempts from what it already
  has (the course log's "attempt submitted" events and the gradebook) instead.
- `sumgrades` of a quiz attempt is in raw marks (3 out of the quiz's `sumgrades` 4), not out of
  the quiz's `grade` (20).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from moodle_client.client import MoodleClient
from moodle_client.errors import MissingCapabilityError
from moodle_client.types import ActivityCompletion, _Reader

__all__ = [
    "ASSIGNMENTS_FUNCTION",
    "ATTEMPTS_FUNCTION",
    "COMPLETION_FUNCTION",
    "NO_ACCESS_WARNING",
    "QUIZZES_FUNCTION",
    "SUBMISSIONS_FUNCTION",
    "Assignment",
    "Quiz",
    "QuizAttempt",
    "Submission",
    "activity_completion",
    "assignment_submissions",
    "course_assignments",
    "course_quizzes",
    "quiz_user_attempts",
]

ASSIGNMENTS_FUNCTION = "mod_assign_get_assignments"
SUBMISSIONS_FUNCTION = "mod_assign_get_submissions"
QUIZZES_FUNCTION = "mod_quiz_get_quizzes_by_courses"
ATTEMPTS_FUNCTION = "mod_quiz_get_user_attempts"
COMPLETION_FUNCTION = "core_completion_get_activities_completion_status"

#: Our errorcode for an empty answer whose warning says access was refused (Moodle sent no
#: errorcode: the answer was a success with a warning).
NO_ACCESS_WARNING = "noaccesswarning"


def _epoch(value: int | None) -> int | None:
    """Moodle writes "no date" as 0."""
    return value if value else None


def _warnings(data: _Reader) -> list[_Reader]:
    return [_Reader(w, "warning") for w in data.get_list("warnings", required=False)]


def _refused(
    wsfunction: str, warning: _Reader, capabilities: tuple[str, ...], explanation: str
) -> MissingCapabilityError:
    message = warning.get_str("message", "")
    code = warning.get_str("warningcode", "")
    return MissingCapabilityError(
        f"Moodle answered nothing, with the warning '{message}' (warning {code})",
        errorcode=NO_ACCESS_WARNING,
        explanation=explanation,
        wsfunction=wsfunction,
        capabilities=capabilities,
    )


# --------------------------------------------------------------------------- assignments


@dataclass(frozen=True)
class Assignment:
    """An assignment of the course. Dates are epoch seconds, None where Moodle has none (0).
    `nosubmissions`: Moodle collects nothing (work handed in outside Moodle, marked only)."""

    id: int
    cmid: int
    courseid: int
    name: str
    duedate: int | None
    cutoffdate: int | None
    allowsubmissionsfromdate: int | None
    nosubmissions: bool
    teamsubmission: bool


def course_assignments(client: MoodleClient, courseid: int) -> list[Assignment]:
    """The course's assignments (`mod_assign_get_assignments`, one call for the course).

    `includenotenrolledcourses=1` is always sent: the web-service user is rarely enrolled in
    the course, and without it Moodle answers `courses: []` with warning "2". Should that warning
    still come (no access to the course), it raises `MissingCapabilityError`."""
    data = _Reader(
        client.call(
            ASSIGNMENTS_FUNCTION, {"courseids": [courseid], "includenotenrolledcourses": 1}
        ),
        ASSIGNMENTS_FUNCTION,
    )
    courses = [_Reader(c, "assignment course") for c in data.get_list("courses")]
    mine = [c for c in courses if c.get_int("id") == courseid]
    if not mine:
        for warning in _warnings(data):
            if warning.opt_int("itemid") in (None, courseid):
                raise _refused(
                    ASSIGNMENTS_FUNCTION,
                    warning,
                    ("moodle/course:view", "mod/assign:view"),
                    "The web-service user can see no assignment of the course: it is not "
                    "enrolled there and lacks 'moodle/course:view' (or 'mod/assign:view'). "
                    "Allow them for its role in Site administration > Users > Permissions > "
                    "Define roles.",
                )
        return []
    out = []
    for a in (_Reader(x, "assignment") for x in mine[0].get_list("assignments")):
        out.append(
            Assignment(
                id=a.get_int("id"),
                cmid=a.get_int("cmid"),
                courseid=a.opt_int("course") or courseid,
                name=a.get_str("name", ""),
                duedate=_epoch(a.opt_int("duedate")),
                cutoffdate=_epoch(a.opt_int("cutoffdate")),
                allowsubmissionsfromdate=_epoch(a.opt_int("allowsubmissionsfromdate")),
                nosubmissions=a.get_bool("nosubmissions"),
                teamsubmission=a.get_bool("teamsubmission"),
            )
        )
    return out


@dataclass(frozen=True)
class Submission:
    """A student's latest submission to an assignment: `status` is Moodle's (`new`: nothing
    submitted, though a row exists, e.g. when the teacher graded without a submission;
    `draft`; `submitted`; `reopened`). `timemodified` is when it was last changed, what Moodle
    compares with the due date to say "submitted late". `userid` is 0 for a group's
    submission (team assignments), whose `groupid` is then set."""

    assignmentid: int
    userid: int
    groupid: int
    status: str
    attemptnumber: int
    timecreated: int | None
    timemodified: int | None
    gradingstatus: str


def assignment_submissions(
    client: MoodleClient, assignmentids: Sequence[int]
) -> dict[int, list[Submission]]:
    """Every student's latest submission to each assignment (`mod_assign_get_submissions`, one
    call for all the assignments): {assignment id: submissions, one per user}. A student without
    any submission row is simply absent; an assignment without submissions maps to [].

    Without `mod/assign:viewgrades` Moodle answers `assignments: []` with warning "1" ("No
    access rights in module context"): that raises `MissingCapabilityError`, never reads as
    "no submission"."""
    ids = list(dict.fromkeys(assignmentids))
    if not ids:
        return {}
    data = _Reader(client.call(SUBMISSIONS_FUNCTION, {"assignmentids": ids}), SUBMISSIONS_FUNCTION)
    for warning in _warnings(data):
        if warning.get_str("item", "") == "assignment" and warning.opt_int("itemid") in ids:
            raise _refused(
                SUBMISSIONS_FUNCTION,
                warning,
                ("mod/assign:viewgrades",),
                "Moodle hides the assignments' submissions from the web-service user: allow "
                "'mod/assign:viewgrades' (View all grades) for its role in Site administration "
                "> Users > Permissions > Define roles.",
            )
    out: dict[int, list[Submission]] = {i: [] for i in ids}
    for entry in (_Reader(x, "assignment submissions") for x in data.get_list("assignments")):
        assignmentid = entry.get_int("assignmentid")
        latest: dict[tuple[int, int], Submission] = {}
        for s in (_Reader(x, "submission") for x in entry.get_list("submissions")):
            submission = Submission(
                assignmentid=assignmentid,
                userid=s.opt_int("userid") or 0,
                groupid=s.opt_int("groupid") or 0,
                status=s.get_str("status", ""),
                attemptnumber=s.opt_int("attemptnumber") or 0,
                timecreated=_epoch(s.opt_int("timecreated")),
                timemodified=_epoch(s.opt_int("timemodified")),
                gradingstatus=s.get_str("gradingstatus", ""),
            )
            key = (submission.userid, submission.groupid)
            kept = latest.get(key)
            if kept is None or submission.attemptnumber >= kept.attemptnumber:
                latest[key] = submission
        out[assignmentid] = sorted(latest.values(), key=lambda s: (s.userid, s.groupid))
    return out


# --------------------------------------------------------------------------- quizzes


@dataclass(frozen=True)
class Quiz:
    """A quiz of the course: `timeopen`/`timeclose` in epoch seconds (None: no date), `grade`
    the quiz's maximum in the gradebook, `sumgrades` its raw marks."""

    id: int
    cmid: int
    courseid: int
    name: str
    timeopen: int | None
    timeclose: int | None
    grade: float | None
    sumgrades: float | None
    attempts: int


def course_quizzes(client: MoodleClient, courseid: int) -> list[Quiz]:
    """The course's quizzes (`mod_quiz_get_quizzes_by_courses`, one call for the course). A
    warning about the course itself (no access to it) raises `MissingCapabilityError`."""
    data = _Reader(client.call(QUIZZES_FUNCTION, {"courseids": [courseid]}), QUIZZES_FUNCTION)
    quizzes = [_Reader(q, "quiz") for q in data.get_list("quizzes")]
    if not quizzes:
        for warning in _warnings(data):
            if warning.get_str("item", "") == "course" and warning.opt_int("itemid") == courseid:
                raise _refused(
                    QUIZZES_FUNCTION,
                    warning,
                    ("moodle/course:view", "mod/quiz:view"),
                    "The web-service user can see no quiz of the course: allow "
                    "'moodle/course:view' and 'mod/quiz:view' for its role in Site "
                    "administration > Users > Permissions > Define roles.",
                )
    return [
        Quiz(
            id=q.get_int("id"),
            cmid=q.get_int("coursemodule"),
            courseid=q.opt_int("course") or courseid,
            name=q.get_str("name", ""),
            timeopen=_epoch(q.opt_int("timeopen")),
            timeclose=_epoch(q.opt_int("timeclose")),
            grade=q.opt_float("grade"),
            sumgrades=q.opt_float("sumgrades"),
            attempts=q.opt_int("attempts") or 0,
        )
        for q in quizzes
        if q.opt_int("course") in (None, courseid)
    ]


@dataclass(frozen=True)
class QuizAttempt:
    """One attempt: `state` is Moodle's (`inprogress`, `overdue`, `finished`, `abandoned`);
    `sumgrades` in raw marks (out of the quiz's `sumgrades`), None until graded."""

    id: int
    quiz: int
    userid: int
    attempt: int
    state: str
    timestart: int | None
    timefinish: int | None
    sumgrades: float | None


def quiz_user_attempts(client: MoodleClient, quizid: int, userid: int) -> list[QuizAttempt]:
    """One student's attempts at one quiz (`mod_quiz_get_user_attempts`, `status=all`).

    **Cost: one call per student per quiz** (Moodle has no bulk form): 300 students and 10
    quizzes are 3,000 calls. The sync does not call it; it reads who submitted an attempt from
    the course log and the gradebook, which it already has. Another user's attempts need
    `mod/quiz:viewreports` (`MissingCapabilityError` "View quiz reports" without it)."""
    data = _Reader(
        client.call(ATTEMPTS_FUNCTION, {"quizid": quizid, "userid": userid, "status": "all"}),
        ATTEMPTS_FUNCTION,
    )
    return [
        QuizAttempt(
            id=a.get_int("id"),
            quiz=a.get_int("quiz"),
            userid=a.get_int("userid"),
            attempt=a.opt_int("attempt") or 0,
            state=a.get_str("state", ""),
            timestart=_epoch(a.opt_int("timestart")),
            timefinish=_epoch(a.opt_int("timefinish")),
            sumgrades=a.opt_float("sumgrades"),
        )
        for a in (_Reader(x, "quiz attempt") for x in data.get_list("attempts"))
    ]


# --------------------------------------------------------------------------- completion


def activity_completion(
    client: MoodleClient, courseid: int, userids: Iterable[int]
) -> Iterable[tuple[int, list[ActivityCompletion]]]:
    """Each student's completion of the course's tracked activities
    (`core_completion_get_activities_completion_status`), yielded as (user id, statuses).

    **Cost: one call per student** (Moodle has no bulk form). Another user's completion needs
    `report/progress:view`; its absence raises `MissingCapabilityError` on the first student,
    so the caller stops there. An empty list is a course that tracks no completion."""
    for userid in userids:
        yield userid, client.get_activities_completion_status(courseid, userid)

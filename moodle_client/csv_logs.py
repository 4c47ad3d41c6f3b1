"""The ``csv`` log source: Moodle's log-report download (``report/log``, CSV format).

The download is made for people, not programs: no log id, no user id column, event and
component names translated into the downloader's language, times formatted in their timezone.
What stays stable is the ``Description`` column, which Moodle writes in English whatever the
language (``get_description()`` is not translated). So the canonical fields are derived from the
description with a table of Moodle's description templates, and the translated columns only
serve the context level and, for events the table does not know, a generic fallback.

Consequences, by design:
- English and French downloads of the same events give identical ``LogRow`` s, content hashes
  included (the hash covers only language-independent text).
- ``id`` and ``contextid`` are None (not in the file); ``objectid`` is None when the description
  does not carry it.
- ``read_log_csv`` parses and validates the whole file before it returns a single row, so a
  refused file (wrong header, bad date, bad encoding, wrong course) writes nothing.
  ``scan_log_csv`` checks every line's fields and time first, then gives the events one by one
  (an event of another course is found there): its caller stores them as they come inside a
  transaction and rolls back if it raises, which is how the import stores a big file while
  reading it. Either way the error names the file's first failing line.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from operator import itemgetter
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from moodle_client.csvfiles import CsvImportError, decode_csv, match_header, read_bytes, records
from moodle_client.logs import LogPage, LogRow
from moodle_client.requirements import normalise_label

__all__ = [
    "DEFAULT_TIME_FORMATS",
    "CsvLogImport",
    "CsvLogSource",
    "LogScan",
    "read_log_csv",
    "scan_log_csv",
]

#: Moodle 4.x/5.x write ``strftimedatetimeshortaccurate`` ("4/09/26, 09:29:26") in every
#: language; the others cover older releases and minute precision.
DEFAULT_TIME_FORMATS: tuple[str, ...] = (
    "%d/%m/%y, %H:%M:%S",
    "%d/%m/%y, %H:%M",
    "%d/%m/%Y, %H:%M:%S",
    "%d/%m/%Y, %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
)

# Logical columns, in the download's order, with accepted header labels (normalised: lower case,
# no accents, no apostrophes). English and French as Moodle 5.1 writes them.
_COLUMNS: dict[str, frozenset[str]] = {
    "time": frozenset({"time", "heure", "date"}),
    "fullname": frozenset({"user full name", "nom complet de lutilisateur", "nom complet"}),
    "affected": frozenset({"affected user", "utilisateur touche", "utilisateur concerne"}),
    "context": frozenset({"event context", "contexte de levenement"}),
    "component": frozenset({"component", "composant"}),
    "eventname": frozenset({"event name", "nom de levenement"}),
    "description": frozenset({"description"}),
    "origin": frozenset({"origin", "origine"}),
    "ip": frozenset({"ip address", "adresse ip"}),
}
_REQUIRED = ("time", "context", "component", "eventname", "description")
_ENGLISH_HEADER = (
    "Time, User full name, Affected user, Event context, Component, Event name, Description, "
    "Origin, IP address"
)

# Context levels (Moodle's CONTEXT_* constants) by the label before ':' in "Event context".
_CONTEXT_LEVELS: dict[str, int] = {
    "system": 10,
    "systeme": 10,
    "user": 30,
    "utilisateur": 30,
    "category": 40,
    "categorie": 40,
    "categorie de cours": 40,
    "course": 50,
    "cours": 50,
    "front page": 50,
    "page daccueil": 50,
    "block": 80,
    "bloc": 80,
}
CONTEXT_COURSE = 50
CONTEXT_MODULE = 70

_INT_FIELDS = frozenset(
    {"userid", "relateduserid", "objectid", "cmid", "courseid", "itemid", "discussionid"}
)


@dataclass(frozen=True)
class _Template:
    """One of Moodle's event description templates and the event fields it stands for.

    Placeholders in ``text``: ``{userid}``, ``{relateduserid}``, ``{objectid}``, ``{cmid}``,
    ``{courseid}`` and ``{mod}`` feed the row; any other name matches free text. ``eventname``,
    ``component`` and ``objecttable`` may use ``{mod}``.
    """

    text: str
    eventname: str
    action: str
    target: str
    objecttable: str | None
    crud: str
    edulevel: int
    contextlevel: int | None = None  # None: from the "Event context" label
    quoted_ids: bool = True

    @property
    def component(self) -> str:
        return self.eventname.split("\\")[1]

    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern(), re.DOTALL)

    def fields(self) -> tuple[str, ...]:
        """The placeholders of ``text``, in order."""
        return tuple(re.findall(r"\{(\w+)\}", self.text))

    def pattern(self, prefix: str = "") -> str:
        """The regular expression of ``text``; its groups are named ``prefix + placeholder``."""
        parts = re.split(r"\{(\w+)\}", self.text)
        pattern = ""
        for index, part in enumerate(parts):
            if index % 2 == 0:
                pattern += re.escape(part)
            elif part in _INT_FIELDS:
                pattern += rf"(?P<{prefix}{part}>-?\d+)"
            elif part == "mod":
                pattern += rf"(?P<{prefix}mod>[a-z][a-z0-9_]*)"
            else:
                pattern += rf"(?P<{prefix}{part}>.*?)"
        return pattern


_U = "The user with id '{userid}'"
_CM = "course module id '{cmid}'"
# crud/edulevel as each event class's init() sets them (LEVEL_OTHER 0, TEACHING 1,
# PARTICIPATING 2).
_TEMPLATES: tuple[_Template, ...] = (
    _Template(
        f"{_U} viewed the '{{mod}}' activity with {_CM}.",
        "\\mod_{mod}\\event\\course_module_viewed", "viewed", "course_module", "{mod}", "r", 2,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} viewed the course with id '{{courseid}}'.",
        "\\core\\event\\course_viewed", "viewed", "course", None, "r", 2, CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} viewed the section number '{{section}}' of the course with id '{{courseid}}'.",
        "\\core\\event\\course_viewed", "viewed", "course", None, "r", 2, CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} viewed the instance list for the module '{{mod}}' in the course with id "
        "'{courseid}'.",
        "\\mod_{mod}\\event\\course_module_instance_list_viewed", "viewed",
        "course_module_instance_list", None, "r", 2, CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} has viewed the discussion with id '{{objectid}}' in the forum with {_CM}.",
        "\\mod_forum\\event\\discussion_viewed", "viewed", "discussion", "forum_discussions",
        "r", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has created the post with id '{{objectid}}' in the discussion with id "
        f"'{{discussionid}}' in the forum with {_CM}.",
        "\\mod_forum\\event\\post_created", "created", "post", "forum_posts", "c", 2,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has created the discussion with id '{{objectid}}' in the forum with {_CM}.",
        "\\mod_forum\\event\\discussion_created", "created", "discussion", "forum_discussions",
        "c", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has posted content in the forum post with id '{{objectid}}' in the discussion "
        f"'{{discussionid}}' located in the forum with {_CM}.",
        "\\mod_forum\\event\\assessable_uploaded", "uploaded", "assessable", "forum_posts", "c",
        2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} updated the completion state for the course module with id '{{cmid}}' for the "
        "user with id '{relateduserid}'.",
        "\\core\\event\\course_module_completion_updated", "updated", "course_module_completion",
        "course_modules_completion", "u", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} overrode the completion state to '{{state}}' for the course module with id "
        "'{cmid}' for the user with id '{relateduserid}'.",
        "\\core\\event\\course_module_completion_updated", "updated", "course_module_completion",
        "course_modules_completion", "u", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has viewed the submission status page for the assignment with {_CM}.",
        "\\mod_assign\\event\\submission_status_viewed", "viewed", "submission_status", None,
        "r", 0, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has submitted the submission with id '{{objectid}}' for the assignment with "
        f"{_CM}.",
        "\\mod_assign\\event\\assessable_submitted", "submitted", "assessable",
        "assign_submission", "u", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has graded the submission '{{objectid}}' for the user with id "
        f"'{{relateduserid}}' for the assignment with {_CM}.",
        "\\mod_assign\\event\\submission_graded", "graded", "submission", "assign_grades", "u",
        1, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} viewed the grading table for the assignment with {_CM}.",
        "\\mod_assign\\event\\grading_table_viewed", "viewed", "grading_table", None, "r", 1,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} created an online text submission with '{{words}}' words in the assignment with "
        f"{_CM}.",
        "\\assignsubmission_onlinetext\\event\\submission_created", "created", "submission",
        "assign_submission", "c", 2, CONTEXT_MODULE,
    ),
    # objecttable as Moodle's class sets it (assignsubmission_file, sic); some versions say
    # "with the course module id".
    _Template(
        f"{_U} updated an online text submission with '{{words}}' words in the assignment with "
        f"{_CM}.",
        "\\assignsubmission_onlinetext\\event\\submission_updated", "updated", "submission",
        "assignsubmission_file", "u", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} updated an online text submission with '{{words}}' words in the assignment with "
        f"the {_CM}.",
        "\\assignsubmission_onlinetext\\event\\submission_updated", "updated", "submission",
        "assignsubmission_file", "u", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has saved an online text submission with id '{{objectid}}' in the assignment "
        f"activity with {_CM}.",
        "\\assignsubmission_onlinetext\\event\\assessable_uploaded", "uploaded", "assessable",
        "assign_submission", "c", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has uploaded a file to the submission with id '{{objectid}}' in the assignment "
        f"activity with {_CM}.",
        "\\assignsubmission_file\\event\\assessable_uploaded", "uploaded", "assessable",
        "assign_submission", "c", 2, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has started the attempt with id '{{objectid}}' for the quiz with {_CM}.",
        "\\mod_quiz\\event\\attempt_started", "started", "attempt", "quiz_attempts", "c", 2,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has submitted the attempt with id '{{objectid}}' for the quiz with {_CM}.",
        "\\mod_quiz\\event\\attempt_submitted", "submitted", "attempt", "quiz_attempts", "u", 2,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has viewed page '{{page}}' of the attempt with id '{{objectid}}' belonging to the "
        f"user with id '{{relateduserid}}' for the quiz with {_CM}.",
        "\\mod_quiz\\event\\attempt_viewed", "viewed", "attempt", "quiz_attempts", "r", 2,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has viewed the attempt with id '{{objectid}}' belonging to the user with id "
        f"'{{relateduserid}}' for the quiz with {_CM}.",
        "\\mod_quiz\\event\\attempt_viewed", "viewed", "attempt", "quiz_attempts", "r", 2,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has reviewed quiz attempt with id '{{objectid}}' by user with id "
        f"'{{relateduserid}}' for the quiz with {_CM}.",
        "\\mod_quiz\\event\\attempt_reviewed", "reviewed", "attempt", "quiz_attempts", "r", 2,
        CONTEXT_MODULE,
    ),
    # Moodle 4.1 to 5.0 wrote this event's description with the ids the other way round in
    # words ("has had their attempt … reviewed by"); the ids map to the same fields.
    _Template(
        f"{_U} has had their attempt with id '{{objectid}}' reviewed by the user with id "
        f"'{{relateduserid}}' for the quiz with {_CM}.",
        "\\mod_quiz\\event\\attempt_reviewed", "reviewed", "attempt", "quiz_attempts", "r", 1,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} has viewed the summary for the attempt with id '{{objectid}}' belonging to the "
        f"user with id '{{relateduserid}}' for the quiz with {_CM}.",
        "\\mod_quiz\\event\\attempt_summary_viewed", "viewed", "attempt_summary",
        "quiz_attempts", "r", 2, CONTEXT_MODULE,
    ),
    _Template(
        "The attempt with id {objectid} for for quiz with course module id {cmid} by user with "
        "id {relateduserid} had automatic grading performed.",
        "\\mod_quiz\\event\\attempt_graded", "graded", "attempt", "quiz_attempts", "u", 2,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} created a new slot with id '{{objectid}}' and slot number '{{slot}}' on page "
        f"'{{page}}' of the quiz with {_CM}.",
        "\\mod_quiz\\event\\slot_created", "created", "slot", "quiz_slots", "c", 1,
        CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} updated the grade with id '{{objectid}}' for the user with id "
        "'{relateduserid}' for the grade item with id '{itemid}'.",
        "\\core\\event\\user_graded", "graded", "user", "grade_grades", "u", 1,
    ),
    _Template(
        f"{_U} updated a grade item with id '{{objectid}}' of type '{{itemtype}}' and name "
        "'{itemname}' in the course with the id '{courseid}'.",
        "\\core\\event\\grade_item_updated", "updated", "grade_item", "grade_items", "u", 0,
    ),
    _Template(
        f"{_U} created a grade item with id '{{objectid}}' of type '{{itemtype}}' and name "
        "'{itemname}' in the course with the id '{courseid}'.",
        "\\core\\event\\grade_item_created", "created", "grade_item", "grade_items", "c", 0,
    ),
    _Template(
        f"{_U} assigned the role with id '{{objectid}}' to the user with id '{{relateduserid}}'.",
        "\\core\\event\\role_assigned", "assigned", "role", "role", "c", 0,
    ),
    _Template(
        f"{_U} enrolled the user with id '{{relateduserid}}' using the enrolment method "
        "'{method}' in the course with id '{courseid}'.",
        "\\core\\event\\user_enrolment_created", "created", "user_enrolment", "user_enrolments",
        "c", 0, CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} created the instance of enrolment method '{{method}}' with id '{{objectid}}'.",
        "\\core\\event\\enrol_instance_created", "created", "enrol_instance", "enrol", "c", 0,
    ),
    _Template(
        f"{_U} created section number '{{section}}' for the course with id '{{courseid}}'",
        "\\core\\event\\course_section_created", "created", "course_section", "course_sections",
        "c", 1, CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} created the '{{mod}}' activity with {_CM}.",
        "\\core\\event\\course_module_created", "created", "course_module", "course_modules",
        "c", 1, CONTEXT_MODULE,
    ),
    _Template(
        f"{_U} updated the course with id '{{courseid}}'.",
        "\\core\\event\\course_updated", "updated", "course", "course", "u", 1, CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} has started the tour with id '{{objectid}}' on the page with URL '{{pageurl}}'.",
        "\\tool_usertours\\event\\tour_started", "started", "tour", "tool_usertours_tours", "r",
        2,
    ),
    _Template(
        f"{_U} has ended the tour with id '{{objectid}}' at step index '{{stepindex}}' (id "
        "'{stepid}') on the page with URL '{pageurl}'.",
        "\\tool_usertours\\event\\tour_ended", "ended", "tour", "tool_usertours_tours", "c", 2,
    ),
    _Template(
        f"{_U} exported grades using the {{mod}} export in the gradebook.",
        "\\gradeexport_{mod}\\event\\grade_exported", "exported", "grade", None, "r", 1,
        CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} created the course with id '{{courseid}}'.",
        "\\core\\event\\course_created", "created", "course", "course", "c", 1, CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} created a question with the id of '{{objectid}}' in the category with the id "
        "'{category}'.",
        "\\core\\event\\question_created", "created", "question", "question", "c", 0,
    ),
    _Template(
        f"{_U} created the event '{{name}}' with id '{{objectid}}'.",
        "\\core\\event\\calendar_event_created", "created", "calendar_event", "event", "c", 0,
    ),
    _Template(
        f"{_U} viewed the log report for the course with id '{{courseid}}'.",
        "\\report_log\\event\\report_viewed", "viewed", "report", None, "r", 1, CONTEXT_COURSE,
    ),
    _Template(
        f"{_U} viewed the user report in the gradebook.",
        "\\gradereport_user\\event\\grade_report_viewed", "viewed", "grade_report", None, "r", 1,
    ),
    _Template(
        f"{_U} viewed the grader report in the gradebook.",
        "\\gradereport_grader\\event\\grade_report_viewed", "viewed", "grade_report", None, "r",
        1,
    ),
    _Template(
        f"{_U} viewed the list of users in the course with id '{{courseid}}'.",
        "\\core\\event\\user_list_viewed", "viewed", "user_list", "course", "r", 0,
        CONTEXT_COURSE,
    ),
)  # fmt: skip
# All templates as one alternation, tried in order inside the regex engine: a description's
# first matching template is the alternative that matches (fullmatch backtracks into the next
# one exactly as a loop over the templates would), found in one call instead of up to 39.
# Alternative i is the group ``t<i>``, its placeholders ``t<i>_<name>``; being the outermost,
# ``t<i>`` closes last, so it is the match's ``lastgroup``.
_ANY_TEMPLATE = re.compile(
    "|".join(f"(?P<t{i}>{t.pattern(f't{i}_')})" for i, t in enumerate(_TEMPLATES)), re.DOTALL
)
# Per alternative: its template, its integer placeholders' (name, group), its module's group.
_TEMPLATE_BY_GROUP: dict[str, tuple[_Template, tuple[tuple[str, str], ...], str | None]] = {
    f"t{i}": (
        t,
        tuple((name, f"t{i}_{name}") for name in t.fields() if name in _INT_FIELDS),
        f"t{i}_mod" if "mod" in t.fields() else None,
    )
    for i, t in enumerate(_TEMPLATES)
}

_FALLBACK_USER = re.compile(r"^The user with id '(\d+)'")
_FALLBACK_VERB = re.compile(r"^The user with id '\d+' (?:has )?(\w+)")
_FALLBACK_CMID = re.compile(r"course module (?:with )?id '(\d+)'")
_FALLBACK_RELATED = re.compile(r"(?:for|to) the user with id '(\d+)'")
_CRUD_BY_VERB = {
    "viewed": "r",
    "created": "c",
    "added": "c",
    "submitted": "c",
    "uploaded": "c",
    "posted": "c",
    "started": "c",
    "updated": "u",
    "graded": "u",
    "edited": "u",
    "deleted": "d",
    "removed": "d",
}


@dataclass(frozen=True)
class UnknownKind:
    """Rows of one kind whose description matched no template: kept (named
    ``csv:<component>:<event name>``), counted, and shown with their first line so that an
    administrator can tell what was not recognised."""

    event: str
    rows: int
    line: int
    description: str


@dataclass(frozen=True)
class CsvLogImport:
    """A validated log download: every row parsed, oldest first.

    ``layout`` is ``"en"``, ``"fr"`` or ``"position"`` (headers in another language, read by
    position). ``unknown_event_rows`` counts rows whose description matched no known template,
    and ``unknown_kinds`` splits them by kind, each with its first line; their ``eventname`` is
    ``csv:<component>:<event name>`` built from the translated columns, so those (only those)
    differ between languages.
    """

    rows: tuple[LogRow, ...]
    layout: str
    unknown_event_rows: int
    unknown_kinds: tuple[UnknownKind, ...]
    #: Moodle user id -> full name as the file shows the acting user. A gradebook export names
    #: students but carries no user id: this is how file-only imports link grades to logs.
    people: Mapping[int, str] = field(default_factory=dict)


def read_log_csv(
    source: bytes | str | os.PathLike[str],
    *,
    courseid: int,
    timezone: str = "Europe/Paris",
    encoding: str | None = None,
    time_formats: Sequence[str] = DEFAULT_TIME_FORMATS,
    users_by_fullname: Mapping[str, int] | None = None,
) -> CsvLogImport:
    """Parse and validate a whole log-report download of course ``courseid``.

    ``source`` is the file's bytes or its path. ``timezone`` is the downloading user's Moodle
    timezone (the times in the file are in it). ``users_by_fullname`` (from the roster) fills
    ``userid``/``relateduserid`` where the description does not carry them. A time in the
    repeated hour of a daylight-saving change is read as its first occurrence (the download
    cannot tell which); content hashes depend on the timezone, so import a course's files
    with the same one.

    Raises ``CsvImportError(line, reason)`` for an undecodable file, a header row that is not a
    log download, a row with the wrong number of fields, an unparseable time, or an event of
    another course; nothing is returned in that case.
    """
    scan = scan_log_csv(
        source,
        courseid=courseid,
        timezone=timezone,
        encoding=encoding,
        time_formats=time_formats,
        users_by_fullname=users_by_fullname,
    )
    rows = tuple(scan.rows())
    return scan.result(rows)


#: The cells a line's identity (its content hash) is made of, besides the course and the time.
_KEY_CELLS = ("time", "description", "fullname", "affected", "origin", "ip")

#: A line as the first pass leaves it: (line number, its cells' stripped text in the order of
#: the header's recognised columns, then "", time, identity's text, occurrence). A plain tuple
#: of plain values: the garbage collector stops tracking it at its first pass (a named tuple,
#: or one holding a dict, stays tracked, and a million of them made each full collection scan
#: them all: 2 s of a 1M-line import).
_Line = tuple[int, tuple[str, ...], int, str, int]


def scan_log_csv(
    source: bytes | str | os.PathLike[str],
    *,
    courseid: int,
    timezone: str = "Europe/Paris",
    encoding: str | None = None,
    time_formats: Sequence[str] = DEFAULT_TIME_FORMATS,
    users_by_fullname: Mapping[str, int] | None = None,
) -> LogScan:
    """The first half of `read_log_csv`: the file decoded, its header read, and every line's
    fields and time checked (the errors `read_log_csv` names for them are raised here).

    `LogScan.rows` then reads the events, oldest first, one at a time: a caller that stores
    them as they come (a PostgreSQL COPY) has the database insert the first rows while the
    rest are being read, inside a transaction it rolls back if `rows` raises.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {timezone!r}") from None
    text = decode_csv(read_bytes(source), encoding)
    rows_iter = records(text)
    first = next(rows_iter, None)
    if first is None:
        raise CsvImportError(1, "the file is empty; expected a Moodle log download")
    header_line, header = first
    columns, layout = _header_columns(header_line, header)
    users = {normalise_label(k): v for k, v in (users_by_fullname or {}).items()}

    lines: list[_Line] = []
    width = len(header)
    names = tuple(columns)
    cells_of = itemgetter(*columns.values())
    # Where each cell the identity reads sits; a column the file lacks reads as "".
    missing = len(names)
    at = {name: names.index(name) if name in columns else missing for name in _KEY_CELLS}
    # Identical rows (same second, same text) are distinct events: number them, in an order
    # that does not depend on where the download starts or ends.
    seen: Counter[str] = Counter()
    hours: dict[str, int] = {}
    course_text = str(courseid)
    try:
        for line, fields in rows_iter:
            if len(fields) != width:
                raise CsvImportError(
                    line, f"expected {width} fields like the header row, found {len(fields)}"
                )
            cells = (*map(str.strip, cells_of(fields)), "")
            timecreated = _parse_time(line, cells[at["time"]], zone, time_formats, hours)
            key = "\x1f".join(
                [
                    course_text,
                    str(timecreated),
                    cells[at["description"]],
                    cells[at["fullname"]],
                    cells[at["affected"]],
                    cells[at["origin"]],
                    cells[at["ip"]],
                ]
            )
            seen[key] = occurrence = seen[key] + 1
            lines.append((line, cells, timecreated, key, occurrence))
    except CsvImportError:
        # A line read so far may name another course, which `rows` only finds: the file's
        # first failing line is the one to name, whatever its reason.
        earlier = LogScan(lines, names, layout, courseid, _Lookups(users)).first_failure()
        if earlier is not None:
            raise earlier from None
        raise
    return LogScan(lines, names, layout, courseid, _Lookups(users))


class LogScan:
    """A log download whose lines are read and checked, ready to give its events
    (`scan_log_csv`).

    `rows` gives them in the order `read_log_csv` returns them: the download is newest first,
    so from its last line to its first, then by time (stable) for the rare lines out of time
    order. Each row is derived from its line there (its template, ids and content hash), so
    that work runs while a caller stores the rows already given. An event of another course
    raises `CsvImportError` naming the first such line of the file, as `read_log_csv` does.
    After `rows` is exhausted, `unknown_event_rows`, `unknown_kinds` and `people` are those of
    the whole file.
    """

    def __init__(
        self,
        lines: list[_Line],
        names: tuple[str, ...],
        layout: str,
        courseid: int,
        lookups: _Lookups,
    ) -> None:
        self.layout = layout
        self._lines = lines
        self._names = names
        self._courseid = courseid
        self._lookups = lookups
        self.unknown_event_rows = 0
        self.unknown_kinds: tuple[UnknownKind, ...] = ()
        self.people: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._lines)

    def _order(self) -> Sequence[int]:
        """Line indexes from the last to the first, then by time (stable)."""
        lines = self._lines
        backwards = range(len(lines) - 1, -1, -1)
        times = [lines[i][2] for i in backwards]
        if all(a <= b for a, b in pairwise(times)):
            return backwards
        return sorted(backwards, key=lambda i: lines[i][2])

    def _derive(self, entry: _Line) -> tuple[dict[str, str], LogRow, bool]:
        line, cells, timecreated, key, occurrence = entry
        cell = dict(zip(self._names, cells, strict=False))  # the "" after the last is left out
        digest = hashlib.sha256(f"{key}\x1f{occurrence}".encode()).hexdigest()
        return cell, *_derive(line, cell, self._courseid, timecreated, self._lookups, digest)

    def rows(self) -> Iterator[LogRow]:
        kinds: Counter[str] = Counter()
        examples: dict[str, tuple[int, str]] = {}
        first_name: dict[int, tuple[int, str]] = {}
        unknown = 0
        lines = self._lines
        try:
            for index in self._order():
                entry = lines[index]
                line = entry[0]
                cell, row, known = self._derive(entry)
                if not known:
                    unknown += 1
                    kinds[row.eventname] += 1
                    example = examples.get(row.eventname)
                    if example is None or line < example[0]:
                        examples[row.eventname] = (line, cell["description"][:300])
                name = cell.get("fullname", "")
                if row.userid and name and name != "-":
                    named = first_name.get(row.userid)
                    if named is None or line < named[0]:
                        first_name[row.userid] = (line, name)
                yield row
        except CsvImportError as error:
            raise (self.first_failure() or error) from None
        self.unknown_event_rows = unknown
        # As a forward reading orders them: by count, then by first line.
        self.unknown_kinds = tuple(
            UnknownKind(event, count, *examples[event])
            for event, count in sorted(kinds.items(), key=lambda kv: (-kv[1], examples[kv[0]][0]))
        )
        self.people = {
            uid: name for uid, (_, name) in sorted(first_name.items(), key=lambda kv: kv[1][0])
        }

    def first_failure(self) -> CsvImportError | None:
        """The error of the first line that names another course, in file order (`rows` meets
        them from the end), or None."""
        for entry in self._lines:
            try:
                self._derive(entry)
            except CsvImportError as error:
                return error
        return None

    def result(self, rows: Sequence[LogRow]) -> CsvLogImport:
        """The whole import, once `rows` has given `rows`."""
        return CsvLogImport(
            rows=tuple(rows),
            layout=self.layout,
            unknown_event_rows=self.unknown_event_rows,
            unknown_kinds=self.unknown_kinds,
            people=self.people,
        )


def _header_columns(line: int, header: Sequence[str]) -> tuple[dict[str, int], str]:
    found, _ = match_header(header, _COLUMNS)
    missing = [name for name in _REQUIRED if name not in found]
    if not missing:
        french = normalise_label(header[found["time"]]) == "heure"
        return found, "fr" if french else "en"
    # Headers in a language we do not know: read by position when the shape is the standard
    # one and every header we did recognise sits at its standard place.
    standard = list(_COLUMNS)
    if len(header) == len(standard) and all(standard[i] == n for n, i in found.items()):
        return {name: index for index, name in enumerate(standard)}, "position"
    labels = {"time": "Time", "context": "Event context", "component": "Component"}
    labels |= {"eventname": "Event name", "description": "Description"}
    raise CsvImportError(
        line,
        "this is not a Moodle log download: the header row lacks "
        + ", ".join(repr(labels[m]) for m in missing)
        + f" (expected: {_ENGLISH_HEADER}, or the French equivalents)",
    )


_MOODLE_TIME = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}), (\d{1,2}):(\d{2}):(\d{2})")


def _parse_time(
    line: int,
    text: str,
    zone: ZoneInfo,
    formats: Sequence[str],
    hours: dict[str, int] | None = None,
) -> int:
    """Epoch seconds of a download's time, read in ``zone``.

    ``hours`` caches the epoch of each hour already seen (keyed by the text up to its
    minutes): building a zoned datetime per row was most of this function's cost. An hour is
    cached only when its first and last seconds are 3599 s apart, i.e. no change of UTC offset
    falls inside it (a half-hour zone's change, a historical offset in seconds); then the
    cached sum is exactly what the zoned datetime gives, and other hours are read row by row.
    """
    fast = _MOODLE_TIME.fullmatch(text) if formats is DEFAULT_TIME_FORMATS else None
    if fast is not None:
        # The default format, without strptime's per-call cost (same century rule as %y).
        minute, second = int(fast.group(5)), int(fast.group(6))
        prefix = text[: fast.start(5)]
        if hours is not None and minute < 60 and second < 60 and prefix in hours:
            return hours[prefix] + minute * 60 + second
        day, month, year, hour = (int(g) for g in fast.groups()[:4])
        year += 2000 if year < 69 else 1900
        try:
            epoch = int(datetime(year, month, day, hour, minute, second, tzinfo=zone).timestamp())
        except ValueError:
            pass  # 31/02: let strptime below refuse it with the common message
        else:
            if hours is not None:
                start = int(datetime(year, month, day, hour, tzinfo=zone).timestamp())
                end = datetime(year, month, day, hour, 59, 59, tzinfo=zone).timestamp()
                if int(end) - start == 3599:
                    hours[prefix] = start
            return epoch
    for fmt in formats:
        try:
            naive = datetime.strptime(text, fmt)  # naive on purpose: the zone is attached below
        except ValueError:
            continue
        return int(naive.replace(tzinfo=zone).timestamp())
    raise CsvImportError(
        line,
        f"cannot read the time {text!r}: expected Moodle's format like '4/09/26, 09:29:26' "
        f"(day/month/year, hour:minute:second)",
    )


def _context_level(label: str) -> int | None:
    prefix = label.split(":", 1)[0] if ":" in label else label
    return _CONTEXT_LEVELS.get(normalise_label(prefix))


class _Lookups:
    """Per-file memo of what `_derive` reads from repeated text: the user id of a full name (from
    the roster), the context level of an "Event context" label, a template's event names for
    a module. A download repeats each thousands of times; `normalise_label`'s own cache is
    shared and smaller than a big course's list of names."""

    def __init__(self, users: Mapping[str, int]) -> None:
        self.users = users
        self.names: dict[str, int | None] = {}
        self.levels: dict[str, int | None] = {}
        self.events: dict[tuple[str, str], tuple[str, str, str | None]] = {}

    def user(self, fullname: str) -> int | None:
        try:
            return self.names[fullname]
        except KeyError:
            found = self.users.get(normalise_label(fullname)) if self.users else None
            self.names[fullname] = found
            return found

    def level(self, label: str) -> int | None:
        try:
            return self.levels[label]
        except KeyError:
            found = self.levels[label] = _context_level(label)
            return found

    def event(self, group: str, template: _Template, mod: str) -> tuple[str, str, str | None]:
        """(eventname, component, objecttable) of a template for a module."""
        try:
            return self.events[group, mod]
        except KeyError:
            table = template.objecttable.format(mod=mod) if template.objecttable else None
            names = (template.eventname.format(mod=mod), template.component.format(mod=mod), table)
            self.events[group, mod] = names
            return names


def _derive(
    line: int,
    cell: Mapping[str, str],
    courseid: int,
    timecreated: int,
    lookups: _Lookups,
    content_hash: str,
) -> tuple[LogRow, bool]:
    """The standard-log row a download's line stands for, and whether its description matched
    a known template (else a generic reading keeps the event, named `csv:<component>:<name>`).

    The people and the line's shared fields are passed as plain arguments and the row is built
    positionally (in `LogRow`'s field order): a million lines each paid ~1.3 us for two small
    named tuples and a keyword call, on the import's busiest core."""
    fullname, affected = cell.get("fullname", ""), cell.get("affected", "")
    user = lookups.user(fullname)
    related = lookups.user(affected) if affected not in ("", "-") else None
    same = fullname not in ("", "-") and fullname == affected
    origin = cell.get("origin") or None
    label_level = lookups.level(cell["context"])
    match = _ANY_TEMPLATE.fullmatch(cell["description"])
    if match is not None and match.lastgroup is not None:
        row = _from_template(
            line, match, lookups, label_level, user, related, same,
            courseid, timecreated, origin, content_hash,
        )  # fmt: skip
        return row, True
    row = _generic(cell, label_level, user, related, courseid, timecreated, origin, content_hash)
    return row, False


def _from_template(
    line: int,
    match: re.Match[str],
    lookups: _Lookups,
    label_level: int | None,
    user: int | None,
    related: int | None,
    same: bool,
    courseid: int,
    timecreated: int,
    origin: str | None,
    content_hash: str,
) -> LogRow:
    """A description that matched one of Moodle's templates: the event and ids it spells.
    ``user`` and ``related`` are the people the download's columns name (ids when known),
    ``same`` whether both columns name the same person."""
    assert match.lastgroup is not None
    template, int_groups, mod_group = _TEMPLATE_BY_GROUP[match.lastgroup]
    ints = {name: int(match.group(group)) for name, group in int_groups}
    mentioned = ints.get("courseid")
    if mentioned is not None and mentioned != courseid:
        raise CsvImportError(
            line,
            f"this event belongs to course {mentioned}, but the file is imported for course "
            f"{courseid}: was the download made in another course?",
        )
    mod = match.group(mod_group) if mod_group else ""
    level = template.contextlevel or label_level or CONTEXT_MODULE
    cmid = ints.get("cmid")
    objectid = ints.get("objectid")
    if template.eventname.endswith("course_module_created"):
        objectid = cmid
    elif template.objecttable == "course" and mentioned is not None:
        objectid = mentioned
    eventname, component, objecttable = lookups.event(match.lastgroup, template, mod)
    return LogRow(
        None,  # id
        eventname,
        component,
        template.action,
        template.target,
        objecttable,
        objectid,
        template.crud,
        template.edulevel,
        None,  # contextid
        level,
        _instance(level, courseid, cmid),
        _actor(ints, user, same),
        ints.get("relateduserid", related),
        courseid,
        timecreated,
        origin,
        content_hash,
    )


def _actor(ints: Mapping[str, int], user: int | None, same: bool) -> int:
    """The actor's id: from the description; else (a description that names only the affected
    user, like Moodle 5's "attempt … had automatic grading performed") the affected user's id
    when both columns name the same person; else from the roster by name. Never 0 for a person
    the line identifies: 0 would attribute the event to nobody."""
    if "userid" in ints:
        return ints["userid"]
    # The id in the description beats a look-up by name: the site may have namesakes.
    if same and "relateduserid" in ints:
        return ints["relateduserid"]
    if user is not None:
        return user
    return 0


def _generic(
    cell: Mapping[str, str],
    label_level: int | None,
    user: int | None,
    related: int | None,
    courseid: int,
    timecreated: int,
    origin: str | None,
    content_hash: str,
) -> LogRow:
    """An unknown template: the event kept with what a generic reading of the text gives."""
    description = cell["description"]
    named = _FALLBACK_USER.search(description)
    verb = _FALLBACK_VERB.search(description)
    cm = _FALLBACK_CMID.search(description)
    affected = _FALLBACK_RELATED.search(description)
    level = label_level or CONTEXT_MODULE
    action = verb.group(1) if verb else "unknown"
    component_label = normalise_label(cell["component"]).replace(" ", "_")
    event_label = normalise_label(cell["eventname"]).replace(" ", "_")
    return LogRow(
        id=None,
        eventname=f"csv:{component_label}:{event_label}",
        component="unknown",
        action=action,
        target="unknown",
        objecttable=None,
        objectid=None,
        crud=_CRUD_BY_VERB.get(action, "r"),
        edulevel=0,
        contextid=None,
        contextlevel=level,
        contextinstanceid=_instance(level, courseid, int(cm.group(1)) if cm else None),
        userid=int(named.group(1)) if named else (user or 0),
        relateduserid=int(affected.group(1)) if affected else related,
        courseid=courseid,
        timecreated=timecreated,
        origin=origin,
        content_hash=content_hash,
    )


def _instance(level: int, courseid: int, cmid: int | None) -> int:
    """contextinstanceid: the course id for course context, the cmid for a module, else 0
    (unknown: the download does not carry category, user or block ids)."""
    if level == CONTEXT_COURSE:
        return courseid
    if level == CONTEXT_MODULE:
        return cmid or 0
    return 0


class CsvLogSource:
    """The ``csv`` source: pages over a validated download (``read_log_csv``).

    Validation happens when the source is built, so a refused file raises before the first
    page. ``after`` is ignored: the file has no ids; rows de-duplicate on ``content_hash``.
    """

    name = "csv"

    def __init__(self, parsed: CsvLogImport, page_size: int = 1000) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self.parsed = parsed
        self.page_size = page_size

    @classmethod
    def from_file(
        cls,
        source: bytes | str | os.PathLike[str],
        *,
        courseid: int,
        timezone: str = "Europe/Paris",
        encoding: str | None = None,
        users_by_fullname: Mapping[str, int] | None = None,
        page_size: int = 1000,
    ) -> CsvLogSource:
        """Read, validate and wrap a download in one step (see ``read_log_csv``)."""
        parsed = read_log_csv(
            source,
            courseid=courseid,
            timezone=timezone,
            encoding=encoding,
            users_by_fullname=users_by_fullname,
        )
        return cls(parsed, page_size)

    def __repr__(self) -> str:
        return f"CsvLogSource(rows={len(self.parsed.rows)}, layout={self.parsed.layout!r})"

    def pages(self, after: int = 0) -> Iterator[LogPage]:
        rows = self.parsed.rows
        total = len(rows)
        for start in range(0, total, self.page_size):
            chunk = rows[start : start + self.page_size]
            yield LogPage(
                rows=chunk,
                cursor=None,
                hasmore=start + self.page_size < total,
                remaining=total - start,
            )

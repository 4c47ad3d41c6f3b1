"""Context beside the risk (issue #16, item 6): the work a student owes and what they opened.

`sync_coursework` runs in the course sync, after the roster and the grades: it stores the
course's modules (`core_course_get_contents`), the assignments' due dates and every student's
latest submission (two calls for the whole course), the quizzes' closing times (one call), and
each student's activity completion (one call per student: Moodle has no bulk form). Quiz
attempts cost nothing more: who submitted an attempt is in the course log the sync already
pulls (`attempt_submitted`) and in the gradebook, where `mod_quiz_get_user_attempts` would be
one call per student per quiz.

**Unavailable is not empty.** A feature the site's token cannot read (a function missing from
the service, a capability missing, an empty answer with an access warning, which
`moodle_client.coursework` raises as `MissingCapabilityError`) goes to the site's
`unavailable_features` {feature: explanation} and the page shows the explanation; its stored
rows are left as they were, never cleared as if Moodle had said "nothing". A feature read
successfully is removed from there and its time noted in `coursework_sync`, so "read, empty"
differs from "never read" too.

`student_coursework` reads one student's page data: marks per grade item, assignments and
quizzes with their state (submitted, late, missing, not yet due...), activity completion, and
the course modules they opened or not (their log events by module). States are computed
against the dates when read, so a deadline passing needs no sync.

Like every service: takes a `Session`, never commits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import (
    Course,
    CourseworkItem,
    CourseworkStatus,
    CourseworkSync,
    Enrolment,
    Grade,
    GradeItem,
    LogEvent,
    MoodleSite,
    Person,
)
from moodle_client import coursework as mcw
from moodle_client.client import MoodleClient
from moodle_client.errors import (
    AccessDeniedError,
    InvalidRecordError,
    InvalidTokenError,
    MissingCapabilityError,
    MoodleError,
    MoodleUnavailableError,
)
from moodle_client.types import CourseSection

__all__ = [
    "FEATURES",
    "CourseworkOutcome",
    "Mark",
    "Module",
    "StudentCoursework",
    "Unavailable",
    "Work",
    "WorkState",
    "student_coursework",
    "sync_coursework",
    "unavailable_reason",
    "work_state",
]

#: The features this module reads, as keys of `moodle_site.unavailable_features`.
FEATURES = ("resources", "assignments", "quizzes", "completion")
#: Modules that are not something to open: a label is text on the course page, a question bank
#: and a subsection are structure.
_NOT_OPENED = frozenset({"label", "qbank", "subsection"})
_QUIZ_SUBMITTED = "\\mod_quiz\\event\\attempt_submitted"
_CONTEXT_MODULE = 70
#: Completion errors in a row, before any success, that stop the per-student calls.
_GIVE_UP = 3


def _ts(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive UTC datetimes; compare aware ones."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- explanations


def _explanation(exc: MoodleError) -> str:
    """An English sentence for the admin that names, in single quotes, the capability or the
    function at fault: `unavailable_reason` finds them again for the page's translation."""
    where = exc.wsfunction or "the function"
    if isinstance(exc, MissingCapabilityError):
        if exc.capabilities:
            names = " and ".join(f"'{c}'" for c in exc.capabilities)
            return (
                f"Moodle's web-service user lacks the capability {names} ({where}: "
                f"{exc.message}). Allow it for its role in Site administration > Users > "
                "Permissions > Define roles."
            )
        return (
            f"Moodle's web-service user lacks a capability ({where}: {exc.message}). "
            "Allow it for its role in Site administration > Users > Permissions > Define roles."
        )
    if isinstance(exc, AccessDeniedError):
        return (
            f"The function '{where}' is not in the token's external service: add it in Site "
            "administration > Server > Web services > External services."
        )
    if isinstance(exc, InvalidRecordError):
        return f"Moodle answers that the function '{where}' or the course does not exist."
    return f"Moodle refused '{where}': {exc.message} [{exc.errorcode}]."


_CAPABILITY = re.compile(r"'([a-z]+/[a-z0-9_]+:[a-z0-9_]+)'")
_FUNCTION = re.compile(r"'([a-z]+_[a-z0-9_]+)'")


@dataclass(frozen=True)
class Unavailable:
    """Why a feature is off, for the page to say in the reader's language: `kind` is
    "capability" (`name`: the capabilities, joined), "function" (`name`: the web-service
    function) or "other" (`text`: the stored English explanation)."""

    kind: Literal["capability", "function", "other"]
    name: str
    text: str


def unavailable_reason(text: str) -> Unavailable:
    """The capability or function an explanation names (see `_explanation`)."""
    capabilities = _CAPABILITY.findall(text)
    if capabilities:
        return Unavailable("capability", ", ".join(dict.fromkeys(capabilities)), text)
    function = _FUNCTION.search(text)
    if function and "not in the token's external service" in text:
        return Unavailable("function", function.group(1), text)
    return Unavailable("other", "", text)


# --------------------------------------------------------------------------- sync


@dataclass(frozen=True)
class CourseworkOutcome:
    """What a coursework sync read: items stored, submissions and completions written, the
    features read, and the features found unavailable with their explanations."""

    items: int
    submissions: int
    completions: int
    read: tuple[str, ...]
    unavailable: dict[str, str] = field(default_factory=dict)


class _Run:
    """One coursework sync's state: the course's items by cmid and the statuses loaded."""

    def __init__(self, session: Session, course: Course) -> None:
        self.session = session
        self.course = course
        self.items: dict[int, CourseworkItem] = {
            i.cmid: i
            for i in session.scalars(
                select(CourseworkItem).where(CourseworkItem.course_id == course.id)
            )
        }
        self.read: list[str] = []
        self.refused: dict[str, str] = {}
        self.submissions = 0
        self.completions = 0
        self._statuses: dict[tuple[int, int], CourseworkStatus] | None = None

    def attempt(self, feature: str, step: Callable[[], None]) -> bool:
        """Run one feature's calls: a refusal marks it unavailable; a wrong token or Moodle
        down is the whole sync's failure and is raised."""
        try:
            step()
        except (InvalidTokenError, MoodleUnavailableError):
            raise
        except MoodleError as exc:
            self.refused[feature] = _explanation(exc)
            return False
        self.read.append(feature)
        return True

    def item(self, cmid: int, modname: str) -> CourseworkItem:
        row = self.items.get(cmid)
        if row is None:
            row = CourseworkItem(course_id=self.course.id, cmid=cmid, modname=modname, name="")
            row.section, row.position, row.visible, row.offline = 0, 0, True, False
            self.session.add(row)
            self.items[cmid] = row
        row.synced_at = utcnow()
        return row

    def statuses(self) -> dict[tuple[int, int], CourseworkStatus]:
        if self._statuses is None:
            self.session.flush()
            ids = [i.id for i in self.items.values()]
            self._statuses = {
                (s.item_id, s.person_id): s
                for s in self.session.scalars(
                    select(CourseworkStatus).where(CourseworkStatus.item_id.in_(ids))
                )
            }
        return self._statuses

    def status(self, item: CourseworkItem, person_id: int) -> CourseworkStatus:
        statuses = self.statuses()
        row = statuses.get((item.id, person_id))
        if row is None:
            row = CourseworkStatus(item_id=item.id, person_id=person_id)
            self.session.add(row)
            statuses[(item.id, person_id)] = row
        return row


def sync_coursework(session: Session, course: Course, client: MoodleClient) -> CourseworkOutcome:
    """Read the course's coursework from Moodle and store it (see the module docstring). Call
    after the roster sync: students are the course's active `student` enrolments.

    Calls: `core_course_get_contents`, `mod_assign_get_assignments`,
    `mod_assign_get_submissions` and `mod_quiz_get_quizzes_by_courses` once each, and
    `core_completion_get_activities_completion_status` once per student."""
    run = _Run(session, course)
    mid = course.moodle_course_id
    run.attempt("resources", lambda: _store_modules(run, client.get_course_contents(mid)))
    assignments: list[mcw.Assignment] = []

    def read_assignments() -> None:
        assignments.extend(mcw.course_assignments(client, mid))
        _store_assignments(run, assignments)
        _store_submissions(
            run, assignments, mcw.assignment_submissions(client, [a.id for a in assignments])
        )

    run.attempt("assignments", read_assignments)
    run.attempt("quizzes", lambda: _store_quizzes(run, mcw.course_quizzes(client, mid)))
    run.attempt("completion", lambda: _store_completion(run, client, _students(session, course)))
    _note(session, course, run)
    return CourseworkOutcome(
        items=len(run.items),
        submissions=run.submissions,
        completions=run.completions,
        read=tuple(run.read),
        unavailable=dict(run.refused),
    )


def _students(session: Session, course: Course) -> dict[int, int]:
    """{Moodle user id: person id} of the course's active students."""
    rows = session.execute(
        select(Person.moodle_user_id, Person.id)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .where(
            Enrolment.course_id == course.id,
            Enrolment.active.is_(True),
            Enrolment.role == "student",
            Person.moodle_user_id.is_not(None),
        )
        .order_by(Person.moodle_user_id)
    )
    return {int(uid): int(pid) for uid, pid in rows if uid is not None}


def _people(session: Session, course: Course, userids: Iterable[int]) -> dict[int, int]:
    wanted = sorted({u for u in userids if u})
    if not wanted:
        return {}
    rows = session.execute(
        select(Person.moodle_user_id, Person.id).where(
            Person.site_id == course.site_id, Person.moodle_user_id.in_(wanted)
        )
    )
    return {int(uid): int(pid) for uid, pid in rows if uid is not None}


def _store_modules(run: _Run, sections: list[CourseSection]) -> None:
    """Every module of the contents; a module no longer there is deleted (its statuses too)."""
    seen: set[int] = set()
    position = 0
    for section in sections:
        for module in section.modules:
            position += 1
            seen.add(module.id)
            row = run.item(module.id, module.modname)
            row.modname = module.modname
            row.instance = module.instance
            row.name = module.name[:500]
            row.section = section.section
            row.position = position
            row.visible = bool(section.visible and module.visible and module.uservisible)
            dates = dict(module.dates)
            # The assignment and quiz calls give these too and win; the contents' dates keep
            # the page useful when those calls are not allowed.
            opens = dates.get("allowsubmissionsfromdate") or dates.get("timeopen")
            due = dates.get("duedate") or dates.get("timeclose")
            if opens:
                row.opens_at = _ts(opens)
            if due:
                row.due_at = _ts(due)
            if dates.get("cutoffdate"):
                row.cutoff_at = _ts(dates["cutoffdate"])
    for cmid in [c for c in run.items if c not in seen]:
        run.session.delete(run.items.pop(cmid))


def _store_assignments(run: _Run, assignments: list[mcw.Assignment]) -> None:
    for a in assignments:
        row = run.item(a.cmid, "assign")
        row.modname, row.instance = "assign", a.id
        row.name = a.name[:500] or row.name
        row.opens_at = _ts(a.allowsubmissionsfromdate)
        row.due_at = _ts(a.duedate)
        row.cutoff_at = _ts(a.cutoffdate)
        row.offline = a.nosubmissions


def _store_submissions(
    run: _Run,
    assignments: list[mcw.Assignment],
    submissions: Mapping[int, list[mcw.Submission]],
) -> None:
    """Each student's latest submission; a student Moodle lists no row for has none (a row
    stored earlier is cleared). A team's submission (user 0) is not a student's: left out."""
    people = _people(
        run.session, run.course, (s.userid for rows in submissions.values() for s in rows)
    )
    for a in assignments:
        item = run.items[a.cmid]
        run.session.flush()
        latest = {people[s.userid]: s for s in submissions.get(a.id, []) if s.userid in people}
        for (item_id, person_id), row in run.statuses().items():
            if item_id == item.id and person_id not in latest:
                row.submission, row.submitted_at = None, None
        for person_id, s in latest.items():
            row = run.status(item, person_id)
            row.submission = s.status[:16]
            row.submitted_at = _ts(s.timemodified) if s.status == "submitted" else None
            run.submissions += 1


def _store_quizzes(run: _Run, quizzes: list[mcw.Quiz]) -> None:
    for q in quizzes:
        row = run.item(q.cmid, "quiz")
        row.modname, row.instance = "quiz", q.id
        row.name = q.name[:500] or row.name
        row.opens_at = _ts(q.timeopen)
        row.due_at = _ts(q.timeclose)


def _store_completion(run: _Run, client: MoodleClient, students: Mapping[int, int]) -> None:
    """One call per student. A refusal of the function or the capability stops at the first
    student (it would refuse them all) and marks the feature unavailable; another error for one
    student (a suspended account) skips that student, unless the first few all failed (an
    uninstalled function answers `invalidrecordunknown` to every student)."""
    run.session.flush()
    cmid_of = {item.id: cmid for cmid, item in run.items.items()}
    failures: list[MoodleError] = []
    done = 0
    for userid, person_id in students.items():
        try:
            statuses = client.get_activities_completion_status(run.course.moodle_course_id, userid)
        except (InvalidTokenError, MoodleUnavailableError, AccessDeniedError):
            raise  # AccessDenied: the function is not in the service, for every student
        except MissingCapabilityError:
            raise  # report/progress:view: it would refuse every student alike
        except MoodleError as exc:
            failures.append(exc)
            if not done and len(failures) >= _GIVE_UP:
                raise  # the first students all failed alike: the function, not the students
            continue
        done += 1
        tracked = {s.cmid: s for s in statuses}
        for (item_id, pid), row in run.statuses().items():
            if pid == person_id and cmid_of.get(item_id) not in tracked:
                row.completion, row.completed_at = None, None
        for cmid, s in tracked.items():
            item = run.items.get(cmid)
            if item is None:  # a module the contents did not show the web-service user
                continue
            row = run.status(item, person_id)
            row.completion = s.state
            row.completed_at = _ts(s.timecompleted)
            run.completions += 1
    if failures and not done:
        raise failures[-1]


def _note(session: Session, course: Course, run: _Run) -> None:
    """The features read (in `coursework_sync`) and those refused (in the site's
    `unavailable_features`, other features' entries left as they are)."""
    now = utcnow()
    sync = session.get(CourseworkSync, course.id)
    if sync is None:
        sync = CourseworkSync(course_id=course.id, read_at={})
        session.add(sync)
    sync.read_at = {**(sync.read_at or {}), **{f: now.isoformat() for f in run.read}}
    sync.synced_at = now
    site = session.get_one(MoodleSite, course.site_id)
    flags = {k: v for k, v in (site.unavailable_features or {}).items() if k not in run.read}
    flags.update(run.refused)
    if flags != (site.unavailable_features or {}):
        site.unavailable_features = flags  # a new dict: JSON columns track assignment only
    session.flush()


# --------------------------------------------------------------------------- reading

WorkState = Literal[
    "submitted", "late", "missing", "not_due", "open", "attempted", "offline", "unknown"
]


def work_state(
    modname: str,
    *,
    due_at: datetime | None,
    done_at: datetime | None,
    done: bool,
    offline: bool = False,
    now: datetime,
) -> WorkState:
    """An assignment's or a quiz's state for one student at `now`:

    - an assignment submitted is `submitted`, or `late` when it was last changed after the due
      date (what Moodle calls "submitted late"); a quiz with a submitted attempt is `attempted`;
    - not done: `missing` once the due date (a quiz's closing time) has passed, `not_due` before
      it, `open` when there is no date;
    - an assignment Moodle collects nothing for is `offline` (handed in elsewhere).
    """
    due_at, done_at, now = _aware(due_at), _aware(done_at), _aware(now) or now
    if modname == "assign" and offline:
        return "offline"
    if done:
        if modname == "quiz":
            return "attempted"
        if due_at is not None and done_at is not None and done_at > due_at:
            return "late"
        return "submitted"
    if due_at is None:
        return "open"
    return "missing" if now > due_at else "not_due"


@dataclass(frozen=True)
class Mark:
    name: str
    itemtype: str
    value: float | None
    grademin: float
    grademax: float
    graded_at: datetime | None

    @property
    def is_total(self) -> bool:
        return self.itemtype == "course"


@dataclass(frozen=True)
class Work:
    """An assignment or a quiz with its state for the student; `at` is when it was submitted
    (an assignment's last change, a quiz's last submitted attempt)."""

    cmid: int
    modname: str
    name: str
    due_at: datetime | None
    state: WorkState
    at: datetime | None


@dataclass(frozen=True)
class Module:
    """A course module with the student's completion (None: not tracked) and how often and
    when they last opened it (0, None: never)."""

    cmid: int
    modname: str
    name: str
    completion: int | None
    completed_at: datetime | None
    views: int
    last_at: datetime | None


@dataclass(frozen=True)
class StudentCoursework:
    """One student's page data. `unavailable` {feature: why}; `read` the features read at
    least once for the course (a feature in neither was never read: no sync since)."""

    marks: list[Mark]
    work: list[Work]
    modules: list[Module]
    unavailable: dict[str, Unavailable]
    read: frozenset[str]

    @property
    def completion(self) -> list[Module]:
        return [m for m in self.modules if m.completion is not None]

    @property
    def opened(self) -> list[Module]:
        return [m for m in self.modules if m.views]

    @property
    def not_opened(self) -> list[Module]:
        return [m for m in self.modules if not m.views]

    @property
    def missing(self) -> int:
        return sum(1 for w in self.work if w.state == "missing")


def student_coursework(
    session: Session, course: Course, person_id: int, *, now: datetime | None = None
) -> StudentCoursework:
    """Everything the student page shows beside the risk, for one student, at `now`."""
    now = now or utcnow()
    person = session.get_one(Person, person_id)
    site = session.get_one(MoodleSite, course.site_id)
    flags = {
        k: unavailable_reason(v)
        for k, v in (site.unavailable_features or {}).items()
        if k in FEATURES
    }
    sync = session.get(CourseworkSync, course.id)
    read = frozenset((sync.read_at or {}) if sync else ())
    items = list(
        session.scalars(
            select(CourseworkItem)
            .where(CourseworkItem.course_id == course.id, CourseworkItem.visible.is_(True))
            .order_by(CourseworkItem.position, CourseworkItem.cmid)
        )
    )
    statuses = {
        s.item_id: s
        for s in session.scalars(
            select(CourseworkStatus).where(
                CourseworkStatus.person_id == person_id,
                CourseworkStatus.item_id.in_([i.id for i in items]),
            )
        )
    }
    views, quiz_done = _own_events(session, course, person.moodle_user_id)
    grades = _grades(session, course, person_id)
    marks = [m for m, _ in grades]
    graded = {key: m.graded_at for m, keys in grades for key in keys}
    work: list[Work] = []
    for item in items:
        if item.modname not in ("assign", "quiz"):
            continue
        status = statuses.get(item.id)
        if item.modname == "assign":
            done = bool(status and status.submission == "submitted")
            at = status.submitted_at if status else None
        else:
            keys = [("quiz", "cm", item.cmid), ("quiz", "instance", item.instance or 0)]
            at = quiz_done.get(item.cmid) or next((graded[k] for k in keys if k in graded), None)
            done = item.cmid in quiz_done or any(k in graded for k in keys)
        state = work_state(
            item.modname, due_at=item.due_at, done_at=at, done=done, offline=item.offline, now=now
        )
        work.append(
            Work(item.cmid, item.modname, item.name, _aware(item.due_at), state, _aware(at))
        )
    modules = [
        Module(
            cmid=item.cmid,
            modname=item.modname,
            name=item.name,
            completion=statuses[item.id].completion if item.id in statuses else None,
            completed_at=_aware(statuses[item.id].completed_at) if item.id in statuses else None,
            views=views.get(item.cmid, (0, None))[0],
            last_at=views.get(item.cmid, (0, None))[1],
        )
        for item in items
        if item.modname not in _NOT_OPENED
    ]
    return StudentCoursework(marks, work, modules, flags, read)


def _own_events(
    session: Session, course: Course, moodle_user_id: int | None
) -> tuple[dict[int, tuple[int, datetime | None]], dict[int, datetime]]:
    """The student's own events by module: ({cmid: (events, last time)}, {quiz cmid: last
    attempt submitted}). Both read the (site, course, user, time) index's range of the user."""
    if moodle_user_id is None:
        return {}, {}
    mine = (
        LogEvent.site_id == course.site_id,
        LogEvent.courseid == course.moodle_course_id,
        LogEvent.userid == moodle_user_id,
        LogEvent.contextlevel == _CONTEXT_MODULE,
    )
    views = {
        int(cmid): (int(n), _ts(int(last)))
        for cmid, n, last in session.execute(
            select(LogEvent.contextinstanceid, func.count(), func.max(LogEvent.timecreated))
            .where(*mine)
            .group_by(LogEvent.contextinstanceid)
        )
    }
    submitted = {
        int(cmid): _ts(int(last))
        for cmid, last in session.execute(
            select(LogEvent.contextinstanceid, func.max(LogEvent.timecreated))
            .where(*mine, LogEvent.eventname == _QUIZ_SUBMITTED)
            .group_by(LogEvent.contextinstanceid)
        )
    }
    return views, {k: v for k, v in submitted.items() if v is not None}


_GradedKey = tuple[str, str, int]


def _grades(
    session: Session, course: Course, person_id: int
) -> list[tuple[Mark, list[_GradedKey]]]:
    """The student's marks per grade item (the course total last), each with the activity it
    grades when graded, by course module and by instance (("quiz", "cm", 6), ("quiz",
    "instance", 1)): a graded quiz was attempted. The course module is the surer key: the
    gradebook's instance is the activity's id, which a CSV import does not give."""
    rows = session.execute(
        select(GradeItem, Grade)
        .outerjoin(Grade, (Grade.grade_item_id == GradeItem.id) & (Grade.person_id == person_id))
        .where(GradeItem.course_id == course.id)
        .order_by((GradeItem.itemtype == "course").asc(), GradeItem.moodle_item_id)
    )
    out: list[tuple[Mark, list[_GradedKey]]] = []
    for item, grade in rows:
        value = grade.value if grade is not None else None
        mark = Mark(
            name=item.itemname,
            itemtype=item.itemtype,
            value=value,
            grademin=item.grademin,
            grademax=(grade.grade_max if grade is not None and grade.grade_max else item.grademax),
            graded_at=_aware(grade.graded_at) if grade is not None else None,
        )
        keys: list[_GradedKey] = []
        if value is not None and item.itemmodule:
            if item.cmid is not None:
                keys.append((item.itemmodule, "cm", item.cmid))
            if item.iteminstance is not None:
                keys.append((item.itemmodule, "instance", item.iteminstance))
        out.append((mark, keys))
    return out

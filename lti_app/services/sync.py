"""Moodle data in: course details, roster, grades and log events, stored idempotently.

Each function takes a `Session` and Moodle data already fetched (or a log source to pull), and
never commits. The log sync is a generator: it yields after every stored page, with the cursor
updated in the same session, so the caller commits page by page and a crash between two pages
loses nothing and duplicates nothing (the next run resumes from the last committed cursor, and
inserts ignore rows already stored).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import (
    Course,
    Enrolment,
    Grade,
    GradeItem,
    LogEvent,
    Person,
    SyncCursor,
    SyncRun,
)
from moodle_client import types as mc
from moodle_client.errors import MalformedResponseError
from moodle_client.logs import LogRow, LogSource

# Columns copied from a log row to a LogEvent (Moodle's `id` becomes `moodle_log_id`).
_LOG_FIELDS = (
    "eventname",
    "component",
    "action",
    "target",
    "objecttable",
    "objectid",
    "crud",
    "edulevel",
    "contextid",
    "contextlevel",
    "contextinstanceid",
    "userid",
    "relateduserid",
    "courseid",
    "timecreated",
    "origin",
)
# Rows per INSERT statement: keeps statements under SQLite's 32k bound-parameter limit.
_INSERT_CHUNK = 1500


def _ts(epoch: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


# --------------------------------------------------------------------------- runs


def start_run(
    session: Session, course: Course, *, trigger: str, source: str, pages_total: int | None = None
) -> SyncRun:
    run = SyncRun(
        site_id=course.site_id,
        course_id=course.id,
        trigger=trigger,
        source=source,
        status="running",
        started_at=utcnow(),
        pages_total=pages_total,
    )
    session.add(run)
    session.flush()
    return run


def finish_run(run: SyncRun, *, error_code: str | None = None, message: str | None = None) -> None:
    run.finished_at = utcnow()
    if error_code is None:
        run.status = "succeeded"
    else:
        run.status = "failed"
        run.error_code = error_code[:100]
        run.error_message = message


def latest_run(session: Session, course_id: int) -> SyncRun | None:
    return session.scalar(
        select(SyncRun)
        .where(SyncRun.course_id == course_id)
        .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
        .limit(1)
    )


# --------------------------------------------------------------------------- course and roster


def refresh_course(course: Course, info: mc.Course) -> None:
    """Copy names and dates from Moodle onto the course row (they change in Moodle)."""
    if info.id != course.moodle_course_id:
        raise MalformedResponseError(
            f"asked for course {course.moodle_course_id}, Moodle answered course {info.id}",
            wsfunction="core_course_get_courses_by_field",
        )
    course.shortname = info.shortname
    course.fullname = info.fullname
    course.start_at = _ts(info.startdate)
    course.end_at = _ts(info.enddate)


def upsert_person(
    session: Session, site_id: int, moodle_user_id: int, fullname: str, email: str | None
) -> Person:
    """Insert or update a person in one statement.

    Two scheduler processes syncing two courses of the same site meet the same people; a
    select-then-insert would race and fail on the unique key, an upsert cannot.
    """
    values: dict[str, Any] = {
        "site_id": site_id,
        "moodle_user_id": moodle_user_id,
        "fullname": fullname,
        "created_at": utcnow(),
    }
    updates: dict[str, Any] = {"fullname": fullname}
    if email:
        values["email"] = updates["email"] = email
    stmt = (
        _insert(session)(Person)
        .values(values)
        .on_conflict_do_update(index_elements=["site_id", "moodle_user_id"], set_=updates)
        .returning(Person.id)
    )
    person_id = session.execute(stmt).scalar_one()
    person = session.get_one(Person, person_id, populate_existing=True)
    return person


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@dataclass(frozen=True)
class RosterResult:
    people: int
    enrolments: int
    deactivated: int


def sync_roster(session: Session, course: Course, users: Iterable[mc.EnrolledUser]) -> RosterResult:
    """Mirror the course's participants and their roles (Moodle role shortnames).

    An enrolment that Moodle no longer reports is deactivated, not deleted: its person's past
    predictions and grades stay explainable.
    """
    seen: set[tuple[int, str]] = set()
    people = 0
    existing = {
        (e.person_id, e.role): e
        for e in session.scalars(select(Enrolment).where(Enrolment.course_id == course.id))
    }
    for user in users:
        person = upsert_person(session, course.site_id, user.id, user.fullname, user.email)
        session.flush()
        people += 1
        roles = [r.shortname for r in user.roles] or ["none"]
        for role in roles:
            key = (person.id, role)
            seen.add(key)
            enrolment = existing.get(key)
            if enrolment is None:
                enrolment = Enrolment(course_id=course.id, person_id=person.id, role=role)
                session.add(enrolment)
                existing[key] = enrolment
            enrolment.active = True
            enrolment.source = "ws"
    deactivated = 0
    for key, enrolment in existing.items():
        if key not in seen and enrolment.active and enrolment.source == "ws":
            enrolment.active = False
            deactivated += 1
    session.flush()
    return RosterResult(people=people, enrolments=len(seen), deactivated=deactivated)


# --------------------------------------------------------------------------- grades


def sync_grades(session: Session, course: Course, report: mc.GradeReport) -> int:
    """Store every grade item and grade of the report; returns the number of grades stored."""
    items: dict[int, GradeItem] = {
        gi.moodle_item_id: gi
        for gi in session.scalars(select(GradeItem).where(GradeItem.course_id == course.id))
    }
    stored = 0
    for usergrades in report.usergrades:
        person = session.scalar(
            select(Person).where(
                Person.site_id == course.site_id, Person.moodle_user_id == usergrades.userid
            )
        )
        if person is None:
            person = upsert_person(
                session, course.site_id, usergrades.userid, usergrades.userfullname, None
            )
            session.flush()
        for item in usergrades.items:
            row = items.get(item.id)
            if row is None:
                row = GradeItem(course_id=course.id, moodle_item_id=item.id)
                session.add(row)
                items[item.id] = row
            row.itemname = item.itemname
            row.itemtype = item.itemtype
            row.itemmodule = item.itemmodule
            row.iteminstance = item.iteminstance
            row.cmid = item.cmid
            row.grademin = item.grademin
            row.grademax = item.grademax
            row.gradepass = item.gradepass
            session.flush()
            set_grade(session, row, person, item.graderaw, _ts(item.gradedategraded))
            stored += 1
            if item.itemtype == "course" and course.grade_max is None:
                course.grade_max = item.grademax
    session.flush()
    return stored


def set_grade(
    session: Session,
    item: GradeItem,
    person: Person,
    value: float | None,
    graded_at: datetime | None,
) -> None:
    grade = session.scalar(
        select(Grade).where(Grade.grade_item_id == item.id, Grade.person_id == person.id)
    )
    if grade is None:
        grade = Grade(grade_item_id=item.id, person_id=person.id)
        session.add(grade)
    grade.value = value
    grade.graded_at = graded_at


# --------------------------------------------------------------------------- logs


def _log_values(site_id: int, source: str, rows: Sequence[LogRow]) -> list[dict[str, Any]]:
    return [
        {
            "site_id": site_id,
            "moodle_log_id": row.id,
            "content_hash": row.content_hash,
            "source": source,
            **{name: getattr(row, name) for name in _LOG_FIELDS},
        }
        for row in rows
    ]


def store_log_rows(session: Session, site_id: int, source: str, rows: Sequence[LogRow]) -> int:
    """Insert rows, silently skipping those already stored (same Moodle log id or same content
    hash on this site). Returns how many were new."""
    if not rows:
        return 0
    insert = _insert(session)
    added = 0
    for start in range(0, len(rows), _INSERT_CHUNK):
        values = _log_values(site_id, source, rows[start : start + _INSERT_CHUNK])
        # RETURNING counts what was really inserted: rowcount is -1 on some drivers.
        stmt = insert(LogEvent).values(values).on_conflict_do_nothing().returning(LogEvent.id)
        added += len(session.execute(stmt).all())
    return added


@dataclass(frozen=True)
class PageProgress:
    pages_done: int
    events_added: int
    cursor: int
    remaining: int | None


def get_cursor(session: Session, course: Course, stream: str) -> SyncCursor:
    cursor = session.scalar(
        select(SyncCursor).where(SyncCursor.course_id == course.id, SyncCursor.stream == stream)
    )
    if cursor is None:
        cursor = SyncCursor(course_id=course.id, stream=stream, last_id=0)
        session.add(cursor)
        session.flush()
    return cursor


def iter_log_sync(
    session: Session, course: Course, source: LogSource, run: SyncRun
) -> Iterator[PageProgress]:
    """Pull the source page by page after the stored cursor; yield after each stored page.

    The page's rows, the cursor and the run's counters are flushed together before the yield:
    commit at each yield and a crash can only lose the page in flight, which the next run asks
    for again.
    """
    cursor = get_cursor(session, course, f"logs:{source.name}")
    for page in source.pages(after=cursor.last_id):
        added = store_log_rows(session, course.site_id, source.name, page.rows)
        if page.cursor is not None and page.cursor > cursor.last_id:
            cursor.last_id = page.cursor
            cursor.updated_at = utcnow()
        run.pages_done += 1
        run.events_added += added
        if page.remaining is not None and run.pages_total is None and page.rows:
            run.pages_total = run.pages_done - 1 + -(-page.remaining // len(page.rows))
        session.flush()
        yield PageProgress(run.pages_done, run.events_added, cursor.last_id, page.remaining)


def mark_stale_runs_failed(session: Session, course_id: int, older_than: datetime) -> int:
    """Runs left 'running' by a killed process are closed, so the history does not lie."""
    res = session.execute(
        update(SyncRun)
        .where(
            SyncRun.course_id == course_id,
            SyncRun.status == "running",
            SyncRun.started_at < older_than,
        )
        .values(
            status="failed",
            finished_at=utcnow(),
            error_code="interrupted",
            error_message="the sync process stopped before finishing; the next run resumes",
        )
        .execution_options(synchronize_session=False)
    )
    return int(res.rowcount)  # type: ignore[attr-defined]

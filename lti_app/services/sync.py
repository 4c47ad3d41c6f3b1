"""Moodle data in: course details, roster, grades and log events, stored idempotently.

Each function takes a `Session` and Moodle data already fetched (or a log source to pull), and
never commits. The log sync is a generator: it yields after every stored page, with the cursor
updated in the same session, so the caller commits page by page and a crash between two pages
loses nothing and duplicates nothing (the next run resumes from the last committed cursor, and
inserts ignore rows already stored).
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import BigInteger, Integer, SmallInteger, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import (
    Course,
    Enrolment,
    Grade,
    GradeItem,
    LogEvent,
    MoodleSite,
    Person,
    SyncCursor,
    SyncRun,
)
from lti_app.services import fairness
from lti_app.services.consent import restore_objections
from lti_app.services.course_settings import refresh_moodle_pass_mark
from moodle_client import types as mc
from moodle_client.client import MoodleClient
from moodle_client.errors import InvalidTokenError, MalformedResponseError, MoodleRemoteError
from moodle_client.logs import LOG_COLUMNS, LogPage, LogRow, LogSource

# Columns copied from a log row to a LogEvent (Moodle's `id` becomes `moodle_log_id`).
_LOG_FIELDS = tuple(c for c in LOG_COLUMNS if c != "id")
# Columns written by store_log_rows, in the order of its value tuples: the site and the source,
# then a LogRow as it is (a named tuple: id, the log fields, content_hash).
_LOG_COLUMNS = ("site_id", "source", "moodle_log_id", *_LOG_FIELDS, "content_hash")
# Rows per INSERT statement: keeps statements under SQLite's 32k bound-parameter limit.
_INSERT_CHUNK = 1500
# store_log_rows's SQL, built from the constant column names above (no outside input).
_COLS = ", ".join(_LOG_COLUMNS)
_SQLITE_INSERT = f"INSERT INTO log_event ({_COLS}) VALUES "  # noqa: S608
_SQLITE_ROW = "(" + ", ".join("?" * len(_LOG_COLUMNS)) + ")"
_PG_COPY = f"COPY log_event ({_COLS}) FROM STDIN"


def _pg_copy_type(name: str) -> str:
    """The PostgreSQL type psycopg should dump a column's values as. Declared up front, COPY
    skips psycopg's per-value choice of a dumper (a third of its formatting time)."""
    column_type = LogEvent.__table__.c[name].type
    if isinstance(column_type, SmallInteger):
        return "int2"
    if isinstance(column_type, BigInteger):
        return "int8"
    return "int4" if isinstance(column_type, Integer) else "text"


_PG_COPY_TYPES = [_pg_copy_type(name) for name in _LOG_COLUMNS]
_PG_SAVEPOINT = "arche_log_copy"
# The slow path stages the rows in a temporary table that lives for the transaction only (so it
# also works behind a transaction-pooling pgbouncer), then inserts them skipping conflicts.
_PG_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS arche_log_stage ON COMMIT DROP AS "  # noqa: S608
    f"SELECT {_COLS}, 0::bigint AS stage_order FROM log_event WITH NO DATA"
)
_PG_STAGE_COPY = f"COPY arche_log_stage ({_COLS}, stage_order) FROM STDIN"
_PG_INSERT = (
    f"INSERT INTO log_event ({_COLS}) SELECT {_COLS} FROM arche_log_stage "  # noqa: S608
    "ORDER BY stage_order ON CONFLICT DO NOTHING RETURNING id"
)


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
    # Moodle's dates win; a date Moodle does not have (enddate 0, "no end date") keeps the one
    # set in the tool (`course update --end`), which the next sync would otherwise erase.
    course.start_at = _ts(info.startdate) or course.start_at
    course.end_at = _ts(info.enddate) or course.end_at


def refresh_pass_mark(course: Course, client: MoodleClient) -> str | None:
    """Moodle's pass mark (the course total's "Grade to pass") through the companion plugin.

    Returns None when read, or why it could not be (a plugin older than 0.2.0, a service
    without the function, a missing capability, an odd answer): the pass mark is optional, the
    last value read stays, and the sync goes on. A wrong token is not optional: it is raised.
    """
    try:
        grading = client.get_course_grading(course.moodle_course_id)
    except InvalidTokenError:
        raise
    except (MoodleRemoteError, MalformedResponseError) as exc:
        return str(exc)
    numeric = grading.gradetype == 1  # a scale or text total has no numeric pass mark
    refresh_moodle_pass_mark(course, grading.gradepass if numeric else 0.0, grading.grademax)
    return None


def upsert_person(
    session: Session, site_id: int, moodle_user_id: int, fullname: str, email: str | None
) -> Person:
    """Insert or update a person in one statement.

    Two scheduler processes syncing two courses of the same site meet the same people; a
    select-then-insert would race and fail on the unique key, an upsert cannot.
    """
    person_id = upsert_people(session, site_id, [(moodle_user_id, fullname, email)])[moodle_user_id]
    return session.get_one(Person, person_id, populate_existing=True)


# ORM bulk inserts leave a None out of the row, and batch together only rows that leave out the
# same columns: rows with and without an email alternating would go one statement each. The
# columns written as None here have no default, so an explicit NULL stores the same.
_ONE_BATCH = {"render_nulls": True}


def upsert_people(
    session: Session, site_id: int, people: Sequence[tuple[int, str, str | None]]
) -> dict[int, int]:
    """Insert or update people, given as (Moodle user id, full name, email): {user id: our id}.

    One upsert compiled once and run over all the people (executemany, which SQLAlchemy sends
    as batched multi-row statements) rather than a statement each: a 10k-student roster is
    then ten round trips, not ten thousand; a multi-row VALUES built per chunk cost ~0.2 ms a
    row to compile. An empty email keeps the one stored (the grade report, for one, names no
    email).
    """
    unique = {int(uid): (fullname, email or None) for uid, fullname, email in people}
    if not unique:
        return {}
    now = utcnow()
    stmt = dialect_insert(session)(Person)
    stmt = stmt.on_conflict_do_update(
        index_elements=["site_id", "moodle_user_id"],
        set_={
            "fullname": stmt.excluded.fullname,
            "email": func.coalesce(stmt.excluded.email, Person.email),
        },
    ).returning(Person.moodle_user_id, Person.id)
    rows = [
        {
            "site_id": site_id,
            "moodle_user_id": uid,
            "fullname": fullname,
            "email": email,
            "created_at": now,
        }
        for uid, (fullname, email) in unique.items()
    ]
    result = session.execute(stmt, rows, execution_options=_ONE_BATCH)
    ids = {int(uid): int(pid) for uid, pid in result.all()}
    restore_objections(session, site_id, ids)
    # People already loaded in this session would hide the new names.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Person) and obj.site_id == site_id and obj.moodle_user_id in unique:
            session.expire(obj)
    return ids


def dialect_insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT on both SQLite and PostgreSQL."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@dataclass(frozen=True)
class RosterResult:
    people: int
    enrolments: int
    deactivated: int


def sync_roster(session: Session, course: Course, users: Iterable[mc.EnrolledUser]) -> RosterResult:
    """Mirror the course's participants, their roles (Moodle role shortnames) and the profile
    attributes the site declared for its fairness audit.

    An enrolment that Moodle no longer reports is deactivated, not deleted: its person's past
    predictions and grades stay explainable.
    """
    users = list(users)
    person_ids = upsert_people(
        session, course.site_id, [(u.id, u.fullname, u.email) for u in users]
    )
    roles = {(person_ids[u.id], r.shortname) for u in users for r in u.roles}
    roles |= {(person_ids[u.id], "none") for u in users if not u.roles}
    deactivated = set_enrolments(session, course, roles, source="ws")
    # The attributes the site declared for its fairness audit (#18, item 7), and only those.
    declared = session.scalar(
        select(MoodleSite.fairness_groups).where(MoodleSite.id == course.site_id)
    )
    fairness.store_attributes(session, declared or [], person_ids, users)
    return RosterResult(people=len(person_ids), enrolments=len(roles), deactivated=deactivated)


def set_enrolments(
    session: Session, course: Course, roles: set[tuple[int, str]], *, source: str
) -> int:
    """Make exactly `roles` (person id, role) the active enrolments from `source`.

    Enrolments from `source` that are not listed are deactivated (not deleted); those of other
    sources (an LTI launch, a CSV import) are left as they are. Returns how many went inactive.
    """
    existing = {
        (e.person_id, e.role): e
        for e in session.scalars(select(Enrolment).where(Enrolment.course_id == course.id))
    }
    new = []
    for key in roles:
        enrolment = existing.get(key)
        if enrolment is None:
            new.append(Enrolment(course_id=course.id, person_id=key[0], role=key[1]))
            enrolment = new[-1]
        enrolment.active = True
        enrolment.source = source
    session.add_all(new)
    deactivated = 0
    for key, enrolment in existing.items():
        if key not in roles and enrolment.active and enrolment.source == source:
            enrolment.active = False
            deactivated += 1
    session.flush()
    return deactivated


# --------------------------------------------------------------------------- grades


def sync_grades(session: Session, course: Course, report: mc.GradeReport) -> int:
    """Store every grade item and grade of the report; returns the number of grades stored.

    Each grade keeps its own user's `grademax`: under Moodle's default natural aggregation
    ("exclude empty grades") the course total is out of 120 for a student with the quiz graded
    and out of 100 for one without, so no single maximum scales everyone. An item's own
    `grademax` (and the course's `grade_max`, when not set yet) is the largest maximum among
    the users with a grade (among all users when nobody has one): the full course, whatever the
    order of the users in the report.
    """
    items: dict[int, GradeItem] = {
        gi.moodle_item_id: gi
        for gi in session.scalars(select(GradeItem).where(GradeItem.course_id == course.id))
    }
    # The report names each user (a grade can come before the roster sync sees them).
    known = upsert_people(
        session, course.site_id, [(ug.userid, ug.userfullname, None) for ug in report.usergrades]
    )
    grades: dict[int, list[GradeRow]] = {}
    maxima: dict[int, tuple[float, float]] = {}  # item id -> (largest graded max, largest max)
    for usergrades in report.usergrades:
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
            row.gradepass = item.gradepass
            graded, largest = maxima.get(item.id, (float("-inf"), float("-inf")))
            if item.graderaw is not None:
                graded = max(graded, item.grademax)
            maxima[item.id] = (graded, max(largest, item.grademax))
            grades.setdefault(item.id, []).append(
                (
                    known[usergrades.userid],
                    item.graderaw,
                    _ts(item.gradedategraded),
                    item.grademax,
                )
            )
    for moodle_item_id, (graded, largest) in maxima.items():
        row = items[moodle_item_id]
        row.grademax = graded if graded > float("-inf") else largest
        if row.itemtype == "course" and course.grade_max is None:
            course.grade_max = row.grademax
    session.flush()
    for moodle_item_id, values in grades.items():
        set_grades(session, items[moodle_item_id], values)
    return sum(len(v) for v in grades.values())


# A grade to store: (person id, value, graded at, this user's maximum or None for the item's).
GradeRow = tuple[int, float | None, datetime | None, float | None]


def set_grades(session: Session, item: GradeItem, grades: Sequence[GradeRow]) -> None:
    """Upsert an item's grades, given as (person id, value, graded at, maximum), by one
    statement run over all of them (executemany); a person listed twice keeps the last value,
    as row-by-row updates would. The maximum is that user's own (see `sync_grades`); None means
    the item's `grademax`."""
    latest = {person_id: (value, at, top) for person_id, value, at, top in grades}
    if not latest:
        return
    stmt = dialect_insert(session)(Grade)
    stmt = stmt.on_conflict_do_update(
        index_elements=["grade_item_id", "person_id"],
        set_={
            "value": stmt.excluded.value,
            "grade_max": stmt.excluded.grade_max,
            "graded_at": stmt.excluded.graded_at,
            "updated_at": utcnow(),
        },
    )
    session.execute(
        stmt,
        [
            {
                "grade_item_id": item.id,
                "person_id": pid,
                "value": value,
                "grade_max": top,
                "graded_at": graded_at,
            }
            for pid, (value, graded_at, top) in latest.items()
        ],
        execution_options=_ONE_BATCH,
    )
    # Grade rows already loaded in this session would hide the new values.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Grade) and obj.grade_item_id == item.id and obj.person_id in latest:
            session.expire(obj)


# --------------------------------------------------------------------------- logs


def store_log_rows(session: Session, site_id: int, source: str, rows: Iterable[LogRow]) -> int:
    """Insert rows, silently skipping those already stored (same Moodle log id or same content
    hash on this site). Returns how many were new.

    This is the ingest hot path (a page of 5000 rows per call, a whole file for a CSV import),
    so it bypasses SQLAlchemy's statement compiler and builds no per-row objects: each value
    tuple is the site, the source and the LogRow (a named tuple) spliced in as it is.
    PostgreSQL gets the rows by COPY (see `_copy_log_rows`); SQLite gets one prepared INSERT
    ... ON CONFLICT DO NOTHING run by `executemany`, counting what was really inserted from
    the connection's change counter (RETURNING is not allowed there, and rowcount is not
    reliable with ON CONFLICT).

    `rows` may be a lazy iterable (a CSV import's `LogScan.rows`): PostgreSQL then stores the
    first rows while the next are being read. If it raises, nothing of this call is stored
    and the session's transaction is left as it was; the error propagates.
    """
    if isinstance(rows, Sequence) and not rows:
        return 0
    session.flush()  # pending ORM changes (a new site) go first, as session.execute would do
    prefix = (site_id, source)
    values = (prefix + row for row in rows)
    if session.get_bind().dialect.name == "postgresql":
        return _copy_log_rows(session, values)
    # SQLite works in this process: nothing to overlap, so the rows are read before any insert.
    return _sqlite_insert_log_rows(session, list(values))


def _sqlite_insert_log_rows(session: Session, values: Sequence[tuple[Any, ...]]) -> int:
    if not values:
        return 0
    driver = session.connection().connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    before = driver.total_changes
    cur = driver.cursor()
    try:
        cur.executemany(_SQLITE_INSERT + _SQLITE_ROW + " ON CONFLICT DO NOTHING", values)
    finally:
        cur.close()
    return driver.total_changes - before


def _copy_log_rows(session: Session, values: Iterable[tuple[Any, ...]]) -> int:
    """PostgreSQL: COPY straight into log_event; if a row is already there, redo the call
    through a staging table and INSERT ... ON CONFLICT DO NOTHING.

    A sync page is almost always new rows (the cursor moves forward, a crashed page was rolled
    back), and COPY into the table costs half of staging plus INSERT ... SELECT: no second
    copy of the rows, no sort, no speculative insertion per row. The unique indexes on
    (site, Moodle log id) and (site, content hash) still guard the table: a row already stored
    (a re-import, a second process syncing the same course, a source switched from ``db`` to
    ``ws`` that starts over) makes the COPY fail with a unique violation, which rolls back to a
    savepoint taken before it, and the slow path then stores exactly the new rows, in order.
    One savepoint per call, not per chunk, so a big CSV import never overflows PostgreSQL's
    per-transaction cache of subtransactions.

    The rows are sent as `values` gives them, and kept for the slow path. The server inserts
    (its index upkeep is most of a CSV import's storing) while the values are still being
    read: a 1M-event import spent 10 of its 11 s of storing waiting for it. If `values`
    raises (a file refused halfway), the COPY ends as it is, is rolled back to the savepoint,
    and that error is raised: ending it with the error instead made psycopg log a misleading
    "error ignored ... duplicate key value" warning whenever the refused file had been stored
    before.
    """
    driver = session.connection().connection.driver_connection
    assert driver is not None
    pending = iter(values)
    sent: list[tuple[Any, ...]] = []
    refused: Exception | None = None
    with driver.cursor() as cur:
        cur.execute(f"SAVEPOINT {_PG_SAVEPOINT}")
        try:
            with cur.copy(_PG_COPY) as copy:
                copy.set_types(_PG_COPY_TYPES)
                while True:
                    try:
                        row_values = next(pending)
                    except StopIteration:
                        break
                    except Exception as error:  # noqa: BLE001 - raised once the COPY is undone
                        refused = error
                        break
                    sent.append(row_values)
                    copy.write_row(row_values)
            if refused is not None:
                raise refused  # the COPY went through: undone below like any failure
        except BaseException as error:
            cur.execute(f"ROLLBACK TO SAVEPOINT {_PG_SAVEPOINT}")
            cur.execute(f"RELEASE SAVEPOINT {_PG_SAVEPOINT}")
            if refused is not None and isinstance(error, Exception):  # never hide a Ctrl-C
                raise refused from None
            if not isinstance(error, psycopg.errors.UniqueViolation):
                raise
            sent.extend(pending)  # what the failed COPY had not reached
            return _stage_log_rows(cur, sent)
        cur.execute(f"RELEASE SAVEPOINT {_PG_SAVEPOINT}")
        return len(sent)


def _stage_log_rows(cur: psycopg.Cursor[Any], values: Sequence[tuple[Any, ...]]) -> int:
    """The slow path: COPY into a transaction-scoped temporary table, then insert in the
    page's order, skipping conflicts; RETURNING counts what was inserted."""
    cur.execute(_PG_STAGE)
    cur.execute("TRUNCATE arche_log_stage")
    with cur.copy(_PG_STAGE_COPY) as copy:
        copy.set_types([*_PG_COPY_TYPES, "int8"])
        for order, row_values in enumerate(values):
            copy.write_row((*row_values, order))
    cur.execute(_PG_INSERT)
    return len(cur.fetchall())


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


class _PageFeed:
    """What the prefetching thread hands over: a page, the source's error, or the end."""

    __slots__ = ("error", "page")

    def __init__(self, page: LogPage | None, error: BaseException | None = None) -> None:
        self.page = page
        self.error = error


def prefetched(pages: Iterator[LogPage], poll_s: float = 0.1) -> Generator[LogPage, None, None]:
    """The same pages, in order, with the next one fetched in a thread while the caller stores
    the current one.

    A page's fetch is mostly waiting (Moodle composing the answer, the network) and its store
    mostly waiting too (PostgreSQL inserting); done one after the other, each wait left the
    client idle. One page ahead at most, so memory stays at two pages. An error of the source
    is raised here after the pages before it, exactly where the plain loop would raise it. When
    the caller stops early (an error while storing, the generator closed), the thread stops
    after the fetch in flight and closes the source itself; it is a daemon, so a fetch stuck
    until its timeout never holds the process.
    """
    feed: queue.Queue[_PageFeed] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item: _PageFeed) -> bool:
        while not stop.is_set():
            try:
                feed.put(item, timeout=poll_s)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not hand_over(_PageFeed(page)):
                    return
            hand_over(_PageFeed(None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            hand_over(_PageFeed(None, exc))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="log-page-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = feed.get()
            if item.error is not None:
                raise item.error
            if item.page is None:
                return
            yield item.page
    finally:
        stop.set()


def iter_log_sync(
    session: Session, course: Course, source: LogSource, run: SyncRun
) -> Iterator[PageProgress]:
    """Pull the source page by page after the stored cursor; yield after each stored page.

    The page's rows, the cursor and the run's counters are flushed together before the yield:
    commit at each yield and a crash can only lose the page in flight, which the next run asks
    for again. The next page is fetched while this one is stored (`prefetched`).
    """
    cursor = get_cursor(session, course, f"logs:{source.name}")
    for page in prefetched(source.pages(after=cursor.last_id)):
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

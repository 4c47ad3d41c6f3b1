"""Course data between the database and `ml`: offerings out, simulated courses in.

`load_offering` turns one course's stored roster, events and course totals into the
`ml.dataset.Offering` the ML package works on (DataFrames, no ORM objects), reading events with
one SQL query into columns. `store_simulated_course` does the reverse for the simulator, so the
demo, the tests and the benchmarks run the real sync tables and the real scoring on
realistic data.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from lti_app.models import (
    Course,
    Enrolment,
    Grade,
    GradeItem,
    LogEvent,
    MoodleSite,
    Person,
)
from lti_app.services.consent import used_clause
from lti_app.services.courses import STUDENT_ROLES as STUDENT_ROLES
from lti_app.services.courses import course_term, link_past_offering
from lti_app.services.sync import set_enrolments, set_grades, store_log_rows, upsert_people
from ml.dataset import Offering
from ml.events import READ_LOG_COLUMNS, from_standard_log
from moodle_client.logs import LOG_COLUMNS, LogRow
from simulation.course import SimulatedCourse, SimulatedOffering

# Enrolment roles that make someone a student of a course: Moodle's role shortname from the web
# service ("student"), or the LTI/Names-and-Roles role ("learner").
# Roles that make someone a teacher of a course, whatever other role they hold there: Moodle's
# teaching archetypes' shortnames, and the LTI role of an Instructor launch ("teacher"). A
# teacher who is also enrolled as a student (to try the course as one) is not a student.
TEACHER_ROLES = ("editingteacher", "teacher", "manager", "coursecreator")


class CourseDataError(ValueError):
    """A course whose data cannot feed a model, with the reason in words."""


def student_roster(session: Session, course: Course) -> pd.DataFrame:
    """Active students with a Moodle user id: `userid` (Moodle) and `person_id` (ours). A
    person with an active teaching role in the course (`TEACHER_ROLES`) is not one of them,
    even when also enrolled as a student, nor a learner whose data may not be used
    (`consent`: opted out, or not opted in on an opt-in site)."""
    role = aliased(Enrolment)
    teaching = (
        select(role.id)
        .where(
            role.course_id == course.id,
            role.person_id == Person.id,
            role.active,
            role.role.in_(TEACHER_ROLES),
        )
        .exists()
    )
    rows = session.execute(
        select(Person.moodle_user_id, Person.id)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .where(
            Enrolment.course_id == course.id,
            Enrolment.active,
            Enrolment.role.in_(STUDENT_ROLES),
            Person.moodle_user_id.is_not(None),
            ~teaching,
            # A learner who opted out (or, on an opt-in site, has not opted in): no estimate,
            # no training row, no aggregate (#18, item 2).
            used_clause(session, course),
        )
        .distinct()
        .order_by(Person.moodle_user_id)
    ).all()
    return pd.DataFrame(
        {
            "userid": np.array([r[0] for r in rows], dtype=np.int64),
            "person_id": np.array([r[1] for r in rows], dtype=np.int64),
        }
    )


#: What `load_log_frame` reads: Moodle's log id (the tie-break of equal times) and the columns
#: `ml.events.from_standard_log` uses; the integer ones may be NULL (a CSV-imported row has no
#: log id, most rows no related user).
_FRAME_COLUMNS = ("id", *READ_LOG_COLUMNS)
_TEXT_COLUMNS = ("eventname", "component", "crud")
_BLOCK = 20_000


def load_log_frame(session: Session, course: Course, until: datetime | None = None) -> pd.DataFrame:
    """The course's stored log rows (`_FRAME_COLUMNS`), optionally up to `until` (inclusive).

    Read column-wise, not as ORM rows: on PostgreSQL as CSV blocks parsed by pandas' C reader,
    on SQLite the driver's tuples transposed once. Building a row object per event
    was most of a 10,000-student course's scoring (23 s of 42 for 1.2M events); the event
    names arrive as categories, so the features never re-hash millions of strings.
    """
    columns = [LogEvent.moodle_log_id.label("id")] + [
        getattr(LogEvent, c) for c in READ_LOG_COLUMNS
    ]
    query = select(*columns).where(
        LogEvent.site_id == course.site_id, LogEvent.courseid == course.moodle_course_id
    )
    if until is not None:
        query = query.where(LogEvent.timecreated <= int(until.timestamp()))
    session.flush()  # the raw driver below does not see pending ORM rows otherwise
    connection = session.connection()
    # Only integers are bound (ids and a timestamp), so the literal SQL is safe to inline.
    sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        frame = _copy_frame(driver, sql)
    else:
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            rows = cursor.execute(sql).fetchall()
        finally:
            cursor.close()
        frame = _tuples_frame(rows)
    for name in _TEXT_COLUMNS:
        frame[name] = frame[name].astype("category")
    return frame


def _copy_frame(driver: Any, sql: str) -> pd.DataFrame:
    """The rows of `sql` as CSV parsed by pandas. The server joins them into blocks of
    `_BLOCK` lines first: COPY hands over one protocol message per row, and psycopg took 3.4 s
    of a 1.2M-event read just to receive them."""
    fields = ", ".join(
        f"'\"' || replace(coalesce(q.{c}, ''), '\"', '\"\"') || '\"'"
        if c in _TEXT_COLUMNS
        else f"coalesce(q.{c}::text, '')"
        for c in _FRAME_COLUMNS
    )
    # Our own column names and an SQL compiled with integer literals only: nothing from outside.
    blocks = (
        f"SELECT string_agg(concat_ws(',', {fields}), E'\\n') FROM "  # noqa: S608
        f"(SELECT *, (row_number() OVER () - 1) / {_BLOCK} AS block FROM ({sql}) AS r) AS q "
        "GROUP BY block ORDER BY block"
    )
    buffer = io.BytesIO()
    with driver.cursor() as cursor:
        cursor.execute(blocks)
        for (block,) in cursor:
            buffer.write(block.encode("utf-8"))
            buffer.write(b"\n")
    buffer.seek(0)
    if not buffer.getbuffer().nbytes:
        return _tuples_frame([])
    numeric = [c for c in _FRAME_COLUMNS if c not in _TEXT_COLUMNS]
    return pd.read_csv(
        buffer,
        header=None,
        names=list(_FRAME_COLUMNS),
        # Text stays text (an empty component is '', not NaN); an empty integer is NULL.
        dtype=dict.fromkeys(_TEXT_COLUMNS, "object"),
        keep_default_na=False,
        na_values={c: [""] for c in numeric},
    )


def _tuples_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _FRAME_COLUMNS})
    values = list(zip(*rows, strict=True))
    data: dict[str, Any] = {}
    for name, column in zip(_FRAME_COLUMNS, values, strict=True):
        if name in _TEXT_COLUMNS:
            data[name] = np.array(column, dtype=object)
        elif None in column:
            # Float where NULLs are (NaN), as pandas reads a CSV column with blanks.
            data[name] = np.array([np.nan if v is None else v for v in column], dtype=np.float64)
        else:
            data[name] = np.array(column, dtype=np.int64)
    return pd.DataFrame(data)


@dataclass(frozen=True)
class CourseTotals:
    """Raw course totals by Moodle user id, each user's own maximum, and the item's range.

    `maxima` holds each user's maximum (Moodle's natural aggregation gives a student with the
    quiz graded a total out of 120 and one without out of 100); NaN for grades stored before
    migration 0005, which are out of `grade_max`.
    """

    values: pd.Series
    maxima: pd.Series
    grade_min: float
    grade_max: float


def course_totals(session: Session, course: Course) -> CourseTotals:
    """The course's stored course totals, with each user's own maximum."""
    item = session.scalar(
        select(GradeItem)
        .where(GradeItem.course_id == course.id, GradeItem.itemtype == "course")
        .order_by(GradeItem.moodle_item_id.desc())
        .limit(1)
    )
    if item is None:
        empty = pd.Series(dtype=float)
        return CourseTotals(empty, empty, 0.0, float(course.grade_max or 100.0))
    rows = session.execute(
        select(Person.moodle_user_id, Grade.value, Grade.grade_max)
        .join(Grade, Grade.person_id == Person.id)
        .where(Grade.grade_item_id == item.id, Person.moodle_user_id.is_not(None))
    ).all()
    index = pd.Index(np.array([r[0] for r in rows], dtype=np.int64), name="userid")

    def column(i: int) -> pd.Series:
        return pd.Series(
            np.array([np.nan if r[i] is None else r[i] for r in rows], dtype=np.float64),
            index=index,
        )

    return CourseTotals(column(1), column(2), float(item.grademin), float(item.grademax))


def load_offering(
    session: Session,
    course: Course,
    *,
    until: datetime | None = None,
    with_grades: bool = True,
    term_length: pd.Timedelta | None = None,
) -> Offering:
    """One course as an `Offering`: canonical events (up to `until`), students, dates, grades.

    The dates are `course_term`'s; `term_length` (the past offerings' usual length) stands in
    for a missing end date.
    """
    events = from_standard_log(
        load_log_frame(session, course, until), courseid=course.moodle_course_id
    )
    roster = student_roster(session, course)
    term = course_term(course, events, term_length=term_length)
    if term is None:
        raise CourseDataError(
            f"course {course.shortname or course.id} has no dates and no events to date its term"
        )
    empty = pd.Series(dtype=float)
    totals = course_totals(session, course) if with_grades else CourseTotals(empty, empty, 0, 100)
    return Offering(
        offering_id=f"course-{course.id}",
        events=events,
        roster=roster[["userid"]],
        course_start=term.start,
        course_end=term.end,
        grades=totals.values,
        grade_min=totals.grade_min,
        grade_max=totals.grade_max,
        grade_maxes=totals.maxima,
    )


# --------------------------------------------------------------------------- simulator -> DB


def _log_rows(frame: pd.DataFrame) -> list[LogRow]:
    """Standard-log rows (as the simulator writes them) to the sync's `LogRow`s.

    Column by column (one `tolist` each, missing values as None), then one tuple per row: a
    million-event simulated course converts in about a second, where a dict per row took half a
    minute and dominated storing a big course for the benchmarks and the demo.
    """
    ints = {"id", "objectid", "edulevel", "contextid", "contextlevel", "contextinstanceid",
            "userid", "relateduserid", "courseid", "timecreated"}  # fmt: skip
    columns: list[list[Any]] = []
    for name in LOG_COLUMNS:
        col = frame[name]
        missing = col.isna().to_numpy()
        values: list[Any] = (
            col.fillna(0).astype("int64") if name in ints else col.astype(object).astype(str)
        ).tolist()
        if missing.any():
            for i in missing.nonzero()[0].tolist():
                values[i] = None
        columns.append(values)
    columns.append([None] * len(frame))  # content_hash: ws rows are identified by their id
    return [LogRow._make(row) for row in zip(*columns, strict=True)]


def store_simulated_offering(
    session: Session, site: MoodleSite, off: SimulatedOffering, *, with_grades: bool
) -> Course:
    """Write one simulated offering as the sync would: course, roster, log rows, grades."""
    course = session.scalar(
        select(Course).where(Course.site_id == site.id, Course.moodle_course_id == off.courseid)
    )
    if course is None:
        course = Course(site_id=site.id, moodle_course_id=off.courseid)
        session.add(course)
    course.shortname = f"{off.spec.shortname}-{off.start.year}"
    course.fullname = f"{off.spec.fullname} ({off.start.year})"
    course.start_at = off.start.to_pydatetime().astimezone(UTC)
    course.end_at = off.end.to_pydatetime().astimezone(UTC)
    course.grade_max = float(off.spec.grademax)
    session.flush()
    users = off.users
    people = upsert_people(
        session,
        site.id,
        [
            (int(uid), str(name), email or None)
            for uid, name, email in zip(
                users["userid"], users["fullname"], users["email"], strict=True
            )
        ],
    )
    set_enrolments(
        session,
        course,
        {
            (people[int(uid)], "student" if role == "student" else "editingteacher")
            for uid, role in zip(users["userid"], users["role"], strict=True)
        },
        source="ws",
    )
    store_log_rows(session, site.id, "ws", _log_rows(off.log))
    if with_grades and not off.is_current:
        item = session.scalar(
            select(GradeItem).where(
                GradeItem.course_id == course.id, GradeItem.itemtype == "course"
            )
        )
        if item is None:
            item = GradeItem(
                course_id=course.id,
                moodle_item_id=1,
                itemname="Course total",
                itemtype="course",
                grademin=0.0,
                grademax=float(off.spec.grademax),
            )
            session.add(item)
            session.flush()
        graded_at = off.end.to_pydatetime()
        set_grades(
            session,
            item,
            [
                (
                    people[int(uid)],
                    None if np.isnan(total) else float(total),
                    graded_at,
                    float(off.spec.grademax),
                )
                for uid, total in zip(
                    off.grades["userid"], off.grades["course_total"].astype(float), strict=True
                )
            ],
        )
    session.flush()
    return course


def store_simulated_course(
    session: Session, site: MoodleSite, simulated: SimulatedCourse
) -> tuple[Course, Sequence[Course]]:
    """All offerings of a simulated course; the current one linked to the past ones."""
    past = [
        store_simulated_offering(session, site, off, with_grades=True) for off in simulated.past
    ]
    current_off = simulated.current
    if current_off is None:
        raise CourseDataError("the simulated course has no current offering")
    current = store_simulated_offering(session, site, current_off, with_grades=False)
    for p in past:
        link_past_offering(session, current, p.id)
    session.flush()
    return current, past

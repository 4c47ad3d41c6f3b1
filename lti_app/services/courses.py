"""Courses and their lineage: which past offerings train the models of a current course."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import (
    Course,
    CourseLineage,
    Enrolment,
    Grade,
    GradeItem,
    LogEvent,
    MoodleSite,
    SyncRun,
)
from lti_app.services.sites import normalise_base_url

if TYPE_CHECKING:  # pandas is imported where a term is computed: `course list` needs none
    import pandas as pd


class CourseError(ValueError):
    """A course operation that cannot be done, worded for the admin."""


def add_course(
    session: Session,
    site_url: str,
    moodle_course_id: int,
    *,
    shortname: str = "",
    past: Iterable[int] = (),
    start: datetime | None = None,
    end: datetime | None = None,
) -> Course:
    url = normalise_base_url(site_url)
    site = session.scalar(select(MoodleSite).where(MoodleSite.base_url == url))
    if site is None:
        raise CourseError(f"no Moodle site {url}; register it with `arche-predict site add`")
    course = session.scalar(
        select(Course).where(Course.site_id == site.id, Course.moodle_course_id == moodle_course_id)
    )
    if course is None:
        course = Course(site_id=site.id, moodle_course_id=moodle_course_id, shortname=shortname)
        session.add(course)
        session.flush()
    for past_id in past:
        link_past_offering(session, course, past_id)
    set_course_dates(session, course, start=start, end=end)
    return course


def is_csv_only(site: MoodleSite) -> bool:
    """A site registered without a web-service token (`site add --no-token`): its data comes
    from CSV imports only, so there is nothing for a sync to pull."""
    return site.ws_token_encrypted is None and site.log_source == "csv"


#: The Moodle roles whose people the models learn from and score (students; "learner" from LTI).
STUDENT_ROLES = ("student", "learner")


def nightly_course_ids(session: Session) -> list[int]:
    """The courses the nightly sync processes: sync enabled, on a site it can reach. A CSV-only
    site's courses are left out (a sync could only record a failure for them every night).

    Largest first (ties by id): a course's night is mostly training on its past offerings'
    people and scoring its own, so the courses come by those enrolments, most first. Workers
    taking the queue in that order finish close together, instead of one working alone on a
    big course at the end while the others wait (longest-first list scheduling); a course
    whose roster is not synced yet counts as small. Only active students count, as in the
    data the models read."""
    csv_only = MoodleSite.ws_token_encrypted.is_(None) & (MoodleSite.log_source == "csv")
    students = (
        select(func.count())
        .select_from(Enrolment)
        .where(Enrolment.active, Enrolment.role.in_(STUDENT_ROLES))
    )
    own = students.where(Enrolment.course_id == Course.id).correlate(Course).scalar_subquery()
    past = (
        students.join(CourseLineage, CourseLineage.past_course_id == Enrolment.course_id)
        .where(CourseLineage.course_id == Course.id, CourseLineage.status == "active")
        .correlate(Course)
        .scalar_subquery()
    )
    return list(
        session.scalars(
            select(Course.id)
            .join(MoodleSite, MoodleSite.id == Course.site_id)
            .where(Course.sync_enabled, ~csv_only)
            .order_by((own + past).desc(), Course.id)
        )
    )


def set_course_dates(
    session: Session, course: Course, *, start: datetime | None, end: datetime | None
) -> None:
    """Set the start and/or end date (None leaves one as it is).

    A course imported from CSV files has no dates, and without them its term is a guess (see
    `course_term`); the next sync overwrites them with Moodle's own.
    """
    new_start = start if start is not None else course.start_at
    new_end = end if end is not None else course.end_at
    if new_start is not None and new_end is not None and _utc(new_end) <= _utc(new_start):
        raise CourseError(
            f"the end ({_utc(new_end):%Y-%m-%d %H:%M} UTC) must come after the start "
            f"({_utc(new_start):%Y-%m-%d %H:%M} UTC)"
        )
    course.start_at = new_start
    course.end_at = new_end
    session.flush()


def parse_moment(text: str, timezone: str) -> datetime:
    """A date (`2025-03-01`, midnight) or date and time from the command line, in `timezone`
    unless it names its own offset; a `CourseError` in words otherwise (no traceback)."""
    import pandas as pd

    try:
        parsed: object = pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        parsed = None
    if not isinstance(parsed, pd.Timestamp) or pd.isna(parsed):
        raise CourseError(f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM")
    stamp = parsed
    try:
        stamp = stamp.tz_localize(timezone) if stamp.tzinfo is None else stamp
    except Exception as exc:  # noqa: BLE001  (an unknown zone or a time that does not exist)
        raise CourseError(f"{text!r} cannot be placed in time zone {timezone}: {exc}") from None
    return stamp.tz_convert("UTC").to_pydatetime()


def link_past_offering(session: Session, course: Course, past_course_id: int) -> None:
    past = session.get(Course, past_course_id)
    if past is None:
        raise CourseError(f"no course with id {past_course_id}")
    if past.id == course.id:
        raise CourseError("a course cannot be its own past offering")
    if past.site_id != course.site_id:
        raise CourseError("a past offering must be on the same Moodle site")
    exists = session.scalar(
        select(CourseLineage).where(
            CourseLineage.course_id == course.id, CourseLineage.past_course_id == past.id
        )
    )
    if exists is None:
        session.add(CourseLineage(course_id=course.id, past_course_id=past.id))
    elif exists.status != "active":
        # An administrator's link (the command line) decides a teacher's pending or rejected one.
        exists.status = "active"
        exists.decided_at = utcnow()


def past_offerings(session: Session, course_id: int) -> list[Course]:
    """The past offerings whose outcomes train the course's models: active links only (a
    teacher's link waiting for an administrator's approval, or rejected, trains nothing)."""
    return list(
        session.scalars(
            select(Course)
            .join(CourseLineage, CourseLineage.past_course_id == Course.id)
            .where(CourseLineage.course_id == course_id, CourseLineage.status == "active")
            .order_by(Course.start_at, Course.id)
        )
    )


# --------------------------------------------------------------------------- the term


@dataclass(frozen=True)
class Term:
    """A course's term as the scoring sees it, and where each end came from.

    `start` is the course's start date, else its first event (Moodle's log download has no
    dates); `end` is its end date, else `start` plus the past offerings' usual length
    (`end_inferred`), else its last event. Past and current offerings follow the same rules, so
    "week 4 of 12" means the same thing on both sides of the training.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    end_inferred: bool = False


def _utc(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def course_term(
    course: Course, events: pd.DataFrame, *, term_length: pd.Timedelta | None = None
) -> Term | None:
    """The course's term (see `Term`), None with no start and no events to take one from;
    `term_length` is the past offerings' usual length.

    Without an end date, a running course's events stop at today: taking their span as the term
    made every mid-term scoring look like the end of term (progress 100%), which trained the
    end-of-term model and scored a half-finished course with it.
    """
    import pandas as pd

    if course.start_at is not None:
        start = _utc(course.start_at)
    elif not events.empty:
        start = _utc(events["time"].min())
    else:
        return None
    if course.end_at is not None and _utc(course.end_at) > start:
        return Term(start, _utc(course.end_at))
    if term_length is not None and term_length > pd.Timedelta(0):
        return Term(start, start + term_length, end_inferred=True)
    if events.empty:
        return None
    # A finished offering without an end date (a CSV-only past offering): its activity's span.
    return Term(start, max(start, _utc(events["time"].max())))


def _event_span(session: Session, course: Course) -> pd.DataFrame:
    """The first and last stored log event of the course, as `course_term` reads them."""
    import pandas as pd

    first, last = session.execute(
        select(func.min(LogEvent.timecreated), func.max(LogEvent.timecreated)).where(
            LogEvent.site_id == course.site_id, LogEvent.courseid == course.moodle_course_id
        )
    ).one()
    times = [t for t in (first, last) if t is not None]
    return pd.DataFrame({"time": pd.to_datetime(times, unit="s", utc=True)})


def shown_term(session: Session, course: Course) -> Term | None:
    """The course's term as the scoring takes it (`course_term`, with the graded past
    offerings' usual length standing in for a missing end), from two aggregates per course
    rather than every event: for the dashboard's "term ends/ended on …" sentence."""
    lengths = []
    for past in past_offerings(session, course.id):
        graded = session.scalar(
            select(func.count())
            .select_from(Grade)
            .join(GradeItem, GradeItem.id == Grade.grade_item_id)
            .where(GradeItem.course_id == past.id, GradeItem.itemtype == "course")
            .where(Grade.value.is_not(None))
        )
        term = course_term(past, _event_span(session, past)) if graded else None
        if term is not None:
            lengths.append(term.end - term.start)
    return course_term(course, _event_span(session, course), term_length=usual_term_length(lengths))


def usual_term_length(lengths: Sequence[pd.Timedelta]) -> pd.Timedelta | None:
    """The median of (past) offerings' term lengths, or None without any."""
    import pandas as pd

    if not lengths:
        return None
    return pd.Timedelta(pd.Series(lengths).median())


@dataclass(frozen=True)
class CourseRow:
    id: int
    moodle_course_id: int
    shortname: str
    past: tuple[int, ...]
    last_sync: str


def course_overview(session: Session) -> list[CourseRow]:
    rows = []
    for course in session.scalars(select(Course).order_by(Course.id)):
        last = session.scalar(
            select(SyncRun)
            .where(SyncRun.course_id == course.id)
            .order_by(SyncRun.started_at.desc())
            .limit(1)
        )
        rows.append(
            CourseRow(
                id=course.id,
                moodle_course_id=course.moodle_course_id,
                shortname=course.shortname,
                past=tuple(p.id for p in past_offerings(session, course.id)),
                last_sync=f"{last.status} {last.started_at:%Y-%m-%d %H:%M}" if last else "never",
            )
        )
    return rows

"""Courses and their lineage: which past offerings train the models of a current course."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Course, CourseLineage, MoodleSite, SyncRun
from lti_app.services.sites import normalise_base_url


class CourseError(ValueError):
    """A course operation that cannot be done, worded for the admin."""


def add_course(
    session: Session,
    site_url: str,
    moodle_course_id: int,
    *,
    shortname: str = "",
    past: Iterable[int] = (),
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
    session.flush()
    return course


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


def past_offerings(session: Session, course_id: int) -> list[Course]:
    return list(
        session.scalars(
            select(Course)
            .join(CourseLineage, CourseLineage.past_course_id == Course.id)
            .where(CourseLineage.course_id == course_id)
            .order_by(Course.start_at, Course.id)
        )
    )


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

"""The training data of a site-wide model (issue #17, item 2): for a course with no usable past
offering, the graded offerings of the site's other courses.

A "course" here is a family: a current course and the past offerings linked to it, whatever
their Moodle ids (`course_lineage`), so that leave-one-course-out validation never trains on
one offering of a course and scores another of the same course. The course being scored and
its own family are left out. Each offering's `offering_id` becomes its family's, which makes
the pipeline's grouped cross-validation leave one course out; the features are each student's
place in their cohort (`ml.features.relative_to_cohort`), comparable across course designs.

Services never commit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.models import Course, CourseLineage, Grade, GradeItem
from lti_app.services.course_data import CourseDataError, load_offering
from ml.dataset import Offering

#: An offering with fewer graded course totals than this is not worth a place in the data.
MIN_GRADED = 10


@dataclass(frozen=True)
class SiteHistory:
    """What a site-wide model trains on: the offerings (ids set to their family), their names
    for the model card, and how many courses (families) they come from."""

    offerings: list[Offering]
    names: list[str]
    n_courses: int


def families(session: Session, site_id: int) -> dict[int, int]:
    """Course id -> its family's id (the smallest course id of the courses linked together,
    active links or not: a pending link still says the two are one course)."""
    ids = list(session.scalars(select(Course.id).where(Course.site_id == site_id)))
    parent = {i: i for i in ids}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links = session.execute(
        select(CourseLineage.course_id, CourseLineage.past_course_id)
        .join(Course, Course.id == CourseLineage.course_id)
        .where(Course.site_id == site_id)
    ).all()
    for a, b in links:
        if a in parent and b in parent:
            ra, rb = root(a), root(b)
            parent[max(ra, rb)] = min(ra, rb)
    return {i: root(i) for i in ids}


def _graded_courses(session: Session, site_id: int) -> list[tuple[Course, int]]:
    """The site's courses with at least `MIN_GRADED` graded course totals, newest first, with
    that count."""
    graded = (
        select(GradeItem.course_id, func.count(Grade.id).label("n"))
        .join(Grade, Grade.grade_item_id == GradeItem.id)
        .where(GradeItem.itemtype == "course", Grade.value.is_not(None))
        .group_by(GradeItem.course_id)
        .subquery()
    )
    rows = session.execute(
        select(Course, graded.c.n)
        .join(graded, graded.c.course_id == Course.id)
        .where(Course.site_id == site_id, graded.c.n >= MIN_GRADED)
        .order_by(Course.start_at.desc().nulls_last(), Course.id.desc())
    ).all()
    return [(course, int(n)) for course, n in rows]


def site_history(session: Session, course: Course, settings: MLSettings) -> SiteHistory | None:
    """The other courses' graded offerings for `course`'s site-wide model, or None when the
    site-wide model is off, when `course` is itself a past offering of another course, or
    when fewer than `site_model_min_courses` other courses have graded offerings."""
    need = settings.site_model_min_courses
    if need <= 0:
        return None
    is_history = session.scalar(
        select(CourseLineage.id).where(CourseLineage.past_course_id == course.id).limit(1)
    )
    if is_history is not None:
        # A past offering of another course is training data, not a course anyone follows:
        # training a site-wide model for it every night would be work for no reader.
        return None
    family_of = families(session, course.site_id)
    own = family_of.get(course.id, course.id)
    offerings: list[Offering] = []
    names: list[str] = []
    used: set[int] = set()
    for other, _ in _graded_courses(session, course.site_id):
        family = family_of.get(other.id, other.id)
        if family == own or other.id == course.id:
            continue
        try:
            offering = load_offering(session, other)
        except CourseDataError:
            continue
        if offering.roster.empty or offering.grades.dropna().empty or offering.events.empty:
            continue  # nothing to learn from (no log: retention deleted it, or never synced)
        offerings.append(replace(offering, offering_id=f"course-{family}"))
        names.append(other.shortname or str(other.id))
        used.add(family)
        if len(offerings) >= settings.site_model_max_offerings:
            break
    if len(used) < need:
        return None
    return SiteHistory(offerings, names, len(used))


__all__ = ["MIN_GRADED", "SiteHistory", "families", "site_history"]

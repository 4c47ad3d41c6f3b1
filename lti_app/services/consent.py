"""Learners' objection to the estimates (issue #18, item 2).

Whose data the tool uses is the site's `consent_mode`: "teacher" (everyone's; each course's
teacher decides with `course.opt_out_allowed` whether its learners may opt out) or "opt_in"
(only the learners who said yes). A learner who opts out of a course gets no estimate made or
shown to anyone there from then on, and their data in that course is left out of every
training set (`course_data.student_roster` is where every scoring, training set and course
aggregate reads the students from, and it leaves them out). Their existing predictions in the
course are deleted at once. An objection made stays, even if the teacher later stops offering
the choice. Services never commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.orm import Session

from lti_app.db import deleted_rows, utcnow
from lti_app.models import (
    Course,
    KeptObjection,
    LearnerChoice,
    MoodleSite,
    PageBuild,
    Person,
    Prediction,
)

CONSENT_MODES = ("teacher", "opt_in")


def consent_mode(session: Session, course: Course) -> str:
    mode = session.scalar(select(MoodleSite.consent_mode).where(MoodleSite.id == course.site_id))
    return mode or "teacher"


def may_choose(session: Session, course: Course) -> bool:
    """Whether the course's learners have a choice to make: always on an opt-in site, else
    when the teacher allows opting out."""
    return consent_mode(session, course) == "opt_in" or bool(course.opt_out_allowed)


def choice_of(session: Session, course_id: int, person_id: int) -> str | None:
    return session.scalar(
        select(LearnerChoice.choice).where(
            LearnerChoice.course_id == course_id, LearnerChoice.person_id == person_id
        )
    )


def used_clause(session: Session, course: Course) -> Any:
    """A condition on `Person.id`: the learner's data may be used in `course`."""
    said = select(LearnerChoice.person_id).where(
        LearnerChoice.course_id == course.id, LearnerChoice.person_id == Person.id
    )
    if consent_mode(session, course) == "opt_in":
        return exists(said.where(LearnerChoice.choice == "in"))
    return ~exists(said.where(LearnerChoice.choice == "out"))


def is_used(session: Session, course: Course, person_id: int) -> bool:
    choice = choice_of(session, course.id, person_id)
    if consent_mode(session, course) == "opt_in":
        return choice == "in"
    return choice != "out"


def set_choice(session: Session, course: Course, person_id: int, choice: str) -> bool:
    """Record the learner's choice ("in" or "out"); returns whether their data is used now.
    Not using it deletes their predictions in the course at once: nobody sees them again."""
    if choice not in ("in", "out"):
        raise ValueError(f"unknown choice {choice!r}")
    row = session.get(LearnerChoice, (course.id, person_id))
    if row is None:
        row = LearnerChoice(course_id=course.id, person_id=person_id)
        session.add(row)
    row.choice = choice
    row.at = utcnow()
    session.flush()
    used = is_used(session, course, person_id)
    if not used:
        session.execute(
            delete(Prediction).where(
                and_(Prediction.course_id == course.id, Prediction.person_id == person_id)
            )
        )
        # The course's built pages showed them (`shared_pages`): gone, built again without.
        session.execute(delete(PageBuild).where(PageBuild.course_id == course.id))
    return used


def apply_mode(session: Session, site_id: int) -> int:
    """After a site's consent mode changed: delete the predictions, in every course of the
    site, of the learners whose data may no longer be used (opt-in: those who never agreed),
    so that no page or history shows them. Returns the predictions deleted."""
    deleted = 0
    for course in session.scalars(select(Course).where(Course.site_id == site_id)):
        used = select(Person.id).where(used_clause(session, course))
        result = session.execute(
            delete(Prediction).where(
                Prediction.course_id == course.id, Prediction.person_id.not_in(used)
            )
        )
        deleted += deleted_rows(result)
        session.execute(delete(PageBuild).where(PageBuild.course_id == course.id))
    return deleted


def objections_kept(session: Session, site_id: int) -> bool:
    """Whether any erased learner's objection waits on the site (one indexed query)."""
    found = session.execute(
        select(KeptObjection.course_id)
        .join(Course, Course.id == KeptObjection.course_id)
        .where(Course.site_id == site_id)
        .limit(1)
    ).first()
    return found is not None


def restore_objections(session: Session, site_id: int, person_ids: dict[int, int]) -> int:
    """Turn the objections kept when a person was erased (`kept_objection`) back into their
    opt-outs, now that the Moodle user is stored again ({Moodle user id: person id}). One
    indexed query when there is none, which is nearly always."""
    if not person_ids or not objections_kept(session, site_id):
        return 0
    on_site = (
        select(KeptObjection.course_id, KeptObjection.moodle_user_id)
        .join(Course, Course.id == KeptObjection.course_id)
        .where(Course.site_id == site_id)
    )
    uids = list(person_ids)
    kept = [
        row
        for start in range(0, len(uids), 5000)  # within every backend's bound on parameters
        for row in session.execute(
            on_site.where(KeptObjection.moodle_user_id.in_(uids[start : start + 5000]))
        ).all()
    ]
    for course_id, uid in kept:
        session.merge(
            LearnerChoice(course_id=course_id, person_id=person_ids[int(uid)], choice="out")
        )
        session.execute(
            delete(KeptObjection).where(
                KeptObjection.course_id == course_id, KeptObjection.moodle_user_id == uid
            )
        )
    if kept:
        session.flush()
    return len(kept)


__all__ = [
    "CONSENT_MODES",
    "apply_mode",
    "choice_of",
    "consent_mode",
    "is_used",
    "may_choose",
    "objections_kept",
    "restore_objections",
    "set_choice",
    "used_clause",
]

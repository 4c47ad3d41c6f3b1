"""A scored simulated course behind the launches: what the API, dashboard and browser tests share.

The launches open Moodle course 2; the simulated current offering is moved there, stored with
its past offerings and scored with fast ML settings, so every test module starts from the same
course with predictions and its students known by person id.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sqlalchemy import select

from lti_app.config import MLSettings
from lti_app.models import Course, MoodleSite, Person
from lti_app.services.course_data import store_simulated_course
from lti_app.services.scoring import score_course
from simulation.course import SimulatedCourse, simulate_course
from tests.lti_app.lti.env import LtiEnv

FAST = MLSettings(
    regressors=("ridge",),
    classifiers=("logistic",),
    bootstrap_samples=100,
    permutation_repeats=3,
    mc_dropout_passes=10,
)


@dataclass(frozen=True)
class Student:
    moodle_user_id: int
    person_id: int
    fullname: str


@dataclass(frozen=True)
class ScoredCourse:
    course_id: int
    students: list[Student]  # in roster order


def as_course_2(simulated: SimulatedCourse) -> SimulatedCourse:
    """The simulated current offering becomes Moodle course 2, the one the launches open."""
    current = simulated.current
    assert current is not None
    moved = dataclasses.replace(
        current,
        courseid=2,
        log=current.log.assign(courseid=2),
        users=current.users.assign(courseid=2),
    )
    return dataclasses.replace(simulated, offerings=(*simulated.past, moved))


def score_course_2(env: LtiEnv) -> ScoredCourse:
    """Store and score the simulated course in course 2, which a launch must have linked."""
    simulated = as_course_2(simulate_course(n_past=3, n_students=30, seed=21, current_progress=0.5))
    current_off = simulated.current
    assert current_off is not None
    assert current_off.now is not None
    with env.db() as db:
        course = db.scalar(select(Course).where(Course.moodle_course_id == 2))
        assert course is not None
        site = db.get_one(MoodleSite, course.site_id)
        current, _ = store_simulated_course(db, site, simulated)
        assert current.id == course.id
        outcome = score_course(
            db,
            current,
            settings=FAST,
            model_root=env.settings.model_root,
            now=current_off.now.to_pydatetime(),
        )
        assert outcome.status == "scored", outcome.message
        students = []
        for uid in current_off.roster["userid"].tolist():
            person = db.scalar(select(Person).where(Person.moodle_user_id == uid))
            assert person is not None
            students.append(Student(int(uid), person.id, person.fullname))
        return ScoredCourse(course_id=course.id, students=students)

"""A scored course with a teacher's and a learner's launch session, as API request headers.

The hardening and schemathesis tests call the API as a real client does after a launch: the
launch token in `X-Launch-Token` and the session's CSRF token in `X-CSRF-Token`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from lti_app.models import LtiSession, Person
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.scored_course import ScoredCourse, score_course_2


@dataclass(frozen=True)
class ApiSessions:
    course: ScoredCourse
    teacher: dict[str, str]
    learner: dict[str, str]
    learner_id: int
    other_id: int

    @property
    def course_id(self) -> int:
        return self.course.course_id


def headers(env: LtiEnv, token: str, person_id: int) -> dict[str, str]:
    """The API headers of the person's latest launch session."""
    with env.db() as db:
        csrf = db.scalars(
            select(LtiSession.csrf_token)
            .where(LtiSession.person_id == person_id)
            .order_by(LtiSession.id.desc())
        ).first()
    assert csrf is not None
    return {"X-Launch-Token": token, "X-CSRF-Token": csrf, "Accept": "application/json"}


def api_sessions(env: LtiEnv) -> ApiSessions:
    """Launch the teacher, score course 2, launch its first student as the learner."""
    teacher_token = token_of(launch(env.client(), env, "teacher"))
    course = score_course_2(env)
    learner, other = course.students[0], course.students[1]
    with env.db() as db:
        teacher_id = db.scalar(select(Person.id).where(Person.moodle_user_id == 3))
        assert teacher_id is not None
    learner_token = token_of(
        launch(env.client(), env, "student", sub=str(learner.moodle_user_id), name="A Learner")
    )
    return ApiSessions(
        course=course,
        teacher=headers(env, teacher_token, teacher_id),
        learner=headers(env, learner_token, learner.person_id),
        learner_id=learner.person_id,
        other_id=other.person_id,
    )

"""Request-scoped helpers shared by the blueprints: the request's session, the settings, and the
look-ups every course page and API route starts with."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import select

from lti_app.config import Settings
from lti_app.models import Course, Enrolment


def db() -> Any:
    """The request's database session (opened lazily, committed at teardown by the app)."""
    from lti_app.app import db_session

    return db_session()


def settings() -> Settings:
    value: Settings = current_app.extensions["arche_predict"]["settings"]
    return value


def course(course_id: int) -> Course | None:
    found: Course | None = db().get(Course, course_id)
    return found


def enrolled(course_id: int, person_id: int) -> bool:
    """Whether the person has an active enrolment (any role) in the course."""
    return (
        db().scalar(
            select(Enrolment.id).where(
                Enrolment.course_id == course_id,
                Enrolment.person_id == person_id,
                Enrolment.active.is_(True),
            )
        )
        is not None
    )

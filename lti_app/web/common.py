"""Request-scoped helpers shared by the blueprints: the request's session, the settings, and the
look-ups every course page and API route starts with.

A route's course comes from `page_course` (pages) or `api_course` (the JSON API): the course, or
the surface's 404 raised as its response, so that no view repeats the look-up and its error.
"""

from __future__ import annotations

from typing import NoReturn

from flask import abort, current_app, make_response
from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session

from lti_app.config import Settings
from lti_app.crypto import SecretBox
from lti_app.models import Course, Enrolment, MoodleSite, Person
from lti_app.services.connections import moodle_client_for
from lti_app.web.auth import N_, current, error_response
from lti_app.web.db import db_session
from moodle_client.client import MoodleClient


def db() -> Session:
    """The request's database session (opened lazily, committed at teardown)."""
    return db_session()


def settings() -> Settings:
    value: Settings = current_app.extensions["arche_predict"]["settings"]
    return value


def moodle_client(site: MoodleSite) -> MoodleClient:
    """A web-service client for the site, its token decrypted with the app's key: what every
    page that calls Moodle (teacher actions, past offerings) uses."""
    box: SecretBox = current_app.extensions["arche_predict"]["secret_box"]
    return moodle_client_for(settings(), box, site)


def current_person() -> Person:
    """The launch's person (behind a `require_*` decorator, so a session exists)."""
    ctx = current()
    assert ctx is not None
    return db().get_one(Person, ctx.person_id)


def course(course_id: int) -> Course | None:
    found: Course | None = db().get(Course, course_id)
    return found


def _unknown_course(code: str | None) -> NoReturn:
    # A response given to `abort` is raised as it is: the app's HTTP error handler leaves an
    # exception without a status code (this one) alone, so the surface's body goes out.
    body = error_response(404, N_("Not found"), N_("This course is unknown."), code=code)
    abort(make_response(body))


def page_course(course_id: int) -> Course:
    """The course of a page's URL, or the pages' 404: the error page (its JSON twin for a
    caller that asks for JSON), without an error code."""
    found = course(course_id)
    if found is None:
        _unknown_course(None)
    return found


def api_course(course_id: int) -> Course:
    """The course of an API route, or the API's 404: JSON with the code ``not_found``."""
    found = course(course_id)
    if found is None:
        _unknown_course("not_found")
    return found


# Built once, with bound parameters (composing them per request cost as much as running them).
_COURSE_ID = bindparam("course_id", type_=Integer)
_PERSON_ID = bindparam("person_id", type_=Integer)
_ACTIVE_ENROLMENT = select(Enrolment.id).where(
    Enrolment.course_id == _COURSE_ID,
    Enrolment.person_id == _PERSON_ID,
    Enrolment.active.is_(True),
)
_COURSE_AND_ENROLMENT = select(Course, _ACTIVE_ENROLMENT.exists()).where(Course.id == _COURSE_ID)


def enrolled(course_id: int, person_id: int) -> bool:
    """Whether the person has an active enrolment (any role) in the course."""
    params = {"course_id": course_id, "person_id": person_id}
    return db().scalar(_ACTIVE_ENROLMENT, params) is not None


def course_and_enrolment(course_id: int, person_id: int) -> tuple[Course | None, bool]:
    """The course, and whether the person has an active enrolment in it (any role), in one
    query: the student routes need both before anything else, and each round trip to the
    database is a visible share of a what-if."""
    params = {"course_id": course_id, "person_id": person_id}
    row = db().execute(_COURSE_AND_ENROLMENT, params).first()
    return (None, False) if row is None else (row[0], bool(row[1]))


def api_course_and_enrolment(course_id: int, person_id: int) -> tuple[Course, bool]:
    """`course_and_enrolment` for an API route: the API's 404 when the course is unknown."""
    found, enrolled = course_and_enrolment(course_id, person_id)
    if found is None:
        _unknown_course("not_found")
    return found, enrolled

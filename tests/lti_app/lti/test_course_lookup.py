"""The course look-up each surface starts with: the course, or that surface's own 404.

Through real routes an unknown course is out of reach (a launch's session belongs to an existing
course and goes with it), so the helpers are called in a request for an unknown id: the error
they raise is the response the surface has always given, and the app's HTTP error handler
passes it through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from lti_app.models import Course
from lti_app.web.common import api_course, api_course_and_enrolment, page_course
from lti_app.web.converters import ID_MAX
from tests.lti_app.lti.env import LtiEnv, launch

UNKNOWN = "This course is unknown."


def _raised(env: LtiEnv, path: str, call: Callable[[], Any], **headers: str) -> Any:
    with env.app.test_request_context(path, headers=headers):
        with pytest.raises(HTTPException) as raised:
            call()
        assert env.app.handle_http_exception(raised.value) is raised.value
        response = raised.value.get_response()
        assert response.status_code == 404
        return response


def test_the_api_answers_json_with_its_code(lti_env: LtiEnv) -> None:
    want = {"error": "Not found", "message": UNKNOWN, "status": 404, "code": "not_found"}
    for call in (lambda: api_course(ID_MAX), lambda: api_course_and_enrolment(ID_MAX, 1)):
        response = _raised(lti_env, f"/api/v1/courses/{ID_MAX}", call)
        assert response.get_json() == want


def test_a_page_answers_its_error_page_or_json_without_a_code(lti_env: LtiEnv) -> None:
    page = _raised(lti_env, f"/course/{ID_MAX}", lambda: page_course(ID_MAX))
    assert page.mimetype == "text/html"
    assert UNKNOWN in page.get_data(as_text=True)
    asked_json = _raised(
        lti_env, f"/course/{ID_MAX}", lambda: page_course(ID_MAX), Accept="application/json"
    )
    assert asked_json.get_json() == {
        "error": "Not found",
        "message": UNKNOWN,
        "status": 404,
        "code": None,
    }


def test_a_known_course_is_returned(lti_env: LtiEnv) -> None:
    assert launch(lti_env.client(), lti_env, "teacher").status_code == 303
    with lti_env.db() as db:
        course_id = db.scalars(select(Course.id)).first()
    assert course_id is not None
    with lti_env.app.test_request_context(f"/course/{course_id}"):
        assert page_course(course_id).id == course_id
        assert api_course(course_id).id == course_id
        course, enrolled = api_course_and_enrolment(course_id, ID_MAX)
        assert (course.id, enrolled) == (course_id, False)

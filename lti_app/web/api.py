"""The JSON API, `/api/v1/…`, for the dashboards' scripts and for integrations.

Requests are authorised by the LTI session (cookie) or the launch token (`X-Launch-Token`
header), like the pages: teachers read their own course; a learner reads only their own record,
and only while the teacher keeps the learner view on. State-changing calls (the what-if POST)
need the CSRF token in `X-CSRF-Token`. Every error is JSON: `{"error", "message", "status",
"code"}`.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from lti_app.models import Course
from lti_app.services import access_log
from lti_app.services.course_settings import pass_mark_of, risk_threshold_of
from lti_app.services.insights import (
    InsightError,
    ModelCache,
    course_summary,
    parse_changes,
    student_detail,
    students_table,
    what_if,
)
from lti_app.web.auth import (
    N_,
    can_view_person,
    current,
    error_response,
    require_course_member,
    require_teacher,
)
from lti_app.web.common import api_course, api_course_and_enrolment
from lti_app.web.common import db as _db
from lti_app.web.common import enrolled as _enrolled
from lti_app.web.common import settings as _settings
from lti_app.web.converters import ID_MAX
from lti_app.web.i18n import chance_range_text, chance_text, grade_text
from ml.feature_info import CONTROLLABLE, FEATURES

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _fail(exc: InsightError) -> Any:
    return jsonify(
        error=exc.code, message=exc.message, status=exc.status, code=exc.code
    ), exc.status


def _may_read_student(course: Course, person_id: int, enrolled: bool | None = None) -> Any | None:
    """None when the caller may read this student's record, else the error response.
    ``enrolled``: the person's active enrolment, when the caller already read it."""
    ctx = current()
    assert ctx is not None
    if not ctx.is_teacher and not course.learner_view_enabled:
        return error_response(
            403,
            N_("Forbidden"),
            N_("The teacher has turned the learner view off."),
            code="learner_view_off",
        )
    if enrolled is None:
        enrolled = _enrolled(course.id, person_id)
    if not can_view_person(ctx, course.id, person_id, enrolled):
        return error_response(
            403, N_("Forbidden"), N_("You can only see your own record."), code="forbidden"
        )
    return None


def json_body() -> Any:
    """The request's JSON body, or `InsightError` 400 when it is not JSON.

    Parsed here, not by `request.get_json`: Werkzeug turns only a ValueError into a 400, so a
    body nested thousands of levels deep (`[[[[...]]]]`, a few kilobytes) let the parser's
    RecursionError through as a 500. Every JSON body the API reads goes through this.
    """
    if not request.is_json:
        raise InsightError(
            "the body must be JSON, sent with Content-Type: application/json", 400, "bad_request"
        )
    try:
        # Bytes: json detects UTF-8, -16 or -32; a bad byte is a UnicodeDecodeError (ValueError).
        return json.loads(request.get_data())
    except (ValueError, RecursionError):
        raise InsightError(
            "the body is not valid JSON (or is nested too deeply to read)", 400, "bad_json"
        ) from None


def _threshold(course: Course) -> float:
    return risk_threshold_of(course, _settings().ml)


@bp.get("/courses/<id:course_id>")
@require_teacher
def summary(course_id: int) -> Any:
    course = api_course(course_id)
    return jsonify(course_summary(_db(), course, threshold=_threshold(course)))


@bp.get("/courses/<id:course_id>/students")
@require_teacher
def students(course_id: int) -> Any:
    course = api_course(course_id)
    ctx = current()
    table = students_table(_db(), course, threshold=_threshold(course))
    # Recorded after the reading: a write holds SQLite's one write lock until the request ends.
    access_log.record(
        _db(), viewer_id=ctx.person_id if ctx else None, course_id=course.id, kind="api_students"
    )
    return jsonify(students=table)


@bp.get("/courses/<id:course_id>/students/<id:person_id>")
@require_course_member
def student(course_id: int, person_id: int) -> Any:
    course = api_course(course_id)
    refused = _may_read_student(course, person_id)
    if refused is not None:
        return refused
    try:
        detail = student_detail(_db(), course, person_id, threshold=_threshold(course))
    except InsightError as exc:
        return _fail(exc)
    ctx = current()
    access_log.record(
        _db(),
        viewer_id=ctx.person_id if ctx else None,
        course_id=course.id,
        kind="api_student",
        subject_id=person_id,
    )
    return jsonify(detail)


@bp.post("/courses/<id:course_id>/students/<id:person_id>/what-if")
@require_course_member
def student_what_if(course_id: int, person_id: int) -> Any:
    course, enrolled = api_course_and_enrolment(course_id, person_id)
    refused = _may_read_student(course, person_id, enrolled)
    if refused is not None:
        return refused
    ext = current_app.extensions["arche_predict"]
    cache: ModelCache = ext.setdefault("model_cache", ModelCache())
    settings = _settings()
    try:
        changes = parse_changes(json_body())
        result = what_if(
            _db(),
            course,
            person_id,
            changes,
            model_root=settings.model_root,
            cache=cache,
            threshold=risk_threshold_of(course, settings.ml),
            mc_passes=settings.ml.mc_dropout_passes,
        )
    except InsightError as exc:
        return _fail(exc)
    # The page shows a chance and its range in words (never "0 %" or "± x"), and the grade
    # and its range kept on their side of the pass mark: the same formatting as the
    # server-rendered page, in the session's language.
    if result["pass_mark"] is None:  # a version that recorded none: the mark in force
        result["pass_mark"] = pass_mark_of(course, settings.ml).value
    mark, (low, high) = result["pass_mark"], result["grade_interval"]
    result["shown"] = {
        "probability": chance_text(result["probability"], result["threshold"]),
        "range": chance_range_text(result["ci_95"], result["threshold"]),
        "grade": grade_text(result["predicted_grade"], mark),
        "interval": f"{grade_text(low, mark, 'low')} \u2013 {grade_text(high, mark, 'high')}",
    }
    return jsonify(result)


@bp.post("/courses/<id:course_id>/sync")
@require_teacher
def sync_now(course_id: int) -> Any:
    """Ask the scheduler for a sync of the course now; 202 with the request to follow."""
    from lti_app.services import sync_requests

    course = api_course(course_id)
    ctx = current()
    assert ctx is not None
    _, created = sync_requests.request_sync(_db(), course, ctx.person_id)
    body = sync_requests.progress(_db(), course_id)
    body["created"] = created
    return jsonify(body), 202


@bp.get("/courses/<id:course_id>/sync")
@require_teacher
def sync_status(course_id: int) -> Any:
    """The latest "Sync now" and its progress (pages done of pages expected)."""
    from lti_app.services import sync_requests

    api_course(course_id)  # an unknown course is the API's 404
    return jsonify(sync_requests.progress(_db(), course_id))


@bp.get("/openapi.json")
def openapi() -> Any:
    """The API's OpenAPI 3.1 description (no data in it, so no launch needed)."""
    return jsonify(OPENAPI)


_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    str(code): {"description": text, "content": {"application/json": {"schema": _ERROR}}}
    for code, text in (
        (400, "Malformed request"),
        (401, "No LTI session or launch token"),
        (403, "Not allowed for this role or course, or a POST without the session's CSRF token"),
        (404, "Unknown course or student"),
        (409, "No validated model (engagement only, or the quality gate withholds it)"),
        (413, "A request body larger than the API accepts"),
    )
}
#: Routes that ask Moodle while answering (the past offerings a teacher may link, #17).
_MOODLE_DOWN = {
    "502": {
        "description": "Moodle did not answer or refused (the message gives Moodle's words)",
        "content": {"application/json": {"schema": _ERROR}},
    }
}
_OUT_OF_RANGE = {
    "422": {
        "description": "A value outside its feature's range (the message names both)",
        "content": {"application/json": {"schema": _ERROR}},
    }
}
# Row ids are bounded by the `<id:...>` URL converter; anything else is a 404 before any query.
_ID = {"type": "integer", "minimum": 1, "maximum": ID_MAX}
_COURSE = {"name": "course_id", "in": "path", "required": True, "schema": _ID}
_PERSON = {"name": "person_id", "in": "path", "required": True, "schema": _ID}
_JSON = {"application/json": {"schema": {"type": "object"}}}
#: Every state-changing call carries the session's CSRF token.
_CSRF_HEADER = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
}
#: Each actionable feature with its unit and valid range, as `parse_changes` checks them.
_CHANGES = {
    name: {
        "type": "number",
        "minimum": FEATURES[name].minimum,
        "maximum": FEATURES[name].maximum,
        "description": f"{FEATURES[name].unit}, {FEATURES[name].range_text()}",
    }
    for name in CONTROLLABLE
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "arche-predict API",
        "version": "1",
        "description": "Predicted grades and pass chances of a Moodle course, with their "
        "uncertainty. Authorised by the LTI launch (session cookie or X-Launch-Token).",
    },
    "components": {
        "securitySchemes": {
            "launchToken": {"type": "apiKey", "in": "header", "name": "X-Launch-Token"},
            "session": {"type": "apiKey", "in": "cookie", "name": "arche_sid"},
        },
        "schemas": {
            "PastOfferingsPick": {
                "type": "object",
                "required": ["moodle_course_ids"],
                "additionalProperties": False,
                "properties": {
                    "moodle_course_ids": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    }
                },
            },
            "Error": {
                "type": "object",
                "required": ["error", "message", "status"],
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "status": {"type": "integer"},
                    "code": {"type": ["string", "null"]},
                },
            },
            "WhatIf": {
                "type": "object",
                "required": ["changes"],
                "properties": {
                    "changes": {
                        "type": "object",
                        "properties": _CHANGES,
                        "additionalProperties": False,
                    }
                },
            },
            "WhatIfResult": {
                "type": "object",
                "required": [
                    "probability",
                    "prediction",
                    "confidence",
                    "uncertainty",
                    "ci_95",
                    "predicted_grade",
                    "grade_interval",
                ],
                "properties": {
                    "probability": {"type": "number", "description": "calibrated P(pass)"},
                    "prediction": {"type": "integer", "enum": [0, 1]},
                    "confidence": {"type": "number"},
                    "uncertainty": {"type": "number", "description": "spread (std) of P(pass)"},
                    "ci_95": {"type": "array", "items": {"type": "number"}},
                    "predicted_grade": {"type": "number"},
                    "grade_interval": {"type": "array", "items": {"type": "number"}},
                    "at_risk": {"type": "boolean", "description": "probability < threshold"},
                    "threshold": {"type": "number", "description": "the course's at-risk rule"},
                    "pass_mark": {
                        "type": "number",
                        "description": "the mark the chance is a chance of reaching",
                    },
                    "shown": {
                        "type": "object",
                        "description": "the chance, the grade and their ranges as the pages "
                        "word them, each on its side of the threshold and the pass mark",
                        "properties": {
                            "probability": {"type": "string"},
                            "range": {"type": "string"},
                            "grade": {"type": "string"},
                            "interval": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
    "security": [{"launchToken": []}, {"session": []}],
    "paths": {
        "/api/v1/courses/{course_id}": {
            "get": {
                "summary": "Course summary: sync status, model quality and gate, at-risk count "
                "(teachers)",
                "parameters": [_COURSE],
                "responses": {"200": {"description": "Summary", "content": _JSON}, **_ERRORS},
            }
        },
        "/api/v1/courses/{course_id}/sync": {
            "get": {
                "summary": 'Progress of the latest "Sync now" (teachers)',
                "parameters": [_COURSE],
                "responses": {"200": {"description": "Progress", "content": _JSON}, **_ERRORS},
            },
            "post": {
                "summary": "Ask for a sync now; the scheduler runs it (teachers)",
                "parameters": [
                    _COURSE,
                    _CSRF_HEADER,
                ],
                "responses": {"202": {"description": "Queued", "content": _JSON}, **_ERRORS},
            },
        },
        "/api/v1/courses/{course_id}/past-offerings": {
            "get": {
                "summary": "The Moodle courses the teacher taught before this one, best first, "
                "with their dates, students and link state (teachers; asks Moodle)",
                "parameters": [_COURSE],
                "responses": {
                    "200": {"description": "Candidates", "content": _JSON},
                    **_ERRORS,
                    **_MOODLE_DOWN,
                },
            },
            "post": {
                "summary": "Link past offerings and request their backfill; only courses the "
                "teacher taught (else 403 not_taught, nothing linked)",
                "parameters": [
                    _COURSE,
                    _CSRF_HEADER,
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/PastOfferingsPick"}
                        }
                    },
                },
                "responses": {
                    "202": {"description": "Linked or pending", "content": _JSON},
                    **_ERRORS,
                    **_MOODLE_DOWN,
                },
            },
        },
        "/api/v1/courses/{course_id}/students": {
            "get": {
                "summary": "Every student with their latest prediction (teachers)",
                "parameters": [_COURSE],
                "responses": {"200": {"description": "Students", "content": _JSON}, **_ERRORS},
            }
        },
        "/api/v1/courses/{course_id}/students/{person_id}": {
            "get": {
                "summary": "One student: prediction history, features, factors (the student "
                "themself, or a teacher)",
                "parameters": [_COURSE, _PERSON],
                "responses": {"200": {"description": "Student", "content": _JSON}, **_ERRORS},
            }
        },
        "/api/v1/courses/{course_id}/students/{person_id}/what-if": {
            "post": {
                "summary": "Predict with some actionable features changed",
                "parameters": [
                    _COURSE,
                    _PERSON,
                    _CSRF_HEADER,
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/WhatIf"}}
                    },
                },
                "responses": {
                    "200": {
                        "description": "Prediction",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/WhatIfResult"}
                            }
                        },
                    },
                    **_ERRORS,
                    **_OUT_OF_RANGE,
                },
            }
        },
    },
}

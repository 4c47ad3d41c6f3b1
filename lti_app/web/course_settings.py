"""A teacher's settings for their course: the pass mark and the "at risk" threshold.

The form sits on the dashboard; this route saves it and goes back there (303) with a message
code, never a stack trace: a value that cannot be used names the field and the allowed range,
and nothing is changed. The values are read in one place (`services.course_settings`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request

from lti_app.services.course_settings import (
    SettingError,
    parse_number,
    set_pass_mark,
    set_risk_threshold,
)
from lti_app.web.auth import current, lti_url_for, require_teacher
from lti_app.web.common import db, page_course, settings

bp = Blueprint("course_settings", __name__)

#: The message codes the dashboard words (teacher.html); the URL carries only a code.
PASS_MARK_INVALID = "pass_mark_invalid"  # noqa: S105  (a message code, not a password)
THRESHOLD_INVALID = "threshold_invalid"
SAVED = "saved"
CODES = frozenset({PASS_MARK_INVALID, THRESHOLD_INVALID, SAVED})


@bp.post("/course/<id:course_id>/settings")
@require_teacher
def save(course_id: int) -> Any:
    course = page_course(course_id)
    ctx = current()
    assert ctx is not None
    ml = settings().ml
    session = db()
    code = SAVED
    try:
        mark = parse_number(request.form.get("pass_mark", ""), "pass mark")
        percent = parse_number(request.form.get("risk_threshold", ""), "at-risk threshold")
        threshold = None if percent is None else percent / 100
        # Validate both before changing either: a half-saved form would be a surprise.
        if mark is not None and not (0 < mark <= ml.grade_max):
            raise SettingError(PASS_MARK_INVALID)
        if threshold is not None and not (0.05 <= threshold <= 0.95):
            raise SettingError(THRESHOLD_INVALID)
    except SettingError as exc:
        code = THRESHOLD_INVALID if "threshold" in str(exc) else PASS_MARK_INVALID
    else:
        if mark != course.pass_mark:
            set_pass_mark(session, course, mark, ml, person_id=ctx.person_id, via="dashboard")
        # The form shows the threshold in force: sending the site default back is no choice.
        unchanged = course.risk_threshold is None and threshold == ml.risk_threshold
        if threshold != course.risk_threshold and not unchanged:
            set_risk_threshold(
                session, course, threshold, ml, person_id=ctx.person_id, via="dashboard"
            )
    target = lti_url_for("pages.course_dashboard", course_id=course_id, settings=code)
    return redirect(target, code=303)


__all__ = ["CODES", "bp"]

"""An administrator sets a course's start and end dates from the admin page (issue #13, item 4).

A course fed only by CSV downloads has no dates; without an end date its term is inferred from
its past offerings (and the dashboard says so). `arche-predict course update --start/--end`
sets them on the command line; this is the same service (`courses.set_course_dates`) for an
administrator in Moodle's iframe. A web-service sync brings Moodle's own dates, which win,
except an end date Moodle does not have.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request

from lti_app.services import audit
from lti_app.services.courses import CourseError, parse_moment, set_course_dates
from lti_app.web.auth import current, lti_url_for, require_admin
from lti_app.web.common import db, page_course, settings

bp = Blueprint("admin_courses", __name__)

#: The message codes the admin page words; the URL carries only a code.
DATES_SAVED = "dates_saved"
DATES_INVALID = "dates_invalid"
CODES = frozenset({DATES_SAVED, DATES_INVALID})


@bp.post("/admin/courses/<id:course_id>/dates")
@require_admin
def save_dates(course_id: int) -> Any:
    course = page_course(course_id)
    ctx = current()
    assert ctx is not None
    zone = settings().moodle.timezone
    code = DATES_SAVED
    try:
        start_text = request.form.get("start", "").strip()
        end_text = request.form.get("end", "").strip()
        start = parse_moment(start_text, zone) if start_text else None
        end = parse_moment(end_text, zone) if end_text else None
        set_course_dates(db(), course, start=start, end=end)
    except CourseError:
        code = DATES_INVALID
    else:
        audit.record(
            db(),
            "course.dates",
            "accepted",
            "admin page",
            person_id=ctx.person_id,
            course_id=course.id,
            details={"start": start_text, "end": end_text},
        )
    target = lti_url_for("pages.admin", dates=code, course=course_id)
    return redirect(target + f"#course-{course_id}", code=303)


__all__ = ["CODES", "bp"]

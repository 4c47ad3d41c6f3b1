"""A teacher links the course's past offerings (issue #17, item 1): the page that lists the
Moodle courses they taught before this one and the JSON API twin, then the backfill.

Only the course's teachers reach these routes (`require_teacher`); the list comes from Moodle
each time (`services.offering_links`), and a submitted pick is checked against Moodle again, so a
course id typed into the form or the API that the teacher did not teach is refused (403) and
nothing is linked. Moodle down or refusing is said on the page, never a 500. An administrator
decides the pending links of a site that requires approval (the admin page's routes, at the
end).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request
from sqlalchemy import select

from lti_app.models import Course, MoodleSite, SyncRun
from lti_app.services import audit, offering_links, sync_requests
from lti_app.services.connections import SyncConfigError
from lti_app.web.auth import (
    N_,
    current,
    error_response,
    lti_url_for,
    require_admin,
    require_teacher,
)
from lti_app.web.common import api_course, current_person, db, moodle_client, page_course
from moodle_client.errors import MoodleError

bp = Blueprint("offerings", __name__)

#: The words of a refused pick, by `LinkError.code` (the page's; the API sends the code).
LINK_ERRORS = {
    "not_taught": N_("Only a course you taught before this one can be linked. Nothing was linked."),
    "none_picked": N_("Pick at least one past offering."),
    "no_moodle_user": N_(
        "Your Moodle account is not known to the tool yet: launch the tool from the course in "
        "Moodle, or ask an administrator to link the past offerings."
    ),
}


def _linked(course: Course) -> list[dict[str, Any]]:
    """The course's links with each past offering's latest sync, for the page."""
    session = db()
    out = []
    for moodle_id, link in sorted(offering_links.links_of(session, course.id).items()):
        past = session.get_one(Course, link.past_course_id)
        row = session.execute(
            select(SyncRun.status, SyncRun.finished_at, SyncRun.error_message)
            .where(SyncRun.course_id == past.id)
            .order_by(SyncRun.id.desc())
            .limit(1)
        ).first()
        out.append(
            {
                "moodle_id": moodle_id,
                "past": past,
                "status": link.status,
                "sync": None if row is None else {"status": row[0], "at": row[1], "error": row[2]},
            }
        )
    return out


def _candidates(course: Course) -> tuple[list[offering_links.OfferingChoice], str | None]:
    """The candidates, or the reason Moodle could not give them (in Moodle's words)."""
    session = db()
    site = session.get_one(MoodleSite, course.site_id)
    try:
        userid = offering_links.teacher_moodle_id(current_person())
        return offering_links.find_candidates(session, moodle_client(site), course, userid), None
    except offering_links.LinkError as exc:
        return [], exc.code
    except (MoodleError, SyncConfigError) as exc:
        return [], str(exc)


def _page(course: Course, *, error: str | None = None, status: int = 200) -> Any:
    site = db().get_one(MoodleSite, course.site_id)
    choices, problem = _candidates(course)
    return (
        render_template(
            "past_offerings.html",
            course=course,
            choices=choices,
            problem=problem,
            problem_words=LINK_ERRORS.get(problem or ""),
            linked=_linked(course),
            approval=site.link_approval_required,
            error=error,
            error_words=LINK_ERRORS.get(error or ""),
            progress=sync_requests.progress(db(), course.id),
        ),
        status,
    )


@bp.get("/course/<id:course_id>/past-offerings")
@require_teacher
def past_offerings_page(course_id: int) -> Any:
    return _page(page_course(course_id))


def _link(course: Course, picked: list[int]) -> offering_links.LinkOutcome:
    """Link for the current teacher (LinkError, MoodleError and SyncConfigError pass through),
    with an audit record of what was asked and what came of it."""
    session = db()
    site = session.get_one(MoodleSite, course.site_id)
    me = current_person()
    outcome = offering_links.link_offerings(
        session,
        moodle_client(site),
        course,
        me,
        picked,
        approval_required=site.link_approval_required,
    )
    audit.record(
        session,
        "course.past_offerings",
        "accepted",
        "pending approval" if outcome.pending else None,
        person_id=me.id,
        course_id=course.id,
        details={"active": outcome.active, "pending": outcome.pending},
    )
    return outcome


def _refused(course: Course, exc: offering_links.LinkError) -> None:
    ctx = current()
    audit.record(
        db(),
        "course.past_offerings",
        "refused",
        exc.code,
        person_id=ctx.person_id if ctx else None,
        course_id=course.id,
        details={"courses": list(exc.courseids)},
    )


@bp.post("/course/<id:course_id>/past-offerings")
@require_teacher
def link_past_offerings(course_id: int) -> Any:
    course = page_course(course_id)
    picked = [int(v) for v in request.form.getlist("past") if v.isdigit()]
    try:
        outcome = _link(course, picked)
    except offering_links.LinkError as exc:
        _refused(course, exc)
        return _page(course, error=exc.code, status=403 if exc.code == "not_taught" else 400)
    except (MoodleError, SyncConfigError):
        return _page(course, status=502)
    code = "linked_pending" if outcome.pending else "linked"
    return redirect(
        lti_url_for("pages.course_dashboard", course_id=course_id, links=code), code=303
    )


# --------------------------------------------------------------------------- API


def _choice_json(choice: offering_links.OfferingChoice) -> dict[str, Any]:
    c = choice.candidate
    return {
        "moodle_course_id": c.courseid,
        "shortname": c.shortname,
        "fullname": c.fullname,
        "start": c.startdate or None,
        "end": c.enddate or None,
        "students": choice.students,
        "match": c.match,
        "ended_before": c.ended_before,
        "link_status": choice.link_status,
    }


@bp.get("/api/v1/courses/<id:course_id>/past-offerings")
@require_teacher
def api_candidates(course_id: int) -> Any:
    """The Moodle courses the teacher taught before this one, best first, with the state of
    each one's link; 502 when Moodle cannot answer."""
    course = api_course(course_id)
    session = db()
    site = session.get_one(MoodleSite, course.site_id)
    try:
        userid = offering_links.teacher_moodle_id(current_person())
        choices = offering_links.find_candidates(session, moodle_client(site), course, userid)
    except offering_links.LinkError as exc:
        return error_response(409, N_("Not possible"), LINK_ERRORS[exc.code], code=exc.code)
    except SyncConfigError as exc:
        return error_response(409, N_("No Moodle connection"), str(exc), code="no_connection")
    except MoodleError as exc:
        return error_response(502, N_("Moodle did not answer"), str(exc), code="moodle_error")
    return jsonify(
        candidates=[_choice_json(c) for c in choices],
        approval_required=db().get_one(MoodleSite, course.site_id).link_approval_required,
    )


def _course_ids(body: object) -> list[int] | None:
    """The body's `moodle_course_ids` (JSON numbers that are whole: `3` or `3.0`), None when
    the body is not `{"moodle_course_ids": [...]}` alone."""
    if not isinstance(body, dict) or set(body) != {"moodle_course_ids"}:
        return None
    raw = body["moodle_course_ids"]
    if not isinstance(raw, list):
        return None
    ids = []
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if isinstance(value, float) and not value.is_integer():
            return None
        if not 0 < value < 2**31:
            return None
        ids.append(int(value))
    return ids


@bp.post("/api/v1/courses/<id:course_id>/past-offerings")
@require_teacher
def api_link(course_id: int) -> Any:
    """Link past offerings: `{"moodle_course_ids": [3, 4]}`. 202 with the links' states and
    the backfill's progress; 403 (`not_taught`) when one of them is not a course the teacher
    taught (nothing linked); 400 for a malformed body."""
    course = api_course(course_id)
    body = request.get_json(silent=True)
    ids = _course_ids(body)
    if ids is None:
        return error_response(
            400,
            N_("Malformed request"),
            N_('Send {"moodle_course_ids": [...]}, a list of Moodle course ids.'),
            code="bad_request",
        )
    try:
        outcome = _link(course, ids)
    except offering_links.LinkError as exc:
        _refused(course, exc)
        status = 403 if exc.code == "not_taught" else 400
        return error_response(status, N_("Not linked"), str(exc), code=exc.code)
    except SyncConfigError as exc:
        return error_response(409, N_("No Moodle connection"), str(exc), code="no_connection")
    except MoodleError as exc:
        return error_response(502, N_("Moodle did not answer"), str(exc), code="moodle_error")
    return jsonify(
        active=outcome.active,
        pending=outcome.pending,
        request_id=outcome.request_id,
        progress=sync_requests.progress(db(), course.id),
    ), 202


# --------------------------------------------------------------------------- administrators


@bp.post("/admin/sites/<id:site_id>/link-approval")
@require_admin
def set_link_approval(site_id: int) -> Any:
    """Whether teachers' links on this site wait for an administrator's approval."""
    site = db().get(MoodleSite, site_id)
    if site is None:
        return error_response(404, N_("Not found"), N_("This Moodle site is unknown."))
    ctx = current()
    site.link_approval_required = request.form.get("required") == "1"
    audit.record(
        db(),
        "site.link_approval",
        "accepted",
        None,
        person_id=ctx.person_id if ctx else None,
        details={"site_id": site.id, "required": site.link_approval_required},
    )
    return redirect(lti_url_for("pages.admin") + "#links-title", code=303)


@bp.post("/admin/links/<id:link_id>/decision")
@require_admin
def decide_link(link_id: int) -> Any:
    """Approve (then backfill) or reject a teacher's pending link."""
    ctx = current()
    assert ctx is not None
    approve = request.form.get("decision") == "approve"
    try:
        link = offering_links.decide(db(), link_id, ctx.person_id, approve=approve)
    except offering_links.LinkError:
        return error_response(
            409, N_("Already decided"), N_("This link is not waiting for a decision.")
        )
    audit.record(
        db(),
        "course.past_offerings",
        "approved" if approve else "rejected",
        "admin page",
        person_id=ctx.person_id,
        course_id=link.course_id,
        details={"past_course_id": link.past_course_id},
    )
    return redirect(lti_url_for("pages.admin") + "#links-title", code=303)


__all__ = ["LINK_ERRORS", "bp"]

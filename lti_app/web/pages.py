"""Landing pages after a launch (placeholders for the real dashboards) and their JSON twins.

Each view states its access rule with a decorator from `lti_app.web.auth`; the per-learner
views also check that the learner belongs to the launch's course.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, redirect, render_template, request
from sqlalchemy import desc, select

from lti_app.config import Settings
from lti_app.crypto import SecretBox
from lti_app.models import AuditEvent, Course, Enrolment, LtiPlatform, Person, ToolKey
from lti_app.services import audit
from lti_app.services.lti_registry import DbToolConf
from lti_app.services.nrps import (
    RosterError,
    TimeoutSession,
    course_roster,
    fetch_members,
    store_members,
)
from lti_app.web.auth import (
    can_view_person,
    current,
    error_response,
    lti_url_for,
    require_admin,
    require_course_member,
    require_session,
    require_teacher,
)

bp = Blueprint("pages", __name__)


def _db() -> Any:
    from lti_app.app import db_session

    return db_session()


def _settings() -> Settings:
    settings: Settings = current_app.extensions["arche_predict"]["settings"]
    return settings


def _course(course_id: int) -> Course | None:
    course: Course | None = _db().get(Course, course_id)
    return course


def _enrolled(course_id: int, person_id: int) -> bool:
    return (
        _db().scalar(
            select(Enrolment.id).where(
                Enrolment.course_id == course_id,
                Enrolment.person_id == person_id,
                Enrolment.active.is_(True),
            )
        )
        is not None
    )


def _person_json(person: Person, role: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": person.id,
        "moodle_user_id": person.moodle_user_id,
        "fullname": person.fullname,
    }
    if role is not None:
        data["role"] = role
    return data


@bp.get("/course/<int:course_id>")
@require_teacher
def course_dashboard(course_id: int) -> Any:
    course = _course(course_id)
    if course is None:
        return error_response(404, "Not found", "This course is unknown.")
    ctx = current()
    return render_template("teacher.html", course=course, ctx=ctx)


@bp.get("/course/<int:course_id>/roster")
@require_teacher
def roster(course_id: int) -> Any:
    course = _course(course_id)
    if course is None:
        return error_response(404, "Not found", "This course is unknown.")
    ctx = current()
    assert ctx is not None
    return render_template(
        "roster.html",
        course=course,
        members=course_roster(_db(), course),
        can_refresh=bool(ctx.details.get("nrps_url")),
        refreshed=request.args.get("refreshed"),
    )


@bp.post("/course/<int:course_id>/roster/refresh")
@require_teacher
def roster_refresh(course_id: int) -> Any:
    """Fetch the roster through Names and Roles (the launch's NRPS claim)."""
    ctx = current()
    assert ctx is not None
    course = _course(course_id)
    url = ctx.details.get("nrps_url")
    if course is None or not url:
        return error_response(
            409, "Unavailable", "This launch did not offer the Names and Roles service."
        )
    platform = _db().get(LtiPlatform, ctx.platform_id)
    box: SecretBox = current_app.extensions["arche_predict"]["secret_box"]
    registration = DbToolConf(_db(), box).find_registration_by_params(
        platform.issuer, platform.client_id
    )
    if registration is None or registration.get_kid() is None:
        return error_response(
            503, "Not configured", "The tool has no signing key; run `arche-predict keys rotate`."
        )
    try:
        members = fetch_members(
            registration, str(url), TimeoutSession(_settings().lti.http_timeout)
        )
    except RosterError as exc:
        return error_response(502, "Roster unavailable", str(exc))
    result = store_members(_db(), course, members)
    audit.record(
        _db(),
        "nrps.roster",
        "accepted",
        None,
        platform_id=ctx.platform_id,
        person_id=ctx.person_id,
        course_id=course_id,
        details={"members": result.members, "skipped": result.skipped},
    )
    if request.accept_mimetypes.best == "application/json":
        return jsonify(
            members=result.members,
            learners=result.learners,
            teachers=result.teachers,
            skipped=result.skipped,
        )
    return redirect(
        lti_url_for("pages.roster", course_id=course_id, refreshed=result.members), code=303
    )


@bp.get("/course/<int:course_id>/me")
@require_course_member
def my_page(course_id: int) -> Any:
    ctx = current()
    assert ctx is not None
    return learner_page(course_id=course_id, person_id=ctx.person_id)


@bp.get("/course/<int:course_id>/learners/<int:person_id>")
@require_course_member
def learner_page(course_id: int, person_id: int) -> Any:
    ctx = current()
    assert ctx is not None
    if not can_view_person(ctx, course_id, person_id, _enrolled(course_id, person_id)):
        return error_response(403, "Forbidden", "You can only see your own page.")
    person = _db().get(Person, person_id)
    course = _course(course_id)
    if person is None or course is None:
        return error_response(404, "Not found", "This person is unknown.")
    return render_template("learner.html", course=course, person=person, ctx=ctx)


@bp.get("/admin")
@require_admin
def admin() -> Any:
    platforms = list(_db().scalars(select(LtiPlatform).order_by(LtiPlatform.id)))
    keys = list(_db().scalars(select(ToolKey).order_by(desc(ToolKey.id))))
    rejected = list(
        _db().scalars(
            select(AuditEvent)
            .where(AuditEvent.outcome == "rejected")
            .order_by(desc(AuditEvent.id))
            .limit(50)
        )
    )
    return render_template("admin.html", platforms=platforms, keys=keys, rejected=rejected)


# --------------------------------------------------------------------------- JSON API


@bp.get("/api/session")
@require_session
def api_session() -> Any:
    ctx = current()
    assert ctx is not None
    return jsonify(
        course_id=ctx.course_id,
        person_id=ctx.person_id,
        role=ctx.role,
        is_admin=ctx.is_admin,
        message_type=ctx.message_type,
    )


@bp.get("/api/course/<int:course_id>/roster")
@require_teacher
def api_roster(course_id: int) -> Any:
    course = _course(course_id)
    if course is None:
        return error_response(404, "Not found", "This course is unknown.")
    return jsonify(members=[_person_json(p, r) for p, r in course_roster(_db(), course)])


@bp.get("/api/course/<int:course_id>/learners/<int:person_id>")
@require_course_member
def api_learner(course_id: int, person_id: int) -> Any:
    ctx = current()
    assert ctx is not None
    if not can_view_person(ctx, course_id, person_id, _enrolled(course_id, person_id)):
        return error_response(403, "Forbidden", "You can only see your own data.")
    person = _db().get(Person, person_id)
    if person is None:
        return error_response(404, "Not found", "This person is unknown.")
    return jsonify(person=_person_json(person))

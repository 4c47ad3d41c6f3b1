"""The learner's "How this works — your data" page (issue #18, items 1 and 2), their own data
as JSON, their choice to opt out (or in), and the settings behind the choice: the teacher's
per course, the administrator's per site.

Every route but the two settings is the learner's own: it acts on the launch's person only,
never on an id from the request. The page is the same for a teacher (who can read what their
learners are told); the choice form shows to learners only.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, render_template, request

from lti_app.models import MoodleSite, Person
from lti_app.services import audit, consent
from lti_app.services.insights import active_models
from lti_app.services.privacy import export_person, export_text
from lti_app.web.auth import (
    N_,
    current,
    error_response,
    lti_url_for,
    require_admin,
    require_course_member,
    require_teacher,
)
from lti_app.web.common import db, page_course, settings
from lti_app.web.views.course import quality_sentences
from lti_app.web.views.wording import ngettext

bp = Blueprint("my_data", __name__)

CHOICE_CODES = frozenset({"out", "in"})


def _duration(days: int) -> str | None:
    """A retention in words: whole years when it is ("3 years"), else days; None for "kept
    until deleted" (0)."""
    if days <= 0:
        return None
    if days % 365 == 0:
        years = days // 365
        return ngettext("%(num)s year", "%(num)s years", years)
    return ngettext("%(num)s day", "%(num)s days", days)


@bp.get("/course/<id:course_id>/my-data")
@require_course_member
def page(course_id: int) -> Any:
    course = page_course(course_id)
    ctx = current()
    assert ctx is not None
    session = db()
    versions = {k: v for k, v in active_models(session, course.id).items() if v is not None}
    shown = any(v.gate_passed for v in versions.values())
    retention = settings().retention
    code = request.args.get("choice")
    return render_template(
        "my_data.html",
        course=course,
        ctx=ctx,
        mode=consent.consent_mode(session, course),
        may_choose=consent.may_choose(session, course),
        used=consent.is_used(session, course, ctx.person_id),
        choice=consent.choice_of(session, course.id, ctx.person_id),
        quality=quality_sentences(versions) if shown else [],
        shown=shown,
        years={
            "events": _duration(retention.events_days_after_end),
            "predictions": _duration(retention.predictions_days_after_end),
            "follow_ups": _duration(retention.follow_ups_days_after_end),
            "access": _duration(retention.access_log_days),
        },
        choice_code=code if code in CHOICE_CODES else None,
    )


@bp.get("/course/<id:course_id>/my-data.json")
@require_course_member
def download(course_id: int) -> Any:
    """Everything stored about the launch's person, as `arche-predict privacy export` writes it
    (their right of access, without asking anyone)."""
    page_course(course_id)
    ctx = current()
    assert ctx is not None
    session = db()
    data = export_person(session, session.get_one(Person, ctx.person_id))
    audit.record(
        session, "privacy.export", "accepted", "own data", person_id=ctx.person_id,
        course_id=course_id,
    )  # fmt: skip
    return Response(
        export_text(data),
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="arche-predict-my-data.json"'},
    )


@bp.post("/course/<id:course_id>/my-data/choice")
@require_course_member
def choose(course_id: int) -> Any:
    """The learner's own choice: "out" (no estimate of them, their data left out of training)
    or "in". Refused where the course offers no choice."""
    course = page_course(course_id)
    ctx = current()
    assert ctx is not None
    session = db()
    choice = request.form.get("choice", "")
    if choice not in CHOICE_CODES:
        return error_response(400, N_("Malformed request"), N_("Choose in or out."))
    # Opting back in is always possible; opting out only where the course offers it.
    if ctx.is_teacher or (choice == "out" and not consent.may_choose(session, course)):
        return error_response(
            403, N_("Forbidden"), N_("This course does not offer learners this choice.")
        )
    consent.set_choice(session, course, ctx.person_id, choice)
    audit.record(
        session, "privacy.choice", "accepted", choice, person_id=ctx.person_id,
        course_id=course.id,
    )  # fmt: skip
    return redirect(lti_url_for("my_data.page", course_id=course_id, choice=choice), code=303)


@bp.post("/course/<id:course_id>/opt-out")
@require_teacher
def opt_out_allowed(course_id: int) -> Any:
    """The teacher decides whether the course's learners may opt out (within the site's mode)."""
    course = page_course(course_id)
    ctx = current()
    assert ctx is not None
    course.opt_out_allowed = request.form.get("allowed") == "1"
    audit.record(
        db(), "course.opt_out_allowed", "accepted", None, person_id=ctx.person_id,
        course_id=course.id, details={"allowed": course.opt_out_allowed},
    )  # fmt: skip
    return redirect(lti_url_for("pages.course_dashboard", course_id=course_id), code=303)


@bp.post("/admin/sites/<id:site_id>/consent")
@require_admin
def consent_mode(site_id: int) -> Any:
    """Whose data the tool uses on this site: everyone's (teachers decide on opting out) or
    only the learners who opted in."""
    site = db().get(MoodleSite, site_id)
    if site is None:
        return error_response(404, N_("Not found"), N_("This Moodle site is unknown."))
    mode = request.form.get("mode", "")
    if mode not in consent.CONSENT_MODES:
        return error_response(400, N_("Malformed request"), N_("Choose teacher or opt_in."))
    ctx = current()
    site.consent_mode = mode
    db().flush()
    consent.apply_mode(db(), site.id)  # nobody whose data may not be used stays on a page
    audit.record(
        db(), "site.consent_mode", "accepted", mode,
        person_id=ctx.person_id if ctx else None, details={"site_id": site.id},
    )  # fmt: skip
    return redirect(lti_url_for("pages.admin") + "#sites-title", code=303)


__all__ = ["bp"]

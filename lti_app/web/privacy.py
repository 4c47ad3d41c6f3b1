"""The admin page's privacy forms (issue #18): a person's data downloaded as JSON, or erased,
as `arche-predict privacy export|erase` does (item 3); and the groups a site's fairness audit
compares (item 7). Administrators only; an erasure needs "ERASE" typed beside the button;
everything is audited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, redirect, render_template, request

from lti_app.models import MoodleSite
from lti_app.services import audit, fairness, training_cache
from lti_app.services.privacy import (
    PrivacyError,
    erase_person,
    export_person,
    export_text,
    find_person,
)
from lti_app.web.auth import N_, current, error_response, lti_url_for, require_admin
from lti_app.web.common import db, settings
from lti_app.web.views.wording import _

bp = Blueprint("privacy", __name__)


def _int(name: str) -> int | None:
    raw = request.form.get(name, "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _page(ok: bool, text: str, status: int) -> Any:
    from lti_app.web.pages import admin_data

    return render_template(
        "admin.html", **admin_data(), check=None, privacy_message={"ok": ok, "text": text}
    ), status


@bp.post("/admin/privacy")
@require_admin
def admin_privacy() -> Any:
    ctx = current()
    assert ctx is not None
    session = db()
    try:
        person = find_person(
            session,
            person_id=_int("person"),
            moodle_user_id=_int("moodle_user"),
            site_id=_int("site"),
        )
    except PrivacyError:
        return _page(
            False,
            _(
                "No such person, or a Moodle user id several sites hold: give a person id, or a "
                "Moodle user id and its site."
            ),
            404,
        )
    if request.form.get("action") == "export":
        data = export_person(session, person)
        audit.record(
            session, "privacy.export", "accepted", "admin page",
            person_id=ctx.person_id, details={"person": person.id},
        )  # fmt: skip
        return Response(
            export_text(data),
            mimetype="application/json",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="arche-predict-person-{person.id}.json"'
                )
            },
        )
    if request.form.get("action") != "erase" or request.form.get("confirm", "").strip() != "ERASE":
        return _page(False, _("Not erased: type ERASE beside the button to confirm."), 400)
    erased_id = person.id
    report = erase_person(session, person)
    # The kept training sets hold past students' features: gone, rebuilt at the next scoring.
    training_cache.clear(settings().model_root)
    # An administrator erasing themself is no longer there to be named as the actor.
    actor = None if erased_id == ctx.person_id else ctx.person_id
    audit.record(
        session, "privacy.erase", "accepted", "admin page", person_id=actor,
        details={"deleted": report.deleted, "marked_versions": len(report.marked_versions)},
    )  # fmt: skip
    return _page(
        True,
        _(
            "Person %(id)s erased: %(rows)s rows deleted; %(models)s model versions will be "
            "retrained at the next scoring.",
            id=erased_id,
            rows=sum(report.deleted.values()),
            models=len(report.marked_versions),
        ),
        200,
    )


@bp.post("/admin/sites/<id:site_id>/fairness")
@require_admin
def fairness_groups(site_id: int) -> Any:
    """The roster attributes this site's fairness audit compares the estimates across: only
    those an administrator declares lawful and relevant; un-declaring one deletes its values."""
    session = db()
    site = session.get(MoodleSite, site_id)
    if site is None:
        return error_response(404, N_("Not found"), N_("This Moodle site is unknown."))
    try:
        declared = fairness.declare(
            session, site, fairness.parse_groups(request.form.get("groups", ""))
        )
    except fairness.FairnessGroupsError:
        return error_response(
            400,
            N_("Malformed request"),
            N_(
                "Fairness groups are roster attributes: department, institution, city, country, "
                "or profile_field_ followed by a custom profile field's short name, separated "
                "by commas."
            ),
        )
    ctx = current()
    audit.record(
        session, "site.fairness_groups", "accepted", ", ".join(declared) or "none",
        person_id=ctx.person_id if ctx else None, details={"site_id": site.id},
    )  # fmt: skip
    return redirect(lti_url_for("pages.admin") + "#fairness-title", code=303)


__all__ = ["bp"]

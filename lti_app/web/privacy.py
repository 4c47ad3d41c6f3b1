"""The admin page's privacy form (issue #18, item 3): a person's data downloaded as JSON, or
erased, as `arche-predict privacy export|erase` does. Administrators only; an erasure needs
"ERASE" typed beside the button; both are audited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request

from lti_app.services import audit
from lti_app.services.privacy import (
    PrivacyError,
    erase_person,
    export_person,
    export_text,
    find_person,
)
from lti_app.web.auth import current, require_admin
from lti_app.web.common import db
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
        person = find_person(session, person_id=_int("person"), moodle_user_id=_int("moodle_user"))
    except PrivacyError:
        return _page(False, _("No such person: give a person id or a Moodle user id."), 404)
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
    audit.record(
        session, "privacy.erase", "accepted", "admin page", person_id=ctx.person_id,
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


__all__ = ["bp"]

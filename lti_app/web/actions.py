"""What a teacher does about the at-risk list (issue #16): contact students through Moodle
messaging (compose, preview per student, send, results per recipient, the contact log), follow
a student up (notes and a status, optionally a Moodle course note), put the flagged students in
a Moodle group, refresh the course's groups, and turn the weekly digest on or off.

Every route is the course's teachers' only (`require_teacher`); learners never reach notes,
statuses or contacts (tests/lti_app/lti/test_access_matrix.py). Moodle being down or refusing
is an outcome on the page, never a 500: the services record what Moodle answered.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request
from flask_babel import format_date, get_locale
from sqlalchemy import func, select

from lti_app.db import utcnow
from lti_app.models import FOLLOW_UP_STATUSES, Contact, Course, MoodleSite, Person, Prediction
from lti_app.services import audit, contacts, course_groups, follow_ups, watch
from lti_app.services.connections import SyncConfigError
from lti_app.services.contact_effect import ContactEffectSummary, contact_effect
from lti_app.services.course_settings import risk_threshold_of
from lti_app.services.insights import latest_as_of
from lti_app.web import i18n
from lti_app.web.auth import N_, current, error_response, lti_url_for, require_teacher
from lti_app.web.common import current_person, db, enrolled, moodle_client, page_course, settings
from moodle_client.errors import MoodleError

bp = Blueprint("actions", __name__)


def _locale() -> str:
    return str(get_locale() or "en")[:2]


def _person_ids() -> list[int]:
    return [int(v) for v in request.form.getlist("person") if v.isdigit()]


def _threshold(course: Course) -> float:
    return risk_threshold_of(course, settings().ml)


# --------------------------------------------------------------------------- contact


@bp.post("/course/<id:course_id>/contact")
@require_teacher
def contact(course_id: int) -> Any:
    """One form, three steps: compose (the picked students, a template), preview (each
    student's message as they will get it), send (or, without messaging, record that the
    teacher wrote from the address list)."""
    course = page_course(course_id)
    session = db()
    site = session.get_one(MoodleSite, course.site_id)
    locale = _locale()
    step = request.form.get("step", "compose")
    picked = contacts.recipients(session, course, _person_ids(), _threshold(course))
    # The template and language in force are the ones whose text was loaded into the editor
    # (hidden fields): a dropdown changed without "Use this template" leaves the text as it
    # was, so the log must not name the dropdown's choice.
    text = request.form.get("text")
    loading = text is None or bool(request.form.get("load_template"))
    template = (
        request.form.get("template")
        if loading
        else request.form.get("loaded_template") or request.form.get("template")
    ) or "checkin"
    if template not in contacts.TEMPLATES:
        template = "custom"
    template_locale = (
        request.form.get("template_locale")
        if loading
        else request.form.get("loaded_locale") or request.form.get("template_locale")
    ) or locale
    if text is None or loading:
        text = contacts.template_text(template, template_locale)
    batch = request.form.get("batch") or contacts.new_batch_id()
    problem = contacts.messaging_problem(site)
    view: dict[str, Any] = {
        "course": course,
        "picked": picked,
        "template": template,
        "template_locale": template_locale,
        "text": text,
        "batch": batch,
        "problem": problem,
        "problem_words": (site.unavailable_features or {}).get("messaging"),
        "templates": list(contacts.TEMPLATES),
        "placeholders": contacts.placeholder_names(template_locale),
        "error": None,
        "previews": [],
        "labels": contacts.student_labels(session, course.id),
    }
    if not picked:
        view["error"] = {"code": "no_recipients"}
        return render_template("contact.html", **view), 400
    if step in ("preview", "send", "listed"):
        try:
            contacts.check_text(text)
        except contacts.ContactError as exc:
            view["error"] = {"code": exc.code, **exc.values}
            return render_template("contact.html", **view), 400
    me = current_person()
    if step == "preview":
        view["previews"] = [
            (r, contacts.render(text, r, course, me.fullname, template_locale)) for r in picked
        ]
        return render_template("contact.html", **view)
    if step == "listed":
        contacts.record_listed(
            session, course=course, sender=me, recipients_=picked, batch=batch,
            template=template, text=text, locale=template_locale,
        )  # fmt: skip
        return redirect(lti_url_for("actions.contact_batch", course_id=course.id, batch=batch), 303)
    if step != "send":
        return render_template("contact.html", **view)
    if problem is not None:
        view["error"] = {"code": "messaging_unavailable"}
        return render_template("contact.html", **view), 409
    try:
        client = moodle_client(site)
    except SyncConfigError:
        view["error"] = {"code": "messaging_unavailable"}
        return render_template("contact.html", **view), 409
    service_error: MoodleError | None = None
    for r in picked:
        _, service_error = contacts.send_one(
            session, client, course=course, site=site, sender=me, recipient=r, batch=batch,
            template=template, text=text, locale=template_locale, service_error=service_error,
        )  # fmt: skip
        # One recipient at a time on disk: a crash mid-batch leaves "unknown", never a resend.
        session.commit()
    audit.record(
        session, "contact.sent", "accepted", None, person_id=me.id, course_id=course.id,
        details={"batch": batch, "recipients": len(picked), "template": template},
    )  # fmt: skip
    return redirect(lti_url_for("actions.contact_batch", course_id=course.id, batch=batch), 303)


@bp.get("/course/<id:course_id>/contacts/<batch>")
@require_teacher
def contact_batch(course_id: int, batch: str) -> Any:
    course = page_course(course_id)
    rows = contacts.batch_results(db(), course, batch[:32])
    if not rows:
        return error_response(404, N_("Not found"), N_("No contact of this course has this id."))
    labels = contacts.student_labels(db(), course.id)
    return render_template("contact_results.html", course=course, rows=rows, labels=labels)


@bp.get("/course/<id:course_id>/contacts")
@require_teacher
def contact_log(course_id: int) -> Any:
    course = page_course(course_id)
    return render_template("contacts.html", course=course, log=contacts.contact_log(db(), course))


# --------------------------------------------------------------------------- follow-up


@bp.route("/course/<id:course_id>/learners/<id:person_id>/follow-up", methods=["GET", "POST"])
@require_teacher
def follow_up(course_id: int, person_id: int) -> Any:
    course = page_course(course_id)
    session = db()
    student = session.get(Person, person_id)
    if student is None or not enrolled(course.id, person_id):
        return error_response(
            403, N_("Forbidden"), N_("This person is not enrolled in this course.")
        )
    threshold = _threshold(course)
    shown = contacts.recipients(session, course, [person_id], threshold)
    site = session.get_one(MoodleSite, course.site_id)
    outcome: dict[str, Any] | None = None
    status = 200
    if request.method == "POST":
        me = current_person()
        try:
            row = follow_ups.add_follow_up(
                session, course, student, me,
                status=request.form.get("status"), note=request.form.get("note"),
                threshold=threshold,
            )  # fmt: skip
        except follow_ups.FollowUpError as exc:
            outcome, status = {"code": str(exc)}, 400
        else:
            outcome = {"code": "saved"}
            if request.form.get("mirror") == "1":
                try:
                    mirror = follow_ups.mirror_to_moodle(
                        session, moodle_client(site), site, course, row, student, me
                    )
                except SyncConfigError as exc:
                    mirror = follow_ups.MirrorOutcome(None, str(exc))
                outcome["mirror"] = mirror
    return render_template(
        "follow_up.html",
        course=course,
        student=student,
        student_name=contacts.student_labels(session, course.id).get(student.id, student.fullname),
        shown=shown[0] if shown else None,
        risk_threshold=threshold,
        history=follow_ups.history(session, course, person_id),
        log=contacts.contact_log(session, course, person_id),
        statuses=FOLLOW_UP_STATUSES,
        outcome=outcome,
        notes_problem=(site.unavailable_features or {}).get("notes"),
        can_mirror=bool(site.ws_token_encrypted),
    ), status


# --------------------------------------------------------------------------- groups


@bp.post("/course/<id:course_id>/risk-group")
@require_teacher
def risk_group(course_id: int) -> Any:
    """Put the students at risk now into the Moodle group "At risk - week N" (made when
    missing, its members brought up to date otherwise)."""
    course = page_course(course_id)
    session = db()
    site = session.get_one(MoodleSite, course.site_id)
    threshold = _threshold(course)
    at_risk = watch.at_risk_ids(session, course, threshold)
    people = sorted(
        (p for p in (session.get(Person, pid) for pid in at_risk) if p is not None),
        key=lambda p: (p.fullname.lower(), p.id),
    )
    week = course_groups.term_week(course.start_at, latest_as_of(session, course.id))
    name = course_groups.risk_group_name(week, _locale())
    result: dict[str, Any] = {
        "name": name,
        "students": people,
        "labels": contacts.student_labels(session, course.id),
    }
    code = 200
    if not people:
        result["error"] = "nobody"
        code = 400
    else:
        try:
            result["outcome"] = course_groups.update_risk_group(
                session, moodle_client(site), site, course, students=people, name=name,
                description="arche-predict", teacher_id=current().person_id,  # type: ignore[union-attr]
            )  # fmt: skip
        except (MoodleError, SyncConfigError) as exc:
            result["error"] = "moodle"
            result["reason"] = getattr(exc, "explanation", "") or str(exc)
            code = 502 if isinstance(exc, MoodleError) else 409
    return render_template("group_result.html", course=course, result=result), code


@bp.post("/course/<id:course_id>/groups/refresh")
@require_teacher
def groups_refresh(course_id: int) -> Any:
    course = page_course(course_id)
    session = db()
    site = session.get_one(MoodleSite, course.site_id)
    try:
        found = course_groups.sync_groups(session, moodle_client(site), site, course)
    except SyncConfigError:
        found = None
    code = "groups_refreshed" if found is not None else "groups_unavailable"
    return redirect(lti_url_for("pages.course_dashboard", course_id=course_id, actions=code), 303)


# --------------------------------------------------------------------------- digest


@bp.post("/course/<id:course_id>/digest")
@require_teacher
def digest(course_id: int) -> Any:
    course = page_course(course_id)
    enabled = request.form.get("enabled") == "1"
    watch.set_digest(db(), course.id, current().person_id, enabled=enabled, locale=_locale())  # type: ignore[union-attr]
    audit.record(
        db(), "digest.toggled", "accepted", None, person_id=current().person_id,  # type: ignore[union-attr]
        course_id=course.id, details={"enabled": enabled},
    )  # fmt: skip
    code = "digest_on" if enabled else "digest_off"
    return redirect(lti_url_for("pages.course_dashboard", course_id=course_id, actions=code), 303)


# --------------------------------------------------------------------------- the dashboard's part


#: The contact effect's comparison costs up to a second on a large course: kept per course
#: until a contact or a scoring is added (the key says what it was computed from).
_EFFECTS: dict[int, tuple[tuple[Any, ...], ContactEffectSummary]] = {}


def _contact_effect(course: Course) -> ContactEffectSummary:
    session = db()
    newest = session.execute(
        select(
            select(func.max(Contact.id)).where(Contact.course_id == course.id).scalar_subquery(),
            select(func.max(Prediction.id))
            .where(Prediction.course_id == course.id)
            .scalar_subquery(),
        )
    ).one()
    key = (newest[0], newest[1], utcnow().date())
    found = _EFFECTS.get(course.id)
    if found is not None and found[0] == key:
        return found[1]
    summary = contact_effect(session, course, settings=settings().ml)
    _EFFECTS[course.id] = (key, summary)
    return summary


def dashboard_actions(course: Course, person_id: int) -> dict[str, Any]:
    """What the dashboard shows beside the cached table, per teacher and per request: the
    students who became at risk since this teacher's last visit, each student's last contact
    and status (in words, for dashboard.js to put in the table), the course's groups and their
    members, the digest switch, which actions the site cannot do (with Moodle's explanation),
    how often teachers agreed with the flags and what the contacts changed."""
    session = db()
    site = session.get_one(MoodleSite, course.site_id)
    now = utcnow()
    since = watch.record_visit(session, course.id, person_id, now)
    threshold = _threshold(course)
    new = watch.became_at_risk(session, course, since, threshold)
    last = contacts.last_contacts(session, course.id)
    verdicts = follow_ups.status_rows(session, course.id)
    statuses = follow_ups.latest_statuses(session, course.id, verdicts)
    groups, members = course_groups.groups_and_memberships(session, course.id)
    people = set(last) | set(statuses) | set(members) | new
    sub = watch.subscription(session, course.id, person_id)
    status_word = i18n.coded_words(i18n.FOLLOW_UP_STATUS_WORDS)
    return {
        "since": since,
        "new_count": len(new),
        "groups": [{"id": gid, "name": name} for gid, name in groups],
        "people": {
            str(pid): {
                "new": pid in new,
                "contacted": (
                    str(format_date(last[pid], format="medium")) if pid in last else None
                ),
                "status": statuses[pid][0] if pid in statuses else None,
                "status_text": status_word(statuses[pid][0]) if pid in statuses else None,
                "groups": members.get(pid, []),
            }
            for pid in people
        },
        "digest": bool(sub and sub.enabled),
        "unavailable": dict(site.unavailable_features or {}),
        "messaging_problem": contacts.messaging_problem(site),
        "can_call_moodle": bool(site.ws_token_encrypted),
        "agreement": follow_ups.flag_agreement(session, course.id, verdicts),
        "effect": _contact_effect(course),
    }


__all__ = ["bp", "dashboard_actions"]

"""The pages inside Moodle's iframe: the teacher's course dashboard (with its CSV export and the
learner-view switch), the roster, the student page (a teacher's view of one learner, or a
learner's own estimate) and the admin page. Scripts and integrations read the JSON API
(`lti_app.web.api`, `/api/v1/...`).

Each view states its access rule with a decorator from `lti_app.web.auth`; the per-learner
views also check that the learner belongs to the launch's course. The data and its wording
come from `lti_app.web.views` over the services, so a view here only decides who sees what.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from sqlalchemy import desc, select

from lti_app.crypto import SecretBox
from lti_app.models import (
    AuditEvent,
    Course,
    LtiPlatform,
    ModelVersion,
    MoodleSite,
    Person,
    SyncRun,
    ToolKey,
)
from lti_app.services import (
    access_log,
    audit,
    consent,
    job_runs,
    live_validation,
    offering_links,
    sync_requests,
)
from lti_app.services.course_settings import estimates_pass_mark, risk_threshold_of
from lti_app.services.insights import (
    InsightError,
    ModelCache,
    active_models,
    student_detail,
    students_table,
)
from lti_app.services.lti_registry import DbToolConf
from lti_app.services.nrps import (
    RosterError,
    TimeoutSession,
    course_members,
    fetch_members,
    store_members,
)
from lti_app.services.page_cache import PageCache
from lti_app.web.actions import dashboard_actions
from lti_app.web.admin_courses import CODES as DATES_CODES
from lti_app.web.auth import (
    N_,
    can_view_person,
    current,
    error_response,
    lti_url_for,
    request_launch_token,
    require_admin,
    require_course_member,
    require_teacher,
)
from lti_app.web.common import db as _db
from lti_app.web.common import enrolled as _enrolled
from lti_app.web.common import page_course
from lti_app.web.common import settings as _settings
from lti_app.web.course_settings import CODES as SETTINGS_CODES
from lti_app.web.views.course import cached_course_view, with_launch_token
from lti_app.web.views.course_csv import Lines
from lti_app.web.views.course_csv import students_csv as to_csv
from lti_app.web.views.course_csv import students_xlsx as to_xlsx
from lti_app.web.views.student import student_view

bp = Blueprint("pages", __name__)


#: The outcomes of the dashboard's own action forms, said at the top after the redirect.
ACTIONS_CODES = ("digest_on", "digest_off", "groups_refreshed", "groups_unavailable")


@bp.get("/course/<id:course_id>")
@require_teacher
def course_dashboard(course_id: int) -> Any:
    course = page_course(course_id)
    ctx = current()
    ext = current_app.extensions["arche_predict"]
    cache: PageCache[Any] = ext.setdefault("page_cache", PageCache())
    view = cached_course_view(_db(), course, ml=_settings().ml, cache=cache)
    if view["summary"]["state"] not in ("engagement_only", "no_data"):
        # The whole course's estimates were shown (#18, item 5).
        access_log.record(
            _db(), viewer_id=ctx.person_id if ctx else None, course_id=course.id, kind="dashboard"
        )
    body_html = with_launch_token(view["body_html"], request_launch_token() or "")
    code = request.args.get("settings")
    actions_code = request.args.get("actions")
    links_code = request.args.get("links")
    assert ctx is not None
    return render_template(
        "teacher.html",
        course=course,
        ctx=ctx,
        view=view,
        body_html=body_html,
        settings_code=code if code in SETTINGS_CODES else None,
        actions=dashboard_actions(course, ctx.person_id),
        actions_code=actions_code if actions_code in ACTIONS_CODES else None,
        links_code=links_code if links_code in ("linked", "linked_pending") else None,
        sync_open=sync_requests.open_request(_db(), course.id) is not None,
        min_group=_settings().privacy.min_group_size,
        # Past offerings linked or asked for (#17): the "Link past offerings" call is for a
        # course without estimates and with none, so only such a course asks.
        links_count=len(offering_links.links_of(_db(), course.id))
        if view["summary"]["state"] in ("engagement_only", "no_data")
        else None,
    )


def _students_file(course_id: int, ext: str, mimetype: str, build: Any) -> Response:
    """The at-risk table as a download, built server-side (so it holds every row and column),
    in the reader's language."""
    course = page_course(course_id)
    ctx = current()
    ml = _settings().ml
    threshold = risk_threshold_of(course, ml)
    versions = active_models(_db(), course.id)  # one read for the table and its pass mark
    body = build(
        students_table(_db(), course, threshold=threshold, models=versions),
        scale=ml.grade_max,
        lines=Lines(estimates_pass_mark(course, ml, versions), threshold),
    )
    # Recorded after the reading: a write holds SQLite's one write lock until the request ends.
    access_log.record(
        _db(), viewer_id=ctx.person_id if ctx else None, course_id=course.id, kind="export"
    )
    name = f"arche-predict-{course.shortname or course.id}.{ext}".replace(" ", "_")
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@bp.get("/course/<id:course_id>/students.csv")
@require_teacher
def students_csv(course_id: int) -> Any:
    return _students_file(course_id, "csv", "text/csv", to_csv)


@bp.get("/course/<id:course_id>/students.xlsx")
@require_teacher
def students_xlsx(course_id: int) -> Any:
    return _students_file(
        course_id,
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        to_xlsx,
    )


@bp.post("/course/<id:course_id>/learner-view")
@require_teacher
def learner_view_toggle(course_id: int) -> Any:
    """A teacher turns the learners' own view (page and API) on or off for the course."""
    course = page_course(course_id)
    ctx = current()
    assert ctx is not None
    course.learner_view_enabled = request.form.get("enabled") == "1"
    audit.record(
        _db(),
        "course.learner_view",
        "accepted",
        None,
        platform_id=ctx.platform_id,
        person_id=ctx.person_id,
        course_id=course_id,
        details={"enabled": course.learner_view_enabled},
    )
    return redirect(lti_url_for("pages.course_dashboard", course_id=course_id), code=303)


@bp.get("/course/<id:course_id>/roster")
@require_teacher
def roster(course_id: int) -> Any:
    course = page_course(course_id)
    ctx = current()
    assert ctx is not None
    return render_template(
        "roster.html",
        course=course,
        members=course_members(_db(), course),
        can_refresh=bool(ctx.details.get("nrps_url")),
        refreshed=request.args.get("refreshed"),
    )


@bp.post("/course/<id:course_id>/roster/refresh")
@require_teacher
def roster_refresh(course_id: int) -> Any:
    """Fetch the roster through Names and Roles (the launch's NRPS claim)."""
    ctx = current()
    assert ctx is not None
    course = page_course(course_id)
    url = ctx.details.get("nrps_url")
    if not url:
        return error_response(
            409, N_("Unavailable"), N_("This launch did not offer the Names and Roles service.")
        )
    platform = _db().get(LtiPlatform, ctx.platform_id)
    if platform is None:  # a session outlives its platform only if the platform was deleted
        return error_response(
            409, N_("Unavailable"), N_("This launch's platform is no longer registered.")
        )
    box: SecretBox = current_app.extensions["arche_predict"]["secret_box"]
    registration = DbToolConf(_db(), box).find_registration_by_params(
        platform.issuer, platform.client_id
    )
    if registration is None or registration.get_kid() is None:
        return error_response(
            503,
            N_("Not configured"),
            N_("The tool has no signing key; run `arche-predict keys rotate`."),
        )
    try:
        members = fetch_members(
            registration, str(url), TimeoutSession(_settings().lti.http_timeout)
        )
    except RosterError as exc:
        return error_response(502, N_("Roster unavailable"), str(exc))
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


@bp.get("/course/<id:course_id>/me")
@require_course_member
def my_page(course_id: int) -> Any:
    ctx = current()
    assert ctx is not None
    return learner_page(course_id=course_id, person_id=ctx.person_id)


@bp.get("/course/<id:course_id>/learners/<id:person_id>")
@require_course_member
def learner_page(course_id: int, person_id: int) -> Any:
    ctx = current()
    assert ctx is not None
    if not can_view_person(ctx, course_id, person_id, _enrolled(course_id, person_id)):
        return error_response(403, N_("Forbidden"), N_("You can only see your own page."))
    course = page_course(course_id)
    person = _db().get(Person, person_id)
    if person is None:
        return error_response(404, N_("Not found"), N_("This person is unknown."))
    if not ctx.is_teacher and not course.learner_view_enabled:
        return render_template("learner.html", course=course, person=person, ctx=ctx, view=None)
    # A learner who opted out (or has not opted in) is told so, not "no estimate" (#18).
    opted_out = not consent.is_used(_db(), course, person_id)
    try:
        threshold = risk_threshold_of(course, _settings().ml)
        detail = student_detail(_db(), course, person_id, threshold=threshold)
    except InsightError:
        # Enrolled but not a student (a mentor, a teacher): nothing to estimate.
        detail = {
            "person_id": person.id,
            "fullname": person.fullname,
            "latest": None,
            "features": {},
            "actionable": [],
            "history": [],
        }
    ext = current_app.extensions["arche_predict"]
    cache: ModelCache = ext.setdefault("model_cache", ModelCache())
    view = student_view(
        _db(),
        course,
        detail,
        for_teacher=ctx.is_teacher,
        model_root=_settings().model_root,
        cache=cache,
        page_cache=ext.setdefault("page_cache", PageCache()),
        ml=_settings().ml,
        min_group=_settings().privacy.min_group_size,
    )
    # Recorded after the reading: a write holds SQLite's one write lock until the request ends.
    access_log.record(
        _db(),
        viewer_id=ctx.person_id,
        course_id=course.id,
        kind="learner_page" if person_id == ctx.person_id else "student_page",
        subject_id=person_id,
    )
    template = "student.html" if ctx.is_teacher else "learner.html"
    return render_template(
        template, course=course, person=person, ctx=ctx, view=view, opted_out=opted_out
    )


@bp.get("/admin")
@require_admin
def admin() -> Any:
    code = request.args.get("dates")
    return render_template(
        "admin.html",
        **admin_data(),
        check=None,
        dates_code=code if code in DATES_CODES else None,
        dates_course=request.args.get("course", type=int),
    )


@bp.post("/admin/sites/<id:site_id>/check")
@require_admin
def admin_site_check(site_id: int) -> Any:
    """Run the Moodle connection check (what `arche-predict moodle check` prints) from the page:
    it calls Moodle, so it is a button, never done on every page view."""
    from lti_app.services.connections import SyncConfigError, moodle_client_for
    from lti_app.services.sites import note_release
    from moodle_client.check import run_check
    from moodle_client.errors import MoodleError

    site = _db().get(MoodleSite, site_id)
    if site is None:
        return error_response(404, N_("Not found"), N_("This Moodle site is unknown."))
    box: SecretBox = current_app.extensions["arche_predict"]["secret_box"]
    raw_course = request.form.get("moodle_course_id", "").strip()
    course_id = int(raw_course) if raw_course.isdigit() else None
    result: dict[str, Any] = {"site": site, "ok": False, "lines": []}
    try:
        client = moodle_client_for(_settings(), box, site)
        report = run_check(client, course_id, log_source=site.log_source)
        note_release(site, report.site.release or report.site.version)
        result.update(ok=report.ok, lines=report.lines())
    except (SyncConfigError, MoodleError) as exc:
        result["lines"] = [str(exc)]
    return render_template("admin.html", **admin_data(), check=result)


def admin_data() -> dict[str, Any]:
    from lti_app.scheduler import default_jobs
    from lti_app.web.lti import tool_config_values

    db = _db()
    runs = job_runs.last_runs(db)
    jobs = [{"job": job, "run": runs.get(job.name)} for job in default_jobs()]
    courses = {c.id: c for c in db.scalars(select(Course))}
    return {
        "values": tool_config_values(),
        "platforms": list(db.scalars(select(LtiPlatform).order_by(LtiPlatform.id))),
        "keys": list(db.scalars(select(ToolKey).order_by(desc(ToolKey.id)))),
        "sites": list(db.scalars(select(MoodleSite).order_by(MoodleSite.id))),
        "pending_links": offering_links.pending_links(db),
        "drifting": live_validation.drifting(db),
        "fairness_gap": _settings().privacy.fairness_gap,
        "access": access_log.latest(db),
        "runs": list(
            db.scalars(
                select(SyncRun).order_by(desc(SyncRun.started_at), desc(SyncRun.id)).limit(50)
            )
        ),
        "jobs": jobs,
        "scheduler_seen": job_runs.scheduler_seen(runs),
        "versions": list(
            db.scalars(
                select(ModelVersion)
                .order_by(desc(ModelVersion.trained_at), desc(ModelVersion.id))
                .limit(50)
            )
        ),
        "courses": courses,
        "rejected": list(
            db.scalars(
                select(AuditEvent)
                .where(AuditEvent.outcome == "rejected")
                .order_by(desc(AuditEvent.id))
                .limit(50)
            )
        ),
    }

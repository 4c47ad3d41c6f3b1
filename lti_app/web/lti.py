"""LTI 1.3 endpoints: OIDC login, launch, the tool's JWKS, the values to paste into Moodle,
and the deep-linking response.

Every refused login or launch answers a clear 4xx page and writes an `AuditEvent` with a reason
code (never the token). The login never forwards anything but the OIDC parameters: in
particular Moodle's `repost` parameter is never sent back to `auth.php`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request
from flask import url_for as flask_url_for
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException

from lti_app.crypto import SecretBox
from lti_app.db import utcnow
from lti_app.models import Course, LtiPlatform, LtiSession, Person
from lti_app.services import audit
from lti_app.services.lti_dynreg import DynamicRegistrationError, ToolUrls, redeem_code, register
from lti_app.services.lti_keys import current_key, ensure_key, published_jwks
from lti_app.services.lti_linking import (
    COURSE_PARAM,
    LaunchLink,
    LinkError,
    context_id_of,
    link_launch,
    sign_course_param,
)
from lti_app.services.lti_registry import DbToolConf, find_platform, issuer_known, url_origins
from lti_app.services.lti_sessions import fork_session, open_session
from lti_app.services.lti_storage import DbLaunchDataStorage, DbSessionService
from lti_app.services.nrps import TimeoutSession, memberships_url
from lti_app.web.auth import (
    N_,
    LaunchContext,
    allow_framing_by,
    context_of,
    cookie_session,
    current,
    error_response,
    fingerprint_of,
    forget_frame_origins,
    lti_url_for,
    make_launch_token,
    require_admin,
    require_session,
    set_session_cookie,
)
from lti_app.web.common import db as _db
from lti_app.web.common import settings as _settings
from lti_app.web.launch import (
    MESSAGE_TYPE,
    LaunchError,
    ToolCookieService,
    ToolMessageLaunch,
    ToolOIDCLogin,
    ToolRequest,
)

bp = Blueprint("lti", __name__)

DEEP_LINK = "LtiDeepLinkingRequest"
LAUNCH_PRESENTATION = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"
CONTEXT = "https://purl.imsglobal.org/spec/lti/claim/context"


def _box() -> SecretBox:
    box: SecretBox = current_app.extensions["arche_predict"]["secret_box"]
    return box


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL as Moodle must see it: under `app.public_url` when configured."""
    public = _settings().app.public_url.rstrip("/")
    if public:
        return public + flask_url_for(endpoint, **values)
    return flask_url_for(endpoint, _external=True, **values)


def _origin(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def _tool_origin() -> str:
    return _origin(external_url("lti.launch"))


def _reject(
    action: str,
    code: str,
    message: str,
    status: int = 400,
    *,
    platform_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> Any:
    audit.record(
        _db(),
        action,
        "rejected",
        code,
        platform_id=platform_id,
        remote_addr=request.remote_addr,
        details=details,
    )
    return error_response(status, N_("Launch refused"), message, code=code)


def _audit_accepted(action: str, ctx: LaunchContext, details: dict[str, Any] | None = None) -> None:
    """An accepted step of a session's LTI flow, with who, where and from which address."""
    audit.record(
        _db(),
        action,
        "accepted",
        None,
        platform_id=ctx.platform_id,
        person_id=ctx.person_id,
        course_id=ctx.course_id,
        remote_addr=request.remote_addr,
        details=details,
    )


def _services() -> tuple[ToolRequest, DbToolConf, DbSessionService, ToolCookieService]:
    req = ToolRequest(request)
    conf = DbToolConf(_db(), _box())
    storage = DbLaunchDataStorage(_db())
    service = DbSessionService(req, storage)
    return req, conf, service, ToolCookieService(req)


# --------------------------------------------------------------------------- login


@bp.route("/lti/login", methods=["GET", "POST"])
def login() -> Any:
    """OIDC third-party initiated login: check the platform, then redirect to its auth URL."""
    params = request.args if request.method == "GET" else request.form
    iss, client_id = params.get("iss"), params.get("client_id")
    login_hint, target = params.get("login_hint"), params.get("target_link_uri")
    deployment_id = params.get("lti_deployment_id")
    details = {"iss": iss, "client_id": client_id, "deployment_id": deployment_id}
    if not iss or len(iss) > 500:
        return _reject(
            "lti.login", "issuer_missing", N_("The login request names no issuer (iss).")
        )
    if not login_hint or len(login_hint) > 2000:
        return _reject(
            "lti.login", "login_hint_missing", N_("The login request has no login_hint.")
        )
    if not issuer_known(_db(), iss):
        return _reject(
            "lti.login", "issuer_unknown", N_("This platform is not registered."), details=details
        )
    platform = find_platform(_db(), iss, client_id or None)
    if platform is None:
        return _reject(
            "lti.login",
            "client_unknown",
            N_(
                "This client id is not registered for the platform (or the platform has "
                "several and did not say which)."
            ),
            details=details,
        )
    if target and _origin(target) != _tool_origin():
        return _reject(
            "lti.login",
            "target_foreign",
            N_("The target link URI is not on this tool."),
            platform_id=platform.id,
            details=details,
        )
    req, conf, service, cookies = _services()
    if (
        deployment_id
        and conf.find_deployment_by_params(iss, deployment_id, platform.client_id) is None
    ):
        return _reject(
            "lti.login",
            "deployment_unknown",
            N_("This deployment is not registered."),
            platform_id=platform.id,
            details=details,
        )
    oidc = ToolOIDCLogin(
        req, conf, session_service=service, cookie_service=cookies, platform_id=platform.id
    )
    oidc.set_launch_data_lifetime(_settings().lti.login_state_ttl)
    try:
        response: Response = oidc.redirect(external_url("lti.launch"))
    except LtiException:
        return _reject(
            "lti.login",
            "login_invalid",
            N_("The login request is not valid."),
            platform_id=platform.id,
            details=details,
        )
    return response


# --------------------------------------------------------------------------- launch


def _message_launch(launch_id: str | None = None) -> ToolMessageLaunch | None:
    """pylti1p3's launch object with our hardening and settings: a new one to validate, or
    the launch `launch_id` read back from storage (deep linking answers it later)."""
    settings = _settings()
    req, conf, service, cookies = _services()
    service.set_launch_data_lifetime(settings.lti.session_lifetime)
    kwargs: dict[str, Any] = {
        "session_service": service,
        "cookie_service": cookies,
        "db": _db(),
        "http": TimeoutSession(settings.lti.http_timeout),
        "leeway": settings.lti.leeway_seconds,
        "jwks_max_age": settings.lti.jwks_max_age,
        "http_timeout": settings.lti.http_timeout,
    }
    if launch_id is None:
        return ToolMessageLaunch(req, conf, **kwargs)
    try:
        return ToolMessageLaunch.restore(launch_id, req, conf, **kwargs)
    except LtiException:
        return None


@bp.post("/lti/launch")
def launch() -> Any:
    """Validate the id_token, tie it to this browser, link it to our rows, open a session and
    send the person to their page (see `web.auth` for the session and its token)."""
    message = _message_launch()
    assert message is not None
    try:
        message.validate()
    except LaunchError as exc:
        platform_id = message.platform.id if message.platform is not None else None
        return _reject(
            "lti.launch",
            exc.code,
            exc.message,
            exc.status,
            platform_id=platform_id,
            details=message.audit_details(),
        )
    platform = message.platform
    assert platform is not None
    binding = _launch_binding(message.state_cookie_ok, platform)
    if binding is None:
        return _reject(
            "lti.launch",
            "origin_foreign",
            N_("This launch was not sent by the platform's page. Relaunch from Moodle."),
            403,
            platform_id=platform.id,
            details={**message.audit_details(), "origin": _request_origin()[:200]},
        )
    claims: dict[str, Any] = dict(message.get_launch_data())
    try:
        link = link_launch(_db(), _box(), platform, claims, secret=current_app.config["SECRET_KEY"])
    except LinkError as exc:
        return _reject(
            "lti.launch",
            "link_failed",
            str(exc),
            platform_id=platform.id,
            details=message.audit_details(),
        )
    if str(claims.get(MESSAGE_TYPE)) == DEEP_LINK and link.role != "teacher":
        return _reject(
            "lti.launch",
            "deep_link_forbidden",
            N_("Only a course's teachers can add this tool to a course."),
            403,
            platform_id=platform.id,
            details=message.audit_details(),
        )
    row, sid = _open_launch_session(message, link, claims, binding)
    token = make_launch_token(row.id, fingerprint_of(row))
    response = redirect(_landing(context_of(row, via="token"), lt=token), code=303)
    if binding != "none":
        set_session_cookie(response, sid, _settings().lti.session_lifetime)
    return response


def _open_launch_session(
    message: ToolMessageLaunch, link: LaunchLink, claims: dict[str, Any], binding: str
) -> tuple[LtiSession, str]:
    """The launch's server-side session, with what later pages need from the claims (title,
    locale, return URL, the roster service), and its audit event."""
    assert message.platform is not None
    message_type = str(claims.get(MESSAGE_TYPE))
    presentation = claims.get(LAUNCH_PRESENTATION)
    presentation = presentation if isinstance(presentation, dict) else {}
    context = claims.get(CONTEXT)
    context = context if isinstance(context, dict) else {}
    row, sid = open_session(
        _db(),
        platform_id=message.platform.id,
        course_id=link.course.id if link.course else None,
        person_id=link.person.id,
        role=link.role,
        is_admin=link.is_admin,
        message_type=message_type,
        launch_id=message.get_launch_id(),
        lifetime=_settings().lti.session_lifetime,
        details={
            "context_title": str(context.get("title", ""))[:500],
            "locale": str(presentation.get("locale", ""))[:20],
            "return_url": str(presentation.get("return_url", ""))[:1000],
            "nrps_url": memberships_url(claims),
            "binding": binding,
        },
    )
    audit.record(
        _db(),
        "lti.launch",
        "accepted",
        None,
        platform_id=message.platform.id,
        person_id=link.person.id,
        course_id=row.course_id,
        remote_addr=request.remote_addr,
        details={
            "role": link.role,
            "is_admin": link.is_admin,
            "message_type": message_type,
            "binding": binding,
        },
    )
    return row, sid


def _request_origin() -> str:
    """Where the browser says this request comes from: `Origin`, else `Referer`'s origin;
    "" when it says nothing (or "null", which a page can ask its browser to send)."""
    origin = request.headers.get("Origin", "")
    if origin and origin != "null":
        return origin.lower()
    referer = request.headers.get("Referer", "")
    return _origin(referer) if referer.startswith(("http://", "https://")) else ""


def _launch_binding(state_cookie_ok: bool, platform: LtiPlatform) -> str | None:
    """How this launch is tied to the browser that started the login, or None to refuse it.

    "cookie": the browser kept the state cookie of its own login. "origin": no cookie, but
    the id_token was posted by a page of the platform (Moodle's auto-submitting form); an
    attacker's site cannot post from there. "none": the browser said nothing of where the post
    came from; the session is then limited (no cookie, read-only, no resume; see `web.auth`).
    A post from any other site without the state cookie is a forged cross-site launch (login
    CSRF with the attacker's own id_token) and is refused."""
    if state_cookie_ok:
        return "cookie"
    origin = _request_origin()
    if not origin:
        return "none"
    return "origin" if origin in url_origins(platform.issuer, platform.auth_login_url) else None


# --------------------------------------------------------------------------- keys and config


@bp.get("/lti/jwks")
def jwks() -> Any:
    body = published_jwks(_db(), overlap_days=_settings().lti.key_overlap_days)
    response = jsonify(body)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def tool_config_values() -> dict[str, str]:
    """Moodle's field names with the values to paste (English, as the JSON answer gives them;
    the pages show the names and words as the reader's Moodle does, translated)."""
    return {
        N_("Tool URL"): external_url("lti.launch"),
        N_("LTI version"): "LTI 1.3",
        N_("Public key type"): N_("Keyset URL"),
        N_("Public keyset"): external_url("lti.jwks"),
        N_("Initiate login URL"): external_url("lti.login"),
        N_("Redirection URI(s)"): external_url("lti.launch"),
        N_("Supports Deep Linking (Content-Item Message)"): N_("yes"),
        N_("Content Selection URL"): external_url("lti.launch"),
    }


@bp.get("/lti/config")
@require_admin
def config() -> Any:
    values = tool_config_values()
    if request.accept_mimetypes.best == "application/json":
        return jsonify(values)
    platforms = list(_db().query(LtiPlatform).order_by(LtiPlatform.id))
    return render_template(
        "config.html", values=values, platforms=platforms, has_key=current_key(_db()) is not None
    )


# --------------------------------------------------------------------------- deep linking


def _restored_launch() -> ToolMessageLaunch | None:
    ctx = current()
    if ctx is None or ctx.message_type != DEEP_LINK:
        return None
    row = _db().get(LtiSession, ctx.session_id)
    if row is None or not row.launch_id:
        return None
    return _message_launch(row.launch_id)


def _deep_link_custom(restored: ToolMessageLaunch, ctx: LaunchContext) -> dict[str, str]:
    """The custom parameters of the link we hand back: the view, and the course binding signed
    by the tool (`arche_course`), the one custom parameter a later launch may trust (see
    `lti_linking`). Moodle's own context id already names the course; a platform that is not
    Moodle needs the signed binding."""
    custom = {"arche_view": "course_dashboard"}
    course = _db().get(Course, ctx.course_id) if ctx.course_id is not None else None
    platform = _db().get(LtiPlatform, ctx.platform_id)
    context_id = context_id_of(dict(restored.get_launch_data()))
    if course is not None and platform is not None and context_id:
        custom[COURSE_PARAM] = sign_course_param(
            current_app.config["SECRET_KEY"], platform.issuer, context_id, course.moodle_course_id
        )
    return custom


@bp.route("/lti/deep-link", methods=["GET", "POST"])
@require_session
def deep_link() -> Any:
    """A teacher picks "course dashboard"; the signed answer goes back to Moodle by POST."""
    ctx = current()
    assert ctx is not None
    if not ctx.is_teacher or ctx.message_type != DEEP_LINK:
        return error_response(
            403,
            N_("Forbidden"),
            N_("Adding the tool to a course needs a deep-linking launch by a teacher."),
        )
    if request.method == "GET":
        return render_template("deep_link.html", action=lti_url_for("lti.deep_link"))
    restored = _restored_launch()
    if restored is None:
        return error_response(
            409, N_("Expired"), N_("The deep-linking request expired. Start again.")
        )
    if current_key(_db()) is None:
        return error_response(
            503,
            N_("Not configured"),
            N_("The tool has no signing key; run `arche-predict keys rotate`."),
        )
    resource = (
        DeepLinkResource()
        .set_url(external_url("lti.launch"))
        .set_title("Course dashboard")
        .set_custom_params(_deep_link_custom(restored, ctx))
    )
    deep_link_obj = restored.get_deep_link()
    jwt_value = deep_link_obj.get_response_jwt([resource])
    settings_claim = restored.get_launch_data().get(
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings", {}
    )
    return_url = str(settings_claim.get("deep_link_return_url", ""))
    _audit_accepted("lti.deep_link", ctx)
    return render_template("autopost.html", action=return_url, fields={"JWT": jwt_value})


def _landing(ctx: LaunchContext, **values: Any) -> str:
    """Where a session starts: the page its launch was for (`values`: e.g. the launch token)."""
    if ctx.message_type == DEEP_LINK:
        return flask_url_for("lti.deep_link", **values)
    if ctx.course_id is None:
        return flask_url_for("pages.admin", **values)
    if ctx.is_teacher:
        return flask_url_for("pages.course_dashboard", course_id=ctx.course_id, **values)
    return flask_url_for("pages.my_page", course_id=ctx.course_id, **values)


def _user_asked_here() -> bool:
    """Whether this request is the person's own action on one of the tool's pages.

    Browsers set `Sec-Fetch-*` and `Origin` themselves; no page of another site can make them
    claim "same-origin". A GET counts when the person clicked in our page (the "Open in a new
    window" link); a POST when our own form sent it (a browser always sends `Origin` on POST).
    """
    site = request.headers.get("Sec-Fetch-Site")
    if request.method == "GET":
        return site == "same-origin" and request.headers.get("Sec-Fetch-User") == "?1"
    if site is not None:
        return site == "same-origin"
    return _request_origin() == _tool_origin()


@bp.route("/lti/resume", methods=["GET", "POST"])
@require_session
def resume() -> Any:
    """The new-window fallback: a launch token opened top-level becomes a first-party cookie.

    The cookie is a new session of its own (`fork_session`): the token never carried a cookie
    value. A link from elsewhere could otherwise sign a victim into the sender's session (login
    CSRF), so this happens only on the person's own action (a click in our page, or the
    confirmation form below, which names whose session it is), never for an unbound launch, and
    never over a live session of another person in this browser."""
    ctx = current()
    assert ctx is not None
    if ctx.via != "token":
        return redirect(_landing(ctx), code=303)
    if not ctx.bound:
        return error_response(
            403,
            N_("Forbidden"),
            N_(
                "This launch could not be tied to your browser, so it cannot be opened in a "
                "new window. Reopen the tool from your Moodle course."
            ),
            code="session_unbound",
        )
    existing = cookie_session()
    if existing is not None and (
        existing.person_id != ctx.person_id or existing.platform_id != ctx.platform_id
    ):
        return error_response(
            409,
            N_("Another session is open"),
            N_(
                "This browser is already signed in to the tool as someone else. Close that "
                "session (or this window) and open the tool from your own Moodle course."
            ),
            code="session_conflict",
        )
    if not _user_asked_here():
        if request.method == "POST":
            return error_response(
                403,
                N_("Forbidden"),
                N_("This request did not come from the tool's own page."),
                code="cross_site",
            )
        person = _db().get(Person, ctx.person_id)
        return render_template(
            "resume.html",
            person=person,
            course_title=ctx.details.get("context_title", ""),
            action=lti_url_for("lti.resume"),
        )
    parent = _db().get(LtiSession, ctx.session_id)
    assert parent is not None  # `current()` just read it
    row, sid = fork_session(_db(), parent)
    _audit_accepted("lti.resume", ctx, {"session": parent.id, "resumed_as": row.id})
    response = redirect(_landing(ctx), code=303)
    remaining = int((row.expires_at - utcnow()).total_seconds())
    set_session_cookie(response, sid, max(remaining, 0))
    return response


# --------------------------------------------------------------------------- dynamic registration


@bp.get("/lti/register")
def dynamic_registration() -> Any:
    """LTI Dynamic Registration, opened by Moodle with the admin's registration URL.

    The URL must carry a code from `arche-predict lti registration-url` (signed, single use):
    the endpoint is public, and without the code anyone could register a platform.
    """
    code = request.args.get("code", "")
    config_url = request.args.get("openid_configuration", "")
    registration_token = request.args.get("registration_token") or None
    details = {"openid_configuration": config_url}
    # Moodle shows this page in a panel framed by its own admin page, and a Moodle the tool
    # does not know yet is in no frame-ancestors list: this request's answers (the result or
    # the reason of a refusal) may be framed by the origin the registration names, and only
    # they. Nothing on these pages acts on a click, so framing them lends nothing to clickjack.
    allow_framing_by(url_origins(config_url))
    if not code or not redeem_code(_db(), current_app.config["SECRET_KEY"], code):
        return _reject(
            "lti.register",
            "code_invalid",
            N_(
                "This registration URL is invalid, expired or already used; ask the tool's "
                "administrator for a new one (`arche-predict lti registration-url`)."
            ),
            403,
            details=details,
        )
    if not config_url:
        return _reject(
            "lti.register", "config_missing", N_("No openid_configuration given."), details=details
        )
    urls = ToolUrls(
        login=external_url("lti.login"),
        launch=external_url("lti.launch"),
        jwks=external_url("lti.jwks"),
        logo=external_url("static", filename="logo.svg"),
    )
    ensure_key(_db(), _box())
    notes: list[str] = []
    try:
        platform = register(
            _db(),
            _box(),
            urls=urls,
            openid_configuration=config_url,
            registration_token=registration_token,
            http=TimeoutSession(_settings().lti.http_timeout),
            notes=notes,
        )
    except DynamicRegistrationError as exc:
        return _reject(
            "lti.register", "registration_failed", f"Registration failed: {exc}.", details=details
        )
    audit.record(
        _db(),
        "lti.register",
        "accepted",
        None,
        platform_id=platform.id,
        remote_addr=request.remote_addr,
        details={"issuer": platform.issuer, "client_id": platform.client_id},
    )
    forget_frame_origins(current_app._get_current_object())  # type: ignore[attr-defined]
    return render_template("registered.html", platform=platform, notes=notes)

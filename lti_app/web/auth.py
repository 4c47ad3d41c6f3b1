"""The launch session inside Moodle's iframe, and the access rules every page builds on.

Public pieces for the dashboards and the JSON API:

- `current()`: the request's `LaunchContext` (platform, course, person, role) or None;
- decorators `require_session`, `require_teacher` (the view's `course_id` must be the launch's
  course and the role teacher), `require_course_member` (any role, the launch's course),
  `require_admin`, and `can_view_person(ctx, course_id, person_id)` for per-learner pages;
- `lti_url_for(endpoint, **values)`: `url_for` that carries the launch token, to be used for
  every in-tool link and form action (also a Jinja global, with `csrf_token()`).

How the session travels: a launch opens a server-side session (`LtiSession`) and hands the
browser two different things. The cookie (`Secure; SameSite=None; Partitioned; HttpOnly` in a
secure context) holds the session's random id, which the database keeps only as a SHA-256. The
launch token (`lt`: query, form field or `X-Launch-Token` header) is signed and short-lived, and
names the session by its row id and a fingerprint of that hash: it never contains the cookie's
value, nor anything from which it can be derived, and it is worth nothing once its own lifetime
(`lti.launch_token_ttl`) or the session's is over. The token comes first, so two Moodle tabs in
two courses keep their own sessions; the cookie serves when there is no token (a new window, a
bookmark). Every page hands out a fresh token, so the token's lifetime is an idle timeout.

A session whose launch could not be tied to the browser that started the login (no state
cookie, and no `Origin` of the platform's page: see `lti.launch`) is "unbound": it gets no
cookie, cannot be resumed into one, and may only read (its POSTs are refused), so a forged
cross-site launch can at most show someone the attacker's own page.

CSRF: every POST/PUT/PATCH/DELETE except the LTI login and launch (which the platform sends)
must carry the session's `csrf_token` (form field or `X-CSRF-Token` header).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, jsonify, render_template, request, url_for
from flask_babel import gettext
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response as BaseResponse

from lti_app.config import Settings
from lti_app.models import LtiSession
from lti_app.services.lti_registry import platform_origins
from lti_app.services.lti_sessions import find_session, find_session_by_ref
from lti_app.web.db import db_session
from lti_app.web.launch import secure_context

F = TypeVar("F", bound=Callable[..., Any])

SESSION_COOKIE = "arche_sid"
TOKEN_PARAM = "lt"  # noqa: S105 - a parameter name, not a secret
TOKEN_HEADER = "X-Launch-Token"  # noqa: S105
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# Posted by the platform's page, cross-site by design and without our session: exempt from the
# CSRF token here and from the cross-site refusal in `hardening`.
PLATFORM_POSTED = frozenset({"lti.login", "lti.launch"})
_TOKEN_SALT = "arche-predict launch token"  # noqa: S105 - a salt, not a secret
_ORIGINS_TTL = 10.0


@dataclass(frozen=True)
class LaunchContext:
    session_id: int
    platform_id: int
    course_id: int | None
    person_id: int
    role: str
    is_admin: bool
    message_type: str
    csrf_token: str
    details: dict[str, Any]
    fingerprint: str  # names the session inside launch tokens (see `make_launch_token`)
    via: str  # "token" or "cookie"

    @property
    def is_teacher(self) -> bool:
        return self.role == "teacher"

    @property
    def bound(self) -> bool:
        """Whether the launch was tied to this browser (sessions from before binding was
        recorded were all launched with the state cookie or a platform origin check absent;
        they count as bound and expire within `lti.session_lifetime`)."""
        return self.details.get("binding") != "none"


def _settings() -> Settings:
    settings: Settings = current_app.extensions["arche_predict"]["settings"]
    return settings


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_TOKEN_SALT)


def fingerprint_of(row: LtiSession) -> str:
    """64 bits of the stored SHA-256 of the session id: binds a token to this very session (a
    row id alone would name a new session after the database was recreated) without saying
    anything usable about the id itself."""
    return row.sid_hash[:16]


def make_launch_token(row_id: int, fingerprint: str) -> str:
    return _serializer().dumps({"s": row_id, "f": fingerprint})


def read_launch_token(token: str, max_age: int) -> tuple[tuple[int, str] | None, str | None]:
    """((session row id, fingerprint), None) for a good token, else (None, 'expired' |
    'invalid')."""
    try:
        data = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        return None, "expired"
    except BadSignature:
        return None, "invalid"
    if not isinstance(data, dict):
        return None, "invalid"
    row_id, fingerprint = data.get("s"), data.get("f")
    if type(row_id) is not int or not isinstance(fingerprint, str) or not fingerprint:
        return None, "invalid"
    return (row_id, fingerprint), None


def context_of(row: LtiSession, via: str) -> LaunchContext:
    return LaunchContext(
        session_id=row.id,
        platform_id=row.platform_id,
        course_id=row.course_id,
        person_id=row.person_id,
        role=row.role,
        is_admin=row.is_admin,
        message_type=row.message_type,
        csrf_token=row.csrf_token,
        details=dict(row.details or {}),
        fingerprint=fingerprint_of(row),
        via=via,
    )


def _load_context() -> None:
    g.lti = None
    g.lti_token_problem = None
    token = (
        request.args.get(TOKEN_PARAM)
        or (request.form.get(TOKEN_PARAM) if request.method == "POST" else None)
        or request.headers.get(TOKEN_HEADER)
    )
    if token:
        ref, problem = read_launch_token(token[:2000], _settings().lti.launch_token_ttl)
        if ref is not None:
            row = find_session_by_ref(db_session(), *ref)
            if row is not None and hmac.compare_digest(fingerprint_of(row), ref[1]):
                g.lti = context_of(row, "token")
                return
            problem = "expired"
        g.lti_token_problem = problem
    row = cookie_session()
    if row is not None:
        g.lti = context_of(row, "cookie")


def cookie_session() -> LtiSession | None:
    """The live session named by this browser's cookie, if any (whatever the token says)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    return find_session(db_session(), cookie) if cookie else None


def current() -> LaunchContext | None:
    ctx: LaunchContext | None = g.get("lti")
    return ctx


def request_launch_token() -> str | None:
    """The launch token for this request's links, signed once per request (a page with a link
    per student signed hundreds of identical tokens), or None without a session."""
    ctx = current()
    if ctx is None:
        return None
    cached: tuple[int, str] | None = g.get("launch_token")
    if cached is None or cached[0] != ctx.session_id:  # a launch can switch sessions mid-request
        token = make_launch_token(ctx.session_id, ctx.fingerprint)
        cached = g.launch_token = (ctx.session_id, token)
    return cached[1]


def lti_url_for(endpoint: str, **values: Any) -> str:
    """`url_for` with a fresh launch token when the request has a session."""
    token = request_launch_token()
    if token is not None:
        values.setdefault(TOKEN_PARAM, token)
    return url_for(endpoint, **values)


def csrf_token() -> str:
    ctx = current()
    return "" if ctx is None else ctx.csrf_token


def set_session_cookie(response: BaseResponse, raw_sid: str, max_age: int) -> None:
    if secure_context(request):
        response.set_cookie(
            SESSION_COOKIE,
            raw_sid,
            max_age=max_age,
            path="/",
            httponly=True,
            secure=True,
            samesite="None",
            partitioned=True,
        )
    else:
        # Plain HTTP (local demo): a SameSite=None cookie would be refused; the launch token
        # carries the session inside the iframe instead.
        response.set_cookie(
            SESSION_COOKIE, raw_sid, max_age=max_age, path="/", httponly=True, samesite="Lax"
        )


# --------------------------------------------------------------------------- responses


def wants_json() -> bool:
    """Whether an error should be JSON: API and health routes always, else by `Accept`."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return request.path.startswith(("/api/", "/healthz")) or best == "application/json"


def N_(text: str) -> str:  # noqa: N802 - Babel's extraction keyword
    """Marks a message for Babel's extraction without translating it: the JSON API answers in
    English, and a page translates the message where it shows it (`error_response`)."""
    return text


def error_response(status: int, title: str, message: str, *, code: str | None = None) -> Any:
    """The API's JSON error (English, with its `code`), or the error page in the reader's
    language: a title and message marked with `N_` are found in the catalogue; another
    (an exception's text) shows as it is."""
    if wants_json():
        return jsonify(error=title, message=message, status=status, code=code), status
    page = render_template(
        "error.html", status=status, title=_translated(title), message=_translated(message)
    )
    return page, status


def _translated(text: str) -> str:
    # gettext("") would be the catalogue's header.
    return str(gettext(text)) if text else text


def _no_session() -> Any:
    problem = g.get("lti_token_problem")
    message = (
        N_("Your session in this tool has expired.")
        if problem == "expired"
        else N_("This page needs a launch from Moodle.")
    )
    if wants_json():
        return jsonify(error="Unauthorized", message=message, status=401, code="no_session"), 401
    return render_template("fallback.html", message=gettext(message)), 401


def require_session(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current() is None:
            return _no_session()
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _forbidden(message: str) -> Any:
    return error_response(403, N_("Forbidden"), message, code="forbidden")


def require_course_member(fn: F) -> F:
    """Any role, but only within the launch's course (`course_id` view argument)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = current()
        if ctx is None:
            return _no_session()
        if ctx.course_id is None or kwargs.get("course_id") != ctx.course_id:
            return _forbidden(
                N_("This page belongs to another course. Launch it from that course.")
            )
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def require_teacher(fn: F) -> F:
    """Teacher of the launch's course only (`course_id` view argument)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = current()
        if ctx is None:
            return _no_session()
        if ctx.course_id is None or kwargs.get("course_id") != ctx.course_id:
            return _forbidden(
                N_("This page belongs to another course. Launch it from that course.")
            )
        if not ctx.is_teacher:
            return _forbidden(N_("This page is for the course's teachers."))
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def require_admin(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = current()
        if ctx is None:
            return _no_session()
        if not ctx.is_admin:
            return _forbidden(N_("This page is for Moodle administrators."))
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def can_view_person(ctx: LaunchContext, course_id: int, person_id: int, enrolled: bool) -> bool:
    """A learner sees only themself; a teacher sees the learners enrolled in their course."""
    if ctx.course_id != course_id:
        return False
    if ctx.is_teacher:
        return enrolled
    return person_id == ctx.person_id


# --------------------------------------------------------------------------- hooks


def _frame_origins() -> list[str]:
    ext = current_app.extensions["arche_predict"]
    cached = ext.get("frame_origins")
    now = time.monotonic()
    if cached is not None and cached[0] > now:
        origins: list[str] = cached[1]
        return origins
    session = ext["session_factory"]()
    try:
        origins = platform_origins(session)
    except SQLAlchemyError:
        # No schema yet or the database is down: frame only from ourselves (the safe default);
        # /healthz reports the actual problem.
        return []
    finally:
        session.close()
    ext["frame_origins"] = (now + _ORIGINS_TTL, origins)
    return origins


def allow_framing_by(origins: set[str]) -> None:
    """Let these origins frame this request's answer only (added to its frame-ancestors)."""
    g.extra_frame_origins = set(origins)


def forget_frame_origins(app: Flask) -> None:
    """Drop the cached platform origins (after a registration) so the CSP follows at once."""
    app.extensions["arche_predict"].pop("frame_origins", None)


def _csrf_check() -> Any:
    if request.method not in {"POST", "PUT", "PATCH", "DELETE"}:
        return None
    if request.endpoint in PLATFORM_POSTED or request.endpoint is None:
        return None
    ctx = current()
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    if ctx is None or not hmac.compare_digest(sent.encode(), ctx.csrf_token.encode()):
        return error_response(
            403,
            N_("Forbidden"),
            N_("The form's security token is missing or invalid."),
            code="csrf",
        )
    if not ctx.bound:
        return error_response(
            403,
            N_("Forbidden"),
            N_(
                "This launch could not be tied to your browser, so it can only show pages. "
                "Reopen the tool from your Moodle course to make changes."
            ),
            code="session_unbound",
        )
    return None


def install(app: Flask) -> None:
    @app.before_request
    def _session_and_csrf() -> Any:
        if request.endpoint in {"static", "health.healthz", "health.metrics", "home.favicon"}:
            return None
        _load_context()
        return _csrf_check()

    @app.after_request
    def _security_headers(response: Response) -> Response:
        registered = list(_frame_origins())
        origins = " ".join(registered)
        extra = sorted(set(g.get("extra_frame_origins", ())) - set(registered))
        ancestors = " ".join([*registered, *extra])
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"object-src 'none'; base-uri 'none'; form-action 'self' {origins}; "
            f"frame-ancestors 'self' {ancestors}"
        ).replace("  ", " ")
        response.headers.pop("X-Frame-Options", None)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if current() is not None or request.path.startswith("/lti/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    app.jinja_env.globals.update(lti_url_for=lti_url_for, csrf_token=csrf_token, lti=current)

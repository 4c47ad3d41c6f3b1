"""HTTP hardening that needs no launch session: body size limits, cross-site refusal, HSTS.

Installed by the app factory before `auth.install`, so its checks run first: a request that is
too large or comes from another site is answered before anything reads its body or loads a
session.

- **Size.** Every request body is capped at `app.max_request_bytes` (a Moodle launch with its
  signed id_token is 10-20 KB), and the JSON API under `/api/` at `app.max_api_request_bytes`.
  A body whose declared length is over the cap is refused before it is read; a chunked body
  (no length) is read up to one byte past the cap, never further. Either way the answer is a
  413 in the app's error style (JSON for the API, a page otherwise), never a stack trace.
- **Cross-site.** The CSRF token (checked in `auth`) stays the main defence. In addition, a
  state-changing request that a browser marks as coming from another site (`Sec-Fetch-Site`
  other than `same-origin`/`none`, or else an `Origin` other than the tool's public origin) is
  refused with a 403 `cross_site` and an audit event, even with a valid token: a token leaked
  into a page of another site (a Moodle course page is another site) must not be enough. The LTI
  login and launch are exempt, since the platform's page posts them cross-site by design.
  Requests without either header (curl, server-to-server, old browsers) carry no browser
  signal and rely on the CSRF token alone.
- **HSTS.** `Strict-Transport-Security` on responses served over HTTPS (the request is secure,
  behind ProxyFix when `app.proxy_count` is set, or `app.public_url` is https).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from lti_app.config import Settings
from lti_app.observability import get_logger
from lti_app.services import audit
from lti_app.web.auth import N_, PLATFORM_POSTED, error_response
from lti_app.web.common import db

log = get_logger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sec-Fetch-Site values that mean no other site started the request.
_SAME_ORIGIN = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _settings() -> Settings:
    value: Settings = current_app.extensions["arche_predict"]["settings"]
    return value


def body_limit(settings: Settings, path: str) -> int:
    """The largest body accepted at `path`: the API's own (smaller) cap under /api/."""
    if path.startswith("/api/"):
        return min(settings.app.max_api_request_bytes, settings.app.max_request_bytes)
    return settings.app.max_request_bytes


def origin_of(scheme: str, netloc: str) -> str:
    """`scheme://host[:port]` as browsers write an `Origin`: lower case, no default port."""
    scheme, netloc = scheme.lower(), netloc.lower().rstrip("/")
    host, sep, port = netloc.rpartition(":")
    if sep and "]" not in port and port == _DEFAULT_PORTS.get(scheme):
        netloc = host
    return f"{scheme}://{netloc}"


def public_origin(settings: Settings) -> str:
    """The origin browsers see the tool at: `app.public_url`'s when set, else this request's.

    Judging by the configured URL when there is one matters: the request's own Host header is
    whatever name the browser used, so under DNS rebinding an attacker's name would pass as
    "same origin" if the request host were the reference.
    """
    if settings.app.public_url:
        parts = urlsplit(settings.app.public_url)
        return origin_of(parts.scheme, parts.netloc)
    return origin_of(request.scheme, request.host)


def cross_site_signal() -> str | None:
    """Why the browser's own headers say another site sent this request, or None.

    `Sec-Fetch-Site` (set by the browser, not by scripts) decides when present; else `Origin`
    is compared with the public origin (`null`, an opaque origin, never matches).
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        if fetch_site.strip().lower() in _SAME_ORIGIN:
            return None
        return f"sec-fetch-site: {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    expected = public_origin(_settings())
    parts = urlsplit(origin.strip())
    if parts.scheme and parts.netloc and origin_of(parts.scheme, parts.netloc) == expected:
        return None
    return f"origin: {origin}"


def _refuse_cross_site(signal: str) -> Any:
    try:
        audit.record(
            db(),
            "http.cross_site",
            "rejected",
            "cross_site",
            remote_addr=request.remote_addr,
            details={"endpoint": request.endpoint, "method": request.method, "signal": signal},
        )
    except SQLAlchemyError as exc:  # the refusal stands even if the audit cannot be written
        log.warning("cross-site refusal not audited", error=exc.__class__.__name__)
    log.warning("cross-site request refused", endpoint=request.endpoint, signal=signal)
    return error_response(
        403,
        N_("Forbidden"),
        N_("This request came from another site. Use the tool's own pages to make changes."),
        code="cross_site",
    )


def _too_large(limit: int) -> Any:
    return error_response(
        413,
        N_("Request too large"),
        f"The request body is larger than this address accepts ({limit} bytes).",
        code="too_large",
    )


def install(app: Flask) -> None:
    settings: Settings = app.extensions["arche_predict"]["settings"]
    app.config["MAX_CONTENT_LENGTH"] = settings.app.max_request_bytes
    # One form field may not be larger than the whole body either (Flask's default is 500 KB).
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.app.max_request_bytes

    @app.before_request
    def _limit_and_origin() -> Any:
        limit = body_limit(settings, request.path)
        request.max_content_length = limit
        request.max_form_memory_size = limit
        # Refuse on the declared length, before anything reads the body.
        if request.content_length is not None and request.content_length > limit:
            return _too_large(limit)
        if request.content_length is None and request.environ.get("wsgi.input_terminated"):
            # A chunked body: Werkzeug's limited stream stops at the limit without a word, and
            # a form parsed from the cut body would look valid. Read (and keep) one byte more
            # than the limit to tell "exactly at the limit" from "over it".
            request.max_content_length = limit + 1
            if len(request.get_data(cache=True)) > limit:
                return _too_large(limit)
            request.max_content_length = limit
        if request.method not in STATE_CHANGING or request.endpoint is None:
            return None
        if request.endpoint in PLATFORM_POSTED:
            return None
        signal = cross_site_signal()
        if signal is not None:
            return _refuse_cross_site(signal)
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _request_too_large(_exc: RequestEntityTooLarge) -> Any:
        # Raised by Werkzeug when a body without a declared length runs past the limit.
        return _too_large(body_limit(settings, request.path))

    @app.after_request
    def _hsts(response: Response) -> Response:
        max_age = settings.app.hsts_max_age
        if max_age and (request.is_secure or settings.app.secure):
            response.headers.setdefault("Strict-Transport-Security", f"max-age={max_age}")
        return response

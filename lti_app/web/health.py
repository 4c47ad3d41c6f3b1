"""Operational endpoints: `/healthz` for load balancers and `/metrics` for Prometheus.

`/healthz` is public: it says only whether the database answers at the code's schema.
`/metrics` tells who uses which page how often, so it is served only to the addresses in
`app.metrics_allow_from` (loopback by default) or to a request carrying
`Authorization: Bearer <app.metrics_token>`; everyone else gets a 403.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from lti_app import migrate
from lti_app.config import AppSettings
from lti_app.db import ping
from lti_app.observability import get_logger

bp = Blueprint("health", __name__)
log = get_logger(__name__)


@bp.get("/healthz")
def healthz() -> Any:
    """200 when the database answers and its schema is at the code's Alembic head, else 503.

    A schema behind the code is unhealthy: the app would fail on the first query that touches a
    new column, so the orchestrator should not route traffic to it yet.
    """
    ext = current_app.extensions["arche_predict"]
    head = migrate.head_revision()
    try:
        ping(ext["engine"])
        revision = migrate.current_revision(ext["engine"])
    except SQLAlchemyError as exc:
        log.warning("health check: database unreachable", error=exc.__class__.__name__)
        body = {"status": "error", "database": "unreachable", "revision": None, "head": head}
        return jsonify(body), 503
    if revision != head:
        body = {
            "status": "error",
            "database": "ok",
            "revision": revision,
            "head": head,
            "message": (
                "database schema is not at the code's revision; run `arche-predict db upgrade`"
            ),
        }
        return jsonify(body), 503
    return jsonify(status="ok", database="ok", revision=revision, head=head)


# Headers a reverse proxy adds: when one is present while `app.proxy_count` is 0, ProxyFix is
# off and `remote_addr` is the proxy's own address (often 127.0.0.1), not the client's.
FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _bearer_matches(token: str) -> bool:
    """Whether the request carries `Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(sent.strip().encode(), token.encode())


def _address_allowed(app_settings: AppSettings) -> bool:
    if not app_settings.proxy_count and any(h in request.headers for h in FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(
        address in ipaddress.ip_network(allowed, strict=False)
        for allowed in app_settings.metrics_allow_from
    )


def metrics_allowed(app_settings: AppSettings) -> bool:
    """A configured token opens /metrics from anywhere; otherwise the client address must be
    in `metrics_allow_from`, and is not trusted when it is a proxy's (see FORWARDING_HEADERS)."""
    if app_settings.metrics_token and _bearer_matches(app_settings.metrics_token):
        return True
    return _address_allowed(app_settings)


@bp.get("/metrics")
def metrics() -> Any:
    ext = current_app.extensions["arche_predict"]
    if not metrics_allowed(ext["settings"].app):
        message = (
            "Metrics are served to the addresses in app.metrics_allow_from, or with the bearer "
            "token app.metrics_token."
        )
        body = {"error": "Forbidden", "message": message, "status": 403, "code": "metrics_denied"}
        return jsonify(body), 403
    content, content_type = ext["metrics"].exposition()
    return Response(content, content_type=content_type)

"""Operational endpoints: `/healthz` for load balancers and `/metrics` for Prometheus."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from lti_app import migrate
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


@bp.get("/metrics")
def metrics() -> Response:
    body, content_type = current_app.extensions["arche_predict"]["metrics"].exposition()
    return Response(body, content_type=content_type)

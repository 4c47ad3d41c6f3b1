"""The app factory, /healthz, /metrics and error pages."""

from __future__ import annotations

import sqlite3

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from lti_app import migrate
from lti_app.app import create_app
from lti_app.config import ConfigError, Settings, load_settings
from lti_app.db import make_engine


@pytest.fixture
def app(settings: Settings) -> Flask:
    migrate.upgrade(make_engine(settings.database_url))
    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_create_app_refuses_missing_secrets() -> None:
    with pytest.raises(ConfigError, match="secret_key is empty"):
        create_app(load_settings(None, environ={}))


def test_healthz_reports_revision(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["revision"] == migrate.head_revision()


def test_healthz_is_503_before_migrations(settings: Settings) -> None:
    app = create_app(settings)  # database file never migrated
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["revision"] is None
    assert "arche-predict db upgrade" in body["message"]


def test_healthz_is_503_when_database_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(
        update={
            "database": settings.database.model_copy(
                update={"url": "postgresql+psycopg://nobody:pw@127.0.0.1:1/none"}
            )
        }
    )
    resp = create_app(broken).test_client().get("/healthz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body == {
        "status": "error",
        "database": "unreachable",
        "revision": None,
        "head": migrate.head_revision(),
    }
    assert "pw" not in resp.get_data(as_text=True)
    assert make_url(broken.database.url).password == "pw"


def test_metrics_count_requests_per_endpoint(client: FlaskClient) -> None:
    for _ in range(3):
        client.get("/healthz")
    client.get("/does-not-exist")
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        'arche_predict_http_requests_total{endpoint="/healthz",method="GET",status="200"} 3.0'
        in text
    )
    assert 'endpoint="<unmatched>",method="GET",status="404"' in text
    assert (
        'arche_predict_http_request_duration_seconds_count{endpoint="/healthz",method="GET"} 3.0'
        in text
    )


def test_errors_are_json_for_api_and_html_for_browsers(client: FlaskClient) -> None:
    resp = client.get("/api/v1/nothing")
    assert resp.status_code == 404
    assert resp.get_json()["status"] == 404
    resp = client.get("/nothing", headers={"Accept": "text/html"})
    assert resp.status_code == 404
    assert "<h1>Not found</h1>" in resp.get_data(as_text=True)


def test_unexpected_error_shows_no_stack_trace(app: Flask) -> None:
    app.config["TESTING"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals wstoken=0123456789abcdef0123456789abcdef")

    resp = app.test_client().get("/boom", headers={"Accept": "text/html"})
    assert resp.status_code == 500
    body = resp.get_data(as_text=True)
    assert "Traceback" not in body
    assert "secret internals" not in body


def test_sqlite_busy_is_a_503_to_retry(app: Flask) -> None:
    """SQLite's "database is locked" (a stale snapshot under a concurrent writer) is busy, not a
    crash: a clear 503 with Retry-After; any other database error stays a plain 500."""
    app.config["TESTING"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/busy")
    def busy() -> str:
        raise OperationalError(
            "INSERT INTO person ...", {}, sqlite3.OperationalError("database is locked")
        )

    @app.get("/broken")
    def broken() -> str:
        raise OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))

    client = app.test_client()
    resp = client.get("/busy", headers={"Accept": "text/html"})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "2"
    assert "try again in a moment" in resp.get_data(as_text=True)
    assert "INSERT INTO" not in resp.get_data(as_text=True)
    api = client.get("/busy", headers={"Accept": "application/json"})
    assert (api.status_code, api.get_json()["status"]) == (503, 503)
    resp = client.get("/broken", headers={"Accept": "text/html"})
    assert resp.status_code == 500
    assert "disk I/O" not in resp.get_data(as_text=True)

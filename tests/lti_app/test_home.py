"""The tool's front door outside Moodle (#15 F): `/` is a short page, not a bare 404, and
`/favicon.ico` is a real icon."""

from __future__ import annotations

import struct

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lti_app import migrate
from lti_app.app import create_app
from lti_app.config import Settings
from lti_app.db import make_engine


@pytest.fixture
def app(settings: Settings) -> Flask:
    migrate.upgrade(make_engine(settings.database_url))
    application = create_app(settings)
    application.config["TESTING"] = True
    return application


def test_root_says_what_this_is_and_where_to_go(app: Flask) -> None:
    resp = app.test_client().get("/")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert 'id="home-title"' in body
    assert "LTI 1.3 tool" in body
    assert "Moodle course" in body
    assert "/healthz" in body
    assert 'id="demo-platform"' not in body  # no demo in this configuration
    assert "frame-ancestors 'self'" in resp.headers["Content-Security-Policy"]


def test_root_links_the_demo_platform_in_the_demo(settings: Settings) -> None:
    demo = settings.model_copy(
        update={"demo": settings.demo.model_copy(update={"enabled": True, "platform_port": 8001})}
    )
    migrate.upgrade(make_engine(demo.database_url))
    client: FlaskClient = create_app(demo).test_client()
    body = client.get("/").get_data(as_text=True)
    assert 'id="demo-platform" href="http://localhost:8001/"' in body


def test_root_in_french(app: Flask) -> None:
    body = app.test_client().get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "outil LTI 1.3" in body


def test_favicon_is_an_icon(app: Flask) -> None:
    resp = app.test_client().get("/favicon.ico")
    assert resp.status_code == 200
    assert resp.mimetype == "image/vnd.microsoft.icon"
    data = resp.get_data()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind, count) == (0, 1, 1)
    assert data[22:30] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 2048

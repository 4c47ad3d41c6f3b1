"""HTTP hardening without a launch (issue #11): body size limits, HSTS, private files, /metrics
access, `Allow` on 405, the http:// public URL, and how the public origin is judged.

The launched-session cases (a cross-site POST with a valid CSRF token, an oversized field next
to a valid launch) are in tests/lti_app/lti/test_hardening_launch.py.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Request

from lti_app import migrate
from lti_app.app import create_app
from lti_app.config import ConfigError, Settings, load_settings
from lti_app.db import make_engine
from tests.conftest import Databases

LIMIT = 65536  # app.max_request_bytes by default
API_LIMIT = 16384  # app.max_api_request_bytes by default
METRICS_TOKEN = "m3tr1cs-t0ken-for-the-test-0123456789"


def _config(tmp_path: Path, app_extra: str = "", db_url: str = "") -> Path:
    cfg = tmp_path / "config.toml"
    database = f'[database]\nurl = "{db_url}"\n' if db_url else ""
    cfg.write_text(
        f"""
[app]
secret_key = "hardening-test-secret"
instance_path = "{tmp_path / "instance"}"
{app_extra}
{database}
[security]
encryption_key = "{Fernet.generate_key().decode()}"
""",
        encoding="utf-8",
    )
    return cfg


def _app(tmp_path: Path, app_extra: str = "") -> Flask:
    settings = load_settings(_config(tmp_path, app_extra), environ={})
    migrate.upgrade(make_engine(settings.database_url))
    app = create_app(settings)
    app.testing = True
    return app


@pytest.fixture
def client(settings: Settings) -> FlaskClient:
    migrate.upgrade(make_engine(settings.database_url))
    app = create_app(settings)
    app.testing = True
    return app.test_client()


# --------------------------------------------------------------------------- 9: body size


class CountingStream:
    """A request body of `size` bytes that counts what the server reads of it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.read_bytes = 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self.read_bytes
        n = left if n is None or n < 0 else min(n, left)
        self.read_bytes += n
        return b"a" * n

    def readline(self, n: int = -1) -> bytes:
        return self.read(n)


def _post_stream(
    client: FlaskClient, path: str, stream: CountingStream, *, declared: int | None
) -> TestResponse:
    """POST `stream` with a declared length, or as a chunked body (no Content-Length, and the
    server marks the body's end, as gunicorn does)."""
    builder = EnvironBuilder(
        path=path,
        method="POST",
        content_type="application/x-www-form-urlencoded",
        headers=[("Accept", "text/html")],
    )
    environ = builder.get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = stream
    if declared is None:
        environ["wsgi.input_terminated"] = True
    else:
        environ["CONTENT_LENGTH"] = str(declared)
    return client.open(Request(environ))


def test_a_declared_64_mb_post_is_refused_before_its_body_is_read(client: FlaskClient) -> None:
    stream = CountingStream(64 * 1024 * 1024)
    resp = _post_stream(client, "/lti/launch", stream, declared=stream.size)
    assert resp.status_code == 413
    page = resp.get_data(as_text=True)
    assert "Request too large" in page
    assert str(LIMIT) in page
    assert "Traceback" not in page
    assert stream.read_bytes == 0


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 400), (LIMIT + 1, 413), (8 << 20, 413)])
def test_a_chunked_body_is_read_one_byte_past_the_limit_at_most(
    client: FlaskClient, size: int, status: int
) -> None:
    """No Content-Length (chunked): read up to one byte over the cap, never further; a body cut
    at the cap is not parsed as if complete (exactly at the cap, the launch is refused as a
    launch, 400, since it carries no id_token)."""
    stream = CountingStream(size)
    resp = _post_stream(client, "/lti/launch", stream, declared=None)
    assert resp.status_code == status
    if status == 413:
        assert "Request too large" in resp.get_data(as_text=True)
    assert stream.read_bytes <= LIMIT + 1


@pytest.mark.parametrize(
    ("path", "limit"),
    [("/lti/launch", LIMIT), ("/api/v1/courses/1/sync", API_LIMIT)],
)
def test_the_limit_is_exact_and_per_route(client: FlaskClient, path: str, limit: int) -> None:
    """At the limit the request goes on (to its own 4xx: no launch, no session); one byte more
    is a 413, JSON under /api/ and a page elsewhere."""
    at = client.post(path, data=b"a" * limit, content_type="application/x-www-form-urlencoded")
    assert at.status_code not in {413, 500}
    over = client.post(
        path, data=b"a" * (limit + 1), content_type="application/x-www-form-urlencoded"
    )
    assert over.status_code == 413
    if path.startswith("/api/"):
        assert over.get_json() == {
            "error": "Request too large",
            "message": f"The request body is larger than this address accepts ({limit} bytes).",
            "status": 413,
            "code": "too_large",
        }
    else:
        assert over.mimetype == "text/html"


def test_limits_come_from_the_config(tmp_path: Path) -> None:
    app = _app(tmp_path, "max_request_bytes = 10000\nmax_api_request_bytes = 2000")
    client = app.test_client()
    assert client.post("/api/v1/courses/1/sync", data=b"{" * 2001).status_code == 413
    assert client.post("/api/v1/courses/1/sync", data=b"{" * 2000).status_code != 413
    assert client.post("/lti/launch", data=b"a" * 10001).status_code == 413


# --------------------------------------------------------------------------- 10: HSTS


@pytest.mark.parametrize(
    ("app_extra", "headers", "expected"),
    [
        ("", {}, None),  # plain http, no proxy: never
        ('public_url = "https://predict.example.fr"', {}, "max-age=31536000"),
        ("proxy_count = 1", {"X-Forwarded-Proto": "https"}, "max-age=31536000"),
        ("proxy_count = 1", {"X-Forwarded-Proto": "http"}, None),
        ("", {"X-Forwarded-Proto": "https"}, None),  # no ProxyFix: the header is not believed
        ('public_url = "https://predict.example.fr"\nhsts_max_age = 600', {}, "max-age=600"),
        ('public_url = "https://predict.example.fr"\nhsts_max_age = 0', {}, None),
    ],
)
def test_hsts_only_over_https(
    tmp_path: Path, app_extra: str, headers: dict[str, str], expected: str | None
) -> None:
    client = _app(tmp_path, app_extra).test_client()
    for path in ("/healthz", "/lti/jwks", "/no-such-page"):
        resp = client.get(path, headers=headers)
        assert resp.headers.get("Strict-Transport-Security") == expected, path


# --------------------------------------------------------------------------- 11: file modes


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # the usual umask, under which files come out 0644
    try:
        yield
    finally:
        os.umask(old)


def test_instance_folder_is_private_on_both_backends(
    backend: str, databases: Databases, tmp_path: Path, umask_022: None
) -> None:
    url = databases.new_url(backend) if backend == "postgresql" else ""
    settings = load_settings(_config(tmp_path, db_url=url), environ={})
    migrate.upgrade(make_engine(settings.database_url))
    create_app(settings)
    instance = tmp_path / "instance"
    assert _mode(instance) == 0o700
    if backend == "sqlite":
        db_file = instance / "arche-predict.sqlite3"
        assert _mode(db_file) == 0o600


def test_sqlite_file_and_wal_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)  # the worst case: nothing masked
    try:
        path = tmp_path / "new" / "db.sqlite3"
        engine = make_engine(f"sqlite:///{path}")
        with engine.begin() as conn:  # a write keeps a -wal and -shm beside the file
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            sidecars = [path.with_name(path.name + s) for s in ("-wal", "-shm")]
            assert all(p.exists() for p in sidecars)
            modes = {p.name: _mode(p) for p in [path, *sidecars]}
        engine.dispose()
    finally:
        os.umask(old)
    assert modes == {"db.sqlite3": 0o600, "db.sqlite3-wal": 0o600, "db.sqlite3-shm": 0o600}
    assert _mode(path.parent) == 0o700


def test_existing_world_readable_files_are_tightened_with_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], umask_022: None
) -> None:
    instance = tmp_path / "instance"
    (instance / "models").mkdir(parents=True, mode=0o755)
    instance.chmod(0o755)
    db_file = instance / "arche-predict.sqlite3"
    wal = instance / "arche-predict.sqlite3-wal"
    for path in (db_file, wal):
        path.write_bytes(b"")
        path.chmod(0o644)
    settings = load_settings(_config(tmp_path), environ={})
    create_app(settings)  # configures logging to the captured stderr, then tightens
    assert {p.name: _mode(p) for p in (instance, instance / "models", db_file, wal)} == {
        "instance": 0o700,
        "models": 0o700,
        "arche-predict.sqlite3": 0o600,
        "arche-predict.sqlite3-wal": 0o600,
    }
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    tightened = {
        Path(str(line["path"])).name: (line["was"], line["now"])
        for line in lines
        if line["event"] == "tightened permissions"
    }
    assert tightened == {
        "instance": ("0o755", "0o700"),
        "models": ("0o755", "0o700"),
        "arche-predict.sqlite3": ("0o644", "0o600"),
        "arche-predict.sqlite3-wal": ("0o644", "0o600"),
    }


# --------------------------------------------------------------------------- 14: /metrics


REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.mark.parametrize(
    ("app_extra", "environ", "headers", "status"),
    [
        ("", {}, {}, 200),  # loopback, the default allow list
        ("", REMOTE, {}, 403),
        ("", {"REMOTE_ADDR": "::ffff:127.0.0.1"}, {}, 200),  # IPv4-mapped loopback
        ('metrics_allow_from = ["203.0.113.0/24"]', REMOTE, {}, 200),
        ("metrics_allow_from = []", {}, {}, 403),  # token only, and none given
        (
            f'metrics_token = "{METRICS_TOKEN}"',
            REMOTE,
            {"Authorization": "Bearer " + METRICS_TOKEN},
            200,
        ),
        (
            f'metrics_token = "{METRICS_TOKEN}"',
            REMOTE,
            {"Authorization": "bearer " + METRICS_TOKEN},
            200,
        ),
        (f'metrics_token = "{METRICS_TOKEN}"', REMOTE, {"Authorization": "Bearer wrong"}, 403),
        (f'metrics_token = "{METRICS_TOKEN}"', REMOTE, {"Authorization": METRICS_TOKEN}, 403),
        ("", REMOTE, {"Authorization": "Bearer "}, 403),  # no token configured: none matches
        # A local reverse proxy without ProxyFix: remote_addr is the proxy's loopback address.
        ("", {}, {"X-Forwarded-For": "198.51.100.7"}, 403),
        ("", {}, {"Forwarded": "for=198.51.100.7"}, 403),
        # With ProxyFix the client address comes from the proxy's header.
        ("proxy_count = 1", {}, {"X-Forwarded-For": "198.51.100.7"}, 403),
        ("proxy_count = 1", REMOTE, {"X-Forwarded-For": "127.0.0.1"}, 200),
    ],
)
def test_metrics_by_address_or_token(
    tmp_path: Path,
    app_extra: str,
    environ: dict[str, str],
    headers: dict[str, str],
    status: int,
) -> None:
    client = _app(tmp_path, app_extra).test_client()
    resp = client.get("/metrics", headers=headers, environ_overrides=environ)
    assert resp.status_code == status
    if status == 200:
        assert "arche_predict_http_requests_total" in resp.get_data(as_text=True)
    else:
        assert resp.get_json()["code"] == "metrics_denied"
        assert METRICS_TOKEN not in resp.get_data(as_text=True)
    # /healthz stays public whoever asks.
    assert client.get("/healthz", headers=headers, environ_overrides=environ).status_code == 200


def test_metrics_token_never_reaches_logs_or_config_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app(tmp_path, f'metrics_token = "{METRICS_TOKEN}"\nlog_level = "DEBUG"')
    client = app.test_client()
    client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
    client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    cfg = tmp_path / "config.toml"
    checked = subprocess.run(
        [sys.executable, "-m", "lti_app.cli", "--config", str(cfg), "config", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "metrics_token = '[redacted]'" in checked.stdout
    captured = capsys.readouterr()
    assert METRICS_TOKEN not in captured.err + captured.out + checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'metrics_allow_from = ["10.0.0.0/8", "gateway"]',
            r"key 'app\.metrics_allow_from':.*'gateway'",
        ),
        (
            'metrics_token = "short-secret"',
            r"key 'app\.metrics_token': too short.*\(value not shown\)$",
        ),
    ],
)
def test_metrics_settings_are_validated(tmp_path: Path, text: str, expected: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[app]\n{text}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert re.search(expected, str(info.value)), str(info.value)
    assert "short-secret" not in str(info.value)


# --------------------------------------------------------------------------- 15: Allow on 405


@pytest.mark.parametrize(
    ("method", "path", "accept", "allowed"),
    [
        ("post", "/healthz", "application/json", {"GET", "HEAD", "OPTIONS"}),
        ("delete", "/metrics", "application/json", {"GET", "HEAD", "OPTIONS"}),
        ("put", "/lti/launch", "text/html", {"POST", "OPTIONS"}),
        ("post", "/lti/jwks", "text/html", {"GET", "HEAD", "OPTIONS"}),
        (
            "delete",
            "/api/v1/courses/1/sync",
            "application/json",
            {"GET", "HEAD", "OPTIONS", "POST"},
        ),
    ],
)
def test_405_names_the_allowed_methods(
    client: FlaskClient, method: str, path: str, accept: str, allowed: set[str]
) -> None:
    resp = getattr(client, method)(path, headers={"Accept": accept})
    assert resp.status_code == 405
    assert {m.strip() for m in resp.headers["Allow"].split(",")} == allowed
    assert resp.mimetype == ("application/json" if accept == "application/json" else "text/html")


# --------------------------------------------------------------------------- 16: http:// URL


@pytest.mark.parametrize(
    ("app_text", "error"),
    [
        ('public_url = "http://predict.example.fr"', "http:// is refused outside this machine"),
        ('public_url = "http://10.1.2.3:8000"', "http:// is refused outside this machine"),
        ('public_url = "predict.example.fr"', "must be an absolute https:// URL"),
        ('public_url = "ftp://predict.example.fr"', "must be an absolute https:// URL"),
        ('public_url = "https://predict.example.fr"', None),
        ('public_url = "http://127.0.0.1:8000"', None),  # the demo
        ('public_url = "http://localhost:8000"', None),
        ('public_url = "http://[::1]:8000"', None),
        ('public_url = "http://tool.localhost"', None),
        ('allow_insecure_http = true\npublic_url = "http://predict.example.fr"', None),
    ],
)
def test_public_url_must_be_https_outside_loopback(
    tmp_path: Path, app_text: str, error: str | None
) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[app]\n{app_text}\n", encoding="utf-8")
    if error is None:
        load_settings(cfg, environ={})
        return
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    message = str(info.value)
    assert message.startswith(f"{cfg}: key 'app.public_url': {error}"), message
    assert "\n" not in message


def test_insecure_public_url_is_one_cli_line_and_the_env_can_allow_it(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[app]\npublic_url = "http://predict.example.fr"\n', encoding="utf-8")
    run = [sys.executable, "-m", "lti_app.cli", "--config", str(cfg), "config", "check"]
    refused = subprocess.run(run, capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(f"Error: configuration: {cfg}: key 'app.public_url': http://")
    env = {**os.environ, "ARCHE_PREDICT_APP__ALLOW_INSECURE_HTTP": "true"}
    allowed = subprocess.run(run, capture_output=True, text=True, check=False, env=env)
    assert allowed.returncode == 0, allowed.stderr


def test_demo_config_still_loads(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lti_app.cli import main

    cfg = tmp_path / "demo.toml"
    result = CliRunner().invoke(main, ["config", "init", "--demo", str(cfg)])
    assert result.exit_code == 0, result.output
    settings = load_settings(cfg, environ={})
    assert settings.app.public_url == "http://127.0.0.1:8000"
    assert not settings.app.allow_insecure_http


# --------------------------------------------------------------------------- 12: the origin


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Origin": "https://predict.example.fr"}, "csrf"),  # same origin: on to the CSRF check
        ({"Origin": "https://PREDICT.example.fr:443"}, "csrf"),  # the same, spelt otherwise
        ({"Origin": "http://localhost"}, "cross_site"),  # the request's host is not the reference
        ({"Origin": "http://predict.example.fr"}, "cross_site"),  # another scheme
        ({"Origin": "https://predict.example.fr:8443"}, "cross_site"),  # another port
        ({"Origin": "null"}, "cross_site"),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://predict.example.fr"}, "cross_site"),
        ({"Sec-Fetch-Site": "same-site"}, "cross_site"),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"}, "csrf"),
        ({}, "csrf"),  # no browser signal: the CSRF token decides
    ],
)
def test_origin_is_judged_against_the_public_url(
    tmp_path: Path, headers: dict[str, str], code: str
) -> None:
    """The check runs before the session and CSRF checks: a cross-site request is refused as
    such, whatever it carries; a same-origin one still needs its token."""
    app = _app(tmp_path, 'public_url = "https://predict.example.fr"')
    resp = app.test_client().post("/api/v1/courses/1/sync", headers=headers)
    assert resp.status_code == 403
    assert resp.get_json()["code"] == code

"""`arche-predict demo`: the simulated Moodle is synced through the real web-service path, the
course is scored, and the development platform performs a real LTI 1.3 launch into the tool."""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select

from lti_app import migrate
from lti_app.app import create_app
from lti_app.cli import main
from lti_app.config import ConfigError, load_settings
from lti_app.db import make_engine, make_session_factory
from lti_app.demo import DemoSetup, prepare
from lti_app.models import LogEvent, SyncRun


def test_demo_needs_a_demo_config(tmp_path: Path) -> None:
    cfg = tmp_path / "plain.toml"
    assert CliRunner().invoke(main, ["config", "init", str(cfg)]).exit_code == 0
    settings = load_settings(cfg, environ={})
    with pytest.raises(ConfigError, match=r"demo\.enabled is false"):
        prepare(settings, make_session_factory(make_engine("sqlite://")))


def _small_demo(tmp_path: Path, public_url: str = "http://localhost", port: int = 8000) -> Path:
    """A demo configuration for tests: its own instance folder, free ports for the simulated
    Moodle and the platform, a smaller course and model search."""
    cfg = tmp_path / "demo.toml"
    result = CliRunner().invoke(main, ["config", "init", "--demo", str(cfg)])
    assert result.exit_code == 0, result.output
    text = cfg.read_text()
    text = text.replace('instance_path = "instance"', f'instance_path = "{tmp_path / "inst"}"')
    text = text.replace('public_url = "http://127.0.0.1:8000"', f'public_url = "{public_url}"')
    text = text.replace("\nport = 8000\n", f"\nport = {port}\n")
    text = text.replace("moodle_port = 8081", "moodle_port = 0")
    text = text.replace("platform_port = 8001", "platform_port = 0")
    # A smaller demo than the default (60 students x 4 past offerings), still large enough for
    # the quality gate: with 24 x 2 past students the ridge's gain over the mean grade was 0.77
    # points with a 95 % CI from -0.00, so the honest gate withheld the grades.
    text = text.replace("students = 60", "students = 30").replace(
        "past_offerings = 4", "past_offerings = 3"
    )
    text = text.replace("regressors = []", 'regressors = ["ridge"]')
    text = text.replace("classifiers = []", 'classifiers = ["logistic"]')
    text = text.replace("bootstrap_samples = 300", "bootstrap_samples = 100")
    text = text.replace("permutation_repeats = 10", "permutation_repeats = 3")
    cfg.write_text(text)
    return cfg


def test_demo_end_to_end(tmp_path: Path) -> None:
    cfg = _small_demo(tmp_path)
    settings = load_settings(cfg, environ={})
    assert settings.demo.enabled
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    setup = prepare(settings, factory)
    try:
        assert setup.scoring.status == "scored", setup.scoring.message
        with factory() as session:
            runs = session.scalars(select(SyncRun)).all()
            assert len(runs) == 4
            assert {r.status for r in runs} == {"succeeded"}
            assert {r.source for r in runs} == {"ws"}  # the real web-service path
            assert (session.scalar(select(func.count()).select_from(LogEvent)) or 0) > 1000

        # The platform page offers the teacher's, the learner's and the administrator's
        # launches, in English and in French, into a frame.
        with urllib.request.urlopen(setup.platform_url + "/", timeout=10) as page:
            body = page.read().decode()
        for who in ("teacher", "learner", "admin"):
            for lang in ("en", "fr"):
                assert f'href="/launch?as={who}&amp;lang={lang}" target="tool"' in body
        assert "Launch as administrator" in body
        assert "Lancer en tant qu&#x27;enseignant" in body
        assert '<iframe name="tool"' in body

        app = create_app(settings)
        app.testing = True
        client = app.test_client()
        login = urlsplit(setup.platform.login_url("teacher"))
        resp = client.get(f"{login.path}?{login.query}")
        assert resp.status_code == 302
        auth_url = resp.headers["Location"]
        assert auth_url.startswith(setup.platform.auth_login_url)
        with urllib.request.urlopen(auth_url, timeout=10) as answer:
            form = answer.read().decode()
        id_token = html.unescape(re.search(r'name="id_token" value="([^"]+)"', form).group(1))  # type: ignore[union-attr]
        state = html.unescape(re.search(r'name="state" value="([^"]+)"', form).group(1))  # type: ignore[union-attr]
        launched = client.post("/lti/launch", data={"id_token": id_token, "state": state})
        assert launched.status_code in (302, 303), launched.get_data(as_text=True)[:500]
        token = parse_qs(urlsplit(launched.headers["Location"]).query)["lt"][0]
        summary = client.get(
            f"/api/v1/courses/{setup.current_course_id}",
            headers={"X-Launch-Token": token, "Accept": "application/json"},
        )
        assert summary.status_code == 200, summary.get_data(as_text=True)
        assert summary.get_json()["state"] == "predictions"
        assert summary.get_json()["students"] >= 20

        # The administrator's launch in French: a French dashboard, and the admin page.
        admin = _launch(client, setup, "admin", "fr")
        page = client.get(f"/course/{setup.current_course_id}", headers={"X-Launch-Token": admin})
        assert page.status_code == 200
        assert '<html lang="fr">' in page.get_data(as_text=True)
        assert client.get("/admin", headers={"X-Launch-Token": admin}).status_code == 200
        # The teacher's English launch speaks English; a teacher is no administrator.
        teacher = _launch(client, setup, "teacher", "en")
        page = client.get(f"/course/{setup.current_course_id}", headers={"X-Launch-Token": teacher})
        assert '<html lang="en">' in page.get_data(as_text=True)
        assert client.get("/admin", headers={"X-Launch-Token": teacher}).status_code == 403
    finally:
        setup.platform.stop()
        setup.moodle.stop()


def _launch(client: FlaskClient, setup: DemoSetup, who: str, lang: str) -> str:
    """The demo platform's launch of `who` in `lang`, through the tool's real OIDC flow; the
    launch token of the session it opens."""
    login = urlsplit(setup.platform.login_url(who, lang))
    resp = client.get(f"{login.path}?{login.query}")
    assert resp.status_code == 302
    with urllib.request.urlopen(resp.headers["Location"], timeout=10) as answer:
        form = answer.read().decode()
    found = re.search(r'name="id_token" value="([^"]+)".*name="state" value="([^"]+)"', form)
    assert found is not None, form[:300]
    launched = client.post(
        "/lti/launch",
        data={"id_token": html.unescape(found.group(1)), "state": html.unescape(found.group(2))},
    )
    assert launched.status_code in (302, 303), launched.get_data(as_text=True)[:500]
    return parse_qs(urlsplit(launched.headers["Location"]).query)["lt"][0]


def test_ctrl_c_stops_the_demo_without_killing_its_workers(tmp_path: Path) -> None:
    """`arche-predict demo` served by gunicorn, then Ctrl-C (SIGINT to its process group, as a
    terminal sends it): every worker exits by itself (none is killed), the master shuts down,
    the scheduler process goes with it. A forked worker used to run the master's clean-up,
    waiting for the demo servers' threads it does not have, until the master SIGKILLed it 20 s
    later."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = _small_demo(tmp_path, f"http://127.0.0.1:{port}", port)
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lti_app.cli", "--config", str(cfg), "demo"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300  # preparing the demo: simulate, sync, train
        while log.read_text().count("app created") < 2:  # both workers serve
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.status == 200
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    # No worker had to be killed. (Not "two 'Worker exiting' lines": a worker the signal meets
    # while it serves or starts up may leave without that line, and that is a clean exit too.)
    assert "SIGKILL" not in text, text[-3000:]
    assert "Shutting down: Master" in text
    assert not _group_alive(proc.pid)  # the scheduler went too: nothing left in the group


def _group_alive(pgid: int, patience_s: float = 10.0) -> bool:
    """Whether a process of group `pgid` is still there after `patience_s` (an exited one may
    take a moment to be reaped once its parent has gone)."""
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.1)
    return True

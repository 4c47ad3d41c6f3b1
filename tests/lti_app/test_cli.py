"""The `arche-predict` command line, end to end (real processes where it matters)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from lti_app import migrate
from lti_app.cli import main
from lti_app.config import Settings, load_settings
from lti_app.crypto import SecretBox
from lti_app.db import make_engine, make_session_factory
from lti_app.models import MoodleSite
from lti_app.wsgi import control_socket_path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lti_app.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_config_init_writes_a_loadable_private_config(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "config.toml"
    result = CliRunner().invoke(main, ["config", "init", str(path)])
    assert result.exit_code == 0, result.output
    settings = load_settings(path, environ={})
    settings.require_secrets()
    SecretBox.from_settings(settings)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = CliRunner().invoke(main, ["config", "init", str(path)])
    assert again.exit_code != 0
    assert "exists" in again.output


def test_db_upgrade_and_current(tmp_path: Path, settings: Settings) -> None:
    cfg = Path(settings.source)
    runner = CliRunner()
    before = runner.invoke(main, ["--config", str(cfg), "db", "current"])
    assert before.exit_code == 1
    assert "(empty database)" in before.output
    up = runner.invoke(main, ["--config", str(cfg), "db", "upgrade"])
    assert up.exit_code == 0, up.output
    assert migrate.head_revision() in up.output
    after = runner.invoke(main, ["--config", str(cfg), "db", "current"])
    assert after.exit_code == 0


def test_db_upgrade_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lti_app.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={
            **os.environ,
            "ARCHE_PREDICT_DATABASE__URL": "postgresql+psycopg://u:hunter2@127.0.0.1:1/x",
        },
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "database unreachable" in result.stderr
    assert "hunter2" not in result.stderr


def test_site_add_stores_token_encrypted(settings: Settings) -> None:
    cfg = Path(settings.source)
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(cfg), "db", "upgrade"]).exit_code == 0
    token = "abcdefabcdefabcdefabcdefabcdef12"
    result = runner.invoke(
        main,
        [
            "--config",
            str(cfg),
            "site",
            "add",
            "--url",
            "https://arche.example.fr/",
            "--token-stdin",
        ],
        input=token + "\n",
    )
    assert result.exit_code == 0, result.output
    assert token not in result.output
    session = make_session_factory(make_engine(settings.database_url))()
    site = session.query(MoodleSite).one()
    assert site.base_url == "https://arche.example.fr"
    assert site.ws_token_encrypted
    assert token not in site.ws_token_encrypted
    assert SecretBox.from_settings(settings).decrypt(site.ws_token_encrypted) == token


def test_gunicorn_control_sockets_differ_per_instance_and_port(settings: Settings) -> None:
    here = control_socket_path(settings, "127.0.0.1:8000")
    assert here != control_socket_path(settings, "127.0.0.1:8010")
    other = settings.model_copy(
        update={"app": settings.app.model_copy(update={"instance_path": "/srv/other/instance"})}
    )
    assert control_socket_path(other, "0.0.0.0:8000") == "/srv/other/instance/gunicorn-8000.ctl"
    deep = settings.model_copy(
        update={"app": settings.app.model_copy(update={"instance_path": "/x" * 60})}
    )
    long_one = control_socket_path(deep, "127.0.0.1:8000")
    assert len(long_one) < 100
    assert long_one.endswith(".ctl")
    assert long_one != control_socket_path(deep, "127.0.0.1:8001")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return int(r.status), r.read()


def test_serve_runs_gunicorn_and_sums_metrics_over_workers(settings: Settings) -> None:
    cfg = str(Path(settings.source))
    assert _cli("--config", cfg, "db", "upgrade").returncode == 0
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lti_app.cli",
            "--config",
            cfg,
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and body is None:
            try:
                status, raw = _get(f"{base}/healthz")
                assert status == 200
                body = json.loads(raw)
            except OSError:
                time.sleep(0.3)
        assert body is not None, "gunicorn never answered /healthz"
        assert body["revision"] == migrate.head_revision()

        def healthz_count() -> float:
            text = _get(f"{base}/metrics")[1].decode()
            line = next(
                ln
                for ln in text.splitlines()
                if ln.startswith("arche_predict_http_requests_total{")
                and 'endpoint="/healthz"' in ln
            )
            return float(line.rsplit(" ", 1)[1])

        # Counted from here: a start-up probe that timed out on our side may still have been
        # served (and counted) by a slow worker.
        before = healthz_count()
        for _ in range(24):
            assert _get(f"{base}/healthz")[0] == 200
        # Whichever worker answers the scrape, it reports the requests of both workers.
        for _ in range(4):
            assert healthz_count() == before + 24
        files = list((Path(settings.app.instance_path) / "prometheus").glob("*.db"))
        assert files, "workers wrote no shared metric files"
        # gunicorn's control socket is this instance's own, not ~/.gunicorn/gunicorn.ctl.
        ctl = Path(control_socket_path(settings, f"127.0.0.1:{port}"))
        assert ctl.is_socket(), ctl
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert "Booting worker" in out or "Listening at" in out
    # Our threaded worker (new connections wait in the poller, not in a thread).
    assert "Using worker: PollingThreadWorker" in out


def test_cli_does_not_import_prometheus_client_in_the_master() -> None:
    """prometheus_client chooses its value store at import: the master must import it late."""
    code = "import sys, lti_app.cli, lti_app.wsgi; print('prometheus_client' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "False"


def test_cli_import_loads_no_heavy_module() -> None:
    """`arche-predict --help` and the light commands import only click and the CLI's modules:
    the database, configuration, web and ML stacks load inside the commands that use them."""
    heavy = ["sqlalchemy", "alembic", "pydantic", "requests", "flask", "gunicorn", "pandas",
             "sklearn", "torch", "lti_app.config", "lti_app.log_sources"]  # fmt: skip
    code = f"import sys, lti_app.cli; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


def test_a_database_command_loads_no_data_or_logging_stack() -> None:
    """What `course list`, `keys list`, `lti list-platforms` and the like import (the database,
    the models, the course and site services) loads neither pandas, numpy nor structlog (which
    loads rich where installed): about 350 ms of their start (README, Performance)."""
    light = ["lti_app.db", "lti_app.models", "lti_app.services.courses",
             "lti_app.services.sites", "lti_app.log_sources"]  # fmt: skip
    heavy = ["pandas", "numpy", "structlog", "rich", "requests"]
    code = (f"import sys, importlib; [importlib.import_module(m) for m in {light!r}]; "
            f"print([m for m in {heavy!r} if m in sys.modules])")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


def test_a_command_makes_one_engine_and_disposes_it(settings: Settings, monkeypatch: Any) -> None:
    """The CLI context owns the process's engine: `db upgrade` uses it twice (migrate, then
    read the revision) through one engine, whose pooled connection is closed when it ends."""
    import lti_app.db

    made: list[Engine] = []
    real_make_engine = lti_app.db.make_engine

    def counting(url: str, **kwargs: Any) -> Engine:
        made.append(real_make_engine(url, **kwargs))
        return made[-1]

    monkeypatch.setattr(lti_app.db, "make_engine", counting)
    result = CliRunner().invoke(main, ["--config", str(settings.source), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert len(made) == 1
    pool = made[0].pool
    assert isinstance(pool, QueuePool)  # a SQLite file keeps its connections pooled
    assert pool.checkedin() == 0  # disposed: no connection left in the pool


def test_scheduler_list_gives_each_nightly_job_its_own_time(settings: Settings) -> None:
    """The weekly digest runs two hours after the nightly sync (its offset), and says so."""
    from lti_app.scheduler import default_jobs, nightly_time

    result = CliRunner().invoke(main, ["--config", str(settings.source), "scheduler", "--list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    for job in default_jobs():
        if job.schedule == "nightly":
            assert f"nightly at {nightly_time(settings, job):%H:%M}" in lines[job.name]
    sync, digest = lines["nightly-sync"], lines["weekly-digest"]
    assert sync.split("nightly at ")[1][:5] != digest.split("nightly at ")[1][:5]


def test_privacy_commands_export_erase_and_read_the_access_log(
    tmp_path: Path, settings: Settings
) -> None:
    """#18: `privacy export` writes a person's JSON, `privacy erase --yes` removes them, an
    unknown person is one `Error:` line, and the access log reads as a table."""
    import json

    from lti_app.db import make_engine, make_session_factory, session_scope
    from lti_app.models import MoodleSite, Person

    cfg = Path(settings.source)  # its database and instance folder are under tmp_path
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(cfg), "db", "upgrade"]).exit_code == 0
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        site = MoodleSite(base_url="https://moodle.example.invalid")
        session.add(site)
        session.flush()
        session.add(Person(site_id=site.id, moodle_user_id=42, fullname="Ana Lyse"))
    engine.dispose()
    out = tmp_path / "p.json"
    done = runner.invoke(
        main, ["--config", str(cfg), "privacy", "export", "--moodle-user", "42", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text(encoding="utf-8"))["person"]["fullname"] == "Ana Lyse"
    erased = runner.invoke(
        main, ["--config", str(cfg), "privacy", "erase", "--moodle-user", "42", "--yes"]
    )
    assert erased.exit_code == 0, erased.output
    assert "erased person" in erased.output
    again = runner.invoke(main, ["--config", str(cfg), "privacy", "export", "--moodle-user", "42"])
    assert again.exit_code == 1
    assert "Error: no person with Moodle user id 42" in again.output
    log = runner.invoke(main, ["--config", str(cfg), "privacy", "access-log"])
    assert log.exit_code == 0
    assert log.output.splitlines()[0] == "when\tviewer\tsubject\tcourse\tkind"

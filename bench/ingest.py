"""Log ingest into SQLite and PostgreSQL: web-service sync, CSV import, nightly incremental sync.

Everything goes through the application's real code paths: ``lti_app.tasks.run_course_sync``
(the CLI's and the scheduler's unit of work: a ``MoodleClient`` over HTTP, ``WsLogSource`` at
page size 5000, ``store_log_rows``, one commit per page with its cursor) against
:mod:`bench.moodle_ws` in its own process, and ``lti_app.services.imports.import_log_file`` on
the simulator's log-report download (``simulation.exports.log_report_csv``).

Each measurement runs on a fresh, migrated database: a SQLite file in a temporary directory, or
a throwaway database on the PostgreSQL server named by ``ARCHE_PREDICT_TEST_POSTGRES_URL``,
dropped afterwards.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import requests
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bench.moodle_ws import TOKEN
from lti_app import migrate
from lti_app.config import Settings, load_settings
from lti_app.crypto import SecretBox, generate_key
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.models import Course, LogEvent
from lti_app.services.courses import add_course
from lti_app.services.imports import import_log_file
from lti_app.services.sites import upsert_site
from lti_app.tasks import run_course_sync
from simulation.course import SimulatedOffering
from simulation.exports import log_report_csv

POSTGRES_ENV = "ARCHE_PREDICT_TEST_POSTGRES_URL"
ROOT = Path(__file__).resolve().parents[1]


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if os.environ.get(POSTGRES_ENV) else ["sqlite"]


@contextmanager
def fresh_database(backend: str, tmp: Path) -> Iterator[str]:
    """A migrated, empty database URL; a PostgreSQL one is dropped on the way out."""
    name = f"arche_bench_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        url = f"sqlite:///{tmp / (name + '.sqlite3')}"
        _migrate(url)
        yield url
        return
    admin_url = os.environ[POSTGRES_ENV]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        _migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


def make_settings(tmp: Path, url: str) -> Settings:
    cfg = tmp / f"bench-{uuid.uuid4().hex[:8]}.toml"
    cfg.write_text(
        f"""
[app]
secret_key = "bench"
instance_path = "{tmp / "instance"}"
log_level = "WARNING"
[database]
url = "{url}"
[security]
encryption_key = "{generate_key()}"
[moodle]
page_size = 5000
max_retries = 0
request_timeout = 120.0
""",
        encoding="utf-8",
    )
    return load_settings(cfg, environ={})


# --------------------------------------------------------------------------- the web service


class WsServer:
    """:mod:`bench.moodle_ws` in a subprocess, serving one offering's log."""

    def __init__(self, log: pd.DataFrame, tmp: Path) -> None:
        path = tmp / f"log-{uuid.uuid4().hex[:8]}.pkl"
        with open(path, "wb") as fh:
            pickle.dump(log, fh, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "bench.moodle_ws", str(path)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("port "):
            self.proc.kill()
            raise RuntimeError(f"the benchmark web service did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        path.unlink()

    def set_visible(self, upto: int) -> None:
        requests.post(
            f"{self.url}/bench/visible", data={"upto": upto}, timeout=30
        ).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@dataclass
class SyncSetup:
    settings: Settings
    factory: sessionmaker[Session]
    course_id: int


def setup_ws_course(url: str, tmp: Path, server: WsServer, moodle_course_id: int) -> SyncSetup:
    settings = make_settings(tmp, url)
    factory = make_session_factory(make_engine(url))
    with session_scope(factory) as session:
        upsert_site(session, SecretBox.from_settings(settings), server.url, token=TOKEN)
        course_id = add_course(session, server.url, moodle_course_id).id
    return SyncSetup(settings, factory, course_id)


def timed_sync(setup: SyncSetup, trigger: str) -> tuple[float, int, int]:
    """(seconds, events added, pages) of one log sync through the real unit of work."""
    t0 = time.perf_counter()
    outcome = run_course_sync(
        setup.settings,
        setup.factory,
        setup.course_id,
        trigger=trigger,
        source="ws",
        include_roster=False,
    )
    seconds = time.perf_counter() - t0
    if outcome.status != "succeeded":
        raise RuntimeError(f"sync failed: {outcome.error_code}: {outcome.error_message}")
    return seconds, outcome.events_added, outcome.pages


def stored_events(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(LogEvent)) or 0)


def ws_ingest(backend: str, off: SimulatedOffering, tmp: Path, *, nightly: bool) -> dict[str, Any]:
    """Full sync of the offering's log; then, when ``nightly``, incremental syncs.

    For the nightly runs the service first hides the last 1% + 1000 events; the initial sync
    stores the rest; then 1000 new events are revealed and synced, then the last 1%, then a run
    with nothing new. Each incremental run is the real sync (cursor, pages, commit per page).
    """
    log = off.log
    n = len(log)
    ids = log["id"].to_numpy()
    one_pct = max(1, n // 100)
    fixed = 1000
    hidden = one_pct + fixed if nightly else 0
    out: dict[str, Any] = {"backend": backend, "events_total": n}
    server = WsServer(log, tmp)
    try:
        with fresh_database(backend, tmp) as url:
            setup = setup_ws_course(url, tmp, server, off.courseid)
            if hidden:
                server.set_visible(int(ids[n - hidden - 1]))
            seconds, added, pages = timed_sync(setup, "bench")
            assert added == n - hidden, (added, n - hidden)
            out.update(
                ingest_events=added,
                ingest_s=seconds,
                ingest_pages=pages,
                ingest_events_per_s=added / seconds,
            )
            if nightly:
                runs = []
                for label, upto in (
                    ("1000 new", int(ids[n - one_pct - 1])),
                    ("1% new", 0),
                    ("nothing new", 0),
                ):
                    server.set_visible(upto)
                    before = stored_events(setup.factory)
                    seconds, added, pages = timed_sync(setup, "bench-nightly")
                    runs.append(
                        {
                            "case": label,
                            "stored_before": before,
                            "new_events": added,
                            "seconds": seconds,
                            "pages": pages,
                            "us_per_new_event": seconds / added * 1e6 if added else None,
                        }
                    )
                assert stored_events(setup.factory) == n
                out["nightly"] = runs
            setup.factory.kw["bind"].dispose()
    finally:
        server.stop()
    return out


# --------------------------------------------------------------------------- CSV import


def make_csv(off: SimulatedOffering) -> tuple[bytes, float]:
    """The offering's log-report download (English), and the seconds the simulator took."""
    t0 = time.perf_counter()
    data = log_report_csv(off, "en").encode("utf-8")
    return data, time.perf_counter() - t0


def csv_import(
    backend: str, off: SimulatedOffering, tmp: Path, csv: tuple[bytes, float] | None = None
) -> dict[str, Any]:
    """Import the offering's log-report download into a fresh course, timed."""
    data, make_csv_s = csv or make_csv(off)
    with fresh_database(backend, tmp) as url:
        settings = make_settings(tmp, url)
        factory = make_session_factory(make_engine(url))
        with session_scope(factory) as session:
            upsert_site(session, SecretBox.from_settings(settings), "https://moodle.example")
            course_id = add_course(session, "https://moodle.example", off.courseid).id
        t0 = time.perf_counter()
        with session_scope(factory) as session:
            course = session.get_one(Course, course_id)
            result = import_log_file(session, course, data, timezone="Europe/Paris")
        seconds = time.perf_counter() - t0
        stored = stored_events(factory)
        factory.kw["bind"].dispose()
    if result.added != len(off.log) or stored != len(off.log):
        raise RuntimeError(f"CSV import stored {stored} of {len(off.log)} rows")
    return {
        "backend": backend,
        "events": result.added,
        "csv_bytes": len(data),
        "make_csv_s": make_csv_s,
        "import_s": seconds,
        "events_per_s": result.added / seconds,
    }


def tmpdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="arche-bench-")

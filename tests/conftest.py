"""Shared fixtures: settings, a migrated engine per database backend, a rolled-back session.

The database backends under test are SQLite (always) and PostgreSQL when
ARCHE_PREDICT_TEST_POSTGRES_URL names a server where we may create databases (`.ci/run` starts
one). Tests that take `engine` or `db_session` run once per backend; their ids end in
`[sqlite]` or `[postgresql]`. When the URL is set but the server does not answer, the run fails:
a silently skipped backend would be a green lie.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from lti_app import migrate
from lti_app.config import Settings, load_settings
from lti_app.db import make_engine

# Property tests draw the same cases on every run: a seed derived from each test, no example
# database. A case drawn at random per run could pass today and fail in CI tomorrow; a failure
# found while developing is kept as an explicit @example.
hypothesis_settings.register_profile("deterministic", derandomize=True, database=None)
hypothesis_settings.load_profile("deterministic")

POSTGRES_URL = os.environ.get("ARCHE_PREDICT_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]
FIXTURES = Path(__file__).parent / "fixtures"


def pytest_report_header() -> str:
    shown = make_url(POSTGRES_URL).render_as_string(hide_password=True) if POSTGRES_URL else "-"
    return f"arche-predict database backends: {', '.join(BACKENDS)} (postgresql: {shown})"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, scope="session")


class Databases:
    """Creates throwaway databases: a file for SQLite, a fresh database on the PostgreSQL server."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.created: list[str] = []

    def new_url(self, backend: str) -> str:
        name = f"arche_test_{uuid.uuid4().hex[:12]}"
        if backend == "sqlite":
            return f"sqlite:///{self.tmp / (name + '.sqlite3')}"
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.created.append(name)
        return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def engine(backend: str, databases: Databases) -> Iterator[Engine]:
    """A database of the given backend, migrated to head once per test session."""
    eng = make_engine(databases.new_url(backend))
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, even if the code under test commits
    (commits become savepoint releases)."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def fernet_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def settings(tmp_path: Path, fernet_key: str) -> Settings:
    """Settings for an app on a fresh SQLite file under tmp_path (no environment read)."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[app]
secret_key = "test-secret-{uuid.uuid4().hex}"
instance_path = "{tmp_path / "instance"}"
log_format = "json"

[security]
encryption_key = "{fernet_key}"
""",
        encoding="utf-8",
    )
    return load_settings(cfg, environ={})


_BY_BACKEND: dict[str, dict[str, int]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count outcomes per database backend, for the summary that shows both really ran."""
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    for backend in BACKENDS:
        if f"[{backend}" in report.nodeid or f"-{backend}]" in report.nodeid:
            counts = _BY_BACKEND.setdefault(backend, {})
            counts[report.outcome] = counts.get(report.outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.section("database backends")
    for backend in BACKENDS:
        counts = _BY_BACKEND.get(backend, {})
        shown = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no test"
        terminalreporter.write_line(f"{backend}: {shown}")
    if not POSTGRES_URL:
        terminalreporter.write_line(
            "postgresql: skipped: the database tests ran on SQLite only. Run them on PostgreSQL "
            'too with `eval "$(.ci/postgres.sh start)" && make test` (or `bash .ci/run`).'
        )

"""The registry of log sources: a new source is one module plus one registry line.

A toy source registered through the registry alone (no other file touched) is synced by the
same `run_course_sync` as the shipped ones, on SQLite and PostgreSQL; configuration, CLI choices
and the database's CHECK constraint all follow the registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, select

from lti_app import log_sources
from lti_app.config import ConfigError
from lti_app.log_sources import LogSourceSpec, SourceContext
from lti_app.models import LogEvent, SyncRun
from moodle_client.logs import LogPage, LogRow
from tests.conftest import Databases
from tests.lti_app.test_sync import make_settings, setup_course
from tests.moodle_stub import MoodleStub, make_log_rows


class ToySource:
    """Yields a fixed list of rows in pages of `size`, resuming after a log id."""

    name = "toy"

    def __init__(self, courseid: int, rows: list[LogRow], size: int = 7) -> None:
        self.courseid = courseid
        self.rows = rows
        self.size = size

    def pages(self, after: int = 0) -> Iterator[LogPage]:
        todo = [r for r in self.rows if (r.id or 0) > after and r.courseid == self.courseid]
        for start in range(0, len(todo), self.size):
            chunk = tuple(todo[start : start + self.size])
            more = start + self.size < len(todo)
            yield LogPage(rows=chunk, cursor=chunk[-1].id, hasmore=more, remaining=None)


TOY_ROWS = [LogRow(**{**row, "content_hash": None}) for row in make_log_rows(25)]


@pytest.fixture
def toy() -> Iterator[LogSourceSpec]:
    spec = log_sources.register(
        LogSourceSpec(
            name="toy",
            description="a test source",
            build=lambda ctx: ToySource(ctx.course.moodle_course_id, TOY_ROWS),
        )
    )
    yield spec
    log_sources.unregister("toy")


def test_a_registered_toy_source_is_synced_like_the_shipped_ones(
    backend: str, databases: Databases, tmp_path: Path, toy: LogSourceSpec
) -> None:
    from lti_app.tasks import run_course_sync

    assert "toy" in log_sources.names()
    stub = MoodleStub(make_log_rows(1)).start()  # only for the site's URL: nothing is called
    try:
        settings = make_settings(tmp_path, databases.new_url(backend))
        factory, course_id = setup_course(settings, stub.url)
        outcome = run_course_sync(settings, factory, course_id, source="toy", include_roster=False)
        assert outcome.status == "succeeded", outcome.error_message
        assert outcome.events_added == 25
        assert outcome.pages == 4
        again = run_course_sync(settings, factory, course_id, source="toy", include_roster=False)
        assert again.events_added == 0  # resumed after the stored cursor
        with factory() as session:
            ids = sorted(i or 0 for i in session.scalars(select(LogEvent.moodle_log_id)))
            assert ids == sorted(r.id or 0 for r in TOY_ROWS)
            runs = session.scalars(select(SyncRun.source)).all()
            assert set(runs) == {"toy"}
        assert stub.calls == []
    finally:
        stub.stop()


def test_unknown_and_unpulled_sources_are_clear_errors() -> None:
    with pytest.raises(log_sources.LogSourceError, match="unknown log source 'nope'"):
        log_sources.spec("nope")
    with pytest.raises(log_sources.LogSourceError, match="import-logs"):
        log_sources.build("csv", SourceContext(None, None, None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="registered twice"):
        log_sources.register(LogSourceSpec(name="ws", description="again"))


def test_every_declared_module_describes_its_own_name() -> None:
    for name in log_sources.DECLARED:
        assert log_sources.spec(name).name == name


def test_config_and_cli_follow_the_registry(tmp_path: Path, toy: LogSourceSpec) -> None:
    from lti_app.cli import main
    from lti_app.config import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text('[moodle]\nlog_source = "ftp"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="ws, db, csv"):
        load_settings(cfg, environ={})
    result = CliRunner().invoke(main, ["sync", "--help"])
    assert "ws|db|csv" in result.output


def test_database_check_constraint_lists_the_declared_sources(
    backend: str, databases: Databases
) -> None:
    """The migrated database's CHECK equals the registry: a new declared source without its
    migration fails here."""
    from lti_app import migrate
    from lti_app.db import make_engine

    engine = make_engine(databases.new_url(backend))
    migrate.upgrade(engine)
    checks = inspect(engine).get_check_constraints("moodle_site")
    engine.dispose()
    text = next(c["sqltext"] for c in checks if str(c["name"]).endswith("log_source"))
    # SQLite keeps "IN ('ws', ...)"; PostgreSQL rewrites it as "= ANY (ARRAY['ws'::…, ...])".
    assert re.findall(r"'([^']*)'", text) == list(log_sources.DECLARED)

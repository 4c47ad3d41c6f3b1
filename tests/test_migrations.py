"""The Alembic history is linear and matches the models exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import lti_app.models  # noqa: F401  (registers the tables)
from lti_app import migrate
from lti_app.db import Base, make_engine
from tests.conftest import Databases


def test_single_head() -> None:
    assert len(migrate.heads()) == 1
    assert migrate.head_revision() == migrate.heads()[0]


def test_autogenerate_finds_no_difference(backend: str, databases: Databases) -> None:
    engine = make_engine(databases.new_url(backend))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"


def test_upgrade_downgrade_roundtrip(backend: str, databases: Databases) -> None:
    engine = make_engine(databases.new_url(backend))
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_upgrade_is_idempotent(backend: str, databases: Databases) -> None:
    engine = make_engine(databases.new_url(backend))
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()

"""The Alembic history is linear and matches the models exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import lti_app.models  # noqa: F401  (registers the tables)
from lti_app import migrate
from lti_app.db import Base, make_engine
from tests.conftest import Databases


def _ours(name: str | None, type_: str, parent_names: object) -> bool:
    """Procrastinate's tables (0016) are not in our models."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def test_single_head() -> None:
    assert len(migrate.heads()) == 1
    assert migrate.head_revision() == migrate.heads()[0]


def test_autogenerate_finds_no_difference(backend: str, databases: Databases) -> None:
    engine = make_engine(databases.new_url(backend))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _ours})
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
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}  # procrastinate's gone
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_upgrade_is_idempotent(backend: str, databases: Databases) -> None:
    engine = make_engine(databases.new_url(backend))
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


#: Rows that other tables refer to, then rows that refer to them (ids fixed), inserted at
#: revision 0009: what migrations after it must keep, on both databases and both ways.
_ROWS: list[tuple[str, dict[str, object]]] = [
    ("moodle_site", {"id": 1, "base_url": "https://moodle.example.invalid", "log_source": "ws"}),
    ("course", {"id": 1, "site_id": 1, "moodle_course_id": 2}),
    ("course", {"id": 2, "site_id": 1, "moodle_course_id": 3}),
    ("person", {"id": 1, "site_id": 1, "moodle_user_id": 4}),
    ("enrolment", {"id": 1, "course_id": 1, "person_id": 1, "role": "student", "source": "ws"}),
    ("course_lineage", {"id": 1, "course_id": 1, "past_course_id": 2}),
    ("model_version", {"id": 1, "course_id": 1, "task": "regression"}),
    ("prediction", {"id": 1, "course_id": 1, "person_id": 1, "regression_model_id": 1}),
    ("grade_item", {"id": 1, "course_id": 2, "itemtype": "course"}),
    ("grade", {"id": 1, "grade_item_id": 1, "person_id": 1, "value": 12.0}),
    ("log_event", {"id": 1, "site_id": 1, "moodle_log_id": 7, "userid": 4, "courseid": 2}),
]


def _filler(column: dict[str, object]) -> object:
    kind = str(column["type"]).upper()
    if "INT" in kind:
        return 1
    if any(t in kind for t in ("FLOAT", "REAL", "NUMERIC", "DOUBLE")):
        return 1.0
    if "BOOL" in kind:
        return False
    if any(t in kind for t in ("DATE", "TIME")):
        return "2026-01-01 00:00:00"
    if "JSON" in kind:
        return "{}"
    return "r" if column["name"] == "crud" else "x"


def _insert_rows(engine: object) -> None:
    from sqlalchemy import text

    inspector = inspect(engine)
    with engine.begin() as conn:  # type: ignore[attr-defined]
        for table, given in _ROWS:
            values = dict(given)
            for column in inspector.get_columns(table):
                name = str(column["name"])
                if name in values or column["nullable"] or column.get("default") is not None:
                    continue
                values[name] = _filler(column)
            names = ", ".join(values)
            marks = ", ".join(f":{k}" for k in values)
            # Table and column names are our own constants and the inspector's, never input.
            statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608
            conn.execute(text(statement), values)


def _counts(engine: object) -> dict[str, int]:
    from sqlalchemy import text

    with engine.connect() as conn:  # type: ignore[attr-defined]
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())  # noqa: S608
            for t in sorted({t for t, _ in _ROWS})
        }


def test_migrations_keep_the_data_both_ways(backend: str, databases: Databases) -> None:
    """A migration that rebuilds a table others refer to (SQLite's batch mode) would delete
    their rows through ON DELETE CASCADE: 0013 as first written emptied every enrolment."""
    engine = make_engine(databases.new_url(backend))
    migrate.upgrade(engine, "0009")
    _insert_rows(engine)
    before = _counts(engine)
    assert all(n >= 1 for n in before.values()), before
    migrate.upgrade(engine)
    assert _counts(engine) == before
    migrate.downgrade(engine, "0009")
    assert _counts(engine) == before
    migrate.upgrade(engine)
    assert _counts(engine) == before
    engine.dispose()

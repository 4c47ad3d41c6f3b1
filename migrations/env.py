"""Alembic environment: runs on the connection handed over by `lti_app.migrate`, or on a URL."""

from __future__ import annotations

import logging.config

from alembic import context
from sqlalchemy import engine_from_config, pool

import lti_app.models  # noqa: F401  (registers every table on the metadata)
from lti_app.db import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name)

target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Procrastinate's tables (migration 0016) are its own, not our models'."""
    del parent_names
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


def _configure(connection: object | None = None) -> None:
    is_sqlite = (
        connection is not None and connection.dialect.name == "sqlite"  # type: ignore[attr-defined]
    )
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        compare_type=True,
        include_name=include_name,
        render_as_batch=is_sqlite,  # SQLite cannot ALTER most things; batch mode copies tables.
    )


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""`arche-predict db`: the database schema (Alembic migrations)."""

from __future__ import annotations

import sys

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx


@click.group("db")
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_ctx
@friendly_errors
def db_upgrade(ctx: CliContext, revision: str) -> None:
    """Migrate the database to the code's schema (idempotent)."""
    from lti_app import migrate

    migrate.upgrade(ctx.engine, revision)
    click.echo(f"database at revision {migrate.current_revision(ctx.engine)}")


@db.command("downgrade")
@click.argument("revision")
@pass_ctx
@friendly_errors
def db_downgrade(ctx: CliContext, revision: str) -> None:
    """Step the schema back to REVISION (use `base` to drop everything)."""
    from lti_app import migrate

    migrate.downgrade(ctx.engine, revision)
    click.echo(f"database at revision {migrate.current_revision(ctx.engine)}")


@db.command("current")
@pass_ctx
@friendly_errors
def db_current(ctx: CliContext) -> None:
    """Print the database's revision and the code's head."""
    from lti_app import migrate

    current = migrate.current_revision(ctx.engine)
    head = migrate.head_revision()
    click.echo(f"current: {current or '(empty database)'}\nhead:    {head}")
    if current != head:
        sys.exit(1)

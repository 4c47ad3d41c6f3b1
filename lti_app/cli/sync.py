"""`arche-predict sync`: roster, grades and new log events from Moodle."""

from __future__ import annotations

import sys
from typing import Any

import click

from lti_app.cli.common import (
    COURSE,
    COURSE_HELP,
    CliContext,
    LogSourceChoice,
    friendly_errors,
    pass_ctx,
)


@click.command("sync")
@click.option(
    "--course", "course_id", type=COURSE, default=None, help=COURSE_HELP + " Default: all."
)
@click.option(
    "--source",
    type=LogSourceChoice(),
    default=None,
    help="Log source (default: the site's).",
)
@click.option("--no-roster", is_flag=True, help="Only pull log events.")
@click.option("--no-score", is_flag=True, help="Do not re-score the course after its sync.")
@pass_ctx
@friendly_errors
def sync_command(
    ctx: CliContext, course_id: int | None, source: str | None, no_roster: bool, no_score: bool
) -> None:
    """Pull roster, grades and new log events from Moodle, page by page (resumable), then
    score each synced course on its fresh data, as the scheduler's nightly job does."""
    from sqlalchemy import select

    from lti_app.cli.scheduler import prebuild_pages
    from lti_app.models import Course
    from lti_app.observability import configure_logging
    from lti_app.services.connections import SyncConfigError
    from lti_app.tasks import run_course_sync, score_synced_course

    settings = ctx.settings
    configure_logging("WARNING", settings.app.log_format)
    click.get_current_context().with_resource(prebuild_pages(settings))
    with ctx.session() as session:
        if course_id is None:
            ids = list(session.scalars(select(Course.id).where(Course.sync_enabled)))
        else:
            ids = [course_id]
    if not ids:
        raise click.ClickException("no course to sync: add one with `arche-predict course add`")
    failed = 0
    for cid in ids:
        with click.progressbar(length=1, label=f"course {cid}", show_pos=True) as bar:

            def progress(step: Any, bar: Any = bar) -> None:
                if bar.length == 1 and step.remaining is not None:
                    bar.length = max(step.pages_done, step.pages_done - 1 + step.remaining)
                bar.update(1)

            try:
                outcome = run_course_sync(
                    settings,
                    ctx.session_factory,
                    cid,
                    trigger="cli",
                    source=source,
                    progress=progress,
                    include_roster=not no_roster,
                )
            except SyncConfigError as exc:
                raise click.ClickException(str(exc)) from None
        if outcome.status == "succeeded":
            click.echo(f"course {cid}: {outcome.events_added} new events in {outcome.pages} pages")
            if not no_score:
                scored = score_synced_course(settings, ctx.session_factory, cid)
                click.echo(f"course {cid}: {scored.status}: {scored.message}")
        else:
            failed += 1
            click.echo(f"course {cid}: sync failed: {outcome.error_message}", err=True)
    if failed:
        sys.exit(1)

"""`arche-predict moodle`: the Moodle web-service connection."""

from __future__ import annotations

import sys

import click

from lti_app.cli.common import CliContext, LogSourceChoice, friendly_errors, pass_ctx


@click.group("moodle")
def moodle() -> None:
    """The Moodle connection."""


@moodle.command("check")
@click.option("--site", "site_url", default=None, help="Site URL (default: the only site).")
@click.option("--course", "moodle_course_id", type=int, default=None,
              help="A Moodle course id in which to probe the capabilities.")  # fmt: skip
@click.option("--source", type=LogSourceChoice(), default=None)
@pass_ctx
@friendly_errors
def moodle_check(
    ctx: CliContext, site_url: str | None, moodle_course_id: int | None, source: str | None
) -> None:
    """List the web-service functions and capabilities the token still lacks (exit 1 if any)."""
    from sqlalchemy import select

    from lti_app.crypto import SecretBox
    from lti_app.models import MoodleSite
    from lti_app.services.connections import SyncConfigError, moodle_client_for
    from lti_app.services.sites import normalise_base_url, note_release
    from moodle_client.check import run_check
    from moodle_client.errors import MoodleError

    settings = ctx.settings
    with ctx.session() as session:
        query = select(MoodleSite)
        if site_url:
            query = query.where(MoodleSite.base_url == normalise_base_url(site_url))
        sites = list(session.scalars(query))
        if len(sites) != 1:
            raise click.ClickException(
                "no Moodle site registered: `arche-predict site add`"
                if not sites
                else "several sites: choose one with --site URL"
            )
        site_row = sites[0]
        try:
            client = moodle_client_for(settings, SecretBox.from_settings(settings), site_row)
        except SyncConfigError as exc:
            raise click.ClickException(str(exc)) from None
        log_source = source or site_row.log_source
        site_id = site_row.id
    try:
        report = run_check(client, moodle_course_id, log_source=log_source)
    except MoodleError as exc:
        raise click.ClickException(str(exc)) from None
    with ctx.session() as session:
        row = session.get(MoodleSite, site_id)
        if row is not None:
            note_release(row, report.site.release or report.site.version)
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)

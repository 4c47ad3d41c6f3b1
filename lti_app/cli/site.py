"""`arche-predict site`: the Moodle sites the tool reads from."""

from __future__ import annotations

import sys

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx


@click.group("site")
def site() -> None:
    """Moodle sites the tool reads from."""


@site.command("add")
@click.option("--url", required=True, help="The Moodle site's base URL.")
@click.option("--name", default="", help="A display name, e.g. ARCHE.")
@click.option("--token-stdin", is_flag=True, help="Read the web-service token from standard input.")
@click.option(
    "--no-token",
    is_flag=True,
    help="No web service: the site's data comes from CSV downloads only (log source csv).",
)
@pass_ctx
@friendly_errors
def site_add(ctx: CliContext, url: str, name: str, token_stdin: bool, no_token: bool) -> None:
    """Register a Moodle site and store its web-service token encrypted.

    The token is read from stdin or a hidden prompt, never from an argument, so that it does not
    end up in the shell history or the process list. With --no-token the site has no token and
    reads its logs and grades from Moodle's CSV downloads (`import-logs`, `import-grades`).
    """
    from lti_app.crypto import SecretBox
    from lti_app.services.sites import SiteError, upsert_site

    if no_token and token_stdin:
        raise click.ClickException("--no-token and --token-stdin exclude each other")
    box = SecretBox.from_settings(ctx.settings)
    token: str | None = None
    if not no_token:
        token = sys.stdin.readline() if token_stdin else click.prompt("Token", hide_input=True)
    notes: list[str] = []
    try:
        with ctx.session() as session:
            created = upsert_site(session, box, url, name=name, token=token, notes=notes)
            if no_token:
                created.log_source = "csv"
                how = (
                    "no web-service token: log source csv; import Moodle's downloads with "
                    "`import-logs` and `import-grades`"
                    if created.ws_token_encrypted is None
                    else "its stored token is kept; log source csv"
                )
            else:
                how = "token stored encrypted"
                if created.log_source == "csv":
                    created.log_source = "ws"
                    how += "; log source ws (was csv)"
            click.echo(f"site {created.id}: {created.base_url} ({how})")
            for note in notes:
                click.echo(f"Note: {note}")
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None

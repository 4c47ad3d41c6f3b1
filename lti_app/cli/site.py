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
@pass_ctx
@friendly_errors
def site_add(ctx: CliContext, url: str, name: str, token_stdin: bool) -> None:
    """Register a Moodle site and store its web-service token encrypted.

    The token is read from stdin or a hidden prompt, never from an argument, so that it does not
    end up in the shell history or the process list.
    """
    from lti_app.crypto import SecretBox
    from lti_app.services.sites import SiteError, upsert_site

    box = SecretBox.from_settings(ctx.settings)
    token = sys.stdin.readline() if token_stdin else click.prompt("Token", hide_input=True)
    try:
        with ctx.session() as session:
            created = upsert_site(session, box, url, name=name, token=token)
            click.echo(f"site {created.id}: {created.base_url} (token stored encrypted)")
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None

"""`arche-predict keys`: the tool's RSA signing keys."""

from __future__ import annotations

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx


@click.group("keys")
def keys() -> None:
    """The tool's RSA signing keys (published at /lti/jwks)."""


@keys.command("rotate")
@pass_ctx
@friendly_errors
def keys_rotate(ctx: CliContext) -> None:
    """Create a new signing key; the previous one stays published for lti.key_overlap_days."""
    from lti_app.crypto import SecretBox
    from lti_app.services import audit
    from lti_app.services.lti_keys import rotate_key

    box = SecretBox.from_settings(ctx.settings)
    with ctx.session() as session:
        key = rotate_key(session, box)
        audit.record(session, "keys.rotate", "accepted", None, details={"kid": key.kid})
        click.echo(f"new current key {key.kid} (private part stored encrypted)")


@keys.command("list")
@pass_ctx
@friendly_errors
def keys_list(ctx: CliContext) -> None:
    """List the keys, newest first, with their state."""
    from sqlalchemy import select

    from lti_app.models import ToolKey

    with ctx.session() as session:
        for key in session.scalars(select(ToolKey).order_by(ToolKey.id.desc())):
            state = f"retired {key.retired_at:%Y-%m-%d %H:%M}" if key.retired_at else "current"
            click.echo(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M}  {state}")

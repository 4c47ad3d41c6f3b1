"""`arche-predict lti`: LTI 1.3 registrations and the values a platform needs."""

from __future__ import annotations

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx


@click.group("lti")
def lti() -> None:
    """LTI 1.3 registrations (Moodle platforms) and the values Moodle needs."""


@lti.command("add-platform")
@click.option("--issuer", required=True, help="Moodle's Platform ID (its wwwroot URL).")
@click.option("--client-id", required=True, help="Moodle's Client ID for this tool.")
@click.option("--deployment-id", "deployment_ids", multiple=True, required=True, help="Repeatable.")
@click.option("--name", default="", help="A display name, e.g. ARCHE.")
@click.option("--auth-login-url", default=None, help="Default: ISSUER/mod/lti/auth.php")
@click.option("--auth-token-url", default=None, help="Default: ISSUER/mod/lti/token.php")
@click.option("--key-set-url", default=None, help="Default: ISSUER/mod/lti/certs.php")
@click.option("--site-url", default=None, help="The Moodle site the courses belong to (ISSUER).")
@pass_ctx
@friendly_errors
def lti_add_platform(
    ctx: CliContext,
    issuer: str,
    client_id: str,
    deployment_ids: tuple[str, ...],
    name: str,
    auth_login_url: str | None,
    auth_token_url: str | None,
    key_set_url: str | None,
    site_url: str | None,
) -> None:
    """Register a Moodle platform and its deployments (idempotent; rerun to add one)."""
    from lti_app.crypto import SecretBox
    from lti_app.services import audit
    from lti_app.services.lti_keys import ensure_key
    from lti_app.services.lti_registry import RegistryError, add_platform
    from lti_app.services.sites import SiteError

    box = SecretBox.from_settings(ctx.settings)
    notes: list[str] = []
    try:
        with ctx.session() as session:
            platform = add_platform(
                session,
                box,
                issuer=issuer,
                client_id=client_id,
                deployment_ids=deployment_ids,
                auth_login_url=auth_login_url,
                auth_token_url=auth_token_url,
                key_set_url=key_set_url,
                name=name,
                site_url=site_url,
                notes=notes,
            )
            key = ensure_key(session, box)
            audit.record(
                session,
                "lti.add_platform",
                "accepted",
                None,
                platform_id=platform.id,
                details={"issuer": platform.issuer, "client_id": platform.client_id},
            )
            deps = ", ".join(d.deployment_id for d in platform.deployments)
            click.echo(
                f"platform {platform.id}: {platform.issuer} client {platform.client_id} "
                f"deployments [{deps}]; tool key {key.kid}"
            )
            for note in notes:
                click.echo(f"Note: {note}")
    except (RegistryError, SiteError) as exc:
        raise click.ClickException(str(exc)) from None


@lti.command("list-platforms")
@pass_ctx
@friendly_errors
def lti_list_platforms(ctx: CliContext) -> None:
    """List the registered platforms with their ids, state and deployments."""
    from sqlalchemy import select

    from lti_app.models import LtiPlatform

    with ctx.session() as session:
        platforms = list(session.scalars(select(LtiPlatform).order_by(LtiPlatform.id)))
        if not platforms:
            click.echo("no platform registered: `lti registration-url` or `lti add-platform`")
        for p in platforms:
            deps = ",".join(d.deployment_id for d in p.deployments) or "-"
            state = "active" if p.active else "disabled"
            click.echo(
                f"{p.id:>4}  {state:8} {p.name!r} {p.issuer} client {p.client_id} "
                f"deployments [{deps}]"
            )


@lti.command("disable-platform")
@click.argument("platform_id", type=int)
@pass_ctx
@friendly_errors
def lti_disable_platform(ctx: CliContext, platform_id: int) -> None:
    """Refuse a platform's launches from now on and end its launch sessions (its courses and
    data stay; `lti add-platform` with its issuer and client id enables it again)."""
    from lti_app.services import audit
    from lti_app.services.lti_registry import RegistryError, disable_platform, platform_or_error

    try:
        with ctx.session() as session:
            platform = platform_or_error(session, platform_id)
            if not platform.active:
                click.echo(f"platform {platform.id} ({platform.issuer}) is already disabled")
                return
            ended = disable_platform(session, platform)
            audit.record(
                session,
                "lti.disable_platform",
                "accepted",
                None,
                platform_id=platform.id,
                details={"issuer": platform.issuer, "client_id": platform.client_id},
            )
            click.echo(
                f"platform {platform.id} ({platform.issuer}, client {platform.client_id}) "
                f"disabled; {ended} launch session(s) ended"
            )
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None


@lti.command("remove-platform")
@click.argument("platform_id", type=int)
@click.option("--yes", is_flag=True, help="Confirm the removal (nothing is removed without it).")
@pass_ctx
@friendly_errors
def lti_remove_platform(ctx: CliContext, platform_id: int, yes: bool) -> None:
    """Delete a platform's registration, deployments and launch sessions (needs --yes).

    Courses, people, their data and the audit trail stay; launches from that platform are
    refused until it is registered again (its client id then changes in Moodle)."""
    from lti_app.services import audit
    from lti_app.services.lti_registry import (
        RegistryError,
        platform_or_error,
        platform_use,
        remove_platform,
    )

    try:
        with ctx.session() as session:
            platform = platform_or_error(session, platform_id)
            use = platform_use(session, platform)
            what = (
                f"platform {platform.id} ({platform.issuer}, client {platform.client_id}): "
                f"{use.deployments} deployment(s), {use.live_sessions} live launch session(s); "
                f"{use.people} people keep their data but lose their link to it"
            )
            if not yes:
                raise click.ClickException(
                    f"this would remove {what}. Rerun with --yes to remove it, or use "
                    "`lti disable-platform` to refuse its launches and keep the registration"
                )
            details = {"issuer": platform.issuer, "client_id": platform.client_id}
            remove_platform(session, platform)
            audit.record(session, "lti.remove_platform", "accepted", None, details=details)
            click.echo(f"removed {what}")
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None


@lti.command("registration-url")
@click.option("--hours", type=click.IntRange(1, 168), default=24, show_default=True)
@click.option("--public-url", default=None, help="Overrides app.public_url.")
@pass_ctx
@friendly_errors
def lti_registration_url(ctx: CliContext, hours: int, public_url: str | None) -> None:
    """Print a single-use URL for Moodle's dynamic registration ("Tool URL" in Manage tools)."""
    from lti_app.services.lti_dynreg import issue_code

    settings = ctx.settings
    settings.require_secrets()
    base = (public_url or settings.app.public_url).rstrip("/")
    if not base:
        raise click.ClickException("set app.public_url (or pass --public-url) first")
    with ctx.session() as session:
        code = issue_code(session, settings.app.secret_key, ttl_seconds=hours * 3600)
    click.echo(f"{base}/lti/register?code={code}")
    click.echo(f"(valid {hours} h, once)", err=True)


@lti.command("course-param")
@click.option("--platform", "platform_id", type=int, required=True, help="The platform's id.")
@click.option("--context", "context_id", required=True, help="The platform's context id.")
@click.option("--course", "moodle_course_id", type=click.IntRange(1), required=True)
@pass_ctx
@friendly_errors
def lti_course_param(
    ctx: CliContext, platform_id: int, context_id: str, moodle_course_id: int
) -> None:
    """Print the signed `arche_course=...` custom parameter for a platform that is not Moodle.

    Launches are placed by the platform's signed context; Moodle's context id is the course id,
    so Moodle needs none of this. Another platform's context must be bound to a Moodle course
    by an administrator: paste the printed line into the link's custom parameters. It is valid
    for that context only, and the tool never trusts an unsigned course id."""
    from lti_app.models import LtiPlatform
    from lti_app.services.lti_linking import COURSE_PARAM, sign_course_param

    settings = ctx.settings
    settings.require_secrets()
    with ctx.session() as session:
        platform = session.get(LtiPlatform, platform_id)
        if platform is None:
            raise click.ClickException(f"no platform {platform_id} (see `lti tool-config`)")
        issuer = platform.issuer
    value = sign_course_param(settings.app.secret_key, issuer, context_id, moodle_course_id)
    click.echo(f"{COURSE_PARAM}={value}")


@lti.command("purge")
@pass_ctx
@friendly_errors
def lti_purge(ctx: CliContext) -> None:
    """Delete expired launch sessions, login states and nonces (safe at any time)."""
    from lti_app.services.lti_sessions import purge_expired_sessions
    from lti_app.services.lti_storage import purge_expired

    with ctx.session() as session:
        values = purge_expired(session)
        sessions = purge_expired_sessions(session)
    click.echo(f"purged {sessions} expired sessions and {values} expired launch values")


@lti.command("tool-config")
@click.option("--public-url", default=None, help="Overrides app.public_url.")
@pass_ctx
@friendly_errors
def lti_tool_config(ctx: CliContext, public_url: str | None) -> None:
    """Print the values for Moodle's "Configure a tool manually" form."""
    base = (public_url or ctx.settings.app.public_url).rstrip("/")
    if not base:
        raise click.ClickException("set app.public_url (or pass --public-url) first")
    click.echo(f"Tool URL:            {base}/lti/launch")
    click.echo("LTI version:         LTI 1.3")
    click.echo("Public key type:     Keyset URL")
    click.echo(f"Public keyset:       {base}/lti/jwks")
    click.echo(f"Initiate login URL:  {base}/lti/login")
    click.echo(f"Redirection URI(s):  {base}/lti/launch")
    click.echo("Deep Linking:        supported (Content Selection URL: the Tool URL)")

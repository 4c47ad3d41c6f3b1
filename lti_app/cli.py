"""The `arche-predict` command line: database, configuration, Moodle sites, and the server.

Every command loads `Settings` once (from `--config` or $ARCHE_PREDICT_CONFIG) and calls the
same services as the web app. Expected failures (bad config, unreachable database) print one
line starting with ``error:`` and exit non-zero; they never print a traceback.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from lti_app import log_sources, migrate
from lti_app.config import ConfigError, Settings, load_settings
from lti_app.crypto import SecretBox, SecretError, generate_key
from lti_app.db import make_engine, make_session_factory, private_instance, session_scope
from lti_app.observability import configure_logging, redact

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "config.example.toml"


class CliContext:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings


def friendly_errors(fn: F) -> F:
    """Turn the errors an operator can fix into one clear line and a non-zero exit."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from None
        except SecretError as exc:
            raise click.ClickException(str(exc)) from None
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise click.ClickException(f"database unreachable: {redact(reason)}") from None
        except SQLAlchemyError as exc:
            raise click.ClickException(f"database error: {exc.__class__.__name__}") from None

    return wrapper  # type: ignore[return-value]


pass_ctx = click.make_pass_decorator(CliContext)


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (default: $ARCHE_PREDICT_CONFIG, else built-in defaults).",
)
@click.version_option(package_name="arche-predict")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """arche-predict: learning analytics for Moodle, as an LTI 1.3 tool."""
    ctx.obj = CliContext(config_path)


# ----------------------------------------------------------------------------- db


@main.group()
def db() -> None:
    """Database schema (Alembic migrations)."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_ctx
@friendly_errors
def db_upgrade(ctx: CliContext, revision: str) -> None:
    """Migrate the database to the code's schema (idempotent)."""
    engine = make_engine(ctx.settings.database_url)
    migrate.upgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine)}")


@db.command("downgrade")
@click.argument("revision")
@pass_ctx
@friendly_errors
def db_downgrade(ctx: CliContext, revision: str) -> None:
    """Step the schema back to REVISION (use `base` to drop everything)."""
    engine = make_engine(ctx.settings.database_url)
    migrate.downgrade(engine, revision)
    click.echo(f"database at revision {migrate.current_revision(engine)}")


@db.command("current")
@pass_ctx
@friendly_errors
def db_current(ctx: CliContext) -> None:
    """Print the database's revision and the code's head."""
    engine = make_engine(ctx.settings.database_url)
    current = migrate.current_revision(engine)
    head = migrate.head_revision()
    click.echo(f"current: {current or '(empty database)'}\nhead:    {head}")
    if current != head:
        sys.exit(1)


# ----------------------------------------------------------------------------- config


@main.group("config")
def config_group() -> None:
    """Configuration files and secrets."""


@config_group.command("check")
@pass_ctx
@friendly_errors
def config_check(ctx: CliContext) -> None:
    """Validate the configuration and print it, with secrets masked."""
    settings = ctx.settings
    click.echo(f"# source: {settings.source}")
    for section, values in redact(settings.model_dump()).items():
        click.echo(f"[{section}]")
        for key, value in values.items():
            click.echo(f"{key} = {value!r}")
    if settings.security.encryption_key:
        SecretBox.from_settings(settings)  # validates the key format too


@config_group.command("generate-key")
def config_generate_key() -> None:
    """Print a fresh encryption key for security.encryption_key."""
    click.echo(generate_key())


@config_group.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--demo", is_flag=True, help="A demo config: simulated Moodle and LTI platform.")
def config_init(path: Path, force: bool, demo: bool) -> None:
    """Write a config file from the documented example, with fresh secrets filled in."""
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('secret_key = ""', f'secret_key = "{secrets.token_urlsafe(48)}"', 1)
    text = text.replace('encryption_key = ""', f'encryption_key = "{generate_key()}"', 1)
    if demo:
        text = text.replace("\nenabled = false\n", "\nenabled = true\n", 1)
        text = text.replace('public_url = ""', 'public_url = "http://127.0.0.1:8000"', 1)
        text = text.replace('log_format = "json"', 'log_format = "console"', 1)
        # Quicker model reports, so the demo is ready within a few minutes on a laptop.
        text = text.replace("bootstrap_samples = 1000", "bootstrap_samples = 300", 1)
        text = text.replace("permutation_repeats = 30", "permutation_repeats = 10", 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    load_settings(path, environ={})  # the written file must load
    click.echo(f"wrote {path} (mode 600): keep it secret, it holds the encryption key")


# ----------------------------------------------------------------------------- moodle sites


@main.group()
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
    from lti_app.services.sites import SiteError, upsert_site

    settings = ctx.settings
    box = SecretBox.from_settings(settings)
    token = sys.stdin.readline() if token_stdin else click.prompt("Token", hide_input=True)
    factory = make_session_factory(make_engine(settings.database_url))
    try:
        with session_scope(factory) as session:
            created = upsert_site(session, box, url, name=name, token=token)
            click.echo(f"site {created.id}: {created.base_url} (token stored encrypted)")
    except SiteError as exc:
        raise click.ClickException(str(exc)) from None


# ----------------------------------------------------------------------------- courses


@main.group()
def course() -> None:
    """Courses (Moodle course offerings) and their past offerings."""


@course.command("add")
@click.option("--site", "site_url", required=True, help="Base URL of a registered Moodle site.")
@click.option("--moodle-id", type=int, required=True, help="The course id in Moodle.")
@click.option("--name", default="", help="Short name, until the first sync fills it in.")
@click.option("--past", "past", type=int, multiple=True, help="Id of a past offering (repeat).")
@pass_ctx
@friendly_errors
def course_add(
    ctx: CliContext, site_url: str, moodle_id: int, name: str, past: tuple[int, ...]
) -> None:
    """Link a Moodle course to the tool (LTI launches do this automatically)."""
    from lti_app.services.courses import CourseError, add_course

    factory = make_session_factory(make_engine(ctx.settings.database_url))
    try:
        with session_scope(factory) as session:
            added = add_course(session, site_url, moodle_id, shortname=name, past=past)
            click.echo(f"course {added.id}: Moodle course {added.moodle_course_id} on site")
    except CourseError as exc:
        raise click.ClickException(str(exc)) from None


@course.command("list")
@pass_ctx
@friendly_errors
def course_list(ctx: CliContext) -> None:
    """List courses with their Moodle ids, past offerings and last sync."""
    from lti_app.services.courses import course_overview

    factory = make_session_factory(make_engine(ctx.settings.database_url))
    with session_scope(factory) as session:
        rows = course_overview(session)
    if not rows:
        click.echo("no course yet: `arche-predict course add` or launch the tool from Moodle")
    for row in rows:
        click.echo(
            f"{row.id:>5}  moodle:{row.moodle_course_id:<6} {row.shortname:20} "
            f"past:{','.join(map(str, row.past)) or '-':10} last sync: {row.last_sync}"
        )


# ----------------------------------------------------------------------------- sync


@main.command("sync")
@click.option("--course", "course_id", type=int, default=None, help="Course id (default: all).")
@click.option(
    "--source",
    type=click.Choice(log_sources.names()),
    default=None,
    help="Log source (default: the site's).",
)
@click.option("--no-roster", is_flag=True, help="Only pull log events.")
@pass_ctx
@friendly_errors
def sync_command(
    ctx: CliContext, course_id: int | None, source: str | None, no_roster: bool
) -> None:
    """Pull roster, grades and new log events from Moodle, page by page (resumable)."""
    from sqlalchemy import select

    from lti_app.models import Course
    from lti_app.services.connections import SyncConfigError
    from lti_app.tasks import run_course_sync

    settings = ctx.settings
    configure_logging("WARNING", settings.app.log_format)
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
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
                    factory,
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
        else:
            failed += 1
            click.echo(f"course {cid}: sync failed: {outcome.error_message}", err=True)
    if failed:
        sys.exit(1)


# ----------------------------------------------------------------------------- LTI


@main.group()
def keys() -> None:
    """The tool's RSA signing keys (published at /lti/jwks)."""


@keys.command("rotate")
@pass_ctx
@friendly_errors
def keys_rotate(ctx: CliContext) -> None:
    """Create a new signing key; the previous one stays published for lti.key_overlap_days."""
    from lti_app.services import audit
    from lti_app.services.lti_keys import rotate_key

    settings = ctx.settings
    box = SecretBox.from_settings(settings)
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
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

    factory = make_session_factory(make_engine(ctx.settings.database_url))
    with session_scope(factory) as session:
        for key in session.scalars(select(ToolKey).order_by(ToolKey.id.desc())):
            state = f"retired {key.retired_at:%Y-%m-%d %H:%M}" if key.retired_at else "current"
            click.echo(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M}  {state}")


@main.group()
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
    from lti_app.services import audit
    from lti_app.services.lti_keys import ensure_key
    from lti_app.services.lti_registry import RegistryError, add_platform
    from lti_app.services.sites import SiteError

    settings = ctx.settings
    box = SecretBox.from_settings(settings)
    factory = make_session_factory(make_engine(settings.database_url))
    try:
        with session_scope(factory) as session:
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
    except (RegistryError, SiteError) as exc:
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
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
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
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
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

    factory = make_session_factory(make_engine(ctx.settings.database_url))
    with session_scope(factory) as session:
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


# ----------------------------------------------------------------------------- file imports


def _course_or_fail(session: Any, course_id: int) -> Any:
    from lti_app.models import Course

    course = session.get(Course, course_id)
    if course is None:
        raise click.ClickException(
            f"no course with id {course_id}; see `arche-predict course list`"
        )
    return course


@main.command("import-logs")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--course", "course_id", type=int, required=True, help="Course id (course list).")
@click.option("--timezone", default=None, help="Time zone of the download (default: config).")
@click.option("--encoding", default=None, help="File encoding (default: detected).")
@pass_ctx
@friendly_errors
def import_logs(
    ctx: CliContext, file: Path, course_id: int, timezone: str | None, encoding: str | None
) -> None:
    """Import Moodle's log-report download (CSV, English or French). Re-importing adds nothing."""
    from lti_app.services.imports import import_log_file
    from moodle_client.csvfiles import CsvImportError

    settings = ctx.settings
    factory = make_session_factory(make_engine(settings.database_url))
    try:
        with session_scope(factory) as session:
            course = _course_or_fail(session, course_id)
            result = import_log_file(
                session,
                course,
                file,
                timezone=timezone or settings.moodle.timezone,
                encoding=encoding,
            )
    except CsvImportError as exc:
        raise click.ClickException(f"{file}: {exc} (nothing was imported)") from None
    except ValueError as exc:
        raise click.ClickException(f"{file}: {exc} (nothing was imported)") from None
    click.echo(
        f"{file.name}: {result.rows} events read ({result.layout} headers), {result.added} new, "
        f"{result.duplicates} already stored"
        + (
            f"; {result.unknown_event_rows} of an unrecognised kind"
            if result.unknown_event_rows
            else ""
        )
    )


@main.command("import-grades")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--course", "course_id", type=int, required=True, help="Course id (course list).")
@click.option("--grade-max", type=float, default=None, help="Maximum of the course total.")
@click.option("--encoding", default=None, help="File encoding (default: detected).")
@pass_ctx
@friendly_errors
def import_grades(
    ctx: CliContext, file: Path, course_id: int, grade_max: float | None, encoding: str | None
) -> None:
    """Import a Moodle gradebook export (CSV) with its course-total column."""
    from lti_app.services.imports import import_grade_file
    from moodle_client.csvfiles import CsvImportError

    factory = make_session_factory(make_engine(ctx.settings.database_url))
    try:
        with session_scope(factory) as session:
            course = _course_or_fail(session, course_id)
            result = import_grade_file(
                session, course, file, encoding=encoding, grade_max=grade_max
            )
    except CsvImportError as exc:
        raise click.ClickException(f"{file}: {exc} (nothing was imported)") from None
    click.echo(
        f"{file.name}: {result.rows} students, course total from '{result.column}'; "
        f"{result.matched} matched to known people, {result.created} added"
    )


# ----------------------------------------------------------------------------- moodle


@main.group()
def moodle() -> None:
    """The Moodle connection."""


@moodle.command("check")
@click.option("--site", "site_url", default=None, help="Site URL (default: the only site).")
@click.option("--course", "moodle_course_id", type=int, default=None,
              help="A Moodle course id in which to probe the capabilities.")  # fmt: skip
@click.option("--source", type=click.Choice(log_sources.names()), default=None)
@pass_ctx
@friendly_errors
def moodle_check(
    ctx: CliContext, site_url: str | None, moodle_course_id: int | None, source: str | None
) -> None:
    """List the web-service functions and capabilities the token still lacks (exit 1 if any)."""
    from sqlalchemy import select

    from lti_app.models import MoodleSite
    from lti_app.services.connections import SyncConfigError, moodle_client_for
    from lti_app.services.sites import normalise_base_url
    from moodle_client.check import run_check
    from moodle_client.errors import MoodleError

    settings = ctx.settings
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
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
    try:
        report = run_check(client, moodle_course_id, log_source=log_source)
    except MoodleError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        sys.exit(1)


# ----------------------------------------------------------------------------- models


def _score(ctx: CliContext, course_id: int, label: str) -> Any:
    from lti_app.services.course_data import CourseDataError
    from lti_app.services.scoring import score_course

    settings = ctx.settings
    factory = make_session_factory(make_engine(settings.database_url))
    try:
        with (
            click.progressbar(length=100, label=label, file=sys.stderr) as bar,
            session_scope(factory) as session,
        ):

            def step(name: str, fraction: float) -> None:
                bar.label = f"{label}: {name}"
                bar.update(max(0, round(fraction * 100) - bar.pos))

            outcome = score_course(
                session,
                _course_or_fail(session, course_id),
                settings=settings.ml,
                model_root=settings.model_root,
                on_progress=step,
            )
            bar.update(100 - bar.pos)
    except CourseDataError as exc:
        raise click.ClickException(str(exc)) from None
    return outcome


@main.command()
@click.option("--course", "course_id", type=int, required=True, help="Course id (course list).")
@pass_ctx
@friendly_errors
def train(ctx: CliContext, course_id: int) -> None:
    """Train (or reuse) the course's models on its past offerings, at today's point of the term."""
    outcome = _score(ctx, course_id, f"training course {course_id}")
    click.echo(f"course {course_id}: {outcome.status} ({outcome.message})")
    click.echo(f"progress through the term: {outcome.progress:.0%}")
    if outcome.regression_model_id is not None:
        reused = "reused (same training data)" if outcome.reused_model else "trained"
        click.echo(
            f"model versions {outcome.regression_model_id} (grade) and "
            f"{outcome.classification_model_id} (pass) {reused}; "
            "`arche-predict evaluate --model ID` prints their report"
        )


@main.command()
@click.option("--course", "course_id", type=int, required=True, help="Course id (course list).")
@click.option("--csv", "as_csv", is_flag=True, help="Write the predictions as CSV on stdout.")
@pass_ctx
@friendly_errors
def predict(ctx: CliContext, course_id: int, as_csv: bool) -> None:
    """Predict every current student of the course (batch), storing the predictions."""
    from sqlalchemy import select

    from lti_app.models import Person, Prediction
    from lti_app.services.exports import SafeCsvWriter

    outcome = _score(ctx, course_id, f"predicting course {course_id}")
    factory = make_session_factory(make_engine(ctx.settings.database_url))
    with session_scope(factory) as session:
        rows = session.execute(
            select(Person.fullname, Person.moodle_user_id, Prediction)
            .join(Prediction, Prediction.person_id == Person.id)
            .where(Prediction.course_id == course_id, Prediction.as_of == outcome.as_of)
            .order_by(Prediction.pass_probability.asc().nulls_last(), Person.fullname)
        ).all()

    def fmt(value: float | None, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    header = ["moodle_user_id", "name", "grade", "grade_low", "grade_high", "p_pass", "p_low",
              "p_high", "predicted_pass"]  # fmt: skip
    if as_csv:
        # Names neutralised against formula injection; numbers written as numbers.
        writer = SafeCsvWriter(sys.stdout)
        writer.writerow(header)
        for name, uid, p in rows:
            writer.writerow([uid, name, p.predicted_grade, p.grade_lower, p.grade_upper,
                             p.pass_probability, p.probability_lower, p.probability_upper,
                             p.predicted_pass])  # fmt: skip
        return
    click.echo(f"course {course_id}: {outcome.status} ({outcome.message}); {len(rows)} students")
    for name, uid, p in rows:
        click.echo(
            f"{uid!s:>8}  {name[:28]:28}  grade {fmt(p.predicted_grade, '{:5.1f}')} "
            f"[{fmt(p.grade_lower, '{:.1f}')}, {fmt(p.grade_upper, '{:.1f}')}]  "
            f"P(pass) {fmt(p.pass_probability, '{:.0%}')} "
            f"[{fmt(p.probability_lower, '{:.0%}')}, {fmt(p.probability_upper, '{:.0%}')}]"
        )


def _model_version(session: Any, ref: str) -> Any:
    from sqlalchemy import select

    from lti_app.models import ModelVersion

    query = select(ModelVersion).where(
        ModelVersion.id == int(ref) if ref.isdigit() else ModelVersion.version == ref
    )
    version = session.scalar(query)
    if version is None:
        raise click.ClickException(f"no model version {ref}")
    return version


@main.command()
@click.option("--model", "ref", required=True, help="Model version id or name.")
@pass_ctx
@friendly_errors
def evaluate(ctx: CliContext, ref: str) -> None:
    """Print a model version's validated report: metrics with CIs, baseline and gate."""
    import json

    factory = make_session_factory(make_engine(ctx.settings.database_url))
    with session_scope(factory) as session:
        version = _model_version(session, ref)
        click.echo(f"model {version.version}: {version.task}, {version.estimator}")
        click.echo(
            f"trained {version.trained_at:%Y-%m-%d %H:%M} UTC on data {version.data_hash[:12]}"
        )
        click.echo(
            "quality gate: PASSED"
            if version.gate_passed
            else f"quality gate: FAILED ({version.gate_reason})"
        )
        click.echo(json.dumps(version.metrics, indent=2, sort_keys=True))


@main.command("export-onnx")
@click.option("--model", "ref", required=True, help="Model version id or name.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@pass_ctx
@friendly_errors
def export_onnx_command(ctx: CliContext, ref: str, out: Path) -> None:
    """Write the version's regressor and classifier as ONNX files into OUT."""
    from lti_app.services.scoring import ModelStoreError, load_model
    from ml.registry import export_onnx

    factory = make_session_factory(make_engine(ctx.settings.database_url))
    with session_scope(factory) as session:
        version = _model_version(session, ref)
        try:
            bundle = load_model(ctx.settings.model_root, version)
        except ModelStoreError as exc:
            raise click.ClickException(str(exc)) from None
    for kind, path in export_onnx(bundle, out).items():
        click.echo(f"{kind}: {path}")


# ----------------------------------------------------------------------------- demo


@main.command()
@click.option("--no-serve", is_flag=True, help="Prepare everything, print the URLs, then exit.")
@pass_ctx
@friendly_errors
def demo(ctx: CliContext, no_serve: bool) -> None:
    """Run the whole pipeline on a simulated Moodle and serve it with a development platform.

    Only with a demo configuration (`demo.enabled = true`, see `config init --demo`).
    """
    import subprocess

    from lti_app.demo import prepare

    settings = ctx.settings
    settings.require_secrets()
    configure_logging("WARNING", "console")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the demo servers' request lines
    private_instance(settings.instance_dir.resolve())
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    click.echo("simulating a Moodle course, syncing it over web services, training…")
    setup = prepare(settings, make_session_factory(engine))
    click.echo(f"simulated Moodle web service: {setup.moodle_url}")
    click.echo(f"predictions: {setup.scoring.status} ({setup.scoring.message})")
    click.echo(
        f'\n  Open {setup.platform_url}/  and press "Launch as teacher" or "Launch as learner".\n'
    )
    if no_serve:
        return
    scheduler = subprocess.Popen(  # noqa: S603 - our own CLI, same interpreter
        [sys.executable, "-m", "lti_app.cli", "--config", settings.source, "scheduler"]
    )
    try:
        from lti_app.wsgi import GunicornApp

        bind = f"{settings.app.host}:{settings.app.port}"
        GunicornApp(settings, bind=bind, workers=settings.app.workers).run()
    finally:
        scheduler.terminate()
        setup.platform.stop()
        setup.moodle.stop()


# ----------------------------------------------------------------------------- serve


@main.command()
@click.option("--host", default=None, help="Overrides app.host.")
@click.option("--port", type=int, default=None, help="Overrides app.port.")
@click.option("--workers", type=int, default=None, help="Overrides app.workers.")
@pass_ctx
@friendly_errors
def serve(ctx: CliContext, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the web app with gunicorn (production WSGI server)."""
    from lti_app.wsgi import GunicornApp

    settings = ctx.settings
    settings.require_secrets()
    private_instance(settings.instance_dir.resolve())  # before gunicorn writes its metric files
    bind = f"{host or settings.app.host}:{port or settings.app.port}"
    click.echo(f"serving on http://{bind}/ with {workers or settings.app.workers} workers")
    GunicornApp(settings, bind=bind, workers=workers or settings.app.workers).run()


# ----------------------------------------------------------------------------- scheduler


@main.command()
@click.option("--once", "once", metavar="JOB", default=None, help="Run JOB now, then exit.")
@click.option("--list", "list_jobs", is_flag=True, help="List the declared jobs and exit.")
@pass_ctx
@friendly_errors
def scheduler(ctx: CliContext, once: str | None, list_jobs: bool) -> None:
    """Run the periodic jobs (nightly sync and scoring) in this process.

    Several scheduler processes may run at once: every course is claimed in the database
    before it is processed, so each is processed exactly once per slot.
    """
    from lti_app.scheduler import JobContext, build_scheduler, default_jobs, nightly_slot, run_job
    from lti_app.services.locks import holder_id

    settings = ctx.settings
    configure_logging(settings.app.log_level, settings.app.log_format)
    # APScheduler logs every run of the 5-second "Sync now" poll at INFO; our jobs log what
    # they do themselves.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    jobs = {job.name: job for job in default_jobs()}
    if list_jobs:
        for job in jobs.values():
            when = (
                f"nightly at {settings.scheduler.nightly_at}"
                if job.schedule == "nightly"
                else (f"every {job.interval}")
            )
            click.echo(f"{job.name:20} {when:22} {job.description}")
        return
    private_instance(settings.instance_dir.resolve())  # training writes models there
    factory = make_session_factory(make_engine(settings.database_url))
    if once is not None:
        if once not in jobs:
            raise click.ClickException(f"unknown job '{once}'; known: {', '.join(jobs)}")
        report = run_job(
            jobs[once], JobContext(settings, factory, holder_id(), nightly_slot(settings))
        )
        click.echo(
            f"{report.job} slot {report.slot}: processed {report.processed}, "
            f"skipped (claimed elsewhere) {report.skipped}, failed {sorted(report.failed)}"
        )
        if report.failed:
            sys.exit(1)
        return
    if not settings.scheduler.enabled:
        raise click.ClickException("scheduler.enabled is false in the configuration")
    click.echo(f"scheduler started: {', '.join(jobs)}")
    build_scheduler(settings, factory, list(jobs.values())).start()


if __name__ == "__main__":  # pragma: no cover
    main()

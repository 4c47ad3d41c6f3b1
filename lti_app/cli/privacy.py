"""`arche-predict privacy`: a person's data exported as JSON, or erased (#18, item 3); the access
log of who viewed whose prediction (#18, item 5)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lti_app.models import Person

PERSON_OPTIONS = (
    click.option("--person", "person_id", type=int, default=None, help="The tool's person id."),
    click.option(
        "--moodle-user", "moodle_user_id", type=int, default=None, help="A Moodle user id."
    ),
    click.option(
        "--site", "site_url", default=None, help="The Moodle site, with --moodle-user on several."
    ),
)


def _person_options(fn: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(PERSON_OPTIONS):
        fn = option(fn)
    return fn


@click.group()
def privacy() -> None:
    """A person's data: export it, erase it; read the access log."""


def _find(
    session: Session, person_id: int | None, moodle_user_id: int | None, site_url: str | None
) -> Person:
    from sqlalchemy import select

    from lti_app.models import MoodleSite
    from lti_app.services.privacy import PrivacyError, find_person
    from lti_app.services.sites import normalise_base_url

    site_id = None
    if site_url:
        site_id = session.scalar(
            select(MoodleSite.id).where(MoodleSite.base_url == normalise_base_url(site_url))
        )
        if site_id is None:
            raise click.ClickException(f"no Moodle site {site_url}")
    try:
        return find_person(
            session,
            person_id=person_id,
            moodle_user_id=moodle_user_id,
            site_id=site_id,
        )
    except PrivacyError as exc:
        raise click.ClickException(str(exc)) from None


@privacy.command("export")
@_person_options
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the JSON here (default: standard output).",
)
@pass_ctx
@friendly_errors
def export_command(
    ctx: CliContext,
    person_id: int | None,
    moodle_user_id: int | None,
    site_url: str | None,
    out_path: str | None,
) -> None:
    """Everything stored about one person, as JSON (events, grades, features, predictions,
    explanations, contacts, follow-ups, sessions, audit, access log)."""
    from lti_app.services import audit
    from lti_app.services.privacy import export_person, export_text

    with ctx.session() as session:
        person = _find(session, person_id, moodle_user_id, site_url)
        data = export_person(session, person)
        audit.record(
            session,
            "privacy.export",
            "accepted",
            "command line",
            details={"person": data["person"]["id"]},
        )
    text = export_text(data)
    if out_path:
        with open(out_path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        click.echo(f"exported person {data['person']['id']} to {out_path}", err=True)
    else:
        sys.stdout.write(text + "\n")


@privacy.command("erase")
@_person_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@friendly_errors
def erase_command(
    ctx: CliContext,
    person_id: int | None,
    moodle_user_id: int | None,
    site_url: str | None,
    yes: bool,
) -> None:
    """Erase one person: what is about them is deleted, what they did is kept without them,
    model versions that learned from them are marked and retrained at the next scoring."""
    from lti_app.services import audit
    from lti_app.services.privacy import erase_person

    with ctx.session() as session:
        person = _find(session, person_id, moodle_user_id, site_url)
        label = f"person {person.id}"
        if not yes:
            click.confirm(
                f"Erase everything stored about {label}? This cannot be undone", abort=True
            )
        report = erase_person(session, person)
        audit.record(
            session,
            "privacy.erase",
            "accepted",
            "command line",
            details={"deleted": report.deleted, "marked_versions": len(report.marked_versions)},
        )
    # The kept training sets hold past students' features: gone, rebuilt at the next scoring.
    from lti_app.services import training_cache

    training_cache.clear(ctx.settings.model_root)
    deleted = ", ".join(f"{k} {v}" for k, v in sorted(report.deleted.items()) if v)
    click.echo(f"erased {label}: deleted {deleted}")
    unlinked = ", ".join(f"{k} {v}" for k, v in sorted(report.unlinked.items()) if v)
    if unlinked:
        click.echo(f"kept without them: {unlinked}")
    if report.marked_versions:
        click.echo(
            f"{len(report.marked_versions)} model version(s) learned from them: marked, retrained "
            "at the next scoring"
        )


@privacy.command("access-log")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@pass_ctx
@friendly_errors
def access_log_command(ctx: CliContext, limit: int) -> None:
    """Who viewed whose prediction, and when: the newest reads first (tab-separated)."""
    from lti_app.services.access_log import latest

    with ctx.session() as session:
        rows = latest(session, limit)
    click.echo("when\tviewer\tsubject\tcourse\tkind")
    for r in rows:
        click.echo(
            f"{r.at.isoformat(timespec='seconds')}\t{r.viewer or '-'}\t"
            f"{r.subject or ('every student' if r.kind in ('export', 'api_students') else '-')}\t"
            f"{r.course or '-'}\t{r.kind}"
        )

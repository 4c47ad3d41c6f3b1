"""`arche-predict course`: linking Moodle course offerings and their past offerings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lti_app.cli.common import COURSE, COURSE_HELP, CliContext, friendly_errors, pass_ctx

if TYPE_CHECKING:
    from datetime import datetime


@click.group("course")
def course() -> None:
    """Courses (Moodle course offerings) and their past offerings."""


@course.command("add")
@click.option("--site", "site_url", required=True, help="Base URL of a registered Moodle site.")
@click.option("--moodle-id", type=int, required=True, help="The course id in Moodle.")
@click.option("--name", default="", help="Short name, until the first sync fills it in.")
@click.option(
    "--past", "past", type=COURSE, multiple=True, help=f"A past offering (repeat). {COURSE_HELP}"
)
@click.option("--start", default=None, help="Term start, YYYY-MM-DD[THH:MM] in Moodle's zone.")
@click.option("--end", default=None, help="Term end, YYYY-MM-DD[THH:MM] in Moodle's zone.")
@pass_ctx
@friendly_errors
def course_add(
    ctx: CliContext,
    site_url: str,
    moodle_id: int,
    name: str,
    past: tuple[int, ...],
    start: str | None,
    end: str | None,
) -> None:
    """Link a Moodle course to the tool (LTI launches do this automatically).

    A course fed only by CSV imports gets its dates nowhere else: without an end date, its term
    is taken to last as long as its past offerings did.
    """
    from lti_app.services.courses import CourseError, add_course, is_csv_only

    try:
        tz = ctx.settings.moodle.timezone
        with ctx.session() as session:
            added = add_course(
                session,
                site_url,
                moodle_id,
                shortname=name,
                past=past,
                start=_moment(start, tz),
                end=_moment(end, tz),
            )
            click.echo(f"course {added.id}: Moodle course {added.moodle_course_id} on site")
            if is_csv_only(added.site):
                click.echo(
                    "its site has no web-service token (CSV only): the nightly sync leaves this "
                    f"course alone; feed it with `arche-predict import-logs FILE --course "
                    f"{added.id}` and `arche-predict import-grades FILE --course {added.id}`"
                )
    except CourseError as exc:
        raise click.ClickException(str(exc)) from None


def _moment(text: str | None, timezone: str) -> datetime | None:
    from lti_app.services.courses import parse_moment

    return None if text is None else parse_moment(text, timezone)


@course.command("update")
@click.option("--course", "course_id", type=COURSE, required=True, help=COURSE_HELP)
@click.option("--start", default=None, help="Term start, YYYY-MM-DD[THH:MM] in Moodle's zone.")
@click.option("--end", default=None, help="Term end, YYYY-MM-DD[THH:MM] in Moodle's zone.")
@click.option(
    "--past", "past", type=COURSE, multiple=True, help=f"A past offering (repeat). {COURSE_HELP}"
)
@pass_ctx
@friendly_errors
def course_update(
    ctx: CliContext, course_id: int, start: str | None, end: str | None, past: tuple[int, ...]
) -> None:
    """Set a course's term dates or link more past offerings (a sync overwrites the dates with
    Moodle's)."""
    from lti_app.cli.common import course_or_fail
    from lti_app.services.courses import CourseError, link_past_offering, set_course_dates

    try:
        tz = ctx.settings.moodle.timezone
        with ctx.session() as session:
            found = course_or_fail(session, course_id)
            for past_id in past:
                link_past_offering(session, found, past_id)
            set_course_dates(session, found, start=_moment(start, tz), end=_moment(end, tz))
            begins = f"{found.start_at:%Y-%m-%d %H:%M} UTC" if found.start_at else "not set"
            ends = f"{found.end_at:%Y-%m-%d %H:%M} UTC" if found.end_at else "not set"
            click.echo(f"course {found.id}: start {begins}, end {ends}")
    except CourseError as exc:
        raise click.ClickException(str(exc)) from None


@course.command("list")
@pass_ctx
@friendly_errors
def course_list(ctx: CliContext) -> None:
    """List courses with their Moodle ids, past offerings and last sync."""
    from lti_app.services.courses import course_overview

    with ctx.session() as session:
        rows = course_overview(session)
    if not rows:
        click.echo("no course yet: `arche-predict course add` or launch the tool from Moodle")
    for row in rows:
        click.echo(
            f"{row.id:>5}  moodle:{row.moodle_course_id:<6} {row.shortname:20} "
            f"past:{','.join(map(str, row.past)) or '-':10} last sync: {row.last_sync}"
        )

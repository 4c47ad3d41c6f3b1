"""`arche-predict course`: linking Moodle course offerings and their past offerings."""

from __future__ import annotations

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx


@click.group("course")
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

    try:
        with ctx.session() as session:
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

    with ctx.session() as session:
        rows = course_overview(session)
    if not rows:
        click.echo("no course yet: `arche-predict course add` or launch the tool from Moodle")
    for row in rows:
        click.echo(
            f"{row.id:>5}  moodle:{row.moodle_course_id:<6} {row.shortname:20} "
            f"past:{','.join(map(str, row.past)) or '-':10} last sync: {row.last_sync}"
        )

"""`arche-predict import-logs` and `import-grades`: Moodle's own CSV downloads."""

from __future__ import annotations

from pathlib import Path

import click

from lti_app.cli.common import (
    COURSE,
    COURSE_HELP,
    CliContext,
    course_or_fail,
    friendly_errors,
    pass_ctx,
)


@click.command("import-logs")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--course", "course_id", type=COURSE, required=True, help=COURSE_HELP)
@click.option("--timezone", default=None, help="Time zone of the download (default: config).")
@click.option("--encoding", default=None, help="File encoding (default: detected).")
@pass_ctx
@friendly_errors
def import_logs(
    ctx: CliContext, file: Path, course_id: int, timezone: str | None, encoding: str | None
) -> None:
    """Import Moodle's log-report download (CSV, English or French). Re-importing adds nothing."""
    from lti_app.services.course_refs import student_count
    from lti_app.services.imports import import_log_file
    from moodle_client.csvfiles import CsvImportError

    settings = ctx.settings
    try:
        with ctx.session() as session:
            course = course_or_fail(session, course_id)
            result = import_log_file(
                session,
                course,
                file,
                timezone=timezone or settings.moodle.timezone,
                encoding=encoding,
            )
            students = student_count(session, course)
    except CsvImportError as exc:
        raise click.ClickException(f"{file}: {exc} (nothing was imported)") from None
    except ValueError as exc:
        raise click.ClickException(f"{file}: {exc} (nothing was imported)") from None
    click.echo(
        f"{file.name}: {result.rows} events read ({result.layout} headers), {result.added} new, "
        f"{result.duplicates} already stored"
        + (
            f"; {result.unknown_event_rows} of an unrecognised kind (kept, named by the file's "
            "component and event name):"
            if result.unknown_event_rows
            else ""
        )
    )
    for kind in result.unknown_kinds:
        click.echo(f"  {kind.event}: {kind.rows} rows, e.g. line {kind.line}: {kind.description}")
    if students == 0:
        # The download has no roles (teachers act in the log too), so nobody is enrolled from
        # it as a student: the gradebook export lists the students.
        click.echo(
            f"Note: course {course_id} has no students yet: a log download does not say who is "
            "a student. Import the gradebook export (`arche-predict import-grades FILE --course "
            f"{course_id}`), which lists them, or sync the roster from Moodle; until then the "
            "course has nobody to estimate."
        )


@click.command("import-grades")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--course", "course_id", type=COURSE, required=True, help=COURSE_HELP)
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

    try:
        with ctx.session() as session:
            course = course_or_fail(session, course_id)
            result = import_grade_file(
                session, course, file, encoding=encoding, grade_max=grade_max
            )
    except CsvImportError as exc:
        raise click.ClickException(f"{file}: {exc} (nothing was imported)") from None
    click.echo(
        f"{file.name}: {result.rows} students, course total from '{result.column}'; "
        f"{result.matched} matched to known people, {result.created} added"
    )
    if result.namesakes:
        names = ", ".join(result.namesakes)
        click.echo(
            f"Warning: {len(result.namesakes)} name(s) belong to several people of this "
            f"course's log ({names}): their grades were not linked to anyone's events, since "
            "a grade given to the wrong student is worse than none. Run a web-service sync "
            "(Moodle user ids), or give those students distinct names in the export."
        )

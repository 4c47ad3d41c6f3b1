"""CSV-only use and course references (#15 B): `site add --no-token`, and `--course` taking the
tool's id, the Moodle course id or the short name (ambiguous numbers refused with what to
type)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app import migrate
from lti_app.cli import main
from lti_app.config import Settings
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.models import Course, MoodleSite
from lti_app.services.course_refs import CourseRefError, resolve_course


def _courses(session: Session) -> dict[str, Course]:
    site = MoodleSite(base_url="https://moodle.example")
    session.add(site)
    session.flush()
    made = {}
    for shortname, moodle_id in (("ALGO101", 1234), ("ALGO101-2025", 1), ("Stats", 77)):
        made[shortname] = Course(site_id=site.id, moodle_course_id=moodle_id, shortname=shortname)
        session.add(made[shortname])
    session.flush()
    return made


def test_a_course_is_found_by_id_moodle_id_or_short_name(db_session: Session) -> None:
    c = _courses(db_session)
    algo, old, stats = c["ALGO101"], c["ALGO101-2025"], c["Stats"]
    # A bare number that is a tool id and no course's Moodle id (or the other way round).
    free = max(c.id for c in (algo, old, stats)) + 1000
    stats.moodle_course_id = free
    db_session.flush()
    assert resolve_course(db_session, str(free)) is stats
    assert resolve_course(db_session, "1234") is algo
    assert resolve_course(db_session, "ALGO101") is algo
    assert resolve_course(db_session, "algo101-2025") is old  # case-insensitive when unique
    assert resolve_course(db_session, f"id:{stats.id}") is stats
    assert resolve_course(db_session, "moodle:1") is old
    with pytest.raises(
        CourseRefError, match="no course 'ALGO999'; see `arche-predict course list`"
    ):
        resolve_course(db_session, "ALGO999")
    with pytest.raises(CourseRefError, match="id: takes a number"):
        resolve_course(db_session, "id:x")


def test_a_number_naming_two_courses_is_refused_with_what_to_type(db_session: Session) -> None:
    c = _courses(db_session)
    algo, old = c["ALGO101"], c["ALGO101-2025"]
    # "1" is old's Moodle id; make it some other course's tool id too, whatever the sequence.
    number = algo.id
    old.moodle_course_id = number
    db_session.flush()
    with pytest.raises(CourseRefError) as info:
        resolve_course(db_session, str(number))
    message = str(info.value)
    assert f"write id:{number}" in message
    assert f"moodle:{number}" in message
    assert "ALGO101-2025" in message
    assert resolve_course(db_session, f"id:{number}") is algo
    assert resolve_course(db_session, f"moodle:{number}") is old


def _cli(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", settings.source, *args], input=stdin)


@pytest.fixture
def migrated(settings: Settings) -> Settings:
    migrate.upgrade(make_engine(settings.database_url))
    return settings


def test_site_add_without_a_token_is_a_csv_site(migrated: Settings) -> None:
    result = _cli(migrated, "site", "add", "--url", "https://arche.example.fr", "--no-token")
    assert result.exit_code == 0, result.output
    assert "no web-service token: log source csv" in result.output
    with session_scope(make_session_factory(make_engine(migrated.database_url))) as session:
        site = session.scalars(select(MoodleSite)).one()
        assert site.ws_token_encrypted is None
        assert site.log_source == "csv"
    # A token stored later makes it a web-service site again.
    token = _cli(migrated, "site", "add", "--url", "https://arche.example.fr", "--token-stdin",
                 stdin="abcdefabcdefabcdefabcdefabcdef12\n")  # fmt: skip
    assert "log source ws (was csv)" in token.output
    both = _cli(
        migrated, "site", "add", "--url", "https://x.example", "--no-token", "--token-stdin"
    )
    assert both.exit_code == 1
    assert both.output == "Error: --no-token and --token-stdin exclude each other\n"


def test_course_options_take_a_short_name(migrated: Settings) -> None:
    assert _cli(migrated, "site", "add", "--url", "https://m.example", "--no-token").exit_code == 0
    added = _cli(migrated, "course", "add", "--site", "https://m.example", "--moodle-id", "1234",
                 "--name", "ALGO101")  # fmt: skip
    assert added.exit_code == 0, added.output
    # The course is found by its short name and by its Moodle id; it has no data yet.
    for ref in ("ALGO101", "1234"):
        result = _cli(migrated, "train", "--course", ref)
        assert "Invalid value" not in result.output, result.output
        assert "Traceback" not in result.output
    unknown = _cli(migrated, "predict", "--course", "ALGO999")
    assert unknown.exit_code == 2
    assert "no course 'ALGO999'" in unknown.output
    assert "Traceback" not in unknown.output
    synced = _cli(migrated, "sync", "--course", "ALGO101", "--no-score")
    assert "Invalid value" not in synced.output
    assert "a CSV-only site" in synced.output
    assert "Traceback" not in synced.output


def test_import_logs_alone_says_the_course_has_no_students(migrated: Settings) -> None:
    recorded = Path(__file__).parent.parent / "fixtures" / "moodle-5.1"
    assert _cli(migrated, "site", "add", "--url", "https://m.example", "--no-token").exit_code == 0
    added = _cli(migrated, "course", "add", "--site", "https://m.example", "--moodle-id", "2",
                 "--name", "ALGO101")  # fmt: skip
    assert added.exit_code == 0, added.output
    logs = _cli(
        migrated, "import-logs", str(recorded / "logs_export_en.csv"), "--course", "ALGO101"
    )
    assert logs.exit_code == 0, logs.output
    assert "Note: course 1 has no students yet" in logs.output
    assert "arche-predict import-grades FILE --course 1" in logs.output
    grades = _cli(
        migrated, "import-grades", str(recorded / "grades_export_en.csv"), "--course", "ALGO101",
        "--grade-max", "120",
    )  # fmt: skip
    assert grades.exit_code == 0, grades.output
    again = _cli(migrated, "import-logs", str(recorded / "logs_export_en.csv"), "--course", "2")
    assert again.exit_code == 0, again.output
    assert "no students yet" not in again.output


def test_course_add_and_update_take_course_references(migrated: Settings) -> None:
    """`course add --past` and `course update --course/--past` take the short name or the
    Moodle course id, like every other `--course`."""
    assert _cli(migrated, "site", "add", "--url", "https://m.example", "--no-token").exit_code == 0
    old = _cli(migrated, "course", "add", "--site", "https://m.example", "--moodle-id", "900",
               "--name", "ALGO101-2025")  # fmt: skip
    assert old.exit_code == 0, old.output
    new = _cli(migrated, "course", "add", "--site", "https://m.example", "--moodle-id", "1234",
               "--name", "ALGO101", "--past", "ALGO101-2025")  # fmt: skip
    assert new.exit_code == 0, new.output
    older = _cli(migrated, "course", "add", "--site", "https://m.example", "--moodle-id", "800",
                 "--name", "ALGO101-2024")  # fmt: skip
    assert older.exit_code == 0, older.output
    updated = _cli(migrated, "course", "update", "--course", "ALGO101", "--past", "800",
                   "--start", "2026-09-01", "--end", "2026-12-20")  # fmt: skip
    assert updated.exit_code == 0, updated.output
    unknown = _cli(migrated, "course", "update", "--course", "ALGO999")
    assert unknown.exit_code == 2
    assert "no course 'ALGO999'" in unknown.output
    engine = make_engine(migrated.database_url)
    with session_scope(make_session_factory(engine)) as session:
        from lti_app.services.courses import past_offerings

        course = session.scalars(select(Course).where(Course.shortname == "ALGO101")).one()
        assert course.start_at is not None
        assert sorted(p.moodle_course_id for p in past_offerings(session, course.id)) == [800, 900]
    engine.dispose()
    assert "Moodle course id or short name" in _cli(migrated, "course", "add", "--help").output


def test_a_csv_only_sites_courses_are_left_out_of_the_nightly_sync(migrated: Settings) -> None:
    """A course on a site without a token: `course add` says the nightly sync leaves it alone
    and names the imports; the nightly job then records no (failed) sync for it, while a
    web-service site's course is still synced."""
    from lti_app.scheduler import JobContext, default_jobs, run_job

    assert (
        _cli(migrated, "site", "add", "--url", "https://csv.example", "--no-token").exit_code == 0
    )
    added = _cli(migrated, "course", "add", "--site", "https://csv.example", "--moodle-id", "5",
                 "--name", "CSV101")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "the nightly sync leaves this course alone" in added.output
    assert "arche-predict import-logs FILE --course" in added.output
    ws = _cli(migrated, "site", "add", "--url", "https://ws.example", "--token-stdin",
              stdin="abcdefabcdefabcdefabcdefabcdef12\n")  # fmt: skip
    assert ws.exit_code == 0, ws.output
    other = _cli(migrated, "course", "add", "--site", "https://ws.example", "--moodle-id", "6")
    assert other.exit_code == 0, other.output
    assert "nightly sync" not in other.output
    engine = make_engine(migrated.database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        from lti_app.services.courses import nightly_course_ids

        ids = {
            c.shortname or str(c.moodle_course_id): c.id for c in session.scalars(select(Course))
        }
        assert nightly_course_ids(session) == [ids["6"]]
    seen: list[int] = []
    job = next(j for j in default_jobs() if j.name == "nightly-sync")
    job = dataclasses.replace(job, run=lambda _ctx, course_id: seen.append(course_id))
    report = run_job(job, JobContext(migrated, factory, "test", "2026-12-04"))
    assert seen == [ids["6"]]
    assert ids["CSV101"] not in report.processed + report.skipped + list(report.failed)
    engine.dispose()

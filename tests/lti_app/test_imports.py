"""CSV imports and `moodle check` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from lti_app.cli import main
from lti_app.config import Settings
from lti_app.models import Course, Grade, GradeItem, LogEvent, MoodleSite, Person
from lti_app.services.imports import import_grade_file
from tests.conftest import FIXTURES, Databases
from tests.lti_app.test_sync import make_settings, setup_course
from tests.moodle_stub import MoodleStub, fixture

RECORDED = FIXTURES / "moodle-5.1"


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    moodle = MoodleStub().start()
    yield moodle
    moodle.stop()


def cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", settings.source, *args])


def events(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with factory() as session:
        return [
            tuple(r)
            for r in session.execute(
                text(
                    "SELECT content_hash, eventname, component, crud, edulevel, contextlevel, "
                    "contextinstanceid, userid, relateduserid, courseid, timecreated "
                    "FROM log_event ORDER BY content_hash"
                )
            )
        ]


def n_events(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(LogEvent)) or 0)


def test_english_and_french_downloads_import_to_the_same_events(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    en = make_settings(tmp_path / "en", databases.new_url(backend))
    fr = make_settings(tmp_path / "fr", databases.new_url(backend))
    en_factory, en_course = setup_course(en, stub.url)
    fr_factory, fr_course = setup_course(fr, stub.url)

    first = cli(en, "import-logs", str(RECORDED / "logs_export_en.csv"), "--course", str(en_course))
    assert first.exit_code == 0, first.output
    assert "4840 events read (en headers), 4840 new" in first.output
    result = cli(
        fr, "import-logs", str(RECORDED / "logs_export_fr.csv"), "--course", str(fr_course)
    )
    assert result.exit_code == 0, result.output
    assert "4839 events read (fr headers), 4839 new" in result.output

    english, french = events(en_factory), events(fr_factory)
    # The English download was taken a moment later: it has one more event, the teacher viewing
    # the log report to download it. Every other event is identical, content hash included.
    assert set(french) < set(english)
    (extra,) = set(english) - set(french)
    assert extra[1] == "\\report_log\\event\\report_viewed"

    again = cli(en, "import-logs", str(RECORDED / "logs_export_en.csv"), "--course", str(en_course))
    assert again.exit_code == 0
    assert "0 new, 4840 already stored" in again.output
    assert n_events(en_factory) == 4840


def test_prototype_file_names_import(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    """The original ARCHE prototype read `logs_from_logs.csv` and `notes_from_notes.csv`."""
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course = setup_course(settings, stub.url)
    logs = tmp_path / "logs_from_logs.csv"
    notes = tmp_path / "notes_from_notes.csv"
    shutil.copy(RECORDED / "logs_export_fr.csv", logs)
    shutil.copy(RECORDED / "grades_export_fr.csv", notes)
    assert cli(settings, "import-logs", str(logs), "--course", str(course)).exit_code == 0
    # A real-points export does not say what its course total is out of: the maximum is given.
    result = cli(
        settings, "import-grades", str(notes), "--course", str(course), "--grade-max", "120"
    )
    assert result.exit_code == 0, result.output
    assert "40 students" in result.output
    with factory() as session:
        total = session.scalar(select(GradeItem).where(GradeItem.itemtype == "course"))
        assert total is not None
        grades = session.scalars(select(Grade).where(Grade.grade_item_id == total.id)).all()
        assert len(grades) == 40
        # Every graded student is the person whose events the log file holds.
        graded_people = {g.person_id for g in grades}
        with_ids = session.scalars(
            select(Person).where(Person.id.in_(graded_people), Person.moodle_user_id.is_not(None))
        ).all()
        assert len(with_ids) == 40
        logged = set(session.scalars(select(LogEvent.userid).distinct()))
        assert {p.moodle_user_id for p in with_ids} <= logged
        # Values are the export's own, each out of the maximum given.
        alice = session.scalar(select(Person).where(Person.email == "student26@example.com"))
        assert alice is not None
        assert {g.person_id: (g.value, g.grade_max) for g in grades}[alice.id] == (50.0, 120.0)


def test_grades_match_people_from_the_roster(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    from lti_app.tasks import run_course_sync

    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course = setup_course(settings, stub.url)
    assert run_course_sync(settings, factory, course).status == "succeeded"
    with factory() as session:
        people_before = session.scalar(select(func.count()).select_from(Person))
    result = cli(settings, "import-grades", str(RECORDED / "grades_export_en.csv"), "--course",
                 str(course), "--grade-max", "120")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "40 matched to known people, 0 added" in result.output
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == people_before


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"Date,Who,What\n1,2,3\n", r"line 1: .*not a Moodle log"),
        (None, r"line 3: .*time"),
        ("Heure,Nom\n\u00e9t\u00e9,x\n".encode("utf-16"), r"line \d+"),
    ],
)
def test_broken_log_files_are_refused_with_line_and_reason_and_write_nothing(
    backend: str,
    databases: Databases,
    tmp_path: Path,
    stub: MoodleStub,
    content: bytes | None,
    reason: str,
) -> None:
    import re

    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course = setup_course(settings, stub.url)
    good = RECORDED / "logs_export_en.csv"
    assert cli(settings, "import-logs", str(good), "--course", str(course)).exit_code == 0
    if content is None:  # a valid file whose second event has an unparseable date
        lines = good.read_bytes().splitlines(keepends=True)
        lines[2] = lines[2].replace(b"22/11/26,", b"31/02/26,", 1)
        content = b"".join(lines)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    result = cli(settings, "import-logs", str(bad), "--course", str(course))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "nothing was imported" in result.output
    assert re.search(reason, result.output), result.output
    assert n_events(factory) == 4840


def test_moodle_check_lists_missing_functions_and_capabilities(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    setup_course(settings, stub.url)
    # The recorded token's service lacks the plugin's function, and its user lacks the
    # capability behind the grade report (Moodle's own error, recorded).
    stub.handlers["gradereport_user_get_grade_items"] = lambda p: fixture(
        "error_missing_capability.json"
    )
    result = cli(settings, "moodle", "check", "--course", "2")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "Functions missing from the token's external service:" in out
    assert "local_archepredict_get_course_logs" in out
    assert "Capabilities the token user lacks:" in out
    assert "gradereport/user:view" in out  # Moodle named "View user report"
    assert "NOT READY" in out


def test_grade_reimport_updates_each_students_one_grade(db_session: Session) -> None:
    site = MoodleSite(base_url="https://moodle.example")
    db_session.add(site)
    db_session.flush()
    course = Course(site_id=site.id, moodle_course_id=2)
    db_session.add(course)
    db_session.flush()
    header = '"First name","Last name","Email address","Course total (Real)"\n'
    first = header + "Alice,Andre,a@example.com,50.00\nAmine,Benali,b@example.com,-\n"
    import_grade_file(db_session, course, first.encode(), grade_max=100.0)
    # The second export changes one grade, grades the other, and lists Alice twice (last wins).
    second = header + (
        "Alice,Andre,a@example.com,55.00\nAmine,Benali,b@example.com,40.00\n"
        "Alice,Andre,a@example.com,60.00\n"
    )
    result = import_grade_file(db_session, course, second.encode(), grade_max=100.0)
    assert (result.matched, result.created) == (3, 0)
    grades = db_session.execute(
        select(Person.email, Grade.value).join(Person, Grade.person_id == Person.id)
    ).all()
    assert sorted(grades) == [("a@example.com", 60.0), ("b@example.com", 40.0)]


def test_import_summary_names_each_unknown_kind_with_a_line(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    """Nothing unknown is dropped silently: the summary counts it by kind, with a line to read."""
    import csv
    import io

    settings = make_settings(tmp_path, databases.new_url(backend))
    _, course_id = setup_course(settings, stub.url)
    text = (RECORDED / "logs_export_en.csv").read_text(encoding="utf-8-sig")
    header, first, *_ = list(csv.reader(io.StringIO(text, newline="")))
    odd = [*first]
    odd[5], odd[6] = "Badge awarded", "The user with id '3' awarded the badge with id '1'."
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, first, odd, odd])
    path = tmp_path / "with-unknown.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    result = cli(settings, "import-logs", str(path), "--course", str(course_id))
    assert result.exit_code == 0, result.output
    assert "2 of an unrecognised kind" in result.output
    kind_line = next(line for line in result.output.splitlines() if "badge_awarded" in line)
    assert "2 rows, e.g. line 3: The user with id '3' awarded the badge" in kind_line


def _other_course_at(lines: list[bytes], index: int) -> bytes:
    """The recorded download with line `index` (0 = header) naming course 3 instead of 2."""
    changed = [*lines]
    assert b"course with id '2'" in changed[index]
    changed[index] = changed[index].replace(b"course with id '2'", b"course with id '3'")
    return b"".join(changed)


@pytest.mark.parametrize("already_stored", [False, True], ids=["fresh", "re-import"])
def test_a_file_refused_while_storing_leaves_nothing_and_the_transaction_usable(
    backend: str,
    databases: Databases,
    tmp_path: Path,
    stub: MoodleStub,
    already_stored: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Events are derived while the database stores them, oldest first (the download's last
    lines first): an event of another course on the file's *first* lines is met only after
    every other row was sent. The import still refuses the whole file, naming its first
    failing line, stores none of it, and the same transaction goes on (here: the good file).
    Nothing but the refusal is said: no driver warning about the rows already stored."""
    from lti_app.services.imports import import_log_file
    from moodle_client import CsvImportError

    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    good = (RECORDED / "logs_export_en.csv").read_bytes()
    lines = good.splitlines(keepends=True)
    bad = _other_course_at(_other_course_at(lines, 5).splitlines(keepends=True), 2)
    if already_stored:
        with factory() as session, session.begin():
            course = session.get_one(Course, course_id)
            import_log_file(session, course, good, timezone="Europe/London")
    with factory() as session, session.begin():
        course = session.get_one(Course, course_id)
        with caplog.at_level(logging.WARNING), pytest.raises(CsvImportError) as caught:
            import_log_file(session, course, bad, timezone="Europe/London")
        assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []
        assert caught.value.line == 3  # the first of the two, as a forward reading finds it
        assert "belongs to course 3" in caught.value.reason
        assert session.scalar(select(func.count()).select_from(LogEvent)) == (
            4840 if already_stored else 0
        )
        result = import_log_file(session, course, good, timezone="Europe/London")
        assert (result.rows, result.added) == (4840, 0 if already_stored else 4840)
    assert n_events(factory) == 4840

"""The sync, end to end against a Moodle stub over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from lti_app import migrate
from lti_app.config import Settings, load_settings
from lti_app.crypto import SecretBox, generate_key
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.models import (
    Course,
    Enrolment,
    Grade,
    GradeItem,
    LogEvent,
    Person,
    SyncCursor,
    SyncRun,
)
from lti_app.services.courses import add_course
from lti_app.services.sites import upsert_site
from lti_app.tasks import run_course_sync
from tests.conftest import Databases
from tests.moodle_stub import TOKEN, MoodleStub, make_log_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    moodle = MoodleStub(make_log_rows(120)).start()
    yield moodle
    moodle.stop()


def make_settings(tmp_path: Path, url: str, page_size: int = 10, extra: str = "") -> Settings:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[app]
secret_key = "s"
instance_path = "{tmp_path / "instance"}"
[database]
url = "{url}"
[security]
encryption_key = "{generate_key()}"
[moodle]
page_size = {page_size}
max_retries = 0
request_timeout = 10.0
{extra}
""",
        encoding="utf-8",
    )
    return load_settings(cfg, environ={})


def setup_course(settings: Settings, moodle_url: str) -> tuple[sessionmaker[Session], int]:
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        upsert_site(session, SecretBox.from_settings(settings), moodle_url, token=TOKEN)
        course_id = add_course(session, moodle_url, 2).id
    return factory, course_id


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def event_table(factory: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with factory() as session:
        return [
            tuple(r)
            for r in session.execute(
                text(
                    "SELECT moodle_log_id, eventname, userid, courseid, timecreated, crud, "
                    "edulevel, contextinstanceid, objectid FROM log_event ORDER BY moodle_log_id"
                )
            )
        ]


def test_full_then_incremental_sync(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)

    outcome = run_course_sync(settings, factory, course_id)
    assert outcome.status == "succeeded", outcome.error_message
    assert outcome.events_added == 120
    assert outcome.pages == 12
    assert count(factory, LogEvent) == 120
    with factory() as session:
        course = session.get_one(Course, course_id)
        assert course.shortname == "ALGO101"
        assert course.start_at is not None
        assert course.grade_max is not None
        roles = dict(
            session.execute(select(Enrolment.role, func.count()).group_by(Enrolment.role)).all()
        )
        assert roles == {"student": 40, "editingteacher": 1}
        total = session.scalar(select(GradeItem).where(GradeItem.itemtype == "course"))
        assert total is not None
        graded = session.scalar(
            select(func.count()).select_from(Grade).where(Grade.grade_item_id == total.id)
        )
        assert graded
        assert graded >= 40
        cursor = session.scalar(select(SyncCursor))
        assert cursor is not None
        assert cursor.last_id == 120
        run = session.get_one(SyncRun, outcome.run_id)
        assert (run.status, run.pages_done, run.pages_total) == ("succeeded", 12, 12)

    # Nothing new: no event added, and the first log call starts after the cursor.
    stub.calls.clear()
    again = run_course_sync(settings, factory, course_id)
    assert again.events_added == 0
    log_calls = [p for n, p in stub.calls if n == "local_archepredict_get_course_logs"]
    assert log_calls[0]["afterid"] == "120"

    # 10 new events: only they are fetched and added.
    stub.log_rows.extend(make_log_rows(130)[120:])
    newer = run_course_sync(settings, factory, course_id)
    assert newer.events_added == 10
    assert count(factory, LogEvent) == 130
    assert count(factory, Person) == 41


def test_moodle_error_fails_the_run_and_keeps_data(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    assert run_course_sync(settings, factory, course_id).status == "succeeded"
    with session_scope(factory) as session:
        upsert_site(session, SecretBox.from_settings(settings), stub.url, token="wrong")
    outcome = run_course_sync(settings, factory, course_id)
    assert outcome.status == "failed"
    assert outcome.error_code == "invalidtoken"
    assert outcome.error_message
    assert "token" in outcome.error_message.lower()
    assert "wrong" not in (outcome.error_message or "")
    assert count(factory, LogEvent) == 120


def test_requireloginerror_fails_the_run_naming_moodle_course_view(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    """A web-service user neither enrolled in the course nor holding moodle/course:view gets
    "Course or activity not accessible" [requireloginerror] from every call in the course (the
    shape of tests/moodle_client/test_check.py's body): the failed run names the capability."""
    moodle = MoodleStub(make_log_rows(10))
    body = {
        "exception": "core\\exception\\require_login_exception",
        "errorcode": "requireloginerror",
        "message": "Course or activity not accessible.",
    }
    for name in ("core_course_get_courses_by_field", "core_enrol_get_enrolled_users"):
        moodle.handlers[name] = lambda _params: body
    moodle.start()
    try:
        settings = make_settings(tmp_path, databases.new_url(backend))
        factory, course_id = setup_course(settings, moodle.url)
        outcome = run_course_sync(settings, factory, course_id)
    finally:
        moodle.stop()
    assert outcome.status == "failed"
    assert outcome.error_code == "requireloginerror"
    assert "moodle/course:view" in (outcome.error_message or "")
    assert "See Moodle's message" not in (outcome.error_message or "")


def test_db_log_source_reads_a_standard_log_table(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    # A separate database holding Moodle's table, as a read replica would.
    replica_url = databases.new_url(backend)
    replica = create_engine(replica_url)
    rows = make_log_rows(57)
    with replica.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE mdl_logstore_standard_log (id BIGINT PRIMARY KEY, "
                "eventname VARCHAR(255), component VARCHAR(100), action VARCHAR(100), "
                "target VARCHAR(100), objecttable VARCHAR(50), objectid BIGINT, crud CHAR(1), "
                "edulevel SMALLINT, contextid BIGINT, contextlevel BIGINT, "
                "contextinstanceid BIGINT, userid BIGINT, relateduserid BIGINT, "
                "courseid BIGINT, timecreated BIGINT, origin VARCHAR(10), ip VARCHAR(45))"
            )
        )
        conn.execute(
            text(
                "INSERT INTO mdl_logstore_standard_log VALUES (:id, :eventname, :component, "
                ":action, :target, :objecttable, :objectid, :crud, :edulevel, :contextid, "
                ":contextlevel, :contextinstanceid, :userid, :relateduserid, :courseid, "
                ":timecreated, :origin, '10.0.0.1')"
            ),
            [*rows, {**make_log_rows(1)[0], "id": 999, "courseid": 77}],
        )
    replica.dispose()
    settings = make_settings(
        tmp_path, databases.new_url(backend), extra=f'db_log_url = "{replica_url}"'
    )
    factory, course_id = setup_course(settings, stub.url)
    outcome = run_course_sync(settings, factory, course_id, source="db", include_roster=False)
    assert outcome.status == "succeeded", outcome.error_message
    assert outcome.events_added == 57  # the other course's row is not taken
    assert outcome.pages == 6
    ws_factory_settings = make_settings(tmp_path / "ws", databases.new_url(backend))
    ws_factory, ws_course = setup_course(ws_factory_settings, stub.url)
    stub.log_rows[:] = rows
    run_course_sync(ws_factory_settings, ws_factory, ws_course, include_roster=False)
    assert event_table(factory) == event_table(ws_factory)


def test_db_source_without_url_is_a_clear_failure(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    outcome = run_course_sync(settings, factory, course_id, source="db", include_roster=False)
    assert outcome.status == "failed"
    assert outcome.error_code == "configuration"
    assert outcome.error_message
    assert "moodle.db_log_url" in outcome.error_message


def test_sigkill_at_every_page_then_resume_equals_uninterrupted(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    """Kill the sync process with SIGKILL at each page in turn (2 to 10 of 10), each run
    resuming the last: after every kill the stored events are whole pages, a prefix of the log,
    never fewer than before; the final run completes to the same tables as an uninterrupted
    sync. Deterministic: every kill point is visited on every run (a random kill page per run
    hid a wrong assertion for page 2, where the next page's prefetch comes before the first
    page's commit)."""
    rows = make_log_rows(100)  # 10 pages of 10
    moodle = MoodleStub(rows).start()
    try:
        reference = make_settings(tmp_path / "ref", databases.new_url(backend))
        ref_factory, ref_course = setup_course(reference, moodle.url)
        assert run_course_sync(reference, ref_factory, ref_course).events_added == 100
        settings = make_settings(tmp_path / "crash", databases.new_url(backend))
        factory, course_id = setup_course(settings, moodle.url)
        cmd = [sys.executable, "-m", "lti_app.cli", "--config", settings.source, "sync",
               "--course", str(course_id)]  # fmt: skip
        stored = 0
        for kill_at in range(2, 11):
            killed = _sync_killed_at(moodle, cmd, kill_at)
            partial = count(factory, LogEvent)
            assert partial % 10 == 0, f"killed at page {kill_at}: {partial} is not whole pages"
            assert stored <= partial < 100, f"killed at page {kill_at}: stored {partial}"
            assert killed or partial >= (kill_at - 1) * 10
            assert event_table(factory) == event_table(ref_factory)[:partial]
            stored = partial
        moodle.before_call = None
        resumed = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert f"{100 - stored} new events" in resumed.stdout
        assert event_table(factory) == event_table(ref_factory)
        assert count(factory, LogEvent) == 100
    finally:
        moodle.stop()


def _sync_killed_at(moodle: MoodleStub, cmd: list[str], kill_at: int) -> bool:
    """Run the sync command and SIGKILL it when it asks for page `kill_at` (log ids after
    (kill_at - 1) * 10); True when it was killed (a run that already stored past that point
    asks for it at once and dies before storing anything)."""
    killed = threading.Event()
    proc_box: list[subprocess.Popen[str]] = []

    def before_call(name: str, params: dict[str, str]) -> None:
        if (
            name == "local_archepredict_get_course_logs"
            and not killed.is_set()
            and proc_box
            and int(params["afterid"]) >= (kill_at - 1) * 10
        ):
            proc_box[0].send_signal(signal.SIGKILL)
            killed.set()

    moodle.before_call = before_call
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    proc_box.append(proc)
    out, _ = proc.communicate(timeout=120)
    moodle.before_call = None
    if killed.is_set():
        assert proc.returncode == -signal.SIGKILL, out
    else:
        assert proc.returncode == 0, out
    return killed.is_set()


def test_cli_sync_scores_the_synced_course_as_the_scheduler_does(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    """`arche-predict sync` re-scores after a successful sync (#13 item 7): the predictions a
    teacher sees after a manual sync are those the nightly job would store."""
    from click.testing import CliRunner

    from lti_app.cli import main
    from lti_app.models import Prediction

    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    base = ["--config", settings.source, "sync", "--course", str(course_id)]
    quiet = CliRunner().invoke(main, [*base, "--no-score"])
    assert quiet.exit_code == 0, quiet.output
    assert count(factory, Prediction) == 0
    result = CliRunner().invoke(main, base)
    assert result.exit_code == 0, result.output
    assert f"course {course_id}: no_history: no past offering with final grades" in result.output
    assert count(factory, Prediction) > 0

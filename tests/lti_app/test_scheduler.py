"""Scheduler claims: several processes, each course processed exactly once per slot."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from lti_app import migrate
from lti_app.config import Settings
from lti_app.db import make_engine, make_session_factory, session_scope, utcnow
from lti_app.models import Course, JobLock, MoodleSite, Prediction, SyncRun
from lti_app.services import locks
from tests.conftest import Databases

WORKER = textwrap.dedent(
    """
    import os, sys, time
    from lti_app.config import Settings
    from lti_app.db import make_engine, make_session_factory
    from lti_app.scheduler import Job, JobContext, run_job

    url, out, slot = sys.argv[1], sys.argv[2], sys.argv[3]

    def work(ctx, course_id):
        with open(out, "a") as fh:
            fh.write(f"{course_id} {os.getpid()}\\n")
        time.sleep(0.05)  # long enough for the other process to race for the same course

    job = Job(name="test-nightly", description="test", schedule="nightly", run=work)
    ctx = JobContext(Settings(), make_session_factory(make_engine(url)), f"p{os.getpid()}", slot)
    report = run_job(job, ctx)
    print(len(report.processed), len(report.skipped))
    """
)


def _seed_courses(url: str, n: int) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    with session_scope(make_session_factory(engine)) as session:
        site = MoodleSite(base_url="https://m.example.org")
        session.add(site)
        session.flush()
        session.add_all(
            Course(site_id=site.id, moodle_course_id=100 + i, shortname=f"C{i}") for i in range(n)
        )
    engine.dispose()


def test_two_processes_started_at_once_process_each_course_once(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    url = databases.new_url(backend)
    _seed_courses(url, 12)
    out = tmp_path / "processed.txt"
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(out), "2026-11-23"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_stdout, stderr) in zip(procs, results, strict=True):
        assert proc.returncode == 0, stderr
    lines = out.read_text().split()
    course_ids = [int(x) for x in lines[0::2]]
    assert sorted(course_ids) == sorted(set(course_ids)), "a course was processed twice"
    assert len(course_ids) == 12
    counts = [stdout.strip().splitlines()[-1].split() for stdout, _ in results]
    processed = sum(int(c[0]) for c in counts)
    skipped = sum(int(c[1]) for c in counts)
    assert processed == 12
    assert skipped == 12  # every course was skipped by exactly one of the two processes
    # A third, later run of the same slot does nothing.
    late = subprocess.run(
        [sys.executable, str(script), url, str(out), "2026-11-23"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert late.stdout.strip().splitlines()[-1].split() == ["0", "12"]
    # The next slot processes everything again.
    nxt = subprocess.run(
        [sys.executable, str(script), url, str(out), "2026-11-24"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert nxt.stdout.strip().splitlines()[-1].split() == ["12", "0"]


def test_expired_claim_can_be_taken_over(db_session: Session) -> None:
    past = utcnow() - timedelta(hours=2)
    assert locks.try_claim(db_session, "job@slot", "a", timedelta(minutes=30), now=past)
    assert not locks.try_claim(db_session, "job@slot", "b", timedelta(minutes=30), now=past)
    # Now the lease of "a" is over: "b" takes it.
    assert locks.try_claim(db_session, "job@slot", "b", timedelta(minutes=30))
    row = db_session.scalar(select(JobLock).where(JobLock.name == "job@slot"))
    assert row is not None
    assert row.holder == "b"
    assert not locks.renew(db_session, "job@slot", "a", timedelta(minutes=5))
    assert locks.renew(db_session, "job@slot", "b", timedelta(minutes=5))


def test_purge_removes_only_expired(db_session: Session) -> None:
    locks.try_claim(db_session, "old", "a", timedelta(minutes=1), now=utcnow() - timedelta(days=1))
    locks.try_claim(db_session, "new", "a", timedelta(minutes=30))
    assert locks.purge_expired(db_session) == 1
    names = set(db_session.scalars(select(JobLock.name)))
    assert names == {"new"}


@pytest.mark.parametrize("hour", [0, 23])
def test_nightly_slot_is_the_local_day(hour: int) -> None:
    from datetime import UTC, datetime

    from lti_app.config import Settings
    from lti_app.scheduler import nightly_slot

    now = datetime(2026, 11, 22, hour, 30, tzinfo=UTC)
    expected = "2026-11-22" if hour == 0 else "2026-11-23"  # Europe/Paris is UTC+1 in November
    assert nightly_slot(Settings(), now) == expected


def four_courses(
    tmp_path: Path, url: str, moodle_url: str, extra: str = ""
) -> tuple[Settings, sessionmaker[Session]]:
    """Settings on the database at `url` (with `extra` sections) and Moodle courses 2 to 5 of
    the recorded stub at `moodle_url` added, migrated and ready for a night."""
    from lti_app.services.courses import add_course
    from tests.lti_app.test_sync import make_settings, setup_course

    settings = make_settings(tmp_path, url, extra=extra)
    factory, _ = setup_course(settings, moodle_url)
    with session_scope(factory) as session:
        for moodle_id in (3, 4, 5):
            add_course(session, moodle_url, moodle_id)
    return settings, factory


def cli_at_once(settings: Settings, *args: str, copies: int = 2, timeout: float = 180) -> list[str]:
    """`arche-predict --config … ARGS` run `copies` times at the same moment, each required to
    succeed; their outputs. `{i}` in an argument becomes the copy's number."""
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "lti_app.cli", "--config", settings.source,
             *(a.format(i=i) for a in args)],
            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(copies)
    ]  # fmt: skip
    outs = [p.communicate(timeout=timeout) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out + err
    return [out for out, _ in outs]


def assert_each_course_synced_and_scored_once(
    calls: list[Any], factory: sessionmaker[Session]
) -> None:
    """Moodle was asked for each of courses 2 to 5 once; each has one sync run and one scoring
    (no history: features only, its 40 students)."""
    from collections import Counter

    per_course = Counter(p["value"] for n, p in calls if n == "core_course_get_courses_by_field")
    assert per_course == {"2": 1, "3": 1, "4": 1, "5": 1}
    with factory() as session:
        runs = Counter(session.scalars(select(SyncRun.course_id)))
        scored = Counter(session.scalars(select(Prediction.course_id)))
    assert sorted(runs.values()) == [1, 1, 1, 1]
    assert sorted(scored.values()) == [40, 40, 40, 40]


def test_two_scheduler_commands_sync_each_course_once(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    """The real `arche-predict scheduler --once nightly-sync`, twice at once, against Moodle."""
    from tests.moodle_stub import MoodleStub

    moodle = MoodleStub().start()
    try:
        settings, factory = four_courses(tmp_path, databases.new_url(backend), moodle.url)
        cli_at_once(settings, "scheduler", "--once", "nightly-sync")
        assert_each_course_synced_and_scored_once(moodle.calls, factory)
    finally:
        moodle.stop()


def test_purge_lti_job_drops_only_expired_launch_state(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    from lti_app.config import Settings
    from lti_app.models import LtiStoredValue
    from lti_app.scheduler import JobContext, default_jobs, run_job

    url = databases.new_url(backend)
    _seed_courses(url, 0)
    factory = make_session_factory(make_engine(url))
    with session_scope(factory) as session:
        session.add(LtiStoredValue(key="old", value={"n": 1}, expires_at=utcnow() - timedelta(1)))
        session.add(LtiStoredValue(key="new", value={"n": 2}, expires_at=utcnow() + timedelta(1)))
    job = {j.name: j for j in default_jobs()}["purge-lti"]
    run_job(job, JobContext(Settings(), factory, "test", "2026-11-23"))
    with factory() as session:
        assert set(session.scalars(select(LtiStoredValue.key))) == {"new"}


# ------------------------------------------------------------------ #15 E and F: last runs, logs


def test_a_running_scheduler_records_each_jobs_last_run(backend: str, databases: Databases) -> None:
    """The real APScheduler loop, with the "Sync now" poll ticking fast: its last run is recorded
    by job name while the scheduler runs (the admin page used to look for claims named after the
    job, which no job ever makes, and always said "never")."""
    import dataclasses
    import threading
    import time

    from lti_app.config import Settings
    from lti_app.models import JobRun
    from lti_app.scheduler import build_scheduler, default_jobs

    url = databases.new_url(backend)
    _seed_courses(url, 0)
    factory = make_session_factory(make_engine(url))
    poll = next(j for j in default_jobs() if j.name == "sync-requests")
    fast = dataclasses.replace(poll, interval=timedelta(seconds=0.2))
    scheduler = build_scheduler(Settings(), factory, [fast])
    thread = threading.Thread(target=scheduler.start, daemon=True)
    thread.start()
    try:
        row = None
        deadline = time.monotonic() + 20
        while row is None or row.finished_at is None:
            assert time.monotonic() < deadline, "the scheduler recorded no run"
            time.sleep(0.1)
            with factory() as session:
                row = session.get(JobRun, "sync-requests")
    finally:
        scheduler.shutdown(wait=True)
        thread.join(timeout=10)
    assert row.status == "ok"
    assert row.holder == locks.holder_id()


def test_the_poll_overlap_warning_is_dropped_for_polls_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """APScheduler's "skipped: maximum number of running instances reached (1)" was printed at
    every 5-second tick of a "Sync now" longer than that; it is expected for the poll (the
    running instance takes every pending request) and stays for the nightly jobs."""
    import logging

    from lti_app.config import Settings
    from lti_app.scheduler import build_scheduler, default_jobs

    scheduler = build_scheduler(
        Settings(), make_session_factory(make_engine("sqlite://")), default_jobs()
    )
    aps = logging.getLogger("apscheduler.scheduler")
    # APScheduler's own call (apscheduler/schedulers/base.py, _process_jobs), with its Job.
    message = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'
    with caplog.at_level(logging.WARNING, logger="apscheduler.scheduler"):
        for name in ("sync-requests", "sync-requests", "nightly-sync"):
            aps.warning(message, scheduler.get_job(name), 1)
    skipped = [r for r in caplog.records if "maximum number of running" in r.getMessage()]
    assert len(skipped) == 1
    assert "Pull each course" in skipped[0].getMessage()  # the nightly sync's description
    # Building another scheduler does not stack the filters.
    build_scheduler(Settings(), make_session_factory(make_engine("sqlite://")), default_jobs())
    assert sum(type(f).__name__ == "PollOverlapFilter" for f in aps.filters) == 1


# ------------------------------------------------------------------ #16 item 4: weekly digest


def test_nightly_jobs_run_at_nightly_at_plus_their_offset() -> None:
    from datetime import time

    from lti_app.config import Settings
    from lti_app.scheduler import build_scheduler, default_jobs, nightly_time

    settings = Settings()
    jobs = {j.name: j for j in default_jobs()}
    digest = jobs["weekly-digest"]
    assert digest.schedule == "nightly"
    assert digest.offset == timedelta(hours=2)
    h, m = (int(p) for p in settings.scheduler.nightly_at.split(":"))
    assert nightly_time(settings, jobs["nightly-sync"]) == time(h, m)
    assert nightly_time(settings, digest) == time((h + 2) % 24, m)
    late = settings.model_copy(
        update={"scheduler": settings.scheduler.model_copy(update={"nightly_at": "23:15"})}
    )
    assert nightly_time(late, digest) == time(1, 15)  # the next morning
    scheduler = build_scheduler(
        settings, make_session_factory(make_engine("sqlite://")), default_jobs()
    )
    fields = {f.name: str(f) for f in scheduler.get_job("weekly-digest").trigger.fields}
    assert (fields["hour"], fields["minute"]) == (str((h + 2) % 24), str(m))
    fields = {f.name: str(f) for f in scheduler.get_job("nightly-sync").trigger.fields}
    assert (fields["hour"], fields["minute"]) == (str(h), str(m))


def _digest_course(
    backend: str, databases: Databases, tmp_path: Path, moodle_url: str
) -> tuple[Settings, sessionmaker[Session], int]:
    """A course synced from the stub (roster: teacher 3, students 4-43), with a shown model and
    two scorings: a week ago nobody at risk, yesterday student 4 (Amine Benali) at risk."""
    from lti_app.models import ModelVersion, Person
    from lti_app.tasks import run_course_sync
    from tests.lti_app.test_sync import make_settings, setup_course

    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, moodle_url)
    assert run_course_sync(settings, factory, course_id).status == "succeeded"
    now = utcnow()
    with session_scope(factory) as session:
        model = ModelVersion(
            course_id=course_id, version="digest-test", task="classification",
            estimator="logistic", artifact_path="x", artifact_sha256="0" * 64, features=[],
            metrics={}, metadata_json={}, data_hash="0" * 64, gate_passed=True, active=True,
            trained_at=now - timedelta(days=10),
        )  # fmt: skip
        session.add(model)
        session.flush()
        people = dict(
            session.execute(
                select(Person.moodle_user_id, Person.id).where(Person.moodle_user_id.in_([4, 5]))
            ).all()
        )
        for days, chances in ((8, {4: 0.8, 5: 0.9}), (1, {4: 0.2, 5: 0.9})):
            when = now - timedelta(days=days)
            session.add_all(
                Prediction(
                    course_id=course_id,
                    person_id=people[uid],
                    classification_model_id=model.id,
                    as_of=when,
                    pass_probability=p,
                    features={},
                    created_at=when,
                )
                for uid, p in chances.items()
            )
    return settings, factory, course_id


def _subscribe(
    factory: sessionmaker[Session], course_id: int, moodle_user_id: int, locale: str
) -> int:
    from lti_app.models import Course, Person
    from lti_app.services import watch

    with session_scope(factory) as session:
        course = session.get_one(Course, course_id)
        person = session.scalar(
            select(Person).where(
                Person.site_id == course.site_id, Person.moodle_user_id == moodle_user_id
            )
        )
        if person is None:
            person = Person(site_id=course.site_id, moodle_user_id=moodle_user_id, fullname="T")
            session.add(person)
            session.flush()
        watch.set_digest(session, course_id, person.id, enabled=True, locale=locale)
        return person.id


def test_weekly_digest_reaches_moodle_once(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    """The job sends the subscribed teacher's digest through the stub's messaging once; the same
    night again, and the next night, nothing is due (DIGEST_EVERY)."""
    from lti_app.models import DigestSubscription
    from lti_app.scheduler import JobContext, default_jobs, run_job
    from tests.moodle_stub import MoodleStub

    moodle = MoodleStub().start()
    try:
        settings, factory, course_id = _digest_course(backend, databases, tmp_path, moodle.url)
        teacher = _subscribe(factory, course_id, 3, "fr")
        job = {j.name: j for j in default_jobs()}["weekly-digest"]

        report = run_job(job, JobContext(settings, factory, "test", "2026-12-04"))

        assert report.failed == {}
        assert report.processed == [course_id]
        assert report.counts == {"sent": 1, "refused": 0, "unknown": 0, "failed": 0}
        [message] = moodle.sent_messages
        assert message["touserid"] == 3
        assert "résumé de la semaine" in message["text"]
        assert "1 étudiant·e est à risque" in message["text"]
        assert "Amine Benali" in message["text"]  # became at risk since the last week
        assert "Sarah Martin" not in message["text"]
        with factory() as session:
            sub = session.get_one(DigestSubscription, (course_id, teacher))
            assert sub.last_sent_at is not None

        again = run_job(job, JobContext(settings, factory, "test", "2026-12-04"))
        assert again.skipped == [course_id]  # the same slot: claimed already
        next_night = run_job(job, JobContext(settings, factory, "test", "2026-12-05"))
        assert next_night.processed == [course_id]
        assert next_night.counts == {"sent": 0, "refused": 0, "unknown": 0, "failed": 0}
        assert len(moodle.sent_messages) == 1
    finally:
        moodle.stop()


def test_one_teachers_failed_digest_does_not_stop_the_others(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    from lti_app.models import DigestSubscription
    from lti_app.scheduler import JobContext, default_jobs, run_job
    from tests.moodle_stub import MoodleStub, fixture

    moodle = MoodleStub().start()
    try:
        settings, factory, course_id = _digest_course(backend, databases, tmp_path, moodle.url)
        failing = _subscribe(factory, course_id, 3, "fr")
        second = _subscribe(factory, course_id, 44, "en")
        refused = _subscribe(factory, course_id, 99999, "en")  # unknown to Moodle
        send = moodle.handlers["core_message_send_instant_messages"]

        def flaky(params: dict[str, str]) -> object:
            if params["messages[0][touserid]"] == "3":
                return fixture("error_invalid_parameter.json")
            return send(params)

        moodle.handlers["core_message_send_instant_messages"] = flaky
        job = {j.name: j for j in default_jobs()}["weekly-digest"]

        report = run_job(job, JobContext(settings, factory, "test", "2026-12-04"))

        assert report.counts == {"sent": 1, "refused": 1, "unknown": 0, "failed": 1}
        assert list(report.failed) == [course_id]
        assert "1 of 3 weekly digest(s) failed" in report.failed[course_id]
        assert [m["touserid"] for m in moodle.sent_messages] == [44]
        assert "weekly summary" in moodle.sent_messages[0]["text"]
        with factory() as session:
            sent_at = {
                pid: session.get_one(DigestSubscription, (course_id, pid)).last_sent_at
                for pid in (failing, second, refused)
            }
        # The failed one is tried again the next night; the others are not due for a week.
        assert sent_at[failing] is None
        assert sent_at[second] is not None
        # Moodle's refusal (the user does not exist) is its answer, not a failure to retry.
        assert sent_at[refused] is None
    finally:
        moodle.stop()

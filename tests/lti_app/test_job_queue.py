"""The nightly per-course work on Procrastinate (#19, item 2), on PostgreSQL; SQLite keeps the
in-process path (tests/lti_app/test_scheduler.py runs it on both databases).

Real processes throughout: `arche-predict scheduler --once nightly-sync` twice at once queues
each course once; two `arche-predict worker --once` processes then sync and score each course
exactly once against the recorded Moodle. A worker that took a course and died (no heartbeat
any more) has its job put back and done by another.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from lti_app.db import session_scope
from lti_app.job_queue import (
    COURSE_TASK,
    QUEUE,
    QueueConfigError,
    conninfo,
    defer_courses,
    make_app,
    requeue_stalled,
    run_worker,
)
from tests.conftest import Databases

QUEUED = '[scheduler]\nqueue = "procrastinate"'


def test_the_queue_needs_postgresql(backend: str, databases: Databases) -> None:
    url = databases.new_url(backend)
    if backend == "sqlite":
        with pytest.raises(QueueConfigError, match="PostgreSQL"):
            conninfo(url)
    else:
        assert conninfo(url).startswith("postgresql://")


def test_two_workers_sync_and_score_each_course_once(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("the job queue lives in PostgreSQL; SQLite runs in-process")
    from tests.lti_app.test_scheduler import (
        assert_each_course_synced_and_scored_once,
        cli_at_once,
        four_courses,
    )
    from tests.moodle_stub import MoodleStub

    moodle = MoodleStub().start()
    try:
        url = databases.new_url(backend)
        settings, factory = four_courses(tmp_path, url, moodle.url, extra=QUEUED)
        said = " ".join(cli_at_once(settings, "scheduler", "--once", "nightly-sync", timeout=120))
        assert "queued 4 of 4 course(s)" in said  # one scheduler queued the night
        with factory() as session:
            queued = session.execute(
                text("SELECT status FROM procrastinate_jobs WHERE task_name = :t"),
                {"t": COURSE_TASK},
            ).scalars().all()  # fmt: skip
        assert sorted(queued) == ["todo"] * 4
        # Nothing synced by the schedulers themselves.
        assert not any(n == "core_course_get_courses_by_field" for n, _ in moodle.calls)
        cli_at_once(settings, "worker", "--once", "--name", "w{i}", timeout=300)
        assert_each_course_synced_and_scored_once(moodle.calls, factory)
        with factory() as session:
            done = session.execute(
                text("SELECT status FROM procrastinate_jobs WHERE task_name = :t"),
                {"t": COURSE_TASK},
            ).scalars().all()  # fmt: skip
        assert sorted(done) == ["succeeded"] * 4
    finally:
        moodle.stop()


def test_a_dead_workers_course_is_taken_back(
    backend: str, databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("the job queue lives in PostgreSQL; SQLite runs in-process")
    from lti_app import scheduler
    from tests.lti_app.test_scheduler import _seed_courses
    from tests.lti_app.test_sync import make_settings

    url = databases.new_url(backend)
    _seed_courses(url, 1)
    settings = make_settings(tmp_path, url, extra=QUEUED)
    done: list[tuple[int, str]] = []

    def probe(ctx: scheduler.JobContext, course_id: int) -> None:
        done.append((course_id, ctx.holder))

    job = scheduler.Job(name="probe", description="test", schedule="nightly", run=probe)
    monkeypatch.setattr(scheduler, "JOBS", (*scheduler.JOBS, job))
    from lti_app.db import make_engine, make_session_factory

    factory = make_session_factory(make_engine(url))
    app = make_app(settings, factory)
    with factory() as session:
        course_id = int(session.scalar(text("SELECT min(id) FROM course")) or 0)
    assert defer_courses(app, "probe", "2026-12-04", [course_id]) == 1
    # Queued again the same night: already there, not queued twice.
    assert defer_courses(app, "probe", "2026-12-04", [course_id]) == 0

    async def take_and_die() -> int:
        async with app.open_async():
            worker_id = await app.job_manager.register_worker()
            taken = await app.job_manager.fetch_job(queues=[QUEUE], worker_id=worker_id)
            assert taken is not None
            assert taken.id is not None
            return taken.id

    job_id = asyncio.run(take_and_die())
    with session_scope(factory) as session:  # the process is gone: no heartbeat for minutes
        session.execute(
            text("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '10 minutes'")
        )

    async def requeue() -> list[int]:
        async with app.open_async():
            return await requeue_stalled(app)

    assert asyncio.run(requeue()) == [job_id]
    run_worker(app, name="rescuer", wait=False, install_signal_handlers=False)
    assert done == [(course_id, "worker:rescuer")]
    with factory() as session:
        status = session.execute(
            text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        ).scalar_one()
    assert status == "succeeded"

"""The nightly per-course work on a job queue (#19, item 2): Procrastinate, in PostgreSQL.

With `scheduler.queue = "procrastinate"`, the scheduler stays the clock (APScheduler) but no
longer does each course's work itself: at the job's time one scheduler (the per-slot claim)
queues one Procrastinate job per course, and `arche-predict worker` processes take them, as
many as there are processes on as many machines as share the database. What the queue gives
that the in-process loop did not:

- each course is queued once per night (a queueing lock per job, night and course, on top of
  the scheduler's claim), so however many workers run, a course is processed once;
- one job per course at a time (a lock per course: the 04:30 digest waits for the course's
  02:30 sync and scoring, in the order they were queued);
- retries: a course whose work raised (Moodle down at 02:30) is tried again twice, a few
  minutes apart, before it counts as failed;
- a worker that died mid-course (killed, its machine gone) stops sending heartbeats; a periodic
  task in every worker puts its jobs back in the queue (`requeue_stalled`);
- visibility: each job, its status and its attempts are rows of `procrastinate_jobs` and
  `procrastinate_events`, and the admin page's job history says how many courses were queued.

The work itself is the scheduler's own per-course function (`scheduler.run_course_unit`), so a
course does the same on either path. SQLite (the embedded default) keeps the in-process loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import procrastinate
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from lti_app.config import Settings
from lti_app.observability import get_logger

log = get_logger(__name__)

#: The queue the nightly per-course jobs go to.
QUEUE = "nightly"
#: The task's name in `procrastinate_jobs.task_name`.
COURSE_TASK = "arche_predict.course_job"
#: A worker whose heartbeat is older than this is taken for dead (Procrastinate's workers beat
#: every 10 s by default).
STALLED_AFTER_S = 60.0
#: Attempts of one course's work before it counts as failed, and the wait between them.
ATTEMPTS = 3
RETRY_WAIT_S = 120


class QueueConfigError(RuntimeError):
    """The queue asked for where it cannot run (Procrastinate needs PostgreSQL)."""


def conninfo(database_url: str) -> str:
    """libpq's connection string for the tool's PostgreSQL URL (SQLAlchemy's driver suffix
    dropped); refuses any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise QueueConfigError(
            'scheduler.queue = "procrastinate" needs PostgreSQL; this database is '
            f"{url.get_backend_name()}: use the in-process queue"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def make_app(settings: Settings, factory: sessionmaker[Session]) -> procrastinate.App:
    """A Procrastinate app on the tool's PostgreSQL, with the course task and the periodic
    requeue of stalled workers' jobs; `factory` gives the task its sessions."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(settings.database_url))
    )

    @app.task(
        name=COURSE_TASK,
        queue=QUEUE,
        pass_context=True,
        retry=procrastinate.RetryStrategy(max_attempts=ATTEMPTS - 1, wait=RETRY_WAIT_S),
    )
    def course_job(context: procrastinate.JobContext, job: str, slot: str, course_id: int) -> None:
        from lti_app.scheduler import JobContext, job_named, run_course_unit

        holder = f"worker:{context.worker_name or 'worker'}"
        run_course_unit(job_named(job), JobContext(settings, factory, holder, slot), course_id)

    @app.periodic(cron="* * * * *", periodic_id="requeue-stalled")
    @app.task(name="arche_predict.requeue_stalled", queue=QUEUE, pass_context=True)
    async def requeue_stalled_task(context: procrastinate.JobContext, timestamp: int) -> None:
        del timestamp
        await requeue_stalled(context.app)

    return app


async def requeue_stalled(app: procrastinate.App) -> list[int]:
    """Put back in the queue the jobs of workers that stopped beating (a killed process, a
    machine gone): they were "doing" and will never finish. Returns their ids."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_AFTER_S)
    ids = []
    for job in stalled:
        await app.job_manager.retry_job(job)
        assert job.id is not None
        ids.append(job.id)
    if ids:
        log.warning("requeued the jobs of stalled workers", job_ids=ids)
    return ids


def defer_courses(app: procrastinate.App, job: str, slot: str, course_ids: Iterable[int]) -> int:
    """Queue `job` for each course, once per night and course (the queueing lock), one job per
    course at a time (the lock). Returns how many were queued now (0 for a course already
    queued and not yet taken)."""
    task = app.tasks[COURSE_TASK]
    queued = 0
    with app.open():
        for course_id in course_ids:
            try:
                task.configure(
                    lock=f"course:{course_id}",
                    queueing_lock=f"{job}@{slot}#course:{course_id}",
                ).defer(job=job, slot=slot, course_id=int(course_id))
            except procrastinate.exceptions.AlreadyEnqueued:
                continue
            queued += 1
    return queued


def run_worker(
    app: procrastinate.App,
    *,
    name: str | None = None,
    wait: bool = True,
    install_signal_handlers: bool = True,
    **options: Any,
) -> None:
    """Run one worker on the nightly queue until stopped (or, `wait=False`, until the queue is
    empty). One worker runs one course at a time: the work is CPU-bound, so a machine runs one
    worker process per core it gives to the night."""

    async def main() -> None:
        async with app.open_async():
            await app.run_worker_async(
                queues=[QUEUE],
                name=name or "worker",
                wait=wait,
                concurrency=1,
                install_signal_handlers=install_signal_handlers,
                **options,
            )

    asyncio.run(main())


__all__ = [
    "ATTEMPTS",
    "COURSE_TASK",
    "QUEUE",
    "QueueConfigError",
    "conninfo",
    "defer_courses",
    "make_app",
    "requeue_stalled",
    "run_worker",
]

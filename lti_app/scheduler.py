"""The scheduler process (`arche-predict scheduler`): periodic jobs, declared as data.

It runs in its own process, never inside web workers (a web worker may be killed or multiplied
at any time). Several scheduler processes may run, e.g. one per host for availability: each
unit of work (one job, one slot, one course) is claimed in the database first
(`lti_app.services.locks`), so every course is processed exactly once per slot whichever
process gets there first.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from lti_app.config import Settings
from lti_app.db import session_scope, utcnow
from lti_app.observability import get_logger
from lti_app.services import locks
from lti_app.services.courses import nightly_course_ids

log = get_logger(__name__)

# A job owns its transactions (a sync commits page by page), so it gets ids, not sessions.
# A course's work may return what it counted (e.g. digests sent and failed): the job's report
# adds them up over the courses.
CourseWork = Callable[["JobContext", int], Mapping[str, int] | None]
SiteWork = Callable[["JobContext"], str | None]


class PartialFailureError(RuntimeError):
    """Raised by a course's work that went through all its units and counted some failures
    (one teacher's digest Moodle refused): the course is marked failed in the report, and its
    counts are added all the same."""

    def __init__(self, message: str, counts: Mapping[str, int]) -> None:
        super().__init__(message)
        self.counts = dict(counts)


@dataclass(frozen=True)
class Job:
    """One periodic job. `per_course` jobs run `run` once for every course with sync enabled
    on a site a sync can reach (`services.courses.nightly_course_ids`: not a CSV-only site)."""

    name: str
    description: str
    schedule: Literal["nightly", "interval"]
    run: CourseWork | SiteWork
    per_course: bool = True
    interval: timedelta | None = None
    lease: timedelta = timedelta(minutes=30)
    #: A nightly job runs this long after `scheduler.nightly_at` (e.g. after the scoring).
    offset: timedelta = timedelta(0)


@dataclass
class JobContext:
    settings: Settings
    session_factory: sessionmaker[Session]
    holder: str
    slot: str
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobReport:
    job: str
    slot: str
    processed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    #: What the courses' work counted, summed (e.g. {"sent": 3, "failed": 1}).
    counts: dict[str, int] = field(default_factory=dict)
    #: What a site-wide job did, in a line for its history (the retention job's counts).
    summary: str | None = None

    def add(self, counts: Mapping[str, int] | None) -> None:
        for key, value in (counts or {}).items():
            self.counts[key] = self.counts.get(key, 0) + value


def nightly_time(settings: Settings, job: Job) -> time:
    """The local time a nightly job runs: `scheduler.nightly_at` plus the job's offset."""
    hour, minute = (int(p) for p in settings.scheduler.nightly_at.split(":"))
    return (datetime.combine(date(2000, 1, 1), time(hour, minute)) + job.offset).time()


def nightly_slot(settings: Settings, now: datetime | None = None) -> str:
    """The nightly slot is the local calendar day of the run, in the scheduler's time zone."""
    tz = ZoneInfo(settings.scheduler.timezone)
    return (now or utcnow()).astimezone(tz).date().isoformat()


def run_job(job: Job, ctx: JobContext) -> JobReport:
    """Run one job for one slot: claim each unit, do it in its own transaction, record it.

    The job's start and end are recorded by name (`services.job_runs`) for the admin page.
    """
    from lti_app.services import job_runs

    with session_scope(ctx.session_factory) as session:
        job_runs.record_start(session, job.name, ctx.holder)
    try:
        report = _run_job(job, ctx)
    except Exception as exc:
        _record_end(ctx, job, f"{exc.__class__.__name__}: {exc}")
        raise
    failed = ", ".join(map(str, sorted(report.failed)))
    _record_end(
        ctx, job, f"failed for course(s) {failed}" if failed else None, summary=report.summary
    )
    return report


def _record_end(
    ctx: JobContext, job: Job, failure: str | None, *, summary: str | None = None
) -> None:
    from lti_app.services import job_runs

    with session_scope(ctx.session_factory) as session:
        job_runs.record_end(session, job.name, ctx.holder, failed=failure, summary=summary)


def _run_job(job: Job, ctx: JobContext) -> JobReport:
    report = JobReport(job=job.name, slot=ctx.slot)
    if job.schedule == "interval":
        # Frequent jobs claim their own units of work (e.g. one request at a time): a claim
        # row per tick would only fill the table.
        job.run(ctx)  # type: ignore[call-arg]
        return report
    if not job.per_course:
        claim = f"{job.name}@{ctx.slot}"
        with session_scope(ctx.session_factory) as session:
            if not locks.try_claim(session, claim, ctx.holder, job.lease):
                return report
        result = job.run(ctx)  # type: ignore[call-arg]
        if isinstance(result, str):  # what the run did, for the job's history
            report.summary = result
        with session_scope(ctx.session_factory) as session:
            locks.mark_done(session, claim, ctx.holder)
        return report

    with session_scope(ctx.session_factory) as session:
        course_ids = nightly_course_ids(session)
    if ctx.settings.scheduler.queue == "procrastinate" and job.schedule == "nightly":
        return _queue_courses(job, ctx, course_ids, report)
    for course_id in course_ids:
        claim = f"{job.name}@{ctx.slot}#course:{course_id}"
        with session_scope(ctx.session_factory) as session:
            claimed = locks.try_claim(session, claim, ctx.holder, job.lease)
        if not claimed:
            report.skipped.append(course_id)
            continue
        try:
            report.add(run_course_unit(job, ctx, course_id))
            report.processed.append(course_id)
        except PartialFailureError as exc:
            log.warning(
                "scheduled job partly failed for a course",
                job=job.name,
                course_id=course_id,
                error=str(exc),
                counts=exc.counts,
            )
            report.add(exc.counts)
            report.failed[course_id] = str(exc)
        except Exception as exc:  # one course failing must not stop the others
            log.exception("scheduled job failed for a course", job=job.name, course_id=course_id)
            report.failed[course_id] = f"{exc.__class__.__name__}: {exc}"
        finally:
            # Done or failed, the slot is spent for this course: the error is recorded in the
            # sync history, and the next slot tries again.
            with session_scope(ctx.session_factory) as session:
                locks.mark_done(session, claim, ctx.holder)
    log.info(
        "scheduled job finished",
        job=job.name,
        slot=ctx.slot,
        processed=len(report.processed),
        skipped=len(report.skipped),
        failed=len(report.failed),
        counts=report.counts,
    )
    return report


def run_course_unit(job: Job, ctx: JobContext, course_id: int) -> Mapping[str, int] | None:
    """One course's work for a per-course job: what the in-process loop and a queue worker
    (`job_queue`) both run, so a course does the same on either path. Raises on failure."""
    result = job.run(ctx, course_id)  # type: ignore[call-arg]
    return result if isinstance(result, Mapping) else None


#: What queues a night's courses instead of doing them (`job_queue.defer_courses` on the
#: process's Procrastinate app), registered by the entry point when `scheduler.queue` is
#: "procrastinate" (`use_queue`): this layer does not import the queue.
_QUEUE: list[Callable[[str, str, Sequence[int]], int]] = []


def use_queue(defer: Callable[[str, str, Sequence[int]], int]) -> None:
    """Queue the nightly per-course jobs with `defer(job, slot, course_ids)` (returns how many
    were queued now)."""
    _QUEUE[:] = [defer]


def _queue_courses(
    job: Job, ctx: JobContext, course_ids: Sequence[int], report: JobReport
) -> JobReport:
    """Queue the night's courses on the job queue instead of doing them: one scheduler does it
    per night (the claim), the workers do the rest."""
    if not _QUEUE:
        raise RuntimeError(
            'scheduler.queue is "procrastinate" but this process has no queue to put the '
            "courses on (start it with `arche-predict scheduler`)"
        )
    claim = f"{job.name}@{ctx.slot}#queue"
    with session_scope(ctx.session_factory) as session:
        if not locks.try_claim(session, claim, ctx.holder, job.lease):
            report.skipped.extend(course_ids)
            return report
    queued = _QUEUE[0](job.name, ctx.slot, course_ids)
    with session_scope(ctx.session_factory) as session:
        locks.mark_done(session, claim, ctx.holder)
    report.summary = f"queued {queued} of {len(course_ids)} course(s) for the workers"
    log.info("scheduled job queued", job=job.name, slot=ctx.slot, queued=queued)
    return report


def job_named(name: str) -> Job:
    """The job of that name (a queue worker receives names, not functions)."""
    for job in default_jobs():
        if job.name == name:
            return job
    raise KeyError(f"no scheduler job named {name!r}")


def _retention(ctx: JobContext) -> str:
    """Delete what is past its retention (#18, item 4); the counts go to the job's history."""
    from lti_app.services.retention import apply_retention, summary

    with session_scope(ctx.session_factory) as session:
        counts = apply_retention(
            session, ctx.settings.retention, model_root=ctx.settings.model_root
        )
    log.info("retention applied", counts=counts)
    return summary(counts)


def _purge_claims(ctx: JobContext) -> None:
    with session_scope(ctx.session_factory) as session:
        purged = locks.purge_expired(session)
    log.info("expired job claims purged", count=purged)


def _purge_lti(ctx: JobContext) -> None:
    from lti_app.services.lti_sessions import purge_expired_sessions
    from lti_app.services.lti_storage import purge_expired

    with session_scope(ctx.session_factory) as session:
        values = purge_expired(session)
        sessions = purge_expired_sessions(session)
    log.info("expired LTI state purged", sessions=sessions, values=values)


def sync_and_score(
    ctx: JobContext, course_id: int, *, trigger: str, request_id: int | None = None
) -> str:
    """Sync the course, then score it on the fresh data; returns the sync's status.

    Scoring runs only after a successful sync: features such as "days since last activity"
    computed on stale logs would make active students look absent.
    """
    from lti_app.tasks import run_course_sync, score_synced_course

    outcome = run_course_sync(
        ctx.settings, ctx.session_factory, course_id, trigger=trigger, request_id=request_id
    )
    if outcome.status == "succeeded":
        scored = score_synced_course(ctx.settings, ctx.session_factory, course_id)
        log.info("course scored", course_id=course_id, status=scored.status)
    return outcome.status


def _nightly_sync(ctx: JobContext, course_id: int) -> None:
    if sync_and_score(ctx, course_id, trigger="nightly") != "succeeded":
        # Recorded in the sync history; raising marks the course failed in the job report.
        raise RuntimeError("sync failed")


def _sync_requests(ctx: JobContext) -> None:
    """Run every pending "Sync now", one at a time, each claimed by exactly one process."""
    from lti_app.services import sync_requests

    while True:
        with session_scope(ctx.session_factory) as session:
            req = sync_requests.claim_next(session, ctx.holder)
            if req is None:
                return
            request_id, course_id, kind = req.id, req.course_id, req.kind
        try:
            if kind == "backfill":
                _backfill(ctx, course_id, request_id)
            else:
                sync_and_score(ctx, course_id, trigger="manual", request_id=request_id)
        except Exception:
            log.exception("requested sync crashed", course_id=course_id)
        finally:
            with session_scope(ctx.session_factory) as session:
                sync_requests.finish(session, request_id)


def _backfill(ctx: JobContext, course_id: int, request_id: int) -> None:
    """A teacher linked past offerings (#17): pull them, then the course, then score it."""
    from lti_app.tasks import run_backfill, score_synced_course

    outcomes = run_backfill(ctx.settings, ctx.session_factory, course_id, request_id)
    if outcomes[-1].status == "succeeded":
        scored = score_synced_course(ctx.settings, ctx.session_factory, course_id)
        log.info("course scored after backfill", course_id=course_id, status=scored.status)


def _weekly_digest(ctx: JobContext, course_id: int) -> dict[str, int]:
    """Send each teacher's due weekly digest of the course through Moodle messaging (#16 item
    4; off unless the teacher turned it on). One commit per teacher, so a crash never sends a
    digest twice; one teacher's failure does not stop the others, and the course is marked
    failed in the report when any failed. Returns the digests counted by outcome."""
    from lti_app.crypto import SecretBox
    from lti_app.models import Course, MoodleSite
    from lti_app.services import watch
    from lti_app.services.connections import moodle_client_for
    from lti_app.services.course_settings import risk_threshold_of

    now = utcnow()
    counts = {"sent": 0, "refused": 0, "unknown": 0, "failed": 0}
    with session_scope(ctx.session_factory) as session:
        course = session.get_one(Course, course_id)
        site = session.get_one(MoodleSite, course.site_id)
        if site.ws_token_encrypted is None:  # no web service to send through
            return counts
        teachers = [s.person_id for s in watch.due_subscriptions(session, course_id, now)]
        if not teachers:
            return counts
        client = moodle_client_for(ctx.settings, SecretBox.from_settings(ctx.settings), site)
        threshold = risk_threshold_of(course, ctx.settings.ml)
    reasons: list[str] = []
    for person_id in teachers:
        try:
            with session_scope(ctx.session_factory) as session:
                course = session.get_one(Course, course_id)
                site = session.get_one(MoodleSite, course.site_id)
                sub = watch.subscription(session, course_id, person_id)
                if sub is None or sub not in watch.due_subscriptions(session, course_id, now):
                    continue  # turned off, or sent, since the list was read
                outcome = watch.send_digest(session, client, site, course, sub, now, threshold)
            status, reason = outcome.status, outcome.reason
        except Exception as exc:  # a bug or the database: the other teachers still get theirs
            log.exception("weekly digest crashed", course_id=course_id, person_id=person_id)
            status, reason = "failed", f"{exc.__class__.__name__}: {exc}"
        counts[status] = counts.get(status, 0) + 1
        if status == "failed":
            reasons.append(reason)
            log.warning(
                "weekly digest not sent", course_id=course_id, person_id=person_id, reason=reason
            )
    log.info("weekly digests", course_id=course_id, counts=counts)
    if counts["failed"]:
        raise PartialFailureError(
            f"{counts['failed']} of {len(teachers)} weekly digest(s) failed: {reasons[0]}", counts
        )
    return counts


JOBS: tuple[Job, ...] = (
    Job(
        name="sync-requests",
        description='Run the "Sync now" requests made from the dashboards.',
        schedule="interval",
        run=_sync_requests,
        per_course=False,
        interval=timedelta(seconds=5),
    ),
    Job(
        name="nightly-sync",
        description="Pull each course's roster, grades and new log events, then score it.",
        schedule="nightly",
        run=_nightly_sync,
        lease=timedelta(hours=2),
    ),
    Job(
        name="weekly-digest",
        description="Send the teachers who asked for it their weekly at-risk digest through "
        "Moodle messaging, after the nightly scoring.",
        schedule="nightly",
        run=_weekly_digest,
        offset=timedelta(hours=2),
    ),
    Job(
        name="purge-lti",
        description="Delete expired LTI launch sessions, login states and nonces.",
        schedule="nightly",
        run=_purge_lti,
        per_course=False,
    ),
    Job(
        name="retention",
        description="Delete what is past its retention ([retention]: events, predictions, "
        "contacts and follow-ups after the course's end; audit and access logs by age).",
        schedule="nightly",
        run=_retention,
        per_course=False,
        offset=timedelta(hours=3),
    ),
    Job(
        name="purge-claims",
        description="Delete job claims whose lease has expired.",
        schedule="nightly",
        run=_purge_claims,
        per_course=False,
    ),
)


def default_jobs() -> tuple[Job, ...]:
    """The jobs the scheduler runs, in order."""
    return JOBS


class PollOverlapFilter(logging.Filter):
    """Drops APScheduler's "Execution of job … skipped: maximum number of running instances
    reached (1)" for the interval jobs (the "Sync now" poll).

    The poll runs every 5 seconds and one "Sync now" (sync and scoring) takes longer, so each
    request used to print that warning about five times. For a poll it is expected and harmless:
    the running instance takes every pending request before it returns, so a skipped tick loses
    nothing. It stays for the nightly jobs, where an overlap means a run longer than a day.
    """

    def __init__(self, job_ids: Sequence[str]) -> None:
        super().__init__()
        self.job_ids = frozenset(job_ids)

    def filter(self, record: logging.LogRecord) -> bool:
        if "maximum number of running instances" not in str(record.msg):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        return getattr(args[0] if args else None, "id", None) not in self.job_ids


def build_scheduler(
    settings: Settings, session_factory: sessionmaker[Session], jobs: Sequence[Job]
) -> Any:
    """An APScheduler `BlockingScheduler` with one trigger per job."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    tz = ZoneInfo(settings.scheduler.timezone)
    scheduler = BlockingScheduler(timezone=tz)
    holder = locks.holder_id()
    for job in jobs:

        def fire(job: Job = job) -> None:
            slot = (
                nightly_slot(settings)
                if job.schedule == "nightly"
                else utcnow().strftime("%Y-%m-%dT%H:%M:%S")
            )
            run_job(job, JobContext(settings, session_factory, holder, slot))

        at = nightly_time(settings, job)
        trigger: Any = (
            CronTrigger(hour=at.hour, minute=at.minute, timezone=tz)
            if job.schedule == "nightly"
            else IntervalTrigger(seconds=(job.interval or timedelta(minutes=1)).total_seconds())
        )
        scheduler.add_job(
            fire,
            trigger,
            id=job.name,
            name=job.description,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=3600,
        )
    aps_log = logging.getLogger("apscheduler.scheduler")
    for old in [f for f in aps_log.filters if isinstance(f, PollOverlapFilter)]:
        aps_log.removeFilter(old)
    aps_log.addFilter(PollOverlapFilter([j.name for j in jobs if j.schedule == "interval"]))
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    return scheduler

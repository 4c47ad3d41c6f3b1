"""`arche-predict scheduler`: the periodic jobs, in a process of their own."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import click

from lti_app.cli.common import CliContext, friendly_errors, pass_ctx

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from lti_app.config import Settings


@click.command("scheduler")
@click.option("--once", "once", metavar="JOB", default=None, help="Run JOB now, then exit.")
@click.option("--list", "list_jobs", is_flag=True, help="List the declared jobs and exit.")
@pass_ctx
@friendly_errors
def scheduler(ctx: CliContext, once: str | None, list_jobs: bool) -> None:
    """Run the periodic jobs (nightly sync and scoring) in this process.

    Several scheduler processes may run at once: every course is claimed in the database
    before it is processed, so each is processed exactly once per slot.
    """
    from lti_app.db import private_instance
    from lti_app.observability import configure_logging
    from lti_app.scheduler import (
        JobContext,
        build_scheduler,
        default_jobs,
        nightly_slot,
        nightly_time,
        run_job,
    )
    from lti_app.services.locks import holder_id

    settings = ctx.settings
    configure_logging(settings.app.log_level, settings.app.log_format)
    # APScheduler logs every run of the 5-second "Sync now" poll at INFO; our jobs log what
    # they do themselves.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    jobs = {job.name: job for job in default_jobs()}
    if list_jobs:
        for job in jobs.values():
            when = (
                f"nightly at {nightly_time(settings, job):%H:%M}"
                if job.schedule == "nightly"
                else (f"every {job.interval}")
            )
            click.echo(f"{job.name:20} {when:22} {job.description}")
        return
    # Training writes models there; and SQLite creates its file there when the engine is made.
    private_instance(settings.instance_dir.resolve(), settings.model_root)
    factory = ctx.session_factory
    # Until the command ends (a test's in-process runner included): no hook outlives it.
    click.get_current_context().with_resource(prebuild_pages(settings))
    if settings.scheduler.queue == "procrastinate":
        _use_queue(settings, factory)
    if once is not None:
        if once not in jobs:
            raise click.ClickException(f"unknown job '{once}'; known: {', '.join(jobs)}")
        report = run_job(
            jobs[once], JobContext(settings, factory, holder_id(), nightly_slot(settings))
        )
        click.echo(
            f"{report.job} slot {report.slot}: processed {report.processed}, "
            f"skipped (claimed elsewhere) {report.skipped}, failed {sorted(report.failed)}"
            + (f"; {report.summary}" if report.summary else "")
        )
        if report.failed:
            sys.exit(1)
        return
    if not settings.scheduler.enabled:
        raise click.ClickException("scheduler.enabled is false in the configuration")
    click.echo(f"scheduler started: {', '.join(jobs)}")
    build_scheduler(settings, factory, list(jobs.values())).start()


@click.command("worker")
@click.option(
    "--once",
    is_flag=True,
    help="Take jobs until the queue is empty, then exit (default: work until stopped).",
)
@click.option("--name", default=None, help="The worker's name in the logs and job history.")
@pass_ctx
@friendly_errors
def worker(ctx: CliContext, once: bool, name: str | None) -> None:
    """Take the nightly per-course jobs from the queue (scheduler.queue = "procrastinate").

    Run as many as the night needs, on as many machines as share the database: each takes one
    course at a time; a course is processed once, retried when its work fails, and taken back
    from a worker that died.
    """
    from lti_app.db import private_instance
    from lti_app.job_queue import QueueConfigError, make_app, run_worker
    from lti_app.observability import configure_logging

    settings = ctx.settings
    if settings.scheduler.queue != "procrastinate":
        raise click.ClickException(
            'scheduler.queue is "in_process": the scheduler does each course itself, there is '
            'no queue to take jobs from (set queue = "procrastinate", PostgreSQL only)'
        )
    configure_logging(settings.app.log_level, settings.app.log_format)
    private_instance(settings.instance_dir.resolve(), settings.model_root)
    # Until the command ends (a test's in-process runner included): no hook outlives it.
    click.get_current_context().with_resource(prebuild_pages(settings))
    try:
        app = make_app(settings, ctx.session_factory)
    except QueueConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    run_worker(app, name=name, wait=not once)


def prebuild_pages(settings: Settings) -> AbstractContextManager[None]:
    """While it is entered, each scoring in this process builds the course's dashboard for the
    web workers (#19, item 5)."""
    from lti_app.app import page_prebuilder
    from lti_app.tasks import after_scoring

    return after_scoring(page_prebuilder(settings))


def _use_queue(settings: Settings, factory: Any) -> None:
    """The nightly per-course jobs go to the Procrastinate queue (scheduler.queue)."""
    from lti_app.job_queue import QueueConfigError, defer_courses, make_app
    from lti_app.scheduler import use_queue

    try:
        app = make_app(settings, factory)
    except QueueConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    use_queue(lambda job, slot, course_ids: defer_courses(app, job, slot, course_ids))

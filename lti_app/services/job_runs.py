"""Each scheduled job's last run, by job name, for the admin page.

Claims (`services.locks`) are per slot and per course, and the 5-second "Sync now" poll claims
nothing, so they cannot say when a job last ran. `run_job` records its start and end here; two
scheduler processes may write the same row, and the latest write wins, which is what the page
shows. Like every service, nothing here commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import JobRun

#: The scheduler polls for "Sync now" requests every few seconds: a record newer than this says
#: a scheduler process is alive.
ALIVE_WITHIN = timedelta(minutes=2)


def record_start(session: Session, name: str, holder: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    row = session.get(JobRun, name)
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    JobRun(name=name, holder=holder, started_at=now, status="running", detail="")
                )
            return
        except IntegrityError:  # another scheduler process inserted it first
            row = session.get(JobRun, name, populate_existing=True)
            assert row is not None
    row.holder = holder
    row.started_at = now
    row.finished_at = None
    row.status = "running"
    row.detail = ""


def record_end(
    session: Session,
    name: str,
    holder: str,
    *,
    failed: str | None = None,
    summary: str | None = None,
) -> None:
    """Mark the run of `name` by `holder` finished (`failed`: a short reason; `summary`: what
    a successful run did, e.g. the retention job's counts)."""
    row = session.get(JobRun, name)
    if row is None or row.holder != holder:
        return  # another process started a newer run meanwhile: its record stands
    row.finished_at = utcnow()
    row.status = "failed" if failed else "ok"
    row.detail = (failed or summary or "")[:500]


def last_runs(session: Session) -> dict[str, JobRun]:
    return {row.name: row for row in session.scalars(select(JobRun))}


def scheduler_seen(runs: dict[str, JobRun], now: datetime | None = None) -> datetime | None:
    """When a scheduler process last recorded anything, if within `ALIVE_WITHIN`, else None."""
    now = now or utcnow()
    latest = max(
        (max(r.started_at, r.finished_at or r.started_at) for r in runs.values()), default=None
    )
    return latest if latest is not None and now - latest <= ALIVE_WITHIN else None

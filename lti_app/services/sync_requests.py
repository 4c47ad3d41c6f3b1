""" "Sync now": the dashboard records a request, the scheduler process claims and runs it.

A request is pending until a scheduler claims it (`picked_at`, set by a conditional UPDATE that
only one process can win), then linked to the `SyncRun` it started, whose committed page
counts are the progress the dashboard polls. A teacher who clicks twice gets the request
already under way, not a second sync.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import Course, SyncRequest, SyncRun

# A request picked up but never finished (its scheduler died) stops blocking new ones after this.
STALE_AFTER = timedelta(hours=2)


def open_request(session: Session, course_id: int) -> SyncRequest | None:
    """The course's request still waiting or running, if any."""
    return session.scalar(
        select(SyncRequest)
        .where(
            SyncRequest.course_id == course_id,
            SyncRequest.finished_at.is_(None),
            SyncRequest.requested_at > utcnow() - STALE_AFTER,
        )
        .order_by(SyncRequest.id.desc())
        .limit(1)
    )


def request_sync(
    session: Session, course: Course, person_id: int | None
) -> tuple[SyncRequest, bool]:
    """Ask for a sync of the course; returns (request, created)."""
    existing = open_request(session, course.id)
    if existing is not None:
        return existing, False
    req = SyncRequest(course_id=course.id, requested_by=person_id, requested_at=utcnow())
    session.add(req)
    session.flush()
    return req, True


def claim_next(session: Session, holder: str, now: datetime | None = None) -> SyncRequest | None:
    """Claim the oldest pending request for this process, or None when there is none."""
    now = now or utcnow()
    candidates = session.scalars(
        select(SyncRequest.id)
        .where(SyncRequest.picked_at.is_(None))
        .order_by(SyncRequest.requested_at, SyncRequest.id)
        .limit(5)
    ).all()
    for request_id in candidates:
        won = session.execute(
            update(SyncRequest)
            .where(SyncRequest.id == request_id, SyncRequest.picked_at.is_(None))
            .values(picked_at=now, picked_by=holder)
            .execution_options(synchronize_session=False)
        )
        if won.rowcount:  # type: ignore[attr-defined]
            return session.get_one(SyncRequest, request_id, populate_existing=True)
    return None


def attach_run(session: Session, request_id: int, run_id: int) -> None:
    req = session.get_one(SyncRequest, request_id)
    req.run_id = run_id


def finish(session: Session, request_id: int) -> None:
    session.get_one(SyncRequest, request_id).finished_at = utcnow()


def progress(session: Session, course_id: int) -> dict[str, Any]:
    """What the dashboard's progress bar shows: the latest request and its run's page counts."""
    req = session.scalar(
        select(SyncRequest)
        .where(SyncRequest.course_id == course_id)
        .order_by(SyncRequest.id.desc())
        .limit(1)
    )
    run = session.get(SyncRun, req.run_id) if req is not None and req.run_id else None
    if req is None:
        state = "idle"
    elif req.picked_at is None:
        state = "queued"
    elif req.finished_at is None:
        state = "running"
    else:
        state = "failed" if run is not None and run.status == "failed" else "done"
    fraction = None
    if run is not None and run.pages_total:
        fraction = min(1.0, run.pages_done / run.pages_total)
    steps = req.steps_total if req is not None else 1
    step = min(steps, req.steps_done + 1) if req is not None else 1
    if steps > 1 and req is not None and state == "running":
        # A backfill (#17): the bar spans every course it pulls, the current one partly done.
        fraction = (req.steps_done + (fraction or 0.0)) / steps
    if state == "done":
        fraction = 1.0
    return {
        "state": state,
        "kind": req.kind if req is not None else "sync",
        "step": step,
        "steps": steps,
        "request_id": req.id if req is not None else None,
        "requested_at": req.requested_at.isoformat() if req is not None else None,
        "pages_done": run.pages_done if run is not None else 0,
        "pages_total": run.pages_total if run is not None else None,
        "events_added": run.events_added if run is not None else 0,
        "fraction": fraction,
        "error_code": run.error_code if run is not None else None,
        "error_message": run.error_message if run is not None else None,
    }

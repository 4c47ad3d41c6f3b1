"""Claims in the database, so that several scheduler processes never do the same work twice.

A claim is a row of `job_lock` whose primary key names one unit of work, e.g.
``nightly@2026-11-23T02:30#course:12``. Inserting it is atomic on every backend: the first
process wins, the others get an integrity error and move on. A claim has a lease (`expires_at`);
a process that died mid-work leaves a claim that another may take over once the lease expired.
A finished claim is kept, with a long lease, so a late second process does not redo the work.

Like every service, these functions never commit: the caller commits right after a successful
claim, so that the other processes see it.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import JobLock

DONE_LEASE = timedelta(days=7)


def holder_id() -> str:
    """Who holds a claim: host and process id, for the admin page and for debugging."""
    return f"{socket.gethostname()}:{os.getpid()}"


def try_claim(
    session: Session, name: str, holder: str, lease: timedelta, now: datetime | None = None
) -> bool:
    """Claim `name` for `holder`, or take over an expired claim. True when the claim is ours."""
    now = now or utcnow()
    try:
        with session.begin_nested():
            session.add(JobLock(name=name, holder=holder, acquired_at=now, expires_at=now + lease))
        return True
    except IntegrityError:
        pass
    taken = session.execute(
        update(JobLock)
        .where(JobLock.name == name, JobLock.expires_at < now)
        .values(holder=holder, acquired_at=now, expires_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def renew(session: Session, name: str, holder: str, lease: timedelta) -> bool:
    """Extend our lease while long work goes on; False if the claim was lost to another."""
    res = session.execute(
        update(JobLock)
        .where(JobLock.name == name, JobLock.holder == holder)
        .values(expires_at=utcnow() + lease)
        .execution_options(synchronize_session=False)
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]


def mark_done(session: Session, name: str, holder: str) -> None:
    """Keep the claim after the work is done so that nobody redoes it for the same slot."""
    renew(session, name, holder, DONE_LEASE)


def release(session: Session, name: str, holder: str) -> None:
    """Give a claim up (the work failed and may be retried by anyone)."""
    session.execute(delete(JobLock).where(JobLock.name == name, JobLock.holder == holder))


def purge_expired(session: Session, now: datetime | None = None) -> int:
    res = session.execute(delete(JobLock).where(JobLock.expires_at < (now or utcnow())))
    return int(res.rowcount)  # type: ignore[attr-defined]

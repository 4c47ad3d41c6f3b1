"""Server-side sessions opened by LTI launches.

The raw session id is random and only ever held by the browser (cookie) or inside a signed
launch token; the database keeps its SHA-256. A session is bound at launch to one platform,
one course (or none, for an administrator), one person and one role, and never changes: a
launch in another course opens another session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.db import deleted_rows, utcnow
from lti_app.models import LtiSession


def hash_sid(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def open_session(
    session: Session,
    *,
    platform_id: int,
    course_id: int | None,
    person_id: int,
    role: str,
    is_admin: bool,
    message_type: str,
    launch_id: str | None,
    lifetime: int,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> tuple[LtiSession, str]:
    """Create a session and return it with its raw id (to hand to the browser, once)."""
    now = now or utcnow()
    sid = secrets.token_urlsafe(32)
    row = LtiSession(
        sid_hash=hash_sid(sid),
        platform_id=platform_id,
        course_id=course_id,
        person_id=person_id,
        role=role,
        is_admin=is_admin,
        message_type=message_type,
        launch_id=launch_id,
        csrf_token=secrets.token_urlsafe(32),
        details=details or {},
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    session.add(row)
    session.flush()
    return row, sid


def find_session(session: Session, sid: str, *, now: datetime | None = None) -> LtiSession | None:
    if not sid or len(sid) > 200 or "\x00" in sid:
        return None
    return session.scalar(
        select(LtiSession).where(
            LtiSession.sid_hash == hash_sid(sid), LtiSession.expires_at > (now or utcnow())
        )
    )


def purge_expired_sessions(session: Session, *, now: datetime | None = None) -> int:
    result = session.execute(
        delete(LtiSession)
        .where(LtiSession.expires_at <= (now or utcnow()))
        .execution_options(synchronize_session=False)
    )
    return deleted_rows(result)


def find_session_by_ref(
    session: Session, row_id: int, fingerprint: str, *, now: datetime | None = None
) -> LtiSession | None:
    """A live session named by a launch token (row id and hash fingerprint); the caller compares
    the fingerprint in constant time."""
    if not 0 < row_id < 2**31 or not fingerprint:
        return None
    return session.scalar(
        select(LtiSession).where(LtiSession.id == row_id, LtiSession.expires_at > (now or utcnow()))
    )


def fork_session(
    session: Session, parent: LtiSession, *, now: datetime | None = None
) -> tuple[LtiSession, str]:
    """A new session with the parent's rights and end, under a new random id.

    Resuming a launch in a new window turns a launch token into a cookie. The cookie gets a
    value of its own, never derivable from the token, and one that can be revoked without
    ending the session in Moodle's frame."""
    row, sid = open_session(
        session,
        platform_id=parent.platform_id,
        course_id=parent.course_id,
        person_id=parent.person_id,
        role=parent.role,
        is_admin=parent.is_admin,
        message_type=parent.message_type,
        launch_id=parent.launch_id,
        lifetime=0,
        details={**(parent.details or {}), "binding": "resumed", "resumed_from": parent.id},
        now=now,
    )
    row.expires_at = parent.expires_at
    session.flush()
    return row, sid

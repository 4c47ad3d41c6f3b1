"""Audit trail for security-relevant facts (rejected launches, key rotations, registrations).

Callers pass a short reason code and a few identifying fields, never a token or a secret: the
audit table is read by administrators and kept longer than logs.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from lti_app.models import AuditEvent

_MAX_DETAIL = 200


def _clip(value: Any) -> Any:
    """Keep attacker-supplied values short: an audit row must not become a storage channel."""
    if isinstance(value, str):
        return value.replace("\x00", "")[:_MAX_DETAIL]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no Infinity/NaN: PostgreSQL refuses them
    if isinstance(value, int | float | bool) or value is None:
        return value
    return str(value).replace("\x00", "")[:_MAX_DETAIL]


def record(
    session: Session,
    action: str,
    outcome: str,
    reason: str | None = None,
    *,
    platform_id: int | None = None,
    person_id: int | None = None,
    course_id: int | None = None,
    remote_addr: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        outcome=outcome,
        reason=reason,
        platform_id=platform_id,
        person_id=person_id,
        course_id=course_id,
        remote_addr=(remote_addr or "")[:64] or None,
        details={k: _clip(v) for k, v in (details or {}).items()} or None,
    )
    session.add(event)
    session.flush()
    return event

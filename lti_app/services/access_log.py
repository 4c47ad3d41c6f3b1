"""The access log (issue #18, item 5): who viewed whose prediction, and when.

Recorded where a prediction is read: a teacher's page of one student (`student_page`), a
learner's own page (`learner_page`), a course table exported as CSV or Excel (`export`, every
student at once: no subject), the API's read of one student (`api_student`) or of the list
(`api_students`). A what-if is not recorded: it computes on an estimate its page or API read
already recorded. Administrators read it on the admin page; its retention is
`retention.access_log_days`. Services never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from lti_app.db import utcnow
from lti_app.models import ACCESS_KINDS, AccessLog, Course, Person


def record(
    session: Session,
    *,
    viewer_id: int | None,
    course_id: int | None,
    kind: str,
    subject_id: int | None = None,
) -> None:
    """Note one read (added to the request's transaction)."""
    if kind not in ACCESS_KINDS:
        raise ValueError(f"unknown access kind {kind!r}")
    session.add(
        AccessLog(
            at=utcnow(), viewer_id=viewer_id, subject_id=subject_id, course_id=course_id, kind=kind
        )
    )


@dataclass(frozen=True)
class AccessRow:
    """One read as the admin page lists it."""

    at: datetime
    viewer: str
    subject: str
    course: str
    kind: str


def latest(session: Session, limit: int = 100) -> list[AccessRow]:
    """The newest reads, newest first, with names (empty for a person since erased)."""
    viewer, subject = aliased(Person), aliased(Person)
    rows = session.execute(
        select(AccessLog, viewer.fullname, subject.fullname, Course.shortname)
        .outerjoin(viewer, viewer.id == AccessLog.viewer_id)
        .outerjoin(subject, subject.id == AccessLog.subject_id)
        .outerjoin(Course, Course.id == AccessLog.course_id)
        .order_by(AccessLog.at.desc(), AccessLog.id.desc())
        .limit(limit)
    ).all()
    return [AccessRow(row.at, v or "", s or "", c or "", row.kind) for row, v, s, c in rows]


__all__ = ["AccessRow", "latest", "record"]

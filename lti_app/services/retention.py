"""Retention (issue #18, item 4): what is kept how long, applied each night by the scheduler's
`retention` job, its counts reported in the job's history on the admin page.

Course data (log events, predictions with their features and explanations, contacts and
follow-ups) is counted from the course's end date: a course without one is never purged by
age. The audit log and the access log are counted from each row's date. Model artifacts of
versions marked after an erasure (`model_version.erased_data_at`) go once the version is no
longer active. Expired LTI sessions are the `purge-lti` job's. Each limit at 0 keeps for ever.

Services never commit.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.config import RetentionSettings
from lti_app.db import deleted_rows, utcnow
from lti_app.models import (
    AccessLog,
    AuditEvent,
    Contact,
    Course,
    FollowUp,
    LogEvent,
    ModelVersion,
    PageBuild,
    Prediction,
)


def _ended_before(session: Session, cutoff: datetime) -> list[Course]:
    return list(
        session.scalars(select(Course).where(Course.end_at.is_not(None), Course.end_at < cutoff))
    )


def apply_retention(
    session: Session,
    settings: RetentionSettings,
    *,
    model_root: Path | None = None,
    now: datetime | None = None,
) -> dict[str, int]:
    """Delete what is past its retention; returns the rows (or artifacts) deleted by kind."""
    now = now or utcnow()
    counts: dict[str, int] = {}

    def days(n: int) -> datetime | None:
        return None if n <= 0 else now - timedelta(days=n)

    cutoff = days(settings.events_days_after_end)
    if cutoff is not None:
        done = 0
        for course in _ended_before(session, cutoff):
            done += deleted_rows(
                session.execute(
                    delete(LogEvent).where(
                        LogEvent.site_id == course.site_id,
                        LogEvent.courseid == course.moodle_course_id,
                    )
                )
            )
        counts["log_event"] = done
    # Course records, from the course's end: each kind by its own limit.
    for kind, limit in (
        (Prediction, settings.predictions_days_after_end),
        (Contact, settings.follow_ups_days_after_end),
        (FollowUp, settings.follow_ups_days_after_end),
    ):
        cutoff = days(limit)
        if cutoff is None:
            continue
        ids = [c.id for c in _ended_before(session, cutoff)]
        counts[kind.__tablename__] = (
            deleted_rows(session.execute(delete(kind).where(kind.course_id.in_(ids)))) if ids else 0
        )
    # Logs of who did what, from each row's date.
    for log_kind, limit in (
        (AuditEvent, settings.audit_days),
        (AccessLog, settings.access_log_days),
    ):
        cutoff = days(limit)
        if cutoff is not None:
            counts[log_kind.__tablename__] = deleted_rows(
                session.execute(delete(log_kind).where(log_kind.at < cutoff))
            )
    # Built pages (`shared_pages`) are a cache: a week old, they go (built again when viewed).
    counts["page_build"] = deleted_rows(
        session.execute(delete(PageBuild).where(PageBuild.built_at < utcnow() - timedelta(days=7)))
    )
    if model_root is not None:
        removed = 0
        for version in session.scalars(
            select(ModelVersion).where(
                ModelVersion.erased_data_at.is_not(None), ModelVersion.active.is_(False)
            )
        ):
            folder = (model_root / version.artifact_path).resolve()
            if model_root.resolve() in folder.parents and folder.is_dir():
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        counts["model_artifact"] = removed
        # Training sets kept for re-scorings (`training_cache`) no course used for a month.
        from lti_app.services import training_cache

        counts["training_cache"] = training_cache.clear(
            model_root, older_than_days=training_cache.STALE_DAYS
        )
    session.flush()
    return counts


def summary(counts: dict[str, int]) -> str:
    """The job history's line: "deleted: log_event 1200, prediction 300" (or "nothing")."""
    done = [f"{k} {v}" for k, v in sorted(counts.items()) if v]
    return "deleted: " + ", ".join(done) if done else "nothing past its retention"


__all__ = ["apply_retention", "summary"]

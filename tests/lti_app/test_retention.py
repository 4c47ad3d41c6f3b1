"""Retention (#18, item 4) on SQLite and PostgreSQL: each kind of record goes exactly when its
limit says, counted from the course's end (course data) or the row's date (audit, access log),
nothing else moves, 0 keeps for ever, and the nightly job reports its counts in its history.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.config import RetentionSettings
from lti_app.db import utcnow
from lti_app.models import (
    AccessLog,
    AuditEvent,
    Contact,
    Course,
    Enrolment,
    FollowUp,
    LogEvent,
    MoodleSite,
    Prediction,
)
from lti_app.services.course_data import store_simulated_offering
from lti_app.services.retention import apply_retention, summary
from simulation.course import simulate_course


def _count(db_session: Session, model: type, *where: Any) -> int:
    query: Any = select(func.count()).select_from(model).where(*where)
    return int(db_session.scalar(query) or 0)


def _world(db_session: Session) -> tuple[Course, Course]:
    """Two offerings of a course: the old one ended 800 days ago, the recent one 100 days ago,
    each with events, a prediction, a contact and a follow-up."""
    simulated = simulate_course(n_past=2, n_students=12, seed=3, current_progress=None)
    site = MoodleSite(base_url="https://moodle.example.invalid", name="test")
    db_session.add(site)
    db_session.flush()
    rows = [
        store_simulated_offering(db_session, site, off, with_grades=True)
        for off in simulated.offerings
    ]
    now = utcnow()
    for course, ended_days_ago in zip(rows, (800, 100), strict=True):
        course.end_at = now - timedelta(days=ended_days_ago)
        course.start_at = course.end_at - timedelta(weeks=12)
        student = db_session.scalars(
            select(Enrolment.person_id).where(Enrolment.course_id == course.id)
        ).first()
        assert student is not None
        db_session.add_all(
            [
                Prediction(course_id=course.id, person_id=student, as_of=course.end_at,
                           features={}),
                Contact(course_id=course.id, person_id=student, batch="b", channel="message",
                        template="checkin", text="Bonjour", status="sent"),
                FollowUp(course_id=course.id, person_id=student, status="met"),
            ]
        )  # fmt: skip
    db_session.add_all(
        [
            AuditEvent(action="lti.launch", outcome="accepted", at=now - timedelta(days=400)),
            AuditEvent(action="lti.launch", outcome="accepted", at=now - timedelta(days=10)),
            AccessLog(kind="export", course_id=rows[1].id, at=now - timedelta(days=400)),
            AccessLog(kind="export", course_id=rows[1].id, at=now - timedelta(days=10)),
        ]
    )
    db_session.flush()
    return rows[0], rows[1]


def _events(db_session: Session, course: Course) -> int:
    return _count(
        db_session,
        LogEvent,
        LogEvent.site_id == course.site_id,
        LogEvent.courseid == course.moodle_course_id,
    )


def test_each_kind_goes_exactly_at_its_limit(db_session: Session, tmp_path: Path) -> None:
    old, recent = _world(db_session)
    events_old, events_recent = _events(db_session, old), _events(db_session, recent)
    assert events_old > 0
    assert events_recent > 0
    limits = RetentionSettings(
        events_days_after_end=365,
        predictions_days_after_end=365,
        follow_ups_days_after_end=365,
        audit_days=365,
        access_log_days=365,
    )
    counts = apply_retention(db_session, limits, model_root=tmp_path)
    assert counts == {
        "log_event": events_old,
        "prediction": 1,
        "contact": 1,
        "follow_up": 1,
        "audit_event": 1,
        "access_log": 1,
        "model_artifact": 0,
        "training_cache": 0,
        "page_build": 0,
    }
    assert _events(db_session, old) == 0
    assert _events(db_session, recent) == events_recent
    for model in (Prediction, Contact, FollowUp):
        assert _count(db_session, model, model.course_id == old.id) == 0
        assert _count(db_session, model, model.course_id == recent.id) == 1
    assert _count(db_session, AuditEvent) == 1
    assert _count(db_session, AccessLog) == 1
    assert summary(counts).startswith("deleted: access_log 1, audit_event 1, contact 1")
    # A second night finds nothing more.
    again = apply_retention(db_session, limits, model_root=tmp_path)
    assert sum(again.values()) == 0
    assert summary(again) == "nothing past its retention"


@pytest.mark.parametrize("days", [0, 1000])
def test_zero_or_a_longer_limit_keeps_everything(db_session: Session, days: int) -> None:
    old, _recent = _world(db_session)
    before = (
        _events(db_session, old),
        _count(db_session, Prediction),
        _count(db_session, AuditEvent),
    )
    limits = RetentionSettings(
        events_days_after_end=days,
        predictions_days_after_end=days,
        follow_ups_days_after_end=days,
        audit_days=days,
        access_log_days=days,
    )
    counts = apply_retention(db_session, limits)
    assert sum(counts.values()) == 0
    after = (
        _events(db_session, old),
        _count(db_session, Prediction),
        _count(db_session, AuditEvent),
    )
    assert after == before


def test_the_nightly_job_reports_its_counts_in_its_history(tmp_path: Path) -> None:
    from lti_app import migrate
    from lti_app.config import Settings
    from lti_app.db import make_engine, make_session_factory, session_scope
    from lti_app.models import JobRun
    from lti_app.scheduler import JobContext, default_jobs, nightly_slot, run_job

    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        session.add(AuditEvent(action="old", outcome="accepted", at=utcnow() - timedelta(days=999)))
    settings = Settings()
    job = next(j for j in default_jobs() if j.name == "retention")
    run_job(job, JobContext(settings, factory, "test", nightly_slot(settings)))
    with session_scope(factory) as session:
        row = session.get_one(JobRun, "retention")
        assert (row.status, row.detail) == ("ok", "deleted: audit_event 1")
    engine.dispose()

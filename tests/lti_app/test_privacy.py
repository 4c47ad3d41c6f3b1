"""A person's rights (#18, item 3) on SQLite and PostgreSQL, on a scored simulated course with
contacts, follow-ups, audit events and access-log rows about its students.

Invariants: the export, written as JSON and read back, is what the database holds about the
person (row for row, per section); after an erasure no row of any table names the person (no
person id in any column that refers to a person, no log event of their Moodle id, no text or
JSON holding their name, e-mail or LTI identity), what others did stays (a teacher's contact
log keeps its other rows), and the model versions that learned from the person are marked and
not reused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import String, Text, select
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from lti_app.db import Base, utcnow
from lti_app.models import (
    AccessLog,
    AuditEvent,
    Contact,
    Course,
    Enrolment,
    FollowUp,
    Grade,
    LogEvent,
    LtiPlatform,
    LtiSession,
    ModelVersion,
    MoodleSite,
    Person,
    Prediction,
)
from lti_app.services.course_data import store_simulated_course
from lti_app.services.privacy import erase_person, export_person
from lti_app.services.scoring import score_course
from simulation.course import simulate_course
from tests.lti_app.lti.scored_course import FAST


def _scored(db_session: Session, tmp_path: Path) -> tuple[Course, list[Course]]:
    simulated = simulate_course(n_past=2, n_students=25, seed=5, current_progress=0.5)
    site = MoodleSite(base_url="https://moodle.example.invalid", name="test")
    db_session.add(site)
    db_session.flush()
    course, past = store_simulated_course(db_session, site, simulated)
    assert simulated.current is not None
    assert simulated.current.now is not None
    outcome = score_course(
        db_session, course, settings=FAST, model_root=tmp_path,
        now=simulated.current.now.to_pydatetime(),
    )  # fmt: skip
    assert outcome.status == "scored", outcome.message
    return course, list(past)


def _students(db_session: Session, course: Course) -> list[Person]:
    return list(
        db_session.scalars(
            select(Person)
            .join(Enrolment, Enrolment.person_id == Person.id)
            .where(Enrolment.course_id == course.id, Enrolment.role == "student")
            .order_by(Person.id)
        )
    )


def _about(db_session: Session, course: Course, student: Person, teacher: Person) -> None:
    """What the teacher actions and the pages leave about a student."""
    student.fullname = "Zébulon Quetzalcoatl"  # unique: a namesake would defeat the scan
    student.email = "zebulon.q@example.invalid"
    student.lti_sub = "lti-sub-zebulon"
    prediction = db_session.scalars(
        select(Prediction).where(Prediction.person_id == student.id)
    ).first()
    platform = LtiPlatform(
        site_id=course.site_id, name="Moodle", issuer="https://moodle.example.invalid",
        client_id="c", auth_login_url="https://moodle.example.invalid/auth",
        auth_token_url="https://moodle.example.invalid/token",
        key_set_url="https://moodle.example.invalid/certs",
    )  # fmt: skip
    db_session.add(platform)
    db_session.flush()
    db_session.add_all(
        [
            Contact(course_id=course.id, person_id=student.id, sent_by=teacher.id, batch="b1",
                    channel="message", template="checkin", text="Bonjour Zébulon",
                    status="sent", prediction_id=prediction.id if prediction else None),
            FollowUp(course_id=course.id, person_id=student.id, author_id=teacher.id,
                     status="contacted", note="Called Zébulon Quetzalcoatl"),
            AuditEvent(action="contact.send", outcome="accepted", person_id=teacher.id,
                       course_id=course.id,
                       details={"student": student.id, "name": "Zébulon Quetzalcoatl"}),
            AuditEvent(action="lti.launch", outcome="accepted", person_id=student.id,
                       remote_addr="192.0.2.7", details={"sub": "lti-sub-zebulon"}),
            AccessLog(viewer_id=teacher.id, subject_id=student.id, course_id=course.id,
                      kind="student_page"),
            AccessLog(viewer_id=student.id, subject_id=student.id, course_id=course.id,
                      kind="learner_page"),
            LtiSession(sid_hash="h" * 64, platform_id=platform.id, course_id=course.id,
                       person_id=student.id, role="learner", csrf_token="c" * 32,
                       message_type="LtiResourceLinkRequest", launch_id="launch-1",
                       expires_at=utcnow()),
        ]
    )  # fmt: skip
    db_session.flush()


def _person_columns() -> list[tuple[Any, Any]]:
    """(table, column) for every column that refers to a person."""
    return [
        (table, column)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        for fk in column.foreign_keys
        if fk.target_fullname == "person.id"
    ]


def _text_columns() -> list[tuple[Any, Any]]:
    return [
        (table, column)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, String | Text | JSON)
    ]


def _traces(db_session: Session, person: dict[str, Any], uid: int | None) -> list[str]:
    """Every place the erased person is still named."""
    found = []
    pid = person["id"]
    for table, column in _person_columns():
        n = db_session.execute(select(table).where(column == pid)).first()
        if n is not None:
            found.append(f"{table.name}.{column.name}")
    needles = [v for v in (person["fullname"], person["email"], person["lti_sub"]) if v]
    for table, column in _text_columns():
        for (value,) in db_session.execute(select(column).select_from(table)).all():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            if any(n in text for n in needles):
                found.append(f"{table.name}.{column.name} names them")
    if uid is not None:
        if db_session.execute(select(LogEvent.id).where(LogEvent.userid == uid)).first():
            found.append("log_event.userid")
        if db_session.execute(select(LogEvent.id).where(LogEvent.relateduserid == uid)).first():
            found.append("log_event.relateduserid")
    return found


def test_export_round_trips_and_erasure_leaves_no_trace(
    db_session: Session, tmp_path: Path
) -> None:
    course, _past = _scored(db_session, tmp_path)
    students = _students(db_session, course)
    student, other = students[0], students[1]
    teacher = Person(site_id=course.site_id, moodle_user_id=3, fullname="Teacher One")
    db_session.add(teacher)
    db_session.flush()
    _about(db_session, course, student, teacher)
    other_contact = Contact(course_id=course.id, person_id=other.id, sent_by=teacher.id,
                            batch="b1", channel="message", template="checkin",
                            text="Bonjour", status="sent")  # fmt: skip
    db_session.add(other_contact)
    db_session.flush()

    exported = export_person(db_session, student)
    assert json.loads(json.dumps(exported, ensure_ascii=False)) == exported  # plain JSON
    uid = student.moodle_user_id
    n_events = len(
        db_session.execute(
            select(LogEvent.id).where(LogEvent.site_id == student.site_id, LogEvent.userid == uid)
        ).all()
    )
    assert n_events > 0
    assert len([e for e in exported["events"] if e["userid"] == uid]) == n_events
    stored_predictions = db_session.scalars(
        select(Prediction).where(Prediction.person_id == student.id)
    ).all()
    assert [p["id"] for p in exported["predictions"]] == [
        p.id for p in sorted(stored_predictions, key=lambda p: p.as_of)
    ]
    assert all(p["features"] for p in exported["predictions"])
    assert [c["text"] for c in exported["contacts_received"]] == ["Bonjour Zébulon"]
    assert [f["note"] for f in exported["follow_ups_about"]] == ["Called Zébulon Quetzalcoatl"]
    assert {a["kind"] for a in exported["access_log_as_subject"]} == {
        "student_page",
        "learner_page",
    }
    assert exported["lti_sessions"]
    assert "csrf_token" not in exported["lti_sessions"][0]
    assert exported["person"]["email"] == "zebulon.q@example.invalid"

    report = erase_person(db_session, student)
    db_session.flush()
    assert _traces(db_session, exported["person"], uid) == []
    assert report.deleted["prediction"] == len(stored_predictions)
    assert report.deleted["log_event"] == n_events
    # What others did stays: the teacher's other contact, the teacher's audit event (scrubbed).
    assert db_session.get(Contact, other_contact.id) is not None
    kept = db_session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.send")).one()
    assert kept.person_id == teacher.id
    assert kept.details == {"student": None, "name": "[erased]"}
    assert db_session.get(Person, teacher.id) is not None


def test_erasing_a_past_student_marks_the_models_that_learned_from_them(
    db_session: Session, tmp_path: Path
) -> None:
    course, past = _scored(db_session, tmp_path)
    past_student = _students(db_session, past[0])[0]
    assert db_session.scalars(
        select(Grade).where(Grade.person_id == past_student.id)
    ).first() is not None  # fmt: skip
    versions = db_session.scalars(
        select(ModelVersion).where(ModelVersion.course_id == course.id)
    ).all()
    assert versions
    assert all(v.erased_data_at is None for v in versions)
    exported = export_person(db_session, past_student)
    assert exported["grades"]
    report = erase_person(db_session, past_student)
    db_session.flush()
    assert sorted(report.marked_versions) == sorted(v.version for v in versions)
    assert all(v.erased_data_at is not None for v in versions)
    assert _traces(db_session, exported["person"], past_student.moodle_user_id) == []
    # The next scoring retrains (the data changed, and a marked version is never reused).
    simulated_now = max(p.as_of for p in db_session.scalars(select(Prediction)))
    again = score_course(db_session, course, settings=FAST, model_root=tmp_path, now=simulated_now)
    assert again.reused_model is False


def test_an_objection_outlives_the_erasure_of_a_learner_still_enrolled(
    db_session: Session,
) -> None:
    """Erasing a learner who had opted out keeps only their Moodle user id and the course; the
    next roster sync brings them back opted out, not with their data used again."""
    from lti_app.models import KeptObjection, LearnerChoice
    from lti_app.services.course_data import student_roster
    from lti_app.services.sync import sync_roster
    from tests.lti_app.test_fairness_audit import _user
    from tests.lti_app.test_roster_grades import _course

    course = _course(db_session)
    other = Course(site_id=course.site_id, moodle_course_id=10, shortname="D")
    db_session.add(other)
    db_session.flush()
    roster = [_user(41), _user(42)]
    sync_roster(db_session, course, roster)
    sync_roster(db_session, other, roster)
    learner = db_session.scalars(select(Person).where(Person.moodle_user_id == 41)).one()
    db_session.add_all(
        [
            LearnerChoice(course_id=course.id, person_id=learner.id, choice="out"),
            LearnerChoice(course_id=other.id, person_id=learner.id, choice="in"),
        ]
    )
    db_session.flush()
    report = erase_person(db_session, learner)
    db_session.flush()
    assert report.kept_objections == 1
    kept = db_session.scalars(select(KeptObjection)).all()
    assert [(k.course_id, k.moodle_user_id) for k in kept] == [(course.id, 41)]
    assert db_session.scalars(select(LearnerChoice)).all() == []

    sync_roster(db_session, course, roster)
    back = db_session.scalars(select(Person).where(Person.moodle_user_id == 41)).one()
    assert back.id != learner.id
    choices = db_session.execute(
        select(LearnerChoice.course_id, LearnerChoice.person_id, LearnerChoice.choice)
    ).all()
    assert [tuple(c) for c in choices] == [(course.id, back.id, "out")]  # the "in" is not kept
    assert db_session.scalars(select(KeptObjection)).all() == []
    assert student_roster(db_session, course)["userid"].tolist() == [42]


def test_an_objection_comes_back_by_every_way_a_learner_does(db_session: Session) -> None:
    """Not only the web-service roster: the LTI roster (NRPS) and a CSV log import bring an
    erased learner back too, and their objection with them."""
    from lti_app.models import KeptObjection, LearnerChoice
    from lti_app.services.imports import _link_people
    from lti_app.services.nrps import store_members
    from tests.lti_app.test_roster_grades import _course

    course = _course(db_session)
    for uid, comes_back in ((51, "nrps"), (52, "csv")):
        learner = Person(site_id=course.site_id, moodle_user_id=uid, fullname=f"L {uid}")
        db_session.add(learner)
        db_session.flush()
        db_session.add(LearnerChoice(course_id=course.id, person_id=learner.id, choice="out"))
        db_session.flush()
        erase_person(db_session, learner)
        db_session.flush()
        if comes_back == "nrps":
            member = {"user_id": str(uid), "name": f"L {uid}", "roles": ["Learner"]}
            store_members(db_session, course, [member])
        else:
            _link_people(db_session, course, {uid: f"L {uid}"})
        back = db_session.scalars(select(Person).where(Person.moodle_user_id == uid)).one()
        choice = db_session.scalar(
            select(LearnerChoice.choice).where(LearnerChoice.person_id == back.id)
        )
        assert choice == "out", comes_back
    assert db_session.scalars(select(KeptObjection)).all() == []

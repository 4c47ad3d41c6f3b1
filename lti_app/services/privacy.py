"""A person's rights over what the tool stores (issue #18, item 3): everything about one person
as JSON (`export_person`), and its erasure (`erase_person`).

What belongs to a person: their row (`person`); their enrolments, course visits, digest
subscriptions, LTI sessions, Moodle group memberships, coursework states; their grades; their
log events (by their Moodle user id on the site, and as the related user of others' events);
the features, predictions and explanations computed for them; the contacts and follow-ups about
them; the contacts, follow-ups, pass marks, links and sync requests they made as a teacher; the
audit events of their actions; the access log of who viewed their predictions and of what they
viewed.

Erasure deletes what is about them and unlinks what they did (a teacher's note about a student
stays, without its author). Audit events of their actions are kept for security, but lose the
person, the address and any mention of their name, e-mail or LTI identity. Model versions that
learned from their data are marked (`model_version.erased_data_at`): never reused, so the next
scoring retrains on what is left, and their artifacts go once they are no longer active
(`retention`). A person still enrolled in Moodle comes back at the next sync: erasure removes
what the tool holds, and opting out (#18, item 2) is how to stop it being used again. Their
opt-outs therefore outlive the erasure, under the Moodle user id alone (`kept_objection`), and
come back with them (`sync.upsert_people`).

Services never commit: the CLI and the admin page commit the whole erasure at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from lti_app.db import Base, deleted_rows, utcnow
from lti_app.models import (
    AccessLog,
    AuditEvent,
    Contact,
    Course,
    CourseLineage,
    CourseVisit,
    CourseworkItem,
    CourseworkStatus,
    DigestSubscription,
    Enrolment,
    FollowUp,
    Grade,
    GradeItem,
    KeptObjection,
    LearnerChoice,
    LogEvent,
    LtiSession,
    ModelVersion,
    MoodleGroup,
    MoodleGroupMember,
    PageBuild,
    Person,
    PersonAttribute,
    Prediction,
    SyncRequest,
)

#: The export's format, for whoever reads it back.
EXPORT_FORMAT = "arche-predict.person-export/1"
#: Columns never exported: secrets of a session, not data about the person.
_SECRET_COLUMNS = frozenset({"sid_hash", "csrf_token"})


class PrivacyError(ValueError):
    """A person that cannot be found or acted on, worded for the admin."""


def find_person(
    session: Session,
    *,
    person_id: int | None = None,
    moodle_user_id: int | None = None,
    site_id: int | None = None,
) -> Person:
    """The person by the tool's id, or by Moodle user id (and site, when several hold it)."""
    if person_id is not None:
        person = session.get(Person, person_id)
        if person is None:
            raise PrivacyError(f"no person with id {person_id}")
        return person
    if moodle_user_id is None:
        raise PrivacyError("name the person: --person ID, or --moodle-user ID")
    query = select(Person).where(Person.moodle_user_id == moodle_user_id)
    if site_id is not None:
        query = query.where(Person.site_id == site_id)
    found = list(session.scalars(query))
    if not found:
        raise PrivacyError(f"no person with Moodle user id {moodle_user_id}")
    if len(found) > 1:
        raise PrivacyError(
            f"Moodle user id {moodle_user_id} exists on {len(found)} sites: add --site URL"
        )
    return found[0]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _row(obj: Base) -> dict[str, Any]:
    """A stored row as JSON-ready columns (secrets left out)."""
    table = obj.__table__
    return {
        c.name: _plain(getattr(obj, c.key))
        for c in table.columns
        if c.name not in _SECRET_COLUMNS and hasattr(obj, c.key)
    }


def _rows(objs: Iterable[Base]) -> list[dict[str, Any]]:
    return [_row(o) for o in objs]


def _person_events(person: Person) -> Any:
    uid = person.moodle_user_id
    return or_(LogEvent.userid == uid, LogEvent.relateduserid == uid)


def export_person(session: Session, person: Person) -> dict[str, Any]:
    """Everything stored about `person`, as JSON-ready data (`EXPORT_FORMAT`). Each section is a
    list of the stored rows, column by column; the courses and grade items they refer to are
    named alongside, so the export reads without the database."""
    pid = person.id
    courses = {c.id: c for c in session.scalars(select(Course))}
    events = (
        list(
            session.scalars(
                select(LogEvent)
                .where(LogEvent.site_id == person.site_id, _person_events(person))
                .order_by(LogEvent.timecreated, LogEvent.id)
            )
        )
        if person.moodle_user_id is not None
        else []
    )
    grades = session.execute(
        select(Grade, GradeItem)
        .join(GradeItem, GradeItem.id == Grade.grade_item_id)
        .where(Grade.person_id == pid)
        .order_by(GradeItem.course_id, GradeItem.moodle_item_id)
    ).all()
    groups = session.execute(
        select(MoodleGroup)
        .join(MoodleGroupMember, MoodleGroupMember.group_id == MoodleGroup.id)
        .where(MoodleGroupMember.person_id == pid)
    ).scalars()
    coursework = session.execute(
        select(CourseworkStatus, CourseworkItem)
        .join(CourseworkItem, CourseworkItem.id == CourseworkStatus.item_id)
        .where(CourseworkStatus.person_id == pid)
    ).all()
    used_courses = {
        e.course_id for e in session.scalars(select(Enrolment).where(Enrolment.person_id == pid))
    }
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "person": _row(person),
        "courses": {
            str(cid): {
                "shortname": c.shortname,
                "fullname": c.fullname,
                "moodle_course_id": c.moodle_course_id,
            }
            for cid, c in courses.items()
            if cid in used_courses
        },
        "enrolments": _rows(session.scalars(select(Enrolment).where(Enrolment.person_id == pid))),
        "events": _rows(events),
        "grades": [{**_row(g), "item": _row(item)} for g, item in grades],
        "predictions": _rows(
            session.scalars(
                select(Prediction).where(Prediction.person_id == pid).order_by(Prediction.as_of)
            )
        ),
        "groups": _rows(groups),
        "choices": _rows(
            session.scalars(select(LearnerChoice).where(LearnerChoice.person_id == pid))
        ),
        "attributes": _rows(
            session.scalars(select(PersonAttribute).where(PersonAttribute.person_id == pid))
        ),
        "coursework": [{**_row(s), "item": _row(i)} for s, i in coursework],
        "contacts_received": _rows(
            session.scalars(select(Contact).where(Contact.person_id == pid))
        ),
        "contacts_sent": _rows(session.scalars(select(Contact).where(Contact.sent_by == pid))),
        "follow_ups_about": _rows(
            session.scalars(select(FollowUp).where(FollowUp.person_id == pid))
        ),
        "follow_ups_written": _rows(
            session.scalars(select(FollowUp).where(FollowUp.author_id == pid))
        ),
        "digest_subscriptions": _rows(
            session.scalars(select(DigestSubscription).where(DigestSubscription.person_id == pid))
        ),
        "course_visits": _rows(
            session.scalars(select(CourseVisit).where(CourseVisit.person_id == pid))
        ),
        "lti_sessions": _rows(
            session.scalars(select(LtiSession).where(LtiSession.person_id == pid))
        ),
        "audit": _rows(
            session.scalars(
                select(AuditEvent).where(AuditEvent.person_id == pid).order_by(AuditEvent.id)
            )
        ),
        "access_log_as_subject": _rows(
            session.scalars(select(AccessLog).where(AccessLog.subject_id == pid))
        ),
        "access_log_as_viewer": _rows(
            session.scalars(select(AccessLog).where(AccessLog.viewer_id == pid))
        ),
        "links_requested": _rows(
            session.scalars(select(CourseLineage).where(CourseLineage.requested_by == pid))
        ),
        "sync_requests": _rows(
            session.scalars(select(SyncRequest).where(SyncRequest.requested_by == pid))
        ),
    }


def export_text(data: Mapping[str, Any]) -> str:
    """An export as the file a person or an administrator downloads (the CLI, the admin page
    and the learner's own download write the same)."""
    return json.dumps(data, ensure_ascii=False, indent=1)


@dataclass
class ErasureReport:
    """What an erasure removed or unlinked, by table, and the model versions it marked."""

    deleted: dict[str, int] = field(default_factory=dict)
    unlinked: dict[str, int] = field(default_factory=dict)
    marked_versions: list[str] = field(default_factory=list)
    kept_objections: int = 0


def _scrub(value: Any, needles: frozenset[str], ids: frozenset[int]) -> Any:
    """`value` with every mention of the person replaced: strings containing their name,
    e-mail or LTI identity, and person ids under keys that name a person."""
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if k in ("person", "person_id", "recipient", "student") and v in ids:
                out[k] = None
            else:
                out[k] = _scrub(v, needles, ids)
        return out
    if isinstance(value, list):
        return [_scrub(v, needles, ids) for v in value]
    if isinstance(value, str) and any(n and n in value for n in needles):
        return "[erased]"
    return value


def _courses_learned_from(session: Session, person: Person) -> set[int]:
    """The courses whose data about `person` a model may have learned from: where they were
    enrolled or graded."""
    enrolled = set(
        session.scalars(select(Enrolment.course_id).where(Enrolment.person_id == person.id))
    )
    graded = set(
        session.scalars(
            select(GradeItem.course_id)
            .join(Grade, Grade.grade_item_id == GradeItem.id)
            .where(Grade.person_id == person.id)
        )
    )
    return enrolled | graded


def _versions_trained_on(session: Session, course_ids: set[int]) -> list[ModelVersion]:
    """The model versions whose training window lists one of `course_ids`: past offerings are
    named by their course id (`load_offering`), a site-wide model's by their family
    ("course-<id>", the family's smallest course id; every course of a family is checked by
    the caller passing the family)."""
    keys = {str(c) for c in course_ids} | {f"course-{c}" for c in course_ids}
    out = []
    for version in session.scalars(select(ModelVersion)):
        window = (version.metadata_json or {}).get("training_window") or {}
        ids = {str(o.get("id")) for o in window.get("offerings", [])}
        if ids & keys:
            out.append(version)
    return out


def erase_person(session: Session, person: Person) -> ErasureReport:
    """Erase `person` (see the module docstring); returns what was done, by table."""
    from lti_app.services.site_model import families

    report = ErasureReport()
    pid = person.id
    needles = frozenset(
        s for s in (person.fullname, person.email, person.lti_sub) if s and len(s) >= 3
    )
    ids = frozenset({pid})
    courses = _courses_learned_from(session, person)
    family_of = families(session, person.site_id)
    courses |= {family_of[c] for c in courses if c in family_of}
    now = utcnow()
    for version in _versions_trained_on(session, courses):
        if version.erased_data_at is None:
            version.erased_data_at = now
        report.marked_versions.append(version.version)

    if person.moodle_user_id is not None:
        uid = person.moodle_user_id
        report.deleted["log_event"] = deleted_rows(
            session.execute(
                delete(LogEvent).where(LogEvent.site_id == person.site_id, LogEvent.userid == uid)
            )
        )
        report.unlinked["log_event"] = deleted_rows(
            session.execute(
                update(LogEvent)
                .where(LogEvent.site_id == person.site_id, LogEvent.relateduserid == uid)
                .values(relateduserid=None)
            )
        )
    # Their objections outlive them, under the Moodle user id alone: a learner still enrolled
    # comes back at the next sync, and must not come back with their data used again.
    if person.moodle_user_id is not None:
        objected = session.scalars(
            select(LearnerChoice.course_id).where(
                LearnerChoice.person_id == pid, LearnerChoice.choice == "out"
            )
        ).all()
        for course_id in objected:
            session.merge(KeptObjection(course_id=course_id, moodle_user_id=person.moodle_user_id))
        report.kept_objections = len(objected)
    # What is about them: deleted (explicitly, not left to ON DELETE, so that a database
    # without foreign keys enforced is erased all the same).
    # Built pages (`shared_pages`) may show their name and estimates: all go, built again.
    report.deleted["page_build"] = deleted_rows(session.execute(delete(PageBuild)))
    about: list[tuple[type[Base], Any]] = [
        (LearnerChoice, LearnerChoice.person_id),
        (PersonAttribute, PersonAttribute.person_id),
        (AccessLog, AccessLog.subject_id),
        (Contact, Contact.person_id),
        (FollowUp, FollowUp.person_id),
        (Prediction, Prediction.person_id),
        (Grade, Grade.person_id),
        (CourseworkStatus, CourseworkStatus.person_id),
        (MoodleGroupMember, MoodleGroupMember.person_id),
        (DigestSubscription, DigestSubscription.person_id),
        (CourseVisit, CourseVisit.person_id),
        (LtiSession, LtiSession.person_id),
        (Enrolment, Enrolment.person_id),
    ]
    for model, column in about:
        report.deleted[model.__tablename__] = deleted_rows(
            session.execute(delete(model).where(column == pid))
        )
    # What they did: kept, without them.
    did: list[tuple[type[Base], Any]] = [
        (AccessLog, AccessLog.viewer_id),
        (Contact, Contact.sent_by),
        (FollowUp, FollowUp.author_id),
        (CourseLineage, CourseLineage.requested_by),
        (CourseLineage, CourseLineage.decided_by),
        (SyncRequest, SyncRequest.requested_by),
        (Course, Course.pass_mark_set_by),
    ]
    for model, column in did:
        done = deleted_rows(
            session.execute(update(model).where(column == pid).values({column.key: None}))
        )
        report.unlinked[model.__tablename__] = report.unlinked.get(model.__tablename__, 0) + done
    audits = list(
        session.scalars(
            select(AuditEvent).where(
                or_(AuditEvent.person_id == pid, AuditEvent.details.is_not(None))
            )
        )
    )
    scrubbed = 0
    for event in audits:
        changed = False
        if event.person_id == pid:
            event.person_id = None
            event.remote_addr = None
            changed = True
        if event.details:
            clean = _scrub(event.details, needles, ids)
            if clean != event.details:
                event.details = clean
                changed = True
        if event.reason and any(n in event.reason for n in needles):
            event.reason = "[erased]"
            changed = True
        scrubbed += int(changed)
    report.unlinked["audit_event"] = scrubbed
    session.delete(person)
    session.flush()
    report.deleted["person"] = 1
    return report


__all__ = [
    "EXPORT_FORMAT",
    "ErasureReport",
    "PrivacyError",
    "erase_person",
    "export_person",
    "export_text",
    "find_person",
]

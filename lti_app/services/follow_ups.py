"""A teacher's follow-up of one student (issue #16, item 2): notes and a status, kept as a
history; optionally mirrored as a Moodle course note.

Teacher-only: no learner route reads this module. A status is recorded against the prediction
shown at the time, with whether it flagged the student, so "the flag was wrong" answers count
against the flags they judge (`flag_agreement`, on the model card).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import FOLLOW_UP_STATUSES, Course, FollowUp, MoodleSite, Person
from lti_app.services import audit
from lti_app.services.contacts import mark_available, mark_unavailable, recipients
from moodle_client.actions import create_course_note
from moodle_client.client import MoodleClient
from moodle_client.errors import AccessDeniedError, MissingCapabilityError, MoodleError

__all__ = [
    "FollowUpError",
    "MirrorOutcome",
    "add_follow_up",
    "flag_agreement",
    "history",
    "latest_statuses",
    "mirror_to_moodle",
    "status_rows",
]

MAX_NOTE = 5000


class FollowUpError(ValueError):
    """A follow-up that cannot be saved: its code names the reason for the page."""


@dataclass(frozen=True)
class MirrorOutcome:
    """The Moodle course note made from a follow-up, or why none was."""

    noteid: int | None
    reason: str = ""


def add_follow_up(
    session: Session,
    course: Course,
    student: Person,
    author: Person,
    *,
    status: str | None,
    note: str | None,
    threshold: float,
) -> FollowUp:
    status = status or None
    note = (note or "").strip() or None
    if status is not None and status not in FOLLOW_UP_STATUSES:
        raise FollowUpError("status")
    if status is None and note is None:
        raise FollowUpError("empty")
    if note is not None and len(note) > MAX_NOTE:
        raise FollowUpError("too_long")
    shown = recipients(session, course, [student.id], threshold)
    row = FollowUp(
        course_id=course.id,
        person_id=student.id,
        author_id=author.id,
        status=status,
        note=note,
        prediction_id=shown[0].prediction.id if shown and shown[0].prediction else None,
        was_flagged=shown[0].at_risk if shown else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        "follow_up.saved",
        "accepted",
        None,
        person_id=author.id,
        course_id=course.id,
        details={"student": student.id, "status": status, "note": note is not None},
    )
    return row


def mirror_to_moodle(
    session: Session,
    client: MoodleClient,
    site: MoodleSite,
    course: Course,
    row: FollowUp,
    student: Person,
    author: Person,
) -> MirrorOutcome:
    """Copy the follow-up's note (and status) into a Moodle course note about the student,
    visible to the course's teachers in Moodle. A refusal is an outcome, never an error: the
    follow-up itself is saved either way."""
    if student.moodle_user_id is None:
        return MirrorOutcome(None, "no Moodle account known for this student")
    words = " ".join(x for x in (row.status and f"[{row.status}]", row.note) if x)
    text = f"{words}\n— {author.fullname} (arche-predict)"
    try:
        outcome = create_course_note(
            client, course.moodle_course_id, student.moodle_user_id, text,
            clientnoteid=f"follow-up-{row.id}",
        )  # fmt: skip
    except MoodleError as exc:
        if isinstance(exc, MissingCapabilityError | AccessDeniedError):
            mark_unavailable(site, "notes", exc.explanation or exc.message)
        return MirrorOutcome(None, exc.explanation or exc.message)
    if outcome.noteid is None:
        return MirrorOutcome(None, outcome.reason or "Moodle made no note")
    row.moodle_note_id = outcome.noteid
    mark_available(site, "notes")
    return MirrorOutcome(outcome.noteid)


def history(session: Session, course: Course, student_id: int) -> list[tuple[FollowUp, str]]:
    """The student's follow-ups, newest first, with their author's name."""
    rows = session.execute(
        select(FollowUp, Person.fullname)
        .outerjoin(Person, Person.id == FollowUp.author_id)
        .where(FollowUp.course_id == course.id, FollowUp.person_id == student_id)
        .order_by(FollowUp.at.desc(), FollowUp.id.desc())
    ).all()
    return [(f, name or "") for f, name in rows]


def status_rows(session: Session, course_id: int) -> list[tuple[int, str, datetime, bool]]:
    """Every follow-up that set a status, oldest first per student (one read for both the
    statuses in force and the flag verdicts, which the dashboard shows on every visit)."""
    rows = session.execute(
        select(FollowUp.person_id, FollowUp.status, FollowUp.at, FollowUp.was_flagged)
        .where(FollowUp.course_id == course_id, FollowUp.status.is_not(None))
        .order_by(FollowUp.person_id, FollowUp.at, FollowUp.id)
    ).all()
    return [(pid, status, at, bool(flagged)) for pid, status, at, flagged in rows if status]


def latest_statuses(
    session: Session, course_id: int, rows: list[tuple[int, str, datetime, bool]] | None = None
) -> Mapping[int, tuple[str, datetime]]:
    """Each student's status in force (the latest follow-up that set one) and its date."""
    out: dict[int, tuple[str, datetime]] = {}
    for pid, status, at, _ in status_rows(session, course_id) if rows is None else rows:
        out[pid] = (status, at)
    return out


@dataclass(frozen=True)
class FlagAgreement:
    """Teachers' verdicts on the flags, one per flagged student (their latest status set while
    flagged): `agreed` (contacted or met), `no_action` (judged not needing it), `wrong`."""

    judged: int
    agreed: int
    no_action: int
    wrong: int


def flag_agreement(
    session: Session, course_id: int, rows: list[tuple[int, str, datetime, bool]] | None = None
) -> FlagAgreement:
    """Each flagged student's latest verdict given while flagged, counted by kind."""
    latest: dict[int, str] = {}
    for pid, status, _, flagged in status_rows(session, course_id) if rows is None else rows:
        if flagged:
            latest[pid] = status
    values = list(latest.values())
    return FlagAgreement(
        judged=len(values),
        agreed=sum(v in ("contacted", "met") for v in values),
        no_action=values.count("no_action"),
        wrong=values.count("flag_wrong"),
    )

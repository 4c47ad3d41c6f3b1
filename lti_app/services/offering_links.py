"""Teachers link their course's past offerings themselves (issue #17, item 1).

Until now a course showed "engagement only" until an administrator ran `arche-predict course
add --past` with the tool's internal ids. Here a teacher, from the dashboard, is shown the Moodle
courses they taught before this one (`moodle_client.offerings`: their own enrolments, and the
current course's category for offerings whose teacher enrolment has ended), each with its dates
and number of students, picks some, and the tool backfills them (a "Sync now" of kind
`backfill`: each new past offering's roster, grades and logs, then the course, then a scoring).

**Only courses the teacher taught can be linked.** Moodle's `core_enrol_get_users_courses`
says nothing of roles (a student's answer has the same shape), so each candidate's roster is
read and the teacher must hold a teaching role in it (`TAUGHT_ROLES`). The check runs again,
against Moodle, when the teacher submits: a course id typed into the form or the API is never
trusted. A site may require an administrator's approval (`MoodleSite.link_approval_required`):
the links then wait, `pending`, on the admin page, and nothing is pulled before approval.

Services never commit; the caller's request or job owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import Course, CourseLineage, Person, SyncRequest, SyncRun
from lti_app.services import sync_requests
from moodle_client import offerings
from moodle_client.client import MoodleClient
from moodle_client.errors import MoodleError

#: Moodle's teaching roles (archetypes `editingteacher` and `teacher`, the non-editing one): a
#: course where the user held one of these is a course they taught. A manager or a course
#: creator may see every course of the site: that is not teaching it.
TAUGHT_ROLES = frozenset({"editingteacher", "teacher"})
#: At most this many candidates have their roster read per listing (one web-service call each),
#: the best-ranked first: a teacher of many courses still gets the page in a few seconds.
MAX_CHECKED = 20


class LinkError(ValueError):
    """A link that cannot be made, with a code the pages and the API word."""

    def __init__(self, code: str, message: str, courseids: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.courseids = tuple(courseids)


@dataclass(frozen=True)
class OfferingChoice:
    """One past offering the teacher may link, as the page lists it: Moodle's course (dates,
    names, ranking) with the number of students on its roster, and the state of an existing
    link (None: not linked)."""

    candidate: offerings.Candidate
    students: int
    link_status: str | None

    @property
    def courseid(self) -> int:
        return self.candidate.courseid

    def start(self) -> datetime | None:
        return _moment(self.candidate.startdate)

    def end(self) -> datetime | None:
        return _moment(self.candidate.enddate)


@dataclass(frozen=True)
class LinkOutcome:
    """What a teacher's pick did: the past offerings now active (their backfill requested
    when `request_id` is set) and those waiting for an administrator."""

    active: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    request_id: int | None = None


def _moment(epoch: int) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch > 0 else None


def teacher_moodle_id(person: Person) -> int:
    """The teacher's Moodle user id, from the launch (Moodle's LTI `sub` is the user id) or the
    roster; a `LinkError` when neither gave one (a platform that is not Moodle)."""
    if person.moodle_user_id is None:
        raise LinkError(
            "no_moodle_user",
            "your Moodle account is not known to the tool yet: launch it from the course "
            "in Moodle, or ask an administrator to link the past offerings",
        )
    return person.moodle_user_id


def _taught_and_students(
    client: MoodleClient, courseid: int, userid: int
) -> tuple[bool, int] | None:
    """(whether `userid` held a teaching role in the course, how many students it has), or
    None when Moodle does not let the token read its roster (the course is then not offered:
    the tool could not pull its data anyway)."""
    try:
        users = client.get_enrolled_users(courseid)
    except MoodleError:
        return None
    taught = any(u.id == userid and TAUGHT_ROLES & set(u.role_shortnames) for u in users)
    students = sum(1 for u in users if "student" in u.role_shortnames)
    return taught, students


def links_of(session: Session, course_id: int) -> dict[int, CourseLineage]:
    """The course's links by the past offering's Moodle course id."""
    rows = session.execute(
        select(Course.moodle_course_id, CourseLineage)
        .join(CourseLineage, CourseLineage.past_course_id == Course.id)
        .where(CourseLineage.course_id == course_id)
    ).all()
    return {int(moodle_id): link for moodle_id, link in rows}


def find_candidates(
    session: Session, client: MoodleClient, course: Course, userid: int
) -> list[OfferingChoice]:
    """The past offerings `userid` taught, best first (see `offerings.candidate_offerings`).

    Reads the current course (its dates, category and short name as Moodle has them now), the
    teacher's courses with their enrolled counts, and the category's courses whose short name
    matches (the offerings whose teacher enrolment has ended, which Moodle no longer lists for
    the teacher); then the roster of at most `MAX_CHECKED` of them, best-ranked first, to keep
    the ones the teacher taught and count their students. Raises `MoodleError` when Moodle
    cannot answer the first two calls (the page says so); a category Moodle does not let the
    token list only narrows the choice."""
    current = client.get_course(course.moodle_course_id)
    mine = offerings.users_courses(client, userid)
    pool: list[offerings.OfferingLike] = list(mine)
    if current.categoryid:
        try:
            siblings = offerings.courses_in_category(client, current.categoryid)
        except MoodleError:
            siblings = []
        mine_ids = {c.id for c in mine}
        ranked_siblings = offerings.candidate_offerings(
            current, siblings, taught_ids=(c.id for c in siblings)
        )
        keep = {c.courseid for c in ranked_siblings if c.match != "other"} - mine_ids
        pool.extend(c for c in siblings if c.id in keep)
    ranked = offerings.candidate_offerings(current, pool, taught_ids=(c.id for c in pool))
    checked: dict[int, int] = {}
    for cand in ranked[:MAX_CHECKED]:
        found = _taught_and_students(client, cand.courseid, userid)
        if found is not None and found[0]:
            checked[cand.courseid] = found[1]
    links = links_of(session, course.id)
    return [
        OfferingChoice(c, checked[c.courseid], _status(links.get(c.courseid)))
        for c in offerings.candidate_offerings(current, pool, taught_ids=checked)
    ]


def _status(link: CourseLineage | None) -> str | None:
    return None if link is None else link.status


def _past_course(session: Session, course: Course, choice: OfferingChoice) -> Course:
    """The tool's row for a past offering, created on first link. A new row is not synced
    nightly: its term has ended, the backfill pulls it once (an administrator may turn its
    nightly sync on for late grades with `arche-predict course update`)."""
    found = session.scalar(
        select(Course).where(
            Course.site_id == course.site_id, Course.moodle_course_id == choice.courseid
        )
    )
    if found is not None:
        return found
    cand = choice.candidate
    past = Course(
        site_id=course.site_id,
        moodle_course_id=cand.courseid,
        shortname=cand.shortname,
        fullname=cand.fullname,
        start_at=choice.start(),
        end_at=choice.end(),
        sync_enabled=False,
    )
    session.add(past)
    session.flush()
    return past


def link_offerings(
    session: Session,
    client: MoodleClient,
    course: Course,
    person: Person,
    picked: Iterable[int],
    *,
    approval_required: bool,
) -> LinkOutcome:
    """Link the picked Moodle courses as past offerings of `course`, for `person`.

    All or nothing: every picked id must be a course the teacher taught, listed by
    `find_candidates` (checked against Moodle now, never taken from the form on trust), or
    nothing is linked and a `LinkError` says which (`not_taught`). With `approval_required`
    the links wait for an administrator (`pending`); otherwise they are active at once and a
    backfill is requested. A link already active stays as it is; a rejected one asked again
    is asked again."""
    wanted = sorted(set(picked))
    if not wanted:
        raise LinkError("none_picked", "pick at least one past offering")
    userid = teacher_moodle_id(person)
    choices = {c.courseid: c for c in find_candidates(session, client, course, userid)}
    refused = [mid for mid in wanted if mid not in choices]
    if refused:
        raise LinkError(
            "not_taught",
            "only a course you taught before this one can be linked; not linked: "
            + ", ".join(f"#{mid}" for mid in refused),
            refused,
        )
    outcome = LinkOutcome()
    new_active = False
    for mid in wanted:
        past = _past_course(session, course, choices[mid])
        link = session.scalar(
            select(CourseLineage).where(
                CourseLineage.course_id == course.id, CourseLineage.past_course_id == past.id
            )
        )
        if link is not None and link.status == "active":
            outcome.active.append(mid)
            continue
        if link is None:
            link = CourseLineage(course_id=course.id, past_course_id=past.id)
            session.add(link)
        link.requested_by = person.id
        link.created_at = utcnow()
        link.decided_by = None
        link.decided_at = None
        link.status = "pending" if approval_required else "active"
        (outcome.pending if approval_required else outcome.active).append(mid)
        new_active = new_active or not approval_required
    session.flush()
    if new_active:
        req = start_backfill(session, course, person.id)
        return LinkOutcome(outcome.active, outcome.pending, req.id)
    return outcome


def decide(session: Session, link_id: int, admin_id: int, *, approve: bool) -> CourseLineage:
    """An administrator approves or rejects a pending link; an approval requests the backfill."""
    link = session.get(CourseLineage, link_id)
    if link is None or link.status != "pending":
        raise LinkError("not_pending", "this link is not waiting for a decision")
    link.status = "active" if approve else "rejected"
    link.decided_by = admin_id
    link.decided_at = utcnow()
    session.flush()
    if approve:
        start_backfill(session, session.get_one(Course, link.course_id), link.requested_by)
    return link


@dataclass(frozen=True)
class PendingLink:
    """A teacher's link waiting for an administrator, as the admin page lists it."""

    link_id: int
    course: Course
    past: Course
    requested_by: str
    requested_at: datetime


def pending_links(session: Session) -> list[PendingLink]:
    past = Course.__table__.alias("past")
    rows = session.execute(
        select(CourseLineage, Course, past.c.id, Person.fullname)
        .join(Course, Course.id == CourseLineage.course_id)
        .join(past, past.c.id == CourseLineage.past_course_id)
        .outerjoin(Person, Person.id == CourseLineage.requested_by)
        .where(CourseLineage.status == "pending")
        .order_by(CourseLineage.created_at, CourseLineage.id)
    ).all()
    return [
        PendingLink(link.id, course, session.get_one(Course, past_id), name or "", link.created_at)
        for link, course, past_id, name in rows
    ]


# --------------------------------------------------------------------------- backfill


def never_synced(session: Session, course_ids: Iterable[int]) -> list[int]:
    """The courses among `course_ids` without a successful sync: what a backfill must pull."""
    ids = list(course_ids)
    if not ids:
        return []
    synced = set(
        session.scalars(
            select(SyncRun.course_id).where(
                SyncRun.course_id.in_(ids), SyncRun.status == "succeeded"
            )
        )
    )
    return [i for i in ids if i not in synced]


def active_past_ids(session: Session, course_id: int) -> list[int]:
    return list(
        session.scalars(
            select(CourseLineage.past_course_id)
            .join(Course, Course.id == CourseLineage.past_course_id)
            .where(CourseLineage.course_id == course_id, CourseLineage.status == "active")
            .order_by(Course.start_at, Course.id)
        )
    )


def start_backfill(session: Session, course: Course, person_id: int | None) -> SyncRequest:
    """Ask the scheduler to pull the course's newly linked past offerings, then the course,
    then score it. A "Sync now" not yet picked up becomes this backfill; one already running
    is left to finish and the backfill follows it."""
    steps = len(never_synced(session, active_past_ids(session, course.id))) + 1
    existing = sync_requests.open_request(session, course.id)
    if existing is not None and existing.picked_at is None:
        existing.kind = "backfill"
        existing.steps_total = steps
        session.flush()
        return existing
    req = SyncRequest(
        course_id=course.id,
        requested_by=person_id,
        requested_at=utcnow(),
        kind="backfill",
        steps_total=steps,
        steps_done=0,
    )
    session.add(req)
    session.flush()
    return req


__all__ = [
    "MAX_CHECKED",
    "TAUGHT_ROLES",
    "LinkError",
    "LinkOutcome",
    "OfferingChoice",
    "PendingLink",
    "active_past_ids",
    "decide",
    "find_candidates",
    "link_offerings",
    "links_of",
    "never_synced",
    "pending_links",
    "start_backfill",
    "teacher_moodle_id",
]

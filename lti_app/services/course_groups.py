"""The course's Moodle groups (issue #16, items 3 and 5): read for filtering the dashboard, and
one group of the flagged students made or brought up to date on a teacher's request, so the
teacher can use Moodle's own forum, overrides or messaging for it.

Moodle answers a taken group name with a bare `invalidparameter`, so the group is looked up by
name among the course's groups first and updated (members added and removed) rather than made
twice. A missing `moodle/course:managegroups` marks the feature unavailable with Moodle's
explanation: the page then says why instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.models import Course, MoodleGroup, MoodleGroupMember, MoodleSite, Person
from lti_app.services import audit
from lti_app.services.contacts import mark_available, mark_unavailable
from moodle_client import actions
from moodle_client.client import MoodleClient
from moodle_client.errors import AccessDeniedError, MissingCapabilityError, MoodleError

__all__ = [
    "GroupOutcome",
    "course_groups",
    "memberships",
    "risk_group_name",
    "store_groups",
    "sync_groups",
    "update_risk_group",
]

RISK_GROUP_NAME = {
    "en": "At risk \u2013 week {week}",
    "fr": "\u00c0 risque \u2013 semaine {week}",
}


def risk_group_name(week: int, locale: str) -> str:
    return RISK_GROUP_NAME.get(locale[:2], RISK_GROUP_NAME["en"]).format(week=week)


def term_week(start: datetime | None, as_of: datetime | None) -> int:
    """The week of the term `as_of` falls in, counted from 1 (1 without dates)."""
    if start is None or as_of is None or as_of < start:
        return 1
    return (as_of - start).days // 7 + 1


def _unavailable(site: MoodleSite, exc: MoodleError) -> None:
    if isinstance(exc, MissingCapabilityError | AccessDeniedError):
        mark_unavailable(site, "groups", exc.explanation or exc.message)


def store_groups(
    session: Session,
    course: Course,
    groups: Iterable[actions.CourseGroup],
    members: Mapping[int, tuple[int, ...]],
) -> int:
    """Replace the course's stored groups with Moodle's (members matched by Moodle user id)."""
    groups = list(groups)
    session.execute(delete(MoodleGroup).where(MoodleGroup.course_id == course.id))
    people = dict(
        session.execute(
            select(Person.moodle_user_id, Person.id).where(
                Person.site_id == course.site_id, Person.moodle_user_id.is_not(None)
            )
        ).all()
    )
    for g in groups:
        row = MoodleGroup(course_id=course.id, moodle_group_id=g.id, name=g.name)
        session.add(row)
        session.flush()
        for uid in members.get(g.id, ()):
            if uid in people:
                session.add(MoodleGroupMember(group_id=row.id, person_id=people[uid]))
    session.flush()
    return len(groups)


def sync_groups(
    session: Session, client: MoodleClient, site: MoodleSite, course: Course
) -> int | None:
    """Read the course's groups and members from Moodle into the database; None (and the
    feature marked unavailable, the stored groups kept) when the token may not read them."""
    try:
        groups = actions.course_groups(client, course.moodle_course_id)
        members = actions.group_members(client, [g.id for g in groups])
    except MoodleError as exc:
        _unavailable(site, exc)
        return None
    mark_available(site, "groups")
    return store_groups(session, course, groups, members)


def course_groups(session: Session, course_id: int) -> list[MoodleGroup]:
    return list(
        session.scalars(
            select(MoodleGroup)
            .where(MoodleGroup.course_id == course_id)
            .order_by(MoodleGroup.name, MoodleGroup.id)
        )
    )


def groups_and_memberships(
    session: Session, course_id: int
) -> tuple[list[tuple[int, str]], dict[int, list[int]]]:
    """The course's groups (id, name) by name, and person id -> their group ids, in one read
    (the dashboard asks on every visit)."""
    rows = session.execute(
        select(MoodleGroup.id, MoodleGroup.name, MoodleGroupMember.person_id)
        .outerjoin(MoodleGroupMember, MoodleGroupMember.group_id == MoodleGroup.id)
        .where(MoodleGroup.course_id == course_id)
        .order_by(MoodleGroup.name, MoodleGroup.id)
    ).all()
    groups: dict[int, str] = {}
    members: dict[int, list[int]] = {}
    for gid, name, pid in rows:
        groups.setdefault(gid, name)
        if pid is not None and gid not in members.setdefault(pid, []):
            members[pid].append(gid)
    return list(groups.items()), members


def memberships(session: Session, course_id: int) -> dict[int, list[int]]:
    """person id -> the stored group ids (the tool's) they belong to."""
    rows = session.execute(
        select(MoodleGroupMember.person_id, MoodleGroup.id)
        .join(MoodleGroup, MoodleGroup.id == MoodleGroupMember.group_id)
        .where(MoodleGroup.course_id == course_id)
        .order_by(MoodleGroup.id)
    ).all()
    out: dict[int, list[int]] = {}
    for pid, gid in rows:
        out.setdefault(pid, []).append(gid)
    return out


@dataclass(frozen=True)
class GroupOutcome:
    name: str
    created: bool
    added: int
    removed: int
    members: int


def update_risk_group(
    session: Session,
    client: MoodleClient,
    site: MoodleSite,
    course: Course,
    *,
    students: Iterable[Person],
    name: str,
    description: str,
    teacher_id: int | None,
) -> GroupOutcome:
    """Make the group `name` hold exactly `students` (created when missing). Raises MoodleError
    when Moodle refuses (the caller words it); the stored groups follow Moodle's answer."""
    wanted = {p.moodle_user_id for p in students if p.moodle_user_id is not None}
    try:
        existing = next(
            (g for g in actions.course_groups(client, course.moodle_course_id) if g.name == name),
            None,
        )
        created = existing is None
        group = existing or actions.create_group(client, course.moodle_course_id, name, description)
        current = set(actions.group_members(client, [group.id]).get(group.id, ()))
        actions.add_group_members(client, group.id, wanted - current)
        actions.delete_group_members(client, group.id, current - wanted)
    except MoodleError as exc:
        _unavailable(site, exc)
        raise
    mark_available(site, "groups")
    sync_groups(session, client, site, course)
    outcome = GroupOutcome(
        name=name,
        created=created,
        added=len(wanted - current),
        removed=len(current - wanted),
        members=len(wanted),
    )
    audit.record(
        session,
        "group.at_risk",
        "accepted",
        None,
        person_id=teacher_id,
        course_id=course.id,
        details={
            "group": name,
            "created": created,
            "added": outcome.added,
            "removed": outcome.removed,
        },
    )
    return outcome

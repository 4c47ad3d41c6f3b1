"""Names and Roles Provisioning (NRPS): the course roster fetched through the launch's claim.

An alternative or complement to the `core_enrol_get_enrolled_users` web service: it needs no
web-service token, only the tool's registration (client-credentials grant signed with the
tool key). Members become Person and Enrolment rows of the course's site, keyed by Moodle's user
id (NRPS `user_id` equals the launch `sub`, i.e. the Moodle user id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from pylti1p3.exception import LtiException
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Course, Enrolment, Person
from lti_app.services.consent import restore_objections
from lti_app.services.lti_linking import upsert_enrolment
from lti_app.services.lti_roles import member_role

NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"


class RosterError(Exception):
    """The platform refused or failed the roster request; the message is safe to show."""


class TimeoutSession(requests.Session):
    """pylti1p3 calls `requests` without a timeout; a hung platform must not hang a worker."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self.headers["User-Agent"] = "arche-predict LTI"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class CachingServiceConnector(ServiceConnector):
    """Access tokens cached in process memory until they expire (a cache miss only costs one
    token request, so per-process is enough)."""

    _tokens: dict[str, tuple[str, datetime]] = {}  # noqa: RUF012 - shared on purpose

    def _get_cached_access_token(self, scope_key: str) -> str | None:
        cached = self._tokens.get(scope_key)
        if cached is not None and cached[1] > datetime.now():
            return cached[0]
        return None

    def _cache_access_token(self, scope_key: str, access_token: str, expires_in: float) -> None:
        self._tokens[scope_key] = (access_token, datetime.now() + timedelta(seconds=expires_in))


@dataclass(frozen=True)
class RosterResult:
    members: int
    learners: int
    teachers: int
    skipped: int


def memberships_url(claims: dict[str, Any]) -> str | None:
    service = claims.get(NRPS_CLAIM)
    if isinstance(service, dict) and isinstance(service.get("context_memberships_url"), str):
        url: str = service["context_memberships_url"]
        return url
    return None


def fetch_members(
    registration: Registration, url: str, http: requests.Session
) -> list[dict[str, Any]]:
    connector = CachingServiceConnector(registration, http)
    service = NamesRolesProvisioningService(connector, {"context_memberships_url": url})
    try:
        members = service.get_members()
    except (LtiException, requests.RequestException, ValueError, KeyError) as exc:
        raise RosterError(
            f"the platform did not return the roster ({exc.__class__.__name__})"
        ) from None
    return [dict(m) for m in members if isinstance(m, dict)]


def store_members(session: Session, course: Course, members: list[dict[str, Any]]) -> RosterResult:
    """Upsert the members as persons of the course's site, with their enrolment role."""
    learners = teachers = skipped = 0
    for member in members:
        raw_id = member.get("user_id")
        if not (isinstance(raw_id, str) and raw_id.isascii() and raw_id.isdigit()):
            skipped += 1
            continue
        user_id = int(raw_id)
        person = session.scalar(
            select(Person).where(Person.site_id == course.site_id, Person.moodle_user_id == user_id)
        )
        if person is None:
            person = Person(site_id=course.site_id, moodle_user_id=user_id)
            session.add(person)
            session.flush()
            # An erased learner coming back keeps their objection (`kept_objection`).
            restore_objections(session, course.site_id, {user_id: person.id})
        name = member.get("name")
        if isinstance(name, str) and name:
            person.fullname = name[:255]
        email = member.get("email")
        if isinstance(email, str) and email:
            person.email = email[:255]
        session.flush()
        role = member_role(member.get("roles"))
        enrolment = upsert_enrolment(session, course, person, role, source="nrps")
        enrolment.active = member.get("status", "Active") == "Active"
        if role == "teacher":
            teachers += 1
        else:
            learners += 1
    session.flush()
    return RosterResult(
        members=learners + teachers, learners=learners, teachers=teachers, skipped=skipped
    )


#: Roles as a reader lists them: teaching roles before learning ones.
_ROLE_ORDER = {
    r: i
    for i, r in enumerate(
        ("manager", "editingteacher", "teacher", "noneditingteacher", "learner", "student")
    )
}


def course_members(session: Session, course: Course) -> list[tuple[Person, list[str], str]]:
    """The Participants page: one row per person (a teacher also enrolled as a student is one
    person with both roles, never listed twice), with the name a reader can tell apart (a
    name two members share gets the Moodle user id, "Paul Martin (#219)"), ordered by name."""
    roles: dict[int, list[str]] = {}
    people: dict[int, Person] = {}
    for person, role in course_roster(session, course):
        people.setdefault(person.id, person)
        if role not in roles.setdefault(person.id, []):
            roles[person.id].append(role)
    counts: dict[str, int] = {}
    for person in people.values():
        counts[person.fullname] = counts.get(person.fullname, 0) + 1
    return [
        (
            person,
            sorted(roles[pid], key=lambda r: (_ROLE_ORDER.get(r, len(_ROLE_ORDER)), r)),
            person.fullname
            if counts[person.fullname] == 1
            else f"{person.fullname} (#{person.moodle_user_id or person.id})",
        )
        for pid, person in people.items()
    ]


def course_roster(session: Session, course: Course) -> list[tuple[Person, str]]:
    """Active enrolments of the course, as (person, role), ordered by name."""
    rows = session.execute(
        select(Person, Enrolment.role)
        .join(Enrolment, Enrolment.person_id == Person.id)
        .where(Enrolment.course_id == course.id, Enrolment.active.is_(True))
        .order_by(Person.fullname, Person.id)
    )
    return [(p, r) for p, r in rows]

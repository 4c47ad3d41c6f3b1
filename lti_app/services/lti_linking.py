"""Link a validated launch to the tool's Course, Person and Enrolment rows.

Only what the platform signs decides who and where a launch is. A Moodle launch's context id
is the Moodle course id and its `sub` is the Moodle user id (checked on Moodle 5.1 recordings:
the `lis` claim carries the idnumber, not the id). Custom parameters are NOT the platform's
word: in Moodle an activity's custom parameters are edited by whoever edits the activity, any
teacher of the course. So `custom.course_id`, `custom.user_id` and their spellings are ignored
(they let a teacher's launch land in another teacher's course, or a learner's launch take over
a roster student's record). The one custom parameter trusted is `arche_course`, a value this
tool signed itself (in its deep-linking answer, or by `arche-predict lti course-param` for an
administrator of a platform that is not Moodle): it binds one platform context to one Moodle
course, and is refused for any other context. A course already linked to an LTI context is
never relinked to another by a launch. Everything is scoped by the platform's Moodle site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox
from lti_app.models import Course, Enrolment, LtiPlatform, MoodleSite, Person
from lti_app.services.consent import restore_objections
from lti_app.services.lti_roles import access_for
from lti_app.services.sites import upsert_site

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
CONTEXT = CLAIM + "context"
CUSTOM = CLAIM + "custom"
ROLES = CLAIM + "roles"
TOOL_PLATFORM = CLAIM + "tool_platform"
COURSE_PARAM = "arche_course"
_COURSE_SALT = "arche-predict course link"


class LinkError(ValueError):
    """A launch whose claims cannot be linked; the message is shown to the user."""


@dataclass(frozen=True)
class LaunchLink:
    site: MoodleSite
    course: Course | None
    person: Person
    role: str
    is_admin: bool


def _digits(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    return None


def _text(value: Any, limit: int) -> str:
    """A claim as display text: strings only, NUL removed (PostgreSQL text refuses it)."""
    return value.replace("\x00", "")[:limit] if isinstance(value, str) else ""


def _custom(claims: dict[str, Any]) -> dict[str, Any]:
    custom = claims.get(CUSTOM)
    return custom if isinstance(custom, dict) else {}


def is_moodle(claims: dict[str, Any]) -> bool:
    platform = claims.get(TOOL_PLATFORM)
    return isinstance(platform, dict) and platform.get("product_family_code") == "moodle"


def moodle_user_id(claims: dict[str, Any]) -> int | None:
    """The Moodle user id the platform vouches for: Moodle's `sub`, and nothing else."""
    return _digits(claims.get("sub")) if is_moodle(claims) else None


def context_id_of(claims: dict[str, Any]) -> str:
    context = claims.get(CONTEXT)
    return _text(context.get("id"), 255) if isinstance(context, dict) else ""


def sign_course_param(secret: str, issuer: str, context_id: str, moodle_course_id: int) -> str:
    """The `arche_course` custom parameter binding one platform context to one Moodle course.

    Signed with the tool's secret key: a teacher can copy it but not forge one for another
    course, and it is refused in any other context than the one it names."""
    serializer = URLSafeSerializer(secret, salt=_COURSE_SALT)
    return serializer.dumps({"iss": issuer, "ctx": context_id, "c": moodle_course_id})


def signed_course_id(secret: str, issuer: str, claims: dict[str, Any]) -> int | None:
    """The Moodle course id of a valid `arche_course` parameter for this launch's context."""
    value = _custom(claims).get(COURSE_PARAM)
    context_id = context_id_of(claims)
    if not isinstance(value, str) or not context_id or len(value) > 1000:
        return None
    try:
        data = URLSafeSerializer(secret, salt=_COURSE_SALT).loads(value)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("iss") != issuer or data.get("ctx") != context_id:
        return None
    return _digits(data.get("c"))


def moodle_course_id(claims: dict[str, Any], trusted_course_id: int | None = None) -> int | None:
    """The platform's own course id (Moodle's context id), else the tool-signed one."""
    context = claims.get(CONTEXT)
    if isinstance(context, dict) and is_moodle(claims):
        return _digits(context.get("id"))
    return trusted_course_id


def platform_site(session: Session, box: SecretBox, platform: LtiPlatform) -> MoodleSite:
    """The platform's Moodle site, created from the issuer (Moodle's wwwroot) when missing."""
    if platform.site is not None:
        return platform.site
    site = upsert_site(session, box, platform.issuer, name=platform.name, rename=False)
    platform.site_id = site.id
    session.flush()
    return site


def link_person(
    session: Session, site: MoodleSite, platform: LtiPlatform, claims: dict[str, Any]
) -> Person:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255 or "\x00" in sub:
        raise LinkError("the launch names no user (sub)")
    user_id = moodle_user_id(claims)
    person = session.scalar(
        select(Person).where(Person.platform_id == platform.id, Person.lti_sub == sub)
    )
    if person is None and user_id is not None:
        # Known from the roster sync (web services) but never launched: attach the LTI identity.
        person = session.scalar(
            select(Person).where(Person.site_id == site.id, Person.moodle_user_id == user_id)
        )
        if person is not None and person.lti_sub not in (None, sub):
            raise LinkError("this Moodle user is already linked to another LTI identity")
    if person is None:
        person = Person(site_id=site.id)
        session.add(person)
    if person.site_id != site.id:
        raise LinkError("this LTI identity belongs to another Moodle site")
    person.platform_id = platform.id
    person.lti_sub = sub
    if person.moodle_user_id is None and user_id is not None:
        person.moodle_user_id = user_id
        session.flush()
        # An erased learner launching again keeps their objection (`kept_objection`).
        restore_objections(session, site.id, {user_id: person.id})
    parts = (_text(claims.get("given_name"), 120), _text(claims.get("family_name"), 120))
    name = _text(claims.get("name"), 255) or " ".join(p for p in parts if p)
    if name:
        person.fullname = name
    # The e-mail a platform may send anyway is not kept (#18, item 8): the roster sync brings
    # the addresses the teacher's address list needs, for the course's participants only.
    session.flush()
    return person


def link_course(
    session: Session,
    site: MoodleSite,
    claims: dict[str, Any],
    trusted_course_id: int | None = None,
) -> Course | None:
    context = claims.get(CONTEXT)
    if not isinstance(context, dict):
        return None
    context_id = _text(context.get("id"), 255)
    if not context_id:
        return None
    course_id = moodle_course_id(claims, trusted_course_id)
    course = session.scalar(
        select(Course).where(Course.site_id == site.id, Course.lti_context_id == context_id)
    )
    if course is None and course_id is not None:
        course = session.scalar(
            select(Course).where(Course.site_id == site.id, Course.moodle_course_id == course_id)
        )
        if course is not None and course.lti_context_id not in (None, context_id):
            raise LinkError(
                "this Moodle course is already linked to another LTI context; a launch cannot "
                "move it (ask the tool's administrator)"
            )
    if course is None:
        if course_id is None:
            raise LinkError(
                "the launch's course cannot be matched to a Moodle course id; this tool reads "
                "Moodle courses (for a platform that is not Moodle, an administrator sets the "
                "activity's custom parameter arche_course from `arche-predict lti course-param`)"
            )
        course = Course(site_id=site.id, moodle_course_id=course_id)
        session.add(course)
    course.lti_context_id = context_id
    label, title = _text(context.get("label"), 255), _text(context.get("title"), 500)
    if label:
        course.shortname = label
    if title:
        course.fullname = title
    session.flush()
    return course


def upsert_enrolment(
    session: Session, course: Course, person: Person, role: str, *, source: str
) -> Enrolment:
    enrolment = session.scalar(
        select(Enrolment).where(
            Enrolment.course_id == course.id,
            Enrolment.person_id == person.id,
            Enrolment.role == role,
        )
    )
    if enrolment is None:
        enrolment = Enrolment(course_id=course.id, person_id=person.id, role=role, source=source)
        session.add(enrolment)
    enrolment.active = True
    session.flush()
    return enrolment


def link_launch(
    session: Session,
    box: SecretBox,
    platform: LtiPlatform,
    claims: dict[str, Any],
    *,
    secret: str = "",
) -> LaunchLink:
    """Find or create the launch's course and person, and record the person's role in it.

    A launch without a course context is accepted only for an administrator (admin pages);
    learners and teachers always act within one course.

    Two launches can race to create the same rows: a teacher opening the tool in two tabs, or
    a whole class clicking the link when a course starts. Each looks the person up, finds
    nothing, and inserts; the second insert breaks a unique constraint once the first commits.
    The work runs in a savepoint so that the loser can roll back just that and look again: the
    winner's rows are committed by then (PostgreSQL makes the second insert wait for the first
    transaction; SQLite serialises writers), so the second pass finds and reuses them.

    `secret` is the tool's secret key, which checks a tool-signed `arche_course` parameter; with
    none, only the platform's own ids count.
    """
    trusted = signed_course_id(secret, platform.issuer, claims) if secret else None
    try:
        with session.begin_nested():
            return _link_launch(session, box, platform, claims, trusted)
    except IntegrityError:
        with session.begin_nested():
            return _link_launch(session, box, platform, claims, trusted)


def _link_launch(
    session: Session,
    box: SecretBox,
    platform: LtiPlatform,
    claims: dict[str, Any],
    trusted_course_id: int | None,
) -> LaunchLink:
    access = access_for(claims.get(ROLES))
    site = platform_site(session, box, platform)
    person = link_person(session, site, platform, claims)
    course = link_course(session, site, claims, trusted_course_id)
    if course is None:
        if not access.is_admin:
            raise LinkError("the launch carries no course (context claim); launch from a course")
        return LaunchLink(site=site, course=None, person=person, role="admin", is_admin=True)
    upsert_enrolment(session, course, person, access.role, source="lti")
    return LaunchLink(
        site=site, course=course, person=person, role=access.role, is_admin=access.is_admin
    )

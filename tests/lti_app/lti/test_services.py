"""LTI services without the web layer: roles, linking, the DB launch storage, sessions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pylti1p3.request import Request
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from lti_app import migrate
from lti_app.crypto import SecretBox
from lti_app.db import make_engine, utcnow
from lti_app.models import Course, Enrolment, LtiPlatform, Person
from lti_app.services.lti_linking import COURSE_PARAM, LinkError, link_launch, sign_course_param
from lti_app.services.lti_registry import add_platform, platform_origins
from lti_app.services.lti_roles import access_for
from lti_app.services.lti_sessions import find_session, open_session
from lti_app.services.lti_storage import DbLaunchDataStorage, DbSessionService
from tests.conftest import Databases
from tests.lti_app.lti.lti_platform import CLAIM, recorded

ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"


@pytest.mark.parametrize(
    ("roles", "role", "is_admin"),
    [
        ([INSTRUCTOR], "teacher", False),
        ([LEARNER], "learner", False),
        ([ADMIN, INSTRUCTOR], "teacher", True),
        (
            ["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"],
            "learner",
            True,
        ),
        (["Instructor"], "teacher", False),
        ([INSTRUCTOR + "#TeachingAssistant"], "learner", False),
        (["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"], "learner", False),
        ([], "learner", False),
        (None, "learner", False),
        ("Instructor", "learner", False),  # not a list: never trusted
        ([{"x": 1}, 3], "learner", False),
    ],
)
def test_roles(roles: Any, role: str, is_admin: bool) -> None:
    access = access_for(roles)
    assert (access.role, access.is_admin) == (role, is_admin)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key().decode())


@pytest.fixture
def platform(db_session: Session, box: SecretBox) -> LtiPlatform:
    return add_platform(
        db_session,
        box,
        issuer="https://arche.example.fr",
        client_id="c1",
        deployment_ids=["1"],
        name="ARCHE",
    )


def _claims(kind: str = "teacher", **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = dict(recorded(f"id_token_{kind}.json")["claims"])
    claims.update(overrides)
    return claims


def test_link_creates_course_person_and_enrolment(
    db_session: Session, box: SecretBox, platform: LtiPlatform
) -> None:
    link = link_launch(db_session, box, platform, _claims())
    assert link.site.base_url == "https://arche.example.fr"
    assert link.course is not None
    assert (link.course.moodle_course_id, link.course.shortname) == (2, "ALGO101")
    assert (link.person.moodle_user_id, link.person.lti_sub) == (3, "3")
    assert link.person.email is None  # sent by Moodle, not kept (#18: data minimisation)
    assert (link.role, link.is_admin) == ("teacher", False)
    again = link_launch(db_session, box, platform, _claims(name="Claire E."))
    assert again.person.id == link.person.id
    assert again.person.fullname == "Claire E."
    enrolments = db_session.query(Enrolment).filter_by(person_id=link.person.id).all()
    assert [(e.role, e.source) for e in enrolments] == [("teacher", "lti")]


def test_racing_first_launches_share_one_person(
    backend: str, databases: Databases, box: SecretBox
) -> None:
    """A second launch commits the same new person between our look-up and our insert (two
    tabs, or a class clicking at once): ours must reuse that person, not fail with a 500."""
    engine = make_engine(databases.new_url(backend))
    migrate.upgrade(engine)
    with Session(engine) as setup:
        platform = add_platform(
            setup, box, issuer="https://arche.example.fr", client_id="c1", deployment_ids=["1"]
        )
        # The site and course exist (an earlier launch by another user), so the race is the
        # person's insert alone, as in a class's first launches.
        link_launch(setup, box, platform, _claims("teacher", sub="999"))
        setup.commit()
        platform_id = platform.id
    claims = _claims("student")
    raced: list[bool] = []

    with Session(engine) as mine:

        @event.listens_for(mine, "before_flush")
        def other_launch_wins(session: Session, *_: Any) -> None:
            if raced or not any(isinstance(o, Person) for o in session.new):
                return
            raced.append(True)
            with Session(engine) as other:
                rival = other.get(LtiPlatform, platform_id)
                assert rival is not None
                link_launch(other, box, rival, claims)
                other.commit()

        if backend == "sqlite":
            # SQLite has one writer and snapshot reads: ours read before the rival committed,
            # so it cannot write any more; the request fails as busy (the app answers 503,
            # see test_app) and nothing is half-written.
            with pytest.raises(OperationalError, match="database is locked"):
                link_launch(mine, box, mine.get_one(LtiPlatform, platform_id), claims)
            mine.rollback()
            link = link_launch(mine, box, mine.get_one(LtiPlatform, platform_id), claims)
        else:
            link = link_launch(mine, box, mine.get_one(LtiPlatform, platform_id), claims)
        mine.commit()
        assert raced == [True]
        assert link.role == "learner"
        people = mine.scalars(select(Person).where(Person.lti_sub == claims["sub"])).all()
        assert [p.id for p in people] == [link.person.id]
        enrolments = mine.scalar(
            select(func.count()).select_from(Enrolment).where(Enrolment.person_id == link.person.id)
        )
        assert enrolments == 1
    engine.dispose()


def test_link_attaches_a_person_known_from_the_roster(
    db_session: Session, box: SecretBox, platform: LtiPlatform
) -> None:
    assert platform.site_id is not None
    synced = Person(site_id=platform.site_id, moodle_user_id=4, fullname="from web services")
    db_session.add(synced)
    course = Course(site_id=platform.site_id, moodle_course_id=2, fullname="synced")
    db_session.add(course)
    db_session.flush()
    link = link_launch(db_session, box, platform, _claims("student"))
    assert link.person.id == synced.id
    assert link.person.lti_sub == "4"
    assert link.course is not None
    assert link.course.id == course.id
    assert link.course.lti_context_id == "2"
    assert link.role == "learner"


def test_non_moodle_platform_needs_a_tool_signed_course(
    db_session: Session, box: SecretBox, platform: LtiPlatform
) -> None:
    """Unsigned custom ids are a teacher's word, not the platform's: ignored. The course comes
    from the tool's own signed `arche_course`, valid for its context only."""
    claims = _claims()
    claims.pop(CLAIM + "tool_platform")
    claims[CLAIM + "custom"] = {"user_id": "77", "course_id": "12", "moodle_course_id": "12"}
    with pytest.raises(LinkError, match="arche_course"):
        link_launch(db_session, box, platform, claims, secret="s3cret")
    context_id = claims[CLAIM + "context"]["id"]
    good = sign_course_param("s3cret", platform.issuer, context_id, 12)
    for forged in (
        sign_course_param("other secret", platform.issuer, context_id, 12),
        sign_course_param("s3cret", platform.issuer, context_id + "0", 12),
        sign_course_param("s3cret", "https://other.example", context_id, 12),
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
    ):
        claims[CLAIM + "custom"] = {COURSE_PARAM: forged}
        with pytest.raises(LinkError, match="arche_course"):
            link_launch(db_session, box, platform, claims, secret="s3cret")
    claims[CLAIM + "custom"] = {COURSE_PARAM: good, "user_id": "77"}
    link = link_launch(db_session, box, platform, claims, secret="s3cret")
    assert link.person.moodle_user_id is None  # only Moodle's own sub names a Moodle user
    assert link.course is not None
    assert link.course.moodle_course_id == 12


def test_no_context_is_only_for_admins(
    db_session: Session, box: SecretBox, platform: LtiPlatform
) -> None:
    claims = _claims()
    claims.pop(CLAIM + "context")
    with pytest.raises(LinkError, match="no course"):
        link_launch(db_session, box, platform, claims)
    claims[CLAIM + "roles"] = [ADMIN]
    link = link_launch(db_session, box, platform, claims)
    assert (link.course, link.role, link.is_admin) == (None, "admin", True)


class _Req(Request):
    def get_param(self, key: str) -> str:
        return ""

    def is_secure(self) -> bool:
        return True


def test_storage_consumes_once(db_session: Session) -> None:
    storage = DbLaunchDataStorage(db_session)
    service = DbSessionService(_Req(), storage)
    service.save_nonce("n1")
    assert service.check_nonce("n1") is True
    assert service.check_nonce("n1") is False
    assert service.check_nonce("never") is False
    storage.set_value("k", {"a": 1}, exp=60)
    assert storage.get_value("k") == {"a": 1}
    expired = DbLaunchDataStorage(db_session, now=utcnow() + timedelta(seconds=61))
    assert expired.get_value("k") is None
    assert expired.consume("k") is None


def test_sessions_expire_and_hash_their_id(db_session: Session, platform: LtiPlatform) -> None:
    assert platform.site_id is not None
    person = Person(site_id=platform.site_id, lti_sub="x")
    db_session.add(person)
    db_session.flush()
    row, sid = open_session(
        db_session,
        platform_id=platform.id,
        course_id=None,
        person_id=person.id,
        role="admin",
        is_admin=True,
        message_type="LtiResourceLinkRequest",
        launch_id=None,
        lifetime=60,
    )
    assert sid not in row.sid_hash
    found = find_session(db_session, sid)
    assert found is not None
    assert found.id == row.id
    assert find_session(db_session, sid, now=utcnow() + timedelta(seconds=61)) is None
    assert find_session(db_session, sid + "x") is None


def test_platform_origins(db_session: Session, platform: LtiPlatform) -> None:
    assert "https://arche.example.fr" in platform_origins(db_session)


def test_audit_details_keep_to_valid_json(db_session: Session) -> None:
    """Attacker-chosen claims may parse to Infinity/NaN, which PostgreSQL's JSON refuses."""
    from lti_app.services import audit

    details = {"iss": float("inf"), "n": float("nan")}
    event = audit.record(db_session, "lti.launch", "rejected", "test", details=details)
    assert event.details == {"iss": "inf", "n": "nan"}

"""Every role against every page and API route.

The actors are real launches (recorded Moodle 5.1 claims with the sub, context and roles
varied); each request carries only that actor's launch token. The rule under test: a learner
(or anyone whose roles are unknown or empty) reads only their own data, a teacher reads only
their own course, admin pages need an Administrator role, and nobody without a launch reads
anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from lti_app.models import Course, LtiSession, Person
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.lti_platform import CLAIM

INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
SYS_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
INST_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"

OTHER_COURSE = {"id": "99", "label": "PHYS202", "title": "Physique 2", "type": ["CourseSection"]}


@dataclass
class Actor:
    name: str
    token: str | None
    person_id: int | None
    course: str | None  # "c2", "c99" or None
    teacher: bool
    admin: bool


@dataclass
class World:
    env: LtiEnv
    actors: dict[str, Actor]
    ids: dict[str, int | str]
    names: dict[str, str]


ACTORS: dict[str, dict[str, Any]] = {
    "teacher_c2": {"kind": "teacher"},
    "learner1_c2": {"kind": "student"},
    "learner2_c2": {"kind": "student", "sub": "5", "name": "Lina Second"},
    "teacher_c99": {
        "kind": "teacher",
        "sub": "50",
        "name": "Paul Physique",
        CLAIM + "context": OTHER_COURSE,
    },
    "learner_c99": {
        "kind": "student",
        "sub": "51",
        "name": "Zoe Ailleurs",
        CLAIM + "context": OTHER_COURSE,
    },
    "mentor_c2": {"kind": "student", "sub": "6", "name": "Max Mentor", CLAIM + "roles": [MENTOR]},
    "noroles_c2": {"kind": "student", "sub": "7", "name": "Nora Norole", CLAIM + "roles": []},
    "sysadmin_c2": {
        "kind": "student",
        "sub": "2",
        "name": "Ada Admin",
        CLAIM + "roles": [SYS_ADMIN],
    },
    "instadmin_nocourse": {
        "kind": "student",
        "sub": "8",
        "name": "Ines Institution",
        CLAIM + "roles": [INST_ADMIN],
        CLAIM + "context": None,
    },
}


def _launch_actor(env: LtiEnv, name: str, spec: dict[str, Any]) -> Actor:
    spec = dict(spec)
    kind = spec.pop("kind")
    overrides = {k: v for k, v in spec.items() if v is not None}
    if spec.get(CLAIM + "context", "") is None:
        from tests.lti_app.lti.lti_platform import DELETE

        overrides[CLAIM + "context"] = DELETE
    resp = launch(env.client(), env, kind, **overrides)
    assert resp.status_code == 303, (name, resp.get_data(as_text=True))
    token = token_of(resp)
    with env.db() as db:
        row = db.scalars(select(LtiSession).order_by(LtiSession.id.desc())).first()
        assert row is not None
        course = db.get(Course, row.course_id) if row.course_id else None
        return Actor(
            name=name,
            token=token,
            person_id=row.person_id,
            course=None if course is None else f"c{course.lti_context_id}",
            teacher=row.role == "teacher",
            admin=row.is_admin,
        )


@pytest.fixture(scope="module")
def world(lti_env: LtiEnv) -> World:
    actors = {name: _launch_actor(lti_env, name, spec) for name, spec in ACTORS.items()}
    actors["anonymous"] = Actor("anonymous", None, None, None, False, False)
    with lti_env.db() as db:
        ids: dict[str, int | str] = {
            f"c{c.lti_context_id}": c.id
            for c in db.scalars(select(Course).where(Course.lti_context_id.in_(["2", "99"])))
        }
        names = {
            a.name: db.get_one(Person, a.person_id).fullname for a in actors.values() if a.person_id
        }
    for actor in actors.values():
        if actor.person_id:
            ids[f"p_{actor.name}"] = actor.person_id
    ids["batch"] = "nosuchbatch"
    return World(lti_env, actors, ids, names)


# (route template, kind, course key, person actor or None)
ROUTES: list[tuple[str, str, str | None, str | None]] = [
    ("/course/{c2}", "teacher", "c2", None),
    ("/course/{c99}", "teacher", "c99", None),
    ("/course/{c2}/roster", "teacher", "c2", None),
    ("/course/{c2}/students.csv", "teacher", "c2", None),
    ("/course/{c99}/students.csv", "teacher", "c99", None),
    ("/course/{c2}/students.xlsx", "teacher", "c2", None),
    ("/course/{c99}/students.xlsx", "teacher", "c99", None),
    ("/course/{c2}/me", "member", "c2", None),
    ("/course/{c99}/me", "member", "c99", None),
    ("/course/{c2}/learners/{p_learner1_c2}", "person", "c2", "learner1_c2"),
    ("/course/{c2}/learners/{p_learner2_c2}", "person", "c2", "learner2_c2"),
    ("/course/{c2}/learners/{p_mentor_c2}", "person", "c2", "mentor_c2"),
    ("/course/{c99}/learners/{p_learner_c99}", "person", "c99", "learner_c99"),
    ("/course/{c2}/learners/{p_learner_c99}", "person", "c2", "learner_c99"),
    ("/api/v1/courses/{c2}", "teacher", "c2", None),
    ("/api/v1/courses/{c99}", "teacher", "c99", None),
    ("/api/v1/courses/{c2}/students", "teacher", "c2", None),
    ("/api/v1/courses/{c2}/sync", "teacher", "c2", None),
    ("/api/v1/courses/{c2}/students/{p_learner1_c2}", "person", "c2", "learner1_c2"),
    ("/api/v1/courses/{c2}/students/{p_learner2_c2}", "person", "c2", "learner2_c2"),
    ("/api/v1/courses/{c99}/students/{p_learner_c99}", "person", "c99", "learner_c99"),
    ("/api/v1/courses/{c2}/students/{p_learner_c99}", "person", "c2", "learner_c99"),
    # Teacher actions (#16): notes, statuses and contacts are the course's teachers' only.
    ("/course/{c2}/contacts", "teacher", "c2", None),
    ("/course/{c99}/contacts", "teacher", "c99", None),
    ("/course/{c2}/contacts/{batch}", "teacher_404", "c2", None),
    ("/course/{c2}/learners/{p_learner1_c2}/follow-up", "teacher_of", "c2", "learner1_c2"),
    ("/course/{c2}/learners/{p_learner2_c2}/follow-up", "teacher_of", "c2", "learner2_c2"),
    ("/course/{c99}/learners/{p_learner_c99}/follow-up", "teacher_of", "c99", "learner_c99"),
    ("/course/{c2}/learners/{p_learner_c99}/follow-up", "teacher_of", "c2", "learner_c99"),
    # Past offerings (#17): the page and the API list what the teacher taught (this site has
    # no web-service token: the page says so, the API answers 409 no_connection).
    ("/course/{c2}/past-offerings", "teacher", "c2", None),
    ("/course/{c99}/past-offerings", "teacher", "c99", None),
    ("/api/v1/courses/{c2}/past-offerings", "teacher_409", "c2", None),
    # The learner's own data page and JSON (#18): every member reads their own.
    ("/course/{c2}/my-data", "member", "c2", None),
    ("/course/{c99}/my-data", "member", "c99", None),
    ("/course/{c2}/my-data.json", "member", "c2", None),
    ("/admin", "admin", None, None),
    ("/lti/config", "admin", None, None),
    ("/lti/deep-link", "deep_link", None, None),
]

#: GET routes outside the matrix: each one's access is the subject of its own tests (the LTI
#: handshake, keys and registration, health and metrics, the API's document, static files, and
#: the public front page and icon: tests/lti_app/test_home.py).
OUTSIDE_THE_MATRIX = {
    "/",
    "/favicon.ico",
    "/api/v1/openapi.json",
    "/healthz",
    "/lti/jwks",
    "/lti/login",
    "/lti/register",
    "/lti/resume",
    "/metrics",
    "/static/{}",
}


def test_the_matrix_lists_every_page_and_api_route(world: World) -> None:
    """A new GET route is in the matrix (or, with a reason, outside it), and every route of the
    matrix is one the app serves (a retired route leaves it)."""
    served = {
        re.sub(r"<(?:\w+:)?\w+>", "{}", rule.rule)
        for rule in world.env.app.url_map.iter_rules()
        if "GET" in (rule.methods or ())
    }
    listed = {re.sub(r"\{\w+\}", "{}", template) for template, *_ in ROUTES}
    assert served - OUTSIDE_THE_MATRIX == listed


ENROLLED = {
    "c2": {"teacher_c2", "learner1_c2", "learner2_c2", "mentor_c2", "noroles_c2", "sysadmin_c2"},
    "c99": {"teacher_c99", "learner_c99"},
}


def expected_status(
    world: World, actor: Actor, kind: str, course: str | None, person: str | None
) -> int:
    if actor.token is None:
        return 401
    if kind == "admin":
        return 200 if actor.admin else 403
    if kind == "deep_link":
        return 403  # none of these sessions is a deep-linking launch
    if actor.course != course:
        return 403
    if kind == "teacher":
        return 200 if actor.teacher else 403
    if kind == "teacher_404":  # a teacher's route asked for something the course lacks
        return 404 if actor.teacher else 403
    if kind == "teacher_409":  # a teacher's route that needs Moodle, which this site lacks
        return 409 if actor.teacher else 403
    if kind == "teacher_of":  # a teacher's page about one enrolled person
        return 200 if actor.teacher and person in ENROLLED[course or ""] else 403
    if kind == "member":
        return 200
    assert person is not None
    if actor.teacher:
        return 200 if person in ENROLLED[course or ""] else 403
    return 200 if person == actor.name else 403


CASES = [(a, r) for a in [*ACTORS, "anonymous"] for r in range(len(ROUTES))]


@pytest.mark.parametrize(("actor_name", "route_index"), CASES)
def test_access(world: World, actor_name: str, route_index: int) -> None:
    actor = world.actors[actor_name]
    template, kind, course, person = ROUTES[route_index]
    path = template.format(**world.ids)
    headers = {"X-Launch-Token": actor.token} if actor.token else {}
    resp = world.env.client().get(path, headers=headers)
    want = expected_status(world, actor, kind, course, person)
    assert resp.status_code == want, (
        actor_name,
        path,
        resp.status_code,
        resp.get_data()[:300],
    )
    text = resp.get_data().decode("utf-8", "replace")  # the .xlsx is a zip
    assert "Traceback" not in text
    if not actor.teacher and not (kind == "admin" and actor.admin):
        # A learner-level session never shows anybody else's name (the admin page does, to an
        # administrator: the access log of who viewed whose prediction, #18).
        for other, name in world.names.items():
            if other != actor.name and name:
                assert name not in text, (actor_name, path, other)


POST_ROUTES = [
    "roster/refresh",
    "learner-view",
    "settings",
    # Teacher actions (#16).
    "contact",
    "learners/{p_learner1_c2}/follow-up",
    "risk-group",
    "groups/refresh",
    "digest",
    # Past offerings (#17).
    "past-offerings",
    # Whether learners may opt out (#18).
    "opt-out",
]
#: POST routes a learner may use, on their own data only (each tested in its own module:
#: tests/lti_app/lti/test_privacy_pages.py).
LEARNER_POST_ROUTES = ["my-data/choice"]


def test_every_post_route_is_checked(world: World) -> None:
    course_posts = {
        re.sub(r"<(?:\w+:)?\w+>", "{}", rule.rule)
        for rule in world.env.app.url_map.iter_rules()
        if "POST" in (rule.methods or ()) and rule.rule.startswith("/course/")
    }
    listed = {
        "/course/{}/" + re.sub(r"\{\w+\}", "{}", r) for r in POST_ROUTES + LEARNER_POST_ROUTES
    }
    assert course_posts == listed


@pytest.mark.parametrize("route", POST_ROUTES)
def test_post_routes_need_a_teacher_and_a_csrf_token(world: World, route: str) -> None:
    env = world.env
    path = f"/course/{world.ids['c2']}/{route.format(**world.ids)}"
    learner = world.actors["learner1_c2"]
    teacher = world.actors["teacher_c2"]
    other_teacher = world.actors["teacher_c99"]
    with env.db() as db:
        csrf = {row.person_id: row.csrf_token for row in db.scalars(select(LtiSession))}
    # No token at all.
    assert env.client().post(path).status_code == 403
    # Teacher session, wrong or missing CSRF token.
    headers = {"X-Launch-Token": teacher.token or ""}
    assert env.client().post(path, headers=headers).status_code == 403
    assert env.client().post(path, headers=headers, data={"csrf_token": "guess"}).status_code == 403
    # Another course's teacher with a valid CSRF token of their own.
    assert other_teacher.person_id is not None
    resp = env.client().post(
        path,
        headers={"X-Launch-Token": other_teacher.token or ""},
        data={"csrf_token": csrf[other_teacher.person_id]},
    )
    assert resp.status_code == 403
    # A learner with their own valid CSRF token.
    assert learner.person_id is not None
    resp = env.client().post(
        path,
        headers={"X-Launch-Token": learner.token or ""},
        data={"csrf_token": csrf[learner.person_id]},
    )
    assert resp.status_code == 403

"""A teacher links the course's past offerings from the dashboard (#17, item 1), over real
signed launches and a Moodle stub answering as Moodle 5.1 did (tests/moodle_stub.py: the
launching teacher is Moodle user 3, teacher1 of the recording; course 2 is ALGO101, courses 3
and 4 its 2024 and 2025 offerings).

What must hold: the page offers exactly the courses the teacher taught; a pick of any other
course, by the form or the API, is refused (403) and links nothing; a link requests the
backfill; a site that requires approval keeps the links pending until an administrator
decides on the admin page; Moodle down is said on the page, never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from lti_app.crypto import SecretBox
from lti_app.models import (
    AuditEvent,
    Course,
    CourseLineage,
    LiveValidation,
    LtiSession,
    MoodleSite,
    SyncRequest,
)
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.french_text import english_in, visible_text
from tests.moodle_stub import TOKEN, MoodleStub, fixture

SYS_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


@dataclass
class World:
    env: LtiEnv
    moodle: MoodleStub
    teacher: str
    teacher_fr: str
    learner: str
    admin: str
    course_id: int
    site_id: int


@pytest.fixture(scope="module")
def world(lti_env: LtiEnv) -> Iterator[World]:
    teacher = token_of(launch(lti_env.client(), lti_env, "teacher"))
    teacher_fr = token_of(launch(lti_env.client(), lti_env, "teacher_fr"))
    learner = token_of(launch(lti_env.client(), lti_env, "student"))
    admin_claims: dict[str, Any] = {"sub": "2", "name": "Ada Admin", CLAIM + "roles": [SYS_ADMIN]}
    admin = token_of(launch(lti_env.client(), lti_env, "student", **admin_claims))
    moodle = MoodleStub([]).start()
    with lti_env.db() as db:
        row = db.scalars(select(LtiSession).where(LtiSession.role == "teacher")).first()
        assert row is not None
        assert row.course_id is not None
        course = db.get_one(Course, row.course_id)
        site = db.get_one(MoodleSite, course.site_id)
        site.base_url = moodle.url
        site.ws_token_encrypted = SecretBox.from_settings(lti_env.settings).encrypt(TOKEN)
        course_id, site_id = course.id, site.id
        db.commit()
    try:
        yield World(lti_env, moodle, teacher, teacher_fr, learner, admin, course_id, site_id)
    finally:
        moodle.stop()


@pytest.fixture(autouse=True)
def _fresh(world: World) -> Iterator[None]:
    """Each test starts with no link, no request and the site taking links at once."""
    yield
    world.moodle.rosters.clear()
    world.moodle.before_call = None
    with world.env.db() as db:
        db.execute(delete(CourseLineage))
        db.execute(delete(SyncRequest))
        db.get_one(MoodleSite, world.site_id).link_approval_required = False
        db.commit()


def _get(world: World, path: str, token: str) -> tuple[int, str]:
    resp = world.env.client().get(path, headers={"X-Launch-Token": token})
    return resp.status_code, resp.get_data(as_text=True)


def _csrf(world: World, token: str) -> str:
    """The CSRF token the launch's pages hand out (every page's `csrf-token` meta)."""
    _, page = _get(world, f"/course/{world.course_id}/me", token)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found
    return found.group(1)


def _post(world: World, path: str, token: str, data: dict[str, object]) -> tuple[int, str, str]:
    resp = world.env.client().post(
        path, headers={"X-Launch-Token": token}, data={"csrf_token": _csrf(world, token), **data}
    )
    return resp.status_code, resp.get_data(as_text=True), resp.headers.get("Location", "")


def _api(world: World, token: str, body: object) -> tuple[int, dict[str, object]]:
    resp = world.env.client().post(
        f"/api/v1/courses/{world.course_id}/past-offerings",
        headers={"X-Launch-Token": token, "X-CSRF-Token": _csrf(world, token)},
        json=body,
    )
    return resp.status_code, resp.get_json()


def _links(world: World) -> dict[int, str]:
    with world.env.db() as db:
        rows = db.execute(
            select(Course.moodle_course_id, CourseLineage.status)
            .join(CourseLineage, CourseLineage.past_course_id == Course.id)
            .where(CourseLineage.course_id == world.course_id)
        ).all()
    return {int(m): s for m, s in rows}


def _requests(world: World) -> list[tuple[str, int]]:
    with world.env.db() as db:
        return [
            (r.kind, r.steps_total)
            for r in db.scalars(select(SyncRequest).where(SyncRequest.course_id == world.course_id))
        ]


def _without_teacher() -> list[dict[str, object]]:
    return [u for u in fixture("core_enrol_get_enrolled_users.json") if u["id"] != 3]


def test_the_page_offers_what_the_teacher_taught_and_links_it(world: World) -> None:
    status, page = _get(world, f"/course/{world.course_id}/past-offerings", world.teacher)
    assert status == 200
    rows = re.findall(r'<tr data-moodle-id="(\d+)">', page)
    assert rows == ["4", "3"]  # newest first; 5 started with this course, 2 is this course
    assert page.count(">40</td>") == 2  # students on each roster (41 enrolled with the teacher)
    status, _, location = _post(
        world, f"/course/{world.course_id}/past-offerings", world.teacher, {"past": ["3", "4"]}
    )
    assert status == 303
    assert "links=linked" in location
    assert _links(world) == {3: "active", 4: "active"}
    assert _requests(world) == [("backfill", 3)]
    # The dashboard says so, follows the backfill, and the page lists the links.
    status, dash = _get(world, location.split("?")[0] + "?links=linked", world.teacher)
    assert status == 200
    assert 'id="links-message"' in dash
    assert 'data-open="1"' in dash
    _, page = _get(world, f"/course/{world.course_id}/past-offerings", world.teacher)
    assert re.findall(r'<tr data-moodle-id="(\d+)" data-status="(\w+)">', page) == [
        ("3", "active"),
        ("4", "active"),
    ]
    with world.env.db() as db:
        audit = db.scalars(
            select(AuditEvent).where(AuditEvent.action == "course.past_offerings")
        ).all()
        assert [(a.outcome, a.details) for a in audit][-1] == (
            "accepted",
            {"active": "[3, 4]", "pending": "[]"},  # the audit log keeps its details as text
        )


@pytest.mark.parametrize(
    "picked",
    [["5"], ["2"], ["99"], ["3", "99"], ["3"]],
    ids=["not-earlier", "itself", "unknown", "one-bad-of-two", "not-taught"],
)
def test_a_course_the_teacher_did_not_teach_is_refused_and_nothing_is_linked(
    world: World, picked: list[str]
) -> None:
    world.moodle.rosters[3] = _without_teacher()  # course 3: taught by someone else
    status, page, _ = _post(
        world, f"/course/{world.course_id}/past-offerings", world.teacher, {"past": picked}
    )
    assert status == 403
    assert 'id="link-error" data-code="not_taught"' in page
    status, body = _api(world, world.teacher, {"moodle_course_ids": [int(p) for p in picked]})
    assert status == 403
    assert body["code"] == "not_taught"
    assert _links(world) == {}
    assert _requests(world) == []


def test_the_api_lists_and_links(world: World) -> None:
    resp = world.env.client().get(
        f"/api/v1/courses/{world.course_id}/past-offerings",
        headers={"X-Launch-Token": world.teacher},
    )
    assert resp.status_code == 200
    listed = resp.get_json()["candidates"]
    assert [(c["moodle_course_id"], c["students"], c["match"]) for c in listed] == [
        (4, 40, "same_name"),
        (3, 40, "same_name"),
    ]
    for bad in ({}, {"moodle_course_ids": "3"}, {"moodle_course_ids": [True]}, [3]):
        status, body = _api(world, world.teacher, bad)
        assert status == 400
        assert body["code"] == "bad_request"
    status, body = _api(world, world.teacher, {"moodle_course_ids": []})
    assert status == 400
    assert body["code"] == "none_picked"
    status, body = _api(world, world.teacher, {"moodle_course_ids": [4]})
    assert status == 202
    assert (body["active"], body["pending"]) == ([4], [])
    assert body["progress"]["kind"] == "backfill"  # type: ignore[index]
    assert _links(world) == {4: "active"}


def test_a_learner_cannot_link(world: World) -> None:
    status, _body = _api(world, world.learner, {"moodle_course_ids": [3]})
    assert status == 403
    assert _links(world) == {}


def test_approval_keeps_links_pending_until_an_administrator_decides(world: World) -> None:
    with world.env.db() as db:
        db.get_one(MoodleSite, world.site_id).link_approval_required = True
        db.commit()
    _, page = _get(world, f"/course/{world.course_id}/past-offerings", world.teacher)
    assert 'id="approval-note"' in page
    status, _, location = _post(
        world, f"/course/{world.course_id}/past-offerings", world.teacher, {"past": ["3", "4"]}
    )
    assert status == 303
    assert "links=linked_pending" in location
    assert _links(world) == {3: "pending", 4: "pending"}
    assert _requests(world) == []
    status, admin_page = _get(world, "/admin", world.admin)
    assert status == 200
    pending = re.findall(r'<tr data-link="(\d+)">', admin_page)
    assert len(pending) == 2
    # A teacher cannot decide; an administrator approves one and refuses the other.
    resp = world.env.client().post(
        f"/admin/links/{pending[0]}/decision",
        headers={"X-Launch-Token": world.teacher},
        data={"csrf_token": _csrf(world, world.teacher), "decision": "approve"},
    )
    assert resp.status_code == 403
    admin_csrf = re.search(r'name="csrf_token" value="([^"]+)"', admin_page)
    assert admin_csrf
    for link_id, decision in zip(pending, ("approve", "reject"), strict=True):
        resp = world.env.client().post(
            f"/admin/links/{link_id}/decision",
            headers={"X-Launch-Token": world.admin},
            data={"csrf_token": admin_csrf.group(1), "decision": decision},
        )
        assert resp.status_code == 303
    assert sorted(_links(world).values()) == ["active", "rejected"]
    assert _requests(world) == [("backfill", 2)]
    resp = world.env.client().post(
        f"/admin/links/{pending[0]}/decision",
        headers={"X-Launch-Token": world.admin},
        data={"csrf_token": admin_csrf.group(1), "decision": "reject"},
    )
    assert resp.status_code == 409  # decided already
    # The site setting is switched from the admin page too.
    resp = world.env.client().post(
        f"/admin/sites/{world.site_id}/link-approval",
        headers={"X-Launch-Token": world.admin},
        data={"csrf_token": admin_csrf.group(1), "required": "0"},
    )
    assert resp.status_code == 303
    with world.env.db() as db:
        assert db.get_one(MoodleSite, world.site_id).link_approval_required is False


def test_moodle_down_is_said_never_a_500(world: World) -> None:
    world.moodle.before_call = lambda name, params: 503
    status, page = _get(world, f"/course/{world.course_id}/past-offerings", world.teacher)
    assert status == 200
    assert 'id="candidates-problem"' in page
    status, page, _ = _post(
        world, f"/course/{world.course_id}/past-offerings", world.teacher, {"past": ["3"]}
    )
    assert status == 502
    assert "Traceback" not in page
    resp = world.env.client().get(
        f"/api/v1/courses/{world.course_id}/past-offerings",
        headers={"X-Launch-Token": world.teacher},
    )
    assert resp.status_code == 502
    assert resp.get_json()["code"] == "moodle_error"
    assert _links(world) == {}


def test_the_page_reads_in_french(world: World) -> None:
    status, page = _get(world, f"/course/{world.course_id}/past-offerings", world.teacher_fr)
    assert status == 200
    found = english_in(visible_text(page), names={"ALGO101", "Algorithmique"})
    assert found == [], found


def test_the_dashboard_of_a_course_without_links_points_to_the_page(world: World) -> None:
    status, dash = _get(world, f"/course/{world.course_id}", world.teacher)
    assert status == 200
    assert 'id="offerings-link"' in dash
    with world.env.db() as db:
        assert db.scalar(select(func.count()).select_from(CourseLineage)) == 0


def test_the_card_and_the_admin_page_show_live_validation_and_its_drift(world: World) -> None:
    """#17, item 3 on the pages: a finished term's stored live validation (the figures are
    tested against a direct computation in tests/lti_app/test_live_validation.py)."""
    weeks = [
        {"week": 4, "n": 40, "n_flagged": 12, "failed_flagged": 9, "failed_unflagged": 2,
         "share_failed_flagged": 0.75, "share_failed_unflagged": 2 / 28, "auc": 0.86,
         "coverage": 0.9, "drift": ""},
        {"week": 8, "n": 40, "n_flagged": 15, "failed_flagged": 8, "failed_unflagged": 6,
         "share_failed_flagged": 8 / 15, "share_failed_unflagged": 6 / 25, "auc": 0.61,
         "coverage": 0.7, "drift": "ranking;ranges"},
    ]  # fmt: skip
    with world.env.db() as db:
        db.add(
            LiveValidation(
                course_id=world.course_id, pass_mark=10.0, n_students=40, drift=True, weeks=weeks
            )
        )
        db.commit()
    try:
        _, dash = _get(world, f"/course/{world.course_id}", world.teacher)
        text = visible_text(dash)
        assert "of the 12 students flagged at week 4, 75 % failed" in text
        assert "Of the 28 not flagged, 7 % failed." in text
        assert 'id="live-drift"' in dash
        assert re.findall(r'<tr data-week="(\d+)"( class="table-warning")?>', dash) == [
            ("4", ""),
            ("8", ' class="table-warning"'),
        ]
        _, dash_fr = _get(world, f"/course/{world.course_id}", world.teacher_fr)
        assert "signalés à la semaine 4" in visible_text(dash_fr)
        _, admin_page = _get(world, "/admin", world.admin)
        assert re.findall(
            r'<tr data-course="(\d+)"><td>[^<]*</td><td>([^<]*)</td>', admin_page
        ) == [(str(world.course_id), "8")]
    finally:
        with world.env.db() as db:
            db.execute(delete(LiveValidation))
            db.commit()

"""Teachers link past offerings (#17, item 1), on SQLite and PostgreSQL, against the answers
recorded from Moodle 5.1 over HTTP (tests/moodle_stub.py: teacher1 is user 3; course 2 is the
current ALGO101, courses 3 and 4 its 2024 and 2025 offerings, 5 a course without an end date;
section 11 of tests/fixtures/moodle-5.1/README.md).

What must hold: only courses the teacher taught are offered and can be linked, whatever the
form says (all or nothing); an approval site keeps links pending and pulls nothing; a backfill
syncs each new past offering once, then the course, and its progress spans them all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from lti_app.config import Settings
from lti_app.db import session_scope
from lti_app.models import Course, CourseLineage, Person, SyncRequest, SyncRun
from lti_app.services import offering_links as links
from lti_app.services import sync_requests
from lti_app.services.courses import past_offerings
from lti_app.tasks import run_backfill
from moodle_client import MoodleClient
from tests.conftest import Databases
from tests.lti_app.test_sync import make_settings, setup_course
from tests.moodle_stub import TOKEN, MoodleStub, fixture


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    moodle = MoodleStub().start()
    yield moodle
    moodle.stop()


@pytest.fixture
def client(stub: MoodleStub) -> MoodleClient:
    return MoodleClient(stub.url, TOKEN, max_retries=0, timeout=10.0)


def _setup(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> tuple[Settings, sessionmaker[Session], int, int]:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    with session_scope(factory) as session:
        course = session.get_one(Course, course_id)
        teacher = Person(site_id=course.site_id, moodle_user_id=3, fullname="Teacher One")
        session.add(teacher)
        session.flush()
        teacher_id = teacher.id
    return settings, factory, course_id, teacher_id


def _without_teacher(userid: int) -> list[dict[str, object]]:
    """The recorded roster with `userid` removed: a course that user did not teach."""
    return [u for u in fixture("core_enrol_get_enrolled_users.json") if u["id"] != userid]


def test_the_teacher_is_offered_the_offerings_they_taught(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub, client: MoodleClient
) -> None:
    _, factory, course_id, _ = _setup(backend, databases, tmp_path, stub)
    with session_scope(factory) as session:
        course = session.get_one(Course, course_id)
        found = links.find_candidates(session, client, course, 3)
        # Newest first among the same-named; course 5 starts with course 2 (not earlier); 2 is
        # the course itself. 40 students in each recorded roster (41 enrolled, the teacher too).
        assert [(c.courseid, c.candidate.shortname, c.students) for c in found] == [
            (4, "ALGO101-2025", 40),
            (3, "ALGO101-2024", 40),
        ]
        assert all(c.link_status is None for c in found)
        assert found[0].start() is not None
        assert found[0].end() is not None
        # A student (user 4) taught nothing: nothing is offered.
        assert links.find_candidates(session, client, course, 4) == []
        stub.rosters[3] = _without_teacher(3)
        assert [c.courseid for c in links.find_candidates(session, client, course, 3)] == [4]


def test_linking_is_all_or_nothing_and_checked_against_moodle(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub, client: MoodleClient
) -> None:
    _, factory, course_id, teacher_id = _setup(backend, databases, tmp_path, stub)
    stub.rosters[3] = _without_teacher(3)
    for picked in ([3], [3, 4], [4, 99], [2], [5], []):
        with session_scope(factory) as session:
            course = session.get_one(Course, course_id)
            with pytest.raises(links.LinkError) as refused:
                links.link_offerings(
                    session,
                    client,
                    course,
                    session.get_one(Person, teacher_id),
                    picked,
                    approval_required=False,
                )
            assert refused.value.code == ("none_picked" if not picked else "not_taught")
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(CourseLineage)) == 0
        assert session.scalar(select(func.count()).select_from(SyncRequest)) == 0
        assert session.scalar(select(func.count()).select_from(Course)) == 1


def test_links_backfill_each_past_offering_then_the_course(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub, client: MoodleClient
) -> None:
    settings, factory, course_id, teacher_id = _setup(backend, databases, tmp_path, stub)
    with session_scope(factory) as session:
        course = session.get_one(Course, course_id)
        outcome = links.link_offerings(
            session, client, course, session.get_one(Person, teacher_id), [4, 3],
            approval_required=False,
        )  # fmt: skip
        assert (outcome.active, outcome.pending) == ([3, 4], [])
        assert outcome.request_id is not None
        request_id = outcome.request_id
        past = past_offerings(session, course_id)
        assert [p.moodle_course_id for p in past] == [3, 4]  # oldest first
        assert all(p.sync_enabled is False for p in past)  # pulled once, not every night
        req = session.get_one(SyncRequest, request_id)
        assert (req.kind, req.steps_total, req.steps_done) == ("backfill", 3, 0)
    with session_scope(factory) as session:
        claimed = sync_requests.claim_next(session, "test")
        assert claimed is not None
        assert claimed.id == request_id
    outcomes = run_backfill(settings, factory, course_id, request_id)
    assert [o.status for o in outcomes] == ["succeeded"] * 3
    with session_scope(factory) as session:
        sync_requests.finish(session, request_id)
    with factory() as session:
        runs = session.execute(
            select(Course.moodle_course_id, SyncRun.trigger)
            .join(SyncRun, SyncRun.course_id == Course.id)
            .order_by(SyncRun.id)
        ).all()
        assert [tuple(r) for r in runs] == [(3, "backfill"), (4, "backfill"), (2, "backfill")]
        shown = sync_requests.progress(session, course_id)
        assert (shown["state"], shown["kind"], shown["steps"], shown["fraction"]) == (
            "done", "backfill", 3, 1.0,
        )  # fmt: skip
        # Linking again pulls nothing twice: only the course itself is left to sync.
        course = session.get_one(Course, course_id)
        again = links.link_offerings(
            session, client, course, session.get_one(Person, teacher_id), [3],
            approval_required=False,
        )  # fmt: skip
        assert again.request_id is None
        assert again.active == [3]
        req = links.start_backfill(session, course, teacher_id)
        assert req.steps_total == 1
        session.rollback()


def test_an_approval_site_keeps_links_pending_until_an_administrator_decides(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub, client: MoodleClient
) -> None:
    _, factory, course_id, teacher_id = _setup(backend, databases, tmp_path, stub)
    with session_scope(factory) as session:
        course = session.get_one(Course, course_id)
        admin = Person(site_id=course.site_id, fullname="Admin")
        session.add(admin)
        session.flush()
        admin_id = admin.id
        outcome = links.link_offerings(
            session, client, course, session.get_one(Person, teacher_id), [3, 4],
            approval_required=True,
        )  # fmt: skip
        assert (outcome.active, outcome.pending, outcome.request_id) == ([], [3, 4], None)
        assert past_offerings(session, course_id) == []  # nothing trains on a pending link
        pending = links.pending_links(session)
        assert [(p.past.moodle_course_id, p.requested_by) for p in pending] == [
            (3, "Teacher One"),
            (4, "Teacher One"),
        ]
        assert session.scalar(select(func.count()).select_from(SyncRequest)) == 0
        links.decide(session, pending[0].link_id, admin_id, approve=True)
        links.decide(session, pending[1].link_id, admin_id, approve=False)
        assert [p.moodle_course_id for p in past_offerings(session, course_id)] == [3]
        req = sync_requests.open_request(session, course_id)
        assert req is not None
        assert (req.kind, req.steps_total) == ("backfill", 2)
        with pytest.raises(links.LinkError):
            links.decide(session, pending[1].link_id, admin_id, approve=True)  # decided
        statuses = {
            c.courseid: c.link_status for c in links.find_candidates(session, client, course, 3)
        }
        assert statuses == {3: "active", 4: "rejected"}
        # Asked again, a rejected link waits again; the active one is left as it is.
        again = links.link_offerings(
            session, client, course, session.get_one(Person, teacher_id), [3, 4],
            approval_required=True,
        )  # fmt: skip
        assert (again.active, again.pending) == ([3], [4])

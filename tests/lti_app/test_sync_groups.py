"""The sync stores the course's Moodle groups (#16, items 3 and 5: the dashboard's group filter);
a refusal marks the feature unavailable and no Moodle error there fails the sync. On SQLite and
PostgreSQL, against the recorded answers over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from lti_app.models import MoodleGroup, MoodleGroupMember, MoodleSite, Person
from lti_app.tasks import run_course_sync
from tests.conftest import Databases
from tests.lti_app.test_sync import make_settings, setup_course
from tests.moodle_stub import MoodleStub, fixture


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    moodle = MoodleStub().start()
    yield moodle
    moodle.stop()


def _stored(factory: object, course_id: int) -> dict[str, set[int]]:
    """Group name -> the Moodle user ids of its stored members."""
    with factory() as session:  # type: ignore[operator]
        rows = session.execute(
            select(MoodleGroup.name, Person.moodle_user_id)
            .join(MoodleGroupMember, MoodleGroupMember.group_id == MoodleGroup.id, isouter=True)
            .join(Person, Person.id == MoodleGroupMember.person_id, isouter=True)
            .where(MoodleGroup.course_id == course_id)
        ).all()
    out: dict[str, set[int]] = {}
    for name, uid in rows:
        out.setdefault(name, set())
        if uid is not None:
            out[name].add(uid)
    return out


def test_a_sync_stores_the_groups_and_their_members(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)

    outcome = run_course_sync(settings, factory, course_id)

    assert outcome.status == "succeeded"
    recorded = {
        g["groupid"]: set(g["userids"]) for g in fixture("core_group_get_group_members.json")
    }
    assert _stored(factory, course_id) == {"Groupe A": recorded[1], "Groupe B": recorded[2]}
    # A group made in Moodle since, and a member moved: the next sync follows.
    stub.groups.append({**stub.groups[0], "id": 9, "name": "TD 3"})
    stub.group_userids[9] = [4, 5]
    stub.group_userids[1].remove(4)
    assert run_course_sync(settings, factory, course_id).status == "succeeded"
    stored = _stored(factory, course_id)
    assert stored["TD 3"] == {4, 5}
    assert 4 not in stored["Groupe A"]
    with factory() as session:
        site = session.scalars(select(MoodleSite)).one()
        assert "groups" not in (site.unavailable_features or {})


def test_groups_refused_mark_the_feature_and_the_sync_succeeds(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    assert run_course_sync(settings, factory, course_id).status == "succeeded"
    before = _stored(factory, course_id)
    stub.handlers["core_group_get_course_groups"] = lambda p: fixture(
        "error_missing_capability__managegroups.json"
    )

    assert run_course_sync(settings, factory, course_id).status == "succeeded"

    with factory() as session:
        site = session.scalars(select(MoodleSite)).one()
        assert "Manage groups" in (site.unavailable_features or {})["groups"]
    assert _stored(factory, course_id) == before  # the groups stored before stay


@pytest.mark.parametrize(
    "answer",
    [
        "error_invalid_record__course.json",
        "error_format_not_supported__mixed_messages.json",
        "not json",
    ],
)
def test_no_other_moodle_error_fails_the_sync(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub, answer: str
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    body = fixture(answer) if answer.endswith(".json") else {"unexpected": answer}
    stub.handlers["core_group_get_group_members"] = lambda p: body

    outcome = run_course_sync(settings, factory, course_id)

    assert outcome.status == "succeeded", outcome.error_message
    assert _stored(factory, course_id) == {}
    with factory() as session:
        site = session.scalars(select(MoodleSite)).one()
        assert "groups" not in (site.unavailable_features or {})

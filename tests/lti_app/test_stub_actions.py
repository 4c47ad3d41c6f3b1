"""tests/moodle_stub.py plays the teacher actions (#16) statefully on the recorded answers, so
the sync, the scheduler's digest and the browser tests can use them over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moodle_client import MoodleClient
from moodle_client import actions as act
from moodle_client.errors import InvalidParameterError, MoodleError
from tests.moodle_stub import TOKEN, MoodleStub, fixture


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    moodle = MoodleStub([]).start()
    yield moodle
    moodle.stop()


@pytest.fixture
def client(stub: MoodleStub) -> MoodleClient:
    return MoodleClient(stub.url, TOKEN, max_retries=0, timeout=10.0)


def test_groups_start_as_recorded_and_follow_the_changes(client: MoodleClient) -> None:
    groups = act.course_groups(client, 2)
    assert [(g.id, g.name) for g in groups] == [(1, "Groupe A"), (2, "Groupe B")]
    assert act.course_groups(client, 3) == []
    recorded = {
        g["groupid"]: sorted(g["userids"]) for g in fixture("core_group_get_group_members.json")
    }
    assert act.group_members(client, [1, 2]) == {k: tuple(v) for k, v in recorded.items()}
    made = act.create_group(client, 2, "\u00c0 risque \u2013 semaine 10", "")
    assert made.id == 3  # as recorded
    with pytest.raises(InvalidParameterError):
        act.create_group(client, 2, "\u00c0 risque \u2013 semaine 10", "")
    act.add_group_members(client, 3, [8, 15, 36])
    assert act.group_members(client, [3]) == {3: (8, 15, 36)}  # __after_add.json
    act.delete_group_members(client, 3, [36])
    assert act.group_members(client, [3]) == {3: (8, 15)}  # __after_delete.json
    with pytest.raises(MoodleError):
        act.group_members(client, [77])


def test_messages_and_notes_are_kept(client: MoodleClient, stub: MoodleStub) -> None:
    assert act.send_message(client, 4, "<p>Bonjour</p>").status == "sent"
    refused = act.send_message(client, 99999, "<p>x</p>", clientmsgid="ap-2")
    assert refused.status == "refused"
    assert "(99999) that doesn't exist" in refused.reason
    stub.unreachable.add(5)
    assert act.send_message(client, 5, "<p>x</p>").status == "refused"
    assert [(m["touserid"], m["text"], m["msgid"]) for m in stub.sent_messages] == [
        (4, "<p>Bonjour</p>", 1)
    ]
    with pytest.raises(MoodleError) as mixed:
        client.call(
            "core_message_send_instant_messages",
            {
                "messages": [
                    {"touserid": 6, "text": "a", "textformat": 1},
                    {"touserid": 99999, "text": "b", "textformat": 1},
                ]
            },
            retry=False,
        )
    assert mixed.value.errorcode == "formatnotsupported"
    assert [m["touserid"] for m in stub.sent_messages] == [4, 6]  # delivered all the same
    note = act.create_course_note(client, 2, 5, "<p>vu</p>", clientnoteid="ap-risk-5-w10")
    assert note.noteid == 1
    assert [(n["userid"], n["courseid"], n["clientnoteid"]) for n in stub.notes] == [
        (5, 2, "ap-risk-5-w10")
    ]

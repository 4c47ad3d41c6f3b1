"""Groups, messages and notes (issue #16) over the HTTP stub, with the answers and errors
recorded on Moodle 5.1 (tests/fixtures/moodle-5.1/README.md, "Round 2", sections 3-5)."""

from __future__ import annotations

import pytest

from moodle_client import AccessDeniedError, MissingCapabilityError, MoodleClient, MoodleError
from moodle_client.actions import (
    add_group_members,
    course_groups,
    create_course_note,
    create_group,
    delete_group_members,
    group_members,
    send_message,
)
from tests.moodle_client.conftest import MoodleStub, Reply, Sleeps, fixture_json

# The group name the recordings used (with an en dash, as Moodle shows it).
GROUP_NAME = "À risque \u2013 semaine 10"


def _recorded(name: str) -> Reply:
    return Reply(body=fixture_json(name))


# --------------------------------------------------------------------------- groups


def test_groups_and_sorted_members(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue("core_group_get_course_groups", _recorded("core_group_get_course_groups.json"))
    moodle.queue("core_group_get_group_members", _recorded("core_group_get_group_members.json"))
    groups = course_groups(client, 2)
    assert [(g.id, g.name) for g in groups] == [(1, "Groupe A"), (2, "Groupe B")]
    members = group_members(client, [g.id for g in groups])
    recorded = {
        e["groupid"]: e["userids"] for e in fixture_json("core_group_get_group_members.json")
    }
    assert members == {gid: tuple(sorted(ids)) for gid, ids in recorded.items()}
    assert moodle.calls_to("core_group_get_group_members")[0].form.getlist("groupids[0]") == ["1"]
    assert group_members(client, []) == {}  # no call for no group


def test_create_group_then_add_and_remove_members(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue("core_group_create_groups", _recorded("core_group_create_groups.json"))
    moodle.queue("core_group_add_group_members", Reply(body=None))  # Moodle answers `null`
    moodle.queue("core_group_delete_group_members", Reply(body=None))
    group = create_group(client, 2, GROUP_NAME, "Étudiants signalés par arche-predict")
    assert (group.id, group.name) == (3, GROUP_NAME)
    sent = moodle.calls_to("core_group_create_groups")[0].form
    assert sent["groups[0][name]"] == GROUP_NAME
    assert sent["groups[0][descriptionformat]"] == "1"
    add_group_members(client, 3, [36, 8, 15, 8])
    form = moodle.calls_to("core_group_add_group_members")[0].form
    assert [form[f"members[{i}][userid]"] for i in range(3)] == ["8", "15", "36"]
    assert "members[3][userid]" not in form
    delete_group_members(client, 3, [36])
    assert moodle.calls_to("core_group_delete_group_members")[0].form["members[0][userid]"] == "36"
    add_group_members(client, 3, [])  # nothing to add: no call
    assert len(moodle.calls_to("core_group_add_group_members")) == 1


def test_group_errors_as_recorded(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        "core_group_get_course_groups", _recorded("error_missing_capability__managegroups.json")
    )
    with pytest.raises(MissingCapabilityError, match="Manage groups"):
        course_groups(client, 2)
    # A taken name is a bare invalidparameter: the caller must look among the groups first.
    moodle.queue("core_group_create_groups", _recorded("error_group_name_exists.json"))
    with pytest.raises(MoodleError) as taken:
        create_group(client, 2, "Groupe A", "")
    assert taken.value.errorcode == "invalidparameter"


# --------------------------------------------------------------------------- messages


def test_a_message_is_sent_once_per_recipient(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        "core_message_send_instant_messages", _recorded("core_message_send_instant_messages.json")
    )
    outcome = send_message(client, 4, "<p>Bonjour Amine</p>", clientmsgid="ap-1")
    assert (outcome.status, outcome.msgid) == ("sent", 1)
    [call] = moodle.calls_to("core_message_send_instant_messages")
    assert call.form["messages[0][touserid]"] == "4"
    assert call.form["messages[0][textformat]"] == "1"
    assert call.form["messages[0][clientmsgid]"] == "ap-1"
    assert "messages[1][touserid]" not in call.form  # never a batch


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("core_message_send_instant_messages__usercantbemessaged.json", "message preferences"),
        ("core_message_send_instant_messages__nosuchuser.json", "doesn't exist"),
    ],
)
def test_a_refusal_is_a_result_not_an_error(
    client: MoodleClient, moodle: MoodleStub, fixture: str, reason: str
) -> None:
    moodle.queue("core_message_send_instant_messages", _recorded(fixture))
    outcome = send_message(client, 4, "<p>x</p>")
    assert outcome.status == "refused"
    assert reason in outcome.reason


def test_a_blocked_student_is_still_reached_with_messageanyuser(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue(
        "core_message_send_instant_messages",
        _recorded("core_message_send_instant_messages__blocked.json"),
    )
    assert send_message(client, 7, "<p>x</p>").status == "sent"


def test_no_answer_is_unknown_and_never_resent(
    client: MoodleClient, moodle: MoodleStub, sleeps: Sleeps
) -> None:
    """A 503 (or a timeout) after the message may have gone: the client, which retries other
    calls twice, makes this one once and says "unknown"."""
    moodle.queue("core_message_send_instant_messages", Reply(body={"x": 1}, status=503))
    outcome = send_message(client, 4, "<p>x</p>")
    assert outcome.status == "unknown"
    assert len(moodle.calls_to("core_message_send_instant_messages")) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("fixture", "error"),
    [
        ("error_messaging_disabled.json", MoodleError),
        ("error_missing_capability__sendmessage.json", MissingCapabilityError),
    ],
)
def test_a_service_failure_raises_for_everyone(
    client: MoodleClient, moodle: MoodleStub, fixture: str, error: type[MoodleError]
) -> None:
    moodle.queue("core_message_send_instant_messages", _recorded(fixture))
    with pytest.raises(error):
        send_message(client, 4, "<p>x</p>")


# --------------------------------------------------------------------------- notes


def test_course_note(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue("core_notes_create_notes", _recorded("core_notes_create_notes.json"))
    outcome = create_course_note(client, 2, 5, "<p>Rencontré</p>", clientnoteid="ap-risk-5-w10")
    assert outcome.noteid == 1
    form = moodle.calls_to("core_notes_create_notes")[0].form
    assert (form["notes[0][publishstate]"], form["notes[0][courseid]"]) == ("course", "2")
    moodle.queue(
        "core_notes_create_notes", _recorded("error_missing_capability__notes_manage.json")
    )
    with pytest.raises((MissingCapabilityError, AccessDeniedError)):
        create_course_note(client, 2, 5, "x", clientnoteid="ap-2")

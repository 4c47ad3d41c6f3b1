"""The demo's simulated Moodle answers the teacher-action functions (#16: groups, messages,
notes) statefully and in the recorded Moodle 5.1 shapes: the real `moodle_client.actions` calls
read and change them over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lti_app.demo.moodle import FUNCTIONS, WS_USERID, SimulatedMoodle
from moodle_client import MoodleClient
from moodle_client import actions as act
from moodle_client.errors import InvalidParameterError, MoodleError
from simulation.course import SimulatedCourse, simulate_course
from tests.moodle_stub import fixture


@pytest.fixture(scope="module")
def simulated() -> SimulatedCourse:
    return simulate_course(n_past=1, n_students=20, seed=3, current_progress=0.5)


@pytest.fixture
def served(simulated: SimulatedCourse) -> Iterator[tuple[SimulatedMoodle, str]]:
    site = SimulatedMoodle(simulated)  # a fresh site per test: the actions change it
    url = site.start()
    yield site, url
    site.stop()


@pytest.fixture
def moodle(served: tuple[SimulatedMoodle, str]) -> SimulatedMoodle:
    return served[0]


@pytest.fixture
def client(served: tuple[SimulatedMoodle, str]) -> MoodleClient:
    site, url = served
    return MoodleClient(url, site.token, max_retries=0, timeout=10.0)


def _students(simulated: SimulatedCourse) -> list[int]:
    assert simulated.current is not None
    return sorted(int(u) for u in simulated.current.roster["userid"])


def test_the_demo_site_lists_the_action_functions(client: MoodleClient) -> None:
    wanted = {
        "core_group_get_course_groups",
        "core_group_get_group_members",
        "core_group_create_groups",
        "core_group_add_group_members",
        "core_group_delete_group_members",
        "core_message_send_instant_messages",
        "core_notes_create_notes",
    }
    assert wanted <= set(FUNCTIONS)
    assert wanted <= client.get_site_info().function_names


def test_each_offering_has_two_groups_splitting_its_students(
    client: MoodleClient, moodle: SimulatedMoodle, simulated: SimulatedCourse
) -> None:
    recorded = fixture("core_group_get_course_groups.json")
    for off in simulated.offerings:
        raw = client.call("core_group_get_course_groups", {"courseid": off.courseid})
        assert [set(g) for g in raw] == [set(g) for g in recorded]  # the recorded keys
        groups = act.course_groups(client, off.courseid)
        assert [g.name for g in groups] == ["Groupe A", "Groupe B"]
        assert {g.courseid for g in groups} == {off.courseid}
        members = act.group_members(client, [g.id for g in groups])
        a, b = (set(members[g.id]) for g in groups)
        students = {int(u) for u in off.roster["userid"]}
        assert a | b == students
        assert not a & b
        assert abs(len(a) - len(b)) <= 1
    ids = [g["id"] for off in simulated.offerings for g in moodle.actions.groups_of(off.courseid)]
    assert len(ids) == len(set(ids))  # unique on the site, as Moodle's are


def test_a_group_is_created_filled_and_emptied(
    client: MoodleClient, simulated: SimulatedCourse
) -> None:
    assert simulated.current is not None
    cid = simulated.current.courseid
    name = "\u00c0 risque \u2013 semaine 10"
    made = act.create_group(client, cid, name, "\u00c9tudiants signal\u00e9s")
    assert made.name == name
    assert made.courseid == cid
    assert made.id not in {g.id for g in act.course_groups(client, cid)[:2]}
    # The recorded answer to a taken name: a bare invalidparameter.
    with pytest.raises(InvalidParameterError) as taken:
        act.create_group(client, cid, name, "")
    assert taken.value.errorcode == "invalidparameter"
    assert [g.name for g in act.course_groups(client, cid)].count(name) == 1
    s = _students(simulated)
    act.add_group_members(client, made.id, [s[0], s[5], s[9]])
    act.add_group_members(client, made.id, [s[5]])  # idempotent, as in Moodle
    assert act.group_members(client, [made.id]) == {made.id: (s[0], s[5], s[9])}
    act.delete_group_members(client, made.id, [s[9]])
    assert act.group_members(client, [made.id]) == {made.id: (s[0], s[5])}
    raw = client.call(
        "core_group_add_group_members", {"members": [{"groupid": made.id, "userid": s[1]}]}
    )
    assert raw is None  # the recorded answer: the JSON literal null
    with pytest.raises(MoodleError):  # not enrolled in this offering
        act.add_group_members(client, made.id, [99999])
    with pytest.raises(MoodleError):
        act.group_members(client, [424242])


def test_messages_are_delivered_and_recorded_once_each(
    client: MoodleClient, moodle: SimulatedMoodle, simulated: SimulatedCourse
) -> None:
    s = _students(simulated)
    sent = act.send_message(client, s[0], "<p>Bonjour</p>")
    assert sent.status == "sent"
    assert sent.msgid == 1
    raw = client.call(
        "core_message_send_instant_messages",
        {"messages": [{"touserid": s[1], "text": "<p>Salut</p>", "textformat": 1}]},
        retry=False,
    )
    recorded = fixture("core_message_send_instant_messages.json")
    assert set(raw[0]) == set(recorded[0])
    assert raw[0]["useridfrom"] == WS_USERID
    assert [(m.touserid, m.text) for m in moodle.sent_messages] == [
        (s[0], "<p>Bonjour</p>"),
        (s[1], "<p>Salut</p>"),
    ]


def test_a_refused_recipient_answers_as_recorded(
    client: MoodleClient, moodle: SimulatedMoodle, simulated: SimulatedCourse
) -> None:
    unknown = act.send_message(client, 99999, "<p>?</p>", clientmsgid="ap-2")
    assert unknown.status == "refused"
    assert (
        unknown.reason
        == fixture("core_message_send_instant_messages__nosuchuser.json")[0]["errormessage"]
    )
    raw = client.call(
        "core_message_send_instant_messages",
        {"messages": [{"touserid": 99999, "text": "x", "textformat": 1, "clientmsgid": "ap-2"}]},
        retry=False,
    )
    assert raw == fixture("core_message_send_instant_messages__nosuchuser.json")
    s = _students(simulated)
    moodle.actions.unreachable.add(s[2])
    blocked = act.send_message(client, s[2], "<p>x</p>")
    assert blocked.status == "refused"
    assert "message preferences" in blocked.reason
    assert moodle.sent_messages == []
    # A batch with a refused recipient fails as a whole after delivering the others (recorded).
    with pytest.raises(MoodleError) as failed:
        client.call(
            "core_message_send_instant_messages",
            {
                "messages": [
                    {"touserid": s[0], "text": "a", "textformat": 1},
                    {"touserid": 99999, "text": "b", "textformat": 1},
                ]
            },
            retry=False,
        )
    assert failed.value.errorcode == "formatnotsupported"
    assert [m.touserid for m in moodle.sent_messages] == [s[0]]


def test_course_notes_are_recorded(
    client: MoodleClient, moodle: SimulatedMoodle, simulated: SimulatedCourse
) -> None:
    assert simulated.current is not None
    cid = simulated.current.courseid
    s = _students(simulated)
    made = act.create_course_note(client, cid, s[3], "<p>Rencontré</p>", clientnoteid="ap-1")
    assert made.noteid == 1
    raw = client.call(
        "core_notes_create_notes",
        {
            "notes": [
                {
                    "userid": s[4],
                    "publishstate": "course",
                    "courseid": cid,
                    "text": "t",
                    "format": 1,
                    "clientnoteid": "ap-risk-5-w10",
                }
            ]
        },
    )
    assert raw == [{"clientnoteid": "ap-risk-5-w10", "noteid": 2}]
    assert set(raw[0]) == set(fixture("core_notes_create_notes.json")[0])
    assert [(n.courseid, n.userid, n.text, n.publishstate) for n in moodle.notes] == [
        (cid, s[3], "<p>Rencontré</p>", "course"),
        (cid, s[4], "t", "course"),
    ]
    refused = act.create_course_note(client, cid, 99999, "x", clientnoteid="ap-3")
    assert refused.noteid is None
    assert refused.reason
    assert len(moodle.notes) == 2

"""Typed calls, paging of enrolled users and of the plugin's logs, over the HTTP stub."""

from __future__ import annotations

import pytest

from moodle_client import (
    LOG_COLUMNS,
    LOG_FUNCTION,
    InvalidRecordError,
    LogRow,
    LogSource,
    MalformedResponseError,
    MoodleClient,
    WsLogSource,
)
from tests.moodle_client.conftest import MoodleStub, Reply, fixture_json, make_log_rows


def _options(form: object) -> dict[str, str]:
    items = dict(form.items())  # type: ignore[attr-defined]
    return {
        items[k]: items[k.replace("[name]", "[value]")]
        for k in items
        if k.startswith("options[") and k.endswith("[name]")
    }


def test_courses_by_field(client: MoodleClient, moodle: MoodleStub) -> None:
    recorded = fixture_json("core_course_get_courses_by_field.json")["courses"][0]
    [course] = client.get_courses_by_field("shortname", "ALGO101")
    assert moodle.calls[0].form["field"] == "shortname"
    assert moodle.calls[0].form["value"] == "ALGO101"
    assert (course.id, course.shortname, course.fullname) == (
        recorded["id"],
        recorded["shortname"],
        recorded["fullname"],
    )
    assert (course.startdate, course.enddate) == (recorded["startdate"], recorded["enddate"])
    assert course.enablecompletion is bool(recorded["enablecompletion"])


def test_get_course_of_unknown_id_is_invalid_record(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue("core_course_get_courses_by_field", Reply(body={"courses": [], "warnings": []}))
    with pytest.raises(InvalidRecordError, match="course 99 not found"):
        client.get_course(99)


def test_enrolled_users_carry_their_roles(client: MoodleClient) -> None:
    recorded = {u["id"]: u for u in fixture_json("core_enrol_get_enrolled_users.json")}
    users = client.get_enrolled_users(2)
    assert {u.id for u in users} == set(recorded)
    for user in users:
        assert user.role_shortnames == tuple(r["shortname"] for r in recorded[user.id]["roles"])
        assert user.fullname == recorded[user.id]["fullname"]
    teachers = [u for u in users if "editingteacher" in u.role_shortnames]
    assert [t.username for t in teachers] == [
        u["username"]
        for u in recorded.values()
        if any(r["shortname"] == "editingteacher" for r in u["roles"])
    ]


@pytest.mark.parametrize("page_size", [1, 7, 10, 41, 100])
def test_enrolled_users_are_paged_with_limitfrom_and_limitnumber(
    client: MoodleClient, moodle: MoodleStub, page_size: int
) -> None:
    recorded = sorted(u["id"] for u in fixture_json("core_enrol_get_enrolled_users.json"))

    pages = list(client.iter_enrolled_users(2, page_size=page_size))

    assert [u.id for page in pages for u in page] == recorded
    assert all(len(page) == page_size for page in pages[:-1])
    sent = [_options(c.form) for c in moodle.calls_to("core_enrol_get_enrolled_users")]
    assert [int(o["limitfrom"]) for o in sent] == [
        i * page_size for i in range(len(recorded) // page_size + 1)
    ]
    assert {o["limitnumber"] for o in sent} == {str(page_size)}


def test_grade_items_for_all_users_and_the_course_total(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    recorded = fixture_json("gradereport_user_get_grade_items.json")["usergrades"]

    report = client.get_grade_items(2)

    assert moodle.calls[0].form["userid"] == "0"
    assert len(report.usergrades) == len(recorded)
    total_ids = {i["id"] for u in recorded for i in u["gradeitems"] if i["itemtype"] == "course"}
    assert report.course_total_item is not None
    assert {report.course_total_item.id} == total_ids
    for user, raw in zip(report.usergrades, recorded, strict=True):
        raw_total = next(i for i in raw["gradeitems"] if i["itemtype"] == "course")
        assert user.userid == raw["userid"]
        assert user.course_total is not None
        assert user.course_total.graderaw == raw_total["graderaw"]
        assert user.course_total.grademax == raw_total["grademax"]
        assert [i.cmid for i in user.items] == [i.get("cmid") for i in raw["gradeitems"]]


def test_course_contents(client: MoodleClient, moodle: MoodleStub) -> None:
    recorded = fixture_json("core_course_get_contents.json")
    sections = client.get_course_contents(2, {"excludecontents": True})
    form = moodle.calls[0].form
    assert (form["options[0][name]"], form["options[0][value]"]) == ("excludecontents", "1")
    assert [s.section for s in sections] == [s["section"] for s in recorded]
    modules = {m.id: m for s in sections for m in s.modules}
    assert set(modules) == {m["id"] for s in recorded for m in s["modules"]}
    for raw in (m for s in recorded for m in s["modules"]):
        assert modules[raw["id"]].modname == raw["modname"]
        assert dict(modules[raw["id"]].dates) == {d["dataid"]: d["timestamp"] for d in raw["dates"]}


def test_activity_completion(client: MoodleClient, moodle: MoodleStub) -> None:
    recorded = fixture_json("core_completion_get_activities_completion_status.json")["statuses"]
    statuses = client.get_activities_completion_status(2, 4)
    assert (moodle.calls[0].form["courseid"], moodle.calls[0].form["userid"]) == ("2", "4")
    assert [(s.cmid, s.state, s.timecompleted) for s in statuses] == [
        (r["cmid"], r["state"], r["timecompleted"]) for r in recorded
    ]


# ---------------------------------------------------------------- plugin logs


def test_one_log_page_has_every_column_lastid_and_hasmore(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.log_rows = make_log_rows(25)

    page = client.get_course_logs(2, afterid=0, limit=10, withcount=True)

    form = moodle.calls[0].form
    assert (form["courseid"], form["afterid"], form["limit"], form["withcount"]) == (
        "2",
        "0",
        "10",
        "1",
    )
    assert [r.id for r in page.rows] == [r["id"] for r in moodle.log_rows[:10]]
    assert page.cursor == moodle.log_rows[9]["id"]
    assert page.hasmore is True
    assert page.remaining == 25
    first = page.rows[0]
    assert {c: getattr(first, c) for c in LOG_COLUMNS} == moodle.log_rows[0]
    assert first.content_hash is None


def test_ws_source_pages_through_all_logs_and_resumes_from_a_cursor(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.log_rows = make_log_rows(2345)
    source = WsLogSource(client, 2, page_size=1000)
    assert isinstance(source, LogSource)

    pages = list(source.pages())

    assert [len(p.rows) for p in pages] == [1000, 1000, 345]
    assert [p.hasmore for p in pages] == [True, True, False]
    assert pages[0].remaining == 2345
    assert [r.id for p in pages for r in p.rows] == [r["id"] for r in moodle.log_rows]
    sent_after = [int(c.form["afterid"]) for c in moodle.calls_to(LOG_FUNCTION)]
    assert sent_after == [0, pages[0].cursor, pages[1].cursor]
    # Only the first page asks for the count.
    assert [c.form.get("withcount") for c in moodle.calls_to(LOG_FUNCTION)] == ["1", None, None]

    resumed = list(source.pages(after=pages[0].cursor or 0))
    assert [r.id for p in resumed for r in p.rows] == [r["id"] for r in moodle.log_rows[1000:]]


def test_ws_source_on_an_empty_log(client: MoodleClient, moodle: MoodleStub) -> None:
    pages = list(WsLogSource(client, 2).pages(after=77))
    assert len(pages) == 1
    assert pages[0].rows == ()
    assert pages[0].cursor == 77
    assert pages[0].hasmore is False


def test_ws_source_respects_the_plugin_cap(client: MoodleClient) -> None:
    with pytest.raises(ValueError, match="5000"):
        WsLogSource(client, 2, page_size=5001)


def test_lastid_must_be_the_last_row(client: MoodleClient, moodle: MoodleStub) -> None:
    rows = make_log_rows(3)
    moodle.queue(LOG_FUNCTION, Reply(body={"logs": rows, "lastid": 1, "hasmore": False}))
    with pytest.raises(MalformedResponseError, match="lastid"):
        client.get_course_logs(2)


def test_nullable_log_columns(client: MoodleClient, moodle: MoodleStub) -> None:
    row = make_log_rows(1)[0] | {"relateduserid": 7, "objectid": 12, "objecttable": "forum"}
    moodle.queue(LOG_FUNCTION, Reply(body={"logs": [row], "lastid": row["id"], "hasmore": False}))
    [parsed] = client.get_course_logs(2).rows
    assert parsed == LogRow(**row)

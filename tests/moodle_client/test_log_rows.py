"""Reading the plugin's log rows: the page-at-once check agrees with the row-by-row reader, and a
bad row still gets an error naming its field."""

from __future__ import annotations

from typing import Any

import pytest

from moodle_client import LOG_FUNCTION, LogRow, MalformedResponseError, MoodleClient
from moodle_client.logs import log_rows_from_json
from tests.moodle_client.conftest import MoodleStub, Reply, make_log_rows


def _page(n: int = 5) -> list[dict[str, Any]]:
    rows = make_log_rows(n)
    rows[1] |= {"objecttable": "forum", "objectid": 12, "relateduserid": 7, "origin": None}
    return rows


def test_a_well_formed_page_reads_as_the_row_reader_does() -> None:
    page = _page()
    rows = log_rows_from_json(page)
    assert rows == tuple(LogRow.from_json(r) for r in page)
    assert all(type(r) is LogRow for r in rows)
    assert rows[1].objecttable == "forum"
    assert rows[1].objectid == 12
    assert rows[1].relateduserid == 7
    assert rows[1].origin is None
    assert all(r.content_hash is None for r in rows)
    assert log_rows_from_json([]) == ()


def test_numeric_strings_are_still_accepted_and_converted() -> None:
    page = _page()
    page[3] |= {"userid": "42", "timecreated": "1788800000", "objectid": "-5"}
    rows = log_rows_from_json(page)
    assert (rows[3].userid, rows[3].timecreated, rows[3].objectid) == (42, 1_788_800_000, -5)
    assert rows[0] == LogRow.from_json(page[0])


def test_optional_columns_may_be_left_out() -> None:
    page = _page()
    for key in ("objecttable", "objectid", "relateduserid", "origin"):
        del page[2][key]
    row = log_rows_from_json(page)[2]
    assert (row.objecttable, row.objectid, row.relateduserid, row.origin) == (None,) * 4


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"userid": True}, "field 'userid' is not an integer"),
        ({"timecreated": 1.5}, "field 'timecreated' is not an integer"),
        ({"courseid": None}, "field 'courseid' is not an integer"),
        ({"edulevel": "two"}, "field 'edulevel' is not an integer"),
        ({"eventname": 3}, "field 'eventname' is not a string"),
        ({"origin": 1}, "field 'origin' is not a string"),
        ({"relateduserid": []}, "field 'relateduserid' is not an integer"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(change: dict[str, Any], message: str) -> None:
    page = _page()
    page[4] |= change
    with pytest.raises(MalformedResponseError, match=message):
        log_rows_from_json(page)


def test_a_missing_column_is_named() -> None:
    page = _page()
    del page[0]["contextinstanceid"]
    with pytest.raises(MalformedResponseError, match="field 'contextinstanceid' is missing"):
        log_rows_from_json(page)


@pytest.mark.parametrize("row", [["id", 1], "a row", 17, None])
def test_a_row_that_is_not_an_object_is_refused(row: Any) -> None:
    page: list[Any] = _page()
    page[2] = row
    with pytest.raises(MalformedResponseError, match="expected a JSON object for log row"):
        log_rows_from_json(page)


def test_the_client_refuses_a_page_with_a_bad_row(client: MoodleClient, moodle: MoodleStub) -> None:
    rows = make_log_rows(3)
    rows[1]["crud"] = ["r"]
    moodle.queue(
        LOG_FUNCTION, Reply(body={"logs": rows, "lastid": rows[-1]["id"], "hasmore": False})
    )
    with pytest.raises(MalformedResponseError, match="field 'crud' is not a string"):
        client.get_course_logs(2)

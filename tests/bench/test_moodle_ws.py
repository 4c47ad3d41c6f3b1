"""The benchmark's Moodle stand-in serves, from its pre-serialised buffer, exactly the rows a
page of the plugin holds, and the tool's client reads them as the simulator wrote them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.moodle_ws import LogService
from moodle_client.logs import LOG_COLUMNS, LogRow, log_rows_from_json
from simulation.course import simulate_course


@pytest.fixture(scope="module")
def service_and_log() -> tuple[LogService, list[dict[str, object]], int]:
    off = simulate_course(n_past=0, n_students=30, seed=5, current_progress=0.3).offerings[0]
    log = off.log.sample(frac=1.0, random_state=1)  # the service sorts by id itself
    expected = json.loads(log.sort_values("id")[list(LOG_COLUMNS)].to_json(orient="records"))
    return LogService(log), expected, int(off.courseid)


def _page(service: LogService, courseid: int, after: int, limit: int) -> dict[str, object]:
    params = {"courseid": str(courseid), "afterid": str(after), "limit": str(limit)}
    return dict(json.loads(service.logs(params | {"withcount": "1"})))


def test_pages_are_the_rows_after_the_cursor(
    service_and_log: tuple[LogService, list[dict[str, object]], int],
) -> None:
    service, expected, courseid = service_and_log
    ids = [int(str(r["id"])) for r in expected]
    after, seen = 0, []
    while True:
        page = _page(service, courseid, after, 37)
        rows = page["logs"]
        assert isinstance(rows, list)
        first = int(np.searchsorted(ids, after, side="right"))
        assert rows == expected[first : first + 37]
        assert page["remaining"] == len(expected) - first
        seen.extend(rows)
        after = int(str(page["lastid"]))
        if not page["hasmore"]:
            break
    assert seen == expected
    assert log_rows_from_json(seen) == tuple(LogRow.from_json(r) for r in expected)


def test_hidden_rows_other_courses_and_the_end(
    service_and_log: tuple[LogService, list[dict[str, object]], int],
) -> None:
    service, expected, courseid = service_and_log
    ids = [int(str(r["id"])) for r in expected]
    try:
        service.set_visible(ids[9])
        page = _page(service, courseid, 0, 5000)
        assert page["logs"] == expected[:10]
        assert page["hasmore"] is False
    finally:
        service.set_visible(0)
    assert _page(service, courseid, ids[-1], 10) == {
        "logs": [],
        "lastid": ids[-1],
        "hasmore": False,
        "remaining": 0,
    }
    assert _page(service, courseid + 1, 0, 10)["logs"] == []

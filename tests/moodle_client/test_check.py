"""The check helper behind `arche-predict moodle check`, fed with the recorded answers."""

from __future__ import annotations

import dataclasses

from moodle_client import (
    LOG_FUNCTION,
    MoodleClient,
    MoodleError,
    SiteInfo,
    check,
    error_from_body,
    required_functions,
    run_check,
)
from moodle_client.types import SiteFunction
from tests.moodle_client.conftest import MoodleStub, Reply, fixture_json


def _site() -> SiteInfo:
    return SiteInfo.from_json(fixture_json("core_webservice_get_site_info.json"))


def _error(name: str, wsfunction: str) -> MoodleError:
    return error_from_body(fixture_json(name), wsfunction)


def test_recorded_service_lacks_only_the_plugin_function_for_the_ws_source() -> None:
    site = _site()
    report = check(site)
    expected = [r.name for r in required_functions("ws") if r.name not in site.function_names]
    assert expected, "the recorded service must lack something for this test to mean anything"
    assert [m.name for m in report.missing_functions] == expected == [LOG_FUNCTION]
    assert not report.ok
    text = "\n".join(report.lines())
    assert LOG_FUNCTION in text
    assert "Add functions" in text
    assert "local_archepredict: install it first" in text
    assert "NOT READY" in text


def test_csv_source_does_not_need_the_plugin() -> None:
    report = check(_site(), log_source="csv")
    assert report.missing_functions == ()
    assert report.ok
    assert "OK: nothing missing." in report.lines()


def test_a_function_removed_from_the_service_is_listed() -> None:
    site = _site()
    fewer = dataclasses.replace(
        site,
        functions=tuple(f for f in site.functions if f.name != "gradereport_user_get_grade_items"),
    )
    report = check(fewer, log_source="csv")
    assert [m.name for m in report.missing_functions] == ["gradereport_user_get_grade_items"]


def test_missing_capabilities_come_from_the_recorded_errors() -> None:
    site = _site()
    with_plugin = dataclasses.replace(
        site, functions=(*site.functions, SiteFunction(LOG_FUNCTION, "2026112200"))
    )
    probes = {
        "gradereport_user_get_grade_items": _error(
            "error_missing_capability.json", "gradereport_user_get_grade_items"
        ),
        "core_enrol_get_enrolled_users": _error(
            "error_missing_capability__enrolled_users.json", "core_enrol_get_enrolled_users"
        ),
        "core_course_get_contents": None,
    }

    report = check(with_plugin, probes)

    assert report.missing_functions == ()
    assert {(m.function, m.capability) for m in report.missing_capabilities} == {
        ("gradereport_user_get_grade_items", "gradereport/user:view"),
        ("core_enrol_get_enrolled_users", "moodle/course:viewparticipants"),
    }
    assert not report.ok
    text = "\n".join(report.lines())
    assert "'gradereport/user:view' (View user report)" in text
    assert "'moodle/course:viewparticipants' (View participants)" in text


def test_accessexception_probe_counts_as_missing_function() -> None:
    probes = {
        "core_course_get_contents": _error(
            "error_function_not_in_service.json", "core_course_get_contents"
        )
    }
    report = check(_site(), probes, log_source="csv")
    assert [m.name for m in report.missing_functions] == ["core_course_get_contents"]


def test_other_probe_failures_are_reported_apart() -> None:
    probes = {
        "core_course_get_contents": _error(
            "error_invalid_record__course.json", "core_course_get_contents"
        )
    }
    report = check(_site(), probes, log_source="csv")
    assert [f.function for f in report.other_failures] == ["core_course_get_contents"]
    assert report.missing_capabilities == ()
    assert not report.ok


def test_run_check_probes_a_course_over_http(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        "gradereport_user_get_grade_items",
        Reply(body=fixture_json("error_missing_capability.json")),
    )

    report = run_check(client, 2)

    called = {c.wsfunction for c in moodle.calls}
    # The plugin function is not in the recorded service, so it is not probed.
    assert LOG_FUNCTION not in called
    assert "core_completion_get_activities_completion_status" in called
    assert [m.name for m in report.missing_functions] == [LOG_FUNCTION]
    assert [m.capability for m in report.missing_capabilities] == ["gradereport/user:view"]
    assert report.other_failures == ()

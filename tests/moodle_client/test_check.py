"""The check helper behind `arche-predict moodle check`, fed with the recorded answers."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from moodle_client import (
    LOG_FUNCTION,
    MissingCapabilityError,
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


# ------------------------------------------------------------------ issue #15: what check names

# Moodle 5.1's answer to any call in a course the token user is not enrolled in, without
# moodle/course:view: `require_login_exception('Not enrolled')`, whose errorcode is
# `requireloginerror` and English message "Course or activity not accessible." (lang/en/error.php).
# It was not among the recorded answers; this is its shape (the recorded errors' three keys).
REQUIRE_LOGIN_BODY = {
    "exception": "core\\exception\\require_login_exception",
    "errorcode": "requireloginerror",
    "message": "Course or activity not accessible.",
}
COURSE_FUNCTIONS = (
    "core_course_get_courses_by_field",
    "core_enrol_get_enrolled_users",
    "gradereport_user_get_grade_items",
    "core_course_get_contents",
    "core_completion_get_activities_completion_status",
    "core_grades_get_gradeitems",
)


def _without_item(body: dict[str, object], itemid: int) -> dict[str, object]:
    """The recorded grade report as Moodle answers it when the item's activity is hidden from
    the token user: the item is simply absent for every user, nothing else changes."""
    out = copy.deepcopy(body)
    for user in out["usergrades"]:  # type: ignore[attr-defined]
        user["gradeitems"] = [i for i in user["gradeitems"] if i["id"] != itemid]
    return out


def _without_module(sections: list[dict[str, object]], cmid: int) -> list[dict[str, object]]:
    out = copy.deepcopy(sections)
    for section in out:
        section["modules"] = [m for m in section["modules"] if m["id"] != cmid]  # type: ignore[attr-defined]
    return out


def test_requireloginerror_names_moodle_course_view(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    for name in COURSE_FUNCTIONS:
        moodle.queue(name, Reply(body=REQUIRE_LOGIN_BODY))

    report = run_check(client, 2, log_source="csv")

    assert [m.capability for m in report.missing_capabilities] == ["moodle/course:view"]
    text = "\n".join(report.lines())
    assert "moodle/course:view" in text
    assert "Course or activity not accessible' [requireloginerror]" in text
    assert "See Moodle's message" not in text
    assert report.other_failures == ()
    # What those calls need beyond it cannot be tried yet, and is said now, not on a rerun.
    unverified = {u.capability for u in report.unverified}
    assert {"moodle/course:viewparticipants", "gradereport/user:view"} <= unverified
    assert "report/progress:view" in unverified
    assert "'core_grades_get_gradeitems' failed [requireloginerror]" in text
    assert "NOT READY" in text


def test_missing_quiz_view_is_named_when_the_contents_show_the_quiz(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue(
        "gradereport_user_get_grade_items",
        Reply(body=_without_item(fixture_json("gradereport_user_get_grade_items.json"), 3)),
    )

    report = run_check(client, 2, log_source="csv")

    assert [(h.itemid, h.capability) for h in report.hidden_grade_items] == [(3, "mod/quiz:view")]
    assert not report.ok
    text = "\n".join(report.lines())
    assert "mod/quiz:view" in text
    assert "Quiz 1 : recursivite et tris" in text
    assert "OK: nothing missing." not in text


def test_a_quiz_hidden_from_the_contents_too_is_still_reported(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    # Without mod/quiz:view Moodle also leaves the quiz out of core_course_get_contents.
    moodle.queue(
        "gradereport_user_get_grade_items",
        Reply(body=_without_item(fixture_json("gradereport_user_get_grade_items.json"), 3)),
    )
    moodle.queue(
        "core_course_get_contents",
        Reply(body=_without_module(fixture_json("core_course_get_contents.json"), 6)),
    )

    report = run_check(client, 2, log_source="csv")

    assert [(h.itemid, h.modname) for h in report.hidden_grade_items] == [(3, None)]
    assert not report.ok
    text = "\n".join(report.lines())
    assert "grade item 'Quiz 1 : recursivite et tris' (id 3)" in text
    assert "mod/<module>:view" in text


def test_every_grade_item_returned_is_ok(client: MoodleClient, moodle: MoodleStub) -> None:
    report = run_check(client, 2, log_source="csv")
    assert report.hidden_grade_items == ()
    assert report.unverified == ()
    assert report.ok
    assert "OK: nothing missing." in report.lines()
    # The comparison was made, so the generic warning about hidden items is not printed.
    assert not any("silently leaves out" in w for w in report.warnings)


def test_without_core_grades_get_gradeitems_the_check_says_it_could_not_compare(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    site = fixture_json("core_webservice_get_site_info.json")
    site["functions"] = [f for f in site["functions"] if f["name"] != "core_grades_get_gradeitems"]
    moodle.queue("core_webservice_get_site_info", Reply(body=site))

    report = run_check(client, 2, log_source="csv")

    assert report.ok
    assert any("add 'core_grades_get_gradeitems'" in w for w in report.warnings)


def test_progress_view_is_reported_on_the_first_run(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    # The roster refused (no viewparticipants): the completion probe asks about a participant
    # of the grade report instead, and its missing capability shows now.
    moodle.queue(
        "core_enrol_get_enrolled_users",
        Reply(body=fixture_json("error_missing_capability__enrolled_users.json")),
    )
    progress = {
        "exception": "core\\exception\\required_capability_exception",
        "errorcode": "nopermissions",
        "message": "Sorry, but you do not currently have permissions to do that "
        "(View activity completion reports).",
    }
    moodle.queue("core_completion_get_activities_completion_status", Reply(body=progress))

    report = run_check(client, 2, log_source="csv")

    # Completion is optional (#16): named on the first run, among the optional features.
    assert [m.capability for m in report.missing_capabilities] == [
        "moodle/course:viewparticipants",
    ]
    completion = {o.feature.key: o for o in report.optional}["completion"]
    assert not completion.on
    assert completion.refused is not None
    assert completion.refused.capability == "report/progress:view"
    assert "'report/progress:view' (View activity completion reports)" in completion.line
    asked = moodle.calls_to("core_completion_get_activities_completion_status")
    assert asked
    assert asked[0].form["userid"] != "44"  # not the token user


def test_progress_view_unverifiable_is_said_when_nobody_can_be_read(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue(
        "core_enrol_get_enrolled_users",
        Reply(body=fixture_json("error_missing_capability__enrolled_users.json")),
    )
    moodle.queue(
        "gradereport_user_get_grade_items",
        Reply(body=fixture_json("error_missing_capability.json")),
    )

    report = run_check(client, 2, log_source="csv")

    assert [u.capability for u in report.unverified] == ["report/progress:view"]
    assert "report/progress:view" in "\n".join(report.lines())
    assert moodle.calls_to("core_completion_get_activities_completion_status") == []


def test_requireloginerror_names_moodle_course_view_in_every_error(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    """The same answer met outside `moodle check` (a sync): the error names the capability, not
    "See Moodle's message"."""
    error = error_from_body(REQUIRE_LOGIN_BODY, "core_enrol_get_enrolled_users")
    assert isinstance(error, MissingCapabilityError)
    assert error.errorcode == "requireloginerror"
    assert error.capabilities == ("moodle/course:view",)
    assert "moodle/course:view" in str(error)
    assert "See Moodle's message" not in str(error)
    moodle.queue("core_enrol_get_enrolled_users", Reply(body=REQUIRE_LOGIN_BODY))
    with pytest.raises(MissingCapabilityError) as raised:
        client.get_enrolled_users(2)
    assert "moodle/course:view" in str(raised.value)


# ------------------------------------------------------------------ #16 item 8: optional features

ACTION_FUNCTIONS = (
    "core_message_send_instant_messages",
    "core_notes_create_notes",
    "core_group_get_course_groups",
    "core_group_get_group_members",
    "core_group_create_groups",
    "core_group_add_group_members",
    "core_group_delete_group_members",
)


def _with(site: SiteInfo, *names: str) -> SiteInfo:
    return dataclasses.replace(
        site, functions=(*site.functions, *(SiteFunction(n, "2025100600") for n in names))
    )


def test_completion_is_optional_not_required() -> None:
    assert "core_completion_get_activities_completion_status" not in {
        r.name for r in required_functions("ws")
    }
    site = _site()
    without = dataclasses.replace(
        site,
        functions=tuple(
            f
            for f in site.functions
            if f.name != "core_completion_get_activities_completion_status"
        ),
    )
    report = check(without, log_source="csv")
    assert report.ok
    completion = {o.feature.key: o for o in report.optional}["completion"]
    assert completion.missing_functions == ("core_completion_get_activities_completion_status",)
    assert "the student page shows no activity completion" in completion.line


def test_teacher_actions_are_optional_features_with_their_capabilities() -> None:
    report = check(_site(), log_source="csv")
    assert report.ok  # the recorded service has none of them: never "NOT READY"
    by_key = {o.feature.key: o for o in report.optional}
    assert by_key["messaging"].missing_functions == ("core_message_send_instant_messages",)
    assert by_key["notes"].missing_functions == ("core_notes_create_notes",)
    assert by_key["groups"].missing_functions == ACTION_FUNCTIONS[2:]
    assert by_key["messaging"].feature.capabilities == (
        "moodle/site:sendmessage",
        "moodle/site:messageanyuser",
    )
    assert by_key["notes"].feature.capabilities == ("moodle/notes:manage",)
    assert "moodle/course:managegroups" in by_key["groups"].feature.capabilities
    text = "\n".join(report.lines())
    assert "OK: nothing missing." in text
    for key in ("messaging", "notes", "groups"):
        line = by_key[key].line
        assert line.startswith(f"{key} (")
        assert "off, the pages say so (" in line  # what the teacher loses
        assert by_key[key].feature.without
        assert line in text
    assert "receive no weekly digest" in by_key["messaging"].line
    full = check(_with(_site(), *ACTION_FUNCTIONS), log_source="csv")
    on = {o.feature.key for o in full.optional if o.on}
    assert {"messaging", "notes", "groups"} <= on
    assert "messaging (" in "\n".join(full.lines())


def test_recorded_refusals_switch_a_feature_off_never_not_ready() -> None:
    site = _with(_site(), *ACTION_FUNCTIONS)
    probes: dict[str, MoodleError | None] = {
        "core_group_get_course_groups": _error(
            "error_missing_capability__managegroups.json", "core_group_get_course_groups"
        ),
        "core_completion_get_activities_completion_status": None,
    }
    report = check(site, probes, log_source="csv")
    assert report.ok
    groups = {o.feature.key: o for o in report.optional}["groups"]
    assert not groups.on
    assert groups.refused is not None
    assert groups.refused.capability == "moodle/course:managegroups"
    assert "'moodle/course:managegroups' (Manage groups)" in groups.line
    # A function taken out of the service (accessexception) reads as missing.
    denied = check(
        site,
        {
            "core_group_get_course_groups": _error(
                "error_function_not_in_service.json", "core_group_get_course_groups"
            )
        },
        log_source="csv",
    )
    assert {o.feature.key: o for o in denied.optional}["groups"].missing_functions == (
        "core_group_get_course_groups",
    )
    assert denied.ok
    # The error a refused call raises names the capabilities of the feature.
    error = _error("error_missing_capability__notes_manage.json", "core_notes_create_notes")
    assert isinstance(error, MissingCapabilityError)
    assert error.capabilities == ("moodle/notes:manage",)
    assert "core_notes_create_notes needs: moodle/notes:manage" in str(error)


def test_run_check_probes_the_groups_read_over_http(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    site = fixture_json("core_webservice_get_site_info.json")
    site["functions"] += [{"name": n, "version": "2025100600"} for n in ACTION_FUNCTIONS]
    moodle.queue("core_webservice_get_site_info", Reply(body=site))
    moodle.queue(
        "core_group_get_course_groups",
        Reply(body=fixture_json("error_missing_capability__managegroups.json")),
    )

    report = run_check(client, 2, log_source="csv")

    assert [c.form["courseid"] for c in moodle.calls_to("core_group_get_course_groups")] == ["2"]
    # Messages and notes are never probed: that would send a message or write a note.
    assert moodle.calls_to("core_message_send_instant_messages") == []
    assert moodle.calls_to("core_notes_create_notes") == []
    assert report.ok
    groups = {o.feature.key: o for o in report.optional}["groups"]
    assert groups.refused is not None
    assert groups.refused.capability == "moodle/course:managegroups"
    text = "\n".join(report.lines())
    assert "groups (" in text
    assert "moodle/course:managegroups" in text
    assert "OK: nothing missing." in text

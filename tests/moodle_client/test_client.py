"""MoodleClient against a real HTTP stub serving the recorded Moodle 5.1 answers."""

from __future__ import annotations

import json
import traceback
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodle_client import (
    LOG_FUNCTION,
    AccessDeniedError,
    InvalidParameterError,
    InvalidRecordError,
    InvalidTokenError,
    MalformedResponseError,
    MissingCapabilityError,
    MoodleClient,
    MoodleError,
    MoodleHTTPError,
    MoodleRemoteError,
    MoodleTimeoutError,
    MoodleUnavailableError,
    encode_params,
)
from moodle_client.client import _unclosed
from tests.moodle_client.conftest import (
    TOKEN,
    MoodleStub,
    Reply,
    Sleeps,
    fixture_json,
    fixture_text,
)

# ---------------------------------------------------------------- protocol


def test_call_posts_token_function_and_format_with_a_user_agent(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    info = client.get_site_info()

    [call] = moodle.calls
    assert call.method == "POST"
    assert call.path == "/webservice/rest/server.php"
    assert call.query == "", "the token travels in the body, never in the URL"
    assert call.form["wstoken"] == TOKEN
    assert call.form["wsfunction"] == "core_webservice_get_site_info"
    assert call.form["moodlewsrestformat"] == "json"
    assert call.headers["User-Agent"].startswith("arche-predict/")
    recorded = fixture_json("core_webservice_get_site_info.json")
    assert info.userid == recorded["userid"]
    assert info.release == recorded["release"]
    assert info.function_names == {f["name"] for f in recorded["functions"]}


def test_custom_user_agent_is_sent(moodle: MoodleStub) -> None:
    MoodleClient(moodle.url, TOKEN, user_agent="arche-predict/9.9 (test)").get_site_info()
    assert moodle.calls[0].headers["User-Agent"] == "arche-predict/9.9 (test)"


def test_nested_parameters_are_form_encoded_the_moodle_way() -> None:
    pairs = encode_params(
        {
            "courseid": 2,
            "options": [{"name": "limitfrom", "value": 0}, {"name": "onlyactive", "value": True}],
            "values": ["a", "b"],
            "skipped": None,
        }
    )
    assert pairs == [
        ("courseid", "2"),
        ("options[0][name]", "limitfrom"),
        ("options[0][value]", "0"),
        ("options[1][name]", "onlyactive"),
        ("options[1][value]", "1"),
        ("values[0]", "a"),
        ("values[1]", "b"),
    ]


def test_enrolled_users_options_reach_moodle_as_indexed_form_fields(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    client.get_enrolled_users(2, limitfrom=10, limitnumber=5)
    form = moodle.calls[0].form
    options = {
        form[f"options[{i}][name]"]: form[f"options[{i}][value]"]
        for i in range(4)
        if f"options[{i}][name]" in form
    }
    assert form["courseid"] == "2"
    assert options["limitfrom"] == "10"
    assert options["limitnumber"] == "5"


# ---------------------------------------------------------------- recorded errors

ERROR_CASES = [
    # fixture, function called, exception class, phrases the admin explanation must contain
    ("error_bad_token.json", "core_webservice_get_site_info", InvalidTokenError, ["Manage tokens"]),
    ("error_missing_token.json", "core_webservice_get_site_info", InvalidTokenError, ["token"]),
    (
        "error_function_not_in_service.json",
        "core_course_get_contents",
        AccessDeniedError,
        ["'core_course_get_contents'", "External services", "Add functions"],
    ),
    (
        "error_no_rest_use_capability.json",
        "core_webservice_get_site_info",
        AccessDeniedError,
        ["webservice/rest:use"],
    ),
    (
        "error_function_does_not_exist.json",
        "core_logstore_get_logs",
        InvalidRecordError,
        ["'core_logstore_get_logs' does not exist on this Moodle"],
    ),
    (
        "error_missing_capability.json",
        "gradereport_user_get_grade_items",
        MissingCapabilityError,
        ["'gradereport/user:view' (View user report)", "Define roles", "moodle/grade:viewall"],
    ),
    (
        "error_missing_capability__enrolled_users.json",
        "core_enrol_get_enrolled_users",
        MissingCapabilityError,
        ["'moodle/course:viewparticipants' (View participants)"],
    ),
    (
        "error_missing_capability__report.json",
        "core_reportbuilder_retrieve_report",
        MissingCapabilityError,
        ["lacks a capability"],
    ),
    (
        "error_invalid_parameter.json",
        "core_course_get_contents",
        InvalidParameterError,
        ["core_course_get_contents", "Moodle 4.1 to 5.x"],
    ),
    (
        "error_invalid_parameter__missing.json",
        "core_enrol_get_enrolled_users",
        InvalidParameterError,
        ["core_enrol_get_enrolled_users"],
    ),
    (
        "error_invalid_record__course.json",
        "core_course_get_contents",
        InvalidRecordError,
        ["wrong or deleted course id"],
    ),
    # Teacher actions (issue #16).
    (
        "error_missing_capability__managegroups.json",
        "core_group_get_course_groups",
        MissingCapabilityError,
        ["'moodle/course:managegroups' (Manage groups)"],
    ),
    (
        "error_missing_capability__sendmessage.json",
        "core_message_send_instant_messages",
        MissingCapabilityError,
        ["'moodle/site:sendmessage' (Send messages to any user)"],
    ),
    (
        "error_missing_capability__notes_manage.json",
        "core_notes_create_notes",
        MissingCapabilityError,
        ["'moodle/notes:manage' (Manage notes)"],
    ),
    (
        "error_missing_capability__quiz_viewreports.json",
        "mod_quiz_get_user_attempts",
        MissingCapabilityError,
        ["(View quiz reports)"],
    ),
    (
        "error_messaging_disabled.json",
        "core_message_send_instant_messages",
        MoodleRemoteError,
        ["Messaging is disabled", "Enable messaging"],
    ),
    (
        "error_group_name_exists.json",
        "core_group_create_groups",
        InvalidParameterError,
        ["core_group_create_groups"],
    ),
    (
        "error_format_not_supported__mixed_messages.json",
        "core_message_send_instant_messages",
        MoodleRemoteError,
        ["formatnotsupported"],
    ),
    # Candidate past offerings (issue #17).
    (
        "error_function_not_in_service__users_courses.json",
        "core_enrol_get_users_courses",
        AccessDeniedError,
        ["'core_enrol_get_users_courses'", "Add functions"],
    ),
]


@pytest.mark.parametrize(
    ("name", "wsfunction", "error_class", "phrases"),
    ERROR_CASES,
    ids=[case[0] for case in ERROR_CASES],
)
def test_every_recorded_error_maps_to_its_exception_and_explanation(
    client: MoodleClient,
    moodle: MoodleStub,
    sleeps: Sleeps,
    name: str,
    wsfunction: str,
    error_class: type[MoodleError],
    phrases: list[str],
) -> None:
    body = fixture_json(name)
    moodle.queue(wsfunction, Reply(body=body))

    with pytest.raises(MoodleError) as caught:
        client.call(wsfunction, {"courseid": 2})

    error = caught.value
    assert type(error) is error_class
    assert error.errorcode == body["errorcode"]
    assert error.message == body["message"]
    assert error.exception == body["exception"]
    assert error.wsfunction == wsfunction
    for phrase in phrases:
        assert phrase in error.explanation
    assert body["message"] in str(error)
    assert f"[{body['errorcode']}]" in str(error)
    # An error body is an answer, not a failure: never retried.
    assert len(moodle.calls_to(wsfunction)) == 1
    assert sleeps.delays == []


def test_every_recorded_error_fixture_is_covered() -> None:
    from tests.moodle_client.conftest import FIXTURES

    recorded = {p.name for p in FIXTURES.glob("error_*.json")}
    assert recorded == {case[0] for case in ERROR_CASES}


def test_missing_capability_names_the_capability(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        "core_enrol_get_enrolled_users",
        Reply(body=fixture_json("error_missing_capability__enrolled_users.json")),
    )
    with pytest.raises(MissingCapabilityError) as caught:
        client.get_enrolled_users(2)
    assert caught.value.capability_name == "View participants"
    assert caught.value.capabilities == ("moodle/course:viewparticipants",)


def test_missing_plugin_function_says_to_install_the_plugin(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue(LOG_FUNCTION, Reply(body=fixture_json("error_function_does_not_exist.json")))
    with pytest.raises(InvalidRecordError) as caught:
        client.get_course_logs(2)
    assert "local_archepredict is not installed" in caught.value.explanation


def test_error_field_form_is_recognised(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        "core_webservice_get_site_info",
        Reply(body={"error": "Invalid token - token not found", "errorcode": "invalidtoken"}),
    )
    with pytest.raises(InvalidTokenError) as caught:
        client.get_site_info()
    assert caught.value.message == "Invalid token - token not found"


def test_unknown_errorcode_is_a_generic_remote_error(
    client: MoodleClient, moodle: MoodleStub
) -> None:
    moodle.queue(
        "core_course_get_contents",
        Reply(body={"exception": "moodle_exception", "errorcode": "somethingnew", "message": "x"}),
    )
    with pytest.raises(MoodleRemoteError) as caught:
        client.get_course_contents(2)
    assert type(caught.value) is MoodleRemoteError
    assert caught.value.errorcode == "somethingnew"
    assert "somethingnew" in caught.value.explanation


def test_maintenance_mode_is_unavailable(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue(
        "core_webservice_get_site_info",
        Reply(
            body={
                "exception": "moodle_exception",
                "errorcode": "sitemaintenance",
                "message": "The site is undergoing maintenance and is currently not available",
            }
        ),
    )
    with pytest.raises(MoodleUnavailableError) as caught:
        client.get_site_info()
    assert caught.value.errorcode == "sitemaintenance"
    assert "maintenance" in caught.value.explanation


# ---------------------------------------------------------------- network, retries


def test_a_502_then_success_is_retried_once(
    client: MoodleClient, moodle: MoodleStub, sleeps: Sleeps
) -> None:
    moodle.queue(
        "core_webservice_get_site_info", Reply(body=b"<html>Bad gateway</html>", status=502)
    )

    info = client.get_site_info()

    assert info.username == fixture_json("core_webservice_get_site_info.json")["username"]
    assert len(moodle.calls_to("core_webservice_get_site_info")) == 2
    assert len(sleeps.delays) == 1
    assert 0.0 <= sleeps.delays[0] <= client.backoff_base


def test_5xx_every_time_gives_unavailable_after_the_retries(
    client: MoodleClient, moodle: MoodleStub, sleeps: Sleeps
) -> None:
    moodle.queue(
        "core_webservice_get_site_info",
        *[Reply(body=b"down", status=503) for _ in range(client.max_retries + 1)],
    )
    with pytest.raises(MoodleUnavailableError) as caught:
        client.get_site_info()
    assert caught.value.errorcode == "http503"
    assert len(moodle.calls_to("core_webservice_get_site_info")) == client.max_retries + 1
    assert len(sleeps.delays) == client.max_retries
    for attempt, delay in enumerate(sleeps.delays):
        assert 0.0 <= delay <= min(client.backoff_cap, client.backoff_base * 2**attempt)


def test_4xx_is_not_retried(client: MoodleClient, moodle: MoodleStub, sleeps: Sleeps) -> None:
    moodle.queue("core_webservice_get_site_info", Reply(body=b"<html>Forbidden</html>", status=403))
    with pytest.raises(MoodleHTTPError) as caught:
        client.get_site_info()
    assert caught.value.errorcode == "http403"
    assert len(moodle.calls) == 1
    assert sleeps.delays == []


def test_wrong_base_url_is_a_404_with_advice(moodle: MoodleStub) -> None:
    client = MoodleClient(moodle.url + "/not-moodle", TOKEN, max_retries=0)
    with pytest.raises(MoodleHTTPError) as caught:
        client.get_site_info()
    assert caught.value.errorcode == "http404"
    assert "base URL" in caught.value.explanation


def test_timeout_is_retried_then_reported(moodle: MoodleStub, sleeps: Sleeps) -> None:
    client = MoodleClient(moodle.url, TOKEN, timeout=0.2, max_retries=1, sleep=sleeps)
    moodle.queue(
        "core_webservice_get_site_info", Reply(delay=1.0, body={}), Reply(delay=1.0, body={})
    )
    with pytest.raises(MoodleTimeoutError) as caught:
        client.get_site_info()
    assert caught.value.errorcode == "timeout"
    assert "0.2 s" in caught.value.message
    assert len(sleeps.delays) == 1


def test_timeout_then_success(moodle: MoodleStub, sleeps: Sleeps) -> None:
    client = MoodleClient(moodle.url, TOKEN, timeout=0.2, max_retries=1, sleep=sleeps)
    moodle.queue("core_webservice_get_site_info", Reply(delay=1.0, body={}))
    assert client.get_site_info().userid == 44


def test_connection_refused_is_unavailable(closed_port: int, sleeps: Sleeps) -> None:
    client = MoodleClient(f"http://127.0.0.1:{closed_port}", TOKEN, max_retries=2, sleep=sleeps)
    with pytest.raises(MoodleUnavailableError) as caught:
        client.get_site_info()
    assert caught.value.errorcode == "unavailable"
    assert "cannot reach" in caught.value.message
    assert len(sleeps.delays) == 2


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    class Top(Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    client = MoodleClient(
        "http://moodle.invalid", TOKEN, backoff_base=0.5, backoff_cap=3.0, rng=Top()
    )
    assert [client.backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = MoodleClient("http://moodle.invalid", TOKEN, rng=Random(7))
    delays = [jittered.backoff(3) for _ in range(50)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1


# ---------------------------------------------------------------- malformed answers


def test_truncated_json_is_a_clear_error(
    client: MoodleClient, moodle: MoodleStub, sleeps: Sleeps
) -> None:
    body = fixture_text("core_webservice_get_site_info.json").encode()
    moodle.queue("core_webservice_get_site_info", Reply(body=body, truncate=len(body) // 2))
    with pytest.raises(MalformedResponseError) as caught:
        client.get_site_info()
    assert "truncated JSON" in caught.value.message
    assert caught.value.errorcode == "malformedresponse"
    assert sleeps.delays == []


def test_html_instead_of_json(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue("core_webservice_get_site_info", Reply(body=b"<!DOCTYPE html><html>Login</html>"))
    with pytest.raises(MalformedResponseError, match="HTML instead of JSON"):
        client.get_site_info()


def test_php_notice_before_json_is_invalid_json(client: MoodleClient, moodle: MoodleStub) -> None:
    moodle.queue("core_webservice_get_site_info", Reply(body=b'Notice: x in y\n{"a": 1}'))
    with pytest.raises(MalformedResponseError, match="invalid JSON"):
        client.get_site_info()


@pytest.mark.parametrize(
    ("wsfunction", "body", "call"),
    [
        ("core_webservice_get_site_info", [1, 2], lambda c: c.get_site_info()),
        ("core_webservice_get_site_info", {"siteurl": "x"}, lambda c: c.get_site_info()),
        ("core_enrol_get_enrolled_users", {"users": []}, lambda c: c.get_enrolled_users(2)),
        (
            "gradereport_user_get_grade_items",
            {"usergrades": [{"userid": "x", "gradeitems": []}]},
            lambda c: c.get_grade_items(2),
        ),
        (LOG_FUNCTION, {"logs": [], "hasmore": False}, lambda c: c.get_course_logs(2)),
    ],
    ids=["list-for-object", "missing-field", "object-for-list", "bad-int", "no-lastid"],
)
def test_wrong_shape_is_malformed(
    client: MoodleClient, moodle: MoodleStub, wsfunction: str, body: object, call: object
) -> None:
    moodle.queue(wsfunction, Reply(body=body))
    with pytest.raises(MalformedResponseError):
        call(client)  # type: ignore[operator]


# ---------------------------------------------------------------- the token stays secret


def _everything_said(error: BaseException) -> str:
    return "\n".join(
        [str(error), repr(error), "".join(traceback.format_exception(error)), repr(error.args)]
    )


def test_token_never_in_errors_reprs_or_logs(
    moodle: MoodleStub, closed_port: int, sleeps: Sleeps, all_logs: pytest.LogCaptureFixture
) -> None:
    said: list[str] = []
    client = MoodleClient(moodle.url, TOKEN, timeout=0.2, max_retries=1, sleep=sleeps)
    said.append(repr(client))
    moodle.queue("core_webservice_get_site_info", Reply(body=fixture_json("error_bad_token.json")))
    moodle.queue("core_course_get_contents", Reply(delay=1.0), Reply(delay=1.0))
    moodle.queue("core_enrol_get_enrolled_users", Reply(body=b"{", status=200))
    moodle.queue("gradereport_user_get_grade_items", *[Reply(body=b"x", status=502)] * 2)
    for failing in (
        client.get_site_info,
        lambda: client.get_course_contents(2),
        lambda: client.get_enrolled_users(2),
        lambda: client.get_grade_items(2),
    ):
        with pytest.raises(MoodleError) as caught:
            failing()
        said.append(_everything_said(caught.value))
    assert all_logs.records, "the client logged nothing: the log check would prove nothing"
    said.append(all_logs.text)
    said.extend(str(record.args) for record in all_logs.records)

    # A token pasted into the base URL ends up in requests' own messages: ours are scrubbed
    # (urllib3's debug lines then show the URL: that misconfiguration is the admin's to fix).
    all_logs.clear()
    leaky = MoodleClient(
        f"http://127.0.0.1:{closed_port}/{TOKEN}", TOKEN, max_retries=1, sleep=sleeps
    )
    said.append(repr(leaky))
    with pytest.raises(MoodleUnavailableError) as caught_leak:
        leaky.get_site_info()
    said.append(_everything_said(caught_leak.value))
    assert "[redacted]" in str(caught_leak.value)
    ours = [r for r in all_logs.records if r.name.startswith("moodle_client")]
    assert ours
    said.extend(r.getMessage() for r in ours)

    for text in said:
        assert TOKEN not in text
    assert "[redacted]" in repr(client)


# ---------------------------------------------------------------- truncation, property


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(value=st.dictionaries(st.text(max_size=5), json_values, min_size=1), cut=st.data())
def test_every_cut_of_a_json_object_reads_as_truncated(value: object, cut: st.DataObject) -> None:
    text = json.dumps(value)
    at = cut.draw(st.integers(min_value=1, max_value=len(text) - 1))
    assert _unclosed(text[:at])
    assert not _unclosed(text)

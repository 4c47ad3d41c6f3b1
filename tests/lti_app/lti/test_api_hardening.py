"""Hostile input over real launches (issue #11): formula names in the CSV export, ids past the
database's integers in every route, what-if values outside their feature's range, and JSON
bodies nested deeper than the parser's recursion limit. Each must get a specific 4xx answer or
neutral data, never a 500 or a live formula.
"""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from sqlalchemy import update

from lti_app.models import Person
from lti_app.services.exports import FORMULA_STARTS
from lti_app.web.converters import ID_MAX, IdConverter
from ml.feature_info import FEATURES
from tests.lti_app.lti.api_sessions import ApiSessions, api_sessions
from tests.lti_app.lti.env import LtiEnv

#: One hostile name per character that starts a formula (OWASP's CSV-injection list).
FORMULA_NAMES = {
    "=": '=HYPERLINK("http://x","y")',
    "+": "+cmd|' /C calc'!A0",
    "-": "-2+3+cmd|' /C calc'!A0",
    "@": "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t": "\t=1+1",
    "\r": "\r=1+1",
}


@pytest.fixture(scope="module")
def sessions(lti_env: LtiEnv) -> ApiSessions:
    """The scored course; its students from the third on carry the hostile names (the first two
    are the API sessions' learner and other student)."""
    scored = api_sessions(lti_env)
    hostile = scored.course.students[2 : 2 + len(FORMULA_NAMES)]
    with lti_env.db() as db:
        for student, name in zip(hostile, FORMULA_NAMES.values(), strict=True):
            db.execute(update(Person).where(Person.id == student.person_id).values(fullname=name))
    return scored


# --------------------------------------------------------------------------- CSV injection


@pytest.fixture(scope="module")
def csv_rows(lti_env: LtiEnv, sessions: ApiSessions) -> list[list[str]]:
    resp = lti_env.client().get(
        f"/course/{sessions.course_id}/students.csv",
        headers={"X-Launch-Token": sessions.teacher["X-Launch-Token"]},
    )
    assert resp.status_code == 200
    text = resp.get_data(as_text=True).lstrip("\ufeff")
    return list(csv.reader(io.StringIO(text, newline="")))


def test_formula_starts_are_owasps_list() -> None:
    assert set(FORMULA_STARTS) == set(FORMULA_NAMES)


@pytest.mark.parametrize("start", list(FORMULA_NAMES), ids=repr)
def test_web_csv_neutralises_a_formula_name(csv_rows: list[list[str]], start: str) -> None:
    """The name comes back as text: the same characters behind a quote, which spreadsheets read
    as "this cell is text" and do not show."""
    name = FORMULA_NAMES[start]
    column = csv_rows[0].index("Student")
    names = [row[column] for row in csv_rows[1:]]
    assert "'" + name in names
    assert name not in names


def test_no_web_csv_cell_can_start_a_formula(csv_rows: list[list[str]]) -> None:
    """Every cell is a number (negative ones included), empty, or text that cannot start a
    formula; and negative numbers do stay numbers."""
    negatives = 0
    for row in csv_rows:
        for value in row:
            try:
                number = float(value)
            except ValueError:
                assert not value.startswith(FORMULA_STARTS), value
            else:
                negatives += number < 0
    trend = csv_rows[0].index("Activity trend")
    assert any(float(row[trend]) < 0 for row in csv_rows[1:] if row[trend])
    assert negatives > 0


# --------------------------------------------------------------------------- ids past INTEGER

HUGE_IDS = [2**31, 2**63, 2**64, 10**30]


def _id_routes(env: LtiEnv) -> list[tuple[str, str, list[str]]]:
    """(method, rule, id arguments) of every route with a row id in its path."""
    out = []
    for rule in env.app.url_map.iter_rules():
        ids = [a for a, conv in rule._converters.items() if isinstance(conv, IdConverter)]
        if ids:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                out.append((method, rule.rule, ids))
    return out


def test_every_id_in_a_path_is_bounded(lti_env: LtiEnv) -> None:
    """No route takes a row id through Werkzeug's unbounded `int` converter."""
    for rule in lti_env.app.url_map.iter_rules():
        for arg, conv in rule._converters.items():
            if arg.endswith("_id"):
                assert isinstance(conv, IdConverter), f"{rule.rule}: <{arg}> is not an <id:>"
    routes = {(m, r) for m, r, _ in _id_routes(lti_env)}
    # The routes that answered 500 at 629b864 are among them (the fourth, the unversioned
    # /api/course/<id>/learners/<id>, is retired).
    assert ("GET", "/api/v1/courses/<id:course_id>/students/<id:person_id>") in routes
    assert ("POST", "/api/v1/courses/<id:course_id>/students/<id:person_id>/what-if") in routes
    assert ("GET", "/course/<id:course_id>/learners/<id:person_id>") in routes


def test_the_id_regex_matches_exactly_one_to_id_max() -> None:
    """Every decimal string near a digit-count or prefix boundary of ID_MAX: the converter's
    regex accepts it exactly when it is a row id (no sign, no leading zero, 1..ID_MAX), so an
    out-of-range id fails routing itself (a 404), never `to_python` (Werkzeug then tried the
    same path's other-method rule and answered 405)."""
    pattern = re.compile(IdConverter.regex)
    digits = str(ID_MAX)
    candidates = {0, 1, 9, 10, 2**63, 2**64, 10**30}
    for k in range(1, len(digits) + 2):
        candidates |= {10 ** (k - 1), 10**k - 1}
    for i in range(len(digits) + 1):
        prefix = int(digits[:i] or 0)
        for rest in (0, 10 ** (len(digits) - i) - 1):
            base = prefix * 10 ** (len(digits) - i) + rest
            candidates |= {base - 1, base, base + 1}
    for n in sorted(candidates):
        assert bool(pattern.fullmatch(str(n))) == (1 <= n <= ID_MAX), n
    for text in ("01", "+1", "-1", "", "1e3", " 1"):
        assert pattern.fullmatch(text) is None, text


@pytest.mark.parametrize("huge", HUGE_IDS, ids=lambda n: f"{n:.3g}")
@pytest.mark.parametrize("role", ["teacher", "learner"])
def test_an_id_past_integer_is_a_404_on_every_route(
    lti_env: LtiEnv, sessions: ApiSessions, huge: int, role: str
) -> None:
    """Each id argument of each route in turn gets the huge id (the others real ones), with
    the session's headers: the answer is a 404 before any query, whoever asks."""
    auth = sessions.teacher if role == "teacher" else sessions.learner
    real = {"course_id": sessions.course_id, "person_id": sessions.learner_id}
    client = lti_env.client()
    tried = 0
    for method, rule, ids in _id_routes(lti_env):
        for target in ids:
            values = {a: str(huge if a == target else real.get(a, 1)) for a in ids}
            url = re.sub(r"<id:(\w+)>", lambda m, v=values: v[m.group(1)], rule)  # type: ignore[misc]
            resp = client.open(url, method=method, headers=auth, json={"changes": {}})
            assert resp.status_code == 404, f"{method} {url}: {resp.status_code}"
            tried += 1
    assert tried >= 14


# --------------------------------------------------------------------------- what-if values


def _what_if_url(sessions: ApiSessions) -> str:
    return f"/api/v1/courses/{sessions.course_id}/students/{sessions.learner_id}/what-if"


def _post_raw(
    env: LtiEnv, sessions: ApiSessions, body: str | bytes
) -> tuple[int, dict[str, object]]:
    resp = env.client().post(
        _what_if_url(sessions),
        headers={**sessions.learner, "Content-Type": "application/json"},
        data=body,
    )
    return resp.status_code, resp.get_json()


#: Literal JSON values outside every actionable feature's range; Python's json reads NaN and
#: the infinities, and the big integer is wider than any float.
OUT_OF_RANGE = ["1e308", "-1e308", "NaN", "Infinity", "-Infinity", "-1", "-0.001", "1" + "0" * 400]


@pytest.mark.parametrize("feature", sorted(f for f in FEATURES if FEATURES[f].controllable))
@pytest.mark.parametrize("literal", OUT_OF_RANGE, ids=lambda v: v[:8])
def test_what_if_value_out_of_range_is_a_422_naming_feature_and_range(
    lti_env: LtiEnv, sessions: ApiSessions, feature: str, literal: str
) -> None:
    status, body = _post_raw(lti_env, sessions, f'{{"changes": {{"{feature}": {literal}}}}}')
    assert status == 422, body
    assert body["code"] == "out_of_range"
    message = str(body["message"])
    assert feature in message
    assert FEATURES[feature].range_text() in message


@pytest.mark.parametrize("feature", sorted(f for f in FEATURES if FEATURES[f].controllable))
def test_what_if_just_above_the_range_is_refused_and_its_ends_are_answered(
    lti_env: LtiEnv, sessions: ApiSessions, feature: str
) -> None:
    """The range is closed: both ends give a finite answer (the models extrapolate without
    overflow there), the next number above the maximum is refused."""
    info = FEATURES[feature]
    above = info.maximum + max(1e-6, info.maximum * 1e-9)
    status, body = _post_raw(lti_env, sessions, json.dumps({"changes": {feature: above}}))
    assert status == 422, body
    for end in (info.minimum, info.maximum):
        status, body = _post_raw(lti_env, sessions, json.dumps({"changes": {feature: end}}))
        assert status == 200, body
        for key in ("probability", "predicted_grade", "uncertainty"):
            assert isinstance(body[key], float)
        assert 0 <= float(body["probability"]) <= 1  # type: ignore[arg-type]


def test_openapi_declares_the_same_ranges(lti_env: LtiEnv) -> None:
    spec = lti_env.client().get("/api/v1/openapi.json").get_json()
    changes = spec["components"]["schemas"]["WhatIf"]["properties"]["changes"]
    assert changes["additionalProperties"] is False
    declared = {name: (p["minimum"], p["maximum"]) for name, p in changes["properties"].items()}
    assert declared == {f: (i.minimum, i.maximum) for f, i in FEATURES.items() if i.controllable}
    responses = spec["paths"]["/api/v1/courses/{course_id}/students/{person_id}/what-if"]["post"]
    assert "422" in responses["responses"]


# --------------------------------------------------------------------------- JSON bodies


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


#: Deeper than Python's recursion limit (1,000), yet small enough (10 KB) to pass the API's body
#: limit and reach the parser: the body that answered 500 before.
DEEP = 5_000


@pytest.mark.parametrize(
    "body",
    [
        _nested(DEEP),
        '{"changes": ' + _nested(DEEP) + "}",
        '{"changes": {"active_days": ' + "[" * DEEP,
        '{"a":' * (DEEP // 2) + "1" + "}" * (DEEP // 2),
        '{"changes": {"active_days": 3}',
        b'{"changes": {"active_days": \xff}}',
        "",
    ],
    ids=[
        "deep-array",
        "deep-changes",
        "deep-unclosed",
        "deep-object",
        "truncated",
        "bad-bytes",
        "empty",
    ],
)
def test_a_body_that_is_not_readable_json_is_a_400(
    lti_env: LtiEnv, sessions: ApiSessions, body: str | bytes
) -> None:
    assert len(body) < lti_env.settings.app.max_api_request_bytes
    status, answer = _post_raw(lti_env, sessions, body)
    assert status == 400, answer
    assert answer["code"] == "bad_json"
    assert "Traceback" not in str(answer["message"])


def test_the_issues_20000_level_body_is_refused_in_json(
    lti_env: LtiEnv, sessions: ApiSessions
) -> None:
    """The issue's body (40 KB): over the API's body limit, a 413 before any parsing; with a
    larger limit it would be the 400 above. Either way a JSON error, never a 500."""
    status, answer = _post_raw(lti_env, sessions, '{"changes": ' + _nested(20_000) + "}")
    assert status in {400, 413}, answer
    assert answer["status"] == status


def test_a_body_that_is_not_sent_as_json_is_a_400(lti_env: LtiEnv, sessions: ApiSessions) -> None:
    resp = lti_env.client().post(
        _what_if_url(sessions),
        headers={**sessions.learner, "Content-Type": "text/plain"},
        data='{"changes": {}}',
    )
    assert resp.status_code == 400
    assert "Content-Type: application/json" in resp.get_json()["message"]

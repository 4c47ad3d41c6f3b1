"""Schemathesis over the JSON API: generated requests, valid and invalid, from the API's own
OpenAPI document, sent with a real launch session; no answer may be a 500 and every answer must
match the document (status, content type, body schema).

The run is bounded and repeatable: a fixed number of examples per operation, generation mode and
role, drawn by Hypothesis in derandomized mode (a seed fixed by the test, no example database),
so a run in CI sends the same requests as a run on a laptop. Half of the cases keep the path on
the scored course and its students, so that bodies reach the what-if model instead of stopping
at the course check; the other half draw any ids the schema allows.
"""

from __future__ import annotations

import re
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from lti_app.web.api import OPENAPI
from tests.lti_app.lti.api_sessions import ApiSessions, api_sessions
from tests.lti_app.lti.env import LtiEnv

#: Examples per (operation, mode, role): 6 operations x 2 modes x 2 roles x 25 = 600 requests a
#: backend, a few seconds.
EXAMPLES = 25

OPERATIONS = [(method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item]


@pytest.fixture(scope="module")
def sessions(lti_env: LtiEnv) -> ApiSessions:
    return api_sessions(lti_env)


@pytest.fixture(scope="module")
def schema(lti_env: LtiEnv) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", lti_env.app)


def _strategy(
    operation: Any, mode: GenerationMode, sessions: ApiSessions, auth: dict[str, str]
) -> Any:
    """One strategy of three kinds of cases: any ids; the scored course (the learner's own
    record, another student's); and the scored course with the session's headers held valid,
    so that a negative case breaks the body or the path rather than dropping the CSRF token
    (which the first two kinds already do often)."""
    names = {p.name for p in operation.path_parameters}
    real: list[dict[str, int]] = [{}]
    if "course_id" in names:
        real = [{"course_id": sessions.course_id}]
        if "person_id" in names:
            real = [
                {**real[0], "person_id": pid} for pid in (sessions.learner_id, sessions.other_id)
            ]
    strategies = [operation.as_strategy(generation_mode=mode)]
    for path in real:
        strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=path))
        strategies.append(
            operation.as_strategy(generation_mode=mode, path_parameters=path, headers=auth)
        )
    return st.one_of(*strategies)


@pytest.mark.parametrize("role", ["teacher", "learner"])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_api_answers_as_its_schema_says(
    schema: Any, sessions: ApiSessions, role: str, mode: GenerationMode, method: str, path: str
) -> None:
    auth = sessions.teacher if role == "teacher" else sessions.learner
    operation = schema[path][method]

    @hypothesis.settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, mode, sessions, auth))
    def run(case: Any) -> None:
        response = case.call(headers=auth)
        assert response.status_code != 500, response.text
        case.validate_response(response, headers=auth)

    run()


def test_every_api_route_is_in_the_document(lti_env: LtiEnv, schema: Any) -> None:
    """The run covers what the app serves: a new `/api/v1` route without a document entry (or
    an entry without a route) fails here."""
    served = sorted(
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in lti_env.app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api.openapi"
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    )
    documented = sorted(
        (o.method.upper(), o.path) for o in (r.ok() for r in schema.get_all_operations())
    )
    assert served == documented == sorted(OPERATIONS)

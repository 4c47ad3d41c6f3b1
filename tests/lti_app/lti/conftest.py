"""Fixtures for the LTI tests: a migrated database per backend, the tool app registered with an
independent test platform (real keys, real HTTP on 127.0.0.1), and helpers for the OIDC flow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Databases
from tests.lti_app.lti.env import LtiEnv, make_env


@pytest.fixture(scope="module")
def lti_env(
    backend: str, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LtiEnv]:
    env = make_env(databases.new_url(backend), tmp_path_factory.mktemp("lti"))
    try:
        yield env
    finally:
        env.close()

"""The real id_tokens that Moodle 5.1 signed (lti_flow_*.json) are accepted as recorded.

The recordings have expired, so PyJWT's clock is set back to 30 seconds after their `iat`; the
platform keyset is the one Moodle published (platform_jwks.json), placed in the keyset cache.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt.api_jwt
import pytest
from sqlalchemy import select

from lti_app.crypto import SecretBox
from lti_app.db import utcnow
from lti_app.models import Course, LtiStoredValue, Person
from lti_app.services.lti_registry import add_platform
from tests.lti_app.lti.env import LtiEnv
from tests.lti_app.lti.lti_platform import recorded

ISSUER = "http://127.0.0.1:8081"


@pytest.fixture(scope="module")
def recorded_platform(lti_env: LtiEnv) -> int:
    box = SecretBox.from_settings(lti_env.settings)
    with lti_env.db() as db:
        platform = add_platform(
            db,
            box,
            issuer=ISSUER,
            client_id="bzlMyMDXljUc14j",
            deployment_ids=["1"],
            name="recorded Moodle 5.1",
        )
        platform.key_set_cache = recorded("platform_jwks.json")
        platform.key_set_fetched_at = utcnow()
        return platform.id


def _freeze_jwt_clock(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls.fromtimestamp(at, tz=UTC)

    monkeypatch.setattr(jwt.api_jwt, "datetime", Frozen)


@pytest.mark.parametrize(
    ("flow", "role", "sub"), [("teacher", "teacher", "3"), ("student", "learner", "4")]
)
def test_recorded_moodle_launch_is_accepted(
    lti_env: LtiEnv,
    recorded_platform: int,
    monkeypatch: pytest.MonkeyPatch,
    flow: str,
    role: str,
    sub: str,
) -> None:
    record = recorded(f"lti_flow_{flow}.json")
    state = record["auth_request_params_sent_by_tool"]["state"]
    nonce = record["auth_request_params_sent_by_tool"]["nonce"]
    claims = recorded(f"id_token_{flow}.json")["claims"]
    with lti_env.db() as db:
        expires = utcnow().replace(year=utcnow().year + 1)
        db.merge(
            LtiStoredValue(
                key=f"lti1p3-{state}",
                value={"nonce": nonce, "platform_id": recorded_platform},
                expires_at=expires,
            )
        )
        db.merge(LtiStoredValue(key=f"lti1p3-nonce-{nonce}", value=True, expires_at=expires))
    _freeze_jwt_clock(monkeypatch, claims["iat"] + 30)
    resp = lti_env.client().post(
        "/lti/launch", data={"id_token": record["id_token_raw"], "state": state}
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert _landing_role(resp.headers["Location"]) == role
    with lti_env.db() as db:
        person = db.scalars(
            select(Person).where(Person.platform_id == recorded_platform, Person.lti_sub == sub)
        ).one()
        assert person.moodle_user_id == int(sub)
        course = db.scalars(
            select(Course).where(Course.site_id == person.site_id, Course.lti_context_id == "2")
        ).one()
        assert course.moodle_course_id == 2
    # And once is all: the same recording again is a replay.
    again = lti_env.client().post(
        "/lti/launch", data={"id_token": record["id_token_raw"], "state": state}
    )
    assert again.status_code == 400


def _landing_role(location: str) -> str:
    return "learner" if location.split("?", 1)[0].endswith("/me") else "teacher"

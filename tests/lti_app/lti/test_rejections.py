"""Every attack on the launch is refused with a clear 4xx page and an audit event, never a 500,
and never opens a session."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from lti_app.models import LtiPlatform, LtiSession
from tests.lti_app.lti.env import LoginResult, LtiEnv, login, post_launch
from tests.lti_app.lti.lti_platform import CLAIM, DELETE, PlatformKey


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sessions(env: LtiEnv) -> int:
    with env.db() as db:
        return int(db.scalar(select(func.count()).select_from(LtiSession)) or 0)


def _assert_refused(env: LtiEnv, resp: TestResponse, reason: str, since: int) -> None:
    text = resp.get_data(as_text=True)
    assert 400 <= resp.status_code < 500, (resp.status_code, text)
    assert "Traceback" not in text
    assert "Launch refused" in text
    events = [e for e in env.audits(since) if e.action == "lti.launch"]
    assert [e.outcome for e in events] == ["rejected"], [(e.outcome, e.reason) for e in events]
    assert events[0].reason == reason
    # The audit keeps identifiers, never the token.
    assert "eyJ" not in json.dumps(events[0].details or {})


Forge = Callable[[LtiEnv, LoginResult], tuple[str | None, str | None]]


def _signed(*, shift: int | None = None, **overrides: Any) -> Forge:
    """A correctly signed launch with `overrides`; `shift` moves iat/exp by that many seconds
    from the moment of signing (not of import: a long test run must not age the token)."""

    def forge(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
        rest = {k: v for k, v in overrides.items() if k != "nonce"}
        if shift is not None:
            rest["now"] = int(time.time()) + shift
        claims = env.platform.claims("teacher", nonce=result.nonce, **rest)
        if overrides.get("nonce") is DELETE:
            del claims["nonce"]
        return env.platform.sign(claims), result.state

    return forge


def _alg_none(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
    claims = env.platform.claims("teacher", nonce=result.nonce)
    header = {"alg": "none", "typ": "JWT", "kid": env.platform.key.kid}
    return f"{_b64(header)}.{_b64(claims)}.", result.state


def _hs256_with_public_key(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
    import hashlib
    import hmac

    claims = env.platform.claims("teacher", nonce=result.nonce)
    header = {"alg": "HS256", "typ": "JWT", "kid": env.platform.key.kid}
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    secret = env.platform.key.public_pem  # the classic key-confusion attack
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode(), result.state


def _bad_signature(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
    claims = env.platform.claims("teacher", nonce=result.nonce)
    forger = PlatformKey(kid=env.platform.key.kid)  # right kid, wrong private key
    return env.platform.sign(claims, key=forger), result.state


def _tampered_payload(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
    claims = env.platform.claims("student", nonce=result.nonce)
    token = env.platform.sign(claims)
    head, _, sig = token.split(".")
    claims[CLAIM + "roles"] = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]
    return f"{head}.{_b64(claims)}.{sig}", result.state


def _missing_state(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
    return _signed()(env, result)[0], None


def _mismatched_state(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
    # A real, unused state of another login (another browser) answered with our nonce.
    other = login(env.client(), env)
    return _signed()(env, result)[0], other.state


def _forged_state(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
    return _signed()(env, result)[0], "state-never-issued"


def _malformed(env: LtiEnv, result: LoginResult) -> tuple[str | None, str | None]:
    return "not-a-jwt", result.state


ATTACKS: dict[str, tuple[Forge, str]] = {
    "wrong iss": (_signed(iss="http://evil.example"), "issuer_unknown"),
    "wrong aud": (_signed(aud="someone-else"), "audience_unknown"),
    "aud list without our client": (_signed(aud=["a", "b"]), "audience_unknown"),
    "azp mismatch": (
        _signed(aud=["bzlMyMDXljUc14j", "other"], azp="other"),
        "audience_unknown",
    ),
    "azp missing with several audiences": (
        _signed(aud=["bzlMyMDXljUc14j", "other"]),
        "azp_mismatch",
    ),
    "unknown deployment": (_signed(deployment_id="999"), "deployment_unknown"),
    "expired token": (_signed(shift=-200), "token_expired"),
    "iat in the future beyond leeway": (
        _signed(shift=120),
        "token_not_yet_valid",
    ),
    "bad signature": (_bad_signature, "signature_invalid"),
    "tampered payload": (_tampered_payload, "signature_invalid"),
    "alg none": (_alg_none, "alg_not_allowed"),
    "HS256 signed with the public key": (_hs256_with_public_key, "alg_not_allowed"),
    "missing state": (_missing_state, "state_missing"),
    "mismatched state": (_mismatched_state, "state_mismatch"),
    "forged state": (_forged_state, "state_unknown"),
    "wrong message_type": (
        _signed(**{CLAIM + "message_type": "LtiSubmissionReviewRequest"}),  # type: ignore[arg-type]
        "message_type_unsupported",
    ),
    "wrong version": (
        _signed(**{CLAIM + "version": "1.1"}),  # type: ignore[arg-type]
        "version_invalid",
    ),
    "missing sub": (_signed(sub=DELETE), "sub_missing"),
    "empty sub": (_signed(sub=""), "sub_missing"),
    "missing roles": (_signed(**{CLAIM + "roles": DELETE}), "roles_missing"),
    "missing nonce": (_signed(nonce=DELETE), "claim_missing"),
    "malformed token": (_malformed, "token_malformed"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_attack_is_refused_and_audited(lti_env: LtiEnv, attack: str) -> None:
    forge, reason = ATTACKS[attack]
    client = lti_env.client()
    result = login(client, lti_env)
    token, state = forge(lti_env, result)
    since, sessions = lti_env.last_audit_id(), _sessions(lti_env)
    resp = post_launch(client, token, state)
    _assert_refused(lti_env, resp, reason, since)
    assert _sessions(lti_env) == sessions


def test_azp_equal_to_client_is_accepted(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    result = login(client, lti_env)
    token, state = _signed(aud=["bzlMyMDXljUc14j", "other"], azp="bzlMyMDXljUc14j")(lti_env, result)
    assert post_launch(client, token, state).status_code == 303


@pytest.mark.parametrize(("iat_offset", "accepted"), [(5, True), (-62, True), (-75, False)])
def test_clock_leeway(lti_env: LtiEnv, iat_offset: int, accepted: bool) -> None:
    """leeway_seconds = 10: iat 5 s ahead passes; exp = iat + 60 passed 2 s ago still passes,
    15 s ago does not."""
    client = lti_env.client()
    result = login(client, lti_env)
    token, state = _signed(shift=iat_offset)(lti_env, result)
    resp = post_launch(client, token, state)
    assert (resp.status_code == 303) is accepted, resp.get_data(as_text=True)


def test_replayed_id_token_is_refused(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    result = login(client, lti_env)
    token, state = _signed()(lti_env, result)
    assert post_launch(client, token, state).status_code == 303
    since = lti_env.last_audit_id()
    _assert_refused(lti_env, post_launch(client, token, state), "state_unknown", since)
    # Replayed with a fresh state of the attacker's own login: the nonce does not match.
    fresh = login(client, lti_env)
    since = lti_env.last_audit_id()
    _assert_refused(lti_env, post_launch(client, token, fresh.state), "state_mismatch", since)


def test_unknown_kid_refetches_once_then_refuses(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    # Warm the cache with a normal launch.
    result = login(client, lti_env)
    assert post_launch(client, *_signed()(lti_env, result)).status_code == 303
    hits = lti_env.platform.jwks_hits
    # Right after a fetch an unknown kid costs nothing: the keyset is fresh.
    result = login(client, lti_env)
    token = lti_env.platform.sign(
        lti_env.platform.claims("teacher", nonce=result.nonce), key=PlatformKey()
    )
    since = lti_env.last_audit_id()
    _assert_refused(lti_env, post_launch(client, token, result.state), "kid_unknown", since)
    assert lti_env.platform.jwks_hits == hits
    # Later, it may be a rotation: one refetch, then refused.
    _age_key_set(lti_env, minutes=2)
    result = login(client, lti_env)
    stranger = PlatformKey()
    token = lti_env.platform.sign(
        lti_env.platform.claims("teacher", nonce=result.nonce), key=stranger
    )
    since = lti_env.last_audit_id()
    _assert_refused(lti_env, post_launch(client, token, result.state), "kid_unknown", since)
    assert lti_env.platform.jwks_hits == hits + 1
    # A stream of made-up kids right after: refused from the fresh cache, no more fetches.
    for _ in range(3):
        result = login(client, lti_env)
        token = lti_env.platform.sign(
            lti_env.platform.claims("teacher", nonce=result.nonce), key=PlatformKey()
        )
        since = lti_env.last_audit_id()
        _assert_refused(lti_env, post_launch(client, token, result.state), "kid_unknown", since)
    assert lti_env.platform.jwks_hits == hits + 1
    # A minute on, an unknown kid may be a real rotation again: one more fetch.
    _age_key_set(lti_env, minutes=2)
    result = login(client, lti_env)
    token = lti_env.platform.sign(
        lti_env.platform.claims("teacher", nonce=result.nonce), key=stranger
    )
    since = lti_env.last_audit_id()
    _assert_refused(lti_env, post_launch(client, token, result.state), "kid_unknown", since)
    assert lti_env.platform.jwks_hits == hits + 2


def _age_key_set(env: LtiEnv, *, minutes: int) -> None:
    """Pretend the cached keyset was fetched `minutes` ago."""
    with env.db() as session:
        for platform in session.scalars(select(LtiPlatform)):
            if platform.key_set_fetched_at is not None:
                platform.key_set_fetched_at -= timedelta(minutes=minutes)


def test_platform_key_rotation_is_picked_up_by_refetch(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    result = login(client, lti_env)
    assert post_launch(client, *_signed()(lti_env, result)).status_code == 303
    # The platform rotates its key some time after our fetch.
    _age_key_set(lti_env, minutes=5)
    old, new = lti_env.platform.key, PlatformKey()
    lti_env.platform.served_keys = [new, old]
    try:
        hits = lti_env.platform.jwks_hits
        result = login(client, lti_env)
        token = lti_env.platform.sign(
            lti_env.platform.claims("teacher", nonce=result.nonce), key=new
        )
        assert post_launch(client, token, result.state).status_code == 303
        assert lti_env.platform.jwks_hits == hits + 1
        # Cached now: the next launch with the new key costs no fetch.
        result = login(client, lti_env)
        token = lti_env.platform.sign(
            lti_env.platform.claims("teacher", nonce=result.nonce), key=new
        )
        assert post_launch(client, token, result.state).status_code == 303
        assert lti_env.platform.jwks_hits == hits + 1
    finally:
        lti_env.platform.served_keys = [old]


def test_state_cookie_of_another_login_is_a_mismatch(lti_env: LtiEnv) -> None:
    """A browser that keeps our state cookies but has none for this state did not start this
    login: the launch is someone else's (login CSRF)."""
    victim = lti_env.client()
    login(victim, lti_env)  # the victim's browser holds a state cookie of its own
    attacker = lti_env.client()
    result = login(attacker, lti_env)
    token, state = _signed()(lti_env, result)
    since = lti_env.last_audit_id()
    _assert_refused(lti_env, post_launch(victim, token, state), "state_mismatch", since)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"iss": None}, "issuer_missing"),
        ({"login_hint": None}, "login_hint_missing"),
        ({"iss": "http://unknown.example"}, "issuer_unknown"),
        ({"client_id": "nobody"}, "client_unknown"),
        ({"lti_deployment_id": "999"}, "deployment_unknown"),
        ({"target_link_uri": "https://evil.example/lti/launch"}, "target_foreign"),
    ],
)
def test_bad_login_initiation_is_refused(
    lti_env: LtiEnv, params: dict[str, Any], reason: str
) -> None:
    from tests.lti_app.lti.env import login_params

    since = lti_env.last_audit_id()
    resp = lti_env.client().post("/lti/login", data=login_params(lti_env, **params))
    assert resp.status_code == 400
    assert "Traceback" not in resp.get_data(as_text=True)
    events = [e for e in lti_env.audits(since) if e.action == "lti.login"]
    assert [e.reason for e in events] == [reason]


def test_refused_launch_answers_json_to_api_clients(lti_env: LtiEnv) -> None:
    client: FlaskClient = lti_env.client()
    resp = client.post("/lti/launch", data={"state": "x"}, headers={"Accept": "application/json"})
    assert resp.status_code == 400
    body = resp.get_json()
    assert body["code"] == "state_unknown"
    assert "Relaunch" in body["message"]


def test_pyjwt_really_rejects_a_forged_hs256_token(lti_env: LtiEnv) -> None:
    """Guard for the HS256 case above: the forged token is well-formed, so only the algorithm
    allow-list stops it."""
    result = login(lti_env.client(), lti_env)
    token, _ = _hs256_with_public_key(lti_env, result)
    assert token is not None
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert len(token.split(".")) == 3

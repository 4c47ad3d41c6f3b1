"""The tool under test wired to a test platform, and the OIDC login -> launch steps."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from lti_app import migrate
from lti_app.app import create_app
from lti_app.config import Settings, load_settings
from lti_app.crypto import SecretBox
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.models import AuditEvent
from lti_app.services.lti_keys import rotate_key
from lti_app.services.lti_registry import add_platform
from tests.lti_app.lti.lti_platform import Platform

SECOND_CLIENT = "second-client-id"


def write_settings(
    tmp: Path, url: str, *, public_url: str = "", extra: str = "", app_extra: str = ""
) -> Settings:
    cfg = tmp / f"config-{secrets.token_hex(4)}.toml"
    cfg.write_text(
        f"""
[app]
secret_key = "{secrets.token_urlsafe(32)}"
instance_path = "{tmp / "instance"}"
public_url = "{public_url}"
{app_extra}

[database]
url = "{url}"

[security]
encryption_key = "{Fernet.generate_key().decode()}"

[lti]
leeway_seconds = 10
{extra}
""",
        encoding="utf-8",
    )
    return load_settings(cfg, environ={})


@dataclass
class LtiEnv:
    settings: Settings
    app: Flask
    engine: Engine
    factory: sessionmaker[Session]
    platform: Platform
    tool_url: str = "http://localhost"
    closers: list[Any] = field(default_factory=list)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    @contextmanager
    def db(self) -> Iterator[Session]:
        with session_scope(self.factory) as session:
            yield session

    def audits(self, since_id: int = 0) -> list[AuditEvent]:
        with self.db() as session:
            return list(
                session.scalars(
                    select(AuditEvent).where(AuditEvent.id > since_id).order_by(AuditEvent.id)
                )
            )

    def last_audit_id(self) -> int:
        events = self.audits()
        return events[-1].id if events else 0

    def close(self) -> None:
        self.platform.close()
        for close in self.closers:
            close()
        self.engine.dispose()


def register(settings: Settings, factory: sessionmaker[Session], platform: Platform) -> None:
    box = SecretBox.from_settings(settings)
    with session_scope(factory) as session:
        add_platform(
            session,
            box,
            issuer=platform.issuer,
            client_id=platform.client_id,
            deployment_ids=["1", "2"],
            auth_login_url=platform.auth_login_url,
            auth_token_url=platform.auth_token_url,
            key_set_url=platform.key_set_url,
            name="Test Moodle",
        )
        add_platform(
            session,
            box,
            issuer=platform.issuer,
            client_id=SECOND_CLIENT,
            deployment_ids=["7"],
            auth_login_url=platform.auth_login_url,
            auth_token_url=platform.auth_token_url,
            key_set_url=platform.key_set_url,
        )
        rotate_key(session, box)


def make_env(
    url: str, tmp: Path, *, tool_url: str = "http://localhost", public_url: str = ""
) -> LtiEnv:
    engine = make_engine(url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    settings = write_settings(tmp, url, public_url=public_url)
    platform = Platform()
    platform.tool_url = tool_url
    register(settings, factory, platform)
    app = create_app(settings)
    app.testing = True
    env = LtiEnv(settings, app, engine, factory, platform, tool_url=tool_url)
    platform.tool_jwks = env.client().get("/lti/jwks").get_json()
    return env


# --------------------------------------------------------------------------- the flow


@dataclass
class LoginResult:
    response: TestResponse
    state: str
    nonce: str
    query: dict[str, str]


def login_params(env: LtiEnv, **overrides: Any) -> dict[str, str]:
    """The login-initiation parameters Moodle 5.1 sent (lti_flow_teacher.json), re-pointed."""
    params = {
        "iss": env.platform.issuer,
        "target_link_uri": f"{env.tool_url}/lti/launch",
        "login_hint": "3",
        "lti_message_hint": '{"cmid":8,"launchid":"ltilaunch1_368056654"}',
        "client_id": env.platform.client_id,
        "lti_deployment_id": "1",
    }
    for key, value in overrides.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return params


def login(
    client: FlaskClient, env: LtiEnv, *, method: str = "post", **overrides: Any
) -> LoginResult:
    params = login_params(env, **overrides)
    if method == "get":
        resp = client.get("/lti/login", query_string=params)
    else:
        resp = client.post("/lti/login", data=params)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    location = resp.headers["Location"]
    assert location.startswith(env.platform.auth_login_url + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return LoginResult(resp, query["state"], query["nonce"], query)


def post_launch(client: FlaskClient, id_token: str | None, state: str | None) -> TestResponse:
    data = {}
    if id_token is not None:
        data["id_token"] = id_token
    if state is not None:
        data["state"] = state
    return client.post("/lti/launch", data=data)


def launch(
    client: FlaskClient,
    env: LtiEnv,
    kind: str = "teacher",
    *,
    login_overrides: dict[str, Any] | None = None,
    **claim_overrides: Any,
) -> TestResponse:
    """OIDC login, then the signed id_token POST, as the platform's browser would send it."""
    result = login(client, env, **(login_overrides or {}))
    claims = env.platform.claims(kind, nonce=result.nonce, **claim_overrides)
    return post_launch(client, env.platform.sign(claims), result.state)


def token_of(resp: TestResponse) -> str:
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    return query["lt"][0]

"""Deep linking, Names and Roles, tool keys, headers, the admin config page and the CLI."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from click.testing import CliRunner
from sqlalchemy import select

from lti_app.app import create_app
from lti_app.cli import main
from lti_app.crypto import SecretBox
from lti_app.db import make_engine, make_session_factory, session_scope, utcnow
from lti_app.models import Course, Enrolment, LtiDeployment, LtiPlatform, LtiSession, ToolKey
from lti_app.services.lti_keys import published_jwks, rotate_key
from lti_app.services.nrps import course_roster
from tests.conftest import Databases
from tests.lti_app.lti.env import LtiEnv, launch, login, post_launch, token_of, write_settings
from tests.lti_app.lti.lti_platform import CLAIM

DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"


def _deep_link_claims(env: LtiEnv) -> dict[str, Any]:
    return {
        CLAIM + "message_type": "LtiDeepLinkingRequest",
        CLAIM + "resource_link": None,
        DL_SETTINGS: {
            "deep_link_return_url": f"{env.platform.issuer}/mod/lti/contentitem_return.php",
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["frame", "iframe", "window"],
            "accept_multiple": False,
            "data": "opaque-moodle-data",
        },
    }


def test_deep_linking_returns_a_signed_course_dashboard_link(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    claims = {k: v for k, v in _deep_link_claims(lti_env).items() if v is not None}
    resp = launch(client, lti_env, "teacher", **claims)
    assert resp.status_code == 303, resp.get_data(as_text=True)
    assert urlsplit(resp.headers["Location"]).path == "/lti/deep-link"
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', html).group(1))  # type: ignore[union-attr]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    # Without the CSRF token the POST is refused.
    assert lti_env.client().post(action).status_code == 403
    answer = lti_env.client().post(action, data={"csrf_token": csrf})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_data(as_text=True)
    return_url = f"{lti_env.platform.issuer}/mod/lti/contentitem_return.php"
    assert f'action="{return_url}"' in body
    token = unescape(re.search(r'name="JWT" value="([^"]+)"', body).group(1))  # type: ignore[union-attr]
    jwks = lti_env.client().get("/lti/jwks").get_json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    claims_out = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience=lti_env.platform.issuer,
        issuer=lti_env.platform.client_id,
    )
    assert claims_out[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims_out[CLAIM + "deployment_id"] == "1"
    assert claims_out["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-moodle-data"
    (item,) = claims_out["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["type"] == "ltiResourceLink"
    assert item["title"] == "Course dashboard"
    assert item["url"] == f"{lti_env.tool_url}/lti/launch"
    # The CSP lets the answer go back to the platform.
    assert lti_env.platform.issuer in answer.headers["Content-Security-Policy"]


def test_deep_linking_is_for_teachers_only(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    claims = {k: v for k, v in _deep_link_claims(lti_env).items() if v is not None}
    since = lti_env.last_audit_id()
    resp = launch(client, lti_env, "student", **claims)
    assert resp.status_code == 403
    assert [e.reason for e in lti_env.audits(since)] == ["deep_link_forbidden"]


def test_names_and_roles_roster_fetch(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher")
    token = token_of(resp)
    with lti_env.db() as db:
        course = db.scalars(select(Course).where(Course.lti_context_id == "2")).one()
        course_id = course.id
        session = db.scalars(select(LtiSession).order_by(LtiSession.id.desc())).first()
        assert session is not None
        csrf = session.csrf_token
        assert session.details["nrps_url"] == lti_env.platform.memberships_url
    answer = client.post(
        f"/course/{course_id}/roster/refresh",
        headers={"X-Launch-Token": token, "Accept": "application/json"},
        data={"csrf_token": csrf},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"members": 41, "learners": 40, "teachers": 1, "skipped": 0}
    # The token request was a client-credentials grant signed with the tool key.
    form = lti_env.platform.token_requests[-1]
    assert form["grant_type"] == ["client_credentials"]
    assert "contextmembership.readonly" in form["scope"][0]
    # The roster page lists them with their roles (the unversioned /api/course/<id>/roster,
    # which did too, is retired), and the members are stored with their Moodle ids.
    page = client.get(f"/course/{course_id}/roster", headers={"X-Launch-Token": token}).get_data(
        as_text=True
    )
    role = '(<span class="member-role" data-role="{}">{}</span>)'
    assert "Alice Andre</a> " + role.format("learner", "learner") in page
    assert "Claire Enseignante</a> " + role.format("teacher", "teacher") in page
    with lti_env.db() as db:
        course = db.get_one(Course, course_id)
        names = {p.fullname: (p.moodle_user_id, role) for p, role in course_roster(db, course)}
        assert names["Alice Andre"] == (29, "learner")
        assert names["Claire Enseignante"][1] == "teacher"
        sources = set(db.scalars(select(Enrolment.source).where(Enrolment.course_id == course_id)))
        assert "nrps" in sources


def test_participants_list_a_teacher_enrolled_as_a_student_once(lti_env: LtiEnv) -> None:
    """One row per person, with every role (#15): a teacher enrolled as a student too is one
    row "teacher, student", not two."""
    client = lti_env.client()
    token = token_of(launch(client, lti_env, "teacher"))
    with lti_env.db() as db:
        course = db.scalars(select(Course).where(Course.lti_context_id == "2")).one()
        course_id = course.id
        teacher = db.scalars(select(LtiSession).order_by(LtiSession.id.desc())).first()
        assert teacher is not None
        teacher_id = teacher.person_id
        db.add(Enrolment(course_id=course_id, person_id=teacher_id, role="student"))
    page = client.get(f"/course/{course_id}/roster", headers={"X-Launch-Token": token})
    body = page.get_data(as_text=True)
    rows = re.findall(rf'<li data-person="{teacher_id}">.*?</li>', body)
    assert len(rows) == 1
    assert re.findall(r'data-role="(\w+)"', rows[0]) == ["teacher", "student"]
    people = re.findall(r'<li data-person="(\d+)">', body)
    assert len(people) == len(set(people))


def test_security_headers(lti_env: LtiEnv) -> None:
    resp = lti_env.client().get("/lti/jwks")
    csp = resp.headers["Content-Security-Policy"]
    ancestors = re.search(r"frame-ancestors ([^;]+)", csp).group(1).split()  # type: ignore[union-attr]
    assert ancestors == ["'self'", lti_env.platform.issuer]
    assert "X-Frame-Options" not in resp.headers
    assert "script-src 'self'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_config_values_are_for_admins(lti_env: LtiEnv) -> None:
    admin = lti_env.client()
    admin_launch = launch(
        admin,
        lti_env,
        "teacher",
        **{  # type: ignore[arg-type]
            CLAIM + "roles": [
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
            ]
        },
    )
    token = token_of(admin_launch)
    values = admin.get(
        "/lti/config", headers={"X-Launch-Token": token, "Accept": "application/json"}
    ).get_json()
    assert values["Initiate login URL"] == "http://localhost/lti/login"
    assert values["Redirection URI(s)"] == "http://localhost/lti/launch"
    assert values["Public keyset"] == "http://localhost/lti/jwks"
    assert values["Tool URL"] == "http://localhost/lti/launch"
    teacher = lti_env.client()
    token = token_of(launch(teacher, lti_env, "teacher"))
    assert teacher.get("/lti/config", headers={"X-Launch-Token": token}).status_code == 403


def test_two_app_instances_share_login_state(lti_env: LtiEnv, tmp_path: Path) -> None:
    """Login on one worker, launch on another: the state and nonce live in the database."""
    other_app = create_app(lti_env.settings)
    other_app.testing = True
    first, second = lti_env.client(), other_app.test_client()
    result = login(first, lti_env)
    claims = lti_env.platform.claims("teacher", nonce=result.nonce)
    # The second "worker" receives the platform's POST (cookies travel with the browser).
    for cookie in (first._cookies or {}).values():
        second.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    resp = post_launch(second, lti_env.platform.sign(claims), result.state)
    assert resp.status_code == 303
    # And the session opened there is honoured by the first one.
    assert first.get(resp.headers["Location"]).status_code == 200


def test_key_rotation_keeps_the_previous_key_during_overlap(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    url = databases.new_url(backend)
    settings = write_settings(tmp_path, url)
    engine = make_engine(url)
    from lti_app import migrate

    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    box = SecretBox.from_settings(settings)
    with session_scope(factory) as db:
        first = rotate_key(db, box)
        second = rotate_key(db, box)
        kids = [k["kid"] for k in published_jwks(db, overlap_days=7)["keys"]]
        assert kids == [second.kid, first.kid]
        later = utcnow() + timedelta(days=8)
        assert [k["kid"] for k in published_jwks(db, overlap_days=7, now=later)["keys"]] == [
            second.kid
        ]
        stored = db.get_one(ToolKey, second.id)
        assert "PRIVATE KEY" not in stored.private_key_encrypted
        assert "PRIVATE KEY" in box.decrypt(stored.private_key_encrypted)
    engine.dispose()


def test_cli_registers_a_platform_and_rotates_keys(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    url = databases.new_url(backend)
    settings = write_settings(tmp_path, url, public_url="https://predict.example.fr")
    cfg = tmp_path / "cli.toml"
    cfg.write_text(
        f'[app]\nsecret_key = "{settings.app.secret_key}"\n'
        'public_url = "https://predict.example.fr"\n'
        f'[database]\nurl = "{url}"\n'
        f'[security]\nencryption_key = "{settings.security.encryption_key}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(cfg), "db", "upgrade"]).exit_code == 0
    args = ["--config", str(cfg), "lti", "add-platform", "--issuer", "https://arche.example.fr/"]
    args += ["--client-id", "abc", "--deployment-id", "1", "--deployment-id", "4"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "deployments [1, 4]" in result.output
    again = runner.invoke(main, [*args[:-4], "--deployment-id", "5"])
    assert again.exit_code == 0, again.output
    bad = runner.invoke(
        main,
        [
            *args[:2],
            "lti",
            "add-platform",
            "--issuer",
            "ftp://x",
            "--client-id",
            "a",
            "--deployment-id",
            "1",
        ],
    )
    assert bad.exit_code != 0
    assert "not an http(s) URL" in bad.output
    rotated = runner.invoke(main, ["--config", str(cfg), "keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    listed = runner.invoke(main, ["--config", str(cfg), "keys", "list"])
    assert listed.output.count("retired") == 1
    assert listed.output.count("current") == 1
    config = runner.invoke(main, ["--config", str(cfg), "lti", "tool-config"])
    assert "https://predict.example.fr/lti/login" in config.output
    purged = runner.invoke(main, ["--config", str(cfg), "lti", "purge"])
    assert purged.exit_code == 0, purged.output
    assert purged.output.startswith("purged 0 expired sessions")
    reg = runner.invoke(main, ["--config", str(cfg), "lti", "registration-url", "--hours", "2"])
    assert reg.exit_code == 0, reg.output
    assert reg.output.startswith("https://predict.example.fr/lti/register?code=")
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as db:
        platform = db.scalars(select(LtiPlatform)).one()
        assert platform.issuer == "https://arche.example.fr"
        assert platform.auth_login_url == "https://arche.example.fr/mod/lti/auth.php"
        assert platform.key_set_url == "https://arche.example.fr/mod/lti/certs.php"
        deps = set(db.scalars(select(LtiDeployment.deployment_id)))
        assert deps == {"1", "4", "5"}
        assert platform.site is not None
        assert platform.site.base_url == "https://arche.example.fr"
    engine.dispose()


def test_fresh_launch_token_on_every_page(lti_env: LtiEnv) -> None:
    client = lti_env.client()
    resp = launch(client, lti_env, "teacher")
    page = lti_env.client().get(resp.headers["Location"]).get_data(as_text=True)
    link = unescape(re.search(r'id="roster-link" href="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert parse_qs(urlsplit(link).query)["lt"]
    assert lti_env.client().get(link).status_code == 200


def test_launch_tokens_are_redacted_from_logs(lti_env: LtiEnv) -> None:
    from lti_app.observability import redact_text

    token = token_of(launch(lti_env.client(), lti_env, "teacher"))
    line = f'127.0.0.1 - - "GET /course/1?lt={token} HTTP/1.1" 200'
    assert token not in redact_text(line)
    assert redact_text("result=5&salt=3") == "result=5&salt=3"


def test_cookies_behind_an_https_proxy(lti_env: LtiEnv, tmp_path: Path) -> None:
    """Behind a TLS reverse proxy (app.proxy_count = 1), X-Forwarded-Proto: https makes the
    session cookie `Secure; SameSite=None; Partitioned`; plain HTTP on a real host name cannot
    use such a cookie, so it gets a Lax one (the launch token carries the iframe then)."""
    settings = write_settings(
        tmp_path,
        lti_env.settings.database_url,
        public_url="https://predict.example.fr",
        app_extra="proxy_count = 1",
    )
    app = create_app(settings)
    app.testing = True
    env = LtiEnv(settings, app, lti_env.engine, lti_env.factory, lti_env.platform)
    env.tool_url = "https://predict.example.fr"
    for forwarded, flags, absent in [
        ("https", ["Secure", "SameSite=None", "Partitioned", "HttpOnly"], []),
        ("http", ["SameSite=Lax", "HttpOnly"], ["Secure", "Partitioned"]),
    ]:
        client = app.test_client()
        client.environ_base["HTTP_X_FORWARDED_PROTO"] = forwarded
        client.environ_base["HTTP_X_FORWARDED_HOST"] = "predict.example.fr"
        result = login(client, env)
        assert result.query["redirect_uri"] == "https://predict.example.fr/lti/launch"
        claims = env.platform.claims("teacher", nonce=result.nonce)
        resp = post_launch(client, env.platform.sign(claims), result.state)
        assert resp.status_code == 303, resp.get_data(as_text=True)
        cookie = next(c for c in resp.headers.getlist("Set-Cookie") if c.startswith("arche_sid="))
        for flag in flags:
            assert flag in cookie, (forwarded, cookie)
        for flag in absent:
            assert flag not in cookie, (forwarded, cookie)

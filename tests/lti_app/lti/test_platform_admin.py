"""Platforms from the command line (#15 C): `lti disable-platform`, `lti remove-platform`
(with confirmation), and neither `lti add-platform --name` nor dynamic registration renames an
existing site or platform without saying so (they keep the name)."""

from __future__ import annotations

from click.testing import CliRunner, Result
from sqlalchemy import select

from lti_app.cli import main
from lti_app.crypto import SecretBox
from lti_app.models import AuditEvent, LtiPlatform, MoodleSite
from lti_app.services.lti_dynreg import issue_code
from lti_app.services.lti_registry import add_platform
from tests.lti_app.lti.env import LtiEnv, launch, login_params, token_of


def _cli(env: LtiEnv, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", env.settings.source, *args])


def _platform(env: LtiEnv, client_id: str) -> tuple[int, str, bool, str]:
    with env.db() as db:
        p = db.scalars(select(LtiPlatform).where(LtiPlatform.client_id == client_id)).one()
        assert p.site is not None
        return p.id, p.name, p.active, p.site.name


def test_add_platform_keeps_the_existing_names_and_says_so(lti_env: LtiEnv) -> None:
    client_id = lti_env.platform.client_id
    result = _cli(
        lti_env, "lti", "add-platform", "--issuer", lti_env.platform.issuer,
        "--client-id", client_id, "--deployment-id", "1", "--name", "Renamed",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "keeps its name 'Test Moodle' (not renamed to 'Renamed')" in result.output
    assert result.output.count("Note: ") == 2  # the platform and the site
    _, name, active, site_name = _platform(lti_env, client_id)
    assert (name, active, site_name) == ("Test Moodle", True, "Test Moodle")


def test_dynamic_registration_keeps_the_site_name(lti_env: LtiEnv) -> None:
    with lti_env.db() as db:
        code = issue_code(db, lti_env.settings.app.secret_key, ttl_seconds=600)
    resp = lti_env.client().get(
        "/lti/register",
        query_string={
            "code": code,
            "openid_configuration": f"{lti_env.platform.issuer}/mod/lti/openid-configuration.php",
            "registration_token": lti_env.platform.registration_token,
        },
    )
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "keeps its name &#39;Test Moodle&#39; (not renamed to &#39;moodle&#39;)" in body
    *_, site_name = _platform(lti_env, "dynamic-client")
    assert site_name == "Test Moodle"


def test_disable_refuses_launches_ends_sessions_and_add_platform_enables_again(
    lti_env: LtiEnv,
) -> None:
    resp = launch(lti_env.client(), lti_env, "teacher")
    # The roster, a teacher's page of the course the launch landed on.
    token, landing = token_of(resp), resp.headers["Location"].split("?")[0] + "/roster"
    assert lti_env.client().get(landing, headers={"X-Launch-Token": token}).status_code == 200
    platform_id, *_ = _platform(lti_env, lti_env.platform.client_id)

    result = _cli(lti_env, "lti", "disable-platform", str(platform_id))

    assert result.exit_code == 0, result.output
    assert f"platform {platform_id} (" in result.output
    assert "disabled;" in result.output
    assert _platform(lti_env, lti_env.platform.client_id)[2] is False
    # The session it had opened is over, and a new login is refused.
    assert lti_env.client().get(landing, headers={"X-Launch-Token": token}).status_code == 401
    refused = lti_env.client().post("/lti/login", data=login_params(lti_env))
    assert refused.status_code in {400, 403}
    again = _cli(lti_env, "lti", "disable-platform", str(platform_id))
    assert "already disabled" in again.output
    with lti_env.db() as db:
        assert db.scalars(
            select(AuditEvent.platform_id).where(AuditEvent.action == "lti.disable_platform")
        ).all() == [platform_id]

    enabled = _cli(
        lti_env, "lti", "add-platform", "--issuer", lti_env.platform.issuer,
        "--client-id", lti_env.platform.client_id, "--deployment-id", "1",
    )  # fmt: skip
    assert enabled.exit_code == 0, enabled.output
    assert launch(lti_env.client(), lti_env, "teacher").status_code == 303


def test_remove_needs_yes_and_keeps_the_site(lti_env: LtiEnv) -> None:
    with lti_env.db() as db:
        p = add_platform(
            db,
            SecretBox.from_settings(lti_env.settings),
            issuer=lti_env.platform.issuer,
            client_id="remove-me",
            deployment_ids=["9"],
        )
        platform_id, site_id = p.id, p.site_id

    unconfirmed = _cli(lti_env, "lti", "remove-platform", str(platform_id))
    assert unconfirmed.exit_code == 1
    lines = unconfirmed.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: this would remove platform")
    assert "1 deployment(s)" in lines[0]
    assert "--yes" in lines[0]
    assert _platform(lti_env, "remove-me")[0] == platform_id

    removed = _cli(lti_env, "lti", "remove-platform", str(platform_id), "--yes")
    assert removed.exit_code == 0, removed.output
    assert removed.output.startswith(f"removed platform {platform_id} (")
    with lti_env.db() as db:
        assert db.get(LtiPlatform, platform_id) is None
        assert db.get(MoodleSite, site_id) is not None
        assert db.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "lti.remove_platform")
        ).all() == ["lti.remove_platform"]

    unknown = _cli(lti_env, "lti", "remove-platform", "99999", "--yes")
    assert unknown.exit_code == 1
    assert unknown.output.startswith("Error: no platform 99999; known: ")
    assert "Traceback" not in unknown.output


def test_list_platforms(lti_env: LtiEnv) -> None:
    result = _cli(lti_env, "lti", "list-platforms")
    assert result.exit_code == 0, result.output
    assert lti_env.platform.client_id in result.output
    assert "active" in result.output

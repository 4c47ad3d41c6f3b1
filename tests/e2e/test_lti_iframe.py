"""Real browser: Debian's chromium, driven by Playwright, launches the tool inside a platform
page's iframe across origins (platform on 127.0.0.1, tool on localhost, different ports).

1. With the browser's default cookie policy, the teacher launch completes in the iframe and the
   session cookie is stored partitioned under the platform's site (CHIPS).
2. With cookies blocked for the tool when it is embedded (Chromium's per-site cookie block,
   the content setting behind "block third-party cookies" exceptions), the launch still
   completes in the iframe, in-frame navigation works through the launch token, and the
   "Open in a new window" fallback opens a working first-party session.
3. A page from an unregistered origin cannot frame the tool (CSP frame-ancestors).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright
from werkzeug.serving import make_server

from tests.conftest import Databases
from tests.lti_app.lti.env import LtiEnv, make_env

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@dataclass
class Stack:
    env: LtiEnv
    tool_origin: str
    platform_origin: str
    tool_port: int
    platform_port: int


@pytest.fixture(scope="module")
def stack(
    backend: str, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it)")
    env = make_env(databases.new_url(backend), tmp_path_factory.mktemp("e2e"))
    server = make_server("127.0.0.1", 0, env.app, threaded=True)
    port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tool_origin = f"http://localhost:{port}"
    env.tool_url = env.platform.tool_url = tool_origin
    env.platform.embed_login_query = urlencode(
        {
            "iss": env.platform.issuer,
            "target_link_uri": f"{tool_origin}/lti/launch",
            "login_hint": "3",
            "lti_message_hint": json.dumps({"cmid": 8, "launchid": "ltilaunch1_368056654"}),
            "client_id": env.platform.client_id,
            "lti_deployment_id": "1",
        }
    )
    try:
        yield Stack(env, tool_origin, env.platform.issuer, port, env.platform.port)
    finally:
        server.shutdown()
        env.close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


def _context(pw: Playwright, tmp: Path, prefs: dict[str, Any] | None = None) -> BrowserContext:
    profile = tmp / "profile"
    (profile / "Default").mkdir(parents=True)
    if prefs:
        (profile / "Default" / "Preferences").write_text(json.dumps(prefs), encoding="utf-8")
    ctx = pw.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=ARGS
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


def _open_course(ctx: BrowserContext, stack: Stack) -> Page:
    page = ctx.new_page()
    page.goto(f"{stack.platform_origin}/course/view.php?id=2")
    return page


def _tool_cookies(ctx: BrowserContext) -> list[dict[str, Any]]:
    return [dict(c) for c in ctx.cookies() if c["name"] == "arche_sid"]


def test_teacher_launch_completes_inside_the_iframe(
    playwright: Playwright, stack: Stack, tmp_path: Path
) -> None:
    ctx = _context(playwright, tmp_path)
    try:
        page = _open_course(ctx, stack)
        frame = page.frame_locator("#contentframe")
        expect(frame.locator("#course-title")).to_have_text("Algorithmique 1")
        expect(frame.locator("#page-role")).to_have_text("teacher")
        # The platform's auth endpoint saw a clean OIDC request (no `repost`).
        assert "repost" not in stack.env.platform.auth_requests[-1]
        cookies = _tool_cookies(ctx)
        assert len(cookies) == 1, cookies
        assert cookies[0]["secure"] is True
        assert cookies[0]["sameSite"] == "None"
        assert cookies[0].get("partitionKey") == "http://127.0.0.1", cookies[0]
        # In-frame navigation.
        frame.locator("#roster-link").click()
        expect(frame.locator("h1")).to_contain_text("Participants of")
        # With the partitioned cookie, even a URL without the launch token works in the frame.
        child = next(f for f in page.frames if f.url.startswith(stack.tool_origin))
        course_path = re.sub(r"/roster.*$", "", child.url.split(stack.tool_origin, 1)[1])
        child.goto(f"{stack.tool_origin}{course_path}")
        expect(frame.locator("#course-title")).to_have_text("Algorithmique 1")
    finally:
        ctx.close()


def test_blocked_third_party_cookies_fall_back_to_token_and_new_window(
    playwright: Playwright, stack: Stack, tmp_path: Path
) -> None:
    pattern = f"{stack.tool_origin},{stack.platform_origin}"
    prefs = {
        "profile": {"content_settings": {"exceptions": {"cookies": {pattern: {"setting": 2}}}}}
    }
    ctx = _context(playwright, tmp_path, prefs)
    try:
        page = _open_course(ctx, stack)
        frame = page.frame_locator("#contentframe")
        expect(frame.locator("#course-title")).to_have_text("Algorithmique 1")
        assert _tool_cookies(ctx) == []  # the browser really kept no cookie for the tool
        # In-frame navigation carries the launch token.
        frame.locator("#roster-link").click()
        expect(frame.locator("h1")).to_contain_text("Participants of")
        # Without the token the frame has no session: the fallback page says what to do.
        child = next(f for f in page.frames if f.url.startswith(stack.tool_origin))
        tokenless = child.url.split("?", 1)[0]
        frame.locator("a", has_text="Back to the course dashboard").click()
        expect(frame.locator("#course-title")).to_have_text("Algorithmique 1")
        # The new-window fallback: a first-party window gets its own cookie session.
        with page.expect_popup() as popup_info:
            frame.locator("#open-new-window").click()
        popup = popup_info.value
        expect(popup.locator("#course-title")).to_have_text("Algorithmique 1")
        assert "lt=" not in popup.url
        assert len(_tool_cookies(ctx)) == 1
        popup.goto(tokenless)
        expect(popup.locator("h1")).to_contain_text("Participants of")
        child.goto(tokenless)
        expect(frame.locator("#fallback-message")).to_contain_text("needs a launch from Moodle")
    finally:
        ctx.close()


def test_unregistered_origin_cannot_frame_the_tool(
    playwright: Playwright, stack: Stack, tmp_path: Path
) -> None:
    target = f"{stack.tool_origin}/lti/jwks"

    class Evil(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            body = f'<iframe id="f" src="{target}"></iframe>'.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    ctx = _context(playwright, tmp_path)
    try:
        page = ctx.new_page()
        with page.expect_response(target) as response_info:
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
        csp = response_info.value.headers["content-security-policy"]
        assert f"frame-ancestors 'self' {stack.platform_origin}" in csp
        page.wait_for_timeout(500)
        framed = [f for f in page.frames if f != page.main_frame]
        assert framed
        assert '"keys"' not in framed[0].content()
        # The registered platform may frame the same URL.
        ok = ctx.new_page()
        ok.goto(f"{stack.platform_origin}/course/view.php?id=2")
        expect(ok.frame_locator("#contentframe").locator("#course-title")).to_be_visible()
    finally:
        ctx.close()
        evil.shutdown()


def test_dynamic_registration_from_an_unknown_moodle_completes_in_its_frame(
    playwright: Playwright, stack: Stack, tmp_path: Path
) -> None:
    """A Moodle the tool does not know yet frames the registration page (Moodle's "Manage
    tools" panel): the page is allowed to be framed by that origin, so the panel shows the
    result instead of "refused to connect" (#15 D)."""
    from lti_app.services.lti_dynreg import issue_code
    from tests.lti_app.lti.lti_platform import Platform

    unknown = Platform()
    try:
        with stack.env.db() as db:
            code = issue_code(db, stack.env.settings.app.secret_key, ttl_seconds=600)
        query = urlencode(
            {
                "code": code,
                "openid_configuration": f"{unknown.issuer}/mod/lti/openid-configuration.php",
                "registration_token": unknown.registration_token,
            }
        )
        target = f"{stack.tool_origin}/lti/register?{query}"
        unknown.registration_frame_src = target
        ctx = _context(playwright, tmp_path)
        try:
            page = ctx.new_page()
            with page.expect_response(lambda r: r.url.startswith(target.split("?")[0])) as info:
                page.goto(f"{unknown.issuer}/mod/lti/toolconfigure.php")
            csp = info.value.headers["content-security-policy"]
            assert unknown.issuer in csp.split("frame-ancestors", 1)[1]
            frame = page.frame_locator("#registration-frame")
            expect(frame.locator("#registered")).to_have_text("arche-predict is registered")
            assert unknown.registrations, "the platform never received the tool's configuration"
        finally:
            ctx.close()
    finally:
        unknown.close()

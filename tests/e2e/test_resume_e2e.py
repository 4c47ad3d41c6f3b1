"""Real browser: a launch token in a link cannot sign someone into another person's session.

Issue #11, point 8: `/lti/resume?lt=…` used to set the visitor's cookie to the token's session,
so a link (or a cross-site form) could log a victim into the sender's session. In Debian's
chromium: opening such a link shows a confirmation naming whose session it is and sets no
cookie; a cross-site page posting the confirmation (with the sender's own CSRF token) is
refused; only the visitor's own click on the tool's page continues.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Playwright, Route, expect

from tests.e2e.test_lti_iframe import (  # noqa: F401 - fixtures used by name
    Stack,
    _context,
    _tool_cookies,
    playwright,
    stack,
)
from tests.lti_app.lti.env import launch, token_of

EVIL = "http://evil.example"


def test_a_resume_link_from_elsewhere_needs_the_visitors_own_click(
    playwright: Playwright,  # noqa: F811
    stack: Stack,  # noqa: F811
    tmp_path: Path,
) -> None:
    # The sender launches as themself (their own Moodle account) and copies their token (the
    # launch goes through the app directly, whose host is then plain "localhost").
    sender = stack.env.client()
    resp = launch(
        sender,
        stack.env,
        "student",
        login_overrides={"target_link_uri": "http://localhost/lti/launch"},
        sub="7770",
        name="Mallory Sender",
    )
    token = token_of(resp)
    link = f"{stack.tool_origin}/lti/resume?lt={token}"
    ctx = _context(playwright, tmp_path)
    try:
        page = ctx.new_page()
        page.goto(link)  # typed or pasted: Sec-Fetch-Site "none"
        expect(page.locator("#resume-who")).to_contain_text("Mallory Sender")
        assert _tool_cookies(ctx) == []
        csrf = page.locator("input[name=csrf_token]").get_attribute("value")
        assert csrf

        # A page of another site posting the confirmation with the sender's CSRF token.
        form = (
            f'<form id="f" method="post" action="{stack.tool_origin}/lti/resume">'
            f'<input name="lt" value="{token}"><input name="csrf_token" value="{csrf}">'
            "</form><script>document.getElementById('f').submit()</script>"
        )

        def evil(route: Route) -> None:
            route.fulfill(status=200, content_type="text/html", body=form)

        ctx.route(f"{EVIL}/**", evil)
        attacked = ctx.new_page()
        with attacked.expect_navigation(url=f"{stack.tool_origin}/lti/resume"):
            attacked.goto(f"{EVIL}/win-a-prize")
        expect(attacked.locator("#error-message")).to_contain_text("came from another site")
        assert _tool_cookies(ctx) == []

        # The visitor's own click on the tool's confirmation page is what continues.
        page.locator("#resume-continue").click()
        page.wait_for_url(f"{stack.tool_origin}/course/*/me")
        assert len(_tool_cookies(ctx)) == 1
    finally:
        ctx.close()

"""Issue #18's learner-facing acceptance in a real browser (Debian chromium through
Playwright), inside the platform's iframe under the tool's real CSP: a learner reads "How this
works — your data" from their page, opts out (their page then says so and shows no estimate),
and opts back in (the estimate returns at the next scoring; the page says the data is used).
axe-core finds no serious or critical violation on the data page. Screenshots go to
test-artifacts/my-data-*.png.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, Playwright, expect

from tests.e2e.test_dashboards_e2e import (  # noqa: F401 - pytest fixtures
    ARTIFACTS,
    Scored,
    _axe,
    _launch,
    browser,
    playwright,
    scored,
)


def test_a_learner_reads_about_their_data_and_opts_out_then_in(
    browser: BrowserContext,  # noqa: F811
    scored: Scored,  # noqa: F811
    playwright: Playwright,  # noqa: F811
    tmp_path: Path,
) -> None:
    page, frame = _launch(
        browser, scored, "student", sub=scored.learner_sub, name=scored.learner_name
    )
    expect(frame.locator("#estimate")).to_be_visible()
    frame.locator("#my-data-link").click()
    expect(frame.locator("#my-data-title")).to_be_visible()
    for section in ("#what-title", "#data-title", "#who-title", "#keep-title", "#rights-title"):
        expect(frame.locator(section)).to_be_visible()
    assert _axe(playwright, frame.url, tmp_path) == []
    page.screenshot(path=str(ARTIFACTS / "my-data-1-page.png"), full_page=True)

    frame.locator("#opt-out").click()
    expect(frame.locator("#choice-message")).to_have_attribute("data-choice", "out")
    expect(frame.locator("#choice-state")).to_have_attribute("data-used", "0")
    expect(frame.locator("#opt-in")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "my-data-2-opted-out.png"), full_page=True)
    frame.get_by_role("link", name="Back to my page").click()
    expect(frame.locator("#opted-out")).to_be_visible()
    expect(frame.locator("#estimate")).to_have_count(0)

    frame.locator("#my-data-link").click()
    frame.locator("#opt-in").click()
    expect(frame.locator("#choice-message")).to_have_attribute("data-choice", "in")
    expect(frame.locator("#choice-state")).to_have_attribute("data-used", "1")
    assert page.console_errors == []  # type: ignore[attr-defined]

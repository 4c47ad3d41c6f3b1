"""The dashboards in a real browser (Debian chromium through Playwright), inside the platform's
iframe and under the tool's real CSP (`script-src 'self'`, no eval).

A scored simulated course sits behind real LTI launches: the teacher's dashboard draws its
charts (the marks and the data behind them are checked), the at-risk table sorts, a student's
what-if slider moves the estimate, a learner sees only their own estimate and is refused the
teacher's pages, a French launch speaks French, and axe-core finds no serious or critical
accessibility violation. Screenshots of each page go to test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Frame, Page, Playwright, expect, sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

from lti_app.models import Course, MoodleSite
from tests.conftest import Databases
from tests.e2e.test_lti_iframe import ARGS, CHROMIUM, TIMEOUT_MS
from tests.lti_app.lti.env import LtiEnv, launch, make_env
from tests.lti_app.lti.scored_course import score_course_2

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
RENDER_MS = 30_000


@dataclass
class Scored:
    env: LtiEnv
    tool_origin: str
    platform_origin: str
    course_id: int
    learner_sub: str
    learner_name: str
    learner_id: int
    other_id: int
    names: list[str]
    n_students: int


@contextmanager
def served_env(
    backend: str, databases: Databases, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[tuple[LtiEnv, str]]:
    """The tool over real HTTP (its origin returned) behind the test platform, after a first
    teacher launch (Flask's test client) that links Moodle course 2: what every browser test
    starts from."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does it)")
    env = make_env(databases.new_url(backend), tmp_path_factory.mktemp(name))
    launch(env.client(), env, "teacher")
    server = make_server("127.0.0.1", 0, env.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    tool_origin = f"http://localhost:{server.server_port}"
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
        yield env, tool_origin
    finally:
        server.shutdown()
        env.close()


@contextmanager
def scored_env(
    backend: str, databases: Databases, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[Scored]:
    """A served tool whose course 2 the simulated offering fills and scores before the browser
    comes."""
    with served_env(backend, databases, tmp_path_factory, name) as (env, tool_origin):
        course = score_course_2(env)
        learner, other = course.students[0], course.students[1]
        yield Scored(
            env=env,
            tool_origin=tool_origin,
            platform_origin=env.platform.issuer,
            course_id=course.course_id,
            learner_sub=str(learner.moodle_user_id),
            learner_name=learner.fullname,
            learner_id=learner.person_id,
            other_id=other.person_id,
            names=[st.fullname for st in course.students],
            n_students=len(course.students),
        )


@pytest.fixture(scope="module")
def scored(
    backend: str, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scored]:
    with scored_env(backend, databases, tmp_path_factory, "e2e-dash") as course:
        yield course


@pytest.fixture
def synced(
    backend: str, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scored]:
    """A course of its own for "Sync now": its sync against the Moodle stub replaces the
    roster (the simulated students' web-service enrolments go inactive), which the other
    tests' course must not see (a student's page then answered 403 to the teacher)."""
    with scored_env(backend, databases, tmp_path_factory, "e2e-sync") as course:
        yield course


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def browser(playwright: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    profile = tmp_path / "profile"
    profile.mkdir()
    ctx = playwright.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=ARGS,
        viewport={"width": 1280, "height": 900},
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


def _launch(ctx: BrowserContext, scored: Scored, kind: str, **claims: Any) -> tuple[Page, Frame]:
    """Open the platform's course page; the iframe runs the real OIDC login and launch."""
    scored.env.platform.auth_claims_kind = kind
    scored.env.platform.auth_overrides = dict(claims)
    page = ctx.new_page()
    errors: list[str] = []
    warnings: list[str] = []
    # Errors and warnings of the tool's pages only (the stub platform has no favicon, for one).
    page.on(
        "console",
        lambda m: (
            (errors if m.type == "error" else warnings).append(
                f"{m.text} @ {m.location.get('url')}"
            )
            if m.type in ("error", "warning")
            and str(m.location.get("url", "")).startswith(scored.tool_origin)
            else None
        ),
    )
    page.goto(f"{scored.platform_origin}/course/view.php?id=2")
    expect(page.frame_locator("#contentframe").locator("#course-title")).to_be_visible()
    frame = next(f for f in page.frames if f.url.startswith(scored.tool_origin))
    page.console_errors = errors  # type: ignore[attr-defined]
    page.console_warnings = warnings  # type: ignore[attr-defined]
    return page, frame


def _wait_charts(frame: Frame, count: int) -> None:
    frame.wait_for_function(
        "n => document.querySelectorAll('[data-rendered=\"1\"]').length >= n",
        arg=count,
        timeout=RENDER_MS,
    )
    assert frame.locator("[data-rendered=error]").count() == 0


def _chart_rows(frame: Frame, chart_id: str) -> list[dict[str, Any]]:
    """Every data row of a rendered chart, read from its Vega view (what the marks are drawn
    from)."""
    rows: list[dict[str, Any]] = frame.evaluate(
        """id => {
            const view = document.getElementById(id).vegaView;
            const state = view.getState({data: () => true, signals: () => false, recurse: true});
            const out = [];
            const walk = (d) => { for (const k in d) { if (Array.isArray(d[k])) out.push(...d[k]);
                                    else if (d[k] && typeof d[k] === 'object') walk(d[k]); } };
            walk(state.data || {});
            return out.map(r => Object.fromEntries(Object.entries(r).filter(
                ([, v]) => typeof v !== 'object')));
        }""",
        chart_id,
    )
    return rows


def _screenshot(ctx: BrowserContext, frame: Frame, name: str) -> None:
    """The framed page at full length, in its own tab (the launch token carries the session)."""
    ARTIFACTS.mkdir(exist_ok=True)
    tab = ctx.new_page()
    tab.goto(frame.url)
    tab.wait_for_function(
        "() => [...document.querySelectorAll('[data-vega-spec]')].every("
        "e => e.getAttribute('data-rendered'))",
        timeout=RENDER_MS,
    )
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    tab.close()


def _axe(
    playwright: Playwright,
    url: str,
    tmp: Path,
    then: Callable[[Page], None] | None = None,
) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of a page, reached by `url` (the launch token
    carries the session) and then `then` (forms posted, for the pages a POST answers), in its
    own browser context where the CSP is bypassed only so that axe itself can be injected."""
    profile = tmp / f"axe-profile-{len(list(tmp.glob('axe-profile-*')))}"
    profile.mkdir()
    ctx = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=ARGS, bypass_csp=True
    )
    try:
        page = ctx.new_page()
        page.goto(url)
        if then is not None:
            then(page)
        page.wait_for_function(
            "() => [...document.querySelectorAll('[data-vega-spec]')].every("
            "e => e.getAttribute('data-rendered'))",
            timeout=RENDER_MS,
        )
        page.add_script_tag(path=str(AXE))
        result: dict[str, Any] = page.evaluate(
            "async () => await axe.run(document, {resultTypes: ['violations']})"
        )
    finally:
        ctx.close()
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"][:3]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


# --------------------------------------------------------------------------- teacher


def test_teacher_dashboard_draws_its_charts_and_sorts(
    browser: BrowserContext, scored: Scored, playwright: Playwright, tmp_path: Path
) -> None:
    page, frame = _launch(browser, scored, "teacher")
    _wait_charts(frame, 4)
    # Grades chart: one dot per student, drawn from the predicted grades of the table.
    dots = frame.locator("#chart-grades .mark-symbol path")
    expect(dots).to_have_count(scored.n_students)
    rows = [r for r in _chart_rows(frame, "chart-grades") if "grade" in r]
    table_grades = sorted(
        float(v)
        for v in frame.locator("#risk-table tbody td.grade").evaluate_all(
            "cells => cells.map(c => c.getAttribute('data-value'))"
        )
    )
    assert sorted(r["grade"] for r in rows) == pytest.approx(table_grades)
    # Engagement: the median line has one point per week, between the quartiles.
    weeks = [r for r in _chart_rows(frame, "chart-engagement") if "median" in r]
    assert len(weeks) >= 3
    assert frame.locator("#chart-engagement .mark-area path").count() >= 1
    assert frame.locator("#chart-importance .mark-rect path").count() >= 3
    assert frame.locator("#chart-calibration .mark-line path").count() >= 1
    # Highest risk first by default (#16): the pass chance (column 3, after the selection
    # box, the name and the grade) ascending; a click reverses it, another restores it.
    header = frame.locator("#risk-table th button.sort", has_text="Chance of passing")
    values = _column(frame, 3)
    assert values == sorted(values)
    assert len(values) == scored.n_students
    expect(frame.locator("#risk-table th[aria-sort=ascending]")).to_have_count(1)
    header.click()
    assert _column(frame, 3) == sorted(values, reverse=True)
    expect(frame.locator("#risk-table th[aria-sort=descending]")).to_have_count(1)
    header.click()
    assert _column(frame, 3) == sorted(values)
    # Filtering.
    frame.locator("#risk-filter").fill(scored.learner_name[:6].lower())
    visible = frame.locator("#risk-table tbody tr:not([hidden])")
    assert 1 <= visible.count() < scored.n_students
    frame.locator("#risk-filter").fill("")
    if frame.locator("#risk-only").count():
        frame.locator("#risk-only").check()
        risky = frame.locator("#risk-table tbody tr:not([hidden])").count()
        assert risky == frame.locator("#risk-table tbody tr[data-risk='1']").count()
        frame.locator("#risk-only").uncheck()
    assert page.console_errors == []  # type: ignore[attr-defined]
    # Vega's "Domains that should be unioned has conflicting sort properties" (the importance
    # chart's two layers once sorted its features by different fields).
    vega = [w for w in page.console_warnings if "WARN" in w]  # type: ignore[attr-defined]
    assert vega == []
    _screenshot(browser, frame, "teacher-dashboard")
    violations = _axe(playwright, frame.url, tmp_path)
    assert violations == [], violations


def _column(frame: Frame, index: int) -> list[float]:
    values: list[str] = frame.locator(
        f"#risk-table tbody tr td:nth-child({index + 1})"
    ).evaluate_all("cells => cells.map(c => c.getAttribute('data-value'))")
    return [float(v) for v in values]


def test_student_page_what_if_slider_moves_the_estimate(
    browser: BrowserContext, scored: Scored
) -> None:
    _, frame = _launch(browser, scored, "teacher")
    frame.locator("#risk-filter").fill(scored.learner_name.lower())  # the table is paged
    frame.locator("#risk-table a.student-link", has_text=scored.learner_name).click()
    expect(frame.locator("#person-name")).to_have_text(scored.learner_name)
    frame = next(f for f in frame.page.frames if "/learners/" in f.url)
    expect(frame.locator("#what-if")).to_be_visible()
    _wait_charts(frame, 3)
    assert frame.locator("#chart-weekly .mark-rect path").count() >= 3
    # The history's date axis reads days ("2026-12-03"), never milliseconds (".801").
    frame.wait_for_selector("#chart-history svg")
    labels = frame.locator("#chart-history .role-axis-label text").all_text_contents()
    dates = [label for label in labels if not label.endswith("%")]  # the y axis's are chances
    assert dates
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in dates), dates
    before = frame.locator("#wi-probability").get_attribute("data-value")
    slider = frame.locator("#wi-active_days")
    slider.focus()
    slider.press("End")  # keyboard only: the maximum number of active days
    expect(frame.locator("#wi-probability")).not_to_have_attribute("data-value", before or "")
    after = float(frame.locator("#wi-probability").get_attribute("data-value") or "nan")
    assert before is not None
    assert after > float(before)
    expect(frame.locator("#wi-error")).to_be_hidden()
    _screenshot(browser, frame, "teacher-student-page")


# --------------------------------------------------------------------------- learner


def test_learner_sees_only_their_own_estimate(
    browser: BrowserContext, scored: Scored, playwright: Playwright, tmp_path: Path
) -> None:
    page, frame = _launch(
        browser, scored, "student", sub=scored.learner_sub, name=scored.learner_name
    )
    expect(frame.locator("#person-name")).to_have_text(scored.learner_name)
    expect(frame.locator("#estimate")).to_contain_text("not a verdict")
    _wait_charts(frame, 1)
    body = frame.locator("body").inner_text()
    for name in scored.names:
        if name != scored.learner_name:
            assert name not in body
    assert page.console_errors == []  # type: ignore[attr-defined]
    # The teacher's dashboard and another learner's record answer 403 to this session.
    status = frame.evaluate(
        """async ([dash, other]) => {
            const lt = new URLSearchParams(location.search).get('lt');
            const h = {'X-Launch-Token': lt, 'Accept': 'application/json'};
            const a = await fetch(dash + '?lt=' + encodeURIComponent(lt));
            const b = await fetch(other, {headers: h});
            return [a.status, b.status];
        }""",
        [
            f"/course/{scored.course_id}",
            f"/api/v1/courses/{scored.course_id}/students/{scored.other_id}",
        ],
    )
    assert status == [403, 403]
    _screenshot(browser, frame, "learner-view")
    violations = _axe(playwright, frame.url, tmp_path)
    assert violations == [], violations


def test_french_launch_speaks_french(browser: BrowserContext, scored: Scored) -> None:
    _, frame = _launch(browser, scored, "teacher_fr")
    expect(frame.locator("html")).to_have_attribute("lang", "fr")
    expect(frame.locator("h2#risk-title")).to_contain_text("Étudiants")
    expect(frame.locator("#risk-table thead")).to_contain_text("Chance de réussite")
    _wait_charts(frame, 4)
    _screenshot(browser, frame, "teacher-dashboard-fr")


# --------------------------------------------------------------------------- admin

SYS_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"


def test_admin_page(
    browser: BrowserContext, scored: Scored, playwright: Playwright, tmp_path: Path
) -> None:
    _, frame = _launch(
        browser,
        scored,
        "student",
        sub="2",
        name="Ada Admin",
        **{"https://purl.imsglobal.org/spec/lti/claim/roles": [SYS_ADMIN]},
    )
    token = parse_qs(urlsplit(frame.url).query)["lt"][0]
    frame.goto(f"{scored.tool_origin}/admin?lt={token}")
    expect(frame.locator("#admin-title")).to_be_visible()
    expect(frame.locator("#model-versions tbody tr")).to_have_count(2)
    expect(frame.locator("#jobs")).to_contain_text("nightly-sync")
    _screenshot(browser, frame, "admin")
    violations = _axe(playwright, frame.url, tmp_path)
    assert violations == [], violations


# --------------------------------------------------------------------------- sync now (last:
# it syncs the recorded Moodle roster into the course, which changes what earlier tests see)


def test_sync_now_shows_progress_then_completes(browser: BrowserContext, synced: Scored) -> None:
    from lti_app.crypto import SecretBox
    from lti_app.models import SyncRun
    from lti_app.services import sync_requests
    from lti_app.tasks import run_course_sync
    from tests.moodle_stub import TOKEN, MoodleStub

    env = synced.env
    moodle = MoodleStub().start()
    stop = threading.Event()

    def scheduler() -> None:
        """The scheduler's "Sync now" loop (sync part), polling like `arche-predict scheduler`."""
        while not stop.wait(0.3):
            with env.db() as db:
                req = sync_requests.claim_next(db, "e2e-scheduler")
                if req is None:
                    continue
                request_id, course_id = req.id, req.course_id
            try:
                run_course_sync(env.settings, env.factory, course_id, request_id=request_id)
            finally:
                with env.db() as db:
                    sync_requests.finish(db, request_id)

    worker = threading.Thread(target=scheduler, daemon=True)
    try:
        with env.db() as db:
            site = db.get_one(MoodleSite, db.get_one(Course, synced.course_id).site_id)
            site.base_url = moodle.url  # the course's Moodle now answers web services
            site.ws_token_encrypted = SecretBox.from_settings(env.settings).encrypt(TOKEN)
        worker.start()
        _, frame = _launch(browser, synced, "teacher")
        status = frame.locator("#sync-progress-text")
        frame.locator("#sync-now").click()
        expect(frame.locator("#sync-now")).to_be_disabled()
        expect(frame.locator("#sync-progress")).to_be_visible()
        expect(status).to_contain_text(re.compile(r"Sync finished: \d+ new events"), timeout=60_000)
        shown = status.text_content() or ""  # read now: the page reloads 1.5 s later
        assert frame.locator("#sync-progress").evaluate("el => el.value") == 1
        with env.db() as db:
            run = db.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
            assert run is not None
            assert (run.trigger, run.status) == ("manual", "succeeded")
            assert f"Sync finished: {run.events_added} new events" in shown
        # Then the page reloads with the new sync time in its header.
        expect(frame.locator("#sync-status")).to_contain_text("succeeded", timeout=30_000)
    finally:
        stop.set()
        worker.join(timeout=30)
        moodle.stop()


# --------------------------------------------------------------------------- every number shown

_BOUND = re.compile(r"(?<![\d,.])(0|100)\s?%")


def _shown_pairs(frame: Frame, scope: str) -> list[tuple[str, str]]:
    """Each (chance, its range) as the page's text shows them, within `scope`."""
    pairs: list[list[str]] = frame.locator(scope).evaluate_all(
        """els => els.map(e => [e.querySelector('.chance').innerText,
                                 e.querySelector('.chance-range').innerText])"""
    )
    return [(a.replace("\xa0", " ").replace("\u202f", " "), b.replace("\xa0", " ")
             .replace("\u202f", " ").strip("()")) for a, b in pairs]  # fmt: skip


def _check_pairs(pairs: list[tuple[str, str]]) -> None:
    from tests.lti_app.test_chance_words import range_bounds, value_bounds

    assert pairs
    for value, span in pairs:
        assert not _BOUND.search(value), value
        assert not _BOUND.search(span), span
        assert "±" not in span
        v_low, v_high = value_bounds(value)
        r_low, r_high = range_bounds(span)
        assert max(v_low, r_low) <= min(v_high, r_high), (value, span)


def test_every_chance_shown_is_coherent(browser: BrowserContext, scored: Scored) -> None:
    """Issue #14, acceptance 3: the numbers a teacher and a learner read, as displayed: no
    "0 %" or "100 %" anywhere, every chance inside the range shown beside it, the at-risk rows
    exactly those under the stated threshold, and the grade inside its range."""
    _, frame = _launch(browser, scored, "teacher")
    _wait_charts(frame, 2)
    # The estimates and what is said of them (chart axes and the observed rates of the model
    # card's tables are not chances).
    for scope in ("#risk-table", "#quality", "#course-rules"):
        text = frame.locator(scope).inner_text().replace("\xa0", " ").replace("\u202f", " ")
        assert not _BOUND.search(text), (scope, text)
    _check_pairs(_shown_pairs(frame, "#risk-table tbody td.proba"))
    threshold = float(frame.locator("#course-rules").get_attribute("data-risk-threshold") or "")
    rows: list[list[str]] = frame.locator("#risk-table tbody tr").evaluate_all(
        """rows => rows.map(r => [r.getAttribute('data-risk'),
                                  r.querySelector('td.proba').getAttribute('data-value')])"""
    )
    assert rows
    for risk, p in rows:
        assert (risk == "1") == (float(p) < threshold), (risk, p, threshold)
    grades: list[str] = frame.locator("#risk-table tbody td.grade").evaluate_all(
        "cells => cells.map(c => c.innerText)"
    )
    for text in grades:
        g, low, high = (float(n.replace(",", ".")) for n in re.findall(r"\d+(?:[.,]\d+)?", text))
        assert low <= g <= high, text
    # What a reader compares: each row's shown chance against the threshold the page states,
    # and its shown grade against the pass mark, at 50 %.
    from tests.lti_app.test_chance_words import check_shown_estimate, shown_number

    stated = shown_number(frame.locator("#risk-rule").inner_text().replace("\xa0", " "))
    # The mark the shown estimates were made for (the one in force until a mark change's
    # next scoring).
    mark = float(frame.locator("#course-rules").get_attribute("data-estimates-mark") or "")
    row_texts: list[list[str]] = frame.locator("#risk-table tbody tr").evaluate_all(
        """rows => rows.map(r => [r.getAttribute('data-risk'),
                                  r.querySelector('td.grade').innerText.split('(')[0],
                                  r.querySelector('.chance').innerText])"""
    )
    for risk, grade, chance in row_texts:
        chance = chance.replace("\xa0", " ").replace("\u202f", " ")
        check_shown_estimate(grade, chance, risk == "1", mark, stated)

    # The teacher's page of one student, then the what-if pushed to its maximum.
    frame.locator("#risk-filter").fill(scored.learner_name.lower())  # the table is paged
    frame.locator("#risk-table a.student-link", has_text=scored.learner_name).click()
    expect(frame.locator("#person-name")).to_have_text(scored.learner_name)
    frame = next(f for f in frame.page.frames if "/learners/" in f.url)
    _check_pairs(_shown_pairs(frame, "#estimate p:has(.chance)"))
    for feature in ("active_days", "total_time_min"):
        slider = frame.locator(f"#wi-{feature}")
        if slider.count():
            before = frame.locator("#wi-probability").get_attribute("data-value")
            slider.focus()
            slider.press("End")
            expect(frame.locator("#wi-probability")).not_to_have_attribute(
                "data-value", before or ""
            )
    shown = frame.locator("#wi-probability").inner_text().replace("\xa0", " ")
    span = frame.locator("#wi-ci").inner_text().replace("\xa0", " ")
    _check_pairs([(shown.replace("\u202f", " "), span.replace("\u202f", " "))])

    # The learner's own view.
    _, frame = _launch(browser, scored, "student", sub=scored.learner_sub, name=scored.learner_name)
    _check_pairs(_shown_pairs(frame, "#chance-sentence"))
    learner_text = frame.locator("#estimate").inner_text()
    assert not _BOUND.search(learner_text.replace("\xa0", " ").replace("\u202f", " "))

"""Issue #17, item 1's acceptance in a real browser (Debian chromium through Playwright), inside
the platform's iframe under the tool's real CSP: from a first launch to the first estimates
without an administrator.

The course behind the launches (Moodle course 2) has no link and no data. Its site is a
simulated Moodle over HTTP (lti_app/demo/moodle.py, the recorded 5.1 shapes) holding three past
offerings with final grades and course 2 running; the launching teacher (Moodle user 3) taught
course 2 and the two most recent past offerings, not the oldest. The teacher:

1. opens the dashboard, which says "engagement only / no estimate yet" and offers the link;
2. sees exactly the two offerings they taught (the oldest is not proposed), ticks both, links;
3. watches the dashboard's progress bar while the scheduler's "Sync now" job runs the backfill
   (each past offering, then the course, then the scoring), and the page reloads on its own;
4. reads estimates: a pass chance for every student of the course.

axe-core finds no serious or critical violation on the past-offerings page. Screenshots go to
test-artifacts/past-offerings-*.png.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Playwright, expect
from sqlalchemy import select

from lti_app.crypto import SecretBox
from lti_app.demo.moodle import SimulatedMoodle
from lti_app.models import Course, CourseLineage, MoodleSite, Prediction, SyncRun
from lti_app.scheduler import JobContext, default_jobs, nightly_slot, run_job
from simulation.course import simulate_course
from tests.conftest import Databases
from tests.e2e.test_dashboards_e2e import (  # noqa: F401 - pytest fixtures
    ARTIFACTS,
    Scored,
    _axe,
    _launch,
    browser,
    playwright,
    served_env,
)
from tests.lti_app.lti.env import LtiEnv
from tests.lti_app.lti.scored_course import FAST, as_course_2

TEACHER_UID = 3  # the recorded teacher launch's `sub`
BACKFILL_MS = 240_000  # three syncs and a training on 2 cores, with room to spare


@dataclass
class Fresh:
    scored: Scored  # the launch helpers' view of the env (no scoring was done)
    env: LtiEnv
    moodle: SimulatedMoodle
    course_id: int
    taught: list[int]  # Moodle ids of the past offerings the teacher taught, newest first
    not_taught: int
    n_students: int


@pytest.fixture(scope="module")
def fresh(
    backend: str, databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fresh]:
    simulated = as_course_2(simulate_course(n_past=3, n_students=30, seed=21, current_progress=0.5))
    past = [o.courseid for o in simulated.past]
    taught = past[1:]
    moodle = SimulatedMoodle(simulated, also_taught={TEACHER_UID: [*taught, 2]})
    moodle_url = moodle.start()
    with served_env(backend, databases, tmp_path_factory, "e2e-links") as (env, tool_origin):
        with env.db() as db:
            course = db.scalar(select(Course).where(Course.moodle_course_id == 2))
            assert course is not None
            site = db.get_one(MoodleSite, course.site_id)
            site.base_url = moodle_url
            site.ws_token_encrypted = SecretBox.from_settings(env.settings).encrypt(moodle.token)
            course_id = course.id
            db.commit()
        current = simulated.current
        assert current is not None
        try:
            yield Fresh(
                scored=Scored(
                    env=env,
                    tool_origin=tool_origin,
                    platform_origin=env.platform.issuer,
                    course_id=course_id,
                    learner_sub="",
                    learner_name="",
                    learner_id=0,
                    other_id=0,
                    names=[],
                    n_students=0,
                ),
                env=env,
                moodle=moodle,
                course_id=course_id,
                taught=sorted(taught, reverse=True),
                not_taught=past[0],
                n_students=len(current.roster),
            )
        finally:
            moodle.stop()


def _run_scheduler(fresh: Fresh, done: threading.Event, failures: list[str]) -> None:
    """The scheduler process's "Sync now" job, as it polls: it claims the backfill the page
    asked for and runs it (fast ML settings, as the other browser tests score)."""
    job = next(j for j in default_jobs() if j.name == "sync-requests")
    settings = fresh.env.settings.model_copy(update={"ml": FAST})
    try:
        while not done.is_set():
            report = run_job(
                job, JobContext(settings, fresh.env.factory, "e2e", nightly_slot(settings))
            )
            failures.extend(report.failed.values())
            done.wait(0.5)
    except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
        failures.append(repr(exc))


def test_first_launch_to_first_estimates(
    fresh: Fresh,
    browser: BrowserContext,  # noqa: F811
    playwright: Playwright,  # noqa: F811
    tmp_path: Path,
) -> None:
    page, frame = _launch(browser, fresh.scored, "teacher")
    state = frame.locator("#state-message")
    expect(state).to_be_visible()
    assert state.get_attribute("data-state") in ("no_data", "engagement_only")
    page.screenshot(path=str(ARTIFACTS / "past-offerings-1-first-launch.png"), full_page=True)
    frame.locator("#link-offerings").click()

    frame.wait_for_selector("#candidates")
    rows = frame.locator("#candidates tbody tr")
    listed = [int(rows.nth(i).get_attribute("data-moodle-id") or 0) for i in range(rows.count())]
    assert listed == fresh.taught  # the two offerings taught, newest first; not the oldest
    assert fresh.not_taught not in listed
    assert _axe(playwright, frame.url, tmp_path) == []
    page.screenshot(path=str(ARTIFACTS / "past-offerings-2-candidates.png"), full_page=True)
    for moodle_id in fresh.taught:
        frame.locator(f"#past-{moodle_id}").check()

    done = threading.Event()
    failures: list[str] = []
    scheduler = threading.Thread(target=_run_scheduler, args=(fresh, done, failures), daemon=True)
    scheduler.start()
    try:
        frame.locator("#link-submit").click()
        expect(frame.locator("#links-message")).to_be_visible()
        # The dashboard follows the backfill at once: the bar moves, then the page reloads.
        expect(frame.locator("#sync-progress")).to_be_visible()
        expect(frame.locator("#link-offerings")).to_have_count(0)  # linked: no second call
        page.screenshot(path=str(ARTIFACTS / "past-offerings-3-backfill.png"), full_page=True)
        expect(frame.locator("#state-message")).to_have_count(0, timeout=BACKFILL_MS)
    finally:
        done.set()
        scheduler.join(timeout=60)
    assert failures == []
    expect(frame.locator("#links-message")).to_have_count(0)  # pulled: nothing "being pulled"
    rows = frame.locator("#risk-table tbody tr")
    assert rows.count() == fresh.n_students
    chances = frame.locator("#risk-table tbody tr td.proba .chance")
    assert chances.count() == fresh.n_students
    assert all(re.search(r"\d", chances.nth(i).inner_text()) for i in range(chances.count()))
    page.screenshot(path=str(ARTIFACTS / "past-offerings-4-estimates.png"), full_page=True)

    with fresh.env.db() as db:
        links = db.execute(
            select(Course.moodle_course_id, CourseLineage.status)
            .join(CourseLineage, CourseLineage.past_course_id == Course.id)
            .where(CourseLineage.course_id == fresh.course_id)
        ).all()
        assert sorted(tuple(r) for r in links) == sorted((m, "active") for m in fresh.taught)
        triggers = db.scalars(select(SyncRun.trigger).order_by(SyncRun.id)).all()
        assert triggers == ["backfill"] * 3
        shown = db.scalars(
            select(Prediction.person_id).where(Prediction.course_id == fresh.course_id)
        ).all()
        assert len(set(shown)) == fresh.n_students

"""Issue #16's acceptance in a real browser (Debian chromium through Playwright), inside the
platform's iframe and under the tool's real CSP: a teacher acts on the at-risk list.

The scored simulated course of the dashboard tests sits behind real LTI launches, its Moodle
site pointed at the stateful Moodle stub over HTTP (tests/moodle_stub.py), so every message,
note and group the pages make can be read back from "Moodle":

1. select everyone at risk → compose → preview (one per student, their first name) → send →
   one result per recipient on the page (one refused with Moodle's reason), one message per
   other recipient in the stub, the contact log, then the dashboard's "contacted …" cells and
   its "Not yet contacted" filter;
2. a status and a note saved on a student's follow-up page, mirrored as a Moodle course note;
3. the Moodle group of the at-risk students created, the groups read back, the table filtered
   by that group;
4. the weekly summary turned on, then produced by its scheduler job: one message to the
   teacher's Moodle account, none on the next run.

axe-core finds no serious or critical violation on the contact, results and follow-up pages.
Screenshots of each step go to test-artifacts/teacher-actions-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Frame, Page, Playwright, expect
from sqlalchemy import select

from lti_app.crypto import SecretBox
from lti_app.models import Course, LtiSession, MoodleSite, Person
from lti_app.scheduler import JobContext, default_jobs, nightly_slot, run_job
from lti_app.services import contacts, watch
from lti_app.services.course_data import student_roster
from lti_app.services.course_settings import risk_threshold_of
from tests.e2e.test_dashboards_e2e import (  # noqa: F401 - pytest fixtures
    ARTIFACTS,
    AXE,
    RENDER_MS,
    Scored,
    _axe,
    _launch,
    browser,
    playwright,
    scored,
)
from tests.moodle_stub import TOKEN, MoodleStub, fixture

# Moodle's words when a student's preferences refuse the message (recorded from Moodle 5.1).
REFUSAL = fixture("core_message_send_instant_messages__usercantbemessaged.json")[0]["errormessage"]
VISIBLE_ROWS = "#risk-table tbody tr:not([hidden])"


@dataclass
class World:
    scored: Scored
    moodle: MoodleStub
    at_risk: list[int]  # person ids, as the services say, highest risk (lowest chance) first
    students: list[int]  # every student's person id
    uid: dict[int, int]  # person id -> Moodle user id
    names: dict[int, str]  # person id -> full name
    refused: int  # the at-risk student whose Moodle refuses the tool's messages
    teacher_uid: int
    teacher_name: str

    def label(self, pid: int) -> str:
        """The name as the action pages write it: a name two students share gets the Moodle
        id ("Paul Martin (#219)"), so the teacher can tell them apart."""
        name = self.names[pid]
        shared = sum(1 for other in self.names.values() if other == name) > 1
        return f"{name} (#{self.uid[pid]})" if shared else name


@pytest.fixture(scope="module")
def world(scored: Scored) -> Iterator[World]:  # noqa: F811
    """The dashboard tests' scored course, its Moodle site now the stub over HTTP. The stub's
    `users()` (the site's known accounts) becomes the simulated students and the teacher, in
    place of its recorded roster, so that messages and notes to them are delivered."""
    env = scored.env
    moodle = MoodleStub().start()
    with env.db() as db:
        course = db.get_one(Course, scored.course_id)
        site = db.get_one(MoodleSite, course.site_id)
        site.base_url = moodle.url
        site.ws_token_encrypted = SecretBox.from_settings(env.settings).encrypt(TOKEN)
        roster = student_roster(db, course)
        uid = {int(p): int(u) for p, u in zip(roster["person_id"], roster["userid"], strict=True)}
        names = {p: db.get_one(Person, p).fullname for p in uid}
        threshold = risk_threshold_of(course, env.settings.ml)
        risky = watch.at_risk_ids(db, course, threshold)
        shown = contacts.recipients(db, course, list(uid), threshold)
        chance = {r.person.id: r.pass_probability for r in shown}
        first_teacher = db.scalars(
            select(LtiSession).where(LtiSession.role == "teacher").order_by(LtiSession.id)
        ).first()
        assert first_teacher is not None
        teacher = db.get_one(Person, first_teacher.person_id)
        assert teacher.moodle_user_id is not None
        teacher_uid, teacher_name = teacher.moodle_user_id, teacher.fullname
    known = set(uid.values()) | {teacher_uid}
    moodle.users = lambda: known  # type: ignore[method-assign]
    at_risk = sorted(risky, key=lambda p: (chance[p], p))
    assert 2 <= len(at_risk) < len(uid), "the scenario needs at-risk students and others"
    try:
        yield World(
            scored=scored,
            moodle=moodle,
            at_risk=at_risk,
            students=sorted(uid),
            uid=uid,
            names=names,
            refused=at_risk[0],
            teacher_uid=teacher_uid,
            teacher_name=teacher_name,
        )
    finally:
        moodle.stop()


# --------------------------------------------------------------------------- helpers


def _shot(page: Page, frame: Frame, name: str) -> None:
    """The framed page as it is now (a POST's answer included), at full length: the platform's
    iframe is stretched to the framed page's height and the window to the platform page's
    (a full-page capture leaves the cross-origin frame unpainted below the window), then both
    are put back, and the framed page is waited for at its usual size before the test goes on."""
    ARTIFACTS.mkdir(exist_ok=True)
    frame.wait_for_function(
        "() => [...document.querySelectorAll('[data-vega-spec]')].every("
        "e => e.getAttribute('data-rendered'))",
        timeout=RENDER_MS,
    )
    viewport = page.viewport_size
    assert viewport is not None
    height = frame.evaluate("() => document.documentElement.scrollHeight")
    iframe = page.locator("#contentframe")
    iframe.evaluate("(el, h) => { el.height = String(h); }", height)
    whole = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": whole})
    # The framed page sees its new height (its own process hears of it later), then two
    # animation frames: laid out and painted at that height.
    frame.wait_for_function("h => window.innerHeight >= h", arg=height)
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    iframe.screenshot(path=str(ARTIFACTS / f"teacher-actions-{name}.png"))
    page.set_viewport_size(viewport)
    iframe.evaluate("el => { el.height = '700'; }")
    # Wait until the framed page is laid out at its usual height again: a click aimed while the
    # frame still shrinks lands where the element was (a checkbox then keeps its state).
    frame.wait_for_function("() => window.innerHeight <= 700")
    frame.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def _ids(frame: Frame, selector: str) -> list[int]:
    values: list[str] = frame.locator(selector).evaluate_all(
        "els => els.map(e => e.getAttribute('data-person'))"
    )
    return [int(v) for v in values]


def _back_to_dashboard(frame: Frame) -> None:
    frame.get_by_role("link", name="Back to the course dashboard").click()
    expect(frame.locator("#course-title")).to_be_visible()


def _no_console_errors(page: Page) -> None:
    assert page.console_errors == []  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- 1. contact


def test_contact_the_at_risk_students(
    browser: BrowserContext,  # noqa: F811
    world: World,
    playwright: Playwright,  # noqa: F811
    tmp_path: Path,
) -> None:
    moodle, n = world.moodle, len(world.at_risk)
    page, frame = _launch(browser, world.scored, "teacher")
    course_name = frame.locator("#course-title").inner_text()  # the launch's context title

    # Highest risk first: the at-risk rows lead the table, the lowest chance at the top.
    rows: list[list[str]] = frame.locator("#risk-table tbody tr").evaluate_all(
        """rows => rows.map(r => [r.getAttribute('data-person'), r.getAttribute('data-risk'),
                                  r.querySelector('td.proba').getAttribute('data-value')])"""
    )
    assert len(rows) == len(world.students)
    assert {int(p) for p, _, _ in rows[:n]} == set(world.at_risk)
    assert all(risk == "1" for _, risk, _ in rows[:n])
    assert all(risk == "0" for _, risk, _ in rows[n:])
    chances = [float(c) for _, _, c in rows]
    assert chances == sorted(chances)
    expect(frame.locator("#at-risk-count")).to_contain_text(f"{n} likely to fail")

    # Nothing selected yet: nothing to write to.
    expect(frame.locator("#contact-selected")).to_be_disabled()
    frame.locator("#select-at-risk").click()
    expect(frame.locator("#selected-count")).to_have_text(f"{n} students selected")
    expect(frame.locator("#contact-selected")).to_be_enabled()
    checked = _ids(frame, "#risk-table tbody tr:has(input.pick:checked)")
    assert sorted(checked) == sorted(world.at_risk)
    _shot(page, frame, "01-selected")

    # Compose: the picked students, the template's text with its placeholders.
    frame.locator("#contact-selected").click()
    expect(frame.locator("#contact-title")).to_be_visible()
    expect(frame.locator("#recipients li")).to_have_count(n)
    assert sorted(_ids(frame, "#recipients li")) == sorted(world.at_risk)
    expect(frame.locator("#recipients li .badge")).to_have_count(n)  # each marked "at risk"
    expect(frame.locator("#message-text")).to_have_value(re.compile(r"\{first_name\}"))
    expect(frame.locator("#send")).to_be_disabled()  # a preview comes first
    expect(frame.locator("#send-help")).to_be_visible()
    _shot(page, frame, "02-compose")

    # Preview: one message per student, in their own words.
    frame.locator("#preview").click()
    previews = frame.locator("#previews article.preview")
    expect(previews).to_have_count(n)
    assert sorted(_ids(frame, "#previews article.preview")) == sorted(world.at_risk)
    for pid in world.at_risk:
        first = world.names[pid].split()[0]
        card = frame.locator(f"#previews article.preview[data-person='{pid}']")
        expect(card.locator(".card-header")).to_have_text(
            re.compile(rf"^To {re.escape(world.label(pid))}\s*$")
        )
        text = card.locator(".message-text")
        expect(text).to_contain_text(f"Hello {first},")
        expect(text).to_contain_text(course_name)
        expect(text).to_contain_text(world.teacher_name)
        expect(text).not_to_contain_text("{")
    expect(frame.locator("#send")).to_be_enabled()
    expect(frame.locator("#send")).to_have_text(f"Send to {n} students")
    _shot(page, frame, "03-preview")

    # Send: one student's Moodle refuses the tool's messages.
    moodle.unreachable.add(world.uid[world.refused])
    before = len(moodle.sent_messages)
    try:
        frame.locator("#send").click()
        expect(frame.locator("#results")).to_be_visible()
    finally:
        moodle.unreachable.discard(world.uid[world.refused])
    results = frame.locator("#results tbody tr")
    expect(results).to_have_count(n)
    got = dict(
        frame.locator("#results tbody tr").evaluate_all(
            "rows => rows.map(r => [r.getAttribute('data-person'), r.getAttribute('data-status')])"
        )
    )
    assert {int(p): s for p, s in got.items()} == {
        p: "refused" if p == world.refused else "sent" for p in world.at_risk
    }
    refused_row = frame.locator(f"#results tbody tr[data-person='{world.refused}']")
    expect(refused_row.locator("td").nth(0)).to_have_text(world.label(world.refused))
    expect(refused_row.locator("td").nth(1)).to_have_text(re.compile("refused", re.I))
    expect(refused_row.locator("td").nth(2)).to_have_text(REFUSAL)
    expect(frame.locator("#results-summary")).to_contain_text(
        f"{n - 1} sent, 1 refused by Moodle, 0 without an answer, 0 failed"
    )
    # Moodle got exactly one message per other recipient, each in their name, signed.
    sent = moodle.sent_messages[before:]
    assert sorted(m["touserid"] for m in sent) == sorted(
        world.uid[p] for p in world.at_risk if p != world.refused
    )
    by_uid = {world.uid[p]: p for p in world.at_risk}
    for m in sent:
        assert f"Hello {world.names[by_uid[m['touserid']]].split()[0]}," in m["text"]
        assert world.teacher_name in m["text"]
    _shot(page, frame, "04-results")
    results_url = frame.url
    _no_console_errors(page)

    # The contact log: every recipient, with the result.
    frame.locator("#log-link").click()
    log = frame.locator("#contact-log tbody tr")
    expect(log).to_have_count(n)
    logged = dict(
        log.evaluate_all(
            "rows => rows.map(r => [r.getAttribute('data-person'), r.getAttribute('data-status')])"
        )
    )
    assert {int(p): s for p, s in logged.items()} == {int(p): s for p, s in got.items()}
    expect(frame.locator(f"#contact-log tr[data-person='{world.refused}']")).to_contain_text(
        REFUSAL
    )
    expect(frame.locator("#contact-log")).to_contain_text(world.teacher_name)
    _shot(page, frame, "05-contact-log")

    # Back on the dashboard: the contacted students say so, and "Not yet contacted" hides them
    # (the refused student was not reached: still to contact).
    _back_to_dashboard(frame)
    dashboard_url = frame.url
    contacted = [p for p in world.at_risk if p != world.refused]
    for pid in contacted:
        state = frame.locator(f"#risk-table tr[data-person='{pid}'] .follow-up-state")
        expect(state).to_have_text(re.compile(r"^contacted \S+"))
    expect(
        frame.locator(f"#risk-table tr[data-person='{world.refused}'] .follow-up-state")
    ).to_have_text("")
    frame.locator("#not-contacted").check()
    expect(frame.locator(VISIBLE_ROWS)).to_have_count(len(world.students) - len(contacted))
    shown = set(_ids(frame, VISIBLE_ROWS))
    assert shown == set(world.students) - set(contacted)
    total = len(world.students)
    expect(frame.locator("#risk-count")).to_have_text(
        f"{total - len(contacted)} of {total} students shown"
    )
    _shot(page, frame, "06-not-contacted")
    frame.locator("#not-contacted").uncheck()
    expect(frame.locator(VISIBLE_ROWS)).to_have_count(min(total, 25))
    _no_console_errors(page)

    # Accessibility of the contact page (with its previews) and of the results.
    def compose_and_preview(tab: Page) -> None:
        tab.locator("#select-at-risk").click()
        tab.locator("#contact-selected").click()
        expect(tab.locator("#message-text")).to_be_visible()
        tab.locator("#preview").click()
        expect(tab.locator("#previews article.preview")).to_have_count(n)

    violations = _axe(playwright, dashboard_url, tmp_path, compose_and_preview)
    assert violations == [], violations
    violations = _axe(playwright, results_url, tmp_path)
    assert violations == [], violations
    assert len(moodle.sent_messages) == before + len(sent)  # axe's preview sent nothing


# --------------------------------------------------------------------------- 2. follow-up


def test_follow_up_status_and_note_mirrored_to_moodle(
    browser: BrowserContext,  # noqa: F811
    world: World,
    playwright: Playwright,  # noqa: F811
    tmp_path: Path,
) -> None:
    pid, moodle = world.refused, world.moodle  # messaging refused: the teacher met them
    note = "Vu en TD après le cours : rattrapage du quiz 2 prévu."
    page, frame = _launch(browser, world.scored, "teacher")
    frame.locator(f"#risk-table tr[data-person='{pid}'] a.follow-up-link").click()
    expect(frame.locator("#follow-up-title")).to_have_text(f"Follow-up of {world.label(pid)}")
    expect(frame.locator("#no-history")).to_be_visible()
    # The refused message is on the student's record.
    expect(frame.locator("#student-contacts li")).to_have_count(1)
    expect(frame.locator("#student-contacts li")).to_have_attribute("data-status", "refused")
    _shot(page, frame, "07-follow-up")

    notes_before = len(moodle.notes)
    frame.get_by_label("met", exact=True).check()
    expect(frame.locator("#status-met")).to_be_checked()
    frame.get_by_label("Note", exact=True).fill(note)
    frame.get_by_label("Also add it as a Moodle course note", exact=False).check()
    frame.locator("#follow-up-save").click()
    message = frame.locator("#follow-up-message")
    expect(message).to_have_attribute("data-code", "saved")
    expect(message).to_contain_text("Saved.")
    expect(frame.locator("#mirror-ok")).to_have_text("A Moodle course note was added.")
    history = frame.locator("#history li")
    expect(history).to_have_count(1)
    expect(history).to_have_attribute("data-status", "met")
    expect(history).to_contain_text(note)
    expect(history).to_contain_text(world.teacher_name)
    expect(history).to_contain_text("also a Moodle note")
    # One course note in Moodle, on this student, in this course, with the note's text.
    assert len(moodle.notes) == notes_before + 1
    made = moodle.notes[-1]
    assert made["userid"] == world.uid[pid]
    assert made["courseid"] == 2
    assert note in made["text"]
    _shot(page, frame, "08-follow-up-saved")
    follow_up_url = frame.url
    _no_console_errors(page)

    # The dashboard shows the status beside the student.
    _back_to_dashboard(frame)
    row = frame.locator(f"#risk-table tr[data-person='{pid}']")
    expect(row).to_have_attribute("data-status", "met")
    expect(row.locator(".follow-up-state")).to_have_text(re.compile(r"^met\b"))

    violations = _axe(playwright, follow_up_url, tmp_path)
    assert violations == [], violations
    assert len(moodle.notes) == notes_before + 1


# --------------------------------------------------------------------------- 3. groups


def test_the_risk_group_then_filtering_by_group(
    browser: BrowserContext,  # noqa: F811
    world: World,
) -> None:
    moodle = world.moodle
    page, frame = _launch(browser, world.scored, "teacher")
    expect(frame.locator("#risk-group-help")).to_contain_text("Made or brought up to date")
    frame.locator("#risk-group").click()
    message = frame.locator("#group-message")
    expect(message).to_have_attribute("data-code", "created")
    expect(message).to_contain_text(
        f"The group was created in Moodle with {len(world.at_risk)} students."
    )
    members = frame.locator("#group-members li")
    expect(members).to_have_count(len(world.at_risk))
    assert sorted(members.all_inner_texts()) == sorted(world.label(p) for p in world.at_risk)
    heading = frame.locator("h1").inner_text()
    name_found = re.search(r"“(.+)”", heading)
    assert name_found, heading
    group_name = name_found.group(1)
    assert re.fullmatch(r"At risk \u2013 week \d+", group_name), group_name
    made = [g for g in moodle.groups if g["name"] == group_name]
    assert len(made) == 1
    assert made[0]["courseid"] == 2
    assert sorted(moodle.group_userids[made[0]["id"]]) == sorted(
        world.uid[p] for p in world.at_risk
    )
    _shot(page, frame, "09-risk-group")

    # Read the groups back from Moodle: the filter offers them.
    _back_to_dashboard(frame)
    frame.locator("#groups-refresh").click()
    expect(frame.locator("#actions-message")).to_have_attribute("data-code", "groups_refreshed")
    groups = [g["name"] for g in moodle.groups if g["courseid"] == 2]
    expect(frame.locator("#actions-message")).to_contain_text(
        f"The groups were read from Moodle: {len(groups)} groups."
    )
    options = frame.locator("#group-filter option").all_inner_texts()
    assert options[0] == "All students"
    assert sorted(options[1:]) == sorted(groups)
    assert {"Groupe A", "Groupe B", group_name} <= set(options)

    # Filtering by the new group: its members' rows only.
    frame.locator("#group-filter").select_option(label=group_name)
    expect(frame.locator(VISIBLE_ROWS)).to_have_count(len(world.at_risk))
    assert sorted(_ids(frame, VISIBLE_ROWS)) == sorted(world.at_risk)
    total = len(world.students)
    expect(frame.locator("#risk-count")).to_have_text(
        f"{len(world.at_risk)} of {total} students shown"
    )
    _shot(page, frame, "10-group-filter")
    # The recorded "Groupe A" holds Moodle's recorded users, none of this simulated course's
    # students: filtering by it shows nobody, and "All students" brings every row back.
    frame.locator("#group-filter").select_option(label="Groupe A")
    expect(frame.locator(VISIBLE_ROWS)).to_have_count(0)
    expect(frame.locator("#risk-count")).to_have_text(f"0 of {total} students shown")
    frame.locator("#group-filter").select_option(label="All students")
    expect(frame.locator(VISIBLE_ROWS)).to_have_count(min(total, 25))
    _no_console_errors(page)


# --------------------------------------------------------------------------- 4. weekly digest


def test_the_weekly_digest_from_its_scheduler_job(
    browser: BrowserContext,  # noqa: F811
    world: World,
) -> None:
    env, moodle = world.scored.env, world.moodle
    page, frame = _launch(browser, world.scored, "teacher")
    course_name = frame.locator("#course-title").inner_text()
    expect(frame.locator("#digest-state")).to_have_attribute("data-enabled", "0")
    expect(frame.locator("#digest-toggle")).to_have_text("Turn the weekly summary on")
    frame.locator("#digest-toggle").click()
    expect(frame.locator("#actions-message")).to_have_attribute("data-code", "digest_on")
    expect(frame.locator("#digest-state")).to_have_attribute("data-enabled", "1")
    expect(frame.locator("#digest-state")).to_have_text("You get a weekly summary of this course.")
    expect(frame.locator("#digest-toggle")).to_have_text("Turn the weekly summary off")
    _shot(page, frame, "11-digest-on")
    _no_console_errors(page)

    job = {j.name: j for j in default_jobs()}["weekly-digest"]
    slot = nightly_slot(env.settings)
    before = len(moodle.sent_messages)
    report = run_job(job, JobContext(env.settings, env.factory, "e2e", slot))
    assert report.failed == {}
    assert world.scored.course_id in report.processed
    assert report.counts["sent"] == 1
    [digest] = moodle.sent_messages[before:]
    assert digest["touserid"] == world.teacher_uid
    assert f"weekly summary for {course_name}" in digest["text"]
    assert f"{len(world.at_risk)} students are at risk" in digest["text"]

    # Run again, the same night and the next: nothing more reaches Moodle.
    again = run_job(job, JobContext(env.settings, env.factory, "e2e", slot))
    assert world.scored.course_id in again.skipped
    next_day = (date.fromisoformat(slot) + timedelta(days=1)).isoformat()
    next_night = run_job(job, JobContext(env.settings, env.factory, "e2e", next_day))
    assert next_night.failed == {}
    assert next_night.counts.get("sent", 0) == 0
    assert len(moodle.sent_messages) == before + 1

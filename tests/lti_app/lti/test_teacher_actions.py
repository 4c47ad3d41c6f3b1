"""Acting on the at-risk list (#16) over real launches, a scored course and a Moodle stub that
answers as Moodle 5.1 did (tests/moodle_stub.py: messages, notes and groups recorded, kept in
memory so what reached "Moodle" can be read back).

The invariants: every picked student gets one message and one result, never two messages for
one send (a repeated or interrupted send of the same batch sends nothing again); the dashboard
marks, filters and orders the same students the services name; a refusal is a result on the
page, never a 500; notes, statuses and contacts stay with the course's teachers.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.crypto import SecretBox
from lti_app.models import (
    Contact,
    Course,
    CourseVisit,
    FollowUp,
    LtiSession,
    MoodleGroup,
    MoodleSite,
    Person,
    Prediction,
)
from lti_app.services import contacts, follow_ups, watch
from lti_app.services.course_settings import risk_threshold_of
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.french_text import english_in, visible_text
from tests.lti_app.lti.scored_course import ScoredCourse, score_course_2
from tests.moodle_stub import TOKEN, MoodleStub, fixture

REFUSAL = fixture("core_message_send_instant_messages__usercantbemessaged.json")[0]["errormessage"]


@dataclass
class World:
    env: LtiEnv
    scored: ScoredCourse
    moodle: MoodleStub
    teacher: str
    teacher_fr: str
    teacher_name: str
    at_risk: list[int]  # person ids, as the services say
    not_at_risk: list[int]
    uid: dict[int, int]  # person id -> Moodle user id


@pytest.fixture(scope="module")
def world(lti_env: LtiEnv) -> Iterator[World]:
    teacher = token_of(launch(lti_env.client(), lti_env, "teacher"))
    scored = score_course_2(lti_env)
    teacher_fr = token_of(launch(lti_env.client(), lti_env, "teacher_fr"))
    moodle = MoodleStub().start()
    uid = {s.person_id: s.moodle_user_id for s in scored.students}
    with lti_env.db() as db:
        site = db.get_one(MoodleSite, db.get_one(Person, scored.students[0].person_id).site_id)
        site.base_url = moodle.url
        site.ws_token_encrypted = SecretBox.from_settings(lti_env.settings).encrypt(TOKEN)
        course = _course(db, scored)
        threshold = risk_threshold_of(course, lti_env.settings.ml)
        risky = watch.at_risk_ids(db, course, threshold)
        teachers = db.scalars(
            select(Person).where(Person.site_id == site.id, Person.moodle_user_id.is_not(None))
        ).all()
        known = set(uid.values()) | {p.moodle_user_id for p in teachers if p.moodle_user_id}
        teacher_name = _teacher(db).fullname
    moodle.users = lambda: known  # type: ignore[method-assign]
    ids = [s.person_id for s in scored.students]
    try:
        yield World(
            lti_env,
            scored,
            moodle,
            teacher,
            teacher_fr,
            teacher_name,
            at_risk=sorted(risky),
            not_at_risk=[p for p in ids if p not in risky],
            uid=uid,
        )
    finally:
        moodle.stop()


def _course(db: Session, scored: ScoredCourse) -> Course:
    return db.get_one(Course, scored.course_id)


def _teacher(db: Session) -> Person:
    """The teacher of the launches (the first teacher session's person)."""
    row = db.scalars(
        select(LtiSession).where(LtiSession.role == "teacher").order_by(LtiSession.id)
    ).first()
    assert row is not None
    return db.get_one(Person, row.person_id)


def _get(world: World, path: str, token: str | None = None) -> tuple[int, str]:
    resp = world.env.client().get(path, headers={"X-Launch-Token": token or world.teacher})
    return resp.status_code, resp.get_data(as_text=True)


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


_CSRF: dict[str, str] = {}


def _post(
    world: World, path: str, data: dict[str, object], token: str | None = None
) -> tuple[int, str, str]:
    """POST as the launch's browser would, with the CSRF token its pages hand out (read once
    per launch from the dashboard)."""
    token = token or world.teacher
    if token not in _CSRF:
        _, page = _get(world, f"/course/{world.scored.course_id}", token)
        _CSRF[token] = _csrf(page)
    resp = world.env.client().post(
        path, headers={"X-Launch-Token": token}, data={"csrf_token": _CSRF[token], **data}
    )
    return resp.status_code, resp.get_data(as_text=True), resp.headers.get("Location", "")


def _follow(world: World, location: str) -> tuple[int, str]:
    parts = urlsplit(location)
    return _get(world, parts.path + ("?" + parts.query if parts.query else ""))


def _contact_path(world: World) -> str:
    return f"/course/{world.scored.course_id}/contact"


# --------------------------------------------------------------------------- the dashboard


def test_the_dashboard_orders_by_risk_and_offers_the_actions(world: World) -> None:
    status, page = _get(world, f"/course/{world.scored.course_id}")
    assert status == 200
    rows = re.findall(r'<tr data-risk="([01])" data-person="(\d+)"', page)
    assert len(rows) == len(world.scored.students)
    # Highest risk first: every at-risk row comes before every other, chances non-decreasing.
    flags = [flag for flag, _ in rows]
    assert flags == sorted(flags, reverse=True)
    assert {int(p) for f, p in rows if f == "1"} == set(world.at_risk)
    chances = [float(c) for c in re.findall(r'<td data-value="([0-9.e-]+)" class="proba">', page)]
    assert chances == sorted(chances)
    # One checkbox per student, all in the contact form, and the form itself.
    boxes = re.findall(r'name="person" value="(\d+)" form="contact-form"', page)
    assert sorted(map(int, boxes)) == sorted(s.person_id for s in world.scored.students)
    assert 'id="contact-form"' in page
    assert 'id="risk-group"' in page
    assert 'id="digest-toggle"' in page


# --------------------------------------------------------------------------- contact


def test_contact_compose_preview_send_results_and_no_second_send(world: World) -> None:
    picked = world.at_risk[:3] + world.not_at_risk[:1]
    refusing = world.uid[picked[1]]
    world.moodle.unreachable.add(refusing)
    before = len(world.moodle.sent_messages)
    path = _contact_path(world)
    try:
        status, page, _ = _post(world, path, {"person": picked})
        assert status == 200
        assert len(re.findall(r'<li class="list-inline-item" data-person=', page)) == len(picked)
        batch = re.search(r'name="batch" value="([^"]+)"', page)
        assert batch
        text = re.search(r'<textarea[^>]*name="text"[^>]*>([^<]*)</textarea>', page)
        assert text
        assert "{first_name}" in text.group(1)
        message = "Bonjour {first_name},\n\nPouvons-nous parler de {course} ?\n\n{teacher}"
        form = {"person": picked, "batch": batch.group(1), "text": message, "template": "custom"}

        # Sending before a preview is possible only from the preview page's button; the preview
        # shows each student's own text.
        status, page, _ = _post(world, path, {**form, "step": "preview"})
        assert status == 200
        previews = re.findall(r'<article class="card mb-2 preview" data-person="(\d+)"', page)
        assert sorted(map(int, previews)) == sorted(picked)
        with world.env.db() as db:
            first_names = {p: db.get_one(Person, p).fullname.split()[0] for p in picked}
        for first in first_names.values():
            assert f"Bonjour {first}," in page
        assert "{first_name}" not in page.split('id="previews"')[1]

        status, _, location = _post(world, path, {**form, "step": "send"})
        assert status == 303
        sent = world.moodle.sent_messages[before:]
        assert sorted(m["touserid"] for m in sent) == sorted(
            world.uid[p] for p in picked if world.uid[p] != refusing
        )
        for m in sent:
            assert world.teacher_name in m["text"]  # the teacher's name in the text
        status, results = _follow(world, location)
        assert status == 200
        got = dict(re.findall(r'<tr data-person="(\d+)" data-status="(\w+)">', results))
        assert {int(p): s for p, s in got.items()} == {
            p: ("refused" if world.uid[p] == refusing else "sent") for p in picked
        }

        # The same batch again (a double click, a reload of the POST): nothing more is sent.
        status, _, _ = _post(world, path, {**form, "step": "send"})
        assert status == 303
        assert len(world.moodle.sent_messages) == before + len(sent)
        with world.env.db() as db:
            rows = db.scalars(select(Contact).where(Contact.batch == batch.group(1))).all()
            assert len(rows) == len(picked)
            assert all(r.template == "custom" and r.channel == "message" for r in rows)
            assert {r.person_id for r in rows} == set(picked)
    finally:
        world.moodle.unreachable.discard(refusing)

    status, log = _get(world, f"/course/{world.scored.course_id}/contacts")
    assert status == 200
    assert len(re.findall(r'<tr data-person="\d+" data-status="', log)) >= len(picked)


def test_students_who_share_a_name_are_told_apart(world: World) -> None:
    """Every student picked reads as a different label (a shared name gets the Moodle id)."""
    everyone = [s.person_id for s in world.scored.students]
    names = [s.fullname for s in world.scored.students]
    assert len(set(names)) < len(names), "the simulated course has two students of one name"
    status, page, _ = _post(world, _contact_path(world), {"person": everyone})
    assert status == 200
    shown = [
        name.strip()
        for name in re.findall(r'<li class="list-inline-item" data-person="\d+">([^<]+)', page)
    ]
    assert len(shown) == len(everyone)
    assert len(set(shown)) == len(shown)
    for s in world.scored.students:
        if names.count(s.fullname) > 1:
            assert f"{s.fullname} (#{s.moodle_user_id})" in shown


def test_the_log_names_the_template_whose_text_was_sent(world: World) -> None:
    """A dropdown changed without "Use this template" does not change the text: the log names
    the template that was loaded (and sent), and the teacher is named once, at the end."""
    pid = world.not_at_risk[0]
    path = _contact_path(world)
    status, page, _ = _post(world, path, {"person": [pid], "template": "checkin"})
    assert status == 200
    batch = re.search(r'name="batch" value="([^"]+)"', page)
    text = re.search(r'<textarea[^>]*name="text"[^>]*>([^<]*)</textarea>', page)
    assert batch
    assert text
    sent_text = html.unescape(text.group(1))
    form = {
        "person": [pid],
        "batch": batch.group(1),
        "text": sent_text,
        "template": "meeting",  # changed in the dropdown, not loaded
        "loaded_template": "checkin",
        "loaded_locale": "en",
        "step": "send",
    }
    before = len(world.moodle.sent_messages)
    status, _, _ = _post(world, path, form)
    assert status == 303
    with world.env.db() as db:
        row = db.scalars(select(Contact).where(Contact.batch == batch.group(1))).one()
        assert row.template == "checkin"
    [message] = world.moodle.sent_messages[before:]
    assert message["text"].count(world.teacher_name) == 1
    # Loading the dropdown's template does change both.
    status, page, _ = _post(
        world, path, {**form, "step": "compose", "load_template": "1", "template": "meeting"}
    )
    assert 'name="loaded_template" value="meeting"' in page


def test_a_bad_message_is_refused_with_its_reason(world: World) -> None:
    path = _contact_path(world)
    pid = world.at_risk[0]
    for text, code in [
        ("", "empty"),
        ("Bonjour {nom}", "placeholder"),
        ("Bonjour {first_name", "braces"),
        ("x" * 20_000, "too_long"),
    ]:
        before = len(world.moodle.sent_messages)
        status, page, _ = _post(world, path, {"person": [pid], "text": text, "step": "send"})
        assert status == 400, code
        assert f'data-code="{code}"' in page
        assert len(world.moodle.sent_messages) == before
    status, page, _ = _post(world, path, {"person": [], "step": "compose"})
    assert status == 400
    assert 'data-code="no_recipients"' in page
    # A stranger's id in the form is dropped: a teacher cannot message someone outside the course.
    with world.env.db() as db:
        stranger = db.scalar(select(func.max(Person.id))) or 0
    status, page, _ = _post(world, path, {"person": [stranger + 1000]})
    assert status == 400


def test_without_messaging_the_address_list_is_offered_and_recorded(world: World) -> None:
    with world.env.db() as db:
        site = db.get_one(MoodleSite, db.get_one(Person, world.at_risk[0]).site_id)
        contacts.mark_unavailable(site, "messaging", "The token lacks moodle/site:sendmessage.")
    try:
        path = _contact_path(world)
        picked = world.at_risk[:2]
        status, page, _ = _post(world, path, {"person": picked})
        assert status == 200
        assert 'id="address-list"' in page
        assert 'id="send"' not in page
        assert "moodle/site:sendmessage" in page
        before = len(world.moodle.sent_messages)
        status, page, _ = _post(world, path, {"person": picked, "step": "send"})
        assert status == 409  # messaging is unavailable: nothing is sent
        batch = re.search(r'name="batch" value="([^"]+)"', page)
        assert batch
        status, _, location = _post(
            world, path, {"person": picked, "step": "listed", "batch": batch.group(1)}
        )
        assert status == 303
        assert len(world.moodle.sent_messages) == before
        _, results = _follow(world, location)
        assert results.count('data-status="listed"') == len(picked)
    finally:
        with world.env.db() as db:
            site = db.get_one(MoodleSite, db.get_one(Person, world.at_risk[0]).site_id)
            contacts.mark_available(site, "messaging")


def test_an_interrupted_send_leaves_unknown_and_never_resends(world: World) -> None:
    """Moodle takes the message but the answer is lost (a proxy's 502, a timeout): 'unknown',
    kept on disk before the call, so the same batch sent again does not message the student
    twice."""
    pid = world.at_risk[-1]
    path = _contact_path(world)
    status, page, _ = _post(world, path, {"person": [pid]})
    batch = re.search(r'name="batch" value="([^"]+)"', page)
    assert batch

    def lose_the_answer(name: str, params: dict[str, str]) -> int | None:
        """Moodle stores the message; the proxy in front of it answers 502."""
        if name == "core_message_send_instant_messages":
            world.moodle.sent_messages.append({"touserid": world.uid[pid], "text": "lost"})
            return 502
        return None

    world.moodle.before_call = lose_the_answer
    try:
        form = {
            "person": [pid],
            "batch": batch.group(1),
            "step": "send",
            "text": "Hello {first_name}",
        }
        status, _, location = _post(world, path, form)
        assert status == 303
        world.moodle.before_call = None
        before = len(world.moodle.sent_messages)
        status, _, _ = _post(world, path, form)
        assert len(world.moodle.sent_messages) == before
        _, results = _follow(world, location)
        assert f'<tr data-person="{pid}" data-status="unknown">' in results
        assert 'id="unknown-help"' in results
    finally:
        world.moodle.before_call = None


# --------------------------------------------------------------------------- follow-up


def test_follow_up_notes_statuses_and_the_moodle_note(world: World) -> None:
    pid = world.at_risk[0]
    path = f"/course/{world.scored.course_id}/learners/{pid}/follow-up"
    status, page = _get(world, path)
    assert status == 200
    assert 'id="no-history"' in page
    notes_before = len(world.moodle.notes)
    status, page, _ = _post(
        world, path, {"status": "met", "note": "Vu en TD, rattrapage prévu.", "mirror": "1"}
    )
    assert status == 200
    assert 'data-code="saved"' in page
    assert 'id="mirror-ok"' in page
    assert len(world.moodle.notes) == notes_before + 1
    assert world.moodle.notes[-1]["userid"] == world.uid[pid]
    status, page, _ = _post(world, path, {"status": "flag_wrong"})
    assert status == 200
    history = page.split('id="history"')[1].split('id="contacts-title"')[0]
    assert re.findall(r'<li class="mb-2" data-status="(\w*)"', history) == ["flag_wrong", "met"]
    status, page, _ = _post(world, path, {"status": "", "note": ""})
    assert status == 400
    assert 'data-code="empty"' in page
    status, page, _ = _post(world, path, {"status": "expelled"})
    assert status == 400
    assert 'data-code="status"' in page
    with world.env.db() as db:
        rows = db.scalars(select(FollowUp).where(FollowUp.person_id == pid)).all()
        assert [r.status for r in rows] == ["met", "flag_wrong"]
        assert all(r.was_flagged and r.prediction_id is not None for r in rows)
        agreement = follow_ups.flag_agreement(db, world.scored.course_id)
    assert agreement.wrong >= 1
    assert agreement.judged >= 1
    # The dashboard says how often teachers agreed, and the status reaches the table's data.
    _, dash = _get(world, f"/course/{world.scored.course_id}")
    assert 'id="flag-agreement"' in dash
    # No estimate of the contacts' effect here (too recent): no caveat about one either.
    assert 'id="contact-effect"' in dash
    assert 'id="effect-caveat"' not in dash
    assert f'data-judged="{agreement.judged}"' in dash
    data = re.search(r"data-people='([^']*)'", dash)
    assert data
    people = json.loads(html.unescape(data.group(1)))
    assert people[str(pid)]["status"] == "flag_wrong"


def test_a_learner_never_reaches_notes_or_contacts(world: World) -> None:
    learner = world.scored.students[0]
    token = token_of(
        launch(
            world.env.client(), world.env, "student", sub=str(learner.moodle_user_id),
            name=learner.fullname,
        )
    )  # fmt: skip
    cid = world.scored.course_id
    for path in [
        f"/course/{cid}/learners/{learner.person_id}/follow-up",
        f"/course/{cid}/contacts",
    ]:
        status, _ = _get(world, path, token)
        assert status == 403
    # The learner's own page says nothing of notes or contacts.
    status, page = _get(world, f"/course/{cid}/me", token)
    assert status == 200
    assert "Vu en TD" not in page
    assert "contact-log" not in page


# --------------------------------------------------------------------------- groups


def test_the_risk_group_is_created_then_brought_up_to_date(world: World) -> None:
    path = f"/course/{world.scored.course_id}/risk-group"
    status, page, _ = _post(world, path, {})
    assert status == 200, page[:500]
    assert 'data-code="created"' in page
    made = [g for g in world.moodle.groups if g["name"].startswith("At risk")]
    assert len(made) == 1
    assert sorted(world.moodle.group_userids[made[0]["id"]]) == sorted(
        world.uid[p] for p in world.at_risk
    )
    # A stranger put in the group by hand in Moodle leaves it; the at-risk students stay.
    world.moodle.group_userids[made[0]["id"]].append(world.uid[world.not_at_risk[0]])
    status, page, _ = _post(world, path, {})
    assert status == 200
    assert 'data-code="updated"' in page
    assert sorted(world.moodle.group_userids[made[0]["id"]]) == sorted(
        world.uid[p] for p in world.at_risk
    )
    assert len([g for g in world.moodle.groups if g["name"].startswith("At risk")]) == 1
    # The groups read back from Moodle filter the dashboard.
    status, _, location = _post(world, f"/course/{world.scored.course_id}/groups/refresh", {})
    assert status == 303
    assert "actions=groups_refreshed" in location
    with world.env.db() as db:
        names = db.scalars(
            select(MoodleGroup.name).where(MoodleGroup.course_id == world.scored.course_id)
        ).all()
    assert made[0]["name"] in names
    _, dash = _follow(world, location)
    assert f">{made[0]['name']}</option>" in dash


# --------------------------------------------------------------------------- told when it changes


def test_students_newly_at_risk_since_the_last_visit_are_marked(world: World) -> None:
    """An older scoring in which one of today's at-risk students was safe, shown before the
    teacher's previous visit: that student, and only that one, is marked new."""
    cid = world.scored.course_id
    changed = world.at_risk[0]
    _get(world, f"/course/{cid}")  # a visit, so the teacher has one to be compared with
    with world.env.db() as db:
        latest = db.scalar(select(func.max(Prediction.as_of)).where(Prediction.course_id == cid))
        rows = db.scalars(
            select(Prediction).where(Prediction.course_id == cid, Prediction.as_of == latest)
        ).all()
        made = min(r.created_at for r in rows)
        columns = [c.key for c in Prediction.__table__.columns if c.key != "id"]
        for r in rows:
            old = Prediction(**{k: getattr(r, k) for k in columns})
            old.as_of = r.as_of - timedelta(days=7)
            old.created_at = made - timedelta(days=2)
            if r.person_id == changed:
                old.pass_probability = 0.9
            db.add(old)
        visit = db.scalar(
            select(CourseVisit).where(
                CourseVisit.course_id == cid, CourseVisit.person_id == _teacher(db).id
            )
        )
        assert visit is not None
        visit.seen_at = made - timedelta(days=1)  # after the old scoring, before the new one
    _, page = _get(world, f"/course/{cid}")
    marked = re.search(r'id="new-at-risk" data-count="(\d+)"', page)
    assert marked
    assert int(marked.group(1)) == 1
    data = re.search(r"data-people='([^']*)'", page)
    assert data
    people = json.loads(html.unescape(data.group(1)))
    assert {int(p) for p, v in people.items() if v["new"]} == {changed}
    # The next visit within the hour compares with the same previous visit: still marked.
    _, again = _get(world, f"/course/{cid}")
    assert 'id="new-at-risk" data-count="1"' in again


def test_the_weekly_digest_switch(world: World) -> None:
    cid = world.scored.course_id
    status, _, location = _post(world, f"/course/{cid}/digest", {"enabled": "1"})
    assert status == 303
    assert "actions=digest_on" in location
    _, page = _follow(world, location)
    assert 'id="digest-state" data-enabled="1"' in page
    status, _, location = _post(world, f"/course/{cid}/digest", {"enabled": "0"})
    _, page = _follow(world, location)
    assert 'id="digest-state" data-enabled="0"' in page


def test_the_french_pages_of_the_actions(world: World) -> None:
    cid = world.scored.course_id
    pid = world.not_at_risk[-1]  # never contacted: the messages written above are content
    pages = [
        f"/course/{cid}",
        f"/course/{cid}/contacts",
        f"/course/{cid}/learners/{pid}/follow-up",
    ]
    for path in pages:
        status, page = _get(world, path, world.teacher_fr)
        assert status == 200
        # Moodle's group names are names, whatever their language (the risk group an English
        # teacher made above is "At risk - week N").
        found = english_in(
            visible_text(page),
            names=[g["name"] for g in world.moodle.groups],
            allowed=[REFUSAL],  # Moodle's own words for a refusal, in the site's language
        )
        assert not found, (path, found)
    status, page, _ = _post(world, _contact_path(world), {"person": [pid]}, world.teacher_fr)
    assert status == 200
    assert not english_in(visible_text(page))

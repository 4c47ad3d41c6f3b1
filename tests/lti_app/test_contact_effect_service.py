"""The effect of contacts read from the database (#16 item 7), on SQLite and PostgreSQL: a
simulated course with a planted effect (``tests.ml.contact_world``), its weekly shown chances
stored as predictions and its contacts as `Contact` rows, among rows that must not count
(refused and failed sends, later contacts, a withheld model's chances)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.models import Contact, Course, ModelVersion, MoodleSite, Person, Prediction
from lti_app.services.contact_effect import contact_effect, first_contacts
from lti_app.services.course_data import store_simulated_offering
from ml.contact_effect import chance_change_effect, final_outcome_effect
from tests.ml.contact_world import ContactWorld, contact_world

ML = MLSettings()
N_BOOT = 500


@dataclass(frozen=True)
class Stored:
    course: Course
    person: dict[int, int]  # Moodle user id -> person id
    start: datetime
    end: datetime


@pytest.fixture(scope="module")
def world() -> ContactWorld:
    return contact_world(1)


def _model(session: Session, course: Course, name: str, *, passed: bool) -> ModelVersion:
    row = ModelVersion(
        course_id=course.id, version=name, task="classification", estimator="logistic",
        artifact_path=name, artifact_sha256="0" * 64, features=[], metrics={},
        metadata_json={}, data_hash="0" * 64, gate_passed=passed, active=False,
    )  # fmt: skip
    session.add(row)
    session.flush()
    return row


def _store(
    session: Session,
    world: ContactWorld,
    *,
    effect: bool = True,
    grades: bool = True,
    contacts: bool = True,
    shown: bool = True,
) -> Stored:
    """The offering (without its log: the service reads none), one shown scoring a week, a
    withheld model's scoring that must be ignored, and the contacts with rows that must not
    count."""
    site = MoodleSite(base_url="https://contacts.example.org")
    session.add(site)
    session.flush()
    off = world.offering(effect)
    course = store_simulated_offering(
        session, site, dataclasses.replace(off, log=off.log.iloc[:0]), with_grades=grades
    )
    users = off.users["userid"].astype(int).tolist()
    person = {
        int(p.moodle_user_id): p.id
        for p in session.scalars(select(Person).where(Person.moodle_user_id.in_(users)))
        if p.moodle_user_id is not None
    }
    start = off.start.to_pydatetime()
    good = _model(session, course, f"{course.id}-shown", passed=True)
    withheld = _model(session, course, f"{course.id}-withheld", passed=False)
    rows = []
    for student, week, chance in world.chances(effect).itertuples(index=False):
        rows.append(
            Prediction(
                course_id=course.id, person_id=person[int(student)],
                classification_model_id=good.id if shown else withheld.id,
                as_of=start + timedelta(weeks=float(week)),
                pass_probability=float(chance) if shown else None, features={},
            )
        )  # fmt: skip
        # a withheld version's chance must never be read (stored here with a value, which the
        # scoring never does, so that reading it would show)
        rows.append(
            Prediction(
                course_id=course.id, person_id=person[int(student)],
                classification_model_id=withheld.id,
                as_of=start + timedelta(weeks=float(week) + 0.5), pass_probability=0.999,
                features={},
            )
        )  # fmt: skip
    session.add_all(rows)
    teacher = person[int(off.users.loc[off.users["role"] != "student", "userid"].iloc[0])]

    def contact(uid: int, week: float, status: str) -> Contact:
        return Contact(
            course_id=course.id, person_id=person[uid], sent_by=teacher, batch=f"w{week}",
            at=start + timedelta(weeks=week), channel="message" if status != "listed"
            else "address_list", template="at_risk", text="Bonjour", status=status,
        )  # fmt: skip

    if contacts:
        for i, (uid, week) in enumerate(sorted(world.contacts.items())):
            session.add(contact(uid, week, "listed" if i % 3 == 0 else "sent"))
            if i % 4 == 0:  # a second contact later: only the first counts
                session.add(contact(uid, week + 2.0, "sent"))
        others = [u for u in world.offering(effect).roster["userid"] if u not in world.contacts]
        for uid, status in zip(others[:6], ["refused", "failed", "unknown"] * 2, strict=True):
            session.add(contact(int(uid), 2.5, status))
    session.flush()
    return Stored(course, person, start, off.end.to_pydatetime())


def _by_person(world: ContactWorld, stored: Stored, effect: bool = True) -> pd.DataFrame:
    chances = world.chances(effect)
    return chances.assign(student=chances["student"].map(stored.person))


def test_after_the_term_the_planted_effect_is_recovered_from_the_tables(
    db_session: Session, world: ContactWorld
) -> None:
    stored = _store(db_session, world)
    summary = contact_effect(
        db_session, stored.course, settings=ML, now=stored.end + timedelta(days=3),
        n_boot=N_BOOT,
    )  # fmt: skip
    assert summary.reason is None
    assert summary.final_reason is None
    assert summary.n_contacted == len(world.contacts)
    assert (summary.term_start, summary.term_end) == (stored.start, stored.end)
    assert (summary.grade_scale, summary.pass_mark) == (20.0, 10.0)
    change, grade, passed = summary.chance_change, summary.final_grade, summary.pass_rate
    assert change is not None
    assert grade is not None
    assert passed is not None
    # exactly what the pure function gives on the simulator's own panel (ids relabelled to
    # person ids change nothing): nothing else was read, nothing was lost
    contacts = {stored.person[u]: w for u, w in world.contacts.items()}
    expected = chance_change_effect(
        _by_person(world, stored), contacts, n_boot=N_BOOT, seed=ML.random_seed
    )
    assert change == expected
    outcomes = world.outcomes(True)
    outcomes = outcomes.assign(student=outcomes["student"].map(stored.person))
    assert (grade, passed) == final_outcome_effect(
        _by_person(world, stored), contacts, outcomes, n_boot=N_BOOT, seed=ML.random_seed
    )
    # and it holds the truth
    truth = world.true_chance_effect(2.0)
    assert change.ci_low is not None
    assert change.ci_high is not None
    assert change.ci_low <= truth <= change.ci_high
    assert change.direction == "higher"
    assert grade.ci_low is not None
    assert grade.ci_high is not None
    assert grade.ci_low <= world.true_final_effect("grade") <= grade.ci_high
    assert change.kind == "observed_difference"


def test_without_an_effect_no_effect_is_found(db_session: Session, world: ContactWorld) -> None:
    stored = _store(db_session, world, effect=False)
    summary = contact_effect(
        db_session, stored.course, settings=ML, now=stored.end + timedelta(days=3),
        n_boot=N_BOOT,
    )  # fmt: skip
    for e in (summary.chance_change, summary.final_grade):
        assert e is not None
        assert e.ci_low is not None
        assert e.ci_high is not None
        assert e.ci_low <= 0.0 <= e.ci_high


def test_during_the_term_only_what_was_known_then(db_session: Session, world: ContactWorld) -> None:
    stored = _store(db_session, world)
    now = stored.start + timedelta(weeks=8, hours=1)
    summary = contact_effect(db_session, stored.course, settings=ML, now=now, n_boot=N_BOOT)
    assert summary.final_reason == "term_running"
    assert summary.final_grade is None
    assert summary.pass_rate is None
    change = summary.chance_change
    assert change is not None
    late = sum(1 for w in world.contacts.values() if w > 6)
    assert change.n_too_recent == late > 0  # contacted at 6.5: the window ends at 8.5
    assert change.n_contacted == len(world.contacts) - late
    # a contact after `now` is not read at all
    early = contact_effect(
        db_session, stored.course, settings=ML, now=stored.start + timedelta(weeks=5),
        n_boot=N_BOOT,
    )  # fmt: skip
    assert early.n_contacted == sum(1 for w in world.contacts.values() if w < 5)


def test_only_sent_and_listed_contacts_count_and_the_first_of_each(
    db_session: Session, world: ContactWorld
) -> None:
    stored = _store(db_session, world)
    first = first_contacts(db_session, stored.course.id)
    assert {p: at.replace(tzinfo=None) for p, at in first.items()} == {
        stored.person[u]: (stored.start + timedelta(weeks=w)).replace(tzinfo=None)
        for u, w in world.contacts.items()
    }


def test_the_reasons_when_nothing_can_be_compared(db_session: Session, world: ContactWorld) -> None:
    no_contacts = _store(db_session, world, contacts=False)
    summary = contact_effect(db_session, no_contacts.course, settings=ML)
    assert (summary.reason, summary.n_contacted, summary.chance_change) == ("no_contacts", 0, None)


def test_withheld_chances_only(db_session: Session, world: ContactWorld) -> None:
    stored = _store(db_session, world, shown=False)
    summary = contact_effect(db_session, stored.course, settings=ML, n_boot=N_BOOT)
    assert summary.reason == "no_shown_chances"
    assert summary.n_contacted == len(world.contacts)


def test_after_the_term_without_grades(db_session: Session, world: ContactWorld) -> None:
    stored = _store(db_session, world, grades=False)
    summary = contact_effect(
        db_session, stored.course, settings=ML, now=stored.end + timedelta(days=1),
        n_boot=N_BOOT,
    )  # fmt: skip
    assert summary.final_reason == "no_final_grades"
    assert summary.final_grade is None
    assert summary.chance_change is not None
    assert summary.chance_change.estimate is not None


def test_a_course_without_a_term(db_session: Session) -> None:
    site = MoodleSite(base_url="https://no-term.example.org")
    db_session.add(site)
    db_session.flush()
    course = Course(site_id=site.id, moodle_course_id=77)
    db_session.add(course)
    db_session.flush()
    summary = contact_effect(db_session, course, settings=ML)
    assert summary.reason == "no_term"
    assert summary.term_start is None

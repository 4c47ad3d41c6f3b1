"""The fairness audit wired to a site (#18, item 7), on SQLite and PostgreSQL.

A finished simulated course (tests/lti_app/test_live_validation.py's) is audited over an
attribute the roster sync stored because the site declared it. Without a planted bias the card
flags nothing; once the estimates shown to one group are made useless (every one of them "safe"
at 90 %), the gap in students who failed without being flagged is flagged, and the stored audit
equals `ml.fairness.fairness_report` run on the stored predictions directly. Only declared
attributes are kept, un-declaring deletes them, and a person's attributes are in their export
and gone after their erasure.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import moodle_client as mc
from lti_app.config import PrivacySettings
from lti_app.models import Course, MoodleSite, Person, PersonAttribute, Prediction
from lti_app.services import fairness, live_validation
from lti_app.services.courses import shown_term
from lti_app.services.json_rows import json_rows
from lti_app.services.privacy import erase_person, export_person
from lti_app.services.sync import sync_roster
from lti_app.web.views.course import fairness_view
from ml.fairness import fairness_report
from tests.lti_app.lti.scored_course import FAST
from tests.lti_app.test_live_validation import _ended_course
from tests.lti_app.test_roster_grades import _course as site_course
from tests.lti_app.test_roster_grades import _user as roster_user

#: 37 of the 40 simulated students have a final grade: two groups of 18 and 19 are compared.
PRIVACY = PrivacySettings(fairness_min_group=15)


def _user(uid: int, **profile: str) -> mc.EnrolledUser:
    """A student of the roster answer with these profile fields (the roster tests' helper)."""
    return roster_user(uid, f"User {uid}", "", "student", profile=profile)


def test_profile_attributes_are_read_from_the_roster_answer() -> None:
    recorded = mc.EnrolledUser.from_json(
        {
            "id": 3, "fullname": "Claire Enseignante", "department": "", "city": "Paris",
            "country": "FR", "roles": [],
            "customfields": [
                {"type": "text", "value": "oui", "displayvalue": "oui", "name": "Boursier",
                 "shortname": "bourse"},
                {"type": "text", "value": "", "name": "Vide", "shortname": "vide"},
            ],
        }
    )  # fmt: skip
    # Empty fields are not values: a student without one is "not given".
    assert dict(recorded.profile) == {
        "city": "Paris",
        "country": "FR",
        "profile_field_bourse": "oui",
    }


@pytest.mark.parametrize(
    ("text", "declared"),
    [
        ("", []),
        ("department", ["department"]),
        ("department, country;department  profile_field_bourse",
         ["department", "country", "profile_field_bourse"]),
    ],
)  # fmt: skip
def test_declared_groups_are_parsed(text: str, declared: list[str]) -> None:
    assert fairness.parse_groups(text) == declared


@pytest.mark.parametrize(
    "text", ["email", "department, password", "profile_field_", "profile_field_a b"]
)
def test_undeclarable_groups_are_refused(text: str) -> None:
    # "profile_field_a b" splits into "profile_field_a" (fine) and "b" (refused).
    with pytest.raises(fairness.FairnessGroupsError):
        fairness.parse_groups(text)


def _declare_and_sync(db_session: Session, course: Course, labels: dict[int, str]) -> None:
    """Declare "department" and sync a roster that carries it (and a city, not declared)."""
    site = db_session.get_one(MoodleSite, course.site_id)
    fairness.declare(db_session, site, ["department"])
    users = [_user(uid, department=dept, city="Nancy") for uid, dept in labels.items()]
    sync_roster(db_session, course, users)


def _direct(db_session: Session, course: Course, labels_by_uid: dict[int, str]) -> pd.DataFrame:
    """`fairness_report` on the stored shown predictions and the course totals, directly."""
    term = shown_term(db_session, course)
    assert term is not None
    shown = live_validation.shown_estimates(db_session, course, term.start)
    final = live_validation.final_outcomes(db_session, course, FAST.grade_max)
    frame = fairness.audit_frame(shown, final, 10.0)
    uid_of = {
        pid: uid
        for pid, uid in db_session.execute(select(Person.id, Person.moodle_user_id)).all()
        if uid is not None
    }
    frame["group"] = [labels_by_uid[uid_of[int(p)]] for p in frame["person_id"]]
    return fairness_report(frame, fairness.settings_of(PRIVACY))


def _comparable(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (r["checkpoint"], r["metric"], r["flagged"], r["values"], r["sizes"], r["gap"])
        for r in rows
    ]


def test_a_planted_bias_is_flagged_and_none_without(db_session: Session, tmp_path: object) -> None:
    course_id, last = _ended_course(db_session, tmp_path)
    course = db_session.get_one(Course, course_id)
    uids = sorted(int(u) for u in last.grades["userid"])
    labels = {uid: ("Chimie" if i % 2 else "Physique") for i, uid in enumerate(uids)}
    _declare_and_sync(db_session, course, labels)
    # Only the declared attribute is kept, for every student.
    kept = db_session.execute(
        select(PersonAttribute.name, func.count()).group_by(PersonAttribute.name)
    ).all()
    assert [tuple(r) for r in kept] == [("department", len(uids))]

    row = live_validation.refresh(db_session, course, FAST, privacy=PRIVACY)
    assert row is not None
    assert row.fairness is not None
    audit = row.fairness["department"]
    assert {r["checkpoint"] for r in audit} == {float(w["week"]) for w in row.weeks}
    assert not any(r["flagged"] for r in audit), [r for r in audit if r["flagged"]]
    expected = json_rows(_direct(db_session, course, labels))
    assert _comparable(audit) == _comparable(expected)
    assert fairness_view(row.fairness)[0]["flagged"] is False  # type: ignore[index]

    # Plant a bias: every estimate shown to the chemists said "safe, 90 %".
    person_of = dict(db_session.execute(select(Person.moodle_user_id, Person.id)).all())
    chemists = [person_of[u] for u, g in labels.items() if g == "Chimie"]
    db_session.execute(
        update(Prediction)
        .where(Prediction.course_id == course.id, Prediction.person_id.in_(chemists))
        .values(pass_probability=0.9, predicted_pass=True)
    )
    row = live_validation.refresh(db_session, course, FAST, privacy=PRIVACY)
    assert row is not None
    assert row.fairness is not None
    audit = row.fairness["department"]
    flagged = {(r["checkpoint"], r["metric"]) for r in audit if r["flagged"]}
    missed = [r for r in audit if r["metric"] == "missed" and r["gap"] is not None]
    assert missed
    assert all(r["values"]["Chimie"] == 1.0 for r in missed)
    assert {m for _, m in flagged} >= {"missed"}
    expected = json_rows(_direct(db_session, course, labels))
    assert _comparable(audit) == _comparable(expected)
    view = fairness_view(row.fairness)
    assert view is not None
    assert view[0]["flagged"] is True
    assert view[0]["sizes"] == {"Chimie": 18, "Physique": 19}
    by_metric = {m["metric"]: m for m in view[0]["metrics"]}
    assert by_metric["missed"]["flagged_weeks"]


def test_only_declared_attributes_are_kept_and_undeclaring_deletes(db_session: Session) -> None:
    course = site_course(db_session)
    site = db_session.get_one(MoodleSite, course.site_id)
    users = [_user(1, department="Chimie", country="FR"), _user(2, country="DE")]
    # Nothing declared: nothing kept.
    sync_roster(db_session, course, users)
    assert db_session.scalar(select(func.count()).select_from(PersonAttribute)) == 0
    fairness.declare(db_session, site, ["department", "country"])
    sync_roster(db_session, course, users)
    stored = {
        (uid, name): value
        for uid, name, value in db_session.execute(
            select(Person.moodle_user_id, PersonAttribute.name, PersonAttribute.value).join(
                Person, Person.id == PersonAttribute.person_id
            )
        )
    }
    assert stored == {(1, "department"): "Chimie", (1, "country"): "FR", (2, "country"): "DE"}
    # A value Moodle no longer gives goes; a changed one follows.
    sync_roster(db_session, course, [_user(1, country="BE"), _user(2, country="DE")])
    departments = select(func.count()).where(PersonAttribute.name == "department")
    assert db_session.scalar(departments) == 0
    one = db_session.scalar(select(Person).where(Person.moodle_user_id == 1))
    assert one is not None
    exported = export_person(db_session, one)["attributes"]
    assert [(a["name"], a["value"]) for a in exported] == [("country", "BE")]
    fairness.declare(db_session, site, ["department"])
    assert db_session.scalar(select(func.count()).select_from(PersonAttribute)) == 0
    fairness.declare(db_session, site, ["country"])
    sync_roster(db_session, course, users)
    erase_person(db_session, one)
    left = db_session.scalars(select(PersonAttribute.value)).all()
    assert left == ["DE"]


def test_a_small_group_keeps_its_size_not_its_figures(
    db_session: Session, tmp_path: object
) -> None:
    """Three students from "Biologie": their figures would describe three people."""
    course_id, last = _ended_course(db_session, tmp_path)
    course = db_session.get_one(Course, course_id)
    uids = sorted(int(u) for u in last.grades["userid"])
    labels = {uid: ("Biologie" if i < 3 else "Physique") for i, uid in enumerate(uids)}
    _declare_and_sync(db_session, course, labels)
    row = live_validation.refresh(db_session, course, FAST, privacy=PRIVACY)
    assert row is not None
    assert row.fairness is not None
    for r in row.fairness["department"]:
        assert r["sizes"]["Biologie"] <= 3
        assert r["values"]["Biologie"] is None
        assert r["values"]["Physique"] is not None or r["metric"] == "auc"
        assert r["flagged"] is False

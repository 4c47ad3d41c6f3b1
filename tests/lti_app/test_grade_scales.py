"""Each user's course total on its own maximum (issue #13, item 1), on Moodle 5.1's recordings.

Under natural aggregation with "exclude empty grades" (Moodle's default) a student with the quiz
graded has a course total out of 120 and one without out of 100. The recordings
`gradereport_user_get_grade_items__course2/__course4.json` hold both kinds of user. One maximum
per item scaled a whole offering by whichever user came last; each grade now keeps its own.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Course, Grade, GradeItem, MoodleSite, Person
from lti_app.services.course_data import load_offering
from lti_app.services.sync import set_enrolments, sync_grades
from ml.dataset import Offering, build_training_set, final_grades
from ml.events import STANDARD_LOG_COLUMNS, from_standard_log
from moodle_client import types as mc
from tests.conftest import FIXTURES

RECORDED = FIXTURES / "moodle-5.1"
REPORTS = ("gradereport_user_get_grade_items__course2.json",
           "gradereport_user_get_grade_items__course4.json")  # fmt: skip
SCALE = 20.0


def _payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    return data


def _total(user: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = next(i for i in user["gradeitems"] if i["itemtype"] == "course")
    return item


def _store(session: Session, payload: dict[str, Any], moodle_course_id: int) -> Course:
    """Sync the report into a fresh course whose users are all enrolled students."""
    site = session.scalar(select(MoodleSite).where(MoodleSite.base_url == "https://m.example"))
    if site is None:
        site = MoodleSite(base_url="https://m.example")
        session.add(site)
        session.flush()
    course = Course(
        site_id=site.id,
        moodle_course_id=moodle_course_id,
        start_at=datetime(2026, 9, 1, tzinfo=UTC),
        end_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    session.add(course)
    session.flush()
    sync_grades(session, course, mc.GradeReport.from_json(payload, moodle_course_id))
    people = session.execute(
        select(Person.id).where(Person.site_id == site.id, Person.moodle_user_id.is_not(None))
    ).scalars()
    set_enrolments(session, course, {(pid, "student") for pid in people}, source="ws")
    session.flush()
    return course


def _finals(session: Session, course: Course) -> pd.Series:
    offering = load_offering(session, course)
    ids = offering.roster["userid"].to_numpy()
    return pd.Series(offering.final_grades(ids, SCALE), index=ids)


@pytest.mark.parametrize("name", REPORTS)
def test_each_grade_keeps_its_own_users_maximum(db_session: Session, name: str) -> None:
    payload = _payload(name)
    course = _store(db_session, payload, 2)
    stored = dict(
        db_session.execute(
            select(Person.moodle_user_id, Grade.grade_max)
            .join(Grade, Grade.person_id == Person.id)
            .join(GradeItem, GradeItem.id == Grade.grade_item_id)
            .where(GradeItem.course_id == course.id, GradeItem.itemtype == "course")
        ).all()
    )
    expected = {u["userid"]: float(_total(u)["grademax"]) for u in payload["usergrades"]}
    assert stored == expected
    assert len(set(expected.values())) > 1, "the recording has users whose maximum differs"


@pytest.mark.parametrize("name", REPORTS)
def test_final_grade_is_value_over_that_users_maximum(db_session: Session, name: str) -> None:
    """Every final grade equals value / own maximum x 20 and lies in [0, 20]; nobody is
    clipped (no recorded total exceeds its own maximum, so clipping would be a wrong max)."""
    payload = _payload(name)
    finals = _finals(db_session, _store(db_session, payload, 2))
    for user in payload["usergrades"]:
        total = _total(user)
        if total["graderaw"] is None:
            assert np.isnan(finals[user["userid"]])
            continue
        unclipped = total["graderaw"] / total["grademax"] * SCALE
        assert unclipped <= SCALE
        assert finals[user["userid"]] == pytest.approx(unclipped, abs=1e-12)
    graded = finals.dropna()
    assert ((graded >= 0) & (graded <= SCALE)).all()


def test_full_marks_are_full_marks_with_or_without_the_quiz(db_session: Session) -> None:
    """A quiz-taker at 120/120 and a non-taker at 100/100 both end at 20/20, whichever comes
    last in the report (the old sync scaled everyone by the last user's maximum)."""
    payload = _payload(REPORTS[1])
    taker = next(u for u in payload["usergrades"] if _total(u)["grademax"] == 120)
    other = next(u for u in payload["usergrades"] if _total(u)["grademax"] == 100)
    for user in (taker, other):
        _total(user)["graderaw"] = float(_total(user)["grademax"])
    reordered = copy.deepcopy(payload)
    reordered["usergrades"] = [u for u in payload["usergrades"] if u is not other] + [other]
    for moodle_id, report in ((4, payload), (5, reordered)):
        finals = _finals(db_session, _store(db_session, report, moodle_id))
        assert finals[taker["userid"]] == SCALE
        assert finals[other["userid"]] == SCALE


@pytest.mark.parametrize("name", REPORTS)
def test_scale_does_not_depend_on_the_order_of_users(db_session: Session, name: str) -> None:
    payload = _payload(name)
    reversed_payload = copy.deepcopy(payload)
    reversed_payload["usergrades"].reverse()
    forward = _store(db_session, payload, 2)
    backward = _store(db_session, reversed_payload, 3)
    pd.testing.assert_series_equal(
        _finals(db_session, forward).sort_index(), _finals(db_session, backward).sort_index()
    )
    items = [
        db_session.scalar(
            select(GradeItem.grademax).where(
                GradeItem.course_id == c.id, GradeItem.itemtype == "course"
            )
        )
        for c in (forward, backward)
    ]
    # The item's and the course's maximum is the full course's (120), not the last user's.
    assert items == [120.0, 120.0]
    assert forward.grade_max == backward.grade_max == 120.0


def test_training_labels_use_each_users_maximum() -> None:
    """`build_training_set`'s grade (the label, and the "actual" grade of every report) is
    value / own maximum x scale."""
    roster = pd.DataFrame({"userid": np.array([1, 2, 3], dtype=np.int64)})
    events = from_standard_log(pd.DataFrame(columns=STANDARD_LOG_COLUMNS), courseid=2)
    offering = Offering(
        offering_id="o",
        events=events,
        roster=roster,
        course_start=pd.Timestamp("2026-09-01", tz="UTC"),
        course_end=pd.Timestamp("2026-12-01", tz="UTC"),
        grades=pd.Series([120.0, 100.0, 60.0], index=[1, 2, 3]),
        grade_max=100.0,
        grade_maxes=pd.Series([120.0, 100.0, np.nan], index=[1, 2, 3]),
    )
    training = build_training_set([offering], checkpoints=(1.0,), scale=SCALE)
    assert training.grade.tolist() == [20.0, 20.0, 12.0]


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=1.0, max_value=1000.0),
            st.floats(min_value=0.0, max_value=1.0),
        ),
        min_size=1,
        max_size=50,
    ),
    st.sampled_from([20.0, 100.0, 10.0]),
)
@example([(120.0, 1.0), (100.0, 1.0)], 20.0)
def test_final_grades_property(cases: list[tuple[float, float]], scale: float) -> None:
    """For any per-user maxima, a value within its maximum maps to value / max x scale in
    [0, scale]; one above its maximum (Moodle's "unlimited grades") is capped at scale."""
    maxima = np.array([m for m, _ in cases])
    values = np.array([m * share for m, share in cases])
    out = final_grades(values, maxima, 0.0, scale)
    assert np.allclose(out, values / maxima * scale)
    assert ((out >= 0) & (out <= scale)).all()
    assert (final_grades(maxima * 1.5, maxima, 0.0, scale) == scale).all()
    assert np.isnan(final_grades(np.array([np.nan]), np.array([100.0]), 0.0, scale)).all()

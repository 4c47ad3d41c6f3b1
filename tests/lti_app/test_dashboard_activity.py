"""Weekly activity counted in SQL agrees with counting the scoring's own event frame.

The reference is what the dashboards computed before the count moved into the database: the
offering `load_offering` gives the scoring (canonical events, the roster's students), annotated
with `ml.events.annotate` and grouped per student, week and category in pandas.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from lti_app.models import Course, MoodleSite
from lti_app.services import dashboard
from lti_app.services.course_data import load_offering, store_simulated_course, student_roster
from ml.events import annotate
from simulation.course import SimulatedCourse, simulate_course

_WEEK = pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def simulated() -> SimulatedCourse:
    return simulate_course(n_past=2, n_students=30, seed=5, current_progress=0.6)


def _current(session: Session, simulated: SimulatedCourse) -> Course:
    site = MoodleSite(base_url="https://moodle.activity.example")
    session.add(site)
    session.flush()
    current, _ = store_simulated_course(session, site, simulated)
    return current


def _reference(session: Session, course: Course) -> tuple[pd.DataFrame, int]:
    offering = load_offering(session, course, with_grades=False)
    roster = student_roster(session, course)
    events = offering.events
    weeks = max(1, int((events["time"].max() - offering.course_start) / _WEEK) + 1)
    events = events.assign(category=annotate(events)["category"].astype(str).to_numpy())
    events = events[events["userid"].isin(roster["userid"])]
    week = ((events["time"] - offering.course_start) / _WEEK).astype("float64").clip(lower=0)
    frame = pd.DataFrame(
        {
            "userid": events["userid"].to_numpy(dtype=np.int64),
            "week": (np.floor(week.to_numpy()) + 1).astype(np.int64),
            "category": events["category"].to_numpy(),
        }
    )
    counts = frame.groupby(["userid", "week", "category"]).size().rename("n").reset_index()
    counts = counts.merge(roster, on="userid", how="left")
    return counts[["userid", "person_id", "week", "category", "n"]], weeks


def test_sql_counts_match_the_event_frame(db_session: Session, simulated: SimulatedCourse) -> None:
    course = _current(db_session, simulated)
    expected, weeks = _reference(db_session, course)
    activity = dashboard.weekly_activity(db_session, course)
    assert activity.weeks == weeks >= 2
    pd.testing.assert_frame_equal(
        activity.counts.reset_index(drop=True), expected, check_dtype=False
    )
    assert activity.counts["category"].nunique() > 2
    # All kinds together: the same totals per student and week, far fewer rows.
    totals = dashboard.weekly_activity(db_session, course, by_category=False)
    assert set(totals.counts["category"]) == {dashboard.ALL}
    by_week = expected.groupby(["userid", "week"])["n"].sum()
    assert (
        totals.counts.set_index(["userid", "week"])["n"].sort_index().equals(by_week.sort_index())
    )
    assert dashboard.cohort_weekly(totals).equals(dashboard.cohort_weekly(activity))
    # One student's rows (a student page): the same counts and weeks as in the whole course.
    person_id = int(expected["person_id"].iloc[0])
    own = dashboard.weekly_activity(db_session, course, person_id=person_id)
    assert own.weeks == weeks
    assert list(own.students["person_id"]) == [person_id]
    pd.testing.assert_frame_equal(
        dashboard.student_weekly(own, person_id),
        dashboard.student_weekly(activity, person_id),
    )
    assert not own.counts.empty
    # Somebody who is not a student of the course has no rows, not everybody's.
    nobody = dashboard.weekly_activity(db_session, course, person_id=-1)
    assert nobody.counts.empty
    assert nobody.students.empty


def test_events_before_the_start_count_in_week_one_and_teachers_never(
    db_session: Session, simulated: SimulatedCourse
) -> None:
    course = _current(db_session, simulated)
    before = dashboard.weekly_activity(db_session, course)
    assert course.start_at is not None
    # Move the course start later by ten days: everything earlier falls into week 1.
    course.start_at = course.start_at + timedelta(days=10)
    db_session.flush()
    expected, weeks = _reference(db_session, course)
    after = dashboard.weekly_activity(db_session, course)
    assert after.weeks == weeks < before.weeks
    pd.testing.assert_frame_equal(after.counts.reset_index(drop=True), expected, check_dtype=False)
    assert after.counts["n"].sum() == before.counts["n"].sum()  # nothing lost, nothing added
    assert set(after.counts["person_id"]) <= set(after.students["person_id"])


def test_a_course_without_dates_counts_from_its_first_event(
    db_session: Session, simulated: SimulatedCourse
) -> None:
    course = _current(db_session, simulated)
    course.start_at = course.end_at = None
    db_session.flush()
    expected, weeks = _reference(db_session, course)
    activity = dashboard.weekly_activity(db_session, course)
    assert activity.weeks == weeks
    pd.testing.assert_frame_equal(
        activity.counts.reset_index(drop=True), expected, check_dtype=False
    )


def test_a_course_with_neither_dates_nor_events_has_no_weeks(db_session: Session) -> None:
    site = MoodleSite(base_url="https://moodle.empty.example")
    db_session.add(site)
    db_session.flush()
    course = Course(site_id=site.id, moodle_course_id=999)
    db_session.add(course)
    db_session.flush()
    activity = dashboard.weekly_activity(db_session, course)
    assert activity.weeks == 0
    assert activity.counts.empty

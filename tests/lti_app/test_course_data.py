"""Simulated courses go into the database as the sync would store them, and come back out as
the same `ml` offerings: features computed from the DB equal those from the simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from lti_app.models import MoodleSite
from lti_app.services.course_data import load_offering, store_simulated_course
from lti_app.services.courses import past_offerings
from ml.features import compute_features
from simulation.course import SimulatedCourse, simulate_course


@pytest.fixture(scope="module")
def simulated() -> SimulatedCourse:
    return simulate_course(n_past=2, n_students=12, seed=7, current_progress=0.4)


def test_roundtrip_through_the_database(db_session: Session, simulated: SimulatedCourse) -> None:
    site = MoodleSite(base_url="https://sim.example.org")
    db_session.add(site)
    db_session.flush()
    current, past = store_simulated_course(db_session, site, simulated)
    assert [p.id for p in past_offerings(db_session, current.id)] == [p.id for p in past]

    assert simulated.current is not None
    for course, off in [*zip(past, simulated.past, strict=True), (current, simulated.current)]:
        expected = off.to_offering()
        loaded = load_offering(db_session, course, with_grades=not off.is_current)
        assert len(loaded.events) == len(expected.events) > 0
        assert sorted(loaded.roster["userid"]) == sorted(expected.roster["userid"])
        assert loaded.course_start == expected.course_start
        assert loaded.course_end == expected.course_end
        if not off.is_current:
            pd.testing.assert_series_equal(
                loaded.grades.sort_index(),
                expected.grades.sort_index().astype(float),
                check_names=False,
                check_index_type=False,
            )
            assert loaded.grade_max == expected.grade_max
        as_of = expected.course_start + (expected.course_end - expected.course_start) * 0.3
        mine = compute_features(loaded.events, loaded.roster, as_of, loaded.course_start,
                                loaded.course_end)  # fmt: skip
        theirs = compute_features(expected.events, expected.roster, as_of,
                                  expected.course_start, expected.course_end)  # fmt: skip
        pd.testing.assert_frame_equal(mine.sort_index(), theirs.sort_index(), check_dtype=False)
        assert np.isfinite(mine.to_numpy(dtype=float)).all()


def test_events_after_until_are_not_loaded(db_session: Session, simulated: SimulatedCourse) -> None:
    site = MoodleSite(base_url="https://sim2.example.org")
    db_session.add(site)
    db_session.flush()
    _, past = store_simulated_course(db_session, site, simulated)
    full = load_offering(db_session, past[0])
    cut = full.course_start + (full.course_end - full.course_start) / 2
    half = load_offering(db_session, past[0], until=cut.to_pydatetime())
    assert 0 < len(half.events) < len(full.events)
    assert half.events["time"].max() <= cut


def test_the_column_wise_read_equals_the_rows(db_session: Session) -> None:
    """`load_log_frame` reads events column-wise (COPY on PostgreSQL, the driver's tuples on
    SQLite); the canonical events it gives equal those of a plain ORM read of the same rows,
    rows without a Moodle log id (a CSV import), without a related user, with an empty
    component and at the `until` bound included."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from lti_app.models import Course, LogEvent
    from lti_app.services.course_data import load_log_frame
    from ml.events import READ_LOG_COLUMNS, from_standard_log

    simulated = simulate_course(n_past=0, n_students=25, seed=5, current_progress=0.5)
    site = MoodleSite(base_url="https://moodle.example.invalid", name="test")
    db_session.add(site)
    db_session.flush()
    course = store_simulated_course(db_session, site, simulated)[0]
    assert isinstance(course, Course)
    bound = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
    base = {"site_id": site.id, "courseid": course.moodle_course_id, "action": "viewed",
            "target": "course", "crud": "r", "edulevel": 2, "contextlevel": 50,
            "contextinstanceid": course.moodle_course_id, "origin": "web",
            "source": "csv"}  # fmt: skip
    user = int(simulated.offerings[0].roster["userid"].iloc[0])
    db_session.add_all(
        [
            LogEvent(**base, moodle_log_id=None, content_hash="a" * 64, userid=user,
                     eventname="\\core\\event\\course_viewed", component="", timecreated=bound),
            LogEvent(**base, moodle_log_id=None, content_hash="b" * 64, userid=user,
                     relateduserid=user, eventname="\\core\\event\\course_viewed",
                     component="core", timecreated=bound + 1),
            LogEvent(**base, moodle_log_id=None, content_hash="c" * 64, userid=user,
                     eventname="\\core\\event\\course_viewed", component='x"y,z',
                     timecreated=bound - 1),
        ]
    )  # fmt: skip
    db_session.flush()
    until = datetime.fromtimestamp(bound, UTC)
    fast = load_log_frame(db_session, course, until)
    columns = [LogEvent.moodle_log_id.label("id")] + [
        getattr(LogEvent, c) for c in READ_LOG_COLUMNS
    ]
    rows = db_session.execute(
        select(*columns).where(
            LogEvent.site_id == site.id,
            LogEvent.courseid == course.moodle_course_id,
            LogEvent.timecreated <= bound,
        )
    ).all()
    slow = pd.DataFrame(rows, columns=["id", *READ_LOG_COLUMNS])
    assert len(fast) == len(slow) > 1000
    assert int(fast["id"].isna().sum()) == 2  # the CSV rows up to the bound, not the one after
    assert (fast["component"] == 'x"y,z').sum() == 1  # quoted through the CSV
    got = from_standard_log(fast, courseid=course.moodle_course_id)
    want = from_standard_log(slow, courseid=course.moodle_course_id)
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want.reset_index(drop=True), check_categorical=False
    )
    # An empty course reads as an empty frame with the same columns.
    other = Course(site_id=site.id, moodle_course_id=999, shortname="E")
    db_session.add(other)
    db_session.flush()
    empty = load_log_frame(db_session, other)
    assert empty.empty
    assert list(empty.columns) == list(fast.columns)

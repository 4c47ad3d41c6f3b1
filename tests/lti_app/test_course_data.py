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

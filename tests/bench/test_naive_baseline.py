"""The benchmark's naive baseline and ml.features agree, so the speed-up it reports compares
two implementations of the same features (``bench/naive.py``; ``make bench`` asserts it too)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.naive import baseline_feature_names, compare, naive_features
from bench.peers import pandas_features, polars_features
from ml.features import compute_features
from simulation.course import simulate_course


@pytest.mark.parametrize("tz", ["Europe/Paris", "UTC"])
def test_naive_baseline_equals_compute_features(tz: str) -> None:
    # A course in progress, as the benchmark's datasets are; the term crosses the October
    # daylight-saving change in Paris, so local days and hours are exercised.
    off = simulate_course(n_past=0, n_students=40, seed=11, current_progress=0.6).offerings[0]
    assert off.now is not None
    offering = off.to_offering()
    fast = compute_features(
        offering.events,
        offering.roster,
        off.now,
        offering.course_start,
        offering.course_end,
        tz=tz,
        course_modules=offering.course_modules,
    )
    slow = naive_features(offering.events, offering.roster["userid"].tolist(), off.now, tz=tz)
    assert list(slow.columns) == baseline_feature_names()
    assert set(slow.columns) <= set(fast.columns)
    assert len(slow) == len(offering.roster)
    assert slow["n_actions"].sum() > 1000  # a real workload, not an empty course
    assert compare(slow, fast) == 0.0


@pytest.mark.parametrize("peer", [pandas_features, polars_features])
@pytest.mark.parametrize("tz", ["Europe/Paris", "UTC"])
def test_the_real_peers_compute_the_same_features(peer: object, tz: str) -> None:
    """The pandas group-by and polars peers (#19, item 8) give our values, students without
    events included (zero counts, undefined hours and intervals)."""
    off = simulate_course(n_past=0, n_students=40, seed=11, current_progress=0.6).offerings[0]
    assert off.now is not None
    offering = off.to_offering()
    roster = [*offering.roster["userid"].tolist(), 999_999]  # one who never logged in
    fast = compute_features(
        offering.events,
        roster,
        off.now,
        offering.course_start,
        offering.course_end,
        tz=tz,
        course_modules=offering.course_modules,
    )
    theirs = peer(offering.events, roster, off.now, tz=tz)  # type: ignore[operator]
    assert list(theirs.columns) == baseline_feature_names()
    assert theirs.loc[999_999, "n_actions"] == 0
    assert np.isnan(theirs.loc[999_999, "mean_hour"])
    assert compare(theirs, fast) < 1e-9


def test_compare_reports_a_disagreement() -> None:
    off = simulate_course(n_past=0, n_students=10, seed=3, current_progress=0.3).offerings[0]
    assert off.now is not None
    offering = off.to_offering()
    fast = compute_features(
        offering.events, offering.roster, off.now, offering.course_start, offering.course_end
    )
    slow = naive_features(offering.events, offering.roster["userid"].tolist(), off.now)
    first = slow.index[slow["n_actions"].to_numpy() > 1][0]
    slow.loc[first, "total_time_min"] = float(slow.loc[first, "total_time_min"]) + 1.0
    with pytest.raises(AssertionError, match="total_time_min"):
        compare(slow, fast)
    slow.loc[first, "mean_hour"] = np.nan
    with pytest.raises(AssertionError, match="undefined"):
        compare(slow, fast)

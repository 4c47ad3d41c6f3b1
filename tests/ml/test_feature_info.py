"""`ml.feature_info`: one description per feature, and ranges that hold every value the
features can take."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.dataset import TrainingSet
from ml.feature_info import CONTROLLABLE, FEATURES, HORIZON_DAYS, FeatureInfo, info
from ml.features import Z_FEATURES, feature_names


def test_every_base_feature_is_described_once() -> None:
    base = [f for f in feature_names() if not f.startswith("z_")]
    assert sorted(base) == sorted(FEATURES)
    assert all(name == i.name for name, i in FEATURES.items())
    assert {f"z_{f}" for f, i in FEATURES.items() if i.z_scored} == {f"z_{f}" for f in Z_FEATURES}


def test_controllable_features_are_the_what_if_levers() -> None:
    assert {f for f, i in FEATURES.items() if i.controllable} == set(CONTROLLABLE)
    assert len(set(CONTROLLABLE)) == len(CONTROLLABLE)
    # Studying more raises each lever, except the days since the last visit, which it lowers.
    assert {f: info(f).effort for f in CONTROLLABLE} == {
        f: (-1 if f == "days_since_last" else 1) for f in CONTROLLABLE
    }


def test_values_every_simulated_checkpoint_produces_are_in_range(
    all_checkpoints: TrainingSet,
) -> None:
    """Nine simulated offerings at every checkpoint: each value of each feature is inside its
    range (or NaN where the feature documents it: no events to average)."""
    X = all_checkpoints.X
    for name, feature in FEATURES.items():
        values = X[name].to_numpy(dtype=float)
        known = values[~np.isnan(values)]
        if name not in {"mean_hour", "mean_interval_h"}:
            assert known.size == values.size, name
        assert ((known >= feature.minimum) & (known <= feature.maximum)).all(), name


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1e-9, 1e308])
def test_contains_refuses_non_finite_and_out_of_range(value: float) -> None:
    assert not info("active_days").contains(value)


def test_range_is_closed_and_readable() -> None:
    days = info("active_days")
    assert days.contains(0)
    assert days.contains(HORIZON_DAYS)
    assert days.range_text() == f"0 to {HORIZON_DAYS} (days)"
    assert info("share_activities").range_text() == "0 to 1 (share)"


@pytest.mark.parametrize(("low", "high"), [(1, 0), (0, math.inf), (math.nan, 1)])
def test_a_range_must_be_finite_and_ordered(low: float, high: float) -> None:
    with pytest.raises(ValueError, match="x"):
        FeatureInfo("x", "count", low, high)

"""`ml.feature_info`: one description per feature, and ranges that hold every value the
features can take."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from babel.messages.extract import extract_from_file

import ml.feature_info
from ml.dataset import TrainingSet
from ml.feature_info import (
    CONTROLLABLE,
    CSV_ENGAGEMENT,
    ENGAGEMENT,
    FEATURES,
    HORIZON_DAYS,
    SENSITIVITY,
    FeatureInfo,
    info,
)
from ml.features import Z_FEATURES, feature_names

ROOT = Path(__file__).resolve().parents[2]


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


def test_every_feature_has_its_own_label_and_babel_extracts_each() -> None:
    """A label is the msgid the pages translate: present, one per feature (two features shown
    under one name could not be told apart), and marked where Babel's extraction sees it (a
    label built at run time would reach the pages untranslated)."""
    labels = [i.label for i in FEATURES.values()]
    assert all(labels)
    assert len(set(labels)) == len(labels)
    path = Path(ml.feature_info.__file__)
    extracted = {message for _, message, _, _ in extract_from_file("python", str(path))}
    assert set(labels) <= extracted


def test_the_feature_tuples_name_features_they_can_show() -> None:
    assert set(ENGAGEMENT) <= set(FEATURES)
    # The CSV writes each student's engagement record: a column outside it would stay empty.
    assert set(CSV_ENGAGEMENT) <= set(ENGAGEMENT)
    # A sensitivity curve sweeps a lever, which the what-if sliders next to it move.
    assert set(SENSITIVITY) <= set(CONTROLLABLE)
    for names in (CONTROLLABLE, ENGAGEMENT, CSV_ENGAGEMENT, SENSITIVITY):
        assert len(set(names)) == len(names)


def test_a_lever_step_fits_its_range() -> None:
    for name in CONTROLLABLE:
        feature = info(name)
        assert 0 < feature.step <= feature.maximum - feature.minimum, name


def _feature_name_lists(path: Path, names: set[str]) -> list[int]:
    """Lines of `path` holding a tuple, list, set or dict keyed by two or more feature names."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            items: list[ast.expr | None] = list(node.elts)
        elif isinstance(node, ast.Dict):
            items = list(node.keys)
        else:
            continue
        hits = [i for i in items if isinstance(i, ast.Constant) and i.value in names]
        if len(hits) >= 2:
            found.append(node.lineno)
    return found


def test_no_other_module_lists_feature_names() -> None:
    """Feature facts are declared here once; a page, the API or a model keeping its own list of
    features would drift from it."""
    names = set(FEATURES) | {i.z_name for i in FEATURES.values()}
    allowed = {ROOT / "ml" / "feature_info.py", ROOT / "ml" / "features.py"}
    lists = {
        str(path.relative_to(ROOT)): lines
        for package in ("lti_app", "ml", "simulation")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path not in allowed and (lines := _feature_name_lists(path, names))
    }
    assert lists == {}

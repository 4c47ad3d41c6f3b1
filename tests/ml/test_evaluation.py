"""Metrics on hand-computed cases, bootstrap CIs, permutation importance, early warning."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression
from sklearn.metrics import f1_score, r2_score, roc_auc_score

from ml import evaluation
from ml.dataset import TrainingSet
from ml.evaluation import (
    _auc,
    bootstrap_ci,
    calibration_curve_data,
    classification_metrics,
    early_warning_curve,
    ece_mce,
    fold_baselines,
    gain_gate,
    permutation_importance_tables,
)
from ml.models import RegressionModel


def test_ece_and_mce_by_hand() -> None:
    # bin [0.1, 0.2): predicted 0.15 twice, observed 1 of 2 -> gap 0.35
    # bin [0.8, 0.9]: predicted 0.85 twice, observed 2 of 2 -> gap 0.15
    y = np.array([0, 1, 1, 1])
    p = np.array([0.15, 0.15, 0.85, 0.85])
    ece, mce = ece_mce(y, p, n_bins=10)
    assert ece == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)
    assert mce == pytest.approx(0.35)
    curve = calibration_curve_data(y, p, n_bins=10)
    assert curve["count"].tolist() == [2, 2]
    assert curve["fraction_positive"].tolist() == [0.5, 1.0]


def test_perfect_calibration_has_zero_ece() -> None:
    y = np.array([0, 1, 0, 1])
    assert ece_mce(y, np.full(4, 0.5)) == (0.0, 0.0)


def test_classification_metrics_match_their_definitions() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.6, 0.1, 0.4, 0.7])
    m = classification_metrics(y, p, threshold=0.5)
    assert m["confusion"] == {"tn": 3, "fp": 1, "fn": 1, "tp": 3}
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["npv"] == pytest.approx(3 / 4)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(f1_score(y, p >= 0.5))
    assert m["auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    json.dumps(m)


def test_bootstrap_ci_brackets_the_estimate_and_narrows_with_data() -> None:
    rng = np.random.default_rng(0)
    small = rng.normal(size=50)
    large = rng.normal(size=2000)
    point, lo, hi = bootstrap_ci(np.mean, small, n_boot=500)
    assert lo < point < hi
    _, lo_l, hi_l = bootstrap_ci(np.mean, large, n_boot=500)
    assert hi_l - lo_l < (hi - lo) / 3


@pytest.mark.parametrize("name", ["_mae", "_rmse", "_r2", "_brier", "ece"])
@pytest.mark.parametrize("cells", [2_000_000, 50])
def test_a_rowwise_bootstrap_is_the_loop_over_resamples(
    name: str, cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The metrics computed for a block of resamples at once give the CI the one-by-one loop
    gives (the same draws), with one block or many (the memory bound), including a resample
    whose R² is undefined (one value repeated)."""
    monkeypatch.setattr(evaluation, "_BOOT_CELLS", cells)
    metric = getattr(evaluation, name)
    rng = np.random.default_rng(3)
    for n in (2, 7, 300):
        chance = name in ("_brier", "ece")
        y = rng.integers(0, 2, n).astype(float) if chance else rng.normal(10, 3, n)
        # chances on bin edges too (0, 0.1, ..., 1): digitize's side matters there
        pred = np.round(rng.random(n), 1) if chance else y + rng.normal(0, 2, n)

        def plain(a: np.ndarray, b: np.ndarray, f: Any = metric) -> float:
            return float(f(a, b))  # not the same object: bootstrap_ci loops over resamples

        np.testing.assert_allclose(
            bootstrap_ci(metric, y, pred, n_boot=400),
            bootstrap_ci(plain, y, pred, n_boot=400),
            rtol=1e-12,
            atol=1e-15,
        )


def test_gain_gate_needs_a_ci_above_zero() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(10, 3, 300)
    good = y + rng.normal(0, 1, 300)
    base = np.full(300, y.mean())

    def mae(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.abs(a - b)))

    assert gain_gate(mae, y, good, base, n_boot=300)["passed"] is True
    noise = base + rng.normal(0, 0.01, 300)  # no better than the baseline
    gate = gain_gate(mae, y, noise, base, n_boot=300)
    assert gate["passed"] is False
    assert gate["ci_low"] <= 0


def test_fold_baselines_never_see_their_own_fold() -> None:
    y = np.array([1.0, 1.0, 5.0, 5.0, 9.0, 9.0])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    base = fold_baselines(y, groups, n_splits=3)
    assert base[0] == pytest.approx(7.0)
    assert base[4] == pytest.approx(3.0)


def test_permutation_importance_separates_signal_from_noise() -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"signal": rng.normal(size=400), "noise": rng.normal(size=400)})
    y = 3 * X["signal"].to_numpy() + rng.normal(0, 0.5, 400)
    model = LinearRegression().fit(X, y)
    table = permutation_importance_tables(model.predict, X, {"r2": (y, r2_score)},
                                          n_repeats=20)["r2"]  # fmt: skip
    col = {
        c: dict(zip(table["feature"], table[c].to_numpy(dtype=float), strict=True))
        for c in ("importance", "p_value", "ci_low", "ci_high")
    }
    assert col["importance"]["signal"] > 1.0
    assert col["p_value"]["signal"] == pytest.approx(1 / 21)
    assert col["ci_low"]["signal"] > 0
    assert col["p_value"]["noise"] > 0.2
    assert col["ci_low"]["noise"] <= 0 <= col["ci_high"]["noise"]


@pytest.mark.parametrize("random_state", [0, 7])
def test_permutation_importance_is_scikit_learns(
    regressor: RegressionModel, train_set: TrainingSet, random_state: int
) -> None:
    """The stacked permutations are scikit-learn's ``permutation_importance``'s (same seed,
    same shuffles): the same drops, for the grade's MAE and the chance's AUC alike, on the
    selected model (an ensemble with gradient boosting here, so no linear shortcut)."""
    X = train_set.X[regressor.features]
    y, passed = train_set.grade.to_numpy(), train_set.passed.to_numpy()

    def neg_mae(yy: np.ndarray, pred: np.ndarray) -> float:
        return -float(np.mean(np.abs(yy - pred)))

    ours = permutation_importance_tables(
        regressor.pipeline.predict, X, {"mae": (y, neg_mae), "auc": (passed, _auc)},
        n_repeats=6, random_state=random_state,
    )  # fmt: skip
    for name, target, scoring in (
        ("mae", y, "neg_mean_absolute_error"),
        ("auc", passed, lambda est, XX, yy: roc_auc_score(yy, est.predict(XX))),
    ):
        theirs = permutation_importance(regressor.pipeline, X, target, scoring=scoring,
                                        n_repeats=6, random_state=random_state)  # fmt: skip
        table = ours[name].set_index("feature").loc[list(X.columns)]
        np.testing.assert_allclose(table["importance"], theirs.importances_mean, atol=1e-9)
        np.testing.assert_allclose(table["std"], theirs.importances_std, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_the_rank_auc_is_roc_auc_score(seed: int) -> None:
    """With ties (rounded scores), either label coding and unbalanced classes."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 200))
    y = rng.random(n) < rng.uniform(0.1, 0.9)
    y[:2] = [True, False]
    p = np.round(rng.random(n) + 0.5 * y, int(rng.integers(0, 3)))
    for labels in (y, y.astype(int), np.where(y, 3, -1)):
        assert _auc(labels, p) == pytest.approx(roc_auc_score(labels, p), abs=1e-12)
    assert np.isnan(_auc(np.ones(n), p))
    with pytest.raises(ValueError, match="NaN"):  # as roc_auc_score
        _auc(labels, np.where(np.arange(n) == 0, np.nan, p))


def test_early_warning_curve_improves_as_the_course_goes_on(
    all_checkpoints: TrainingSet,
) -> None:
    curve = early_warning_curve(all_checkpoints, checkpoints=[0.1, 1.0], n_boot=200)
    assert curve["checkpoint"].tolist() == [0.1, 1.0]
    assert curve["r2"].iloc[-1] > curve["r2"].iloc[0]
    assert curve["auc"].iloc[-1] > curve["auc"].iloc[0]
    assert curve["mae"].iloc[-1] < curve["mae_baseline"].iloc[-1]
    assert bool(curve["regression_gate"].iloc[-1])
    # out of offering: every offering predicted by models trained on the others
    assert (curve["n_offerings"] == all_checkpoints.groups.nunique()).all()
    assert ((curve["ece_ci_low"] <= curve["ece_ci_high"]) & (curve["ece"] < 0.2)).all()
    assert curve["coverage"].between(0.8, 1.0).all()


def test_calibration_bins_of_few_students_are_merged() -> None:
    y = np.array([0, 1] * 30 + [1] * 5)
    p = np.r_[np.full(60, 0.55), np.full(5, 0.95)]
    merged = calibration_curve_data(y, p, min_count=20)
    assert merged["count"].tolist() == [65]  # the 5 students at 0.95 join the bin before
    assert merged["mean_predicted"].iloc[0] == pytest.approx(p.mean())
    plain = calibration_curve_data(y, p)
    assert plain["count"].tolist() == [60, 5]
    assert ece_mce(y, p)[0] == pytest.approx((60 * 0.05 + 5 * 0.05) / 65)

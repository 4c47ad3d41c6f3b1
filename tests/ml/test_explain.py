"""Top factors, sensitivity curves and what-if predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from ml.dataset import TrainingSet
from ml.explain import (
    contributions,
    grade_factors,
    pass_factors,
    sensitivity_curve,
    top_factors,
    what_if,
)
from ml.models import ClassificationModel, RegressionModel


def test_linear_contributions_are_exact_and_signed() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["a", "b", "c"])
    y = 2 * X["a"] - 3 * X["b"] + 0.0 * X["c"]
    model = LinearRegression().fit(X, y)
    row = pd.DataFrame({"a": [1.0], "b": [1.0], "c": [5.0]})
    contrib = contributions(model.predict, row, X)
    ref = X.median()
    assert contrib.loc[0, "a"] == pytest.approx(2 * (1 - ref["a"]))
    assert contrib.loc[0, "b"] == pytest.approx(-3 * (1 - ref["b"]))
    assert contrib.loc[0, "c"] == pytest.approx(0.0, abs=1e-9)
    # additive for a linear model: the contributions explain the gap to the reference student
    gap = model.predict(row)[0] - model.predict(ref.to_frame().T)[0]
    assert contrib.sum(axis=1).iloc[0] == pytest.approx(gap)
    factors = top_factors(model.predict, row, X, k=2)
    assert factors["feature"].tolist() == ["b", "a"]
    assert factors["contribution"].iloc[0] < 0 < factors["contribution"].iloc[1]


def test_grade_and_pass_factors_for_a_simulated_student(
    regressor: RegressionModel,
    classifier: ClassificationModel,
    train_set: TrainingSet,
    test_set: TrainingSet,
) -> None:
    worst = test_set.X.iloc[[int(np.argmin(test_set.grade.to_numpy()))]]
    factors = grade_factors(regressor, worst, train_set.X, k=5)
    assert len(factors) == 5
    assert factors["rank"].tolist() == [1, 2, 3, 4, 5]
    assert (np.diff(factors["contribution"].abs().to_numpy()) <= 1e-12).all()
    # the student with the lowest grade is pulled down, not up, by the main factors
    assert factors["contribution"].sum() < 0
    p_factors = pass_factors(classifier, worst, train_set.X, k=3)
    assert len(p_factors) == 3


def test_sensitivity_curve_sweeps_the_observed_range(
    regressor: RegressionModel,
    classifier: ClassificationModel,
    train_set: TrainingSet,
    test_set: TrainingSet,
) -> None:
    x = test_set.X.iloc[[0]]
    curve = sensitivity_curve(
        x, "n_active", train_set.X, regressor=regressor, classifier=classifier, n_points=15
    )
    assert len(curve) == 15
    assert curve["value"].iloc[0] == train_set.X["n_active"].min()
    assert curve["value"].iloc[-1] == train_set.X["n_active"].max()
    assert (curve["grade_low"] <= curve["grade"]).all()
    assert (curve["grade"] <= curve["grade_high"]).all()
    assert curve["grade"].iloc[-1] != curve["grade"].iloc[0]  # the feature matters
    assert curve["p_pass"].between(0, 1).all()
    with pytest.raises(ValueError, match="one student"):
        sensitivity_curve(test_set.X.iloc[:2], "n_active", train_set.X, regressor=regressor)


def test_what_if_more_active_work(
    regressor: RegressionModel,
    mlp_classifier: ClassificationModel,
    train_set: TrainingSet,
    test_set: TrainingSet,
) -> None:
    x = test_set.X.iloc[[int(np.argmin(test_set.grade.to_numpy()))]]
    high = float(train_set.X["n_active"].quantile(0.9))
    z = (high - train_set.X["n_active"].mean()) / train_set.X["n_active"].std(ddof=0)
    result = what_if(
        x,
        {"n_active": high, "z_n_active": z, "days_since_last": 0.5},
        regressor=regressor,
        classifier=mlp_classifier,
        n_passes=30,
    )
    now, then = result["current"], result["what_if"]
    for state in (now, then):
        assert state["grade_low"] <= state["grade"] <= state["grade_high"]
        assert 0 <= state["p_pass_low"] <= state["p_pass_high"] <= 1
        assert state["interval_level"] == pytest.approx(0.9)
        assert state["uncertainty_method"] == "mc_dropout(30)"
    assert result["delta_grade"] > 0
    assert result["delta_p_pass"] >= 0
    with pytest.raises(KeyError, match="unknown"):
        what_if(x, {"nope": 1.0}, regressor=regressor, classifier=mlp_classifier)

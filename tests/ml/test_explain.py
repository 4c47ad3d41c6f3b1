"""Top factors, sensitivity curves and what-if predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from ml.dataset import TrainingSet
from ml.distribution import GradeDistribution
from ml.explain import (
    PassModel,
    contributions,
    grade_factors,
    pass_factors,
    sensitivity_curve,
    top_factors,
    what_if,
    what_if_row,
)
from ml.models import (
    ClassificationModel,
    PassChanceModel,
    RegressionModel,
    fit_classifier,
    fit_regressor,
)


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
    pass_model: PassChanceModel,
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
    p_factors = pass_factors(pass_model, worst, train_set.X, k=3)
    assert len(p_factors) == 3


def test_grade_and_chance_factors_never_disagree(
    regressor: RegressionModel,
    pass_model: PassChanceModel,
    train_set: TrainingSet,
    test_set: TrainingSet,
) -> None:
    """Both come from one distribution: a feature that raises the grade never lowers the
    chance; the chance's factors are points of probability of the chance shown."""
    X = test_set.X.head(25)
    grade = contributions(regressor.predict_grade, X, train_set.X)
    chance = contributions(pass_model.predict_proba, X, train_set.X)
    assert (np.sign(grade.to_numpy()) * np.sign(chance.to_numpy()) >= 0).all()
    assert (chance.abs().to_numpy() <= 1).all()


def test_sensitivity_curve_sweeps_the_observed_range(
    regressor: RegressionModel,
    pass_model: PassChanceModel,
    train_set: TrainingSet,
    test_set: TrainingSet,
) -> None:
    x = test_set.X.iloc[[0]]
    curve = sensitivity_curve(
        x, "n_active", train_set.X, regressor=regressor, classifier=pass_model, n_points=15
    )
    assert len(curve) == 15
    assert curve["value"].iloc[0] == train_set.X["n_active"].min()
    assert curve["value"].iloc[-1] == train_set.X["n_active"].max()
    assert (curve["grade_low"] <= curve["grade"]).all()
    assert (curve["grade"] <= curve["grade_high"]).all()
    assert curve["grade"].iloc[-1] != curve["grade"].iloc[0]  # the feature matters
    assert curve["p_pass"].between(0, 1).all()
    # more active work (effort +1) never lowers the grade nor the chance along the curve
    assert (np.diff(curve["grade"].to_numpy()) >= 0).all()
    assert (np.diff(curve["p_pass"].to_numpy()) >= 0).all()
    with pytest.raises(ValueError, match="one student"):
        sensitivity_curve(test_set.X.iloc[:2], "n_active", train_set.X, regressor=regressor)


def test_what_if_more_active_work(
    regressor: RegressionModel,
    pass_model: PassChanceModel,
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
        classifier=pass_model,
        n_passes=30,
    )
    now, then = result["current"], result["what_if"]
    for state in (now, then):
        assert state["grade_low"] <= state["grade"] <= state["grade_high"]
        assert 0 < state["p_pass_low"] <= state["p_pass"] <= state["p_pass_high"] < 1
        assert state["interval_level"] == pytest.approx(0.9)
        assert state["uncertainty_method"].startswith("conformal predictive distribution")
        assert (state["p_pass"] >= 0.5) == (state["grade"] >= 10.0)
    assert result["delta_grade"] > 0
    assert result["delta_p_pass"] >= 0
    with pytest.raises(KeyError, match="unknown"):
        what_if(x, {"nope": 1.0}, regressor=regressor, classifier=pass_model)


@pytest.fixture(scope="module")
def families(
    train_set: TrainingSet, mlp_classifier: ClassificationModel
) -> dict[str, RegressionModel | PassModel]:
    """One fitted model per estimator family the model search can pick (three folds: quick),
    and the trained classifiers a diagnostic may still pass."""
    X, groups = train_set.X, train_set.groups
    ridge = fit_regressor(X, train_set.grade, groups, candidates=["ridge"], n_splits=3)
    hgb = fit_regressor(X, train_set.grade, groups, candidates=["hgb"], n_splits=3)
    return {
        "ridge": ridge,
        "hgb_reg": hgb,
        "own": PassChanceModel(ridge),
        "own_hgb": PassChanceModel(hgb),
        "logistic": fit_classifier(
            X, train_set.passed, groups, candidates=["logistic"], n_splits=3
        ),
        "hgb": fit_classifier(X, train_set.passed, groups, candidates=["hgb"], n_splits=3),
        "mlp": mlp_classifier,
    }


def _reference_what_if(
    x: pd.DataFrame,
    changes: dict[str, float],
    regressor: RegressionModel,
    classifier: PassModel,
    n_passes: int,
) -> dict[str, np.ndarray]:
    """The what-if through the models' DataFrame paths (pipelines with all their checks)."""
    changed = x.copy()
    for name, value in changes.items():
        changed[name] = value
    rows = pd.concat([x, changed], ignore_index=True)
    grade, low, high = regressor.predict_interval(rows)
    unc = classifier.uncertainty(rows, n_passes=n_passes)
    return {
        "grade": grade,
        "grade_low": low,
        "grade_high": high,
        "p_pass": classifier.predict_proba(rows),
        "p_pass_mean": unc.mean,
        "p_pass_std": unc.std,
        "p_pass_low": unc.lower,
        "p_pass_high": unc.upper,
    }


@pytest.mark.parametrize("regressor_name", ["ridge", "hgb_reg"])
@pytest.mark.parametrize("classifier_name", ["own", "own_hgb", "logistic", "hgb", "mlp"])
def test_what_if_array_path_gives_the_pipelines_numbers(
    families: dict[str, RegressionModel | PassModel],
    test_set: TrainingSet,
    regressor_name: str,
    classifier_name: str,
) -> None:
    """The fast path (imputer and scaler replayed in numpy, linear models as their own
    arithmetic, checks off) answers what the fitted pipelines answer, a missing value
    included."""
    regressor, classifier = families[regressor_name], families[classifier_name]
    assert isinstance(regressor, RegressionModel)
    assert isinstance(classifier, PassChanceModel | ClassificationModel)
    x = test_set.X.iloc[[3]].copy()
    x.iloc[0, 1] = np.nan  # imputed with the training median
    changes = {"n_active": float(x["n_active"].iloc[0]) + 25.0, "days_since_last": 0.5}
    fast = what_if(x, changes, regressor=regressor, classifier=classifier, n_passes=40)
    expected = _reference_what_if(x, changes, regressor, classifier, 40)
    for i, state in enumerate((fast["current"], fast["what_if"])):
        for key, values in expected.items():
            assert state[key] == pytest.approx(values[i], rel=1e-9, abs=1e-12), key
    method = {"mlp": "mc_dropout(40)", "logistic": "fold_ensemble(3)", "hgb": "fold_ensemble(3)"}
    expected_method = method.get(classifier_name, "conformal predictive distribution")
    assert fast["what_if"]["uncertainty_method"].startswith(expected_method)
    row = what_if_row(
        x.to_numpy()[0], list(x.columns), changes,
        regressor=regressor, classifier=classifier, n_passes=40,
    )  # fmt: skip
    assert row == fast


def test_what_if_row_refuses_bad_input(
    regressor: RegressionModel, pass_model: PassChanceModel, test_set: TrainingSet
) -> None:
    cols = list(test_set.X.columns)
    values = test_set.X.to_numpy()[0]
    with pytest.raises(ValueError, match="feature values"):
        what_if_row(values[:-1], cols, {}, regressor=regressor, classifier=pass_model)
    with pytest.raises(KeyError, match="needs features"):
        what_if_row(values[1:], cols[1:], {}, regressor=regressor, classifier=pass_model)
    infinite = values.copy()
    infinite[0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        what_if_row(infinite, cols, {}, regressor=regressor, classifier=pass_model)


def test_a_student_predicted_below_zero_still_sees_what_pulls_the_grade_down() -> None:
    """The distribution holds the location on the scale (a prediction of -10/20 is read as 0 for
    every shown number), but the grade's factors come from the prediction itself: a student
    who never logged in sees which features pull the estimate down, not a row of zeros."""
    X = pd.DataFrame({"a": [10.0, 12.0, 14.0, 11.0], "b": [5.0, 6.0, 7.0, 6.5]})
    y = X.to_numpy() @ np.array([0.5, 0.3]) - 10.0
    pipeline = Pipeline([("model", LinearRegression())]).fit(X, y)
    residuals = np.random.default_rng(0).normal(0, 2, 200)
    factors = {}
    for clip in (False, True):
        model = RegressionModel(
            name="linear",
            pipeline=pipeline,
            features=["a", "b"],
            cv_table=pd.DataFrame(),
            oof_pred=np.zeros(4),
            residuals=np.abs(residuals),
            distribution=GradeDistribution(
                residuals, scale=20.0, pass_mark=10.0, location_clip=clip
            ),
        )
        never = pd.DataFrame({"a": [0.0], "b": [0.0]})
        assert model.predict(never)[0] == pytest.approx(-10.0)
        if clip:  # every shown number reads it as a prediction of 0
            shown = model.predict_interval(never)[0]
            np.testing.assert_array_equal(shown, model.distribution.median(np.zeros(1)))
        factors[clip] = grade_factors(model, never, X).set_index("feature")["contribution"]
    assert (factors[True] < 0).all()
    pd.testing.assert_series_equal(factors[True], factors[False])

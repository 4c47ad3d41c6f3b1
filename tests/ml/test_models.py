"""Selection, baselines, the gate, conformal coverage and calibration on simulator data."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_predict
from threadpoolctl import threadpool_info

from ml.dataset import TrainingSet
from ml.evaluation import (
    classification_metrics,
    cross_calibrate,
    ece_mce,
    evaluation_report,
    regression_metrics,
)
from ml.features import feature_names
from ml.models import (
    LINEAR_FAMILIES,
    REGRESSOR_NAMES,
    ClassificationModel,
    RegressionModel,
    _capped,
    _grouped_search,
    choose_threshold,
    classifier_candidates,
    conformal_quantile,
    fit_classifier,
    fit_regressor,
    make_pipeline,
    regressor_candidates,
)


@pytest.fixture(scope="module")
def report(
    train_set: TrainingSet, test_set: TrainingSet, regressor: RegressionModel
) -> dict[str, Any]:
    return evaluation_report(train_set, regressor, holdout=test_set, n_boot=300, n_repeats=3)


@pytest.fixture(scope="module")
def shuffled_report(shuffled_set: TrainingSet) -> dict[str, Any]:
    # the cheapest candidates: this is about the gate, selection is tested above
    reg = fit_regressor(
        shuffled_set.X, shuffled_set.grade, shuffled_set.groups, candidates=["ridge"]
    )
    return evaluation_report(shuffled_set, reg, n_boot=300, n_repeats=2)


def test_every_regressor_is_searched_and_the_best_cv_r2_wins(regressor: RegressionModel) -> None:
    table = regressor.cv_table
    assert set(table["model"]) == set(REGRESSOR_NAMES)
    best = table["model"].to_numpy()[int(np.argmax(table["cv_r2"].to_numpy()))]
    assert regressor.name == best
    assert {"cv_mae", "cv_rmse", "params"} <= set(table.columns)
    assert np.isfinite(regressor.oof_pred).all()


def test_classifier_selection_by_auc_then_brier(classifier: ClassificationModel) -> None:
    table = classifier.cv_table
    assert set(table["model"]) == {"logistic", "hgb", "mlp"}
    chosen = table[table["selected"]].iloc[0]
    assert chosen["model"] == classifier.name
    near = table[table["cv_auc"] >= table["cv_auc"].max() - 0.005]
    assert chosen["cv_brier"] == near["cv_brier"].min()


def test_selected_models_beat_baselines_and_pass_the_gate(report: dict[str, Any]) -> None:
    reg, clf = report["regression"], report["classification"]
    assert reg["metrics"]["mae"] < reg["baseline"]["mae"]
    assert reg["metrics"]["r2"] > 0.3
    assert reg["gate"]["ci_low"] > 0
    assert clf["metrics"]["brier"] < clf["baseline"]["brier"]
    assert clf["metrics"]["accuracy"] > clf["baseline"]["accuracy"]
    assert clf["metrics"]["auc"] > 0.75
    assert report["gate"] == {"regression": True, "classification": True, "passed": True}
    # every figure is out of offering: each offering predicted by models trained on the others
    assert report["validation"].startswith("leave one offering out")
    # and on offerings never seen during training or selection
    assert report["holdout"]["regression"]["r2"] > 0.3
    assert report["holdout"]["classification"]["auc"] > 0.75


def test_report_is_complete_and_serialisable(report: dict[str, Any]) -> None:
    text = json.dumps(report)
    assert "NaN" not in text
    for key in ("r2", "mae", "rmse", "coverage", "mean_width"):
        assert key in report["regression"]["metrics"]
    for key in ("r2", "mae", "rmse"):
        ci = report["regression"]["ci"][key]
        assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]
    clf = report["classification"]["metrics"]
    for key in ("accuracy", "precision", "recall", "f1", "auc", "specificity", "npv",
                "balanced_accuracy", "ece", "mce", "brier", "confusion"):  # fmt: skip
        assert key in clf
    curve = report["classification"]["calibration_curve"]
    assert curve
    # bins of fewer than 20 students are merged into their neighbours
    assert all(row["count"] >= 20 for row in curve)
    assert sum(row["count"] for row in curve) == report["n_students"]
    e = report["classification"]["ci"]["ece"]
    assert e["ci_low"] <= e["ci_high"]
    assert e["value"] == pytest.approx(clf["ece"])
    importance = report["permutation_importance"]["regression"]
    assert [row["feature"] for row in importance] != []
    assert sorted(row["feature"] for row in importance) == sorted(feature_names())
    assert {"feature", "importance", "ci_low", "ci_high", "p_value"} <= set(importance[0])
    assert report["permutation_importance"]["data"] == "holdout"
    # the features that drive the simulated grades come out on top
    top = {row["feature"] for row in importance[:10]}
    assert top & {"n_active", "z_n_active", "n_cat_assessment", "n_mod_quiz_attempt_submitted",
                  "n_mod_assign_assessable_submitted", "days_since_last", "z_days_since_last",
                  "active_days", "z_active_days", "share_activities", "z_share_activities",
                  "mean_interval_h"}  # fmt: skip


def test_shuffled_labels_close_the_gate(shuffled_report: dict[str, Any]) -> None:
    assert shuffled_report["gate"]["passed"] is False
    assert shuffled_report["regression"]["gate"]["passed"] is False
    assert shuffled_report["classification"]["gate"]["passed"] is False


def test_conformal_interval_covers_held_out_offerings(
    regressor: RegressionModel, test_set: TrainingSet
) -> None:
    pred, lo, hi = regressor.predict_interval(test_set.X, alpha=0.1, clip=False)
    metrics = regression_metrics(test_set.grade.to_numpy(), pred, lo, hi)
    assert 0.85 <= metrics["coverage"] <= 0.95
    # a narrower level covers less: the interval is not trivially wide
    _, lo50, hi50 = regressor.predict_interval(test_set.X, alpha=0.5, clip=False)
    narrow = regression_metrics(test_set.grade.to_numpy(), pred, lo50, hi50)
    assert narrow["coverage"] < metrics["coverage"]
    assert metrics["mean_width"] < 0.75 * test_set.scale


def test_conformal_quantile_definition() -> None:
    r = np.arange(1.0, 11.0)  # 10 residuals
    assert conformal_quantile(r, 0.1) == 10.0  # the ceil(11 * 0.9) = 10th smallest
    assert conformal_quantile(r, 0.05) == np.inf  # ceil(11 * 0.95) = 11 > 10: no finite bound
    assert conformal_quantile(np.arange(1.0, 20.0), 0.1) == 18.0  # ceil(20 * 0.9) = 18
    assert conformal_quantile(np.arange(1.0, 20.0), 0.5) == 10.0


def test_isotonic_calibration_lowers_ece_of_an_overconfident_model(
    train_set: TrainingSet, test_set: TrainingSet
) -> None:
    """The selected models are already close to calibrated on this data; the calibration step
    must repair a model that is not (boosting without regularisation is overconfident)."""
    overfit = make_pipeline(
        HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.3, min_samples_leaf=5, early_stopping=False
        ),
        scale=False,
    )
    model = fit_classifier(
        train_set.X,
        train_set.passed,
        train_set.groups,
        candidates=["overfit"],
        extra_candidates={"overfit": (overfit, {})},
    )
    y = test_set.passed.to_numpy()
    raw, _ = ece_mce(y, model.predict_proba_raw(test_set.X))
    calibrated, _ = ece_mce(y, model.predict_proba(test_set.X))
    assert calibrated < 0.7 * raw
    # out of fold as well, each fold calibrated by the others
    groups = train_set.groups.to_numpy()
    yt = train_set.passed.to_numpy()
    oof_raw, _ = ece_mce(yt, model.oof_proba_raw)
    oof_cal, _ = ece_mce(yt, cross_calibrate(model.oof_proba_raw, yt, groups))
    assert oof_cal < 0.7 * oof_raw


def test_mlp_classifier_uncertainty_and_threshold(
    mlp_classifier: ClassificationModel, test_set: TrainingSet
) -> None:
    assert mlp_classifier.name == "mlp"
    unc = mlp_classifier.uncertainty(test_set.X.head(30), n_passes=50)
    assert unc.method == "mc_dropout(50)"
    assert (unc.std > 0).any()
    assert ((unc.lower <= unc.mean) & (unc.mean <= unc.upper)).all()
    assert ((unc.lower >= 0) & (unc.upper <= 1)).all()
    metrics = classification_metrics(
        test_set.passed.to_numpy(),
        mlp_classifier.predict_proba(test_set.X),
        mlp_classifier.threshold,
    )
    assert metrics["auc"] > 0.75


def test_fold_ensemble_uncertainty_for_sklearn_classifiers(
    classifier: ClassificationModel, test_set: TrainingSet
) -> None:
    if classifier.name == "mlp":
        pytest.fail("the default selection is expected to pick a scikit-learn model here")
    unc = classifier.uncertainty(test_set.X.head(30))
    assert unc.method == "fold_ensemble(5)"
    assert (unc.std > 0).any()


def test_threshold_maximises_the_chosen_metric() -> None:
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.7, 0.3, 0.8, 0.85, 0.9, 0.95])
    f1_cut = choose_threshold(y, p, "f1")
    bal_cut = choose_threshold(y, p, "balanced_accuracy")
    assert f1_cut == pytest.approx(0.3)  # recall 1, precision 5/6
    assert bal_cut == pytest.approx(0.8)  # specificity 1, recall 4/5


def test_too_few_offerings_is_an_error(train_set: TrainingSet) -> None:
    one = np.zeros(len(train_set.grade))
    with pytest.raises(ValueError, match="at least 2 offerings"):
        fit_regressor(train_set.X, train_set.grade, one, candidates=["ridge"])


# ------------------------------------------------------------------ the search and its cost
def test_search_chooses_and_scores_as_grid_search_does(train_set: TrainingSet) -> None:
    """The hand-rolled search keeps GridSearchCV's folds, scores and choice; its out-of-fold
    predictions are those of the best configuration refitted fold by fold."""
    X, y, groups = train_set.X, train_set.grade.to_numpy(), train_set.groups.to_numpy()
    pipe, grid = regressor_candidates()["elasticnet"]
    reference = GridSearchCV(pipe, grid, cv=GroupKFold(n_splits=5), scoring="r2", refit=False).fit(
        X, y, groups=groups
    )
    splits = list(GroupKFold(n_splits=5).split(X, y, groups))
    found = _grouped_search(pipe, grid, X, y, splits, {"r2": r2_score}, select="r2", proba=False)
    assert found.params == reference.best_params_
    best = reference.best_index_
    assert found.fold_scores["r2"].mean() == pytest.approx(
        reference.cv_results_["mean_test_score"][best]
    )
    assert found.fold_scores["r2"].std() == pytest.approx(
        reference.cv_results_["std_test_score"][best]
    )
    expected = cross_val_predict(
        clone(pipe).set_params(**reference.best_params_), X, y, groups=groups, cv=GroupKFold(5)
    )
    np.testing.assert_allclose(found.oof, expected)
    assert len(found.fold_models) == 5


def test_a_grid_is_tuned_on_cut_folds_then_validated_on_whole_ones(
    train_set: TrainingSet,
) -> None:
    """The mechanism the RBF SVR used (``tune_rows``), on the elastic net's grid: the scaler
    counts the rows each fit saw."""
    X, y, groups = train_set.X, train_set.grade.to_numpy(), train_set.groups.to_numpy()
    pipe, grid = regressor_candidates()["elasticnet"]
    splits = list(GroupKFold(n_splits=5).split(X, y, groups))
    scorers = {"r2": r2_score}
    tuned = _grouped_search(
        pipe, grid, X, y, splits, scorers, select="r2", proba=False, tune_rows=60
    )
    # the configuration the cut folds prefer ...
    cut = [(_capped(train, 60, 0), test) for train, test in splits]
    on_cut = _grouped_search(pipe, grid, X, y, cut, scorers, select="r2", proba=False)
    assert tuned.params == on_cut.params
    # ... scored, predicted and kept as if it had been the only one, on the whole folds
    alone = {k: [v] for k, v in on_cut.params.items()}
    whole = _grouped_search(pipe, alone, X, y, splits, scorers, select="r2", proba=False)
    np.testing.assert_array_equal(tuned.oof, whole.oof)
    np.testing.assert_array_equal(tuned.fold_scores["r2"], whole.fold_scores["r2"])
    fitted_rows = [m.named_steps["scale"].n_samples_seen_ for m in tuned.fold_models]
    assert fitted_rows == [len(train) for train, _ in splits]
    assert not np.array_equal(tuned.oof, on_cut.oof)  # the cut folds alone predict otherwise
    model = fit_regressor(
        X, y, groups, candidates=["elasticnet"], tune_rows={"elasticnet": 60}, monotone=False
    )
    assert model.pipeline.named_steps["scale"].n_samples_seen_ == len(X)  # every row
    np.testing.assert_array_equal(model.oof_pred, tuned.oof)


_SEEN_THREADS: list[int] = []


class _ThreadRecorder(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Logistic regression that records the thread limits it was fitted under."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _ThreadRecorder:
        _SEEN_THREADS.extend(p["num_threads"] for p in threadpool_info())
        self.model_ = LogisticRegression().fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(X))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_training_runs_under_the_thread_limit(train_set: TrainingSet, n_threads: int) -> None:
    _SEEN_THREADS.clear()
    fit_classifier(
        train_set.X,
        train_set.passed,
        train_set.groups,
        candidates=["recorder"],
        extra_candidates={"recorder": (make_pipeline(_ThreadRecorder()), {})},
        n_threads=n_threads,
    )
    assert _SEEN_THREADS  # BLAS (numpy, scikit-learn) and OpenMP pools
    assert set(_SEEN_THREADS) == {n_threads}
    mlp = classifier_candidates(n_threads=n_threads)["mlp"][0][-1]
    assert mlp.n_threads == n_threads  # torch's intra-op threads during its fit


def test_the_ensemble_is_the_mean_of_its_members_on_the_same_folds(
    regressor: RegressionModel, train_set: TrainingSet
) -> None:
    """Its out-of-fold predictions are the mean of every family's (the four linear ones and the
    gradient boosting, no refit), the same as cross-validating its own pipeline on those folds,
    and its refit is the mean of the families' refits."""
    cv_r2 = dict(zip(regressor.cv_table["model"], regressor.cv_table["cv_r2"], strict=True))
    X, y, g = train_set.X, train_set.grade.to_numpy(dtype=np.float64), train_set.groups
    ens = fit_regressor(X, y, g, candidates=["ensemble"])
    members = [fit_regressor(X, y, g, candidates=[n]) for n in (*LINEAR_FAMILIES, "hgb")]
    np.testing.assert_allclose(
        ens.oof_pred, np.mean([m.oof_pred for m in members], axis=0), rtol=0, atol=1e-12
    )
    assert ens.estimator is not None
    voting = ens.estimator.named_steps["model"]
    assert [name for name, _ in voting.estimators] == [*LINEAR_FAMILIES, "hgb"]
    assert voting.weights is None
    oof = np.full(len(y), np.nan)
    for train, test in GroupKFold(n_splits=5).split(X, y, g):
        oof[test] = clone(ens.estimator).fit(X.iloc[train], y[train]).predict(X.iloc[test])
    np.testing.assert_allclose(oof, ens.oof_pred, rtol=0, atol=1e-9)
    assert np.isclose(float(cv_r2["ensemble"]), float(ens.cv_table["cv_r2"].iloc[0]))
    np.testing.assert_allclose(
        ens.predict(X), np.mean([m.predict(X) for m in members], axis=0), rtol=0, atol=1e-9
    )
    # the same five members whatever else is a candidate (a site configured with a subset)
    beside = fit_regressor(X, y, g, candidates=["ridge", "ensemble"])
    assert set(beside.cv_table["model"]) == {"ridge", "ensemble"}
    table = dict(zip(beside.cv_table["model"], beside.cv_table["cv_r2"], strict=True))
    assert np.isclose(float(table["ensemble"]), float(cv_r2["ensemble"]))  # the same OOF

"""Model selection under grouped cross-validation: grade regressors and pass classifiers.

Every search and every out-of-fold prediction uses ``GroupKFold`` on the offering, so a model
is always judged on offerings it never saw, which is the situation of a new course offering.

**Regressors.** The ARCHE prototype's Linear, Ridge, Lasso, ElasticNet and SVR, plus
HistGradientBoosting, each behind median imputation and standardisation, are tuned by
``GridSearchCV`` and the one with the best CV R² is kept (MAE and RMSE are reported too).

**Conformal intervals.** Split-conformal on out-of-fold residuals (the "CV" variant of Barber et
al., 2021, *Predictive inference with the jackknife+*): the absolute residuals of out-of-fold
predictions of the selected configuration are the conformity scores, and the interval of a new
student is the refitted model's prediction ± their ``ceil((n+1)(1-alpha))/n`` quantile. We do it
ourselves rather than with MAPIE or crepes because the scores must come from the very same
grouped folds as the selection (so between-offering shift is inside the residuals) and the
refitted model must stay a plain scikit-learn pipeline for skops and ONNX; the whole method is
one quantile. Its coverage on held-out offerings is measured by the tests and reported by
:mod:`ml.evaluation`.

**Classifiers.** Logistic regression, HistGradientBoosting and the torch MLP
(:class:`ml.mlp.TorchMLPClassifier`) are compared on out-of-fold probabilities; the best CV AUC
wins, and the lower Brier score breaks near-ties (AUC within ``auc_tolerance``). The winner's
out-of-fold probabilities, which come from models that did not see those students, fit an
isotonic calibration (what ``CalibratedClassifierCV(ensemble=False)`` does, with groups). The
decision threshold is chosen on the calibrated out-of-fold probabilities, maximising F1 or
balanced accuracy. Uncertainty per student is MC dropout for the MLP and the spread of the fold
models for the others, both passed through the calibration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

from ml.mlp import TorchMLPClassifier

ThresholdMetric = Literal["f1", "balanced_accuracy"]


def make_pipeline(model: BaseEstimator, *, scale: bool = True) -> Pipeline:
    """Median imputation (some features are undefined without events), scaling, the model."""
    steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("model", model))
    return Pipeline(steps)


def regressor_candidates(random_state: int = 0) -> dict[str, tuple[Pipeline, dict[str, list[Any]]]]:
    """Name -> (pipeline, grid). Grids are small: a handful of offerings cannot tune more."""
    return {
        "linear": (make_pipeline(LinearRegression()), {}),
        "ridge": (make_pipeline(Ridge()), {"model__alpha": [0.1, 1.0, 10.0, 100.0]}),
        "lasso": (
            make_pipeline(Lasso(max_iter=20_000)),
            {"model__alpha": [0.01, 0.05, 0.2, 1.0]},
        ),
        "elasticnet": (
            make_pipeline(ElasticNet(max_iter=20_000)),
            {"model__alpha": [0.01, 0.1, 1.0], "model__l1_ratio": [0.2, 0.5, 0.8]},
        ),
        "svr": (
            make_pipeline(SVR()),
            {"model__C": [1.0, 10.0], "model__epsilon": [0.5, 1.0]},
        ),
        "hgb": (
            make_pipeline(
                HistGradientBoostingRegressor(
                    max_iter=150, early_stopping=False, random_state=random_state
                ),
                scale=False,
            ),
            {"model__learning_rate": [0.05, 0.1], "model__max_depth": [3]},
        ),
    }


def classifier_candidates(
    random_state: int = 0, mlp_params: Mapping[str, Any] | None = None
) -> dict[str, tuple[Pipeline, dict[str, list[Any]]]]:
    return {
        "logistic": (
            make_pipeline(LogisticRegression(max_iter=5_000)),
            {"model__C": [0.1, 1.0]},
        ),
        "hgb": (
            make_pipeline(
                HistGradientBoostingClassifier(
                    max_iter=150, early_stopping=False, random_state=random_state
                ),
                scale=False,
            ),
            {"model__learning_rate": [0.05, 0.1], "model__max_depth": [3]},
        ),
        "mlp": (
            # the MLP standardises its inputs itself
            make_pipeline(
                TorchMLPClassifier(random_state=random_state, **dict(mlp_params or {})),
                scale=False,
            ),
            {},
        ),
    }


def _as_frame(X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)


def _n_splits(groups: np.ndarray, wanted: int) -> int:
    n = int(pd.unique(groups).size)
    if n < 2:
        raise ValueError("grouped cross-validation needs at least 2 offerings")
    return min(wanted, n)


def _oof(
    estimator: BaseEstimator,
    X: pd.DataFrame,
    y: np.ndarray,
    groups: np.ndarray,
    n_splits: int,
    *,
    proba: bool,
) -> tuple[np.ndarray, list[BaseEstimator]]:
    """Out-of-fold predictions and the fold models (which give the ensemble spread)."""
    pred = np.full(len(y), np.nan)
    models: list[BaseEstimator] = []
    for train, test in GroupKFold(n_splits=n_splits).split(X, y, groups):
        m = clone(estimator).fit(X.iloc[train], y[train])
        if proba:
            pred[test] = m.predict_proba(X.iloc[test])[:, 1]
        else:
            pred[test] = m.predict(X.iloc[test])
        models.append(m)
    return pred, models


def conformal_quantile(residuals: np.ndarray, alpha: float) -> float:
    """The ``ceil((n+1)(1-alpha))``-th smallest absolute residual (inf when n is too small)."""
    r = np.sort(np.abs(np.asarray(residuals, dtype=np.float64)))
    k = int(np.ceil((r.size + 1) * (1 - alpha)))
    return float(r[k - 1]) if 1 <= k <= r.size else float("inf")


# ------------------------------------------------------------------ regression
@dataclass
class RegressionModel:
    """The selected, refitted grade regressor with its conformal residuals."""

    name: str
    pipeline: Pipeline
    features: list[str]
    cv_table: pd.DataFrame
    oof_pred: np.ndarray
    residuals: np.ndarray
    scale: float = 20.0
    alpha: float = 0.1

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.pipeline.predict(X[self.features]), dtype=np.float64)

    def predict_interval(
        self, X: pd.DataFrame, alpha: float | None = None, *, clip: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(prediction, lower, upper) at level 1 - alpha; clipped to [0, scale] by default."""
        q = conformal_quantile(self.residuals, self.alpha if alpha is None else alpha)
        pred = self.predict(X)
        lo, hi = pred - q, pred + q
        if clip:
            pred, lo, hi = (np.clip(a, 0.0, self.scale) for a in (pred, lo, hi))
        return pred, lo, hi


def fit_regressor(
    X: pd.DataFrame,
    y: Sequence[float] | np.ndarray | pd.Series,
    groups: Sequence[Any] | np.ndarray | pd.Series,
    *,
    candidates: Sequence[str] | None = None,
    n_splits: int = 5,
    alpha: float = 0.1,
    scale: float = 20.0,
    random_state: int = 0,
) -> RegressionModel:
    """Grid-search each candidate under GroupKFold, keep the best CV R², refit on everything."""
    X = _as_frame(X)
    y_arr = np.asarray(y, dtype=np.float64)
    g = np.asarray(groups)
    k = _n_splits(g, n_splits)
    pool = regressor_candidates(random_state)
    names = list(candidates) if candidates is not None else list(pool)
    rows, searches = [], {}
    for name in names:
        pipe, grid = pool[name]
        search = GridSearchCV(
            pipe,
            grid,
            cv=GroupKFold(n_splits=k),
            scoring={
                "r2": "r2",
                "mae": "neg_mean_absolute_error",
                "rmse": "neg_root_mean_squared_error",
            },
            refit="r2",
            n_jobs=1,
            error_score="raise",
        )
        search.fit(X, y_arr, groups=g)
        i = search.best_index_
        res = search.cv_results_
        rows.append(
            {
                "model": name,
                "params": {kk.removeprefix("model__"): v for kk, v in search.best_params_.items()},
                "cv_r2": float(res["mean_test_r2"][i]),
                "cv_r2_std": float(res["std_test_r2"][i]),
                "cv_mae": float(-res["mean_test_mae"][i]),
                "cv_rmse": float(-res["mean_test_rmse"][i]),
            }
        )
        searches[name] = search
    table = pd.DataFrame(rows).sort_values("cv_r2", ascending=False).reset_index(drop=True)
    best = str(table.loc[0, "model"])
    chosen = clone(searches[best].best_estimator_)
    oof, _ = _oof(chosen, X, y_arr, g, k, proba=False)
    return RegressionModel(
        name=best,
        pipeline=searches[best].best_estimator_,
        features=list(X.columns),
        cv_table=table,
        oof_pred=oof,
        residuals=np.abs(y_arr - oof),
        scale=scale,
        alpha=alpha,
    )


# ------------------------------------------------------------------ classification
@dataclass(frozen=True, slots=True)
class Uncertainty:
    """Calibrated P(pass): mean, std, central 95% interval, and how it was obtained."""

    mean: np.ndarray
    std: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    method: str


def choose_threshold(y: np.ndarray, proba: np.ndarray, metric: ThresholdMetric = "f1") -> float:
    """The probability cut that maximises ``metric`` on validation predictions (ties: closest
    to 0.5, so a flat optimum does not drift to an extreme)."""
    candidates = np.unique(np.r_[proba, 0.5])
    score_fn = f1_score if metric == "f1" else balanced_accuracy_score
    scores = np.array(
        [score_fn(y, (proba >= c).astype(int), **({"zero_division": 0.0} if metric == "f1" else {}))
         for c in candidates]
    )  # fmt: skip
    best = np.flatnonzero(np.isclose(scores, scores.max()))
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


@dataclass
class ClassificationModel:
    """The selected, refitted pass classifier, its isotonic calibration and threshold."""

    name: str
    estimator: Pipeline
    calibrator: IsotonicRegression
    threshold: float
    features: list[str]
    cv_table: pd.DataFrame
    oof_proba_raw: np.ndarray
    oof_proba: np.ndarray
    threshold_metric: ThresholdMetric = "f1"
    fold_models: list[Pipeline] = field(default_factory=list)

    def predict_proba_raw(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict_proba(X[self.features])[:, 1], dtype=np.float64)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(pass) per row."""
        return np.asarray(self.calibrator.predict(self.predict_proba_raw(X)), dtype=np.float64)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X) >= self.threshold).astype(np.int64)

    def uncertainty(self, X: pd.DataFrame, n_passes: int = 100) -> Uncertainty:
        """MC dropout for the MLP; the fold models' spread otherwise; both calibrated."""
        Xf = X[self.features]
        model = self.estimator[-1]
        if isinstance(model, TorchMLPClassifier):
            Z = self.estimator[:-1].transform(Xf)
            samples = model.predict_mc(Z, n_passes=n_passes).samples
            method = f"mc_dropout({n_passes})"
        elif self.fold_models:
            samples = np.stack([m.predict_proba(Xf)[:, 1] for m in self.fold_models])
            method = f"fold_ensemble({len(self.fold_models)})"
        else:
            samples = self.predict_proba_raw(X)[None, :]
            method = "none"
        cal = self.calibrator.predict(samples.ravel()).reshape(samples.shape)
        return Uncertainty(
            mean=cal.mean(axis=0),
            std=cal.std(axis=0),
            lower=np.quantile(cal, 0.025, axis=0),
            upper=np.quantile(cal, 0.975, axis=0),
            method=method,
        )


def fit_classifier(
    X: pd.DataFrame,
    y: Sequence[int] | np.ndarray | pd.Series,
    groups: Sequence[Any] | np.ndarray | pd.Series,
    *,
    candidates: Sequence[str] | None = None,
    n_splits: int = 5,
    threshold_metric: ThresholdMetric = "f1",
    auc_tolerance: float = 0.005,
    random_state: int = 0,
    mlp_params: Mapping[str, Any] | None = None,
    extra_candidates: Mapping[str, tuple[Pipeline, dict[str, list[Any]]]] | None = None,
) -> ClassificationModel:
    """Compare candidates on grouped out-of-fold probabilities; calibrate and threshold the best.

    ``extra_candidates`` adds named (pipeline, grid) entries to the standard pool, e.g. a model
    a course team trusts; ``candidates`` picks names from the union.
    """
    X = _as_frame(X)
    y_arr = np.asarray(y, dtype=np.int64)
    if np.unique(y_arr).size != 2:
        raise ValueError("pass/fail needs both classes in the training data")
    g = np.asarray(groups)
    k = _n_splits(g, n_splits)
    pool = {**classifier_candidates(random_state, mlp_params), **dict(extra_candidates or {})}
    names = list(candidates) if candidates is not None else list(pool)
    rows, fitted = [], {}
    for name in names:
        pipe, grid = pool[name]
        if grid:
            search = GridSearchCV(
                pipe, grid, cv=GroupKFold(n_splits=k), scoring="roc_auc", n_jobs=1,
                error_score="raise",
            )  # fmt: skip
            search.fit(X, y_arr, groups=g)
            config = clone(search.best_estimator_)
            params = {kk.removeprefix("model__"): v for kk, v in search.best_params_.items()}
        else:
            config, params = clone(pipe), {}
        oof, folds = _oof(config, X, y_arr, g, k, proba=True)
        rows.append(
            {
                "model": name,
                "params": params,
                "cv_auc": float(roc_auc_score(y_arr, oof)),
                "cv_brier": float(brier_score_loss(y_arr, oof)),
            }
        )
        fitted[name] = (config, oof, folds)
    table = pd.DataFrame(rows)
    top = table["cv_auc"].max()
    near = table[table["cv_auc"] >= top - auc_tolerance]
    best = str(near.sort_values(["cv_brier", "cv_auc"], ascending=[True, False]).iloc[0]["model"])
    table = table.sort_values("cv_auc", ascending=False).reset_index(drop=True)
    table["selected"] = table["model"] == best
    config, oof, folds = fitted[best]
    calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(oof, y_arr)
    oof_cal = np.asarray(calibrator.predict(oof), dtype=np.float64)
    final = clone(config).fit(X, y_arr)
    return ClassificationModel(
        name=best,
        estimator=final,
        calibrator=calibrator,
        threshold=choose_threshold(y_arr, oof_cal, threshold_metric),
        features=list(X.columns),
        cv_table=table,
        oof_proba_raw=oof,
        oof_proba=oof_cal,
        threshold_metric=threshold_metric,
        fold_models=folds,
    )


REGRESSOR_NAMES: Final = tuple(regressor_candidates())
CLASSIFIER_NAMES: Final = ("logistic", "hgb", "mlp")


def regression_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """R², MAE and RMSE (shared by selection reports and :mod:`ml.evaluation`)."""
    return {
        "r2": float(r2_score(y, pred)),
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(root_mean_squared_error(y, pred)),
    }

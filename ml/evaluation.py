"""Evaluation of a model version: metrics with bootstrap CIs, baselines, and the quality gate.

Everything is measured on predictions for students the model did not see: the out-of-fold
predictions of the grouped cross-validation (each from a model trained without that student's
offering) or a held-out set of offerings. Calibrated probabilities are *cross-calibrated*: the
isotonic map applied to a fold is fitted on the other folds only, so calibration metrics are not
flattered by fitting and scoring on the same predictions.

**Baselines** are what a model must beat: the mean grade of the training folds (regression) and
the pass rate of the training folds as a probability, or the majority class for accuracy
(classification).

**The quality gate.** A model passes when its gain over the baseline, MAE for grades and Brier
score for pass probabilities, has a bootstrap 95% CI that lies above zero. Consumers must not
show predictions of a gated-out model to anyone. Bootstrap resampling is over students, paired
(model and baseline are scored on the same resample); offering-level resampling would be more
conservative but has too few units (a course has a handful of past offerings) to give stable
intervals.

**Permutation importance** permutes one feature at a time ``n_repeats`` times and records the
drop of the score. The CI is the 2.5-97.5 percentile band of those drops, and the p-value is the
permutation test's ``(1 + #{drops <= 0}) / (n_repeats + 1)``: small when permuting the feature
consistently hurts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import GroupKFold

from ml.dataset import TrainingSet
from ml.models import (
    ClassificationModel,
    RegressionModel,
    conformal_quantile,
    fit_classifier,
    fit_regressor,
    regression_scores,
)

Metric = Callable[..., float]


# ------------------------------------------------------------------ plain metrics
def ece_mce(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> tuple[float, float]:
    """Expected and maximum calibration error over equal-width probability bins."""
    curve = calibration_curve_data(y, proba, n_bins)
    if curve.empty:
        return 0.0, 0.0
    gap = (curve["fraction_positive"] - curve["mean_predicted"]).abs()
    weights = curve["count"] / curve["count"].sum()
    return float((gap * weights).sum()), float(gap.max())


def calibration_curve_data(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per non-empty bin: bounds, mean predicted probability, observed pass rate, count."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    keep = count > 0
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1][keep],
            "bin_upper": edges[1:][keep],
            "mean_predicted": sum_p[keep] / count[keep],
            "fraction_positive": sum_y[keep] / count[keep],
            "count": count[keep],
        }
    )


def regression_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> dict[str, float]:
    """R², MAE, RMSE, and interval coverage and mean width when an interval is given."""
    out = regression_scores(np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64))
    if lower is not None and upper is not None:
        out["coverage"] = float(np.mean((y >= lower) & (y <= upper)))
        out["mean_width"] = float(np.mean(upper - lower))
    return out


def classification_metrics(
    y: np.ndarray, proba: np.ndarray, threshold: float = 0.5, n_bins: int = 10
) -> dict[str, Any]:
    """Threshold metrics, AUC, Brier, ECE/MCE and the confusion matrix (positive = pass)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(proba, dtype=np.float64)
    pred = (p >= threshold).astype(np.int64)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    ece, mce = ece_mce(y, p, n_bins)
    both = np.unique(y).size == 2
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0.0)),
        "recall": float(recall_score(y, pred, zero_division=0.0)),
        "f1": float(f1_score(y, pred, zero_division=0.0)),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "specificity": tn / (tn + fp) if tn + fp else float("nan"),
        "npv": tn / (tn + fn) if tn + fn else float("nan"),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if both else float("nan"),
        "ece": ece,
        "mce": mce,
        "brier": float(brier_score_loss(y, p)),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "threshold": float(threshold),
    }


# ------------------------------------------------------------------ bootstrap
def bootstrap_ci(
    metric: Metric,
    *arrays: np.ndarray,
    n_boot: int = 1000,
    level: float = 0.95,
    random_state: int = 0,
) -> tuple[float, float, float]:
    """(point estimate, lower, upper): percentile bootstrap over rows, arrays resampled together.

    Resamples where the metric is undefined (NaN, e.g. AUC of a one-class resample) are dropped.
    """
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    point = float(metric(*arrays))
    rng = np.random.default_rng(random_state)
    stats = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        try:
            stats[b] = metric(*(a[idx] for a in arrays))
        except ValueError:
            stats[b] = np.nan
    stats = stats[~np.isnan(stats)]
    alpha = (1 - level) / 2
    return point, float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def _ci(point_lo_hi: tuple[float, float, float]) -> dict[str, float]:
    point, lo, hi = point_lo_hi
    return {"value": point, "ci_low": lo, "ci_high": hi}


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if np.unique(y).size == 2 else float("nan")


def _mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y - pred)))


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / ss if ss > 0 else float("nan")


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


# ------------------------------------------------------------------ baselines and gate
def fold_baselines(y: np.ndarray, groups: np.ndarray, n_splits: int = 5) -> np.ndarray:
    """Out-of-fold trivial predictions: each fold gets the training folds' mean of ``y``."""
    y = np.asarray(y, dtype=np.float64)
    groups = np.asarray(groups)
    k = min(n_splits, int(pd.unique(groups).size))
    out = np.empty(len(y))
    for train, test in GroupKFold(n_splits=k).split(y, y, groups):
        out[test] = y[train].mean()
    return out


def cross_calibrate(
    proba_raw: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int = 5
) -> np.ndarray:
    """Isotonic calibration of out-of-fold probabilities, each fold mapped by the others' fit."""
    p = np.asarray(proba_raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    groups = np.asarray(groups)
    k = min(n_splits, int(pd.unique(groups).size))
    out = np.empty(len(p))
    for train, test in GroupKFold(n_splits=k).split(p, y, groups):
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p[train], y[train])
        out[test] = iso.predict(p[test])
    return out


def gain_gate(
    loss: Metric,
    y: np.ndarray,
    model_pred: np.ndarray,
    baseline_pred: np.ndarray,
    *,
    n_boot: int = 1000,
    random_state: int = 0,
) -> dict[str, Any]:
    """Gain = baseline loss - model loss, with a paired bootstrap CI; passed iff CI low > 0."""

    def gain(yy: np.ndarray, mp: np.ndarray, bp: np.ndarray) -> float:
        return loss(yy, bp) - loss(yy, mp)

    point, lo, hi = bootstrap_ci(
        gain, y, model_pred, baseline_pred, n_boot=n_boot, random_state=random_state
    )
    return {"gain": point, "ci_low": lo, "ci_high": hi, "passed": bool(lo > 0)}


# ------------------------------------------------------------------ importance
def permutation_importance_table(
    estimator: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    scoring: str,
    n_repeats: int = 30,
    random_state: int = 0,
) -> pd.DataFrame:
    """Score drop when each feature is permuted: mean, 95% band and permutation p-value."""
    res = permutation_importance(
        estimator, X, y, scoring=scoring, n_repeats=n_repeats, random_state=random_state, n_jobs=1
    )
    drops = np.asarray(res.importances)
    table = pd.DataFrame(
        {
            "feature": list(X.columns),
            "importance": drops.mean(axis=1),
            "std": drops.std(axis=1),
            "ci_low": np.quantile(drops, 0.025, axis=1),
            "ci_high": np.quantile(drops, 0.975, axis=1),
            "p_value": (1 + (drops <= 0).sum(axis=1)) / (n_repeats + 1),
        }
    )
    return table.sort_values("importance", ascending=False).reset_index(drop=True)


# ------------------------------------------------------------------ early warning
def early_warning_curve(
    data: TrainingSet,
    checkpoints: Sequence[float] | None = None,
    *,
    regressors: Sequence[str] = ("ridge",),
    classifiers: Sequence[str] = ("logistic",),
    n_boot: int = 300,
    random_state: int = 0,
    n_threads: int = 1,
) -> pd.DataFrame:
    """Grouped-CV metrics per checkpoint: how early a trustworthy prediction is possible."""
    cps = sorted(pd.unique(data.checkpoint)) if checkpoints is None else list(checkpoints)
    rows = []
    for cp in cps:
        part = data.at(float(cp))
        groups = part.groups.to_numpy()
        y = part.grade.to_numpy()
        passed = part.passed.to_numpy()
        reg = fit_regressor(
            part.X, y, groups, candidates=regressors, scale=part.scale, n_threads=n_threads
        )
        clf = fit_classifier(part.X, passed, groups, candidates=classifiers, n_threads=n_threads)
        base = fold_baselines(y, groups)
        p_base = fold_baselines(passed, groups)
        p_cal = cross_calibrate(clf.oof_proba_raw, passed, groups)
        rows.append(
            {
                "checkpoint": float(cp),
                "n": len(y),
                "r2": _r2(y, reg.oof_pred),
                "mae": _mae(y, reg.oof_pred),
                "mae_baseline": _mae(y, base),
                "auc": _auc(passed, clf.oof_proba_raw),
                "brier": _brier(passed, p_cal),
                "brier_baseline": _brier(passed, p_base),
                "regression_gate": gain_gate(
                    _mae, y, reg.oof_pred, base, n_boot=n_boot, random_state=random_state
                )["passed"],
                "classification_gate": gain_gate(
                    _brier, passed, p_cal, p_base, n_boot=n_boot, random_state=random_state
                )["passed"],
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the report
def evaluation_report(
    data: TrainingSet,
    regressor: RegressionModel,
    classifier: ClassificationModel,
    *,
    holdout: TrainingSet | None = None,
    early_warning: pd.DataFrame | None = None,
    n_boot: int = 1000,
    n_repeats: int = 30,
    random_state: int = 0,
) -> dict[str, Any]:
    """The full, JSON-serialisable report of a model version; ``gate`` says if it may be shown.

    ``data`` is what the models were trained on (its out-of-fold predictions are scored);
    ``holdout`` optional offerings never seen, scored and used for permutation importance
    (the training data is used when there is none).
    """
    y = data.grade.to_numpy()
    passed = data.passed.to_numpy()
    groups = data.groups.to_numpy()
    ci = {"n_boot": n_boot, "random_state": random_state}
    reg_block = _regression_block(y, groups, regressor, ci)
    clf_block = _classification_block(passed, groups, classifier, ci)
    report: dict[str, Any] = {
        "n_students": len(y),
        "n_offerings": int(pd.unique(groups).size),
        "checkpoints": sorted(float(c) for c in pd.unique(data.checkpoint)),
        "regression": reg_block,
        "classification": clf_block,
    }
    report["permutation_importance"] = _importance_block(
        holdout if holdout is not None else data,
        "holdout" if holdout is not None else "training",
        regressor,
        classifier,
        n_repeats=n_repeats,
        random_state=random_state,
    )
    if holdout is not None:
        report["holdout"] = _holdout_block(holdout, regressor, classifier)
    if early_warning is not None:
        report["early_warning"] = _records(early_warning)
    report["gate"] = {
        "regression": reg_block["gate"]["passed"],
        "classification": clf_block["gate"]["passed"],
        "passed": bool(reg_block["gate"]["passed"] and clf_block["gate"]["passed"]),
    }
    return report


def _regression_block(
    y: np.ndarray, groups: np.ndarray, regressor: RegressionModel, ci: dict[str, int]
) -> dict[str, Any]:
    """The grade model on its out-of-fold predictions: metrics with bootstrap intervals, the
    conformal interval's coverage, and the gate against the mean grade of the other folds."""
    base = fold_baselines(y, groups)
    q = conformal_quantile(regressor.residuals, regressor.alpha)
    oof = regressor.oof_pred
    return {
        "model": regressor.name,
        "cv_table": _records(regressor.cv_table),
        "metrics": regression_metrics(y, oof, oof - q, oof + q),
        "ci": {
            "r2": _ci(bootstrap_ci(_r2, y, oof, **ci)),
            "mae": _ci(bootstrap_ci(_mae, y, oof, **ci)),
            "rmse": _ci(bootstrap_ci(_rmse, y, oof, **ci)),
        },
        "interval_level": 1 - regressor.alpha,
        "baseline": {"name": "mean grade", **regression_metrics(y, base)},
        "gate": gain_gate(_mae, y, oof, base, **ci),
    }


def _classification_block(
    passed: np.ndarray, groups: np.ndarray, classifier: ClassificationModel, ci: dict[str, int]
) -> dict[str, Any]:
    """The pass model on out-of-fold probabilities calibrated across folds: metrics with
    bootstrap intervals, calibration before and after, and the gate against the pass rate of
    the other folds."""
    p_base = fold_baselines(passed, groups)
    p_cal = cross_calibrate(classifier.oof_proba_raw, passed, groups)
    majority = float(np.mean(passed) >= 0.5)
    raw_ece, raw_mce = ece_mce(passed, classifier.oof_proba_raw)
    return {
        "model": classifier.name,
        "cv_table": _records(classifier.cv_table),
        "metrics": classification_metrics(passed, p_cal, classifier.threshold),
        "uncalibrated": {"ece": raw_ece, "mce": raw_mce},
        "ci": {
            "auc": _ci(bootstrap_ci(_auc, passed, p_cal, **ci)),
            "brier": _ci(bootstrap_ci(_brier, passed, p_cal, **ci)),
            "accuracy": _ci(
                bootstrap_ci(
                    lambda a, b: float(np.mean(a == (b >= classifier.threshold))),
                    passed,
                    p_cal,
                    **ci,
                )
            ),
        },
        "calibration_curve": _records(calibration_curve_data(passed, p_cal)),
        "baseline": {
            "name": "training pass rate (probability) / majority class (label)",
            "brier": _brier(passed, p_base),
            "accuracy": float(np.mean(passed == majority)),
        },
        "gate": gain_gate(_brier, passed, p_cal, p_base, **ci),
    }


def _importance_block(
    data: TrainingSet,
    source: str,
    regressor: RegressionModel,
    classifier: ClassificationModel,
    *,
    n_repeats: int,
    random_state: int,
) -> dict[str, Any]:
    """Permutation importance of each model's features on ``data`` (``source`` names it)."""
    return {
        "data": source,
        "regression": _records(
            permutation_importance_table(
                regressor.pipeline,
                data.X[regressor.features],
                data.grade.to_numpy(),
                scoring="neg_mean_absolute_error",
                n_repeats=n_repeats,
                random_state=random_state,
            )
        ),
        "classification": _records(
            permutation_importance_table(
                classifier.estimator,
                data.X[classifier.features],
                data.passed.to_numpy(),
                scoring="roc_auc",
                n_repeats=n_repeats,
                random_state=random_state,
            )
        ),
    }


def _holdout_block(
    holdout: TrainingSet, regressor: RegressionModel, classifier: ClassificationModel
) -> dict[str, Any]:
    """Both models on offerings they never saw."""
    pred, lo, hi = regressor.predict_interval(holdout.X, clip=False)
    return {
        "n_students": len(holdout.grade),
        "regression": regression_metrics(holdout.grade.to_numpy(), pred, lo, hi),
        "classification": classification_metrics(
            holdout.passed.to_numpy(), classifier.predict_proba(holdout.X), classifier.threshold
        ),
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame -> JSON-able records (numpy scalars become Python ones)."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({str(k): _py(v) for k, v in row.items()})
    return out


def _py(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _py(v) for k, v in value.items()}
    return value

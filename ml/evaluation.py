"""Evaluation of a model version: metrics with bootstrap CIs, baselines, and the quality gate.

Everything is measured on what a *new offering* would have been shown (issue #14): each past
offering in turn is predicted by the chosen configuration refitted on the other offerings, its
grade distribution (:mod:`ml.distribution`) calibrated on the other offerings' out-of-fold
residuals only (:func:`out_of_offering_predictions`, leave one offering out). The grade shown
(the distribution's median), its interval and the pass chance are scored together: R², MAE and
interval coverage for the grade; AUC, Brier, and the calibration error (ECE, 10 equal-width bins,
with a bootstrap 95 % CI) for the chance. The calibration curve merges neighbouring bins until
each holds at least 20 students. The early-warning curve does the same at 10/25/50/75/100 % of
the term, with the cheap candidate (ridge). An offering's shift from the others (a harder exam,
a weaker cohort) is therefore inside every figure, as it will be for the next offering.

**Baselines** are what a model must beat: the other offerings' mean grade (regression) and
their pass rate as a probability, or the majority class for accuracy (classification).

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

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.base import clone
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
from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

from ml.dataset import TrainingSet
from ml.distribution import GradeDistribution
from ml.models import RegressionModel, fit_regressor, regression_scores

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


def ece(y: np.ndarray, proba: np.ndarray, n_bins: int = 10) -> float:
    """The expected calibration error alone (a metric for :func:`bootstrap_ci`)."""
    return ece_mce(y, proba, n_bins)[0]


def calibration_curve_data(
    y: np.ndarray, proba: np.ndarray, n_bins: int = 10, *, min_count: int = 0
) -> pd.DataFrame:
    """Per non-empty bin: bounds, mean predicted probability, observed pass rate, count.

    Bins are equal-width; with ``min_count``, neighbouring bins are merged from the left until
    each holds at least that many students (a last short run joins the bin before it), so a
    chart never shows the pass rate of three students as a point of the curve.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(proba, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    groups: list[list[int]] = []
    run: list[int] = []
    for b in range(n_bins):
        if count[b] == 0 and not run:
            continue
        run.append(b)
        if sum(count[i] for i in run) >= max(min_count, 1):
            groups.append(run)
            run = []
    if run and sum(count[i] for i in run) > 0:
        if groups and min_count > 0:
            groups[-1] = groups[-1] + run
        else:
            groups.append(run)
    rows = []
    for members in groups:
        used = [i for i in members if count[i] > 0]
        c = int(sum(count[i] for i in members))
        rows.append(
            {
                "bin_lower": float(edges[used[0]]),
                "bin_upper": float(edges[used[-1] + 1]),
                "mean_predicted": float(sum(sum_p[i] for i in members) / c),
                "fraction_positive": float(sum(sum_y[i] for i in members) / c),
                "count": c,
            }
        )
    return pd.DataFrame(
        rows, columns=["bin_lower", "bin_upper", "mean_predicted", "fraction_positive", "count"]
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
    rowwise = _ROWWISE.get(metric)
    # Resamples are drawn a block at a time (the same indices as n_boot draws of n in turn),
    # each block at most _BOOT_CELLS indices, so memory stays bounded whatever n.
    block = max(1, _BOOT_CELLS // max(n, 1)) if rowwise is not None else 1
    stats = np.empty(n_boot)
    for start in range(0, n_boot, block):
        rows = rng.integers(0, n, (min(block, n_boot - start), n))
        if rowwise is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                stats[start : start + len(rows)] = rowwise(
                    *(a[rows].astype(np.float64) for a in arrays)
                )
            continue
        try:
            stats[start] = metric(*(a[rows[0]] for a in arrays))
        except ValueError:
            stats[start] = np.nan
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:  # the metric is undefined on every resample (e.g. AUC of one class)
        return point, float("nan"), float("nan")
    alpha = (1 - level) / 2
    return point, float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def _ci(point_lo_hi: tuple[float, float, float]) -> dict[str, float]:
    point, lo, hi = point_lo_hi
    return {"value": point, "ci_low": lo, "ci_high": hi}


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    """The area under the ROC curve of ``p`` for the greater of ``y``'s two labels (NaN unless
    there are two), as the Mann-Whitney statistic on average ranks: the value of
    ``roc_auc_score`` (a test holds them equal), without its input checks, which cost ~1 ms a
    call in the bootstraps' and the permutation importance's thousands of calls."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if not np.isfinite(p).all():  # as roc_auc_score: a NaN score is an error, not a rank
        raise ValueError("the scores contain NaN or infinity")
    labels = np.unique(y)
    if labels.size != 2:
        return float("nan")
    positive = y == labels[1]
    n1 = int(positive.sum())
    n0 = y.size - n1
    ranks = rankdata(p)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y - pred)))


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / ss if ss > 0 else float("nan")


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def _r2_rows(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    ss = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2, axis=1)
    out = 1.0 - np.sum((y - pred) ** 2, axis=1) / ss
    return np.where(ss > 0, out, np.nan)


def _ece_rows(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """:func:`ece` of each row: the bins' ``|sum of y - sum of p|`` over the row's size (the
    count-weighted gap of a bin's means is that, and an empty bin adds nothing)."""
    rows, n = p.shape
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    flat = (idx + n_bins * np.arange(rows)[:, None]).ravel()
    size = rows * n_bins
    sum_p = np.bincount(flat, weights=p.ravel(), minlength=size).reshape(rows, n_bins)
    sum_y = np.bincount(flat, weights=y.ravel(), minlength=size).reshape(rows, n_bins)
    return np.asarray(np.abs(sum_y - sum_p).sum(axis=1) / n, dtype=np.float64)


#: Indices per block of resamples in :func:`bootstrap_ci` (with each array's float copy, about
#: 16 MB per array a block).
_BOOT_CELLS = 2_000_000

#: Metrics whose resamples :func:`bootstrap_ci` computes at once, one row per resample (the
#: same arithmetic along each row; a thousand calls on small arrays cost ~40 µs each).
_ROWWISE: dict[Metric, Callable[..., np.ndarray]] = {
    _mae: lambda y, pred: np.mean(np.abs(y - pred), axis=1),
    _rmse: lambda y, pred: np.sqrt(np.mean((y - pred) ** 2, axis=1)),
    _r2: _r2_rows,
    _brier: lambda y, p: np.mean((p - y) ** 2, axis=1),
    ece: _ece_rows,
}


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
Score = Callable[[np.ndarray, np.ndarray], float]
#: Rows per prediction call when permuted copies are stacked (bounds the stack's memory: about
#: 40 MB of features at 50 columns).
_STACK_ROWS = 100_000


def permuted_predictions(
    predict: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    *,
    n_repeats: int = 30,
    random_state: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """For each column ``j`` of ``X``, ``(j, P)`` with ``P[r]`` the predictions of ``X`` with
    column ``j`` permuted for the ``r``-th time: exactly the permutations of scikit-learn's
    ``permutation_importance`` with this ``random_state`` (one seed drawn from it, every column
    shuffled from a fresh ``RandomState`` of that seed, each repeat shuffling the previous
    one's column again).

    Why not call it: it asks the model once per column and repeat (1,400 calls for 47 columns
    and 30 repeats), and each call of a small frame pays scikit-learn's input checks and, for
    the gradient boosting, a Python loop over its trees: 26 of a typical course's 37 s of
    training in a profile. Here the repeats of a column are stacked and predicted at once.
    """
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    n = len(X)
    orders = []
    idx = np.arange(n)
    shuffler = np.random.RandomState(seed)
    for _ in range(n_repeats):
        shuffler.shuffle(idx)
        orders.append(idx.copy())
    values = X.to_numpy(dtype=np.float64)
    per_call = max(1, _STACK_ROWS // max(n, 1))
    for j in range(values.shape[1]):
        columns = []
        col = values[:, j]
        for order in orders:
            col = col[order]
            columns.append(col)
        out = np.empty((n_repeats, n))
        for start in range(0, n_repeats, per_call):
            block = columns[start : start + per_call]
            stacked = np.tile(values, (len(block), 1))
            stacked[:, j] = np.concatenate(block)
            frame = pd.DataFrame(stacked, columns=X.columns)
            out[start : start + len(block)] = np.asarray(predict(frame), np.float64).reshape(
                len(block), n
            )
        yield j, out


def importance_table(features: Sequence[str], drops: np.ndarray) -> pd.DataFrame:
    """Per feature, from its ``(n_repeats,)`` score drops: mean, 95 % band and the
    permutation p-value; the most important first."""
    n_repeats = drops.shape[1]
    table = pd.DataFrame(
        {
            "feature": list(features),
            "importance": drops.mean(axis=1),
            "std": drops.std(axis=1),
            "ci_low": np.quantile(drops, 0.025, axis=1),
            "ci_high": np.quantile(drops, 0.975, axis=1),
            "p_value": (1 + (drops <= 0).sum(axis=1)) / (n_repeats + 1),
        }
    )
    return table.sort_values("importance", ascending=False).reset_index(drop=True)


def permutation_importance_tables(
    predict: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    targets: Mapping[str, tuple[np.ndarray, Score]],
    *,
    n_repeats: int = 30,
    random_state: int = 0,
) -> dict[str, pd.DataFrame]:
    """The score drop when each feature is permuted, for every ``name -> (y, score(y, pred))``
    of ``targets`` from the same permuted predictions (one model, several targets: the grade's
    MAE and the pass chance's AUC)."""
    base = np.asarray(predict(X), dtype=np.float64)
    baseline = {name: score(y, base) for name, (y, score) in targets.items()}
    drops = {name: np.empty((X.shape[1], n_repeats)) for name in targets}
    for j, preds in permuted_predictions(predict, X, n_repeats=n_repeats,
                                         random_state=random_state):  # fmt: skip
        for name, (y, score) in targets.items():
            drops[name][j] = [baseline[name] - score(y, p) for p in preds]
    return {name: importance_table(list(X.columns), d) for name, d in drops.items()}


# ------------------------------------------------------------------ out of offering
def out_of_offering_predictions(
    data: TrainingSet, regressor: RegressionModel, *, max_folds: int = 10
) -> pd.DataFrame:
    """What a new offering would have been shown: each past offering predicted by the
    regressor's chosen configuration refitted on the *other* offerings, with the grade
    distribution calibrated on the other offerings' out-of-fold residuals only (leave one
    offering out; with more than ``max_folds`` offerings, that many grouped folds).

    One row per student of ``data`` (which must be what ``regressor`` was fitted on), in its
    order: ``offering``, ``y``, ``passed``, the shown ``grade``, ``grade_low``, ``grade_high``,
    ``p_pass``, ``p_pass_low``, ``p_pass_high``, and the trivial baselines a new offering would
    get (``baseline_grade``: the other offerings' mean grade; ``baseline_p``: their pass rate).
    """
    if regressor.estimator is None:
        raise ValueError("out-of-offering predictions refit the chosen configuration: pass a "
                         "regressor from fit_regressor, not one loaded from disk")  # fmt: skip
    X = data.X[regressor.features]
    y = data.grade.to_numpy(dtype=np.float64)
    passed = data.passed.to_numpy(dtype=np.float64)
    groups = data.groups.to_numpy()
    if len(y) != len(regressor.oof_pred):
        raise ValueError("data must be the rows the regressor was fitted on")
    n_groups = int(pd.unique(groups).size)
    splitter = LeaveOneGroupOut() if n_groups <= max_folds else GroupKFold(n_splits=max_folds)
    base = regressor.distribution
    cols = ("grade", "grade_low", "grade_high", "p_pass", "p_pass_low", "p_pass_high")
    out = {c: np.full(len(y), np.nan) for c in (*cols, "baseline_grade", "baseline_p")}
    for train, test in splitter.split(X, y, groups):
        model = clone(regressor.estimator).fit(X.iloc[train], y[train])
        dist = GradeDistribution.from_oof(
            y[train],
            regressor.oof_pred[train],
            groups[train],
            scale=base.scale,
            pass_mark=base.pass_mark,
            alpha=base.alpha,
            chance_level=base.chance_level,
            location_clip=base.location_clip,
        )
        shown = dist.summary(np.asarray(model.predict(X.iloc[test]), dtype=np.float64))
        for c in cols:
            out[c][test] = shown[c]
        out["baseline_grade"][test] = y[train].mean()
        out["baseline_p"][test] = passed[train].mean()
    return pd.DataFrame({"offering": groups, "y": y, "passed": passed.astype(np.int64), **out})


def out_of_offering_metrics(
    predictions: pd.DataFrame, *, n_boot: int = 300, random_state: int = 0
) -> dict[str, Any]:
    """R², MAE, interval coverage and width, AUC, Brier and ECE (with its bootstrap 95 % CI) of
    :func:`out_of_offering_predictions`, their baselines and both gates."""
    y = predictions["y"].to_numpy(dtype=np.float64)
    passed = predictions["passed"].to_numpy(dtype=np.int64)
    grade = predictions["grade"].to_numpy(dtype=np.float64)
    p = predictions["p_pass"].to_numpy(dtype=np.float64)
    base, p_base = predictions["baseline_grade"].to_numpy(), predictions["baseline_p"].to_numpy()
    ci = {"n_boot": n_boot, "random_state": random_state}
    e, e_lo, e_hi = bootstrap_ci(ece, passed, p, **ci)
    low, high = predictions["grade_low"].to_numpy(), predictions["grade_high"].to_numpy()
    return {
        "n": len(y),
        "n_offerings": int(predictions["offering"].nunique()),
        "r2": _r2(y, grade),
        "mae": _mae(y, grade),
        "mae_baseline": _mae(y, base),
        "coverage": float(np.mean((y >= low) & (y <= high))),
        "mean_width": float(np.mean(high - low)),
        "auc": _auc(passed, p),
        "brier": _brier(passed, p),
        "brier_baseline": _brier(passed, p_base),
        "ece": e,
        "ece_ci_low": e_lo,
        "ece_ci_high": e_hi,
        "regression_gate": gain_gate(_mae, y, grade, base, **ci)["passed"],
        "classification_gate": gain_gate(_brier, passed, p, p_base, **ci)["passed"],
    }


# ------------------------------------------------------------------ early warning
def early_warning_curve(
    data: TrainingSet,
    checkpoints: Sequence[float] | None = None,
    *,
    regressors: Sequence[str] = ("ridge",),
    classifiers: Sequence[str] | None = None,
    n_boot: int = 300,
    random_state: int = 0,
    n_threads: int = 1,
) -> pd.DataFrame:
    """Out-of-offering quality per checkpoint: how early a trustworthy prediction is possible.

    At each checkpoint the cheap candidates (``regressors``) are selected under grouped
    cross-validation, then every offering is predicted by models trained on the others
    (:func:`out_of_offering_predictions`): R², MAE, coverage of the grade interval, AUC, Brier
    and ECE of the pass chance (with a bootstrap CI), baselines and gates.
    ``classifiers`` is accepted and ignored (the chance is the grade distribution's).
    """
    del classifiers
    cps = sorted(pd.unique(data.checkpoint)) if checkpoints is None else list(checkpoints)
    rows = []
    for cp in cps:
        part = data.at(float(cp))
        reg = fit_regressor(
            part.X,
            part.grade.to_numpy(),
            part.groups.to_numpy(),
            candidates=regressors,
            scale=part.scale,
            pass_mark=part.pass_mark,
            random_state=random_state,
            n_threads=n_threads,
        )
        predictions = out_of_offering_predictions(part, reg)
        rows.append(
            {
                "checkpoint": float(cp),
                **out_of_offering_metrics(predictions, n_boot=n_boot, random_state=random_state),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the report
def evaluation_report(
    data: TrainingSet,
    regressor: RegressionModel,
    *,
    holdout: TrainingSet | None = None,
    early_warning: pd.DataFrame | None = None,
    n_boot: int = 1000,
    n_repeats: int = 30,
    random_state: int = 0,
    calibration_min_count: int = 20,
) -> dict[str, Any]:
    """The full, JSON-serialisable report of a model version; ``gate`` says if it may be shown.

    ``data`` is what the regressor was trained on; every metric is measured on what each of its
    offerings would have been shown by models trained without it
    (:func:`out_of_offering_predictions`). ``holdout``: optional offerings never seen, scored
    and used for permutation importance (the training data is used when there is none). The
    calibration curve merges bins of fewer than ``calibration_min_count`` students.
    """
    predictions = out_of_offering_predictions(data, regressor)
    groups = data.groups.to_numpy()
    ci = {"n_boot": n_boot, "random_state": random_state}
    reg_block = _regression_block(predictions, regressor, ci)
    clf_block = _classification_block(predictions, regressor, ci, calibration_min_count)
    report: dict[str, Any] = {
        "n_students": len(predictions),
        "n_offerings": int(pd.unique(groups).size),
        "checkpoints": sorted(float(c) for c in pd.unique(data.checkpoint)),
        "validation": "leave one offering out: each past offering predicted by models trained "
        "on the others, its grade distribution calibrated on the others",
        "regression": reg_block,
        "classification": clf_block,
    }
    report["permutation_importance"] = _importance_block(
        holdout if holdout is not None else data,
        "holdout" if holdout is not None else "training",
        regressor,
        n_repeats=n_repeats,
        random_state=random_state,
    )
    if holdout is not None:
        report["holdout"] = _holdout_block(holdout, regressor)
    if early_warning is not None:
        report["early_warning"] = _records(early_warning)
    report["gate"] = {
        "regression": reg_block["gate"]["passed"],
        "classification": clf_block["gate"]["passed"],
        "passed": bool(reg_block["gate"]["passed"] and clf_block["gate"]["passed"]),
    }
    return report


def _regression_block(
    predictions: pd.DataFrame, regressor: RegressionModel, ci: dict[str, int]
) -> dict[str, Any]:
    """The grade shown (the distribution's median) out of offering: metrics with bootstrap
    intervals, the interval's coverage, and the gate against the other offerings' mean grade."""
    y = predictions["y"].to_numpy(dtype=np.float64)
    grade = predictions["grade"].to_numpy(dtype=np.float64)
    low, high = predictions["grade_low"].to_numpy(), predictions["grade_high"].to_numpy()
    base = predictions["baseline_grade"].to_numpy(dtype=np.float64)
    return {
        "model": regressor.name,
        "cv_table": _records(regressor.cv_table),
        "metrics": regression_metrics(y, grade, low, high),
        "ci": {
            "r2": _ci(bootstrap_ci(_r2, y, grade, **ci)),
            "mae": _ci(bootstrap_ci(_mae, y, grade, **ci)),
            "rmse": _ci(bootstrap_ci(_rmse, y, grade, **ci)),
        },
        "interval_level": 1 - regressor.alpha,
        "baseline": {"name": "mean grade", **regression_metrics(y, base)},
        "gate": gain_gate(_mae, y, grade, base, **ci),
    }


def _classification_block(
    predictions: pd.DataFrame, regressor: RegressionModel, ci: dict[str, int], min_count: int
) -> dict[str, Any]:
    """The pass chance shown (P(grade >= pass mark) of the same distribution) out of offering:
    metrics with bootstrap intervals (the ECE's among them), the calibration curve with sparse
    bins merged, the chance's range, and the gate against the other offerings' pass rate."""
    passed = predictions["passed"].to_numpy(dtype=np.int64)
    p = predictions["p_pass"].to_numpy(dtype=np.float64)
    p_base = predictions["baseline_p"].to_numpy(dtype=np.float64)
    low, high = predictions["p_pass_low"].to_numpy(), predictions["p_pass_high"].to_numpy()
    majority = float(np.mean(passed) >= 0.5)
    dist = regressor.distribution
    return {
        "model": f"grade distribution ({regressor.name})",
        "metrics": classification_metrics(passed, p, 0.5),
        "ci": {
            "ece": _ci(bootstrap_ci(ece, passed, p, **ci)),
            "auc": _ci(bootstrap_ci(_auc, passed, p, **ci)),
            "brier": _ci(bootstrap_ci(_brier, passed, p, **ci)),
            "accuracy": _ci(
                bootstrap_ci(lambda a, b: float(np.mean(a == (b >= 0.5))), passed, p, **ci)
            ),
        },
        "calibration_curve": _records(calibration_curve_data(passed, p, min_count=min_count)),
        "calibration_min_count": min_count,
        "chance_range": {
            "level": dist.chance_level,
            "mean_width": float(np.mean(high - low)),
            "n_calibration": dist.n,
            "cohort_sd": dist.shift_sd,
        },
        "baseline": {
            "name": "other offerings' pass rate (probability) / majority class (label)",
            "brier": _brier(passed, p_base),
            "accuracy": float(np.mean(passed == majority)),
        },
        "gate": gain_gate(_brier, passed, p, p_base, **ci),
    }


def _importance_block(
    data: TrainingSet,
    source: str,
    regressor: RegressionModel,
    *,
    n_repeats: int,
    random_state: int,
) -> dict[str, Any]:
    """Permutation importance on ``data`` (``source`` names it): for the grade, the rise of the
    MAE; for the pass chance, the loss of AUC of the predicted grade (the chance is a
    non-decreasing function of it, so it ranks students as the chance does, and also within the
    ties that the location held on the scale makes at its ends)."""

    def neg_mae(y: np.ndarray, pred: np.ndarray) -> float:
        return -_mae(y, pred)

    X = data.X[regressor.features]
    tables = permutation_importance_tables(
        regressor.pipeline.predict,
        X,
        {
            "regression": (data.grade.to_numpy(), neg_mae),
            "classification": (data.passed.to_numpy(), _auc),
        },
        n_repeats=n_repeats,
        random_state=random_state,
    )
    return {"data": source, **{name: _records(table) for name, table in tables.items()}}


def _holdout_block(holdout: TrainingSet, regressor: RegressionModel) -> dict[str, Any]:
    """The shown grade and chance on offerings the version never saw."""
    shown = regressor.predict_distribution(holdout.X)
    return {
        "n_students": len(holdout.grade),
        "regression": regression_metrics(
            holdout.grade.to_numpy(), shown["grade"], shown["grade_low"], shown["grade_high"]
        ),
        "classification": classification_metrics(holdout.passed.to_numpy(), shown["p_pass"], 0.5),
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

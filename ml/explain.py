"""Explanations for one student: signed top factors, sensitivity curves and what-if predictions.

**Top factors (method).** The contribution of feature *j* for a student is how much the model's
output moves when that one feature is set back to a *reference* student, the cohort's median
(all else unchanged): ``c_j = f(x) - f(x with x_j := median_j)``. It is signed (positive means
the student's own value raises the predicted grade or pass chance) and in the unit a teacher
reads: points on the grade scale for the grade shown (the distribution's median), points of
probability for the pass chance shown (P(grade >= pass mark) of the same distribution, so
"pass chance -0.11" is eleven points). Both come from one predictive distribution
(:mod:`ml.distribution`) whose location never falls when effort rises (:mod:`ml.models`), so a
feature's grade and chance factors never have opposite signs, and an effort feature above the
median never counts against a student. For linear models, which the regressor selection
usually picks, this is exact and additive: it equals the interventional SHAP value with the
median as the single background point, ``beta_j (x_j - median_j)`` in standardised space
(``beta_j (log1p x_j - log1p median_j) / s_j`` for a count the model reads on the log scale,
still exact and additive). For
non-linear models it is a first-order occlusion attribution, not additive; that is the
documented price of not depending on the ``shap`` package (and of computing every student's
factors with one batched prediction).

**Sensitivity curves** vary one feature over its observed range in the cohort, the others fixed
at the student's values, as the ARCHE prototype did.

**What-if** scores a modified feature vector: the grade shown with its interval and the pass
chance with its range, all from the student's grade distribution, so they move together. Only
the features named change; derived ones (ratios, cohort z-scores) are not recomputed, so a
caller that changes ``n_actions`` and wants ``z_n_actions`` to follow must pass both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ml.models import ClassificationModel, PassChanceModel, RegressionModel

PredictFn = Callable[[pd.DataFrame], np.ndarray]
#: What shows a pass chance: the grade distribution's (what versions hold), or a trained
#: classifier (diagnostics; its chance is not tied to the grade).
PassModel = PassChanceModel | ClassificationModel


def reference_point(background: pd.DataFrame) -> pd.Series:
    """The cohort median of every feature (NaN-aware): the neutral student of the factors."""
    return background.median(axis=0, skipna=True)


def contributions(predict: PredictFn, X: pd.DataFrame, background: pd.DataFrame) -> pd.DataFrame:
    """Signed per-feature contributions for every row of ``X`` (same shape, same index)."""
    ref = reference_point(background[X.columns])
    n, d = X.shape
    base = np.asarray(predict(X), dtype=np.float64)
    values = X.to_numpy(dtype=np.float64)
    stacked = np.repeat(values[:, None, :], d, axis=1)  # (n, d, d): row i, feature j replaced
    idx = np.arange(d)
    stacked[:, idx, idx] = ref.to_numpy(dtype=np.float64)[None, :]
    moved = np.asarray(
        predict(pd.DataFrame(stacked.reshape(n * d, d), columns=X.columns)), dtype=np.float64
    ).reshape(n, d)
    return pd.DataFrame(base[:, None] - moved, index=X.index, columns=X.columns)


def top_factors(
    predict: PredictFn, X: pd.DataFrame, background: pd.DataFrame, k: int = 5
) -> pd.DataFrame:
    """The ``k`` largest |contributions| per row: index, rank, feature, value, reference, signed
    contribution; ready for a "why" panel."""
    contrib = contributions(predict, X, background)
    ref = reference_point(background[X.columns]).to_numpy(dtype=np.float64)
    c = contrib.to_numpy(dtype=np.float64)
    k = min(k, X.shape[1])
    order = np.argsort(-np.abs(c), axis=1, kind="stable")[:, :k]
    # Whole columns at once: one iloc per cell cost 4 s for 10,000 students.
    rows = np.repeat(np.arange(len(X)), k)
    cols = order.reshape(-1)
    return pd.DataFrame(
        {
            "index": np.asarray(X.index)[rows],
            "rank": np.tile(np.arange(1, k + 1), len(X)),
            "feature": np.asarray(X.columns, dtype=object)[cols],
            "value": X.to_numpy(dtype=np.float64)[rows, cols],
            "reference": ref[cols],
            "contribution": c[rows, cols],
        }
    )


def grade_factors(
    model: RegressionModel, X: pd.DataFrame, background: pd.DataFrame, k: int = 5
) -> pd.DataFrame:
    """Top factors of the grade shown (the distribution's median), in points on the grade
    scale. The median is taken from the point prediction itself, before the location and the
    median are held on the scale (:mod:`ml.distribution`), so a student predicted below 0 (or
    above the top) still sees what pulls the estimate down (or up), not a row of zeros."""
    shift = model.distribution.score_quantile(0.5)

    def median(rows: pd.DataFrame) -> np.ndarray:
        return np.asarray(model.predict(rows), dtype=np.float64) + shift

    return top_factors(median, X[model.features], background[model.features], k)


def pass_factors(
    model: PassModel, X: pd.DataFrame, background: pd.DataFrame, k: int = 5
) -> pd.DataFrame:
    """Top factors of the pass chance shown, in points of probability (0.11 = 11 points)."""
    return top_factors(model.predict_proba, X[model.features], background[model.features], k)


def sensitivity_curve(
    x: pd.DataFrame,
    feature: str,
    background: pd.DataFrame,
    *,
    regressor: RegressionModel | None = None,
    classifier: PassModel | None = None,
    n_points: int = 25,
) -> pd.DataFrame:
    """Predictions for one student with ``feature`` swept over its observed range.

    Columns: ``value``, and ``grade``, ``grade_low``, ``grade_high`` with a regressor,
    ``p_pass`` with a classifier.
    """
    if len(x) != 1:
        raise ValueError("sensitivity_curve explains one student: pass a one-row frame")
    observed = background[feature].to_numpy(dtype=np.float64)
    lo, hi = float(np.nanmin(observed)), float(np.nanmax(observed))
    grid = np.linspace(lo, hi, n_points) if hi > lo else np.array([lo])
    rows = pd.concat([x] * len(grid), ignore_index=True)
    rows[feature] = grid
    out = pd.DataFrame({"value": grid})
    if regressor is not None:
        pred, low, high = regressor.predict_interval(rows)
        out["grade"], out["grade_low"], out["grade_high"] = pred, low, high
    if classifier is not None:
        out["p_pass"] = classifier.predict_proba(rows)
    return out


def what_if(
    x: pd.DataFrame,
    changes: Mapping[str, float],
    *,
    regressor: RegressionModel,
    classifier: PassModel,
    n_passes: int = 100,
) -> dict[str, Any]:
    """Score the student as is and with ``changes``; both with intervals, plus the deltas."""
    if len(x) != 1:
        raise ValueError("what_if explains one student: pass a one-row frame")
    return what_if_row(
        x.to_numpy(dtype=np.float64)[0],
        list(x.columns),
        changes,
        regressor=regressor,
        classifier=classifier,
        n_passes=n_passes,
    )


def what_if_row(
    values: np.ndarray,
    columns: Sequence[str],
    changes: Mapping[str, float],
    *,
    regressor: RegressionModel,
    classifier: PassModel,
    n_passes: int = 100,
) -> dict[str, Any]:
    """:func:`what_if` for one student's features as a plain float vector named by ``columns``
    (NaN for missing), which a web request can keep from one call to the next.

    Both rows (as is, changed) are scored in one batch through the models' array paths
    (:meth:`RegressionModel.predict_interval_rows`, :meth:`ClassificationModel.score_rows`):
    a prediction's cost on one or two rows is the per-call overhead, not the arithmetic.
    """
    position = {name: i for i, name in enumerate(columns)}
    row = np.asarray(values, dtype=np.float64)
    if row.shape != (len(position),):
        raise ValueError(f"expected {len(position)} feature values, got shape {row.shape}")
    unknown = set(changes) - set(position)
    if unknown:
        raise KeyError(f"unknown features: {sorted(unknown)}")
    both = np.vstack([row, row])
    for name, value in changes.items():
        both[1, position[name]] = float(value)
    now, then = _score_rows(both, position, regressor, classifier, n_passes)
    return {
        "changes": {k: float(v) for k, v in changes.items()},
        "current": now,
        "what_if": then,
        "delta_grade": then["grade"] - now["grade"],
        "delta_p_pass": then["p_pass"] - now["p_pass"],
    }


def _columns(both: np.ndarray, position: Mapping[str, int], features: Sequence[str]) -> np.ndarray:
    missing = [f for f in features if f not in position]
    if missing:
        raise KeyError(f"the model needs features the row lacks: {missing}")
    return both[:, [position[f] for f in features]]


def _score_rows(
    rows: np.ndarray,
    position: Mapping[str, int],
    regressor: RegressionModel,
    classifier: PassModel,
    n: int,
) -> list[dict[str, Any]]:
    """Each row's grade with its interval and pass chance with its range; when the chance is
    the regressor's own distribution's, from one prediction of the regressor."""
    own = _columns(rows, position, regressor.features)
    location = regressor.predict_rows(own)
    pred, low, high = regressor.interval_of(location)
    if isinstance(classifier, PassChanceModel) and classifier.regressor is regressor:
        proba, unc = classifier.chance_of(location)
    else:
        proba, unc = classifier.score_rows(_columns(rows, position, classifier.features), n)
    return [
        {
            "grade": float(pred[i]),
            "grade_low": float(low[i]),
            "grade_high": float(high[i]),
            "interval_level": 1 - regressor.alpha,
            "p_pass": float(proba[i]),
            "p_pass_mean": float(unc.mean[i]),
            "p_pass_std": float(unc.std[i]),
            "p_pass_low": float(unc.lower[i]),
            "p_pass_high": float(unc.upper[i]),
            "uncertainty_method": unc.method,
        }
        for i in range(len(rows))
    ]

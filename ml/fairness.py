"""A fairness audit of the estimates (issue #18, item 7): per group of students, how well the
pass chances rank and are calibrated, how often the grade range held the final grade, and the
share of the students who failed that the tool had not flagged; the gaps between groups with
bootstrap confidence intervals, at each point of the term; a gap beyond a threshold flagged.

The groups are whatever an administrator declares lawful and relevant for the site (from
Moodle profile fields or cohorts; none by default): this module only receives a label per
student. Per-group metrics come from fairlearn's `MetricFrame` (the maintained reference
implementation, so the disaggregation is not ours to get wrong); the bootstrap of the gaps
resamples students within each group, seeded. Pure: frames in, frames out.

A gap is flagged when it exceeds the threshold and the 95 % interval of the signed difference
between its two groups excludes zero: a
difference the data cannot tell from noise is reported with its interval, not raised as an
alarm. Groups smaller than `min_group` students are reported and never compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.metrics import roc_auc_score

#: The columns `fairness_report` reads: one row per student and point of the term.
COLUMNS = ("checkpoint", "group", "passed", "p_pass", "flagged", "grade", "grade_low", "grade_high")


def _auc(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y = np.asarray(y_true)
    return float(roc_auc_score(y, y_pred)) if np.unique(y).size == 2 else float("nan")


def _brier(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(y_pred, dtype=float) - np.asarray(y_true)) ** 2))


def _coverage(
    y_true: np.ndarray, y_pred: np.ndarray, grade: np.ndarray, low: np.ndarray, high: np.ndarray
) -> float:
    del y_true, y_pred
    known = ~(np.isnan(low) | np.isnan(high) | np.isnan(grade))
    inside = (grade >= low) & (grade <= high)
    return float(np.mean(inside[known])) if known.any() else float("nan")


def _missed(y_true: np.ndarray, y_pred: np.ndarray, flagged: np.ndarray) -> float:
    """The share of the students who failed whom the tool had not flagged."""
    del y_pred
    failed = np.asarray(y_true) == 0
    return (
        float(np.mean(~np.asarray(flagged, dtype=bool)[failed])) if failed.any() else float("nan")
    )


#: Metric name -> (function, the extra columns it reads, whether higher is better).
METRICS: dict[str, tuple[Callable[..., float], tuple[str, ...], bool]] = {
    "auc": (_auc, (), True),
    "brier": (_brier, (), False),
    "coverage": (_coverage, ("grade", "grade_low", "grade_high"), True),
    "missed": (_missed, ("flagged",), False),
}
_PARAM_NAMES = {"grade": "grade", "grade_low": "low", "grade_high": "high", "flagged": "flagged"}


def by_group(frame: pd.DataFrame) -> pd.DataFrame:
    """Each metric per group (rows: groups, columns: metrics), through `MetricFrame`."""
    y = frame["passed"].to_numpy(dtype=int)
    p = frame["p_pass"].to_numpy(dtype=float)
    params = {
        name: {_PARAM_NAMES[c]: frame[c].to_numpy() for c in cols}
        for name, (_, cols, _) in METRICS.items()
        if cols
    }
    mf = MetricFrame(
        metrics={name: fn for name, (fn, _, _) in METRICS.items()},
        y_true=y,
        y_pred=p,
        sensitive_features=frame["group"].astype(str).to_numpy(),
        sample_params=params,
    )
    table: pd.DataFrame = mf.by_group
    return table.astype(float)


def _gaps(table: pd.DataFrame, big: list[str]) -> dict[str, float]:
    sub = table.loc[big]
    return {m: float(sub[m].max() - sub[m].min()) for m in METRICS}


@dataclass(frozen=True)
class FairnessSettings:
    """`threshold`: the gap (in the metric's own unit: 0.1 is ten points of a share) beyond
    which a gap is flagged; `min_group`: students a group needs to be compared; `n_boot`,
    `seed`: the bootstrap of the gaps' intervals."""

    threshold: float = 0.10
    min_group: int = 20
    n_boot: int = 300
    seed: int = 0


def fairness_report(frame: pd.DataFrame, settings: FairnessSettings | None = None) -> pd.DataFrame:
    """One row per point of the term and metric: each group's value (`values`, a dict, with
    `sizes`), the gap between the compared groups (largest minus smallest value), the 95 %
    bootstrap interval of that pair's signed difference, and `flagged` (the gap beyond the
    threshold, its interval excluding zero). Groups under `min_group` students are in `values`
    but not compared; with fewer than two groups compared there is no gap (NaN) and nothing is
    flagged."""
    settings = settings or FairnessSettings()
    rows: list[dict[str, Any]] = []
    for checkpoint, part in frame.groupby("checkpoint", sort=True):
        part = part.reset_index(drop=True)
        sizes = {str(g): int(n) for g, n in part["group"].astype(str).value_counts().items()}
        table = by_group(part)
        big = sorted(g for g, n in sizes.items() if n >= settings.min_group)
        gaps = _gaps(table, big) if len(big) >= 2 else dict.fromkeys(METRICS, float("nan"))
        # The pair of groups behind each gap (highest and lowest value), kept fixed in the
        # bootstrap: the interval is that of their signed difference, which can cross zero
        # (a max-minus-min resampled would never go below it).
        pairs = {
            m: (str(table.loc[big, m].idxmax()), str(table.loc[big, m].idxmin()))
            for m in METRICS
            if len(big) >= 2 and table.loc[big, m].notna().sum() >= 2
        }
        intervals = _bootstrap(part, pairs, settings) if pairs else {}
        for metric in METRICS:
            low, high = intervals.get(metric, (float("nan"), float("nan")))
            gap = gaps[metric]
            flagged = bool(
                len(big) >= 2 and gap > settings.threshold and not np.isnan(low) and low > 0
            )
            rows.append(
                {
                    "checkpoint": float(str(checkpoint)),
                    "metric": metric,
                    "values": {str(g): _clean(table.loc[g, metric]) for g in table.index},
                    "sizes": {str(g): int(n) for g, n in sizes.items()},
                    "gap": gap,
                    "gap_low": low,
                    "gap_high": high,
                    "flagged": flagged,
                }
            )
    return pd.DataFrame(rows)


def _clean(value: Any) -> float | None:
    number = float(value)
    return None if np.isnan(number) else number


def _bootstrap(
    part: pd.DataFrame, pairs: Mapping[str, tuple[str, str]], settings: FairnessSettings
) -> Mapping[str, tuple[float, float]]:
    """95 % percentile intervals of each metric's signed difference between its pair of
    groups, resampling students within each group (seeded)."""
    rng = np.random.default_rng(settings.seed)
    labels = part["group"].astype(str).to_numpy()
    groups = sorted({g for pair in pairs.values() for g in pair})
    members = {g: np.flatnonzero(labels == g) for g in groups}
    y = part["passed"].to_numpy(dtype=int)
    p = part["p_pass"].to_numpy(dtype=float)
    extra = {c: part[c].to_numpy() for c in _PARAM_NAMES}
    draws: dict[str, list[float]] = {m: [] for m in pairs}
    for _ in range(settings.n_boot):
        # The same metric functions MetricFrame applies, on each group's resample directly:
        # a MetricFrame per resample cost a hundred times more for the same numbers.
        values: dict[tuple[str, str], float] = {}
        for g, ix in members.items():
            take = rng.choice(ix, size=ix.size, replace=True)
            for metric in pairs:
                fn, cols, _ = METRICS[metric]
                kwargs = {_PARAM_NAMES[c]: extra[c][take] for c in cols}
                values[(g, metric)] = fn(y[take], p[take], **kwargs)
        for metric, (high, low) in pairs.items():
            diff = values[(high, metric)] - values[(low, metric)]
            if not np.isnan(diff):
                draws[metric].append(diff)
    return {
        m: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
        for m, v in draws.items()
        if v
    }


__all__ = ["COLUMNS", "METRICS", "FairnessSettings", "by_group", "fairness_report"]

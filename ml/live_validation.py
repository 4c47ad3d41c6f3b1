"""How right the estimates that were shown turned out, once the term's final grades are known
(issue #17, item 3: live validation).

The model card states how well a model did on past offerings, each predicted without its own
data. That is a promise about the future; this module checks it against what happened: the
predictions actually shown to teachers at each week of a finished term are compared with the
students' final grades. A teacher reads "of the students flagged at week 4, 78 % failed; of
those not flagged, 9 %", and the card flags a drift when the live figures fall outside what
validation promised (its bootstrap confidence interval).

Pure: frames in, frames out. The caller (lti_app.services.live_validation) reads the stored
predictions and grades; every figure here can be recomputed from those two alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

#: Columns of the frame `score_weeks` reads: one row per student and scoring shown.
SHOWN_COLUMNS = (
    "person_id",
    "week",
    "as_of",
    "p_pass",
    "flagged",
    "grade",
    "grade_low",
    "grade_high",
    "model_id",
)
#: Fewer students than this at a week, or fewer than MIN_CLASS who passed or who failed, and no
#: drift is claimed: a handful of outcomes cannot contradict a validated interval.
MIN_STUDENTS = 20
MIN_CLASS = 5


@dataclass(frozen=True)
class Validated:
    """What validation promised for one model (its card): the ranking quality's and the Brier
    score's bootstrap intervals, and the grade range's nominal level."""

    auc_low: float | None = None
    brier_high: float | None = None
    interval_level: float | None = None


def share_ci(successes: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """(share, lower, upper): Wilson's interval for a share of `n` students, well behaved at
    the small counts of one class (scipy's `binomtest`). (nan, nan, nan) for n = 0."""
    if n <= 0:
        return (float("nan"),) * 3
    ci = binomtest(successes, n).proportion_ci(confidence_level=level, method="wilson")
    return successes / n, float(ci.low), float(ci.high)


def latest_per_week(shown: pd.DataFrame) -> pd.DataFrame:
    """Each student's estimate as a teacher last saw it in each week: the latest scoring of
    that week (several "Sync now" in a week replace each other on the page)."""
    ordered = shown.sort_values(["week", "as_of"], kind="stable")
    # Whole rows: groupby().last() would take each column's last non-missing value, mixing
    # scorings within a week.
    return ordered.drop_duplicates(["week", "person_id"], keep="last").reset_index(drop=True)


def score_weeks(
    shown: pd.DataFrame,
    final: pd.Series,
    pass_mark: float,
    validated: dict[int, Validated] | None = None,
) -> pd.DataFrame:
    """One row per week of the term with a shown estimate, scored against the final grades.

    `shown`: `SHOWN_COLUMNS` (grades on the same scale as `final` and `pass_mark`; `flagged`
    is the stored at-risk flag, `grade_low`/`grade_high` may be NaN). `final`: final grade by
    person id (students without one are left out: they cannot be scored). `validated`: per
    model id, what its card promised.

    Columns: week, as_of (the week's last scoring), n, n_flagged, failed_flagged,
    failed_unflagged, share_failed_flagged (+ _low/_high, Wilson 95 %), share_failed_unflagged
    (+ _low/_high), missed (students who failed without being flagged), auc (P(pass) ranks a
    student who passed above one who failed; NaN with one class), brier, n_grade, coverage (the
    share of final grades inside the shown range), auc_promised_low, brier_promised_high,
    level, drift (a semicolon-separated list of codes: "ranking", "calibration", "ranges";
    empty when none)."""
    validated = validated or {}
    known = final.dropna()
    data = latest_per_week(shown[shown["person_id"].isin(known.index)])
    rows = []
    for week_key, group in data.groupby("week", sort=True):
        week = int(str(week_key))
        outcome = known.reindex(group["person_id"]).to_numpy(dtype=np.float64)
        failed = outcome < pass_mark
        flagged = group["flagged"].to_numpy(dtype=bool)
        p = group["p_pass"].to_numpy(dtype=np.float64)
        n = len(group)
        ff, fu = int(np.sum(failed & flagged)), int(np.sum(failed & ~flagged))
        nf = int(np.sum(flagged))
        s_f = share_ci(ff, nf)
        s_u = share_ci(fu, n - nf)
        passed = (~failed).astype(int)
        auc = float(roc_auc_score(passed, p)) if 0 < passed.sum() < n else float("nan")
        brier = float(np.mean((p - passed) ** 2))
        low = group["grade_low"].to_numpy(dtype=np.float64)
        high = group["grade_high"].to_numpy(dtype=np.float64)
        has_range = ~(np.isnan(low) | np.isnan(high))
        n_grade = int(np.sum(has_range))
        inside = (outcome >= low) & (outcome <= high)
        coverage = float(np.mean(inside[has_range])) if n_grade else float("nan")
        # The model that made most of the week's estimates is the promise they answer to.
        model = int(group["model_id"].mode().iloc[0]) if group["model_id"].notna().any() else -1
        promise = validated.get(model, Validated())
        drift = []
        enough = n >= MIN_STUDENTS and min(int(passed.sum()), n - int(passed.sum())) >= MIN_CLASS
        if enough and promise.auc_low is not None and auc < promise.auc_low:
            drift.append("ranking")
        if enough and promise.brier_high is not None and brier > promise.brier_high:
            drift.append("calibration")
        if n_grade >= MIN_STUDENTS and promise.interval_level is not None:
            # Fewer inside than the nominal level allows, beyond the interval of the share.
            _, _, cov_high = share_ci(int(np.sum(inside[has_range])), n_grade)
            if cov_high < promise.interval_level:
                drift.append("ranges")
        rows.append(
            {
                "week": week,
                "as_of": group["as_of"].max(),
                "n": n,
                "n_flagged": nf,
                "failed_flagged": ff,
                "failed_unflagged": fu,
                "share_failed_flagged": s_f[0],
                "share_failed_flagged_low": s_f[1],
                "share_failed_flagged_high": s_f[2],
                "share_failed_unflagged": s_u[0],
                "share_failed_unflagged_low": s_u[1],
                "share_failed_unflagged_high": s_u[2],
                "missed": fu,
                "auc": auc,
                "brier": brier,
                "n_grade": n_grade,
                "coverage": coverage,
                "auc_promised_low": promise.auc_low,
                "brier_promised_high": promise.brier_high,
                "level": promise.interval_level,
                "drift": ";".join(drift),
            }
        )
    return pd.DataFrame(rows)


__all__ = [
    "MIN_CLASS",
    "MIN_STUDENTS",
    "SHOWN_COLUMNS",
    "Validated",
    "latest_per_week",
    "score_weeks",
    "share_ci",
]

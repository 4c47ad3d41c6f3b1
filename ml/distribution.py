"""One predictive distribution of the final grade per student: the grade shown, its interval and
the pass chance all come from it (issue #14).

**What it is.** A split conformal predictive system (Vovk et al., 2019, *Nonparametric
predictive distributions based on conformal prediction*) over the grade regressor: the
calibration scores are the signed out-of-fold residuals ``r_i = y_i - yhat_i`` of the selected
regressor, from the same folds grouped by offering as its selection, so the shift between one
offering and the next is inside them. The distribution's *location* ``m`` is the point
prediction held on the scale, ``clip(yhat, 0, scale)`` (``location_clip``, on since the
ensemble of every family, see below; off for versions trained before it, which keep their
numbers), and the scores are taken from it, ``r_i = y_i - clip(yhat_i, 0, scale)``. For a new
student the distribution of the final grade is ``m + R``, where ``R`` follows the calibration scores
smoothed into a continuous law: its quantile function passes through ``(i / (n + 1), r_(i))``
and is linear in between (the ``i``-th smallest score is the ``i / (n + 1)`` quantile, the
conformal ranks). Then, for every student, with ``Q`` that quantile function:

* the grade shown is the **median**, ``m + Q(0.5)``, clipped to ``[0, scale]``;
* the interval at level ``1 - alpha`` is ``m + Q(alpha / 2)`` to ``m + Q(1 - alpha / 2)``
  (minus and plus infinity, so the whole scale, where the ``n`` scores cannot support that
  level), clipped to ``[0, scale]``;
* the pass chance is ``P(grade >= pass mark) = 1 - F(pass mark - m)`` with ``F`` the inverse
  of ``Q``.

**Why the location is clipped.** No grade lies outside the scale, but a linear model predicts
-3/20 for a student who never logged in and 23/20 for the keenest; their scores then say "3
points above what the model said" about a student who got 0, and that error is added to every
other student's distribution. Held on the scale, the location loses nothing a grade can be, and
on the simulator's held-out offerings (``bench/calibration_loo.py``) it raised R² at every point
of the term by up to 0.001 with the same calibration. Clipping never decreases, so a location
that never falls with effort still never falls.

So the chance is at least 50 % exactly when the median is at or above the pass mark (``F`` and
``Q`` are inverse, strictly increasing maps: the scores are made strictly increasing by adding
``i * 1e-9`` to the ``i``-th, and a last guard settles floating-point ties at the mark), an
interval wholly above the mark gives a chance of at least ``1 - alpha / 2``, one wholly below
at most ``alpha / 2``, and everything moves together with ``m``: a model whose ``yhat`` never
falls when effort rises (:mod:`ml.models`) gives a grade, an interval and a chance that never
fall either.

**How sure the chance is.** ``n`` calibration students cannot support a chance below
``1 / (n + 1)`` nor above ``n / (n + 1)``: ``F`` stays inside those bounds, and a chance is never
shown outside ``[P_FLOOR, 1 - P_FLOOR]`` (1 % and 99 %) either. Its range has two parts, both
computed from the calibration set, never from a run of random draws:

* the *cohort* part: past offerings differ (a harder exam, a weaker cohort). The between-offering
  standard deviation ``tau`` of the mean residual (a random-effects, method-of-moments estimate:
  the variance of the offerings' mean residuals less what their own sampling noise explains) is
  how far a new cohort's grades may sit from what the models expect; the chance is recomputed
  with ``m`` moved by ``-z tau`` and ``+z tau``. The range widens when past offerings disagree
  and vanishes when they do not;
* the *finite calibration* part: each end is widened by a Jeffreys interval for a proportion
  estimated from ``n`` students (``Beta(k + 1/2, n - k + 1/2)``, ``k = p n``), so a chance from
  80 students has a wider range than one from 800.

The range is asymmetric near the ends (it is built on the probability scale, never as ``+- x``),
contains the chance by construction, and stays inside ``[P_FLOOR, 1 - P_FLOOR]``. Its "std" is
``sqrt(p (1 - p) / (n + 1) + ((p_high_cohort - p_low_cohort) / 2z)^2)``, a summary for callers
that want one number.

**Why not crepes or a classifier.** crepes' ``ConformalPredictiveSystem`` computes the same
distribution (its Mondrian and normalised variants were not needed on our data: see
``bench/calibration_loo.py``), but its p-values are randomised by default and its object is
pickled, while here the scores must come from the selection's own grouped folds, the whole
state must be a list of floats in the version's JSON metadata (no pickle, see
:mod:`ml.registry`), a what-if on two rows must cost microseconds, and the cohort part of the
range needs the offering of each score. The method is a sorted array and ``numpy.interp``; a
dependency would add more than it saves. A separate pass classifier (even calibrated) can and
did disagree with the grade: a student predicted 10.9/20 shown a 0 % chance. Here there is no
second model to disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from scipy.special import betaincinv, ndtri

#: No chance is shown below this or above one minus this: past offerings of a course hold tens
#: to a few hundred students, which cannot support "0 %" or "100 %".
P_FLOOR: Final = 0.01
#: Added to the i-th sorted score so that scores are strictly increasing (ties would make the
#: distribution function a step, and the median test of a chance ambiguous).
_TIE_STEP: Final = 1e-9


def between_offering_sd(residuals: np.ndarray, groups: np.ndarray) -> float:
    """The standard deviation ``tau`` of the offerings' mean residual beyond its sampling noise:
    ``max(0, var(mean_g) - mean(s_g^2 / n_g))`` under the square root (method of moments of a
    one-way random-effects model); 0 with fewer than two offerings."""
    r = np.asarray(residuals, dtype=np.float64)
    g = np.asarray(groups)
    labels = np.unique(g)
    if labels.size < 2:
        return 0.0
    means, noise = [], []
    for label in labels:
        part = r[g == label]
        means.append(part.mean())
        noise.append(part.var(ddof=1) / part.size if part.size > 1 else 0.0)
    tau2 = float(np.var(means, ddof=1) - np.mean(noise))
    return float(np.sqrt(tau2)) if tau2 > 0 else 0.0


@dataclass(frozen=True)
class GradeDistribution:
    """The predictive distribution ``m + R`` of every student's final grade (see the module
    docstring). ``residuals`` are the signed calibration scores ``y - m`` (any order);
    ``shift_sd`` the between-offering standard deviation of their mean; ``location_clip``
    whether the location ``m`` is the point prediction held on ``[0, scale]`` (else the point
    prediction itself). Every method takes the regressor's point predictions ``yhat``."""

    residuals: np.ndarray
    scale: float
    pass_mark: float
    alpha: float = 0.1
    shift_sd: float = 0.0
    chance_level: float = 0.95
    location_clip: bool = False
    _sorted: np.ndarray = field(init=False, repr=False, compare=False)
    _positions: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        r = np.sort(np.asarray(self.residuals, dtype=np.float64).reshape(-1))
        if r.size < 1 or not np.isfinite(r).all():
            raise ValueError("a grade distribution needs finite calibration scores")
        n = r.size
        object.__setattr__(self, "_sorted", r + _TIE_STEP * np.arange(n))
        object.__setattr__(self, "_positions", np.arange(1, n + 1, dtype=np.float64) / (n + 1))

    @classmethod
    def from_oof(
        cls,
        y: np.ndarray,
        oof_pred: np.ndarray,
        groups: np.ndarray | Sequence[Any],
        *,
        scale: float,
        pass_mark: float,
        alpha: float = 0.1,
        chance_level: float = 0.95,
        location_clip: bool = True,
    ) -> GradeDistribution:
        """From the out-of-fold predictions of the selected regressor and each row's offering."""
        oof = np.asarray(oof_pred, dtype=np.float64)
        if location_clip:
            oof = np.clip(oof, 0.0, float(scale))
        r = np.asarray(y, dtype=np.float64) - oof
        return cls(
            r,
            scale=float(scale),
            pass_mark=float(pass_mark),
            alpha=float(alpha),
            shift_sd=between_offering_sd(r, np.asarray(groups)),
            chance_level=float(chance_level),
            location_clip=location_clip,
        )

    @property
    def scores(self) -> np.ndarray:
        """The calibration scores, sorted and made strictly increasing (a copy)."""
        return self._sorted.copy()

    @property
    def n(self) -> int:
        """The number of calibration scores."""
        return int(self._sorted.size)

    # ------------------------------------------------------------------ the law of R
    def score_quantile(self, q: float) -> float:
        """``Q(q)``: minus infinity below ``1 / (n + 1)``, plus infinity above ``n / (n + 1)``
        (the scores cannot support a finite bound there), interpolated in between."""
        lo, hi = self._positions[0], self._positions[-1]
        if q < lo - 1e-12:
            return float("-inf")
        if q > hi + 1e-12:
            return float("inf")
        return float(np.interp(q, self._positions, self._sorted))

    def score_cdf(self, t: np.ndarray) -> np.ndarray:
        """``F(t)``, the inverse of :meth:`score_quantile`, held in ``[1/(n+1), n/(n+1)]``."""
        return np.asarray(
            np.interp(np.asarray(t, dtype=np.float64), self._sorted, self._positions),
            dtype=np.float64,
        )

    # ------------------------------------------------------------------ per student
    def location(self, pred: np.ndarray) -> np.ndarray:
        """The location ``m`` of the distributions of point predictions ``pred``."""
        out = np.asarray(pred, dtype=np.float64)
        return np.clip(out, 0.0, self.scale) if self.location_clip else out

    def median(self, pred: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """The grade shown: the median of the student's distribution."""
        out = self.location(pred) + self.score_quantile(0.5)
        return np.clip(out, 0.0, self.scale) if clip else out

    def interval(
        self, pred: np.ndarray, alpha: float | None = None, *, clip: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The central ``1 - alpha`` interval: the ``alpha/2`` and ``1 - alpha/2`` quantiles."""
        a = self.alpha if alpha is None else float(alpha)
        p = self.location(pred)
        lo, hi = p + self.score_quantile(a / 2), p + self.score_quantile(1 - a / 2)
        if clip:
            lo, hi = np.clip(lo, 0.0, self.scale), np.clip(hi, 0.0, self.scale)
        return lo, hi

    def p_at_least(self, pred: np.ndarray, mark: float | None = None) -> np.ndarray:
        """``P(grade >= mark)`` (default: the pass mark), unclipped but inside
        ``[1/(n+1), n/(n+1)]``."""
        return self._p_from(self.location(pred), mark)

    def _p_from(self, location: np.ndarray, mark: float | None = None) -> np.ndarray:
        """:meth:`p_at_least` for locations ``m`` rather than point predictions."""
        m = self.pass_mark if mark is None else float(mark)
        return 1.0 - self.score_cdf(m - np.asarray(location, dtype=np.float64))

    def pass_chance(
        self, pred: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(p, low, high, std)`` of the pass chance for point predictions ``pred``; ``p`` is
        coherent with :meth:`median` (``p >= 0.5`` exactly when the median reaches the mark)."""
        pred = np.asarray(pred, dtype=np.float64)
        m = self.location(pred)
        p = _coherent(np.clip(self._p_from(m), P_FLOOR, 1 - P_FLOOR), self.median(pred),
                      self.pass_mark)  # fmt: skip
        z = float(ndtri(0.5 + self.chance_level / 2))
        shift = z * self.shift_sd  # a new cohort moves the location, on or off the scale
        p_low_cohort = np.minimum(self._p_from(m - shift), p)
        p_high_cohort = np.maximum(self._p_from(m + shift), p)
        n = self.n
        tail = (1 - self.chance_level) / 2
        k_low, k_high = p_low_cohort * n, p_high_cohort * n
        low = betaincinv(k_low + 0.5, n - k_low + 0.5, tail)
        high = betaincinv(k_high + 0.5, n - k_high + 0.5, 1 - tail)
        low = np.clip(np.minimum(low, p), P_FLOOR, 1 - P_FLOOR)
        high = np.clip(np.maximum(high, p), P_FLOOR, 1 - P_FLOOR)
        cohort = (p_high_cohort - p_low_cohort) / (2 * z) if z > 0 else 0.0 * p
        std = np.sqrt(p * (1 - p) / (n + 1) + cohort**2)
        return p, np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64), std

    def summary(self, pred: np.ndarray) -> dict[str, np.ndarray]:
        """Everything shown for each point prediction: ``grade`` (median), ``grade_low``,
        ``grade_high`` (clipped to the scale), ``p_pass``, ``p_pass_low``, ``p_pass_high``,
        ``p_pass_std``."""
        pred = np.asarray(pred, dtype=np.float64)
        low, high = self.interval(pred)
        p, p_low, p_high, std = self.pass_chance(pred)
        return {
            "grade": self.median(pred),
            "grade_low": low,
            "grade_high": high,
            "p_pass": p,
            "p_pass_low": p_low,
            "p_pass_high": p_high,
            "p_pass_std": std,
        }

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> dict[str, Any]:
        """JSON-able state (floats and lists of floats); :meth:`from_state` rebuilds it."""
        return {
            "residuals": np.asarray(self.residuals, dtype=np.float64).tolist(),
            "scale": float(self.scale),
            "pass_mark": float(self.pass_mark),
            "alpha": float(self.alpha),
            "shift_sd": float(self.shift_sd),
            "chance_level": float(self.chance_level),
            "location_clip": bool(self.location_clip),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GradeDistribution:
        return cls(
            np.asarray(state["residuals"], dtype=np.float64),
            scale=float(state["scale"]),
            pass_mark=float(state["pass_mark"]),
            alpha=float(state["alpha"]),
            shift_sd=float(state["shift_sd"]),
            chance_level=float(state["chance_level"]),
            # absent from versions trained before the location was clipped: they keep theirs
            location_clip=bool(state.get("location_clip", False)),
        )


def _coherent(p: np.ndarray, grade: np.ndarray, pass_mark: float) -> np.ndarray:
    """``p`` with floating-point ties at the mark settled the grade's way: at least 0.5 when the
    grade reaches the mark, below 0.5 otherwise (a change of at most a rounding error, since the
    two are exact inverses in real arithmetic)."""
    reached = grade >= pass_mark
    below_half = np.nextafter(0.5, 0.0)
    return np.asarray(
        np.where(reached, np.maximum(p, 0.5), np.minimum(p, below_half)), dtype=np.float64
    )

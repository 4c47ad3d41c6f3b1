"""A plan for the learner (issue #17, item 4): the smallest realistic change in what the
learner controls that brings their estimate to the pass mark.

"Realistic" is bounded by what past students actually did: for each lever the learner controls
(`feature_info.CONTROLLABLE`), the value the most active tenth of past students had reached at
the same point of their term (`effort_bounds`, kept with the model version; for a lever where
less is more effort, such as days since the last visit, the least tenth). No plan proposes more
than that: no "spend 90 hours this week".

"Smallest": every lever the learner is short on moves the same share of the way from where the
learner is to that bound, and the share is the smallest that brings the central grade to the
pass mark (the pass chance is then at least 50 %, the same distribution: issue #14). The models
are monotone in effort (more effort never lowers an estimate), so the grade grows with the share
and a bisection finds it; values are rounded to what a person sets by hand (the feature's step),
in the direction of effort, and never past the bound. The plan is checked by scoring it through
the same what-if as the sliders, so following it reaches the pass mark by construction.

Pure: the caller passes the scoring function (the web's what-if).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from ml.feature_info import CONTROLLABLE, FEATURES

#: The share of past students whose level bounds a plan: the top tenth.
TOP_SHARE = 0.1
#: Bisection steps on the share (2^-20 of the way: far below a slider's step).
ITERATIONS = 20

Score = Callable[[Mapping[str, float]], tuple[float, float]]
"""changes -> (central grade, pass chance), as the what-if scores them."""


def effort_bounds(X: pd.DataFrame, top_share: float = TOP_SHARE) -> dict[str, float]:
    """Per controllable lever in `X` (past students at one point of their term), the level of
    its most active `top_share`: the upper quantile, or the lower one where less is more
    effort. Levers with no known value are left out (no plan moves them)."""
    out: dict[str, float] = {}
    for name in CONTROLLABLE:
        if name not in X.columns:
            continue
        values = pd.to_numeric(X[name], errors="coerce").dropna()
        if values.empty:
            continue
        effort = FEATURES[name].effort
        q = 1 - top_share if effort >= 0 else top_share
        out[name] = float(values.quantile(q))
    return out


@dataclass(frozen=True)
class Plan:
    """`status`: "not_needed" (already at the pass mark), "reached" (the plan gets there) or
    "out_of_reach" (even the bounds do not: `changes` then holds the bounds, the closest one
    can get). `changes`: lever -> proposed value, only the levers that move. `share`: how far
    toward the bounds (0 to 1). `grade`, `p_pass`: the estimate with the plan followed;
    `current_grade`, `current_p_pass`: without it; `current_values`: the learner's values of
    the levers the plan moves."""

    status: Literal["not_needed", "reached", "out_of_reach"]
    changes: dict[str, float] = field(default_factory=dict)
    share: float = 0.0
    grade: float = math.nan
    p_pass: float = math.nan
    current_grade: float = math.nan
    current_p_pass: float = math.nan
    current_values: dict[str, float] = field(default_factory=dict)


def _rounded(name: str, value: float, start: float, bound: float) -> float:
    """`value` on the lever's step, rounded toward more effort but never past `bound` and
    never behind `start` (where the learner already is)."""
    info = FEATURES[name]
    step = info.step
    if info.effort >= 0:
        ceiling = math.floor(bound / step + 1e-9) * step
        out = min(math.ceil(value / step - 1e-9) * step, ceiling)
        return max(out, start)
    floor_ = math.ceil(bound / step - 1e-9) * step
    out = max(math.floor(value / step + 1e-9) * step, floor_)
    return min(out, start)


def _levers(current: Mapping[str, float], bounds: Mapping[str, float]) -> dict[str, float]:
    """The levers the learner is short on, with their bound."""
    out = {}
    for name, bound in bounds.items():
        value = current.get(name)
        if value is None or math.isnan(value) or name not in FEATURES:
            continue
        effort = FEATURES[name].effort
        if (effort >= 0 and value < bound) or (effort < 0 and value > bound):
            out[name] = bound
    return out


def changes_at(
    share: float, current: Mapping[str, float], levers: Mapping[str, float]
) -> dict[str, float]:
    """Every lever `share` of the way from the learner's value to its bound, rounded."""
    out = {}
    for name, bound in levers.items():
        start = float(current[name])
        value = _rounded(name, start + share * (bound - start), start, bound)
        if value != start:
            out[name] = float(round(value, 6))
    return out


def smallest_plan(
    current: Mapping[str, float],
    bounds: Mapping[str, float],
    score: Score,
    pass_mark: float,
) -> Plan:
    """The smallest share of the way to the bounds that brings the central grade to
    `pass_mark` (see the module docstring)."""
    grade0, p0 = score({})
    if grade0 >= pass_mark:
        return Plan("not_needed", {}, 0.0, grade0, p0, grade0, p0)
    levers = _levers(current, bounds)
    full = changes_at(1.0, current, levers)
    values = {name: float(current[name]) for name in full}
    grade1, p1 = score(full)
    if not full or grade1 < pass_mark:
        return Plan("out_of_reach", full, 1.0, grade1, p1, grade0, p0, values)
    low, high = 0.0, 1.0
    best = (full, grade1, p1)
    for _ in range(ITERATIONS):
        mid = (low + high) / 2
        plan = changes_at(mid, current, levers)
        grade, p = score(plan)
        if grade >= pass_mark:
            high, best = mid, (plan, grade, p)
        else:
            low = mid
    changes, grade, p = best
    return Plan("reached", changes, high, grade, p, grade0, p0, {k: values[k] for k in changes})


__all__ = ["ITERATIONS", "TOP_SHARE", "Plan", "changes_at", "effort_bounds", "smallest_plan"]

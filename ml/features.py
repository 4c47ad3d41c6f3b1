"""As-of engagement features: one row per enrolled student, from canonical events, vectorised.

:func:`compute_features` first drops every event after ``as_of`` and every event of a user not
on the roster; everything after works on what is left, so nothing after ``as_of`` can influence a
feature (the cohort statistics included). Students without events get a row too, with the values
documented below.

The work is array arithmetic on events sorted by (student, time): ``numpy.bincount`` sums per
student, differences between neighbours for intervals and sessions, and a hash factorisation for
distinct (student, activity) pairs. There is no per-student Python loop, which keeps the cost at
a few sorts and passes over the events (millions of events per second).

Features (all float64):

* ``n_actions``; ``n_<event>`` for each fixed event type (:data:`ml.events.DEFAULT_EVENT_TYPES`);
  ``n_cat_<category>`` for each category of :data:`ml.events.CATEGORIES`;
* ``n_active``, ``n_passive``, ``active_ratio`` (0 without events);
* ``total_time_min``: the sum of gaps between consecutive actions that are at most
  ``session_gap``; a longer gap starts a new session (the ARCHE prototype's rule), so a lone
  action counts zero time; ``n_sessions``, ``mean_session_min`` (0 without sessions);
* ``active_days``: distinct local calendar days with activity;
* ``mean_hour``: the mean local hour of day (NaN without events: there is nothing to average);
* ``mean_interval_h``: the mean gap between consecutive actions, in hours (NaN below 2 events);
* ``days_since_last``: days from the last action to ``as_of`` (from the course start when none);
* ``weekly_entropy``: the entropy of the weekly action counts over the weeks elapsed, divided by
  its maximum (1 = evenly spread, 0 = no activity or all in one week of many);
  ``active_weeks_share``: the share of elapsed weeks with any activity;
* ``trend``: (recent rate - earlier rate) / (sum of both), recent = the last 14 days; 0 when
  there is no earlier period or no activity; in [-1, 1];
* ``share_activities``: distinct course modules touched / course modules available (the
  ``course_modules`` given, else those anyone on the roster touched by ``as_of``);
* ``cognitive_depth``, ``social_breadth``: Moodle-Analytics-style levels, the mean over touched
  activities of the highest level reached in each (0 when none); ``cognitive_depth_max``,
  ``social_breadth_max``: the highest level over all actions;
* ``course_progress``: the share of the course elapsed at ``as_of`` (same for every student);
* ``z_<f>`` for the features of :data:`Z_FEATURES`: the cohort-relative z-score (0 when the
  cohort does not vary).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

from ml.events import CATEGORIES, DEFAULT_EVENT_TYPES, annotate, short_event_name

NS_PER_S: Final = 1_000_000_000
NS_PER_DAY: Final = 86_400 * NS_PER_S
NS_PER_WEEK: Final = 7 * NS_PER_DAY
TREND_WINDOW: Final = pd.Timedelta(days=14)

Z_FEATURES: Final = (
    "n_actions",
    "total_time_min",
    "active_days",
    "n_active",
    "share_activities",
    "days_since_last",
)


def feature_names(event_types: Sequence[str] = DEFAULT_EVENT_TYPES) -> list[str]:
    """The columns :func:`compute_features` returns, in order."""
    names = ["n_actions"]
    names += [f"n_{short_event_name(e)}" for e in event_types]
    names += [f"n_cat_{c}" for c in CATEGORIES]
    names += [
        "n_active",
        "n_passive",
        "active_ratio",
        "total_time_min",
        "n_sessions",
        "mean_session_min",
        "active_days",
        "mean_hour",
        "mean_interval_h",
        "days_since_last",
        "weekly_entropy",
        "active_weeks_share",
        "trend",
        "share_activities",
        "cognitive_depth",
        "cognitive_depth_max",
        "social_breadth",
        "social_breadth_max",
        "course_progress",
    ]
    names += [f"z_{f}" for f in Z_FEATURES]
    return names


def _ts(value: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware, got {value!r}")
    return ts.tz_convert("UTC")


def _ns(ts: pd.Timestamp) -> int:
    return int(ts.as_unit("ns").value)


def _roster_ids(roster: pd.DataFrame | pd.Series | Sequence[int] | np.ndarray) -> np.ndarray:
    ids = roster["userid"].to_numpy() if isinstance(roster, pd.DataFrame) else np.asarray(roster)
    ids = pd.unique(np.asarray(ids, dtype=np.int64))
    return np.asarray(ids, dtype=np.int64)


def _local_ns(t_ns: np.ndarray, tz: str) -> np.ndarray:
    """UTC ns -> local wall-clock ns, converting each distinct hour once (offsets change rarely)."""
    if tz == "UTC" or t_ns.size == 0:
        return t_ns
    codes, hours = pd.factorize(t_ns // (3600 * NS_PER_S))  # hashing: no sort of all events
    starts = pd.DatetimeIndex(
        pd.to_datetime(np.asarray(hours) * 3600 * NS_PER_S, unit="ns", utc=True)
    )
    wall = starts.tz_convert(tz).tz_localize(None).as_unit("ns").asi8
    offset = wall - starts.as_unit("ns").asi8
    return np.asarray(t_ns + offset[codes], dtype=np.int64)


def compute_features(
    events: pd.DataFrame,
    roster: pd.DataFrame | pd.Series | Sequence[int] | np.ndarray,
    as_of: pd.Timestamp | str,
    course_start: pd.Timestamp | str,
    course_end: pd.Timestamp | str,
    session_gap: pd.Timedelta = pd.Timedelta(minutes=5),  # noqa: B008 - immutable value
    *,
    tz: str = "Europe/Paris",
    event_types: Sequence[str] = DEFAULT_EVENT_TYPES,
    course_modules: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Features of every roster student from the events up to and including ``as_of``.

    ``events`` is a canonical frame (:mod:`ml.events`); only ``userid``, ``time``,
    ``eventname``, ``crud``, ``edulevel`` and ``cmid`` are read. ``roster`` is a frame with a
    ``userid`` column or a sequence of ids; its order is the output's order (index ``userid``).
    ``tz`` sets the calendar for days and hours (ARCHE's is Europe/Paris).
    """
    ids = _roster_ids(roster)
    n = ids.size
    as_of_ts, start_ts, end_ts = _ts(as_of), _ts(course_start), _ts(course_end)
    if end_ts <= start_ts:
        raise ValueError("course_end must be after course_start")
    as_of_ns, start_ns = _ns(as_of_ts), _ns(start_ts)
    gap_ns = int(pd.Timedelta(session_gap).value)

    # ---- keep roster events up to as_of, then sort by (student, time)
    time = pd.DatetimeIndex(events["time"])
    if time.tz is None:
        raise ValueError("event times must be timezone-aware")
    t_all = time.as_unit("ns").asi8
    u_all = pd.Index(ids).get_indexer(events["userid"].to_numpy(dtype=np.int64))
    keep = (u_all >= 0) & (t_all <= as_of_ns)
    kept = events.loc[keep]
    # compact dtypes: the reordering below gathers every array at random positions, and its
    # cost is memory traffic
    u = u_all[keep].astype(np.int32)
    t = t_all[keep]
    ann = annotate(kept)
    name_cat = kept["eventname"].astype("category")
    names = name_cat.cat.codes.to_numpy(dtype=np.int32)
    cat = ann["category"].cat.codes.to_numpy(dtype=np.int8)
    active = ann["active"].to_numpy(dtype=bool)
    depth = ann["depth"].to_numpy(dtype=np.int8)
    social = ann["social"].to_numpy(dtype=np.int8)
    cm = kept["cmid"].to_numpy(dtype=np.float64, na_value=np.nan)
    # one permutation to (student, time) order: time first (usually already sorted), then a
    # stable sort on the student keeps time order within each student
    perm = np.arange(t.size)
    if t.size > 1 and np.any(t[1:] < t[:-1]):
        perm = np.argsort(t, kind="stable")
    # student indices fit in 16 bits for any real cohort: numpy then sorts by radix
    key = u[perm].astype(np.int16 if n < 2**15 else np.int32)
    perm = perm[np.argsort(key, kind="stable")]
    u32, t, names, cat, active, depth, social, cm = (
        a[perm] for a in (u, t, names, cat, active, depth, social, cm)
    )
    u = u32.astype(np.int64)

    out: dict[str, np.ndarray] = {}
    count = np.bincount(u, minlength=n).astype(np.float64)
    out["n_actions"] = count

    # ---- counts per event type and per category
    types = list(event_types)
    col_of = np.array(
        [types.index(x) if x in types else -1 for x in name_cat.cat.categories] + [-1],
        dtype=np.int64,
    )
    j = col_of[names]  # code -1 (a missing name) reads the trailing -1
    m = j >= 0
    n_types = len(event_types)
    per_type = np.bincount(u[m] * n_types + j[m], minlength=n * n_types).reshape(n, n_types)
    for k, e in enumerate(event_types):
        out[f"n_{short_event_name(e)}"] = per_type[:, k].astype(np.float64)
    n_cat = len(CATEGORIES)
    per_cat = np.bincount(u * n_cat + cat, minlength=n * n_cat).reshape(n, n_cat)
    for k, c in enumerate(CATEGORIES):
        out[f"n_cat_{c}"] = per_cat[:, k].astype(np.float64)
    n_active = np.bincount(u, weights=active.astype(np.float64), minlength=n)
    out["n_active"] = n_active
    out["n_passive"] = count - n_active
    out["active_ratio"] = np.divide(n_active, count, out=np.zeros(n), where=count > 0)

    # ---- time on task and sessions
    same = u[1:] == u[:-1]
    dt = np.diff(t)
    in_session = same & (dt <= gap_ns)
    total_ns = np.bincount(u[1:][in_session], weights=dt[in_session], minlength=n)
    out["total_time_min"] = total_ns / (60 * NS_PER_S)
    new_session = np.ones(u.size, dtype=bool)
    new_session[1:] = ~in_session
    n_sessions = np.bincount(u[new_session], minlength=n).astype(np.float64)
    out["n_sessions"] = n_sessions
    out["mean_session_min"] = np.divide(
        out["total_time_min"], n_sessions, out=np.zeros(n), where=n_sessions > 0
    )

    # ---- calendar: active days, mean hour
    local = _local_ns(t, tz)
    day = local // NS_PER_DAY
    new_day = np.ones(u.size, dtype=bool)
    new_day[1:] = ~same | (day[1:] != day[:-1])
    out["active_days"] = np.bincount(u[new_day], minlength=n).astype(np.float64)
    hour = (local - day * NS_PER_DAY) / (3600 * NS_PER_S)
    hour_sum = np.bincount(u, weights=hour, minlength=n)
    out["mean_hour"] = np.divide(hour_sum, count, out=np.full(n, np.nan), where=count > 0)

    # ---- intervals and recency
    within = np.bincount(u[1:][same], weights=dt[same], minlength=n)
    n_gaps = count - 1
    out["mean_interval_h"] = np.divide(
        within / (3600 * NS_PER_S), n_gaps, out=np.full(n, np.nan), where=n_gaps > 0
    )
    last = np.full(n, start_ns, dtype=np.int64)
    if u.size:
        ends = np.flatnonzero(np.r_[~same, True])
        last[u[ends]] = t[ends]
    out["days_since_last"] = np.maximum(as_of_ns - last, 0) / NS_PER_DAY

    # ---- regularity over the weeks elapsed
    n_weeks = max(1, int(np.ceil((as_of_ns - start_ns) / NS_PER_WEEK)))
    week = np.clip((t - start_ns) // NS_PER_WEEK, 0, n_weeks - 1)
    weekly = np.bincount(u * n_weeks + week, minlength=n * n_weeks).reshape(n, n_weeks)
    p = np.divide(weekly, count[:, None], out=np.zeros(weekly.shape), where=count[:, None] > 0)
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    entropy = -plogp.sum(axis=1)
    if n_weeks > 1:
        out["weekly_entropy"] = np.clip(entropy / np.log(n_weeks), 0.0, 1.0)
    else:
        out["weekly_entropy"] = (count > 0).astype(np.float64)
    out["active_weeks_share"] = (weekly > 0).sum(axis=1) / n_weeks

    # ---- trend: last 14 days vs before
    window = int(TREND_WINDOW.value)
    elapsed = as_of_ns - start_ns
    recent_mask = t > as_of_ns - window
    recent = np.bincount(u[recent_mask], minlength=n).astype(np.float64)
    earlier = count - recent
    if elapsed > window:
        r_recent = recent / window
        r_before = earlier / (elapsed - window)
        total_rate = r_recent + r_before
        out["trend"] = np.divide(
            r_recent - r_before, total_rate, out=np.zeros(n), where=total_rate > 0
        )
    else:
        out["trend"] = np.zeros(n)

    # ---- activities touched, cognitive depth and social breadth
    has_cm = ~np.isnan(cm)
    if course_modules is not None:
        allowed = np.asarray(list(course_modules), dtype=np.float64)
        has_cm &= np.isin(cm, allowed)
        n_modules = allowed.size
    else:
        n_modules = int(np.unique(cm[has_cm]).size)
    cm_i = cm[has_cm].astype(np.int64)
    span = int(cm_i.max()) + 1 if cm_i.size else 1
    pair = u[has_cm] * span + cm_i
    per_pair = (
        pd.DataFrame({"pair": pair, "d": depth[has_cm], "s": social[has_cm]})
        .groupby("pair", sort=False)
        .max()
    )
    pair_user = per_pair.index.to_numpy(dtype=np.int64) // span
    touched = np.bincount(pair_user, minlength=n).astype(np.float64)
    out["share_activities"] = touched / n_modules if n_modules else np.zeros(n)
    for name, values, col in (
        ("cognitive_depth", depth, "d"),
        ("social_breadth", social, "s"),
    ):
        sums = np.bincount(pair_user, weights=per_pair[col].to_numpy(), minlength=n)
        out[name] = np.divide(sums, touched, out=np.zeros(n), where=touched > 0)
        mx = np.zeros(n)
        if u.size:
            _group_max(mx, u, values)
        out[f"{name}_max"] = mx

    course_len = _ns(end_ts) - start_ns
    out["course_progress"] = np.full(n, float(np.clip(elapsed / course_len, 0.0, 1.0)))

    # ---- cohort-relative z-scores
    for f in Z_FEATURES:
        x = out[f]
        sd = float(np.std(x)) if n else 0.0
        out[f"z_{f}"] = (x - x.mean()) / sd if sd > 0 else np.zeros(n)

    frame = pd.DataFrame(out, index=pd.Index(ids, name="userid"))
    return frame[feature_names(event_types)].astype(np.float64)


def _group_max(into: np.ndarray, groups: np.ndarray, values: np.ndarray) -> None:
    """Per-group max for sorted ``groups`` (``np.maximum.at`` is slow on millions of rows)."""
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    into[groups[starts]] = np.maximum.reduceat(values, starts)

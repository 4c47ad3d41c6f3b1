"""The naive baseline: the ARCHE prototype's features, one student at a time, in plain Python.

This is what a first implementation looks like: read the log once into per-student lists, then
loop over students and, for each, over their events in time order. It computes the prototype's
features with the same definitions as :func:`ml.features.compute_features` (which is what the
benchmark checks):

* ``n_actions`` and ``n_<event>``: action counts, in total and per event type
  (:data:`ml.events.DEFAULT_EVENT_TYPES`);
* ``n_active``, ``n_passive``: active (create, submit, post…) vs passive (view) actions, as
  :func:`ml.events.event_info` classifies them;
* ``total_time_min``, ``n_sessions``: time on task, with a new session after a gap longer than
  ``session_gap`` (5 minutes), so a lone action counts zero time;
* ``active_days``: distinct local calendar days with activity;
* ``mean_hour``: mean local hour of day of the actions (NaN without actions);
* ``mean_interval_h``: mean gap between consecutive actions, in hours (NaN below 2 actions).

Kept in ``bench/`` only: it is a yardstick, not a second implementation to maintain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ml.events import DEFAULT_EVENT_TYPES, event_info, short_event_name

NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S


def baseline_feature_names(event_types: Sequence[str] = DEFAULT_EVENT_TYPES) -> list[str]:
    """The columns both implementations compute, in the order the baseline returns them."""
    return [
        "n_actions",
        *(f"n_{short_event_name(e)}" for e in event_types),
        "n_active",
        "n_passive",
        "total_time_min",
        "n_sessions",
        "active_days",
        "mean_hour",
        "mean_interval_h",
    ]


def naive_features(
    events: pd.DataFrame,
    roster: Sequence[int],
    as_of: pd.Timestamp,
    *,
    session_gap: timedelta = timedelta(minutes=5),
    tz: str = "Europe/Paris",
    event_types: Sequence[str] = DEFAULT_EVENT_TYPES,
) -> pd.DataFrame:
    """One row per roster student (index ``userid``), columns :func:`baseline_feature_names`."""
    zone = ZoneInfo(tz)
    as_of_ns = int(pd.Timestamp(as_of).as_unit("ns").value)
    gap_ns = int(session_gap.total_seconds() * NS_PER_S)
    types = list(event_types)

    # Read the log once into per-student lists of (time, event name, crud, edulevel).
    per_student: dict[int, list[tuple[int, str, str, int]]] = {int(u): [] for u in roster}
    times = pd.DatetimeIndex(events["time"]).as_unit("ns").asi8.tolist()
    for uid, t_ns, name, crud, edu in zip(
        events["userid"].tolist(),
        times,
        events["eventname"].astype(str).tolist(),
        events["crud"].astype(str).tolist(),
        events["edulevel"].astype(int).tolist(),
        strict=True,
    ):
        mine = per_student.get(uid)
        if mine is not None and t_ns <= as_of_ns:
            mine.append((t_ns, name, crud, edu))

    rows: list[list[float]] = []
    for uid in per_student:
        mine = sorted(per_student[uid], key=lambda e: e[0])
        n = len(mine)
        counts = dict.fromkeys(types, 0)
        n_active = 0
        total_ns = 0
        gaps_ns = 0
        sessions = 0
        days: set[int] = set()
        hour_sum = 0.0
        previous: int | None = None
        for t_ns, name, crud, edu in mine:
            if name in counts:
                counts[name] += 1
            if event_info(name, crud, edu).active:
                n_active += 1
            if previous is not None:
                gaps_ns += t_ns - previous
            if previous is None or t_ns - previous > gap_ns:
                sessions += 1
            else:
                total_ns += t_ns - previous
            previous = t_ns
            local = datetime.fromtimestamp(t_ns // NS_PER_S, UTC).astimezone(zone)
            offset = local.utcoffset() or timedelta(0)
            local_ns = t_ns + int(offset.total_seconds()) * NS_PER_S
            day, rest = divmod(local_ns, NS_PER_DAY)
            days.add(day)
            hour_sum += rest / (3600 * NS_PER_S)
        rows.append(
            [
                float(n),
                *(float(counts[e]) for e in types),
                float(n_active),
                float(n - n_active),
                total_ns / (60 * NS_PER_S),
                float(sessions),
                float(len(days)),
                hour_sum / n if n else math.nan,
                gaps_ns / (3600 * NS_PER_S) / (n - 1) if n > 1 else math.nan,
            ]
        )
    return pd.DataFrame(
        np.array(rows, dtype=np.float64).reshape(len(rows), -1),
        index=pd.Index(list(per_student), name="userid"),
        columns=baseline_feature_names(event_types),
    )


def compare(naive: pd.DataFrame, vectorised: pd.DataFrame, *, rtol: float = 1e-9) -> float:
    """Assert both frames agree on the baseline's features (same students, same NaNs, values
    within ``rtol``); return the largest absolute difference."""
    cols = list(naive.columns)
    fast = vectorised.loc[naive.index, cols]
    a, b = naive.to_numpy(), fast.to_numpy()
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        raise AssertionError("the two implementations disagree on which features are undefined")
    ok = np.isclose(a, b, rtol=rtol, atol=1e-9) | nan_a
    if not ok.all():
        r, c = np.argwhere(~ok)[0]
        raise AssertionError(
            f"feature {cols[c]} of student {naive.index[r]}: naive {a[r, c]!r}, "
            f"vectorised {b[r, c]!r}"
        )
    diff = np.abs(np.where(nan_a, 0.0, a - np.where(nan_b, 0.0, b)))
    return float(diff.max()) if diff.size else 0.0

"""A deliberately naive, per-student reference for the core features.

It loops over students and their events in plain Python, spelling out each definition of
:mod:`ml.features`, so the vectorised implementation can be checked against something obviously
right (and benchmarked against something obviously slow).
"""

from __future__ import annotations

import math

import pandas as pd

from ml.events import event_info


def naive_features(
    events: pd.DataFrame,
    roster: list[int],
    as_of: pd.Timestamp,
    course_start: pd.Timestamp,
    session_gap: pd.Timedelta = pd.Timedelta(minutes=5),  # noqa: B008
    tz: str = "UTC",
) -> pd.DataFrame:
    rows = []
    for uid in roster:
        mine = events[(events["userid"] == uid) & (events["time"] <= as_of)]
        times = sorted(mine["time"].tolist())
        n = len(times)
        total = 0.0
        sessions = 0
        for i, t in enumerate(times):
            if i == 0 or t - times[i - 1] > session_gap:
                sessions += 1
            else:
                total += (t - times[i - 1]).total_seconds() / 60
        local = [t.tz_convert(tz) for t in times]
        days = {(t.year, t.month, t.day) for t in local}
        hours = [t.hour + t.minute / 60 + t.second / 3600 for t in local]
        gaps = [(times[i] - times[i - 1]).total_seconds() / 3600 for i in range(1, n)]
        last = times[-1] if times else course_start
        n_active = sum(
            event_info(str(name), str(crud), int(edu)).active
            for name, crud, edu in zip(
                mine["eventname"].astype(str),
                mine["crud"].astype(str),
                mine["edulevel"].to_numpy(dtype=int),
                strict=True,
            )
        )
        rows.append(
            {
                "userid": uid,
                "n_actions": float(n),
                "n_active": float(n_active),
                "total_time_min": total,
                "n_sessions": float(sessions),
                "active_days": float(len(days)),
                "mean_hour": sum(hours) / n if n else math.nan,
                "mean_interval_h": sum(gaps) / len(gaps) if gaps else math.nan,
                "days_since_last": max((as_of - last).total_seconds(), 0) / 86400,
            }
        )
    return pd.DataFrame(rows).set_index("userid")

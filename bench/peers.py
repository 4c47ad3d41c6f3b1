"""Real peers for the feature pass (#19, item 8): the ARCHE prototype's features computed the
way a data scientist would write them in pandas (a group-by per feature, as the original
prototype did) and in polars (a lazy query over the same frame), beside `ml.features`.

Both read the frame `bench.features` hands every implementation (one row per event: userid,
time in UTC, eventname, crud, edulevel) and return the columns of
`bench.naive.baseline_feature_names`, one row per roster student, so `bench.naive.compare`
checks the values are identical before any time is reported. The active/passive rule is the
project's own (`ml.events.event_info`), applied once per distinct (event, crud, edulevel): a
peer is measured on the same definition, not a simpler one.

Kept in `bench/` only: yardsticks, not second implementations to maintain.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from bench.naive import baseline_feature_names
from ml.events import DEFAULT_EVENT_TYPES, event_info, short_event_name


def _active_table(events: pd.DataFrame) -> pd.DataFrame:
    kinds = events[["eventname", "crud", "edulevel"]].drop_duplicates()
    kinds["active"] = [
        bool(event_info(str(n), str(c), int(e)).active) for n, c, e in kinds.itertuples(index=False)
    ]
    return kinds


def _active_flags(events: pd.DataFrame) -> np.ndarray:
    kinds = _active_table(events)
    keyed = events[["eventname", "crud", "edulevel"]].merge(
        kinds, on=["eventname", "crud", "edulevel"], how="left"
    )
    return keyed["active"].to_numpy(dtype=bool)


def pandas_features(
    events: pd.DataFrame,
    roster: Sequence[int],
    as_of: pd.Timestamp,
    *,
    session_gap: timedelta = timedelta(minutes=5),
    tz: str = "Europe/Paris",
    event_types: Sequence[str] = DEFAULT_EVENT_TYPES,
) -> pd.DataFrame:
    """The prototype's features with pandas group-bys, one per feature family."""
    ev = events.loc[
        events["userid"].isin(roster) & (events["time"] <= pd.Timestamp(as_of)),
        ["userid", "time", "eventname", "crud", "edulevel"],
    ]
    ev = ev.merge(_active_table(ev), on=["eventname", "crud", "edulevel"], how="left")
    ev = ev.sort_values(["userid", "time"], kind="stable")
    by = ev.groupby("userid")
    out = pd.DataFrame(index=pd.Index(list(roster), name="userid"))
    out["n_actions"] = by.size()
    counts = ev[ev["eventname"].isin(event_types)].pivot_table(
        index="userid", columns="eventname", values="time", aggfunc="count"
    )
    for name in event_types:
        col = counts[name] if name in counts else pd.Series(dtype=float)
        out[f"n_{short_event_name(name)}"] = col
    out["n_active"] = by["active"].sum()
    out["n_passive"] = out["n_actions"] - out["n_active"]
    gap = by["time"].diff()
    new_session = gap.isna() | (gap > pd.Timedelta(session_gap))
    ev["in_session"] = gap.where(~new_session, pd.Timedelta(0)).dt.total_seconds()
    ev["new_session"] = new_session
    out["total_time_min"] = ev.groupby("userid")["in_session"].sum() / 60
    out["n_sessions"] = ev.groupby("userid")["new_session"].sum()
    local = ev["time"].dt.tz_convert(tz)
    ev["day"] = local.dt.tz_localize(None).dt.floor("D")
    ev["hour"] = (local.dt.tz_localize(None) - ev["day"]).dt.total_seconds() / 3600
    out["active_days"] = ev.groupby("userid")["day"].nunique()
    out["mean_hour"] = ev.groupby("userid")["hour"].mean()
    span = by["time"].max() - by["time"].min()
    out["mean_interval_h"] = (span.dt.total_seconds() / 3600) / (out["n_actions"] - 1)
    out.loc[out["n_actions"].fillna(0) < 2, "mean_interval_h"] = np.nan
    zero = [c for c in out.columns if c not in ("mean_hour", "mean_interval_h")]
    out[zero] = out[zero].fillna(0)
    return out[baseline_feature_names(event_types)].astype(np.float64)


def polars_features(
    events: pd.DataFrame,
    roster: Sequence[int],
    as_of: pd.Timestamp,
    *,
    session_gap: timedelta = timedelta(minutes=5),
    tz: str = "Europe/Paris",
    event_types: Sequence[str] = DEFAULT_EVENT_TYPES,
) -> pd.DataFrame:
    """The same features as one lazy polars query (conversion from pandas included)."""
    import polars as pl

    # Built from numpy arrays (the event names as category codes): polars reads pandas' own
    # string columns only through pyarrow, which the project does not install.
    names = events["eventname"].astype("category")
    categories = [str(c) for c in names.cat.categories]
    frame = pl.DataFrame(
        {
            "userid": events["userid"].to_numpy(dtype=np.int64),
            "time": pd.DatetimeIndex(events["time"]).as_unit("us").asi8,
            "name": names.cat.codes.to_numpy(dtype=np.int32),
            "active": _active_flags(events),
        }
    ).with_columns(pl.col("time").cast(pl.Datetime("us", "UTC")))
    wanted = {name: categories.index(name) for name in event_types if name in categories}
    cutoff = pd.Timestamp(as_of).tz_convert("UTC").to_pydatetime()
    gap_s = session_gap.total_seconds()
    local = pl.col("time").dt.convert_time_zone(tz).dt.replace_time_zone(None)
    per_type = [
        (pl.col("name") == wanted.get(name, -1)).sum().alias(f"n_{short_event_name(name)}")
        for name in event_types
    ]
    gap = pl.col("time").diff().dt.total_microseconds() / 1e6
    stats = (
        frame.lazy()
        .filter(pl.col("userid").is_in(list(roster)) & (pl.col("time") <= cutoff))
        .sort(["userid", "time"])
        .with_columns(gap=gap.over("userid"), day=local.dt.truncate("1d"), local=local)
        .group_by("userid")
        .agg(
            pl.len().alias("n_actions"),
            *per_type,
            pl.col("active").sum().alias("n_active"),
            (pl.when(pl.col("gap") <= gap_s).then(pl.col("gap")).otherwise(0.0).sum() / 60).alias(
                "total_time_min"
            ),
            (pl.col("gap").is_null() | (pl.col("gap") > gap_s)).sum().alias("n_sessions"),
            pl.col("day").n_unique().alias("active_days"),
            ((pl.col("local") - pl.col("day")).dt.total_microseconds() / 3.6e9)
            .mean()
            .alias("mean_hour"),
            (
                (pl.col("time").max() - pl.col("time").min()).dt.total_microseconds()
                / 3.6e9
                / (pl.len() - 1)
            ).alias("mean_interval_h"),
        )
        .with_columns(
            n_passive=pl.col("n_actions") - pl.col("n_active"),
            mean_interval_h=pl.when(pl.col("n_actions") >= 2).then(pl.col("mean_interval_h")),
        )
        .collect()
    )
    columns = {name: stats[name].to_numpy() for name in stats.columns}
    out = pd.DataFrame(columns).set_index("userid").reindex(pd.Index(list(roster), name="userid"))
    zero = [c for c in out.columns if c not in ("mean_hour", "mean_interval_h")]
    out[zero] = out[zero].fillna(0)
    return out[baseline_feature_names(event_types)].astype(np.float64)


__all__ = ["pandas_features", "polars_features"]

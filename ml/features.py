"""As-of engagement features: one row per enrolled student, from canonical events, vectorised.

:func:`compute_features` first drops every event after ``as_of`` and every event of a user not
on the roster; everything after works on what is left, so nothing after ``as_of`` can influence a
feature (the cohort statistics included). Students without events get a row too, with the values
documented below.

The work is array arithmetic on integer codes, with no per-student Python loop and no string
or datetime objects per event: each event becomes a roster position and a kind (one code per
distinct event name, crud and edulevel, so the event's meaning is looked up once per kind, not
once per event) by lookup tables over Moodle's dense ids; one stable radix sort puts the kept
events in (student, time) order, and each student's events are then one contiguous slice.
Sessions, intervals and calendar days are differences between neighbours summed per slice; the
counts per event type and category, the weeks and the levels reached per activity come from
small dense per-student tables (:class:`_BlockSums`); local time adds the zone's offset, found
once per daylight-saving change (:func:`local_ns`), not per event. The cost is one sort, a few
gathers and a dozen passes over the events: several million events per second on one core.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ml.events import (
    CATEGORIES,
    DEFAULT_EVENT_TYPES,
    EventInfo,
    event_kinds,
    short_event_name,
)

NS_PER_S: Final = 1_000_000_000
NS_PER_DAY: Final = 86_400 * NS_PER_S
NS_PER_WEEK: Final = 7 * NS_PER_DAY
TREND_WINDOW: Final = pd.Timedelta(days=14)
# cells of each per-block table of :class:`_BlockSums` (8 bytes each at most: 32 MB)
BLOCK_CELLS: Final = 1 << 22

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


def _positions(values: np.ndarray, keys: np.ndarray, missing: int = -1) -> np.ndarray:
    """The position of each of ``values`` in the distinct ``keys`` (``missing`` when absent),
    as int32.

    Moodle ids are dense, so a lookup table over the values' range turns this into one gather;
    a sparse range falls back on pandas' hash table.
    """
    if values.size == 0:
        return np.zeros(0, dtype=np.int32)
    lo, hi = int(values.min()), int(values.max())
    if hi - lo > 4 * values.size + 65_536:
        found = np.asarray(pd.Index(keys).get_indexer(values), dtype=np.int32)
        found[found < 0] = missing
        return found
    if lo >= 0 and hi <= 4 * values.size + 65_536:
        lo = 0  # a table from 0 saves subtracting ``lo`` from every value
    lut = np.full(hi - lo + 1, missing, dtype=np.int32)
    inside = (keys >= lo) & (keys <= hi)
    lut[keys[inside] - lo] = np.flatnonzero(inside).astype(np.int32)
    return np.asarray(lut[values - lo if lo else values])


def _utc_offset_s(zone: ZoneInfo, second: int) -> int:
    offset = datetime.fromtimestamp(second, UTC).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def offset_changes(tz: str, lo_ns: int, hi_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """The zone's UTC offsets over ``[lo_ns, hi_ns]``: ``(starts, offsets)`` in ns, where
    ``offsets[0]`` holds before ``starts[0]`` and ``offsets[i + 1]`` from ``starts[i]`` on.

    Offsets come from :mod:`zoneinfo` (what the naive baseline and Python's datetime use). A
    change is located on an hourly grid, then bisected to the exact second, so zones whose
    changes fall on the half hour (Adelaide, Newfoundland) are right to the second. The one
    assumption: a zone does not change its offset twice within an hour.
    """
    zone = ZoneInfo(tz)
    lo_s, hi_s = lo_ns // NS_PER_S, hi_ns // NS_PER_S
    grid = [*range(lo_s, hi_s, 3600), hi_s]
    offs = [_utc_offset_s(zone, g) for g in grid]
    starts: list[int] = []
    values = [offs[0]]
    for a, b, off_a, off_b in zip(grid, grid[1:], offs, offs[1:], strict=False):
        if off_a == off_b:
            continue
        while b - a > 1:  # invariant: offset(a) == off_a, offset(b) != off_a
            mid = (a + b) // 2
            if _utc_offset_s(zone, mid) == off_a:
                a = mid
            else:
                b = mid
        starts.append(b * NS_PER_S)
        values.append(off_b)
    return np.array(starts, dtype=np.int64), np.array(values, dtype=np.int64) * NS_PER_S


def local_ns(t_ns: np.ndarray, tz: str) -> np.ndarray:
    """UTC ns -> local wall-clock ns: the offset of each instant, from the zone's changes.

    A term crosses one or two daylight-saving changes, so adding the first offset and then each
    change to the instants after it is a couple of passes over the array, with no per-event
    calendar arithmetic.
    """
    if tz == "UTC" or t_ns.size == 0:
        return t_ns
    starts, offsets = offset_changes(tz, int(t_ns.min()), int(t_ns.max()))
    if starts.size > 4:
        return np.asarray(t_ns + offsets[np.searchsorted(starts, t_ns, side="right")])
    out: np.ndarray = t_ns + offsets[0]
    for start, delta in zip(starts, np.diff(offsets), strict=True):
        np.add(out, delta, out=out, where=t_ns >= start)
    return out


def _student_order(
    u: np.ndarray, t: np.ndarray, n: int, as_of_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the kept events (roster students, up to ``as_of``) in (student, time)
    order, and each student's number of kept events.

    Logs arrive in time order, so the events after ``as_of`` are a suffix to cut (else one
    stable sort by time comes first; timsort is linear on nearly sorted data), and a stable sort
    on the student alone keeps time order within each. ``u`` is the roster position, -1 for a
    stranger; strangers get the key ``n``, sort last and are cut too. Numpy sorts 16-bit keys by
    radix (linear time), so a cohort of 65,536 or more takes two radix passes, on the low half
    of the key then on the high half (LSD order).
    """
    order: np.ndarray | None = None
    if t.size > 1 and np.any(t[1:] < t[:-1]):
        by_time = np.argsort(t, kind="stable")
        order = by_time[: np.searchsorted(t[by_time], as_of_ns, side="right")]
        key = u[order]
    else:
        key = u[: np.searchsorted(t, as_of_ns, side="right")]
    key = np.where(key >= 0, key, n)
    counts = np.bincount(key, minlength=n + 1)
    if n < 1 << 16:
        perm = np.argsort(key.astype(np.uint16), kind="stable")
    else:
        perm = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
        perm = perm[np.argsort((key[perm] >> 16).astype(np.uint16), kind="stable")]
    perm = perm[: key.size - counts[n]]
    return (perm if order is None else order[perm]), counts[:n]


def _narrow(codes: np.ndarray, n_values: int) -> np.ndarray:
    """``codes`` (0..n_values - 1) in the smallest integer dtype: a cheaper reordering."""
    for dtype in (np.int8, np.int16):
        if n_values <= np.iinfo(dtype).max:
            return codes.astype(dtype)
    return codes.astype(np.int32)


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
    relative: bool = False,
) -> pd.DataFrame:
    """Features of every roster student from the events up to and including ``as_of``.

    With ``relative``, each feature is the student's place in the cohort instead
    (:func:`relative_to_cohort`): what a site-wide model compares across courses.

    ``events`` is a canonical frame (:mod:`ml.events`); only ``userid``, ``time``,
    ``eventname``, ``crud``, ``edulevel`` and ``cmid`` are read. ``roster`` is a frame with a
    ``userid`` column or a sequence of ids; its order is the output's order (index ``userid``).
    ``tz`` sets the calendar for days and hours (ARCHE's is Europe/Paris).

    The steps below share the kept events sorted by (student, time), each student's a
    contiguous run (:class:`_Runs`), so every per-student sum is one ``reduceat`` or
    ``bincount`` over whole arrays; each step frees its large temporaries before the next.
    """
    ids = _roster_ids(roster)
    n = ids.size
    as_of_ts, start_ts, end_ts = _ts(as_of), _ts(course_start), _ts(course_end)
    if end_ts <= start_ts:
        raise ValueError("course_end must be after course_start")
    as_of_ns, start_ns = _ns(as_of_ts), _ns(start_ts)
    gap_ns = int(pd.Timedelta(session_gap).value)
    types = list(event_types)

    t, kind, module, count_i, modules, kind_names, infos = _sorted_events(
        events, ids, as_of_ns, course_modules
    )
    runs = _Runs.of(count_i)
    out: dict[str, np.ndarray] = {"n_actions": runs.count}
    blocks = _BlockSums(n, kind_names, infos, types, modules.size, as_of_ns, start_ns)
    blocks.run(t, kind, module, count_i)
    del kind, module
    _count_features(out, blocks, types, runs.count)
    first = _session_features(out, t, runs, gap_ns)
    _calendar_features(out, t, runs, first, tz)
    del first
    _timing_features(out, t, runs, as_of_ns, start_ns)
    _regularity_features(out, blocks, runs.count, as_of_ns, start_ns)
    _activity_features(out, blocks, modules.size, n)
    elapsed = as_of_ns - start_ns
    course_len = _ns(end_ts) - start_ns
    out["course_progress"] = np.full(n, float(np.clip(elapsed / course_len, 0.0, 1.0)))
    _add_z_scores(out, n)

    # one float block, filled a column at a time: rows of its transpose, contiguous writes
    names = feature_names(event_types)
    matrix = np.empty((len(names), n), dtype=np.float64)
    for row, name in enumerate(names):
        matrix[row] = out[name]
    frame = pd.DataFrame(matrix.T, index=pd.Index(ids, name="userid"), columns=names, copy=False)
    return relative_to_cohort(frame) if relative else frame


def relative_to_cohort(features: pd.DataFrame) -> pd.DataFrame:
    """Each feature as the student's place in their own cohort at the same point of the term:
    the mid-rank percentile in (0, 1), ties sharing their mean rank, NaN kept (issue #17,
    item 2: a site-wide model).

    Courses differ in design (one has weekly quizzes, another a forum and no quiz), so raw
    counts do not compare across courses; a place in the cohort does, and the calendar is
    already relative (features at the same share of each term). A rank is monotone in the
    feature, so every effort direction (`feature_info`) and monotone constraint still holds.
    A feature equal for the whole cohort (an activity the course does not have) gets the middle
    place of everyone: it tells the model nothing, as it should."""
    # Mid-rank percentile: (rank - 1/2) / n, so a cohort's places average 1/2 whatever its
    # size (rank / n would push a class of 12 up to 0.54 on average).
    ranks = features.rank(axis=0, method="average")
    ranked = (ranks - 0.5) / features.notna().sum(axis=0).replace(0, np.nan)
    # The shared course progress stays what it is: the point of the term, not a place.
    if "course_progress" in features.columns:
        ranked["course_progress"] = features["course_progress"]
    return ranked.astype(np.float64)


def _sorted_events(
    events: pd.DataFrame, ids: np.ndarray, as_of_ns: int, course_modules: Sequence[int] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], list[EventInfo]]:
    """The kept events (roster students, up to ``as_of``) in (student, time) order: their
    times, kinds and activity positions (narrowed), each student's count, the activities
    counted, and the kinds' names and meanings.

    Per event first: time, roster position, kind, activity; then one reordering of the kept
    ones. Activities are ``course_modules`` or, when not given, those anyone on the roster
    touched by ``as_of``; the position ``modules.size`` means "none".
    """
    time = pd.DatetimeIndex(events["time"])
    if time.tz is None:
        raise ValueError("event times must be timezone-aware")
    t_all = time.as_unit("ns").asi8
    u_all = _positions(events["userid"].to_numpy(dtype=np.int64), ids)
    kind_all, kind_names, infos = event_kinds(events)
    cmid = events["cmid"]
    cm = cmid.to_numpy(dtype=np.int64, na_value=0)  # Moodle ids start at 1: 0 is "none"
    if course_modules is not None:
        modules = pd.unique(np.asarray(list(course_modules), dtype=np.int64))
    else:  # the activities anyone on the roster touched by as_of
        modules = pd.unique(cm[cmid.notna().to_numpy() & (u_all >= 0) & (t_all <= as_of_ns)])
    module_all = _positions(cm, modules, missing=modules.size)
    if (modules == 0).any():  # an id 0 (not Moodle's) must not match the missing ones
        module_all[cmid.isna().to_numpy()] = modules.size
    del cm
    perm, count_i = _student_order(u_all, t_all, ids.size, as_of_ns)
    t = t_all[perm]
    kind = _narrow(kind_all, len(infos))[perm]
    module = _narrow(module_all, modules.size + 1)[perm]
    return t, kind, module, count_i, modules, kind_names, infos


@dataclass(frozen=True, slots=True)
class _Runs:
    """Where each student's run of sorted events lies."""

    count_i: np.ndarray  # events per student
    count: np.ndarray  # the same as floats (the n_actions feature, and every rate's divisor)
    present: np.ndarray  # the students with at least one event
    starts: np.ndarray  # first position of each present student's run
    last_idx: np.ndarray  # last position of each present student's run

    @classmethod
    def of(cls, count_i: np.ndarray) -> _Runs:
        ends = np.cumsum(count_i)  # one past each student's last sorted event
        present = np.flatnonzero(count_i)
        starts = ends[present] - count_i[present]
        return cls(count_i, count_i.astype(np.float64), present, starts, ends[present] - 1)


def _count_features(
    out: dict[str, np.ndarray], blocks: _BlockSums, types: list[str], count: np.ndarray
) -> None:
    """Counts per event type and per category; active (writing) actions and their share."""
    for k, e in enumerate(types):
        out[f"n_{short_event_name(e)}"] = blocks.per_type[k]
    for k, c in enumerate(CATEGORIES):
        out[f"n_cat_{c}"] = blocks.per_cat[k]
    n_active = blocks.n_active
    out["n_active"] = n_active
    out["n_passive"] = count - n_active
    out["active_ratio"] = np.divide(n_active, count, out=np.zeros(count.size), where=count > 0)


def _session_features(
    out: dict[str, np.ndarray], t: np.ndarray, runs: _Runs, gap_ns: int
) -> np.ndarray:
    """Time on task and sessions, from the gaps to the previous action of the same student:
    a gap up to ``gap_ns`` continues a session and counts as time on task.

    Returns the mask of each student's first event, which :func:`_calendar_features` reuses
    as its buffer."""
    n, present, starts = runs.count.size, runs.present, runs.starts
    gaps = np.empty(t.size, dtype=np.int64)
    if t.size:
        gaps[0] = 0
        np.subtract(t[1:], t[:-1], out=gaps[1:])
    first = np.zeros(t.size, dtype=bool)
    first[starts] = True
    cont = gaps <= gap_ns  # continues a session ...
    cont &= ~first  # ... of the same student
    gaps *= cont
    total_ns, n_cont = np.zeros(n), np.zeros(n)
    if present.size:
        total_ns[present] = np.add.reduceat(gaps, starts)
        n_cont[present] = np.add.reduceat(cont, starts, dtype=np.int64)
    del gaps, cont
    out["total_time_min"] = total_ns / (60 * NS_PER_S)
    n_sessions = runs.count - n_cont
    out["n_sessions"] = n_sessions
    out["mean_session_min"] = np.divide(
        out["total_time_min"], n_sessions, out=np.zeros(n), where=n_sessions > 0
    )
    return first


def _calendar_features(
    out: dict[str, np.ndarray], t: np.ndarray, runs: _Runs, first: np.ndarray, tz: str
) -> None:
    """Active days and mean hour, on the local calendar of ``tz``. ``first`` (each student's
    first event) is overwritten: it becomes the new-day mask."""
    n, count = runs.count.size, runs.count
    local = local_ns(t, tz)
    day = local // NS_PER_DAY
    new_day = first
    new_day[1:] |= day[1:] != day[:-1]
    active_days = np.zeros(n)
    if runs.present.size:
        active_days[runs.present] = np.add.reduceat(new_day, runs.starts, dtype=np.int64)
    out["active_days"] = active_days
    day *= NS_PER_DAY
    hour = np.subtract(local, day, out=day if local is t else local) / (3600 * NS_PER_S)
    del local, day, new_day
    # summed in time order per student, as the naive loop does (bincount adds in array order)
    student = np.repeat(np.arange(n, dtype=np.intp), runs.count_i)
    hour_sum = np.bincount(student, weights=hour, minlength=n)
    del hour, student
    out["mean_hour"] = np.divide(hour_sum, count, out=np.full(n, np.nan), where=count > 0)


def _timing_features(
    out: dict[str, np.ndarray], t: np.ndarray, runs: _Runs, as_of_ns: int, start_ns: int
) -> None:
    """Mean interval between actions and days since the last one (the course start for a
    student with none); a student's gaps telescope to last minus first action."""
    n, present, starts, last_idx = runs.count.size, runs.present, runs.starts, runs.last_idx
    span_ns = np.zeros(n)
    span_ns[present] = t[last_idx] - t[starts]
    n_gaps = runs.count - 1
    out["mean_interval_h"] = np.divide(
        span_ns / (3600 * NS_PER_S), n_gaps, out=np.full(n, np.nan), where=n_gaps > 0
    )
    last = np.full(n, start_ns, dtype=np.int64)
    last[present] = t[last_idx]
    out["days_since_last"] = np.maximum(as_of_ns - last, 0) / NS_PER_DAY


def _regularity_features(
    out: dict[str, np.ndarray],
    blocks: _BlockSums,
    count: np.ndarray,
    as_of_ns: int,
    start_ns: int,
) -> None:
    """Regularity over the weeks elapsed (normalised entropy of the weekly counts, share of
    active weeks) and the trend: the rate of the last 14 days against the rate before."""
    n = count.size
    n_weeks = blocks.n_weeks
    weekly = blocks.weekly
    p = np.divide(weekly, count[:, None], out=np.zeros(weekly.shape), where=weekly > 0)
    plogp = p * np.log(p, out=np.zeros(p.shape), where=p > 0)
    entropy = -plogp.sum(axis=1)
    if n_weeks > 1:
        out["weekly_entropy"] = np.clip(entropy / np.log(n_weeks), 0.0, 1.0)
    else:
        out["weekly_entropy"] = (count > 0).astype(np.float64)
    out["active_weeks_share"] = np.count_nonzero(weekly, axis=1) / n_weeks

    window = int(TREND_WINDOW.value)
    elapsed = as_of_ns - start_ns
    recent = blocks.recent
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


def _activity_features(
    out: dict[str, np.ndarray], blocks: _BlockSums, n_modules: int, n: int
) -> None:
    """Share of the activities touched; cognitive depth and social breadth of those touched
    (mean and highest level)."""
    touched = blocks.touched
    out["share_activities"] = touched / n_modules if n_modules else np.zeros(n)
    for name, sums, highest in (
        ("cognitive_depth", blocks.depth_sum, blocks.depth_max),
        ("social_breadth", blocks.social_sum, blocks.social_max),
    ):
        out[name] = np.divide(sums, touched, out=np.zeros(n), where=touched > 0)
        out[f"{name}_max"] = highest


def _add_z_scores(out: dict[str, np.ndarray], n: int) -> None:
    """Cohort-relative z-scores of :data:`Z_FEATURES` (0 when the cohort does not vary)."""
    for f in Z_FEATURES:
        x = out[f]
        sd = float(np.std(x)) if n else 0.0
        out[f"z_{f}"] = (x - x.mean()) / sd if sd > 0 else np.zeros(n)


class _BlockSums:
    """Per-student tables filled from the sorted events, a block of students at a time.

    Three small dense tables per block: events per (kind, student), a kind being a distinct
    (event name, crud, edulevel); events per (student, week, in the trend's recent window);
    and the highest cognitive and social level reached per (student, activity), filled with
    ``np.maximum.at``. Counts per event type and per category, active actions and the highest
    levels reached are then sums and maxima of the first table's rows (one contiguous row per
    kind), so each event is read once rather than once per feature. The events are sorted by
    student, so a block's events are one contiguous slice and the table indices increase with
    them (cache friendly); the block size keeps each table under :data:`BLOCK_CELLS` cells
    whatever the cohort, the number of kinds or of activities.
    """

    def __init__(
        self,
        n: int,
        kind_names: Sequence[str],
        infos: Sequence[EventInfo],
        types: Sequence[str],
        n_modules: int,
        as_of_ns: int,
        start_ns: int,
    ) -> None:
        self.n, self.n_modules = n, n_modules
        self.as_of_ns, self.start_ns = as_of_ns, start_ns
        self.n_weeks = max(1, int(np.ceil((as_of_ns - start_ns) / NS_PER_WEEK)))
        widest = max(len(infos), n_modules + 1, 2 * self.n_weeks)
        self.block = max(1, BLOCK_CELLS // widest)
        self.kinds = list(zip(kind_names, infos, strict=True))
        self.type_col = {e: k for k, e in enumerate(types)}
        self.depth = np.array([i.depth for i in infos], dtype=np.uint8)
        self.social = np.array([i.social for i in infos], dtype=np.uint8)
        # per feature, one row per student (rows are what the blocks write into)
        self.per_type = np.zeros((len(types), n))
        self.per_cat = np.zeros((len(CATEGORIES), n))
        self.n_active, self.recent = np.zeros(n), np.zeros(n)
        self.depth_max, self.social_max = np.zeros(n), np.zeros(n)
        self.weekly = np.zeros((n, self.n_weeks), dtype=np.int64)
        self.touched, self.depth_sum, self.social_sum = np.zeros(n), np.zeros(n), np.zeros(n)

    def run(self, t: np.ndarray, kind: np.ndarray, module: np.ndarray, counts: np.ndarray) -> None:
        """Fill the tables from events sorted by student; ``counts`` are each student's, and
        ``module`` is an activity's position, ``n_modules`` for an event outside any."""
        ends = np.cumsum(counts)
        for lo in range(0, self.n, self.block):
            hi = min(self.n, lo + self.block)
            a, b = (int(ends[lo - 1]) if lo else 0), int(ends[hi - 1])
            cols = slice(lo, hi)
            # each event's student, counted from the block's first
            student = np.repeat(np.arange(hi - lo, dtype=np.intp), counts[cols])
            self._kinds(cols, student, kind[a:b])
            self._weeks(cols, student, t[a:b])
            self._activities(cols, student, kind[a:b], module[a:b])

    def _kinds(self, cols: slice, student: np.ndarray, kind: np.ndarray) -> None:
        m = cols.stop - cols.start
        table = np.bincount(kind.astype(np.intp) * m + student, minlength=len(self.kinds) * m)
        table = table.reshape(len(self.kinds), m)
        for k, (name, info) in enumerate(self.kinds):
            row = table[k]
            if name in self.type_col:
                self.per_type[self.type_col[name], cols] += row
            self.per_cat[CATEGORIES.index(info.category), cols] += row
            if info.active:
                self.n_active[cols] += row
            seen = row > 0
            np.maximum(self.depth_max[cols], seen * info.depth, out=self.depth_max[cols])
            np.maximum(self.social_max[cols], seen * info.social, out=self.social_max[cols])

    def _weeks(self, cols: slice, student: np.ndarray, t: np.ndarray) -> None:
        w, m = self.n_weeks, cols.stop - cols.start
        # one table of (student, week, in the trend's recent window) cells gives both
        cell = np.clip((t - self.start_ns) // NS_PER_WEEK, 0, w - 1)
        cell += student * w
        cell *= 2
        cell += t > self.as_of_ns - int(TREND_WINDOW.value)
        table = np.bincount(cell, minlength=m * w * 2).reshape(m, w, 2)
        self.weekly[cols] = table.sum(axis=2)
        self.recent[cols] = table[:, :, 1].sum(axis=1)

    def _activities(
        self, cols: slice, student: np.ndarray, kind: np.ndarray, module: np.ndarray
    ) -> None:
        k, m = self.n_modules, cols.stop - cols.start
        if k == 0:
            return
        # column k collects the events outside any activity (cheaper than filtering them)
        cells = student * (k + 1)
        cells += module
        # a cell holds the highest level reached in that activity + 1: 0 marks "never touched"
        hit = None
        for levels, sums in ((self.depth, self.depth_sum), (self.social, self.social_sum)):
            table = np.zeros(m * (k + 1), dtype=np.uint8)
            np.maximum.at(table, cells, levels[kind] + 1)
            table = table.reshape(m, k + 1)
            if hit is None:  # the same cells are touched in both tables
                hit = np.count_nonzero(table[:, :k], axis=1)
                self.touched[cols] = hit
            sums[cols] = table.sum(axis=1, dtype=np.int64) - table[:, k] - hit

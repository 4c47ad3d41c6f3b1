"""As-of features on small hand-built frames, against a naive reference, and without leakage."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml import features as ml_features
from ml.events import canonicalize
from ml.features import Z_FEATURES, compute_features, feature_names, local_ns, offset_changes
from simulation.course import SimulatedCourse
from tests.ml.naive_features import naive_features

START = pd.Timestamp("2026-01-05 00:00", tz="UTC")  # a Monday, winter time in Paris
END = START + pd.Timedelta(weeks=12)
PAGE = "\\mod_page\\event\\course_module_viewed"
QUIZ_SUBMIT = "\\mod_quiz\\event\\attempt_submitted"
QUIZ_REVIEW = "\\mod_quiz\\event\\attempt_reviewed"
POST = "\\mod_forum\\event\\post_created"
CRUD = {PAGE: "r", QUIZ_SUBMIT: "u", QUIZ_REVIEW: "r", POST: "c"}


def frame(rows: Sequence[tuple[int, str, str, int | None]]) -> pd.DataFrame:
    """(userid, UTC time, eventname, cmid) -> a canonical frame."""
    return canonicalize(
        pd.DataFrame(
            {
                "userid": [r[0] for r in rows],
                "time": pd.to_datetime([r[1] for r in rows], utc=True),
                "eventname": [r[2] for r in rows],
                "component": [r[2].split("\\")[1] for r in rows],
                "crud": [CRUD[r[2]] for r in rows],
                "edulevel": [2] * len(rows),
                "cmid": pd.array([r[3] for r in rows], dtype="Int64"),
            }
        )
    )


def features(events: pd.DataFrame, roster: Sequence[int], as_of: str, **kw: object) -> pd.DataFrame:
    kw.setdefault("tz", "UTC")
    return compute_features(events, list(roster), pd.Timestamp(as_of, tz="UTC"), START, END, **kw)  # type: ignore[arg-type]


SESSION = [
    (1, "2026-01-06 10:00:00", PAGE, 1),
    (1, "2026-01-06 10:02:00", PAGE, 1),
    (1, "2026-01-06 10:07:00", PAGE, 2),  # 5 min gap: still the same session
    (1, "2026-01-06 10:20:00", PAGE, 2),  # 13 min gap: a new session
    (1, "2026-01-06 10:21:30", PAGE, 2),
]


def test_sessions_split_at_five_minute_gaps() -> None:
    f = features(frame(SESSION), [1], "2026-01-10")
    assert f.loc[1, "total_time_min"] == pytest.approx(2 + 5 + 1.5)
    assert f.loc[1, "n_sessions"] == 2
    assert f.loc[1, "mean_session_min"] == pytest.approx(8.5 / 2)


def test_session_gap_is_a_parameter() -> None:
    f = features(frame(SESSION), [1], "2026-01-10", session_gap=pd.Timedelta(minutes=3))
    assert f.loc[1, "total_time_min"] == pytest.approx(2 + 1.5)
    assert f.loc[1, "n_sessions"] == 3


def test_active_days_and_mean_hour_follow_the_timezone() -> None:
    events = frame(
        [
            (1, "2026-01-06 10:00:00", PAGE, 1),
            (1, "2026-01-06 14:00:00", PAGE, 1),
            (1, "2026-01-06 23:30:00", PAGE, 1),  # 00:30 on the 7th in Paris (UTC+1)
        ]
    )
    utc = features(events, [1], "2026-01-10")
    paris = features(events, [1], "2026-01-10", tz="Europe/Paris")
    assert utc.loc[1, "active_days"] == 1
    assert paris.loc[1, "active_days"] == 2
    assert utc.loc[1, "mean_hour"] == pytest.approx((10 + 14 + 23.5) / 3)
    assert paris.loc[1, "mean_hour"] == pytest.approx((11 + 15 + 0.5) / 3)


def test_mean_interval_between_actions() -> None:
    events = frame(
        [
            (1, "2026-01-06 08:00", PAGE, 1),
            (1, "2026-01-06 09:00", PAGE, 1),
            (1, "2026-01-06 12:00", PAGE, 1),
            (2, "2026-01-06 12:00", PAGE, 1),
        ]
    )
    f = features(events, [1, 2], "2026-01-10")
    assert f.loc[1, "mean_interval_h"] == pytest.approx(2.0)
    assert np.isnan(f["mean_interval_h"].to_numpy()[1])  # one action has no interval


def test_student_without_events_gets_a_defined_row() -> None:
    f = features(frame(SESSION), [1, 99], "2026-01-20")
    assert list(f.index) == [1, 99]
    zero = f.loc[99]
    for col in ("n_actions", "total_time_min", "n_sessions", "active_days", "n_active"):
        assert zero[col] == 0
    assert zero["share_activities"] == 0
    assert zero["trend"] == 0
    assert zero["weekly_entropy"] == 0
    assert zero["days_since_last"] == pytest.approx(15.0)  # since the course start
    assert np.isnan(zero["mean_hour"])
    assert f.loc[1, "n_actions"] == 5


def test_roster_order_is_kept_and_strangers_are_ignored() -> None:
    events = frame([(7, "2026-01-06 10:00", PAGE, 1), (3, "2026-01-06 10:00", PAGE, 1)])
    f = features(events, [3, 5], "2026-01-10")
    assert list(f.index) == [3, 5]
    assert f["n_actions"].tolist() == [1, 0]
    assert list(f.columns) == feature_names()


def test_trend_compares_the_last_two_weeks_with_before() -> None:
    events = frame(
        [
            (1, "2026-01-06 10:00", PAGE, 1),  # early only
            (2, "2026-02-05 10:00", PAGE, 1),  # recent only
            (3, "2026-01-06 10:00", PAGE, 1),
            (3, "2026-02-05 10:00", PAGE, 1),
        ]
    )
    f = features(events, [1, 2, 3], "2026-02-09")
    assert f.loc[1, "trend"] == -1
    assert f.loc[2, "trend"] == 1
    assert 0 < f["trend"].to_numpy()[2] < 1  # same count, shorter recent window: a higher rate


def test_regularity_spread_over_weeks() -> None:
    even = [(1, f"2026-01-{5 + 7 * w:02d} 10:00", PAGE, 1) for w in range(4)]
    bunched = [(2, "2026-01-06 10:00", PAGE, 1)] * 4
    f = features(frame(even + bunched), [1, 2], "2026-02-02")
    assert f.loc[1, "weekly_entropy"] == pytest.approx(1.0)
    assert f.loc[2, "weekly_entropy"] == pytest.approx(0.0)
    assert f.loc[1, "active_weeks_share"] == 1.0
    assert f.loc[2, "active_weeks_share"] == 0.25


def test_activities_touched_and_cognitive_depth() -> None:
    events = frame(
        [
            (1, "2026-01-06 10:00", PAGE, 1),  # depth 1 in activity 1
            (1, "2026-01-06 10:01", QUIZ_SUBMIT, 2),  # depth 2 in activity 2 ...
            (1, "2026-01-06 10:02", QUIZ_REVIEW, 2),  # ... then 3 (feedback viewed)
            (2, "2026-01-06 10:00", POST, 3),  # depth 4, social 3
        ]
    )
    f = features(events, [1, 2], "2026-01-10", course_modules=[1, 2, 3, 4])
    assert f.loc[1, "share_activities"] == 0.5
    assert f.loc[1, "cognitive_depth"] == pytest.approx((1 + 3) / 2)
    assert f.loc[1, "cognitive_depth_max"] == 3
    assert f.loc[2, "social_breadth"] == 3
    assert f.loc[2, "share_activities"] == 0.25
    assert f.loc[1, "n_active"] == 1
    assert f.loc[1, "active_ratio"] == pytest.approx(1 / 3)


def test_cohort_z_scores() -> None:
    events = frame([(u, "2026-01-06 10:00", PAGE, 1) for u in (1, 2, 2, 3, 3, 3)])
    f = features(events, [1, 2, 3], "2026-01-10")
    for name in Z_FEATURES:
        z = f[f"z_{name}"]
        assert z.mean() == pytest.approx(0.0, abs=1e-12)
        assert z.std(ddof=0) in (pytest.approx(1.0), 0.0)
    assert f["z_n_actions"].is_monotonic_increasing


def test_vectorised_features_match_the_naive_reference(course: SimulatedCourse) -> None:
    off = course.past[0].to_offering()
    as_of = off.course_start + (off.course_end - off.course_start) * 0.6
    roster = off.roster["userid"].tolist()
    fast = compute_features(
        off.events, roster, as_of, off.course_start, off.course_end, tz="Europe/Paris"
    )
    slow = naive_features(off.events, roster, as_of, off.course_start, tz="Europe/Paris")
    pd.testing.assert_frame_equal(fast[slow.columns], slow, check_exact=False, rtol=1e-9)


# ------------------------------------------------------------------ no leakage
def test_events_after_as_of_change_nothing(course: SimulatedCourse) -> None:
    off = course.past[1].to_offering()
    as_of = off.course_start + (off.course_end - off.course_start) * 0.3
    kw = {"course_modules": off.course_modules, "tz": "Europe/Paris"}
    before = compute_features(off.events, off.roster, as_of, off.course_start, off.course_end, **kw)  # type: ignore[arg-type]
    past = off.events[off.events["time"] <= as_of]
    only_past = compute_features(past, off.roster, as_of, off.course_start, off.course_end, **kw)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(before, only_past)
    # append a burst of future activity by every student, on new activities too
    future = past.sample(n=2000, replace=True, random_state=1).copy()
    future["time"] = as_of + pd.to_timedelta(np.arange(1, 2001), unit="s")
    future["cmid"] = pd.array(np.arange(2000) % 50 + 1000, dtype="Int64")
    after = compute_features(
        pd.concat([past, future], ignore_index=True),
        off.roster,
        as_of,
        off.course_start,
        off.course_end,
        **kw,  # type: ignore[arg-type]
    )
    pd.testing.assert_frame_equal(before, after)
    # the same events, seen a day later, do change the features: the test can fail
    later = compute_features(
        pd.concat([past, future], ignore_index=True),
        off.roster,
        as_of + pd.Timedelta(days=1),
        off.course_start,
        off.course_end,
        **kw,  # type: ignore[arg-type]
    )
    assert not later.equals(before)


@settings(max_examples=25, deadline=None)
@given(
    past=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 20 * 86400)), max_size=40),
    future=st.lists(
        st.tuples(st.integers(1, 6), st.integers(1, 30 * 86400)), min_size=1, max_size=40
    ),
)
def test_no_future_event_leaks_property(
    past: list[tuple[int, int]], future: list[tuple[int, int]]
) -> None:
    as_of = START + pd.Timedelta(days=20)
    rows = [(u, str(START + pd.Timedelta(seconds=s)), PAGE, u) for u, s in past]
    rows_f = [(u, str(as_of + pd.Timedelta(seconds=s)), POST, 7) for u, s in future]
    base = compute_features(frame(rows), [1, 2, 3, 4, 5], as_of, START, END, tz="UTC")
    both = compute_features(frame(rows + rows_f), [1, 2, 3, 4, 5], as_of, START, END, tz="UTC")
    pd.testing.assert_frame_equal(base, both)


# ------------------------------------------------------------------ local time, ordering, sizes
def _zoneinfo_local_ns(t_ns: np.ndarray, tz: str) -> np.ndarray:
    """What Python's datetime says, one instant at a time (offsets apply per whole second)."""
    zone = ZoneInfo(tz)
    offsets = [
        datetime.fromtimestamp(int(t) // 1_000_000_000, UTC).astimezone(zone).utcoffset()
        for t in t_ns
    ]
    return t_ns + np.array([int(o.total_seconds()) for o in offsets]) * 1_000_000_000  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tz", "change"),
    [
        ("Europe/Paris", "2026-03-29 01:00:00"),  # spring forward
        ("Europe/Paris", "2026-10-25 01:00:00"),  # fall back: 02:00-03:00 local happens twice
        ("Australia/Adelaide", "2026-04-04 16:30:00"),  # a change on the half hour (UTC)
        ("America/St_Johns", "2026-03-08 05:30:00"),  # UTC-3:30 -> UTC-2:30
    ],
)
def test_local_time_follows_the_zone_to_the_second_around_a_change(tz: str, change: str) -> None:
    at = pd.Timestamp(change, tz="UTC").value
    ns = 1_000_000_000
    t = np.array(
        [at - 3 * 3600 * ns, at - ns, at - 1, at, at + 1, at + ns, at + 3 * 3600 * ns],
        dtype=np.int64,
    )
    expected = _zoneinfo_local_ns(t, tz)
    assert not np.array_equal(expected - t, np.full(t.size, expected[0] - t[0]))  # it changes
    np.testing.assert_array_equal(local_ns(t, tz), expected)
    np.testing.assert_array_equal(local_ns(t[::-1].copy(), tz), expected[::-1])


def test_local_time_over_years_of_changes() -> None:
    """More than a handful of changes in range: the lookup by binary search."""
    rng = np.random.default_rng(0)
    lo = pd.Timestamp("2020-01-01", tz="UTC").value
    hi = pd.Timestamp("2026-01-01", tz="UTC").value
    t = rng.integers(lo, hi, 2000)
    starts, _ = offset_changes("Europe/Paris", int(t.min()), int(t.max()))
    assert starts.size == 12  # two a year
    np.testing.assert_array_equal(
        local_ns(t, "Europe/Paris"), _zoneinfo_local_ns(t, "Europe/Paris")
    )
    assert offset_changes("Asia/Kolkata", lo, hi)[0].size == 0  # no daylight saving
    np.testing.assert_array_equal(local_ns(t, "UTC"), t)


def test_event_order_does_not_matter(course: SimulatedCourse) -> None:
    off = course.past[2].to_offering()
    as_of = off.course_start + (off.course_end - off.course_start) * 0.7
    ordered = compute_features(
        off.events, off.roster, as_of, off.course_start, off.course_end, tz="Europe/Paris"
    )
    shuffled = off.events.sample(frac=1.0, random_state=3)
    assert not shuffled["time"].is_monotonic_increasing
    mixed = compute_features(
        shuffled, off.roster, as_of, off.course_start, off.course_end, tz="Europe/Paris"
    )
    pd.testing.assert_frame_equal(ordered, mixed)
    assert ordered["n_actions"].sum() > 500


def test_blocks_of_students_give_the_same_features(
    course: SimulatedCourse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cohort too large for one table is processed a few students at a time: same result."""
    off = course.past[3].to_offering()
    as_of = off.course_start + (off.course_end - off.course_start) * 0.5
    args = (off.events, off.roster, as_of, off.course_start, off.course_end)
    whole = compute_features(*args, course_modules=off.course_modules)
    touched = compute_features(*args)  # the activities touched by anyone, not the course's
    monkeypatch.setattr(ml_features, "BLOCK_CELLS", 150)  # a few students per block
    # a student takes at least 2 cells per week elapsed: at most 150 // (2 * weeks) per block
    weeks = int(np.ceil((as_of - off.course_start) / pd.Timedelta(weeks=1)))
    assert len(off.roster) > 3 * (150 // (2 * weeks))
    pd.testing.assert_frame_equal(whole, compute_features(*args, course_modules=off.course_modules))
    pd.testing.assert_frame_equal(touched, compute_features(*args))


def test_a_cohort_beyond_65535_students() -> None:
    """Roster positions past 16 bits sort in two radix passes: the students stay apart."""
    roster = list(range(1, 70_001))
    events = frame(
        [
            (69_999, "2026-01-06 10:00:00", PAGE, 1),
            (3, "2026-01-06 10:01:00", PAGE, 1),
            (69_999, "2026-01-06 10:03:00", QUIZ_SUBMIT, 2),
            (65_537, "2026-01-06 10:04:00", PAGE, 1),
            (3, "2026-01-06 10:30:00", PAGE, 2),
            (69_999, "2026-01-06 10:20:00", PAGE, 1),
        ]
    )
    big = features(events, roster, "2026-01-10", course_modules=[1, 2])
    small = features(events, [3, 65_537, 69_999], "2026-01-10", course_modules=[1, 2])
    cols = [c for c in big.columns if not c.startswith("z_")]
    pd.testing.assert_frame_equal(big.loc[[3, 65_537, 69_999], cols], small[cols])
    assert small["n_actions"].tolist() == [2, 1, 3]
    assert small.loc[69_999, "total_time_min"] == 3.0
    assert small.loc[69_999, "n_sessions"] == 2
    assert big["n_actions"].sum() == 6


def test_sparse_user_ids_and_events_outside_any_activity() -> None:
    huge = 10**12
    events = frame([(huge, "2026-01-06 10:00", PAGE, None), (huge, "2026-01-06 10:01", POST, None)])
    f = features(events, [5, huge], "2026-01-10")
    assert f["n_actions"].tolist() == [0, 2]
    assert f.loc[huge, "share_activities"] == 0
    assert f.loc[huge, "cognitive_depth"] == 0
    assert f.loc[huge, "cognitive_depth_max"] == 4  # levels count outside activities too

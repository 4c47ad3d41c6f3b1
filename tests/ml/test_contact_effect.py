"""The effect of contacts (#16 item 7): the estimate recovers a planted effect within its
interval and finds none where none was planted, on simulated courses (``contact_world``: two
runs of each seed, with and without the effect, so the truth is known student by student), and
keeps its invariants on any panel (hypothesis)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from random import Random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.contact_effect import (
    MIN_CONTACTED,
    MIN_CONTROLS,
    Contacts,
    EffectEstimate,
    chance_change_effect,
    estimate_contact_effect,
    final_outcome_effect,
)
from tests.ml.contact_world import ContactWorld, contact_world

SEEDS = tuple(range(1, 9))
HORIZON = 2.0
N_BOOT = 1000


def _worlds() -> list[ContactWorld]:
    return [contact_world(seed) for seed in SEEDS]


def _covers(e: EffectEstimate, value: float) -> bool:
    assert e.ci_low is not None
    assert e.ci_high is not None
    return e.ci_low <= value <= e.ci_high


def _row(e: EffectEstimate) -> str:
    return f"{e.estimate:+.3f} [{e.ci_low:+.3f}, {e.ci_high:+.3f}]"


# --------------------------------------------------------------------------- simulated courses
# Eight seeds decided before looking at any result, each a course of about 100 students with
# 33 to 56 of them contacted at weeks 3.5 and 6.5. A 95 % interval misses its target about once
# in twenty, so "every seed" is asked where it held and "all but one" where one seed's draw of
# who was contacted happens to be unlucky (seed 8: the students contacted there would have done
# worse anyway, by 6 points of chance, 2 points of grade, in the run without any effect).


def test_the_planted_rise_in_pass_chance_is_recovered_within_its_interval() -> None:
    rows = []
    for world in _worlds():
        e = chance_change_effect(world.chances(True), world.contacts, n_boot=N_BOOT)
        truth = world.true_chance_effect(HORIZON)
        rows.append((world.seed, truth, _row(e)))
        assert e.n_contacted == len(world.contacts)  # all measured and matched
        assert truth > 0.05
        assert _covers(e, truth), rows[-1]
        assert e.direction == "higher", rows[-1]


def test_no_change_in_chance_is_found_where_none_was_planted() -> None:
    misses = []
    for world in _worlds():
        e = chance_change_effect(world.chances(False), world.contacts, n_boot=N_BOOT)
        assert e.estimate is not None
        assert abs(e.estimate) < 0.07
        if not _covers(e, 0.0):
            misses.append((world.seed, _row(e)))
    assert len(misses) <= 1, misses


def test_end_of_term_final_grades_recover_the_planted_points() -> None:
    """4 points of 20 planted (3.4 to 3.9 on average once a missing total counts 0 and the
    scale caps at 20); none planted in the other run."""
    missed_truth, found_none, found_where_none = [], [], []
    for world in _worlds():
        planted, _ = final_outcome_effect(
            world.chances(True), world.contacts, world.outcomes(True), n_boot=N_BOOT
        )
        plain, _ = final_outcome_effect(
            world.chances(False), world.contacts, world.outcomes(False), n_boot=N_BOOT
        )
        assert planted is not None
        assert plain is not None
        truth = world.true_final_effect("grade")
        assert 3.0 < truth <= 4.0
        if not _covers(planted, truth):
            missed_truth.append((world.seed, truth, _row(planted)))
        if planted.direction != "higher":
            found_none.append((world.seed, _row(planted)))
        if not _covers(plain, 0.0):
            found_where_none.append((world.seed, _row(plain)))
    assert not missed_truth
    assert len(found_none) <= 1, found_none
    assert not found_where_none


def test_end_of_term_pass_rate_follows_the_planted_points() -> None:
    """A pass rate is the noisier outcome (0 or 1 per student, 14 to 28 controls): its interval
    holds the true gain in pass rate in all but one seed, and 0 in the run without an effect in
    all but two (seeds 5 and 8)."""
    missed_truth, found_where_none = [], []
    for world in _worlds():
        _, planted = final_outcome_effect(
            world.chances(True), world.contacts, world.outcomes(True), n_boot=N_BOOT
        )
        _, plain = final_outcome_effect(
            world.chances(False), world.contacts, world.outcomes(False), n_boot=N_BOOT
        )
        assert planted is not None
        assert plain is not None
        if not _covers(planted, world.true_final_effect("passed")):
            missed_truth.append(world.seed)
        if not _covers(plain, 0.0):
            found_where_none.append(world.seed)
    assert len(missed_truth) <= 1, missed_truth
    assert len(found_where_none) <= 2, found_where_none


def test_the_report_holds_both_and_the_estimate_is_seeded() -> None:
    world = contact_world(SEEDS[0])
    a = estimate_contact_effect(
        world.chances(True), world.contacts, world.outcomes(True), n_boot=300, seed=4
    )
    b = estimate_contact_effect(
        world.chances(True), world.contacts, world.outcomes(True), n_boot=300, seed=4
    )
    assert a == b
    assert a.final_grade is not None
    assert a.pass_rate is not None
    assert a.chance_change.kind == "observed_difference"
    assert a.chance_change.mean_contacted is not None
    assert a.chance_change.mean_controls is not None
    assert a.chance_change.estimate == pytest.approx(
        a.chance_change.mean_contacted - a.chance_change.mean_controls
    )
    only = estimate_contact_effect(world.chances(True), world.contacts, n_boot=300, seed=4)
    assert only.final_grade is None
    assert only.pass_rate is None
    assert only.chance_change == a.chance_change


# --------------------------------------------------------------------------- the rules, by hand


def _panel(paths: Mapping[Any, list[float]], weeks: list[float] | None = None) -> pd.DataFrame:
    rows = []
    for student, path in paths.items():
        for k, chance in enumerate(path):
            rows.append((student, float(weeks[k] if weeks else k + 1), chance))
    return pd.DataFrame(rows, columns=["student", "week", "chance"])


def test_a_student_contacted_inside_the_window_is_no_control_but_is_one_before() -> None:
    flat = [0.3] * 10
    paths = {"a": list(flat), "b": list(flat), "c": [0.3] * 5 + [0.9] * 5}
    # a contacted at 3.5 (window 3.5 -> 5.5); c rises at week 6, after its own contact at 5.5
    kw = {"min_contacted": 1, "min_controls": 1, "n_boot": 50}
    inside = chance_change_effect(_panel(paths), {"a": 3.5, "c": 5.0}, **kw)
    # c is contacted at 5.0, inside a's window: only b is a's control; c's own window 5 -> 7
    # has b as control too
    assert inside.n_controls == 1
    assert inside.n_contacted == 2
    after = chance_change_effect(_panel(paths), {"a": 3.5, "c": 5.6}, **kw)
    # c contacted after a's window ends: a control of a (b and c), and contacted itself
    assert after.n_controls == 2
    assert after.estimate is not None
    # a's difference 0, c's (0.9 - 0.3) - 0: mean 0.3
    assert after.estimate == pytest.approx(0.3)


def test_final_outcomes_take_only_never_contacted_controls() -> None:
    paths = {s: [0.3] * 6 for s in "abcd"}
    outcomes = pd.DataFrame({"student": list("abcd"), "grade": [12.0, 8.0, 15.0, 9.0]})
    grade, passed = final_outcome_effect(
        _panel(paths), {"a": 2.5, "c": 4.5}, outcomes, min_contacted=1, min_controls=1, n_boot=50
    )
    assert passed is None  # no such column
    assert grade is not None
    assert grade.n_controls == 2  # b and d; c was contacted later
    assert grade.estimate == pytest.approx(((12 - 8.5) + (15 - 8.5)) / 2)


def test_too_recent_without_a_chance_and_unmatched_are_counted() -> None:
    paths = {s: [0.2] * 8 for s in range(12)}
    paths[11] = [0.9] * 8
    contacts = {0: 7.0, 1: 0.5, 11: 3.0, 2: 3.0}
    e = chance_change_effect(_panel(paths), contacts, min_contacted=1, min_controls=1, n_boot=50)
    assert e.n_too_recent == 1  # 7 + 2 > week 8, the newest scoring
    assert e.n_without_data == 1  # before the first scoring
    assert e.n_unmatched == 1  # nobody else near 0.9
    assert e.n_contacted == 1
    stale = chance_change_effect(
        _panel(paths, weeks=[1, 2, 3, 4, 5, 6, 7, 10]), {2: 7.5}, min_contacted=1,
        min_controls=1, max_gap_weeks=1.0, n_boot=50,
    )  # fmt: skip
    assert stale.n_without_data == 1  # at 9.5 the newest scoring (week 7) is too old


def test_too_few_says_so_with_its_minimum() -> None:
    paths = {s: [0.3, 0.35, 0.4, 0.45] for s in range(40)}
    few = dict.fromkeys(range(MIN_CONTACTED - 1), 1.5)
    e = chance_change_effect(_panel(paths), few)
    assert (e.reason, e.estimate, e.ci_low, e.ci_high, e.direction) == (
        "too_few_contacted", None, None, None, None
    )  # fmt: skip
    assert e.n_contacted == MIN_CONTACTED - 1
    assert e.min_contacted == MIN_CONTACTED
    lonely = dict.fromkeys(range(40 - MIN_CONTROLS + 1), 1.5)
    e = chance_change_effect(_panel(paths), lonely)
    assert e.reason == "too_few_controls"
    assert e.n_controls == MIN_CONTROLS - 1
    assert not e.sufficient


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="chance"):
        chance_change_effect(pd.DataFrame({"student": [1], "week": [1.0]}), {})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        chance_change_effect(_panel({1: [1.5]}), {})
    with pytest.raises(ValueError, match="horizon"):
        chance_change_effect(_panel({1: [0.5]}), {}, horizon_weeks=0)


# --------------------------------------------------------------------------- invariants


@st.composite
def panels(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[int, float], pd.DataFrame]:
    """A panel of 10 to 30 students over 8 weekly scorings, some contacted between weeks 1
    and 6 (a few more than once), and final grades."""
    n = draw(st.integers(10, 30))
    start = draw(st.lists(st.floats(0.02, 0.98), min_size=n, max_size=n))
    steps = draw(st.lists(st.floats(-0.08, 0.08), min_size=7, max_size=7))
    rng_seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(rng_seed)
    paths = np.clip(
        np.array(start)[:, None] + np.cumsum(np.r_[0.0, steps])[None, :]
        + rng.normal(0, 0.05, (n, 8)),
        0.0, 1.0,
    )  # fmt: skip
    panel = _panel({s: list(paths[s]) for s in range(n)})
    who = draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True))
    contacts = {s: float(draw(st.sampled_from([1.5, 2.0, 3.5, 4.0, 5.5, 6.0]))) for s in who}
    grades = pd.DataFrame({"student": range(n), "grade": rng.uniform(0, 20, n)})
    grades["passed"] = (grades["grade"] >= 10).astype(float)
    return panel, contacts, grades


def _all(
    panel: pd.DataFrame, contacts: Contacts, grades: pd.DataFrame
) -> list[EffectEstimate | None]:
    report = estimate_contact_effect(
        panel, contacts, grades, n_boot=200, min_contacted=3, min_controls=3
    )
    return [report.chance_change, report.final_grade, report.pass_rate]


@settings(max_examples=30, deadline=None)
@given(panels())
def test_no_contacts_no_estimate(case: tuple[pd.DataFrame, dict[int, float], pd.DataFrame]) -> None:
    panel, _, grades = case
    for e in _all(panel, {}, grades):
        assert e is not None
        assert (e.reason, e.estimate, e.n_contacted) == ("no_contacts", None, 0)


@settings(max_examples=30, deadline=None)
@given(panels(), st.randoms(use_true_random=False))
def test_relabelling_students_changes_nothing(
    case: tuple[pd.DataFrame, dict[int, float], pd.DataFrame], random: Random
) -> None:
    panel, contacts, grades = case
    ids = sorted(panel["student"].unique())
    shuffled = list(ids)
    random.shuffle(shuffled)
    label = {s: f"student-{t}" for s, t in zip(ids, shuffled, strict=True)}
    renamed = panel.assign(student=panel["student"].map(label)).sample(frac=1.0, random_state=3)
    again = _all(
        renamed,
        {label[s]: w for s, w in reversed(list(contacts.items()))},
        grades.assign(student=grades["student"].map(label)),
    )
    assert again == _all(panel, contacts, grades)


@settings(max_examples=30, deadline=None)
@given(panels(), st.floats(-0.3, 0.3))
def test_identical_trajectories_give_zero_and_a_shift_gives_the_shift(
    case: tuple[pd.DataFrame, dict[int, float], pd.DataFrame], shift: float
) -> None:
    """Everyone on the same path: the contacted differ from their controls by nothing; then
    the contacted gain ``shift`` after their contact (and in their grade): exactly that."""
    panel, contacts, grades = case
    path = panel.loc[panel["student"] == 0].set_index("week")["chance"] * 0.4 + 0.3
    same = panel.assign(chance=panel["week"].map(path))
    flat_grades = grades.assign(grade=10.0, passed=1.0)
    for e in _all(same, contacts, flat_grades):
        assert e is not None
        if e.estimate is not None:
            assert e.estimate == pytest.approx(0.0, abs=1e-12)
            assert e.ci_low == pytest.approx(0.0, abs=1e-12)
            assert e.ci_high == pytest.approx(0.0, abs=1e-12)
    when = same["student"].map(contacts).fillna(np.inf)
    lifted = same.assign(chance=same["chance"] + np.where(same["week"] > when, shift, 0.0))
    graded = flat_grades.assign(
        grade=10.0 + np.where(flat_grades["student"].isin(list(contacts)), shift, 0.0)
    )
    change, grade, _ = _all(lifted, contacts, graded)
    for e in (change, grade):
        assert e is not None
        if e.estimate is not None:
            assert e.estimate == pytest.approx(shift, abs=1e-9)


def test_relabelling_keeps_the_interval_on_a_simulated_course() -> None:
    world = contact_world(SEEDS[0])
    base = chance_change_effect(world.chances(True), world.contacts, n_boot=300)
    shift = {s: 10_000_000 - int(s) for s in world.chances(True)["student"].unique()}
    moved = chance_change_effect(
        world.chances(True).assign(student=world.chances(True)["student"].map(shift)),
        {shift[s]: w for s, w in world.contacts.items()},
        n_boot=300,
    )
    assert dataclasses.astuple(moved) == dataclasses.astuple(base)

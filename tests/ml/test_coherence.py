"""One coherent estimate per student (issue #14): invariants over every prediction of simulated
courses at several seeds and points of the term, and property tests of the grade distribution.

Hypothesis draws the same cases on every run (the derandomized profile of tests/conftest.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml.dataset import DEFAULT_CHECKPOINTS, TrainingSet, build_training_set
from ml.distribution import P_FLOOR, GradeDistribution
from ml.explain import what_if_row
from ml.feature_info import effort_of, effort_signs, log_columns
from ml.models import (
    LINEAR_FAMILIES,
    PassChanceModel,
    RegressionModel,
    fit_regressor,
    regressor_candidates,
)
from ml.registry import ModelBundle, load_bundle, save_bundle
from ml.training import score_students
from simulation.course import simulate_course

SEEDS = (11, 12)
PASS_MARK = 10.0


@dataclass(frozen=True)
class Case:
    """A version trained on four past offerings at one checkpoint, and a fifth to score."""

    seed: int
    checkpoint: float
    bundle: ModelBundle
    scored: pd.DataFrame
    X: pd.DataFrame  # the fifth offering's features
    train: TrainingSet


def _case(seed: int, checkpoint: float, every: TrainingSet, family: str) -> Case:
    part = every.at(checkpoint)
    last = sorted(pd.unique(part.groups))[-1]
    held = (part.groups == last).to_numpy()
    keep = ~held
    train = TrainingSet(
        part.X[keep].reset_index(drop=True),
        part.grade[keep].reset_index(drop=True),
        part.passed[keep].reset_index(drop=True),
        part.groups[keep].reset_index(drop=True),
        part.checkpoint[keep].reset_index(drop=True),
        part.userid[keep].reset_index(drop=True),
        part.scale,
        part.pass_mark,
    )
    reg = fit_regressor(
        train.X, train.grade, train.groups, candidates=[family], n_splits=4, pass_mark=PASS_MARK
    )
    bundle = ModelBundle(reg, PassChanceModel(reg), {"gate": {"passed": True}})
    X = part.X[held].reset_index(drop=True)
    return Case(seed, checkpoint, bundle, score_students(bundle, X), X, train)


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    out = []
    for seed in SEEDS:
        course = simulate_course(n_past=5, n_students=30, seed=seed, current_progress=None)
        every = build_training_set([o.to_offering() for o in course.past])
        for i, cp in enumerate(DEFAULT_CHECKPOINTS):
            # every monotone family in turn: a linear one, the gradient boosting, their mean
            out.append(_case(seed, cp, every, ("ridge", "hgb", "ensemble")[i % 3]))
    return out


def test_every_prediction_is_coherent(cases: list[Case]) -> None:
    assert len(cases) == len(SEEDS) * len(DEFAULT_CHECKPOINTS)
    for case in cases:
        s = case.scored
        where = f"seed {case.seed}, checkpoint {case.checkpoint}"
        # a range contains its value, inside [0, 1], never at 0 or 1
        assert (s["p_pass_low"] <= s["p_pass"]).all()
        assert (s["p_pass"] <= s["p_pass_high"]).all()
        assert (s["p_pass_low"] >= P_FLOOR).all()
        assert (s["p_pass_high"] <= 1 - P_FLOOR).all()
        assert ((s["p_pass"] > 0) & (s["p_pass"] < 1)).all(), where
        assert ((s["p_pass_std"] >= 0) & np.isfinite(s["p_pass_std"])).all(), where
        assert (s["grade_low"] <= s["grade"]).all()
        assert (s["grade"] <= s["grade_high"]).all()
        assert (s["grade_low"] >= 0).all()
        assert (s["grade_high"] <= 20).all()
        # the chance reaches 50 % exactly when the grade reaches the pass mark
        assert ((s["p_pass"] >= 0.5) == (s["grade"] >= PASS_MARK)).all(), where
        assert (s["at_risk"] == (s["grade"] < PASS_MARK)).all(), where
        # an interval wholly above the mark means a high chance, wholly below a low one
        n = case.bundle.regressor.distribution.n
        slack = 0.05 + 1 / (n + 1)
        assert (s.loc[s["grade_low"] >= PASS_MARK, "p_pass"] >= 1 - slack).all(), where
        assert (s.loc[s["grade_high"] < PASS_MARK, "p_pass"] <= slack).all(), where


def _effort_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if effort_of(c) != 0 and not c.startswith("z_")]


@given(data=st.data())
def test_more_effort_never_lowers_the_grade_or_the_chance(
    cases: list[Case], data: st.DataObject
) -> None:
    case = data.draw(st.sampled_from(cases), label="case")
    reg = case.bundle.regressor
    columns = list(case.X.columns)
    student = data.draw(st.integers(0, len(case.X) - 1), label="student")
    feature = data.draw(st.sampled_from(_effort_columns(columns)), label="feature")
    step = data.draw(st.floats(0.0, 50.0, allow_nan=False), label="more effort")
    row = case.X.to_numpy(dtype=np.float64)[student]
    now = float(row[columns.index(feature)]) if np.isfinite(row[columns.index(feature)]) else 0.0
    sign = effort_of(feature)
    changes = {feature: max(0.0, now + sign * step)}
    z = f"z_{feature}"
    if z in columns:  # the cohort z-score moves with its feature, as the app's what-if does
        spread = float(case.train.X[feature].std(ddof=0)) or 1.0
        changes[z] = float(np.nan_to_num(row[columns.index(z)])) + (changes[feature] - now) / spread
    result = what_if_row(row, columns, changes, regressor=reg, classifier=case.bundle.classifier)
    before, after = result["current"], result["what_if"]
    assert after["grade"] >= before["grade"] - 1e-9
    assert after["p_pass"] >= before["p_pass"] - 1e-12
    assert after["grade_low"] >= before["grade_low"] - 1e-9
    assert after["grade_high"] >= before["grade_high"] - 1e-9
    assert (after["p_pass"] >= 0.5) == (after["grade"] >= PASS_MARK)


def test_the_registry_round_trip_keeps_every_prediction(cases: list[Case], tmp_path: Path) -> None:
    for i, case in enumerate(cases[:: len(DEFAULT_CHECKPOINTS) - 1]):
        reg = case.bundle.regressor
        save_bundle(
            reg, case.bundle.classifier, tmp_path / str(i), report={"gate": {"passed": True}}
        )
        loaded = load_bundle(tmp_path / str(i))
        pd.testing.assert_frame_equal(score_students(loaded, case.X), case.scored)


# ------------------------------------------------------------------ the distribution itself
residual_sets = st.lists(
    st.floats(-20.0, 20.0, allow_nan=False, allow_infinity=False), min_size=2, max_size=60
)
predictions = st.lists(st.floats(-5.0, 25.0, allow_nan=False), min_size=1, max_size=20)


@given(
    residuals=residual_sets,
    preds=predictions,
    shift=st.floats(0.0, 5.0),
    mark=st.floats(0.5, 20.0),
    location_clip=st.booleans(),
)
def test_the_distribution_is_coherent_for_any_scores(
    residuals: list[float], preds: list[float], shift: float, mark: float, location_clip: bool
) -> None:
    dist = GradeDistribution(np.asarray(residuals), scale=20.0, pass_mark=mark, shift_sd=shift,
                             location_clip=location_clip)  # fmt: skip
    pred = np.sort(np.asarray(preds))
    shown = dist.summary(pred)
    p, low, high = shown["p_pass"], shown["p_pass_low"], shown["p_pass_high"]
    assert ((low >= P_FLOOR) & (low <= p) & (p <= high) & (high <= 1 - P_FLOOR)).all()
    assert ((p >= 0.5) == (shown["grade"] >= mark)).all()
    assert ((shown["grade_low"] <= shown["grade"]) & (shown["grade"] <= shown["grade_high"])).all()
    # a higher point prediction never lowers anything shown
    for key in ("grade", "grade_low", "grade_high", "p_pass"):
        assert (np.diff(shown[key]) >= -1e-12).all(), key
    # the chance never goes below what n scores can support
    assert (p >= 1 / (dist.n + 1) - 1e-12).all()


@given(
    residuals=st.lists(st.floats(-8.0, 8.0, allow_nan=False), min_size=20, max_size=80),
    pred=st.floats(0.0, 20.0),
)
def test_the_chance_is_the_share_of_calibration_grades_at_the_mark(
    residuals: list[float], pred: float
) -> None:
    """P(grade >= mark) of the smoothed law stays within one rank of the plain count."""
    r = np.asarray(residuals)
    dist = GradeDistribution(r, scale=20.0, pass_mark=10.0)
    count = (np.sum(pred + r >= 10.0) + 0.5) / (r.size + 1)
    p = float(dist.p_at_least(np.array([pred]))[0])
    assert abs(p - count) <= 1.5 / (r.size + 1) + 1e-6


@given(
    residuals=residual_sets,
    below=st.floats(-30.0, 0.0),
    above=st.floats(20.0, 50.0),
    shift=st.floats(0.0, 5.0),
)
def test_a_clipped_location_holds_predictions_off_the_scale_at_its_ends(
    residuals: list[float], below: float, above: float, shift: float
) -> None:
    """With ``location_clip`` a point prediction under 0 is read as 0 and one over the scale as
    the scale, for every number shown (the cohort part of the range included); without it (a
    version trained before the clip) the prediction itself is the location."""
    r = np.asarray(residuals)
    clipped = GradeDistribution(r, scale=20.0, pass_mark=10.0, shift_sd=shift, location_clip=True)
    plain = GradeDistribution(r, scale=20.0, pass_mark=10.0, shift_sd=shift)
    for off, edge in ((below, 0.0), (above, 20.0)):
        # the unclipped distribution at the edge: the same location, and its cohort range moves
        # that location by -z tau and +z tau (clipping after the move would narrow it)
        got, at_edge = clipped.summary(np.array([off])), plain.summary(np.array([edge]))
        for key, value in got.items():
            np.testing.assert_array_equal(value, at_edge[key], err_msg=key)


def test_a_version_without_location_clip_keeps_its_numbers() -> None:
    """A stored distribution written before the location was clipped (no ``location_clip``
    key) loads unclipped, and today's state round-trips with it."""
    rng = np.random.default_rng(2)
    y, oof = rng.uniform(0, 20, 200), rng.normal(8, 8, 200)
    groups = np.repeat(np.arange(4), 50)
    dist = GradeDistribution.from_oof(y, oof, groups, scale=20, pass_mark=10)
    assert dist.location_clip
    np.testing.assert_allclose(np.sort(dist.residuals), np.sort(y - np.clip(oof, 0, 20)))
    state = dist.to_state()
    again = GradeDistribution.from_state(state)
    pred = np.linspace(-5, 25, 31)
    for key, value in dist.summary(pred).items():
        np.testing.assert_array_equal(value, again.summary(pred)[key], err_msg=key)
    del state["location_clip"]
    old = GradeDistribution.from_state(state)
    assert not old.location_clip
    assert old.summary(np.array([-3.0]))["grade"][0] < old.summary(np.array([0.0]))["grade"][0]


def test_the_cohort_range_widens_when_offerings_disagree() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 2, 400)
    groups = np.repeat(np.arange(8), 50)
    alike = GradeDistribution.from_oof(noise, np.zeros(400), groups, scale=20, pass_mark=10)
    shifted = noise + np.repeat(rng.normal(0, 1.5, 8), 50)
    apart = GradeDistribution.from_oof(shifted, np.zeros(400), groups, scale=20, pass_mark=10)
    assert alike.shift_sd < 0.3 < 0.8 < apart.shift_sd
    pred = np.array([9.0, 10.0, 11.0])
    narrow = alike.pass_chance(pred)
    wide = apart.pass_chance(pred)
    assert ((wide[2] - wide[1]) > (narrow[2] - narrow[1])).all()


def test_fewer_calibration_students_give_a_wider_range() -> None:
    rng = np.random.default_rng(1)
    big = GradeDistribution(rng.normal(0, 3, 800), scale=20, pass_mark=10)
    small = GradeDistribution(rng.normal(0, 3, 80), scale=20, pass_mark=10)
    pred = np.array([10.5])
    assert (small.pass_chance(pred)[2] - small.pass_chance(pred)[1])[0] > (
        big.pass_chance(pred)[2] - big.pass_chance(pred)[1]
    )[0]


def test_a_regressor_is_monotone_in_every_effort_feature(cases: list[Case]) -> None:
    """The constraint itself, on each fitted family: raising one effort column alone, from
    every student's own row, never lowers the point prediction."""
    for case in cases:
        reg: RegressionModel = case.bundle.regressor
        X = case.X
        base = reg.predict(X)
        for feature in [c for c in X.columns if effort_of(c) != 0]:
            moved = X.copy()
            moved[feature] = moved[feature] + effort_of(feature) * 10.0
            assert (reg.predict(moved) >= base - 1e-9).all(), (case.checkpoint, feature)


@pytest.mark.parametrize("family", LINEAR_FAMILIES)
def test_a_linear_family_on_the_log_scale_is_monotone_in_effort(
    cases: list[Case], family: str
) -> None:
    """The log step (counts and durations read as ``log1p``) keeps the constraint: each linear
    family with it on, fitted at every point of the term, never lowers its prediction when one
    effort column alone rises, from a student's own row or from zero."""
    for case in cases[:5]:  # one seed, every checkpoint
        cols = list(map(str, case.train.X.columns))
        pipe, _ = regressor_candidates(0, effort_signs(cols), log_columns(cols))[family]
        pipe.set_params(log__active=True).fit(case.train.X, case.train.grade)
        for feature in [c for c in cols if effort_of(c) != 0]:
            for start in (case.X, case.X.assign(**{feature: 0.0})):
                base = pipe.predict(start)
                for step in (0.5, 3.0, 50.0):
                    moved = start.assign(**{feature: start[feature] + effort_of(feature) * step})
                    assert (pipe.predict(moved) >= base - 1e-9).all(), (family, feature, step)

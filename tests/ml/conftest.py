"""Session-scoped simulator data and fitted models, shared by the ml tests.

The sizes are small on purpose (8 past offerings of about 45 students): the whole ml suite must
run in under three minutes on two cores. torch uses one intra-op thread, so timings do not depend
on what else runs on the machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.dataset import TrainingSet, build_training_set
from ml.models import (
    ClassificationModel,
    PassChanceModel,
    RegressionModel,
    fit_classifier,
    fit_regressor,
)
from simulation.course import SimulatedCourse, simulate_course

torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
CHECKPOINT = 0.5
N_TRAIN_OFFERINGS = 6


@pytest.fixture(scope="session")
def course() -> SimulatedCourse:
    return simulate_course(n_past=9, n_students=45, seed=7, current_progress=0.4)


@pytest.fixture(scope="session")
def all_checkpoints(course: SimulatedCourse) -> TrainingSet:
    return build_training_set([o.to_offering() for o in course.past])


@pytest.fixture(scope="session")
def train_set(all_checkpoints: TrainingSet, course: SimulatedCourse) -> TrainingSet:
    ts = all_checkpoints.at(CHECKPOINT)
    keep = ts.groups.isin(_names(course)[:N_TRAIN_OFFERINGS]).to_numpy()
    return _subset(ts, keep)


@pytest.fixture(scope="session")
def test_set(all_checkpoints: TrainingSet, course: SimulatedCourse) -> TrainingSet:
    """Offerings the models never see, not even during cross-validation."""
    ts = all_checkpoints.at(CHECKPOINT)
    keep = ~ts.groups.isin(_names(course)[:N_TRAIN_OFFERINGS]).to_numpy()
    return _subset(ts, keep)


@pytest.fixture(scope="session")
def shuffled_set(train_set: TrainingSet) -> TrainingSet:
    """The same features with grades permuted: no signal is left to learn."""
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(train_set.grade))
    grade = train_set.grade.iloc[perm].reset_index(drop=True)
    return TrainingSet(
        train_set.X,
        grade,
        (grade >= train_set.pass_mark).astype(np.int64),
        train_set.groups,
        train_set.checkpoint,
        train_set.userid,
        train_set.scale,
        train_set.pass_mark,
    )


@pytest.fixture(scope="session")
def regressor(train_set: TrainingSet) -> RegressionModel:
    return fit_regressor(train_set.X, train_set.grade, train_set.groups)


@pytest.fixture(scope="session")
def pass_model(regressor: RegressionModel) -> PassChanceModel:
    """The pass chance a version shows: read from the regressor's grade distribution."""
    return PassChanceModel(regressor)


@pytest.fixture(scope="session")
def classifier(train_set: TrainingSet) -> ClassificationModel:
    """A trained pass classifier (diagnostics and benchmarks; versions no longer hold one)."""
    return fit_classifier(train_set.X, train_set.passed, train_set.groups)


@pytest.fixture(scope="session")
def mlp_classifier(train_set: TrainingSet) -> ClassificationModel:
    # three folds instead of five: four MLP fits instead of six keep the suite fast
    return fit_classifier(
        train_set.X, train_set.passed, train_set.groups, candidates=["mlp"], n_splits=3
    )


def _names(course: SimulatedCourse) -> list[str]:
    return [o.to_offering().offering_id for o in course.past]


def _subset(ts: TrainingSet, keep: np.ndarray) -> TrainingSet:
    return TrainingSet(
        ts.X[keep].reset_index(drop=True),
        ts.grade[keep].reset_index(drop=True),
        ts.passed[keep].reset_index(drop=True),
        ts.groups[keep].reset_index(drop=True),
        ts.checkpoint[keep].reset_index(drop=True),
        ts.userid[keep].reset_index(drop=True),
        ts.scale,
        ts.pass_mark,
    )

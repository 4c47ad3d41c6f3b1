"""Train a version from past offerings, then score and explain the running offering."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.features import compute_features
from ml.models import SingleClassError
from ml.registry import load_bundle
from ml.training import GatedModelError, explain_students, score_students, train_model_version
from simulation.course import SimulatedCourse, simulate_course


def test_train_then_score_the_running_offering(course: SimulatedCourse, tmp_path: Path) -> None:
    current = course.current
    assert current is not None
    assert current.now is not None
    progress = (current.now - current.start) / (current.end - current.start)
    steps: list[str] = []
    bundle = train_model_version(
        [o.to_offering() for o in course.past],
        progress,
        tmp_path / "v1",
        regressors=["ridge"],
        classifiers=["logistic"],
        early_warning=None,  # early_warning_curve is tested on its own
        n_boot=200,
        n_repeats=2,
        on_progress=lambda step, _: steps.append(step),
    )
    assert steps[0] == "training set"
    assert steps[-1] == "done"
    assert bundle.gate_passed
    assert bundle.metadata["training_window"]["progress"] == pytest.approx(progress)
    assert "early_warning" not in bundle.metadata["metrics"]

    loaded = load_bundle(tmp_path / "v1")
    off = current.to_offering()
    feats = compute_features(
        off.events, off.roster, current.now, off.course_start, off.course_end,
        course_modules=off.course_modules,
    )  # fmt: skip
    scores = score_students(loaded, feats, n_passes=20)
    assert list(scores.index) == list(off.roster["userid"])
    assert (scores["grade_low"] <= scores["grade"]).all()
    assert (scores["grade"] <= scores["grade_high"]).all()
    assert scores["p_pass"].between(0, 1).all()
    # at-risk students are the ones the traits say are weak
    traits = current.traits.set_index("userid").loc[scores.index]
    assert (
        traits.loc[scores["at_risk"], "ability"].mean()
        < traits.loc[~scores["at_risk"], "ability"].mean()
    )
    factors = explain_students(loaded, feats, k=2)
    assert len(factors) == 2 * len(feats)
    assert set(factors["userid"]) == set(feats.index)


def test_a_gated_version_refuses_to_score(tmp_path: Path) -> None:
    noise = simulate_course(n_past=3, n_students=30, seed=3, signal=0.0, current_progress=None)
    offerings = [o.to_offering() for o in noise.past]
    bundle = train_model_version(
        offerings, 0.5, tmp_path / "noise", regressors=["ridge"], classifiers=["logistic"],
        early_warning=None, n_boot=200, n_repeats=2,
    )  # fmt: skip
    assert not bundle.gate_passed
    feats = compute_features(
        offerings[0].events, offerings[0].roster, offerings[0].course_end,
        offerings[0].course_start, offerings[0].course_end,
    )  # fmt: skip
    with pytest.raises(GatedModelError):
        score_students(bundle, feats)
    diagnostics = score_students(bundle, feats, allow_gated=True, n_passes=5)
    assert len(diagnostics) == len(feats)


def test_past_students_of_one_class_give_no_version(tmp_path: Path) -> None:
    """Every past student passed: no chance can be learned, as the services expect."""
    course = simulate_course(n_past=3, n_students=20, seed=4, current_progress=None)
    offerings = [o.to_offering() for o in course.past]
    with pytest.raises(SingleClassError, match="every past student passed"):
        train_model_version(
            offerings, 0.5, tmp_path / "v", pass_mark=0.0, regressors=["ridge"],
            early_warning=None, n_boot=50, n_repeats=2,
        )  # fmt: skip

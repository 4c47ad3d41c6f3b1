"""Model versions round-trip without pickle, refuse foreign files, and export to ONNX."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.dataset import TrainingSet
from ml.feature_info import log_columns
from ml.models import (
    ArrayPipeline,
    PassChanceModel,
    RegressionModel,
    _frozen,
    fit_regressor,
    regressor_candidates,
)
from ml.registry import (
    TRUSTED_TYPES,
    ModelBundle,
    UntrustedModelError,
    export_onnx,
    load_bundle,
    save_bundle,
    sklearn_to_onnx,
)
from ml.training import score_students


class Sneaky(StandardScaler):  # type: ignore[misc]
    """Stands for any class an attacker could name in a crafted file."""


@pytest.fixture
def saved(
    tmp_path: Path,
    regressor: RegressionModel,
    pass_model: PassChanceModel,
    train_set: TrainingSet,
) -> tuple[Path, RegressionModel, PassChanceModel]:
    report: dict[str, Any] = {"gate": {"regression": True, "classification": True, "passed": True}}
    save_bundle(
        regressor,
        pass_model,
        tmp_path / "v1",
        data=train_set,
        report=report,
        training_window={"offerings": sorted(set(train_set.groups)), "checkpoint": 0.5},
        version="v1",
    )
    return tmp_path / "v1", regressor, pass_model


def test_round_trip_gives_identical_predictions(
    saved: tuple[Path, RegressionModel, PassChanceModel], test_set: TrainingSet
) -> None:
    path, reg, clf = saved
    bundle = load_bundle(path)
    X = test_set.X
    np.testing.assert_array_equal(bundle.regressor.predict(X), reg.predict(X))
    for mine, theirs in zip(
        bundle.regressor.predict_interval(X), reg.predict_interval(X), strict=True
    ):
        np.testing.assert_array_equal(mine, theirs)
    np.testing.assert_array_equal(bundle.classifier.predict_proba(X), clf.predict_proba(X))
    a, b = bundle.classifier.uncertainty(X.head(5)), clf.uncertainty(X.head(5))
    np.testing.assert_array_equal(a.std, b.std)
    np.testing.assert_array_equal(a.lower, b.lower)
    assert bundle.classifier.threshold == 0.5
    assert bundle.gate_passed
    # and what a scoring stores, column by column
    original = ModelBundle(reg, clf, bundle.metadata)
    pd.testing.assert_frame_equal(score_students(bundle, X), score_students(original, X))


def test_no_pickle_files_are_written(
    saved: tuple[Path, RegressionModel, PassChanceModel],
) -> None:
    path, _, _ = saved
    assert {p.name for p in path.iterdir()} == {"metadata.json", "regressor.skops"}


def test_a_version_before_the_grade_distribution_still_loads(
    saved: tuple[Path, RegressionModel, PassChanceModel], test_set: TrainingSet
) -> None:
    """A format-1 version (a separate classifier) reads as its grade model with a symmetric
    distribution from its absolute residuals: coherent numbers until it is retrained."""
    path, reg, _ = saved
    meta = json.loads((path / "metadata.json").read_text("utf-8"))
    meta["format"] = 1
    del meta["regressor"]["distribution"]
    meta["classifier"] = {"name": "logistic", "kind": "sklearn", "threshold": 0.37}
    (path / "metadata.json").write_text(json.dumps(meta), "utf-8")
    old = load_bundle(path)
    assert old.classifier.threshold == 0.5
    assert old.regressor.distribution.n == 2 * len(reg.residuals)
    shown = score_students(old, test_set.X, allow_gated=True)
    assert ((shown["p_pass"] >= 0.5) == (shown["grade"] >= 10.0)).all()
    np.testing.assert_array_equal(old.regressor.predict(test_set.X), reg.predict(test_set.X))


def test_metadata_records_what_was_trained(
    saved: tuple[Path, RegressionModel, PassChanceModel], train_set: TrainingSet
) -> None:
    path, reg, _ = saved
    meta = json.loads((path / "metadata.json").read_text("utf-8"))
    assert meta["features"] == reg.features
    assert meta["data_hash"] == train_set.data_hash()
    assert meta["libraries"]["scikit-learn"]
    assert meta["libraries"]["torch"].startswith("2.13")
    assert meta["training_window"]["checkpoint"] == 0.5
    assert meta["gate"]["passed"] is True
    assert meta["version"] == "v1"
    assert meta["pass_mark"] == 10.0
    assert meta["classifier"]["kind"] == "grade_distribution"
    assert len(meta["regressor"]["distribution"]["residuals"]) == len(train_set.grade)


def test_versions_are_immutable(saved: tuple[Path, RegressionModel, PassChanceModel]) -> None:
    path, reg, clf = saved
    with pytest.raises(FileExistsError):
        save_bundle(reg, clf, path)


def test_a_foreign_type_in_a_model_file_is_refused(
    saved: tuple[Path, RegressionModel, PassChanceModel],
) -> None:
    path, _, _ = saved
    foreign = Pipeline([("scale", Sneaky())])  # a type no version of ours contains
    (path / "regressor.skops").write_bytes(sio.dumps(foreign))
    with pytest.raises(UntrustedModelError, match="untrusted"):
        load_bundle(path)


def test_default_gate_is_closed(
    tmp_path: Path, regressor: RegressionModel, pass_model: PassChanceModel
) -> None:
    bundle = save_bundle(regressor, pass_model, tmp_path / "nogate")
    assert bundle.gate_passed is False


def test_the_pass_chance_must_be_the_regressors_own(
    tmp_path: Path, regressor: RegressionModel, train_set: TrainingSet
) -> None:
    other = fit_regressor(train_set.X, train_set.grade, train_set.groups, candidates=["linear"])
    with pytest.raises(ValueError, match="own regressor"):
        save_bundle(regressor, PassChanceModel(other), tmp_path / "mixed")


# ------------------------------------------------------------------ ONNX parity
def _run(path: Path, X: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path))
    return list(session.run(None, {"features": X}))


def test_onnx_matches_native_outputs(
    saved: tuple[Path, RegressionModel, PassChanceModel], test_set: TrainingSet
) -> None:
    path, reg, clf = saved
    bundle = load_bundle(path)
    paths = export_onnx(bundle, path.parent / "onnx")
    assert set(paths) == {"regressor", "distribution"}
    X = test_set.X[reg.features].to_numpy(dtype=np.float64)
    yhat = _run(paths["regressor"], X)[0].ravel()
    np.testing.assert_allclose(yhat, reg.predict(test_set.X), rtol=0, atol=1e-5)
    # the exported distribution reproduces the grade and the chance shown, as documented
    dist = json.loads(paths["distribution"].read_text("utf-8"))
    r = np.asarray(dist["scores"])
    u = np.arange(1, r.size + 1) / (r.size + 1)
    assert dist["location_clip"] is True
    m = np.clip(yhat, 0, dist["scale"])
    assert (yhat < 0).any()  # the clip matters here: some locations are held on the scale
    grade = np.clip(m + np.interp(0.5, u, r), 0, dist["scale"])
    chance = np.clip(1 - np.interp(dist["pass_mark"] - m, r, u), dist["p_floor"], 0.99)
    np.testing.assert_allclose(grade, reg.predict_interval(test_set.X)[0], rtol=0, atol=1e-5)
    np.testing.assert_allclose(chance, clf.predict_proba(test_set.X), rtol=0, atol=1e-4)


#: Every candidate, and each one with a log step (the linear families and the ensemble's linear
#: members) with that step on.
EXPORTED = [(name, False) for name in regressor_candidates()] + [
    (name, True) for name in regressor_candidates() if name != "hgb"
]


@pytest.mark.parametrize(("name", "logged"), EXPORTED)
def test_every_regressor_exports_with_parity(
    name: str, logged: bool, train_set: TrainingSet
) -> None:
    """ONNX, the what-if's array path and a skops round trip give the pipeline's predictions,
    with the log scale of counts on and off."""
    X = train_set.X.copy()
    pipeline, _ = regressor_candidates(log=log_columns(list(map(str, X.columns))))[name]
    switch = [k for k in pipeline.get_params() if k.endswith("log__active")]
    pipeline.set_params(**dict.fromkeys(switch, logged))
    X.loc[X.index[:5], "mean_hour"] = np.nan  # imputation is part of the graph
    X.loc[X.index[5], "n_actions"] = np.nan  # so is a logged column's imputation
    pipeline.fit(X, train_set.grade)
    expected = pipeline.predict(X)
    if logged:  # the step does something: a linear map of the logged counts is not one of theirs
        assert not np.allclose(expected, clone(pipeline).set_params(
            **dict.fromkeys(switch, False)).fit(X, train_set.grade).predict(X))  # fmt: skip
    onx = sklearn_to_onnx(pipeline, X.shape[1], classifier=False)
    session = ort.InferenceSession(onx)
    out = session.run(None, {"features": X.to_numpy(dtype=np.float64)})[0].ravel()
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
    rows = X.to_numpy(dtype=np.float64)
    np.testing.assert_allclose(
        ArrayPipeline(pipeline, list(X.columns)).predict(rows), expected, rtol=1e-12, atol=1e-12
    )
    stored = _frozen(copy.deepcopy(pipeline))  # what a version stores (no SignedLinear)
    data = sio.dumps(stored)
    assert set(sio.get_untrusted_types(data=data)) <= set(TRUSTED_TYPES)
    again = sio.loads(data, trusted=list(TRUSTED_TYPES))
    np.testing.assert_allclose(again.predict(X), expected, rtol=1e-12, atol=1e-12)


def test_an_ensemble_round_trips_and_exports_with_parity(
    tmp_path: Path, train_set: TrainingSet, test_set: TrainingSet
) -> None:
    """The ``ensemble`` candidate (a VotingRegressor of the four linear families and the gradient
    boosting): the same predictions after skops, on the array path, and from its ONNX graph
    with distribution.json."""
    reg = fit_regressor(train_set.X, train_set.grade, train_set.groups, candidates=["ensemble"])
    assert reg.name == "ensemble"
    save_bundle(reg, PassChanceModel(reg), tmp_path / "v", report={"gate": {"passed": True}})
    bundle = load_bundle(tmp_path / "v")
    X = test_set.X.copy()
    X.loc[X.index[:5], "mean_hour"] = np.nan
    pd.testing.assert_frame_equal(score_students(bundle, X), score_students(
        ModelBundle(reg, PassChanceModel(reg), {"gate": {"passed": True}}), X))  # fmt: skip
    rows = X[reg.features].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(bundle.regressor.predict_rows(rows), reg.predict(X), rtol=1e-12)
    paths = export_onnx(bundle, tmp_path / "onnx")
    yhat = _run(paths["regressor"], rows)[0].ravel()
    np.testing.assert_allclose(yhat, reg.predict(X), rtol=0, atol=1e-5)
    dist = json.loads(paths["distribution"].read_text("utf-8"))
    r = np.asarray(dist["scores"])
    u = np.arange(1, r.size + 1) / (r.size + 1)
    m = np.clip(yhat, 0, dist["scale"]) if dist["location_clip"] else yhat
    grade = np.clip(m + np.interp(0.5, u, r), 0, dist["scale"])
    np.testing.assert_allclose(grade, reg.predict_interval(X)[0], rtol=0, atol=1e-5)

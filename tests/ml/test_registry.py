"""Model versions round-trip without pickle, refuse foreign files, and export to ONNX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.dataset import TrainingSet
from ml.models import ClassificationModel, RegressionModel, regressor_candidates
from ml.registry import (
    UntrustedModelError,
    export_onnx,
    load_bundle,
    save_bundle,
    sklearn_to_onnx,
)


class Sneaky(StandardScaler):  # type: ignore[misc]
    """Stands for any class an attacker could name in a crafted file."""


@pytest.fixture(params=["sklearn", "mlp"])
def saved(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    regressor: RegressionModel,
    classifier: ClassificationModel,
    mlp_classifier: ClassificationModel,
    train_set: TrainingSet,
) -> tuple[Path, RegressionModel, ClassificationModel]:
    clf = classifier if request.param == "sklearn" else mlp_classifier
    report: dict[str, Any] = {"gate": {"regression": True, "classification": True, "passed": True}}
    save_bundle(
        regressor,
        clf,
        tmp_path / "v1",
        data=train_set,
        report=report,
        training_window={"offerings": sorted(set(train_set.groups)), "checkpoint": 0.5},
        version="v1",
    )
    return tmp_path / "v1", regressor, clf


def test_round_trip_gives_identical_predictions(
    saved: tuple[Path, RegressionModel, ClassificationModel], test_set: TrainingSet
) -> None:
    path, reg, clf = saved
    bundle = load_bundle(path)
    X = test_set.X
    np.testing.assert_array_equal(bundle.regressor.predict(X), reg.predict(X))
    np.testing.assert_array_equal(
        bundle.regressor.predict_interval(X)[1], reg.predict_interval(X)[1]
    )
    np.testing.assert_array_equal(bundle.classifier.predict_proba(X), clf.predict_proba(X))
    a, b = bundle.classifier.uncertainty(X.head(5)), clf.uncertainty(X.head(5))
    np.testing.assert_array_equal(a.std, b.std)
    assert bundle.gate_passed


def test_no_pickle_files_are_written(
    saved: tuple[Path, RegressionModel, ClassificationModel],
) -> None:
    path, _, clf = saved
    suffixes = {p.suffix for p in path.iterdir()}
    assert suffixes <= {".skops", ".json", ".pt"}
    assert (".pt" in suffixes) == (clf.name == "mlp")


def test_metadata_records_what_was_trained(
    saved: tuple[Path, RegressionModel, ClassificationModel], train_set: TrainingSet
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


def test_versions_are_immutable(saved: tuple[Path, RegressionModel, ClassificationModel]) -> None:
    path, reg, clf = saved
    with pytest.raises(FileExistsError):
        save_bundle(reg, clf, path)


def test_a_foreign_type_in_a_model_file_is_refused(
    saved: tuple[Path, RegressionModel, ClassificationModel],
) -> None:
    path, _, _ = saved
    foreign = Pipeline([("scale", Sneaky())])  # a type no version of ours contains
    (path / "regressor.skops").write_bytes(sio.dumps(foreign))
    with pytest.raises(UntrustedModelError, match="untrusted"):
        load_bundle(path)


def test_default_gate_is_closed(
    tmp_path: Path, regressor: RegressionModel, classifier: ClassificationModel
) -> None:
    bundle = save_bundle(regressor, classifier, tmp_path / "nogate")
    assert bundle.gate_passed is False


# ------------------------------------------------------------------ ONNX parity
def _run(path: Path, X: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path))
    return list(session.run(None, {"features": X}))


def test_onnx_matches_native_outputs(
    saved: tuple[Path, RegressionModel, ClassificationModel], test_set: TrainingSet
) -> None:
    path, reg, clf = saved
    bundle = load_bundle(path)
    paths = export_onnx(bundle, path.parent / "onnx")
    X = test_set.X[reg.features].to_numpy(dtype=np.float64)
    grade = _run(paths["regressor"], X)[0].ravel()
    np.testing.assert_allclose(grade, reg.predict(test_set.X), rtol=0, atol=1e-5)
    outs = _run(paths["classifier"], X)
    raw = outs[0].ravel() if clf.name == "mlp" else outs[1][:, 1]
    np.testing.assert_allclose(raw, clf.predict_proba_raw(test_set.X), rtol=0, atol=1e-5)
    # the calibration table in the metadata reproduces the calibrated probability (applied to
    # the native score: isotonic steps can magnify float32 differences of the ONNX MLP)
    cal = np.interp(
        clf.predict_proba_raw(test_set.X),
        bundle.metadata["classifier"]["calibration_x"],
        bundle.metadata["classifier"]["calibration_y"],
    )
    np.testing.assert_allclose(cal, clf.predict_proba(test_set.X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", list(regressor_candidates()))
def test_every_regressor_exports_with_parity(name: str, train_set: TrainingSet) -> None:
    pipeline, _ = regressor_candidates()[name]
    X = train_set.X.copy()
    X.loc[X.index[:5], "mean_hour"] = np.nan  # imputation is part of the graph
    pipeline.fit(X, train_set.grade)
    onx = sklearn_to_onnx(pipeline, X.shape[1], classifier=False)
    session = ort.InferenceSession(onx)
    out = session.run(None, {"features": X.to_numpy(dtype=np.float64)})[0].ravel()
    np.testing.assert_allclose(out, pipeline.predict(X), rtol=0, atol=1e-5)

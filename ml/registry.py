"""Model versions on disk, without unpickling anything, and their ONNX export.

A version is a directory written by :func:`save_bundle`:

====================================  =====================================================
file                                  content
====================================  =====================================================
``metadata.json``                     features, library versions, training window, data hash,
                                      metrics, gate, and each model's small state (names,
                                      conformal residuals, threshold, CV tables)
``regressor.skops``                   the grade pipeline (skops)
``classifier.skops``                  the pass pipeline (skops); for the MLP, only the
                                      preprocessing steps in front of it
``classifier_mlp.json`` / ``.pt``     the MLP: parameters + standardisation (JSON) and a
                                      tensor ``state_dict``
``calibrator.skops``                  the isotonic calibration (skops)
``fold_<i>.skops``                    fold models of a non-MLP classifier (uncertainty spread)
====================================  =====================================================

**Why this is safe to load.** skops reads its files without ``pickle``: it rebuilds only types
it trusts. We pass an explicit list, :data:`TRUSTED_TYPES` (on top of skops' own defaults for
scikit-learn and numpy), and refuse a file that asks for anything else before loading it. The MLP
tensors are read with ``torch.load(weights_only=True)``, torch's restricted loader that builds
tensors and plain containers only. Nothing here ever calls ``pickle.load``.

**ONNX.** :func:`export_onnx` writes ``regressor.onnx`` (skl2onnx, double precision, input
``features``: the feature matrix in :attr:`metadata["features"]` order; output: the grade) and
``classifier.onnx`` (skl2onnx for scikit-learn models, ``torch.onnx`` for the MLP; output: the
*uncalibrated* P(pass)). The isotonic calibration is a piecewise-linear map stored in the
metadata (``calibration_x``/``calibration_y``): apply it with ``numpy.interp``.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import io
import json
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import skops.io as sio
import torch
from sklearn.pipeline import Pipeline

from ml.dataset import TrainingSet
from ml.mlp import TorchMLPClassifier
from ml.models import ClassificationModel, RegressionModel

FORMAT_VERSION: Final = 1

TRUSTED_TYPES: Final = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
"""Types our own model files contain beyond skops' default trusted scikit-learn/numpy types."""

LIBRARIES: Final = ("numpy", "pandas", "scikit-learn", "torch", "skops", "onnx", "skl2onnx")


class UntrustedModelError(ValueError):
    """A model file asks for a type outside :data:`TRUSTED_TYPES`: it was not written by us."""


@dataclass
class ModelBundle:
    """A model version: the grade regressor, the pass classifier and their metadata."""

    regressor: RegressionModel
    classifier: ClassificationModel
    metadata: dict[str, Any]

    @property
    def gate_passed(self) -> bool:
        """False means: show no prediction from this version to anyone."""
        return bool(self.metadata.get("gate", {}).get("passed", False))


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _dump(obj: Any, path: Path) -> None:
    path.write_bytes(sio.dumps(obj))


def _load(path: Path) -> Any:
    data = path.read_bytes()
    unknown = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if unknown:
        raise UntrustedModelError(f"{path.name} asks for untrusted types: {unknown}")
    return sio.loads(data, trusted=list(TRUSTED_TYPES))


def _frame_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))  # type: ignore[no-any-return]


def save_bundle(
    regressor: RegressionModel,
    classifier: ClassificationModel,
    directory: str | Path,
    *,
    data: TrainingSet | None = None,
    report: dict[str, Any] | None = None,
    training_window: dict[str, Any] | None = None,
    version: str | None = None,
) -> ModelBundle:
    """Write a model version into ``directory`` (created; must be empty or absent)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty: model versions are immutable")
    if regressor.features != classifier.features:
        raise ValueError("regressor and classifier must use the same features")
    _dump(regressor.pipeline, root / "regressor.skops")
    _dump(classifier.calibrator, root / "calibrator.skops")
    model = classifier.estimator[-1]
    if isinstance(model, TorchMLPClassifier):
        kind = "mlp"
        _dump(classifier.estimator[:-1], root / "classifier.skops")
        meta_mlp, state = model.to_state()
        (root / "classifier_mlp.json").write_text(json.dumps(meta_mlp), "utf-8")
        torch.save(state, root / "classifier_mlp.pt")
        n_folds = 0
    else:
        kind = "sklearn"
        _dump(classifier.estimator, root / "classifier.skops")
        for i, fold in enumerate(classifier.fold_models):
            _dump(fold, root / f"fold_{i}.skops")
        n_folds = len(classifier.fold_models)
    gate = (report or {}).get(
        "gate", {"regression": False, "classification": False, "passed": False}
    )
    metadata: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "version": version or uuid.uuid4().hex[:12],
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "features": list(regressor.features),
        "libraries": library_versions(),
        "training_window": training_window or {},
        "data_hash": data.data_hash() if data is not None else None,
        "n_rows": len(data.grade) if data is not None else None,
        "scale": regressor.scale,
        "pass_mark": data.pass_mark if data is not None else None,
        "metrics": report or {},
        "gate": gate,
        "regressor": {
            "name": regressor.name,
            "alpha": regressor.alpha,
            "residuals": regressor.residuals.tolist(),
            "oof_pred": regressor.oof_pred.tolist(),
            "cv_table": _frame_records(regressor.cv_table),
        },
        "classifier": {
            "name": classifier.name,
            "kind": kind,
            "threshold": classifier.threshold,
            "threshold_metric": classifier.threshold_metric,
            "n_fold_models": n_folds,
            "oof_proba_raw": classifier.oof_proba_raw.tolist(),
            "oof_proba": classifier.oof_proba.tolist(),
            "cv_table": _frame_records(classifier.cv_table),
            "calibration_x": np.asarray(classifier.calibrator.X_thresholds_).tolist(),
            "calibration_y": np.asarray(classifier.calibrator.y_thresholds_).tolist(),
        },
    }
    (root / "metadata.json").write_text(json.dumps(metadata, indent=1), "utf-8")
    return ModelBundle(regressor, classifier, metadata)


def load_bundle(directory: str | Path) -> ModelBundle:
    """Read a version written by :func:`save_bundle`; refuses files with untrusted types."""
    root = Path(directory)
    meta = json.loads((root / "metadata.json").read_text("utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"unknown model format {meta.get('format')!r}")
    features = list(meta["features"])
    r = meta["regressor"]
    regressor = RegressionModel(
        name=r["name"],
        pipeline=_load(root / "regressor.skops"),
        features=features,
        cv_table=pd.DataFrame(r["cv_table"]),
        oof_pred=np.asarray(r["oof_pred"], dtype=np.float64),
        residuals=np.asarray(r["residuals"], dtype=np.float64),
        scale=float(meta["scale"]),
        alpha=float(r["alpha"]),
    )
    c = meta["classifier"]
    front = _load(root / "classifier.skops")
    folds: list[Pipeline] = []
    if c["kind"] == "mlp":
        mlp_meta = json.loads((root / "classifier_mlp.json").read_text("utf-8"))
        state = torch.load(root / "classifier_mlp.pt", weights_only=True)
        mlp = TorchMLPClassifier.from_state(mlp_meta, state)
        estimator = Pipeline([*front.steps, ("model", mlp)])
    else:
        estimator = front
        folds = [_load(root / f"fold_{i}.skops") for i in range(int(c["n_fold_models"]))]
    classifier = ClassificationModel(
        name=c["name"],
        estimator=estimator,
        calibrator=_load(root / "calibrator.skops"),
        threshold=float(c["threshold"]),
        features=features,
        cv_table=pd.DataFrame(c["cv_table"]),
        oof_proba_raw=np.asarray(c["oof_proba_raw"], dtype=np.float64),
        oof_proba=np.asarray(c["oof_proba"], dtype=np.float64),
        threshold_metric=c["threshold_metric"],
        fold_models=folds,
    )
    return ModelBundle(regressor, classifier, meta)


# ------------------------------------------------------------------ ONNX
ONNX_OPSET: Final = 17


FLOAT_ONLY_KERNELS: Final = (
    "SVR",
    "HistGradientBoostingRegressor",
    "HistGradientBoostingClassifier",
)
"""Final estimators whose onnxruntime kernels exist in float32 only: they get a Cast in front."""


def _graph(
    nodes: list[Any], inp: tuple[str, int], out: tuple[str, int], d: int, inits: list[Any]
) -> Any:
    from onnx import helper

    graph = helper.make_graph(
        nodes,
        f"{inp[0]}_to_{out[0]}",
        [helper.make_tensor_value_info(inp[0], inp[1], [None, d])],
        [helper.make_tensor_value_info(out[0], out[1], [None, d])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])


def _imputer_graph(pipeline: Pipeline, d: int) -> Any:
    """Median imputation as plain ONNX ops (``Where(IsNaN(x), median, x)``) in float64.

    onnxruntime implements ``ai.onnx.ml.Imputer`` for float only, and float would break the
    1e-5 parity of what follows; two standard operators keep everything in float64.
    """
    from onnx import TensorProto, helper, numpy_helper

    stats = np.asarray(pipeline.named_steps["impute"].statistics_, dtype=np.float64)
    nodes = [
        helper.make_node("IsNaN", ["features"], ["missing"]),
        helper.make_node("Where", ["missing", "medians", "features"], ["imputed"]),
    ]
    dbl = TensorProto.DOUBLE
    return _graph(
        nodes, ("features", dbl), ("imputed", dbl), d, [numpy_helper.from_array(stats, "medians")]
    )


def _cast_graph(name: str, d: int) -> Any:
    from onnx import TensorProto, helper

    node = helper.make_node("Cast", [name], [f"{name}_f32"], to=TensorProto.FLOAT)
    return _graph([node], (name, TensorProto.DOUBLE), (f"{name}_f32", TensorProto.FLOAT), d, [])


def _chain(parts: list[Any]) -> bytes:
    """Connect each part's first output to the next part's first input, at one opset."""
    from onnx import compose, version_converter

    def norm(m: Any) -> Any:
        from onnx import helper

        version = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        if version != ONNX_OPSET:
            m = version_converter.convert_version(m, ONNX_OPSET)
        domains = {o.domain for o in m.opset_import} - {"", "ai.onnx"}
        del m.opset_import[:]
        m.opset_import.append(helper.make_opsetid("", ONNX_OPSET))
        # ai.onnx.ml operators keep their meaning across its versions 1-3
        m.opset_import.extend(helper.make_opsetid(dom, 3) for dom in sorted(domains))
        return m

    model = norm(parts[0])
    for i, nxt in enumerate(parts[1:], start=1):
        nxt = norm(nxt)
        if i < len(parts) - 1:  # middle parts may reuse names such as "variable"
            nxt = compose.add_prefix(nxt, f"p{i}_")
        model.ir_version = nxt.ir_version = max(model.ir_version, nxt.ir_version)
        model = compose.merge_models(
            model, nxt, io_map=[(model.graph.output[0].name, nxt.graph.input[0].name)]
        )
    return bytes(model.SerializeToString())


@contextmanager
def _python_int_attributes() -> Iterator[None]:
    """skl2onnx 1.20 builds HistGradientBoosting tree attributes that mix numpy.uint32, bool and
    int, which onnx 1.23 refuses ("Unable to create node"); cast them to int while converting."""
    from skl2onnx.common import _container

    cls = _container.ModelComponentContainer
    original = cls.add_node

    def add_node(self: Any, *args: Any, **attrs: Any) -> Any:
        for key, value in attrs.items():
            integral = (np.integer, np.bool_, bool)
            if isinstance(value, list) and any(isinstance(v, integral) for v in value):
                attrs[key] = [int(v) if isinstance(v, integral) else v for v in value]
        return original(self, *args, **attrs)

    cls.add_node = add_node
    try:
        yield
    finally:
        cls.add_node = original


def _convert(est: Any, name: str, d: int, *, float32: bool, classifier: bool) -> Any:
    import onnx
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    tensor = FloatTensorType if float32 else DoubleTensorType
    options = {id(est): {"zipmap": False}} if classifier else None
    with _python_int_attributes():
        onx = convert_sklearn(
            est,
            initial_types=[(name, tensor([None, d]))],
            options=options,
            target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
        )
    return onnx.load_from_string(onx.SerializeToString())


def sklearn_to_onnx(pipeline: Pipeline, n_features: int, *, classifier: bool) -> bytes:
    """A fitted pipeline (imputer first) as one ONNX graph: input ``features`` (n, d) float64.

    Regressors output ``variable`` (n, 1); classifiers ``label`` and ``probabilities`` (n, 2).
    Preprocessing runs in float64; SVR and HistGradientBoosting run in float32 (onnxruntime has
    no float64 kernels for them), which stays within 1e-5 of scikit-learn on our features.
    """
    d = n_features
    parts = [_imputer_graph(pipeline, d)]
    middle = pipeline[1:-1]
    last_input = "imputed"
    if len(middle):
        parts.append(_convert(middle, "imputed", d, float32=False, classifier=False))
        last_input = "scaled"
    final = pipeline[-1]
    float32 = type(final).__name__ in FLOAT_ONLY_KERNELS
    if float32:
        parts.append(_cast_graph(last_input, d))
        last_input = f"{last_input}_f32"
    parts.append(_convert(final, last_input, d, float32=float32, classifier=classifier))
    return _chain(parts)


def mlp_to_onnx(mlp: TorchMLPClassifier, pipeline: Pipeline | None = None) -> bytes:
    """The MLP (standardisation, net, sigmoid) as ONNX, output ``p_pass`` (n, 1).

    With ``pipeline`` (imputer + MLP) the graph starts with the imputation and takes float64
    ``features``; alone it takes float32. Uses torch's TorchScript exporter, which needs no
    extra package (the newer exporter needs onnxscript).
    """
    import onnx

    module = mlp.scoring_module()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is fine here
        torch.onnx.export(
            module,
            (torch.zeros(1, int(mlp.n_features_in_)),),
            buf,  # type: ignore[arg-type]  # the TorchScript exporter writes to file objects
            input_names=["features"],
            output_names=["p_pass"],
            dynamic_axes={"features": {0: "n"}, "p_pass": {0: "n"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    if pipeline is None:
        return buf.getvalue()
    d = int(mlp.n_features_in_)
    parts = [_imputer_graph(pipeline, d), _cast_graph("imputed", d)]
    return _chain([*parts, onnx.load_from_string(buf.getvalue())])


def export_onnx(bundle: ModelBundle, directory: str | Path) -> dict[str, Path]:
    """Write ``regressor.onnx`` and ``classifier.onnx`` (see the module docstring)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    d = len(bundle.regressor.features)
    paths = {"regressor": root / "regressor.onnx", "classifier": root / "classifier.onnx"}
    paths["regressor"].write_bytes(sklearn_to_onnx(bundle.regressor.pipeline, d, classifier=False))
    est = bundle.classifier.estimator
    model = est[-1]
    if isinstance(model, TorchMLPClassifier):
        paths["classifier"].write_bytes(mlp_to_onnx(model, est))
    else:
        paths["classifier"].write_bytes(sklearn_to_onnx(est, d, classifier=True))
    return paths

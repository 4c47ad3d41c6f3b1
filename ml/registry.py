"""Model versions on disk, without unpickling anything, and their ONNX export.

A version is a directory written by :func:`save_bundle`:

====================================  =====================================================
file                                  content
====================================  =====================================================
``metadata.json``                     features, library versions, training window, data hash,
                                      metrics, gate, the regressor's small state (name, CV
                                      table, out-of-fold predictions) and its grade
                                      distribution (signed calibration scores, pass mark,
                                      levels, cohort sd), the pass chance's threshold
``regressor.skops``                   the grade pipeline (skops)
====================================  =====================================================

Since issue #14 (format 2) a version holds one grade model and its predictive distribution;
the pass chance is read from it (:class:`ml.models.PassChanceModel`), so there is no classifier
file. A format-1 version (a separate calibrated classifier) still loads: its grade model gets a
distribution from its stored absolute residuals, taken as symmetric (``+r`` and ``-r``), and its
classifier files are not read, so it shows coherent numbers until the course is retrained.

**Why this is safe to load.** skops reads its files without ``pickle``: it rebuilds only types
it trusts. We pass an explicit list, :data:`TRUSTED_TYPES` (on top of skops' own defaults for
scikit-learn and numpy; scikit-learn's ``Bunch``, a dict, for the ``ensemble``; our
:class:`ml.models.LogAmounts` step), and refuse a
file that asks for anything else before loading it.
Nothing here ever calls ``pickle.load``.

**ONNX.** :func:`export_onnx` writes ``regressor.onnx`` (skl2onnx, double precision, input
``features``: the feature matrix in :attr:`metadata["features"]` order; output: the point
prediction ``yhat``) and ``distribution.json``, the grade distribution: with ``r`` its sorted
``scores``, ``u = (1..n) / (n + 1)`` and the location ``m = clip(yhat, 0, scale)`` when its
``location_clip`` is true (else ``m = yhat``), the grade shown is ``clip(m + interp(0.5, u, r),
0, scale)`` and the pass chance ``clip(1 - interp(pass_mark - m, r, u), 0.01, 0.99)``
(``numpy.interp``). An ``ensemble`` version's ``regressor.onnx`` is still one graph with that
input and output: each member converted behind the imputation, side by side, their outputs
averaged with the ensemble's weights in float64 (:func:`_voting_to_onnx`); a linear model's log
step is written as plain ONNX ops (:func:`_log_graph`). The chance's range
is not exported (:mod:`ml.distribution` computes it).
:func:`mlp_to_onnx` still exports a trained :class:`ml.mlp.TorchMLPClassifier`, which versions
no longer hold.
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
from sklearn.ensemble import VotingRegressor
from sklearn.pipeline import Pipeline

from ml.dataset import TrainingSet
from ml.distribution import GradeDistribution
from ml.mlp import TorchMLPClassifier
from ml.models import LogAmounts, PassChanceModel, RegressionModel, SignedLinear

FORMAT_VERSION: Final = 2
#: What training a version does, beyond its files' format: 3 since the ``ensemble`` of every
#: family and the clipped location of the grade distribution. A version trained by an older
#: revision loads and shows its own numbers, but a scoring of a running course does not reuse
#: it on unchanged data (the services compare this): an upgrade retrains such a course once, at
#: its next scoring, while a course whose term is over keeps its version.
TRAINER_REVISION: Final = 3
#: Formats :func:`load_bundle` reads (1: before issue #14, see the module docstring).
READABLE_FORMATS: Final = (1, 2)

TRUSTED_TYPES: Final = (
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # scikit-learn's dict with attribute access: a fitted VotingRegressor's named_estimators_
    # (the ``ensemble`` candidate); it holds the members, which skops checks in turn
    "sklearn.utils._bunch.Bunch",
    # the linear families' log scale of counts and durations
    "ml.models.LogAmounts",
)
"""Types our own model files contain beyond skops' default trusted scikit-learn/numpy types."""

LIBRARIES: Final = ("numpy", "pandas", "scikit-learn", "torch", "skops", "onnx", "skl2onnx")


class UntrustedModelError(ValueError):
    """A model file asks for a type outside :data:`TRUSTED_TYPES`: it was not written by us."""


@dataclass
class ModelBundle:
    """A model version: the grade regressor with its distribution, the pass chance read from
    that distribution (``classifier``, for the callers that ask a classifier) and metadata."""

    regressor: RegressionModel
    classifier: PassChanceModel
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
    classifier: PassChanceModel,
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
    if classifier.regressor is not regressor:
        raise ValueError("the pass chance must be read from this version's own regressor")
    _dump(regressor.pipeline, root / "regressor.skops")
    gate = (report or {}).get(
        "gate", {"regression": False, "classification": False, "passed": False}
    )
    metadata: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "trainer": TRAINER_REVISION,
        "version": version or uuid.uuid4().hex[:12],
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "features": list(regressor.features),
        "libraries": library_versions(),
        "training_window": training_window or {},
        "data_hash": data.data_hash() if data is not None else None,
        "n_rows": len(data.grade) if data is not None else None,
        "scale": regressor.scale,
        "pass_mark": regressor.pass_mark,
        "metrics": report or {},
        "gate": gate,
        "regressor": {
            "name": regressor.name,
            "alpha": regressor.alpha,
            "residuals": regressor.residuals.tolist(),
            "oof_pred": regressor.oof_pred.tolist(),
            "cv_table": _frame_records(regressor.cv_table),
            "distribution": regressor.distribution.to_state(),
        },
        "classifier": {
            "name": classifier.name,
            "kind": "grade_distribution",
            "threshold": classifier.threshold,
        },
    }
    (root / "metadata.json").write_text(json.dumps(metadata, indent=1), "utf-8")
    return ModelBundle(regressor, classifier, metadata)


def load_bundle(directory: str | Path) -> ModelBundle:
    """Read a version written by :func:`save_bundle`; refuses files with untrusted types."""
    root = Path(directory)
    meta = json.loads((root / "metadata.json").read_text("utf-8"))
    if meta.get("format") not in READABLE_FORMATS:
        raise ValueError(f"unknown model format {meta.get('format')!r}")
    features = list(meta["features"])
    r = meta["regressor"]
    scale = float(meta["scale"])
    residuals = np.asarray(r["residuals"], dtype=np.float64)
    if "distribution" in r:
        distribution = GradeDistribution.from_state(r["distribution"])
    else:  # format 1: symmetric scores from the absolute residuals (see the module docstring)
        pass_mark = meta.get("pass_mark")
        distribution = GradeDistribution(
            np.concatenate([residuals, -residuals]),
            scale=scale,
            pass_mark=float(pass_mark) if pass_mark is not None else scale / 2,
            alpha=float(r["alpha"]),
        )
    regressor = RegressionModel(
        name=r["name"],
        pipeline=_load(root / "regressor.skops"),
        features=features,
        cv_table=pd.DataFrame(r["cv_table"]),
        oof_pred=np.asarray(r["oof_pred"], dtype=np.float64),
        residuals=residuals,
        distribution=distribution,
        scale=scale,
        alpha=float(r["alpha"]),
    )
    threshold = float(meta["classifier"]["threshold"]) if meta.get("format") == 2 else 0.5
    return ModelBundle(regressor, PassChanceModel(regressor, threshold), meta)


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


def _log_graph(step: LogAmounts, name: str, d: int) -> Any:
    """:class:`ml.models.LogAmounts` as plain ONNX ops in float64: ``Where(mask,
    Log(Max(x, 0) + 1), x)`` with ``mask`` true on the logged columns (skl2onnx has no
    converter for our step; ``Log`` of ``1 + x`` matches numpy's ``log1p`` within 1e-15 on
    counts, far inside the 1e-5 parity)."""
    from onnx import TensorProto, helper, numpy_helper

    mask = np.zeros((1, d), dtype=bool)
    mask[0, list(step.logged)] = True
    nodes = [
        helper.make_node("Max", [name, "zero"], ["floored"]),
        helper.make_node("Add", ["floored", "one"], ["shifted"]),
        helper.make_node("Log", ["shifted"], ["log"]),
        helper.make_node("Where", ["mask", "log", name], ["logged"]),
    ]
    dbl = TensorProto.DOUBLE
    inits = [
        numpy_helper.from_array(mask, "mask"),
        numpy_helper.from_array(np.zeros((1, 1)), "zero"),
        numpy_helper.from_array(np.ones((1, 1)), "one"),
    ]
    return _graph(nodes, (name, dbl), ("logged", dbl), d, inits)


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
    final = pipeline[-1]
    if isinstance(final, VotingRegressor) and not classifier:
        return _voting_to_onnx(pipeline, d)
    parts = [_imputer_graph(pipeline, d)]
    last_input = "imputed"
    for i, (_, step) in enumerate(pipeline.steps[1:-1]):
        if isinstance(step, LogAmounts):
            if step.logged:
                parts.append(_log_graph(step, last_input, d))
                last_input = f"logged{i}"
        else:
            parts.append(_convert(step, last_input, d, float32=False, classifier=False))
            last_input = f"step{i}"
    final = pipeline[-1]
    if isinstance(final, SignedLinear):  # its map as the LinearRegression a version stores
        final = final.frozen()
    float32 = type(final).__name__ in FLOAT_ONLY_KERNELS
    if float32:
        parts.append(_cast_graph(last_input, d))
        last_input = f"{last_input}_f32"
    parts.append(_convert(final, last_input, d, float32=float32, classifier=classifier))
    return _chain(parts)


def _voting_to_onnx(pipeline: Pipeline, d: int) -> bytes:
    """An imputer followed by a ``VotingRegressor`` (the ``ensemble`` candidate) as one graph:
    each member behind the same imputation converted as its own pipeline (so each keeps its
    own precision: float64 for the linear members, float32 kernels for the trees), the graphs
    side by side on the one ``features`` input, their ``variable`` outputs cast to float64 and
    averaged with the ensemble's weights into ``variable`` (n, 1) float64."""
    import onnx
    from onnx import TensorProto, compose, helper, numpy_helper

    voting = pipeline[-1]
    impute = pipeline.steps[:-1]
    members = []
    for i, member in enumerate(voting.estimators_):
        steps = member.steps if isinstance(member, Pipeline) else [("model", member)]
        onx = onnx.load_from_string(sklearn_to_onnx(Pipeline([*impute, *steps]), d,
                                                    classifier=False))  # fmt: skip
        members.append(compose.add_prefix(onx, f"m{i}_"))
    k = len(members)
    w = np.ones(k) if voting.weights is None else np.asarray(voting.weights, dtype=np.float64)
    w = w / w.sum()
    nodes: list[Any] = []
    inits: list[Any] = [numpy_helper.from_array(w[[i]].reshape(1, 1), f"w{i}") for i in range(k)]
    for i, m in enumerate(members):
        nodes.append(helper.make_node("Identity", ["features"], [m.graph.input[0].name]))
        nodes.extend(m.graph.node)
        inits.extend(m.graph.initializer)
        nodes.append(helper.make_node("Cast", [m.graph.output[0].name], [f"y{i}"],
                                      to=TensorProto.DOUBLE))  # fmt: skip
        nodes.append(helper.make_node("Mul", [f"y{i}", f"w{i}"], [f"wy{i}"]))
    nodes.append(helper.make_node("Sum", [f"wy{i}" for i in range(k)], ["variable"]))
    dbl = TensorProto.DOUBLE
    graph = helper.make_graph(
        nodes,
        "features_to_variable",
        [helper.make_tensor_value_info("features", dbl, [None, d])],
        [helper.make_tensor_value_info("variable", dbl, [None, 1])],
        initializer=inits,
    )
    domains = {o.domain for m in members for o in m.opset_import} - {"", "ai.onnx"}
    opsets = [helper.make_opsetid("", ONNX_OPSET)]
    opsets += [helper.make_opsetid(dom, 3) for dom in sorted(domains)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = max(m.ir_version for m in members)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


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
    """Write ``regressor.onnx`` and ``distribution.json`` (see the module docstring)."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    d = len(bundle.regressor.features)
    paths = {"regressor": root / "regressor.onnx", "distribution": root / "distribution.json"}
    paths["regressor"].write_bytes(sklearn_to_onnx(bundle.regressor.pipeline, d, classifier=False))
    dist = bundle.regressor.distribution
    state = dist.to_state()
    del state["residuals"]
    state["scores"] = dist.scores.tolist()
    state["p_floor"] = 0.01
    paths["distribution"].write_text(json.dumps(state, indent=1), "utf-8")
    return paths

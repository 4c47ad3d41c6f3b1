"""`arche-predict train / predict / evaluate / export-onnx` on a simulated course."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import onnxruntime as ort
from click.testing import CliRunner

from lti_app.cli import main
from simulation.course import simulate_course
from tests.lti_app.cli_course import fast_config, store_course


def test_train_predict_evaluate_export(tmp_path: Path) -> None:
    cfg, settings = fast_config(tmp_path)
    # A course whose term is over: "now" is past its end, so progress is 100%.
    simulated = simulate_course(n_past=3, n_students=30, seed=5, current_progress=1.0)
    course_id = store_course(settings, simulated)
    run = CliRunner()
    trained = run.invoke(main, ["--config", str(cfg), "train", "--course", str(course_id)])
    assert trained.exit_code == 0, trained.output
    assert f"course {course_id}: scored" in trained.output
    assert "progress through the term: 100%" in trained.output
    again = run.invoke(main, ["--config", str(cfg), "train", "--course", str(course_id)])
    assert "reused (same training data)" in again.output

    predicted = run.invoke(
        main, ["--config", str(cfg), "predict", "--course", str(course_id), "--csv"]
    )
    assert predicted.exit_code == 0, predicted.output
    rows = list(csv.DictReader(io.StringIO(predicted.stdout)))
    assert len(rows) == len(simulated.current.roster)  # type: ignore[union-attr]
    assert all(float(r["grade_low"]) <= float(r["grade"]) <= float(r["grade_high"]) for r in rows)

    report = run.invoke(main, ["--config", str(cfg), "evaluate", "--model", "1"])
    assert report.exit_code == 0, report.output
    assert "quality gate: PASSED" in report.output
    assert '"r2"' in report.output

    out = tmp_path / "onnx"
    exported = run.invoke(main, ["--config", str(cfg), "export-onnx", "--model", "1", "--out",
                                 str(out)])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    session = ort.InferenceSession(str(out / "regressor.onnx"))
    n_inputs = session.get_inputs()[0].shape[1]
    dtype = np.float64 if "double" in session.get_inputs()[0].type else np.float32
    result = session.run(None, {session.get_inputs()[0].name: np.zeros((2, n_inputs), dtype)})
    assert np.isfinite(np.asarray(result[0], dtype=float)).all()

    missing = run.invoke(main, ["--config", str(cfg), "evaluate", "--model", "999"])
    assert missing.exit_code == 1
    assert "no model version 999" in missing.output

"""Reports (issue #13, item 9): `evaluate` prints the stored early-warning curve and feature
importance, and a withheld model says why with the gate's own figures and units."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from lti_app.cli import main
from lti_app.config import load_settings
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.models import ModelVersion
from lti_app.services.scoring import _gate_reason
from simulation.course import simulate_course
from tests.lti_app.cli_course import fast_config, store_course


def test_gate_reason_quotes_the_gain_and_its_ci_with_units() -> None:
    """Fixed figures, exact wording: the teacher reads what was compared, by how much, in
    which unit, and how sure the bootstrap is."""
    report = {
        "regression": {"gate": {"gain": -0.02, "ci_low": -0.05, "ci_high": 0.01}},
        "classification": {"gate": {"gain": 0.004, "ci_low": -0.0012, "ci_high": 0.009}},
    }
    assert _gate_reason("regression", report, scale=20.0) == (
        "grade predictions withheld: no better than predicting the mean grade "
        "(gain \u22120.02 points of average error out of 20, 95 % CI \u22120.05 to 0.01)"
    )
    assert _gate_reason("classification", report) == (
        "pass chances withheld: no better than giving every student the usual pass rate "
        "(gain 0.004 in Brier score (the squared error of a pass chance, 0 to 1), "
        "95 % CI \u22120.001 to 0.009)"
    )


def _course(tmp_path: Path, *, signal: float, seed: int) -> tuple[Path, int]:
    cfg, settings = fast_config(tmp_path)
    simulated = simulate_course(
        n_past=3, n_students=36, seed=seed, current_progress=0.5, signal=signal
    )
    course_id = store_course(settings, simulated)
    trained = CliRunner().invoke(main, ["--config", str(cfg), "train", "--course", str(course_id)])
    assert trained.exit_code == 0, trained.output
    return cfg, course_id


def _versions(cfg: Path) -> list[ModelVersion]:
    engine = make_engine(load_settings(cfg, environ={}).database_url)
    with session_scope(make_session_factory(engine)) as session:
        rows = list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)))
        session.expunge_all()
    return rows


def test_evaluate_prints_the_stored_curve_and_importance(tmp_path: Path) -> None:
    """Every stored early-warning checkpoint and every importance row of the version's task
    is printed, with the stored numbers."""
    cfg, _ = _course(tmp_path, signal=1.0, seed=11)
    for version in _versions(cfg):
        out = CliRunner().invoke(
            main, ["--config", str(cfg), "evaluate", "--model", str(version.id)]
        )
        assert out.exit_code == 0, out.output
        lines = out.output.splitlines()
        report = version.metadata_json["report"]
        curve = report["early_warning"]
        assert curve
        assert any(line.startswith("early warning") for line in lines)
        for row in curve:
            value = row["mae"] if version.task == "regression" else row["auc"]
            shown = f"{value:.2f}"
            assert any(
                line.strip().startswith(f"{row['checkpoint']:.0%}") and shown in line
                for line in lines
            ), (row, out.output)
        importance = report["permutation_importance"][version.task]
        assert importance
        for row in importance:
            assert any(
                line.strip().startswith(str(row["feature"])) and f"{row['importance']:.3f}" in line
                for line in lines
            ), (row, out.output)


def test_a_withheld_model_says_why_with_its_figures(tmp_path: Path) -> None:
    """A course whose activity says nothing of the grade: the gate withholds both models, and
    `evaluate` quotes the stored gain and CI in the reason."""
    cfg, _ = _course(tmp_path, signal=0.0, seed=12)
    regression = next(v for v in _versions(cfg) if v.task == "regression")
    assert not regression.gate_passed
    gate = regression.metrics["gate"]
    out = CliRunner().invoke(
        main, ["--config", str(cfg), "evaluate", "--model", str(regression.id)]
    )
    assert out.exit_code == 0, out.output
    ci = f"{gate['ci_low']:.2f} to {gate['ci_high']:.2f}".replace("-", "\u2212")
    assert "quality gate: FAILED (grade predictions withheld: no better than predicting the " in (
        out.output
    )
    assert f"points of average error out of 20, 95 % CI {ci})" in out.output

"""`arche-predict train`, `predict`, `evaluate` and `export-onnx`: a course's models.

The ML stack (pandas, scikit-learn, torch) is imported by the services these commands call,
never at this module's import.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lti_app.cli.common import (
    COURSE,
    COURSE_HELP,
    CliContext,
    course_or_fail,
    friendly_errors,
    pass_ctx,
)

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from lti_app.models import ModelVersion
    from lti_app.services.scoring import ScoringOutcome


def _score(ctx: CliContext, course_id: int, label: str, as_of: str | None = None) -> ScoringOutcome:
    """Score the course (training or reusing its models) behind a progress bar on stderr,
    as of AS_OF (a backtest: only what the log held then is used) or of its newest data."""
    from lti_app.services.course_data import CourseDataError
    from lti_app.services.scoring import score_course

    settings = ctx.settings
    now = _as_of(as_of, settings.moodle.timezone)
    try:
        with (
            click.progressbar(length=100, label=label, file=sys.stderr) as bar,
            ctx.session() as session,
        ):

            def step(name: str, fraction: float) -> None:
                bar.label = f"{label}: {name}"
                bar.update(max(0, round(fraction * 100) - bar.pos))

            outcome = score_course(
                session,
                course_or_fail(session, course_id),
                settings=settings.ml,
                model_root=settings.model_root,
                now=now,
                on_progress=step,
            )
            bar.update(100 - bar.pos)
    except CourseDataError as exc:
        raise click.ClickException(str(exc)) from None
    if outcome.status == "one_class":
        mark = outcome.pass_mark or settings.ml.pass_mark
        # A stated state, not a bug: the past offerings' final grades are all on one side of
        # the pass mark. The scoring stored engagement only, as the scheduler's does.
        raise click.ClickException(
            f"course {course_id}: {outcome.message.removesuffix(': engagement only')}, at the "
            f"pass mark {mark:g}/{settings.ml.grade_max:g}; no model was "
            "trained, engagement only was stored (check the past offerings' final grades and "
            "their maximum)"
        )
    return outcome


def _as_of(text: str | None, timezone: str) -> datetime | None:
    """`--as-of`'s moment, or one `Error:` line for a value that is not a date."""
    if text is None:
        return None
    from lti_app.services.courses import CourseError, parse_moment

    try:
        return parse_moment(text, timezone)
    except CourseError as exc:
        raise click.ClickException(f"--as-of: {exc}") from None


AS_OF_HELP = "Score as of this date (YYYY-MM-DD[THH:MM], Moodle's zone): a backtest."


def _term_line(outcome: ScoringOutcome) -> str | None:
    """What the CLI says of the term when its end is not a date set on the course."""
    if outcome.term_end is None:
        return None
    if outcome.term_ended:
        return f"term ended on {outcome.term_end:%Y-%m-%d}; estimates as of its end"
    if outcome.end_inferred:
        return (
            f"no end date: the term is taken to end on {outcome.term_end:%Y-%m-%d}, "
            "as long as its past offerings (`course update --end` sets it)"
        )
    return None


@click.command("train")
@click.option("--course", "course_id", type=COURSE, required=True, help=COURSE_HELP)
@click.option("--as-of", "as_of", default=None, help=AS_OF_HELP)
@pass_ctx
@friendly_errors
def train(ctx: CliContext, course_id: int, as_of: str | None) -> None:
    """Train (or reuse) the course's models on its past offerings, at today's point of the term."""
    outcome = _score(ctx, course_id, f"training course {course_id}", as_of)
    click.echo(f"course {course_id}: {outcome.status} ({outcome.message})")
    click.echo(f"progress through the term: {outcome.progress:.0%}")
    if (term := _term_line(outcome)) is not None:
        click.echo(term)
    if outcome.regression_model_id is not None:
        reused = "reused (same training data)" if outcome.reused_model else "trained"
        click.echo(
            f"model versions {outcome.regression_model_id} (grade) and "
            f"{outcome.classification_model_id} (pass) {reused}; "
            "`arche-predict evaluate --model ID` prints their report"
        )


@click.command("predict")
@click.option("--course", "course_id", type=COURSE, required=True, help=COURSE_HELP)
@click.option("--csv", "as_csv", is_flag=True, help="Write the predictions as CSV on stdout.")
@click.option("--as-of", "as_of", default=None, help=AS_OF_HELP)
@pass_ctx
@friendly_errors
def predict(ctx: CliContext, course_id: int, as_csv: bool, as_of: str | None) -> None:
    """Predict every current student of the course (batch), storing the predictions.

    The listing is this scoring's only (one row per student), never the course's earlier ones.
    """
    from sqlalchemy import select

    from lti_app.models import Person, Prediction
    from lti_app.services.exports import SafeCsvWriter

    outcome = _score(ctx, course_id, f"predicting course {course_id}", as_of)
    with ctx.session() as session:
        rows = session.execute(
            select(Person.fullname, Person.moodle_user_id, Prediction)
            .join(Prediction, Prediction.person_id == Person.id)
            .where(Prediction.course_id == course_id, Prediction.as_of == outcome.as_of)
            .order_by(Prediction.pass_probability.asc().nulls_last(), Person.fullname)
        ).all()

    def fmt(value: float | None, pattern: str) -> str:
        return "-" if value is None else pattern.format(value)

    header = ["moodle_user_id", "name", "grade", "grade_low", "grade_high", "p_pass", "p_low",
              "p_high", "predicted_pass"]  # fmt: skip
    if as_csv:
        # Names neutralised against formula injection; numbers written as numbers.
        writer = SafeCsvWriter(sys.stdout)
        writer.writerow(header)
        for name, uid, p in rows:
            writer.writerow([uid, name, p.predicted_grade, p.grade_lower, p.grade_upper,
                             p.pass_probability, p.probability_lower, p.probability_upper,
                             p.predicted_pass])  # fmt: skip
        return
    click.echo(f"course {course_id}: {outcome.status} ({outcome.message}); {len(rows)} students")
    if (term := _term_line(outcome)) is not None:
        click.echo(term)
    for name, uid, p in rows:
        click.echo(
            f"{uid!s:>8}  {name[:28]:28}  grade {fmt(p.predicted_grade, '{:5.1f}')} "
            f"[{fmt(p.grade_lower, '{:.1f}')}, {fmt(p.grade_upper, '{:.1f}')}]  "
            f"P(pass) {fmt(p.pass_probability, '{:.0%}')} "
            f"[{fmt(p.probability_lower, '{:.0%}')}, {fmt(p.probability_upper, '{:.0%}')}]"
        )


def _model_version(session: Session, ref: str) -> ModelVersion:
    """The model version whose id (all digits) or version name is REF, or a one-line error."""
    from sqlalchemy import select

    from lti_app.models import ModelVersion

    query = select(ModelVersion).where(
        ModelVersion.id == int(ref) if ref.isdigit() else ModelVersion.version == ref
    )
    version = session.scalar(query)
    if version is None:
        raise click.ClickException(f"no model version {ref}")
    return version


@click.command("evaluate")
@click.option("--model", "ref", default=None, help="Model version id or name.")
@click.option("--course", "course_id", type=COURSE, default=None, help="Or: the course's models...")
@click.option("--as-of", "as_of", default=None, help="...trained as of this date (a backtest).")
@pass_ctx
@friendly_errors
def evaluate(ctx: CliContext, ref: str | None, course_id: int | None, as_of: str | None) -> None:
    """Print a model version's validated report: metrics with CIs, baseline and gate.

    With `--course` (and `--as-of`), the versions a scoring of the course at that date trains
    or reuses: how good the predictions were at that point of the term, in a backtest.
    """
    import json

    refs = _evaluated_refs(ctx, ref, course_id, as_of)
    with ctx.session() as session:
        for one in refs:
            version = _model_version(session, one)
            click.echo(f"model {version.version}: {version.task}, {version.estimator}")
            click.echo(
                f"trained {version.trained_at:%Y-%m-%d %H:%M} UTC on data {version.data_hash[:12]}"
            )
            click.echo(
                "quality gate: PASSED"
                if version.gate_passed
                else f"quality gate: FAILED ({version.gate_reason})"
            )
            for line in _report_lines(version.task, version.metadata_json.get("report", {})):
                click.echo(line)
            click.echo(json.dumps(version.metrics, indent=2, sort_keys=True))


def _report_lines(task: str, report: dict[str, Any]) -> list[str]:
    """The stored early-warning curve and permutation importance of one task, as text tables.

    Both were computed at training time and stored with the version; printing them lets an
    admin judge, without the dashboard, how early the model is trustworthy and what it leans on.
    """
    from ml.feature_info import FEATURES

    lines: list[str] = []
    curve = report.get("early_warning") or []
    if curve:
        lines.append("early warning (cross-validated on past offerings, by share of the term):")
        if task == "regression":
            lines.append("  term  students     R²   MAE (mean grade's)  gate")
            for r in curve:
                lines.append(
                    f"  {r['checkpoint']:>4.0%}  {r['n']:>8}  {r['r2']:>5.2f}  "
                    f"{r['mae']:>5.2f} ({r['mae_baseline']:.2f})        "
                    f"{'passed' if r['regression_gate'] else 'withheld'}"
                )
        else:
            lines.append("  term  students   AUC  Brier (pass rate's)  gate")
            for r in curve:
                lines.append(
                    f"  {r['checkpoint']:>4.0%}  {r['n']:>8}  {r['auc']:>4.2f}  "
                    f"{r['brier']:>5.3f} ({r['brier_baseline']:.3f})        "
                    f"{'passed' if r['classification_gate'] else 'withheld'}"
                )
    importance = report.get("permutation_importance") or {}
    rows = importance.get(task) or []
    if rows:
        loss = "rise of the mean absolute error" if task == "regression" else "loss of AUC"
        lines.append(
            f"feature importance ({loss} when the feature is shuffled, on the "
            f"{importance.get('data', 'training')} data; 95% band, p-value):"
        )
        for r in rows:
            info = FEATURES.get(str(r["feature"]))
            name = (
                f"{r['feature']} ({info.label})"
                if info is not None and info.label
                else r["feature"]
            )
            lines.append(
                f"  {name:<48} {r['importance']:>7.3f}  [{r['ci_low']:.3f}, "
                f"{r['ci_high']:.3f}]  p={r['p_value']:.2f}"
            )
    return lines


def _evaluated_refs(
    ctx: CliContext, ref: str | None, course_id: int | None, as_of: str | None
) -> list[str]:
    """The versions `evaluate` reports: `--model`'s, or those of the course's scoring."""
    if (ref is None) == (course_id is None):
        raise click.ClickException("give either --model or --course")
    if course_id is None:
        if as_of is not None:
            raise click.ClickException("--as-of goes with --course (a model has one date)")
        return [str(ref)]
    outcome = _score(ctx, course_id, f"evaluating course {course_id}", as_of)
    if outcome.regression_model_id is None or outcome.classification_model_id is None:
        raise click.ClickException(
            f"course {course_id}: {outcome.status} ({outcome.message}): no model to evaluate"
        )
    if (term := _term_line(outcome)) is not None:
        click.echo(term)
    click.echo(f"as of {outcome.as_of:%Y-%m-%d %H:%M} UTC, {outcome.progress:.0%} of the term")
    return [str(outcome.regression_model_id), str(outcome.classification_model_id)]


@click.command("export-onnx")
@click.option("--model", "ref", required=True, help="Model version id or name.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True)
@pass_ctx
@friendly_errors
def export_onnx_command(ctx: CliContext, ref: str, out: Path) -> None:
    """Write the version's regressor and classifier as ONNX files into OUT."""
    from lti_app.services.scoring import ModelStoreError, load_model
    from ml.registry import export_onnx

    with ctx.session() as session:
        version = _model_version(session, ref)
        try:
            bundle = load_model(ctx.settings.model_root, version)
        except ModelStoreError as exc:
            raise click.ClickException(str(exc)) from None
    for kind, path in export_onnx(bundle, out).items():
        click.echo(f"{kind}: {path}")

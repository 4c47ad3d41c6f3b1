"""The two calls a scoring service needs: train a model version, score a running offering.

:func:`train_model_version` goes from past offerings to a saved, evaluated, gated model version
for one relative point of the course (the current offering's progress): training set at that
checkpoint, model selection, the grade distribution, evaluation report (leave one offering
out), optional early-warning curve, registry. :func:`score_students` turns the current
offering's features into per-student predictions, and refuses to score with a version whose
quality gate is closed.

A version is one grade model and its predictive distribution (:mod:`ml.distribution`): the
grade shown, its interval and the pass chance are read from it, so they cannot disagree. The
version's "classifier" is that distribution's pass chance (:class:`ml.models.PassChanceModel`);
no separate pass classifier is trained any more (``classifiers`` is accepted and ignored, so
existing configurations keep working; :func:`ml.models.fit_classifier` stays for diagnostics and
benchmarks).

Both stay pure (no database, no web): the service layer reads and writes the rows around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ml.dataset import DEFAULT_CHECKPOINTS, Offering, TrainingSet, build_training_set
from ml.evaluation import early_warning_curve, evaluation_report
from ml.explain import grade_factors
from ml.models import (
    PassChanceModel,
    RegressionModel,
    SingleClassError,
    ThresholdMetric,
    fit_regressor,
)
from ml.registry import ModelBundle, save_bundle

Progress = Callable[[str, float], None]


class GatedModelError(RuntimeError):
    """The model version did not beat its baseline: its predictions must not be shown."""


def _noop(step: str, fraction: float) -> None:
    del step, fraction


def train_model_version(
    offerings: Sequence[Offering],
    progress: float,
    directory: str | Path,
    *,
    scale: float = 20.0,
    pass_mark: float = 10.0,
    alpha: float = 0.1,
    regressors: Sequence[str] | None = None,
    classifiers: Sequence[str] | None = None,
    threshold_metric: ThresholdMetric = "f1",
    early_warning: Sequence[float] | None = DEFAULT_CHECKPOINTS,
    n_boot: int = 1000,
    n_repeats: int = 30,
    random_state: int = 0,
    feature_kwargs: Mapping[str, Any] | None = None,
    version: str | None = None,
    on_progress: Progress = _noop,
    n_threads: int = 1,
) -> ModelBundle:
    """Train, evaluate, gate and save a version for predictions at ``progress`` (0-1].

    ``on_progress(step, fraction_done)`` lets a CLI draw a progress bar. The early-warning
    curve uses the cheap candidate (ridge) at each of ``early_warning``, each offering held out
    in turn; pass ``None`` to skip it. Everything runs under ``n_threads`` threads (BLAS,
    OpenMP; see :mod:`ml.models` for why few). ``classifiers`` and ``threshold_metric`` are
    accepted for existing configurations and ignored: the pass chance is the grade
    distribution's, at risk means a chance under 50 %.
    """
    del classifiers, threshold_metric
    with threadpool_limits(limits=n_threads):
        on_progress("training set", 0.0)
        data = build_training_set(
            offerings,
            (progress,),
            scale=scale,
            pass_mark=pass_mark,
            feature_kwargs=feature_kwargs,
        )
        reg, clf = _fit_models(
            data,
            regressors=regressors,
            alpha=alpha,
            scale=scale,
            random_state=random_state,
            n_threads=n_threads,
            on_progress=on_progress,
        )
        curve = None
        if early_warning:
            on_progress("early warning", 0.7)
            curve = _early_warning(
                offerings,
                early_warning,
                scale=scale,
                pass_mark=pass_mark,
                feature_kwargs=feature_kwargs,
                n_boot=min(n_boot, 300),
                random_state=random_state,
                n_threads=n_threads,
            )
        on_progress("evaluation", 0.85)
        report = evaluation_report(
            data,
            reg,
            early_warning=curve,
            n_boot=n_boot,
            n_repeats=n_repeats,
            random_state=random_state,
        )
        on_progress("saving", 0.95)
        window = _training_window(offerings, progress)
        if (feature_kwargs or {}).get("relative"):
            # Places in each cohort, not levels (a site-wide model): a what-if cannot set them.
            window["features"] = "relative"
        bundle = save_bundle(
            reg, clf, directory, data=data, report=report, training_window=window, version=version
        )
        on_progress("done", 1.0)
        return bundle


def _fit_models(
    data: TrainingSet,
    *,
    regressors: Sequence[str] | None,
    alpha: float,
    scale: float,
    random_state: int,
    n_threads: int,
    on_progress: Progress,
    classifiers: Sequence[str] | None = None,
    threshold_metric: ThresholdMetric = "f1",
) -> tuple[RegressionModel, PassChanceModel]:
    """The grade regressor, the best of its candidates under cross-validation grouped by
    offering (so no offering is both fitted and scored), with its grade distribution, and the
    pass chance read from it (``classifiers`` and ``threshold_metric``: ignored, see the module
    docstring)."""
    del classifiers, threshold_metric
    classes = np.unique(data.passed.to_numpy())
    if classes.size != 2:
        # A chance learned from past students who all passed (or all failed) is no chance:
        # the services show engagement only and say why (ml.models.SingleClassError).
        raise SingleClassError(int(classes[0]) if classes.size else None)
    on_progress("regressors", 0.1)
    reg = fit_regressor(
        data.X,
        data.grade,
        data.groups.to_numpy(),
        candidates=regressors,
        alpha=alpha,
        scale=scale,
        pass_mark=data.pass_mark,
        random_state=random_state,
        n_threads=n_threads,
    )
    return reg, PassChanceModel(reg)


def _early_warning(
    offerings: Sequence[Offering],
    checkpoints: Sequence[float],
    *,
    scale: float,
    pass_mark: float,
    feature_kwargs: Mapping[str, Any] | None,
    n_boot: int,
    random_state: int,
    n_threads: int,
) -> pd.DataFrame:
    """How good predictions are at each of ``checkpoints``: the early-warning curve of the
    report, on training sets built at those points of the same offerings, each offering
    predicted by models trained on the others."""
    all_points = build_training_set(
        offerings, checkpoints, scale=scale, pass_mark=pass_mark, feature_kwargs=feature_kwargs
    )
    return early_warning_curve(
        all_points, n_boot=n_boot, random_state=random_state, n_threads=n_threads
    )


def _training_window(offerings: Sequence[Offering], progress: float) -> dict[str, Any]:
    """What a version was trained on, kept in its metadata: the relative point and, per past
    offering, its id, dates and cohort size."""
    return {
        "progress": float(progress),
        "offerings": [
            {
                "id": o.offering_id,
                "course_start": o.course_start.isoformat(),
                "course_end": o.course_end.isoformat(),
                "n_students": len(o.roster),
            }
            for o in offerings
        ],
    }


def score_students(
    bundle: ModelBundle,
    features: pd.DataFrame,
    *,
    n_passes: int = 100,
    allow_gated: bool = False,
    at_risk_below: float | None = None,
) -> pd.DataFrame:
    """Per student (the index of ``features``), every number from one predictive distribution
    of the final grade: ``grade`` (its median) with ``grade_low``/``grade_high`` (its central
    interval, 90 % by default), ``p_pass`` = P(grade >= pass mark) with ``p_pass_low``/
    ``p_pass_high`` (its range, which contains it, inside [0.01, 0.99]) and ``p_pass_std``, and
    ``at_risk``: a chance under ``at_risk_below`` (default: the version's threshold, 0.5, i.e.
    a grade under the pass mark). Also ``pass_mark`` and ``interval_level``. ``n_passes`` is
    accepted and unused (nothing is sampled).

    Raises :class:`GatedModelError` for a version whose gate is closed, unless
    ``allow_gated`` (for diagnostics that never reach learners or teachers).
    """
    del n_passes
    if not bundle.gate_passed and not allow_gated:
        raise GatedModelError(
            f"model version {bundle.metadata.get('version')} did not beat its baseline"
        )
    reg = bundle.regressor
    missing = set(reg.features) - set(features.columns)
    if missing:
        raise KeyError(f"features lack columns the model needs: {sorted(missing)}")
    shown = reg.predict_distribution(features)
    cut = bundle.classifier.threshold if at_risk_below is None else float(at_risk_below)
    columns = ("grade", "grade_low", "grade_high", "p_pass", "p_pass_std", "p_pass_low")
    out = pd.DataFrame(
        {name: shown[name] for name in (*columns, "p_pass_high")}, index=features.index
    )
    out["at_risk"] = out["p_pass"].to_numpy() < cut
    out["pass_mark"] = reg.pass_mark
    out["interval_level"] = 1 - reg.alpha
    return out


def explain_students(bundle: ModelBundle, features: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """Top ``k`` signed grade factors per student, against the cohort's median student."""
    table = grade_factors(bundle.regressor, features, features, k=k)
    return table.rename(columns={"index": str(features.index.name or "index")})

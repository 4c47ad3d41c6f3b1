"""Scoring: features as of now, a model trained on past offerings, predictions with uncertainty.

For one current course:
1. take its progress through the term (`as_of` between start and end);
2. build the training set from its past offerings at the *same* relative checkpoint (week 4 of
   12 learns from week 4 of 12), so no feature sees more of a past term than exists of this one;
3. train (or reuse, when the training data hash is unchanged) the grade regressor and the pass
   classifier, evaluate them, and record both versions with their metrics and quality gates;
   a course with both dates first looks up the training set kept under the fingerprint of its
   inputs (`training_cache`): unchanged, the active version is reused without reading the
   past offerings at all;
4. predict every current student, with the conformal grade interval, the calibrated pass
   probability and its spread, and the top factors of each.

A model whose gate failed is stored (its metrics explain why) but its predictions are stored
without values: nothing un-validated is ever shown. With no usable history, the course gets
features only (an engagement-only dashboard).

Like every service: takes a Session, never commits, never imports Flask.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.db import utcnow
from lti_app.models import Course, LogEvent, ModelVersion, Prediction
from lti_app.services import training_cache
from lti_app.services.course_data import CourseDataError, load_offering, student_roster
from lti_app.services.course_settings import pass_mark_of, risk_threshold_of
from lti_app.services.courses import course_term, past_offerings, usual_term_length
from lti_app.services.site_model import site_history
from ml.dataset import Offering, TrainingSet, build_training_set
from ml.explain import grade_factors, pass_factors
from ml.features import compute_features, relative_to_cohort
from ml.models import SingleClassError
from ml.plan import effort_bounds
from ml.registry import TRAINER_REVISION, ModelBundle, load_bundle
from ml.training import Progress, train_model_version

Status = Literal["scored", "gated", "no_history", "one_class", "no_students"]
#: What a model version learned from: the course's own past offerings, or the site's other
#: courses (a site-wide model, #17 item 2).
Scope = Literal["course", "site"]


@dataclass(frozen=True)
class ScoringOutcome:
    course_id: int
    status: Status
    message: str
    as_of: datetime
    progress: float
    regression_model_id: int | None = None
    classification_model_id: int | None = None
    predictions: int = 0
    reused_model: bool = False
    # The term as scored: its end, whether that end was inferred from the past offerings' length
    # (the course has no end date), and whether the term was over at the requested time (then
    # `as_of` is the end: see `score_course`).
    term_end: datetime | None = None
    end_inferred: bool = False
    term_ended: bool = False
    # The pass mark trained for, on the tool's scale (`course_settings.pass_mark_of`).
    pass_mark: float | None = None
    # "site": the estimates come from a site-wide model (#17), the course having no history.
    scope: str = "course"


# --------------------------------------------------------------------------- helpers


def course_progress(start: pd.Timestamp, end: pd.Timestamp, as_of: pd.Timestamp) -> float:
    """Fraction of the term elapsed at `as_of`, in (0, 1] (a course not started counts as 1%)."""
    span = (end - start).total_seconds()
    if span <= 0:
        return 1.0
    return float(min(1.0, max(0.01, (as_of - start).total_seconds() / span)))


def artifact_digest(directory: Path) -> str:
    """SHA-256 over every file of a model version, so a tampered artifact is never loaded."""
    h = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(path.relative_to(directory).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


class ModelStoreError(RuntimeError):
    """A model artifact is missing or does not match what the database recorded."""


def load_model(model_root: Path, version: ModelVersion) -> ModelBundle:
    """Load a stored version from our own store, after checking its digest."""
    directory = (model_root / version.artifact_path).resolve()
    if model_root.resolve() not in directory.parents:
        raise ModelStoreError(f"model {version.version} points outside the model store")
    if not directory.is_dir():
        raise ModelStoreError(f"model {version.version}: artifact folder missing ({directory})")
    if artifact_digest(directory) != version.artifact_sha256:
        raise ModelStoreError(f"model {version.version}: artifact changed since it was stored")
    return load_bundle(directory)


def _usable(offering: Offering) -> bool:
    """A past offering trains only with students, final grades and its log: one whose events
    retention deleted (#18) would teach all-zero activity against real grades."""
    graded = offering.grades.reindex(offering.roster["userid"].to_numpy())
    return len(offering.roster) > 0 and bool(graded.notna().any()) and not offering.events.empty


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _factor_records(frame: pd.DataFrame) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for rec in frame.to_dict("records"):
        out.setdefault(int(rec["index"]), []).append(
            {
                "feature": str(rec["feature"]),
                "value": _jsonable(float(rec["value"])),
                "reference": _jsonable(float(rec["reference"])),
                "contribution": _jsonable(float(rec["contribution"])),
            }
        )
    return out


# --------------------------------------------------------------------------- training


def _active_versions(
    session: Session, course_id: int
) -> tuple[ModelVersion | None, ModelVersion | None]:
    rows = session.scalars(
        select(ModelVersion).where(ModelVersion.course_id == course_id, ModelVersion.active)
    ).all()
    reg = next((r for r in rows if r.task == "regression"), None)
    clf = next((r for r in rows if r.task == "classification"), None)
    return reg, clf


def train_model(
    session: Session,
    course: Course,
    training: TrainingSet,
    *,
    settings: MLSettings,
    model_root: Path,
    checkpoint: float,
    offerings: list[Offering],
    offering_names: list[str],
    on_progress: Progress | None = None,
    scope: Scope = "course",
    term_ended: bool = False,
) -> tuple[ModelVersion, ModelVersion, ModelBundle, bool]:
    """Train and register a version, or reuse the active one trained on the same data.

    `scope` "site": a site-wide model (#17), on the other courses' offerings with each
    feature as the student's place in their cohort (`relative_to_cohort`). `term_ended`: the
    course's term is over, so an older training's version is reused too (see `_reusable`)."""
    data_hash = training.data_hash()
    active = _reusable(session, course, model_root, data_hash, any_trainer=term_ended)
    if active is not None:
        return (*active, True)

    version = f"{course.id}-{utcnow():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    directory = model_root / version
    try:
        # The pure pipeline: training set at the checkpoint, model selection, evaluation with
        # the early-warning curve and the gate, then the pickle-free registry.
        bundle = train_model_version(
            offerings,
            checkpoint,
            directory,
            scale=training.scale,
            pass_mark=training.pass_mark,
            regressors=list(settings.regressors) or None,
            classifiers=list(settings.classifiers) or None,
            threshold_metric=settings.threshold_metric,
            n_boot=settings.bootstrap_samples,
            n_repeats=settings.permutation_repeats,
            random_state=settings.random_seed,
            n_threads=settings.training_threads,
            version=version,
            on_progress=on_progress or _quiet,
            feature_kwargs={"relative": True} if scope == "site" else None,
        )
        digest = artifact_digest(directory)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    rows = _register_versions(
        session,
        course,
        bundle,
        version,
        digest,
        data_hash,
        offering_names,
        # A plan's bounds are raw levels of this course's past students: none for a site-wide
        # model, whose features are places in other cohorts.
        bounds=effort_bounds(training.X) if scope == "course" else {},
        scope=scope,
    )
    return rows[0], rows[1], bundle, False


def _register_versions(
    session: Session,
    course: Course,
    bundle: ModelBundle,
    version: str,
    digest: str,
    data_hash: str,
    offering_names: list[str],
    *,
    bounds: dict[str, float] | None = None,
    scope: Scope = "course",
) -> list[ModelVersion]:
    """The new regression and classification rows, active, the course's previous ones not:
    each keeps its metrics, the gate's verdict and what it was trained on, and the level the
    most active tenth of its training students had reached on each lever (`bounds`, the
    learner's plan: `ml.plan`)."""
    regressor, classifier = bundle.regressor, bundle.classifier
    report: dict[str, Any] = bundle.metadata.get("metrics", {})
    gate = report.get("gate", {})
    session.execute(
        update(ModelVersion)
        .where(ModelVersion.course_id == course.id, ModelVersion.active)
        .values(active=False)
        .execution_options(synchronize_session=False)
    )
    metadata = _jsonable(
        {
            "training_window": bundle.metadata.get("training_window", {}),
            "offerings": offering_names,
            "pass_mark": bundle.metadata.get("pass_mark"),
            "libraries": bundle.metadata.get("libraries", {}),
            "trainer": bundle.metadata.get("trainer"),
            "gate": gate,
            "effort_bounds": bounds or {},
            # "site": trained on the site's other courses (#17), said on every page.
            "scope": scope,
            "report": {
                k: v for k, v in report.items() if k not in ("regression", "classification")
            },
        }
    )
    rows = []
    for task, estimator in (("regression", regressor.name), ("classification", classifier.name)):
        passed = bool(gate.get(task, False))
        row = ModelVersion(
            course_id=course.id,
            version=f"{version}-{task[:3]}",
            task=task,
            estimator=estimator,
            artifact_path=version,
            artifact_sha256=digest,
            features=list(regressor.features),
            metrics=_jsonable(report.get(task, {})),
            metadata_json=metadata,
            data_hash=data_hash,
            gate_passed=passed,
            gate_reason=None
            if passed
            else _gate_reason(task, report, scale=bundle.metadata.get("scale")),
            trained_at=utcnow(),
            active=True,
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def _quiet(step: str, fraction: float) -> None:
    """No progress report (the scheduler and the web need none)."""


def _signed(value: float, digits: int) -> str:
    """A number as a teacher reads it: a true minus sign, a fixed number of decimals."""
    return f"{value:.{digits}f}".replace("-", "\u2212")


def _gate_reason(task: str, report: Mapping[str, Any], *, scale: float | None = None) -> str:
    """Why a version is withheld, in plain words with the gate's own figures: the gain over
    the trivial baseline and its 95 % bootstrap CI (`ml.evaluation.gain_gate`), in units a
    teacher can weigh: points of average error on the course's grade scale for grades, the
    Brier score (the squared error of a pass chance, 0 to 1) for pass chances."""
    gate = (report.get(task) or {}).get("gate") or {}
    if task == "regression":
        what, baseline = "grade predictions", "predicting the mean grade"
        unit = "points of average error" + (f" out of {scale:g}" if scale else "")
        digits = 2
    else:
        what, baseline = "pass chances", "giving every student the usual pass rate"
        unit = "in Brier score (the squared error of a pass chance, 0 to 1)"
        digits = 3
    if not all(isinstance(gate.get(k), int | float) for k in ("gain", "ci_low", "ci_high")):
        return f"{what} withheld: not shown to beat {baseline} (95 % CI of the gain)"
    return (
        f"{what} withheld: no better than {baseline} (gain {_signed(gate['gain'], digits)} "
        f"{unit}, 95 % CI {_signed(gate['ci_low'], digits)} to "
        f"{_signed(gate['ci_high'], digits)})"
    )


# --------------------------------------------------------------------------- scoring


def score_course(
    session: Session,
    course: Course,
    *,
    settings: MLSettings,
    model_root: Path,
    now: datetime | None = None,
    on_progress: Progress | None = None,
) -> ScoringOutcome:
    """Features, model and predictions for one course as of `now` (see the module docstring).

    Without `now` (the scheduler, "Sync now", `arche-predict sync`), the scoring is as of the
    course's newest logged event, not the clock: a re-scoring with no new data then computes
    the same features at the same point of the term, reuses the same model and stores the same
    predictions, instead of drifting with the hour it ran at.

    The as-of date is that moment, or the term's end when the moment is after it. After the end
    no activity belongs to the term, yet features such as days since last activity kept growing
    and a finished course read as a deserted one (mean P(pass) 0.28 at 90 days after the end,
    0.000 a year later): any scoring after the end gets the predictions of the end.

    A course without an end date (a CSV-only course) lasts as long as its past offerings
    usually did (`course_term`); before, its term was the span of its events so far, and every
    mid-term scoring trained and predicted at the end-of-term checkpoint.
    """
    requested = now or _data_as_of(session, course)
    past = past_offerings(session, course.id)
    # A course with both dates needs nothing from its past offerings to know its term, so the
    # training set kept from its last scoring can be looked up before they are read (#19).
    dated = (
        course.start_at is not None
        and course.end_at is not None
        and pd.Timestamp(course.end_at) > pd.Timestamp(course.start_at)
    )
    history: list[Offering] = []
    names: list[str] = []
    if not dated:
        history, names = _history(session, past)
    # Without an end date, the term lasts as long as the past offerings usually did.
    length = usual_term_length([o.course_end - o.course_start for o in history])
    current = load_offering(session, course, until=requested, with_grades=False, term_length=length)
    term = course_term(course, current.events, term_length=length)
    # After the end, the end: see the docstring.
    ended = bool(pd.Timestamp(requested) > current.course_end)
    now = current.course_end.to_pydatetime() if ended else requested
    as_of = pd.Timestamp(now)
    progress = course_progress(current.course_start, current.course_end, as_of)
    mark = pass_mark_of(course, settings)
    calendar: dict[str, Any] = {
        "pass_mark": mark.value,
        "term_end": current.course_end.to_pydatetime(),
        "end_inferred": bool(term is not None and term.end_inferred),
        "term_ended": ended,
    }
    roster = student_roster(session, course)
    if roster.empty:
        return ScoringOutcome(
            course.id, "no_students", "the course has no students yet", now, progress, **calendar
        )
    features = compute_features(
        current.events, current.roster, as_of, current.course_start, current.course_end
    )
    key = kept = None
    if dated and past:
        key = training_cache.fingerprint(
            session, course, past, checkpoint=progress, scale=settings.grade_max,
            pass_mark=mark.value, min_past_offerings=settings.min_past_offerings,
        )  # fmt: skip
        kept = training_cache.load(model_root, course.id, key)
        reuse = (
            _reusable(session, course, model_root, kept.data_hash, "course", any_trainer=ended)
            if kept is not None
            else None
        )
        if reuse is not None and kept is not None:
            reg_row, clf_row, bundle = reuse
            stored = _store_predictions(
                session, course, roster, features, now, reg_row, clf_row, bundle, kept.X, settings
            )
            return _scored(
                course.id, now, progress, reg_row, clf_row, stored, True, "course", calendar
            )
        history, names = _history(session, past)
    scope: Scope = "course"
    model_features = features
    if len(history) < max(2, settings.min_past_offerings):
        # No usable history of its own: a site-wide model, if the site has enough courses.
        site = site_history(session, course, settings)
        if site is not None:
            scope, history, names = "site", site.offerings, site.names
            model_features = relative_to_cohort(features)

    if len(history) < max(2, settings.min_past_offerings):
        message = (
            "no past offering with final grades: engagement only"
            if not history
            else f"{len(history)} past offering with grades; at least "
            f"{max(2, settings.min_past_offerings)} are needed to validate a model"
        )
        stored = _store_predictions(session, course, roster, features, now, None, None, None, None)
        return ScoringOutcome(
            course.id, "no_history", message, now, progress, predictions=stored, **calendar
        )

    training = build_training_set(
        history,
        checkpoints=(progress,),
        scale=settings.grade_max,
        pass_mark=mark.value,
        feature_kwargs={"relative": True} if scope == "site" else None,
    )
    try:
        reg_row, clf_row, bundle, reused = train_model(
            session,
            course,
            training,
            settings=settings,
            model_root=model_root,
            checkpoint=progress,
            offerings=history,
            offering_names=names,
            on_progress=on_progress,
            scope=scope,
            term_ended=ended,
        )
    except SingleClassError as exc:
        # A state of the data, not a failure of the night: every past student on one side of
        # the pass mark. The scheduler and "Sync now" must go on: engagement only, said why.
        stored = _store_predictions(session, course, roster, features, now, None, None, None, None)
        message = f"{exc}: engagement only"
        return ScoringOutcome(
            course.id, "one_class", message, now, progress, predictions=stored, **calendar
        )
    if key is not None and scope == "course":
        training_cache.save(
            model_root,
            course.id,
            key,
            training_cache.Kept(X=training.X, data_hash=training.data_hash(), names=names),
        )
    stored = _store_predictions(
        session,
        course,
        roster,
        features,
        now,
        reg_row,
        clf_row,
        bundle,
        training.X,
        settings,
        model_features=model_features,
        explain=scope == "course",
    )
    return _scored(course.id, now, progress, reg_row, clf_row, stored, reused, scope, calendar)


def _scored(
    course_id: int,
    now: datetime,
    progress: float,
    reg_row: ModelVersion,
    clf_row: ModelVersion,
    stored: int,
    reused: bool,
    scope: Scope,
    calendar: dict[str, Any],
) -> ScoringOutcome:
    gated = not (reg_row.gate_passed or clf_row.gate_passed)
    reasons = [r.gate_reason for r in (reg_row, clf_row) if r.gate_reason]
    return ScoringOutcome(
        course_id,
        "gated" if gated else "scored",
        "; ".join(reasons) if reasons else "predictions stored",
        now,
        progress,
        regression_model_id=reg_row.id,
        classification_model_id=clf_row.id,
        predictions=stored,
        reused_model=reused,
        scope=scope,
        **calendar,
    )


def _history(session: Session, past: list[Course]) -> tuple[list[Offering], list[str]]:
    """The past offerings that can train (graded students with activity), with their names."""
    history: list[Offering] = []
    names: list[str] = []
    for course in past:
        try:
            offering = load_offering(session, course)
        except CourseDataError:
            continue
        if _usable(offering):
            history.append(offering)
            names.append(course.shortname or str(course.id))
    return history, names


def _reusable(
    session: Session,
    course: Course,
    model_root: Path,
    data_hash: str,
    scope: Scope | None = None,
    *,
    any_trainer: bool = False,
) -> tuple[ModelVersion, ModelVersion, ModelBundle] | None:
    """The course's active versions, loaded, when they were trained on the data of `data_hash`
    with no erased person's data in it (and, given `scope`, are of that scope); else None.

    They must also come from today's training (`ml.registry.TRAINER_REVISION`), so that an
    upgrade that trains better models retrains a running course once, unless `any_trainer`:
    a course whose term is over keeps the version whose end-of-term estimates its teachers
    saw and its live validation scores, rather than have them rewritten by a new training."""
    reg_row, clf_row = _active_versions(session, course.id)
    meta = (reg_row.metadata_json or {}) if reg_row is not None else {}
    if (
        reg_row is None
        or clf_row is None
        or reg_row.data_hash != data_hash
        or reg_row.erased_data_at is not None
        or (not any_trainer and meta.get("trainer") != TRAINER_REVISION)
        or (scope is not None and meta.get("scope", "course") != scope)
    ):
        return None
    return reg_row, clf_row, load_model(model_root, reg_row)


def _data_as_of(session: Session, course: Course) -> datetime:
    """The newest event the course's log holds up to now (now when it holds none)."""
    clock = utcnow()
    newest = session.scalar(
        select(func.max(LogEvent.timecreated)).where(
            LogEvent.site_id == course.site_id,
            LogEvent.courseid == course.moodle_course_id,
            LogEvent.timecreated <= int(clock.timestamp()),
        )
    )
    return clock if newest is None else datetime.fromtimestamp(int(newest), UTC)


def _store_predictions(
    session: Session,
    course: Course,
    roster: pd.DataFrame,
    features: pd.DataFrame,
    now: datetime,
    reg_row: ModelVersion | None,
    clf_row: ModelVersion | None,
    bundle: ModelBundle | None,
    background: pd.DataFrame | None,
    settings: MLSettings | None = None,
    *,
    model_features: pd.DataFrame | None = None,
    explain: bool = True,
) -> int:
    """One Prediction row per student: features always, values only from gated-in models.

    `model_features` is what the model reads when it is not the stored features (a site-wide
    model reads each student's place in the cohort); `explain` False stores no factors (a
    site-wide model's would speak of places in other courses' cohorts, not of this course)."""
    person_of = dict(
        zip(roster["userid"].astype(int), roster["person_id"].astype(int), strict=True)
    )
    rows_x = features.loc[roster["userid"].to_numpy()]
    rows_m = (model_features if model_features is not None else features).loc[
        roster["userid"].to_numpy()
    ]
    grade = low = high = proba = p_low = p_high = p_std = label = None
    grade_why: dict[int, list[dict[str, Any]]] = {}
    pass_why: dict[int, list[dict[str, Any]]] = {}
    if (
        bundle is not None
        and reg_row is not None
        and clf_row is not None
        and background is not None
    ):
        matrix = rows_m[bundle.regressor.features].reset_index(drop=True)
        if reg_row.gate_passed:
            grade, low, high = bundle.regressor.predict_interval(matrix)
            if explain:
                grade_why = _factor_records(grade_factors(bundle.regressor, matrix, background))
        if clf_row.gate_passed:
            passes = settings.mc_dropout_passes if settings is not None else 50
            proba = bundle.classifier.predict_proba(matrix)
            unc = bundle.classifier.uncertainty(matrix, n_passes=passes)
            p_low, p_high, p_std = unc.lower, unc.upper, unc.std
            label = proba >= risk_threshold_of(course, settings or MLSettings())  # one "at risk"
            if explain:
                pass_why = _factor_records(pass_factors(bundle.classifier, matrix, background))
    # A scoring as of the same moment replaces the earlier one: one scoring per date, so a
    # re-scoring of unchanged data leaves the same rows, not a second copy beside them.
    session.execute(
        delete(Prediction).where(Prediction.course_id == course.id, Prediction.as_of == now)
    )
    # Core executemany of plain dicts (batched multi-row INSERTs), the features read once as
    # records: an ORM object and a Series per student cost seconds at 10,000 students.
    reg_id = reg_row.id if reg_row is not None else None
    clf_id = clf_row.id if clf_row is not None else None
    created = utcnow()
    records = rows_x.to_dict(orient="records")

    def at(values: Any, i: int) -> float | None:
        return None if values is None else float(values[i])

    rows = [
        {
            "course_id": course.id,
            "person_id": person_of[int(userid)],
            "regression_model_id": reg_id,
            "classification_model_id": clf_id,
            "as_of": now,
            "predicted_grade": at(grade, i),
            "grade_lower": at(low, i),
            "grade_upper": at(high, i),
            "pass_probability": at(proba, i),
            "probability_lower": at(p_low, i),
            "probability_upper": at(p_high, i),
            "uncertainty": at(p_std, i),
            "predicted_pass": None if label is None else bool(label[i]),
            "features": {str(k): _jsonable(v) for k, v in records[i].items()},
            "explanation": {"grade": grade_why.get(i, []), "pass": pass_why.get(i, [])}
            if (grade_why or pass_why)
            else None,
            "created_at": created,
        }
        for i, userid in enumerate(rows_x.index.to_numpy())
    ]
    if rows:
        session.execute(insert(Prediction), rows)
    return len(rows)

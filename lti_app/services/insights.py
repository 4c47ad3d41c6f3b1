"""What the dashboards and the JSON API show: course summary, students, one student, what-if.

Read-only views over the stored predictions, plus the what-if computation, which loads the
course's active model version (from our own store, digest-checked, cached in memory) and scores
a modified feature vector. Values of a model whose quality gate failed are never returned: the
reason is, instead.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Integer, bindparam, func, select
from sqlalchemy.orm import Session, load_only

from lti_app.models import Course, Enrolment, ModelVersion, Person, Prediction, SyncRun
from lti_app.services.course_data import STUDENT_ROLES
from lti_app.services.course_settings import trained_pass_mark
from lti_app.services.scoring import load_model
from lti_app.services.shown_scoring import of_active_models
from ml.explain import what_if_row
from ml.feature_info import CONTROLLABLE, ENGAGEMENT, FEATURES
from ml.registry import ModelBundle

# A what-if that changes a raw count moves its cohort z-score too, as `compute_features` would:
# each z-scored feature (declared in `ml.feature_info`) with its z-score's column.
_Z_OF = {name: info.z_name for name, info in FEATURES.items() if info.z_scored}


class InsightError(Exception):
    """A request the data cannot answer; `status` is the HTTP status the API should use."""

    def __init__(self, message: str, status: int = 404, code: str = "not_found") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _float(value: Any) -> float | None:
    if value is None:
        return None
    out = float(value)
    return out if np.isfinite(out) else None


def latest_as_of(session: Session, course_id: int) -> datetime | None:
    """The date of the active models' latest scoring, the one every surface shows."""
    value: datetime | None = session.scalar(
        select(func.max(Prediction.as_of)).where(*of_active_models(course_id))
    )
    return value


def active_models(session: Session, course_id: int) -> dict[str, ModelVersion]:
    """The course's active model versions, by task ("regression", "classification")."""
    rows = session.scalars(
        select(ModelVersion).where(ModelVersion.course_id == course_id, ModelVersion.active)
    ).all()
    return {r.task: r for r in rows}


def model_quality(version: ModelVersion | None) -> dict[str, Any] | None:
    """The validated quality of a model version, for the model card."""
    if version is None:
        return None
    return {
        "id": version.id,
        "version": version.version,
        "task": version.task,
        "estimator": version.estimator,
        "trained_at": _iso(version.trained_at),
        "gate_passed": version.gate_passed,
        "gate_reason": version.gate_reason,
        "metrics": version.metrics,
        "training_window": version.metadata_json.get("training_window", {}),
    }


def is_at_risk(probability: float | None, threshold: float) -> bool | None:
    """The one definition of "at risk", for every surface: a shown pass chance under the
    course's threshold (`course_settings.risk_threshold_of`); None without a shown chance."""
    return None if probability is None else probability < threshold


def _prediction_json(p: Prediction, reg_ok: bool, clf_ok: bool, threshold: float) -> dict[str, Any]:
    grade = _float(p.predicted_grade) if reg_ok else None
    proba = _float(p.pass_probability) if clf_ok else None
    at_risk = is_at_risk(proba, threshold)
    lower, upper = _float(p.probability_lower), _float(p.probability_upper)
    return {
        "as_of": _iso(p.as_of),
        "predicted_grade": grade,
        "grade_interval": [_float(p.grade_lower), _float(p.grade_upper)]
        if grade is not None
        else None,
        "pass_probability": proba,
        "probability_interval": [lower, upper] if proba is not None else None,
        "uncertainty": _float(p.uncertainty) if proba is not None else None,
        "at_risk": at_risk,
        # The success predictor's field, kept: the same rule, read the other way.
        "predicted_pass": None if at_risk is None else not at_risk,
        "factors": (p.explanation or {}) if (grade is not None or proba is not None) else {},
        "engagement": {key: _float(p.features.get(key)) for key in ENGAGEMENT},
    }


def latest_predictions(session: Session, course_id: int) -> list[tuple[Person, Prediction]]:
    """The latest scoring's predictions with their people, by name: read once by a page that
    shows both the summary and the table (pass them as `rows` to both)."""
    as_of = latest_as_of(session, course_id)
    if as_of is None:
        return []
    rows = session.execute(
        select(Person, Prediction)
        .join(Prediction, Prediction.person_id == Person.id)
        .where(*of_active_models(course_id), Prediction.as_of == as_of)
        .order_by(Person.fullname)
    ).all()
    return [(person, prediction) for person, prediction in rows]


def course_summary(
    session: Session,
    course: Course,
    *,
    threshold: float,
    rows: list[tuple[Person, Prediction]] | None = None,
    models: dict[str, ModelVersion] | None = None,
) -> dict[str, Any]:
    models = active_models(session, course.id) if models is None else models
    reg, clf = models.get("regression"), models.get("classification")
    rows = latest_predictions(session, course.id) if rows is None else rows
    reg_ok, clf_ok = bool(reg and reg.gate_passed), bool(clf and clf.gate_passed)
    at_risk = sum(
        1 for _, p in rows if clf_ok and is_at_risk(_float(p.pass_probability), threshold)
    )
    last_run = session.scalar(
        select(SyncRun)
        .where(SyncRun.course_id == course.id)
        .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
        .limit(1)
    )
    if not rows:
        state = "no_data"
    elif reg is None and clf is None:
        state = "engagement_only"
    elif not (reg_ok or clf_ok):
        state = "gated"
    else:
        state = "predictions"
    return {
        "course": {
            "id": course.id,
            "shortname": course.shortname,
            "fullname": course.fullname,
            "start": _iso(course.start_at),
            "end": _iso(course.end_at),
            "learner_view_enabled": course.learner_view_enabled,
        },
        "state": state,
        "as_of": _iso(rows[0][1].as_of) if rows else None,
        "students": len(rows),
        "at_risk": at_risk if clf_ok else None,
        "risk_threshold": threshold,
        "sync": None
        if last_run is None
        else {
            "status": last_run.status,
            "started_at": _iso(last_run.started_at),
            "finished_at": _iso(last_run.finished_at),
            "pages_done": last_run.pages_done,
            "pages_total": last_run.pages_total,
            "events_added": last_run.events_added,
            "error_code": last_run.error_code,
            "error_message": last_run.error_message,
        },
        "models": {"regression": model_quality(reg), "classification": model_quality(clf)},
        # "site": the estimates come from a site-wide model (#17), the course having no
        # usable past offering; every page says so.
        "scope": model_scope(models),
        "site_courses": site_courses(models),
    }


def model_scope(models: Mapping[str, ModelVersion]) -> str:
    """ "site" when the active models were trained on the site's other courses, else "course"."""
    for version in models.values():
        if version is not None and (version.metadata_json or {}).get("scope") == "site":
            return "site"
    return "course"


def site_courses(models: Mapping[str, ModelVersion]) -> int | None:
    """How many other courses a site-wide model learned from (None for a course's own)."""
    if model_scope(models) != "site":
        return None
    window = next(iter(v for v in models.values() if v is not None)).metadata_json.get(
        "training_window", {}
    )
    return len({o.get("id") for o in window.get("offerings", [])}) or None


def students_table(
    session: Session,
    course: Course,
    *,
    threshold: float,
    rows: list[tuple[Person, Prediction]] | None = None,
    models: dict[str, ModelVersion] | None = None,
) -> list[dict[str, Any]]:
    models = active_models(session, course.id) if models is None else models
    reg_ok = bool(models.get("regression") and models["regression"].gate_passed)
    clf_ok = bool(models.get("classification") and models["classification"].gate_passed)
    return [
        {
            "person_id": person.id,
            "moodle_user_id": person.moodle_user_id,
            "fullname": person.fullname,
            **_prediction_json(prediction, reg_ok, clf_ok, threshold),
        }
        for person, prediction in (latest_predictions(session, course.id) if rows is None else rows)
    ]


def _require_student(session: Session, course: Course, person_id: int) -> Person:
    person = session.get(Person, person_id)
    enrolled = session.scalar(
        select(Enrolment.id).where(
            Enrolment.course_id == course.id,
            Enrolment.person_id == person_id,
            Enrolment.role.in_(STUDENT_ROLES),
        )
    )
    if person is None or enrolled is None:
        raise InsightError("no such student in this course")
    return person


def student_detail(
    session: Session, course: Course, person_id: int, *, threshold: float
) -> dict[str, Any]:
    person = _require_student(session, course, person_id)
    models = active_models(session, course.id)
    scope = model_scope(models)
    reg_ok = bool(models.get("regression") and models["regression"].gate_passed)
    clf_ok = bool(models.get("classification") and models["classification"].gate_passed)
    history = session.scalars(
        select(Prediction)
        .where(Prediction.course_id == course.id, Prediction.person_id == person_id)
        .order_by(Prediction.as_of)
    ).all()
    # The active models' latest scoring, as on the course page (the history keeps every one).
    latest = session.scalar(
        select(Prediction)
        .where(*of_active_models(course.id), Prediction.person_id == person_id)
        .order_by(Prediction.as_of.desc())
        .limit(1)
    )
    return {
        "person_id": person.id,
        "fullname": person.fullname,
        "latest": _prediction_json(latest, reg_ok, clf_ok, threshold)
        if latest is not None
        else None,
        "features": latest.features if latest is not None else {},
        "scope": scope,
        # The levers a what-if may move (`ml.feature_info.CONTROLLABLE`), in the form's order;
        # none with a site-wide model, which reads places in the cohort, not levels a slider
        # could set.
        "actionable": []
        if scope == "site"
        else [f for f in CONTROLLABLE if latest is not None and f in latest.features],
        "history": [
            {
                "as_of": _iso(p.as_of),
                "predicted_grade": _float(p.predicted_grade) if reg_ok else None,
                "pass_probability": _float(p.pass_probability) if clf_ok else None,
            }
            for p in history
        ],
    }


class ModelCache:
    """Loaded model versions, by (artifact path, digest): loading takes far longer than scoring.

    Also the cohort's feature means and standard deviations per scoring (course, `as_of`), which
    a what-if needs to move a cohort z-score with its raw count: reading and decoding every
    student's stored features on each call cost more than the prediction itself (about 20 ms per
    changed feature at 500 students). A scoring writes all its predictions with one `as_of` in
    one transaction and never changes them, so the key cannot go stale.

    And each student's stored feature row of a scoring, as the float vector the models read
    (key: course, student, `as_of`, feature list), for the same reason: a what-if is usually
    one of several on the same student, and decoding the stored JSON into that vector is a
    database round trip plus a dictionary walk the second call does not need.
    """

    def __init__(self, size: int = 8, rows: int = 4096) -> None:
        self.size = size
        self.rows = rows
        self._items: OrderedDict[tuple[str, str], ModelBundle] = OrderedDict()
        self._cohorts: OrderedDict[tuple[int, datetime], dict[str, tuple[float, float]]] = (
            OrderedDict()
        )
        self._rows: OrderedDict[tuple[int, int, datetime, tuple[str, ...]], np.ndarray] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, model_root: Path, version: ModelVersion) -> ModelBundle:
        key = (version.artifact_path, version.artifact_sha256)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        bundle = load_model(model_root, version)
        with self._lock:
            self._items[key] = bundle
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return bundle

    def cohort(
        self, session: Session, course_id: int, as_of: datetime
    ) -> dict[str, tuple[float, float]]:
        """(mean, population std) of each z-scored feature over the scoring's students."""
        key = (course_id, as_of)
        with self._lock:
            if key in self._cohorts:
                self._cohorts.move_to_end(key)
                return self._cohorts[key]
        stats = _cohort_stats(session, course_id, as_of)
        with self._lock:
            self._cohorts[key] = stats
            while len(self._cohorts) > 4 * self.size:
                self._cohorts.popitem(last=False)
        return stats

    def feature_row(
        self,
        session: Session,
        course_id: int,
        person_id: int,
        as_of: datetime,
        features: tuple[str, ...],
    ) -> np.ndarray | None:
        """The student's stored features of that scoring in `features` order (NaN where
        unknown), read-only; None when the scoring has no row for the student."""
        key = (course_id, person_id, as_of, features)
        with self._lock:
            if key in self._rows:
                self._rows.move_to_end(key)
                return self._rows[key]
        stored = session.scalar(
            select(Prediction.features)
            .where(
                Prediction.course_id == course_id,
                Prediction.person_id == person_id,
                Prediction.as_of == as_of,
            )
            .limit(1)
        )
        if stored is None:
            return None
        row = np.array(
            [np.nan if stored.get(f) is None else float(stored[f]) for f in features],
            dtype=np.float64,
        )
        row.flags.writeable = False
        with self._lock:
            self._rows[key] = row
            while len(self._rows) > self.rows:
                self._rows.popitem(last=False)
        return row


@dataclass(frozen=True)
class WhatIfRequest:
    changes: Mapping[str, float]


def parse_changes(payload: Any, allowed: tuple[str, ...] = CONTROLLABLE) -> dict[str, float]:
    """Validate a what-if body: {"changes": {feature: number}} with actionable features only.

    A body of the wrong shape, an unknown feature or a value that is not a number is a 400
    (`bad_request`). A number outside the feature's valid range (`ml.feature_info`), NaN and
    the infinities included (Python's json reads the `NaN` and `Infinity` literals), is a 422
    (`out_of_range`) naming the feature and its range: the models would extrapolate such a
    value to overflow, and no course can produce it.
    """
    if not isinstance(payload, Mapping) or not isinstance(payload.get("changes"), Mapping):
        raise InsightError(
            'the body must be JSON like {"changes": {"active_days": 12}}', 400, "bad_request"
        )
    out: dict[str, float] = {}
    for key, value in payload["changes"].items():
        if key not in allowed:
            raise InsightError(
                f"'{key}' cannot be changed in a what-if; allowed: {', '.join(allowed)}",
                400,
                "bad_request",
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InsightError(f"'{key}' must be a finite number", 400, "bad_request")
        feature = FEATURES[key]
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float (10**400): out of any range
            number = math.inf
        if not feature.contains(number):
            raise InsightError(
                f"'{key}' must be a number from {feature.range_text()}; got {value!r}",
                422,
                "out_of_range",
            )
        out[str(key)] = number
    return out


def _what_if_state() -> Any:
    """Built once (with bound parameters): composing the statement cost about as much as
    running it (a millisecond of SQLAlchemy expression building per call)."""
    course_id = bindparam("course_id", type_=Integer)
    person_id = bindparam("person_id", type_=Integer)
    is_student = (
        select(Enrolment.id)
        .where(
            Enrolment.course_id == course_id,
            Enrolment.person_id == person_id,
            Enrolment.role.in_(STUDENT_ROLES),
        )
        .exists()
    )
    latest_as_of_of_student = (
        select(func.max(Prediction.as_of))
        .where(*of_active_models(course_id), Prediction.person_id == person_id)
        .scalar_subquery()
    )
    return (
        select(ModelVersion, is_student, latest_as_of_of_student)
        .options(
            load_only(
                ModelVersion.task,
                ModelVersion.version,
                ModelVersion.artifact_path,
                ModelVersion.artifact_sha256,
                ModelVersion.gate_passed,
                ModelVersion.gate_reason,
            )
        )
        .where(ModelVersion.course_id == course_id, ModelVersion.active)
    )


_WHAT_IF_STATE = _what_if_state()


def what_if(
    session: Session,
    course: Course,
    person_id: int,
    changes: Mapping[str, float],
    *,
    model_root: Path,
    cache: ModelCache,
    threshold: float,
    mc_passes: int = 100,
) -> dict[str, Any]:
    """Score the student's latest features with `changes`: grade and pass probability, each
    with its uncertainty, in the shape of the success predictor's `/predict`.

    One query answers "is this a student of the course, which models are active, and the date
    of the student's latest prediction" (only the model columns the cache needs are read); the
    loaded models, the cohort statistics and the student's feature row come from `cache`, so a
    repeated what-if costs that query alone. The checks keep their order: not a student (404),
    no model (409), gated (409), no prediction yet (409).
    """
    found = session.execute(_WHAT_IF_STATE, {"course_id": course.id, "person_id": person_id}).all()
    if not found:  # no active model: the student check still comes first
        _require_student(session, course, person_id)
        raise InsightError("no model for this course yet: engagement only", 409, "no_model")
    if not found[0][1]:
        raise InsightError("no such student in this course")
    models = {version.task: version for version, _, _ in found}
    as_of: datetime | None = found[0][2]
    reg, clf = models.get("regression"), models.get("classification")
    if reg is None or clf is None:
        raise InsightError("no model for this course yet: engagement only", 409, "no_model")
    if not (reg.gate_passed and clf.gate_passed):
        raise InsightError(
            reg.gate_reason or clf.gate_reason or "the model is withheld", 409, "gated"
        )
    if as_of is None:
        raise InsightError("no prediction for this student yet", 409, "no_prediction")
    bundle = cache.get(model_root, reg)
    if bundle.metadata.get("training_window", {}).get("features") == "relative":
        raise InsightError(
            "the estimates come from a site-wide model, which reads each student's place in "
            "the cohort: a what-if needs the course's own model",
            409,
            "site_model",
        )
    features = tuple(bundle.regressor.features)
    row = cache.feature_row(session, course.id, person_id, as_of, features)
    if row is None:  # the latest date is the student's own: only a concurrent delete gets here
        raise InsightError("no prediction for this student yet", 409, "no_prediction")
    full = dict(changes)
    if any(base in changes and z in features for base, z in _Z_OF.items()):
        cohort = cache.cohort(session, course.id, as_of)
        for base, z in _Z_OF.items():
            if base in changes and z in features and base in cohort:
                mean, std = cohort[base]
                full[z] = (changes[base] - mean) / std if std > 0 else 0.0
    result = what_if_row(
        row,
        features,
        full,
        regressor=bundle.regressor,
        classifier=bundle.classifier,
        n_passes=mc_passes,
    )
    then = result["what_if"]
    p = float(then["p_pass"])
    return {
        "probability": p,
        "prediction": int(not is_at_risk(p, threshold)),
        "confidence": float(max(p, 1 - p)),
        "uncertainty": float(then["p_pass_std"]),
        "ci_95": [float(then["p_pass_low"]), float(then["p_pass_high"])],
        "predicted_grade": float(then["grade"]),
        "grade_interval": [float(then["grade_low"]), float(then["grade_high"])],
        "interval_level": float(then["interval_level"]),
        "threshold": float(threshold),
        "at_risk": bool(is_at_risk(p, threshold)),
        # The mark the chance is a chance of reaching (the models' own): the page keeps the
        # shown grade on the same side of it as the chance of 50 %.
        "pass_mark": trained_pass_mark(models),
        "changes": dict(changes),
        "current": {
            "probability": float(result["current"]["p_pass"]),
            "predicted_grade": float(result["current"]["grade"]),
        },
        "delta_grade": float(result["delta_grade"]),
        "delta_probability": float(result["delta_p_pass"]),
    }


def _cohort_stats(
    session: Session, course_id: int, as_of: datetime
) -> dict[str, tuple[float, float]]:
    """Per z-scored feature with at least two known values: (mean, population std)."""
    values: dict[str, list[float]] = {base: [] for base in _Z_OF}
    for feats in session.scalars(
        select(Prediction.features).where(
            Prediction.course_id == course_id, Prediction.as_of == as_of
        )
    ):
        for base, known in values.items():
            if feats.get(base) is not None:
                known.append(float(feats[base]))
    out: dict[str, tuple[float, float]] = {}
    for base, known in values.items():
        if len(known) >= 2:
            arr = np.asarray(known)
            out[base] = (float(arr.mean()), float(arr.std(ddof=0)))
    return out

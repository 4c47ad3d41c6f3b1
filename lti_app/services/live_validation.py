"""Live validation (issue #17, item 3): once a term has ended and its final grades are in, the
estimates that were actually shown at each week are scored against the outcomes.

`refresh` runs after each scoring of a synced course (`tasks.score_synced_course`), so the
night the final grades arrive the model card can say "last term, of the students flagged at
week 4, 78 % failed; of those not flagged, 9 %", and the admin page lists the courses whose
live results fell outside what their validation promised. The figures come from two stored
things only, the `prediction` rows (those with a pass chance: the ones shown, gated in) and
the course totals, so anyone can recompute them (tests/lti_app/test_live_validation.py does).

Services never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lti_app.config import MLSettings, PrivacySettings
from lti_app.db import utcnow
from lti_app.models import Course, LiveValidation, ModelVersion, MoodleSite, Person, Prediction
from lti_app.services import fairness
from lti_app.services.course_data import course_totals
from lti_app.services.course_settings import pass_mark_of
from lti_app.services.courses import shown_term
from lti_app.services.json_rows import json_rows
from ml.dataset import final_grades
from ml.live_validation import SHOWN_COLUMNS, Validated, score_weeks

WEEK = pd.Timedelta(days=7)


def _utc(value: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def shown_estimates(session: Session, course: Course, start: datetime) -> pd.DataFrame:
    """Every pass chance shown for the course (`SHOWN_COLUMNS`, plus the regression model),
    each in the week of the term its scoring was made (week 1 starts at `start`)."""
    rows = session.execute(
        select(
            Prediction.person_id,
            Prediction.as_of,
            Prediction.pass_probability,
            Prediction.predicted_pass,
            Prediction.predicted_grade,
            Prediction.grade_lower,
            Prediction.grade_upper,
            Prediction.classification_model_id,
            Prediction.regression_model_id,
        ).where(Prediction.course_id == course.id, Prediction.pass_probability.is_not(None))
    ).all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "person_id",
            "as_of",
            "p_pass",
            "passes",
            "grade",
            "grade_low",
            "grade_high",
            "model_id",
            "reg_id",
        ],
    )
    if frame.empty:
        return pd.DataFrame(columns=[*SHOWN_COLUMNS, "reg_id"])
    as_of = pd.to_datetime(frame["as_of"], utc=True)
    frame["as_of"] = as_of
    frame["week"] = ((as_of - _utc(start)) // WEEK).astype(int) + 1
    # The stored flag is the one shown: at risk when the chance was under the threshold.
    frame["flagged"] = ~frame.pop("passes").astype(bool)
    for column in ("grade", "grade_low", "grade_high", "p_pass"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame[[*SHOWN_COLUMNS, "reg_id"]]


def final_outcomes(session: Session, course: Course, scale: float) -> pd.Series:
    """Each student's final grade on [0, `scale`], by person id (the course totals, each on its
    own maximum as for training); empty when no total is in yet."""
    totals = course_totals(session, course)
    if totals.values.dropna().empty:
        return pd.Series(dtype=float)
    people = dict(
        session.execute(
            select(Person.moodle_user_id, Person.id).where(
                Person.site_id == course.site_id,
                Person.moodle_user_id.in_([int(u) for u in totals.values.index]),
            )
        ).all()
    )
    maxima = totals.maxima.reindex(totals.values.index).to_numpy(dtype=np.float64)
    maxima = np.where(np.isnan(maxima), totals.grade_max, maxima)
    scaled = final_grades(totals.values.to_numpy(), maxima, totals.grade_min, scale)
    index = [people.get(int(u), -1) for u in totals.values.index]
    out = pd.Series(scaled, index=index, dtype=float)
    return out[out.index >= 0].dropna()


def _promises(session: Session, shown: pd.DataFrame) -> dict[int, Validated]:
    """What each classification model's card promised (its ranking quality's lower bound and
    Brier score's upper bound), with the nominal level of the grade ranges shown beside."""
    out: dict[int, Validated] = {}
    for clf_key, group in shown.groupby("model_id"):
        clf_id = int(str(clf_key))
        clf = session.get(ModelVersion, clf_id)
        reg_ids = group["reg_id"].dropna()
        reg = session.get(ModelVersion, int(reg_ids.iloc[0])) if not reg_ids.empty else None
        ci = (clf.metrics or {}).get("ci", {}) if clf is not None else {}
        level = (reg.metrics or {}).get("interval_level") if reg is not None else None
        out[clf_id] = Validated(
            auc_low=_float(ci.get("auc", {}).get("ci_low")),
            brier_high=_float(ci.get("brier", {}).get("ci_high")),
            interval_level=_float(level),
        )
    return out


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(number) else number


def _inputs(
    session: Session, course: Course, settings: MLSettings, now: datetime | None
) -> tuple[pd.DataFrame, pd.Series, float] | None:
    """The shown estimates, the final grades and the pass mark of a finished term, or None
    while the term runs, before the final grades, or when no estimate was shown."""
    term = shown_term(session, course)
    now = now or utcnow()
    if term is None or _utc(term.end) > _utc(now):
        return None
    outcomes = final_outcomes(session, course, settings.grade_max)
    if outcomes.empty:
        return None
    shown = shown_estimates(session, course, term.start)
    if shown.empty:
        return None
    return shown, outcomes, float(pass_mark_of(course, settings).value)


def compute(
    session: Session, course: Course, settings: MLSettings, now: datetime | None = None
) -> pd.DataFrame | None:
    """The weeks' scores (`ml.live_validation.score_weeks`), or None while the term runs, before
    the final grades, or when no estimate was shown."""
    inputs = _inputs(session, course, settings, now)
    if inputs is None:
        return None
    shown, outcomes, pass_mark = inputs
    weeks = score_weeks(shown, outcomes, pass_mark, _promises(session, shown))
    return None if weeks.empty else weeks


def refresh(
    session: Session,
    course: Course,
    settings: MLSettings,
    now: datetime | None = None,
    privacy: PrivacySettings | None = None,
) -> LiveValidation | None:
    """Recompute and keep the course's live validation, with the fairness audit of the same
    weeks when the site declares groups (#18, item 7). The row goes when there is nothing to
    validate any more, e.g. the end date moved later."""
    inputs = _inputs(session, course, settings, now)
    weeks = None
    if inputs is not None:
        shown, outcomes, pass_mark = inputs
        weeks = score_weeks(shown, outcomes, pass_mark, _promises(session, shown))
    if inputs is None or weeks is None or weeks.empty:
        session.execute(delete(LiveValidation).where(LiveValidation.course_id == course.id))
        return None
    row = session.get(LiveValidation, course.id) or LiveValidation(course_id=course.id)
    row.computed_at = utcnow()
    row.pass_mark = pass_mark
    row.n_students = int(weeks["n"].max())
    row.drift = bool((weeks["drift"] != "").any())
    row.weeks = json_rows(weeks)
    site = session.get_one(MoodleSite, course.site_id)
    row.fairness = fairness.audit(
        session, site, shown, outcomes, pass_mark, privacy or PrivacySettings()
    )
    session.add(row)
    session.flush()
    return row


def drifting(session: Session) -> list[tuple[Course, LiveValidation]]:
    """The courses whose live results fell outside their validation, for the admin page."""
    rows = session.execute(
        select(Course, LiveValidation)
        .join(LiveValidation, LiveValidation.course_id == Course.id)
        .where(LiveValidation.drift)
        .order_by(Course.id)
    ).all()
    return [(course, live) for course, live in rows]


__all__ = [
    "compute",
    "drifting",
    "final_outcomes",
    "refresh",
    "shown_estimates",
]

"""The effect of contacts for one course (#16 item 7): the stored contacts, shown chances and final
grades handed to `ml.contact_effect`, whose docstring says how the comparison is made.

What is read:

* **contacts**: a student counts as contacted from their first `Contact` whose status is `sent`
  (Moodle took the message) or `listed` (the teacher copied the address); a refused, failed or
  unknown send reached nobody for sure and does not count;
* **chances**: every stored scoring's pass chance that was shown: a non-null `pass_probability`
  (a withheld model's predictions are stored without one) made by a classification model whose
  quality gate passed. Older scorings count too: the models are retrained at each scoring, so
  the history is made of versions that are no longer active, each shown in its time. Each is
  placed at its `as_of` in weeks since the term's start (`courses.shown_term`);
* **final grades**, once the term is over and the course has course totals: each active
  student's total on the tool's scale (each user's own maximum, as in training), a missing
  total counting 0 as in training (the students who vanished), and pass at the course's pass
  mark (`course_settings.pass_mark_of`).

Like every service: takes a Session, never commits, never imports Flask.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final, Literal

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.db import utcnow
from lti_app.models import Contact, Course, ModelVersion, Prediction
from lti_app.services.course_data import course_totals, student_roster
from lti_app.services.course_settings import pass_mark_of
from lti_app.services.courses import shown_term
from ml.contact_effect import (
    CALIPER,
    HORIZON_WEEKS,
    MAX_GAP_WEEKS,
    N_BOOT,
    EffectEstimate,
    estimate_contact_effect,
)
from ml.dataset import final_grades

COUNTED_STATUSES: Final = ("sent", "listed")
WEEK: Final = pd.Timedelta(days=7)

Reason = Literal["no_term", "no_contacts", "no_shown_chances"]
FinalReason = Literal["term_running", "no_final_grades"]


@dataclass(frozen=True)
class ContactEffectSummary:
    """What the dashboard shows about the effect of contacts in one course.

    ``reason`` is set when nothing could be compared (no term, nobody contacted, no chance ever
    shown); then the three estimates are None. Otherwise ``chance_change`` is always there (its
    own ``reason`` says when there are too few students), and ``final_grade`` (points out of
    ``grade_scale``) and ``pass_rate`` once the term is over and grades exist, else
    ``final_reason`` says why not. Every estimate is an observed difference between matched
    groups (``kind``), not proof that the contacts caused it.
    """

    course_id: int
    reason: Reason | None
    n_contacted: int
    horizon_weeks: float
    chance_change: EffectEstimate | None = None
    final_grade: EffectEstimate | None = None
    pass_rate: EffectEstimate | None = None
    final_reason: FinalReason | None = None
    term_start: datetime | None = None
    term_end: datetime | None = None
    grade_scale: float = 20.0
    pass_mark: float = 10.0


def first_contacts(session: Session, course_id: int) -> dict[int, datetime]:
    """Each contacted student's (person id) first counted contact."""
    rows = session.execute(
        select(Contact.person_id, func.min(Contact.at))
        .where(Contact.course_id == course_id, Contact.status.in_(COUNTED_STATUSES))
        .group_by(Contact.person_id)
    ).all()
    return {int(person): at for person, at in rows}


def shown_chances(session: Session, course_id: int) -> pd.DataFrame:
    """Every shown pass chance of the course: ``person_id``, ``as_of``, ``chance``."""
    rows = session.execute(
        select(Prediction.person_id, Prediction.as_of, Prediction.pass_probability)
        .join(ModelVersion, ModelVersion.id == Prediction.classification_model_id)
        .where(
            Prediction.course_id == course_id,
            Prediction.pass_probability.is_not(None),
            ModelVersion.gate_passed,
        )
    ).all()
    return pd.DataFrame(
        {
            "person_id": np.array([r[0] for r in rows], dtype=np.int64),
            "as_of": pd.to_datetime([r[1] for r in rows], utc=True),
            "chance": np.array([r[2] for r in rows], dtype=np.float64),
        }
    )


def _weeks(moments: pd.Series | pd.DatetimeIndex, start: pd.Timestamp) -> np.ndarray:
    return np.asarray((pd.to_datetime(moments, utc=True) - start) / WEEK, dtype=np.float64)


def final_outcomes(session: Session, course: Course, settings: MLSettings) -> pd.DataFrame | None:
    """``student`` (person id), ``grade`` on the tool's scale and ``passed`` (0/1) of the
    course's active students, or None when the course has no course total yet."""
    totals = course_totals(session, course)
    if not totals.values.notna().any():
        return None
    roster = student_roster(session, course)
    users = roster["userid"].to_numpy()
    maxima = totals.maxima.reindex(users).to_numpy(dtype=np.float64)
    maxima = np.where(np.isnan(maxima), totals.grade_max, maxima)
    raw = totals.values.reindex(users).to_numpy(dtype=np.float64)
    grade = final_grades(raw, maxima, totals.grade_min, float(settings.grade_max))
    grade = np.where(np.isnan(grade), 0.0, grade)
    mark = pass_mark_of(course, settings).value
    return pd.DataFrame(
        {
            "student": roster["person_id"].to_numpy(),
            "grade": grade,
            "passed": (grade >= mark).astype(np.float64),
        }
    )


def contact_effect(
    session: Session,
    course: Course,
    *,
    settings: MLSettings | None = None,
    now: datetime | None = None,
    horizon_weeks: float = HORIZON_WEEKS,
    caliper: float = CALIPER,
    max_gap_weeks: float = MAX_GAP_WEEKS,
    n_boot: int = N_BOOT,
) -> ContactEffectSummary:
    """The effect of the course's contacts as of ``now`` (default: the clock; contacts and
    scorings after it are not read): see the module docstring for what is read. The bootstrap
    is seeded with ``settings.random_seed``, so the same data always gives the same interval."""
    ml = settings or MLSettings()
    moment = pd.Timestamp(now or utcnow())
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    contacts = {p: at for p, at in first_contacts(session, course.id).items()
                if pd.Timestamp(at) <= moment}  # fmt: skip
    summary = ContactEffectSummary(
        course_id=course.id,
        reason=None,
        n_contacted=len(contacts),
        horizon_weeks=horizon_weeks,
        grade_scale=float(ml.grade_max),
        pass_mark=pass_mark_of(course, ml).value,
    )
    term = shown_term(session, course)
    if term is None:
        return replace(summary, reason="no_term")
    summary = replace(
        summary, term_start=term.start.to_pydatetime(), term_end=term.end.to_pydatetime()
    )
    if not contacts:
        return replace(summary, reason="no_contacts")
    shown = shown_chances(session, course.id)
    shown = shown.loc[shown["as_of"] <= moment]
    if shown.empty:
        return replace(summary, reason="no_shown_chances")
    chances = pd.DataFrame(
        {
            "student": shown["person_id"].to_numpy(),
            "week": _weeks(shown["as_of"], term.start),
            "chance": shown["chance"].to_numpy(),
        }
    )
    people = list(contacts)
    contact_frame = pd.DataFrame(
        {"student": people, "week": _weeks(pd.Series([contacts[p] for p in people]), term.start)}
    )
    outcomes: pd.DataFrame | None = None
    final_reason: FinalReason | None = None
    if moment < term.end:
        final_reason = "term_running"
    else:
        outcomes = final_outcomes(session, course, ml)
        if outcomes is None:
            final_reason = "no_final_grades"
    report = estimate_contact_effect(
        chances,
        contact_frame,
        outcomes,
        horizon_weeks=horizon_weeks,
        caliper=caliper,
        max_gap_weeks=max_gap_weeks,
        n_boot=n_boot,
        seed=ml.random_seed,
    )
    return replace(
        summary,
        chance_change=report.chance_change,
        final_grade=report.final_grade,
        pass_rate=report.pass_rate,
        final_reason=final_reason,
    )

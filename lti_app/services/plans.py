"""A plan for the learner (issue #17, item 4), from the course's active model: the smallest
realistic change in what the learner controls that brings their estimate to the pass mark
(`ml.plan`), each step scored through the same what-if as the page's sliders, so following the
plan in the what-if reaches the pass mark.

The bounds ("what the most active tenth of past students had done by this point of the term")
are kept with the model version at training (`effort_bounds` in its metadata); a version
trained before they were kept has none, and then no plan is proposed (the next training keeps
them). Services never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.models import Course, Prediction
from lti_app.services.course_settings import estimates_pass_mark, risk_threshold_of
from lti_app.services.insights import (
    InsightError,
    ModelCache,
    active_models,
    latest_as_of,
    what_if,
)
from ml.plan import Plan, smallest_plan


def bounds_of(session: Session, course: Course) -> dict[str, float]:
    """The active regression model's effort bounds (empty without a shown model or bounds)."""
    reg = active_models(session, course.id).get("regression")
    if reg is None or not reg.gate_passed:
        return {}
    raw = (reg.metadata_json or {}).get("effort_bounds") or {}
    return {str(k): float(v) for k, v in raw.items() if v is not None}


def learner_plan(
    session: Session,
    course: Course,
    person_id: int,
    *,
    settings: MLSettings,
    model_root: Path,
    cache: ModelCache,
) -> Plan | None:
    """The learner's plan, or None when no estimate is shown to plan from (engagement only,
    a gated model, no prediction for the learner yet, no bounds kept with the model)."""
    bounds = bounds_of(session, course)
    as_of = latest_as_of(session, course.id)
    if not bounds or as_of is None:
        return None
    stored = session.scalar(
        select(Prediction.features).where(
            Prediction.course_id == course.id,
            Prediction.person_id == person_id,
            Prediction.as_of == as_of,
        )
    )
    if not stored:
        return None
    current = {k: float(v) for k, v in stored.items() if k in bounds and v is not None}
    threshold = risk_threshold_of(course, settings)

    def score(changes: Mapping[str, float]) -> tuple[float, float]:
        result = what_if(
            session,
            course,
            person_id,
            changes,
            model_root=model_root,
            cache=cache,
            threshold=threshold,
            mc_passes=1,
        )
        return float(result["predicted_grade"]), float(result["probability"])

    try:
        # The mark the model's chances read (the one it was trained for), so that a plan
        # reaching it reaches a chance of 50 % too, even just after a teacher changed the mark.
        mark = estimates_pass_mark(course, settings, active_models(session, course.id))
        return smallest_plan(current, bounds, score, mark)
    except InsightError:
        return None


__all__ = ["bounds_of", "learner_plan"]

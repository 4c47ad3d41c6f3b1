"""Data behind the dashboards that the stored predictions do not hold: weekly activity from the
raw log, the cohort's weekly quartiles, and a student's sensitivity curves.

The predictions table stores features as of one date; teachers also want to see *when* the
activity happened, week by week, so this reads the canonical events of the offering (the same
`load_offering` the scoring uses, hence the same filtering of non-students and of teachers'
own clicks). No Flask here: the CLI or a report could call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Course, ModelVersion, Person, Prediction
from lti_app.services.course_data import CourseDataError, load_offering, student_roster
from lti_app.services.insights import InsightError, ModelCache, latest_as_of
from ml.events import annotate
from ml.explain import sensitivity_curve

_WEEK = pd.Timedelta(days=7)


@dataclass(frozen=True)
class WeeklyActivity:
    """Per-student weekly action counts by activity category, over the offering's weeks.

    ``counts``: columns ``userid``, ``person_id``, ``week`` (1-based), ``category``, ``n``;
    ``weeks``: how many weeks have begun (0 when the course has neither dates nor events).
    """

    counts: pd.DataFrame
    weeks: int
    students: pd.DataFrame  # userid, person_id


def _empty_counts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "userid": pd.Series(dtype="int64"),
            "person_id": pd.Series(dtype="int64"),
            "week": pd.Series(dtype="int64"),
            "category": pd.Series(dtype="object"),
            "n": pd.Series(dtype="int64"),
        }
    )


def weekly_activity(session: Session, course: Course) -> WeeklyActivity:
    roster = student_roster(session, course)
    try:
        offering = load_offering(session, course, with_grades=False)
    except CourseDataError:
        # No dates and no events: nothing has happened yet, which the page says in words.
        return WeeklyActivity(_empty_counts(), 0, roster[["userid", "person_id"]])
    events = offering.events
    start = offering.course_start
    if len(events):
        last = events["time"].max()
        weeks = max(1, int((last - start) / _WEEK) + 1)
    else:
        weeks = 1
    if not len(events) or not len(roster):
        return WeeklyActivity(_empty_counts(), weeks, roster[["userid", "person_id"]])
    annotated = events.assign(category=annotate(events)["category"].to_numpy())
    annotated = annotated[annotated["userid"].isin(roster["userid"])]
    week = ((annotated["time"] - start) / _WEEK).astype("float64").clip(lower=0)
    frame = pd.DataFrame(
        {
            "userid": annotated["userid"].astype("int64").to_numpy(),
            "week": (np.floor(week.to_numpy()) + 1).astype("int64"),
            "category": annotated["category"].astype(str).to_numpy(),
        }
    )
    counts = frame.groupby(["userid", "week", "category"]).size().rename("n").reset_index()
    counts = counts.merge(roster[["userid", "person_id"]], on="userid", how="left")
    return WeeklyActivity(
        counts[["userid", "person_id", "week", "category", "n"]],
        weeks,
        roster[["userid", "person_id"]],
    )


def cohort_weekly(activity: WeeklyActivity) -> pd.DataFrame:
    """Per week: median, first and third quartiles of the students' action counts.

    Students with no action in a week count as zero, so a quiet cohort shows as quiet rather
    than as the few who clicked.
    """
    weeks = np.arange(1, activity.weeks + 1)
    students = activity.students["userid"].to_numpy()
    if len(students) == 0:
        return pd.DataFrame(columns=["week", "q1", "median", "q3"])
    totals = activity.counts.groupby(["userid", "week"])["n"].sum()
    grid = pd.MultiIndex.from_product([students, weeks], names=["userid", "week"])
    full = totals.reindex(grid, fill_value=0).reset_index()
    grouped = full.groupby("week")["n"]
    return pd.DataFrame(
        {
            "week": weeks,
            "q1": grouped.quantile(0.25).reindex(weeks).to_numpy(),
            "median": grouped.median().reindex(weeks).to_numpy(),
            "q3": grouped.quantile(0.75).reindex(weeks).to_numpy(),
        }
    )


def student_weekly(activity: WeeklyActivity, person_id: int) -> pd.DataFrame:
    """One student's weekly counts by category (weeks with no action are absent)."""
    own = activity.counts[activity.counts["person_id"] == person_id]
    return own[["week", "category", "n"]].reset_index(drop=True)


def student_weekly_totals(activity: WeeklyActivity, person_id: int) -> pd.DataFrame:
    """One student's total actions per week, zero-filled over the begun weeks."""
    own = student_weekly(activity, person_id).groupby("week")["n"].sum()
    weeks = pd.Index(np.arange(1, activity.weeks + 1), name="week")
    return own.reindex(weeks, fill_value=0).rename("n").reset_index()


def sensitivity(
    session: Session,
    course: Course,
    person_id: int,
    features: tuple[str, ...],
    *,
    model_root: Path,
    cache: ModelCache,
    n_points: int = 15,
) -> dict[str, list[dict[str, Any]]]:
    """For each feature, the student's predicted grade and pass chance as it sweeps the range
    observed in the cohort (everything else held): which levers move the estimate, and how far.

    Empty when no validated model exists: curves of a withheld model would leak its values.
    """
    if session.get(Person, person_id) is None:
        raise InsightError("no such student in this course")
    versions = {
        v.task: v
        for v in session.scalars(
            select(ModelVersion).where(ModelVersion.course_id == course.id, ModelVersion.active)
        )
    }
    reg, clf = versions.get("regression"), versions.get("classification")
    if reg is None or clf is None or not (reg.gate_passed and clf.gate_passed):
        return {}
    as_of = latest_as_of(session, course.id)
    if as_of is None:
        return {}
    rows = session.execute(
        select(Prediction.person_id, Prediction.features).where(
            Prediction.course_id == course.id, Prediction.as_of == as_of
        )
    ).all()
    own = [f for pid, f in rows if pid == person_id]
    if not own:
        return {}
    bundle = cache.get(model_root, reg)
    columns = bundle.regressor.features

    def frame(items: list[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame(
            [[np.nan if f.get(c) is None else float(f[c]) for c in columns] for f in items],
            columns=columns,
        )

    x, background = frame(own), frame([f for _, f in rows])
    out: dict[str, list[dict[str, Any]]] = {}
    for feature in features:
        if feature not in columns or background[feature].isna().all():
            continue
        curve = sensitivity_curve(
            x,
            feature,
            background,
            regressor=bundle.regressor,
            classifier=bundle.classifier,
            n_points=n_points,
        )
        out[feature] = [
            {str(k): float(v) for k, v in rec.items()} for rec in curve.to_dict(orient="records")
        ]
    return out

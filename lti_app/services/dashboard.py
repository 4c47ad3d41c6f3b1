"""Data behind the dashboards that the stored predictions do not hold: weekly activity from the
raw log, the cohort's weekly quartiles, and a student's sensitivity curves.

The predictions table stores features as of one date; teachers also want to see *when* the
activity happened, week by week. The log is counted where it lives, with one SQL aggregate per
page (student, week and event kind), not read row by row into Python: a 500-student course
holds about 75k events by mid-term, and loading them cost seconds per dashboard view, most of
the page's time. The counting keeps the scoring's rules (`load_offering`, `from_standard_log`):
the course's rows of real users only, students of the roster only, weeks counted from the
course start (or its first event when it has no dates). No Flask here: the CLI or a report
could call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from lti_app.models import Course, LogEvent, Person, Prediction
from lti_app.services.course_data import student_roster
from lti_app.services.insights import InsightError, ModelCache, active_models, latest_as_of
from ml.events import annotate
from ml.explain import sensitivity_curve

_WEEK_S = 7 * 24 * 3600
#: The category of counts not split by kind (`weekly_activity(..., by_category=False)`).
ALL = "all"


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


def _course_start(session: Session, course: Course) -> tuple[pd.Timestamp | None, int | None]:
    """The week origin and the last event's Unix time (None without events).

    As `course_data._course_window`: the course's dates when it has valid ones, else the span
    of its events; None as the start when it has neither.
    """
    first, last = session.execute(
        select(func.min(LogEvent.timecreated), func.max(LogEvent.timecreated)).where(
            LogEvent.site_id == course.site_id,
            LogEvent.courseid == course.moodle_course_id,
            LogEvent.userid > 0,
        )
    ).one()
    if (
        course.start_at is not None
        and course.end_at is not None
        and course.end_at > course.start_at
    ):
        start = pd.Timestamp(course.start_at)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
        return start, last
    if first is None:
        return None, None
    return pd.Timestamp(int(first), unit="s", tz="UTC"), int(last)


def weekly_activity(
    session: Session, course: Course, *, by_category: bool = True, person_id: int | None = None
) -> WeeklyActivity:
    """Each student's actions per week, by activity category (`ml.events.annotate`), or all
    kinds together (category `ALL`) when `by_category` is false, which the course dashboard's
    cohort quartiles need and which is a far smaller aggregate.

    With `person_id`, that student's rows only (an empty roster if they are not a student of
    the course): a student page's own chart, without aggregating everybody's log by kind.
    """
    roster = student_roster(session, course)
    if person_id is not None:
        roster = roster[roster["person_id"] == person_id]
    students = roster[["userid", "person_id"]]
    start, last = _course_start(session, course)
    if start is None:
        # No dates and no events: nothing has happened yet, which the page says in words.
        return WeeklyActivity(_empty_counts(), 0, students)
    start_s = int(start.timestamp())
    weeks = max(1, int((last - start_s) / _WEEK_S) + 1) if last is not None else 1
    if last is None or not len(roster):
        return WeeklyActivity(_empty_counts(), weeks, students)
    # Week 1 holds everything before the start too (as clipping the week at 0 does).
    week = (
        case((LogEvent.timecreated < start_s, 0), else_=(LogEvent.timecreated - start_s) // _WEEK_S)
        + 1
    ).label("week")
    kinds = [LogEvent.eventname, LogEvent.crud, LogEvent.edulevel] if by_category else []
    keys = [LogEvent.userid, week, *kinds]
    result = session.execute(
        select(*keys, func.count().label("n"))
        .where(
            LogEvent.site_id == course.site_id,
            LogEvent.courseid == course.moodle_course_id,
            LogEvent.userid > 0,
            *([LogEvent.userid.in_(roster["userid"].tolist())] if person_id is not None else []),
        )
        .group_by(*keys)
    )
    frame = pd.DataFrame(result.all(), columns=list(result.keys()))
    frame = frame[frame["userid"].isin(roster["userid"])]
    if frame.empty:
        return WeeklyActivity(_empty_counts(), weeks, students)
    frame = frame.astype({"userid": "int64", "week": "int64", "n": "int64"})
    if by_category:
        frame["category"] = annotate(frame)["category"].astype(str).to_numpy()
        frame = frame.groupby(["userid", "week", "category"])["n"].sum().reset_index()
    else:
        frame["category"] = ALL
    counts = frame.merge(students, on="userid", how="left")
    counts = counts.sort_values(["userid", "week", "category"], ignore_index=True)
    return WeeklyActivity(counts[["userid", "person_id", "week", "category", "n"]], weeks, students)


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
    versions = active_models(session, course.id)
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

"""Vega-Lite chart specifications for the dashboards, built with Altair on the server.

The browser only renders them (vendored vega-embed, with the expression interpreter so the CSP
needs no `unsafe-eval`). Building specs here keeps the data and its encoding in one typed
place, testable without a browser, and the page's data tables are drawn from the same records.
Axis titles come in as arguments: the web layer translates them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

#: Colours with AA contrast on white (Moodle's Boost palette shades).
BLUE = "#0f6cbf"
RED = "#ca3120"
GREY = "#6a737b"
GREEN = "#357a32"
WIDTH = "container"

#: How a tooltip words a grade (`end`: None, or "low"/"high" for a range's ends) and a pass
#: chance. The pages pass their own filters (`lti_app.web.i18n`), so that a tooltip reads what
#: the table beside it reads; the defaults are plain numbers.
GradeWords = Callable[[float, str | None], str]
ChanceWords = Callable[[float], str]


def _plain_grade(value: float, end: str | None) -> str:
    return f"{value:.1f}"


def _plain_chance(value: float) -> str:
    return f"{value:.0%}"


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    """The chart as a Vega-Lite dict, not validated here.

    Altair checks every spec against the whole Vega-Lite JSON schema on `to_dict()`: about a
    third of a 500-student dashboard's build time, on every view, for specs whose shape only
    changes with this module's code. `tests/lti_app/lti/test_dashboards.py` validates every spec
    the app builds against the schema instead, once per test run.
    """
    spec: dict[str, Any] = chart.to_dict(validate=False)
    spec.pop("$schema", None)
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    return spec


def mark_labels(rows: Sequence[Mapping[str, Any]]) -> dict[Any, str]:
    """Each student's label on a chart, by person id: the name, and for a name that several
    students share, the name with the Moodle user id ("Alex Martin (#1042)"), or with the
    tool's person id when Moodle's is unknown or shared too. Every label is unique."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["fullname"]] = counts.get(r["fullname"], 0) + 1
    labels = {
        r["person_id"]: r["fullname"]
        if counts[r["fullname"]] == 1
        else f"{r['fullname']} (#{r.get('moodle_user_id') or r['person_id']})"
        for r in rows
    }
    seen: dict[str, int] = {}
    for text in labels.values():
        seen[text] = seen.get(text, 0) + 1
    return {
        person: text if seen[text] == 1 else f"{text} [{person}]" for person, text in labels.items()
    }


def predicted_grades(
    rows: Sequence[Mapping[str, Any]],
    pass_mark: float | None,
    *,
    student: str = "Student",
    grade: str = "Predicted grade",
    interval: str = "Interval",
    grade_words: GradeWords = _plain_grade,
) -> dict[str, Any]:
    """One dot per student with its grade interval as a bar, and the pass mark as a rule; a dot
    is red when the student is at risk by the page's one rule (`insights.is_at_risk`: the pass
    chance under the course's threshold), not by its own reading of the grade.

    Each mark is keyed by the student (`key`, the person id), and drawn on a row of its own
    whose label is the name, followed by the Moodle user id when two students share that name
    (`mark_labels`): two namesakes are two dots, never one row with both. The tooltips read
    the grade and its range as the page's table writes them (`grade_words`: the dashboard's
    filter keeps them on their side of the pass mark)."""
    labels = mark_labels(rows)
    frame = pd.DataFrame(
        [
            {
                "key": str(r["person_id"]),
                "name": labels[r["person_id"]],
                "grade": r["predicted_grade"],
                "low": r["grade_interval"][0],
                "high": r["grade_interval"][1],
                "below": r.get("at_risk") is True,
                "grade_text": grade_words(r["predicted_grade"], None),
                "range_text": f"{grade_words(r['grade_interval'][0], 'low')}\u2013"
                f"{grade_words(r['grade_interval'][1], 'high')}",
            }
            for r in rows
            if r.get("predicted_grade") is not None
        ],
        columns=["key", "name", "grade", "low", "high", "below", "grade_text", "range_text"],
    )
    order = alt.EncodingSortField(field="grade", order="ascending")
    y = alt.Y("name:N", sort=order, title=student, axis=alt.Axis(labelLimit=160))
    base = alt.Chart(frame)
    bars = base.mark_rule(color=GREY, strokeWidth=2).encode(
        y=y, x=alt.X("low:Q", title=grade), x2="high:Q"
    )
    dots = base.mark_point(filled=True, size=60).encode(
        y=y,
        x="grade:Q",
        color=alt.Color(
            "below:N",
            scale=alt.Scale(domain=[False, True], range=[BLUE, RED]),
            legend=None,
        ),
        detail="key:N",
        tooltip=[
            alt.Tooltip("name:N", title=student),
            alt.Tooltip("grade_text:N", title=grade),
            alt.Tooltip("range_text:N", title=interval),
        ],
    )
    layers: list[Any] = [bars, dots]
    if pass_mark is not None:
        rule = (
            alt.Chart(pd.DataFrame({"pass_mark": [pass_mark]}))
            .mark_rule(color=RED, strokeDash=[6, 3], strokeWidth=2)
            .encode(x="pass_mark:Q")
        )
        layers.append(rule)
    height = max(120, 16 * len(frame))
    return _spec(alt.layer(*layers).properties(width=WIDTH, height=height))


def cohort_engagement(
    cohort: pd.DataFrame,
    own: pd.DataFrame | None = None,
    *,
    week: str = "Week",
    actions: str = "Actions",
    median: str = "Cohort median",
    quartiles: str = "Middle half of the cohort",
    own_label: str = "You",
    past: pd.DataFrame | None = None,
    past_label: str = "Previous offering's median",
) -> dict[str, Any]:
    """The cohort's weekly median as a line over its interquartile band; `own` on top; `past`
    (week, median) the previous offering's median student at the same week of its term, so a
    teacher sees whether this year's cohort is quieter than last year's at the same point."""
    band = (
        alt.Chart(cohort)
        .mark_area(opacity=0.25, color=BLUE)
        .encode(
            x=alt.X("week:O", title=week),
            y=alt.Y("q1:Q", title=actions),
            y2="q3:Q",
            tooltip=[
                alt.Tooltip("week:O", title=week),
                alt.Tooltip("q1:Q", title=quartiles + " (Q1)"),
                alt.Tooltip("q3:Q", title=quartiles + " (Q3)"),
            ],
        )
    )
    line = (
        alt.Chart(cohort.assign(series=median))
        .mark_line(point=True, color=BLUE)
        .encode(
            x="week:O",
            y="median:Q",
            tooltip=[
                alt.Tooltip("week:O", title=week),
                alt.Tooltip("median:Q", title=median),
            ],
        )
    )
    layers: list[Any] = [band, line]
    if past is not None and not past.empty:
        layers.append(
            alt.Chart(past)
            .mark_line(color=GREY, strokeDash=[6, 3])
            .encode(
                x="week:O",
                y="median:Q",
                tooltip=[
                    alt.Tooltip("week:O", title=week),
                    alt.Tooltip("median:Q", title=past_label),
                ],
            )
        )
    if own is not None:
        layers.append(
            alt.Chart(own)
            .mark_line(point=True, color=RED, strokeDash=[4, 2])
            .encode(
                x="week:O",
                y="n:Q",
                tooltip=[alt.Tooltip("week:O", title=week), alt.Tooltip("n:Q", title=own_label)],
            )
        )
    return _spec(alt.layer(*layers).properties(width=WIDTH, height=220))


def feature_importance(
    records: Sequence[Mapping[str, Any]],
    labels: Mapping[str, str],
    *,
    feature: str = "Feature",
    importance: str = "Weight, compared with the most important",
    top: int = 12,
) -> dict[str, Any]:
    """Permutation importance with its 95% interval, the most important first (as given: the
    dashboard gives shares of the largest)."""
    frame = pd.DataFrame(
        [
            {
                "feature": labels.get(str(r["feature"]), str(r["feature"])),
                "importance": float(r["importance"]),
                "ci_low": float(r.get("ci_low", r["importance"])),
                "ci_high": float(r.get("ci_high", r["importance"])),
            }
            for r in list(records)[:top]
        ],
        columns=["feature", "importance", "ci_low", "ci_high"],
    )
    # One sort for both layers: `sort="-x"` sorted the bars by importance and the error rules by
    # their own x (ci_low), and Vega warned "Domains that should be unioned has conflicting
    # sort properties" on every dashboard.
    order = alt.EncodingSortField(field="importance", op="max", order="descending")
    y = alt.Y("feature:N", sort=order, title=feature, axis=alt.Axis(labelLimit=220))
    bars = (
        alt.Chart(frame)
        .mark_bar(color=BLUE)
        .encode(
            y=y,
            # A share of the most important feature (`views.course.relative_importance`).
            x=alt.X("importance:Q", title=importance, axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("feature:N", title=feature),
                alt.Tooltip("importance:Q", format=".0%", title=importance),
            ],
        )
    )
    errors = alt.Chart(frame).mark_rule(color="#1d2125").encode(y=y, x="ci_low:Q", x2="ci_high:Q")
    return _spec(alt.layer(bars, errors).properties(width=WIDTH, height=max(120, 22 * len(frame))))


def calibration(
    records: Sequence[Mapping[str, Any]],
    *,
    predicted: str = "Predicted chance of passing",
    observed: str = "Observed pass rate",
) -> dict[str, Any]:
    """Reliability diagram: observed pass rate per bin of predicted probability."""
    frame = pd.DataFrame(
        [
            {
                "predicted": float(r["mean_predicted"]),
                "observed": float(r["fraction_positive"]),
                "count": int(r["count"]),
            }
            for r in records
        ],
        columns=["predicted", "observed", "count"],
    )
    diagonal = (
        alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]}))
        .mark_line(color=GREY, strokeDash=[4, 4])
        .encode(x=alt.X("x:Q", title=predicted), y=alt.Y("y:Q", title=observed))
    )
    points = (
        alt.Chart(frame)
        .mark_line(point=True, color=BLUE)
        .encode(
            x=alt.X("predicted:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y=alt.Y("observed:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("predicted:Q", format=".0%", title=predicted),
                alt.Tooltip("observed:Q", format=".0%", title=observed),
                alt.Tooltip("count:Q"),
            ],
        )
    )
    return _spec(alt.layer(diagonal, points).properties(width=WIDTH, height=240))


def early_warning(
    records: Sequence[Mapping[str, Any]],
    *,
    checkpoint: str = "Share of the term elapsed",
    value: str = "AUC (pass/fail)",
) -> dict[str, Any]:
    """How well the model separates passes from fails at each point of the term."""
    frame = pd.DataFrame(
        [{"checkpoint": float(r["checkpoint"]), "auc": r.get("auc")} for r in records],
        columns=["checkpoint", "auc"],
    ).dropna()
    chance = (
        alt.Chart(pd.DataFrame({"y": [0.5]}))
        .mark_rule(color=GREY, strokeDash=[4, 4])
        .encode(y="y:Q")
    )
    line = (
        alt.Chart(frame)
        .mark_line(point=True, color=BLUE)
        .encode(
            x=alt.X("checkpoint:Q", title=checkpoint, axis=alt.Axis(format="%")),
            y=alt.Y("auc:Q", title=value, scale=alt.Scale(domain=[0.4, 1])),
            tooltip=[
                alt.Tooltip("checkpoint:Q", format=".0%", title=checkpoint),
                alt.Tooltip("auc:Q", format=".2f", title=value),
            ],
        )
    )
    return _spec(alt.layer(chance, line).properties(width=WIDTH, height=220))


def weekly_by_type(
    weekly: pd.DataFrame,
    *,
    week: str = "Week",
    actions: str = "Actions",
    kind: str = "Activity type",
) -> dict[str, Any]:
    """A student's weekly actions, stacked by activity category."""
    chart = (
        alt.Chart(weekly)
        .mark_bar()
        .encode(
            x=alt.X("week:O", title=week),
            y=alt.Y("sum(n):Q", title=actions),
            color=alt.Color("category:N", title=kind, scale=alt.Scale(scheme="tableau10")),
            tooltip=[
                alt.Tooltip("week:O", title=week),
                alt.Tooltip("category:N", title=kind),
                alt.Tooltip("n:Q", title=actions),
            ],
        )
    )
    return _spec(chart.properties(width=WIDTH, height=220))


def history(
    records: Sequence[Mapping[str, Any]],
    *,
    date: str = "Date",
    probability: str = "Chance of passing",
    chance_words: ChanceWords = _plain_chance,
) -> dict[str, Any]:
    """The student's pass probability at each scoring date; the tooltip words each chance as
    the page does (`chance_words`: never "0 %", on its side of the threshold)."""
    frame = pd.DataFrame(
        [
            {
                "as_of": r["as_of"],
                "p": r["pass_probability"],
                "p_text": chance_words(r["pass_probability"]),
            }
            for r in records
            if r.get("pass_probability") is not None
        ],
        columns=["as_of", "p", "p_text"],
    )
    # Day-level dates: two scorings seconds apart once made Vega label its ticks with the
    # milliseconds (".801"). The browser shows them in its own time zone (the reader's).
    day = alt.TimeIntervalStep(interval="day", step=1)
    chart = (
        alt.Chart(frame)
        .mark_line(point=True, color=BLUE)
        .encode(
            x=alt.X(
                "as_of:T",
                title=date,
                scale=alt.Scale(nice=day),
                axis=alt.Axis(format="%Y-%m-%d", tickCount=day, labelOverlap=True),
            ),
            y=alt.Y(
                "p:Q", title=probability, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")
            ),
            tooltip=[
                alt.Tooltip("as_of:T", title=date, format="%Y-%m-%d %H:%M"),
                alt.Tooltip("p_text:N", title=probability),
            ],
        )
    )
    return _spec(chart.properties(width=WIDTH, height=180))


def sensitivity(
    curve: Sequence[Mapping[str, Any]],
    current: float | None,
    *,
    feature: str,
    probability: str = "Chance of passing",
    chance_words: ChanceWords = _plain_chance,
) -> dict[str, Any]:
    """Pass probability as one feature sweeps the cohort's range; the student's value marked.
    The tooltip words each chance as the page does (`chance_words`)."""
    frame = pd.DataFrame(
        [
            {
                "value": r["value"],
                "p": r.get("p_pass"),
                "p_text": None if r.get("p_pass") is None else chance_words(r["p_pass"]),
            }
            for r in curve
        ],
        columns=["value", "p", "p_text"],
    )
    line = (
        alt.Chart(frame)
        .mark_line(color=BLUE)
        .encode(
            x=alt.X("value:Q", title=feature),
            y=alt.Y(
                "p:Q", title=probability, scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")
            ),
            tooltip=[
                alt.Tooltip("value:Q", format=".1f", title=feature),
                alt.Tooltip("p_text:N", title=probability),
            ],
        )
    )
    layers: list[Any] = [line]
    if current is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"value": [current]}))
            .mark_rule(color=RED, strokeDash=[4, 2])
            .encode(x="value:Q")
        )
    return _spec(alt.layer(*layers).properties(width=WIDTH, height=160))

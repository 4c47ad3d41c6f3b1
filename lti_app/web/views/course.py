"""The teacher's course dashboard: the model's quality in plain words, the state of the course
(each empty or broken one explained), the at-risk table and the charts; built once per change of
what it reads (`DASHBOARD`) and kept in the page cache.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from flask import current_app, render_template, request
from flask.json.tag import JSONTag, TaggedJSONSerializer
from flask_babel import LazyString, get_locale
from markupsafe import Markup, escape
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.models import Course, LiveValidation, ModelVersion
from lti_app.observability import get_logger
from lti_app.services import dashboard, fairness, shared_pages
from lti_app.services.course_settings import (
    estimates_pass_mark,
    pass_mark_of,
    risk_threshold_of,
    trained_pass_mark,
)
from lti_app.services.courses import past_offerings, shown_term
from lti_app.services.insights import (
    active_models,
    course_summary,
    latest_predictions,
    students_table,
)
from lti_app.services.page_cache import (
    COURSE,
    LIVE,
    MODELS,
    ROSTER,
    SCORING,
    SYNC,
    TERM,
    CachedPage,
    PageCache,
)
from lti_app.web.auth import N_
from lti_app.web.i18n import MISSING, chance_text, grade_text, number_text, percent_text
from lti_app.web.views import charts
from lti_app.web.views.wording import _, label, labels, ngettext

log = get_logger(__name__)

#: What the dashboard's data reads, from which its cache key is derived: the course's fields,
#: the latest scoring, the active models and their gate, the last sync (and the events and
#: names it brings), the roster.
DASHBOARD = CachedPage("course dashboard", (COURSE, SCORING, MODELS, SYNC, ROSTER, TERM, LIVE))


def pass_mark_view(
    course: Course, ml: MLSettings, versions: Mapping[str, ModelVersion]
) -> dict[str, Any]:
    """The pass mark in force, where it comes from in words, and the one the shown estimates
    were trained for when it differs (a teacher just changed it: the next scoring follows)."""
    mark = pass_mark_of(course, ml)
    sources = {
        "teacher": _("set for this course in the tool"),
        "moodle": _("Moodle's gradebook (grade to pass of the course total)"),
        "default": _("the site's default; Moodle's gradebook has none"),
    }
    trained = trained_pass_mark(versions)
    return {
        "value": mark.value,
        "scale": mark.scale,
        "source": mark.source,
        "source_words": sources[mark.source],
        "set_at": mark.set_at,
        "is_own": course.pass_mark is not None,
        "trained": trained if trained is not None and abs(trained - mark.value) > 1e-9 else None,
    }


# --------------------------------------------------------------------------- course


def quality_sentences(versions: Mapping[str, ModelVersion]) -> list[str]:
    """The validated quality in plain words, with the evidence (past offerings, students)."""
    out: list[str] = []
    reg, clf = versions.get("regression"), versions.get("classification")
    any_version = reg or clf
    report = any_version.metadata_json.get("report", {}) if any_version is not None else {}
    if report:
        offerings = int(report.get("n_offerings") or 0)
        out.append(
            ngettext(
                "Validated on %(students)s students from %(num)s past offering, seen at the same "
                "point of its term.",
                "Validated on %(students)s students from %(num)s past offerings, each seen at "
                "the same point of its term.",
                offerings,
                students=number_text(report.get("n_students"), 0),
            )
        )
    if reg is not None and reg.metrics.get("metrics"):
        m = reg.metrics["metrics"]
        base = reg.metrics.get("baseline", {})
        level = float(reg.metrics.get("interval_level", 0.9))
        out.append(
            _(
                "Predicted grades were off by %(mae)s points on average (guessing the mean "
                "grade: %(base)s); the ranges shown contained the real grade for %(cov)s of "
                "students (target %(level)s).",
                mae=number_text(float(m.get("mae", 0))),
                base=number_text(float(base.get("mae", 0))),
                cov=percent_text(float(m.get("coverage", 0))),
                level=percent_text(level),
            )
        )
    if clf is not None and clf.metrics.get("metrics"):
        out.extend(_chance_sentences(clf.metrics))
    return out


def _chance_sentences(metrics: Mapping[str, Any]) -> list[str]:
    """The pass chances' validation in words a teacher can repeat: how often they put a student
    who passed above one who failed, and what became of the students given a chance, from past
    offerings each predicted without its own data (leave one offering out). No "AUC" or "ECE":
    those stay in the card's details."""
    out: list[str] = []
    auc = metrics.get("metrics", {}).get("auc")
    if auc is not None:
        out.append(
            ngettext(
                "Pass chances put a student who passed above one who failed %(num)s time in "
                "10, on past offerings each predicted without its own data.",
                "Pass chances put a student who passed above one who failed %(num)s times in "
                "10, on past offerings each predicted without its own data.",
                round(10 * float(auc)),
            )
        )
    curve = [b for b in metrics.get("calibration_curve") or [] if b.get("count")]
    if curve:
        # The most telling group: the largest one given a middling chance, else the largest.
        middling = [b for b in curve if 0.2 <= float(b["mean_predicted"]) <= 0.8]
        group = max(middling or curve, key=lambda b: int(b["count"]))
        out.append(
            ngettext(
                "Of the %(num)s past student given a chance of %(given)s, %(passed)s passed.",
                "Of the %(num)s past students given a chance of %(given)s, %(passed)s passed.",
                int(group["count"]),
                given=_about(float(group["mean_predicted"])),
                passed=_share_words(float(group["fraction_positive"])),
            )
        )
    ece = metrics.get("ci", {}).get("ece")
    if ece:
        out.append(
            ngettext(
                "On average the chances were %(num)s point away from what happened "
                "(somewhere between %(low)s and %(high)s points).",
                "On average the chances were %(num)s points away from what happened "
                "(somewhere between %(low)s and %(high)s points).",
                round(100 * float(ece["value"])),
                low=f"{round(100 * float(ece['ci_low']))}",
                high=f"{round(100 * float(ece['ci_high']))}",
            )
        )
    return out


def _about(chance: float) -> str:
    """A group's mean chance: "about 45 %", or "under 5 %" as every chance is worded."""
    text = chance_text(chance)
    return text if not 0.05 <= chance <= 0.95 else str(_("about %(p)s", p=text))


def _share_words(share: float) -> str:
    """An observed share of students in words at its ends ("none", "all"), a percent between."""
    if share <= 0:
        return str(_("none"))
    if share >= 1:
        return str(_("all"))
    return percent_text(max(1, min(99, round(100 * share))) / 100)


def state_message(summary: Mapping[str, Any]) -> str | None:
    """Why the dashboard shows what it shows, for every state but the normal one."""
    state = summary["state"]
    if state == "no_data":
        return _(
            "No estimate yet: this course has not been scored. Estimates appear after the "
            "next sync once the course has students and activity."
        )
    if state == "engagement_only":
        return _(
            "Engagement only: no past offering of this course with final grades is linked, "
            "so no model can be trained and validated. Link the past offerings you taught to "
            "get predictions."
        )
    if state == "gated":
        models = summary["models"]
        reason = next((m["gate_reason"] for m in models.values() if m and m.get("gate_reason")), "")
        return _(
            "No predictions are shown: the model trained on past offerings did not prove "
            "better than a trivial guess (%(reason)s). Engagement is still shown.",
            reason=reason,
        )
    return None


def sync_problem(summary: Mapping[str, Any]) -> dict[str, str] | None:
    """A failed last sync: Moodle's error and what to do about it."""
    sync = summary.get("sync")
    if not sync or sync.get("status") != "failed":
        return None
    code = str(sync.get("error_code") or "")
    fixes = {
        "invalidtoken": _(
            "The web-service token is invalid or expired: create a new token in Moodle and "
            "register it again with arche-predict site add."
        ),
        "accessexception": _(
            "A web-service function is missing from the service: enable the arche-predict "
            "service's functions in Moodle (Site administration → Server → Web services)."
        ),
        "nopermissions": _(
            "The web-service user lacks a capability in this course: run arche-predict "
            "moodle check --course to see which."
        ),
        "unavailable": _("Moodle could not be reached: the next sync will retry."),
    }
    fix = fixes.get(
        code,
        _("Ask the Moodle administrator to run arche-predict moodle check for this course."),
    )
    return {"code": code, "message": str(sync.get("error_message") or ""), "fix": fix}


def term_view(session: Session, course: Course, as_of: str | None) -> dict[str, Any] | None:
    """The term as the scoring takes it: its end, whether that end is inferred (no end date:
    the past offerings' usual length), and whether the shown estimates are as of its end."""
    term = shown_term(session, course)
    if term is None:
        return None
    shown = pd.Timestamp(as_of) if as_of else None
    ended = shown is not None and shown >= term.end - pd.Timedelta(seconds=1)
    return {
        "start": term.start.to_pydatetime(),
        "end": term.end.to_pydatetime(),
        "end_inferred": term.end_inferred,
        "ended": ended,
    }


def _previous_cohort(
    session: Session, course: Course, cohort: pd.DataFrame
) -> tuple[pd.DataFrame | None, str | None]:
    """The latest linked past offering's median student per week of its term, over the weeks
    the current offering has reached (#16: the same week of last year's offering)."""
    past = past_offerings(session, course.id)
    if not past or cohort.empty:
        return None, None
    last = past[-1]
    weekly = dashboard.cohort_weekly(dashboard.weekly_activity(session, last, by_category=False))
    weekly = weekly[weekly["week"] <= cohort["week"].max()]
    if weekly.empty:
        return None, None
    return weekly[["week", "median"]].reset_index(drop=True), last.fullname or last.shortname


def _with_past(cohort: pd.DataFrame, past: pd.DataFrame | None) -> pd.DataFrame:
    if past is None:
        return cohort.assign(past_median=None)
    return (
        cohort.merge(past.rename(columns={"median": "past_median"}), on="week", how="left")
        .astype(object)
        .where(lambda f: f.notna(), None)
    )


def _risk_order(student: Mapping[str, Any]) -> tuple[Any, ...]:
    chance, grade = student.get("pass_probability"), student.get("predicted_grade")
    return (
        chance is None,
        chance if chance is not None else 0.0,
        grade is None,
        grade if grade is not None else 0.0,
        str(student.get("fullname") or "").lower(),
    )


def course_view(session: Session, course: Course, *, ml: MLSettings) -> dict[str, Any]:
    """Everything the dashboard shows, as data, wording and chart specs."""
    versions = active_models(session, course.id)
    # One read of the latest predictions (with their features and explanations) for both.
    rows = latest_predictions(session, course.id)
    threshold = risk_threshold_of(course, ml)
    summary = course_summary(session, course, threshold=threshold, rows=rows, models=versions)
    students = students_table(session, course, threshold=threshold, rows=rows, models=versions)
    marks = pass_mark_view(course, ml, versions)
    # The chart's line is the mark the shown estimates were made for.
    mark = estimates_pass_mark(course, ml, versions)
    # The cohort's quartiles need totals only: the small aggregate, not one row per event kind.
    activity = dashboard.weekly_activity(session, course, by_category=False)
    cohort = dashboard.cohort_weekly(activity)
    past, past_name = _previous_cohort(session, course, cohort)
    view: dict[str, Any] = {
        "summary": summary,
        "students": students,
        # The table's default order (#16): highest risk first (lowest shown chance, then lowest
        # grade), students without an estimate last, by name within ties.
        "students_by_risk": sorted(students, key=_risk_order),
        # Names two students share read with the Moodle id, as on the grades chart (#15).
        "names": charts.mark_labels(students),
        "pass_mark": mark,
        "pass_marks": marks,
        "risk_threshold": threshold,
        "term": term_view(session, course, summary.get("as_of")),
        "state_message": state_message(summary),
        "sync_problem": sync_problem(summary),
        "quality": quality_sentences(versions) if summary["state"] == "predictions" else [],
        "versions": versions,
        "cohort": _with_past(cohort, past).to_dict(orient="records"),
        "past_offering": past_name,
        "labels": labels(
            sorted({f["feature"] for s in students for fs in s["factors"].values() for f in fs})
        ),
        "charts": {},
    }
    view["charts"]["engagement"] = charts.cohort_engagement(
        cohort,
        week=_("Week"),
        actions=_("Actions"),
        median=_("Cohort median"),
        quartiles=_("Middle half of the cohort"),
        past=past,
        past_label=_("Median of the previous offering"),
    )
    if summary["state"] == "predictions":
        _add_grades(view, students, mark)
        _add_model_card(view, versions.get("classification"))
    view["live"] = live_view(session.get(LiveValidation, course.id))
    return view


#: Each drift code in words, for the card's warning.
_DRIFT_WORDS = {
    "ranking": N_("the chances ranked students who passed above those who failed less well"),
    "calibration": N_("the chances were further from what happened"),
    "ranges": N_("the grade ranges held the final grade less often"),
}


def live_view(live: LiveValidation | None) -> dict[str, Any] | None:
    """The live validation in a teacher's words (#17, item 3): the first week with a flag as
    the headline, a row per week, and the drift if live results fell outside the promise."""
    if live is None or not live.weeks:
        return None
    weeks = sorted(live.weeks, key=lambda w: int(w["week"]))
    first = next((w for w in weeks if w["n_flagged"]), weeks[0])
    flagged, unflagged = int(first["n_flagged"]), int(first["n"]) - int(first["n_flagged"])
    headline = [
        ngettext(
            "Last term, of the %(num)s student flagged at week %(week)s, %(failed)s failed.",
            "Last term, of the %(num)s students flagged at week %(week)s, %(failed)s failed.",
            flagged,
            week=first["week"],
            failed=_share_or_none(first["share_failed_flagged"]),
        )
        if flagged
        else _("Last term, no student was flagged at week %(week)s.", week=first["week"]),
        ngettext(
            "Of the %(num)s not flagged, %(failed)s failed.",
            "Of the %(num)s not flagged, %(failed)s failed.",
            unflagged,
            failed=_share_or_none(first["share_failed_unflagged"]),
        ),
    ]
    drifted = [w for w in weeks if w.get("drift")]
    reasons = sorted({code for w in drifted for code in str(w["drift"]).split(";") if code})
    return {
        "headline": " ".join(str(h) for h in headline),
        "weeks": weeks,
        "drift_weeks": [w["week"] for w in drifted],
        "drift_reasons": [str(_(_DRIFT_WORDS[c])) for c in reasons if c in _DRIFT_WORDS],
        "computed_at": live.computed_at,
        "fairness": fairness_view(live.fairness),
    }


#: The fairness audit's metrics in a teacher's words (#18, item 7), in the card's order.
_FAIRNESS_WORDS = {
    "auc": N_("pairs of a student who passed and one who failed ranked the right way round"),
    "missed": N_("students who failed without having been flagged"),
    "coverage": N_("final grades inside the range shown"),
    "brier": N_("distance between the chances and what happened (lower is better)"),
}


#: The standard roster fields an administrator may declare, in the reader's words; a custom
#: profile field is named by its short name.
_ATTRIBUTE_WORDS = {
    "department": N_("department"),
    "institution": N_("institution"),
    "city": N_("city"),
    "country": N_("country"),
}


def _metric_order(row: Mapping[str, Any]) -> int:
    """A week's rows in the card's order of the metrics (the summary table's)."""
    order = list(_FAIRNESS_WORDS)
    metric = str(row["metric"])
    return order.index(metric) if metric in order else len(order)


def _attribute_label(name: str) -> str:
    if name in _ATTRIBUTE_WORDS:
        return str(_(_ATTRIBUTE_WORDS[name]))
    return name.removeprefix("profile_field_")


def _points(value: float | None) -> str:
    return MISSING if value is None else number_text(round(100 * float(value)), 0)


def fairness_view(
    audit: Mapping[str, Sequence[Mapping[str, Any]]] | None,
) -> list[dict[str, Any]] | None:
    """The fairness audit per declared attribute (#18, item 7): for each metric, the largest gap
    between compared groups over the term (with its week and 95 % interval, in points) and the
    weeks where a gap was flagged; the week-by-week rows behind it for the details table."""
    if not audit:
        return None
    out = []
    for name, rows in audit.items():
        metrics = []
        for metric, words in _FAIRNESS_WORDS.items():
            mine = [r for r in rows if r["metric"] == metric]
            with_gap = [r for r in mine if r.get("gap") is not None]
            worst = max(with_gap, key=lambda r: float(r["gap"]), default=None)
            metrics.append(
                {
                    "metric": metric,
                    "words": str(_(words)),
                    "worst": worst,
                    "gap": _points(worst["gap"]) if worst else MISSING,
                    "low": _points(worst.get("gap_low")) if worst else MISSING,
                    "high": _points(worst.get("gap_high")) if worst else MISSING,
                    "flagged_weeks": [int(r["checkpoint"]) for r in mine if r.get("flagged")],
                }
            )
        # Every group of any week (one absent from the last week keeps its column); each
        # group's size as of the last week it had students.
        sizes: dict[str, int] = {}
        for r in sorted(rows, key=lambda r: int(r["checkpoint"])):
            sizes.update({str(g): int(n) for g, n in (r.get("sizes") or {}).items()})
        details = [
            {
                "week": int(r["checkpoint"]),
                "words": str(_(_FAIRNESS_WORDS.get(str(r["metric"]), str(r["metric"])))),
                "values": {g: _points(v) for g, v in (r.get("values") or {}).items()},
                "gap": _points(r.get("gap")),
                "low": _points(r.get("gap_low")),
                "high": _points(r.get("gap_high")),
                "flagged": bool(r.get("flagged")),
            }
            for r in sorted(rows, key=lambda r: (int(r["checkpoint"]), _metric_order(r)))
        ]
        out.append(
            {
                "name": name,
                "label": _attribute_label(name),
                "groups": sorted(sizes),
                "group_labels": {
                    g: str(_("not given")) if g == fairness.NOT_GIVEN else g for g in sizes
                },
                "sizes": sizes,
                "metrics": metrics,
                "flagged": any(m["flagged_weeks"] for m in metrics),
                "details": details,
            }
        )
    return out


def _share_or_none(share: float | None) -> str:
    return MISSING if share is None else _share_words(float(share))


def _add_grades(view: dict[str, Any], students: Sequence[Mapping[str, Any]], mark: float) -> None:
    """The predicted grades against the pass mark, for the students that have one."""
    with_grade = [s for s in students if s["predicted_grade"] is not None]
    if with_grade:
        view["charts"]["grades"] = charts.predicted_grades(
            with_grade,
            mark,
            student=_("Student"),
            grade=_("Predicted grade"),
            interval=_("Range"),
            grade_words=lambda value, end: grade_text(value, mark, end),
        )


def _add_model_card(view: dict[str, Any], clf: ModelVersion | None) -> None:
    """The classifier's validation, as tables and charts: which features matter (with their
    intervals), how well its chances are calibrated, and how early it warns."""
    report = clf.metadata_json.get("report", {}) if clf else {}
    importance = report.get("permutation_importance", {}).get("classification") or []
    view["importance"] = [{**r, "label": label(str(r["feature"]))} for r in importance[:12]]
    shares = relative_importance(importance[:12])
    view["importance_shares"] = [{**r, "label": label(str(r["feature"]))} for r in shares]
    if shares:
        view["charts"]["importance"] = charts.feature_importance(
            shares,
            labels(importance_features(shares)),
            feature=_("Feature"),
            importance=_("Weight, compared with the most important"),
        )
    curve = clf.metrics.get("calibration_curve") if clf else None
    view["calibration"] = curve or []
    if curve:
        view["charts"]["calibration"] = charts.calibration(
            curve, predicted=_("Predicted chance of passing"), observed=_("Observed pass rate")
        )
    ew = report.get("early_warning") or []
    view["early_warning"] = ew
    if ew:
        view["charts"]["early_warning"] = charts.early_warning(
            ew,
            checkpoint=_("Share of the term elapsed"),
            value=_("Passes put above fails (out of 1)"),
        )


def token_slot() -> str:
    """Stands for the request's launch token in a cached page's links, replaced on each view:
    the token belongs to one session, the rest of the link to the course. Derived from the
    secret key, so that every worker sharing a build (`shared_pages`) writes the same, and no
    stored text (a student's name) can contain it."""
    secret = str(current_app.config.get("SECRET_KEY") or "")
    return "lt-slot-" + hmac.new(secret.encode(), b"launch-token-slot", "sha256").hexdigest()[:24]


def cached_course_view(
    session: Session, course: Course, *, ml: MLSettings, cache: PageCache[Any]
) -> dict[str, Any]:
    """The teacher dashboard's data for this course and reader's language, built once per
    change of what it reads (`DASHBOARD`) and then served from `cache`; a worker missing it
    first reads the build another worker (or the scoring) kept in the database
    (`shared_pages`), and keeps its own build there for the others.

    The entry holds no session's data: its links carry `token_slot()` where the launch token
    goes (`with_launch_token` puts the request's in), and the CSRF token is rendered per request.
    """
    key = (
        str(get_locale() or "en"),
        request.script_root,
        DASHBOARD.key(session, course),
    )

    def shared() -> dict[str, Any]:
        name = shared_pages.digest(key)
        stored = shared_pages.load(session, name)
        if stored is not None:
            try:
                return decode_view(stored)
            except Exception:  # noqa: BLE001 - an unreadable build is built again
                log.warning("unreadable shared page build, rebuilt", course_id=course.id)
        view = build_dashboard(session, course, ml=ml)
        payload = encode_view(view)
        bind = session.get_bind()
        if isinstance(bind, Engine):
            # Kept at once, in a transaction of its own: the request's own (committed at its
            # end) must not hold the database's write lock while the page renders (SQLite has
            # one lock for the whole file).
            with bind.begin() as connection:
                shared_pages.store(Session(bind=connection), name, course.id, payload)
        else:
            shared_pages.store(session, name, course.id, payload)
        return view

    view: dict[str, Any] = cache.get_or_build(key, shared)
    return view


class _TagDateTime(JSONTag):
    """Datetimes as ISO text, zone and microseconds kept (Flask's own tag keeps seconds)."""

    key = " dt"

    def check(self, value: Any) -> bool:
        return isinstance(value, datetime)

    def to_json(self, value: Any) -> Any:
        return value.isoformat()

    def to_python(self, value: Any) -> Any:
        return datetime.fromisoformat(value)


class _TagDate(JSONTag):
    key = " da"

    def check(self, value: Any) -> bool:
        return isinstance(value, date) and not isinstance(value, datetime)

    def to_json(self, value: Any) -> Any:
        return value.isoformat()

    def to_python(self, value: Any) -> Any:
        return date.fromisoformat(value)


_CODEC = TaggedJSONSerializer()
_CODEC.register(_TagDateTime, index=0)
_CODEC.register(_TagDate, index=0)


def _plain(value: Any) -> Any:
    """What the codec can carry: translated strings as text (the key holds the language),
    numpy scalars as numbers; Markup, datetimes, tuples as they are."""
    if isinstance(value, Markup | str | datetime | date) or value is None:
        return value
    if isinstance(value, LazyString):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_view(view: Mapping[str, Any]) -> str:
    return str(_CODEC.dumps(_plain(view)))


def decode_view(payload: str) -> dict[str, Any]:
    view: dict[str, Any] = _CODEC.loads(payload)
    return view


def with_launch_token(fragment: str, token: str) -> Markup:
    """A cached fragment with this request's launch token in its links."""
    # The fragment is autoescaped template output; the token is escaped as it goes in.
    return Markup(str(fragment).replace(token_slot(), str(escape(token))))  # noqa: S704


def build_dashboard(session: Session, course: Course, *, ml: MLSettings) -> dict[str, Any]:
    """`course_view` made cacheable: the data sections of the page (quality, the at-risk table,
    the charts and their tables) rendered once into `body_html`, since their hundreds of rows
    and thousands of localised numbers were most of a view's time even with the data at hand;
    and only plain data kept beside it (ORM rows belong to one database session)."""
    view = course_view(session, course, ml=ml)
    body = render_template("_teacher_body.html", view=view, course=course, lt=token_slot())
    return {
        "summary": view["summary"],
        "state_message": view["state_message"],
        "sync_problem": view["sync_problem"],
        "pass_marks": view["pass_marks"],
        "pass_mark": view["pass_mark"],
        "risk_threshold": view["risk_threshold"],
        "term": view["term"],
        "n_students": len(view["students"]),
        # Autoescaped template output, inserted as it is.
        "body_html": Markup(body),  # noqa: S704
    }


def relative_importance(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each feature's importance as a share of the largest (1 for the top one), its interval
    scaled alike and kept between 0 and 1: a teacher reads "half as much as the main factor", not a
    loss of AUC of 0.012 (the raw figures stay in the model card's technical details)."""
    top = max((float(r["importance"]) for r in records), default=0.0)
    if top <= 0:
        return []

    def share(value: Any) -> float:
        return min(1.0, max(0.0, float(value) / top))

    return [
        {
            "feature": r["feature"],
            "importance": share(r["importance"]),
            "ci_low": share(r.get("ci_low", r["importance"])),
            "ci_high": share(r.get("ci_high", r["importance"])),
        }
        for r in records
    ]


def importance_features(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(r["feature"]) for r in records]

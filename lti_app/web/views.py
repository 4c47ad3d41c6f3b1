"""What the dashboard templates receive: the services' data, worded and charted for people.

The services return numbers; this module turns them into sentences in the reader's language
(the model's quality in plain words, each empty or broken state explained) and into Vega-Lite
specs with translated axis titles. Templates then only lay things out.
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from flask import render_template, request
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from lti_app.models import Course, ModelVersion
from lti_app.services import charts, dashboard
from lti_app.services.exports import SafeCsvWriter
from lti_app.services.insights import (
    ACTIONABLE,
    ModelCache,
    active_models,
    course_summary,
    latest_predictions,
    students_table,
)
from lti_app.services.page_cache import PageCache, course_page_key
from ml.feature_info import FEATURES


def _(text: str, **values: Any) -> str:
    """Translated text, typed (Flask-Babel's `gettext` is not)."""
    return str(gettext(text, **values))


FEATURE_LABELS: dict[str, Any] = {
    "n_actions": _l("Actions in the course"),
    "total_time_min": _l("Time spent (minutes)"),
    "active_days": _l("Active days"),
    "days_since_last": _l("Days since last activity"),
    "trend": _l("Activity trend"),
    "n_sessions": _l("Study sessions"),
    "n_active": _l("Active actions (submissions, posts, attempts)"),
    "n_passive": _l("Passive actions (views)"),
    "share_activities": _l("Share of activities opened"),
    "n_mod_quiz_attempt_submitted": _l("Quiz attempts submitted"),
    "n_mod_quiz_attempt_started": _l("Quiz attempts started"),
    "n_mod_quiz_attempt_reviewed": _l("Quiz attempts reviewed"),
    "n_mod_quiz_course_module_viewed": _l("Quiz pages viewed"),
    "n_mod_forum_post_created": _l("Forum posts"),
    "n_mod_forum_discussion_viewed": _l("Forum discussions read"),
    "n_mod_assign_assessable_submitted": _l("Assignments submitted"),
    "n_mod_assign_course_module_viewed": _l("Assignment pages viewed"),
    "n_mod_resource_course_module_viewed": _l("Files opened"),
    "n_mod_page_course_module_viewed": _l("Pages read"),
    "n_mod_url_course_module_viewed": _l("Links followed"),
    "n_core_course_viewed": _l("Course page visits"),
    "n_gradereport_user_grade_report_viewed": _l("Grade report visits"),
    "active_ratio": _l("Share of active actions"),
    "active_weeks_share": _l("Share of weeks with activity"),
    "cognitive_depth": _l("Depth of engagement"),
    "cognitive_depth_max": _l("Deepest engagement"),
    "social_breadth": _l("Social engagement"),
    "social_breadth_max": _l("Widest social engagement"),
    "mean_interval_h": _l("Hours between actions (mean)"),
    "mean_session_min": _l("Session length (minutes)"),
    "mean_hour": _l("Usual hour of activity"),
    "weekly_entropy": _l("Regularity over the week"),
    "course_progress": _l("Share of the term elapsed"),
    "n_cat_assessment": _l("Assessment actions"),
    "n_cat_collaboration": _l("Collaboration actions"),
    "n_cat_content": _l("Content actions"),
    "n_cat_feedback": _l("Feedback actions"),
    "n_cat_forum_read": _l("Forum reading"),
    "n_cat_forum_write": _l("Forum writing"),
    "n_cat_navigation": _l("Navigation actions"),
    "n_cat_other": _l("Other actions"),
}


def label(feature: str) -> str:
    """A feature's human name; cohort z-scores read as 'X compared with the cohort'."""
    if feature.startswith("z_"):
        return _("%(name)s, compared with the cohort", name=label(feature[2:]))
    return str(FEATURE_LABELS.get(feature, feature.replace("_", " ")))


def labels(features: Sequence[str]) -> dict[str, str]:
    return {f: label(f) for f in features}


def pass_mark(course: Course, default: float) -> float:
    return float(course.pass_mark) if course.pass_mark is not None else default


# --------------------------------------------------------------------------- course


def quality_sentences(versions: Mapping[str, ModelVersion]) -> list[str]:
    """The validated quality in plain words, with the evidence (past offerings, students)."""
    out: list[str] = []
    reg, clf = versions.get("regression"), versions.get("classification")
    any_version = reg or clf
    report = any_version.metadata_json.get("report", {}) if any_version is not None else {}
    if report:
        out.append(
            _(
                "Validated on %(students)s students from %(offerings)s past offerings, each "
                "seen at the same point of its term.",
                students=report.get("n_students", "?"),
                offerings=report.get("n_offerings", "?"),
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
                mae=f"{float(m.get('mae', 0)):.1f}",
                base=f"{float(base.get('mae', 0)):.1f}",
                cov=f"{100 * float(m.get('coverage', 0)):.0f} %",
                level=f"{100 * level:.0f} %",
            )
        )
    if clf is not None and clf.metrics.get("metrics"):
        m = clf.metrics["metrics"]
        auc = m.get("auc")
        out.append(
            _(
                "Pass chances rank a passing student above a failing one %(auc)s of the time "
                "(AUC; 50 %% is chance), and are calibrated: of the students given 70 %%, "
                "about 70 %% passed (calibration error %(ece)s points).",
                auc=f"{100 * float(auc):.0f} %" if auc is not None else "?",
                ece=f"{100 * float(m.get('ece', 0)):.0f}",
            )
        )
    return out


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
            "so no model can be trained and validated. Link past offerings (arche-predict "
            "course add --past) to get predictions."
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


def course_view(session: Session, course: Course, *, default_pass_mark: float) -> dict[str, Any]:
    versions = active_models(session, course.id)
    # One read of the latest predictions (with their features and explanations) for both.
    rows = latest_predictions(session, course.id)
    summary = course_summary(session, course, rows=rows, models=versions)
    students = students_table(session, course, rows=rows, models=versions)
    mark = pass_mark(course, default_pass_mark)
    # The cohort's quartiles need totals only: the small aggregate, not one row per event kind.
    activity = dashboard.weekly_activity(session, course, by_category=False)
    cohort = dashboard.cohort_weekly(activity)
    week, actions = _("Week"), _("Actions")
    view: dict[str, Any] = {
        "summary": summary,
        "students": students,
        "pass_mark": mark,
        "state_message": state_message(summary),
        "sync_problem": sync_problem(summary),
        "quality": quality_sentences(versions) if summary["state"] == "predictions" else [],
        "versions": versions,
        "cohort": cohort.to_dict(orient="records"),
        "labels": labels(
            sorted({f["feature"] for s in students for fs in s["factors"].values() for f in fs})
        ),
        "charts": {},
    }
    view["charts"]["engagement"] = charts.cohort_engagement(
        cohort,
        week=week,
        actions=actions,
        median=_("Cohort median"),
        quartiles=_("Middle half of the cohort"),
    )
    if summary["state"] == "predictions":
        with_grade = [s for s in students if s["predicted_grade"] is not None]
        if with_grade:
            view["charts"]["grades"] = charts.predicted_grades(
                with_grade,
                mark,
                student=_("Student"),
                grade=_("Predicted grade"),
                interval=_("Range"),
            )
        clf = versions.get("classification")
        report = clf.metadata_json.get("report", {}) if clf else {}
        importance = report.get("permutation_importance", {}).get("classification") or []
        view["importance"] = [{**r, "label": label(str(r["feature"]))} for r in importance[:12]]
        if importance:
            view["charts"]["importance"] = charts.feature_importance(
                importance,
                labels(importance_features(importance)),
                feature=_("Feature"),
                importance=_("Importance (loss of AUC when shuffled)"),
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
                ew, checkpoint=_("Share of the term elapsed"), value=_("AUC (pass/fail)")
            )
    return view


#: Stands for the request's launch token in a cached page's links, replaced on each view: the
#: token belongs to one session, the rest of the link to the course. Random per process, so
#: that no stored text (a student's name) can contain it.
TOKEN_SLOT = f"lt-slot-{secrets.token_hex(12)}"


def cached_course_view(
    session: Session, course: Course, *, default_pass_mark: float, cache: PageCache[Any]
) -> dict[str, Any]:
    """The teacher dashboard's data for this course and reader's language, built once per
    change of its inputs (`course_page_key`) and then served from `cache`.

    The entry holds no session's data: its links carry `TOKEN_SLOT` where the launch token goes
    (`with_launch_token` puts the request's in), and the CSRF token is rendered per request.
    """
    key = (
        str(get_locale() or "en"),
        request.script_root,
        course_page_key(session, course),
    )
    view: dict[str, Any] = cache.get_or_build(
        key, lambda: _built_course_view(session, course, default_pass_mark=default_pass_mark)
    )
    return view


def with_launch_token(fragment: str, token: str) -> Markup:
    """A cached fragment with this request's launch token in its links."""
    # The fragment is autoescaped template output; the token is escaped as it goes in.
    return Markup(str(fragment).replace(TOKEN_SLOT, str(escape(token))))  # noqa: S704


def _built_course_view(
    session: Session, course: Course, *, default_pass_mark: float
) -> dict[str, Any]:
    """`course_view` made cacheable: the data sections of the page (quality, the at-risk table,
    the charts and their tables) rendered once into `body_html`, since their hundreds of rows
    and thousands of localised numbers were most of a view's time even with the data at hand;
    and only plain data kept beside it (ORM rows belong to one database session)."""
    view = course_view(session, course, default_pass_mark=default_pass_mark)
    body = render_template("_teacher_body.html", view=view, course=course, lt=TOKEN_SLOT)
    return {
        "summary": view["summary"],
        "state_message": view["state_message"],
        "sync_problem": view["sync_problem"],
        # Autoescaped template output, inserted as it is.
        "body_html": Markup(body),  # noqa: S704
    }


def importance_features(records: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(r["feature"]) for r in records]


def students_csv(students: Sequence[Mapping[str, Any]]) -> str:
    """The at-risk table as CSV (UTF-8 with BOM, so that Excel opens accents right). Names and
    other text are neutralised against formula injection (`services.exports`); numbers stay
    numbers, to four significant digits."""
    buf = io.StringIO()
    writer = SafeCsvWriter(buf, float_format=".4g")
    writer.writerow(
        [
            "person_id",
            "moodle_user_id",
            "fullname",
            "predicted_grade",
            "grade_low",
            "grade_high",
            "pass_probability",
            "probability_low",
            "probability_high",
            "predicted_pass",
            "trend",
            "days_since_last",
            "active_days",
            "n_actions",
            "top_factors",
        ]
    )

    for s in students:
        gi = s.get("grade_interval") or [None, None]
        pi = s.get("probability_interval") or [None, None]
        eng = s.get("engagement") or {}
        factors = "; ".join(f["feature"] for f in (s.get("factors") or {}).get("pass", [])[:3])
        writer.writerow(
            [
                s["person_id"],
                s.get("moodle_user_id"),
                s["fullname"],
                s.get("predicted_grade"),
                gi[0],
                gi[1],
                s.get("pass_probability"),
                pi[0],
                pi[1],
                s.get("predicted_pass"),
                eng.get("trend"),
                eng.get("days_since_last"),
                eng.get("active_days"),
                eng.get("n_actions"),
                factors,
            ]
        )
    return "\ufeff" + buf.getvalue()


# --------------------------------------------------------------------------- one student


SENSITIVITY_FEATURES = ("active_days", "total_time_min", "n_mod_quiz_attempt_submitted")


def student_view(
    session: Session,
    course: Course,
    detail: Mapping[str, Any],
    *,
    for_teacher: bool,
    model_root: Path,
    cache: ModelCache,
    page_cache: PageCache[Any] | None = None,
) -> dict[str, Any]:
    person_id = int(detail["person_id"])
    # The student's own counts by kind; the cohort's quartiles from the small all-kinds
    # aggregate, kept in `page_cache` under the course's data key like the teacher's page.
    activity = dashboard.weekly_activity(session, course, person_id=person_id)
    weekly = dashboard.student_weekly(activity, person_id)
    totals = dashboard.student_weekly_totals(activity, person_id)
    cohort = course_cohort(session, course, page_cache)
    week, actions = _("Week"), _("Actions")
    latest = detail.get("latest")
    has_model = bool(latest and latest.get("pass_probability") is not None)
    features = detail.get("features") or {}
    sliders = [
        {
            "feature": f,
            "label": label(f),
            "value": float(features[f]),
            "max": _slider_max(f, float(features[f])),
            "step": 0.05 if f == "share_activities" else 1,
        }
        for f in detail.get("actionable", [])
        if features.get(f) is not None
    ]
    view: dict[str, Any] = {
        "detail": detail,
        "latest": latest,
        "has_model": has_model,
        "no_events": weekly.empty,
        "weekly": totals.to_dict(orient="records"),
        "weekly_by_type": weekly.to_dict(orient="records"),
        "cohort": cohort.to_dict(orient="records"),
        "sliders": sliders if has_model else [],
        "labels": labels(
            sorted({f["feature"] for fs in (latest or {}).get("factors", {}).values() for f in fs})
        ),
        "charts": {},
        "sensitivity": {},
    }
    view["charts"]["engagement"] = charts.cohort_engagement(
        cohort,
        totals,
        week=week,
        actions=actions,
        median=_("Course median (anonymous)"),
        quartiles=_("Middle half of the course"),
        own_label=_("You") if not for_teacher else str(detail["fullname"]),
    )
    if for_teacher:
        if not weekly.empty:
            view["charts"]["weekly"] = charts.weekly_by_type(
                weekly, week=week, actions=actions, kind=_("Activity type")
            )
        if has_model:
            view["charts"]["history"] = charts.history(
                detail.get("history", []), date=_("Date"), probability=_("Chance of passing")
            )
            curves = dashboard.sensitivity(
                session,
                course,
                person_id,
                SENSITIVITY_FEATURES,
                model_root=model_root,
                cache=cache,
            )
            for feature, curve in curves.items():
                view["sensitivity"][feature] = {
                    "label": label(feature),
                    "points": curve,
                    "spec": charts.sensitivity(
                        curve,
                        _float(features.get(feature)),
                        feature=label(feature),
                        probability=_("Chance of passing"),
                    ),
                }
    return view


def course_cohort(
    session: Session, course: Course, page_cache: PageCache[Any] | None = None
) -> pd.DataFrame:
    """The cohort's weekly quartiles (`dashboard.cohort_weekly`), built once per change of the
    course's data when a cache is given: every student page shows them, and they aggregate the
    whole course's log."""

    def build() -> list[dict[str, Any]]:
        activity = dashboard.weekly_activity(session, course, by_category=False)
        frame = dashboard.cohort_weekly(activity)
        return [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]

    if page_cache is None:
        records = build()
    else:
        records = page_cache.get_or_build(("cohort", course_page_key(session, course)), build)
    # A fresh frame per view: the cached records are shared between threads.
    return pd.DataFrame(records, columns=["week", "q1", "median", "q3"])


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _slider_max(feature: str, value: float) -> float:
    """The slider's end: room to double the student's value, never past the feature's valid
    range (`ml.feature_info`), so that a what-if the page sends is never refused."""
    if feature == "days_since_last":
        wanted = float(max(30, round(value) + 7))
    else:
        wanted = float(max(10, round(value * 2 + 5)))
    return min(wanted, FEATURES[feature].maximum)


__all__ = ["ACTIONABLE", "course_view", "student_view", "students_csv"]

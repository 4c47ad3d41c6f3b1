"""A student's page: a teacher's view of one learner (weekly activity by type, prediction
history, main factors, sensitivity curves, what-if sliders), or a learner's own estimate with
their activity against the anonymous course median.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.models import Course
from lti_app.services import coursework, dashboard
from lti_app.services.course_data import student_roster
from lti_app.services.course_settings import (
    estimates_pass_mark,
    pass_mark_of,
    risk_threshold_of,
)
from lti_app.services.insights import ModelCache, active_models
from lti_app.services.page_cache import COURSE, ROSTER, SCORING, SYNC, CachedPage, PageCache
from lti_app.services.plans import learner_plan
from lti_app.web.i18n import chance_text
from lti_app.web.views import charts
from lti_app.web.views.wording import _, category_label, label, labels, ngettext
from ml.feature_info import FEATURES, SENSITIVITY
from ml.plan import Plan

#: What the cohort's weekly quartiles read (every student page shows them, and they aggregate
#: the whole course's log): the course's dates, the log a sync brings, the roster; and the
#: latest scoring, because a log imported from a file (`arche-predict import-logs`) records no
#: sync run, and the scoring that follows it is what tells the cache the log grew.
COHORT = CachedPage("cohort weekly", (COURSE, SCORING, SYNC, ROSTER))


def student_view(
    session: Session,
    course: Course,
    detail: Mapping[str, Any],
    *,
    for_teacher: bool,
    model_root: Path,
    cache: ModelCache,
    page_cache: PageCache[Any] | None = None,
    ml: MLSettings | None = None,
    min_group: int = 0,
) -> dict[str, Any]:
    """The page's data: the student's weekly activity against the cohort's, the latest
    estimate, the learner's plan (with `ml`) and, for a teacher, the charts behind it
    (`_teacher_charts`)."""
    person_id = int(detail["person_id"])
    # The student's own counts by kind; the cohort's quartiles from the small all-kinds
    # aggregate, kept in `page_cache` under what it reads (`COHORT`).
    activity = dashboard.weekly_activity(session, course, person_id=person_id)
    # The categories as people name them, in the chart's legend and its table.
    weekly = dashboard.student_weekly(activity, person_id)
    weekly = weekly.assign(category=weekly["category"].map(category_label))
    totals = dashboard.student_weekly_totals(activity, person_id)
    cohort = course_cohort(session, course, page_cache)
    small_group = None
    if not for_teacher and min_group:
        # A small class: no comparison with the course on a learner's page (#18, item 6).
        n_students = len(student_roster(session, course))
        if n_students < min_group:
            small_group = {"n": n_students, "min": min_group}
            cohort = cohort.iloc[0:0]
    latest = detail.get("latest")
    has_model = bool(latest and latest.get("pass_probability") is not None)
    settings = ml if ml is not None else MLSettings()
    view: dict[str, Any] = {
        # The lines every shown grade and chance stay on their side of (`i18n.sided`): the
        # mark the estimates were made for, and the course's at-risk threshold.
        "pass_mark": estimates_pass_mark(course, settings, active_models(session, course.id)),
        # The mark in force: after a teacher changes it, the page says the estimate still
        # reads the one it was made for, until the next scoring.
        "pass_mark_now": pass_mark_of(course, settings),
        "risk_threshold": risk_threshold_of(course, settings),
        "detail": detail,
        "latest": latest,
        "has_model": has_model,
        "no_events": weekly.empty,
        "small_group": small_group,
        "weekly": totals.to_dict(orient="records"),
        "weekly_by_type": weekly.to_dict(orient="records"),
        "cohort": cohort.to_dict(orient="records"),
        "sliders": sliders(detail) if has_model else [],
        "labels": labels(
            sorted({f["feature"] for fs in (latest or {}).get("factors", {}).values() for f in fs})
        ),
        "charts": {},
        "sensitivity": {},
        # Marks, work due, completion and modules opened (#16): the learner's own page shows
        # them too, since it is their own data.
        "coursework": coursework_view(session, course, person_id),
    }
    if has_model and ml is not None:
        found = learner_plan(
            session, course, person_id, settings=ml, model_root=model_root, cache=cache
        )
        view["plan"] = plan_view(
            found, view["coursework"], view["pass_mark"], view["risk_threshold"]
        )
    view["charts"]["engagement"] = charts.cohort_engagement(
        cohort,
        totals,
        week=_("Week"),
        actions=_("Actions"),
        median=_("Course median (anonymous)"),
        quartiles=_("Middle half of the course"),
        own_label=_("You") if not for_teacher else str(detail["fullname"]),
    )
    if for_teacher:
        _teacher_charts(view, session, course, detail, weekly, model_root=model_root, cache=cache)
    return view


def plan_view(
    plan: Plan | None, coursework: Mapping[str, Any], pass_mark: float, threshold: float
) -> dict[str, Any] | None:
    """The plan in the page's words: each lever from the learner's value to the proposed one,
    the estimate once followed, and the course's resources not opened yet (#17, item 4)."""
    if plan is None:
        return None
    rows = [
        {
            "feature": name,
            "label": label(name),
            "current": float(plan.current_values.get(name, 0.0)),
            "proposed": value,
            "step": FEATURES[name].step,
        }
        for name, value in plan.changes.items()
    ]
    return {
        "status": plan.status,
        "rows": rows,
        "grade": plan.grade,
        "p_pass": plan.p_pass,
        "pass_mark": pass_mark,
        "risk_threshold": threshold,
        "changes": dict(plan.changes),
        "not_opened": [m["name"] for m in coursework.get("not_opened", [])][:10],
        "n_not_opened": len(coursework.get("not_opened", [])),
    }


def sliders(detail: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One what-if slider per lever the student has a value for, in the levers' order, with the
    step and end their feature's metadata gives (`ml.feature_info`)."""
    features = detail.get("features") or {}
    return [
        {
            "feature": f,
            "label": label(f),
            "value": float(features[f]),
            "max": _slider_max(f, float(features[f])),
            "step": FEATURES[f].step,
        }
        for f in detail.get("actionable", [])
        if features.get(f) is not None
    ]


def _teacher_charts(
    view: dict[str, Any],
    session: Session,
    course: Course,
    detail: Mapping[str, Any],
    weekly: pd.DataFrame,
    *,
    model_root: Path,
    cache: ModelCache,
) -> None:
    """What only a teacher sees: the week's actions by type and, with a validated model, the
    prediction history and the sensitivity curves of the levers (`ml.feature_info`)."""
    if not weekly.empty:
        view["charts"]["weekly"] = charts.weekly_by_type(
            weekly, week=_("Week"), actions=_("Actions"), kind=_("Activity type")
        )
    if not view["has_model"]:
        return
    threshold = view["risk_threshold"]

    def words(p: float) -> str:
        return chance_text(p, threshold)

    view["charts"]["history"] = charts.history(
        detail.get("history", []),
        date=_("Date"),
        probability=_("Chance of passing"),
        chance_words=words,
    )
    features = detail.get("features") or {}
    curves = dashboard.sensitivity(
        session,
        course,
        int(detail["person_id"]),
        SENSITIVITY,
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
                chance_words=words,
            ),
        }


def course_cohort(
    session: Session, course: Course, page_cache: PageCache[Any] | None = None
) -> pd.DataFrame:
    """The cohort's weekly quartiles (`dashboard.cohort_weekly`), built once per change of
    what they read (`COHORT`) when a cache is given."""
    if page_cache is None:
        records = build_cohort(session, course)
    else:
        records = page_cache.get_or_build(
            COHORT.key(session, course), lambda: build_cohort(session, course)
        )
    # A fresh frame per view: the cached records are shared between threads.
    return pd.DataFrame(records, columns=["week", "q1", "median", "q3"])


def build_cohort(session: Session, course: Course) -> list[dict[str, Any]]:
    """The cohort's weekly quartiles as plain records (what `COHORT` keys in the cache)."""
    activity = dashboard.weekly_activity(session, course, by_category=False)
    frame = dashboard.cohort_weekly(activity)
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _slider_max(feature: str, value: float) -> float:
    """The slider's end: room to double the student's value (or, for a lever where less is
    more effort, such as the days since the last visit, a week past it and at least a month),
    never past the feature's valid range (`ml.feature_info`), so that a what-if the page sends
    is never refused."""
    info = FEATURES[feature]
    if info.effort < 0:
        wanted = float(max(30, round(value) + 7))
    else:
        wanted = float(max(10, round(value * 2 + 5)))
    return min(wanted, info.maximum)


# --------------------------------------------------------------------------- coursework (#16)


def _state_label(state: str) -> str:
    return {
        "submitted": _("Submitted"),
        "late": _("Submitted late"),
        "missing": _("Missing"),
        "not_due": _("Not yet due"),
        "open": _("Not submitted (no due date)"),
        "attempted": _("Attempted"),
        "offline": _("Handed in outside Moodle"),
    }.get(state, _("Unknown"))


def _module_kind(modname: str) -> str:
    return {
        "assign": _("Assignment"),
        "quiz": _("Quiz"),
        "page": _("Page"),
        "resource": _("File"),
        "url": _("Link"),
        "forum": _("Forum"),
        "book": _("Book"),
        "folder": _("Folder"),
        "lti": _("External tool"),
    }.get(modname, modname)


def _completion_label(state: int | None) -> str:
    return {
        0: _("Not completed"),
        1: _("Completed"),
        2: _("Completed (passed)"),
        3: _("Completed (failed)"),
    }.get(state if state is not None else -1, _("Unknown"))


def _unavailable_sentence(why: coursework.Unavailable) -> str:
    """One sentence saying which Moodle capability (or function) is missing, in the reader's
    language."""
    if why.kind == "capability":
        return _(
            "Not available: Moodle does not let this tool read it (its web-service account "
            "lacks the capability %(capability)s). A Moodle administrator can allow it.",
            capability=why.name,
        )
    if why.kind == "function":
        return _(
            "Not available: the function %(function)s is not in this tool's Moodle web "
            "service. A Moodle administrator can add it.",
            function=why.name,
        )
    return _("Not available: Moodle refused to give it (%(reason)s).", reason=why.text)


def _note(
    data: coursework.StudentCoursework, features: tuple[str, ...], empty: bool, nothing: str
) -> list[str]:
    """What to say instead of (or above) a table: why a feature is unavailable, that it was
    never read, or that it was read and there is nothing."""
    notes = [_unavailable_sentence(data.unavailable[f]) for f in features if f in data.unavailable]
    if notes:
        return notes
    if not any(f in data.read for f in features):
        return [_("Not read from Moodle yet: it comes with the next sync.")]
    return [nothing] if empty else []


def coursework_view(session: Session, course: Course, person_id: int) -> dict[str, Any]:
    """The page's marks, work due, completion and modules opened for one student, worded; a
    feature Moodle does not give says why in one sentence instead of an empty table."""
    data = coursework.student_coursework(session, course, person_id)
    work = [
        {
            "kind": _module_kind(w.modname),
            "name": w.name,
            "due_at": w.due_at,
            "state": w.state,
            "state_label": _state_label(w.state),
            "at": w.at,
        }
        for w in data.work
        if not (w.modname == "assign" and "assignments" in data.unavailable)
        and not (w.modname == "quiz" and "quizzes" in data.unavailable)
    ]
    missing = sum(1 for w in work if w["state"] == "missing")
    gone = "resources" in data.unavailable
    modules = [
        {
            "kind": _module_kind(m.modname),
            "name": m.name,
            "views": m.views,
            "last_at": m.last_at,
            "completion": m.completion,
            "completion_label": _completion_label(m.completion),
            "completed_at": m.completed_at,
        }
        for m in data.modules
    ]
    return {
        "marks": [
            {
                "name": _("Course total") if m.is_total else (m.name or _("Grade item")),
                "value": m.value,
                "max": m.grademax,
                "total": m.is_total,
            }
            for m in data.marks
        ],
        "work": work,
        "missing": missing,
        "missing_text": ngettext(
            "%(num)s piece of work missing", "%(num)s pieces of work missing", missing
        )
        if missing
        else "",
        "work_notes": _note(
            data, ("assignments", "quizzes"), not work, _("No assignment or quiz in this course.")
        ),
        # A feature Moodle no longer gives shows its reason, not rows kept from before.
        "completion": []
        if "completion" in data.unavailable
        else [m for m in modules if m["completion"] is not None],
        "completion_notes": _note(
            data,
            ("completion",),
            not data.completion,
            _("No activity of this course tracks completion."),
        ),
        "opened": [] if gone else [m for m in modules if m["views"]],
        "not_opened": [] if gone else [m for m in modules if not m["views"]],
        "modules_notes": _note(
            data, ("resources",), not modules, _("No course module read from Moodle.")
        ),
    }

"""What each engagement feature is: its name for people, its unit, the values it can take, and
who moves it.

Declared once here so that every surface reads the same facts: the pages and charts show the
label (translated by the web layer), the what-if validation and the API's OpenAPI schema read
the valid range and the levers, the what-if sliders take their order, step and end from here,
the at-risk table, its CSV export and the sensitivity curves take their features from the
tuples at the end of this module. No other module lists feature names (:mod:`ml.features`
computes them).

The ranges are the values :func:`ml.features.compute_features` can produce, made generous: a
time span is bounded by :data:`HORIZON_DAYS` (a century, longer than any course offering, so no
real course comes near it) and a count by :data:`MAX_COUNT` (a billion actions by one student).
They exist to refuse what no course can produce (``1e308``, a negative number of days), which
models would otherwise extrapolate to overflow, not to judge what is plausible.

**Effort.** Each feature declares here, once, its direction of effort: +1 when more of it means
more study (actions, sessions, time spent, active days, the share of weeks with activity and of
activities opened, and the counts of studying: content opened, forum reading and writing, quiz
attempts, submissions), -1 when less of it does (days since the last visit), 0 when neither
(hours of the day, ratios, trends, levels, and visits of navigation pages: the course page, an
activity's landing page, the grade report, feedback; opening the quiz's page is not studying,
and students who struggle revisit those pages: constraining them cost about 0.03 of R² on the
simulator, the other counts 0.003). Every grade model is constrained to be non-decreasing in
the effort direction of each feature (:func:`effort_signs`, read by :mod:`ml.models`), so a
what-if that adds effort never lowers the grade nor the pass chance, which derives from the same
grade distribution. A feature is *controllable* (a what-if lever) separately: the levers are
:data:`CONTROLLABLE`, a few of the effort features.

Only the base features are described; a ``z_<f>`` column is the cohort z-score of ``f`` and is
derived from it (see :attr:`FeatureInfo.z_scored`), never set directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from ml.events import CATEGORIES, DEFAULT_EVENT_TYPES, short_event_name
from ml.features import Z_FEATURES

#: The longest time span any feature measures: a century, in days.
HORIZON_DAYS: Final = 36_525
#: The largest count of actions (or sessions) one student can have in a course.
MAX_COUNT: Final = 10**9

Unit = Literal["count", "minutes", "hours", "days", "hour of day", "share", "level", "ratio"]


def N_(message: str) -> str:  # noqa: N802 - gettext's name for a no-op marker
    """Marks ``message`` as a label to translate and returns it unchanged.

    `ml` does not translate (it never imports Flask or Babel); Babel's extraction reads this
    module (`babel.cfg`; ``N_`` is one of its default keywords), so every label is a msgid of the
    catalogue, and the web layer passes it through gettext when it shows it.
    """
    return message


@dataclass(frozen=True)
class FeatureInfo:
    """One feature: ``name`` (the column), ``unit``, the closed range ``[minimum, maximum]`` of
    its values, whether the student ``controllable``-y moves it by studying differently (what-if
    forms offer only these; set from :data:`CONTROLLABLE`), ``effort``: +1 when more of it means
    more study, -1 when less does (days since the last visit), 0 when neither, and ``label``:
    its name for people, in English (the msgid the web layer translates).
    """

    name: str
    unit: Unit
    minimum: float
    maximum: float
    controllable: bool = False
    effort: Literal[-1, 0, 1] = 0
    label: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.minimum) and math.isfinite(self.maximum)):
            raise ValueError(f"{self.name}: a range has finite ends")
        if self.minimum > self.maximum:
            raise ValueError(f"{self.name}: minimum {self.minimum} > maximum {self.maximum}")

    @property
    def z_scored(self) -> bool:
        """Whether the models also see this feature as a cohort z-score (:attr:`z_name`), which a
        what-if changing it must move too."""
        return self.name in Z_FEATURES

    @property
    def z_name(self) -> str:
        """The column of the feature's cohort z-score (meaningful when :attr:`z_scored`)."""
        return f"z_{self.name}"

    @property
    def step(self) -> float:
        """The smallest change a person sets by hand (a what-if slider's step): a twentieth for
        a share or a ratio, which live between 0 and 1; one unit otherwise."""
        return 0.05 if self.unit in ("share", "ratio") else 1.0

    def contains(self, value: float) -> bool:
        """Whether ``value`` is a finite number inside the range (NaN and infinities are not)."""
        return math.isfinite(value) and self.minimum <= value <= self.maximum

    def range_text(self) -> str:
        """The range as people read it, e.g. ``0 to 52596000 (minutes)``."""
        return f"{_num(self.minimum)} to {_num(self.maximum)} ({self.unit})"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_MINUTES: Final = HORIZON_DAYS * 24 * 60
_HOURS: Final = HORIZON_DAYS * 24
_MAX_LEVEL: Final = 5  # cognitive depth 0..5, social breadth 0..3 (ml.events)


#: The features a student controls (each one's effort is declared below), in the order what-if
#: forms offer them.
CONTROLLABLE: Final[tuple[str, ...]] = (
    "total_time_min",
    "active_days",
    "n_sessions",
    "n_active",
    "share_activities",
    "n_mod_quiz_attempt_submitted",
    "n_mod_forum_post_created",
    "days_since_last",
)

#: Labels of the counts generated per event type and per category (their names come from
#: `ml.events`; the other features carry their label in their own line below).
_COUNT_LABELS: Final = {
    "n_mod_quiz_attempt_submitted": N_("Quiz attempts submitted"),
    "n_mod_quiz_attempt_started": N_("Quiz attempts started"),
    "n_mod_quiz_attempt_reviewed": N_("Quiz attempts reviewed"),
    "n_mod_quiz_course_module_viewed": N_("Quiz pages viewed"),
    "n_mod_forum_post_created": N_("Forum posts"),
    "n_mod_forum_discussion_viewed": N_("Forum discussions read"),
    "n_mod_assign_assessable_submitted": N_("Assignments submitted"),
    "n_mod_assign_course_module_viewed": N_("Assignment pages viewed"),
    "n_mod_resource_course_module_viewed": N_("Files opened"),
    "n_mod_page_course_module_viewed": N_("Pages read"),
    "n_mod_url_course_module_viewed": N_("Links followed"),
    "n_core_course_viewed": N_("Course page visits"),
    "n_gradereport_user_grade_report_viewed": N_("Grade report visits"),
    "n_cat_assessment": N_("Assessment actions"),
    "n_cat_collaboration": N_("Collaboration actions"),
    "n_cat_content": N_("Content actions"),
    "n_cat_feedback": N_("Feedback actions"),
    "n_cat_forum_read": N_("Forum reading"),
    "n_cat_forum_write": N_("Forum writing"),
    "n_cat_navigation": N_("Navigation actions"),
    "n_cat_other": N_("Other actions"),
}


#: Each activity category's name for people (`ml.events.CATEGORIES`), as the charts' legends
#: and tables show it, marked for translation like the labels above.
CATEGORY_LABELS: Final[Mapping[str, str]] = {
    "navigation": N_("Navigation"),
    "content": N_("Course content"),
    "assessment": N_("Quizzes and assignments"),
    "feedback": N_("Grades and feedback"),
    "forum_read": N_("Forum reading"),
    "forum_write": N_("Forum writing"),
    "collaboration": N_("Collaboration"),
    "other": N_("Other"),
}


#: Counts of visits to navigation pages (effort 0, see the module docstring); every other count
#: is an amount of study (effort +1).
_NAVIGATION: Final = frozenset(
    {
        "n_core_course_viewed",
        "n_mod_quiz_course_module_viewed",
        "n_mod_assign_course_module_viewed",
        "n_gradereport_user_grade_report_viewed",
        "n_cat_navigation",
        "n_cat_feedback",
        "n_cat_other",
    }
)


def _count(name: str, label: str | None = None) -> FeatureInfo:
    effort: Literal[0, 1] = 0 if name in _NAVIGATION else 1
    return FeatureInfo(
        name, "count", 0, MAX_COUNT, effort=effort, label=label or _COUNT_LABELS[name]
    )


def _all() -> dict[str, FeatureInfo]:
    events = [f"n_{short_event_name(e)}" for e in DEFAULT_EVENT_TYPES]
    infos = [
        # Every count but the navigation visits is an amount of study: effort +1 (see the
        # module docstring).
        _count("n_actions", N_("Actions in the course")),
        *(_count(n) for n in events),
        *(_count(f"n_cat_{c}") for c in CATEGORIES),
        _count("n_active", N_("Active actions (submissions, posts, attempts)")),
        _count("n_passive", N_("Passive actions (views)")),
        FeatureInfo("active_ratio", "share", 0, 1, label=N_("Share of active actions")),
        FeatureInfo(
            "total_time_min", "minutes", 0, _MINUTES, effort=1, label=N_("Time spent (minutes)")
        ),
        _count("n_sessions", N_("Study sessions")),
        FeatureInfo(
            "mean_session_min", "minutes", 0, _MINUTES, label=N_("Session length (minutes)")
        ),
        FeatureInfo("active_days", "days", 0, HORIZON_DAYS, effort=1, label=N_("Active days")),
        FeatureInfo("mean_hour", "hour of day", 0, 24, label=N_("Usual hour of activity")),
        FeatureInfo(
            "mean_interval_h", "hours", 0, _HOURS, label=N_("Hours between actions (mean)")
        ),
        FeatureInfo(
            "days_since_last",
            "days",
            0,
            HORIZON_DAYS,
            effort=-1,
            label=N_("Days since last activity"),
        ),
        FeatureInfo("weekly_entropy", "ratio", 0, 1, label=N_("Regularity over the week")),
        FeatureInfo(
            "active_weeks_share",
            "share",
            0,
            1,
            effort=1,
            label=N_("Share of weeks with activity"),
        ),
        FeatureInfo("trend", "ratio", -1, 1, label=N_("Activity trend")),
        FeatureInfo(
            "share_activities", "share", 0, 1, effort=1, label=N_("Share of activities opened")
        ),
        FeatureInfo("cognitive_depth", "level", 0, _MAX_LEVEL, label=N_("Depth of engagement")),
        FeatureInfo("cognitive_depth_max", "level", 0, _MAX_LEVEL, label=N_("Deepest engagement")),
        FeatureInfo("social_breadth", "level", 0, _MAX_LEVEL, label=N_("Social engagement")),
        FeatureInfo(
            "social_breadth_max", "level", 0, _MAX_LEVEL, label=N_("Widest social engagement")
        ),
        FeatureInfo("course_progress", "share", 0, 1, label=N_("Share of the term elapsed")),
    ]
    return {i.name: replace(i, controllable=i.name in CONTROLLABLE) for i in infos}


#: Every base feature of :func:`ml.features.feature_names` (default event types), by name.
FEATURES: Final[Mapping[str, FeatureInfo]] = _all()

#: The features the at-risk table and the API's ``engagement`` show for each student, in order.
ENGAGEMENT: Final[tuple[str, ...]] = (
    "n_actions",
    "total_time_min",
    "active_days",
    "days_since_last",
    "trend",
)

#: The engagement columns of the at-risk CSV export, in their order (a spreadsheet's columns:
#: kept stable for the sheets and scripts that read them).
CSV_ENGAGEMENT: Final[tuple[str, ...]] = ("trend", "days_since_last", "active_days", "n_actions")

#: The levers a teacher sees as sensitivity curves on a student's page (each curve is a batch
#: of predictions, so a few of the levers, not all), in the page's order.
SENSITIVITY: Final[tuple[str, ...]] = (
    "active_days",
    "total_time_min",
    "n_mod_quiz_attempt_submitted",
)


def info(name: str) -> FeatureInfo:
    """The description of feature ``name``; KeyError for a name no feature has."""
    return FEATURES[name]


def effort_of(column: str) -> Literal[-1, 0, 1]:
    """The direction of effort of a model column: its feature's :attr:`FeatureInfo.effort`,
    the base feature's for a cohort z-score ``z_<f>`` (which rises with ``f``), 0 for a column
    no feature describes. The models constrain their output to be non-decreasing in
    ``effort * column`` (see :mod:`ml.models`)."""
    base = FEATURES.get(column)
    if base is None and column.startswith("z_"):
        base = FEATURES.get(column.removeprefix("z_"))
        if base is not None and not base.z_scored:
            base = None
    return base.effort if base is not None else 0


def effort_signs(columns: Sequence[str]) -> tuple[int, ...]:
    """:func:`effort_of` of each of ``columns``, in order (a ``monotonic_cst`` vector)."""
    return tuple(int(effort_of(c)) for c in columns)


#: Units of amounts that pile up with no bound (action counts, minutes, hours between visits):
#: heavy-tailed, so the linear models may read them as ``log1p`` (see :func:`log_columns`).
LOG_UNITS: Final = ("count", "minutes", "hours")


def log_columns(columns: Sequence[str]) -> tuple[int, ...]:
    """Positions, in ``columns``, of the features a linear model may read on a log scale: the
    base features counted in :data:`LOG_UNITS` (never a cohort z-score, already centred).

    Why: early in a term a few students have ten times the typical count of an action, and a
    straight line through them predicts their grade far past the scale while flattening everyone
    else's; ``log1p`` is non-decreasing, so a model monotone in the logged value stays monotone
    in effort (:mod:`ml.models` offers both scales to its search)."""
    return tuple(
        i
        for i, c in enumerate(columns)
        if (f := FEATURES.get(c)) is not None and f.unit in LOG_UNITS and f.minimum >= 0
    )


__all__ = [
    "CONTROLLABLE",
    "CSV_ENGAGEMENT",
    "ENGAGEMENT",
    "FEATURES",
    "HORIZON_DAYS",
    "LOG_UNITS",
    "MAX_COUNT",
    "N_",
    "SENSITIVITY",
    "FeatureInfo",
    "effort_of",
    "effort_signs",
    "info",
    "log_columns",
]

"""What each engagement feature is: its unit, the values it can take, and who moves it.

Declared once here so that every surface reads the same facts: the what-if validation and the
API's OpenAPI schema read the valid range, the what-if sliders never go past it, and (as they
move over) the pages and exports can read units and effort directions from the same place.

The ranges are the values :func:`ml.features.compute_features` can produce, made generous: a
time span is bounded by :data:`HORIZON_DAYS` (a century, longer than any course offering, so no
real course comes near it) and a count by :data:`MAX_COUNT` (a billion actions by one student).
They exist to refuse what no course can produce (``1e308``, a negative number of days), which
models would otherwise extrapolate to overflow, not to judge what is plausible.

Only the base features are described; a ``z_<f>`` column is the cohort z-score of ``f`` and is
derived from it (see :attr:`FeatureInfo.z_scored`), never set directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from ml.events import CATEGORIES, DEFAULT_EVENT_TYPES, short_event_name
from ml.features import Z_FEATURES

#: The longest time span any feature measures: a century, in days.
HORIZON_DAYS: Final = 36_525
#: The largest count of actions (or sessions) one student can have in a course.
MAX_COUNT: Final = 10**9

Unit = Literal["count", "minutes", "hours", "days", "hour of day", "share", "level", "ratio"]


@dataclass(frozen=True)
class FeatureInfo:
    """One feature: ``name`` (the column, also the key of its translated label), ``unit``, the
    closed range ``[minimum, maximum]`` of its values, whether the student ``controllable``-y
    moves it by studying differently (what-if forms offer only these), and ``effort``: +1 when
    more of it means more study, -1 when less does (days since the last visit), 0 when neither.
    """

    name: str
    unit: Unit
    minimum: float
    maximum: float
    controllable: bool = False
    effort: Literal[-1, 0, 1] = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.minimum) and math.isfinite(self.maximum)):
            raise ValueError(f"{self.name}: a range has finite ends")
        if self.minimum > self.maximum:
            raise ValueError(f"{self.name}: minimum {self.minimum} > maximum {self.maximum}")

    @property
    def z_scored(self) -> bool:
        """Whether the models also see this feature as a cohort z-score (``z_<name>``), which a
        what-if changing it must move too."""
        return self.name in Z_FEATURES

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


def _count(name: str, *, controllable: bool = False, effort: Literal[-1, 0, 1] = 0) -> FeatureInfo:
    return FeatureInfo(name, "count", 0, MAX_COUNT, controllable, effort)


def _all() -> dict[str, FeatureInfo]:
    infos = [
        _count("n_actions", effort=1),
        *(_count(f"n_{short_event_name(e)}") for e in DEFAULT_EVENT_TYPES),
        *(_count(f"n_cat_{c}") for c in CATEGORIES),
        _count("n_active", controllable=True, effort=1),
        _count("n_passive"),
        FeatureInfo("active_ratio", "share", 0, 1),
        FeatureInfo("total_time_min", "minutes", 0, _MINUTES, controllable=True, effort=1),
        _count("n_sessions", controllable=True, effort=1),
        FeatureInfo("mean_session_min", "minutes", 0, _MINUTES),
        FeatureInfo("active_days", "days", 0, HORIZON_DAYS, controllable=True, effort=1),
        FeatureInfo("mean_hour", "hour of day", 0, 24),
        FeatureInfo("mean_interval_h", "hours", 0, _HOURS),
        FeatureInfo("days_since_last", "days", 0, HORIZON_DAYS, controllable=True, effort=-1),
        FeatureInfo("weekly_entropy", "ratio", 0, 1),
        FeatureInfo("active_weeks_share", "share", 0, 1),
        FeatureInfo("trend", "ratio", -1, 1),
        FeatureInfo("share_activities", "share", 0, 1, controllable=True, effort=1),
        FeatureInfo("cognitive_depth", "level", 0, _MAX_LEVEL),
        FeatureInfo("cognitive_depth_max", "level", 0, _MAX_LEVEL),
        FeatureInfo("social_breadth", "level", 0, _MAX_LEVEL),
        FeatureInfo("social_breadth_max", "level", 0, _MAX_LEVEL),
        FeatureInfo("course_progress", "share", 0, 1),
    ]
    # The per-event counts a student moves directly (quizzes submitted, forum posts written).
    for name in ("n_mod_quiz_attempt_submitted", "n_mod_forum_post_created"):
        infos = [_count(name, controllable=True, effort=1) if i.name == name else i for i in infos]
    return {i.name: i for i in infos}


#: Every base feature of :func:`ml.features.feature_names` (default event types), by name.
FEATURES: Final[Mapping[str, FeatureInfo]] = _all()

#: The features a student controls, in the order what-if forms offer them.
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


def info(name: str) -> FeatureInfo:
    """The description of feature ``name``; KeyError for a name no feature has."""
    return FEATURES[name]


__all__ = ["CONTROLLABLE", "FEATURES", "HORIZON_DAYS", "MAX_COUNT", "FeatureInfo", "info"]

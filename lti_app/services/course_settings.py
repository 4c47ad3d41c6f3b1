"""What a teacher may set for their course: the pass mark and the "at risk" threshold.

The pass mark decides what "passing" means for training and for every chance shown, so it is
read in one place (`pass_mark_of`) by scoring, pages, exports and the CLI. Three sources, the
first present wins:

1. a teacher's setting for the course (`Course.pass_mark`, on the tool's scale);
2. Moodle's "Grade to pass" of the course total, which only the companion plugin returns
   (`local_archepredict_get_course_grading`): Moodle compares it with the raw total whatever a
   user's own maximum, so it is put on the tool's scale as `gradepass / grademax` of the item;
3. the configured default (`[ml] pass_mark`).

A change is recorded (who, when) and audited; the estimates follow at the next scoring, since a
model trained for another pass mark is a different model (its data hash includes the mark).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

import numpy as np
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.db import utcnow
from lti_app.models import Course, ModelVersion
from lti_app.services import audit
from ml.dataset import final_grades

PassMarkSource = Literal["teacher", "moodle", "default"]


class SettingError(ValueError):
    """A value a teacher typed that cannot be used, worded for them."""


@dataclass(frozen=True)
class PassMark:
    """The course's pass mark on the tool's scale (`scale`, 20 by default) and its source."""

    value: float
    scale: float
    source: PassMarkSource
    set_at: datetime | None = None
    set_by: int | None = None

    @property
    def share(self) -> float:
        return self.value / self.scale


def moodle_pass_mark(course: Course, scale: float) -> float | None:
    """Moodle's "Grade to pass" of the course total on the tool's scale, None when Moodle has
    none (0), the plugin never told it, or its range is degenerate."""
    gradepass, grademax = course.moodle_gradepass, course.moodle_grademax
    if gradepass is None or grademax is None or gradepass <= 0 or grademax <= 0:
        return None
    # The very arithmetic that puts a student's total on the scale (`ml.dataset.final_grades`),
    # unrounded: a student at exactly Moodle's grade to pass (50/60) is at the mark, where a
    # mark rounded to 16.666667 had put their 16.666666666666668 under it, as failing.
    return float(final_grades(np.array([gradepass]), grademax, 0.0, scale)[0])


def pass_mark_of(course: Course, ml: MLSettings) -> PassMark:
    """The pass mark in force for the course (see the module docstring for the order)."""
    scale = float(ml.grade_max)
    if course.pass_mark is not None:
        return PassMark(
            float(course.pass_mark),
            scale,
            "teacher",
            set_at=course.pass_mark_set_at,
            set_by=course.pass_mark_set_by,
        )
    from_moodle = moodle_pass_mark(course, scale)
    if from_moodle is not None:
        return PassMark(from_moodle, scale, "moodle")
    return PassMark(float(ml.pass_mark), scale, "default")


def trained_pass_mark(versions: Mapping[str, ModelVersion]) -> float | None:
    """The pass mark the active models (`insights.active_models`: by task) were trained for,
    which every shown chance reads: after a teacher changes the mark, the estimates keep the
    old one until the next scoring. The classifier's first (the chance is its output), then
    the regression's; None when neither recorded one."""
    for task in ("classification", "regression"):
        version = versions.get(task)
        if version is not None and version.metadata_json.get("pass_mark") is not None:
            return float(version.metadata_json["pass_mark"])
    return None


def estimates_pass_mark(
    course: Course, ml: MLSettings, versions: Mapping[str, ModelVersion]
) -> float:
    """The pass mark the shown estimates were made for (`trained_pass_mark`), else the one in
    force: the line a shown grade is kept on its side of, beside its chance."""
    trained = trained_pass_mark(versions)
    return trained if trained is not None else pass_mark_of(course, ml).value


def risk_threshold_of(course: Course, ml: MLSettings) -> float:
    """The pass chance under which a student of the course is "at risk", to a hundredth of a
    percent: what the dashboard states ("33.33 %"), so that the rule a teacher reads is the one
    every flag applies (a typed 34.004 % would read "34 %" yet flag a chance of 34.002 %)."""
    value = course.risk_threshold if course.risk_threshold is not None else ml.risk_threshold
    return stated(float(value), 4)  # "33.33 %": two decimals of a percent


def stated(value: float, places: int) -> float:
    """`value` as a page states it with at most `places` decimals: Babel's rounding (half to
    even, of the number's decimal text), so 2.675 is "2.68" as `|mark` writes it."""
    quantum = Decimal(1).scaleb(-places)
    return float(Decimal(str(float(value))).quantize(quantum, rounding=ROUND_HALF_EVEN))


def parse_number(text: str, what: str) -> float | None:
    """A number typed in a form or on the command line ("12", "12,5", "12.5"); empty is None
    (back to the default). Anything else is a `SettingError` naming the field."""
    cleaned = text.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
    if not cleaned:
        return None
    try:
        value = float(cleaned.replace(",", "."))
    except ValueError:
        raise SettingError(f"{what}: {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise SettingError(f"{what}: {text.strip()!r} is not a number")
    return value


def set_pass_mark(
    session: Session,
    course: Course,
    value: float | None,
    ml: MLSettings,
    *,
    person_id: int | None,
    via: str,
) -> PassMark:
    """Set (or, with None, clear) the course's own pass mark; returns the one now in force."""
    scale = float(ml.grade_max)
    if value is not None and not (0 < value <= scale):
        raise SettingError(f"the pass mark must be above 0 and at most {scale:g} (the scale)")
    before = pass_mark_of(course, ml)
    course.pass_mark = value
    course.pass_mark_set_by = person_id if value is not None else None
    course.pass_mark_set_at = utcnow() if value is not None else None
    session.flush()
    after = pass_mark_of(course, ml)
    audit.record(
        session,
        "course.pass_mark",
        "accepted",
        via,
        person_id=person_id,
        course_id=course.id,
        details={"before": before.value, "after": after.value, "source": after.source},
    )
    return after


def set_risk_threshold(
    session: Session,
    course: Course,
    value: float | None,
    ml: MLSettings,
    *,
    person_id: int | None,
    via: str,
) -> float:
    """Set (or clear) the course's at-risk threshold, a pass chance strictly between 5 % and
    95 % (chances are never shown beyond those: see the README's "Predictions")."""
    if value is not None and not (0.05 <= value <= 0.95):
        raise SettingError("the at-risk threshold must be a chance between 5 % and 95 %")
    before = risk_threshold_of(course, ml)
    course.risk_threshold = value
    session.flush()
    after = risk_threshold_of(course, ml)
    audit.record(
        session,
        "course.risk_threshold",
        "accepted",
        via,
        person_id=person_id,
        course_id=course.id,
        details={"before": before, "after": after},
    )
    return after


def refresh_moodle_pass_mark(course: Course, gradepass: float, grademax: float) -> None:
    """Keep what Moodle's gradebook says (raw, with the item's own maximum); a total with no
    range (a text or empty gradebook) has no usable pass mark."""
    usable = gradepass > 0 and grademax > 0
    course.moodle_gradepass = gradepass if usable else None
    course.moodle_grademax = grademax if grademax > 0 else None

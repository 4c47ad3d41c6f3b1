"""Grade items Moodle leaves out without a word: the activities the token user cannot view.

``gradereport_user_get_grade_items`` drops the grade item of every activity whose
``mod/<modname>:view`` capability the token user lacks (Moodle's user report hides an activity
the viewer cannot see), with no error and no warning: without ``mod/quiz:view`` the quiz's
column simply vanishes and every course total looks complete. ``core_grades_get_gradeitems``
lists the course's grade items without that filter (it needs only access to the course), so the
difference between the two is what the report hides.

Which module an item belongs to is not in ``core_grades_get_gradeitems``'s answer (id, name and
category only). It is read from the course contents (an activity of the same name) when the
token user can see the activity there; an activity hidden by a missing ``mod/*:view`` is hidden
from the contents too, and the item is then named by its activity's name only.

Pure functions over the typed answers: ``compare_grade_items`` takes what the probes read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moodle_client.requirements import normalise_label
from moodle_client.types import CourseSection, GradeReport

__all__ = [
    "GRADEITEMS_FUNCTION",
    "CourseGradeItem",
    "GradeCoverage",
    "HiddenGradeItem",
    "compare_grade_items",
    "course_grade_items_from_json",
]

#: Every grade item of a course (Moodle 4.2+), without the user report's visibility filter.
GRADEITEMS_FUNCTION = "core_grades_get_gradeitems"


@dataclass(frozen=True)
class CourseGradeItem:
    """One item of ``core_grades_get_gradeitems`` (activity and manual items; no category or
    course total)."""

    id: int
    name: str


def course_grade_items_from_json(data: Any) -> tuple[CourseGradeItem, ...]:
    """``{"gradeItems": [{"id": "3", "itemname": …}], "warnings": []}`` (Moodle sends the id as
    a string). Entries without a numeric id are skipped."""
    items = data.get("gradeItems") if isinstance(data, dict) else None
    out: list[CourseGradeItem] = []
    for entry in items if isinstance(items, list) else []:
        if not isinstance(entry, dict):
            continue
        raw_id = str(entry.get("id", "")).strip()
        if raw_id.isdigit():
            out.append(CourseGradeItem(int(raw_id), str(entry.get("itemname") or "")))
    return tuple(out)


@dataclass(frozen=True)
class HiddenGradeItem:
    """A grade item of the course that the user report did not return."""

    itemid: int
    name: str
    #: The activity's module (``quiz``), when the course contents show it; else None.
    modname: str | None

    @property
    def capability(self) -> str | None:
        return f"mod/{self.modname}:view" if self.modname else None

    @property
    def advice(self) -> str:
        if self.capability:
            what = f"'{self.capability}'"
        else:
            what = (
                "the view capability of its activity's module (mod/<module>:view, e.g. "
                "mod/quiz:view for a quiz; Moodle hides the activity itself from the token "
                "user, so its module cannot be read)"
            )
        return (
            f"grade item '{self.name}' (id {self.itemid}) is left out of the grades Moodle "
            f"returns, without an error: allow {what} for the web-service user's role in the "
            "course."
        )


@dataclass(frozen=True)
class GradeCoverage:
    """The outcome of the comparison. ``compared`` is False when it could not be made, with
    ``reason`` saying why (then ``hidden`` is empty)."""

    compared: bool
    hidden: tuple[HiddenGradeItem, ...] = ()
    reason: str = ""


def compare_grade_items(
    course_items: Sequence[CourseGradeItem] | None,
    report: GradeReport | None,
    sections: Sequence[CourseSection] | None,
) -> GradeCoverage:
    """The course's grade items that the user report left out, each with its module when known.

    ``course_items`` is None when ``core_grades_get_gradeitems`` could not be called, ``report``
    None when the grade report failed (its error is reported apart), ``sections`` None when the
    contents could not be read (modules are then unknown).
    """
    if course_items is None:
        return GradeCoverage(
            False,
            reason=(
                f"add '{GRADEITEMS_FUNCTION}' to the token's external service to let this "
                "check find grade items that Moodle leaves out without an error"
            ),
        )
    if report is None:
        return GradeCoverage(False, reason="the grade report could not be read")
    if not report.usergrades:
        return GradeCoverage(
            False, reason="nobody in the course has a grade report yet, so none can be compared"
        )
    returned = {item.id for user in report.usergrades for item in user.items}
    by_name: dict[str, str] = {}
    for section in sections or ():
        for module in section.modules:
            by_name.setdefault(normalise_label(module.name), module.modname)
    hidden = tuple(
        HiddenGradeItem(item.id, item.name, by_name.get(normalise_label(item.name)))
        for item in course_items
        if item.id not in returned
    )
    return GradeCoverage(True, hidden)

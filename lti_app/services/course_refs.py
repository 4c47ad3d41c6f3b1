"""Which course a command means: `--course` and `--past` take the tool's course id (as
`course list` prints it), the Moodle course id, or the course's short name.

A bare number may be both a tool id and another course's Moodle id: then the command must say
which, with `id:N` or `moodle:N`, rather than act on a guess. Short names are matched exactly,
then without regard to case when that finds one course.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.models import Course, Enrolment


class CourseRefError(LookupError):
    """No course, or several, answer to the reference; the message says what to type."""


def _describe(course: Course) -> str:
    name = f" {course.shortname}" if course.shortname else ""
    return f"course {course.id} (Moodle course {course.moodle_course_id}{name})"


def _one(found: list[Course], ref: str, hint: str) -> Course:
    unique = {c.id: c for c in found}
    if len(unique) == 1:
        return next(iter(unique.values()))
    if not unique:
        raise CourseRefError(f"no course '{ref}'; see `arche-predict course list`")
    listed = "; ".join(_describe(c) for c in sorted(unique.values(), key=lambda c: c.id))
    raise CourseRefError(f"'{ref}' names several courses ({listed}): {hint}")


def resolve_course(session: Session, ref: str | int) -> Course:
    """The course `ref` names: `12` (tool id or Moodle id), `id:12`, `moodle:1234`, `ALGO101`."""
    text = str(ref).strip()
    if not text:
        raise CourseRefError("an empty course reference; see `arche-predict course list`")
    kind, _, value = text.partition(":")
    if value and kind in {"id", "moodle"}:
        if not value.isdigit():
            raise CourseRefError(f"'{text}': {kind}: takes a number")
        number = int(value)
        if kind == "id":
            course = session.get(Course, number)
            return _one([course] if course else [], text, "")
        return _one(
            list(session.scalars(select(Course).where(Course.moodle_course_id == number))),
            text,
            "give the tool's id instead (`course list`)",
        )
    if text.isdigit():
        number = int(text)
        by_id = session.get(Course, number)
        by_moodle = list(session.scalars(select(Course).where(Course.moodle_course_id == number)))
        return _one(
            ([by_id] if by_id else []) + by_moodle,
            text,
            f"write id:{number} for the tool's course {number}, or moodle:{number} for the "
            f"Moodle course {number}",
        )
    exact = list(session.scalars(select(Course).where(Course.shortname == text)))
    if not exact:
        exact = list(
            session.scalars(select(Course).where(func.lower(Course.shortname) == text.lower()))
        )
    return _one(exact, text, "give the tool's id instead (`course list`)")


def student_count(session: Session, course: Course) -> int:
    """The course's enrolled students (what scoring needs; 0 means `no_students`)."""
    return int(
        session.scalar(
            select(func.count(Enrolment.id)).where(
                Enrolment.course_id == course.id, Enrolment.role == "student"
            )
        )
        or 0
    )

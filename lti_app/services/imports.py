"""File imports: Moodle's log-report download and gradebook export (CSV, English or French).

This is how the original ARCHE prototype got its data (`logs_from_logs.csv`,
`notes_from_notes.csv`), and how a course without the companion plugin or a log replica gets
its history in. The parsers in `moodle_client` validate a whole file before returning anything,
so a refused file writes nothing; here, rows are stored idempotently (a log row's identity is its
content hash, a grade's is its person and item), so importing the same file twice adds nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.db import utcnow
from lti_app.models import Course, Enrolment, GradeItem, KeptObjection, LogEvent, Person
from lti_app.services.consent import objections_kept, restore_objections
from lti_app.services.sync import GradeRow, dialect_insert, set_grades, store_log_rows
from moodle_client.csv_grades import GradeExport, read_grades_csv
from moodle_client.csv_logs import UnknownKind, scan_log_csv
from moodle_client.csvfiles import CsvImportError

# A gradebook export carries no grade item id; its course total is stored under this one,
# unless a web-service sync already created the course's real course-total item.
CSV_COURSE_TOTAL_ITEM_ID = 0


@dataclass(frozen=True)
class LogImportResult:
    rows: int
    added: int
    layout: str
    unknown_event_rows: int
    # Unrecognised descriptions by kind, each with its count and first line (kept, not dropped).
    unknown_kinds: tuple[UnknownKind, ...] = ()

    @property
    def duplicates(self) -> int:
        return self.rows - self.added


def _people_by_fullname(session: Session, site_id: int) -> dict[str, int]:
    """The site's Moodle ids by full name, for log lines that name a user without an id;
    a name several people share is left out (guessing would credit one with another's work)."""
    ids: dict[str, set[int]] = {}
    for name, uid in session.execute(
        select(Person.fullname, Person.moodle_user_id).where(
            Person.site_id == site_id, Person.moodle_user_id.is_not(None)
        )
    ):
        if name and uid is not None:
            ids.setdefault(name, set()).add(uid)
    return {name: next(iter(found)) for name, found in ids.items() if len(found) == 1}


def import_log_file(
    session: Session,
    course: Course,
    source: bytes | str | os.PathLike[str],
    *,
    timezone: str,
    encoding: str | None = None,
) -> LogImportResult:
    """Validate a whole log download while storing its rows; raises `CsvImportError` untouched,
    with nothing of the file stored.

    The file's lines are read and checked first (`scan_log_csv`); its events are then derived
    one by one as the database stores them (`LogScan.rows` into `store_log_rows`), so that on
    PostgreSQL the server's inserting overlaps our reading instead of following it. An event
    of another course met on the way makes the store roll back what it had sent.
    """
    scan = scan_log_csv(
        source,
        courseid=course.moodle_course_id,
        timezone=timezone,
        encoding=encoding,
        users_by_fullname=_people_by_fullname(session, course.site_id),
    )
    added = store_log_rows(session, course.site_id, "csv", scan.rows())
    _link_people(session, course, scan.people)
    session.flush()
    return LogImportResult(
        rows=len(scan),
        added=added,
        layout=scan.layout,
        unknown_event_rows=scan.unknown_event_rows,
        unknown_kinds=scan.unknown_kinds,
    )


def _link_people(session: Session, course: Course, people: Mapping[int, str]) -> None:
    """Make sure every acting user of the file is a known person of the site.

    A person created earlier from a gradebook export (a name, no Moodle id) gets the id when the
    names match exactly and only one such person exists; otherwise a new person is created.

    In bulk: a 100k-event download names thousands of people, and three statements per person
    were two thirds of an import's time. Here, one query for the site's known Moodle ids, one
    for its people without one, and one INSERT run over all the new people. A person that another
    process (a roster sync) inserted meanwhile is left as it is.
    """
    if not people:
        return
    site_id = course.site_id
    known = set(
        session.scalars(
            select(Person.moodle_user_id).where(
                Person.site_id == site_id, Person.moodle_user_id.is_not(None)
            )
        )
    )
    unlinked: dict[str, list[Person]] = {}
    for person in session.scalars(
        select(Person).where(Person.site_id == site_id, Person.moodle_user_id.is_(None))
    ):
        unlinked.setdefault(person.fullname, []).append(person)
    now = utcnow()
    new: list[dict[str, object]] = []
    for user_id, fullname in people.items():
        if user_id in known:
            continue
        namesakes = unlinked.get(fullname, [])
        if len(namesakes) == 1:
            namesakes.pop().moodle_user_id = user_id
        else:
            new.append(
                {
                    "site_id": site_id,
                    "moodle_user_id": user_id,
                    "fullname": fullname,
                    "created_at": now,
                }
            )
    session.flush()
    if new:
        # One statement compiled once, run over all the new people (executemany): a
        # multi-row VALUES would be compiled anew for every chunk, at ~0.2 ms a row.
        insert = dialect_insert(session)(Person).on_conflict_do_nothing(
            index_elements=["site_id", "moodle_user_id"]
        )
        session.execute(insert, new)
    # Anyone given a Moodle user id here may be an erased learner coming back: their
    # objections come back with them (`kept_objection`).
    if objections_kept(session, site_id):
        rows = session.execute(
            select(Person.moodle_user_id, Person.id)
            .join(KeptObjection, KeptObjection.moodle_user_id == Person.moodle_user_id)
            .where(Person.site_id == site_id)
        ).all()
        restore_objections(session, site_id, {int(u): int(p) for u, p in rows if u is not None})


@dataclass(frozen=True)
class GradeImportResult:
    rows: int
    matched: int
    created: int
    column: str
    unmatched_lines: tuple[int, ...]
    # Names the file shares with several people of the course's log (or the site): those rows
    # were not linked to anyone's events (a new person holds the grade).
    namesakes: tuple[str, ...] = ()


def _course_total_item(session: Session, course: Course, grade_max: float) -> GradeItem:
    """The course's course-total item, created out of `grade_max` (the file's largest
    maximum) when a web-service sync has not made it. Each grade carries its own maximum, so an
    existing item's `grademax` is only updated when the caller's maximum is larger."""
    item = session.scalar(
        select(GradeItem)
        .where(GradeItem.course_id == course.id, GradeItem.itemtype == "course")
        .order_by(GradeItem.moodle_item_id.desc())
        .limit(1)
    )
    if item is None:
        item = GradeItem(
            course_id=course.id,
            moodle_item_id=CSV_COURSE_TOTAL_ITEM_ID,
            itemname="Course total",
            itemtype="course",
            grademin=0.0,
            grademax=grade_max,
        )
        session.add(item)
        session.flush()
    elif grade_max > item.grademax:
        item.grademax = grade_max
    if course.grade_max is None:
        course.grade_max = item.grademax
    return item


def _course_actors(session: Session, course: Course) -> dict[str, list[Person]]:
    """The people acting in the course's stored log, by full name: the gradebook's students
    are looked for among them first, since a site has namesakes from other offerings."""
    ids = select(LogEvent.userid).where(
        LogEvent.site_id == course.site_id, LogEvent.courseid == course.moodle_course_id
    )
    actors: dict[str, list[Person]] = {}
    for person in session.scalars(
        select(Person).where(Person.site_id == course.site_id, Person.moodle_user_id.in_(ids))
    ):
        actors.setdefault(person.fullname, []).append(person)
    return actors


def _find_person(
    session: Session,
    site_id: int,
    email: str,
    fullname: str,
    actors: Mapping[str, list[Person]],
) -> tuple[Person | None, bool]:
    """The known person a gradebook row stands for, and whether namesakes made it ambiguous.

    By email; else the only person of that name acting in this course's log; else the only one
    of that name on the site. Two namesakes in the course (or, with none there, on the site)
    are never guessed between: a grade given to the wrong student is worse than none.
    """
    if email:
        person = session.scalar(
            select(Person).where(
                Person.site_id == site_id, func.lower(Person.email) == email.lower()
            )
        )
        if person is not None:
            return person, False
    if not fullname:
        return None, False
    in_course = actors.get(fullname, [])
    if len(in_course) == 1:
        return in_course[0], False
    if in_course:
        return None, True
    matches = list(
        session.scalars(
            select(Person).where(Person.site_id == site_id, Person.fullname == fullname)
        )
    )
    if len(matches) == 1:
        return matches[0], False
    return None, len(matches) > 1


def _check_scale(export: GradeExport) -> None:
    """Refuse an export whose course totals cannot be put on a known scale."""
    column = next(c for c in export.columns if c.header == export.course_total_column)
    if column.display not in ("real", "percentage"):
        raise CsvImportError(
            1,
            f"the course total '{column.header}' is not a number (display type "
            f"'{column.display}'): export the course total as Real or Percentage",
        )
    for row in export.rows:
        if row.course_total is not None and row.course_total_max is None:
            raise CsvImportError(
                row.line,
                f"the course total '{column.header}' is in points and the file does not say "
                "out of what: pass --grade-max (the course total's maximum in Moodle's "
                "gradebook setup), or export the course total as Percentage too (Moodle's "
                "export can include both display types), which gives each student's own "
                "maximum",
            )


def import_grade_file(
    session: Session,
    course: Course,
    source: bytes | str | os.PathLike[str],
    *,
    encoding: str | None = None,
    grade_max: float | None = None,
    create_missing: bool = True,
) -> GradeImportResult:
    """Store each student's course total, with what it is out of, from a gradebook export.

    A file whose course total's maximum cannot be known (points only, no percentage column and
    no `grade_max`) is refused rather than assumed /100: a wrong maximum silently rescales every
    final grade. `moodle_client.csv_grades` explains where each row's maximum comes from.

    Students are matched to known people by email, then by unique full name. Unknown students
    are created (with their name and email) when `create_missing`, so a course imported from
    files alone still has its outcomes; their log events link by name on the next log import.
    """
    export: GradeExport = read_grades_csv(source, encoding=encoding, grade_max=grade_max)
    _check_scale(export)
    maxima = [r.course_total_max for r in export.rows if r.course_total_max is not None]
    item = _course_total_item(session, course, max(maxima, default=grade_max or 100.0))
    matched = created = 0
    unmatched: list[int] = []
    grades: list[GradeRow] = []
    actors = _course_actors(session, course)
    namesakes: list[str] = []
    for row in export.rows:
        fullname = f"{row.firstname} {row.lastname}".strip()
        person, ambiguous = _find_person(session, course.site_id, row.email, fullname, actors)
        if ambiguous and fullname not in namesakes:
            namesakes.append(fullname)
        if person is None:
            if not create_missing:
                unmatched.append(row.line)
                continue
            person = Person(site_id=course.site_id, fullname=fullname, email=row.email or None)
            session.add(person)
            session.flush()
            created += 1
        else:
            matched += 1
            if row.email and not person.email:
                person.email = row.email
        enrolled = session.scalar(
            select(Enrolment).where(
                Enrolment.course_id == course.id,
                Enrolment.person_id == person.id,
                Enrolment.role == "student",
            )
        )
        if enrolled is None:
            session.add(
                Enrolment(course_id=course.id, person_id=person.id, role="student", source="csv")
            )
        grades.append((person.id, row.course_total, None, row.course_total_max))
    session.flush()
    set_grades(session, item, grades)
    return GradeImportResult(
        rows=len(export.rows),
        matched=matched,
        created=created,
        column=export.course_total_column,
        unmatched_lines=tuple(unmatched),
        namesakes=tuple(namesakes),
    )

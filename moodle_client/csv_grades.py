"""Moodle's gradebook export (``grade/export/txt``, comma separated), English or French.

The export identifies students by name, ID number and email only (no user id), and names each
grade column "<activity> (<display type>)": "Course total (Real)" in English, "Total du cours
(Brut)" in French. A missing grade is ``-``. Matching students to Moodle users (by email or ID
number) is the caller's job, because it needs the roster.

**What a course total is out of.** A "Real" column holds points and the file never says out of
what; under Moodle's default natural aggregation ("exclude empty grades") the answer even
differs from student to student (120 with the quiz graded, 100 without). So each row's maximum
comes from, in order: a "Percentage" course-total column next to the real one (maximum = real
/ percentage, exact per student); a percentage-only course total (out of 100); the caller's
``grade_max`` (one maximum for everyone). Otherwise it is None, and the importer refuses the
file. A total above its maximum is refused with its line: with a caller's maximum it nearly
always means the maximum given was wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from moodle_client.csvfiles import CsvImportError, decode_csv, match_header, read_bytes, records
from moodle_client.requirements import normalise_label

__all__ = ["GradeColumn", "GradeExport", "GradeExportRow", "read_grades_csv"]

_IDENTITY: dict[str, frozenset[str]] = {
    "firstname": frozenset({"first name", "prenom"}),
    "lastname": frozenset({"last name", "surname", "nom", "nom de famille"}),
    "idnumber": frozenset({"id number", "numero didentification"}),
    "institution": frozenset({"institution"}),
    "department": frozenset({"department", "departement"}),
    "email": frozenset({"email address", "email", "adresse de courriel", "adresse courriel"}),
    "downloaded": frozenset(
        {"last downloaded from this course", "dernier telechargement depuis ce cours"}
    ),
}
_COURSE_TOTAL = frozenset({"course total", "total du cours"})
_DISPLAY_TYPES: dict[str, str] = {
    "real": "real",
    "brut": "real",
    "percentage": "percentage",
    "pourcentage": "percentage",
    "letter": "letter",
    "lettre": "letter",
}
_TYPED = re.compile(r"^(?P<name>.*\S)\s*\((?P<type>[^()]*)\)\s*$")


@dataclass(frozen=True)
class GradeColumn:
    """A grade column: its header, the item name without the display type, the display type
    (``real``, ``percentage``, ``letter`` or the raw label) and whether it is the course total."""

    header: str
    name: str
    display: str
    is_course_total: bool


@dataclass(frozen=True)
class GradeExportRow:
    """One student. ``grades`` maps column header to value (None for ``-`` or a letter)."""

    line: int
    firstname: str
    lastname: str
    idnumber: str
    email: str
    grades: Mapping[str, float | None]
    course_total: float | None
    # What `course_total` is out of (see the module docstring); None when the file cannot say.
    course_total_max: float | None = None


@dataclass(frozen=True)
class GradeExport:
    columns: tuple[GradeColumn, ...]
    rows: tuple[GradeExportRow, ...]
    course_total_column: str
    downloaded_at: int | None
    language: str


def read_grades_csv(
    source: bytes | str | os.PathLike[str],
    *,
    encoding: str | None = None,
    grade_max: float | None = None,
) -> GradeExport:
    """Parse and validate a whole gradebook export; ``CsvImportError`` if anything is off.

    Requires a course-total column, because the course total is what the tool learns to
    predict; an export without it cannot train anything. ``grade_max`` is the course total's
    maximum when the file cannot tell it (see the module docstring); a total above its row's
    maximum, or below zero, is refused with its line number.
    """
    if grade_max is not None and not grade_max > 0:
        raise CsvImportError(1, f"the course total's maximum must be above 0, not {grade_max:g}")
    text = decode_csv(read_bytes(source), encoding)
    it = records(text)
    first = next(it, None)
    if first is None:
        raise CsvImportError(1, "the file is empty; expected a Moodle gradebook export")
    header_line, header = first
    identity, _ = match_header(header, _IDENTITY)
    if "email" not in identity and "idnumber" not in identity:
        raise CsvImportError(
            header_line,
            "this is not a Moodle gradebook export: the header row has neither 'Email address' "
            "nor 'ID number' to identify students",
        )
    identity_indexes = set(identity.values())
    columns: list[tuple[int, GradeColumn]] = []
    for index, cell in enumerate(header):
        if index in identity_indexes:
            continue
        match = _TYPED.match(cell.strip())
        if match is None:
            continue
        name = match.group("name")
        display = _DISPLAY_TYPES.get(normalise_label(match.group("type")), match.group("type"))
        columns.append(
            (index, GradeColumn(cell, name, display, normalise_label(name) in _COURSE_TOTAL))
        )
    totals = [c for _, c in columns if c.is_course_total]
    if not totals:
        raise CsvImportError(
            header_line,
            "no course-total column (expected 'Course total (Real)' or 'Total du cours (Brut)'):"
            " include the course total when exporting the gradebook",
        )
    total = next((c for c in totals if c.display == "real"), totals[0])
    percent = next((c for c in totals if c.display == "percentage"), None)
    french = "prenom" in {normalise_label(h) for h in header}

    rows: list[GradeExportRow] = []
    downloaded: int | None = None
    for line, fields in it:
        if len(fields) != len(header):
            raise CsvImportError(
                line, f"expected {len(header)} fields like the header row, found {len(fields)}"
            )
        grades = {c.header: _grade(line, c, fields[i]) for i, c in columns}
        if "downloaded" in identity:
            stamp = fields[identity["downloaded"]].strip()
            if stamp.isdigit():
                downloaded = int(stamp)

        def get(name: str, fields: list[str] = fields) -> str:
            return fields[identity[name]].strip() if name in identity else ""

        rows.append(
            GradeExportRow(
                line=line,
                firstname=get("firstname"),
                lastname=get("lastname"),
                idnumber=get("idnumber"),
                email=get("email"),
                grades=grades,
                course_total=grades[total.header],
                course_total_max=_row_maximum(
                    line,
                    grades[total.header],
                    total,
                    None if percent is None else grades[percent.header],
                    grade_max,
                ),
            )
        )
    return GradeExport(
        columns=tuple(c for _, c in columns),
        rows=tuple(rows),
        course_total_column=total.header,
        downloaded_at=downloaded,
        language="fr" if french else "en",
    )


def _row_maximum(
    line: int,
    value: float | None,
    total: GradeColumn,
    percent: float | None,
    grade_max: float | None,
) -> float | None:
    """What this row's course total is out of (module docstring), checking the value fits."""
    given = ""
    if total.display == "percentage":
        top: float | None = 100.0
    elif total.display == "real" and percent is not None and percent > 0 and value is not None:
        top = value * 100.0 / percent
    else:
        top, given = grade_max, " (the --grade-max given)"
    if value is not None and value < 0:
        raise CsvImportError(line, f"the course total {value:g} is below zero")
    if value is not None and top is not None and value > top + 1e-9:
        raise CsvImportError(
            line,
            f"the course total {value:g} is above its maximum {top:g}{given}: check the "
            "course total's maximum in Moodle's gradebook setup",
        )
    return top


def _grade(line: int, column: GradeColumn, raw: str) -> float | None:
    text = raw.strip().replace("\u00a0", " ")
    if text in ("", "-"):
        return None
    if column.display == "letter":
        return None
    if column.display == "percentage":
        text = text.rstrip("%").strip()
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        raise CsvImportError(
            line, f"cannot read the grade {raw!r} in column {column.header!r}"
        ) from None

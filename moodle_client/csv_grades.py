"""Moodle's gradebook export (``grade/export/txt``, comma separated), English or French.

The export identifies students by name, ID number and email only (no user id), and names each
grade column "<activity> (<display type>)": "Course total (Real)" in English, "Total du cours
(Brut)" in French. A missing grade is ``-``. Matching students to Moodle users (by email or ID
number) is the caller's job, because it needs the roster.
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


@dataclass(frozen=True)
class GradeExport:
    columns: tuple[GradeColumn, ...]
    rows: tuple[GradeExportRow, ...]
    course_total_column: str
    downloaded_at: int | None
    language: str


def read_grades_csv(
    source: bytes | str | os.PathLike[str], *, encoding: str | None = None
) -> GradeExport:
    """Parse and validate a whole gradebook export; ``CsvImportError`` if anything is off.

    Requires a course-total column, because the course total is what the tool learns to
    predict; an export without it cannot train anything.
    """
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
            )
        )
    return GradeExport(
        columns=tuple(c for _, c in columns),
        rows=tuple(rows),
        course_total_column=total.header,
        downloaded_at=downloaded,
        language="fr" if french else "en",
    )


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

"""Moodle 5.1's gradebook export, English and French."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest

from moodle_client import CsvImportError, read_grades_csv
from tests.moodle_client.conftest import FIXTURES

EN = FIXTURES / "grades_export_en.csv"
FR = FIXTURES / "grades_export_fr.csv"


def _records(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _write(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _expected_totals(path: Path, total_header: str) -> list[tuple[str, float | None]]:
    records = _records(path)
    email = next(i for i, h in enumerate(records[0]) if "mail" in h.lower() or "courriel" in h)
    total = records[0].index(total_header)
    return [(r[email], None if r[total] == "-" else float(r[total])) for r in records[1:]]


def test_english_and_french_exports_give_the_same_course_totals() -> None:
    english = read_grades_csv(EN)
    french = read_grades_csv(FR)
    assert english.course_total_column == "Course total (Real)"
    assert french.course_total_column == "Total du cours (Brut)"
    assert (english.language, french.language) == ("en", "fr")
    totals = [(r.email, r.course_total) for r in english.rows]
    assert totals == [(r.email, r.course_total) for r in french.rows]
    assert totals == _expected_totals(EN, "Course total (Real)")
    assert any(total is None for _, total in totals), "the fixture has missing grades ('-')"
    assert len(english.rows) == len(_records(EN)) - 1


def test_columns_and_identity() -> None:
    export = read_grades_csv(EN)
    header = _records(EN)[0]
    assert [c.header for c in export.columns] == [h for h in header if h.endswith("(Real)")]
    assert [c.is_course_total for c in export.columns].count(True) == 1
    assert {c.display for c in export.columns} == {"real"}
    first = _records(EN)[1]
    row = export.rows[0]
    assert (row.firstname, row.lastname, row.idnumber, row.email) == (
        first[0],
        first[1],
        first[2],
        first[5],
    )
    assert row.line == 2
    assert export.downloaded_at == int(first[-1])
    assert all(
        row.grades[c.header] == (None if first[i] == "-" else float(first[i]))
        for i, c in ((header.index(c.header), c) for c in export.columns)
    )


def test_prototype_file_name_imports(tmp_path: Path) -> None:
    target = tmp_path / "notes_from_notes.csv"
    shutil.copy(FR, target)
    assert read_grades_csv(str(target)).rows == read_grades_csv(FR).rows


def test_decimal_comma_and_percentages_are_read() -> None:
    records = _records(EN)
    total = records[0].index("Course total (Real)")
    records[0][total] = "Course total (Percentage)"
    records[1][total] = "52,50 %"
    parsed = read_grades_csv(_write(records[:2]))
    assert parsed.rows[0].course_total == 52.5
    assert parsed.columns[-1].display == "percentage"


def test_export_without_course_total_is_refused() -> None:
    records = _records(EN)
    total = records[0].index("Course total (Real)")
    without = [[c for i, c in enumerate(r) if i != total] for r in records]
    with pytest.raises(CsvImportError) as caught:
        read_grades_csv(_write(without))
    assert caught.value.line == 1
    assert "course-total column" in caught.value.reason


def test_a_log_download_is_not_a_grade_export() -> None:
    with pytest.raises(CsvImportError) as caught:
        read_grades_csv(FIXTURES / "logs_export_en.csv")
    assert caught.value.line == 1


def test_bad_grade_is_refused_with_its_line() -> None:
    records = _records(FR)
    records[9][records[0].index("Total du cours (Brut)")] = "douze"
    with pytest.raises(CsvImportError) as caught:
        read_grades_csv(_write(records))
    assert caught.value.line == 10
    assert "'douze'" in caught.value.reason


def test_undecodable_grade_export_is_refused() -> None:
    data = FR.read_text(encoding="utf-8").encode("latin-1")
    with pytest.raises(CsvImportError) as caught:
        read_grades_csv(data)
    assert caught.value.line == 1
    assert read_grades_csv(data, encoding="latin-1").rows == read_grades_csv(FR).rows

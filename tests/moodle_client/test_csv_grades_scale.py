"""What a gradebook export's course total is out of (issue #13, item 3).

Moodle's "Real" column never says its maximum, and under natural aggregation each student's
differs (120 with the quiz graded, 100 without). The parser takes each row's maximum from a
Percentage course-total column, a percentage-only total, or the caller's `grade_max`, and
refuses a total above its maximum with the line it is on.
"""

from __future__ import annotations

import csv
import io

import pytest

from moodle_client import CsvImportError, read_grades_csv
from tests.moodle_client.conftest import FIXTURES

EN = FIXTURES / "grades_export_en.csv"


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


HEADER = ["First name", "Last name", "Email address"]


def test_real_only_export_has_no_maximum_unless_given() -> None:
    export = read_grades_csv(EN)
    assert {r.course_total_max for r in export.rows} == {None}
    given = read_grades_csv(EN, grade_max=120.0)
    graded = [r for r in given.rows if r.course_total is not None]
    assert graded
    assert {r.course_total_max for r in graded} == {120.0}


def test_a_total_above_the_given_maximum_is_refused_with_its_line() -> None:
    # The recorded export has a student at 115 (assignment 100 + quiz 15): not out of 100.
    with pytest.raises(CsvImportError) as refused:
        read_grades_csv(EN, grade_max=100.0)
    records = list(csv.reader(io.StringIO(EN.read_text(encoding="utf-8"))))
    total = records[0].index("Course total (Real)")
    first_over = next(
        i + 1 for i, r in enumerate(records) if i and r[total] != "-" and float(r[total]) > 100
    )
    assert refused.value.line == first_over
    assert "above its maximum 100" in refused.value.reason
    assert "--grade-max" in refused.value.reason


@pytest.mark.parametrize(
    ("real", "percent", "maximum"),
    [("120.00", "100.00 %", 120.0), ("100.00", "100.00 %", 100.0), ("90.00", "75.00 %", 120.0),
     ("53.00", "53.00 %", 100.0)],
)  # fmt: skip
def test_a_percentage_column_gives_each_students_own_maximum(
    real: str, percent: str, maximum: float
) -> None:
    data = _csv(
        [
            [*HEADER, "Course total (Real)", "Course total (Percentage)"],
            ["A", "B", "a@example.com", real, percent],
        ]
    )
    (row,) = read_grades_csv(data).rows
    assert row.course_total == float(real)
    assert row.course_total_max == pytest.approx(maximum)


def test_a_french_percentage_only_total_is_out_of_100() -> None:
    data = _csv(
        [
            ["Prénom", "Nom", "Adresse de courriel", "Total du cours (Pourcentage)"],
            ["A", "B", "a@example.com", "85,00 %"],
            ["C", "D", "c@example.com", "-"],
        ]
    )
    export = read_grades_csv(data)
    assert [(r.course_total, r.course_total_max) for r in export.rows] == [
        (85.0, 100.0),
        (None, 100.0),
    ]


@pytest.mark.parametrize(
    ("value", "message"), [("101.00 %", "above its maximum 100"), ("-1.00 %", "below zero")]
)
def test_a_percentage_out_of_range_is_refused_with_its_line(value: str, message: str) -> None:
    data = _csv(
        [
            [*HEADER, "Course total (Percentage)"],
            ["A", "B", "a@example.com", "50.00 %"],
            ["C", "D", "c@example.com", value],
        ]
    )
    with pytest.raises(CsvImportError) as refused:
        read_grades_csv(data)
    assert refused.value.line == 3
    assert message in refused.value.reason

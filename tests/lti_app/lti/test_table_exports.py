"""The dashboard table's downloads, read back as a spreadsheet would: the CSV in English and in
French (";" and "," decimals, UTF-8 with BOM) through the csv module, and the `.xlsx` through
openpyxl. Headers are in the launch's language, booleans are words, and every number is the
JSON API's number for the same student (to the CSV's four significant digits; exactly in the
workbook). A student named like a formula stays text in both files; two students with the same
name stay two rows and two marks of the grade chart."""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from lti_app.models import Person
from ml.feature_info import CSV_ENGAGEMENT, FEATURES
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.scored_course import score_course_2

HOSTILE = '=HYPERLINK("http://evil","Click")'
NAMESAKE = "Camille Martin"

HEADERS = {
    "en": [
        "Person id (this tool)",
        "Moodle user id",
        "Student",
        "Predicted grade (out of 20)",
        "Grade range, low end",
        "Grade range, high end",
        "Chance of passing (0 to 1)",
        "Chance of passing, low end",
        "Chance of passing, high end",
        "Predicted to pass",
        "At risk",
        "Activity trend",
        "Days since last activity",
        "Active days",
        "Actions in the course",
        "Main factors",
    ],
    "fr": [
        "Identifiant de la personne (cet outil)",
        "Identifiant Moodle de l'utilisateur",
        "Étudiant",
        "Note prédite (sur 20)",
        "Fourchette de note, borne basse",
        "Fourchette de note, borne haute",
        "Chance de réussite (de 0 à 1)",
        "Chance de réussite, borne basse",
        "Chance de réussite, borne haute",
        "Réussite prédite",
        "À risque",
    ],
}
WORDS = {"en": {True: "Yes", False: "No"}, "fr": {True: "Oui", False: "Non"}}


@dataclass
class Scored:
    course_id: int
    tokens: dict[str, str]
    api: dict[int, dict[str, Any]]


@pytest.fixture(scope="module")
def scored(lti_env: LtiEnv) -> Scored:
    tokens = {
        "en": token_of(launch(lti_env.client(), lti_env, "teacher")),
        "fr": token_of(launch(lti_env.client(), lti_env, "teacher_fr")),
    }
    course = score_course_2(lti_env)
    with lti_env.db() as db:
        db.execute(
            update(Person).where(Person.id == course.students[3].person_id).values(fullname=HOSTILE)
        )
        db.execute(
            update(Person)
            .where(Person.id.in_([course.students[4].person_id, course.students[5].person_id]))
            .values(fullname=NAMESAKE)
        )
    resp = lti_env.client().get(
        f"/api/v1/courses/{course.course_id}/students",
        headers={"X-Launch-Token": tokens["en"], "Accept": "application/json"},
    )
    assert resp.status_code == 200
    api = {s["person_id"]: s for s in resp.get_json()["students"]}
    assert len(api) == len(course.students)
    return Scored(course.course_id, tokens, api)


def _download(env: LtiEnv, scored: Scored, lang: str, ext: str) -> Any:
    resp = env.client().get(
        f"/course/{scored.course_id}/students.{ext}",
        headers={"X-Launch-Token": scored.tokens[lang]},
    )
    assert resp.status_code == 200
    assert f'.{ext}"' in resp.headers["Content-Disposition"]
    return resp


def _expected(student: dict[str, Any]) -> list[Any]:
    """The API's values in the table's column order (factors aside)."""
    gi = student["grade_interval"] or [None, None]
    pi = student["probability_interval"] or [None, None]
    return [
        student["person_id"],
        student["moodle_user_id"],
        student["fullname"],
        student["predicted_grade"],
        gi[0],
        gi[1],
        student["pass_probability"],
        pi[0],
        pi[1],
        student["predicted_pass"],
        student["at_risk"],
        *(student["engagement"][f] for f in CSV_ENGAGEMENT),
    ]


def _four_digits(got: float, value: float) -> bool:
    """`value` to four significant digits: the nearest, or the next one out for a range's end
    or a number kept on its side of the pass mark or the threshold (`course_csv._cell`)."""
    if value == 0:
        return got == 0
    step = 10.0 ** (math.floor(math.log10(abs(value))) - 3)
    return got == float(f"{value:.4g}") or abs(got - value) <= step * (1 + 1e-9)


def _check_rows(rows: list[list[Any]], scored: Scored, lang: str, number: Any) -> None:
    """Each row against the API: `number` reads a spreadsheet cell back to a float and gives
    the value it should hold for an API float."""
    assert len(rows) == len(scored.api)
    booleans = 0
    for row in rows:
        want = _expected(scored.api[int(row[0])])
        assert row[2] in (want[2], "'" + want[2])
        for got, value in zip(row[: len(want)], want, strict=False):
            if isinstance(value, bool):
                assert got == WORDS[lang][value]
                booleans += 1
            elif value is None:
                assert got in ("", None)
            elif isinstance(value, (int, float)):
                assert number(got, value)
    assert booleans == 2 * len(rows)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_csv_round_trips_with_the_api_numbers(lti_env: LtiEnv, scored: Scored, lang: str) -> None:
    resp = _download(lti_env, scored, lang, "csv")
    raw = resp.get_data()
    assert raw.startswith("\ufeff".encode())  # UTF-8 with BOM
    text = raw.decode("utf-8-sig")
    delimiter, decimal = (";", ",") if lang == "fr" else (",", ".")
    table = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header, rows = table[0], table[1:]
    assert {len(row) for row in table} == {len(HEADERS["en"])}  # the separator is this one
    assert header[: len(HEADERS[lang])] == HEADERS[lang]
    assert not any(name in header for name in FEATURES), header  # no internal names
    if lang == "fr":  # a French spreadsheet reads "12,5", never "12.5"
        assert not any("." in cell for row in rows for cell in row[3:9] if cell)

    def number(got: str, value: float) -> bool:
        return _four_digits(float(got.replace(decimal, ".")), value)

    _check_rows(rows, scored, lang, number)
    names = [r[2] for r in rows]
    assert "'" + HOSTILE in names  # neutralised, as every CSV the tool writes


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_xlsx_round_trips_with_the_api_numbers(lti_env: LtiEnv, scored: Scored, lang: str) -> None:
    resp = _download(lti_env, scored, lang, "xlsx")
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(resp.get_data()))
    sheet = book.active
    assert sheet is not None
    cells = list(sheet.iter_rows())
    header = [c.value for c in cells[0]]
    want = [h.replace(" (0 to 1)", "").replace(" (de 0 à 1)", "") for h in HEADERS[lang]]
    assert header[: len(want)] == want
    rows = [[c.value for c in row] for row in cells[1:]]

    def number(got: Any, value: float) -> bool:
        # The CSV's numbers (four significant digits), as numbers.
        return isinstance(got, (int, float)) and _four_digits(float(got), value)

    _check_rows(rows, scored, lang, number)
    # Numbers are numbers, shown as grades and percentages with every digit they hold (Excel
    # rounds no further), a chance at its ends in words; the formula name is a string cell.
    assert cells[1][3].number_format == "0.0##"
    under, over = ("under", "over") if lang == "en" else ("moins de", "plus de")
    assert cells[1][6].number_format.startswith(f'[<0.05]"{under} 5')
    assert f';[>0.95]"{over} 95' in cells[1][6].number_format
    assert cells[1][6].number_format.endswith('";0.0##%')
    hostile = [row[2] for row in cells[1:] if row[2].value == HOSTILE]
    assert len(hostile) == 1
    assert hostile[0].data_type == "s"


def test_dashboard_links_both_downloads(lti_env: LtiEnv, scored: Scored) -> None:
    page = lti_env.client().get(
        f"/course/{scored.course_id}", headers={"X-Launch-Token": scored.tokens["fr"]}
    )
    body = page.get_data(as_text=True)
    assert 'id="csv-link"' in body
    assert 'id="xlsx-link"' in body
    assert "Exporter le tableau (Excel)" in body


def test_namesakes_are_two_rows_and_two_marks(lti_env: LtiEnv, scored: Scored) -> None:
    namesakes = {p: s for p, s in scored.api.items() if s["fullname"] == NAMESAKE}
    assert len(namesakes) == 2
    page = lti_env.client().get(
        f"/course/{scored.course_id}", headers={"X-Launch-Token": scored.tokens["en"]}
    )
    body = page.get_data(as_text=True)
    assert {int(p) for p in re.findall(r'data-person="(\d+)"', body)} >= set(namesakes)
    found = re.search(r'id="chart-grades"[^>]*data-vega-spec="([^"]*)"', body)
    assert found is not None
    spec = json.loads(html.unescape(found.group(1)))
    marks = [r for data in spec["datasets"].values() for r in data if "grade" in r]
    assert len(marks) == len({r["key"] for r in marks}) == len(scored.api)
    labels = {int(r["key"]): r["name"] for r in marks}
    assert len(set(labels.values())) == len(labels)
    for person, student in namesakes.items():
        assert labels[person] == f"{NAMESAKE} (#{student['moodle_user_id']})"
        # The at-risk table gives each namesake's Moodle id beside the name, and the chart's
        # data table the chart's label.
        row = re.search(rf'<tr data-risk="[01]" data-person="{person}".*?</tr>', body, re.DOTALL)
        assert row is not None
        assert f'namesake">#{student["moodle_user_id"]}</span>' in row.group(0)
        assert f"<tr><td>{NAMESAKE} (#{student['moodle_user_id']})</td>" in body
    # Exactly the students whose name another student has get an id beside it.
    names = [st["fullname"] for st in scored.api.values()]
    shared = sum(1 for name in names if names.count(name) > 1)
    assert shared >= len(namesakes)
    assert body.count('class="small text-body-secondary namesake"') == shared

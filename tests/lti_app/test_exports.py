"""CSV exports against formula injection: the neutralising rule, and `predict --csv` end to end
(the dashboard's export is checked through a real launch in tests/lti_app/lti)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, update

from lti_app.cli import main
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.models import Person
from lti_app.services.exports import FORMULA_STARTS, SafeCsvWriter, cell, neutralise
from simulation.course import simulate_course
from tests.lti_app.cli_course import fast_config, store_course

NAMES = {
    "=": '=HYPERLINK("http://x","y")',
    "+": "+cmd|' /C calc'!A0",
    "-": "-2+3+cmd|' /C calc'!A0",
    "@": "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t": "\t=1+1",
    "\r": "\r=1+1",
}


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
def test_text_that_could_start_a_formula_is_quoted(start: str) -> None:
    assert neutralise(start + "1+1") == "'" + start + "1+1"
    assert cell(start + "x") == "'" + start + "x"


@pytest.mark.parametrize("text", ["Ada Lovelace", "Zoë", "", "'=already", " =1", "1-2", "é=1"])
def test_other_text_is_unchanged(text: str) -> None:
    assert neutralise(text) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (-2.5, "-2.5"),
        (-3, "-3"),
        (np.float64(-0.25), "-0.25"),
        (np.int64(-7), "-7"),
        (0.1 + 0.2, repr(0.1 + 0.2)),
        (True, "True"),
        (None, ""),
        ("-2.5", "'-2.5"),  # a *text* that looks like a number is still text
    ],
)
def test_numbers_stay_numbers_and_only_text_is_neutralised(value: object, expected: str) -> None:
    assert cell(value) == expected


def test_float_format_applies_to_numbers_only() -> None:
    assert cell(-0.123456, ".4g") == "-0.1235"
    assert cell(12, ".4g") == "12"


def test_writer_round_trips_every_name_as_text() -> None:
    buf = io.StringIO()
    writer = SafeCsvWriter(buf)
    writer.writerows([[name, -1.5] for name in NAMES.values()])
    rows = _read(buf.getvalue())
    assert [r[0] for r in rows] == ["'" + n for n in NAMES.values()]
    assert all(float(r[1]) == -1.5 for r in rows)


# --------------------------------------------------------------------------- predict --csv


@pytest.fixture(scope="module")
def predicted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, set[str]]:
    """`arche-predict predict --csv` on a simulated course whose first students carry the
    hostile names (one run for every prefix: training is the slow part)."""
    tmp = tmp_path_factory.mktemp("cli-csv")
    cfg, settings = fast_config(tmp)
    simulated = simulate_course(n_past=3, n_students=30, seed=5, current_progress=1.0)
    assert simulated.current is not None
    course_id = store_course(settings, simulated)
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        uids = simulated.current.roster["userid"].tolist()[: len(NAMES)]
        for uid, name in zip(uids, NAMES.values(), strict=True):
            session.execute(
                update(Person).where(Person.moodle_user_id == int(uid)).values(fullname=name)
            )
        names = set(session.scalars(select(Person.fullname)))
    engine.dispose()
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "predict", "--course", str(course_id), "--csv"]
    )
    assert result.exit_code == 0, result.output
    return result, names


@pytest.mark.parametrize("start", list(NAMES), ids=repr)
def test_cli_csv_neutralises_a_formula_name(predicted: tuple[Result, set[str]], start: str) -> None:
    result, _ = predicted
    rows = list(csv.DictReader(io.StringIO(result.stdout, newline="")))
    names = [r["name"] for r in rows]
    assert "'" + NAMES[start] in names
    assert NAMES[start] not in names


def test_no_cli_csv_cell_can_start_a_formula(predicted: tuple[Result, set[str]]) -> None:
    result, names = predicted
    rows = _read(result.stdout)
    assert len(rows) > len(NAMES)
    for row in rows:
        for value in row:
            try:
                float(value)
            except ValueError:
                assert not value.startswith(FORMULA_STARTS), value
    # Numbers are still numbers: the grades parse and sit inside their intervals.
    for r in csv.DictReader(io.StringIO(result.stdout, newline="")):
        assert float(r["grade_low"]) <= float(r["grade"]) <= float(r["grade_high"])
    assert {r[1] for r in rows[1:]} <= {neutralise(n) for n in names}

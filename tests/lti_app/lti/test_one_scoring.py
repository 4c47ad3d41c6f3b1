"""One scoring on the page (issue #13, item 7): the active models' latest scoring, everywhere.

Two invariants, on SQLite and PostgreSQL:
- scoring a course twice with no new data (the scheduler's way: no explicit date) stores the
  same predictions, as of the same date, instead of a second batch that drifted with the clock;
- once a retraining as of an *earlier* date has replaced the model, the page's at-risk table,
  the CSV export and the JSON API all show that model's scoring (not the newer-dated one of the
  model it replaced), with the same students and the same numbers.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Course, ModelVersion, MoodleSite, Prediction
from lti_app.services.course_data import store_simulated_course
from lti_app.services.scoring import score_course
from simulation.course import SimulatedCourse, simulate_course
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.scored_course import FAST, as_course_2

_SNAPSHOT = (
    "person_id",
    "as_of",
    "predicted_grade",
    "grade_lower",
    "grade_upper",
    "pass_probability",
    "probability_lower",
    "probability_upper",
    "uncertainty",
    "predicted_pass",
    "features",
    "explanation",
)


@pytest.fixture(scope="module")
def simulated() -> SimulatedCourse:
    return simulate_course(n_past=3, n_students=30, seed=21, current_progress=0.5)


def _stored(session: Session, course_id: int) -> list[tuple[Any, ...]]:
    rows = session.scalars(
        select(Prediction).where(Prediction.course_id == course_id).order_by(Prediction.person_id)
    ).all()
    return [tuple(getattr(p, name) for name in _SNAPSHOT) for p in rows]


def test_rescoring_unchanged_data_stores_identical_predictions(
    db_session: Session, simulated: SimulatedCourse, tmp_path: Path
) -> None:
    """The scheduler scores without a date: the second run, on the same log and roster, must
    not move the "as of" (and with it the term's progress, the features, the model) with the
    clock, nor leave a second copy of the scoring beside the first."""
    site = MoodleSite(base_url="https://one-scoring.example.org")
    db_session.add(site)
    db_session.flush()
    current, _ = store_simulated_course(db_session, site, simulated)
    first = score_course(db_session, current, settings=FAST, model_root=tmp_path)
    assert first.status == "scored", first.message
    before = _stored(db_session, current.id)
    assert len(before) == len(simulated.current.roster)  # type: ignore[union-attr]

    again = score_course(db_session, current, settings=FAST, model_root=tmp_path)
    assert again.reused_model
    assert again.as_of == first.as_of
    assert (again.regression_model_id, again.classification_model_id) == (
        first.regression_model_id,
        first.classification_model_id,
    )
    assert _stored(db_session, current.id) == before


# --------------------------------------------------------------------------- the surfaces

_PAGE_ROW = re.compile(
    r'<tr data-risk="[01]"[^>]*>\s*<td>.*?</td>\s*<td data-value="[^"]*">'
    r'<a class="student-link" href="[^"]*/learners/(\d+)[?"].*?'
    r'<td data-value="([^"]*)" class="grade">.*?<td data-value="([^"]*)" class="proba">',
    re.DOTALL,
)


def _number(text: str | None) -> float | None:
    return None if text in (None, "", "None") else float(text)


def test_page_csv_and_api_show_the_active_models_latest_scoring(lti_env: LtiEnv) -> None:
    """Model A scores as of week 7; a retraining as of week 6 (model B) becomes active. The
    newest "as of" is still A's: every surface must show B's scoring, and the same one."""
    teacher = token_of(launch(lti_env.client(), lti_env, "teacher"))
    moved = as_course_2(simulate_course(n_past=3, n_students=30, seed=21, current_progress=0.5))
    assert moved.current is not None
    assert moved.current.now is not None
    late = moved.current.now.to_pydatetime()
    early = late - timedelta(days=7)
    with lti_env.db() as db:
        course = db.scalar(select(Course).where(Course.moodle_course_id == 2))
        assert course is not None
        current, _ = store_simulated_course(db, db.get_one(MoodleSite, course.site_id), moved)
        root = Path(lti_env.settings.instance_dir).resolve() / "models"  # = settings.model_root
        a = score_course(db, current, settings=FAST, model_root=root, now=late)
        b = score_course(db, current, settings=FAST, model_root=root, now=early)
        assert not b.reused_model
        assert b.regression_model_id != a.regression_model_id
        assert b.status == "scored", b.message
        active = db.scalars(
            select(ModelVersion.id).where(ModelVersion.course_id == current.id, ModelVersion.active)
        ).all()
        assert set(active) == {b.regression_model_id, b.classification_model_id}
        expected = {
            p.person_id: (p.predicted_grade, p.pass_probability)
            for p in db.scalars(
                select(Prediction).where(
                    Prediction.course_id == current.id,
                    Prediction.regression_model_id == b.regression_model_id,
                )
            )
        }
        course_id = current.id
    assert len(expected) == len(moved.current.roster)

    client = lti_env.client()
    api_headers = {"X-Launch-Token": teacher, "Accept": "application/json"}
    summary = client.get(f"/api/v1/courses/{course_id}", headers=api_headers).get_json()
    assert summary["as_of"] == early.isoformat()
    api = client.get(f"/api/v1/courses/{course_id}/students", headers=api_headers).get_json()
    from_api = {
        s["person_id"]: (s["predicted_grade"], s["pass_probability"]) for s in api["students"]
    }
    assert from_api == expected
    assert summary["at_risk"] == sum(1 for s in api["students"] if s["predicted_pass"] is False)

    resp = client.get(f"/course/{course_id}/students.csv", headers={"X-Launch-Token": teacher})
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    from_csv = {
        int(r["Person id (this tool)"]): (
            _number(r["Predicted grade (out of 20)"]),
            _number(r["Chance of passing (0 to 1)"]),
        )
        for r in rows
    }
    assert from_csv.keys() == expected.keys()
    for person, (grade, proba) in expected.items():  # the CSV keeps four significant digits
        assert from_csv[person] == (float(f"{grade:.4g}"), float(f"{proba:.4g}"))

    page = client.get(f"/course/{course_id}", headers={"X-Launch-Token": teacher})
    assert page.status_code == 200
    from_page = {
        int(person): (_number(grade), _number(proba))
        for person, grade, proba in _PAGE_ROW.findall(page.get_data(as_text=True))
    }
    assert from_page == expected

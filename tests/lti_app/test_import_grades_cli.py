"""Grade imports and training through the real CLI (issue #13, item 3): a file whose scale
cannot be known, or with a total above its maximum, is refused in one `Error:` line with
nothing imported; a course whose past students all passed (or all failed) is a stated state,
not a traceback. SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, update

from lti_app.cli import main
from lti_app.config import Settings
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.models import Course, Grade, GradeItem, Prediction
from simulation.course import simulate_course
from tests.conftest import FIXTURES, Databases
from tests.lti_app.cli_course import fast_config, store_course
from tests.lti_app.test_sync import make_settings, setup_course
from tests.moodle_stub import MoodleStub

RECORDED = FIXTURES / "moodle-5.1"


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    moodle = MoodleStub().start()
    yield moodle
    moodle.stop()


def cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", settings.source, *args])


def _one_error_line(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def test_import_without_a_known_scale_is_refused(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course = setup_course(settings, stub.url)
    file = tmp_path / "grades.csv"
    shutil.copy(RECORDED / "grades_export_en.csv", file)
    line = _one_error_line(cli(settings, "import-grades", str(file), "--course", str(course)))
    assert "line 2:" in line
    assert "--grade-max" in line
    assert "nothing was imported" in line
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Grade)) == 0


def test_import_with_a_total_above_the_maximum_is_refused(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course = setup_course(settings, stub.url)
    file = tmp_path / "grades.csv"
    shutil.copy(RECORDED / "grades_export_en.csv", file)
    result = cli(
        settings, "import-grades", str(file), "--course", str(course), "--grade-max", "100"
    )
    line = _one_error_line(result)
    assert "line 4: the course total 115 is above its maximum 100" in line
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Grade)) == 0
    # With the right maximum, every grade is stored with it.
    ok = cli(settings, "import-grades", str(file), "--course", str(course), "--grade-max", "120")
    assert ok.exit_code == 0, ok.output
    with factory() as session:
        assert set(session.scalars(select(Grade.grade_max))) == {120.0}


@pytest.mark.parametrize(("passed", "state"), [(True, "every past student passed"),
                                               (False, "every past student failed")])  # fmt: skip
def test_train_predict_evaluate_on_one_class_state_it(
    tmp_path: Path, passed: bool, state: str
) -> None:
    cfg, settings = fast_config(tmp_path, bootstrap_samples=50)
    simulated = simulate_course(n_past=2, n_students=20, seed=3, current_progress=0.5)
    course_id = store_course(settings, simulated)
    engine = make_engine(settings.database_url)
    with session_scope(make_session_factory(engine)) as session:
        # Every past student on one side of the pass mark, each out of their own maximum.
        items = select(GradeItem.id).where(GradeItem.itemtype == "course")
        session.execute(
            update(Grade)
            .where(Grade.grade_item_id.in_(items))
            .values(value=Grade.grade_max if passed else 0.0)
        )
    for command in (["train"], ["predict"], ["evaluate"]):
        result = CliRunner().invoke(
            main, ["--config", str(cfg), *command, "--course", str(course_id)]
        )
        line = _one_error_line(result)
        assert state in line
        assert "pass chances cannot be learned" in line
        assert "engagement only was stored" in line
    # The scheduler's and "Sync now"'s path: a stated state with engagement-only rows, no crash.
    from lti_app.services.scoring import score_course

    with session_scope(make_session_factory(engine)) as session:
        outcome = score_course(
            session,
            session.get_one(Course, course_id),
            settings=settings.ml,
            model_root=settings.model_root,
        )
        assert outcome.status == "one_class"
        assert outcome.message.startswith(state)
        rows = session.scalars(select(Prediction).where(Prediction.course_id == course_id)).all()
        assert rows
        assert all(
            r.regression_model_id is None and r.classification_model_id is None for r in rows
        )
    engine.dispose()

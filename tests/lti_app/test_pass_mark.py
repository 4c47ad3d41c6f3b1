"""The pass mark (issue #13, item 2): Moodle's "Grade to pass" through the companion plugin, put
on the tool's scale with the course total item's own maximum; a teacher's setting wins; the
configured default otherwise. The sync reads it over the recorded-response stub; an older plugin
without the function leaves the sync successful and the default in force.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from lti_app.config import MLSettings
from lti_app.models import AuditEvent, Course
from lti_app.services.course_settings import (
    SettingError,
    moodle_pass_mark,
    parse_number,
    pass_mark_of,
    risk_threshold_of,
    set_pass_mark,
    set_risk_threshold,
)
from lti_app.tasks import run_course_sync
from ml.dataset import final_grades
from moodle_client import CourseGrading
from tests.conftest import Databases
from tests.lti_app.test_sync import make_settings, setup_course
from tests.moodle_stub import MoodleStub, fixture, make_log_rows

ML = MLSettings()


@pytest.fixture
def stub() -> Iterator[MoodleStub]:
    moodle = MoodleStub(make_log_rows(30)).start()
    yield moodle
    moodle.stop()


def _course(**fields: object) -> Course:
    course = Course(site_id=1, moodle_course_id=2)
    for key, value in fields.items():
        setattr(course, key, value)
    return course


# --------------------------------------------------------------------------- the rule


def test_recorded_grade_items_do_not_carry_gradepass() -> None:
    """Why the plugin is needed: with "Grade to pass" set to 60, the stock report's course total
    has no `gradepass`, only a Pass/Fail icon in `gradeformatted`."""
    report = fixture("gradereport_user_get_grade_items__gradepass.json")
    totals = [
        item
        for user in report["usergrades"]
        for item in user["gradeitems"]
        if item["itemtype"] == "course"
    ]
    assert totals
    assert all("gradepass" not in item for item in totals)
    assert any('title="Fail"' in item["gradeformatted"] for item in totals)


def test_plugin_answer_puts_60_of_120_at_10_of_20() -> None:
    grading = CourseGrading.from_json(
        fixture("local_archepredict_get_course_grading__course2.json"), 2
    )
    assert (grading.gradepass, grading.grademax, grading.pass_share) == (60.0, 120.0, 0.5)
    course = _course(moodle_gradepass=grading.gradepass, moodle_grademax=grading.grademax)
    mark = pass_mark_of(course, ML)
    assert (mark.value, mark.scale, mark.source) == (10.0, 20.0, "moodle")


@pytest.mark.parametrize(
    ("gradepass", "grademax", "expected"),
    [(60.0, 120.0, 10.0), (70.0, 120.0, 11.666667), (50.0, 100.0, 10.0), (0.0, 120.0, None),
     (60.0, 0.0, None), (None, 120.0, None), (150.0, 120.0, 20.0)],
)  # fmt: skip
def test_moodle_pass_mark_on_the_tool_scale(
    gradepass: float | None, grademax: float, expected: float | None
) -> None:
    course = _course(moodle_gradepass=gradepass, moodle_grademax=grademax)
    assert moodle_pass_mark(course, 20.0) == (None if expected is None else pytest.approx(expected))


@given(
    gradepass=st.integers(min_value=1, max_value=400),
    grademax=st.integers(min_value=1, max_value=400),
    scale=st.sampled_from([20.0, 100.0, 10.0]),
)
def test_a_student_at_moodles_grade_to_pass_passes(
    gradepass: int, grademax: int, scale: float
) -> None:
    """Moodle passes a total at or above its grade to pass: on the tool's scale, a student at
    exactly that total is at the mark (50/60 once read 16.666666666666668 under 16.666667),
    and one a hundredth of a point under it is under."""
    course = _course(moodle_gradepass=float(gradepass), moodle_grademax=float(grademax))
    mark = pass_mark_of(course, ML.model_copy(update={"grade_max": scale})).value
    at, under = final_grades(np.array([gradepass, gradepass - 0.01]), float(grademax), 0.0, scale)
    assert at >= mark
    assert under < mark or gradepass > grademax  # above the maximum, everyone at it passes


def test_teacher_wins_over_moodle_which_wins_over_the_default() -> None:
    course = _course()
    assert (pass_mark_of(course, ML).value, pass_mark_of(course, ML).source) == (10.0, "default")
    course.moodle_gradepass, course.moodle_grademax = 72.0, 120.0
    assert (pass_mark_of(course, ML).value, pass_mark_of(course, ML).source) == (12.0, "moodle")
    course.pass_mark = 8.5
    assert (pass_mark_of(course, ML).value, pass_mark_of(course, ML).source) == (8.5, "teacher")


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12.0), ("12,5", 12.5), (" 12.5 ", 12.5), ("", None), ("1\u202f000", 1000.0)],
)
def test_numbers_as_typed(text: str, value: float | None) -> None:
    assert parse_number(text, "pass mark") == value


@pytest.mark.parametrize("text", ["douze", "12/20", "nan", "inf", "1e999"])
def test_not_numbers_are_refused_by_name(text: str) -> None:
    with pytest.raises(SettingError, match="pass mark"):
        parse_number(text, "pass mark")


# --------------------------------------------------------------------------- stored settings


def test_set_and_clear_with_audit(backend: str, databases: Databases, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, "http://moodle.invalid")
    with factory() as session:
        course = session.get_one(Course, course_id)
        course.moodle_gradepass, course.moodle_grademax = 60.0, 120.0
        with pytest.raises(SettingError, match="at most 20"):
            set_pass_mark(session, course, 21.0, ML, person_id=None, via="test")
        with pytest.raises(SettingError, match="above 0"):
            set_pass_mark(session, course, 0.0, ML, person_id=None, via="test")
        assert course.pass_mark is None
        mark = set_pass_mark(session, course, 12.0, ML, person_id=None, via="test")
        assert (mark.value, mark.source) == (12.0, "teacher")
        assert course.pass_mark_set_at is not None
        cleared = set_pass_mark(session, course, None, ML, person_id=None, via="test")
        assert (cleared.value, cleared.source) == (10.0, "moodle")
        assert course.pass_mark_set_at is None
        with pytest.raises(SettingError, match="between 5 % and 95 %"):
            set_risk_threshold(session, course, 0.99, ML, person_id=None, via="test")
        assert set_risk_threshold(session, course, 0.4, ML, person_id=None, via="test") == 0.4
        assert risk_threshold_of(course, ML) == 0.4
        audits = session.scalars(
            select(AuditEvent.action).where(AuditEvent.course_id == course_id)
        ).all()
        assert audits == ["course.pass_mark", "course.pass_mark", "course.risk_threshold"]
        session.commit()


# --------------------------------------------------------------------------- the sync


def test_sync_reads_the_pass_mark_through_the_plugin(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    outcome = run_course_sync(settings, factory, course_id)
    assert outcome.status == "succeeded", outcome.error_message
    assert [p for name, p in stub.calls if name == "local_archepredict_get_course_grading"] == [
        {"courseid": "2"}
    ]
    with factory() as session:
        course = session.get_one(Course, course_id)
        assert (course.moodle_gradepass, course.moodle_grademax) == (60.0, 120.0)
        mark = pass_mark_of(course, settings.ml)
        assert (mark.value, mark.source) == (10.0, "moodle")


def test_an_older_plugin_keeps_the_sync_and_the_default(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    """Plugin 0.1.0 has no such function: Moodle answers `invalidrecordunknown`; the sync still
    succeeds and the configured pass mark is used."""
    del stub.handlers["local_archepredict_get_course_grading"]
    settings = make_settings(tmp_path, databases.new_url(backend), extra="[ml]\npass_mark = 11.0")
    factory, course_id = setup_course(settings, stub.url)
    outcome = run_course_sync(settings, factory, course_id)
    assert outcome.status == "succeeded", outcome.error_message
    with factory() as session:
        course = session.get_one(Course, course_id)
        assert course.moodle_gradepass is None
        mark = pass_mark_of(course, settings.ml)
        assert (mark.value, mark.source) == (11.0, "default")


def test_gradepass_removed_in_moodle_is_forgotten(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    assert run_course_sync(settings, factory, course_id).status == "succeeded"
    body = fixture("local_archepredict_get_course_grading__course2.json")
    stub.handlers["local_archepredict_get_course_grading"] = lambda p: {**body, "gradepass": 0}
    assert run_course_sync(settings, factory, course_id).status == "succeeded"
    with factory() as session:
        course = session.get_one(Course, course_id)
        assert pass_mark_of(course, settings.ml).source == "default"


# --------------------------------------------------------------------------- course dates


def test_moodle_dates_win_but_no_end_date_keeps_the_tools(
    backend: str, databases: Databases, tmp_path: Path, stub: MoodleStub
) -> None:
    """Issue #13 item 4: the sync takes startdate/enddate from Moodle; a course Moodle gives no
    end date (recorded `ALGO-NOEND`, enddate 0) keeps the end an admin set in the tool."""
    from datetime import UTC, datetime

    recorded = fixture("core_course_get_courses_by_field__noenddate.json")["courses"][0]
    assert recorded["enddate"] == 0

    def no_end(params: dict[str, str]) -> object:
        return {"courses": [{**recorded, "id": int(params["value"])}], "warnings": []}

    stub.handlers["core_course_get_courses_by_field"] = no_end
    settings = make_settings(tmp_path, databases.new_url(backend))
    factory, course_id = setup_course(settings, stub.url)
    end = datetime(2027, 1, 31, 23, 0, tzinfo=UTC)
    with factory() as session:
        session.get_one(Course, course_id).end_at = end
        session.commit()
    assert run_course_sync(settings, factory, course_id).status == "succeeded"
    with factory() as session:
        course = session.get_one(Course, course_id)
        assert course.start_at == datetime.fromtimestamp(recorded["startdate"], UTC)
        assert course.end_at == end

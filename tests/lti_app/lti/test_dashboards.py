"""The dashboards over real launches: a scored simulated course, its teacher and two learners.

Every page and state is checked on the server's HTML (the browser tests in tests/e2e check the
rendering): the teacher's charts carry the data they claim, the CSV holds the table, learners
see their own estimate and nobody else, and each empty or broken state says why in words.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.orm import Session

from lti_app.db import Base
from lti_app.models import (
    Course,
    CourseLineage,
    Enrolment,
    LiveValidation,
    ModelVersion,
    Person,
    Prediction,
    SyncRun,
)
from lti_app.services.courses import past_offerings
from lti_app.services.dashboard import cohort_weekly, weekly_activity
from lti_app.services.page_cache import CachedPage
from lti_app.web.views import charts
from lti_app.web.views.course import DASHBOARD, build_dashboard
from lti_app.web.views.student import COHORT, build_cohort
from tests.lti_app.lti.env import LtiEnv, launch, token_of
from tests.lti_app.lti.scored_course import score_course_2


@dataclass
class World:
    course_id: int
    teacher: str
    teacher_fr: str
    learner: str
    learner_id: int
    learner_name: str
    other_id: int
    other_name: str
    names: list[str]
    n_students: int


@pytest.fixture(scope="module")
def world(lti_env: LtiEnv) -> World:
    teacher = token_of(launch(lti_env.client(), lti_env, "teacher"))
    course = score_course_2(lti_env)
    learner, other = course.students[0], course.students[1]
    learner_token = token_of(
        launch(
            lti_env.client(), lti_env, "student", sub=str(learner.moodle_user_id),
            name=learner.fullname,
        )
    )  # fmt: skip
    teacher_fr = token_of(launch(lti_env.client(), lti_env, "teacher_fr"))
    return World(
        course_id=course.course_id,
        teacher=teacher,
        teacher_fr=teacher_fr,
        learner=learner_token,
        learner_id=learner.person_id,
        learner_name=learner.fullname,
        other_id=other.person_id,
        other_name=other.fullname,
        names=[st.fullname for st in course.students],
        n_students=len(course.students),
    )


def _get(env: LtiEnv, path: str, token: str) -> tuple[int, str]:
    resp = env.client().get(path, headers={"X-Launch-Token": token})
    return resp.status_code, resp.get_data(as_text=True)


def _specs(page: str) -> dict[str, dict[str, Any]]:
    """The Vega-Lite specs embedded in a page, by chart element id."""
    found = re.findall(r'<div class="vega-chart" id="([^"]+)"[^>]*data-vega-spec="([^"]*)"', page)
    return {cid: json.loads(html.unescape(raw)) for cid, raw in found}


def _values(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every inline data row of a (layered) spec."""
    rows: list[dict[str, Any]] = []
    for dataset in spec.get("datasets", {}).values():
        rows.extend(dataset)
    return rows


def _csrf(env: LtiEnv, path: str, token: str) -> str:
    """The CSRF token as the page hands it to its forms and scripts."""
    _, page = _get(env, path, token)
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found is not None
    return found.group(1)


# --------------------------------------------------------------------------- teacher


def test_dashboard_shows_quality_table_and_charts(lti_env: LtiEnv, world: World) -> None:
    status, page = _get(lti_env, f"/course/{world.course_id}", world.teacher)
    assert status == 200, page[:500]
    assert 'id="sync-slot"' in page
    assert 'id="gate-badge"' in page
    assert "past offerings" in page
    rows = re.findall(r'<tr data-risk="([01])"', page)
    assert len(rows) == world.n_students
    api = lti_env.client().get(
        f"/api/v1/courses/{world.course_id}/students", headers={"X-Launch-Token": world.teacher}
    )
    students = api.get_json()["students"]
    assert rows.count("1") == sum(1 for s in students if s["predicted_pass"] is False)
    specs = _specs(page)
    assert {"chart-grades", "chart-engagement", "chart-importance", "chart-calibration"} <= set(
        specs
    )
    # The grades chart holds one row per student, with the API's values and the pass mark.
    grade_rows = [r for r in _values(specs["chart-grades"]) if "grade" in r]
    assert sorted(r["grade"] for r in grade_rows) == pytest.approx(
        sorted(s["predicted_grade"] for s in students)
    )
    assert {"pass_mark": 10.0} in _values(specs["chart-grades"])
    weeks = [r for r in _values(specs["chart-engagement"]) if "q1" in r]
    assert weeks
    assert all(r["q1"] <= r["median"] <= r["q3"] for r in weeks)
    # The previous offering's median student at the same weeks of its term (#16), as the
    # service computes it for that offering, over the weeks this offering has reached.
    past_rows = [r for r in _values(specs["chart-engagement"]) if set(r) == {"week", "median"}]
    with lti_env.db() as db:
        last = past_offerings(db, world.course_id)[-1]
        expected = cohort_weekly(weekly_activity(db, last, by_category=False))
    reached = max(r["week"] for r in weeks)
    expected = expected[expected["week"] <= reached]
    assert [r["week"] for r in past_rows] == expected["week"].tolist()
    assert [r["median"] for r in past_rows] == pytest.approx(expected["median"].tolist())
    assert "previous offering" in page
    # Each chart has its data table.
    for table in ("table-grades", "table-engagement", "table-importance", "table-calibration"):
        assert f'id="{table}"' in page
    assert "Traceback" not in page


def test_csv_export_has_every_student(lti_env: LtiEnv, world: World) -> None:
    resp = lti_env.client().get(
        f"/course/{world.course_id}/students.csv", headers={"X-Launch-Token": world.teacher}
    )
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert len(rows) == world.n_students
    assert {r["Student"] for r in rows} == set(world.names)
    for r in rows:
        low, grade = float(r["Grade range, low end"]), float(r["Predicted grade (out of 20)"])
        assert low <= grade <= float(r["Grade range, high end"])
        assert 0 <= float(r["Chance of passing (0 to 1)"]) <= 1
    learner = lti_env.client().get(
        f"/course/{world.course_id}/students.csv", headers={"X-Launch-Token": world.learner}
    )
    assert learner.status_code == 403


def test_teacher_student_page_has_what_if_and_sensitivity(lti_env: LtiEnv, world: World) -> None:
    status, page = _get(
        lti_env, f"/course/{world.course_id}/learners/{world.learner_id}", world.teacher
    )
    assert status == 200, page[:500]
    assert 'id="what-if"' in page
    sliders = re.findall(r'<input type="range"[^>]*data-feature="([a-z_]+)"', page)
    assert "active_days" in sliders
    specs = _specs(page)
    assert "chart-weekly" in specs
    assert "chart-history" in specs
    assert any(cid.startswith("chart-sensitivity-") for cid in specs)
    curve = specs["chart-sensitivity-active_days"]
    probabilities = [r["p"] for r in _values(curve) if "p" in r]
    assert len(probabilities) > 2
    assert all(0 <= p <= 1 for p in probabilities)
    assert 'id="factors"' in page


def test_learner_view_switch_needs_csrf_and_hides_the_learner_page(
    lti_env: LtiEnv, world: World
) -> None:
    client = lti_env.client()
    url = f"/course/{world.course_id}/learner-view"
    headers = {"X-Launch-Token": world.teacher}
    assert client.post(url, headers=headers, data={"enabled": "0"}).status_code == 403
    csrf = _csrf(lti_env, f"/course/{world.course_id}", world.teacher)
    off = client.post(url, headers=headers, data={"enabled": "0", "csrf_token": csrf})
    assert off.status_code == 303
    try:
        status, page = _get(lti_env, f"/course/{world.course_id}/me", world.learner)
        assert status == 200
        assert 'id="learner-view-off"' in page
        assert 'id="estimate"' not in page
        # The learner cannot turn it back on.
        learner_post = client.post(
            url, headers={"X-Launch-Token": world.learner}, data={"enabled": "1"}
        )
        assert learner_post.status_code == 403
    finally:
        on = client.post(url, headers=headers, data={"enabled": "1", "csrf_token": csrf})
        assert on.status_code == 303
    status, page = _get(lti_env, f"/course/{world.course_id}/me", world.learner)
    assert 'id="estimate"' in page


# --------------------------------------------------------------------------- learner


def test_learner_sees_own_estimate_only(lti_env: LtiEnv, world: World) -> None:
    status, page = _get(lti_env, f"/course/{world.course_id}/me", world.learner)
    assert status == 200, page[:500]
    assert 'id="estimate"' in page
    assert "estimate" in page
    assert "not a verdict" in page
    assert 'id="what-if"' in page
    assert "chart-engagement" in _specs(page)
    for name in world.names:
        if name != world.learner_name:
            assert name not in page
    assert f"/students/{world.learner_id}/what-if" in page
    assert f"/students/{world.other_id}" not in page
    status, _ = _get(lti_env, f"/course/{world.course_id}", world.learner)
    assert status == 403
    status, _ = _get(lti_env, f"/course/{world.course_id}/learners/{world.other_id}", world.learner)
    assert status == 403


def test_learner_gets_a_plan_that_the_what_if_confirms(lti_env: LtiEnv, world: World) -> None:
    """#17, item 4 on the learner's page: the plan's proposed values, sent to the learner's
    own what-if API as they are, give the grade the plan states, at or above the pass mark
    when the plan reaches it (its bounds are tested in tests/lti_app/test_learner_plan.py)."""
    status, page = _get(lti_env, f"/course/{world.course_id}/me", world.learner)
    assert status == 200
    found = re.search(r'id="plan" data-status="(\w+)" data-changes="([^"]*)"', page)
    assert found, "the learner's page has a plan section"
    state, changes = found.group(1), json.loads(html.unescape(found.group(2)))
    assert state in ("not_needed", "reached", "out_of_reach")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert csrf
    resp = lti_env.client().post(
        f"/api/v1/courses/{world.course_id}/students/{world.learner_id}/what-if",
        headers={"X-Launch-Token": world.learner, "X-CSRF-Token": csrf.group(1)},
        json={"changes": changes},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    grade = resp.get_json()["predicted_grade"]
    if state in ("reached", "not_needed"):
        assert grade >= 10.0
        assert resp.get_json()["probability"] >= 0.5
    else:
        assert grade < 10.0


# --------------------------------------------------------------------------- language


def test_french_launch_renders_french(lti_env: LtiEnv, world: World) -> None:
    status, page = _get(lti_env, f"/course/{world.course_id}", world.teacher_fr)
    assert status == 200
    assert '<html lang="fr">' in page
    assert "Tableau de bord du cours" in page
    assert "Chance de réussite" in page
    # Numbers with a decimal comma.
    assert re.search(r"\d,\d", page)
    status, page = _get(lti_env, f"/course/{world.course_id}", world.teacher)
    assert '<html lang="en">' in page
    assert "Course dashboard" in page


def test_sync_now_button_targets_the_sync_api(lti_env: LtiEnv, world: World) -> None:
    status, page = _get(lti_env, f"/course/{world.course_id}", world.teacher)
    assert status == 200
    assert 'id="sync-now"' in page
    assert f'data-sync-url="/api/v1/courses/{world.course_id}/sync"' in page
    assert 'role="status" aria-live="polite"' in page  # progress is announced
    _, french = _get(lti_env, f"/course/{world.course_id}", world.teacher_fr)
    assert "Synchroniser maintenant" in french
    assert "page {done} sur {total}" in french


# --------------------------------------------------------------------------- states


@contextmanager
def _models(env: LtiEnv, course_id: int, **values: Any) -> Iterator[None]:
    with env.db() as db:
        before = {
            v.id: (v.active, v.gate_passed, v.gate_reason)
            for v in db.scalars(select(ModelVersion).where(ModelVersion.course_id == course_id))
        }
        db.execute(update(ModelVersion).where(ModelVersion.course_id == course_id).values(**values))
    try:
        yield
    finally:
        with env.db() as db:
            for vid, (active, passed, reason) in before.items():
                db.execute(
                    update(ModelVersion)
                    .where(ModelVersion.id == vid)
                    .values(active=active, gate_passed=passed, gate_reason=reason)
                )


def test_gated_model_shows_no_prediction_and_the_reason(lti_env: LtiEnv, world: World) -> None:
    reason = "the grade model does not beat the mean grade"
    with _models(lti_env, world.course_id, gate_passed=False, gate_reason=reason):
        status, page = _get(lti_env, f"/course/{world.course_id}", world.teacher)
        assert status == 200
        assert 'data-state="gated"' in page
        assert reason in page
        assert "chart-grades" not in _specs(page)
        assert "chart-engagement" in _specs(page)
        assert "Predicted grade (range)" not in page
        status, page = _get(lti_env, f"/course/{world.course_id}/me", world.learner)
        assert 'id="no-estimate"' in page
        assert 'id="what-if"' not in page


def test_no_model_is_an_engagement_only_dashboard(lti_env: LtiEnv, world: World) -> None:
    with _models(lti_env, world.course_id, active=False):
        status, page = _get(lti_env, f"/course/{world.course_id}", world.teacher)
        assert status == 200
        assert 'data-state="engagement_only"' in page
        assert "past offering" in page
        assert 'id="gate-badge"' not in page
        assert len(re.findall(r'<tr data-risk="', page)) == world.n_students


def test_failing_sync_shows_moodle_error_and_fix(lti_env: LtiEnv, world: World) -> None:
    with lti_env.db() as db:
        course = db.get_one(Course, world.course_id)
        run = SyncRun(
            site_id=course.site_id,
            course_id=course.id,
            status="failed",
            error_code="invalidtoken",
            error_message="Invalid token - token not found",
        )
        db.add(run)
        db.flush()
        run_id = run.id
    try:
        status, page = _get(lti_env, f"/course/{world.course_id}", world.teacher)
        assert status == 200
        assert 'id="sync-error"' in page
        assert "Invalid token - token not found" in page
        assert "create a new token" in page
    finally:
        with lti_env.db() as db:
            db.execute(delete(SyncRun).where(SyncRun.id == run_id))


def test_student_without_events(lti_env: LtiEnv, world: World) -> None:
    with lti_env.db() as db:
        course = db.get_one(Course, world.course_id)
        person = Person(site_id=course.site_id, moodle_user_id=999_001, fullname="Quiet Student")
        db.add(person)
        db.flush()
        db.add(Enrolment(course_id=course.id, person_id=person.id, role="student"))
        person_id = person.id
    try:
        status, page = _get(
            lti_env, f"/course/{world.course_id}/learners/{person_id}", world.teacher
        )
        assert status == 200, page[:400]
        assert 'id="no-events"' in page
        assert 'id="no-estimate"' in page
    finally:
        with lti_env.db() as db:
            db.execute(delete(Enrolment).where(Enrolment.person_id == person_id))
            db.execute(delete(Person).where(Person.id == person_id))


def test_unscored_course_with_no_students(lti_env: LtiEnv) -> None:
    """Another course of the same platform, never synced: the dashboard says why it is empty."""
    fresh_course = _fresh_dashboard(lti_env)
    assert 'data-state="no_data"' in fresh_course
    assert 'id="no-students"' in fresh_course


def _fresh_dashboard(env: LtiEnv) -> str:
    """The dashboard of course 99 (launched from another context), which has no data at all."""
    resp = launch(
        env.client(),
        env,
        "teacher",
        **{
            "https://purl.imsglobal.org/spec/lti/claim/context": {
                "id": "99",
                "label": "EMPTY",
                "title": "Empty course",
                "type": ["CourseSection"],
            }
        },
    )
    token = token_of(resp)
    with env.db() as db:
        course = db.scalar(select(Course).where(Course.lti_context_id == "99"))
        assert course is not None
        course_id = course.id
    status, page = _get(env, f"/course/{course_id}", token)
    assert status == 200, page[:400]
    return page


# --------------------------------------------------------------------------- admin

SYS_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


def test_admin_page_lists_registration_sync_scheduler_and_models(
    lti_env: LtiEnv, world: World
) -> None:
    from lti_app.scheduler import default_jobs

    claims: dict[str, Any] = {CLAIM + "roles": [SYS_ADMIN]}
    admin = token_of(
        launch(
            lti_env.client(),
            lti_env,
            "student",
            sub="2",
            name="Ada Admin",
            **claims,
        )
    )
    with lti_env.db() as db:
        course = db.get_one(Course, world.course_id)
        db.add(
            SyncRun(
                site_id=course.site_id,
                course_id=course.id,
                status="failed",
                error_code="nopermissions",
                error_message="Sorry, but you do not currently have permissions",
            )
        )
        site_id = course.site_id
        n_versions = len(db.scalars(select(ModelVersion)).all())
    status, page = _get(lti_env, "/admin", admin)
    assert status == 200, page[:400]
    assert "/lti/launch" in page
    assert "/lti/jwks" in page
    assert lti_env.platform.client_id in page
    for job in default_jobs():
        assert f"<code>{job.name}</code>" in page
    assert "Sorry, but you do not currently have permissions" in page
    versions = re.findall(r"<tr><td>[^<]*</td><td>[^<]*</td><td><code>(\d[^<]*)</code>", page)
    assert len(versions) == n_versions
    assert "passed" in page
    # The connection check runs on demand (a POST with the CSRF token) and reports in words.
    csrf = _csrf(lti_env, "/admin", admin)
    client = lti_env.client()
    url = f"/admin/sites/{site_id}/check"
    assert client.post(url, headers={"X-Launch-Token": admin}).status_code == 403
    checked = client.post(url, headers={"X-Launch-Token": admin}, data={"csrf_token": csrf})
    assert checked.status_code == 200
    text = checked.get_data(as_text=True)
    assert 'id="check-result"' in text
    assert "no web-service token" in text
    # Teachers and learners are refused.
    assert client.post(url, headers={"X-Launch-Token": world.teacher}).status_code == 403
    assert _get(lti_env, "/admin", world.teacher)[0] == 403


# --------------------------------------------------------------------------- chart specs


def _vega_lite_errors(spec: dict[str, Any]) -> str | None:
    """The schema error of a spec, as Altair's validation (off at runtime, see `charts._spec`)
    would report it, or None."""
    from altair.utils.schemapi import validate_jsonschema
    from altair.vegalite.v6.schema import load_schema

    error = validate_jsonschema(spec, load_schema(), raise_error=False)
    return None if error is None else f"{'/'.join(map(str, error.absolute_path))}: {error.message}"


def test_every_chart_spec_the_app_builds_is_valid_vega_lite(lti_env: LtiEnv, world: World) -> None:
    """The app builds its specs unvalidated (validation was a third of the dashboard's cost):
    every spec of every page and state is checked against the Vega-Lite schema here."""
    cid = world.course_id
    pages = [
        (f"/course/{cid}", world.teacher),
        (f"/course/{cid}", world.teacher_fr),
        (f"/course/{cid}/learners/{world.learner_id}", world.teacher),
        (f"/course/{cid}/me", world.learner),
    ]
    specs: dict[str, dict[str, Any]] = {}
    for path, token in pages:
        status, page = _get(lti_env, path, token)
        assert status == 200, page[:300]
        specs.update({f"{path} {k}": v for k, v in _specs(page).items()})
    with _models(lti_env, cid, active=False):
        _, page = _get(lti_env, f"/course/{cid}", world.teacher)
        specs.update({f"engagement-only {k}": v for k, v in _specs(page).items()})
    kinds = {key.split(" ")[-1] for key in specs}
    assert {
        "chart-grades",
        "chart-engagement",
        "chart-importance",
        "chart-calibration",
        "chart-weekly",
        "chart-history",
        "chart-sensitivity-active_days",
    } <= kinds
    for key, spec in specs.items():
        assert _vega_lite_errors(spec) is None, key
    # The check does catch a broken spec.
    broken = {**specs[f"/course/{cid} chart-grades"], "layer": [{"mark": "dot"}]}
    assert _vega_lite_errors(broken) is not None
    # No layered spec sorts one discrete field two ways (Vega's warning "Domains that should be
    # unioned has conflicting sort properties").
    for key, spec in specs.items():
        assert _sort_conflicts(spec) == [], key


_CHANNELS = ("x", "y", "x2", "y2", "color", "size", "shape", "opacity")


def _sort_conflicts(spec: dict[str, Any]) -> list[str]:
    """The discrete fields that a spec's layers share on one channel but sort differently. A
    sort by another channel (`"-x"`) is read as a sort by that layer's field on it, and no sort
    as Vega-Lite's default, ascending."""
    conflicts: list[str] = []
    layers = spec.get("layer") or []
    for channel in _CHANNELS:
        sorts: dict[str, set[str]] = {}
        for layer in layers:
            encoding = layer.get("encoding") or {}
            enc = encoding.get(channel)
            if not isinstance(enc, dict) or enc.get("type") not in ("nominal", "ordinal"):
                continue
            sort = enc.get("sort", "ascending")
            if isinstance(sort, str) and sort.lstrip("-") in _CHANNELS:
                by = encoding.get(sort.lstrip("-")) or {}
                order = "descending" if sort.startswith("-") else "ascending"
                sort = {"field": by.get("field"), "order": order}
            sorts.setdefault(enc["field"], set()).add(json.dumps(sort, sort_keys=True))
        conflicts += [f"{channel}:{field}" for field, seen in sorts.items() if len(seen) > 1]
    for layer in layers:
        conflicts += _sort_conflicts(layer)
    return conflicts


def test_the_sort_check_catches_two_layers_sorted_by_their_own_x() -> None:
    """The importance chart as it was: bars and error rules on the same features, each sorted
    by "-x", which is the importance for one and the interval's low end for the other."""
    y = {"field": "feature", "type": "nominal", "sort": "-x"}
    old = {
        "layer": [
            {"mark": "bar", "encoding": {"y": y, "x": {"field": "importance"}}},
            {"mark": "rule", "encoding": {"y": y, "x": {"field": "ci_low"}}},
        ]
    }
    assert _sort_conflicts(old) == ["y:feature"]
    spec = charts.feature_importance(
        [{"feature": "active_days", "importance": 0.1, "ci_low": 0.0, "ci_high": 0.2}], {}
    )
    assert _sort_conflicts(spec) == []


def test_namesakes_are_two_marks_with_their_moodle_ids() -> None:
    """Two students with the same name are two rows of the grade chart, each keyed by its
    person id and labelled with its Moodle id; a unique name stays as it is."""
    rows: list[dict[str, Any]] = [
        {"person_id": 7, "moodle_user_id": 101, "fullname": "Alex Martin"},
        {"person_id": 8, "moodle_user_id": 102, "fullname": "Alex Martin"},
        {"person_id": 9, "moodle_user_id": 103, "fullname": "Zoé Petit"},
        {"person_id": 10, "moodle_user_id": None, "fullname": "Zoé Petit"},
    ]
    for i, r in enumerate(rows):
        r.update(predicted_grade=8.0 + i, grade_interval=[6.0 + i, 10.0 + i], at_risk=False)
    assert charts.mark_labels(rows) == {
        7: "Alex Martin (#101)",
        8: "Alex Martin (#102)",
        9: "Zoé Petit (#103)",
        10: "Zoé Petit (#10)",
    }
    spec = charts.predicted_grades(rows, 10.0)
    marks = [r for r in _values(spec) if "grade" in r]
    assert sorted(r["key"] for r in marks) == ["10", "7", "8", "9"]
    assert len({r["name"] for r in marks}) == 4
    dots = spec["layer"][1]["encoding"]
    assert dots["y"]["field"] == "name"
    assert dots["detail"]["field"] == "key"
    alone = charts.mark_labels([{"person_id": 1, "moodle_user_id": 5, "fullname": "Ada"}])
    assert alone == {1: "Ada"}


# --------------------------------------------------------------------------- the page cache


def _student_links(page: str) -> list[str]:
    return re.findall(r'<a class="student-link" href="([^"]+)"', page)


def test_cached_dashboard_follows_a_new_scoring(lti_env: LtiEnv, world: World) -> None:
    """A scoring after the page was cached shows at once; removing it shows the old one."""
    from lti_app.models import Prediction

    path = f"/course/{world.course_id}"
    _, before = _get(lti_env, path, world.teacher)
    assert len(re.findall(r'<tr data-risk="', before)) == world.n_students
    with lti_env.db() as db:
        latest = _latest(db, world.course_id)
        newer = _a_year_later(latest, world.other_id, (1.0, 3.25, 5.5), (0.01, 0.05, 0.1))
        db.add(newer)
        db.flush()
        newer_id = newer.id
    try:
        _, after = _get(lti_env, path, world.teacher)
        assert len(re.findall(r'<tr data-risk="', after)) == 1
        assert world.other_name in after
        assert "3.2 <span" in after  # 3.25, half-even to one decimal, as Babel rounds
    finally:
        with lti_env.db() as db:
            db.execute(delete(Prediction).where(Prediction.id == newer_id))
    _, again = _get(lti_env, path, world.teacher)
    assert len(re.findall(r'<tr data-risk="', again)) == world.n_students


def _latest(db: Session, course_id: int) -> Prediction:
    """One of the course's latest predictions: the shape of a scoring's row to copy."""
    latest = db.scalars(
        select(Prediction)
        .where(Prediction.course_id == course_id)
        .order_by(Prediction.as_of.desc())
    ).first()
    assert latest is not None
    return latest


def _a_year_later(
    latest: Prediction,
    person_id: int,
    grade: tuple[float, float, float],
    chance: tuple[float, float, float],
) -> Prediction:
    """A prediction for `person_id` a year after `latest` (so the pages show it alone as the
    course's latest scoring), with its grade and chance given as (low, value, high)."""
    return Prediction(
        course_id=latest.course_id,
        person_id=person_id,
        regression_model_id=latest.regression_model_id,
        classification_model_id=latest.classification_model_id,
        as_of=latest.as_of.replace(year=latest.as_of.year + 1),
        predicted_grade=grade[1],
        grade_lower=grade[0],
        grade_upper=grade[2],
        pass_probability=chance[1],
        probability_lower=chance[0],
        probability_upper=chance[2],
        uncertainty=(chance[2] - chance[0]) / 4,
        predicted_pass=chance[1] >= 0.5,
        features=dict(latest.features),
        explanation={},
    )


#: Estimates right at the pass mark (10/20) and at a threshold: stored, and as each page must show
#: them (chance, grade), each on its side of the line. The first is the demo's row that read
#: "10.0" and "50 %" while flagged under "pass chance under 50 %".
AT_THE_LINES = [
    # (grade, chance, threshold) -> (grade shown, chance shown)
    ((9.957, 0.4961, 0.5), ("9.9", "49 %")),
    ((10.04, 0.504, 0.5), ("10.0", "50 %")),
    ((9.951, 0.4951, 0.5), ("9.9", "49 %")),
    ((10.0, 0.5, 0.5), ("10.0", "50 %")),
    ((9.99996, 0.49996, 0.5), ("9.9", "49 %")),  # four digits in the files: 9.999, 0.4999
    ((9.4, 0.3335, 0.333), ("9.4", "34 %")),
    ((9.2, 0.3329, 0.333), ("9.2", "33 %")),
    # No whole percent lies in [49.5 %, 50 %): a tenth more.
    ((9.9, 0.497, 0.495), ("9.9", "49.7 %")),
    ((9.8, 0.4949, 0.495), ("9.8", "49 %")),
]


def _row_shown(page: str, person_id: int) -> tuple[bool, str, str, str]:
    """(flagged, grade, grade range, chance) of one row of the teacher's table, as shown."""
    found = re.search(
        rf'<tr data-risk="(\d)" data-person="{person_id}".*?class="grade">([^<]*)'
        r'<span[^>]*>\(([^)]*)\)</span>.*?chance">([^<]*)</span>',
        page,
        re.S,
    )
    assert found is not None, person_id
    flagged, grade, span, chance = found.groups()
    return flagged == "1", grade.strip(), span, html.unescape(chance).replace("\xa0", " ")


@pytest.mark.parametrize("threshold", [0.5, 0.333, 0.495])
def test_numbers_at_the_pass_mark_and_threshold_stay_on_their_side(
    lti_env: LtiEnv, world: World, threshold: float
) -> None:
    """A stored 9.957 and 0.4961 (at risk under 50 %) read "9.9" and "49 %" on the teacher's
    table, the student's page and the learner's own, never "10.0" and "50 %"; a chance of
    0.3335 under a threshold of 33.3 % reads "34 %", not "33 %", and the rule states "33.3 %"."""
    from tests.lti_app.test_chance_words import check_shown_estimate

    cases = [(stored, shown) for stored, shown in AT_THE_LINES if stored[2] == threshold]
    path = f"/course/{world.course_id}"
    added: list[int] = []
    with lti_env.db() as db:
        latest = _latest(db, world.course_id)
        people = [world.learner_id] + [
            pid
            for pid in db.scalars(
                select(Prediction.person_id)
                .where(Prediction.course_id == world.course_id, Prediction.as_of == latest.as_of)
                .order_by(Prediction.person_id)
            )
            if pid != world.learner_id
        ]
        assert len(people) >= len(cases)
        mark = float(lti_env.app.extensions["arche_predict"]["settings"].ml.pass_mark)
        db.get_one(Course, world.course_id).risk_threshold = threshold
        for person_id, ((grade, chance, _), _shown) in zip(
            people[: len(cases)], cases, strict=True
        ):
            row = _a_year_later(
                latest,
                person_id,
                (grade - 5.85, grade, grade + 4.55),
                (chance - 0.32, chance, chance + 0.28),
            )
            db.add(row)
            db.flush()
            added.append(row.id)
    try:
        _, page = _get(lti_env, path, world.teacher)
        rule = re.search(r'id="risk-rule">([^<]*)<', page)
        assert rule is not None
        stated = float(re.findall(r"\d+(?:\.\d+)?", rule.group(1))[0])
        assert stated == round(100 * threshold, 2), rule.group(1)
        for person_id, ((grade, chance, _), (grade_shown, chance_shown)) in zip(
            people[: len(cases)], cases, strict=True
        ):
            flagged, shown_grade, span, shown_chance = _row_shown(page, person_id)
            assert (shown_grade, shown_chance) == (grade_shown, chance_shown), (grade, chance)
            assert flagged == (chance < threshold)
            check_shown_estimate(shown_grade, shown_chance, flagged, mark, stated)
            low, high = (float(n) for n in span.split("\u2013"))
            assert low <= float(shown_grade) <= high, span
        # The files: four significant digits, on the same side of the lines as the page.
        text = (
            lti_env.client()
            .get(f"{path}/students.csv", headers={"X-Launch-Token": world.teacher})
            .get_data(as_text=True)
        )
        rows = {int(r[0]): r for r in list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]}
        for person_id, ((grade, chance, _), _shown) in zip(
            people[: len(cases)], cases, strict=True
        ):
            got_grade, got_chance, at_risk = (
                float(rows[person_id][3]),
                float(rows[person_id][6]),
                rows[person_id][10],
            )
            assert (at_risk == "Yes") == (got_chance < threshold) == (chance < threshold)
            assert (got_grade >= mark) == (got_chance >= 0.5) == (grade >= mark), rows[person_id]
        # The student's page (teacher) and the learner's own, for the first case (the one
        # plain rounding gets wrong).
        (grade, chance, _), (grade_shown, chance_shown) = cases[0]
        for token, where in (
            (world.teacher, f"{path}/learners/{world.learner_id}"),
            (world.learner, f"{path}/me"),
        ):
            status, text = _get(lti_env, where, token)
            assert status == 200, text[:300]
            page_text = html.unescape(text).replace("\xa0", " ")
            estimate = page_text.split('id="estimate"', 1)[1].split("</section>", 1)[0]
            assert f'class="chance">{chance_shown}<' in estimate, where
            assert re.search(rf"\b{re.escape(grade_shown)}\b", estimate), where
            if f"{grade:.1f}" != grade_shown:  # the plain rounding, across the line
                assert f"{grade:.1f}" not in estimate, where
    finally:
        with lti_env.db() as db:
            db.execute(delete(Prediction).where(Prediction.id.in_(added)))
            db.get_one(Course, world.course_id).risk_threshold = None


def test_a_changed_pass_mark_is_said_on_the_students_pages(lti_env: LtiEnv, world: World) -> None:
    """After a teacher changes the pass mark, the estimate still reads the mark it was made
    for until the next scoring: the student's and the learner's pages say so, with both
    marks, in the reader's language."""
    path = f"/course/{world.course_id}"
    for token, where in ((world.teacher, f"{path}/learners/{world.learner_id}"),
                         (world.learner, f"{path}/me")):  # fmt: skip
        _, page = _get(lti_env, where, token)
        assert 'id="pass-mark-changed"' not in page
    with lti_env.db() as db:
        db.get_one(Course, world.course_id).pass_mark = 12.0
    try:
        for token, where in ((world.teacher, f"{path}/learners/{world.learner_id}"),
                             (world.learner, f"{path}/me")):  # fmt: skip
            status, page = _get(lti_env, where, token)
            assert status == 200
            said = re.search(r'id="pass-mark-changed">([^<]*)<', html.unescape(page))
            assert said is not None, where
            assert "now 12/20" in said.group(1)
            assert "made for 10/20" in said.group(1)
        _, page = _get(lti_env, f"{path}/learners/{world.learner_id}", world.teacher_fr)
        said = re.search(r'id="pass-mark-changed">([^<]*)<', html.unescape(page))
        assert said is not None
        assert "maintenant 12/20" in said.group(1)
        assert "faite pour 10/20" in said.group(1)
    finally:
        with lti_env.db() as db:
            db.get_one(Course, world.course_id).pass_mark = None


def test_cached_dashboard_follows_models_sync_and_locale(lti_env: LtiEnv, world: World) -> None:
    path = f"/course/{world.course_id}"
    _, page = _get(lti_env, path, world.teacher)
    assert 'id="gate-badge"' in page
    with _models(lti_env, world.course_id, gate_passed=False, gate_reason="withheld for a test"):
        _, gated = _get(lti_env, path, world.teacher)
        assert 'data-state="gated"' in gated
        assert "withheld for a test" in gated
    _, page = _get(lti_env, path, world.teacher)
    assert 'id="gate-badge"' in page
    assert "Moodle could not be reached" not in page
    with lti_env.db() as db:
        course = db.get_one(Course, world.course_id)
        run = SyncRun(
            site_id=course.site_id, course_id=course.id, status="failed", error_code="unavailable"
        )
        db.add(run)
        db.flush()
        run_id = run.id
    try:
        _, failed = _get(lti_env, path, world.teacher)
        assert 'id="sync-error"' in failed
        assert "Moodle could not be reached" in failed
    finally:
        with lti_env.db() as db:
            db.execute(delete(SyncRun).where(SyncRun.id == run_id))
    _, page = _get(lti_env, path, world.teacher)
    assert "Moodle could not be reached" not in page
    # The same data in the other language is another entry, and each stays in its language.
    for token, lang, word in (
        (world.teacher_fr, "fr", "Chance de réussite"),
        (world.teacher, "en", "Chance of passing"),
        (world.teacher_fr, "fr", "Chance de réussite"),
    ):
        _, page = _get(lti_env, path, token)
        assert f'<html lang="{lang}">' in page
        assert word in page
        assert ("days ago" in page) == (lang == "en")


def test_one_course_cached_page_never_shows_in_another(lti_env: LtiEnv, world: World) -> None:
    _, page = _get(lti_env, f"/course/{world.course_id}", world.teacher)
    assert world.other_name in page
    empty = _fresh_dashboard(lti_env)
    assert 'data-state="no_data"' in empty
    assert 'id="risk-table"' not in empty
    for name in world.names:
        assert name not in empty


def test_session_tokens_are_per_request_not_cached(lti_env: LtiEnv, world: World) -> None:
    """Two teachers share the cached page, never each other's launch or CSRF tokens."""
    other = token_of(launch(lti_env.client(), lti_env, "teacher"))
    path = f"/course/{world.course_id}"
    pages = {token: _get(lti_env, path, token)[1] for token in (world.teacher, other)}
    seen: dict[str, tuple[set[str], str]] = {}
    for token, page in pages.items():
        links = _student_links(page)
        assert len(links) == world.n_students
        tokens = {parse_qs(urlsplit(html.unescape(link)).query)["lt"][0] for link in links}
        assert len(tokens) == 1  # one token per request, the same in every row
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
        assert csrf is not None
        seen[token] = (tokens, csrf.group(1))
        # The link's token opens the student page as this session.
        link = urlsplit(html.unescape(links[0]))
        status, _ = _get(lti_env, link.path, next(iter(tokens)))
        assert status == 200
        assert "lt-slot-" not in page
    (tokens_a, csrf_a), (tokens_b, csrf_b) = seen.values()
    assert tokens_a != tokens_b
    assert csrf_a != csrf_b


@contextmanager
def _new_roster_member(env: LtiEnv, course_id: int) -> Iterator[None]:
    with env.db() as db:
        course = db.get_one(Course, course_id)
        person = Person(site_id=course.site_id, moodle_user_id=999_002, fullname="New Student")
        db.add(person)
        db.flush()
        db.add(Enrolment(course_id=course.id, person_id=person.id, role="student"))
        person_id = person.id
    try:
        yield
    finally:
        with env.db() as db:
            db.execute(delete(Enrolment).where(Enrolment.person_id == person_id))
            db.execute(delete(Person).where(Person.id == person_id))


@contextmanager
def _new_pass_mark(env: LtiEnv, course_id: int) -> Iterator[None]:
    with env.db() as db:
        course = db.get_one(Course, course_id)
        mark, course.pass_mark = course.pass_mark, 12.5
    try:
        yield
    finally:
        with env.db() as db:
            db.get_one(Course, course_id).pass_mark = mark


@contextmanager
def _new_scoring(env: LtiEnv, course_id: int, person_id: int) -> Iterator[None]:
    with env.db() as db:
        latest = db.scalar(
            select(func.max(Prediction.as_of)).where(Prediction.course_id == course_id)
        )
        assert latest is not None
        # A scoring by the active models (the one the pages show; one by an inactive model is
        # not shown and must not move the key).
        active = dict(
            db.execute(
                select(ModelVersion.task, ModelVersion.id).where(
                    ModelVersion.course_id == course_id, ModelVersion.active
                )
            ).all()
        )
        row = Prediction(
            course_id=course_id,
            person_id=person_id,
            as_of=latest + timedelta(days=1),
            features={},
            regression_model_id=active.get("regression"),
            classification_model_id=active.get("classification"),
        )
        db.add(row)
        db.flush()
        row_id = row.id
    try:
        yield
    finally:
        with env.db() as db:
            db.execute(delete(Prediction).where(Prediction.id == row_id))


@contextmanager
def _new_sync_run(env: LtiEnv, course_id: int) -> Iterator[None]:
    with env.db() as db:
        course = db.get_one(Course, course_id)
        run = SyncRun(site_id=course.site_id, course_id=course.id, status="running")
        db.add(run)
        db.flush()
        run_id = run.id
    try:
        yield
    finally:
        with env.db() as db:
            db.execute(delete(SyncRun).where(SyncRun.id == run_id))


@contextmanager
def _new_live_validation(env: LtiEnv, course_id: int) -> Iterator[None]:
    """A finished term's live validation is computed (#17): the model card shows it."""
    with env.db() as db:
        db.add(LiveValidation(course_id=course_id, pass_mark=10.0, n_students=1, weeks=[]))
        db.flush()
    try:
        yield
    finally:
        with env.db() as db:
            db.execute(delete(LiveValidation).where(LiveValidation.course_id == course_id))


@contextmanager
def _new_past_end(env: LtiEnv, course_id: int) -> Iterator[None]:
    """A past offering's end date moves: the term of a course without one moves with it."""
    with env.db() as db:
        past = db.scalar(
            select(Course)
            .join(CourseLineage, CourseLineage.past_course_id == Course.id)
            .where(CourseLineage.course_id == course_id)
            .order_by(Course.id)
            .limit(1)
        )
        assert past is not None
        assert past.end_at is not None
        past_id, end = past.id, past.end_at
        past.end_at = end + timedelta(days=7)
    try:
        yield
    finally:
        with env.db() as db:
            db.get_one(Course, past_id).end_at = end


#: A change of each page input, as a test can make and undo it.
INPUT_CHANGES: dict[str, Callable[[LtiEnv, World], AbstractContextManager[None]]] = {
    "course": lambda env, world: _new_pass_mark(env, world.course_id),
    "scoring": lambda env, world: _new_scoring(env, world.course_id, world.learner_id),
    "models": lambda env, world: _models(env, world.course_id, gate_passed=False),
    "sync": lambda env, world: _new_sync_run(env, world.course_id),
    "roster": lambda env, world: _new_roster_member(env, world.course_id),
    "term": lambda env, world: _new_past_end(env, world.course_id),
    "live": lambda env, world: _new_live_validation(env, world.course_id),
}
CACHED_PAGES = (DASHBOARD, COHORT)


def test_every_declared_input_has_a_change_to_test() -> None:
    assert {i.name for page in CACHED_PAGES for i in page.inputs} == set(INPUT_CHANGES)


@pytest.mark.parametrize("input_name", sorted(INPUT_CHANGES))
def test_a_page_key_moves_exactly_with_the_inputs_it_declares(
    lti_env: LtiEnv, world: World, input_name: str
) -> None:
    """Each input's change moves the key of every page that declares it, and of no other
    (the cohort's quartiles do not wait for a new scoring); undone, the keys come back."""

    def keys() -> dict[str, tuple[Any, ...]]:
        with lti_env.db() as db:
            course = db.get_one(Course, world.course_id)
            return {page.name: page.key(db, course) for page in CACHED_PAGES}

    base = keys()
    assert base == keys()
    assert len(set(base.values())) == len(CACHED_PAGES)  # no two pages share an entry
    with INPUT_CHANGES[input_name](lti_env, world):
        changed = keys()
    for page in CACHED_PAGES:
        declared = input_name in {i.name for i in page.inputs}
        assert (changed[page.name] != base[page.name]) == declared, page.name
    assert keys() == base


_READ = re.compile(r'\b(?:FROM|JOIN)\s+"?([A-Za-z_][A-Za-z0-9_]*)"?', re.IGNORECASE)


@contextmanager
def _tables_read(env: LtiEnv) -> Iterator[set[str]]:
    """The tables every statement sent to the database names in a FROM or JOIN."""
    tables: set[str] = set()
    known = set(Base.metadata.tables)

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        tables.update(t for t in _READ.findall(statement) if t in known)

    event.listen(env.engine, "before_cursor_execute", record)
    try:
        yield tables
    finally:
        event.remove(env.engine, "before_cursor_execute", record)


def _build(page: CachedPage, env: LtiEnv, world: World) -> None:
    with env.app.test_request_context(), env.db() as db:
        course = db.get_one(Course, world.course_id)
        if page is DASHBOARD:
            build_dashboard(db, course, ml=env.settings.ml)
        elif page is COHORT:
            build_cohort(db, course)
        else:  # a new cached page: give its builder here
            raise AssertionError(f"no builder known for {page.name}")


@pytest.mark.parametrize("page", CACHED_PAGES, ids=lambda p: p.name)
def test_a_cached_page_reads_only_what_it_declares(
    lti_env: LtiEnv, world: World, page: CachedPage
) -> None:
    """Its builder, run over a scored course with models (every branch of the page that shows
    data), queries no table outside its declared inputs: a chart that starts reading something
    new fails here until its page declares it, so its key cannot miss the change."""
    with _tables_read(lti_env) as read:
        _build(page, lti_env, world)
    assert read, "the builder read nothing: the recording missed it"
    assert read <= page.tables, f"{page.name} reads undeclared tables: {read - page.tables}"

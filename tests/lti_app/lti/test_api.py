"""The JSON API over real launches: a scored simulated course, a teacher and two learners."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from lti_app.models import Course, ModelVersion, Prediction
from lti_app.services.insights import ModelCache
from tests.lti_app.lti.api_sessions import ApiSessions, api_sessions
from tests.lti_app.lti.env import LtiEnv
from tests.lti_app.lti.scored_course import FAST


@pytest.fixture(scope="module")
def scored(lti_env: LtiEnv) -> ApiSessions:
    """The teacher and a learner of the scored course 2, as API headers."""
    return api_sessions(lti_env)


def test_teacher_reads_summary_and_students(lti_env: LtiEnv, scored: ApiSessions) -> None:
    client = lti_env.client()
    summary = client.get(f"/api/v1/courses/{scored.course_id}", headers=scored.teacher)
    assert summary.status_code == 200, summary.get_data(as_text=True)
    body = summary.get_json()
    assert body["state"] == "predictions"
    assert body["students"] >= 25
    assert body["models"]["regression"]["gate_passed"] is True
    assert "r2" in str(body["models"]["regression"]["metrics"])
    rows = client.get(f"/api/v1/courses/{scored.course_id}/students", headers=scored.teacher)
    students = rows.get_json()["students"]
    assert len(students) == body["students"]
    for s in students:
        low, high = s["grade_interval"]
        assert low <= s["predicted_grade"] <= high
        assert 0 <= s["pass_probability"] <= 1
    at_risk = sum(1 for s in students if s["predicted_pass"] is False)
    assert body["at_risk"] == at_risk


def test_learner_reads_only_their_own_record(lti_env: LtiEnv, scored: ApiSessions) -> None:
    client = lti_env.client()
    base = f"/api/v1/courses/{scored.course_id}"
    own = client.get(f"{base}/students/{scored.learner_id}", headers=scored.learner)
    assert own.status_code == 200
    assert own.get_json()["latest"]["predicted_grade"] is not None
    for path in (f"{base}/students/{scored.other_id}", base, f"{base}/students"):
        refused = client.get(path, headers=scored.learner)
        assert refused.status_code == 403, path
        assert refused.get_json()["status"] == 403
    nobody = client.get(f"{base}/students/{scored.learner_id}")
    assert nobody.status_code == 401


def test_what_if_answers_in_the_success_predictor_shape(
    lti_env: LtiEnv, scored: ApiSessions
) -> None:
    client = lti_env.client()
    url = f"/api/v1/courses/{scored.course_id}/students/{scored.learner_id}/what-if"
    detail = client.get(
        f"/api/v1/courses/{scored.course_id}/students/{scored.learner_id}", headers=scored.learner
    ).get_json()
    days = detail["features"]["active_days"]
    more = client.post(url, headers=scored.learner, json={"changes": {"active_days": days + 20}})
    assert more.status_code == 200, more.get_data(as_text=True)
    result = more.get_json()
    for key in ("probability", "prediction", "confidence", "uncertainty", "ci_95",
                "predicted_grade", "grade_interval"):  # fmt: skip
        assert key in result
    assert result["ci_95"][0] <= result["probability"] <= result["ci_95"][1] + 1e-9
    assert result["confidence"] == pytest.approx(
        max(result["probability"], 1 - result["probability"])
    )
    unchanged = client.post(url, headers=scored.learner, json={"changes": {}}).get_json()
    assert unchanged["probability"] == pytest.approx(unchanged["current"]["probability"])
    # A teacher may ask about any student of the course.
    assert client.post(url, headers=scored.teacher, json={"changes": {}}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"changes": {"z_n_actions": 3}}, "cannot be changed"),
        ({"changes": {"active_days": "many"}}, "finite number"),
        ({"change": {}}, "must be JSON like"),
    ],
)
def test_what_if_refuses_bad_bodies_in_json(
    lti_env: LtiEnv, scored: ApiSessions, body: dict[str, object], message: str
) -> None:
    url = f"/api/v1/courses/{scored.course_id}/students/{scored.learner_id}/what-if"
    resp = lti_env.client().post(url, headers=scored.learner, json=body)
    assert resp.status_code == 400
    assert message in resp.get_json()["message"]


def test_what_if_needs_the_csrf_token(lti_env: LtiEnv, scored: ApiSessions) -> None:
    url = f"/api/v1/courses/{scored.course_id}/students/{scored.learner_id}/what-if"
    headers = {k: v for k, v in scored.learner.items() if k != "X-CSRF-Token"}
    assert lti_env.client().post(url, headers=headers, json={"changes": {}}).status_code == 403


def test_learner_view_can_be_turned_off(lti_env: LtiEnv, scored: ApiSessions) -> None:
    client = lti_env.client()
    url = f"/api/v1/courses/{scored.course_id}/students/{scored.learner_id}"
    with lti_env.db() as db:
        db.get_one(Course, scored.course_id).learner_view_enabled = False
    try:
        off = client.get(url, headers=scored.learner)
        assert off.status_code == 403
        assert off.get_json()["code"] == "learner_view_off"
        assert client.get(url, headers=scored.teacher).status_code == 200
    finally:
        with lti_env.db() as db:
            db.get_one(Course, scored.course_id).learner_view_enabled = True


def test_openapi_document(lti_env: LtiEnv) -> None:
    spec = lti_env.client().get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/courses/{course_id}/students/{person_id}/what-if" in spec["paths"]
    required = spec["components"]["schemas"]["WhatIfResult"]["required"]
    assert {"probability", "prediction", "confidence", "uncertainty", "ci_95"} <= set(required)


def test_what_if_moves_the_cohort_z_score_from_cached_cohort_stats(
    lti_env: LtiEnv, scored: ApiSessions
) -> None:
    """The cohort's mean and spread come from the scoring's stored features, computed once per
    scoring (course, as_of) and then served from the cache."""
    with lti_env.db() as db:
        as_of = db.scalar(
            select(func.max(Prediction.as_of)).where(Prediction.course_id == scored.course_id)
        )
        assert as_of is not None
        days = [
            float(f["active_days"])
            for f in db.scalars(
                select(Prediction.features).where(
                    Prediction.course_id == scored.course_id, Prediction.as_of == as_of
                )
            )
        ]
        cache = ModelCache()
        stats = cache.cohort(db, scored.course_id, as_of)
        assert stats["active_days"] == pytest.approx((np.mean(days), np.std(days)))
        assert cache.cohort(db, scored.course_id, as_of) is stats  # served from the cache
    # Through the API: more active days than anyone in the cohort raise the pass chance.
    url = f"/api/v1/courses/{scored.course_id}/students/{scored.learner_id}/what-if"
    client = lti_env.client()
    base = client.post(url, headers=scored.learner, json={"changes": {}}).get_json()
    more = client.post(
        url, headers=scored.learner, json={"changes": {"active_days": max(days) + 30}}
    ).get_json()
    assert more["delta_probability"] >= 0
    assert more["current"]["probability"] == pytest.approx(base["probability"])


def test_what_if_answers_what_the_model_pipelines_answer(
    lti_env: LtiEnv, scored: ApiSessions
) -> None:
    """The route's numbers are the stored model's, scored through its checked DataFrame path on
    the student's latest stored features; a repeated call (feature row from the cache) gives
    the same answer."""
    from ml.explain import what_if as ml_what_if

    with lti_env.db() as db:
        reg = db.scalars(
            select(ModelVersion).where(
                ModelVersion.course_id == scored.course_id,
                ModelVersion.active,
                ModelVersion.task == "regression",
            )
        ).one()
        bundle = ModelCache().get(lti_env.settings.model_root, reg)
        stored = db.scalars(
            select(Prediction.features)
            .where(
                Prediction.course_id == scored.course_id,
                Prediction.person_id == scored.learner_id,
            )
            .order_by(Prediction.as_of.desc())
            .limit(1)
        ).one()
    features = bundle.regressor.features
    row = pd.DataFrame(
        [[np.nan if stored.get(f) is None else float(stored[f]) for f in features]],
        columns=features,
    )
    changes = {"n_mod_forum_post_created": 7.0}
    changed = row.assign(**changes)
    both = pd.concat([row, changed], ignore_index=True)
    grade, low, high = bundle.regressor.predict_interval(both)
    proba = bundle.classifier.predict_proba(both)
    unc = bundle.classifier.uncertainty(both, n_passes=FAST.mc_dropout_passes)
    url = f"/api/v1/courses/{scored.course_id}/students/{scored.learner_id}/what-if"
    client = lti_env.client()
    answers = [
        client.post(url, headers=scored.learner, json={"changes": changes}).get_json()
        for _ in range(2)
    ]
    assert answers[0] == answers[1]
    got = answers[0]
    assert got["probability"] == pytest.approx(proba[1], rel=1e-9)
    assert got["current"]["probability"] == pytest.approx(proba[0], rel=1e-9)
    assert got["predicted_grade"] == pytest.approx(grade[1], rel=1e-9)
    assert got["current"]["predicted_grade"] == pytest.approx(grade[0], rel=1e-9)
    assert got["grade_interval"] == pytest.approx([low[1], high[1]], rel=1e-9)
    assert got["uncertainty"] == pytest.approx(unc.std[1], rel=1e-9, abs=1e-12)
    assert got["ci_95"] == pytest.approx([unc.lower[1], unc.upper[1]], rel=1e-9, abs=1e-12)
    reference = ml_what_if(row, changes, regressor=bundle.regressor, classifier=bundle.classifier)
    assert got["delta_grade"] == pytest.approx(reference["delta_grade"], rel=1e-9, abs=1e-12)

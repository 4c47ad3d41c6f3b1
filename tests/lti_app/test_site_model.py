"""A site-wide model for a course without history (#17, item 2), on SQLite and PostgreSQL.

A simulated site holds four other courses, each a family of two graded offerings (a different
course design, ids and seed each), and a new course halfway through its first term, linked to
nothing. Where grades follow the students' work in every course, the new course gets estimates
from a site-wide model that passes the gate under leave-one-course-out validation, labelled as
such, with no factor and no plan bounds (places in other cohorts explain nothing of this
course). Where grades are noise everywhere, the gate holds and nothing is shown. Once the
course has its own history, its own model replaces the site's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Course, ModelVersion, MoodleSite, Prediction
from lti_app.services.course_data import store_simulated_offering
from lti_app.services.courses import link_past_offering
from lti_app.services.insights import (
    InsightError,
    ModelCache,
    course_summary,
    student_detail,
    what_if,
)
from lti_app.services.plans import learner_plan
from lti_app.services.scoring import score_course
from lti_app.services.site_model import families, site_history
from ml.features import relative_to_cohort
from simulation.course import CourseSpec, simulate_course
from tests.lti_app.lti.scored_course import FAST

N_COURSES = 4


def _site(db_session: Session, signal: float) -> tuple[MoodleSite, int, pd.Timestamp]:
    """The four graded course families and the new course; returns the new course's id and
    its scoring moment."""
    site = MoodleSite(base_url="https://moodle.example.invalid", name="test")
    db_session.add(site)
    db_session.flush()
    for i in range(1, N_COURSES + 1):
        simulated = simulate_course(
            n_past=2,
            n_students=30,
            seed=100 + i,
            current_progress=None,
            signal=signal,
            spec=CourseSpec(shortname=f"COURSE{i}", fullname=f"Course {i}"),
            first_courseid=1000 * i,
            first_userid=100_000 * i,
            first_logid=10_000_000 * i,
        )
        rows = [
            store_simulated_offering(db_session, site, off, with_grades=True)
            for off in simulated.offerings
        ]
        link_past_offering(db_session, rows[-1], rows[0].id)
    new = simulate_course(
        n_past=0,
        n_students=30,
        seed=999,
        current_progress=0.5,
        signal=signal,
        spec=CourseSpec(shortname="NEW101", fullname="New course"),
        first_courseid=9000,
        first_userid=900_000,
        first_logid=90_000_000,
    )
    current = new.current
    assert current is not None
    assert current.now is not None
    row = store_simulated_offering(db_session, site, current, with_grades=False)
    return site, row.id, current.now


def test_a_course_without_history_gets_a_validated_site_wide_model(
    db_session: Session, tmp_path: Path
) -> None:
    site, course_id, now = _site(db_session, signal=1.0)
    course = db_session.get_one(Course, course_id)
    history = site_history(db_session, course, FAST)
    assert history is not None
    assert history.n_courses == N_COURSES
    # One group per course family: the grouped validation leaves one course out.
    assert len({o.offering_id for o in history.offerings}) == N_COURSES
    assert len(history.offerings) == 2 * N_COURSES
    fam = families(db_session, site.id)
    assert len(set(fam.values())) == N_COURSES + 1

    outcome = score_course(
        db_session, course, settings=FAST, model_root=tmp_path, now=now.to_pydatetime()
    )
    assert outcome.scope == "site"
    assert outcome.status == "scored", outcome.message
    versions = db_session.scalars(
        select(ModelVersion).where(ModelVersion.course_id == course_id, ModelVersion.active)
    ).all()
    assert {v.metadata_json["scope"] for v in versions} == {"site"}
    assert all(v.metadata_json["effort_bounds"] == {} for v in versions)
    assert any(v.gate_passed for v in versions)
    window = versions[0].metadata_json["training_window"]
    assert {o["id"] for o in window["offerings"]} == {o.offering_id for o in history.offerings}
    shown = db_session.scalars(select(Prediction).where(Prediction.course_id == course_id)).all()
    assert shown
    assert all(p.pass_probability is not None for p in shown)
    assert all(p.explanation is None for p in shown)
    # The stored features stay the student's own (what the pages show), not cohort places.
    assert any(float(p.features["n_actions"]) > 1.0 for p in shown)
    # Every surface knows: the summary (pages, API) names the scope and the courses behind it,
    # a student's detail offers no lever, and a what-if is refused in words.
    summary = course_summary(db_session, course, threshold=0.5)
    assert (summary["state"], summary["scope"], summary["site_courses"]) == (
        "predictions",
        "site",
        N_COURSES,
    )
    detail = student_detail(db_session, course, shown[0].person_id, threshold=0.5)
    assert detail["scope"] == "site"
    assert detail["actionable"] == []
    with pytest.raises(InsightError) as refused:
        what_if(
            db_session,
            course,
            shown[0].person_id,
            {"active_days": 20.0},
            model_root=tmp_path,
            cache=ModelCache(),
            threshold=0.5,
        )
    assert refused.value.code == "site_model"
    assert learner_plan(
        db_session, course, shown[0].person_id, settings=FAST, model_root=tmp_path,
        cache=ModelCache(),
    ) is None  # fmt: skip

    # Once the course has history of its own (two graded offerings linked), its own model
    # replaces the site's at the next scoring.
    for past in db_session.scalars(
        select(Course).where(Course.id != course_id).order_by(Course.id).limit(2)
    ).all():
        link_past_offering(db_session, course, past.id)
    again = score_course(
        db_session, course, settings=FAST, model_root=tmp_path, now=now.to_pydatetime()
    )
    assert again.scope == "course"
    assert course_summary(db_session, course, threshold=0.5)["scope"] == "course"


def test_a_site_whose_courses_share_no_signal_gets_no_estimate(
    db_session: Session, tmp_path: Path
) -> None:
    _, course_id, now = _site(db_session, signal=0.0)
    course = db_session.get_one(Course, course_id)
    outcome = score_course(
        db_session, course, settings=FAST, model_root=tmp_path, now=now.to_pydatetime()
    )
    assert outcome.scope == "site"
    assert outcome.status == "gated", outcome.message
    shown = db_session.scalars(select(Prediction).where(Prediction.course_id == course_id)).all()
    assert shown  # engagement is still stored and shown
    assert all(p.pass_probability is None and p.predicted_grade is None for p in shown)


def test_places_in_the_cohort_keep_order_and_ties() -> None:
    frame = pd.DataFrame(
        {"active_days": [3.0, 1.0, 3.0, float("nan")], "course_progress": [0.5] * 4},
        index=pd.Index([10, 11, 12, 13], name="userid"),
    )
    days = relative_to_cohort(frame)["active_days"].to_numpy(dtype=float)
    places = relative_to_cohort(frame)
    assert days[1] < days[0]
    assert days[0] == days[2]
    assert np.isnan(days[3])
    assert (places["course_progress"] == 0.5).all()
    assert ((places["active_days"].dropna() > 0) & (places["active_days"].dropna() <= 1)).all()


@pytest.mark.parametrize("need", [0, N_COURSES + 1])
def test_no_site_model_when_off_or_too_few_courses(
    db_session: Session, tmp_path: Path, need: int
) -> None:
    _, course_id, _ = _site(db_session, signal=1.0)
    course = db_session.get_one(Course, course_id)
    settings = FAST.model_copy(update={"site_model_min_courses": need})
    assert site_history(db_session, course, settings) is None
    # A past offering of another course is history, never given a site model of its own.
    past = db_session.scalars(
        select(Course).where(Course.id != course_id).order_by(Course.id).limit(1)
    ).one()
    assert site_history(db_session, past, FAST) is None

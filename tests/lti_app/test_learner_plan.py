"""The learner's plan (#17, item 4) on a simulated course mid-term, on SQLite and PostgreSQL,
for every student: a plan never proposes a value beyond what the top tenth of past students
had done at the same point of their term (recomputed here from the past offerings, not read
from the model's metadata), and following it in the what-if reaches the pass mark; a student
already at the pass mark gets no plan to follow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import MoodleSite, Person
from lti_app.services.course_data import load_offering, store_simulated_course
from lti_app.services.courses import past_offerings
from lti_app.services.insights import ModelCache, what_if
from lti_app.services.plans import learner_plan
from lti_app.services.scoring import score_course
from ml.dataset import build_training_set
from ml.feature_info import FEATURES
from ml.plan import changes_at, effort_bounds, smallest_plan
from simulation.course import simulate_course
from tests.lti_app.lti.scored_course import FAST

PASS_MARK = 10.0


def test_every_plan_stays_within_the_top_tenth_and_reaches_the_pass_mark(
    db_session: Session, tmp_path: Path
) -> None:
    simulated = simulate_course(n_past=3, n_students=40, seed=11, current_progress=0.4)
    site = MoodleSite(base_url="https://moodle.example.invalid", name="test")
    db_session.add(site)
    db_session.flush()
    course, _ = store_simulated_course(db_session, site, simulated)
    assert simulated.current is not None
    assert simulated.current.now is not None
    outcome = score_course(
        db_session,
        course,
        settings=FAST,
        model_root=tmp_path,
        now=simulated.current.now.to_pydatetime(),
    )
    assert outcome.status == "scored", outcome.message

    # The top tenth, recomputed from the past offerings at the scoring's point of the term.
    history = [load_offering(db_session, p) for p in past_offerings(db_session, course.id)]
    training = build_training_set(
        history, checkpoints=(outcome.progress,), scale=20.0, pass_mark=PASS_MARK
    )
    top = {}
    for name in effort_bounds(training.X):
        values = training.X[name].dropna().to_numpy(dtype=float)
        q = 0.9 if FEATURES[name].effort >= 0 else 0.1
        top[name] = float(np.quantile(values, q))

    cache = ModelCache()
    people = db_session.scalars(
        select(Person.id).where(Person.moodle_user_id.in_(simulated.current.roster["userid"]))
    ).all()
    statuses = {"not_needed": 0, "reached": 0, "out_of_reach": 0}
    for person_id in people:
        plan = learner_plan(
            db_session, course, person_id, settings=FAST, model_root=tmp_path, cache=cache
        )
        assert plan is not None
        statuses[plan.status] += 1
        for name, value in plan.changes.items():
            effort = FEATURES[name].effort
            # Never beyond the top tenth (a hair of rounding to the slider's step aside).
            assert (value <= top[name] + 1e-9) if effort >= 0 else (value >= top[name] - 1e-9)
            # Never behind where the learner already is.
            start = plan.current_values[name]
            assert (value >= start) if effort >= 0 else (value <= start)
        followed = what_if(
            db_session,
            course,
            person_id,
            plan.changes,
            model_root=tmp_path,
            cache=cache,
            threshold=0.5,
        )
        if plan.status in ("reached", "not_needed"):
            assert followed["predicted_grade"] >= PASS_MARK
            assert followed["probability"] >= 0.5  # one distribution: at the mark, at least 50 %
        else:
            assert followed["predicted_grade"] < PASS_MARK
    # The course has students on both sides, and plans that get there.
    assert statuses["not_needed"] > 0
    assert statuses["reached"] > 0


@pytest.mark.parametrize("share", [0.0, 0.3, 0.77, 1.0])
def test_rounded_steps_never_pass_the_bound(share: float) -> None:
    current = {"active_days": 3.0, "total_time_min": 100.0, "days_since_last": 12.0}
    bounds = {"active_days": 9.6, "total_time_min": 455.5, "days_since_last": 1.4}
    changed = changes_at(share, current, bounds)
    assert changed.get("active_days", 3.0) <= 9.6
    assert changed.get("total_time_min", 100.0) <= 455.5
    assert changed.get("days_since_last", 12.0) >= 1.4


def test_the_smallest_share_is_found() -> None:
    """A grade growing with active days alone: the plan stops at the first day that reaches
    the mark, not at the bound."""
    current = {"active_days": 2.0}
    bounds = {"active_days": 20.0}

    def score(changes: dict[str, float]) -> tuple[float, float]:
        days = changes.get("active_days", current["active_days"])
        return days * 0.8, min(1.0, days / 25)

    plan = smallest_plan(current, bounds, score, PASS_MARK)  # type: ignore[arg-type]
    assert plan.status == "reached"
    assert plan.changes == {"active_days": 13.0}  # 12.5 days reach 10; a day is the step
    unreachable = smallest_plan(current, {"active_days": 10.0}, score, PASS_MARK)  # type: ignore[arg-type]
    assert unreachable.status == "out_of_reach"
    assert unreachable.changes == {"active_days": 10.0}

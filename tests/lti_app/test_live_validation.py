"""Live validation (#17, item 3) on a simulated course whose term has ended, on SQLite and
PostgreSQL: the figures kept for the model card match a direct computation from the stored
predictions and the simulation's own final grades, week by week; nothing is claimed while the
term runs or before the grades; a drift is flagged when live results fall outside the promise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.models import Course, MoodleSite, Person, Prediction
from lti_app.services import live_validation
from lti_app.services.course_data import store_simulated_offering
from lti_app.services.courses import link_past_offering
from lti_app.services.scoring import score_course
from ml.live_validation import Validated, score_weeks, share_ci
from simulation.course import SimulatedOffering, simulate_course
from tests.lti_app.lti.scored_course import FAST

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def _ended_course(db_session: Session, tmp_path: object) -> tuple[int, SimulatedOffering]:
    """Three offerings with final grades; the last one is the course whose term has ended,
    scored at four points of its term as the nightly job would have."""
    simulated = simulate_course(n_past=3, n_students=40, seed=7, current_progress=None)
    site = MoodleSite(base_url="https://moodle.example.invalid", name="test")
    db_session.add(site)
    db_session.flush()
    rows = [
        store_simulated_offering(db_session, site, off, with_grades=True)
        for off in simulated.offerings
    ]
    course = rows[-1]
    for past in rows[:-1]:
        link_past_offering(db_session, course, past.id)
    last = simulated.offerings[-1]
    for fraction in FRACTIONS:
        moment = last.start + fraction * (last.end - last.start)
        outcome = score_course(
            db_session,
            course,
            settings=FAST,
            model_root=tmp_path,  # type: ignore[arg-type]
            now=moment.to_pydatetime(),
        )
        assert outcome.status in ("scored", "gated"), outcome.message
    return course.id, last


def test_live_figures_match_a_direct_computation(db_session: Session, tmp_path: object) -> None:
    course_id, last = _ended_course(db_session, tmp_path)
    course = db_session.get_one(Course, course_id)
    # Nothing is claimed while the term runs (the same course, seen before its end).
    during = (last.start + 0.6 * (last.end - last.start)).to_pydatetime()
    assert live_validation.refresh(db_session, course, FAST, now=during) is None
    row = live_validation.refresh(db_session, course, FAST)
    assert row is not None

    # Directly: the stored shown predictions, and the simulation's totals on 20 points.
    final_by_uid = dict(
        zip(
            last.grades["userid"].astype(int),
            last.grades["course_total"].astype(float) / last.spec.grademax * 20,
            strict=True,
        )
    )
    uid_of: dict[int, int] = {
        int(pid): int(uid)
        for pid, uid in db_session.execute(select(Person.id, Person.moodle_user_id)).all()
        if uid is not None
    }
    preds = db_session.execute(
        select(
            Prediction.person_id,
            Prediction.as_of,
            Prediction.pass_probability,
            Prediction.predicted_pass,
            Prediction.grade_lower,
            Prediction.grade_upper,
        ).where(Prediction.course_id == course_id, Prediction.pass_probability.is_not(None))
    ).all()
    assert preds, "the model was shown (gate passed) at some point of the term"
    start = pd.Timestamp(last.start).tz_convert("UTC")
    expected: dict[int, dict[str, float]] = {}
    by_week: dict[int, list[tuple[float, bool, float, float | None, float | None]]] = {}
    for person, as_of, p, passes, low, high in preds:
        moment = pd.Timestamp(as_of)
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
        week = int((moment - start) // pd.Timedelta(days=7)) + 1
        grade = final_by_uid.get(uid_of[person], np.nan)
        if np.isnan(grade) or p is None:
            continue
        by_week.setdefault(week, []).append((grade, not passes, float(p), low, high))
    for week, items in by_week.items():
        failed = [g < 10 for g, *_ in items]
        flagged = [f for _, f, *_ in items]
        ff = sum(1 for a, b in zip(failed, flagged, strict=True) if a and b)
        fu = sum(1 for a, b in zip(failed, flagged, strict=True) if a and not b)
        nf = sum(flagged)
        inside = [lo <= g <= hi for g, _, _, lo, hi in items if lo is not None and hi is not None]
        pairs = [(p, not f) for (g, _, p, *_), f in zip(items, failed, strict=True)]
        pos = [p for p, ok in pairs if ok]
        neg = [p for p, ok in pairs if not ok]
        auc = (
            np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg])
            if pos and neg
            else np.nan
        )
        expected[week] = {
            "n": len(items),
            "n_flagged": nf,
            "failed_flagged": ff,
            "failed_unflagged": fu,
            "coverage": float(np.mean(inside)) if inside else np.nan,
            "auc": float(auc),
        }
    got = {int(w["week"]): w for w in row.weeks}
    assert set(got) == set(expected)
    assert len(got) == len(FRACTIONS)
    for week, want in expected.items():
        have = got[week]
        for key in ("n", "n_flagged", "failed_flagged", "failed_unflagged"):
            assert have[key] == want[key], (week, key)
        for key in ("coverage", "auc"):
            if np.isnan(want[key]):
                assert have[key] is None
            else:
                assert have[key] == pytest.approx(want[key], abs=1e-12), (week, key)
        share = have["share_failed_flagged"]
        if want["n_flagged"]:
            assert share == pytest.approx(want["failed_flagged"] / want["n_flagged"])
    assert row.n_students == max(e["n"] for e in expected.values())


def _frame(p: list[float], flagged: list[bool], week: int = 3) -> pd.DataFrame:
    n = len(p)
    return pd.DataFrame(
        {
            "person_id": range(n),
            "week": week,
            "as_of": pd.Timestamp("2026-01-01", tz="UTC"),
            "p_pass": p,
            "flagged": flagged,
            "grade": 10.0,
            "grade_low": 0.0,
            "grade_high": 20.0,
            "model_id": 1,
        }
    )


def test_a_drift_is_flagged_only_beyond_the_promise() -> None:
    # 40 students, half failed; chances that rank them perfectly, then backwards.
    final = pd.Series([5.0] * 20 + [15.0] * 20)
    good = _frame([0.1] * 20 + [0.9] * 20, [True] * 20 + [False] * 20)
    bad = _frame([0.9] * 20 + [0.1] * 20, [False] * 20 + [True] * 20)
    promise = {1: Validated(auc_low=0.7, brier_high=0.2, interval_level=0.9)}
    ok = score_weeks(good, final, 10.0, promise).iloc[0]
    assert ok["drift"] == ""
    assert ok["share_failed_flagged"] == 1.0
    assert ok["share_failed_unflagged"] == 0.0
    drifted = score_weeks(bad, final, 10.0, promise).iloc[0]
    assert drifted["drift"] == "ranking;calibration"
    assert drifted["missed"] == 20
    # Too few students: no claim, whatever the figures.
    small = score_weeks(bad.iloc[:10], final, 10.0, promise).iloc[0]
    assert small["drift"] == ""


def test_share_intervals_hold_their_share() -> None:
    for n in range(1, 60):
        for k in range(n + 1):
            share, low, high = share_ci(k, n)
            assert 0.0 <= low <= share <= high <= 1.0

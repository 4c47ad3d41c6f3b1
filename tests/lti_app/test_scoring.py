"""The scoring service on simulated courses stored in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.config import MLSettings
from lti_app.models import ModelVersion, MoodleSite, Prediction
from lti_app.services.course_data import store_simulated_course
from lti_app.services.scoring import ModelStoreError, load_model, score_course
from ml.registry import TRAINER_REVISION
from simulation.course import SimulatedCourse, simulate_course

FAST = MLSettings(
    regressors=("ridge", "linear"),
    classifiers=("logistic",),
    bootstrap_samples=100,
    permutation_repeats=3,
    mc_dropout_passes=10,
)


@pytest.fixture(scope="module")
def with_signal() -> SimulatedCourse:
    return simulate_course(n_past=3, n_students=36, seed=11, current_progress=0.5)


@pytest.fixture(scope="module")
def no_signal() -> SimulatedCourse:
    return simulate_course(n_past=3, n_students=36, seed=12, current_progress=0.5, signal=0.0)


def _store(session: Session, simulated: SimulatedCourse, url: str):  # type: ignore[no-untyped-def]
    site = MoodleSite(base_url=url)
    session.add(site)
    session.flush()
    return store_simulated_course(session, site, simulated)


def _now(simulated: SimulatedCourse):  # type: ignore[no-untyped-def]
    assert simulated.current is not None
    assert simulated.current.now is not None
    return simulated.current.now.to_pydatetime()


def test_scores_a_course_with_history(
    db_session: Session, with_signal: SimulatedCourse, tmp_path: Path
) -> None:
    current, _ = _store(db_session, with_signal, "https://a.example.org")
    outcome = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert outcome.status == "scored", outcome.message
    assert 0.45 < outcome.progress < 0.55
    n_students = len(with_signal.current.roster)  # type: ignore[union-attr]
    assert outcome.predictions == n_students
    versions = db_session.scalars(select(ModelVersion).where(ModelVersion.active)).all()
    assert {v.task for v in versions} == {"regression", "classification"}
    assert all(v.gate_passed for v in versions)
    preds = db_session.scalars(select(Prediction)).all()
    assert len(preds) == n_students
    for p in preds:
        assert p.predicted_grade is not None
        assert p.grade_lower is not None
        assert p.grade_upper is not None
        assert p.grade_lower <= p.predicted_grade <= p.grade_upper
        assert p.pass_probability is not None
        assert 0.0 <= p.pass_probability <= 1.0
        assert p.probability_lower is not None
        assert p.probability_upper is not None
        assert p.explanation
        assert len(p.explanation["grade"]) == 5
        assert "active_days" in p.features
    # Same data, same checkpoint: the version is reused, not retrained.
    again = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert again.reused_model
    assert again.regression_model_id == outcome.regression_model_id
    count = db_session.scalar(select(func.count()).select_from(ModelVersion))
    assert count == 2
    # A version an older training made (no "trainer", or another revision) is not reused on
    # the same data: an upgrade that trains better models retrains the course once.
    _as_an_older_training(db_session)
    upgraded = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert upgraded.status == "scored"
    assert not upgraded.reused_model
    assert upgraded.regression_model_id != outcome.regression_model_id
    again = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert again.reused_model  # and then reused as before
    assert again.regression_model_id == upgraded.regression_model_id
    # Once the term is over, a version from an older training is kept: its end-of-term
    # estimates are what the teachers saw and what the live validation scores.
    after_term = _now(with_signal) + timedelta(days=365)
    ended = score_course(db_session, current, settings=FAST, model_root=tmp_path, now=after_term)
    assert ended.status == "scored"
    assert ended.term_ended
    _as_an_older_training(db_session)
    kept = score_course(db_session, current, settings=FAST, model_root=tmp_path, now=after_term)
    assert kept.reused_model
    assert kept.regression_model_id == ended.regression_model_id
    # Artifacts load only while they are exactly what was stored.
    version = db_session.get_one(ModelVersion, ended.regression_model_id)
    load_model(tmp_path, version)
    (tmp_path / version.artifact_path / "regressor.skops").write_bytes(b"not ours")
    with pytest.raises(ModelStoreError, match="changed since it was stored"):
        load_model(tmp_path, version)


def _as_an_older_training(session: Session) -> None:
    """The active versions, made today (they record `TRAINER_REVISION`), as if an older
    training had made them: without the revision."""
    active = session.scalars(select(ModelVersion).where(ModelVersion.active)).all()
    assert {v.metadata_json["trainer"] for v in active} == {TRAINER_REVISION}
    for v in active:
        v.metadata_json = {k: x for k, x in v.metadata_json.items() if k != "trainer"}
    session.flush()


def test_no_signal_is_gated_and_withholds_values(
    db_session: Session, no_signal: SimulatedCourse, tmp_path: Path
) -> None:
    current, _ = _store(db_session, no_signal, "https://c.example.org")
    outcome = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(no_signal)
    )
    assert outcome.status == "gated"
    assert "withheld" in outcome.message
    preds = db_session.scalars(select(Prediction)).all()
    assert preds
    assert all(p.predicted_grade is None and p.pass_probability is None for p in preds)
    assert all(p.features for p in preds)


def test_without_history_features_only(
    db_session: Session, with_signal: SimulatedCourse, tmp_path: Path
) -> None:
    site = MoodleSite(base_url="https://d.example.org")
    db_session.add(site)
    db_session.flush()
    from lti_app.services.course_data import store_simulated_offering

    assert with_signal.current is not None
    current = store_simulated_offering(db_session, site, with_signal.current, with_grades=False)
    outcome = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert outcome.status == "no_history"
    assert "engagement only" in outcome.message
    assert outcome.predictions == len(with_signal.current.roster)
    assert not list(tmp_path.iterdir())


def _stored_predictions(session: Session) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in session.execute(
            select(
                Prediction.person_id, Prediction.predicted_grade, Prediction.grade_lower,
                Prediction.grade_upper, Prediction.pass_probability, Prediction.predicted_pass,
                Prediction.features, Prediction.explanation,
            ).order_by(Prediction.person_id)
        ).all()
    ]  # fmt: skip


def test_a_reuse_reads_no_past_offering_and_stores_the_same(
    db_session: Session,
    with_signal: SimulatedCourse,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A re-scoring of unchanged data takes the training set kept under its fingerprint (#19):
    the past offerings' events are not read again, and every stored value is what the full
    path stored. A changed grade in a past offering changes the fingerprint: built again."""
    from lti_app.models import Course, Grade
    from lti_app.services import scoring

    current, _ = _store(db_session, with_signal, "https://c.example.org")
    first = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert first.status == "scored"
    full = _stored_predictions(db_session)
    loaded: list[int] = []
    real = scoring.load_offering  # type: ignore[attr-defined]

    def counting(session: Session, course: Course, **kwargs: object):  # type: ignore[no-untyped-def]
        loaded.append(course.id)
        return real(session, course, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scoring, "load_offering", counting)
    again = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert again.reused_model
    assert again.regression_model_id == first.regression_model_id
    assert loaded == [current.id]  # the course itself only
    assert _stored_predictions(db_session) == full
    # Another rule on how many past offerings a model needs: not the kept set's scoring.
    stricter = FAST.model_copy(update={"min_past_offerings": 4})
    strict = score_course(
        db_session, current, settings=stricter, model_root=tmp_path, now=_now(with_signal)
    )
    assert strict.status == "no_history"
    # A damaged kept set is no cache: built again, and the course scores.
    for kept in (tmp_path / "training-cache").glob("*.npz"):
        kept.write_bytes(b"PK\x03\x04 not a zip")
    loaded.clear()
    damaged = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert damaged.status == "scored"
    assert damaged.reused_model  # the same data: the active version, found by its data hash
    assert len(loaded) == 1 + 3

    # A past offering's grade changes: the kept set no longer matches; rebuilt, retrained.
    grade = db_session.scalars(select(Grade).order_by(Grade.id).limit(1)).one()
    grade.value = (grade.value or 0.0) + 1.0
    db_session.flush()
    loaded.clear()
    third = score_course(
        db_session, current, settings=FAST, model_root=tmp_path, now=_now(with_signal)
    )
    assert len(loaded) == 1 + 3  # the course and its three past offerings
    assert not third.reused_model
    assert third.regression_model_id != first.regression_model_id


def test_kept_training_sets_go_when_stale_or_on_erasure(tmp_path: Path) -> None:
    """The nightly retention deletes the kept sets no scoring used for a month; an erasure
    deletes them all (each holds past students' features)."""
    import os
    import time

    import pandas as pd

    from lti_app.services import training_cache

    kept = training_cache.Kept(X=pd.DataFrame({"a": [1.0, 2.0]}), data_hash="h", names=["P"])
    training_cache.save(tmp_path, 1, "k1", kept)
    training_cache.save(tmp_path, 2, "k2", kept)
    loaded = training_cache.load(tmp_path, 1, "k1")
    assert loaded is not None
    assert loaded.X.equals(kept.X)
    assert training_cache.load(tmp_path, 1, "other key") is None
    old = time.time() - 40 * 86_400
    os.utime(tmp_path / training_cache.FOLDER / "course-2.npz", (old, old))
    assert training_cache.clear(tmp_path, older_than_days=training_cache.STALE_DAYS) == 1
    assert training_cache.load(tmp_path, 1, "k1") is not None
    assert training_cache.clear(tmp_path) == 1
    assert list((tmp_path / training_cache.FOLDER).iterdir()) == []

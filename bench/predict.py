"""Prediction: single what-if calls through the JSON API (p50, p99), and a batch of 10k students.

**What-if.** A 500-student simulated course is stored and scored in a fresh database
(:mod:`bench.webapp`), a teacher launches through the demo's LTI platform, and the what-if
endpoint (``POST /api/v1/courses/<c>/students/<p>/what-if``, CSRF token and session cookie, so
every call passes the real access checks) is called for a rotating student with rotating
changes: in-process through the Flask test client, then over HTTP against ``arche-predict
serve`` (gunicorn, 2 workers, keep-alive) to show the transport's share, from Python
``requests`` and from wrk (one connection, one call at a time, the same rotation: C, so the
client's own cost on the same two cores stays out of the server's figure). The cost depends on
the estimator the model search picks for the course, so each family is measured: linear
(ridge + logistic, whose fold models give the spread), trees (HistGradientBoosting both) and the
MLP (100 MC-dropout passes). ``ml_only`` is ``ml.explain.what_if`` alone on the same bundle.

**Batch.** 10k students: the pure ``ml`` call (features, then the regressor's interval, the
calibrated probability with its spread and both explanations' factors, with training timed
apart), then ``score_course`` storing the predictions, once training and once reusing the
trained version (same training data), with the time spent storing the rows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

from bench import webapp
from bench.dashboard import wrk_available, wrk_run
from bench.ingest import fresh_database
from lti_app.app import create_app
from lti_app.db import session_scope
from lti_app.models import Course, ModelVersion
from lti_app.services import scoring
from lti_app.services.insights import ModelCache
from lti_app.web.auth import SESSION_COOKIE
from ml.dataset import build_training_set
from ml.explain import grade_factors, pass_factors
from ml.explain import what_if as ml_what_if
from ml.features import compute_features
from ml.training import train_model_version
from simulation.course import SimulatedCourse, simulate_course

FAMILIES = (("logistic", "ridge"), ("hgb", "hgb"), ("mlp", "ridge"))
#: Seconds of the wrk what-if run per family (one connection, one call at a time).
WRK_SECONDS = 10

_WHAT_IF_LUA = r"""
local calls = {
%(calls)s
}
local i = 0
wrk.method = "POST"
wrk.headers["Cookie"] = "%(cookie_name)s=%(cookie)s"
wrk.headers["X-CSRF-Token"] = "%(csrf)s"
wrk.headers["Content-Type"] = "application/json"
function request()
  i = i %% #calls + 1
  return wrk.format(nil, calls[i][1], nil, calls[i][2])
end
"""


def _wrk_what_if(
    url: str, paths: list[str], cookie: str, csrf: str, tmp: Path, name: str
) -> dict[str, Any]:
    """The same rotating what-if calls from wrk, one connection, one call at a time: the
    server and the transport without a Python client's own ~1 ms on the same two cores."""
    calls = ",\n".join(
        f"  {{[[{path}]], [[{json.dumps(_body(i))}]]}}" for i, path in enumerate(paths)
    )
    script = _WHAT_IF_LUA % {
        "calls": calls, "cookie_name": SESSION_COOKIE, "cookie": cookie, "csrf": csrf,
    }  # fmt: skip
    return wrk_run(url, script, tmp, name, threads=1, connections=1, seconds=WRK_SECONDS)


CHANGES = ("active_days", "total_time_min", "n_mod_quiz_attempt_submitted", "days_since_last")


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "calls": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "max_ms": float(ms.max()),
    }


def _body(i: int) -> dict[str, Any]:
    feature = CHANGES[i % len(CHANGES)]
    return {"changes": {feature: float(3 + i % 17), "active_days": float(5 + i % 11)}}


def _timed(call: Any, n: int, warmup: int) -> list[float]:
    for i in range(warmup):
        call(i)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - t0)
    return out


def bench_what_if(backend: str, tmp: Path, *, calls: int = 2000, http_calls: int = 1000) -> Any:
    """p50/p99 of the what-if per estimator family, in-process and over HTTP."""
    out: dict[str, Any] = {"backend": backend, "families": {}}
    with fresh_database(backend, tmp) as url:
        classifier, regressor = FAMILIES[0]
        sc = webapp.scored_course(url, tmp, classifier=classifier, regressor=regressor)
        out["students"] = len(sc.students)
        out["store_s"] = sc.store_s
        server = webapp.Server(sc.config, int(sc.settings.app.port))
        try:
            app = create_app(sc.settings)
            client = app.test_client()
            local = webapp.launch_test_client(client, sc.platform, "teacher")
            http = requests.Session()
            remote = webapp.launch_http(http, sc.platform, "teacher")
            base = f"/api/v1/courses/{sc.course_id}/students"

            def path(i: int) -> str:
                return f"{base}/{sc.students[(i * 7) % len(sc.students)]}/what-if"

            def in_process(i: int) -> None:
                r = client.post(path(i), json=_body(i), headers={"X-CSRF-Token": local.csrf})
                if r.status_code != 200:
                    raise RuntimeError(f"what-if answered {r.status_code}: {r.get_data()[:300]!r}")

            def over_http(i: int) -> None:
                r = http.post(
                    server.url + path(i), json=_body(i), headers={"X-CSRF-Token": remote.csrf},
                    timeout=30,
                )  # fmt: skip
                if r.status_code != 200:
                    raise RuntimeError(f"what-if answered {r.status_code}: {r.text[:300]}")

            for k, (classifier, regressor) in enumerate(FAMILIES):
                if k:
                    sc.rescore(classifier=classifier, regressor=regressor)
                fam: dict[str, Any] = {"training_and_scoring_s": sc.scorings[-1]["seconds"]}
                fam["in_process"] = _stats(_timed(in_process, calls, 100))
                fam["http"] = _stats(_timed(over_http, http_calls, 100))
                if wrk_available():
                    fam["http_wrk"] = _wrk_what_if(
                        server.url, [path(i) for i in range(200)], remote.cookie, remote.csrf,
                        tmp, f"what-if-{classifier}-{regressor}",
                    )  # fmt: skip
                fam["ml_only"] = _ml_only(sc, calls)
                out["families"][f"{classifier}+{regressor}"] = fam
        finally:
            server.stop()
            sc.platform.stop()
            sc.factory.kw["bind"].dispose()
    return out


def _ml_only(sc: webapp.ScoredCourse, calls: int) -> dict[str, Any]:
    """``ml.explain.what_if`` alone, on the active bundle and a stored student's features."""
    from sqlalchemy import select

    from lti_app.models import Prediction

    with sc.factory() as session:
        reg = session.scalar(
            select(ModelVersion).where(
                ModelVersion.course_id == sc.course_id,
                ModelVersion.active,
                ModelVersion.task == "regression",
            )
        )
        assert reg is not None
        bundle = ModelCache().get(sc.settings.model_root, reg)
        feats = session.scalars(
            select(Prediction.features)
            .where(Prediction.course_id == sc.course_id)
            .order_by(Prediction.as_of.desc())
            .limit(1)
        ).one()
    cols = bundle.regressor.features
    row = pd.DataFrame([[np.nan if feats.get(c) is None else feats[c] for c in cols]], columns=cols)
    passes = sc.settings.ml.mc_dropout_passes

    def call(i: int) -> None:
        ml_what_if(
            row, {"active_days": float(5 + i % 11)}, regressor=bundle.regressor,
            classifier=bundle.classifier, n_passes=passes,
        )  # fmt: skip

    return {**_stats(_timed(call, calls, 50)), "uncertainty": bundle.classifier.name}


# --------------------------------------------------------------------------- 10k batch


def bench_batch(
    backend: str, tmp: Path, *, n_students: int = 11_800, activity: float = 0.1
) -> dict[str, Any]:
    """Predict a 10k-student offering: the pure ``ml`` call, then the scoring service.

    The simulator draws each offering's cohort within ±15% of ``n_students``; 11,800 makes the
    current offering at least 10,000 students whatever the draw.
    """
    classifier, regressor = FAMILIES[0]
    simulated = simulate_course(
        n_past=2, n_students=n_students, seed=webapp.SEED, activity=activity
    )
    current = simulated.current
    assert current is not None
    out: dict[str, Any] = {"backend": backend, "students": len(current.roster)}
    out["events_current"] = len(current.log)
    out |= _batch_ml(simulated, tmp, classifier, regressor)
    out |= _batch_service(backend, simulated, tmp, classifier, regressor)
    return out


def _batch_ml(
    simulated: SimulatedCourse, tmp: Path, classifier: str, regressor: str
) -> dict[str, Any]:
    """The pure ml call: what scoring does, without the database."""
    current = simulated.current
    assert current is not None
    assert current.now is not None
    out: dict[str, Any] = {}
    as_of = current.now
    progress = scoring.course_progress(current.start, current.end, as_of)
    offerings = [p.to_offering() for p in simulated.past]
    now_offering = current.to_offering()
    t0 = time.perf_counter()
    features = compute_features(
        now_offering.events, now_offering.roster, as_of, current.start, current.end
    )
    out["ml_features_s"] = time.perf_counter() - t0
    training = build_training_set(offerings, checkpoints=(progress,), scale=20.0, pass_mark=10.0)
    t0 = time.perf_counter()
    bundle = train_model_version(
        offerings, progress, tmp / "batch-model", scale=20.0, pass_mark=10.0,
        regressors=[regressor], classifiers=[classifier], n_boot=100, n_repeats=3,
    )  # fmt: skip
    out["ml_training_s"] = time.perf_counter() - t0
    x = features[bundle.regressor.features].reset_index(drop=True)
    t0 = time.perf_counter()
    bundle.regressor.predict_interval(x)
    bundle.classifier.predict_proba(x)
    bundle.classifier.uncertainty(x, n_passes=100)
    t_pred = time.perf_counter() - t0
    grade_factors(bundle.regressor, x, training.X)
    pass_factors(bundle.classifier, x, training.X)
    out["ml_predict_s"] = t_pred
    out["ml_predict_and_factors_s"] = time.perf_counter() - t0
    return out


def _batch_service(
    backend: str, simulated: SimulatedCourse, tmp: Path, classifier: str, regressor: str
) -> dict[str, Any]:
    """The service: the stored course, score_course training then reusing the version."""
    current = simulated.current
    assert current is not None
    assert current.now is not None
    out: dict[str, Any] = {}
    with fresh_database(backend, tmp) as url:
        sc_settings = webapp.write_config(
            tmp, url, webapp.free_port(), classifier=classifier, regressor=regressor
        )
        from lti_app.config import load_settings
        from lti_app.crypto import SecretBox
        from lti_app.db import make_engine, make_session_factory
        from lti_app.services.course_data import store_simulated_course
        from lti_app.services.sites import upsert_site

        settings = load_settings(sc_settings, environ={})
        factory = make_session_factory(make_engine(url))
        t0 = time.perf_counter()
        with session_scope(factory) as session:
            site = upsert_site(session, SecretBox.from_settings(settings), webapp.SITE_URL)
            course_id = store_simulated_course(session, site, simulated)[0].id
        out["store_s"] = time.perf_counter() - t0
        stored: list[float] = []
        real_store = scoring._store_predictions

        def timed_store(*args: Any, **kwargs: Any) -> int:
            t = time.perf_counter()
            try:
                return real_store(*args, **kwargs)
            finally:
                stored.append(time.perf_counter() - t)

        scoring._store_predictions = timed_store
        try:
            for run in ("train", "reuse"):
                t0 = time.perf_counter()
                with session_scope(factory) as session:
                    outcome = scoring.score_course(
                        session, session.get_one(Course, course_id), settings=settings.ml,
                        model_root=settings.model_root,
                        now=current.now.to_pydatetime(),
                    )  # fmt: skip
                seconds = time.perf_counter() - t0
                if outcome.status != "scored" or outcome.reused_model != (run == "reuse"):
                    raise RuntimeError(f"10k scoring: {outcome.status}, {outcome.message}")
                out[f"service_{run}_s"] = seconds
                out[f"service_{run}_store_s"] = stored[-1]
                out["predictions"] = outcome.predictions
        finally:
            scoring._store_predictions = real_store
        factory.kw["bind"].dispose()
    return out


def bench_typical(backend: str, tmp: Path) -> dict[str, Any]:
    """A typical course (#19, item 3): four past offerings of about 200 students (800 past
    students) and a current one of about 180, stored, then `score_course` with the default
    model search, training, then reusing the trained version (the same data again)."""
    simulated = simulate_course(n_past=4, n_students=190, seed=webapp.SEED)
    current = simulated.current
    assert current is not None
    assert current.now is not None
    out: dict[str, Any] = {
        "backend": backend,
        "past_students": int(sum(len(o.roster) for o in simulated.past)),
        "students": len(current.roster),
    }
    with fresh_database(backend, tmp) as url:
        # Nothing under [ml]: the default model search and evaluation, as a site runs them.
        path = webapp.plain_config(tmp, url, "typical", "[scheduler]\nenabled = false")
        from lti_app.config import load_settings
        from lti_app.crypto import SecretBox
        from lti_app.db import make_engine, make_session_factory
        from lti_app.services.course_data import store_simulated_course
        from lti_app.services.sites import upsert_site

        settings = load_settings(path, environ={})  # the default model search
        factory = make_session_factory(make_engine(url))
        with session_scope(factory) as session:
            site = upsert_site(session, SecretBox.from_settings(settings), webapp.SITE_URL)
            course_id = store_simulated_course(session, site, simulated)[0].id
        for run in ("train", "reuse"):
            t0 = time.perf_counter()
            with session_scope(factory) as session:
                outcome = scoring.score_course(
                    session, session.get_one(Course, course_id), settings=settings.ml,
                    model_root=settings.model_root, now=current.now.to_pydatetime(),
                )  # fmt: skip
            out[f"{run}_s"] = time.perf_counter() - t0
            if outcome.reused_model != (run == "reuse"):
                raise RuntimeError(f"typical course: {run} gave reused={outcome.reused_model}")
            out["status"] = outcome.status
        factory.kw["bind"].dispose()
    return out

"""Training: the full model search of ``ml.models`` on simulator offerings, 500 and 5k students.

A training set is what a scoring run builds: 5 past offerings of the course (so grouped
cross-validation has 5 folds), features at one checkpoint (mid-term), final grades as targets.
The search is the real one: ``fit_regressor`` (Linear, Ridge, Lasso, ElasticNet, SVR and
HistGradientBoosting, each grid-searched under GroupKFold, conformal residuals) and
``fit_classifier`` (logistic, HistGradientBoosting, the torch MLP; out-of-fold AUC, isotonic
calibration). It runs under cProfile (the search spends its time in compiled code, so the
profiler's overhead is small) and the report gives the time of each estimator's ``fit``.

Each size runs in a fresh process with one thread per library (``n_threads=1``, which the ml
functions apply with threadpoolctl and torch, as production training does by default:
``[ml] training_threads``). With the libraries' defaults (one OpenMP thread per core)
HistGradientBoosting's OpenMP loops spin against any other load on a 2-core machine: the first
measurement, at 500 students, spent 306 of 410 s in its 27 fits, about 5x what one thread
takes (see the report). Pass ``--threads default`` to measure one thread per core instead.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ml.dataset import build_training_set
from ml.models import fit_classifier, fit_regressor
from simulation.course import simulate_course

ROOT = Path(__file__).resolve().parents[1]
N_OFFERINGS = 5
CHECKPOINT = 0.5
SEED = 7

# Files whose ``fit`` is an estimator's own training (the rest are wrappers around them).
_ESTIMATORS = {
    "sklearn/linear_model/_base.py": "LinearRegression",
    "sklearn/linear_model/_ridge.py": "Ridge",
    "sklearn/linear_model/_coordinate_descent.py": "Lasso/ElasticNet",
    "sklearn/svm/_base.py": "SVR",
    "sklearn/ensemble/_hist_gradient_boosting/gradient_boosting.py": "HistGradientBoosting",
    "sklearn/linear_model/_logistic.py": "LogisticRegression",
    "ml/mlp.py": "TorchMLP",
    "sklearn/isotonic.py": "Isotonic calibration",
}


def _fit_times(stats: pstats.Stats) -> dict[str, dict[str, float]]:
    """Cumulative seconds and calls of each estimator's ``fit``, from the profile."""
    out: dict[str, dict[str, float]] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (path, _line, func), (cc, _nc, _tt, ct, _callers) in raw.items():
        if func != "fit":
            continue
        for suffix, name in _ESTIMATORS.items():
            if path.replace("\\", "/").endswith(suffix):
                entry = out.setdefault(name, {"seconds": 0.0, "calls": 0})
                entry["seconds"] += ct
                entry["calls"] += cc
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["seconds"]))


def bench_training(n_students: int, n_threads: int = 1) -> dict[str, Any]:
    """The search, timed and profiled. On SIGTERM (the parent's time budget) it prints what it
    has so far (phases done, the completed fits' profile) and exits."""
    t0 = time.perf_counter()
    profile = cProfile.Profile()
    partial: dict[str, Any] = {"students": n_students, "finished": False}

    def give_up(_signum: int, _frame: Any) -> None:
        profile.disable()
        partial["elapsed_s"] = time.perf_counter() - t0
        partial["profile_fit_s"] = _fit_times(pstats.Stats(profile))
        print(json.dumps(partial), flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, give_up)
    course = simulate_course(
        n_past=N_OFFERINGS,
        n_students=n_students // N_OFFERINGS,
        seed=SEED,
        current_progress=None,
    )
    offerings = [o.to_offering() for o in course.past]
    t1 = time.perf_counter()
    ts = build_training_set(offerings, checkpoints=(CHECKPOINT,))
    t2 = time.perf_counter()
    partial.update(students=len(ts.X), build_training_set_s=t2 - t1)
    profile.enable()
    reg = fit_regressor(ts.X, ts.grade, ts.groups, n_threads=n_threads)
    t3 = time.perf_counter()
    partial["fit_regressor_s"] = t3 - t2
    clf = fit_classifier(ts.X, ts.passed, ts.groups, n_threads=n_threads)
    t4 = time.perf_counter()
    profile.disable()
    stats = pstats.Stats(profile)
    return {
        "finished": True,
        "students": len(ts.X),
        "offerings": N_OFFERINGS,
        "features": len(ts.features),
        "events": int(sum(len(o.events) for o in offerings)),
        "simulate_s": t1 - t0,
        "build_training_set_s": t2 - t1,
        "fit_regressor_s": t3 - t2,
        "fit_classifier_s": t4 - t3,
        "total_s": t4 - t1,
        "regressor": reg.name,
        "regressor_cv_r2": float(reg.cv_table["cv_r2"].to_numpy()[0]),
        "classifier": clf.name,
        "classifier_cv_auc": float(clf.cv_table["cv_auc"].to_numpy()[0]),
        "cv_r2": dict(zip(reg.cv_table["model"], reg.cv_table["cv_r2"].round(4), strict=True)),
        "cv_auc": dict(zip(clf.cv_table["model"], clf.cv_table["cv_auc"].round(4), strict=True)),
        "profile_fit_s": _fit_times(stats),
    }


def run_training(
    n_students: int, *, single_thread: bool = True, budget_s: float | None = None
) -> dict[str, Any]:
    """:func:`bench_training` in a fresh process (thread settings apply at start-up), stopped
    after ``budget_s`` seconds with what it had done by then."""
    env = dict(os.environ)
    if single_thread:
        env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bench.training", str(n_students), str(int(single_thread))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        out, err = proc.communicate(timeout=budget_s)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, err = proc.communicate(timeout=120)
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"training worker failed:\n{err[-4000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["budget_s"] = budget_s
    result["threads"] = "1 (n_threads=1: threadpoolctl, torch)" if single_thread else "1 per core"
    return result


if __name__ == "__main__":
    threads = 1 if sys.argv[2] == "1" else os.cpu_count() or 1
    print(json.dumps(bench_training(int(sys.argv[1]), threads)))

"""Leave-one-offering-out quality of the shown estimates, per point of the term (issue #14).

For each simulator seed, each checkpoint (10/25/50/75/100 % of the term) and each past offering,
the models are trained on the *other* offerings exactly as a scoring run trains them
(:func:`ml.training._fit_models`: the model search under grouped cross-validation) and score
the held-out offering through :func:`ml.training.score_students`, the call whose columns the
app stores. Pooled over offerings (and seeds), per checkpoint:

* ``ece``: expected calibration error of the shown pass chance (10 equal-width bins), with a
  95 % bootstrap CI over students;
* ``coverage``: share of students whose final grade lies in the shown grade interval (90 %);
* ``r2`` of the shown grade, ``auc`` of the shown pass chance;
* ``p_in_range``: share of chances inside their own range, ``p_extreme``: share at 0 or 1,
  ``incoherent``: share where ``p_pass >= 0.5`` disagrees with ``grade >= pass mark``.

Run ``python -m bench.calibration_loo --label before`` (writes
``bench/reports/calibration_loo-<label>.json`` and prints a table). It only uses calls that
exist before and after issue #14, so the same script measures both.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score

from ml.dataset import DEFAULT_CHECKPOINTS, TrainingSet, build_training_set
from ml.registry import ModelBundle
from ml.training import _fit_models, score_students
from simulation.course import simulate_course

ROOT = Path(__file__).resolve().parents[1]
PASS_MARK = 10.0


def _ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y, minlength=n_bins)
    keep = count > 0
    gap = np.abs(sum_y[keep] / count[keep] - sum_p[keep] / count[keep])
    return float(np.sum(gap * count[keep]) / count.sum())


def _boot(y: np.ndarray, p: np.ndarray, n_boot: int = 500) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    stats = [_ece(y[i], p[i]) for i in (rng.integers(0, len(y), len(y)) for _ in range(n_boot))]
    return float(np.quantile(stats, 0.025)), float(np.quantile(stats, 0.975))


def _subset(ts: TrainingSet, keep: np.ndarray) -> TrainingSet:
    return TrainingSet(
        ts.X[keep].reset_index(drop=True),
        ts.grade[keep].reset_index(drop=True),
        ts.passed[keep].reset_index(drop=True),
        ts.groups[keep].reset_index(drop=True),
        ts.checkpoint[keep].reset_index(drop=True),
        ts.userid[keep].reset_index(drop=True),
        ts.scale,
        ts.pass_mark,
    )


def held_out(
    seed: int,
    *,
    n_past: int,
    n_students: int,
    checkpoints: tuple[float, ...],
    regressors: list[str] | None,
    classifiers: list[str] | None,
) -> pd.DataFrame:
    """One row per (checkpoint, student): the shown estimate from models that never saw the
    student's offering."""
    course = simulate_course(n_past=n_past, n_students=n_students, seed=seed, current_progress=None)
    every = build_training_set([o.to_offering() for o in course.past], checkpoints)
    frames = []
    for cp in checkpoints:
        part = every.at(cp)
        for g in sorted(pd.unique(part.groups)):
            test = (part.groups == g).to_numpy()
            train = _subset(part, ~test)
            reg, clf = _fit_models(
                train,
                regressors=regressors,
                classifiers=classifiers,
                alpha=0.1,
                scale=part.scale,
                threshold_metric="f1",
                random_state=0,
                n_threads=1,
                on_progress=lambda s, f: None,
            )
            bundle = ModelBundle(reg, clf, {"gate": {"passed": True}, "pass_mark": PASS_MARK})
            shown = score_students(bundle, part.X[test], n_passes=20, allow_gated=True)
            shown["y"] = part.grade[test].to_numpy()
            shown["passed"] = part.passed[test].to_numpy()
            shown["seed"], shown["checkpoint"], shown["offering"] = seed, cp, g
            shown["regressor"], shown["classifier"] = reg.name, clf.name
            frames.append(shown.reset_index(drop=True))
    return pd.concat(frames, ignore_index=True)


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    out = []
    for cp, part in rows.groupby("checkpoint"):
        y, p = part["passed"].to_numpy(float), part["p_pass"].to_numpy(float)
        lo, hi = _boot(y, p)
        per_seed = [_ece(s["passed"].to_numpy(float), s["p_pass"].to_numpy(float))
                    for _, s in part.groupby("seed")]  # fmt: skip
        out.append(
            {
                "checkpoint": float(cp),  # type: ignore[arg-type]
                "n": len(part),
                "ece": _ece(y, p),
                "ece_ci": [lo, hi],
                "ece_per_seed": per_seed,
                "coverage": float(
                    ((part["y"] >= part["grade_low"]) & (part["y"] <= part["grade_high"])).mean()
                ),
                "r2": float(r2_score(part["y"], part["grade"])),
                "auc": float(roc_auc_score(y, p)),
                "p_in_range": float(
                    ((part["p_pass_low"] <= p) & (p <= part["p_pass_high"])).mean()
                ),
                "p_extreme": float(((p <= 0) | (p >= 1)).mean()),
                "incoherent": float(((p >= 0.5) != (part["grade"] >= PASS_MARK)).mean()),
                "regressors": part["regressor"].value_counts().to_dict(),
                "classifiers": part["classifier"].value_counts().to_dict(),
            }
        )
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label", default="current")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--n-past", type=int, default=8)
    ap.add_argument("--n-students", type=int, default=60)
    ap.add_argument("--checkpoints", default="", help="comma-separated; empty: 10/25/50/75/100 %")
    ap.add_argument("--regressors", default="", help="comma-separated; empty: all")
    ap.add_argument("--classifiers", default="", help="comma-separated; empty: all")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    cps = (
        tuple(float(c) for c in args.checkpoints.split(","))
        if args.checkpoints
        else tuple(DEFAULT_CHECKPOINTS)
    )
    regs = args.regressors.split(",") if args.regressors else None
    clfs = args.classifiers.split(",") if args.classifiers else None
    t0 = time.perf_counter()
    rows = pd.concat(
        [
            held_out(
                s,
                n_past=args.n_past,
                n_students=args.n_students,
                checkpoints=cps,
                regressors=regs,
                classifiers=clfs,
            )
            for s in seeds
        ],
        ignore_index=True,
    )
    table = summarise(rows)
    elapsed = time.perf_counter() - t0
    report: dict[str, Any] = {
        "label": args.label,
        "seeds": seeds,
        "n_past": args.n_past,
        "n_students": args.n_students,
        "regressors": regs or "all",
        "classifiers": clfs or "all",
        "seconds": elapsed,
        "checkpoints": json.loads(table.to_json(orient="records")),
    }
    out = ROOT / "bench" / "reports" / f"calibration_loo-{args.label}.json"
    out.write_text(json.dumps(report, indent=1), "utf-8")
    rows.to_csv(out.with_suffix(".csv.gz"), index=False)
    cols = ["checkpoint", "n", "ece", "coverage", "r2", "auc", "p_in_range", "p_extreme",
            "incoherent"]  # fmt: skip
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"{elapsed:.0f} s; written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

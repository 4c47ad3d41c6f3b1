"""Before against after, on every simulated course at once (issue #14's "no lower than today's").

`bench.calibration_loo` writes each run's held-out students (`calibration_loo-<label>.csv.gz`);
runs were made in batches of seeds (1-3, then 4-9, and 10 % of the term apart), and a batch is
an accident of scheduling, not a population. This script joins the batches of each side, checks
that both sides hold the very same held-out students (seed, offering, point of the term, final
grade), and gives per point of the term: R² of the shown grade and AUC of the shown chance,
before and after, with a 95 % interval of the R² difference from a cluster bootstrap over the
held-out offerings (students of one offering share their cohort; resampling them one by one
would understate the uncertainty). The bootstrap is seeded: the same reports give the same
figures.

Run ``python -m bench.calibration_compare --before before-rows,before-rows-early,before-more
--after after-mean,after-mean-more --label nine-seeds`` (writes
``bench/reports/calibration_compare-<label>.json`` and prints a table).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score

REPORTS = Path(__file__).resolve().parent / "reports"
KEY = ["seed", "offering", "checkpoint"]


def load(labels: list[str], reports: Path = REPORTS) -> pd.DataFrame:
    """The held-out students of the named runs, one row each."""
    frames = [pd.read_csv(reports / f"calibration_loo-{label}.csv.gz") for label in labels]
    rows = pd.concat(frames, ignore_index=True)
    return rows.sort_values([*KEY, "y", "grade"], kind="stable").reset_index(drop=True)


def _same_students(before: pd.DataFrame, after: pd.DataFrame) -> None:
    """Both sides must hold the same students, or the comparison means nothing."""
    left = before[[*KEY, "y"]].sort_values([*KEY, "y"]).reset_index(drop=True)
    right = after[[*KEY, "y"]].sort_values([*KEY, "y"]).reset_index(drop=True)
    if len(left) != len(right) or not left.round(9).equals(right.round(9)):
        raise ValueError("the two sides do not hold the same held-out students")


def compare(
    before: pd.DataFrame, after: pd.DataFrame, *, draws: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """Per point of the term: n, offerings, R² and AUC on each side, and the 95 % cluster
    bootstrap interval of R²(after) - R²(before)."""
    _same_students(before, after)
    rng = np.random.default_rng(seed)
    out: list[dict[str, Any]] = []
    for checkpoint in sorted(after["checkpoint"].unique()):
        b = before[before["checkpoint"] == checkpoint].sort_values(["seed", "offering", "y"])
        a = after[after["checkpoint"] == checkpoint].sort_values(["seed", "offering", "y"])
        b, a = b.reset_index(drop=True), a.reset_index(drop=True)
        clusters = list(a.groupby(["seed", "offering"]).indices.values())
        y = a["y"].to_numpy()
        ga, gb = a["grade"].to_numpy(), b["grade"].to_numpy()
        diffs = np.empty(draws)
        for i in range(draws):
            pick = np.concatenate(
                [clusters[j] for j in rng.integers(0, len(clusters), len(clusters))]
            )
            diffs[i] = r2_score(y[pick], ga[pick]) - r2_score(y[pick], gb[pick])
        low, high = np.percentile(diffs, [2.5, 97.5])
        out.append(
            {
                "checkpoint": float(checkpoint),
                "n": len(a),
                "offerings": len(clusters),
                "r2_before": float(r2_score(y, gb)),
                "r2_after": float(r2_score(y, ga)),
                "r2_diff_ci": [float(low), float(high)],
                "auc_before": float(roc_auc_score(b["passed"], b["p_pass"])),
                "auc_after": float(roc_auc_score(a["passed"], a["p_pass"])),
            }
        )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--before", required=True, help="comma-separated calibration_loo labels")
    ap.add_argument("--after", required=True, help="comma-separated calibration_loo labels")
    ap.add_argument("--label", default="current")
    args = ap.parse_args(argv)
    before_labels, after_labels = args.before.split(","), args.after.split(",")
    rows = compare(load(before_labels), load(after_labels))
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    path = REPORTS / f"calibration_compare-{args.label}.json"
    report = {"label": args.label, "before": before_labels, "after": after_labels, "rows": rows}
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {path.relative_to(REPORTS.parents[1])}")


if __name__ == "__main__":
    main()

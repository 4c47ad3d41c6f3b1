"""The fairness report (#18, item 7) on simulated predictions with fixed seeds: a planted bias
(the chances of one group's students inflated, so its failing students go unflagged and its
ranges sit too high) is flagged; the same process without it is not; a group too small to
compare is reported and never compared; the per-group figures are fairlearn's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.fairness import FairnessSettings, by_group, fairness_report

SEEDS = (0, 1, 2, 3, 4)
FAST = FairnessSettings(n_boot=120, seed=0)


def _panel(seed: int, bias: float, n: int = 300, small: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for group, size in (("A", n), ("B", n), ("C", small)):
        if not size:
            continue
        passed = rng.random(size) < 0.6
        logit = np.where(passed, 1.2, -1.2) + rng.normal(0, 1.0, size)
        shift = bias if group == "B" else 0.0
        p = 1 / (1 + np.exp(-(logit + shift)))
        grade = np.where(passed, 10 + 10 * rng.random(size), 10 * rng.random(size))
        centre = grade + rng.normal(0, 2.0, size) + 3 * shift
        frames.append(
            pd.DataFrame(
                {
                    "checkpoint": 0.5,
                    "group": group,
                    "passed": passed.astype(int),
                    "p_pass": p,
                    "flagged": p < 0.5,
                    "grade": grade,
                    "grade_low": centre - 4,
                    "grade_high": centre + 4,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_planted_bias_is_flagged(seed: int) -> None:
    report = fairness_report(_panel(seed, bias=2.0), FAST)
    flagged = set(report.loc[report["flagged"], "metric"])
    assert {"missed", "coverage"} <= flagged
    missed = report.set_index("metric").loc["missed"]
    assert missed["values"]["B"] > missed["values"]["A"]  # B's failing students go unflagged
    assert missed["gap_low"] > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_no_bias_no_flag(seed: int) -> None:
    report = fairness_report(_panel(seed, bias=0.0), FAST)
    assert not report["flagged"].any(), report[["metric", "gap", "gap_low", "gap_high"]]
    # Every gap is reported with an interval that holds it.
    assert ((report["gap_low"] <= report["gap"]) & (report["gap"] <= report["gap_high"])).all()


def test_a_small_group_is_reported_but_never_compared() -> None:
    report = fairness_report(_panel(0, bias=0.0, small=8), FAST)
    row = report.set_index("metric").loc["missed"]
    assert row["sizes"]["C"] == 8
    assert "C" in row["values"]
    assert not report["flagged"].any()
    # The gaps are A's and B's only: C's eight students change none of them much.
    only_two = fairness_report(_panel(0, bias=0.0, n=300, small=0), FAST)
    assert list(only_two["gap"]) == pytest.approx(list(report["gap"]), abs=0.2)


def test_by_group_matches_a_direct_computation() -> None:
    frame = _panel(3, bias=1.0)
    table = by_group(frame)
    for name in ("A", "B"):
        part = frame[frame["group"] == name]
        failed = part["passed"] == 0
        row = table.to_dict(orient="index")[name]
        assert row["missed"] == pytest.approx(float((~part["flagged"][failed]).mean()))
        assert row["brier"] == pytest.approx(float(((part["p_pass"] - part["passed"]) ** 2).mean()))

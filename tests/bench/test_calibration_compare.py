"""The before/after comparison joins batches of runs and refuses sides that hold different
students (its figures would compare two populations)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.calibration_compare import compare


def _students(seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 120
    y = rng.uniform(0, 20, n)
    grade = y + rng.normal(0, 2 + shift, n)
    return pd.DataFrame(
        {
            "seed": np.repeat([1, 2], n // 2),
            "offering": np.tile(np.repeat(["A-2020", "A-2021", "A-2022"], n // 6), 2),
            "checkpoint": 0.5,
            "y": y,
            "grade": grade,
            "passed": (y >= 10).astype(int),
            "p_pass": 1 / (1 + np.exp(-(grade - 10))),
        }
    )


def test_the_same_model_on_both_sides_differs_by_nothing() -> None:
    [row] = compare(_students(1), _students(1).sample(frac=1, random_state=3), draws=200)
    assert row["n"] == 120
    assert row["offerings"] == 6
    assert row["r2_before"] == pytest.approx(row["r2_after"])
    assert row["r2_diff_ci"] == pytest.approx([0.0, 0.0], abs=1e-12)


def test_a_better_model_has_a_higher_r2_and_an_interval_above_zero() -> None:
    before = _students(1, shift=2.0)
    after = before.assign(grade=_students(1).grade)
    [row] = compare(before, after, draws=200)
    assert row["r2_after"] > row["r2_before"]
    assert row["r2_diff_ci"][0] > 0


def test_sides_with_different_students_are_refused() -> None:
    with pytest.raises(ValueError, match="same held-out students"):
        compare(_students(1), _students(2), draws=10)

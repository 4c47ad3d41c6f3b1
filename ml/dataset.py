"""Training data from past offerings: features at matching relative checkpoints, final targets.

A running course has no final grades, so models learn from past offerings of the same course (or
sibling courses). To be honest about what is known when, the features of a past offering are
computed with ``as_of`` at the same relative point of *its* course as the current one: week 4 of
12 is compared with week 4 of 12. :func:`build_training_set` does it for several checkpoints at
once (by default 10/25/50/75/100 %), which also gives the early-warning curve. A scoring service
that predicts at progress ``p`` passes ``checkpoints=(p,)``.

Targets are the final course total rescaled to ``scale`` (default /20, the French convention) and
pass/fail at ``pass_mark`` (default 10). A student whose course total is missing (Moodle shows
``-``: nothing was graded) counts as 0 by default, because at ARCHE these are students who
vanished, and dropping them would hide exactly the students the tool exists for; pass
``missing_grade="drop"`` to exclude them instead. Cross-validation is grouped by offering
(``groups``), so no offering is ever both in training and validation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from ml.features import compute_features

DEFAULT_CHECKPOINTS: Final = (0.10, 0.25, 0.50, 0.75, 1.00)


@dataclass(frozen=True, slots=True)
class Offering:
    """One past (or current) offering: canonical events, roster, dates and final grades.

    ``grades`` maps userid to the raw course total (NaN when missing); it is empty for the
    running offering. ``grade_maxes`` maps userid to that user's own maximum: under Moodle's
    default natural aggregation ("exclude empty grades") a student with the quiz graded has a
    course total out of 120 and one without out of 100, so one maximum cannot scale everyone.
    A user absent from it (or NaN) is out of ``grade_max``. See :func:`final_grades`.
    """

    offering_id: str
    events: pd.DataFrame
    roster: pd.DataFrame
    course_start: pd.Timestamp
    course_end: pd.Timestamp
    grades: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    grade_min: float = 0.0
    grade_max: float = 100.0
    course_modules: Sequence[int] | None = None
    grade_maxes: pd.Series | None = None

    def final_grades(self, userids: Sequence[int] | np.ndarray, scale: float) -> np.ndarray:
        """The final grade of each of ``userids`` on [0, ``scale``] (NaN when missing)."""
        ids = np.asarray(userids)
        raw = self.grades.reindex(ids).to_numpy(dtype=np.float64)
        if self.grade_maxes is None:
            maxima = np.full(len(ids), self.grade_max, dtype=np.float64)
        else:
            maxima = self.grade_maxes.reindex(ids).to_numpy(dtype=np.float64)
            maxima = np.where(np.isnan(maxima), self.grade_max, maxima)
        return final_grades(raw, maxima, self.grade_min, scale)


@dataclass(frozen=True, slots=True)
class TrainingSet:
    """Rows = (offering, checkpoint, student). ``X`` holds only feature columns."""

    X: pd.DataFrame
    grade: pd.Series
    passed: pd.Series
    groups: pd.Series
    checkpoint: pd.Series
    userid: pd.Series
    scale: float
    pass_mark: float

    @property
    def features(self) -> list[str]:
        return list(self.X.columns)

    def at(self, checkpoint: float) -> TrainingSet:
        """The rows of one checkpoint."""
        m = np.isclose(self.checkpoint.to_numpy(), checkpoint)
        if not m.any():
            raise KeyError(f"no rows at checkpoint {checkpoint}")
        return TrainingSet(
            self.X[m].reset_index(drop=True),
            self.grade[m].reset_index(drop=True),
            self.passed[m].reset_index(drop=True),
            self.groups[m].reset_index(drop=True),
            self.checkpoint[m].reset_index(drop=True),
            self.userid[m].reset_index(drop=True),
            self.scale,
            self.pass_mark,
        )

    def data_hash(self) -> str:
        """SHA-256 of features and targets: the registry records what a model was trained on."""
        h = hashlib.sha256()
        for part in (self.X, self.grade, self.groups.astype(str), self.checkpoint):
            h.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        h.update(",".join(self.features).encode())
        return h.hexdigest()


def rescale(
    raw: pd.Series | np.ndarray, grade_min: float, grade_max: float, scale: float = 20.0
) -> np.ndarray:
    """Raw points on [grade_min, grade_max] -> [0, scale], clipped."""
    span = grade_max - grade_min
    if span <= 0:
        raise ValueError("grade_max must exceed grade_min")
    values = (np.asarray(raw, dtype=np.float64) - grade_min) / span * scale
    return np.asarray(np.clip(values, 0.0, scale))


def final_grades(
    raw: pd.Series | np.ndarray,
    maxima: pd.Series | np.ndarray | float,
    grade_min: float = 0.0,
    scale: float = 20.0,
) -> np.ndarray:
    """Each raw course total on its own range [``grade_min``, its maximum] -> [0, ``scale``].

    ``maxima`` is one maximum per value (or one for all). A student at 120/120 and one at
    100/100 both end at ``scale``. A total above its maximum, which Moodle gives only when the
    site allows grades above the maximum (``unlimitedgrades``) or with extra credit, is capped at
    ``scale``: the tool's scale has no room above the full mark, and the pass/fail line is the
    same either way. A missing value stays NaN; a maximum not above ``grade_min`` is an error.
    """
    values = np.asarray(raw, dtype=np.float64)
    tops = np.broadcast_to(np.asarray(maxima, dtype=np.float64), values.shape)
    span = tops - grade_min
    if np.any(~np.isnan(values) & ~(span > 0)):
        raise ValueError("every grade's maximum must exceed grade_min")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (values - grade_min) / span * scale
    return np.asarray(np.clip(out, 0.0, scale))


def build_training_set(
    offerings: Iterable[Offering],
    checkpoints: Sequence[float] = DEFAULT_CHECKPOINTS,
    *,
    scale: float = 20.0,
    pass_mark: float = 10.0,
    missing_grade: Literal["zero", "drop"] = "zero",
    feature_kwargs: Mapping[str, Any] | None = None,
) -> TrainingSet:
    """Features of every student of every offering at each relative checkpoint, with targets."""
    kwargs = dict(feature_kwargs or {})
    frames: list[pd.DataFrame] = []
    for off in offerings:
        length = off.course_end - off.course_start
        target = off.final_grades(off.roster["userid"].to_numpy(), scale)
        if missing_grade == "zero":
            target = np.where(np.isnan(target), 0.0, target)
        for cp in checkpoints:
            if not 0.0 < cp <= 1.0:
                raise ValueError(f"checkpoints are fractions in (0, 1], got {cp}")
            as_of = off.course_start + length * cp
            feats = compute_features(
                off.events,
                off.roster,
                as_of,
                off.course_start,
                off.course_end,
                course_modules=off.course_modules,
                **kwargs,
            )
            feats = feats.reset_index()
            feats["_grade"] = target
            feats["_group"] = off.offering_id
            feats["_checkpoint"] = float(cp)
            frames.append(feats)
    if not frames:
        raise ValueError("no offerings given")
    data = pd.concat(frames, ignore_index=True)
    data = data[~np.isnan(data["_grade"].to_numpy(dtype=float))].reset_index(drop=True)
    names = [c for c in data.columns if c not in ("userid", "_grade", "_group", "_checkpoint")]
    grade = data["_grade"].astype(np.float64).rename("grade")
    return TrainingSet(
        X=data[names].astype(np.float64),
        grade=grade,
        passed=(grade >= pass_mark).astype(np.int64).rename("passed"),
        groups=data["_group"].astype(str).rename("offering"),
        checkpoint=data["_checkpoint"].rename("checkpoint"),
        userid=data["userid"].astype(np.int64),
        scale=scale,
        pass_mark=pass_mark,
    )


def final_grades_from_grade_items(payload: Mapping[str, Any]) -> pd.DataFrame:
    """Course totals from a ``gradereport_user_get_grade_items`` answer (userid=0: all users).

    The course total is the item with ``itemtype == "course"``; ``graderaw`` is null when Moodle
    shows ``-``. Returns ``userid``, ``graderaw``, ``grademin``, ``grademax``.
    """
    rows = []
    for user in payload.get("usergrades", []):
        course = [g for g in user.get("gradeitems", []) if g.get("itemtype") == "course"]
        if not course:
            continue
        item = course[0]
        raw = item.get("graderaw")
        rows.append(
            {
                "userid": int(user["userid"]),
                "graderaw": np.nan if raw is None else float(raw),
                "grademin": float(item.get("grademin", 0) or 0),
                "grademax": float(item.get("grademax", 100) or 100),
            }
        )
    return pd.DataFrame(rows, columns=["userid", "graderaw", "grademin", "grademax"])

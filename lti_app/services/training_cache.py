"""The training set of a course's last scoring, kept by what it was built from (#19, item 3).

A re-scoring with nothing new (a second "Sync now", every night after the term's end when the
checkpoint stays at 100 %) reuses the trained version, yet rebuilt its training set first just
to find out: every past offering's events read and their features computed, to hash them. Here
the inputs are fingerprinted with cheap aggregates instead (per past offering: its dates and
grade range, the count, id range and time sums of its events, the students the scoring may use,
their course totals; the checkpoint, grade scale and pass mark; the source of the feature code),
and the built set's features and data hash are kept under that fingerprint. A scoring whose
fingerprint matches loads them and skips the past offerings altogether; any change of an input
changes the fingerprint, and the set is built again as before.

One file per course in `model_root/training-cache/`, numpy's own format (no pickle: the store
must not execute what it reads), replaced at each course-scoped scoring. Services never commit.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.models import Course, LogEvent
from lti_app.services.course_data import course_totals, student_roster

#: Where the kept sets live, under the model store.
FOLDER = "training-cache"
#: The modules whose code shapes a training set: a deployment that changes them changes every
#: fingerprint.
_CODE = ("ml/events.py", "ml/features.py", "ml/dataset.py")


@cache
def _code_digest() -> str:
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for name in _CODE:
        h.update((root / name).read_bytes())
    return h.hexdigest()


def _iso(value: Any) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def fingerprint(
    session: Session,
    course: Course,
    past: list[Course],
    *,
    checkpoint: float,
    scale: float,
    pass_mark: float,
) -> str:
    """What the course's training set at `checkpoint` is built from, as one digest."""
    parts: list[Any] = [_code_digest(), course.id, repr(float(checkpoint)), scale, pass_mark]
    for offering in past:
        events = session.execute(
            select(
                func.count(),
                func.min(LogEvent.id),
                func.max(LogEvent.id),
                func.min(LogEvent.timecreated),
                func.max(LogEvent.timecreated),
                func.sum(LogEvent.timecreated),
                func.sum(LogEvent.userid),
            ).where(
                LogEvent.site_id == offering.site_id,
                LogEvent.courseid == offering.moodle_course_id,
            )
        ).one()
        totals = course_totals(session, offering)
        parts.append(
            [
                offering.id,
                offering.moodle_course_id,
                _iso(offering.start_at),
                _iso(offering.end_at),
                offering.grade_max,
                [None if v is None else int(v) for v in events],
                student_roster(session, offering)["userid"].astype(int).tolist(),
                [
                    [int(u), _num(v), _num(m)]
                    for u, v, m in zip(
                        totals.values.index,
                        totals.values.to_numpy(),
                        totals.maxima.reindex(totals.values.index).to_numpy(),
                        strict=True,
                    )
                ],
                totals.grade_min,
                totals.grade_max,
            ]
        )
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _num(value: Any) -> float | None:
    number = float(value)
    return None if np.isnan(number) else number


@dataclass(frozen=True)
class Kept:
    """A kept training set: the features (the factors' background), its data hash (what the
    model versions record) and the past offerings' names."""

    X: pd.DataFrame
    data_hash: str
    names: list[str]


def _path(model_root: Path, course_id: int) -> Path:
    return model_root / FOLDER / f"course-{course_id}.npz"


def load(model_root: Path, course_id: int, key: str) -> Kept | None:
    """The set kept for the course under `key`, or None (none kept, another key, unreadable)."""
    path = _path(model_root, course_id)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("key") != key:
                return None
            frame = pd.DataFrame(data["X"], columns=list(meta["columns"]))
    except (OSError, ValueError, KeyError):
        return None
    return Kept(X=frame, data_hash=str(meta["data_hash"]), names=list(meta["names"]))


def save(model_root: Path, course_id: int, key: str, kept: Kept) -> None:
    """Keep the course's set under `key` (replacing the previous one), atomically."""
    path = _path(model_root, course_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "key": key,
        "data_hash": kept.data_hash,
        "columns": [str(c) for c in kept.X.columns],
        "names": kept.names,
    }
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, X=kept.X.to_numpy(dtype=np.float64), meta=np.array(json.dumps(meta)))
    partial.replace(path)


__all__ = ["FOLDER", "Kept", "fingerprint", "load", "save"]

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
import os
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lti_app.models import Course, LogEvent
from lti_app.observability import get_logger
from lti_app.services.course_data import course_totals, student_roster

log = get_logger(__name__)

#: Where the kept sets live, under the model store.
FOLDER = "training-cache"
#: The modules whose code shapes a training set, from the stored rows to the features: a
#: deployment that changes them (or the numeric libraries) changes every fingerprint.
_CODE = (
    "ml/events.py",
    "ml/features.py",
    "ml/dataset.py",
    "lti_app/services/course_data.py",
    "lti_app/services/courses.py",
    "lti_app/services/training_cache.py",
)
#: A kept set not used for this long goes at the nightly retention (a course no longer scored).
STALE_DAYS = 30


@cache
def _code_digest() -> str:
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for name in _CODE:
        h.update((root / name).read_bytes())
    h.update(f"numpy {np.__version__} pandas {pd.__version__}".encode())
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
    min_past_offerings: int,
) -> str:
    """What the course's training set at `checkpoint` is built from, as one digest (with the
    least number of past offerings a model needs: a set kept under another rule is not
    this scoring's)."""
    parts: list[Any] = [
        _code_digest(), course.id, repr(float(checkpoint)), scale, pass_mark, min_past_offerings,
    ]  # fmt: skip
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
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("key") != key:
                return None
            frame = pd.DataFrame(data["X"], columns=list(meta["columns"]))
            kept = Kept(X=frame, data_hash=str(meta["data_hash"]), names=list(meta["names"]))
    except Exception:  # noqa: BLE001 - a damaged file is no cache: the set is built again
        log.warning("unreadable training cache, ignored", course_id=course_id, path=str(path))
        return None
    os.utime(path)  # in use: not stale
    return kept


def save(model_root: Path, course_id: int, key: str, kept: Kept) -> None:
    """Keep the course's set under `key` (replacing the previous one), atomically: written to
    a file of its own, then renamed, so two scorings of the course at once never mix. A cache
    that cannot be written only costs the next scoring a rebuild."""
    path = _path(model_root, course_id)
    meta = {
        "key": key,
        "data_hash": kept.data_hash,
        "columns": [str(c) for c in kept.X.columns],
        "names": kept.names,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, X=kept.X.to_numpy(dtype=np.float64), meta=np.array(json.dumps(meta)))
        Path(partial).replace(path)
    except OSError:
        log.warning("training cache not written", course_id=course_id, exc_info=True)


def clear(model_root: Path, *, older_than_days: float | None = None) -> int:
    """Delete the kept sets (all, or those unused for `older_than_days`): an erasure clears
    them all (each holds past students' features; they are rebuilt at the next scoring), the
    nightly retention the stale ones. Returns how many went."""
    folder = model_root / FOLDER
    if not folder.is_dir():
        return 0
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86_400
    removed = 0
    for path in folder.glob("*.npz"):
        try:
            if cutoff is None or path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


__all__ = ["FOLDER", "STALE_DAYS", "Kept", "clear", "fingerprint", "load", "save"]

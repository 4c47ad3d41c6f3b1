"""The benchmark datasets: one simulated Moodle course per size, with ``simulation``.

The issue pairs event counts with cohorts: 10k events / 500 students, 100k / 5k, 1M / 50k (and
10M behind ``--full``). A full simulated term has at least ~55 events per student whatever the
``activity`` (the quizzes' and assignments' structured events do not scale with it), so the three
default sizes are a course *in progress*: week 3 of 12 (``current_progress=0.25``) at a low
activity, about 21 events per student. That is the data a nightly scoring run sees early in the
term, when early warning matters. The 10M dataset is a whole term at a realistic activity
(about 200 events per student, 50k students).

Sizes are approximate: the simulator draws each cohort within +-15% of ``n_students``; the
tables report the exact counts. The same seed always gives the same data.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from ml.dataset import Offering
from simulation.course import SimulatedOffering, simulate_course

SEED = 20261122


@dataclass(frozen=True)
class Size:
    label: str
    n_students: int
    progress: float | None  # None: a finished term
    activity: float
    full_only: bool = False


SIZES: tuple[Size, ...] = (
    Size("10k", 500, 0.25, 0.18),
    Size("100k", 5_000, 0.25, 0.18),
    Size("1M", 50_000, 0.25, 0.18),
    Size("10M", 50_000, None, 0.62, full_only=True),
)


def sizes(full: bool, only: set[str] | None = None) -> list[Size]:
    chosen = [s for s in SIZES if full or not s.full_only]
    return [s for s in chosen if only is None or s.label in only]


@dataclass(frozen=True)
class Dataset:
    size: Size
    offering: SimulatedOffering
    simulate_s: float

    @property
    def log(self) -> pd.DataFrame:
        return self.offering.log

    @property
    def n_events(self) -> int:
        return len(self.offering.log)

    @property
    def n_students(self) -> int:
        return len(self.offering.roster)

    def as_of(self) -> pd.Timestamp:
        """The feature date: "now" for a course in progress, the end of a finished one."""
        off = self.offering
        return off.now if off.now is not None else off.end

    def to_offering(self) -> Offering:
        return self.offering.to_offering()


def make_dataset(size: Size) -> Dataset:
    t0 = time.perf_counter()
    if size.progress is None:
        course = simulate_course(
            n_past=1, n_students=size.n_students, seed=SEED, current_progress=None,
            activity=size.activity,
        )  # fmt: skip
    else:
        course = simulate_course(
            n_past=0, n_students=size.n_students, seed=SEED, current_progress=size.progress,
            activity=size.activity,
        )  # fmt: skip
    off = course.offerings[0]
    return Dataset(size, off, time.perf_counter() - t0)


def _peak_rss_mb() -> float | None:
    try:
        for line in open("/proc/self/status", encoding="ascii"):  # noqa: SIM115 - tiny file
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


if __name__ == "__main__":
    # `python -m bench.datasets LABEL`: the generator alone, in a fresh process (speed, memory)
    import json
    import sys

    ds = make_dataset(next(s for s in SIZES if s.label == sys.argv[1]))
    print(
        json.dumps(
            {
                "seconds": ds.simulate_s,
                "events": ds.n_events,
                "students": ds.n_students,
                "peak_rss_mb": _peak_rss_mb(),
            }
        )
    )

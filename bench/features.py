"""Feature extraction: ``ml.features.compute_features`` vs its real peers (a pandas group-by
pipeline and a polars query, `bench.peers`, #19 item 8) and the naive baseline, speed and
memory; every implementation's values are checked equal to ours before a time is reported.

Each measurement runs in a fresh Python process (``python -m bench.features WORKER IN OUT``) so
that sizes and implementations do not pollute each other's memory. The worker loads the inputs
(pickled by the parent), then resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), so
``peak_rss`` is the high-water mark *during the feature pass*: the loaded events plus whatever
the pass allocates (``rss_before`` is what the inputs alone take, ``load_peak_rss`` the peak
while loading them).
``getrusage(RUSAGE_CHILDREN)`` is no use here: Linux folds the forking parent's RSS (which holds
the dataset) into the child's maximum at ``exec``, so it reports the parent, not the worker.
"""

from __future__ import annotations

import gc
import json
import pickle
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.datasets import Dataset
from bench.naive import baseline_feature_names, compare, naive_features
from bench.peers import pandas_features, polars_features
from ml.features import compute_features

#: The real peers (#19, item 8), each in its own worker process like ours.
PEERS = {"pandas": pandas_features, "polars": polars_features}

ROOT = Path(__file__).resolve().parents[1]


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def worker(mode: str, inp: Path, out: Path, repeat: int) -> dict[str, Any]:
    with open(inp, "rb") as fh:
        data = pickle.load(fh)  # noqa: S301 - a file the parent benchmark just wrote
    events: pd.DataFrame = data["events"]
    gc.collect()
    load_peak = _proc_status_kb("VmHWM")
    reset = _reset_peak()
    rss_before = _proc_status_kb("VmRSS")
    times: list[float] = []
    result: pd.DataFrame | None = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        if mode == "vectorised":
            result = compute_features(
                events,
                data["roster"],
                data["as_of"],
                data["course_start"],
                data["course_end"],
                course_modules=data["course_modules"],
            )
        elif mode in PEERS:
            result = PEERS[mode](events, data["roster"], data["as_of"])
        else:
            result = naive_features(events, data["roster"], data["as_of"])
        times.append(time.perf_counter() - t0)
    peak = _proc_status_kb("VmHWM") if reset else None
    assert result is not None
    with open(out, "wb") as fh:
        pickle.dump(result[baseline_feature_names()], fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "seconds": statistics.median(times),
        "seconds_all": times,
        "load_peak_rss_mb": load_peak / 1024 if load_peak else None,
        "rss_before_mb": rss_before / 1024 if rss_before else None,
        "peak_rss_mb": peak / 1024 if peak else None,
    }


def run_worker(mode: str, inp: Path, out: Path, repeat: int) -> dict[str, Any]:
    proc = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bench.features", mode, str(inp), str(out), str(repeat)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"feature worker ({mode}) failed:\n{proc.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def bench_features(ds: Dataset, tmp: Path, *, naive: bool) -> dict[str, Any]:
    off = ds.to_offering()
    inp = tmp / f"features-{ds.size.label}.pkl"
    with open(inp, "wb") as fh:
        pickle.dump(
            {
                "events": off.events,
                "roster": off.roster["userid"].tolist(),
                "as_of": ds.as_of(),
                "course_start": off.course_start,
                "course_end": off.course_end,
                "course_modules": off.course_modules,
            },
            fh,
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    n_events = len(off.events)
    del off
    out_v = tmp / f"features-{ds.size.label}-vectorised.pkl"
    vec = run_worker("vectorised", inp, out_v, repeat=3)
    result: dict[str, Any] = {
        "events": n_events,
        "students": ds.n_students,
        "vectorised": vec,
        "vectorised_events_per_s": n_events / vec["seconds"],
    }
    with open(out_v, "rb") as fh:
        ours = pickle.load(fh)  # noqa: S301 - written by our worker
    peers: dict[str, Any] = {}
    for name in PEERS:
        out_p = tmp / f"features-{ds.size.label}-{name}.pkl"
        report = run_worker(name, inp, out_p, repeat=3)
        with open(out_p, "rb") as fh:
            theirs = pickle.load(fh)  # noqa: S301 - written by our worker
        report["max_abs_diff"] = compare(theirs, ours)  # raises when they disagree
        report["events_per_s"] = n_events / report["seconds"]
        report["ratio"] = report["seconds"] / vec["seconds"]  # > 1: ours is faster
        peers[name] = report
        out_p.unlink()
    result["peers"] = peers
    fastest = min(peers, key=lambda k: peers[k]["seconds"])
    result["fastest_peer"] = fastest
    result["ratio_to_fastest_peer"] = peers[fastest]["seconds"] / vec["seconds"]
    if naive:
        out_n = tmp / f"features-{ds.size.label}-naive.pkl"
        nai = run_worker("naive", inp, out_n, repeat=1)
        with open(out_v, "rb") as fh:
            fast = pickle.load(fh)  # noqa: S301 - written by our worker
        with open(out_n, "rb") as fh:
            slow = pickle.load(fh)  # noqa: S301 - written by our worker
        max_diff = compare(slow, fast)  # raises when the two disagree
        result.update(
            naive=nai,
            naive_events_per_s=n_events / nai["seconds"],
            speedup=nai["seconds"] / vec["seconds"],
            identical_features=len(slow.columns),
            max_abs_diff=max_diff,
        )
        out_n.unlink()
    out_v.unlink()
    inp.unlink()
    return result


if __name__ == "__main__":
    mode, inp_path, out_path, reps = sys.argv[1:5]
    print(json.dumps(worker(mode, Path(inp_path), Path(out_path), int(reps))))

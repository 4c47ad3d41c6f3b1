"""A university night (#19, items 1 and 2): many simulated courses synced from the Moodle
stand-in and scored on PostgreSQL through the job queue, by 1 and by 2 worker processes.

Each course family is drawn like a university's: students log-normal around 80 (30 to 500),
2 to 4 past offerings, already in the database from earlier years (stored directly, as a
backfill leaves them, not synced nightly); the current offering, half-way through its term,
is the night's work: `arche-predict scheduler --once nightly-sync` queues every course
(scheduler.queue = "procrastinate"), then W `arche-predict worker --once` processes pull each
course's roster, grades and log from the stand-in over HTTP and score it (training included:
the checkpoint moved). Both runs start from identical databases (seeded twice). Reported:
courses per hour, the per-course time distribution (from Procrastinate's own job events) and
the speed-up from 1 to 2 workers, and where each night's CPU went: the workers (their own
CPU time, from the kernel's accounting of exited children), the Moodle stand-in (this process)
and the rest (PostgreSQL, mostly), against what the machine's cores could give over the night
(``/proc/stat``). From the 1-worker night's total CPU, the best a 2-worker night can do on this
machine's cores is ``total / cores`` seconds: the speed-up bound printed beside the target.

This is a first night for the current offerings (their whole term so far is pulled): an upper
bound of an ordinary night, which pulls one day of events, and the training dominates either.
"""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from bench.ingest import fresh_database
from bench.webapp import plain_config
from lti_app.config import load_settings
from lti_app.crypto import SecretBox
from lti_app.db import make_engine, make_session_factory, session_scope
from lti_app.demo.moodle import SimulatedMoodle
from lti_app.job_queue import COURSE_TASK
from lti_app.services.course_data import store_simulated_offering
from lti_app.services.courses import add_course, link_past_offering
from lti_app.services.sites import upsert_site
from simulation.course import CourseSpec, SimulatedCourse, simulate_course

ROOT = Path(__file__).resolve().parents[1]
SEED = 19


def draw_families(n: int, seed: int = SEED) -> list[SimulatedCourse]:
    """`n` course families of realistic sizes, ids apart so they share one Moodle site."""
    rng = np.random.default_rng(seed)
    sizes = np.clip(np.round(rng.lognormal(np.log(80), 0.7, n)), 30, 500).astype(int)
    pasts = rng.integers(2, 5, n)
    out = []
    for i in range(n):
        spec = replace(CourseSpec(), shortname=f"UE{i:04d}", fullname=f"Unité {i:04d}")
        out.append(
            simulate_course(
                n_past=int(pasts[i]),
                n_students=int(sizes[i]),
                seed=seed + i,
                current_progress=0.5,
                spec=spec,
                first_courseid=100 + 10 * i,
                first_userid=100 + 20_000 * i,
                first_logid=1 + 20_000_000 * i,
            )
        )
    return out


def _config(tmp: Path, url: str, name: str) -> Path:
    return plain_config(
        tmp,
        url,
        f"night-{name}",
        '[scheduler]\nqueue = "procrastinate"\n[moodle]\npage_size = 5000',
    )


def _seed(config: Path, moodle_url: str, token: str, families: list[SimulatedCourse]) -> None:
    settings = load_settings(config, environ={})
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        site = upsert_site(session, SecretBox.from_settings(settings), moodle_url, token=token)
        for family in families:
            current = family.current
            assert current is not None
            course = add_course(session, moodle_url, current.courseid)
            for past in family.past:
                stored = store_simulated_offering(session, site, past, with_grades=True)
                stored.sync_enabled = False  # a backfilled past offering is not synced nightly
                link_past_offering(session, course, stored.id)
    engine.dispose()


def _cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lti_app.cli", "--config", str(config), *args]


def _machine_busy_s() -> float | None:
    """CPU seconds the machine has spent busy since boot (all cores: user, nice, system, irq,
    softirq; not the time a hypervisor stole, which no process here used), or None off Linux.
    In a container, /proc/stat and the core count are the host's: the split then describes
    the host."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 7:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_split(
    wall: float, busy0: float | None, children0: float, own0: float
) -> dict[str, float | None]:
    """Where the night's CPU went (seconds over all cores) and how busy the cores were."""
    busy1 = _machine_busy_s()
    busy = None if busy0 is None or busy1 is None else busy1 - busy0
    workers = _children_cpu_s() - children0
    stand_in = time.process_time() - own0
    cores = os.cpu_count() or 1
    return {
        "machine_busy_s": busy,
        "workers_s": workers,
        "stand_in_s": stand_in,
        "other_s": None if busy is None else busy - workers - stand_in,
        "cores_busy_share": None if busy is None else busy / (wall * cores),
    }


def _night(config: Path, workers: int) -> dict[str, Any]:
    subprocess.run(  # noqa: S603 - our own CLI
        _cli(config, "scheduler", "--once", "nightly-sync"), cwd=ROOT, check=True,
        capture_output=True, text=True,
    )  # fmt: skip
    busy0, children0, own0 = _machine_busy_s(), _children_cpu_s(), time.process_time()
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(  # noqa: S603 - our own CLI
            _cli(config, "worker", "--once", "--name", f"w{i}"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed: {err[-2000:]}")
    wall = time.perf_counter() - t0
    cpu = _cpu_split(wall, busy0, children0, own0)
    settings = load_settings(config, environ={})
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT j.status, "
                "extract(epoch FROM max(e.at) FILTER (WHERE e.type IN ('succeeded', 'failed')) "
                "- min(e.at) FILTER (WHERE e.type = 'started')) "
                "FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id "
                "WHERE j.task_name = :t GROUP BY j.id, j.status"
            ),
            {"t": COURSE_TASK},
        ).all()
    engine.dispose()
    seconds = np.array([float(r[1]) for r in rows if r[1] is not None])
    statuses = [str(r[0]) for r in rows]
    return {
        "workers": workers,
        "courses": len(rows),
        "succeeded": statuses.count("succeeded"),
        "wall_s": wall,
        "courses_per_hour": len(rows) / wall * 3600 if wall else None,
        "cpu": cpu,
        "per_course_s": {
            "p50": float(np.percentile(seconds, 50)),
            "p90": float(np.percentile(seconds, 90)),
            "max": float(seconds.max()),
            "mean": float(seconds.mean()),
        },
    }


def bench_night(tmp: Path, n_courses: int) -> dict[str, Any]:
    """One night by 1 worker, the same night by 2, on identical PostgreSQL databases."""
    families = draw_families(n_courses)
    combined = SimulatedCourse(
        spec=families[0].spec, offerings=tuple(o for f in families for o in f.offerings)
    )
    moodle = SimulatedMoodle(combined)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per web-service call
    moodle_url = moodle.start()
    out: dict[str, Any] = {
        "courses": n_courses,
        "students": [len(f.current.roster) for f in families if f.current is not None],
        "past_offerings": [len(f.past) for f in families],
    }
    try:
        for workers in (1, 2):
            with fresh_database("postgresql", tmp) as url:
                config = _config(tmp, url, f"w{workers}")
                t0 = time.perf_counter()
                _seed(config, moodle_url, moodle.token, families)
                out[f"seed_s_{workers}"] = time.perf_counter() - t0
                out[f"night_{workers}"] = _night(config, workers)
    finally:
        moodle.stop()
    one, two = out["night_1"]["wall_s"], out["night_2"]["wall_s"]
    out["speedup"] = one / two if two else None
    total = out["night_1"]["cpu"]["machine_busy_s"]
    cores = os.cpu_count() or 1
    # The 2-worker night cannot take less than the 1-worker night's CPU spread over the cores.
    out["speedup_bound"] = one / max(total / cores, one / 2) if total else None
    return out


__all__ = ["bench_night", "draw_families"]

"""How long ``arche-predict`` takes to start (issue #19, item 4: at most 300 ms for ``--help``
and for the commands that need no ML).

Each command runs as a fresh process, as an administrator or cron runs it, against a SQLite
database migrated beforehand (so the figure is the command's start and work, never a
migration): the process's wall time from spawn to exit, ``REPEATS`` times, reported as median
and max. The peer is the same interpreter doing nothing (``python -c pass``): what no lazy
import can take away.

The commands measured are every group's ``--help`` and the read-only commands an
administrator runs by hand or from cron that touch the database but not the models: ``db
current``, ``course list``, ``keys list``, ``lti list-platforms``, ``privacy access-log``,
``config check``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.webapp import plain_config

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 7
TARGET_MS = 300.0

#: (label, arguments after ``arche-predict``): help pages, then commands with a database.
GROUPS = (
    "config", "course", "db", "demo", "evaluate", "export-onnx", "import-grades", "import-logs",
    "keys", "lti", "moodle", "predict", "privacy", "scheduler", "serve", "site", "sync", "train",
    "worker",
)  # fmt: skip
HELP: tuple[tuple[str, ...], ...] = (("--help",), *((group, "--help") for group in GROUPS))
WORK: tuple[tuple[str, ...], ...] = (
    ("db", "current"),
    ("course", "list"),
    ("keys", "list"),
    ("lti", "list-platforms"),
    ("privacy", "access-log"),
    ("config", "check"),
)


def _cli() -> list[str]:
    return [sys.executable, "-m", "lti_app.cli"]


def _time(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[3:]} failed: {proc.stderr.decode(errors='replace')[-400:]}")
    return elapsed


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(samples) * 1e3, "max_ms": max(samples) * 1e3}


def bench_cli(tmp: Path) -> dict[str, Any]:
    """Median and max start-to-exit time of each command; the bare interpreter as the peer."""
    config = plain_config(tmp, f"sqlite:///{tmp / 'cli.db'}", "cli")
    env = {**os.environ, "ARCHE_PREDICT_CONFIG": str(config)}
    subprocess.run([*_cli(), "db", "upgrade"], env=env, cwd=ROOT, capture_output=True,  # noqa: S603
                   check=True)  # fmt: skip
    subprocess.run([*_cli(), "keys", "rotate"], env=env, cwd=ROOT, capture_output=True,  # noqa: S603
                   check=True)  # fmt: skip
    bare = [_time([sys.executable, "-c", "pass"], env) for _ in range(REPEATS)]
    commands: dict[str, dict[str, float]] = {}
    for args in (*HELP, *WORK):
        _time([*_cli(), *args], env)  # a warm-up: the files in the page cache, as in use
        commands[" ".join(args)] = _summary([_time([*_cli(), *args], env)
                                             for _ in range(REPEATS)])  # fmt: skip
    slowest = max(commands, key=lambda k: commands[k]["median_ms"])
    return {
        "repeats": REPEATS,
        "target_ms": TARGET_MS,
        "python_bare": _summary(bare),
        "commands": commands,
        "slowest": slowest,
        "over_target": sorted(k for k, v in commands.items() if v["median_ms"] > TARGET_MS),
    }

"""``python -m bench [--full] [--only SECTION ...] [--sizes LABEL ...]``: measure, print one table,
write ``bench/results/latest.json``.

Sections: ``simulate`` (the generator's time and peak memory), ``ingest`` (web-service sync at
page size 5000, then the nightly incremental syncs), ``csv`` (bulk CSV import), ``features``
(vectorised vs the naive baseline, peak RSS), ``training`` (the full model search at 500 and 5k
students), ``predict`` (what-if p50/p99 through the JSON API per estimator family, in-process
and over HTTP; a batch of 10k students), ``dashboard`` (the teacher dashboard of a 500-student
course under 50 wrk clients for 60 s on gunicorn with 2 workers, with and without think time),
``night`` (many simulated courses synced and scored through the job queue by 1 and by 2 worker
processes, PostgreSQL only; ``--night-courses N``), ``cli`` (the command line's start, each
command a fresh process).
PostgreSQL is measured when ``ARCHE_PREDICT_TEST_POSTGRES_URL`` is set
(``eval "$(.ci/postgres.sh start)"``; ``make bench`` does it).

Nothing here asserts a wall-clock target: the figures are printed next to the issue's targets
and the naive baseline of the same run. What *is* asserted is correctness: every ingest stores
every event exactly once, and both feature implementations agree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cli, dashboard, datasets, ingest, night, predict, training
from bench import features as feature_bench

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latest.json"
REPORTS = ROOT / "bench" / "reports"
SECTIONS = (
    "simulate", "ingest", "csv", "features", "training", "predict", "dashboard", "night", "cli",
)  # fmt: skip
# The slow paths at 10M events run only with --full: the naive baseline would take minutes,
# ingest and CSV import at 10M several minutes per backend.
CSV_DEFAULT_MAX = "1M"
TRAINING_STUDENTS = (500, 5_000)


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
    }


def _simulate_worker(label: str) -> dict[str, Any]:
    proc = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "bench.datasets", label],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _log(msg: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only or SECTIONS)
    sizes = datasets.sizes(args.full, set(args.sizes) if args.sizes else None)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "full": args.full,
        "backends": ingest.backends(),
        "sizes": {},
        "training": {},
    }
    labels = [s.label for s in datasets.SIZES]
    with ingest.tmpdir() as tmp_name:
        tmp = Path(tmp_name)
        for size in sizes:
            res: dict[str, Any] = {}
            results["sizes"][size.label] = res
            if "simulate" in only:
                _log(f"{size.label}: simulator in a fresh process")
                res["simulate"] = _simulate_worker(size.label)
            needs_data = only & {"ingest", "csv", "features"}
            if not needs_data:
                continue
            ds = datasets.make_dataset(size)
            res["events"], res["students"] = ds.n_events, ds.n_students
            _log(f"{size.label}: {ds.n_events} events, {ds.n_students} students")
            if "features" in only:
                naive = size.label != "10M"
                _log(f"{size.label}: features (naive baseline: {naive})")
                res["features"] = feature_bench.bench_features(ds, tmp, naive=naive)
            if "ingest" in only and size.label != "10M":
                res["ingest"] = {}
                for backend in ingest.backends():
                    _log(f"{size.label}: web-service sync into {backend}, then nightly")
                    res["ingest"][backend] = ingest.ws_ingest(
                        backend, ds.offering, tmp, nightly=True
                    )
            if "csv" in only and (
                (args.full and size.label != "10M")
                or labels.index(size.label) <= labels.index(CSV_DEFAULT_MAX)
            ):
                res["csv"] = {}
                csv = ingest.make_csv(ds.offering)
                for backend in ingest.backends():
                    _log(f"{size.label}: CSV import into {backend}")
                    res["csv"][backend] = ingest.csv_import(backend, ds.offering, tmp, csv)
                del csv
            del ds
    if "training" in only:
        _run_training(args, results)
    if only & {"predict", "dashboard"}:
        _run_web(args, results, only)
    for section, runner in (("night", _run_night), ("cli", _run_cli)):
        if section in only:
            runner(args, results)
    return results


def _run_cli(args: argparse.Namespace, results: dict[str, Any]) -> None:
    del args  # nothing to choose: every command, a fixed number of times
    _log(f"cli: every command's start, {cli.REPEATS} fresh processes each (SQLite)")
    with ingest.tmpdir() as tmp_name:
        results["cli"] = cli.bench_cli(Path(tmp_name))


def _run_web(args: argparse.Namespace, results: dict[str, Any], only: set[str]) -> None:
    # PostgreSQL when there is one: the server production runs (SQLite otherwise).
    web_backend = ingest.backends()[-1]
    with ingest.tmpdir() as tmp_name:
        if "predict" in only:
            _log(f"predict: what-if through the JSON API ({web_backend})")
            results["predict"] = {
                "what_if": predict.bench_what_if(
                    web_backend,
                    Path(tmp_name),
                    calls=args.what_if_calls,
                    http_calls=max(1, args.what_if_calls // 2),
                )
            }
            _log(f"predict: a typical course, training then reuse ({web_backend})")
            results["predict"]["typical"] = predict.bench_typical(web_backend, Path(tmp_name))
            if not args.skip_batch:
                _log(f"predict: a batch of 10k students ({web_backend})")
                results["predict"]["batch"] = predict.bench_batch(web_backend, Path(tmp_name))
        if "dashboard" in only:
            _log(f"dashboard: 50 clients x {args.load_seconds} s, twice ({web_backend})")
            results["dashboard"] = dashboard.bench_dashboard(
                web_backend, Path(tmp_name), seconds=args.load_seconds
            )


def _run_training(args: argparse.Namespace, results: dict[str, Any]) -> None:
    for n in TRAINING_STUDENTS:
        _log(f"training: full model search, {n} students")
        results["training"][str(n)] = training.run_training(
            n, single_thread=args.threads == "1", budget_s=args.training_budget
        )


def _run_night(args: argparse.Namespace, results: dict[str, Any]) -> None:
    if "postgresql" not in ingest.backends():
        _log("night: skipped (the job queue needs PostgreSQL: ARCHE_PREDICT_TEST_POSTGRES_URL)")
        return
    _log(f"night: {args.night_courses} courses, by 1 then 2 workers (PostgreSQL)")
    with ingest.tmpdir() as tmp_name:
        results["night"] = night.bench_night(Path(tmp_name), args.night_courses)


# --------------------------------------------------------------------------- the table


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M/s"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k/s"
    return f"{x:.0f}/s"


def _fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.1f} s"


def _fmt_mb(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} MB"


Row = tuple[str, str, str, str]


def table_rows(results: dict[str, Any]) -> list[Row]:
    """(measure, size, value, target) rows: per dataset size, then training, then the web."""
    rows: list[Row] = []
    for label, res in results["sizes"].items():
        size = (
            f"{label} ({res['events']:,} ev, {res['students']:,} st)" if "events" in res else label
        )
        rows += _ingest_rows(res, size)
        rows += _feature_rows(res, label, size)
        rows += _nightly_rows(res, size)
    rows += _training_rows(results)
    rows += _web_rows(results)
    rows += _night_rows(results)
    rows += _cli_rows(results)
    return rows


def _cli_rows(results: dict[str, Any]) -> list[Row]:
    if "cli" not in results:
        return []
    c = results["cli"]
    target = f"<= {c['target_ms']:.0f} ms"
    bare = c["python_bare"]
    rows: list[Row] = [
        ("cli: the bare interpreter (peer: python -c pass)", "", f"median "
         f"{bare['median_ms']:.0f} / max {bare['max_ms']:.0f} ms", ""),
    ]  # fmt: skip
    for name, v in c["commands"].items():
        rows.append((f"cli: arche-predict {name}", "", f"median {v['median_ms']:.0f} / max "
                     f"{v['max_ms']:.0f} ms", target))  # fmt: skip
    return rows


def _night_rows(results: dict[str, Any]) -> list[Row]:
    if "night" not in results:
        return []
    n = results["night"]
    students = n["students"]
    size = (
        f"{n['courses']} courses, {min(students)}-{max(students)} st "
        f"(median {sorted(students)[len(students) // 2]}), {sum(n['past_offerings'])} past"
    )
    rows: list[Row] = []
    for workers in (1, 2):
        night_ = n[f"night_{workers}"]
        per = night_["per_course_s"]
        rows.append(
            (
                f"night: sync + score through the queue, {workers} worker(s)",
                size,
                f"{night_['courses_per_hour']:.0f} courses/h ({_fmt_s(night_['wall_s'])}; "
                f"{night_['succeeded']}/{night_['courses']} ok); per course p50 "
                f"{_fmt_s(per['p50'])}, p90 {_fmt_s(per['p90'])}, max {_fmt_s(per['max'])}",
                "",
            )
        )
        cpu = night_.get("cpu") or {}
        if cpu.get("machine_busy_s") is not None:
            rows.append(
                (
                    f"night: where the CPU went, {workers} worker(s)",
                    size,
                    f"cores {cpu['cores_busy_share']:.0%} busy; workers "
                    f"{cpu['workers_s']:.0f} s, Moodle stand-in {cpu['stand_in_s']:.0f} s, "
                    f"PostgreSQL and the rest {cpu['other_s']:.0f} s",
                    "",
                )
            )
    bound = n.get("speedup_bound")
    value = f"{n['speedup']:.2f}x"
    if bound:
        value += f" (this machine's cores allow {bound:.2f}x)"
    rows.append(("night: speed-up from 1 to 2 workers (same run)", size, value, ">= 1.8x"))
    return rows


def _ingest_rows(res: dict[str, Any], size: str) -> list[Row]:
    rows: list[Row] = []
    if "simulate" in res:
        sim = res["simulate"]
        value = f"{_fmt_s(sim['seconds'])}, peak RSS {_fmt_mb(sim['peak_rss_mb'])}"
        rows.append(("simulator (generate the course)", size, value, ""))
    for backend, ing in res.get("ingest", {}).items():
        rows.append(
            (
                f"ingest: web-service sync, page 5000 -> {backend}",
                size,
                f"{_fmt_rate(ing['ingest_events_per_s'])} ({_fmt_s(ing['ingest_s'])})",
                ">= 50k/s" if backend == "postgresql" else "",
            )
        )
    for backend, csv in res.get("csv", {}).items():
        rows.append(
            (
                f"ingest: CSV import -> {backend}",
                size,
                f"{_fmt_rate(csv['events_per_s'])} ({_fmt_s(csv['import_s'])})",
                ">= 50k/s" if backend == "postgresql" else "",
            )
        )
    return rows


def _feature_rows(res: dict[str, Any], label: str, size: str) -> list[Row]:
    if "features" not in res:
        return []
    f = res["features"]
    v = f["vectorised"]
    big = label == "1M"
    rows: list[Row] = [
        (
            "features: compute_features (median of 3)",
            size,
            f"{_fmt_rate(f['vectorised_events_per_s'])} ({_fmt_s(v['seconds'])}), "
            f"peak RSS {_fmt_mb(v['peak_rss_mb'])} (inputs {_fmt_mb(v['rss_before_mb'])})",
            ">= 1M/s, < 1.5 GB" if big else ("< 30 s" if label == "10M" else ""),
        )
    ]
    for name, peer in f.get("peers", {}).items():
        rows.append(
            (
                f"features: {name} peer (median of 3, same values)",
                size,
                f"{_fmt_rate(peer['events_per_s'])} ({_fmt_s(peer['seconds'])}), "
                f"peak RSS {_fmt_mb(peer['peak_rss_mb'])}; ours {peer['ratio']:.1f}x as fast",
                ">= 1x the fastest peer" if name == f.get("fastest_peer") else "",
            )
        )
    if "naive" in f:
        n = f["naive"]
        rows.append(
            (
                "features: naive per-student loop",
                size,
                f"{_fmt_rate(f['naive_events_per_s'])} ({_fmt_s(n['seconds'])}), "
                f"peak RSS {_fmt_mb(n['peak_rss_mb'])}",
                "",
            )
        )
        rows.append(
            (
                "features: speed-up vs naive (same run)",
                size,
                f"{f['speedup']:.1f}x; {f['identical_features']} features equal "
                f"(max |diff| {f['max_abs_diff']:.1g})",
                ">= 20x" if big else "",
            )
        )
    return rows


def _nightly_rows(res: dict[str, Any], size: str) -> list[Row]:
    rows: list[Row] = []
    for backend, ing in res.get("ingest", {}).items():
        for run_ in ing.get("nightly", []):
            us = run_["us_per_new_event"]
            per = f", {us:.0f} us/new event" if us else ""
            rows.append(
                (
                    f"nightly sync -> {backend}: {run_['case']}",
                    f"{size}, {run_['stored_before']:,} stored",
                    f"{_fmt_s(run_['seconds'])} for {run_['new_events']:,} new{per}",
                    "follows new events",
                )
            )
    return rows


def _training_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for n, tr in results.get("training", {}).items():
        top = ", ".join(
            f"{name} {v['seconds']:.0f} s" for name, v in list(tr["profile_fit_s"].items())[:3]
        )
        where = f"{int(n):,} students (5 offerings; threads: {tr['threads']})"
        if tr["finished"]:
            value = (
                f"{_fmt_s(tr['total_s'])} (regressor {_fmt_s(tr['fit_regressor_s'])}, "
                f"classifier {_fmt_s(tr['fit_classifier_s'])}); fit time: {top}"
            )
        else:
            reg = tr.get("fit_regressor_s")
            value = (
                f"unfinished: stopped after {_fmt_s(tr['elapsed_s'])} (budget); regressor "
                + (f"done in {_fmt_s(reg)}" if reg is not None else "not done")
                + f"; completed fits: {top or 'none'}"
            )
        rows.append(("training: full model search (regressor + classifier)", where, value, ""))
    return rows


def _web_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The predict and dashboard sections' rows."""
    rows: list[tuple[str, str, str, str]] = []
    wi = results.get("predict", {}).get("what_if")
    if wi:
        where = f"{wi['students']} students ({wi['backend']})"
        for fam, r in wi["families"].items():
            loc, http, ml = r["in_process"], r["http"], r["ml_only"]
            wrk = r.get("http_wrk")
            over_wrk = (
                f"HTTP from wrk (1 connection) p50 {wrk['p50_ms']:.1f} / p99 "
                f"{wrk['p99_ms']:.1f} ms, {wrk['errors']} errors; "
                if wrk
                else ""
            )
            rows.append(
                (
                    f"prediction: what-if via JSON API, {fam}",
                    where,
                    f"p50 {loc['p50_ms']:.1f} / p99 {loc['p99_ms']:.1f} ms in-process; "
                    f"{over_wrk}HTTP from Python requests p50 {http['p50_ms']:.1f} / p99 "
                    f"{http['p99_ms']:.1f} ms; ml.explain.what_if alone p50 "
                    f"{ml['p50_ms']:.1f} ms",
                    "p99 < 5 ms over HTTP",
                )
            )
    batch = results.get("predict", {}).get("batch")
    if batch:
        rows.append(
            (
                "prediction: batch (features, grade interval, P(pass) + spread, factors)",
                f"{batch['students']:,} students",
                f"ml: features {_fmt_s(batch['ml_features_s'])}, predict "
                f"{_fmt_s(batch['ml_predict_s'])}, with factors "
                f"{_fmt_s(batch['ml_predict_and_factors_s'])} (training apart: "
                f"{_fmt_s(batch['ml_training_s'])}); score_course ({batch['backend']}) reusing "
                f"the version {_fmt_s(batch['service_reuse_s'])} (storing "
                f"{_fmt_s(batch['service_reuse_store_s'])}), training "
                f"{_fmt_s(batch['service_train_s'])}",
                "score_course 10,000 students <= 10 s",
            )
        )
    typical = results.get("predict", {}).get("typical")
    if typical:
        rows.append(
            (
                "prediction: score_course, a typical course (default model search)",
                f"{typical['past_students']} past / {typical['students']} current students "
                f"({typical['backend']})",
                f"training {_fmt_s(typical['train_s'])}; reusing the version "
                f"{_fmt_s(typical['reuse_s'])} ({typical['status']})",
                "training <= 10 s, reuse <= 1 s",
            )
        )
    dash = results.get("dashboard")
    if dash:
        where = f"{dash.get('students', 500)} students ({dash['backend']}, 2 workers)"
        if "skipped" in dash:
            rows.append(("dashboard: 50 clients, 60 s", where, dash["skipped"], ""))
        single = dash.get("single_client")
        if single and "prebuild_s" in dash:
            rows.append(
                (
                    "dashboard: first view after the scoring (built then, en+fr)",
                    where,
                    f"{single['first_ms']:.0f} ms (then p50 {single['p50_ms']:.0f} ms); "
                    f"the scoring's build {_fmt_s(dash['prebuild_s'])}",
                    "as fast as a cached view",
                )
            )
        for key, label, target in (
            ("think", "50 clients, 1-3 s think time", "p95 < 150 ms, p99 < 150 ms, 0 errors"),
            ("saturation", "50 clients, no think time", ""),
        ):
            if key in dash:
                d = dash[key]
                rows.append(
                    (
                        f"dashboard: {label}, {d['seconds']:.0f} s",
                        where,
                        f"p50 {d['p50_ms']:.0f} / p95 {d['p95_ms']:.0f} / p99 {d['p99_ms']:.0f} "
                        f"ms, {d['errors']} errors, {d['requests_per_s']:.1f} pages/s "
                        f"({d['page_kb']:.0f} KB)",
                        target,
                    )
                )
    return rows


def render(results: dict[str, Any]) -> str:
    rows = [("measure", "size", "value", "target"), *table_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    m = results["machine"]
    head = (
        f"arche-predict benchmarks, {results['date']}: {m['cores']} cores ({m['cpu']}), "
        f"{m['memory_gb']} GB, Python {m['python']}; backends: {', '.join(results['backends'])}"
    )
    return head + "\n\n" + "\n".join(lines)


def _unused(path: Path) -> Path:
    """``path``, or ``<stem>-2``, ``-3``... when a run of the same day and sections was kept
    already: a second run never overwrites the report a README line may quote."""
    n = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="add the 10M-event dataset")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument(
        "--sizes", nargs="+", choices=[s.label for s in datasets.SIZES], help="only these sizes"
    )
    parser.add_argument(
        "--threads",
        choices=["1", "default"],
        default="1",
        help="training: one thread per library (default) or the libraries' own defaults",
    )
    parser.add_argument(
        "--training-budget",
        type=float,
        default=None,
        help="seconds per training size before it is stopped and reported as unfinished "
        "(default: 300, none with --full)",
    )
    parser.add_argument(
        "--load-seconds",
        type=int,
        default=60,
        help="dashboard: seconds of each load scenario (the issue asks for 60)",
    )
    parser.add_argument(
        "--what-if-calls",
        type=int,
        default=2000,
        help="predict: timed what-if calls per family in-process (half as many over HTTP)",
    )
    parser.add_argument(
        "--skip-batch", action="store_true", help="predict: leave out the 10k-student batch"
    )
    parser.add_argument(
        "--night-courses",
        type=int,
        default=8,
        help="night: simulated courses per night (the issue's university: 1,000; hours here)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    if args.what_if_calls < 1:
        parser.error("--what-if-calls must be at least 1")
    if args.training_budget is None and not args.full:
        args.training_budget = 300.0
    t0 = time.perf_counter()
    results = run(args)
    results["wall_s"] = time.perf_counter() - t0
    results["table"] = table_rows(results)
    text = json.dumps(results, indent=2, default=str) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    # The run is also kept under its date (#19): bench/reports/ holds the history the README
    # quotes (a partial run names its sections, and a later run of the same day takes a new
    # number: it never overwrites a kept one).
    sections = "" if not args.only else "-" + "-".join(sorted(args.only))
    dated = _unused(REPORTS / f"{datetime.now(UTC):%Y-%m-%d}{sections}.json")
    dated.parent.mkdir(parents=True, exist_ok=True)
    dated.write_text(text, encoding="utf-8")
    print(render(results))
    print(f"\n(wrote {args.out} and {dated}; {results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

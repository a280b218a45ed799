"""``python -m benchmarks``: convlens against PyTorch, side by side (see docs/benchmarks.md).

Run from the repository root as::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks [--quick] \
        [--only NAME] [--json out.json] [--md docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from . import _env, _memory, lenet, report, startup
from ._timing import Settings, error_text, interleaved, ratio
from ._workload import FRAMEWORKS, OpWorkload, compare
from .workloads import STARTUP, TRAINING, all_names, op_workloads, selected

BUSY_CORES = 0.25  # CPU used by other processes (in cores) above which a measurement is flagged


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time convlens against PyTorch on this CPU: conv2d, pooling, LeNet-5 training and "
        "inference, start-up. Run as: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer, shorter chunks; LeNet-5 training timed over 300 steps and extrapolated",
    )
    parser.add_argument(
        "--only", metavar="NAME", help="comma-separated workload names, substrings or globs (see --list)"
    )
    parser.add_argument("--json", metavar="PATH", help="write every measurement to this JSON file")
    parser.add_argument("--md", metavar="PATH", help="write the Markdown report (e.g. docs/benchmarks.md)")
    parser.add_argument("--reps", type=int, help="timed chunks per framework (default 3 quick, 7 full)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--wait-idle",
        type=float,
        metavar="SECONDS",
        default=0.0,
        help="before the run and before each workload, wait up to SECONDS for other processes to "
        "stop using the CPU (a shared machine)",
    )
    parser.add_argument(
        "--retry-busy",
        type=int,
        metavar="N",
        default=0,
        help="re-time a workload up to N more times when other processes used the CPU meanwhile; "
        "the least disturbed attempt is kept",
    )
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="measure nothing: re-print and re-write the reports of a saved run",
    )
    parser.add_argument("--list", action="store_true", help="print the workload names and exit")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_op(workload: OpWorkload, settings: Settings) -> dict[str, Any]:
    """Time one per-call workload in both frameworks and compare their results."""
    result: dict[str, Any] = {
        "name": workload.name,
        "group": workload.group,
        "label": workload.label,
        "unit": "s/call",
        "items": workload.items,
    }
    runners = {}
    for fw in FRAMEWORKS:
        try:
            runners[fw] = workload.make(fw)
        except Exception as exc:  # e.g. an op not implemented yet: report, keep going
            result[fw] = {"error": error_text(exc)}
    result.update(interleaved({fw: r.step for fw, r in runners.items()}, settings))
    result["ratio"] = ratio(result)
    if all("median" in result.get(fw, {}) for fw in FRAMEWORKS):
        try:
            result["max_rel_error"] = compare(runners["convlens"].result(), runners["torch"].result())
        except Exception as exc:
            result["check_error"] = error_text(exc)
    return result


def measure_memory(results: list[dict[str, Any]], quick: bool) -> None:
    for r in results:
        if r["group"] in ("startup",) or "error" in r:
            continue
        log(f"  memory: {r['name']}")
        r["memory"] = {
            fw: _memory.measure(r["name"], fw, quick)
            for fw in FRAMEWORKS
            if "error" not in r.get(fw, {})  # not measured where it could not be timed
        }


def _jobs(settings: Settings) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
    jobs = [(w.name, functools.partial(run_op, w, settings)) for w in op_workloads()]
    jobs += [
        (name, functools.partial(lenet.training_workload, name.removeprefix("lenet_train_"), settings))
        for name in TRAINING
    ]
    jobs.append((STARTUP, functools.partial(startup.run_startup, settings)))
    return jobs


def _least_disturbed(
    name: str, job: Callable[[], dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    """Run ``job``; while other processes used the CPU meanwhile, retry (``--retry-busy``) and
    keep the attempt they disturbed least. ``other_cores`` in the result says how much."""
    best: dict[str, Any] | None = None
    for attempt in range(1 + max(0, args.retry_busy)):
        if args.wait_idle:
            _env.wait_until_idle(args.wait_idle, BUSY_CORES)
        log(f"timing {name}" + (f" (attempt {attempt + 1})" if attempt else ""))
        meter = _env.CpuMeter()
        result = job()
        result["other_cores"] = meter.other_cores()
        result["attempts"] = attempt + 1
        busy = (result["other_cores"] or 0) > BUSY_CORES
        if best is None or (result["other_cores"] or 0) < (best["other_cores"] or 0):
            best = result
        if not busy:
            break
        log(f"  warning: other processes used {result['other_cores']:.2f} cores meanwhile")
    assert best is not None
    return best


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    limiter = _env.limit_threads()  # noqa: F841 - the limit lasts as long as this object
    settings = Settings.make(args.quick, args.reps)
    meta = _env.environment(argv, args.quick)
    meta["blas"] = _env.blas_info()
    results: list[dict[str, Any]] = []
    start, whole_run = time.perf_counter(), _env.CpuMeter()
    for name, job in _jobs(settings):
        if selected(name, args.only):
            results.append(_least_disturbed(name, job, args))
    meta["other_cores_during_timing"] = whole_run.other_cores()
    if not args.no_memory:
        log("peak memory (one fresh subprocess per framework and workload)")
        measure_memory(results, args.quick)
    meta["blas_after"] = _env.blas_info()  # pools loaded by the frameworks during the run
    meta["numba_runtime"] = _env.numba_runtime()
    meta["wall_seconds"] = time.perf_counter() - start
    meta["settings"] = settings.__dict__
    return {"meta": meta, "results": results, "summary": {"geomean": report.geomean(results)}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.list:
        print("\n".join(all_names()))
        return 0
    if args.only and not any(selected(n, args.only) for n in all_names()):
        print(f"--only {args.only!r} matches no workload; see --list", file=sys.stderr)
        return 2
    if args.from_json:
        with open(args.from_json) as f:
            payload = json.load(f)
    else:
        if args.wait_idle:
            log(f"waiting up to {args.wait_idle:.0f} s for other processes to leave the CPU alone")
        other = _env.wait_until_idle(args.wait_idle, BUSY_CORES)
        if other is not None and other > BUSY_CORES:
            log(
                f"warning: other processes are using {other:.1f} cores of this machine: the numbers will be "
                "noisy and biased (PyTorch's OpenMP threads suffer most from sharing); see --wait-idle"
            )
        payload = run(args, argv)
    print(report.console(payload["results"], payload["summary"]))
    if args.json:
        report.write_json(args.json, payload)
    if args.md:
        with open(args.md, "w") as f:
            f.write(report.markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

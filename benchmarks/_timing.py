"""Interleaved timing: the only honest comparison on a shared, noisy machine.

Absolute times move by up to 1.6x between runs here, so both frameworks are timed in
the same process, chunk by chunk, alternating. Each chunk is preceded by a sleep
(a NumPy chunk leaves BLAS threads spinning that slow PyTorch for ~100 batches) and a
few untimed warm-up iterations. The order alternates A,B then B,A (an ABBA pattern) so
that neither framework always runs second. The statistic is the median per-iteration
time over the repetitions.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Settings:
    quick: bool
    reps: int  # timed chunks per framework
    chunk_seconds: float  # target duration of one timed chunk
    warmup: int  # untimed iterations before every chunk
    sleep: float  # seconds slept before every chunk
    max_iters: int = 100_000

    @classmethod
    def make(cls, quick: bool, reps: int | None = None) -> Settings:
        if quick:
            return cls(quick=True, reps=reps or 3, chunk_seconds=0.15, warmup=2, sleep=0.25)
        return cls(quick=False, reps=reps or 7, chunk_seconds=0.5, warmup=3, sleep=0.25)


def error_text(exc: BaseException) -> str:
    """One line naming the exception and where it was raised (for the report)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        path = frames[-1].filename.replace(os.sep, "/").split("/")
        where = f" at {'/'.join(path[-2:])}:{frames[-1].lineno}"
    return f"{type(exc).__name__}: {exc}{where}".replace("\n", " ")[:300]


def _time_chunk(step: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def _prepare(step: Callable[[], Any], settings: Settings) -> None:
    gc.collect()
    time.sleep(settings.sleep)
    for _ in range(settings.warmup):
        step()


def interleaved(steps: dict[str, Callable[[], Any]], settings: Settings) -> dict[str, dict[str, Any]]:
    """Median seconds per call of each step, timed in alternating chunks.

    Returns, per framework, ``{"median", "times", "iters"}`` or ``{"error"}`` if its
    step raised (the other framework is still timed).
    """
    out: dict[str, dict[str, Any]] = {}
    iters: dict[str, int] = {}
    for name, step in steps.items():
        try:
            for _ in range(settings.warmup):
                step()
            once = _time_chunk(step, 1)
        except Exception as exc:  # record and carry on: the other framework is still measured
            out[name] = {"error": error_text(exc)}
            continue
        iters[name] = max(1, min(settings.max_iters, round(settings.chunk_seconds / max(once, 1e-9))))
        out[name] = {"times": [], "iters": iters[name]}
    names = [n for n in steps if n in iters]
    for rep in range(settings.reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            _prepare(steps[name], settings)
            out[name]["times"].append(_time_chunk(steps[name], iters[name]))
    for name in names:
        out[name]["median"] = statistics.median(out[name]["times"])
    return out


def ratio(results: dict[str, dict[str, Any]], a: str = "convlens", b: str = "torch") -> float | None:
    if "median" in results.get(a, {}) and "median" in results.get(b, {}):
        return results[a]["median"] / results[b]["median"]
    return None

"""What the numbers were measured on: machine, versions, BLAS kernel, environment."""

from __future__ import annotations

import datetime
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import THREADS

# Set on this machine; they pin OpenBLAS to a slower kernel. The harness never
# changes them (the command does), it only records whether they were in effect.
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
RECOMMENDED_PREFIX = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
REPO_ROOT = Path(__file__).resolve().parent.parent


def limit_threads(torch: bool = True) -> Any:
    """Cap NumPy's BLAS (and PyTorch's intra-op pool) at ``THREADS``; keep the limiter alive.

    ``torch=False`` leaves PyTorch unimported (the convlens memory subprocess).
    """
    import threadpoolctl

    limiter = threadpoolctl.threadpool_limits(limits=THREADS, user_api="blas")
    if torch:
        import torch as _torch

        _torch.set_num_threads(THREADS)
    return limiter


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx", "fma", "amx")))
    except OSError:
        pass
    return []


def blas_info() -> list[dict[str, Any]]:
    """threadpoolctl's view of every native thread pool loaded so far."""
    import threadpoolctl

    keys = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer", "prefix")
    return [{k: pool.get(k) for k in keys if k in pool} for pool in threadpoolctl.threadpool_info()]


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # a missing or broken optional package is recorded, not fatal
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def command_line(argv: list[str]) -> str:
    """The command as run, prefixed the way the OpenBLAS variables were (un)set."""
    base = shlex.join(["python", "-m", "benchmarks", *argv])
    present = [v for v in BLAS_ENV_VARS if v in os.environ]
    if not present:
        return f"{RECOMMENDED_PREFIX} {base}"
    return " ".join(f"{v}={shlex.quote(os.environ[v])}" for v in present) + " " + base


def torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"version": None}
    return {
        "version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "mkldnn": bool(torch.backends.mkldnn.is_available()),
        "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)(),
    }


def environment(argv: list[str], quick: bool) -> dict[str, Any]:
    import numpy as np

    status = _git("status", "--porcelain")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "command": command_line(argv),
        "machine": {
            "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "cpu_simd_flags": cpu_flags(),
            "platform": platform.platform(),
        },
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch_info(),
            "convlens": _version("convlens"),
            "numba": _version("numba"),
            "threadpoolctl": _version("threadpoolctl"),
        },
        "env_vars": {v: os.environ.get(v) for v in (*BLAS_ENV_VARS, *THREAD_ENV_VARS)},
        "threads": THREADS,
        # Other processes compete for the 2 cores: a high load average makes every
        # number (PyTorch's OpenMP barriers above all) unreliable.
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "git": {"commit": _git("rev-parse", "--short", "HEAD"), "dirty": bool(status) if status else False},
        "executable": sys.executable,
    }


class CpuMeter:
    """CPU time used by *other* processes while a block runs, in cores.

    Every core busy (from /proc/stat) minus this process's and its children's own CPU
    time (getrusage), divided by the wall time: 0.0 on an otherwise idle machine; 1.0
    means another process kept one of the cores busy all along, and the numbers
    measured meanwhile are not to be trusted.
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        except (OSError, IndexError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        own = sum(
            r.ru_utime + r.ru_stime
            for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
        )
        return time.perf_counter(), busy, own

    def other_cores(self) -> float | None:
        end = self._sample()
        if self._start is None or end is None or end[0] - self._start[0] < 0.05:
            return None
        wall, busy, own = (e - s for e, s in zip(end, self._start, strict=True))
        return max(0.0, (busy - own) / wall)


def wait_until_idle(timeout: float, threshold: float = 0.25, window: float = 3.0) -> float | None:
    """Wait (up to ``timeout`` s) until other processes use under ``threshold`` cores."""
    deadline = time.perf_counter() + timeout
    while True:
        meter = CpuMeter()
        time.sleep(window)
        load = meter.other_cores()
        if load is None or load < threshold or time.perf_counter() >= deadline:
            return load


def numba_runtime() -> dict[str, Any] | None:
    """numba's threads and threading layer, if the frameworks loaded numba during the run."""
    numba = sys.modules.get("numba")
    if numba is None:
        return None
    info: dict[str, Any] = {"version": numba.__version__, "num_threads": numba.config.NUMBA_NUM_THREADS}
    try:
        info["threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel has run
        info["threading_layer"] = None
    return info

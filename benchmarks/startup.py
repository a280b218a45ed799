"""Start-up time: a fresh interpreter importing each framework, and ``convlens --help``.

Each command runs in a fresh subprocess (wall time of the whole process, interpreter
start included), the commands interleaved, median over repetitions. Ratios are
against ``python -c "import torch"``.
"""

from __future__ import annotations

import gc
import shlex
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from ._timing import Settings


def _convlens_script() -> list[str]:
    # The installed console script itself: a pyenv/asdf shim would add its own start-up.
    script = Path(sysconfig.get_path("scripts")) / "convlens"
    if script.exists():
        return [str(script)]
    found = shutil.which("convlens")
    return [found] if found else [sys.executable, "-m", "convlens"]


def commands() -> dict[str, list[str]]:
    return {
        "import convlens": [sys.executable, "-c", "import convlens"],
        "convlens --help": [*_convlens_script(), "--help"],
        "import torch": [sys.executable, "-c", "import torch"],
    }


def _run(cmd: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stderr[-300:]


def run_startup(settings: Settings) -> dict[str, Any]:
    cmds = commands()
    reps = max(3, settings.reps)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    errors: dict[str, str] = {}
    for name, cmd in cmds.items():  # one untimed run each: page cache, .pyc files
        _, code, err = _run(cmd)
        if code:
            errors[name] = f"exit {code}: {err.strip()}"
    names = list(cmds)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            gc.collect()
            time.sleep(0.1)
            seconds, _, _ = _run(cmds[name])
            times[name].append(seconds)
    rows = {}
    base = statistics.median(times["import torch"])
    for name in names:
        median = statistics.median(times[name])
        rows[name] = {
            "command": shlex.join([Path(cmds[name][0]).name, *cmds[name][1:]]),
            "median": median,
            "times": times[name],
            "ratio_vs_import_torch": median / base,
            **({"error": errors[name]} if name in errors else {}),
        }
    return {
        "name": "startup",
        "group": "startup",
        "label": "start-up, fresh subprocess",
        "unit": "s",
        "rows": rows,
    }

"""Peak resident memory of one workload, one framework, in a fresh subprocess.

Why not tracemalloc: it sees NumPy's allocations but not PyTorch's (its own C++
allocator), so it would flatter PyTorch. Instead the parent starts
``python -m benchmarks._memory NAME FRAMEWORK STEPS`` once per framework and workload.
The child imports only its framework and builds the inputs (for training: model,
optimizer, data set), runs one untimed first call (lazy imports, compiled kernels),
then records its resident set size (VmRSS), resets the kernel's high-water mark
(``echo 5 > /proc/self/clear_refs``) and runs STEPS more calls. Reported:

- ``peak_mib``: VmHWM after the steps minus VmRSS before them, the extra memory a
  steady-state call needs at its peak (outputs, graph, gradients, temporaries), plus
  the buffers convlens keeps between calls for reuse (``retained_mib``: resident
  before the steps begin, so the high-water mark alone would not show them);
- ``first_call_mib``: the same for the first call alone (one-off costs included);
- ``process_peak_mib``: the whole process's high-water mark (interpreter, framework
  import, inputs).

The child runs with ``MALLOC_MMAP_THRESHOLD_=65536`` so that large arrays are returned
to the kernel when freed and RSS follows live memory (see ``CHILD_ENV``). Where
``clear_refs`` is not writable, ``getrusage(RUSAGE_SELF).ru_maxrss`` is used instead
and earlier peaks can mask the workload's (the JSON says which method was used).
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._env import REPO_ROOT, limit_threads
from ._timing import error_text

# Large blocks straight from (and back to) the kernel: with glibc's default dynamic
# threshold, memory freed by one step stays in the heap, is already counted in the
# baseline RSS, and the next step's reuse of it would not show in the high-water mark.
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_high_water() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _training_step(name: str, framework: str) -> Any:
    from . import lenet

    optimizer = name.removeprefix("lenet_train_")
    side = lenet._make_side(framework, optimizer, lenet._initial_state())
    loader = lenet.make_loader(lenet.load_data()["train"])
    batches = iter(loader)
    step = lenet.STEP[framework]

    def run() -> None:
        nonlocal batches
        try:
            x, y = next(batches)
        except StopIteration:
            batches = iter(loader)
            x, y = next(batches)
        step(side.model, side.opt, x, y)

    return run


def _rss_and_reset() -> tuple[float | None, bool]:
    """(VmRSS in KiB, whether the high-water mark was reset to it)."""
    gc.collect()
    rss = _status_kib("VmRSS")
    return rss, rss is not None and _reset_high_water()


def _retained_mib(framework: str) -> float:
    """Memory convlens' convolution keeps between calls for reuse (0 for PyTorch's CPU allocator)."""
    if framework != "convlens":
        return 0.0
    from convlens.engines._buffers import REUSABLE

    cache = REUSABLE
    return sum(b.nbytes for buffers in cache.values() for b in buffers) / 2**20


def child(name: str, framework: str, steps: int) -> dict[str, Any]:
    limit_threads(torch=framework == "torch")
    __import__("convlens" if framework == "convlens" else "torch")
    if name.startswith("lenet_train_"):
        step = _training_step(name, framework)
    else:
        from .workloads import by_name

        step = by_name(name).make(framework).step
    setup_peak = _status_kib("VmHWM")
    rss0, exact0 = _rss_and_reset()
    step()  # first call: lazy imports, compiled kernels, allocator pools
    first_call = _status_kib("VmHWM") - rss0 if exact0 else None
    rss1, exact = _rss_and_reset()
    if not exact:
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(steps):
        step()
    after = _status_kib("VmHWM") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    retained = _retained_mib(framework)
    return {
        "peak_mib": (after - rss1) / 1024 + retained,
        "retained_mib": retained,
        "first_call_mib": None if first_call is None else first_call / 1024,
        "process_peak_mib": max(after, setup_peak or 0, (rss0 or 0) + (first_call or 0)) / 1024,
        "method": "VmHWM after clear_refs minus VmRSS" if exact else "ru_maxrss delta (import peak may mask)",
        "steps": steps,
    }


def measure(name: str, framework: str, quick: bool) -> dict[str, Any]:
    """Run the child for one workload and framework; never raises."""
    steps = 3 if quick else 10
    if name.startswith("lenet_train_"):
        steps = 10 if quick else 30
    cmd = [sys.executable, "-m", "benchmarks._memory", name, framework, str(steps)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, timeout=600, env=CHILD_ENV)
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def main(argv: list[str]) -> int:
    name, framework, steps = argv[0], argv[1], int(argv[2])
    try:
        result = child(name, framework, steps)
    except Exception as exc:
        result = {"error": error_text(exc)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Smoke test of the benchmark harness (benchmarks/): it imports, times a tiny
workload once in both frameworks, compares them, and writes its reports.

No timing assertions: speed is measured by ``python -m benchmarks``, not by tests.
"""

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level package, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import _env, _memory, ops, report  # noqa: E402
from benchmarks.__main__ import main, run_op  # noqa: E402
from benchmarks._timing import Settings  # noqa: E402
from benchmarks.workloads import all_names, selected  # noqa: E402

ONCE = Settings(quick=True, reps=1, chunk_seconds=0.0, warmup=1, sleep=0.0)


def test_tiny_conv_workload_runs_in_both_frameworks_and_reports(tmp_path, capsys):
    spec = ops.ConvSpec("tiny", n=2, c_in=1, c_out=2, size=8, kernel=3, padding=1)
    result = run_op(ops.conv_workload(spec, backward=True, name="conv_tiny_fwdbwd"), ONCE)

    assert result["torch"]["median"] > 0 and len(result["torch"]["times"]) == 1
    assert "median" in result["convlens"], result["convlens"]
    assert result["ratio"] > 0
    assert set(result["max_rel_error"]) == {"out", "grad_x", "grad_w", "grad_b"}
    assert max(result["max_rel_error"].values()) < 1e-4

    payload = {
        "meta": {**_env.environment(["--quick"], quick=True), "blas": _env.blas_info()},
        "results": [result],
        "summary": {"geomean": report.geomean([result])},
    }
    assert payload["summary"]["geomean"]["count"] == 1
    report.write_json(tmp_path / "out.json", payload)
    assert json.loads((tmp_path / "out.json").read_text())["results"][0]["name"] == "conv_tiny_fwdbwd"
    page = report.markdown(payload)
    assert "conv_tiny_fwdbwd" in page and "Quick run" in page and "OPENBLAS_CORETYPE" in page
    assert "conv_tiny_fwdbwd" in report.console(payload["results"], payload["summary"])


def test_list_and_only_selection(capsys):
    assert main(["--list"]) == 0
    names = capsys.readouterr().out.split()
    assert names == all_names() and "conv_c_fwdbwd" in names and "lenet_train_sgd" in names
    assert selected("conv_a_fwd", "conv_a") and not selected("conv_b_fwd", "conv_a")
    assert selected("maxpool_64x16x28_fwdbwd", "conv_a,*_fwdbwd")
    assert main(["--only", "no_such_workload"]) == 2


def test_memory_child_reports_peak_of_a_workload():
    mem = _memory.measure("conv_a_fwd", "convlens", quick=True)
    assert "error" not in mem, mem
    assert mem["peak_mib"] > 0.5  # the 64x6x28x28 float32 output alone is 1.15 MiB


def test_cpu_meter_reports_other_processes_cpu_in_cores():
    meter = _env.CpuMeter()
    sum(range(200_000))  # this process's own CPU time is not counted
    time.sleep(0.1)
    cores = meter.other_cores()
    assert cores is None or 0.0 <= cores <= (os.cpu_count() or 1) + 0.5

"""The results as a console table, JSON and the Markdown page docs/benchmarks.md."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

RATIO_GROUPS = ("conv", "pool", "inference")  # the geometric mean's ratios
BUSY_CORES = 0.25  # other processes' CPU use (cores) above which a row is flagged


def geomean(results: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [r["ratio"] for r in results if r.get("group") in RATIO_GROUPS and r.get("ratio")]
    per_group = {}
    for group in RATIO_GROUPS:
        rs = [r["ratio"] for r in results if r.get("group") == group and r.get("ratio")]
        if rs:
            per_group[group] = math.exp(sum(map(math.log, rs)) / len(rs))
    overall = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None
    return {"all": overall, "count": len(ratios), "per_group": per_group}


# -- formatting helpers ------------------------------------------------------------


def _ms(side: dict[str, Any] | None, unit: str = "") -> str:
    if not side or "median" not in side:
        return "error" + " " * len(unit)
    return f"{side['median'] * 1e3:.3g}{unit}"


def _s(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _mem(result: dict[str, Any], fw: str) -> str:
    mem = result.get("memory", {}).get(fw)
    if not mem:
        return "-"
    return "error" if "error" in mem else f"{mem['peak_mib']:.1f}"


def _err(result: dict[str, Any]) -> str:
    errors = result.get("max_rel_error")
    return "-" if not errors else f"{max(errors.values()):.1e}"


def _failures(result: dict[str, Any]) -> list[str]:
    out = [f"{result['name']}: {result['error']}"] if "error" in result else []
    out += [
        f"{result['name']} [{fw}]: {result[fw]['error']}"
        for fw in ("convlens", "torch")
        if isinstance(result.get(fw), dict) and "error" in result[fw]
    ]
    out += [f"{result['name']} [check]: {result['check_error']}"] if "check_error" in result else []
    return out


def _table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":--" if a == "l" else "--:" for a in align) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# -- console -------------------------------------------------------------------------


def console(results: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    lines = [
        f"{'workload':<24} {'convlens':>11} {'PyTorch':>11} {'ratio':>7} "
        f"{'mem cl MiB':>10} {'mem pt MiB':>10} {'rel err':>8}"
    ]
    for r in results:
        if r["group"] == "startup":
            for name, row in r["rows"].items():
                lines.append(
                    f"{'startup: ' + name:<24} {row['median'] * 1e3:>8.0f} ms {'':>11} "
                    f"{_ratio(row['ratio_vs_import_torch']):>7}  (vs import torch)"
                )
            continue
        if r["group"] == "training":
            if "error" in r:
                lines.append(f"{r['name']:<24} error")
                continue
            lines.append(
                f"{r['name']:<24} {r['convlens']['median']:>6.2f} s/ep {r['torch']['median']:>6.2f} s/ep "
                f"{_ratio(r.get('ratio')) + _flag(r):>7} {_mem(r, 'convlens'):>10} {_mem(r, 'torch'):>10} "
                f"{r['loss_max_rel_diff']:>8.1e}"
            )
            acc = ", ".join(
                f"{fw} {' '.join(f'{a:.4f}' for a in r[fw]['test_accuracy'])}" for fw in ("convlens", "torch")
            )
            lines.append(f"{'':<24} test accuracy: {acc}")
            continue
        lines.append(
            f"{r['name']:<24} {_ms(r.get('convlens'), ' ms'):>11} {_ms(r.get('torch'), ' ms'):>11} "
            f"{_ratio(r.get('ratio')) + _flag(r):>7} {_mem(r, 'convlens'):>10} {_mem(r, 'torch'):>10} "
            f"{_err(r):>8}"
        )
    if summary["geomean"]["all"] is not None:
        g = summary["geomean"]
        groups = ", ".join(f"{k} {v:.2f}x" for k, v in g["per_group"].items())
        lines.append(f"geometric mean of {g['count']} conv/pool/inference ratios: {g['all']:.2f}x ({groups})")
    failures = [f for r in results for f in _failures(r)]
    lines += ["failures:", *("  " + f for f in failures)] if failures else []
    return "\n".join(lines)


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(payload, indent=1, default=float) + "\n")


# -- Markdown ---------------------------------------------------------------------------

METHOD = """\
## Method

- **Same process, interleaved.** For every workload both frameworks are built in one
  Python process and timed in alternating chunks (A,B then B,A: an ABBA order so
  neither always runs second). Absolute times on this shared machine drift by up to
  1.6x between runs; the ratio of times measured side by side is the number to read.
- **Warm chunks.** Before every timed chunk: `gc.collect()`, a 0.25 s sleep (a NumPy
  chunk leaves BLAS threads spinning that slow PyTorch for ~100 batches) and a few
  untimed warm-up calls. A chunk lasts about 0.15 s (quick) or 0.5 s (full); the time
  per call is the chunk's time divided by its number of calls; the table shows the
  median over the repetitions (3 quick, 7 full).
- **Threads.** 2 for both: `threadpoolctl.threadpool_limits(2, user_api="blas")` for
  NumPy's OpenBLAS and `torch.set_num_threads(2)`. The harness does not touch
  `OPENBLAS_CORETYPE` / `OPENBLAS_L2_SIZE` (the command unsets them); it records them.
- **Ops.** Same float32 NCHW contiguous inputs for both; forward+backward computes the
  gradients of input, weight and bias (conv) or input (pool) from the same random
  upstream gradient, gradients reset to `None` each call. *rel err* is the largest
  `max|a - b| / max(1, max|b|)` over output and gradients, convlens against PyTorch.
- **LeNet-5.** `cl.nn.fuse(cl.models.lenet5())` (modern: 61,706 parameters) and a PyTorch twin,
  convlens' initial weights copied key by key; batches from one
  `cl.data.DataLoader(train, 64, shuffle=True, seed=0)` order per epoch, the same
  float32 arrays for both; each framework's own SGD/Adam; a step is zero_grad,
  forward, cross_entropy, backward, step, `loss.item()`. Test accuracy (10,000 test
  images, untimed) after each epoch (full) or after the 3 timed slices (quick). *loss rel diff*
  is the largest relative difference of the first 20 losses. Full mode trains 3 whole
  epochs per framework, each epoch run in alternating slices of 94 steps (the machine's
  speed drifts within an epoch, and both frameworks must see the same drift); an
  epoch's time is the sum of its slices, the table shows the median epoch. Quick mode
  times 3 slices of 100 steps of the first epoch and multiplies the median time per
  step by the 938 steps of an epoch. Each slice is warmed like a chunk (above).
- **Memory (LeNet-5 training).** Includes the buffers convlens keeps between steps for
  reuse (`retained_mib` in the JSON), not only the high-water mark above them.
- **Inference.** Eval mode, `no_grad`, the first 1,000 (or 1) test images.
- **Memory.** Peak resident memory in a fresh subprocess per framework and workload
  (tracemalloc would not see PyTorch's allocator): the child imports only its
  framework, builds the inputs, runs one call (lazy imports, compiled kernels: reported
  apart in the JSON as `first_call_mib`), reads VmRSS, resets the kernel's high-water
  mark (`/proc/self/clear_refs`), runs a few more calls and reports VmHWM minus that
  VmRSS: the extra memory a steady-state call needs at its peak. The child runs with
  `MALLOC_MMAP_THRESHOLD_=65536` so freed arrays leave the process and RSS follows
  live memory.
- **Start-up.** Wall time of a fresh subprocess (interpreter start included) for each
  command, interleaved, median of at least 3.
- **A shared machine.** Other processes on the 2 cores distort everything (PyTorch's
  OpenMP threads worst of all). The harness measures, per workload, the CPU time that
  *other* processes used meanwhile (`/proc/stat` minus its own `getrusage`), in cores;
  rows where it exceeded 0.25 cores are marked **!** and are not to be trusted.
  `--wait-idle SECONDS` waits for a quiet moment before each workload and
  `--retry-busy N` re-times disturbed workloads, keeping the least disturbed attempt.
- **Ratio** = convlens time / PyTorch time: below 1.00x convlens is faster. The
  geometric mean covers the conv, pooling and inference ratios.
"""


def _pool(p: dict[str, Any]) -> str:
    """One threadpoolctl entry: library, version, kernel (``architecture``), threads."""
    details = [p.get("architecture"), f"{p.get('num_threads')} threads", p.get("threading_layer")]
    name = " ".join(str(x) for x in (p.get("internal_api"), p.get("version")) if x)
    return f"{name} `{p.get('prefix')}` ({', '.join(str(d) for d in details if d)})"


def _flag(result: dict[str, Any]) -> str:
    """A mark on the ratio of a workload timed while other processes used the CPU."""
    return " !" if (result.get("other_cores") or 0) > BUSY_CORES else ""


def _numba(version: str | None, runtime: dict[str, Any] | None) -> str:
    if runtime is None:
        return f"{version} (not loaded by convlens during the run)" if version else "not installed"
    layer = runtime.get("threading_layer") or "no parallel kernel run"
    return f"{version}, loaded during the run: {runtime['num_threads']} threads, {layer}"


def _load(value: Any) -> str:
    return "-" if not value else " / ".join(f"{v:.2f}" for v in value)


def _disturbance(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    timed = [r for r in results if r.get("other_cores") is not None]
    quiet = sum(not _flag(r) for r in timed)
    whole = meta.get("other_cores_during_timing")
    text = f"under {BUSY_CORES} cores while {quiet} of {len(timed)} workloads were timed"
    return text + (
        "" if whole is None else f"; {whole:.2f} cores over the whole run (waits and retries included)"
    )


def _meta_lines(meta: dict[str, Any], results: list[dict[str, Any]]) -> list[str]:
    blas = "; ".join(_pool(p) for p in meta.get("blas_after", meta.get("blas", [])))
    env = ", ".join(f"`{k}`={'unset' if v is None else repr(v)}" for k, v in meta["env_vars"].items())
    m, v, t = meta["machine"], meta["versions"], meta["versions"]["torch"]
    dirty = ", uncommitted changes" if meta["git"]["dirty"] else ""
    rows = [
        ["Date (UTC)", meta["date"]],
        ["Mode", meta["mode"]],
        ["Command", f"`{meta['command']}`"],
        ["CPU", f"{m['cpu_model']}, nproc {m['nproc']} ({', '.join(m['cpu_simd_flags'][:6])}...)"],
        ["Threads", f"{meta['threads']} per framework"],
        ["Python / NumPy", f"{v['python']} / {v['numpy']}"],
        [
            "PyTorch",
            f"{t.get('version')} (oneDNN {t.get('mkldnn')}, CPU capability {t.get('cpu_capability')})",
        ],
        ["convlens", f"{v['convlens']} (git {meta['git']['commit']}{dirty})"],
        ["numba", _numba(v["numba"], meta.get("numba_runtime"))],
        ["Native thread pools (threadpoolctl)", blas],
        ["Environment", env],
        ["Load average at start (1/5/15 min)", _load(meta.get("load_average_at_start"))],
        ["Other processes' CPU use", _disturbance(meta, results)],
    ]
    return _table(["", ""], rows, "ll")


def _op_rows(results: list[dict[str, Any]], group: str) -> list[list[str]]:
    rows = []
    for r in results:
        if r["group"] != group:
            continue
        row = [
            f"`{r['name']}`",
            r["label"],
            _ms(r.get("convlens")),
            _ms(r.get("torch")),
            f"**{_ratio(r.get('ratio'))}**{_flag(r)}",
        ]
        if group == "inference":
            row += [
                f"{r['items'] / r[fw]['median']:,.0f}" if "median" in r.get(fw, {}) else "-"
                for fw in ("convlens", "torch")
            ]
        rows.append(row + [_mem(r, "convlens"), _mem(r, "torch"), _err(r)])
    return rows


def markdown(payload: dict[str, Any]) -> str:
    meta, results, summary = payload["meta"], payload["results"], payload["summary"]
    quick = meta["mode"] == "quick"
    lines = ["# Benchmarks: convlens against PyTorch on this CPU", ""]
    if quick:
        lines += [
            "> **Quick run** (`--quick`): 3 short chunks per workload, and LeNet-5 training timed over",
            "> 300 steps and extrapolated to a full epoch. Run without `--quick` for full epochs.",
            "",
        ]
    lines += [
        "Generated by the benchmark harness (`benchmarks/`); regenerate with:",
        "",
        "```",
        "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\",
        "    python -m benchmarks --json benchmarks.json --md docs/benchmarks.md",
        "```",
        "",
        "(from the repository root; `--quick` for a ~5 minute run, `--only conv_a,lenet` for a subset,",
        "`--list` for the workload names). **Ratio** = convlens time / PyTorch time: below 1.00x",
        "convlens is faster. Times are medians of interleaved chunks; memory is the peak extra resident",
        "memory of the workload in a fresh process (MiB).",
        "",
        "## Machine and software",
        "",
        *_meta_lines(meta, results),
        "",
    ]
    g = summary["geomean"]
    if g["all"] is not None:
        groups = ", ".join(f"{k} {v:.2f}x" for k, v in g["per_group"].items())
        lines += [
            f"**Geometric mean of the {g['count']} conv, pooling and inference ratios: {g['all']:.2f}x** "
            f"({groups}).",
            "",
        ]
    op_header = [
        "workload",
        "what",
        "convlens ms",
        "PyTorch ms",
        "ratio",
        "mem convlens",
        "mem PyTorch",
        "rel err",
    ]
    for group, title in (("conv", "conv2d"), ("pool", "Pooling"), ("inference", "LeNet-5 inference")):
        rows = _op_rows(results, group)
        if not rows:
            continue
        header = (
            op_header
            if group != "inference"
            else [*op_header[:5], "convlens img/s", "PyTorch img/s", *op_header[5:]]
        )
        lines += [f"## {title}", "", *_table(header, rows, "ll" + "r" * (len(header) - 2)), ""]
    lines += _training_lines(results)
    lines += _startup_lines(results)
    busy = [r["name"] for r in results if _flag(r)]
    if busy:
        lines += [
            f"**!** other processes used more than {BUSY_CORES} cores while these were timed (not to be "
            f"trusted): {', '.join(busy)}.",
            "",
        ]
    failures = [f for r in results for f in _failures(r)]
    if failures:
        lines += ["## Failures", "", *(f"- {f}" for f in failures), ""]
    lines += [METHOD]
    return "\n".join(lines)


def _training_lines(results: list[dict[str, Any]]) -> list[str]:
    runs = [r for r in results if r["group"] == "training" and "error" not in r]
    if not runs:
        return []
    header = [
        "workload",
        "convlens s/epoch",
        "PyTorch s/epoch",
        "ratio",
        "convlens ms/step",
        "PyTorch ms/step",
        "loss rel diff (first 20)",
        "mem convlens",
        "mem PyTorch",
    ]
    rows = [
        [
            f"`{r['name']}` {r['optimizer']}",
            _s(r["convlens"]["median"]),
            _s(r["torch"]["median"]),
            f"**{_ratio(r['ratio'])}**{_flag(r)}",
            _s(r["convlens"]["seconds_per_step"] * 1e3),
            _s(r["torch"]["seconds_per_step"] * 1e3),
            f"{r['loss_max_rel_diff']:.1e}",
            _mem(r, "convlens"),
            _mem(r, "torch"),
        ]
        for r in runs
    ]
    first = runs[0]
    when = "after the timed slices of epoch 1" if first["plan"].get("slices") else "after each epoch"
    acc_rows = [
        [
            f"`{r['name']}`",
            fw,
            " / ".join(f"{a:.4f}" for a in r[fw]["test_accuracy"]),
            f"{r[fw]['last_loss']:.4f}",
        ]
        for r in runs
        for fw in ("convlens", "torch")
    ]
    return [
        "## LeNet-5 training (Fashion-MNIST, batch 64)",
        "",
        f"{first['mode']}; {first['steps_per_epoch']} steps per epoch; data: `{first['dataset_source']}`; "
        f"same batch order in both frameworks: {'yes' if first.get('same_batches') else 'NO'}.",
        "",
        *_table(header, rows, "l" + "r" * (len(header) - 1)),
        "",
        f"Test accuracy {when} (same initial weights, same batches):",
        "",
        *_table(["workload", "framework", "test accuracy", "last training loss"], acc_rows, "llrr"),
        "",
    ]


def _startup_lines(results: list[dict[str, Any]]) -> list[str]:
    runs = [r for r in results if r["group"] == "startup"]
    if not runs:
        return []
    rows = [
        [
            f"`{row['command']}`",
            f"{row['median'] * 1e3:.0f}",
            _ratio(row["ratio_vs_import_torch"]),
            row.get("error", ""),
        ]
        for row in runs[0]["rows"].values()
    ]
    return [
        "## Start-up (fresh process)",
        "",
        *_table(["command", "ms (median)", "vs `import torch`", "error"], rows, "lrrl"),
        "",
    ]

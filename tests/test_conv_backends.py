"""The convolution engine's fast paths against each other and against the oracles.

Every random configuration runs through each backend (pure NumPy and, when installed,
numba) and each path: the im2col layouts (tap-major, channel-minor and batch-inner, the
last also built one output row at a time) and numba's direct convolution (2-D, stride 1),
forced by moving the channel, row-length and chunk thresholds, with inputs and upstream
gradients in both memory orders (NCHW and channels-last). The forward is checked against
the loop oracle (``reference_conv.conv_reference``), every gradient against PyTorch in
float64, and the backends against each other.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import relative_error
from reference_conv import conv_reference

import convlens as cl
from convlens import functional as F
from convlens.functional import conv as conv_module

BACKENDS = ["numpy", "numba"] if cl.backend.numba_available() else ["numpy"]
# path -> (_TAP_MAJOR_BELOW, _BATCH_INNER_BELOW, _DIRECT_MAX_CHANNELS, _CHUNK_BYTES); "direct"
# runs only with numba and where it applies (2-D, groups 1, stride 1), else falls back to
# tap-major; "batch-inner-rows" builds batch-inner columns one output row at a time (the
# backward rebuilds them), as large layers do
LAYOUTS = {
    "tap-major": (10**9, 0, 0, 2**20),
    "channel-minor": (0, 0, 0, 2**20),
    "batch-inner": (10**9, 10**9, 0, 2**20),
    "batch-inner-rows": (10**9, 10**9, 0, 1),
    "direct": (10**9, 0, 10**9, 2**20),
}
OURS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
MODES = ("zeros", "reflect", "replicate", "circular")
WORST: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_worst():
    yield
    for name in sorted(WORST):
        print(f"\n{name}: worst relative error {WORST[name]:.3g}", end="")


def record(name: str, error: float) -> float:
    WORST[name] = max(WORST.get(name, 0.0), error)
    return error


def channels_last(a: np.ndarray) -> np.ndarray:
    """Same values and shape, channels-last memory (``(N, *S, C)`` behind an ``(N, C, *S)`` view)."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)


def random_case(rng: np.random.Generator, d: int) -> dict:
    groups = int(rng.choice([1, 1, 1, 2]))
    c_in = groups * int(rng.integers(1, 20 // groups + 1))  # both sides of the layout threshold
    c_out = groups * int(rng.integers(1, 5))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=d))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=d))
    stride = tuple(int(v) for v in rng.integers(1, 3, size=d))
    padding = tuple(int(v) for v in rng.integers(0, 3, size=d))
    mode = str(rng.choice(MODES, p=[0.7, 0.1, 0.1, 0.1]))
    sizes = [
        int(rng.integers(max(dl * (k - 1) + 1, p + 1), dl * (k - 1) + 6))
        for k, dl, p in zip(kernel, dilation, padding, strict=True)
    ]
    n = int(rng.integers(1, 4))
    out = [
        (m + 2 * p - dl * (k - 1) - 1) // s + 1
        for m, p, dl, k, s in zip(sizes, padding, dilation, kernel, stride, strict=True)
    ]
    return {
        "x": rng.standard_normal((n, c_in, *sizes)),
        "w": rng.standard_normal((c_out, c_in // groups, *kernel)),
        "b": rng.standard_normal(c_out) if rng.random() < 0.7 else None,
        "probe": rng.standard_normal((n, c_out, *out)),
        "kwargs": {
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "padding_mode": mode,
        },
    }


def cast(case: dict, dtype, memory: str) -> dict:
    convert = channels_last if memory == "channels-last" else np.ascontiguousarray
    as_dtype = {k: None if case[k] is None else case[k].astype(dtype) for k in ("x", "w", "b", "probe")}
    for k in ("x", "probe"):
        if as_dtype[k].ndim > 2:
            as_dtype[k] = convert(as_dtype[k])
    return {**as_dtype, "kwargs": case["kwargs"]}


def run_ours(case: dict, needs_input: bool = True) -> dict[str, np.ndarray | None]:
    d = case["w"].ndim - 2
    x = cl.tensor(case["x"], requires_grad=needs_input)
    w = cl.tensor(case["w"], requires_grad=True)
    b = None if case["b"] is None else cl.tensor(case["b"], requires_grad=True)
    out = OURS[d](x, w, b, **case["kwargs"])
    out.backward(case["probe"])
    assert out.dtype == case["x"].dtype
    return {"out": out.data, "x": x.grad, "w": w.grad, "b": None if b is None else b.grad}


def run_torch(case: dict) -> dict[str, np.ndarray | None]:
    d, k = case["w"].ndim - 2, dict(case["kwargs"])
    mode = k.pop("padding_mode")
    x, w = (torch.from_numpy(np.ascontiguousarray(case[n])).requires_grad_() for n in ("x", "w"))
    b = None if case["b"] is None else torch.from_numpy(case["b"]).requires_grad_()
    xp = x
    if mode != "zeros":
        xp = TF.pad(x, [p for p in reversed(k["padding"]) for _ in range(2)], mode=mode)
        k["padding"] = 0
    out = TORCH[d](xp, w, b, **k)
    out.backward(torch.from_numpy(np.ascontiguousarray(case["probe"])))
    grads = {"x": x.grad.numpy(), "w": w.grad.numpy(), "b": None if b is None else b.grad.numpy()}
    return {"out": out.detach().numpy(), **grads}


def run_paths(case: dict, monkeypatch, needs_input: bool = True) -> dict[tuple[str, str], dict]:
    results = {}
    for layout, (threshold, width, direct, chunk) in LAYOUTS.items():
        monkeypatch.setattr(conv_module, "_TAP_MAJOR_BELOW", threshold)
        monkeypatch.setattr(conv_module, "_BATCH_INNER_BELOW", width)
        monkeypatch.setattr(conv_module, "_DIRECT_MAX_CHANNELS", direct)
        monkeypatch.setattr(conv_module, "_CHUNK_BYTES", chunk)
        monkeypatch.setattr(conv_module, "_KEEP_COLUMNS_BYTES", 0 if chunk == 1 else 2**26)
        for name in BACKENDS:
            with cl.backend.use(name):
                results[(name, layout)] = run_ours(case, needs_input)
    return results


def compare(label: str, ours: dict, expected: dict, tolerance: float) -> None:
    for key, value in expected.items():
        if value is None or ours[key] is None:
            assert value is None and ours[key] is None, f"{label}: {key} gradient presence differs"
            continue
        error = record(f"{label} {key}", relative_error(ours[key], value))
        assert error < tolerance, f"{label}: {key} error {error:.3g}"


@pytest.mark.parametrize("d", [1, 2, 3])
def test_every_path_matches_oracles_float64(d, monkeypatch):
    rng = np.random.default_rng(700 + d)
    for i in range({1: 40, 2: 80, 3: 20}[d]):
        base = random_case(rng, d)
        case = cast(base, np.float64, "channels-last" if i % 2 else "contiguous")
        k = case["kwargs"]
        pads = tuple((p, p) for p in k["padding"])
        loops = conv_reference(
            case["x"], case["w"], case["b"], k["stride"], pads, k["dilation"], k["groups"], k["padding_mode"]
        )
        expected = run_torch(case)
        for (name, layout), ours in run_paths(case, monkeypatch).items():
            assert record(f"conv{d}d forward vs loop oracle", relative_error(ours["out"], loops)) < 1e-12
            compare(f"conv{d}d {name}/{layout} float64 vs torch", ours, expected, 1e-10)


@pytest.mark.parametrize("d", [1, 2])
def test_every_path_matches_float32(d, monkeypatch):
    rng = np.random.default_rng(800 + d)
    for i in range({1: 20, 2: 60}[d]):
        base = random_case(rng, d)
        expected = run_torch(cast(base, np.float64, "contiguous"))
        case = cast(base, np.float32, "channels-last" if i % 2 else "contiguous")
        results = run_paths(case, monkeypatch)
        for (name, layout), ours in results.items():
            compare(f"conv{d}d {name}/{layout} float32 vs torch float64", ours, expected, 1e-5)
        reference = results[("numpy", "tap-major")]
        for ours in results.values():  # the backends and layouts agree with each other
            compare(f"conv{d}d float32 paths vs each other", ours, reference, 1e-5)


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
def test_direct_path_matches_oracles(monkeypatch):
    """numba's direct convolution (2-D, stride 1, 1-3 input channels): dispatched, and equal to
    the loop oracle, PyTorch and the NumPy im2col path on random dilations, paddings and modes."""
    rng = np.random.default_rng(12)
    called = []
    original = conv_module._direct_forward
    monkeypatch.setattr(conv_module, "_direct_forward", lambda *a: called.append(1) or original(*a))
    for i in range(60):
        base = random_case(rng, 2)
        c_in = int(rng.integers(1, 4))
        base["x"] = base["x"][:, :1].repeat(c_in, axis=1) + rng.standard_normal(base["x"][:, :c_in].shape)
        base["w"] = rng.standard_normal((base["w"].shape[0], c_in, *base["w"].shape[2:]))
        base["kwargs"] = {**base["kwargs"], "stride": (1, 1), "groups": 1}
        k = base["kwargs"]
        size = [
            m + 2 * p - dl * (kk - 1)
            for m, p, dl, kk in zip(
                base["x"].shape[2:], k["padding"], k["dilation"], base["w"].shape[2:], strict=True
            )
        ]
        base["probe"] = rng.standard_normal((base["x"].shape[0], base["w"].shape[0], *size))
        dtype, tolerance = (np.float64, 1e-10) if i % 2 else (np.float32, 1e-5)
        case = cast(base, dtype, "channels-last" if i % 4 < 2 else "contiguous")
        expected = run_torch(cast(base, np.float64, "contiguous"))
        with cl.backend.use("numba"):
            ours = run_ours(case)
        with cl.backend.use("numpy"):
            columns = run_ours(case)
        loops = conv_reference(
            base["x"],
            base["w"],
            base["b"],
            (1, 1),
            tuple((p, p) for p in k["padding"]),
            k["dilation"],
            1,
            k["padding_mode"],
        )
        assert record("direct forward vs loop oracle", relative_error(ours["out"], loops)) < tolerance
        compare(f"direct {np.dtype(dtype).name} vs torch float64", ours, expected, tolerance)
        compare("direct vs numpy im2col", ours, columns, tolerance)
    assert len(called) == 60


def test_input_gradient_skipped_when_not_required(monkeypatch):
    """The first layer's data needs no gradient: none is computed or returned."""
    rng = np.random.default_rng(9)
    case = cast(random_case(rng, 2), np.float32, "contiguous")
    called = []
    original = conv_module._conv_input_gradient
    monkeypatch.setattr(conv_module, "_conv_input_gradient", lambda *a: called.append(1) or original(*a))
    for ours in run_paths(case, monkeypatch, needs_input=False).values():
        assert ours["x"] is None and ours["w"] is not None
    assert not called


def test_lenet_layers_both_backends(monkeypatch):
    """LeNet-5's two convolutions at full batch, float32, every path against torch."""
    rng = np.random.default_rng(5)
    for shape, c_out, padding in (((64, 1, 28, 28), 6, 2), ((64, 6, 14, 14), 16, 0)):
        base = {
            "x": rng.standard_normal(shape),
            "w": rng.standard_normal((c_out, shape[1], 5, 5)) * 0.2,
            "b": rng.standard_normal(c_out),
            "kwargs": {
                "stride": (1, 1),
                "padding": (padding,) * 2,
                "dilation": (1, 1),
                "groups": 1,
                "padding_mode": "zeros",
            },
        }
        size = shape[2] + 2 * padding - 4
        base["probe"] = rng.standard_normal((shape[0], c_out, size, size))
        expected = run_torch(cast(base, np.float64, "contiguous"))
        for ours in run_paths(cast(base, np.float32, "channels-last"), monkeypatch).values():
            compare("lenet layers float32 vs torch float64", ours, expected, 1e-5)


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
def test_batch_inner_input_gradient_numba_matches_numpy(monkeypatch):
    """Batch-inner 2-D input gradient: numba's GEMM + col2im against NumPy's per-tap adds, on
    random strides, dilations, groups, batch sizes and output-row chunks; numba's path is the
    one dispatched."""
    rng = np.random.default_rng(11)
    called = []
    original = conv_module._batch_inner_col2im_numba
    monkeypatch.setattr(conv_module, "_batch_inner_col2im_numba", lambda *a: called.append(1) or original(*a))
    for i in range(40):
        case = random_case(rng, 2)
        n = int(rng.integers(2, 9))
        case["x"] = rng.standard_normal((n, *case["x"].shape[1:]))
        case["probe"] = rng.standard_normal((n, *case["probe"].shape[1:]))
        monkeypatch.setattr(conv_module, "_TAP_MAJOR_BELOW", 10**9)
        monkeypatch.setattr(conv_module, "_BATCH_INNER_BELOW", 10**9)
        monkeypatch.setattr(conv_module, "_DIRECT_MAX_CHANNELS", 0)
        # 1 byte: one output row per chunk (columns rebuilt in the backward)
        monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1 if i % 2 else 2**20)
        monkeypatch.setattr(conv_module, "_KEEP_COLUMNS_BYTES", 0 if i % 2 else 2**26)
        results = {}
        for name in ("numpy", "numba"):
            with cl.backend.use(name):
                results[name] = run_ours(case)
        error = record(
            "batch-inner dx numba vs numpy", relative_error(results["numba"]["x"], results["numpy"]["x"])
        )
        assert error < 1e-12
    assert len(called) > 40  # every case, and one call per output row in the chunked ones


def test_forward_output_is_channels_last():
    out = F.conv2d(np.ones((2, 3, 8, 8), np.float32), np.ones((5, 3, 3, 3), np.float32))
    assert out.shape == (2, 5, 6, 6) and out.data.strides[1] == out.data.itemsize


def test_import_does_not_load_numba():
    code = "import sys, convlens; print('numba' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"


# ---------------------------------------------------------------------------
# FFT path (large kernels, stride 1): forced on small random cases by lowering
# the tap threshold, checked against the loop oracle and PyTorch.
# ---------------------------------------------------------------------------
def fft_case(rng: np.random.Generator, d: int) -> dict:
    case = random_case(rng, d)
    case["kwargs"]["stride"] = (1,) * d
    sizes, k = case["x"].shape[2:], case["kwargs"]
    out = [
        m + 2 * p - dl * (kk - 1)
        for m, p, dl, kk in zip(sizes, k["padding"], k["dilation"], case["w"].shape[2:], strict=True)
    ]
    case["probe"] = rng.standard_normal((case["x"].shape[0], case["w"].shape[0], *out))
    return case


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_fft_path_matches_oracles(d, threads, monkeypatch):
    monkeypatch.setattr(conv_module, "_FFT_MIN_TAPS", 0)
    monkeypatch.setattr(conv_module, "_FFT_THREADS", threads)
    used = []
    original = conv_module._fft_forward
    monkeypatch.setattr(conv_module, "_fft_forward", lambda *a: used.append(1) or original(*a))
    rng = np.random.default_rng(900 + 10 * d + threads)
    for i in range({1: 30, 2: 40, 3: 10}[d]):
        base = fft_case(rng, d)
        k = base["kwargs"]
        case64 = cast(base, np.float64, "channels-last" if i % 2 else "contiguous")
        pads = tuple((p, p) for p in k["padding"])
        loops = conv_reference(
            case64["x"],
            case64["w"],
            case64["b"],
            (1,) * d,
            pads,
            k["dilation"],
            k["groups"],
            k["padding_mode"],
        )
        expected = run_torch(case64)
        ours = run_ours(case64)
        assert record(f"fft conv{d}d forward vs loop oracle", relative_error(ours["out"], loops)) < 1e-11
        compare(f"fft conv{d}d float64 vs torch", ours, expected, 1e-10)
        case32 = cast(base, np.float32, "contiguous" if i % 2 else "channels-last")
        compare(f"fft conv{d}d float32 vs torch float64", run_ours(case32), expected, 1e-5)
        no_input = run_ours(case32, needs_input=False)
        assert no_input["x"] is None and no_input["w"] is not None
    assert used


def test_fft_dispatch():
    """FFT for stride-1 kernels of at least 49 taps; im2col otherwise (LeNet's 5x5, strided layers)."""
    x = np.zeros((1, 3, 32, 32), np.float32)

    def uses_fft(kernel, stride=1):
        w = np.zeros((2, 3, *kernel), np.float32)
        geometry, _ = conv_module._conv_geometry("conv2d", 2, x, w, None, stride, 0, 1, 1, "zeros")
        return conv_module._use_fft(w, geometry)

    assert uses_fft((9, 9)) and uses_fft((7, 7))
    assert not uses_fft((5, 5)) and not uses_fft((3, 3)) and not uses_fft((9, 9), stride=2)


def test_fft_large_kernel_layer_against_torch():
    """Layer (d) of the benchmarks, shrunk: 3->16 channels, 9x9 kernel, padding 4, default dispatch."""
    rng = np.random.default_rng(11)
    base = {
        "x": rng.standard_normal((3, 3, 40, 36)),
        "w": rng.standard_normal((16, 3, 9, 9)) * 0.1,
        "b": rng.standard_normal(16),
        "probe": rng.standard_normal((3, 16, 40, 36)),
        "kwargs": {
            "stride": (1, 1),
            "padding": (4, 4),
            "dilation": (1, 1),
            "groups": 1,
            "padding_mode": "zeros",
        },
    }
    expected = run_torch(cast(base, np.float64, "contiguous"))
    for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-5)):
        ours = run_ours(cast(base, dtype, "contiguous"))
        assert ours["out"].strides[1] == ours["out"].itemsize  # channels-last, like the im2col path
        compare(f"fft layer (d) {np.dtype(dtype).name} vs torch float64", ours, expected, tolerance)


@pytest.mark.parametrize("n", [4, 5, 7, 8, 9, 15, 17, 136, 1000])
def test_fft_length_is_smooth(n):
    m = conv_module._fft_length(n)
    rest = m
    for p in (2, 3, 5):
        while rest % p == 0:
            rest //= p
    assert m >= n and rest == 1 and m % 2 == 0 and m < 1.25 * n + 2


def test_reused_buffers_never_alias_live_results():
    """Recycled column/output buffers: a result the caller still holds is never overwritten."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 9, 9)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    first = F.conv2d(x, w).data
    kept = first.copy()
    view = F.conv2d(x * 2, w).data[:, 1:]  # only a view of the second result survives
    third = F.conv2d(x * 3, w).data
    assert not np.shares_memory(first, third) and not np.shares_memory(view, third)
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_allclose(third, 3 * kept, rtol=1e-5, atol=1e-5)
    buffer = conv_module._reusable((5, 7), np.float32)
    alias = buffer[2:]
    del buffer
    assert not np.shares_memory(conv_module._reusable((5, 7), np.float32), alias)


def test_inference_builds_batch_inner_columns_in_row_chunks(monkeypatch):
    """Without a backward to come (no_grad) batch-inner columns are built a chunk of output rows
    at a time and dropped; the output equals the whole-columns forward for every backend."""
    rng = np.random.default_rng(21)
    monkeypatch.setattr(conv_module, "_TAP_MAJOR_BELOW", 10**9)
    monkeypatch.setattr(conv_module, "_BATCH_INNER_BELOW", 10**9)
    monkeypatch.setattr(conv_module, "_DIRECT_MAX_CHANNELS", 0)
    for _ in range(20):
        case = random_case(rng, int(rng.integers(1, 4)))
        d = case["w"].ndim - 2
        whole = OURS[d](case["x"], case["w"], case["b"], **case["kwargs"]).data  # no grad needed: chunked
        monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1)  # one output row per chunk
        for name in BACKENDS:
            with cl.backend.use(name), cl.no_grad():
                rows = OURS[d](case["x"], case["w"], case["b"], **case["kwargs"]).data
            assert relative_error(rows, whole) < 1e-12
        monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 2**20)


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba not installed")
def test_channel_minor_input_gradient_numba_matches_numpy(monkeypatch):
    """Channel-minor 2-D input gradient: numba's GEMM per chunk of samples + col2im against
    NumPy's per-tap adds, on random strides, dilations, paddings and chunk sizes."""
    rng = np.random.default_rng(31)
    called = []
    original = conv_module._input_gradient_channel_minor_numba
    monkeypatch.setattr(
        conv_module, "_input_gradient_channel_minor_numba", lambda *a: called.append(1) or original(*a)
    )
    monkeypatch.setattr(conv_module, "_TAP_MAJOR_BELOW", 0)
    monkeypatch.setattr(conv_module, "_DIRECT_MAX_CHANNELS", 0)
    for i in range(30):
        case = random_case(rng, 2)
        case["kwargs"] = {**case["kwargs"], "groups": 1}
        case["w"] = rng.standard_normal((case["w"].shape[0], case["x"].shape[1], *case["w"].shape[2:]))
        monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1 if i % 2 else 2**20)  # 1: a chunk per sample
        results = {}
        for name in ("numpy", "numba"):
            with cl.backend.use(name):
                results[name] = run_ours(case)
        assert (
            record(
                "channel-minor dx numba vs numpy",
                relative_error(results["numba"]["x"], results["numpy"]["x"]),
            )
            < 1e-12
        )
    assert len(called) == 30

"""Every fast convolution engine, forced in turn, against the reference engine and the oracles.

Every seeded random configuration runs through each engine of the ``"conv"`` family
(``cl.backend.force``), on the NumPy and the numba backend (which decides whether the
column engines' input gradients use numba's col2im), with inputs and upstream gradients
in both memory orders (NCHW and channels-last); batch-inner also with its columns built
one output row at a time (``TUNING.override(chunk_bytes=1)``). ``cl.backend.record``
checks that the forced engine is the one that ran; where an engine does not apply
(``why_not``), forcing it must raise a clear ValueError instead. Results are compared
with the reference engine (float64 to 1e-12 relative, float32 to round-off), with
PyTorch, and the forward with the loop oracle ``reference_conv.conv_reference``.
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
from convlens.engines import fft
from convlens.engines._buffers import reusable
from convlens.engines.tuning import TUNING
from convlens.functional.conv import conv_geometry

NUMBA = cl.backend.numba_available()
BACKENDS = ["numpy", "numba"] if NUMBA else ["numpy"]
ENGINES = [e for e in cl.backend.engines("conv") if not e.reference]
OURS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
MODES = ("zeros", "reflect", "replicate", "circular")
WORST: dict[str, float] = {}
RAN: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def report_worst():
    yield
    for name in sorted(WORST):
        print(f"\n{name}: worst relative error {WORST[name]:.3g}", end="")


def record(name: str, error: float) -> float:
    WORST[name] = max(WORST.get(name, 0.0), error)
    return error


def test_the_engines_in_order_of_preference():
    assert [e.name for e in cl.backend.engines("conv")] == [
        "fft",
        "direct",
        "batch-inner",
        "tap-major",
        "channel-minor",
        "reference",
    ]


def channels_last(a: np.ndarray) -> np.ndarray:
    """Same values and shape, channels-last memory (``(N, *S, C)`` behind an ``(N, C, *S)`` view)."""
    return np.moveaxis(np.ascontiguousarray(np.moveaxis(a, 1, -1)), -1, 1)


def random_case(rng: np.random.Generator, d: int, stride_one: bool = False) -> dict:
    groups = int(rng.choice([1, 1, 1, 2]))
    c_in = groups * int(rng.integers(1, 20 // groups + 1))  # both sides of the tap-major threshold
    c_out = groups * int(rng.integers(1, 5))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=d))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=d))
    stride = (1,) * d if stride_one else tuple(int(v) for v in rng.integers(1, 3, size=d))
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


def why_not(engine, case: dict) -> str | None:
    d, k = case["w"].ndim - 2, case["kwargs"]
    args = (k["stride"], k["padding"], k["dilation"], k["groups"], k["padding_mode"])
    geometry, _ = conv_geometry(f"conv{d}d", d, case["x"], case["w"], case["b"], *args)
    return engine.why_not(case["x"], case["w"], geometry)


def forced(name: str, case: dict, needs_input: bool = True) -> dict:
    with cl.backend.force(name), cl.backend.record() as ran:
        result = run_ours(case, needs_input)
    assert ran == [("conv", name)], ran
    RAN[name] = RAN.get(name, 0) + 1
    return result


def run_engines(case: dict, needs_input: bool = True) -> dict[str, dict]:
    """Every applicable engine on every backend; forcing the others must raise."""
    results = {}
    for engine in ENGINES:
        if engine.needs_numba and not NUMBA:
            continue
        if why_not(engine, case) is not None:
            with pytest.raises(ValueError, match=f"engine '{engine.name}' does not apply here: it needs"):
                forced(engine.name, case, needs_input)
            continue
        for backend in ["numba"] if engine.needs_numba else BACKENDS:
            with cl.backend.use(backend):
                results[f"{backend}/{engine.name}"] = forced(engine.name, case, needs_input)
                if engine.name == "batch-inner":  # one output row at a time, rebuilt in the backward
                    with TUNING.override(chunk_bytes=1, keep_columns_bytes=0):
                        results[f"{backend}/batch-inner-rows"] = forced(engine.name, case, needs_input)
    return results


def compare(label: str, ours: dict, expected: dict, tolerance: float) -> None:
    for key, value in expected.items():
        if value is None or ours[key] is None:
            assert value is None and ours[key] is None, f"{label}: {key} gradient presence differs"
            continue
        error = record(f"{label} {key}", relative_error(ours[key], value))
        assert error < tolerance, f"{label}: {key} error {error:.3g}"


def loop_oracle(case: dict) -> np.ndarray:
    k = case["kwargs"]
    pads = tuple((p, p) for p in k["padding"])
    args = (k["stride"], pads, k["dilation"], k["groups"], k["padding_mode"])
    return conv_reference(case["x"], case["w"], case["b"], *args)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_every_engine_matches_reference_and_oracles_float64(d):
    rng = np.random.default_rng(700 + d)
    for i in range({1: 40, 2: 80, 3: 20}[d]):
        case = cast(
            random_case(rng, d, stride_one=i % 3 == 0), np.float64, "channels-last" if i % 2 else "nchw"
        )
        with cl.backend.use("reference"):
            reference = run_ours(case)
        loops, expected = loop_oracle(case), run_torch(case)
        assert record(f"conv{d}d reference vs loop oracle", relative_error(reference["out"], loops)) < 1e-12
        compare(f"conv{d}d reference float64 vs torch", reference, expected, 1e-10)
        for label, ours in run_engines(case).items():
            compare(f"conv{d}d {label} float64 vs reference", ours, reference, 1e-12)
            compare(f"conv{d}d {label} float64 vs torch", ours, expected, 1e-10)


@pytest.mark.parametrize("d", [1, 2])
def test_every_engine_matches_reference_float32(d):
    rng = np.random.default_rng(800 + d)
    for i in range({1: 20, 2: 60}[d]):
        base = random_case(rng, d, stride_one=i % 3 == 0)
        expected = run_torch(cast(base, np.float64, "nchw"))
        case = cast(base, np.float32, "channels-last" if i % 2 else "nchw")
        with cl.backend.use("reference"):
            reference = run_ours(case)
        compare(f"conv{d}d reference float32 vs torch float64", reference, expected, 1e-5)
        for label, ours in run_engines(case).items():
            compare(f"conv{d}d {label} float32 vs torch float64", ours, expected, 1e-5)
            compare(f"conv{d}d {label} float32 vs reference", ours, reference, 1e-5)


def test_every_engine_ran():
    """The random cases above reached every engine (this runs after them, in file order)."""
    expected = {e.name for e in ENGINES if NUMBA or not e.needs_numba}
    assert expected <= set(RAN), (expected, RAN)


@pytest.mark.skipif(not NUMBA, reason="numba not installed")
def test_direct_engine_on_few_channels():
    """numba's direct convolution where the automatic choice takes it (2-D, stride 1, 1-3 input
    channels): chosen, and equal to the loop oracle, PyTorch and the reference engine."""
    rng = np.random.default_rng(12)
    for i in range(60):
        base = random_case(rng, 2, stride_one=True)
        c_in = int(rng.integers(1, 4))
        base["x"] = rng.standard_normal((base["x"].shape[0], c_in, *base["x"].shape[2:]))
        base["w"] = rng.standard_normal((base["w"].shape[0], c_in, *base["w"].shape[2:]))
        base["kwargs"] = {**base["kwargs"], "groups": 1}
        dtype, tolerance = (np.float64, 1e-10) if i % 2 else (np.float32, 1e-5)
        case = cast(base, dtype, "channels-last" if i % 4 < 2 else "nchw")
        expected = run_torch(cast(base, np.float64, "nchw"))
        with cl.backend.use("numba"), cl.backend.record() as ran:
            ours = run_ours(case)
        assert ran == [("conv", "direct")]
        with cl.backend.use("reference"):
            reference = run_ours(case)
        loops = loop_oracle(cast(base, np.float64, "nchw"))
        assert record("direct forward vs loop oracle", relative_error(ours["out"], loops)) < tolerance
        compare(f"direct {np.dtype(dtype).name} vs torch float64", ours, expected, tolerance)
        compare("direct vs reference", ours, reference, tolerance)


def test_input_gradient_skipped_when_not_required():
    """The first layer's data needs no gradient: no engine computes or returns one."""
    rng = np.random.default_rng(9)
    for _ in range(5):
        case = cast(random_case(rng, 2, stride_one=True), np.float32, "nchw")
        for ours in run_engines(case, needs_input=False).values():
            assert ours["x"] is None and ours["w"] is not None


def test_lenet_layers_every_engine():
    """LeNet-5's two convolutions at full batch, float32, every engine against torch."""
    rng = np.random.default_rng(5)
    for shape, c_out, padding in (((64, 1, 28, 28), 6, 2), ((64, 6, 14, 14), 16, 0)):
        size = shape[2] + 2 * padding - 4
        base = {
            "x": rng.standard_normal(shape),
            "w": rng.standard_normal((c_out, shape[1], 5, 5)) * 0.2,
            "b": rng.standard_normal(c_out),
            "probe": rng.standard_normal((shape[0], c_out, size, size)),
            "kwargs": {"stride": (1, 1), "padding": (padding,) * 2, "dilation": (1, 1), "groups": 1},
        }
        base["kwargs"]["padding_mode"] = "zeros"
        expected = run_torch(cast(base, np.float64, "nchw"))
        for ours in run_engines(cast(base, np.float32, "channels-last")).values():
            compare("lenet layers float32 vs torch float64", ours, expected, 1e-5)


def test_inference_builds_batch_inner_columns_in_row_chunks():
    """Without a backward to come (no_grad) batch-inner columns are built a chunk of output rows
    at a time and dropped; the output equals the whole-columns forward on every backend."""
    rng = np.random.default_rng(21)
    for _ in range(20):
        case = random_case(rng, int(rng.integers(1, 4)))
        d = case["w"].ndim - 2
        with cl.backend.force("batch-inner"):
            whole = OURS[d](case["x"], case["w"], case["b"], **case["kwargs"]).data  # no grad needed
            for name in BACKENDS:
                with cl.backend.use(name), cl.no_grad(), TUNING.override(chunk_bytes=1):
                    rows = OURS[d](case["x"], case["w"], case["b"], **case["kwargs"]).data
                assert relative_error(rows, whole) < 1e-12


def test_channel_minor_input_gradient_in_sample_chunks():
    """Channel-minor's numba input gradient (2-D, groups 1) by chunks of samples, down to one
    sample per chunk, against the NumPy backend's per-tap adds."""
    rng = np.random.default_rng(31)
    for i in range(30):
        case = random_case(rng, 2)
        case["kwargs"] = {**case["kwargs"], "groups": 1}
        case["w"] = rng.standard_normal((case["w"].shape[0], case["x"].shape[1], *case["w"].shape[2:]))
        results = {}
        for name in BACKENDS:
            with cl.backend.use(name), TUNING.override(chunk_bytes=1 if i % 2 else 2**20):
                results[name] = forced("channel-minor", case)
        error = relative_error(results[BACKENDS[-1]]["x"], results["numpy"]["x"])
        assert record("channel-minor dx numba vs numpy", error) < 1e-12


def test_forward_output_is_channels_last():
    out = F.conv2d(np.ones((2, 3, 8, 8), np.float32), np.ones((5, 3, 3, 3), np.float32))
    assert out.shape == (2, 5, 6, 6) and out.data.strides[1] == out.data.itemsize


def test_import_does_not_load_numba_or_the_engines():
    code = "import sys, convlens; print('numba' in sys.modules, 'convlens.engines' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == ["False", "False"]


def test_fft_large_kernel_layer_against_torch():
    """A large-kernel layer, shrunk: 3->16 channels, 9x9 kernel, padding 4: the FFT engine is chosen."""
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
    expected = run_torch(cast(base, np.float64, "nchw"))
    for dtype, tolerance in ((np.float64, 1e-10), (np.float32, 1e-5)):
        with cl.backend.record() as ran:
            ours = run_ours(cast(base, dtype, "nchw"))
        assert ran == [("conv", "fft")]
        assert ours["out"].strides[1] == ours["out"].itemsize  # channels-last, like the column engines
        compare(f"fft layer {np.dtype(dtype).name} vs torch float64", ours, expected, tolerance)


@pytest.mark.parametrize("threads", [1, 2])
def test_fft_engine_on_one_and_two_threads(threads):
    rng = np.random.default_rng(900 + threads)
    for _ in range(20):
        case = cast(random_case(rng, int(rng.integers(1, 4)), stride_one=True), np.float64, "nchw")
        with cl.backend.use("reference"):
            reference = run_ours(case)
        with TUNING.override(fft_threads=threads):
            compare(f"fft on {threads} threads vs reference", forced("fft", case), reference, 1e-12)


@pytest.mark.parametrize("n", [4, 5, 7, 8, 9, 15, 17, 136, 1000])
def test_fft_length_is_smooth(n):
    m = fft.fft_length(n)
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
    for engine in ENGINES:
        if engine.needs_numba and not NUMBA:
            continue
        with cl.backend.force(engine.name):
            first = F.conv2d(x, w).data
            kept = first.copy()
            view = F.conv2d(x * 2, w).data[:, 1:]  # only a view of the second result survives
            third = F.conv2d(x * 3, w).data
        assert not np.shares_memory(first, third) and not np.shares_memory(view, third)
        np.testing.assert_array_equal(first, kept)
        np.testing.assert_allclose(third, 3 * kept, rtol=1e-5, atol=1e-5)
    buffer = reusable((5, 7), np.float32)
    alias = buffer[2:]
    del buffer
    assert not np.shares_memory(reusable((5, 7), np.float32), alias)

"""The convolution engine's fast paths against each other and against the oracles.

Every random configuration runs through each backend (pure NumPy and, when
installed, numba) and each im2col layout (tap-major and channel-minor, forced
by moving the channel threshold), with inputs and upstream gradients in both
memory orders (NCHW and channels-last). The forward is checked against the
loop oracle (``reference_conv.conv_reference``), every gradient against
PyTorch in float64, and the backends against each other.
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
LAYOUTS = {"tap-major": 10**9, "channel-minor": 0}
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
    for layout, threshold in LAYOUTS.items():
        monkeypatch.setattr(conv_module, "_TAP_MAJOR_BELOW", threshold)
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


def test_forward_output_is_channels_last():
    out = F.conv2d(np.ones((2, 3, 8, 8), np.float32), np.ones((5, 3, 3, 3), np.float32))
    assert out.shape == (2, 5, 6, 6) and out.data.strides[1] == out.data.itemsize


def test_import_does_not_load_numba():
    code = "import sys, convlens; print('numba' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"

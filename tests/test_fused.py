"""The fused LeNet block ``max_pool2d(relu(conv2d(x)), 2)`` (``F.conv._conv2d_relu_max_pool2d``).

With numba, a direct-path convolution pools as it computes and its backward scatters
the pooled gradient straight into the weight gradient; a batch-inner convolution pools
its ``(O, *out, N)`` GEMM output and scatters the pooled gradient back into that layout.
Checked against the three ops run one after the other (our NumPy path) and against
PyTorch, on random shapes,
paddings, dilations and odd sizes, with many ties (integer-valued inputs), and
``nn.Sequential`` is checked to dispatch it only when nothing watches the layers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import relative_error

import convlens as cl
from convlens import functional as F
from convlens import nn
from convlens.functional import conv as conv_module

NUMBA = cl.backend.numba_available()
MODES = ("zeros", "reflect", "replicate", "circular")


def random_case(rng: np.random.Generator, ties: bool, path: str = "direct") -> dict:
    """Direct: 1-3 input channels, stride 1. Batch-inner: 4-12 channels, groups, strides, N >= 2."""
    groups = int(rng.choice([1, 2])) if path == "batch-inner" else 1
    c_in = groups * int(rng.integers(4 // groups, 7)) if path == "batch-inner" else int(rng.integers(1, 4))
    c_out = groups * int(rng.integers(1, 5))
    stride = tuple(int(v) for v in rng.integers(1, 3, size=2)) if path == "batch-inner" else (1, 1)
    kernel = tuple(int(k) for k in rng.integers(1, 6, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
    spans = [dl * (k - 1) for k, dl in zip(kernel, dilation, strict=True)]
    sizes = [
        span + int(rng.integers(max(2 * s, p + 1), 12))
        for span, p, s in zip(spans, padding, stride, strict=True)
    ]
    n = int(rng.integers(2 if path == "batch-inner" else 1, 5))
    draw = (lambda shape: rng.integers(-2, 3, size=shape).astype(float)) if ties else rng.standard_normal
    return {
        "x": draw((n, c_in, *sizes)),
        "w": draw((c_out, c_in // groups, *kernel)),
        "b": draw((c_out,)) if rng.random() < 0.8 else None,
        "kwargs": {
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "padding_mode": str(rng.choice(MODES)),
        },
    }


def run(case: dict, dtype, fused: bool) -> dict:
    x = cl.tensor(case["x"].astype(dtype), requires_grad=True)
    w = cl.tensor(case["w"].astype(dtype), requires_grad=True)
    b = None if case["b"] is None else cl.tensor(case["b"].astype(dtype), requires_grad=True)
    if fused:
        out = conv_module._conv2d_relu_max_pool2d(x, w, b, **case["kwargs"])
    else:
        out = F.max_pool2d(F.relu(F.conv2d(x, w, b, **case["kwargs"])), 2)
    probe = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    out.backward(probe)
    return {"out": out.data, "x": x.grad, "w": w.grad, "b": None if b is None else b.grad, "probe": probe}


def run_torch(case: dict, probe: np.ndarray) -> dict:
    k = dict(case["kwargs"])
    mode = k.pop("padding_mode")
    x, w = (torch.from_numpy(case[n]).requires_grad_() for n in ("x", "w"))
    b = None if case["b"] is None else torch.from_numpy(case["b"]).requires_grad_()
    xp = x
    if mode != "zeros":
        xp = TF.pad(x, [p for p in reversed(k["padding"]) for _ in range(2)], mode=mode)
        k["padding"] = 0
    out = TF.max_pool2d(TF.relu(TF.conv2d(xp, w, b, **k)), 2)
    out.backward(torch.from_numpy(probe.astype(np.float64)))
    return {
        "out": out.detach().numpy(),
        "x": x.grad.numpy(),
        "w": w.grad.numpy(),
        "b": None if b is None else b.grad.numpy(),
    }


@pytest.mark.skipif(not NUMBA, reason="numba not installed")
@pytest.mark.parametrize("path", ["direct", "batch-inner"])
@pytest.mark.parametrize("ties", [False, True])
def test_fused_block_matches_unfused_and_torch(ties, path, monkeypatch):
    rng = np.random.default_rng(40 + ties + 2 * (path == "direct"))
    called = []
    probe = conv_module._flat_padded if path == "direct" else conv_module._batch_inner_relu_max_pool2d
    name = probe.__name__
    monkeypatch.setattr(conv_module, name, lambda *a: called.append(1) or probe(*a))
    for i in range(40):
        case = random_case(rng, ties, path)
        dtype, tolerance = (np.float64, 1e-10) if i % 2 else (np.float32, 1e-5)
        with cl.backend.use("numba"):
            fused = run(case, dtype, fused=True)
        with cl.backend.use("numpy"):
            unfused = run(case, dtype, fused=False)
        expected = run_torch(case, fused["probe"])
        for key in ("out", "x", "w", "b"):
            if expected[key] is None:
                assert fused[key] is None
                continue
            assert relative_error(fused[key], unfused[key]) < tolerance, (i, key, "vs unfused")
            assert relative_error(fused[key], expected[key]) < tolerance, (i, key, "vs torch")
    assert len(called) == 40  # every case took the fused path


def lenet_block() -> nn.Sequential:
    cl.nn.init.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))


@pytest.mark.skipif(not NUMBA, reason="numba not installed")
def test_sequential_fuses_only_unwatched_blocks(monkeypatch):
    calls = []
    original = conv_module._conv2d_relu_max_pool2d
    monkeypatch.setattr(conv_module, "_conv2d_relu_max_pool2d", lambda *a: calls.append(1) or original(*a))
    x = np.random.default_rng(1).standard_normal((3, 1, 12, 12)).astype(np.float32)
    block = lenet_block()
    with cl.backend.use("numba"):
        fused = block(x).data
        assert len(calls) == 1
        seen = []
        block[1].register_forward_hook(lambda module, args, output: seen.append(output.shape))
        watched = block(x).data
    assert len(calls) == 1 and seen == [(3, 6, 12, 12)]
    np.testing.assert_allclose(fused, watched, rtol=1e-6, atol=1e-6)
    assert not any(isinstance(m, nn.MaxPool2d) and not m._is_2x2_tiles() for m in block)
    assert not nn.MaxPool2d(3)._is_2x2_tiles() and not nn.MaxPool2d(2, ceil_mode=True)._is_2x2_tiles()


@pytest.mark.skipif(not NUMBA, reason="numba not installed")
def test_fused_block_nan_like_torch():
    """A NaN in the input makes NaN outputs exactly where PyTorch's (NaN wins the max, ReLU keeps it)."""
    rng = np.random.default_rng(3)
    for i in range(20):
        case = random_case(rng, ties=True, path="batch-inner" if i % 2 else "direct")
        x = case["x"]
        x.reshape(-1)[rng.integers(0, x.size, size=2)] = np.nan
        with cl.backend.use("numba"):
            fused = conv_module._conv2d_relu_max_pool2d(
                cl.tensor(x, requires_grad=True), case["w"], case["b"], **case["kwargs"]
            ).data
        k = dict(case["kwargs"])
        mode = k.pop("padding_mode")
        xt = torch.from_numpy(x)
        if mode != "zeros":
            xt = TF.pad(xt, [p for p in reversed(k["padding"]) for _ in range(2)], mode=mode)
            k["padding"] = 0
        b = None if case["b"] is None else torch.from_numpy(case["b"])
        expected = TF.max_pool2d(TF.relu(TF.conv2d(xt, torch.from_numpy(case["w"]), b, **k)), 2).numpy()
        np.testing.assert_array_equal(np.isnan(fused), np.isnan(expected))
        finite = ~np.isnan(expected)
        np.testing.assert_allclose(fused[finite], expected[finite], rtol=1e-10, atol=1e-10)

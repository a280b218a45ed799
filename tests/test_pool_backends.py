"""Tiled 2-D pooling on channels-last arrays under every backend, and the fused ReLU -> max pool.

Convolutions hand pooling NCHW-shaped views of NHWC memory; with the numba backend a
tiled pool (kernel == stride, no padding) of such an array runs in the ``tiles`` engine
(compiled kernels), elsewhere in the reference engine. Every seeded random case runs
through each backend, channels-last and standard layouts, float32 and float64, with
integer-valued inputs half the time (ties: PyTorch's first-maximum rule), against
PyTorch (values and input gradients) and against each other; ``cl.backend.record()``
checks which engine ran.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
from conftest import relative_error, torch

import convlens as cl
from convlens import functional as F
from convlens import nn
from convlens.engines.tuning import TUNING

BACKENDS = ["reference", "numpy"] + (["numba"] if cl.backend.numba_available() else [])
# float32: a window's sum and division round differently in each implementation; 4 ulps
# (2**-23 each, relative) leaves room for that and for nothing more
TOL = {np.float64: 1e-13, np.float32: 5e-7}
CASES = 60
WORST: dict[str, float] = {}


def record(name: str, actual, expected, tol: float) -> None:
    err = relative_error(np.asarray(actual, np.float64), np.asarray(expected, np.float64))
    WORST[name] = max(WORST.get(name, 0.0), err)
    assert err <= tol, f"{name}: relative error {err:.3g} > {tol:.3g}"


def channels_last(x: np.ndarray) -> np.ndarray:
    """The same values as an NCHW-shaped view of NHWC memory."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def random_case(rng, dtype):
    kh, kw = (int(k) for k in rng.integers(1, 4, 2))
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 9))
    h, w = (
        kh * int(rng.integers(1, 5)) + int(rng.integers(0, kh)),
        kw * int(rng.integers(1, 5)) + int(rng.integers(0, kw)),
    )
    if rng.random() < 0.5:  # ties, and a zero background as after a ReLU
        x = rng.integers(-2, 3, size=(n, c, h, w)).astype(dtype)
    else:
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
    g = rng.standard_normal((n, c, h // kh, w // kw)).astype(dtype)
    return x, g, (kh, kw)


def is_channels_last(x: np.ndarray) -> bool:
    """NHWC memory that is not also NCHW memory (one channel, or a 1x1 plane, is both)."""
    return not x.flags.c_contiguous and x.transpose(0, 2, 3, 1).flags.c_contiguous


def expected_engine(backend: str, x: np.ndarray) -> str:
    """The engine the backend must choose for a tiled 2-D pool of ``x``."""
    return "tiles" if backend == "numba" and is_channels_last(x) else "reference"


def ours(kind: str, x: np.ndarray, g: np.ndarray, kernel, relu: bool = False, backend: str | None = None):
    """(output, input gradient) from convlens; with ``backend``, also checks which engine ran."""
    t = cl.tensor(x, requires_grad=True)
    t.data = x  # keep the memory layout (cl.tensor copies in C order)
    with cl.backend.record() as ran:
        if kind == "max":
            out = F.relu_max_pool2d(t, kernel) if relu else F.max_pool2d(t, kernel)
        else:
            out = F.avg_pool2d(t, kernel)
    out.backward(g)
    if backend is not None:
        assert ran == [(f"{kind}_pool", expected_engine(backend, x))], (backend, x.strides, ran)
    return out.data, t.grad


def theirs(kind: str, x: np.ndarray, g: np.ndarray, kernel, relu: bool = False):
    t = torch.tensor(x, requires_grad=True)
    u = torch.relu(t) if relu else t
    out = (
        torch.nn.functional.max_pool2d(u, kernel)
        if kind == "max"
        else torch.nn.functional.avg_pool2d(u, kernel)
    )
    out.backward(torch.tensor(g))
    return out.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["max", "relu_max", "avg"])
def test_tiled_pools_match_torch_on_both_backends_and_layouts(kind, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{kind}-{np.dtype(dtype).name}".encode()))  # not hash():
    # str hashes change per process (PYTHONHASHSEED), which made these cases differ every run
    relu = kind == "relu_max"
    op = "avg" if kind == "avg" else "max"
    for _ in range(CASES):
        x, g, kernel = random_case(rng, dtype)
        expected_out, expected_grad = theirs(op, x, g, kernel, relu)
        results = []
        for name in BACKENDS:
            for layout in (channels_last, np.ascontiguousarray):
                with cl.backend.use(name):
                    out, grad = ours(op, layout(x), layout(g), kernel, relu, backend=name)
                assert out.dtype == dtype and grad.dtype == dtype and grad.shape == x.shape
                record(f"{kind} {np.dtype(dtype).name} out", out, expected_out, TOL[dtype])
                record(f"{kind} {np.dtype(dtype).name} grad", grad, expected_grad, TOL[dtype])
                results.append((out, grad))
        for out, grad in results[1:]:  # the max picks the same element everywhere: exact
            if op == "max":
                assert np.array_equal(out, results[0][0]) and np.array_equal(grad, results[0][1])


@pytest.mark.parametrize("relu", [False, True])
def test_2x2_kernels_for_few_and_many_channels(relu):
    """The 2x2 kernels (taps in registers; per-element backward below
    ``TUNING.pool_per_element_below`` channels, the generic backward from there on)
    against PyTorch, exactly, with ties, NaN and infinities. Every case runs both
    backward kernels, by moving the threshold."""
    rng = np.random.default_rng(7 + relu)
    for case in range(24):
        dtype = (np.float32, np.float64)[case % 2]
        n, c = int(rng.integers(1, 4)), int(rng.choice([1, 3, 6, 8, 15, 16, 17, 24]))
        h, w = 2 * int(rng.integers(1, 5)) + int(rng.integers(0, 2)), 2 * int(rng.integers(1, 5))
        x = rng.integers(-2, 3, size=(n, c, h, w)).astype(dtype)
        if case % 3 == 0:  # (the fused ReLU's gradient at a NaN maximum is 0, torch's passes)
            x.flat[rng.integers(0, x.size, 2)] = (-np.inf, np.inf) if relu else (np.nan, -np.inf)
        g = rng.standard_normal((n, c, h // 2, w // 2)).astype(dtype)
        expected_out, expected_grad = theirs("max", x, g, (2, 2), relu)
        for name, below in itertools.product(BACKENDS, (0, 1 << 30)):
            with cl.backend.use(name), TUNING.override(pool_per_element_below=below):
                out, grad = ours("max", channels_last(x), channels_last(g), (2, 2), relu, backend=name)
            assert np.array_equal(out, expected_out, equal_nan=True)
            assert not np.signbit(out[out == 0]).any()
            assert np.array_equal(grad, expected_grad, equal_nan=True)


@pytest.mark.parametrize("name", BACKENDS)
def test_channels_last_stays_channels_last(name):
    x = channels_last(np.random.default_rng(0).standard_normal((2, 3, 8, 6)).astype(np.float32))
    t = cl.tensor(x, requires_grad=True)
    t.data = x
    with cl.backend.use(name), cl.backend.record() as ran:
        out = F.max_pool2d(t, 2)
        out.backward(np.ones(out.shape, np.float32))
    assert ran == [("max_pool", expected_engine(name, x))]
    if name == "numba":  # the tiles engine writes NHWC results
        assert out.data.transpose(0, 2, 3, 1).flags.c_contiguous
        assert t.grad.transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.parametrize("name", BACKENDS)
def test_a_maximum_beyond_tap_255_gets_the_gradient(name):
    """The tiles engine keeps the winning tap as uint8; a 17x17 tile (289 taps) whose maximum
    is its last element is left to the reference engine."""
    x = np.zeros((1, 3, 17, 17))
    x[:, :, 16, 16] = 1.0
    g = np.ones((1, 3, 1, 1))
    expected_out, expected_grad = theirs("max", x, g, (17, 17))
    with cl.backend.use(name):
        out, grad = ours("max", channels_last(x), channels_last(g), (17, 17))
    assert np.array_equal(out, expected_out) and np.array_equal(grad, expected_grad)


def test_nan_follows_torch_in_the_kernels():
    x = np.zeros((1, 2, 4, 4), np.float32)
    x[0, 0, 0, 1] = np.nan
    x[0, 1, 1, 1] = 5.0
    x[0, 1, 3, 3] = np.nan
    g = np.ones((1, 2, 2, 2), np.float32)
    expected_out, expected_grad = theirs("max", x, g, (2, 2))
    for name in BACKENDS:
        with cl.backend.use(name):
            out, grad = ours("max", channels_last(x), channels_last(g), (2, 2), backend=name)
        assert np.array_equal(np.isnan(out), np.isnan(expected_out))
        assert np.array_equal(np.nan_to_num(out), np.nan_to_num(expected_out))
        assert np.array_equal(grad, expected_grad)


def _lenet_pair():
    cl.manual_seed(3)
    model = cl.models.lenet5()
    from collections import OrderedDict

    from torch import nn as tnn

    twin = tnn.Sequential(
        OrderedDict(
            conv1=tnn.Conv2d(1, 6, 5, padding=2), relu1=tnn.ReLU(), pool1=tnn.MaxPool2d(2),
            conv2=tnn.Conv2d(6, 16, 5), relu2=tnn.ReLU(), pool2=tnn.MaxPool2d(2),
            flatten=tnn.Flatten(),
            fc1=tnn.Linear(400, 120), relu3=tnn.ReLU(),
            fc2=tnn.Linear(120, 84), relu4=tnn.ReLU(),
            fc3=tnn.Linear(84, 10),
        )
    )  # fmt: skip
    twin.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    return model.double(), twin.double()


@pytest.mark.parametrize("name", BACKENDS)
def test_lenet_matches_torch_on_every_backend(name):
    model, twin = _lenet_pair()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1, 28, 28))
    y = np.array([1, 4, 7])
    with cl.backend.use(name):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    ref = torch.nn.functional.cross_entropy(twin(torch.tensor(x)), torch.tensor(y))
    ref.backward()
    record("lenet loss", loss.data, ref.detach().numpy(), 1e-13)
    for (key, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        record("lenet grads", p.grad, q.grad.numpy(), 1e-11)
        assert p.grad.shape == q.grad.shape, key


def test_hooks_see_the_relu_output():
    model, _ = _lenet_pair()
    seen = []
    model.relu1.register_forward_hook(lambda m, inputs, output: seen.append(output.shape))
    model(np.zeros((1, 1, 28, 28)))  # float64 model
    assert seen == [(1, 6, 28, 28)]
    trailing = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    out = trailing(np.array([[-1.0, 2.0, 3.0]], np.float32))
    assert (out.data >= 0).all()


def test_report_worst_errors():
    print("\n[test_pool_backends] worst relative errors:", {k: f"{v:.2g}" for k, v in sorted(WORST.items())})

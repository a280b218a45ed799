"""How an engine is chosen: the order, the thresholds, ``force``, the reference backend.

The engines' results are tested in test_conv_backends.py and test_fused.py; here, which
engine runs where (``cl.backend.record``), that the backward never chooses again, that
forcing an engine where it does not apply raises a clear ValueError, that the reference
backend runs reference engines only and passes the oracle tests, and that thresholds move
only through ``TUNING.override``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convlens as cl
from convlens import functional as F
from convlens.engines.tuning import TUNING

NUMBA = cl.backend.numba_available()
needs_numba = pytest.mark.skipif(not NUMBA, reason="numba not installed")
F32 = np.float32


def chosen(x: np.ndarray, w: np.ndarray, **kwargs) -> list[tuple[str, str]]:
    """The engines a forward and backward of ``conv{d}d`` ran (the backward chooses nothing)."""
    op = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.ndim]
    with cl.backend.record() as ran:
        xt = cl.tensor(x, requires_grad=True)
        out = op(xt, cl.tensor(w, requires_grad=True), **kwargs)
        forward_only = list(ran)
        out.backward(np.ones(out.shape, out.dtype))
    assert ran == forward_only, "the backward chose an engine again"
    return ran


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs", "numba_engine", "numpy_engine"),
    [
        ((64, 1, 28, 28), (6, 1, 5, 5), {"padding": 2}, "direct", "tap-major"),  # LeNet's first layer
        ((64, 6, 14, 14), (16, 6, 5, 5), {}, "batch-inner", "batch-inner"),  # LeNet's second layer
        ((1, 6, 14, 14), (16, 6, 5, 5), {}, "tap-major", "tap-major"),  # batch 1: not batch-inner
        ((2, 3, 40, 40), (16, 3, 9, 9), {"padding": 4}, "fft", "fft"),  # 81 taps
        ((2, 3, 40, 40), (16, 3, 7, 7), {}, "fft", "fft"),  # 49 taps
        ((2, 3, 40, 40), (16, 3, 7, 7), {"stride": 2}, "tap-major", "tap-major"),  # strided: no FFT
        ((2, 32, 20, 20), (32, 32, 3, 3), {}, "channel-minor", "channel-minor"),  # many channels
        ((2, 32, 20, 20), (32, 1, 3, 3), {"groups": 32}, "tap-major", "tap-major"),  # depthwise
        ((2, 4, 8, 8, 8), (4, 4, 3, 3, 3), {}, "batch-inner", "batch-inner"),  # 3-D, short rows
        ((2, 2, 100), (4, 2, 5), {}, "tap-major", "tap-major"),  # 1-D, long rows
    ],
)
def test_the_automatic_choice(x_shape, w_shape, kwargs, numba_engine, numpy_engine):
    x, w = np.zeros(x_shape, F32), np.zeros(w_shape, F32)
    with cl.backend.use("numpy"):
        assert chosen(x, w, **kwargs) == [("conv", numpy_engine)]
    if NUMBA:
        with cl.backend.use("numba"):
            assert chosen(x, w, **kwargs) == [("conv", numba_engine)]
    with cl.backend.use("reference"):
        assert chosen(x, w, **kwargs) == [("conv", "reference")]


def test_thresholds_move_through_the_tuning_object():
    x, w = np.zeros((2, 3, 12, 12), F32), np.zeros((4, 3, 3, 3), F32)
    with cl.backend.use("numpy"):
        assert chosen(x, w) == [("conv", "batch-inner")]
        with TUNING.override(fft_min_taps=9):
            assert chosen(x, w) == [("conv", "fft")]
        with TUNING.override(batch_inner_below=0):
            assert chosen(x, w) == [("conv", "tap-major")]
        with TUNING.override(batch_inner_below=0, tap_major_below=0):
            assert chosen(x, w) == [("conv", "channel-minor")]
        assert chosen(x, w) == [("conv", "batch-inner")]
    unknown = r"Tuning.override: unknown thresholds.*Received: \['fft_taps'\]"
    with pytest.raises(ValueError, match=unknown), TUNING.override(fft_taps=1):
        pass


@pytest.mark.parametrize(
    ("engine", "x_shape", "w_shape", "kwargs", "reason"),
    [
        ("fft", (1, 1, 8, 8), (1, 1, 3, 3), {"stride": 2}, r"it needs stride 1\. Received: stride=\(2, 2\)"),
        ("direct", (1, 2, 8, 8), (2, 1, 3, 3), {"groups": 2}, r"it needs groups=1\. Received: groups=2"),
        ("direct", (1, 1, 8), (1, 1, 3), {}, r"it needs a 2-D convolution\. Received: kernel=\(3,\)"),
        ("direct", (1, 1, 8, 8), (1, 1, 3, 3), {"stride": (1, 2)}, r"it needs stride 1"),
    ],
)
def test_forcing_an_engine_where_it_does_not_apply_raises(engine, x_shape, w_shape, kwargs, reason):
    x, w = np.ones(x_shape), np.ones(w_shape)
    op = {3: F.conv1d, 4: F.conv2d}[x.ndim]
    name = op.__name__
    with (
        cl.backend.force(engine),
        pytest.raises(ValueError, match=rf"{name}: engine '{engine}' does not apply"),
    ):
        op(x, w, **kwargs)
    with cl.backend.force(engine), pytest.raises(ValueError, match=reason):
        op(x, w, **kwargs)


def test_force_unknown_engine_and_other_families():
    unknown = r"backend.force: unknown engine.*Received: name='winograd'"
    with pytest.raises(ValueError, match=unknown), cl.backend.force("winograd"):
        pass
    with cl.backend.force("channel-minor"), cl.backend.record() as ran:  # transposed: its own family
        F.conv_transpose2d(np.ones((1, 2, 4, 4)), np.ones((2, 3, 3, 3)))
        F.conv2d(np.ones((1, 2, 4, 4)), np.ones((3, 2, 3, 3)))
    assert ran == [("conv_transpose", "reference"), ("conv", "channel-minor")]


@needs_numba
def test_numba_backend_takes_float16_as_numpy_does():
    """float16: the compiled kernels do not apply, the NumPy engines compute it."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((4, 1, 28, 28)).astype(np.float16), rng.standard_normal((3, 1, 3, 3))
    w = w.astype(np.float16)
    results = {}
    for backend in ("numpy", "numba"):
        with cl.backend.use(backend), cl.backend.record() as ran:
            xt = cl.tensor(x, requires_grad=True)
            out = F.conv2d(xt, w, padding=1)
            out.backward(np.ones(out.shape, np.float16))
        assert out.dtype == np.float16 and xt.grad.dtype == np.float16
        assert ran == [("conv", "tap-major")]
        results[backend] = (out.data, xt.grad)
    for ours, theirs in zip(results["numba"], results["numpy"], strict=True):
        np.testing.assert_array_equal(ours, theirs)
    with (
        cl.backend.force("direct"),
        pytest.raises(ValueError, match=r"float32 or float64\. Received: dtype=float16"),
    ):
        F.conv2d(x, w)


def test_reference_backend_everywhere_in_a_model():
    cl.nn.init.manual_seed(0)
    model = cl.nn.fuse(cl.models.lenet5())
    x = np.random.default_rng(1).standard_normal((4, 1, 28, 28)).astype(F32)
    with cl.backend.use("reference"), cl.backend.record() as ran:
        F.cross_entropy(model(x), np.arange(4)).backward()
    assert ran and {name for _, name in ran} == {"reference"}
    assert {family for family, _ in ran} >= {"conv", "conv_relu_max_pool2d"}


def test_reference_backend_passes_the_oracle_tests():
    """test_conv.py (PyTorch, the loop oracle, central differences) under CONVLENS_BACKEND=reference;
    its fixture asserts that only reference engines ran."""
    tests = Path(__file__).parent
    env = {**os.environ, "CONVLENS_BACKEND": "reference"}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        str(tests / "test_conv.py"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tests.parent, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.parametrize("backend", ["numpy", "numba"] if NUMBA else ["numpy"])
def test_an_empty_batch_takes_the_reference_engine_and_forcing_says_why(backend):
    rng = np.random.default_rng(7)
    x, w = np.zeros((0, 1, 28, 28), F32), rng.standard_normal((6, 1, 5, 5)).astype(F32)
    with cl.backend.use(backend):
        assert chosen(x, w, padding=2) == [("conv", "reference")]
        with (
            cl.backend.force("direct" if backend == "numba" else "tap-major"),
            pytest.raises(
                ValueError, match=r"does not apply to empty arrays\. Received: \[\(0, 1, 28, 28\)\]"
            ),
        ):
            F.conv2d(x, w, padding=2)
    out = F.conv2d(cl.tensor(x, requires_grad=True), cl.tensor(w, requires_grad=True), padding=2)
    assert out.shape == (0, 6, 28, 28)

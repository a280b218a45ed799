"""cl.signal against scipy.signal (method="direct") on hundreds of random N-d shapes."""

from __future__ import annotations

import numpy as np
import pytest

import convlens as cl

scipy_signal = pytest.importorskip("scipy.signal")

MODES = ("full", "same", "valid")
CASES = 150  # random shape pairs per dimensionality, each checked in 3 modes x 2 ops


def random_pair(rng, ndim, dtype=np.float64):
    x_shape = tuple(int(n) for n in rng.integers(1, 9 if ndim < 3 else 6, ndim))
    h_shape = tuple(int(n) for n in rng.integers(1, 6 if ndim < 3 else 4, ndim))
    x, h = rng.standard_normal(x_shape), rng.standard_normal(h_shape)
    if dtype == np.complex128:
        x, h = x + 1j * rng.standard_normal(x_shape), h - 1j * rng.standard_normal(h_shape)
    return x.astype(dtype), h.astype(dtype)


def check(ours, theirs, x, h, mode):
    try:
        expected = theirs(x, h, mode=mode, method="direct")
    except ValueError:
        with pytest.raises(ValueError, match="valid"):
            ours(x, h, mode=mode)
        return 0.0
    got = ours(x, h, mode=mode)
    assert isinstance(got, np.ndarray)
    assert got.shape == expected.shape, (x.shape, h.shape, mode)
    assert got.dtype == expected.dtype
    return float(np.max(np.abs(got - expected), initial=0.0) / max(1.0, np.max(np.abs(expected), initial=0)))


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_matches_scipy_on_random_shapes(op, ndim):
    rng = np.random.default_rng(100 * ndim + len(op))
    worst = 0.0
    for i in range(CASES):
        dtype = np.complex128 if i % 10 == 0 else np.float64
        x, h = random_pair(rng, ndim, dtype)
        if i % 2:
            x, h = h, x  # the kernel is often the larger one
        for mode in MODES:
            worst = max(worst, check(getattr(cl.signal, op), getattr(scipy_signal, op), x, h, mode))
    assert worst < 1e-12, worst


@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_even_kernels_same_mode_centring(op):
    rng = np.random.default_rng(5)
    for n, m in [(7, 4), (6, 6), (3, 6), (4, 7), (2, 5), (5, 2), (1, 4)]:
        for ndim in (1, 2):
            x, h = rng.standard_normal((n,) * ndim), rng.standard_normal((m,) * ndim)
            assert check(getattr(cl.signal, op), getattr(scipy_signal, op), x, h, "same") < 1e-12


@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_dtypes_follow_scipy(op):
    rng = np.random.default_rng(6)
    ints = rng.integers(-5, 5, (5, 6)), rng.integers(-5, 5, (3, 2))
    for x, h in [
        ints,
        (ints[0].astype(np.float32), ints[1].astype(np.float32)),
        (ints[0].astype(np.float32), ints[1].astype(np.float64)),
    ]:
        for mode in MODES:
            assert check(getattr(cl.signal, op), getattr(scipy_signal, op), x, h, mode) < 1e-6


def test_large_input_takes_the_per_tap_path_and_agrees():
    rng = np.random.default_rng(7)
    x, h = rng.standard_normal((300, 250)), rng.standard_normal((9, 8))
    for mode in MODES:
        assert check(cl.signal.correlate, scipy_signal.correlate, x, h, mode) < 1e-12
    assert check(cl.signal.convolve, scipy_signal.convolve, x, h, "same") < 1e-12


def test_convolution_flips_the_kernel():
    rng = np.random.default_rng(8)
    x, h = rng.standard_normal((6, 5, 4)), rng.standard_normal((3, 2, 3))
    for mode in MODES:
        np.testing.assert_allclose(
            cl.signal.convolve(x, h, mode), cl.signal.correlate(x, h[::-1, ::-1, ::-1], mode)
        )


def test_zero_dimensional_and_errors():
    assert cl.signal.correlate(np.array(2.0), np.array(3.0)) == 6.0
    with pytest.raises(ValueError, match="same number of dimensions"):
        cl.signal.convolve(np.ones((3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="mode"):
        cl.signal.correlate(np.ones(3), np.ones(2), mode="circular")
    with pytest.raises(ValueError, match="at least as large"):
        cl.signal.correlate(np.ones((2, 5)), np.ones((3, 3)), mode="valid")
    with pytest.raises(TypeError, match="numeric"):
        cl.signal.convolve(np.array(["a"]), np.ones(1))


def test_output_size():
    assert cl.signal.output_size(5, 3, padding=1, stride=2) == 3  # the lecture's output-size example
    assert cl.signal.output_size(28, 5, padding=2) == 28
    assert cl.signal.output_size(32, 5) == 28
    assert cl.signal.output_size(7, 3, dilation=2) == 3
    rng = np.random.default_rng(9)
    for _ in range(200):
        n, k, p, s, d = (
            int(v)
            for v in (
                rng.integers(1, 30),
                rng.integers(1, 6),
                rng.integers(0, 3),
                rng.integers(1, 4),
                rng.integers(1, 3),
            )
        )
        if d * (k - 1) + 1 > n + 2 * p:
            with pytest.raises(ValueError, match="larger than the padded input"):
                cl.signal.output_size(n, k, p, s, d)
            continue
        windows = len(range(0, n + 2 * p - d * (k - 1), s))  # window starts, counted directly
        assert cl.signal.output_size(n, k, p, s, d) == windows
    for bad in ({"kernel": 0}, {"stride": 0}, {"padding": -1}, {"dilation": 0}):
        with pytest.raises(ValueError, match="output_size"):
            cl.signal.output_size(**({"n": 5, "kernel": 3} | bad))
    with pytest.raises(TypeError, match="output_size: kernel must be an int"):
        cl.signal.output_size(5, 2.5)

"""F.pad and the array-level spatial padding against PyTorch, adjointness and central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import gradcheck, relative_error

import convlens as cl
from convlens import functional as F
from convlens.functional.pad import check_spatial_padding, pad_spatial, pad_spatial_backward

MODES = ("constant", "reflect", "replicate", "circular")
CONV_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def random_pad_case(rng: np.random.Generator, mode: str, allow_negative: bool = True):
    """A random input shape and pad tuple that PyTorch accepts for ``mode``."""
    while True:
        if mode == "constant":
            ndim = int(rng.integers(1, 5))
            pairs = int(rng.integers(1, ndim + 1))
        else:
            pairs = int(rng.integers(1, 4))
            ndim = pairs + int(rng.integers(1, 3))
        shape = tuple(int(n) for n in rng.integers(1, 6, size=ndim))
        low = -2 if allow_negative else 0
        pad = tuple(int(p) for p in rng.integers(low, 5, size=2 * pairs))
        try:
            TF.pad(torch.zeros(shape), pad, mode=mode)
        except (RuntimeError, NotImplementedError):
            continue
        if mode == "circular" and wraps_beyond_crop(shape, pad):
            with pytest.raises(
                ValueError, match="pad: (circular padding may wrap|the output would have size)"
            ):
                F.pad(np.zeros(shape), pad, mode=mode)
            continue  # PyTorch reads uninitialised memory here
        return shape, pad


def wraps_beyond_crop(shape, pad) -> bool:
    """Circular padding crops first, then wraps: an amount larger than the cropped size."""
    for i in range(len(pad) // 2):
        before, after = pad[2 * i], pad[2 * i + 1]
        cropped = shape[-1 - i] + min(before, 0) + min(after, 0)
        if max(before, after) > cropped:
            return True
    return False


def run_both(shape, pad, mode, value, dtype, rng):
    """Relative errors (forward, gradient) of F.pad against PyTorch on one random case."""
    x = rng.standard_normal(shape).astype(dtype)
    tensor = cl.tensor(x, requires_grad=True)
    out = F.pad(tensor, pad, mode=mode, value=value)
    probe = rng.standard_normal(out.shape).astype(dtype)
    out.backward(probe)
    assert out.dtype == dtype and tensor.grad.dtype == dtype
    xt = torch.tensor(x, requires_grad=True)
    theirs = TF.pad(xt, pad, mode=mode, value=value) if mode == "constant" else TF.pad(xt, pad, mode=mode)
    theirs.backward(torch.tensor(probe))
    if out.data.size == 0:
        # PyTorch's reflect/replicate backward leaves its gradient uninitialised for an empty output
        assert not np.any(tensor.grad)
        return relative_error(out.data, theirs.detach().numpy()), 0.0
    return relative_error(out.data, theirs.detach().numpy()), relative_error(tensor.grad, xt.grad.numpy())


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pad_matches_torch(mode, dtype):
    """Forward and gradient, random shapes, pad tuples with negative (cropping) amounts."""
    rng = np.random.default_rng([sum(map(ord, mode)), np.dtype(dtype).itemsize])
    worst = 0.0
    for _ in range(80):
        shape, pad = random_pad_case(rng, mode)
        value = float(rng.standard_normal()) if mode == "constant" and rng.random() < 0.5 else 0.0
        worst = max(worst, *run_both(shape, pad, mode, value, dtype, rng))
    assert worst < (1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_pad_gradcheck(mode):
    rng = np.random.default_rng(len(mode))
    for _ in range(6):
        shape, pad = random_pad_case(rng, mode)
        gradcheck(lambda x, pad=pad: F.pad(x, pad, mode=mode), rng.standard_normal(shape))


@pytest.mark.parametrize("mode", list(CONV_MODES))
def test_pad_spatial_matches_torch_and_is_adjoint(mode):
    """The helper convolution uses: trailing axes, non-negative pairs, and its gradient."""
    rng = np.random.default_rng(sum(map(ord, mode)))
    for _ in range(60):
        d = int(rng.integers(1, 4))
        sizes = tuple(int(n) for n in rng.integers(1, 6, size=d))
        limit = {"zeros": 4, "reflect": 0, "replicate": 4, "circular": 1}[mode]
        pads = [
            tuple(int(p) for p in rng.integers(0, n + limit if mode != "zeros" else 4, size=2)) for n in sizes
        ]
        check_spatial_padding("test", sizes, pads, mode)
        x = rng.standard_normal((2, 3, *sizes))
        padded = pad_spatial(x, pads, mode)
        flat = tuple(v for pair in reversed(pads) for v in pair)
        expected = TF.pad(torch.tensor(x), flat, mode=CONV_MODES[mode]).numpy()
        assert relative_error(padded, expected) == 0.0
        probe = rng.standard_normal(padded.shape)
        back = pad_spatial_backward(probe, pads, mode)
        assert back.shape == x.shape
        # adjoint: <P x, g> == <x, P^T g>
        assert abs(np.sum(padded * probe) - np.sum(x * back)) < 1e-10 * max(1.0, abs(np.sum(padded * probe)))


def test_pad_spatial_keeps_dtype_and_skips_zero_pads():
    x = np.ones((1, 2, 3), dtype=np.float32)
    assert pad_spatial(x, [(0, 0)], "reflect") is x
    assert pad_spatial(x, [(1, 2)], "circular").dtype == np.float32
    assert pad_spatial_backward(np.ones((1, 2, 6), np.float32), [(1, 2)], "replicate").dtype == np.float32


def test_pad_examples():
    x = cl.tensor(np.arange(1.0, 5.0).reshape(1, 1, 4))
    np.testing.assert_array_equal(F.pad(x, (2, 2), mode="reflect").data[0, 0], [3, 2, 1, 2, 3, 4, 3, 2])
    np.testing.assert_array_equal(F.pad(x, (2, 2), mode="replicate").data[0, 0], [1, 1, 1, 2, 3, 4, 4, 4])
    np.testing.assert_array_equal(F.pad(x, (2, 2), mode="circular").data[0, 0], [3, 4, 1, 2, 3, 4, 1, 2])
    np.testing.assert_array_equal(F.pad(x, (1, -2), value=7.0).data[0, 0], [7, 1, 2])
    # positive amounts pad from the ORIGINAL input, then negative ones crop (PyTorch's order)
    np.testing.assert_array_equal(F.pad(x, (-2, 3), mode="reflect").data[0, 0], [3, 4, 3, 2, 1])
    # circular crops first and wraps what is left
    np.testing.assert_array_equal(F.pad(x, (-1, 2), mode="circular").data[0, 0], [2, 3, 4, 2, 3])
    assert F.pad(np.zeros((2, 3)), (1, 1, 2, 0)).shape == (4, 5)


BAD_PAD = [
    ((2, 5), (1,), {}, ValueError, r"pad: pad must have an even length"),
    (
        (2, 5),
        (1, 1, 1, 1, 1, 1),
        {},
        ValueError,
        r"pad: pad has 3 \(before, after\) pairs but the input has only 2",
    ),
    ((2, 5), (1.5, 1), {}, TypeError, r"pad: pad must be a tuple of ints"),
    ((2, 5), 1, {}, TypeError, r"pad: pad must be a tuple of ints"),
    ((2, 5), (1, 1), {"mode": "mirror"}, ValueError, r"pad: mode must be 'constant', 'reflect'"),
    (
        (2, 5),
        (5, 0),
        {"mode": "reflect"},
        ValueError,
        r"pad: reflect padding must be smaller than the input size",
    ),
    ((2, 5), (0, 6), {"mode": "circular"}, ValueError, r"pad: circular padding may wrap around at most once"),
    ((5,), (1, 1), {"mode": "reflect"}, ValueError, r"pad: mode='reflect' pads the last 1, 2 or 3 dims"),
    (
        (2, 5),
        (1, 1, 1, 1),
        {"mode": "replicate"},
        ValueError,
        r"pad: mode='replicate' pads the last 1, 2 or 3",
    ),
    ((1, 2, 3, 4, 5, 6), (1, 1), {"mode": "circular"}, ValueError, r"pad: mode='circular' pads the last"),
    (
        (2, 5),
        (1, 1),
        {"mode": "reflect", "value": 1.0},
        ValueError,
        r"pad: mode='reflect' takes no fill value",
    ),
    ((2, 5), (-3, -3), {}, ValueError, r"pad: the output would have size -1 along a dim of size 5"),
    ((2, 5), (-3, -2), {"mode": "replicate"}, ValueError, r"pad: the output would have size 0"),
]


@pytest.mark.parametrize(("shape", "pad", "kwargs", "error", "match"), BAD_PAD)
def test_bad_pad_raises_clear_errors(shape, pad, kwargs, error, match):
    with pytest.raises(error, match=match):
        F.pad(np.zeros(shape), pad, **kwargs)


def test_torch_rejects_the_same_bad_pads():
    """Each case above is one PyTorch rejects too (so our errors are not stricter)."""
    for shape, pad, kwargs, _, _ in BAD_PAD:
        if not all(isinstance(p, int) for p in np.atleast_1d(pad)) or kwargs.get("mode") == "mirror":
            continue
        with pytest.raises((RuntimeError, NotImplementedError, ValueError, TypeError)):
            TF.pad(torch.zeros(shape), tuple(np.atleast_1d(pad).tolist()), **kwargs)

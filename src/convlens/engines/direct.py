"""numba's direct convolution: no columns, the padded input read in place (2-D, stride 1).

For one to three input channels (LeNet's first layer, RGB inputs) im2col would copy the
input K times (25 for 5x5) only for a thin GEMM to stream the copy back, while the input
itself is small. The kernels in ``_numba/conv.py`` read the padded input in place, and
the backward keeps that padded input instead of the columns. It needs numba, a 2-D
convolution with groups 1, stride 1, and float32 or float64; the automatic choice takes
it up to ``TUNING.direct_max_channels`` input channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..functional.conv import ConvGeometry, ConvImpl
from ..functional.pad import pad_spatial, pad_spatial_backward
from ._buffers import reusable
from ._columns import COMPILED_DTYPES, interior, padded_size
from .tuning import TUNING


def why_not(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> str | None:
    if len(g.kernel) != 2:
        return f"it needs a 2-D convolution. Received: kernel={g.kernel}"
    if g.groups != 1:
        return f"it needs groups=1. Received: groups={g.groups}"
    if any(s != 1 for s in g.stride):
        return f"it needs stride 1. Received: stride={g.stride}"
    if x.dtype not in COMPILED_DTYPES:
        return f"it needs float32 or float64. Received: dtype={x.dtype}"
    return None


def suits(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> bool:
    return w.shape[1] <= TUNING.direct_max_channels


@dataclass(frozen=True)
class DirectSaved:
    """The backward's input: the padded input flattened per channel ``(N, C, H_p * W_p + tail)``."""

    flat: np.ndarray
    padded_size: tuple[int, int]


def flat_padded(x: np.ndarray, g: ConvGeometry) -> DirectSaved:
    """Padded images flattened row by row, plus the zeros the last row's taps reach past its end."""
    n, c = x.shape[:2]
    hp, wp = padded_size(x.shape[2:], g.padding)
    flat = np.zeros((n, c, hp * wp + g.dilation[1] * (g.kernel[1] - 1)), x.dtype)
    image = flat[:, :, : hp * wp].reshape(n, c, hp, wp)
    if g.padding_mode == "zeros":
        image[(Ellipsis, *interior(g.padding, x.shape[2:]))] = x
    else:
        image[...] = pad_spatial(x, g.padding, g.padding_mode)
    return DirectSaved(flat, (hp, wp))


def block_padded(a: np.ndarray, block: int) -> np.ndarray:
    """``a`` with zeros appended along axis 0 up to a multiple of ``block`` (the kernels' output blocks)."""
    extra = -a.shape[0] % block
    if not extra and a.flags.c_contiguous:
        return a
    return np.concatenate([a, np.zeros((extra, *a.shape[1:]), a.dtype)])


def forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, DirectSaved]:
    from ._numba.conv import FORWARD_BLOCK, direct_forward

    saved = flat_padded(x, g)
    out = reusable((x.shape[0], *g.out_size, w.shape[0]), x.dtype)  # channels-last, as the column engines
    bias = np.zeros(w.shape[0], x.dtype) if b is None else b
    weight, bias = block_padded(w, FORWARD_BLOCK), block_padded(bias, FORWARD_BLOCK)
    direct_forward(saved.flat, weight, bias, *g.dilation, saved.padded_size[1], out)
    return np.moveaxis(out, -1, 1), saved


_NOT_POOLED = np.zeros((0, 0, 0, 0), np.uint8)  # the kernels' "no pooling" argmax


def backward(
    grad: np.ndarray,
    w: np.ndarray,
    saved: DirectSaved,
    g: ConvGeometry,
    needs: Sequence[bool],
    pooled: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray | None, ...]:
    """Gradients of the direct convolution, or (``pooled = (out, arg)``) of relu(max_pool2d(conv, 2))."""
    from ._numba.conv import FORWARD_BLOCK, WEIGHT_GRAD_BLOCK, direct_input_grad, direct_weight_grad

    rows = np.ascontiguousarray(np.moveaxis(grad, 1, -1))  # (N, ho', wo', O): free when channels-last
    out, arg = (rows, _NOT_POOLED) if pooled is None else pooled
    (hp, wp), o, ho = saved.padded_size, w.shape[0], g.out_size[0]
    dx = dw = db = None
    if needs[0]:
        dflat = np.zeros_like(saved.flat)
        direct_input_grad(rows, arg, out, block_padded(w, FORWARD_BLOCK), *g.dilation, wp, ho, dflat)
        padded = dflat[:, :, : hp * wp].reshape(*saved.flat.shape[:2], hp, wp)
        dx = pad_spatial_backward(padded, g.padding, g.padding_mode)
    if needs[1] or needs[2]:
        blocks = o + -o % WEIGHT_GRAD_BLOCK
        dw, db = np.zeros((blocks, *w.shape[1:]), w.dtype), np.zeros(blocks, w.dtype)
        direct_weight_grad(saved.flat, rows, arg, out, *g.dilation, wp, ho, dw, db)
        dw, db = dw[:o], db[:o]
    return dx, dw if needs[1] else None, db if needs[2] else None


backend.register(
    backend.Engine(
        "conv", "direct", ConvImpl(forward, backward), why_not=why_not, suits=suits, needs_numba=True
    )
)

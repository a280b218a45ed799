"""The tap-major column engine: im2col + GEMM with one column row per (input channel, kernel tap).

Columns ``(G, C/G * K, N * P)``, row (c, tap), column (n, position), as the reference
engine's, but filled from the input in its own memory order (channels-last or not) and
multiplied straight into a channels-last output. With few channels per group a row is a
long contiguous run of output positions, and the input gradient is one GEMM followed by
one strided add per kernel tap (numba's compiled col2im in 2-D). The automatic choice
takes it below ``TUNING.tap_major_below`` input channels per group; it computes any
convolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import backend
from ..functional._windows import tap_slices
from ..functional.conv import ConvGeometry, ConvImpl
from ..functional.pad import pad_spatial_backward
from ._buffers import reusable
from ._columns import (
    ColumnsSaved,
    channels_last_windows,
    compiled_col2im,
    forward_weight,
    gemm_channels_last,
    grad_rows,
    is_channels_last,
    padded_channels_last,
    padded_size,
    split,
    tap_major_weight_gradient,
    weight_matrix,
)
from .tuning import TUNING


def suits(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> bool:
    return w.shape[1] < TUNING.tap_major_below


def columns(x: np.ndarray, g: ConvGeometry, with_ones: bool) -> np.ndarray:
    """Tap-major im2col, plus a ones row for the bias: one strided copy from a window view.

    The copy reads runs along the last spatial axis of the input's own memory order.
    """
    d, groups, n, c = len(g.kernel), g.groups, x.shape[0], x.shape[1]
    cg, k, p = c // groups, math.prod(g.kernel), math.prod(g.out_size)
    windows = channels_last_windows(padded_channels_last(x, g, is_channels_last(x)), g)
    spatial, kernel = tuple(range(1, 1 + d)), tuple(range(2 + d, 2 + 2 * d))
    cols = reusable((groups, cg * k + with_ones, n * p), x.dtype)
    source = windows.transpose(1 + d, *kernel, 0, *spatial)  # (C, *kernel, N, *out)
    target = split(cols[:, : cg * k], (groups, cg, *g.kernel, n, *g.out_size))
    np.copyto(target, split(source, (groups, cg, *source.shape[1:])))
    if with_ones:
        cols[:, -1] = 1
    return cols


def forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, ColumnsSaved]:
    cols = columns(x, g, b is not None)
    wm = forward_weight(w, b, g.groups, tap_major=True)
    out = gemm_channels_last(cols.swapaxes(1, 2), wm, x.shape[0], g.out_size, w.shape[0])
    return out, ColumnsSaved(cols, b is not None, x.shape, compiled_col2im(x, g))


def col2im(dcols: np.ndarray, padded_shape: Sequence[int], g: ConvGeometry) -> np.ndarray:
    """NumPy col2im: one strided add per kernel tap into a ``(C, N, *Sp)`` buffer (returned as
    an ``(N, C, *Sp)`` view), whose rows are the contiguous targets of the column rows."""
    n, c = padded_shape[0], padded_shape[1]
    per_tap = dcols.reshape(c, math.prod(g.kernel), n, *g.out_size)
    grad = np.zeros((c, n, *padded_shape[2:]), dtype=dcols.dtype)
    for tap, offsets in enumerate(np.ndindex(*g.kernel)):
        cells = tap_slices(offsets, g.stride, g.dilation, g.out_size)
        grad[(slice(None), slice(None), *cells)] += per_tap[:, tap]
    return grad.swapaxes(0, 1)


def input_gradient(rows: np.ndarray, w: np.ndarray, g: ConvGeometry, saved: ColumnsSaved) -> np.ndarray:
    """One GEMM for all columns, then col2im (numba's in 2-D, else NumPy's) into the padded gradient."""
    dcols = np.matmul(weight_matrix(w, g.groups).swapaxes(1, 2), rows.swapaxes(1, 2))  # (G, Cg*K, NP)
    shape = saved.input_shape
    padded_shape = (*shape[:2], *padded_size(shape[2:], g.padding))
    if not saved.compiled:
        return col2im(dcols, padded_shape, g)
    from ._numba.conv import col2im_tap_major

    grad = np.zeros((padded_shape[1], padded_shape[0], *padded_shape[2:]), dtype=rows.dtype)
    col2im_tap_major(dcols.reshape(-1, dcols.shape[-1]), *g.kernel, *g.stride, *g.dilation, *g.out_size, grad)
    return grad.swapaxes(0, 1)


def backward(
    grad: np.ndarray, w: np.ndarray, saved: ColumnsSaved, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    rows = grad_rows(grad, g.groups)
    dx = dw = db = None
    if needs[0]:
        dx = pad_spatial_backward(input_gradient(rows, w, g, saved), g.padding, g.padding_mode)
    if needs[1] or needs[2]:
        dw, db = tap_major_weight_gradient(saved.cols, rows, w)
    return dx, dw if needs[1] else None, db if needs[2] else None


backend.register(backend.Engine("conv", "tap-major", ConvImpl(forward, backward), suits=suits))

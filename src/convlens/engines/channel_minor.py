"""The channel-minor column engine: im2col + GEMM with one column row per (sample, output position).

Columns ``(G, N * P, K * C/G)``, row (n, position), column (tap, c). With many channels
the runs of ``C`` channels of a channels-last image are long, and the input gradient is
one GEMM per tap (an ``(N*P, C)`` block) added at a strided offset into a channels-last
gradient; numba's compiled col2im (2-D, groups 1) does one GEMM for all taps per chunk
of samples instead. The automatic choice takes it where no other engine suits (many
channels per group); it computes any convolution.
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
    padded_channels_last,
    padded_size,
    row_chunks,
    split,
    tap_weights,
    weight_channels_last,
)
from .tuning import TUNING


def columns(x: np.ndarray, g: ConvGeometry, with_ones: bool) -> np.ndarray:
    """Channel-minor im2col, plus a ones column for the bias: one strided copy that reads runs of
    channels of a channels-last input."""
    d, groups, n, c = len(g.kernel), g.groups, x.shape[0], x.shape[1]
    cg, k, p = c // groups, math.prod(g.kernel), math.prod(g.out_size)
    windows = channels_last_windows(padded_channels_last(x, g, channels_last=True), g)
    spatial, kernel = tuple(range(1, 1 + d)), tuple(range(2 + d, 2 + 2 * d))
    cols = reusable((groups, n * p, k * cg + with_ones), x.dtype)  # (G, (n, y), (tap, c))
    source = windows.transpose(0, *spatial, *kernel, 1 + d)  # (N, *out, *kernel, C)
    source = np.moveaxis(split(source, (*source.shape[:-1], groups, cg)), -2, 0)
    np.copyto(split(cols[:, :, : k * cg], (groups, n, *g.out_size, *g.kernel, cg)), source)
    if with_ones:
        cols[:, :, -1] = 1
    return cols


def forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, ColumnsSaved]:
    cols = columns(x, g, b is not None)
    wm = forward_weight(w, b, g.groups, tap_major=False)
    out = gemm_channels_last(cols, wm, x.shape[0], g.out_size, w.shape[0])
    compiled = compiled_col2im(x, g) and g.groups == 1
    return out, ColumnsSaved(cols, b is not None, x.shape, compiled)


def input_gradient_by_tap(rows: np.ndarray, w: np.ndarray, g: ConvGeometry, input_shape) -> np.ndarray:
    """NumPy: per tap, ``rows @ w_tap`` added at the tap's strided offset.

    The padded gradient is channels-last ``(N, *Sp, G, C/G)`` so each add writes
    runs of ``C`` (``W_out * C`` for stride 1) contiguous cells.
    """
    n, c, groups = input_shape[0], input_shape[1], g.groups
    padded = padded_size(input_shape[2:], g.padding)
    grad = np.zeros((n, *padded, groups, c // groups), dtype=rows.dtype)
    block = np.empty((groups, rows.shape[1], c // groups), dtype=rows.dtype)
    per_tap = tap_weights(w, groups)
    for tap, offsets in enumerate(np.ndindex(*g.kernel)):
        np.matmul(rows, per_tap[tap], out=block)
        target = (slice(None), *tap_slices(offsets, g.stride, g.dilation, g.out_size))
        grad[target] += block.transpose(1, 0, 2).reshape(n, *g.out_size, groups, c // groups)
    return np.moveaxis(grad.reshape(n, *padded, c), -1, 1)


def input_gradient_numba(
    rows: np.ndarray, w: np.ndarray, g: ConvGeometry, input_shape: Sequence[int]
) -> np.ndarray:
    """numba (2-D, groups 1): per L2-sized chunk of samples, one GEMM for every tap's column
    gradient ``(n * P, K * C)``, then a compiled col2im into a channels-last padded gradient
    (NumPy's adds of runs of C channels are what the per-tap path spends its time on)."""
    from ._numba.conv import col2im_channel_minor

    n, c, p = input_shape[0], input_shape[1], math.prod(g.out_size)
    padded = np.zeros((n, *padded_size(input_shape[2:], g.padding), c), rows.dtype)
    weights = weight_channels_last(w, 1)[0]  # (O, K*C), (tap, c) order as the columns
    for part in row_chunks(n, p * weights.shape[1] * rows.itemsize, TUNING.chunk_bytes):
        dcols = reusable(((part.stop - part.start) * p, weights.shape[1]), rows.dtype)
        np.matmul(rows[0, part.start * p : part.stop * p], weights, out=dcols)
        col2im_channel_minor(dcols, *g.kernel, *g.stride, *g.dilation, *g.out_size, padded[part])
    return np.moveaxis(padded, -1, 1)


def weight_gradient(cols: np.ndarray, rows: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cols^T rows``: the weight gradient ``(O, C/G, *kernel)`` and the bias gradient (ones column)."""
    full = np.matmul(cols.swapaxes(1, 2), rows).swapaxes(1, 2)  # (G, Og, R), (tap, c) order
    channels_last = full[:, :, : w[0].size].reshape(w.shape[0], *w.shape[2:], w.shape[1])
    return np.ascontiguousarray(np.moveaxis(channels_last, -1, 1)), full[:, :, -1].reshape(-1)


def backward(
    grad: np.ndarray, w: np.ndarray, saved: ColumnsSaved, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    rows = grad_rows(grad, g.groups)
    dx = dw = db = None
    if needs[0]:
        by = input_gradient_numba if saved.compiled else input_gradient_by_tap
        dx = pad_spatial_backward(by(rows, w, g, saved.input_shape), g.padding, g.padding_mode)
    if needs[1] or needs[2]:
        dw, db = weight_gradient(saved.cols, rows, w)
    return dx, dw if needs[1] else None, db if needs[2] else None


backend.register(backend.Engine("conv", "channel-minor", ConvImpl(forward, backward)))

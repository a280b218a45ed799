"""What the three column engines (tap-major, channel-minor, batch-inner) share.

They all compute the lecture's im2col + GEMM, in other memory layouts than the
reference engine (see docs/performance.md). Activations are channels-last in memory
(``(N, *S, C)``) behind an ``(N, C, *S)`` view: the forward GEMM writes its rows
straight into that memory, and the next layer's im2col or backward reads it without
a copy. With a bias the columns carry one extra row (or column) of ones, so the
forward GEMM adds the bias and the weight-gradient GEMM yields the bias gradient as
its last row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..functional._windows import window_view
from ..functional.conv import ConvGeometry
from ..functional.pad import pad_spatial
from ._buffers import reusable
from .tuning import TUNING

COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # what the numba kernels are built for


@dataclass(frozen=True)
class ColumnsSaved:
    """What a column engine's backward needs: the columns, whether they carry the ones for the
    bias, the input shape, and whether the input gradient runs numba's col2im (chosen in the
    forward, so the backward never consults the backend)."""

    cols: np.ndarray | None
    with_ones: bool
    input_shape: tuple[int, ...]
    compiled: bool


def compiled_col2im(x: np.ndarray, g: ConvGeometry) -> bool:
    """Whether numba's 2-D col2im kernels may compute this input gradient."""
    return len(g.kernel) == 2 and x.dtype in COMPILED_DTYPES and backend.use_numba()


def padded_size(size: Sequence[int], pads: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    return tuple(m + before + after for m, (before, after) in zip(size, pads, strict=True))


def interior(pads: Sequence[tuple[int, int]], size: Sequence[int]) -> tuple[slice, ...]:
    """Slices of a padded spatial block that hold the unpadded input."""
    return tuple(slice(before, before + n) for (before, _), n in zip(pads, size, strict=True))


def is_channels_last(x: np.ndarray) -> bool:
    """True when the channel axis (1) has the smallest stride: ``(N, *S, C)`` memory."""
    return x.strides[1] <= min(abs(s) for s in x.strides[2:])


def padded_channels_last(x: np.ndarray, g: ConvGeometry, channels_last: bool) -> np.ndarray:
    """The padded input as an ``(N, *Sp, C)`` view; memory channels-last iff ``channels_last``.

    Unpadded inputs are not copied (im2col copies anyway). Zero padding goes into
    a fresh buffer of the requested memory order, so the im2col that follows
    reads long runs.
    """
    pads, mode = g.padding, g.padding_mode
    if not any(before or after for before, after in pads):
        return np.moveaxis(x, 1, -1)
    if mode != "zeros":
        return np.moveaxis(pad_spatial(x, pads, mode), 1, -1)
    n, c, spatial = x.shape[0], x.shape[1], padded_size(x.shape[2:], pads)
    if channels_last:
        buffer = np.zeros((n, *spatial, c), dtype=x.dtype)
        buffer[(slice(None), *interior(pads, x.shape[2:]))] = np.moveaxis(x, 1, -1)
        return buffer
    buffer = np.zeros((n, c, *spatial), dtype=x.dtype)
    buffer[(slice(None), slice(None), *interior(pads, x.shape[2:]))] = x
    return np.moveaxis(buffer, 1, -1)


def channels_last_windows(xl: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """View ``(N, *out, C, *kernel)`` of a padded channels-last input ``xl``.

    ``windows[n, y, c, k] = xl[n, s*y + d*k, c]``.
    """
    d = len(g.kernel)
    return window_view(xl, g.kernel, g.stride, g.dilation, g.out_size, axes=range(1, 1 + d))


def split(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``a`` reshaped without a copy (only splits axes); raises rather than silently copying."""
    return np.reshape(a, shape, copy=False)


def weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """Weight ``(O, C/G, *kernel)`` as GEMM operand ``(G, O/G, C/G * K)``, (c, tap) order like tap-major."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def weight_channels_last(w: np.ndarray, groups: int) -> np.ndarray:
    """Weight ``(O, C/G, *kernel)`` as ``(G, O/G, K * C/G)``, (tap, c) order like channel-minor columns."""
    return np.moveaxis(w, 1, -1).reshape(groups, w.shape[0] // groups, -1)


def forward_weight(w: np.ndarray, b: np.ndarray | None, groups: int, tap_major: bool) -> np.ndarray:
    """The forward GEMM's weight operand ``(G, O/G, R)``, the bias appended as column ``R - 1``."""
    wm = weight_matrix(w, groups) if tap_major else weight_channels_last(w, groups)
    if b is None:
        return wm
    return np.concatenate([wm, b.reshape(groups, -1, 1)], axis=2)


def tap_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """Weight as ``(K, G, O/G, C/G)``: one ``(O/G, C/G)`` GEMM operand per kernel tap."""
    o, cg = w.shape[0], w.shape[1]
    return np.ascontiguousarray(np.moveaxis(w.reshape(groups, o // groups, cg, -1), -1, 0))


def gemm_channels_last(
    lhs: np.ndarray, wm: np.ndarray, batch: int, out_size: Sequence[int], channels: int
) -> np.ndarray:
    """``lhs (G, N*P, R) @ wm^T`` written into a channels-last ``(N, *out, O)`` buffer, returned as NCHW."""
    buffer = reusable((batch, *out_size, channels), lhs.dtype)
    rows = buffer.reshape(-1, wm.shape[0], channels // wm.shape[0]).transpose(1, 0, 2)  # (G, N*P, O/G) view
    np.matmul(lhs, wm.swapaxes(1, 2), out=rows)
    return np.moveaxis(buffer, -1, 1)


def grad_rows(grad: np.ndarray, groups: int) -> np.ndarray:
    """The output gradient ``(N, O, *out)`` as ``(G, N * P, O/G)``; free when it is channels-last."""
    channels_last = np.moveaxis(grad, 1, -1)
    if not channels_last.flags.c_contiguous:
        channels_last = np.ascontiguousarray(channels_last)
    return channels_last.reshape(-1, groups, grad.shape[1] // groups).transpose(1, 0, 2)


def split_k_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for ``a (G, M, K)``, ``b (G, K, N)``; a sum of ``TUNING.split_k_parts`` GEMMs when K is long.

    OpenBLAS runs a skinny GEMM with a very long inner axis (LeNet's first layer) far
    below its peak; cut into a batch of shorter GEMMs whose products are summed, it is
    several times faster (docs/performance.md).
    """
    groups, m, k = a.shape
    parts = TUNING.split_k_parts
    if k <= TUNING.split_k_above or k % parts:
        return np.matmul(a, b)
    a_parts = a.reshape(groups, m, parts, k // parts).transpose(0, 2, 1, 3)  # (G, S, M, K/S)
    b_parts = b.reshape(groups, parts, k // parts, b.shape[-1])  # (G, S, K/S, N)
    return np.matmul(a_parts, b_parts).sum(axis=1)


def tap_major_weight_gradient(
    cols: np.ndarray, rows: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``cols (G, R, NP) @ rows (G, NP, O/G)``: the weight gradient and the bias gradient (ones row).

    The long (n, position) axis is the inner one and neither operand is transposed,
    which is where OpenBLAS is fastest.
    """
    full = split_k_matmul(cols, rows).swapaxes(1, 2)  # (G, Og, R)
    return full[:, :, : w[0].size].reshape(w.shape), full[:, :, -1].reshape(-1)


def row_chunks(rows: int, bytes_per_row: int, budget: int) -> tuple[slice, ...]:
    """``range(rows)`` cut into near-equal slices of about ``budget`` bytes each."""
    count = max(1, min(rows, -(-rows * bytes_per_row // budget)))
    bounds = [rows * i // count for i in range(count + 1)]
    return tuple(slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True))

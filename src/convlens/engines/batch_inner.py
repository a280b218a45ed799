"""The batch-inner column engine: tap-major rows, columns ordered (output position, sample).

With few channels and short output rows, tap-major runs are only ``W_out`` cells long.
Ordering the columns (position, sample) instead, from a ``(C, *Sp, N)`` copy of the
input, makes every im2col copy and col2im add a run of ``W_out * N`` cells, for the
price of three small transposed copies. The columns are ``K`` times the input, so they
are built a few output rows at a time (``TUNING.chunk_bytes``, sized for the L2 cache)
when no backward is to come, or when they would exceed ``TUNING.keep_columns_bytes``;
the backward then rebuilds them chunk by chunk from the padded input it keeps.

The automatic choice takes it for fewer than ``TUNING.tap_major_below`` channels per
group, a batch of more than one and output rows shorter than
``TUNING.batch_inner_below``; it computes any convolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..functional._windows import tap_slices, window_view
from ..functional.conv import ConvGeometry, ConvImpl
from ..functional.pad import pad_spatial, pad_spatial_backward
from ._buffers import reusable
from ._columns import (
    compiled_col2im,
    forward_weight,
    interior,
    padded_size,
    row_chunks,
    split,
    tap_major_weight_gradient,
    tap_weights,
    weight_matrix,
)
from .tuning import TUNING


@dataclass(frozen=True)
class BatchInnerSaved:
    """The backward's inputs: the columns when kept whole (else ``None``), the padded input
    ``(C, *Sp, N)`` they come from, the forward's output-row chunks, and whether the input
    gradient runs numba's col2im."""

    cols: np.ndarray | None
    with_ones: bool
    input_shape: tuple[int, ...]
    compiled: bool
    source: np.ndarray
    chunks: tuple[slice, ...]


def suits(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> bool:
    few_channels = w.shape[1] < TUNING.tap_major_below
    return few_channels and x.shape[0] > 1 and g.out_size[-1] < TUNING.batch_inner_below


def padded_source(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The padded input as a C-contiguous ``(C, *Sp, N)`` copy: a column row's runs are ``W_out * N`` long."""
    if g.padding_mode != "zeros":
        return np.ascontiguousarray(np.moveaxis(pad_spatial(x, g.padding, g.padding_mode), 0, -1))
    xt = np.zeros((x.shape[1], *padded_size(x.shape[2:], g.padding), x.shape[0]), dtype=x.dtype)
    xt[(slice(None), *interior(g.padding, x.shape[2:]))] = np.moveaxis(x, 0, -1)
    return xt


def source_windows(xt: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """View ``(C, *kernel, *out, N)`` of ``xt``: ``[c, k, y, n] = xt[c, s*y + d*k, n]``."""
    d = len(g.kernel)
    windows = window_view(xt, g.kernel, g.stride, g.dilation, g.out_size, axes=range(1, 1 + d))
    return windows.transpose(0, *range(2 + d, 2 + 2 * d), *range(1, 2 + d))  # from (C, *out, N, *kernel)


def chunk_columns(windows: np.ndarray, part: slice, g: ConvGeometry, with_ones: bool) -> np.ndarray:
    """Columns of the output rows ``part``: ``(G, C/G * K (+1), rows * rest * N)``.

    Row (c, tap), column (position, sample): one strided copy from the window view.
    """
    d, c = len(g.kernel), windows.shape[0]
    cg, k, groups = c // g.groups, math.prod(g.kernel), g.groups
    source = windows[(Ellipsis, part) + (slice(None),) * d]  # the rows' windows (C, *kernel, rows, *rest, N)
    cols = reusable((groups, cg * k + with_ones, math.prod(source.shape[1 + d :])), windows.dtype)
    target = split(cols[:, : cg * k], (groups, cg, *source.shape[1:]))
    np.copyto(target, split(source, (groups, cg, *source.shape[1:])))
    if with_ones:
        cols[:, -1] = 1
    return cols


def gemms(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    g: ConvGeometry,
    for_backward: bool,
    emit: Callable[[slice, np.ndarray, np.ndarray], None],
) -> BatchInnerSaved:
    """Columns and the forward GEMM by output-row chunks; ``emit(part, cols, wm)`` writes a chunk's output.

    A training step keeps the columns whole up to ``TUNING.keep_columns_bytes`` (rebuilding
    them in the backward costs more than it saves there); otherwise they are dropped chunk
    by chunk, each chunk's buffer reused by the next.
    """
    n, with_ones = x.shape[0], b is not None
    xt = padded_source(x, g)
    windows, wm = source_windows(xt, g), forward_weight(w, b, g.groups, tap_major=True)
    row_bytes = (w[0].size + with_ones) * g.groups * math.prod(g.out_size[1:]) * n * x.dtype.itemsize
    whole = for_backward and row_bytes * g.out_size[0] <= TUNING.keep_columns_bytes
    chunks = row_chunks(g.out_size[0], row_bytes, 2**62 if whole else TUNING.chunk_bytes)
    kept = None
    for part in chunks:
        cols = chunk_columns(windows, part, g, with_ones)
        emit(part, cols, wm)
        kept = cols if len(chunks) == 1 else None
        del cols  # dropped before the next chunk asks for its buffer
    return BatchInnerSaved(kept, with_ones, x.shape, compiled_col2im(x, g), xt, chunks)


def forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, BatchInnerSaved]:
    """Batch-inner convolution with a channels-last output, as the other column engines."""
    n, o, groups = x.shape[0], w.shape[0], g.groups
    buffer = reusable((n, *g.out_size, o), x.dtype)

    def emit(part: slice, cols: np.ndarray, wm: np.ndarray) -> None:  # rows (position, n) -> (n, position)
        rows = reusable((groups, cols.shape[-1], o // groups), cols.dtype)
        np.matmul(cols.swapaxes(1, 2), wm.swapaxes(1, 2), out=rows)
        target = buffer[:, part].reshape(n, -1, groups, o // groups)
        np.copyto(target, rows.reshape(groups, -1, n, o // groups).transpose(2, 1, 0, 3))

    saved = gemms(x, w, b, g, for_backward, emit)
    return np.moveaxis(buffer, -1, 1), saved


def col2im_by_tap(columns: np.ndarray, w: np.ndarray, g: ConvGeometry, padded: np.ndarray) -> None:
    """NumPy: one small GEMM per tap, each block added while still in cache (faster than one
    GEMM into the whole column gradient followed by NumPy's strided adds)."""
    groups, c, n = g.groups, padded.shape[0], padded.shape[-1]
    per_tap = tap_weights(w, groups).swapaxes(2, 3)  # (K, G, Cg, Og)
    block = reusable((groups, c // groups, columns.shape[-1]), columns.dtype)
    for tap, offsets in enumerate(np.ndindex(*g.kernel)):
        np.matmul(per_tap[tap], columns, out=block)
        target = (slice(None), *tap_slices(offsets, g.stride, g.dilation, g.out_size))
        padded[target] += block.reshape(c, *g.out_size, n)


def col2im_numba(
    columns: np.ndarray, w: np.ndarray, g: ConvGeometry, padded: np.ndarray, part: slice
) -> None:
    """numba (2-D): one GEMM for every tap's column gradient, then the compiled col2im (cheap
    enough that the single GEMM wins). ``columns`` are the output rows ``part`` (a chunk);
    ``padded`` is the whole gradient."""
    from ._numba.conv import col2im_batch_inner

    dcols = reusable((g.groups, w[0].size, columns.shape[-1]), columns.dtype)  # (G, Cg*K, rows*rest*N)
    np.matmul(weight_matrix(w, g.groups).swapaxes(1, 2), columns, out=dcols)
    dcols = dcols.reshape(-1, dcols.shape[-1])
    rows = part.stop - part.start
    col2im_batch_inner(dcols, *g.kernel, *g.stride, *g.dilation, rows, g.out_size[1], part.start, padded)


def backward(
    grad: np.ndarray, w: np.ndarray, saved: BatchInnerSaved, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    """Gradients for batch-inner columns, from the output gradient laid out as ``(O, *out, N)``."""
    columns = reusable((grad.shape[1], *grad.shape[2:], grad.shape[0]), grad.dtype)  # (O, *out, N)
    np.copyto(columns, np.moveaxis(grad, 0, -1))
    return backward_columns(columns, w, saved, g, needs)


def backward_columns(
    columns: np.ndarray, w: np.ndarray, saved: BatchInnerSaved, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    """The gradients from the output gradient ``(O, *out, N)``; the input gradient goes into
    ``(C, *Sp, N)`` by L2-sized output-row chunks (its column gradient is as large as the
    columns); the weight gradient is one GEMM on kept columns, or accumulates over the
    forward's chunks, rebuilt from the padded input."""
    groups, n, c, grad = g.groups, columns.shape[-1], saved.input_shape[1], columns
    columns = columns.reshape(groups, columns.shape[0] // groups, -1)  # (G, Og, P*N)
    per_row = math.prod(g.out_size[1:]) * n
    dx = dw = db = None
    if needs[0]:
        padded = reusable((c, *padded_size(saved.input_shape[2:], g.padding), n), grad.dtype)
        padded.fill(0)
        if saved.compiled:  # a chunk's whole column gradient at a time
            row_bytes = w[0].size * groups * per_row * grad.dtype.itemsize
            for part in row_chunks(g.out_size[0], row_bytes, TUNING.chunk_bytes):
                col2im_numba(columns[:, :, part.start * per_row : part.stop * per_row], w, g, padded, part)
        else:  # NumPy works tap by tap, in small blocks already
            col2im_by_tap(columns, w, g, padded)
        dx = pad_spatial_backward(np.moveaxis(padded, -1, 0), g.padding, g.padding_mode)
    if needs[1] or needs[2]:
        windows = None if saved.cols is not None else source_windows(saved.source, g)
        for part in saved.chunks:
            cols = saved.cols if windows is None else chunk_columns(windows, part, g, saved.with_ones)
            chunk_grad = columns[:, :, part.start * per_row : part.stop * per_row]
            dw_part, db_part = tap_major_weight_gradient(cols, chunk_grad.swapaxes(1, 2), w)
            dw = dw_part if dw is None else dw + dw_part
            db = db_part if db is None else db + db_part
    return dx, dw if needs[1] else None, db if needs[2] else None


backend.register(backend.Engine("conv", "batch-inner", ConvImpl(forward, backward), suits=suits))

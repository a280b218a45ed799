"""Convolution: one N-d implementation behind conv1d/2d/3d and conv_transpose1d/2d/3d.

Like PyTorch (and every deep-learning library), "convolution" here is
cross-correlation: the kernel is not flipped. True convolution is the same
with a flipped kernel; ``cl.signal.convolve`` offers it.

The code has three layers, kept apart so the array level can be optimised
behind the same tests:

1. geometry: ``ConvGeometry`` / ``TransposeGeometry`` hold every argument,
   validated once (``_conv_geometry`` / ``_transpose_geometry``) with errors
   naming the op, the argument and the value received;
2. arrays only: ``_conv_forward``/``_conv_backward`` and
   ``_conv_transpose_forward``/``_conv_transpose_backward``, built from
   ``_im2col``, ``_col2im`` and three GEMMs;
3. the Tensor ops ``conv*d`` and ``conv_transpose*d``.

Memory layout (measured choices, see PERFORMANCE.md): the im2col matrix is
"tap-major", one row per (input channel, kernel tap) and one column per
(sample, output position), so it is filled with long contiguous runs; the
forward GEMM writes its result channels-last (``(N, *out, C_out)`` in memory,
returned as an ``(N, C_out, *out)`` view, PyTorch's ``channels_last``); the
input gradient is one GEMM followed by one strided slice-add per kernel tap
(no ``np.add.at``, no full-correlation input gradient). Two more array-level
paths are picked per layer: "batch-inner" columns (column order (position,
sample)) for few channels and short output rows (LeNet), and an FFT path for
stride-1 kernels of at least 49 taps (see ``_FFT_MIN_TAPS``).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import backend
from ..tensor import Tensor, as_tensor, is_grad_enabled
from ._args import cacheable, ntuple, output_size
from .pad import check_spatial_padding, pad_spatial, pad_spatial_backward

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
_KERNEL = {1: "kW", 2: "kH, kW", 3: "kD, kH, kW"}
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# ---------------------------------------------------------------------------
# 1. Geometry: validate once
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvGeometry:
    """Everything the array-level convolution needs besides the arrays."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]  # (before, after) per spatial axis
    padding_mode: str
    groups: int
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]


@dataclass(frozen=True)
class TransposeGeometry:
    """Transposed convolution = the input gradient of the convolution with the same arguments.

    ``full_size`` is the length the kernel taps scatter into,
    ``(in-1)*stride + dilation*(k-1) + 1 + output_padding``; the output is that
    with ``padding`` cut from both ends.
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]

    @property
    def full_size(self) -> tuple[int, ...]:
        return tuple(o + 2 * p for o, p in zip(self.out_size, self.padding, strict=True))


def _check_arrays(
    op: str, d: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, weight_layout: str
) -> bool:
    """Ranks and dtypes of input, weight and bias; returns whether the input is batched."""
    if x.ndim not in (d + 1, d + 2):
        raise ValueError(
            f"{op}: input must be {d + 1}-D (C, {_SPATIAL[d]}) or {d + 2}-D "
            f"(N, C, {_SPATIAL[d]}). Received: shape {x.shape}"
        )
    if w.ndim != d + 2:
        raise ValueError(f"{op}: weight must be {d + 2}-D {weight_layout}. Received: shape {w.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor. Received: dtype {x.dtype}")
    if w.dtype != x.dtype:
        raise TypeError(
            f"{op}: input and weight must have the same dtype. Received: input {x.dtype}, weight {w.dtype}"
        )
    if b is not None and b.dtype != x.dtype:
        raise TypeError(
            f"{op}: input and bias must have the same dtype. Received: input {x.dtype}, bias {b.dtype}"
        )
    return x.ndim == d + 2


def _check_groups(op: str, groups: Any) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer. Received: groups={groups!r}")
    return int(groups)


def _check_bias(op: str, b: np.ndarray | None, channels: int) -> None:
    if b is not None and b.shape != (channels,):
        raise ValueError(
            f"{op}: bias must have shape ({channels},) (one per output channel). Received: shape {b.shape}"
        )


def _same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """PyTorch's 'same': total ``dilation*(k-1)``, the odd cell (even kernels) goes after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def _conv_padding(
    op: str, padding: Any, d: int, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[tuple[int, int], ...]:
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * d
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{op}: padding='same' is not supported for strided convolutions. "
                    f"Received: stride={stride}"
                )
            return tuple(_same_padding(k, dl) for k, dl in zip(kernel, dilation, strict=True))
        raise ValueError(
            f"{op}: padding must be an int, a tuple of {d} ints, 'valid' or 'same'. "
            f"Received: padding={padding!r}"
        )
    return tuple((p, p) for p in ntuple(padding, d, "padding", op, minimum=0))


def _conv_geometry(
    op: str,
    d: int,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: str,
) -> tuple[ConvGeometry, bool]:
    batched = _check_arrays(op, d, x, w, b, f"(C_out, C_in/groups, {_KERNEL[d]})")
    groups = _check_groups(op, groups)
    channels, out_channels = x.shape[-d - 1], w.shape[0]
    if channels != w.shape[1] * groups:
        raise ValueError(
            f"{op}: input has {channels} channels but weight expects {w.shape[1] * groups} (groups={groups})"
        )
    if out_channels % groups:
        raise ValueError(
            f"{op}: out_channels (weight.shape[0]={out_channels}) must be divisible by groups={groups}"
        )
    _check_bias(op, b, out_channels)
    kernel = tuple(w.shape[2:])
    if min(kernel) < 1:
        raise ValueError(f"{op}: kernel size must be positive. Received: weight shape {w.shape}")
    stride = ntuple(stride, d, "stride", op)
    dilation = ntuple(dilation, d, "dilation", op)
    pads = _conv_padding(op, padding, d, kernel, stride, dilation)
    if padding_mode not in _PADDING_MODES:
        raise ValueError(
            f"{op}: padding_mode must be one of {_PADDING_MODES}. Received: padding_mode={padding_mode!r}"
        )
    in_size = tuple(x.shape[-d:])
    check_spatial_padding(op, in_size, pads, padding_mode)
    padded = tuple(n + before + after for n, (before, after) in zip(in_size, pads, strict=True))
    spans = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation, strict=True))
    if any(span > n for span, n in zip(spans, padded, strict=True)):
        raise ValueError(
            f"{op}: the kernel is larger than the padded input: kernel extent "
            f"dilation*(k-1)+1 = {spans}, padded input size {padded}. Received: input shape "
            f"{x.shape}, weight shape {w.shape}, padding={padding!r}, dilation={dilation}"
        )
    out_size = tuple(
        output_size(n, k, before, s, dl, padding_after=after)
        for n, k, (before, after), s, dl in zip(in_size, kernel, pads, stride, dilation, strict=True)
    )
    return ConvGeometry(kernel, stride, dilation, pads, padding_mode, groups, in_size, out_size), batched


_GEOMETRY_CACHE: dict[tuple, tuple[ConvGeometry, bool]] = {}
_GEOMETRY_CACHE_SIZE = 256


def _cached_conv_geometry(
    op: str,
    d: int,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: str,
) -> tuple[ConvGeometry, bool]:
    """``_conv_geometry`` remembered by (shapes, dtypes, arguments): a layer called again on
    the same shapes skips the validation (batch-1 inference is dominated by such per-call
    overhead). Only successful results are kept, so bad arguments raise every time."""
    plain = cacheable(stride) and cacheable(padding) and cacheable(dilation)
    if not (plain and type(groups) is int and type(padding_mode) is str):
        return _conv_geometry(op, d, x, w, b, stride, padding, dilation, groups, padding_mode)
    bias_key = None if b is None else (b.shape, b.dtype)
    key = (
        op,
        d,
        x.shape,
        x.dtype,
        w.shape,
        w.dtype,
        bias_key,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
    )
    hit = _GEOMETRY_CACHE.get(key)
    if hit is None:
        hit = _conv_geometry(op, d, x, w, b, stride, padding, dilation, groups, padding_mode)
        if len(_GEOMETRY_CACHE) >= _GEOMETRY_CACHE_SIZE:
            _GEOMETRY_CACHE.clear()
        _GEOMETRY_CACHE[key] = hit
    return hit


def _transpose_geometry(
    op: str,
    d: int,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: Any,
    dilation: Any,
) -> tuple[TransposeGeometry, bool]:
    batched = _check_arrays(op, d, x, w, b, f"(C_in, C_out/groups, {_KERNEL[d]})")
    groups = _check_groups(op, groups)
    channels = x.shape[-d - 1]
    if channels != w.shape[0]:
        raise ValueError(
            f"{op}: input has {channels} channels but weight expects {w.shape[0]} "
            f"(weight.shape[0], groups={groups})"
        )
    if channels % groups:
        raise ValueError(
            f"{op}: in_channels (weight.shape[0]={channels}) must be divisible by groups={groups}"
        )
    _check_bias(op, b, w.shape[1] * groups)
    kernel = tuple(w.shape[2:])
    if min(kernel) < 1:
        raise ValueError(f"{op}: kernel size must be positive. Received: weight shape {w.shape}")
    if isinstance(padding, str):
        raise TypeError(
            f"{op}: padding must be an int or a tuple of {d} ints (no 'same'/'valid' for "
            f"transposed convolution, as in PyTorch). Received: padding={padding!r}"
        )
    stride = ntuple(stride, d, "stride", op)
    dilation = ntuple(dilation, d, "dilation", op)
    pads = ntuple(padding, d, "padding", op, minimum=0)
    extra = ntuple(output_padding, d, "output_padding", op, minimum=0)
    if any(e >= max(s, dl) for e, s, dl in zip(extra, stride, dilation, strict=True)):
        raise ValueError(
            f"{op}: output_padding must be smaller than either stride or dilation. "
            f"Received: output_padding={extra}, stride={stride}, dilation={dilation}"
        )
    in_size = tuple(x.shape[-d:])
    out_size = tuple(
        (n - 1) * s + dl * (k - 1) + 1 + e - 2 * p
        for n, k, s, dl, p, e in zip(in_size, kernel, stride, dilation, pads, extra, strict=True)
    )
    if min(in_size) < 1 or min(out_size) < 1:
        raise ValueError(
            f"{op}: output size (in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1 "
            f"= {out_size} is too small. Received: input shape {x.shape}, weight shape "
            f"{w.shape}, padding={pads}"
        )
    geometry = TransposeGeometry(kernel, stride, dilation, pads, extra, groups, in_size, out_size)
    return geometry, batched


# ---------------------------------------------------------------------------
# 2. Arrays only: im2col, col2im, GEMMs
# ---------------------------------------------------------------------------
def _tap_slices(
    offsets: Sequence[int], stride: Sequence[int], dilation: Sequence[int], out_size: Sequence[int]
) -> tuple[slice, ...]:
    """Input cells that kernel tap ``offsets`` reads for every output position: ``s*y + d*k``."""
    return tuple(
        slice(dl * k, dl * k + s * (m - 1) + 1, s)
        for k, s, dl, m in zip(offsets, stride, dilation, out_size, strict=True)
    )


def _im2col(
    xp: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_size: Sequence[int],
    groups: int,
) -> np.ndarray:
    """Columns ``(G, C/G * K, N * P)`` of a padded input ``(N, C, *S)``: row (c, tap), column (n, position).

    ``cols[g, (c, k), (n, y)] = xp[n, g*C/G + c, s*y + d*k]`` (K = prod(kernel), P = prod(out_size)).
    """
    n, c, d = xp.shape[0], xp.shape[1], len(kernel)
    spans = tuple(dl * (k - 1) + 1 for k, dl in zip(kernel, dilation, strict=True))
    windows = sliding_window_view(xp, spans, axis=tuple(range(2, 2 + d)))  # (N, C, *positions, *span)
    taps = tuple(slice(None, None, dl) for dl in dilation)
    positions = tuple(slice(None, s * (m - 1) + 1, s) for s, m in zip(stride, out_size, strict=True))
    windows = windows[(slice(None), slice(None), *positions, *taps)]  # (N, C, *out, *kernel)
    tap_major = windows.transpose(1, *range(2 + d, 2 + 2 * d), 0, *range(2, 2 + d))  # (C, *kernel, N, *out)
    return tap_major.reshape(groups, c // groups * math.prod(kernel), n * math.prod(out_size))


def _col2im(
    dcols: np.ndarray,
    padded_shape: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_size: Sequence[int],
) -> np.ndarray:
    """Adjoint of ``_im2col``: add every column entry back onto the input cell it was read from.

    One strided slice-add per kernel tap. The result is ``(N, C, *S)``, stored
    channels-first-then-batch so each add has long contiguous runs.
    """
    n, c = padded_shape[0], padded_shape[1]
    per_tap = dcols.reshape(c, math.prod(kernel), n, *out_size)
    grad = np.zeros((c, n, *padded_shape[2:]), dtype=dcols.dtype)
    for tap, offsets in enumerate(np.ndindex(*kernel)):
        grad[(slice(None), slice(None), *_tap_slices(offsets, stride, dilation, out_size))] += per_tap[:, tap]
    return grad.swapaxes(0, 1)


def _weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """Weight ``(O, C/G, *kernel)`` as GEMM operand ``(G, O/G, C/G * K)``; rows match ``_im2col``'s."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _to_rows(y: np.ndarray, groups: int) -> np.ndarray:
    """``(N, O, *S)`` as ``(G, N * P, O/G)``: free when ``y`` is stored channels-last."""
    channels_last = np.moveaxis(y, 1, -1).reshape(-1, groups, y.shape[1] // groups)
    return channels_last.transpose(1, 0, 2)


def _rows_times_weight(cols: np.ndarray, wm: np.ndarray, batch: int, size: Sequence[int]) -> np.ndarray:
    """``out[n, o, y] = sum_r wm[g, o, r] * cols[g, r, (n, y)]`` as one batched GEMM.

    Written into a channels-last buffer ``(N, *size, O)`` and returned as the
    ``(N, O, *size)`` view.
    """
    groups, per_group = wm.shape[0], wm.shape[1]
    buffer = np.empty((batch, *size, groups * per_group), dtype=cols.dtype)
    rows = buffer.reshape(-1, groups, per_group).transpose(1, 0, 2)  # (G, N*P, O/G) view into buffer
    np.matmul(cols.swapaxes(1, 2), wm.swapaxes(1, 2), out=rows)
    return np.moveaxis(buffer, -1, 1)


def _weight_gradient(rows: np.ndarray, cols: np.ndarray, weight_shape: Sequence[int]) -> np.ndarray:
    """``dw[g, o, r] = sum_(n, y) rows[g, (n, y), o] * cols[g, r, (n, y)]``.

    Computed as ``(cols @ rows)`` and transposed: with the long (n, y) axis as
    the inner dimension, OpenBLAS is several times faster when neither operand
    is transposed.
    """
    return np.matmul(cols, rows).swapaxes(1, 2).reshape(weight_shape)


def _columns_gradient(wm: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``dcols[g, r, (n, y)] = sum_o wm[g, o, r] * rows[g, (n, y), o]``."""
    return np.matmul(wm.swapaxes(1, 2), rows.swapaxes(1, 2))


# Convolution proper. Columns come in two layouts, picked per layer by the
# number of input channels per group (PERFORMANCE.md, decision 2):
#
# - tap-major ``(G, C/G * K, N * P)``, row (c, tap), column (n, position):
#   with few channels a row is a long contiguous run of output positions, and
#   the input gradient is one GEMM then one strided add per (tap) block;
# - channel-minor ``(G, N * P, K * C/G)``, row (n, position), column (tap, c):
#   with many channels the runs of ``C`` channels of a channels-last image are
#   long, and the input gradient is one GEMM per tap (a ``(N*P, C)`` block)
#   added at a strided offset into a channels-last gradient.
#
# Activations are channels-last in memory (``(N, *S, C)``) behind an
# ``(N, C, *S)`` view: the forward GEMM writes its rows straight into that
# memory, and the next layer's im2col or backward reads it without a copy.
_TAP_MAJOR_BELOW = 16


# Column buffers are the largest allocations of a training step (MBs) and
# every step needs the same shapes again. Fresh memory costs a page fault per
# 4 KiB page on first touch, which on this VM made building the columns
# several times slower inside a training step than in isolation. A buffer is
# handed out again only when nothing else references it (its refcount shows
# only this cache), so a live ``_Saved`` or a user's view keeps it out of reach.
_REUSABLE: dict[tuple, list[np.ndarray]] = {}
_REUSABLE_PER_SHAPE = 4
_REUSABLE_MAX_BYTES = 2**27


def _reusable(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array like ``np.empty(shape, dtype)``, recycled from an earlier call when free."""
    key = (shape, np.dtype(dtype))
    cached = _REUSABLE.setdefault(key, [])
    for buffer in cached:
        if sys.getrefcount(buffer) <= 3:  # the list, the loop variable, getrefcount's argument
            return buffer
    buffer = np.empty(shape, dtype)
    held = sum(b.nbytes for bs in _REUSABLE.values() for b in bs)
    if len(cached) < _REUSABLE_PER_SHAPE and held + buffer.nbytes <= _REUSABLE_MAX_BYTES:
        cached.append(buffer)
    return buffer


def _tap_major(channels_per_group: int) -> bool:
    return channels_per_group < _TAP_MAJOR_BELOW


@dataclass(frozen=True)
class _Saved:
    """What the backward needs from the forward: the columns, their layout, the input shape.

    With a bias the columns carry one extra row (tap-major) or column
    (channel-minor) of ones, so the forward GEMM adds the bias and the
    weight-gradient GEMM yields the bias gradient as its last row.
    """

    cols: np.ndarray | None  # None: the backward rebuilds them chunk by chunk from ``source``
    tap_major: bool
    with_ones: bool
    input_shape: tuple[int, ...]
    batch_inner: bool = False  # tap-major rows, columns ordered (position, sample)
    source: np.ndarray | None = None  # batch-inner: the padded input (C, *Sp, N) the columns come from
    chunks: tuple[slice, ...] = ()  # batch-inner: the output-row chunks of the forward


def _is_channels_last(x: np.ndarray) -> bool:
    """True when the channel axis (1) has the smallest stride: ``(N, *S, C)`` memory."""
    return x.strides[1] <= min(abs(s) for s in x.strides[2:])


def _interior(pads: Sequence[tuple[int, int]], size: Sequence[int]) -> tuple[slice, ...]:
    """Slices of a padded spatial block that hold the unpadded input."""
    return tuple(slice(before, before + n) for (before, _), n in zip(pads, size, strict=True))


def _padded_size(size: Sequence[int], pads: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    return tuple(m + before + after for m, (before, after) in zip(size, pads, strict=True))


def _padded_channels_last(x: np.ndarray, pads: Sequence[tuple[int, int]], mode: str, channels_last: bool):
    """The padded input as an ``(N, *Sp, C)`` view; memory channels-last iff ``channels_last``.

    Unpadded inputs are not copied (im2col copies anyway). Zero padding goes into
    a fresh buffer of the requested memory order, so the im2col that follows
    reads long runs.
    """
    if not any(before or after for before, after in pads):
        return np.moveaxis(x, 1, -1)
    if mode != "zeros":
        return np.moveaxis(pad_spatial(x, pads, mode), 1, -1)
    n, c, spatial = x.shape[0], x.shape[1], _padded_size(x.shape[2:], pads)
    if channels_last:
        buffer = np.zeros((n, *spatial, c), dtype=x.dtype)
        buffer[(slice(None), *_interior(pads, x.shape[2:]))] = np.moveaxis(x, 1, -1)
        return buffer
    buffer = np.zeros((n, c, *spatial), dtype=x.dtype)
    buffer[(slice(None), slice(None), *_interior(pads, x.shape[2:]))] = x
    return np.moveaxis(buffer, 1, -1)


def _windows(xl: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """View ``(N, *out, C, *kernel)`` of a padded channels-last input.

    ``windows[n, y, c, k] = xl[n, s*y + d*k, c]``.
    """
    d = len(g.kernel)
    spans = tuple(dl * (k - 1) + 1 for k, dl in zip(g.kernel, g.dilation, strict=True))
    windows = sliding_window_view(xl, spans, axis=tuple(range(1, 1 + d)))  # (N, *positions, C, *span)
    positions = tuple(slice(None, s * (m - 1) + 1, s) for s, m in zip(g.stride, g.out_size, strict=True))
    taps = tuple(slice(None, None, dl) for dl in g.dilation)
    return windows[(slice(None), *positions, slice(None), *taps)]


def _split(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """``a`` reshaped without a copy (only splits axes); raises rather than silently copying."""
    return np.reshape(a, shape, copy=False)


def _columns(x: np.ndarray, g: ConvGeometry, tap_major: bool, with_ones: bool) -> np.ndarray:
    """im2col in the requested layout (see the layout note above), plus a ones row/column for the bias.

    One strided copy from a window view of the (padded) input into the final
    buffer: tap-major reads runs along the last spatial axis of the input's own
    memory order, channel-minor reads runs of channels of a channels-last input.
    """
    d, groups, n, c = len(g.kernel), g.groups, x.shape[0], x.shape[1]
    cg, k, p = c // groups, math.prod(g.kernel), math.prod(g.out_size)
    channels_last = not tap_major or _is_channels_last(x)
    windows = _windows(_padded_channels_last(x, g.padding, g.padding_mode, channels_last), g)
    spatial, kernel = tuple(range(1, 1 + d)), tuple(range(2 + d, 2 + 2 * d))
    if tap_major:  # (G, (c, tap), (n, y))
        cols = _reusable((groups, cg * k + with_ones, n * p), x.dtype)
        source = windows.transpose(1 + d, *kernel, 0, *spatial)  # (C, *kernel, N, *out)
        target = _split(cols[:, : cg * k], (groups, cg, *g.kernel, n, *g.out_size))
        np.copyto(target, _split(source, (groups, cg, *source.shape[1:])))
        if with_ones:
            cols[:, -1] = 1
        return cols
    cols = _reusable((groups, n * p, k * cg + with_ones), x.dtype)  # (G, (n, y), (tap, c))
    source = windows.transpose(0, *spatial, *kernel, 1 + d)  # (N, *out, *kernel, C)
    source = np.moveaxis(_split(source, (*source.shape[:-1], groups, cg)), -2, 0)
    np.copyto(_split(cols[:, :, : k * cg], (groups, n, *g.out_size, *g.kernel, cg)), source)
    if with_ones:
        cols[:, :, -1] = 1
    return cols


def _weight_channels_last(w: np.ndarray, groups: int) -> np.ndarray:
    """Weight ``(O, C/G, *kernel)`` as ``(G, O/G, K * C/G)``, (tap, c) order like channel-minor columns."""
    return np.moveaxis(w, 1, -1).reshape(groups, w.shape[0] // groups, -1)


def _forward_weight(w: np.ndarray, b: np.ndarray | None, groups: int, tap_major: bool) -> np.ndarray:
    """The forward GEMM's weight operand ``(G, O/G, R)``, the bias appended as column ``R - 1``."""
    wm = _weight_matrix(w, groups) if tap_major else _weight_channels_last(w, groups)
    if b is None:
        return wm
    return np.concatenate([wm, b.reshape(groups, -1, 1)], axis=2)


# FFT path (PERFORMANCE: large kernels). With K = prod(kernel) taps, im2col
# copies every input cell K times (layer (d): 81 taps, 128 MB of columns) and
# the GEMMs are memory-bound; through FFT the input, the output gradient and
# the result are each transformed once. All three products are exact
# correlations/convolutions when every spatial axis is transformed at a length
# L >= the padded input size (no wrap-around reaches a kept cell):
#
#   forward       out[y]  = sum_k w[k] xp[y + d*k]       -> Y  = X  * Wf
#   input grad    dxp[u]  = sum_(y+d*k=u) g[y] w[k]      -> DX = G  * conj(Wf)
#   weight grad   dw[k]   = sum_y g[y] xp[y + d*k]       -> S  = X  * conj(G), read at t = d*k
#
# with ``Wf[f] = sum_k w[k] exp(+2 pi i f.(d*k)/L)``. The kernel spectrum and
# the weight gradient are small DFTs evaluated only at the kernel taps (one
# matrix per axis), so only the input, output and output-gradient images go
# through ``numpy.fft``; channels are contracted per frequency by one batched
# GEMM. Zero padding is not materialised: the input is transformed unpadded
# and the kernel offsets become ``d*k - pad``. Chosen for stride 1 and at
# least ``_FFT_MIN_TAPS`` taps (k >= 7 in 2-D); layer (d) (3->16, 9x9, 128x128)
# went from 2.7x to 1.1-1.5x PyTorch forward+backward. float32 results match
# the im2col path to ~1e-6 relative (float64 to ~1e-14).
_FFT_MIN_TAPS = 49


def _use_fft(w: np.ndarray, g: ConvGeometry) -> bool:
    return math.prod(g.kernel) >= _FFT_MIN_TAPS and all(s == 1 for s in g.stride)


def _fft_length(n: int) -> int:
    """Smallest ``m >= n`` with no prime factor above 5 (pocketfft's fast sizes), even when possible."""
    m = n
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1 and (m % 2 == 0 or m == 1):
            return m
        m += 1


def _tap_dft(kernel, dilation, shifts, lengths, dtype) -> list[np.ndarray]:
    """Per axis ``E[k, f] = exp(+2 pi i f (d k - shift) / L)``, f over the rfftn frequencies.

    ``shift`` is the zero padding before the input: the input is transformed
    unpadded (``rfftn`` pads after it) and the kernel offsets absorb the shift.
    """
    mats = []
    for axis, (k, dl, shift, length) in enumerate(zip(kernel, dilation, shifts, lengths, strict=True)):
        freqs = length // 2 + 1 if axis == len(kernel) - 1 else length
        phase = np.outer(dl * np.arange(k) - shift, np.arange(freqs)) % length  # exact integer phases
        mats.append(np.exp(2j * np.pi * phase / length).astype(dtype))
    return mats


def _contract_last_axes(a: np.ndarray, mats: Sequence[np.ndarray], shrinking: bool = False) -> np.ndarray:
    """``a[..., i_0, ..., i_{d-1}]`` times ``mats[j][i_j, f_j]`` over each of the last ``d`` axes.

    One BLAS GEMM per axis; a shrinking contraction starts from the last axis
    (contiguous, no transpose of the big operand), a growing one from the first.
    """
    d = len(mats)
    order = range(d - 1, -1, -1) if shrinking else range(d)
    for j in order:
        axis = a.ndim - d + j
        moved = np.ascontiguousarray(np.moveaxis(a, axis, -1))
        product = _complex_matmul(moved.reshape(-1, moved.shape[-1]), mats[j])
        a = np.moveaxis(product.reshape(*moved.shape[:-1], -1), -1, axis)
    return a


def _complex_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for complex C-contiguous 2-D ``a``, as one real GEMM on ``a``'s memory.

    OpenBLAS' complex GEMM measured ~100x slower than this on these small
    shapes with 2 threads (8 ms against 0.03-0.1 ms). Viewing ``a`` as
    interleaved (re, im) pairs, ``b`` becomes the real ``(2K, 2N)`` block
    matrix ``[[re, im], [-im, re]]`` interleaved the same way, and the real
    product is ``a @ b`` as interleaved pairs.
    """
    k, n = b.shape
    real = np.empty((k, 2, n, 2), dtype=a.real.dtype)
    real[:, 0, :, 0], real[:, 0, :, 1] = b.real, b.imag
    real[:, 1, :, 0], real[:, 1, :, 1] = -b.imag, b.real
    return (a.view(real.dtype) @ real.reshape(2 * k, 2 * n)).view(a.dtype)


@dataclass(frozen=True)
class _FFTSaved:
    """The FFT backward's inputs: the spectra of input ``(F, G, N, C/G)`` and kernel ``(F, G, C/G, O/G)``."""

    spectrum: np.ndarray
    kernel_spectrum: np.ndarray
    lengths: tuple[int, ...]
    shifts: tuple[int, ...]  # zero padding before the input, folded into the kernel's phases
    source_size: tuple[int, ...]  # spatial size of the transformed input (explicitly padded unless zeros)
    input_shape: tuple[int, ...]


def _spectrum(a: np.ndarray, lengths: Sequence[int], groups: int, complex_dtype) -> np.ndarray:
    """``rfftn`` of ``(B, C, *S)`` zero-padded after to ``lengths``, frequency-major: ``(F, G, B, C/G)``.

    Frequency-major, every product of the channel axes is one batched GEMM of
    small matrices, and pocketfft transforms the leading axes as fast as the
    trailing ones (faster for the inverse). Computed in float64: numpy 2.4's
    float32 *forward* transforms measured 2-4x slower than its float64 ones
    (the inverse ones are fast in float32).
    """
    d, b, c = a.ndim - 2, a.shape[0], a.shape[1]
    moved = np.moveaxis(a.astype(np.float64, copy=False), (0, 1), (-2, -1))  # (*S, B, C) view
    spectrum = np.fft.rfftn(moved, s=lengths, axes=tuple(range(d))).astype(complex_dtype, copy=False)
    return spectrum.reshape(-1, b, groups, c // groups).swapaxes(1, 2)


def _spatial_major(a: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """``(F, G, B, C/G)`` as ``(*F, B, C)``, ready for ``irfftn`` over the leading axes."""
    f, groups, b, cg = a.shape
    return a.swapaxes(1, 2).reshape(*_spectrum_shape(lengths), b, groups * cg)


def _spectrum_shape(lengths: Sequence[int]) -> tuple[int, ...]:
    return (*lengths[:-1], lengths[-1] // 2 + 1)


# The FFT path splits the batch over this many threads: numpy's FFTs and
# ufunc loops release the GIL, pocketfft itself is single-threaded, and the
# BLAS pool is idle meanwhile (no two parallel runtimes at once).
_FFT_THREADS = 2
_FFT_POOL: tuple[tuple[int, int], ThreadPoolExecutor] | None = None  # ((owner pid, workers), pool)


def _over_batch(fn: Callable[[slice], Any], n: int) -> list[Any]:
    """``fn(part)`` for ``_FFT_THREADS`` contiguous parts of ``range(n)``, all but the first in the pool."""
    global _FFT_POOL
    parts = max(1, min(_FFT_THREADS, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if parts == 1:
        return [fn(slices[0])]
    owner = (os.getpid(), parts - 1)  # a forked child has no pool threads: it makes its own
    if _FFT_POOL is None or _FFT_POOL[0] != owner:
        _FFT_POOL = (owner, ThreadPoolExecutor(parts - 1, thread_name_prefix="convlens-fft"))
    futures = [_FFT_POOL[1].submit(fn, part) for part in slices[1:]]
    first = fn(slices[0])
    return [first, *(future.result() for future in futures)]


def _crop(sizes: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(0, m) for m in sizes)


def _fft_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry
) -> tuple[np.ndarray, _FFTSaved]:
    d, groups, n, o = len(g.kernel), g.groups, x.shape[0], w.shape[0]
    axes = tuple(range(d))
    lengths = tuple(_fft_length(m) for m in _padded_size(x.shape[2:], g.padding))
    complex_dtype = np.result_type(x.dtype, np.complex64)
    source, shifts = x, tuple(before for before, _ in g.padding)
    if g.padding_mode != "zeros":
        source, shifts = pad_spatial(x, g.padding, g.padding_mode), (0,) * d
    mats = _tap_dft(g.kernel, g.dilation, shifts, lengths, complex_dtype)
    kernel_spectrum = _contract_last_axes(w.astype(complex_dtype), mats)  # (O, Cg, *F)
    kernel_spectrum = kernel_spectrum.reshape(groups, o // groups, w.shape[1], -1).transpose(3, 0, 2, 1)
    kernel_spectrum = np.ascontiguousarray(kernel_spectrum)  # (F, G, Cg, Og)
    spectrum = np.empty((kernel_spectrum.shape[0], groups, n, w.shape[1]), dtype=complex_dtype)
    buffer = np.empty((n, *g.out_size, o), dtype=x.dtype)  # channels-last, as the im2col paths
    target = np.moveaxis(buffer, 0, -2)  # (*out, N, O) view
    bias = 0 if b is None else b

    def part(rows: slice) -> None:
        spectrum[:, :, rows] = _spectrum(source[rows], lengths, groups, complex_dtype)
        y_spectrum = np.matmul(spectrum[:, :, rows], kernel_spectrum)  # (F, G, n, Og)
        y = np.fft.irfftn(_spatial_major(y_spectrum, lengths), s=lengths, axes=axes)  # (*L, n, O)
        np.add(y[_crop(g.out_size)], bias, out=target[..., rows, :], casting="unsafe")

    _over_batch(part, n)
    out = np.moveaxis(buffer, -1, 1)
    return out, _FFTSaved(spectrum, kernel_spectrum, lengths, shifts, source.shape[2:], x.shape)


def _fft_backward(
    grad: np.ndarray, saved: _FFTSaved, g: ConvGeometry, w: np.ndarray, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    d, groups, n, c = len(g.kernel), g.groups, grad.shape[0], saved.input_shape[1]
    axes = tuple(range(d))
    db = grad.sum(axis=(0, *range(2, 2 + d))) if needs[2] else None
    if not (needs[0] or needs[1]):
        return None, None, db
    dx = np.empty((n, c, *saved.source_size), grad.dtype) if needs[0] else None
    conj_kernel = saved.kernel_spectrum.conj().swapaxes(2, 3)  # (F, G, Og, Cg)

    def part(rows: slice) -> np.ndarray | None:
        g_spectrum = _spectrum(grad[rows], saved.lengths, groups, saved.spectrum.dtype)  # (F, G, n, Og)
        if needs[0]:  # DX[n, c] = sum_o G[n, o] conj(Wf[o, c])
            dx_spectrum = np.matmul(g_spectrum, conj_kernel)  # (F, G, n, Cg)
            full = np.fft.irfftn(_spatial_major(dx_spectrum, saved.lengths), s=saved.lengths, axes=axes)
            np.copyto(
                np.moveaxis(dx[rows], (0, 1), (-2, -1)), full[_crop(saved.source_size)], casting="unsafe"
            )
        if needs[1]:  # conj(S[o, c]) = sum_n G[n, o] conj(X[n, c]), this part's share
            return np.matmul(g_spectrum.swapaxes(2, 3), saved.spectrum[:, :, rows].conj())  # (F, G, Og, Cg)
        return None

    shares = _over_batch(part, n)
    if needs[0] and g.padding_mode != "zeros":
        dx = pad_spatial_backward(dx, g.padding, g.padding_mode)
    dw = None
    if needs[1]:  # S read at the taps: an inverse real DFT evaluated at t = d*k - shift only
        s_conj = sum(shares[1:], start=shares[0])  # (F, G, Og, Cg)
        s = np.ascontiguousarray(s_conj.conj().transpose(1, 2, 3, 0))
        s = s.reshape(*w.shape[:2], *_spectrum_shape(saved.lengths))  # (O, Cg, *F)
        mats = [m.T for m in _tap_dft(g.kernel, g.dilation, saved.shifts, saved.lengths, s.dtype)]
        mats[-1] = mats[-1] * _hermitian_weights(saved.lengths[-1], s.dtype)[:, None]
        dw = (_contract_last_axes(s, mats, shrinking=True).real / math.prod(saved.lengths)).astype(w.dtype)
    return dx, dw, db


def _hermitian_weights(length: int, dtype) -> np.ndarray:
    """Weights of the half spectrum in an inverse real DFT: 1 for f = 0 (and Nyquist), 2 otherwise."""
    weights = np.full(length // 2 + 1, 2.0)
    weights[0] = 1.0
    if length % 2 == 0:
        weights[-1] = 1.0
    return weights.astype(dtype)


# Batch-innermost columns for small images (decision 2 taken one step
# further): with few channels and short output rows, tap-major runs are only
# W_out cells long (10 in LeNet's second layer). Ordering the columns
# (position, sample) instead, from a ``(C, *Sp, N)`` copy of the input, makes
# every im2col copy and col2im add a run of ``W_out * N`` cells (640 there):
# for layer (b) measured 0.21 ms against 0.5 ms (im2col) and 0.5 ms against
# 1.1 ms NumPy / 0.84 ms numba (col2im), for three small transposed copies.
# For LeNet's first layer (1 channel, rows of 28) plain tap-major measured faster
# (forward 0.99 against 1.32 ms, weight gradient 0.75 against 1.06 ms): with
# one channel the (position, sample) -> (sample, position) output copy outweighs
# the longer im2col runs.
_BATCH_INNER_BELOW = 16  # output row length under which the batch goes innermost


def _batch_inner(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> bool:
    return _tap_major(w.shape[1]) and x.shape[0] > 1 and g.out_size[-1] < _BATCH_INNER_BELOW


# Output-row chunks. Batch-inner columns are K times the input (LeNet's second
# layer: 3.8 MB for a batch of 64, 60 MB for a batch of 1000). Built a few output
# rows at a time (a contiguous range of column positions) into a buffer that
# stays in the per-core L2 cache, they are read back by the GEMM from cache
# instead of main memory: LeNet-5 inference at batch 1000 measured ~15% faster
# with 1 MB chunks than with whole columns. A training step must keep the
# columns for the weight gradient or rebuild them there from the padded input
# (``(C, *Sp, N)``, kept anyway); rebuilding LeNet's 3.8 MB chunk by chunk
# measured 15-20% slower per step, so with a backward to come the columns are
# built whole and kept up to ``_KEEP_COLUMNS_BYTES`` and chunked only above,
# where memory matters more than the rebuild.
_CHUNK_BYTES = 2**20
_KEEP_COLUMNS_BYTES = 2**26


def _row_chunks(rows: int, bytes_per_row: int, budget: int) -> tuple[slice, ...]:
    """``range(rows)`` cut into near-equal slices of about ``budget`` bytes each."""
    count = max(1, min(rows, -(-rows * bytes_per_row // budget)))
    bounds = [rows * i // count for i in range(count + 1)]
    return tuple(slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True))


def _batch_inner_source(x: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """The padded input as a C-contiguous ``(C, *Sp, N)`` copy: a column row's runs are ``W_out * N`` long."""
    if g.padding_mode != "zeros":
        return np.ascontiguousarray(np.moveaxis(pad_spatial(x, g.padding, g.padding_mode), 0, -1))
    xt = np.zeros((x.shape[1], *_padded_size(x.shape[2:], g.padding), x.shape[0]), dtype=x.dtype)
    xt[(slice(None), *_interior(g.padding, x.shape[2:]))] = np.moveaxis(x, 0, -1)
    return xt


def _batch_inner_windows(xt: np.ndarray, g: ConvGeometry) -> np.ndarray:
    """View ``(C, *kernel, *out, N)`` of ``xt``: ``[c, k, y, n] = xt[c, s*y + d*k, n]``."""
    d = len(g.kernel)
    spans = tuple(dl * (kk - 1) + 1 for kk, dl in zip(g.kernel, g.dilation, strict=True))
    windows = sliding_window_view(xt, spans, axis=tuple(range(1, 1 + d)))  # (C, *positions, N, *span)
    positions = tuple(slice(None, s * (m - 1) + 1, s) for s, m in zip(g.stride, g.out_size, strict=True))
    taps = tuple(slice(None, None, dl) for dl in g.dilation)
    windows = windows[(slice(None), *positions, slice(None), *taps)]  # (C, *out, N, *kernel)
    return windows.transpose(0, *range(2 + d, 2 + 2 * d), *range(1, 2 + d))


def _batch_inner_columns(windows: np.ndarray, part: slice, g: ConvGeometry, with_ones: bool) -> np.ndarray:
    """Columns of the output rows ``part``: ``(G, C/G * K (+1), rows * rest * N)``.

    Row (c, tap), column (position, sample): one strided copy from the window view.
    """
    d, c = len(g.kernel), windows.shape[0]
    cg, k, groups = c // g.groups, math.prod(g.kernel), g.groups
    source = windows[(Ellipsis, part) + (slice(None),) * d]  # the rows' windows (C, *kernel, rows, *rest, N)
    cols = _reusable((groups, cg * k + with_ones, math.prod(source.shape[1 + d :])), windows.dtype)
    target = _split(cols[:, : cg * k], (groups, cg, *source.shape[1:]))
    np.copyto(target, _split(source, (groups, cg, *source.shape[1:])))
    if with_ones:
        cols[:, -1] = 1
    return cols


def _batch_inner_gemms(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    g: ConvGeometry,
    for_backward: bool,
    emit: Callable[[slice, np.ndarray, np.ndarray], None],
) -> _Saved:
    """Columns and the forward GEMM by output-row chunks; ``emit(part, cols, wm)`` writes a chunk's output."""
    n, with_ones = x.shape[0], b is not None
    xt = _batch_inner_source(x, g)
    windows, wm = _batch_inner_windows(xt, g), _forward_weight(w, b, g.groups, True)
    row_bytes = (w[0].size + with_ones) * g.groups * math.prod(g.out_size[1:]) * n * x.dtype.itemsize
    whole = for_backward and row_bytes * g.out_size[0] <= _KEEP_COLUMNS_BYTES
    chunks = _row_chunks(g.out_size[0], row_bytes, 2**62 if whole else _CHUNK_BYTES)
    for part in chunks:  # the chunk's columns are dropped before the next reuses their buffer
        kept = _batch_inner_chunk(windows, part, wm, g, with_ones, emit, keep=len(chunks) == 1)
    return _Saved(kept, True, with_ones, x.shape, batch_inner=True, source=xt, chunks=chunks)


def _batch_inner_chunk(
    windows: np.ndarray,
    part: slice,
    wm: np.ndarray,
    g: ConvGeometry,
    with_ones: bool,
    emit: Callable[[slice, np.ndarray, np.ndarray], None],
    keep: bool,
) -> np.ndarray | None:
    cols = _batch_inner_columns(windows, part, g, with_ones)
    emit(part, cols, wm)
    return cols if keep else None


def _batch_inner_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, _Saved]:
    """Batch-inner convolution with a channels-last output, as the other layouts."""
    n, o, groups = x.shape[0], w.shape[0], g.groups
    buffer = _reusable((n, *g.out_size, o), x.dtype)

    def emit(part: slice, cols: np.ndarray, wm: np.ndarray) -> None:  # rows (position, n) -> (n, position)
        rows = _reusable((groups, cols.shape[-1], o // groups), cols.dtype)
        np.matmul(cols.swapaxes(1, 2), wm.swapaxes(1, 2), out=rows)
        target = buffer[:, part].reshape(n, -1, groups, o // groups)
        np.copyto(target, rows.reshape(groups, -1, n, o // groups).transpose(2, 1, 0, 3))

    saved = _batch_inner_gemms(x, w, b, g, for_backward, emit)
    return np.moveaxis(buffer, -1, 1), saved


def _batch_inner_col2im_by_tap(
    columns: np.ndarray, w: np.ndarray, g: ConvGeometry, padded: np.ndarray
) -> None:
    """NumPy: one small GEMM per tap, each block added while still in cache.

    Per tap, ``(C/G, O/G) @ (O/G, P*N)`` gives a block of ``C * P * N`` cells
    (150 KB in LeNet's layer (b)) that is added at once: measured 2x faster
    than one GEMM into the whole ``(C*K, P*N)`` column gradient (3.8 MB) and
    then NumPy's strided adds.
    """
    groups, c, n = g.groups, padded.shape[0], padded.shape[-1]
    tap_weights = _tap_weights(w, groups).swapaxes(2, 3)  # (K, G, Cg, Og)
    block = _reusable((groups, c // groups, columns.shape[-1]), columns.dtype)
    for tap, offsets in enumerate(np.ndindex(*g.kernel)):
        np.matmul(tap_weights[tap], columns, out=block)
        target = (slice(None), *_tap_slices(offsets, g.stride, g.dilation, g.out_size))
        padded[target] += block.reshape(c, *g.out_size, n)


def _batch_inner_col2im_numba(
    columns: np.ndarray, w: np.ndarray, g: ConvGeometry, padded: np.ndarray, part: slice
) -> None:
    """numba (2-D): one GEMM for every tap's column gradient, then the compiled col2im.

    Unlike NumPy's adds, the compiled scatter is cheap enough that the single
    GEMM wins: LeNet's layer (b) measured 0.38 ms against 0.84 ms per tap.
    ``columns`` are the output rows ``part`` (a chunk); ``padded`` is the whole gradient.
    """
    from .._kernels.conv import col2im_batch_inner

    dcols = _reusable((g.groups, w[0].size, columns.shape[-1]), columns.dtype)  # (G, Cg*K, rows*rest*N)
    np.matmul(_weight_matrix(w, g.groups).swapaxes(1, 2), columns, out=dcols)
    dcols = dcols.reshape(-1, dcols.shape[-1])
    rows = part.stop - part.start
    col2im_batch_inner(dcols, *g.kernel, *g.stride, *g.dilation, rows, g.out_size[1], part.start, padded)


def _batch_inner_backward(
    grad: np.ndarray, w: np.ndarray, saved: _Saved, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    """Gradients for batch-inner columns; the input gradient goes into ``(C, *Sp, N)``.

    The input gradient runs by L2-sized output-row chunks (its column gradient is as
    large as the columns); the weight gradient is one GEMM on kept columns, or
    accumulates over the forward's chunks, rebuilt from the padded input.
    """
    columns = _reusable((grad.shape[1], *grad.shape[2:], grad.shape[0]), grad.dtype)  # (O, *out, N)
    np.copyto(columns, np.moveaxis(grad, 0, -1))
    return _batch_inner_backward_columns(columns, w, saved, g, needs)


def _batch_inner_backward_columns(
    columns: np.ndarray, w: np.ndarray, saved: _Saved, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    """``_batch_inner_backward`` from the output gradient already laid out as ``(O, *out, N)``."""
    groups, n, c, grad = g.groups, columns.shape[-1], saved.input_shape[1], columns
    columns = columns.reshape(groups, columns.shape[0] // groups, -1)  # (G, Og, P*N)
    per_row = math.prod(g.out_size[1:]) * n
    dx = dw = db = None
    if needs[0]:
        padded = _reusable((c, *_padded_size(saved.input_shape[2:], g.padding), n), grad.dtype)
        padded.fill(0)
        if len(g.kernel) == 2 and backend.use_numba():  # a chunk's whole column gradient at a time
            row_bytes = w[0].size * groups * per_row * grad.dtype.itemsize
            for part in _row_chunks(g.out_size[0], row_bytes, _CHUNK_BYTES):
                chunk_grad = columns[:, :, part.start * per_row : part.stop * per_row]
                _batch_inner_col2im_numba(chunk_grad, w, g, padded, part)
        else:  # NumPy works tap by tap, in small blocks already
            _batch_inner_col2im_by_tap(columns, w, g, padded)
        dx = pad_spatial_backward(np.moveaxis(padded, -1, 0), g.padding, g.padding_mode)
    if needs[1] or needs[2]:
        windows = None if saved.cols is not None else _batch_inner_windows(saved.source, g)
        for part in saved.chunks:
            chunk_grad = columns[:, :, part.start * per_row : part.stop * per_row]
            dw_part, db_part = _batch_inner_weight_gradient(chunk_grad, w, saved, windows, part, g)
            dw = dw_part if dw is None else dw + dw_part
            db = db_part if db is None else db + db_part
    return dx, dw if needs[1] else None, db if needs[2] else None


def _batch_inner_weight_gradient(
    chunk_grad: np.ndarray,
    w: np.ndarray,
    saved: _Saved,
    windows: np.ndarray | None,
    part: slice,
    g: ConvGeometry,
) -> tuple[np.ndarray, np.ndarray]:
    """The weight and bias gradients of the output rows ``part``, from kept or rebuilt columns."""
    cols = saved.cols if windows is None else _batch_inner_columns(windows, part, g, saved.with_ones)
    chunk_saved = _Saved(cols, True, saved.with_ones, saved.input_shape, batch_inner=True)
    return _conv_weight_gradient(chunk_grad.swapaxes(1, 2), chunk_saved, w)


# Direct convolution (numba) for one to three input channels at stride 1,
# LeNet's first layer and RGB inputs: im2col would copy the input K times
# (25 for 5x5: 5 MB for a batch of 64, written then read back by a thin GEMM
# that is bound by that traffic) while the input itself is a few hundred KB.
# The kernels in ``_kernels/conv.py`` read the padded input in place. In
# LeNet-5's training step (numba backend, BLAS on 2 threads, same process)
# this measured ~7% faster per step than columns and a GEMM, and the backward
# keeps the 0.26 MB padded input instead of 5 MB of columns.
_DIRECT_MAX_CHANNELS = 3


def _use_direct(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> bool:
    return (
        len(g.kernel) == 2
        and g.groups == 1
        and w.shape[1] <= _DIRECT_MAX_CHANNELS
        and all(s == 1 for s in g.stride)
        and x.dtype.kind == "f"
        and backend.use_numba()
    )


@dataclass(frozen=True)
class _DirectSaved:
    """The direct backward's input: the padded input flattened per channel ``(N, C, H_p * W_p + tail)``."""

    flat: np.ndarray
    padded_size: tuple[int, int]


def _flat_padded(x: np.ndarray, g: ConvGeometry) -> _DirectSaved:
    """Padded images flattened row by row, plus the zeros the last row's taps reach past its end."""
    n, c = x.shape[:2]
    hp, wp = _padded_size(x.shape[2:], g.padding)
    flat = np.zeros((n, c, hp * wp + g.dilation[1] * (g.kernel[1] - 1)), x.dtype)
    image = flat[:, :, : hp * wp].reshape(n, c, hp, wp)
    if g.padding_mode == "zeros":
        image[(Ellipsis, *_interior(g.padding, x.shape[2:]))] = x
    else:
        image[...] = pad_spatial(x, g.padding, g.padding_mode)
    return _DirectSaved(flat, (hp, wp))


def _block_padded(a: np.ndarray, block: int) -> np.ndarray:
    """``a`` with zeros appended along axis 0 up to a multiple of ``block`` (the kernels' output blocks)."""
    extra = -a.shape[0] % block
    if not extra and a.flags.c_contiguous:
        return a
    return np.concatenate([a, np.zeros((extra, *a.shape[1:]), a.dtype)])


def _direct_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry
) -> tuple[np.ndarray, _DirectSaved]:
    from .._kernels.conv import FORWARD_BLOCK, direct_forward

    saved = _flat_padded(x, g)
    out = _reusable((x.shape[0], *g.out_size, w.shape[0]), x.dtype)  # channels-last, as the GEMM paths
    bias = np.zeros(w.shape[0], x.dtype) if b is None else b
    weight, bias = _block_padded(w, FORWARD_BLOCK), _block_padded(bias, FORWARD_BLOCK)
    direct_forward(saved.flat, weight, bias, *g.dilation, saved.padded_size[1], out)
    return np.moveaxis(out, -1, 1), saved


_NOT_POOLED = np.zeros((0, 0, 0, 0), np.uint8)  # the kernels' "no pooling" argmax


def _direct_backward(
    grad: np.ndarray,
    w: np.ndarray,
    saved: _DirectSaved,
    g: ConvGeometry,
    needs: Sequence[bool],
    pooled: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray | None, ...]:
    """Gradients of the direct convolution, or (``pooled = (out, arg)``) of relu(max_pool2d(conv, 2))."""
    from .._kernels.conv import FORWARD_BLOCK, WEIGHT_GRAD_BLOCK, direct_input_grad, direct_weight_grad

    rows = np.ascontiguousarray(np.moveaxis(grad, 1, -1))  # (N, ho', wo', O): free when channels-last
    out, arg = (rows, _NOT_POOLED) if pooled is None else pooled
    (hp, wp), o, ho = saved.padded_size, w.shape[0], g.out_size[0]
    dx = dw = db = None
    if needs[0]:
        dflat = np.zeros_like(saved.flat)
        direct_input_grad(rows, arg, out, _block_padded(w, FORWARD_BLOCK), *g.dilation, wp, ho, dflat)
        padded = dflat[:, :, : hp * wp].reshape(*saved.flat.shape[:2], hp, wp)
        dx = pad_spatial_backward(padded, g.padding, g.padding_mode)
    if needs[1] or needs[2]:
        blocks = o + -o % WEIGHT_GRAD_BLOCK
        dw, db = np.zeros((blocks, *w.shape[1:]), w.dtype), np.zeros(blocks, w.dtype)
        direct_weight_grad(saved.flat, rows, arg, out, *g.dilation, wp, ho, dw, db)
        dw, db = dw[:o], db[:o]
    return dx, dw if needs[1] else None, db if needs[2] else None


def _conv2d_relu_max_pool2d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """``max_pool2d(relu(conv2d(input, weight, bias, ...)), 2)``, LeNet's block, in one pass when it can.

    Where the direct convolution applies (numba, a batched 2-D input with 1-3 channels,
    stride 1) the convolution's output is pooled as it is computed and never stored,
    and the backward scatters the pooled gradient straight into the weight gradient:
    no full-size activation, pooling pass or pooling gradient in between. Elsewhere it
    is the three ops one after the other; either way values and gradients are the same
    (``relu`` commutes with the max; ties go to the first maximum, as in PyTorch).
    ``nn.Sequential`` calls it for Conv2d -> ReLU -> MaxPool2d(2) with no hooks.
    """
    from .pool import _relu_max_pool2d

    x, w, b = _tensors(input, weight, bias)
    geometry, batched = _cached_conv_geometry(
        "conv2d",
        2,
        x.data,
        w.data,
        None if b is None else b.data,
        stride,
        padding,
        dilation,
        groups,
        padding_mode,
    )
    path = _path(x.data, w.data, geometry)
    fusable = batched and min(geometry.out_size) >= 2 and backend.use_numba()
    if fusable and path == "batch-inner":
        return _batch_inner_relu_max_pool2d(x, w, b, geometry)
    if not (fusable and path == "direct"):
        return _relu_max_pool2d(conv2d(x, w, b, stride, padding, dilation, groups, padding_mode), 2)
    from .._kernels.conv import FORWARD_BLOCK, direct_forward_relu_pool

    saved = _flat_padded(x.data, geometry)
    ho, wo = geometry.out_size
    out = np.empty((x.shape[0], ho // 2, wo // 2, w.shape[0]), x.dtype)  # channels-last
    arg = np.empty(out.shape, np.uint8)
    bias_data = np.zeros(w.shape[0], x.dtype) if b is None else b.data
    weight_blocks, bias_blocks = _block_padded(w.data, FORWARD_BLOCK), _block_padded(bias_data, FORWARD_BLOCK)
    width = saved.padded_size[1]
    direct_forward_relu_pool(saved.flat, weight_blocks, bias_blocks, *geometry.dilation, width, ho, out, arg)

    def backward(grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        dx, dw, db = _direct_backward(grad, w.data, saved, geometry, _needs(x, w, b), (out, arg))
        return (dx, dw) if b is None else (dx, dw, db)

    return Tensor._from_op(np.moveaxis(out, -1, 1), _parents(x, w, b), backward)


def _batch_inner_relu_max_pool2d(x: Tensor, w: Tensor, b: Tensor | None, g: ConvGeometry) -> Tensor:
    """The fused block on the batch-inner path: the GEMM writes ``(O, *out, N)``, where a tile's taps
    are runs of N samples; the pooling reads that and writes NCHW (Flatten then needs no copy),
    and the backward scatters the pooled gradient straight into the ``(O, *out, N)`` layout the
    batch-inner backward starts from: no transposed copy of the output or of its gradient."""
    from .._kernels.conv import relu_pool_batch_inner, relu_pool_batch_inner_backward

    n, o, (ho, wo), per_row = x.shape[0], w.shape[0], g.out_size, g.out_size[1] * x.shape[0]
    y = _reusable((g.groups, o // g.groups, ho * per_row), x.dtype)  # (G, O/G, P*N)

    def emit(part: slice, cols: np.ndarray, wm: np.ndarray) -> None:
        np.matmul(wm, cols, out=y[:, :, part.start * per_row : part.stop * per_row])

    for_backward = is_grad_enabled() and any(_needs(x, w, b))
    saved = _batch_inner_gemms(x.data, w.data, None if b is None else b.data, g, for_backward, emit)
    out = np.empty((n, o, ho // 2, wo // 2), x.dtype)
    arg = np.empty((o, ho // 2, wo // 2, n), np.uint8)
    relu_pool_batch_inner(y.reshape(o, ho, wo, n), out, arg)

    def backward(grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        columns = _reusable((o, ho, wo, n), grad.dtype)
        columns.fill(0)
        relu_pool_batch_inner_backward(np.ascontiguousarray(grad), out, arg, columns)
        dx, dw, db = _batch_inner_backward_columns(columns, w.data, saved, g, _needs(x, w, b))
        return (dx, dw) if b is None else (dx, dw, db)

    return Tensor._from_op(out, _parents(x, w, b), backward)


def _path(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> str:
    """The convolution's path, first that applies: "fft", "direct", "batch-inner", else "columns"
    (tap-major or channel-minor im2col)."""
    if _use_fft(w, g):
        return "fft"
    if _use_direct(x, w, g):
        return "direct"
    return "batch-inner" if _batch_inner(x, w, g) else "columns"


def _conv_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: ConvGeometry, for_backward: bool = True
) -> tuple[np.ndarray, _Saved | _FFTSaved | _DirectSaved]:
    """Batched convolution on arrays: ``(N, C, *S)`` -> ``(N, O, *out)``, plus what backward needs.

    The GEMM writes straight into an ``(N, *out, O)`` buffer (through its
    ``(G, N*P, O/G)`` rows view); the result is that buffer viewed as NCHW.
    """
    path = _path(x, w, geometry)
    if path == "fft":
        return _fft_forward(x, w, b, geometry)
    if path == "direct":
        return _direct_forward(x, w, b, geometry)
    if path == "batch-inner":
        return _batch_inner_forward(x, w, b, geometry, for_backward)
    g, tap_major, with_ones = geometry, _tap_major(w.shape[1]), b is not None
    cols = _columns(x, g, tap_major, with_ones)
    wm = _forward_weight(w, b, g.groups, tap_major)
    buffer = _reusable((x.shape[0], *g.out_size, w.shape[0]), x.dtype)
    rows = buffer.reshape(-1, g.groups, w.shape[0] // g.groups).transpose(1, 0, 2)
    np.matmul(cols.swapaxes(1, 2) if tap_major else cols, wm.swapaxes(1, 2), out=rows)
    return np.moveaxis(buffer, -1, 1), _Saved(cols, tap_major, with_ones, x.shape)


def _grad_rows(grad: np.ndarray, groups: int) -> np.ndarray:
    """The output gradient ``(N, O, *out)`` as ``(G, N * P, O/G)``; free when it is channels-last."""
    channels_last = np.moveaxis(grad, 1, -1)
    if not channels_last.flags.c_contiguous:
        channels_last = np.ascontiguousarray(channels_last)
    return channels_last.reshape(-1, groups, grad.shape[1] // groups).transpose(1, 0, 2)


# A skinny GEMM with a very long inner axis (LeNet's first layer: (26, 50176) @
# (50176, 6)) ran at ~20 GFLOP/s in OpenBLAS; cut into a batch of shorter GEMMs
# whose partial products are summed, it measured 3x faster (0.71 -> 0.24 ms).
# Shorter inner axes (the second layer's 6,400) are faster in one piece.
_SPLIT_K_ABOVE = 16384
_SPLIT_K_PARTS = 8


def _split_k_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for ``a (G, M, K)``, ``b (G, K, N)``; as a sum of ``_SPLIT_K_PARTS`` GEMMs when K is long."""
    groups, m, k = a.shape
    parts = _SPLIT_K_PARTS
    if k <= _SPLIT_K_ABOVE or k % parts:
        return np.matmul(a, b)
    a_parts = a.reshape(groups, m, parts, k // parts).transpose(0, 2, 1, 3)  # (G, S, M, K/S)
    b_parts = b.reshape(groups, parts, k // parts, b.shape[-1])  # (G, S, K/S, N)
    return np.matmul(a_parts, b_parts).sum(axis=1)


def _conv_weight_gradient(rows: np.ndarray, saved: _Saved, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cols^T rows``: the weight gradient ``(O, C/G, *kernel)`` and the bias gradient (ones row)."""
    if saved.tap_major:  # cols (G, R, NP) @ rows (G, NP, Og): the long axis inner, no transposes
        full = _split_k_matmul(saved.cols, rows).swapaxes(1, 2)  # (G, Og, R)
        return full[:, :, : w[0].size].reshape(w.shape), full[:, :, -1].reshape(-1)
    full = np.matmul(saved.cols.swapaxes(1, 2), rows).swapaxes(1, 2)  # (G, Og, R), (tap, c) order
    channels_last = full[:, :, : w[0].size].reshape(w.shape[0], *w.shape[2:], w.shape[1])
    return np.ascontiguousarray(np.moveaxis(channels_last, -1, 1)), full[:, :, -1].reshape(-1)


def _tap_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """Weight as ``(K, G, O/G, C/G)``: one ``(O/G, C/G)`` GEMM operand per kernel tap."""
    o, cg = w.shape[0], w.shape[1]
    return np.ascontiguousarray(np.moveaxis(w.reshape(groups, o // groups, cg, -1), -1, 0))


def _input_gradient_by_tap(rows: np.ndarray, w: np.ndarray, g: ConvGeometry, input_shape) -> np.ndarray:
    """Channel-minor input gradient: per tap, ``rows @ w_tap`` added at the tap's strided offset.

    The padded gradient is channels-last ``(N, *Sp, G, C/G)`` so each add writes
    runs of ``C`` (``W_out * C`` for stride 1) contiguous cells.
    """
    n, c, groups = input_shape[0], input_shape[1], g.groups
    padded = tuple(m + a + b for m, (a, b) in zip(input_shape[2:], g.padding, strict=True))
    grad = np.zeros((n, *padded, groups, c // groups), dtype=rows.dtype)
    block = np.empty((groups, rows.shape[1], c // groups), dtype=rows.dtype)
    tap_weights = _tap_weights(w, groups)
    for tap, offsets in enumerate(np.ndindex(*g.kernel)):
        np.matmul(rows, tap_weights[tap], out=block)
        target = (slice(None), *_tap_slices(offsets, g.stride, g.dilation, g.out_size))
        grad[target] += block.transpose(1, 0, 2).reshape(n, *g.out_size, groups, c // groups)
    return np.moveaxis(grad.reshape(n, *padded, c), -1, 1)


def _input_gradient_tap_major(rows: np.ndarray, w: np.ndarray, g: ConvGeometry, input_shape) -> np.ndarray:
    """Tap-major input gradient: one GEMM for all columns, then col2im into the padded gradient.

    col2im is numba's (2-D) or one strided NumPy add per tap; both fill a
    ``(C, N, *Sp)`` buffer (returned as an ``(N, C, *Sp)`` view) whose rows
    are the contiguous targets of the column rows.
    """
    dcols = _columns_gradient(_weight_matrix(w, g.groups), rows)  # (G, Cg*K, NP)
    padded_shape = (*input_shape[:2], *_padded_size(input_shape[2:], g.padding))
    if len(g.kernel) == 2 and backend.use_numba():
        from .._kernels.conv import col2im_tap_major

        grad = np.zeros((padded_shape[1], padded_shape[0], *padded_shape[2:]), dtype=rows.dtype)
        dcols = dcols.reshape(-1, dcols.shape[-1])
        col2im_tap_major(dcols, *g.kernel, *g.stride, *g.dilation, *g.out_size, grad)
        return grad.swapaxes(0, 1)
    return _col2im(dcols, padded_shape, g.kernel, g.stride, g.dilation, g.out_size)


def _input_gradient_channel_minor_numba(
    rows: np.ndarray, w: np.ndarray, g: ConvGeometry, input_shape: Sequence[int]
) -> np.ndarray:
    """numba (2-D, groups 1): per L2-sized chunk of samples, one GEMM for every tap's column
    gradient ``(n * P, K * C)``, then a compiled col2im into a channels-last padded gradient.

    Against NumPy's per-tap GEMMs and strided adds this measured 3-4x faster on the
    benchmark's layers (c) and (e) (the adds of runs of C channels dominate there).
    """
    from .._kernels.conv import col2im_channel_minor

    n, c, p = input_shape[0], input_shape[1], math.prod(g.out_size)
    padded = np.zeros((n, *_padded_size(input_shape[2:], g.padding), c), rows.dtype)
    weights = _weight_channels_last(w, 1)[0]  # (O, K*C), (tap, c) order as the columns
    for part in _row_chunks(n, p * weights.shape[1] * rows.itemsize, _CHUNK_BYTES):
        dcols = _reusable(((part.stop - part.start) * p, weights.shape[1]), rows.dtype)
        np.matmul(rows[0, part.start * p : part.stop * p], weights, out=dcols)
        col2im_channel_minor(dcols, *g.kernel, *g.stride, *g.dilation, *g.out_size, padded[part])
    return np.moveaxis(padded, -1, 1)


def _conv_input_gradient(rows: np.ndarray, w: np.ndarray, saved: _Saved, g: ConvGeometry) -> np.ndarray:
    if saved.tap_major:
        grad = _input_gradient_tap_major(rows, w, g, saved.input_shape)
    elif len(g.kernel) == 2 and g.groups == 1 and backend.use_numba():
        grad = _input_gradient_channel_minor_numba(rows, w, g, saved.input_shape)
    else:
        grad = _input_gradient_by_tap(rows, w, g, saved.input_shape)
    return pad_spatial_backward(grad, g.padding, g.padding_mode)


def _conv_backward(
    grad: np.ndarray,
    w: np.ndarray,
    saved: _Saved | _FFTSaved | _DirectSaved,
    geometry: ConvGeometry,
    needs: Sequence[bool],
) -> tuple[np.ndarray | None, ...]:
    """Gradients ``(input, weight, bias)`` of a convolution; ``None`` where ``needs`` is false."""
    if isinstance(saved, _FFTSaved):
        return _fft_backward(grad, saved, geometry, w, needs)
    if isinstance(saved, _DirectSaved):
        return _direct_backward(grad, w, saved, geometry, needs)
    if saved.batch_inner:
        return _batch_inner_backward(grad, w, saved, geometry, needs)
    rows = _grad_rows(grad, geometry.groups)
    dx = dw = db = None
    if needs[0]:
        dx = _conv_input_gradient(rows, w, saved, geometry)
    if needs[1] or needs[2]:
        dw, db = _conv_weight_gradient(rows, saved, w)
    return dx, dw if needs[1] else None, db if needs[2] else None


def _conv_transpose_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, geometry: TransposeGeometry
) -> tuple[np.ndarray, None]:
    """Transposed convolution on arrays: scatter every input cell through the kernel, then crop."""
    g = geometry
    rows = _to_rows(x, g.groups)
    dcols = _columns_gradient(_weight_matrix(w, g.groups), rows)
    full_shape = (x.shape[0], w.shape[1] * g.groups, *g.full_size)
    full = _col2im(dcols, full_shape, g.kernel, g.stride, g.dilation, g.in_size)
    out = full[(Ellipsis, *(slice(p, p + m) for p, m in zip(g.padding, g.out_size, strict=True)))]
    if b is not None:
        out = out + b.reshape(-1, *(1,) * len(g.kernel))
    return out, None


def _conv_transpose_backward(
    grad: np.ndarray, x: np.ndarray, w: np.ndarray, geometry: TransposeGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    """Gradients ``(input, weight, bias)`` of a transposed convolution: a convolution of ``grad``."""
    g = geometry
    full = pad_spatial(grad, tuple((p, p) for p in g.padding), "zeros")
    cols = _im2col(full, g.kernel, g.stride, g.dilation, g.in_size, g.groups)
    dx = dw = db = None
    if needs[0]:
        dx = _rows_times_weight(cols, _weight_matrix(w, g.groups), x.shape[0], g.in_size)
    if needs[1]:
        dw = _weight_gradient(_to_rows(x, g.groups), cols, w.shape)
    if needs[2]:
        db = grad.sum(axis=(0, *range(2, grad.ndim)))
    return dx, dw, db


# ---------------------------------------------------------------------------
# 3. Tensor ops
# ---------------------------------------------------------------------------
def _tensors(x: Any, weight: Any, bias: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    return as_tensor(x), as_tensor(weight), None if bias is None else as_tensor(bias)


def _parents(x: Tensor, w: Tensor, b: Tensor | None) -> tuple[Tensor, ...]:
    return (x, w) if b is None else (x, w, b)


def _needs(x: Tensor, w: Tensor, b: Tensor | None) -> tuple[bool, bool, bool]:
    return x.requires_grad, w.requires_grad, b is not None and b.requires_grad


def _convnd(
    op: str,
    d: int,
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: str,
) -> Tensor:
    x, w, b = _tensors(input, weight, bias)
    geometry, batched = _cached_conv_geometry(
        op, d, x.data, w.data, None if b is None else b.data, stride, padding, dilation, groups, padding_mode
    )
    xb = x.data if batched else x.data[None]
    for_backward = is_grad_enabled() and any(_needs(x, w, b))
    out, saved = _conv_forward(xb, w.data, None if b is None else b.data, geometry, for_backward)

    def backward(grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        dx, dw, db = _conv_backward(grad if batched else grad[None], w.data, saved, geometry, _needs(x, w, b))
        if dx is not None and not batched:
            dx = dx[0]
        return (dx, dw) if b is None else (dx, dw, db)

    return Tensor._from_op(out if batched else out[0], _parents(x, w, b), backward)


def _conv_transposend(
    op: str,
    d: int,
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    groups: Any,
    dilation: Any,
) -> Tensor:
    x, w, b = _tensors(input, weight, bias)
    geometry, batched = _transpose_geometry(
        op,
        d,
        x.data,
        w.data,
        None if b is None else b.data,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
    )
    xb = x.data if batched else x.data[None]
    out, _ = _conv_transpose_forward(xb, w.data, None if b is None else b.data, geometry)

    def backward(grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        dx, dw, db = _conv_transpose_backward(
            grad if batched else grad[None], xb, w.data, geometry, _needs(x, w, b)
        )
        if dx is not None and not batched:
            dx = dx[0]
        return (dx, dw) if b is None else (dx, dw, db)

    return Tensor._from_op(out if batched else out[0], _parents(x, w, b), backward)


def conv2d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """2-D convolution (cross-correlation) over a batch of images, as ``torch.nn.functional.conv2d``.

    With ``G = groups`` and output channel ``o`` in group ``g = o // (C_out/G)``::

        out[n, o, y, x] = bias[o] + sum_{c < C_in/G} sum_{i < kH} sum_{j < kW}
                          weight[o, c, i, j] * xp[n, g*C_in/G + c, sH*y + dH*i, sW*x + dW*j]

    where ``xp`` is the input padded by ``padding`` (so ``xp[.., sH*y + dH*i, ..]``
    is ``input[.., sH*y + dH*i - pH, ..]``). In general, per spatial axis,
    ``out[n, o, y] = b[o] + sum_{c,k} w[o, c, k] * x[n, c, s*y + d*k - p]``.

    This is cross-correlation, like PyTorch's: the kernel is not flipped. True
    convolution equals ``conv2d`` with ``weight`` flipped along both spatial
    axes (``cl.signal.convolve`` computes it).

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``, floating point.
        weight: ``(C_out, C_in/groups, kH, kW)``, the input's dtype.
        bias: ``(C_out,)`` or None.
        stride: step of the kernel, int or ``(sH, sW)``.
        padding: int, ``(pH, pW)``, ``"valid"`` (no padding) or ``"same"``
            (output size = input size; needs stride 1; total padding
            ``dilation*(k-1)`` per axis, split ``total//2`` before and the rest
            after, so an even kernel pads one more cell after, as PyTorch).
        dilation: spacing between kernel taps, int or ``(dH, dW)``.
        groups: split input and output channels into ``groups`` independent
            convolutions; ``groups == C_in`` is a depthwise convolution.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or
            ``"circular"``. **Differs from PyTorch**: ``torch.nn.functional.conv2d``
            has no ``padding_mode`` (only ``nn.Conv2d`` has, padding with
            ``F.pad`` first); here the functional op takes it directly, with
            ``nn.Conv2d``'s meaning.

    Shape:
        Output ``(N, C_out, H_out, W_out)`` with, per axis
        (``_args.output_size``)::

            H_out = floor((H + pH_before + pH_after - dH*(kH-1) - 1) / sH) + 1

        The result is stored channels-last in memory (``(N, H_out, W_out, C_out)``)
        and returned as an ``(N, C_out, H_out, W_out)`` view, like PyTorch's
        ``channels_last`` memory format; values and shape are unaffected.

    Weight: layout ``(C_out, C_in/groups, kH, kW)`` (OIHW, PyTorch's);
    ``nn.Conv2d`` initialises it (and the bias) uniformly in
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in = C_in/groups * kH * kW``.

    Example (the lecture's 5x5 binary image and 3x3 kernel, section 2):

    >>> import numpy as np, convlens as cl
    >>> from convlens import functional as F
    >>> image = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1],
    ...                   [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=np.float32)
    >>> kernel = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float32)
    >>> F.conv2d(image[None, None], kernel[None, None]).data[0, 0]
    array([[4., 3., 4.],
           [2., 4., 3.],
           [2., 3., 4.]], dtype=float32)
    >>> F.conv2d(np.zeros((8, 3, 28, 28), np.float32), np.zeros((6, 3, 5, 5), np.float32),
    ...          padding="same").shape
    (8, 6, 28, 28)
    """
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv1d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] | str = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """1-D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    ``out[n, o, y] = b[o] + sum_{c,k} w[o, c, k] * x[n, g*C_in/G + c, s*y + d*k - p]``
    (``g`` the group of ``o``; out-of-range input cells are padding). Arguments,
    the ``padding_mode`` extension and the cross-correlation note are as in
    :func:`conv2d`.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in/groups, kW)``;
        output ``(N, C_out, L_out)``,
        ``L_out = floor((L + p_before + p_after - d*(k-1) - 1) / s) + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv1d(np.array([[[1.0, 2.0, 3.0, 4.0]]]), np.array([[[1.0, -1.0]]])).data
    array([[[-1., -1., -1.]]])
    """
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv3d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] | str = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """3-D convolution (cross-correlation) over volumes or video, as ``torch.nn.functional.conv3d``.

    ``out[n, o, z, y, x] = b[o] + sum_{c,k,i,j} w[o, c, k, i, j] *
    x[n, g*C_in/G + c, sD*z + dD*k - pD, sH*y + dH*i - pH, sW*x + dW*j - pW]``.
    Arguments, the ``padding_mode`` extension and the cross-correlation note are
    as in :func:`conv2d`.

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight
        ``(C_out, C_in/groups, kD, kH, kW)``; output ``(N, C_out, D_out, H_out, W_out)``,
        each ``floor((n + p_before + p_after - d*(k-1) - 1) / s) + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv3d(np.ones((2, 4, 5, 6, 7)), np.ones((3, 4, 3, 3, 3)), stride=2).shape
    (2, 3, 2, 2, 3)
    """
    return _convnd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv_transpose2d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    The adjoint (input gradient) of :func:`conv2d` with the same stride,
    padding, dilation and groups: every input cell scatters a weighted copy of
    the kernel into the output (sometimes called "deconvolution")::

        out[n, g*C_out/G + o, s*y + d*k - p] += x[n, c, y] * w[c, o, k]   (c in group g)

    plus ``bias[o]``; cells that fall outside the output are dropped.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_in, C_out/groups, kH, kW)`` (note: in/out swapped compared
            with conv2d, PyTorch's layout).
        bias: ``(C_out,)`` or None.
        stride, padding, dilation, groups: those of the convolution this
            transposes; ``padding`` cuts ``padding`` cells from both ends of
            the full scattered result (it undoes the convolution's padding).
        output_padding: extra cells added after the end of each axis (to pick
            one of the input sizes a strided conv maps to the same output size);
            must be smaller than stride or dilation, PyTorch's rule.

    Shape:
        ``H_out = (H - 1)*sH - 2*pH + dH*(kH - 1) + output_padding + 1``.

    Weight: ``nn.ConvTranspose2d`` initialises it uniformly in
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` with PyTorch's ``fan_in``
    (``weight.shape[1] * kH * kW``).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2).data[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """
    return _conv_transposend(
        "conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose1d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] = 0,
    output_padding: int | tuple[int] = 0,
    groups: int = 1,
    dilation: int | tuple[int] = 1,
) -> Tensor:
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d`` (see :func:`conv_transpose2d`).

    ``out[n, g*C_out/G + o, s*y + d*k - p] += x[n, c, y] * w[c, o, k]``, plus ``bias[o]``.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_in, C_out/groups, kW)``;
        ``L_out = (L - 1)*s - 2*p + d*(k - 1) + output_padding + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv_transpose1d(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 10.0]]])).data
    array([[[ 1., 12., 20.]]])
    """
    return _conv_transposend(
        "conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
) -> Tensor:
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d`` (see :func:`conv_transpose2d`).

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight
        ``(C_in, C_out/groups, kD, kH, kW)``; each output size
        ``(n - 1)*s - 2*p + d*(k - 1) + output_padding + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv_transpose3d(np.ones((1, 2, 3, 3, 3)), np.ones((2, 4, 2, 2, 2)), stride=2).shape
    (1, 4, 6, 6, 6)
    """
    return _conv_transposend(
        "conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding, groups, dilation
    )

"""Pooling: max, average and adaptive pooling in 1-D, 2-D and 3-D (PyTorch's semantics).

One N-d engine serves all twelve ops. A pooling window is a Cartesian product
of one window per spatial axis, so every pool is computed one axis at a time
(innermost axis first): a max over a box is the max over rows of the max
within each row, and a sum likewise. Along one axis a window family is either
*strided* (kernel, stride, padding, dilation: the ordinary pools) or *adaptive*
(``start = floor(i*L/out)``, ``end = ceil((i+1)*L/out)``); both expose their
windows as ``taps``: the ``j``-th element of every window at once, as a slice
or an index array. An axis costs one vectorised pass per tap, never a loop
over pixels or samples.

Tie rule. PyTorch's max pool scans a window in row-major order and keeps the
first maximum (``val > max``; a NaN always wins, so the last NaN is kept).
Reducing the innermost axis first with that same rule picks the same element:
the first maximum of the first row that reaches the overall maximum. Ties are
common (zero background after ReLU), and they decide where the gradient goes.

Speed (PERFORMANCE.md). No argmax over a copied window and no ``np.add.at``:
the forward is ``np.maximum``/``+`` between strided views, one per tap (for
2x2/2 that is the pairwise max of width pairs, then height pairs); the winning
tap is kept as uint8 via ``arg = max(arg, j * (v > best))`` (taps come in
increasing order); the backward adds ``grad * (arg == j)`` into each tap's
strided slice. Where windows tile an axis (kernel == stride, no padding,
dilation 1) the backward writes each tap once into an empty array instead of
accumulating into zeros. A reshape to ``(..., out, kernel)`` followed by
``max``/``sum`` over the small kernel axes was measured 10-15x slower than
these strided pairwise ops, so it is not used. NaN handling costs nothing
unless a NaN reaches an output (``np.maximum`` propagates it): only then is
the axis redone with PyTorch's NaN rule.

The array-level functions (``max_pool_forward``/``max_pool_backward``,
``avg_pool_forward``/``avg_pool_backward``) work on NumPy arrays whose last
``len(windows)`` axes are spatial; the public ops wrap them in Tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from .. import backend
from ..tensor import ArrayLike, Tensor, as_tensor, is_grad_enabled
from ._args import cacheable, ntuple, output_size

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
]

IntOrTuple = int | Sequence[int]


# -- windows along one axis -----------------------------------------------------
@dataclass(frozen=True)
class StridedWindows:
    """Windows ``o*stride - padding + j*dilation``, ``j < kernel``, along one axis of length ``size``.

    Positions are counted in the padded axis: padded position ``q`` is input
    position ``q - padding``.
    """

    size: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    out: int

    @property
    def taps(self) -> int:
        return self.kernel

    @property
    def extent(self) -> int:
        """Padded positions the windows touch (may pass the right padding in ceil_mode)."""
        return (self.out - 1) * self.stride + self.dilation * (self.kernel - 1) + 1

    @property
    def tiles(self) -> bool:
        """True when the windows cut the axis into equal non-overlapping pieces."""
        return (
            self.kernel == self.stride
            and self.padding == 0
            and self.dilation == 1
            and self.size == self.out * self.kernel
        )

    def tap(self, j: int) -> slice:
        start = j * self.dilation
        return slice(start, start + (self.out - 1) * self.stride + 1, self.stride)

    def tap_in_input(self, j: int) -> tuple[slice, slice]:
        """(input positions, windows) of tap ``j`` restricted to windows where it lies in the input."""
        offset = j * self.dilation - self.padding  # input position of tap j in window 0
        lo = max(0, -(offset // self.stride))  # first window with offset + o*stride >= 0
        hi = min(self.out, (self.size - 1 - offset) // self.stride + 1)
        if hi <= lo:
            return slice(0, 0), slice(0, 0)
        start = offset + lo * self.stride
        return slice(start, start + (hi - lo - 1) * self.stride + 1, self.stride), slice(lo, hi)

    def first_valid_tap(self) -> np.ndarray:
        """Per window, the first tap inside the input (PyTorch starts its max there)."""
        starts = np.arange(self.out) * self.stride - self.padding
        return np.maximum(0, _ceil_div(-starts, self.dilation))

    def position(self, window: np.ndarray, tap: np.ndarray) -> np.ndarray:
        """Input position of ``tap`` in ``window``."""
        return window * self.stride - self.padding + tap * self.dilation

    def counts(self, count_include_pad: bool) -> np.ndarray:
        """Average-pool divisor per window: PyTorch counts the padding but never
        the ceil_mode overhang beyond it."""
        start = np.arange(self.out) * self.stride - self.padding
        end = np.minimum(start + self.kernel, self.size + self.padding)
        if count_include_pad:
            return end - start
        return np.minimum(end, self.size) - np.maximum(start, 0)


@dataclass(frozen=True, eq=False)
class AdaptiveWindows:
    """Windows ``[floor(o*size/out), ceil((o+1)*size/out))`` along one axis (no padding)."""

    size: int
    out: int

    @cached_property
    def starts(self) -> np.ndarray:
        return np.arange(self.out) * self.size // self.out

    @cached_property
    def ends(self) -> np.ndarray:
        return _ceil_div((np.arange(self.out) + 1) * self.size, self.out)

    @cached_property
    def taps(self) -> int:
        return int(np.max(self.ends - self.starts))

    @cached_property
    def index(self) -> np.ndarray:
        """(out, taps) input positions; short windows repeat their last element,
        which neither changes a max nor wins a tie (it comes later)."""
        return np.minimum(self.starts[:, None] + np.arange(self.taps), self.ends[:, None] - 1)

    def tap(self, j: int) -> np.ndarray:
        return self.index[:, j]

    def first_valid_tap(self) -> np.ndarray:
        return np.zeros(self.out, dtype=np.int64)

    def position(self, window: np.ndarray, tap: np.ndarray) -> np.ndarray:
        return self.index[window, tap]

    def counts(self, count_include_pad: bool = True) -> np.ndarray:
        return self.ends - self.starts

    def matrix(self, dtype: Any) -> np.ndarray:
        """(out, size) 0/1 matrix: row ``o`` marks window ``o``."""
        positions = np.arange(self.size)
        return ((positions >= self.starts[:, None]) & (positions < self.ends[:, None])).astype(dtype)


Windows = StridedWindows | AdaptiveWindows


def _ceil_div(a: np.ndarray | int, b: int) -> np.ndarray:
    return -(-np.asarray(a) // b)


def _at(axis: int, index: slice | np.ndarray) -> tuple:
    """Index selecting ``index`` along ``axis`` (negative, counted from the end)."""
    return (Ellipsis, index) + (slice(None),) * (-axis - 1)


def _along(values: np.ndarray, axis: int) -> np.ndarray:
    """A 1-D array shaped to broadcast along ``axis`` (negative)."""
    return values.reshape((-1,) + (1,) * (-axis - 1))


def _with_length(shape: tuple[int, ...], axis: int, length: int) -> tuple[int, ...]:
    shape = list(shape)
    shape[axis] = length
    return tuple(shape)


def _pad_axis(x: np.ndarray, axis: int, w: Windows, fill: Any) -> np.ndarray:
    """``x`` along ``axis`` laid out in padded coordinates ``[0, w.extent)``; a view when possible."""
    if isinstance(w, AdaptiveWindows) or (w.padding == 0 and w.extent <= w.size):
        return x
    used = min(w.size, w.extent - w.padding)
    out = np.full(_with_length(x.shape, axis, w.extent), fill, dtype=x.dtype)
    out[_at(axis, slice(w.padding, w.padding + used))] = x[_at(axis, slice(0, used))]
    return out


def _alloc_like(like: np.ndarray, shape: tuple[int, ...], alloc: Any) -> np.ndarray:
    """``alloc(shape)`` with ``like``'s memory order (a channels-last gradient stays channels-last,
    so the convolution before the pool gets it without a transposing copy)."""
    if like.flags.c_contiguous or like.ndim < 2:
        return alloc(shape, dtype=like.dtype)
    order = sorted(range(like.ndim), key=lambda a: -abs(like.strides[a]))
    buffer = alloc(tuple(shape[a] for a in order), dtype=like.dtype)
    return buffer.transpose(np.argsort(order))


def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


# -- max pooling on arrays ---------------------------------------------------------
class MaxPoolCache(NamedTuple):
    """What the backward needs: per axis, the winning tap of each partial window."""

    shape: tuple[int, ...]
    windows: tuple[Windows, ...]
    taps: tuple[np.ndarray, ...]


def _tap_dtype(w: Windows) -> np.dtype:
    return np.dtype(np.uint8) if w.taps <= 255 else np.dtype(np.int32)


def _max_axis(
    x: np.ndarray, axis: int, w: Windows, track: bool, nan_aware: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max over the windows along ``axis`` and, if ``track``, each window's first winning tap.

    The taps are scanned in order with PyTorch's update rule ``v > best`` (plus
    ``isnan(v)`` when ``nan_aware``). Because taps come in increasing order,
    "set arg to j where v wins" is ``arg = max(arg, j * wins)``: plain
    arithmetic on uint8, far cheaper than a masked copy.
    """
    fill = _lowest(x.dtype)
    xp = _pad_axis(x, axis, w, fill)
    first = w.first_valid_tap()
    out_shape = _with_length(x.shape, axis, w.out)
    dtype = _tap_dtype(w)
    if first.any():  # some windows start in the padding: begin at -inf on their first real tap
        best, owned, start, arg = np.full(out_shape, fill, dtype=x.dtype), True, 0, None
        if track:
            arg = np.empty(out_shape, dtype=dtype)  # C order (astype of a broadcast would not be)
            arg[...] = _along(first, axis)
    else:
        best, owned, start, arg = xp[_at(axis, w.tap(0))], False, 1, None
    for j in range(start, w.taps):
        v = xp[_at(axis, w.tap(j))]
        if track:
            wins = v > best
            if nan_aware:
                wins |= np.isnan(v)  # PyTorch: a NaN always replaces the running max
            step = wins.view(np.uint8) if dtype == np.uint8 else wins.astype(dtype)
            if arg is None:
                arg = step if j == 1 else step * dtype.type(j)
            else:
                np.maximum(arg, step * dtype.type(j), out=arg)
        best = np.maximum(best, v, out=best if owned else None)
        owned = True
    if not owned:  # a single tap: the output must not alias the input
        best = best.copy()
    if track and arg is None:
        arg = np.zeros(out_shape, dtype=dtype)
    if track and not nan_aware and x.dtype.kind == "f" and np.isnan(best).any():
        # a NaN reached this output (np.maximum propagates it): redo with the NaN rule
        return _max_axis(x, axis, w, track, nan_aware=True)
    return best, arg


def _max_axis_backward(grad: np.ndarray, arg: np.ndarray, axis: int, w: Windows, fast: bool) -> np.ndarray:
    """Route ``grad`` of each window to its winning tap along ``axis``."""
    if isinstance(w, AdaptiveWindows):
        return _scatter_adaptive((grad * (arg == j) for j in range(w.taps)), axis, w, grad)
    if fast and w.tiles:  # disjoint windows covering the axis: write each tap once
        out = _alloc_like(grad, _with_length(grad.shape, axis, w.size), np.empty)
        for j in range(w.taps):
            np.multiply(grad, arg == j, out=out[_at(axis, w.tap(j))])
        return out
    out = _alloc_like(grad, _with_length(grad.shape, axis, w.size), np.zeros)
    for j in range(w.taps):
        positions, windows = w.tap_in_input(j)  # a tap in the padding receives nothing
        sel = _at(axis, windows)
        out[_at(axis, positions)] += grad[sel] * (arg[sel] == j)  # one tap's positions are distinct
    return out


def _scatter_adaptive(per_tap: Any, axis: int, w: AdaptiveWindows, grad: np.ndarray) -> np.ndarray:
    """Sum tap ``j``'s values into positions ``w.index[:, j]`` along ``axis``."""
    out = np.zeros(_with_length(grad.shape, axis, w.size), dtype=grad.dtype)
    if w.out <= w.size:  # starts strictly increase, so one tap's positions are distinct
        for j, values in enumerate(per_tap):
            out[_at(axis, w.tap(j))] += values
        return out
    # more windows than positions: several windows share a position within one tap
    eye = np.eye(w.size, dtype=grad.dtype)
    for j, values in enumerate(per_tap):
        out += _apply_matrix(values, axis, eye[w.tap(j)].T)
    return out


def max_pool_forward(
    x: np.ndarray, windows: Sequence[Windows], track: bool = True
) -> tuple[np.ndarray, MaxPoolCache | None]:
    """Max pool over the last ``len(windows)`` axes of ``x``.

    With ``track`` the cache for ``max_pool_backward``/``max_pool_indices`` is
    returned too (else ``None``).
    """
    windows = tuple(windows)
    out, taps = x, [None] * len(windows)
    for a in reversed(range(len(windows))):  # innermost axis first: the row-major tie rule
        out, taps[a] = _max_axis(out, a - len(windows), windows[a], track)
    return out, (MaxPoolCache(x.shape, windows, tuple(taps)) if track else None)


def max_pool_backward(grad: np.ndarray, cache: MaxPoolCache, fast: bool = True) -> np.ndarray:
    """Gradient of the input: each output's gradient goes to its (first) maximum.

    ``fast=False`` accumulates even where the windows tile the axis (to test the fast path).
    """
    nd = len(cache.windows)
    for a in range(nd):  # undo the axes outermost first, the reverse of the forward
        grad = _max_axis_backward(grad, cache.taps[a], a - nd, cache.windows[a], fast)
    return grad


def max_pool_indices(cache: MaxPoolCache) -> np.ndarray:
    """PyTorch's ``return_indices``: the flat index of each maximum within its input plane."""
    windows, nd = cache.windows, len(cache.windows)
    lead = cache.shape[: len(cache.shape) - nd]
    sizes = cache.shape[len(lead) :]
    outs = tuple(w.out for w in windows)
    flat = None
    for a, w in enumerate(windows):
        # taps[a] still has the input's length on axes < a; read it at the rows chosen there
        tap = cache.taps[a].astype(np.int64)
        if a > 0:
            tap = tap.reshape(lead + (math.prod(sizes[:a]),) + outs[a:])
            rows = np.clip(flat, 0, math.prod(sizes[:a]) - 1).reshape(
                lead + (math.prod(outs[:a]),) + outs[a:]
            )
            tap = np.take_along_axis(tap, rows, axis=len(lead)).reshape(lead + outs)
        window = _along(np.arange(w.out), a - nd)
        position = w.position(window, tap)
        flat = position if flat is None else flat * sizes[a] + position
    return flat.astype(np.int64)


# -- average pooling on arrays -----------------------------------------------------
def _sum_axis(x: np.ndarray, axis: int, w: Windows) -> np.ndarray:
    if isinstance(w, AdaptiveWindows):
        return _apply_matrix(x, axis, w.matrix(x.dtype))
    xp = _pad_axis(x, axis, w, 0)
    total = np.array(xp[_at(axis, w.tap(0))])
    for j in range(1, w.taps):
        total += xp[_at(axis, w.tap(j))]
    return total


def _sum_axis_backward(grad: np.ndarray, axis: int, w: Windows, fast: bool) -> np.ndarray:
    if isinstance(w, AdaptiveWindows):
        return _apply_matrix(grad, axis, w.matrix(grad.dtype).T)
    if fast and w.tiles:  # disjoint windows covering the axis: write each tap once
        out = _alloc_like(grad, _with_length(grad.shape, axis, w.size), np.empty)
        for j in range(w.taps):
            out[_at(axis, w.tap(j))] = grad
        return out
    out = _alloc_like(grad, _with_length(grad.shape, axis, w.size), np.zeros)
    for j in range(w.taps):
        positions, windows = w.tap_in_input(j)
        out[_at(axis, positions)] += grad[_at(axis, windows)]
    return out


def _apply_matrix(x: np.ndarray, axis: int, matrix: np.ndarray) -> np.ndarray:
    """``matrix @ x`` along ``axis``: (m, n) matrix, axis of length n becomes m."""
    return np.moveaxis(np.moveaxis(x, axis, -1) @ matrix.T, -1, axis)


def _divide(total: np.ndarray, divisor: np.ndarray | int, dtype: np.dtype) -> np.ndarray:
    """``total / divisor`` in ``dtype``; integers truncate toward zero like C++ (and PyTorch)."""
    divisor = np.asarray(divisor)
    if dtype.kind == "f":
        return total / divisor.astype(dtype)
    quotient = np.abs(total) // np.abs(divisor)
    return np.where((total < 0) != (divisor < 0), -quotient, quotient).astype(dtype)


def avg_pool_divisor(
    windows: Sequence[Windows], count_include_pad: bool = True, divisor_override: int | None = None
) -> np.ndarray:
    """Per-output divisor (spatial shape): the product of the per-axis window counts."""
    if divisor_override is not None:
        return np.asarray(divisor_override)
    divisor = np.ones((), dtype=np.int64)
    for a, w in enumerate(windows):
        divisor = divisor * _along(w.counts(count_include_pad), a - len(windows))
    if np.all(divisor == divisor.flat[0]):  # the usual case: one number, a cheaper divide
        return divisor.reshape(-1)[:1].reshape(())
    return divisor


def avg_pool_forward(x: np.ndarray, windows: Sequence[Windows], divisor: np.ndarray | int) -> np.ndarray:
    """Sum over each window of the last ``len(windows)`` axes, divided by ``divisor``."""
    windows = tuple(windows)
    total = x.astype(np.int64) if x.dtype.kind in "iu" else x  # PyTorch sums integers in int64
    for a in reversed(range(len(windows))):
        total = _sum_axis(total, a - len(windows), windows[a])
    return _divide(total, divisor, x.dtype)


def avg_pool_backward(
    grad: np.ndarray, windows: Sequence[Windows], divisor: np.ndarray | int, fast: bool = True
) -> np.ndarray:
    """Gradient of the input: each output's ``grad / divisor`` spread over its window.

    ``fast=False`` accumulates even where the windows tile the axis (to test the fast path).
    """
    windows = tuple(windows)
    grad = grad / np.asarray(divisor).astype(grad.dtype)
    nd = len(windows)
    for a in range(nd):
        grad = _sum_axis_backward(grad, a - nd, windows[a], fast)
    return grad


# -- argument checking -------------------------------------------------------------
_LAYOUTS = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}


def _check_input(x: Tensor, nd: int, op: str, integers: bool) -> None:
    if x.ndim not in (nd + 1, nd + 2):
        layout = _LAYOUTS[nd]
        raise ValueError(
            f"{op}: input must be {nd + 1}-D {layout} or {nd + 2}-D (N, {layout[1:]}. "
            f"Received: input of shape {x.shape}"
        )
    if 0 in x.shape[-nd - 1 :]:
        raise ValueError(
            f"{op}: input has an empty channel or spatial dimension (only the batch may "
            f"be empty). Received: input of shape {x.shape}"
        )
    kind = x.dtype.kind
    if kind != "f" and not (integers and kind in "iu"):
        allowed = "a floating-point or integer" if integers else "a floating-point"
        raise TypeError(f"{op}: input must be {allowed} tensor. Received: input of dtype {x.dtype}")


def _strided_windows(
    op: str,
    nd: int,
    spatial: tuple[int, ...],
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple | None,
    ceil_mode: bool,
) -> tuple[StridedWindows, ...]:
    k = ntuple(kernel_size, nd, "kernel_size", op)
    empty_stride = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
    s = k if empty_stride else ntuple(stride, nd, "stride", op)
    p = ntuple(padding, nd, "padding", op, minimum=0)
    d = (1,) * nd if dilation is None else ntuple(dilation, nd, "dilation", op)
    if any(pi > ki // 2 for pi, ki in zip(p, k, strict=True)):
        raise ValueError(
            f"{op}: padding must be at most half of kernel_size (padding <= kernel_size // 2). "
            f"Received: padding={padding!r}, kernel_size={kernel_size!r}"
        )
    outs = tuple(
        output_size(n, *args, ceil_mode=bool(ceil_mode)) for n, *args in zip(spatial, k, p, s, d, strict=True)
    )
    if min(outs) < 1:
        dil = "" if dilation is None else f", dilation={d}"
        raise ValueError(
            f"{op}: output would be empty: input of spatial size {spatial} with kernel_size={k}, "
            f"stride={s}, padding={p}{dil} gives output size {outs}"
        )
    return tuple(StridedWindows(*args) for args in zip(spatial, k, s, p, d, outs, strict=True))


_WINDOWS_CACHE: dict[tuple, tuple[StridedWindows, ...]] = {}
_WINDOWS_CACHE_SIZE = 256


def _cached_strided_windows(
    op: str,
    nd: int,
    spatial: tuple[int, ...],
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple | None,
    ceil_mode: bool,
) -> tuple[StridedWindows, ...]:
    """``_strided_windows`` remembered by its arguments (the windows are immutable): a layer
    called again on the same shape skips the validation. Failures are not cached."""
    args = (kernel_size, stride, padding, dilation)
    if not (all(cacheable(a) for a in args) and type(ceil_mode) in (bool, int)):
        return _strided_windows(op, nd, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    key = (op, nd, spatial, *args, bool(ceil_mode))
    hit = _WINDOWS_CACHE.get(key)
    if hit is None:
        hit = _strided_windows(op, nd, spatial, kernel_size, stride, padding, dilation, ceil_mode)
        if len(_WINDOWS_CACHE) >= _WINDOWS_CACHE_SIZE:
            _WINDOWS_CACHE.clear()
        _WINDOWS_CACHE[key] = hit
    return hit


def _adaptive_windows(op: str, nd: int, spatial: tuple[int, ...], output_size: Any) -> tuple[Windows, ...]:
    sizes = output_size
    if isinstance(output_size, Sequence) and not isinstance(output_size, str) and len(output_size) == nd:
        sizes = tuple(n if o is None else o for n, o in zip(spatial, output_size, strict=True))
    outs = ntuple(sizes, nd, "output_size", op)
    # an axis that divides evenly is an ordinary tiled pool (kernel = stride = size/out)
    return tuple(
        StridedWindows(n, n // o, n // o, 0, 1, o) if n % o == 0 else AdaptiveWindows(n, o)
        for n, o in zip(spatial, outs, strict=True)
    )


def _check_divisor(op: str, divisor_override: Any) -> None:
    if divisor_override is None:
        return
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, int | np.integer):
        raise TypeError(
            f"{op}: divisor_override must be an int or None. Received: divisor_override={divisor_override!r}"
        )
    if divisor_override == 0:
        raise ValueError(f"{op}: divisor_override must be non-zero. Received: divisor_override=0")


# -- the ops on Tensors ----------------------------------------------------------------
def _max_pool(
    x: Tensor, windows: tuple[Windows, ...], return_indices: bool, relu: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """Max pool (optionally followed by ReLU, fused: ``relu(max) == max(relu)``)."""
    track = return_indices or (is_grad_enabled() and x.requires_grad)
    if not return_indices and _use_tile_kernels(x.data, windows):
        return _max_pool_tiles(x, windows, track, relu)
    out, cache = max_pool_forward(x.data, windows, track=track)
    if relu:
        out = np.maximum(out, 0, out=out)  # NaN stays NaN, as torch.relu

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            # In the pooled output's memory order (channels-last after a convolution),
            # whatever order ``g`` arrives in (batch-innermost from a batch-inner
            # convolution's backward): the per-tap passes below and the convolution's
            # backward then read long runs. LeNet-5's pure-NumPy step: 8.9 -> 6.9 ms.
            masked = np.multiply(g, out > 0, out=np.empty_like(out))
            return (max_pool_backward(masked, cache),)
    else:

        def backward(g: np.ndarray) -> tuple[np.ndarray]:
            return (max_pool_backward(g, cache),)

    result = Tensor._from_op(out, (x,), backward)
    if return_indices:
        return result, Tensor(max_pool_indices(cache))
    return result


def _avg_pool(x: Tensor, windows: tuple[Windows, ...], divisor: np.ndarray) -> Tensor:
    if divisor.ndim == 0 and _use_tile_kernels(x.data, windows):
        return _avg_pool_tiles(x, windows, divisor)
    out = avg_pool_forward(x.data, windows, divisor)
    return Tensor._from_op(out, (x,), lambda g: (avg_pool_backward(g, windows, divisor),))


# -- tiled 2-D pooling in compiled kernels (numba backend) ------------------------------
def _tile_shape(windows: tuple[Windows, ...]) -> tuple[int, int] | None:
    """``(kh, kw)`` when the 2-D windows are disjoint tiles (kernel == stride, no padding,
    dilation 1; a remainder row/column beyond the last tile is allowed), else None."""
    if len(windows) != 2:
        return None
    for w in windows:
        if not isinstance(w, StridedWindows) or w.kernel != w.stride or w.padding or w.dilation != 1:
            return None
        if w.out * w.kernel > w.size:  # ceil_mode overhang
            return None
    return windows[0].kernel, windows[1].kernel


def _use_tile_kernels(x: np.ndarray, windows: tuple[Windows, ...]) -> bool:
    """Compiled kernels for tiled 2-D pools of channels-last float arrays (numba backend)."""
    return (
        x.ndim == 4
        and not x.flags.c_contiguous
        and x.transpose(0, 2, 3, 1).flags.c_contiguous
        and x.dtype.kind == "f"
        and x.dtype.itemsize in (4, 8)
        and x.size > 0
        and _tile_shape(windows) is not None
        and backend.use_numba()
    )


def _grad_nhwc(g: np.ndarray) -> np.ndarray:
    """The upstream gradient as C-contiguous NHWC."""
    return np.ascontiguousarray(g.transpose(0, 2, 3, 1))


def _tile_input_gradient(
    shape: tuple[int, ...], dtype: np.dtype, ho: int, wo: int, kh: int, kw: int
) -> tuple[np.ndarray, np.ndarray]:
    """An NHWC gradient array of ``shape`` and its whole-tile part for the kernels to fill."""
    whole = shape[1] == ho * kh and shape[2] == wo * kw
    dx = (np.empty if whole else np.zeros)(shape, dtype=dtype)  # remainder rows/cols get 0
    return dx, dx[:, : ho * kh, : wo * kw]


def _max_pool_tiles(x: Tensor, windows: tuple[Windows, ...], track: bool, relu: bool) -> Tensor:
    """Tiled 2-D max pool (+ ReLU) of channels-last ``x`` in one compiled pass; the result and
    the input gradient are channels-last too."""
    from .. import _kernels_pool as kernels

    (kh, kw), ho, wo = _tile_shape(windows), windows[0].out, windows[1].out
    a = x.data.transpose(0, 2, 3, 1)  # NHWC memory, C-contiguous
    out = np.empty((a.shape[0], ho, wo, a.shape[3]), dtype=a.dtype)
    arg = np.empty(out.shape, dtype=np.uint8)
    square2 = kh == kw == 2
    if square2:  # taps in registers: 3x faster for few channels (LeNet's C = 6)
        kernels.max_pool_forward_2x2(a, relu, out, arg)
    else:
        kernels.max_pool_forward(a, kh, kw, relu, out, arg)
    shape, dtype = a.shape, a.dtype  # the backward keeps no reference to the input
    per_element = square2 and a.shape[3] < 16  # the generic kernel vectorises over C >= 16

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        dx, tiles = _tile_input_gradient(shape, dtype, ho, wo, kh, kw)
        if per_element:
            kernels.max_pool_backward_2x2(_grad_nhwc(g), arg, out, relu, tiles)
        else:
            kernels.max_pool_backward(_grad_nhwc(g), arg, out, relu, kh, kw, tiles)
        return (dx.transpose(0, 3, 1, 2),)

    return Tensor._from_op(out.transpose(0, 3, 1, 2), (x,), backward)


def _avg_pool_tiles(x: Tensor, windows: tuple[Windows, ...], divisor: np.ndarray) -> Tensor:
    """Tiled 2-D average pool of channels-last ``x`` in one compiled pass (channels-last out)."""
    from .. import _kernels_pool as kernels

    (kh, kw), ho, wo = _tile_shape(windows), windows[0].out, windows[1].out
    a = x.data.transpose(0, 2, 3, 1)  # NHWC memory, C-contiguous
    out = np.empty((a.shape[0], ho, wo, a.shape[3]), dtype=a.dtype)
    d = a.dtype.type(divisor)
    kernels.avg_pool_forward(a, kh, kw, d, out)
    shape, dtype = a.shape, a.dtype

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        dx, tiles = _tile_input_gradient(shape, dtype, ho, wo, kh, kw)
        kernels.avg_pool_backward(_grad_nhwc(g), kh, kw, d, tiles)
        return (dx.transpose(0, 3, 1, 2),)

    return Tensor._from_op(out.transpose(0, 3, 1, 2), (x,), backward)


def _max_pool_nd(
    nd: int,
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    ceil_mode: bool,
    return_indices: bool,
) -> Tensor | tuple[Tensor, Tensor]:
    op = f"max_pool{nd}d"
    x = as_tensor(input)
    _check_input(x, nd, op, integers=True)
    windows = _cached_strided_windows(
        op, nd, x.shape[-nd:], kernel_size, stride, padding, dilation, ceil_mode
    )
    return _max_pool(x, windows, return_indices)


def _avg_pool_nd(
    nd: int,
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Tensor:
    op = f"avg_pool{nd}d"
    x = as_tensor(input)
    _check_input(x, nd, op, integers=True)
    _check_divisor(op, divisor_override)
    windows = _cached_strided_windows(op, nd, x.shape[-nd:], kernel_size, stride, padding, None, ceil_mode)
    return _avg_pool(x, windows, avg_pool_divisor(windows, bool(count_include_pad), divisor_override))


def _adaptive_avg_pool_nd(nd: int, input: ArrayLike, output_size: Any) -> Tensor:  # noqa: A002
    op = f"adaptive_avg_pool{nd}d"
    x = as_tensor(input)
    _check_input(x, nd, op, integers=False)
    windows = _adaptive_windows(op, nd, x.shape[-nd:], output_size)
    return _avg_pool(x, windows, avg_pool_divisor(windows))


def _adaptive_max_pool_nd(
    nd: int,
    input: ArrayLike,  # noqa: A002
    output_size: Any,
    return_indices: bool,
) -> Tensor | tuple[Tensor, Tensor]:
    op = f"adaptive_max_pool{nd}d"
    x = as_tensor(input)
    _check_input(x, nd, op, integers=False)
    return _max_pool(x, _adaptive_windows(op, nd, x.shape[-nd:], output_size), return_indices)


def _relu_max_pool2d(
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
) -> Tensor:
    """``max_pool2d(relu(input), ...)`` computed as ``relu(max_pool2d(input, ...))``.

    Equal values and gradients: ReLU is monotone, so it commutes with the max, and a
    window whose maximum is not positive passes no gradient either way. The ReLU then
    runs on the smaller pooled tensor. ``nn.Sequential`` uses it for ReLU -> MaxPool2d.
    """
    x = as_tensor(input)
    _check_input(x, 2, "max_pool2d", integers=True)
    windows = _cached_strided_windows(
        "max_pool2d", 2, x.shape[-2:], kernel_size, stride, padding, dilation, ceil_mode
    )
    return _max_pool(x, windows, False, relu=True)


def max_pool1d(
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""1-D max pooling: the largest value in each window.

    .. math::
        \text{out}(N_i, C_j, l) = \max_{m < k} \text{input}(N_i, C_j, s\,l - p + d\,m)

    with kernel size ``k``, ``stride`` ``s`` (default ``k``), ``padding`` ``p``
    (``-inf``, at most ``k // 2``) and ``dilation`` ``d``. The gradient goes to
    the first maximum of each window (PyTorch's rule; a NaN counts as the maximum).

    Shape:
        input ``(N, C, L_in)`` or ``(C, L_in)``; output ``(N, C, L_out)`` or ``(C, L_out)``,
        ``L_out = floor((L_in + 2p - d(k - 1) - 1) / s) + 1``. With ``ceil_mode`` the
        division rounds up, but the last window must start inside the input or left padding.
        ``return_indices=True`` also returns the int64 position of each maximum.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.max_pool1d(np.array([[[1.0, 3.0, 2.0, 0.0, 5.0]]]), 2).numpy()
    array([[[3., 2.]]])
    """
    return _max_pool_nd(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""2-D max pooling: the largest value in each window of each plane.

    .. math::
        \text{out}(N_i, C_j, h, w) = \max_{m < k_H,\, n < k_W}
            \text{input}(N_i, C_j, s_H h - p_H + d_H m,\; s_W w - p_W + d_W n)

    ``stride`` defaults to ``kernel_size``; ``padding`` (``-inf``, at most half
    the kernel) and ``dilation`` as in convolution. The gradient goes to the
    first maximum of each window in row-major order (PyTorch's rule; ties are
    common, e.g. zero background).

    Shape:
        input ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``; output ``(N, C, H_out, W_out)``,
        ``H_out = floor((H_in + 2p_H - d_H(k_H - 1) - 1) / s_H) + 1`` (same for W). With
        ``ceil_mode`` the division rounds up, but the last window must start inside the
        input or left padding. ``return_indices=True`` also returns, as int64, each
        maximum's flat position ``h * W_in + w`` in its plane.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> x = np.array([[[[1.0, 2.0, 0.0, 0.0],
    ...                 [4.0, 3.0, 0.0, 0.0]]]])
    >>> out, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> out.numpy(), idx.numpy()
    (array([[[[4., 0.]]]]), array([[[[4, 2]]]]))
    """
    return _max_pool_nd(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""3-D max pooling: the largest value in each window of each volume.

    .. math::
        \text{out}(N_i, C_j, t, h, w) = \max_{l, m, n}
            \text{input}(N_i, C_j, s_D t - p_D + d_D l,\; s_H h - p_H + d_H m,\; s_W w - p_W + d_W n)

    Arguments and the tie rule (first maximum in ``(d, h, w)`` order) as in ``max_pool2d``.

    Shape:
        input ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``; output
        ``(N, C, D_out, H_out, W_out)``, ``D_out = floor((D_in + 2p_D - d_D(k_D - 1) - 1) / s_D) + 1``
        (same for H and W; ``ceil_mode`` as in ``max_pool2d``). Indices are flat
        positions ``(d * H_in + h) * W_in + w``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.max_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2).numpy()
    array([[[[[7.]]]]])
    """
    return _max_pool_nd(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    r"""1-D average pooling: the mean of each window.

    .. math::
        \text{out}(N_i, C_j, l) = \frac{1}{c_l} \sum_{m < k} \text{input}(N_i, C_j, s\,l - p + m)

    Padding is zeros (at most ``k // 2``). The divisor ``c_l`` is the window
    size clipped to the padded input (``count_include_pad=True``: padding zeros
    count, the ceil_mode overhang beyond the padding does not), the number of
    input elements in the window (``count_include_pad=False``), or
    ``divisor_override``. Integer inputs divide by truncation, like PyTorch.

    Shape:
        input ``(N, C, L_in)`` or ``(C, L_in)``; output ``(N, C, L_out)``,
        ``L_out = floor((L_in + 2p - k) / s) + 1`` (``ceil_mode`` as in ``max_pool1d``).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.avg_pool1d(np.array([[[1.0, 3.0, 2.0, 0.0]]]), 2).numpy()
    array([[[2., 1.]]])
    """
    return _avg_pool_nd(
        1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool2d(
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    r"""2-D average pooling: the mean of each window of each plane.

    .. math::
        \text{out}(N_i, C_j, h, w) = \frac{1}{c_{hw}} \sum_{m < k_H,\, n < k_W}
            \text{input}(N_i, C_j, s_H h - p_H + m,\; s_W w - p_W + n)

    ``stride`` defaults to ``kernel_size``; padding is zeros (at most half the
    kernel). The divisor ``c_{hw}`` is the window area clipped to the padded
    input (``count_include_pad=True``: padding counts, the ceil_mode overhang
    does not), the number of input elements in the window
    (``count_include_pad=False``), or ``divisor_override``.

    Shape:
        input ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``; output ``(N, C, H_out, W_out)``,
        ``H_out = floor((H_in + 2p_H - k_H) / s_H) + 1`` (same for W; ``ceil_mode`` as in
        ``max_pool2d``).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> x = np.array([[[[1.0, 2.0], [3.0, 6.0]]]])
    >>> F.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False).numpy()[0, 0]
    array([[1. , 1.5, 2. ],
           [2. , 3. , 4. ],
           [3. , 4.5, 6. ]])
    """
    return _avg_pool_nd(
        2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def avg_pool3d(
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    r"""3-D average pooling: the mean of each window of each volume.

    .. math::
        \text{out}(N_i, C_j, t, h, w) = \frac{1}{c_{thw}} \sum_{l, m, n}
            \text{input}(N_i, C_j, s_D t - p_D + l,\; s_H h - p_H + m,\; s_W w - p_W + n)

    Arguments and the divisor ``c_{thw}`` as in ``avg_pool2d``.

    Shape:
        input ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``; output
        ``(N, C, D_out, H_out, W_out)``, ``D_out = floor((D_in + 2p_D - k_D) / s_D) + 1``
        (same for H and W; ``ceil_mode`` as in ``max_pool2d``).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.avg_pool3d(np.arange(8.0).reshape(1, 1, 2, 2, 2), 2).numpy()
    array([[[[[3.5]]]]])
    """
    return _avg_pool_nd(
        3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    )


def adaptive_avg_pool1d(input: ArrayLike, output_size: int | Sequence[int]) -> Tensor:  # noqa: A002
    r"""1-D adaptive average pooling: ``output_size`` windows that cover the input.

    .. math::
        \text{out}(N_i, C_j, l) = \frac{1}{e_l - b_l} \sum_{b_l \le m < e_l} \text{input}(N_i, C_j, m),
        \quad b_l = \lfloor l L_{in} / L_{out} \rfloor,\; e_l = \lceil (l + 1) L_{in} / L_{out} \rceil

    Shape:
        input ``(N, C, L_in)`` or ``(C, L_in)``; output ``(N, C, L_out)``, ``L_out = output_size``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.adaptive_avg_pool1d(np.array([[[1.0, 2.0, 3.0]]]), 2).numpy()
    array([[[1.5, 2.5]]])
    """
    return _adaptive_avg_pool_nd(1, input, output_size)


def adaptive_avg_pool2d(input: ArrayLike, output_size: int | Sequence[int | None]) -> Tensor:  # noqa: A002
    r"""2-D adaptive average pooling: an ``output_size`` grid of windows that cover each plane.

    .. math::
        \text{out}(N_i, C_j, h, w) = \operatorname{mean}_{b_h \le m < e_h,\; b_w \le n < e_w}
            \text{input}(N_i, C_j, m, n),
        \quad b_h = \lfloor h H_{in} / H_{out} \rfloor,\; e_h = \lceil (h + 1) H_{in} / H_{out} \rceil

    (same for ``w``). Windows may overlap when the sizes do not divide.

    Shape:
        input ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``; output ``(N, C, H_out, W_out)``
        with ``(H_out, W_out) = output_size`` (an int means a square; ``None`` keeps
        the input's size along that axis).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.adaptive_avg_pool2d(np.arange(9.0).reshape(1, 1, 3, 3), (2, None)).numpy()[0, 0]
    array([[1.5, 2.5, 3.5],
           [4.5, 5.5, 6.5]])
    """
    return _adaptive_avg_pool_nd(2, input, output_size)


def adaptive_avg_pool3d(input: ArrayLike, output_size: int | Sequence[int | None]) -> Tensor:  # noqa: A002
    r"""3-D adaptive average pooling: an ``output_size`` grid of windows over each volume.

    .. math::
        \text{out}(N_i, C_j, t, h, w) = \operatorname{mean} \text{ over }
            [b_t, e_t) \times [b_h, e_h) \times [b_w, e_w),
        \quad b_t = \lfloor t D_{in} / D_{out} \rfloor,\; e_t = \lceil (t + 1) D_{in} / D_{out} \rceil

    Shape:
        input ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``; output
        ``(N, C, D_out, H_out, W_out)`` with ``(D_out, H_out, W_out) = output_size``
        (``None`` keeps that axis).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.adaptive_avg_pool3d(np.arange(8.0).reshape(1, 2, 2, 2), 1).numpy()
    array([[[[3.5]]]])
    """
    return _adaptive_avg_pool_nd(3, input, output_size)


def adaptive_max_pool1d(
    input: ArrayLike,  # noqa: A002
    output_size: int | Sequence[int],
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""1-D adaptive max pooling: the maximum of each of ``output_size`` covering windows.

    .. math::
        \text{out}(N_i, C_j, l) = \max_{b_l \le m < e_l} \text{input}(N_i, C_j, m),
        \quad b_l = \lfloor l L_{in} / L_{out} \rfloor,\; e_l = \lceil (l + 1) L_{in} / L_{out} \rceil

    The gradient goes to the first maximum of each window (PyTorch's rule).

    Shape:
        input ``(N, C, L_in)`` or ``(C, L_in)``; output ``(N, C, L_out)``, ``L_out = output_size``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.adaptive_max_pool1d(np.array([[[1.0, 5.0, 3.0]]]), 2).numpy()
    array([[[5., 5.]]])
    """
    return _adaptive_max_pool_nd(1, input, output_size, return_indices)


def adaptive_max_pool2d(
    input: ArrayLike,  # noqa: A002
    output_size: int | Sequence[int | None],
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""2-D adaptive max pooling: the maximum over an ``output_size`` grid of covering windows.

    .. math::
        \text{out}(N_i, C_j, h, w) = \max_{b_h \le m < e_h,\; b_w \le n < e_w} \text{input}(N_i, C_j, m, n),
        \quad b_h = \lfloor h H_{in} / H_{out} \rfloor,\; e_h = \lceil (h + 1) H_{in} / H_{out} \rceil

    (same for ``w``). The gradient goes to the first maximum in row-major order.

    Shape:
        input ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``; output ``(N, C, H_out, W_out)``
        with ``(H_out, W_out) = output_size`` (``None`` keeps that axis).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.adaptive_max_pool2d(np.arange(9.0).reshape(1, 1, 3, 3), 2).numpy()[0, 0]
    array([[4., 5.],
           [7., 8.]])
    """
    return _adaptive_max_pool_nd(2, input, output_size, return_indices)


def adaptive_max_pool3d(
    input: ArrayLike,  # noqa: A002
    output_size: int | Sequence[int | None],
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""3-D adaptive max pooling: the maximum over an ``output_size`` grid of windows per volume.

    .. math::
        \text{out}(N_i, C_j, t, h, w) = \max \text{ over }
            [b_t, e_t) \times [b_h, e_h) \times [b_w, e_w),
        \quad b_t = \lfloor t D_{in} / D_{out} \rfloor,\; e_t = \lceil (t + 1) D_{in} / D_{out} \rceil

    Shape:
        input ``(N, C, D_in, H_in, W_in)`` or ``(C, D_in, H_in, W_in)``; output
        ``(N, C, D_out, H_out, W_out)`` with ``(D_out, H_out, W_out) = output_size``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.adaptive_max_pool3d(np.arange(8.0).reshape(1, 2, 2, 2), 1).numpy()
    array([[[[7.]]]])
    """
    return _adaptive_max_pool_nd(3, input, output_size, return_indices)

"""The windows of a pooling op: their two families, validated once from the op's arguments.

A pooling window is a Cartesian product of one window per spatial axis, so a pool
is computed one axis at a time. Along one axis the windows form one of two
families:

- :class:`StridedWindows` (kernel, stride, padding, dilation): the ordinary pools;
- :class:`AdaptiveWindows` (``start = floor(i*L/out)``, ``end = ceil((i+1)*L/out)``):
  the adaptive pools whose sizes do not divide.

Both expose their windows as *taps*: ``tap(j)`` selects the ``j``-th element of
every window at once, as a slice or an index array, so one axis costs one
vectorised pass per tap.

The functions at the end turn an op's arguments into one window family per axis,
validated once (errors read ``op: what is wrong. Received: name=value``) and
remembered by their arguments. The indexing helpers count axes from the end
(``-1`` is the innermost), because the leading batch and channel axes vary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ._args import cacheable, ntuple, output_size
from ._windows import GeometryCache, effective_kernel, layout, tap_slices

__all__ = [
    "AdaptiveWindows",
    "StridedWindows",
    "Windows",
    "adaptive_windows",
    "avg_pool_divisor",
    "check_divisor",
    "check_input",
    "strided_windows",
]

IntOrTuple = int | Sequence[int]


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
        return (self.out - 1) * self.stride + effective_kernel(self.kernel, self.dilation)

    @property
    def tiles(self) -> bool:
        """True when the windows cut the axis into equal non-overlapping pieces."""
        return (
            self.kernel == self.stride
            and self.padding == 0
            and self.dilation == 1
            and self.size == self.out * self.kernel
        )

    @cached_property
    def _tap_slices(self) -> tuple[slice, ...]:
        # computed once per geometry: the windows are cached, and a tap is read on every call
        steps = ((self.stride,), (self.dilation,), (self.out,))
        return tuple(tap_slices((j,), *steps)[0] for j in range(self.kernel))

    def tap(self, j: int) -> slice:
        """Padded positions of tap ``j`` in every window."""
        return self._tap_slices[j]

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
        return np.maximum(0, ceil_div(-starts, self.dilation))

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
        return ceil_div((np.arange(self.out) + 1) * self.size, self.out)

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


def ceil_div(a: np.ndarray | int, b: int) -> np.ndarray:
    return -(-np.asarray(a) // b)


# -- indexing along one axis (negative, counted from the end) ------------------------------
def at(axis: int, index: slice | np.ndarray) -> tuple:
    """Index selecting ``index`` along ``axis``."""
    return (Ellipsis, index) + (slice(None),) * (-axis - 1)


def along(values: np.ndarray, axis: int) -> np.ndarray:
    """A 1-D array shaped to broadcast along ``axis``."""
    return values.reshape((-1,) + (1,) * (-axis - 1))


def with_length(shape: tuple[int, ...], axis: int, length: int) -> tuple[int, ...]:
    """``shape`` with ``axis`` resized to ``length``."""
    shape = list(shape)
    shape[axis] = length
    return tuple(shape)


def pad_axis(x: np.ndarray, axis: int, w: Windows, fill: Any) -> np.ndarray:
    """``x`` along ``axis`` laid out in padded coordinates ``[0, w.extent)``; a view when possible."""
    if isinstance(w, AdaptiveWindows) or (w.padding == 0 and w.extent <= w.size):
        return x
    used = min(w.size, w.extent - w.padding)
    out = np.full(with_length(x.shape, axis, w.extent), fill, dtype=x.dtype)
    out[at(axis, slice(w.padding, w.padding + used))] = x[at(axis, slice(0, used))]
    return out


def apply_matrix(x: np.ndarray, axis: int, matrix: np.ndarray) -> np.ndarray:
    """``matrix @ x`` along ``axis``: (m, n) matrix, axis of length n becomes m."""
    return np.moveaxis(np.moveaxis(x, axis, -1) @ matrix.T, -1, axis)


def alloc_like(like: np.ndarray, shape: tuple[int, ...], alloc: Any) -> np.ndarray:
    """``alloc(shape)`` with ``like``'s memory order (a channels-last gradient stays channels-last,
    so the convolution before the pool gets it without a transposing copy)."""
    if like.flags.c_contiguous or like.ndim < 2:
        return alloc(shape, dtype=like.dtype)
    order = sorted(range(like.ndim), key=lambda a: -abs(like.strides[a]))
    buffer = alloc(tuple(shape[a] for a in order), dtype=like.dtype)
    return buffer.transpose(np.argsort(order))


# -- the windows of an op, from its validated arguments -----------------------------------
def check_input(x: Any, nd: int, op: str, integers: bool) -> None:
    """``x`` (a Tensor or array) has ``nd`` spatial axes after a channel axis (and maybe a batch)."""
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{op}: input must be {nd + 1}-D {layout(nd)} or {nd + 2}-D {layout(nd, batched=True)}. "
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


def _validated_strided_windows(
    op: str,
    nd: int,
    spatial: tuple[int, ...],
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple | None,
    ceil_mode: bool,
) -> tuple[StridedWindows, ...]:
    """The windows of a max pool (``dilation``) or an average pool (``dilation=None``)."""
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


_STRIDED_WINDOWS: GeometryCache[tuple[StridedWindows, ...]] = GeometryCache()


def strided_windows(
    op: str,
    nd: int,
    spatial: tuple[int, ...],
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple | None,
    ceil_mode: bool,
) -> tuple[StridedWindows, ...]:
    """The validated windows of a max pool (``dilation``) or an average pool (``dilation=None``),
    remembered by the arguments when they are plain ints and tuples (windows are immutable)."""
    args = (kernel_size, stride, padding, dilation)
    if not (all(cacheable(a) for a in args) and type(ceil_mode) in (bool, int)):
        return _validated_strided_windows(op, nd, spatial, *args, ceil_mode)
    key = (op, nd, spatial, *args, bool(ceil_mode))
    return _STRIDED_WINDOWS.get(key, lambda: _validated_strided_windows(op, nd, spatial, *args, ceil_mode))


def adaptive_windows(op: str, nd: int, spatial: tuple[int, ...], output_size: Any) -> tuple[Windows, ...]:
    """The windows of an adaptive pool; ``None`` in ``output_size`` keeps that axis."""
    sizes = output_size
    if isinstance(output_size, Sequence) and not isinstance(output_size, str) and len(output_size) == nd:
        sizes = tuple(n if o is None else o for n, o in zip(spatial, output_size, strict=True))
    outs = ntuple(sizes, nd, "output_size", op)
    # an axis that divides evenly is an ordinary tiled pool (kernel = stride = size/out)
    return tuple(
        StridedWindows(n, n // o, n // o, 0, 1, o) if n % o == 0 else AdaptiveWindows(n, o)
        for n, o in zip(spatial, outs, strict=True)
    )


def check_divisor(op: str, divisor_override: Any) -> None:
    """``divisor_override`` is ``None`` or a non-zero int."""
    if divisor_override is None:
        return
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, int | np.integer):
        raise TypeError(
            f"{op}: divisor_override must be an int or None. Received: divisor_override={divisor_override!r}"
        )
    if divisor_override == 0:
        raise ValueError(f"{op}: divisor_override must be non-zero. Received: divisor_override=0")


def avg_pool_divisor(
    windows: Sequence[Windows], count_include_pad: bool = True, divisor_override: int | None = None
) -> np.ndarray:
    """Per-output divisor (spatial shape): the product of the per-axis window counts."""
    if divisor_override is not None:
        return np.asarray(divisor_override)
    divisor = np.ones((), dtype=np.int64)
    for a, w in enumerate(windows):
        divisor = divisor * along(w.counts(count_include_pad), a - len(windows))
    if np.all(divisor == divisor.flat[0]):  # the usual case: one number, a cheaper divide
        return divisor.reshape(-1)[:1].reshape(())
    return divisor

"""Sliding windows, shared by convolution and pooling.

A convolution or a pooling visits, for every output position ``y`` along an axis,
the input cells ``s*y + d*k`` for the kernel taps ``k = 0 .. kernel-1`` (stride
``s``, dilation ``d``). The helpers here are the only places that spell that out:

- :func:`effective_kernel`: the extent ``d*(k-1)+1`` one window covers;
- :func:`tap_slices`: the cells one tap reads for every output position, as slices;
- :func:`window_view`: every window at once, as a strided view (no copy);
- :func:`layout`: the shape names used in error messages, ``"(N, C, H, W)"``;
- :class:`GeometryCache`: validated geometry remembered by its arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["GeometryCache", "effective_kernel", "layout", "tap_slices", "window_view"]

_SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def layout(d: int, batched: bool = False, channels: str = "C") -> str:
    """Shape names for error messages: ``layout(2)`` is ``"(C, H, W)"``, batched ``"(N, C, H, W)"``.

    >>> layout(1, batched=True)
    '(N, C, L)'
    """
    names = (*(("N",) if batched else ()), *((channels,) if channels else ()), *_SPATIAL_NAMES[d])
    return "(" + ", ".join(names) + ")"


def effective_kernel(kernel: int, dilation: int) -> int:
    """The input extent one window covers: ``dilation*(kernel-1) + 1``.

    >>> effective_kernel(3, 2)
    5
    """
    return dilation * (kernel - 1) + 1


def tap_slices(
    offsets: Sequence[int], stride: Sequence[int], dilation: Sequence[int], out_size: Sequence[int]
) -> tuple[slice, ...]:
    """The input cells that kernel tap ``offsets`` reads for every output position: ``s*y + d*k``.

    >>> tap_slices((1,), (2,), (1,), (3,))
    (slice(1, 6, 2),)
    """
    return tuple(
        slice(dl * k, dl * k + s * (m - 1) + 1, s)
        for k, s, dl, m in zip(offsets, stride, dilation, out_size, strict=True)
    )


def window_view(
    a: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    out_size: Sequence[int],
    axes: Sequence[int],
) -> np.ndarray:
    """Every window of ``a`` along ``axes``, as a view: those axes become output positions and
    one axis per kernel dimension is appended at the end.

    ``view[..., y, ..., k] = a[..., s*y + d*k, ...]``.

    >>> window_view(np.arange(5.0), (3,), (2,), (1,), (2,), (0,)).tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0]]
    """
    axes = tuple(ax % a.ndim for ax in axes)
    spans = tuple(effective_kernel(k, dl) for k, dl in zip(kernel, dilation, strict=True))
    windows = sliding_window_view(a, spans, axis=axes)
    index: list[slice] = [slice(None)] * windows.ndim
    for ax, s, m in zip(axes, stride, out_size, strict=True):
        index[ax] = slice(None, s * (m - 1) + 1, s)
    for i, dl in enumerate(dilation):
        index[a.ndim + i] = slice(None, None, dl)
    return windows[tuple(index)]


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class GeometryCache(Generic[V]):
    """Validated geometry remembered by its (hashable) arguments.

    A layer called again on the same shapes skips the validation, which dominates
    small calls such as batch-1 inference. Only successful results are stored, so bad
    arguments raise on every call. Bounded: emptied when ``size`` entries are reached.
    """

    def __init__(self, size: int = 256):
        self.size = size
        self._entries: dict[Hashable, V] = {}

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        hit = self._entries.get(key)
        if hit is None:
            hit = compute()
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[key] = hit
        return hit

    def clear(self) -> None:
        self._entries.clear()

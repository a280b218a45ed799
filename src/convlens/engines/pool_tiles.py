"""The ``tiles`` engine: 2-D max and average pooling of channels-last inputs in compiled kernels.

It applies where the windows cut the plane into disjoint tiles (kernel == stride,
no padding, dilation 1; rows and columns beyond the last whole tile are allowed)
and the input is a float32 or float64 ``(N, C, H, W)`` view of NHWC memory, which
is what the convolutions produce. One compiled pass over the NHWC memory reads
each input element once and writes each output once; the results and the input
gradient are channels-last too. The max pool keeps the winning tap of each tile as
uint8 (PyTorch's first-maximum and NaN rules; so at most 256 taps per tile) and can
fuse a following ReLU.

Registered for the ``max_pool`` and ``avg_pool`` families with ``needs_numba``; the
reference engine (``functional/pool.py``) is its oracle in the tests. How it wins,
and where, is in docs/performance.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backend
from ..functional._pool_windows import StridedWindows, Windows
from ..functional.pool import PoolImpl
from .tuning import TUNING

__all__ = ["why_not_avg_pool", "why_not_max_pool"]


# -- where the engine applies ----------------------------------------------------------
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


def _why_not(x: np.ndarray, windows: tuple[Windows, ...]) -> str | None:
    if len(windows) != 2:
        return f"it pools 2-D inputs only. Received: {len(windows)}-D pooling"
    if x.ndim != 4:
        return f"it needs a batched (N, C, H, W) input. Received: input of shape {x.shape}"
    if _tile_shape(windows) is None:
        return (
            "it needs windows that tile the plane (kernel_size == stride, no padding, "
            "dilation 1, no ceil_mode overhang, not adaptive)"
        )
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        return f"it needs a float32 or float64 input. Received: dtype={x.dtype}"
    if x.flags.c_contiguous or not x.transpose(0, 2, 3, 1).flags.c_contiguous:
        return "it needs a channels-last input (an (N, C, H, W) view of NHWC memory)"
    if x.size == 0:
        return f"it needs a non-empty input. Received: input of shape {x.shape}"
    return None


def why_not_max_pool(x: np.ndarray, windows: tuple[Windows, ...], return_indices: bool) -> str | None:
    """Why the engine does not apply to this max pool (``None`` when it does)."""
    if return_indices:
        return "it does not compute indices. Received: return_indices=True"
    reason = _why_not(x, windows)
    if reason is None and windows[0].kernel * windows[1].kernel > 256:
        kernel = (windows[0].kernel, windows[1].kernel)
        return f"it keeps the winning tap as uint8: at most 256 per tile. Received: kernel_size={kernel}"
    return reason


def why_not_avg_pool(x: np.ndarray, windows: tuple[Windows, ...], divisor: np.ndarray) -> str | None:
    """Why the engine does not apply to this average pool (``None`` when it does)."""
    reason = _why_not(x, windows)
    if reason is None and np.ndim(divisor) != 0:
        return "it needs one divisor for every window"
    return reason


# -- forward and backward ----------------------------------------------------------------
class TileState(NamedTuple):
    """What the backward needs (no reference to the input)."""

    shape: tuple[int, ...]  # the input's NHWC shape
    dtype: np.dtype
    kernel: tuple[int, int]
    tiles: tuple[int, int]  # (H_out, W_out)
    out: np.ndarray | None = None  # max pool: the NHWC output (the fused ReLU's mask)
    arg: np.ndarray | None = None  # max pool: the winning tap of each tile
    relu: bool = False
    divisor: float = 1.0  # average pool


def _as_nhwc(x: np.ndarray) -> np.ndarray:
    """The C-contiguous NHWC memory of a channels-last ``(N, C, H, W)`` view (or gradient)."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _input_gradient(state: TileState) -> tuple[np.ndarray, np.ndarray]:
    """An NHWC gradient array of the input's shape and its whole-tile part for the kernels to fill."""
    (kh, kw), (ho, wo) = state.kernel, state.tiles
    whole = state.shape[1] == ho * kh and state.shape[2] == wo * kw
    dx = (np.empty if whole else np.zeros)(state.shape, dtype=state.dtype)  # remainder rows/cols get 0
    return dx, dx[:, : ho * kh, : wo * kw]


def max_pool_forward(
    x: np.ndarray, windows: tuple[Windows, ...], track: bool, relu: bool
) -> tuple[np.ndarray, TileState]:
    """Tiled 2-D max pool (then ReLU, if ``relu``) of channels-last ``x`` in one compiled pass.

    The winning taps are kept whether or not ``track`` asks: the kernel finds them anyway.
    """
    from ._numba import pool as kernels

    (kh, kw), ho, wo = _tile_shape(windows), windows[0].out, windows[1].out
    a = x.transpose(0, 2, 3, 1)  # NHWC memory, C-contiguous
    out = np.empty((a.shape[0], ho, wo, a.shape[3]), dtype=a.dtype)
    arg = np.empty(out.shape, dtype=np.uint8)
    if kh == kw == 2:  # the taps in registers: few channels do not vectorise the generic kernel
        kernels.max_pool_forward_2x2(a, relu, out, arg)
    else:
        kernels.max_pool_forward(a, kh, kw, relu, out, arg)
    return out.transpose(0, 3, 1, 2), TileState(a.shape, a.dtype, (kh, kw), (ho, wo), out, arg, relu)


def max_pool_backward(grad: np.ndarray, state: TileState) -> np.ndarray:
    """Each tile's gradient to its winning tap (where the fused ReLU passed it); NHWC memory."""
    from ._numba import pool as kernels

    dx, tiles = _input_gradient(state)
    g = _as_nhwc(grad)
    if state.kernel == (2, 2) and state.shape[3] < TUNING.pool_per_element_below:
        kernels.max_pool_backward_2x2(g, state.arg, state.out, state.relu, tiles)
    else:
        kernels.max_pool_backward(g, state.arg, state.out, state.relu, *state.kernel, tiles)
    return dx.transpose(0, 3, 1, 2)


def avg_pool_forward(
    x: np.ndarray, windows: tuple[Windows, ...], divisor: np.ndarray
) -> tuple[np.ndarray, TileState]:
    """Tiled 2-D average pool of channels-last ``x`` in one compiled pass (channels-last out)."""
    from ._numba import pool as kernels

    (kh, kw), ho, wo = _tile_shape(windows), windows[0].out, windows[1].out
    a = x.transpose(0, 2, 3, 1)  # NHWC memory, C-contiguous
    out = np.empty((a.shape[0], ho, wo, a.shape[3]), dtype=a.dtype)
    d = a.dtype.type(divisor)
    kernels.avg_pool_forward(a, kh, kw, d, out)
    return out.transpose(0, 3, 1, 2), TileState(a.shape, a.dtype, (kh, kw), (ho, wo), divisor=d)


def avg_pool_backward(grad: np.ndarray, state: TileState) -> np.ndarray:
    """Each tile's ``grad / divisor`` spread over the tile; NHWC memory."""
    from ._numba import pool as kernels

    dx, tiles = _input_gradient(state)
    kernels.avg_pool_backward(_as_nhwc(grad), *state.kernel, state.divisor, tiles)
    return dx.transpose(0, 3, 1, 2)


backend.register(
    backend.Engine(
        family="max_pool",
        name="tiles",
        impl=PoolImpl(max_pool_forward, max_pool_backward),
        why_not=why_not_max_pool,
        needs_numba=True,
    )
)
backend.register(
    backend.Engine(
        family="avg_pool",
        name="tiles",
        impl=PoolImpl(avg_pool_forward, avg_pool_backward),
        why_not=why_not_avg_pool,
        needs_numba=True,
    )
)

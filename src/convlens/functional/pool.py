"""Pooling: max, average and adaptive pooling in 1-D, 2-D and 3-D (PyTorch's semantics).

This module holds the public ops and the **reference engine**, which reads top to
bottom; ``_pool_windows.py`` turns an op's arguments into validated windows. A
pooling window is a Cartesian product of one window per spatial axis, so every
pool is computed one axis at a time, innermost axis first: a max over a box is the max
over rows of the max within each row, and a sum likewise. Along one axis the
engine makes one vectorised pass per window *tap* (the ``j``-th element of every
window at once), never a loop over pixels or samples:

- max: ``np.maximum`` between the strided views of the taps (for 2x2/2, the
  pairwise max of width pairs, then of height pairs). The winning tap is kept as
  uint8 via ``arg = max(arg, j * (v > best))``, as taps come in increasing order.
  The backward adds ``grad * (arg == j)`` into each tap's strided slice.
- average: the taps' sum divided by the window count; the backward spreads
  ``grad / count`` back over the same slices.

Where the windows tile an axis (kernel == stride, no padding, dilation 1), the
backward writes each tap once into an empty array instead of accumulating into
zeros: the taps' slices are disjoint and cover the axis.

Tie rule. PyTorch's max pool scans a window in row-major order and keeps the
first maximum (``val > max``; a NaN always wins, so the last NaN is kept).
Reducing the innermost axis first with that same rule picks the same element:
the first maximum of the first row that reaches the overall maximum. Ties are
common (zero background after ReLU), and they decide where the gradient goes.

NaN rule. ``np.maximum`` propagates a NaN, so the plain pass is right about the
values; only when a NaN reaches an output is the axis redone with PyTorch's rule
to find the winning tap. Inputs without NaN pay nothing for it.

Engines. Every op chooses its engine once, in the forward, with
``backend.choose("max_pool" | "avg_pool", ...)``; the backward runs the engine
kept with the saved state. The compiled engines live in ``convlens.engines``
and are tested against this one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .. import backend
from ..tensor import ArrayLike, Tensor, as_tensor, is_grad_enabled
from ._pool_windows import (
    AdaptiveWindows,
    Windows,
    adaptive_windows,
    alloc_like,
    along,
    apply_matrix,
    at,
    avg_pool_divisor,
    check_divisor,
    check_input,
    pad_axis,
    strided_windows,
    with_length,
)

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
    "relu_max_pool2d",
]

IntOrTuple = int | Sequence[int]


# -- the reference engine: max pooling on arrays -----------------------------------------
class MaxPoolCache(NamedTuple):
    """What the backward needs: per axis, the winning tap of each partial window, and, when a
    ReLU was fused after the max, the pooled output (its gradient passes where it is > 0)."""

    shape: tuple[int, ...]
    windows: tuple[Windows, ...]
    taps: tuple[np.ndarray, ...]
    relu_output: np.ndarray | None = None


def _tap_dtype(w: Windows) -> np.dtype:
    return np.dtype(np.uint8) if w.taps <= 255 else np.dtype(np.int32)


def _lowest(dtype: np.dtype) -> Any:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


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
    xp = pad_axis(x, axis, w, fill)
    first = w.first_valid_tap()
    out_shape = with_length(x.shape, axis, w.out)
    dtype = _tap_dtype(w)
    if first.any():  # some windows start in the padding: begin at -inf on their first real tap
        best, owned, start, arg = np.full(out_shape, fill, dtype=x.dtype), True, 0, None
        if track:
            arg = np.empty(out_shape, dtype=dtype)  # C order (astype of a broadcast would not be)
            arg[...] = along(first, axis)
    else:
        best, owned, start, arg = xp[at(axis, w.tap(0))], False, 1, None
    for j in range(start, w.taps):
        v = xp[at(axis, w.tap(j))]
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
        out = alloc_like(grad, with_length(grad.shape, axis, w.size), np.empty)
        for j in range(w.taps):
            np.multiply(grad, arg == j, out=out[at(axis, w.tap(j))])
        return out
    out = alloc_like(grad, with_length(grad.shape, axis, w.size), np.zeros)
    for j in range(w.taps):
        positions, windows = w.tap_in_input(j)  # a tap in the padding receives nothing
        sel = at(axis, windows)
        out[at(axis, positions)] += grad[sel] * (arg[sel] == j)  # one tap's positions are distinct
    return out


def _scatter_adaptive(per_tap: Any, axis: int, w: AdaptiveWindows, grad: np.ndarray) -> np.ndarray:
    """Sum tap ``j``'s values into positions ``w.index[:, j]`` along ``axis``."""
    out = np.zeros(with_length(grad.shape, axis, w.size), dtype=grad.dtype)
    if w.out <= w.size:  # starts strictly increase, so one tap's positions are distinct
        for j, values in enumerate(per_tap):
            out[at(axis, w.tap(j))] += values
        return out
    # more windows than positions: several windows share a position within one tap
    eye = np.eye(w.size, dtype=grad.dtype)
    for j, values in enumerate(per_tap):
        out += apply_matrix(values, axis, eye[w.tap(j)].T)
    return out


def max_pool_forward(
    x: np.ndarray, windows: Sequence[Windows], track: bool = True, relu: bool = False
) -> tuple[np.ndarray, MaxPoolCache | None]:
    """Max pool over the last ``len(windows)`` axes of ``x`` (then a ReLU, if ``relu``).

    With ``track`` the cache for ``max_pool_backward``/``max_pool_indices`` is
    returned too (else ``None``).
    """
    windows = tuple(windows)
    out, taps = x, [None] * len(windows)
    for a in reversed(range(len(windows))):  # innermost axis first: the row-major tie rule
        out, taps[a] = _max_axis(out, a - len(windows), windows[a], track)
    if relu:
        out = np.maximum(out, 0, out=out)  # NaN stays NaN, as torch.relu
    if not track:
        return out, None
    return out, MaxPoolCache(x.shape, windows, tuple(taps), out if relu else None)


def max_pool_backward(grad: np.ndarray, cache: MaxPoolCache, fast: bool = True) -> np.ndarray:
    """Gradient of the input: each output's gradient goes to its (first) maximum.

    ``fast=False`` accumulates even where the windows tile the axis (to test the fast path).
    """
    if cache.relu_output is not None:
        # masked into the pooled output's memory order (channels-last after a convolution),
        # whatever order ``grad`` arrives in: the per-tap passes below and the convolution's
        # backward then read long runs
        out = cache.relu_output
        grad = np.multiply(grad, out > 0, out=np.empty_like(out))
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
        window = along(np.arange(w.out), a - nd)
        position = w.position(window, tap)
        flat = position if flat is None else flat * sizes[a] + position
    return flat.astype(np.int64)


# -- the reference engine: average pooling on arrays ----------------------------------
class AvgPoolCache(NamedTuple):
    """What the backward needs: the windows and the divisor of each output."""

    windows: tuple[Windows, ...]
    divisor: np.ndarray


def _sum_axis(x: np.ndarray, axis: int, w: Windows) -> np.ndarray:
    if isinstance(w, AdaptiveWindows):
        return apply_matrix(x, axis, w.matrix(x.dtype))
    xp = pad_axis(x, axis, w, 0)
    total = np.array(xp[at(axis, w.tap(0))])
    for j in range(1, w.taps):
        total += xp[at(axis, w.tap(j))]
    return total


def _sum_axis_backward(grad: np.ndarray, axis: int, w: Windows, fast: bool) -> np.ndarray:
    if isinstance(w, AdaptiveWindows):
        return apply_matrix(grad, axis, w.matrix(grad.dtype).T)
    if fast and w.tiles:  # disjoint windows covering the axis: write each tap once
        out = alloc_like(grad, with_length(grad.shape, axis, w.size), np.empty)
        for j in range(w.taps):
            out[at(axis, w.tap(j))] = grad
        return out
    out = alloc_like(grad, with_length(grad.shape, axis, w.size), np.zeros)
    for j in range(w.taps):
        positions, windows = w.tap_in_input(j)
        out[at(axis, positions)] += grad[at(axis, windows)]
    return out


def _divide(total: np.ndarray, divisor: np.ndarray | int, dtype: np.dtype) -> np.ndarray:
    """``total / divisor`` in ``dtype``; integers truncate toward zero like C++ (and PyTorch)."""
    divisor = np.asarray(divisor)
    if dtype.kind == "f":
        return total / divisor.astype(dtype)
    quotient = np.abs(total) // np.abs(divisor)
    return np.where((total < 0) != (divisor < 0), -quotient, quotient).astype(dtype)


def avg_pool_forward(
    x: np.ndarray, windows: Sequence[Windows], divisor: np.ndarray
) -> tuple[np.ndarray, AvgPoolCache]:
    """Sum over each window of the last ``len(windows)`` axes, divided by ``divisor``."""
    windows = tuple(windows)
    total = x.astype(np.int64) if x.dtype.kind in "iu" else x  # PyTorch sums integers in int64
    for a in reversed(range(len(windows))):
        total = _sum_axis(total, a - len(windows), windows[a])
    return _divide(total, divisor, x.dtype), AvgPoolCache(windows, divisor)


def avg_pool_backward(grad: np.ndarray, cache: AvgPoolCache, fast: bool = True) -> np.ndarray:
    """Gradient of the input: each output's ``grad / divisor`` spread over its window.

    ``fast=False`` accumulates even where the windows tile the axis (to test the fast path).
    """
    grad = grad / np.asarray(cache.divisor).astype(grad.dtype)
    nd = len(cache.windows)
    for a in range(nd):
        grad = _sum_axis_backward(grad, a - nd, cache.windows[a], fast)
    return grad


# -- engines ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolImpl:
    """How an engine of the ``max_pool`` or ``avg_pool`` family computes (its ``Engine.impl``).

    ``forward(x, windows, track, relu)`` (max) or ``forward(x, windows, divisor)`` (avg)
    returns ``(output, state)``; ``backward(grad, state)`` the input gradient;
    ``indices(state)`` PyTorch's ``return_indices`` (max pools; ``None`` if unsupported).
    """

    forward: Callable[..., tuple[np.ndarray, Any]]
    backward: Callable[[np.ndarray, Any], np.ndarray]
    indices: Callable[[Any], np.ndarray] | None = None


backend.register(
    backend.Engine(
        family="max_pool",
        name="reference",
        impl=PoolImpl(max_pool_forward, max_pool_backward, max_pool_indices),
        reference=True,
    )
)
backend.register(
    backend.Engine(
        family="avg_pool",
        name="reference",
        impl=PoolImpl(avg_pool_forward, avg_pool_backward),
        reference=True,
    )
)


# -- the ops on Tensors ----------------------------------------------------------------
def _max_pool(
    op: str, x: Tensor, windows: tuple[Windows, ...], return_indices: bool, relu: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """Max pool (then ReLU, if ``relu``) with the engine the backend chooses."""
    track = return_indices or (is_grad_enabled() and x.requires_grad)
    engine: PoolImpl = backend.choose("max_pool", op, x.data, windows, return_indices).impl
    out, state = engine.forward(x.data, windows, track, relu)
    result = Tensor._from_op(out, (x,), lambda g: (engine.backward(g, state),))
    if return_indices:
        return result, Tensor(engine.indices(state))
    return result


def _avg_pool(op: str, x: Tensor, windows: tuple[Windows, ...], divisor: np.ndarray) -> Tensor:
    engine: PoolImpl = backend.choose("avg_pool", op, x.data, windows, divisor).impl
    out, state = engine.forward(x.data, windows, divisor)
    return Tensor._from_op(out, (x,), lambda g: (engine.backward(g, state),))


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
    check_input(x, nd, op, integers=True)
    windows = strided_windows(op, nd, x.shape[-nd:], kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool(op, x, windows, return_indices)


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
    check_input(x, nd, op, integers=True)
    check_divisor(op, divisor_override)
    windows = strided_windows(op, nd, x.shape[-nd:], kernel_size, stride, padding, None, ceil_mode)
    return _avg_pool(op, x, windows, avg_pool_divisor(windows, bool(count_include_pad), divisor_override))


def _adaptive_avg_pool_nd(nd: int, input: ArrayLike, output_size: Any) -> Tensor:  # noqa: A002
    op = f"adaptive_avg_pool{nd}d"
    x = as_tensor(input)
    check_input(x, nd, op, integers=False)
    windows = adaptive_windows(op, nd, x.shape[-nd:], output_size)
    return _avg_pool(op, x, windows, avg_pool_divisor(windows))


def _adaptive_max_pool_nd(
    nd: int,
    input: ArrayLike,  # noqa: A002
    output_size: Any,
    return_indices: bool,
) -> Tensor | tuple[Tensor, Tensor]:
    op = f"adaptive_max_pool{nd}d"
    x = as_tensor(input)
    check_input(x, nd, op, integers=False)
    return _max_pool(op, x, adaptive_windows(op, nd, x.shape[-nd:], output_size), return_indices)


# -- the public ops -------------------------------------------------------------------
def relu_max_pool2d(
    input: ArrayLike,  # noqa: A002
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
) -> Tensor:
    r"""``max_pool2d(relu(input), ...)``, computed in the other order: ``relu(max_pool2d(input, ...))``.

    PyTorch has no such op; ``nn.fuse`` uses it for a ReLU followed by a MaxPool2d.

    .. math::
        \text{out}(N_i, C_j, h, w) = \max\Bigl(0,\; \max_{m < k_H,\, n < k_W}
            \text{input}(N_i, C_j, s_H h - p_H + d_H m,\; s_W w - p_W + d_W n)\Bigr)

    The values and the gradient are those of ``max_pool2d(relu(input))``: ReLU is
    monotone, so it commutes with the max, and a window whose maximum is not
    positive passes no gradient either way. The ReLU then runs on the pooled
    tensor, which is smaller. One difference from the two PyTorch ops: where the
    maximum is NaN, the gradient is 0 here (PyTorch's ReLU passes it).

    Shape:
        as ``max_pool2d``: input ``(N, C, H_in, W_in)`` or ``(C, H_in, W_in)``, output
        ``(N, C, H_out, W_out)``, ``H_out = floor((H_in + 2p_H - d_H(k_H - 1) - 1) / s_H) + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.relu_max_pool2d(np.array([[[[-3.0, -1.0], [-2.0, -4.0]]]]), 2).numpy()
    array([[[[0.]]]])
    """
    op = "relu_max_pool2d"
    x = as_tensor(input)
    check_input(x, 2, op, integers=True)
    windows = strided_windows(op, 2, x.shape[-2:], kernel_size, stride, padding, dilation, ceil_mode)
    return _max_pool(op, x, windows, False, relu=True)


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

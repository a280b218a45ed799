"""Slow, obviously correct convolutions: the oracle of every fast path.

Straight from the formulas, one output (or input) position and one kernel tap
at a time; only the sum over the batch and the channels of a group is
vectorised. No im2col, no GEMM, no strides: nothing clever to get wrong.

    conv:            out[n, o, y] = b[o] + sum_{c,k} w[o, c, k] * x[n, g*Cg + c, s*y + d*k - p]
    transposed conv: out[n, g*Og + o, s*y + d*k - p] += x[n, c, y] * w[c, o, k]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_NUMPY_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def conv_reference(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """N-d convolution of a batched ``x (N, C, *S)`` with ``w (O, C/groups, *k)``.

    ``padding`` is one ``(before, after)`` pair per spatial axis. The input is
    padded with ``np.pad`` (reflect/edge/wrap are NumPy's names for PyTorch's
    reflect/replicate/circular), then every output cell is a sum over taps.
    """
    d = x.ndim - 2
    widths = [(0, 0), (0, 0), *padding]
    xp = np.pad(x, widths, mode=_NUMPY_MODE[padding_mode])
    n, o_channels = x.shape[0], w.shape[0]
    cg, og = w.shape[1], o_channels // groups
    kernel = w.shape[2:]
    out_size = [(xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(d)]
    out = np.zeros((n, o_channels, *out_size), dtype=np.float64)
    for o in range(o_channels):
        group = o // og
        channels = slice(group * cg, (group + 1) * cg)
        for y in np.ndindex(*out_size):
            total = np.zeros(n)
            for k in np.ndindex(*kernel):
                position = tuple(stride[i] * y[i] + dilation[i] * k[i] for i in range(d))
                total += xp[(slice(None), channels, *position)] @ w[(o, slice(None), *k)]
            out[(slice(None), o, *y)] = total + (0.0 if b is None else b[o])
    return out


def conv_transpose_reference(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    dilation: Sequence[int],
    groups: int,
) -> np.ndarray:
    """N-d transposed convolution of a batched ``x (N, C_in, *S)`` with ``w (C_in, C_out/groups, *k)``.

    Every input cell ``x[n, c, y]`` adds ``x * w[c, o, k]`` at output position
    ``s*y + d*k - p`` (dropped when outside the output).
    """
    d = x.ndim - 2
    n, c_in = x.shape[:2]
    og, kernel = w.shape[1], w.shape[2:]
    cg = c_in // groups
    out_size = [
        (x.shape[2 + i] - 1) * stride[i]
        - 2 * padding[i]
        + dilation[i] * (kernel[i] - 1)
        + output_padding[i]
        + 1
        for i in range(d)
    ]
    out = np.zeros((n, og * groups, *out_size), dtype=np.float64)
    for c in range(c_in):
        group = c // cg
        for y in np.ndindex(*x.shape[2:]):
            for k in np.ndindex(*kernel):
                position = tuple(stride[i] * y[i] + dilation[i] * k[i] - padding[i] for i in range(d))
                if all(0 <= position[i] < out_size[i] for i in range(d)):
                    contribution = np.outer(x[(slice(None), c, *y)], w[(c, slice(None), *k)])
                    out[(slice(None), slice(group * og, (group + 1) * og), *position)] += contribution
    if b is not None:
        out += b.reshape(-1, *(1,) * d)
    return out

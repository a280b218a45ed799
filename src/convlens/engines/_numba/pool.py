"""numba kernels of the tiled 2-D pooling engine (kernel == stride, no padding, dilation 1).

Imported by ``engines/pool_tiles.py`` when that engine runs, never by
``import convlens``. Serial (``parallel=False``) like every kernel here: the
GEMMs own the threads. Cached on disk (``cache=True``).

Arrays are 4-D ``(N, H, W, C)`` C-contiguous: the NHWC memory of a channels-last
activation (what convolutions produce). One pass reads each input element once
and writes each output once; the max pool keeps the winning tap (0 .. kh*kw-1,
row-major) as uint8, scanned with PyTorch's rule ``v > best or isnan(v)`` (first
maximum wins, a NaN always replaces the running maximum). ``relu`` fuses a
following ReLU: it commutes with the max, so it runs on the smaller output, and
its backward mask is ``out > 0``.
"""

from __future__ import annotations

import numba

_JIT = {"nogil": True, "cache": True}


@numba.njit(**_JIT)
def max_pool_forward(x, kh, kw, relu, out, arg):  # pragma: no cover - compiled
    """``out[b, i, j, c] = max`` over tile ``(i, j)``; ``arg`` its first winning tap."""
    batch, ho, wo, channels = out.shape
    for b in range(batch):
        for i in range(ho):
            for j in range(wo):
                best = out[b, i, j]
                win = arg[b, i, j]
                first = x[b, i * kh, j * kw]
                for c in range(channels):
                    best[c] = first[c]
                    win[c] = 0
                for di in range(kh):
                    for dj in range(kw):
                        if di == 0 and dj == 0:
                            continue
                        tap = di * kw + dj
                        row = x[b, i * kh + di, j * kw + dj]
                        for c in range(channels):  # selects, not branches: vectorised
                            v, b0 = row[c], best[c]
                            take = (v > b0) | (v != v)
                            best[c] = v if take else b0
                            win[c] = tap if take else win[c]
                if relu:
                    for c in range(channels):
                        b0 = best[c]
                        best[c] = b0 if (b0 > 0) | (b0 != b0) else 0
    return out


@numba.njit(**_JIT)
def max_pool_backward(grad, arg, out, relu, kh, kw, dx):  # pragma: no cover - compiled
    """Write every position of the tiles in ``dx``: ``grad`` at the winning tap, 0 elsewhere.

    With ``relu`` the gradient passes only where ``out > 0``. Rows and columns
    beyond the last whole tile are left to the caller (zeroed there).
    """
    batch, ho, wo, channels = grad.shape
    for b in range(batch):
        for i in range(ho):
            for j in range(wo):
                g = grad[b, i, j]
                win = arg[b, i, j]
                o = out[b, i, j]
                for di in range(kh):
                    for dj in range(kw):
                        tap = di * kw + dj
                        row = dx[b, i * kh + di, j * kw + dj]
                        for c in range(channels):
                            keep = win[c] == tap and (not relu or o[c] > 0)
                            row[c] = g[c] if keep else 0
    return dx


@numba.njit(**_JIT)
def max_pool_forward_2x2(x, relu, out, arg):  # pragma: no cover - compiled
    """``max_pool_forward`` for 2x2 tiles: the four taps in registers, one store each.

    The generic kernel keeps the running maximum in ``out`` and loops over a channel
    axis that is too short to vectorise when C is small; here each output is one
    straight-line select chain.
    """
    batch, ho, wo, channels = out.shape
    for b in range(batch):
        for i in range(ho):
            for j in range(wo):
                for c in range(channels):
                    best = x[b, 2 * i, 2 * j, c]
                    win = 0
                    v = x[b, 2 * i, 2 * j + 1, c]
                    if (v > best) | (v != v):
                        best, win = v, 1
                    v = x[b, 2 * i + 1, 2 * j, c]
                    if (v > best) | (v != v):
                        best, win = v, 2
                    v = x[b, 2 * i + 1, 2 * j + 1, c]
                    if (v > best) | (v != v):
                        best, win = v, 3
                    if relu and not ((best > 0) | (best != best)):
                        out[b, i, j, c] = 0
                    else:
                        out[b, i, j, c] = best
                    arg[b, i, j, c] = win
    return out


@numba.njit(**_JIT)
def max_pool_backward_2x2(grad, arg, out, relu, dx):  # pragma: no cover - compiled
    """``max_pool_backward`` for 2x2 tiles, one output element at a time (all four taps).

    Faster than the generic kernel when the channel axis is short; the generic
    one wins when C fills a vector register (``TUNING.pool_per_element_below``).
    """
    batch, ho, wo, channels = grad.shape
    for b in range(batch):
        for i in range(ho):
            for j in range(wo):
                for c in range(channels):
                    dx[b, 2 * i, 2 * j, c] = 0
                    dx[b, 2 * i, 2 * j + 1, c] = 0
                    dx[b, 2 * i + 1, 2 * j, c] = 0
                    dx[b, 2 * i + 1, 2 * j + 1, c] = 0
                    if not relu or out[b, i, j, c] > 0:
                        win = arg[b, i, j, c]
                        dx[b, 2 * i + win // 2, 2 * j + win % 2, c] = grad[b, i, j, c]
    return dx


@numba.njit(**_JIT)
def avg_pool_forward(x, kh, kw, divisor, out):  # pragma: no cover - compiled
    """``out = sum / divisor`` over each tile."""
    batch, ho, wo, channels = out.shape
    for b in range(batch):
        for i in range(ho):
            for j in range(wo):
                total = out[b, i, j]
                for c in range(channels):
                    total[c] = 0
                for di in range(kh):
                    for dj in range(kw):
                        row = x[b, i * kh + di, j * kw + dj]
                        for c in range(channels):
                            total[c] += row[c]
                for c in range(channels):
                    total[c] = total[c] / divisor
    return out


@numba.njit(**_JIT)
def avg_pool_backward(grad, kh, kw, divisor, dx):  # pragma: no cover - compiled
    """Spread ``grad / divisor`` over each tile of ``dx``."""
    batch, ho, wo, channels = grad.shape
    for b in range(batch):
        for i in range(ho):
            for j in range(wo):
                g = grad[b, i, j]
                for di in range(kh):
                    for dj in range(kw):
                        row = dx[b, i * kh + di, j * kw + dj]
                        for c in range(channels):
                            row[c] = g[c] / divisor
    return dx

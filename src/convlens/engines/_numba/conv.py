"""numba kernels of the convolution engines: col2im for the column layouts, and a direct convolution.

NumPy's own strided copy already does im2col well, but col2im with few channels is
a sum of many short strided adds, where a compiled loop is much faster
(docs/performance.md).

The kernel scatters into a zeroed, C-contiguous, padded gradient
``(C, N, H_p, W_p)`` (channel-first-then-batch, like NumPy's ``_col2im``):
each inner loop adds one contiguous run of a column row into one image row,
so LLVM vectorises it. Contiguous array types matter: a strided ('A' layout)
argument makes the same loop several times slower.
"""

from __future__ import annotations

import numba
import numpy as np

_JIT = {"nogil": True, "cache": True}


@numba.njit(**_JIT)
def col2im_tap_major(dcols, kh, kw, sh, sw, dh, dw, ho, wo, dx):
    """``dx[c, n, sh*y + dh*i, sw*x + dw*j] += dcols[(c, i, j), (n, y, x)]`` into a zeroed ``dx``.

    ``dcols`` is ``(C * kh * kw, N * ho * wo)`` and ``dx`` the padded gradient
    ``(C, N, H_p, W_p)``, both C-contiguous.
    """
    channels, batch = dx.shape[0], dx.shape[1]
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                row = dcols[(c * kh + i) * kw + j]
                first = dw * j
                last = first + sw * (wo - 1) + 1
                for n in range(batch):
                    for y in range(ho):
                        source = row[(n * ho + y) * wo : (n * ho + y + 1) * wo]
                        target = dx[c, n, sh * y + dh * i, first:last:sw]
                        for x in range(wo):
                            target[x] += source[x]


@numba.njit(**_JIT)
def col2im_batch_inner(dcols, kh, kw, sh, sw, dh, dw, ho, wo, first_row, dx):
    """``dx[c, sh*(first_row + y) + dh*i, sw*x + dw*j, n] += dcols[(c, i, j), (y, x, n)]`` into ``dx``.

    Batch-inner columns of output rows ``first_row .. first_row + ho - 1`` (a chunk):
    ``dcols`` is ``(C * kh * kw, ho * wo * N)`` and ``dx`` the whole padded gradient
    ``(C, H_p, W_p, N)``, both C-contiguous. Each inner loop adds a run of ``N``
    contiguous cells.
    """
    channels, batch = dx.shape[0], dx.shape[3]
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                row = dcols[(c * kh + i) * kw + j]
                for y in range(ho):
                    target_row = dx[c, sh * (first_row + y) + dh * i]
                    for x in range(wo):
                        source = row[(y * wo + x) * batch : (y * wo + x + 1) * batch]
                        target = target_row[sw * x + dw * j]
                        for n in range(batch):
                            target[n] += source[n]


@numba.njit(**_JIT)
def col2im_channel_minor(dcols, kh, kw, sh, sw, dh, dw, ho, wo, dx):
    """``dx[n, sh*y + dh*i, sw*x + dw*j, c] += dcols[(n, y, x), (i, j, c)]`` into ``dx``.

    Channel-minor columns: ``dcols`` is ``(N * ho * wo, kh * kw * C)`` and ``dx`` the
    channels-last padded gradient ``(N, H_p, W_p, C)``, both C-contiguous: each inner
    loop adds a run of ``C`` contiguous channels.
    """
    batch, channels = dx.shape[0], dx.shape[3]
    for n in range(batch):
        for y in range(ho):
            for x in range(wo):
                row = dcols[(n * ho + y) * wo + x]
                for i in range(kh):
                    for j in range(kw):
                        target = dx[n, sh * y + dh * i, sw * x + dw * j]
                        source = row[(i * kw + j) * channels : (i * kw + j + 1) * channels]
                        for c in range(channels):
                            target[c] += source[c]


# Direct (column-free) convolution for few input channels, stride 1.
#
# With one input channel im2col copies every input cell K times (25 for a 5x5
# kernel) and the GEMM then streams the copy back; here the input is read in
# place. Each padded image is flattened row by row with its padded width ``wp``,
# so tap ``(i, j)`` of output ``q = y * wp + x`` is input ``q + dh*i*wp + dw*j``:
# every tap is one contiguous
# axpy (or dot) of length ``ho * wp`` that LLVM vectorises. The ``wp - wo``
# columns past each output row are computed and dropped (forward), or carry a
# zero gradient (backward).
#
# Two details make these loops several times faster (docs/performance.md):
# - slicing before indexing: an index of unknown sign (``q + offset``) makes
#   numba emit a wrap-around check per element that stops vectorisation;
# - several output channels per pass over a tap (3 in the forward and the input
#   gradient, 6 in the weight gradient), so each input load feeds several FMAs.
#   The caller pads the output channels to a multiple of the block with zero
#   weights (``direct.block_padded``), which keeps the loops free of remainders.
FORWARD_BLOCK = 3
WEIGHT_GRAD_BLOCK = 6


@numba.njit(**_JIT)
def _accumulate_block(xf, w, b, n, o, dh, dw, wp, acc):
    """``acc[k, q]`` = output channel ``o + k`` (k < 3) of sample ``n`` at flat position ``q``.

    Taps go two at a time along a kernel row (j, j + 1), so each pass over ``acc``
    does twice the FMAs per load and store.
    """
    channels, kh, kw, span = w.shape[1], w.shape[2], w.shape[3], acc.shape[1]
    a0, a1, a2 = acc[0], acc[1], acc[2]
    a0[:], a1[:], a2[:] = b[o], b[o + 1], b[o + 2]
    for c in range(channels):
        for i in range(kh):
            for j in range(0, kw - 1, 2):
                w0, w1, w2 = w[o, c, i, j], w[o + 1, c, i, j], w[o + 2, c, i, j]
                u0, u1, u2 = w[o, c, i, j + 1], w[o + 1, c, i, j + 1], w[o + 2, c, i, j + 1]
                offset = dh * i * wp + dw * j
                first, second = xf[n, c, offset : offset + span], xf[n, c, offset + dw : offset + dw + span]
                for q in range(span):
                    v, u = first[q], second[q]
                    a0[q] += w0 * v + u0 * u
                    a1[q] += w1 * v + u1 * u
                    a2[q] += w2 * v + u2 * u
            if kw % 2:  # the row's last tap alone
                j = kw - 1
                w0, w1, w2 = w[o, c, i, j], w[o + 1, c, i, j], w[o + 2, c, i, j]
                offset = dh * i * wp + dw * j
                source = xf[n, c, offset : offset + span]
                for q in range(span):
                    v = source[q]
                    a0[q] += w0 * v
                    a1[q] += w1 * v
                    a2[q] += w2 * v


@numba.njit(**_JIT)
def direct_forward(xf, w, b, dh, dw, wp, out):
    """``out[n, y, x, o] = b[o] + sum_{c,i,j} w[o, c, i, j] * xf[n, c, (y + dh*i) * wp + x + dw*j]``.

    ``xf`` is ``(N, C, L)``: padded images flattened, with zeros after the last row
    for the taps that reach past it; ``w`` and ``b`` have their output channels
    padded to a multiple of 3 (zeros); ``out`` is channels-last ``(N, ho, wo, O)``.
    """
    batch, ho, wo, channels_out = out.shape
    acc = np.empty((3, ho * wp), dtype=out.dtype)
    for n in range(batch):
        for o in range(0, w.shape[0], 3):
            _accumulate_block(xf, w, b, n, o, dh, dw, wp, acc)
            for k in range(min(3, channels_out - o)):
                for y in range(ho):
                    row = acc[k, y * wp : y * wp + wo]
                    target = out[n, y]
                    for x in range(wo):
                        target[x, o + k] = row[x]


@numba.njit(**_JIT)
def direct_forward_relu_pool(xf, w, b, dh, dw, wp, ho, out, arg):
    """``out = relu(max_pool2d(conv, 2))`` of ``direct_forward``'s ``conv`` (``ho`` rows), never stored.

    ``out`` and ``arg`` are channels-last ``(N, ho // 2, wo // 2, O)``; ``arg`` gets the
    winning tap 0..3 of each 2x2 tile by PyTorch's rule (taps in row-major order, the first
    maximum wins, a NaN replaces the running maximum: the last NaN wins).
    """
    batch, hpo, wpo, channels_out = out.shape
    acc = np.empty((3, ho * wp), dtype=out.dtype)
    column_max, column_tap = np.empty(wp, dtype=out.dtype), np.empty(wp, dtype=np.uint8)
    for n in range(batch):
        for o in range(0, w.shape[0], 3):
            _accumulate_block(xf, w, b, n, o, dh, dw, wp, acc)
            for k in range(min(3, channels_out - o)):
                for py in range(hpo):
                    rows = acc[k, 2 * py * wp : (2 * py + 2) * wp]  # the tile row pair
                    _column_max(rows[:wp], rows[wp:], column_max, column_tap)
                    for px in range(wpo):  # columns 2px (taps 0/2) and 2px+1 (taps 1/3)
                        left, right = column_max[2 * px], column_max[2 * px + 1]
                        left_tap, right_tap = column_tap[2 * px], column_tap[2 * px + 1] + 1
                        take = _right_wins(left, right, left_tap, right_tap)
                        best = right if take else left
                        out[n, py, px, o + k] = best if (best > 0) | (best != best) else 0
                        arg[n, py, px, o + k] = right_tap if take else left_tap


# 2x2 max pooling in two stages, rule-exact: the first stage runs on contiguous rows
# (LLVM vectorises it) and leaves a quarter of the branch-free selects to the second,
# which beats one scalar pass over the four taps.
@numba.njit(**_JIT)
def _column_max(top, bottom, column_max, column_tap):
    """Per column: the top tap (0) unless the bottom one (2) is larger or NaN, as PyTorch's scan."""
    for x in range(top.shape[0]):
        t, u = top[x], bottom[x]
        take = (u > t) | (u != u)
        column_max[x] = u if take else t
        column_tap[x] = 2 if take else 0


@numba.njit(**_JIT)
def _right_wins(left, right, left_tap, right_tap):
    """Whether the right column's winner beats the left's: larger; on a tie the lower tap (it
    comes first); a NaN over a number; of two NaNs the later tap."""
    return (
        (right > left)
        | ((right == left) & (right_tap < left_tap))
        | ((right != right) & ((left == left) | (right_tap > left_tap)))
    )


@numba.njit(**_JIT)
def _flat_gradient(g, arg, pooled, n, wp, flat):
    """The output gradient of sample ``n`` as ``flat[o, y * wp + x]`` (0 in the extra columns).

    Unpooled (``arg`` empty): ``g`` is the convolution's gradient ``(N, ho, wo, O)``. Pooled:
    ``g`` is the gradient of ``relu(max_pool2d(conv, 2))``; it reaches the winning tap of
    each tile where the pooled output ``pooled`` is positive, and nothing else.
    """
    rows, columns, channels_out = g.shape[1], g.shape[2], g.shape[3]
    if arg.shape[0] == 0:
        for y in range(rows):
            for x in range(columns):
                for o in range(channels_out):
                    flat[o, y * wp + x] = g[n, y, x, o]
        return
    flat[:] = 0
    for py in range(rows):
        for px in range(columns):
            for o in range(channels_out):
                if pooled[n, py, px, o] > 0:
                    tap = arg[n, py, px, o]
                    flat[o, (2 * py + tap // 2) * wp + 2 * px + tap % 2] = g[n, py, px, o]


# Dots reassociate (fastmath "reassoc") so LLVM can vectorise the reduction:
# the order of a float sum changes, as it does between any two BLAS builds.
@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
def direct_weight_grad(xf, g, arg, pooled, dh, dw, wp, ho, dweight, dbias):
    """``dweight[o, c, i, j] += sum_{n,y,x} G[n, y, x, o] * xf[n, c, (y + dh*i) * wp + x + dw*j]``;
    ``dbias[o] += sum G[..., o]``, with ``G`` the convolution's output gradient given as
    ``_flat_gradient`` reads it. ``dweight`` and ``dbias`` have their output channels
    padded to a multiple of 6."""
    channels, kh, kw = dweight.shape[1], dweight.shape[2], dweight.shape[3]
    span = ho * wp
    flat = np.zeros((dweight.shape[0], span), dtype=g.dtype)
    for n in range(g.shape[0]):
        _flat_gradient(g, arg, pooled, n, wp, flat)
        for o in range(0, dweight.shape[0], 6):
            g0, g1, g2, g3, g4, g5 = flat[o], flat[o + 1], flat[o + 2], flat[o + 3], flat[o + 4], flat[o + 5]
            for k in range(6):
                dbias[o + k] += flat[o + k].sum()
            for c in range(channels):
                for i in range(kh):
                    for j in range(kw):
                        offset = dh * i * wp + dw * j
                        source = xf[n, c, offset : offset + span]
                        t0 = t1 = t2 = t3 = t4 = t5 = g.dtype.type(0)
                        for q in range(span):
                            v = source[q]
                            t0 += g0[q] * v
                            t1 += g1[q] * v
                            t2 += g2[q] * v
                            t3 += g3[q] * v
                            t4 += g4[q] * v
                            t5 += g5[q] * v
                        dweight[o, c, i, j] += t0
                        dweight[o + 1, c, i, j] += t1
                        dweight[o + 2, c, i, j] += t2
                        dweight[o + 3, c, i, j] += t3
                        dweight[o + 4, c, i, j] += t4
                        dweight[o + 5, c, i, j] += t5


@numba.njit(**_JIT)
def direct_input_grad(g, arg, pooled, w, dh, dw, wp, ho, dxf):
    """``dxf[n, c, (y + dh*i) * wp + x + dw*j] += w[o, c, i, j] * G[n, y, x, o]`` into a zeroed
    ``dxf`` (``G`` as in ``direct_weight_grad``); ``w`` has its output channels padded to a
    multiple of 3 (zeros)."""
    channels, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    span = ho * wp
    flat = np.zeros((w.shape[0], span), dtype=g.dtype)
    for n in range(g.shape[0]):
        _flat_gradient(g, arg, pooled, n, wp, flat)
        for o in range(0, w.shape[0], 3):
            g0, g1, g2 = flat[o], flat[o + 1], flat[o + 2]
            for c in range(channels):
                for i in range(kh):
                    for j in range(kw):
                        w0, w1, w2 = w[o, c, i, j], w[o + 1, c, i, j], w[o + 2, c, i, j]
                        offset = dh * i * wp + dw * j
                        target = dxf[n, c, offset : offset + span]
                        for q in range(span):
                            target[q] += w0 * g0[q] + w1 * g1[q] + w2 * g2[q]


# relu(max_pool2d(., 2)) on a batch-inner convolution output ``(O, ho, wo, N)``:
# the four taps of a tile are contiguous runs of N samples, so the scan over the
# taps (PyTorch's rule: first maximum wins, a NaN replaces the running maximum)
# runs as selects vectorised over the samples.


@numba.njit(**_JIT)
def relu_pool_batch_inner(y, out, arg):
    """``out[n, o, py, px] = relu(max of the tile (2py.., 2px..) of y[o, :, :, n])``; ``arg`` its tap.

    ``y`` is ``(O, ho, wo, N)``; ``out`` is NCHW ``(N, O, ho // 2, wo // 2)``; ``arg`` is
    ``(O, ho // 2, wo // 2, N)`` uint8, the tap 0..3 in row-major order.
    """
    channels_out, hpo, wpo, batch = arg.shape
    best = np.empty(batch, dtype=y.dtype)
    for o in range(channels_out):
        for py in range(hpo):
            for px in range(wpo):
                win = arg[o, py, px]
                best[:] = y[o, 2 * py, 2 * px]
                win[:] = 0
                for tap in range(1, 4):
                    row = y[o, 2 * py + tap // 2, 2 * px + tap % 2]
                    for n in range(batch):
                        v, b0 = row[n], best[n]
                        take = (v > b0) | (v != v)
                        best[n] = v if take else b0
                        win[n] = tap if take else win[n]
                for n in range(batch):
                    b0 = best[n]
                    out[n, o, py, px] = b0 if (b0 > 0) | (b0 != b0) else 0


@numba.njit(**_JIT)
def relu_pool_batch_inner_backward(grad, out, arg, columns):
    """The convolution's output gradient ``columns (O, ho, wo, N)`` (zeroed by the caller) from the
    gradient ``grad (N, O, ho // 2, wo // 2)`` of ``relu_pool_batch_inner``: each tile's gradient goes
    to its winning tap where the pooled output is positive."""
    channels_out, hpo, wpo, batch = arg.shape
    for o in range(channels_out):
        for py in range(hpo):
            for px in range(wpo):
                win = arg[o, py, px]
                for n in range(batch):
                    if out[n, o, py, px] > 0:
                        tap = win[n]
                        columns[o, 2 * py + tap // 2, 2 * px + tap % 2, n] = grad[n, o, py, px]

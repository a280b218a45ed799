"""numba kernels of the convolution: col2im for the column layouts, and a direct convolution.

Measured on this machine: NumPy's own strided copy already does im2col well,
but col2im with few channels is a sum of many short strided adds, where a
compiled loop is ~3.5x faster (LeNet's second layer: 0.33 ms against 1.2 ms).

The kernel scatters into a zeroed, C-contiguous, padded gradient
``(C, N, H_p, W_p)`` (channel-first-then-batch, like NumPy's ``_col2im``):
each inner loop adds one contiguous run of a column row into one image row,
so LLVM vectorises it. Contiguous array types matter: a strided ('A' layout)
argument made the same loop 3-4x slower.
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
def col2im_batch_inner(dcols, kh, kw, sh, sw, dh, dw, ho, wo, dx):
    """``dx[c, sh*y + dh*i, sw*x + dw*j, n] += dcols[(c, i, j), (y, x, n)]`` into a zeroed ``dx``.

    Batch-inner columns: ``dcols`` is ``(C * kh * kw, ho * wo * N)`` and ``dx``
    the padded gradient ``(C, H_p, W_p, N)``, both C-contiguous. Each inner
    loop adds a run of ``N`` contiguous cells (LeNet's second layer: one GEMM
    plus this, 0.38 ms, against 0.84 ms for 25 per-tap GEMMs and NumPy adds).
    """
    channels, batch = dx.shape[0], dx.shape[3]
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                row = dcols[(c * kh + i) * kw + j]
                for y in range(ho):
                    target_row = dx[c, sh * y + dh * i]
                    for x in range(wo):
                        source = row[(y * wo + x) * batch : (y * wo + x + 1) * batch]
                        target = target_row[sw * x + dw * j]
                        for n in range(batch):
                            target[n] += source[n]


# Direct (column-free) convolution for few input channels, stride 1.
#
# With one input channel im2col copies every input cell K times (LeNet's first
# layer: 25x, 5 MB of columns for a batch of 64) and the GEMM then streams the
# copy back; here the input is read in place. Each padded image is flattened
# row by row with its padded width ``wp``, so tap ``(i, j)`` of output ``q =
# y * wp + x`` is input ``q + dh*i*wp + dw*j``: every tap is one contiguous
# axpy (or dot) of length ``ho * wp`` that LLVM vectorises. The ``wp - wo``
# columns past each output row are computed and dropped (forward), or carry a
# zero gradient (backward). Slicing before indexing matters: an index of
# unknown sign (``q + off``) makes numba emit a wrap-around check per element
# that stops vectorisation (3.8 ms against 0.55 ms for LeNet's first layer).


@numba.njit(**_JIT)
def direct_forward(xf, w, b, dh, dw, wp, out):
    """``out[n, y, x, o] = b[o] + sum_{c,i,j} w[o, c, i, j] * xf[n, c, (y + dh*i) * wp + x + dw*j]``.

    ``xf`` is ``(N, C, L)``: padded images flattened, ``L >= (ho - 1 + dh*(kh-1)) * wp
    + wp + dw*(kw-1)`` (zeros after the last row); ``out`` is channels-last ``(N, ho, wo, O)``.
    """
    batch, ho, wo, channels_out = out.shape
    channels, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    span = ho * wp
    acc = np.empty(span, dtype=out.dtype)
    for n in range(batch):
        for o in range(channels_out):
            acc[:] = b[o]
            for c in range(channels):
                for i in range(kh):
                    for j in range(kw):
                        weight = w[o, c, i, j]
                        offset = dh * i * wp + dw * j
                        source = xf[n, c, offset : offset + span]
                        for q in range(span):
                            acc[q] += weight * source[q]
            for y in range(ho):
                row = acc[y * wp : y * wp + wo]
                target = out[n, y]
                for x in range(wo):
                    target[x, o] = row[x]


@numba.njit(**_JIT)
def _flat_gradient(g, n, o, wp, flat):
    """``flat[y * wp + x] = g[n, y, x, o]`` (zeros stay in the ``wp - wo`` extra columns); returns the sum."""
    ho, wo = g.shape[1], g.shape[2]
    total = g.dtype.type(0)
    for y in range(ho):
        for x in range(wo):
            v = g[n, y, x, o]
            flat[y * wp + x] = v
            total += v
    return total


# Dots reassociate (fastmath "reassoc") so LLVM can vectorise the reduction:
# the order of a float sum changes, as it does between any two BLAS builds.
@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
def direct_weight_grad(xf, g, dh, dw, wp, dweight, dbias):
    """``dweight[o, c, i, j] += sum_{n,y,x} g[n, y, x, o] * xf[n, c, (y + dh*i) * wp + x + dw*j]``;
    ``dbias[o] += sum g[..., o]``. ``g`` is channels-last ``(N, ho, wo, O)``."""
    batch, ho, wo, channels_out = g.shape
    channels, kh, kw = dweight.shape[1], dweight.shape[2], dweight.shape[3]
    span = ho * wp
    flat = np.zeros(span, dtype=g.dtype)
    for n in range(batch):
        for o in range(channels_out):
            dbias[o] += _flat_gradient(g, n, o, wp, flat)
            for c in range(channels):
                for i in range(kh):
                    for j in range(kw):
                        offset = dh * i * wp + dw * j
                        source = xf[n, c, offset : offset + span]
                        total = g.dtype.type(0)
                        for q in range(span):
                            total += flat[q] * source[q]
                        dweight[o, c, i, j] += total


@numba.njit(**_JIT)
def direct_input_grad(g, w, dh, dw, wp, dxf):
    """``dxf[n, c, (y + dh*i) * wp + x + dw*j] += w[o, c, i, j] * g[n, y, x, o]`` into a zeroed ``dxf``."""
    batch, ho, wo, channels_out = g.shape
    channels, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    span = ho * wp
    flat = np.zeros(span, dtype=g.dtype)
    for n in range(batch):
        for o in range(channels_out):
            _flat_gradient(g, n, o, wp, flat)
            for c in range(channels):
                for i in range(kh):
                    for j in range(kw):
                        weight = w[o, c, i, j]
                        offset = dh * i * wp + dw * j
                        target = dxf[n, c, offset : offset + span]
                        for q in range(span):
                            target[q] += weight * flat[q]

"""numba col2im for tap-major convolution columns (any N-d geometry flattened to 2-D).

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

"""The FFT engine: convolution as products of spectra, for large kernels at stride 1.

With K = prod(kernel) taps, im2col copies every input cell K times and the GEMMs are
bound by that memory traffic; through the FFT the input, the output gradient and the
result are each transformed once. All three products are exact correlations or
convolutions when every spatial axis is transformed at a length L >= the padded input
size (no wrap-around reaches a kept cell)::

    forward       out[y]  = sum_k w[k] xp[y + d*k]       -> Y  = X  * Wf
    input grad    dxp[u]  = sum_(y+d*k=u) g[y] w[k]      -> DX = G  * conj(Wf)
    weight grad   dw[k]   = sum_y g[y] xp[y + d*k]       -> S  = X  * conj(G), read at t = d*k

with ``Wf[f] = sum_k w[k] exp(+2 pi i f.(d*k)/L)``. The kernel spectrum and the weight
gradient are small DFTs evaluated only at the kernel taps (one matrix per axis), so only
the input, output and output-gradient images go through ``numpy.fft``; channels are
contracted per frequency by one batched GEMM. Zero padding is not materialised: the
input is transformed unpadded and the kernel offsets become ``d*k - pad``.

It needs stride 1; the automatic choice takes it from ``TUNING.fft_min_taps`` taps on.
float32 results match the column engines to about 1e-6 relative (float64 to 1e-14).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend
from ..functional.conv import ConvGeometry, ConvImpl
from ..functional.pad import pad_spatial, pad_spatial_backward
from ._columns import padded_size
from .tuning import TUNING


def why_not(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> str | None:
    if any(s != 1 for s in g.stride):
        return f"it needs stride 1. Received: stride={g.stride}"
    return None


def suits(x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> bool:
    return math.prod(g.kernel) >= TUNING.fft_min_taps


def fft_length(n: int) -> int:
    """Smallest ``m >= n`` with no prime factor above 5 (pocketfft's fast sizes), even when possible."""
    m = n
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1 and (m % 2 == 0 or m == 1):
            return m
        m += 1


def _tap_dft(kernel, dilation, shifts, lengths, dtype) -> list[np.ndarray]:
    """Per axis ``E[k, f] = exp(+2 pi i f (d k - shift) / L)``, f over the rfftn frequencies.

    ``shift`` is the zero padding before the input: the input is transformed
    unpadded (``rfftn`` pads after it) and the kernel offsets absorb the shift.
    """
    mats = []
    for axis, (k, dl, shift, length) in enumerate(zip(kernel, dilation, shifts, lengths, strict=True)):
        freqs = length // 2 + 1 if axis == len(kernel) - 1 else length
        phase = np.outer(dl * np.arange(k) - shift, np.arange(freqs)) % length  # exact integer phases
        mats.append(np.exp(2j * np.pi * phase / length).astype(dtype))
    return mats


def _contract_last_axes(a: np.ndarray, mats: Sequence[np.ndarray], shrinking: bool = False) -> np.ndarray:
    """``a[..., i_0, ..., i_{d-1}]`` times ``mats[j][i_j, f_j]`` over each of the last ``d`` axes.

    One BLAS GEMM per axis; a shrinking contraction starts from the last axis
    (contiguous, no transpose of the big operand), a growing one from the first.
    """
    d = len(mats)
    order = range(d - 1, -1, -1) if shrinking else range(d)
    for j in order:
        axis = a.ndim - d + j
        moved = np.ascontiguousarray(np.moveaxis(a, axis, -1))
        product = _complex_matmul(moved.reshape(-1, moved.shape[-1]), mats[j])
        a = np.moveaxis(product.reshape(*moved.shape[:-1], -1), -1, axis)
    return a


def _complex_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for complex C-contiguous 2-D ``a``, as one real GEMM on ``a``'s memory.

    OpenBLAS' complex GEMM is far slower than this on these small shapes
    (docs/performance.md). Viewing ``a`` as
    interleaved (re, im) pairs, ``b`` becomes the real ``(2K, 2N)`` block
    matrix ``[[re, im], [-im, re]]`` interleaved the same way, and the real
    product is ``a @ b`` as interleaved pairs.
    """
    k, n = b.shape
    real = np.empty((k, 2, n, 2), dtype=a.real.dtype)
    real[:, 0, :, 0], real[:, 0, :, 1] = b.real, b.imag
    real[:, 1, :, 0], real[:, 1, :, 1] = -b.imag, b.real
    return (a.view(real.dtype) @ real.reshape(2 * k, 2 * n)).view(a.dtype)


@dataclass(frozen=True)
class FFTSaved:
    """The FFT backward's inputs: the spectra of input ``(F, G, N, C/G)`` and kernel ``(F, G, C/G, O/G)``."""

    spectrum: np.ndarray
    kernel_spectrum: np.ndarray
    lengths: tuple[int, ...]
    shifts: tuple[int, ...]  # zero padding before the input, folded into the kernel's phases
    source_size: tuple[int, ...]  # spatial size of the transformed input (explicitly padded unless zeros)
    input_shape: tuple[int, ...]


def _spectrum(a: np.ndarray, lengths: Sequence[int], groups: int, complex_dtype) -> np.ndarray:
    """``rfftn`` of ``(B, C, *S)`` zero-padded after to ``lengths``, frequency-major: ``(F, G, B, C/G)``.

    Frequency-major, every product of the channel axes is one batched GEMM of
    small matrices, and pocketfft transforms the leading axes as fast as the
    trailing ones (faster for the inverse). Computed in float64: NumPy's float32
    *forward* transforms are slower than its float64 ones (docs/performance.md).
    """
    d, b, c = a.ndim - 2, a.shape[0], a.shape[1]
    moved = np.moveaxis(a.astype(np.float64, copy=False), (0, 1), (-2, -1))  # (*S, B, C) view
    spectrum = np.fft.rfftn(moved, s=lengths, axes=tuple(range(d))).astype(complex_dtype, copy=False)
    return spectrum.reshape(-1, b, groups, c // groups).swapaxes(1, 2)


def _spatial_major(a: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
    """``(F, G, B, C/G)`` as ``(*F, B, C)``, ready for ``irfftn`` over the leading axes."""
    f, groups, b, cg = a.shape
    return a.swapaxes(1, 2).reshape(*_spectrum_shape(lengths), b, groups * cg)


def _spectrum_shape(lengths: Sequence[int]) -> tuple[int, ...]:
    return (*lengths[:-1], lengths[-1] // 2 + 1)


# The batch is split over ``TUNING.fft_threads`` threads: numpy's FFTs and ufunc
# loops release the GIL, pocketfft itself is single-threaded, and the BLAS pool is
# idle meanwhile (no two parallel runtimes at once).
_FFT_POOL: tuple[tuple[int, int], ThreadPoolExecutor] | None = None  # ((owner pid, workers), pool)


def _over_batch(fn: Callable[[slice], Any], n: int) -> list[Any]:
    """``fn(part)`` for ``TUNING.fft_threads`` contiguous parts of ``range(n)``, all but one in the pool."""
    global _FFT_POOL
    parts = max(1, min(TUNING.fft_threads, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    if parts == 1:
        return [fn(slices[0])]
    owner = (os.getpid(), parts - 1)  # a forked child has no pool threads: it makes its own
    if _FFT_POOL is None or _FFT_POOL[0] != owner:
        _FFT_POOL = (owner, ThreadPoolExecutor(parts - 1, thread_name_prefix="convlens-fft"))
    futures = [_FFT_POOL[1].submit(fn, part) for part in slices[1:]]
    first = fn(slices[0])
    return [first, *(future.result() for future in futures)]


def _crop(sizes: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(0, m) for m in sizes)


def forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, FFTSaved]:
    d, groups, n, o = len(g.kernel), g.groups, x.shape[0], w.shape[0]
    axes = tuple(range(d))
    lengths = tuple(fft_length(m) for m in padded_size(x.shape[2:], g.padding))
    complex_dtype = np.result_type(x.dtype, np.complex64)
    source, shifts = x, tuple(before for before, _ in g.padding)
    if g.padding_mode != "zeros":
        source, shifts = pad_spatial(x, g.padding, g.padding_mode), (0,) * d
    mats = _tap_dft(g.kernel, g.dilation, shifts, lengths, complex_dtype)
    kernel_spectrum = _contract_last_axes(w.astype(complex_dtype), mats)  # (O, Cg, *F)
    kernel_spectrum = kernel_spectrum.reshape(groups, o // groups, w.shape[1], -1).transpose(3, 0, 2, 1)
    kernel_spectrum = np.ascontiguousarray(kernel_spectrum)  # (F, G, Cg, Og)
    spectrum = np.empty((kernel_spectrum.shape[0], groups, n, w.shape[1]), dtype=complex_dtype)
    buffer = np.empty((n, *g.out_size, o), dtype=x.dtype)  # channels-last, as the im2col paths
    target = np.moveaxis(buffer, 0, -2)  # (*out, N, O) view
    bias = 0 if b is None else b

    def part(rows: slice) -> None:
        spectrum[:, :, rows] = _spectrum(source[rows], lengths, groups, complex_dtype)
        y_spectrum = np.matmul(spectrum[:, :, rows], kernel_spectrum)  # (F, G, n, Og)
        y = np.fft.irfftn(_spatial_major(y_spectrum, lengths), s=lengths, axes=axes)  # (*L, n, O)
        np.add(y[_crop(g.out_size)], bias, out=target[..., rows, :], casting="unsafe")

    _over_batch(part, n)
    out = np.moveaxis(buffer, -1, 1)
    return out, FFTSaved(spectrum, kernel_spectrum, lengths, shifts, source.shape[2:], x.shape)


def backward(
    grad: np.ndarray, w: np.ndarray, saved: FFTSaved, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    d, groups, n, c = len(g.kernel), g.groups, grad.shape[0], saved.input_shape[1]
    axes = tuple(range(d))
    db = grad.sum(axis=(0, *range(2, 2 + d))) if needs[2] else None
    if not (needs[0] or needs[1]):
        return None, None, db
    dx = np.empty((n, c, *saved.source_size), grad.dtype) if needs[0] else None
    conj_kernel = saved.kernel_spectrum.conj().swapaxes(2, 3)  # (F, G, Og, Cg)

    def part(rows: slice) -> np.ndarray | None:
        g_spectrum = _spectrum(grad[rows], saved.lengths, groups, saved.spectrum.dtype)  # (F, G, n, Og)
        if needs[0]:  # DX[n, c] = sum_o G[n, o] conj(Wf[o, c])
            dx_spectrum = np.matmul(g_spectrum, conj_kernel)  # (F, G, n, Cg)
            full = np.fft.irfftn(_spatial_major(dx_spectrum, saved.lengths), s=saved.lengths, axes=axes)
            np.copyto(
                np.moveaxis(dx[rows], (0, 1), (-2, -1)), full[_crop(saved.source_size)], casting="unsafe"
            )
        if needs[1]:  # conj(S[o, c]) = sum_n G[n, o] conj(X[n, c]), this part's share
            return np.matmul(g_spectrum.swapaxes(2, 3), saved.spectrum[:, :, rows].conj())  # (F, G, Og, Cg)
        return None

    shares = _over_batch(part, n)
    if needs[0] and g.padding_mode != "zeros":
        dx = pad_spatial_backward(dx, g.padding, g.padding_mode)
    dw = None
    if needs[1]:  # S read at the taps: an inverse real DFT evaluated at t = d*k - shift only
        s_conj = sum(shares[1:], start=shares[0])  # (F, G, Og, Cg)
        s = np.ascontiguousarray(s_conj.conj().transpose(1, 2, 3, 0))
        s = s.reshape(*w.shape[:2], *_spectrum_shape(saved.lengths))  # (O, Cg, *F)
        mats = [m.T for m in _tap_dft(g.kernel, g.dilation, saved.shifts, saved.lengths, s.dtype)]
        mats[-1] = mats[-1] * _hermitian_weights(saved.lengths[-1], s.dtype)[:, None]
        dw = (_contract_last_axes(s, mats, shrinking=True).real / math.prod(saved.lengths)).astype(w.dtype)
    return dx, dw, db


def _hermitian_weights(length: int, dtype) -> np.ndarray:
    """Weights of the half spectrum in an inverse real DFT: 1 for f = 0 (and Nyquist), 2 otherwise."""
    weights = np.full(length // 2 + 1, 2.0)
    weights[0] = 1.0
    if length % 2 == 0:
        weights[-1] = 1.0
    return weights.astype(dtype)


backend.register(backend.Engine("conv", "fft", ConvImpl(forward, backward), why_not=why_not, suits=suits))

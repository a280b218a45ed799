"""Convolution and cross-correlation of N-d NumPy arrays: the lecture's starting point.

The lecture writes convolution as ``y[n] = sum_k x[k] * h[n - k]``: the kernel is
*flipped* before it slides over the signal. That is **true convolution**
(``convolve``). What a CNN layer computes (``convlens.functional.conv2d``,
``torch.nn.Conv2d``) and what the slides draw is **cross-correlation**
(``correlate``): the kernel slides over the input *unflipped* and each output is
the sum of the elementwise products under it. A learned kernel does not care
which of the two is used (it would just learn the flipped weights), which is why
deep-learning libraries call cross-correlation "convolution".

The lecture's example A tells them apart. With the kernel centred on the input,
cross-correlation multiplies matching cells; convolution multiplies each cell by
the kernel cell mirrored through the centre:

>>> import numpy as np
>>> from convlens import signal
>>> x = np.array([[1, 1, 2], [2, 2, 1], [1, 5, 0]])
>>> h = np.array([[2, 3, 0], [0, 1, 3], [3, 0, 3]])
>>> signal.correlate(x, h, mode="valid")  # what a CNN layer computes
array([[13]])
>>> signal.convolve(x, h, mode="valid")  # the textbook formula: kernel flipped
array([[32]])
>>> signal.convolve(x, h[::-1, ::-1], mode="valid")  # flipping the kernel converts one into the other
array([[13]])

Both functions equal ``scipy.signal.convolve`` / ``scipy.signal.correlate``
(``method="direct"``) in every mode, including SciPy's rules:

- ``"full"``: every overlap, shape ``n + m - 1`` per axis;
- ``"same"``: shape of ``x``, centred on ``"full"`` (it starts at index
  ``(m - 1) // 2`` of the full result, so an even kernel puts the extra sample
  at the end);
- ``"valid"``: only complete overlaps, shape ``|n - m| + 1`` per axis; one
  input must be at least as large as the other in every axis (if ``h`` is the
  larger one the inputs are swapped, as SciPy does).

The computation is vectorised: a strided view of every window
(``sliding_window_view``) contracted with the kernel by ``np.tensordot``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .functional._args import output_size as _output_size
from .functional._windows import effective_kernel

__all__ = ["convolve", "correlate", "output_size"]

_MODES = ("full", "same", "valid")
# above this many window elements, tensordot's copy of every window costs too much memory
_MAX_WINDOW_ELEMENTS = 1 << 22


def correlate(x: np.ndarray, h: np.ndarray, mode: str = "full") -> np.ndarray:
    """Cross-correlation ``z[k] = sum_n x[n + k] * conj(h[n])`` (no kernel flip), N-d.

    This is the operation of a CNN layer. Equal to
    ``scipy.signal.correlate(x, h, mode, method="direct")``.

    Args:
        x: the signal, an N-d array (N >= 0).
        h: the kernel, an array with the same number of dimensions as ``x``.
        mode: ``"full"``, ``"same"`` or ``"valid"`` (see the module docstring).

    Returns:
        A NumPy array of dtype ``np.result_type(x, h)``.

    >>> correlate(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    array([0.5, 2. , 3.5, 3. , 0. ])
    """
    x, h = _check_inputs(x, h, mode, "correlate")
    if x.ndim == 0:
        return x * np.conj(h)
    return _correlate(x, np.conj(h), mode)


def convolve(x: np.ndarray, h: np.ndarray, mode: str = "full") -> np.ndarray:
    """True convolution ``y[n] = sum_k x[k] * h[n - k]`` (the kernel is flipped), N-d.

    Equal to ``scipy.signal.convolve(x, h, mode, method="direct")``; it is
    ``correlate`` with ``h`` reversed along every axis.

    >>> convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    x, h = _check_inputs(x, h, mode, "convolve")
    if x.ndim == 0:
        return x * h
    if mode == "valid" and _needs_swap(x.shape, h.shape):
        x, h = h, x  # convolution is commutative; SciPy swaps too
    return _correlate(x, h[(slice(None, None, -1),) * h.ndim], mode)


def output_size(n: int, kernel: int, padding: int = 0, stride: int = 1, dilation: int = 1) -> int:
    """Length of a convolution output along one axis.

    ``out = floor((n + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``, which is
    the lecture's ``floor((n + 2p - k) / s) + 1`` when ``dilation = 1``.

    >>> output_size(5, 3, padding=1, stride=2)  # the lecture's worked example
    3
    """
    for name, value, minimum in (
        ("n", n, 0),
        ("kernel", kernel, 1),
        ("padding", padding, 0),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"output_size: {name} must be an int. Received: {name}={value!r}")
        if value < minimum:
            raise ValueError(f"output_size: {name} must be >= {minimum}. Received: {name}={value}")
    span = effective_kernel(int(kernel), int(dilation))
    if span > n + 2 * padding:
        raise ValueError(
            f"output_size: the kernel (dilated size {span}) is larger than the padded "
            f"input ({n} + 2*{padding} = {n + 2 * padding}). "
            f"Received: n={n}, kernel={kernel}, padding={padding}, dilation={dilation}"
        )
    return _output_size(int(n), int(kernel), int(padding), int(stride), int(dilation))


# -- helpers ----------------------------------------------------------------------


def _check_inputs(x: np.ndarray, h: np.ndarray, mode: str, op: str) -> tuple[np.ndarray, np.ndarray]:
    x, h = np.asarray(x), np.asarray(h)
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {_MODES}. Received: mode={mode!r}")
    if x.ndim != h.ndim:
        raise ValueError(
            f"{op}: x and h must have the same number of dimensions. "
            f"Received: x.shape={x.shape}, h.shape={h.shape}"
        )
    for name, a in (("x", x), ("h", h)):
        if a.dtype.kind not in "biufc":
            raise TypeError(f"{op}: {name} must be a numeric array. Received: {name}.dtype={a.dtype}")
    dtype = np.result_type(x, h)
    if mode == "valid":
        _needs_swap(x.shape, h.shape, op)
    return x.astype(dtype, copy=False), h.astype(dtype, copy=False)


def _needs_swap(x_shape: Sequence[int], h_shape: Sequence[int], op: str = "correlate") -> bool:
    """SciPy's valid-mode rule: one input must cover the other in every axis."""
    x_covers = all(a >= b for a, b in zip(x_shape, h_shape, strict=True))
    h_covers = all(b >= a for a, b in zip(x_shape, h_shape, strict=True))
    if not (x_covers or h_covers):
        raise ValueError(
            f"{op}: in 'valid' mode one input must be at least as large as the other "
            f"in every dimension. Received: x.shape={tuple(x_shape)}, h.shape={tuple(h_shape)}"
        )
    return not x_covers


def _correlate(x: np.ndarray, h: np.ndarray, mode: str) -> np.ndarray:
    """Cross-correlation without conjugation, ``x`` and ``h`` already validated."""
    if x.size == 0 or h.size == 0:
        shape = {
            "full": [a + b - 1 for a, b in zip(x.shape, h.shape, strict=True)],
            "same": list(x.shape),
            "valid": [abs(a - b) + 1 for a, b in zip(x.shape, h.shape, strict=True)],
        }[mode]
        return np.zeros([max(s, 0) for s in shape], dtype=x.dtype)
    if mode == "valid":
        if _needs_swap(x.shape, h.shape):
            # z[k] = sum_n x[n + k] h[n] with h the larger: run it as h over x, then reverse
            return _reverse(sliding_correlate(h, x, tuple(range(x.ndim))))
        return sliding_correlate(x, h, tuple(range(x.ndim)))
    pads = [(m - 1, m - 1) for m in h.shape]
    full = sliding_correlate(np.pad(x, pads), h, tuple(range(x.ndim)))
    if mode == "full":
        return full
    return full[tuple(slice((m - 1) // 2, (m - 1) // 2 + n) for n, m in zip(x.shape, h.shape, strict=True))]


def sliding_correlate(x: np.ndarray, h: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """Valid cross-correlation of ``x`` with ``h`` over ``axes`` of ``x`` (no flip, no conj).

    ``h`` has one dimension per entry of ``axes``; the other axes of ``x`` (e.g.
    colour channels) are carried through in place. ``x`` must be at least as
    large as ``h`` along ``axes``. One strided view plus one ``np.tensordot``; when
    that would copy too much (``tensordot`` materialises every window), one
    multiply-add of a shifted view per kernel tap instead.
    """
    dtype = np.result_type(x, h)
    windows = sliding_window_view(x, h.shape, axis=tuple(axes))
    if windows.size <= _MAX_WINDOW_ELEMENTS:
        # windows has x's axes (shrunk) followed by h's axes: contract the trailing ones
        return np.tensordot(windows, h, axes=h.ndim).astype(dtype, copy=False)
    out = np.zeros(windows.shape[: x.ndim], dtype=dtype)
    for tap in np.ndindex(h.shape):
        index = [slice(None)] * x.ndim
        for axis, offset in zip(axes, tap, strict=True):
            index[axis] = slice(offset, offset + out.shape[axis])
        out += h[tap] * x[tuple(index)]
    return out


def _reverse(a: np.ndarray) -> np.ndarray:
    return a[(slice(None, None, -1),) * a.ndim]

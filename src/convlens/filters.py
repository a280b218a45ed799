"""Classic photo-editor filters as 2-D kernels, as the lecture introduces convolution.

Blur, sharpen, emboss and edge detection are each one small matrix slid over
the image: exactly what one plane of a convolutional layer computes, only with
hand-chosen instead of learned weights.

``KERNELS`` maps a name to a read-only float64 array:

- ``identity``: 3x3, returns the image unchanged;
- ``box_blur``: 3x3 of 1/9 (the mean of the neighbourhood);
- ``gaussian_blur``: 3x3 binomial ``[1, 2, 1]^T [1, 2, 1] / 16``, a small
  approximation of a Gaussian with sigma about 0.85 (sums to 1);
- ``sharpen``: ``[[0,-1,0],[-1,5,-1],[0,-1,0]]`` (identity plus a Laplacian);
- ``emboss``: ``[[-2,-1,0],[-1,1,1],[0,1,2]]``;
- ``laplacian``: the lecture's 3x3 ``[[-1,-1,-1],[-1,8,-1],[-1,-1,-1]]`` (sums to 0);
- ``log7``: the lecture's 7x7 Laplacian of Gaussian (symmetric, sums to 0);
- ``log9``: the lecture's 9x9 Laplacian of Gaussian exactly as printed on the
  slide. Note it sums to **4**, not 0, so it adds 4x the local mean to the
  edge response (a flat region does not map to 0);
- ``sobel_x``: ``[[-1,0,1],[-2,0,2],[-1,0,1]]``, positive where brightness grows
  to the right (under cross-correlation, as ``apply`` computes);
- ``sobel_y``: ``[[-1,-2,-1],[0,0,0],[1,2,1]]``, positive where brightness grows
  downwards.

>>> import numpy as np
>>> from convlens import filters
>>> image = np.zeros((5, 5), dtype=np.uint8)
>>> image[2, 2] = 160
>>> filters.apply(image, "gaussian_blur")[1:4, 1:4]
array([[10, 20, 10],
       [20, 40, 20],
       [10, 20, 10]], dtype=uint8)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .signal import sliding_correlate

__all__ = ["EDGE_KERNELS", "KERNELS", "apply", "load_kernel", "shows_magnitude", "to_uint8"]


def _kernel(rows: list[list[float]], scale: float = 1.0) -> np.ndarray:
    array = np.array(rows, dtype=np.float64) * scale
    array.setflags(write=False)
    return array


KERNELS: dict[str, np.ndarray] = {
    "identity": _kernel([[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
    "box_blur": _kernel([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 9),
    "gaussian_blur": _kernel([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16),
    "sharpen": _kernel([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
    "emboss": _kernel([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
    "laplacian": _kernel([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
    "log7": _kernel(
        [
            [0, 0, 1, 1, 1, 0, 0],
            [0, 1, 3, 3, 3, 1, 0],
            [1, 3, 0, -7, 0, 3, 1],
            [1, 3, -7, -24, -7, 3, 1],
            [1, 3, 0, -7, 0, 3, 1],
            [0, 1, 3, 3, 3, 1, 0],
            [0, 0, 1, 1, 1, 0, 0],
        ]
    ),
    "log9": _kernel(
        [
            [0, 0, 3, 2, 2, 2, 3, 0, 0],
            [0, 2, 3, 5, 5, 5, 3, 2, 0],
            [3, 3, 5, 3, 0, 3, 5, 3, 3],
            [2, 5, 3, -12, -23, -12, 3, 5, 2],
            [2, 5, 0, -23, -40, -23, 0, 5, 2],
            [2, 5, 3, -12, -23, -12, 3, 5, 2],
            [3, 3, 5, 3, 0, 3, 5, 3, 3],
            [0, 2, 3, 5, 5, 5, 3, 2, 0],
            [0, 0, 3, 2, 2, 2, 3, 0, 0],
        ]
    ),
    "sobel_x": _kernel([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "sobel_y": _kernel([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
}

# our padding_mode names (PyTorch's) -> numpy.pad modes
_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "zeros": "constant"}


def apply(
    image: np.ndarray,
    kernel: str | np.ndarray,
    padding: str = "same",
    padding_mode: str = "reflect",
    method: str = "auto",
) -> np.ndarray:
    """Filter ``image`` with ``kernel`` by 2-D cross-correlation, each channel separately.

    ``out[i, j] = sum_{u,v} kernel[u, v] * padded[i + u, j + v]``, the sum a CNN
    layer computes (no kernel flip). For the symmetric kernels (all of
    ``KERNELS`` except ``emboss``, ``sobel_x`` and ``sobel_y``) it equals true
    convolution; for those three, convolution would give the negated response.

    Args:
        image: ``(H, W)`` grayscale or ``(H, W, C)`` (e.g. RGB), ``uint8`` or floating point.
        kernel: a name from ``KERNELS`` or a 2-D array ``(kh, kw)``.
        padding: ``"same"`` (output ``H x W``; for an even kernel the extra row/column of
            padding goes at the end, as PyTorch's ``padding="same"``) or ``"valid"``
            (no padding, output ``(H - kh + 1) x (W - kw + 1)``).
        padding_mode: how the border is extended for ``"same"``: ``"reflect"`` (mirror,
            edge pixel not repeated: ``d c b | a b c d``), ``"replicate"`` (``a a | a b``),
            ``"circular"`` (wrap around) or ``"zeros"``.
        method: how the sum is computed; every method gives the same result within
            float rounding. ``"direct"``: one multiply-add per kernel tap;
            ``"separable"``: a rank-1 kernel (box blur, Gaussian, Sobel) as a column
            pass then a row pass, ``kh + kw`` taps instead of ``kh * kw``; ``"fft"``:
            through the frequency domain, for large kernels (``log7``, ``log9``).
            ``"auto"`` (default) picks separable when the kernel factors exactly,
            FFT for kernels of 49 taps or more, direct otherwise.

    Returns:
        The filtered image in the input's layout: ``uint8`` in gives ``uint8`` out
        (rounded to nearest and clipped to 0..255), a float dtype gives the same dtype.
    """
    img, dtype = _check_image(image)
    k = _resolve_kernel(kernel)
    if padding not in ("same", "valid"):
        raise ValueError(f"apply: padding must be 'same' or 'valid'. Received: padding={padding!r}")
    if padding_mode not in _PAD_MODES:
        raise ValueError(
            f"apply: padding_mode must be one of {tuple(_PAD_MODES)}. Received: padding_mode={padding_mode!r}"
        )
    if k.shape[0] > img.shape[0] or k.shape[1] > img.shape[1]:
        raise ValueError(
            f"apply: kernel is larger than the image ({img.shape[0]}x{img.shape[1]}). "
            f"Received: kernel.shape={k.shape}, image.shape={np.shape(image)}"
        )
    work = np.float64 if dtype == np.uint8 else np.result_type(dtype, np.float32)
    img = img.astype(work, copy=False)
    if padding == "same":
        pads = [((n - 1) // 2, n - 1 - (n - 1) // 2) for n in k.shape] + [(0, 0)] * (img.ndim - 2)
        img = np.pad(img, pads, mode=_PAD_MODES[padding_mode])
    out = _correlate_2d(img, k.astype(work), _choose_method(k, method))
    if dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(dtype, copy=False)


_METHODS = ("auto", "direct", "separable", "fft")
# From 7x7 up the FFT's fixed cost is repaid by its taps-independent work (docs/READING.md, "Measured").
_FFT_MIN_TAPS = 49


def _choose_method(k: np.ndarray, method: str) -> str:
    if method not in _METHODS:
        raise ValueError(f"apply: method must be one of {_METHODS}. Received: method={method!r}")
    factors = _separable_factors(k)
    if method == "separable" and factors is None:
        raise ValueError(
            "apply: method='separable' needs a rank-1 kernel. "
            f"Received: a kernel of shape {k.shape} and rank above 1"
        )
    if method != "auto":
        return method
    if factors is not None and k.shape[0] > 1 and k.shape[1] > 1:
        return "separable"
    return "fft" if k.size >= _FFT_MIN_TAPS else "direct"


def _separable_factors(k: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(column, row) with ``outer(column, row) == k`` exactly, or None.

    Taken from the kernel's own entries (the row through its largest entry, and its
    column divided by that entry), so integer and power-of-two kernels factor with no
    rounding at all and the separable result equals the direct one.
    """
    i, j = np.unravel_index(np.argmax(np.abs(k)), k.shape)
    if k[i, j] == 0:
        return None
    row, column = k[i, :].astype(np.float64), k[:, j] / np.float64(k[i, j])
    return (column, row) if np.array_equal(np.outer(column, row), k) else None


def _correlate_2d(img: np.ndarray, k: np.ndarray, method: str) -> np.ndarray:
    """Valid cross-correlation of ``img`` (H, W[, C]) with ``k`` over the first two axes."""
    if method == "separable":
        column, row = _separable_factors(k)
        rows_done = sliding_correlate(img, column[:, None].astype(k.dtype), axes=(0, 1))
        return sliding_correlate(rows_done, row[None, :].astype(k.dtype), axes=(0, 1))
    if method == "fft":
        return _fft_correlate(img, k)
    return sliding_correlate(img, k, axes=(0, 1))


def _fft_correlate(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Correlation = convolution with the flipped kernel = a product of spectra."""
    kh, kw = k.shape
    h, w = img.shape[0], img.shape[1]
    size = (h + kh - 1, w + kw - 1)  # linear (not circular) convolution fits
    spectrum = np.fft.rfft2(img, s=size, axes=(0, 1))
    flipped = np.fft.rfft2(k[::-1, ::-1], s=size)
    if img.ndim == 3:
        flipped = flipped[:, :, None]
    full = np.fft.irfft2(spectrum * flipped, s=size, axes=(0, 1))
    return full[kh - 1 : h, kw - 1 : w].astype(img.dtype, copy=False)


def _check_image(image: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"apply: image must be HxW or HxWxC. Received: image.shape={img.shape}")
    if img.dtype != np.uint8 and img.dtype.kind != "f":
        raise TypeError(f"apply: image must be uint8 or floating point. Received: image.dtype={img.dtype}")
    return img, img.dtype


def _resolve_kernel(kernel: str | np.ndarray) -> np.ndarray:
    if isinstance(kernel, str):
        if kernel not in KERNELS:
            raise ValueError(
                f"apply: unknown kernel {kernel!r}; known kernels: {', '.join(KERNELS)}. "
                f"Received: kernel={kernel!r}"
            )
        return KERNELS[kernel]
    k = np.asarray(kernel)
    if k.dtype.kind not in "biuf":
        raise TypeError(
            f"apply: kernel must be a name or a real numeric array. Received: kernel.dtype={k.dtype}"
        )
    if k.ndim != 2 or k.size == 0:
        raise ValueError(
            f"apply: kernel must be a non-empty 2-D array (kh, kw). Received: kernel.shape={k.shape}"
        )
    return k


# ---------------------------------------------------------------- writing results as pictures
# Edge detectors respond with signed values around 0: they are shown as |response|.
EDGE_KERNELS = ("laplacian", "log7", "log9", "sobel_x", "sobel_y")


def shows_magnitude(kernel: np.ndarray, name: str | None = None) -> bool:
    """Whether a result of ``kernel`` is best shown as its magnitude: an edge detector of
    :data:`EDGE_KERNELS`, or any other kernel summing to 0 (it responds to change only)."""
    if name in KERNELS:
        return name in EDGE_KERNELS
    return abs(float(np.sum(kernel))) < 1e-12


def to_uint8(response: np.ndarray, edge: bool) -> np.ndarray:
    """A filter result as a uint8 picture: for ``edge``, ``|response|`` scaled so its maximum
    is 255; otherwise rounded and clipped to 0..255."""
    if edge:
        magnitude = np.abs(response)
        peak = float(magnitude.max())
        response = magnitude * (255.0 / peak) if peak > 0 else magnitude
    return np.clip(np.rint(response), 0, 255).astype(np.uint8)


def load_kernel(path: str | os.PathLike) -> np.ndarray:
    """A kernel file as a float64 ``(kh, kw)`` array: a ``.npy`` array, or a text file of rows
    of numbers (``np.loadtxt``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file cannot be parsed, or holds no 2-D array of numbers.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_kernel: kernel file not found. Received: path={str(path)!r}")
    try:
        kernel = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"load_kernel: cannot read kernel file {path} ({error}). Received: path={str(path)!r}"
        ) from None
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.size == 0 or kernel.dtype.kind not in "biuf":
        raise ValueError(
            f"load_kernel: kernel file {path} must hold a 2-D array of numbers. "
            f"Received: shape={kernel.shape}, dtype={kernel.dtype}"
        )
    return kernel.astype(np.float64)

"""Classic photo-editor filters as 2-D kernels (LECTURE.md section 2).

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

import numpy as np

from .signal import sliding_correlate

__all__ = ["KERNELS", "apply"]


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
    image: np.ndarray, kernel: str | np.ndarray, padding: str = "same", padding_mode: str = "reflect"
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
            f"apply: kernel of shape {k.shape} is larger than the image ({img.shape[0]}x{img.shape[1]})"
        )
    work = np.float64 if dtype == np.uint8 else np.result_type(dtype, np.float32)
    img = img.astype(work, copy=False)
    if padding == "same":
        pads = [((n - 1) // 2, n - 1 - (n - 1) // 2) for n in k.shape] + [(0, 0)] * (img.ndim - 2)
        img = np.pad(img, pads, mode=_PAD_MODES[padding_mode])
    out = sliding_correlate(img, k.astype(work), axes=(0, 1))
    if dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(dtype, copy=False)


def _check_image(image: np.ndarray) -> tuple[np.ndarray, np.dtype]:
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"apply: image must be HxW or HxWxC, got shape {img.shape}")
    if img.dtype != np.uint8 and img.dtype.kind != "f":
        raise TypeError(f"apply: image must be uint8 or floating point, got dtype {img.dtype}")
    return img, img.dtype


def _resolve_kernel(kernel: str | np.ndarray) -> np.ndarray:
    if isinstance(kernel, str):
        if kernel not in KERNELS:
            raise ValueError(f"apply: unknown kernel {kernel!r}; known kernels: {', '.join(KERNELS)}")
        return KERNELS[kernel]
    k = np.asarray(kernel)
    if k.dtype.kind not in "biuf":
        raise TypeError(f"apply: kernel must be a name or a real numeric array, got dtype {k.dtype}")
    if k.ndim != 2 or k.size == 0:
        raise ValueError(f"apply: kernel must be a non-empty 2-D array (kh, kw), got shape {k.shape}")
    return k

"""Upsampling: ``F.interpolate`` with nearest and (bi/tri)linear modes, as PyTorch's.

Resizing is *separable* and *linear* in the input: along each spatial axis every
output cell is a fixed weighted sum of at most two input cells. So each axis gets
an interpolation matrix ``A`` of shape (out, in) and

    y = A_1 . x . A_2^T ...   (one matrix product per spatial axis)

The gradient is the adjoint: the same products with the transposed matrices,
``dx = A_1^T . dy . A_2 ...``. Nearest mode's matrix holds one 1 per row; the linear
modes' rows hold ``1 - lambda`` and ``lambda`` at the two neighbours.

Source coordinates follow PyTorch exactly, computed in the input's dtype:

- nearest: ``src = min(floor(dst * scale), in - 1)``;
- linear, ``align_corners=True``: ``src = dst * (in - 1) / (out - 1)``
  (corner cells of input and output coincide);
- linear, ``align_corners=False``: ``src = max((dst + 0.5) * scale - 0.5, 0)``
  (cells are areas; their centres are aligned),

with ``scale = 1 / scale_factor`` when ``scale_factor`` is given, else ``in / out``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..tensor import ArrayLike, Tensor, as_tensor

__all__ = ["interpolate"]

# mode -> the number of spatial axes it works on (None: any of 1, 2, 3)
_MODES = {"nearest": None, "linear": 1, "bilinear": 2, "trilinear": 3}


def interpolate(
    input: ArrayLike,  # noqa: A002
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """Resize the spatial axes of ``input`` by nearest-neighbour or (bi/tri)linear interpolation.

    ``y[n, c, i, j] = sum_{a, b} A_H[i, a] * A_W[j, b] * x[n, c, a, b]`` with the
    interpolation matrices of the module docstring.

    Shape:
        - input: ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``; ``"linear"``
          needs 1 spatial axis, ``"bilinear"`` 2, ``"trilinear"`` 3, ``"nearest"`` any;
        - output: ``(N, C, *size)``, or ``floor(in * scale_factor)`` on each axis.

    Give exactly one of ``size`` and ``scale_factor``. ``align_corners`` applies to the
    linear modes only (default ``False``); PyTorch warns when it is left unset, we do not.
    ``recompute_scale_factor`` and the ``"bicubic"`` / ``"area"`` modes are not provided.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.interpolate(np.array([[[1.0, 2.0]]]), scale_factor=2).numpy()
    array([[[1., 1., 2., 2.]]])
    >>> F.interpolate(np.array([[[1.0, 2.0]]]), size=3, mode="linear", align_corners=True).numpy()
    array([[[1. , 1.5, 2. ]]])
    """
    x = as_tensor(input)
    _check_mode(x.shape, mode, align_corners)
    sizes, scales = _output_sizes(x.shape[2:], size, scale_factor)
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    matrices = [
        _matrix(n_in, n_out, scale, mode, bool(align_corners), dtype)
        for n_in, n_out, scale in zip(x.shape[2:], sizes, scales, strict=True)
    ]
    out = _apply(x.data.astype(dtype, copy=False), matrices, transpose=False)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (_apply(g, matrices, transpose=True).astype(x.dtype, copy=False),)

    return Tensor._from_op(out, (x,), backward)


def _check_mode(shape: tuple[int, ...], mode: str, align_corners: bool | None) -> None:
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode must be one of {tuple(_MODES)}. Received: mode={mode!r}")
    dims = len(shape) - 2
    if dims not in (1, 2, 3):
        raise ValueError(
            "interpolate: input must be (N, C, L), (N, C, H, W) or (N, C, D, H, W). "
            f"Received: input.shape={shape}"
        )
    if _MODES[mode] is not None and _MODES[mode] != dims:
        raise ValueError(
            f"interpolate: mode {mode!r} needs {_MODES[mode]} spatial axes, the input has {dims}. "
            f"Received: input.shape={shape}"
        )
    if mode == "nearest" and align_corners is not None:
        raise ValueError(
            "interpolate: align_corners applies to the linear modes only. "
            f"Received: mode={mode!r}, align_corners={align_corners!r}"
        )


def _output_sizes(
    spatial: tuple[int, ...],
    size: int | Sequence[int] | None,
    scale_factor: float | Sequence[float] | None,
) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    """The output's spatial sizes, and the scale factors to use in the source coordinates (or None)."""
    d = len(spatial)
    if (size is None) == (scale_factor is None):
        raise ValueError(
            "interpolate: give exactly one of size and scale_factor. "
            f"Received: size={size!r}, scale_factor={scale_factor!r}"
        )
    if size is not None:
        sizes = (size,) * d if isinstance(size, int) else tuple(size)
        if len(sizes) != d or not all(isinstance(n, int) and n > 0 for n in sizes):
            raise ValueError(
                f"interpolate: size must be a positive int or {d} positive ints. Received: size={size!r}"
            )
        return sizes, (None,) * d
    factors = (scale_factor,) * d if isinstance(scale_factor, int | float) else tuple(scale_factor)
    if len(factors) != d or not all(isinstance(f, int | float) and f > 0 for f in factors):
        raise ValueError(
            f"interpolate: scale_factor must be a positive number or {d} of them. "
            f"Received: scale_factor={scale_factor!r}"
        )
    sizes = tuple(math.floor(n * float(f)) for n, f in zip(spatial, factors, strict=True))
    if any(n <= 0 for n in sizes):
        raise ValueError(
            f"interpolate: the output would be empty {sizes}. Received: scale_factor={scale_factor!r}"
        )
    return sizes, tuple(float(f) for f in factors)


def _matrix(
    n_in: int, n_out: int, scale_factor: float | None, mode: str, align_corners: bool, dtype: np.dtype
) -> np.ndarray:
    """The (n_out, n_in) interpolation matrix of one axis."""
    t = dtype.type
    scale = t(1.0 / scale_factor) if scale_factor is not None else t(n_in) / t(n_out)
    dst = np.arange(n_out, dtype=dtype)
    rows = np.arange(n_out)
    a = np.zeros((n_out, n_in), dtype)
    if mode == "nearest":
        # PyTorch's nearest kernel computes the index in float32 for every dtype
        src = np.floor(dst.astype(np.float32) * np.float32(scale)).astype(np.int64)
        a[rows, np.minimum(src, n_in - 1)] = 1
        return a
    if align_corners:
        step = t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
        src = step * dst
    else:
        src = np.maximum(scale * (dst + t(0.5)) - t(0.5), t(0))
    low = np.minimum(src.astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = (src - low.astype(dtype)).astype(dtype)
    np.add.at(a, (rows, low), t(1) - frac)
    np.add.at(a, (rows, high), frac)
    return a


def _apply(x: np.ndarray, matrices: list[np.ndarray], transpose: bool) -> np.ndarray:
    """Multiply each spatial axis of ``x`` (axes 2, 3, ...) by its matrix (or its transpose)."""
    for axis, a in enumerate(matrices, start=2):
        moved = np.moveaxis(x, axis, -1)
        moved = moved @ (a if transpose else a.T)
        x = np.moveaxis(moved, -1, axis)
    return np.ascontiguousarray(x)

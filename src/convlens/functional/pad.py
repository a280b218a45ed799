"""Padding: ``F.pad`` and the spatial padding that convolution uses.

Two layers, as everywhere in ``functional``:

- array level: ``pad_spatial(x, pads, mode)`` pads the trailing axes of a NumPy
  array by non-negative ``(before, after)`` amounts, and
  ``pad_spatial_backward(grad, pads, mode)`` is its adjoint (the gradient). The
  convolution code calls these directly on raw arrays.
- the Tensor op ``pad``, with ``torch.nn.functional.pad``'s semantics.

Each padded border is a copy of some input cells (or a constant), so the
gradient folds every border back onto the cells it copied: a handful of slice
adds per axis, never ``np.add.at``. Padding is separable (the padded array is
the input transformed axis by axis), so the adjoint can fold the axes in any
order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..tensor import Tensor, as_tensor

__all__ = ["pad"]

# Our names (PyTorch's F.pad modes and nn.Conv's padding_mode values) -> np.pad's.
_NUMPY_MODE = {
    "constant": "constant",
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}

Pads = Sequence[tuple[int, int]]

# F.pad modes that apply negative amounts (crops) before positive ones, as PyTorch does
_CROP_FIRST = ("constant", "circular")


def check_spatial_padding(
    op: str, sizes: Sequence[int], pads: Pads, mode: str, name: str = "padding"
) -> None:
    """Raise ValueError unless ``mode`` can pad axes of length ``sizes`` by non-negative ``pads``.

    PyTorch's limits: a reflection must be shorter than the axis it reflects
    (``pad < size``), a circular wrap may go round at most once (``pad <= size``),
    and replicate/reflect/circular need a non-empty axis to copy from.
    """
    if mode not in _NUMPY_MODE:
        raise ValueError(
            f"{op}: padding mode must be one of 'zeros', 'reflect', 'replicate', 'circular'. "
            f"Received: {mode!r}"
        )
    if _NUMPY_MODE[mode] == "constant":
        return
    amounts = tuple(tuple(p) for p in pads)
    for size, (before, after) in zip(sizes, amounts, strict=True):
        widest = max(before, after)
        if mode == "reflect" and widest >= size:
            raise ValueError(
                f"{op}: reflect padding must be smaller than the input size along each padded "
                f"dim. Received: {name}={amounts} for input size {tuple(sizes)}"
            )
        if mode == "circular" and widest > size:
            raise ValueError(
                f"{op}: circular padding may wrap around at most once (padding <= input size). "
                f"Received: {name}={amounts} for input size {tuple(sizes)}"
            )
        if mode == "replicate" and size == 0 and widest > 0:
            raise ValueError(
                f"{op}: replicate padding needs a non-empty dim to copy. "
                f"Received: {name}={amounts} for input size {tuple(sizes)}"
            )


def pad_spatial(x: np.ndarray, pads: Pads, mode: str = "zeros", value: float = 0.0) -> np.ndarray:
    """``x`` padded on its last ``len(pads)`` axes; ``pads[i] = (before, after)`` for axis ``i`` of them.

    ``mode`` is ``"zeros"``/``"constant"`` (fill with ``value``), ``"reflect"``
    (mirror without repeating the edge: ``c b | a b c d | c b``), ``"replicate"``
    (repeat the edge: ``a a | a b c d | d d``) or ``"circular"`` (wrap around:
    ``c d | a b c d | a b``). Amounts must be non-negative and already checked
    with ``check_spatial_padding``. The dtype is kept.

    >>> pad_spatial(np.array([[1, 2, 3, 4]]), [(2, 2)], "reflect")
    array([[3, 2, 1, 2, 3, 4, 3, 2]])
    """
    if not any(before or after for before, after in pads):
        return x
    widths = [(0, 0)] * (x.ndim - len(pads)) + [tuple(p) for p in pads]
    numpy_mode = _NUMPY_MODE[mode]
    if numpy_mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=numpy_mode)


def pad_spatial_backward(grad: np.ndarray, pads: Pads, mode: str = "zeros") -> np.ndarray:
    """Adjoint of ``pad_spatial``: the gradient with respect to the unpadded array.

    >>> pad_spatial_backward(np.ones((1, 8)), [(2, 2)], "reflect")
    array([[1., 3., 3., 1.]])
    """
    numpy_mode = _NUMPY_MODE[mode]
    first = grad.ndim - len(pads)
    for axis, (before, after) in enumerate(pads, start=first):
        if before or after:
            grad = _fold_axis(grad, axis, before, after, numpy_mode)
    return grad


def _fold_axis(grad: np.ndarray, axis: int, before: int, after: int, numpy_mode: str) -> np.ndarray:
    """Gradient of padding one axis: the interior, plus each border added onto the cells it copied."""
    size = grad.shape[axis] - before - after

    def part(array: np.ndarray, start: int, stop: int) -> np.ndarray:
        return array[(slice(None),) * axis + (slice(start, stop),)]

    interior = part(grad, before, before + size)
    if numpy_mode == "constant":
        return interior
    interior = interior.copy()
    left, right = part(grad, 0, before), part(grad, before + size, before + size + after)
    if numpy_mode == "edge":
        part(interior, 0, 1)[...] += left.sum(axis=axis, keepdims=True)
        part(interior, size - 1, size)[...] += right.sum(axis=axis, keepdims=True)
    elif numpy_mode == "reflect":
        # left border cell j copied input cell before - j; right border cell j copied size - 2 - j
        part(interior, 1, before + 1)[...] += np.flip(left, axis=axis)
        part(interior, size - 1 - after, size - 1)[...] += np.flip(right, axis=axis)
    else:  # wrap: the left border is the input's tail, the right border its head
        part(interior, size - before, size)[...] += left
        part(interior, 0, after)[...] += right
    return interior


def pad(input: Any, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:  # noqa: A002
    """Pad a tensor, as ``torch.nn.functional.pad``.

    ``pad`` lists ``(before, after)`` amounts starting from the LAST dimension:
    ``(left, right)`` pads the last dim, ``(left, right, top, bottom)`` the last
    two, and so on, up to every dimension. A negative amount crops instead.

    Modes:
        ``"constant"``: fill with ``value`` (any number of dims).
        ``"reflect"``: mirror without repeating the edge; each amount must be
        smaller than the dim it pads.
        ``"replicate"``: repeat the edge value.
        ``"circular"``: wrap around; each amount at most the dim's size.
        Non-constant modes pad the last 1, 2 or 3 dims of a tensor with one or
        two more dims (e.g. ``(C, W)``/``(N, C, W)`` for a 2-element ``pad``),
        as in PyTorch.

    Where both signs occur, the order is PyTorch's: reflect and replicate pad
    from the original input and then crop; constant and circular crop first
    (circular then wraps the cropped tensor, so its amounts are limited by the
    cropped size; PyTorch reads uninitialised memory beyond that, we raise).

    Shape:
        Input ``(*, D_m, ..., D_1)``; output dim ``D_i + pad[2i-2] + pad[2i-1]``.

    Gradient: each padded cell's gradient goes back to the input cell it
    copied (constant cells have none).

    >>> import numpy as np, convlens as cl
    >>> from convlens import functional as F
    >>> x = cl.tensor(np.array([[[1.0, 2.0, 3.0]]]))
    >>> F.pad(x, (2, 1), mode="reflect").data
    array([[[3., 2., 1., 2., 3., 2.]]])
    >>> F.pad(x, (1, -1), value=9.0).data
    array([[[9., 1., 2.]]])
    """
    x = as_tensor(input)
    pairs = _check_pad(x.shape, pad, mode, value)
    grow = [(max(before, 0), max(after, 0)) for before, after in pairs]
    if mode in _CROP_FIRST:
        crop = _crop_window(x.shape, pairs)
        out = pad_spatial(x.data[crop], grow, mode, value)

        def backward(grad: np.ndarray) -> tuple[np.ndarray]:
            return (_uncrop(pad_spatial_backward(grad, grow, mode), x.shape, crop),)
    else:
        padded = pad_spatial(x.data, grow, mode, value)
        crop = _crop_window(padded.shape, pairs)
        out = padded[crop]

        def backward(grad: np.ndarray) -> tuple[np.ndarray]:
            return (pad_spatial_backward(_uncrop(grad, padded.shape, crop), grow, mode),)

    return Tensor._from_op(out, (x,), backward)


def _crop_window(shape: tuple[int, ...], pairs: Sequence[tuple[int, int]]) -> tuple[Any, ...]:
    """Index that removes the negative amounts of ``pairs`` from the trailing axes of ``shape``."""
    sizes = shape[len(shape) - len(pairs) :]
    return (Ellipsis, *(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(sizes, pairs, strict=True)))


def _uncrop(grad: np.ndarray, shape: tuple[int, ...], crop: tuple[Any, ...]) -> np.ndarray:
    """Adjoint of cropping: ``grad`` placed in zeros of the uncropped ``shape``."""
    if grad.shape == shape:
        return grad
    full = np.zeros(shape, dtype=grad.dtype)
    full[crop] = grad
    return full


def _check_pad(shape: tuple[int, ...], pad: Sequence[int], mode: str, value: float) -> list[tuple[int, int]]:
    """Validate ``F.pad``'s arguments; per padded axis (in natural order) its (before, after) pair."""
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ValueError(
            f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular'. Received: mode={mode!r}"
        )
    if (
        isinstance(pad, str)
        or not isinstance(pad, Sequence)
        or not all(isinstance(p, int | np.integer) and not isinstance(p, bool) for p in pad)
    ):
        raise TypeError(f"pad: pad must be a tuple of ints. Received: pad={pad!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError(f"pad: pad must have an even length ((before, after) pairs). Received: pad={pad}")
    m = len(pad) // 2
    if m > len(shape):
        raise ValueError(
            f"pad: pad has {m} (before, after) pairs but the input has only {len(shape)} dims. "
            f"Received: pad={pad}, input shape {shape}"
        )
    if mode != "constant":
        if value:
            raise ValueError(f"pad: mode={mode!r} takes no fill value. Received: value={value!r}")
        if not (1 <= m <= 3 and len(shape) in (m + 1, m + 2)):
            raise ValueError(
                f"pad: mode={mode!r} pads the last 1, 2 or 3 dims of a tensor with 1 or 2 more "
                f"dims (2-D/3-D input for a 2-element pad, 3-D/4-D for 4, 4-D/5-D for 6). "
                f"Received: pad={pad}, input shape {shape}"
            )
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(m))]
    sizes = shape[len(shape) - m :]
    # PyTorch's 1-D reflect/replicate kernels refuse an empty result; its 2-D/3-D ones allow it
    smallest = 1 if mode in ("reflect", "replicate") and m == 1 else 0
    for size, (before, after) in zip(sizes, pairs, strict=True):
        cropped_first = mode in _CROP_FIRST and size + min(before, 0) + min(after, 0) < 0
        if size + before + after < smallest or cropped_first:
            raise ValueError(
                f"pad: the output would have size {size + before + after} along a dim of size "
                f"{size}. Received: pad={pad}, input shape {shape}"
            )
    if mode == "circular":  # wraps the cropped tensor
        sizes = tuple(n + min(b, 0) + min(a, 0) for n, (b, a) in zip(sizes, pairs, strict=True))
    check_spatial_padding("pad", sizes, [(max(b, 0), max(a, 0)) for b, a in pairs], mode, name="pad")
    return pairs

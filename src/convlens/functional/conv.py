"""Convolution: conv1d/2d/3d and conv_transpose1d/2d/3d, and the lecture's way to compute them.

Like PyTorch (and every deep-learning library), "convolution" here is
cross-correlation: the kernel is not flipped. True convolution is the same
with a flipped kernel; ``cl.signal.convolve`` offers it.

Read this module top to bottom:

1. **Geometry.** ``ConvGeometry`` / ``TransposeGeometry`` hold every argument,
   validated once, with errors in one style (``conv2d: what is wrong. Received:
   name=value``), and remembered per shape so repeated calls skip the checks.
2. **The reference engine**, the lecture's im2col + GEMM on NumPy arrays:

   - forward: lay every window of the padded input out as one column
     (``_im2col``, a strided view copied once), then one matrix product with
     the weight: ``out = W @ cols``;
   - backward: the weight gradient is one GEMM, ``dW = dout @ cols^T``; the
     input gradient is one GEMM, ``dcols = W^T @ dout``, followed by ``_col2im``,
     which adds every column back onto the cells it was read from (one strided
     add per kernel tap);
   - the transposed convolution is the same two pieces the other way round:
     its forward is the convolution's input gradient, its backward a convolution.

3. **The Tensor ops.** Each op validates, asks ``backend.choose`` once for the
   engine, runs its forward, and keeps the engine with the saved state so the
   backward runs the same engine.

The fast engines (FFT, numba's direct convolution, three column layouts) live
in ``convlens.engines``, one file each, and are tested against this one;
``cl.backend.use("reference")`` runs this engine everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor, as_tensor, is_grad_enabled
from ._args import cacheable, ntuple, output_size
from ._windows import GeometryCache, effective_kernel, layout, tap_slices, window_view
from .pad import check_spatial_padding, pad_spatial, pad_spatial_backward

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
]

_KERNEL = {1: "kW", 2: "kH, kW", 3: "kD, kH, kW"}
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# ---------------------------------------------------------------------------
# 1. Geometry: validate once
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvGeometry:
    """Everything a convolution engine needs besides the arrays."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]  # (before, after) per spatial axis
    padding_mode: str
    groups: int
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]


@dataclass(frozen=True)
class TransposeGeometry:
    """Transposed convolution = the input gradient of the convolution with the same arguments.

    ``full_size`` is the length the kernel taps scatter into,
    ``(in-1)*stride + dilation*(k-1) + 1 + output_padding``; the output is that
    with ``padding`` cut from both ends.
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding: tuple[int, ...]
    output_padding: tuple[int, ...]
    groups: int
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]

    @property
    def full_size(self) -> tuple[int, ...]:
        return tuple(o + 2 * p for o, p in zip(self.out_size, self.padding, strict=True))


def _check_arrays(op: str, d: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, weight: str) -> bool:
    """Ranks and dtypes of input, weight and bias; returns whether the input is batched."""
    if x.ndim not in (d + 1, d + 2):
        raise ValueError(
            f"{op}: input must be {d + 1}-D {layout(d)} or {d + 2}-D {layout(d, batched=True)}. "
            f"Received: input.shape={x.shape}"
        )
    if w.ndim != d + 2:
        raise ValueError(f"{op}: weight must be {d + 2}-D {weight}. Received: weight.shape={w.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be a floating-point tensor. Received: input.dtype={x.dtype}")
    if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        names = "weight" if w.dtype != x.dtype else "bias"
        other = w.dtype if w.dtype != x.dtype else b.dtype  # type: ignore[union-attr]
        raise TypeError(
            f"{op}: input and {names} must have the same dtype. "
            f"Received: input.dtype={x.dtype}, {names}.dtype={other}"
        )
    return x.ndim == d + 2


def _check_groups(op: str, groups: Any) -> int:
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive integer. Received: groups={groups!r}")
    return int(groups)


def _check_channels(op: str, channels: int, expected: int, divided: int, divided_name: str, groups: int):
    """The input's channels match the weight's, and ``divided`` channels split into ``groups``."""
    if channels != expected:
        raise ValueError(
            f"{op}: the input has {channels} channels but the weight expects {expected}. "
            f"Received: input channels={channels}, groups={groups}"
        )
    if divided % groups:
        raise ValueError(
            f"{op}: {divided_name} must be divisible by groups. "
            f"Received: {divided_name}={divided}, groups={groups}"
        )


def _check_bias_and_kernel(op: str, b: np.ndarray | None, channels: int, w: np.ndarray) -> tuple[int, ...]:
    if b is not None and b.shape != (channels,):
        raise ValueError(
            f"{op}: bias must have shape ({channels},), one per output channel. "
            f"Received: bias.shape={b.shape}"
        )
    if min(w.shape[2:]) < 1:
        raise ValueError(f"{op}: the kernel size must be positive. Received: weight.shape={w.shape}")
    return tuple(w.shape[2:])


def _same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """PyTorch's 'same': total ``dilation*(k-1)``, the odd cell (even kernels) goes after."""
    total = effective_kernel(kernel, dilation) - 1
    return total // 2, total - total // 2


def _conv_padding(
    op: str, padding: Any, d: int, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[tuple[int, int], ...]:
    if not isinstance(padding, str):
        return tuple((p, p) for p in ntuple(padding, d, "padding", op, minimum=0))
    if padding == "valid":
        return ((0, 0),) * d
    if padding != "same":
        raise ValueError(
            f"{op}: padding must be an int, a tuple of {d} ints, 'valid' or 'same'. "
            f"Received: padding={padding!r}"
        )
    if any(s != 1 for s in stride):
        raise ValueError(
            f"{op}: padding='same' is not supported for strided convolutions. Received: stride={stride}"
        )
    return tuple(_same_padding(k, dl) for k, dl in zip(kernel, dilation, strict=True))


def _conv_geometry(
    op: str, d: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *args: Any
) -> tuple[ConvGeometry, bool]:
    """Validate ``args`` (stride, padding, dilation, groups, padding_mode) against the arrays."""
    stride, padding, dilation, groups, padding_mode = args
    batched = _check_arrays(op, d, x, w, b, f"(C_out, C_in/groups, {_KERNEL[d]})")
    groups = _check_groups(op, groups)
    _check_channels(op, x.shape[-d - 1], w.shape[1] * groups, w.shape[0], "out_channels", groups)
    kernel = _check_bias_and_kernel(op, b, w.shape[0], w)
    stride = ntuple(stride, d, "stride", op)
    dilation = ntuple(dilation, d, "dilation", op)
    pads = _conv_padding(op, padding, d, kernel, stride, dilation)
    if padding_mode not in _PADDING_MODES:
        raise ValueError(
            f"{op}: padding_mode must be one of {_PADDING_MODES}. Received: padding_mode={padding_mode!r}"
        )
    in_size = tuple(x.shape[-d:])
    check_spatial_padding(op, in_size, pads, padding_mode)
    padded = tuple(n + before + after for n, (before, after) in zip(in_size, pads, strict=True))
    spans = tuple(effective_kernel(k, dl) for k, dl in zip(kernel, dilation, strict=True))
    if any(span > n for span, n in zip(spans, padded, strict=True)):
        raise ValueError(
            f"{op}: the kernel is larger than the padded input: kernel extent dilation*(k-1)+1 = {spans}, "
            f"padded input size {padded}. Received: input.shape={x.shape}, weight.shape={w.shape}, "
            f"padding={padding!r}, dilation={dilation}"
        )
    out_size = tuple(
        output_size(n, k, before, s, dl, padding_after=after)
        for n, k, (before, after), s, dl in zip(in_size, kernel, pads, stride, dilation, strict=True)
    )
    return ConvGeometry(kernel, stride, dilation, pads, padding_mode, groups, in_size, out_size), batched


_GEOMETRIES: GeometryCache[tuple[ConvGeometry, bool]] = GeometryCache()


def conv_geometry(
    op: str, d: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *args: Any
) -> tuple[ConvGeometry, bool]:
    """The validated geometry of a convolution and whether its input is batched.

    ``args`` are stride, padding, dilation, groups and padding_mode as :func:`conv2d` takes
    them; the result is remembered by (shapes, dtypes, arguments) when those are plain values.
    """
    stride, padding, dilation, groups, padding_mode = args
    plain = cacheable(stride) and cacheable(padding) and cacheable(dilation)
    if not (plain and type(groups) is int and type(padding_mode) is str):
        return _conv_geometry(op, d, x, w, b, *args)
    bias = None if b is None else (b.shape, b.dtype)
    key = (op, d, x.shape, x.dtype, w.shape, w.dtype, bias, stride, padding, dilation, groups, padding_mode)
    return _GEOMETRIES.get(key, lambda: _conv_geometry(op, d, x, w, b, *args))


def _transpose_geometry(
    op: str, d: int, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *args: Any
) -> tuple[TransposeGeometry, bool]:
    """Validate ``args`` (stride, padding, output_padding, groups, dilation) against the arrays."""
    stride, padding, output_padding, groups, dilation = args
    batched = _check_arrays(op, d, x, w, b, f"(C_in, C_out/groups, {_KERNEL[d]})")
    groups = _check_groups(op, groups)
    channels = x.shape[-d - 1]
    _check_channels(op, channels, w.shape[0], channels, "in_channels", groups)
    kernel = _check_bias_and_kernel(op, b, w.shape[1] * groups, w)
    if isinstance(padding, str):
        raise TypeError(
            f"{op}: padding must be an int or a tuple of {d} ints (no 'same' or 'valid' for a "
            f"transposed convolution, as in PyTorch). Received: padding={padding!r}"
        )
    stride = ntuple(stride, d, "stride", op)
    dilation = ntuple(dilation, d, "dilation", op)
    pads = ntuple(padding, d, "padding", op, minimum=0)
    extra = ntuple(output_padding, d, "output_padding", op, minimum=0)
    if any(e >= max(s, dl) for e, s, dl in zip(extra, stride, dilation, strict=True)):
        raise ValueError(
            f"{op}: output_padding must be smaller than either stride or dilation. "
            f"Received: output_padding={extra}, stride={stride}, dilation={dilation}"
        )
    in_size = tuple(x.shape[-d:])
    out_size = tuple(
        (n - 1) * s + effective_kernel(k, dl) + e - 2 * p
        for n, k, s, dl, p, e in zip(in_size, kernel, stride, dilation, pads, extra, strict=True)
    )
    if min(in_size) < 1 or min(out_size) < 1:
        raise ValueError(
            f"{op}: the output size (in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1 "
            f"= {out_size} is too small. Received: input.shape={x.shape}, weight.shape={w.shape}, "
            f"padding={pads}"
        )
    return TransposeGeometry(kernel, stride, dilation, pads, extra, groups, in_size, out_size), batched


# ---------------------------------------------------------------------------
# 2. The reference engine: im2col and one GEMM; the backward as GEMMs and col2im
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvImpl:
    """How an engine computes a convolution on arrays (what ``Engine.impl`` holds for the conv families).

    ``forward(x, w, b, geometry, for_backward) -> (out, saved)`` on a batched input;
    ``backward(grad, w, saved, geometry, needs) -> (dx, dw, db)``, ``None`` where
    ``needs`` (input, weight, bias) is false.
    """

    forward: Callable[..., tuple[np.ndarray, Any]]
    backward: Callable[..., tuple[np.ndarray | None, ...]]


def _im2col(xp: np.ndarray, g: ConvGeometry | TransposeGeometry, positions: Sequence[int]) -> np.ndarray:
    """Columns ``(G, C/G * K, N * P)`` of a padded input ``(N, C, *S)``: row (c, tap), column (n, position).

    ``cols[g, (c, k), (n, y)] = xp[n, g*C/G + c, s*y + d*k]`` for the output ``positions``
    (K = prod(kernel), P = prod(positions)).
    """
    n, c, d = xp.shape[0], xp.shape[1], len(g.kernel)
    windows = window_view(
        xp, g.kernel, g.stride, g.dilation, positions, axes=range(2, 2 + d)
    )  # (N, C, *P, *K)
    tap_major = windows.transpose(1, *range(2 + d, 2 + 2 * d), 0, *range(2, 2 + d))  # (C, *K, N, *P)
    return tap_major.reshape(g.groups, c // g.groups * math.prod(g.kernel), n * math.prod(positions))


def _col2im(
    dcols: np.ndarray,
    padded_shape: Sequence[int],
    g: ConvGeometry | TransposeGeometry,
    positions: Sequence[int],
) -> np.ndarray:
    """Adjoint of ``_im2col``: add every column entry back onto the input cell it was read from.

    One strided slice-add per kernel tap, into a padded gradient ``(N, C, *S)``.
    """
    n, c = padded_shape[0], padded_shape[1]
    per_tap = dcols.reshape(c, math.prod(g.kernel), n, *positions).swapaxes(0, 2)  # (N, K, C, *P)
    grad = np.zeros(padded_shape, dtype=dcols.dtype)
    for tap, offsets in enumerate(np.ndindex(*g.kernel)):
        cells = tap_slices(offsets, g.stride, g.dilation, positions)
        grad[(slice(None), slice(None), *cells)] += per_tap[:, tap]
    return grad


def _as_rows(a: np.ndarray, groups: int) -> np.ndarray:
    """``(N, C, *S)`` as the GEMM operand ``(G, C/G, N * P)``: row c, column (n, position)."""
    n, c, p = a.shape[0], a.shape[1], math.prod(a.shape[2:])
    per_group = a.reshape(n, groups, c // groups, p).transpose(1, 2, 0, 3)
    return per_group.reshape(groups, c // groups, n * p)


def _from_rows(rows: np.ndarray, batch: int, size: Sequence[int]) -> np.ndarray:
    """Inverse of ``_as_rows``: ``(G, C/G, N * P)`` back to ``(N, C, *size)``."""
    return rows.reshape(rows.shape[0] * rows.shape[1], batch, *size).swapaxes(0, 1)


def _weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """Weight ``(O, C/G, *kernel)`` as the GEMM operand ``(G, O/G, C/G * K)``, in ``_im2col``'s row order."""
    return w.reshape(groups, w.shape[0] // groups, -1)


def _bias_view(b: np.ndarray, d: int) -> np.ndarray:
    return b.reshape(-1, *(1,) * d)


def _reference_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``out = W @ im2col(pad(x)) + b``: ``(N, C, *S)`` -> ``(N, O, *out)``; keeps the columns."""
    cols = _im2col(pad_spatial(x, g.padding, g.padding_mode), g, g.out_size)
    out = _from_rows(_weight_matrix(w, g.groups) @ cols, x.shape[0], g.out_size)
    if b is not None:
        out = out + _bias_view(b, len(g.kernel))
    return out, cols


def _reference_backward(
    grad: np.ndarray, w: np.ndarray, cols: np.ndarray, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    """``dW = dout @ cols^T``, ``dx = unpad(col2im(W^T @ dout))``, ``db = sum(dout)``."""
    rows, wm = _as_rows(grad, g.groups), _weight_matrix(w, g.groups)
    dx = dw = db = None
    if needs[0]:
        n, c = grad.shape[0], w.shape[1] * g.groups
        padded = (n, c, *(m + a + z for m, (a, z) in zip(g.in_size, g.padding, strict=True)))
        dxp = _col2im(wm.swapaxes(1, 2) @ rows, padded, g, g.out_size)
        dx = pad_spatial_backward(dxp, g.padding, g.padding_mode)
    if needs[1]:
        dw = (rows @ cols.swapaxes(1, 2)).reshape(w.shape)
    if needs[2]:
        db = grad.sum(axis=(0, *range(2, grad.ndim)))
    return dx, dw, db


def _transpose_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: TransposeGeometry, for_backward: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The convolution's input gradient: ``col2im(W^T @ x)``, cropped by ``padding``; keeps ``x``."""
    dcols = _weight_matrix(w, g.groups).swapaxes(1, 2) @ _as_rows(x, g.groups)
    full_shape = (x.shape[0], w.shape[1] * g.groups, *g.full_size)
    full = _col2im(dcols, full_shape, g, g.in_size)
    out = full[(Ellipsis, *(slice(p, p + m) for p, m in zip(g.padding, g.out_size, strict=True)))]
    if b is not None:
        out = out + _bias_view(b, len(g.kernel))
    return out, x


def _transpose_backward(
    grad: np.ndarray, w: np.ndarray, x: np.ndarray, g: TransposeGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    """A convolution of ``grad``: ``dx = W @ im2col(pad(grad))``, ``dW = x @ cols^T``."""
    full = pad_spatial(grad, tuple((p, p) for p in g.padding), "zeros")
    cols = _im2col(full, g, g.in_size)
    dx = dw = db = None
    if needs[0]:
        dx = _from_rows(_weight_matrix(w, g.groups) @ cols, x.shape[0], g.in_size)
    if needs[1]:
        dw = (_as_rows(x, g.groups) @ cols.swapaxes(1, 2)).reshape(w.shape)
    if needs[2]:
        db = grad.sum(axis=(0, *range(2, grad.ndim)))
    return dx, dw, db


backend.register(
    backend.Engine("conv", "reference", ConvImpl(_reference_forward, _reference_backward), reference=True)
)
backend.register(
    backend.Engine(
        "conv_transpose", "reference", ConvImpl(_transpose_forward, _transpose_backward), reference=True
    )
)


# ---------------------------------------------------------------------------
# 3. Tensor ops
# ---------------------------------------------------------------------------
def _tensors(x: Any, weight: Any, bias: Any) -> tuple[Tensor, Tensor, Tensor | None]:
    return as_tensor(x), as_tensor(weight), None if bias is None else as_tensor(bias)


def _data(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.data


def _needs(x: Tensor, w: Tensor, b: Tensor | None) -> tuple[bool, bool, bool]:
    return x.requires_grad, w.requires_grad, b is not None and b.requires_grad


def run_engine(
    engine: backend.Engine, x: Tensor, w: Tensor, b: Tensor | None, geometry: Any, batched: bool
) -> Tensor:
    """The Tensor op of ``engine`` (a ``ConvImpl``): its forward now, its backward later, with the
    same engine and saved state (nothing is chosen again)."""
    xb = x.data if batched else x.data[None]
    for_backward = is_grad_enabled() and any(_needs(x, w, b))
    out, saved = engine.impl.forward(xb, w.data, _data(b), geometry, for_backward)

    def backward(grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        needs = _needs(x, w, b)
        dx, dw, db = engine.impl.backward(grad if batched else grad[None], w.data, saved, geometry, needs)
        if dx is not None and not batched:
            dx = dx[0]
        return (dx, dw) if b is None else (dx, dw, db)

    return Tensor._from_op(out if batched else out[0], (x, w) if b is None else (x, w, b), backward)


def _convnd(op: str, d: int, data: Any, weight: Any, bias: Any, *args: Any) -> Tensor:
    """``args``: stride, padding, dilation, groups, padding_mode, as :func:`conv2d` takes them."""
    x, w, b = _tensors(data, weight, bias)
    geometry, batched = conv_geometry(op, d, x.data, w.data, _data(b), *args)
    engine = backend.choose("conv", op, x.data if batched else x.data[None], w.data, geometry)
    return run_engine(engine, x, w, b, geometry, batched)


def _conv_transposend(op: str, d: int, data: Any, weight: Any, bias: Any, *args: Any) -> Tensor:
    """``args``: stride, padding, output_padding, groups, dilation, as :func:`conv_transpose2d`."""
    x, w, b = _tensors(data, weight, bias)
    geometry, batched = _transpose_geometry(op, d, x.data, w.data, _data(b), *args)
    engine = backend.choose("conv_transpose", op, x.data if batched else x.data[None], w.data, geometry)
    return run_engine(engine, x, w, b, geometry, batched)


def conv2d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """2-D convolution (cross-correlation) over a batch of images, as ``torch.nn.functional.conv2d``.

    With ``G = groups`` and output channel ``o`` in group ``g = o // (C_out/G)``::

        out[n, o, y, x] = bias[o] + sum_{c < C_in/G} sum_{i < kH} sum_{j < kW}
                          weight[o, c, i, j] * xp[n, g*C_in/G + c, sH*y + dH*i, sW*x + dW*j]

    where ``xp`` is the input padded by ``padding`` (so ``xp[.., sH*y + dH*i, ..]``
    is ``input[.., sH*y + dH*i - pH, ..]``). In general, per spatial axis,
    ``out[n, o, y] = b[o] + sum_{c,k} w[o, c, k] * x[n, c, s*y + d*k - p]``.

    This is cross-correlation, like PyTorch's: the kernel is not flipped. True
    convolution equals ``conv2d`` with ``weight`` flipped along both spatial
    axes (``cl.signal.convolve`` computes it).

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``, floating point.
        weight: ``(C_out, C_in/groups, kH, kW)``, the input's dtype.
        bias: ``(C_out,)`` or None.
        stride: step of the kernel, int or ``(sH, sW)``.
        padding: int, ``(pH, pW)``, ``"valid"`` (no padding) or ``"same"``
            (output size = input size; needs stride 1; total padding
            ``dilation*(k-1)`` per axis, split ``total//2`` before and the rest
            after, so an even kernel pads one more cell after, as PyTorch).
        dilation: spacing between kernel taps, int or ``(dH, dW)``.
        groups: split input and output channels into ``groups`` independent
            convolutions; ``groups == C_in`` is a depthwise convolution.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or
            ``"circular"``. **Differs from PyTorch**: ``torch.nn.functional.conv2d``
            has no ``padding_mode`` (only ``nn.Conv2d`` has, padding with
            ``F.pad`` first); here the functional op takes it directly, with
            ``nn.Conv2d``'s meaning.

    Shape:
        Output ``(N, C_out, H_out, W_out)`` with, per axis
        (``_args.output_size``)::

            H_out = floor((H + pH_before + pH_after - dH*(kH-1) - 1) / sH) + 1

        The result is stored channels-last in memory (``(N, H_out, W_out, C_out)``)
        and returned as an ``(N, C_out, H_out, W_out)`` view, like PyTorch's
        ``channels_last`` memory format; values and shape are unaffected.

    Weight: layout ``(C_out, C_in/groups, kH, kW)`` (OIHW, PyTorch's);
    ``nn.Conv2d`` initialises it (and the bias) uniformly in
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, ``fan_in = C_in/groups * kH * kW``.

    Example (the lecture's 5x5 binary image and 3x3 kernel, section 2):

    >>> import numpy as np, convlens as cl
    >>> from convlens import functional as F
    >>> image = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1],
    ...                   [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=np.float32)
    >>> kernel = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float32)
    >>> F.conv2d(image[None, None], kernel[None, None]).data[0, 0]
    array([[4., 3., 4.],
           [2., 4., 3.],
           [2., 3., 4.]], dtype=float32)
    >>> F.conv2d(np.zeros((8, 3, 28, 28), np.float32), np.zeros((6, 3, 5, 5), np.float32),
    ...          padding="same").shape
    (8, 6, 28, 28)
    """
    return _convnd("conv2d", 2, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv1d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] | str = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """1-D convolution (cross-correlation), as ``torch.nn.functional.conv1d``.

    ``out[n, o, y] = b[o] + sum_{c,k} w[o, c, k] * x[n, g*C_in/G + c, s*y + d*k - p]``
    (``g`` the group of ``o``; out-of-range input cells are padding). Arguments,
    the ``padding_mode`` extension and the cross-correlation note are as in
    :func:`conv2d`.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in/groups, kW)``;
        output ``(N, C_out, L_out)``,
        ``L_out = floor((L + p_before + p_after - d*(k-1) - 1) / s) + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv1d(np.array([[[1.0, 2.0, 3.0, 4.0]]]), np.array([[[1.0, -1.0]]])).data
    array([[[-1., -1., -1.]]])
    """
    return _convnd("conv1d", 1, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv3d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] | str = 0,
    dilation: int | tuple[int, int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """3-D convolution (cross-correlation) over volumes or video, as ``torch.nn.functional.conv3d``.

    ``out[n, o, z, y, x] = b[o] + sum_{c,k,i,j} w[o, c, k, i, j] *
    x[n, g*C_in/G + c, sD*z + dD*k - pD, sH*y + dH*i - pH, sW*x + dW*j - pW]``.
    Arguments, the ``padding_mode`` extension and the cross-correlation note are
    as in :func:`conv2d`.

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight
        ``(C_out, C_in/groups, kD, kH, kW)``; output ``(N, C_out, D_out, H_out, W_out)``,
        each ``floor((n + p_before + p_after - d*(k-1) - 1) / s) + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv3d(np.ones((2, 4, 5, 6, 7)), np.ones((3, 4, 3, 3, 3)), stride=2).shape
    (2, 3, 2, 2, 3)
    """
    return _convnd("conv3d", 3, input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv_transpose2d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int] = 1,
) -> Tensor:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    The adjoint (input gradient) of :func:`conv2d` with the same stride,
    padding, dilation and groups: every input cell scatters a weighted copy of
    the kernel into the output (sometimes called "deconvolution")::

        out[n, g*C_out/G + o, s*y + d*k - p] += x[n, c, y] * w[c, o, k]   (c in group g)

    plus ``bias[o]``; cells that fall outside the output are dropped.

    Args:
        input: ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
        weight: ``(C_in, C_out/groups, kH, kW)`` (note: in/out swapped compared
            with conv2d, PyTorch's layout).
        bias: ``(C_out,)`` or None.
        stride, padding, dilation, groups: those of the convolution this
            transposes; ``padding`` cuts ``padding`` cells from both ends of
            the full scattered result (it undoes the convolution's padding).
        output_padding: extra cells added after the end of each axis (to pick
            one of the input sizes a strided conv maps to the same output size);
            must be smaller than stride or dilation, PyTorch's rule.

    Shape:
        ``H_out = (H - 1)*sH - 2*pH + dH*(kH - 1) + output_padding + 1``.

    Weight: ``nn.ConvTranspose2d`` initialises it uniformly in
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` with PyTorch's ``fan_in``
    (``weight.shape[1] * kH * kW``).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2).data[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """
    return _conv_transposend(
        "conv_transpose2d", 2, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose1d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] = 0,
    output_padding: int | tuple[int] = 0,
    groups: int = 1,
    dilation: int | tuple[int] = 1,
) -> Tensor:
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d`` (see :func:`conv_transpose2d`).

    ``out[n, g*C_out/G + o, s*y + d*k - p] += x[n, c, y] * w[c, o, k]``, plus ``bias[o]``.

    Shape:
        input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_in, C_out/groups, kW)``;
        ``L_out = (L - 1)*s - 2*p + d*(k - 1) + output_padding + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv_transpose1d(np.array([[[1.0, 2.0]]]), np.array([[[1.0, 10.0]]])).data
    array([[[ 1., 12., 20.]]])
    """
    return _conv_transposend(
        "conv_transpose1d", 1, input, weight, bias, stride, padding, output_padding, groups, dilation
    )


def conv_transpose3d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int, int] = 1,
    padding: int | tuple[int, int, int] = 0,
    output_padding: int | tuple[int, int, int] = 0,
    groups: int = 1,
    dilation: int | tuple[int, int, int] = 1,
) -> Tensor:
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d`` (see :func:`conv_transpose2d`).

    Shape:
        input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight
        ``(C_in, C_out/groups, kD, kH, kW)``; each output size
        ``(n - 1)*s - 2*p + d*(k - 1) + output_padding + 1``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.conv_transpose3d(np.ones((1, 2, 3, 3, 3)), np.ones((2, 4, 2, 2, 2)), stride=2).shape
    (1, 4, 6, 6, 6)
    """
    return _conv_transposend(
        "conv_transpose3d", 3, input, weight, bias, stride, padding, output_padding, groups, dilation
    )

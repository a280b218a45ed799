"""Pooling layers: thin wrappers over ``F.max_pool*``, ``F.avg_pool*`` and ``F.adaptive_*_pool2d``."""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..functional._args import ntuple
from ..tensor import Tensor
from ._shapes import Shape, check_input, window_output
from .module import Module

__all__ = [
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
]


class _MaxPoolNd(Module):
    _dims = 2

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        ceil_mode: bool = False,
    ):
        super().__init__()
        name, n = type(self).__name__, self._dims
        ntuple(kernel_size, n, "kernel_size", name)
        ntuple(padding, n, "padding", name, minimum=0)
        ntuple(dilation, n, "dilation", name)
        if stride is not None:
            ntuple(stride, n, "stride", name)
        # Kept as given (PyTorch's pooling layers do not canonicalise to tuples).
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        op = getattr(F, f"max_pool{self._dims}d")
        return op(input, self.kernel_size, self.stride, self.padding, self.dilation, ceil_mode=self.ceil_mode)

    def output_shape(self, input_shape: Shape) -> Shape:
        name, n = type(self).__name__, self._dims
        shape = check_input(name, input_shape, n)
        sizes = window_output(
            name,
            shape,
            ntuple(self.kernel_size, n, "kernel_size", name),
            ntuple(self.stride, n, "stride", name),
            ntuple(self.padding, n, "padding", name, 0),
            ntuple(self.dilation, n, "dilation", name),
            self.ceil_mode,
        )
        return (shape[0], *sizes)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}"
        if self.stride != self.kernel_size:
            text += f", stride={self.stride}"
        for key, default in (("padding", 0), ("dilation", 1), ("ceil_mode", False)):
            if getattr(self, key) != default:
                text += f", {key}={getattr(self, key)}"
        return text


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling: (N, C, L) -> (N, C, L_out), ``L_out`` as for convolution
    (``stride`` defaults to ``kernel_size``; ``ceil_mode`` rounds up).

    >>> MaxPool1d(2).output_shape((3, 9))
    (3, 4)
    """

    _dims = 1


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling: (N, C, H, W) -> (N, C, H_out, W_out),
    ``H_out = floor((H + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1``
    (``stride`` defaults to ``kernel_size``; ``ceil_mode`` rounds up).

    >>> MaxPool2d(2).output_shape((6, 28, 28))
    (6, 14, 14)
    """

    _dims = 2

    def _is_2x2_tiles(self) -> bool:
        """Plain 2x2 windows at stride 2 (what ``nn.fuse`` may fuse into the convolution before)."""
        as_pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)  # noqa: E731
        return (
            as_pair(self.kernel_size) == as_pair(self.stride) == (2, 2)
            and as_pair(self.padding) == (0, 0)
            and as_pair(self.dilation) == (1, 1)
            and not self.ceil_mode
        )


class MaxPool3d(_MaxPoolNd):
    """3-D max pooling: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out), sizes as MaxPool2d.

    >>> MaxPool3d(2).output_shape((1, 4, 4, 5))
    (1, 2, 2, 2)
    """

    _dims = 3


class _AvgPoolNd(Module):
    _dims = 2

    def __init__(
        self,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] | None = None,
        padding: int | tuple[int, ...] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ):
        super().__init__()
        name, n = type(self).__name__, self._dims
        ntuple(kernel_size, n, "kernel_size", name)
        ntuple(padding, n, "padding", name, minimum=0)
        if stride is not None:
            ntuple(stride, n, "stride", name)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        op = getattr(F, f"avg_pool{self._dims}d")
        return op(
            input,
            self.kernel_size,
            self.stride,
            self.padding,
            ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad,
        )

    def output_shape(self, input_shape: Shape) -> Shape:
        name, n = type(self).__name__, self._dims
        shape = check_input(name, input_shape, n)
        sizes = window_output(
            name,
            shape,
            ntuple(self.kernel_size, n, "kernel_size", name),
            ntuple(self.stride, n, "stride", name),
            ntuple(self.padding, n, "padding", name, 0),
            (1,) * n,
            self.ceil_mode,
        )
        return (shape[0], *sizes)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}"
        if self.stride != self.kernel_size:
            text += f", stride={self.stride}"
        for key, default in (("padding", 0), ("ceil_mode", False), ("count_include_pad", True)):
            if getattr(self, key) != default:
                text += f", {key}={getattr(self, key)}"
        return text


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling: (N, C, L) -> (N, C, L_out), sizes as MaxPool1d (no dilation).

    >>> AvgPool1d(3, stride=1).output_shape((2, 5))
    (2, 3)
    """

    _dims = 1


class AvgPool2d(_AvgPoolNd):
    """2-D average pooling: (N, C, H, W) -> (N, C, H_out, W_out), sizes as MaxPool2d (no dilation);
    ``count_include_pad`` counts padded zeros in the divisor (PyTorch's default).

    >>> AvgPool2d(2).output_shape((6, 28, 28))
    (6, 14, 14)
    """

    _dims = 2


class AvgPool3d(_AvgPoolNd):
    """3-D average pooling: (N, C, D, H, W) -> (N, C, D_out, H_out, W_out).

    >>> AvgPool3d(2).output_shape((1, 4, 4, 4))
    (1, 2, 2, 2)
    """

    _dims = 3


class _AdaptivePool2d(Module):
    def __init__(self, output_size: int | None | tuple[int | None, int | None]):
        super().__init__()
        size = (output_size, output_size) if not isinstance(output_size, tuple | list) else tuple(output_size)
        if len(size) != 2 or any(s is not None and (not isinstance(s, int) or s < 1) for s in size):
            raise ValueError(
                f"{type(self).__name__}: output_size must be a positive int or a pair of "
                f"positive ints or None. Received: output_size={output_size!r}"
            )
        self.output_size = output_size if isinstance(output_size, int | None) else size

    def _resolved(self, spatial: tuple[int, ...]) -> tuple[int, int]:
        """The output size with ``None`` replaced by the input size."""
        size = (self.output_size,) * 2 if not isinstance(self.output_size, tuple) else self.output_size
        return tuple(n if s is None else s for n, s in zip(spatial, size, strict=True))

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = check_input(type(self).__name__, input_shape, 2)
        return (shape[0], *self._resolved(shape[1:]))

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePool2d):
    """Average pooling to a fixed output size: (N, C, H, W) -> (N, C, *output_size)
    (``None`` keeps that input size). Window i spans [floor(i*H/out), ceil((i+1)*H/out)).

    >>> AdaptiveAvgPool2d((1, None)).output_shape((8, 5, 7))
    (8, 1, 7)
    """

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return F.adaptive_avg_pool2d(input, self._resolved(input.shape[-2:]))


class AdaptiveMaxPool2d(_AdaptivePool2d):
    """Max pooling to a fixed output size; windows as AdaptiveAvgPool2d.

    >>> AdaptiveMaxPool2d(3).output_shape((8, 5, 7))
    (8, 3, 3)
    """

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return F.adaptive_max_pool2d(input, self._resolved(input.shape[-2:]))

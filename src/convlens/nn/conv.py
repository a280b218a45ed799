"""Convolution layers: thin stateful wrappers over ``F.conv1d/2d/3d`` and ``F.conv_transpose1d/2d/3d``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..functional._args import ntuple
from ..tensor import Tensor
from . import init
from ._shapes import Shape, check_input, window_output
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared body of Conv1d/2d/3d; ``_dims`` is the number of spatial axes."""

    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] | str = 0,
        dilation: int | tuple[int, ...] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        name, n = type(self).__name__, self._dims
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must be divisible by groups. Received: groups={groups}"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"{name}: padding_mode must be one of {_PADDING_MODES}. "
                f"Received: padding_mode={padding_mode!r}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", name)
        self.stride = ntuple(stride, n, "stride", name)
        self.dilation = ntuple(dilation, n, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"{name}: padding must be an int, a tuple, 'same' or 'valid'. "
                    f"Received: padding={padding!r}"
                )
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1. Received: stride={stride!r}")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = ntuple(padding, n, "padding", name, minimum=0)
        self.padding_mode = padding_mode
        self.weight = Parameter(
            np.empty((out_channels, in_channels // groups, *self.kernel_size), np.float32)
        )
        self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        op = getattr(F, f"conv{self._dims}d")
        return op(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            padding_mode=self.padding_mode,
        )

    def _explicit_padding(self) -> tuple[int, ...]:
        """Per-axis padding before the input (same = half the dilated kernel span)."""
        if self.padding == "valid":
            return (0,) * self._dims
        if self.padding == "same":
            return tuple(d * (k - 1) // 2 for d, k in zip(self.dilation, self.kernel_size, strict=True))
        return self.padding

    def output_shape(self, input_shape: Shape) -> Shape:
        name = type(self).__name__
        shape = check_input(name, input_shape, self._dims, self.in_channels)
        if self.padding == "same":
            return (self.out_channels, *shape[1:])
        sizes = window_output(
            name, shape, self.kernel_size, self.stride, self._explicit_padding(), self.dilation
        )
        return (self.out_channels, *sizes)

    def extra_repr(self) -> str:
        n = self._dims
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        text += _non_default(
            stride=(self.stride, (1,) * n),
            padding=(self.padding, (0,) * n),
            dilation=(self.dilation, (1,) * n),
            groups=(self.groups, 1),
        )
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


def _non_default(**pairs: tuple[Any, Any]) -> str:
    """``", name=value"`` for each (value, default) pair whose value is not the default."""
    return "".join(f", {key}={value}" for key, (value, default) in pairs.items() if value != default)


class Conv1d(_ConvNd):
    """1-D convolution layer (cross-correlation, as PyTorch): input (N, C_in, L) -> (N, C_out, L_out).

    ``L_out = floor((L + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1``.
    Weight (C_out, C_in/groups, k), bias (C_out,), both ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    ``fan_in = C_in/groups * k`` (PyTorch's default).

    >>> Conv1d(2, 4, 3).output_shape((2, 10))
    (4, 8)
    """

    _dims = 1


class Conv2d(_ConvNd):
    """2-D convolution layer (cross-correlation, as PyTorch): (N, C_in, H, W) -> (N, C_out, H_out, W_out).

    ``H_out = floor((H + 2*padding - dilation*(kernel_size-1) - 1) / stride) + 1`` (same for W);
    ``padding`` may be an int, a pair, ``"valid"`` or ``"same"``; ``padding_mode`` one of
    zeros / reflect / replicate / circular.
    Weight (C_out, C_in/groups, kH, kW), bias (C_out,), both ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    ``fan_in = C_in/groups * kH * kW`` (PyTorch's default).

    >>> Conv2d(1, 6, 5, padding=2)
    Conv2d(1, 6, kernel_size=(5, 5), padding=(2, 2))
    >>> Conv2d(1, 6, 5, padding=2).output_shape((1, 28, 28))
    (6, 28, 28)
    """

    _dims = 2


class Conv3d(_ConvNd):
    """3-D convolution layer: input (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out).

    Sizes, weight layout (C_out, C_in/groups, kD, kH, kW) and initialisation as Conv2d.

    >>> Conv3d(1, 2, 3).output_shape((1, 5, 6, 7))
    (2, 3, 4, 5)
    """

    _dims = 3


class _ConvTransposeNd(Module):
    """Shared body of ConvTranspose1d/2d/3d; ``_dims`` is the number of spatial axes."""

    _dims = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        output_padding: int | tuple[int, ...] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, ...] = 1,
    ):
        super().__init__()
        name, d = type(self).__name__, self._dims
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) "
                f"must be divisible by groups. Received: groups={groups}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, d, "kernel_size", name)
        self.stride = ntuple(stride, d, "stride", name)
        self.padding = ntuple(padding, d, "padding", name, minimum=0)
        self.output_padding = ntuple(output_padding, d, "output_padding", name, minimum=0)
        self.dilation = ntuple(dilation, d, "dilation", name)
        if any(
            op >= max(s, dl)
            for op, s, dl in zip(self.output_padding, self.stride, self.dilation, strict=True)
        ):
            raise ValueError(
                f"{name}: output_padding must be smaller than stride or dilation. "
                f"Received: output_padding={output_padding!r}"
            )
        self.weight = Parameter(
            np.empty((in_channels, out_channels // groups, *self.kernel_size), np.float32)
        )
        self.bias = Parameter(np.empty(out_channels, np.float32)) if bias else None
        _ConvNd.reset_parameters(self)  # type: ignore[arg-type]

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        op = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[self._dims - 1]
        return op(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )

    def output_shape(self, input_shape: Shape) -> Shape:
        name = type(self).__name__
        shape = check_input(name, input_shape, self._dims, self.in_channels)
        sizes = tuple(
            (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            for n, s, p, d, k, op in zip(
                shape[1:],
                self.stride,
                self.padding,
                self.dilation,
                self.kernel_size,
                self.output_padding,
                strict=True,
            )
        )
        if any(n <= 0 for n in sizes):
            raise ValueError(f"{name}: input {shape} gives an empty output {sizes}")
        return (self.out_channels, *sizes)

    def extra_repr(self) -> str:
        ones, zeros = (1,) * self._dims, (0,) * self._dims
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        text += _non_default(
            stride=(self.stride, ones),
            padding=(self.padding, zeros),
            output_padding=(self.output_padding, zeros),
            dilation=(self.dilation, ones),
            groups=(self.groups, 1),
        )
        return text + (", bias=False" if self.bias is None else "")


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution (the gradient of Conv1d with respect to its input).

    (N, C_in, L) -> (N, C_out, L_out) with

    ``L_out = (L - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1``.
    Weight (C_in, C_out/groups, k), bias (C_out,); initialisation as ConvTranspose2d.

    >>> ConvTranspose1d(4, 2, 4, stride=2, padding=1).output_shape((4, 8))
    (2, 16)
    """

    _dims = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution (the gradient of Conv2d with respect to its input).

    ``H_out = (H - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1``.
    Weight (C_in, C_out/groups, kH, kW) (PyTorch's layout), bias (C_out,), both
    ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with PyTorch's ``fan_in = C_out/groups * kH * kW``.

    >>> ConvTranspose2d(4, 2, 3, stride=2).output_shape((4, 5, 5))
    (2, 11, 11)
    """

    _dims = 2


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution: (N, C_in, D, H, W) -> (N, C_out, D_out, H_out, W_out).

    Sizes as ConvTranspose2d on each axis; weight (C_in, C_out/groups, kD, kH, kW).

    >>> ConvTranspose3d(2, 1, 2, stride=2).output_shape((2, 3, 4, 5))
    (1, 6, 8, 10)
    """

    _dims = 3

"""``Linear``, ``Identity`` and ``Flatten``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from ..tensor import Tensor, as_tensor
from . import init
from .module import Module, Parameter, Shape

__all__ = ["Flatten", "Identity", "Linear"]


class Linear(Module):
    """Fully connected layer ``y = x W^T + b`` over the last axis: (*, in_features) -> (*, out_features).

    Weight (out_features, in_features), bias (out_features,), both
    ~ U(-1/sqrt(in_features), 1/sqrt(in_features)) (PyTorch's default).

    >>> Linear(400, 120)
    Linear(in_features=400, out_features=120, bias=True)
    >>> Linear(400, 120).output_shape((400,))
    (120,)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        self.bias = Parameter(np.empty(out_features, np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return F.linear(input, self.weight, self.bias)

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = tuple(input_shape)
        if not shape or shape[-1] != self.in_features:
            hint = " (is a Flatten missing before it?)" if len(shape) > 1 else ""
            raise ValueError(
                f"Linear: expects inputs whose last axis has {self.in_features} features, "
                f"got input of shape {shape}{hint}"
            )
        return (*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        # PyTorch prints all three here; kept for familiarity.
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        )


class Identity(Module):
    """Returns its input unchanged (a placeholder layer)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, input: Any) -> Any:  # noqa: A002
        return input

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)


class Flatten(Module):
    """Flatten axes ``start_dim..end_dim`` into one (batch axis 0 kept by default).

    >>> Flatten().output_shape((16, 5, 5))
    (400,)
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return as_tensor(input).flatten(self.start_dim, self.end_dim)

    def output_shape(self, input_shape: Shape) -> Shape:
        full = (1, *input_shape)  # dims count the batch axis, as in forward
        start, end = (d % len(full) for d in (self.start_dim, self.end_dim))
        if start == 0 or start > end:
            raise ValueError(
                f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do not select "
                f"non-batch axes of an input of shape (N, *{tuple(input_shape)})"
            )
        return (*full[1:start], math.prod(full[start : end + 1]), *full[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

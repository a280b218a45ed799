"""Activation layers: element-wise functions and (log-)softmax."""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor, as_tensor
from .module import Module, Shape

__all__ = ["LogSoftmax", "ReLU", "ScaledTanh", "Sigmoid", "Softmax", "Tanh"]


class _Elementwise(Module):
    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)


class ReLU(_Elementwise):
    """``max(0, x)``. ``inplace`` is accepted for compatibility and ignored (never in place)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return F.relu(input)


class Tanh(_Elementwise):
    """``tanh(x)``."""

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return F.tanh(input)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``."""

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return F.sigmoid(input)


class ScaledTanh(_Elementwise):
    """LeNet-5's squashing function ``A * tanh(S * x)``, A = 1.7159, S = 2/3 (LeCun et al. 1998,
    appendix A: f(1) = 1, f(-1) = -1). Not in PyTorch."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0):
        super().__init__()
        self.amplitude, self.slope = amplitude, slope

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        x = as_tensor(input)
        return (x * self.slope).tanh() * self.amplitude


def _softmax_dim(ndim: int) -> int:
    """PyTorch's legacy choice when ``dim`` is None."""
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(_Elementwise):
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        x = as_tensor(input)
        return F.softmax(x, _softmax_dim(x.ndim) if self.dim is None else self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """``log(softmax(x))`` along ``dim``, computed stably."""

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        x = as_tensor(input)
        return F.log_softmax(x, _softmax_dim(x.ndim) if self.dim is None else self.dim)

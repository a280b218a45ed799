"""convlens: a convolutional neural network framework you can see through."""

from . import functional
from .tensor import Tensor, as_tensor, enable_grad, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = ["Tensor", "as_tensor", "enable_grad", "functional", "is_grad_enabled", "no_grad", "tensor"]

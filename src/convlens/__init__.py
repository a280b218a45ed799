"""convlens: a convolutional neural network framework you can see through.

>>> import convlens as cl
>>> from convlens import nn, optim, functional as F
"""

from . import backend, data, filters, functional, models, nn, optim, signal, train, viz
from .io import load, save
from .nn.init import manual_seed
from .summary import summary
from .tensor import Tensor, as_tensor, enable_grad, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "backend",
    "backend",
    "as_tensor",
    "data",
    "enable_grad",
    "filters",
    "functional",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "models",
    "nn",
    "no_grad",
    "optim",
    "save",
    "signal",
    "summary",
    "tensor",
    "train",
    "viz",
]

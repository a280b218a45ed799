"""convlens: a convolutional neural network framework you can see through.

>>> import convlens as cl
>>> from convlens import nn, optim, functional as F

The reading order of the package, module by module, is in ``docs/READING.md``.
"""

from . import backend, data, filters, functional, images, models, nn, optim, signal, train, viz
from ._version import __version__
from .io import load, save
from .nn.init import manual_seed
from .summary import summary
from .tensor import Tensor, as_tensor, cat, enable_grad, is_grad_enabled, no_grad, tensor

__all__ = [
    "Tensor",
    "__version__",
    "as_tensor",
    "cat",
    "backend",
    "data",
    "enable_grad",
    "filters",
    "functional",
    "images",
    "interop",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "models",
    "nn",
    "no_grad",
    "onnx",
    "optim",
    "save",
    "signal",
    "summary",
    "tensor",
    "train",
    "viz",
]

# The doors to other engines load on first use: ``import convlens`` stays quick for the CLI.
_LAZY = ("interop", "onnx")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'convlens' has no attribute {name!r}")

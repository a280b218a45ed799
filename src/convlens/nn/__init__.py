"""Layers and models with state, as ``torch.nn``.

Every layer is a thin stateful wrapper over its ``convlens.functional`` op, with
PyTorch's constructor arguments, parameter names, shapes, default
initialisation and ``state_dict`` keys. Additions: ``output_shape(input_shape)``
on every layer (shape inference without data), ``get_config()`` and
``from_config`` (architecture as JSON), ``init.manual_seed(seed)``
(also ``convlens.manual_seed``) for reproducible initialisation, and ``fuse(model)``,
which runs Conv2d -> ReLU -> MaxPool2d blocks as one op.

>>> from convlens import nn
>>> nn.init.manual_seed(0)
>>> model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
>>> model.output_shape((1, 28, 28))
(6, 14, 14)
>>> [name for name, _ in model.named_parameters()]
['0.weight', '0.bias']
"""

from . import init
from .activation import LogSoftmax, ReLU, ScaledTanh, Sigmoid, Softmax, Tanh
from .container import Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .dropout import Dropout
from .fuse import fuse, fused_blocks, unfuse
from .init import manual_seed
from .linear import Flatten, Identity, Linear
from .module import Module, Parameter, from_config
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .pool import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)
from .upsample import Upsample

__all__ = [
    "unfuse",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "Dropout",
    "Flatten",
    "Identity",
    "Linear",
    "LogSoftmax",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "Module",
    "Parameter",
    "ReLU",
    "ScaledTanh",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Upsample",
    "from_config",
    "fuse",
    "fused_blocks",
    "init",
    "manual_seed",
]

"""Parameter initialisation, as ``torch.nn.init``, drawing from one seedable generator.

Every layer initialises its parameters from this module's generator, so

>>> from convlens import nn
>>> nn.init.manual_seed(0)
>>> a = nn.Linear(3, 2).weight.data.copy()
>>> nn.init.manual_seed(0)
>>> bool((nn.Linear(3, 2).weight.data == a).all())
True

(``convlens.manual_seed`` is the same function.) The values differ from
PyTorch's for the same seed (different generators); the distributions are the same.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor

__all__ = [
    "calculate_fan_in_and_fan_out",
    "get_generator",
    "kaiming_uniform_",
    "manual_seed",
    "ones_",
    "uniform_",
    "zeros_",
]

_generator: np.random.Generator = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Reseed the generator every layer initialises from (``get_generator()`` returns it)."""
    global _generator
    _generator = np.random.default_rng(seed)


def get_generator() -> np.random.Generator:
    """The generator used for initialisation (and anything else that wants reproducibility)."""
    return _generator


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """PyTorch's rule: fan_in = size(1) * receptive field, fan_out = size(0) * receptive field."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(f"calculate_fan_in_and_fan_out: needs at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """Fill ``tensor`` in place with U(a, b), keeping its dtype."""
    rng = _generator if generator is None else generator
    tensor.data[...] = rng.uniform(a, b, size=tensor.shape)
    return tensor


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, generator: np.random.Generator | None = None) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (leaky ReLU).

    With PyTorch's layer default ``a = sqrt(5)`` the bound is ``1 / sqrt(fan_in)``.
    """
    fan_in, _ = calculate_fan_in_and_fan_out(tensor)
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in else 0.0
    return uniform_(tensor, -bound, bound, generator)


def zeros_(tensor: Tensor) -> Tensor:
    tensor.data[...] = 0
    return tensor


def ones_(tensor: Tensor) -> Tensor:
    tensor.data[...] = 1
    return tensor

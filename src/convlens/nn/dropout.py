"""``Dropout``."""

from __future__ import annotations

from typing import Any

from .. import functional as F
from ..tensor import Tensor
from . import init
from .module import Module, Shape

__all__ = ["Dropout"]


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the rest by 1/(1-p);
    in eval mode, the identity. ``inplace`` is accepted and ignored. Masks are drawn from
    ``nn.init``'s generator (seeded by ``manual_seed``)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be between 0 and 1. Received: p={p}")
        self.p, self.inplace = p, inplace

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        # Masks come from nn.init's generator, so manual_seed makes training reproducible.
        return F.dropout(input, self.p, self.training, generator=init.get_generator())

    def output_shape(self, input_shape: Shape) -> Shape:
        return tuple(input_shape)

    def extra_repr(self) -> str:
        return f"p={self.p}"

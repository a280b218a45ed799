"""``nn.Upsample``: a layer with no weights that resizes its input with ``F.interpolate``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import functional as F
from ..tensor import Tensor
from ._shapes import Shape
from .module import Module

__all__ = ["Upsample"]


class Upsample(Module):
    """Resize the spatial axes by nearest-neighbour or (bi/tri)linear interpolation, as ``torch.nn.Upsample``.

    ``y = F.interpolate(x, size, scale_factor, mode, align_corners)``; see its formula.

    Shape: ``(N, C, *spatial) -> (N, C, *size)`` or ``floor(spatial * scale_factor)``.
    No parameters.

    >>> Upsample(scale_factor=2).output_shape((3, 4, 5))
    (3, 8, 10)
    >>> Upsample(size=(7, 7), mode="bilinear", align_corners=False)
    Upsample(size=(7, 7), mode=bilinear, align_corners=False)
    """

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
    ):
        super().__init__()
        self.size = tuple(size) if isinstance(size, Sequence) else size
        self.scale_factor = tuple(scale_factor) if isinstance(scale_factor, Sequence) else scale_factor
        self.mode, self.align_corners = mode, align_corners

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners)

    def output_shape(self, input_shape: Shape) -> Shape:
        channels, *spatial = (int(n) for n in input_shape)
        if self.size is not None:
            sizes = (self.size,) * len(spatial) if isinstance(self.size, int) else self.size
        else:
            factors = self.scale_factor
            if not isinstance(factors, tuple):
                factors = (factors,) * len(spatial)
            sizes = tuple(math.floor(n * float(f)) for n, f in zip(spatial, factors, strict=True))
        return (channels, *sizes)

    def extra_repr(self) -> str:
        text = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        text += f", mode={self.mode}"
        return text + (f", align_corners={self.align_corners}" if self.align_corners is not None else "")

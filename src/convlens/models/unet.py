"""A U-Net-style encoder-decoder for segmentation: one class score per pixel.

Classification ends with one score vector per image; segmentation needs one per
*pixel*. A fully convolutional network does it (no Linear layer, so any input size
divisible by ``2^depth`` works):

- **down** (encoder): conv 3x3 + BatchNorm + ReLU, twice, then max-pool 2x2, at each
  level; the planes halve in size and double in number;
- **up** (decoder): ``ConvTranspose2d(kernel 2, stride 2)`` doubles the size back (the
  transpose of a stride-2 convolution), then the encoder's planes of the same size are
  joined on (``cl.cat`` along channels: the *skip connection* of Ronneberger et al.,
  2015, which brings back the fine detail that pooling threw away), then two convs;
- **heads**: a 1x1 convolution to ``num_classes`` planes of logits at full size, plus a
  *coarse* 1x1 head on the decoder's planes at 1/4 size (``coarse_level=2``), upsampled
  bilinearly and added: ``logits = head(x_0) + upsample_4(head_2(x_2))``. Which digit a
  pixel belongs to is a question about the whole digit, which the deep, coarse planes
  answer; the full-size planes, only ``width`` of them, then only place the outline.
  Without the coarse head the class must squeeze through those few full-size planes,
  and digits come out speckled with other classes' labels (docs/tasks.md measures both).
- **loss**: the per-pixel cross-entropy ``F.cross_entropy(logits (N, C, H, W), mask (N, H, W))``.

Where it differs from Ronneberger et al.'s U-Net: the 3x3 convolutions are padded, so
the output has the input's size and the skips need no cropping; every convolution is
followed by BatchNorm; and the coarse head is added.

``fit`` and ``evaluate`` count one prediction per target element; a segmentation
batch's target is its masks flattened to (N*H*W,), so ``loss`` and
``predict_classes`` below bring the logits to the same per-pixel rows, and accuracy
means pixel accuracy and the confusion matrix counts pixels.

>>> from convlens import models
>>> model = models.get("unet", num_classes=11, width=8)
>>> model.output_shape((1, 64, 64))
(11, 64, 64)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import Tensor, cat

__all__ = ["UNet", "unet"]


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class UNet(nn.Module):
    """(N, in_channels, H, W) -> (N, num_classes, H, W) logits; H and W divisible by ``2^depth``.

    Planes: ``width * 2^level`` at each level, ``level = 0 .. depth`` (the bottom).
    ``coarse_level``: the decoder level (size ``1 / 2^level``) of the coarse head;
    0 for none; ``None`` picks ``min(2, depth - 1)``.
    """

    def __init__(
        self,
        num_classes: int = 11,
        in_channels: int = 1,
        width: int = 8,
        depth: int = 4,
        size: int = 64,
        coarse_level: int | None = None,
    ):
        super().__init__()
        coarse_level = min(2, depth - 1) if coarse_level is None else int(coarse_level)
        if not 0 <= coarse_level < depth:
            raise ValueError(
                f"UNet: coarse_level must be in [0, depth - 1] (0: no coarse head). "
                f"Received: coarse_level={coarse_level}, depth={depth}"
            )
        self.depth, self.num_classes, self.coarse_level = depth, num_classes, coarse_level
        self.input_shape = (in_channels, size, size)
        widths = [width * 2**level for level in range(depth + 1)]
        self.down = nn.Sequential(
            *(
                _double_conv(c_in, c_out)
                for c_in, c_out in zip([in_channels, *widths], widths[:-1], strict=False)
            )
        )
        self.pool = nn.MaxPool2d(2)
        self.bottom = _double_conv(widths[-2], widths[-1])
        self.up = nn.Sequential(*(nn.ConvTranspose2d(w * 2, w, 2, stride=2) for w in reversed(widths[:-1])))
        self.merge = nn.Sequential(*(_double_conv(w * 2, w) for w in reversed(widths[:-1])))
        self.head = nn.Conv2d(width, num_classes, 1)
        if coarse_level:
            self.coarse_head = nn.Conv2d(widths[coarse_level], num_classes, 1)
            self.coarse_up = nn.Upsample(scale_factor=2**coarse_level, mode="bilinear")

    def forward(self, x: Any) -> Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        coarse = None
        levels = reversed(range(self.depth))
        for level, up, merge, skip in zip(levels, self.up, self.merge, reversed(skips), strict=True):
            x = merge(cat([up(x), skip], dim=1))
            if self.coarse_level and level == self.coarse_level:
                coarse = self.coarse_up(self.coarse_head(x))
        logits = self.head(x)
        return logits if coarse is None else logits + coarse

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, height, width = input_shape
        step = 2**self.depth
        if height % step or width % step:
            raise ValueError(
                f"UNet: height and width must be divisible by {step} (2^depth). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.down[0].output_shape((channels, height, width))
        return (self.num_classes, height, width)

    def start_from_priors(self, masks: np.ndarray) -> None:
        """Set the head's bias to the log class frequencies of ``masks``.

        The network then starts out predicting the class priors: a loss of their entropy
        (about 0.3 on digit scenes, 95% background) instead of ``log 11 = 2.4``. Adam moves
        a bias by about ``lr`` per step, so from a zero bias learning that background
        dominates would take about a thousand steps before the digits are learned at all.
        """
        counts = np.bincount(np.asarray(masks).reshape(-1), minlength=self.num_classes)
        frequencies = np.maximum(counts / max(counts.sum(), 1), 1e-6)
        self.head.bias.data[...] = np.log(frequencies).astype(self.head.bias.data.dtype)
        if self.coarse_level:  # the two heads' biases add up: the priors go in one
            self.coarse_head.bias.data[...] = 0

    def loss(self, output: Tensor, target: Any) -> Tensor:
        """Per-pixel cross-entropy; ``target`` is the masks (N, H, W), or flattened to (N*H*W,)."""
        masks = np.asarray(target.data if isinstance(target, Tensor) else target)
        return F.cross_entropy(output, masks.reshape(output.shape[0], *output.shape[2:]))

    def predict_classes(self, output: Tensor | np.ndarray) -> np.ndarray:
        """The class of every pixel, flattened to (N*H*W,) as the targets ``fit`` receives."""
        data = output.data if isinstance(output, Tensor) else np.asarray(output)
        return data.argmax(axis=1).reshape(-1)


def unet(
    num_classes: int = 11, width: int = 8, depth: int = 4, size: int = 64, coarse_level: int | None = None
) -> UNet:
    """The segmentation U-Net for 1 x size x size scenes (see the module docstring)."""
    model = UNet(num_classes, 1, width, depth, size, coarse_level)
    settings = {"width": width, "depth": depth, "size": size, "coarse_level": model.coarse_level}
    model._factory = ("unet", {"num_classes": num_classes, **settings})
    return model

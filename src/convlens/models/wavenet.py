"""A WaveNet-style classifier of raw waveforms: 1-D convolutions only.

The lecture starts from the 1-D convolution ``y[t] = sum_k w[k] x[t - k]``; WaveNet
(van den Oord et al., 2016) stacks such convolutions with growing *dilation*
``d = 1, 2, 4, ...``: ``y[t] = sum_k w[k] x[t - d*k]``. With kernel 2 each layer doubles
the span of samples an output sees, so ``n`` layers see ``2^n`` steps for ``n``
layers' weights, where undilated ones would see ``n + 1``.

- **Causal**: each dilated convolution is padded on the left only, by ``d*(k-1)``, so
  the output at ``t`` depends on ``x[<= t]`` and keeps the input's length.
- **Gated residual block**: ``z = tanh(W_f * x) . sigmoid(W_g * x)``; a 1x1
  convolution of ``z`` is added to ``x`` (residual) and another one is sent out
  (skip).
- **Head**: the skips are summed, passed through ReLU and a 1x1 convolution, averaged
  over time (global pooling: the digit may sit anywhere in the recording) and
  classified by a linear layer.

A strided convolution in front (kernel 16, stride 4) lets the first layer learn a bank
of filters on the raw samples and shortens the sequence fourfold before the stack.
Its learned filters and their frequency responses are drawn by
``viz.tasks.plot_filters_1d``.

>>> from convlens import models
>>> model = models.get("wavenet", channels=8, skip_channels=8, dilations=(1, 2, 4))
>>> model.output_shape((1, 6144))
(10,)
>>> model.receptive_field()  # 16 + 4 * (1 + 2 + 4)
44
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import functional as F
from .. import nn
from ..tensor import Tensor

__all__ = ["CausalConv1d", "GatedResidualBlock", "WaveNetClassifier", "wavenet"]


class CausalConv1d(nn.Module):
    """A dilated 1-D convolution padded on the left only: ``y[t] = b + sum_j w[j] x[t - d*(k-1-j)]``.

    Shape: ``(N, C_in, L) -> (N, C_out, L)`` (stride 1). Weight (C_out, C_in, k) as Conv1d.
    Unlike PyTorch's Conv1d (symmetric padding), the output never sees the future.

    >>> CausalConv1d(1, 2, 2, dilation=4).output_shape((1, 10))
    (2, 10)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 2, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation)
        self.left = dilation * (kernel_size - 1)

    def forward(self, x: Any) -> Tensor:
        return self.conv(F.pad(x, (self.left, 0)))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, length = input_shape
        return self.conv.output_shape((channels, length + self.left))


class GatedResidualBlock(nn.Module):
    """``z = tanh(f) * sigmoid(g)`` with ``(f, g)`` one causal dilated convolution of ``x``;
    returns ``(x + W_res z, W_skip z)``."""

    def __init__(self, channels: int, skip_channels: int, dilation: int, kernel_size: int = 2):
        super().__init__()
        self.dilation, self.kernel_size = dilation, kernel_size
        self.gate = CausalConv1d(channels, 2 * channels, kernel_size, dilation)
        self.residual = nn.Conv1d(channels, channels, 1)
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def forward(self, x: Any) -> tuple[Tensor, Tensor]:
        both = self.gate(x)
        half = both.shape[1] // 2
        z = both[:, :half].tanh() * both[:, half:].sigmoid()
        return x + self.residual(z), self.skip(z)


class WaveNetClassifier(nn.Module):
    """Strided front convolution, a stack of gated residual blocks with dilations 1, 2, 4, ...,
    summed skips, global average pooling over time and a linear classifier.

    Shape: ``(N, 1, L) -> (N, num_classes)`` logits, for any ``L >= front_kernel``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 32,
        skip_channels: int = 64,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
        front_kernel: int = 16,
        front_stride: int = 4,
        length: int = 6144,
    ):
        super().__init__()
        self.dilations = tuple(int(d) for d in dilations)
        self.front_kernel, self.front_stride = front_kernel, front_stride
        self.input_shape = (1, length)
        self.front = nn.Conv1d(1, channels, front_kernel, stride=front_stride)
        self.blocks = nn.Sequential(*(GatedResidualBlock(channels, skip_channels, d) for d in self.dilations))
        self.post = nn.Conv1d(skip_channels, skip_channels, 1)
        self.classifier = nn.Linear(skip_channels, num_classes)

    def receptive_field(self) -> int:
        """Input samples one output step of the dilated stack sees:
        ``front_kernel + front_stride * sum_d d*(k-1)``."""
        steps = sum(block.dilation * (block.kernel_size - 1) for block in self.blocks)
        return self.front_kernel + self.front_stride * steps

    def features(self, x: Any) -> Tensor:
        """The head's input (N, skip_channels, L'): summed skips after ReLU and the 1x1 conv."""
        h = self.front(x)
        total = None
        for block in self.blocks:
            h, skip = block(h)
            total = skip if total is None else total + skip
        assert total is not None, "WaveNetClassifier needs at least one dilation"
        return self.post(total.relu()).relu()

    def forward(self, x: Any) -> Tensor:
        return self.classifier(self.features(x).mean(2))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self.front.output_shape(tuple(input_shape))
        return (self.classifier.out_features,)


def wavenet(
    num_classes: int = 10,
    channels: int = 32,
    skip_channels: int = 64,
    dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
    length: int = 6144,
) -> WaveNetClassifier:
    """The spoken-digit WaveNet for 8 kHz waveforms of ``length`` samples (see the module docstring)."""
    model = WaveNetClassifier(num_classes, channels, skip_channels, dilations, length=length)
    model._factory = (
        "wavenet",
        {
            "num_classes": num_classes,
            "channels": channels,
            "skip_channels": skip_channels,
            "dilations": list(model.dilations),
            "length": length,
        },
    )
    return model

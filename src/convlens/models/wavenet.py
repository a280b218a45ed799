"""A WaveNet-style classifier of raw waveforms: 1-D convolutions only.

The lecture starts from the 1-D convolution ``y[t] = sum_k w[k] x[t - k]``; WaveNet
(van den Oord et al., 2016) stacks such convolutions with growing *dilation*
``d = 1, 2, 4, ...``: ``y[t] = sum_k w[k] x[t - d*k]``. With kernel 2 each layer doubles
the span of samples an output sees, so ``n`` layers see ``2^n`` steps for ``n``
layers' weights, where undilated ones would see ``n + 1``.

- **Front (a learned filter bank)**: ``h = |BatchNorm(conv(x))|``, a strided convolution
  of the raw samples (64 taps = 8 ms at 8 kHz, stride 16 = 2 ms), its outputs
  standardised per channel and rectified by their magnitude. Each channel learns a band
  of frequencies; ``|.|`` keeps how loud the band is, not its phase (a spectrogram's
  magnitude does the same with fixed Fourier kernels; here the kernels are learned). The
  stack then runs on 16x fewer steps.
- **Causal**: each dilated convolution is padded on the left only, by ``d*(k-1)``, so
  the output at ``t`` depends on ``h[<= t]`` and keeps the input's length.
- **Gated residual block**: ``z = tanh(W_f * h) . sigmoid(W_g * h)``; a 1x1
  convolution of ``z`` is added to ``h`` (residual) and another one is sent out
  (skip). The last block has no residual convolution: nothing reads its output.
- **Head**: the skips are summed, passed through ReLU, a 1x1 convolution, BatchNorm and
  ReLU, pooled over time (the mean by default, or the maximum: the digit may sit anywhere
  in the recording) and classified by a linear layer.

Where we differ from the WaveNet paper: it generates audio sample by sample from a
mu-law input, without a strided front, rectification or BatchNorm. The BatchNorms and
the rectification each made a short training run of the classifier clearly more
accurate; the stride makes each step cheaper (docs/tasks.md has the runs). The default
stack, dilations 1 to 128, sees ``64 + 16 * 255 = 4,144`` samples (0.52 s, about one
spoken digit) per output step.
The learned front filters and their frequency responses are drawn by
``cl.viz.filters_1d(model.front.weight)``.

>>> from convlens import models
>>> model = models.get("wavenet", channels=8, skip_channels=8, dilations=(1, 2, 4))
>>> model.output_shape((1, 6144))
(10,)
>>> model.receptive_field()  # 64 + 16 * (1 + 2 + 4)
176
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
    returns ``(x + W_res z, W_skip z)``.

    ``residual=False`` (the last block of a stack, whose residual output nothing would read)
    has no ``W_res`` and returns ``(x, W_skip z)``: no weights that never get a gradient.
    """

    def __init__(
        self, channels: int, skip_channels: int, dilation: int, kernel_size: int = 2, residual: bool = True
    ):
        super().__init__()
        self.dilation, self.kernel_size = dilation, kernel_size
        self.gate = CausalConv1d(channels, 2 * channels, kernel_size, dilation)
        self.residual = nn.Conv1d(channels, channels, 1) if residual else None
        self.skip = nn.Conv1d(channels, skip_channels, 1)

    def forward(self, x: Any) -> tuple[Tensor, Tensor]:
        both = self.gate(x)
        half = both.shape[1] // 2
        z = both[:, :half].tanh() * both[:, half:].sigmoid()
        out = x if self.residual is None else x + self.residual(z)
        return out, self.skip(z)


class WaveNetClassifier(nn.Module):
    """Front filter bank, a stack of gated residual blocks with dilations 1, 2, 4, ..., summed
    skips, a 1x1 convolution, global pooling over time and a linear classifier.

    ``front``: ``|BatchNorm(conv(x))|``, kernel ``front_kernel``, stride ``front_stride``.
    ``head``: ``ReLU(BatchNorm(W_post ReLU(sum of skips)))``, then the mean (``pool="mean"``)
    or the maximum (``pool="max"``) over time, then ``Linear``.

    Shape: ``(N, 1, L) -> (N, num_classes)`` logits, for any ``L >= front_kernel``; the stack
    runs on ``L' = floor((L - front_kernel) / front_stride) + 1`` steps.
    Weights: the convolutions and the Linear as in PyTorch (Kaiming-uniform, ``a = sqrt(5)``);
    the convolutions followed by a BatchNorm have no bias (the BatchNorm's shift is one).
    """

    def __init__(
        self,
        num_classes: int = 10,
        channels: int = 32,
        skip_channels: int = 64,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
        front_kernel: int = 64,
        front_stride: int = 16,
        length: int = 6144,
        pool: str = "mean",
    ):
        super().__init__()
        if pool not in _POOLS:
            raise ValueError(f"WaveNetClassifier: pool must be 'mean' or 'max'. Received: pool={pool!r}")
        self.dilations = tuple(int(d) for d in dilations)
        if not self.dilations:
            raise ValueError(
                f"WaveNetClassifier: needs at least one dilation. Received: dilations={dilations!r}"
            )
        self.front_kernel, self.front_stride, self.pool = front_kernel, front_stride, pool
        self.input_shape = (1, length)
        self.front = nn.Conv1d(1, channels, front_kernel, stride=front_stride, bias=False)
        self.front_norm = nn.BatchNorm1d(channels)
        last = len(self.dilations) - 1
        self.blocks = nn.Sequential(
            *(
                GatedResidualBlock(channels, skip_channels, d, residual=i < last)
                for i, d in enumerate(self.dilations)
            )
        )
        self.post = nn.Conv1d(skip_channels, skip_channels, 1, bias=False)
        self.post_norm = nn.BatchNorm1d(skip_channels)
        self.classifier = nn.Linear(skip_channels, num_classes)

    def receptive_field(self) -> int:
        """Input samples one output step of the dilated stack sees:
        ``front_kernel + front_stride * sum_d d*(k-1)``."""
        steps = sum(block.dilation * (block.kernel_size - 1) for block in self.blocks)
        return self.front_kernel + self.front_stride * steps

    def filter_bank(self, x: Any) -> Tensor:
        """The front's output (N, channels, L'): the magnitude of each learned band over time."""
        return self.front_norm(self.front(x)).abs()

    def features(self, x: Any) -> Tensor:
        """The head's input (N, skip_channels, L'): summed skips after ReLU, the 1x1 conv,
        BatchNorm and ReLU."""
        h, total = self.filter_bank(x), None
        for block in self.blocks:
            h, skip = block(h)
            total = skip if total is None else total + skip
        return self.post_norm(self.post(total.relu())).relu()

    def forward(self, x: Any) -> Tensor:
        features = self.features(x)
        pooled = features.mean(2) if self.pool == "mean" else features.max(2)
        return self.classifier(pooled)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self.front.output_shape(tuple(input_shape))
        return (self.classifier.out_features,)


_POOLS = ("mean", "max")


def wavenet(
    num_classes: int = 10,
    channels: int = 32,
    skip_channels: int = 64,
    dilations: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128),
    front_kernel: int = 64,
    front_stride: int = 16,
    length: int = 6144,
    pool: str = "mean",
) -> WaveNetClassifier:
    """The spoken-digit WaveNet for 8 kHz waveforms of ``length`` samples (see the module docstring)."""
    model = WaveNetClassifier(
        num_classes, channels, skip_channels, dilations, front_kernel, front_stride, length, pool
    )
    model._factory = (
        "wavenet",
        {
            "num_classes": num_classes,
            "channels": channels,
            "skip_channels": skip_channels,
            "dilations": list(model.dilations),
            "front_kernel": front_kernel,
            "front_stride": front_stride,
            "length": length,
            "pool": pool,
        },
    )
    return model

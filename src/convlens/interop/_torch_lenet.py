"""The classic LeNet-5's own layers as ``torch.nn`` modules (PyTorch has none of them).

Each computes what its convlens namesake computes (``convlens.models.lenet``), with the same
parameter and buffer names, so a ``cl.save`` file loads with ``load_state_dict(strict=True)``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as TF

__all__ = ["EuclideanRBF", "LeNet5Classic", "PartialConv2d", "ScaledTanh", "Subsampling2d"]


class ScaledTanh(torch.nn.Module):
    """``amplitude * tanh(slope * x)``."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0):
        super().__init__()
        self.amplitude, self.slope = amplitude, slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x * self.slope) * self.amplitude


class Subsampling2d(torch.nn.Module):
    """``weight[c] * sum(k x k block) + bias[c]`` per map, stride k."""

    def __init__(self, channels: int, kernel_size: int = 2):
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.weight = torch.nn.Parameter(torch.ones(channels))
        self.bias = torch.nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        sums = TF.avg_pool2d(x, k) * float(k * k)
        return sums * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class PartialConv2d(torch.nn.Module):
    """A convolution where output map o reads only the input maps ``connections[o]``;
    ``weight`` (connections, k, k) holds only the connected kernels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, connections: Sequence):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.connections = tuple(tuple(int(i) for i in row) for row in connections)
        pairs = [(o, i) for o, row in enumerate(self.connections) for i in row]
        # Not persistent: the indices follow from the constructor, the state_dict holds weights only.
        self.register_buffer("out_index", torch.tensor([o for o, _ in pairs]), persistent=False)
        self.register_buffer("in_index", torch.tensor([i for _, i in pairs]), persistent=False)
        self.weight = torch.nn.Parameter(torch.zeros(len(pairs), kernel_size, kernel_size))
        self.bias = torch.nn.Parameter(torch.zeros(out_channels))

    def full_weight(self) -> torch.Tensor:
        k = self.kernel_size
        full = self.weight.new_zeros(self.out_channels, self.in_channels, k, k)
        return full.index_put((self.out_index, self.in_index), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return TF.conv2d(x, self.full_weight(), self.bias)


class EuclideanRBF(torch.nn.Module):
    """``y_i = sum_j (x_j - prototypes_ij)^2`` with fixed prototypes (a buffer)."""

    def __init__(self, prototypes: torch.Tensor):
        super().__init__()
        self.out_features, self.in_features = prototypes.shape
        self.register_buffer("prototypes", prototypes.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        diff = x.reshape(x.shape[0], 1, self.in_features) - self.prototypes
        return (diff * diff).sum(2)


class LeNet5Classic(torch.nn.Sequential):
    """The layers in order; ``forward`` returns the negated RBF penalties (scores), and
    ``loss`` is the paper's MAP criterion, as ``convlens.models.LeNet5Classic``."""

    map_constant = 1.0

    def __init__(self, layers: OrderedDict):
        super().__init__(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -super().forward(x)

    def loss(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``mean(y_target + log(exp(-j) + sum_i exp(-y_i)))`` with ``y = -scores``."""
        y_target = -scores.gather(1, target[:, None])[:, 0]
        j = torch.full((scores.shape[0], 1), -self.map_constant, dtype=scores.dtype, device=scores.device)
        return (y_target + torch.logsumexp(torch.cat([scores, j], 1), 1)).mean()

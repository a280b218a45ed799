"""LeNet-5 as published: LeCun, Bottou, Bengio, Haffner, "Gradient-based learning
applied to document recognition", Proc. IEEE 86(11), 1998, section II.B and appendix A.

Input 1x32x32 (MNIST's 28x28 digits padded by 2 on each side: the data pipeline
does it when ``model.input_shape == (1, 32, 32)``). Every layer is squashed by
``f(a) = 1.7159 tanh(2a/3)``:

======  ===================================================  =======================
layer   what it computes                                     trainable parameters
======  ===================================================  =======================
C1      6 maps, 5x5 convolution                              156
S2      2x2 sum * trainable coefficient + bias, per map      12
C3      16 maps 5x5 over the S2 maps of Table I              1,516
S4      as S2, 16 maps                                       32
C5      120 maps 5x5 (1x1 outputs)                           48,120
F6      84 units, fully connected                            10,164
output  10 Euclidean RBF units, fixed +-1 7x12 prototypes    0
======  ===================================================  =======================

The RBF unit i outputs the penalty ``y_i = sum_j (x_j - w_ij)^2``. So that every
generic tool (accuracy = argmax, cross-entropy, ``predict``) works unchanged,
``forward`` returns the *scores* ``-y`` and ``model.loss(scores, target)`` is the
paper's MAP criterion (equation 9)::

    E = y_target + log(exp(-j) + sum_i exp(-y_i))

A training loop uses ``model.loss`` when the model has one, else ``F.cross_entropy``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .. import functional as F
from .. import nn
from ..nn._shapes import Shape, check_input, window_output
from ..tensor import Tensor, as_tensor

__all__ = [
    "C3_CONNECTIONS",
    "DIGIT_BITMAPS",
    "EuclideanRBF",
    "LeNet5Classic",
    "PartialConv2d",
    "Subsampling2d",
]

# Table I of the paper: which S2 maps (columns 0-5) each C3 map (rows 0-15) reads.
C3_CONNECTIONS: tuple[tuple[int, ...], ...] = (
    *(tuple((i + k) % 6 for k in range(3)) for i in range(6)),  # 0-5: 3 contiguous maps
    *(tuple((i + k) % 6 for k in range(4)) for i in range(6)),  # 6-11: 4 contiguous maps
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),  # 12-14: 4 discontinuous maps
    (0, 1, 2, 3, 4, 5),  # 15: all maps
)

# The RBF prototypes: stylised 7x12 bitmaps of the digits ('#' = +1, '.' = -1), as in
# the paper's figure 3 (drawn here by hand).
_DIGIT_ART = """
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
..###.. ...#... .#####. .#####. ....#.. ####### ..####. ####### .#####. .#####.
.#...#. ..##... #.....# #.....# ...##.. #...... .#..... ......# #.....# #.....#
#.....# .#.#... ......# ......# ..#.#.. #...... #...... .....#. #.....# #.....#
#.....# ...#... .....#. ......# .#..#.. #####.. #...... .....#. #.....# #.....#
#.....# ...#... ....#.. ..####. #...#.. .....#. #.####. ....#.. .#####. #....##
#.....# ...#... ...#... ......# ####### ......# ##....# ....#.. #.....# .####.#
#.....# ...#... ..#.... ......# ....#.. ......# #.....# ...#... #.....# ......#
#.....# ...#... .#..... ......# ....#.. ......# #.....# ...#... #.....# ......#
.#...#. ...#... #...... #.....# ....#.. #....#. #.....# ..#.... #.....# .....#.
..###.. .#####. ####### .#####. ....#.. .####.. .#####. ..#.... .#####. .####..
....... ....... ....... ....... ....... ....... ....... ....... ....... .......
"""


def _parse_digits(art: str) -> np.ndarray:
    rows = [line.split() for line in art.strip().splitlines()]
    bitmaps = np.array([[[c == "#" for c in row[d]] for row in rows] for d in range(10)])
    assert bitmaps.shape == (10, 12, 7), bitmaps.shape
    return np.where(bitmaps, 1.0, -1.0).astype(np.float32)


DIGIT_BITMAPS: np.ndarray = _parse_digits(_DIGIT_ART)  # (10, 12, 7), values +-1


def _paper_uniform(param: Tensor, fan_in: np.ndarray | float) -> None:
    """U(-2.4/F_in, 2.4/F_in) (appendix A); ``fan_in`` broadcasts over the leading axis."""
    rng = nn.init.get_generator()
    bound = 2.4 / np.asarray(fan_in, dtype=np.float64)
    bound = bound.reshape(bound.shape + (1,) * (param.ndim - bound.ndim))
    param.data[...] = rng.uniform(-1.0, 1.0, size=param.shape) * bound


class Subsampling2d(nn.Module):
    """LeNet-5's S layers: each output is the sum of a ``kernel_size`` x ``kernel_size``
    block (stride = kernel_size) times a trainable coefficient, plus a trainable bias,
    one pair per map: ``y[c] = weight[c] * sum(block) + bias[c]`` (2 * channels parameters).
    """

    def __init__(self, channels: int, kernel_size: int = 2):
        super().__init__()
        self.channels, self.kernel_size = channels, kernel_size
        self.weight = nn.Parameter(np.ones(channels, np.float32))
        self.bias = nn.Parameter(np.zeros(channels, np.float32))
        _paper_uniform(self.weight, kernel_size * kernel_size)
        _paper_uniform(self.bias, kernel_size * kernel_size)

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        k = self.kernel_size
        sums = F.avg_pool2d(input, k) * float(k * k)
        shape = (1, self.channels, 1, 1)
        return sums * self.weight.reshape(shape) + self.bias.reshape(shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = check_input("Subsampling2d", input_shape, 2, self.channels)
        k = (self.kernel_size,) * 2
        return (self.channels, *window_output("Subsampling2d", shape, k, k, (0, 0), (1, 1)))

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}"


class PartialConv2d(nn.Module):
    """A convolution where output map o reads only the input maps ``connections[o]``
    (LeNet-5's C3). Only the connected kernels are stored: ``weight`` has shape
    (number of connections, k, k), in the order of ``connections``; the forward
    scatters them into a zero (C_out, C_in, k, k) kernel for ``F.conv2d``, so the
    missing connections stay exactly zero and get no gradient.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, connections: Any = C3_CONNECTIONS
    ):
        super().__init__()
        connections = tuple(tuple(int(i) for i in row) for row in connections)
        if len(connections) != out_channels or any(not 0 <= i < in_channels for r in connections for i in r):
            raise ValueError(
                f"PartialConv2d: connections must list, for each of the {out_channels} output "
                f"maps, input maps in [0, {in_channels}). Received: connections={connections!r}"
            )
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.connections = connections
        self._out_index = np.array([o for o, row in enumerate(connections) for _ in row])
        self._in_index = np.array([i for row in connections for i in row])
        self.weight = nn.Parameter(np.zeros((len(self._in_index), kernel_size, kernel_size), np.float32))
        self.bias = nn.Parameter(np.zeros(out_channels, np.float32))
        fan_in = np.array([len(row) * kernel_size * kernel_size for row in connections], np.float64)
        bounds = 1.0 / np.sqrt(fan_in)
        rng = nn.init.get_generator()
        self.weight.data[...] = rng.uniform(-1, 1, self.weight.shape) * bounds[self._out_index, None, None]
        self.bias.data[...] = rng.uniform(-1, 1, out_channels) * bounds

    @property
    def fan_in(self) -> np.ndarray:
        """Inputs per unit of each output map (for initialisation)."""
        return np.array([len(row) * self.kernel_size**2 for row in self.connections], np.float64)

    def full_weight(self) -> Tensor:
        """The dense (C_out, C_in, k, k) kernel, zero where there is no connection."""
        w = self.weight
        out_index, in_index = self._out_index, self._in_index
        k = self.kernel_size
        full = np.zeros((self.out_channels, self.in_channels, k, k), w.dtype)
        full[out_index, in_index] = w.data  # (out, in) pairs are unique: a plain scatter
        return Tensor._from_op(full, (w,), lambda g: (g[out_index, in_index],))

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return F.conv2d(input, self.full_weight(), self.bias)

    def output_shape(self, input_shape: Shape) -> Shape:
        shape = check_input("PartialConv2d", input_shape, 2, self.in_channels)
        k = (self.kernel_size,) * 2
        return (self.out_channels, *window_output("PartialConv2d", shape, k, (1, 1), (0, 0), (1, 1)))

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={len(self._in_index)}"
        )


class EuclideanRBF(nn.Module):
    """Euclidean radial basis units: ``y_i = sum_j (x_j - w_ij)^2``, with fixed prototypes
    ``w`` (a buffer, not trained). With 84 inputs and at most 10 outputs the prototypes
    are the 7x12 digit bitmaps (``DIGIT_BITMAPS``); otherwise random +-1 vectors.
    """

    def __init__(self, in_features: int = 84, out_features: int = 10):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        if in_features == DIGIT_BITMAPS[0].size and out_features <= len(DIGIT_BITMAPS):
            prototypes = DIGIT_BITMAPS[:out_features].reshape(out_features, in_features)
        else:
            signs = nn.init.get_generator().integers(0, 2, (out_features, in_features))
            prototypes = np.where(signs == 1, 1.0, -1.0)
        self.register_buffer("prototypes", prototypes.astype(np.float32))

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        x = as_tensor(input)
        diff = x.reshape(x.shape[0], 1, self.in_features) - self.prototypes
        return (diff * diff).sum(2)

    def output_shape(self, input_shape: Shape) -> Shape:
        if tuple(input_shape) != (self.in_features,):
            raise ValueError(
                f"EuclideanRBF: input must be of shape ({self.in_features},). "
                f"Received: input_shape={tuple(input_shape)}"
            )
        return (self.out_features,)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class LeNet5Classic(nn.Sequential):
    """LeNet-5 as in the 1998 paper (see the module docstring). Input (N, 1, 32, 32).

    ``forward`` returns ``-y`` (negated RBF penalties: the largest score is the
    nearest prototype), ``loss`` is the MAP criterion, ``predict`` the argmin of ``y``.
    Initialisation: every trainable parameter ~ U(-2.4/F_in, 2.4/F_in), F_in the
    number of inputs of its unit (appendix A).
    """

    input_shape = (1, 32, 32)
    # Section II.B: pixels scaled so the background is -0.1 and the ink 1.175, which
    # makes the input mean roughly 0 and its variance roughly 1.
    input_levels = (-0.1, 1.175)
    map_constant = 1.0  # the paper's j in exp(-j): penalties above it are not pushed further

    def __init__(self, num_classes: int = 10):
        if not 1 <= num_classes <= 10:
            raise ValueError(
                f"lenet5: the classic variant has RBF prototypes for the 10 digits. "
                f"Received: num_classes={num_classes}"
            )
        squash = nn.ScaledTanh
        super().__init__(
            OrderedDict(
                c1=nn.Conv2d(1, 6, 5),
                act1=squash(),
                s2=Subsampling2d(6),
                act2=squash(),
                c3=PartialConv2d(6, 16, 5, C3_CONNECTIONS),
                act3=squash(),
                s4=Subsampling2d(16),
                act4=squash(),
                c5=nn.Conv2d(16, 120, 5),
                act5=squash(),
                flatten=nn.Flatten(),
                f6=nn.Linear(120, 84),
                act6=squash(),
                output=EuclideanRBF(84, num_classes),
            )
        )
        for layer in (self.c1, self.c5, self.f6):
            fan_in, _ = nn.init.calculate_fan_in_and_fan_out(layer.weight)
            _paper_uniform(layer.weight, fan_in)
            _paper_uniform(layer.bias, fan_in)
        _paper_uniform(self.c3.weight, self.c3.fan_in[self.c3._out_index])
        _paper_uniform(self.c3.bias, self.c3.fan_in)

    def forward(self, input: Any) -> Tensor:  # noqa: A002
        return -super().forward(input)

    def loss(self, scores: Any, target: Any) -> Tensor:
        """The MAP criterion averaged over the batch:
        ``E = y_target + log(exp(-j) + sum_i exp(-y_i))`` with ``y = -scores``."""
        s = as_tensor(scores)
        target = np.asarray(target.data if isinstance(target, Tensor) else target)
        one_hot = np.zeros(s.shape, s.dtype)
        one_hot[np.arange(len(target)), target] = 1
        y_target = -(s * one_hot).sum(1)
        j = self.map_constant
        shift = np.maximum(s.data.max(axis=1), -j)  # a constant: keeps exp from overflowing
        total = (s - shift[:, None]).exp().sum(1) + np.exp(-j - shift).astype(s.dtype)
        return (y_target + total.log() + shift.astype(s.dtype)).mean()

    def predict(self, input: Any) -> np.ndarray:  # noqa: A002
        """Class of the nearest prototype for each input (argmin of the RBF penalties)."""
        from ..tensor import no_grad

        with no_grad():
            return self(input).data.argmax(axis=1)

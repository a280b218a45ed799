"""Activations and dropout: elementwise non-linearities, softmax and its logarithm.

Each op is a forward on arrays plus its backward; they accept Tensors or arrays
and compute in the input's dtype.
"""

from __future__ import annotations

import numpy as np

from ..tensor import ArrayLike, Tensor, _normalize_dims, as_tensor

__all__ = [
    "dropout",
    "leaky_relu",
    "log_softmax",
    "relu",
    "scaled_tanh",
    "sigmoid",
    "softmax",
    "tanh",
]


def relu(input: ArrayLike) -> Tensor:  # noqa: A002
    """``max(0, x)``; the gradient at exactly 0 is 0 (PyTorch's choice).

    >>> from convlens import functional as F
    >>> F.relu([-1.0, 0.0, 2.0]).tolist()
    [0.0, 0.0, 2.0]
    """
    return as_tensor(input).relu()


def leaky_relu(input: ArrayLike, negative_slope: float = 0.01) -> Tensor:  # noqa: A002
    """``x`` if ``x > 0`` else ``negative_slope * x`` (the gradient at 0 is ``negative_slope``).

    >>> from convlens import functional as F
    >>> F.leaky_relu([-2.0, 3.0], 0.5).tolist()
    [-1.0, 3.0]
    """
    x = as_tensor(input)
    positive = x.data > 0
    slope = np.where(positive, 1, negative_slope).astype(x.dtype)
    return Tensor._from_op(x.data * slope, (x,), lambda g: (g * slope,))


def tanh(input: ArrayLike) -> Tensor:  # noqa: A002
    """Hyperbolic tangent; derivative ``1 - tanh(x)^2``."""
    return as_tensor(input).tanh()


def sigmoid(input: ArrayLike) -> Tensor:  # noqa: A002
    """Logistic function ``1 / (1 + exp(-x))``, without overflow for large ``|x|``."""
    return as_tensor(input).sigmoid()


def scaled_tanh(input: ArrayLike, amplitude: float = 1.7159, slope: float = 2.0 / 3.0) -> Tensor:  # noqa: A002
    """LeNet-5's squashing function ``A * tanh(S * a)`` with ``A = 1.7159``, ``S = 2/3``.

    LeCun et al. 1998 (appendix A) chose these so that ``f(1) = 1`` and
    ``f(-1) = -1``, with the largest curvature at ``+-1``. PyTorch has no such op.

    >>> from convlens import functional as F
    >>> round(F.scaled_tanh([1.0]).item(), 4)
    1.0
    """
    x = as_tensor(input)
    t = np.tanh(x.data * x.dtype.type(slope))
    scale = x.dtype.type(amplitude * slope)
    return Tensor._from_op(t * x.dtype.type(amplitude), (x,), lambda g: (g * scale * (1 - t * t),))


def softmax(input: ArrayLike, dim: int) -> Tensor:  # noqa: A002
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim``.

    ``dim`` is required (PyTorch's implicit choice of dimension is deprecated
    there, and silently picking one hides bugs). Shifted by the maximum, so
    logits of +-1000 do not overflow. An empty input (an empty batch, or a
    zero-size ``dim``) gives an empty output, as in PyTorch.

    >>> from convlens import functional as F
    >>> F.softmax([[0.0, 0.0]], dim=1).tolist()
    [[0.5, 0.5]]
    """
    x = as_tensor(input)
    axis = _axis(dim, x, "softmax")
    if x.data.size == 0:
        return _empty_result(x)
    e = np.exp(x.data - np.max(x.data, axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (out * (g - np.sum(g * out, axis=axis, keepdims=True)),)

    return Tensor._from_op(out, (x,), backward)


def log_softmax(input: ArrayLike, dim: int) -> Tensor:  # noqa: A002
    """``x_i - log sum_j exp(x_j)`` along ``dim`` (``dim`` required, as in ``softmax``).

    Computed as ``(x - max) - log(sum(exp(x - max)))``: finite for logits of +-1000,
    where ``log(softmax(x))`` would give ``-inf``.

    >>> from convlens import functional as F
    >>> F.log_softmax([[1000.0, 0.0]], dim=1).tolist()
    [[0.0, -1000.0]]
    """
    x = as_tensor(input)
    axis = _axis(dim, x, "log_softmax")
    if x.data.size == 0:
        return _empty_result(x)
    shifted = x.data - np.max(x.data, axis=axis, keepdims=True)
    out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))

    def backward(g: np.ndarray) -> tuple[np.ndarray]:
        return (g - np.exp(out) * np.sum(g, axis=axis, keepdims=True),)

    return Tensor._from_op(out, (x,), backward)


def dropout(
    input: ArrayLike,  # noqa: A002
    p: float = 0.5,
    training: bool = True,
    generator: np.random.Generator | int | None = None,
) -> Tensor:
    """Inverted dropout: zero each element with probability ``p``, scale the rest by ``1/(1-p)``.

    The expected value is unchanged, so nothing needs rescaling at evaluation
    time, where (``training=False``) the input is returned unchanged, as in PyTorch.
    ``p = 1`` gives zeros. ``generator`` (a ``numpy.random.Generator`` or an int seed)
    makes the mask reproducible; by default a fresh generator is used. The mask
    cannot match PyTorch's random stream, only its distribution.

    >>> from convlens import functional as F
    >>> F.dropout([1.0, 1.0, 1.0], p=0.0).tolist()
    [1.0, 1.0, 1.0]
    """
    if isinstance(p, bool) or not isinstance(p, int | float | np.floating | np.integer) or not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability in [0, 1]. Received: p={p!r}")
    x = as_tensor(input)
    if not training or p == 0:
        return x
    if p == 1:
        return x * x.dtype.type(0)
    rng = generator if isinstance(generator, np.random.Generator) else np.random.default_rng(generator)
    scale = (rng.random(x.shape) >= p).astype(x.dtype) * x.dtype.type(1.0 / (1.0 - p))
    return Tensor._from_op(x.data * scale, (x,), lambda g: (g * scale,))


def _empty_result(x: Tensor) -> Tensor:
    """An empty input normalises to an empty output (PyTorch's answer, for an empty batch or
    a zero-size ``dim`` alike); the maximum that shifts the logits has no value there."""
    return Tensor._from_op(x.data.copy(), (x,), lambda g: (g,))


def _axis(dim: int, x: Tensor, op: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise TypeError(f"{op}: dim must be an int. Received: dim={dim!r}")
    try:
        return _normalize_dims(dim, x.ndim)[0]
    except IndexError:
        raise ValueError(f"{op}: dim={dim} is out of range for a tensor of shape {x.shape}") from None

"""Batch normalisation, forward and backward side by side."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor, as_tensor

__all__ = ["batch_norm"]


def _array(x: Any) -> np.ndarray | None:
    return x.data if isinstance(x, Tensor) else x


def batch_norm(
    input: Any,  # noqa: A002 - PyTorch's name
    running_mean: Any,
    running_var: Any,
    weight: Any = None,  # noqa: A002
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1): ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    In training, mean and (biased) variance are those of the batch, over every axis
    but 1, and the running statistics (if given) are updated in place, PyTorch's rule:
    ``running = (1 - momentum) * running + momentum * batch_stat``, where the variance
    fed to the running average is the unbiased one (divided by M - 1, M the number of
    values per channel). Otherwise ``running_mean`` / ``running_var`` are used.

    Shape: input (N, C) or (N, C, *); running stats, weight, bias (C,).

    >>> import numpy as np
    >>> x = np.array([[1.0], [3.0]])
    >>> rm, rv = np.zeros(1), np.ones(1)
    >>> batch_norm(x, rm, rv, training=True, eps=0.0).data.ravel().tolist()
    [-1.0, 1.0]
    >>> rm.tolist(), rv.tolist()
    ([0.2], [1.1])
    """
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input needs shape (N, C, ...), got {x.shape}")
    channels = x.shape[1]
    axes = (0, *range(2, x.ndim))
    stat_shape = (1, channels) + (1,) * (x.ndim - 2)
    count = x.data.size // max(channels, 1)
    for name, value in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if value is not None and np.shape(_array(value)) != (channels,):
            raise ValueError(
                f"batch_norm: {name} must have shape ({channels},) for an input with "
                f"{channels} channels, got {np.shape(_array(value))}"
            )
    batch_statistics = training and count > 0  # PyTorch: an empty batch leaves the running statistics
    if training and not batch_statistics:
        mean, var = np.zeros(channels, x.dtype), np.ones(channels, x.dtype)
        centred = x.data
    elif training:
        if count == 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, "
                f"got input of shape {x.shape}"
            )
        mean = x.data.mean(axis=axes)
        centred = x.data - mean.reshape(stat_shape)
        var = np.mean(centred * centred, axis=axes)
        _update_running(running_mean, running_var, mean, var, count, momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
        mean = _array(running_mean).astype(x.dtype)
        centred = x.data - mean.reshape(stat_shape)
        var = _array(running_var).astype(x.dtype)
    invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype).reshape(stat_shape)
    xhat = centred * invstd
    w = None if weight is None else as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    out = xhat * w.data.reshape(stat_shape) if w is not None else xhat
    if b is not None:
        out = out + b.data.reshape(stat_shape)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        gxhat = g * w.data.reshape(stat_shape) if w is not None else g
        if batch_statistics:
            # d/dx of (x - mean) * invstd with batch statistics: remove the gradient's
            # mean and its component along xhat.
            mean_g = gxhat.mean(axis=axes, keepdims=True)
            mean_gx = (gxhat * xhat).mean(axis=axes, keepdims=True)
            grad_x = (gxhat - mean_g - xhat * mean_gx) * invstd
        else:
            grad_x = gxhat * invstd
        grad_w = (g * xhat).sum(axis=axes) if w is not None and w.requires_grad else None
        grad_b = g.sum(axis=axes) if b is not None and b.requires_grad else None
        return grad_x, grad_w, grad_b

    parents = (x, w if w is not None else Tensor(np.zeros(0)), b if b is not None else Tensor(np.zeros(0)))
    return Tensor._from_op(out.astype(x.dtype, copy=False), parents, backward)


def _update_running(
    running_mean: Any, running_var: Any, mean: np.ndarray, var: np.ndarray, count: int, momentum: float
) -> None:
    """Exponential moving averages, in place, with the unbiased batch variance."""
    if running_mean is not None:
        rm = _array(running_mean)
        rm[...] = (1 - momentum) * rm + momentum * mean
    if running_var is not None:
        rv = _array(running_var)
        rv[...] = (1 - momentum) * rv + momentum * var * (count / (count - 1))

"""Fully connected layers: ``linear`` and ``flatten`` (the MLP at the end of a CNN)."""

from __future__ import annotations

import numpy as np

from ..tensor import ArrayLike, Tensor, _normalize_dims, as_tensor

__all__ = ["flatten", "linear"]


def linear(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> Tensor:  # noqa: A002
    """Affine map ``y = x W^T + b`` over the last dimension of ``x``.

    Shape:
        - input: ``(*, in_features)``, any number of leading dimensions (or none);
        - weight: ``(out_features, in_features)`` (PyTorch's layout);
        - bias: ``(out_features,)`` or ``None``;
        - output: ``(*, out_features)``.

    All operands must share one floating dtype (no silent upcasting), as in PyTorch.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.linear(np.ones((2, 3)), np.ones((4, 3)), np.zeros(4)).shape
    (2, 4)
    """
    x, w = as_tensor(input), as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    _check_linear(x, w, b)
    xd = x.data
    x2 = xd if xd.ndim == 2 else xd.reshape(-1, xd.shape[-1])
    out = x2 @ w.data.T
    if b is not None:
        out += b.data
    out_shape = xd.shape[:-1] + (w.data.shape[0],)

    def backward(g: np.ndarray) -> tuple[np.ndarray | None, ...]:
        g2 = g.reshape(-1, w.shape[0])
        grad_x = (g2 @ w.data).reshape(x.shape) if x.requires_grad else None
        grad_w = g2.T @ x2 if w.requires_grad else None
        grad_b = g2.sum(axis=0) if b is not None and b.requires_grad else None
        return (grad_x, grad_w) if b is None else (grad_x, grad_w, grad_b)

    parents = (x, w) if b is None else (x, w, b)
    return Tensor._from_op(out if xd.ndim == 2 else out.reshape(out_shape), parents, backward)


def flatten(input: ArrayLike, start_dim: int = 1, end_dim: int = -1) -> Tensor:  # noqa: A002
    """Merge dimensions ``start_dim..end_dim`` (inclusive) into one, as ``torch.flatten``.

    The default ``start_dim=1`` keeps the batch dimension (``nn.Flatten``'s default),
    so ``(N, C, H, W)`` becomes ``(N, C*H*W)``.

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> F.flatten(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    """
    x = as_tensor(input)
    if x.ndim == 0:
        return x.reshape(1)
    try:
        start, end = _normalize_dims((start_dim, end_dim), x.ndim)
    except IndexError:
        raise ValueError(
            f"flatten: start_dim={start_dim}, end_dim={end_dim} out of range for a tensor of shape {x.shape}"
        ) from None
    if start > end:
        raise ValueError(
            f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim}) "
            f"for a tensor of shape {x.shape}"
        )
    merged = int(np.prod(x.shape[start : end + 1]))
    return x.reshape(x.shape[:start] + (merged,) + x.shape[end + 1 :])


def _check_linear(x: Tensor, w: Tensor, b: Tensor | None) -> None:
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim == 0:
        raise ValueError("linear: input must have at least one dimension (in_features), got a scalar")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but weight "
            f"expects {w.shape[1]} (weight shape {w.shape})"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {b.shape}")
    dtype = x.dtype
    if dtype.kind == "f" and w.dtype == dtype and (b is None or b.dtype == dtype):
        return  # the usual case, checked without building the messages below
    operands = [("input", x), ("weight", w)] + ([("bias", b)] if b is not None else [])
    for name, t in operands:
        if t.dtype.kind != "f":
            raise TypeError(f"linear: {name} must be floating point, got dtype {t.dtype}")
    dtypes = {str(t.dtype) for _, t in operands}
    if len(dtypes) > 1:
        listed = ", ".join(f"{name}={t.dtype}" for name, t in operands)
        raise TypeError(f"linear: all operands must have the same dtype, got {listed}")

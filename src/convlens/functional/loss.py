"""Loss functions: cross-entropy, negative log-likelihood, mean squared error.

``cross_entropy`` is ``nll_loss(log_softmax(input, 1))``. Both class losses are
*linear* in the log-probabilities, so one helper serves them:
``loss[n, d...] = -sum_c M[n, c, d...] * logp[n, c, d...]`` where the
coefficients ``M`` hold the target one-hot (times the class weight), the label
smoothing and the ignored positions, and the gradient is simply ``-M`` (scaled
by the reduction).
"""

from __future__ import annotations

import numpy as np

from ..tensor import ArrayLike, Tensor, as_tensor
from .activation import log_softmax

__all__ = ["cross_entropy", "mse_loss", "nll_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(
    input: ArrayLike,  # noqa: A002
    target: ArrayLike,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy between logits and class targets, as ``torch.nn.functional.cross_entropy``.

    ``loss_n = -w[y_n] * log_softmax(x_n)[y_n]``. With ``label_smoothing = e`` the target
    becomes ``(1 - e) * one_hot(y) + e / C``. ``"mean"`` divides by the total weight of
    the non-ignored targets (``sum_n w[y_n]``), not by their count, as PyTorch does.

    Shape:
        - input: ``(N, C)``, ``(N, C, d1, ..., dK)`` or ``(C,)`` (logits, not probabilities);
        - target: class indices ``(N,)`` / ``(N, d1, ..., dK)`` / ``()`` of an integer dtype,
          each in ``[0, C)`` or equal to ``ignore_index``; or class probabilities of the
          same shape as ``input`` (float; then ``ignore_index`` does not apply,
          ``"mean"`` divides by ``N * d1 * ... * dK``, and a target that requires grad
          gets ``d loss / d target = -(1 - e) * w * log_softmax(input)``, scaled by the
          reduction, as in PyTorch);
        - weight: ``(C,)`` per-class rescaling, or ``None``;
        - output: a scalar, or the target's shape with ``reduction="none"``.

    >>> from convlens import functional as F
    >>> round(F.cross_entropy([[0.0, 0.0]], [1]).item(), 4)  # log 2
    0.6931
    """
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must be in [0, 1]. Received: label_smoothing={label_smoothing!r}"
        )
    x = _class_input(input, "cross_entropy")
    return _class_loss(
        log_softmax(x, 1 if x.ndim > 1 else 0),
        target,
        weight,
        ignore_index,
        reduction,
        label_smoothing,
        "cross_entropy",
    )


def nll_loss(
    input: ArrayLike,  # noqa: A002
    target: ArrayLike,
    weight: ArrayLike | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood ``loss_n = -w[y_n] * input[n, y_n]`` of log-probabilities.

    Shapes and the weighted ``"mean"`` as in ``cross_entropy`` (class-index targets only).

    >>> import numpy as np
    >>> from convlens import functional as F
    >>> round(F.nll_loss(np.log([[0.25, 0.75]]), [1]).item(), 4)  # -log 0.75
    0.2877
    """
    _check_reduction(reduction, "nll_loss")
    x = _class_input(input, "nll_loss")
    return _class_loss(x, target, weight, ignore_index, reduction, 0.0, "nll_loss", probabilities=False)


def mse_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error ``(x - y)^2``, reduced by ``"mean"``, ``"sum"`` or ``"none"``.

    Unlike PyTorch (which warns and broadcasts), different shapes are an error:
    a ``(N,)`` target against a ``(N, 1)`` prediction is nearly always a bug.
    Gradients flow to both ``input`` and ``target``.

    >>> from convlens import functional as F
    >>> F.mse_loss([1.0, 2.0], [1.0, 4.0]).item()
    2.0
    """
    _check_reduction(reduction, "mse_loss")
    x, y = as_tensor(input), as_tensor(target)
    if x.shape != y.shape:
        raise ValueError(f"mse_loss: input shape {x.shape} and target shape {y.shape} differ")
    if x.dtype.kind != "f" or y.dtype != x.dtype:
        raise TypeError(
            f"mse_loss: input and target must share one floating dtype, got {x.dtype} and {y.dtype}"
        )
    diff = x.data - y.data
    squared = diff * diff
    scale = x.dtype.type(2.0 / max(diff.size, 1) if reduction == "mean" else 2.0)
    out = squared if reduction == "none" else (squared.sum() if reduction == "sum" else squared.mean())

    def backward(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grad = g * diff * scale
        return grad, -grad

    return Tensor._from_op(np.asarray(out, dtype=x.dtype), (x, y), backward)


# -- helpers ------------------------------------------------------------------------


def _class_input(input: ArrayLike, op: str) -> Tensor:  # noqa: A002
    """``input`` as a Tensor, checked to have a class dimension (1, or 0 if unbatched) of size >= 1."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a scalar. Received: input.shape=()")
    if x.shape[1 if x.ndim > 1 else 0] == 0:
        raise ValueError(
            f"{op}: input must have at least one class (its class dimension is empty). "
            f"Received: input.shape={x.shape}"
        )
    return x


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}. Received: reduction={reduction!r}")


def _class_loss(
    logp: Tensor,
    target: ArrayLike,
    weight: ArrayLike | None,
    ignore_index: int,
    reduction: str,
    smoothing: float,
    op: str,
    probabilities: bool = True,
) -> Tensor:
    """``-sum_c M * logp`` per position, reduced; see the module docstring."""
    unbatched = logp.ndim == 1
    lp = logp.data[None] if unbatched else logp.data
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if unbatched:
        t = t[None]
    w = _class_weight(weight, lp, op)
    soft = probabilities and t.dtype.kind == "f" and t.shape == lp.shape
    if soft:
        coeff, denom = _probability_coefficients(t, w, smoothing, lp)
    else:
        coeff, denom = _index_coefficients(t, w, ignore_index, smoothing, lp, op)
    # soft targets that require grad get one, as in PyTorch: the loss is linear in them
    learnable = soft and isinstance(target, Tensor) and target.requires_grad
    per_position = -np.sum(coeff * lp, axis=1)
    if reduction == "none":
        out = per_position[0] if unbatched else per_position
    else:
        total = per_position.sum()
        if reduction == "mean":
            with np.errstate(divide="ignore", invalid="ignore"):  # all ignored: NaN, as PyTorch
                total = total / denom
        out = np.asarray(total, dtype=lp.dtype)

    def backward(g: np.ndarray) -> tuple[np.ndarray, ...]:
        if reduction == "none":
            scale = np.expand_dims(g[None] if unbatched else g, 1)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):  # an empty batch: 0 / 0
                scale = g / denom if reduction == "mean" else g
        grad = (-coeff * scale).astype(lp.dtype, copy=False)
        grads = (grad[0] if unbatched else grad,)
        if learnable:
            # d coeff / d target = (1 - smoothing) * weight
            slope = lp * lp.dtype.type(1.0 - smoothing)
            if w is not None:
                slope = slope * w.reshape((1, -1) + (1,) * (lp.ndim - 2))
            grad_target = (-slope * scale).astype(t.dtype, copy=False)
            grads += (grad_target[0] if unbatched else grad_target,)
        return grads

    return Tensor._from_op(out, (logp, target) if learnable else (logp,), backward)


def _class_weight(weight: ArrayLike | None, lp: np.ndarray, op: str) -> np.ndarray | None:
    if weight is None:
        return None
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    if w.shape != (lp.shape[1],):
        raise ValueError(f"{op}: weight must have shape ({lp.shape[1]},) (one per class), got {w.shape}")
    return w.astype(lp.dtype, copy=False)


def _index_coefficients(
    t: np.ndarray, w: np.ndarray | None, ignore_index: int, smoothing: float, lp: np.ndarray, op: str
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients for class-index targets, and the ``"mean"`` denominator."""
    classes = lp.shape[1]
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: target must hold class indices of an integer dtype (int64), "
            f"got dtype {t.dtype}"
            + (
                " with the shape of the input; class probabilities are accepted by cross_entropy only"
                if t.shape == lp.shape
                else ""
            )
        )
    expected = lp.shape[:1] + lp.shape[2:]
    if t.shape != expected:
        raise ValueError(
            f"{op}: target shape {t.shape} does not match input shape {lp.shape}; "
            f"expected {expected} (N, d1, ...)"
        )
    ignored = t == ignore_index
    bad = ~ignored & ((t < 0) | (t >= classes))
    if bad.any():
        raise ValueError(
            f"{op}: target values must be in [0, {classes}) or ignore_index={ignore_index}. "
            f"Received: {t[bad].flat[0]}"
        )
    safe = np.where(ignored, 0, t)
    one_hot = np.expand_dims(safe, 1) == np.arange(classes).reshape((1, classes) + (1,) * (t.ndim - 1))
    coeff = one_hot.astype(lp.dtype) * lp.dtype.type(1.0 - smoothing)
    if smoothing:
        coeff += lp.dtype.type(smoothing / classes)
    keep = np.expand_dims(~ignored, 1)
    if w is not None:
        coeff *= w.reshape((1, classes) + (1,) * (t.ndim - 1))
        denom = np.sum(np.where(ignored, 0, w[safe]), dtype=lp.dtype)
    else:
        denom = np.asarray(np.count_nonzero(~ignored), dtype=lp.dtype)
    return coeff * keep, denom


def _probability_coefficients(
    t: np.ndarray, w: np.ndarray | None, smoothing: float, lp: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    classes = lp.shape[1]
    coeff = t.astype(lp.dtype) * lp.dtype.type(1.0 - smoothing) + lp.dtype.type(smoothing / classes)
    if w is not None:
        coeff = coeff * w.reshape((1, classes) + (1,) * (t.ndim - 2))
    return coeff, np.asarray(lp.size // classes, dtype=lp.dtype)

"""Shared test helpers: random data, the PyTorch oracle, numerical gradients."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

import convlens as cl

torch = pytest.importorskip("torch")
torch.set_num_threads(1)


def to_torch(array: np.ndarray, requires_grad: bool = False):
    return torch.tensor(np.asarray(array), requires_grad=requires_grad)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - e| / max(1, max |e|): a scale-aware error for comparing arrays."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    if actual.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)) / max(1.0, float(np.max(np.abs(expected)))))


def numerical_gradients(
    f: Callable[..., cl.Tensor], inputs: Sequence[np.ndarray], eps: float = 1e-6
) -> list[np.ndarray]:
    """Central differences of sum(f(*inputs) * probe) for each float64 input."""
    inputs = [np.array(x, dtype=np.float64) for x in inputs]
    with cl.no_grad():
        probe = np.random.default_rng(0).standard_normal(f(*[cl.tensor(x) for x in inputs]).shape)
    grads = []
    for x in inputs:
        grad = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + eps
            plus = float(np.sum(f(*[cl.tensor(v) for v in inputs]).data * probe))
            x[i] = old - eps
            minus = float(np.sum(f(*[cl.tensor(v) for v in inputs]).data * probe))
            x[i] = old
            grad[i] = (plus - minus) / (2 * eps)
        grads.append(grad)
    return grads


def gradcheck(f: Callable[..., cl.Tensor], *inputs: np.ndarray, tol: float = 1e-6) -> float:
    """Compare autograd with central differences in float64; return the largest relative error."""
    tensors = [cl.tensor(np.array(x, dtype=np.float64), requires_grad=True) for x in inputs]
    out = f(*tensors)
    probe = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(probe)
    expected = numerical_gradients(f, inputs)
    worst = 0.0
    for t, e in zip(tensors, expected, strict=True):
        assert t.grad is not None, "autograd produced no gradient for an input"
        error = relative_error(t.grad, e)
        assert np.isfinite(error), f"gradient is not finite: relative error {error}"
        worst = max(worst, error)
    assert worst < tol, f"autograd and central differences differ: relative error {worst:.3g}"
    return worst


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)

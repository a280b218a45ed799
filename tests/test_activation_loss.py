"""Activations, linear/flatten, dropout and losses against PyTorch and central differences."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from conftest import gradcheck, relative_error, to_torch, torch

import convlens as cl
from convlens import functional as F

TF = torch.nn.functional
CASES = 30  # random shapes per op and dtype
TOL = {np.float64: 1e-12, np.float32: 2e-6}


def random_shape(rng, min_ndim=0, max_ndim=4, max_size=5):
    return tuple(int(n) for n in rng.integers(1, max_size + 1, rng.integers(min_ndim, max_ndim + 1)))


def compare(ours, theirs, arrays, rng, dtype=np.float64, grad=True, extra=()):
    """``ours(*tensors, *extra)`` against ``theirs(*torch_tensors, *extra)``: values and input gradients."""
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    mine = [cl.tensor(a, requires_grad=grad) for a in arrays]
    ref = [to_torch(a, requires_grad=grad) for a in arrays]
    out, expected = ours(*mine, *extra), theirs(*ref, *extra)
    assert isinstance(out, cl.Tensor)
    assert out.shape == tuple(expected.shape)
    assert out.dtype == dtype
    err = relative_error(out.data, expected.detach().numpy())
    if grad:
        probe = rng.standard_normal(out.shape).astype(dtype)
        out.backward(probe)
        expected.backward(torch.tensor(probe))
        for m, r in zip(mine, ref, strict=True):
            assert m.grad.dtype == dtype
            err = max(err, relative_error(m.grad, r.grad.numpy()))
    assert err < TOL[dtype], err
    return err


ELEMENTWISE = {
    "relu": (F.relu, TF.relu),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "leaky_relu_default": (F.leaky_relu, TF.leaky_relu),
    "tanh": (F.tanh, torch.tanh),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "scaled_tanh": (F.scaled_tanh, lambda x: 1.7159 * torch.tanh(x * (2.0 / 3.0))),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_activations_match_torch(name, dtype):
    ours, theirs = ELEMENTWISE[name]
    rng = np.random.default_rng(len(name))
    for _ in range(CASES):
        x = np.asarray(rng.standard_normal(random_shape(rng)) * 4)
        x[np.abs(x) < 1e-3] = 0.5  # away from the kink: the derivative there is a convention
        compare(ours, theirs, [x], rng, dtype)


def test_relu_and_leaky_relu_gradient_at_zero_follow_torch():
    rng = np.random.default_rng(0)
    x = np.array([-1.0, 0.0, 0.0, 2.0])
    compare(F.relu, TF.relu, [x], rng)
    compare(lambda t: F.leaky_relu(t, 0.1), lambda t: TF.leaky_relu(t, 0.1), [x], rng)


def test_scaled_tanh_is_lecun_1998():
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(F.scaled_tanh(x).data, 1.7159 * np.tanh(2 * x / 3), rtol=1e-15)
    assert abs(F.scaled_tanh(np.array([1.0])).item() - 1.0) < 2e-4


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_and_log_softmax_match_torch(name, dtype):
    rng = np.random.default_rng(1 if name == "softmax" else 2)
    for _ in range(CASES):
        shape = random_shape(rng, min_ndim=1)
        dim = int(rng.integers(-len(shape), len(shape)))
        x = rng.standard_normal(shape) * 5
        compare(getattr(F, name), getattr(TF, name), [x], rng, dtype, extra=(dim,))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_family_is_stable_at_plus_minus_1000(dtype):
    rng = np.random.default_rng(3)
    x = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -999.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for name in ("softmax", "log_softmax"):
            out = getattr(F, name)(x.astype(dtype), 1)
            assert np.isfinite(out.data).all()
            compare(getattr(F, name), getattr(TF, name), [x], rng, dtype, extra=(1,))
        target = np.array([1, 2, 0])
        compare(
            lambda t: F.cross_entropy(t, target),
            lambda t: TF.cross_entropy(t, torch.tensor(target)),
            [x],
            rng,
            dtype,
        )
        loss = F.cross_entropy(x.astype(dtype), target)
        assert np.isfinite(loss.item())
        assert np.isfinite(F.sigmoid(x.astype(dtype)).data).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_matches_torch(dtype):
    rng = np.random.default_rng(4)
    for i in range(CASES):
        lead = random_shape(rng, max_ndim=3)
        n_in, n_out = (int(v) for v in rng.integers(1, 6, 2))
        x, w, b = (
            rng.standard_normal(lead + (n_in,)),
            rng.standard_normal((n_out, n_in)),
            rng.standard_normal(n_out),
        )
        if i % 2:
            compare(F.linear, TF.linear, [x, w, b], rng, dtype)
        else:
            compare(F.linear, TF.linear, [x, w], rng, dtype)


def test_flatten_matches_torch():
    rng = np.random.default_rng(5)
    for _ in range(CASES):
        shape = random_shape(rng, min_ndim=2, max_ndim=5)
        start = int(rng.integers(0, len(shape)))
        end = int(rng.integers(start, len(shape))) - len(shape) * int(rng.random() < 0.5)
        compare(F.flatten, torch.flatten, [rng.standard_normal(shape)], rng, extra=(start, end))
    assert F.flatten(np.zeros((2, 3, 4, 5))).shape == (2, 60)


def random_class_problem(rng, with_ignore=False):
    n, c = (int(v) for v in rng.integers(1, 6, 2))
    extra = random_shape(rng, max_ndim=2, max_size=3)
    logits = rng.standard_normal((n, c) + extra) * 3
    target = rng.integers(0, c, (n,) + extra)
    if with_ignore:
        target[rng.random(target.shape) < 0.3] = -100
    return logits, target, c


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_nll_match_torch(reduction, dtype):
    rng = np.random.default_rng({"mean": 6, "sum": 7, "none": 8}[reduction])
    for i in range(CASES):
        logits, target, c = random_class_problem(rng, with_ignore=i % 2 == 1)
        if (target == -100).all():
            target.flat[0] = 0
        weight = rng.uniform(0.1, 2.0, c).astype(dtype) if i % 3 else None
        smoothing = (0.0, 0.1, 0.4)[i % 3]
        kwargs = {"weight": weight, "reduction": reduction}
        torch_kwargs = dict(kwargs, weight=None if weight is None else torch.tensor(weight))
        tt = torch.tensor(target)
        ours = {"label_smoothing": smoothing, **kwargs}
        theirs = {"label_smoothing": smoothing, **torch_kwargs}
        compare(
            partial(F.cross_entropy, target=target, **ours),
            partial(TF.cross_entropy, target=tt, **theirs),
            [logits],
            rng,
            dtype,
        )
        compare(
            partial(F.nll_loss, target=target, **kwargs),
            partial(TF.nll_loss, target=tt, **torch_kwargs),
            [logits],
            rng,
            dtype,
        )
        probabilities = rng.dirichlet(np.ones(c), size=logits.shape[:1] + logits.shape[2:])
        probabilities = np.moveaxis(probabilities, -1, 1).astype(dtype)
        compare(
            partial(F.cross_entropy, target=probabilities, **ours),
            partial(TF.cross_entropy, target=torch.tensor(probabilities), **theirs),
            [logits],
            rng,
            dtype,
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gives_soft_targets_that_require_grad_a_gradient_like_torch(reduction, dtype):
    """d loss / d target = -(1 - e) * w * log_softmax(input), scaled by the reduction."""
    rng = np.random.default_rng({"mean": 16, "sum": 17, "none": 18}[reduction])
    for i in range(CASES):
        logits, _, c = random_class_problem(rng, with_ignore=False)
        if i % 4 == 3:
            logits = logits.reshape(logits.shape[0], c, -1)[0, :, 0]  # unbatched (C,)
        positions = logits.shape[:1] + logits.shape[2:] if logits.ndim > 1 else ()
        probabilities = np.moveaxis(rng.dirichlet(np.ones(c), size=positions), -1, min(1, logits.ndim - 1))
        weight = rng.uniform(0.1, 2.0, c).astype(dtype) if i % 3 else None
        kwargs = {"reduction": reduction, "label_smoothing": (0.0, 0.1, 0.4)[i % 3]}
        compare(  # both operands require grad: compare checks both gradients
            partial(F.cross_entropy, weight=weight, **kwargs),
            partial(TF.cross_entropy, weight=None if weight is None else torch.tensor(weight), **kwargs),
            [logits, probabilities],
            rng,
            dtype,
        )


def test_cross_entropy_custom_ignore_index_unbatched_and_all_ignored():
    rng = np.random.default_rng(9)
    logits = rng.standard_normal((4, 3))
    target = np.array([0, 2, 2, 1])
    for reduction in ("mean", "sum", "none"):
        compare(
            lambda x, r=reduction: F.cross_entropy(x, target, ignore_index=2, reduction=r),
            lambda x, r=reduction: TF.cross_entropy(x, torch.tensor(target), ignore_index=2, reduction=r),
            [logits],
            rng,
        )
        compare(
            lambda x, r=reduction: F.cross_entropy(x, np.array(1), reduction=r),
            lambda x, r=reduction: TF.cross_entropy(x, torch.tensor(1), reduction=r),
            [logits[0]],
            rng,
        )
    all_ignored = F.cross_entropy(logits, np.full(4, -100))
    expected = TF.cross_entropy(to_torch(logits), torch.full((4,), -100))
    assert np.isnan(all_ignored.item()) and torch.isnan(expected)


def test_cross_entropy_uniform_logits_is_log_classes():
    for c in (2, 10, 100):
        loss = F.cross_entropy(np.zeros((3, c)), np.arange(3) % c)
        assert abs(loss.item() - np.log(c)) < 1e-6
        assert loss.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction, dtype):
    rng = np.random.default_rng(10)
    for _ in range(CASES):
        shape = random_shape(rng)
        compare(
            lambda a, b: F.mse_loss(a, b, reduction=reduction),
            lambda a, b: TF.mse_loss(a, b, reduction=reduction),
            [rng.standard_normal(shape), rng.standard_normal(shape)],
            rng,
            dtype,
        )


def test_gradcheck_every_op():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4))
    x[np.abs(x) < 0.05] = 0.3
    w, b = rng.standard_normal((5, 4)), rng.standard_normal(5)
    target = np.array([0, 3, 1])
    weight = rng.uniform(0.5, 2, 4)
    checks = [
        (F.relu, x),
        (lambda t: F.leaky_relu(t, 0.1), x),
        (F.tanh, x),
        (F.sigmoid, x),
        (F.scaled_tanh, x),
        (lambda t: F.softmax(t, 1), x),
        (lambda t: F.softmax(t, 0), x),
        (lambda t: F.log_softmax(t, -1), x),
        (F.linear, x, w, b),
        (lambda t: F.flatten(t.reshape(3, 2, 2)), x),
        (lambda t: F.cross_entropy(t, target, weight=weight, label_smoothing=0.2), x),
        (lambda t: F.cross_entropy(t, target, reduction="none"), x),
        (lambda t: F.nll_loss(F.log_softmax(t, 1), target, reduction="sum"), x),
        (F.mse_loss, x, rng.standard_normal((3, 4))),
        (lambda t: F.dropout(t, 0.3, generator=7), x),
    ]
    for fn, *inputs in checks:
        assert np.isfinite(gradcheck(fn, *inputs, tol=1e-6))


def test_dropout_statistics_and_scaling():
    x = np.ones((200, 500), dtype=np.float32)
    for p in (0.1, 0.5, 0.8):
        out = F.dropout(x, p, generator=np.random.default_rng(12)).data
        assert out.dtype == np.float32
        kept = out != 0
        assert abs(kept.mean() - (1 - p)) < 0.01
        np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-6)
        assert abs(out.mean() - 1.0) < 0.02  # inverted dropout keeps the expectation


def test_dropout_gradient_uses_the_same_mask():
    t = cl.tensor(np.random.default_rng(13).standard_normal((50, 40)), requires_grad=True)
    out = F.dropout(t, 0.4, generator=1)
    out.sum().backward()
    np.testing.assert_allclose(t.grad, (out.data != 0) / 0.6)


def test_dropout_edges_and_eval_mode():
    x = cl.tensor(np.arange(1.0, 7.0).reshape(2, 3), requires_grad=True)
    np.testing.assert_array_equal(F.dropout(x, 0.0).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 0.9, training=False).data, x.data)
    zeros = F.dropout(x, 1.0)
    np.testing.assert_array_equal(zeros.data, np.zeros((2, 3)))
    zeros.sum().backward()
    np.testing.assert_array_equal(x.grad, np.zeros((2, 3)))
    a = F.dropout(np.ones(100), 0.5, generator=5).data
    b = F.dropout(np.ones(100), 0.5, generator=5).data
    np.testing.assert_array_equal(a, b)
    for bad in (-0.1, 1.5, "0.5", None):
        with pytest.raises(ValueError, match=r"dropout: p must be"):
            F.dropout(x, bad)


def test_errors_are_clear():
    logits = np.zeros((2, 3))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer"):
        F.nll_loss(logits, np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"target values must be in \[0, 3\)"):
        F.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(ValueError, match="target values"):
        F.nll_loss(logits, np.array([-1, 0]))
    with pytest.raises(ValueError, match="target shape"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.cross_entropy(logits, np.array([0, 1]), weight=np.ones(2))
    for op, args in (
        (F.cross_entropy, (logits, np.array([0, 1]))),
        (F.nll_loss, (logits, np.array([0, 1]))),
        (F.mse_loss, (logits, logits)),
    ):
        with pytest.raises(ValueError, match="reduction must be"):
            op(*args, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(logits, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="mse_loss: input shape"):
        F.mse_loss(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="linear: input has 3 features"):
        F.linear(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="linear: weight must be 2-D"):
        F.linear(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="linear: bias"):
        F.linear(np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(TypeError, match="same dtype"):
        F.linear(np.zeros((2, 3)), np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="softmax: dim=2"):
        F.softmax(logits, 2)
    with pytest.raises(TypeError):
        F.log_softmax(logits)  # dim is required
    with pytest.raises(ValueError, match="flatten"):
        F.flatten(np.zeros((2, 3, 4)), 2, 1)

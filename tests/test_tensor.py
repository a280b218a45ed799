"""Tensor arithmetic and autograd against PyTorch (values and gradients) and central differences."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from conftest import gradcheck, relative_error, to_torch, torch

import convlens as cl

CASES = 40  # random shapes per operation


def random_shape(rng: np.random.Generator, max_ndim: int = 4, max_size: int = 4) -> tuple[int, ...]:
    return tuple(int(n) for n in rng.integers(1, max_size + 1, rng.integers(0, max_ndim + 1)))


def broadcast_partner(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts with ``shape``: some axes set to 1, some leading axes dropped/added."""
    partner = [1 if rng.random() < 0.35 else n for n in shape]
    partner = partner[int(rng.integers(0, len(partner) + 1)) :] if rng.random() < 0.3 else partner
    if rng.random() < 0.2:
        partner = [int(rng.integers(1, 3))] + partner if not shape else [1] + partner
    return tuple(partner)


def compare(fn, arrays, rng, tol=1e-12):
    """Run ``fn`` on convlens and torch tensors; compare outputs and every input gradient."""
    ours = [cl.tensor(a, requires_grad=True) for a in arrays]
    theirs = [to_torch(a, requires_grad=True) for a in arrays]
    out, expected = fn(ours), fn(theirs)
    assert out.shape == tuple(expected.shape)
    assert out.dtype == np.dtype(str(expected.dtype).replace("torch.", ""))
    err = relative_error(out.data, expected.detach().numpy())
    probe = rng.standard_normal(out.shape).astype(out.dtype)
    out.backward(probe)
    expected.backward(torch.tensor(probe))
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine.grad is not None and mine.grad.shape == mine.shape
        err = max(err, relative_error(mine.grad, ref.grad.numpy()))
    assert err < tol, err
    return err


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_broadcasting_matches_torch(name):
    rng = np.random.default_rng(zlib.crc32(name.encode()))  # hash() of a str changes per process
    for _ in range(CASES):
        shape = random_shape(rng)
        other = broadcast_partner(rng, shape)
        a = rng.uniform(0.5, 2.0, shape) if name == "pow" else rng.standard_normal(shape)
        b = rng.uniform(0.5, 2.0, other) * rng.choice([-1, 1], other)
        if rng.random() < 0.5:
            a, b = (b, a) if name not in ("pow", "div") else (a, b)
        compare(lambda t, op=BINARY[name]: op(t[0], t[1]), [a, b], rng)


def test_scalar_and_reflected_operands_keep_dtype():
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        x = rng.uniform(0.5, 2.0, (3, 4)).astype(dtype)
        fns = [
            lambda t: 2 - t,
            lambda t: 3 / t,
            lambda t: 2**t,
            lambda t: t**2,
            lambda t: -t,
            lambda t: 1.5 * t + 0.5,
            lambda t: t / 4 - 1,
        ]
        for fn in fns:
            compare(lambda ts, fn=fn: fn(ts[0]), [x], rng, tol=1e-6 if dtype == np.float32 else 1e-12)


def test_ndarray_operand_defers_to_tensor():
    x = cl.tensor(np.ones((2, 3)), requires_grad=True)
    y = np.full((2, 3), 2.0) * x + np.ones(3)
    assert isinstance(y, cl.Tensor)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


@pytest.mark.parametrize(
    ("sa", "sb"),
    [
        ((3,), (3, 4)),
        ((2, 3), (3,)),
        ((3,), (2, 3, 4)),
        ((2, 3, 4), (4,)),
        ((3,), (3,)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((3, 4), (4, 2)),
        ((1, 5), (5, 1)),
        ((4, 2, 3), (4, 3, 5)),
    ],
)
def test_matmul_matches_torch(sa, sb):
    rng = np.random.default_rng(sum(sa) + 7 * sum(sb))
    compare(lambda t: t[0] @ t[1], [rng.standard_normal(sa), rng.standard_normal(sb)], rng)


def test_matmul_random_batched_shapes():
    rng = np.random.default_rng(2)
    for _ in range(CASES):
        n, k, m = (int(v) for v in rng.integers(1, 5, 3))
        batch = random_shape(rng, max_ndim=2, max_size=3)
        other = broadcast_partner(rng, batch)
        compare(
            lambda t: t[0] @ t[1],
            [rng.standard_normal(batch + (n, k)), rng.standard_normal(other + (k, m))],
            rng,
        )


def random_dims(rng, ndim):
    if ndim == 0 or rng.random() < 0.2:
        return None
    if rng.random() < 0.5:
        return int(rng.integers(-ndim, ndim))
    return tuple(int(d) for d in rng.choice(ndim, int(rng.integers(1, ndim + 1)), replace=False))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_sum_mean_over_dims_with_keepdim(reduction):
    rng = np.random.default_rng(3 if reduction == "sum" else 4)
    for _ in range(CASES):
        shape = random_shape(rng)
        dim = random_dims(rng, len(shape))
        keepdim = bool(rng.random() < 0.5)

        def fn(t, dim=dim, keepdim=keepdim):
            if dim is None:
                return getattr(t[0], reduction)()
            return getattr(t[0], reduction)(dim, keepdim=keepdim)

        compare(fn, [rng.standard_normal(shape)], rng)


def test_max_over_dim_with_keepdim():
    rng = np.random.default_rng(5)
    for _ in range(CASES):
        shape = random_shape(rng, max_ndim=4)
        dim = None if not shape or rng.random() < 0.2 else int(rng.integers(-len(shape), len(shape)))
        keepdim = bool(rng.random() < 0.5)
        x = rng.permutation(int(np.prod(shape))).reshape(shape) + rng.uniform(0, 0.5, shape)  # no ties

        def fn(t, dim=dim, keepdim=keepdim):
            if dim is None:
                return t[0].max() if isinstance(t[0], cl.Tensor) else t[0].amax()
            return t[0].max(dim, keepdim=keepdim) if isinstance(t[0], cl.Tensor) else t[0].amax(dim, keepdim)

        compare(fn, [x], rng)


def test_max_of_ties_shares_gradient_like_torch_amax():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    compare(
        lambda t: t[0].max() if isinstance(t[0], cl.Tensor) else t[0].amax(), [x], np.random.default_rng(0)
    )
    compare(
        lambda t: t[0].max(1) if isinstance(t[0], cl.Tensor) else t[0].amax(1), [x], np.random.default_rng(0)
    )


def test_shape_ops_match_torch():
    rng = np.random.default_rng(6)
    for _ in range(CASES):
        shape = random_shape(rng, max_ndim=4) or (3,)
        ndim = len(shape)
        order = tuple(int(d) for d in rng.permutation(ndim))
        d0, d1 = (int(d) for d in rng.integers(-ndim, ndim, 2))
        flat = int(np.prod(shape))
        x = rng.standard_normal(shape)
        compare(lambda t, n=flat: t[0].reshape(n), [x], rng)
        compare(lambda t, s=shape: t[0].reshape(-1, s[-1]), [x], rng)
        compare(lambda t, o=order: t[0].permute(*o), [x], rng)
        compare(lambda t, o=order: t[0].permute(o) * 2, [x], rng)
        compare(lambda t, a=d0, b=d1: t[0].transpose(a, b), [x], rng)


def test_exp_log_match_torch():
    rng = np.random.default_rng(7)
    for _ in range(CASES):
        shape = random_shape(rng)
        compare(lambda t: t[0].exp(), [rng.standard_normal(shape)], rng)
        compare(lambda t: t[0].log(), [rng.uniform(0.1, 5.0, shape)], rng)
        compare(lambda t: (t[0].exp() + 1).log(), [rng.standard_normal(shape) * 3], rng)


def test_getitem_basic_and_fancy_match_torch():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 5, 3))
    indices = [
        (slice(1, 3),),
        (2,),
        (-1, slice(None, None, 2)),
        (Ellipsis, 1),
        (slice(None), None, 2),
        (np.array([0, 2, 2, 3]),),
        (slice(None), np.array([4, 0, 4])),
        (np.array([1, 1]), np.array([0, 0])),
        (x[..., 0] > 0,),
    ]
    for index in indices:

        def fn(t, index=index):
            if isinstance(t[0], cl.Tensor):
                return t[0][index]
            return t[0][tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)]

        compare(fn, [x], rng)


def test_tensor_used_twice_accumulates_gradient():
    rng = np.random.default_rng(9)
    for _ in range(CASES):
        shape = random_shape(rng)
        x = rng.standard_normal(shape)
        compare(lambda t: t[0] * t[0] + t[0] - t[0].exp() * t[0], [x], rng)
        compare(
            lambda t: (t[0] @ t[1]) @ t[1].transpose(0, 1) + t[0],
            [rng.standard_normal((3, 4)), rng.standard_normal((4, 4))],
            rng,
        )


def test_deep_graph_of_ten_thousand_ops_does_not_recurse():
    x = cl.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.full(2, 1.0001**10_000), rtol=1e-9)


def test_leaf_gradients_accumulate_across_backward_calls():
    x = cl.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_no_grad_records_nothing_and_enable_grad_restores():
    x = cl.tensor([1.0, 2.0], requires_grad=True)
    with cl.no_grad():
        y = x * 2 + 1
        assert not cl.is_grad_enabled()
        with cl.enable_grad():
            z = x * 2
    assert cl.is_grad_enabled()
    assert not y.requires_grad and y.is_leaf
    assert z.requires_grad
    with pytest.raises(RuntimeError):
        y.sum().backward()


def test_dtype_rules():
    assert cl.tensor([1.0, 2.0]).dtype == np.float32
    assert cl.tensor([[1, 2]]).dtype == np.int64
    assert cl.tensor(np.zeros(3)).dtype == np.float64
    assert cl.tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert cl.tensor([1, 2], dtype=np.float64).dtype == np.float64
    for dtype in (np.float32, np.float64):
        t = cl.tensor(np.ones((2, 3), dtype), requires_grad=True)
        out = ((t * 2.5 + 1) / 3 - t**2).exp().log().sum(1).mean()
        assert out.dtype == dtype
        out.backward()
        assert t.grad.dtype == dtype
    scaled = cl.tensor([1, 2]) * 2.5  # an int tensor times a float is not truncated
    assert scaled.dtype.kind == "f" and scaled.tolist() == [2.5, 5.0]
    with pytest.raises(TypeError):
        cl.tensor([1, 2], requires_grad=True)


def test_float32_matches_torch_float32():
    rng = np.random.default_rng(10)
    for _ in range(CASES):
        shape = random_shape(rng)
        a = rng.standard_normal(shape).astype(np.float32)
        b = rng.uniform(0.5, 2, broadcast_partner(rng, shape)).astype(np.float32)
        compare(lambda t: ((t[0] * t[1] - t[1]) / t[1] + t[0].exp()).sum(), [a, b], rng, tol=1e-5)


def test_backward_errors():
    x = cl.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    with pytest.raises(ValueError, match="shape"):
        (x * 2).backward(np.ones(4))


def test_gradcheck_composite_expression():
    rng = np.random.default_rng(11)
    for _ in range(10):
        a = rng.standard_normal((3, 4))
        b = rng.uniform(0.5, 2.0, (4,))
        c = rng.standard_normal((4, 2))

        def f(a, b, c):
            h = (a * b - a / b) ** 2
            side = h.mean(1).reshape(3, 1).transpose(0, 1) @ a[:, :2]
            return ((h @ c).exp().sum(0, keepdim=True) + side * side).log()

        with np.errstate(all="raise"):  # a NaN would slip through gradcheck's max()
            assert np.isfinite(gradcheck(f, a, b, c, tol=1e-6))

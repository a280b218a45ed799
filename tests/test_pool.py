"""Pooling against PyTorch, against the loop oracle (tests/reference_pool.py) and central differences.

Hundreds of seeded random configurations over 1-D/2-D/3-D, kernel, stride,
padding, dilation, ceil_mode, count_include_pad and divisor_override, in
float64 (tight) and float32, with integer-valued inputs half the time so that
ties (PyTorch's first-maximum rule) are exercised. Run with ``-s`` to see the
number of cases and the largest error per check.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import reference_pool as ref
import torch
import torch.nn.functional as TF
from conftest import gradcheck, relative_error, to_torch

import convlens as cl
from convlens.functional import _pool_windows as W
from convlens.functional import pool as P

TOL = {np.float64: 1e-12, np.float32: 5e-7}
STATS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    lines = [f"  {name}: {int(n)} cases, max error {worst:.3g}" for name, (n, worst) in sorted(STATS.items())]
    print("\n[test_pool] cases checked / largest relative error\n" + "\n".join(lines))


def check(name: str, actual, expected, tol: float = 0.0) -> None:
    """Record and assert ``relative_error(actual, expected) <= tol`` (NaNs must match exactly)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    nan = np.isnan(expected) if expected.dtype.kind == "f" else np.zeros(expected.shape, bool)
    if nan.any():
        assert np.array_equal(np.isnan(actual), nan), f"{name}: NaN positions differ"
        actual, expected = np.where(nan, 0, actual), np.where(nan, 0, expected)
    inf = np.isinf(expected) if expected.dtype.kind == "f" else nan
    if inf.any():
        assert np.array_equal(actual[inf], expected[inf]), f"{name}: infinities differ"
        actual, expected = np.where(inf, 0, actual), np.where(inf, 0, expected)
    err = relative_error(actual, expected)
    STATS[name][0] += 1
    STATS[name][1] = max(STATS[name][1], err)
    assert err <= tol, f"{name}: relative error {err:.3g} > {tol:.3g}"


# -- random configurations ---------------------------------------------------------
def random_input(rng, shape, dtype, ties: bool) -> np.ndarray:
    if ties:  # small integers: many equal values, like a zero background
        return rng.integers(-1, 3, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def random_strided(rng, nd: int, kind: str, torch_ok: bool = True) -> tuple[tuple[int, ...], dict]:
    """(input shape, kwargs) for a random max/avg pool whose output is not empty (and that
    PyTorch accepts, if ``torch_ok``)."""
    top = 4 if nd < 3 else 3
    kernel = tuple(int(k) for k in rng.integers(1, top + 1, nd))
    stride = tuple(int(s) for s in rng.integers(1, top + 1, nd))
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    dilation = tuple(int(d) for d in rng.integers(1, 3 if nd == 3 else 4, nd)) if kind == "max" else (1,) * nd
    sizes = tuple(
        max(1, d * (k - 1) + 1 - 2 * p + int(rng.integers(0, 7 if nd < 3 else 3)))
        for k, p, d in zip(kernel, padding, dilation, strict=True)
    )
    lead = (int(rng.integers(1, 3)), int(rng.integers(1, 4))) if rng.random() < 0.8 else (2,)
    kw = {
        "kernel_size": kernel,
        "stride": stride if rng.random() < 0.75 else None,
        "padding": padding,
        "ceil_mode": bool(rng.random() < 0.5),
    }
    if kind == "max":
        kw["dilation"] = dilation
        if _window_misses_input(sizes, kernel, kw["stride"] or kernel, padding, dilation, kw["ceil_mode"]):
            return random_strided(rng, nd, kind)
    else:
        kw["count_include_pad"] = bool(rng.random() < 0.5)
        kw["divisor_override"] = int(rng.integers(1, 7)) if rng.random() < 0.2 else None
        if torch_ok and nd == 3 and any(n < k for n, k in zip(sizes, kernel, strict=True)):
            return random_strided(rng, nd, kind)  # see test_avg_pool3d_accepts_input_smaller_than_kernel
    if rng.random() < 0.3:  # plain ints where every axis agrees
        for name in ("kernel_size", "stride", "padding", "dilation"):
            value = kw.get(name)
            if value is not None and len(set(value)) == 1:
                kw[name] = value[0]
    return lead + sizes, kw


def _window_misses_input(sizes, kernel, stride, padding, dilation, ceil_mode) -> bool:
    """True when some dilated window holds only padding (tested separately: PyTorch then reads
    outside the plane)."""
    for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation, strict=True):
        for o in range(ref.pool_output_size(n, k, s, p, d, ceil_mode)):
            if not any(0 <= o * s - p + j * d < n for j in range(k)):
                return True
    return False


def random_adaptive(rng, nd: int) -> tuple[tuple[int, ...], object, tuple[int, ...]]:
    """(input shape, output_size argument, resolved output size); sizes may not divide."""
    sizes = tuple(int(n) for n in rng.integers(1, 10 if nd < 3 else 6, nd))
    outs = tuple(int(rng.integers(1, n + 3)) for n in sizes)
    arg: object = outs
    if nd > 1 and rng.random() < 0.3:
        axis = int(rng.integers(nd))
        arg = tuple(None if a == axis else o for a, o in enumerate(outs))
        outs = tuple(sizes[a] if a == axis else o for a, o in enumerate(outs))
    elif len(set(outs)) == 1 and rng.random() < 0.5:
        arg = outs[0]
    lead = (int(rng.integers(1, 3)), int(rng.integers(1, 4))) if rng.random() < 0.8 else (2,)
    return lead + sizes, arg, outs


def ours(fn, x: np.ndarray, probe_seed: int = 0, **kw):
    """(output, indices or None, input gradient or None) from convlens."""
    t = cl.tensor(x, requires_grad=x.dtype.kind == "f")
    result = fn(t, **kw)
    out, idx = result if isinstance(result, tuple) else (result, None)
    grad = None
    if t.requires_grad:
        out.backward(np.random.default_rng(probe_seed).standard_normal(out.shape).astype(x.dtype))
        grad = t.grad
    return out.data, None if idx is None else idx.data, grad


def theirs(fn, x: np.ndarray, probe_seed: int = 0, **kw):
    t = to_torch(x, requires_grad=x.dtype.kind == "f")
    result = fn(t, **kw)
    out, idx = result if isinstance(result, tuple) else (result, None)
    grad = None
    if t.requires_grad:
        probe = np.random.default_rng(probe_seed).standard_normal(tuple(out.shape)).astype(x.dtype)
        out.backward(torch.from_numpy(probe))
        grad = t.grad.numpy()
    return out.detach().numpy(), None if idx is None else idx.numpy(), grad


def via_2d(fn2d):
    """A 1-D torch pool run as the 2-D one on (1, L) planes: torch's avg_pool1d has no
    divisor_override and its max_pool1d no integer support."""

    def pair(v, fill):
        return None if v is None else (fill,) + ((v,) if isinstance(v, int) else tuple(v))

    def run(t, kernel_size, stride=None, padding=0, dilation=None, **kw):
        if dilation is not None:
            kw["dilation"] = pair(dilation, 1)
        result = fn2d(t.unsqueeze(-2), pair(kernel_size, 1), pair(stride, 1), pair(padding, 0), **kw)
        return tuple(r.squeeze(-2) for r in result) if isinstance(result, tuple) else result.squeeze(-2)

    return run


def torch_op(name: str, integers: bool = False):
    if name == "avg_pool1d" or (integers and name == "max_pool1d"):
        return via_2d(getattr(TF, name.replace("1d", "2d")))
    return getattr(TF, name)


DTYPES = (np.float64, np.float32)


# -- against PyTorch ---------------------------------------------------------------------
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_pool_matches_torch(nd):
    rng = np.random.default_rng(100 + nd)
    for case in range(120):
        shape, kw = random_strided(rng, nd, "max")
        dtype = DTYPES[case % 2]
        x = random_input(rng, shape, dtype, ties=case % 4 < 2)
        name = f"max_pool{nd}d"
        out, idx, grad = ours(getattr(cl.functional, name), x, case, return_indices=True, **kw)
        t_out, t_idx, t_grad = theirs(torch_op(name), x, case, return_indices=True, **kw)
        assert out.dtype == dtype and grad.dtype == dtype
        check(f"{name} vs torch: forward", out, t_out)  # a max is exact
        np.testing.assert_array_equal(idx, t_idx, err_msg=f"{name} {shape} {kw}")
        check(f"{name} vs torch: grad ({np.dtype(dtype).name})", grad, t_grad, TOL[dtype])


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_avg_pool_matches_torch(nd):
    rng = np.random.default_rng(200 + nd)
    for case in range(120):
        shape, kw = random_strided(rng, nd, "avg")
        dtype = DTYPES[case % 2]
        x = random_input(rng, shape, dtype, ties=case % 4 < 2)
        name = f"avg_pool{nd}d"
        out, _, grad = ours(getattr(cl.functional, name), x, case, **kw)
        t_out, _, t_grad = theirs(torch_op(name), x, case, **kw)
        assert out.dtype == dtype and grad.dtype == dtype
        tag = np.dtype(dtype).name
        check(f"{name} vs torch: forward ({tag})", out, t_out, TOL[dtype])
        check(f"{name} vs torch: grad ({tag})", grad, t_grad, TOL[dtype])


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_adaptive_pool_matches_torch(nd, kind):
    rng = np.random.default_rng(300 + nd + (kind == "max"))
    name = f"adaptive_{kind}_pool{nd}d"
    for case in range(80):
        shape, arg, outs = random_adaptive(rng, nd)
        dtype = DTYPES[case % 2]
        x = random_input(rng, shape, dtype, ties=case % 4 < 2)
        kw = {"return_indices": True} if kind == "max" else {}
        out, idx, grad = ours(getattr(cl.functional, name), x, case, output_size=arg, **kw)
        t_out, t_idx, t_grad = theirs(torch_op(name), x, case, output_size=arg, **kw)
        assert out.shape == shape[:-nd] + outs and out.dtype == dtype
        tag = np.dtype(dtype).name
        check(f"{name} vs torch: forward ({tag})", out, t_out, 0.0 if kind == "max" else TOL[dtype])
        check(f"{name} vs torch: grad ({tag})", grad, t_grad, TOL[dtype])
        if kind == "max":
            np.testing.assert_array_equal(idx, t_idx, err_msg=f"{name} {shape} {arg}")


def test_ties_go_to_the_first_maximum():
    """All-equal windows, zero background after ReLU, 0/1 images: the gradient follows PyTorch."""
    rng = np.random.default_rng(7)
    inputs = [
        np.zeros((2, 3, 8, 8)),
        np.ones((1, 1, 6, 6)),
        np.maximum(rng.integers(-3, 3, (2, 2, 8, 8)), 0).astype(np.float64),
        rng.integers(0, 2, (2, 2, 7, 9)).astype(np.float32),
    ]
    configs = [
        {"kernel_size": 2},
        {"kernel_size": 3, "stride": 1, "padding": 1},
        {"kernel_size": 3, "stride": 2},
        {"kernel_size": 2, "stride": 1, "dilation": 2},
        {"kernel_size": 3, "stride": 2, "ceil_mode": True},
    ]
    for x in inputs:
        for kw in configs:
            out, idx, grad = ours(cl.functional.max_pool2d, x, return_indices=True, **kw)
            t_out, t_idx, t_grad = theirs(TF.max_pool2d, x, return_indices=True, **kw)
            np.testing.assert_array_equal(idx, t_idx)
            check("ties: max_pool2d grad vs torch", grad, t_grad, TOL[x.dtype.type])
        for out_size in [(3, 4), (5, 5), (8, 2)]:
            out, idx, grad = ours(
                cl.functional.adaptive_max_pool2d, x, output_size=out_size, return_indices=True
            )
            _, t_idx, t_grad = theirs(TF.adaptive_max_pool2d, x, output_size=out_size, return_indices=True)
            np.testing.assert_array_equal(idx, t_idx)
            check("ties: adaptive_max_pool2d grad vs torch", grad, t_grad, TOL[x.dtype.type])
    # a window of equal values sends its whole gradient to the first element
    x = cl.tensor(np.zeros((1, 1, 2, 2)), requires_grad=True)
    cl.functional.max_pool2d(x, 2).backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(x.grad[0, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_nan_and_infinity_follow_torch():
    """A NaN wins its window (the last NaN is kept); windows of -inf pick their first real element."""
    rng = np.random.default_rng(8)
    for case in range(60):
        nd = 1 + case % 3
        shape, kw = random_strided(rng, nd, "max")
        x = random_input(rng, shape, np.float64, ties=True)
        special = rng.random(shape)
        x[special < 0.15] = np.nan
        x[special > 0.8] = -np.inf
        name = f"max_pool{nd}d"
        out, idx, grad = ours(getattr(cl.functional, name), x, case, return_indices=True, **kw)
        t_out, t_idx, t_grad = theirs(torch_op(name), x, case, return_indices=True, **kw)
        check("NaN/-inf: max_pool vs torch: forward", out, t_out)
        np.testing.assert_array_equal(idx, t_idx)
        check("NaN/-inf: max_pool vs torch: grad", grad, t_grad, 1e-12)
        if nd == 2:
            out, idx, _ = ours(cl.functional.adaptive_max_pool2d, x, output_size=(3, 2), return_indices=True)
            t_out, t_idx, _ = theirs(TF.adaptive_max_pool2d, x, output_size=(3, 2), return_indices=True)
            check("NaN/-inf: adaptive_max_pool2d vs torch: forward", out, t_out)
            np.testing.assert_array_equal(idx, t_idx)


def test_window_of_only_padding_gives_minus_inf_and_no_gradient():
    """Dilation can make a window skip the whole input; PyTorch then returns -inf with an index
    outside the plane (and its backward writes into the neighbouring plane). We return -inf, the
    same index, and drop the gradient."""
    x = cl.tensor(np.arange(4.0).reshape(2, 2, 1), requires_grad=True)
    out, idx = cl.functional.max_pool1d(x, 2, padding=1, dilation=2, return_indices=True)
    t_out, t_idx = TF.max_pool1d(
        torch.arange(4.0).reshape(2, 2, 1), 2, padding=1, dilation=2, return_indices=True
    )
    np.testing.assert_array_equal(out.data, t_out.numpy())
    np.testing.assert_array_equal(idx.data, t_idx.numpy())
    out.backward(np.ones(out.shape))
    np.testing.assert_array_equal(x.grad, np.zeros((2, 2, 1)))


def test_integer_inputs_match_torch():
    rng = np.random.default_rng(9)
    for case in range(40):
        nd = 1 + case % 3
        for kind in ("max", "avg"):
            shape, kw = random_strided(rng, nd, kind)
            x = rng.integers(-50, 50, shape).astype(np.int32 if case % 2 and kind == "max" else np.int64)
            name = f"{kind}_pool{nd}d"
            out = getattr(cl.functional, name)(x, **kw).data
            expected = torch_op(name, integers=True)(torch.from_numpy(x), **kw).numpy()
            assert out.dtype == x.dtype
            check(f"integers: {kind}_pool vs torch", out, expected)


def test_unbatched_empty_batch_and_channels_last():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 7, 6))
    for name, kw in [
        ("max_pool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
        ("avg_pool2d", {"kernel_size": 2, "ceil_mode": True}),
        ("adaptive_avg_pool2d", {"output_size": (4, None)}),
        ("adaptive_max_pool2d", {"output_size": 5}),
    ]:
        out, _, grad = ours(getattr(cl.functional, name), x, **kw)
        t_out, _, t_grad = theirs(torch_op(name), x, **kw)
        check("unbatched vs torch", out, t_out, 1e-12)
        check("unbatched vs torch", grad, t_grad, 1e-12)
        assert getattr(cl.functional, name)(np.zeros((0, 3, 7, 6)), **kw).shape[:2] == (0, 3)
        # NHWC memory seen as NCHW (PyTorch's channels_last) gives the same result
        nhwc = rng.standard_normal((2, 7, 6, 3)).transpose(0, 3, 1, 2)
        got = getattr(cl.functional, name)(nhwc, **kw).data
        check(
            "channels_last vs torch",
            got,
            getattr(TF, name)(torch.from_numpy(np.ascontiguousarray(nhwc)), **kw).numpy(),
            1e-12,
        )


def test_float32_stays_float32_and_no_grad_path():
    x = np.random.default_rng(11).standard_normal((2, 3, 8, 8)).astype(np.float32)
    for fn, kw in [
        (cl.functional.max_pool2d, {"kernel_size": 2}),
        (cl.functional.avg_pool2d, {"kernel_size": 2}),
        (cl.functional.max_pool2d, {"kernel_size": 3, "padding": 1, "stride": 2}),
        (cl.functional.adaptive_avg_pool2d, {"output_size": 3}),
    ]:
        with cl.no_grad():
            fast = fn(cl.tensor(x, requires_grad=True), **kw)
        assert fast.dtype == np.float32 and not fast.requires_grad
        tracked = fn(cl.tensor(x, requires_grad=True), **kw)
        np.testing.assert_array_equal(fast.data, tracked.data)
    # the output never aliases the input, even for a 1x1 pool
    out = cl.functional.max_pool2d(x, 1)
    assert not np.shares_memory(out.data, x)


def test_stride_as_empty_tuple_means_kernel_size():
    x = np.random.default_rng(12).standard_normal((1, 2, 6, 6))
    np.testing.assert_array_equal(
        cl.functional.max_pool2d(x, 2, stride=()).data,
        TF.max_pool2d(torch.from_numpy(x), 2, stride=()).numpy(),
    )


# -- the loop oracle, and the oracle against PyTorch ------------------------------------------
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_reference_matches_torch(nd):
    """The oracle itself is checked against PyTorch before it judges anything."""
    rng = np.random.default_rng(400 + nd)
    for case in range(40):
        dtype = DTYPES[case % 2]
        shape, kw = random_strided(rng, nd, "max")
        shape = (1, 2) + shape[-nd:]
        x = random_input(rng, shape, dtype, ties=case % 4 < 2)
        args = _ref_args(kw, nd)
        out, idx = ref.max_pool(
            x, args["kernel"], args["stride"], args["padding"], args["dilation"], kw["ceil_mode"]
        )
        t_out, t_idx, t_grad = theirs(getattr(TF, f"max_pool{nd}d"), x, case, return_indices=True, **kw)
        check("reference max_pool vs torch: forward", out, t_out)
        np.testing.assert_array_equal(idx, t_idx)
        probe = np.random.default_rng(case).standard_normal(out.shape).astype(dtype)
        check(
            "reference max_pool vs torch: grad", ref.max_pool_backward(probe, idx, shape), t_grad, TOL[dtype]
        )

        shape, kw = random_strided(rng, nd, "avg")
        shape = (1, 2) + shape[-nd:]
        x = random_input(rng, shape, dtype, ties=False)
        args = _ref_args(kw, nd)
        avg_args = (
            args["kernel"],
            args["stride"],
            args["padding"],
            kw["ceil_mode"],
            kw["count_include_pad"],
            kw["divisor_override"],
        )
        out = ref.avg_pool(x, *avg_args)
        t_out, _, t_grad = theirs(torch_op(f"avg_pool{nd}d"), x, case, **kw)
        check("reference avg_pool vs torch: forward", out, t_out, TOL[dtype])
        probe = np.random.default_rng(case).standard_normal(out.shape).astype(dtype)
        check(
            "reference avg_pool vs torch: grad",
            ref.avg_pool_backward(probe, shape, *avg_args),
            t_grad,
            TOL[dtype],
        )

        shape, arg, outs = random_adaptive(rng, nd)
        shape = (1, 2) + shape[-nd:]
        x = random_input(rng, shape, dtype, ties=case % 4 < 2)
        t_out, _, t_grad = theirs(getattr(TF, f"adaptive_avg_pool{nd}d"), x, case, output_size=arg)
        check(
            "reference adaptive_avg_pool vs torch: forward", ref.adaptive_avg_pool(x, outs), t_out, TOL[dtype]
        )
        probe = np.random.default_rng(case).standard_normal(t_out.shape).astype(dtype)
        check(
            "reference adaptive_avg_pool vs torch: grad",
            ref.adaptive_avg_pool_backward(probe, shape),
            t_grad,
            TOL[dtype],
        )
        out, idx = ref.adaptive_max_pool(x, outs)
        t_out, t_idx, _ = theirs(
            getattr(TF, f"adaptive_max_pool{nd}d"), x, case, output_size=arg, return_indices=True
        )
        check("reference adaptive_max_pool vs torch: forward", out, t_out)
        np.testing.assert_array_equal(idx, t_idx)


def _ref_args(kw: dict, nd: int) -> dict:
    def tup(v, default):
        v = default if v is None else v
        return (v,) * nd if isinstance(v, int) else tuple(v)

    kernel = tup(kw["kernel_size"], None)
    return {
        "kernel": kernel,
        "stride": tup(kw["stride"], kernel),
        "padding": tup(kw["padding"], 0),
        "dilation": tup(kw.get("dilation"), 1),
    }


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_matches_reference(nd):
    rng = np.random.default_rng(500 + nd)
    F = cl.functional
    for case in range(40):
        dtype = DTYPES[case % 2]
        shape, kw = random_strided(rng, nd, "max")
        shape = (2, 2) + shape[-nd:]
        x = random_input(rng, shape, dtype, ties=case % 2 == 0)
        args = _ref_args(kw, nd)
        r_out, r_idx = ref.max_pool(
            x, args["kernel"], args["stride"], args["padding"], args["dilation"], kw["ceil_mode"]
        )
        out, idx, grad = ours(getattr(F, f"max_pool{nd}d"), x, case, return_indices=True, **kw)
        check(f"max_pool{nd}d vs reference: forward", out, r_out)
        np.testing.assert_array_equal(idx, r_idx)
        probe = np.random.default_rng(case).standard_normal(out.shape).astype(dtype)
        check(
            f"max_pool{nd}d vs reference: grad", grad, ref.max_pool_backward(probe, r_idx, shape), TOL[dtype]
        )

        shape, kw = random_strided(rng, nd, "avg", torch_ok=False)
        shape = (2, 2) + shape[-nd:]
        x = random_input(rng, shape, dtype, ties=False)
        args = _ref_args(kw, nd)
        avg_args = (
            args["kernel"],
            args["stride"],
            args["padding"],
            kw["ceil_mode"],
            kw["count_include_pad"],
            kw["divisor_override"],
        )
        out, _, grad = ours(getattr(F, f"avg_pool{nd}d"), x, case, **kw)
        check(f"avg_pool{nd}d vs reference: forward", out, ref.avg_pool(x, *avg_args), TOL[dtype])
        probe = np.random.default_rng(case).standard_normal(out.shape).astype(dtype)
        check(
            f"avg_pool{nd}d vs reference: grad",
            grad,
            ref.avg_pool_backward(probe, shape, *avg_args),
            TOL[dtype],
        )

        shape, arg, outs = random_adaptive(rng, nd)
        shape = (2, 2) + shape[-nd:]
        x = random_input(rng, shape, dtype, ties=case % 2 == 0)
        out, _, grad = ours(getattr(F, f"adaptive_avg_pool{nd}d"), x, case, output_size=arg)
        check(
            f"adaptive_avg_pool{nd}d vs reference: forward", out, ref.adaptive_avg_pool(x, outs), TOL[dtype]
        )
        probe = np.random.default_rng(case).standard_normal(out.shape).astype(dtype)
        check(
            f"adaptive_avg_pool{nd}d vs reference: grad",
            grad,
            ref.adaptive_avg_pool_backward(probe, shape),
            TOL[dtype],
        )
        out, idx, grad = ours(
            getattr(F, f"adaptive_max_pool{nd}d"), x, case, output_size=arg, return_indices=True
        )
        r_out, r_idx = ref.adaptive_max_pool(x, outs)
        check(f"adaptive_max_pool{nd}d vs reference: forward", out, r_out)
        np.testing.assert_array_equal(idx, r_idx)
        check(
            f"adaptive_max_pool{nd}d vs reference: grad",
            grad,
            ref.max_pool_backward(probe, r_idx, shape),
            TOL[dtype],
        )


def test_avg_pool3d_accepts_input_smaller_than_kernel():
    """PyTorch's avg_pool3d alone rejects an input smaller than the kernel even when padding makes
    room (avg_pool2d accepts it); convlens follows the avg_pool2d rule in every dimension."""
    x = np.random.default_rng(15).standard_normal((1, 1, 1, 4, 4))
    out = cl.functional.avg_pool3d(x, (3, 1, 1), padding=(1, 0, 0)).data
    expected = TF.avg_pool2d(torch.from_numpy(x[:, :, 0]), 1).numpy()[:, :, None] / 3
    check("avg_pool3d small input vs avg_pool2d", out, expected, 1e-15)


def test_integer_avg_pool_matches_reference():
    rng = np.random.default_rng(13)
    for _ in range(30):
        shape, kw = random_strided(rng, 2, "avg")
        shape = (1, 2) + shape[-2:]
        if kw["divisor_override"] is not None and rng.random() < 0.5:
            kw["divisor_override"] = -kw["divisor_override"]
        x = rng.integers(-20, 20, shape)
        args = _ref_args(kw, 2)
        expected = ref.avg_pool(
            x,
            args["kernel"],
            args["stride"],
            args["padding"],
            kw["ceil_mode"],
            kw["count_include_pad"],
            kw["divisor_override"],
        )
        check("integer avg_pool2d vs reference", cl.functional.avg_pool2d(x, **kw).data, expected)


# -- the reference engine: its tiled shortcut against its general path --------------------------
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_fast_path_matches_general_path(nd):
    """Where the windows tile an axis (kernel == stride, no padding, dilation 1), the backward
    writes each tap once instead of accumulating into zeros; the general path must agree."""
    rng = np.random.default_rng(600 + nd)
    for case in range(60):
        kernel = tuple(int(k) for k in rng.integers(1, 4, nd))
        outs = tuple(int(o) for o in rng.integers(1, 5 if nd < 3 else 3, nd))
        shape = (2, 3) + tuple(k * o for k, o in zip(kernel, outs, strict=True))
        dtype = DTYPES[case % 2]
        x = random_input(rng, shape, dtype, ties=case % 2 == 0)
        windows = W.strided_windows("test", nd, shape[2:], kernel, None, 0, 1, False)
        assert all(w.tiles for w in windows)
        plain, _ = P.max_pool_forward(x, windows, track=False)
        tracked, cache = P.max_pool_forward(x, windows, track=True)
        check("tracked vs untracked: max forward", tracked, plain)
        g = rng.standard_normal(plain.shape).astype(dtype)
        check(
            "fast vs general: max backward",
            P.max_pool_backward(g, cache, fast=True),
            P.max_pool_backward(g, cache, fast=False),
        )
        divisor = W.avg_pool_divisor(windows)
        _, avg_cache = P.avg_pool_forward(x, windows, divisor)
        check(
            "fast vs general: avg backward",
            P.avg_pool_backward(g, avg_cache, fast=True),
            P.avg_pool_backward(g, avg_cache, fast=False),
        )
        # and the tiled forward against windows that do not tile (one unused trailing element)
        loose = tuple(W.StridedWindows(w.size + 1, w.kernel, w.stride, 0, 1, w.out) for w in windows)
        wider = np.pad(x, [(0, 0)] * 2 + [(0, 1)] * nd)
        assert not any(w.tiles for w in loose)
        check("tiled vs general: max forward", P.max_pool_forward(wider, loose, track=False)[0], plain)
        check(
            "tiled vs general: avg forward",
            P.avg_pool_forward(wider, loose, divisor)[0],
            P.avg_pool_forward(x, windows, divisor)[0],
        )


# -- central differences ---------------------------------------------------------------------
def distinct_input(rng, shape) -> np.ndarray:
    """Values 0.1 apart (jittered), so no central difference crosses a tie."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.1 + rng.uniform(0, 0.02, size)).reshape(shape) - 0.05 * size


def test_gradcheck():
    rng = np.random.default_rng(14)
    F = cl.functional
    cases = [
        (F.max_pool1d, (1, 2, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        (F.max_pool2d, (1, 2, 5, 6), {"kernel_size": 2, "stride": 1, "dilation": 2, "padding": 1}),
        (F.max_pool2d, (2, 1, 6, 6), {"kernel_size": 2}),
        (
            F.max_pool3d,
            (1, 1, 4, 4, 5),
            {"kernel_size": (2, 3, 2), "stride": (1, 2, 2), "padding": (1, 1, 0)},
        ),
        (F.avg_pool1d, (1, 2, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
        (
            F.avg_pool2d,
            (1, 2, 5, 6),
            {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
        ),
        (F.avg_pool2d, (1, 1, 6, 6), {"kernel_size": 2, "divisor_override": 3}),
        (F.avg_pool3d, (1, 1, 4, 5, 3), {"kernel_size": 2, "stride": 1, "ceil_mode": True}),
        (F.adaptive_avg_pool2d, (1, 2, 5, 7), {"output_size": (3, 4)}),
        (F.adaptive_avg_pool1d, (1, 1, 3), {"output_size": 5}),
        (F.adaptive_max_pool2d, (1, 2, 5, 7), {"output_size": (3, 4)}),
        (F.adaptive_max_pool1d, (1, 1, 3), {"output_size": 5}),
        (F.adaptive_max_pool3d, (1, 1, 3, 4, 5), {"output_size": (2, None, 3)}),
    ]
    worst = 0.0
    for fn, shape, kw in cases:
        worst = max(worst, gradcheck(lambda t, fn=fn, kw=kw: fn(t, **kw), distinct_input(rng, shape)))
    STATS["gradcheck (central differences, float64)"][0] += len(cases)
    STATS["gradcheck (central differences, float64)"][1] = worst


# -- bad arguments --------------------------------------------------------------------------
X4 = np.zeros((1, 1, 4, 4))
BAD = [
    (
        lambda: cl.functional.max_pool2d(X4, 0),
        ValueError,
        "max_pool2d: kernel_size must be positive. "
        r"Received: kernel_size=0",
    ),
    (lambda: cl.functional.max_pool2d(X4, (2, 2, 2)), TypeError, r"max_pool2d: kernel_size must be .*2 ints"),
    (lambda: cl.functional.max_pool2d(X4, 2.5), TypeError, "kernel_size"),
    (lambda: cl.functional.max_pool2d(X4, 2, stride=0), ValueError, r"max_pool2d: stride must be positive"),
    (lambda: cl.functional.max_pool2d(X4, 2, padding=-1), ValueError, r"max_pool2d: padding must be >= 0"),
    (
        lambda: cl.functional.max_pool2d(X4, 3, padding=2),
        ValueError,
        r"max_pool2d: padding must be at most half of kernel_size .* Received: padding=2, kernel_size=3",
    ),
    (
        lambda: cl.functional.max_pool1d(X4[0], 1, padding=1),
        ValueError,
        "max_pool1d: padding must be at most",
    ),
    (
        lambda: cl.functional.max_pool2d(X4, 2, dilation=0),
        ValueError,
        r"max_pool2d: dilation must be positive",
    ),
    (lambda: cl.functional.max_pool2d(X4, 5), ValueError, r"max_pool2d: output would be empty.*\(0, 0\)"),
    (
        lambda: cl.functional.max_pool3d(X4[0], 2),
        ValueError,
        r"max_pool3d: input must be 4-D \(C, D, H, W\) or 5-D \(N, C, D, H, W\). "
        r"Received: input of shape \(1, 4, 4\)",
    ),
    (lambda: cl.functional.max_pool2d(np.zeros((4, 4)), 2), ValueError, r"max_pool2d: input must be 3-D"),
    (
        lambda: cl.functional.max_pool2d(np.zeros((1, 0, 4, 4)), 2),
        ValueError,
        r"max_pool2d: input has an empty",
    ),
    (
        lambda: cl.functional.max_pool2d(X4 > 0, 2),
        TypeError,
        r"max_pool2d: input must be a floating-point or ",
    ),
    (
        lambda: cl.functional.avg_pool2d(X4, 3, padding=2),
        ValueError,
        "avg_pool2d: padding must be at most half",
    ),
    (lambda: cl.functional.avg_pool2d(X4, 5), ValueError, r"avg_pool2d: output would be empty"),
    (lambda: cl.functional.avg_pool1d(X4[0], 0), ValueError, r"avg_pool1d: kernel_size must be positive"),
    (
        lambda: cl.functional.avg_pool2d(X4, 2, divisor_override=0),
        ValueError,
        r"avg_pool2d: divisor_override must be non-zero. Received: divisor_override=0",
    ),
    (lambda: cl.functional.avg_pool2d(X4, 2, divisor_override=1.5), TypeError, "divisor_override"),
    (
        lambda: cl.functional.adaptive_avg_pool2d(X4, 0),
        ValueError,
        r"adaptive_avg_pool2d: output_size must be positive. Received: output_size=0",
    ),
    (lambda: cl.functional.adaptive_avg_pool2d(X4, (2, 2, 2)), TypeError, "adaptive_avg_pool2d: output_size"),
    (
        lambda: cl.functional.adaptive_avg_pool2d(X4.astype(np.int64), 2),
        TypeError,
        r"adaptive_avg_pool2d: input must be a floating-point tensor",
    ),
    (lambda: cl.functional.adaptive_max_pool1d(X4, 2), ValueError, r"adaptive_max_pool1d: input must be 2-D"),
    (lambda: cl.functional.adaptive_max_pool3d(X4, None), TypeError, "adaptive_max_pool3d: output_size"),
]


@pytest.mark.parametrize("call, error, message", BAD)
def test_bad_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()

"""The speed paths give the same results as the plain paths.

* flat-buffer optimizer steps (SGD with momentum, Adam) against the per-parameter
  update, bitwise, over many steps, every option, and across ``load_state_dict``;
* cached convolution geometry and pooling windows: same outputs, and bad
  arguments still raise on every call (failures are not cached);
* ``no_grad`` as a context manager and as a (recursive) decorator.
"""

from __future__ import annotations

import numpy as np
import pytest

import convlens as cl
from convlens import functional as F
from convlens import optim


def _params(rng: np.random.Generator, dtype=np.float32) -> list[cl.Tensor]:
    shapes = [(6, 1, 5, 5), (6,), (16, 6, 3, 3), (16,), (10, 40), (10,)]
    return [cl.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def _per_parameter(opt: optim.Optimizer) -> optim.Optimizer:
    """Force the per-parameter path (the reference)."""
    opt._flat = lambda group, names: None  # type: ignore[method-assign]
    return opt


OPTIONS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "dampening": 0.3, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "betas": (0.8, 0.95)}),
    ("Adam", {"lr": 0.01, "maximize": True, "eps": 1e-3}),
]


@pytest.mark.parametrize(("name", "kwargs"), OPTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_optimizer_steps_equal_per_parameter_steps(name, kwargs, dtype):
    for seed in range(5):
        rng = np.random.default_rng(seed)
        fast_params = _params(rng, dtype)
        ref_params = [cl.tensor(p.data.copy(), requires_grad=True) for p in fast_params]
        fast = getattr(optim, name)(fast_params, **kwargs)
        ref = _per_parameter(getattr(optim, name)(ref_params, **kwargs))
        arrays = [p.data for p in fast_params]
        for step in range(12):
            grads = [rng.standard_normal(p.shape).astype(dtype) for p in fast_params]
            for p, q, g in zip(fast_params, ref_params, grads, strict=True):
                p.grad, q.grad = g.copy(), g.copy()
            if step == 6:  # resume both from each other's state: the flat path adopts it
                fast.load_state_dict(ref.state_dict())
            fast.step()
            ref.step()
        for p, q, a in zip(fast_params, ref_params, arrays, strict=True):
            assert p.data is a  # updated in place
            assert p.data.dtype == dtype
            np.testing.assert_array_equal(p.data, q.data)
        buffer = "exp_avg" if name == "Adam" else "momentum_buffer"
        assert all(fast.state[id(p)][buffer].base is not None for p in fast_params)  # flat path ran
        fast_state, ref_state = fast.state_dict()["state"], ref.state_dict()["state"]
        assert fast_state.keys() == ref_state.keys()
        for key, values in ref_state.items():
            for k, v in values.items():
                np.testing.assert_array_equal(fast_state[key][k], v)


def test_flat_optimizer_falls_back_when_a_gradient_is_missing():
    rng = np.random.default_rng(0)
    params = _params(rng)
    opt = optim.Adam(params, lr=0.1)
    for step in range(4):
        for i, p in enumerate(params):
            p.grad = None if (step == 2 and i == 1) else rng.standard_normal(p.shape).astype(np.float32)
        opt.step()
    steps = [opt.state[id(p)]["step"] for p in params]
    assert steps == [4, 3, 4, 4, 4, 4]
    saved = opt.state_dict()  # copies, not views of the flat buffers
    before = saved["state"][0]["exp_avg"].copy()
    for p in params:
        p.grad = np.ones(p.shape, np.float32)
    opt.step()
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], before)


def test_conv_geometry_cache_same_results_and_errors_every_call():
    rng = np.random.default_rng(1)
    for _ in range(30):
        n, c, o, k = (int(v) for v in rng.integers(1, 4, size=4))
        size = int(rng.integers(k + 2, 9))
        x = rng.standard_normal((n, c, size, size)).astype(np.float32)
        w = rng.standard_normal((o, c, k, k)).astype(np.float32)
        stride, padding = int(rng.integers(1, 3)), int(rng.integers(0, 2))
        first = F.conv2d(x, w, None, stride, padding).data
        again = F.conv2d(x, w, None, (stride, stride), [padding, padding]).data  # list: uncached
        third = F.conv2d(x, w, None, stride, padding).data
        np.testing.assert_array_equal(first, again)
        np.testing.assert_array_equal(first, third)
    x, w = np.zeros((1, 2, 6, 6), np.float32), np.zeros((3, 2, 3, 3), np.float32)
    F.conv2d(x, w, stride=1)
    for _ in range(2):  # a bool equals 1 but is refused, cached or not
        with pytest.raises(TypeError, match="stride"):
            F.conv2d(x, w, stride=True)
        with pytest.raises(ValueError, match="channels"):
            F.conv2d(np.zeros((1, 3, 6, 6), np.float32), w)


def test_pool_window_cache_same_results_and_errors_every_call():
    rng = np.random.default_rng(2)
    for _ in range(30):
        x = rng.standard_normal((2, 3, int(rng.integers(4, 9)), int(rng.integers(4, 9)))).astype(np.float32)
        k = int(rng.integers(1, 4))
        a = F.max_pool2d(x, k).data
        b = F.max_pool2d(x, [k, k]).data
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, F.max_pool2d(x, k).data)
    x = np.zeros((1, 1, 4, 4), np.float32)
    F.max_pool2d(x, 2)
    for _ in range(2):
        with pytest.raises(TypeError, match="kernel_size"):
            F.max_pool2d(x, True)
        with pytest.raises(ValueError, match="padding"):
            F.max_pool2d(x, 2, padding=2)


def test_no_grad_context_and_recursive_decorator():
    x = cl.tensor([1.0, 2.0], requires_grad=True)
    with cl.no_grad():
        assert not (x * 2).requires_grad
        with cl.enable_grad():
            assert (x * 2).requires_grad
        assert not cl.is_grad_enabled()
    assert cl.is_grad_enabled()

    @cl.no_grad()
    def depth(n: int) -> bool:
        assert not cl.is_grad_enabled()
        return n == 0 or depth(n - 1)

    assert depth(3) and cl.is_grad_enabled()
    with pytest.raises(ZeroDivisionError), cl.no_grad():
        1 / 0  # noqa: B018
    assert cl.is_grad_enabled()


def test_split_k_weight_gradient_matches_one_gemm():
    """The split-K weight-gradient GEMM equals one matmul (float64, random shapes both sides of
    the threshold), and a LeNet-first-layer convolution's weight/bias gradients match PyTorch."""
    import torch

    from convlens.engines._columns import split_k_matmul
    from convlens.engines.tuning import TUNING

    rng = np.random.default_rng(7)
    worst = 0.0
    above = TUNING.split_k_above
    for _ in range(20):
        g, m, n = int(rng.integers(1, 3)), int(rng.integers(1, 30)), int(rng.integers(1, 17))
        k = int(rng.choice([8, 100, above + TUNING.split_k_parts, above + 3]))
        a = rng.standard_normal((g, m, k))
        b = rng.standard_normal((g, n, k)).swapaxes(1, 2)  # a transposed view, like the grad rows
        expected = np.matmul(a, b)
        worst = max(worst, float(np.abs(split_k_matmul(a, b) - expected).max()))
    assert worst < 1e-9
    x = rng.standard_normal((32, 1, 28, 28)).astype(np.float32)  # K = 32 * 28 * 28 > threshold
    w = rng.standard_normal((6, 1, 5, 5)).astype(np.float32)
    bias = rng.standard_normal(6).astype(np.float32)
    probe = rng.standard_normal((32, 6, 28, 28)).astype(np.float32)
    wt, bt = cl.tensor(w, requires_grad=True), cl.tensor(bias, requires_grad=True)
    with cl.backend.force("tap-major"), cl.backend.record() as ran:  # the engine that splits K
        F.conv2d(x, wt, bt, padding=2).backward(probe)
    assert ran == [("conv", "tap-major")]
    tw, tb = torch.from_numpy(w).requires_grad_(), torch.from_numpy(bias).requires_grad_()
    torch.nn.functional.conv2d(torch.from_numpy(x), tw, tb, padding=2).backward(torch.from_numpy(probe))
    for ours, theirs in ((wt.grad, tw.grad), (bt.grad, tb.grad)):
        ours = np.asarray(getattr(ours, "data", ours))
        assert np.abs(ours - theirs.numpy()).max() / np.abs(theirs.numpy()).max() < 1e-5

"""The fused LeNet block ``max_pool2d(relu(conv2d(x)), 2)`` and ``nn.fuse``.

``conv2d_relu_max_pool2d`` (``convlens.engines.fused``): with numba, a direct-engine
convolution pools as it computes and its backward scatters the pooled gradient straight
into the weight gradient; a batch-inner convolution pools its ``(O, *out, N)`` GEMM output
and scatters the pooled gradient back into that layout. Both are forced through their
convolution engine and checked against the three ops one after the other on the reference
backend and against PyTorch, on random shapes, paddings, dilations and odd sizes, with many
ties (integer-valued inputs) and NaNs. ``nn.fuse`` is checked to fuse exactly the blocks
it should, keep keys, config, parameters and optimizers, and agree with the unfused model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import relative_error

import convlens as cl
from convlens import functional as F
from convlens import nn
from convlens.engines.fused import conv2d_relu_max_pool2d

NUMBA = cl.backend.numba_available()
MODES = ("zeros", "reflect", "replicate", "circular")
FUSED = {"direct": "direct-relu-pool", "batch-inner": "batch-inner-relu-pool"}


def random_case(rng: np.random.Generator, ties: bool, engine: str = "direct") -> dict:
    """Direct: 1-3 input channels, stride 1. Batch-inner: 4-12 channels, groups, strides, N >= 2."""
    inner = engine == "batch-inner"
    groups = int(rng.choice([1, 2])) if inner else 1
    c_in = groups * int(rng.integers(4 // groups, 7)) if inner else int(rng.integers(1, 4))
    c_out = groups * int(rng.integers(1, 5))
    stride = tuple(int(v) for v in rng.integers(1, 3, size=2)) if inner else (1, 1)
    kernel = tuple(int(k) for k in rng.integers(1, 6, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = tuple(int(v) for v in rng.integers(0, 3, size=2))
    spans = [dl * (k - 1) for k, dl in zip(kernel, dilation, strict=True)]
    sizes = [
        span + int(rng.integers(max(2 * s, p + 1), 12))
        for span, p, s in zip(spans, padding, stride, strict=True)
    ]
    n = int(rng.integers(2 if inner else 1, 5))
    draw = (lambda shape: rng.integers(-2, 3, size=shape).astype(float)) if ties else rng.standard_normal
    return {
        "x": draw((n, c_in, *sizes)),
        "w": draw((c_out, c_in // groups, *kernel)),
        "b": draw((c_out,)) if rng.random() < 0.8 else None,
        "kwargs": {
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "groups": groups,
            "padding_mode": str(rng.choice(MODES)),
        },
    }


def run(case: dict, dtype, fused: bool) -> dict:
    x = cl.tensor(case["x"].astype(dtype), requires_grad=True)
    w = cl.tensor(case["w"].astype(dtype), requires_grad=True)
    b = None if case["b"] is None else cl.tensor(case["b"].astype(dtype), requires_grad=True)
    if fused:
        out = conv2d_relu_max_pool2d(x, w, b, **case["kwargs"])
    else:
        out = F.max_pool2d(F.relu(F.conv2d(x, w, b, **case["kwargs"])), 2)
    probe = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
    out.backward(probe)
    return {"out": out.data, "x": x.grad, "w": w.grad, "b": None if b is None else b.grad, "probe": probe}


def torch_block(case: dict, x):
    k = dict(case["kwargs"])
    mode = k.pop("padding_mode")
    if mode != "zeros":
        x = TF.pad(x, [p for p in reversed(k["padding"]) for _ in range(2)], mode=mode)
        k["padding"] = 0
    b = None if case["b"] is None else torch.from_numpy(case["b"]).requires_grad_()
    w = torch.from_numpy(case["w"]).requires_grad_()
    return TF.max_pool2d(TF.relu(TF.conv2d(x, w, b, **k)), 2), w, b


def run_torch(case: dict, probe: np.ndarray) -> dict:
    x = torch.from_numpy(case["x"]).requires_grad_()
    out, w, b = torch_block(case, x)
    out.backward(torch.from_numpy(probe.astype(np.float64)))
    grads = {"x": x.grad.numpy(), "w": w.grad.numpy(), "b": None if b is None else b.grad.numpy()}
    return {"out": out.detach().numpy(), **grads}


@pytest.mark.skipif(not NUMBA, reason="numba not installed")
@pytest.mark.parametrize("engine", ["direct", "batch-inner"])
@pytest.mark.parametrize("ties", [False, True])
def test_fused_engines_match_unfused_and_torch(ties, engine):
    rng = np.random.default_rng(40 + ties + 2 * (engine == "direct"))
    for i in range(40):
        case = random_case(rng, ties, engine)
        dtype, tolerance = (np.float64, 1e-10) if i % 2 else (np.float32, 1e-5)
        with cl.backend.use("numba"), cl.backend.force(engine), cl.backend.record() as ran:
            fused = run(case, dtype, fused=True)
        assert ran == [("conv", engine), ("conv_relu_max_pool2d", FUSED[engine])]
        with cl.backend.use("reference"):
            unfused = run(case, dtype, fused=False)
        expected = run_torch(case, fused["probe"])
        for key in ("out", "x", "w", "b"):
            if expected[key] is None:
                assert fused[key] is None
                continue
            assert relative_error(fused[key], unfused[key]) < tolerance, (i, key, "vs unfused")
            assert relative_error(fused[key], expected[key]) < tolerance, (i, key, "vs torch")


@pytest.mark.skipif(not NUMBA, reason="numba not installed")
def test_fused_block_nan_like_torch():
    """A NaN in the input makes NaN outputs exactly where PyTorch's (NaN wins the max, ReLU keeps it)."""
    rng = np.random.default_rng(3)
    for i in range(20):
        engine = "batch-inner" if i % 2 else "direct"
        case = random_case(rng, ties=True, engine=engine)
        x = case["x"]
        x.reshape(-1)[rng.integers(0, x.size, size=2)] = np.nan
        with cl.backend.use("numba"), cl.backend.force(engine), cl.backend.record() as ran:
            fused = conv2d_relu_max_pool2d(
                cl.tensor(x, requires_grad=True), case["w"], case["b"], **case["kwargs"]
            )
        assert ("conv_relu_max_pool2d", FUSED[engine]) in ran
        expected = torch_block(case, torch.from_numpy(x))[0].detach().numpy()
        np.testing.assert_array_equal(np.isnan(fused.data), np.isnan(expected))
        finite = ~np.isnan(expected)
        np.testing.assert_allclose(fused.data[finite], expected[finite], rtol=1e-10, atol=1e-10)


def test_other_engines_run_the_three_ops():
    """Elsewhere (the NumPy backend, other convolution engines, float16) the block is the reference:
    the convolution on its chosen engine, then relu_max_pool2d."""
    rng = np.random.default_rng(5)
    case = random_case(rng, ties=False, engine="batch-inner")
    for backend, force, dtype in (("numpy", "batch-inner", np.float64), ("numba", "tap-major", np.float64)):
        if backend == "numba" and not NUMBA:
            continue
        with cl.backend.use(backend), cl.backend.force(force), cl.backend.record() as ran:
            fused = run(case, dtype, fused=True)
        assert ran[:2] == [("conv", force), ("conv_relu_max_pool2d", "reference")]
        with cl.backend.use("reference"):
            unfused = run(case, dtype, fused=False)
        assert relative_error(fused["w"], unfused["w"]) < 1e-12
    half = {k: v.astype(np.float16) if isinstance(v, np.ndarray) else v for k, v in case.items()}
    with cl.backend.record() as ran:
        out = conv2d_relu_max_pool2d(half["x"], half["w"], half["b"], **case["kwargs"])
    assert out.dtype == np.float16 and ("conv_relu_max_pool2d", "reference") in ran


@pytest.mark.skipif(not NUMBA, reason="numba not installed")
def test_forcing_a_fused_engine_where_it_does_not_apply_raises():
    x, w = np.ones((2, 8, 6, 6)), np.ones((3, 8, 3, 3))  # many channels: the convolution is not direct
    with (
        cl.backend.force("direct-relu-pool"),
        pytest.raises(ValueError, match="direct-relu-pool.*conv engine"),
    ):
        conv2d_relu_max_pool2d(x, w)
    with cl.backend.force("batch-inner-relu-pool"), pytest.raises(ValueError, match="at least 2x2"):
        conv2d_relu_max_pool2d(np.ones((2, 8, 3, 3)), np.ones((1, 8, 3, 3)))  # conv: batch-inner, 1x1


def lenet_like() -> nn.Sequential:
    cl.nn.init.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Sequential(nn.ReLU(), nn.MaxPool2d(3, stride=1)),  # nested: ReLU -> MaxPool fuses alone
        nn.Flatten(),
        nn.Linear(16 * 3 * 3, 10),
    )


def test_fuse_replaces_the_blocks_and_keeps_keys_config_and_parameters():
    model, plain = lenet_like(), lenet_like()
    params = list(model.parameters())
    keys, config = list(model.state_dict()), model.get_config()
    assert nn.fuse(model) is model
    assert nn.fused_blocks(model) == ["0", "3", "6.0"]
    assert [type(m).__name__ for m in model][:3] == ["ConvReLUMaxPool2d", "FusedAway", "FusedAway"]
    assert isinstance(model[1], nn.Identity)
    assert list(model.state_dict()) == keys and model.get_config() == config
    assert all(p is q for p, q in zip(model.parameters(), params, strict=True))
    assert model.output_shape((1, 28, 28)) == plain.output_shape((1, 28, 28)) == (10,)
    nn.fuse(model)  # again: nothing left to fuse
    assert nn.fused_blocks(model) == ["0", "3", "6.0"]
    rebuilt = nn.from_config(model.get_config())  # a checkpoint of the fused model: the unfused one
    assert nn.fused_blocks(rebuilt) == [] and type(rebuilt[0]) is nn.Conv2d
    assert rebuilt.load_state_dict(model.state_dict()) == ([], [])


def test_fuse_skips_hooked_blocks_and_other_pools():
    model = lenet_like()
    model[4].register_forward_hook(lambda module, args, output: None)
    odd = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(2, 2, 1))
    nn.fuse(model)
    nn.fuse(odd)
    assert nn.fused_blocks(model) == ["0", "6.0"]  # the second block's ReLU is watched
    assert type(model[3]) is nn.Conv2d and type(model[4]) is nn.ReLU
    assert nn.fused_blocks(odd) == ["1"]  # ceil_mode: only ReLU -> MaxPool2d
    assert type(odd[0]) is nn.Conv2d and type(odd[1]).__name__ == "ReLUMaxPool2d"


@pytest.mark.parametrize("backend", ["numpy", "numba", "reference"])
def test_fused_model_trains_like_the_unfused_one(backend):
    """Same losses and parameters over a few SGD steps; the optimizer was built before fusing."""
    if backend == "numba" and not NUMBA:
        pytest.skip("numba not installed")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    models = [lenet_like(), lenet_like()]
    optimizers = [cl.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in models]
    nn.fuse(models[1])
    losses: list[list[float]] = [[], []]
    with cl.backend.use(backend):
        for _ in range(4):
            for model, opt, trace in zip(models, optimizers, losses, strict=True):
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                trace.append(loss.item())
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert relative_error(p.data, q.data) < 1e-5


def test_unfuse_gives_back_the_very_modules_and_parameters():
    cl.manual_seed(3)
    model = cl.models.lenet5()
    before = [(name, type(m), m) for name, m in model.named_modules()]
    params = [id(p) for p in model.parameters()]
    nn.unfuse(nn.fuse(model))
    assert [(name, type(m), m) for name, m in model.named_modules()] == before
    assert [id(p) for p in model.parameters()] == params


def test_fit_trains_fused_reports_it_and_hands_the_model_back_unfused():
    rng = np.random.default_rng(11)
    images = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 64)
    batches = [(images[i : i + 16], labels[i : i + 16]) for i in range(0, 64, 16)]
    results = {}
    for fuse in (False, True):
        cl.manual_seed(5)
        model = cl.models.lenet5()
        lines: list[str] = []
        with cl.backend.record() as ran:
            history = cl.train.fit(
                model,
                batches,
                optimizer=cl.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                epochs=2,
                progress=False,
                verbose=True,
                log=lines.append,
                fuse=fuse,
            )
        assert nn.fused_blocks(model) == []  # handed back as given
        assert ("conv_relu_max_pool2d" in {family for family, _ in ran}) is fuse
        assert any("fused block" in line for line in lines) is fuse
        results[fuse] = (history.train_loss[-1], model.state_dict())
    assert results[True][0] == pytest.approx(results[False][0], rel=1e-5)
    for key, value in results[False][1].items():
        np.testing.assert_allclose(results[True][1][key], value, rtol=1e-4, atol=1e-6)

"""nn layers against torch.nn with weights copied key by key through state_dict."""

from __future__ import annotations

import json
import math
from collections import OrderedDict

import numpy as np
import pytest
from conftest import relative_error, to_torch, torch

import convlens as cl
from convlens import nn

tnn = torch.nn
WORST: dict[str, float] = {}


def copy_weights(ours: nn.Module, theirs) -> None:
    """Copy our state into the torch module key by key; the key order must be the same."""
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict()), (list(state), list(theirs.state_dict()))
    theirs.load_state_dict(OrderedDict((k, torch.from_numpy(v.copy())) for k, v in state.items()))


def compare(
    ours: nn.Module,
    theirs,
    shape: tuple[int, ...],
    rng: np.random.Generator,
    dtype=np.float64,
    tol: float = 1e-10,
    label: str = "",
) -> None:
    """Forward, input gradient and parameter gradients of ours vs torch."""
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours.to(dtype)
    copy_weights(ours, theirs)
    x = rng.standard_normal(shape).astype(dtype)
    xt = to_torch(x, requires_grad=True)
    xo = cl.tensor(x, requires_grad=True)
    out = ours(xo)
    out_t = theirs(xt)
    assert out.dtype == dtype
    probe = rng.standard_normal(out.shape).astype(dtype)
    out.backward(probe)
    out_t.backward(to_torch(probe))
    errors = [relative_error(out.data, out_t.detach().numpy()), relative_error(xo.grad, xt.grad.numpy())]
    named_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        errors.append(relative_error(p.grad, named_t[name].grad.numpy()))
    worst = max(errors)
    key = f"{label or type(ours).__name__} {np.dtype(dtype).name}"
    WORST[key] = max(WORST.get(key, 0.0), worst)
    assert worst < tol, f"{key}: relative error {worst:.3g} for {ours!r} on {shape}"
    assert out.shape[1:] == ours.output_shape(shape[1:]), (out.shape, ours.output_shape(shape[1:]))
    for name, buf in ours.named_buffers():
        assert relative_error(buf.data, dict(theirs.named_buffers())[name].numpy()) < tol


DTYPES = [(np.float64, 1e-10), (np.float32, 2e-5)]


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv_matches_torch(dims, dtype, tol):
    rng = np.random.default_rng(dims)
    classes = {1: (nn.Conv1d, tnn.Conv1d), 2: (nn.Conv2d, tnn.Conv2d), 3: (nn.Conv3d, tnn.Conv3d)}
    ours_cls, torch_cls = classes[dims]
    for _ in range(8 if dims < 3 else 4):
        groups = int(rng.choice([1, 2]))
        cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        k = int(rng.integers(1, 4))
        mode = str(rng.choice(["zeros", "reflect", "replicate", "circular"]))
        same = bool(rng.integers(0, 2))
        kwargs = {
            "stride": 1 if same else int(rng.integers(1, 3)),
            "padding": "same" if same else int(rng.integers(0, k)),
            "dilation": int(rng.integers(1, 3)),
            "groups": groups,
            "bias": bool(rng.integers(0, 2)),
            "padding_mode": mode,
        }
        size = (5, 6, 7)[:dims] if dims < 3 else (5, 5, 6)
        ours, theirs = ours_cls(cin, cout, k, **kwargs), torch_cls(cin, cout, k, **kwargs)
        compare(ours, theirs, (2, cin, *size), rng, dtype, tol)


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_conv_transpose2d_matches_torch(dtype, tol):
    rng = np.random.default_rng(5)
    for _ in range(8):
        groups = int(rng.choice([1, 2]))
        cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        stride, dilation = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        kwargs = {
            "stride": stride,
            "padding": int(rng.integers(0, 2)),
            "dilation": dilation,
            "groups": groups,
            "output_padding": int(rng.integers(0, max(stride, dilation))),
            "bias": bool(rng.integers(0, 2)),
        }
        ours, theirs = nn.ConvTranspose2d(cin, cout, 3, **kwargs), tnn.ConvTranspose2d(cin, cout, 3, **kwargs)
        compare(ours, theirs, (2, cin, 4, 5), rng, dtype, tol)


@pytest.mark.parametrize("dtype,tol", DTYPES)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_pooling_matches_torch(dims, dtype, tol):
    rng = np.random.default_rng(10 + dims)
    size = (7, 8, 6)[:dims]
    for _ in range(6):
        k = int(rng.integers(1, 4))
        stride = None if rng.integers(0, 2) else int(rng.integers(1, 3))
        pad = int(rng.integers(0, k // 2 + 1))
        ceil = bool(rng.integers(0, 2))
        dil = int(rng.integers(1, 3))
        ours = getattr(nn, f"MaxPool{dims}d")(k, stride, pad, dil, ceil_mode=ceil)
        theirs = getattr(tnn, f"MaxPool{dims}d")(k, stride, pad, dil, ceil_mode=ceil)
        compare(ours, theirs, (2, 3, *size), rng, dtype, tol)
        include = bool(rng.integers(0, 2))
        ours = getattr(nn, f"AvgPool{dims}d")(k, stride, pad, ceil_mode=ceil, count_include_pad=include)
        theirs = getattr(tnn, f"AvgPool{dims}d")(k, stride, pad, ceil_mode=ceil, count_include_pad=include)
        compare(ours, theirs, (2, 3, *size), rng, dtype, tol)


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_adaptive_pooling_matches_torch(dtype, tol):
    rng = np.random.default_rng(20)
    for out in [1, 3, (2, 5), (None, 2), (4, None)]:
        for ours, theirs in [
            (nn.AdaptiveAvgPool2d(out), tnn.AdaptiveAvgPool2d(out)),
            (nn.AdaptiveMaxPool2d(out), tnn.AdaptiveMaxPool2d(out)),
        ]:
            compare(ours, theirs, (2, 3, 7, 9), rng, dtype, tol)


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_linear_activations_flatten_match_torch(dtype, tol):
    rng = np.random.default_rng(30)
    for bias in (True, False):
        compare(nn.Linear(5, 3, bias=bias), tnn.Linear(5, 3, bias=bias), (4, 5), rng, dtype, tol)
        compare(nn.Linear(5, 3, bias=bias), tnn.Linear(5, 3, bias=bias), (2, 3, 5), rng, dtype, tol)
    pairs = [
        (nn.ReLU(), tnn.ReLU()),
        (nn.Tanh(), tnn.Tanh()),
        (nn.Sigmoid(), tnn.Sigmoid()),
        (nn.Softmax(1), tnn.Softmax(1)),
        (nn.LogSoftmax(-1), tnn.LogSoftmax(-1)),
        (nn.Flatten(), tnn.Flatten()),
        (nn.Flatten(2), tnn.Flatten(2)),
        (nn.Identity(), tnn.Identity()),
        (nn.Dropout(0.3).eval(), tnn.Dropout(0.3).eval()),
    ]
    for ours, theirs in pairs:
        compare(ours, theirs, (2, 3, 4, 5), rng, dtype, tol, label=type(ours).__name__)


def test_scaled_tanh():
    x = np.linspace(-3, 3, 13)
    y = nn.ScaledTanh()(cl.tensor(x)).data
    np.testing.assert_allclose(y, 1.7159 * np.tanh(2 * x / 3), rtol=1e-14)
    np.testing.assert_allclose(nn.ScaledTanh()(cl.tensor(np.array([1.0]))).data, [1.0], atol=2e-4)


def test_dropout_training_scales_and_zeros():
    nn.init.manual_seed(0)
    x = np.ones((200, 50), np.float32)
    layer = nn.Dropout(0.25)
    y = layer(cl.tensor(x)).data
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.03
    assert np.array_equal(layer.eval()(cl.tensor(x)).data, x)


@pytest.mark.parametrize("dtype,tol", DTYPES)
def test_batchnorm2d_train_eval_running_stats_match_torch(dtype, tol):
    rng = np.random.default_rng(40)
    worst = 0.0

    def check(actual, expected, what):
        nonlocal worst
        error = relative_error(actual, expected)
        worst = max(worst, error)
        assert error < tol, what

    configs = [
        {},
        {"momentum": None},
        {"affine": False},
        {"momentum": 0.3, "eps": 1e-3},
        {"track_running_stats": False},
    ]
    for kwargs in configs:
        ours, theirs = nn.BatchNorm2d(3, **kwargs).to(dtype), tnn.BatchNorm2d(3, **kwargs)
        theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
        if ours.affine:  # non-trivial affine parameters
            ours.weight.data[...] = rng.uniform(0.5, 1.5, 3)
            ours.bias.data[...] = rng.standard_normal(3)
        copy_weights(ours, theirs)
        for step in range(4):
            shape = (int(rng.integers(2, 5)), 3, 4, 5)
            x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
            for mode in ("train", "eval") if step % 2 else ("train",):
                getattr(ours, mode)()
                getattr(theirs, mode)()
                xo, xt = cl.tensor(x, requires_grad=True), to_torch(x, requires_grad=True)
                out, out_t = ours(xo), theirs(xt)
                probe = rng.standard_normal(shape).astype(dtype)
                out.backward(probe)
                out_t.backward(to_torch(probe))
                check(out.data, out_t.detach().numpy(), "output")
                check(xo.grad, xt.grad.numpy(), "input gradient")
                for name, p in ours.named_parameters():
                    check(p.grad, dict(theirs.named_parameters())[name].grad.numpy(), name)
                    p.grad = None
                theirs.zero_grad()
            theirs_state = theirs.state_dict()
            for key, value in ours.state_dict().items():
                check(value, theirs_state[key].numpy(), key)
    WORST[f"BatchNorm2d {np.dtype(dtype).name}"] = worst


def test_batch_norm_functional_gradcheck():
    from conftest import gradcheck

    from convlens import functional as F

    rng = np.random.default_rng(41)
    x, w, b = rng.standard_normal((3, 2, 2, 3)), rng.uniform(0.5, 2, 2), rng.standard_normal(2)
    for training in (True, False):
        rm, rv = rng.standard_normal(2), rng.uniform(0.5, 2, 2)
        gradcheck(
            lambda x, w, b, t=training, m=rm, v=rv: F.batch_norm(x, m.copy(), v.copy(), w, b, t), x, w, b
        )


def test_init_bounds_and_seed():
    nn.init.manual_seed(123)
    conv = nn.Conv2d(3, 64, 5)
    bound = 1 / math.sqrt(3 * 25)
    for p in (conv.weight, conv.bias):
        assert p.dtype == np.float32 and np.abs(p.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.95 * bound  # uniform fills the range
    assert abs(conv.weight.data.std() - bound / math.sqrt(3)) < 0.05 * bound
    lin = nn.Linear(100, 30)
    assert np.abs(lin.weight.data).max() <= 0.1 and np.abs(lin.bias.data).max() <= 0.1
    tconv = nn.ConvTranspose2d(4, 6, 3, groups=2)  # fan_in = C_out/groups * 9 (PyTorch's)
    assert np.abs(tconv.weight.data).max() <= 1 / math.sqrt(3 * 9)
    bn = nn.BatchNorm2d(4)
    assert (bn.weight.data == 1).all() and (bn.bias.data == 0).all()
    nn.init.manual_seed(7)
    a = nn.Conv2d(2, 3, 3).state_dict()
    cl_seed = getattr(cl, "manual_seed", nn.manual_seed)
    cl_seed(7)
    b = nn.Conv2d(2, 3, 3).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def _torch_lenet():
    return tnn.Sequential(
        OrderedDict(
            conv1=tnn.Conv2d(1, 6, 5, padding=2),
            relu1=tnn.ReLU(),
            pool1=tnn.MaxPool2d(2),
            conv2=tnn.Conv2d(6, 16, 5),
            relu2=tnn.ReLU(),
            pool2=tnn.MaxPool2d(2),
            flatten=tnn.Flatten(),
            fc1=tnn.Linear(400, 120),
            relu3=tnn.ReLU(),
            fc2=tnn.Linear(120, 84),
            relu4=tnn.ReLU(),
            fc3=tnn.Linear(84, 10),
        )
    )


def test_lenet_state_dict_and_forward_match_torch():
    rng = np.random.default_rng(50)
    ours, theirs = cl.models.lenet5(), _torch_lenet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    compare(ours, theirs, (3, 1, 28, 28), rng, np.float64, 1e-10, label="LeNet-5")
    compare(cl.models.lenet5(), _torch_lenet(), (3, 1, 28, 28), rng, np.float32, 2e-5, label="LeNet-5")
    # torch's state_dict loads into ours directly
    ours = cl.models.lenet5()
    ours.load_state_dict(theirs.state_dict())
    assert np.array_equal(ours.conv1.weight.data, theirs.conv1.weight.detach().numpy().astype(np.float32))


def test_state_dict_with_buffers_order_matches_torch():
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Sequential(nn.Linear(2, 2)))
    theirs = tnn.Sequential(tnn.Conv2d(1, 2, 3), tnn.BatchNorm2d(2), tnn.Sequential(tnn.Linear(2, 2)))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.state_dict()["1.num_batches_tracked"].dtype == np.int64
    assert list(nn.BatchNorm2d(2, track_running_stats=False).state_dict()) == ["weight", "bias"]


def test_load_state_dict_errors():
    model = nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 6, 3), fc=nn.Linear(6, 2)))
    good = model.state_dict()
    bad = nn.Sequential(OrderedDict(conv1=nn.Conv2d(1, 6, 5), fc=nn.Linear(6, 2))).state_dict()
    with pytest.raises(
        RuntimeError,
        match=r"conv1.weight: checkpoint has shape \(6, 1, 5, 5\) but the "
        r"model expects \(6, 1, 3, 3\)",
    ):
        model.load_state_dict(bad)
    partial = OrderedDict(good)
    del partial["fc.bias"]
    partial["extra.weight"] = np.zeros(2)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(partial)
    assert "Missing key(s): fc.bias" in str(info.value) and "Unexpected key(s): extra.weight" in str(
        info.value
    )
    result = model.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["fc.bias"] and result.unexpected_keys == ["extra.weight"]
    model.load_state_dict({k: v.astype(np.float64) + 1 for k, v in good.items()})
    assert model.conv1.weight.dtype == np.float32
    np.testing.assert_allclose(model.conv1.weight.data, good["conv1.weight"] + 1)
    # state_dict is a copy
    state = model.state_dict()
    state["fc.bias"][...] = 99
    assert not (model.fc.bias.data == 99).any()


def test_module_api():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Dropout())
    assert len(model) == 4 and isinstance(model[1], nn.BatchNorm2d) and len(model[1:]) == 3
    assert [type(m).__name__ for m in model] == ["Conv2d", "BatchNorm2d", "ReLU", "Dropout"]
    model.append(nn.Flatten())
    assert len(model) == 5 and list(dict(model.named_children())) == ["0", "1", "2", "3", "4"]
    assert [n for n, _ in model.named_modules()][:3] == ["", "0", "1"]
    assert len(list(model.parameters())) == 4 and all(isinstance(p, nn.Parameter) for p in model.parameters())
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    out = model(np.ones((2, 1, 5, 5), np.float32))
    out.sum().backward()
    assert model[0].weight.grad is not None
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Sequential" and seen[0] == "Conv2d"
    # parameters registered by assignment, removed by reassignment
    m = nn.Module()
    m.w = nn.Parameter(np.zeros(2, np.float32))
    m.register_buffer("count", np.zeros(1))
    assert list(m.state_dict()) == ["w", "count"]
    m.w = None
    assert list(m.state_dict()) == ["count"]
    # hooks
    shapes = []
    handle = model[0].register_forward_hook(lambda mod, inp, out: shapes.append(out.shape))
    model(np.ones((1, 1, 5, 5), np.float32))
    handle.remove()
    model(np.ones((1, 1, 5, 5), np.float32))
    assert shapes == [(1, 2, 3, 3)]


def test_repr_shows_non_default_args():
    assert repr(nn.Conv2d(1, 6, 5, padding=2)) == "Conv2d(1, 6, kernel_size=(5, 5), padding=(2, 2))"
    assert repr(nn.Conv2d(2, 4, 3, stride=2, groups=2, bias=False, padding_mode="reflect", padding=1)) == (
        "Conv2d(2, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), groups=2, bias=False, "
        "padding_mode=reflect)"
    )
    assert repr(nn.Conv1d(1, 2, 3, padding="same")) == "Conv1d(1, 2, kernel_size=(3,), padding=same)"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2)"
    assert repr(nn.AvgPool2d(3, 1, 1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    assert repr(nn.Linear(4, 2)) == "Linear(in_features=4, out_features=2, bias=True)"
    text = repr(nn.Sequential(nn.Conv2d(1, 6, 5), nn.Sequential(nn.ReLU())))
    assert text == (
        "Sequential(\n  (0): Conv2d(1, 6, kernel_size=(5, 5))\n  (1): Sequential(\n    (0): ReLU()\n  )\n)"
    )


def test_config_round_trip():
    layers = [
        nn.Conv1d(2, 4, 3, stride=2, padding_mode="circular", padding=1),
        nn.Conv2d(1, 6, (3, 5), padding="same", bias=False),
        nn.Conv3d(1, 2, 2, dilation=2),
        nn.ConvTranspose2d(3, 6, 3, stride=2, output_padding=1, groups=3),
        nn.MaxPool2d((2, 3), stride=1, ceil_mode=True),
        nn.AvgPool1d(3, count_include_pad=False),
        nn.AdaptiveAvgPool2d((None, 3)),
        nn.AdaptiveMaxPool2d(2),
        nn.Linear(3, 2, bias=False),
        nn.BatchNorm2d(5, momentum=None, affine=False),
        nn.Dropout(0.2),
        nn.Softmax(dim=1),
        nn.Flatten(0, 2),
        nn.Identity(),
        nn.ScaledTanh(),
    ]
    model = nn.Sequential(*layers[:3]).append(nn.Sequential(OrderedDict(inner=layers[3])))
    for module in [*layers, model] + [cl.models.get(n) for n in cl.models.available()]:
        config = json.loads(json.dumps(module.get_config()))
        rebuilt = nn.from_config(config)
        assert type(rebuilt) is type(module) and repr(rebuilt) == repr(module)
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
            k: v.shape for k, v in module.state_dict().items()
        }
    assert model.get_config()["modules"][3][1]["modules"][0][0] == "inner"


def test_output_shape_errors_name_the_problem():
    with pytest.raises(ValueError, match="expects 3 input channels"):
        nn.Conv2d(3, 4, 3).output_shape((1, 8, 8))
    with pytest.raises(ValueError, match="too small"):
        nn.Conv2d(1, 4, 5).output_shape((1, 3, 8))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        nn.MaxPool2d(2).output_shape((4, 4))
    with pytest.raises(ValueError, match="Flatten"):
        nn.Linear(400, 2).output_shape((16, 5, 5))


def test_output_shape_matches_forward_on_random_stacks():
    rng = np.random.default_rng(60)
    for _ in range(10):
        c = int(rng.integers(1, 4))
        layers = [
            nn.Conv2d(
                c, 4, int(rng.integers(1, 4)), stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2))
            ),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=bool(rng.integers(0, 2))),
            nn.ConvTranspose2d(4, 3, 2, stride=2),
            nn.AvgPool2d(2, padding=1),
            nn.AdaptiveAvgPool2d((3, None)),
            nn.Flatten(),
        ]
        model = nn.Sequential(*layers)
        shape = (c, int(rng.integers(8, 14)), int(rng.integers(8, 14)))
        predicted = model.output_shape(shape)
        assert model(rng.standard_normal((2, *shape)).astype(np.float32)).shape == (2, *predicted)


def test_report_worst_errors():
    """Not a check: prints the largest relative error per layer and dtype (run with -s)."""
    for key, value in sorted(WORST.items()):
        print(f"{key:32s} {value:.2e}")

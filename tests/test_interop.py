"""PyTorch in and out: ``to_torch`` / ``from_torch`` round trips give identical weights and the
same outputs, one SGD step in the torch copy equals convlens's, and ``cl.save`` files load
into the torch module with ``load_state_dict(strict=True)``."""

from __future__ import annotations

import zlib
from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import convlens as cl  # noqa: E402
from convlens import nn  # noqa: E402
from convlens.interop import from_torch, to_torch  # noqa: E402


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def every_layer() -> nn.Module:
    model = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(2, 6, 3, padding=1, padding_mode="reflect", groups=2),
            bn=nn.BatchNorm2d(6),
            act=nn.Tanh(),
            up=nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, dilation=1),
            pool=nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
            avg=nn.AvgPool2d(2, count_include_pad=False, padding=1),
            adaptive=nn.AdaptiveAvgPool2d((2, 3)),
            sig=nn.Sigmoid(),
            inner=nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(24, 8), nn.BatchNorm1d(8)),
            relu=nn.ReLU(),
            fc=nn.Linear(8, 3, bias=False),
            out=nn.LogSoftmax(dim=1),
        )
    )
    model.input_shape = (2, 9, 10)
    return model


def one_d_three_d() -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(1, 2, 3, padding="same", padding_mode="circular"),
        nn.MaxPool3d(2),
        nn.AvgPool3d(1),
        nn.Flatten(start_dim=2),
        nn.Conv1d(2, 3, 3, dilation=2, padding_mode="replicate", padding=2),
        nn.MaxPool1d(2),
        nn.AvgPool1d(2, ceil_mode=True),
        nn.AdaptiveMaxPool2d((None, 1)),
        nn.Softmax(dim=1),
    )


MODELS = {
    "lenet5": (lambda: cl.models.get("lenet5"), (1, 28, 28)),
    "lenet5_classic": (lambda: cl.models.get("lenet5-classic"), (1, 32, 32)),
    "lecture_mlp": (lambda: cl.models.get("lecture_mlp"), (1, 100, 100)),
    "every_layer": (every_layer, (2, 9, 10)),
    "one_d_three_d": (one_d_three_d, (1, 4, 6, 6)),
}


def _build(name: str) -> nn.Module:
    cl.manual_seed(7)
    model = MODELS[name][0]()
    for module in model.modules():  # running statistics away from 0 / 1
        if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
            module.running_mean.data[...] = _rng(name).normal(0, 0.3, module.num_features)
            module.running_var.data[...] = _rng(name).uniform(0.5, 2, module.num_features)
    return model


def _input(name: str, batch: int = 5) -> np.ndarray:
    return _rng(name).standard_normal((batch, *MODELS[name][1])).astype(np.float32)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("train", [False, True])
def test_round_trip_weights_and_outputs(name, train):
    model = _build(name).train(train)
    twin = to_torch(model)
    assert twin.training == train
    assert list(twin.state_dict()) == list(model.state_dict())
    x = _input(name)
    if not train:  # Dropout draws differ between the libraries in training mode
        with cl.no_grad():
            expected = model(cl.tensor(x)).data
        with torch.no_grad():
            np.testing.assert_allclose(twin(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-5)
    back = from_torch(twin)
    assert type(back) is type(model) and back.training == train
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], value)
    if not train:
        with cl.no_grad():
            np.testing.assert_array_equal(back.eval()(cl.tensor(x)).data, expected)


@pytest.mark.parametrize("name", ["lenet5", "lenet5_classic", "every_layer"])
def test_one_sgd_step_in_torch_equals_convlens(name):
    model = _build(name).eval()  # eval: no dropout draws, BatchNorm by running statistics
    twin = to_torch(model)
    x, target = _input(name, 6), _rng(name + "t").integers(0, 3, 6)
    loss_fn = getattr(model, "loss", None)
    if loss_fn is not None:  # the classic LeNet-5's MAP criterion, on both sides
        loss = loss_fn(model(cl.tensor(x)), target)
        torch_loss = twin.loss(twin(torch.from_numpy(x)), torch.from_numpy(target))
    else:
        loss = cl.functional.cross_entropy(model(cl.tensor(x)), target)
        torch_loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(target))
    np.testing.assert_allclose(torch_loss.item(), float(loss.data), rtol=1e-5)
    optimizer = cl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    loss.backward()
    torch_loss.backward()
    for (key, p), (torch_key, q) in zip(model.named_parameters(), twin.named_parameters(), strict=True):
        assert key == torch_key
        np.testing.assert_allclose(q.grad.numpy(), p.grad, rtol=1e-4, atol=1e-6, err_msg=key)
    optimizer.step()
    torch_optimizer.step()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(twin.state_dict()[key].numpy(), value, rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.mark.parametrize("name", ["lenet5", "lenet5_classic", "every_layer"])
def test_saved_file_loads_strictly_into_the_torch_module(name, tmp_path):
    from safetensors.torch import load_file

    model = _build(name)
    files = cl.save(model, tmp_path / name)
    twin = to_torch(_build(name))
    for p in twin.parameters():  # make sure the load, not the copy, sets the weights
        torch.nn.init.zeros_(p)
    twin.load_state_dict(load_file(files.weights), strict=True)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(twin.state_dict()[key].numpy(), value)


def test_input_shape_travels_both_ways():
    model = cl.models.get("lenet5")
    twin = to_torch(model)
    assert twin.input_shape == (1, 28, 28)
    assert from_torch(twin).input_shape == (1, 28, 28)


def test_from_torch_names_the_layer_it_cannot_express():
    module = torch.nn.Sequential(OrderedDict(fc=torch.nn.Linear(2, 2), act=torch.nn.GELU()))
    with pytest.raises(TypeError, match=r"'act' \(GELU\)"):
        from_torch(module)
    with pytest.raises(TypeError, match=r"'0' \(MaxPool2d\).*return_indices"):
        from_torch(torch.nn.Sequential(torch.nn.MaxPool2d(2, return_indices=True)))
    with pytest.raises(TypeError, match="divisor_override"):
        from_torch(torch.nn.AvgPool2d(2, divisor_override=3))


def test_to_torch_names_the_layer_it_cannot_express():
    class Twice(nn.Module):
        def forward(self, x):
            return cl.as_tensor(x) * 2

    with pytest.raises(TypeError, match=r"'1' \(Twice\)"):
        to_torch(nn.Sequential(nn.ReLU(), Twice()))


def test_a_torch_trained_model_comes_back():
    """Weights changed in PyTorch are the weights of the model brought back."""
    model = _build("lenet5")
    twin = to_torch(model)
    with torch.no_grad():
        twin.fc3.bias += 1.0
    back = from_torch(twin)
    np.testing.assert_allclose(back.state_dict()["fc3.bias"], model.state_dict()["fc3.bias"] + 1.0, atol=1e-6)

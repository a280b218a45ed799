"""Empty batches and zero-size dimensions behave as in PyTorch: empty results, not errors.

Also: a loss over 0 classes is a clear error, and training on an empty data set is
refused instead of reporting a loss of 0.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import to_torch, torch

import convlens as cl
from convlens import functional as F
from convlens import nn

TF = torch.nn.functional
BACKENDS = ["reference", "numpy"] + (["numba"] if cl.backend.numba_available() else [])


# ------------------------------------------------------------------------ models and layers


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", cl.models.available())
def test_every_model_maps_an_empty_batch_to_an_empty_batch_of_scores(backend, name):
    model = cl.models.get(name)
    x = np.zeros((0, *model.input_shape), np.float32)
    model(cl.tensor(np.ones((2, *model.input_shape), np.float32))).sum().backward()
    trained = [p for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    expected = model(np.zeros((2, *model.input_shape), np.float32)).shape[1:]
    with cl.backend.use(backend):
        model.eval()
        with cl.no_grad():
            assert model(x).shape == (0, *expected)
        model.train()
        inputs = cl.tensor(x, requires_grad=True)
        out = model(inputs)
        assert out.shape == (0, *expected)
        out.sum().backward()  # PyTorch: an empty input gradient, zero parameter gradients
        assert inputs.grad.shape == x.shape
        for parameter in trained:
            assert parameter.grad is not None and not parameter.grad.any()


def test_lenet5_empty_batch_is_0_by_10_like_torch():
    model = cl.models.get("lenet5")
    assert model(np.zeros((0, 1, 28, 28), np.float32)).shape == (0, 10)


def test_empty_batch_through_linear_and_flatten_matches_torch():
    rng = np.random.default_rng(0)
    x = np.zeros((0, 3, 4, 5))
    flat = cl.tensor(x, requires_grad=True).flatten(1)
    assert flat.shape == tuple(torch.flatten(torch.tensor(x), 1).shape) == (0, 60)
    assert nn.Flatten()(x).shape == F.flatten(x).shape == (0, 60)
    assert nn.Flatten(0, 1)(x).shape == tuple(torch.nn.Flatten(0, 1)(torch.tensor(x)).shape) == (0, 4, 5)
    weight, bias = rng.standard_normal((7, 60)), rng.standard_normal(7)
    inputs = cl.tensor(np.zeros((0, 60)), requires_grad=True)
    w = cl.tensor(weight, requires_grad=True)
    b = cl.tensor(bias, requires_grad=True)
    out = F.linear(inputs, w, b)
    tw, tb = to_torch(weight, requires_grad=True), to_torch(bias, requires_grad=True)
    expected = TF.linear(torch.zeros(0, 60, dtype=torch.float64), tw, tb)
    assert out.shape == tuple(expected.shape) == (0, 7)
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_array_equal(w.grad, tw.grad.numpy())  # zeros: no sample contributed
    np.testing.assert_array_equal(b.grad, tb.grad.numpy())
    assert inputs.grad.shape == (0, 60)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize(("shape", "dim"), [((0, 10), 1), ((0, 10), 0), ((3, 0), 1), ((3, 0), 0), ((0,), 0)])
def test_softmax_over_empty_tensors_is_empty_like_torch(name, shape, dim):
    x = cl.tensor(np.zeros(shape, np.float32), requires_grad=True)
    out = getattr(F, name)(x, dim)
    expected = getattr(TF, name)(torch.zeros(shape), dim)
    assert out.shape == tuple(expected.shape) and out.dtype == np.float32
    out.backward(np.zeros(shape, np.float32))
    assert x.grad.shape == shape
    assert getattr(nn, {"softmax": "Softmax", "log_softmax": "LogSoftmax"}[name])(dim)(x).shape == shape


# ------------------------------------------------------------------------ losses


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_of_an_empty_batch_matches_torch(reduction):
    logits = cl.tensor(np.zeros((0, 10)), requires_grad=True)
    target = np.zeros(0, np.int64)
    loss = F.cross_entropy(logits, target, reduction=reduction)
    expected = TF.cross_entropy(
        to_torch(np.zeros((0, 10)), requires_grad=True), torch.tensor(target), reduction=reduction
    )
    assert loss.shape == tuple(expected.shape)
    np.testing.assert_array_equal(loss.data, expected.detach().numpy())  # mean: nan, as torch
    loss.backward(np.ones(loss.shape))
    assert logits.grad.shape == (0, 10)
    soft = F.cross_entropy(np.zeros((0, 10)), np.zeros((0, 10)), reduction=reduction)
    soft_expected = TF.cross_entropy(torch.zeros(0, 10), torch.zeros(0, 10), reduction=reduction)
    np.testing.assert_array_equal(soft.data, soft_expected.numpy())


@pytest.mark.parametrize("op", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize(
    ("shape", "target"),
    [((4, 0), np.zeros(4, np.int64)), ((0,), np.array(0)), ((2, 0, 3), np.zeros((2, 3), np.int64))],
)
def test_a_loss_over_zero_classes_is_a_clear_error(op, shape, target):
    with pytest.raises(
        ValueError, match=rf"^{op}: .*class.* Received: .*{shape[1 if len(shape) > 1 else 0]}"
    ) as info:
        getattr(F, op)(np.zeros(shape, np.float32), target)
    assert "\n" not in str(info.value) and str(shape) in str(info.value)
    if op == "cross_entropy":
        with pytest.raises(ValueError, match="class"):
            F.cross_entropy(np.zeros(shape, np.float32), np.zeros(shape, np.float32))


# ------------------------------------------------------------------------ training


@pytest.mark.parametrize("kind", ["DataLoader", "list", "iterator without len"])
def test_fit_on_an_empty_dataset_is_refused_not_reported_as_loss_0(kind):
    model = cl.models.get("lenet5")
    empty = cl.data.DataLoader((np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)), batch_size=8)
    loader = {"DataLoader": empty, "list": [], "iterator without len": iter([])}[kind]
    optimizer = cl.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="empty") as info:
        cl.train.fit(model, loader, optimizer=optimizer, epochs=1, progress=False)
    assert "\n" not in str(info.value) and "train_loader" in str(info.value)


def test_batch_norm_of_an_empty_batch_in_training_is_empty_and_keeps_the_running_statistics():
    torch = pytest.importorskip("torch")
    ours, theirs = cl.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    ours.train(), theirs.train()
    x = np.zeros((0, 3, 4, 4), np.float32)
    out = ours(cl.tensor(x, requires_grad=True))
    expected = theirs(torch.tensor(x, requires_grad=True))
    out.sum().backward()
    expected.sum().backward()
    assert out.shape == tuple(expected.shape)
    np.testing.assert_array_equal(ours.weight.grad, theirs.weight.grad.numpy())
    np.testing.assert_array_equal(ours.running_mean.data, theirs.running_mean.numpy())
    np.testing.assert_array_equal(ours.running_var.data, theirs.running_var.numpy())
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ours(np.zeros((1, 3, 1, 1), np.float32))

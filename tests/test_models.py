"""The ready-made models: parameter counts, shapes, the classic LeNet-5's pieces and training."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gradcheck, relative_error, to_torch, torch

import convlens as cl
from convlens import models, nn
from convlens.models import C3_CONNECTIONS, DIGIT_BITMAPS, EuclideanRBF, PartialConv2d, Subsampling2d


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    "name,total,weights",
    [
        ("lenet5", 61_706, None),
        ("lecture_cnn", 646_810, 646_500),
        ("lecture_mlp", 1_021_310, 1_021_000),
        ("lenet5-classic", 60_000, None),
    ],
)
def test_parameter_counts(name, total, weights):
    model = models.get(name)
    assert count(model) == total
    if weights is not None:
        assert sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight")) == weights


def test_registry_and_input_shapes():
    assert models.get("lenet5").input_shape == (1, 28, 28)
    assert models.get("lenet5", variant="classic").input_shape == (1, 32, 32)
    assert models.get("lenet5_classic").input_shape == (1, 32, 32)
    assert models.get("lecture_cnn").input_shape == (1, 100, 100)
    with pytest.raises(ValueError, match="unknown model"):
        models.get("alexnet")
    with pytest.raises(ValueError, match="variant"):
        models.lenet5("vintage")


def test_forward_shapes_match_output_shape():
    rng = np.random.default_rng(0)
    for name in ("lenet5", "lenet5-classic", "lecture_mlp"):
        model = models.get(name)
        out = model(rng.standard_normal((2, *model.input_shape)).astype(np.float32))
        assert out.shape == (2, 10) == (2, *model.output_shape(model.input_shape))
    assert models.get("lecture_cnn").output_shape((1, 100, 100)) == (10,)


def test_c3_connection_table_is_table_one():
    sizes = [len(row) for row in C3_CONNECTIONS]
    assert sizes == [3] * 6 + [4] * 9 + [6]
    assert C3_CONNECTIONS[0] == (0, 1, 2) and C3_CONNECTIONS[5] == (5, 0, 1)
    assert C3_CONNECTIONS[6] == (0, 1, 2, 3) and C3_CONNECTIONS[11] == (5, 0, 1, 2)
    assert C3_CONNECTIONS[12:15] == ((0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5))
    # each S2 map feeds 10 C3 maps, as in the paper's table
    assert np.bincount([i for row in C3_CONNECTIONS for i in row]).tolist() == [10] * 6


def test_partial_conv_equals_masked_torch_conv():
    rng = np.random.default_rng(1)
    layer = PartialConv2d(6, 16, 5).to(np.float64)
    full = layer.full_weight().data
    mask = np.zeros((16, 6), bool)
    for o, row in enumerate(C3_CONNECTIONS):
        mask[o, list(row)] = True
    assert (full[~mask] == 0).all() and (full[mask] != 0).all()
    x = rng.standard_normal((2, 6, 9, 9))
    xo = cl.tensor(x, requires_grad=True)
    out = layer(xo)
    wt, bt, xt = to_torch(full, True), to_torch(layer.bias.data, True), to_torch(x, True)
    ref = torch.nn.functional.conv2d(xt, wt, bt)
    probe = rng.standard_normal(out.shape)
    out.backward(probe)
    ref.backward(to_torch(probe))
    assert relative_error(out.data, ref.detach().numpy()) < 1e-12
    assert relative_error(xo.grad, xt.grad.numpy()) < 1e-12
    assert relative_error(layer.weight.grad, wt.grad.numpy()[layer._out_index, layer._in_index]) < 1e-12
    assert relative_error(layer.bias.grad, bt.grad.numpy()) < 1e-12


def test_subsampling_and_rbf_gradcheck():
    rng = np.random.default_rng(2)
    sub = Subsampling2d(3).to(np.float64)
    x = rng.standard_normal((2, 3, 4, 6))

    gradcheck(lambda x: sub(x), x)
    block_sums = x.reshape(2, 3, 2, 2, 3, 2).sum(axis=(3, 5))
    out = sub(x)
    np.testing.assert_allclose(
        out.data, block_sums * sub.weight.data[:, None, None] + sub.bias.data[:, None, None], rtol=1e-12
    )
    probe = rng.standard_normal(out.shape)
    sub.zero_grad()  # gradcheck's backward left gradients behind
    out.backward(probe)
    np.testing.assert_allclose(sub.weight.grad, (probe * block_sums).sum(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(sub.bias.grad, probe.sum(axis=(0, 2, 3)), rtol=1e-12)
    rbf = EuclideanRBF(84, 10).to(np.float64)
    x = rng.standard_normal((3, 84))
    y = rbf(x).data
    np.testing.assert_allclose(y, ((x[:, None, :] - DIGIT_BITMAPS.reshape(10, 84)) ** 2).sum(-1), rtol=1e-12)
    gradcheck(lambda x: rbf(x), rng.standard_normal((2, 84)))


def test_digit_prototypes_are_distinct_pm_one_bitmaps():
    assert DIGIT_BITMAPS.shape == (10, 12, 7)
    assert set(np.unique(DIGIT_BITMAPS)) == {-1.0, 1.0}
    flat = DIGIT_BITMAPS.reshape(10, -1)
    distances = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    assert (distances[~np.eye(10, dtype=bool)] >= 4 * 6).all()  # every pair differs in >= 6 pixels
    model = models.lenet5("classic")
    assert not any(n.startswith("output") for n, _ in model.named_parameters())
    assert "output.prototypes" in model.state_dict()


def test_classic_init_follows_the_paper():
    nn.init.manual_seed(3)
    model = models.lenet5("classic")
    assert np.abs(model.c1.weight.data).max() <= 2.4 / 25
    assert np.abs(model.s2.weight.data).max() <= 2.4 / 4
    assert np.abs(model.c5.weight.data).max() <= 2.4 / 400
    assert np.abs(model.f6.weight.data).max() <= 2.4 / 120
    bounds = 2.4 / model.c3.fan_in[model.c3._out_index]
    assert (np.abs(model.c3.weight.data).max(axis=(1, 2)) <= bounds).all()


def test_classic_loss_is_the_map_criterion_and_predict_is_argmin():
    rng = np.random.default_rng(4)
    model = models.lenet5("classic").to(np.float64)
    scores = -rng.uniform(0, 30, (5, 10))
    target = rng.integers(0, 10, 5)
    y = -scores
    j = model.map_constant
    expected = np.mean(y[np.arange(5), target] + np.log(np.exp(-j) + np.exp(-y).sum(1)))
    assert abs(model.loss(cl.tensor(scores), target).item() - expected) < 1e-12
    gradcheck(lambda s: model.loss(s, target), scores)
    x = rng.standard_normal((4, 1, 32, 32))
    with cl.no_grad():
        distances = -model(x).data
    assert (model.predict(x) == distances.argmin(1)).all()


def test_classic_lenet_trains():
    """A few steps of plain SGD with the MAP loss lower the loss on a fixed batch."""
    nn.init.manual_seed(5)
    rng = np.random.default_rng(5)
    model = models.lenet5("classic")
    x = rng.standard_normal((16, 1, 32, 32)).astype(np.float32)
    target = rng.integers(0, 10, 16)
    losses = []
    for _ in range(12):
        model.zero_grad()
        loss = model.loss(model(x), target)
        loss.backward()
        losses.append(loss.item())
        for p in model.parameters():
            p.data -= 0.01 * p.grad
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0], losses


def test_modern_lenet_trains_and_reloads_from_config():
    nn.init.manual_seed(6)
    rng = np.random.default_rng(6)
    model = models.lenet5()
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    target = rng.integers(0, 10, 16)
    first = None
    for _ in range(15):
        model.zero_grad()
        loss = cl.functional.cross_entropy(model(x), target)
        loss.backward()
        first = loss.item() if first is None else first
        for p in model.parameters():
            p.data -= 0.1 * p.grad
    assert loss.item() < 0.8 * first
    clone = nn.from_config(model.get_config())
    clone.load_state_dict(model.state_dict())
    with cl.no_grad():
        np.testing.assert_array_equal(clone(x).data, model(x).data)

"""A small CNN end to end: autograd vs float64 central differences, and vs PyTorch.

conv2d -> relu -> max_pool2d -> flatten -> linear -> log_softmax / cross_entropy.
Inputs are drawn until every ReLU input is away from 0 and every max-pool
window has a clear winner, so the finite differences never straddle a kink.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gradcheck, relative_error, to_torch, torch

import convlens as cl
from convlens import functional as F

TF = torch.nn.functional
MARGIN = 1e-3  # >> the central-difference step (1e-6) times any input's influence

CONFIGS = [
    # (batch, in_ch, size, out_ch, conv kwargs, classes)
    (2, 1, 6, 3, {"padding": 1}, 4),
    (2, 2, 7, 2, {"stride": 2, "padding": 2}, 3),
    (1, 3, 8, 2, {"padding": 0, "dilation": 2}, 5),
]


def conv_output_side(size, kwargs):
    p, s, d = kwargs.get("padding", 0), kwargs.get("stride", 1), kwargs.get("dilation", 1)
    return (size + 2 * p - d * 2 - 1) // s + 1


def torch_pre_activations(x, w1, b1, kwargs):
    return TF.conv2d(to_torch(x), to_torch(w1), to_torch(b1), **kwargs).numpy()


def kink_free(z):
    """No pre-activation near 0 and no near-tie inside any 2x2 pooling window."""
    if np.min(np.abs(z)) < MARGIN:
        return False
    n, c, h, w = z.shape
    windows = z[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    windows = np.sort(np.maximum(windows, 0).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4), -1)
    winners = windows[..., -1] > 0
    return bool(np.all((windows[..., -1] - windows[..., -2])[winners] > MARGIN))


def draw_network(config, seed):
    batch, cin, size, cout, kwargs, classes = config
    side = conv_output_side(size, kwargs) // 2
    for attempt in range(1000):
        rng = np.random.default_rng(seed * 1000 + attempt)
        x = rng.standard_normal((batch, cin, size, size))
        w1 = rng.standard_normal((cout, cin, 3, 3)) / 3
        b1 = rng.standard_normal(cout) * 0.1
        if kink_free(torch_pre_activations(x, w1, b1, kwargs)):
            w2 = rng.standard_normal((classes, cout * side * side)) / 2
            b2 = rng.standard_normal(classes) * 0.1
            target = rng.integers(0, classes, batch)
            return (x, w1, b1, w2, b2), target
    raise AssertionError("no kink-free draw found")


def cnn(lib, kwargs, head, target):
    def forward(x, w1, b1, w2, b2):
        h = lib.conv2d(x, w1, b1, **kwargs)
        h = lib.relu(h)
        h = lib.max_pool2d(h, 2)
        h = lib.flatten(h, 1) if lib is F else torch.flatten(h, 1)
        logits = lib.linear(h, w2, b2)
        if head == "log_softmax":
            return lib.log_softmax(logits, 1)
        t = target if lib is F else torch.as_tensor(target)
        return lib.cross_entropy(logits, t, label_smoothing=0.1)

    return forward


@pytest.mark.parametrize("head", ["log_softmax", "cross_entropy"])
@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_small_cnn_gradients_match_central_differences(index, head):
    config = CONFIGS[index]
    params, target = draw_network(config, seed=index)
    worst = gradcheck(cnn(F, config[4], head, target), *params, tol=1e-6)
    assert np.isfinite(worst)


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_small_cnn_matches_torch_values_and_gradients(index):
    config = CONFIGS[index]
    params, target = draw_network(config, seed=10 + index)
    for head in ("log_softmax", "cross_entropy"):
        ours = [cl.tensor(p, requires_grad=True) for p in params]
        theirs = [to_torch(p, requires_grad=True) for p in params]
        out = cnn(F, config[4], head, target)(*ours)
        expected = cnn(TF, config[4], head, target)(*theirs)
        probe = np.random.default_rng(index).standard_normal(out.shape)
        out.backward(probe)
        expected.backward(torch.tensor(probe))
        err = relative_error(out.data, expected.detach().numpy())
        for mine, ref in zip(ours, theirs, strict=True):
            err = max(err, relative_error(mine.grad, ref.grad.numpy()))
        assert err < 1e-12, err


def test_float32_cnn_training_step_tracks_torch():
    """A float32 forward/backward stays float32 and within float32 rounding of PyTorch."""
    params, target = draw_network(CONFIGS[0], seed=20)
    params = [p.astype(np.float32) for p in params]
    ours = [cl.tensor(p, requires_grad=True) for p in params]
    theirs = [to_torch(p, requires_grad=True) for p in params]
    loss = cnn(F, CONFIGS[0][4], "cross_entropy", target)(*ours)
    expected = cnn(TF, CONFIGS[0][4], "cross_entropy", target)(*theirs)
    loss.backward()
    expected.backward()
    assert loss.dtype == np.float32
    assert abs(loss.item() - expected.item()) < 1e-5
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine.grad.dtype == np.float32
        assert relative_error(mine.grad, ref.grad.numpy()) < 1e-5

"""nn.Upsample / F.interpolate, nn.ConvTranspose1d/3d and the per-pixel cross-entropy:
exact against PyTorch forward and backward, and against float64 central differences."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from conftest import gradcheck, relative_error, to_torch, torch

import convlens as cl
from convlens import functional as F
from convlens import nn

TF = torch.nn.functional

CASES = [
    # (shape, size, scale_factor, mode, align_corners)
    ((2, 3, 5), 9, None, "nearest", None),
    ((2, 3, 5), None, 2, "nearest", None),
    ((1, 2, 7), 3, None, "nearest", None),
    ((2, 1, 4, 5), (7, 11), None, "nearest", None),
    ((2, 2, 4, 5), None, (2, 3), "nearest", None),
    ((1, 2, 6, 6), None, 1.5, "nearest", None),
    ((1, 1, 2, 3, 4), (3, 5, 6), None, "nearest", None),
    ((2, 3, 5), 8, None, "linear", False),
    ((2, 3, 5), 8, None, "linear", True),
    ((2, 3, 6), 4, None, "linear", False),
    ((2, 2, 4, 5), (7, 9), None, "bilinear", False),
    ((2, 2, 4, 5), (7, 9), None, "bilinear", True),
    ((1, 3, 3, 4), None, 2, "bilinear", False),
    ((1, 3, 5, 4), None, (0.6, 1.7), "bilinear", False),
    ((1, 1, 8, 8), (3, 5), None, "bilinear", True),
    ((1, 1, 1, 5), (1, 3), None, "bilinear", True),
    ((1, 2, 2, 3, 3), (4, 5, 6), None, "trilinear", False),
    ((1, 2, 2, 3, 3), None, 2, "trilinear", True),
]


@pytest.mark.parametrize(("shape", "size", "scale", "mode", "align"), CASES)
def test_interpolate_matches_torch(shape, size, scale, mode, align):
    rng = np.random.default_rng(zlib.crc32(repr((shape, size, scale, mode, align)).encode()))
    x = rng.standard_normal(shape).astype(np.float32)
    ours = cl.tensor(x, requires_grad=True)
    out = F.interpolate(ours, size=size, scale_factor=scale, mode=mode, align_corners=align)
    theirs = to_torch(x, requires_grad=True)
    expected = TF.interpolate(theirs, size=size, scale_factor=scale, mode=mode, align_corners=align)
    assert out.shape == tuple(expected.shape)
    assert relative_error(out.data, expected.detach().numpy()) < 1e-6
    probe = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(probe)
    expected.backward(torch.tensor(probe))
    assert relative_error(ours.grad, theirs.grad.numpy()) < 1e-5


@pytest.mark.parametrize(("shape", "size", "scale", "mode", "align"), CASES[::3])
def test_interpolate_gradcheck(shape, size, scale, mode, align):
    x = np.random.default_rng(0).standard_normal(shape)
    gradcheck(lambda t: F.interpolate(t, size=size, scale_factor=scale, mode=mode, align_corners=align), x)


def test_upsample_layer_matches_torch_and_its_output_shape():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for kwargs in ({"scale_factor": 2}, {"size": (6, 9), "mode": "bilinear", "align_corners": False}):
        layer = nn.Upsample(**kwargs)
        out = layer(x)
        expected = torch.nn.Upsample(**kwargs)(to_torch(x)).numpy()
        assert relative_error(out.data, expected) < 1e-6
        assert layer.output_shape(x.shape[1:]) == out.shape[1:]
    assert nn.from_config(nn.Sequential(nn.Upsample(scale_factor=2)).get_config())(x).shape == (2, 3, 8, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 4, "scale_factor": 2}, "exactly one of size and scale_factor"),
        ({}, "exactly one of size and scale_factor"),
        ({"size": 4, "mode": "cubic"}, "mode must be one of"),
        ({"size": 4, "mode": "linear"}, "needs 1 spatial axes"),
        ({"size": 4, "align_corners": True}, "align_corners applies to the linear modes only"),
        ({"size": (4, 0)}, "size must be a positive int"),
        ({"scale_factor": 0.1}, "the output would be empty"),
    ],
)
def test_interpolate_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F.interpolate(np.zeros((1, 1, 4, 4), np.float32), **kwargs)


@pytest.mark.parametrize(
    ("dims", "kwargs"),
    [
        (1, {"kernel_size": 4, "stride": 2, "padding": 1}),
        (1, {"kernel_size": 3, "stride": 3, "output_padding": 2, "groups": 2}),
        (1, {"kernel_size": 2, "dilation": 3, "bias": False}),
        (3, {"kernel_size": 2, "stride": 2}),
        (
            3,
            {
                "kernel_size": (3, 2, 2),
                "stride": (1, 2, 2),
                "padding": (1, 0, 0),
                "output_padding": (0, 1, 1),
            },
        ),
    ],
)
def test_conv_transpose_layers_match_torch(dims, kwargs):
    ours_cls = {1: nn.ConvTranspose1d, 3: nn.ConvTranspose3d}[dims]
    torch_cls = {1: torch.nn.ConvTranspose1d, 3: torch.nn.ConvTranspose3d}[dims]
    rng = np.random.default_rng(dims)
    layer = ours_cls(4, 2, **kwargs)
    reference = torch_cls(4, 2, **kwargs)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.weight.data))
        if layer.bias is not None:
            reference.bias.copy_(torch.tensor(layer.bias.data))
    spatial = (5,) if dims == 1 else (3, 4, 3)
    x = rng.standard_normal((2, 4, *spatial)).astype(np.float32)
    ours = cl.tensor(x, requires_grad=True)
    theirs = to_torch(x, requires_grad=True)
    out, expected = layer(ours), reference(theirs)
    assert out.shape[1:] == layer.output_shape(x.shape[1:])
    assert relative_error(out.data, expected.detach().numpy()) < 1e-5
    probe = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(probe)
    expected.backward(torch.tensor(probe))
    assert relative_error(ours.grad, theirs.grad.numpy()) < 1e-5
    assert relative_error(layer.weight.grad, reference.weight.grad.numpy()) < 1e-5
    assert layer.weight.shape == tuple(reference.weight.shape)


def test_conv_transpose1d_gradcheck():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((3, 2, 3)), rng.standard_normal(2)
    gradcheck(lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1), x, w, b)


@pytest.mark.parametrize("weighted", [False, True])
def test_per_pixel_cross_entropy_with_ignore_index_matches_torch(weighted):
    rng = np.random.default_rng(int(weighted))
    logits = rng.standard_normal((3, 5, 6, 7)).astype(np.float32)
    target = rng.integers(0, 5, (3, 6, 7))
    target[rng.random(target.shape) < 0.3] = 255
    weight = rng.random(5).astype(np.float32) + 0.5 if weighted else None
    for reduction in ("mean", "sum", "none"):
        ours = cl.tensor(logits, requires_grad=True)
        loss = F.cross_entropy(ours, target, weight=weight, ignore_index=255, reduction=reduction)
        theirs = to_torch(logits, requires_grad=True)
        expected = TF.cross_entropy(
            theirs,
            torch.tensor(target),
            weight=None if weight is None else torch.tensor(weight),
            ignore_index=255,
            reduction=reduction,
        )
        assert relative_error(loss.data, expected.detach().numpy()) < 1e-5
        probe = rng.standard_normal(loss.shape).astype(np.float32)
        loss.backward(probe)
        expected.backward(torch.tensor(probe))
        assert relative_error(ours.grad, theirs.grad.numpy()) < 1e-5


def test_per_pixel_cross_entropy_gradcheck():
    rng = np.random.default_rng(5)
    target = rng.integers(0, 4, (2, 3, 3))
    target[0, 0, 0] = -100
    gradcheck(lambda x: F.cross_entropy(x, target), rng.standard_normal((2, 4, 3, 3)))

"""PyTorch in and out: ``to_torch(model)`` and ``from_torch(module)`` (needs the ``interop`` extra).

``to_torch`` builds the equivalent ``torch.nn.Module``, layer by layer, with the same
``state_dict`` keys and the weights copied, so it computes the same outputs and a file
written by ``cl.save`` loads into it with ``load_state_dict(strict=True)`` as it is.
``from_torch`` does the reverse for every layer convlens has (and the classic LeNet-5's
own layers, whose torch versions live in ``_torch_lenet``); any other layer raises a
TypeError naming it. Use it to bring a model trained in PyTorch (with DDP, on GPUs) back
to look inside it with ``cl.viz`` or ``convlens serve``.

torch is imported only when one of these runs: ``import convlens`` never needs it.

>>> import numpy as np, torch, convlens as cl
>>> model = cl.models.get("lenet5")
>>> twin = cl.interop.to_torch(model)
>>> x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
>>> bool(np.allclose(twin(torch.from_numpy(x)).detach().numpy(), model(x).data, atol=1e-6))
True
>>> list(cl.interop.from_torch(twin).state_dict()) == list(model.state_dict())
True
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .. import models, nn
from ..models import lenet

__all__ = ["from_torch", "to_torch"]


# Layers whose constructor arguments are the same public attributes on both sides.
_SAME_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "Conv1d": ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups"),
    "ConvTranspose2d": (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "output_padding",
        "groups",
    ),
    "MaxPool1d": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "AvgPool1d": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "AdaptiveAvgPool2d": ("output_size",),
    "Linear": ("in_features", "out_features"),
    "Flatten": ("start_dim", "end_dim"),
    "Dropout": ("p",),
    "Identity": (),
    "ReLU": (),
    "Tanh": (),
    "Sigmoid": (),
    "Softmax": ("dim",),
    "BatchNorm1d": ("num_features", "eps", "momentum", "affine", "track_running_stats"),
}
for _family, _dims in (("Conv", "23"), ("MaxPool", "23"), ("AvgPool", "23"), ("BatchNorm", "23")):
    for _d in _dims:
        _SAME_ARGUMENTS[f"{_family}{_d}d"] = _SAME_ARGUMENTS[f"{_family}1d"]
_SAME_ARGUMENTS["AdaptiveMaxPool2d"] = _SAME_ARGUMENTS["AdaptiveAvgPool2d"]
_SAME_ARGUMENTS["LogSoftmax"] = _SAME_ARGUMENTS["Softmax"]
_SAME_ARGUMENTS["LeakyReLU"] = ("negative_slope",)
_CLASSIC_LAYERS = (
    "c1",
    "act1",
    "s2",
    "act2",
    "c3",
    "act3",
    "s4",
    "act4",
    "c5",
    "act5",
    "flatten",
    "f6",
    "act6",
    "output",
)
_WITH_BIAS = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose2d", "Linear")
_WITH_PADDING_MODE = ("Conv1d", "Conv2d", "Conv3d")


def _arguments(layer: Any, name: str) -> dict[str, Any]:
    kwargs = {key: getattr(layer, key) for key in _SAME_ARGUMENTS[name]}
    if name in _WITH_BIAS:
        kwargs["bias"] = layer.bias is not None
    if name == "ConvTranspose2d":
        kwargs["dilation"] = layer.dilation
    if name in _WITH_PADDING_MODE:
        kwargs["padding_mode"] = layer.padding_mode
    return kwargs


def _where(key: str) -> str:
    return key.rstrip(".") or "<model>"


# ------------------------------------------------------------------------------- convlens -> torch
def to_torch(model: Any) -> Any:
    """The ``torch.nn.Module`` that computes what ``model`` computes, with its weights.

    The result is in ``model``'s train/eval mode and carries ``input_shape`` when ``model``
    has one. Raises TypeError naming the first layer that has no PyTorch counterpart.
    """
    import torch

    module = _build_torch(model, "")
    weights = {key: torch.from_numpy(np.array(value)) for key, value in model.state_dict().items()}
    module.load_state_dict(weights, strict=True)
    module.train(model.training)
    if hasattr(model, "input_shape"):
        module.input_shape = tuple(model.input_shape)
    return module


def _build_torch(layer: Any, key: str) -> Any:
    import torch

    from . import _torch_lenet as tl

    kind = type(layer)
    if kind is lenet.LeNet5Classic:
        return tl.LeNet5Classic(_torch_children(layer, key))
    if kind is nn.Sequential:
        return torch.nn.Sequential(_torch_children(layer, key))
    if kind is nn.ScaledTanh:
        return tl.ScaledTanh(layer.amplitude, layer.slope)
    if kind is lenet.Subsampling2d:
        return tl.Subsampling2d(layer.channels, layer.kernel_size)
    if kind is lenet.PartialConv2d:
        return tl.PartialConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.connections)
    if kind is lenet.EuclideanRBF:
        return tl.EuclideanRBF(torch.from_numpy(np.array(layer.prototypes.data)))
    name = kind.__name__
    if getattr(nn, name, None) is kind and name in _SAME_ARGUMENTS:
        return getattr(torch.nn, name)(**_arguments(layer, name))
    raise TypeError(
        f"to_torch: layer {_where(key)!r} ({name}) has no PyTorch counterpart here (a Sequential "
        f"subclass or custom module computes its own forward). Received: {name}"
    )


def _torch_children(layer: Any, key: str) -> OrderedDict:
    return OrderedDict((name, _build_torch(child, f"{key}{name}.")) for name, child in layer.named_children())


# ------------------------------------------------------------------------------- torch -> convlens
def from_torch(module: Any) -> nn.Module:
    """The convlens model that computes what the ``torch.nn.Module`` computes, with its weights.

    Raises TypeError naming the first layer convlens cannot express (an unknown class, or
    an option such as ``return_indices`` or ``divisor_override`` that convlens has not).
    """
    model = _build_convlens(module, "")
    state = {key: value.detach().cpu().numpy() for key, value in module.state_dict().items()}
    model.load_state_dict(state, strict=True)
    model.train(module.training)
    if hasattr(module, "input_shape"):
        model.input_shape = tuple(module.input_shape)
    return model


def _build_convlens(layer: Any, key: str) -> Any:
    import torch

    from . import _torch_lenet as tl

    kind = type(layer)
    if kind is tl.LeNet5Classic:
        if [name for name, _ in layer.named_children()] != list(_CLASSIC_LAYERS):
            return _unsupported(layer, key)  # the convlens class has the paper's layers, no others
        return models.lenet5("classic", layer.output.out_features)
    if kind is torch.nn.Sequential:
        children = OrderedDict((n, _build_convlens(c, f"{key}{n}.")) for n, c in layer.named_children())
        return nn.Sequential(children)
    if kind is tl.ScaledTanh:
        return nn.ScaledTanh(layer.amplitude, layer.slope)
    if kind is tl.Subsampling2d:
        return lenet.Subsampling2d(layer.channels, layer.kernel_size)
    if kind is tl.PartialConv2d:
        return lenet.PartialConv2d(
            layer.in_channels, layer.out_channels, layer.kernel_size, layer.connections
        )
    if kind is tl.EuclideanRBF:
        rbf = lenet.EuclideanRBF(layer.in_features, layer.out_features)
        rbf.prototypes.data[...] = layer.prototypes.detach().cpu().numpy()
        return rbf
    name = kind.__name__
    if (
        getattr(torch.nn, name, None) is kind
        and getattr(nn, name, None) is not None
        and name in _SAME_ARGUMENTS
    ):
        _check_torch_options(layer, key, name)
        return getattr(nn, name)(**_arguments(layer, name))
    return _unsupported(layer, key)


def _check_torch_options(layer: Any, key: str, name: str) -> None:
    """Options of torch layers that convlens's layers do not have."""
    options = {
        "return_indices": getattr(layer, "return_indices", False),
        "divisor_override": getattr(layer, "divisor_override", None),
    }
    for option, value in options.items():
        if value not in (False, None):
            raise TypeError(
                f"from_torch: layer {_where(key)!r} ({name}) uses {option}, which convlens's {name} "
                f"does not have. Received: {option}={value!r}"
            )


def _unsupported(layer: Any, key: str) -> Any:
    name = type(layer).__name__
    supported = ", ".join(sorted(n for n in _SAME_ARGUMENTS if getattr(nn, n, None) is not None))
    raise TypeError(
        f"from_torch: layer {_where(key)!r} ({name}) has no convlens counterpart. Supported: "
        f"Sequential, {supported}, and the classic LeNet-5's layers. Received: {name}"
    )

"""One ONNX converter per convlens layer, in standard ops only.

A converter is ``convert(graph, layer, key, x, shape) -> y``: ``key`` is the layer's
``state_dict`` prefix (``"conv1."``, empty for a lone layer), ``x`` the name of its input
value and ``shape`` that input's shape without the batch axis; it appends nodes to
``graph`` and returns the name of its output. Only public layer attributes are read
(``kernel_size``, ``stride``, ``padding``, ..., and the weights).

Where ONNX's defaults differ from PyTorch's (pooling's ``ceil_mode`` and
``count_include_pad``, Conv's ``pads``) every attribute is written out, never left to a
default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nn
from ..functional._args import ntuple
from ..models import lenet
from ._errors import ExportError
from ._graph import Graph

__all__ = ["CONVERTERS", "converter_for"]

Converter = Callable[[Graph, Any, str, str, tuple[int, ...]], str]

# PyTorch's padding modes and the ONNX Pad modes that compute the same cells.
_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _fail(layer: Any, key: str, reason: str) -> ExportError:
    where = key.rstrip(".") or "<model>"
    return ExportError(f"onnx.export: cannot export layer {where!r} ({type(layer).__name__}): {reason}")


def _hint(key: str, op: str) -> str:
    return f"{key.rstrip('.')}/{op}" if key else op


def _onnx_pads(pairs: list[tuple[int, int]]) -> list[int]:
    """ONNX's ``pads`` layout: every axis's start, then every axis's end."""
    return [before for before, _ in pairs] + [after for _, after in pairs]


# ----------------------------------------------------------------------------------- convolution
def _conv_pads(layer: Any, d: int) -> list[tuple[int, int]]:
    """(before, after) per spatial axis; 'same' puts the odd cell after, as PyTorch."""
    if layer.padding == "valid":
        return [(0, 0)] * d
    if layer.padding == "same":
        totals = [dl * (k - 1) for dl, k in zip(layer.dilation, layer.kernel_size, strict=True)]
        return [(t // 2, t - t // 2) for t in totals]
    return [(p, p) for p in layer.padding]


def _pad(graph: Graph, layer: Any, key: str, x: str, pairs: list[tuple[int, int]]) -> str:
    """A Pad node over the spatial axes (batch and channel axes get none)."""
    mode = _PAD_MODES[layer.padding_mode]
    if mode == "wrap" and graph.opset < 19:
        raise _fail(
            layer,
            key,
            f"padding_mode='circular' needs Pad's wrap mode, opset 19 or later. "
            f"Received: opset={graph.opset}",
        )
    pads = graph.constant(_onnx_pads([(0, 0), (0, 0), *pairs]), _hint(key, "pads"), np.int64)
    return graph.node("Pad", [x, pads], _hint(key, "Pad"), mode=mode)


def _weights(graph: Graph, layer: Any, key: str) -> list[str]:
    names = [graph.initializer(f"{key}weight", layer.weight.data)]
    if layer.bias is not None:
        names.append(graph.initializer(f"{key}bias", layer.bias.data))
    return names


def _conv(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    d = len(layer.kernel_size)
    pairs = _conv_pads(layer, d)
    if layer.padding_mode != "zeros" and any(b or a for b, a in pairs):
        x, pairs = _pad(graph, layer, key, x, pairs), [(0, 0)] * d
    return graph.node(
        "Conv",
        [x, *_weights(graph, layer, key)],
        _hint(key, "Conv"),
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=_onnx_pads(pairs),
        group=layer.groups,
    )


def _conv_transpose(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    return graph.node(
        "ConvTranspose",
        [x, *_weights(graph, layer, key)],
        _hint(key, "ConvTranspose"),
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.stride),
        dilations=list(layer.dilation),
        pads=_onnx_pads([(p, p) for p in layer.padding]),
        output_padding=list(layer.output_padding),
        group=layer.groups,
    )


# --------------------------------------------------------------------------------------- pooling
def _window(layer: Any, d: int, name: str, default: int = 1) -> list[int]:
    value = getattr(layer, name, default)
    return list(ntuple(value, d, name, type(layer).__name__, minimum=0 if name == "padding" else 1))


def _pool_geometry(layer: Any, key: str, shape: tuple[int, ...], dilated: bool) -> dict[str, Any]:
    """kernel_shape, strides, pads (and dilations) and the ceil_mode that give PyTorch's windows.

    PyTorch's ceil_mode drops a last window that would start in the right padding; ONNX's
    (opset <= 21) keeps it. Where it is dropped the floor count is PyTorch's count, so
    ceil_mode=0 is written; where axes disagree, the axes that need the extra window get it
    from extra end padding instead (ignored by max and by an average without padding counted).
    """
    d = len(shape) - 1
    kernel, stride = _window(layer, d, "kernel_size"), _window(layer, d, "stride")
    padding = _window(layer, d, "padding")
    dilation = _window(layer, d, "dilation") if dilated else [1] * d
    wanted = layer.output_shape(shape)[1:]
    spans = [dl * (k - 1) + 1 for k, dl in zip(kernel, dilation, strict=True)]
    room = [n + 2 * p - e for n, p, e in zip(shape[1:], padding, spans, strict=True)]
    floor = [r // s + 1 for r, s in zip(room, stride, strict=True)]
    ceil = [-(-r // s) + 1 for r, s in zip(room, stride, strict=True)]
    extra = [0] * d
    if wanted == tuple(floor):
        ceil_mode = 0
    elif wanted == tuple(ceil):
        ceil_mode = 1
    elif dilated or not layer.count_include_pad:
        ceil_mode = 0
        extra = [
            (w - 1) * s - r if w > f else 0 for w, f, s, r in zip(wanted, floor, stride, room, strict=True)
        ]
    else:
        raise _fail(
            layer,
            key,
            f"with ceil_mode and count_include_pad, PyTorch's windows {wanted} for "
            f"input {shape[1:]} are neither ONNX's floor {tuple(floor)} nor its ceil {tuple(ceil)}",
        )
    geometry: dict[str, Any] = {
        "kernel_shape": kernel,
        "strides": stride,
        "pads": _onnx_pads([(p, p + e) for p, e in zip(padding, extra, strict=True)]),
        "ceil_mode": ceil_mode,
    }
    if dilated:
        geometry["dilations"] = dilation
    return geometry


def _max_pool(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    return graph.node("MaxPool", [x], _hint(key, "MaxPool"), **_pool_geometry(layer, key, shape, True))


def _avg_pool(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    return graph.node(
        "AveragePool",
        [x],
        _hint(key, "AveragePool"),
        count_include_pad=int(layer.count_include_pad),
        **_pool_geometry(layer, key, shape, False),
    )


def _adaptive(op: str) -> Converter:
    """Adaptive pooling is plain pooling with kernel = stride = input / output where that divides."""

    def convert(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
        sizes, outputs = shape[1:], layer.output_shape(shape)[1:]
        if any(n % m for n, m in zip(sizes, outputs, strict=True)):
            raise _fail(
                layer,
                key,
                f"the input size {tuple(sizes)} is not a multiple of the output size {tuple(outputs)}, "
                f"so the windows have no single kernel and stride in ONNX. "
                f"Received: output_size={layer.output_size!r}",
            )
        steps = [n // m for n, m in zip(sizes, outputs, strict=True)]
        attributes: dict[str, Any] = {"kernel_shape": steps, "strides": steps, "pads": [0] * (2 * len(steps))}
        if op == "AveragePool":
            attributes["count_include_pad"] = 0
        return graph.node(op, [x], _hint(key, op), ceil_mode=0, **attributes)

    return convert


# ---------------------------------------------------------------------------- dense and reshaping
def _linear(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    weights = _weights(graph, layer, key)
    if len(shape) == 1:  # (N, in) @ W^T + b, W kept in its stored (out, in) layout
        return graph.node("Gemm", [x, *weights], _hint(key, "Gemm"), transB=1)
    # Linear over the last axis of a higher-rank input: Gemm is 2-D only.
    transposed = graph.node("Transpose", [weights[0]], _hint(key, "WeightT"), perm=[1, 0])
    y = graph.node("MatMul", [x, transposed], _hint(key, "MatMul"))
    return graph.node("Add", [y, weights[1]], _hint(key, "Add")) if len(weights) > 1 else y


def _flatten(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    rank = len(shape) + 1
    start, end = layer.start_dim % rank, layer.end_dim % rank
    if start == 1 and end == rank - 1:  # ONNX Flatten: (N, everything else)
        return graph.node("Flatten", [x], _hint(key, "Flatten"), axis=1)
    target = graph.constant([0, *layer.output_shape(shape)], _hint(key, "shape"), np.int64)
    return graph.node("Reshape", [x, target], _hint(key, "Reshape"))


def _passthrough(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    """Dropout and Identity: the identity in eval mode, so no node at all."""
    return x


# ------------------------------------------------------------------------------------ activations
def _elementwise(op: str, **attributes: Any) -> Converter:
    def convert(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
        return graph.node(op, [x], _hint(key, op), **attributes)

    return convert


def _leaky_relu(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    return graph.node("LeakyRelu", [x], _hint(key, "LeakyRelu"), alpha=float(layer.negative_slope))


def _softmax(op: str) -> Converter:
    def convert(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
        rank = len(shape) + 1
        # dim=None: PyTorch's legacy rule, on the batched rank as the layer sees it.
        axis = (0 if rank in (0, 1, 3) else 1) if layer.dim is None else layer.dim
        return graph.node(op, [x], _hint(key, op), axis=int(axis))

    return convert


def _scaled_tanh(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    """``A * tanh(S * x)``: Mul, Tanh, Mul."""
    slope = graph.constant(layer.slope, _hint(key, "slope"))
    amplitude = graph.constant(layer.amplitude, _hint(key, "amplitude"))
    inner = graph.node("Mul", [x, slope], _hint(key, "MulSlope"))
    return graph.node("Mul", [graph.node("Tanh", [inner], _hint(key, "Tanh")), amplitude], _hint(key, "Mul"))


def _batch_norm(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    if layer.running_mean is None:
        raise _fail(
            layer,
            key,
            "without running statistics (track_running_stats=False) it normalises "
            "with each batch's own statistics even in eval mode, which BatchNormalization "
            "cannot express",
        )
    channels = layer.num_features
    if layer.affine:
        scale, bias = _weights(graph, layer, key)
    else:
        scale = graph.constant(np.ones(channels), _hint(key, "scale"))
        bias = graph.constant(np.zeros(channels), _hint(key, "bias"))
    mean = graph.initializer(f"{key}running_mean", layer.running_mean.data)
    var = graph.initializer(f"{key}running_var", layer.running_var.data)
    return graph.node(
        "BatchNormalization",
        [x, scale, bias, mean, var],
        _hint(key, "BatchNormalization"),
        epsilon=float(layer.eps),
    )


# ------------------------------------------------------------------- the classic LeNet-5's parts
def _per_channel(graph: Graph, name: str, key: str, spatial: int) -> str:
    """A (C,) initializer seen as (C, 1, ..., 1), to broadcast over (N, C, spatial...)."""
    axes = graph.constant(list(range(1, spatial + 1)), _hint(key, f"{name}_axes"), np.int64)
    return graph.node("Unsqueeze", [f"{key}{name}", axes], _hint(key, f"{name}_per_channel"))


def _subsampling(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    """S2/S4: ``weight[c] * sum(block) + bias[c]``, the block sum as AveragePool times its area."""
    k = layer.kernel_size
    graph.initializer(f"{key}weight", layer.weight.data)
    graph.initializer(f"{key}bias", layer.bias.data)
    mean = graph.node(
        "AveragePool",
        [x],
        _hint(key, "AveragePool"),
        kernel_shape=[k, k],
        strides=[k, k],
        pads=[0, 0, 0, 0],
        ceil_mode=0,
        count_include_pad=0,
    )
    sums = graph.node("Mul", [mean, graph.constant(float(k * k), _hint(key, "area"))], _hint(key, "Sum"))
    scaled = graph.node("Mul", [sums, _per_channel(graph, "weight", key, 2)], _hint(key, "Mul"))
    return graph.node("Add", [scaled, _per_channel(graph, "bias", key, 2)], _hint(key, "Add"))


def _partial_conv(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    """C3: the stored (connections, k, k) kernels scattered (ScatterND) into a zero dense
    (C_out, C_in, k, k) kernel, then a plain Conv; the initializer keeps the stored layout."""
    k = layer.kernel_size
    pairs = [[o, i] for o, row in enumerate(layer.connections) for i in row]
    zeros = graph.constant(np.zeros((layer.out_channels, layer.in_channels, k, k)), _hint(key, "zeros"))
    where = graph.constant(pairs, _hint(key, "connections"), np.int64)
    weight = graph.initializer(f"{key}weight", layer.weight.data)
    dense = graph.node("ScatterND", [zeros, where, weight], _hint(key, "DenseWeight"))
    bias = graph.initializer(f"{key}bias", layer.bias.data)
    return graph.node(
        "Conv",
        [x, dense, bias],
        _hint(key, "Conv"),
        kernel_shape=[k, k],
        strides=[1, 1],
        dilations=[1, 1],
        pads=[0, 0, 0, 0],
        group=1,
    )


def _euclidean_rbf(graph: Graph, layer: Any, key: str, x: str, shape: tuple[int, ...]) -> str:
    """``y_i = sum_j (x_j - w_ij)^2``: (N, 1, F) - (O, F) broadcasts to (N, O, F), then ReduceSum."""
    prototypes = graph.initializer(f"{key}prototypes", layer.prototypes.data)
    column = graph.node(
        "Unsqueeze", [x, graph.constant([1], _hint(key, "axis1"), np.int64)], _hint(key, "Unsqueeze")
    )
    diff = graph.node("Sub", [column, prototypes], _hint(key, "Sub"))
    square = graph.node("Mul", [diff, diff], _hint(key, "Square"))
    axes = graph.constant([2], _hint(key, "axis2"), np.int64)
    return graph.node("ReduceSum", [square, axes], _hint(key, "ReduceSum"), keepdims=0)


CONVERTERS: dict[type, Converter] = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.Conv3d: _conv,
    nn.ConvTranspose2d: _conv_transpose,
    nn.MaxPool1d: _max_pool,
    nn.MaxPool2d: _max_pool,
    nn.MaxPool3d: _max_pool,
    nn.AvgPool1d: _avg_pool,
    nn.AvgPool2d: _avg_pool,
    nn.AvgPool3d: _avg_pool,
    nn.AdaptiveAvgPool2d: _adaptive("AveragePool"),
    nn.AdaptiveMaxPool2d: _adaptive("MaxPool"),
    nn.Linear: _linear,
    nn.Flatten: _flatten,
    nn.Dropout: _passthrough,
    nn.Identity: _passthrough,
    nn.ReLU: _elementwise("Relu"),
    nn.Tanh: _elementwise("Tanh"),
    nn.Sigmoid: _elementwise("Sigmoid"),
    nn.Softmax: _softmax("Softmax"),
    nn.LogSoftmax: _softmax("LogSoftmax"),
    nn.ScaledTanh: _scaled_tanh,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.BatchNorm3d: _batch_norm,
    lenet.Subsampling2d: _subsampling,
    lenet.PartialConv2d: _partial_conv,
    lenet.EuclideanRBF: _euclidean_rbf,
}
if hasattr(nn, "LeakyReLU"):  # exported as soon as convlens.nn has the layer
    CONVERTERS[nn.LeakyReLU] = _leaky_relu


def converter_for(layer: Any, key: str) -> Converter:
    """The converter of ``layer``'s exact class (a subclass may compute something else)."""
    try:
        return CONVERTERS[type(layer)]
    except KeyError:
        supported = ", ".join(sorted({cls.__name__ for cls in CONVERTERS}))
        raise _fail(layer, key, f"no ONNX conversion for this layer type. Supported: {supported}") from None

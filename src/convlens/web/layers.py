"""Every layer's output for one input, and the arithmetic behind one feature-map cell.

:func:`forward_recorded` runs a model once with a forward hook on every leaf layer
and keeps what each layer received and produced (hooks also turn off the fused
conv+ReLU+pool path, so each layer's own output is seen). :func:`explain_cell`
reads those real tensors back: for a cell of a convolution's output it lays out the
input window (padding cells marked), the kernel of every input channel, the
products cell by cell and their sum plus the bias, then follows the value through
the activation and the pooling after it, as the page's arithmetic panel shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

import convlens as cl
from convlens import nn

from .inputs import ApiError

_NUMPY_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
_ACTIVATIONS = {
    "ReLU": "ReLU: max(0, z)",
    "ScaledTanh": "scaled tanh: 1.7159 tanh(2z/3)",
    "Tanh": "tanh(z)",
    "Sigmoid": "sigmoid: 1 / (1 + exp(-z))",
}


@dataclass
class Record:
    """One layer call: its dotted name, the module, its first input and its output (batch of one)."""

    name: str
    module: Any
    input: np.ndarray
    output: np.ndarray


def leaf_layers(model: Any) -> list[tuple[str, Any]]:
    """``(dotted name, module)`` of every layer without sublayers (the model itself if it has none)."""
    leaves = [(name, m) for name, m in model.named_modules() if name and not any(True for _ in m.children())]
    return leaves or [("model", model)]


def forward_recorded(model: Any, x: np.ndarray) -> tuple[np.ndarray, list[Record]]:
    """``(model output, records in call order)`` for the batch ``x`` (eval mode, no graph)."""
    records: list[Record] = []
    handles = []
    for name, module in leaf_layers(model):

        def hook(module: Any, inputs: tuple, output: Any, name: str = name) -> None:
            first = inputs[0] if inputs else None
            data = first.data if isinstance(first, cl.Tensor) else np.asarray(first)
            out = output.data if isinstance(output, cl.Tensor) else np.asarray(output)
            records.append(Record(name, module, data[0], out[0]))

        handles.append(module.register_forward_hook(hook))
    model.eval()
    try:
        with cl.no_grad():
            output = model(cl.tensor(np.asarray(x, np.float32)))
    finally:
        for handle in handles:
            handle.remove()
    return np.asarray(output.data), records


def layers_json(records: list[Record]) -> list[dict[str, Any]]:
    """Each layer's output for the page: maps ``(C, H, W)`` or vectors ``(F,)``, rounded."""
    shown = []
    for index, record in enumerate(records):
        values = record.output.astype(np.float64)
        shown.append(
            {
                "name": record.name,
                "kind": type(record.module).__name__,
                "shape": list(values.shape),
                "values": np.round(values, 5).tolist(),
                "min": float(values.min()),
                "max": float(values.max()),
                "explainable": values.ndim == 3 and _block_conv(records, index) is not None,
            }
        )
    return shown


def kernels_json(model: Any) -> list[dict[str, Any]]:
    """The weights of every 2-D convolution: ``(C_out, C_in, k, k)`` per layer."""
    found = []
    for name, module in leaf_layers(model):
        weight = _conv_weight(module)
        if weight is not None:
            found.append({"name": name, "shape": list(weight.shape), "values": np.round(weight, 5).tolist()})
    return found


def first_kernels(model: Any) -> dict[str, Any] | None:
    """The first convolution's kernels (what the page shows changing while training)."""
    kernels = kernels_json(model)
    return kernels[0] if kernels else None


# ------------------------------------------------------------------- layer kinds
def _conv_weight(module: Any) -> np.ndarray | None:
    """The dense (C_out, C_in/groups, kh, kw) kernel of a 2-D convolution, else None."""
    if callable(getattr(module, "full_weight", None)):  # LeNet-5's partially connected C3
        return np.asarray(module.full_weight().data, np.float64)
    weight = getattr(module, "weight", None)
    if isinstance(module, nn.Conv2d) and weight is not None and weight.ndim == 4:
        return np.asarray(weight.data, np.float64)
    return None


def _conv_geometry(module: Any, weight: np.ndarray, size: tuple[int, int]) -> dict[str, Any]:
    """Stride, dilation, (top, left) padding, padding mode and groups of a convolution."""
    stride = tuple(getattr(module, "stride", (1, 1)))
    dilation = tuple(getattr(module, "dilation", (1, 1)))
    padding = getattr(module, "padding", (0, 0))
    if padding == "valid":
        padding = (0, 0)
    if padding == "same":  # PyTorch's rule: the odd cell of padding goes at the end
        padding = tuple((d * (k - 1)) // 2 for d, k in zip(dilation, weight.shape[2:], strict=True))
        after = tuple(d * (k - 1) - p for d, k, p in zip(dilation, weight.shape[2:], padding, strict=True))
    else:
        after = tuple(padding)
    return {
        "stride": stride,
        "dilation": dilation,
        "padding": tuple(padding),
        "padding_after": after,
        "mode": getattr(module, "padding_mode", "zeros"),
        "groups": int(getattr(module, "groups", 1)),
    }


def _pool_geometry(module: Any) -> dict[str, Any] | None:
    """Kind, kernel, stride, padding and dilation of a 2-D pooling layer, else None."""
    kind = type(module).__name__
    if kind not in ("MaxPool2d", "AvgPool2d", "Subsampling2d"):
        return None

    def pair(value: Any) -> tuple[int, int]:
        return (value, value) if isinstance(value, int) else tuple(value)

    kernel = pair(module.kernel_size)
    return {
        "kind": kind,
        "kernel": kernel,
        "stride": pair(getattr(module, "stride", None) or kernel),
        "padding": pair(getattr(module, "padding", 0)),
        "dilation": pair(getattr(module, "dilation", 1)),
    }


def _is_activation(module: Any) -> bool:
    return type(module).__name__ in _ACTIVATIONS


def _block_conv(records: list[Record], index: int) -> int | None:
    """Index of the convolution whose block (conv, activations, pools) holds layer ``index``."""
    j = index
    while j >= 0:
        module = records[j].module
        if _conv_weight(module) is not None:
            return j
        if not (_is_activation(module) or _pool_geometry(module) is not None):
            return None
        j -= 1
    return None


# ------------------------------------------------------------------- the arithmetic
def explain_cell(records: list[Record], layer: str, channel: int, y: int, x: int) -> dict[str, Any]:
    """The computation behind cell ``(channel, y, x)`` of layer ``layer``'s output.

    A cell of an activation or pooling map is traced back to the convolution cell it
    comes from (for max pooling: the cell that won the window). Returns the
    convolution's arithmetic and the steps after it, each with the recorded value.
    """
    names = [r.name for r in records]
    if layer not in names:
        raise ApiError(
            422, f"layer must be one of {', '.join(names)}. Received: layer={layer!r}.", field="layer"
        )
    index = names.index(layer)
    output = records[index].output
    if output.ndim != 3:
        raise ApiError(
            422,
            f"layer {layer} outputs a vector of {output.size}, not feature maps: no cell to explain.",
            "layer",
        )
    for field, value, size in (
        ("channel", channel, output.shape[0]),
        ("y", y, output.shape[1]),
        ("x", x, output.shape[2]),
    ):
        if not 0 <= value < size:
            raise ApiError(
                422,
                f"{field} must be from 0 to {size - 1} in layer {layer}. Received: {field}={value}.",
                field,
            )
    conv = _block_conv(records, index)
    if conv is None:
        raise ApiError(
            422, f"layer {layer} does not follow a convolution: its cells have no kernel to show.", "layer"
        )
    cell = (channel, y, x)
    traced = []
    for j in range(index, conv, -1):  # down to the convolution, through the pools
        cell, note = _trace_down(records[j], cell)
        if note:
            traced.append({"layer": records[j].name, "note": note})
    explanation = _conv_arithmetic(records, conv, cell)
    explanation["clicked"] = {"layer": layer, "cell": [channel, y, x], "value": float(output[channel, y, x])}
    explanation["traced"] = traced
    explanation["after"] = _steps_after(records, conv, cell)
    return explanation


def _trace_down(record: Record, cell: tuple[int, int, int]) -> tuple[tuple[int, int, int], str]:
    """The cell of this layer's input that ``cell`` of its output comes from, and a note."""
    geometry = _pool_geometry(record.module)
    if geometry is None:
        return cell, ""  # an activation: same cell
    c, y, x = cell
    rows, cols, inside = _pool_window(geometry, record.input.shape[1:], y, x)
    values = np.where(
        inside, record.input[c][np.ix_(np.clip(rows, 0, None), np.clip(cols, 0, None))], -np.inf
    )
    if geometry["kind"] == "MaxPool2d":
        i, j = np.unravel_index(int(np.argmax(values)), values.shape)
        return (
            c,
            int(rows[i]),
            int(cols[j]),
        ), f"the maximum of its window is input cell ({rows[i]}, {cols[j]})"
    i, j = np.argwhere(inside)[0]
    how = "averages" if geometry["kind"] == "AvgPool2d" else "sums (times a coefficient, plus a bias)"
    return (
        c,
        int(rows[i]),
        int(cols[j]),
    ), f"it {how} its window; shown: its first cell ({rows[i]}, {cols[j]})"


def _pool_window(
    geometry: dict[str, Any], size: tuple[int, ...], y: int, x: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input rows and columns of pooling window ``(y, x)`` and a mask of the cells inside the input."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
        geometry[k] for k in ("kernel", "stride", "padding", "dilation")
    )
    rows = y * sh - ph + dh * np.arange(kh)
    cols = x * sw - pw + dw * np.arange(kw)
    inside = ((rows >= 0) & (rows < size[0]))[:, None] & ((cols >= 0) & (cols < size[1]))[None, :]
    return rows, cols, inside


def _conv_arithmetic(records: list[Record], index: int, cell: tuple[int, int, int]) -> dict[str, Any]:
    record = records[index]
    o, y, x = cell
    weight = _conv_weight(record.module)
    g = _conv_geometry(record.module, weight, record.input.shape[1:])
    per_group_out = weight.shape[0] // g["groups"]
    first = (o // per_group_out) * weight.shape[1]
    source = record.input.astype(np.float64)
    pads = ((0, 0), (g["padding"][0], g["padding_after"][0]), (g["padding"][1], g["padding_after"][1]))
    padded = np.pad(source, pads, mode=_NUMPY_PAD[g["mode"]])
    kh, kw = weight.shape[2:]
    rows = y * g["stride"][0] + g["dilation"][0] * np.arange(kh)
    cols = x * g["stride"][1] + g["dilation"][1] * np.arange(kw)
    real_rows, real_cols = rows - g["padding"][0], cols - g["padding"][1]
    is_padding = ~(
        ((real_rows >= 0) & (real_rows < source.shape[1]))[:, None]
        & ((real_cols >= 0) & (real_cols < source.shape[2]))[None, :]
    )
    connections = getattr(record.module, "connections", None)
    channels, total = [], 0.0
    for c in range(weight.shape[1]):
        window = padded[first + c][np.ix_(rows, cols)]
        kernel = weight[o, c]
        products = window * kernel
        total += float(products.sum())
        channels.append(
            {
                "channel": first + c,
                "connected": connections is None or (first + c) in connections[o],
                "window": window.tolist(),
                "padding": is_padding.tolist(),
                "kernel": kernel.tolist(),
                "products": products.tolist(),
                "sum": float(products.sum()),
            }
        )
    bias = getattr(record.module, "bias", None)
    bias_value = float(bias.data[o]) if bias is not None else 0.0
    return {
        "layer": record.name,
        "kind": type(record.module).__name__,
        "input_layer": records[index - 1].name if index > 0 else "input",
        "cell": [o, y, x],
        "stride": list(g["stride"]),
        "padding": [g["padding"][0], g["padding"][1]],
        "dilation": list(g["dilation"]),
        "padding_mode": g["mode"],
        "input_rows": real_rows.tolist(),
        "input_cols": real_cols.tolist(),
        "channels": channels,
        "sum": total,
        "bias": bias_value,
        "value": total + bias_value,
        "recorded": float(record.output[o, y, x]),
    }


def _steps_after(records: list[Record], conv: int, cell: tuple[int, int, int]) -> list[dict[str, Any]]:
    """The value of ``cell`` through the activations and pools that follow the convolution."""
    steps: list[dict[str, Any]] = []
    c, y, x = cell
    for record in records[conv + 1 :]:
        module = record.module
        if _is_activation(module):
            steps.append(
                {
                    "layer": record.name,
                    "op": _ACTIVATIONS[type(module).__name__],
                    "input": float(record.input[c, y, x]),
                    "value": float(record.output[c, y, x]),
                    "cell": [c, y, x],
                }
            )
            continue
        geometry = _pool_geometry(module)
        if geometry is None:
            break
        step = _pool_step(record, geometry, (c, y, x))
        steps.append(step)
        if step.get("value") is None:
            break
        _, y, x = step["cell"]
    return steps


def _pool_step(record: Record, geometry: dict[str, Any], cell: tuple[int, int, int]) -> dict[str, Any]:
    c, y, x = cell
    out_h, out_w = record.output.shape[1:]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
        geometry[k] for k in ("kernel", "stride", "padding", "dilation")
    )
    py = _covering_window(y + ph, kh, sh, dh, out_h)
    px = _covering_window(x + pw, kw, sw, dw, out_w)
    op = {"MaxPool2d": "max", "AvgPool2d": "average", "Subsampling2d": "coefficient * sum + bias"}[
        geometry["kind"]
    ]
    step: dict[str, Any] = {"layer": record.name, "op": f"{op} over {kh}x{kw}, stride {sh}"}
    if py is None or px is None:
        step["note"] = "no pooling window covers this cell (the output size rounds down)"
        step["value"] = None
        return step
    rows, cols, inside = _pool_window(geometry, record.input.shape[1:], py, px)
    window = record.input[c][np.ix_(np.clip(rows, 0, None), np.clip(cols, 0, None))].astype(np.float64)
    step.update(
        {
            "cell": [c, py, px],
            "window": np.where(inside, window, np.nan).tolist(),
            "position": [int(np.argmax(rows == y)), int(np.argmax(cols == x))],
            "value": float(record.output[c, py, px]),
        }
    )
    if geometry["kind"] == "Subsampling2d":
        step["coefficient"] = float(record.module.weight.data[c])
        step["bias"] = float(record.module.bias.data[c])
    step["window"] = [[None if math.isnan(v) else v for v in row] for row in step["window"]]
    return step


def _covering_window(position: int, kernel: int, stride: int, dilation: int, count: int) -> int | None:
    """The first pooling window (index < count) whose taps include ``position`` (padded coordinates)."""
    for index in range(
        max(0, (position - dilation * (kernel - 1)) // stride), min(count, position // stride + 1)
    ):
        offset = position - index * stride
        if 0 <= offset <= dilation * (kernel - 1) and offset % dilation == 0:
            return index
    return None

"""The lecture's small worked computations: convolution, output size, pooling, parameter counts.

Each result comes from the real engine (``F.conv2d``, ``F.max_pool2d``,
``F.avg_pool2d``, ``cl.summary``); the per-step windows beside it are index
arithmetic, so the page can animate the kernel sliding and show each sum.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

import convlens as cl
from convlens import functional as F
from convlens import nn

from . import inputs
from .inputs import ApiError

MAX_GRID = 32  # the playground's input side; the page draws every cell
MAX_KERNEL = 9
MAX_POOL_GRID = 16

# The lecture's worked examples, by the names the page's presets use.
PRESETS: dict[str, dict[str, Any]] = {
    "example-a": {
        "title": "Example A: one output value, cross-correlation 13 vs true convolution 32",
        "input": [[1, 1, 2], [2, 2, 1], [1, 5, 0]],
        "kernel": [[2, 3, 0], [0, 1, 3], [3, 0, 3]],
        "padding": 0,
        "stride": 1,
        "dilation": 1,
    },
    "example-b": {
        "title": "Example B: a 5x5 binary image and a 3x3 kernel give the 3x3 'convolved feature'",
        "input": [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
        "kernel": [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
        "padding": 0,
        "stride": 1,
        "dilation": 1,
    },
    "stride-2": {
        "title": "Image 5, kernel 3, padding 1, stride 2: output 3",
        "input": [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
        "kernel": [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
        "padding": 1,
        "stride": 2,
        "dilation": 1,
    },
}


# ------------------------------------------------------------------ output size
def output_size(n: int, k: int, p: int, s: int, d: int) -> dict[str, Any]:
    """The lecture's ``floor((n + 2p - d(k-1) - 1) / s) + 1``, written out, with what goes wrong.

    ``valid`` is False when the (dilated) kernel does not fit the padded input;
    ``whole`` is False when the division leaves a remainder: the last rows and
    columns of the padded input are then never reached and the size rounds down.
    """
    span = d * (k - 1) + 1
    numerator = n + 2 * p - span
    term = f"{k}" if d == 1 else f"{d}*({k} - 1) - 1"
    formula = f"({n} + 2*{p} - {term})/{s} + 1"
    if numerator < 0:
        reach = f"dilation {d} * ({k} - 1) + 1 = {span}" if d > 1 else f"{k}"
        return {
            "valid": False,
            "whole": False,
            "value": None,
            "formula": formula,
            "explanation": f"{formula} is below 1: the kernel spans {reach} cells but the padded input has "
            f"only {n} + 2*{p} = {n + 2 * p}, so it fits nowhere. Make the kernel smaller or pad more.",
        }
    value = numerator // s + 1
    if numerator % s == 0:
        return {
            "valid": True,
            "whole": True,
            "value": value,
            "formula": formula,
            "explanation": f"{formula} = {value}",
        }
    left = numerator % s
    exact = numerator / s + 1
    return {
        "valid": True,
        "whole": False,
        "value": value,
        "formula": formula,
        "explanation": f"{formula} = {exact:g} is not whole: the kernel fits {value} times in steps of {s}; "
        f"one more step would stick out of the padded input, so its last {left} row{'s' if left > 1 else ''} "
        f"and column{'s' if left > 1 else ''} are never used. The size rounds down to {value} "
        f"(choose a padding or stride that divides evenly to use them).",
    }


def pattern(size: int) -> np.ndarray:
    """A default input grid: small integers that make every window's sum different."""
    i, j = np.indices((size, size))
    return ((3 * i + 5 * j + i * j) % 4).astype(np.float64)


# ------------------------------------------------------------------ convolution
def convolve(fields: dict[str, Any]) -> dict[str, Any]:
    """``F.conv2d`` of one 2-D input and kernel, with the output-size formula and every window.

    Fields: ``input`` (2-D, or ``size`` for a default pattern), ``kernel`` (2-D, or
    ``kernel_size`` for the lecture's X-shaped kernel), ``padding``, ``stride``,
    ``dilation`` and ``mode``: ``"cross-correlation"`` (what CNN layers compute) or
    ``"convolution"`` (the kernel flipped first, the textbook formula).
    """
    if "input" in fields:
        grid = inputs.array(fields, "input", 2, max_side=MAX_GRID)
    else:
        grid = pattern(inputs.integer(fields, "size", 1, MAX_GRID, default=5))
    if "kernel" in fields:
        kernel = inputs.array(fields, "kernel", 2, max_side=MAX_KERNEL)
    else:
        size = inputs.integer(fields, "kernel_size", 1, MAX_KERNEL, default=3)
        kernel = np.eye(size) + np.eye(size)[::-1]
        kernel = np.minimum(kernel, 1)  # the X of the lecture's example B
    padding = inputs.integer(fields, "padding", 0, MAX_GRID, default=0)
    stride = inputs.integer(fields, "stride", 1, MAX_GRID, default=1)
    dilation = inputs.integer(fields, "dilation", 1, MAX_GRID, default=1)
    mode = inputs.choice(fields, "mode", ("cross-correlation", "convolution"), default="cross-correlation")
    if grid.shape[0] != grid.shape[1] or kernel.shape[0] != kernel.shape[1]:
        raise ApiError(
            422,
            f"input and kernel must be square here. Received: input {grid.shape}, kernel {kernel.shape}.",
            field="input" if grid.shape[0] != grid.shape[1] else "kernel",
        )
    n, k = grid.shape[0], kernel.shape[0]
    size = output_size(n, k, padding, stride, dilation)
    applied = kernel[::-1, ::-1] if mode == "convolution" else kernel
    result = {
        "input": grid.tolist(),
        "kernel": kernel.tolist(),
        "applied_kernel": applied.tolist(),
        "mode": mode,
        "padding": padding,
        "stride": stride,
        "dilation": dilation,
        "output_size": size,
        "padded": np.pad(grid, padding).tolist(),
    }
    if not size["valid"]:
        return {**result, "output": None, "steps": []}
    output = F.conv2d(
        grid[None, None], applied[None, None], stride=stride, padding=padding, dilation=dilation
    )
    result["output"] = np.asarray(output.data[0, 0]).tolist()
    result["steps"] = _steps(np.pad(grid, padding), applied, stride, dilation, size["value"])
    return result


def _steps(
    padded: np.ndarray, kernel: np.ndarray, stride: int, dilation: int, out: int
) -> list[dict[str, Any]]:
    """Each output cell's window (rows and columns of the padded input), products and sum."""
    k = kernel.shape[0]
    steps = []
    for y in range(out):
        for x in range(out):
            rows = (y * stride + dilation * np.arange(k)).tolist()
            cols = (x * stride + dilation * np.arange(k)).tolist()
            products = padded[np.ix_(rows, cols)] * kernel
            steps.append(
                {
                    "out": [y, x],
                    "rows": rows,
                    "cols": cols,
                    "products": products.tolist(),
                    "sum": float(products.sum()),
                }
            )
    return steps


# ------------------------------------------------------------------ pooling
def pool(fields: dict[str, Any]) -> dict[str, Any]:
    """Max or average pooling of a small grid (``F.max_pool2d`` / ``F.avg_pool2d``), every window shown."""
    if "input" in fields:
        grid = inputs.array(fields, "input", 2, max_side=MAX_POOL_GRID)
    else:
        size = inputs.integer(fields, "size", 1, MAX_POOL_GRID, default=4)
        grid = np.random.default_rng(inputs.integer(fields, "seed", 0, 2**31 - 1, default=0)).integers(
            0, 10, (size, size)
        )
        grid = grid.astype(np.float64)
    kernel = inputs.integer(fields, "kernel_size", 1, MAX_POOL_GRID, default=2)
    stride = inputs.integer(fields, "stride", 1, MAX_POOL_GRID, default=kernel)
    mode = inputs.choice(fields, "mode", ("max", "avg"), default="max")
    n = min(grid.shape)
    size = output_size(n, kernel, 0, stride, 1)
    result: dict[str, Any] = {"input": grid.tolist(), "kernel_size": kernel, "stride": stride, "mode": mode}
    result["output_size"] = size
    if not size["valid"]:
        return {**result, "output": None, "windows": []}
    x = grid[None, None]
    out = F.max_pool2d(x, kernel, stride) if mode == "max" else F.avg_pool2d(x, kernel, stride)
    result["output"] = np.asarray(out.data[0, 0]).tolist()
    windows = []
    out_h, out_w = out.shape[2:]
    for y in range(out_h):
        for x_ in range(out_w):
            block = grid[y * stride : y * stride + kernel, x_ * stride : x_ * stride + kernel]
            i, j = np.unravel_index(int(np.argmax(block)), block.shape)
            windows.append(
                {
                    "out": [y, x_],
                    "top": y * stride,
                    "left": x_ * stride,
                    "winner": [y * stride + int(i), x_ * stride + int(j)],
                }
            )
    result["windows"] = windows
    return result


# ------------------------------------------------------------------ parameter counts
def parameter_counts(fields: dict[str, Any]) -> dict[str, Any]:
    """``cl.summary`` of the lecture's CNN and MLP for the given sizes (defaults: the lecture's).

    CNN: blocks of conv ``kernel`` x ``kernel`` 'same' + ReLU + max-pool 2, then one
    fully connected layer to the classes. MLP: flatten, hidden layers with ReLU, output.
    """
    side = inputs.integer(fields, "input_size", 4, 128, default=100)
    classes = inputs.integer(fields, "classes", 1, 1000, default=10)
    kernel = inputs.integer(fields, "kernel_size", 1, 11, default=5)
    channels = _sizes(fields, "channels", [100, 100, 100], 1, 256)
    hidden = _sizes(fields, "hidden", [100, 100, 100], 1, 1024)
    cnn_layers: OrderedDict[str, nn.Module] = OrderedDict()
    spatial, previous = side, 1
    for i, width in enumerate(channels, start=1):
        if spatial < 2:
            raise ApiError(
                422,
                f"channels: after {i - 1} pooling steps the {side}x{side} image is {spatial}x{spatial}; "
                f"block {i} cannot pool it again. Use fewer blocks or a larger input.",
                field="channels",
            )
        cnn_layers[f"conv{i}"] = nn.Conv2d(previous, width, kernel, padding="same")
        cnn_layers[f"relu{i}"] = nn.ReLU()
        cnn_layers[f"pool{i}"] = nn.MaxPool2d(2)
        spatial, previous = spatial // 2, width
    cnn_layers["flatten"] = nn.Flatten()
    cnn_layers["fc"] = nn.Linear(previous * spatial * spatial, classes)
    mlp_layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    previous = side * side
    for i, width in enumerate(hidden, start=1):
        mlp_layers[f"fc{i}"] = nn.Linear(previous, width)
        mlp_layers[f"relu{i}"] = nn.ReLU()
        previous = width
    mlp_layers[f"fc{len(hidden) + 1}"] = nn.Linear(previous, classes)
    shape = (1, side, side)
    return {
        "input_shape": list(shape),
        "cnn": summary_json(cl.summary(nn.Sequential(cnn_layers), shape)),
        "mlp": summary_json(cl.summary(nn.Sequential(mlp_layers), shape)),
    }


def _sizes(fields: dict[str, Any], name: str, default: list[int], low: int, high: int) -> list[int]:
    values = fields.get(name, default)
    if not isinstance(values, list) or not 1 <= len(values) <= 5:
        raise ApiError(
            422, f"{name} must be a list of 1 to 5 layer sizes. Received: {name}={values!r}.", field=name
        )
    return [inputs.integer({name: v}, name, low, high) for v in values]


def summary_json(summary: Any) -> dict[str, Any]:
    """A ``cl.summary`` result as JSON: its rows and totals."""
    return {
        "model": summary.model_name,
        "rows": [
            {"name": r.name, "kind": r.kind, "output_shape": list(r.output_shape), "params": r.params}
            for r in summary.rows
        ],
        "total_params": summary.total_params,
        "trainable_params": summary.trainable_params,
        "text": str(summary),
    }

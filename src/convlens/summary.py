"""``summary(model, input_shape)``: a table of layers, output shapes and parameter counts.

Shapes come from each layer's ``output_shape`` (no forward pass), so a model
whose layers do not fit the input fails with an error naming the layer.
Containers (``Sequential``) are flattened to their leaf layers with dotted names,
as torchinfo does. Models that are not Sequential are run once on a zero batch
of one (in eval mode) to record their layers' output shapes.

>>> from convlens import nn, summary
>>> s = summary(nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU()), "1x28x28")
>>> s.rows[0]
SummaryRow(name='0', kind='Conv2d', output_shape=(6, 28, 28), params=156, trainable_params=156)
>>> s.total_params
156
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .nn.container import Sequential
from .nn.module import Module
from .tensor import no_grad

__all__ = ["Summary", "SummaryRow", "summary"]

_FLOAT_BYTES = 4  # float32


@dataclass(frozen=True)
class SummaryRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    trainable_params: int


@dataclass(frozen=True, repr=False)
class Summary:
    """Rows plus totals; ``str()`` and ``repr()`` are the printable table (so a REPL shows it)."""

    model_name: str
    input_shape: tuple[int, ...]
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    input_bytes: int
    activation_bytes: int  # float32 outputs of every row, batch of one (a forward pass keeps them)
    param_bytes: int
    receptive_field: int | None = None  # input cells one output sees, from ``model.receptive_field()``

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def total_bytes(self) -> int:
        return self.input_bytes + self.activation_bytes + self.param_bytes

    def __str__(self) -> str:
        headers = ("Layer (type)", "Output Shape", "Param #")
        cells = [(f"{r.name} ({r.kind})", str(list(r.output_shape)), f"{r.params:,}") for r in self.rows]
        widths = [
            max(len(h), *(len(c[i]) for c in cells)) + 2 if cells else len(h) + 2
            for i, h in enumerate(headers)
        ]
        width = sum(widths)

        def line(values: Sequence[str]) -> str:
            return (
                values[0].ljust(widths[0]) + values[1].ljust(widths[1]) + values[2].rjust(widths[2])
            ).rstrip()

        mb = 1024 * 1024
        out = [
            f"Model: {self.model_name}   input: {list(self.input_shape)} (batch excluded)",
            "=" * width,
            line(headers),
            "=" * width,
        ]
        out += [line(c) for c in cells]
        out += [
            "=" * width,
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
        ]
        if self.receptive_field is not None:
            out.append(f"Receptive field: {self.receptive_field:,} input samples")
        out += [
            "-" * width,
            f"Input size (MB): {self.input_bytes / mb:.2f}",
            f"Forward activations size (MB, batch 1, float32): {self.activation_bytes / mb:.2f}",
            f"Params size (MB): {self.param_bytes / mb:.2f}",
            f"Estimated total size (MB): {self.total_bytes / mb:.2f}",
            "=" * width,
        ]
        return "\n".join(out)

    __repr__ = __str__


def _parse_shape(input_shape: Any) -> tuple[int, ...]:
    try:
        if isinstance(input_shape, str):
            shape = tuple(int(n) for n in input_shape.lower().replace(",", "x").split("x"))
        else:
            shape = tuple(int(n) for n in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            "summary: input_shape must be like (1, 28, 28) or '1x28x28'. "
            f"Received: input_shape={input_shape!r}"
        ) from None
    if not shape or any(n < 1 for n in shape):
        raise ValueError(
            f"summary: input_shape must be positive sizes. Received: input_shape={input_shape!r}"
        )
    return shape


def _counts(module: Module) -> tuple[int, int]:
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def _leaf_rows(module: Module, name: str, shape: tuple[int, ...], rows: list[SummaryRow]) -> tuple[int, ...]:
    """Append rows for ``module`` given its input shape; return its output shape."""
    if isinstance(module, Sequential) and len(module):
        for child_name, child in module.named_children():
            shape = _leaf_rows(child, f"{name}.{child_name}" if name else child_name, shape, rows)
        return shape
    if any(True for _ in module.children()):
        return _traced_rows(module, name, shape, rows)
    try:
        out = tuple(module.output_shape(shape))
    except NotImplementedError:
        return _traced_rows(module, name, shape, rows)
    except ValueError as error:
        raise ValueError(
            f"summary: layer {name or '(model)'!r} ({type(module).__name__}) cannot take its input "
            f"({error}). Received: input of shape {shape}"
        ) from None
    rows.append(SummaryRow(name or type(module).__name__, type(module).__name__, out, *_counts(module)))
    return out


def _traced_rows(
    module: Module, name: str, shape: tuple[int, ...], rows: list[SummaryRow]
) -> tuple[int, ...]:
    """Shapes of a custom model's leaf layers, recorded by hooks during one forward pass."""
    handles = []
    prefix = f"{name}." if name else ""
    for sub_name, sub in module.named_modules():
        if sub is not module and not any(True for _ in sub.children()):

            def hook(m: Module, _inputs: tuple, output: Any, sub_name: str = sub_name) -> None:
                rows.append(
                    SummaryRow(prefix + sub_name, type(m).__name__, tuple(output.shape[1:]), *_counts(m))
                )

            handles.append(sub.register_forward_hook(hook))
    was_training = module.training
    module.eval()
    try:
        with no_grad():
            dtype = next(iter(module.parameters()), None)
            x = np.zeros((1, *shape), dtype=np.float32 if dtype is None else dtype.dtype)
            out = module(x)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"summary: {type(module).__name__} {name!r} failed on its input ({error}). "
            f"Received: input of shape {shape}"
        ) from None
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    own = sum(p.numel() for p in module._parameters.values() if p is not None)
    if own or not handles:
        rows.append(
            SummaryRow(name or type(module).__name__, type(module).__name__, tuple(out.shape[1:]), own, own)
        )
    return tuple(out.shape[1:])


def summary(model: Module, input_shape: Sequence[int] | str) -> Summary:
    """Layer-by-layer output shapes and parameter counts of ``model`` for one input.

    Args:
        model: a ``convlens.nn.Module``.
        input_shape: the shape of one example, batch excluded: ``(1, 28, 28)`` or ``"1x28x28"``.
    """
    shape = _parse_shape(input_shape)
    rows: list[SummaryRow] = []
    _leaf_rows(model, "", shape, rows)
    total, trainable = _counts(model)
    activations = sum(math.prod(r.output_shape) for r in rows) * _FLOAT_BYTES
    factory = model.__dict__.get("_factory")
    name = type(model).__name__ if factory is None else f"{factory[0]} ({type(model).__name__})"
    return Summary(
        name,
        shape,
        rows,
        total,
        trainable,
        math.prod(shape) * _FLOAT_BYTES,
        activations,
        total * _FLOAT_BYTES,
        _receptive_field(model),
    )


def _receptive_field(model: Module) -> int | None:
    method = getattr(model, "receptive_field", None)
    return int(method()) if callable(method) else None

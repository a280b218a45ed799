"""A Triton Inference Server model repository for a convlens model.

``write_repository(model, "models")`` writes::

    models/<name>/config.pbtxt     the model configuration (protobuf text format)
    models/<name>/1/model.onnx     version 1: the ONNX export

Triton serves it with its ONNX Runtime backend: ``tritonserver --model-repository=models``.
With ``max_batch_size > 0`` Triton adds the batch axis itself, so the ``dims`` in the
configuration are one sample's shape, as ``model.input_shape``.

``read_config`` parses the configuration back with a small parser of protobuf's text
format (scalars, strings, enums, ``[...]`` lists and nested ``{...}`` messages: the subset
Triton configurations use), so it can be checked without Triton's own packages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["config_text", "read_config", "write_repository"]

_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def write_repository(
    model: Any,
    directory: str | os.PathLike,
    name: str | None = None,
    input_shape: Sequence[int] | None = None,
    max_batch_size: int = 64,
    opset: int = 19,
    normalization: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
) -> Path:
    """Export ``model`` into the Triton repository ``directory``; returns ``directory/<name>``.

    ``name`` defaults to the model's factory name (``"lenet5"``) or its class name in lower case.

    >>> import tempfile, convlens as cl
    >>> folder = cl.onnx.triton.write_repository(cl.models.get("lenet5"), tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())
    ['1', 'config.pbtxt']
    """
    from .exporter import export

    name = _model_name(model) if name is None else name
    if not _NAME.match(name):
        raise ValueError(
            f"triton: a model name is letters, digits, '_', '.' and '-'. Received: name={name!r}"
        )
    if not isinstance(max_batch_size, int) or isinstance(max_batch_size, bool) or max_batch_size < 1:
        raise ValueError(
            f"triton: max_batch_size must be a positive int. Received: max_batch_size={max_batch_size!r}"
        )
    folder = Path(directory) / name
    proto = export(
        model, folder / "1" / "model.onnx", input_shape, opset, normalization=normalization, classes=classes
    )
    (folder / "config.pbtxt").write_text(config_text(name, proto, max_batch_size))
    return folder


def config_text(name: str, proto: Any, max_batch_size: int) -> str:
    """The ``config.pbtxt`` of an exported model: platform, batch limit, inputs and outputs."""
    inputs = ",\n".join(_tensor_entry(value) for value in proto.graph.input)
    outputs = ",\n".join(_tensor_entry(value) for value in proto.graph.output)
    return (
        f'name: "{name}"\n'
        'platform: "onnxruntime_onnx"\n'
        f"max_batch_size: {max_batch_size}\n"
        f"input [\n{inputs}\n]\n"
        f"output [\n{outputs}\n]\n"
        "dynamic_batching { }\n"
    )


def _tensor_entry(value: Any) -> str:
    dims = [d.dim_value for d in value.type.tensor_type.shape.dim][1:]  # the batch axis is Triton's
    return (
        "  {\n"
        f'    name: "{value.name}"\n'
        "    data_type: TYPE_FP32\n"
        f"    dims: [ {', '.join(map(str, dims))} ]\n"
        "  }"
    )


def _model_name(model: Any) -> str:
    factory = getattr(model, "_factory", None)  # set by convlens.models for checkpoints
    if factory:
        name, kwargs = factory
        return f"{name}_{kwargs['variant']}" if kwargs.get("variant", "modern") != "modern" else name
    return type(model).__name__.lower()


# ------------------------------------------------------------------- reading the text format back
_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([\[\]{}:,])|([A-Za-z0-9_.+\-]+))')


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise ValueError(
                    f"read_config: unexpected text at offset {position}: {text[position : position + 20]!r}"
                )
            break
        position = match.end()
        if match.group(1) is None and match.group(0).strip():
            tokens.append(match.group(0).strip())
    return tokens


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return token[1:-1].encode().decode("unicode_escape")
    for kind in (int, float):
        try:
            return kind(token)
        except ValueError:
            pass
    return token  # an enum name (TYPE_FP32) or true/false


def _message(tokens: list[str], i: int, closing: str | None) -> tuple[dict[str, list[Any]], int]:
    """Fields until ``closing``; every field maps to the list of its values (repeated or not)."""
    fields: dict[str, list[Any]] = {}
    while i < len(tokens) and tokens[i] != closing:
        key = tokens[i]
        i += 1
        if tokens[i] == ":":
            i += 1
        values, i = _value(tokens, i)
        fields.setdefault(key, []).extend(values)
    if closing is not None and i >= len(tokens):
        raise ValueError(f"read_config: missing {closing!r}")
    return fields, i + 1


def _value(tokens: list[str], i: int) -> tuple[list[Any], int]:
    if tokens[i] == "{":
        message, i = _message(tokens, i + 1, "}")
        return [message], i
    if tokens[i] == "[":
        values: list[Any] = []
        i += 1
        while tokens[i] != "]":
            if tokens[i] == ",":
                i += 1
                continue
            more, i = _value(tokens, i)
            values.extend(more)
        return values, i + 1
    return [_scalar(tokens[i])], i + 1


def read_config(path: str | os.PathLike) -> dict[str, list[Any]]:
    """Parse a ``config.pbtxt``: each field name maps to the list of its values
    (messages are dicts of the same kind).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "config.pbtxt"
    >>> _ = f.write_text('name: "m"\\nmax_batch_size: 8\\ninput [ { name: "x" dims: [ 1, 2 ] } ]\\n')
    >>> read_config(f)
    {'name': ['m'], 'max_batch_size': [8], 'input': [{'name': ['x'], 'dims': [1, 2]}]}
    """
    fields, _ = _message(_tokens(Path(path).read_text()), 0, None)
    return fields

"""``export``: a convlens model as an ONNX file, layer by layer in standard ops.

The graph has one input ``(N, *input_shape)`` with a dynamic batch axis ``N`` and one
output; each weight is an initializer named by its ``state_dict`` key; ``ir_version`` is
the one the opset needs (written explicitly); the model's metadata records the producer,
the input layout and shape, the normalisation the input expects and the architecture.
The file is checked (``onnx.checker`` with strict shape inference) before it is written.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from .._version import __version__
from ..models import lenet

__all__ = ["MIN_OPSET", "export", "input_layout"]

MIN_OPSET = 13  # Softmax over one axis, ReduceSum/Unsqueeze axes as inputs
_LAYOUTS = {1: "NF", 2: "NCL", 3: "NCHW", 4: "NCDHW"}


def input_layout(input_shape: Sequence[int]) -> str:
    """The batched layout name of a per-sample shape: ``(1, 28, 28)`` is ``"NCHW"``.

    >>> input_layout((1, 28, 28))
    'NCHW'
    """
    return _LAYOUTS.get(len(input_shape), "N" + "x" * len(input_shape))


def export(
    model: Any,
    path: str | os.PathLike | None,
    input_shape: Sequence[int] | None = None,
    opset: int = 19,
    *,
    normalization: Mapping[str, Any] | None = None,
    classes: Sequence[str] | None = None,
    input_name: str = "input",
    output_name: str = "output",
) -> Any:
    """Export ``model``'s inference (eval-mode) computation to ONNX and write it to ``path``.

    Args:
        model: an ``nn.Module`` made of the layers listed in ``docs/scale-out.md``
            (``Sequential`` nesting is followed; the classic LeNet-5 included).
        path: the ``.onnx`` file to write, or None to only build the model.
        input_shape: one sample's shape, batch excluded, e.g. ``(1, 28, 28)``; default
            ``model.input_shape``.
        opset: the default-domain opset, 13 or later (``padding_mode="circular"`` needs 19).
        normalization: what the input expects, recorded in the metadata, e.g.
            ``{"mean": 0.1307, "std": 0.3081, "pad": 0}``; None records ``"none"``.
        classes: the class names, in output order, recorded in the metadata when given.
        input_name, output_name: the graph's value names.

    Returns:
        The ``onnx.ModelProto`` (already checked).

    Raises:
        ExportError (a ValueError): a layer has no ONNX form; the message names the layer.
        ValueError: a bad ``input_shape`` or ``opset``, or a model that is not float32.

    Dropout is removed and BatchNorm uses its running statistics, whatever mode the model
    is in. Differs from ``torch.onnx.export``: no tracing; the graph is built from the layers.
    """
    import onnx
    from onnx import helper

    from ._graph import Graph

    shape = _check_input_shape(model, input_shape)
    opset = _check_opset(opset)
    _check_float32(model)
    graph = Graph(opset)
    x = graph.reserve(input_name)
    y, out_shape = _convert(graph, model, "", x, shape)
    if not graph.nodes or graph.nodes[-1].output[0] != y:  # nothing computed (only Dropout, say)
        y = graph.node("Identity", [y], "Identity")
    graph.rename_last_output(output_name)
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            type(model).__name__,
            [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["N", *shape])],
            [helper.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, ["N", *out_shape])],
            initializer=graph.initializers,
        ),
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name="convlens",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for([helper.make_opsetid("", opset)]),
        doc_string=f"{type(model).__name__} exported by convlens {__version__}",
    )
    helper.set_model_props(proto, _metadata(model, shape, normalization, classes))
    check(proto)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, os.fspath(path))
    return proto


def check(proto: Any) -> None:
    """``onnx.checker`` (full check) and strict shape inference; raises on any problem."""
    import onnx

    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)


def _convert(
    graph: Any, module: Any, key: str, x: str, shape: tuple[int, ...]
) -> tuple[str, tuple[int, ...]]:
    """Nodes for ``module`` (recursing into plain Sequentials); its output's name and shape."""
    from ._layers import converter_for

    if type(module) is lenet.LeNet5Classic:  # its Sequential body, then the scores are -penalties
        y, shape = _convert_children(graph, module, key, x, shape)
        return graph.node("Neg", [y], f"{key}Neg" if key else "Neg"), shape
    if isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward:
        return _convert_children(graph, module, key, x, shape)
    convert = converter_for(module, key)
    return convert(graph, module, key, x, shape), tuple(module.output_shape(shape))


def _convert_children(
    graph: Any, module: Any, key: str, x: str, shape: tuple[int, ...]
) -> tuple[str, tuple[int, ...]]:
    for name, child in module.named_children():
        x, shape = _convert(graph, child, f"{key}{name}.", x, shape)
    return x, shape


def _check_input_shape(model: Any, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    shape = getattr(model, "input_shape", None) if input_shape is None else input_shape
    if shape is None:
        raise ValueError(
            "onnx.export: input_shape is needed (one sample's shape, batch excluded, e.g. (1, 28, 28)) "
            "for a model without an input_shape attribute. Received: input_shape=None"
        )
    if isinstance(shape, str | bytes) or not all(
        isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0 for n in shape
    ):
        raise ValueError(
            f"onnx.export: input_shape must be positive ints, batch excluded, e.g. (1, 28, 28). "
            f"Received: input_shape={input_shape!r}"
        )
    return tuple(int(n) for n in shape)


def _check_opset(opset: Any) -> int:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= newest:
        raise ValueError(
            f"onnx.export: opset must be an int from {MIN_OPSET} to {newest} (this onnx's newest). "
            f"Received: opset={opset!r}"
        )
    return opset


def _check_float32(model: Any) -> None:
    for name, parameter in model.named_parameters():
        if parameter.data.dtype != np.float32:
            raise ValueError(
                f"onnx.export: the graph is float32 but {name} is {parameter.data.dtype}; call "
                f"model.float() first. Received: {name}.dtype={parameter.data.dtype}"
            )


def _metadata(
    model: Any, shape: tuple[int, ...], normalization: Mapping[str, Any] | None, classes: Sequence[str] | None
) -> dict[str, str]:
    props = {
        "producer": f"convlens {__version__}",
        "input_layout": input_layout(shape),
        "input_shape": "x".join(map(str, shape)),
        "normalization": "none" if normalization is None else json.dumps(dict(normalization), sort_keys=True),
    }
    if classes is not None:
        props["classes"] = json.dumps([str(c) for c in classes])
    get_config = getattr(model, "get_config", None)
    if callable(get_config):
        with contextlib.suppress(TypeError, ValueError):  # a hand-made module whose config is not JSON
            props["architecture"] = json.dumps(get_config(), sort_keys=True)
    return props

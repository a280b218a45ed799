"""A small ONNX graph under construction: nodes, initializers and constants with unique names.

Every layer converter (``_layers``) writes into one :class:`Graph`; ``exporter`` turns it into
a ``ModelProto``. The third-party ``onnx`` package is imported here, so this module is
imported only when an export actually runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["Graph"]


class Graph:
    """Nodes in execution order, initializers named by ``state_dict`` keys, and named values.

    ``opset`` is the default-domain opset the nodes are written for (converters read it to
    choose between forms, e.g. Pad's ``wrap`` mode needs 19).
    """

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()

    def _unique(self, hint: str) -> str:
        name, i = hint, 1
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._names.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim ``name`` for a graph input (so no node output takes it)."""
        if name in self._names:
            raise ValueError(f"onnx.export: the value name {name!r} is taken. Received: name={name!r}")
        self._names.add(name)
        return name

    def initializer(self, key: str, array: Any) -> str:
        """A weight as an initializer named exactly ``key`` (its ``state_dict`` key)."""
        if key in self._names:
            raise ValueError(f"onnx.export: two weights are both named {key!r}. Received: key={key!r}")
        self._names.add(key)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), key))
        return key

    def constant(self, value: Any, hint: str, dtype: Any = np.float32) -> str:
        """A fixed value (pads, axes, scale factors) as a Constant node, not an initializer,
        so the initializers stay exactly the model's weights."""
        name = self._unique(hint)
        tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype), name)
        self.nodes.append(helper.make_node("Constant", [], [name], name=name, value=tensor))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attributes: Any) -> str:
        """Append one ``op`` node with a single output; returns the output's name."""
        name = self._unique(hint)
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def rename_last_output(self, name: str) -> None:
        """Give the last node's output the graph output's name (nothing reads it yet)."""
        self._names.add(name)
        self.nodes[-1].output[0] = name

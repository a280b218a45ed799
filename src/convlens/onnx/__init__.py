"""ONNX export, ONNX Runtime serving and Triton repositories (needs ``pip install 'convlens[onnx]'``).

>>> import tempfile, os, convlens as cl
>>> model = cl.models.get("lenet5")
>>> path = os.path.join(tempfile.mkdtemp(), "lenet5.onnx")
>>> proto = cl.onnx.export(model, path, (1, 28, 28))
>>> [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
['N', 1, 28, 28]
>>> [i.name for i in proto.graph.initializer][:2]
['conv1.weight', 'conv1.bias']

``export`` builds the graph from the layers (one converter per layer in ``_layers``);
``runtime`` runs a file in ONNX Runtime; ``triton`` writes a Triton model repository;
``convlens export`` (in ``convlens.cli.export``) is the command line. The third-party
``onnx`` and ``onnxruntime`` packages are imported only when one of these runs, so
``import convlens`` never needs them.
"""

from __future__ import annotations

from . import runtime, triton
from ._errors import ExportError
from .exporter import MIN_OPSET, check, export, input_layout

__all__ = ["MIN_OPSET", "ExportError", "check", "export", "input_layout", "runtime", "triton"]

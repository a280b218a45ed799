"""The export error, apart from the graph code so ``convlens.onnx`` imports without ``onnx``."""

from __future__ import annotations

__all__ = ["ExportError"]


class ExportError(ValueError):
    """A layer that has no ONNX form; the message names the layer and the reason."""

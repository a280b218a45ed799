"""Run an exported file in ONNX Runtime: on a batch, or on picture files as ``convlens predict``.

The picture path reads the file's own metadata (input shape and normalisation, written
by ``export``), so an ONNX file alone is enough to classify images the way the
convlens model did.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["metadata", "predict_images", "run", "session"]


def session(path: str | os.PathLike) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``path`` on the CPU."""
    import onnxruntime

    return onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])


def run(model: Any, batch: np.ndarray) -> np.ndarray:
    """The output of ``model`` (a path or a session) for a float32 ``batch`` ``(N, *input_shape)``."""
    runner = session(model) if isinstance(model, str | os.PathLike) else model
    name = runner.get_inputs()[0].name
    return runner.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def metadata(model: Any) -> dict[str, str]:
    """The metadata ``export`` wrote (input_layout, input_shape, normalization, ...)."""
    runner = session(model) if isinstance(model, str | os.PathLike) else model
    return dict(runner.get_modelmeta().custom_metadata_map)


def predict_images(model: Any, images: Sequence[Any], top: int = 1) -> list[list[tuple[int, float]]]:
    """For each picture, its ``top`` most likely classes with their probabilities.

    The pictures are prepared as ``convlens predict`` does (``convlens.images.model_input``)
    with the normalisation recorded in the file (MNIST's when the file records none).
    """
    from ..functional import softmax
    from ..images import model_input

    runner = session(model) if isinstance(model, str | os.PathLike) else model
    props = metadata(runner)
    shape = tuple(int(n) for n in props.get("input_shape", "1x28x28").split("x"))
    recorded = props.get("normalization", "none")
    norm = {} if recorded == "none" else json.loads(recorded)
    batch = model_input(list(images), shape, norm.get("mean"), norm.get("std"), norm.get("pad"))
    probabilities = softmax(run(runner, batch), dim=1).data
    order = np.argsort(-probabilities, axis=1)[:, :top]
    return [[(int(c), float(p[c])) for c in row] for p, row in zip(probabilities, order, strict=True)]

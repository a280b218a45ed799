"""``convlens predict``: classify picture files as MNIST digits (see :mod:`convlens.images`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..functional import softmax
from ..images import IMAGE_SUFFIXES, model_input
from ..tasks import TASKS
from ..tensor import Tensor, no_grad
from . import tasks as tasks_cli
from ._common import CLIError, positive_int, read_checkpoint, warn


def register(commands: Any) -> None:
    p = commands.add_parser(
        "predict",
        help="classify images (PNG/JPEG files or folders); for a --task checkpoint: WAV files "
        "(spoken digits) or 64x64 scenes (segment: writes NAME.mask.png)",
        description="Classify images. Each is converted as MNIST was made: grayscale, inverted if the "
        "background is light, cropped to the ink, longer side scaled to 20 px, centred by "
        "centre of mass in 28x28, then normalised as in training.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders of images")
    p.add_argument("--top", type=positive_int, default=1, help="show the K most likely classes")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    state = read_checkpoint(args.checkpoint)
    model, config = state["model"], dict(state["config"])
    if config.get("task") in TASKS:
        return tasks_cli.predict(args, state)
    names = config.get("classes") or [str(i) for i in range(10)]
    files, batch = _prepare(image_files(args.images), model, config)
    model.eval()
    with no_grad():
        probabilities = softmax(model(Tensor(batch)), dim=1).data
    width = max(len(str(f)) for f in files)
    for path, p in zip(files, probabilities, strict=True):
        order = np.argsort(-p)[: args.top]
        guesses = "  ".join(f"{names[c]} ({100 * p[c]:.1f}%)" for c in order)
        print(f"{str(path):<{width}}  {guesses}")
    return 0


def _prepare(files: list[Path], model: Any, config: dict[str, Any]) -> tuple[list[Path], np.ndarray]:
    """The model's input for every picture that can be read; each other one is named and skipped."""
    input_shape = (1, *tuple(getattr(model, "input_shape", (1, 28, 28)))[-2:])
    kept, inputs = [], []
    for path in files:
        try:
            inputs.append(
                model_input([path], input_shape, config.get("mean"), config.get("std"), config.get("pad"))
            )
        except ImportError as error:  # no Pillow
            raise CLIError(str(error)) from None
        except ValueError as error:  # undecodable or blank: named, and the others still classified
            reason = _reason(error)
            if len(files) == 1:
                raise CLIError(f"{path}: {reason}") from None
            warn(f"skipped {path}: {reason}")
            continue
        kept.append(path)
    if not kept:
        raise CLIError(f"none of the {len(files)} images could be read")
    return kept, np.concatenate(inputs)


def _reason(error: ValueError) -> str:
    """What is wrong, without the op and the echo: ``mnist_like: the image is blank (no ink
    found). Received: ...`` -> ``the image is blank (no ink found)``."""
    text = str(error).split(". Received:")[0]
    op, _, rest = text.partition(" ")
    return rest if op.endswith(":") and rest else text


def image_files(items: Sequence[str]) -> list[Path]:
    """The files named by ``items``, each folder replaced by its pictures (sorted by name)."""
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise CLIError(f"no images (PNG, JPEG, ...) in folder {item}")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise CLIError(f"image not found: {item}")
    return files

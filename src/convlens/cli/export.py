"""``convlens export CHECKPOINT --onnx out.onnx`` / ``--triton DIR``: a checkpoint as an ONNX
file, or as a Triton model repository, with the normalisation it was trained with recorded.

``add_arguments(parser)`` and ``run(args)`` follow the other commands; ``register(commands)``
adds the ``export`` sub-command to the ``convlens`` parser. ``run_onnx(path, images)`` is the
ONNX Runtime counterpart of ``convlens predict`` (used by ``examples/serve_onnxruntime.py``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._common import CLIError, input_shape, positive_int, read_checkpoint

__all__ = ["add_arguments", "register", "run", "run_onnx"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "export",
        help="export a checkpoint to ONNX or a Triton model repository",
        description="Export a trained model to ONNX (for ONNX Runtime) and/or a Triton Inference "
        "Server model repository (DIR/<name>/config.pbtxt and DIR/<name>/1/model.onnx). The input "
        "normalisation used in training is recorded in the file's metadata.",
    )
    add_arguments(parser)
    parser.set_defaults(handler=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT")
    parser.add_argument("--onnx", metavar="OUT.onnx", help="write the ONNX file here")
    parser.add_argument("--triton", metavar="DIR", help="write a Triton model repository in DIR")
    parser.add_argument("--name", help="the Triton model's name (default: the model's, e.g. lenet5)")
    parser.add_argument("--opset", type=positive_int, default=19, help="ONNX opset (default: 19)")
    parser.add_argument(
        "--max-batch-size", type=positive_int, default=64, help="Triton's max_batch_size (default: 64)"
    )
    parser.add_argument(
        "--input", type=input_shape, metavar="CxHxW", help="one sample's shape (default: the model's)"
    )


def run(args: argparse.Namespace) -> int:
    from ..onnx.exporter import export
    from ..onnx.triton import write_repository

    if not args.onnx and not args.triton:
        raise CLIError("say where to write: --onnx OUT.onnx and/or --triton DIR", code=2)
    _need_onnx()
    state = read_checkpoint(args.checkpoint)
    model, config = state["model"], dict(state["config"])
    shape = args.input or config.get("input_shape") or getattr(model, "input_shape", None)
    if shape is None:
        raise CLIError("the checkpoint does not record the input shape; give --input CxHxW", code=2)
    options = {
        "normalization": {key: config[key] for key in ("mean", "std", "pad") if config.get(key) is not None}
        or None,
        "classes": config.get("classes"),
    }
    try:
        if args.onnx:
            export(model, args.onnx, tuple(shape), args.opset, **options)
            print(f"wrote {args.onnx}")
        if args.triton:
            folder = write_repository(
                model, args.triton, args.name, tuple(shape), args.max_batch_size, args.opset, **options
            )
            print(f"wrote {folder / 'config.pbtxt'} and {folder / '1' / 'model.onnx'}")
    except ValueError as error:  # ExportError included: it names the layer
        raise CLIError(str(error)) from None
    return 0


def run_onnx(path: str, images: list[str], top: int = 1) -> int:
    """Classify picture files with the ONNX file at ``path`` in ONNX Runtime; prints one line each."""
    from ..onnx.runtime import metadata, predict_images, session
    from .predict import image_files

    _need_onnx()
    if not Path(path).exists():
        raise CLIError(f"ONNX file not found: {path}")
    runner = session(path)
    classes = metadata(runner).get("classes")
    names = json.loads(classes) if classes else [str(i) for i in range(10)]
    files = image_files(images)
    width = max(len(str(f)) for f in files)
    for file, guesses in zip(files, predict_images(runner, files, top), strict=True):
        text = "  ".join(f"{names[c]} ({100 * p:.1f}%)" for c, p in guesses)
        print(f"{str(file):<{width}}  {text}")
    return 0


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise CLIError("ONNX export needs onnx and onnxruntime: pip install 'convlens[onnx]'") from None

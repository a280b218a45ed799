"""Classify pictures with an exported model in ONNX Runtime, without convlens's engine.

    convlens export run/lenet5 --onnx lenet5.onnx
    python examples/serve_onnxruntime.py lenet5.onnx digit.png more-digits/

Each picture is prepared as ``convlens predict`` prepares it, with the normalisation the
ONNX file's metadata records; one line per picture: the file, the class, its probability.
"""

from __future__ import annotations

import argparse
import sys

from convlens.cli._common import CLIError
from convlens.cli.export import run_onnx


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="the .onnx file")
    parser.add_argument("images", nargs="+", help="picture files or folders")
    parser.add_argument("--top", type=int, default=1, help="show the K most likely classes")
    args = parser.parse_args()
    try:
        return run_onnx(args.model, args.images, args.top)
    except CLIError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code


if __name__ == "__main__":
    raise SystemExit(main())

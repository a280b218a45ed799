"""``convlens summary``: the layer-by-layer table of a model (:func:`convlens.summary`)."""

from __future__ import annotations

import argparse
from typing import Any

from ..summary import summary
from ._common import CLIError, input_shape, make_model, model_names


def register(commands: Any) -> None:
    p = commands.add_parser(
        "summary",
        help="layer-by-layer table of a model",
        description="Print the layers, output shapes and parameter counts of a model.",
    )
    p.add_argument("model", metavar="MODEL", help="a model name (see 'convlens summary --list')", nargs="?")
    p.add_argument(
        "--input",
        type=input_shape,
        metavar="CxHxW",
        help="input shape without the batch, e.g. 1x28x28 (default: the model's)",
    )
    p.add_argument("--list", action="store_true", help="list the known model names")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.list or not args.model:
        print("\n".join(model_names()))
        return 0
    model = make_model(args.model)
    shape = args.input or tuple(getattr(model, "input_shape", (1, 28, 28)))
    try:
        table = summary(model, shape)
    except (ValueError, TypeError) as error:
        raise CLIError(f"{args.model} cannot take input {'x'.join(map(str, shape))}: {error}") from None
    print(table)
    return 0

"""``convlens visualize``: the kernels and feature maps of a trained network (:mod:`convlens.viz`)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import CLIError, existing, need_viz, plain


def register(commands: Any) -> None:
    p = commands.add_parser(
        "visualize",
        help="pictures of what a trained network sees: its kernels and feature maps",
        description="Write kernels.png (the first convolution's kernels) and feature_maps.png (every "
        "layer's output for IMAGE, prepared as 'convlens predict' does) into OUT_DIR. Needs matplotlib.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by 'convlens train'")
    p.add_argument("image", metavar="IMAGE", help="a PNG/JPEG digit (any size, colour or not)")
    p.add_argument("-o", "--out", metavar="OUT_DIR", help="where to write (default: beside CHECKPOINT)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    viz = need_viz()
    checkpoint = existing(args.checkpoint, "checkpoint")
    image = existing(args.image, "image")
    out_dir = args.out or (checkpoint if checkpoint.is_dir() else checkpoint.parent)
    try:
        written = viz.visualize_checkpoint(checkpoint, image, out_dir)
    except (ValueError, TypeError, KeyError) as error:
        raise CLIError(f"cannot visualize {checkpoint} on {image}: {plain(error)}") from None
    for name, where in written.items():
        print(f"{name}: {where}")
    return 0

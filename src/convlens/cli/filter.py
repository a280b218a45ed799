"""``convlens filter``: apply a classic kernel of :mod:`convlens.filters` to a picture."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import filters
from ..images import read_pixels
from ._common import CLIError, existing, need_viz, plain


def register(commands: Any) -> None:
    p = commands.add_parser(
        "filter",
        help="apply a classic image kernel (blur, sharpen, edges, ...)",
        description="Apply a kernel of cl.filters to an image and write the result. Output rule: the edge "
        "detectors (laplacian, log7, log9, sobel_x, sobel_y) are written as the absolute response "
        "scaled so its maximum is 255; the others (identity, blurs, sharpen, emboss) are rounded and "
        "clipped to 0..255.",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument(
        "--kernel",
        metavar="NAME|FILE",
        help="one of: " + ", ".join(sorted(filters.KERNELS)) + "; or a kernel file: a .npy array or a "
        "text file of rows of numbers (any 2-D shape no larger than the image)",
    )
    p.add_argument(
        "--grid",
        action="store_true",
        help="write one picture of the input beside every kernel's result, each labelled "
        "(default OUT: IMAGE-stem_filters.png; needs matplotlib)",
    )
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: IMAGE-stem_KERNEL.png)")
    p.add_argument(
        "--padding-mode",
        default="reflect",
        choices=["zeros", "reflect", "replicate", "circular"],
        help="how the border is extended (default: %(default)s)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.grid and not args.kernel:
        raise CLIError("filter: give --kernel NAME|FILE, or --grid for every kernel", code=2)
    kernel, label = _kernel(args.kernel) if not args.grid else (None, "")
    path = existing(args.image, "image")
    pixels = _read(path)
    if kernel is None:
        return _grid(args, path, pixels)
    try:
        response = filters.apply(pixels.astype(np.float32), kernel, padding_mode=args.padding_mode)
    except ValueError as error:
        raise CLIError(f"kernel {label}: {error}") from None
    edge = filters.shows_magnitude(kernel, label)
    target = Path(args.output) if args.output else path.with_name(f"{path.stem}_{_label_for_name(label)}.png")
    _save(filters.to_uint8(np.asarray(response, np.float32), edge=edge), target)
    print(f"{label}: {path} -> {target}")
    return 0


def _label_for_name(label: str) -> str:
    """A kernel's part of the default output name: its name, or its file's name with the suffix
    kept (``k.txt`` -> ``k_txt``), so ``k.txt`` and ``k.npy`` do not overwrite each other's result."""
    return label if label in filters.KERNELS else Path(label).name.replace(".", "_")


def _read(path: Path) -> np.ndarray:
    try:
        return read_pixels(path)
    except (ValueError, ImportError) as error:  # undecodable, or no Pillow
        raise CLIError(str(error)) from None


def _kernel(spec: str) -> tuple[np.ndarray, str]:
    """(kernel, label) for ``--kernel``: a name of cl.filters.KERNELS, or a .npy / text file."""
    if spec in filters.KERNELS:
        return np.asarray(filters.KERNELS[spec], dtype=np.float64), spec
    if not Path(spec).exists():
        known = ", ".join(sorted(filters.KERNELS))
        raise CLIError(f"unknown kernel {spec!r}: not a file, and not one of {known}", code=2)
    try:
        return filters.load_kernel(spec), spec
    except ValueError as error:
        raise CLIError(str(error)) from None


def _save(pixels: np.ndarray, target: Path) -> None:
    """Write ``pixels`` with Pillow, atomically (temp file + rename), in the format of the suffix."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(handle)
    try:
        Image.fromarray(pixels).save(temp)
        os.replace(temp, target)
    except (OSError, ValueError, KeyError) as error:
        Path(temp).unlink(missing_ok=True)
        raise CLIError(f"cannot write {target}: {plain(error)}") from None


def _grid(args: argparse.Namespace, path: Path, pixels: np.ndarray) -> int:
    viz = need_viz()
    target = Path(args.output) if args.output else path.with_name(f"{path.stem}_filters.png")
    viz.filters_grid(pixels, padding_mode=args.padding_mode, save=target)
    print(f"every kernel: {path} -> {target}")
    return 0

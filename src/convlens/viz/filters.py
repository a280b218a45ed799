"""The photo-editor kernels of :mod:`convlens.filters`, each applied to one picture."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import filters
from ..images import read_pixels

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

from ._figure import PathLike, _new_figure, _pillow, _require_matplotlib, _save, _to_numpy


# ------------------------------------------------------------------ photo-editor filters
def _load_picture(image: Any, op: str) -> np.ndarray:
    if isinstance(image, str | os.PathLike):
        _pillow(op)
        return read_pixels(image)
    array = _to_numpy(image, "image", op)
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{op}: image must be HxW or HxWxC (C = 1, 3 or 4). Received: image.shape={array.shape}"
        )
    if array.ndim not in (2, 3):
        raise ValueError(f"{op}: image must be HxW or HxWxC. Received: image.shape={array.shape}")
    return array


def _displayable(result: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, dict]:
    """A filter result ready for imshow: values scaled into [0, 1] for colour, a gray
    colormap with the result's own range for grayscale (edge maps are mostly ~0)."""
    result = np.asarray(result, dtype=np.float64)
    if result.ndim == 3 and result.shape[-1] == 1:
        result = result[..., 0]
    if result.ndim == 2:
        return result, {"cmap": "gray"}
    scale = 255.0 if source.dtype == np.uint8 or result.max() > 1.5 else 1.0
    return np.clip(result[..., :3] / scale, 0, 1), {}


def filters_grid(
    image: Any,
    kernel_names: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    padding_mode: str = "reflect",
    save: PathLike | None = None,
) -> Figure:
    """The input beside the result of every kernel of :data:`convlens.filters.KERNELS`
    (or of ``kernel_names``), each panel labelled with the kernel's name and size.

    ``image``: HxW or HxWxC (uint8 or float) or a path Pillow can open. Results come
    from :func:`convlens.filters.apply` ('same' padding, ``padding_mode``). Grayscale
    results are shown with their own range (edge detectors give signed values).
    Axes: one per kernel plus the input.
    """
    _require_matplotlib()
    op = "filters_grid"
    picture = _load_picture(image, op)
    names = list(filters.KERNELS) if kernel_names is None else [str(n) for n in kernel_names]
    unknown = [n for n in names if n not in filters.KERNELS]
    if unknown:
        raise ValueError(
            f"{op}: unknown kernel name(s); known: {sorted(filters.KERNELS)}. "
            f"Received: kernel_names={unknown}"
        )
    panels = [("input", picture, None)]
    for name in names:
        kernel = np.asarray(filters.KERNELS[name])
        panels.append(
            (name, filters.apply(picture, kernel, padding="same", padding_mode=padding_mode), kernel)
        )
    ncols = max(1, min(ncols, len(panels)))
    nrows = math.ceil(len(panels) / ncols)
    height, width = picture.shape[:2]
    panel_w = 3.0
    panel_h = float(np.clip(panel_w * height / width, 1.5, 4.5)) + 0.4
    fig = _new_figure((panel_w * ncols, panel_h * nrows))
    grid = fig.add_gridspec(nrows, ncols)
    for index, (name, result, kernel) in enumerate(panels):
        ax = fig.add_subplot(grid[divmod(index, ncols)])
        shown, style = _displayable(result, picture)
        ax.imshow(shown, interpolation="antialiased", **style)
        label = name if kernel is None else f"{name} ({kernel.shape[0]}x{kernel.shape[1]})"
        ax.set_title(label, fontsize=9)
        ax.set_label(name)
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, save)
    return fig

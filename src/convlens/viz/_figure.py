"""What every picture of ``cl.viz`` shares: an Agg figure, atomic PNG writes, argument checks.

Figures are ``matplotlib.figure.Figure`` objects drawn by the Agg renderer, never
through ``pyplot``: they work without a display, do not pile up in pyplot's global
figure list and are not shown twice in Jupyter.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..functional._args import ntuple
from ..tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

PathLike = str | os.PathLike

_MPL_MISSING = "cl.viz needs matplotlib: pip install 'convlens[viz]'"
_PIL_MISSING = "cl.viz.{op} needs Pillow: pip install 'convlens[viz]'"


# ------------------------------------------------------------------ matplotlib plumbing
def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends import backend_agg  # noqa: F401
    except ImportError as error:
        raise ImportError(_MPL_MISSING) from error


def _new_figure(figsize: tuple[float, float], layout: str | None = "constrained") -> Figure:
    """A Figure drawn by Agg, independent of pyplot and of any display."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _pillow(op: str) -> Any:
    try:
        from PIL import Image
    except ImportError as error:
        raise ImportError(_PIL_MISSING.format(op=op)) from error
    return Image


def _atomic_write(path: PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place."""
    import tempfile

    path = Path(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(handle)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _save(fig: Figure, save: PathLike | None, dpi: float = 100) -> None:
    if save is not None:
        _atomic_write(save, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, facecolor="white"))


def _figure_to_image(fig: Figure, dpi: float = 100) -> Any:
    """Render ``fig`` to an RGB Pillow image."""
    image_module = _pillow("convolution_animation")
    fig.set_dpi(dpi)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return image_module.fromarray(np.ascontiguousarray(rgba[..., :3]))


# ------------------------------------------------------------------ input checking
def _to_numpy(value: Any, name: str, op: str) -> np.ndarray:
    data = value.data if isinstance(value, Tensor) else value
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as error:  # ragged lists
        raise TypeError(f"{op}: {name} must be a numeric array. Received: {name}={value!r}") from error
    if array.dtype == bool:
        array = array.astype(np.int64)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{op}: {name} must be a numeric array. Received: {name}.dtype={array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"{op}: {name} must be finite. Received: {name} containing NaN or infinity")
    return array


def _matrix(value: Any, name: str, op: str) -> np.ndarray:
    array = _to_numpy(value, name, op)
    if array.ndim != 2:
        raise ValueError(f"{op}: {name} must be 2-D (H x W). Received: {name}.shape={array.shape}")
    if 0 in array.shape:
        raise ValueError(f"{op}: {name} must not be empty. Received: {name}.shape={array.shape}")
    return array.astype(np.float64)


def _pair(value: Any, name: str, op: str, minimum: int) -> tuple[int, int]:
    return ntuple(value, 2, name, op, minimum=minimum)  # type: ignore[return-value]


def _fmt(value: float) -> str:
    """A number as the lecture writes it: ``13`` not ``13.0``; 3 significant digits otherwise."""
    value = float(value)
    if abs(value - round(value)) <= 1e-9 * max(1.0, abs(value)):
        return str(int(round(value)))
    return f"{value:.3g}"


def _term(value: float) -> str:
    text = _fmt(value)
    return f"({text})" if text.startswith("-") else text

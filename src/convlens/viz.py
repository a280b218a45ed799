"""See inside a CNN: pictures of convolutions, kernels, feature maps and training.

Every function returns a :class:`matplotlib.figure.Figure` and takes ``save=path``
to also write it as a PNG (atomically: a temporary file, then ``os.replace``).
matplotlib is an optional extra (``pip install 'convlens[viz]'``), imported only
when a function here is called.

The figures are built with ``matplotlib.figure.Figure`` and drawn by the Agg
renderer, never through ``pyplot``: they work without a display, do not pile up
in pyplot's global figure list and are not shown twice in Jupyter. In a notebook
(``%matplotlib inline``) the returned figure displays itself; in a script use
``save=`` or ``fig.savefig``.

>>> import convlens as cl
>>> fig = cl.viz.convolution_steps([[1, 1, 2], [2, 2, 1], [1, 5, 0]],
...                                [[2, 3, 0], [0, 1, 3], [3, 0, 3]])  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "confusion_matrix",
    "convolution_animation",
    "convolution_steps",
    "feature_maps",
    "filters_grid",
    "kernels",
    "most_confused",
    "training_curves",
    "visualize_checkpoint",
]

PathLike = str | os.PathLike

_MPL_MISSING = "cl.viz needs matplotlib: pip install 'convlens[viz]'"
_PIL_MISSING = "cl.viz.{op} needs Pillow: pip install 'convlens[viz]'"

# Colours of the convolution pictures (colour-blind safe Okabe-Ito orange for "now").
_WINDOW = "#e69f00"
_PADDING = (0.86, 0.86, 0.86, 1.0)
_DONE = (0.90, 0.96, 0.90, 1.0)
_PENDING = (1.0, 1.0, 1.0, 1.0)
_CURRENT = (0.97, 0.78, 0.42, 1.0)
_MAX_PANELS = 64  # convolution_steps with steps=None
_MAX_ANNOTATED = 16  # grids wider or taller than this get no numbers in their cells


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
        raise TypeError(f"{op}: {name} must be a numeric array. Received dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise ValueError(f"{op}: {name} contains NaN or infinity")
    return array


def _matrix(value: Any, name: str, op: str) -> np.ndarray:
    array = _to_numpy(value, name, op)
    if array.ndim != 2:
        raise ValueError(f"{op}: {name} must be 2-D (H x W). Received: {name} with shape {array.shape}")
    if 0 in array.shape:
        raise ValueError(f"{op}: {name} must not be empty. Received: {name} with shape {array.shape}")
    return array.astype(np.float64)


def _pair(value: Any, name: str, op: str, minimum: int) -> tuple[int, int]:
    from .functional._args import ntuple

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


# ------------------------------------------------------------------ convolution steps
class _ConvolutionPlan:
    """One 2-D cross-correlation, its padded input and its output, computed by ``F.conv2d``."""

    def __init__(self, image: Any, kernel: Any, padding: Any, stride: Any, convolve: bool, op: str):
        from . import functional as F

        self.image = _matrix(image, "image", op)
        given_kernel = _matrix(kernel, "kernel", op)
        self.padding = _pair(padding, "padding", op, minimum=0)
        self.stride = _pair(stride, "stride", op, minimum=1)
        self.convolve = bool(convolve)
        # True convolution = cross-correlation with the kernel flipped along both axes.
        self.kernel = given_kernel[::-1, ::-1].copy() if self.convolve else given_kernel
        (ph, pw), (kh, kw) = self.padding, self.kernel.shape
        self.padded = np.pad(self.image, ((ph, ph), (pw, pw)))
        if kh > self.padded.shape[0] or kw > self.padded.shape[1]:
            raise ValueError(
                f"{op}: kernel ({kh}x{kw}) is larger than the padded image "
                f"({self.padded.shape[0]}x{self.padded.shape[1]}; image {self.image.shape[0]}x"
                f"{self.image.shape[1]}, padding={self.padding})"
            )
        result = F.conv2d(
            self.image[None, None], self.kernel[None, None], padding=self.padding, stride=self.stride
        )
        self.output = np.asarray(result.data, dtype=np.float64)[0, 0]

    @property
    def positions(self) -> list[tuple[int, int]]:
        rows, cols = self.output.shape
        return [(i, j) for i in range(rows) for j in range(cols)]

    def window(self, i: int, j: int) -> tuple[int, int]:
        """Top-left corner, in padded coordinates, of the window that writes ``output[i, j]``."""
        return i * self.stride[0], j * self.stride[1]

    def arithmetic(self, i: int, j: int) -> str:
        """``x*w + x*w + ... = y``, one line per kernel row."""
        top, left = self.window(i, j)
        kh, kw = self.kernel.shape
        patch = self.padded[top : top + kh, left : left + kw]
        lines = [
            " + ".join(f"{_term(x)}*{_term(w)}" for x, w in zip(prow, krow, strict=True))
            for prow, krow in zip(patch, self.kernel, strict=True)
        ]
        return "\n+ ".join(lines) + f" = {_fmt(self.output[i, j])}"

    def select(self, steps: Any, op: str) -> list[tuple[int, int]]:
        positions = self.positions
        if steps is None:
            if len(positions) > _MAX_PANELS:
                raise ValueError(
                    f"{op}: {len(positions)} output positions are too many panels for one figure; "
                    f"choose some with steps=, e.g. steps=[0, 1, {len(positions) - 1}]"
                )
            return positions
        items = [steps] if isinstance(steps, int | np.integer) else list(steps)
        if (
            len(items) == 2
            and all(isinstance(v, int | np.integer) for v in items)
            and isinstance(steps, tuple)
        ):
            items = [tuple(items)]  # a single (row, col)
        chosen = []
        rows, cols = self.output.shape
        for item in items:
            if isinstance(item, int | np.integer) and not isinstance(item, bool):
                if not -len(positions) <= item < len(positions):
                    raise ValueError(
                        f"{op}: step {item} is out of range; there are {len(positions)} output positions"
                    )
                chosen.append(positions[item])
            elif isinstance(item, Sequence) and len(item) == 2:
                i, j = (int(v) for v in item)
                if not (0 <= i < rows and 0 <= j < cols):
                    raise ValueError(f"{op}: step {tuple(item)} is outside the {rows}x{cols} output")
                chosen.append((i, j))
            else:
                raise TypeError(
                    f"{op}: steps must be ints (flat output index) or (row, col) pairs. Received: {item!r}"
                )
        if not chosen:
            raise ValueError(f"{op}: steps selects no output position")
        return chosen


def _grid_axes(ax: Axes, colors: np.ndarray) -> None:
    """A grid of coloured cells with thin borders and no ticks."""
    rows, cols = colors.shape[:2]
    ax.imshow(colors, interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(which="minor", color="0.35", linewidth=0.8)
    ax.tick_params(which="both", length=0)


def _annotate(ax: Axes, values: np.ndarray, fontsize: float, color: Any = "black", mask: Any = None) -> None:
    if max(values.shape) > _MAX_ANNOTATED:
        return
    for (i, j), value in np.ndenumerate(values):
        if mask is None or mask[i, j]:
            c = color[i, j] if isinstance(color, np.ndarray) else color
            ax.text(j, i, _fmt(value), ha="center", va="center", fontsize=fontsize, color=c)


def _light(cmap_name: str, values: np.ndarray, lo: float, hi: float, low: float, high: float) -> np.ndarray:
    """Colours from the pale middle part of a colormap, so black numbers stay readable."""
    from matplotlib import colormaps

    span = hi - lo if hi > lo else 1.0
    position = low + (high - low) * (values - lo) / span
    return colormaps[cmap_name](position)


def _draw_step(subfig: Any, plan: _ConvolutionPlan, step: tuple[int, int], done: set, cell: float) -> None:
    from matplotlib.patches import Rectangle

    (ph, pw), (kh, kw) = plan.padding, plan.kernel.shape
    hp, wp = plan.padded.shape
    ho, wo = plan.output.shape
    fontsize = float(np.clip(cell * 72 * 0.38, 5, 13))
    axes = subfig.subplots(1, 3, width_ratios=[wp, kw, max(wo, 1)])
    ax_in, ax_k, ax_out = axes

    # Input: padding cells grey and hatched, the current window outlined.
    inside = np.zeros(plan.padded.shape, bool)
    inside[ph : ph + plan.image.shape[0], pw : pw + plan.image.shape[1]] = True
    colors = _light("Blues", plan.padded, plan.image.min(), plan.image.max(), 0.0, 0.35)
    colors[~inside] = _PADDING
    _grid_axes(ax_in, colors)
    text_colors = np.where(inside, "black", "0.45")
    _annotate(ax_in, plan.padded, fontsize, color=text_colors)
    if ph or pw:
        hatch = {"hatch": "///", "fill": False, "edgecolor": "0.6", "linewidth": 0}
        for y0, x0, h, w in (
            (0, 0, ph, wp),
            (hp - ph, 0, ph, wp),
            (ph, 0, hp - 2 * ph, pw),
            (ph, wp - pw, hp - 2 * ph, pw),
        ):
            if h > 0 and w > 0:
                ax_in.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), w, h, **hatch))
    top, left = plan.window(*step)
    ax_in.add_patch(
        Rectangle((left - 0.5, top - 0.5), kw, kh, facecolor=_WINDOW, alpha=0.25, edgecolor="none")
    )
    ax_in.add_patch(Rectangle((left - 0.5, top - 0.5), kw, kh, fill=False, edgecolor=_WINDOW, linewidth=3))
    pad_note = (
        f", padding {plan.padding[0]}" if plan.padding[0] == plan.padding[1] else f", padding {plan.padding}"
    )
    ax_in.set_title(f"input{pad_note if ph or pw else ''}", fontsize=9)
    ax_in.set_label("input")

    # Kernel.
    limit = float(np.abs(plan.kernel).max()) or 1.0
    _grid_axes(ax_k, _light("RdBu_r", plan.kernel, -limit, limit, 0.3, 0.7))
    _annotate(ax_k, plan.kernel, fontsize)
    ax_k.add_patch(Rectangle((-0.5, -0.5), kw, kh, fill=False, edgecolor=_WINDOW, linewidth=3))
    ax_k.set_title("kernel (flipped)" if plan.convolve else "kernel", fontsize=9)
    ax_k.set_label("kernel")

    # Output: cells written so far, the one being written, the rest empty.
    out_colors = np.empty((ho, wo, 4))
    out_colors[:] = _PENDING
    written = np.zeros((ho, wo), bool)
    for i, j in done | {step}:
        out_colors[i, j] = _DONE
        written[i, j] = True
    out_colors[step] = _CURRENT
    _grid_axes(ax_out, out_colors)
    _annotate(ax_out, plan.output, fontsize, mask=written)
    stride_note = (
        f", stride {plan.stride[0]}" if plan.stride[0] == plan.stride[1] else f", stride {plan.stride}"
    )
    ax_out.set_title(f"output{stride_note if plan.stride != (1, 1) else ''}", fontsize=9)
    ax_out.set_label("output")

    subfig.suptitle(f"output[{step[0]}, {step[1]}]", fontsize=10, fontweight="bold")
    subfig.supxlabel(plan.arithmetic(*step), fontsize=max(6.0, min(9.0, 60.0 / kw)), family="monospace")


def _steps_figure(plan: _ConvolutionPlan, chosen: list[tuple[int, int]], ncols: int | None) -> Figure:
    (kh, kw), (hp, wp), (ho, wo) = plan.kernel.shape, plan.padded.shape, plan.output.shape
    cell = float(np.clip(2.6 / max(hp, wp), 0.12, 0.42))
    ncols = max(1, min(len(chosen), ncols or 3))
    nrows = math.ceil(len(chosen) / ncols)
    step_w = cell * (wp + kw + wo) + 1.1
    step_h = cell * max(hp, kh, ho) + 0.9 + 0.16 * kh
    fig = _new_figure((step_w * ncols, step_h * nrows))
    subfigs = np.atleast_1d(fig.subfigures(nrows, ncols, squeeze=False)).ravel()
    order = {pos: k for k, pos in enumerate(plan.positions)}
    for subfig, step in zip(subfigs, chosen, strict=False):
        done = {pos for pos in plan.positions if order[pos] < order[step]}
        _draw_step(subfig, plan, step, done, cell)
    return fig


def convolution_steps(
    image: Any,
    kernel: Any,
    padding: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
    *,
    steps: Any = None,
    convolve: bool = False,
    ncols: int | None = None,
    save: PathLike | None = None,
) -> Figure:
    """A convolution on a small grid, step by step (LECTURE.md sections 2 and 3).

    One panel per output position (or per position chosen by ``steps``), each made of
    three axes: the padded input (padding cells grey and hatched, the kernel window
    outlined in orange), the kernel, and the output so far (the cell being written in
    orange), with the arithmetic ``x*w + ... = y`` underneath. The output values are
    computed by :func:`convlens.functional.conv2d`, the arithmetic from the window.

    Args:
        image: 2-D array (H x W). kernel: 2-D array (kh x kw).
        padding, stride: as in ``F.conv2d`` (int or pair; zero padding).
        steps: ``None`` (every output position, row by row; at most 64), an int (a flat
            output index), a ``(row, col)`` tuple, or a list of either.
        convolve: ``False`` shows cross-correlation (what CNN layers compute);
            ``True`` shows true convolution (the kernel flipped first).
        ncols: panels per row of the figure (default up to 3).

    Shape: output ``floor((H + 2p - kh) / s) + 1`` by ``floor((W + 2p - kw) / s) + 1``.

    >>> fig = convolution_steps([[1, 1, 2], [2, 2, 1], [1, 5, 0]],
    ...                         [[2, 3, 0], [0, 1, 3], [3, 0, 3]])  # doctest: +SKIP
    >>> # one panel: "1*2 + 1*3 + 2*0 ... = 13"
    """
    _require_matplotlib()
    op = "convolution_steps"
    plan = _ConvolutionPlan(image, kernel, padding, stride, convolve, op)
    fig = _steps_figure(plan, plan.select(steps, op), ncols)
    fig.convlens_output = plan.output  # the values shown, for programs and tests
    _save(fig, save)
    return fig


def convolution_animation(
    image: Any,
    kernel: Any,
    padding: int | tuple[int, int] = 0,
    stride: int | tuple[int, int] = 1,
    path: PathLike | None = None,
    fps: float = 2.0,
    *,
    convolve: bool = False,
    dpi: float = 80,
    save: PathLike | None = None,
) -> Figure:
    """An animated GIF at ``path`` of the kernel sliding over ``image``, one frame per output.

    Each frame is one panel of :func:`convolution_steps`; Pillow writes the GIF
    (looping, ``fps`` frames per second). Returns the figure of the last frame.
    """
    _require_matplotlib()
    op = "convolution_animation"
    if path is None:
        raise TypeError(f"{op}: path (where to write the GIF) is required")
    if not (isinstance(fps, int | float) and fps > 0):
        raise ValueError(f"{op}: fps must be a positive number. Received: fps={fps!r}")
    _pillow(op)
    plan = _ConvolutionPlan(image, kernel, padding, stride, convolve, op)
    frames, fig = [], None
    for step in plan.positions:
        fig = _steps_figure(plan, [step], ncols=1)
        frames.append(_figure_to_image(fig, dpi))
    duration = max(20, int(round(1000 / fps)))

    def write(tmp: str) -> None:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=duration, loop=0)

    _atomic_write(path, write)
    _save(fig, save)
    return fig


# ------------------------------------------------------------------ kernels
def _weight_array(layer_or_weight: Any, op: str) -> np.ndarray:
    weight = getattr(layer_or_weight, "weight", layer_or_weight)
    array = _to_numpy(weight, "weight", op).astype(np.float64)
    if array.ndim == 2:
        return array[None, None]
    if array.ndim == 3:  # Conv1d: (out, in, k) shown as 1 x k strips
        return array[:, :, None, :]
    if array.ndim == 4:
        return array
    raise ValueError(
        f"{op}: expected a conv layer or a weight of shape (out, in, kh, kw), (out, in, k) or (kh, kw). "
        f"Received shape {array.shape}"
    )


def kernels(
    conv_layer_or_weight: Any,
    *,
    max_out: int = 32,
    max_in: int = 16,
    cmap: str = "RdBu_r",
    title: str | None = None,
    save: PathLike | None = None,
) -> Figure:
    """The kernels of a convolution layer as a grid: one row per output channel,
    one column per input channel, a diverging colormap centred at 0 (one shared
    scale, shown by the colour bar; red positive, blue negative).

    Accepts a ``nn.Conv1d/Conv2d`` (its ``weight``) or a weight array/Tensor
    (``(out, in, kh, kw)``, ``(out, in, k)`` or a single ``(kh, kw)`` kernel).
    At most ``max_out`` x ``max_in`` kernels are drawn (the title says when some are not).
    Axes: one per kernel drawn, plus the colour bar.
    """
    _require_matplotlib()
    from matplotlib.colors import TwoSlopeNorm

    op = "kernels"
    weight = _weight_array(conv_layer_or_weight, op)
    n_out, n_in = weight.shape[:2]
    rows, cols = min(n_out, max_out), min(n_in, max_in)
    shown = weight[:rows, :cols]
    limit = float(np.abs(weight).max()) or 1.0
    norm = TwoSlopeNorm(vmin=-limit, vcenter=0.0, vmax=limit)
    kh, kw = weight.shape[2:]
    size = float(np.clip(0.9 * max(kh, kw) / 5, 0.45, 1.2))
    fig = _new_figure((cols * size * max(1.0, kw / kh) + 1.6, rows * size * max(1.0, kh / kw) + 0.9))
    axes = fig.subplots(rows, cols, squeeze=False)
    image = None
    for (o, i), ax in np.ndenumerate(axes):
        image = ax.imshow(shown[o, i], cmap=cmap, norm=norm, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if o == 0:
            ax.set_title(f"in {i}", fontsize=8)
        if i == 0:
            ax.set_ylabel(f"out {o}", fontsize=8)
    fig.colorbar(image, ax=axes, shrink=0.6, aspect=30, label="weight")
    name = title or (
        type(conv_layer_or_weight).__name__ if hasattr(conv_layer_or_weight, "weight") else "kernels"
    )
    note = "" if (rows, cols) == (n_out, n_in) else f" (showing {rows} of {n_out} out x {cols} of {n_in} in)"
    fig.suptitle(f"{name}: {n_out} x {n_in} kernels of {kh}x{kw}{note}", fontsize=10)
    _save(fig, save)
    return fig


# ------------------------------------------------------------------ feature maps
def _as_image_batch(image: Any, op: str) -> np.ndarray:
    """An image (HxW, CxHxW, HxWxC with C in 3/4, or 1xCxHxW) as a float32 (1, C, H, W) batch."""
    array = _to_numpy(image, "image", op)
    if array.dtype == np.uint8:
        array = array / 255.0
    if array.ndim == 2:
        array = array[None, None]
    elif array.ndim == 3:
        if array.shape[-1] in (3, 4) and array.shape[0] not in (1, 3, 4):
            array = np.moveaxis(array, -1, 0)
        array = array[None]
    elif array.ndim != 4 or array.shape[0] != 1:
        raise ValueError(f"{op}: image must be HxW, CxHxW or 1xCxHxW. Received shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _record_activations(model: Any, batch: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(name, layer type, output) of every leaf module, in call order, for one forward pass."""
    from .tensor import no_grad

    leaves = [(name, m) for name, m in model.named_modules() if name and not list(m.children())]
    if not leaves:  # a single layer used as the model
        leaves = [(type(model).__name__, model)]
    records: list[tuple[str, str, np.ndarray]] = []
    handles = []
    for name, module in leaves:

        def hook(module: Any, inputs: Any, output: Any, name: str = name) -> None:
            data = output.data if isinstance(output, Tensor) else output
            if isinstance(data, np.ndarray):
                records.append((name, type(module).__name__, np.array(data, copy=True)))

        handles.append(module.register_forward_hook(hook))
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            model(Tensor(batch))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return records


def feature_maps(
    model: Any,
    image: Any,
    *,
    max_maps: int = 8,
    include_input: bool = True,
    cmap: str = "viridis",
    save: PathLike | None = None,
) -> Figure:
    """The feature maps of every layer for one input: one row per layer whose output is
    a stack of planes (convolution, pooling, activation, ...), first the input itself.

    Runs one forward pass (eval mode, no graph) with forward hooks on every leaf
    module, in the order the layers are called. Each row shows at most ``max_maps``
    channels, each plane with its own colour scale; the row's label gives the layer
    name, type and output shape. Flattened / fully connected outputs are skipped.
    Axes: one per plane drawn.
    """
    _require_matplotlib()
    op = "feature_maps"
    if not hasattr(model, "named_modules"):
        raise TypeError(f"feature_maps: model must be a convlens nn.Module. Received {type(model).__name__}")
    if max_maps < 1:
        raise ValueError(f"{op}: max_maps must be positive. Received: max_maps={max_maps}")
    batch = _as_image_batch(image, op)
    rows = [("input", "", batch)] if include_input else []
    rows += [r for r in _record_activations(model, batch) if r[2].ndim == 4]
    if not rows:
        raise ValueError(f"{op}: the model produced no 4-D (N, C, H, W) layer outputs to show")
    cols = min(max_maps, max(r[2].shape[1] for r in rows))
    fig = _new_figure((1.25 * cols + 1.4, 1.3 * len(rows) + 0.5))
    grid = fig.add_gridspec(len(rows), cols)
    for r, (name, kind, maps) in enumerate(rows):
        channels = min(maps.shape[1], cols)
        for c in range(channels):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(maps[0, c], cmap=cmap, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                shape = "x".join(str(s) for s in maps.shape[1:])
                label = f"{name}\n{kind}\n{shape}" if kind else f"{name}\n{shape}"
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(f"feature maps of {type(model).__name__} (first {cols} channels per layer)", fontsize=10)
    _save(fig, save)
    return fig


# ------------------------------------------------------------------ training and evaluation
def _history_columns(history: Any) -> dict[str, list[float | None]]:
    if hasattr(history, "to_dict"):
        history = history.to_dict()
    if isinstance(history, Mapping) and "epochs" in history and isinstance(history["epochs"], list):
        history = history["epochs"]
    if isinstance(history, Mapping):
        return {
            str(k): list(v) for k, v in history.items() if isinstance(v, Sequence) and not isinstance(v, str)
        }
    if isinstance(history, Iterable):
        records = [asdict(r) if is_dataclass(r) else dict(r) for r in history]
        keys = {k for r in records for k in r}
        return {k: [r.get(k) for r in records] for k in keys}
    raise TypeError(
        f"training_curves: expected a History, a dict of lists or a list of epoch records. Got {history!r}"
    )


def training_curves(history: Any, *, title: str | None = None, save: PathLike | None = None) -> Figure:
    """Loss and accuracy per epoch, train and validation: two axes side by side.

    ``history``: a :class:`convlens.train.History`, its ``to_dict()``, a list of epoch
    records or a dict of lists (keys such as ``train_loss``, ``val_loss``,
    ``train_acc``, ``val_acc``). Missing validation values (None) are skipped.
    """
    _require_matplotlib()
    columns = _history_columns(history)
    metrics = {
        "loss": [k for k in sorted(columns) if "loss" in k],
        "accuracy": [k for k in sorted(columns) if "acc" in k],
    }
    if not metrics["loss"] and not metrics["accuracy"]:
        raise ValueError(
            f"training_curves: the history has no loss or accuracy columns. Columns: {sorted(columns)}"
        )
    epochs = columns.get("epoch")
    fig = _new_figure((10, 3.8))
    axes = fig.subplots(1, 2)
    for ax, (metric, keys) in zip(axes, metrics.items(), strict=True):
        for key in keys:
            values = np.array([np.nan if v is None else float(v) for v in columns[key]])
            if np.all(np.isnan(values)):
                continue
            x = (
                np.arange(1, len(values) + 1)
                if epochs is None
                else np.asarray(epochs, float) + (epochs[0] == 0)
            )
            style = "--" if key.startswith("val") else "-"
            ax.plot(x, values, style, marker="o", label=key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    _save(fig, save)
    return fig


def _class_names(class_names: Sequence[Any] | None, k: int, op: str) -> list[str]:
    if class_names is None:
        return [str(c) for c in range(k)]
    names = [str(c) for c in class_names]
    if len(names) < k:
        raise ValueError(f"{op}: {k} classes but only {len(names)} class_names")
    return names


def confusion_matrix(
    matrix: Any,
    class_names: Sequence[Any] | None = None,
    *,
    normalize: bool = False,
    cmap: str = "Blues",
    title: str | None = None,
    save: PathLike | None = None,
) -> Figure:
    """An annotated heatmap of a confusion matrix (rows: true class, columns: predicted),
    such as ``cl.train.evaluate(...).confusion``. ``normalize=True`` shows each row as
    fractions of the true class. The title gives the accuracy (trace / total).
    Axes: the heatmap and its colour bar.
    """
    _require_matplotlib()
    op = "confusion_matrix"
    counts = _to_numpy(getattr(matrix, "confusion", matrix), "matrix", op).astype(np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"{op}: matrix must be square (classes x classes). Received shape {counts.shape}")
    if np.any(counts < 0):
        raise ValueError(f"{op}: matrix must not contain negative counts")
    k = counts.shape[0]
    names = _class_names(class_names, k, op)
    shown = counts
    if normalize:
        with np.errstate(invalid="ignore", divide="ignore"):
            shown = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
    size = float(np.clip(0.55 * k + 2.0, 4.0, 12.0))
    fig = _new_figure((size + 1.2, size))
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap=cmap, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of true class" if normalize else "count")
    if k <= 30:
        threshold = (shown.max() + shown.min()) / 2
        for (i, j), value in np.ndenumerate(shown):
            text = f"{value:.2f}" if normalize else _fmt(value)
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=max(5.0, 10 - k / 4),
                color="white" if value > threshold else "black",
            )
    ax.set_xticks(
        range(k),
        names[:k],
        rotation=45 if max(map(len, names)) > 2 else 0,
        ha="right" if max(map(len, names)) > 2 else "center",
    )
    ax.set_yticks(range(k), names[:k])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    total = counts.sum()
    accuracy = np.trace(counts) / total if total else float("nan")
    ax.set_title(title or f"confusion matrix (accuracy {accuracy:.1%} of {int(total)})")
    _save(fig, save)
    return fig


def _predict(model: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    from .tensor import no_grad

    was_training = getattr(model, "training", False)
    model.eval()
    predictions = []
    try:
        with no_grad():
            for start in range(0, len(images), batch_size):
                output = model(Tensor(images[start : start + batch_size]))
                predictions.append(np.asarray(output.data).argmax(axis=1))
    finally:
        model.train(was_training)
    return np.concatenate(predictions) if predictions else np.zeros(0, np.int64)


def most_confused(
    model: Any,
    images: Any,
    labels: Any,
    class_names: Sequence[Any] | None = None,
    *,
    top: int = 5,
    examples: int = 4,
    batch_size: int = 256,
    save: PathLike | None = None,
) -> Figure:
    """The ``top`` (true, predicted) class pairs the model confuses most, one row each,
    with up to ``examples`` misclassified images of that pair.

    ``images``: (N, C, H, W) or (N, H, W) as the model takes them; ``labels``: (N,) ints.
    Axes: ``examples`` per row (one row per pair shown); a single axes saying so when the
    model makes no mistakes.
    """
    _require_matplotlib()
    op = "most_confused"
    x = _to_numpy(images, "images", op)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"{op}: images must be (N, C, H, W) or (N, H, W). Received shape {x.shape}")
    x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    y = _to_numpy(labels, "labels", op).astype(np.int64).ravel()
    if len(y) != len(x):
        raise ValueError(f"{op}: {len(x)} images but {len(y)} labels")
    if top < 1 or examples < 1:
        raise ValueError(f"{op}: top and examples must be positive. Received: top={top}, examples={examples}")
    predicted = _predict(model, x, batch_size)
    wrong = np.flatnonzero(predicted != y)
    k = int(max(y.max(initial=0), predicted.max(initial=0)) + 1)
    names = _class_names(class_names, k, op)
    pairs = np.bincount(y[wrong] * k + predicted[wrong], minlength=k * k)
    order = [p for p in np.argsort(-pairs, kind="stable")[:top] if pairs[p] > 0]
    if not order:
        fig = _new_figure((4, 1.5))
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, f"no mistakes on {len(y)} images", ha="center", va="center")
        _save(fig, save)
        return fig
    fig = _new_figure((1.4 * examples + 1.8, 1.5 * len(order) + 0.6))
    axes = fig.subplots(len(order), examples, squeeze=False)
    for row, pair in enumerate(order):
        true, pred = divmod(int(pair), k)
        members = wrong[(y[wrong] == true) & (predicted[wrong] == pred)][:examples]
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(members):
                picture = x[members[col]]
                picture = picture[0] if picture.shape[0] == 1 else np.moveaxis(picture, 0, -1)
                ax.imshow(picture, cmap="gray", interpolation="nearest")
                ax.set_title(f"#{members[col]}", fontsize=7)
            else:
                ax.axis("off")
            if col == 0:
                label = f"true {names[true]}\npred {names[pred]}\n{int(pairs[pair])} times"
                ax.set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(f"most confused pairs ({len(wrong)} mistakes in {len(y)})", fontsize=10)
    _save(fig, save)
    return fig


# ------------------------------------------------------------------ photo-editor filters
def _load_picture(image: Any, op: str) -> np.ndarray:
    if isinstance(image, str | os.PathLike):
        image_module = _pillow(op)
        with image_module.open(image) as picture:
            return np.asarray(picture.convert("RGB" if picture.mode not in ("L", "I;16") else "L"))
    array = _to_numpy(image, "image", op)
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{op}: image must be HxW or HxWxC (C = 1, 3 or 4). Received shape {array.shape}")
    if array.ndim not in (2, 3):
        raise ValueError(f"{op}: image must be HxW or HxWxC. Received shape {array.shape}")
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
    from . import filters

    op = "filters_grid"
    picture = _load_picture(image, op)
    names = list(filters.KERNELS) if kernel_names is None else [str(n) for n in kernel_names]
    unknown = [n for n in names if n not in filters.KERNELS]
    if unknown:
        raise ValueError(f"{op}: unknown kernel name(s) {unknown}; known: {sorted(filters.KERNELS)}")
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


# ------------------------------------------------------------------ checkpoints (CLI)
def _first_conv(model: Any) -> Any:
    for _, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if weight is not None and np.ndim(weight.data if isinstance(weight, Tensor) else weight) >= 3:
            return module
    return None


def _checkpoint_file(path: PathLike) -> Path:
    """A checkpoint file, or the ``checkpoint.safetensors`` inside a training output directory."""
    path = Path(path)
    return path / "checkpoint.safetensors" if path.is_dir() else path


def _prepare_image(image_path: PathLike, model: Any, config: Mapping[str, Any]) -> np.ndarray:
    """A picture file as the model's input batch (1, C, H, W), prepared as ``convlens predict`` does.

    One input channel: grayscale, made MNIST-like (white ink on black, 20-pixel box in a
    28x28 frame, :func:`convlens.cli.mnist_like`), normalised with the checkpoint's
    ``mean``/``std`` and padded to the model's input size. Several channels: RGB resized to
    the model's input size, scaled to [0, 1], normalised when the checkpoint says how.
    """
    image_module = _pillow("visualize_checkpoint")
    conv = _first_conv(model)
    channels = int(np.shape(conv.weight.data)[1]) if conv is not None else 1
    input_shape = tuple(getattr(model, "input_shape", None) or (channels, 28, 28))
    with image_module.open(image_path) as picture:
        picture.load()
        if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
            rgba = picture.convert("RGBA")
            picture = image_module.alpha_composite(image_module.new("RGBA", rgba.size, (255,) * 4), rgba)
        if channels == 1:
            from .cli import mnist_like

            array = mnist_like(np.asarray(picture.convert("L"), dtype=np.float32))[None]
        else:
            size = (int(input_shape[-1]), int(input_shape[-2]))
            picture = picture.convert("RGB").resize(size, image_module.Resampling.BILINEAR)
            array = np.moveaxis(np.asarray(picture, dtype=np.float32) / 255.0, -1, 0)
    mean, std = config.get("mean"), config.get("std")
    if channels == 1:
        mean = 0.1307 if mean is None else mean
        std = 0.3081 if std is None else std
    if mean is not None and std is not None:
        shape = (-1, 1, 1)
        array = (array - np.reshape(np.asarray(mean, np.float32), shape)) / np.reshape(
            np.asarray(std, np.float32), shape
        )
    pad = config.get("pad", max(0, (int(input_shape[-1]) - array.shape[-1]) // 2))
    if pad:
        fill = np.reshape(
            (0.0 - np.asarray(mean or 0.0, np.float32)) / np.asarray(std or 1.0, np.float32), -1
        )
        array = np.stack(
            [np.pad(plane, pad, constant_values=float(fill[c % fill.size])) for c, plane in enumerate(array)]
        )
    return array[None].astype(np.float32)


def visualize_checkpoint(
    checkpoint_path: PathLike,
    image_path: PathLike,
    out_dir: PathLike,
    *,
    max_maps: int = 8,
    preprocess: Callable[[PathLike], np.ndarray] | None = None,
) -> dict[str, Path]:
    """Write ``kernels.png`` (the first convolution's kernels) and ``feature_maps.png``
    (every layer's feature maps for the picture ``image_path``) into ``out_dir``
    (created if missing); return ``{"kernels": path, "feature_maps": path}``.

    ``checkpoint_path``: a file written by ``convlens train`` / ``cl.save`` (or the
    training output directory holding ``checkpoint.safetensors``). The picture is
    prepared as ``convlens predict`` prepares it (see :func:`_prepare_image`), unless
    ``preprocess(image_path) -> (1, C, H, W) array`` is given.
    This is ``convlens visualize CHECKPOINT IMAGE``.
    """
    _require_matplotlib()
    from .train import load_checkpoint

    state = load_checkpoint(_checkpoint_file(checkpoint_path))
    model, config = state["model"], dict(state.get("config") or {})
    conv = _first_conv(model)
    if conv is None:
        raise ValueError(f"visualize_checkpoint: {checkpoint_path} holds no convolution layer to show")
    batch = preprocess(image_path) if preprocess is not None else _prepare_image(image_path, model, config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"kernels": out / "kernels.png", "feature_maps": out / "feature_maps.png"}
    kernels(conv, title="first convolution", save=paths["kernels"])
    feature_maps(model, batch, max_maps=max_maps, save=paths["feature_maps"])
    return paths

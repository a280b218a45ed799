"""A convolution on a small grid, step by step: :func:`convolution_steps` and :func:`convolution_animation`.

The output values come from :func:`convlens.functional.conv2d`; the arithmetic under each
panel (``x*w + ... = y``) is read off the window, so the picture checks the engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import functional as F

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from ._figure import (
    PathLike,
    _atomic_write,
    _figure_to_image,
    _fmt,
    _matrix,
    _new_figure,
    _pair,
    _pillow,
    _require_matplotlib,
    _save,
    _term,
)

# Colours of the convolution pictures (colour-blind safe Okabe-Ito orange for "now").
_WINDOW = "#e69f00"
_PADDING = (0.86, 0.86, 0.86, 1.0)
_DONE = (0.90, 0.96, 0.90, 1.0)
_PENDING = (1.0, 1.0, 1.0, 1.0)
_CURRENT = (0.97, 0.78, 0.42, 1.0)
_MAX_PANELS = 64  # convolution_steps with steps=None
_MAX_ANNOTATED = 16  # grids wider or taller than this get no numbers in their cells


# ------------------------------------------------------------------ convolution steps
class _ConvolutionPlan:
    """One 2-D cross-correlation, its padded input and its output, computed by ``F.conv2d``."""

    def __init__(self, image: Any, kernel: Any, padding: Any, stride: Any, convolve: bool, op: str):
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
                f"({self.padded.shape[0]}x{self.padded.shape[1]}). Received: kernel.shape={(kh, kw)}, "
                f"image.shape={self.image.shape}, padding={self.padding}"
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
                    f"choose some with steps=, e.g. steps=[0, 1, {len(positions) - 1}]. Received: steps=None"
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
                        f"{op}: step is out of range; there are {len(positions)} output positions. "
                        f"Received: step={item}"
                    )
                chosen.append(positions[item])
            elif isinstance(item, Sequence) and len(item) == 2:
                i, j = (int(v) for v in item)
                if not (0 <= i < rows and 0 <= j < cols):
                    raise ValueError(
                        f"{op}: step is outside the {rows}x{cols} output. Received: step={tuple(item)}"
                    )
                chosen.append((i, j))
            else:
                raise TypeError(
                    f"{op}: steps must be ints (flat output index) or (row, col) pairs. Received: {item!r}"
                )
        if not chosen:
            raise ValueError(f"{op}: steps selects no output position. Received: steps={steps!r}")
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
    """A convolution on a small grid, step by step, as the lecture draws it on the board.

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
        raise TypeError(f"{op}: path (where to write the GIF) is required. Received: path=None")
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

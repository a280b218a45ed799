"""What a trained network sees: its kernels, its feature maps, and both for a checkpoint.

:func:`visualize_checkpoint` is ``convlens visualize CHECKPOINT IMAGE``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..images import model_input
from ..io import load_checkpoint
from ..tensor import Tensor, no_grad

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

from ._figure import PathLike, _new_figure, _require_matplotlib, _save, _to_numpy


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
        f"Received: weight.shape={array.shape}"
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
        raise ValueError(f"{op}: image must be HxW, CxHxW or 1xCxHxW. Received: image.shape={array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _record_activations(model: Any, batch: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
    """(name, layer type, output) of every leaf module, in call order, for one forward pass."""
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
        raise TypeError(
            f"feature_maps: model must be a convlens nn.Module. "
            f"Received: model of type {type(model).__name__}"
        )
    if max_maps < 1:
        raise ValueError(f"{op}: max_maps must be positive. Received: max_maps={max_maps}")
    batch = _as_image_batch(image, op)
    rows = [("input", "", batch)] if include_input else []
    rows += [r for r in _record_activations(model, batch) if r[2].ndim == 4]
    if not rows:
        raise ValueError(
            f"{op}: the model produced no 4-D (N, C, H, W) layer outputs to show. "
            f"Received: model of type {type(model).__name__}"
        )
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


# ------------------------------------------------------------------ checkpoints (CLI)
def _first_conv(model: Any) -> Any:
    for _, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if weight is not None and np.ndim(weight.data if isinstance(weight, Tensor) else weight) >= 3:
            return module
    return None


def _model_input(image_path: PathLike, model: Any, config: Mapping[str, Any]) -> np.ndarray:
    """``image_path`` as ``convlens predict`` prepares it for ``model``.

    See :func:`convlens.images.model_input`; the channels come from the first convolution.
    """
    conv = _first_conv(model)
    channels = int(np.shape(conv.weight.data)[1]) if conv is not None else 1
    input_shape = tuple(getattr(model, "input_shape", None) or (channels, 28, 28))
    input_shape = (channels, *input_shape[-2:])
    return model_input([image_path], input_shape, config.get("mean"), config.get("std"), config.get("pad"))


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
    prepared as ``convlens predict`` prepares it (:func:`convlens.images.model_input`), unless
    ``preprocess(image_path) -> (1, C, H, W) array`` is given.
    This is ``convlens visualize CHECKPOINT IMAGE``.
    """
    _require_matplotlib()
    state = load_checkpoint(checkpoint_path)
    model, config = state["model"], dict(state.get("config") or {})
    conv = _first_conv(model)
    if conv is None:
        raise ValueError(
            f"visualize_checkpoint: the checkpoint holds no convolution layer to show. "
            f"Received: checkpoint_path={str(checkpoint_path)!r}"
        )
    batch = preprocess(image_path) if preprocess is not None else _model_input(image_path, model, config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"kernels": out / "kernels.png", "feature_maps": out / "feature_maps.png"}
    kernels(conv, title="first convolution", save=paths["kernels"])
    feature_maps(model, batch, max_maps=max_maps, save=paths["feature_maps"])
    return paths

"""Pictures of training and evaluation: curves per epoch, the confusion matrix, the most confused pairs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tensor import Tensor, no_grad

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

from ._figure import PathLike, _fmt, _new_figure, _require_matplotlib, _save, _to_numpy


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
        "training_curves: expected a History, a dict of lists or a list of epoch records. "
        f"Received: history={history!r}"
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
            "training_curves: the history has no loss or accuracy columns. "
            f"Received: columns {sorted(columns)}"
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
        raise ValueError(
            f"{op}: {k} classes but only {len(names)} class_names. Received: class_names={names}"
        )
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
        raise ValueError(
            f"{op}: matrix must be square (classes x classes). Received: matrix.shape={counts.shape}"
        )
    if np.any(counts < 0):
        raise ValueError(f"{op}: matrix must not contain negative counts. Received: min={counts.min():g}")
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
        raise ValueError(f"{op}: images must be (N, C, H, W) or (N, H, W). Received: images.shape={x.shape}")
    x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    y = _to_numpy(labels, "labels", op).astype(np.int64).ravel()
    if len(y) != len(x):
        raise ValueError(
            f"{op}: images and labels must be as many. Received: {len(x)} images, {len(y)} labels"
        )
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

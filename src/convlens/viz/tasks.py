"""Pictures of the other tasks: sound through 1-D convolutions, and segmentation.

* :func:`waveform`: a recording over time;
* :func:`filters_1d`: the learned first-layer kernels of a 1-D network and their
  frequency responses ``|FFT(w)|`` (a learned filter bank: which frequencies each passes);
* :func:`feature_maps_1d`: a layer's channels over time (WaveNet) or the log-mel image;
* :func:`segmentation_examples`: input, true mask and predicted mask side by side;
* :func:`iou_bars`: the IoU of every class.

The confusion matrix of the spoken digits is :func:`convlens.viz.confusion_matrix`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..tensor import Tensor, no_grad
from ._figure import PathLike, _new_figure, _save, _to_numpy

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["feature_maps_1d", "filters_1d", "iou_bars", "segmentation_examples", "waveform"]


def waveform(
    samples: Any, sample_rate: int = 8000, *, title: str | None = None, save: PathLike | None = None
) -> Figure:
    """The samples of one recording against time in seconds. Axes: one."""
    x = _to_numpy(samples, "samples", "waveform").reshape(-1)
    fig = _new_figure((8, 2.5))
    ax = fig.add_subplot()
    ax.plot(np.arange(len(x)) / sample_rate, x, linewidth=0.6)
    ax.set(xlabel="time (s)", ylabel="amplitude", title=title or f"{len(x):,} samples at {sample_rate} Hz")
    _save(fig, save)
    return fig


def filters_1d(
    weight: Any, sample_rate: int = 8000, *, count: int = 8, save: PathLike | None = None
) -> Figure:
    """The first ``count`` kernels of a Conv1d weight (C_out, C_in, k) and their frequency responses.

    Row 1: each kernel ``w[n]``; row 2: ``|W(f)|`` in dB, from a zero-padded FFT, 0 Hz to
    the Nyquist frequency. Axes: ``2 * count``.
    """
    w = _to_numpy(getattr(weight, "weight", weight), "weight", "filters_1d")
    if w.ndim != 3:
        raise ValueError(f"filters_1d: weight must be (C_out, C_in, k). Received: weight.shape={w.shape}")
    count = min(count, w.shape[0])
    fig = _new_figure((1.8 * count, 3.6))
    axes = fig.subplots(2, count, squeeze=False)
    freqs = np.fft.rfftfreq(512, 1 / sample_rate)
    for i in range(count):
        kernel = w[i, 0]
        axes[0, i].plot(kernel, marker=".", linewidth=0.8)
        axes[0, i].set_title(f"filter {i}", fontsize=8)
        response = 20 * np.log10(np.abs(np.fft.rfft(kernel, 512)) + 1e-8)
        axes[1, i].plot(freqs / 1000, response, linewidth=0.8)
        axes[1, i].set_xlabel("kHz", fontsize=7)
        for ax in axes[:, i]:
            ax.tick_params(labelsize=6)
    axes[0, 0].set_ylabel("w[n]")
    axes[1, 0].set_ylabel("|W(f)| (dB)")
    _save(fig, save)
    return fig


def feature_maps_1d(model: Any, samples: Any, *, save: PathLike | None = None) -> Figure:
    """What the network computes from one recording: the log-mel image of a ``LogMelCNN``, or
    the learned filter bank (the front's band magnitudes) and the head's input of a
    ``WaveNetClassifier``, over time."""
    x = _to_numpy(samples, "samples", "feature_maps_1d").reshape(1, 1, -1).astype(np.float32)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            if hasattr(model, "log_mel"):
                maps = [("log-mel spectrogram (mel band x frame)", model.log_mel(Tensor(x)).data[0, 0])]
            else:
                front = getattr(model, "filter_bank", None) or model.front
                maps = [
                    (
                        "learned filter bank: |BatchNorm(front conv)| (channel x step)",
                        front(Tensor(x)).data[0],
                    ),
                    (
                        "head input: summed skips after 1x1 conv (channel x step)",
                        model.features(Tensor(x)).data[0],
                    ),
                ]
    finally:
        model.train(was_training)
    fig = _new_figure((8, 2.6 * len(maps)))
    for i, (title, image) in enumerate(maps):
        ax = fig.add_subplot(len(maps), 1, i + 1)
        shown = ax.imshow(image, aspect="auto", origin="lower", cmap="magma", interpolation="nearest")
        fig.colorbar(shown, ax=ax)
        ax.set_title(title, fontsize=9)
    _save(fig, save)
    return fig


def segmentation_examples(model: Any, scenes: Any, *, count: int = 4, save: PathLike | None = None) -> Figure:
    """``count`` scenes in rows: the input, the true mask and the predicted mask. Axes: ``3 * count``."""
    from matplotlib.colors import ListedColormap

    from ..scenes import mask_colours

    images = np.asarray(scenes.images[:count])
    masks = np.asarray(scenes.masks[:count])
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            logits = model(Tensor(images[:, None].astype(np.float32) / np.float32(255))).data
    finally:
        model.train(was_training)
    predicted = logits.argmax(axis=1)
    colours = ListedColormap(mask_colours(len(scenes.classes)) / 255.0)
    last = max(len(scenes.classes) - 1, 1)
    fig = _new_figure((6.6, 2.2 * len(images)))
    axes = fig.subplots(len(images), 3, squeeze=False)
    for row, (image, truth, guess) in enumerate(zip(images, masks, predicted, strict=True)):
        axes[row, 0].imshow(image, cmap="gray")
        axes[row, 1].imshow(truth, cmap=colours, vmin=0, vmax=last, interpolation="nearest")
        axes[row, 2].imshow(guess, cmap=colours, vmin=0, vmax=last, interpolation="nearest")
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, title in zip(axes[0], ("input", "true mask", "predicted mask"), strict=True):
        ax.set_title(title)
    _save(fig, save)
    return fig


def iou_bars(
    iou: Any, class_names: Sequence[str], *, title: str | None = None, save: PathLike | None = None
) -> Figure:
    """A bar per class: its intersection over union (NaN shown as no bar). Axes: one."""
    values = np.asarray(iou, np.float64)
    if values.shape != (len(class_names),):
        raise ValueError(
            f"iou_bars: one IoU per class name is needed. Received: iou.shape={values.shape}, "
            f"{len(class_names)} class names"
        )
    fig = _new_figure((max(4.0, 0.5 * len(values) + 1.5), 3))
    ax = fig.add_subplot()
    ax.bar(range(len(values)), np.nan_to_num(values))
    ax.set_xticks(range(len(values)), [str(n) for n in class_names], rotation=45, fontsize=8)
    ax.set_ylim(0, 1)
    mean = np.nanmean(values[1:]) if len(values) > 1 else np.nanmean(values)
    ax.set(ylabel="IoU", title=title or f"IoU per class (mean over the items: {mean:.3f})")
    _save(fig, save)
    return fig

"""Other tasks for CNNs, end to end: spoken digits (1-D convolutions) and segmentation.

The same few operations as the image classifier solve problems of other shapes:

- ``"spoken-digits"``: 8 kHz recordings of the Free Spoken Digit Dataset
  (:mod:`convlens.fsdd`) -> a digit. Models: ``wavenet`` (the default: dilated causal
  1-D convolutions on the raw waveform) and ``logmel_cnn`` (a log-mel spectrogram
  written as fixed strided convolutions, then a small 2-D CNN).
- ``"segment"``: 64x64 scenes of real digits, or digits and Fashion-MNIST items
  (:mod:`convlens.scenes`; the config's ``"dataset"``) -> a class per pixel.
  Model: ``unet`` (conv + pool down, ``ConvTranspose2d`` up, skip connections).

A run is described by one config dict (``task_config``), stored in its checkpoints,
so ``convlens evaluate`` and ``predict`` rebuild the same data, and ``convlens train
--resume`` continues the run (:mod:`convlens.resume`). What the defaults
reach, and in how long: docs/tasks.md.

>>> config = task_config("spoken-digits")
>>> config["model"], config["epochs"], config["optimizer"], config["lr"]
('wavenet', 9, 'adam', 0.003)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import audio, data, fsdd, optim, scenes
from . import train as training
from .history import History
from .models import get as get_model
from .tensor import Tensor, no_grad

__all__ = [
    "TASKS",
    "SegmentationResult",
    "evaluate_task",
    "load_task_data",
    "predict_mask",
    "predict_wav",
    "task_config",
    "train_task",
]

# The defaults of each task, tuned on seed 0 (docs/tasks.md has the figures).
TASKS: dict[str, dict[str, Any]] = {
    "spoken-digits": {
        "model": "wavenet",
        "dataset": "fsdd",
        "epochs": 9,
        "batch_size": 32,
        "optimizer": "adam",
        "lr": 0.003,
        "schedule": "cosine",
        "seed": 0,
        "input_shape": [1, fsdd.LENGTH],
        "classes": list(fsdd.CLASSES),
    },
    "segment": {
        "model": "unet",
        "dataset": "mnist-5k",
        "epochs": 12,
        "batch_size": 16,
        "optimizer": "adam",
        "lr": 0.003,
        "schedule": "cosine",
        "seed": 0,
        "train_scenes": 1500,
        "test_scenes": 500,
        "fresh_scenes": True,
        "input_shape": [1, 64, 64],
        "classes": ["background", *(str(d) for d in range(10))],
    },
}
_MODELS = {"spoken-digits": ("logmel_cnn", "wavenet"), "segment": ("unet",)}
# What differs from the task's defaults when another of its models is chosen.
_MODEL_DEFAULTS = {"logmel_cnn": {"epochs": 12}}
TEST_BATCH = 100
MAX_SCENES = 100_000  # a checkpoint's config is read from a file: no run asks for more


def task_config(task: str, **settings: Any) -> dict[str, Any]:
    """The task's defaults, with ``settings`` (those not None) in their place."""
    if task not in TASKS:
        raise ValueError(f"task_config: task must be one of {', '.join(TASKS)}. Received: task={task!r}")
    model = (settings.get("model") or TASKS[task]["model"]).replace("-", "_")
    if model not in _MODELS[task]:
        raise ValueError(
            f"task_config: the {task} task takes the models {', '.join(_MODELS[task])}. "
            f"Received: model={settings.get('model')!r}"
        )
    config = {"task": task, **TASKS[task], **_MODEL_DEFAULTS.get(model, {}), "limit": None}
    config.update({k: v for k, v in settings.items() if v is not None})
    config["model"] = model
    if task == "segment":
        config["classes"] = list(scenes.scene_classes(_checked_source(config["dataset"])))
    elif config["dataset"] != "fsdd":
        raise ValueError(f"task_config: the {task} task reads fsdd. Received: dataset={config['dataset']!r}")
    if config["optimizer"] == "sgd":
        config.setdefault("momentum", 0.9)
    return config


def _checked_source(source: str) -> str:
    if source not in scenes.SOURCES:
        raise ValueError(
            f"task_config: the segment task takes the data sets {', '.join(scenes.SOURCES)}. "
            f"Received: dataset={source!r}"
        )
    return source


def build_model(config: dict[str, Any]) -> Any:
    """The task's model, for its input shape and classes."""
    if config["task"] == "segment":
        return get_model(config["model"], num_classes=len(config["classes"]), size=config["input_shape"][-1])
    return get_model(config["model"], num_classes=len(config["classes"]), length=config["input_shape"][-1])


def load_task_data(
    config: dict[str, Any], root: str | os.PathLike | None = None, download: bool = False
) -> tuple[Any, Any]:
    """``(train_loader, test_loader)`` of the task: FSDD's official split, or seeded scenes."""
    seed, batch = config["seed"], config["batch_size"]
    if config["task"] == "segment":
        return _scene_loaders(config, root, download)
    train_set, test_set = data.load_dataset("fsdd", root=root, download=download)
    images, labels = train_set.images, train_set.labels
    if config.get("limit"):
        images, labels = images[: config["limit"]], labels[: config["limit"]]
    return (
        data.DataLoader((images, labels), batch, shuffle=True, seed=seed),
        data.DataLoader(test_set, TEST_BATCH),
    )


def _scene_loaders(
    config: dict[str, Any], root: str | os.PathLike | None, download: bool
) -> tuple[scenes.SceneLoader, scenes.SceneLoader]:
    """Seeded scenes; with ``fresh_scenes`` the training scenes are drawn anew every epoch."""
    for key in ("train_scenes", "test_scenes"):
        if not 1 <= int(config[key]) <= MAX_SCENES:
            raise ValueError(f"load_task_data: {key} must be in [1, {MAX_SCENES}]. Received: {config[key]!r}")
    seed, size, source = config["seed"], config["input_shape"][-1], config["dataset"]
    # the first N scenes of a set do not depend on its count: a limit keeps a prefix
    count = min(config["train_scenes"], config.get("limit") or config["train_scenes"])

    def train_scenes(epoch: int = 0) -> scenes.Scenes:
        return scenes.digit_scenes("train", count, seed, size, source, root, download, epoch=epoch)

    remake = train_scenes if config.get("fresh_scenes") else None
    train = scenes.SceneLoader(train_scenes(), config["batch_size"], shuffle=True, seed=seed, remake=remake)
    test = scenes.digit_scenes("test", config["test_scenes"], seed, size, source, root, download)
    return train, scenes.SceneLoader(test, TEST_BATCH)


def train_task(
    config: dict[str, Any],
    root: str | os.PathLike | None = None,
    download: bool = False,
    *,
    model: Any = None,
    loaders: tuple[Any, Any] | None = None,
    progress: bool = False,
    verbose: bool = False,
    log: Callable[[str], None] = print,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: Any = None,
) -> tuple[Any, History]:
    """Train the task's model with :func:`convlens.train.fit`; ``(model, history)``.

    A new segmentation run first sets the U-Net's head to the class priors of the training
    masks (``UNet.start_from_priors``). To continue a run, pass ``resume`` (a checkpoint
    path or :func:`convlens.io.load_checkpoint` dict, as :func:`convlens.resume.plan`
    returns it) and its ``model``; ``config["epochs"]`` is then the total to reach.
    """
    from .nn.init import manual_seed

    if model is None:
        manual_seed(config["seed"])
        model = build_model(config)
    train_loader, test_loader = loaders or load_task_data(config, root, download)
    if resume is None and hasattr(model, "start_from_priors") and hasattr(train_loader, "scenes"):
        model.start_from_priors(train_loader.scenes.masks)
    optimizer = optim.Adam(model.parameters(), lr=config["lr"])
    if config["optimizer"] == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=config["lr"], momentum=config.get("momentum", 0.9))
    cosine = config["schedule"] == "cosine"
    scheduler = optim.CosineAnnealingLR(optimizer, config["epochs"]) if cosine else None
    history = training.fit(
        model,
        train_loader,
        test_loader,
        optimizer=optimizer,
        scheduler=scheduler,
        epochs=config["epochs"],
        progress=progress,
        verbose=verbose,
        log=log,
        checkpoint_path=checkpoint_path,
        checkpoint_every=checkpoint_every,
        resume=resume,
        config=config,
    )
    return model, history


@dataclass
class SegmentationResult:
    """Pixel accuracy, IoU per class (index 0: background) and the pixel confusion matrix."""

    pixel_accuracy: float
    iou: np.ndarray
    confusion: np.ndarray

    @property
    def mean_iou(self) -> float:
        """The mean IoU of the item classes (background excluded: it would flatter the figure)."""
        return float(np.nanmean(self.iou[1:]))


def evaluate_task(
    model: Any, config: dict[str, Any], loader: Any
) -> training.EvalResult | SegmentationResult:
    """Accuracy and confusion (spoken digits), or pixel accuracy and IoU (segmentation)."""
    result = training.evaluate(model, loader, num_classes=len(config["classes"]))
    if config["task"] != "segment":
        return result
    iou = scenes.intersection_over_union(result.confusion)
    return SegmentationResult(result.accuracy, iou, result.confusion)


def predict_wav(model: Any, source: str | os.PathLike, length: int = fsdd.LENGTH) -> np.ndarray:
    """Class probabilities for one WAV file (8 kHz mono 16-bit PCM; audio.WavError otherwise),
    prepared as in training: centred in ``length`` samples, peak-normalised."""
    samples = audio.normalize_peak(audio.fix_length(audio.read_wav(source), length)[None])
    return _probabilities(model, samples[:, None])[0]


def predict_mask(model: Any, image: np.ndarray | str | Path, size: int = 64) -> np.ndarray:
    """The class of every pixel (uint8 (size, size)) of a grayscale scene, bright ink on dark.

    ``image``: a uint8 (size, size) array, or a picture file of exactly that size.
    Raises ValueError for another size: a scene is not resized, as its digits would no
    longer have the size the network learned.
    """
    if not isinstance(image, np.ndarray):
        from PIL import Image

        with Image.open(image) as picture:
            image = np.asarray(picture.convert("L"))
    if image.shape != (size, size):
        raise ValueError(
            f"predict_mask: the segmentation model takes {size}x{size} grayscale scenes "
            f"(not resized). Received: image of shape {image.shape}"
        )
    x = image.astype(np.float32)[None, None] / np.float32(255 if image.dtype == np.uint8 else 1)
    return _probabilities(model, x)[0].argmax(axis=0).astype(np.uint8)


def _probabilities(model: Any, x: np.ndarray) -> np.ndarray:
    from .functional import softmax

    model.eval()
    with no_grad():
        return softmax(model(Tensor(x)), dim=1).data

"""The recipe of ``convlens train``: its defaults, and what it builds from a config.

A training run is described by one JSON-able config dict (written to ``config.json``
and stored in every checkpoint, so ``--resume`` and ``evaluate`` rebuild the same
pipeline). This module turns such a config into the pieces :func:`convlens.train.fit`
takes: the data pipeline (padding to the model's input size, random shifts,
normalisation), the loaders, the optimizer and the learning-rate schedule.

>>> config = new_config("lenet5", "mnist-5k")
>>> config["epochs"], config["lr"], config["augment"]
(20, 0.02, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from . import data, optim
from .images import normalization

__all__ = [
    "AUGMENTED",
    "DEFAULTS",
    "DEFAULT_EPOCHS",
    "MODEL_LR",
    "default_epochs",
    "default_lr",
    "input_normalization",
    "loader",
    "new_config",
    "optimizer_for",
    "padding_for",
    "resolve_dataset",
    "scheduler_for",
    "subset",
    "transform",
]

# Tuned on seed 0; what they reach, and what the alternatives reached: docs/READING.md, "Measured".
DEFAULTS: dict[str, Any] = {
    "model": "lenet5",
    "dataset": "auto",
    "optimizer": "sgd",
    "lr": 0.02,
    "adam_lr": 1e-3,
    "momentum": 0.9,
    "batch_size": 64,
    "schedule": "cosine",
    "seed": 0,
}
DEFAULT_EPOCHS = {"mnist-5k": 20, "other": 10}  # a small set: epochs are cheap, more of them help
# The 1998 LeNet-5 needs smaller steps: its RBF penalties sum over 84 units, so its
# gradients are about ten times larger (lr 0.01 stays at chance on mnist-5k, 0.001 learns).
MODEL_LR = {"lenet5-classic": 0.001}
AUGMENTED = frozenset({"mnist-5k"})  # 4,000 training images: shifted copies help; 60,000 need no help
MAX_SHIFT = 2  # pixels, for RandomShift


def resolve_dataset(name: str, root: str | None = None) -> str:
    """``name``, or for ``"auto"`` the best data set found (full MNIST or Fashion-MNIST, else mnist-5k)."""
    return data.best_available(root=root) if name == "auto" else name


def default_epochs(dataset: str) -> int:
    return DEFAULT_EPOCHS.get(dataset, DEFAULT_EPOCHS["other"])


def default_lr(model: str, optimizer: str) -> float:
    """The learning rate ``convlens train`` uses when ``--lr`` is not given."""
    if optimizer != "sgd":
        return DEFAULTS["adam_lr"]
    return MODEL_LR.get(model.replace("_", "-"), DEFAULTS["lr"])


def new_config(
    model: str,
    dataset: str,
    *,
    epochs: int | None = None,
    batch_size: int = DEFAULTS["batch_size"],
    optimizer: str = DEFAULTS["optimizer"],
    lr: float | None = None,
    momentum: float = DEFAULTS["momentum"],
    schedule: str = DEFAULTS["schedule"],
    seed: int = DEFAULTS["seed"],
    augment: bool | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """The config of a fresh run: the given settings, the defaults for the rest, and the
    data set's normalisation statistics (:func:`convlens.images.normalization`)."""
    mean, std = normalization(dataset)
    return {
        "model": model,
        "dataset": dataset,
        "epochs": epochs or default_epochs(dataset),
        "batch_size": batch_size,
        "optimizer": optimizer,
        "lr": lr or default_lr(model, optimizer),
        "momentum": momentum,
        "schedule": schedule,
        "seed": seed,
        "augment": augment if augment is not None else dataset in AUGMENTED,
        "limit": limit,
        "mean": mean,
        "std": std,
    }


def input_normalization(model: Any, mean: float, std: float) -> tuple[float, float]:
    """``(mean, std)`` for Normalize: the data set's statistics, unless the model prescribes
    its input levels (classic LeNet-5: background -0.1, foreground 1.175, as in the paper)."""
    levels = getattr(model, "input_levels", None)
    if levels is None:
        return mean, std
    background, foreground = levels
    span = foreground - background
    return -background / span, 1.0 / span


def padding_for(input_shape: Sequence[int], image_size: int = 28) -> int:
    """Padding that brings ``image_size`` images to the model's input size (2 for a 32x32 input)."""
    return max(0, (int(input_shape[-1]) - image_size) // 2)


def transform(mean: float, std: float, pad: int, augment: bool) -> data.Compose:
    """Pad and shift in [0, 1] pixel space (so the fill is the background, 0), then normalise."""
    steps: list[Any] = [data.Pad(pad)] if pad else []
    if augment:
        steps.append(data.RandomShift(MAX_SHIFT))  # fit reseeds it from the loader's seed every epoch
    steps.append(data.Normalize(mean, std))
    return data.Compose(steps)


def loader(
    dataset: Any, batch_size: int, transform: Any, shuffle: bool = False, seed: int | None = None
) -> data.DataLoader:
    return data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed, transform=transform)


def subset(dataset: data.Dataset, limit: int | None) -> data.Dataset:
    """The first ``limit`` images of ``dataset`` (all of them for ``None``)."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataclasses.replace(dataset, images=dataset.images[:limit], labels=dataset.labels[:limit])


def optimizer_for(config: dict[str, Any], parameters: Iterable[Any]) -> optim.Optimizer:
    """SGD with momentum or Adam, as ``config["optimizer"]`` says."""
    if config["optimizer"] == "sgd":
        return optim.SGD(parameters, lr=config["lr"], momentum=config["momentum"])
    if config["optimizer"] == "adam":
        return optim.Adam(parameters, lr=config["lr"])
    raise ValueError(
        f"optimizer_for: optimizer must be 'sgd' or 'adam'. Received: optimizer={config['optimizer']!r}"
    )


def scheduler_for(config: dict[str, Any], optimizer: Any) -> optim.CosineAnnealingLR | None:
    """Cosine annealing to 0 over ``config["epochs"]`` for ``schedule="cosine"``, else None."""
    if config.get("schedule", "none") == "cosine":
        return optim.CosineAnnealingLR(optimizer, T_max=config["epochs"])
    return None

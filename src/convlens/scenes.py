"""Segmentation scenes in the manner of M2NIST: real digits pasted onto a larger canvas.

Each scene is a ``size x size`` canvas (64 by default) with 1 to 3 items pasted at
random places, possibly overlapping. The items are real MNIST digits (the embedded
mnist-5k, or the full MNIST where it is present) or real Fashion-MNIST items where
that is present. Every pixel is labelled with the class of the item whose ink covers
it, or background:

- ``image = max`` of the pasted items (dark background, bright ink, as MNIST);
- ``mask = 0`` (background) where no item has ink ``>= INK`` (of 255), else
  ``1 + class`` of the item pasted *last* among those with ink there (later items lie
  on top).

**The pixels are real, but the masks are derived** from each item's own ink by that
threshold, not drawn by people; a faint stroke edge below the threshold is background.

Scenes are made from a seed with NumPy's ``default_rng``, so a split is the same on
every machine. Training scenes use only training items, test scenes only test
items: a test scene never shows a digit seen in training.

>>> train = digit_scenes("train", count=4, seed=0)
>>> train.images.shape, train.masks.shape, train.classes[:3]
((4, 64, 64), (4, 64, 64), ('background', '0', '1'))
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import data

__all__ = ["INK", "SceneLoader", "Scenes", "digit_scenes", "intersection_over_union", "make_scenes"]

INK = 64  # the ink threshold that derives the masks (of 255)
_SEEDS = {"train": 0, "test": 1}  # added to the seed, so the two splits never share a stream


@dataclass(frozen=True, eq=False)
class Scenes:
    """uint8 ``images`` (N, H, W), uint8 ``masks`` (N, H, W) in ``range(len(classes))``,
    ``classes[0] == "background"``."""

    images: np.ndarray
    masks: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.images)


def make_scenes(
    items: np.ndarray,
    labels: np.ndarray,
    count: int,
    seed: int,
    size: int = 64,
    per_scene: tuple[int, int] = (1, 3),
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` scenes of ``size x size`` from ``items`` (uint8 (M, h, w)) and their ``labels``.

    Each scene draws ``per_scene[0]..per_scene[1]`` items and a top-left corner for each,
    uniformly. Returns ``(images, masks)``; ``mask = 1 + label`` under an item's ink.
    """
    n, h, w = items.shape
    if size < max(h, w):
        raise ValueError(f"make_scenes: size must be at least the item size {h}x{w}. Received: size={size}")
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size), np.uint8)
    masks = np.zeros((count, size, size), np.uint8)
    for scene in range(count):
        for _ in range(rng.integers(per_scene[0], per_scene[1] + 1)):
            pick = rng.integers(n)
            top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            window = (scene, slice(top, top + h), slice(left, left + w))
            images[window] = np.maximum(images[window], items[pick])
            masks[window] = np.where(items[pick] >= INK, 1 + labels[pick], masks[window])
    return images, masks


def digit_scenes(
    split: str = "train",
    count: int = 2000,
    seed: int = 0,
    size: int = 64,
    source: str = "mnist-5k",
    root: str | os.PathLike | None = None,
) -> Scenes:
    """Scenes from the ``split`` items of ``source`` ("mnist-5k", "mnist" or "fashion-mnist",
    read by ``cl.data.load_dataset``), made from ``seed`` (see the module docstring)."""
    if split not in _SEEDS:
        raise ValueError(f"digit_scenes: split must be 'train' or 'test'. Received: split={split!r}")
    dataset = data.load_dataset(source, root=root, split=split)
    images, masks = make_scenes(dataset.images, dataset.labels, count, seed * 2 + _SEEDS[split], size)
    return Scenes(images, masks, ("background", *dataset.classes), f"{source} {split} (seed {seed})")


class SceneLoader:
    """Batches ``(images (B, 1, H, W) float32 in [0, 1], masks flattened to (B*H*W,))``.

    The masks come flattened because ``fit`` and ``evaluate`` count one prediction per
    target element: so their accuracy is the pixel accuracy, and their confusion matrix
    counts pixels (``models.UNet`` reshapes them back for its loss).
    """

    def __init__(self, scenes: Scenes, batch_size: int = 32, shuffle: bool = False, seed: int = 0):
        self.scenes = scenes
        self._loader = data.DataLoader((scenes.images, scenes.masks), batch_size, shuffle=shuffle, seed=seed)

    def __len__(self) -> int:
        return len(self._loader)

    def set_epoch(self, epoch: int) -> None:
        self._loader.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for images, masks in self._loader:
            yield images, masks.reshape(-1)


def intersection_over_union(confusion: np.ndarray) -> np.ndarray:
    """Per class ``IoU = TP / (TP + FP + FN)`` from a pixel confusion matrix (rows: true);
    NaN for a class that neither occurs nor is predicted."""
    confusion = np.asarray(confusion, np.float64)
    hits = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return hits / union

"""Segmentation scenes in the manner of M2NIST: real items pasted onto a larger canvas.

Each scene is a ``size x size`` canvas (64 by default) with 1 to 3 items pasted at
random places, possibly overlapping. The items come from a *source* (:data:`SOURCES`):
real MNIST digits (the embedded mnist-5k, or the full MNIST where it is present),
real Fashion-MNIST items where that is present, or both mixed in the same scenes
(``"mnist-5k+fashion-mnist"``, ``"mnist+fashion-mnist"``). Every pixel is labelled
with the class of the item whose ink covers it, or background:

- ``image = max`` of the pasted items (dark background, bright ink, as MNIST);
- ``mask = 0`` (background) where no item has ink ``>= INK`` (of 255), else
  ``1 + class`` of the item pasted *last* among those with ink there (later items lie
  on top).

**The pixels are real, but the masks are derived** from each item's own ink by that
threshold, not drawn by people; a faint stroke edge below the threshold is background.
A Fashion-MNIST item covers far more of its 28x28 square than a digit does; the
threshold is the same.

A mixed source has 21 classes: background, ``"digit 0"`` ... ``"digit 9"`` (1-10), then
the ten Fashion-MNIST classes (11-20: ``"T-shirt/top"`` ... ``"Ankle boot"``). Each
pasted item first draws its data set (each equally likely), then an item of it, so the
4,000 digits of mnist-5k are as common in the scenes as the 60,000 clothes.

Scenes are made from a seed with NumPy's ``default_rng``, so a split is the same on
every machine. Training scenes use only training items, test scenes only test
items: a test scene never shows an item seen in training.

>>> train = digit_scenes("train", count=4, seed=0)
>>> train.images.shape, train.masks.shape, train.classes[:3]
((4, 64, 64), (4, 64, 64), ('background', '0', '1'))
>>> scene_classes("mnist-5k+fashion-mnist")[9:13]
('digit 8', 'digit 9', 'T-shirt/top', 'Trouser')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from . import data

__all__ = [
    "INK",
    "SOURCES",
    "SceneLoader",
    "Scenes",
    "digit_scenes",
    "intersection_over_union",
    "make_scenes",
    "mask_colours",
    "scene_classes",
]

INK = 64  # the ink threshold that derives the masks (of 255)
SOURCES = ("mnist-5k", "mnist", "fashion-mnist", "mnist-5k+fashion-mnist", "mnist+fashion-mnist")
_DIGITS = ("mnist-5k", "mnist")
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
    items: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    count: int,
    seed: int | Sequence[int],
    size: int = 64,
    per_scene: tuple[int, int] = (1, 3),
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` scenes of ``size x size`` from ``items`` (uint8 (M, h, w)) and their ``labels``.

    Each scene draws ``per_scene[0]..per_scene[1]`` items and a top-left corner for each,
    uniformly. ``items`` may also be a sequence of such arrays (``labels`` likewise), one
    per data set: each pasted item then first draws its data set, uniformly. Returns
    ``(images, masks)``; ``mask = 1 + label`` under an item's ink.
    """
    pools = list(zip(items, labels, strict=True)) if isinstance(items, (list, tuple)) else [(items, labels)]
    h, w = pools[0][0].shape[1:]
    if any(pool.shape[1:] != (h, w) for pool, _ in pools):
        shapes = [pool.shape[1:] for pool, _ in pools]
        raise ValueError(f"make_scenes: every data set must have items of one size. Received: {shapes}")
    if size < max(h, w):
        raise ValueError(f"make_scenes: size must be at least the item size {h}x{w}. Received: size={size}")
    rng = np.random.default_rng(seed)
    images = np.zeros((count, size, size), np.uint8)
    masks = np.zeros((count, size, size), np.uint8)
    for scene in range(count):
        for _ in range(rng.integers(per_scene[0], per_scene[1] + 1)):
            # one source draws nothing here, so its scenes are those of a plain array
            pool, pool_labels = pools[rng.integers(len(pools))] if len(pools) > 1 else pools[0]
            pick = rng.integers(len(pool))
            top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            window = (scene, slice(top, top + h), slice(left, left + w))
            images[window] = np.maximum(images[window], pool[pick])
            masks[window] = np.where(pool[pick] >= INK, 1 + int(pool_labels[pick]), masks[window])
    return images, masks


def scene_classes(source: str) -> tuple[str, ...]:
    """The class names of the scenes of ``source``: ``"background"``, then each data set's
    classes (in a mixed source the digits are named ``"digit 0"`` ... ``"digit 9"``)."""
    names = ["background"]
    for part in _parts(source):
        mixed = "+" in source and part in _DIGITS
        names += [f"digit {name}" if mixed else name for name in data.DATASETS[part]]
    return tuple(names)


def digit_scenes(
    split: str = "train",
    count: int = 2000,
    seed: int = 0,
    size: int = 64,
    source: str = "mnist-5k",
    root: str | os.PathLike | None = None,
    download: bool = False,
    epoch: int = 0,
) -> Scenes:
    """Scenes from the ``split`` items of ``source`` (one of :data:`SOURCES`, each data set
    read by ``cl.data.load_dataset``), made from ``seed`` (see the module docstring).

    ``epoch`` > 0 draws another set of scenes from the same items (new places and
    company for the same digits): :class:`SceneLoader` with ``fresh=True`` trains on
    the scenes of epoch ``e`` in epoch ``e``, which generalises better than repeating
    one set. Epoch 0 is the set of the plain call.

    Raises:
        ValueError: an unknown ``split`` or ``source``, or a data set of ``source`` that
            is not found (and ``download`` is False).
    """
    if split not in _SEEDS:
        raise ValueError(f"digit_scenes: split must be 'train' or 'test'. Received: split={split!r}")
    items, labels, first = [], [], 0
    for part in _parts(source):
        dataset = _load(part, split, root, download, source)
        items.append(dataset.images)
        labels.append(dataset.labels.astype(np.int64) + first)
        first += len(dataset.classes)
    stream = seed * 2 + _SEEDS[split]
    images, masks = make_scenes(items, labels, count, [stream, epoch] if epoch else stream, size)
    where = f"seed {seed}" + (f", epoch {epoch}" if epoch else "")
    return Scenes(images, masks, scene_classes(source), f"{source} {split} ({where})")


def _parts(source: str) -> list[str]:
    if source not in SOURCES:
        raise ValueError(
            f"digit_scenes: source must be one of {', '.join(SOURCES)}. Received: source={source!r}"
        )
    return source.split("+")


def _load(part: str, split: str, root: str | os.PathLike | None, download: bool, source: str) -> data.Dataset:
    try:
        return data.load_dataset(part, root=root, download=download, split=split)
    except FileNotFoundError as error:
        raise ValueError(f"digit_scenes: {error}. Received: source={source!r}") from None


class SceneLoader:
    """Batches ``(images (B, 1, H, W) float32 in [0, 1], masks flattened to (B*H*W,))``.

    The masks come flattened because ``fit`` and ``evaluate`` count one prediction per
    target element: so their accuracy is the pixel accuracy, and their confusion matrix
    counts pixels (``models.UNet`` reshapes them back for its loss).

    ``remake``: with it, ``set_epoch(e)`` (which ``fit`` calls at the start of every
    epoch) replaces the scenes by ``remake(e)``, e.g. ``digit_scenes(..., epoch=e)``:
    every epoch new scenes, and a resumed run gets the same ones as a straight run.
    """

    def __init__(
        self,
        scenes: Scenes,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int = 0,
        remake: Callable[[int], Scenes] | None = None,
    ):
        self.scenes, self.remake = scenes, remake
        self._settings = {"batch_size": batch_size, "shuffle": shuffle, "seed": seed}
        self._loader = data.DataLoader((scenes.images, scenes.masks), **self._settings)

    def __len__(self) -> int:
        return len(self._loader)

    def set_epoch(self, epoch: int) -> None:
        if self.remake is not None:
            self.scenes = self.remake(epoch)
            self._loader = data.DataLoader((self.scenes.images, self.scenes.masks), **self._settings)
        self._loader.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for images, masks in self._loader:
            yield images, masks.reshape(-1)


def mask_colours(count: int) -> np.ndarray:
    """uint8 RGB (count, 3): black for the background (class 0), then one colour per class.

    The hues step by the golden ratio and the shade alternates between deep and light,
    so no two of the 21 classes of the mixed scenes look alike; the figures and the mask
    PNGs of ``convlens predict`` use the same colours.

    >>> mask_colours(3).tolist()
    [[0, 0, 0], [199, 59, 40], [112, 136, 250]]
    """
    import colorsys

    steps = np.arange(count - 1)
    hues = (0.02 + 0.618034 * steps) % 1.0
    shades = [(0.8, 0.78) if step % 2 == 0 else (0.55, 0.98) for step in steps]
    rgb = [(0.0, 0.0, 0.0), *(colorsys.hsv_to_rgb(h, s, v) for h, (s, v) in zip(hues, shades, strict=True))]
    return np.rint(np.array(rgb[:count]) * 255).astype(np.uint8).reshape(count, 3)


def intersection_over_union(confusion: np.ndarray) -> np.ndarray:
    """Per class ``IoU = TP / (TP + FP + FN)`` from a pixel confusion matrix (rows: true);
    NaN for a class that neither occurs nor is predicted."""
    confusion = np.asarray(confusion, np.float64)
    hits = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    with np.errstate(invalid="ignore", divide="ignore"):
        return hits / union

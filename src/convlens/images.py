"""Image files in, model inputs out: the one place where pictures are prepared.

Every picture convlens reads (``convlens predict``, ``filter``, ``visualize``, the web
demo) goes through this module:

* :func:`read_gray` and :func:`read_pixels` open a file (a path, ``bytes`` or a binary
  file object) with Pillow. Transparent pixels show a white background, as an
  image viewer shows them, or black behind light ink (:func:`flatten_alpha`).
* :func:`mnist_like` turns any grayscale digit into an MNIST digit: white ink on
  black, cropped to the ink, the longer side scaled to 20 pixels, centred by centre of
  mass in a 28x28 frame. :func:`prepare_digit` is ``mnist_like(read_gray(source))``.
* :func:`normalize` subtracts the training set's mean and divides by its std, and
  pads to the model's input size with the normalised background.
  :func:`model_input` chains all of it: files to the ``(N, C, H, W)`` batch that
  ``convlens predict`` gives the model.
* :data:`NORMALIZATION` holds the per-pixel statistics of each data set, once.

A file Pillow cannot decode, or one over Pillow's decompression-bomb limit, raises
``ValueError`` with one sentence naming the file.

>>> import numpy as np
>>> digit = np.zeros((60, 40), np.float32)
>>> digit[10:50, 18:22] = 255  # a thick "1", white on black
>>> mnist_like(digit).shape
(28, 28)
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "IMAGE_SUFFIXES",
    "MNIST_MEAN",
    "MNIST_STD",
    "NORMALIZATION",
    "Source",
    "flatten_alpha",
    "mnist_like",
    "model_input",
    "normalization",
    "normalize",
    "open_image",
    "prepare_digit",
    "read_gray",
    "read_pixels",
    "read_rgb",
]

Source = str | os.PathLike | bytes | IO[bytes]
"""Where a picture comes from: a path, the file's bytes, or a binary file object."""

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

# Per-pixel mean and standard deviation of the training images, pixels scaled to [0, 1].
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
NORMALIZATION: dict[str, tuple[float, float]] = {
    "mnist": (MNIST_MEAN, MNIST_STD),
    "mnist-5k": (MNIST_MEAN, MNIST_STD),  # a sample of MNIST: MNIST's statistics
    "fashion-mnist": (0.2860, 0.3530),
}
_UNKNOWN_DATASET = (0.5, 0.5)  # maps [0, 1] to [-1, 1]

_GRAY_MODES = ("1", "L", "I", "I;16", "F")
_WHITE = (255, 255, 255, 255)
_BLACK = (0, 0, 0, 255)


# ------------------------------------------------------------------------------- files
def _describe(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return repr(os.fspath(source))
    if isinstance(source, bytes | bytearray):
        return f"<{len(source)} bytes>"
    return repr(getattr(source, "name", None) or type(source).__name__)


def _pillow(op: str) -> Any:
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - Pillow is an extra
        raise ImportError(f"{op} needs Pillow: pip install 'convlens[image]'") from error
    return Image


def open_image(source: Source, op: str = "open_image") -> Any:
    """The decoded Pillow image of ``source`` (pixels loaded, file closed).

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.
        ValueError: Pillow cannot decode it, or it is over Pillow's decompression-bomb limit.
    """
    image_module = _pillow(op)
    from PIL import UnidentifiedImageError

    if isinstance(source, str | os.PathLike) and not Path(source).exists():
        raise FileNotFoundError(f"{op}: image not found. Received: source={_describe(source)}")
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; a picture that large is no digit
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            with image_module.open(stream) as image:
                image.load()
                return image
    except (image_module.DecompressionBombError, image_module.DecompressionBombWarning) as error:
        raise ValueError(
            f"{op}: cannot read image, it has more pixels than Pillow accepts ({error}). "
            f"Received: source={_describe(source)}"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        reason = str(error) or type(error).__name__
        raise ValueError(
            f"{op}: cannot read image, Pillow cannot decode it ({reason}). "
            f"Received: source={_describe(source)}"
        ) from None


def flatten_alpha(image: Any) -> Any:
    """``image`` with its transparent pixels composited onto a background; opaque images unchanged.

    The background is white, as a viewer shows it, unless what is opaque is light (white
    ink drawn on a transparent canvas): then it is black, so the ink stays visible.
    """
    transparent = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if not transparent:
        return image
    image_module = _pillow("flatten_alpha")
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"), dtype=np.float64)
    luma = np.asarray(rgba.convert("L"), dtype=np.float64)
    opaque_luma = (luma * alpha).sum() / alpha.sum() if alpha.sum() > 0 else 0.0
    background = _BLACK if opaque_luma > 127 else _WHITE
    return image_module.alpha_composite(image_module.new("RGBA", rgba.size, background), rgba)


def read_gray(source: Source) -> np.ndarray:
    """The picture at ``source`` as a float32 ``(H, W)`` grayscale image in [0, 255].

    Colour is converted with Pillow's ``"L"`` (ITU-R 601 luma); transparency as :func:`flatten_alpha`.
    """
    image = flatten_alpha(open_image(source, "read_gray"))
    return np.asarray(image.convert("L"), dtype=np.float32)


def read_pixels(source: Source) -> np.ndarray:
    """The picture at ``source`` as uint8: ``(H, W)`` for gray files, ``(H, W, 3)`` RGB otherwise.

    Transparency as :func:`flatten_alpha`. This is what ``convlens filter`` and
    ``cl.viz.filters_grid`` filter.
    """
    image = open_image(source, "read_pixels")
    if image.mode in _GRAY_MODES:
        return np.asarray(image.convert("L"))
    return np.asarray(flatten_alpha(image).convert("RGB"))


def read_rgb(source: Source, size: tuple[int, int]) -> np.ndarray:
    """The picture at ``source`` resized (bilinear) to ``size = (H, W)``: float32 ``(3, H, W)`` in [0, 1]."""
    image = flatten_alpha(open_image(source, "read_rgb")).convert("RGB")
    resized = image.resize((int(size[1]), int(size[0])), _pillow("read_rgb").Resampling.BILINEAR)
    return np.moveaxis(np.asarray(resized, dtype=np.float32) / 255.0, -1, 0)


# ------------------------------------------------------------------------------ digits
def mnist_like(gray: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """A grayscale digit (any size, 0..255) as an MNIST digit: float32 ``(size, size)`` in [0, 1].

    As MNIST was made: white ink on black (inverted when the border is light), the
    background moved to 0 and the ink stretched to 1, cropped to the ink, the longer
    side scaled to ``box`` pixels keeping the aspect ratio (Lanczos), and placed in a
    ``size`` x ``size`` frame with its centre of mass at pixel ``(size/2, size/2)``
    (row, column), within half a pixel.

    Raises:
        ValueError: the image holds no ink (it is one flat colour).
    """
    image = np.asarray(gray, dtype=np.float32)
    if image.ndim != 2 or 0 in image.shape:
        raise ValueError(f"mnist_like: gray must be a non-empty 2-D image. Received: shape={image.shape}")
    ink = _ink_on_black(image)
    rows, cols = np.nonzero(ink > 0.1 * 255)
    digit = _resize_longer_side(ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], box)
    return _centre_by_mass(digit, size) / 255.0


def _ink_on_black(image: np.ndarray) -> np.ndarray:
    """White ink on a 0 background, the brightest ink at 255."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if np.median(border) > 127:  # dark ink on light paper; MNIST is white on black
        image, border = 255.0 - image, 255.0 - border
    ink = np.clip(image - float(np.median(border)), 0, None)
    peak = float(ink.max())
    if peak <= 0:
        raise ValueError(
            f"mnist_like: the image is blank (no ink found). Received: gray of shape {image.shape} "
            f"with every pixel near {float(np.median(border)):g}"
        )
    return ink * (255.0 / peak)


def _resize_longer_side(image: np.ndarray, box: int) -> np.ndarray:
    h, w = image.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    image_module = _pillow("mnist_like")
    resized = image_module.fromarray(image.astype(np.float32), mode="F").resize(
        (new_w, new_h), image_module.Resampling.LANCZOS
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0, 255)


def _centre_by_mass(digit: np.ndarray, size: int) -> np.ndarray:
    h, w = digit.shape
    ys, xs = np.indices(digit.shape)
    total = digit.sum()
    cy, cx = (ys * digit).sum() / total, (xs * digit).sum() / total
    top = int(np.clip(round(size / 2 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - cx), 0, size - w))
    frame = np.zeros((size, size), np.float32)
    frame[top : top + h, left : left + w] = digit
    return frame


def prepare_digit(source: Source, size: int = 28) -> np.ndarray:
    """What ``convlens predict`` makes of a picture of a digit, before normalisation.

    ``mnist_like(read_gray(source))``: a float32 ``(size, size)`` array in [0, 1], white
    ink (1) on black (0), the digit's longer side scaled to 20/28 of ``size`` and its
    centre of mass in the middle, as in MNIST. Feed it to a model with
    :func:`normalize` (or take :func:`model_input`, which does both).

    Raises:
        ValueError: the file cannot be decoded, or it holds no ink.
    """
    return mnist_like(read_gray(source), size=size, box=round(20 * size / 28))


# ------------------------------------------------------------------------ model inputs
def normalization(dataset: str) -> tuple[float, float]:
    """``(mean, std)`` of data set ``dataset``'s pixels in [0, 1]; ``(0.5, 0.5)`` if unknown."""
    return NORMALIZATION.get(dataset, _UNKNOWN_DATASET)


def normalize(
    batch: np.ndarray, mean: float | Sequence[float], std: float | Sequence[float], pad: int = 0
) -> np.ndarray:
    """``(batch - mean) / std`` per channel, then ``pad`` pixels of background on every side.

    ``batch``: ``(N, C, H, W)`` pixels in [0, 1] on a 0 background. The padding is the
    normalised background ``(0 - mean) / std``, as the training pipeline pads before it
    normalises. Returns float32 ``(N, C, H + 2 pad, W + 2 pad)``.
    """
    channels = np.shape(batch)[1]
    mean_c = np.broadcast_to(np.asarray(mean, np.float32).reshape(-1), (channels,))
    std_c = np.broadcast_to(np.asarray(std, np.float32).reshape(-1), (channels,))
    shape = (1, channels, 1, 1)
    normalised = (np.asarray(batch, np.float32) - mean_c.reshape(shape)) / std_c.reshape(shape)
    if pad:
        padded = np.empty((*normalised.shape[:2], *(n + 2 * pad for n in normalised.shape[2:])), np.float32)
        padded[:] = (-mean_c / std_c).reshape(shape)
        padded[:, :, pad:-pad, pad:-pad] = normalised
        normalised = padded
    return normalised.astype(np.float32, copy=False)


def model_input(
    sources: Sequence[Source],
    input_shape: Sequence[int] = (1, 28, 28),
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    pad: int | None = None,
) -> np.ndarray:
    """Picture files as a model's float32 input batch ``(N, C, H, W)``: what ``convlens predict`` feeds.

    One input channel: :func:`prepare_digit` (28x28 MNIST-like), normalised with ``mean``/
    ``std`` (default MNIST's) and padded by ``pad`` (default: up to ``input_shape``, e.g. 2
    for the classic LeNet-5's 32x32). Several channels: :func:`read_rgb` at the input size,
    normalised only when ``mean`` and ``std`` are given.
    """
    channels, height, width = (int(n) for n in input_shape[-3:])
    if channels == 1:
        batch = np.stack([prepare_digit(source) for source in sources])[:, None]
        mean = MNIST_MEAN if mean is None else mean
        std = MNIST_STD if std is None else std
    else:
        batch = np.stack([read_rgb(source, (height, width)) for source in sources])
    if pad is None:
        pad = max(0, (width - batch.shape[-1]) // 2)
    if mean is None or std is None:
        return normalize(batch, 0.0, 1.0, pad)
    return normalize(batch, mean, std, pad)

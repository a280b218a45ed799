"""Photos through kernels: the classic filters, and an RGB volume through 3-channel filters.

:func:`filter_photo` applies a kernel of :data:`convlens.filters.KERNELS` (or the
user's own) with :func:`convlens.filters.apply`, as ``convlens filter`` does.
:func:`volume` is the lecture's "convolution over volumes": each filter is
3 x k x k, one kernel per colour channel, and ``F.conv2d`` sums the three channels
into one plane per filter; several filters stack into a volume.

The sample photo (``static/sample.png``) was drawn by a short NumPy/Pillow script
for this project: a house, a tree, a fence and the sun, under the package's licence.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np

from convlens import filters, images
from convlens import functional as F

from . import inputs
from .inputs import ApiError

SAMPLE_PHOTO = Path(__file__).parent / "static" / "sample.png"
MAX_PHOTO_SIDE = 320  # larger uploads are scaled down first: the page shows them at about this size
EDGE_KERNELS = ("laplacian", "log7", "log9", "sobel_x", "sobel_y")  # shown as |response|

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's "L"
VOLUME_FILTERS: dict[str, dict[str, Any]] = {
    "vertical edges": {"kernel": "sobel_x", "channels": (1, 1, 1)},
    "horizontal edges": {"kernel": "sobel_y", "channels": (1, 1, 1)},
    "blurred brightness": {"kernel": "gaussian_blur", "channels": _LUMA},
    "red minus green": {"kernel": "identity", "channels": (1, -1, 0)},
    "blue minus yellow": {"kernel": "box_blur", "channels": (-0.5, -0.5, 1)},
    "outline (Laplacian)": {"kernel": "laplacian", "channels": _LUMA},
}


def photo_pixels(upload: bytes | None, field: str = "image") -> np.ndarray:
    """The uploaded photo (or the sample) as uint8 ``(H, W, 3)``, its longer side at most 320."""
    from PIL import Image

    if upload is not None:
        inputs.check_picture(upload, field)
    try:
        pixels = images.read_pixels(upload if upload is not None else SAMPLE_PHOTO)
    except ValueError as error:
        raise ApiError(400, f"{field} cannot be decoded: {error}", field=field) from None
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    h, w = pixels.shape[:2]
    scale = MAX_PHOTO_SIDE / max(h, w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))
    return pixels


def png_data_url(pixels: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a uint8 gray or RGB array."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_uint8(response: np.ndarray, edge: bool) -> np.ndarray:
    """``convlens filter``'s output rule: edge detectors as |response| scaled to 255, others clipped."""
    if edge:
        magnitude = np.abs(response)
        peak = float(magnitude.max())
        response = magnitude * (255.0 / peak) if peak > 0 else magnitude
    return np.clip(np.rint(response), 0, 255).astype(np.uint8)


def kernel_from(fields: dict[str, Any]) -> tuple[np.ndarray, str]:
    """``(kernel, label)``: a name of ``filters.KERNELS`` or a custom 2-D matrix (up to 9x9)."""
    spec = fields.get("kernel", "sharpen")
    if isinstance(spec, str) and spec.strip().startswith("["):
        spec = inputs.array({"kernel": spec}, "kernel", 2, max_side=9)
    if isinstance(spec, str):
        names = sorted(filters.KERNELS)
        if spec not in filters.KERNELS:
            raise ApiError(
                422,
                f"kernel must be one of {', '.join(names)} or a matrix. Received: kernel={spec!r}.",
                "kernel",
            )
        return np.asarray(filters.KERNELS[spec], np.float64), spec
    return inputs.array(fields, "kernel", 2, max_side=9), "custom"


def filter_photo(upload: bytes | None, fields: dict[str, Any]) -> dict[str, Any]:
    """A photo before and after one kernel, both as PNG data URLs."""
    kernel, label = kernel_from(fields)
    padding_mode = inputs.choice(
        fields, "padding_mode", ("reflect", "replicate", "circular", "zeros"), "reflect"
    )
    pixels = photo_pixels(upload)
    if kernel.shape[0] > pixels.shape[0] or kernel.shape[1] > pixels.shape[1]:
        raise ApiError(
            422, f"kernel {kernel.shape} is larger than the photo {pixels.shape[:2]}.", field="kernel"
        )
    response = filters.apply(pixels.astype(np.float32), kernel, padding_mode=padding_mode)
    edge = label in EDGE_KERNELS or (label == "custom" and bool(abs(kernel.sum()) < 1e-12))
    return {
        "kernel_name": label,
        "kernel": kernel.tolist(),
        "kernel_sum": float(kernel.sum()),
        "edge": edge,
        "rule": "absolute response scaled to 0..255" if edge else "rounded and clipped to 0..255",
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "input": png_data_url(pixels),
        "output": png_data_url(to_uint8(np.asarray(response), edge)),
    }


def volume(upload: bytes | None, fields: dict[str, Any]) -> dict[str, Any]:
    """An RGB photo through several 3 x k x k filters: one output plane per filter."""
    names = fields.get("filters", list(VOLUME_FILTERS)[:4])
    if isinstance(names, str):
        names = [n for n in names.split(",") if n]
    if not isinstance(names, list) or not names or any(n not in VOLUME_FILTERS for n in names):
        raise ApiError(
            422,
            f"filters must be a list of some of: {', '.join(VOLUME_FILTERS)}. Received: filters={names!r}.",
            field="filters",
        )
    pixels = photo_pixels(upload)
    x = np.moveaxis(pixels.astype(np.float32) / 255.0, -1, 0)[None]  # (1, 3, H, W)
    weight = np.stack([_filter_3d(VOLUME_FILTERS[n]) for n in names]).astype(np.float32)  # (F, 3, 3, 3)
    planes = np.asarray(F.conv2d(x, weight, padding=1).data[0])
    return {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "input": png_data_url(pixels),
        "channels": [png_data_url(pixels[:, :, c]) for c in range(3)],
        "weight_shape": list(weight.shape),
        "output_shape": list(planes.shape),
        "filters": [
            {
                "name": name,
                "kernel": weight[i].round(4).tolist(),
                "plane": png_data_url(_stretch(planes[i])),
                "min": float(planes[i].min()),
                "max": float(planes[i].max()),
            }
            for i, name in enumerate(names)
        ],
    }


def _filter_3d(spec: dict[str, Any]) -> np.ndarray:
    """A 3 x 3 x 3 filter: the 2-D kernel weighted per colour channel."""
    kernel = np.asarray(filters.KERNELS[spec["kernel"]], np.float64)
    return np.stack([weight * kernel for weight in spec["channels"]])


def _stretch(plane: np.ndarray) -> np.ndarray:
    """A signed response as gray: its minimum black, its maximum white."""
    low, high = float(plane.min()), float(plane.max())
    if high - low < 1e-12:
        return np.full(plane.shape, 128, np.uint8)
    return np.rint((plane - low) * (255.0 / (high - low))).astype(np.uint8)

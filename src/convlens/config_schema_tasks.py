"""The checkpoint schema of the other tasks' models (``convlens.tasks``): WaveNet, the log-mel
CNN and the U-Net, as factories and as layers, with their sizes computed from the arguments.

Part of :mod:`convlens.config_schema` (which merges these into its ``FACTORIES`` and
``LAYERS``); kept apart so that module stays one readable page. Each entry is the
tuple ``(arguments, required, size, outputs)`` of a ``config_schema.Layer`` (a factory
takes the first and the third).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._checks import Choice, Int, Maybe, Real, fail, flag

MAX_CLASSES = 10_000
MAX_CHANNELS = 4096
MAX_LENGTH = 1 << 20  # samples of a waveform
MAX_SIDE = 4096
MAX_DILATIONS = 32


def _dilations(value: Any, where: str, path: str) -> list[int]:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= MAX_DILATIONS:
        raise fail(where, path, f"a list of 1 to {MAX_DILATIONS} dilations", value)
    return [Int(1, MAX_LENGTH)(d, where, f"{path}[{i}]") for i, d in enumerate(value)]


def _sizes(value: Any, where: str, path: str) -> int | list[int]:
    if isinstance(value, list | tuple) and 1 <= len(value) <= 3:
        return [Int(1, MAX_SIDE)(v, where, f"{path}[{i}]") for i, v in enumerate(value)]
    return Int(1, MAX_SIDE)(value, where, path)


def _widths(value: Any, where: str, path: str) -> list[int]:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 8:
        raise fail(where, path, "a list of 1 to 8 channel counts", value)
    return [Int(1, MAX_CHANNELS)(c, where, f"{path}[{i}]") for i, c in enumerate(value)]


def _batch_norm(c: int) -> int:
    return 4 * c + 1  # weight, bias, running mean and variance, the step counter


def _gated_block(c: int, s: int, k: int = 2, residual: bool = True) -> int:
    return (2 * c * c * k + 2 * c) + (c * c + c) * residual + (s * c + s)


def _wavenet_size(a: dict[str, Any]) -> int:  # the last block has no residual convolution
    c, s, n = a.get("channels", 32), a.get("skip_channels", 64), a.get("num_classes", 10)
    front = c * a.get("front_kernel", 64) + _batch_norm(c)
    blocks = len(a.get("dilations", range(8))) * _gated_block(c, s) - (c * c + c)
    return front + blocks + (s * s + _batch_norm(s)) + (s * n + n)


def _logmel_size(a: dict[str, Any]) -> int:
    n_fft, n_mels, n = a.get("n_fft", 256), a.get("n_mels", 40), a.get("num_classes", 10)
    bins = n_fft // 2 + 1
    widths: Sequence[int] = a.get("channels", (16, 32, 64))
    cnn = _batch_norm(1) + sum(
        9 * c_in * c_out + c_out + _batch_norm(c_out)
        for c_in, c_out in zip([1, *widths], widths, strict=False)
    )
    return 2 * bins * n_fft + n_mels * bins + cnn + widths[-1] * n + n  # fixed kernels, CNN, head


def _double_conv(c_in: int, c_out: int) -> int:  # two bias-free 3x3 convolutions, each with a BatchNorm
    return 9 * c_in * c_out + 9 * c_out * c_out + 2 * _batch_norm(c_out)


def _unet_size(a: dict[str, Any]) -> int:
    width, depth, n = a.get("width", 8), a.get("depth", 4), a.get("num_classes", 11)
    widths = [width * 2**level for level in range(depth + 1)]
    coarse = a.get("coarse_level")
    coarse = min(2, depth - 1) if coarse is None else coarse
    down = sum(
        _double_conv(c_in, c_out)
        for c_in, c_out in zip([a.get("in_channels", 1), *widths], widths[:-1], strict=False)
    )
    up = sum(4 * 2 * w * w + w + _double_conv(2 * w, w) for w in widths[:-1])
    heads = width * n + n + (widths[coarse] * n + n if 0 < coarse < depth else 0)
    return down + _double_conv(widths[-2], widths[-1]) + up + heads


_CLASSES = Int(1, MAX_CLASSES)
_WAVENET = {
    "num_classes": _CLASSES,
    "channels": Int(1, MAX_CHANNELS),
    "skip_channels": Int(1, MAX_CHANNELS),
    "dilations": _dilations,
    "front_kernel": Int(1, 4096),
    "front_stride": Int(1, 4096),
    "length": Int(16, MAX_LENGTH),
    "pool": Choice(("mean", "max")),
}
_LOGMEL = {"num_classes": _CLASSES, "n_mels": Int(1, 129), "length": Int(256, MAX_LENGTH)}
_UNET = {
    "num_classes": _CLASSES,
    "width": Int(1, 256),
    "depth": Int(1, 6),
    "size": Int(1, MAX_SIDE),
    "coarse_level": Int(0, 5),
}


def _classes(a: dict[str, Any]) -> int:
    return a.get("num_classes", 10)


TASK_FACTORIES = {
    "wavenet": (_WAVENET, _wavenet_size),
    "logmel_cnn": (_LOGMEL, _logmel_size),
    "unet": (_UNET, _unet_size),
}

_CAUSAL = {
    "in_channels": Int(1, MAX_CHANNELS),
    "out_channels": Int(1, MAX_CHANNELS),
    "kernel_size": Int(1, 64),
    "dilation": Int(1, MAX_LENGTH),
}
TASK_LAYERS = {
    "Upsample": (
        {
            "size": Maybe(_sizes),
            "scale_factor": Maybe(Real(0, 64, open_low=True)),  # one factor for every axis
            "mode": Choice(("nearest", "linear", "bilinear", "trilinear")),
            "align_corners": Maybe(flag),
        },
    ),
    "CausalConv1d": (
        _CAUSAL,
        ("in_channels", "out_channels"),
        lambda a: a["out_channels"] * a["in_channels"] * a.get("kernel_size", 2) + a["out_channels"],
    ),
    "GatedResidualBlock": (
        {
            "channels": Int(1, MAX_CHANNELS),
            "skip_channels": Int(1, MAX_CHANNELS),
            "dilation": _CAUSAL["dilation"],
            "kernel_size": _CAUSAL["kernel_size"],
            "residual": flag,
        },
        ("channels", "skip_channels", "dilation"),
        lambda a: _gated_block(
            a["channels"], a["skip_channels"], a.get("kernel_size", 2), a.get("residual", True)
        ),
    ),
    "WaveNetClassifier": (
        _WAVENET,
        (),
        _wavenet_size,
        _classes,
    ),
    "LogMelCNN": (
        {
            **_LOGMEL,
            "n_fft": Int(2, 4096),
            "hop": Int(1, 4096),
            "channels": _widths,
            "sample_rate": Int(1000, 192_000),
        },
        (),
        _logmel_size,
        _classes,
    ),
    "UNet": ({**_UNET, "in_channels": Int(1, MAX_CHANNELS)}, (), _unet_size, _classes),
}

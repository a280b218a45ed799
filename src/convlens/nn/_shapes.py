"""Output-shape inference shared by the convolution and pooling layers (batch excluded)."""

from __future__ import annotations

from collections.abc import Sequence

from ..functional._args import output_size

Shape = tuple[int, ...]
_AXES = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}


def check_input(layer: str, input_shape: Sequence[int], dims: int, channels: int | None = None) -> Shape:
    """``input_shape`` as a tuple, checked to be (C, *spatial) with ``dims`` spatial axes."""
    shape = tuple(int(n) for n in input_shape)
    if len(shape) != dims + 1:
        raise ValueError(f"{layer}: expects an input of shape {_AXES[dims]} (batch excluded), got {shape}")
    if channels is not None and shape[0] != channels:
        raise ValueError(f"{layer}: expects {channels} input channels, got input of shape {shape}")
    return shape


def window_output(
    layer: str,
    shape: Shape,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool = False,
) -> Shape:
    """Spatial output sizes of a sliding window; ValueError if the window does not fit."""
    sizes = tuple(
        output_size(n, k, p, s, d, ceil_mode)
        for n, k, p, s, d in zip(shape[1:], kernel, padding, stride, dilation, strict=True)
    )
    if any(n <= 0 for n in sizes):
        raise ValueError(
            f"{layer}: input of spatial size {shape[1:]} is too small for kernel_size={tuple(kernel)} "
            f"with padding={tuple(padding)} and dilation={tuple(dilation)} (output size would be {sizes})"
        )
    return sizes

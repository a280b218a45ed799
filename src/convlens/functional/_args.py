"""Argument canonicalisation shared by convolution and pooling.

Each helper validates once and returns plain tuples, so the ops below them can
trust their inputs. Errors name the op, the argument and what was received,
e.g. ``conv2d: stride must be positive integers. Received: stride=(0, 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def ntuple(value: Any, n: int, name: str, op: str, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int or a sequence of ``n`` ints) as a tuple of ``n`` ints >= ``minimum``.

    >>> ntuple(2, 3, "stride", "conv3d")
    (2, 2, 2)
    """
    if isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints. Received: {name}={value!r}")
    if isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, Sequence)):
        values = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
        if len(values) == 1:
            values = values * n
        if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints. Received: {name}={value!r}")
    else:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints. Received: {name}={value!r}")
    if any(v < minimum for v in values):
        kind = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{op}: {name} must be {kind}. Received: {name}={value!r}")
    return values


def output_size(
    n: int,
    kernel: int,
    padding: int = 0,
    stride: int = 1,
    dilation: int = 1,
    ceil_mode: bool = False,
    padding_after: int | None = None,
) -> int:
    """Length of a convolution or pooling output along one axis: the output-size formula.

    ``out = floor((n + p_before + p_after - dilation*(kernel-1) - 1) / stride) + 1``;
    with ``ceil_mode`` the division rounds up, but a window may not start in
    the right padding (PyTorch's rule). ``padding_after`` defaults to ``padding``.
    """
    after = padding if padding_after is None else padding_after
    span = n + padding + after - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    return out


def cacheable(value: Any) -> bool:
    """True for None, an int, a str or a tuple of ints: hashable, and equal keys mean
    equal arguments (no bool posing as an int, no list). Ops cache their validated
    geometry only for such arguments, so anything else is validated on every call."""
    kind = type(value)
    if kind is tuple:
        return all(type(v) is int for v in value)
    return value is None or kind is int or kind is str

"""Recycled work buffers for the column engines.

Column buffers are the largest allocations of a training step (megabytes) and every
step needs the same shapes again. Fresh memory costs a page fault per 4 KiB page on
first touch, which made building the columns several times slower inside a training
step than in isolation (docs/performance.md). A buffer is handed out again only when
nothing else references it (its reference count shows only this cache), so a live
saved state or a user's view of a result keeps it out of reach.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .tuning import TUNING

__all__ = ["REUSABLE", "reusable"]

REUSABLE: dict[tuple, list[np.ndarray]] = {}


def reusable(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array like ``np.empty(shape, dtype)``, recycled from an earlier call when free."""
    key = (shape, np.dtype(dtype))
    cached = REUSABLE.setdefault(key, [])
    for buffer in cached:
        if sys.getrefcount(buffer) <= 3:  # the list, the loop variable, getrefcount's argument
            return buffer
    buffer = np.empty(shape, dtype)
    held = sum(b.nbytes for bs in REUSABLE.values() for b in bs)
    if len(cached) < TUNING.reusable_per_shape and held + buffer.nbytes <= TUNING.reusable_max_bytes:
        cached.append(buffer)
    return buffer

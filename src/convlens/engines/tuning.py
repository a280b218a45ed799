"""Every tuning threshold of the fast convolution engines, in one named object.

The engines read ``TUNING`` on every call, so a test (or an experiment) can move a
threshold for a block of code without touching private globals::

    from convlens.engines.tuning import TUNING
    with TUNING.override(chunk_bytes=1):   # batch-inner columns one output row at a time
        ...

Where each value comes from, and how each engine wins where it applies, is in
docs/performance.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["TUNING", "Tuning"]


@dataclass
class Tuning:
    """The thresholds; the defaults were measured (docs/performance.md)."""

    # engine preference (the automatic choice, see each engine's ``suits``)
    fft_min_taps: int = 49  # the FFT engine from this many kernel taps on (7x7 in 2-D)
    direct_max_channels: int = 3  # numba's direct convolution up to this many input channels
    batch_inner_below: int = 16  # batch-inner columns for output rows shorter than this
    tap_major_below: int = 16  # tap-major columns below this many input channels per group
    # how the engines work
    fft_threads: int = 2  # the FFT engine splits the batch over this many threads
    chunk_bytes: int = 2**20  # column chunks sized for the per-core L2 cache
    keep_columns_bytes: int = 2**26  # a training step keeps batch-inner columns up to this size
    split_k_above: int = 16384  # the weight-gradient GEMM is split when its inner axis is longer
    split_k_parts: int = 8  # ... into this many partial GEMMs
    reusable_per_shape: int = 4  # recycled buffers kept per (shape, dtype)
    reusable_max_bytes: int = 2**27  # recycled buffers kept in all
    # the tiled pooling engine (engines/pool_tiles.py)
    pool_per_element_below: int = 16  # 2x2 max pool backward one element at a time below this many channels

    @contextlib.contextmanager
    def override(self, **changes: Any) -> Iterator[Tuning]:
        """Set some thresholds inside a ``with`` block; the previous values come back after it."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(
                f"Tuning.override: unknown thresholds. Known: {sorted(known)}. Received: {unknown}"
            )
        previous = {name: getattr(self, name) for name in changes}
        for name, value in changes.items():
            setattr(self, name, value)
        try:
            yield self
        finally:
            for name, value in previous.items():
                setattr(self, name, value)


TUNING = Tuning()

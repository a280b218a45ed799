"""The shape of a timed workload: per framework, a step to time and a result to compare."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

FRAMEWORKS = ("convlens", "torch")


@dataclass
class Runner:
    """One framework's side of a workload, with its inputs already built.

    ``step()`` is what is timed. ``result()`` runs one step and returns the arrays
    that must agree between frameworks (outputs, gradients), as NumPy float64.
    """

    step: Callable[[], Any]
    result: Callable[[], dict[str, np.ndarray]]


@dataclass(frozen=True)
class OpWorkload:
    """A workload timed per call (conv, pool, inference)."""

    name: str
    group: str  # "conv" | "pool" | "inference"
    label: str  # what is computed, for the tables
    make: Callable[[str], Runner]  # framework name -> Runner
    items: int = 1  # images per call, for throughput


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - e| / max(1, max |e|), as in tests/conftest.py."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"shape {actual.shape} != {expected.shape}")
    if actual.size == 0:
        return 0.0
    return float(np.max(np.abs(actual - expected)) / max(1.0, float(np.max(np.abs(expected)))))


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Per-array relative error between two ``Runner.result()`` dictionaries."""
    return {key: relative_error(a[key], b[key]) for key in a if key in b}

"""Every workload by name, and ``--only`` selection."""

from __future__ import annotations

import fnmatch

from . import lenet, ops
from ._workload import OpWorkload

TRAINING = tuple(f"lenet_train_{opt}" for opt in lenet.OPTIMIZERS)
STARTUP = "startup"


def op_workloads() -> list[OpWorkload]:
    """Workloads timed per call: conv, pool, inference."""
    return ops.workloads() + lenet.workloads()


def all_names() -> list[str]:
    return [w.name for w in op_workloads()] + list(TRAINING) + [STARTUP]


def selected(name: str, only: str | None) -> bool:
    """``only``: comma-separated names, substrings or globs (``conv_a``, ``*_fwdbwd``)."""
    if not only:
        return True
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    return any(p in name or fnmatch.fnmatchcase(name, p) for p in patterns)


def by_name(name: str) -> OpWorkload:
    for workload in op_workloads():
        if workload.name == name:
            return workload
    raise KeyError(f"unknown workload {name!r}; known: {', '.join(all_names())}")

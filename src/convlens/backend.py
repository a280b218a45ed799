"""Which implementation runs the compiled kernels: pure NumPy or numba.

The optional numba kernels (``pip install 'convlens[fast]'``) move data (im2col's
col2im, pooling) and compute the convolutions whose im2col would be mostly
copying: the direct convolution of 1-3 input channels at stride 1, and the fused
Conv2d -> ReLU -> MaxPool2d(2) block of ``nn.Sequential``. Every other GEMM runs in
NumPy's BLAS. Both paths give the same results and are tested against each other
(and against PyTorch and the loop oracles).

Choose with the environment variable ``CONVLENS_BACKEND`` (``auto``, the
default: numba when installed; ``numpy``; ``numba``) or at run time::

    import convlens as cl
    cl.backend.set_backend("numpy")
    with cl.backend.use("numba"):
        ...
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Iterator

_CHOICES = ("auto", "numpy", "numba")
_current: str | None = None


@functools.cache
def numba_available() -> bool:
    """True when numba can be imported (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _validate(name: str) -> str:
    if name not in _CHOICES:
        raise ValueError(f"backend must be one of {', '.join(_CHOICES)}. Received: {name!r}")
    if name == "numba" and not numba_available():
        raise ValueError("backend 'numba' needs numba: pip install 'convlens[fast]'")
    return name


def get_backend() -> str:
    """The backend in force: ``"numpy"`` or ``"numba"`` (``auto`` resolved)."""
    name = _current or _validate(os.environ.get("CONVLENS_BACKEND", "auto").strip().lower() or "auto")
    if name == "auto":
        return "numba" if numba_available() else "numpy"
    return name


def set_backend(name: str) -> None:
    """Select ``"auto"``, ``"numpy"`` or ``"numba"`` for the rest of the process."""
    global _current
    _current = _validate(name)


@contextlib.contextmanager
def use(name: str) -> Iterator[None]:
    """Select a backend inside a ``with`` block (tests run both paths this way)."""
    global _current
    previous = _current
    set_backend(name)
    try:
        yield
    finally:
        _current = previous


def use_numba() -> bool:
    return get_backend() == "numba"

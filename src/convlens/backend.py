"""Which engine computes a convolution or a pooling: the one place where that is chosen.

An *engine* is one way to compute an op family (``"conv"``, ``"pool"``, ...) on
arrays. Every family has a **reference engine**, the readable one in
``functional/`` that follows the lecture (im2col + GEMM for convolution, one
strided pass per window tap for pooling). The fast engines live in
``convlens.engines``, one file each; they register here, in order of
preference, and each says for which arguments it applies.

The backend says which engines may run. Choose it with the environment variable
``CONVLENS_BACKEND`` or at run time:

- ``auto`` (the default): ``numba`` when numba is installed, else ``numpy``;
- ``numpy``: the fast engines that need only NumPy;
- ``numba``: those and the compiled ones (``pip install 'convlens[fast]'``);
- ``reference``: the reference engines only, everywhere (slow; for reading and
  as the oracle of the others).

::

    import convlens as cl
    cl.backend.set_backend("reference")
    with cl.backend.use("numpy"):
        ...
    with cl.backend.force("tap-major"):   # this engine, or a clear error
        ...
    with cl.backend.record() as ran:      # which engines ran
        ...
    ran  # [("conv", "tap-major"), ...]

The forward pass chooses an engine; the backward pass of the same call always
runs the same engine (it is kept with the saved state), so nothing is chosen twice.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Engine",
    "engines",
    "force",
    "get_backend",
    "numba_available",
    "record",
    "register",
    "set_backend",
    "use",
    "use_numba",
]

_CHOICES = ("auto", "numpy", "numba", "reference")
_current: str | None = None
_forced: str | None = None
_recorders: list[list[tuple[str, str]]] = []


@functools.cache
def numba_available() -> bool:
    """True when numba can be imported (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _validate(name: Any) -> str:
    if not isinstance(name, str) or name not in _CHOICES:
        raise ValueError(f"backend: the name must be one of {', '.join(_CHOICES)}. Received: name={name!r}")
    if name == "numba" and not numba_available():
        raise ValueError("backend: 'numba' needs numba: pip install 'convlens[fast]'. Received: name='numba'")
    return name


def get_backend() -> str:
    """The backend in force: ``"numpy"``, ``"numba"`` or ``"reference"`` (``auto`` resolved)."""
    return _resolve(_current or os.environ.get("CONVLENS_BACKEND", "auto"))


@functools.lru_cache(maxsize=16)
def _resolve(requested: str) -> str:
    # Cached: every convolution and pooling call asks, and validating costs more than the
    # small ops themselves. Keyed by the raw request, so a changed variable is seen.
    name = _validate(requested.strip().lower() or "auto")
    if name == "auto":
        return "numba" if numba_available() else "numpy"
    return name


def set_backend(name: str) -> None:
    """Select ``"auto"``, ``"numpy"``, ``"numba"`` or ``"reference"`` for the rest of the process."""
    global _current
    _current = _validate(name)


@contextlib.contextmanager
def use(name: str) -> Iterator[None]:
    """Select a backend inside a ``with`` block (tests run every backend this way)."""
    global _current
    previous = _current
    set_backend(name)
    try:
        yield
    finally:
        _current = previous


def use_numba() -> bool:
    """True when compiled (numba) engines may run."""
    return get_backend() == "numba"


# -- the registry ------------------------------------------------------------------------
@dataclass(frozen=True)
class Engine:
    """One way to compute an op family.

    ``why_not(*args)`` returns ``None`` when the engine applies to those arguments, else a
    short reason (``"it needs stride 1"``) used in the error of :func:`force`.
    ``suits(*args)`` says whether the automatic choice takes the engine where it applies
    (its tuning thresholds: the FFT only from 49 kernel taps on, ...); :func:`force` ignores it.
    ``needs_numba`` engines run only on the ``numba`` backend. ``impl`` is whatever the
    family's caller needs to run it (a module or an object with forward and backward).
    """

    family: str
    name: str
    impl: Any
    why_not: Callable[..., str | None] = field(default=lambda *args: None)
    suits: Callable[..., bool] = field(default=lambda *args: True)
    needs_numba: bool = False
    reference: bool = False


_REGISTRY: dict[str, list[Engine]] = {}


def register(engine: Engine) -> Engine:
    """Add ``engine`` to its family, after the engines registered before it (lower preference).

    A family's reference engine (``reference=True``) is always tried last. Registering a
    name again replaces the earlier engine in place (re-imports stay harmless).
    """
    engines_of_family = _REGISTRY.setdefault(engine.family, [])
    for i, known in enumerate(engines_of_family):
        if known.name == engine.name:
            engines_of_family[i] = engine
            return engine
    engines_of_family.append(engine)
    engines_of_family.sort(key=lambda e: e.reference)  # stable: the reference goes last
    return engine


def engines(family: str | None = None) -> list[Engine]:
    """The registered engines, of one family or all, in order of preference."""
    _load_fast_engines()
    if family is not None:
        return list(_REGISTRY.get(family, []))
    return [e for family_engines in _REGISTRY.values() for e in family_engines]


@functools.cache
def _load_fast_engines() -> None:
    # The fast engines import the functional modules, so they are loaded on first use
    # rather than imported here: this module stays free of import cycles.
    importlib.import_module("convlens.engines")


def _allowed(engine: Engine, backend: str) -> bool:
    if backend == "reference":
        return engine.reference
    return not engine.needs_numba or backend == "numba"


def choose(family: str, op: str, *args: Any) -> Engine:
    """The engine that computes ``family`` for these arguments: the forced one, else the first
    allowed by the backend that applies. ``op`` names the public op in errors."""
    _load_fast_engines()
    candidates = _REGISTRY.get(family, [])
    if _forced is not None and any(e.name == _forced for e in candidates):
        engine = _check_forced(next(e for e in candidates if e.name == _forced), op, args)
    elif _has_empty_array(args):
        # Nothing to speed up, and the fast engines' memory layouts assume at least one
        # sample: an empty batch always takes the reference engine.
        engine = candidates[-1]
    else:
        backend = get_backend()
        engine = next(
            e for e in candidates if _allowed(e, backend) and e.why_not(*args) is None and e.suits(*args)
        )
    for ran in _recorders:
        ran.append((family, engine.name))
    return engine


def _has_empty_array(args: tuple) -> bool:
    return any(getattr(a, "size", None) == 0 for a in args)


def _check_forced(engine: Engine, op: str, args: tuple) -> Engine:
    if engine.needs_numba and not numba_available():
        raise ValueError(f"{op}: engine {engine.name!r} needs numba: pip install 'convlens[fast]'")
    if not engine.reference and _has_empty_array(args):
        shapes = [a.shape for a in args if getattr(a, "size", None) == 0]
        raise ValueError(f"{op}: engine {engine.name!r} does not apply to empty arrays. Received: {shapes}")
    reason = engine.why_not(*args)
    if reason is not None:
        raise ValueError(f"{op}: engine {engine.name!r} does not apply here: {reason}")
    return engine


@contextlib.contextmanager
def force(name: str) -> Iterator[None]:
    """Run engine ``name`` wherever its family is computed inside the block.

    Raises ``ValueError`` (at the op) where the engine does not apply to the op's
    arguments; other families keep their usual choice.
    """
    global _forced
    known = {e.name for e in engines()}
    if name not in known:
        raise ValueError(f"backend.force: unknown engine. Known: {sorted(known)}. Received: name={name!r}")
    previous = _forced
    _forced = name
    try:
        yield
    finally:
        _forced = previous


@contextlib.contextmanager
def record() -> Iterator[list[tuple[str, str]]]:
    """Collect ``(family, engine name)`` for every engine chosen inside the block."""
    ran: list[tuple[str, str]] = []
    _recorders.append(ran)
    try:
        yield ran
    finally:
        _recorders.remove(ran)

"""The model the page shows: where it came from, how its input is prepared, safe access to it.

One :class:`Session` per server. It holds the shown model (a checkpoint, or the
model being trained) and lends it to one forward pass at a time. A training run
never hands out the model it is updating: between two steps it *publishes* a copy
of the weights (:meth:`Session.publish`), and the next prediction loads that copy
into the shown model first, so a prediction sees the weights of one step, never a
half-updated model.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import convlens as cl
from convlens import images, recipe
from convlens.io import CHECKPOINT_NAME, checkpoint_files, load_checkpoint

from .inputs import ApiError

DIGIT_SIZE = 28  # what the page draws: an MNIST digit
MAX_SHOWN_VALUES = 300_000  # activations of one forward pass sent to the page (LeNet-5: ~15,000)


@dataclass
class ShownModel:
    """A model and everything the page needs to feed it and label its output."""

    model: Any
    title: str
    source: str
    config: dict[str, Any]
    input_shape: tuple[int, ...]
    mean: float
    std: float
    pad: int
    classes: list[str]
    problem: str | None = None  # why the page cannot show this model, or None
    version: int = 0
    layer_names: list[str] = field(default_factory=list)

    def to_input(self, pixels: np.ndarray) -> np.ndarray:
        """A 28x28 digit in [0, 1] as the model's (1, 1, H, W) input: normalised and padded."""
        return images.normalize(pixels[None, None], self.mean, self.std, self.pad)


def describe(model: Any, source: str, config: dict[str, Any] | None = None) -> ShownModel:
    """A :class:`ShownModel` for ``model``; ``problem`` says why the page cannot show it, if so."""
    config = dict(config or {})
    shape = tuple(int(n) for n in (config.get("input_shape") or getattr(model, "input_shape", (1, 28, 28))))
    mean, std = _normalization(model, config)
    pad = int(config.get("pad", max(0, (shape[-1] - DIGIT_SIZE) // 2)))
    shown = ShownModel(model, _title(model, config), source, config, shape, mean, std, pad, classes=[])
    shown.problem = _problem(shown)
    return shown


def _normalization(model: Any, config: dict[str, Any]) -> tuple[float, float]:
    if config.get("mean") is not None and config.get("std") is not None:
        return float(config["mean"]), float(config["std"])
    mean, std = images.normalization(config.get("dataset", "mnist"))
    return recipe.input_normalization(model, mean, std)  # the classic LeNet-5 prescribes its levels


def _title(model: Any, config: dict[str, Any]) -> str:
    architecture = model.get_config() if callable(getattr(model, "get_config", None)) else {}
    name = config.get("model") or architecture.get("factory") or type(model).__name__
    variant = (architecture.get("kwargs") or {}).get("variant")
    dataset = config.get("dataset")
    return f"{name}" + (f" ({variant})" if variant else "") + (f" trained on {dataset}" if dataset else "")


def _problem(shown: ShownModel) -> str | None:
    """Why the page cannot draw on ``shown`` (None if it can); fills its classes and layers."""
    from .layers import forward_recorded

    shape = shown.input_shape
    if len(shape) != 3 or shape[0] != 1 or shape[1] != shape[2] or shape[1] < DIGIT_SIZE:
        return (
            f"This model takes inputs of shape {'x'.join(map(str, shape))}; the page draws one-channel "
            f"{DIGIT_SIZE}x{DIGIT_SIZE} digits (padded to a larger square when the model asks)."
        )
    if shape[1] != DIGIT_SIZE + 2 * shown.pad:
        return (
            f"This model's {shape[1]}x{shape[2]} input does not fit a {DIGIT_SIZE}x{DIGIT_SIZE} digit "
            f"padded by {shown.pad}."
        )
    try:
        scores, records = forward_recorded(shown.model, np.zeros((1, *shape), np.float32))
    except Exception as error:  # any model a checkpoint can hold: say why, never break the page
        return f"A {'x'.join(map(str, shape))} input does not run through this model: {error}"
    if scores.ndim != 2 or scores.shape[0] != 1:
        return (
            f"This model's output has shape {scores.shape}; the page shows one score per class, (1, classes)."
        )
    count = scores.shape[1]
    classes = [str(c) for c in shown.config.get("classes") or range(count)]
    if len(classes) != count:
        return f"The checkpoint names {len(classes)} classes but the model outputs {count} scores."
    total = sum(r.output.size for r in records)
    if total > MAX_SHOWN_VALUES:
        return (
            f"This model's layers produce {total:,} values per input, more than the page shows "
            f"({MAX_SHOWN_VALUES:,})."
        )
    shown.classes = classes
    shown.layer_names = [r.name for r in records]
    return None


def newest_checkpoint(runs_dir: Path) -> Path | None:
    """The most recently written training checkpoint under ``runs_dir``, or None."""
    stem = checkpoint_files(CHECKPOINT_NAME).meta.name  # its JSON file is written last
    found = [p for p in Path(runs_dir).glob(f"**/{stem}") if p.is_file()]
    if not found:
        return None
    newest = max(found, key=lambda p: p.stat().st_mtime)
    return newest.with_name(CHECKPOINT_NAME)


def read_checkpoint(path: str | Path) -> ShownModel:
    """Load a checkpoint of ``convlens train`` or ``cl.save`` for the page.

    Raises:
        FileNotFoundError, ValueError: as :func:`convlens.io.load_checkpoint`.
    """
    state = load_checkpoint(path)
    return describe(state["model"], str(path), state["config"])


class Session:
    """The shown model, swapped atomically and used by one forward pass at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards _shown and _published
        self._inference = threading.Lock()  # the shown model runs one forward pass at a time
        self._shown: ShownModel | None = None
        self._published: dict[str, np.ndarray] | None = None
        self._version = 0

    def show(self, shown: ShownModel) -> ShownModel:
        """Make ``shown`` the model the page uses from the next request on."""
        with self._lock:
            self._version += 1
            shown.version = self._version
            self._shown, self._published = shown, None
        return shown

    def publish(self, state_dict: dict[str, np.ndarray]) -> None:
        """New weights for the shown model (a copy made between two training steps)."""
        with self._lock:
            self._version += 1
            self._published = state_dict

    @property
    def shown(self) -> ShownModel | None:
        return self._shown

    @contextlib.contextmanager
    def current(self) -> Iterator[ShownModel | None]:
        """The shown model (None if there is none) with the latest published weights loaded."""
        with self._inference:
            with self._lock:
                shown, published, version = self._shown, self._published, self._version
                self._published = None
            if shown is not None and published is not None:
                shown.model.load_state_dict(published)
                shown.version = version
            yield shown

    @contextlib.contextmanager
    def using(self) -> Iterator[ShownModel]:
        """The shown model for one forward pass; 409 if there is none or the page cannot show it."""
        with self.current() as shown:
            if shown is None:
                raise ApiError(
                    409,
                    "No model is loaded yet: train one on the page, or start the server with a checkpoint.",
                )
            if shown.problem:
                raise ApiError(409, f"The page cannot show this model. {shown.problem}")
            yield shown


def clone(model: Any) -> Any:
    """A separate model with the same architecture and weights (for the page while training)."""
    twin = cl.nn.from_config(model.get_config())
    twin.load_state_dict(model.state_dict())
    return twin.eval()

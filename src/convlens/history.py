"""What a training run did, epoch by epoch: :class:`EpochRecord` and :class:`History`.

``convlens.train.fit`` fills a History; checkpoints (``convlens.io``) store it as JSON;
``cl.viz.training_curves`` draws it.

>>> h = History([EpochRecord(0, 0.5, 0.9, 0.4, 0.92, 1.5, 4000.0)])
>>> h.val_acc
[0.92]
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EpochRecord", "History"]


@dataclass
class EpochRecord:
    """What one epoch did. ``val_*`` are ``None`` without a validation loader."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    seconds: float
    images_per_sec: float
    lr: float | None = None


@dataclass
class History:
    """Per-epoch records of a ``fit`` run; ``to_dict()`` is JSON-able."""

    epochs: list[EpochRecord] = field(default_factory=list)
    interrupted: bool = False
    stopped_by: str | None = None  # "SIGINT" or "SIGTERM" when a signal stopped the run

    def _column(self, name: str) -> list[Any]:
        return [getattr(record, name) for record in self.epochs]

    @property
    def train_loss(self) -> list[float]:
        return self._column("train_loss")

    @property
    def train_acc(self) -> list[float]:
        return self._column("train_acc")

    @property
    def val_loss(self) -> list[float | None]:
        return self._column("val_loss")

    @property
    def val_acc(self) -> list[float | None]:
        return self._column("val_acc")

    @property
    def seconds(self) -> list[float]:
        return self._column("seconds")

    @property
    def images_per_sec(self) -> list[float]:
        return self._column("images_per_sec")

    def __len__(self) -> int:
        return len(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        state = {"epochs": [asdict(record) for record in self.epochs], "interrupted": self.interrupted}
        if self.stopped_by is not None:
            state["stopped_by"] = self.stopped_by
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        return cls(
            [EpochRecord(**record) for record in state.get("epochs", [])],
            bool(state.get("interrupted", False)),
            state.get("stopped_by"),
        )

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

"""What ``convlens train --resume`` does with the options it is given.

A resumed run continues exactly where its checkpoint stands, so the options that
define *what* is trained cannot change: the model, the data set and its subset,
the optimizer, the batch size (it fixes which images make step ``k`` of an epoch),
the seed, the augmentation and the kind of schedule (and, for the segmentation
task, the numbers of scenes). Giving one of them with a different value is
refused, naming each and the value the run uses.

Three options can change, and each change is reported in one line:

- ``--epochs N`` extends (or shortens) the run. A cosine schedule is re-planned
  over the new total: the rate for the next epoch is the new curve's value there,
  so an extended run never trains at rate 0 and then rises again.
- ``--lr`` becomes the run's learning rate from the next epoch on (with a cosine
  schedule: the new peak of the curve, which continues from where the run stands).
- ``--momentum`` (SGD only) is applied from the next step.

A run that has done all its epochs is *finished*: :func:`plan` says so and how to
extend it, and there is nothing to train.

>>> state = {"config": {"model": "lenet5", "epochs": 2, "lr": 0.02, "schedule": "cosine",
...          "optimizer": "sgd", "momentum": 0.9}, "epoch": 2, "step": 0,
...          "optimizer_state": {"param_groups": [{"lr": 0.0, "initial_lr": 0.02}]},
...          "scheduler_state": {"T_max": 2, "eta_min": 0.0, "base_lrs": [0.02], "last_epoch": 2}}
>>> resumed = plan(state, {"epochs": 4})
>>> print(resumed.notes[0])  # doctest: +NORMALIZE_WHITESPACE
extending the run from 2 to 4 epochs: the cosine schedule is re-planned over 4 epochs
(lr 0.01 for epoch 3, falling to 0 by the end)
>>> resumed.state["optimizer_state"]["param_groups"][0]["lr"]
0.01
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FIXED", "ResumeError", "Resumed", "plan"]

# option (as in config.json) -> how the command line spells it
FIXED = {
    "model": "--model",
    "dataset": "--dataset",
    "optimizer": "--optimizer",
    "batch_size": "--batch-size",
    "seed": "--seed",
    "augment": "--augment",
    "limit": "--limit",
    "schedule": "--schedule",
    "train_scenes": "--train-scenes",  # the segmentation task's data
    "test_scenes": "--test-scenes",
}


class ResumeError(ValueError):
    """An option that cannot be applied to the run being resumed (one line)."""


@dataclass
class Resumed:
    """The run's config and state with the requested changes applied, and a line per change."""

    config: dict[str, Any]
    state: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    finished: bool = False


def plan(state: Mapping[str, Any], requested: Mapping[str, Any]) -> Resumed:
    """Apply the options ``requested`` (name -> value; None = not given) to a checkpoint ``state``.

    ``state`` is what :func:`convlens.io.load_checkpoint` returns. Returns a new
    config and state (the inputs are not changed).

    Raises:
        ResumeError: a fixed option differs from the run's, or ``epochs`` would not
            extend it, or ``momentum`` is given for an optimizer without one.
    """
    state = {**state, "config": dict(state["config"])}
    for key in ("optimizer_state", "scheduler_state"):
        state[key] = copy.deepcopy(state.get(key))
    config = state["config"]
    _refuse_fixed(config, requested)
    resumed = Resumed(config, state)
    done = int(state.get("epoch", 0))
    _apply_epochs(resumed, requested.get("epochs"), done)
    _apply_lr(resumed, requested.get("lr"), done)
    _apply_momentum(resumed, requested.get("momentum"))
    _set_current_lr(resumed)
    if done >= config["epochs"] and not state.get("step"):
        resumed.finished = True
        resumed.notes.append(
            f"the run already finished its {config['epochs']} epochs; to train more, "
            f"resume it with --epochs N (N > {config['epochs']})"
        )
    return resumed


def _canonical(name: str, value: Any) -> Any:
    if name == "model" and isinstance(value, str):
        return value.lower().replace("-", "_")
    return value


def _refuse_fixed(config: Mapping[str, Any], requested: Mapping[str, Any]) -> None:
    changed = [
        f"{flag} (the run uses {_shown(config.get(name))})"
        for name, flag in FIXED.items()
        if requested.get(name) is not None
        and _canonical(name, requested[name]) != _canonical(name, config.get(name))
    ]
    if changed:
        raise ResumeError(
            f"cannot change when resuming: {', '.join(changed)}; "
            "start a new run (another --out) to train with other settings"
        )


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "--augment" if value else "--no-augment"
    return "all images" if value is None else str(value)


def _apply_epochs(resumed: Resumed, epochs: int | None, done: int) -> None:
    planned = resumed.config["epochs"]
    if epochs is None or epochs == planned:
        return
    if epochs <= done:
        raise ResumeError(
            f"--epochs {epochs} would not extend the run: it has done {done} epochs; give more than {done}"
        )
    resumed.config["epochs"] = epochs
    scheduler = resumed.state.get("scheduler_state")
    verb = "extending" if epochs > planned else "shortening"
    text = f"{verb} the run from {planned} to {epochs} epochs"
    if scheduler is not None and "T_max" in scheduler:
        scheduler["T_max"] = epochs
        next_lr = _cosine(scheduler, scheduler["base_lrs"][0], scheduler["last_epoch"])
        text += (
            f": the cosine schedule is re-planned over {epochs} epochs "
            f"(lr {next_lr:.3g} for epoch {done + 1}, "
            f"falling to {scheduler.get('eta_min', 0.0):g} by the end)"
        )
    resumed.notes.append(text)


def _apply_lr(resumed: Resumed, lr: float | None, done: int) -> None:
    old = resumed.config.get("lr")
    if lr is None or lr == old:
        return
    resumed.config["lr"] = lr
    for group in _groups(resumed):
        group["initial_lr"] = lr
    scheduler = resumed.state.get("scheduler_state")
    if scheduler is not None and "base_lrs" in scheduler:
        scheduler["base_lrs"] = [lr] * len(scheduler["base_lrs"])
        how = f"the new peak of the cosine schedule, which continues at epoch {done + 1}"
    else:
        how = f"from epoch {done + 1}"
    resumed.notes.append(f"--lr {lr:g} (was {old:g}): {how}")


def _apply_momentum(resumed: Resumed, momentum: float | None) -> None:
    old = resumed.config.get("momentum")
    if momentum is None or momentum == old:
        return
    if resumed.config.get("optimizer") != "sgd":
        raise ResumeError(f"--momentum applies to sgd only; the run uses {resumed.config.get('optimizer')}")
    resumed.config["momentum"] = momentum
    for group in _groups(resumed):
        group["momentum"] = momentum
    resumed.notes.append(f"--momentum {momentum:g} (was {old:g}): from the next step")


def _set_current_lr(resumed: Resumed) -> None:
    """Each group's lr: the (re-planned) schedule's value at the epoch the run continues with."""
    scheduler = resumed.state.get("scheduler_state")
    groups = _groups(resumed)
    if scheduler is not None and "T_max" in scheduler:
        rates = [_cosine(scheduler, base, scheduler["last_epoch"]) for base in scheduler["base_lrs"]]
        scheduler["_last_lr"] = rates
        for group, rate in zip(groups, rates, strict=False):
            group["lr"] = rate
    elif scheduler is None and "lr" in resumed.config:
        for group in groups:
            group["lr"] = resumed.config["lr"]


def _cosine(scheduler: Mapping[str, Any], base: float, epoch: int) -> float:
    """``CosineAnnealingLR``'s closed form (convlens.optim), from the scheduler's saved state."""
    from .optim import CosineAnnealingLR

    shape = CosineAnnealingLR.__new__(CosineAnnealingLR)
    shape.T_max, shape.eta_min = int(scheduler["T_max"]), float(scheduler.get("eta_min", 0.0))
    return shape.lr_at(base, int(epoch))


def _groups(resumed: Resumed) -> list[dict[str, Any]]:
    optimizer = resumed.state.get("optimizer_state") or {}
    return list(optimizer.get("param_groups", []))

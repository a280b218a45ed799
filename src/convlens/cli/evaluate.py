"""``convlens evaluate``: accuracy, per-class accuracy and confusion matrix of a checkpoint."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import recipe, tasks
from .. import train as training
from ..images import normalization
from . import tasks as tasks_cli
from ._common import add_data_options, load_splits, positive_int, read_checkpoint, warn


def register(commands: Any) -> None:
    p = commands.add_parser(
        "evaluate",
        help="accuracy, per-class accuracy and confusion matrix",
        description="Evaluate a checkpoint on the test split of a data set.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    add_data_options(p, None)
    p.add_argument("--batch-size", type=positive_int, default=500, help="default: %(default)s")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    state = read_checkpoint(args.checkpoint)
    model, config = state["model"], dict(state["config"])
    if config.get("task") in tasks.TASKS:
        return tasks_cli.evaluate(args, state)
    dataset = recipe.resolve_dataset(args.dataset or config.get("dataset") or "auto", args.data_dir)
    mean, std = config.get("mean"), config.get("std")
    if mean is None:
        mean, std = normalization(dataset)
    pad = config.get("pad", recipe.padding_for(getattr(model, "input_shape", (1, 28, 28))))
    _, test_set = load_splits(dataset, args.data_dir, args.download)
    names = config.get("classes") or [str(name) for name in test_set.classes]
    trained_on = config.get("dataset")
    if trained_on and trained_on != dataset:
        names = [str(name) for name in test_set.classes]  # the true labels are the test set's
        if len(names) != len(config.get("classes") or names) or names != config.get("classes", names):
            warn(
                f"{args.checkpoint} was trained on {trained_on}, not {dataset}: its outputs are "
                f"{trained_on}'s classes, so the accuracy below compares unrelated labels"
            )
    loader = recipe.loader(test_set, args.batch_size, recipe.transform(mean, std, pad, False))
    result = training.evaluate(model, loader, num_classes=len(names))
    print(f"{args.checkpoint} on {dataset} (test, {result.count:,} images)")
    print(f"accuracy: {100 * result.accuracy:.2f}%   loss: {result.loss:.4f}")
    print()
    print(format_per_class(names, result.per_class_accuracy, result.confusion.sum(axis=1)))
    print()
    print(format_confusion(names, result.confusion))
    return 0


def format_per_class(names: Sequence[str], accuracy: np.ndarray, support: np.ndarray) -> str:
    """One line per class: its name, its accuracy (recall) and how many test images it has."""
    width = max(len("class"), *(len(n) for n in names))
    lines = [f"{'class':<{width}}  accuracy  images"]
    for name, acc, count in zip(names, accuracy, support, strict=True):
        text = "     n/a" if np.isnan(acc) else f"{100 * acc:7.2f}%"
        lines.append(f"{name:<{width}}  {text}  {int(count):>6}")
    return "\n".join(lines)


def format_confusion(names: Sequence[str], confusion: np.ndarray) -> str:
    """Rows: true class, columns: predicted class (indices; the legend maps them to names)."""
    k = len(names)
    cell = max(4, len(str(int(confusion.max(initial=0)))) + 1)
    header = "true\\pred" + "".join(f"{j:>{cell}}" for j in range(k))
    lines = ["confusion matrix (rows: true class, columns: predicted class)", header]
    for i in range(k):
        lines.append(f"{i:>9}" + "".join(f"{int(v):>{cell}}" for v in confusion[i]))
    if any(name != str(i) for i, name in enumerate(names)):
        lines.append("classes: " + ", ".join(f"{i}={name}" for i, name in enumerate(names)))
    return "\n".join(lines)

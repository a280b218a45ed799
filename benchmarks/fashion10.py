"""Ten epochs of modern LeNet-5 on full Fashion-MNIST, convlens and PyTorch side by side.

The quality bar of the training issue: >= 90% test accuracy within 10 epochs with the
settings of ``convlens train`` (SGD lr 0.02, momentum 0.9, cosine annealing over the
epochs, batch 64, pixels normalised with Fashion-MNIST's mean 0.2860 and std 0.3530),
reported per epoch next to PyTorch training the same network from the same initial
weights on the same batches, epochs interleaved (convlens epoch 1, PyTorch epoch 1, ...)
so both see the same machine conditions.

Run from the repository root (the two variables slow NumPy's BLAS on this machine)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.fashion10 [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import lenet

MEAN, STD = 0.2860, 0.3530  # as `convlens train` uses for fashion-mnist
LR, MOMENTUM = 0.02, 0.9


def _normalised(images: np.ndarray) -> np.ndarray:
    return ((images[:, None].astype(np.float32) / np.float32(255)) - np.float32(MEAN)) / np.float32(STD)


def _sides(state: dict[str, np.ndarray]) -> dict[str, tuple[Any, Any, Any]]:
    """framework -> (model, optimizer, lr setter), same initial weights."""
    import torch

    import convlens as cl

    ours = lenet.convlens_model()
    ours.load_state_dict(state)
    ours_opt = cl.optim.SGD(ours.parameters(), lr=LR, momentum=MOMENTUM)
    theirs = lenet.torch_model()
    lenet.copy_weights(state, theirs)
    theirs_opt = torch.optim.SGD(theirs.parameters(), lr=LR, momentum=MOMENTUM)
    return {"convlens": (ours, ours_opt), "torch": (theirs, theirs_opt)}


def _cosine_lr(epoch: int, epochs: int) -> float:
    """CosineAnnealingLR(T_max=epochs, eta_min=0) for ``epoch`` (0-based), stepped per epoch."""
    return 0.5 * LR * (1 + math.cos(math.pi * epoch / epochs))


def run(epochs: int) -> dict[str, Any]:
    import torch
    from threadpoolctl import threadpool_limits

    import convlens as cl

    torch.set_num_threads(2)
    train, test = cl.data.load_dataset("fashion-mnist")
    train_x, test_x = _normalised(train.images), _normalised(test.images)
    train_y, test_y = train.labels.astype(np.int64), test.labels.astype(np.int64)
    sides = _sides(lenet._initial_state())
    order = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    with threadpool_limits(2, user_api="blas"):
        for epoch in range(epochs):
            batches = np.array_split(order.permutation(len(train_x)), math.ceil(len(train_x) / lenet.BATCH))
            row: dict[str, Any] = {"epoch": epoch + 1, "lr": _cosine_lr(epoch, epochs)}
            for name, (model, opt) in sides.items():
                for group in opt.param_groups:
                    group["lr"] = row["lr"]
                time.sleep(0.25)
                start = time.perf_counter()
                losses = [lenet.STEP[name](model, opt, train_x[i], train_y[i]) for i in batches]
                row[f"{name}_seconds"] = time.perf_counter() - start
                row[f"{name}_loss"] = float(np.mean(losses))
                row[f"{name}_test_acc"] = lenet.evaluate(name, model, test_x, test_y)
            rows.append(row)
            print(_format_row(row), flush=True)
    return {"epochs": rows, "settings": {"lr": LR, "momentum": MOMENTUM, "batch": lenet.BATCH,
                                          "schedule": "cosine", "mean": MEAN, "std": STD}}  # fmt: skip


def _format_row(row: dict[str, Any]) -> str:
    return (
        f"epoch {row['epoch']:2d}  lr {row['lr']:.4f}  "
        f"convlens {100 * row['convlens_test_acc']:.2f}% {row['convlens_seconds']:.2f}s  "
        f"torch {100 * row['torch_test_acc']:.2f}% {row['torch_seconds']:.2f}s  "
        f"ratio {row['convlens_seconds'] / row['torch_seconds']:.2f}x"
    )


def markdown(result: dict[str, Any], command: str) -> str:
    lines = [
        "# Modern LeNet-5 on Fashion-MNIST: convlens and PyTorch, epoch by epoch",
        "",
        f"Command: `{command}`. Settings of `convlens train`: SGD lr {LR} momentum {MOMENTUM}, "
        "cosine annealing per epoch, batch 64, normalised pixels; same initial weights and "
        "same batches in both frameworks, epochs interleaved, 2 threads each.",
        "",
        "| epoch | convlens test acc | PyTorch test acc | convlens s | PyTorch s | time ratio |",
        "|--:|--:|--:|--:|--:|--:|",
    ]
    for r in result["epochs"]:
        ratio = r["convlens_seconds"] / r["torch_seconds"]
        lines.append(
            f"| {r['epoch']} | {100 * r['convlens_test_acc']:.2f}% | {100 * r['torch_test_acc']:.2f}% "
            f"| {r['convlens_seconds']:.2f} | {r['torch_seconds']:.2f} | {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fashion10", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--md", default="docs/fashion_mnist.md", help="Markdown report (default: %(default)s)"
    )
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args(argv)
    result = run(args.epochs)
    command = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.fashion10" + (
        f" --epochs {args.epochs}" if args.epochs != 10 else ""
    )
    Path(args.md).write_text(markdown(result, command))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

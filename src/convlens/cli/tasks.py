"""``convlens train/evaluate/predict`` for the other tasks: ``--task spoken-digits`` and ``--task segment``.

A thin layer over :mod:`convlens.tasks`: the task's config from the options given,
``fit`` with checkpoints written as for images, then the figures and pictures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import io, tasks
from .. import train as training
from ._common import CLIError, check_data_dir, need_viz, plain

TASK_NAMES = ("classify", *tasks.TASKS)
_SETTINGS = ("model", "epochs", "batch_size", "optimizer", "lr", "schedule", "seed", "limit")


def train(args: argparse.Namespace) -> int:
    check_data_dir(args.data_dir)
    if args.resume:
        raise CLIError(f"--resume is not available with --task {args.task} yet; start a new run", code=2)
    try:
        config = tasks.task_config(args.task, **{name: getattr(args, name, None) for name in _SETTINGS})
    except ValueError as error:
        raise CLIError(str(error), code=2) from None
    loaders = _loaders(config, args.data_dir, args.download)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{args.task}-{config['model']}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    what = "recordings" if args.task == "spoken-digits" else "scenes"
    print(
        f"training {config['model']} for {args.task} ({_count(loaders[0]):,} training {what}) "
        f"for {config['epochs']} epochs: {config['optimizer']} lr {config['lr']:g}, "
        f"batch {config['batch_size']}, seed {config['seed']}",
        flush=True,
    )
    started = time.perf_counter()
    try:
        model, history = tasks.train_task(
            config,
            loaders=loaders,
            progress=not args.no_progress,
            verbose=True,
            log=lambda line: print(line, flush=True),
            checkpoint_path=out / io.CHECKPOINT_NAME,
        )
    except training.TrainingDivergedError as error:
        raise CLIError(f"training diverged: {error}") from None
    history.save(out / "history.json")
    if history.interrupted:
        raise CLIError(f"stopped; checkpoint saved to {out / io.CHECKPOINT_NAME}", code=130)
    print(f"training time: {time.perf_counter() - started:.0f} s")
    _report(model, config, loaders[1], out)
    print(f"checkpoint: {out / io.CHECKPOINT_NAME}")
    return 0


def evaluate(args: argparse.Namespace, state: dict[str, Any]) -> int:
    config = dict(state["config"])
    config["batch_size"] = args.batch_size
    _, test_loader = _loaders(config, args.data_dir, args.download)
    _report(state["model"], config, test_loader, None)
    return 0


def predict(args: argparse.Namespace, state: dict[str, Any]) -> int:
    model, config = state["model"], state["config"]
    names = config["classes"]
    for item in args.images:
        path = Path(item)
        if not path.is_file():
            raise CLIError(f"file not found: {item}")
        try:
            if config["task"] == "spoken-digits":
                p = tasks.predict_wav(model, path, config["input_shape"][-1])
                order = np.argsort(-p)[: args.top]
                print(f"{path}  " + "  ".join(f"{names[c]} ({100 * p[c]:.1f}%)" for c in order))
            else:
                mask = tasks.predict_mask(model, path, config["input_shape"][-1])
                target = path.with_name(f"{path.stem}.mask.png")
                _write_mask(mask, target)
                found = ", ".join(names[c] for c in np.unique(mask) if c) or "nothing"
                print(f"{path}  -> {target} (found: {found})")
        except (ValueError, OSError) as error:
            raise CLIError(f"{path}: {plain(error)}") from None
    return 0


def _count(loader: Any) -> int:
    return len(loader.scenes) if hasattr(loader, "scenes") else len(loader.order(0))


def _loaders(config: dict[str, Any], data_dir: str | None, download: bool) -> tuple[Any, Any]:
    try:
        return tasks.load_task_data(config, data_dir, download)
    except (ValueError, OSError, RuntimeError) as error:
        raise CLIError(f"data set {config['dataset']!r}: {plain(error)}") from None


def _report(model: Any, config: dict[str, Any], loader: Any, out: Path | None) -> None:
    result = tasks.evaluate_task(model, config, loader)
    names = config["classes"]
    if isinstance(result, tasks.SegmentationResult):
        print(f"pixel accuracy: {100 * result.pixel_accuracy:.2f}%   mean IoU (items): {result.mean_iou:.3f}")
        print("IoU per class: " + ", ".join(f"{n}={v:.3f}" for n, v in zip(names, result.iou, strict=True)))
    else:
        print(f"test accuracy: {100 * result.accuracy:.2f}% ({result.count:,} test recordings)")
    if out is None:
        return
    try:
        viz = need_viz()
    except CLIError as error:
        print(f"(no pictures: {error})")
        return
    if isinstance(result, tasks.SegmentationResult):
        viz.segmentation_examples(model, loader.scenes, count=4, save=out / "segmentation.png")
        viz.iou_bars(result.iou, names, save=out / "iou.png")
        print(f"pictures: {out / 'segmentation.png'}, {out / 'iou.png'}")
    else:
        viz.confusion_matrix(result.confusion, names, save=out / "confusion_matrix.png")
        print(f"pictures: {out / 'confusion_matrix.png'}")


def _write_mask(mask: np.ndarray, target: Path) -> None:
    """A palette PNG: each pixel's value is its class index (0 = background), in a visible colour."""
    from PIL import Image

    picture = Image.fromarray(mask, mode="P")
    palette = [0, 0, 0]
    for c in range(1, 256):
        palette += [(97 * c) % 256, (57 * c + 80) % 256, (151 * c + 40) % 256]
    picture.putpalette(palette)
    picture.save(target)

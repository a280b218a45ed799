"""``convlens train/evaluate/predict`` for the other tasks: ``--task spoken-digits`` and ``--task segment``.

A thin layer over :mod:`convlens.tasks`: the task's config from the options given,
``fit`` with checkpoints written as for images, then the figures and pictures.
``--resume`` continues a task's run as it does an image run (:mod:`convlens.resume`):
the task comes from the run's config, so ``convlens train --resume RUN`` is enough.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import io, scenes, tasks
from .. import resume as resuming
from .. import train as training
from ._common import DATASET_CHOICES, CLIError, check_data_dir, int_between, need_viz, plain, stop_code

TASK_NAMES = ("classify", *tasks.TASKS)
# the --dataset values that only the segmentation task reads (mixed scenes)
SCENE_SOURCES = tuple(source for source in scenes.SOURCES if source not in DATASET_CHOICES)
_SETTINGS = (
    "model",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "momentum",
    "schedule",
    "seed",
    "limit",
    "train_scenes",
    "test_scenes",
)
_SCENE_OPTIONS = {"train_scenes": "--train-scenes", "test_scenes": "--test-scenes"}


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``convlens train`` that only the other tasks read."""
    for name, flag in _SCENE_OPTIONS.items():
        split = name.split("_")[0]
        parser.add_argument(
            flag,
            type=int_between(1, tasks.MAX_SCENES),
            metavar="N",
            help=f"--task segment: the number of {split} scenes (default: {tasks.TASKS['segment'][name]})",
        )


def task_of(args: argparse.Namespace, state: dict[str, Any] | None) -> str:
    """The task ``convlens train`` runs: ``--task``, or with ``--resume`` the task of the run
    resumed (``state``, read from its checkpoint); a one-line CLIError when they disagree
    or an option belongs to another task."""
    task = args.task
    if state is not None:
        run = state["config"].get("task", "classify")
        if run not in TASK_NAMES:
            raise CLIError(f"{args.resume}: the run's task {run!r} is not one of {', '.join(TASK_NAMES)}")
        if task not in ("classify", run):
            what = "classifies images" if run == "classify" else f"is a --task {run} run"
            raise CLIError(
                f"--task {task}: the run in {args.resume} {what}; resume it without --task", code=2
            )
        task = run
    if task != "segment":
        given = [flag for name, flag in _SCENE_OPTIONS.items() if getattr(args, name, None) is not None]
        given += [f"--dataset {args.dataset}"] if args.dataset in SCENE_SOURCES else []
        if given:
            raise CLIError(f"{', '.join(given)}: for --task segment only", code=2)
    return task


def train(args: argparse.Namespace, state: dict[str, Any] | None = None) -> int:
    """A new run of ``args.task``, or with ``state`` (a checkpoint read) the run continued."""
    check_data_dir(args.data_dir)
    resumed = None
    if state is None:
        config = _new_config(args)
    else:
        plan = _resume_plan(args, state)
        for note in plan.notes:
            print(note, flush=True)
        if plan.finished:
            return 0
        config, resumed = plan.config, plan.state
    loaders = _loaders(config, args.data_dir, args.download)
    out = _output_directory(args, config, resumed)
    checkpoint_path = out / io.CHECKPOINT_NAME
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    what = "recordings" if config["task"] == "spoken-digits" else "scenes"
    print(
        f"training {config['model']} for {config['task']} ({_count(loaders[0]):,} training {what}) "
        f"for {config['epochs']} epochs: {config['optimizer']} lr {config['lr']:g}, "
        f"batch {config['batch_size']}, seed {config['seed']}",
        flush=True,
    )
    if resumed is not None:
        where = f"epoch {resumed['epoch'] + 1}" + (f", step {resumed['step'] + 1}" if resumed["step"] else "")
        print(f"resuming from {args.resume} at {where}", flush=True)
    started = time.perf_counter()
    try:
        model, history = tasks.train_task(
            config,
            model=None if resumed is None else resumed["model"],
            loaders=loaders,
            progress=not args.no_progress,
            verbose=True,
            log=lambda line: print(line, flush=True),
            checkpoint_path=checkpoint_path,
            checkpoint_every=getattr(args, "checkpoint_every", None),
            resume=resumed,
        )
    except training.TrainingDivergedError as error:
        raise CLIError(f"training diverged: {error}") from None
    code = stop_code(history, out, checkpoint_path)
    if code is not None:
        return code
    print(f"training time: {time.perf_counter() - started:.0f} s")
    _report(model, config, loaders[1], out)
    print(f"checkpoint: {checkpoint_path}")
    return 0


def _new_config(args: argparse.Namespace) -> dict[str, Any]:
    settings = {name: getattr(args, name, None) for name in _SETTINGS}
    try:
        return tasks.task_config(args.task, dataset=_dataset(args), **settings)
    except ValueError as error:
        raise CLIError(str(error), code=2) from None


def _resume_plan(args: argparse.Namespace, state: dict[str, Any]) -> resuming.Resumed:
    """What the options given with ``--resume`` change (:mod:`convlens.resume`), or a one-line refusal."""
    if not state["config"].get("model") or not state["config"].get("epochs"):
        raise CLIError(f"{args.resume}: not a checkpoint written by 'convlens train'")
    requested = {name: getattr(args, name, None) for name in _SETTINGS}
    requested["dataset"] = _dataset(args)
    try:
        return resuming.plan(state, requested)
    except resuming.ResumeError as error:
        raise CLIError(str(error), code=2) from None


def _dataset(args: argparse.Namespace) -> str | None:
    """``--dataset``, or None (the task's own) when not given or "auto"."""
    return None if getattr(args, "dataset", None) in (None, "auto") else args.dataset


def _output_directory(args: argparse.Namespace, config: dict[str, Any], resumed: Any) -> Path:
    if args.out:
        out = Path(args.out)
    elif resumed is not None:
        out = Path(resumed["path"]).parent
    else:
        out = Path("runs") / f"{config['task']}-{config['model']}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    return out


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
                _write_mask(mask, target, len(names))
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


def _write_mask(mask: np.ndarray, target: Path, classes: int) -> None:
    """A palette PNG, written atomically: each pixel's value is its class index (0 = background),
    shown in the class colours of the figures (``scenes.mask_colours``)."""
    import io as bytes_io

    from PIL import Image

    picture = Image.fromarray(mask, mode="P")
    picture.putpalette(scenes.mask_colours(max(classes, 2)).reshape(-1).tolist())
    buffer = bytes_io.BytesIO()
    picture.save(buffer, format="PNG")
    io.write_atomically(target, buffer.getvalue())

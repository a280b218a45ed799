"""``convlens train``: fit a model, write its checkpoint, config, history and pictures.

The settings become one config dict (:func:`convlens.recipe.new_config`), from which
the recipe builds the loaders, optimizer and schedule; :func:`convlens.train.fit` runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import io, recipe
from .. import resume as resuming
from .. import train as training
from ..nn.init import manual_seed
from . import tasks as tasks_cli
from ._common import (
    CLIError,
    add_data_options,
    check_data_dir,
    fraction,
    int_between,
    load_splits,
    make_model,
    model_names,
    need_viz,
    positive_float,
    positive_int,
    read_checkpoint,
    stop_code,
)

TEST_BATCH = 500  # evaluation needs no gradients: large batches, fewer Python steps


def register(commands: Any) -> None:
    defaults = recipe.DEFAULTS
    p = commands.add_parser(
        "train",
        help="train a model (no arguments: LeNet-5 on the best data set found)",
        description="Train a model. With no arguments: the modern LeNet-5 on the best data set found, "
        "SGD lr 0.02 momentum 0.9 with cosine annealing, batch 64, seed 0, 10 epochs (20 on "
        "mnist-5k, with random shifts of up to 2 pixels); writes a checkpoint, config.json and "
        "history.json to --out.",
    )
    # every default is None here, filled in by the recipe: so --resume can tell what was given
    p.add_argument(
        "--task",
        choices=tasks_cli.TASK_NAMES,
        default="classify",
        help="classify images (default); spoken-digits: FSDD recordings with 1-D convolutions "
        "(--data-dir: a folder with the recordings); segment: a class per pixel of digit scenes",
    )
    p.add_argument(
        "--model",
        help=f"one of {', '.join(model_names())} ('-' or '_' alike; default: {defaults['model']})",
    )
    add_data_options(p, defaults["dataset"], task_sources=tasks_cli.SCENE_SOURCES)
    p.set_defaults(dataset=None)
    p.add_argument("--epochs", type=positive_int, help="default: 10 (20 on mnist-5k)")
    p.add_argument("--batch-size", type=int_between(1, 65536), help=f"default: {defaults['batch_size']}")
    p.add_argument("--optimizer", choices=["sgd", "adam"], help=f"default: {defaults['optimizer']}")
    p.add_argument(
        "--lr",
        type=positive_float,
        help="learning rate (default: 0.02 for sgd, 0.001 for sgd on lenet5-classic, 0.001 for adam)",
    )
    p.add_argument(
        "--momentum", type=fraction, help=f"SGD momentum, in [0, 1) (default: {defaults['momentum']})"
    )
    p.add_argument(
        "--schedule",
        choices=["cosine", "none"],
        help="learning-rate schedule over the epochs: cosine annealing to 0, or constant "
        f"(default: {defaults['schedule']})",
    )
    p.add_argument(
        "--seed",
        type=int_between(0, 2**32 - 1),
        help=f"seeds initialisation, shuffling and augmentation (default: {defaults['seed']})",
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="random shifts of up to 2 pixels of the training images (default: on for the small "
        "mnist-5k, off for the full data sets)",
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="train on the first N training images only (quick runs)",
    )
    tasks_cli.add_options(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: runs/<model>-<dataset>-<time>/)")
    p.add_argument(
        "--resume",
        metavar="CKPT",
        help="continue from a checkpoint written by convlens train (or its output directory); "
        "--epochs extends the run, --lr and --momentum may change, the other settings may not",
    )
    p.add_argument(
        "--checkpoint-every",
        type=positive_int,
        metavar="N",
        help="also save a checkpoint every N batches (default: at the end of every epoch)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-fuse",
        action="store_true",
        help="run Conv2d -> ReLU -> MaxPool2d as three ops instead of one fused op (nn.fuse; same results)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    check_data_dir(args.data_dir)
    checkpoint = read_checkpoint(args.resume) if args.resume else None
    if tasks_cli.task_of(args, checkpoint) != "classify":  # the other tasks, new or resumed
        return tasks_cli.train(args, checkpoint)
    resumed = None
    if checkpoint is not None:
        plan = _resume_plan(args, checkpoint)
        for note in plan.notes:
            print(note, flush=True)
        if plan.finished:
            return 0
        config, resumed = plan.config, plan.state
    else:
        config = _new_config(args)
    if resumed is None:
        manual_seed(config["seed"])
        model = make_model(config["model"])
        config["mean"], config["std"] = recipe.input_normalization(model, config["mean"], config["std"])
    else:
        model = resumed["model"]
    input_shape = tuple(getattr(model, "input_shape", (1, 28, 28)))
    config["input_shape"] = list(input_shape)
    config["pad"] = recipe.padding_for(input_shape)
    train_set, test_set = load_splits(config["dataset"], args.data_dir, args.download)
    config["classes"] = [str(name) for name in train_set.classes]
    train_set = recipe.subset(train_set, config.get("limit"))

    train_loader = recipe.loader(
        train_set,
        config["batch_size"],
        recipe.transform(config["mean"], config["std"], config["pad"], config["augment"]),
        shuffle=True,
        seed=config["seed"],
    )
    test_loader = recipe.loader(
        test_set, TEST_BATCH, recipe.transform(config["mean"], config["std"], config["pad"], False)
    )
    optimizer = recipe.optimizer_for(config, model.parameters())
    scheduler = recipe.scheduler_for(config, optimizer)

    out = _output_directory(args, config, resumed)
    checkpoint_path = out / io.CHECKPOINT_NAME
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(
        f"training {config['model']} on {config['dataset']} ({len(train_set):,} training, "
        f"{len(test_set):,} test images) for {_plural(config['epochs'], 'epoch')}: {config['optimizer']} "
        f"lr {config['lr']:g}, batch {config['batch_size']}, seed {config['seed']}",
        flush=True,
    )
    if resumed is not None:
        where = f"epoch {resumed['epoch'] + 1}" + (f", step {resumed['step'] + 1}" if resumed["step"] else "")
        print(f"resuming from {args.resume} at {where}", flush=True)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported once
            history = training.fit(
                model,
                train_loader,
                test_loader,
                optimizer=optimizer,
                scheduler=scheduler,
                epochs=config["epochs"],
                progress=not args.no_progress,
                verbose=True,
                log=lambda line: print(line, flush=True),
                checkpoint_path=checkpoint_path,
                checkpoint_every=args.checkpoint_every,
                resume=resumed,
                config=config,
                fuse=not args.no_fuse,
            )
    except training.TrainingDivergedError as error:
        raise CLIError(f"training diverged: {error}") from None
    code = stop_code(history, out, checkpoint_path)
    if code is not None:
        return code
    _report(model, history, test_loader, config, out, len(test_set))
    return 0


_SETTINGS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "schedule", "seed", "augment", "limit")


def _new_config(args: argparse.Namespace) -> dict[str, Any]:
    given = {name: getattr(args, name) for name in _SETTINGS if getattr(args, name) is not None}
    model = args.model or recipe.DEFAULTS["model"]
    return recipe.new_config(model, recipe.resolve_dataset(args.dataset or "auto", args.data_dir), **given)


def _resume_plan(args: argparse.Namespace, resumed: dict[str, Any]) -> resuming.Resumed:
    """What the options given with ``--resume`` change (:mod:`convlens.resume`), or a one-line refusal."""
    if not resumed["config"].get("model") or not resumed["config"].get("epochs"):
        raise CLIError(f"{args.resume}: not a checkpoint written by 'convlens train'")
    requested = {name: getattr(args, name) for name in _SETTINGS}
    requested["model"] = args.model
    if args.dataset is not None:
        requested["dataset"] = recipe.resolve_dataset(args.dataset, args.data_dir)
    try:
        return resuming.plan(resumed, requested)
    except resuming.ResumeError as error:
        raise CLIError(str(error), code=2) from None


def _output_directory(args: argparse.Namespace, config: dict[str, Any], resumed: Any) -> Path:
    if args.out:
        out = Path(args.out)
    elif resumed is not None:
        out = Path(resumed["path"]).parent
    else:
        out = Path("runs") / f"{config['model']}-{config['dataset']}-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _report(model: Any, history: Any, loader: Any, config: dict[str, Any], out: Path, count: int) -> None:
    if history.epochs and history.epochs[-1].val_acc is not None:
        accuracy = history.epochs[-1].val_acc  # the test set was the validation set
    else:
        accuracy = training.evaluate(model, loader).accuracy
    print(f"test accuracy: {100 * accuracy:.2f}% ({count:,} test images of {config['dataset']})")
    print(f"checkpoint: {out / io.CHECKPOINT_NAME}")
    print(f"history: {out / 'history.json'}")
    _training_pictures(model, history, loader, config["classes"], out)


def _training_pictures(model: Any, history: Any, loader: Any, classes: list[str], out: Path) -> None:
    """training_curves.png and confusion_matrix.png in ``out``, when matplotlib is installed."""
    if not history.epochs:
        return
    try:
        viz = need_viz()
    except CLIError as error:
        print(f"(no pictures: {error})")
        return
    viz.training_curves(history, save=out / "training_curves.png")
    confusion = training.evaluate(model, loader).confusion
    viz.confusion_matrix(confusion, classes, save=out / "confusion_matrix.png")
    print(f"pictures: {out / 'training_curves.png'}, {out / 'confusion_matrix.png'}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"

"""``convlens train``: fit a model, write its checkpoint, config, history and pictures.

The settings become one config dict (:func:`convlens.recipe.new_config`), from which
the recipe builds the loaders, optimizer and schedule; :func:`convlens.train.fit` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import io, recipe
from .. import train as training
from ..nn.init import manual_seed
from ._common import (
    PROG,
    CLIError,
    add_data_options,
    load_splits,
    make_model,
    model_names,
    need_viz,
    positive_float,
    positive_int,
    read_checkpoint,
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
    p.add_argument(
        "--model",
        default=defaults["model"],
        help=f"one of {', '.join(model_names())} ('-' or '_' alike; default: %(default)s)",
    )
    add_data_options(p, defaults["dataset"])
    p.add_argument("--epochs", type=positive_int, help="default: 10 (20 on mnist-5k)")
    p.add_argument(
        "--batch-size", type=positive_int, default=defaults["batch_size"], help="default: %(default)s"
    )
    p.add_argument(
        "--optimizer", choices=["sgd", "adam"], default=defaults["optimizer"], help="default: %(default)s"
    )
    p.add_argument(
        "--lr",
        type=positive_float,
        help="learning rate (default: 0.02 for sgd, 0.001 for sgd on lenet5-classic, 0.001 for adam)",
    )
    p.add_argument(
        "--momentum", type=float, default=defaults["momentum"], help="SGD momentum (default: %(default)s)"
    )
    p.add_argument(
        "--schedule",
        choices=["cosine", "none"],
        default=defaults["schedule"],
        help="learning-rate schedule over the epochs: cosine annealing to 0, or constant "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=defaults["seed"],
        help="seeds initialisation, shuffling and augmentation (default: %(default)s)",
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
    p.add_argument("--out", metavar="DIR", help="output directory (default: runs/<model>-<dataset>-<time>/)")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint written by convlens train")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    resumed = read_checkpoint(args.resume) if args.resume else None
    config = _resumed_config(args, resumed) if resumed else _new_config(args)
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
                resume=resumed,
                config=config,
            )
    except training.TrainingDivergedError as error:
        raise CLIError(f"training diverged: {error}") from None
    history.save(out / "history.json")
    if history.interrupted:
        print(
            f"{PROG}: interrupted; checkpoint saved to {checkpoint_path} "
            f"(continue with: convlens train --resume {checkpoint_path})",
            file=sys.stderr,
        )
        return 130
    _report(model, history, test_loader, config, out, len(test_set))
    return 0


def _new_config(args: argparse.Namespace) -> dict[str, Any]:
    return recipe.new_config(
        args.model,
        recipe.resolve_dataset(args.dataset, args.data_dir),
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        schedule=args.schedule,
        seed=args.seed,
        augment=args.augment,
        limit=args.limit,
    )


def _resumed_config(args: argparse.Namespace, resumed: dict[str, Any]) -> dict[str, Any]:
    config = dict(resumed["config"])
    if not config.get("model"):
        raise CLIError(f"{args.resume}: not a checkpoint written by 'convlens train'")
    if args.epochs:
        config["epochs"] = args.epochs
    return config


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

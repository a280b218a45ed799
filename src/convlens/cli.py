"""The ``convlens`` command: train, evaluate, predict, summary, filter.

``convlens train`` with no arguments is the main job: the modern LeNet-5 on the
best data set found (full MNIST or Fashion-MNIST where present, otherwise the
5,000 MNIST digits shipped inside the package).

Every user error prints one line ``convlens: error: ...`` on stderr and exits
with 2 (bad usage) or 1 (runtime: missing file, corrupt checkpoint, ...);
Ctrl-C during training saves a checkpoint and exits with 130.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

PROG = "convlens"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
CHECKPOINT_NAME = "checkpoint.safetensors"
DATASET_CHOICES = ["auto", "mnist", "fashion-mnist", "mnist-5k"]
# Written as |response| scaled to 0..255; every other kernel is clipped to 0..255.
EDGE_KERNELS = ("laplacian", "log7", "log9", "sobel_x", "sobel_y")
# Per-pixel statistics of the training images (pixels scaled to [0, 1]).
NORMALIZATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530), "mnist-5k": (0.1307, 0.3081)}

# Defaults of `convlens train`, measured (seed 0): mnist-5k 98.4% on its 1,000 held-out
# digits after 20 epochs; Fashion-MNIST 91.0% on its test set after 10 epochs (lr 0.05
# gave 98.5% and 90.1%, Adam 1e-3 gave 90.6% on Fashion-MNIST).
DEFAULTS = {
    "model": "lenet5",
    "dataset": "auto",
    "optimizer": "sgd",
    "lr": 0.02,
    "adam_lr": 1e-3,
    "momentum": 0.9,
    "batch_size": 64,
    "schedule": "cosine",
    "seed": 0,
}
DEFAULT_EPOCHS = {"mnist-5k": 20}  # a small set: epochs are cheap, more of them help
DEFAULT_EPOCHS_OTHER = 10
# The 1998 LeNet-5 needs smaller steps: its RBF penalties sum over 84 units, so its
# gradients are ~10x larger (measured on mnist-5k: lr 0.01 stays at chance, 0.001 learns).
MODEL_LR = {"lenet5-classic": 0.001}
AUGMENTED = {"mnist-5k"}  # 4,000 training images: shifted copies help; 60,000 need no help in 10 epochs


class CLIError(Exception):
    """A user error: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line ``convlens: error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{self.prog} --help')", code=2)


# ------------------------------------------------------------------------------ parser
def _input_shape(text: str) -> tuple[int, ...]:
    parts = text.lower().replace("×", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or len(shape) > 4 or any(n <= 0 for n in shape):
        raise argparse.ArgumentTypeError(
            f"invalid --input {text!r}: expected positive sizes like 1x28x28 (CxHxW)"
        )
    return shape


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="convlens: a convolutional neural network framework you can see through.",
        epilog="Run 'convlens COMMAND --help' for the options of a command.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_summary(commands)
    _add_filter(commands)
    _add_visualize(commands)
    return parser


def _add_data_options(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument(
        "--dataset",
        default=default,
        metavar="NAME",
        type=str.lower,
        choices=DATASET_CHOICES,
        help="auto | mnist | fashion-mnist | mnist-5k (auto: the full MNIST or Fashion-MNIST "
        "where found, else the embedded mnist-5k)"
        + ("" if default else "; default: the checkpoint's data set"),
    )
    p.add_argument("--data-dir", metavar="DIR", help="look for the data set here first")
    p.add_argument("--download", action="store_true", help="download the data set if not found")


def _add_train(commands: Any) -> None:
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
        default=DEFAULTS["model"],
        help=f"one of {', '.join(_model_names())} ('-' or '_' alike; default: %(default)s)",
    )
    _add_data_options(p, DEFAULTS["dataset"])
    p.add_argument("--epochs", type=_positive_int, help="default: 10 (20 on mnist-5k)")
    p.add_argument(
        "--batch-size", type=_positive_int, default=DEFAULTS["batch_size"], help="default: %(default)s"
    )
    p.add_argument(
        "--optimizer", choices=["sgd", "adam"], default=DEFAULTS["optimizer"], help="default: %(default)s"
    )
    p.add_argument(
        "--lr",
        type=_positive_float,
        help="learning rate (default: 0.02 for sgd, 0.001 for sgd on lenet5-classic, 0.001 for adam)",
    )
    p.add_argument(
        "--momentum", type=float, default=DEFAULTS["momentum"], help="SGD momentum (default: %(default)s)"
    )
    p.add_argument(
        "--schedule",
        choices=["cosine", "none"],
        default=DEFAULTS["schedule"],
        help="learning-rate schedule over the epochs: cosine annealing to 0, or constant "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS["seed"],
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
        type=_positive_int,
        metavar="N",
        help="train on the first N training images only (quick runs)",
    )
    p.add_argument("--out", metavar="DIR", help="output directory (default: runs/<model>-<dataset>-<time>/)")
    p.add_argument("--resume", metavar="CKPT", help="continue from a checkpoint written by convlens train")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_train)


def _add_evaluate(commands: Any) -> None:
    p = commands.add_parser(
        "evaluate",
        help="accuracy, per-class accuracy and confusion matrix",
        description="Evaluate a checkpoint on the test split of a data set.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    _add_data_options(p, None)
    p.add_argument("--batch-size", type=_positive_int, default=500, help="default: %(default)s")
    p.set_defaults(handler=cmd_evaluate)


def _add_predict(commands: Any) -> None:
    p = commands.add_parser(
        "predict",
        help="classify images (PNG/JPEG files or folders)",
        description="Classify images. Each is converted as MNIST was made: grayscale, inverted if the "
        "background is light, cropped to the ink, longer side scaled to 20 px, centred by "
        "centre of mass in 28x28, then normalised as in training.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files or folders of images")
    p.add_argument("--top", type=_positive_int, default=1, help="show the K most likely classes")
    p.set_defaults(handler=cmd_predict)


def _add_summary(commands: Any) -> None:
    p = commands.add_parser(
        "summary",
        help="layer-by-layer table of a model",
        description="Print the layers, output shapes and parameter counts of a model.",
    )
    p.add_argument("model", metavar="MODEL", help="a model name (see 'convlens summary --list')", nargs="?")
    p.add_argument(
        "--input",
        type=_input_shape,
        metavar="CxHxW",
        help="input shape without the batch, e.g. 1x28x28 (default: the model's)",
    )
    p.add_argument("--list", action="store_true", help="list the known model names")
    p.set_defaults(handler=cmd_summary)


def _add_filter(commands: Any) -> None:
    names = _kernel_names()
    p = commands.add_parser(
        "filter",
        help="apply a classic image kernel (blur, sharpen, edges, ...)",
        description="Apply a kernel of cl.filters to an image and write the result. Output rule: the edge "
        "detectors (laplacian, log7, log9, sobel_x, sobel_y) are written as the absolute response "
        "scaled so its maximum is 255; the others (identity, blurs, sharpen, emboss) are rounded and "
        "clipped to 0..255.",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument(
        "--kernel",
        metavar="NAME|FILE",
        help="one of: " + ", ".join(names) + "; or a kernel file: a .npy array or a text file of "
        "rows of numbers (any 2-D shape no larger than the image)",
    )
    p.add_argument(
        "--grid",
        action="store_true",
        help="write one picture of the input beside every kernel's result, each labelled "
        "(default OUT: IMAGE-stem_filters.png; needs matplotlib)",
    )
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: IMAGE-stem_KERNEL.png)")
    p.add_argument(
        "--padding-mode",
        default="reflect",
        choices=["zeros", "reflect", "replicate", "circular"],
        help="how the border is extended (default: %(default)s)",
    )
    p.set_defaults(handler=cmd_filter)


def _add_visualize(commands: Any) -> None:
    p = commands.add_parser(
        "visualize",
        help="pictures of what a trained network sees: its kernels and feature maps",
        description="Write kernels.png (the first convolution's kernels) and feature_maps.png (every "
        "layer's output for IMAGE, prepared as 'convlens predict' does) into OUT_DIR. Needs matplotlib.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by 'convlens train'")
    p.add_argument("image", metavar="IMAGE", help="a PNG/JPEG digit (any size, colour or not)")
    p.add_argument("-o", "--out", metavar="OUT_DIR", help="where to write (default: beside CHECKPOINT)")
    p.set_defaults(handler=cmd_visualize)


def cmd_visualize(args: argparse.Namespace) -> int:
    viz = _viz()
    checkpoint = Path(args.checkpoint)
    if not checkpoint.exists():
        raise CLIError(f"checkpoint not found: {args.checkpoint}")
    image = Path(args.image)
    if not image.exists():
        raise CLIError(f"image not found: {args.image}")
    out_dir = Path(args.out) if args.out else (checkpoint if checkpoint.is_dir() else checkpoint.parent)
    try:
        written = viz.visualize_checkpoint(checkpoint, image, out_dir)
    except (ValueError, TypeError, KeyError) as error:
        raise CLIError(f"cannot visualize {checkpoint} on {image}: {_plain(error)}") from None
    for name, where in written.items():
        print(f"{name}: {where}")
    return 0


def _kernel_names() -> list[str]:
    try:
        from .filters import KERNELS
    except ImportError:  # keeps the other commands usable while filters is broken
        return []
    return sorted(KERNELS)


# -------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convlens`` command; returns the exit status."""
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help, --version
            return int(done.code or 0)
        if getattr(args, "handler", None) is None:
            parser.print_help()
            return 2
        return int(args.handler(args) or 0)
    except CLIError as error:
        return _fail(str(error), error.code)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        return _fail("out of memory; try a smaller --batch-size", 1)
    except OSError as error:
        return _fail(_os_message(error), 1)


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _os_message(error: OSError) -> str:
    if error.filename:
        return f"{error.strerror or error}: {error.filename}"
    return str(error)


# ------------------------------------------------------------------------- data & models
def _make_model(name: str, **kwargs: Any) -> Any:
    from . import models

    known = _model_names()
    if name.lower().replace("-", "_") not in {k.replace("-", "_") for k in known}:
        raise CLIError(f"unknown model {name!r}; known models: {', '.join(known)}", code=2)
    try:
        return models.get(name, **kwargs)
    except (KeyError, ValueError) as error:
        raise CLIError(f"cannot build model {name!r}: {_plain(error)}") from None


def _model_names() -> list[str]:
    from . import models

    return sorted(models.available())


def _plain(error: BaseException) -> str:
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def _resolve_dataset(name: str, data_dir: str | None) -> str:
    from . import data

    return data.best_available(root=data_dir) if name == "auto" else name


def _load_splits(name: str, data_dir: str | None, download: bool) -> tuple[Any, Any]:
    """(train, test) of data set ``name``; any failure to find it is a CLIError."""
    from . import data

    try:
        loaded = data.load_dataset(name, root=data_dir, download=download)
    except (ValueError, KeyError, OSError, data.DownloadError) as error:
        raise CLIError(f"data set {name!r}: {_plain(error)}") from None
    return loaded.train, loaded.test


def _class_names(split: Any) -> list[str]:
    return [str(name) for name in split.classes]


def _pad_for(input_shape: Sequence[int]) -> int:
    """Padding that brings 28x28 images to the model's input size (32x32 for classic LeNet-5)."""
    size = int(input_shape[-1])
    return max(0, (size - 28) // 2)


def _transform(mean: float, std: float, pad: int, augment: bool) -> Any:
    """Pad and shift in [0, 1] pixel space (so the fill is the background, 0), then normalise."""
    from . import data

    steps: list[Any] = [data.Pad(pad)] if pad else []
    if augment:
        steps.append(data.RandomShift(2))  # fit reseeds it from the loader's seed every epoch
    steps.append(data.Normalize(mean, std))
    return data.Compose(steps)


def _loader(
    dataset: Any, batch_size: int, transform: Any, shuffle: bool = False, seed: int | None = None
) -> Any:
    from . import data

    return data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, seed=seed, transform=transform)


def _subset(dataset: Any, limit: int | None) -> Any:
    if limit is None or limit >= len(dataset):
        return dataset
    return dataclasses.replace(dataset, images=dataset.images[:limit], labels=dataset.labels[:limit])


# ---------------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    import convlens as cl

    from . import optim
    from .train import TrainingDivergedError, evaluate, fit

    resumed = None
    config: dict[str, Any]
    if args.resume:
        resumed = _read_checkpoint(args.resume)
        config = dict(resumed["config"])
        if not config.get("model"):
            raise CLIError(f"{args.resume}: not a checkpoint written by 'convlens train'")
        if args.epochs:
            config["epochs"] = args.epochs
    else:
        dataset_name = _resolve_dataset(args.dataset, args.data_dir)
        mean, std = NORMALIZATION.get(dataset_name, (0.5, 0.5))
        optimizer_name = args.optimizer
        config = {
            "model": args.model,
            "dataset": dataset_name,
            "epochs": args.epochs or DEFAULT_EPOCHS.get(dataset_name, DEFAULT_EPOCHS_OTHER),
            "batch_size": args.batch_size,
            "optimizer": optimizer_name,
            "lr": args.lr or _default_lr(args.model, optimizer_name),
            "momentum": args.momentum,
            "schedule": args.schedule,
            "seed": args.seed,
            "augment": args.augment if args.augment is not None else dataset_name in AUGMENTED,
            "limit": args.limit,
            "mean": mean,
            "std": std,
        }
    if resumed is None:
        cl.nn.init.manual_seed(config["seed"])
        model = _make_model(config["model"])
        config["mean"], config["std"] = _normalization(model, config["mean"], config["std"])
    else:
        model = resumed["model"]
    input_shape = tuple(getattr(model, "input_shape", (1, 28, 28)))
    config["input_shape"] = list(input_shape)
    config["pad"] = _pad_for(input_shape)
    train_set, test_set = _load_splits(config["dataset"], args.data_dir, args.download)
    config["classes"] = _class_names(train_set)
    train_set = _subset(train_set, config.get("limit"))

    seed = config["seed"]
    train_tf = _transform(config["mean"], config["std"], config["pad"], config["augment"])
    test_tf = _transform(config["mean"], config["std"], config["pad"], False)
    train_loader = _loader(train_set, config["batch_size"], train_tf, shuffle=True, seed=seed)
    test_loader = _loader(test_set, 500, test_tf)

    if config["optimizer"] == "sgd":
        optimizer = optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    else:
        optimizer = optim.Adam(model.parameters(), lr=config["lr"])

    scheduler = None
    if config.get("schedule", "none") == "cosine":
        scheduler = optim.CosineAnnealingLR(optimizer, T_max=config["epochs"])

    if args.out:
        out = Path(args.out)
    else:
        out = _default_out(config) if resumed is None else Path(resumed["path"]).parent
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / CHECKPOINT_NAME
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    print(
        f"training {config['model']} on {config['dataset']} ({len(train_set):,} training, "
        f"{len(test_set):,} test images) for {_plural(config['epochs'], 'epoch')}: {config['optimizer']} "
        f"lr {config['lr']:g}, batch {config['batch_size']}, seed {seed}",
        flush=True,
    )
    state = None
    if resumed is not None:
        state = resumed
        where = f"epoch {state['epoch'] + 1}" + (f", step {state['step'] + 1}" if state["step"] else "")
        print(f"resuming from {args.resume} at {where}", flush=True)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported once
            history = fit(
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
                resume=state,
                config=config,
            )
    except TrainingDivergedError as error:
        raise CLIError(f"training diverged: {error}") from None
    history.save(out / "history.json")
    if history.interrupted:
        print(
            f"{PROG}: interrupted; checkpoint saved to {checkpoint_path} "
            f"(continue with: convlens train --resume {checkpoint_path})",
            file=sys.stderr,
        )
        return 130
    if history.epochs and history.epochs[-1].val_acc is not None:
        accuracy = history.epochs[-1].val_acc  # the test set was the validation set
    else:
        accuracy = evaluate(model, test_loader).accuracy
    print(f"test accuracy: {100 * accuracy:.2f}% ({len(test_set):,} test images of {config['dataset']})")
    print(f"checkpoint: {checkpoint_path}")
    print(f"history: {out / 'history.json'}")
    _training_pictures(model, history, test_loader, config["classes"], out)
    return 0


def _training_pictures(model: Any, history: Any, loader: Any, classes: list[str], out: Path) -> None:
    """training_curves.png and confusion_matrix.png in ``out``, when matplotlib is installed."""
    if not history.epochs:
        return
    try:
        viz = _viz()
    except CLIError as error:
        print(f"(no pictures: {error})")
        return
    from .train import evaluate

    viz.training_curves(history, save=out / "training_curves.png")
    viz.confusion_matrix(evaluate(model, loader).confusion, classes, save=out / "confusion_matrix.png")
    print(f"pictures: {out / 'training_curves.png'}, {out / 'confusion_matrix.png'}")


def _default_lr(model: str, optimizer: str) -> float:
    if optimizer != "sgd":
        return DEFAULTS["adam_lr"]
    return MODEL_LR.get(model.replace("_", "-"), DEFAULTS["lr"])


def _normalization(model: Any, mean: float, std: float) -> tuple[float, float]:
    """(mean, std) for Normalize: the data set's statistics, unless the model prescribes
    its input levels (classic LeNet-5: background -0.1, foreground 1.175, as in the paper)."""
    levels = getattr(model, "input_levels", None)
    if levels is None:
        return mean, std
    background, foreground = levels
    span = foreground - background
    return -background / span, 1.0 / span


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _default_out(config: dict[str, Any]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config['model']}-{config['dataset']}-{stamp}"


def _read_checkpoint(path: str) -> dict[str, Any]:
    from .io import checkpoint_files
    from .train import load_checkpoint

    if Path(path).is_dir():
        candidate = Path(path) / CHECKPOINT_NAME
        if not candidate.exists():
            raise CLIError(f"no {CHECKPOINT_NAME} in directory {path}")
        path = str(candidate)
    files = checkpoint_files(path)
    if not files.meta.exists() and not files.weights.exists():
        raise CLIError(f"checkpoint not found: {path}")
    try:
        return {**load_checkpoint(path), "path": path}
    except (OSError, ValueError, KeyError, TypeError, EOFError) as error:
        raise CLIError(f"cannot read checkpoint {path}: {_plain(error)}") from None
    except Exception as error:  # a corrupt file can fail deep inside a decoder
        raise CLIError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}") from None


# ------------------------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from .train import evaluate

    state = _read_checkpoint(args.checkpoint)
    model, config = state["model"], dict(state["config"])
    dataset_name = args.dataset or config.get("dataset") or "auto"
    dataset_name = _resolve_dataset(dataset_name, args.data_dir)
    mean, std = config.get("mean"), config.get("std")
    if mean is None:
        mean, std = NORMALIZATION.get(dataset_name, (0.5, 0.5))
    pad = config.get("pad", _pad_for(getattr(model, "input_shape", (1, 28, 28))))
    _, test_set = _load_splits(dataset_name, args.data_dir, args.download)
    names = config.get("classes") or _class_names(test_set)
    loader = _loader(test_set, args.batch_size, _transform(mean, std, pad, False))
    result = evaluate(model, loader, num_classes=len(names))
    print(f"{args.checkpoint} on {dataset_name} (test, {result.count:,} images)")
    print(f"accuracy: {100 * result.accuracy:.2f}%   loss: {result.loss:.4f}")
    print()
    print(format_per_class(names, result.per_class_accuracy, result.confusion.sum(axis=1)))
    print()
    print(format_confusion(names, result.confusion))
    return 0


def format_per_class(names: Sequence[str], accuracy: np.ndarray, support: np.ndarray) -> str:
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


# -------------------------------------------------------------------------------- predict
def cmd_predict(args: argparse.Namespace) -> int:
    import convlens as cl

    from .functional import softmax

    state = _read_checkpoint(args.checkpoint)
    model, config = state["model"], dict(state["config"])
    mean, std = config.get("mean", 0.1307), config.get("std", 0.3081)
    pad = config.get("pad", _pad_for(getattr(model, "input_shape", (1, 28, 28))))
    names = config.get("classes") or [str(i) for i in range(10)]
    files = _image_files(args.images)
    batch = np.stack([mnist_like(_open_image(f)) for f in files])[:, None]
    batch = (batch - np.float32(mean)) / np.float32(std)
    if pad:
        batch = np.pad(batch, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=(0 - mean) / std)
    model.eval()
    with cl.no_grad():
        probabilities = softmax(model(cl.tensor(batch.astype(np.float32))), dim=1).data
    width = max(len(str(f)) for f in files)
    for path, p in zip(files, probabilities, strict=True):
        order = np.argsort(-p)[: args.top]
        guesses = "  ".join(f"{names[c]} ({100 * p[c]:.1f}%)" for c in order)
        print(f"{str(path):<{width}}  {guesses}")
    return 0


def _image_files(items: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise CLIError(f"no images (PNG, JPEG, ...) in folder {item}")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise CLIError(f"image not found: {item}")
    return files


def _open_image(path: Path) -> np.ndarray:
    """Grayscale float image in [0, 255]; transparency is composited onto white."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - pillow is an extra
        raise CLIError("reading images needs Pillow: pip install 'convlens[image]'") from None
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            return np.asarray(image.convert("L"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise CLIError(f"cannot read image {path}: {_plain(error) or type(error).__name__}") from None


def mnist_like(gray: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """Turn a grayscale image (any size, 0..255) into a 28x28 MNIST-style digit in [0, 1].

    As MNIST was made: white ink on black (inverted when the background is light),
    cropped to the ink, the longer side scaled to ``box`` pixels keeping the aspect
    ratio, and placed in a ``size`` x ``size`` frame with its centre of mass at pixel
    (14, 14) (row, column indices), within half a pixel, as in MNIST.
    """
    from PIL import Image

    image = np.asarray(gray, dtype=np.float32)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if np.median(border) > 127:  # dark ink on a light background: MNIST is white on black
        image, border = 255.0 - image, 255.0 - border
    image = np.clip(image - float(np.median(border)), 0, None)  # background to 0
    peak = float(image.max())
    if peak <= 0:
        raise CLIError("image is blank (no ink found)")
    image = image * (255.0 / peak)
    rows, cols = np.nonzero(image > 0.1 * 255)
    image = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    h, w = image.shape
    scale = box / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(image.astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    digit = np.clip(np.asarray(resized, dtype=np.float32), 0, 255)
    total = digit.sum()
    ys, xs = np.indices(digit.shape)
    cy, cx = (ys * digit).sum() / total, (xs * digit).sum() / total
    top = int(np.clip(round(size / 2 - cy), 0, size - new_h))
    left = int(np.clip(round(size / 2 - cx), 0, size - new_w))
    frame = np.zeros((size, size), np.float32)
    frame[top : top + new_h, left : left + new_w] = digit
    return frame / 255.0


# -------------------------------------------------------------------------------- summary
def cmd_summary(args: argparse.Namespace) -> int:
    import convlens as cl

    if args.list or not args.model:
        print("\n".join(_model_names()))
        return 0
    model = _make_model(args.model)
    shape = args.input or tuple(getattr(model, "input_shape", (1, 28, 28)))
    try:
        table = cl.summary(model, shape)
    except (ValueError, TypeError) as error:
        raise CLIError(f"{args.model} cannot take input {'x'.join(map(str, shape))}: {error}") from None
    print(table)
    return 0


# --------------------------------------------------------------------------------- filter
def cmd_filter(args: argparse.Namespace) -> int:
    from . import filters

    if not args.grid and not args.kernel:
        raise CLIError("filter: give --kernel NAME|FILE, or --grid for every kernel", code=2)
    kernel, label = _read_kernel(args.kernel) if not args.grid else (None, "")
    path = Path(args.image)
    pixels = _read_picture(path)
    if kernel is None:
        return _filter_grid(args, path, pixels)
    if kernel.shape[0] > pixels.shape[0] or kernel.shape[1] > pixels.shape[1]:
        raise CLIError(
            f"kernel {label} of shape {kernel.shape[0]}x{kernel.shape[1]} is larger than the image "
            f"({pixels.shape[0]}x{pixels.shape[1]})"
        )
    response = np.asarray(filters.apply(pixels, kernel, padding_mode=args.padding_mode), dtype=np.float32)
    # a kernel summing to 0 responds to change only: show its magnitude, like the edge kernels
    edge = label in EDGE_KERNELS or (label not in filters.KERNELS and abs(kernel.sum()) < 1e-12)
    target = Path(args.output) if args.output else path.with_name(f"{path.stem}_{Path(label).stem}.png")
    _save_image(to_uint8(response, edge=edge), target)
    print(f"{label}: {path} -> {target}")
    return 0


def _read_picture(path: Path) -> np.ndarray:
    """Pixels of a grey (H, W) or colour (H, W, 3) image file, float32 0..255."""
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise CLIError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            mode = "L" if image.mode in ("1", "L", "I", "I;16", "F") else "RGB"
            return np.asarray(image.convert(mode), dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise CLIError(f"cannot read image {path}: {_plain(error) or type(error).__name__}") from None


def _read_kernel(spec: str) -> tuple[np.ndarray, str]:
    """(kernel, label) for ``--kernel``: a name of cl.filters.KERNELS, or a .npy / text file."""
    from . import filters

    if spec in filters.KERNELS:
        return np.asarray(filters.KERNELS[spec], dtype=np.float64), spec
    path = Path(spec)
    if not path.exists():
        raise CLIError(
            f"unknown kernel {spec!r}: not a file, and not one of {', '.join(sorted(filters.KERNELS))}",
            code=2,
        )
    try:
        kernel = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as error:
        raise CLIError(f"cannot read kernel file {path}: {_plain(error)}") from None
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.size == 0 or kernel.dtype.kind not in "biuf":
        raise CLIError(f"kernel file {path} must hold a 2-D array of numbers, got shape {kernel.shape}")
    return kernel.astype(np.float64), str(path)


def _save_image(pixels: np.ndarray, target: Path) -> None:
    """Write ``pixels`` with Pillow, atomically (temp file + rename), in the format of the suffix."""
    import os
    import tempfile

    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
    os.close(handle)
    try:
        Image.fromarray(pixels).save(temp)
        os.replace(temp, target)
    except (OSError, ValueError, KeyError) as error:
        Path(temp).unlink(missing_ok=True)
        raise CLIError(f"cannot write {target}: {_plain(error)}") from None


def _filter_grid(args: argparse.Namespace, path: Path, pixels: np.ndarray) -> int:
    viz = _viz()
    target = Path(args.output) if args.output else path.with_name(f"{path.stem}_filters.png")
    image = np.clip(pixels, 0, 255).astype(np.uint8)
    viz.filters_grid(image, padding_mode=args.padding_mode, save=target)
    print(f"every kernel: {path} -> {target}")
    return 0


def _viz() -> Any:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError("pictures need matplotlib: pip install 'convlens[viz]'") from None
    from . import viz

    return viz


def to_uint8(response: np.ndarray, edge: bool) -> np.ndarray:
    """Edge kernels: |response| scaled so its maximum is 255; others: rounded and clipped to 0..255."""
    if edge:
        magnitude = np.abs(response)
        peak = float(magnitude.max())
        response = magnitude * (255.0 / peak) if peak > 0 else magnitude
    return np.clip(np.rint(response), 0, 255).astype(np.uint8)

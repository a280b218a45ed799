"""What every command shares: the one-line error, argument types, checkpoints, models, data."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

PROG = "convlens"


class CLIError(Exception):
    """A user error: printed as one line ``convlens: error: ...``, exit status ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line ``convlens: error: ...`` and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise CLIError(f"{message} (see '{self.prog} --help')", code=2)


def warn(message: str) -> None:
    """One line ``convlens: warning: ...`` on stderr: something the user should know, not an error."""
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def plain(error: BaseException) -> str:
    """The message of ``error`` (a KeyError's without the quotes str() adds)."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


# ------------------------------------------------------------------------ argument types
def input_shape(text: str) -> tuple[int, ...]:
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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def int_between(low: int, high: int) -> Any:
    """An argparse type: an integer in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}], got {text!r}")
        return value

    return parse


def fraction(text: str) -> float:
    """An argparse type: a number in [0, 1) (SGD's momentum)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# -------------------------------------------------------------------- data, models, files
DATASET_CHOICES = ["auto", "mnist", "fashion-mnist", "mnist-5k"]


def add_data_options(
    parser: argparse.ArgumentParser, default: str | None, task_sources: tuple[str, ...] = ()
) -> None:
    """--dataset (``task_sources``: more choices, for --task segment), --data-dir, --download."""
    parser.add_argument(
        "--dataset",
        default=default,
        metavar="NAME",
        type=str.lower,
        choices=[*DATASET_CHOICES, *task_sources],
        help="auto | mnist | fashion-mnist | mnist-5k (auto: the full MNIST or Fashion-MNIST "
        "where found, else the embedded mnist-5k)"
        + ("" if default else "; default: the checkpoint's data set")
        + (f"; --task segment also takes {' | '.join(task_sources)}" if task_sources else ""),
    )
    parser.add_argument("--data-dir", metavar="DIR", help="look for the data set here first")
    parser.add_argument("--download", action="store_true", help="download the data set if not found")


def load_splits(name: str, data_dir: str | None, download: bool) -> tuple[Any, Any]:
    """(train, test) of data set ``name``; any failure to find it is a CLIError."""
    from .. import data

    check_data_dir(data_dir)
    try:
        loaded = data.load_dataset(name, root=data_dir, download=download)
    except (ValueError, KeyError, OSError, data.DownloadError) as error:
        raise CLIError(f"data set {name!r}: {plain(error)}") from None
    return loaded.train, loaded.test


def check_data_dir(data_dir: str | None) -> None:
    """A ``--data-dir`` that does not exist is a mistake, not a reason to look elsewhere."""
    if data_dir is not None and not Path(data_dir).is_dir():
        raise CLIError(f"--data-dir {data_dir} is not a directory")


def model_names() -> list[str]:
    from .. import models

    return models.available()


def make_model(name: str, **kwargs: Any) -> Any:
    from .. import models

    known = model_names()
    if name.lower().replace("-", "_") not in known:
        raise CLIError(f"unknown model {name!r}; known models: {', '.join(known)}", code=2)
    try:
        return models.get(name, **kwargs)
    except (KeyError, ValueError) as error:
        raise CLIError(f"cannot build model {name!r}: {plain(error)}") from None


def read_checkpoint(path: str) -> dict[str, Any]:
    """:func:`convlens.io.load_checkpoint` of ``path`` (a file or a training output directory),
    plus ``"path"``: the file read. Every failure is a one-line CLIError."""
    from .. import generations, io

    def found(files: io.CheckpointFiles) -> bool:
        store = generations.store_for(files.meta.with_name(files.meta.name[: -len(".json")]))
        return files.meta.exists() or files.weights.exists() or store.exists()

    if Path(path).is_dir() and not found(io.checkpoint_files(Path(path) / io.CHECKPOINT_NAME)):
        raise CLIError(f"no {io.CHECKPOINT_NAME} in directory {path}")
    path = str(io.training_checkpoint(path))
    if not found(io.checkpoint_files(path)):
        raise CLIError(f"checkpoint not found: {path}")
    try:
        return {**io.load_checkpoint(path), "path": path}
    except (OSError, ValueError, KeyError, TypeError, EOFError) as error:
        raise CLIError(f"cannot read checkpoint {path}: {plain(error)}") from None
    except Exception as error:  # a corrupt file can fail deep inside a decoder
        raise CLIError(f"cannot read checkpoint {path}: {type(error).__name__}: {error}") from None


def stop_code(history: Any, out: Path, checkpoint_path: Path) -> int | None:
    """Save ``history.json``; for a stopped run, say how to continue and return its exit code
    (130 for Ctrl-C, 143 for SIGTERM); None for a run that ran to its end."""
    history.save(out / "history.json")
    if not history.interrupted:
        return None
    print(
        f"{PROG}: stopped by {history.stopped_by or 'Ctrl-C'}; checkpoint saved to {checkpoint_path} "
        f"(continue with: convlens train --resume {out})",
        file=sys.stderr,
    )
    return 143 if history.stopped_by == "SIGTERM" else 130


def need_viz() -> Any:
    """``convlens.viz``, or a CLIError saying how to install matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError("pictures need matplotlib: pip install 'convlens[viz]'") from None
    from .. import viz

    return viz


def existing(path: str, what: str) -> Path:
    """``Path(path)``, or a CLIError ``{what} not found: {path}``."""
    if not Path(path).exists():
        raise CLIError(f"{what} not found: {path}")
    return Path(path)

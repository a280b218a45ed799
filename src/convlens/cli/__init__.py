"""The ``convlens`` command: train, evaluate, predict, summary, filter, visualize, serve, export.

``convlens train`` with no arguments is the main job: the modern LeNet-5 on the
best data set found (full MNIST or Fashion-MNIST where present, otherwise the
5,000 MNIST digits shipped inside the package).

One module per command, each a thin layer over the library: ``register(commands)``
adds its parser, ``run(args)`` calls the library and prints. What they share
(the one-line error, argument types, reading checkpoints) is in ``_common``.

Every user error prints one line ``convlens: error: ...`` on stderr and exits
with 2 (bad usage) or 1 (runtime: missing file, corrupt checkpoint, ...);
Ctrl-C during training saves a checkpoint and exits with 130.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from .._version import __version__
from . import evaluate, export, filter, predict, serve, summary, train, visualize  # noqa: A004 - named as the commands
from ._common import PROG, CLIError, Parser, warn

__all__ = ["CLIError", "build_parser", "main"]

COMMANDS = (train, evaluate, predict, summary, filter, visualize, serve, export)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="convlens: a convolutional neural network framework you can see through.",
        epilog="Run 'convlens COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``convlens`` command; returns the exit status."""
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        try:
            args, rest = parser.parse_known_args(argv)
        except SystemExit as done:  # --help, --version
            return int(done.code or 0)
        if rest and not getattr(args, "passthrough", False):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.rest = rest
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
    except ImportError as error:  # an optional library is missing (Pillow, matplotlib, numba)
        return _fail(_missing_library(error), 1)
    except OSError as error:
        return _fail(_os_message(error), 1)


def _one_line_warning(message: Warning | str, category: type, *args: object, **kwargs: object) -> None:
    warn(str(message))


_EXTRAS = {"PIL": "pillow", "matplotlib": "matplotlib", "numba": "'convlens[fast]'"}


def _missing_library(error: ImportError) -> str:
    name = (error.name or "").split(".")[0]
    if name in _EXTRAS:
        return f"{error}; install it with: pip install {_EXTRAS[name]}"
    return str(error)


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def _os_message(error: OSError) -> str:
    if error.filename:
        return f"{error.strerror or error}: {error.filename}"
    return str(error)

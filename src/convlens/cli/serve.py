"""``convlens serve``: the web demo, from the optional ``web`` extra.

Its options belong to :mod:`convlens.web.cli` (``add_arguments(parser)``, ``run(args)``),
imported only when the command runs: ``convlens --help`` and every other command
never import the web stack.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._common import PROG, Parser

MISSING_EXTRA = f"{PROG} serve needs the web extra: pip install 'convlens[web]'"


def register(commands: Any) -> None:
    p = commands.add_parser(
        "serve",
        help="serve the web demo: draw a digit, see what the network sees (needs the web extra)",
        description="Serve the web demo. Run 'convlens serve --help' for its options.",
        add_help=False,  # --help is answered by the web command's own parser
    )
    p.set_defaults(handler=run, passthrough=True)


def run(args: argparse.Namespace) -> int:
    try:
        from ..web.cli import add_arguments
        from ..web.cli import run as serve_web
    except ModuleNotFoundError as error:
        if (error.name or "").startswith("convlens.") and not error.name.startswith("convlens.web"):
            raise  # a bug inside convlens, not a missing extra
        print(MISSING_EXTRA, file=sys.stderr)
        return 1
    parser = Parser(prog=f"{PROG} serve", description="Serve the convlens web demo.")
    add_arguments(parser)
    try:
        options = parser.parse_args(args.rest)
    except SystemExit as done:  # --help
        return int(done.code or 0)
    return int(serve_web(options) or 0)

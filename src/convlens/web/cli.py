"""``convlens serve [CHECKPOINT] [--port N] [--host H]``: serve the page with uvicorn.

The CLI registers the subcommand with :func:`add_arguments` and runs :func:`run`.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket
import sys
from pathlib import Path

DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``convlens serve``."""
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        nargs="?",
        help="a checkpoint of 'convlens train' or cl.save (default: the newest under runs/; "
        "without one the page offers to train a model)",
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="TCP port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help="address to listen on (default: %(default)s, this machine only; the page has no "
        "authentication, so another address lets anyone who reaches it use the server)",
    )
    parser.add_argument(
        "--runs", default="runs", metavar="DIR", help="where runs are found and written (default: runs)"
    )


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: 127.0.0.0/8, ::1 and 'localhost'."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; prints the URL on one line first. Returns the exit status."""
    try:
        import uvicorn

        from .app import create_app
    except ImportError as error:
        print(
            f"convlens: error: serve needs the web extra: pip install 'convlens[web]' ({error})",
            file=sys.stderr,
        )
        return 1
    if args.checkpoint is not None and not Path(args.checkpoint).exists() and not _has_files(args.checkpoint):
        print(f"convlens: error: checkpoint not found: {args.checkpoint}", file=sys.stderr)
        return 1
    loopback = is_loopback(args.host)
    if not loopback:
        print(
            f"convlens: warning: listening on {args.host}: the page has no authentication, so anyone who "
            "can reach this address can use the server and train on this machine",
            file=sys.stderr,
        )
    try:
        app = create_app(
            args.checkpoint, runs_dir=args.runs, allowed_hosts=_hosts(args.host) if loopback else None
        )
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        print(f"convlens: error: cannot read checkpoint {args.checkpoint}: {error}", file=sys.stderr)
        return 1
    try:
        sock = _bind(args.host, args.port)
    except OSError as error:
        print(
            f"convlens: error: cannot listen on {args.host}:{args.port}: {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"convlens serve: http://{shown}:{port}/", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0


def _has_files(path: str) -> bool:
    from convlens.io import checkpoint_files

    files = checkpoint_files(path)
    return files.meta.exists() or files.weights.exists()


def _hosts(host: str) -> list[str]:
    return sorted({host, "localhost", "127.0.0.1", "[::1]", "::1"})


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before uvicorn starts so that port 0's real port can be printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock

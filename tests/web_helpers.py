"""Shared by the web tests: one small trained model per test session, pictures, a server thread."""

from __future__ import annotations

import functools
import io
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

TRAIN_EPOCHS = 6  # mnist-5k, seconds per epoch on this machine: the drawn "1" and "0" are recognised


@functools.cache
def trained_run() -> Path:
    """A run directory holding a modern LeNet-5 trained on mnist-5k through the page's own training code."""
    from convlens.web.session import Session
    from convlens.web.training import TrainingRun, run_config

    runs = Path(tempfile.mkdtemp(prefix="convlens-web-runs-"))
    run = TrainingRun(run_config({"model": "lenet5", "epochs": TRAIN_EPOCHS}), runs, Session())
    run.start()
    run.join(timeout=600)
    assert run.state == "finished", (run.state, run.message)
    return run.out


def trained_checkpoint() -> Path:
    from convlens.io import CHECKPOINT_NAME

    return trained_run() / CHECKPOINT_NAME


def png_bytes(pixels: np.ndarray) -> bytes:
    """A uint8 gray or RGB array as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def drawn_digit(digit: np.ndarray, scale: int = 8) -> bytes:
    """An MNIST digit (28x28, 0..255 white on black) as a large PNG of black ink on white paper."""
    big = np.kron(255 - np.asarray(digit, np.float64), np.ones((scale, scale)))
    return png_bytes(big.astype(np.uint8))


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

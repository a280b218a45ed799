"""A training run for the stop-and-resume tests, run as its own process (not a test module).

    python kill_worker.py OUT [--resume]

Trains the modern LeNet-5 on the first 256 mnist-5k digits (batch 16, random
shifts, SGD with momentum, cosine schedule) for ``EPOCHS`` epochs, checkpointing
into ``OUT/checkpoint`` every ``EVERY`` batches and at every epoch end. After each
batch it appends one line to ``OUT/batches.log`` (flushed and fsynced, so a kill
loses no line of a batch that was checkpointed):

    <global step> <epoch> <step> <crc32 of the labels> <crc32 of the images> <loss as hex>

With ``--resume`` it continues from ``OUT/checkpoint`` (or starts afresh if no
complete checkpoint exists yet) and writes the global step it resumed at to
``OUT/resumed_at``. At the end it writes the weights to ``OUT/final.safetensors``.
Stopped by SIGINT or SIGTERM, it exits with 128 + the signal number, as the CLI.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import zlib
from pathlib import Path

import numpy as np

import convlens as cl
from convlens import data, optim
from convlens.train import Callback, fit, load_checkpoint

EPOCHS, EVERY, BATCH, IMAGES = 4, 2, 16, 256


class Counting:
    """Delegates to a DataLoader and remembers the batch it handed out last."""

    def __init__(self, loader: data.DataLoader):
        self.loader, self.last = loader, None

    def __iter__(self):
        for batch in self.loader:
            self.last = batch
            yield batch

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


class BatchLog(Callback):
    def __init__(self, loader: Counting, path: Path):
        self.loader, self.handle = loader, open(path, "a")  # noqa: SIM115 - kept open for the run

    def on_batch_end(self, state, loss: float) -> None:
        images, labels = self.loader.last
        fingerprint = (zlib.crc32(np.ascontiguousarray(labels)), zlib.crc32(np.ascontiguousarray(images)))
        line = (
            f"{state.global_step} {state.epoch} {state.step} {fingerprint[0]} {fingerprint[1]} {loss.hex()}"
        )
        self.handle.write(line + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())


def main(out: Path, resume: bool) -> int:
    train = data.load_dataset("mnist-5k", split="train")
    train = dataclasses.replace(train, images=train.images[:IMAGES], labels=train.labels[:IMAGES])
    transform = data.Compose([data.RandomShift(2), data.Normalize(0.1307, 0.3081)])
    loader = Counting(data.DataLoader(train, BATCH, shuffle=True, seed=5, transform=transform))
    cl.nn.init.manual_seed(3)
    model = cl.models.lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    scheduler = optim.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    checkpoint = out / "checkpoint"
    state = None
    if resume:
        try:
            state = load_checkpoint(checkpoint)
        except (FileNotFoundError, ValueError):  # killed before its first complete checkpoint
            state = None
        resumed_at = 0 if state is None else state["epoch"] * len(loader) + state["step"]
        (out / "resumed_at").write_text(f"{resumed_at}\n")
    history = fit(
        model,
        loader,
        optimizer=optimizer,
        scheduler=scheduler,
        epochs=EPOCHS,
        progress=False,
        callbacks=[BatchLog(loader, out / "batches.log")],
        checkpoint_path=checkpoint,
        checkpoint_every=EVERY,
        resume=state,
    )
    if history.interrupted:
        return 128 + int(getattr(signal, history.stopped_by or "SIGINT"))
    weights = {
        k: np.ascontiguousarray(np.asarray(getattr(v, "data", v))) for k, v in model.state_dict().items()
    }
    import safetensors.numpy

    safetensors.numpy.save_file(weights, str(out / "final.safetensors"))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), "--resume" in sys.argv[2:]))

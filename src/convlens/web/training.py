"""Training from the page: one run at a time, in a thread of the server, with events.

A run is ``convlens train``'s recipe (:mod:`convlens.recipe`) and
:func:`convlens.train.fit` on the real engine, writing the same files into
``runs/<model>-<dataset>-<time>/``: ``checkpoint.safetensors`` (and its ``.json``)
after every epoch and on stop, ``config.json`` and ``history.json``.

While it runs, a :class:`~convlens.train.Callback` appends events (a few per second,
each with the running loss and accuracy and the first layer's kernels) that the
server pushes to the page as server-sent events, and publishes a copy of the
weights to the :class:`~convlens.web.session.Session`, so drawing on the page uses
the model as it learns. Stopping raises ``KeyboardInterrupt`` from the callback,
which ``fit`` handles like Ctrl-C: it saves the checkpoint and returns.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from convlens import data, io, models, recipe
from convlens import train as training
from convlens.nn.init import manual_seed

from . import inputs
from .inputs import ApiError
from .layers import first_kernels
from .session import Session, clone, describe

TRAINABLE_MODELS = ("lenet5", "lenet5-classic")
EVENT_INTERVAL = 0.25  # seconds between progress events (and weight copies for the page)
TEST_BATCH = 500


def available_datasets() -> list[str]:
    """The data sets a run can use here: the embedded mnist-5k, and those found on disk."""
    return ["mnist-5k"] + [name for name in ("mnist", "fashion-mnist") if data.find_dataset(name)]


def run_config(fields: dict[str, Any]) -> dict[str, Any]:
    """The config of a new run from the page's fields, as ``convlens train`` builds it (422 on bad fields)."""
    model = inputs.choice(fields, "model", TRAINABLE_MODELS, default="lenet5")
    dataset = inputs.choice(fields, "dataset", available_datasets(), default="mnist-5k")
    epochs = inputs.integer(fields, "epochs", 1, 100, default=recipe.default_epochs(dataset))
    batch_size = inputs.integer(fields, "batch_size", 1, 1024, default=recipe.DEFAULTS["batch_size"])
    lr = None if fields.get("lr") is None else inputs.number(fields, "lr", 1e-6, 1.0)
    limit = None if fields.get("limit") is None else inputs.integer(fields, "limit", 1, 10**7)
    seed = inputs.integer(fields, "seed", 0, 2**31 - 1, default=recipe.DEFAULTS["seed"])
    return recipe.new_config(
        model, dataset, epochs=epochs, batch_size=batch_size, lr=lr, limit=limit, seed=seed
    )


class TrainingRun:
    """One training run in its own thread; ``events`` is its append-only log."""

    def __init__(self, config: dict[str, Any], runs_dir: Path, session: Session):
        self.config, self.runs_dir, self.session = config, Path(runs_dir), session
        self.state = "starting"
        self.message = ""
        self.out: Path | None = None
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="convlens-training", daemon=True)

    # -- control ------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self.alive:
            self._set_state("stopping")
            self._stop.set()

    @property
    def alive(self) -> bool:
        return self.state in ("starting", "running", "stopping")

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def events_after(self, index: int, timeout: float) -> list[dict[str, Any]]:
        """The events after the first ``index``, waiting up to ``timeout`` s for one to come."""
        with self._changed:
            if len(self.events) <= index and self.alive:
                self._changed.wait(timeout)
            return self.events[index:]

    def status(self) -> dict[str, Any]:
        progress = next((e for e in reversed(self.events) if e["type"] == "progress"), None)
        epochs = [e for e in self.events if e["type"] == "epoch"]
        return {
            "state": self.state,
            "message": self.message,
            "config": self.config,
            "out": str(self.out) if self.out else None,
            "checkpoint": str(self.out / io.CHECKPOINT_NAME) if self.out else None,
            "progress": progress,
            "epochs": epochs,
            "events": len(self.events),
        }

    # -- the run --------------------------------------------------------------------
    def _emit(self, kind: str, **fields: Any) -> None:
        with self._changed:
            self.events.append({"type": kind, "index": len(self.events), "time": time.time(), **fields})
            self._changed.notify_all()

    def _set_state(self, state: str, message: str = "") -> None:
        with self._changed:
            self.state, self.message = state, message or self.message
            self._changed.notify_all()

    def _work(self) -> None:
        try:
            self._set_state("running")
            self._train()
        except training.TrainingDivergedError as error:
            self._finish("failed", f"training diverged: {error}")
        except Exception as error:  # the server outlives any failure of a run; the page is told why
            self._finish("failed", f"{type(error).__name__}: {error}")

    def _train(self) -> None:
        config = self.config
        manual_seed(config["seed"])
        model = models.get(config["model"])
        config["mean"], config["std"] = recipe.input_normalization(model, config["mean"], config["std"])
        config["input_shape"] = list(model.input_shape)
        config["pad"] = recipe.padding_for(model.input_shape)
        splits = data.load_dataset(config["dataset"])
        config["classes"] = [str(name) for name in splits.train.classes]
        train_set = recipe.subset(splits.train, config.get("limit"))
        train_tf = recipe.transform(config["mean"], config["std"], config["pad"], config["augment"])
        test_tf = recipe.transform(config["mean"], config["std"], config["pad"], False)
        train_loader = recipe.loader(
            train_set, config["batch_size"], train_tf, shuffle=True, seed=config["seed"]
        )
        test_loader = recipe.loader(splits.test, TEST_BATCH, test_tf)
        optimizer = recipe.optimizer_for(config, model.parameters())
        scheduler = recipe.scheduler_for(config, optimizer)

        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.out = self.runs_dir / f"{config['model']}-{config['dataset']}-{stamp}"
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        self.session.show(describe(clone(model), f"training run {self.out}", config))
        steps = len(train_loader)
        self._emit(
            "start",
            config=config,
            out=str(self.out),
            steps_per_epoch=steps,
            total_steps=steps * config["epochs"],
            train_images=len(train_set),
            test_images=len(splits.test),
            kernels=first_kernels(model),
        )
        reporter = _Reporter(self, steps * config["epochs"])
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is reported once
            history = training.fit(
                model,
                train_loader,
                test_loader,
                optimizer=optimizer,
                scheduler=scheduler,
                epochs=config["epochs"],
                callbacks=[reporter],
                progress=False,
                checkpoint_path=self.out / io.CHECKPOINT_NAME,
                config=config,
                fuse=True,
            )
        history.save(self.out / "history.json")
        self.session.publish(model.state_dict())
        reporter.progress(force=True)
        state = "stopped" if history.interrupted else "finished"
        accuracy = history.epochs[-1].val_acc if history.epochs else None
        where = f"; test accuracy {100 * accuracy:.1f}%" if accuracy is not None else ""
        self._finish(
            state, f"{state} after {reporter.steps} steps{where}; checkpoint {self.out / io.CHECKPOINT_NAME}"
        )

    def _finish(self, state: str, message: str) -> None:
        self._emit("done", state=state, message=message, checkpoint=self.status()["checkpoint"])
        self._set_state(state, message)


class _Reporter(training.Callback):
    """Turns ``fit``'s hooks into events and weight copies; raises KeyboardInterrupt on stop."""

    def __init__(self, run: TrainingRun, total_steps: int):
        self.run, self.total_steps = run, total_steps
        self.state: Any = None
        self.steps = 0
        self._last = 0.0

    def on_batch_end(self, state: Any, loss: float) -> None:
        self.state, self.steps = state, state.global_step
        self.progress()
        if self.run._stop.is_set():
            raise KeyboardInterrupt  # fit saves the checkpoint and returns the history so far

    def on_epoch_end(self, state: Any, record: Any) -> None:
        self.run._emit("epoch", **dataclasses.asdict(record))
        if self.run._stop.is_set():
            raise KeyboardInterrupt

    def progress(self, force: bool = False) -> None:
        now = time.perf_counter()
        state = self.state
        if state is None or (not force and now - self._last < EVENT_INTERVAL):
            return
        self._last = now
        self.run.session.publish(state.model.state_dict())  # between two steps: consistent weights
        seen = max(state.seen, 1)
        self.run._emit(
            "progress",
            epoch=state.epoch,
            step=state.step,
            global_step=state.global_step,
            total_steps=self.total_steps,
            loss=state.loss_sum / seen,
            accuracy=state.correct / seen,
            kernels=first_kernels(state.model),
        )


class Trainer:
    """At most one :class:`TrainingRun` at a time; a second start while one goes is 409."""

    def __init__(self, session: Session, runs_dir: Path):
        self.session, self.runs_dir = session, Path(runs_dir)
        self._lock = threading.Lock()
        self.run: TrainingRun | None = None

    def start(self, fields: dict[str, Any]) -> TrainingRun:
        config = run_config(fields)
        with self._lock:
            if self.run is not None and self.run.alive:
                raise ApiError(409, "A training run is already going: stop it first (POST /api/train/stop).")
            self.run = TrainingRun(config, self.runs_dir, self.session)
            self.run.start()
            return self.run

    def stop(self) -> dict[str, Any]:
        run = self.run
        if run is None or not run.alive:
            return {**self.status(), "message": "No training run is going."}
        run.stop()
        return self.status()

    def status(self) -> dict[str, Any]:
        run = self.run
        idle = {"state": "idle", "message": "", "events": 0}
        return {
            **(run.status() if run else idle),
            "models": list(TRAINABLE_MODELS),
            "datasets": available_datasets(),
        }

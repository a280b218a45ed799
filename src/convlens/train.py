"""Training loop: ``fit`` a model, ``evaluate`` it, resume from a checkpoint.

::

    import convlens as cl
    from convlens import data, optim
    from convlens.train import evaluate, fit

    train, test = data.load_dataset("mnist-5k")
    normalize = data.Normalize(0.1307, 0.3081)
    train_loader = data.DataLoader(train, 64, shuffle=True, seed=0, transform=normalize)
    test_loader = data.DataLoader(test, 500, transform=normalize)
    cl.nn.init.manual_seed(0)
    model = cl.models.lenet5()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    history = fit(model, train_loader, test_loader, optimizer=optimizer, epochs=5,
                  checkpoint_path="runs/demo/checkpoint")
    evaluate(model, test_loader).confusion     # 10 x 10, rows: true class

``fit`` runs ``epochs`` passes over ``train_loader`` (each batch: forward, loss,
backward, ``optimizer.step()``), then validates on ``val_loader`` with
``model.eval()`` under ``cl.no_grad()``. It returns a :class:`History` (one record
per epoch, JSON-able). A non-finite loss raises :class:`TrainingDivergedError`.

Stopping: SIGINT (Ctrl-C) and SIGTERM, while ``fit`` runs in the main thread, do
not interrupt what is in progress: ``fit`` finishes the batch (or the checkpoint
write) it is in, saves a checkpoint at that step (when ``checkpoint_path`` is
given) and returns the history so far with ``history.interrupted = True`` and
``history.stopped_by = "SIGINT"`` or ``"SIGTERM"``. A second Ctrl-C stops at once
(the previous checkpoint stays, see :mod:`convlens.generations`); a
``KeyboardInterrupt`` raised by a callback behaves like the first. SIGKILL cannot
be caught: the last complete checkpoint is what remains, so ``checkpoint_every``
bounds what it can cost.

Reproducibility: the same seed gives the same losses, bit for bit. The model's
initialisation is seeded by whoever builds it (``nn.init.manual_seed``); the
batches of epoch ``e`` are a function of the loader's seed and ``e``: ``fit``
calls ``loader.set_epoch(e)`` (the shuffling order) and reseeds every random
transform of the loader (e.g. ``RandomShift``) from ``(loader.seed, e)``. So a
run resumed from a checkpoint, even one written in the middle of an epoch
(the batches already done are skipped), continues exactly as the uninterrupted
run would have.

Checkpoints are written and read by :func:`convlens.io.save_checkpoint` and
:func:`convlens.io.load_checkpoint` (also importable from here); the per-epoch
records are :class:`convlens.history.History`.

Cost per step: one forward, one backward, ``optimizer.zero_grad()`` and
``optimizer.step()``, and O(1) bookkeeping (a ``loss.item()`` for the NaN check,
an argmax for the accuracy); the batch array is wrapped, not copied.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .history import EpochRecord, History
from .io import load_checkpoint, save_checkpoint
from .tensor import Tensor, no_grad

__all__ = [
    "Callback",
    "EpochRecord",
    "EvalResult",
    "History",
    "TrainingDiverged",
    "TrainingDivergedError",
    "evaluate",
    "fit",
    "load_checkpoint",
    "save_checkpoint",
]

LossFn = Callable[[Tensor, Tensor], Tensor]


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


TrainingDiverged = TrainingDivergedError  # the short name


# ---------------------------------------------------------------------------- callbacks
class Callback:
    """Hooks called by :func:`fit`; override the ones you need.

    ``state`` is the live :class:`FitState` (model, optimizer, epoch, step, ...).
    Raising ``KeyboardInterrupt`` from a hook behaves like Ctrl-C.
    """

    def on_epoch_start(self, state: FitState) -> None: ...

    def on_batch_end(self, state: FitState, loss: float) -> None: ...

    def on_epoch_end(self, state: FitState, record: EpochRecord) -> None: ...


@dataclass
class FitState:
    model: Any
    optimizer: Any
    scheduler: Any
    history: History
    epoch: int = 0  # the epoch being run (0-based)
    step: int = 0  # batches done in this epoch
    global_step: int = 0
    # running sums of the epoch so far, so a mid-epoch resume reports the same figures
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0

    def partial(self) -> dict[str, Any]:
        return {
            "loss_sum": self.loss_sum,
            "correct": self.correct,
            "seen": self.seen,
            "seconds": self.seconds,
        }


# ------------------------------------------------------------------------------ helpers
def default_loss(model: Any) -> LossFn:
    """``model.loss`` when the model defines its own (classic LeNet-5), else cross-entropy."""
    loss = getattr(model, "loss", None)
    if callable(loss):
        return loss
    from .functional import cross_entropy

    return cross_entropy


def predict_classes(model: Any, output: Tensor | np.ndarray) -> np.ndarray:
    """Predicted class per row of ``output``: ``model.predict_classes`` if defined, else argmax."""
    custom = getattr(model, "predict_classes", None)
    if callable(custom):
        return np.asarray(custom(output))
    data = output.data if isinstance(output, Tensor) else np.asarray(output)
    return data.argmax(axis=1)


def _as_batch(batch: Any) -> tuple[Tensor, np.ndarray]:
    x, y = batch[0], batch[1]
    target = y.data if isinstance(y, Tensor) else np.asarray(y)
    return _wrap(x), target


def _wrap(x: Any) -> Tensor:
    """A Tensor viewing the batch's array (``cl.tensor`` would copy it; the loader made it fresh)."""
    if isinstance(x, Tensor):
        return x
    return Tensor._from_op(np.asarray(x), (), lambda g: ())


def _current_lr(optimizer: Any) -> float | None:
    groups = getattr(optimizer, "param_groups", None)
    if groups:
        return float(groups[0]["lr"])
    lr = getattr(optimizer, "lr", None)
    return float(lr) if lr is not None else None


def _set_epoch(loader: Any, epoch: int) -> None:
    """Make epoch ``epoch``'s batches a function of (loader seed, epoch): order and augmentation."""
    set_epoch = getattr(loader, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)
    seed = getattr(loader, "seed", None)
    transform = getattr(loader, "transform", None)
    if seed is None or transform is None:
        return
    for index, step in enumerate(getattr(transform, "transforms", [transform])):
        if isinstance(getattr(step, "rng", None), np.random.Generator):
            step.rng = np.random.default_rng([int(seed), int(epoch), index])


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    """A tqdm bar on stderr, disabled unless ``enabled`` and stderr is a terminal."""
    from tqdm.auto import tqdm

    show = enabled and sys.stderr.isatty()
    try:
        size = os.get_terminal_size(sys.stderr.fileno()) if show else None
    except (OSError, ValueError):
        size = None
    # some pseudo-terminals report a 0 x 0 size, with which tqdm draws nothing
    known = size is not None and size.columns > 0 and size.lines > 0
    return tqdm(
        total=total,
        desc=desc,
        unit="batch",
        leave=False,
        disable=not show,
        dynamic_ncols=known,
        ncols=None if known else 100,
        nrows=None if known else 24,
    )


def _safe_len(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


# --------------------------------------------------------------------------------- fit
def fit(
    model: Any,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    optimizer: Any,
    epochs: int = 1,
    scheduler: Any = None,
    loss_fn: LossFn | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    verbose: bool = False,
    log: Callable[[str], None] = print,
    checkpoint_path: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike | dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    fuse: bool = False,
) -> History:
    """Train ``model`` for ``epochs`` epochs (in total, counting resumed ones).

    Args:
        model: an ``nn.Module``; its ``loss(output, target)`` is used when it has one.
        train_loader: iterable of ``(images, labels)`` batches (arrays or Tensors).
        val_loader: evaluated after every epoch (``model.eval()``, no graph).
        optimizer: e.g. ``optim.SGD(model.parameters(), lr=0.05, momentum=0.9)``.
        epochs: total number of epochs; a resumed run continues up to it.
        scheduler: stepped once per epoch (``scheduler.step()``).
        loss_fn: ``loss_fn(output, target) -> scalar Tensor``; default
            ``model.loss`` or ``F.cross_entropy``.
        callbacks: :class:`Callback` objects.
        progress: show a tqdm bar (only when stderr is a terminal).
        verbose: ``log`` one line per epoch.
        checkpoint_path: written after every epoch and when stopped by a signal.
        checkpoint_every: also written every this many batches (None: at epoch ends only).
        resume: a checkpoint path (or a :func:`load_checkpoint` dict) to
            continue from: restores weights, optimizer and scheduler state,
            the epoch/step counter and the history.
        config: stored in the checkpoint (e.g. the CLI arguments).
        fuse: train with ``model``'s Conv2d -> ReLU -> MaxPool2d blocks fused into
            single ops (:func:`convlens.nn.fuse`: the same values and gradients,
            faster), saying which when ``verbose``; the model is unfused again on return.
            Checkpoints and ``state_dict`` keys are those of the unfused model.

    Returns:
        The :class:`History`; ``history.interrupted`` is True after Ctrl-C or SIGTERM.

    Raises:
        TrainingDivergedError: the loss became NaN or infinite.
        ValueError: ``train_loader`` yields no batch.
    """
    if epochs < 0:
        raise ValueError(f"fit: epochs must be non-negative. Received: epochs={epochs}")
    if checkpoint_every is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ValueError(
            "fit: checkpoint_every must be a positive int or None. "
            f"Received: checkpoint_every={checkpoint_every!r}"
        )
    fused_here = fuse and _fuse(model, log if verbose else None)
    try:
        with _StopOnSignal() as stop:
            return _fit_loop(
                model,
                train_loader,
                val_loader,
                optimizer,
                epochs,
                scheduler,
                loss_fn,
                callbacks,
                progress,
                verbose,
                log,
                checkpoint_path,
                checkpoint_every,
                resume,
                config,
                stop,
            )
    finally:
        if fused_here:  # hand the model back as it was given: hooks and pictures see every layer
            from .nn import unfuse

            unfuse(model)


def _fuse(model: Any, log: Callable[[str], None] | None) -> bool:
    """Fuse ``model`` unless it is fused already; True when this call fused it."""
    from .nn import fuse, fused_blocks

    if fused_blocks(model):
        return False
    names = fused_blocks(fuse(model))
    if names and log is not None:
        log(f"training with {len(names)} fused block(s) (nn.fuse; same results): {', '.join(names)}")
    return True


class _Stopped(KeyboardInterrupt):
    """Raised at a batch boundary after SIGINT or SIGTERM (see :class:`_StopOnSignal`)."""


class _StopOnSignal:
    """While ``fit`` runs: SIGINT and SIGTERM are remembered, not raised where they land.

    ``fit`` then stops at the next batch boundary, so no batch, optimizer step or
    checkpoint write is cut in half. A second SIGINT raises ``KeyboardInterrupt`` at
    once (stop now). Only the main thread can own signals; elsewhere this does nothing.
    """

    NAMES = ("SIGINT", "SIGTERM")

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, signal.SIG_DFL if previous is None else previous)

    def _handle(self, number: int, frame: Any) -> None:
        name = signal.Signals(number).name
        if name == "SIGINT" and self.received == "SIGINT":
            raise KeyboardInterrupt
        self.received = self.received or name

    def check(self) -> None:
        if self.received is not None:
            raise _Stopped


def _fit_loop(
    model: Any,
    train_loader: Iterable,
    val_loader: Iterable | None,
    optimizer: Any,
    epochs: int,
    scheduler: Any,
    loss_fn: LossFn | None,
    callbacks: Sequence[Callback],
    progress: bool,
    verbose: bool,
    log: Callable[[str], None],
    checkpoint_path: str | os.PathLike | None,
    checkpoint_every: int | None,
    resume: str | os.PathLike | dict[str, Any] | None,
    config: dict[str, Any] | None,
    stop: _StopOnSignal,
) -> History:
    loss_fn = loss_fn or default_loss(model)
    history, start_epoch, partial = History(), 0, {}
    if resume is not None:
        saved = resume if isinstance(resume, dict) else load_checkpoint(resume)
        _restore(model, optimizer, scheduler, saved)
        history, start_epoch = saved["history"], saved["epoch"]
        history.interrupted, history.stopped_by = False, None
        partial = {**saved.get("partial", {}), "step": saved["step"]}
    state = FitState(model, optimizer, scheduler, history, epoch=start_epoch)
    state.global_step = start_epoch * (_safe_len(train_loader) or 0) + int(partial.get("step", 0))

    def checkpoint(epoch: int, step: int) -> None:
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                model,
                optimizer,
                scheduler,
                epoch=epoch,
                step=step,
                history=history,
                config=config,
                partial=state.partial() if step else None,
            )

    def after_batch() -> None:
        if checkpoint_every is not None and state.global_step % checkpoint_every == 0:
            checkpoint(state.epoch, state.step)
        stop.check()

    def interrupted() -> History:
        history.interrupted, history.stopped_by = True, stop.received
        return history

    for epoch in range(start_epoch, epochs):
        state.epoch, state.step = epoch, int(partial.get("step", 0))
        state.loss_sum = float(partial.get("loss_sum", 0.0))
        state.correct, state.seen = int(partial.get("correct", 0)), int(partial.get("seen", 0))
        state.seconds = float(partial.get("seconds", 0.0))
        partial = {}
        try:
            record = _train_epoch(
                model, train_loader, optimizer, loss_fn, state, callbacks, progress, epochs, after_batch
            )
            if val_loader is not None:
                result = evaluate(model, val_loader, loss_fn=loss_fn)
                record.val_loss, record.val_acc = result.loss, result.accuracy
        except KeyboardInterrupt:
            checkpoint(epoch, state.step)
            return interrupted()
        if scheduler is not None:
            scheduler.step()
        history.epochs.append(record)
        checkpoint(epoch + 1, 0)
        if verbose:
            log(format_record(record, epochs))
        try:
            for callback in callbacks:
                callback.on_epoch_end(state, record)
            stop.check()  # a signal during validation or the epoch's checkpoint: that one is saved
        except KeyboardInterrupt:
            return interrupted()
    return history


def format_record(record: EpochRecord, epochs: int | None = None) -> str:
    """One human-readable line for an epoch."""
    width = len(str(epochs)) if epochs else 1
    of = f"/{epochs}" if epochs else ""
    text = (
        f"epoch {record.epoch + 1:>{width}}{of}  loss {record.train_loss:.4f}  "
        f"acc {100 * record.train_acc:6.2f}%"
    )
    if record.val_acc is not None:
        text += f"  val_loss {record.val_loss:.4f}  val_acc {100 * record.val_acc:6.2f}%"
    return text + f"  {record.seconds:.1f}s  {record.images_per_sec:,.0f} img/s"


def _restore(model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> None:
    loaded = state.get("model")
    if loaded is not None and loaded is not model:
        model.load_state_dict(loaded.state_dict())
    if optimizer is not None and state.get("optimizer_state") is not None:
        optimizer.load_state_dict(state["optimizer_state"])
    if scheduler is not None and state.get("scheduler_state") is not None:
        scheduler.load_state_dict(state["scheduler_state"])


def _train_epoch(
    model: Any,
    loader: Iterable,
    optimizer: Any,
    loss_fn: LossFn,
    state: FitState,
    callbacks: Sequence[Callback],
    progress: bool,
    epochs: int,
    after_batch: Callable[[], None] = lambda: None,
) -> EpochRecord:
    """One pass over ``loader``, continuing after the ``state.step`` batches already done;
    ``after_batch`` runs after every batch trained (checkpoints, stopping)."""
    epoch, skip = state.epoch, state.step
    model.train()
    _set_epoch(loader, epoch)
    for callback in callbacks:
        callback.on_epoch_start(state)
    start = time.perf_counter() - state.seconds
    bar = _progress_bar(_safe_len(loader), f"epoch {epoch + 1}/{epochs}", progress)
    index = -1
    try:
        for index, batch in enumerate(loader):
            if index < skip:  # done before the resume; iterating replays the loader's random stream
                bar.update(1)
                continue
            x, target = _as_batch(batch)
            output = model(x)
            loss = loss_fn(output, _wrap(target))
            value = float(loss.item())
            if not math.isfinite(value):
                raise TrainingDivergedError(_diverged_message(value, epoch, index, optimizer))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            n = len(target)
            state.loss_sum += value * n
            state.correct += int((predict_classes(model, output) == target).sum())
            state.seen += n
            state.step, state.global_step = index + 1, state.global_step + 1
            state.seconds = time.perf_counter() - start
            if not bar.disable:
                bar.set_postfix_str(_bar_text(state), refresh=False)
            bar.update(1)
            for callback in callbacks:
                callback.on_batch_end(state, value)
            after_batch()
    finally:
        bar.close()
    if index < 0:
        raise ValueError(
            "fit: train_loader is empty: an epoch yielded no batch, so there is no loss to report. "
            f"Received: train_loader={type(loader).__name__} of length {_safe_len(loader)}"
        )
    seconds = time.perf_counter() - start
    seen = max(state.seen, 1)
    return EpochRecord(
        epoch=epoch,
        train_loss=state.loss_sum / seen,
        train_acc=state.correct / seen,
        val_loss=None,
        val_acc=None,
        seconds=seconds,
        images_per_sec=state.seen / max(seconds, 1e-9),
        lr=_current_lr(optimizer),
    )


def _bar_text(state: FitState) -> str:
    seen = max(state.seen, 1)
    return (
        f"loss={state.loss_sum / seen:.4f} acc={100 * state.correct / seen:.2f}% "
        f"{state.seen / max(state.seconds, 1e-9):,.0f} img/s"
    )


def _diverged_message(value: float, epoch: int, index: int, optimizer: Any) -> str:
    lr = _current_lr(optimizer)
    hint = f"; try a lower --lr (was {lr:g})" if lr is not None else "; try a lower learning rate"
    return f"loss became {value} at epoch {epoch + 1}, step {index + 1}{hint}"


# ---------------------------------------------------------------------------- evaluate
@dataclass
class EvalResult:
    """Accuracy, mean loss, per-class accuracy and confusion matrix (rows: true, cols: predicted)."""

    accuracy: float
    loss: float
    per_class_accuracy: np.ndarray
    confusion: np.ndarray
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "loss": self.loss,
            "per_class_accuracy": self.per_class_accuracy.tolist(),
            "confusion": self.confusion.tolist(),
            "count": self.count,
        }


def evaluate(
    model: Any,
    loader: Iterable,
    *,
    loss_fn: LossFn | None = None,
    num_classes: int | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``loader`` in eval mode without recording a graph.

    ``per_class_accuracy[c]`` is the recall of class ``c`` (NaN when ``c`` does not occur).
    The model's train/eval mode is restored afterwards.
    """
    loss_fn = loss_fn or default_loss(model)
    was_training = getattr(model, "training", True)
    model.eval()
    total_loss, seen = 0.0, 0
    targets: list[np.ndarray] = []
    predictions: list[np.ndarray] = []
    try:
        with no_grad():
            for batch in loader:
                x, target = _as_batch(batch)
                output = model(x)
                total_loss += float(loss_fn(output, _wrap(target)).item()) * len(target)
                seen += len(target)
                targets.append(target)
                predictions.append(predict_classes(model, output))
    finally:
        model.train(was_training)
    true = np.concatenate(targets).astype(np.int64) if targets else np.zeros(0, np.int64)
    pred = np.concatenate(predictions).astype(np.int64) if predictions else np.zeros(0, np.int64)
    k = num_classes or int(max(true.max(initial=-1), pred.max(initial=-1)) + 1)
    confusion = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.diag(confusion) / support
    return EvalResult(
        accuracy=float((true == pred).mean()) if seen else float("nan"),
        loss=total_loss / seen if seen else float("nan"),
        per_class_accuracy=per_class,
        confusion=confusion,
        count=seen,
    )

"""LeNet-5 (modern) on full Fashion-MNIST: training time per epoch, inference.

Same model in both frameworks: ``cl.models.lenet5()`` (fused with ``cl.nn.fuse``) and
its PyTorch twin below, with convlens' initial weights copied into PyTorch key by key
(``state_dict``). Same
batches: one ``cl.data.DataLoader(train, 64, shuffle=True, seed=0)`` order per epoch,
the identical float32 arrays handed to both (``torch.from_numpy``, no copy). Each
framework runs its own optimizer (``optim.SGD``/``torch.optim.SGD`` ...). A training
step in both is: zero_grad, forward, cross_entropy, backward, step, ``loss.item()``.
"""

from __future__ import annotations

import functools
import gc
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._timing import Settings, error_text
from ._workload import OpWorkload, Runner

DATASET = "fashion-mnist"
BATCH = 64
SEED = 0
EXACT_STEPS = 20  # losses compared between frameworks
OPTIMIZERS = {
    "sgd": ("SGD", {"lr": 0.01, "momentum": 0.9}),
    "adam": ("Adam", {"lr": 1e-3}),
}


@functools.lru_cache(maxsize=1)
def load_data() -> dict[str, Any]:
    """Fashion-MNIST through ``cl.data.load_dataset``; test images as float32 NCHW / 255."""
    import convlens as cl

    train, test = cl.data.load_dataset(DATASET)
    test_x = test.images[:, None].astype(np.float32) / np.float32(255)
    return {"train": train, "test_x": test_x, "test_y": test.labels.astype(np.int64), "source": train.source}


def convlens_model(seed: int = SEED) -> Any:
    """``cl.models.lenet5()``, fused (``cl.nn.fuse``: its two Conv2d -> ReLU -> MaxPool2d
    blocks run as one op each, as ``fit(..., fuse=True)`` does; same keys, same values)."""
    import convlens as cl

    cl.nn.init.manual_seed(seed)
    return cl.nn.fuse(cl.models.lenet5())


def torch_model() -> Any:
    """PyTorch twin of ``cl.models.lenet5()`` (modern, 61,706 parameters), same layer names."""
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(1, 6, 5, padding=2), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            conv2=nn.Conv2d(6, 16, 5), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
            flatten=nn.Flatten(),
            fc1=nn.Linear(16 * 5 * 5, 120), relu3=nn.ReLU(),
            fc2=nn.Linear(120, 84), relu4=nn.ReLU(),
            fc3=nn.Linear(84, 10),
        )
    )  # fmt: skip


def copy_weights(state: dict[str, np.ndarray], model: Any) -> dict[str, str]:
    """Load convlens' ``state`` into the torch ``model``; returns the key mapping used.

    Keys are matched by name when both models use the same names; otherwise in order,
    requiring equal shapes (the mapping is reported so it can be checked).
    """
    import torch

    target = model.state_dict()
    if list(state) == list(target):
        mapping = {k: k for k in state}
    else:
        if len(state) != len(target):
            raise ValueError(f"state_dict sizes differ: convlens {list(state)} vs torch {list(target)}")
        mapping = dict(zip(state, target, strict=True))
    for src, dst in mapping.items():
        if tuple(state[src].shape) != tuple(target[dst].shape):
            raise ValueError(f"shape mismatch {src} {state[src].shape} -> {dst} {tuple(target[dst].shape)}")
    model.load_state_dict(
        {dst: torch.from_numpy(np.array(state[src], np.float32)) for src, dst in mapping.items()}
    )
    return mapping


def _initial_state() -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in convlens_model().state_dict().items()}


# -- training ---------------------------------------------------------------------


@dataclass
class Side:
    """One framework's model, optimizer and data stream during the training benchmark."""

    name: str
    model: Any
    opt: Any
    warm_model: Any  # a throwaway copy for the untimed warm-up steps
    warm_opt: Any
    loader: Any = None  # this side's DataLoader (same seed in both: same batches)
    batches: Iterator[tuple[np.ndarray, np.ndarray]] | None = None
    losses: list[float] = field(default_factory=list)
    step_times: list[float] = field(default_factory=list)  # seconds per step, per chunk
    chunk_seconds: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    epoch_seconds: float = 0.0  # timed seconds of the epoch in progress
    epoch_steps: int = 0


def _convlens_step(model: Any, opt: Any, x: np.ndarray, y: np.ndarray) -> float:
    from convlens import functional as F

    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def _torch_step(model: Any, opt: Any, x: np.ndarray, y: np.ndarray) -> float:
    import torch
    import torch.nn.functional as TF

    opt.zero_grad()
    loss = TF.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    opt.step()
    return loss.item()


STEP = {"convlens": _convlens_step, "torch": _torch_step}


def _make_side(framework: str, optimizer: str, state: dict[str, np.ndarray]) -> Side:
    cls_name, kwargs = OPTIMIZERS[optimizer]
    if framework == "convlens":
        import convlens as cl

        models = [convlens_model(), convlens_model()]
        for m in models:
            m.load_state_dict(state)
        opts = [getattr(cl.optim, cls_name)(m.parameters(), **kwargs) for m in models]
    else:
        import torch

        models = [torch_model(), torch_model()]
        for m in models:
            copy_weights(state, m)
        opts = [getattr(torch.optim, cls_name)(m.parameters(), **kwargs) for m in models]
    for m in models:
        m.train()
    return Side(framework, models[0], opts[0], models[1], opts[1])


def make_loader(train: Any) -> Any:
    """``cl.data.DataLoader`` with its one-off float32 conversion done up front (untimed)."""
    import convlens as cl

    loader = cl.data.DataLoader(train, BATCH, shuffle=True, seed=SEED)
    next(iter(loader))
    return loader


def _batches(loader: Any, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    loader.set_epoch(epoch)
    return iter(loader)


def _warm_up(side: Side, warm_loader: Any, settings: Settings) -> None:
    gc.collect()
    time.sleep(settings.sleep)
    for x, y in _take(_batches(warm_loader, 10_000), settings.warmup):
        STEP[side.name](side.warm_model, side.warm_opt, x, y)


def _take(it: Iterator, n: int | None) -> Iterator:
    for i, item in enumerate(it):
        if n is not None and i >= n:
            return
        yield item


def _timed_chunk(side: Side, steps: int | None) -> tuple[float, int]:
    """Run ``steps`` steps (None: to the end of the epoch); returns (seconds, steps run)."""
    step, model, opt, losses = STEP[side.name], side.model, side.opt, side.losses
    count = 0
    assert side.batches is not None
    start = time.perf_counter()
    for x, y in _take(side.batches, steps):
        losses.append(step(model, opt, x, y))
        count += 1
    return time.perf_counter() - start, count


def evaluate(framework: str, model: Any, x: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    """Test accuracy in eval mode without gradients (not timed)."""
    correct = 0
    model.eval()
    if framework == "convlens":
        import convlens as cl

        with cl.no_grad():
            for i in range(0, len(x), batch):
                correct += int((np.asarray(model(x[i : i + batch]).data).argmax(1) == y[i : i + batch]).sum())
    else:
        import torch

        with torch.no_grad():
            for i in range(0, len(x), batch):
                logits = model(torch.from_numpy(x[i : i + batch])).numpy()
                correct += int((logits.argmax(1) == y[i : i + batch]).sum())
    model.train()
    return correct / len(x)


# A shared machine's speed drifts by up to 2x over tens of seconds (see
# docs/benchmarks.md), so a whole epoch of one framework against a whole epoch of
# the other compares two different machines. Every epoch is
# therefore run in alternating slices of ``SLICE_STEPS`` steps, the framework
# that starts alternating too, so both see the same drift; an epoch's time is
# the sum of its slices (warm-up steps and sleeps in between are not timed).
SLICE_STEPS = 94


def train_plan(quick: bool) -> dict[str, Any]:
    """Quick: 3 slices of 100 steps of epoch 0, extrapolated. Full: 3 whole epochs, in slices."""
    return (
        {"epochs": 1, "slices": 3, "steps": 100}
        if quick
        else {"epochs": 3, "slices": None, "steps": SLICE_STEPS}
    )


def _epoch_in_slices(
    sides: dict[str, Side], epoch: int, plan: dict[str, Any], warm_loader: Any, settings: Settings
) -> None:
    """Train every side one epoch (or ``plan["slices"]`` slices of it), alternating slice by slice."""
    names = list(sides)
    for side in sides.values():
        side.batches = _batches(side.loader, epoch)
        side.epoch_seconds, side.epoch_steps = 0.0, 0
    index, running = 0, set(names)
    while running and (plan["slices"] is None or index < plan["slices"]):
        order = names if (index + epoch) % 2 == 0 else names[::-1]
        for fw in [n for n in order if n in running]:
            side = sides[fw]
            _warm_up(side, warm_loader, settings)
            seconds, count = _timed_chunk(side, plan["steps"])
            if count == 0:
                running.discard(fw)
                continue
            side.epoch_seconds += seconds
            side.epoch_steps += count
            side.step_times.append(seconds / count)
        index += 1


def run_training(optimizer: str, settings: Settings) -> dict[str, Any]:
    """Train both frameworks side by side; seconds per epoch, accuracy, loss agreement."""
    plan = train_plan(settings.quick)
    cls_name, kwargs = OPTIMIZERS[optimizer]
    data = load_data()
    train = data["train"]
    warm_loader = make_loader(train)
    steps_per_epoch = len(warm_loader)
    state = _initial_state()
    sides = {fw: _make_side(fw, optimizer, state) for fw in ("convlens", "torch")}
    for side in sides.values():
        side.loader = make_loader(train)
    result: dict[str, Any] = {
        "optimizer": f"{cls_name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})",
        "batch_size": BATCH,
        "steps_per_epoch": steps_per_epoch,
        "dataset_source": data["source"],
        "mode": "quick: fixed steps, extrapolated to an epoch"
        if settings.quick
        else "full epochs, interleaved in slices",
        "plan": plan,
        "weight_mapping": copy_weights(state, torch_model()),
    }
    orders = [[side.loader.order(e) for e in range(plan["epochs"])] for side in sides.values()]
    result["same_batches"] = all(np.array_equal(a, b) for a, b in zip(*orders, strict=True))
    for epoch in range(plan["epochs"]):
        _epoch_in_slices(sides, epoch, plan, warm_loader, settings)
        for fw, side in sides.items():
            side.chunk_seconds.append(side.epoch_seconds)
            side.accuracy.append(evaluate(fw, side.model, data["test_x"], data["test_y"]))
    for fw, side in sides.items():
        per_step = statistics.median(side.step_times)
        if plan["slices"] is None:
            per_epoch = statistics.median(side.chunk_seconds)
        else:
            per_epoch = per_step * steps_per_epoch
        result[fw] = {
            "median": per_epoch,
            "seconds_per_step": per_step,
            "chunk_seconds": side.chunk_seconds,
            "times": [t * steps_per_epoch for t in side.step_times] if plan["slices"] else side.chunk_seconds,
            "test_accuracy": side.accuracy,
            "steps_run": len(side.losses),
            "first_losses": side.losses[:EXACT_STEPS],
            "last_loss": side.losses[-1] if side.losses else None,
        }
    a = np.array(sides["convlens"].losses[:EXACT_STEPS], np.float64)
    b = np.array(sides["torch"].losses[:EXACT_STEPS], np.float64)
    result["loss_max_rel_diff"] = float(np.max(np.abs(a - b) / np.abs(b)))
    result["ratio"] = result["convlens"]["median"] / result["torch"]["median"]
    return result


def training_workload(optimizer: str, settings: Settings) -> dict[str, Any]:
    """``run_training`` that reports a failure instead of raising."""
    cls_name, kwargs = OPTIMIZERS[optimizer]
    out = {
        "name": f"lenet_train_{optimizer}",
        "group": "training",
        "label": f"LeNet-5 training, Fashion-MNIST, batch {BATCH}, "
        f"{cls_name} {', '.join(f'{k}={v}' for k, v in kwargs.items())}",
        "unit": "s/epoch",
    }
    try:
        out.update(run_training(optimizer, settings))
    except Exception as exc:  # keep the rest of the benchmark going
        out["error"] = error_text(exc)
    return out


# -- inference --------------------------------------------------------------------


def _inference_convlens(batch: int) -> Runner:
    import convlens as cl

    model = convlens_model()
    model.eval()
    x = load_data()["test_x"][:batch]

    def step():
        with cl.no_grad():
            return model(x)

    return Runner(step, lambda: {"out": np.asarray(step().data, np.float64)})


def _inference_torch(batch: int) -> Runner:
    import torch

    model = torch_model()
    copy_weights(_initial_state(), model)
    model.eval()
    x = torch.from_numpy(load_data()["test_x"][:batch])

    def step():
        with torch.no_grad():
            return model(x)

    return Runner(step, lambda: {"out": step().numpy().astype(np.float64)})


def inference_workload(batch: int) -> OpWorkload:
    makers = {"convlens": _inference_convlens, "torch": _inference_torch}
    what = "throughput" if batch > 1 else "latency"
    return OpWorkload(
        name=f"lenet_infer_b{batch}",
        group="inference",
        label=f"LeNet-5 inference {what}, batch {batch} (eval, no_grad)",
        make=lambda fw: makers[fw](batch),
        items=batch,
    )


def workloads() -> list[OpWorkload]:
    return [inference_workload(1000), inference_workload(1)]

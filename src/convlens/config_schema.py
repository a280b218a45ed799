"""What a checkpoint may ask for, checked before anything is built or allocated.

A checkpoint's JSON describes a model (``model.get_config()``), a training
config and where training stands; its safetensors headers declare tensor shapes.
All of it comes from a file, so all of it is checked here against the known
models, their arguments and sane ranges *before* a model is built or a tensor
is read: a file asking for a 10^10-weight layer is refused in microseconds with
one line, instead of allocating gigabytes and failing later.

Every refusal is a :class:`ConfigError` (a ``ValueError``) in the project's one
style, naming the field by its path in the JSON::

    checkpoint.json: model.kwargs.num_classes must be an int in [1, 10000]. Received: num_classes=0

The checks:

- :func:`check_architecture`: the model config. Factory models (``lenet5``,
  ``lecture_cnn``, ...) by name and keyword arguments; layer-by-layer configs
  (``{"class": "Conv2d", "args": {...}}`` and ``Sequential`` lists) by the
  layers' constructor arguments, each with its type and range. The total number
  of weights and buffers is computed from the arguments alone and must stay
  under :data:`MAX_PARAMETERS`.
- :func:`check_training_config`: the settings ``convlens train`` records (lr,
  momentum, batch size, ``classes`` of the right length, a finite ``mean``, a
  finite ``std > 0``, ...).
- :func:`check_progress`: epoch and step counters (``>= 0``, not past the run),
  the history records, the partial-epoch sums and the scheduler state.
- :func:`check_optimizer_meta`: the optimizer's type, hyperparameters and indices.

The shapes a safetensors file declares are checked in :mod:`convlens.tensor_header`.

>>> check_architecture({"factory": "lenet5", "kwargs": {"variant": "modern"}}).parameters
61706
>>> huge = {"class": "Linear", "args": {"in_features": 10**6, "out_features": 10**6}}
>>> try:
...     check_architecture(huge)
... except ConfigError as error:
...     print(error)  # doctest: +NORMALIZE_WHITESPACE
checkpoint: model asks for 1,000,001,000,000 weights and buffers,
more than the limit of 50,000,000. Received: class='Linear'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._checks import (
    SHOWN,
    Choice,
    ConfigError,
    Int,
    Ints,
    Maybe,
    Real,
    as_dict,
    as_list,
    fail,
    flag,
    is_int,
    text,
)
from .config_schema_tasks import TASK_FACTORIES, TASK_LAYERS

__all__ = [
    "MAX_CLASSES",
    "MAX_PARAMETERS",
    "Architecture",
    "ConfigError",
    "check_architecture",
    "check_optimizer_meta",
    "check_progress",
    "check_training_config",
    "known_models",
]

# Limits. LeNet-5 has 61,706 weights, the lecture's networks about 0.65M and 1M: a
# model 50x larger than the largest of them is not one this NumPy engine trains.
MAX_PARAMETERS = 50_000_000
MAX_CLASSES = 10_000
MAX_CHANNELS = 4096
MAX_FEATURES = 1 << 20
MAX_KERNEL = 64  # kernel, stride, dilation and padding sizes
MAX_SIDE = 4096  # input height and width
MAX_MODULES = 512
MAX_DEPTH = 8
MAX_EPOCHS = 100_000
MAX_STEPS = 10**9
MAX_BATCH = 1 << 16
MAX_META_BYTES = 1 << 25  # a checkpoint's JSON, history included


class Architecture(NamedTuple):
    """What :func:`check_architecture` learnt: weights+buffers, outputs (None if unknown)."""

    parameters: int
    outputs: int | None


# ----------------------------------------------------------------------- layer arguments
def _padding(dims: int) -> Callable[[Any, str, str], Any]:
    numbers = Ints(dims, 0, MAX_KERNEL)

    def check(value: Any, where: str, path: str) -> Any:
        if isinstance(value, str):
            return Choice(("same", "valid"))(value, where, path)
        return numbers(value, where, path)

    return check


def _output_size(value: Any, where: str, path: str) -> Any:
    items = value if isinstance(value, list | tuple) else [value]
    side = Maybe(Int(1, MAX_SIDE))
    if len(items) not in (1, 2):
        raise fail(where, path, "an int, None, or a pair of them", value)
    return tuple(side(v, where, path) for v in items)


# --------------------------------------------------------------------------------- layers
@dataclass(frozen=True)
class Layer:
    """A layer class: its arguments' checks, the required ones, and its size (weights + buffers)."""

    arguments: Mapping[str, Callable[[Any, str, str], Any]]
    required: tuple[str, ...] = ()
    size: Callable[[dict[str, Any]], int] = lambda args: 0
    outputs: Callable[[dict[str, Any]], int | None] = lambda args: None


def _conv(dims: int) -> Layer:
    def size(a: dict[str, Any]) -> int:
        groups = a.get("groups", 1)
        if a["in_channels"] % groups or a["out_channels"] % groups:
            raise ConfigError(
                f"in_channels ({a['in_channels']}) and out_channels ({a['out_channels']}) "
                f"must be divisible by groups. Received: groups={groups}"
            )
        kernel = math.prod(a["kernel_size"])
        bias = a["out_channels"] if a.get("bias", True) else 0
        return a["out_channels"] * (a["in_channels"] // groups) * kernel + bias

    return Layer(
        {
            "in_channels": Int(1, MAX_CHANNELS),
            "out_channels": Int(1, MAX_CHANNELS),
            "kernel_size": Ints(dims, 1, MAX_KERNEL),
            "stride": Ints(dims, 1, MAX_KERNEL),
            "padding": _padding(dims),
            "dilation": Ints(dims, 1, MAX_KERNEL),
            "groups": Int(1, MAX_CHANNELS),
            "bias": flag,
            "padding_mode": Choice(("zeros", "reflect", "replicate", "circular")),
        },
        ("in_channels", "out_channels", "kernel_size"),
        size,
    )


def _conv_transpose(dims: int) -> Layer:
    base = _conv(dims)
    arguments = {
        **base.arguments,
        "padding": Ints(dims, 0, MAX_KERNEL),
        "output_padding": Ints(dims, 0, MAX_KERNEL),
    }
    del arguments["padding_mode"]
    return Layer(arguments, base.required, base.size)


def _max_pool(dims: int) -> Layer:
    return Layer(
        {
            "kernel_size": Ints(dims, 1, MAX_KERNEL),
            "stride": Maybe(Ints(dims, 1, MAX_KERNEL)),
            "padding": Ints(dims, 0, MAX_KERNEL),
            "dilation": Ints(dims, 1, MAX_KERNEL),
            "ceil_mode": flag,
        },
        ("kernel_size",),
    )


def _avg_pool(dims: int) -> Layer:
    return Layer(
        {
            "kernel_size": Ints(dims, 1, MAX_KERNEL),
            "stride": Maybe(Ints(dims, 1, MAX_KERNEL)),
            "padding": Ints(dims, 0, MAX_KERNEL),
            "ceil_mode": flag,
            "count_include_pad": flag,
        },
        ("kernel_size",),
    )


def _batch_norm() -> Layer:
    return Layer(
        {
            "num_features": Int(1, MAX_FEATURES),
            "eps": Real(0, 1, open_low=True),
            "momentum": Maybe(Real(0, 1)),
            "affine": flag,
            "track_running_stats": flag,
        },
        ("num_features",),
        lambda a: (
            (2 * a.get("affine", True) + 2 * a.get("track_running_stats", True)) * a["num_features"]
            + a.get("track_running_stats", True)
        ),
    )


def _partial_connections(value: Any, where: str, path: str) -> tuple[tuple[int, ...], ...]:
    rows = as_list(value, where, path, MAX_CHANNELS)
    if not all(isinstance(r, list) and 0 < len(r) <= MAX_CHANNELS and all(map(is_int, r)) for r in rows):
        raise fail(where, path, "a list, per output map, of input map indices", value)
    return tuple(tuple(r) for r in rows)


def _partial_conv_size(a: dict[str, Any]) -> int:
    connections = a.get("connections")
    if connections is None:
        from .models.lenet import C3_CONNECTIONS

        connections = C3_CONNECTIONS
    inputs, outputs = a["in_channels"], a["out_channels"]
    if len(connections) != outputs or any(not 0 <= i < inputs for row in connections for i in row):
        raise ConfigError(
            f"PartialConv2d: connections must list, for each of the {outputs} output maps, input maps "
            f"in [0, {inputs}). Received: connections={str(connections)[:SHOWN]}"
        )
    return sum(len(row) for row in connections) * a["kernel_size"] ** 2 + outputs


_DIM = Int(-8, 8)
LAYERS: dict[str, Layer] = {
    "Conv1d": _conv(1),
    "Conv2d": _conv(2),
    "Conv3d": _conv(3),
    **{f"ConvTranspose{d}d": _conv_transpose(d) for d in (1, 2, 3)},
    "Linear": Layer(
        {"in_features": Int(1, MAX_FEATURES), "out_features": Int(1, MAX_FEATURES), "bias": flag},
        ("in_features", "out_features"),
        lambda a: (a["in_features"] + a.get("bias", True)) * a["out_features"],
        lambda a: a["out_features"],
    ),
    "Identity": Layer({}),
    "Flatten": Layer({"start_dim": _DIM, "end_dim": _DIM}),
    "ReLU": Layer({"inplace": flag}),
    "Tanh": Layer({}),
    "Sigmoid": Layer({}),
    "ScaledTanh": Layer({"amplitude": Real(), "slope": Real()}),
    "Softmax": Layer({"dim": Maybe(_DIM)}),
    "LogSoftmax": Layer({"dim": Maybe(_DIM)}),
    "Dropout": Layer({"p": Real(0, 1), "inplace": flag}),
    **{f"MaxPool{d}d": _max_pool(d) for d in (1, 2, 3)},
    **{f"AvgPool{d}d": _avg_pool(d) for d in (1, 2, 3)},
    "AdaptiveAvgPool2d": Layer({"output_size": _output_size}, ("output_size",)),
    "AdaptiveMaxPool2d": Layer({"output_size": _output_size}, ("output_size",)),
    **{f"BatchNorm{d}d": _batch_norm() for d in (1, 2, 3)},
    # the published LeNet-5's own layers (convlens.models.lenet)
    "Subsampling2d": Layer(
        {"channels": Int(1, MAX_CHANNELS), "kernel_size": Int(1, MAX_KERNEL)},
        ("channels",),
        lambda a: 2 * a["channels"],
    ),
    "PartialConv2d": Layer(
        {
            "in_channels": Int(1, MAX_CHANNELS),
            "out_channels": Int(1, MAX_CHANNELS),
            "kernel_size": Int(1, MAX_KERNEL),
            "connections": _partial_connections,
        },
        ("in_channels", "out_channels", "kernel_size"),
        _partial_conv_size,
    ),
    "EuclideanRBF": Layer(
        {"in_features": Int(1, MAX_FEATURES), "out_features": Int(1, MAX_FEATURES)},
        (),
        lambda a: a.get("in_features", 84) * a.get("out_features", 10),
        lambda a: a.get("out_features", 10),
    ),
    "LeNet5Classic": Layer(
        {"num_classes": Int(1, 10)},
        (),
        lambda a: 60_000 + 84 * a.get("num_classes", 10),
        lambda a: a.get("num_classes", 10),
    ),
    **{name: Layer(*spec) for name, spec in TASK_LAYERS.items()},
}


# ------------------------------------------------------------------------------- factories
@dataclass(frozen=True)
class Factory:
    """A model made by name (``models.get``): its keyword arguments and its size."""

    arguments: Mapping[str, Callable[[Any, str, str], Any]]
    size: Callable[[dict[str, Any]], int]


_NUM_CLASSES = Int(1, MAX_CLASSES)


def _lenet5_size(kwargs: dict[str, Any]) -> int:
    classes = kwargs.get("num_classes", 10)
    if kwargs.get("variant", "modern") == "classic":
        if classes > 10:
            raise ConfigError(
                "the classic LeNet-5 has RBF prototypes for the 10 digits only. "
                f"Received: num_classes={classes}"
            )
        return 60_000 + 84 * classes  # the RBF prototypes are 84 per class
    return 60_856 + 85 * classes  # fc3 is 84 -> num_classes, the rest is fixed


FACTORIES: dict[str, Factory] = {
    "lenet5": Factory({"variant": Choice(("modern", "classic")), "num_classes": _NUM_CLASSES}, _lenet5_size),
    "lenet5_classic": Factory({"num_classes": Int(1, 10)}, lambda k: 60_000 + 84 * k.get("num_classes", 10)),
    "lecture_cnn": Factory(
        {"num_classes": _NUM_CLASSES}, lambda k: 502_800 + 14_401 * k.get("num_classes", 10)
    ),
    "lecture_mlp": Factory(
        {"num_classes": _NUM_CLASSES}, lambda k: 1_020_300 + 101 * k.get("num_classes", 10)
    ),
    **{name: Factory(*spec) for name, spec in TASK_FACTORIES.items()},
}


def known_models() -> list[str]:
    """The model names a checkpoint may name (``-`` and ``_`` alike)."""
    return sorted(FACTORIES)


def _canonical_model(name: str) -> str:
    return name.lower().replace("-", "_")


# ----------------------------------------------------------------------------- architecture
def check_architecture(config: Any, where: str = "checkpoint") -> Architecture:
    """Check a model config (``model.get_config()``) against the schema, without building it.

    Returns the number of weights and buffers the model would have and its number
    of outputs (the classifier head, when it can be told). Raises :class:`ConfigError`.
    """
    counter = _Counter(where)
    architecture = counter.module(config, "model", 0)
    if architecture.parameters > MAX_PARAMETERS:
        kind = config.get("factory") or config.get("class") if isinstance(config, dict) else None
        raise ConfigError(
            f"{where}: model asks for {architecture.parameters:,} weights and buffers, more than the "
            f"limit of {MAX_PARAMETERS:,}. Received: {'factory' if 'factory' in config else 'class'}={kind!r}"
        )
    return architecture


class _Counter:
    """Walks a model config, checking every layer and counting its weights and modules."""

    def __init__(self, where: str):
        self.where, self.modules = where, 0

    def module(self, config: Any, path: str, depth: int) -> Architecture:
        where = self.where
        as_dict(config, where, path)
        self.modules += 1
        if self.modules > MAX_MODULES or depth > MAX_DEPTH:
            raise ConfigError(
                f"{where}: the model has more than {MAX_MODULES} modules or nests deeper than {MAX_DEPTH}. "
                f"Received: {path}"
            )
        if "factory" in config:
            return self.factory(config, path)
        if config.get("class") == "Sequential" and "modules" in config:
            return self.sequential(config, path, depth)
        name = config.get("class")
        if not isinstance(name, str) or name not in LAYERS:
            raise fail(where, f"{path}.class", "a layer class of convlens.nn or convlens.models", name)
        layer = LAYERS[name]
        args = self.arguments(config.get("args", {}), layer.arguments, layer.required, f"{path}.args")
        try:
            return Architecture(layer.size(args), layer.outputs(args))
        except ConfigError as error:
            raise ConfigError(f"{where}: {path} ({name}): {error}") from None

    def factory(self, config: dict[str, Any], path: str) -> Architecture:
        name = config["factory"]
        if not isinstance(name, str) or _canonical_model(name) not in FACTORIES:
            raise fail(self.where, f"{path}.factory", "one of " + ", ".join(known_models()), name)
        factory = FACTORIES[_canonical_model(name)]
        kwargs = self.arguments(config.get("kwargs", {}), factory.arguments, (), f"{path}.kwargs")
        try:
            return Architecture(factory.size(kwargs), kwargs.get("num_classes", 10))
        except ConfigError as error:
            raise ConfigError(f"{self.where}: {path} ({name}): {error}") from None

    def sequential(self, config: dict[str, Any], path: str, depth: int) -> Architecture:
        children = as_list(config["modules"], self.where, f"{path}.modules", MAX_MODULES)
        total, outputs, names = 0, None, set()
        for index, child in enumerate(children):
            where = f"{path}.modules[{index}]"
            if not isinstance(child, list) or len(child) != 2:
                raise fail(self.where, where, "a pair [name, module config]", child)
            name = text(64)(child[0], self.where, f"{where}[0]")
            if "." in name or name in names:
                raise fail(self.where, f"{where}[0]", "a unique module name without dots", name)
            names.add(name)
            part = self.module(child[1], f"{where}[1]", depth + 1)
            total += part.parameters
            outputs = part.outputs if part.outputs is not None else outputs
        return Architecture(total, outputs)

    def arguments(
        self,
        given: Any,
        checks: Mapping[str, Callable[[Any, str, str], Any]],
        required: Sequence[str],
        path: str,
    ) -> dict[str, Any]:
        as_dict(given, self.where, path)
        unknown = sorted(set(given) - set(checks))
        if unknown:
            allowed = ", ".join(checks) or "none"
            raise fail(
                self.where,
                f"{path}.{unknown[0]}",
                f"absent (allowed arguments: {allowed})",
                given[unknown[0]],
            )
        missing = [name for name in required if name not in given]
        if missing:
            raise ConfigError(f"{self.where}: {path} lacks the required argument {missing[0]!r}")
        return {name: checks[name](value, self.where, f"{path}.{name}") for name, value in given.items()}


# ------------------------------------------------------------------------ training config
DATASETS = ("mnist", "fashion-mnist", "mnist-5k", "fsdd")  # convlens.data.DATASETS (not imported: no cycle)
MIXED_SCENES = ("mnist-5k+fashion-mnist", "mnist+fashion-mnist")  # the mixed ones of convlens.scenes.SOURCES


def _model_name(value: Any, where: str, path: str) -> str:
    if not isinstance(value, str) or _canonical_model(value) not in FACTORIES:
        raise fail(where, path, "one of " + ", ".join(known_models()), value)
    return value


def _input_shape(value: Any, where: str, path: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise fail(where, path, "[channels, height, width] or [channels, length]", value)
    channels = Int(1, MAX_CHANNELS)(value[0], where, f"{path}[0]")
    side = Int(1, MAX_SIDE if len(value) == 3 else MAX_FEATURES)
    return (channels, *(side(v, where, f"{path}[{i}]") for i, v in enumerate(value[1:], 1)))


def _classes(value: Any, where: str, path: str) -> list[str]:
    names = as_list(value, where, path, MAX_CLASSES)
    if not names or not all(isinstance(n, str) and 0 < len(n) <= 100 for n in names):
        raise fail(where, path, f"a list of 1 to {MAX_CLASSES} class names", value)
    return names


TRAINING_FIELDS: dict[str, Callable[[Any, str, str], Any]] = {
    "model": _model_name,
    "task": Choice(("spoken-digits", "segment")),
    "dataset": Choice((*DATASETS, *MIXED_SCENES)),
    "epochs": Int(1, MAX_EPOCHS),
    "batch_size": Int(1, MAX_BATCH),
    "optimizer": Choice(("sgd", "adam")),
    "lr": Real(0, open_low=True),
    "momentum": Real(0, 1, open_high=True),
    "schedule": Choice(("cosine", "none")),
    "seed": Int(0, 2**32 - 1),
    "augment": flag,
    "limit": Maybe(Int(1, MAX_STEPS)),
    "mean": Real(),
    "std": Real(0, open_low=True),
    "input_shape": _input_shape,
    "pad": Int(0, MAX_KERNEL),
    "classes": _classes,
}


def check_training_config(
    config: Any,
    where: str = "config",
    *,
    outputs: int | None = None,
    required: Sequence[str] = (),
) -> dict[str, Any]:
    """Check the settings ``convlens train`` records (see :data:`TRAINING_FIELDS`).

    Known fields are checked when present (other fields are the caller's);
    ``required`` fields must be present; ``classes`` must have ``outputs`` names
    when the model's head size is known. Returns ``config``.
    """
    as_dict(config, where, "config")
    for name in required:
        if config.get(name) is None and name not in ("limit",):
            raise ConfigError(
                f"{where}: the training config lacks {name!r} (not written by 'convlens train'?)"
            )
    for name, check in TRAINING_FIELDS.items():
        if name in config:
            check(config[name], where, name)
    classes = config.get("classes")
    if outputs is not None and classes is not None and len(classes) != outputs:
        raise ConfigError(
            f"{where}: classes must name each of the model's {outputs} outputs. "
            f"Received: {len(classes)} classes={str(classes)[:SHOWN]}"
        )
    return config


# -------------------------------------------------------------------------------- progress
_RECORD_FIELDS = {
    "epoch": Int(0, MAX_EPOCHS),
    "train_loss": Real(),
    "train_acc": Real(0, 1),
    "val_loss": Maybe(Real()),
    "val_acc": Maybe(Real(0, 1)),
    "seconds": Real(0),
    "images_per_sec": Real(0),
    "lr": Maybe(Real(0)),
}
_PARTIAL_FIELDS = {
    "loss_sum": Real(),
    "correct": Int(0, MAX_STEPS * MAX_BATCH),
    "seen": Int(0, MAX_STEPS * MAX_BATCH),
    "seconds": Real(0),
}
_SCHEDULER_FIELDS = {
    "T_max": Int(1, MAX_EPOCHS),
    "eta_min": Real(0),
    "step_size": Int(1, MAX_EPOCHS),
    "gamma": Real(0),
    "last_epoch": Int(-1, MAX_EPOCHS),
    "base_lrs": "lrs",
    "_last_lr": "lrs",
}


def check_progress(extra: Any, where: str = "checkpoint", *, epochs: int | None = None) -> dict[str, Any]:
    """Check where a training checkpoint stands: ``epoch``, ``step``, history, partial sums, scheduler.

    ``epoch`` (epochs completed) must be in [0, ``epochs``] when the run's length is known.
    """
    as_dict(extra, where, "extra")
    epoch = Int(0, MAX_EPOCHS)(extra.get("epoch", 0), where, "extra.epoch")
    Int(0, MAX_STEPS)(extra.get("step", 0), where, "extra.step")
    if epochs is not None and epoch > epochs:
        raise ConfigError(
            f"{where}: extra.epoch must be at most the run's {epochs} epochs. Received: epoch={epoch}"
        )
    history = as_dict(extra.get("history", {}), where, "extra.history")
    records = as_list(history.get("epochs", []), where, "extra.history.epochs", MAX_EPOCHS)
    for index, record in enumerate(records):
        _fields(record, _RECORD_FIELDS, where, f"extra.history.epochs[{index}]", required=("epoch",))
    if "interrupted" in history:
        flag(history["interrupted"], where, "extra.history.interrupted")
    Maybe(Choice(("SIGINT", "SIGTERM")))(history.get("stopped_by"), where, "extra.history.stopped_by")
    partial = _fields(extra.get("partial") or {}, _PARTIAL_FIELDS, where, "extra.partial")
    if partial.get("correct", 0) > partial.get("seen", 0):
        raise fail(where, "extra.partial.correct", "at most extra.partial.seen", partial["correct"])
    if extra.get("scheduler") is not None:
        _check_scheduler(extra["scheduler"], where)
    return extra


def _fields(
    value: Any, checks: Mapping[str, Any], where: str, path: str, required: Sequence[str] = ()
) -> dict[str, Any]:
    as_dict(value, where, path)
    for name in value:
        if name not in checks:
            raise fail(where, f"{path}.{name}", "absent (allowed: " + ", ".join(checks) + ")", value[name])
    for name in required:
        if name not in value:
            raise ConfigError(f"{where}: {path} lacks {name!r}")
    for name, item in value.items():
        checks[name](item, where, f"{path}.{name}")
    return value


def _check_scheduler(state: Any, where: str) -> None:
    as_dict(state, where, "extra.scheduler")
    for name, value in state.items():
        check = _SCHEDULER_FIELDS.get(name)
        path = f"extra.scheduler.{name}"
        if check is None:
            raise fail(where, path, "absent (allowed: " + ", ".join(_SCHEDULER_FIELDS) + ")", value)
        if check == "lrs":
            for i, lr in enumerate(as_list(value, where, path, 1024)):
                Real(0)(lr, where, f"{path}[{i}]")
        else:
            check(value, where, path)


# ------------------------------------------------------------------------------- optimizer
_GROUP_FIELDS = {
    "lr": Real(0),
    "initial_lr": Real(0),
    "momentum": Real(0),
    "dampening": Real(),
    "weight_decay": Real(0),
    "nesterov": flag,
    "maximize": flag,
    "amsgrad": flag,
    "eps": Real(0, open_low=True),
    "betas": "betas",
}
_STATE_SCALARS = {"step": Int(0, MAX_STEPS * MAX_EPOCHS)}
OPTIMIZER_BUFFERS = ("momentum_buffer", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")


def check_optimizer_meta(meta: Any, parameters: int, where: str = "checkpoint") -> dict[str, Any]:
    """Check the JSON half of a saved optimizer for a model with ``parameters`` parameter tensors."""
    as_dict(meta, where, "optimizer")
    Choice(("SGD", "Adam"))(meta.get("type"), where, "optimizer.type")
    groups = as_list(meta.get("param_groups"), where, "optimizer.param_groups", max(parameters, 1))
    seen: set[int] = set()
    for g, group in enumerate(groups):
        path = f"optimizer.param_groups[{g}]"
        as_dict(group, where, path)
        for i, index in enumerate(as_list(group.get("params"), where, f"{path}.params", parameters)):
            Int(0, parameters - 1)(index, where, f"{path}.params[{i}]")
            if index in seen:
                raise fail(where, f"{path}.params[{i}]", "an index listed once", index)
            seen.add(index)
        for name, value in group.items():
            _group_field(name, value, where, f"{path}.{name}")
    state = as_dict(meta.get("state", {}), where, "optimizer.state")
    for key, scalars in state.items():
        if not (isinstance(key, str) and key.isdigit() and int(key) < parameters):
            raise fail(where, "optimizer.state", f"keyed by parameter indices in [0, {parameters})", key)
        _fields(scalars, _STATE_SCALARS, where, f"optimizer.state.{key}")
    return meta


def _group_field(name: str, value: Any, where: str, path: str) -> None:
    if name == "params":
        return
    check = _GROUP_FIELDS.get(name)
    if check == "betas":
        if not isinstance(value, list) or len(value) != 2:
            raise fail(where, path, "a pair of numbers in [0, 1)", value)
        for i, beta in enumerate(value):
            Real(0, 1, open_high=True)(beta, where, f"{path}[{i}]")
    elif check is not None:
        check(value, where, path)
    elif not (value is None or isinstance(value, str | bool | int | float)):
        raise fail(where, path, "a JSON scalar", value)

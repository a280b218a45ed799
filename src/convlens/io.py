"""Checkpoints: weights in safetensors, architecture and training config in JSON.

A checkpoint at ``path`` is a set of files next to each other::

    run/lenet5.safetensors        the model's state_dict (PyTorch key names)
    run/lenet5.optim.safetensors  optimizer state arrays (only if an optimizer was saved)
    run/lenet5.json               architecture (model.get_config()), training config,
                                  convlens version, optimizer scalars, SHA-256 of the above

``path`` may be given with or without those suffixes (``run/lenet5``,
``run/lenet5.json`` and ``run/lenet5.safetensors`` name the same checkpoint); an
existing directory means ``<directory>/model``. The weights file is a plain
safetensors file whose keys are the model's ``state_dict`` keys, so it loads
into the equivalent PyTorch model with ``safetensors.torch.load_file``.

Every file is written atomically (a temp file in the same directory, then
``os.replace``), arrays first and the JSON last: the JSON records the SHA-256 of
the array files, so a checkpoint interrupted mid-save, or half overwritten, is
detected on load instead of silently mixing two states.

A checkpoint saved again and again (``save(..., versioned=True)``, which every
training checkpoint is) is kept as *generations* instead (:mod:`convlens.generations`):
``run/lenet5.d/gen-000012/`` holds the three files, made current in one atomic step,
and the previous generation stays until the next one is complete; a stop at any
moment leaves a loadable checkpoint, and loading falls back to the previous
generation, with a warning, if the current one is damaged. ``run/lenet5.safetensors``
is then the current weights, for other tools; the path spellings above still name
the checkpoint, and the plain three-file layout still loads.

Nothing a file declares is trusted: the JSON is checked against the schema of the
known models and settings (:mod:`convlens.config_schema`) before a model is built,
and the tensor shapes a safetensors header declares against the model's
(:mod:`convlens.tensor_header`) before a tensor is read.

>>> import tempfile, os, convlens as cl
>>> from convlens import nn
>>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
>>> path = os.path.join(tempfile.mkdtemp(), "tiny")
>>> _ = cl.save(model, path, config={"epoch": 3})
>>> sorted(os.listdir(os.path.dirname(path)))
['tiny.json', 'tiny.safetensors']
>>> restored = cl.load(path)
>>> [k for k in restored.state_dict()]
['0.weight', '0.bias', '2.weight', '2.bias']

Resuming training::

    ckpt = cl.io.load(path, with_optimizer=True)      # a Checkpoint
    model = ckpt.model
    optimizer = cl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer.load_state_dict(ckpt.optimizer_state)
    start_epoch = ckpt.config["epoch"] + 1

Training checkpoints (:func:`save_checkpoint`, :func:`load_checkpoint`) are such a
checkpoint whose ``extra`` also holds where training stands (epoch, step within the
epoch, the :class:`~convlens.history.History`, the scheduler's state): what
``convlens.train.fit`` writes after every epoch and on Ctrl-C, and resumes from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import config_schema as schema
from . import generations
from ._version import __version__
from .history import History
from .tensor_header import check_tensors, expected_optimizer_tensors, read_safetensors_header

__all__ = [
    "CHECKPOINT_KIND",
    "CHECKPOINT_NAME",
    "Checkpoint",
    "CheckpointFiles",
    "checkpoint_files",
    "load",
    "load_checkpoint",
    "load_into",
    "resolve",
    "save",
    "save_checkpoint",
    "write_atomically",
]

FORMAT = "convlens.checkpoint"
FORMAT_VERSION = 1
_SUFFIXES = (".optim.safetensors", ".safetensors", ".json")
CHECKPOINT_KIND = "convlens-train-checkpoint"  # ``extra["kind"]`` of a training checkpoint
CHECKPOINT_NAME = "checkpoint.safetensors"  # the one ``convlens train`` writes in its output directory


class CheckpointFiles(NamedTuple):
    """The paths of one checkpoint's files."""

    weights: Path
    optimizer: Path
    meta: Path


@dataclass
class Checkpoint:
    """Everything a checkpoint holds, for resuming training.

    Attributes:
        model: the rebuilt model with its weights (None for :func:`load_into`, which
            loads into the model you pass).
        config: the training config given to :func:`save` (epoch, lr, ...).
        optimizer_state: ``optimizer.state_dict()`` as saved (feed it to
            ``optimizer.load_state_dict``), or None.
        optimizer_type: the optimizer's class name, e.g. ``"SGD"``, or None.
        extra: anything else given to :func:`save`.
        architecture: ``model.get_config()`` as saved.
        convlens_version: the version that wrote it.
        files: the checkpoint's paths.
    """

    model: Any
    config: dict[str, Any]
    optimizer_state: dict[str, Any] | None
    optimizer_type: str | None
    extra: dict[str, Any]
    architecture: dict[str, Any]
    convlens_version: str
    files: CheckpointFiles = field(repr=False)


def checkpoint_files(path: str | os.PathLike) -> CheckpointFiles:
    """The files of the checkpoint named by ``path`` (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model"
    name = path.name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    base = path.with_name(name)
    return CheckpointFiles(
        *(base.with_name(name + s) for s in (".safetensors", ".optim.safetensors", ".json"))
    )


def resolve(path: str | os.PathLike) -> CheckpointFiles:
    """The files :func:`load` reads for ``path``: the current (or, with a
    :class:`~convlens.generations.GenerationWarning`, the previous complete) generation's
    when the checkpoint has generations, else the plain files :func:`checkpoint_files` names.

    Raises:
        convlens.generations.NoCompleteGenerationError: no generation is complete.
    """
    files = checkpoint_files(path)
    store = generations.store_for(_base(files))
    if not store.is_dir():
        return files
    return checkpoint_files(generations.choose(store) / _base(files).name)


def _base(files: CheckpointFiles) -> Path:
    return files.meta.with_name(files.meta.name[: -len(".json")])


def save(
    model: Any,
    path: str | os.PathLike,
    config: dict[str, Any] | None = None,
    optimizer: Any = None,
    extra: dict[str, Any] | None = None,
    *,
    versioned: bool = False,
) -> CheckpointFiles:
    """Save ``model`` (weights + architecture), and optionally training state, at ``path``.

    Args:
        model: an ``nn.Module`` (anything with ``state_dict()`` and ``get_config()``).
        path: the checkpoint's name, e.g. ``"run/lenet5"``; parent directories are created.
        config: JSON-able training config (epoch, lr, data set, ...), returned by
            ``load(..., with_optimizer=True).config``.
        optimizer: an optimizer whose ``state_dict()`` is saved for resuming.
        extra: any other JSON-able data (metrics, history).
        versioned: write a new generation (see the module docstring), keeping the
            previous one. A checkpoint that already has generations always gets a new one.

    Returns:
        The paths written.
    """
    files = checkpoint_files(path)
    files.meta.parent.mkdir(parents=True, exist_ok=True)
    for method in ("state_dict", "get_config"):
        if not callable(getattr(model, method, None)):
            raise TypeError(
                f"save: model must have {method}() (an nn.Module). Received: model of type "
                f"{type(model).__name__}"
            )
    # order="C", not ascontiguousarray: that turns a 0-d buffer (num_batches_tracked) into shape (1,)
    weights = {key: np.asarray(_array(value), order="C") for key, value in model.state_dict().items()}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "convlens_version": __version__,
        "model": model.get_config(),
        "config": config or {},
        "extra": extra or {},
    }
    _to_json(meta)  # fail on a non-JSON config before anything is written
    payloads = {
        files.weights.name: _safetensors().save(weights, metadata={"producer": f"convlens {__version__}"})
    }
    meta["weights"] = {"file": files.weights.name, "sha256": _sha256(payloads[files.weights.name])}
    if optimizer is not None:
        arrays, meta["optimizer"] = _split_optimizer_state(optimizer)
        payloads[files.optimizer.name] = _safetensors().save(arrays)
        meta["optimizer"]["file"] = files.optimizer.name
        meta["optimizer"]["sha256"] = _sha256(payloads[files.optimizer.name])
    payloads[files.meta.name] = _to_json(meta).encode()
    store = generations.store_for(_base(files))
    if versioned or store.is_dir():
        return _save_generation(files, store, payloads)
    for name, payload in payloads.items():  # arrays first, the JSON that vouches for them last
        write_atomically(files.meta.with_name(name), payload)
    if optimizer is None:  # a stale optimizer file from an earlier save would mislead
        with contextlib.suppress(FileNotFoundError):
            files.optimizer.unlink()
    return files


def _save_generation(files: CheckpointFiles, store: Path, payloads: dict[str, bytes]) -> CheckpointFiles:
    """Write ``payloads`` as a new generation; keep ``files.weights`` as the current weights."""
    generation = generations.write(store, payloads)
    generations.link_atomically(generation / files.weights.name, files.weights)
    for stale in (files.meta, files.optimizer):  # a plain layout's files, now superseded
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    return checkpoint_files(generation / _base(files).name)


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def load(path: str | os.PathLike, with_optimizer: bool = False) -> Any:
    """Rebuild the model saved at ``path`` (``nn.from_config`` + ``load_state_dict``).

    Returns:
        The model; with ``with_optimizer=True`` a :class:`Checkpoint` (model,
        training config, optimizer state, extra) for resuming.

    Raises:
        FileNotFoundError: a file of the checkpoint is missing (named).
        ValueError: a file is corrupt, truncated, or does not belong with the others.
    """
    from . import nn

    files = resolve(path)
    meta = _read_meta(files)
    try:
        model = nn.from_config(meta["model"])
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(
            f"load: cannot rebuild the model described in {files.meta} ({error}). "
            f"Received: model={_describe(meta['model'])}"
        ) from error
    _load_weights(model, files, meta)
    if not with_optimizer:
        return model
    return _checkpoint(model, files, meta)


def load_into(model: Any, path: str | os.PathLike, optimizer: Any = None) -> Checkpoint:
    """Load the checkpoint at ``path`` into an existing ``model`` (and ``optimizer``).

    The checkpoint's architecture must equal ``model.get_config()``; otherwise
    ValueError says both, e.g. ``checkpoint is lenet5(variant='classic') but the
    model is lenet5(variant='modern')``.

    Returns:
        The :class:`Checkpoint` (with ``model=None``; the config tells where to resume).
    """
    files = resolve(path)
    meta = _read_meta(files)
    saved, current = meta["model"], json.loads(_to_json(model.get_config()))
    if saved != current:
        raise ValueError(
            f"load_into: checkpoint {files.meta} is {_describe(saved)} but the model is "
            f"{_describe(current)}. Received: first difference at {_first_difference(saved, current)}"
        )
    _load_weights(model, files, meta)
    checkpoint = _checkpoint(model, files, meta)
    checkpoint.model = None
    if optimizer is not None:
        if checkpoint.optimizer_state is None:
            raise ValueError(
                f"load_into: checkpoint {files.meta} holds no optimizer state to load. "
                f"Received: optimizer={type(optimizer).__name__}"
            )
        if checkpoint.optimizer_type != type(optimizer).__name__:
            raise ValueError(
                f"load_into: checkpoint {files.meta} holds {checkpoint.optimizer_type} state but the "
                f"optimizer is not. Received: optimizer={type(optimizer).__name__}"
            )
        optimizer.load_state_dict(checkpoint.optimizer_state)
    return checkpoint


def open_temp_beside(path: Path, suffix: str) -> tuple[int, str]:
    """A new hidden file beside ``path``, open for writing: ``(descriptor, name)``.

    Its mode is what a plain ``open()`` gives, 0666 less the umask (0644 usually):
    ``tempfile.mkstemp`` would make it 0600, and the renamed file would stay private.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
        with contextlib.suppress(FileExistsError):
            return os.open(name, flags, 0o666), str(name)
    raise FileExistsError(f"write: could not create a temporary file beside {path}")


def write_atomically(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a synced temp file in the same directory and ``os.replace``.

    Readers see the old file or the new one, never a partial write. The file gets
    the mode a plain ``open()`` would give it (0644 under the usual umask 022).
    """
    path = Path(path)
    descriptor, temp_name = open_temp_beside(path, ".tmp")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)


# ------------------------------------------------------------------ training checkpoints
def save_checkpoint(
    path: str | os.PathLike,
    model: Any,
    optimizer: Any = None,
    scheduler: Any = None,
    *,
    epoch: int = 0,
    step: int = 0,
    history: History | None = None,
    config: dict[str, Any] | None = None,
    partial: dict[str, Any] | None = None,
) -> Path:
    """Write weights, architecture, optimizer/scheduler state and the epoch counter as a new
    generation (:func:`save` with ``versioned=True``: the previous checkpoint stays until this
    one is complete).

    ``epoch``/``step`` say where training stands: ``step`` batches of epoch
    ``epoch`` (0-based) are done; ``step == 0`` means the epoch has not started.
    ``config`` (e.g. the command-line settings) is stored as the checkpoint's config;
    ``partial`` holds the running sums of an epoch stopped in the middle.
    """
    extra = {
        "kind": CHECKPOINT_KIND,
        "epoch": int(epoch),
        "step": int(step),
        "history": (history or History()).to_dict(),
        "partial": partial or {},
    }
    if scheduler is not None and hasattr(scheduler, "state_dict"):
        extra["scheduler"] = scheduler.state_dict()
    path = Path(path)
    save(
        model,
        path,
        config=_plain_json(config or {}),
        optimizer=optimizer,
        extra=_plain_json(extra),
        versioned=True,
    )
    return path


def load_checkpoint(path: str | os.PathLike, model: Any = None, optimizer: Any = None) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (or :func:`save`).

    ``path`` may also be a training output directory: its :data:`CHECKPOINT_NAME` is read.
    Returns a dict with ``model`` (the rebuilt model, or ``model`` with the weights
    loaded into it), ``optimizer_state`` (or ``None``), ``epoch``, ``step``,
    ``history`` (a :class:`~convlens.history.History`), ``config``, ``scheduler_state``
    and ``partial``. When ``optimizer`` is given its state is restored too.
    """
    path = training_checkpoint(path)
    if model is not None:
        checkpoint = load_into(model, path, optimizer=optimizer)
        checkpoint.model = model
    else:
        checkpoint = load(path, with_optimizer=True)
        if optimizer is not None and checkpoint.optimizer_state is not None:
            optimizer.load_state_dict(checkpoint.optimizer_state)
    extra = dict(checkpoint.extra or {})
    schema.check_progress(extra, _where(checkpoint.files.meta))  # also for checkpoints of cl.save
    return {
        "model": checkpoint.model,
        "optimizer_state": checkpoint.optimizer_state,
        "epoch": int(extra.get("epoch", 0)),
        "step": int(extra.get("step", 0)),
        "history": History.from_dict(extra.get("history") or {}),
        "config": dict(checkpoint.config or {}),
        "scheduler_state": extra.get("scheduler"),
        "partial": extra.get("partial") or {},
    }


def training_checkpoint(path: str | os.PathLike) -> Path:
    """``path`` itself, or the :data:`CHECKPOINT_NAME` inside it when ``path`` is a directory."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def _plain_json(value: Any) -> Any:
    """``value`` with NumPy scalars as Python numbers and tuples as lists (JSON's types)."""
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- helpers


def _array(value: Any) -> np.ndarray:
    return np.asarray(getattr(value, "data", value))


def _to_json(meta: dict[str, Any]) -> str:
    def default(value: Any) -> Any:
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        raise TypeError(
            f"save: cannot store {type(value).__name__} in a checkpoint's JSON. Received: {value!r}"
        )

    return json.dumps(meta, indent=2, default=default, allow_nan=True) + "\n"


def _split_optimizer_state(optimizer: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays (safetensors keys ``state.<index>.<name>``) and a JSON-able rest."""
    state_dict = optimizer.state_dict()
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, state in state_dict["state"].items():
        scalars[str(index)] = {}
        for name, value in state.items():
            if isinstance(value, np.ndarray) or hasattr(value, "data"):
                arrays[f"state.{index}.{name}"] = np.asarray(_array(value), order="C")
            else:
                scalars[str(index)][name] = value
    return arrays, {
        "type": type(optimizer).__name__,
        "param_groups": state_dict["param_groups"],
        "state": scalars,
    }


def _read_meta(files: CheckpointFiles) -> dict[str, Any]:
    """The checkpoint's JSON, its size bounded and its model checked against the schema."""
    if not files.meta.is_file():
        raise FileNotFoundError(f"load: checkpoint file not found. Received: path={str(files.meta)!r}")
    where = _where(files.meta)
    size = files.meta.stat().st_size
    if size > schema.MAX_META_BYTES:
        raise ValueError(
            f"load: {where} is {size:,} bytes, more than a checkpoint's JSON may be "
            f"({schema.MAX_META_BYTES:,}). Received: path={str(files.meta)!r}"
        )
    try:
        meta = json.loads(files.meta.read_bytes())
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # ValueError: JSONDecodeError
        reason = str(error) if not isinstance(error, RecursionError) else "nested too deeply"
        raise ValueError(
            f"load: {where} is not valid JSON: the checkpoint is corrupt. Received: {reason[:120]}"
        ) from None
    if (
        not isinstance(meta, dict)
        or meta.get("format") != FORMAT
        or "model" not in meta
        or not isinstance(meta.get("weights"), dict)
    ):
        raise ValueError(
            f"load: {where} is not a convlens checkpoint (it needs format, model and weights entries). "
            f"Received: {_keys(meta)}"
        )
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"load: {where} has format_version {version!r}, not one this convlens reads "
            f"({FORMAT_VERSION}); upgrade convlens. Received: format_version={version!r}"
        )
    for name in ("config", "extra"):
        if not isinstance(meta.get(name, {}), dict):
            raise ValueError(
                f"load: {where}: {name} must be a JSON object. Received: {name}={meta[name]!r:.60}"
            )
    architecture = schema.check_architecture(meta["model"], where)  # before anything is built
    if meta.get("extra", {}).get("kind") == CHECKPOINT_KIND:
        _check_training(meta, architecture, where)
    return meta


def _check_training(meta: dict[str, Any], architecture: schema.Architecture, where: str) -> None:
    """A training checkpoint's settings and progress (``convlens train`` reads them back)."""
    config = schema.check_training_config(meta.get("config", {}), where, outputs=architecture.outputs)
    epochs = config.get("epochs")
    schema.check_progress(meta["extra"], where, epochs=epochs if isinstance(epochs, int) else None)


def _where(path: Path) -> str:
    """``gen-000012/checkpoint.json``: short, and says which generation."""
    return f"{path.parent.name}/{path.name}"


def _read_payload(path: Path, sha256: Any) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"load: checkpoint file not found. Received: path={str(path)!r}")
    payload = path.read_bytes()
    if sha256 is not None and _sha256(payload) != sha256:
        raise ValueError(
            f"load: {path} does not match the checksum recorded in its .json: the file is corrupt, "
            f"truncated, or from another save. Received: sha256={_sha256(payload)[:16]}..."
        )
    return payload


def _read_arrays(path: Path, sha256: Any, expected: Any) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file whose header declares exactly ``expected(declared)``
    (name -> shape), checked before any tensor is read."""
    payload = _read_payload(path, sha256)
    declared = read_safetensors_header(payload, _where(path))
    check_tensors(declared, expected(declared), _where(path))
    try:
        return _safetensors().load(payload)
    except Exception as error:  # safetensors raises its own SafetensorError
        raise ValueError(f"load: {path} is not a valid safetensors file. Received: {error}") from None


def _load_weights(model: Any, files: CheckpointFiles, meta: dict[str, Any]) -> None:
    shapes = {key: tuple(np.shape(_array(value))) for key, value in model.state_dict().items()}
    weights = _read_arrays(files.weights, meta["weights"].get("sha256"), lambda declared: shapes)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, ValueError, KeyError) as error:
        raise ValueError(
            f"load: the weights in {files.weights} do not fit the model. Received: {error}"
        ) from error


def _checkpoint(model: Any, files: CheckpointFiles, meta: dict[str, Any]) -> Checkpoint:
    saved = meta.get("optimizer")
    optimizer_state = None
    if saved is not None:
        shapes = [tuple(p.shape) for p in model.parameters()]
        schema.check_optimizer_meta(saved, len(shapes), _where(files.meta))
        arrays = _read_arrays(
            files.optimizer,
            saved.get("sha256"),
            lambda declared: expected_optimizer_tensors(declared, shapes),
        )
        state: dict[int, dict[str, Any]] = {int(i): dict(s) for i, s in saved.get("state", {}).items()}
        for key, value in arrays.items():
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
        optimizer_state = {"state": state, "param_groups": saved["param_groups"]}
    return Checkpoint(
        model=model,
        config=meta.get("config", {}),
        optimizer_state=optimizer_state,
        optimizer_type=None if saved is None else saved.get("type"),
        extra=meta.get("extra", {}),
        architecture=meta["model"],
        convlens_version=str(meta.get("convlens_version", "unknown")),
        files=files,
    )


def _keys(meta: Any) -> str:
    return f"keys {sorted(meta)}" if isinstance(meta, dict) else f"a JSON {type(meta).__name__}"


def _describe(config: Any, limit: int = 160) -> str:
    """A short Python-like rendering of an architecture config: ``lenet5(variant='classic')``."""
    if isinstance(config, dict) and "factory" in config:
        text = f"{config['factory']}({_kwargs(config.get('kwargs', {}))})"
    elif isinstance(config, dict) and "modules" in config:
        children = ", ".join(_describe(child, limit) for _, child in config["modules"])
        text = f"{config.get('class', 'Sequential')}({children})"
    elif isinstance(config, dict) and "class" in config:
        text = f"{config['class']}({_kwargs(config.get('args', {}))})"
    else:
        text = json.dumps(config, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kwargs(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key, _MISSING) != b.get(key, _MISSING):
                return _first_difference(a.get(key, _MISSING), b.get(key, _MISSING), f"{where}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    shown = ["(absent)" if v is _MISSING else json.dumps(v)[:60] for v in (a, b)]
    return f"{where.lstrip('.') or 'top level'}: {shown[0]} vs {shown[1]}"


_MISSING = object()


def _safetensors() -> Any:
    """``safetensors.numpy``, imported on first use (keeps ``import convlens`` fast)."""
    import safetensors.numpy

    return safetensors.numpy

"""Checkpoint configs and tensor headers are checked before anything is built or allocated.

Oracles: the real models (their state_dict sizes and constructor signatures) for the
schema of the known models; the safetensors library for header parsing. Hostile
configs are refused with one line, in milliseconds, with a small allocation peak.
"""

from __future__ import annotations

import inspect
import json
import struct
import time
import tracemalloc

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import given, settings
from hypothesis import strategies as st

import convlens as cl
from convlens import config_schema as schema
from convlens import models, nn
from convlens.config_schema import ConfigError
from convlens.tensor_header import (
    TensorInfo,
    check_tensors,
    expected_optimizer_tensors,
    read_safetensors_header,
)


def size_of(model) -> int:
    return sum(int(np.asarray(v).size) for v in model.state_dict().values())


def refused(check, *args, **kwargs) -> str:
    """Run ``check``; it must raise ConfigError with one line, fast and without allocating."""
    with pytest.raises(ConfigError):  # once untraced: imports and first-use caches are not the check's
        check(*args, **kwargs)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ConfigError) as raised:
            check(*args, **kwargs)
    finally:
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    message = str(raised.value)
    assert "\n" not in message and len(message) < 400, message
    assert seconds < 0.05 and peak < 1 << 20, (seconds, peak)
    return message


# ------------------------------------------------------------------------- known models
@pytest.mark.parametrize("num_classes", [1, 2, 7, 10])
@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("lenet5", {}),
        ("lenet5", {"variant": "classic"}),
        ("lenet5_classic", {}),
        ("lecture_cnn", {}),
        ("lecture_mlp", {}),
    ],
)
def test_every_known_model_passes_with_its_true_size(name, kwargs, num_classes):
    model = models.get(name, **kwargs, num_classes=num_classes)
    architecture = schema.check_architecture(model.get_config())
    assert architecture == (size_of(model), num_classes)
    # the factory's own arguments, as a user could write them by hand
    by_hand = schema.check_architecture({"factory": name, "kwargs": {**kwargs, "num_classes": num_classes}})
    assert by_hand.parameters == size_of(model)


def test_the_schema_knows_every_model_and_every_layer_argument():
    assert set(schema.known_models()) == {m.replace("-", "_") for m in models.available()}
    from convlens.nn.module import _REGISTRY

    # a module that describes itself as another (Sequential by its children, the fused
    # blocks by their unfused modules) never appears under its own name in a config
    public = {
        name: cls
        for name, cls in _REGISTRY.items()
        if not name.startswith("_")
        and "get_config" not in vars(cls)
        and cls.__module__.startswith("convlens.")  # not the layers other tests define
    }
    assert set(public) == set(schema.LAYERS)
    for name, cls in public.items():
        parameters = inspect.signature(cls.__init__).parameters
        named = {
            p
            for p, v in parameters.items()
            if p != "self" and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)
        }
        assert named == set(schema.LAYERS[name].arguments), name


def random_layer(rng: np.random.Generator):
    """A random small layer of every kind the schema lists."""
    k = int(rng.integers(1, 4))
    c_in, c_out = (int(v) for v in rng.integers(1, 5, 2))
    choices = [
        lambda: nn.Conv2d(
            c_in, c_out * c_in, (k, k + 1), stride=2, padding="same" if k == 1 else 1, groups=c_in
        ),
        lambda: nn.Conv1d(c_in, c_out, k, dilation=2, bias=False, padding_mode="reflect", padding=1),
        lambda: nn.Conv3d(c_in, c_out, k),
        lambda: nn.ConvTranspose2d(c_in, c_out, k, stride=2, output_padding=1),
        lambda: nn.Linear(c_in * 3, c_out, bias=bool(rng.integers(2))),
        lambda: nn.BatchNorm2d(c_out, eps=1e-3, momentum=None),
        lambda: nn.BatchNorm1d(c_out, affine=False),
        lambda: nn.MaxPool2d(k, stride=None, padding=0, ceil_mode=True),
        lambda: nn.AvgPool2d((k, k), stride=(1, 2), count_include_pad=False),
        lambda: nn.AdaptiveAvgPool2d((3, None)),
        lambda: nn.Dropout(0.25),
        lambda: nn.Flatten(1, -1),
        lambda: nn.Softmax(dim=1),
        lambda: nn.ScaledTanh(1.5, 0.5),
        lambda: models.Subsampling2d(c_out, 2),
        lambda: models.PartialConv2d(3, 2, k, ((0, 1), (2,))),
        lambda: models.EuclideanRBF(c_in, c_out),
    ]
    return choices[int(rng.integers(len(choices)))]()


def test_the_schema_knows_every_data_set():
    assert set(schema.DATASETS) == set(cl.data.DATASETS)


@pytest.mark.parametrize("seed", range(12))
def test_random_layer_stacks_pass_with_their_true_size(seed):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(*(random_layer(rng) for _ in range(int(rng.integers(1, 6)))))
    config = json.loads(json.dumps(model.get_config()))  # as read back from a file
    assert schema.check_architecture(config).parameters == size_of(model)


# ------------------------------------------------------------------------- hostile models
HUGE = {"class": "Linear", "args": {"in_features": 1 << 20, "out_features": 1 << 20}}


def nested(depth: int) -> dict:
    config = {"class": "ReLU", "args": {}}
    for _ in range(depth):
        config = {"class": "Sequential", "modules": [["0", config]]}
    return config


BAD_ARCHITECTURES = [
    (HUGE, "asks for 1,099,512,676,352 weights and buffers, more than the limit of 50,000,000"),
    ({"class": "Sequential", "modules": [[str(i), HUGE] for i in range(3)]}, "more than the limit"),
    ({"factory": "lecture_cnn", "kwargs": {"num_classes": 10_000}}, "more than the limit"),
    ({"factory": "lenet5", "kwargs": {"num_classes": 0}}, "num_classes must be an int in [1, 10000]"),
    ({"factory": "lenet5", "kwargs": {"num_classes": -3}}, "Received: num_classes=-3"),
    ({"factory": "lenet5", "kwargs": {"num_classes": True}}, "Received: num_classes=True"),
    ({"factory": "lenet5", "kwargs": {"num_classes": 10.0}}, "Received: num_classes=10.0"),
    ({"factory": "lenet5", "kwargs": {"num_classes": "10"}}, "Received: num_classes='10'"),
    ({"factory": "lenet5", "kwargs": {"num_classes": 10**30}}, "num_classes must be an int"),
    ({"factory": "lenet5", "kwargs": {"variant": "turbo"}}, "variant must be one of 'modern', 'classic'"),
    ({"factory": "lenet5", "kwargs": {"variant": "classic", "num_classes": 11}}, "10 digits only"),
    ({"factory": "lenet5", "kwargs": {"layers": 1000}}, "model.kwargs.layers must be absent"),
    ({"factory": "resnet9000"}, "model.factory must be one of lecture_cnn, lecture_mlp, lenet5"),
    ({"factory": "lenet5", "kwargs": []}, "model.kwargs must be a JSON object"),
    ({"class": "os.system", "args": {}}, "model.class must be a layer class of convlens.nn"),
    ({"class": "Conv2d", "args": {"in_channels": 1, "out_channels": 6}}, "lacks the required argument"),
    (
        {"class": "Conv2d", "args": {"in_channels": 1, "out_channels": 10**6, "kernel_size": 3}},
        "out_channels",
    ),
    ({"class": "Conv2d", "args": {"in_channels": 1, "out_channels": 6, "kernel_size": 0}}, "kernel_size"),
    ({"class": "Conv2d", "args": {"in_channels": 1, "out_channels": 6, "kernel_size": [3, 3, 3]}}, "2 ints"),
    (
        {
            "class": "Conv2d",
            "args": {"in_channels": 1, "out_channels": 6, "kernel_size": 3, "padding": "full"},
        },
        "padding",
    ),
    (
        {"class": "Conv2d", "args": {"in_channels": 3, "out_channels": 6, "kernel_size": 3, "groups": 2}},
        "groups",
    ),
    (
        {"class": "Linear", "args": {"in_features": 4, "out_features": 2, "bias": "yes"}},
        "bias must be true or false",
    ),
    ({"class": "BatchNorm2d", "args": {"num_features": 4, "eps": 0}}, "eps must be a number in (0, 1]"),
    ({"class": "Dropout", "args": {"p": float("nan")}}, "p must be a number in [0, 1]"),
    ({"class": "ScaledTanh", "args": {"amplitude": float("inf")}}, "amplitude must be a finite number"),
    (
        {
            "class": "PartialConv2d",
            "args": {"in_channels": 2, "out_channels": 1, "kernel_size": 3, "connections": [[5]]},
        },
        "connections",
    ),
    ({"class": "AdaptiveAvgPool2d", "args": {"output_size": [0, 0]}}, "output_size"),
    ({"class": "Sequential", "modules": "conv"}, "model.modules must be a list"),
    ({"class": "Sequential", "modules": [["a.b", {"class": "ReLU"}]]}, "a unique module name without dots"),
    ({"class": "Sequential", "modules": [["a", {"class": "ReLU"}], ["a", {"class": "ReLU"}]]}, "unique"),
    ({"class": "Sequential", "modules": [["a"]]}, "a pair [name, module config]"),
    (
        {"class": "Sequential", "modules": [[str(i), {"class": "ReLU"}] for i in range(600)]},
        "at most 512 items",
    ),
    (nested(20), "nests deeper than 8"),
    ([1, 2, 3], "model must be a JSON object"),
]


@pytest.mark.parametrize(("config", "fragment"), BAD_ARCHITECTURES, ids=range(len(BAD_ARCHITECTURES)))
def test_hostile_architectures_are_refused_in_one_line_before_any_allocation(config, fragment):
    assert fragment in refused(schema.check_architecture, config, "checkpoint.json")


def test_a_hostile_checkpoint_is_refused_by_load_without_building_anything(tmp_path, monkeypatch):
    """The acceptance test of the huge-layer report: cl.load of such a file is one line,
    milliseconds and no model built (before the fix it used 19.8 GB for 50 s)."""
    cl.save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "ckpt")
    meta_path = tmp_path / "ckpt.json"
    meta = json.loads(meta_path.read_text())
    meta["model"] = {"class": "Sequential", "modules": [["0", HUGE]]}
    meta_path.write_text(json.dumps(meta))

    def never(*args, **kwargs):
        raise AssertionError("a model was built from a config that the schema must refuse")

    monkeypatch.setattr(nn, "from_config", never)
    monkeypatch.setattr(cl.nn.module, "from_config", never)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ValueError, match="more than the limit of 50,000,000") as raised:
        cl.load(tmp_path / "ckpt")
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "\n" not in str(raised.value) and seconds < 0.5 and peak < 8 << 20


def test_weights_whose_declared_shapes_do_not_fit_are_refused_before_reading(tmp_path, monkeypatch):
    model = nn.Sequential(nn.Linear(3, 2))
    cl.save(model, tmp_path / "ckpt")
    other = {"0.weight": np.zeros((2, 4), np.float32), "0.bias": np.zeros(2, np.float32)}
    payload = safetensors.numpy.save(other)
    (tmp_path / "ckpt.safetensors").write_bytes(payload)
    meta = json.loads((tmp_path / "ckpt.json").read_text())
    meta["weights"]["sha256"] = __import__("hashlib").sha256(payload).hexdigest()
    (tmp_path / "ckpt.json").write_text(json.dumps(meta))
    reads = []
    real_load = safetensors.numpy.load
    monkeypatch.setattr(safetensors.numpy, "load", lambda data: reads.append(1) or real_load(data))
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(2, 4\) but the model expects \(2, 3\)"):
        cl.load(tmp_path / "ckpt")
    assert reads == []


# ----------------------------------------------------------------------- training config
GOOD_TRAINING = {
    "model": "lenet5",
    "dataset": "mnist-5k",
    "epochs": 20,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.02,
    "momentum": 0.9,
    "schedule": "cosine",
    "seed": 0,
    "augment": True,
    "limit": None,
    "mean": 0.1307,
    "std": 0.3081,
    "input_shape": [1, 28, 28],
    "pad": 0,
    "classes": [str(i) for i in range(10)],
}


def test_a_training_config_written_by_train_passes():
    assert schema.check_training_config(dict(GOOD_TRAINING), outputs=10, required=("model", "dataset"))


BAD_TRAINING = [
    ("momentum", -5, "momentum must be a number in [0, 1). Received: momentum=-5"),
    ("momentum", 1.0, "momentum must be a number in [0, 1)"),
    ("lr", 0, "lr must be a finite number > 0"),
    ("lr", float("nan"), "Received: lr=nan"),
    ("lr", float("inf"), "Received: lr=inf"),
    ("std", 0, "std must be a finite number > 0. Received: std=0"),
    ("std", -0.3, "std must be a finite number > 0"),
    ("std", float("nan"), "Received: std=nan"),
    ("std", "0.3", "Received: std='0.3'"),
    ("mean", float("inf"), "mean must be a finite number. Received: mean=inf"),
    ("mean", None, "mean must be a finite number"),
    ("classes", ["a", "b"], "classes must name each of the model's 10 outputs. Received: 2 classes"),
    ("classes", "0123456789", "classes must be a list"),
    ("classes", [1] * 10, "class names"),
    ("classes", [], "class names"),
    ("batch_size", 0, "batch_size must be an int in [1, 65536]"),
    ("epochs", 0, "epochs must be an int in [1, 100000]"),
    ("seed", -1, "seed must be an int in [0, 4294967295]"),
    ("dataset", "cifar", "dataset must be one of"),
    ("model", "resnet", "model must be one of"),
    ("optimizer", "lbfgs", "optimizer must be one of 'sgd', 'adam'"),
    ("input_shape", [1, 0, 28], "input_shape[1] must be an int in [1, 4096]"),
    ("input_shape", [1, 28, 28, 28], "input_shape must be [channels, height, width]"),
    ("pad", -1, "pad must be an int in [0, 64]"),
    ("augment", 1, "augment must be true or false"),
    ("limit", 0, "limit must be an int"),
]


@pytest.mark.parametrize(
    ("field", "value", "fragment"), BAD_TRAINING, ids=[f"{f}={v!r}" for f, v, _ in BAD_TRAINING]
)
def test_bad_training_values_are_refused_in_one_line(field, value, fragment):
    config = {**GOOD_TRAINING, field: value}
    message = refused(schema.check_training_config, config, "checkpoint.json", outputs=10)
    assert message.startswith("checkpoint.json: ") and fragment in message


def test_required_training_fields():
    message = refused(schema.check_training_config, {"lr": 0.1}, "ckpt", required=("model",))
    assert "lacks 'model'" in message


# ------------------------------------------------------------------------------- progress
GOOD_PROGRESS = {
    "kind": "convlens-train-checkpoint",
    "epoch": 2,
    "step": 5,
    "history": {
        "epochs": [
            {
                "epoch": 0,
                "train_loss": 0.5,
                "train_acc": 0.8,
                "val_loss": None,
                "val_acc": None,
                "seconds": 1.0,
                "images_per_sec": 100.0,
                "lr": 0.02,
            }
        ],
        "interrupted": False,
    },
    "partial": {"loss_sum": 3.0, "correct": 40, "seen": 80, "seconds": 0.5},
    "scheduler": {"T_max": 10, "eta_min": 0.0, "base_lrs": [0.02], "last_epoch": 2, "_last_lr": [0.019]},
}


def test_progress_written_by_fit_passes():
    assert schema.check_progress(GOOD_PROGRESS, epochs=10)


BAD_PROGRESS = [
    ({"epoch": -1}, "extra.epoch must be an int in [0, 100000]. Received: epoch=-1"),
    ({"epoch": 11}, "at most the run's 10 epochs"),
    ({"epoch": 1.5}, "extra.epoch must be an int"),
    ({"step": -2}, "extra.step must be an int"),
    ({"history": {"epochs": [{"epoch": 0, "bogus": 1}]}}, "extra.history.epochs[0].bogus must be absent"),
    ({"history": {"epochs": [{"train_loss": 1.0}]}}, "lacks 'epoch'"),
    ({"history": {"epochs": [{"epoch": 0, "train_acc": 7}]}}, "train_acc must be a number in [0, 1]"),
    ({"history": {"epochs": "all"}}, "extra.history.epochs must be a list"),
    ({"partial": {"correct": 9, "seen": 3}}, "extra.partial.correct must be at most extra.partial.seen"),
    ({"partial": {"loss_sum": float("nan")}}, "loss_sum must be a finite number"),
    ({"scheduler": {"optimizer": 5}}, "extra.scheduler.optimizer must be absent"),
    ({"scheduler": {"T_max": 0}}, "T_max must be an int in [1, 100000]"),
    ({"scheduler": {"base_lrs": [float("nan")]}}, "base_lrs[0] must be a finite number >= 0"),
    ({"scheduler": {"last_epoch": -5}}, "last_epoch must be an int in [-1, 100000]"),
]


@pytest.mark.parametrize(("change", "fragment"), BAD_PROGRESS, ids=range(len(BAD_PROGRESS)))
def test_bad_progress_is_refused_in_one_line(change, fragment):
    assert fragment in refused(schema.check_progress, {**GOOD_PROGRESS, **change}, "ckpt", epochs=10)


# ------------------------------------------------------------------------------ optimizer
def optimizer_meta(kind: str = "SGD"):
    model = nn.Sequential(nn.Linear(3, 2))
    optimizer = cl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if kind == "SGD" else None
    optimizer = optimizer or cl.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    optimizer.step()
    from convlens.io import _split_optimizer_state

    arrays, meta = _split_optimizer_state(optimizer)
    return json.loads(json.dumps(meta)), arrays, [tuple(p.shape) for p in model.parameters()]


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_saved_optimizers_pass(kind):
    meta, arrays, shapes = optimizer_meta(kind)
    schema.check_optimizer_meta(meta, len(shapes))
    declared = read_safetensors_header(safetensors.numpy.save(arrays))
    check_tensors(declared, expected_optimizer_tensors(declared, shapes))


BAD_OPTIMIZER = [
    (lambda m: m.update(type="LBFGS"), "optimizer.type must be one of 'SGD', 'Adam'"),
    (lambda m: m["param_groups"][0].update(lr=-1), "param_groups[0].lr must be a finite number >= 0"),
    (lambda m: m["param_groups"][0].update(momentum=float("nan")), "momentum must be a finite number"),
    (lambda m: m["param_groups"][0].update(params=[0, 7]), "params[1] must be an int in [0, 1]"),
    (lambda m: m["param_groups"][0].update(params=[0, 0]), "an index listed once"),
    (lambda m: m["param_groups"][0].update(extra={"a": 1}), "must be a JSON scalar"),
    (lambda m: m.update(state={"abc": {}}), "keyed by parameter indices"),
    (lambda m: m.update(state={"0": {"step": -1}}), "optimizer.state.0.step must be an int"),
    (lambda m: m.update(param_groups=[{}] * 5), "optimizer.param_groups must be a list of at most 2 items"),
]


@pytest.mark.parametrize(("change", "fragment"), BAD_OPTIMIZER, ids=range(len(BAD_OPTIMIZER)))
def test_bad_optimizer_meta_is_refused(change, fragment):
    meta, _, shapes = optimizer_meta()
    change(meta)
    assert fragment in refused(schema.check_optimizer_meta, meta, len(shapes), "ckpt")


def test_adam_betas_are_checked():
    meta, _, shapes = optimizer_meta("Adam")
    meta["param_groups"][0]["betas"] = [1.0, 0.999]
    assert "betas[0] must be a number in [0, 1)" in refused(schema.check_optimizer_meta, meta, len(shapes))


# -------------------------------------------------------------------------- tensor headers
DTYPES = {
    "F16": np.float16,
    "F32": np.float32,
    "F64": np.float64,
    "I8": np.int8,
    "U8": np.uint8,
    "I64": np.int64,
}


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text("abcdefgh._0123", min_size=1, max_size=12),
        st.tuples(st.sampled_from(sorted(DTYPES)), st.lists(st.integers(0, 4), max_size=4)),
        max_size=5,
    )
)
def test_header_matches_what_safetensors_reads(spec):
    arrays = {name: np.zeros(shape, DTYPES[dtype]) for name, (dtype, shape) in spec.items()}
    payload = safetensors.numpy.save(arrays)
    declared = read_safetensors_header(payload)
    loaded = safetensors.numpy.load(payload)
    assert declared == {name: TensorInfo(spec[name][0], tuple(array.shape)) for name, array in loaded.items()}


def forged(header: dict, data: bytes = b"", length: int | None = None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


BAD_HEADERS = [
    (b"\x01\x02", "only 2 bytes"),
    (struct.pack("<Q", 1 << 62) + b"{}", "its header claims 4,611,686,018,427,387,904 bytes of 2"),
    (struct.pack("<Q", 4) + b"\xff\xfe{}", "its header is not JSON"),
    (forged([1, 2]), "header must be a JSON object"),
    (
        forged({"w": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 8]}}, b"\0" * 8),
        "holds 8 bytes",
    ),
    (
        forged({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 1 << 50]}}, b"\0" * 8),
        "data_offsets must be",
    ),
    (
        forged({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8),
        "data_offsets must be",
    ),
    (
        forged({"w": {"dtype": "X99", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
        "dtype must be one of",
    ),
    (
        forged({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8),
        "shape must be a list",
    ),
    (forged({"w": {"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}}, b"\0" * 4), "at most 8 sizes"),
    (forged({"w": "tensor"}), "must be a JSON object"),
]


@pytest.mark.parametrize(("payload", "fragment"), BAD_HEADERS, ids=range(len(BAD_HEADERS)))
def test_forged_headers_are_refused_without_allocating(payload, fragment):
    assert fragment in refused(read_safetensors_header, payload, "w.safetensors")


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_files_are_refused_or_agree_with_safetensors(data):
    """Any byte flipped or any truncation: our check refuses, or safetensors reads the same shapes."""
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float64)}
    payload = bytearray(safetensors.numpy.save(arrays))
    if data.draw(st.booleans()):
        payload = payload[: data.draw(st.integers(0, len(payload)))]
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            payload[data.draw(st.integers(0, len(payload) - 1))] = data.draw(st.integers(0, 255))
    try:
        declared = read_safetensors_header(bytes(payload))
    except ConfigError as error:
        assert "\n" not in str(error)
        return
    loaded = safetensors.numpy.load(bytes(payload))
    assert {k: v.shape for k, v in declared.items()} == {k: v.shape for k, v in loaded.items()}


def test_check_tensors_names_what_does_not_fit():
    declared = {"w": TensorInfo("F32", (2, 3)), "x": TensorInfo("F32", (1,)), "b": TensorInfo("I64", (2,))}
    message = refused(check_tensors, declared, {"w": (2, 3), "b": (2,), "c": (4,)}, "m.safetensors")
    assert "missing c" in message and "unexpected x" in message
    message = refused(
        check_tensors,
        {"w": TensorInfo("F32", (2, 3)), "b": TensorInfo("I64", (2,))},
        {"w": (2, 3), "b": (2,)},
    )
    assert "tensor 'b' is I64" in message
    shapes = [(2, 3), (2,)]
    declared = {
        "state.0.momentum_buffer": TensorInfo("F32", (2, 3)),
        "state.5.exp_avg": TensorInfo("F32", (2,)),
    }
    expected = expected_optimizer_tensors(declared, shapes)
    assert expected == {"state.0.momentum_buffer": (2, 3)}
    assert "unexpected state.5.exp_avg" in refused(check_tensors, declared, expected)


def test_any_model_under_the_limit_fits_a_checkpoint_file():
    from convlens import generations

    assert schema.MAX_PARAMETERS * 8 < generations.MAX_FILE_BYTES  # even in float64


# ------------------------------------------------------------------- fuzzing the JSON configs
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
VALID_CONFIGS = [
    models.get(name, **kwargs).get_config()
    for name, kwargs in [("lenet5", {}), ("lenet5", {"variant": "classic"}), ("lecture_mlp", {})]
]


def _mutate(value, data, depth=0):
    """``value`` with one node somewhere replaced by an arbitrary JSON value."""
    if depth > 6 or not isinstance(value, dict | list) or not value or data.draw(st.integers(0, 3)) == 0:
        return data.draw(JSON_VALUES)
    if isinstance(value, dict):
        key = data.draw(st.sampled_from(sorted(value)))
        return {**value, key: _mutate(value[key], data, depth + 1)}
    index = data.draw(st.integers(0, len(value) - 1))
    return [*value[:index], _mutate(value[index], data, depth + 1), *value[index + 1 :]]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_fuzzed_model_configs_are_checked_or_refused_in_one_line(data):
    """A valid config with any one node replaced (or an arbitrary JSON value): the schema accepts
    it and its parameter count is then bounded, or refuses it with one line; nothing else."""
    config = data.draw(st.sampled_from(VALID_CONFIGS))
    config = _mutate(config, data) if data.draw(st.booleans()) else data.draw(JSON_VALUES)
    config = json.loads(json.dumps(config))  # what a file can hold
    try:
        architecture = schema.check_architecture(config)
    except ConfigError as error:
        assert "\n" not in str(error) and len(str(error)) < 1000
        return
    assert 0 <= architecture.parameters <= schema.MAX_PARAMETERS


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzzed_training_progress_is_checked_or_refused_in_one_line(data):
    base = {"epoch": 3, "step": 0, "history": {"epochs": []}}
    extra = _mutate(base, data) if data.draw(st.booleans()) else data.draw(JSON_VALUES)
    extra = json.loads(json.dumps(extra))
    try:
        schema.check_progress(extra)
    except ConfigError as error:
        assert "\n" not in str(error)

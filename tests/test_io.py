"""Checkpoints: save/load round trips, resuming, architecture checks, damaged files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import torch

import convlens as cl
from convlens import io, nn, optim


def tiny_model(hidden: int = 5, seed: int = 0):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3))


def conv_model(seed: int = 0):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 5 * 5, 3))


def train_steps(model, optimizer, batches):
    for x in batches:
        optimizer.zero_grad()
        out = model(cl.tensor(x))
        (out * out).mean().backward()
        optimizer.step()


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype
        np.testing.assert_array_equal(sa[key], sb[key])


@pytest.mark.parametrize("make", [tiny_model, conv_model])
def test_round_trip_any_spelling_of_the_path(tmp_path, make):
    model = make(seed=3)
    files = cl.save(
        model, tmp_path / "run" / "net", config={"epoch": 2, "lr": 0.1}, extra={"acc": [0.5, 0.9]}
    )
    assert (
        files.weights == tmp_path / "run" / "net.safetensors" and files.meta == tmp_path / "run" / "net.json"
    )
    assert sorted(os.listdir(tmp_path / "run")) == ["net.json", "net.safetensors"]  # no temp files left
    x = (
        np.random.default_rng(0)
        .standard_normal((2, 1, 5, 5) if make is conv_model else (2, 4))
        .astype(np.float32)
    )
    for spelling in ("run/net", "run/net.json", "run/net.safetensors", "run/net.optim.safetensors"):
        restored = cl.load(tmp_path / spelling)
        assert type(restored) is type(model)
        assert_same_state(model, restored)
        np.testing.assert_array_equal(restored(x).data, model(x).data)
    checkpoint = io.load(str(tmp_path / "run" / "net"), with_optimizer=True)
    assert checkpoint.config == {"epoch": 2, "lr": 0.1} and checkpoint.extra == {"acc": [0.5, 0.9]}
    assert checkpoint.optimizer_state is None and checkpoint.convlens_version == cl.__version__
    meta = json.loads(files.meta.read_text())
    assert meta["model"] == json.loads(json.dumps(model.get_config()))


def test_directory_path_means_model_inside(tmp_path):
    model = tiny_model()
    cl.save(model, tmp_path)
    assert (tmp_path / "model.safetensors").exists() and (tmp_path / "model.json").exists()
    assert_same_state(cl.load(tmp_path), model)


def test_weights_file_loads_into_pytorch(tmp_path):
    from safetensors.torch import load_file

    model = tiny_model(seed=1)
    files = cl.save(model, tmp_path / "net")
    reference = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    reference.load_state_dict(load_file(files.weights))
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        reference(torch.tensor(x)).detach().numpy(), model(x).data, rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
        (optim.Adam, {"lr": 0.01, "amsgrad": True}),
    ],
)
def test_resume_training_exactly(tmp_path, cls, kwargs):
    batches = np.random.default_rng(5).standard_normal((10, 6, 4)).astype(np.float32)
    model = tiny_model(seed=2)
    optimizer = cls(model.parameters(), **kwargs)
    scheduler = optim.StepLR(optimizer, step_size=2, gamma=0.5)
    train_steps(model, optimizer, batches[:5])
    scheduler.step()
    cl.save(
        model,
        tmp_path / "ckpt",
        config={"epoch": 0},
        optimizer=optimizer,
        extra={"scheduler": scheduler.state_dict()},
    )
    train_steps(model, optimizer, batches[5:])

    checkpoint = io.load(tmp_path / "ckpt", with_optimizer=True)
    assert checkpoint.optimizer_type == cls.__name__ and checkpoint.config["epoch"] == 0
    resumed = checkpoint.model
    optimizer2 = cls(resumed.parameters(), lr=999.0)
    optimizer2.load_state_dict(checkpoint.optimizer_state)
    scheduler2 = optim.StepLR(optimizer2, step_size=7)
    scheduler2.load_state_dict(checkpoint.extra["scheduler"])
    assert optimizer2.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"]
    train_steps(resumed, optimizer2, batches[5:])
    assert_same_state(model, resumed)

    fresh = tiny_model(seed=9)  # same architecture, other weights
    optimizer3 = cls(fresh.parameters(), lr=1.0)
    restored = io.load_into(fresh, tmp_path / "ckpt", optimizer=optimizer3)
    assert restored.model is None and restored.config == {"epoch": 0}
    train_steps(fresh, optimizer3, batches[5:])
    assert_same_state(model, fresh)
    with pytest.raises(ValueError, match="holds (SGD|Adam) state but the optimizer is"):
        other = optim.Adam if cls is optim.SGD else optim.SGD
        io.load_into(tiny_model(), tmp_path / "ckpt", optimizer=other(tiny_model().parameters(), lr=0.1))


def test_saving_without_optimizer_removes_a_stale_optimizer_file(tmp_path):
    model = tiny_model()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_steps(model, optimizer, np.ones((1, 2, 4), dtype=np.float32))
    cl.save(model, tmp_path / "m", optimizer=optimizer)
    assert (tmp_path / "m.optim.safetensors").exists()
    cl.save(model, tmp_path / "m")
    assert not (tmp_path / "m.optim.safetensors").exists()
    with pytest.raises(ValueError, match="holds no optimizer state"):
        io.load_into(model, tmp_path / "m", optimizer=optimizer)


def test_load_into_rejects_another_architecture(tmp_path):
    cl.save(tiny_model(hidden=5), tmp_path / "m")
    with pytest.raises(ValueError, match=r"out_features.*5 vs 6"):
        io.load_into(tiny_model(hidden=6), tmp_path / "m")
    classic = cl.models.lenet5(variant="classic")
    cl.save(classic, tmp_path / "lenet")
    message = (
        r"checkpoint .*lenet\.json is lenet5\(variant='classic'.*\) but the model is lenet5\(variant='modern'"
    )
    with pytest.raises(ValueError, match=message):
        io.load_into(cl.models.lenet5(variant="modern"), tmp_path / "lenet")
    io.load_into(cl.models.lenet5(variant="classic"), tmp_path / "lenet")


def test_missing_and_damaged_files(tmp_path):
    model = tiny_model()
    files = cl.save(model, tmp_path / "m")
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        cl.load(tmp_path / "nothing")
    weights = files.weights.read_bytes()

    files.weights.write_bytes(weights[: len(weights) // 2])  # truncated
    with pytest.raises(ValueError, match=r"m\.safetensors does not match the checksum"):
        cl.load(tmp_path / "m")
    files.weights.unlink()
    with pytest.raises(FileNotFoundError, match=r"m\.safetensors"):
        cl.load(tmp_path / "m")

    cl.save(tiny_model(seed=7), tmp_path / "other")  # weights from another save
    files.weights.write_bytes((tmp_path / "other.safetensors").read_bytes())
    with pytest.raises(ValueError, match="another save"):
        cl.load(tmp_path / "m")

    files.weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not safetensors")
    meta = json.loads(files.meta.read_text())
    del meta["weights"]["sha256"]  # a hand-edited checkpoint: the parse itself must fail cleanly
    files.meta.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"m\.safetensors is not a valid safetensors file"):
        cl.load(tmp_path / "m")

    files.meta.write_text(json.dumps(meta)[:-10])
    with pytest.raises(ValueError, match=r"m\.json is not valid JSON"):
        cl.load(tmp_path / "m")
    files.meta.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not a convlens checkpoint"):
        cl.load(tmp_path / "m")
    files.meta.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match=r"m\.json"):
        cl.load(tmp_path / "m")


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    cl.save(tiny_model(hidden=5), tmp_path / "a")
    cl.save(tiny_model(hidden=6), tmp_path / "b")
    meta = json.loads((tmp_path / "a.json").read_text())
    meta["weights"]["sha256"] = json.loads((tmp_path / "b.json").read_text())["weights"]["sha256"]
    (tmp_path / "a.json").write_text(json.dumps(meta))
    (tmp_path / "a.safetensors").write_bytes((tmp_path / "b.safetensors").read_bytes())
    with pytest.raises(ValueError, match=r"a\.safetensors.* do not fit the model"):
        cl.load(tmp_path / "a")


def test_unserialisable_config_writes_nothing(tmp_path):
    with pytest.raises(TypeError, match="cannot store"):
        cl.save(tiny_model(), tmp_path / "m", config={"bad": object()})
    assert os.listdir(tmp_path) == []
    with pytest.raises(TypeError, match="state_dict"):
        cl.save(object(), tmp_path / "m")
    cl.save(tiny_model(), tmp_path / "m", config={"lr": np.float32(0.5), "n": np.int64(3), "where": tmp_path})
    assert io.load(tmp_path / "m", with_optimizer=True).config == {"lr": 0.5, "n": 3, "where": str(tmp_path)}


def test_newer_format_is_refused(tmp_path):
    files = cl.save(tiny_model(), tmp_path / "m")
    meta = json.loads(files.meta.read_text())
    meta["format_version"] = io.FORMAT_VERSION + 1
    files.meta.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="upgrade convlens"):
        cl.load(files.meta)
    meta["format_version"] = io.FORMAT_VERSION
    meta["model"] = {"class": "NoSuchLayer", "args": {}}
    files.meta.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="cannot rebuild the model|must be a layer class"):
        cl.load(files.meta)

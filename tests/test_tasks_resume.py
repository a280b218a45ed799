"""The other tasks resumed (``convlens train --resume`` of a spoken-digits or segment run) and
the mixed scenes (MNIST digits and Fashion-MNIST items in the same scenes).

A resumed run must end with the same weights, bit for bit, as a run that was never
stopped. Every run here is tiny (16 scenes, 2 steps an epoch): what is compared is the
bookkeeping, not what the network learns.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_fsdd import fake_recordings
from threadpoolctl import threadpool_limits

from convlens import data, fsdd, io, scenes, tasks
from convlens.cli import main

SEGMENT = [
    "train",
    "--task",
    "segment",
    "--train-scenes",
    "16",
    "--test-scenes",
    "8",
    "--batch-size",
    "8",
    "--no-progress",
]
MIXED = "mnist-5k+fashion-mnist"


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1, user_api="blas"):
        yield


def _weights(run) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in io.load_checkpoint(run)["model"].state_dict().items()}


def _assert_same_run(run, reference) -> None:
    expected, got = _weights(reference), _weights(run)
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    history = [json.loads((r / "history.json").read_text())["epochs"] for r in (run, reference)]
    assert [e["train_loss"] for e in history[0]] == [e["train_loss"] for e in history[1]]
    assert [e["lr"] for e in history[0]] == [e["lr"] for e in history[1]]


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convlens: error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """A segmentation run of 2 epochs (cosine schedule) that nothing interrupted."""
    out = tmp_path_factory.mktemp("straight")
    assert main([*SEGMENT, "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """The same run, planned for 1 epoch only."""
    out = tmp_path_factory.mktemp("one")
    assert main([*SEGMENT, "--epochs", "1", "--out", str(out)]) == 0
    return out


def _copy(run, target):
    import shutil

    shutil.copytree(run, target)
    return target


# ------------------------------------------------------------------------------ resume
def test_extending_a_segment_run_equals_the_straight_run(straight, one_epoch, tmp_path, capsys):
    """1 epoch, then --epochs 2: a cosine schedule's first epoch is at the peak whatever
    its length, so the re-planned schedule is the straight run's and the weights must agree."""
    run = _copy(one_epoch, tmp_path / "run")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0  # no --task
    out = capsys.readouterr().out
    assert "extending the run from 1 to 2 epochs: the cosine schedule is re-planned over 2" in out
    assert "resuming from" in out and "at epoch 2" in out and "pixel accuracy:" in out
    _assert_same_run(run, straight)
    assert json.loads((run / "config.json").read_text())["epochs"] == 2
    assert io.load_checkpoint(run)["epoch"] == 2


def test_ctrl_c_in_the_middle_of_an_epoch_then_resume_equals_the_straight_run(
    straight, tmp_path, monkeypatch, capsys
):
    import convlens.train as train_module

    real_fit = train_module.fit

    class CtrlC(train_module.Callback):
        def on_batch_end(self, state, loss):
            if state.global_step == 3:  # epoch 2, step 1 of 2
                raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "fit", lambda *a, **k: real_fit(*a, **{**k, "callbacks": [CtrlC()]}))
    run = tmp_path / "run"
    assert main([*SEGMENT, "--epochs", "2", "--out", str(run)]) == 130
    assert f"checkpoint saved to {run / io.CHECKPOINT_NAME}" in capsys.readouterr().err
    saved = io.load_checkpoint(run)
    assert (saved["epoch"], saved["step"]) == (1, 1)
    monkeypatch.setattr(train_module, "fit", real_fit)
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "at epoch 2, step 2" in capsys.readouterr().out
    _assert_same_run(run, straight)


def test_resume_applies_a_new_learning_rate_and_writes_into_the_same_directory(one_epoch, tmp_path, capsys):
    run = _copy(one_epoch, tmp_path / "run")
    capsys.readouterr()
    argv = ["train", "--task", "segment", "--resume", str(run / io.CHECKPOINT_NAME), "--epochs", "2"]
    assert main([*argv, "--lr", "0.001", "--no-progress"]) == 0
    assert "--lr 0.001 (was 0.003)" in capsys.readouterr().out
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert len(history) == 2 and history[0]["lr"] == 0.003 and 0 < history[1]["lr"] <= 0.001
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no new run directory
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "already finished its 2 epochs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "code", "fragment"),
    [
        ("--batch-size 4", 2, "cannot change when resuming: --batch-size (the run uses 8)"),
        ("--train-scenes 32 --seed 3", 2, "--seed (the run uses 0), --train-scenes (the run uses 16)"),
        ("--test-scenes 9", 2, "--test-scenes (the run uses 8)"),
        ("--model wavenet", 2, "--model (the run uses unet)"),
        (f"--dataset {MIXED}", 2, "--dataset (the run uses mnist-5k)"),
        ("--epochs 2 --optimizer sgd", 2, "--optimizer (the run uses adam)"),
        ("--task spoken-digits", 2, "is a --task segment run; resume it without --task"),
    ],
)
def test_resume_refuses_what_would_change_the_run(one_epoch, options, code, fragment, capsys):
    assert main(["train", "--resume", str(one_epoch), *options.split(), "--no-progress"]) == code
    assert fragment in _error_line(capsys)


def test_an_image_run_is_not_resumed_as_a_task(tmp_path, capsys):
    run = tmp_path / "image"
    assert main(f"train --dataset mnist-5k --epochs 1 --limit 64 --no-progress --out {run}".split()) == 0
    capsys.readouterr()
    assert main(["train", "--task", "segment", "--resume", str(run)]) == 2
    assert "classifies images; resume it without --task" in _error_line(capsys)
    assert main(["train", "--resume", str(run), "--train-scenes", "10"]) == 2
    assert "--train-scenes: for --task segment only" in _error_line(capsys)


def test_spoken_digits_run_resumed_equals_the_straight_run(tmp_path, monkeypatch, capsys):
    sums = fake_recordings(tmp_path / "data" / "fsdd" / "recordings", count=24)
    monkeypatch.setattr(fsdd, "checksums", lambda: sums)
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))
    argv = f"train --task spoken-digits --data-dir {tmp_path / 'data'} --batch-size 12 --no-progress".split()
    assert main([*argv, "--epochs", "2", "--out", str(tmp_path / "straight")]) == 0
    assert main([*argv, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    resume = [
        "train",
        "--resume",
        str(tmp_path / "run"),
        "--epochs",
        "2",
        "--data-dir",
        str(tmp_path / "data"),
    ]
    assert main([*resume, "--no-progress"]) == 0
    assert "training wavenet for spoken-digits" in capsys.readouterr().out
    _assert_same_run(tmp_path / "run", tmp_path / "straight")


# ------------------------------------------------------------------------ mixed scenes
def _needs_fashion() -> None:
    if data.find_dataset("fashion-mnist") is None:
        pytest.skip("Fashion-MNIST is not installed")


def test_mixed_scenes_are_reproducible_and_hold_both_kinds_of_item():
    _needs_fashion()
    train = scenes.digit_scenes("train", count=40, seed=3, source=MIXED)
    again = scenes.digit_scenes("train", count=40, seed=3, source=MIXED)
    other = scenes.digit_scenes("train", count=40, seed=4, source=MIXED)
    np.testing.assert_array_equal(train.images, again.images)
    np.testing.assert_array_equal(train.masks, again.masks)
    assert not np.array_equal(train.images, other.images)
    assert len(train.classes) == 21 and train.classes[:2] == ("background", "digit 0")
    assert train.classes[10:12] == ("digit 9", "T-shirt/top") and train.classes[-1] == "Ankle boot"
    found = np.unique(train.masks)
    assert found.min() == 0 and found.max() <= 20
    assert ((found >= 1) & (found <= 10)).any() and (found >= 11).any()  # digits and clothes
    np.testing.assert_array_equal(train.masks > 0, train.images >= scenes.INK)  # ink <=> an item's class
    assert tasks.task_config("segment", dataset=MIXED)["classes"] == list(train.classes)


def _oracle_scenes(pools, count, seed, size):
    """The documented recipe, one pixel at a time: per item, a data set, an item, a corner."""
    rng = np.random.default_rng(seed)
    images = [[[0] * size for _ in range(size)] for _ in range(count)]
    masks = [[[0] * size for _ in range(size)] for _ in range(count)]
    for scene in range(count):
        for _ in range(rng.integers(1, 4)):
            items, labels = pools[rng.integers(len(pools))]
            pick = rng.integers(len(items))
            item, h, w = items[pick], items.shape[1], items.shape[2]
            top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            for i in range(h):
                for j in range(w):
                    ink = int(item[i, j])
                    images[scene][top + i][left + j] = max(images[scene][top + i][left + j], ink)
                    if ink >= 64:
                        masks[scene][top + i][left + j] = 1 + int(labels[pick])
    return np.array(images, np.uint8), np.array(masks, np.uint8)


@pytest.mark.parametrize("split", ["train", "test"])
def test_mixed_masks_follow_each_items_own_ink(split):
    _needs_fashion()
    digits = data.load_dataset("mnist-5k", split=split)
    clothes = data.load_dataset("fashion-mnist", split=split)
    pools = [(digits.images, digits.labels), (clothes.images, clothes.labels + 10)]
    made = scenes.digit_scenes(split, count=5, seed=7, size=40, source=MIXED)
    images, masks = _oracle_scenes(pools, 5, 7 * 2 + (split == "test"), 40)
    np.testing.assert_array_equal(made.images, images)
    np.testing.assert_array_equal(made.masks, masks)


def test_train_scenes_use_train_items_and_test_scenes_test_items(monkeypatch):
    """Each fake data set and split has its own ink value: a scene shows where its items came from."""
    ink = {("mnist-5k", "train"): 100, ("mnist-5k", "test"): 110}
    ink |= {("fashion-mnist", "train"): 200, ("fashion-mnist", "test"): 210}

    def fake_load(name, root=None, download=False, split=None):
        images = np.full((30, 28, 28), ink[name, split], np.uint8)
        labels = np.arange(30) % 10
        return data.Dataset(images, labels, data.DATASETS[name], name, split, "fake")

    monkeypatch.setattr(data, "load_dataset", fake_load)
    for split, other in (("train", "test"), ("test", "train")):
        made = scenes.digit_scenes(split, count=30, seed=0, source=MIXED)
        values = set(np.unique(made.images)) - {0}
        assert values == {ink["mnist-5k", split], ink["fashion-mnist", split]}, values
        assert not values & {ink["mnist-5k", other], ink["fashion-mnist", other]}
        digit = made.images == ink["mnist-5k", split]
        assert (made.masks[digit] <= 10).all()  # only digits cover these pixels
        assert (made.masks[made.images == ink["fashion-mnist", split]] >= 11).any()


def test_missing_fashion_mnist_and_unknown_sources_are_one_line_errors(monkeypatch, tmp_path, capsys):
    real_find = data.find_dataset
    monkeypatch.setattr(
        data,
        "find_dataset",
        lambda name, root=None: None if name == "fashion-mnist" else real_find(name, root),
    )
    with pytest.raises(
        ValueError,
        match=r"digit_scenes: fashion-mnist not found in: .*Received: source='mnist-5k\+fashion-mnist'",
    ):
        scenes.digit_scenes("train", count=2, source=MIXED)
    with pytest.raises(ValueError, match=r"digit_scenes: source must be one of .*Received: source='cifar'"):
        scenes.digit_scenes("train", count=2, source="cifar")
    with pytest.raises(
        ValueError, match=r"task_config: the segment task takes the data sets .*dataset='fsdd'"
    ):
        tasks.task_config("segment", dataset="fsdd")
    assert main([*SEGMENT, "--dataset", MIXED, "--epochs", "1", "--out", str(tmp_path / "run")]) == 1
    assert "fashion-mnist not found in:" in _error_line(capsys)
    assert main(["train", "--dataset", MIXED, "--epochs", "1"]) == 2
    assert f"--dataset {MIXED}: for --task segment only" in _error_line(capsys)


def test_a_mixed_run_trains_evaluates_and_resumes(tmp_path, capsys):
    _needs_fashion()
    from convlens import config_schema

    assert set(config_schema.MIXED_SCENES) == {s for s in scenes.SOURCES if "+" in s}  # checkpoints take them
    run = tmp_path / "run"
    assert main([*SEGMENT, "--dataset", MIXED, "--epochs", "1", "--out", str(run)]) == 0
    assert "IoU per class: background=" in capsys.readouterr().out
    assert len(io.load_checkpoint(run)["config"]["classes"]) == 21
    assert main(["evaluate", str(run)]) == 0
    assert "digit 9=" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert "at epoch 2" in capsys.readouterr().out and io.load_checkpoint(run)["epoch"] == 2

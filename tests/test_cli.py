"""The ``convlens`` command, in process (``main([...])``) plus one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from threadpoolctl import threadpool_limits

import convlens as cl
from convlens import filters, io
from convlens.cli import main


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small GEMMs gain nothing from 2 BLAS threads, and on a busy shared machine the
    threads' spin-waiting slows every training step down."""
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One short training run shared by the tests: 2 epochs on 2,000 mnist-5k digits."""
    out = tmp_path_factory.mktemp("run")
    argv = "train --dataset mnist-5k --epochs 2 --limit 2000 --schedule none --no-progress --seed 1"
    code = main([*argv.split(), "--out", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def digits():
    test = cl.data.load_dataset("mnist-5k", split="test")
    return test.images[:8], test.labels[:8]


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("convlens: error: ")
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_train_writes_checkpoint_and_history(run_dir, capsys):
    checkpoint = run_dir / io.CHECKPOINT_NAME
    assert checkpoint.exists()
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history["epochs"]) == 2 and history["epochs"][-1]["val_acc"] > 0.5
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dataset"] == "mnist-5k" and config["limit"] == 2000 and config["lr"] == 0.02


def test_train_prints_progress_accuracy_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    argv = "train --dataset mnist-5k --epochs 1 --limit 128 --no-progress --optimizer adam"
    code = main([*argv.split(), "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "epoch 1/1" in text and "test accuracy:" in text
    assert str(out / io.CHECKPOINT_NAME) in text
    assert "adam lr 0.001" in text


def test_evaluate_prints_accuracy_per_class_and_confusion(run_dir, capsys):
    assert main(["evaluate", str(run_dir / io.CHECKPOINT_NAME)]) == 0
    text = capsys.readouterr().out
    assert "accuracy:" in text and "confusion matrix" in text
    rows = [line for line in text.splitlines() if line.strip() and line.split()[0].isdigit()]
    # 10 per-class lines + 10 confusion rows; the confusion rows sum to the 1,000 test digits
    confusion = [list(map(int, line.split()[1:])) for line in rows if len(line.split()) == 11]
    assert len(confusion) == 10 and sum(map(sum, confusion)) == 1000


def test_predict_png_variants(run_dir, digits, tmp_path, capsys):
    images, labels = digits
    folder = tmp_path / "digits"
    folder.mkdir()
    digit = images[0]
    Image.fromarray(digit).save(folder / "a_plain.png")
    Image.fromarray(np.stack([digit, digit // 2, digit], axis=-1)).convert("RGB").save(folder / "b_rgb.png")
    large = Image.fromarray(digit).resize((300, 220), Image.Resampling.BICUBIC)
    large.save(folder / "c_large.png")
    Image.fromarray(255 - digit).save(tmp_path / "inverted.jpg", quality=95)
    checkpoint = str(run_dir / io.CHECKPOINT_NAME)
    assert main(["predict", checkpoint, str(folder), str(tmp_path / "inverted.jpg"), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and all(line.count("%") == 3 for line in lines)
    predicted = {line.split()[1] for line in lines}
    assert len(predicted) == 1, lines  # every variant of one digit is read the same way
    assert all("%" in line for line in lines)


def test_summary(capsys):
    assert main(["summary", "lenet5"]) == 0
    text = capsys.readouterr().out
    assert "61,706" in text or "61706" in text
    assert main(["summary", "--list"]) == 0
    assert "lenet5" in capsys.readouterr().out.split()


def test_filter_writes_images(tmp_path, digits, capsys):
    source = tmp_path / "digit.png"
    Image.fromarray(np.kron(digits[0][0], np.ones((2, 2), np.uint8))).save(source)
    assert main(["filter", str(source), "--kernel", "gaussian_blur", "-o", str(tmp_path / "blur.png")]) == 0
    blurred = np.asarray(Image.open(tmp_path / "blur.png"))
    assert blurred.shape == (56, 56) and blurred.dtype == np.uint8
    expected = cl.filters.apply(np.asarray(Image.open(source)).astype(np.float32), "gaussian_blur")
    np.testing.assert_array_equal(blurred, np.clip(np.rint(expected), 0, 255))
    assert main(["filter", str(source), "--kernel", "sobel_x"]) == 0
    edges = np.asarray(Image.open(tmp_path / "digit_sobel_x.png"))
    assert edges.max() == 255 and edges.min() == 0
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.zeros((10, 12, 3), np.uint8) + 100).save(rgb)
    assert main(["filter", str(rgb), "--kernel", "sharpen", "--padding-mode", "replicate"]) == 0
    assert np.asarray(Image.open(tmp_path / "rgb_sharpen.png")).shape == (10, 12, 3)


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["evaluate", "missing.safetensors"], 1, "checkpoint not found: missing.safetensors"),
        (["summary", "resnet9000"], 2, "unknown model 'resnet9000'; known models: "),
        (["train", "--model", "resnet9000"], 2, "unknown model"),
        (["summary", "lenet5", "--input", "1xAx28"], 2, "invalid --input '1xAx28'"),
        (["train", "--dataset", "cifar"], 2, "invalid choice: 'cifar'"),
        (["train", "--epochs", "0"], 2, "positive integer"),
        (["filter", "nothere.png", "--kernel", "sharpen"], 1, "image not found: nothere.png"),
        (["filter", "x.png", "--kernel", "blurry"], 2, "unknown kernel 'blurry': not a file, and not one of"),
        (["filter", "x.png"], 2, "give --kernel NAME|FILE, or --grid"),
        (["visualize", "missing.safetensors", "x.png"], 1, "checkpoint not found: missing.safetensors"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_and_file_errors(argv, code, fragment, capsys):
    assert main(argv) == code
    assert fragment in _error_line(capsys)


def test_runtime_errors(run_dir, tmp_path, capsys, monkeypatch):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00garbage" * 50)
    assert main(["evaluate", str(corrupt)]) == 1
    assert "cannot read checkpoint" in _error_line(capsys)

    bad_image = tmp_path / "bad.png"
    bad_image.write_bytes(b"not a png at all")
    checkpoint = str(run_dir / io.CHECKPOINT_NAME)
    assert main(["predict", checkpoint, str(bad_image)]) == 1
    assert "cannot read image" in _error_line(capsys)
    assert main(["filter", str(bad_image), "--kernel", "sharpen"]) == 1
    assert "cannot read image" in _error_line(capsys)

    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((30, 30), 255, np.uint8)).save(blank)
    assert main(["predict", checkpoint, str(blank)]) == 1
    assert "no ink" in _error_line(capsys)

    assert main(["predict", checkpoint, str(tmp_path / "none.png")]) == 1
    assert "image not found" in _error_line(capsys)

    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(cl.data, "SYSTEM_DIRS", [str(tmp_path / "no-system")], raising=False)
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 1
    assert "data set 'mnist'" in _error_line(capsys)


def test_train_defaults(tmp_path, monkeypatch, capsys):
    """`convlens train` with no arguments: the best data set, the tuned defaults (no training here)."""
    import convlens.train as train_module

    calls = []

    def fake_fit(model, train_loader, val_loader, **kwargs):
        calls.append((model, train_loader, kwargs))
        return train_module.History()

    monkeypatch.setattr(train_module, "fit", fake_fit)
    monkeypatch.setattr(cl.data, "best_available", lambda root=None: "mnist-5k")
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2  # no command: the help
    assert main(["train"]) == 0
    ((model, loader, kwargs),) = calls
    assert type(model).__name__ == type(cl.models.lenet5()).__name__ and model.input_shape == (1, 28, 28)
    assert kwargs["epochs"] == 20 and kwargs["progress"] and loader.batch_size == 64 and loader.shuffle
    assert isinstance(kwargs["scheduler"], cl.optim.CosineAnnealingLR)
    assert kwargs["optimizer"].param_groups[0]["momentum"] == 0.9
    config = kwargs["config"]
    assert (config["lr"], config["seed"], config["augment"], config["dataset"]) == (0.02, 0, True, "mnist-5k")
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("lenet5-mnist-5k-") and (run / "config.json").exists()
    assert f"checkpoint: {run.relative_to(tmp_path) / io.CHECKPOINT_NAME}" in capsys.readouterr().out


def test_classic_lenet_gets_padded_inputs(tmp_path, capsys):
    argv = "train --model lenet5-classic --dataset mnist-5k --epochs 1 --limit 64 --no-progress"
    assert main([*argv.split(), "--out", str(tmp_path)]) == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["pad"] == 2 and config["input_shape"] == [1, 32, 32]
    assert main(["evaluate", str(tmp_path / io.CHECKPOINT_NAME)]) == 0
    assert "accuracy:" in capsys.readouterr().out


def test_divergence_is_one_clear_line(tmp_path, capsys):
    argv = "train --dataset mnist-5k --epochs 3 --limit 640 --lr 1e12 --schedule none --no-progress"
    assert main([*argv.split(), "--out", str(tmp_path)]) == 1
    line = _error_line(capsys)
    assert "training diverged: loss became" in line and "try a lower --lr (was 1e+12)" in line


def test_ctrl_c_saves_and_resume_continues(tmp_path, monkeypatch, capsys):
    import convlens.train as train_module

    real_fit = train_module.fit

    class CtrlC(train_module.Callback):
        def on_batch_end(self, state, loss):
            if state.global_step == 3:
                raise KeyboardInterrupt

    def interrupted_fit(*args, **kwargs):
        return real_fit(*args, **{**kwargs, "callbacks": [CtrlC()]})

    out = tmp_path / "run"
    argv = "train --dataset mnist-5k --epochs 1 --limit 256 --no-progress"
    argv = [*argv.split(), "--out", str(out)]
    monkeypatch.setattr(train_module, "fit", interrupted_fit)
    assert main([*argv]) == 130
    assert "checkpoint saved" in capsys.readouterr().err
    checkpoint = out / io.CHECKPOINT_NAME
    assert io.load_checkpoint(checkpoint)["step"] == 3
    monkeypatch.setattr(train_module, "fit", real_fit)
    assert main(["train", "--resume", str(checkpoint), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "resuming" in text and "test accuracy:" in text
    assert io.load_checkpoint(checkpoint)["epoch"] == 1


def test_help_in_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "convlens", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    for command in ("train", "evaluate", "predict", "summary", "filter", "visualize", "serve"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "summary", "filter", "visualize"])
def test_every_command_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "usage: convlens " + command in capsys.readouterr().out


def test_bad_checkpoint_directory(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "no checkpoint.safetensors in directory" in _error_line(capsys)


def test_filter_kernel_files_grid_and_bad_kernels(tmp_path, digits, capsys):
    source = tmp_path / "digit.png"
    Image.fromarray(digits[0][0]).save(source)
    text_kernel = tmp_path / "ridge.txt"
    np.savetxt(text_kernel, [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    assert main(["filter", str(source), "--kernel", str(text_kernel)]) == 0
    expected = cl.filters.apply(digits[0][0].astype(np.float32), "sharpen")
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "digit_ridge_txt.png")), filters.to_uint8(expected, False)
    )
    np.save(tmp_path / "k.npy", np.ones((2, 2)))
    assert (
        main(["filter", str(source), "--kernel", str(tmp_path / "k.npy"), "-o", str(tmp_path / "b.png")]) == 0
    )
    assert main(["filter", str(source), "--grid"]) == 0
    grid = Image.open(tmp_path / "digit_filters.png")
    assert grid.format == "PNG" and grid.size[0] > 500
    capsys.readouterr()
    np.save(tmp_path / "cube.npy", np.ones((2, 2, 2)))
    assert main(["filter", str(source), "--kernel", str(tmp_path / "cube.npy")]) == 1
    assert "must hold a 2-D array" in _error_line(capsys)
    np.save(tmp_path / "huge.npy", np.ones((40, 40)))
    assert main(["filter", str(source), "--kernel", str(tmp_path / "huge.npy")]) == 1
    assert "is larger than the image (28x28)" in _error_line(capsys)


def test_train_draws_curves_and_confusion_and_visualize_draws_the_network(run_dir, digits, tmp_path, capsys):
    for name in ("training_curves.png", "confusion_matrix.png"):
        assert Image.open(run_dir / name).format == "PNG"
    source = tmp_path / "digit.png"
    Image.fromarray(digits[0][0]).save(source)
    assert main(["visualize", str(run_dir / io.CHECKPOINT_NAME), str(source), "-o", str(tmp_path)]) == 0
    for name in ("kernels.png", "feature_maps.png"):
        assert Image.open(tmp_path / name).format == "PNG"
    capsys.readouterr()
    (tmp_path / "bad.png").write_text("not an image")
    assert main(["visualize", str(run_dir / io.CHECKPOINT_NAME), str(tmp_path / "bad.png")]) == 1
    assert "bad.png" in _error_line(capsys)

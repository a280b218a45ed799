"""One line for every user error, across every ``convlens`` command (like PyTorch's error_inputs).

A table of bad inputs per command, each with the message it must print: one line
``convlens: error: ...`` on stderr, no traceback, exit status 1 (2 for usage errors).
Then a corpus of crafted hostile files (truncated, forged and bit-flipped checkpoints,
hostile JSON configs, bad images) replayed through every command that reads them.
Then what ``--resume`` does with the options it is given.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from threadpoolctl import threadpool_limits

from convlens import generations, io
from convlens.cli import main


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    with threadpool_limits(1, user_api="blas"):
        yield


def one_line(capsys, code: int, expected_code: int) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err + captured.out, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("convlens: error: "), lines[0]
    assert code == expected_code, (code, lines[0])
    return lines[0]


TRAIN = "train --dataset mnist-5k --limit 96 --batch-size 32 --no-progress --seed 1"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A short training run (2 epochs of 3 batches) and its output directory."""
    out = tmp_path_factory.mktemp("run")
    assert main([*TRAIN.split(), "--epochs", "2", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("files")
    made = {}
    digit = np.zeros((40, 40), np.uint8)
    digit[8:32, 18:23] = 255
    for name, array in {"digit.png": digit, "blank.png": np.full((30, 30), 255, np.uint8)}.items():
        Image.fromarray(array).save(folder / name)
        made[name] = folder / name
    (folder / "notes.txt").write_text("1 2\n3 x\n")
    np.save(folder / "cube.npy", np.zeros((2, 2, 2)))
    np.save(folder / "huge.npy", np.zeros((64, 64)))
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (folder / "k.txt").write_text("0 1 0\n1 -4 1\n0 1 0\n")
    np.save(folder / "k.npy", np.array([[1.0, 2.0, 1.0]]) / 4)
    made.update({p.name: p for p in folder.iterdir()})
    made["bomb.png"] = bomb_png(folder / "bomb.png")
    made["folder"] = folder
    return made


def bomb_png(path: Path, side: int = 20_000) -> Path:
    """A small PNG whose header declares side x side pixels (over Pillow's limit)."""
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", side, side)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def copy_run(run: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(run, target)
    return target


def forge(run_dir: Path, change) -> Path:
    """Edit the current checkpoint's JSON with ``change(meta)`` and re-sign its SHA256SUMS,
    as an attacker (or a determined user) would: the schema, not the checksum, must refuse it."""
    generation = generations.choose(run_dir / "checkpoint.d")
    meta_path = generation / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    change(meta)
    meta_path.write_text(json.dumps(meta))
    sums = "".join(
        f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
        for p in sorted(generation.iterdir())
        if p.name != generations.MANIFEST
    )
    (generation / generations.MANIFEST).write_text(sums)
    return run_dir


# --------------------------------------------------------------------------- error table
def config_edit(**values):
    return lambda meta: meta["config"].update(values)


def extra_edit(**values):
    return lambda meta: meta["extra"].update(values)


FORGED = {
    "classes": (config_edit(classes=["a", "b", "c"]), "classes must name each of the model's 10 outputs"),
    "mean": (config_edit(mean=float("nan")), "mean must be a finite number"),
    "std0": (config_edit(std=0), "std must be a finite number > 0. Received: std=0"),
    "std-": (config_edit(std=-1.0), "std must be a finite number > 0"),
    "epoch": (extra_edit(epoch=-1), "extra.epoch must be an int in [0, 100000]. Received: epoch=-1"),
    "step": (extra_edit(step=-4), "extra.step must be an int"),
    "huge": (
        lambda meta: meta.update(
            model={"class": "Linear", "args": {"in_features": 1 << 20, "out_features": 1 << 20}}
        ),
        "more than the limit of 50,000,000",
    ),
    "factory": (lambda meta: meta["model"].update(factory="resnet"), "model.factory must be one of"),
    "lr": (
        lambda meta: meta["optimizer"]["param_groups"][0].update(lr=float("inf")),
        "param_groups[0].lr must be a finite number",
    ),
}

# (argv with {run}, {digit}, ... placeholders, expected exit status, message pattern)
ERRORS = [
    # train: usage errors are caught by argparse (exit 2)
    ("train --momentum -5", 2, r"--momentum: expected a number in \[0, 1\), got '-5'"),
    ("train --momentum 1", 2, r"--momentum: expected a number in \[0, 1\)"),
    ("train --momentum nan", 2, r"--momentum"),
    ("train --lr 0", 2, r"--lr: expected a positive number, got '0'"),
    ("train --lr inf", 2, r"--lr: expected a positive number"),
    ("train --lr -1e-3", 2, r"--lr"),
    ("train --batch-size 0", 2, r"--batch-size: expected an integer in \[1, 65536\], got '0'"),
    ("train --batch-size 1000000", 2, r"--batch-size: expected an integer in \[1, 65536\]"),
    ("train --epochs -1", 2, r"--epochs: expected a positive integer"),
    ("train --seed -1", 2, r"--seed: expected an integer in \[0, 4294967295\]"),
    ("train --seed 1.5", 2, r"--seed"),
    ("train --limit 0", 2, r"--limit"),
    ("train --checkpoint-every 0", 2, r"--checkpoint-every"),
    ("train --optimizer lbfgs", 2, r"invalid choice: 'lbfgs'"),
    ("train --model resnet9000", 2, r"unknown model 'resnet9000'"),
    ("train --dataset cifar", 2, r"invalid choice: 'cifar'"),
    ("train --frobnicate", 2, r"unrecognized arguments: --frobnicate"),
    ("train --data-dir {missing}", 1, r"--data-dir .*missing.* is not a directory"),
    ("train --resume {missing}", 1, r"checkpoint not found"),
    ("train --resume {folder}", 1, r"no checkpoint.safetensors in directory"),
    (
        "train --resume {run} --model lecture_cnn",
        2,
        r"cannot change when resuming: --model \(the run uses lenet5\)",
    ),
    ("train --resume {run} --dataset mnist", 2, r"--dataset \(the run uses mnist-5k\)"),
    ("train --resume {run} --optimizer adam", 2, r"--optimizer \(the run uses sgd\)"),
    ("train --resume {run} --batch-size 64", 2, r"--batch-size \(the run uses 32\)"),
    (
        "train --resume {run} --seed 3 --no-augment --limit 10",
        2,
        r"cannot change when resuming: --seed \(the run uses 1\), --augment \(.*\), "
        r"--limit \(the run uses 96\)",
    ),
    ("train --resume {run} --epochs 1", 2, r"--epochs 1 would not extend the run: it has done 2 epochs"),
    # evaluate
    ("evaluate {missing}", 1, r"checkpoint not found"),
    ("evaluate {folder}", 1, r"no checkpoint.safetensors in directory"),
    ("evaluate {digit}", 1, r"checkpoint not found|cannot read checkpoint"),
    ("evaluate {run} --batch-size 0", 2, r"--batch-size: expected a positive integer"),
    ("evaluate {run} --dataset cifar", 2, r"invalid choice: 'cifar'"),
    ("evaluate {run} --data-dir {missing}", 1, r"--data-dir .* is not a directory"),
    # predict
    ("predict {run} {missing}", 1, r"image not found"),
    ("predict {run} {notes_txt}", 1, r"cannot read image|Pillow cannot decode"),
    ("predict {run} {bomb_png}", 1, r"more pixels than Pillow accepts"),
    ("predict {run} {blank_png}", 1, r"blank.png.*blank \(no ink found\)"),
    ("predict {run} {digit} --top 0", 2, r"--top: expected a positive integer"),
    ("predict {missing} {digit}", 1, r"checkpoint not found"),
    # summary
    ("summary resnet9000", 2, r"unknown model 'resnet9000'; known models: "),
    ("summary lenet5 --input 1xAx28", 2, r"invalid --input '1xAx28'"),
    ("summary lenet5 --input 0x28x28", 2, r"invalid --input '0x28x28'"),
    ("summary lenet5 --input 1x4x4", 1, r"lenet5 cannot take input 1x4x4"),
    # filter
    ("filter {missing} --kernel sharpen", 1, r"image not found"),
    ("filter {digit} --kernel blurry", 2, r"unknown kernel 'blurry'"),
    ("filter {digit}", 2, r"give --kernel NAME\|FILE, or --grid"),
    ("filter {digit} --kernel {notes_txt}", 1, r"notes.txt"),
    ("filter {digit} --kernel {cube_npy}", 1, r"2-D"),
    ("filter {digit} --kernel {objects_npy}", 1, r"objects.npy"),
    ("filter {digit} --kernel {huge_npy}", 1, r"larger than the image"),
    ("filter {bomb_png} --kernel sharpen", 1, r"more pixels than Pillow accepts"),
    ("filter {notes_txt} --kernel sharpen", 1, r"cannot read image|Pillow cannot decode"),
    ("filter {digit} --kernel sharpen --padding-mode mirror", 2, r"invalid choice: 'mirror'"),
    # visualize
    ("visualize {missing} {digit}", 1, r"checkpoint not found"),
    ("visualize {run} {missing}", 1, r"image not found"),
    ("visualize {run} {bomb_png}", 1, r"more pixels than Pillow accepts"),
    ("visualize {run} {blank_png}", 1, r"blank"),
    # no command, unknown command
    ("frobnicate", 2, r"invalid choice: 'frobnicate'"),
] + [
    (
        f"{command} {{forged-{name}}}" + (" {digit}" if command in ("predict", "visualize") else ""),
        1,
        re.escape(text),
    )
    for name, (_, text) in FORGED.items()
    for command in ("evaluate", "predict", "visualize", "train --resume")
]


@pytest.fixture(scope="module")
def places(run, files, tmp_path_factory) -> dict[str, str]:
    forged = tmp_path_factory.mktemp("forged")
    found = {"run": str(run), "missing": str(forged / "missing"), "digit": str(files["digit.png"])}
    found["folder"] = str(files["folder"])
    found.update({name.replace(".", "_"): str(path) for name, path in files.items()})
    for name, (change, _) in FORGED.items():
        found[f"forged-{name}"] = str(forge(copy_run(run, forged / name), change))
    return found


@pytest.mark.parametrize(("argv", "code", "pattern"), ERRORS, ids=[a for a, _, _ in ERRORS])
def test_every_bad_input_is_one_line(places, capsys, argv, code, pattern):
    filled = [part.format(**places) for part in argv.split()]
    line = one_line(capsys, main(filled), code)
    assert re.search(pattern, line), line


def test_filter_without_pillow_is_one_line(files, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_pillow(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ModuleNotFoundError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    for module in [m for m in sys.modules if m == "PIL" or m.startswith("PIL.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", no_pillow)
    line = one_line(capsys, main(["filter", str(files["digit.png"]), "--kernel", "sharpen"]), 1)
    assert "needs Pillow" in line and "pip install" in line


def test_std_zero_is_refused_not_printed_as_nan(run, tmp_path, capsys):
    forged = forge(copy_run(run, tmp_path / "std0"), config_edit(std=0))
    code = main(["evaluate", str(forged)])
    captured = capsys.readouterr()
    assert code == 1 and "nan%" not in captured.out and "std must be a finite number > 0" in captured.err


# ----------------------------------------------------------------------- hostile corpus
def hostile_checkpoints(run: Path, folder: Path) -> dict[str, Path]:
    """Crafted checkpoint files: each must be refused with one line by every command."""
    weights = (generations.choose(run / "checkpoint.d") / "checkpoint.safetensors").read_bytes()
    meta = json.loads((generations.choose(run / "checkpoint.d") / "checkpoint.json").read_text())
    made: dict[str, Path] = {}

    def plain(name: str, weights_bytes: bytes, meta_value) -> None:
        target = folder / name
        target.mkdir()
        (target / "checkpoint.safetensors").write_bytes(weights_bytes)
        if meta_value is not None:
            text = meta_value if isinstance(meta_value, bytes) else json.dumps(meta_value).encode()
            (target / "checkpoint.json").write_bytes(text)
        made[name] = target / "checkpoint.safetensors"

    def resigned(weights_bytes: bytes) -> dict:
        return {**meta, "weights": {**meta["weights"], "sha256": hashlib.sha256(weights_bytes).hexdigest()}}

    truncated = weights[: len(weights) // 2]
    flipped = bytearray(weights)
    flipped[len(weights) // 3] ^= 0xFF
    header_length = struct.unpack("<Q", weights[:8])[0]
    header = json.loads(weights[8 : 8 + header_length])
    key = next(k for k in header if k != "__metadata__")
    header[key]["shape"] = [1 << 20, 1 << 20]
    forged_text = json.dumps(header).encode()
    forged_header = struct.pack("<Q", len(forged_text)) + forged_text + weights[8 + header_length :]
    claims_more = struct.pack("<Q", 1 << 40) + weights[8:]
    plain("truncated", truncated, resigned(truncated))
    plain("flipped-signed", bytes(flipped), resigned(bytes(flipped)))
    plain("flipped-unsigned", bytes(flipped), meta)
    plain("forged-header", forged_header, resigned(forged_header))
    plain("header-claims-1tb", claims_more, resigned(claims_more))
    plain("empty", b"", resigned(b""))
    plain("no-json", weights, None)
    plain("json-garbage", weights, b"\xff\x00{not json")
    plain("json-list", weights, [1, 2, 3])
    plain("json-deep", weights, b"[" * 100_000 + b"]" * 100_000)
    plain("json-huge-number", weights, {**meta, "extra": {**meta["extra"], "epoch": 10**400}})
    plain("json-wrong-format", weights, {**meta, "format": "pickle"})
    plain("json-future", weights, {**meta, "format_version": 99})
    plain("json-history", weights, {**meta, "extra": {**meta["extra"], "history": {"epochs": [{"x": 1}]}}})
    plain("json-scheduler", weights, {**meta, "extra": {**meta["extra"], "scheduler": {"optimizer": 1}}})
    plain("json-model-none", weights, {**meta, "model": None})
    plain("json-classes-dict", weights, {**meta, "config": {**meta["config"], "classes": {"a": 1}}})
    store = folder / "store-broken"
    (store / "checkpoint.d" / "gen-000001").mkdir(parents=True)
    (store / "checkpoint.d" / "CURRENT").write_text("gen-000001\n")
    made["store-without-generation"] = store / "checkpoint.safetensors"
    return made


def hostile_images(folder: Path) -> dict[str, Path]:
    made = {}
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(folder / "ok.png")
    png = (folder / "ok.png").read_bytes()
    for name, payload in {
        "empty.png": b"",
        "truncated.png": png[: len(png) // 2],
        "text.png": b"hello",
        "header-only.png": png[:33],
        "fake.jpg": b"\xff\xd8\xff\xe0" + b"\x00" * 20,
        "fake.gif": b"GIF89a" + b"\x00" * 10,
    }.items():
        (folder / name).write_bytes(payload)
        made[name] = folder / name
    made["bomb.png"] = bomb_png(folder / "bomb.png")
    made["wide-bomb.png"] = bomb_png(folder / "wide-bomb.png", side=65_000)
    (folder / "ok.png").unlink()
    return made


@pytest.fixture(scope="module")
def corpus(run, tmp_path_factory):
    return hostile_checkpoints(run, tmp_path_factory.mktemp("hostile")), hostile_images(
        tmp_path_factory.mktemp("images")
    )


def test_every_command_refuses_every_hostile_checkpoint_in_one_line(corpus, files, capsys):
    checkpoints, _ = corpus
    digit = str(files["digit.png"])
    for name, path in checkpoints.items():
        for argv in (
            ["evaluate", str(path)],
            ["predict", str(path), digit],
            ["visualize", str(path), digit, "-o", str(path.parent / "pictures")],
            ["train", "--resume", str(path), "--no-progress"],
        ):
            line = one_line(capsys, main(argv), 1)
            assert "cannot read checkpoint" in line or "not found" in line or "checkpoint" in line, (
                name,
                line,
            )


def test_every_command_refuses_every_hostile_image_in_one_line(corpus, run, capsys):
    _, images = corpus
    for name, path in images.items():
        for argv in (
            ["predict", str(run), str(path)],
            ["filter", str(path), "--kernel", "sharpen"],
            ["visualize", str(run), str(path), "-o", str(path.parent / "pictures")],
        ):
            line = one_line(capsys, main(argv), 1)
            assert path.name in line, (name, argv[0], line)


# ------------------------------------------------------------------- images, predict, filter
def test_predict_on_a_folder_continues_past_a_blank_image_and_names_it(run, files, tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for name in ("a.png", "c.png"):
        (folder / name).write_bytes(files["digit.png"].read_bytes())
    (folder / "b.png").write_bytes(files["blank.png"].read_bytes())
    assert main(["predict", str(run), str(folder)]) == 0
    captured = capsys.readouterr()
    printed = captured.out.strip().splitlines()
    assert [line.split()[0] for line in printed] == [str(folder / "a.png"), str(folder / "c.png")]
    assert captured.err.strip().splitlines() == [
        f"convlens: warning: skipped {folder / 'b.png'}: the image is blank (no ink found)"
    ]


def test_white_ink_on_a_transparent_png_is_not_blank(run, tmp_path, capsys):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[8:32, 18:23] = (255, 255, 255, 255)  # white, opaque ink; the rest fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "white-ink.png")
    dark = rgba.copy()
    dark[8:32, 18:23] = (0, 0, 0, 255)  # and the usual case: dark ink on a transparent background
    Image.fromarray(dark, "RGBA").save(tmp_path / "dark-ink.png")
    assert main(["predict", str(run), str(tmp_path / "white-ink.png"), str(tmp_path / "dark-ink.png")]) == 0
    assert capsys.readouterr().err == ""
    from convlens.images import prepare_digit

    np.testing.assert_allclose(
        prepare_digit(tmp_path / "white-ink.png"), prepare_digit(tmp_path / "dark-ink.png")
    )


def test_kernel_files_with_the_same_stem_do_not_overwrite_each_other(files, tmp_path, capsys):
    image = tmp_path / "photo.png"
    image.write_bytes(files["digit.png"].read_bytes())
    assert main(["filter", str(image), "--kernel", str(files["k.txt"])]) == 0
    assert main(["filter", str(image), "--kernel", str(files["k.npy"])]) == 0
    written = sorted(p.name for p in tmp_path.iterdir() if p.name != "photo.png")
    assert len(written) == 2, written
    capsys.readouterr()


def test_evaluate_warns_when_the_data_set_is_not_the_one_trained_on(run, tmp_path, capsys):
    clothes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Boot",
    ]
    forged = forge(copy_run(run, tmp_path / "fashion"), config_edit(dataset="fashion-mnist", classes=clothes))
    assert main(["evaluate", str(forged), "--dataset", "mnist-5k"]) == 0
    captured = capsys.readouterr()
    (warning,) = captured.err.strip().splitlines()
    assert warning.startswith("convlens: warning: ") and "fashion-mnist" in warning and "mnist-5k" in warning
    assert "T-shirt" not in captured.out  # digits are not labelled with clothing names


# -------------------------------------------------------------------------------- resume
def test_resume_extends_the_run_and_replans_the_cosine_schedule(run, tmp_path, capsys):
    resumed = copy_run(run, tmp_path / "more")
    capsys.readouterr()
    assert main(["train", "--resume", str(resumed), "--epochs", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"extending the run from 2 to 4 epochs: the cosine schedule is re-planned over 4", out
    ), out
    history = json.loads((resumed / "history.json").read_text())
    lrs = [record["lr"] for record in history["epochs"]]
    assert len(lrs) == 4 and all(lr > 0 for lr in lrs[2:]), lrs
    assert lrs[2] > lrs[3]  # falling again towards the new end, never trained at 0 then rising
    assert io.load_checkpoint(resumed)["epoch"] == 4


def test_resume_applies_a_new_learning_rate_and_says_so(run, tmp_path, capsys):
    resumed = copy_run(run, tmp_path / "lr")
    capsys.readouterr()
    assert main(["train", "--resume", str(resumed), "--epochs", "3", "--lr", "0.005", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "--lr 0.005 (was 0.02)" in out, out
    history = json.loads((resumed / "history.json").read_text())
    assert 0 < history["epochs"][2]["lr"] <= 0.005


def test_resuming_a_finished_run_says_how_to_extend_it(run, capsys):
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "already finished its 2 epochs" in out[0] and "--epochs N" in out[0], out

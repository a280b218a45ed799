"""The steps of docs/scale-out.md, each run: DDP training under torchrun (two gloo processes on
127.0.0.1) from convlens weights, the model brought back and its accuracy checked in convlens,
then exported and served in ONNX Runtime by the example script."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch.distributed")

import convlens as cl  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    if not torch.distributed.is_gloo_available():
        pytest.skip("this torch build has no gloo backend")
    folder = tmp_path_factory.mktemp("ddp")
    cl.manual_seed(0)
    start = cl.models.get("lenet5")
    cl.save(start, folder / "start", config={"input_shape": [1, 28, 28]})
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(EXAMPLES / "ddp_train.py"), "--checkpoint", str(folder / "start"),
        "--out", str(folder / "trained"), "--steps", "60",
    ]  # fmt: skip
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    return start, folder, report


def test_ddp_two_processes_train_from_convlens_weights(ddp_run):
    start, folder, report = ddp_run
    assert report["world_size"] == 2 and report["steps"] == 60
    assert report["ranks_agree"]  # DDP kept the two processes' weights identical
    trained = cl.load(folder / "trained")
    changed = [k for k, v in trained.state_dict().items() if not np.allclose(v, start.state_dict()[k])]
    assert changed == list(start.state_dict())  # every weight moved
    assert report["convlens_accuracy"] == pytest.approx(report["torch_accuracy"], abs=0.002)
    assert report["convlens_accuracy"] > 0.75  # 60 steps of 64 digits; chance is 0.1


def test_brought_back_model_is_checked_in_convlens(ddp_run):
    from ddp_train import accuracy_convlens, model_inputs

    _, folder, report = ddp_run
    trained = cl.load(folder / "trained")
    test = cl.data.load_dataset("mnist-5k").test
    x, normalisation = model_inputs(test.images, (1, 28, 28))
    assert accuracy_convlens(trained, x, test.labels) == pytest.approx(report["convlens_accuracy"])
    config = cl.io.load(folder / "trained", with_optimizer=True).config
    assert config["mean"] == normalisation["mean"] and config["input_shape"] == [1, 28, 28]


def test_export_and_serve_the_trained_model(ddp_run, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("PIL")
    from PIL import Image

    from convlens.cli import export as cli

    _, folder, _ = ddp_run
    out = tmp_path / "lenet5.onnx"
    parser = __import__("argparse").ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args([str(folder / "trained"), "--onnx", str(out)])) == 0
    test = cl.data.load_dataset("mnist-5k").test
    pictures = []
    for i in range(4):
        pictures.append(tmp_path / f"digit{i}.png")
        Image.fromarray(test.images[i]).save(pictures[-1])
    served = subprocess.run(
        [sys.executable, str(EXAMPLES / "serve_onnxruntime.py"), str(out), *map(str, pictures)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert served.returncode == 0, served.stderr
    lines = served.stdout.strip().splitlines()
    assert len(lines) == 4
    trained = cl.load(folder / "trained")
    batch = cl.images.model_input(pictures, (1, 28, 28))
    with cl.no_grad():
        expected = trained(cl.tensor(batch)).data.argmax(1)
    assert [line.split()[1] for line in lines] == [str(c) for c in expected]

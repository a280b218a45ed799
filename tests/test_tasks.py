"""The other tasks end to end: WaveNet's causality and receptive field, the log-mel front end
against torch.stft, gradients in float64, the config schema, and the CLI on tiny data."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import gradcheck, relative_error, to_torch, torch
from test_audio import wav_bytes
from test_fsdd import fake_recordings

import convlens as cl
from convlens import config_schema, fsdd, models, scenes, tasks
from convlens.cli import main
from convlens.models.spectro import hann_stft_kernels, mel_filterbank
from convlens.models.wavenet import CausalConv1d


def test_causal_conv_sees_only_the_past_and_matches_torch():
    rng = np.random.default_rng(0)
    layer = CausalConv1d(3, 4, kernel_size=3, dilation=2)
    x = rng.standard_normal((2, 3, 20)).astype(np.float32)
    out = layer(x).data
    expected = torch.nn.functional.conv1d(
        torch.nn.functional.pad(to_torch(x), (4, 0)),
        to_torch(layer.conv.weight.data),
        to_torch(layer.conv.bias.data),
        dilation=2,
    )
    assert relative_error(out, expected.numpy()) < 1e-5 and out.shape == (2, 4, 20)
    changed = x.copy()
    changed[:, :, 12:] += 1.0
    np.testing.assert_array_equal(layer(changed).data[:, :, :12], out[:, :, :12])


def test_receptive_field_is_what_the_gradient_reaches():
    cl.manual_seed(0)
    model = models.get(
        "wavenet",
        channels=3,
        skip_channels=3,
        dilations=(1, 2, 4, 8),
        front_kernel=16,
        front_stride=4,
        length=400,
    )
    x = cl.tensor(
        np.random.default_rng(1).standard_normal((1, 1, 400)).astype(np.float64), requires_grad=True
    )
    model.double().eval()  # in training, BatchNorm's batch statistics would mix every step
    h, total = model.filter_bank(x), 0
    for block in model.blocks:  # the summed skips, before the head's ReLU (which may zero a step)
        h, skip = block(h)
        total = total + skip
    total[:, :, -1].sum().backward()
    reached = np.flatnonzero(x.grad[0, 0])
    assert 400 - reached[0] == model.receptive_field() == 16 + 4 * 15
    assert "Receptive field: 76 input samples" in str(cl.summary(model, (1, 400)))


class TorchWaveNet(torch.nn.Module):
    """An independent PyTorch WaveNet of the same architecture (the module docstring's formulas)."""

    def __init__(self, c, s, dilations, front_kernel, front_stride, pool):
        super().__init__()
        tnn = torch.nn
        self.dilations, self.pool = dilations, pool
        self.front = tnn.Conv1d(1, c, front_kernel, stride=front_stride, bias=False)
        self.front_norm = tnn.BatchNorm1d(c)
        self.gates = tnn.ModuleList(tnn.Conv1d(c, 2 * c, 2, dilation=d) for d in dilations)
        self.residuals = tnn.ModuleList(tnn.Conv1d(c, c, 1) for _ in dilations[1:])
        self.skips = tnn.ModuleList(tnn.Conv1d(c, s, 1) for _ in dilations)
        self.post, self.post_norm = tnn.Conv1d(s, s, 1, bias=False), tnn.BatchNorm1d(s)
        self.classifier = tnn.Linear(s, 10)

    def forward(self, x):
        h, total = self.front_norm(self.front(x)).abs(), 0
        for i, d in enumerate(self.dilations):
            f, g = self.gates[i](torch.nn.functional.pad(h, (d, 0))).chunk(2, dim=1)
            z = torch.tanh(f) * torch.sigmoid(g)
            total = total + self.skips[i](z)
            if i < len(self.residuals):
                h = h + self.residuals[i](z)
        features = torch.relu(self.post_norm(self.post(torch.relu(total))))
        return self.classifier(features.mean(2) if self.pool == "mean" else features.amax(2))


def _copy_wavenet_weights(model, twin):
    """Our ``blocks.{i}.gate.conv.*`` is the twin's ``gates.{i}.*``; the other names are equal."""
    renamed = {}
    for name, value in model.state_dict().items():
        if name.startswith("blocks."):
            _, i, part, rest = name.split(".", 3)
            part, rest = ("gate", rest.removeprefix("conv.")) if part == "gate" else (part, rest)
            name = f"{part}s.{i}.{rest}"
        renamed[name] = torch.as_tensor(np.asarray(value))
    twin.load_state_dict(renamed)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wavenet_matches_a_torch_twin_forward_and_backward(seed):
    rng = np.random.default_rng(seed)
    c, s = (int(v) for v in rng.integers(2, 6, size=2))
    dilations = tuple(2**i for i in range(int(rng.integers(1, 5))))
    front_kernel, front_stride = int(rng.integers(4, 17)), int(rng.integers(1, 5))
    pool = ("mean", "max")[seed % 2]
    cl.manual_seed(seed)
    model = models.get(
        "wavenet",
        channels=c,
        skip_channels=s,
        dilations=dilations,
        front_kernel=front_kernel,
        front_stride=front_stride,
        length=300,
        pool=pool,
    ).double()
    twin = TorchWaveNet(c, s, dilations, front_kernel, front_stride, pool).double()
    _copy_wavenet_weights(model, twin)
    x = rng.standard_normal((3, 1, 300))
    labels = rng.integers(0, 10, size=3)
    loss = cl.functional.cross_entropy(model(x), labels)
    loss.backward()
    expected = torch.nn.functional.cross_entropy(twin(to_torch(x)), torch.as_tensor(labels))
    expected.backward()
    assert abs(loss.item() - expected.item()) < 1e-10
    assert relative_error(model.front.weight.grad, twin.front.weight.grad.numpy()) < 1e-8
    assert relative_error(model.blocks[0].gate.conv.weight.grad, twin.gates[0].weight.grad.numpy()) < 1e-8


def test_every_wavenet_parameter_gets_a_gradient():
    cl.manual_seed(0)
    model = models.get("wavenet", channels=4, skip_channels=6, dilations=(1, 2, 4), length=1000)
    x = np.random.default_rng(5).standard_normal((4, 1, 1000)).astype(np.float32)
    cl.functional.cross_entropy(model(x), np.arange(4)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and np.abs(parameter.grad).max() > 0, name
    assert model.blocks[-1].residual is None and all(b.residual is not None for b in model.blocks[:-1])


def test_wavenet_and_logmel_gradcheck_in_float64():
    cl.manual_seed(0)
    wavenet = models.get(
        "wavenet", channels=2, skip_channels=2, dilations=(1, 2), front_kernel=8, front_stride=2, length=40
    ).double()
    gradcheck(lambda x: wavenet(x), np.random.default_rng(2).standard_normal((1, 1, 40)), tol=1e-5)
    logmel = models.spectro.LogMelCNN(n_fft=16, hop=8, n_mels=4, channels=(2,), length=40).double().eval()
    gradcheck(lambda x: logmel(x), np.random.default_rng(3).standard_normal((1, 1, 40)), tol=1e-5)


def test_stft_as_a_strided_convolution_matches_torch_stft():
    x = np.random.default_rng(4).standard_normal((2, 1, 1000)).astype(np.float64)
    spectrum = cl.functional.conv1d(x, hann_stft_kernels(256).astype(np.float64), stride=128).data
    power = spectrum[:, :129] ** 2 + spectrum[:, 129:] ** 2
    reference = torch.stft(
        to_torch(x[:, 0]),
        256,
        128,
        window=torch.hann_window(256, dtype=torch.float64),
        center=False,
        return_complex=True,
    )
    assert relative_error(power, reference.abs().numpy() ** 2) < 1e-6  # the kernels are stored in float32
    bank = mel_filterbank(40, 256, 8000)
    assert bank.shape == (40, 129) and (bank.max(axis=1) > 0.5).all() and bank.min() >= 0


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("wavenet", {}),
        ("wavenet", {"dilations": (1,), "front_kernel": 16, "front_stride": 4, "pool": "max"}),
        ("logmel_cnn", {}),
        ("unet", {}),
        ("unet", {"width": 4, "depth": 3}),
    ],
)
def test_config_schema_counts_the_new_models_exactly(name, kwargs):
    model = models.get(name, **kwargs)
    count = sum(v.size for v in model.state_dict().values())
    assert config_schema.check_architecture(model.get_config()).parameters == count


def test_unet_trains_a_few_steps_and_reports_iou():
    cl.manual_seed(0)
    config = tasks.task_config("segment", epochs=2, batch_size=8)
    train = scenes.digit_scenes("train", count=16, seed=0)
    model = models.get("unet", width=4)
    loaders = (scenes.SceneLoader(train, 8, shuffle=True), scenes.SceneLoader(train, 8))
    model, history = tasks.train_task(config, model=model, loaders=loaders)
    assert history.epochs[-1].train_loss < history.epochs[0].train_loss
    result = tasks.evaluate_task(model, config, loaders[1])
    assert 0 <= result.pixel_accuracy <= 1 and result.iou.shape == (11,)
    assert result.confusion.sum() == 16 * 64 * 64
    mask = tasks.predict_mask(model, train.images[0])
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    with pytest.raises(ValueError, match="takes 64x64 grayscale scenes"):
        tasks.predict_mask(model, np.zeros((28, 28), np.uint8))


@pytest.fixture
def tiny_fsdd(tmp_path, monkeypatch):
    sums = fake_recordings(tmp_path / "data" / "fsdd" / "recordings", count=24)
    monkeypatch.setattr(fsdd, "checksums", lambda: sums)
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))
    return tmp_path


def test_cli_spoken_digits_train_evaluate_predict(tiny_fsdd, capsys):
    tmp = tiny_fsdd
    out = tmp / "run"
    argv = [
        "train",
        "--task",
        "spoken-digits",
        "--data-dir",
        str(tmp / "data"),
        "--epochs",
        "1",
        "--no-progress",
    ]
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "training wavenet for spoken-digits" in text and "test accuracy:" in text
    assert (out / "checkpoint.json").exists() or any(out.glob("checkpoint*"))
    assert main(["evaluate", str(out), "--data-dir", str(tmp / "data")]) == 0
    assert "test accuracy:" in capsys.readouterr().out
    wav = sorted((tmp / "data" / "fsdd" / "recordings").iterdir())[0]
    assert main(["predict", str(out), str(wav), "--top", "2"]) == 0
    assert str(wav) in capsys.readouterr().out
    loud = tmp / "loud.wav"
    loud.write_bytes(wav_bytes(np.zeros(800), rate=44100, channels=2))
    assert main(["predict", str(out), str(loud)]) == 1
    error = capsys.readouterr().err.strip()
    assert "must be 8000 Hz mono 16-bit PCM; it is 44100 Hz, 2 channel(s)" in error and "\n" not in error


def test_cli_spoken_digits_missing_files_is_one_line(tiny_fsdd, capsys):
    tmp = tiny_fsdd
    victim = sorted((tmp / "data" / "fsdd" / "recordings").iterdir())[0]
    victim.unlink()
    argv = ["train", "--task", "spoken-digits", "--data-dir", str(tmp / "data"), "--epochs", "1"]
    assert main([*argv, "--out", str(tmp / "run")]) == 1
    error = capsys.readouterr().err.strip()
    assert "1 of the 24 FSDD recordings are missing" in error and victim.name in error and "\n" not in error


def test_cli_segment_train_and_predict_writes_the_mask(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(
        tasks.TASKS["segment"], "test_scenes", 20
    )  # a fast test; the defaults are for real runs
    out = tmp_path / "run"
    argv = [
        "train",
        "--task",
        "segment",
        "--epochs",
        "1",
        "--limit",
        "32",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "pixel accuracy:" in text and "IoU per class: background=" in text
    from PIL import Image

    scene = tmp_path / "scene.png"
    Image.fromarray(scenes.digit_scenes("test", count=1, seed=5).images[0]).save(scene)
    assert main(["predict", str(out), str(scene)]) == 0
    with Image.open(tmp_path / "scene.mask.png") as mask:
        assert mask.size == (64, 64) and mask.mode == "P" and np.asarray(mask).max() <= 10
        assert mask.getpalette()[: 3 * 11] == scenes.mask_colours(11).reshape(-1).tolist()
    wrong = tmp_path / "small.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(wrong)
    assert main(["predict", str(out), str(wrong)]) == 1
    assert "takes 64x64 grayscale scenes" in capsys.readouterr().err


def test_unet_and_cat_gradcheck_in_float64():
    cl.manual_seed(0)
    unet = models.get("unet", width=2, depth=2, size=8, num_classes=3).double().eval()
    gradcheck(lambda x: unet(x), np.random.default_rng(0).standard_normal((1, 1, 8, 8)), tol=1e-5)
    a, b = (
        np.random.default_rng(1).standard_normal((2, 2, 3)),
        np.random.default_rng(2).standard_normal((2, 1, 3)),
    )
    gradcheck(lambda p, q: cl.cat([p, q], dim=1) * cl.cat([q, p], dim=1), a, b)
    with pytest.raises(ValueError, match="cat: shapes must agree except along dim 1"):
        cl.cat([np.zeros((2, 1)), np.zeros((3, 1))], dim=1)


def test_task_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    from convlens import viz

    cl.manual_seed(0)
    samples = np.sin(np.arange(6144) / 5.0).astype(np.float32)
    assert len(viz.waveform(samples, save=tmp_path / "w.png").axes) == 1
    wavenet = models.get("wavenet", channels=4, skip_channels=4, dilations=(1, 2))
    assert len(viz.filters_1d(wavenet.front.weight, count=3).axes) == 6
    assert len(viz.feature_maps_1d(wavenet, samples).axes) == 4  # two maps, two colour bars
    assert len(viz.feature_maps_1d(models.get("logmel_cnn"), samples).axes) == 2
    s = scenes.digit_scenes("test", count=2, seed=0)
    fig = viz.segmentation_examples(models.get("unet", width=2), s, count=2, save=tmp_path / "s.png")
    assert len(fig.axes) == 6 and (tmp_path / "s.png").stat().st_size > 0
    assert len(viz.iou_bars(np.linspace(0, 1, 11), s.classes).axes) == 1
    with pytest.raises(ValueError, match="one IoU per class name"):
        viz.iou_bars([0.5], s.classes)
    with pytest.raises(ValueError, match=r"weight must be \(C_out, C_in, k\)"):
        viz.filters_1d(np.zeros((2, 3)))

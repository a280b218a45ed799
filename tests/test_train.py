"""The training loop: learning, history, determinism, divergence, Ctrl-C, resume, evaluate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import convlens as cl
from convlens import data, optim
from convlens.history import History
from convlens.io import load_checkpoint
from convlens.train import Callback, TrainingDivergedError, evaluate, fit

MEAN, STD = 0.1307, 0.3081


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small GEMMs gain nothing from 2 BLAS threads, and on a busy shared machine the
    threads' spin-waiting slows every training step down."""
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def splits():
    return data.load_dataset("mnist-5k")


def _subset(dataset, n):
    return (dataset.images[:n], dataset.labels[:n])


def _loaders(splits, n_train=640, n_val=300, batch_size=64, seed=0, augment=False):
    steps = [data.RandomShift(2)] if augment else []
    train_tf = data.Compose([*steps, data.Normalize(MEAN, STD)])
    train = data.DataLoader(
        _subset(splits.train, n_train), batch_size, shuffle=True, seed=seed, transform=train_tf
    )
    val = data.DataLoader(_subset(splits.test, n_val), 300, transform=data.Normalize(MEAN, STD))
    return train, val


def _model_and_optimizer(seed=0, lr=0.05):
    cl.nn.init.manual_seed(seed)
    model = cl.models.lenet5()
    return model, optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def _weights(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


class StopAt(Callback):
    """Raises KeyboardInterrupt (as Ctrl-C would) after global step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, state, loss):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_fit_learns_and_history_is_complete(splits, tmp_path):
    train, val = _loaders(splits, n_train=1280)
    model, opt = _model_and_optimizer()
    before = evaluate(model, val).accuracy
    history = fit(model, train, val, optimizer=opt, epochs=2, progress=False)
    assert len(history) == 2 and not history.interrupted
    assert history.val_acc[-1] > 0.75 > before + 0.3
    assert history.train_loss[1] < history.train_loss[0]
    for record in history.epochs:
        assert all(math.isfinite(v) for v in (record.train_loss, record.val_loss, record.seconds))
        assert 0 <= record.train_acc <= 1 and 0 <= record.val_acc <= 1
        assert record.images_per_sec > 0 and record.lr == pytest.approx(0.05)
    assert [r.epoch for r in history.epochs] == [0, 1]
    # JSON round trip
    history.save(tmp_path / "history.json")
    again = History.from_dict(json.loads((tmp_path / "history.json").read_text()))
    assert again.to_dict() == history.to_dict()
    assert model.training  # fit leaves the model in training mode


def test_same_seed_gives_identical_losses(splits):
    runs = []
    for _ in range(2):
        train, val = _loaders(splits, n_train=320, augment=True, seed=3)
        model, opt = _model_and_optimizer(seed=3)
        history = fit(model, train, val, optimizer=opt, epochs=2, progress=False)
        runs.append((history.train_loss, history.val_loss, _weights(model)))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    for key, value in runs[0][2].items():
        np.testing.assert_array_equal(value, runs[1][2][key])
    # a different seed changes the result
    train, val = _loaders(splits, n_train=320, augment=True, seed=4)
    model, opt = _model_and_optimizer(seed=4)
    assert fit(model, train, val, optimizer=opt, epochs=2, progress=False).train_loss != runs[0][0]


def test_nan_loss_raises_a_clear_error(splits):
    train, _ = _loaders(splits, n_train=320)
    model, opt = _model_and_optimizer(lr=0.125)
    calls = []

    def poisoned(output, target):
        calls.append(1)
        loss = cl.functional.cross_entropy(output, target)
        return loss * float("nan") if len(calls) == 3 else loss

    with pytest.raises(TrainingDivergedError, match=r"loss became nan at epoch 1, step 3; .*lr.*0\.125"):
        fit(model, train, optimizer=opt, epochs=1, loss_fn=poisoned, progress=False)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's overflow warnings on the way to inf
def test_huge_learning_rate_diverges(splits):
    train, _ = _loaders(splits, n_train=640)
    model, opt = _model_and_optimizer(lr=1e12)
    with pytest.raises(TrainingDivergedError, match="loss became (nan|inf)"):
        fit(model, train, optimizer=opt, epochs=3, progress=False)


def test_keyboard_interrupt_saves_checkpoint_and_returns_history(splits, tmp_path):
    train, val = _loaders(splits, n_train=320)  # 5 steps an epoch
    model, opt = _model_and_optimizer()
    path = tmp_path / "ckpt.safetensors"
    history = fit(
        model,
        train,
        val,
        optimizer=opt,
        epochs=3,
        progress=False,
        checkpoint_path=path,
        callbacks=[StopAt(7)],
    )
    assert history.interrupted and len(history) == 1
    saved = load_checkpoint(path)
    assert (saved["epoch"], saved["step"]) == (1, 2)
    assert saved["optimizer_state"] is not None
    assert saved["history"].to_dict()["epochs"] == history.to_dict()["epochs"]
    for key, value in _weights(model).items():
        np.testing.assert_array_equal(value, np.asarray(saved["model"].state_dict()[key]))


@pytest.mark.parametrize("stop_step", [5, 8])  # at an epoch boundary, in the middle of an epoch
def test_resume_matches_an_uninterrupted_run(splits, tmp_path, stop_step):
    """Weights, optimizer momentum, cosine schedule, shuffling and augmentation all resume exactly."""

    def setup(seed=0):
        train, val = _loaders(splits, n_train=320, augment=True)
        model, opt = _model_and_optimizer(seed)
        return model, train, val, opt, optim.CosineAnnealingLR(opt, T_max=3)

    model, train, val, opt, sched = setup()
    full = fit(model, train, val, optimizer=opt, scheduler=sched, epochs=3, progress=False)
    expected = _weights(model)

    model, train, val, opt, sched = setup()
    path = tmp_path / "ckpt.safetensors"
    stopped = fit(model, train, val, optimizer=opt, scheduler=sched, epochs=3, progress=False,
                  checkpoint_path=path, callbacks=[StopAt(stop_step)])  # fmt: skip
    assert stopped.interrupted

    # as a fresh process would: a different initialisation, new loaders, optimizer, scheduler
    model, train, val, opt, sched = setup(seed=123)
    resumed = fit(model, train, val, optimizer=opt, scheduler=sched, epochs=3, progress=False,
                  resume=path, checkpoint_path=path)  # fmt: skip
    assert not resumed.interrupted
    assert resumed.train_loss == pytest.approx(full.train_loss, rel=1e-12)
    assert resumed.val_loss == full.val_loss and resumed.val_acc == full.val_acc
    assert [r.lr for r in resumed.epochs] == [r.lr for r in full.epochs]
    for key, value in expected.items():
        np.testing.assert_array_equal(value, _weights(model)[key])
    assert load_checkpoint(path)["epoch"] == 3


def test_evaluate_confusion_matrix(splits):
    _, val = _loaders(splits, n_val=300)
    model, _ = _model_and_optimizer()
    model.train()
    result = evaluate(model, val, num_classes=10)
    assert model.training  # restored
    images, labels = _subset(splits.test, 300)
    x = data.Normalize(MEAN, STD)(images[:, None].astype(np.float32) / 255)
    model.eval()
    with cl.no_grad():
        predicted = model(x).data.argmax(axis=1)
    assert result.confusion.shape == (10, 10) and result.confusion.sum() == 300 == result.count
    expected = np.zeros((10, 10), np.int64)
    for t, p in zip(labels, predicted, strict=True):
        expected[t, p] += 1
    np.testing.assert_array_equal(result.confusion, expected)
    assert result.accuracy == pytest.approx(np.mean(predicted == labels))
    support = np.bincount(labels, minlength=10)
    np.testing.assert_allclose(result.per_class_accuracy, np.diag(expected) / support)
    json.dumps(result.to_dict())


def test_progress_bar_and_log_lines(splits, capsys):
    train, val = _loaders(splits, n_train=128)
    model, opt = _model_and_optimizer()
    lines = []
    fit(model, train, val, optimizer=opt, epochs=1, progress=True, verbose=True, log=lines.append)
    assert len(lines) == 1 and lines[0].startswith("epoch 1/1") and "val_acc" in lines[0]
    assert "img/s" in lines[0]


def test_fit_rejects_negative_epochs(splits):
    train, _ = _loaders(splits, n_train=64)
    model, opt = _model_and_optimizer()
    with pytest.raises(ValueError, match="epochs"):
        fit(model, train, optimizer=opt, epochs=-1)

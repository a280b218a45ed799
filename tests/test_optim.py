"""SGD, Adam and the schedulers against torch.optim, step for step."""

from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
from conftest import relative_error, torch

import convlens as cl
from convlens import optim

STEPS = 20
WORST: dict[str, float] = {}


def random_problem(seed: int, dtype=np.float64):
    """Random parameter shapes and, per step, random gradients (sometimes None)."""
    rng = np.random.default_rng(seed)
    shapes = [
        tuple(int(n) for n in rng.integers(1, 5, size=rng.integers(0, 4))) for _ in range(rng.integers(1, 4))
    ]
    initial = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    grads = [
        [None if rng.random() < 0.15 else rng.standard_normal(shape).astype(dtype) for shape in shapes]
        for _ in range(STEPS)
    ]
    return initial, grads


def run_both(ours_cls, torch_cls, kwargs: dict, seed: int, dtype=np.float64, steps: int = STEPS) -> float:
    initial, grads = random_problem(seed, dtype)
    ours = [cl.tensor(x.copy(), requires_grad=True) for x in initial]
    theirs = [torch.tensor(x.copy(), requires_grad=True) for x in initial]
    opt, ref = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    worst = 0.0
    for step_grads in grads[:steps]:
        for p, q, g in zip(ours, theirs, step_grads, strict=True):
            p.grad = None if g is None else g.copy()
            q.grad = None if g is None else torch.tensor(g.copy())
        opt.step()
        ref.step()
        for p, q in zip(ours, theirs, strict=True):
            assert p.data.dtype == dtype
            worst = max(worst, relative_error(p.data, q.detach().numpy()))
    return worst


SGD_CASES = [
    {"lr": lr, "momentum": m, "dampening": d, "weight_decay": wd, "nesterov": n, "maximize": mx}
    for lr, m, d, wd, n, mx in itertools.product(
        (0.1, 0.01), (0.0, 0.9), (0.0, 0.3), (0.0, 0.05), (False, True), (False, True)
    )
    if not (n and (m == 0 or d != 0))
]


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_sgd_matches_torch(kwargs):
    worst = max(run_both(optim.SGD, torch.optim.SGD, kwargs, seed) for seed in range(3))
    WORST["SGD float64"] = max(WORST.get("SGD float64", 0.0), worst)
    assert worst < 1e-13


ADAM_CASES = [
    {"lr": lr, "betas": betas, "eps": eps, "weight_decay": wd, "amsgrad": ams, "maximize": mx}
    for lr, betas, eps, wd, ams, mx in itertools.product(
        (1e-3, 0.1), ((0.9, 0.999), (0.3, 0.8)), (1e-8, 1e-3), (0.0, 0.1), (False, True), (False, True)
    )
]


@pytest.mark.parametrize("kwargs", ADAM_CASES, ids=lambda k: "-".join(f"{v}" for v in k.values()))
def test_adam_matches_torch(kwargs):
    worst = max(run_both(optim.Adam, torch.optim.Adam, kwargs, seed) for seed in range(3))
    WORST["Adam float64"] = max(WORST.get("Adam float64", 0.0), worst)
    assert worst < 1e-13


def test_float32_stays_float32_and_matches_torch():
    for seed in range(10):
        worst = max(
            run_both(
                optim.SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, seed, np.float32
            ),
            run_both(
                optim.Adam,
                torch.optim.Adam,
                {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01},
                seed,
                np.float32,
            ),
        )
        WORST["float32"] = max(WORST.get("float32", 0.0), worst)
        assert worst < 1e-5


def test_param_groups_match_torch():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 2)), rng.standard_normal(4), rng.standard_normal(())]
    ours = [cl.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = optim.SGD(
        [{"params": ours[:2]}, {"params": [ours[2]], "lr": 0.5, "momentum": 0.0}], lr=0.1, momentum=0.8
    )
    ref = torch.optim.SGD(
        [{"params": theirs[:2]}, {"params": [theirs[2]], "lr": 0.5, "momentum": 0.0}], lr=0.1, momentum=0.8
    )
    for _ in range(10):
        for p, q in zip(ours, theirs, strict=True):
            g = rng.standard_normal(p.shape)
            p.grad, q.grad = g.copy(), torch.tensor(g)
        opt.step()
        ref.step()
    for p, q in zip(ours, theirs, strict=True):
        assert relative_error(p.data, q.detach().numpy()) < 1e-14
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[0]["momentum"] == 0.8


def test_step_updates_in_place_and_skips_missing_grads():
    w = cl.tensor(np.ones(3), requires_grad=True)
    v = cl.tensor(np.ones(2), requires_grad=True)
    array = w.data
    opt = optim.Adam([w, v], lr=0.1)
    w.grad = np.array([1.0, -1.0, 0.0])
    opt.step()
    assert w.data is array and np.all(v.data == 1) and id(v) not in opt.state
    assert opt.state_dict()["state"].keys() == {0}


def test_closure_and_zero_grad():
    w = cl.tensor(np.array([2.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert float(loss.item()) == 4.0 and w.data[0] == 1.0
    opt.zero_grad(set_to_none=False)
    assert np.array_equal(w.grad, [0.0])
    opt.zero_grad()
    assert w.grad is None


def test_validation_errors():
    w = [cl.tensor(np.zeros(2), requires_grad=True)]
    with pytest.raises(ValueError, match=r"SGD: lr must be >= 0. Received: lr=-1"):
        optim.SGD(w, lr=-1)
    with pytest.raises(ValueError, match="momentum must be >= 0"):
        optim.SGD(w, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.SGD(w, lr=0.1, weight_decay=-1)
    with pytest.raises(ValueError, match="nesterov=True requires momentum > 0 and dampening=0"):
        optim.SGD(w, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="nesterov=True requires momentum > 0 and dampening=0"):
        optim.SGD(w, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: betas\[0\] must be in \[0, 1\). Received: betas\[0\]=1.0"):
        optim.Adam(w, betas=(1.0, 0.999))
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        optim.Adam(w, betas=(0.9, -0.1))
    with pytest.raises(ValueError, match="eps"):
        optim.Adam(w, eps=-1e-8)
    with pytest.raises(ValueError, match="Adam: lr must be >= 0"):
        optim.Adam(w, lr=-0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD(w + w, lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(w[0], lr=0.1)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
        (optim.Adam, {"lr": 0.05, "amsgrad": True, "weight_decay": 0.01}),
    ],
)
def test_state_dict_round_trip_resumes_exactly(cls, kwargs):
    initial, grads = random_problem(42)
    straight = [cl.tensor(x.copy(), requires_grad=True) for x in initial]
    opt = cls(straight, **kwargs)
    resumed_params, snapshot = None, None
    for step, step_grads in enumerate(grads):
        if step == STEPS // 2:
            resumed_params = [cl.tensor(p.data.copy(), requires_grad=True) for p in straight]
            snapshot = json.loads(json.dumps(opt.state_dict(), default=lambda a: a.tolist()))  # as via JSON
            snapshot["state"] = {
                int(i): {k: np.array(v) if isinstance(v, list) else v for k, v in s.items()}
                for i, s in snapshot["state"].items()
            }
        for p, g in zip(straight, step_grads, strict=True):
            p.grad = None if g is None else g.copy()
        opt.step()
    resumed = cls(resumed_params, lr=123.0)  # hyperparameters come from the state dict
    resumed.load_state_dict(snapshot)
    assert resumed.param_groups[0]["lr"] == kwargs["lr"]
    for step_grads in grads[STEPS // 2 :]:
        for p, g in zip(resumed_params, step_grads, strict=True):
            p.grad = None if g is None else g.copy()
        resumed.step()
    for p, q in zip(straight, resumed_params, strict=True):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_is_a_copy_and_load_validates():
    w = cl.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = np.ones(3)
    opt.step()
    saved = opt.state_dict()
    opt.step()
    assert np.array_equal(saved["state"][0]["momentum_buffer"], np.ones(3))
    other = optim.SGD([cl.tensor(np.ones(4), requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict(saved)
    two = optim.SGD(
        [cl.tensor(np.ones(3), requires_grad=True)] * 1 + [cl.tensor(np.ones(3), requires_grad=True)], lr=0.1
    )
    with pytest.raises(ValueError, match="parameters"):
        two.load_state_dict(saved)


def run_scheduler(ours_cls, torch_cls, kwargs, epochs, lr=0.3):
    ours = optim.SGD([cl.tensor(np.zeros(1), requires_grad=True)], lr=lr)
    theirs = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched, ref = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    worst = 0.0
    for _ in range(epochs):
        assert sched.get_last_lr()[0] == ours.param_groups[0]["lr"]
        worst = max(worst, abs(sched.get_last_lr()[0] - ref.get_last_lr()[0]) / lr)
        ours.step()
        theirs.step()
        sched.step()
        ref.step()
    return worst


def test_schedulers_match_torch():
    rng = np.random.default_rng(0)
    worst = 0.0
    for _ in range(20):
        step_size, gamma = int(rng.integers(1, 6)), float(rng.uniform(0.05, 0.95))
        worst = max(
            worst,
            run_scheduler(
                optim.StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": step_size, "gamma": gamma}, 40
            ),
        )
        t_max, eta_min = int(rng.integers(1, 15)), float(rng.choice([0.0, 0.01]))
        worst = max(
            worst,
            run_scheduler(
                optim.CosineAnnealingLR,
                torch.optim.lr_scheduler.CosineAnnealingLR,
                {"T_max": t_max, "eta_min": eta_min},
                3 * t_max,
            ),
        )
    WORST["schedulers"] = worst
    assert worst < 1e-12


def test_scheduler_state_dict_resumes():
    opt = optim.SGD([cl.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    sched = optim.CosineAnnealingLR(opt, T_max=10, eta_min=0.1)
    for _ in range(4):
        sched.step()
    saved_sched, saved_opt = copy.deepcopy(sched.state_dict()), opt.state_dict()
    expected = [sched.step() or sched.get_last_lr()[0] for _ in range(5)]
    opt2 = optim.SGD([cl.tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    opt2.load_state_dict(saved_opt)
    sched2 = optim.CosineAnnealingLR(opt2, T_max=99)
    sched2.load_state_dict(saved_sched)
    assert [sched2.step() or sched2.get_last_lr()[0] for _ in range(5)] == expected
    assert opt2.param_groups[0]["lr"] == expected[-1] and opt2.param_groups[0]["initial_lr"] == 1.0
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        optim.CosineAnnealingLR(opt, T_max=0)


def test_report_worst_errors():
    print("worst relative errors vs torch:", WORST)

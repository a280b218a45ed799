"""Every pooling engine, forced in turn, against the reference engine, PyTorch and the loop oracle.

The engines of the ``max_pool`` and ``avg_pool`` families (``cl.backend.engines``) are
forced one at a time with ``cl.backend.force`` on many seeded random cases: half of
them 2-D pools whose windows tile the plane, on channels-last inputs (where the
compiled ``tiles`` engine applies), half general 1-D/2-D/3-D strided and adaptive
pools in either layout. Where an engine applies, ``cl.backend.record()`` must show
that it ran, and its values and input gradients must match the reference engine
(float64 to 1e-12 relative, float32 to round-off; a max exactly), PyTorch and
tests/reference_pool.py. Where it does not apply, forcing it must raise a
ValueError that names the reason. ``REFUSALS`` says, independently of the engines'
own checks, where each engine applies: a new engine needs an entry there.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pytest
import reference_pool as ref
import torch.nn.functional as TF
from conftest import relative_error, torch

import convlens as cl
from convlens import functional as F

FAMILIES = ("max_pool", "avg_pool")
ENGINES = sorted({e.name for family in FAMILIES for e in cl.backend.engines(family)})
NEEDS_NUMBA = {e.name for family in FAMILIES for e in cl.backend.engines(family) if e.needs_numba}
ENGINE_PARAMS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(name in NEEDS_NUMBA and not cl.backend.numba_available(), reason="numba"),
    )
    for name in ENGINES
]
# float32: a window's sum and division round differently in each implementation; 4 ulps
TOL = {np.float64: 1e-12, np.float32: 5e-7}
KINDS = ("max", "relu_max", "avg", "adaptive_max", "adaptive_avg")
CASES = 60


# -- random cases -----------------------------------------------------------------------
@dataclass
class Case:
    kind: str
    nd: int
    x: np.ndarray
    kw: dict  # the op's arguments (the same for convlens and PyTorch)
    tiled: bool  # 2-D windows that cut the plane into whole tiles (a remainder allowed)
    probe: np.ndarray | None = None
    oracle: tuple = field(default=())  # (output, input gradient) from the loops

    @property
    def family(self) -> str:
        return "avg_pool" if self.kind.endswith("avg") else "max_pool"

    @property
    def window_taps(self) -> int:
        """Elements in one window (the largest, for adaptive windows)."""
        if "output_size" in self.kw:
            sizes = zip(self.x.shape[-self.nd :], self.kw["output_size"], strict=True)
            return math.prod(-(-n // o) + (n % o != 0) for n, o in sizes)
        return math.prod(_tuple(self.kw["kernel_size"], self.nd))

    @property
    def op(self) -> str:
        return "relu_max_pool2d" if self.kind == "relu_max" else f"{self.kind}_pool{self.nd}d"


def channels_last(x: np.ndarray) -> np.ndarray:
    """The same values as an (N, C, H, W) view of NHWC memory."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def is_channels_last(x: np.ndarray) -> bool:
    return x.ndim == 4 and not x.flags.c_contiguous and x.transpose(0, 2, 3, 1).flags.c_contiguous


def random_values(rng, shape, dtype) -> np.ndarray:
    if rng.random() < 0.5:  # ties, and a zero background as after a ReLU
        return rng.integers(-2, 3, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def tiled_case(rng, kind: str, dtype) -> Case:
    """A 2-D pool whose windows tile the plane, of a batched channels-last input."""
    kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
    if rng.random() < 0.3:
        kernel = (kernel[0], kernel[0])
    outs = tuple(int(o) for o in rng.integers(1, 5, 2))
    adaptive = kind.startswith("adaptive")
    remainder = (0, 0) if adaptive else tuple(int(rng.integers(0, k)) for k in kernel)
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 9))
    shape = (n, c) + tuple(k * o + r for k, o, r in zip(kernel, outs, remainder, strict=True))
    x = channels_last(random_values(rng, shape, dtype))
    if adaptive:
        return Case(kind, 2, x, {"output_size": outs}, tiled=True)
    kw: dict = {"kernel_size": kernel[0] if kernel[0] == kernel[1] and rng.random() < 0.5 else kernel}
    if rng.random() < 0.3:
        kw["stride"] = kw["kernel_size"]
    return Case(kind, 2, x, kw, tiled=True)


def general_case(rng, kind: str, dtype) -> Case:
    """Any pool of the kind, 1-D to 3-D (relu_max: 2-D), batched or not, in either layout."""
    nd = 2 if kind == "relu_max" else int(rng.integers(1, 4))
    batched = rng.random() < 0.8
    if kind.startswith("adaptive"):
        sizes = tuple(int(s) for s in rng.integers(1, 9 if nd < 3 else 6, nd))
        outs = tuple(int(rng.integers(1, s + 3)) for s in sizes)
        x = random_values(rng, ((int(rng.integers(1, 3)),) if batched else ()) + (2, *sizes), dtype)
        tiled = nd == 2 and all(s % o == 0 for s, o in zip(sizes, outs, strict=True))
        return Case(kind, nd, _maybe_channels_last(rng, x, nd), {"output_size": outs}, tiled)
    top = 4 if nd < 3 else 3  # (the loop oracle is slow in 3-D)
    kernel = tuple(int(k) for k in rng.integers(1, top, nd))
    stride = tuple(int(s) for s in rng.integers(1, top, nd))
    padding = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel)
    dilation = (1,) * nd
    if kind != "avg" and not any(padding):  # (with padding a dilated window may miss the input)
        dilation = tuple(int(d) for d in rng.integers(1, 3, nd))
    sizes = tuple(
        d * (k - 1) + 1 + int(rng.integers(0, top + 1)) for k, d in zip(kernel, dilation, strict=True)
    )
    kw = {"kernel_size": kernel, "stride": stride, "padding": padding, "ceil_mode": bool(rng.random() < 0.4)}
    if kind == "avg":
        kw["count_include_pad"] = bool(rng.random() < 0.5)
    else:
        kw["dilation"] = dilation
    if kind == "max" and rng.random() < 0.3:
        kw["return_indices"] = True
    x = random_values(
        rng, ((int(rng.integers(1, 3)),) if batched else ()) + (int(rng.integers(1, 4)), *sizes), dtype
    )
    return Case(kind, nd, _maybe_channels_last(rng, x, nd), kw, _tiles(sizes, kw, nd))


def _maybe_channels_last(rng, x: np.ndarray, nd: int) -> np.ndarray:
    return channels_last(x) if nd == 2 and x.ndim == 4 and rng.random() < 0.5 else x


def _tiles(sizes, kw: dict, nd: int) -> bool:
    if nd != 2 or any(kw["padding"]) or any(d != 1 for d in kw.get("dilation", (1, 1))):
        return False
    if kw["stride"] != kw["kernel_size"]:
        return False
    return not kw["ceil_mode"] or all(n % k == 0 for n, k in zip(sizes, kw["kernel_size"], strict=True))


def random_case(rng, kind: str, dtype, i: int) -> Case:
    case = tiled_case(rng, kind, dtype) if i % 2 == 0 else general_case(rng, kind, dtype)
    case.oracle, case.probe = loop_oracle(rng, case)
    return case


# -- where each engine applies (a specification independent of the engines' checks) -----------
def tiles_refusals(case: Case) -> list[str]:
    """The reasons the tiles engine must give for not applying (empty: it applies)."""
    reasons = []
    if case.nd != 2:
        reasons.append("2-D")
    if case.x.ndim != 4:
        reasons.append("batched")
    if not case.tiled:
        reasons.append("tile the plane")
    if case.x.dtype not in (np.float32, np.float64):
        reasons.append("float32 or float64")
    if not is_channels_last(case.x):
        reasons.append("channels-last")
    if case.kw.get("return_indices"):
        reasons.append("indices")
    if case.kind in ("max", "relu_max", "adaptive_max") and case.tiled and case.window_taps > 256:
        reasons.append("at most 256")
    return reasons


REFUSALS = {"reference": lambda case: [], "tiles": tiles_refusals}


# -- running a case ---------------------------------------------------------------------------
def ours(case: Case) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(output, indices or None, input gradient) from convlens, the input's layout kept."""
    t = cl.tensor(case.x, requires_grad=True)
    t.data = case.x  # cl.tensor copies in C order
    result = getattr(F, case.op)(t, **case.kw)
    out, idx = result if isinstance(result, tuple) else (result, None)
    out.backward(case.probe)
    return out.data, None if idx is None else idx.data, t.grad


def theirs(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """(output, input gradient) from PyTorch."""
    t = torch.tensor(np.ascontiguousarray(case.x), requires_grad=True)
    kw = {k: v for k, v in case.kw.items() if k != "return_indices"}
    op = TF.max_pool2d if case.kind == "relu_max" else getattr(TF, case.op)
    out = op(torch.relu(t) if case.kind == "relu_max" else t, **kw)
    out.backward(torch.tensor(np.ascontiguousarray(case.probe)))
    return out.detach().numpy(), t.grad.numpy()


def loop_oracle(rng, case: Case) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """((output, input gradient), probe) from tests/reference_pool.py (batched there)."""
    x = case.x if case.x.ndim == case.nd + 2 else case.x[None]
    kw, nd = case.kw, case.nd
    if case.kind.startswith("adaptive"):
        if case.kind == "adaptive_avg":
            out = ref.adaptive_avg_pool(x, kw["output_size"])
            probe = rng.standard_normal(out.shape).astype(x.dtype)
            grad = ref.adaptive_avg_pool_backward(probe, x.shape)
        else:
            out, idx = ref.adaptive_max_pool(x, kw["output_size"])
            probe = rng.standard_normal(out.shape).astype(x.dtype)
            grad = ref.max_pool_backward(probe, idx, x.shape)
    else:
        kernel = _tuple(kw["kernel_size"], nd)
        stride = _tuple(kw.get("stride", kernel), nd)
        padding = _tuple(kw.get("padding", 0), nd)
        ceil_mode = kw.get("ceil_mode", False)
        if case.kind == "avg":
            args = (kernel, stride, padding, ceil_mode, kw.get("count_include_pad", True), None)
            out = ref.avg_pool(x, *args)
            probe = rng.standard_normal(out.shape).astype(x.dtype)
            grad = ref.avg_pool_backward(probe, x.shape, *args)
        else:
            relu = case.kind == "relu_max"
            values = np.maximum(x, 0) if relu else x
            out, idx = ref.max_pool(
                values, kernel, stride, padding, _tuple(kw.get("dilation", 1), nd), ceil_mode
            )
            probe = rng.standard_normal(out.shape).astype(x.dtype)
            grad = ref.max_pool_backward(probe * (out > 0) if relu else probe, idx, x.shape)
    if x is not case.x:
        out, probe, grad = out[0], probe[0], grad[0]
    if is_channels_last(case.x):
        probe = channels_last(probe)
    return (out, grad), probe


def _tuple(value, nd: int) -> tuple[int, ...]:
    return (value,) * nd if isinstance(value, int) else tuple(value)


def check(name: str, actual, expected, tol: float) -> None:
    err = relative_error(np.asarray(actual, np.float64), np.asarray(expected, np.float64))
    assert err <= tol, f"{name}: relative error {err:.3g} > {tol:.3g}"


def check_case(case: Case, got, expected, what: str) -> None:
    """``got`` (output, input gradient) against ``expected``: a max's output exactly."""
    tol = TOL[case.x.dtype.type]
    out_tol = 0.0 if case.family == "max_pool" else tol
    check(f"{case.op} {case.kw} vs {what}: output", got[0], expected[0], out_tol)
    check(f"{case.op} {case.kw} vs {what}: grad", got[1], expected[1], tol)


# -- the tests ----------------------------------------------------------------------------------
def test_every_engine_has_a_rule_of_where_it_applies():
    assert set(ENGINES) <= set(REFUSALS), f"add the new engines to REFUSALS: {set(ENGINES) - set(REFUSALS)}"
    assert {"reference", "tiles"} <= set(ENGINES)


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_forced_engine_matches_reference_torch_and_loops(engine, dtype, kind):
    rng = np.random.default_rng(zlib.crc32(f"{engine}-{kind}-{np.dtype(dtype).name}".encode()))
    applied = 0
    for i in range(CASES):
        case = random_case(rng, kind, dtype, i)
        reasons = REFUSALS[engine](case)
        if reasons:
            with cl.backend.force(engine), pytest.raises(ValueError) as error:
                ours(case)
            message = str(error.value)
            assert f"{case.op}: engine '{engine}' does not apply here: " in message
            assert any(reason in message for reason in reasons), (message, reasons)
            continue
        applied += 1
        with cl.backend.force(engine), cl.backend.record() as ran:
            out, idx, grad = ours(case)
        assert ran == [(case.family, engine)]
        assert out.dtype == dtype and grad.dtype == dtype and grad.shape == case.x.shape
        with cl.backend.force("reference"):
            r_out, r_idx, r_grad = ours(case)
        check_case(case, (out, grad), (r_out, r_grad), "the reference engine")
        if idx is not None:
            np.testing.assert_array_equal(idx, r_idx)
        check_case(case, (out, grad), theirs(case), "torch")
        check_case(case, (out, grad), case.oracle, "the loop oracle")
    assert applied >= CASES // 3, f"{engine} applied to {applied} of {CASES} cases"


def test_reference_backend_runs_only_the_reference_engine_and_passes_the_oracles():
    """``backend.use("reference")`` everywhere, on the cases where the default backend picks a
    fast engine too; it agrees with the default backend, PyTorch and the loops."""
    rng = np.random.default_rng(2024)
    for i in range(2 * len(KINDS) * 12):
        kind, dtype = KINDS[i % len(KINDS)], (np.float32, np.float64)[(i // len(KINDS)) % 2]
        case = random_case(rng, kind, dtype, i // (2 * len(KINDS)))
        with cl.backend.use("reference"), cl.backend.record() as ran:
            out, idx, grad = ours(case)
        assert ran == [(case.family, "reference")]
        check_case(case, (out, grad), theirs(case), "torch")
        check_case(case, (out, grad), case.oracle, "the loop oracle")
        default_out, _, default_grad = ours(case)
        check_case(case, (out, grad), (default_out, default_grad), "the default backend")


def _nhwc(shape, dtype=np.float32) -> np.ndarray:
    return channels_last(np.random.default_rng(0).standard_normal(shape).astype(dtype))


X = _nhwc((2, 3, 8, 8))
INAPPLICABLE = [
    (lambda: F.max_pool2d(np.ascontiguousarray(X), 2), "max_pool2d", "it needs a channels-last input"),
    (lambda: F.max_pool2d(X.astype(np.float16), 2), "max_pool2d", r"float32 or float64 .*dtype=float16"),
    (lambda: F.avg_pool2d(_nhwc((2, 3, 4, 4), np.int64), 2), "avg_pool2d", r"dtype=int64"),
    (lambda: F.max_pool2d(X, 2, return_indices=True), "max_pool2d", "return_indices=True"),
    (lambda: F.max_pool2d(X, 3, stride=1), "max_pool2d", "tile the plane"),
    (lambda: F.avg_pool2d(X, 2, padding=1), "avg_pool2d", "tile the plane"),
    (lambda: F.max_pool2d(X, 2, dilation=2), "max_pool2d", "tile the plane"),
    (lambda: F.max_pool2d(X, 3, ceil_mode=True), "max_pool2d", "tile the plane"),
    (lambda: F.adaptive_avg_pool2d(X, 3), "adaptive_avg_pool2d", "tile the plane"),
    (lambda: F.relu_max_pool2d(X, 3, stride=2), "relu_max_pool2d", "tile the plane"),
    (lambda: F.max_pool1d(X[:, :, 0], 2), "max_pool1d", r"2-D inputs only. Received: 1-D"),
    (lambda: F.avg_pool3d(X[None], 2), "avg_pool3d", r"2-D inputs only. Received: 3-D"),
    (lambda: F.max_pool2d(_nhwc((1, 2, 17, 17)), 17), "max_pool2d", r"at most 256 .*kernel_size=\(17, 17\)"),
    (lambda: F.max_pool2d(X[0], 2), "max_pool2d", r"batched \(N, C, H, W\) input. Received: input of shape"),
]


@pytest.mark.skipif(not cl.backend.numba_available(), reason="the tiles engine needs numba")
@pytest.mark.parametrize("call, op, reason", INAPPLICABLE)
def test_forcing_tiles_where_it_does_not_apply_names_the_reason(call, op, reason):
    with (
        cl.backend.force("tiles"),
        pytest.raises(ValueError, match=f"^{op}: engine 'tiles' does not apply here: .*{reason}"),
    ):
        call()


@pytest.mark.skipif(not cl.backend.numba_available(), reason="the tiles engine needs numba")
def test_the_backward_runs_the_engine_of_the_forward():
    """The tiles engine writes a channels-last input gradient; the reference engine would follow
    the C-ordered upstream gradient. The backward runs outside ``force`` under the reference
    backend, and still takes the tiles engine's path."""
    t = cl.tensor(X, requires_grad=True)
    t.data = X
    with cl.backend.force("tiles"):
        out = F.max_pool2d(t, 2)
    with cl.backend.use("reference"), cl.backend.record() as ran:
        out.backward(np.ones(out.shape, np.float32))
    assert ran == [] and is_channels_last(t.grad)


def test_forcing_an_unknown_engine_is_refused():
    with (
        pytest.raises(ValueError, match=r"backend.force: unknown engine.*Received: name='no-such'"),
        cl.backend.force("no-such"),
    ):
        pass

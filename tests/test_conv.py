"""conv1d/2d/3d and conv_transpose1d/2d/3d against PyTorch, the loop oracle and central differences.

Every test draws many seeded random configurations (dimension, batch, channels,
groups incl. depthwise, kernel, stride, padding int/tuple/"valid"/"same",
padding_mode, dilation, bias) and checks the forward and every gradient, on the
engines the backend chooses. ``tests/test_engines.py`` runs this whole file again
under ``CONVLENS_BACKEND=reference``, where every test also checks that only
reference engines ran.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import gradcheck, relative_error
from reference_conv import conv_reference, conv_transpose_reference

import convlens as cl
from convlens import functional as F

OURS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
OURS_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
TORCH_T = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}
MODES = ("zeros", "reflect", "replicate", "circular")

WORST: dict[str, float] = {}
COUNT: dict[str, int] = {}


def record(name: str, error: float) -> float:
    WORST[name] = max(WORST.get(name, 0.0), error)
    COUNT[name] = COUNT.get(name, 0) + 1
    return error


@pytest.fixture(autouse=True)
def only_reference_engines_on_the_reference_backend():
    with cl.backend.record() as ran:
        yield
    if cl.backend.get_backend() == "reference":
        assert all(name == "reference" for _, name in ran), sorted(set(ran))


@pytest.fixture(scope="module", autouse=True)
def report_worst():
    yield
    for name in sorted(WORST):
        print(f"\n{name}: {COUNT[name]} checks, worst relative error {WORST[name]:.3g}", end="")


# ---------------------------------------------------------------------------
# Random configurations
# ---------------------------------------------------------------------------
@dataclass
class ConvCase:
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    kwargs: dict = field(default_factory=dict)
    pairs: tuple = ()  # resolved (before, after) padding per spatial axis

    @property
    def d(self) -> int:
        return self.w.ndim - 2

    def cast(self, dtype) -> ConvCase:
        b = None if self.b is None else self.b.astype(dtype)
        return ConvCase(self.x.astype(dtype), self.w.astype(dtype), b, self.kwargs, self.pairs)


def resolve_padding(padding, kernel, dilation):
    d = len(kernel)
    if padding == "valid":
        return ((0, 0),) * d
    if padding == "same":
        totals = [dl * (k - 1) for k, dl in zip(kernel, dilation, strict=True)]
        return tuple((t // 2, t - t // 2) for t in totals)
    values = (padding,) * d if isinstance(padding, int) else padding
    return tuple((p, p) for p in values)


def random_conv_case(rng: np.random.Generator, d: int, small: bool = False) -> ConvCase:
    """A valid random convolution: all hyper-parameters drawn, then sizes that fit them."""
    depthwise = rng.random() < 0.2
    groups = int(rng.integers(2, 4)) if depthwise else int(rng.choice([1, 1, 2, 3]))
    per_group_in = 1 if depthwise else int(rng.integers(1, 3))
    per_group_out = int(rng.integers(1, 3))
    max_k = 3 if d == 3 or small else 4
    kernel = tuple(int(k) for k in rng.integers(1, max_k + 1, size=d))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=d))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=d))
    choice = rng.random()
    if choice < 0.15:
        padding = "valid"
    elif choice < 0.35:
        padding, stride = "same", (1,) * d
    elif choice < 0.65:
        padding = int(rng.integers(0, 3))
    else:
        padding = tuple(int(v) for v in rng.integers(0, 3, size=d))
    mode = str(rng.choice(MODES, p=[0.4, 0.2, 0.2, 0.2]))
    pairs = resolve_padding(padding, kernel, dilation)
    sizes = []
    for k, dl, (before, after) in zip(kernel, dilation, pairs, strict=True):
        smallest = max(1, dl * (k - 1) + 1 - before - after, max(before, after) + 1)
        sizes.append(int(rng.integers(smallest, smallest + (3 if small or d == 3 else 5))))
    n = int(rng.integers(1, 3 if small else 4))
    x = rng.standard_normal((n, groups * per_group_in, *sizes))
    w = rng.standard_normal((groups * per_group_out, per_group_in, *kernel))
    b = rng.standard_normal(groups * per_group_out) if rng.random() < 0.7 else None
    kwargs = {
        "stride": stride if rng.random() < 0.5 or len(set(stride)) > 1 else stride[0],
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "padding_mode": mode,
    }
    return ConvCase(x, w, b, kwargs, pairs)


def random_transpose_case(rng: np.random.Generator, d: int, small: bool = False) -> ConvCase:
    depthwise = rng.random() < 0.2
    groups = int(rng.integers(2, 4)) if depthwise else int(rng.choice([1, 1, 2, 3]))
    per_group_in = 1 if depthwise else int(rng.integers(1, 3))
    per_group_out = int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=d))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=d))
    stride = tuple(int(v) for v in rng.integers(1, 4, size=d))
    extra = tuple(int(rng.integers(0, max(s, dl))) for s, dl in zip(stride, dilation, strict=True))
    padding = tuple(int(v) for v in rng.integers(0, 3, size=d))
    sizes = []
    for k, s, dl, p, e in zip(kernel, stride, dilation, padding, extra, strict=True):
        # output (n-1)*s - 2p + dl*(k-1) + e + 1 must be >= 1
        smallest = 1
        while (smallest - 1) * s - 2 * p + dl * (k - 1) + e + 1 < 1:
            smallest += 1
        sizes.append(int(rng.integers(smallest, smallest + (2 if small or d == 3 else 4))))
    n = int(rng.integers(1, 3 if small else 4))
    x = rng.standard_normal((n, groups * per_group_in, *sizes))
    w = rng.standard_normal((groups * per_group_in, per_group_out, *kernel))
    b = rng.standard_normal(groups * per_group_out) if rng.random() < 0.7 else None
    kwargs = {
        "stride": stride,
        "padding": padding if rng.random() < 0.5 or len(set(padding)) > 1 else padding[0],
        "output_padding": extra,
        "groups": groups,
        "dilation": dilation,
    }
    return ConvCase(x, w, b, kwargs)


# ---------------------------------------------------------------------------
# Running ours and PyTorch's
# ---------------------------------------------------------------------------
def run_ours(fn, case: ConvCase, probe: np.ndarray | None = None):
    x = cl.tensor(case.x, requires_grad=True)
    w = cl.tensor(case.w, requires_grad=True)
    b = None if case.b is None else cl.tensor(case.b, requires_grad=True)
    out = fn(x, w, b, **case.kwargs)
    if probe is None:
        return out.data, None
    out.backward(probe)
    return out.data, (x.grad, w.grad, None if b is None else b.grad)


def torch_conv(case: ConvCase, x, w, b):
    kwargs = dict(case.kwargs)
    mode = kwargs.pop("padding_mode")
    if mode != "zeros":
        flat = tuple(v for pair in reversed(case.pairs) for v in pair)
        x = TF.pad(x, flat, mode=mode)
        kwargs["padding"] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns that even-kernel 'same' copies the input
        return TORCH[case.d](x, w, b, **kwargs)


def torch_transpose(case: ConvCase, x, w, b):
    return TORCH_T[case.d](x, w, b, **case.kwargs)


def run_torch(fn, case: ConvCase, probe: np.ndarray | None = None):
    x = torch.tensor(case.x, requires_grad=True)
    w = torch.tensor(case.w, requires_grad=True)
    b = None if case.b is None else torch.tensor(case.b, requires_grad=True)
    out = fn(case, x, w, b)
    if probe is None:
        return out.detach().numpy(), None
    out.backward(torch.tensor(probe))
    return out.detach().numpy(), (x.grad.numpy(), w.grad.numpy(), None if b is None else b.grad.numpy())


def compare(name: str, ours, theirs, tol: float) -> None:
    (out, grads), (expected, expected_grads) = ours, theirs
    assert out.dtype == expected.dtype, f"{name}: dtype {out.dtype} != {expected.dtype}"
    assert record(f"{name} forward", relative_error(out, expected)) < tol
    if grads is None:
        return
    for label, g, e in zip(("input", "weight", "bias"), grads, expected_grads, strict=True):
        if e is None:
            assert g is None
            continue
        assert g.dtype == e.dtype, f"{name} {label} grad dtype {g.dtype} != {e.dtype}"
        assert record(f"{name} grad {label}", relative_error(g, e)) < tol, f"{name}: {label} gradient"


def probe_for(rng, fn, case):
    with cl.no_grad():
        shape = fn(case.x, case.w, case.b, **case.kwargs).shape
    return rng.standard_normal(shape).astype(case.x.dtype)


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------
def features(case: ConvCase) -> set[str]:
    """What a random case exercises, to prove the generator covers every option."""
    k = case.kwargs
    padding = k["padding"]
    kind = padding if isinstance(padding, str) else type(padding).__name__
    found = {f"padding={kind}", f"mode={k['padding_mode']}", "bias" if case.b is not None else "no bias"}
    found |= {"groups>1"} if k["groups"] > 1 else set()
    found |= {"depthwise"} if k["groups"] == case.x.shape[1] > 1 else set()
    found |= {"stride>1"} if np.max(k["stride"]) > 1 else set()
    found |= {"dilation>1"} if np.max(k["dilation"]) > 1 else set()
    found |= {"even kernel"} if any(n % 2 == 0 for n in case.w.shape[2:]) else set()
    found |= {"batch>1"} if case.x.shape[0] > 1 else set()
    return found


ALL_FEATURES = {
    "padding=valid",
    "padding=same",
    "padding=int",
    "padding=tuple",
    "bias",
    "no bias",
    "groups>1",
    "depthwise",
    "stride>1",
    "dilation>1",
    "even kernel",
    "batch>1",
    *(f"mode={m}" for m in MODES),
}


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_matches_torch_float64(d):
    rng = np.random.default_rng(100 + d)
    seen: set[str] = set()
    for _ in range({1: 300, 2: 300, 3: 150}[d]):
        case = random_conv_case(rng, d)
        seen |= features(case)
        probe = probe_for(rng, OURS[d], case)
        compare(
            f"conv{d}d float64 vs torch",
            run_ours(OURS[d], case, probe),
            run_torch(torch_conv, case, probe),
            1e-10,
        )
    assert seen == ALL_FEATURES


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_matches_torch_float32(d):
    rng = np.random.default_rng(200 + d)
    for _ in range({1: 100, 2: 100, 3: 60}[d]):
        case = random_conv_case(rng, d).cast(np.float32)
        probe = probe_for(rng, OURS[d], case)
        compare(
            f"conv{d}d float32 vs torch",
            run_ours(OURS[d], case, probe),
            run_torch(torch_conv, case, probe),
            1e-5,
        )


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_matches_loop_oracle(d):
    rng = np.random.default_rng(300 + d)
    for _ in range({1: 100, 2: 80, 3: 40}[d]):
        case = random_conv_case(rng, d, small=True)
        k = case.kwargs
        stride = (k["stride"],) * d if isinstance(k["stride"], int) else k["stride"]
        expected = conv_reference(
            case.x, case.w, case.b, stride, case.pairs, k["dilation"], k["groups"], k["padding_mode"]
        )
        out, _ = run_ours(OURS[d], case)
        assert record(f"conv{d}d vs loop oracle", relative_error(out, expected)) < 1e-12


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_gradcheck(d):
    rng = np.random.default_rng(400 + d)
    for _ in range({1: 12, 2: 10, 3: 4}[d]):
        case = random_conv_case(rng, d, small=True)
        case.x, case.w = case.x[:1], case.w  # one sample keeps central differences cheap
        inputs = [case.x, case.w] + ([] if case.b is None else [case.b])

        def f(x, w, b=None, case=case):
            return OURS[d](x, w, b, **case.kwargs)

        record(f"conv{d}d gradcheck", gradcheck(f, *inputs))


def test_conv_padding_modes_and_same_even_kernels():
    """Every padding_mode with 'same' on even kernels (the odd cell goes after) in 1-D, 2-D, 3-D."""
    rng = np.random.default_rng(7)
    checked = 0
    for d in (1, 2, 3):
        for mode in MODES:
            for kernel in [(2,) * d, (4,) * d, tuple(int(v) for v in rng.integers(1, 5, size=d))]:
                dilation = tuple(int(v) for v in rng.integers(1, 3, size=d))
                pairs = resolve_padding("same", kernel, dilation)
                sizes = [max(4, max(p) + 1) for p in pairs]
                case = ConvCase(
                    rng.standard_normal((2, 2, *sizes)),
                    rng.standard_normal((3, 2, *kernel)),
                    rng.standard_normal(3),
                    {"stride": 1, "padding": "same", "dilation": dilation, "groups": 1, "padding_mode": mode},
                    pairs,
                )
                probe = probe_for(rng, OURS[d], case)
                ours = run_ours(OURS[d], case, probe)
                assert ours[0].shape[2:] == case.x.shape[2:]
                compare(f"conv{d}d same/{mode} vs torch", ours, run_torch(torch_conv, case, probe), 1e-10)
                checked += 1
    assert checked == 36


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_unbatched(d):
    rng = np.random.default_rng(500 + d)
    for _ in range(15):
        case = random_conv_case(rng, d)
        case.x = case.x[0]
        probe = probe_for(rng, OURS[d], case)
        ours = run_ours(OURS[d], case, probe)
        assert ours[0].ndim == d + 1 and ours[1][0].shape == case.x.shape
        compare(f"conv{d}d unbatched vs torch", ours, run_torch(torch_conv, case, probe), 1e-10)


def test_conv_keeps_float32_and_partial_gradients():
    rng = np.random.default_rng(8)
    x = cl.tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32))  # data: needs no gradient
    w = cl.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = cl.tensor(np.zeros(4, np.float32))
    out = F.conv2d(x, w, b, padding=1)
    assert out.dtype == np.float32
    out.sum().backward()
    assert w.grad.dtype == np.float32 and x.grad is None and b.grad is None
    tw = torch.tensor(w.data, requires_grad=True)
    TF.conv2d(torch.tensor(x.data), tw, padding=1).sum().backward()
    assert relative_error(w.grad, tw.grad.numpy()) < 1e-5


def test_conv_accepts_arrays_and_lists():
    out = F.conv1d(np.ones((1, 1, 4)), np.ones((1, 1, 2)))
    assert isinstance(out, cl.Tensor)
    np.testing.assert_array_equal(out.data, [[[2.0, 2.0, 2.0]]])
    with cl.no_grad():
        y = F.conv2d(cl.tensor(np.ones((1, 1, 3, 3)), requires_grad=True), np.ones((1, 1, 3, 3)))
    assert not y.requires_grad


def test_lecture_examples():
    """The lecture's worked examples: a 3x3 image against a 3x3 kernel as cross-correlation (13)
    and as true convolution (32), and the output size for n=5, k=3, p=1, s=2 (3)."""
    image = np.array([[1, 1, 2], [2, 2, 1], [1, 5, 0]], dtype=np.float64)
    kernel = np.array([[2, 3, 0], [0, 1, 3], [3, 0, 3]], dtype=np.float64)
    assert F.conv2d(image[None, None], kernel[None, None]).item() == 13.0
    assert F.conv2d(image[None, None], kernel[::-1, ::-1].copy()[None, None]).item() == 32.0
    assert F.conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=1, stride=2).shape == (1, 1, 3, 3)


# ---------------------------------------------------------------------------
# Transposed convolution
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_matches_torch_float64(d):
    rng = np.random.default_rng(600 + d)
    for _ in range({1: 200, 2: 200, 3: 100}[d]):
        case = random_transpose_case(rng, d)
        probe = probe_for(rng, OURS_T[d], case)
        compare(
            f"conv_transpose{d}d float64 vs torch",
            run_ours(OURS_T[d], case, probe),
            run_torch(torch_transpose, case, probe),
            1e-10,
        )


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_matches_torch_float32(d):
    rng = np.random.default_rng(700 + d)
    for _ in range({1: 80, 2: 80, 3: 40}[d]):
        case = random_transpose_case(rng, d).cast(np.float32)
        probe = probe_for(rng, OURS_T[d], case)
        compare(
            f"conv_transpose{d}d float32 vs torch",
            run_ours(OURS_T[d], case, probe),
            run_torch(torch_transpose, case, probe),
            1e-5,
        )


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_matches_loop_oracle(d):
    rng = np.random.default_rng(800 + d)
    for _ in range({1: 80, 2: 60, 3: 25}[d]):
        case = random_transpose_case(rng, d, small=True)
        k = case.kwargs
        padding = (k["padding"],) * d if isinstance(k["padding"], int) else k["padding"]
        expected = conv_transpose_reference(
            case.x, case.w, case.b, k["stride"], padding, k["output_padding"], k["dilation"], k["groups"]
        )
        out, _ = run_ours(OURS_T[d], case)
        assert record(f"conv_transpose{d}d vs loop oracle", relative_error(out, expected)) < 1e-12


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_gradcheck(d):
    rng = np.random.default_rng(900 + d)
    for _ in range({1: 10, 2: 8, 3: 3}[d]):
        case = random_transpose_case(rng, d, small=True)
        case.x = case.x[:1]
        inputs = [case.x, case.w] + ([] if case.b is None else [case.b])

        def f(x, w, b=None, case=case):
            return OURS_T[d](x, w, b, **case.kwargs)

        record(f"conv_transpose{d}d gradcheck", gradcheck(f, *inputs))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_conv_transpose_unbatched(d):
    rng = np.random.default_rng(1000 + d)
    for _ in range(10):
        case = random_transpose_case(rng, d)
        case.x = case.x[0]
        probe = probe_for(rng, OURS_T[d], case)
        compare(
            f"conv_transpose{d}d unbatched vs torch",
            run_ours(OURS_T[d], case, probe),
            run_torch(torch_transpose, case, probe),
            1e-10,
        )


def test_conv_transpose_is_adjoint_of_conv():
    """<conv(x, w), y> == <x, conv_transpose(y, w)> for the same stride/padding/dilation/groups."""
    rng = np.random.default_rng(11)
    for _ in range(50):
        d = int(rng.integers(1, 4))
        case = random_conv_case(rng, d)
        k = case.kwargs
        if k["padding_mode"] != "zeros" or isinstance(k["padding"], str):
            continue
        y = OURS[d](case.x, case.w, **k).data
        probe = rng.standard_normal(y.shape)
        stride = (k["stride"],) * d if isinstance(k["stride"], int) else k["stride"]
        sizes = [
            (m - 1) * s - 2 * p + dl * (kk - 1) + 1
            for m, s, (p, _), dl, kk in zip(
                y.shape[2:], stride, case.pairs, k["dilation"], case.w.shape[2:], strict=True
            )
        ]
        extra = tuple(n - m for n, m in zip(case.x.shape[2:], sizes, strict=True))  # cells the conv skipped
        back = OURS_T[d](
            probe,
            case.w,
            stride=stride,
            padding=k["padding"],
            output_padding=extra,
            groups=k["groups"],
            dilation=k["dilation"],
        ).data
        assert abs(np.sum(y * probe) - np.sum(case.x * back)) < 1e-9 * max(1.0, abs(np.sum(y * probe)))


# ---------------------------------------------------------------------------
# Errors: every bad input raises a clear error
# ---------------------------------------------------------------------------
f32, f64 = np.float32, np.float64
BAD_CONV = [
    (
        F.conv2d,
        (np.ones((1, 3, 5, 5)), np.ones((4, 2, 3, 3))),
        {},
        ValueError,
        r"conv2d: the input has 3 channels but the weight expects 2\. Received: input channels=3, groups=1",
    ),
    (
        F.conv2d,
        (np.ones((1, 3, 5, 5)), np.ones((3, 3))),
        {},
        ValueError,
        r"conv2d: weight must be 4-D \(C_out, C_in/groups, kH, kW\)\. Received: weight.shape=\(3, 3\)",
    ),
    (
        F.conv1d,
        (np.ones((1, 3, 5)), np.ones((3, 3))),
        {},
        ValueError,
        r"conv1d: weight must be 3-D \(C_out, C_in/groups, kW\)",
    ),
    (
        F.conv3d,
        (np.ones((1, 1, 3, 3, 3)), np.ones((1, 1, 3, 3))),
        {},
        ValueError,
        r"conv3d: weight must be 5-D \(C_out, C_in/groups, kD, kH, kW\)",
    ),
    (
        F.conv2d,
        (np.ones((5, 5)), np.ones((1, 1, 3, 3))),
        {},
        ValueError,
        r"conv2d: input must be 3-D \(C, H, W\) or 4-D \(N, C, H, W\)\. Received: input.shape=\(5, 5\)",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))),
        {},
        ValueError,
        r"conv2d: the kernel is larger than the padded input",
    ),
    (
        F.conv1d,
        (np.ones((1, 1, 4)), np.ones((1, 1, 3))),
        {"dilation": 2},
        ValueError,
        r"conv1d: the kernel is larger than the padded input: kernel extent dilation\*\(k-1\)\+1 = \(5,\)",
    ),
    (
        F.conv2d,
        (np.ones((1, 4, 5, 5)), np.ones((3, 2, 3, 3))),
        {"groups": 2},
        ValueError,
        r"conv2d: out_channels must be divisible by groups\. Received: out_channels=3, groups=2",
    ),
    (
        F.conv2d,
        (np.ones((1, 3, 5, 5)), np.ones((4, 1, 3, 3))),
        {"groups": 2},
        ValueError,
        r"conv2d: the input has 3 channels but the weight expects 2\. Received: input channels=3, groups=2",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))),
        {"groups": 0},
        ValueError,
        r"conv2d: groups must be a positive integer\. Received: groups=0",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))),
        {"stride": (0, 1)},
        ValueError,
        r"conv2d: stride must be positive\. Received: stride=\(0, 1\)",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))),
        {"dilation": (1, 1, 1)},
        TypeError,
        r"conv2d: dilation must be an int or a tuple of 2 ints",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))),
        {"padding": -1},
        ValueError,
        r"conv2d: padding must be >= 0\. Received: padding=-1",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))),
        {"padding": "full"},
        ValueError,
        r"conv2d: padding must be an int, a tuple of 2 ints, 'valid' or 'same'\. Received: padding='full'",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))),
        {"padding": "same", "stride": 2},
        ValueError,
        r"conv2d: padding='same' is not supported for strided convolutions\. Received: stride=\(2, 2\)",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))),
        {"padding_mode": "mirror"},
        ValueError,
        r"conv2d: padding_mode must be one of .*Received: padding_mode='mirror'",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 3, 5)), np.ones((1, 1, 3, 3))),
        {"padding": 3, "padding_mode": "reflect"},
        ValueError,
        r"conv2d: reflect padding must be smaller than the input size",
    ),
    (
        F.conv1d,
        (np.ones((1, 1, 3)), np.ones((1, 1, 3))),
        {"padding": 4, "padding_mode": "circular"},
        ValueError,
        r"conv1d: circular padding may wrap around at most once",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5), dtype=np.int64), np.ones((1, 1, 3, 3))),
        {},
        TypeError,
        r"conv2d: input must be a floating-point tensor\. Received: input.dtype=int64",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5), dtype=f32), np.ones((1, 1, 3, 3), dtype=f64)),
        {},
        TypeError,
        r"conv2d: input and weight must have the same dtype\. "
        r"Received: input.dtype=float32, weight.dtype=float64",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), np.ones(1, dtype=f32)),
        {},
        TypeError,
        r"conv2d: input and bias must have the same dtype",
    ),
    (
        F.conv2d,
        (np.ones((1, 1, 5, 5)), np.ones((4, 1, 3, 3)), np.ones(3)),
        {},
        ValueError,
        r"conv2d: bias must have shape \(4,\), one per output channel\. Received: bias.shape=\(3,\)",
    ),
    (
        F.conv_transpose2d,
        (np.ones((1, 3, 4, 4)), np.ones((2, 2, 3, 3))),
        {},
        ValueError,
        r"conv_transpose2d: the input has 3 channels but the weight expects 2",
    ),
    (
        F.conv_transpose2d,
        (np.ones((1, 3, 4, 4)), np.ones((3, 2, 3, 3))),
        {"groups": 2},
        ValueError,
        r"conv_transpose2d: in_channels must be divisible by groups\. Received: in_channels=3, groups=2",
    ),
    (
        F.conv_transpose2d,
        (
            np.ones((1, 2, 4, 4)),
            np.ones((2, 2, 3)),
        ),
        {},
        ValueError,
        r"conv_transpose2d: weight must be 4-D \(C_in, C_out/groups, kH, kW\)",
    ),
    (
        F.conv_transpose2d,
        (np.ones((1, 2, 4, 4)), np.ones((2, 2, 3, 3))),
        {"output_padding": 1},
        ValueError,
        r"conv_transpose2d: output_padding must be smaller than either stride or dilation\. "
        r"Received: output_padding=\(1, 1\), stride=\(1, 1\), dilation=\(1, 1\)",
    ),
    (
        F.conv_transpose1d,
        (np.ones((1, 2, 3)), np.ones((2, 2, 3))),
        {"padding": 3},
        ValueError,
        r"conv_transpose1d: the output size .* = \(-1,\) is too small",
    ),
    (
        F.conv_transpose2d,
        (np.ones((1, 2, 4, 4)), np.ones((2, 2, 3, 3))),
        {"padding": "same"},
        TypeError,
        r"conv_transpose2d: padding must be an int or a tuple of 2 ints",
    ),
    (
        F.conv_transpose2d,
        (np.ones((1, 2, 4, 4)), np.ones((2, 2, 3, 3)), np.ones(3)),
        {},
        ValueError,
        r"conv_transpose2d: bias must have shape \(2,\)",
    ),
    (
        F.conv_transpose3d,
        (np.ones((1, 2, 4, 4, 4)), np.ones((2, 2, 3, 3, 3), dtype=f32)),
        {},
        TypeError,
        r"conv_transpose3d: input and weight must have the same dtype",
    ),
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "error", "match"), BAD_CONV)
def test_bad_arguments_raise_clear_errors(fn, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)

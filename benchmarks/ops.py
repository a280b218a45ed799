"""conv2d and 2x2/2 pooling workloads, forward and forward+backward.

Both frameworks get the same float32 NCHW arrays (standard, contiguous PyTorch
layout) and, for the backward, the same upstream gradient. forward+backward asks for
the gradient of every input: data, weight and bias; gradients are reset to ``None``
before each call in both frameworks, so no accumulation is timed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._workload import OpWorkload, Runner


@dataclass(frozen=True)
class ConvSpec:
    key: str
    n: int
    c_in: int
    c_out: int
    size: int  # square input H = W
    kernel: int
    padding: int = 0
    stride: int = 1

    @property
    def out_size(self) -> int:
        return (self.size + 2 * self.padding - self.kernel) // self.stride + 1

    def describe(self) -> str:
        extra = f", pad {self.padding}" if self.padding else ""
        extra += f", stride {self.stride}" if self.stride != 1 else ""
        return f"N={self.n}, {self.c_in}->{self.c_out}, {self.size}x{self.size}, k{self.kernel}{extra}"

    def arrays(self, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        fan_in = self.c_in * self.kernel**2
        bound = 1.0 / np.sqrt(fan_in)
        o = self.out_size
        return {
            "x": rng.standard_normal((self.n, self.c_in, self.size, self.size), dtype=np.float32),
            "w": rng.uniform(-bound, bound, (self.c_out, self.c_in, self.kernel, self.kernel)).astype(
                np.float32
            ),
            "b": rng.uniform(-bound, bound, self.c_out).astype(np.float32),
            "g": rng.standard_normal((self.n, self.c_out, o, o), dtype=np.float32),
        }


@dataclass(frozen=True)
class PoolSpec:
    key: str
    n: int
    c: int
    size: int
    kind: str  # "max" | "avg"

    def describe(self) -> str:
        return f"{self.kind}_pool2d 2x2/2, N={self.n}, C={self.c}, {self.size}x{self.size}"

    def arrays(self, seed: int = 0) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        o = self.size // 2
        return {
            "x": rng.standard_normal((self.n, self.c, self.size, self.size), dtype=np.float32),
            "g": rng.standard_normal((self.n, self.c, o, o), dtype=np.float32),
        }


CONV_SPECS = (
    ConvSpec("a", 64, 1, 6, 28, 5, padding=2),
    ConvSpec("b", 64, 6, 16, 14, 5),
    ConvSpec("c", 32, 64, 64, 56, 3, padding=1),
    ConvSpec("d", 8, 3, 16, 128, 9, padding=4),
    ConvSpec("e", 32, 32, 64, 64, 3, padding=1, stride=2),
)
POOL_SPECS = tuple(
    PoolSpec(f"{kind}pool_{n}x{c}x{s}", n, c, s, kind)
    for kind in ("max", "avg")
    for n, c, s in ((64, 16, 28), (32, 64, 56))
)


def _grads(backward: bool, **named) -> dict[str, np.ndarray]:
    return {f"grad_{k}": np.asarray(v, dtype=np.float64) for k, v in named.items()} if backward else {}


def _conv_convlens(spec: ConvSpec, backward: bool) -> Runner:
    import convlens as cl
    from convlens import functional as F

    a = spec.arrays()
    x, w, b = (cl.tensor(a[k], requires_grad=backward) for k in ("x", "w", "b"))

    def step():
        if not backward:
            return F.conv2d(x, w, b, stride=spec.stride, padding=spec.padding)
        x.grad = w.grad = b.grad = None
        out = F.conv2d(x, w, b, stride=spec.stride, padding=spec.padding)
        out.backward(a["g"])
        return out

    def result():
        out = step()
        return {"out": np.asarray(out.data, np.float64), **_grads(backward, x=x.grad, w=w.grad, b=b.grad)}

    return Runner(step, result)


def _conv_torch(spec: ConvSpec, backward: bool) -> Runner:
    import torch
    import torch.nn.functional as TF

    a = spec.arrays()
    x, w, b = (torch.from_numpy(a[k].copy()).requires_grad_(backward) for k in ("x", "w", "b"))
    g = torch.from_numpy(a["g"])

    def step():
        if not backward:
            return TF.conv2d(x, w, b, stride=spec.stride, padding=spec.padding)
        x.grad = w.grad = b.grad = None
        out = TF.conv2d(x, w, b, stride=spec.stride, padding=spec.padding)
        out.backward(g)
        return out

    def result():
        out = step()
        grads = _grads(backward, x=x.grad, w=w.grad, b=b.grad) if backward else {}
        return {"out": out.detach().numpy().astype(np.float64), **grads}

    return Runner(step, result)


def _pool_convlens(spec: PoolSpec, backward: bool) -> Runner:
    import convlens as cl
    from convlens import functional as F

    a = spec.arrays()
    pool = F.max_pool2d if spec.kind == "max" else F.avg_pool2d
    x = cl.tensor(a["x"], requires_grad=backward)

    def step():
        if not backward:
            return pool(x, 2)
        x.grad = None
        out = pool(x, 2)
        out.backward(a["g"])
        return out

    def result():
        out = step()
        return {"out": np.asarray(out.data, np.float64), **_grads(backward, x=x.grad)}

    return Runner(step, result)


def _pool_torch(spec: PoolSpec, backward: bool) -> Runner:
    import torch
    import torch.nn.functional as TF

    a = spec.arrays()
    pool = TF.max_pool2d if spec.kind == "max" else TF.avg_pool2d
    x = torch.from_numpy(a["x"].copy()).requires_grad_(backward)
    g = torch.from_numpy(a["g"])

    def step():
        if not backward:
            return pool(x, 2)
        x.grad = None
        out = pool(x, 2)
        out.backward(g)
        return out

    def result():
        out = step()
        return {"out": out.detach().numpy().astype(np.float64), **_grads(backward, x=x.grad)}

    return Runner(step, result)


def conv_workload(spec: ConvSpec, backward: bool, name: str | None = None) -> OpWorkload:
    mode = "fwdbwd" if backward else "fwd"
    makers = {"convlens": _conv_convlens, "torch": _conv_torch}
    return OpWorkload(
        name=name or f"conv_{spec.key}_{mode}",
        group="conv",
        label=f"conv2d ({spec.key}) {'forward+backward' if backward else 'forward'}: {spec.describe()}",
        make=lambda fw: makers[fw](spec, backward),
        items=spec.n,
    )


def pool_workload(spec: PoolSpec, backward: bool) -> OpWorkload:
    mode = "fwdbwd" if backward else "fwd"
    makers = {"convlens": _pool_convlens, "torch": _pool_torch}
    return OpWorkload(
        name=f"{spec.key}_{mode}",
        group="pool",
        label=f"{spec.describe()} {'forward+backward' if backward else 'forward'}",
        make=lambda fw: makers[fw](spec, backward),
        items=spec.n,
    )


def workloads() -> list[OpWorkload]:
    out = [conv_workload(s, bwd) for s in CONV_SPECS for bwd in (False, True)]
    out += [pool_workload(s, bwd) for s in POOL_SPECS for bwd in (False, True)]
    return out

"""LeNet's block ``max_pool2d(relu(conv2d(x)), 2)`` as one op, and its fused engines.

``conv2d_relu_max_pool2d`` chooses the convolution's engine as ``conv2d`` does, then
the block's engine (family ``"conv_relu_max_pool2d"``):

- ``"direct-relu-pool"`` (numba): where the convolution runs on the direct engine, its
  output is pooled as it is computed and never stored, and the backward scatters the
  pooled gradient straight into the weight gradient: no full-size activation, pooling
  pass or pooling gradient in between;
- ``"batch-inner-relu-pool"`` (numba): where it runs on the batch-inner engine, the GEMM
  writes ``(O, *out, N)``, where a 2x2 tile's taps are runs of N samples; the pooling
  reads that and writes NCHW (a Flatten after it needs no copy), and the backward
  scatters the pooled gradient straight into the ``(O, *out, N)`` layout the
  batch-inner backward starts from;
- ``"reference"``: the three ops one after the other, the convolution on the engine
  chosen for it.

Values and gradients are the same every way (``relu`` commutes with the max; ties go
to the first maximum, NaN wins, as in PyTorch). ``nn.fuse`` puts this op in place of
Conv2d -> ReLU -> MaxPool2d(2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..functional.conv import ConvGeometry, ConvImpl, conv_geometry, run_engine
from ..functional.pool import relu_max_pool2d
from ..tensor import Tensor, as_tensor
from . import batch_inner, direct
from ._buffers import reusable
from ._columns import COMPILED_DTYPES

__all__ = ["conv2d_relu_max_pool2d"]

FAMILY = "conv_relu_max_pool2d"


def conv2d_relu_max_pool2d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """``max_pool2d(relu(conv2d(input, weight, bias, ...)), 2)`` in one op (not in PyTorch).

    Arguments, errors and the output-size formula are those of ``F.conv2d``; the output
    is ``(N, C_out, H_out // 2, W_out // 2)`` (or unbatched ``(C_out, ...)``).

    >>> import numpy as np
    >>> conv2d_relu_max_pool2d(np.ones((2, 1, 6, 6)), np.ones((3, 1, 3, 3))).shape
    (2, 3, 2, 2)
    """
    x, w, b = as_tensor(input), as_tensor(weight), None if bias is None else as_tensor(bias)
    args = (stride, padding, dilation, groups, padding_mode)
    geometry, batched = conv_geometry("conv2d", 2, x.data, w.data, None if b is None else b.data, *args)
    xb = x.data if batched else x.data[None]
    conv = backend.choose("conv", "conv2d", xb, w.data, geometry)
    block = backend.choose(FAMILY, "conv2d_relu_max_pool2d", conv, xb, w.data, geometry)
    if block.reference:
        return relu_max_pool2d(run_engine(conv, x, w, b, geometry, batched), 2)
    return run_engine(block, x, w, b, geometry, batched)


def _pools_engine(name: str) -> Any:
    """``why_not`` of a fused engine that pools the output of the convolution engine ``name``."""

    def why_not(conv: backend.Engine, x: np.ndarray, w: np.ndarray, g: ConvGeometry) -> str | None:
        if conv.name != name:
            return f"it pools the {name!r} convolution engine's output. Received: conv engine {conv.name!r}"
        if min(g.out_size) < 2:
            return f"it needs a convolution output of at least 2x2. Received: out_size={g.out_size}"
        if x.dtype not in COMPILED_DTYPES:
            return f"it needs float32 or float64. Received: dtype={x.dtype}"
        return None

    return why_not


# -- direct ---------------------------------------------------------------------------
def _direct_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, tuple]:
    from ._numba.conv import FORWARD_BLOCK, direct_forward_relu_pool

    saved = direct.flat_padded(x, g)
    ho, wo = g.out_size
    out = np.empty((x.shape[0], ho // 2, wo // 2, w.shape[0]), x.dtype)  # channels-last
    arg = np.empty(out.shape, np.uint8)
    bias = np.zeros(w.shape[0], x.dtype) if b is None else b
    weight, bias = direct.block_padded(w, FORWARD_BLOCK), direct.block_padded(bias, FORWARD_BLOCK)
    direct_forward_relu_pool(saved.flat, weight, bias, *g.dilation, saved.padded_size[1], ho, out, arg)
    return np.moveaxis(out, -1, 1), (saved, out, arg)


def _direct_backward(
    grad: np.ndarray, w: np.ndarray, state: tuple, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    saved, out, arg = state
    return direct.backward(grad, w, saved, g, needs, pooled=(out, arg))


# -- batch-inner ----------------------------------------------------------------------
def _batch_inner_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, g: ConvGeometry, for_backward: bool
) -> tuple[np.ndarray, tuple]:
    from ._numba.conv import relu_pool_batch_inner

    n, o, (ho, wo), per_row = x.shape[0], w.shape[0], g.out_size, g.out_size[1] * x.shape[0]
    y = reusable((g.groups, o // g.groups, ho * per_row), x.dtype)  # (G, O/G, P*N)

    def emit(part: slice, cols: np.ndarray, wm: np.ndarray) -> None:
        np.matmul(wm, cols, out=y[:, :, part.start * per_row : part.stop * per_row])

    saved = batch_inner.gemms(x, w, b, g, for_backward, emit)
    out = np.empty((n, o, ho // 2, wo // 2), x.dtype)
    arg = np.empty((o, ho // 2, wo // 2, n), np.uint8)
    relu_pool_batch_inner(y.reshape(o, ho, wo, n), out, arg)
    return out, (saved, out, arg)


def _batch_inner_backward(
    grad: np.ndarray, w: np.ndarray, state: tuple, g: ConvGeometry, needs: Sequence[bool]
) -> tuple[np.ndarray | None, ...]:
    from ._numba.conv import relu_pool_batch_inner_backward

    saved, out, arg = state
    columns = reusable((w.shape[0], *g.out_size, grad.shape[0]), grad.dtype)  # (O, ho, wo, N)
    columns.fill(0)
    relu_pool_batch_inner_backward(np.ascontiguousarray(grad), out, arg, columns)
    return batch_inner.backward_columns(columns, w, saved, g, needs)


backend.register(
    backend.Engine(
        FAMILY,
        "direct-relu-pool",
        ConvImpl(_direct_forward, _direct_backward),
        why_not=_pools_engine("direct"),
        needs_numba=True,
    )
)
backend.register(
    backend.Engine(
        FAMILY,
        "batch-inner-relu-pool",
        ConvImpl(_batch_inner_forward, _batch_inner_backward),
        why_not=_pools_engine("batch-inner"),
        needs_numba=True,
    )
)
# The block's reference is the three ops one after the other (``conv2d_relu_max_pool2d``).
backend.register(backend.Engine(FAMILY, "reference", None, reference=True))

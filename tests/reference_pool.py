"""Slow, obviously correct pooling: plain loops over every output and every window element.

The oracle for convlens.functional.pool (itself checked against PyTorch in
test_pool.py). Works for any number of spatial dims; ``x`` is ``(N, C, *spatial)``.
Each function transcribes PyTorch's CPU kernels directly: the window of output
``o`` along an axis starts at ``o*stride - padding``; max keeps the first
maximum in row-major window order (``val > best or isnan(val)``, starting from
``-inf`` at the first in-bounds element); average divides by the window size
clipped to ``[-padding, size + padding)`` (or to the input, or the override).
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def pool_output_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling_output_shape."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _geometry(x, kernel, stride, padding, dilation, ceil_mode):
    nd = x.ndim - 2
    stride = stride or kernel
    outs = [
        pool_output_size(x.shape[2 + a], kernel[a], stride[a], padding[a], dilation[a], ceil_mode)
        for a in range(nd)
    ]
    return nd, stride, outs


def max_pool(x, kernel, stride=None, padding=None, dilation=None, ceil_mode=False):
    """(output, flat indices) of max pooling, by loops."""
    nd = x.ndim - 2
    padding = padding or (0,) * nd
    dilation = dilation or (1,) * nd
    nd, stride, outs = _geometry(x, kernel, stride, padding, dilation, ceil_mode)
    sizes = x.shape[2:]
    out = np.empty(x.shape[:2] + tuple(outs), dtype=x.dtype)
    index = np.empty(out.shape, dtype=np.int64)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*[range(m) for m in outs]):
            first = []  # first in-bounds position along each axis
            for a in range(nd):
                start = o[a] * stride[a] - padding[a]
                while start < 0:
                    start += dilation[a]
                first.append(start)
            best, best_index = -np.inf, int(np.ravel_multi_index(first, sizes, mode="clip"))
            if x.dtype.kind in "iu":
                best = np.iinfo(x.dtype).min
            for taps in itertools.product(*[range(k) for k in kernel]):
                pos = [o[a] * stride[a] - padding[a] + taps[a] * dilation[a] for a in range(nd)]
                if any(p < 0 or p >= sizes[a] for a, p in enumerate(pos)):
                    continue
                val = x[(n, c, *pos)]
                if val > best or (x.dtype.kind == "f" and np.isnan(val)):
                    best, best_index = val, int(np.ravel_multi_index(pos, sizes))
            out[(n, c, *o)] = best
            index[(n, c, *o)] = best_index
    return out, index


def max_pool_backward(grad, index, input_shape):
    """Scatter each output gradient onto the input element at its index (summing repeats)."""
    grad_in = np.zeros(input_shape, dtype=grad.dtype)
    plane = math.prod(input_shape[2:])
    for n, c in itertools.product(range(input_shape[0]), range(input_shape[1])):
        flat = grad_in[n, c].reshape(-1)
        for i, g in zip(index[n, c].reshape(-1), grad[n, c].reshape(-1), strict=True):
            if 0 <= i < plane:
                flat[i] += g
    return grad_in


def _avg_windows(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Yield (output index, list of in-bounds input positions, divisor) for average pooling."""
    nd = x.ndim - 2
    padding = padding or (0,) * nd
    nd, stride, outs = _geometry(x, kernel, stride, padding, (1,) * nd, ceil_mode)
    sizes = x.shape[2:]
    for o in itertools.product(*[range(m) for m in outs]):
        starts = [o[a] * stride[a] - padding[a] for a in range(nd)]
        ends = [min(starts[a] + kernel[a], sizes[a] + padding[a]) for a in range(nd)]
        padded_size = math.prod(e - s for s, e in zip(starts, ends, strict=True))
        ranges = [
            range(max(s, 0), min(e, sizes[a])) for a, (s, e) in enumerate(zip(starts, ends, strict=True))
        ]
        positions = list(itertools.product(*ranges))
        if divisor_override is not None:
            divisor = divisor_override
        else:
            divisor = padded_size if count_include_pad else len(positions)
        yield o, positions, divisor, outs


def avg_pool(
    x, kernel, stride=None, padding=None, ceil_mode=False, count_include_pad=True, divisor_override=None
):
    out = None
    for o, positions, divisor, outs in _avg_windows(
        x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ):
        if out is None:
            out = np.empty(x.shape[:2] + tuple(outs), dtype=x.dtype)
        for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
            total = x.dtype.type(0) if x.dtype.kind == "f" else 0
            for pos in positions:
                total += x[(n, c, *pos)]
            if x.dtype.kind == "f":
                out[(n, c, *o)] = total / x.dtype.type(divisor)
            else:  # C++ integer division truncates toward zero
                q = abs(int(total)) // abs(divisor)
                out[(n, c, *o)] = q if (total < 0) == (divisor < 0) else -q
    return out


def avg_pool_backward(
    grad,
    input_shape,
    kernel,
    stride=None,
    padding=None,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    grad_in = np.zeros(input_shape, dtype=grad.dtype)
    x = np.empty(input_shape)
    for o, positions, divisor, _ in _avg_windows(
        x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    ):
        for n, c in itertools.product(range(input_shape[0]), range(input_shape[1])):
            share = grad[(n, c, *o)] / grad.dtype.type(divisor)
            for pos in positions:
                grad_in[(n, c, *pos)] += share
    return grad_in


def adaptive_windows(n: int, out: int) -> list[range]:
    return [range(i * n // out, -(-(i + 1) * n // out)) for i in range(out)]


def adaptive_avg_pool(x, output_size):
    sizes = x.shape[2:]
    windows = [adaptive_windows(n, m) for n, m in zip(sizes, output_size, strict=True)]
    out = np.empty(x.shape[:2] + tuple(output_size), dtype=x.dtype)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*[range(m) for m in output_size]):
            positions = list(itertools.product(*[windows[a][o[a]] for a in range(len(sizes))]))
            total = x.dtype.type(0)
            for pos in positions:
                total += x[(n, c, *pos)]
            out[(n, c, *o)] = total / x.dtype.type(len(positions))
    return out


def adaptive_avg_pool_backward(grad, input_shape):
    sizes, outs = input_shape[2:], grad.shape[2:]
    windows = [adaptive_windows(n, m) for n, m in zip(sizes, outs, strict=True)]
    grad_in = np.zeros(input_shape, dtype=grad.dtype)
    for n, c in itertools.product(range(input_shape[0]), range(input_shape[1])):
        for o in itertools.product(*[range(m) for m in outs]):
            positions = list(itertools.product(*[windows[a][o[a]] for a in range(len(sizes))]))
            for pos in positions:
                grad_in[(n, c, *pos)] += grad[(n, c, *o)] / grad.dtype.type(len(positions))
    return grad_in


def adaptive_max_pool(x, output_size):
    """(output, flat indices); backward is max_pool_backward."""
    sizes = x.shape[2:]
    windows = [adaptive_windows(n, m) for n, m in zip(sizes, output_size, strict=True)]
    out = np.empty(x.shape[:2] + tuple(output_size), dtype=x.dtype)
    index = np.empty(out.shape, dtype=np.int64)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*[range(m) for m in output_size]):
            best, best_index = -np.inf, None
            for pos in itertools.product(*[windows[a][o[a]] for a in range(len(sizes))]):
                val = x[(n, c, *pos)]
                if best_index is None:
                    best_index = int(np.ravel_multi_index(pos, sizes))
                if val > best or np.isnan(val):
                    best, best_index = val, int(np.ravel_multi_index(pos, sizes))
            out[(n, c, *o)] = best
            index[(n, c, *o)] = best_index
    return out, index

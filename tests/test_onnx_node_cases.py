"""The ONNX package's own backend node test cases for Conv, ConvTranspose, MaxPool, AveragePool
and Pad, run through ``convlens.functional``: a spec check of our ops against ONNX's.

Each node's attributes are translated into one convlens call (``F.pad`` first where ONNX pads
asymmetrically or more than half a kernel, which the convlens ops do not take directly). The
cases come from ``onnx/backend/test/data/node/`` when the wheel ships it, otherwise from the
generators it is made from (``onnx.backend.test.case.node``: the same models and data).
Cases that convlens cannot express raise ``InexpressibleError`` with the reason; the test asserts
exactly which cases pass and which are inexpressible, so a change on either side shows.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import helper, numpy_helper  # noqa: E402

import convlens as cl  # noqa: E402
from convlens import functional as F  # noqa: E402

OPS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "Pad")

INEXPRESSIBLE = {
    # convlens's avg_pool has no dilation (neither has PyTorch's).
    "test_averagepool_2d_dilations": "dilation",
    "test_averagepool_3d_dilations_small": "dilation",
    "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True": "dilation",
    "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False": "dilation",
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True": "dilation",
    "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False": "dilation",
}


class InexpressibleError(Exception):
    """The case needs something convlens.functional does not have."""


# ----------------------------------------------------------------------------------- the cases
def _from_data_directory() -> list[tuple[str, object, list, list]]:
    root = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    cases = []
    for folder in sorted(root.glob("test_*")) if root.is_dir() else []:
        model = onnx.load(folder / "model.onnx")
        if model.graph.node[0].op_type not in OPS or folder.name.endswith("_expanded"):
            continue
        data = folder / "test_data_set_0"
        inputs, outputs = (
            [numpy_helper.to_array(onnx.load_tensor(p)) for p in sorted(data.glob(pattern))]
            for pattern in ("input_*.pb", "output_*.pb")
        )
        cases.append((folder.name, model, inputs, outputs))
    return cases


def _from_generators() -> list[tuple[str, object, list, list]]:
    from onnx.backend.test.case import node

    for module in ("conv", "convtranspose", "maxpool", "averagepool", "pad"):
        # Each case class records its cases in node._NodeTestCases when its module is imported.
        importlib.import_module(f"onnx.backend.test.case.node.{module}")
    unique = {
        case.name: (case.name, case.model, list(case.data_sets[0][0]), list(case.data_sets[0][1]))
        for case in node._NodeTestCases
        if case.model.graph.node[0].op_type in OPS and not case.name.endswith("_expanded")
    }
    return list(unique.values())


@pytest.fixture(scope="module")
def cases():
    with np.errstate(all="ignore"):
        return _from_data_directory() or _from_generators()


# --------------------------------------------------------------------- attributes -> convlens
def _attributes(node) -> dict:
    values = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def _pairs(attrs: dict, x_shape, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(before, after) per spatial axis from ``pads`` or ``auto_pad``."""
    d = len(kernel)
    auto = attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for n, k, s, dl in zip(x_shape[2:], kernel, strides, dilations, strict=True):
            total = max((math.ceil(n / s) - 1) * s + dl * (k - 1) + 1 - n, 0)
            small = total // 2
            pairs.append((small, total - small) if auto == "SAME_UPPER" else (total - small, small))
        return pairs
    pads = attrs.get("pads", [0] * (2 * d)) if auto != "VALID" else [0] * (2 * d)
    return [(pads[i], pads[i + d]) for i in range(d)]


def _torch_pad(pairs) -> tuple[int, ...]:
    """F.pad's argument (last axis first) for spatial (before, after) pairs."""
    return tuple(v for before, after in reversed(pairs) for v in (before, after))


def _common(attrs: dict, x, kernel):
    d = x.ndim - 2
    strides = attrs.get("strides", [1] * d)
    dilations = attrs.get("dilations", [1] * d)
    return d, list(kernel), list(strides), list(dilations), _pairs(attrs, x.shape, kernel, strides, dilations)


def _conv(attrs, x, w, b=None):
    d, _, strides, dilations, pairs = _common(attrs, x, attrs.get("kernel_shape", w.shape[2:]))
    op = getattr(F, f"conv{d}d")
    if all(before == after for before, after in pairs):
        return op(x, w, b, strides, [p for p, _ in pairs], dilations, attrs.get("group", 1)).data
    padded = F.pad(x, _torch_pad(pairs))
    return op(padded, w, b, strides, 0, dilations, attrs.get("group", 1)).data


def _conv_transpose(attrs, x, w, b=None):
    d, kernel, strides, dilations, _ = _common(attrs, x, attrs.get("kernel_shape", w.shape[2:]))
    extra = attrs.get("output_padding", [0] * d)
    full = [
        s * (n - 1) + e + dl * (k - 1) + 1
        for n, s, e, dl, k in zip(x.shape[2:], strides, extra, dilations, kernel, strict=True)
    ]
    if "output_shape" in attrs:
        totals = [f - o for f, o in zip(full, attrs["output_shape"][-d:], strict=True)]
        upper = attrs.get("auto_pad") == "SAME_UPPER"
        pairs = [(t // 2, t - t // 2) if upper else (t - t // 2, t // 2) for t in totals]
    elif attrs.get("auto_pad") in ("SAME_UPPER", "SAME_LOWER"):
        totals = [f - n * s for f, n, s in zip(full, x.shape[2:], strides, strict=True)]
        upper = attrs["auto_pad"] == "SAME_UPPER"
        pairs = [(t // 2, t - t // 2) if upper else (t - t // 2, t // 2) for t in totals]
    else:
        pads = attrs.get("pads", [0] * (2 * d))
        pairs = [(pads[i], pads[i + d]) for i in range(d)]
    op = getattr(F, f"conv_transpose{d}d")
    # The scatter without padding or output_padding, then ONNX's crop/extension of each axis.
    y = op(x, w, None, strides, 0, 0, attrs.get("group", 1), dilations)
    y = F.pad(y, _torch_pad([(-before, e - after) for (before, after), e in zip(pairs, extra, strict=True)]))
    return (y + b.reshape(-1, *([1] * d))).data if b is not None else y.data


def _max_pool(attrs, x, want_indices=False):
    d, kernel, strides, dilations, pairs = _common(attrs, x, attrs["kernel_shape"])
    op = getattr(F, f"max_pool{d}d")
    ceil = bool(attrs.get("ceil_mode", 0))
    fits = all(b == a and 2 * b <= k for (b, a), k in zip(pairs, kernel, strict=True))
    source = cl.tensor(x)
    if not fits:
        if want_indices:
            raise InexpressibleError("indices through explicit padding")
        low = -np.inf if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
        source = F.pad(source, _torch_pad(pairs), value=float(low))
    padding = [b for b, _ in pairs] if fits else 0
    if not want_indices:
        return op(source, kernel, strides, padding, dilations, ceil).data
    y, flat = op(source, kernel, strides, padding, dilations, ceil, return_indices=True)
    plane = int(np.prod(x.shape[2:]))
    if attrs.get("storage_order", 0) == 1:  # column-major positions within each plane
        flat = np.unravel_index(flat.data, x.shape[2:])
        flat = np.ravel_multi_index(flat, x.shape[2:], order="F")
    else:
        flat = flat.data
    offsets = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[0], x.shape[1], *([1] * d)) * plane
    return y.data, flat + offsets


def _avg_pool(attrs, x):
    d, kernel, strides, dilations, pairs = _common(attrs, x, attrs["kernel_shape"])
    if any(dl != 1 for dl in dilations):
        raise InexpressibleError("dilation: convlens's avg_pool has none")
    op = getattr(F, f"avg_pool{d}d")
    ceil, include = bool(attrs.get("ceil_mode", 0)), bool(attrs.get("count_include_pad", 0))
    if all(b == a and 2 * b <= k for (b, a), k in zip(pairs, kernel, strict=True)):
        return op(x, kernel, strides, [b for b, _ in pairs], ceil, include).data
    # Asymmetric or wide padding: average the padded input; without count_include_pad the
    # divisor counts only real cells, i.e. the same pooling of a padded mask of ones.
    padded = F.pad(cl.tensor(x), _torch_pad(pairs))
    total = op(padded, kernel, strides, 0, ceil, True)
    if include:
        return total.data
    ones = F.pad(cl.tensor(np.ones_like(x)), _torch_pad(pairs))
    return (total / op(ones, kernel, strides, 0, ceil, True)).data


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _pad(attrs, x, pads, value=None, axes=None):
    rank = x.ndim
    axes = list(range(rank)) if axes is None else [int(a) % rank for a in axes]
    amounts = {a: (int(pads[i]), int(pads[i + len(axes)])) for i, a in enumerate(axes)}
    padded = [a for a in range(rank) if amounts.get(a, (0, 0)) != (0, 0)]
    first = min(padded, default=rank - 1)
    pairs = [amounts.get(a, (0, 0)) for a in range(first, rank)]
    mode = _PAD_MODES[attrs.get("mode", "constant")]
    fill = 0.0 if value is None or mode != "constant" else float(np.asarray(value))
    return F.pad(cl.tensor(x), _torch_pad(pairs), mode=mode, value=fill).data.astype(x.dtype)


def run_case(model, inputs) -> list[np.ndarray]:
    node = model.graph.node[0]
    attrs = _attributes(node)
    if node.op_type == "Conv":
        return [_conv(attrs, *inputs)]
    if node.op_type == "ConvTranspose":
        return [_conv_transpose(attrs, *inputs)]
    if node.op_type == "MaxPool":
        if len(node.output) == 2:
            return list(_max_pool(attrs, *inputs, want_indices=True))
        return [_max_pool(attrs, *inputs)]
    if node.op_type == "AveragePool":
        return [_avg_pool(attrs, *inputs)]
    return [_pad(attrs, *inputs)]


# ------------------------------------------------------------------------------------ the test
def test_onnx_node_cases_run_through_convlens_functional(cases):
    passed, inexpressible, failed = [], {}, {}
    for name, model, inputs, outputs in cases:
        try:
            got = run_case(model, inputs)
        except InexpressibleError as why:
            inexpressible[name] = str(why)
            continue
        try:
            assert len(got) == len(outputs)
            for g, want in zip(got, outputs, strict=True):
                assert g.shape == want.shape, (g.shape, want.shape)
                # The ONNX backend runner's tolerance: some expected outputs are written to 4 digits.
                np.testing.assert_allclose(g, want, rtol=1e-3, atol=1e-7)
            passed.append(name)
        except AssertionError as error:
            failed[name] = str(error)[:300]
    print(f"\nONNX node cases: {len(passed)} pass, {len(inexpressible)} inexpressible, {len(failed)} fail")
    assert not failed, failed
    assert {n: r.split(":")[0] for n, r in inexpressible.items()} == INEXPRESSIBLE
    assert len(passed) == len(cases) - len(INEXPRESSIBLE) and len(cases) >= 60
    assert {name.split("_")[1] for name in passed} >= {"conv", "convtranspose", "maxpool", "averagepool"}

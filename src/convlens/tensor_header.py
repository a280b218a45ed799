"""The tensors a safetensors file declares, checked before any tensor is read.

A safetensors file is an 8-byte little-endian header length, a JSON header
naming each tensor's dtype, shape and byte range, then the bytes. Reading only
the header tells whether the file can be what the model needs: the declared
shapes are compared with the model's before a single tensor is allocated, and
each declaration with the bytes the file really holds.

>>> import numpy as np, safetensors.numpy
>>> payload = safetensors.numpy.save({"weight": np.zeros((2, 3), np.float32)})
>>> read_safetensors_header(payload)
{'weight': TensorInfo(dtype='F32', shape=(2, 3))}
>>> try:
...     check_tensors(read_safetensors_header(payload), {"weight": (3, 2)})
... except ValueError as error:
...     print(error)  # doctest: +NORMALIZE_WHITESPACE
safetensors: the tensors do not fit the model:
tensor 'weight' has shape (2, 3) but the model expects (3, 2)
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ._checks import SHOWN, Choice, ConfigError, as_dict, fail, is_int
from .config_schema import OPTIMIZER_BUFFERS

__all__ = ["TensorInfo", "check_tensors", "expected_optimizer_tensors", "read_safetensors_header"]

MAX_HEADER_BYTES = 1 << 24  # the JSON naming the tensors; a checkpoint's is a few kB


class TensorInfo(NamedTuple):
    """A tensor as a safetensors header declares it."""

    dtype: str
    shape: tuple[int, ...]


_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "U16": 2,
    "I16": 2,
    "F16": 2,
    "BF16": 2,
    "U32": 4,
    "I32": 4,
    "F32": 4,
    "U64": 8,
    "I64": 8,
    "F64": 8,
}
FLOAT_DTYPES = ("F16", "F32", "F64")


def read_safetensors_header(payload: bytes, where: str = "safetensors") -> dict[str, TensorInfo]:
    """The tensors a safetensors file declares, checked against the bytes it holds.

    Reads only the header (an 8-byte little-endian length, then JSON), so no
    tensor is allocated. Every entry must have a known dtype, a shape of at most
    8 non-negative sizes, and data offsets inside the file whose length equals
    the shape's size times the dtype's.
    """
    if len(payload) < 8:
        raise ConfigError(f"{where} is not a valid safetensors file (only {len(payload)} bytes)")
    (length,) = struct.unpack("<Q", payload[:8])
    if not 2 <= length <= min(MAX_HEADER_BYTES, len(payload) - 8):
        raise ConfigError(
            f"{where} is not a valid safetensors file "
            f"(its header claims {length:,} bytes of {len(payload) - 8:,})"
        )
    try:
        header = json.loads(payload[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ConfigError(f"{where} is not a valid safetensors file (its header is not JSON)") from None
    as_dict(header, where, "header")
    data_bytes = len(payload) - 8 - length
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor_entry(name, entry, data_bytes, where)
    return tensors


def _tensor_entry(name: str, entry: Any, data_bytes: int, where: str) -> TensorInfo:
    path = f"header[{name[:SHOWN]!r}]"
    as_dict(entry, where, path)
    dtype = Choice(tuple(_DTYPE_BYTES))(entry.get("dtype"), where, f"{path}.dtype")
    shape = entry.get("shape")
    if not isinstance(shape, list) or len(shape) > 8 or not all(is_int(s) and s >= 0 for s in shape):
        raise fail(where, f"{path}.shape", "a list of at most 8 sizes >= 0", shape)
    offsets = entry.get("data_offsets")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(map(is_int, offsets))
        or not 0 <= offsets[0] <= offsets[1] <= data_bytes
    ):
        raise fail(
            where,
            f"{path}.data_offsets",
            f"[begin, end] within the file's {data_bytes:,} data bytes",
            offsets,
        )
    declared = math.prod(shape) * _DTYPE_BYTES[dtype]
    if offsets[1] - offsets[0] != declared:
        raise ConfigError(
            f"{where}: tensor {name[:SHOWN]!r} declares shape {tuple(shape)} of {dtype} "
            f"({declared:,} bytes) but holds {offsets[1] - offsets[0]:,} bytes"
        )
    return TensorInfo(dtype, tuple(shape))


def check_tensors(
    declared: Mapping[str, TensorInfo], expected: Mapping[str, tuple[int, ...]], where: str = "safetensors"
) -> None:
    """The declared tensors must be exactly ``expected`` (name -> shape), each a float dtype."""
    missing = [name for name in expected if name not in declared]
    unexpected = [name for name in declared if name not in expected]
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:5])}"] if missing else []) + (
            [f"unexpected {', '.join(n[:SHOWN] for n in unexpected[:5])}"] if unexpected else []
        )
        raise ConfigError(f"{where}: the tensors do not fit the model: {'; '.join(parts)}")
    misfit = f"{where}: the tensors do not fit the model:"
    for name, shape in expected.items():
        info = declared[name]
        if info.shape != tuple(shape):
            raise ConfigError(
                f"{misfit} tensor {name!r} has shape {info.shape} but the model expects {tuple(shape)}"
            )
        # BatchNorm's step counter is the one integer buffer (int64, as PyTorch's)
        counter = name.rsplit(".", 1)[-1] == "num_batches_tracked" and info.dtype == "I64"
        if info.dtype not in FLOAT_DTYPES and not counter:
            raise ConfigError(
                f"{misfit} tensor {name!r} is {info.dtype}; expected one of {', '.join(FLOAT_DTYPES)}"
            )


def expected_optimizer_tensors(
    declared: Mapping[str, TensorInfo], parameter_shapes: Sequence[tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """The shapes the optimizer arrays ``state.<index>.<buffer>`` must have: their parameter's.

    Names with an unknown buffer or an index out of range are left out, so
    :func:`check_tensors` reports them as unexpected.
    """
    expected = {}
    for name in declared:
        parts = name.split(".")
        if (
            len(parts) == 3
            and parts[0] == "state"
            and parts[1].isdigit()
            and int(parts[1]) < len(parameter_shapes)
            and parts[2] in OPTIMIZER_BUFFERS
        ):
            expected[name] = tuple(parameter_shapes[int(parts[1])])
    return expected

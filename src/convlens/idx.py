"""The IDX file format of MNIST and Fashion-MNIST: read and write, gzipped or not.

An IDX file is a 4-byte magic (two zero bytes, a type code, the number of
dimensions), each dimension as a big-endian uint32, then the data, C order,
big-endian (the format's definition: http://yann.lecun.com/exdb/mnist/, bottom).

Files are distrusted. The header is read first and every size it declares is
checked, against sane limits and against what the file can hold, before
anything is allocated; a gzip stream is then inflated only as far as the header
promises, plus one byte to detect trailing data. A small file that inflates to
gigabytes therefore costs what its header declares, not what it inflates to.

>>> import numpy as np, tempfile, os
>>> from convlens import idx
>>> path = os.path.join(tempfile.mkdtemp(), "x-idx2-ubyte.gz")
>>> idx.write_idx(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
>>> idx.read_idx(path)
array([[0, 1, 2],
       [3, 4, 5]], dtype=uint8)
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .io import write_atomically

__all__ = ["MAX_DATA_BYTES", "MAX_DIMS", "read_idx", "write_idx"]

# IDX type byte -> big-endian NumPy dtype.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in _DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"

# The largest IDX data set in use (EMNIST ByClass, training images) holds 547 MB; a header
# declaring more than this is refused rather than trusted with that much memory.
MAX_DATA_BYTES = 2**30
# Real IDX files have 1 to 4 dimensions; the format's byte allows 255, NumPy far fewer.
MAX_DIMS = 32
# Deflate cannot expand data by more than 1032:1 (a 258-byte match per 2 bits, RFC 1951).
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 20  # bytes inflated per read: bounds the memory of each step


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped or not (detected from the first bytes, not the name).

    The header must be two zero bytes, a type code (0x08 uint8, 0x09 int8,
    0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64, all big-endian), the
    number of dimensions (1 to ``MAX_DIMS``), then each dimension as a big-endian
    uint32; the data must fill the rest of the file exactly and declare at most
    ``MAX_DATA_BYTES``.

    Returns:
        A native-byte-order array of shape ``dims`` (writable).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is empty, truncated, has trailing bytes, is not IDX,
            declares too much data, or is a corrupt gzip stream; one line naming
            the file and what is wrong.
    """
    path = Path(path)
    with path.open("rb") as file:
        return read_idx_stream(file, str(path))


def read_idx_stream(file: BinaryIO, where: str) -> np.ndarray:
    """:func:`read_idx` on an open, seekable binary file; ``where`` names it in errors."""
    stored = file.seek(0, os.SEEK_END)
    file.seek(0)
    if stored == 0:
        raise ValueError(f"read_idx: {where} is empty")
    zipped = file.read(2) == _GZIP_MAGIC
    file.seek(0)
    stream: BinaryIO = gzip.GzipFile(fileobj=file, mode="rb") if zipped else file
    try:
        shape, dtype, header = _read_header(stream, where)
        expected = math.prod(shape) * dtype.itemsize
        _check_fits(expected, stored, header, zipped, where, shape, dtype)
        flat = _read_exactly(stream, expected, where, shape, dtype)
    except (OSError, EOFError, zlib.error) as error:
        if not zipped:
            raise
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"read_idx: {where} is a corrupt or truncated gzip stream ({reason})") from None
    array = flat.view(dtype)
    if dtype.itemsize > 1 and not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))  # no second copy
    return array.reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file; gzipped when ``path`` ends in ``.gz``.

    The inverse of :func:`read_idx`; dtype must be one IDX can hold (uint8,
    int8, int16, int32, float32, float64).
    """
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(
            f"write_idx: IDX cannot hold dtype {array.dtype}; use one of "
            f"{', '.join(str(d.newbyteorder('=')) for d in _DTYPES.values())}"
        )
    if not 1 <= array.ndim <= MAX_DIMS:
        raise ValueError(
            f"write_idx: IDX needs 1 to {MAX_DIMS} dimensions, got an array of shape {array.shape}"
        )
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    raw = header + np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()
    path = Path(path)
    write_atomically(path, gzip.compress(raw, mtime=0) if path.name.endswith(".gz") else raw)


def _read_header(stream: BinaryIO, where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(dims, dtype, header bytes), the dims checked against the limits."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise ValueError(f"read_idx: {where} is too short for an IDX header ({len(magic)} bytes, need 4)")
    zero0, zero1, code, ndim = magic
    if zero0 or zero1 or code not in _DTYPES:
        raise ValueError(
            f"read_idx: {where} is not an IDX file: magic bytes {magic.hex(' ')}, expected "
            f"00 00 <type code: {', '.join(f'{c:02x}' for c in _DTYPES)}> <ndim>"
        )
    if ndim == 0:
        raise ValueError(f"read_idx: {where} declares 0 dimensions (IDX data has at least 1)")
    if ndim > MAX_DIMS:
        raise ValueError(f"read_idx: {where} declares {ndim} dimensions, more than the {MAX_DIMS} allowed")
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"read_idx: {where} is truncated: {ndim} dimensions need a {4 + 4 * ndim}-byte header, "
            f"the data has {4 + len(raw_dims)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    dtype = _DTYPES[code]
    # zero-size dims included: NumPy refuses shapes whose other dims overflow
    if math.prod(max(n, 1) for n in shape) * dtype.itemsize > MAX_DATA_BYTES:
        raise ValueError(
            f"read_idx: {where} declares dims {shape} of {dtype.newbyteorder('=')}, larger than "
            f"the {MAX_DATA_BYTES} bytes allowed (MAX_DATA_BYTES)"
        )
    return shape, dtype, 4 + 4 * ndim


def _check_fits(
    expected: int, stored: int, header: int, zipped: bool, where: str, shape: tuple, dtype: np.dtype
) -> None:
    """Refuse a declared size the file cannot hold, before the data is allocated."""
    if not zipped and header + expected > stored:
        raise ValueError(
            f"read_idx: {where} is truncated: dims {shape} of {dtype.newbyteorder('=')} need "
            f"{expected} data bytes, found {stored - header}"
        )
    if zipped and header + expected > _DEFLATE_MAX_RATIO * stored:
        raise ValueError(
            f"read_idx: {where} is truncated: dims {shape} of {dtype.newbyteorder('=')} need "
            f"{expected} data bytes, more than a gzip stream of {stored} bytes can hold"
        )


def _read_exactly(stream: BinaryIO, expected: int, where: str, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """The ``expected`` data bytes, inflated chunk by chunk, then one byte to detect trailing data."""
    flat = np.empty(expected, dtype=np.uint8)  # pages are only committed as they are filled
    view, filled = memoryview(flat), 0
    while filled < expected:
        got = stream.readinto(view[filled : filled + _CHUNK])
        if not got:
            raise ValueError(
                f"read_idx: {where} is truncated: dims {shape} of {dtype.newbyteorder('=')} need "
                f"{expected} data bytes, found {filled}"
            )
        filled += got
    if stream.read(1):
        raise ValueError(
            f"read_idx: {where} has trailing bytes: dims {shape} of {dtype.newbyteorder('=')} need "
            f"{expected} data bytes, found more"
        )
    return flat

"""Hostile files: IDX and image parsers refuse them with one line, before any large allocation.

Three layers:
- crafted files (a gzip bomb, forged dims, truncations), each with the error it must give;
- a corpus of crafted files replayed with an allowed-exception list;
- hypothesis fuzzers over IDX headers, dims, type codes, truncation, trailing bytes and gzip,
  and over image bytes (random, truncated PNG/JPEG, dimensions over Pillow's limit).

"No large allocation" is measured as the growth of the process's peak resident memory
(Linux ``VmHWM``, reset through ``/proc/self/clear_refs``), which sees NumPy, zlib and
Pillow alike; elsewhere those checks are skipped.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from convlens import data, idx

CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MiB = 1 << 20
MEMORY_BUDGET = 48 * MiB  # far below what any hostile file here would cost if read in full
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------------ measuring


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_growth(call):
    """Run ``call()``; return (its result or exception, growth of peak resident memory or None)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current resident size
        before = _status("VmRSS")
    except OSError:
        before = None
    try:
        outcome = call()
    except Exception as error:  # noqa: BLE001 - the caller checks which exceptions are allowed
        outcome = error
    after = _status("VmHWM")
    return outcome, None if before is None or after is None else after - before


def assert_refused_cheaply(call, where: str, pattern: str | None = None):
    """``call()`` raises a one-line ValueError naming ``where`` (matching ``pattern``), cheaply."""
    start = time.perf_counter()
    outcome, growth = peak_growth(call)
    seconds = time.perf_counter() - start
    assert isinstance(outcome, ValueError), f"expected a ValueError, got {outcome!r}"
    message = str(outcome)
    assert "\n" not in message and where in message, message
    if pattern is not None:
        assert pattern in message, message
    if growth is not None:
        assert growth < MEMORY_BUDGET, f"peak memory grew by {growth / MiB:.0f} MiB: {message}"
    assert seconds < 5, f"took {seconds:.1f} s: {message}"
    return message


# ------------------------------------------------------------------------ building files


def idx_header(code: int, dims: tuple[int, ...], zeros: bytes = b"\x00\x00") -> bytes:
    return zeros + bytes([code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


def idx_file(array: np.ndarray) -> bytes:
    """An IDX file written from the format's definition (independent of write_idx)."""
    code = next(c for c, d in CODES.items() if np.dtype(d) == array.dtype.newbyteorder(">"))
    return idx_header(code, array.shape) + array.astype(CODES[code]).tobytes()


def gzip_bomb(prefix: bytes, zero_mib: int) -> bytes:
    """A valid gzip stream of ``prefix`` followed by ``zero_mib`` MiB of zeros, built in O(1) time.

    After a full flush, deflate starts afresh, so every MiB of zeros compresses to the same
    ~1 KB block: the block is repeated instead of compressing gigabytes.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip wrapper
    zeros = bytes(MiB)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush(zlib.Z_FINISH)[:-8]  # the final block, without the trailer
    crc = zlib.crc32(prefix)
    for _ in range(zero_mib):
        crc = zlib.crc32(zeros, crc)
    trailer = struct.pack("<II", crc, (len(prefix) + zero_mib * MiB) & 0xFFFFFFFF)
    return head + block * zero_mib + tail + trailer


def test_gzip_bomb_builder_makes_a_valid_stream():
    assert gzip.decompress(gzip_bomb(b"head", 3)) == b"head" + bytes(3 * MiB)


# ------------------------------------------------------------------------ crafted files


def test_gzip_bomb_is_not_inflated_beyond_what_the_header_promises(tmp_path):
    """A 1,000-byte promise followed by 512 MiB of zeros: refused after reading 1,001 bytes."""
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(gzip_bomb(idx_header(0x08, (1000,)), 512))
    assert path.stat().st_size < 600_000
    assert_refused_cheaply(lambda: data.read_idx(path), str(path), "trailing bytes")


def test_declared_sizes_are_checked_before_any_allocation(tmp_path):
    cases = {
        # a 12-byte raw file claiming MNIST's 47 MB of images
        "raw-lies": (idx_header(0x08, (60000, 28, 28)), "truncated"),
        # a tiny gzip file claiming 800 MB: more than deflate can pack into it (ratio < 1032)
        "gzip-lies": (gzip.compress(idx_header(0x0E, (100_000_000,))), "gzip stream of"),
        # 2^32-1 squared float64s: beyond any real IDX data set
        "huge-dims": (idx_header(0x0E, (2**32 - 1, 2**32 - 1)), "larger than"),
        "zero-and-huge": (idx_header(0x08, (0, 2**32 - 1, 2**32 - 1)), "larger than"),
        "too-many-dims": (idx_header(0x08, (1,) * 40) + b"\x00", "dimensions"),
    }
    for name, (payload, pattern) in cases.items():
        path = tmp_path / f"{name}-idx3-ubyte"
        path.write_bytes(payload)
        assert_refused_cheaply(lambda path=path: data.read_idx(path), str(path), pattern)


def test_truncated_gzip_of_a_large_promise_reads_only_what_is_there(tmp_path):
    whole = gzip.compress(idx_file(np.zeros((4000, 28, 28), np.uint8)))
    path = tmp_path / "cut-idx3-ubyte.gz"
    path.write_bytes(whole[: len(whole) // 3])
    assert_refused_cheaply(lambda: data.read_idx(path), str(path), "gzip")


@functools.cache
def corpus() -> dict[str, bytes]:
    """Crafted hostile or broken files, generated (no binaries in the repository)."""
    good = idx_file(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    zipped = gzip.compress(good, mtime=0)
    return {
        "good": good,
        "good.gz": zipped,
        "empty": b"",
        "one byte": b"\x00",
        "gzip magic only": b"\x1f\x8b",
        "gzip header only": zipped[:10],
        "gzip without trailer": zipped[:-8],
        "gzip with bad crc": zipped[:-8] + b"\x00" * 8,
        "gzip then garbage": zipped + b"garbage",
        "gzip twice": zipped + zipped,  # two members: one stream of the data twice, trailing bytes
        "gzip in gzip": gzip.compress(zipped),
        "bomb 64 MiB": gzip_bomb(idx_header(0x08, (16,)), 64),
        "bomb behind dims of 0": gzip_bomb(idx_header(0x08, (0,)), 64),
        "header claims 255 dims": b"\x00\x00\x08\xff" + b"\x00\x00\x00\x01" * 10,
        "dims all zero": idx_header(0x0C, (0, 0, 0)),
        "dims of 2^32-1": idx_header(0x08, (2**32 - 1,)),
        "float64 of 2^31": idx_header(0x0E, (2**31,)),
        "nonzero magic": idx_header(0x08, (2,), zeros=b"\x00\x01") + b"\x00\x00",
        "every type code": bytes([0, 0, 0xFF, 1]) + b"\x00\x00\x00\x01\x00",
        "text": b"P5\n28 28\n255\n" + bytes(784),
        "png signature": b"\x89PNG\r\n\x1a\n" + bytes(32),
    }


@pytest.mark.parametrize("name", list(corpus()))
def test_corpus_replay_gives_an_array_or_one_allowed_error(tmp_path, name):
    path = tmp_path / "corpus-idx"
    path.write_bytes(corpus()[name])
    outcome, growth = peak_growth(lambda: data.read_idx(path))
    if name in ("good", "good.gz"):
        np.testing.assert_array_equal(outcome, np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    elif name == "dims all zero":
        assert isinstance(outcome, np.ndarray) and outcome.shape == (0, 0, 0), outcome
    else:
        assert isinstance(outcome, ValueError), f"{name}: {outcome!r}"
        assert "\n" not in str(outcome) and str(path) in str(outcome), str(outcome)
    if growth is not None:
        assert growth < MEMORY_BUDGET, f"{name}: peak memory grew by {growth / MiB:.0f} MiB"


# ------------------------------------------------------------------------ IDX fuzzer

SMALL_DIM = st.integers(0, 6)
HUGE_DIM = st.sampled_from([2**16, 2**31, 2**32 - 1])
HEADER_DEFECTS = ["zeros", "code", "ndim", "huge dim"]
BODY_DEFECTS = ["short", "long", "cut"]
GZIP_DEFECTS = ["truncate", "flip", "append"]


@st.composite
def idx_payloads(draw):
    """(file bytes, IDX bytes before gzip, judged?): a valid file, then at most one defect of each kind.

    Valid files are drawn as often as broken ones so that both answers are exercised.
    """
    code = draw(st.sampled_from(sorted(CODES)))
    dims = tuple(draw(st.lists(SMALL_DIM, min_size=1, max_size=4)))
    zeros, ndim = b"\x00\x00", len(dims)
    header_defect = draw(st.sampled_from([None] * 4 + HEADER_DEFECTS))
    if header_defect == "zeros":
        first = draw(st.integers(0, 255))
        zeros = bytes([first, draw(st.integers(0 if first else 1, 255))])
    elif header_defect == "code":
        code = draw(st.integers(0, 255).filter(lambda c: c not in CODES))
    elif header_defect == "ndim":
        ndim = draw(st.integers(0, 255).filter(lambda n: n != len(dims)))
    elif header_defect == "huge dim":
        dims = (*dims[:-1], draw(HUGE_DIM))
    header = zeros + bytes([code, ndim]) + struct.pack(f">{len(dims)}I", *dims)
    itemsize = np.dtype(CODES.get(code, "u1")).itemsize
    size = math.prod(dims) * itemsize
    body_size = min(size, 4096)
    body_defect = draw(st.sampled_from([None] * 3 + BODY_DEFECTS))
    if body_defect == "short":
        body_size = max(body_size - draw(st.integers(1, 9)), 0)
    elif body_defect == "long":
        body_size += draw(st.integers(1, 9))
    payload = header + draw(st.binary(min_size=body_size, max_size=body_size))
    if body_defect == "cut":
        payload = payload[: draw(st.integers(0, len(header) - 1))]
    raw = payload
    judged = True
    if draw(st.booleans()):
        payload = gzip.compress(payload, mtime=0)
        gzip_defect = draw(st.sampled_from([None] * 3 + GZIP_DEFECTS))
        if gzip_defect == "truncate":
            payload = payload[: draw(st.integers(0, len(payload) - 1))]
        elif gzip_defect == "flip":
            at = draw(st.integers(0, len(payload) - 1))
            payload = payload[:at] + bytes([payload[at] ^ draw(st.integers(1, 255))]) + payload[at + 1 :]
        elif gzip_defect == "append":
            payload += draw(st.binary(min_size=1, max_size=16))
        judged = gzip_defect is None  # a mangled stream may still decode to a valid file
    return payload, raw, judged


def expected_array(raw: bytes) -> np.ndarray | None:
    """The array an IDX file holds, or None if it is invalid: the format's definition, by struct."""
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] not in CODES or not 1 <= raw[3] <= idx.MAX_DIMS:
        return None
    ndim, dtype = raw[3], np.dtype(CODES[raw[2]])
    if len(raw) < 4 + 4 * ndim:
        return None
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    if math.prod(max(d, 1) for d in dims) * dtype.itemsize > idx.MAX_DATA_BYTES:
        return None
    if len(raw) != 4 + 4 * ndim + math.prod(dims) * dtype.itemsize:
        return None
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(dims)


@FUZZ
@given(idx_payloads())
def test_fuzz_read_idx(tmp_path_factory, case):
    payload, raw, judged = case
    expected = expected_array(raw)
    path = tmp_path_factory.getbasetemp() / "fuzz-idx3-ubyte"
    path.write_bytes(payload)
    outcome, growth = peak_growth(lambda: data.read_idx(path))
    event(
        f"{'invalid' if expected is None else 'valid'}{'' if judged else ' (mangled gzip)'}: "
        f"{'read' if isinstance(outcome, np.ndarray) else 'refused'}"
    )
    if isinstance(outcome, np.ndarray):
        if judged:
            assert expected is not None, f"accepted an invalid file: {raw[:16].hex(' ')}"
            assert outcome.dtype == expected.dtype.newbyteorder("=")
            np.testing.assert_array_equal(outcome, expected)
    else:
        assert isinstance(outcome, ValueError), repr(outcome)
        assert not judged or expected is None, f"refused a valid file: {outcome}"
        assert "\n" not in str(outcome) and str(path) in str(outcome), str(outcome)
    if growth is not None:
        assert growth < MEMORY_BUDGET, f"peak memory grew by {growth / MiB:.0f} MiB"


@FUZZ
@given(st.binary(max_size=512), st.booleans())
def test_fuzz_read_idx_random_bytes(tmp_path_factory, payload, zipped):
    path = tmp_path_factory.getbasetemp() / "random-idx"
    path.write_bytes(gzip.compress(payload) if zipped else payload)
    outcome, _ = peak_growth(lambda: data.read_idx(path))
    if not isinstance(outcome, np.ndarray):
        assert isinstance(outcome, ValueError) and "\n" not in str(outcome), repr(outcome)


# ------------------------------------------------------------------------ image fuzzer


@pytest.fixture(scope="module")
def images():
    """The image reader; skipped while convlens.images does not exist."""
    return pytest.importorskip("convlens.images")


def png_with_size(width: int, height: int) -> bytes:
    """A PNG made by Pillow whose IHDR then claims ``width x height`` (CRC recomputed)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buffer, format="PNG")
    raw = bytearray(buffer.getvalue())
    ihdr = raw.index(b"IHDR")
    raw[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    raw[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(raw[ihdr : ihdr + 17])))
    return bytes(raw)


def encoded(pixels: np.ndarray, fmt: str, mode: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


@st.composite
def image_payloads(draw):
    kind = draw(st.sampled_from(["random", "truncated", "huge", "valid"]))
    if kind == "random":
        prefix = draw(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM"]))
        return kind, prefix + draw(st.binary(max_size=256))
    if kind == "huge":
        side = draw(st.integers(10_000, 2**31 - 1))
        return kind, png_with_size(side, draw(st.integers(10_000, 2**31 - 1)))
    size = draw(st.tuples(st.integers(1, 40), st.integers(1, 40)))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8)
    payload = encoded(pixels, draw(st.sampled_from(["PNG", "JPEG"])), draw(st.sampled_from(["L", "RGB"])))
    if kind == "truncated":
        payload = payload[: draw(st.integers(0, len(payload) - 1))]
    return kind, payload


@FUZZ
@given(image_payloads())
def test_fuzz_read_gray(tmp_path_factory, images, case):
    kind, payload = case
    path = tmp_path_factory.getbasetemp() / "fuzz-image"
    path.write_bytes(payload)
    start = time.perf_counter()
    outcome, growth = peak_growth(lambda: images.read_gray(path))
    event(f"{kind}: {'refused' if isinstance(outcome, Exception) else 'read'}")
    assert time.perf_counter() - start < 5
    if isinstance(outcome, Exception):
        assert isinstance(outcome, ValueError), f"{kind}: {outcome!r}"
        assert "\n" not in str(outcome), str(outcome)
    else:
        assert kind != "huge", "an image over Pillow's pixel limit was decoded"
    if growth is not None:
        assert growth < MEMORY_BUDGET, f"{kind}: peak memory grew by {growth / MiB:.0f} MiB"


def test_image_over_pillows_limit_gets_one_line(tmp_path, images):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_size(50_000, 50_000))
    assert_refused_cheaply(lambda: images.read_gray(path), "bomb.png")

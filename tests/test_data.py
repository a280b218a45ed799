"""IDX reading, data set search and download, mnist-5k split, DataLoader and transforms."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import stat
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from convlens import data

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def random_array(rng: np.random.Generator, dtype, shape) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file built by hand from the format's definition (independent of write_idx)."""
    header = struct.pack(">BBBB", 0, 0, CODES[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


# ---------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("dtype", DTYPES)
def test_read_idx_round_trips_every_dtype_gz_and_raw(tmp_path, dtype):
    rng = np.random.default_rng(CODES[dtype])
    for case in range(8):
        shape = tuple(int(n) for n in rng.integers(1, 6, size=rng.integers(1, 5)))
        array = random_array(rng, dtype, shape)
        for name in (f"a{case}-idx", f"a{case}-idx.gz"):
            path = tmp_path / name
            raw = idx_bytes(array)
            path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
            got = data.read_idx(path)
            assert got.dtype == dtype and got.dtype.isnative and got.shape == shape
            np.testing.assert_array_equal(got, array)
            got[...] = 0  # writable
            data.write_idx(tmp_path / f"w-{name}", array)
            np.testing.assert_array_equal(data.read_idx(tmp_path / f"w-{name}"), array)
            assert (gzip.decompress if name.endswith(".gz") else bytes)(
                (tmp_path / f"w-{name}").read_bytes()
            ) == raw


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    (tmp_path / "raw.gz").write_bytes(idx_bytes(array))  # not gzip, but named .gz
    (tmp_path / "zipped.idx").write_bytes(gzip.compress(idx_bytes(array)))  # gzip without .gz
    np.testing.assert_array_equal(data.read_idx(tmp_path / "raw.gz"), array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "zipped.idx"), array)


def corrupt_cases() -> dict[str, tuple[bytes, str]]:
    good = idx_bytes(np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    zipped = gzip.compress(good)
    return {
        "empty": (b"", "is empty"),
        "short": (b"\x00\x00", "too short"),
        "bad magic": (b"\x01\x00" + good[2:], "not an IDX file"),
        "unknown dtype": (good[:2] + b"\x0a" + good[3:], "not an IDX file"),
        "text file": (b"hello, world\n", "not an IDX file"),
        "zero dims": (b"\x00\x00\x08\x00", "0 dimensions"),
        "truncated header": (good[:9], "truncated"),
        "truncated data": (good[:-1], "truncated"),
        "trailing bytes": (good + b"\x00\x00", "trailing bytes"),
        "dims too large": (good[:4] + struct.pack(">I", 3) + good[8:], "truncated"),
        "dims too small": (good[:4] + struct.pack(">I", 1) + good[8:], "trailing bytes"),
        "truncated gzip": (zipped[: len(zipped) // 2], "gzip"),
        "corrupt gzip": (zipped[:10] + b"\xff" * 20 + zipped[30:], "gzip"),
        "gzip of garbage": (gzip.compress(b"garbage!"), "not an IDX file"),
    }


@pytest.mark.parametrize("case", list(corrupt_cases()))
def test_read_idx_rejects_corrupt_files_naming_the_path(tmp_path, case):
    payload, expected = corrupt_cases()[case]
    path = tmp_path / "broken-idx3-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=expected) as info:
        data.read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "nope")


def test_write_idx_rejects_unsupported_dtypes(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        data.write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))


# ---------------------------------------------------------------------------- data sets


def make_dataset_dir(directory: Path, n_train: int = 12, n_test: int = 5, seed: int = 0, gz: bool = True):
    """Write a small fake MNIST-layout data set; return its arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        STEMS[0]: rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        STEMS[1]: rng.integers(0, 10, size=n_train).astype(np.uint8),
        STEMS[2]: rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        STEMS[3]: rng.integers(0, 10, size=n_test).astype(np.uint8),
    }
    for stem, array in arrays.items():
        data.write_idx(directory / (stem + (".gz" if gz else "")), array)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No system dirs, an empty cache under tmp_path."""
    monkeypatch.setattr(data, "SYSTEM_DIRS", [str(tmp_path / "system")])
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))
    return tmp_path


def test_load_dataset_search_order(isolated, monkeypatch):
    tmp = isolated
    make_dataset_dir(tmp / "system" / "mnist", n_train=7, seed=1)
    assert data.load_dataset("mnist").train.source == str(tmp / "system" / "mnist")
    make_dataset_dir(tmp / "cache" / "mnist", n_train=8, seed=2, gz=False)
    train, test = data.load_dataset("mnist")
    assert (len(train), len(test)) == (8, 5) and train.source == str(tmp / "cache" / "mnist")
    make_dataset_dir(tmp / "root", n_train=9, seed=3)  # files directly in root
    assert len(data.load_dataset("mnist", root=tmp / "root").train) == 9
    arrays = make_dataset_dir(tmp / "root" / "mnist", n_train=10, seed=4)  # root/<name> first
    train, test = data.load_dataset("MNIST", root=tmp / "root")
    assert len(train) == 10 and train.name == "mnist" and train.classes == tuple("0123456789")
    np.testing.assert_array_equal(train.images, arrays[STEMS[0]])
    np.testing.assert_array_equal(test.labels, arrays[STEMS[3]])
    assert train.labels.dtype == np.int64 and train.images.dtype == np.uint8
    only_test = data.load_dataset("mnist", root=tmp / "root", split="test")
    assert only_test.split == "test" and len(only_test) == 5
    monkeypatch.delenv("CONVLENS_DATA")
    monkeypatch.setenv("HOME", str(tmp / "home"))
    assert data.cache_dir() == tmp / "home" / ".cache" / "convlens"
    assert data.load_dataset("mnist").train.source == str(tmp / "system" / "mnist")


def test_load_dataset_not_found_message(isolated):
    (isolated / "root").mkdir()
    with pytest.raises(
        FileNotFoundError, match="fashion-mnist not found in: .*pass download=True or --download"
    ):
        data.load_dataset("fashion-mnist", root=isolated / "root")
    with pytest.raises(ValueError, match="unknown data set 'cifar10'"):
        data.load_dataset("cifar10")
    with pytest.raises(ValueError, match="split"):
        data.load_dataset("mnist-5k", split="validation")


def test_load_dataset_rejects_inconsistent_files(isolated):
    directory = isolated / "cache" / "mnist"
    make_dataset_dir(directory)
    data.write_idx(directory / (STEMS[1] + ".gz"), np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="labels"):
        data.load_dataset("mnist")
    (directory / (STEMS[0] + ".gz")).write_bytes(b"\x1f\x8bcorrupt")
    with pytest.raises(ValueError, match=STEMS[0]):
        data.load_dataset("mnist")


def test_best_available(isolated):
    assert data.best_available() == "mnist-5k"
    make_dataset_dir(isolated / "system" / "fashion-mnist")
    assert data.best_available() == "fashion-mnist"
    make_dataset_dir(isolated / "cache" / "mnist")
    assert data.best_available() == "mnist"


def test_debian_fashion_mnist():
    directory = Path("/usr/share/datasets/fashion-mnist")
    if not (directory / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    train, test = data.load_dataset("fashion-mnist")
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert (
        np.bincount(train.labels).tolist() == [6000] * 10 and np.bincount(test.labels).tolist() == [1000] * 10
    )
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    # the download checksums (of the decompressed content) were computed from these files
    for resource in data.RESOURCES["fashion-mnist"]:
        assert data._verify(directory / resource.filename, resource)


def test_mnist_5k_split_is_stratified_and_deterministic():
    train, test = data.load_dataset("mnist-5k")
    assert train.images.shape == (4000, 28, 28) and test.images.shape == (1000, 28, 28)
    assert (
        np.bincount(train.labels).tolist() == [400] * 10 and np.bincount(test.labels).tolist() == [100] * 10
    )
    again = data.load_dataset("mnist-5k")
    np.testing.assert_array_equal(again.train.images, train.images)
    np.testing.assert_array_equal(again.test.labels, test.labels)
    assert len(np.unique(train.labels[:50])) > 5  # shuffled, not sorted by label
    packaged = data.find_dataset("mnist-5k")
    all_images = data.read_idx(packaged / "images-idx3-ubyte.gz")
    together = np.concatenate([train.images, test.images]).reshape(5000, -1)
    assert sorted(map(bytes, together)) == sorted(map(bytes, all_images.reshape(5000, -1)))
    readme = (packaged / "README.md").read_text()
    for name in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"):
        digest = hashlib.sha256((packaged / name).read_bytes()).hexdigest()
        assert digest in readme


def test_stratified_split_random_labels():
    rng = np.random.default_rng(5)
    for seed in range(20):
        labels = rng.integers(0, rng.integers(1, 8), size=rng.integers(1, 200))
        train, test = data.stratified_split(labels, 0.25, seed)
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(labels)))
        counts = np.bincount(labels)
        assert (
            np.bincount(labels[test], minlength=len(counts)).tolist()
            == np.round(counts * 0.25).astype(int).tolist()
        )
        again = data.stratified_split(labels, 0.25, seed)
        np.testing.assert_array_equal(again[0], train)


# ---------------------------------------------------------------------------- download


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def publish(www: Path, name: str, checksum_of: str = "file"):
    """Write a fake data set into www/good and return matching resources."""
    arrays = make_dataset_dir(www / "good", n_train=6, n_test=4, seed=7)
    resources = []
    for stem in STEMS:
        path = www / "good" / f"{stem}.gz"
        content = gzip.decompress(path.read_bytes()) if checksum_of == "content" else path.read_bytes()
        resources.append(data._Resource(path.name, hashlib.sha256(content).hexdigest(), checksum_of))
    return arrays, tuple(resources)


@pytest.mark.parametrize(("name", "checksum_of"), [("mnist", "file"), ("fashion-mnist", "content")])
def test_download_from_local_mirror(isolated, http_server, monkeypatch, name, checksum_of):
    www, base = http_server
    arrays, resources = publish(www, name, checksum_of)
    monkeypatch.setitem(data.RESOURCES, name, resources)
    monkeypatch.setitem(data.MIRRORS, name, [f"{base}/missing/", f"{base}/good/"])  # first mirror 404s
    monkeypatch.setattr(data, "_DOWNLOAD_TIMEOUT", 5.0)
    with pytest.raises(FileNotFoundError):
        data.load_dataset(name)
    train, test = data.load_dataset(name, download=True)
    assert train.source == str(isolated / "cache" / name)
    np.testing.assert_array_equal(train.images, arrays[STEMS[0]])
    np.testing.assert_array_equal(test.labels, arrays[STEMS[3]])
    assert sorted(os.listdir(isolated / "cache" / name)) == sorted(f"{s}.gz" for s in STEMS)
    mask = os.umask(0)
    os.umask(mask)
    for stem in STEMS:  # readable like any file the user downloads, not private (mkstemp's 0600)
        assert stat.S_IMODE((isolated / "cache" / name / f"{stem}.gz").stat().st_mode) == 0o666 & ~mask
    # into root/<name> when root is given
    train, _ = data.load_dataset(name, root=isolated / "root", download=True)
    assert train.source == str(isolated / "cache" / name)  # found in the cache: no new download
    data.download_dataset(name, isolated / "root" / name)
    assert len(os.listdir(isolated / "root" / name)) == 4


def test_download_checksum_mismatch_leaves_nothing(isolated, http_server, monkeypatch):
    www, base = http_server
    _, resources = publish(www, "mnist")
    bad = (resources[0]._replace(sha256="0" * 64), *resources[1:])
    monkeypatch.setitem(data.RESOURCES, "mnist", bad)
    monkeypatch.setitem(data.MIRRORS, "mnist", [f"{base}/good/", f"{base}/missing/"])
    monkeypatch.setattr(data, "_DOWNLOAD_TIMEOUT", 5.0)
    with pytest.raises(data.DownloadError, match="SHA-256 mismatch") as info:
        data.load_dataset("mnist", download=True)
    message = str(info.value)
    assert "404" in message and "train-images-idx3-ubyte.gz" in message and "\n" not in message
    assert not (isolated / "cache" / "mnist").exists()  # no partial file, no empty folder
    assert not (isolated / "cache").exists()  # the cache folder was made for it, so it went too


def test_failed_download_keeps_folders_that_existed_and_verified_files(isolated, http_server, monkeypatch):
    www, base = http_server
    _, resources = publish(www, "mnist")
    bad = (*resources[:2], resources[2]._replace(sha256="0" * 64), resources[3])
    monkeypatch.setitem(data.RESOURCES, "mnist", bad)
    monkeypatch.setitem(data.MIRRORS, "mnist", [f"{base}/good/"])
    monkeypatch.setattr(data, "_DOWNLOAD_TIMEOUT", 5.0)
    existing = isolated / "mine"
    existing.mkdir()
    with pytest.raises(data.DownloadError, match="t10k-images"):
        data.download_dataset("mnist", existing / "deep" / "mnist")
    assert sorted(os.listdir(existing / "deep" / "mnist")) == sorted(f"{s}.gz" for s in STEMS[:2])
    (existing / "empty").mkdir()
    with pytest.raises(data.DownloadError):
        data.download_dataset("mnist", existing / "empty")
    assert (existing / "empty").is_dir()  # not created by the download: left alone


def test_missing_data_dir_is_an_error_not_a_fallback(isolated):
    make_dataset_dir(isolated / "system" / "mnist")  # would be found by falling back
    missing = isolated / "typo"
    for call in (
        lambda: data.load_dataset("mnist", root=missing),
        lambda: data.find_dataset("mnist", root=missing),
        lambda: data.best_available(root=missing),
    ):
        with pytest.raises(FileNotFoundError, match="does not exist") as info:
            call()
        assert str(missing) in str(info.value) and "\n" not in str(info.value)
    (isolated / "file").write_text("not a folder")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        data.load_dataset("mnist", root=isolated / "file")
    assert len(data.load_dataset("mnist-5k", root=missing).train) == 4000  # packaged: root unused


def test_download_unreachable_mirror(isolated, monkeypatch):
    monkeypatch.setitem(data.MIRRORS, "mnist", ["http://127.0.0.1:9/"])  # discard port: refused
    monkeypatch.setattr(data, "_DOWNLOAD_TIMEOUT", 2.0)
    with pytest.raises(data.DownloadError, match="could not fetch"):
        data.load_dataset("mnist", download=True)
    with pytest.raises(ValueError, match="never downloaded"):
        data.download_dataset("mnist-5k")


# ---------------------------------------------------------------------------- DataLoader


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(103, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=103)
    return data.Dataset(images, labels, tuple("0123456789"), "toy", "train", "memory")


def test_dataloader_batches_cover_the_data(small):
    for batch_size, drop_last in [
        (1, False),
        (10, False),
        (10, True),
        (103, False),
        (200, False),
        (200, True),
    ]:
        loader = data.DataLoader(small, batch_size, drop_last=drop_last)
        batches = list(loader)
        assert len(batches) == len(loader)
        expected = 103 // batch_size if drop_last else -(-103 // batch_size)
        assert len(loader) == expected
        if batches:
            x = np.concatenate([b[0] for b in batches])
            y = np.concatenate([b[1] for b in batches])
            assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape[1:] == (1, 28, 28)
            np.testing.assert_array_equal(x[:, 0], small.images[: len(x)] / np.float32(255))
            np.testing.assert_array_equal(y, small.labels[: len(y)])
            assert all(len(b[1]) == batch_size for b in batches[:-1])


def test_dataloader_shuffle_is_seeded_per_epoch(small):
    def epoch_labels(loader):
        return np.concatenate([y for _, y in loader])

    a, b = data.DataLoader(small, 16, shuffle=True, seed=5), data.DataLoader(small, 16, shuffle=True, seed=5)
    first, second = epoch_labels(a), epoch_labels(a)
    np.testing.assert_array_equal(first, epoch_labels(b))
    np.testing.assert_array_equal(second, epoch_labels(b))
    assert not np.array_equal(a.order(0), a.order(1))
    assert sorted(a.order(3).tolist()) == list(range(103))
    resumed = data.DataLoader(small, 16, shuffle=True, seed=5)
    resumed.set_epoch(1)
    np.testing.assert_array_equal(epoch_labels(resumed), second)
    x, y = next(iter(data.DataLoader(small, 7, shuffle=True, seed=9)))
    order = data.DataLoader(small, 7, shuffle=True, seed=9).order(0)[:7]
    np.testing.assert_array_equal(x[:, 0] * 255, small.images[order])
    np.testing.assert_array_equal(y, small.labels[order])
    assert not np.array_equal(data.DataLoader(small, 16, shuffle=True, seed=6).order(0), a.order(0))


def test_dataloader_accepts_arrays_and_validates(small):
    x, y = next(iter(data.DataLoader((small.images[:, None], small.labels), 4)))
    assert x.shape == (4, 1, 28, 28)
    floats = np.random.default_rng(0).standard_normal((5, 3, 4, 4))
    x, _ = next(iter(data.DataLoader((floats, np.zeros(5, dtype=np.int64)), 5)))
    np.testing.assert_array_equal(x, floats.astype(np.float32))
    for bad in (0, -3, 1.5, True, None):
        with pytest.raises(ValueError, match="batch_size"):
            data.DataLoader(small, bad)
    with pytest.raises(ValueError, match="labels"):
        data.DataLoader((small.images, small.labels[:5]), 4)
    with pytest.raises(TypeError, match="transform"):
        data.DataLoader(small, 4, transform=3)


def test_transforms(small):
    rng = np.random.default_rng(11)
    batch = rng.random((9, 2, 6, 7)).astype(np.float32)
    padded = data.Pad(2)(batch)
    assert padded.shape == (9, 2, 10, 11) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[:, :, 2:-2, 2:-2], batch)
    assert padded[:, :, :2].sum() == 0 and padded[..., -2:].sum() == 0
    normalized = data.Normalize([0.5, 0.25], [2.0, 4.0])(batch)
    np.testing.assert_allclose(normalized[:, 1], (batch[:, 1] - 0.25) / 4, rtol=1e-6)
    assert normalized.dtype == np.float32
    for m in range(4):
        shift = data.RandomShift(m, seed=m)
        shifted = shift(batch)
        dy, dx = (
            np.random.default_rng(m).integers(0, 2 * m + 1, size=(2, 9)) - m if m else (np.zeros(9, int),) * 2
        )
        for i in range(9):  # reference: move sample i by (-dy, -dx), zero fill
            expected = np.zeros_like(batch[i])
            src = batch[i][:, max(dy[i], 0) : 6 + min(dy[i], 0), max(dx[i], 0) : 7 + min(dx[i], 0)]
            expected[
                :,
                max(-dy[i], 0) : max(-dy[i], 0) + src.shape[1],
                max(-dx[i], 0) : max(-dx[i], 0) + src.shape[2],
            ] = src
            np.testing.assert_array_equal(shifted[i], expected)
    np.testing.assert_array_equal(data.RandomShift(2, seed=1)(batch), data.RandomShift(2, seed=1)(batch))
    pipeline = data.Compose([data.RandomShift(1, seed=0), data.Pad(2), data.Normalize(0.1307, 0.3081)])
    x, _ = next(iter(data.DataLoader(small, 8, transform=pipeline)))
    assert x.shape == (8, 1, 32, 32) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, :, 0, 0], -0.1307 / 0.3081, rtol=1e-6)
    with pytest.raises(ValueError, match="padding"):
        data.Pad(-1)
    with pytest.raises(ValueError, match="std"):
        data.Normalize(0.0, 0.0)
    with pytest.raises(ValueError, match="max_pixels"):
        data.RandomShift(-2)

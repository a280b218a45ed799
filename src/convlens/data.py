"""Data sets and batches: MNIST / Fashion-MNIST / mnist-5k / FSDD, transforms, a DataLoader.

The IDX files they are stored in are read by :mod:`convlens.idx` (``read_idx`` and
``write_idx`` are re-exported here).

Where a data set is looked for, in order (``load_dataset``):

1. ``root`` (``root/<name>`` then ``root`` itself), the ``--data-dir`` of the CLI;
2. the user cache ``$CONVLENS_DATA/<name>``, else ``~/.cache/convlens/<name>``;
3. system data dirs ``/usr/share/datasets/<name>`` (Debian's ``dataset-fashion-mnist``
   installs ``/usr/share/datasets/fashion-mnist``);
4. only when ``download=True``: the data set's public mirrors, each file checked
   against a hard-coded SHA-256 and written atomically into ``root/<name>`` (if
   ``root`` was given) or the user cache.

A data set directory holds the four IDX files of the original distribution,
gzipped or not: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.

``fsdd`` (spoken digits, :mod:`convlens.fsdd`) is a folder of WAV recordings instead,
checked against the SHA-256 list the package carries; its "images" are waveforms (N, L).

``mnist-5k`` (5,000 real MNIST digits, 500 a class) ships inside the package and
is always available; it is split 4,000 / 1,000 by a seeded stratified shuffle.

>>> import convlens as cl
>>> train, test = cl.data.load_dataset("mnist-5k")
>>> train.images.shape, test.images.shape
((4000, 28, 28), (1000, 28, 28))
>>> loader = cl.data.DataLoader(train, batch_size=64, shuffle=True, seed=0)
>>> images, labels = next(iter(loader))
>>> images.shape, images.dtype, labels.dtype
((64, 1, 28, 28), dtype('float32'), dtype('int64'))
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from . import fsdd
from .idx import read_idx, read_idx_stream, write_idx
from .io import open_temp_beside

__all__ = [
    "DATASETS",
    "MIRRORS",
    "RESOURCES",
    "SYSTEM_DIRS",
    "Compose",
    "DataLoader",
    "Dataset",
    "DownloadError",
    "Normalize",
    "Pad",
    "RandomShift",
    "Splits",
    "best_available",
    "cache_dir",
    "download_dataset",
    "find_dataset",
    "load_dataset",
    "read_idx",
    "search_dirs",
    "stratified_split",
    "write_idx",
]

# ------------------------------------------------------------------------ data sets


class _Resource(NamedTuple):
    """One file of a data set and the SHA-256 that a download must match.

    ``checksum_of`` is ``"file"`` (the bytes as served) or ``"content"`` (the
    decompressed IDX bytes, which survive re-compression).
    """

    filename: str
    sha256: str
    checksum_of: str = "file"


_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# MNIST: the SHA-256 of the published .gz files (the same four values are used by
# TensorFlow's cvdf mirror users, torch.rb, and many MNIST loaders).
# Fashion-MNIST: upstream publishes only MD5s of its .gz files, and Debian
# re-compressed them, so the check is on the decompressed IDX bytes, computed
# from Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1.
RESOURCES: dict[str, tuple[_Resource, ...]] = {
    "mnist": (
        _Resource(
            "train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        _Resource(
            "train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        _Resource(
            "t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        _Resource(
            "t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    ),
    "fashion-mnist": (
        _Resource(
            "train-images-idx3-ubyte.gz",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "content",
        ),
        _Resource(
            "train-labels-idx1-ubyte.gz",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "content",
        ),
        _Resource(
            "t10k-images-idx3-ubyte.gz",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "content",
        ),
        _Resource(
            "t10k-labels-idx1-ubyte.gz",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            "content",
        ),
    ),
}

# Base URLs tried in order; override (e.g. monkeypatch) to use a local mirror.
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}

SYSTEM_DIRS: list[str] = ["/usr/share/datasets"]

DATASETS: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(d) for d in range(10)),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "mnist-5k": tuple(str(d) for d in range(10)),
    "fsdd": fsdd.CLASSES,
}

_MNIST_5K_SEED = 0
_MNIST_5K_TEST_FRACTION = 0.2
_DOWNLOAD_LIMIT = 256 * 2**20  # bytes; the largest real file is 26 MB
_DOWNLOAD_TIMEOUT = 30.0  # seconds per connection attempt


class DownloadError(RuntimeError):
    """Every mirror failed (unreachable, or the file did not match its SHA-256)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one split.

    Attributes:
        images: uint8 ``(N, H, W)`` (or ``(N, C, H, W)``), or float32 waveforms ``(N, L)``.
        labels: int64 ``(N,)``, values in ``range(len(classes))``.
        classes: class names, ``classes[label]``.
        name: the data set, e.g. ``"mnist"``.
        split: ``"train"`` or ``"test"``.
        source: where it was read from.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str
    split: str
    source: str

    def __post_init__(self) -> None:
        if self.images.ndim not in (2, 3, 4):
            raise ValueError(
                f"Dataset: images must be (N, L), (N, H, W) or (N, C, H, W), got shape {self.images.shape}"
                f" from {self.source}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(
                f"Dataset: {len(self.images)} images but labels have shape {self.labels.shape}"
                f" in {self.source}"
            )
        if len(self.labels) and not 0 <= self.labels.min() <= self.labels.max() < len(self.classes):
            raise ValueError(
                f"Dataset: labels must lie in [0, {len(self.classes)}), found "
                f"[{self.labels.min()}, {self.labels.max()}] in {self.source}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, split={self.split!r}, images={self.images.shape} "
            f"{self.images.dtype}, classes={len(self.classes)}, source={self.source!r})"
        )


class Splits(NamedTuple):
    """The train and test sets of a data set: ``train, test = load_dataset(...)``."""

    train: Dataset
    test: Dataset


def cache_dir() -> Path:
    """The user cache: ``$CONVLENS_DATA`` if set, else ``~/.cache/convlens``."""
    return Path(os.environ.get("CONVLENS_DATA") or Path.home() / ".cache" / "convlens")


def search_dirs(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for data set ``name``, in order (see the module docstring).

    Raises:
        FileNotFoundError: ``root`` is given but is not an existing directory (a
            mistyped ``--data-dir`` must not silently fall back to other folders).
    """
    name = _canonical(name)
    dirs = [Path(root) / name, Path(root)] if _existing_root(root) is not None else []
    dirs.append(cache_dir() / name)
    dirs.extend(Path(system) / name for system in SYSTEM_DIRS)
    return dirs


def find_dataset(name: str, root: str | os.PathLike | None = None) -> Path | None:
    """The first directory holding all four files of ``name``, or None (never downloads)."""
    name = _canonical(name)
    if name == "mnist-5k":
        return Path(str(_packaged_mnist_5k()))
    if name == "fsdd":
        return fsdd.find_folder(search_dirs(name, root))
    return next((d for d in search_dirs(name, root) if _locate_files(d) is not None), None)


def best_available(root: str | os.PathLike | None = None) -> str:
    """The best data set present without downloading: mnist, then fashion-mnist, else mnist-5k."""
    return next((name for name in ("mnist", "fashion-mnist") if find_dataset(name, root)), "mnist-5k")


def load_dataset(
    name: str, root: str | os.PathLike | None = None, download: bool = False, split: str | None = None
) -> Splits | Dataset:
    """Load ``"mnist"``, ``"fashion-mnist"`` or ``"mnist-5k"``.

    Args:
        name: the data set. ``"mnist-5k"`` always comes from the package
            (``root`` and ``download`` are ignored).
        root: a directory searched first (``root/<name>``, then ``root``); it
            must exist, unless ``download=True``, which creates it.
        download: fetch from the public mirrors when not found locally
            (into ``root/<name>`` if ``root`` is given, else the user cache).
        split: ``None`` for ``Splits(train, test)``, or ``"train"`` / ``"test"``
            for one :class:`Dataset`.

    Raises:
        ValueError: unknown name or split, or a corrupt file.
        FileNotFoundError: not found and ``download=False``, or ``root`` does
            not exist and ``download=False``.
        DownloadError: ``download=True`` and every mirror failed.
    """
    name = _canonical(name)
    if split not in (None, "train", "test"):
        raise ValueError(f"load_dataset: split must be None, 'train' or 'test'. Received: split={split!r}")
    if name == "mnist-5k":
        train, test = _load_mnist_5k()
    elif name == "fsdd":
        train, test = _load_fsdd(root, download)
    else:
        # a missing root is an error, except that download=True creates it
        search_root = None if download and root is not None and not Path(root).exists() else root
        directory = find_dataset(name, search_root)
        if directory is None:
            if not download:
                searched = ", ".join(str(d) for d in search_dirs(name, root))
                raise FileNotFoundError(f"{name} not found in: {searched}; pass download=True or --download")
            directory = download_dataset(name, Path(root) / name if root is not None else None)
        files = _locate_files(directory)
        assert files is not None
        wanted = ("train", "test") if split is None else (split,)
        loaded = {s: _read_split(name, s, files) for s in wanted}
        if split is not None:
            return loaded[split]
        train, test = loaded["train"], loaded["test"]
    if split is not None:
        return train if split == "train" else test
    return Splits(train, test)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)``: each class contributes ``round(count * test_fraction)`` to test.

    Deterministic for a given ``seed``; both index arrays come shuffled.
    """
    labels = np.asarray(labels)
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"stratified_split: test_fraction must be in [0, 1]. Received: {test_fraction}")
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(labels)), labels))  # grouped by class, random within
    counts = np.bincount(labels)
    starts = np.cumsum(counts) - counts
    sorted_labels = labels[order]
    rank_in_class = np.arange(len(labels)) - starts[sorted_labels]
    is_test = rank_in_class < np.round(counts * test_fraction).astype(np.int64)[sorted_labels]
    train, test = order[~is_test], order[is_test]
    return train[rng.permutation(len(train))], test[rng.permutation(len(test))]


def download_dataset(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Download the four files of ``name`` into ``directory`` (default: the user cache).

    Mirrors (``MIRRORS[name]``) are tried in order for each file; a file is kept
    only if it matches its SHA-256 (``RESOURCES[name]``) and is moved into place
    atomically, so no partial or unverified file is ever left behind.
    """
    name = _canonical(name)
    if name not in RESOURCES:
        raise ValueError(f"download_dataset: {name} ships with convlens and is never downloaded")
    directory = Path(directory) if directory is not None else cache_dir() / name
    created = _make_dirs(directory)
    try:
        for resource in RESOURCES[name]:
            target = directory / resource.filename
            if not (target.exists() and _verify(target, resource)):
                _fetch_from_mirrors(name, resource, target)
    except BaseException:
        for folder in reversed(created):  # only the folders made here, and only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return directory


def _fetch_from_mirrors(name: str, resource: _Resource, target: Path) -> None:
    """Try each mirror in turn; DownloadError, in one line, if all fail."""
    import http.client  # lazy, as urllib in _urlopen

    failures = []
    for base in MIRRORS[name]:
        url = base.rstrip("/") + "/" + resource.filename
        try:
            _fetch(url, target, resource)
            return
        # URLError and HTTPError are OSErrors; a connection cut mid-body is an HTTPException
        except (OSError, ValueError, http.client.HTTPException) as error:
            failures.append(f"{url}: {' '.join(str(error).split())}")
    raise DownloadError(
        f"download_dataset: could not fetch {resource.filename} of {name} from any mirror "
        f"({'; '.join(failures) or 'no mirrors configured'})"
    )


def _make_dirs(directory: Path) -> list[Path]:
    """``mkdir -p directory``; the folders it created, outermost first."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()][::-1]
    directory.mkdir(parents=True, exist_ok=True)
    return missing


def _fetch(url: str, target: Path, resource: _Resource) -> None:
    """Download ``url`` to a temp file beside ``target``; verify; then rename into place."""
    descriptor, temp_name = open_temp_beside(target, ".part")
    temp = Path(temp_name)
    try:
        with (
            os.fdopen(descriptor, "wb") as out,
            _urlopen(url) as response,
        ):
            size = 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > _DOWNLOAD_LIMIT:
                    raise ValueError(f"larger than {_DOWNLOAD_LIMIT} bytes; refusing")
                out.write(chunk)
        if not _verify(temp, resource):
            raise ValueError(f"SHA-256 mismatch (expected {resource.sha256} of the {resource.checksum_of})")
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _verify(path: Path, resource: _Resource) -> bool:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as raw, gzip.open(raw) if resource.checksum_of == "content" else raw as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):  # a corrupt gzip stream is a mismatch
        return False
    return digest.hexdigest() == resource.sha256


def _existing_root(root: str | os.PathLike | None) -> Path | None:
    """``root`` as a Path, checked to be a directory; None if not given."""
    if root is None:
        return None
    path = Path(root)
    if not path.is_dir():
        problem = "is not a directory" if path.exists() else "does not exist"
        raise FileNotFoundError(
            f"load_dataset: the data directory {path} {problem}; fix the path, or pass "
            f"download=True (--download) to download into it. Received: root={os.fspath(root)!r}"
        )
    return path


def _canonical(name: str) -> str:
    key = str(name).lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "mnist5k": "mnist-5k"}.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"load_dataset: unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def _locate_files(directory: Path) -> dict[str, Path] | None:
    """Each IDX stem -> its file in ``directory`` (``.gz`` preferred), or None if any is missing."""
    found = {}
    for stem in (*_FILES["train"], *_FILES["test"]):
        path = next((p for p in (directory / f"{stem}.gz", directory / stem) if p.is_file()), None)
        if path is None:
            return None
        found[stem] = path
    return found


def _read_split(name: str, split: str, files: dict[str, Path]) -> Dataset:
    image_stem, label_stem = _FILES[split]
    images, labels = read_idx(files[image_stem]), read_idx(files[label_stem])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"load_dataset: {files[image_stem]} should hold uint8 images (N, H, W), "
            f"found {images.dtype} {images.shape}"
        )
    if labels.shape != (len(images),):
        raise ValueError(
            f"load_dataset: {files[label_stem]} has {labels.shape} labels for "
            f"{len(images)} images in {files[image_stem]}"
        )
    return Dataset(
        images, labels.astype(np.int64), DATASETS[name], name, split, str(files[image_stem].parent)
    )


def _load_fsdd(root: str | os.PathLike | None, download: bool) -> tuple[Dataset, Dataset]:
    search_root = None if download and root is not None and not Path(root).exists() else root
    folder = find_dataset("fsdd", search_root)
    if folder is None:
        if not download:
            searched = ", ".join(str(d) for d in search_dirs("fsdd", root))
            raise FileNotFoundError(f"fsdd not found in: {searched}; pass download=True or --download")
        directory = Path(root) / "fsdd" if root is not None else cache_dir() / "fsdd"
        try:
            folder = fsdd.download(directory, urlopen=_urlopen)
        except OSError as error:
            if isinstance(error, fsdd.MissingFilesError):
                raise
            raise DownloadError(f"download_dataset: could not fetch {fsdd.RELEASE_URL}: {error}") from None
    recordings = fsdd.read_folder(folder)
    return tuple(  # type: ignore[return-value]
        Dataset(part.waveforms, part.digits, fsdd.CLASSES, "fsdd", split, part.source)
        for part, split in zip(recordings.official_split(), ("train", "test"), strict=True)
    )


def _packaged_mnist_5k() -> Any:
    import importlib.resources  # lazy: not needed at import time

    return importlib.resources.files("convlens") / "datasets" / "mnist-5k"


def _load_mnist_5k() -> tuple[Dataset, Dataset]:
    folder = _packaged_mnist_5k()
    with (folder / "images-idx3-ubyte.gz").open("rb") as file:
        images = read_idx_stream(file, f"{folder}/images-idx3-ubyte.gz")
    with (folder / "labels-idx1-ubyte.gz").open("rb") as file:
        labels = read_idx_stream(file, f"{folder}/labels-idx1-ubyte.gz").astype(np.int64)
    train, test = stratified_split(labels, _MNIST_5K_TEST_FRACTION, _MNIST_5K_SEED)
    classes = DATASETS["mnist-5k"]
    return (
        Dataset(images[train], labels[train], classes, "mnist-5k", "train", str(folder)),
        Dataset(images[test], labels[test], classes, "mnist-5k", "test", str(folder)),
    )


# ------------------------------------------------------------------------ batches

Transform = Callable[[np.ndarray], np.ndarray]


class Normalize:
    """``(x - mean) / std`` on a float batch ``(B, C, H, W)``; per channel when sequences."""

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive. Received: std={std}")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return ((batch - self.mean) / self.std).astype(batch.dtype, copy=False)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


class Pad:
    """Pad height and width by ``padding`` pixels of ``value`` on every side (28 -> 32 for LeNet-5)."""

    def __init__(self, padding: int, value: float = 0.0):
        if not isinstance(padding, int | np.integer) or padding < 0:
            raise ValueError(f"Pad: padding must be a non-negative int. Received: padding={padding!r}")
        self.padding, self.value = int(padding), value

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        p = self.padding
        widths = [(0, 0)] * (batch.ndim - 2) + [(p, p), (p, p)]
        return np.pad(batch, widths, constant_values=self.value)

    def __repr__(self) -> str:
        return f"Pad({self.padding}, value={self.value})"


class RandomShift:
    """Shift each image by its own random ``(dy, dx)`` in ``[-max_pixels, max_pixels]``, filling with 0.

    Vectorised over the batch. Apply it before :class:`Normalize` (so the fill
    is the background, 0).
    """

    def __init__(self, max_pixels: int, seed: int | None = None):
        if not isinstance(max_pixels, int | np.integer) or max_pixels < 0:
            raise ValueError(f"RandomShift: max_pixels must be a non-negative int. Received: {max_pixels!r}")
        self.max_pixels = int(max_pixels)
        self.rng = np.random.default_rng(seed)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        m = self.max_pixels
        if m == 0:
            return batch
        height, width = batch.shape[-2:]
        padded = np.pad(batch, [(0, 0)] * (batch.ndim - 2) + [(m, m), (m, m)])
        windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(-2, -1))
        # windows: (B, C, 2m+1, 2m+1, H, W); choosing window (m, m) is no shift
        dy, dx = self.rng.integers(0, 2 * m + 1, size=(2, len(batch)))
        return windows[np.arange(len(batch)), ..., dy, dx, :, :]

    def __repr__(self) -> str:
        return f"RandomShift({self.max_pixels})"


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            batch = transform(batch)
        return batch

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


class DataLoader:
    """Iterate over ``(images, labels)`` batches of a data set.

    ``images`` is float32 ``(B, C, H, W)`` (waveforms: ``(B, 1, L)``): uint8 pixels divided by 255 (as
    torchvision's ``ToTensor``), then ``transform``; ``labels`` is int64 ``(B,)``.
    The float32 copy of the whole data set is made once, on first use; a batch
    is gathered with one fancy index, never a loop over samples.

    Shuffling: epoch ``e`` uses the permutation drawn from ``(seed, e)``, so a
    run is reproducible epoch by epoch and can be resumed with
    :meth:`set_epoch`. ``seed=None`` draws a fresh seed.

    Args:
        dataset: a :class:`Dataset`, or a pair ``(images, labels)`` of arrays.
        batch_size: samples a batch (positive int).
        shuffle: a new order every epoch.
        seed: seed of the shuffling.
        drop_last: drop a last batch smaller than ``batch_size``.
        transform: a callable on the float batch, e.g. ``Compose([Pad(2), Normalize(0.1307, 0.3081)])``.
    """

    def __init__(
        self,
        dataset: Dataset | tuple[np.ndarray, np.ndarray],
        batch_size: int,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        transform: Transform | None = None,
    ):
        images, labels = (dataset.images, dataset.labels) if hasattr(dataset, "images") else dataset
        images, labels = np.asarray(images), np.asarray(labels)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size <= 0:
            raise ValueError(
                f"DataLoader: batch_size must be a positive int. Received: batch_size={batch_size!r}"
            )
        if images.ndim not in (2, 3, 4):
            raise ValueError(
                f"DataLoader: images must be (N, L), (N, H, W) or (N, C, H, W), got {images.shape}"
            )
        if labels.ndim == 0 or len(labels) != len(images):
            raise ValueError(f"DataLoader: {len(images)} images but labels have shape {labels.shape}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got {type(transform).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.epoch = 0
        self._images = images
        self._labels = labels.astype(np.int64, copy=False)
        self._inputs: np.ndarray | None = None

    def __len__(self) -> int:
        n = len(self._labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the order of ``epoch`` (to resume a run)."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of ``epoch``."""
        n = len(self._labels)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch]).permutation(n)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        inputs = self._float_inputs()
        order = self.order(self.epoch)
        self.epoch += 1
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            batch = inputs[index]
            if self.transform is not None:
                batch = self.transform(batch)
            yield batch, self._labels[index]

    def _float_inputs(self) -> np.ndarray:
        if self._inputs is None:
            images = self._images if self._images.ndim == 4 else self._images[:, None]
            if images.dtype == np.uint8:
                self._inputs = images.astype(np.float32) / np.float32(255)
            else:
                self._inputs = images.astype(np.float32)
        return self._inputs

    def __repr__(self) -> str:
        return (
            f"DataLoader(samples={len(self._labels)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, transform={self.transform!r})"
        )


def _urlopen(url: str) -> Any:
    import urllib.request  # lazy: http, ssl and email cost start-up time, for a rare download

    return urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT)

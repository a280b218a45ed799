"""The Free Spoken Digit Dataset (FSDD): 3,000 recordings of the digits 0-9 spoken in English.

Six speakers (george, jackson, lucas, nicolas, theo, yweweler) x 10 digits x 50
recordings, 8 kHz mono 16-bit PCM WAV, named ``recordings/{digit}_{speaker}_{index}.wav``;
licence CC BY-SA 4.0, release v1.0.10 of the public repository
Jakobovski/free-spoken-digit-dataset. convlens does not ship the recordings, only the
SHA-256 of every file (``datasets/fsdd/SHA256SUMS`` in the package).

- **Official split**: recordings 0-4 of every (digit, speaker) are the test set
  (300), 5-49 the training set (2,700).
- **Speaker-held-out folds**: :func:`speaker_folds` trains on five speakers and tests
  on the sixth.
- **Fixed length**: the recordings last 0.14-2.3 s (median 0.42 s); each is centred in
  ``LENGTH = 6144`` samples (0.77 s): zero-padded on both sides, or its middle kept
  (about 2% of them are longer), then scaled to a peak of 1 (:mod:`convlens.audio`).

Use it through ``cl.data.load_dataset("fsdd", root=...)``: a folder holding
``recordings/`` (or the WAV files themselves), or ``download=True``, which fetches
the tagged release archive (``RELEASE_URL``) and keeps each recording only if its
SHA-256 matches.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from .audio import fix_length, normalize_peak, read_wav
from .io import open_temp_beside

__all__ = [
    "CLASSES",
    "LENGTH",
    "RELEASE_URL",
    "SPEAKERS",
    "ChecksumError",
    "MissingFilesError",
    "Recordings",
    "checksums",
    "download",
    "find_folder",
    "read_folder",
    "speaker_folds",
]

CLASSES = tuple(str(d) for d in range(10))
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
LENGTH = 6144
TEST_INDICES = range(5)  # the official split: recordings 0-4 of each (digit, speaker)
RELEASE_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
_ARCHIVE_LIMIT = 128 * 2**20  # bytes; the release archive is about 20 MB
_NAME = re.compile(r"(\d)_([a-z]+)_(\d+)\.wav")


class MissingFilesError(FileNotFoundError):
    """A data folder lacks recordings listed in the SHA-256 list."""


class ChecksumError(ValueError):
    """A recording does not match its SHA-256."""


@dataclass(frozen=True, eq=False)
class Recordings:
    """Fixed-length waveforms with their digit, speaker and index (the number in the file name)."""

    waveforms: np.ndarray  # float32 (N, length)
    digits: np.ndarray  # int64 (N,)
    speakers: np.ndarray  # str (N,)
    indices: np.ndarray  # int64 (N,)
    source: str

    def __len__(self) -> int:
        return len(self.digits)

    def subset(self, keep: np.ndarray) -> Recordings:
        return Recordings(
            self.waveforms[keep], self.digits[keep], self.speakers[keep], self.indices[keep], self.source
        )

    def official_split(self) -> tuple[Recordings, Recordings]:
        """(train, test): recordings 5-49 of each digit and speaker, and 0-4."""
        test = np.isin(self.indices, TEST_INDICES)
        return self.subset(~test), self.subset(test)


def checksums() -> dict[str, str]:
    """``"recordings/0_george_0.wav" -> sha256`` for all 3,000 files, from the package."""
    import importlib.resources  # lazy: not needed at import time

    text = (importlib.resources.files("convlens") / "datasets" / "fsdd" / "SHA256SUMS").read_text()
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {name.strip(): digest for digest, name in pairs}


def find_folder(candidates: Sequence[Path]) -> Path | None:
    """The first candidate holding ``recordings/*.wav`` (or the WAV files directly), or None."""
    for folder in candidates:
        for recordings in (folder / "recordings", folder):
            if recordings.is_dir() and next(recordings.glob("[0-9]_*_*.wav"), None) is not None:
                return recordings
    return None


def read_folder(recordings: Path, length: int = LENGTH, verify: bool = True) -> Recordings:
    """Read every recording of the SHA-256 list from the folder ``recordings``.

    Raises:
        MissingFilesError: files of the list are absent (names the first and counts them).
        ChecksumError: ``verify`` and a file does not match its SHA-256.
        audio.WavError: a file is not 8 kHz mono 16-bit PCM, or is empty or truncated.
    """
    expected = checksums()
    names = sorted(Path(name).name for name in expected)
    missing = [name for name in names if not (recordings / name).is_file()]
    if missing:
        raise MissingFilesError(
            f"load_dataset: {len(missing)} of the {len(names)} FSDD recordings are missing from "
            f"{recordings}, the first is {missing[0]}; pass download=True (--download) to fetch them"
        )
    waveforms, digits, speakers, indices = [], [], [], []
    for name in names:
        raw = (recordings / name).read_bytes()
        if verify and hashlib.sha256(raw).hexdigest() != expected[f"recordings/{name}"]:
            raise ChecksumError(
                f"load_dataset: {recordings / name} does not match its SHA-256 "
                f"(expected {expected[f'recordings/{name}']}); delete it and download again"
            )
        match = _NAME.fullmatch(name)
        assert match is not None, name  # the names come from the packaged list
        waveforms.append(fix_length(read_wav(_named(raw, recordings / name)), length))
        digits.append(int(match[1]))
        speakers.append(match[2])
        indices.append(int(match[3]))
    return Recordings(
        normalize_peak(np.stack(waveforms)),
        np.array(digits, np.int64),
        np.array(speakers),
        np.array(indices, np.int64),
        str(recordings),
    )


def speaker_folds(recordings: Recordings) -> list[tuple[str, Recordings, Recordings]]:
    """``(speaker, train, test)`` for each speaker: train on the other five, test on all 500 of theirs."""
    return [
        (s, recordings.subset(recordings.speakers != s), recordings.subset(recordings.speakers == s))
        for s in SPEAKERS
    ]


def download(directory: Path, url: str | None = None, urlopen: Callable[[str], Any] | None = None) -> Path:
    """Fetch the release archive from ``url`` (default ``RELEASE_URL``); write each recording
    that matches its SHA-256 into ``directory/recordings``, atomically. Returns that folder.

    Raises:
        ChecksumError: a recording of the archive does not match its SHA-256.
        MissingFilesError: the archive lacks recordings of the list.
        OSError: the archive could not be fetched.
    """
    expected = checksums()
    url = url or RELEASE_URL
    archive = _fetch_archive(url, urlopen)
    target = directory / "recordings"
    target.mkdir(parents=True, exist_ok=True)
    found = set()
    with tarfile.open(fileobj=archive, mode="r:*") as tar:
        for member in tar:
            key = _release_key(member.name)
            if key not in expected or not member.isfile():
                continue
            stream = tar.extractfile(member)
            assert stream is not None
            data = stream.read()
            if hashlib.sha256(data).hexdigest() != expected[key]:
                raise ChecksumError(
                    f"download: {key} of {url} does not match its SHA-256 (expected {expected[key]})"
                )
            _write_atomically(target / Path(key).name, data)
            found.add(key)
    missing = sorted(set(expected) - found)
    if missing:
        raise MissingFilesError(
            f"download: {len(missing)} of the {len(expected)} FSDD recordings are missing from "
            f"{url}, the first is {missing[0]}"
        )
    return target


def _release_key(member: str) -> str:
    """``free-spoken-digit-dataset-1.0.10/recordings/x.wav`` -> ``recordings/x.wav``."""
    parts = member.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else member


def _fetch_archive(url: str, urlopen: Callable[[str], Any] | None) -> IO[bytes]:
    if urlopen is None:
        import urllib.request  # lazy: a rare download

        def urlopen(address: str) -> Any:
            return urllib.request.urlopen(address, timeout=30.0)

    buffer = io.BytesIO()
    with urlopen(url) as response:
        while chunk := response.read(1 << 20):
            if buffer.tell() + len(chunk) > _ARCHIVE_LIMIT:
                raise ValueError(f"download: {url} is larger than {_ARCHIVE_LIMIT} bytes; refusing")
            buffer.write(chunk)
    buffer.seek(0)
    return buffer


def _write_atomically(path: Path, data: bytes) -> None:
    descriptor, temp = open_temp_beside(path, ".part")
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _named(raw: bytes, path: Path) -> IO[bytes]:
    """``raw`` as a stream that error messages name by ``path``."""
    stream = io.BytesIO(raw)
    stream.name = str(path)  # type: ignore[attr-defined]
    return stream

"""The Free Spoken Digit Dataset: the packaged SHA-256 list, reading a folder, the official
split, the errors for missing and corrupt files, and the download (from a local server)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from test_audio import wav_bytes

from convlens import data, fsdd

REAL = os.environ.get("CONVLENS_FSDD")
needs_real = pytest.mark.skipif(not REAL, reason="CONVLENS_FSDD (a folder with the real FSDD) is not set")


def fake_recordings(folder: Path, count: int = 12) -> dict[str, str]:
    """A few short WAVs named as FSDD's (digit, speaker, index), and their SHA-256 list."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sums = {}
    for i in range(count):
        name = f"{i % 10}_{fsdd.SPEAKERS[i % 6]}_{i % 7}.wav"
        content = wav_bytes(rng.integers(-3000, 3000, 200 + 37 * i))
        (folder / name).write_bytes(content)
        sums[f"recordings/{name}"] = hashlib.sha256(content).hexdigest()
    return sums


@pytest.fixture
def fake(tmp_path, monkeypatch):
    sums = fake_recordings(tmp_path / "fsdd" / "recordings")
    monkeypatch.setattr(fsdd, "checksums", lambda: sums)
    monkeypatch.setattr(data, "SYSTEM_DIRS", [str(tmp_path / "system")])
    monkeypatch.setenv("CONVLENS_DATA", str(tmp_path / "cache"))
    return tmp_path, sums


def test_packaged_list_has_every_recording_once():
    sums = fsdd.checksums()
    assert len(sums) == 3000 and len(set(sums.values())) == 3000
    names = {Path(k).name for k in sums}
    assert {f"{d}_{s}_{i}.wav" for d in range(10) for s in fsdd.SPEAKERS for i in range(50)} == names


def test_load_dataset_reads_the_folder_with_the_official_split(fake):
    tmp, sums = fake
    train, test = data.load_dataset("fsdd", root=tmp)
    assert train.images.shape[1:] == (fsdd.LENGTH,) and train.images.dtype == np.float32
    assert len(train) + len(test) == len(sums)
    indices = [int(Path(k).stem.split("_")[2]) for k in sorted(sums)]
    assert len(test) == sum(i < 5 for i in indices)
    assert np.abs(train.images).max(axis=1) == pytest.approx(1.0)  # peak-normalised
    loader = data.DataLoader(test, batch_size=4)
    assert next(iter(loader))[0].shape == (4, 1, fsdd.LENGTH)


def test_missing_files_name_the_first_and_count_them(fake):
    tmp, sums = fake
    names = sorted(Path(k).name for k in sums)
    for name in names[3:6]:
        (tmp / "fsdd" / "recordings" / name).unlink()
    with pytest.raises(fsdd.MissingFilesError, match=f"3 of the 12 .* the first is {names[3]}"):
        data.load_dataset("fsdd", root=tmp)


def test_checksum_mismatch_names_the_file(fake):
    tmp, sums = fake
    victim = tmp / "fsdd" / "recordings" / Path(sorted(sums)[2]).name
    victim.write_bytes(victim.read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(fsdd.ChecksumError, match=f"{victim.name} does not match its SHA-256"):
        data.load_dataset("fsdd", root=tmp)


def test_not_found_says_how_to_get_it(fake):
    tmp, _ = fake
    (tmp / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="download=True or --download"):
        data.load_dataset("fsdd", root=tmp / "empty")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def release_archive(source: Path, target: Path, corrupt: str | None = None) -> None:
    """A .tar.gz laid out as GitHub's tag archive: one top folder, recordings/ inside."""
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            content = path.read_bytes()
            if path.name == corrupt:
                content = content[:-1] + bytes([content[-1] ^ 1])
            info = tarfile.TarInfo(f"free-spoken-digit-dataset-1.0.10/recordings/{path.name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        readme = b"not a recording"
        info = tarfile.TarInfo("free-spoken-digit-dataset-1.0.10/README.md")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))


def test_download_from_a_local_server_checks_every_file(fake, server, monkeypatch):
    tmp, sums = fake
    www, base = server
    release_archive(tmp / "fsdd" / "recordings", www / "v1.0.10.tar.gz")
    monkeypatch.setattr(fsdd, "RELEASE_URL", f"{base}/v1.0.10.tar.gz")
    train, test = data.load_dataset("fsdd", root=tmp / "new", download=True)
    assert len(train) + len(test) == len(sums)
    written = sorted(p.name for p in (tmp / "new" / "fsdd" / "recordings").iterdir())
    assert written == sorted(Path(k).name for k in sums)  # no README, no temporary files


def test_download_refuses_a_corrupt_archive(fake, server, monkeypatch):
    tmp, sums = fake
    www, base = server
    victim = Path(sorted(sums)[4]).name
    release_archive(tmp / "fsdd" / "recordings", www / "bad.tar.gz", corrupt=victim)
    monkeypatch.setattr(fsdd, "RELEASE_URL", f"{base}/bad.tar.gz")
    with pytest.raises(fsdd.ChecksumError, match=f"{victim} of .* does not match its SHA-256"):
        data.load_dataset("fsdd", root=tmp / "new", download=True)
    assert not (tmp / "new" / "fsdd" / "recordings" / victim).exists()


def test_download_unreachable_is_a_download_error(fake, monkeypatch):
    tmp, _ = fake
    monkeypatch.setattr(fsdd, "RELEASE_URL", "http://127.0.0.1:9/none.tar.gz")
    with pytest.raises(data.DownloadError, match="could not fetch"):
        data.load_dataset("fsdd", root=tmp / "new", download=True)


@needs_real
def test_real_copy_matches_the_packaged_list_and_split():
    recordings = fsdd.read_folder(fsdd.find_folder([Path(REAL)]))
    train, test = recordings.official_split()
    assert (len(train), len(test)) == (2700, 300)
    assert np.bincount(test.digits).tolist() == [30] * 10
    assert set(np.unique(test.indices)) == set(range(5))
    folds = fsdd.speaker_folds(recordings)
    assert [(s, len(a), len(b)) for s, a, b in folds] == [(s, 2500, 500) for s in fsdd.SPEAKERS]

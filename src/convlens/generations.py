"""Checkpoint generations: every save is a new directory, made current by one atomic step.

A checkpoint that is saved again and again (a training run) lives in a *store*
next to its name: the checkpoint ``runs/fm/checkpoint`` has the store
``runs/fm/checkpoint.d/``::

    runs/fm/checkpoint.d/
        CURRENT                  "gen-000012": the generation to read
        gen-000011/              the previous good one, kept until the next save is complete
        gen-000012/
            checkpoint.safetensors
            checkpoint.optim.safetensors
            checkpoint.json
            SHA256SUMS           the SHA-256 of every file above (``sha256sum -c`` reads it)

Writing a generation (:func:`write`):

1. every file goes into a fresh hidden directory ``.gen-000013.partial``, each
   one flushed and ``fsync``-ed, then ``SHA256SUMS``, then the directory itself;
2. the directory is renamed to ``gen-000013`` (atomic; the store is synced);
3. ``CURRENT`` is replaced in one ``os.replace`` of a synced temporary file:
   this is the moment the new checkpoint exists;
4. generations beyond the newest ``keep`` (default 2) are renamed away and deleted.

A stop at any moment (Ctrl-C, SIGTERM, SIGKILL, power loss) therefore leaves
``CURRENT`` naming a complete generation, the old one or the new one, never a
mixture. Reading (:func:`choose`) checks the current generation against its
``SHA256SUMS`` and, if it is incomplete or corrupt, falls back to the newest
older generation that is complete, with a :class:`GenerationWarning` saying so.

The store knows nothing about what the files mean: :mod:`convlens.io` decides
which files a checkpoint has and what is in them.

>>> import tempfile, pathlib
>>> store = pathlib.Path(tempfile.mkdtemp()) / "ckpt.d"
>>> first = write(store, {"a.txt": b"one"})
>>> second = write(store, {"a.txt": b"two"})
>>> choose(store).name, (choose(store) / "a.txt").read_bytes()
('gen-000002', b'two')
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "KEEP",
    "MANIFEST",
    "POINTER",
    "GenerationWarning",
    "NoCompleteGenerationError",
    "choose",
    "current",
    "generations",
    "link_atomically",
    "problem",
    "store_for",
    "write",
    "write_file_synced",
]

KEEP = 2  # the new generation and the one before it
POINTER = "CURRENT"
MANIFEST = "SHA256SUMS"
STORE_SUFFIX = ".d"
# A generation file larger than this is not hashed: no checkpoint of a model the schema
# accepts comes near it, and hashing a planted multi-GB file would stall every load.
MAX_FILE_BYTES = 2**31
_NAME = re.compile(r"gen-(\d{6,})")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CHUNK = 1 << 20


class GenerationWarning(UserWarning):
    """The current generation was unusable and an older complete one was read instead."""


class NoCompleteGenerationError(ValueError):
    """A store holds no complete generation (every one is missing files or fails its checksums)."""


def store_for(base: str | os.PathLike) -> Path:
    """The store of the checkpoint named ``base`` (no suffix): ``run/checkpoint`` -> ``run/checkpoint.d``."""
    base = Path(base)
    return base.with_name(base.name + STORE_SUFFIX)


# ------------------------------------------------------------------------------- writing
def write(store: str | os.PathLike, files: Mapping[str, bytes], *, keep: int = KEEP) -> Path:
    """Write ``files`` (name -> bytes) as a new generation of ``store`` and make it current.

    Returns the new generation's directory. Generations beyond the newest ``keep``
    (and leftovers of interrupted writes) are deleted after the new one is current.
    """
    if keep < 1:
        raise ValueError(f"generations.write: keep must be >= 1. Received: keep={keep}")
    for name in files:
        if not _FILE_NAME.fullmatch(name) or name in (MANIFEST, POINTER):
            raise ValueError(f"generations.write: not a plain file name. Received: name={name!r}")
    store = Path(store)
    _make_store(store)
    _drop_uncommitted(store)
    name = f"gen-{_next_number(store):06d}"
    partial = store / f".{name}.partial"
    _remove(partial)  # a leftover of a writer killed at this very number
    partial.mkdir()
    try:
        sums = []
        for filename, payload in files.items():
            write_file_synced(partial / filename, payload)
            sums.append(f"{hashlib.sha256(payload).hexdigest()}  {filename}\n")
        write_file_synced(partial / MANIFEST, "".join(sums).encode())
        _fsync_directory(partial)
        os.rename(partial, store / name)
    except BaseException:
        _remove(partial)  # also on KeyboardInterrupt: the old generation stays current
        raise
    _fsync_directory(store)
    _point(store, name)
    _prune(store, keep)
    return store / name


def write_file_synced(path: Path, payload: bytes) -> None:
    """Create ``path`` with ``payload``, flushed and fsynced (mode 0644 less the umask)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    with os.fdopen(descriptor, "wb") as out:
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())


def link_atomically(source: Path, target: Path) -> None:
    """Make ``target`` the file ``source`` (a hard link, else a copy), replacing it in one step.

    Used to keep ``run/checkpoint.safetensors`` as the current weights for other
    tools; convlens itself always reads the store.
    """
    temp = target.with_name(f".{target.name}.{os.getpid()}.link")
    _remove(temp)
    try:
        try:
            os.link(source, temp)
        except OSError:  # a file system without hard links
            shutil.copyfile(source, temp)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(temp, target)
    finally:
        _remove(temp)
    _fsync_directory(target.parent)


def _make_store(store: Path) -> None:
    if store.is_dir():
        return
    store.mkdir(parents=True, exist_ok=True)
    _fsync_directory(store.parent)


def _drop_uncommitted(store: Path) -> None:
    """Delete generations newer than ``CURRENT``: a writer stopped before committing them."""
    pointed = current(store)
    if pointed is None:
        return
    for generation in generations(store):
        if _number(generation) > _number(pointed):
            _discard(store, generation)


def _next_number(store: Path) -> int:
    """One more than any generation number seen, complete, partial or pointed at."""
    numbers = [0]
    for entry in store.iterdir():
        found = _NAME.search(entry.name)
        if found:
            numbers.append(int(found.group(1)))
    pointed = current(store)
    if pointed is not None:
        numbers.append(_number(pointed))
    return max(numbers) + 1


def _point(store: Path, name: str) -> None:
    """Replace ``CURRENT`` with ``name`` in one atomic step."""
    temp = store / f".{POINTER}.{os.getpid()}.tmp"
    _remove(temp)
    try:
        write_file_synced(temp, f"{name}\n".encode())
        os.replace(temp, store / POINTER)
    finally:
        _remove(temp)
    _fsync_directory(store)


def _prune(store: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` generations (never the current one) and leftovers."""
    pointed = current(store)
    kept = {path.name for path in generations(store)[-keep:]}
    if pointed is not None:
        kept.add(pointed.name)
    for entry in store.iterdir():
        if entry.name == POINTER or entry.name in kept:
            continue
        if _NAME.fullmatch(entry.name):
            _discard(store, entry)
        elif entry.name.startswith((".gen-", ".trash-", f".{POINTER}.")):
            _remove(entry)


def _discard(store: Path, generation: Path) -> None:
    """Delete a generation; renamed first, so a stop in the middle of the deletion leaves
    no half-deleted directory that looks like a generation."""
    trash = store / f".trash-{generation.name}-{os.getpid()}"
    with contextlib.suppress(OSError):
        os.rename(generation, trash)
        _remove(trash)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _fsync_directory(path: Path) -> None:
    """Make a directory's entries (new files, renames) durable; a no-op where unsupported."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # Windows cannot open a directory
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# ------------------------------------------------------------------------------- reading
def generations(store: str | os.PathLike) -> list[Path]:
    """The store's generation directories, oldest first (complete or not)."""
    store = Path(store)
    if not store.is_dir():
        return []
    found = [entry for entry in store.iterdir() if _NAME.fullmatch(entry.name) and entry.is_dir()]
    return sorted(found, key=_number)


def current(store: str | os.PathLike) -> Path | None:
    """The generation ``CURRENT`` names (not checked), or None without a readable pointer."""
    pointer = Path(store) / POINTER
    try:
        text = pointer.read_bytes()[:64].decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Path(store) / text if _NAME.fullmatch(text) else None


def problem(generation: str | os.PathLike) -> str | None:
    """Why ``generation`` cannot be read (missing, incomplete, corrupt), or None if it is complete.

    Complete means: ``SHA256SUMS`` lists plain file names, and each listed file
    exists, is at most ``MAX_FILE_BYTES`` long and has the listed SHA-256.
    """
    generation = Path(generation)
    if not generation.is_dir():
        return f"{generation} does not exist"
    try:
        manifest = (generation / MANIFEST).read_bytes()[: 1 << 16].decode("ascii")
    except FileNotFoundError:
        return f"{generation} is incomplete (no {MANIFEST})"
    except (OSError, UnicodeDecodeError) as error:
        return f"{generation / MANIFEST} is unreadable ({error})"
    entries = [line.split("  ", 1) for line in manifest.splitlines() if line.strip()]
    if not entries or any(len(e) != 2 or not _FILE_NAME.fullmatch(e[1]) for e in entries):
        return f"{generation / MANIFEST} is malformed"
    for digest, name in entries:
        reason = _file_problem(generation / name, digest)
        if reason:
            return reason
    return None


def _file_problem(path: Path, digest: str) -> str | None:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return f"{path} is {size:,} bytes, more than a checkpoint file may be ({MAX_FILE_BYTES:,})"
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
    except FileNotFoundError:
        return f"{path} is missing"
    except OSError as error:
        return f"{path} is unreadable ({error})"
    if hasher.hexdigest() != digest.lower():
        return f"{path} does not match its SHA-256 in {MANIFEST} (corrupt or truncated)"
    return None


def choose(store: str | os.PathLike) -> Path:
    """The generation to read: the current one if complete, else the newest complete older one.

    Falling back emits a :class:`GenerationWarning` naming what was wrong.

    Raises:
        FileNotFoundError: ``store`` is not a directory.
        NoCompleteGenerationError: no generation is complete.
    """
    store = Path(store)
    if not store.is_dir():
        raise FileNotFoundError(f"checkpoint store {store} not found")
    pointed = current(store)
    if pointed is not None:
        reason = problem(pointed)
        if reason is None:
            return pointed
    else:
        reason = f"{store / POINTER} is missing or unreadable"
    newest_first = reversed(generations(store))
    older = [g for g in newest_first if pointed is None or _number(g) < _number(pointed)]
    for candidate in older:
        if problem(candidate) is None:
            warnings.warn(
                f"{reason}; reading the previous complete checkpoint {candidate.name} instead",
                GenerationWarning,
                stacklevel=2,
            )
            return candidate
    raise NoCompleteGenerationError(f"no complete checkpoint in {store}: {reason}")


def _number(generation: Path) -> int:
    found = _NAME.fullmatch(generation.name)
    return int(found.group(1)) if found else -1

"""What a user sees outside the numbers: the REPL display of a summary, and file permissions."""

from __future__ import annotations

import contextlib
import os
import stat

import numpy as np
import pytest

import convlens as cl
from convlens import io


@contextlib.contextmanager
def umask(mask: int):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_written_files_get_the_mode_open_would_give_them(tmp_path, mask):
    expected = 0o666 & ~mask
    with umask(mask):
        with open(tmp_path / "plain", "wb") as plain:
            plain.write(b"x")
        io.write_atomically(tmp_path / "atomic.bin", b"payload")
        cl.data.write_idx(tmp_path / "x-idx1-ubyte.gz", np.arange(3, dtype=np.uint8))
        files = cl.save(cl.models.get("lenet5"), tmp_path / "run" / "lenet5")
    assert mode(tmp_path / "plain") == expected  # the oracle: a plain open()
    assert mode(tmp_path / "atomic.bin") == expected
    assert mode(tmp_path / "x-idx1-ubyte.gz") == expected
    assert mode(files.weights) == expected and mode(files.meta) == expected
    assert (tmp_path / "atomic.bin").read_bytes() == b"payload"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_summary_shows_its_table_in_a_repl():
    result = cl.summary(cl.models.get("lenet5"), (1, 28, 28))
    assert repr(result) == str(result)  # what a REPL echoes
    assert repr(result).startswith("Model: lenet5") and "Total params: 61,706" in repr(result)
    assert "Summary(" not in repr(result) and "SummaryRow(" not in repr(result)

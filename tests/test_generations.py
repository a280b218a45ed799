"""Checkpoint generations: a save is one unit, a stop at any moment leaves the last complete one.

The store alone (write, choose, fallback, a crash injected at every file-system call),
then through ``cl.save``/``cl.load`` and training checkpoints, then real processes:
SIGKILL at random moments and a resume in a fresh process must end bitwise equal to
an uninterrupted run, with a batch log showing no batch skipped or repeated; SIGINT
and SIGTERM must save at the current step and exit with 130 and 143.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import convlens as cl
from convlens import generations, io, nn, optim
from convlens.generations import GenerationWarning, NoCompleteGenerationError

WORKER = Path(__file__).with_name("kill_worker.py")
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# The pure-NumPy engine: no JIT warm-up in every fresh process, and the platform without numba.
WORKER_ENV = {**os.environ, **SINGLE_THREADED, "CONVLENS_BACKEND": "numpy"}


def contents(generation: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(generation.iterdir()) if p.name != generations.MANIFEST}


def leftovers(store: Path) -> list[str]:
    return sorted(
        p.name for p in store.iterdir() if p.name != generations.POINTER and not p.name.startswith("gen-")
    )


# ---------------------------------------------------------------------------------- store
def test_write_makes_a_complete_current_generation_and_keeps_two(tmp_path):
    store = tmp_path / "ckpt.d"
    written = [generations.write(store, {"w.bin": bytes([i]) * 10, "m.json": b"{}"}) for i in range(5)]
    assert [g.name for g in written] == [f"gen-{i:06d}" for i in range(1, 6)]
    assert (store / "CURRENT").read_text() == "gen-000005\n"
    assert [g.name for g in generations.generations(store)] == ["gen-000004", "gen-000005"]
    assert leftovers(store) == []
    chosen = generations.choose(store)
    assert chosen == written[-1] and contents(chosen) == {"m.json": b"{}", "w.bin": bytes([4]) * 10}
    manifest = (chosen / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in manifest) == ["m.json", "w.bin"]
    assert generations.problem(chosen) is None


def test_files_and_directories_are_fsynced_before_the_pointer_moves(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace, real_rename = os.fsync, os.replace, os.rename
    opened: dict[int, str] = {}
    real_open = os.open

    def spy_open(path, flags, *args):
        descriptor = real_open(path, flags, *args)
        opened[descriptor] = Path(path).name
        return descriptor

    def spy_fsync(descriptor):
        events.append(f"fsync {opened.get(descriptor, 'file')}")
        return real_fsync(descriptor)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(
        os, "replace", lambda a, b: events.append(f"replace {Path(b).name}") or real_replace(a, b)
    )
    monkeypatch.setattr(
        os, "rename", lambda a, b: events.append(f"rename {Path(b).name}") or real_rename(a, b)
    )
    generations.write(tmp_path / "s.d", {"a": b"1", "b": b"2"})
    monkeypatch.undo()
    pointer = events.index("replace CURRENT")
    before = events[:pointer]
    assert {
        "fsync a",
        "fsync b",
        "fsync SHA256SUMS",
        "fsync .gen-000001.partial",
        "rename gen-000001",
    } <= set(before)
    assert before.index("fsync .gen-000001.partial") < before.index("rename gen-000001")
    assert "fsync s.d" in events[pointer:]  # the pointer's directory entry is made durable too


class Killed(BaseException):
    """The process died here: nothing after this runs, not even clean-up."""


class Crash:
    """Counts file-system calls; from call number ``at`` on, every one of them dies."""

    NAMES = ("open", "fsync", "rename", "replace", "unlink", "rmdir", "link", "mkdir")

    def __init__(self, monkeypatch, at: int | None):
        self.calls, self.at, self.monkeypatch = 0, at, monkeypatch
        for name in self.NAMES:
            monkeypatch.setattr(os, name, self._wrap(getattr(os, name)))

    def _wrap(self, real):
        def call(*args, **kwargs):
            self.calls += 1
            if self.at is not None and self.calls > self.at:
                raise Killed
            return real(*args, **kwargs)

        return call

    def undo(self) -> None:
        self.monkeypatch.undo()


def test_a_crash_at_any_file_system_call_leaves_the_old_or_the_new_checkpoint(tmp_path, monkeypatch):
    old, new, after = ({"w": bytes([v]) * 64, "j": b"%d" % v} for v in (1, 2, 3))
    counting = Crash(monkeypatch, None)
    generations.write(tmp_path / "count.d", old)
    generations.write(tmp_path / "count.d", new)
    counting.undo()
    total = counting.calls  # the calls of a second write (with pruning) bound those of any write
    for at in range(total + 1):
        store = tmp_path / f"s{at}.d"
        generations.write(store, old)
        crash = Crash(monkeypatch, at)
        try:
            generations.write(store, new)
            finished = True
        except Killed:
            finished = False
        crash.undo()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the pointer names a complete generation: no fallback
            chosen = contents(generations.choose(store))
        assert chosen in (old, new), at
        if finished:
            assert chosen == new
        # the next save, in a "new process", succeeds and clears what the crash left
        generations.write(store, after)
        assert contents(generations.choose(store)) == after
        assert leftovers(store) == [] and len(generations.generations(store)) <= 2


def test_keyboard_interrupt_during_a_write_abandons_it(tmp_path, monkeypatch):
    store = tmp_path / "s.d"
    generations.write(store, {"w": b"old"})
    real = generations.write_file_synced

    def interrupted(path, payload):
        if path.name == "w":
            raise KeyboardInterrupt
        real(path, payload)

    monkeypatch.setattr(generations, "write_file_synced", interrupted)
    with pytest.raises(KeyboardInterrupt):
        generations.write(store, {"w": b"new"})
    monkeypatch.undo()
    assert contents(generations.choose(store)) == {"w": b"old"} and leftovers(store) == []


@pytest.mark.parametrize(
    "damage",
    [
        "flip a byte",
        "truncate",
        "delete a file",
        "delete the manifest",
        "forge the manifest",
        "escape the directory",
        "delete the directory",
    ],
)
def test_a_damaged_current_generation_falls_back_with_a_warning(tmp_path, damage):
    store = tmp_path / "s.d"
    generations.write(store, {"w": b"previous" * 100})
    current = generations.write(store, {"w": b"current!" * 100})
    target = current / "w"
    if damage == "flip a byte":
        data = bytearray(target.read_bytes())
        data[123] ^= 0x10
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-1])
    elif damage == "delete a file":
        target.unlink()
    elif damage == "delete the manifest":
        (current / "SHA256SUMS").unlink()
    elif damage == "forge the manifest":
        (current / "SHA256SUMS").write_text("not a manifest\n")
    elif damage == "escape the directory":
        (current / "SHA256SUMS").write_text("0" * 64 + "  ../../etc/passwd\n")
    else:
        shutil.rmtree(current)
    with pytest.warns(GenerationWarning, match="reading the previous complete checkpoint gen-000001"):
        chosen = generations.choose(store)
    assert contents(chosen) == {"w": b"previous" * 100}


def test_a_missing_or_garbage_pointer_reads_the_newest_complete_generation(tmp_path):
    store = tmp_path / "s.d"
    for value in (b"1", b"2"):
        generations.write(store, {"w": value})
    for pointer in (None, b"../../../etc\n", b"\xff\xfe", b"gen-999999\n"):
        if pointer is None:
            (store / "CURRENT").unlink(missing_ok=True)
        else:
            (store / "CURRENT").write_bytes(pointer)
        with pytest.warns(GenerationWarning):
            assert contents(generations.choose(store)) == {"w": b"2"}


def test_no_complete_generation_is_one_clear_error(tmp_path):
    store = tmp_path / "s.d"
    with pytest.raises(FileNotFoundError, match="not found"):
        generations.choose(store)
    only = generations.write(store, {"w": b"x"})
    (only / "w").write_bytes(b"y")
    with pytest.raises(
        NoCompleteGenerationError, match="no complete checkpoint in .*does not match its SHA-256"
    ):
        generations.choose(store)


def test_an_oversized_file_is_not_hashed(tmp_path, monkeypatch):
    store = tmp_path / "s.d"
    generations.write(store, {"w": b"1"})
    generations.write(store, {"w": b"22"})
    monkeypatch.setattr(generations, "MAX_FILE_BYTES", 1)
    with pytest.warns(GenerationWarning, match="more than a checkpoint file may be"):
        assert contents(generations.choose(store)) == {"w": b"1"}


def test_an_uncommitted_generation_is_dropped_by_the_next_write(tmp_path):
    """A writer killed between the rename and the pointer leaves a complete but uncommitted
    generation; it must not push the committed one out of the kept pair."""
    store = tmp_path / "s.d"
    generations.write(store, {"w": b"1"})
    committed = generations.write(store, {"w": b"2"})
    shutil.copytree(committed, store / "gen-000003")  # as if the pointer update never happened
    assert generations.choose(store) == committed
    newest = generations.write(store, {"w": b"4"})
    assert [g.name for g in generations.generations(store)] == ["gen-000002", newest.name]


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "SHA256SUMS", "CURRENT", "x" * 200])
def test_write_refuses_names_that_are_not_plain_files(tmp_path, name):
    with pytest.raises(ValueError, match="not a plain file name"):
        generations.write(tmp_path / "s.d", {name: b""})


def test_link_atomically_replaces_the_target(tmp_path):
    first, second, target = tmp_path / "a", tmp_path / "b", tmp_path / "t"
    first.write_bytes(b"first")
    second.write_bytes(b"second")
    generations.link_atomically(first, target)
    generations.link_atomically(second, target)
    assert target.read_bytes() == b"second" and sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "t"]


# ------------------------------------------------------------------- through cl.save / cl.load
def small_model(seed: int):
    nn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(np.asarray(sa[k]), np.asarray(sb[k])) for k in sa)


def test_versioned_save_layout_and_every_spelling_of_the_path(tmp_path):
    first, second = small_model(1), small_model(2)
    cl.save(first, tmp_path / "run" / "checkpoint", versioned=True)
    cl.save(second, tmp_path / "run" / "checkpoint.safetensors", versioned=True)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.d", "checkpoint.safetensors"]
    current = generations.choose(run / "checkpoint.d")
    assert sorted(p.name for p in current.iterdir()) == [
        "SHA256SUMS",
        "checkpoint.json",
        "checkpoint.safetensors",
    ]
    for spelling in ("run/checkpoint", "run/checkpoint.safetensors", "run/checkpoint.json"):
        assert same_weights(cl.load(tmp_path / spelling), second)
    # the file beside the store is the current weights, for other tools (PyTorch, safetensors)
    import safetensors.numpy

    plain = safetensors.numpy.load_file(str(run / "checkpoint.safetensors"))
    assert all(np.array_equal(plain[k], np.asarray(v)) for k, v in second.state_dict().items())
    assert io.resolve(run / "checkpoint.safetensors").weights == current / "checkpoint.safetensors"


def test_cl_load_falls_back_to_the_previous_generation_with_a_warning(tmp_path):
    first, second = small_model(1), small_model(2)
    path = tmp_path / "checkpoint"
    cl.save(first, path, versioned=True)
    cl.save(second, path, versioned=True)
    weights = generations.choose(tmp_path / "checkpoint.d") / "checkpoint.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])
    with pytest.warns(GenerationWarning, match="reading the previous complete checkpoint"):
        assert same_weights(cl.load(path), first)


def test_single_file_checkpoints_still_load(tmp_path):
    model = small_model(4)
    cl.save(model, tmp_path / "old" / "checkpoint")  # the plain layout: three files side by side
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == [
        "checkpoint.json",
        "checkpoint.safetensors",
    ]
    assert same_weights(cl.load(tmp_path / "old" / "checkpoint.safetensors"), model)
    # saving a new version next to it moves the checkpoint into generations, and those win
    newer = small_model(5)
    cl.save(newer, tmp_path / "old" / "checkpoint", versioned=True)
    assert same_weights(cl.load(tmp_path / "old" / "checkpoint.safetensors"), newer)
    assert not (tmp_path / "old" / "checkpoint.json").exists()  # no stale JSON to mislead


def test_a_plain_save_onto_a_versioned_checkpoint_makes_a_new_generation(tmp_path):
    path = tmp_path / "checkpoint"
    cl.save(small_model(1), path, versioned=True)
    model = small_model(2)
    cl.save(model, path)
    assert same_weights(cl.load(path), model)
    assert [g.name for g in generations.generations(tmp_path / "checkpoint.d")] == [
        "gen-000001",
        "gen-000002",
    ]


def test_training_checkpoints_are_generations_with_optimizer_state(tmp_path):
    from convlens.train import load_checkpoint, save_checkpoint

    model = small_model(3)
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = np.random.default_rng(0).standard_normal((4, 1, 5, 5)).astype(np.float32)
    for epoch in range(3):
        optimizer.zero_grad()
        (model(cl.tensor(x)) ** 2).mean().backward()
        optimizer.step()
        save_checkpoint(tmp_path / "checkpoint.safetensors", model, optimizer, epoch=epoch + 1)
    store = tmp_path / "checkpoint.d"
    assert [g.name for g in generations.generations(store)] == ["gen-000002", "gen-000003"]
    assert sorted(p.name for p in generations.choose(store).iterdir()) == [
        "SHA256SUMS",
        "checkpoint.json",
        "checkpoint.optim.safetensors",
        "checkpoint.safetensors",
    ]
    state = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert state["epoch"] == 3 and same_weights(state["model"], model)
    buffers = state["optimizer_state"]["state"]
    assert np.array_equal(
        buffers[0]["momentum_buffer"], optimizer.state_dict()["state"][0]["momentum_buffer"]
    )


# ----------------------------------------------------------------------------- real processes
def read_log(out: Path) -> list[str]:
    path = out / "batches.log"
    return path.read_text().splitlines() if path.exists() else []


def final_weights(out: Path) -> dict[str, np.ndarray]:
    import safetensors.numpy

    return safetensors.numpy.load_file(str(out / "final.safetensors"))


def start_worker(out: Path, *args: str) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(out), *args],
        env=WORKER_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err


def wait_for_first_batch(out: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not read_log(out) and process.poll() is None:
        assert time.monotonic() < deadline, "the worker never trained a batch"
        time.sleep(0.002)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run: its batch log, final weights and how long its batches took."""
    out = tmp_path_factory.mktemp("straight")
    process = start_worker(out)
    wait_for_first_batch(out, process)
    started = last = time.monotonic()
    count = 0
    while process.poll() is None:  # the time of the last batch, not of the final save and exit
        if len(read_log(out)) != count:
            count, last = len(read_log(out)), time.monotonic()
        time.sleep(0.002)
    code, err = finish(process)
    assert code == 0, err
    return read_log(out), final_weights(out), last - started


def assert_same_weights(weights: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(weights) == list(expected)
    for key in expected:
        assert weights[key].tobytes() == expected[key].tobytes(), key  # bitwise


def resume_and_check(out: Path, stopped_log: list[str], expected_log: list[str], expected_weights) -> int:
    """Resume in a fresh process; check the batches and the weights; return the resume step."""
    code, err = finish(start_worker(out, "--resume"))
    assert code == 0, err
    resumed_at = int((out / "resumed_at").read_text())
    log = read_log(out)
    assert log[: len(stopped_log)] == stopped_log
    assert len(stopped_log) >= resumed_at  # every batch in the checkpoint was logged before the stop
    assert stopped_log[:resumed_at] == expected_log[:resumed_at]
    assert log[len(stopped_log) :] == expected_log[resumed_at:]  # nothing skipped, nothing repeated
    assert_same_weights(final_weights(out), expected_weights)
    return resumed_at


def test_sigkill_at_random_moments_then_resume_is_bitwise_identical(straight, tmp_path):
    """Many random kill points, bounded in time; some land inside a checkpoint write."""
    expected_log, expected_weights, seconds = straight
    rng = random.Random(int(os.environ.get("CONVLENS_KILL_SEED", time.time_ns() % 10_000)))
    points = int(os.environ.get("CONVLENS_KILL_POINTS", "10"))
    deadline = time.monotonic() + float(os.environ.get("CONVLENS_KILL_BUDGET", "90"))
    outcomes = []
    for point in range(points):
        if point >= 4 and time.monotonic() > deadline:
            break
        out = tmp_path / f"kill{point}"
        process = start_worker(out)
        wait_for_first_batch(out, process)
        time.sleep(rng.uniform(0, seconds))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        stopped = read_log(out)
        resumed_at = resume_and_check(out, stopped, expected_log, expected_weights)
        outcomes.append((process.returncode, resumed_at, len(stopped)))
    killed = [o for o in outcomes if o[0] == -signal.SIGKILL]
    assert len(killed) >= len(outcomes) // 3, outcomes  # kills landed during training
    assert any(0 < at < len(expected_log) for _, at, _ in killed), outcomes  # and resumed mid-run


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_sigint_and_sigterm_save_at_the_current_step(straight, tmp_path, name, code):
    expected_log, expected_weights, seconds = straight
    rng = random.Random(zlib_seed(name))
    for attempt in range(5):
        out = tmp_path / f"{name}{attempt}"
        process = start_worker(out)
        wait_for_first_batch(out, process)
        time.sleep(rng.uniform(0, seconds / 2))
        process.send_signal(getattr(signal, name))
        returned, err = finish(process)
        if returned == 0:
            continue  # the run finished before the signal arrived: try an earlier moment
        assert returned == code, err
        stopped = read_log(out)
        resumed_at = resume_and_check(out, stopped, expected_log, expected_weights)
        assert resumed_at == len(stopped)  # saved at the step it had reached: no batch redone
        return
    pytest.fail(f"{name} never arrived during training")


def zlib_seed(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())


def test_cli_sigterm_saves_writes_history_and_exits_143_with_one_line(tmp_path):
    out = tmp_path / "run"
    argv = (
        "train --dataset mnist-5k --limit 512 --epochs 3 --batch-size 16 --no-progress --checkpoint-every 2"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "convlens", *argv.split(), "--out", str(out)],
        env=WORKER_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 60
    while not (out / "checkpoint.d" / "CURRENT").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("convlens: ") and "SIGTERM" in lines[0] and "--resume" in lines[0]
    history = json.loads((out / "history.json").read_text())
    assert history["interrupted"] is True
    from convlens.train import load_checkpoint

    state = load_checkpoint(out / "checkpoint.safetensors")
    assert state["epoch"] * 32 + state["step"] > 0
    resumed = subprocess.run(
        [sys.executable, "-m", "convlens", "train", "--resume", str(out), "--no-progress"],
        env=WORKER_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(out / "checkpoint.safetensors")["epoch"] == 3

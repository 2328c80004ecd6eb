"""Two runs writing the same output, and interruptions: the locks of blurkit._lock (train, shard, make-pairs),
write errors that name their file and say what is kept, and Ctrl-C while TensorFlow starts.

Fast on purpose: the commands are refused before any TensorFlow work, ``blurkit train`` runs with a stand-in
for the Deblurrer (its refusals and messages are the CLI's), and a "first run" is a thread or a small
subprocess held at a known point.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import blurkit
from blurkit.cli.main import main
from blurkit.data.io import write_image

SRC = str(Path(blurkit.__file__).resolve().parents[1])  # the blurkit these tests import, for subprocesses


def _photos(folder: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(folder / f"{i}.png", rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return folder


def _holding(lock_file: Path, target: Path, owner: str) -> subprocess.Popen:
    """A process that holds the lock until it is killed (it has taken it once this returns)."""
    code = textwrap.dedent(f"""
        import sys, time
        from blurkit._lock import Lock
        Lock({str(lock_file)!r}, {str(target)!r}, {owner!r}).acquire()
        print("held", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": SRC})
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


# --------------------------------------------------------------------------------------------------
# The lock itself
# --------------------------------------------------------------------------------------------------
def test_a_lock_held_by_another_process_is_refused_and_a_killed_holders_is_free(tmp_path):
    from blurkit._lock import Busy, Lock, beside, holder

    target = tmp_path / "out" / "model.keras"
    path = beside(target)
    assert path == tmp_path / "out" / ".model.keras.lock"
    proc = _holding(path, target, "blurkit train")
    try:
        with pytest.raises(Busy) as caught:
            Lock(path, target, "blurkit train").acquire()
        assert str(caught.value) == f"another blurkit train (pid {proc.pid}) is writing {target} (it holds the " \
                                    f"lock {path})"
        assert (caught.value.pid, caught.value.lock_file) == (proc.pid, path)
        assert holder(path) == (proc.pid, "blurkit train")
    finally:
        proc.kill()
        proc.wait()
    assert path.exists() and holder(path) is None  # a killed holder leaves its file, free
    with Lock(path, target, "blurkit train"):
        # the lock is per open file: another open in this process is refused as another process is
        assert holder(path) == (os.getpid(), "blurkit train")
        with pytest.raises(Busy, match=f"pid {os.getpid()}"):
            Lock(path, target, "blurkit train").acquire()
    assert not path.exists()  # removed when let go


def test_holder_only_looks(tmp_path):
    from blurkit._lock import Lock, holder

    assert holder(tmp_path / ".none.lock") is None and not (tmp_path / ".none.lock").exists()
    lock = Lock(tmp_path / ".a.lock", tmp_path / "a", "shard run").acquire()
    lock.release()
    (tmp_path / ".a.lock").write_text("")
    assert holder(tmp_path / ".a.lock") is None and (tmp_path / ".a.lock").exists()


def test_a_lock_file_removed_as_its_holder_lets_go_is_not_locked_twice(tmp_path, monkeypatch):
    """A opens the lock file; its holder removes it as it lets go, and C makes and locks a new one; then A's
    lock of the old (removed) file would succeed: A must lock the file at the path, and so be refused."""
    import blurkit._lock as locks

    path, target = tmp_path / ".x.lock", tmp_path / "x"
    first = locks.Lock(path, target, "shard run").acquire()
    third = locks.Lock(path, target, "shard run")
    real_open = os.open
    opened: list[int] = []

    def open_then_race(name, flags, mode=0o777):
        fd = real_open(name, flags, mode)
        if not opened:
            opened.append(fd)
            first.release()  # removes the file A has just opened
            third.acquire()  # a new file at the path, locked
        return fd

    monkeypatch.setattr(locks.os, "open", open_then_race)
    with pytest.raises(locks.Busy):
        locks.Lock(path, target, "shard run").acquire()
    monkeypatch.undo()
    third.release()

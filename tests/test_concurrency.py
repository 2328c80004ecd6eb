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


def _run_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A train run's photos, its OUT (``m.keras``) and where its training state goes."""
    return _photos(tmp_path / "photos"), tmp_path / "m.keras", tmp_path / "m.resume" / "last.keras"


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


def test_a_folder_spelt_without_its_name_is_locked_beside_its_real_name(tmp_path, monkeypatch):
    """``.``, ``a/..`` and ``/`` have no name of their own: ``.`` crashed (an empty name), and ``..`` was
    locked as ``....lock`` in the current folder. Every spelling of a folder gives one lock file."""
    from blurkit._lock import Lock, beside

    (tmp_path / "w" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "w")
    here = tmp_path / ".w.lock"
    assert beside(".") == beside("./") == beside(tmp_path / "w") == beside("a/..") == beside(str(tmp_path / "w") + "/")
    assert beside(".") == here
    assert beside("..") == tmp_path.parent / f".{tmp_path.name}.lock"
    assert beside("m.keras") == tmp_path / "w" / ".m.keras.lock"
    assert beside("/") == Path("/") / ".blurkit.lock"
    with Lock(beside("."), ".", "blurkit train"):
        assert here.is_file()
    assert not here.exists()


def test_a_long_valid_name_gets_a_lock_file_that_fits(tmp_path):
    """A 250-byte name is valid (255 is the limit): its lock file ``.NAME.lock`` (256 bytes) was "File name too
    long". Long names are shortened with a hash, so two long names differing at the end do not share one."""
    from blurkit._lock import Lock, beside

    names = ["m" * 244 + ".keras", "m" * 243 + "n.keras"]
    locks = [beside(tmp_path / name) for name in names]
    assert locks[0] != locks[1] and all(len(lock.name.encode()) <= 255 for lock in locks)
    assert all(lock.parent == tmp_path and lock.name.startswith(".mmm") for lock in locks)
    assert beside(tmp_path / ("m" * 100)).name == "." + "m" * 100 + ".lock"  # short enough: as it is
    with Lock(locks[0], tmp_path / names[0], "blurkit train"):
        assert locks[0].is_file()


def test_holder_looking_never_makes_a_starting_run_refused(tmp_path):
    """holder() takes a free lock for an instant to look: a run starting at that instant was refused, naming
    the pid left in the file by a killed run. One process looks in a loop while this one takes the lock and
    lets go of it: never refused."""
    from blurkit._lock import Busy, Lock

    path, target = tmp_path / ".race.lock", tmp_path / "race"
    stale = b"\x0099999 make-pairs run\n"  # the file a killed run leaves
    path.write_bytes(stale)
    code = textwrap.dedent(f"""
        import sys
        from blurkit._lock import holder
        holder({str(path)!r})
        print("looking", flush=True)
        while True:
            holder({str(path)!r})
    """)
    looker = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": SRC})
    refused: list[str] = []
    try:
        assert looker.stdout is not None and looker.stdout.readline() == "looking\n"
        deadline = time.time() + 1.5
        for _ in range(1500):
            if time.time() > deadline:
                break
            if not path.exists():
                path.write_bytes(stale)
            try:
                Lock(path, target, "make-pairs run").acquire().release()
            except Busy as exc:
                refused.append(str(exc))
    finally:
        looker.kill()
        looker.wait()
    assert refused == []


def test_the_folders_a_lock_made_are_removed_when_it_lets_go_if_empty(tmp_path):
    """Taking a lock makes its folder: a run that then fails or writes nothing left them (``nope/deep/``)."""
    from blurkit._lock import Busy, Lock, beside

    out = tmp_path / "nope" / "deep" / "m.keras"
    with Lock(beside(out), out, "blurkit train"):
        assert (tmp_path / "nope" / "deep").is_dir()
    assert not (tmp_path / "nope").exists()
    with Lock(beside(out), out, "blurkit train"):
        out.write_bytes(b"model")  # written: the folders stay
    assert os.listdir(out.parent) == ["m.keras"]
    out.unlink()
    with Lock(beside(out), out, "blurkit train"):
        pass
    assert out.parent.is_dir()  # there before the lock: not its to remove
    other = tmp_path / "x" / "y" / "m.keras"
    first = Lock(beside(other), other, "blurkit train").acquire()
    with pytest.raises(Busy):
        Lock(beside(other), other, "blurkit train").acquire()  # refused: removes nothing it did not make
    assert beside(other).is_file()
    first.release()
    assert not (tmp_path / "x").exists()


def test_a_hard_link_in_the_lock_files_place_is_refused_and_its_target_left_alone(tmp_path):
    """A hard link passes as a regular file: ftruncate and the pid write destroyed the file it shares."""
    from blurkit._lock import Lock, beside, holder

    victim = tmp_path / "thesis.tex"
    victim.write_text("years of work\n")
    out = tmp_path / "out" / "model.keras"
    out.parent.mkdir()
    os.link(victim, beside(out))
    with pytest.raises(OSError, match=r"\.model\.keras\.lock is a hard link"):
        Lock(beside(out), out, "blurkit train").acquire()
    assert victim.read_text() == "years of work\n"
    assert holder(beside(out)) is None and victim.read_text() == "years of work\n"


# --------------------------------------------------------------------------------------------------
# blurkit train (a stand-in Deblurrer: the CLI's locks and messages, no TensorFlow)
# --------------------------------------------------------------------------------------------------
class _Stand:
    """In place of the Deblurrer: ``fit`` and ``save`` do what the test gives them."""

    fit_hook = None
    save_hook = None

    def __init__(self, **kwargs):
        self.training: dict = {}
        self.history: dict = {}
        self.validation = None

    def fit(self, data, **kwargs):
        return type(self).fit_hook(self, kwargs)

    def save(self, path):
        return type(self).save_hook(self, path)

    def plot_history(self, path):
        Path(path).write_bytes(b"png")

    @staticmethod
    def read_metadata(path):
        return {}


@pytest.fixture
def stand_in(monkeypatch):
    import blurkit.cli._common as common
    import blurkit.deblurrer as deblurrer

    class Stand(_Stand):
        pass

    monkeypatch.setattr(deblurrer, "Deblurrer", Stand)
    monkeypatch.setattr(common, "quiet_tensorflow", lambda: None)
    return Stand


def test_a_second_train_run_is_refused_while_the_first_runs(tmp_path, stand_in, capsys):
    """The same --out (a second experiment), --resume or --overwrite of it, or the same --checkpoint-dir under
    another --out, while the first run is in its first epoch (nothing on disk yet): each refused before any
    work, naming the file, the lock and the first run's pid; the first run goes on."""
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "T" / "d.keras"
    first = ["train", str(photos), "-o", str(out), "-q"]
    seconds = {"same out": first, "--resume": [*first, "--resume"], "--overwrite": [*first, "--overwrite"],
               "state": ["train", str(photos), "-o", str(tmp_path / "T" / "e.keras"), "--checkpoint-dir",
                         str(tmp_path / "T" / "d.resume"), "-q"]}
    seen: dict[str, tuple[int, str]] = {}
    runs: list[str] = []

    def fit(d, kwargs):
        runs.append("run")
        if len(runs) > 1:  # a second run that was not refused trains
            raise KeyboardInterrupt
        capsys.readouterr()
        for name, argv in seconds.items():
            seen[name] = (main(argv), capsys.readouterr().err)
        raise KeyboardInterrupt  # the first run's end: Ctrl-C in its first epoch

    stand_in.fit_hook = fit
    assert main(first) == 130
    assert "no epoch finished, so there is nothing to resume" in capsys.readouterr().err
    assert runs == ["run"]
    pid = os.getpid()
    for name, (status, err) in seen.items():
        target, flag = (out, "--out") if name != "state" else (tmp_path / "T" / "d.resume", "--checkpoint-dir")
        lock = target.with_name(f".{target.name}.lock")
        assert status == 1, name
        assert err == f"blurkit train: error: another blurkit train (pid {pid}) is writing {target} (it holds the " \
                      f"lock {lock}): wait for it to end, or give another {flag}\n", name
    # the locks are removed when the run ends, and so is T, which only the lock made (the run wrote nothing)
    assert not (tmp_path / "T").exists()


def test_only_the_chief_of_a_multiworker_run_locks(monkeypatch):
    """Every worker runs the same command, OUT often on storage they share: the others must not be refused."""
    from blurkit.cli.train import _writes_out

    def config(task, cluster):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
        return _writes_out(argparse.Namespace(distribute="multiworker"))

    workers = {"worker": ["a:1", "b:1"]}
    assert config({"type": "worker", "index": 0}, workers)
    assert not config({"type": "worker", "index": 1}, workers)
    assert config({"type": "chief", "index": 0}, {**workers, "chief": ["c:1"]})
    assert not config({"type": "worker", "index": 0}, {**workers, "chief": ["c:1"]})
    assert _writes_out(argparse.Namespace(distribute="mirrored")) and _writes_out(argparse.Namespace(distribute=None))


def test_a_write_error_in_training_names_the_file_and_what_is_kept(tmp_path, stand_in, capsys):
    """A full disk writing epoch 2's training state: the error names the file, and the line says what is kept
    (as after Ctrl-C); exit status 1. After the epochs (writing OUT): --resume finishes."""
    photos, out, state = _run_files(tmp_path)

    def fit(d, kwargs):
        state.parent.mkdir(exist_ok=True)
        state.write_bytes(b"epoch 1")
        out.write_bytes(b"epoch 1")
        raise OSError(errno.ENOSPC, "No space left on device", str(state))

    stand_in.fit_hook = fit
    assert main(["train", str(photos), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    assert err == (f"blurkit train: error: [Errno 28] No space left on device: '{state}'; the training state after "
                   f"the last finished epoch is in {state.parent}: run the same command with --resume to go on; "
                   f"{out} holds the best model so far (the run is not finished)\n")

    def trained(d, kwargs):
        state.write_bytes(b"last epoch")

    def full(d, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    stand_in.fit_hook, stand_in.save_hook = trained, full
    assert main(["train", str(photos), "-o", str(out), "-q", "--resume"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"blurkit train: error: [Errno 28] No space left on device: '{out}'; the epochs were "
                          f"trained, but {out} and the curves may not be written yet; the training state is in "
                          f"{state.parent}: run the same command with --resume")


def test_ctrl_c_after_the_epochs_says_that_resume_finishes(tmp_path, stand_in, capsys):
    photos, out, state = _run_files(tmp_path)

    def fit(d, kwargs):
        state.parent.mkdir(exist_ok=True)
        state.write_bytes(b"last epoch")

    def interrupted(d, path):
        raise KeyboardInterrupt

    stand_in.fit_hook, stand_in.save_hook = fit, interrupted
    assert main(["train", str(photos), "-o", str(out), "-q"]) == 130
    assert capsys.readouterr().err == (
        f"interrupted: the epochs were trained, but {out} and the curves may not be written yet; the training "
        f"state is in {state.parent}: run the same command with --resume to write them (no epoch is trained "
        "again)\n")


def test_train_with_checkpoint_dir_dot_or_a_long_out_name_runs(tmp_path, stand_in, monkeypatch):
    """``--checkpoint-dir .`` crashed with a traceback (the lock file of ``.``); a 250-byte --out name (valid)
    failed with "File name too long" (its lock file's name)."""
    photos = _photos(tmp_path / "photos")
    (tmp_path / "w").mkdir()
    monkeypatch.chdir(tmp_path / "w")
    seen: list[list[str]] = []

    def fit(d, kwargs):
        seen.append(sorted(os.listdir(tmp_path)))
        raise KeyboardInterrupt

    stand_in.fit_hook = fit
    assert main(["train", str(photos), "-o", "m.keras", "--checkpoint-dir", ".", "-q"]) == 130
    assert ".w.lock" in seen[0] and not (tmp_path / ".w.lock").exists()

    long = tmp_path / "long" / ("m" * 244 + ".keras")

    def saved(d, path):
        Path(path).write_bytes(b"model")

    stand_in.fit_hook, stand_in.save_hook = (lambda d, kwargs: None), saved
    assert main(["train", str(photos), "-o", str(long), "-q"]) == 0
    assert long.read_bytes() == b"model"
    assert not [n for n in os.listdir(long.parent) if n.endswith(".lock")]


def test_a_failed_train_or_make_pairs_leaves_no_folder_the_lock_made(tmp_path, stand_in, capsys):
    """The locks made OUT's folders, left behind when the run failed (``nope/deep/``) or wrote nothing."""
    photos = _photos(tmp_path / "photos")

    def bad(d, kwargs):
        raise ValueError("no pairs in DATA")

    stand_in.fit_hook = bad
    assert main(["train", str(photos), "-o", str(tmp_path / "nope" / "deep" / "m.keras"), "-q"]) == 2
    assert not (tmp_path / "nope").exists()
    (tmp_path / "mp").mkdir()
    (tmp_path / "mp" / "a.png").write_bytes(b"not a png")
    assert main(["make-pairs", str(tmp_path / "mp"), str(tmp_path / "x" / "y" / "z"), "--no-progress"]) == 1
    assert not (tmp_path / "x").exists()
    capsys.readouterr()


@pytest.mark.parametrize("stop", ["ENOSPC", "Ctrl-C"])
def test_a_write_error_after_a_time_limit_pause_says_resume_trains_the_epochs_left(tmp_path, stand_in, capsys,
                                                                                   stop):
    """Paused by --time-limit after epoch 3 of 10, a failed write of OUT said "no epoch is trained again"."""
    photos, out, state = _run_files(tmp_path)

    def paused(d, kwargs):
        state.parent.mkdir(exist_ok=True)
        state.write_bytes(b"epoch 3")
        d.training.update(time_limit_reached=True, epochs=3)

    def fails(d, path):
        if stop == "Ctrl-C":
            raise KeyboardInterrupt
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    stand_in.fit_hook, stand_in.save_hook = paused, fails
    status = main(["train", str(photos), "-o", str(out), "-q", "--epochs", "10", "--time-limit", "60"])
    err = capsys.readouterr().err
    assert status == (1 if stop == "ENOSPC" else 130)
    assert "no epoch is trained again" not in err
    assert err.endswith(f"training paused after epoch 3 of 10 (--time-limit), and {out} and the curves may not be "
                        f"written yet; the training state is in {state.parent}: run the same command with --resume "
                        "to write them and train the epochs left\n")


def test_a_model_file_write_error_names_the_file(tmp_path, monkeypatch):
    """Keras' own error (a full disk while it writes the temporary file) names no file: save names the target,
    as atomic_open does; no temporary file is left."""
    from blurkit import Deblurrer

    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1})

    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(d.model, "save", full)
    target = tmp_path / "m.resume" / "last.keras"
    with pytest.raises(OSError) as caught:
        d.save(target)
    assert str(caught.value) == f"[Errno 28] No space left on device: '{target}'"
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value.__cause__, OSError)
    assert os.listdir(target.parent) == []


# --------------------------------------------------------------------------------------------------
# blurkit shard
# --------------------------------------------------------------------------------------------------
def test_a_second_shard_run_is_refused_and_never_removes_the_first_runs_shards(tmp_path, monkeypatch, capsys):
    """A long first run's finished temporary shard (aged as after 10+ minutes) is not the second run's to remove
    as stale: the second run is refused, and the first ends complete."""
    import blurkit.data.shards as shards

    photos = _photos(tmp_path / "photos", 4)
    out = tmp_path / "S"
    gate, waiting = threading.Event(), threading.Event()
    real = shards._check

    def held(path, name, check, max_pixels):
        if name == "1.png":  # shard 0 (0.png) is finished: hold the run here
            waiting.set()
            gate.wait(60)
        return real(path, name, check, max_pixels)

    monkeypatch.setattr(shards, "_check", held)
    results: list = []
    first = threading.Thread(target=lambda: results.append(shards.write_shards(
        photos, out, shard_size=1, shuffle=False, workers=1, progress=False)))
    first.start()
    try:
        assert waiting.wait(60)
        deadline = time.time() + 30
        while not [n for n in os.listdir(out) if n.startswith(".shard-00000.") and (out / n).stat().st_size]:
            assert time.time() < deadline
            time.sleep(0.05)
        temp = next(out / n for n in os.listdir(out) if n.startswith(".shard-00000."))
        os.utime(temp, (time.time() - 3600, time.time() - 3600))
        with pytest.raises(OSError, match=f"another shard run \\(pid {os.getpid()}\\) is writing {out}"):
            shards.write_shards(photos, out, progress=False, workers=1)
        assert temp.exists()
        assert main(["shard", str(photos), str(out), "--no-progress", "--workers", "1"]) == 1
        assert capsys.readouterr().err == (
            f"blurkit shard: error: another shard run (pid {os.getpid()}) is writing {out} (it holds the lock "
            f"{out / '.shards.lock'}): wait for it to end, or write to another OUT\n")
        assert temp.exists()
    finally:
        gate.set()
        first.join(60)
    assert results and results[0]["written"] == 4
    assert shards.read_index(out)["total"] == 4
    assert sorted(os.listdir(out)) == sorted([shards.INDEX_NAME, *(shards.shard_name(i, 4) for i in range(4))])


def test_write_shards_lets_go_of_its_lock_whatever_fails_after_it_took_it(tmp_path, monkeypatch):
    """The lock was taken outside the try that lets go of it: an error in between (the progress bar) held it
    for the life of the process, and every later run into OUT was refused."""
    import blurkit.data.shards as shards

    photos = _photos(tmp_path / "photos", 2)
    out = tmp_path / "S"

    def broken(*args, **kwargs):
        raise RuntimeError("no terminal")

    monkeypatch.setattr("blurkit._progress.bar", broken)
    with pytest.raises(RuntimeError, match="no terminal"):
        shards.write_shards(photos, out, progress=False, workers=1)
    monkeypatch.undo()
    assert not (out / shards.LOCK_NAME).exists()
    assert shards.write_shards(photos, out, progress=False, workers=1)["written"] == 2


# --------------------------------------------------------------------------------------------------
# blurkit make-pairs
# --------------------------------------------------------------------------------------------------
def test_a_second_make_pairs_run_is_refused_not_called_interrupted(tmp_path, monkeypatch, capsys):
    """While a run writes OUT_DIR, a second (with --replace too) is refused naming the run, status 1: it is not
    told the partial manifest is an interrupted run's and to --replace it (which deleted the first's pairs). The
    first ends with its own pairs; a partial manifest nobody holds is still an interrupted run's."""
    import blurkit.data.pairs as pairs

    clean = _photos(tmp_path / "clean")
    out = tmp_path / "P"
    gate, waiting = threading.Event(), threading.Event()
    real = pairs.write_image

    def held(path, image, **kwargs):
        real(path, image, **kwargs)
        if Path(path).parent.name == "sharp" and not waiting.is_set():  # the first pair is written
            waiting.set()
            gate.wait(60)

    monkeypatch.setattr(pairs, "write_image", held)
    results: list = []
    first = threading.Thread(target=lambda: results.append(pairs.make_pairs(
        clean, out, blur="gaussian", blur_options={"sigma": 1.0}, progress=False)))
    first.start()
    try:
        assert waiting.wait(60)
        for extra in ([], ["--replace"]):
            assert main(["make-pairs", str(clean), str(out), "--sigma", "3", "--no-progress", *extra]) == 1
            assert capsys.readouterr().err == (f"blurkit make-pairs: error: another make-pairs run (pid "
                                               f"{os.getpid()}) is writing {out}: wait for it to end, or choose "
                                               "another OUT_DIR\n")
        assert (out / pairs.PARTIAL_NAME).exists() and os.listdir(out / "sharp") == ["0.png"]
        with pytest.raises(OSError, match="another make-pairs run"):
            pairs.make_pairs(clean, out, progress=False, replace=True)
    finally:
        gate.set()
        first.join(60)
    assert results and results[0]["written"] == 3
    records = [json.loads(line) for line in (out / pairs.MANIFEST_NAME).read_text().splitlines()]
    assert [r["blur"]["config"]["sigma"] for r in records] == [1.0, 1.0, 1.0]
    assert sorted(os.listdir(out)) == ["blurred", "manifest.jsonl", "sharp"]  # the lock file is removed

    def interrupted(path, image, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pairs, "write_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pairs.make_pairs(clean, tmp_path / "Q", progress=False)
    monkeypatch.undo()
    assert main(["make-pairs", str(clean), str(tmp_path / "Q"), "--no-progress"]) == 2
    assert "holds the output of an interrupted run" in capsys.readouterr().err


def test_make_pairs_fails_with_status_1_once_the_work_started(tmp_path, monkeypatch, capsys):
    """A write that fails (a folder removed meanwhile) and the partial manifest removed during the run are the
    work failing (status 1), not usage errors (status 2)."""
    import blurkit.data.pairs as pairs

    clean = _photos(tmp_path / "clean")
    out = tmp_path / "P"
    real = pairs.write_image

    def gone(path, image, **kwargs):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))

    monkeypatch.setattr(pairs, "write_image", gone)
    assert main(["make-pairs", str(clean), str(out), "--no-progress"]) == 1
    assert capsys.readouterr().err == (f"blurkit make-pairs: error: [Errno 2] No such file or directory: "
                                       f"'{out / 'blurred' / '0.png'}'\n")

    def partial_removed(path, image, **kwargs):
        real(path, image, **kwargs)
        if Path(path).name == "2.png" and Path(path).parent.name == "sharp":
            (tmp_path / "Q" / pairs.PARTIAL_NAME).unlink()

    monkeypatch.setattr(pairs, "write_image", partial_removed)
    assert main(["make-pairs", str(clean), str(tmp_path / "Q"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"blurkit make-pairs: error: [Errno 2] {tmp_path / 'Q' / pairs.PARTIAL_NAME} was removed "
                          "during the run")


# --------------------------------------------------------------------------------------------------
# Ctrl-C while TensorFlow starts
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raised", ["KeyboardInterrupt", "ImportError('no such library')"])
def test_ctrl_c_while_tensorflow_starts_shows_none_of_its_start_up_lines(tmp_path, raised):
    """Its captured lines are shown when the import fails (they may say why), not when it is interrupted."""
    fake = tmp_path / "fake" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"import os\nos.write(2, b'I0000 cudart_stub.cc:31] no cuda drivers\\n')\n"
                                      f"raise {raised}\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "fake"), SRC])
    done = subprocess.run([sys.executable, "-c", "from blurkit.cli._common import quiet_tensorflow; "
                           "quiet_tensorflow()"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    shown = "no cuda drivers" in done.stderr
    assert shown == (raised != "KeyboardInterrupt"), done.stderr


def test_a_link_or_fifo_in_the_lock_files_place_is_refused_and_its_target_left_alone(tmp_path):
    """The lock file is written (the holder's id, after ftruncate): opened through a link planted in its place,
    in a shared or received output folder (``.model.keras.lock -> ~/thesis.tex``), it cut that file to one
    byte. A link or a FIFO there is refused, naming it; the file it points to is untouched."""
    from blurkit._lock import Lock, beside, holder

    victim = tmp_path / "thesis.tex"
    victim.write_text("years of work\n")
    out = tmp_path / "out" / "model.keras"
    out.parent.mkdir()
    beside(out).symlink_to(victim)
    with pytest.raises(OSError, match=r"\.model\.keras\.lock is a symbolic link"):
        Lock(beside(out), out, "blurkit train").acquire()
    assert victim.read_text() == "years of work\n"
    assert holder(beside(out)) is None
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "out" / ".other.lock"
        os.mkfifo(fifo)
        with pytest.raises(OSError, match=r"\.other\.lock is not a regular file"):
            Lock(fifo, out, "blurkit train").acquire()


def test_a_checkpoint_dir_whose_folder_cannot_hold_a_lock_file_still_trains(tmp_path, stand_in, monkeypatch):
    """The training state's lock file goes beside --checkpoint-dir: a writable checkpoint folder inside one
    this user cannot write (a shared scratch layout) was refused with "Permission denied", where training
    worked before the locks. It trains without that lock (OUT's is still held); OUT's folder is another matter:
    a lock refused there is the run's error."""
    import blurkit._lock as lock_module
    from blurkit._lock import beside

    photos = _photos(tmp_path / "photos")
    state = tmp_path / "ro" / "state"
    out = tmp_path / "m.keras"
    acquire = lock_module.Lock.acquire
    denied = {beside(state)}

    def guarded(self):
        if self.path in denied:
            raise PermissionError(13, "Permission denied", str(self.path))
        return acquire(self)

    monkeypatch.setattr(lock_module.Lock, "acquire", guarded)
    held: list[bool] = []

    def fit(d, kwargs):
        held.append(beside(out).exists())
        raise KeyboardInterrupt

    stand_in.fit_hook = fit
    assert main(["train", str(photos), "-o", str(out), "--checkpoint-dir", str(state), "-q"]) == 130
    assert held == [True]  # OUT's lock held while it trained
    denied.add(beside(out))
    assert main(["train", str(photos), "-o", str(out), "--checkpoint-dir", str(state), "-q"]) == 1
    assert held == [True]  # refused before training: OUT's folder must take its lock

"""``blurkit train --resume`` after a run stopped while it saved its first training state.

At the end of an epoch the best-model checkpoint (OUT) is written before the training state (OUT.resume/
last.keras), so that OUT always holds the best epoch up to the saved state. A kill (SIGKILL, SIGTERM, Ctrl-C)
while epoch 1's state was being written left OUT (epoch 1) and no state: the run said "no epoch finished, so
there is nothing to resume", and the same command with --resume (what a restarted job runs) was refused as
"a run that finished?", on every restart. Now --resume takes such an OUT for what it is, when its record says
so and matches the command, and starts afresh as the run did; a finished run's OUT and another run's are still
refused. The stop is made deterministic: the first state write leaves the temporary file a killed write leaves
and raises KeyboardInterrupt (what SIGINT and SIGTERM raise in ``blurkit train``).

Reproduce: ``pytest tests/test_resume_first_epoch.py -q`` (about 30 s on 2 cores).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.cli.main import main
from blurkit.data.io import temp_prefix, write_image

TINY = {"width": 4, "depth": 1, "blocks": 1}
TRAIN = ["--model-option", "width=4", "--model-option", "depth=1", "--model-option", "blocks=1", "--patch-size",
         "16", "--batch-size", "2", "--steps-per-epoch", "1", "--epochs", "2"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(4):  # 24x24 blocky photos: 2 training, 2 validation with --val-split 0.5
        write_image(root / f"p{i}.png", np.kron(rng.random((4, 4, 3)), np.ones((6, 6, 1))))
    return root


def _stop_in_the_first_state_write(monkeypatch) -> None:
    """The first training-state write leaves its temporary file (as ``kill -9`` mid-write does) and is stopped
    as Ctrl-C or SIGTERM stop it; OUT (written before it) is epoch 1's."""
    write = Deblurrer._write

    def stopping(self, path, *, resume=None, **kwargs):
        if resume is None:
            return write(self, path, **kwargs)
        path.parent.mkdir(parents=True, exist_ok=True)
        tempfile.mkstemp(prefix=temp_prefix(path.stem), suffix=".tmp.keras", dir=path.parent)
        raise KeyboardInterrupt

    monkeypatch.setattr(Deblurrer, "_write", stopping)


def test_resume_starts_afresh_after_a_stop_while_the_first_state_was_saved(photos, tmp_path, monkeypatch, capsys):
    run = ["train", str(photos), *TRAIN, "--val-split", "0.5"]
    ref = tmp_path / "ref" / "m.keras"
    assert main([*run, "-o", str(ref), "-q"]) == 0

    out, state_dir = tmp_path / "m.keras", tmp_path / "m.resume"
    argv = [*run, "-o", str(out), "--resume"]  # what a job script runs on every start
    _stop_in_the_first_state_write(monkeypatch)
    capsys.readouterr()
    assert main([*argv, "-q"]) == 130
    assert capsys.readouterr().err == (
        f"interrupted: the run stopped while saving its first training state: {out} holds epoch 1 (the run is not "
        "finished), and the same command with --resume starts the run afresh\n")  # was "nothing to resume"
    monkeypatch.undo()
    assert len(Deblurrer.read_metadata(out)["history"]["loss"]) == 1
    temps = os.listdir(state_dir)
    assert len(temps) == 1 and temps[0].startswith(".last.")  # no last.keras
    first = Path(shutil.copy(out, tmp_path / "first.keras"))
    epoch_1 = first.read_bytes()

    # the same command goes on: afresh, over OUT, and ends as the uninterrupted run (it was refused)
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (f"no saved state in {state_dir}: the run stopped while saving its first one, and {out} is its epoch 1: "
            "starting afresh (replacing it)") in printed
    for a, b in zip(Deblurrer.load(out).model.get_weights(), Deblurrer.load(ref).model.get_weights(), strict=True):
        assert np.array_equal(a, b)  # bit for bit: CPU runs are deterministic
    done, expected = Deblurrer.read_metadata(out), Deblurrer.read_metadata(ref)
    assert done["training"]["weights_epoch"] == expected["training"]["weights_epoch"]
    assert done["history"].keys() == expected["history"].keys() and "resumed_at_epoch" not in done["training"]
    for key, values in expected["history"].items():
        np.testing.assert_allclose(done["history"][key], values, rtol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["first.keras", "m.keras", "m.png", "ref"]  # state and temp removed

    # refused, nothing replaced: a finished run's OUT; another seed's epoch 1; epoch 1 of the whole (1-epoch) run
    finished = out.read_bytes()
    assert main(argv) == 2
    assert "(a run that finished?)" in capsys.readouterr().err
    assert out.read_bytes() == finished
    other = [*run, "-o", str(first), "--resume"]
    assert main([*other, "--seed", "1"]) == 2
    assert capsys.readouterr().err == (
        f"blurkit train: error: --resume: no saved training state in {tmp_path / 'first.resume'}, and {first} "
        "exists, saved by a run with other settings (--seed (saved 0, now 1)): drop --resume and add --overwrite "
        "to train afresh and replace it, or write another --out\n")
    assert main([*other, "--batch-size", "4", "--model-option", "width=8"]) == 2
    assert "(--batch-size (saved 2, now 4), --model-option width (saved 4, now 8))" in capsys.readouterr().err
    assert main([*other, "--epochs", "1"]) == 2
    assert "(a run that finished?)" in capsys.readouterr().err
    assert first.read_bytes() == epoch_1
    assert not (tmp_path / "first.resume").exists()


def test_without_validation_the_emptied_state_folder_tells_a_stopped_run_from_a_finished_one(
        photos, tmp_path, monkeypatch, capsys):
    """Without validation (or early stopping) a finished 1-epoch run's OUT records what a stopped run's epoch 1
    does: only the state folder tells them apart (a finished run removes it; a stopped write leaves it empty
    or holding its temporary file)."""
    out, state_dir = tmp_path / "m.keras", tmp_path / "m.resume"
    d = Deblurrer(model="unet", model_options=TINY, patch_size=16, batch_size=2)
    d.training = {"data": str(photos), "train_items": 4, "validation_items": 0, "epochs": 1, "steps_per_epoch": 1,
                  "batch_size": 2, "patch_size": 16, "patches_per_image": 4, "loss": "mse",
                  "learning_rate": 0.001, "seed": 0, "validation": None, "validation_split": 0.0,
                  "early_stopping": None, "reduce_lr": True}  # fit's record after epoch 1
    d.history = {"loss": [0.03], "psnr": [15.0], "ssim": [0.5], "learning_rate": [0.001]}
    d.save(out)
    saved = out.read_bytes()
    argv = ["train", str(photos), *TRAIN, "--val-split", "0", "-o", str(out), "--resume"]

    def full_disk(self, *args, **kwargs):  # epoch 1's checkpoint is written, and its state write fails
        out.write_bytes(saved)
        raise OSError(errno.ENOSPC, "No space left on device", str(state_dir / "last.keras"))

    monkeypatch.setattr(Deblurrer, "fit", full_disk)  # what is decided before training is what is tested
    assert main(argv) == 2  # no state folder: maybe a finished run's
    assert "(a run that finished?)" in capsys.readouterr().err
    (state_dir / "notes.txt").parent.mkdir()
    (state_dir / "notes.txt").write_text("mine")
    assert main(argv) == 2  # a folder with other files: a finished run leaves those
    assert "(a run that finished?)" in capsys.readouterr().err
    assert out.read_bytes() == saved
    (state_dir / "notes.txt").unlink()
    assert main(argv) == 1  # emptied by the stopped write: that run's epoch 1, started afresh
    printed = capsys.readouterr()
    assert "the run stopped while saving its first one" in printed.out
    assert printed.err == (
        f"blurkit train: error: [Errno 28] No space left on device: '{state_dir / 'last.keras'}'; the run stopped "
        f"while saving its first training state: {out} holds epoch 1 (the run is not finished), and the same "
        "command with --resume starts the run afresh\n")


def test_a_finished_one_epoch_run_without_validation_is_not_taken_for_a_stopped_one(photos, tmp_path, capsys):
    """Review of 2026-12-08, A: a finished 1-epoch run's model, without validation, recorded what a stopped run's
    epoch 1 did, and an empty state folder (a job script's ``mkdir -p``) made --resume replace it, saying the
    run "stopped while saving its first one". A finished run's model now records its weights_epoch."""
    out = tmp_path / "m.keras"
    argv = ["train", str(photos), *TRAIN, "--val-split", "0", "-o", str(out), "-q"]
    assert main([*argv[:-1], "--epochs", "1", "-q"]) == 0
    assert Deblurrer.read_metadata(out)["training"]["weights_epoch"] == 1
    saved = out.read_bytes()
    (tmp_path / "m.resume").mkdir()
    capsys.readouterr()
    assert main([*argv, "--epochs", "3", "--resume"]) == 2
    assert "(a run that finished?)" in capsys.readouterr().err
    assert out.read_bytes() == saved


def test_a_checkpoint_of_a_running_run_needs_no_state_folder(photos, tmp_path, monkeypatch, capsys):
    """Review of 2026-12-08, B: a stop before the state folder was made (a full disk refuses the mkdir) left a
    run refused on every restart; a checkpoint written while its run trains now says so ("running")."""
    out = tmp_path / "m.keras"
    d = Deblurrer(model="unet", model_options=TINY, patch_size=16, batch_size=2)
    d.training = {"data": str(photos), "train_items": 4, "validation_items": 0, "epochs": 1, "steps_per_epoch": 1,
                  "batch_size": 2, "patch_size": 16, "patches_per_image": 4, "loss": "mse",
                  "learning_rate": 0.001, "seed": 0, "validation": None, "validation_split": 0.0,
                  "early_stopping": None, "reduce_lr": True, "running": True}  # the Recorder's checkpoint
    d.history = {"loss": [0.03], "psnr": [15.0], "ssim": [0.5], "learning_rate": [0.001]}
    d.save(out)

    def stopped(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Deblurrer, "fit", stopped)  # what is decided before training is what is tested
    assert not (tmp_path / "m.resume").exists()
    assert main(["train", str(photos), *TRAIN, "--val-split", "0", "-o", str(out), "--resume"]) == 130
    assert "the run stopped while saving its first one" in capsys.readouterr().out


def test_the_recorders_checkpoints_say_the_run_is_running(photos, tmp_path):
    d = Deblurrer(model="unet", model_options=TINY, patch_size=16, batch_size=2)
    d.fit(str(photos), epochs=1, steps_per_epoch=1, validation_split=0, verbose=0, checkpoint=tmp_path / "c.keras")
    assert Deblurrer.read_metadata(tmp_path / "c.keras")["training"]["running"] is True
    assert "running" not in d.training

"""The ``train``, ``deblur`` and ``evaluate`` commands, run through ``blurkit.cli.main.main``."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.cli import _common as common
from blurkit.cli.main import main
from blurkit.data.io import read_image, write_image
from helpers import finish, levels, start

TINY_TRAIN = ["--model-option", "width=4", "--model-option", "depth=1", "--model-option", "blocks=1",
              "--epochs", "1", "--steps-per-epoch", "2", "--patch-size", "32", "--batch-size", "2"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    for name, img in [("astronaut.png", data.astronaut()), ("cat.jpg", data.chelsea()),
                      ("coffee.png", data.coffee()), ("sub/camera.png", data.camera())]:
        write_image(root / name, cv2.resize(img, (64, 48), interpolation=cv2.INTER_AREA))
    return root


@pytest.fixture(scope="module")
def model(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "tiny.keras"
    assert main(["train", str(photos), *TINY_TRAIN, "-o", str(out), "--quiet"]) == 0
    return out


def _error(capsys, argv, *names):
    """Run a command that must fail: exit status 2 and one line on stderr naming each of ``names``."""
    capsys.readouterr()
    assert main(argv) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "img/s]" not in ln]  # no progress bars
    assert len(lines) == 1, lines
    err = lines[0]
    assert err.startswith(f"blurkit {argv[0]}: error: ")
    for name in names:
        assert str(name) in err
    return err


# ------------------------------------------------------------------------------------------ train
def test_train_writes_model_and_curves(photos, tmp_path, capsys):
    out = tmp_path / "models" / "m.keras"
    assert main(["train", str(photos), *TINY_TRAIN, "--sigma", "0.5:3", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"saved {out}: epoch 1 of 1" in printed and "curves:" in printed
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 1000
    from blurkit import Deblurrer

    meta = Deblurrer.read_metadata(out)
    assert meta["model"]["config"] == {"width": 4, "depth": 1, "blocks": 1, "channels": 3}
    assert meta["blur"]["config"]["sigma"] == [0.5, 3.0]
    assert {"loss", "val_loss", "psnr", "val_psnr"} <= set(meta["history"])
    assert meta["training"]["steps_per_epoch"] == 2 and meta["facade"]["patch_size"] == 32
    assert sorted(os.listdir(out.parent)) == ["m.keras", "m.png"]


def test_train_shows_a_progress_bar_only_in_a_terminal(photos, tmp_path, monkeypatch):
    """Redirected to a file, Keras' bar (redrawn with carriage returns and colour codes, about 5 kB a second)
    becomes one line per epoch (verbose=2); a terminal keeps the bar."""
    import io

    from blurkit import Deblurrer

    seen = []

    def fit(self, data, **kw):
        seen.append(kw["verbose"])
        raise ValueError("stop here")

    monkeypatch.setattr(Deblurrer, "fit", fit)
    monkeypatch.delenv("NO_COLOR", raising=False)
    # a terminal that asks for plain text (https://no-color.org; Emacs' shell is TERM=dumb) gets the lines too:
    # the bar ignored both (colour codes, backspaces and carriage returns a screen reader reads out)
    for tty, env, verbose in ((False, {}, 2), (True, {}, "auto"), (True, {"NO_COLOR": "1"}, 2),
                              (True, {"TERM": "dumb"}, 2)):
        monkeypatch.setenv("TERM", "xterm-256color")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        out = io.StringIO()
        out.isatty = lambda tty=tty: tty
        monkeypatch.setattr(sys, "stdout", out)
        assert main(["train", str(photos), *TINY_TRAIN, "-o", str(tmp_path / "m.keras")]) == 2
        assert seen[-1] == verbose, env
        monkeypatch.delenv("NO_COLOR", raising=False)
    assert main(["train", str(photos), *TINY_TRAIN, "-o", str(tmp_path / "m.keras"), "--quiet"]) == 2
    assert seen[-1] == 0


def test_train_summary_names_the_saved_epoch_and_an_early_stop(tmp_path, monkeypatch):
    """The closing line gives the saved model's epoch and validation PSNR (it gave the last epoch's, while the
    file held an earlier, better one) and says when early stopping ended the run."""
    from types import SimpleNamespace

    from blurkit import Deblurrer
    from blurkit.cli.train import _summary

    saved = {"history": {"loss": [0.2, 0.1]}, "validation": {"psnr": 25.46}}
    monkeypatch.setattr(Deblurrer, "read_metadata", staticmethod(lambda path: saved))
    d = SimpleNamespace(training={"epochs": 4}, validation={"psnr": 25.17})  # the last epoch's scores
    out = tmp_path / "m.keras"
    assert _summary(d, out, 4, None, False) == (f"saved {out}: epoch 2 of 4, the best validation loss, "
                                                "validation PSNR 25.46 dB")
    assert _summary(d, out, 8, 2, False).splitlines()[0] == ("stopped early after epoch 4 of 8: no better "
                                                             "validation loss for 2 epochs")
    assert len(_summary(d, out, 8, 2, True).splitlines()) == 1  # a time-limit pause is not an early stop
    d.validation = {}  # no validation: early stopping watched the training loss
    assert "no better training loss for 2 epochs" in _summary(d, out, 8, 2, False)
    # paused by --time-limit: "epoch 2 of 2" read as a finished run
    d.training = {"epochs": 2}
    assert _summary(d, out, 8, None, True) == f"saved {out}: epoch 2 of 8, validation PSNR 25.46 dB"
    # early stopping put epoch 1's weights back into a file whose history has 3 epochs: "epoch 3 of 3" it said
    saved.update(history={"loss": [0.2, 0.3, 0.4]}, training={"weights_epoch": 1})
    d.training = {"epochs": 3}
    assert _summary(d, out, 8, None, False).startswith(f"saved {out}: epoch 1 of 3, the best training loss")


def test_train_stops_on_a_diverged_loss_and_says_what_is_kept(photos, tmp_path, monkeypatch, capsys):
    """A NaN loss was trained on, saved and reported as a success (exit 0); the run now ends with exit status
    1, the error, what it leaves, and the curves up to that epoch."""
    from blurkit.deblurrer import Deblurrer, TrainingDivergedError

    out = tmp_path / "m.keras"

    def diverges(self, *args, **kwargs):
        self.history = {"loss": [0.1, float("nan")]}
        out.write_bytes(b"epoch 1")  # the checkpoint of the last finite epoch
        raise TrainingDivergedError("training diverged: the loss of epoch 2 is nan")

    monkeypatch.setattr(Deblurrer, "fit", diverges)
    capsys.readouterr()
    assert main(["train", str(photos), *TINY_TRAIN, "-o", str(out)]) == 1
    printed = capsys.readouterr()
    assert printed.err.strip().endswith(f"blurkit train: error: training diverged: the loss of epoch 2 is nan; {out} "
                                        "holds the best epoch before it")
    assert f"curves: {tmp_path / 'm.png'}" in printed.out and (tmp_path / "m.png").is_file()


def test_train_and_pairs_with_camera_file_degradations(photos, tmp_path):
    """``--blur-option noise=...``, ``quantize=true`` and ``jpeg=LOW:HIGH`` train on blurred inputs that are
    noisy, 8-bit and JPEG-compressed (recorded in the model file); make-pairs writes such pairs, whose JPEG
    grid ``blockiness`` sees."""
    from blurkit import Deblurrer
    from blurkit.presets.auto import BLOCK_THRESHOLD, blockiness

    out = tmp_path / "camera.keras"
    assert main(["train", str(photos), *TINY_TRAIN, "--sigma", "0.5:3", "--blur-option", "noise=0:0.02",
                 "--blur-option", "quantize=true", "--blur-option", "jpeg=50:95", "-o", str(out), "-q"]) == 0
    config = Deblurrer.read_metadata(out)["blur"]["config"]
    assert config["jpeg"] == [50, 95] and config["noise"] == [0.0, 0.02] and config["quantize"] is True
    big = tmp_path / "big"
    from skimage import data

    write_image(big / "astronaut.png", data.astronaut()[:128, :192])
    assert main(["make-pairs", str(big), str(tmp_path / "pairs"), "--sigma", "1.5", "--blur-option", "jpeg=30",
                 "--no-progress"]) == 0
    blurred = read_image(next((tmp_path / "pairs" / "blurred").iterdir()))
    plain = read_image(next((tmp_path / "pairs" / "sharp").iterdir()))
    assert blockiness(blurred) > BLOCK_THRESHOLD > blockiness(plain)


def test_train_on_pairs_without_validation(photos, tmp_path):
    from blurkit.data.pairs import make_pairs

    make_pairs(photos, tmp_path / "pairs", blur_options={"sigma": 1.5}, progress=False)
    out, curves = tmp_path / "p.keras", tmp_path / "curves" / "c.png"
    argv = ["train", "--pairs", str(tmp_path / "pairs" / "blurred"), str(tmp_path / "pairs" / "sharp"),
            *TINY_TRAIN, "--val-split", "0", "-o", str(out), "--curves", str(curves), "-q"]
    assert main(argv) == 0
    assert out.is_file() and curves.is_file()
    # the model records the blur that made its pairs (from their manifest), not the default Gaussian
    assert Deblurrer.read_metadata(out)["blur"]["config"]["sigma"] == 1.5


def test_train_errors(photos, tmp_path, capsys):
    _error(capsys, ["train", str(tmp_path / "missing"), "-o", str(tmp_path / "m.keras")], tmp_path / "missing")
    _error(capsys, ["train", str(photos), "-o", str(tmp_path / "m.h5")], tmp_path / "m.h5")
    _error(capsys, ["train", "-o", str(tmp_path / "m.keras")])
    _error(capsys, ["train", str(photos), "--model-option", "width", "-o", str(tmp_path / "m.keras")], "width")
    _error(capsys, ["train", str(photos), "--model", "no-such-model", "-o", str(tmp_path / "m.keras")],
           "no-such-model")
    (tmp_path / "empty").mkdir()
    _error(capsys, ["train", str(tmp_path / "empty"), *TINY_TRAIN, "-o", str(tmp_path / "m.keras")],
           tmp_path / "empty")
    # nonsense values and unwritable outputs are refused before any training, naming the argument
    m = str(tmp_path / "m.keras")
    for bad, name in ((["--epochs", "0"], "--epochs"), (["--steps-per-epoch", "0"], "--steps-per-epoch"),
                      (["--lr", "-1"], "--lr"), (["--lr", "inf"], "--lr"), (["--time-limit", "0"], "--time-limit"),
                      (["--sigma", "abc"], "--sigma: expected a number"), (["--sigma", "1:2:3"], "--sigma: bad range '1:2:3'"),
                      (["--patch-size", "8"], "patch_size must be at least 11"),
                      (["--patch-size", "100000"], "more than a TensorFlow tensor holds"),
                      (["--val-split", "1.0"], "--val-split"), (["--val-split", "-0.1"], "--val-split"),
                      (["--early-stopping", "0"], "--early-stopping"),
                      # a split of DATA with validation photos given: one of them is not what the user thinks
                      (["--validation", str(photos), "--val-split", "0.2"], "--val-split 0.2 holds out part of DATA")):
        _error(capsys, ["train", str(photos), *TINY_TRAIN, *bad, "-o", m], name)
    err = _error(capsys, ["train", str(photos), *TINY_TRAIN, "--model-option", "foo=1", "-o", m], "'foo'")
    assert "--model unet" in err and "model 'unet' takes no option 'foo'; its options: channels, width" in err
    err = _error(capsys, ["train", str(photos), *TINY_TRAIN, "--blur", "motion", "--sigma", "2", "-o", m], "'sigma'")
    assert "--blur motion" in err
    (tmp_path / "afile").write_text("x")
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "-o", str(tmp_path / "afile" / "m.keras")],
           f"{tmp_path / 'afile'} is a file, not a folder")
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "--curves", str(tmp_path / "afile" / "c.png"), "-o", m],
           "--curves")
    # found after the training before: a traceback, exit 1, the state folder left behind
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "--curves", str(tmp_path / "c.txt"), "-o", m], "--curves", ".png")
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "--curves", m, "-o", m], "--curves", ".png")  # the model
    _error(capsys, ["train", "--pairs", str(photos), str(photos), *TINY_TRAIN, "--sigma", "2", "-o", m], "--pairs")
    # the curves among the training photos replaced a photo of that name and were trained on next time
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "-o", str(photos / "m.keras")],
           f"the training curves (OUT with .png) {photos / 'm.png'} would be written among the photos in {photos}")
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "--curves", str(photos / "sub" / "c.png"), "-o", m],
           "--curves", "would be written among the photos")
    assert not (photos / "m.png").exists() and not (photos / "sub" / "c.png").exists()
    # the model file in the checkpoint folder, named as the training state (the run deleted it at the end)
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "--checkpoint-dir", str(tmp_path / "ck"), "-o",
                    str(tmp_path / "ck" / "last.keras")], "training state is kept in")
    assert not list(tmp_path.rglob("*.keras")) and not list(tmp_path.glob("*.resume"))


def test_train_out_must_be_a_regular_file(photos, tmp_path, capsys):
    """A pipe is written into where a figure or scores go, not where a model goes (a zip archive, written
    whole): the save had renamed a file over the link, before any work was refused."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "m.keras").symlink_to(tmp_path / "fifo")
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "-o", str(tmp_path / "m.keras")],
           "m.keras: not a regular file (a pipe, a device or a descriptor)")
    assert (tmp_path / "m.keras").is_symlink()


def test_train_time_limit_pauses_and_resume_goes_on(photos, tmp_path, capsys):
    """--time-limit stops as a pause: the training state is kept and the same command with --resume goes on
    (it used to be marked finished, and --resume started afresh over OUT); --resume after a finished run is
    refused rather than training afresh over OUT."""
    out = tmp_path / "m.keras"
    argv = ["train", str(photos), *TINY_TRAIN[:6], "--epochs", "3", "--steps-per-epoch", "1", "--patch-size", "32",
            "--batch-size", "2", "-o", str(out)]
    capsys.readouterr()
    assert main([*argv, "--time-limit", "1e-9"]) == 0
    said = capsys.readouterr().out
    assert "--time-limit reached after epoch 1 of 3" in said and (tmp_path / "m.resume" / "last.keras").is_file()
    assert main([*argv, "--resume"]) == 0
    said = capsys.readouterr().out
    assert "resuming from" in said and "--time-limit" not in said and not (tmp_path / "m.resume").exists()
    assert len(Deblurrer.read_metadata(out)["history"]["loss"]) >= 1 and out.with_suffix(".png").is_file()
    _error(capsys, [*argv, "--resume"], "--resume: no saved training state", "drop --resume")


# ----------------------------------------------------------------------------------------- deblur
def test_deblur_folder_keeps_names_and_formats(model, photos, tmp_path, capsys):
    src = tmp_path / "in"
    for p in photos.rglob("*.*"):
        (src / p.relative_to(photos)).parent.mkdir(parents=True, exist_ok=True)
        (src / p.relative_to(photos)).write_bytes(p.read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG this is not really a png")
    out = tmp_path / "out"
    assert main(["deblur", str(model), str(src), "-o", str(out), "-q"]) == 3  # broken.png failed
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and captured.err.count("failed:") == 1
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["astronaut.png", "cat.jpg", "coffee.png", "sub/camera.png"]
    assert (out / "cat.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # a real JPEG
    assert (out / "astronaut.png").read_bytes()[:4] == b"\x89PNG"
    d = Deblurrer.load(model)
    for name in names:
        a, b = read_image(src / name), read_image(out / name)
        assert a.shape == b.shape and a.dtype == b.dtype
        want = d.predict(a)
        assert (want != a).any()  # the model changes the photo, so the values below show its restoration
        if name.endswith(".png"):
            assert (b == want).all(), name  # lossless: the restoration, to the last bit
        else:  # JPEG (quality 95): near the restoration, nearer than the photo is
            assert levels(b, want) < min(1.5, levels(a, want)), name
    assert read_image(out / "sub/camera.png").ndim == 2  # grayscale stays grayscale

    stamps = {n: (out / n).stat().st_mtime_ns for n in names}
    assert main(["deblur", str(model), str(src), "-o", str(out), "--skip-existing"]) == 3
    printed = capsys.readouterr()
    assert "done 0, skipped 4" in printed.out and "broken.png" in printed.err
    assert {n: (out / n).stat().st_mtime_ns for n in names} == stamps


def test_deblur_format_and_quality(model, photos, tmp_path, capsys):
    out = tmp_path / "png"
    assert main(["deblur", str(model), str(photos), "-o", str(out), "--format", "png", "-q"]) == 0
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["astronaut.png", "cat.png", "coffee.png", "sub/camera.png"]
    assert (out / "cat.png").read_bytes()[:4] == b"\x89PNG"  # the JPEG's restoration, not compressed again
    direct = tmp_path / "direct.png"
    assert main(["deblur", str(model), str(photos / "cat.jpg"), "-o", str(direct), "-q"]) == 0
    assert (out / "cat.png").read_bytes() == direct.read_bytes()
    sizes = {}
    for q in (40, 95):
        folder = tmp_path / f"q{q}"
        assert main(["deblur", str(model), str(photos / "cat.jpg"), "-o", str(folder), "--format", "jpeg",
                     "--quality", str(q), "-q"]) == 0
        sizes[q] = (folder / "cat.jpg").stat().st_size
    assert sizes[40] < sizes[95]
    assert main(["deblur", str(model), str(photos / "cat.jpg"), "-o", str(tmp_path / "q95.jpg"), "-q"]) == 0
    assert (tmp_path / "q95" / "cat.jpg").read_bytes() == (tmp_path / "q95.jpg").read_bytes()  # 95: the default
    twins = tmp_path / "twins"
    write_image(twins / "a.jpg", read_image(photos / "cat.jpg"))
    write_image(twins / "a.png", read_image(photos / "cat.jpg"))
    _error(capsys, ["deblur", str(model), str(twins), "-o", str(tmp_path / "t"), "--format", "png"],
           "a.jpg", "a.png", "leave --format out")
    assert not (tmp_path / "t").exists()  # refused before any work
    other = tmp_path / "other"
    write_image(other / "a.png", read_image(photos / "cat.jpg"))
    _error(capsys, ["deblur", str(model), str(twins), str(other), "-o", str(tmp_path / "t")],
           twins / "a.png", other / "a.png", "separate folders")  # two folders into one: the same names
    assert not (tmp_path / "t").exists()
    _error(capsys, ["deblur", str(model), str(photos / "cat.jpg"), "-o", str(tmp_path / "x.jpg"), "--format", "png"],
           "--format", "x.jpg")
    _error(capsys, ["deblur", str(model), str(photos / "cat.jpg"), "-o", str(tmp_path / "y"), "--quality", "0"],
           "--quality")


def test_deblur_heic_photos_become_jpegs(model, photos, tmp_path, capsys):
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image

    from blurkit import Deblurrer

    pillow_heif.register_heif_opener()
    src = tmp_path / "phone"
    src.mkdir()
    Image.fromarray(read_image(photos / "cat.jpg")).save(src / "IMG_0001.HEIC", "HEIF", quality=95)
    assert main(["deblur", str(model), str(src), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["IMG_0001.jpg"]  # blurkit cannot write HEIC
    expected = Deblurrer.load(model).predict(read_image(src / "IMG_0001.HEIC"))
    assert levels(read_image(tmp_path / "out" / "IMG_0001.jpg"), expected) < 2  # JPEG at quality 95
    _error(capsys, ["deblur", str(model), str(src / "IMG_0001.HEIC"), "-o", str(tmp_path / "x.heic")],
           "x.heic", "cannot write")
    write_image(src / "IMG_0001.jpg", read_image(photos / "cat.jpg"))  # the same photo exported as JPEG
    _error(capsys, ["deblur", str(model), str(src), "-o", str(tmp_path / "both")],
           "IMG_0001.HEIC", "IMG_0001.jpg", "rename one")
    assert not (tmp_path / "both").exists()


def test_progress_in_a_log_is_a_plain_line_now_and_then(model, photos, tmp_path, capsys, monkeypatch):
    """Off a terminal the commands drew no bar (its frames joined by carriage returns), so a long run printed
    nothing until its summary, and CI services stop a job silent for ten minutes. Now a plain line on stderr
    every 30 s at most (here every update), none for a run shorter than that."""
    from blurkit import _progress

    capsys.readouterr()
    assert main(["deblur", str(model), str(photos), "-o", str(tmp_path / "quick")]) == 0
    assert capsys.readouterr().err == ""  # a run shorter than the interval: no line
    monkeypatch.setattr(_progress, "LOG_INTERVAL", 0.0)
    assert main(["deblur", str(model), str(photos), "-o", str(tmp_path / "slow")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert len(lines) >= 2 and all(line.startswith("deblur: ") for line in lines), lines
    assert "4/4" in lines[-1] and "100%" in lines[-1]
    capsys.readouterr()
    assert main(["evaluate", str(model), str(photos), "--max-images", "2"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and [ln for ln in err.splitlines() if ln.startswith("evaluate: ")][-1].count("2/2") == 1


def test_deblur_warns_when_the_free_memory_is_short_and_threads_can_be_limited(model, photos, tmp_path, capsys,
                                                                                monkeypatch):
    """On a 4 GB laptop a deblur at the default tile size (about 1.9 GB) was killed by the system, or aborted in
    TensorFlow, without a word from blurkit; it now says so first and names a tile size that fits. And
    ``--threads`` limits TensorFlow's and OpenCV's threads (nothing did: both cores were always busy)."""
    import cv2

    import blurkit.cli.deblur as deblur_cmd

    monkeypatch.setattr(deblur_cmd, "_available_memory", lambda: int(1.5e9))
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "TF_CPU_ALLOCATOR_USE_BFC"):
        monkeypatch.delenv(var, raising=False)
    threads = cv2.getNumThreads()
    try:
        capsys.readouterr()
        assert main(["deblur", str(model), str(photos), "-o", str(tmp_path / "o"), "--tile-size", "1536",
                     "--threads", "1"]) == 0
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(threads)
    err = capsys.readouterr().err
    assert err.count("warning: deblurring at --tile-size 1536 takes about 1.9 GB of memory, and 1.5 GB is "
                     "available: --tile-size 896 takes about 1.3 GB") == 1
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == os.environ["TF_NUM_INTEROP_THREADS"] == "1"
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "true"  # set before TensorFlow starts (a quarter of the CPU)
    monkeypatch.setattr(deblur_cmd, "_available_memory", lambda: int(8e9))
    assert main(["deblur", str(model), str(photos), "-o", str(tmp_path / "p")]) == 0
    assert "memory" not in capsys.readouterr().err
    _error(capsys, ["deblur", str(model), str(photos), "-o", str(tmp_path / "q"), "--threads", "0"], "--threads")


def test_the_free_memory_counts_a_containers_limit(tmp_path):
    """A container sees its host's MemAvailable and is killed at its own memory limit: the check read only
    the first, so a 2-GB container on a large host was never warned."""
    from blurkit.cli.deblur import _available_memory

    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text("MemTotal: 65000000 kB\nMemAvailable: 8000000 kB\n")
    assert _available_memory(str(tmp_path)) == 8000000 * 1024  # no cgroup files: the host's
    v2 = tmp_path / "sys" / "fs" / "cgroup"
    v2.mkdir(parents=True)
    (v2 / "memory.max").write_text("max\n")
    (v2 / "memory.current").write_text("500000000\n")
    assert _available_memory(str(tmp_path)) == 8000000 * 1024  # no limit
    (v2 / "memory.max").write_text("2000000000\n")
    assert _available_memory(str(tmp_path)) == 1500000000  # the container's limit, less what it uses
    (v2 / "memory.max").unlink()
    v1 = v2 / "memory"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text("1000000000\n")
    (v1 / "memory.usage_in_bytes").write_text("300000000\n")
    assert _available_memory(str(tmp_path)) == 700000000
    (v1 / "memory.limit_in_bytes").write_text(f"{2**63 - 4096}\n")  # v1's "no limit"
    assert _available_memory(str(tmp_path)) == 8000000 * 1024
    assert _available_memory(str(tmp_path / "nothing")) is None


def test_deblur_one_file(model, photos, tmp_path):
    out = tmp_path / "x.png"
    assert main(["deblur", str(model), str(photos / "cat.jpg"), "-o", str(out), "-q"]) == 0
    assert out.is_file() and read_image(out).shape == read_image(photos / "cat.jpg").shape
    assert sorted(os.listdir(tmp_path)) == ["x.png"]
    folder = tmp_path / "outdir"
    assert main(["deblur", str(model), str(photos / "cat.jpg"), "--suffix", "_sharp", "-o", str(folder),
                 "--tile-size", "32", "-q"]) == 0
    assert sorted(os.listdir(folder)) == ["cat_sharp.jpg"]


def test_deblur_keeps_the_colour_profile_and_exif(model, photos, tmp_path):
    from PIL import Image, ImageCms

    from blurkit.data.metadata import read_metadata

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "ACME", 6
    src = tmp_path / "phone.jpg"
    Image.fromarray(read_image(photos / "cat.jpg")).save(src, icc_profile=srgb, exif=exif.tobytes())
    assert main(["deblur", str(model), str(src), "-o", str(tmp_path / "sharp.jpg"), "-q"]) == 0
    kept = Image.open(tmp_path / "sharp.jpg")
    assert kept.info["icc_profile"] == srgb and dict(kept.getexif()) == {0x010F: "ACME", 0x0112: 1}
    assert kept.size == (48, 64)  # turned upright, as the orientation now says
    assert main(["deblur", str(model), str(src), "-o", str(tmp_path / "bare.jpg"), "--no-metadata", "-q"]) == 0
    assert not read_metadata(tmp_path / "bare.jpg")


def test_deblur_self_ensemble(model, photos, tmp_path, capsys):
    from blurkit import Deblurrer

    out = tmp_path / "x.png"
    assert main(["deblur", str(model), str(photos / "cat.jpg"), "-o", str(out), "--ensemble", "4", "-q"]) == 0
    expected = Deblurrer.load(model).predict(read_image(photos / "cat.jpg"), ensemble=4)
    assert (read_image(out) == expected).all()
    with pytest.raises(SystemExit):
        main(["deblur", str(model), str(photos / "cat.jpg"), "-o", str(out), "--ensemble", "3"])
    assert "--ensemble" in capsys.readouterr().err


def test_deblur_all_failed_is_an_error_status(model, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.jpg").write_text("nope")
    assert main(["deblur", str(model), str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"]) == 1


def test_deblur_errors(model, photos, tmp_path, capsys):
    missing = tmp_path / "missing.keras"
    _error(capsys, ["deblur", str(missing), str(photos), "-o", str(tmp_path / "o")], missing)
    fake = tmp_path / "fake.keras"
    fake.write_text("just some text")
    _error(capsys, ["deblur", str(fake), str(photos), "-o", str(tmp_path / "o")], fake)
    _error(capsys, ["deblur", str(model), str(tmp_path / "nope"), "-o", str(tmp_path / "o")], tmp_path / "nope")
    _error(capsys, ["deblur", str(model), str(photos / "cat.jpg"), "-o", str(tmp_path / "x.txt")], "x.txt")
    _error(capsys, ["deblur", str(model), str(photos), "-o", str(tmp_path / "x.png")], "x.png")
    _error(capsys, ["deblur", str(model), "-o", str(tmp_path / "o")])
    _error(capsys, ["deblur", str(model), str(tmp_path / "missing.png"), "-o", str(tmp_path / "o" / "x.png")],
           "no such file or folder")
    _error(capsys, ["deblur", "gaussian-v1", str(photos / "cat.jpg"), "-o", str(tmp_path / "o")],  # a preset
           "no such file or folder: gaussian-v1 (gaussian-v1 is a preset: --preset gaussian-v1)")
    exported = tmp_path / "exported"  # what `blurkit export` writes, given as the model
    exported.mkdir()
    (exported / "saved_model.pb").write_bytes(b"")
    _error(capsys, ["deblur", str(exported), str(photos / "cat.jpg"), "-o", str(tmp_path / "o" / "x.png")],
           f"{exported} is a SavedModel (blurkit export), not photos: deblur takes a .keras model file")
    (tmp_path / "afile").write_text("x")
    _error(capsys, ["deblur", str(model), str(photos), "-o", str(tmp_path / "afile")], "is a file, not a folder")
    _error(capsys, ["deblur", str(model), str(photos / "cat.jpg"), "-o", str(tmp_path / "afile" / "x.png")],
           "is a file, not a folder")
    assert sorted(os.listdir(tmp_path)) == ["afile", "exported", "fake.keras"]


def test_deblur_refuses_bad_arguments_before_any_work(model, photos, tmp_path, capsys, monkeypatch):
    """A --suffix naming a path (a crash, or files written outside --out), a model file after the inputs
    (read as an image, the photos restored with the default preset) and a --tile-size below 16 (0 was
    taken as no tiling) are usage errors naming them, before a model is loaded."""

    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(common, "load_deblurrer", no_model)
    out = tmp_path / "a" / "b" / "out"
    for suffix in ("_s/x", "/../../../ESCAPED", os.sep + "x", ".."):
        for src in (photos, photos / "cat.jpg"):
            _error(capsys, ["deblur", str(model), str(src), "-o", str(out), "--suffix", suffix],
                   "--suffix", suffix)
    for suffix in (":x", "_*", "a|b", "_\t"):  # names Windows refuses (":x" an NTFS stream), refused everywhere
        _error(capsys, ["deblur", str(model), str(photos), "-o", str(out), "--suffix", suffix],
               f"--suffix {suffix!r}", "cannot be in a file name on Windows")
    for argv in ([photos / "cat.jpg", model], [model, photos, model]):
        _error(capsys, ["deblur", *map(str, argv), "-o", str(out)], model, "MODEL comes first")
    for size in ("0", "-32", "8"):
        _error(capsys, ["deblur", str(model), str(photos), "-o", str(out), "--tile-size", size],
               f"--tile-size must be at least 16, got {size}")
    assert os.listdir(tmp_path) == []


def test_deblur_format_in_any_case_with_or_without_the_dot(model, photos, tmp_path):
    for fmt, name in (("PNG", "cat.png"), (".png", "cat.png"), (".JPEG", "cat.jpg"), ("Tif", "cat.tif")):
        out = tmp_path / fmt
        assert main(["deblur", str(model), str(photos / "cat.jpg"), "-o", str(out), "--format", fmt,
                     "-q"]) == 0
        assert os.listdir(out) == [name]


def test_deblur_asks_every_restorer_for_the_tile_bar_on_a_terminal(photos, tmp_path, monkeypatch, capsys):
    """On a terminal, ``predict`` is asked for its bar of a large photo's tiles whatever restores it: the
    per-photo presets (the default), ``--ensemble``, ``--sigma`` or one preset. The wrappers of the first
    three dropped it, so a 12-MP photo sat at "0img" for 20 s."""
    seen = []
    real = Deblurrer.predict

    def predict(self, image, *args, progress=False, **kwargs):
        seen.append(progress)
        return real(self, image, *args, progress=progress, **kwargs)

    monkeypatch.setattr(Deblurrer, "predict", predict)
    src = tmp_path / "p.png"
    write_image(src, read_image(photos / "coffee.png")[:64, :64])
    runs = [[], ["--ensemble", "2"], ["--sigma", "1.5"], ["--preset", "gaussian-v1"]]
    for i, extra in enumerate(runs):
        for terminal in (True, False):
            seen.clear()
            monkeypatch.setattr(sys.stderr, "isatty", lambda t=terminal: t)
            assert main(["deblur", str(src), "-o", str(tmp_path / f"o{i}{terminal:d}.png"), *extra]) == 0
            assert seen == [terminal], (extra, terminal)
    capsys.readouterr()


def test_an_unknown_preset_is_refused_before_tensorflow_is_imported(photos, tmp_path):
    """A preset name's typo is a usage error at once, not after TensorFlow's seconds of start-up."""
    code = ("import sys; from blurkit.cli.main import main; "
            f"rc = main(['deblur', {str(photos / 'cat.jpg')!r}, '-o', {str(tmp_path / 'o')!r}, '--preset', "
            "'gausian-v1']); print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["2", "False", "False"], proc.stderr
    assert "unknown preset 'gausian-v1'; did you mean 'gaussian-v1'?" in proc.stderr


def test_deblur_failure_lines_name_the_file_once(model, photos, tmp_path, capsys):
    """``failed: PATH: reason``, the file named once (the reason is kept apart from it), and a
    too-large image's reason names the command's --max-pixels, not read_image's max_pixels."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "trunc.jpg").write_bytes((photos / "cat.jpg").read_bytes()[:400])
    write_image(src / "fine.png", read_image(photos / "coffee.png"))
    capsys.readouterr()
    assert main(["deblur", str(model), str(src), "-o", str(tmp_path / "out"), "-q"]) == 3
    failed = [ln for ln in capsys.readouterr().err.splitlines() if "failed:" in ln]
    assert len(failed) == 1 and failed[0].startswith(f"  failed: {src / 'trunc.jpg'}: ")
    assert failed[0].count("trunc.jpg") == 1
    assert main(["deblur", str(model), str(src / "fine.png"), "-o", str(tmp_path / "big"),
                 "--max-pixels", "100", "-q"]) == 1
    failed = [ln for ln in capsys.readouterr().err.splitlines() if "failed:" in ln]
    assert len(failed) == 1 and failed[0].startswith(f"  failed: {src / 'fine.png'}: ")
    assert failed[0].count("fine.png") == 1
    assert "--max-pixels" in failed[0] and "max_pixels" not in failed[0] and "read_image" not in failed[0]


def test_deblur_interrupted_counts_only_the_images_restored(photos, tmp_path, capsys, monkeypatch):
    """Ctrl-C while the second photo is restored: the presets' summary counts the one photo restored."""
    import blurkit.presets

    class StoppedOnTheSecond:
        calls = 0

        def predict(self, image):
            StoppedOnTheSecond.calls += 1
            if StoppedOnTheSecond.calls == 2:
                raise KeyboardInterrupt
            return image

    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None, **_: StoppedOnTheSecond())
    monkeypatch.setattr(blurkit.presets, "choose_preset", lambda image: "gaussian-v1-noisy")
    capsys.readouterr()
    assert main(["deblur", str(photos), "-o", str(tmp_path / "out"), "--io-workers", "0"]) == 130
    printed = capsys.readouterr().out
    assert "done 1," in printed and "presets (auto): gaussian-v1-noisy for 1 image\n" in printed


def test_deblur_never_replaces_its_inputs(model, photos, tmp_path, capsys):
    """Outputs over the inputs are refused; an output folder inside the input folder is not read as input;
    outputs written beside the photos with --suffix are not restored again by the next run."""
    import shutil

    src = tmp_path / "photos"
    shutil.copytree(photos, src)
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    _error(capsys, ["deblur", str(model), str(src), "-o", str(src)], "is the input folder")
    _error(capsys, ["deblur", str(model), str(src / "cat.jpg"), "-o", str(src / "cat.jpg")], "would replace it")
    _error(capsys, ["deblur", str(model), str(src / "cat.jpg"), "-o", str(src)], "would replace it")
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before
    other = tmp_path / "other"
    shutil.copytree(photos, other)
    for _ in range(2):  # the second run must not restore the first run's outputs
        assert main(["deblur", str(model), str(src), "-o", str(src / "restored"), "-q"]) == 0
        assert main(["deblur", str(model), str(other), "-o", str(other), "--suffix", "_sharp", "-q"]) == 0
    restored = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.*") if p not in before)
    assert restored == ["restored/astronaut.png", "restored/cat.jpg", "restored/coffee.png",
                        "restored/sub/camera.png"]
    beside = sorted(p.relative_to(other).as_posix() for p in other.rglob("*_sharp*"))
    assert beside == ["astronaut_sharp.png", "cat_sharp.jpg", "coffee_sharp.png", "sub/camera_sharp.png"]
    assert all(p.read_bytes() == data for p, data in before.items())


def test_deblur_knows_an_input_under_another_name(model, photos, tmp_path, capsys, monkeypatch):
    """The guards compared names: on macOS and Windows `Photos` is the folder `photos` (and `A.PNG` the file
    `a.png`), and through a hard link, bind mount or FAT drive one file has two names; the restorations
    replaced the photos. Files and folders are now compared by identity."""
    import shutil

    from blurkit.cli import deblur

    src = tmp_path / "photos"
    shutil.copytree(photos, src)
    twin = tmp_path / "elsewhere" / "cat-link.jpg"
    twin.parent.mkdir()
    os.link(src / "cat.jpg", twin)  # one file, two names
    before = (src / "cat.jpg").read_bytes()
    _error(capsys, ["deblur", str(model), str(src / "cat.jpg"), "-o", str(twin)], "would replace it")
    _error(capsys, ["deblur", str(model), str(twin), "-o", str(src / "cat.jpg")], "would replace it")
    assert (src / "cat.jpg").read_bytes() == before
    # a folder under another name (what a case-insensitive file system does with `Photos`): identity alone
    real_ident = deblur._ident
    alias = tmp_path / "Photos-alias"
    alias.mkdir()

    def ident(path):
        return real_ident(src if Path(path).resolve() == alias.resolve() else path)

    monkeypatch.setattr(deblur, "_ident", ident)
    _error(capsys, ["deblur", str(model), str(src), "-o", str(alias)], "is the input folder")
    assert deblur._below(alias / "restored", src) == ("restored",)


def test_deblur_refuses_outputs_one_file_apart_only_in_letter_case(model, photos, tmp_path, capsys, monkeypatch):
    """in1/Photo.png and in2/photo.png were both written to OUT (`done 2`, exit 0): on macOS and Windows those
    names are one file, and one restoration silently replaced the other. Where the output's file system
    ignores case (a probe says), such names are a clash like equal ones."""
    import shutil


    one, two = tmp_path / "in1", tmp_path / "in2"
    one.mkdir(), two.mkdir()
    shutil.copy(photos / "astronaut.png", one / "Photo.png")
    shutil.copy(photos / "coffee.png", two / "photo.png")
    from blurkit.data import io as bio

    assert bio.case_blind(tmp_path / "out") is (tmp_path / "IN1").exists()  # the probe tells this one
    monkeypatch.setattr(bio, "case_blind", lambda folder: True)
    _error(capsys, ["deblur", str(model), str(one), str(two), "-o", str(tmp_path / "out")],
           "one file on this file system (it ignores letter case)")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    monkeypatch.setattr(bio, "case_blind", lambda folder: False)  # Linux' file systems: two files
    assert main(["deblur", str(model), str(one), str(two), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Photo.png", "photo.png"]


# --------------------------------------------------------------------------------------- evaluate
def test_evaluate_writes_json_and_figure(model, photos, tmp_path, capsys):
    js, fig = tmp_path / "s.json", tmp_path / "f.png"
    assert main(["evaluate", str(model), str(photos), "--json", str(js), "--figure", str(fig)]) == 0
    printed = capsys.readouterr().out
    assert "| model |" in printed and "| blurred input |" in printed and "gain:" in printed
    scores = json.loads(js.read_text())
    metrics = {"psnr", "ssim", "mse", "accuracy", "channel_accuracy"}
    assert set(scores["model"]) == metrics and set(scores["blurred"]) == metrics
    assert scores["images"] == 4 and len(scores["per_image"]) == 4
    assert fig.stat().st_size > 1000 and fig.read_bytes()[:4] == b"\x89PNG"
    assert main(["evaluate", str(model), str(photos), "--json", str(js), "--max-images", "2"]) == 0
    again = json.loads(js.read_text())
    assert again["images"] == 2
    assert again["per_image"] == scores["per_image"][:2]  # deterministic


def test_evaluate_crop_border(model, photos, tmp_path, capsys):
    """--crop-border N: the scores leave N px out on every side (said on the first line and in the JSON), the
    per-image scores those of Deblurrer.evaluate(crop_border=N); below 0 a usage error before any work."""
    from blurkit import Deblurrer

    js = tmp_path / "s.json"
    capsys.readouterr()
    assert main(["evaluate", str(model), str(photos), "--json", str(js), "--crop-border", "6"]) == 0
    assert ", 6 px border left out of the scores" in capsys.readouterr().out
    scores = json.loads(js.read_text())
    assert scores["crop_border"] == 6
    direct = Deblurrer.load(model).evaluate(photos, per_image=True, crop_border=6)
    assert [r["model"]["psnr"] for r in scores["per_image"]] == pytest.approx(
        [r["model"]["psnr"] for r in direct["per_image"]], abs=1e-6)
    assert main(["evaluate", str(model), str(photos), "--json", str(js)]) == 0
    assert json.loads(js.read_text())["per_image"][0]["model"] != scores["per_image"][0]["model"]
    _error(capsys, ["evaluate", str(model), str(photos), "--crop-border", "-1"], "--crop-border must be 0 or more")


def test_evaluate_skips_unreadable_files(model, photos, tmp_path, capsys):
    """Like deblur and fit, evaluate reports an unreadable file and scores the others."""
    import shutil

    src = tmp_path / "photos"
    shutil.copytree(photos, src)
    (src / "aaa-fake.png").write_text("not an image")  # sorted first: the figure must not use its index
    js, fig = tmp_path / "s.json", tmp_path / "f.png"
    capsys.readouterr()
    # exit status 3, as deblur's when some files fail: the scores leave an image out (0 promises every one)
    assert main(["evaluate", str(model), str(src), "--json", str(js), "--figure", str(fig)]) == 3
    err = capsys.readouterr().err
    assert err.count("aaa-fake.png") == 1 and "skipped" in err
    scores = json.loads(js.read_text())
    assert scores["images"] == 4 and [r["index"] for r in scores["per_image"]] == [1, 2, 3, 4]
    assert [Path(r["image"]).name for r in scores["skipped"]] == ["aaa-fake.png"]
    assert fig.stat().st_size > 1000


def test_evaluate_json_to_stdout_a_pipe_or_a_link(model, photos, tmp_path, capsys):
    """``--json -`` puts the JSON alone on stdout (the table goes to stderr): it wrote a file named '-'. A pipe
    (a FIFO, a shell's ``>(jq .)``) or a link to one (``/dev/stdout``) is written into, not replaced: the
    atomic write renamed a file over it (as root, ``--json /dev/stdout`` replaced the machine's /dev/stdout)."""
    import stat
    import threading

    capsys.readouterr()
    assert main(["evaluate", str(model), str(photos), "--max-images", "1", "--json", "-"]) == 0
    printed = capsys.readouterr()
    scores = json.loads(printed.out)  # nothing else on stdout
    assert scores["images"] == 1 and "| model |" in printed.err and "gain:" in printed.err
    assert not (Path.cwd() / "-").exists()

    fifo = tmp_path / "scores.fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.json"
    link.symlink_to(fifo)
    for target in (fifo, link):
        got = []
        reader = threading.Thread(target=lambda got=got: got.append(fifo.read_text()), daemon=True)
        reader.start()
        assert main(["evaluate", str(model), str(photos), "--max-images", "1", "--json", str(target)]) == 0
        reader.join(60)
        assert json.loads(got[0])["images"] == 1, target
        assert stat.S_ISFIFO(os.stat(fifo).st_mode) and link.is_symlink()  # both still what they were
    assert sorted(os.listdir(tmp_path)) == ["link.json", "scores.fifo"]  # no temporary file left


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
def test_evaluate_json_to_a_name_of_stdout_is_json_alone_on_stdout(model, photos, tmp_path, capfd):
    """``--json /dev/stdout`` is ``--json -``: the table goes to stderr (it was mixed into the JSON)."""
    link = tmp_path / "stdout.json"
    link.symlink_to("/proc/self/fd/1")
    assert main(["evaluate", str(model), str(photos), "--max-images", "1", "--json", str(link)]) == 0
    printed = capfd.readouterr()
    assert json.loads(printed.out)["images"] == 1 and "| model |" in printed.err
    assert link.is_symlink()


def test_the_cli_leaves_no_progress_mode_behind_and_runs_without_stderr(model, photos, tmp_path, monkeypatch):
    """Off a terminal a command turns the bars into log lines: that stayed on for the process (a later
    ``predict(progress=True)`` in a notebook drew no tile bar). And with no stderr at all (``2>&-``, pythonw)
    the log lines' writer failed on None."""
    from blurkit import _progress

    assert main(["deblur", str(model), str(photos), "-o", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["deblur", str(model), str(photos), "-o", str(tmp_path / "b")]) == 0
    assert not _progress.logging()
    monkeypatch.setattr(_progress, "LOG_INTERVAL", 0.0)
    monkeypatch.setattr(sys, "stderr", None)
    assert main(["deblur", str(model), str(photos), "-o", str(tmp_path / "c")]) == 0
    assert len(list((tmp_path / "c").rglob("*.*"))) == 4


def test_evaluate_fails_with_status_1_when_no_image_can_be_read(model, tmp_path, capsys):
    """Not a usage error (2): the work failed, as deblur, make-pairs and shard say it (1)."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.png").write_text("not an image")
    capsys.readouterr()
    assert main(["evaluate", str(model), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("blurkit evaluate: error: none of the 1 images can be read") and "a.png" in err


def test_train_init_fine_tunes_a_model_from_its_own_weights(model, photos, tmp_path, capsys):
    """--init FILE trains that model further: its architecture and weights (at a learning rate of 1e-12 they
    stay where they were, not a new model's random ones), its blur with --sigma set, its settings where no
    flag gives one; a history of this run alone, and a training record naming the file by its SHA-256."""
    import hashlib

    base = Deblurrer.load(model)
    out = tmp_path / "ft.keras"
    argv = ["train", str(photos), "--init", str(model), "--sigma", "1.5", "--epochs", "1", "--steps-per-epoch",
            "1", "--lr", "1e-12", "-o", str(out), "--quiet"]
    assert main(argv) == 0
    ft = Deblurrer.load(out)
    assert [w.shape for w in ft.model.weights] == [w.shape for w in base.model.weights]
    for a, b in zip(ft.model.get_weights(), base.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert ft.model_spec == base.model_spec
    assert ft.blur.get_config() == {**base.blur.get_config(), "sigma": 1.5}
    assert (ft.patch_size, ft.batch_size, ft.loss) == (base.patch_size, base.batch_size, base.loss) == (32, 2, "mse")
    assert ft.learning_rate == pytest.approx(1e-12) and len(ft.history["loss"]) == 1
    assert ft.training["init"] == {"file": str(model), "sha256": hashlib.sha256(model.read_bytes()).hexdigest()}
    assert "init" not in base.training  # a model built by `train` started from nothing
    assert main([*argv[:-5], "--lr", "1e-3", "-o", str(tmp_path / "moved.keras"), "--quiet"]) == 0
    moved = Deblurrer.load(tmp_path / "moved.keras")  # trained: the weights moved from the file's
    assert not all(np.allclose(a, b, atol=1e-6)
                   for a, b in zip(moved.model.get_weights(), base.model.get_weights(), strict=True))


def test_train_init_resumes_with_its_init_and_says_so_without(model, photos, tmp_path, capsys):
    """A paused --init run resumes with the same command, its record still naming the file it started from
    (the state's); resumed without --init it is refused by name (it said "different batch_size, model,
    patch_size" and nothing of --init, or, given those flags, resumed and dropped the record)."""
    out = tmp_path / "ft.keras"
    again = ["train", str(photos), "--init", str(model), "--epochs", "2", "--steps-per-epoch", "1", "-o", str(out),
             "--quiet"]
    assert main([*again, "--time-limit", "1e-6"]) == 0  # paused after its first epoch
    state = tmp_path / "ft.resume" / "last.keras"
    assert state.is_file() and Deblurrer.read_metadata(state)["training"]["init"]["file"] == str(model)
    _error(capsys, ["train", str(photos), *TINY_TRAIN, "-o", str(out), "--resume"],
           f"the run in {tmp_path / 'ft.resume'} was started with --init {model}: give it again to resume that run")
    assert main([*again, "--resume"]) == 0
    ft = Deblurrer.load(out)
    assert ft.training["resumed_at_epoch"] == 1 and len(ft.history["loss"]) == 2
    assert ft.training["init"]["file"] == str(model) and not state.exists()


def test_train_init_a_preset_takes_its_settings(photos, tmp_path, monkeypatch):
    """--init gaussian-v1: the preset's architecture, blur, loss, learning rate and patch and batch sizes
    where no flag gives one; flags win; its record names the preset (no training here: the wiener_unet takes
    tens of seconds to trace)."""
    from blurkit.cli import train as train_cmd
    from blurkit.cli.main import build_parser
    from blurkit.presets import SHA256

    def made(*flags: str) -> Deblurrer:
        args = build_parser().parse_args(["train", str(photos), "--init", "gaussian-v1", *flags])
        return train_cmd._fine_tuned(args, {"sigma": 2.0} if "--sigma" in flags else {})

    preset = Deblurrer.from_preset("gaussian-v1")
    d = made()
    assert d.model_spec == preset.model_spec and repr(d).startswith("Deblurrer(model='wiener_unet'")
    assert d.blur.get_config() == preset.blur.get_config() and d.blur.get_config()["quantize"] is True
    assert (d.loss, d.learning_rate, d.patch_size, d.batch_size, d.patches_per_image) == (
        "psnr_loss", pytest.approx(2e-4), 160, 4, 4)
    assert d.history == {} and d._loaded["preset"] == "gaussian-v1" and d._loaded["sha256"] == SHA256["gaussian-v1"]
    d = made("--lr", "1e-5", "--patch-size", "64", "--batch-size", "2", "--loss", "l1", "--sigma", "2")
    assert (d.loss, d.learning_rate, d.patch_size, d.batch_size) == ("l1", pytest.approx(1e-5), 64, 2)
    assert d.blur.get_config() == {**preset.blur.get_config(), "sigma": 2.0}


def test_train_init_errors(model, photos, tmp_path, capsys):
    """--init names the architecture: --model, --model-option and --channels are refused with it, before any
    work; a missing file is named."""
    out = str(tmp_path / "m.keras")
    _error(capsys, ["train", str(photos), "--init", str(model), "--model", "unet", "-o", out],
           "--model builds a new model; --init", "drop one or the other")
    _error(capsys, ["train", str(photos), "--init", "gaussian-v1", "--model-option", "width=8", "--channels", "1",
                    "-o", out], "--model-option and --channels build a new model")
    _error(capsys, ["train", str(photos), "--init", str(tmp_path / "none.keras"), "-o", out],
           "model file not found", "none.keras")
    assert not Path(out).exists()


def test_a_preset_given_where_a_model_builder_or_file_goes_is_named(photos, tmp_path, capsys):
    """``train --model gaussian-v1`` said "unknown model" with the builders' list; ``demo --model gaussian-v1``
    said the file was not found. Both now say it is a preset, and what to do."""
    err = _error(capsys, ["train", str(photos), "--model", "gaussian-v1", "-o", str(tmp_path / "m.keras")],
                 "--model gaussian-v1 is a shipped preset", "wiener_unet", "To train the preset further: --init "
                 "gaussian-v1")
    assert not (tmp_path / "m.keras").exists() and "unknown model" not in err
    _error(capsys, ["demo", "--model", "gaussian-v1", "--out", str(tmp_path / "d")],
           "model file not found: gaussian-v1 (a preset's name: --preset gaussian-v1)")


def test_evaluate_json_is_strict_when_a_score_is_infinite(model, photos, tmp_path, capsys):
    """A flat photo is unchanged by blur: its PSNR is infinite, written as null (not the non-JSON Infinity),
    and the gain is said to be unmeasurable (it printed "gain: -inf dB PSNR")."""
    flat = tmp_path / "flat"
    flat.mkdir()
    write_image(flat / "grey.png", np.full((32, 32, 3), 128, np.uint8))
    js = tmp_path / "s.json"
    capsys.readouterr()
    assert main(["evaluate", str(model), str(flat), "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    assert "gain: none to measure (1 blurred image equals its sharp one: PSNR inf)" in printed
    assert "inf dB" not in printed

    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    scores = json.loads(js.read_text(), parse_constant=refuse)
    assert scores["blurred"]["psnr"] is None and scores["blurred"]["mse"] == 0.0

    # beside a real photo: the gain over it, the flat one named (the mean over both is inf, the gain was -inf)
    write_image(flat / "photo.png", read_image(photos / "coffee.png"))
    assert main(["evaluate", str(model), str(flat), "--json", str(js)]) == 0
    printed = capsys.readouterr().out
    (row,) = [r for r in json.loads(js.read_text())["per_image"] if Path(r["image"]).name == "photo.png"]
    gain = row["model"]["psnr"] - row["blurred"]["psnr"]
    assert (f"gain: {gain:+.2f} dB PSNR over 1 of the 2 images (1 blurred image equals its sharp one: PSNR inf)"
            in printed)


def test_evaluate_with_a_chosen_blur_the_known_sigma_and_the_self_ensemble(photos, tmp_path, capsys):
    """``--sigma`` (or ``--blur`` / ``--blur-option``) sets the blur, ``--known-sigma`` gives the preset each
    photo's true sigma, ``--ensemble`` averages flips; the JSON says which, and the figure shows the same."""
    from blurkit import Deblurrer
    from blurkit.blurs import deserialize_blur
    from blurkit.metrics import psnr

    js, fig = tmp_path / "s.json", tmp_path / "f.png"
    argv = ["evaluate", "gaussian-v1", str(photos), "--sigma", "2", "--known-sigma", "--ensemble", "2",
            "--max-images", "2", "--json", str(js), "--figure", str(fig)]
    capsys.readouterr()
    assert main(argv) == 0
    assert "ensemble x2, the true sigma given" in capsys.readouterr().out
    scores = json.loads(js.read_text())
    assert scores["known_sigma"] and scores["ensemble"] == 2 and scores["blur"]["config"]["sigma"] == 2.0
    assert scores["blur"]["config"]["quantize"]  # the rest of the preset's own blur is kept
    d = Deblurrer.from_preset("gaussian-v1")
    b, s = d.test_pair(str(photos), 0, blur=deserialize_blur(scores["blur"]))
    assert scores["per_image"][0]["model"]["psnr"] == pytest.approx(psnr(s, d.predict(b, sigma=2.0, ensemble=2)),
                                                                    abs=1e-4)
    assert fig.stat().st_size > 1000
    assert main(["evaluate", "gaussian-v1", str(photos), "--blur", "defocus", "--blur-option", "radius=2",
                 "--max-images", "1", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["per_image"][0]["blur"]["radius"] == 2
    drawn = []
    for seed in ("0", "5"):  # --seed draws other sigmas for the same photo; the JSON says which seed
        assert main(["evaluate", "gaussian-v1", str(photos), "--sigma", "0.5:3", "--seed", seed,
                     "--max-images", "1", "--json", str(js)]) == 0
        scores = json.loads(js.read_text())
        assert scores["seed"] == int(seed)
        run = scores["run"]  # what a rerun needs besides the blur: which model file, data, versions
        assert run["model"] == "gaussian-v1" and len(run["model_sha256"]) == 64 and run["data"] == str(photos)
        assert "blurkit" in run["versions"] and "keras" in run["versions"]
        drawn.append(scores["per_image"][0]["blur"]["sigma"])
    assert drawn[0] != drawn[1]
    _error(capsys, ["evaluate", "gaussian-v1", str(photos), "--seed", "-1"], "seed", "-1")
    for cmd in (["evaluate", "gaussian-v1", str(photos)], ["train", str(photos), "-o", str(tmp_path / "x.keras")]):
        _error(capsys, [*cmd, "--sigma", "2", "--blur-option", "sigma=1"], "--sigma", "not both")  # 2 won silently
    _error(capsys, ["evaluate", "gaussian-v1", str(photos), "--blur", "motion", "--known-sigma"], "isotropic Gaussian")
    _error(capsys, ["evaluate", "gaussian-v1", str(photos), "--sigma", "5", "--known-sigma"], "0.3 to 3.5")
    _error(capsys, ["evaluate", "gaussian-v1", str(photos), "--blur-option", "foo=1"], "foo")
    _error(capsys, ["evaluate", "gaussian-v1", str(photos), "--blur", "nope"], "nope")
    _error(capsys, ["evaluate", "gaussian-v1", "--pairs", str(photos), str(photos), "--sigma", "2"], "given pairs")


def test_evaluate_errors(model, photos, tmp_path, capsys):
    missing = tmp_path / "missing.keras"
    _error(capsys, ["evaluate", str(missing), str(photos)], missing)
    fake = tmp_path / "fake.keras"
    fake.write_text("hello")
    _error(capsys, ["evaluate", str(fake), str(photos)], fake)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    err = _error(capsys, ["evaluate", str(notes), str(photos)], notes)
    assert "not a .keras model file" in err
    _error(capsys, ["evaluate", str(model), str(tmp_path / "nope")], tmp_path / "nope")
    _error(capsys, ["evaluate", str(model)])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("not an image")
    capsys.readouterr()
    assert main(["evaluate", str(model), str(tmp_path / "bad")]) == 1  # the work failed: not a usage error (2)
    assert "x.png" in capsys.readouterr().err
    # outputs are checked before the evaluation, not after it
    _error(capsys, ["evaluate", str(model), str(photos), "--figure", str(tmp_path / "f.xyz")], "f.xyz", ".png")
    (tmp_path / "afile").write_text("x")
    _error(capsys, ["evaluate", str(model), str(photos), "--json", str(tmp_path / "afile" / "s.json")], "--json")
    _error(capsys, ["evaluate", str(model), str(photos), "--figure-images", "0"], "--figure-images")
    for n in ("0", "-1"):  # was "no images to evaluate", after loading the model
        _error(capsys, ["evaluate", str(model), str(photos), "--max-images", n],
               f"--max-images must be at least 1, got {n}")


def test_export_names_the_endpoints_it_wrote(model, tmp_path, capsys):
    """The message lists serve_sigma when it was written (a model with a blur estimator: the presets)."""
    capsys.readouterr()
    assert main(["export", "gaussian-v1", "-o", str(tmp_path / "preset")]) == 0
    printed = capsys.readouterr().out
    assert "endpoints serve: uint8, serve_float: float32 in [0, 1], serve_sigma: " in printed
    assert main(["export", str(model), "-o", str(tmp_path / "tiny")]) == 0
    printed = capsys.readouterr().out
    assert "endpoints serve: uint8, serve_float: float32 in [0, 1])" in printed
    assert "serve_sigma" not in printed


def test_python_dash_m_blurkit_runs_the_cli(tmp_path):
    """``python -m blurkit`` is the ``blurkit`` command, its exit status included."""
    from blurkit import __version__

    version, evaluate = finish(  # two independent processes, started together
        start([sys.executable, "-m", "blurkit", "--version"]),
        start([sys.executable, "-m", "blurkit", "evaluate", str(tmp_path / "m.keras")]))
    assert version.returncode == 0 and version.stdout == f"blurkit {__version__}\n"
    assert evaluate.returncode == 2 and evaluate.stderr.startswith("blurkit evaluate: error: give either DATA")


def test_os_errors_are_one_line_without_traceback(monkeypatch, capsys):
    """A full disk or a permission problem met during a command is reported in one line (exit status 1)."""
    import blurkit.cli.list_cmd as list_cmd

    def full(args):
        raise OSError(28, "No space left on device", "out/x.png")

    monkeypatch.setattr(list_cmd, "run", full)
    assert main(["list"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["blurkit list: error: [Errno 28] No space left on device: 'out/x.png'"]


def test_deblur_with_a_known_sigma(model, photos, tmp_path, capsys):
    """``--sigma S`` deconvolves S with the preset chosen for the photo (``Deblurrer.predict(sigma=S)``); a
    model without a blur estimator, or a sigma outside the presets' range, is a usage error naming
    ``--sigma``."""
    from blurkit import Deblurrer
    from blurkit.presets import choose_preset

    out = tmp_path / "x.png"
    assert main(["deblur", str(photos / "cat.jpg"), "-o", str(out), "--sigma", "1.5", "-q"]) == 0
    img = read_image(photos / "cat.jpg")
    d = Deblurrer.from_preset(choose_preset(img))
    assert (read_image(out) == d.predict(img, sigma=1.5)).all()
    assert (read_image(out) != d.predict(img)).any()
    _error(capsys, ["deblur", str(photos / "cat.jpg"), "-o", str(tmp_path / "y.png"), "--sigma", "9"],
           "--sigma", "0.3 to 3.5")
    _error(capsys, ["deblur", str(model), str(photos / "cat.jpg"), "-o", str(tmp_path / "z.png"), "--sigma", "2"],
           "--sigma", "no Gaussian blur estimator")
    assert not (tmp_path / "y.png").exists() and not (tmp_path / "z.png").exists()


def test_deblur_without_a_model_chooses_a_preset_per_photo(tmp_path, capsys):
    """No model file: each photo gets the preset ``choose_preset`` names (a clean PNG the default, the same
    photo as a JPEG the noisy one), the summary counts them, and ``--preset`` still forces one."""
    from skimage import data

    from blurkit import Deblurrer
    from blurkit.classical import blur_gaussian

    src = tmp_path / "in"
    blurred = blur_gaussian(data.astronaut()[:128, 160:288], 2.0, seed=0)[0]
    write_image(src / "clean.png", blurred)
    ok, encoded = cv2.imencode(".jpg", np.ascontiguousarray(blurred[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert ok
    (src / "photo.jpg").write_bytes(encoded.tobytes())
    capsys.readouterr()
    assert main(["deblur", str(src), "-o", str(tmp_path / "auto")]) == 0
    assert "presets (auto): gaussian-v1 for 1 image, gaussian-v1-noisy for 1 image" in capsys.readouterr().out
    default, noisy = Deblurrer.from_preset("gaussian-v1"), Deblurrer.from_preset("gaussian-v1-noisy")
    for name, d in (("clean.png", default), ("photo.jpg", noisy)):  # outputs keep the input's format
        write_image(tmp_path / "expected" / name, d.predict(read_image(src / name)))
        assert (read_image(tmp_path / "auto" / name) == read_image(tmp_path / "expected" / name)).all(), name
    assert main(["deblur", str(src / "photo.jpg"), "-o", str(tmp_path / "forced.jpg"), "--preset", "gaussian-v1",
                 "-q"]) == 0
    assert main(["deblur", str(src / "photo.jpg"), "-o", str(tmp_path / "auto.jpg"), "--preset", "auto", "-q"]) == 0
    forced, auto = read_image(tmp_path / "forced.jpg"), read_image(tmp_path / "auto.jpg")
    assert (auto == read_image(tmp_path / "auto" / "photo.jpg")).all() and (forced != auto).any()


def _start_python(code: str, *, path: Path | None = None) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh Python, without TF_CPP_MIN_LOG_LEVEL, with ``path`` first on sys.path."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")])
    return start([sys.executable, "-c", code], env=env)


def _python(code: str, *, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python, without TF_CPP_MIN_LOG_LEVEL, with ``path`` first on sys.path."""
    return finish(_start_python(code, path=path))[0]


def test_the_cli_imports_tensorflow_without_its_start_up_lines():
    """TensorFlow's start-up lines (written to file descriptor 2, many before its logging exists) are hidden,
    the first operation's device lines too, and stderr works after; a user's own TF_CPP_MIN_LOG_LEVEL wins:
    0 or 1 show them, 2 (the usual recipe for a quiet TensorFlow, which showed them) hides them as 3 does."""
    code = ("import os, sys\nfrom blurkit.cli._common import quiet_tensorflow\nquiet_tensorflow()\n"
            "import tensorflow as tf\ntf.zeros(1).numpy()\n"
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])\nprint('after', file=sys.stderr)")
    unset, user, silent, quiet = finish(  # independent processes, started together
        _start_python(code), _start_python("import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '1'\n" + code),
        _start_python("import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n" + code),
        _start_python("import os\nos.environ['TF_CPP_MIN_LOG_LEVEL'] = '2'\n" + code))
    assert unset.returncode == 0, unset.stderr
    assert unset.stdout == "3\n" and unset.stderr == "after\n"
    assert user.returncode == 0 and user.stdout == "1\n"  # the user's setting is kept
    assert user.stderr.endswith("after\n") and user.stderr != "after\n"  # and TensorFlow's lines are shown
    assert silent.returncode == 0, silent.stderr
    assert silent.stdout == "3\n" and silent.stderr == "after\n"  # asking for silence gets it (TF alone prints them)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "2\n" and quiet.stderr == "after\n"  # kept at 2, and the start-up lines hidden


def test_list_hides_the_start_up_lines_of_a_plugin_that_imports_tensorflow(tmp_path):
    """A plugin whose module imports Keras starts TensorFlow while `blurkit list` (or make-pairs) scans the
    plugins: its start-up lines were printed, although the commands hide them. What else the plugin writes to
    stderr (its own lines, a PluginWarning) is still shown."""
    info = tmp_path / "bk_tf_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bk-tf-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[blurkit.metrics]\ntf_metric = bk_tf_plugin:tf_metric\n"
                                           "nothing = bk_tf_plugin:missing\n")
    (tmp_path / "bk_tf_plugin.py").write_text(
        "import os\nimport tensorflow\nos.write(2, b'bk_tf_plugin: loaded\\n')\n\n"
        "def tf_metric(y_true, y_pred):\n    \"A metric.\"\n    return 0.0\n")
    done = _python("import sys\nfrom blurkit.cli.main import main\nsys.exit(main(['list', 'metrics']))",
                   path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^  tf_metric +plugin bk-tf-plugin 0\.1 +A metric\.$", done.stdout, re.M), done.stdout
    lines = done.stderr.splitlines()
    assert lines[0] == "bk_tf_plugin: loaded", done.stderr
    assert "could not load plugin metric 'nothing'" in lines[1] and len(lines) == 2, done.stderr


def test_without_a_temporary_file_stderr_is_not_captured_and_nothing_breaks(monkeypatch, capfd):
    """No writable temporary folder: the capture of file descriptor 2 failed, and the caller's own error was
    replaced by "UnboundLocalError: cannot access local variable 'captured'". The body now runs uncaptured."""
    import tempfile

    from blurkit.cli._common import _Captured, _stderr_captured

    def no_temp(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "TemporaryFile", no_temp)
    captured = _Captured()
    with _stderr_captured(captured):
        os.write(2, b"shown as it is\n")
    assert captured.text == "" and capfd.readouterr().err == "shown as it is\n"


def test_warnings_are_one_line_naming_the_command():
    """A warning during a command (an unreadable training photo, say) is one line naming the command, not the
    library's file, line and source; Python's own format is back once the command returns."""
    code = ("import sys, warnings\nimport blurkit.cli.list_cmd as cmd\n"
            "cmd.run = lambda args: warnings.warn('photo.png: unreadable') or 0\n"
            "from blurkit.cli.main import main\nstatus = main(['list'])\n"
            "warnings.warn('after')\nsys.exit(status)")
    done = _python(code)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "blurkit list: warning: photo.png: unreadable"
    assert "UserWarning: after" in lines[1]


def test_a_failing_tensorflow_import_shows_what_it_wrote(tmp_path):
    """If the import fails, what it wrote to file descriptor 2 is printed before the error, not lost."""
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text("import os\nos.write(2, b'native library complaint\\n')\n"
                                      "raise ImportError('no such library')\n")
    code = ("import sys\nfrom blurkit.cli._common import quiet_tensorflow\n"
            "try:\n    quiet_tensorflow()\n"
            "except ImportError as exc:\n    print('caught', exc, file=sys.stderr)")
    done = _python(code, path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "native library complaint\ncaught no such library\n"


def test_evaluate_names_the_options_the_blur_takes(model, photos, capsys):
    """`evaluate --blur-option foo=1` said "Blur.__init__() got an unexpected keyword argument 'foo'"."""
    err = _error(capsys, ["evaluate", str(model), str(photos), "--blur-option", "foo=1"], "'foo'")
    assert "blur 'gaussian' takes no option 'foo'; its options: sigma, sigma_y, angle" in err


def test_outputs_are_checked_writable_before_any_work(tmp_path, monkeypatch, capsys):
    """A read-only output folder failed only when the first file was written: after a whole batch was restored
    (deblur), a model trained for an epoch (train) or the photos scored (evaluate --json)."""
    import tempfile

    from blurkit.cli import _common
    from blurkit.cli.main import CLIError

    ro = tmp_path / "ro"
    ro.mkdir()
    mkstemp = tempfile.mkstemp

    def refuse_ro(*args, dir=None, **kwargs):
        if Path(dir) == ro:
            raise PermissionError(13, "Permission denied", str(dir))
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse_ro)
    for path, folder in ((ro / "m.keras", False), (ro / "new" / "deep" / "m.keras", False), (ro, True),
                         (ro / "out", True)):
        with pytest.raises(CLIError, match=rf"^--out {path}: cannot write in {ro} \(Permission denied\)$"):
            _common.check_output(path, "--out", folder=folder)
    assert _common.check_output(tmp_path / "ok" / "m.keras", "--out") == tmp_path / "ok" / "m.keras"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".blurkit")]  # the probe is removed
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), np.zeros((32, 32, 3), np.uint8))
    assert main(["evaluate", "gaussian-v1", str(photos), "--json", str(ro / "s.json")]) == 2
    assert capsys.readouterr().err.strip() == (f"blurkit evaluate: error: --json {ro / 's.json'}: cannot write in "
                                               f"{ro} (Permission denied)")


def test_deblur_never_writes_an_input_through_a_link_among_its_outputs(model, photos, tmp_path, capsys):
    """A link in the output folder to an input photo (out/a.png -> ../photos/a.png), or beside the photos
    under an output's name (coffee_s.png -> coffee.png with --suffix _s): writes that followed links would
    rewrite the input photo through it. The link is replaced by the output; the photos are left as they
    were."""
    import hashlib
    import shutil

    src = tmp_path / "photos"
    shutil.copytree(photos, src)
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in src.rglob("*.*")}
    out = tmp_path / "out"
    out.mkdir()
    (out / "astronaut.png").symlink_to(src / "astronaut.png")
    assert main(["deblur", str(model), str(src), "-o", str(out), "-q"]) == 0
    assert not (out / "astronaut.png").is_symlink() and (out / "astronaut.png").is_file()
    (src / "coffee_s.png").symlink_to("coffee.png")
    main(["deblur", str(model), str(src), "-o", str(src), "--suffix", "_s", "-q"])
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in digest} == digest


def test_an_interrupted_train_says_what_is_kept_and_sigterm_interrupts_as_ctrl_c(photos, tmp_path, capsys,
                                                                                  monkeypatch):
    """After Ctrl-C `train` printed only "interrupted" (the best model so far sat at OUT like a finished one, and
    nothing said --resume would go on); SIGTERM (timeout, systemd, Kubernetes) killed it without a word."""
    import signal
    import time

    from blurkit.deblurrer import Deblurrer

    out = tmp_path / "m.keras"
    run = ["train", str(photos), *TINY_TRAIN, "-o", str(out), "--quiet", "--overwrite"]  # over an earlier run

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Deblurrer, "fit", interrupted)
    (tmp_path / "m.resume").mkdir()
    for old in (out, tmp_path / "m.resume" / "last.keras"):  # left by an earlier run: not this run's
        old.write_bytes(b"last week's")
        os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert main(run) == 130
    # an earlier run's state, which this run was to replace, is intact: it said "nothing to resume" of it
    assert capsys.readouterr().err.strip() == (
        f"interrupted: no epoch of this run finished; {tmp_path / 'm.resume'} still holds an earlier run's "
        "training state (--resume goes on from it)")
    (tmp_path / "m.resume" / "last.keras").unlink()
    assert main(run) == 130
    assert capsys.readouterr().err.strip() == "interrupted: no epoch finished, so there is nothing to resume"

    def one_epoch(self, *args, **kwargs):
        (tmp_path / "m.resume" / "last.keras").write_bytes(b"state")
        out.write_bytes(b"best so far")
        raise KeyboardInterrupt

    monkeypatch.setattr(Deblurrer, "fit", one_epoch)
    assert main(run) == 130
    assert capsys.readouterr().err.strip() == (
        f"interrupted: the training state after the last finished epoch is in {tmp_path / 'm.resume'}: run the "
        f"same command with --resume to go on; {out} holds the best model so far (the run is not finished)")

    slept = []

    def terminated(self, *args, **kwargs):
        (tmp_path / "m.resume" / "last.keras").write_bytes(b"state")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)  # the handler raises as the signal arrives
        slept.append(True)  # reached only if it did not

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(Deblurrer, "fit", terminated)
    assert main(run) == 143 and not slept
    assert "--resume to go on" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


# ------------------------------------------------------------------------------------------ progress bars
# evaluate, make-pairs and shard draw their bar on a terminal only, as deblur and train do: in a pipe or a
# log file a tqdm bar is its frames joined by \r.
BAR_TEXT = ("\r", "%|", "it/s", "img/s", "image/s")
SUMMARY = {"evaluate": "4 images, blur", "make-pairs": "wrote 4 of 4 pairs", "shard": "wrote 4 of 4 images"}


def _run_bar(command, photos, request, capsys, *extra):
    """Run ``command`` on ``photos`` (its output in a new folder); its stdout and stderr."""
    out = request.getfixturevalue("tmp_path") / f"out{len(extra)}"
    argv = {"evaluate": lambda: ["evaluate", str(request.getfixturevalue("model")), str(photos)],
            "make-pairs": lambda: ["make-pairs", str(photos), str(out), "--sigma", "1"],
            "shard": lambda: ["shard", str(photos), str(out), "--shard-size", "2"]}[command]()
    capsys.readouterr()
    assert main([*argv, *extra]) == 0
    printed = capsys.readouterr()
    assert SUMMARY[command] in printed.out  # the summary, bar or no bar
    return printed.out, printed.err


def _has_bar(text: str) -> bool:
    return any(bit in text for bit in BAR_TEXT)


@pytest.mark.parametrize("command", ["evaluate", "make-pairs", "shard"])
def test_no_bar_outside_a_terminal(command, photos, request, capsys):
    """stderr a pipe or a file (pytest's capture is no terminal): no tqdm frame in it."""
    out, err = _run_bar(command, photos, request, capsys)
    assert not _has_bar(err), repr(err)
    assert not _has_bar(out), repr(out)


@pytest.mark.parametrize("command", ["evaluate", "make-pairs", "shard"])
def test_bar_on_a_terminal(command, photos, request, capsys, monkeypatch):
    """On a terminal the bar is drawn (on stderr), and ``--no-progress`` still turns it off."""
    monkeypatch.setattr(common, "on_terminal", lambda stream=None: True)
    out, err = _run_bar(command, photos, request, capsys)
    assert "\r" in err and "%|" in err, repr(err)
    assert not _has_bar(out), repr(out)
    if command != "evaluate":  # evaluate has no option to turn its bar off
        _, err = _run_bar(command, photos, request, capsys, "--no-progress")
        assert not _has_bar(err), repr(err)


def test_on_terminal():
    """stderr by default; a file, a closed stream or none (pythonw) is no terminal."""
    tty = io.StringIO()
    tty.isatty = lambda: True
    closed = io.StringIO()
    closed.close()
    assert common.on_terminal(tty) and not common.on_terminal(io.StringIO())
    assert not common.on_terminal(closed) and not common.on_terminal(object())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stderr", tty)
        assert common.on_terminal()
        mp.setattr("sys.stderr", None)
        assert not common.on_terminal()


def test_figures_ignore_the_users_matplotlib_settings(model, photos, tmp_path, capsys, monkeypatch):
    """A matplotlibrc with text.usetex: True on a machine without LaTeX failed every figure with a traceback:
    evaluate --figure after the scores, train after its model was saved (its training state left behind).
    Figures are drawn with matplotlib's defaults, and the user's settings are left as they were."""
    import matplotlib

    monkeypatch.setitem(matplotlib.rcParams, "text.usetex", True)
    monkeypatch.setenv("PATH", str(tmp_path / "no-latex-here"))  # no latex to find, whatever this machine has
    fig = tmp_path / "f.png"
    assert main(["evaluate", str(model), str(photos), "--max-images", "1", "--figure", str(fig)]) == 0
    assert fig.read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "m.keras"
    assert main(["train", str(photos), *TINY_TRAIN, "-o", str(out)]) == 0
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "m.resume").exists()
    assert matplotlib.rcParams["text.usetex"] is True


def test_train_without_its_curves_still_ends_cleanly(photos, tmp_path, capsys, monkeypatch):
    """The curves are drawn after the model is saved: a figure that fails (a full disk, say) costs the figure
    (a warning), not the run (a traceback, the training state left behind)."""
    from blurkit import plots

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "plot_history", fail)
    out = tmp_path / "m.keras"
    capsys.readouterr()
    assert main(["train", str(photos), *TINY_TRAIN, "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert out.is_file() and not (tmp_path / "m.resume").exists()
    assert "blurkit train: warning: the training curves were not written to " in printed.err
    assert "No space left on device" in printed.err and "curves:" not in printed.out


@pytest.mark.parametrize("name", [b"caf\xe9.png", b"a$^$.png"])
def test_a_figure_title_names_any_file(model, tmp_path, capsys, name):
    """evaluate --figure titles each row with the photo's name: a name that is not UTF-8 (its bytes held as
    lone surrogates) failed in matplotlib's text engine with a TypeError, and one with two dollar signs was
    parsed as mathtext (a ParseSyntaxException), after the scores."""
    folder = tmp_path / "photos"
    folder.mkdir()
    try:
        write_image(folder / os.fsdecode(name), (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8))
    except (OSError, UnicodeError):
        pytest.skip("this file system takes no such name")
    fig = tmp_path / "f.png"
    assert main(["evaluate", str(model), str(folder), "--figure", str(fig)]) == 0
    assert fig.read_bytes()[:4] == b"\x89PNG"


def test_train_under_warnings_as_errors(photos, tmp_path):
    """PYTHONWARNINGS=error (or -W error) turned Keras' own DeprecationWarning (NumPy 2's __array__ copy
    keyword, at every model save) into a traceback after the first epoch, the epoch lost. The command ignores
    Keras' and TensorFlow's DeprecationWarnings; the user's filters are put back after it."""
    import warnings

    out = tmp_path / "m.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        before = list(warnings.filters)
        assert main(["train", str(photos), *TINY_TRAIN, "-o", str(out), "--quiet"]) == 0
        assert warnings.filters == before
    assert Deblurrer.load(out).history["loss"]


def test_list_under_python_oo_says_why_there_are_no_summaries():
    """python -OO drops docstrings: blurkit list showed empty summaries."""
    from helpers import source_env

    proc = subprocess.run([sys.executable, "-OO", "-m", "blurkit", "list", "blurs"], capture_output=True,
                          text=True, timeout=120, env=source_env(TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("  ")]
    assert lines and all(ln.rstrip().endswith("(no description: python -OO drops docstrings)") for ln in lines)


def test_list_shows_summaries_without_rest_markup(capsys):
    """``blurkit list`` printed docstring lines as written: "a ``size`` x ``size`` square"."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mean of a size x size square" in out and "within tol of the truth" in out
    assert "``" not in out and ":func:" not in out


def test_model_arguments_that_are_not_model_files_are_named_for_what_they_are(tmp_path, capsys):
    """A legacy Keras .h5 model was taken for a photo by deblur ("several images need an output folder") and
    for a preset name by evaluate ("unknown preset"); a folder named x.keras was "not found"; a FIFO was "no
    such model file". Each is now said for what it is, before TensorFlow starts."""
    import h5py

    from blurkit.data.io import write_image

    with h5py.File(tmp_path / "legacy.h5", "w") as f:
        f.create_dataset("x", data=[1.0])
    (tmp_path / "dir.keras").mkdir()
    photo = tmp_path / "p.png"
    write_image(photo, np.zeros((16, 16, 3), np.uint8))
    out = str(tmp_path / "o.png")
    cases = [
        (["deblur", str(tmp_path / "legacy.h5"), str(photo), "-o", out], "legacy.h5: a legacy Keras HDF5 model; "
                                                                          "deblur takes a .keras model file"),
        (["evaluate", str(tmp_path / "legacy.h5"), str(photo)], "legacy.h5: a legacy Keras HDF5 (.h5) model, not "
                                                                 "a .keras model file"),
        (["evaluate", str(tmp_path / "nosuch.h5"), str(photo)], "model file not found: "),
        (["deblur", str(tmp_path / "dir.keras"), str(photo), "-o", out], "dir.keras: a folder, not a .keras model"),
        (["evaluate", str(tmp_path / "dir.keras"), str(photo)], "dir.keras: a folder, not a .keras model"),
    ]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.keras")
        cases.append((["deblur", str(tmp_path / "fifo.keras"), str(photo), "-o", out], "fifo.keras: not a regular file"))
    for argv, said in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert said in err and "unknown preset" not in err, (argv, err)
    assert not Path(out).exists()


def test_evaluate_restores_each_photo_once_for_its_figure(model, photos, tmp_path, monkeypatch):
    """``--figure`` restored its photos a second time after scoring them (a 12 MP pair: 3 more minutes, with
    no bar). The figure now shows the restorations scored, handed over by ``evaluate(on_image=...)``."""
    from blurkit import Deblurrer

    calls = []
    real = Deblurrer._predict_array
    monkeypatch.setattr(Deblurrer, "_predict_array", lambda self, arr, *a, **kw: calls.append(arr.shape)
                        or real(self, arr, *a, **kw))
    fig = tmp_path / "f.png"
    assert main(["evaluate", str(model), str(photos), "--max-images", "2", "--figure", str(fig)]) == 0
    assert len(calls) == 2 and fig.stat().st_size > 1000
    seen = []
    d = Deblurrer.load(model)
    scores = d.evaluate(photos, max_images=2, per_image=True, on_image=lambda row, r: seen.append((row, r)))
    assert [row for row, _ in seen] == scores["per_image"]
    b, _ = d.test_pair(str(photos), seen[0][0]["index"])
    np.testing.assert_allclose(seen[0][1], d.predict(b), atol=1e-5)


def test_train_does_not_replace_a_model_or_a_resumable_run_without_overwrite(photos, tmp_path, capsys):
    """A restarted job script that forgot --resume trained afresh over the saved state (days of training), and
    a second experiment with the default --out replaced the first one's model, both without asking."""
    out = tmp_path / "m.keras"
    run = ["train", str(photos), *TINY_TRAIN, "-o", str(out), "--quiet"]
    out.write_bytes(b"an earlier experiment's model")
    assert main(run) == 2
    assert capsys.readouterr().err.strip() == (
        f"blurkit train: error: --out {out} exists: add --overwrite to replace it, or write another --out")
    assert out.read_bytes() == b"an earlier experiment's model"
    out.unlink()
    (tmp_path / "m.resume").mkdir()
    (tmp_path / "m.resume" / "last.keras").write_bytes(b"state")
    assert main(run) == 2
    assert capsys.readouterr().err.strip() == (
        f"blurkit train: error: {tmp_path / 'm.resume' / 'last.keras'} holds the training state of an earlier "
        "run: add --resume to continue it, or --overwrite to start afresh and replace it")
    assert (tmp_path / "m.resume" / "last.keras").read_bytes() == b"state" and not out.exists()


@pytest.mark.parametrize("skew", [0, 3600], ids=["same-clock", "clock-ahead-of-the-file-server"])
def test_train_saves_the_whole_runs_history_with_the_best_epoch(photos, tmp_path, capsys, monkeypatch, skew):
    """The model file is the best epoch's checkpoint; it held the history up to that epoch only, so the
    numbers of the later epochs were lost (only the PNG showed them). Its training record now holds the whole
    run's, the epochs run and which one its weights are from (its own history still ends there)."""
    import time

    from blurkit.cli import train
    from blurkit.deblurrer import Deblurrer

    out = tmp_path / "m.keras"
    # a learning rate that makes epoch 1 the best (the later ones overshoot)
    run = ["train", str(photos), *TINY_TRAIN, "-o", str(out), "--quiet", "--epochs", "3", "--val-split", "0.25",
           "--lr", "0.1"]
    # this machine's clock an hour ahead of the file server's: the run judged "did I write OUT?" by times, and
    # replaced its best epoch's checkpoint with the last epoch's weights
    monkeypatch.setattr(train.time, "time", lambda real=time.time: real() + skew)
    assert main(run) == 0
    monkeypatch.undo()
    meta = Deblurrer.read_metadata(out)
    val = meta["training"]["run_history"]["val_loss"]
    assert len(meta["training"]["run_history"]["loss"]) == len(val) == 3 and meta["training"]["epochs"] == 3
    best = min(range(3), key=val.__getitem__) + 1
    assert best < 3, "the test needs a run whose best epoch is not the last"
    assert meta["training"]["weights_epoch"] == best and meta["history"]["val_loss"] == val[:best]
    assert meta["validation"]["loss"] == pytest.approx(val[best - 1])
    assert meta["training"]["validation_split"] == 0.25 and meta["training"]["reduce_lr"] is True


def _blurkit(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """``python -m blurkit ARGS`` in a fresh process with ``env`` added (the source tree's blurkit)."""
    from helpers import source_env

    return subprocess.run([sys.executable, "-m", "blurkit", *args], capture_output=True, timeout=300,
                          env=source_env(**env))


def test_paths_the_console_cannot_encode_are_escaped_not_a_traceback(tmp_path):
    """On a Windows console or a redirected file (cp1252), or with LANG=C, printing a path with characters the
    encoding lacks raised UnicodeEncodeError after the work was done: exit 1, a traceback, for a run that
    succeeded. They are now written as backslash escapes."""
    from skimage import data

    src, out = tmp_path / "données", tmp_path / "日本"
    src.mkdir()
    write_image(src / "a.png", data.astronaut()[:40, :40])
    for encoding in ("cp1252", "ascii"):
        proc = _blurkit(["make-pairs", str(src), str(out / encoding), "--sigma", "1"], PYTHONIOENCODING=encoding)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        assert b"Traceback" not in proc.stderr
        assert b"\\u65e5\\u672c" in proc.stdout  # 日本, escaped
        assert (out / encoding / "manifest.jsonl").is_file()


def test_a_closed_pipe_is_not_an_error(tmp_path):
    """`blurkit list | head -1`: the reader closing the pipe gave "error: [Errno 32] Broken pipe" and exit 1,
    a failure under `set -o pipefail`."""
    from helpers import source_env

    proc = subprocess.Popen([sys.executable, "-m", "blurkit", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=source_env())
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode(errors="replace")
    assert proc.wait(timeout=300) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err


def test_no_stderr_at_all_is_not_a_crash(monkeypatch):
    """With no stderr (`2>&-`, pythonw, some services) the TensorFlow-hiding code called sys.stderr.flush()
    on None and os.dup(2) on a closed descriptor: every model command died silently with exit 1."""
    from blurkit.cli import _common

    monkeypatch.setattr(sys, "stderr", None)
    _common._write_stderr("nothing to write to")  # no AttributeError
    ran = []

    def no_fd(fd):
        raise OSError(9, "Bad file descriptor")

    monkeypatch.setattr(_common.os, "dup", no_fd)
    with _common._stderr_captured(_common._Captured()):
        ran.append(True)
    assert ran == [True]


def test_another_keras_backend_is_refused_in_one_line(monkeypatch, capsys):
    """KERAS_BACKEND=jax (or a keras.json naming it) gave a traceback ("No module named 'jax'"); blurkit's
    commands run on TensorFlow, so another backend is refused by name, and a keras.json's is overridden."""
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert main(["list", "blurs"]) == 2
    assert capsys.readouterr().err.strip() == (
        "blurkit list: error: KERAS_BACKEND=jax: blurkit runs on Keras' TensorFlow backend; unset it or set "
        "KERAS_BACKEND=tensorflow")
    monkeypatch.delenv("KERAS_BACKEND")
    assert main(["list", "blurs"]) == 0
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


def test_deblur_expands_a_wildcard_the_shell_left_as_it_is(model, photos, tmp_path, capsys):
    """Windows' shells do not expand `*.png`: `blurkit deblur photos/*.png -o out` said "no such file or
    folder: photos/*.png" there, while train, shard and evaluate took patterns."""
    out = tmp_path / "out"
    assert main(["deblur", str(model), str(photos / "*.png"), "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "coffee.png"]
    _error(capsys, ["deblur", str(model), str(photos / "*.tiff"), "-o", str(out)], "no such file or folder")


def test_a_completed_train_removes_what_a_killed_state_write_left(photos, tmp_path):
    """After a kill -9 during a training-state write and a resumed run to the end, the state folder stayed,
    holding the dead write's temporary file (removed only by a later save, 10 minutes on)."""
    state = tmp_path / "m.resume"
    state.mkdir()
    (state / ".last.k3j_9x0q.tmp.keras").write_bytes(b"half a state")
    assert main(["train", str(photos), *TINY_TRAIN, "-o", str(tmp_path / "m.keras"), "--quiet"]) == 0
    assert not state.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras", "m.png"]


def test_whole_history_after_a_pause_keeps_the_best_epochs_file(tmp_path):
    """A --time-limit pause, then --resume, with no better epoch after it: the second session stamped the
    pause's epoch as the weights' (the first had replaced the file's history with the run's). The file's own
    history keeps ending at its epoch, which is also what a later fit(checkpoint=out) reads as the loss to
    beat."""
    from blurkit.cli.train import _whole_history
    from blurkit.deblurrer import Deblurrer, _checkpoint_best

    out = tmp_path / "m.keras"
    best = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1})
    best.history = {"loss": [0.6, 0.4], "val_loss": [0.5, 0.3]}  # the checkpoint of epoch 2
    best.save(out)
    run = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1})
    for epochs in (5, 8):  # the pause after epoch 5, then the resumed run to 8, none better than epoch 2
        run.history = {"loss": [0.6, 0.4] + [0.35] * (epochs - 2), "val_loss": [0.5, 0.3] + [0.9] * (epochs - 2)}
        run.training = {"epochs": epochs}
        _whole_history(run, out)
        meta = Deblurrer.read_metadata(out)
        assert meta["training"]["weights_epoch"] == 2 and meta["training"]["epochs"] == epochs
        assert meta["history"]["val_loss"] == [0.5, 0.3]
        assert meta["training"]["run_history"]["val_loss"] == run.history["val_loss"]
    assert _checkpoint_best(out, {"loss": [0.6, 0.4, 0.35], "val_loss": [0.5, 0.3, 0.9]}, "val_loss", 3) == 0.3


def test_a_broken_pipe_that_is_not_stdout_is_an_error(monkeypatch, capfd):
    """Exit 0 is for a reader that closed standard output (`| head -1`); a broken pipe elsewhere (a FIFO given
    as an output file, a socket) stops the work and is an error, not a success."""
    from blurkit.cli import list_cmd

    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(list_cmd, "run", broken)
    monkeypatch.setattr(list_cmd, "add_parser", _with_run(list_cmd.add_parser, broken))
    # capfd, not capsys: stdout must be a real file descriptor (a file, whose reader is not gone) for the
    # command to tell that the broken pipe is another one
    assert main(["list"]) == 1
    assert "blurkit list: error: [Errno 32] Broken pipe" in capfd.readouterr().err


def _with_run(add_parser, run):
    """``add_parser`` with the command's ``func`` replaced by ``run``."""
    def add(sub):
        p = add_parser(sub)
        p.set_defaults(func=run)
        return p
    return add

"""Progress bars of ``evaluate``, ``make-pairs`` and ``shard``: drawn on a terminal only, as ``deblur`` and
``train`` draw theirs. In a pipe or a log file a tqdm bar is its frames joined by ``\\r``."""

from __future__ import annotations

import io

import cv2
import pytest

from blurkit.cli import _common
from blurkit.cli.main import main
from blurkit.data.io import write_image

TINY_TRAIN = ["--model-option", "width=4", "--model-option", "depth=1", "--model-option", "blocks=1",
              "--epochs", "1", "--steps-per-epoch", "1", "--patch-size", "32", "--batch-size", "2"]
BAR_TEXT = ("\r", "%|", "it/s", "img/s", "image/s")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Three small photos."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    for name, img in [("astronaut.png", data.astronaut()), ("cat.jpg", data.chelsea()),
                      ("coffee.png", data.coffee())]:
        write_image(root / name, cv2.resize(img, (48, 40), interpolation=cv2.INTER_AREA))
    return root


@pytest.fixture(scope="module")
def model(photos, tmp_path_factory):
    """A tiny model (one training step)."""
    out = tmp_path_factory.mktemp("model") / "tiny.keras"
    assert main(["train", str(photos), *TINY_TRAIN, "-o", str(out), "--quiet"]) == 0
    return out


SUMMARY = {"evaluate": "3 images, blur", "make-pairs": "wrote 3 of 3 pairs", "shard": "wrote 3 of 3 images"}


def _run(command, photos, request, capsys, *extra):
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
    out, err = _run(command, photos, request, capsys)
    assert not _has_bar(err), repr(err)
    assert not _has_bar(out), repr(out)


@pytest.mark.parametrize("command", ["evaluate", "make-pairs", "shard"])
def test_bar_on_a_terminal(command, photos, request, capsys, monkeypatch):
    """On a terminal the bar is drawn (on stderr), and ``--no-progress`` still turns it off."""
    monkeypatch.setattr(_common, "on_terminal", lambda stream=None: True)
    out, err = _run(command, photos, request, capsys)
    assert "\r" in err and "%|" in err, repr(err)
    assert not _has_bar(out), repr(out)
    if command != "evaluate":  # evaluate has no option to turn its bar off
        _, err = _run(command, photos, request, capsys, "--no-progress")
        assert not _has_bar(err), repr(err)


def test_on_terminal():
    """stderr by default; a file, a closed stream or none (pythonw) is no terminal."""
    tty = io.StringIO()
    tty.isatty = lambda: True
    closed = io.StringIO()
    closed.close()
    assert _common.on_terminal(tty) and not _common.on_terminal(io.StringIO())
    assert not _common.on_terminal(closed) and not _common.on_terminal(object())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.stderr", tty)
        assert _common.on_terminal()
        mp.setattr("sys.stderr", None)
        assert not _common.on_terminal()

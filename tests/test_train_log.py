"""``blurkit train`` in a log (stdout not a terminal: a file, a pipe, a CI job): Keras prints one line per epoch
(``verbose=2``), and during a long epoch a plain line every ``blurkit._progress.LOG_INTERVAL`` seconds at most
(the epoch, the step, the time, the running loss), as the other commands' progress in a log; an epoch shorter
than that prints the epoch lines only, as before.

Reproduce: ``pytest tests/test_train_log.py -q``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from blurkit import _progress
from blurkit.cli.main import main
from blurkit.data.io import write_image

# no validation (--val-split 0): a traced function fewer; each test is one run (about 8 s of CPU)
TINY = ["--model", "unet", "--model-option", "width=4", "--model-option", "depth=1", "--model-option", "blocks=1",
        "--patch-size", "16", "--batch-size", "2", "--steps-per-epoch", "3", "--val-split", "0"]
STEP = re.compile(r"^epoch (\d+)/(\d+), step (\d+)/3: \d+:\d\d(, about \d+:\d\d left in the epoch)?, loss: \S+$")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        write_image(root / f"{i}.png", rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    return root


def _train(photos, tmp_path, capsys, epochs: int) -> list[str]:
    """Run ``blurkit train`` with stdout captured (no terminal: the log's ``verbose=2``); its stdout lines."""
    capsys.readouterr()
    assert main(["train", str(photos), *TINY, "--epochs", str(epochs), "-o", str(tmp_path / "m.keras")]) == 0
    return capsys.readouterr().out.splitlines()


def test_a_long_epoch_prints_step_lines_in_a_log(photos, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_progress, "LOG_INTERVAL", 0.0)  # every step is "long": a line after each
    lines = _train(photos, tmp_path, capsys, 2)
    at = [i for i, line in enumerate(lines) if STEP.match(line)]
    found = [STEP.match(lines[i]) for i in at]
    assert [(int(m[1]), int(m[2]), int(m[3])) for m in found] == [(e, 2, s) for e in (1, 2) for s in (1, 2, 3)]
    assert [bool(m[4]) for m in found] == [True, True, False] * 2  # the time left, but after an epoch's last step
    # each epoch: Keras' "Epoch E/2", its three step lines, then its epoch line ("3/3 - 1s - 300ms/step - loss: ...")
    ends = [i for i, line in enumerate(lines) if line.startswith("3/3 - ")]
    assert len(ends) == 2
    assert lines.index("Epoch 1/2") < at[0] and at[2] < ends[0] < lines.index("Epoch 2/2") < at[3]
    assert at[5] < ends[1]


def test_a_short_epoch_prints_only_the_epoch_lines(photos, tmp_path, capsys):
    assert _progress.LOG_INTERVAL == 30  # the real interval: this run takes seconds
    lines = _train(photos, tmp_path, capsys, 1)
    assert not [line for line in lines if ", step " in line]
    assert [line for line in lines if line.startswith("3/3 - ")]  # Keras' epoch line is there, as before

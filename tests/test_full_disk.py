"""A batch whose output disk fills up (or is read-only, or over quota) stops at the first such write.

Every later write would fail the same way, each after restoring its photo for nothing (minutes a photo on a
laptop CPU, hours for a large folder). The files already written stay, the failure is listed with its reason,
and a rerun with ``--skip-existing`` once there is room goes on where the batch stopped.
"""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

import blurkit.cli._common as common
import blurkit.data.io as bio
from blurkit.batch import deblur_files, folder_jobs
from blurkit.cli.main import main
from blurkit.data.io import write_image

N = 12


class Counting:
    """Returns the image inverted and counts its calls (photos restored)."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, image: np.ndarray) -> np.ndarray:
        self.calls += 1
        return 255 - image


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    for i in range(N):
        write_image(folder / f"p{i:02d}.png", np.full((6, 8, 3), 10 * i, np.uint8))
    return folder


def _disk_fills(monkeypatch: pytest.MonkeyPatch, after: int, code: int = errno.ENOSPC) -> list[Path]:
    """Make writes fail with ``code`` once ``after`` outputs are written; returns the outputs written."""
    written: list[Path] = []
    calls = itertools.count()  # the writer threads' calls, in the order they come (next() is atomic)
    real = bio.write_image

    def write(path, image, **kwargs):
        if next(calls) >= after:
            raise OSError(code, os.strerror(code), str(path))
        real(path, image, **kwargs)
        written.append(Path(path))

    monkeypatch.setattr(bio, "write_image", write)
    return written


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS] + ([errno.EDQUOT] if hasattr(errno, "EDQUOT") else []))
@pytest.mark.parametrize("workers", [0, 2])
def test_a_full_disk_stops_the_batch_at_the_first_failed_write(photos, tmp_path, monkeypatch, code, workers):
    written = _disk_fills(monkeypatch, after=3, code=code)
    model = Counting()
    s = deblur_files(model, folder_jobs(photos, tmp_path / "out"), workers=workers, prefetch=2)
    assert s.done == 3 and len(written) == 3 and not s.interrupted
    assert s.stopped and os.strerror(code) in s.stopped and str(tmp_path / "out") in s.stopped
    # without threads, nothing is restored after the failed write; with them, at most what was already queued
    assert model.calls == 4 if workers == 0 else 4 <= model.calls <= 4 + 2 * 2
    assert len(s.failed) == model.calls - 3  # the failed write, and any restored before it was known
    assert all(os.strerror(code) in why for _, why in s.failed)
    assert s.total < N  # the files after them were not read


@pytest.mark.parametrize("workers", [0, 2])
def test_other_write_errors_do_not_stop_the_batch(photos, tmp_path, monkeypatch, workers):
    """A permission refused on one output says nothing of the others: the batch goes on, as before."""
    _disk_fills(monkeypatch, after=3, code=errno.EACCES)
    model = Counting()
    s = deblur_files(model, folder_jobs(photos, tmp_path / "out"), workers=workers, prefetch=2)
    assert model.calls == N and s.total == N and s.done == 3 and len(s.failed) == N - 3 and not s.stopped


def test_deblur_exits_1_naming_the_full_disk_and_goes_on_once_there_is_room(photos, tmp_path, monkeypatch,
                                                                            capsys):
    _disk_fills(monkeypatch, after=5)
    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None: Counting())
    out = tmp_path / "out"
    assert main(["deblur", str(photos), "-o", str(out), "--io-workers", "0", "-q"]) == 1
    captured = capsys.readouterr()
    assert "done 5, skipped 0 (already there), failed 1" in captured.out
    assert "No space left on device" in captured.err and "stopped after 6 files" in captured.err
    assert "run the same command with --skip-existing to go on" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [f"p{i:02d}.png" for i in range(5)]  # no temporary files

    monkeypatch.undo()  # room again
    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None: Counting())
    assert main(["deblur", str(photos), "-o", str(out), "--skip-existing", "-q"]) == 0
    assert f"done {N - 5}, skipped 5 (already there), failed 0" in capsys.readouterr().out
    assert len(list(out.iterdir())) == N

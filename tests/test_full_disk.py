"""A batch whose output file system fills up (or is read-only, or over quota) leaves the photos whose outputs
are on it unread after the first such write.

Every later write there would fail the same way, each after restoring its photo for nothing (minutes a photo
on a laptop CPU, hours for a large folder). The files already written stay, the failure is listed with its
reason, outputs on other file systems are still written, and a rerun with ``--skip-existing`` once there is
room goes on where the batch left off.
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


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    read, real = [], bio.read_image

    def counted(path, *args, **kwargs):
        read.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(bio, "read_image", counted)
    return read


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS] + ([errno.EDQUOT] if hasattr(errno, "EDQUOT") else []))
@pytest.mark.parametrize("workers", [0, 2])
def test_a_full_disk_leaves_the_files_after_the_failed_write_unread(photos, tmp_path, monkeypatch, code, workers):
    import blurkit.batch as batch

    written = _disk_fills(monkeypatch, after=3, code=code)
    if code == errno.EROFS:  # the output folder's mount read-only, as the write found it
        monkeypatch.setattr(batch, "_read_only", lambda folder: True)
    read = _counting_reads(monkeypatch)
    model = Counting()
    s = deblur_files(model, folder_jobs(photos, tmp_path / "out"), workers=workers, prefetch=2)
    assert s.done == 3 and len(written) == 3 and not s.interrupted
    assert os.strerror(code) in s.left_why and str(tmp_path / "out") in s.left_why
    # without threads, nothing is read or restored after the failed write; with them, at most what was queued
    assert model.calls == 4 if workers == 0 else 4 <= model.calls <= 4 + 2 * 2
    assert len(read) == model.calls if workers == 0 else len(read) <= model.calls + 2
    assert len(s.failed) == model.calls - 3  # the failed write, and any restored before it was known
    assert all(os.strerror(code) in why for _, why in s.failed)
    assert s.left == N - model.calls and s.total + s.left == N


@pytest.mark.parametrize("workers", [0, 2])
def test_other_write_errors_leave_nothing(photos, tmp_path, monkeypatch, workers):
    """A permission refused on one output says nothing of the others: the batch goes on, as before."""
    _disk_fills(monkeypatch, after=3, code=errno.EACCES)
    model = Counting()
    s = deblur_files(model, folder_jobs(photos, tmp_path / "out"), workers=workers, prefetch=2)
    assert model.calls == N and s.total == N and s.done == 3 and len(s.failed) == N - 3
    assert s.left == 0 and s.left_why == ""


@pytest.mark.parametrize("workers", [0, 2])
def test_outputs_on_other_file_systems_are_still_written(photos, tmp_path, monkeypatch, workers):
    """review-s16a 2, review-s16b 1: a read-only mount inside the photo tree stopped the whole batch, and the
    rerun stopped at it again; a bind mount, sharing its device with the writable folders, still left them. Only
    the outputs on a read-only mount are left."""
    import blurkit.batch as batch

    out = tmp_path / "out"  # ro/ is a read-only bind mount: the same st_dev as rw/, a read-only mount flag
    jobs = [(p, out / ("ro" if i % 3 == 1 else "rw") / p.name) for i, p in enumerate(sorted(photos.iterdir()))]
    real_write = bio.write_image

    def write(path, image, **kwargs):
        if Path(path).parent.name == "ro":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        real_write(path, image, **kwargs)

    monkeypatch.setattr(bio, "write_image", write)
    monkeypatch.setattr(batch, "_read_only", lambda folder: folder.name == "ro")
    model = Counting()
    s = deblur_files(model, jobs, workers=workers, prefetch=2)
    rw = [dst for _, dst in jobs if dst.parent.name == "rw"]
    assert s.done == len(rw) and sorted(out.joinpath("rw").iterdir()) == sorted(rw)
    assert 1 <= len(s.failed) <= 3 and s.left == N - len(rw) - len(s.failed) > 0
    assert "Read-only file system" in s.left_why


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_real_full_device_keeps_its_error_number(photos, tmp_path):
    """Through the real write path (atomic_open writes through a link to a device): ENOSPC keeps its errno, and
    the file system found full is the link's target's (review-s16b 3: it was the output folder's)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "p00.png").symlink_to("/dev/full")
    (out / "p05.png").symlink_to("/dev/full")
    s = deblur_files(Counting(), folder_jobs(photos, out), workers=0)
    assert [p.name for p, _ in s.failed] == ["p00.png"] and "No space left on device" in s.left_why
    assert s.done == N - 2 and s.left == 1  # p05.png, a link to the device found full, is left; no other


def test_a_full_disk_at_the_last_file_leaves_nothing(photos, tmp_path, monkeypatch, capsys):
    _disk_fills(monkeypatch, after=N - 1)
    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None, **_: Counting())
    assert main(["deblur", str(photos), "-o", str(tmp_path / "out"), "--io-workers", "0", "-q"]) == 3
    captured = capsys.readouterr()
    assert f"done {N - 1}, skipped 0 (already there), failed 1" in captured.out
    assert "No space left on device" in captured.err and "left unread" not in captured.err


def test_deblur_names_the_full_disk_and_goes_on_once_there_is_room(photos, tmp_path, monkeypatch,
                                                                            capsys):
    _disk_fills(monkeypatch, after=5)
    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None, **_: Counting())
    out = tmp_path / "out"
    assert main(["deblur", str(photos), "-o", str(out), "--io-workers", "0", "-q"]) == 3  # a partial batch
    captured = capsys.readouterr()
    assert f"done 5, skipped 0 (already there), failed 1, left {N - 6} (output file system full" in captured.out
    assert f"{N - 6} files left unread: a write found their output's file system full or read-only" in captured.err
    assert "No space left on device" in captured.err
    assert "run the same command with --skip-existing to go on" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [f"p{i:02d}.png" for i in range(5)]  # no temporary files

    monkeypatch.undo()  # room again
    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None, **_: Counting())
    assert main(["deblur", str(photos), "-o", str(out), "--skip-existing", "-q"]) == 0
    assert f"done {N - 5}, skipped 5 (already there), failed 0" in capsys.readouterr().out
    assert len(list(out.iterdir())) == N

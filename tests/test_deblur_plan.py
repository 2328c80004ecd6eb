"""``blurkit deblur``'s plan (what is read, what is written, what is left out) and its output, with a fake
model: no TensorFlow, a few tiny images."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from blurkit.cli.deblur import _plan
from blurkit.cli.main import main
from blurkit.data.io import read_image, write_image


class Invert:
    """A fake deblurrer: inverts uint8 images; counts calls; can raise on one call."""

    def __init__(self, raise_at: int | None = None, exc: BaseException | None = None) -> None:
        self.calls, self.raise_at, self.exc = 0, raise_at, exc

    def predict(self, image):
        self.calls += 1
        if self.calls == self.raise_at:
            raise self.exc
        return 255 - image


@pytest.fixture
def fake(monkeypatch):
    """The fake model that ``blurkit deblur`` loads, whatever model file or preset it is given; ``loaded``
    lists the (model, preset) it was asked for."""
    import blurkit.cli._common as common

    model = Invert()
    model.loaded = []

    def load(name, preset=None, **_):
        model.loaded.append((name, preset))
        return model

    monkeypatch.setattr(common, "load_deblurrer", load)
    return model


def _image(value: int) -> np.ndarray:
    return np.full((8, 12, 3), value, np.uint8)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["deblur", *map(str, argv)])
    printed = capsys.readouterr()
    return rc, printed.out, printed.err


# ------------------------------------------------------------------------ never over an input (bug 1)
def test_an_out_inside_an_input_folder_never_replaces_the_photos_there(fake, tmp_path, capsys):
    """``blurkit deblur p -o p/sub``: p/sub/a.png, a photo (not read as input, being in --out), was replaced
    by p/a.png's restoration. It is left as it is, and said so; the other outputs are written."""
    p = tmp_path / "p"
    write_image(p / "a.png", _image(10))
    write_image(p / "b.png", _image(20))
    write_image(p / "sub" / "a.png", _image(100))
    before = _files(p)
    rc, out, err = _run(capsys, p, "-o", p / "sub")
    assert rc == 0
    assert _files(p)["sub/a.png"] == before["sub/a.png"]  # the photo, untouched
    assert int(read_image(p / "sub" / "b.png")[0, 0, 0]) == 255 - 20
    assert "done 1, skipped 1 (already there), failed 0" in out
    assert f"not read as input: 1 image in --out {p / 'sub'}, inside the input folder {p}" in out
    (line,) = err.splitlines()
    assert f"{p / 'sub' / 'a.png'} (--out is inside the input folder {p}" in line and "left as it is" in line
    assert fake.calls == 1

    plan = _plan([str(p)], str(p / "sub"), "")
    assert (plan.kept.n, plan.unread.n, [d.name for _, d in plan.jobs]) == (2, 2, [])
    assert plan.kept_now == 2  # a.png and b.png now: both outputs are there
    rc, out, err = _run(capsys, p, "-o", p / "sub", "--skip-existing", "-q")  # resuming: nothing to say
    assert rc == 0 and "done 0, skipped 2" in out and err == ""


def test_an_out_inside_an_input_folder_with_a_suffix_replaces_earlier_outputs(fake, tmp_path, capsys):
    """With a --suffix, files ending in it are earlier outputs, as beside the photos: written again."""
    p = tmp_path / "p"
    write_image(p / "a.png", _image(10))
    write_image(p / "sub" / "a.png", _image(100))
    write_image(p / "sub" / "a_s.png", _image(0))  # an earlier run's output
    rc, out, err = _run(capsys, p, "-o", p / "sub", "--suffix", "_s", "-q")
    assert rc == 0 and "done 1, skipped 0" in out and err == ""
    assert int(read_image(p / "sub" / "a_s.png")[0, 0, 0]) == 255 - 10
    assert int(read_image(p / "sub" / "a.png")[0, 0, 0]) == 100


def test_an_out_reached_through_a_link_in_an_input_folder_is_no_input(fake, tmp_path, capsys):
    """``photos/link -> ../out`` with ``-o out``: the walk went through the link and restored the outputs
    again, into out/link/ (with 30 photos, 55 files came out, and the lazy walk picked up the outputs written
    meanwhile). Files reached through the link are out of the input, as those of an --out inside it are."""
    p, o = tmp_path / "p", tmp_path / "out"
    for i in range(3):
        write_image(p / f"{i}.png", _image(10 * i))
    write_image(o / "old.png", _image(200))
    (p / "link").symlink_to(o, target_is_directory=True)
    rc, out, err = _run(capsys, p, "-o", o, "--io-workers", "0")
    assert rc == 0, err
    assert sorted(_files(o)) == ["0.png", "1.png", "2.png", "old.png"] and fake.calls == 3
    assert "done 3, skipped 0" in out
    assert f"not read as input: 1 image in --out {o}, reached through a link in an input folder" in out


def test_a_sub_folder_that_cannot_be_listed_is_a_failure(fake, tmp_path, capsys, monkeypatch):
    """``in/locked`` (mode 000) was warned about, twice, and the run ended "failed 0" with exit status 0, which
    promises every image was written. It is now one failure line and the partial exit status."""
    import os

    p = tmp_path / "p"
    write_image(p / "a.png", _image(10))
    write_image(p / "locked" / "b.png", _image(20))
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(p / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    rc, out, err = _run(capsys, p, "-o", tmp_path / "out")
    assert rc == 3, (out, err)
    assert "done 1, skipped 0 (already there), failed 1" in out
    assert err.splitlines() == [f"  failed: {p / 'locked'}: cannot list this folder (Permission denied): the "
                                "images in it are left out"], err
    rc, out, err = _run(capsys, p / "locked", "-o", tmp_path / "out")  # the input itself: a usage error
    assert rc == 1 and "Permission denied" in err


def test_beside_the_photos_an_image_that_is_no_earlier_output_is_not_written_over(fake, tmp_path, capsys):
    """``album/beach.png`` beside an unrelated ``album/beach_sharp.png``: with ``-o album --suffix _sharp`` the
    second was taken as beach.png's earlier output and replaced by its restoration, although blurkit never
    writes over a photo. An output has its photo's size; an image of another size is left as it is, and the
    photo it would have been written for counts as failed. A real earlier output is written over as before."""
    album = tmp_path / "album"
    write_image(album / "beach.png", _image(10))  # 8x12
    photo = np.full((30, 20, 3), 77, np.uint8)
    write_image(album / "beach_sharp.png", photo)
    write_image(album / "cliff.png", _image(20))
    write_image(album / "cliff_sharp.png", np.zeros((12, 8, 3), np.uint8))  # an earlier output (written upright)
    rc, out, err = _run(capsys, album, "-o", album, "--suffix", "_sharp")
    assert rc == 3, (out, err)
    np.testing.assert_array_equal(read_image(album / "beach_sharp.png"), photo)
    assert int(read_image(album / "cliff_sharp.png")[0, 0, 0]) == 255 - 20 and fake.calls == 1
    assert "done 1, skipped 0 (already there), failed 1" in out
    assert err.splitlines() == [f"  failed: {album / 'beach.png'}: beach_sharp.png is already there and 20x30, "
                                "not the size of beach.png (12x8): not an earlier output of it but another image "
                                "whose name ends in --suffix _sharp; left as it is (choose another --suffix, or "
                                "move it)"], err


def test_an_input_in_a_format_blurkit_cannot_write_becomes_png_keeping_alpha(fake, tmp_path, capsys):
    """A file without an extension (or a GIF) given by name was written as JPEG, its alpha dropped; JPEG is
    for HEIC camera photos only, the rest becomes PNG."""
    rgba = np.dstack([_image(10), np.full((8, 12), 128, np.uint8)])
    write_image(tmp_path / "scan.png", rgba)
    (tmp_path / "scan.png").rename(tmp_path / "scan")
    rc, out, err = _run(capsys, tmp_path / "scan", "-o", tmp_path / "out")
    assert rc == 0, err
    assert sorted(_files(tmp_path / "out")) == ["scan.png"]
    back = read_image(tmp_path / "out" / "scan.png", alpha="keep")
    assert back.shape == (8, 12, 4)  # the alpha channel kept (the fake model inverts it too)


def test_an_input_folder_inside_out_is_read(fake, tmp_path, capsys):
    """``blurkit deblur data/blurred -o data`` said "no images found in data/blurred": every file of an input
    inside --out was taken for one of the output folder's (the check for a link to --out in an input)."""
    data = tmp_path / "data"
    write_image(data / "blurred" / "a.png", _image(10))
    rc, out, err = _run(capsys, data / "blurred", "-o", data)
    assert rc == 0, err
    assert int(read_image(data / "a.png")[0, 0, 0]) == 255 - 10 and "not read as input" not in out


def test_only_an_image_that_is_no_earlier_output_is_a_failure_not_nothing_to_do(fake, tmp_path, capsys):
    """With nothing else to restore the run said "nothing to restore: beach_sharp.png ends in --suffix _sharp,
    so is an earlier output" (exit 2), against the size check; and the note listed it among the earlier
    outputs. It is one failure (exit 1), named once, and no model is loaded for it."""
    album = tmp_path / "album"
    write_image(album / "beach.png", _image(10))
    write_image(album / "beach_sharp.png", np.full((30, 20, 3), 77, np.uint8))
    rc, out, err = _run(capsys, album, "-o", album, "--suffix", "_sharp")
    assert rc == 1, (out, err)
    assert "done 0, skipped 0 (already there), failed 1" in out and "earlier output" not in out
    assert "beach_sharp.png is already there and 20x30" in err and fake.loaded == []


def test_a_hidden_out_inside_an_input_folder_is_no_input(fake, tmp_path, capsys):
    """A hidden folder is never listed, so nothing in it is an input: its files are written over."""
    p = tmp_path / "p"
    write_image(p / "a.png", _image(10))
    write_image(p / ".out" / "a.png", _image(100))
    rc, out, err = _run(capsys, p, "-o", p / ".out", "-q")
    assert rc == 0 and "done 1, skipped 0" in out and err == ""
    assert int(read_image(p / ".out" / "a.png")[0, 0, 0]) == 255 - 10


# ------------------------------------------------------- earlier outputs given one by one (bug 2)
def test_a_shell_glob_rerun_leaves_earlier_outputs_out(fake, tmp_path, capsys):
    """``blurkit deblur t/*.png -o t --suffix _s`` twice gave a_s.png, then a_s_s.png: files given one by
    one whose outputs go beside them are filtered like a folder's."""
    t = tmp_path / "t"
    write_image(t / "a.png", _image(10))
    for run in range(2):
        rc, out, _ = _run(capsys, *sorted(t.glob("*.png")), "-o", t, "--suffix", "_s")
        assert rc == 0 and "done 1, skipped 0" in out
        assert ("left out 1 input ending in --suffix _s, taken as earlier output: " in out) == (run == 1)
        assert sorted(_files(t)) == ["a.png", "a_s.png"]
    rc, out, _ = _run(capsys, t, "-o", t, "--suffix", "_s")  # a folder says so too
    assert rc == 0 and f"taken as earlier output: {t / 'a_s.png'}" in out
    rc, _, err = _run(capsys, t / "a_s.png", "-o", t, "--suffix", "_s")
    assert rc == 2 and f"nothing to restore in {t / 'a_s.png'}" in err and "earlier output" in err
    rc, out, _ = _run(capsys, t / "a_s.png", "-o", tmp_path / "elsewhere", "--suffix", "_s", "-q")
    assert rc == 0 and os_names(tmp_path / "elsewhere") == ["a_s_s.png"]  # not beside it: restored


def os_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------ the model file's name (bug 3)
def test_a_model_file_name_in_capitals_is_the_model(fake, tmp_path, capsys):
    write_image(tmp_path / "a.png", _image(10))
    model = tmp_path / "M.KERAS"
    model.write_bytes(b"a model")
    rc, _, err = _run(capsys, model, tmp_path / "a.png", "-o", tmp_path / "x.png", "-q")
    assert rc == 0, err
    assert fake.loaded == [(str(model), None)] and (tmp_path / "x.png").is_file()
    rc, _, err = _run(capsys, tmp_path / "a.png", model, "-o", tmp_path / "y.png")
    assert rc == 2 and "MODEL comes first" in err


# ------------------------------------------------------------------- the same file twice (bug 4)
def test_the_same_file_given_twice_is_restored_once(fake, tmp_path, capsys):
    small = tmp_path / "small"
    write_image(small / "a.png", _image(10))
    write_image(small / "b.png", _image(20))
    rc, out, err = _run(capsys, small, small / "a.png", "-o", tmp_path / "o", "-q")
    assert rc == 0 and "done 2, skipped 0" in out and err == ""
    assert fake.calls == 2 and os_names(tmp_path / "o") == ["a.png", "b.png"]
    rc, out, _ = _run(capsys, small / "a.png", small / ".." / "small" / "a.png", "-o", tmp_path / "x.png", "-q")
    assert rc == 0 and (tmp_path / "x.png").is_file()  # one file: to the file name given
    other = tmp_path / "other"
    write_image(other / "a.png", _image(30))  # another file of the same name is still a clash
    rc, _, err = _run(capsys, small, other / "a.png", "-o", tmp_path / "o2")
    assert rc == 2 and "rename one" in err and not (tmp_path / "o2").exists()


# --------------------------------------------------------------------------- Ctrl-C's hint (bug 5)
def test_the_interrupt_hint_says_with_skip_existing(monkeypatch, tmp_path, capsys):
    import blurkit.cli._common as common

    for name, value in (("a.png", 10), ("b.png", 20)):
        write_image(tmp_path / "in" / name, _image(value))
    monkeypatch.setattr(common, "load_deblurrer",
                        lambda model, preset=None, **_: Invert(raise_at=2, exc=KeyboardInterrupt()))
    rc, _, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out", "--io-workers", "0", "-q")
    assert rc == 130
    assert "; run the same command with --skip-existing to go on" in err


def test_a_sigterm_interrupts_deblur_with_exit_status_143(monkeypatch, tmp_path, capsys):
    """SIGTERM (timeout, systemd, Kubernetes) stops a batch as Ctrl-C does, with 128 + 15 (it was 130)."""
    import signal

    import blurkit.cli._common as common
    from blurkit.cli.main import Terminated

    for name, value in (("a.png", 10), ("b.png", 20)):
        write_image(tmp_path / "in" / name, _image(value))
    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None, **_: Invert(raise_at=2, exc=Terminated()))
    rc, out, err = _run(capsys, tmp_path / "in", "-o", tmp_path / "out", "--io-workers", "0", "-q")
    assert rc == 128 + signal.SIGTERM == 143
    assert "done 1" in out and "interrupted after" in err


# ------------------------------------------------------------------ bars and summary (bug 6)
def test_no_progress_bars_outside_a_terminal_and_the_summary_with_quiet(fake, tmp_path, capsys, monkeypatch):
    """Redirected to a file, bars were frames joined by \\r; -q hid the summary. Now bars are drawn on a
    terminal only (never with -q), and the summary and the failure lines are always printed."""
    import tqdm.auto

    src = tmp_path / "in"
    write_image(src / "a.png", _image(10))
    (src / "bad.png").write_bytes(b"not a png")
    for quiet in ([], ["-q"]):
        rc, out, err = _run(capsys, src, "-o", tmp_path / "out", *quiet)
        assert rc == 3 and "done 1, skipped 0 (already there), failed 1" in out  # 3: a partial batch
        assert "\r" not in err and "img/s" not in err
        (line,) = err.splitlines()
        assert line.startswith(f"  failed: {src / 'bad.png'}: not an image")

    made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", lambda *a, **k: made.append(k) or _NoBar())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["deblur", str(src), "-o", str(tmp_path / "out"), "-q"]) == 3
    assert made == []
    assert main(["deblur", str(src), "-o", str(tmp_path / "out")]) == 3
    assert len(made) == 1 and made[0]["unit"] == "img"


class _NoBar:
    total = 2

    def update(self, n=1):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass

    def close(self):
        pass

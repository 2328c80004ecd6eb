"""blurkit.batch: streaming batch deblurring (overlap, bounded memory, resume, failures, progress)."""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurkit.batch import Interrupted, Summary, count_images, deblur_files, folder_jobs, iter_images
from blurkit.cli.main import main
from blurkit.data.io import list_images, read_image, write_image
from helpers import changing_unet, levels

TINY = {"width": 4, "depth": 1, "blocks": 1}


def _photo(name: str, h: int = 24, w: int = 32) -> np.ndarray:
    from skimage import data

    return cv2.resize(getattr(data, name)(), (w, h), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """12 small images: PNG and JPEG, RGB, grey and RGBA, in sub-folders."""
    root = tmp_path_factory.mktemp("photos")
    names = ["astronaut", "chelsea", "coffee", "camera"]
    for i in range(12):
        img = _photo(names[i % 4])
        if i % 5 == 4:
            img = np.dstack([img, np.full(img.shape[:2], 200, np.uint8)])
        write_image(root / f"sub{i % 3}" / f"p{i:02d}.{'jpg' if i % 4 == 1 else 'png'}", img)
    return root


@pytest.fixture(scope="module")
def tiny():
    """A tiny U-Net that changes images (an untrained one is the identity: see helpers.changing_unet)."""
    return changing_unet(TINY, _photo("astronaut"))


def _check_restored(deblurrer, src_root: Path, out_root: Path, scratch: Path) -> None:
    """Every image under ``src_root`` was written to ``out_root`` as ``deblurrer``'s restoration of it, not as
    it was: the very pixels of ``predict`` (alpha passed through), as write_image encodes them (JPEG: lossy,
    quality 95)."""
    for src in list_images(src_root):
        image = read_image(src, alpha="keep")
        want = deblurrer.predict(image)
        assert levels(want, image) > 1, src  # the restoration changes the photo
        if src.suffix == ".jpg":
            write_image(scratch / "want.jpg", want, quality=95)
            want = read_image(scratch / "want.jpg", alpha="keep")
        np.testing.assert_array_equal(read_image(out_root / src.relative_to(src_root), alpha="keep"), want,
                                      err_msg=str(src), strict=True)


class Invert:
    """A fake deblurrer: inverts uint8 images; counts calls, can raise on one call."""

    def __init__(self, raise_at: int | None = None, exc: BaseException | None = None, delay: float = 0.0):
        self.calls, self.raise_at, self.exc, self.delay = 0, raise_at, exc, delay
        self.threads: set[str] = set()

    def predict(self, image):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.raise_at is not None and self.calls == self.raise_at:
            raise self.exc
        time.sleep(self.delay)
        return 255 - image


def _files(folder) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------- results
def test_overlapped_results_equal_sequential(tiny, photos, tmp_path):
    seq = deblur_files(tiny, list(folder_jobs(photos, tmp_path / "seq")), workers=0)
    ovl = deblur_files(tiny, folder_jobs(photos, tmp_path / "ovl"), workers=2, prefetch=2)
    assert (seq.done, seq.skipped, seq.failed) == (ovl.done, ovl.skipped, ovl.failed) == (12, 0, [])
    a, b = _files(tmp_path / "seq"), _files(tmp_path / "ovl")
    assert sorted(a) == sorted(p.relative_to(photos).as_posix() for p in list_images(photos))
    assert a == b  # the same bytes, hence the same pixels
    rgba = read_image(tmp_path / "ovl" / "sub1" / "p04.png", alpha="keep")
    assert rgba.shape == (24, 32, 4) and (rgba[..., 3] == 200).all()  # alpha passed through
    _check_restored(tiny, photos, tmp_path / "seq", tmp_path)  # and restored, as predict restores them


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_alpha_png_is_restored_and_written_as_grey_alpha(tiny, tmp_path, dtype):
    """A grey + alpha PNG (colour type 4) gives a grey + alpha PNG of its bit depth: grey restored, alpha
    passed through (it was read as RGBA: three channels restored apart, colour fringes, an RGBA file)."""
    grey = _photo("camera").astype(dtype) * (257 if dtype == np.uint16 else 1)
    alpha = np.tile(np.linspace(0, np.iinfo(dtype).max, 32).astype(dtype), (24, 1))
    write_image(tmp_path / "in" / "la.png", np.dstack([grey, alpha]))
    assert deblur_files(tiny, folder_jobs(tmp_path / "in", tmp_path / "out"), workers=0).done == 1
    out = tmp_path / "out" / "la.png"
    assert out.read_bytes()[24:26] == bytes([8 * np.dtype(dtype).itemsize, 4])  # bit depth, grey + alpha
    back = read_image(out, alpha="keep")
    assert back.shape == (24, 32, 2) and back.dtype == dtype
    np.testing.assert_array_equal(back[..., 1], alpha)
    np.testing.assert_array_equal(back[..., 0], tiny.predict(grey))
    assert levels(back[..., 0], grey) > 1  # restored, not written as it was read


class Same:
    """A fake deblurrer that returns its input."""

    def predict(self, image):
        return image


@pytest.mark.parametrize("workers", [0, 2])
def test_float_tiff_is_written_as_float(tmp_path, workers):
    linear = _photo("astronaut").astype(np.float32) / 64.0  # linear / HDR data: up to about 4
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "hdr.tif"), linear[..., ::-1])
    jobs = [(tmp_path / "in" / "hdr.tif", tmp_path / "out" / name) for name in ("hdr.tif", "hdr.png")]
    with pytest.warns(UserWarning, match=r"hdr\.tif: float samples outside \[0, 1\]"):
        assert deblur_files(Same(), jobs, workers=workers).done == 2
    stored = cv2.imread(str(tmp_path / "out" / "hdr.tif"), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored[..., ::-1], linear)  # not clipped to [0, 1], not rounded to 16 bits
    assert read_image(tmp_path / "out" / "hdr.png").dtype == np.uint16  # PNG: 16 bits, not 8


def test_float_tiff_in_unit_range_is_restored_as_float(tiny, tmp_path):
    grey = _photo("camera").astype(np.float32) / 255.0
    cv2.imwrite(str(tmp_path / "f.tif"), grey)
    assert deblur_files(tiny, [(tmp_path / "f.tif", tmp_path / "out" / "f.tif")], workers=0).done == 1
    back = read_image(tmp_path / "out" / "f.tif")
    assert back.dtype == np.float32 and back.shape == grey.shape
    np.testing.assert_allclose(back, tiny.predict(grey), atol=1e-6)
    assert levels(back, grey) > 1  # restored, not written as it was read


def test_cli_io_workers_zero_gives_the_same_files(tiny, photos, tmp_path, monkeypatch, capsys):
    import blurkit.cli._common as common

    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None, **_: tiny)
    assert main(["deblur", str(photos), "-o", str(tmp_path / "a"), "-q"]) == 0
    assert main(["deblur", str(photos), "-o", str(tmp_path / "b"), "--io-workers", "0", "-q"]) == 0
    assert main(["deblur", str(photos), "-o", str(tmp_path / "c"), "--io-workers", "3", "--prefetch", "1",
                 "-q"]) == 0
    assert _files(tmp_path / "a") == _files(tmp_path / "b") == _files(tmp_path / "c")
    _check_restored(tiny, photos, tmp_path / "a", tmp_path)
    capsys.readouterr()
    for flag, value in (("--io-workers", "-1"), ("--prefetch", "0")):
        assert main(["deblur", str(photos), "-o", str(tmp_path / "d"), flag, value]) == 2
        assert flag in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_stages_run_in_their_threads(photos, tmp_path, monkeypatch):
    import blurkit.data.io as bio

    seen: dict[str, set[str]] = {"read": set(), "write": set()}
    real_read, real_write = bio.read_image, bio.write_image

    def read(*a, **k):
        seen["read"].add(threading.current_thread().name)
        return real_read(*a, **k)

    def write(*a, **k):
        seen["write"].add(threading.current_thread().name)
        return real_write(*a, **k)

    monkeypatch.setattr(bio, "read_image", read)
    monkeypatch.setattr(bio, "write_image", write)
    fake = Invert()
    deblur_files(fake, folder_jobs(photos, tmp_path / "o"), workers=2)
    assert fake.threads == {threading.current_thread().name}  # the model runs in the calling thread
    assert all(n.startswith("blurkit-read") for n in seen["read"])
    assert all(n.startswith("blurkit-write") for n in seen["write"])
    seen = {"read": set(), "write": set()}
    deblur_files(Invert(), folder_jobs(photos, tmp_path / "p"), workers=0)
    assert seen == {"read": {threading.current_thread().name}, "write": {threading.current_thread().name}}


# ---------------------------------------------------------------------------------- bounded memory
@pytest.mark.parametrize("prefetch", [1, 3])
def test_images_in_memory_are_bounded(prefetch, tmp_path, monkeypatch):
    """A slow model and a slow writer: readers run ahead, results queue up; both stay within the bound."""
    import blurkit.data.io as bio
    import blurkit.data.metadata as bmeta

    lock = threading.Lock()
    live, most = [0], [0]

    def track(image):
        with lock:
            live[0] += 1
            most[0] = max(most[0], live[0])
        weakref.finalize(image, lambda: _drop(lock, live))
        return image

    monkeypatch.setattr(bio, "read_image", lambda path, **kw: track(np.zeros((8, 8, 3), np.uint8)))
    monkeypatch.setattr(bmeta, "read_metadata", lambda path: bmeta.Metadata())  # no files: reading is faked
    monkeypatch.setattr(bio, "write_image", lambda path, image, **kw: time.sleep(0.02))

    pulled, first_predict = [0], []

    def jobs():
        for i in range(30):
            pulled[0] += 1
            yield tmp_path / f"{i}.png", tmp_path / "out" / f"{i}.png"

    class Slow:
        def predict(self, image):
            if not first_predict:
                first_predict.append(pulled[0])
            time.sleep(0.005)
            return track(image + 1)

    slow = Slow()
    s = deblur_files(slow, jobs(), workers=2, prefetch=prefetch)
    assert s.done == 30 and not s.failed
    assert first_predict == [prefetch + 1]  # the jobs are taken lazily, only prefetch ahead of the model
    assert prefetch + 1 <= most[0] <= 2 * prefetch + 1, most[0]
    assert live[0] == 0


def _drop(lock, live):
    with lock:
        live[0] -= 1


# --------------------------------------------------------------------------------- resume, interrupt
def test_interrupted_run_leaves_complete_files_and_resumes(photos, tmp_path):
    out, ref = tmp_path / "out", tmp_path / "ref"
    assert deblur_files(Invert(), folder_jobs(photos, ref)).done == 12
    with pytest.raises(Interrupted) as caught:
        deblur_files(Invert(raise_at=5, exc=KeyboardInterrupt()), folder_jobs(photos, out), workers=2, prefetch=3)
    first = caught.value.summary
    assert isinstance(caught.value, KeyboardInterrupt) and first.interrupted
    assert (first.done, first.skipped, first.failed) == (4, 0, [])  # results computed before Ctrl-C are kept
    written = _files(out)
    assert len(written) == 4 and not [p for p in out.rglob(".*")]  # no temporary files
    assert all(written[k] == _files(ref)[k] for k in written)  # complete, the same bytes
    second = deblur_files(Invert(), folder_jobs(photos, out), skip_existing=True)
    assert (second.done, second.skipped, second.failed, second.interrupted) == (8, 4, [], False)
    assert _files(out) == _files(ref)


def test_cli_interrupt_reports_and_exits_130(photos, tmp_path, monkeypatch, capsys):
    import blurkit.cli._common as common

    fake = Invert(raise_at=3, exc=KeyboardInterrupt())
    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None, **_: fake)
    assert main(["deblur", str(photos), "-o", str(tmp_path / "o"), "-q"]) == 130
    err = capsys.readouterr().err
    assert "interrupted after 2 files (done 2, skipped 0" in err and "--skip-existing" in err
    monkeypatch.setattr(common, "load_deblurrer", lambda model, preset=None, **_: Invert())
    assert main(["deblur", str(photos), "-o", str(tmp_path / "o"), "--skip-existing"]) == 0
    assert "done 10, skipped 2 (already there), failed 0" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize("workers", [0, 2])
def test_failures_are_listed_in_input_order_and_the_batch_goes_on(photos, tmp_path, workers):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    (bad / "text.jpg").write_text("not a photo")
    (bad / "file").write_text("a file where a folder is needed")
    good = sorted(list_images(photos))
    jobs = [
        (bad / "empty.png", tmp_path / "o" / "empty.png"),
        (good[0], tmp_path / "o" / "a.png"),
        (good[1], tmp_path / "o" / "b.png"),  # the model fails on this one (2nd predict call)
        (bad / "missing.png", tmp_path / "o" / "missing.png"),
        (good[2], bad / "file" / "c.png"),  # cannot be written
        (bad / "text.jpg", tmp_path / "o" / "text.jpg"),
        (good[3], tmp_path / "o" / "d.gif"),  # no encoder for this suffix
        (good[4], tmp_path / "o" / "e.png"),
    ]
    s = deblur_files(Invert(raise_at=2, exc=RuntimeError("model broke")), jobs, workers=workers, prefetch=2)
    assert s.done == 2 and s.skipped == 0 and not s.interrupted
    assert [p.name for p, _ in s.failed] == ["empty.png", good[1].name, "missing.png", good[2].name, "text.jpg",
                                             good[3].name]
    reasons = [why for _, why in s.failed]
    # an unreadable file's reason is listed beside it, without its name again
    assert reasons[0] == "empty file (0 bytes)" and reasons[1] == "RuntimeError: model broke"
    assert "No such file" in reasons[2] and reasons[4].startswith("not an image") and ".gif" in reasons[5]
    assert sorted(os.listdir(tmp_path / "o")) == ["a.png", "e.png"]
    assert str(s) == "done 2, skipped 0 (already there), failed 6" and s.total == 8


@pytest.mark.parametrize("workers", [0, 2])
def test_a_write_error_names_the_output_not_its_temporary_file(photos, tmp_path, monkeypatch, workers):
    import blurkit.data.io as bio

    def refuse(dir=None, prefix="", suffix=""):  # as mkstemp fails in a folder the user may not write to
        raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}nz2w6k4u{suffix}"))

    monkeypatch.setattr(bio.tempfile, "mkstemp", refuse)
    src = sorted(list_images(photos))[0]
    s = deblur_files(Invert(), [(src, tmp_path / "o" / "x.png")], workers=workers)
    assert s.failed == [(src, f"[Errno 13] Permission denied: '{tmp_path / 'o' / 'x.png'}'")]


def test_bad_arguments():
    with pytest.raises(ValueError, match="workers"):
        deblur_files(Invert(), [], workers=-1)
    with pytest.raises(ValueError, match="prefetch"):
        deblur_files(Invert(), [], prefetch=0)
    s = deblur_files(Invert(), [])
    assert (s.done, s.skipped, s.failed, s.total) == (0, 0, [], 0) and isinstance(s, Summary)


# ------------------------------------------------------------------------------------------ progress
class _Recorder:
    bars: list = []

    def __init__(self, *args, **kwargs):
        self.kwargs, self.total, self.n, self.closed = kwargs, kwargs.get("total"), 0, False
        self.totals: list = []
        _Recorder.bars.append(self)

    def update(self, n=1):
        self.n += n
        self.totals.append(self.total)

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def close(self):
        self.closed = True


def test_progress_bar_knows_the_total(photos, tmp_path, monkeypatch):
    import tqdm.auto

    monkeypatch.setattr(tqdm.auto, "tqdm", _Recorder)
    _Recorder.bars = []
    jobs = list(folder_jobs(photos, tmp_path / "a"))
    deblur_files(Invert(), jobs, progress=True)
    (bar,) = _Recorder.bars
    assert bar.kwargs["total"] == 12 and bar.kwargs["unit"] == "img" and bar.n == 12 and bar.closed

    answers = iter([None, None, 12])  # a count finishing in the background
    deblur_files(Invert(), folder_jobs(photos, tmp_path / "b"), progress=True, total=lambda: next(answers, 12))
    bar = _Recorder.bars[-1]
    assert bar.kwargs["total"] is None and bar.totals[:3] == [None, None, 12] and bar.totals[-1] == 12

    deblur_files(Invert(), folder_jobs(photos, tmp_path / "a"), progress=True, skip_existing=True)
    assert _Recorder.bars[-1].postfix == "skipped 12, failed 0"
    deblur_files(Invert(), jobs, progress=False)
    assert len(_Recorder.bars) == 3


def test_progress_bar_shows_rate_and_time_left(photos, tmp_path, capsys):
    deblur_files(Invert(), list(folder_jobs(photos, tmp_path / "o")), progress=True)
    err = capsys.readouterr().err
    assert re.search(r"deblur: 100%.* 12/12 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+ ?\w*img/s\]", err), err[-300:]


# ------------------------------------------------------------------------------------------ listing
def test_iter_images_lists_like_list_images(tmp_path):
    root = tmp_path / "root"
    for name in ["b.png", "a.JPG", "notes.txt", ".hidden.png", "sub/c.tif", "sub/deep/d.webp", ".hid/e.png",
                 "zz/f.bmp", "x.png.txt"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    (root / "shots.png").mkdir()  # a folder named like an image
    (root / "shots.png" / "g.png").write_bytes(b"")
    (root / "sub" / "deep" / "loop").symlink_to(root)  # a cycle
    (root / "a-link").symlink_to(root / "zz")  # a link before the real folder
    (root / "broken.png").symlink_to(root / "nowhere.png")
    lazy = iter_images(root)
    assert next(lazy) == list_images(root)[0]
    assert list(iter_images(root)) == list_images(root)
    assert count_images(root) == len(list_images(root)) == 6
    assert "zz/f.bmp" in [p.relative_to(root).as_posix() for p in iter_images(root)]  # not a-link/f.bmp
    assert list(iter_images(root / "sub")) == list_images(root / "sub")  # through the loop, once
    assert [(s.name, d.as_posix()) for s, d in folder_jobs(root / "zz", "out", suffix="_x")] == [
        ("f.bmp", "out/f_x.bmp")]
    assert list(folder_jobs(root / "b.png", "out")) == [(root / "b.png", Path("out/b.png"))]


def test_count_in_background():
    from blurkit.cli.deblur import _count_in_background

    gate = threading.Event()
    total = _count_in_background(lambda: (gate.wait(5), 42)[1])
    assert total() is None
    gate.set()
    deadline = time.time() + 5
    while total() is None and time.time() < deadline:
        time.sleep(0.001)
    assert total() == 42


def test_a_progress_bar_asks_the_deblurrer_for_its_tiles(tmp_path):
    """With ``progress``, a deblurrer whose ``predict`` takes ``progress`` (a Deblurrer: a bar of a large
    photo's tiles) is asked for it; one whose ``predict`` takes the image alone still works."""
    write_image(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    seen = []

    class Tiled:
        def predict(self, image, progress=False):
            seen.append(progress)
            return image

    class Plain:
        def predict(self, image):
            return image

    jobs = [(tmp_path / "a.png", tmp_path / "out" / "a.png")]
    assert deblur_files(Tiled(), jobs, workers=0, progress=True).done == 1
    assert deblur_files(Tiled(), jobs, workers=0).done == 1
    assert seen == [True, False]
    assert deblur_files(Plain(), jobs, workers=0, progress=True).done == 1

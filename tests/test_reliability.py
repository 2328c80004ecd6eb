"""Reliability and security: bad inputs, crashes and untrusted files never cost data or run code.

* **Bad input corpus**: one table (``CORPUS``) states the documented outcome of every messy input, and each
  consumer is checked against it: :func:`read_image`, ``blurkit deblur MODEL folder -o out``,
  :meth:`Deblurrer.fit` and ``blurkit make-pairs`` on a folder holding all of them (the good files are
  processed, each bad one is named with its reason, nothing stops the batch). Array inputs of
  :meth:`Deblurrer.predict` are in ``ARRAYS``. Cases already pinned down elsewhere are not repeated:
  tests/test_io.py (every EXIF orientation, truncated WebP/TIFF/BMP, 16-bit TIFF, grey+alpha, float
  TIFF, symlink cycles in :func:`list_images`), tests/test_deblurrer.py (``test_predict_bad_input``:
  NaN, Inf, wrong rank, 5 channels, bool, negative int64, out-of-range floats, empty arrays).
* **Kill tests**: ``Deblurrer.save`` SIGKILLed at random moments (20 kills; 200 with ``--run-slow``), and
  ``blurkit deblur`` SIGKILLed mid-folder then resumed with ``--skip-existing``. (Training is in
  tests/test_resume.py.)
* **Untrusted model files**: what tests/test_deblurrer.py does not already cover (truncated zip, path
  traversal, wrong format, NaN, Lambda layer are there).
* **Property tests** (Hypothesis): lossless write/read round trips. Blur properties and the tiling
  identity are property-tested in tests/test_blurs.py and tests/test_tiling.py.

Reproduce: ``pytest tests/test_reliability.py -q`` (add ``--run-slow`` for the long kill run).
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from blurkit import Deblurrer
from blurkit.cli.main import main
from blurkit.data.io import ImageReadError, list_images, read_image, write_image
from blurkit.deblurrer import METADATA_NAME, ModelFileError
from helpers import changing_unet, h5_bytes, levels, rewrite_model

TINY = {"width": 4, "depth": 1, "blocks": 1}
H, W = 24, 32


# ------------------------------------------------------------------------------------------ the corpus
def _photo(h: int = H, w: int = W, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)


def _encoded(suffix: str, image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(suffix, np.ascontiguousarray(image[..., ::-1]) if image.ndim == 3 else image)
    assert ok
    return data.tobytes()


def _png_bomb(width: int, height: int) -> bytes:
    """A valid 8x8 PNG whose header claims width x height (the CRC is fixed up)."""
    data = bytearray(_encoded(".png", np.zeros((8, 8), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def _pil_save(path: Path, image: Any, fmt: str, **kw) -> None:
    image.save(path, fmt, **kw)


def _palette(path: Path) -> None:
    from PIL import Image

    _pil_save(path, Image.fromarray(_photo()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG")


def _cmyk(path: Path) -> None:
    from PIL import Image

    _pil_save(path, Image.fromarray(_photo()).convert("CMYK"), "JPEG", quality=95)


def _exif_rotated(path: Path) -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    _pil_save(path, Image.fromarray(_photo()), "JPEG", quality=95, exif=exif.tobytes())


def _symlink(target: str):
    def make(path: Path) -> None:
        os.symlink(target, path)

    return make


def _symlink_loop(path: Path) -> None:
    other = path.with_name("other end of the loop.png")
    os.symlink(other.name, path)
    os.symlink(path.name, other)


@dataclass
class Case:
    """One messy input and its documented outcome.

    ``shape``/``dtype``: read and processed, giving this (``read_image`` default: alpha dropped);
    ``out_shape``: what ``blurkit deblur`` writes if different (it keeps alpha). ``error``: refused with an
    ``ImageReadError`` whose message names the file and matches this reason; every batch command reports
    it and goes on. ``listed=False``: not an image file, never listed (so never processed or reported).
    """

    name: str
    make: Any
    shape: tuple | None = None
    dtype: Any = np.uint8
    error: str | None = None
    listed: bool = True
    out_shape: tuple | None = None
    why: str = ""


def _writes(data_or_image, bits=None):
    def make(path: Path) -> None:
        if isinstance(data_or_image, bytes):
            path.write_bytes(data_or_image)
        else:
            write_image(path, data_or_image, bits=bits)

    return make


_PNG = _encoded(".png", _photo())
_JPG = _encoded(".jpg", _photo())
_RGBA = np.dstack([_photo(), np.linspace(0, 255, H * W).reshape(H, W).astype(np.uint8)])

CORPUS = [
    Case("zero byte.png", _writes(b""), error="empty file", why="0 bytes"),
    Case("truncated.png", _writes(_PNG[: len(_PNG) // 2]), error="truncated or corrupt", why="half a PNG"),
    Case("truncated.jpg", _writes(_JPG[: len(_JPG) // 2]), error="truncated or corrupt JPEG",
         why="half a JPEG (no end-of-image marker)"),
    Case("text.jpg", _writes(b"this is not a picture\n"), error="not an image", why="a text file named .jpg"),
    Case("bomb.png", _writes(_png_bomb(60000, 60000)),
         error=r"image is 3,600,000,000 pixels, more than max_pixels=178,956,970 \(decompression-bomb guard\)",
         why="header declares 60000x60000: refused before decoding"),
    Case("sixteen bit.png", _writes(_photo().astype(np.uint16) * 257, bits=16), shape=(H, W, 3),
         dtype=np.uint16, why="16-bit RGB stays 16-bit"),
    Case("gray.png", _writes(_photo()[..., 1]), shape=(H, W), why="grayscale stays grayscale"),
    Case("rgba.png", _writes(_RGBA), shape=(H, W, 3), out_shape=(H, W, 4),
         why="alpha dropped by read_image, passed through unchanged by deblur"),
    Case("palette.png", _palette, shape=(H, W, 3), why="palette expanded to RGB"),
    Case("cmyk.jpg", _cmyk, shape=(H, W, 3), why="CMYK converted to RGB (Pillow)"),
    Case("exif rotated.jpg", _exif_rotated, shape=(W, H, 3), why="EXIF orientation 6 applied: upright"),
    Case("one pixel.png", _writes(_photo(1, 1)), shape=(1, 1, 3), why="1x1"),
    Case("smaller than tile.png", _writes(_photo(5, 3)), shape=(5, 3, 3),
         why="5x3: smaller than the tile (32) and the U-Net's stride"),
    Case("larger than tile.png", _writes(_photo(40, 56)), shape=(40, 56, 3), why="40x56: restored in tiles"),
    Case("été 日本 photo.png", _writes(_photo(seed=1)), shape=(H, W, 3), why="non-ASCII and spaces in the name"),
    Case("with space.jpg", _writes(_JPG), shape=(H, W, 3), why="space in the name"),
    Case("folder.png", lambda p: p.mkdir(), error="is a folder", listed=False,
         why="a directory named like an image: not a file"),
    Case("folder.png/inside.png", _writes(_photo(seed=2)), shape=(H, W, 3), why="the folder's content is processed"),
    Case("loop", _symlink("."), error="is a folder", listed=False, why="link to its own folder: visited once"),
    Case("self loop.png", _symlink_loop, error="Too many levels of symbolic links", listed=False,
         why="a file symlink loop: a dangling link, skipped like any broken link"),
    Case("notes.txt", _writes(b"hello"), error="not an image", listed=False, why="no image suffix"),
]
GOOD = [c for c in CORPUS if c.error is None]
BAD = [c for c in CORPUS if c.error is not None and c.listed]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    for case in CORPUS:
        case.make(root / case.name)
    return root


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A tiny U-Net that changes images (an untrained one is the identity: see helpers.changing_unet)."""
    return changing_unet(TINY, _photo()).save(tmp_path_factory.mktemp("model") / "tiny.keras")


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_read_image(corpus, case):
    path = corpus / case.name
    if case.error is None:
        image = read_image(path)
        assert image.shape == case.shape and image.dtype == case.dtype
    elif case.listed:
        with pytest.raises(ImageReadError, match=re.escape(case.name) + ": .*" + case.error):
            read_image(path)
    else:
        with pytest.raises((OSError, ImageReadError), match=case.error):
            read_image(path)


def test_only_image_files_are_listed(corpus):
    listed = {p.relative_to(corpus).as_posix() for p in list_images(corpus)}
    assert listed == {c.name for c in CORPUS if c.listed}


def test_deblur_folder_processes_good_files_and_names_bad_ones(corpus, model_file, tmp_path, capsys):
    out = tmp_path / "out"
    # 3: some files failed, the others were written (0 only when every file was)
    assert main(["deblur", str(model_file), str(corpus), "-o", str(out), "--tile-size", "32", "-q"]) == 3
    err = capsys.readouterr().err
    failures = dict(re.findall(r"^  failed: (.+?): (.*)$", err, flags=re.M))
    assert sorted(failures) == sorted(str(corpus / c.name) for c in BAD)
    for case in BAD:  # the library's reasons, in the CLI's words where it names its own option
        assert re.search(case.error.replace("max_pixels=", "--max-pixels "), failures[str(corpus / case.name)]), \
            case.name
    d = Deblurrer.load(model_file)
    d.tile_size, d.tile_overlap = 32, min(d.tile_overlap, 8)  # as --tile-size 32 sets them
    for case in GOOD:
        restored = read_image(out / case.name, alpha="keep")
        assert restored.shape == (case.out_shape or case.shape) and restored.dtype == case.dtype, case.name
        image = read_image(corpus / case.name, alpha="keep")
        want = d.predict(image)  # restored, as predict restores it: not written as it was read
        assert levels(want, image) > 1, case.name
        if case.name.endswith(".jpg"):  # lossy: the restoration as write_image encodes it (quality 95)
            write_image(tmp_path / "want.jpg", want, quality=95)
            want = read_image(tmp_path / "want.jpg")
        np.testing.assert_array_equal(restored, want, err_msg=case.name, strict=True)
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {c.name for c in GOOD}  # and no temporary files
    rgba = read_image(out / "rgba.png", alpha="keep")
    np.testing.assert_array_equal(rgba[..., 3], _RGBA[..., 3])  # alpha passed through


def test_max_pixels_is_configurable(corpus, model_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["deblur", str(model_file), str(corpus), "-o", str(out), "--max-pixels", "800", "-q"]) == 3
    err = capsys.readouterr().err
    assert "larger than tile.png: image is 56x40 = 2,240 pixels, more than --max-pixels 800" in err
    assert (out / "gray.png").is_file() and not (out / "larger than tile.png").exists()
    assert main(["deblur", str(model_file), str(corpus), "-o", str(out), "--max-pixels", "0"]) == 2
    d = Deblurrer.load(model_file)
    with pytest.raises(ImageReadError, match="max_pixels=100"):
        d.predict(corpus / "gray.png", max_pixels=100)
    with pytest.raises(ImageReadError, match="max_pixels=100"):
        read_image(corpus / "gray.png", max_pixels=100)
    assert read_image(corpus / "gray.png", max_pixels=H * W).shape == (H, W)


def test_fit_skips_bad_files_with_warnings(corpus):
    d = Deblurrer(model="unet", model_options=TINY, patch_size=16, batch_size=1, patches_per_image=1)
    n = len([c for c in CORPUS if c.listed])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d.fit(corpus, epochs=1, steps_per_epoch=n, validation_split=0, verbose=0)
    messages = [str(w.message) for w in caught if "skipping unreadable" in str(w.message)]
    for case in BAD:
        assert any(re.search(re.escape(case.name) + ": .*" + case.error, m) for m in messages), case.name
    assert len(set(messages)) == len(BAD)  # each bad file (no good one), with its reason
    assert len(d.history["loss"]) == 1 and np.isfinite(d.history["loss"][0])


def test_make_pairs_processes_good_files_and_names_bad_ones(corpus, tmp_path, capsys):
    out = tmp_path / "pairs"
    # exit status 3: some files failed, the others made pairs (0 would say every one did)
    assert main(["make-pairs", str(corpus), str(out), "--sigma", "1", "--no-progress"]) == 3
    captured = capsys.readouterr()
    printed = captured.out
    assert f"wrote {len(GOOD)} of {len(GOOD) + len(BAD)} pairs" in printed
    for case in BAD:  # on stderr, as the other commands report theirs
        assert re.search(rf"^  {re.escape(case.name)}: .*{case.error}", captured.err, flags=re.M), case.name
    for case in GOOD:
        sharp = read_image(out / "sharp" / Path(case.name).with_suffix(".png"))
        assert sharp.shape == case.shape and sharp.dtype == case.dtype
    assert "ignored 1 file without an image suffix: notes.txt" in printed


def test_mismatched_pair_folders(tmp_path):
    blurred, sharp = tmp_path / "blurred", tmp_path / "sharp"
    for name in ("a.png", "b.png", "only_blurred.png"):
        write_image(blurred / name, _photo(seed=3))
    write_image(sharp / "a.png", _photo(seed=4))
    write_image(sharp / "b.png", _photo(30, 20, seed=5))  # a different size
    write_image(sharp / "only_sharp.png", _photo(seed=6))
    d = Deblurrer(model="unet", model_options=TINY, patch_size=16, batch_size=1, patches_per_image=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d.fit((blurred, sharp), epochs=1, steps_per_epoch=4, validation_split=0, verbose=0)
    text = "\n".join(str(w.message) for w in caught)
    assert re.search(r"only_blurred\.png: no sharp partner", text)
    assert re.search(r"only_sharp\.png: no blurred partner", text)
    assert re.search(r"skipping unreadable training item: .*b\.png \(24, 32\) and .*b\.png \(30, 20\) differ", text)
    assert len(d.history["loss"]) == 1


# Arrays given to Deblurrer.predict (test_predict_bad_input in tests/test_deblurrer.py has NaN, +Inf, wrong
# rank, 5 channels, bool, negative int64, floats outside [0, 65535] and empty arrays).
ARRAYS = {
    "int64 0..255": (np.full((6, 7, 3), 200, np.int64), "ok"),
    "int32 0..65535": (np.full((6, 7, 3), 40000, np.int32), "ok"),
    "float16 [0, 1]": (np.full((6, 7), 0.5, np.float16), "ok"),
    "grey + alpha (H, W, 2)": (np.full((6, 7, 2), 9, np.uint8), "ok"),
    "-inf": (np.full((6, 7, 3), -np.inf, np.float32), "NaN or infinite"),
    "uint32 above 65535": (np.full((6, 7, 3), 70000, np.uint32), "outside"),
    "complex": (np.zeros((6, 7, 3), np.complex64), "unsupported image dtype"),
    "object": (np.zeros((6, 7, 3), object), "unsupported image dtype"),
    "(H, W, 0)": (np.zeros((6, 7, 0), np.uint8), "expected an image"),
}


# The dtype each accepted array stands for: it is restored as that image (grey + alpha: as its grey channel).
NATIVE = {"int64 0..255": np.uint8, "int32 0..65535": np.uint16, "float16 [0, 1]": np.float32,
          "grey + alpha (H, W, 2)": np.uint8}


@pytest.mark.parametrize("name", list(ARRAYS))
def test_predict_arrays(model_file, name):
    d = _tiny_loaded(model_file)
    x, outcome = ARRAYS[name]
    assert (outcome == "ok") == (name in NATIVE)
    if outcome == "ok":
        y = d.predict(x)
        assert y.shape == x.shape and y.dtype == x.dtype
        grey_alpha = x.ndim == 3 and x.shape[-1] == 2
        if grey_alpha:
            np.testing.assert_array_equal(y[..., 1], x[..., 1])
        native = (x[..., 0] if grey_alpha else x).astype(NATIVE[name])
        want = d.predict(native)
        assert levels(want, native) > 1  # the model changes it: a pass-through would show
        got = (y[..., 0] if grey_alpha else y).astype(want.dtype)
        np.testing.assert_allclose(got, want, atol=1e-3 if want.dtype.kind == "f" else 0)
    else:
        with pytest.raises(ValueError, match=outcome):
            d.predict(x)


def test_predict_list_with_a_bad_array_raises_and_good_ones_still_work(model_file):
    d = _tiny_loaded(model_file)
    good = np.full((6, 7, 3), 100, np.uint8)
    with pytest.raises(ValueError, match="NaN"):
        d.predict([good, np.full((6, 7, 3), np.nan)])
    assert d.predict([good, good])[1].shape == good.shape  # nothing is left broken


_LOADED: dict[Path, Deblurrer] = {}


def _tiny_loaded(path: Path) -> Deblurrer:
    if path not in _LOADED:
        _LOADED[path] = Deblurrer.load(path)
    return _LOADED[path]


# ------------------------------------------------------------------------------------------- kill tests
SAVER = textwrap.dedent("""
    import json, os, random, signal, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    from blurkit import Deblurrer

    path, kills, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1})
    d.compile()
    d.model.optimizer.build(d.model.trainable_variables)  # the optimizer state is saved too
    first = d.model.weights[0]

    def save(version):
        d.training = {"version": version}
        first.assign(np.full(first.shape, float(version), np.float32))
        d.save(path)

    start = time.perf_counter()
    save(0)
    # kill within a window of a few saves: 10-300 ms, longer where a save is slower (a loaded 2-core machine,
    # the other test process of an xdist run beside it: no save finished within 300 ms, and none was tested)
    top = max(0.3, 6 * (time.perf_counter() - start))
    rng, report = random.Random(seed), []
    for k in range(kills):
        pid = os.fork()
        if pid == 0:  # the saver: saves new versions until it is killed
            version = (k + 1) * 10_000  # below 2**24: float32 holds every version exactly
            while True:
                version += 1
                save(version)
        time.sleep(rng.uniform(0.01, top))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        loaded = Deblurrer.load(path)  # raises if the file is damaged
        version = loaded.training["version"]
        w = loaded.model.weights[0].numpy()
        report.append({"killed": os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL,
                       "version": version, "consistent": bool(np.all(w == version)),
                       "files": sorted(os.listdir(os.path.dirname(path)))})
    print(json.dumps(report))
""")


def _save_kill_run(tmp_path: Path, kills: int) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "model.keras"
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    keras_tmp = tmp_path / "keras_tmp"  # where Keras' own temporary asset folders go
    keras_tmp.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TMPDIR": str(keras_tmp)}
    proc = subprocess.run([sys.executable, str(script), str(path), str(kills), "7"], capture_output=True,
                          text=True, timeout=300 + 3 * kills, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report) == kills
    previous = 0
    for k, r in enumerate(report):
        assert r["killed"] and r["consistent"], r
        assert r["version"] >= previous  # the file is the previous version or a newer complete one
        previous = r["version"]
        assert r["version"] == 0 or r["version"] // 10_000 <= k + 1
        temps = [n for n in r["files"] if n != "model.keras"]
        assert all(re.fullmatch(r"\.model\.[a-z0-9_]{8}\.tmp\.keras", n) for n in temps), temps
    assert report[-1]["version"] > 0  # the savers did save
    # killed saves leave their hidden temporary file; the next save removes those older than 10 minutes
    temps = [p for p in folder.iterdir() if p.name != "model.keras"]
    assert len(temps) <= kills
    old = time.time() - 3600
    for p in temps:
        os.utime(p, (old, old))
    d = Deblurrer.load(path)
    d.save(path)
    assert sorted(os.listdir(folder)) == ["model.keras"]
    assert (path.stat().st_mode & 0o777) == (0o666 & ~_umask())
    print(f"{kills} kills; temporary files left before cleanup: {len(temps)}; "
          f"Keras temp folders left: {len(os.listdir(keras_tmp))}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_save_survives_sigkill(tmp_path):
    _save_kill_run(tmp_path, kills=20)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_save_survives_many_sigkills(tmp_path):
    _save_kill_run(tmp_path, kills=200)


def test_stale_temporary_files_of_killed_writes_are_removed(tmp_path):
    """What a killed write leaves (a hidden ``.NAME.xxxxxxxx.tmp``) goes at the next write once 10 minutes old."""
    old = time.time() - 3600
    names = {".photo.png.abcd1234.tmp": old, ".photo.png.young123.tmp": None,  # a write still running?
             ".photo.png.notes": old, ".other.png.abcd1234.tmp": old, ".model.abcd_123.tmp.keras": old,
             ".model.keras.abcd1234.tmp": old}
    for name, mtime in names.items():
        (tmp_path / name).write_bytes(b"partial")
        if mtime:
            os.utime(tmp_path / name, (mtime, mtime))
    write_image(tmp_path / "photo.png", _photo())
    left = set(os.listdir(tmp_path))
    assert ".photo.png.abcd1234.tmp" not in left and ".photo.png.young123.tmp" in left
    assert {".photo.png.notes", ".other.png.abcd1234.tmp", ".model.abcd_123.tmp.keras"} <= left
    Deblurrer(model="unet", model_options=TINY).save(tmp_path / "model.keras")
    assert ".model.abcd_123.tmp.keras" not in set(os.listdir(tmp_path))
    assert ".model.keras.abcd1234.tmp" in set(os.listdir(tmp_path))  # not a temporary file of save()
    assert (tmp_path / "model.keras").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert (tmp_path / "photo.png").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_figures_are_written_atomically(tmp_path):
    """A figure replaces its file only when complete: a failed write keeps the old one and leaves nothing
    behind; a killed one's temporary file goes at the next write (as for images and models)."""
    from blurkit.plots import plot_history

    stale = tmp_path / ".curves.png.abcd1234.tmp"  # left by a killed write of an earlier process
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 3600,) * 2)
    curves = {"loss": [0.2, 0.1], "psnr": [20.0, 22.0]}
    out = plot_history(curves, tmp_path / "curves.png")
    first = out.read_bytes()
    assert first.startswith(b"\x89PNG") and out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    with pytest.raises(ValueError):
        plot_history({"learning_rate": [0.1]}, out)  # nothing to plot: refused before anything is written
    with pytest.raises(ValueError, match="not supported"):
        plot_history(curves, tmp_path / "curves.xyz")  # matplotlib knows no such format
    assert out.read_bytes() == first and sorted(os.listdir(tmp_path)) == ["curves.png"]
    assert plot_history({"loss": [0.3, 0.2, 0.1]}, out) == out
    assert out.read_bytes() != first and sorted(os.listdir(tmp_path)) == ["curves.png"]


def test_training_curves_are_told_apart_without_colour_and_mark_the_best_epoch(tmp_path, monkeypatch):
    """Training and validation were two solid lines of two colours (one grey in print, and alike to some colour
    blind readers); the epoch a checkpoint keeps was not shown, nor which loss it is."""
    import math

    from blurkit import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig) or Path(path))
    history = {"loss": [0.3, 0.2, 0.15, 0.1], "val_loss": [0.35, 0.22, 0.25, math.nan],
               "psnr": [20.0, 22.0, 24.0, 25.0], "val_psnr": [19.0, 21.0, 22.0, math.nan]}
    plots.plot_history(history, tmp_path / "c.png", loss="charbonnier")
    loss_ax, psnr_ax = figures[0].axes
    for ax in (loss_ax, psnr_ax):
        train, val, best = ax.get_lines()
        assert (train.get_linestyle(), train.get_marker()) == ("-", "o")
        assert (val.get_linestyle(), val.get_marker()) == ("--", "s")
        assert best.get_linestyle() == ":" and list(best.get_xdata()) == [2, 2]  # the lowest validation loss
        assert "best epoch (2, validation loss)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert loss_ax.get_ylabel() == "loss (charbonnier)" and psnr_ax.get_ylabel() == "PSNR (dB)"
    plots.plot_history({"loss": [0.3, 0.1, 0.2]}, tmp_path / "c.png")  # no validation: the training loss's best
    assert list(figures[1].axes[0].get_lines()[-1].get_xdata()) == [2, 2]
    assert figures[1].axes[0].get_ylabel() == "loss"


DEBLUR_KILLER = textwrap.dedent("""
    import json, os, random, signal, sys, time
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pathlib import Path
    import keras  # imported once here (no TensorFlow op runs before the forks), so each run starts fast
    import blurkit.deblurrer, blurkit.models.layers
    from blurkit.cli.main import main
    from blurkit.data.io import read_image

    out, argv, kills = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(5)

    def visible():
        return [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]

    report = []
    for _ in range(kills):
        # each run writes 1-3 more images, then is killed (targets relative to what is there, so the kills
        # land mid-batch however fast this machine deblurs)
        target = len(visible()) + rng.randint(1, 3)
        pid = os.fork()
        if pid == 0:
            os._exit(main(argv))
        deadline = time.time() + 60
        while len(visible()) < target and time.time() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.004))  # land anywhere in the next image: decode, restore or write
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        files = visible()
        complete = all(read_image(p).shape[:2] == (48, 64) for p in files)
        report.append({"killed": os.WIFSIGNALED(status), "outputs": len(files), "complete": complete})
    print(json.dumps(report))
""")


def test_deblur_killed_and_resumed_with_skip_existing(model_file, tmp_path, capsys):
    photos, out, reference = tmp_path / "photos", tmp_path / "out", tmp_path / "reference"
    names = [f"sub{i % 3}/photo {i:02d}.{'jpg' if i % 4 == 0 else 'png'}" for i in range(30)]
    for i, name in enumerate(names):
        write_image(photos / name, _photo(48, 64, seed=10 + i))
    argv = ["deblur", str(model_file), str(photos), "-o", str(out), "--skip-existing"]
    script = tmp_path / "killer.py"
    script.write_text(DEBLUR_KILLER)
    kills = 5
    proc = subprocess.run([sys.executable, str(script), str(out), json.dumps([*argv, "-q"]), str(kills)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report) == kills and all(r["killed"] and r["complete"] for r in report), report
    done_before = report[-1]["outputs"]
    assert 1 <= done_before < 30
    capsys.readouterr()
    assert main(argv) == 0  # the restart
    assert f"done {30 - done_before}, skipped {done_before}" in capsys.readouterr().out
    assert main(["deblur", str(model_file), str(photos), "-o", str(reference), "-q"]) == 0
    visible = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert visible == sorted(names)
    for name in names:  # the same bytes as an uninterrupted run: nothing half-written or lost
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    hidden = [p.name for p in out.rglob(".*")]
    assert all(re.fullmatch(r"\..+\.[a-z0-9_]{8}\.tmp", n) for n in hidden), hidden  # from killed writes
    print(f"{kills} kills at {[r['outputs'] for r in report]} outputs; hidden temporary files left: {len(hidden)}")


# ------------------------------------------------------------------------------------- untrusted files
def _first_conv(cfg: dict) -> dict:
    return next(layer for layer in cfg["config"]["layers"] if layer["class_name"] == "Conv2D")


def _set(cfg: dict, **changes) -> None:
    _first_conv(cfg).update(changes)


SENTINEL = Path(tempfile.gettempdir()) / "blurkit-reliability-pwned"

UNTRUSTED = {
    "unknown blurkit class": (
        dict(config=lambda c: _set(c, class_name="NoSuchLayer", module="blurkit.models.layers",
                                   registered_name="blurkit>NoSuchLayer")),
        r"Keras could not load the model safely: Could not locate class 'NoSuchLayer'\.?$"),
    "class from a foreign module": (
        dict(config=lambda c: _set(c, class_name="Backdoor", module="evil.layers", registered_name=None)),
        r"names evil\.layers\.Backdoor, which is not part of Keras or blurkit"),
    "os.system as a layer": (
        dict(config=lambda c: _set(c, class_name="system", module="os", registered_name=None,
                                   config={"command": f"touch {SENTINEL}"})),
        r"names os\.system"),
    "builtins eval as an activation": (
        dict(config=lambda c: _first_conv(c)["config"].update(activation={
            "module": "builtins", "class_name": "function", "config": "eval", "registered_name": "eval"})),
        r"names builtins\.eval"),
    "os.system as a function with a registered name": (  # Keras looks functions up by config, not this name
        dict(config=lambda c: _first_conv(c)["config"].update(activation={
            "module": "os", "class_name": "function", "config": "system",
            "registered_name": "blurkit>PadToMultiple"})),
        r"names os\.system"),
    "TFSMLayer": (
        dict(config=lambda c: _set(c, class_name="TFSMLayer", module="keras.layers", registered_name=None)),
        "refusing to load a TFSMLayer layer"),
    "lookup layer reading a local file": (
        dict(config=lambda c: _first_conv(c)["config"].update(kernel_constraint={
            "module": "keras.layers", "class_name": "StringLookup", "config": {"vocabulary": "/etc/hostname"}})),
        "refusing to load a StringLookup layer whose vocabulary is a file"),
    "Lambda hidden in a nested config": (
        dict(config=lambda c: _first_conv(c)["config"].update(
            kernel_constraint={"module": "keras.layers", "class_name": "Lambda", "config": {}})),
        "refusing to load a Lambda layer"),
    "no config.json": (dict(drop=("config.json",)), "no config.json"),
    "enormous metadata": (
        dict(meta_raw=b'{"format": "blurkit-model", "pad": "' + b" " * (17 * 2**20) + b'"}'),
        r"entry blurkit\.json is too large \(17,825,\d+ bytes uncompressed; at most 16,777,216\)"),
    "deeply nested metadata": (dict(meta_raw=b"[" * 200_000 + b"]" * 200_000), "nested too deeply"),
    "metadata not UTF-8": (dict(meta_raw=b'{"format": "blurkit-model", "x": "\xff\xfe"}'), "not UTF-8"),
    "duplicate keys in metadata": (
        dict(meta_raw=b'{"format": "blurkit-model", "format_version": 1, "format": "other"}'),
        "duplicate key 'format'"),
    "pickle as metadata": (dict(meta_raw=b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."),
                           "unreadable blurkit metadata"),
    # from the audit of hostile model files (2026-12-07): each loaded, used gigabytes, or failed in a traceback
    "Lambda under a dotted name": (  # Keras resolves module "keras", class "layers.Lambda" to the Lambda layer
        dict(config=lambda c: _set(c, class_name="layers.Lambda", module="keras", registered_name=None)),
        r"refusing to load a Lambda layer"),
    "__lambda__ bytecode as an activation": (
        dict(config=lambda c: _first_conv(c)["config"].update(activation={
            "class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None}})),
        r"refusing to load a __lambda__ function \(Python bytecode stored in the file\)"),
    "a 3000 x 3000 kernel": (
        dict(config=lambda c: _first_conv(c)["config"].update(kernel_size=[3000, 3000])),
        r"refusing a Conv2D layer with kernel_size \[3000, 3000\] \(at most 255"),
    "a number too large for a float in the metadata": (
        dict(meta_raw=b'{"format": "blurkit-model", "format_version": 1, "facade": {"learning_rate": 1e400}}'),
        r"unreadable blurkit metadata \(number 1e400 is out of range\)"),
    "a tile of 0 pixels": (dict(meta=lambda m: m["facade"].update(tile_size=0)),
                           r"blurkit metadata outside what this blurkit accepts \(facade tile_size 0: a whole number "
                           r"from 1 to 16384"),
    "a tile size in words": (dict(meta=lambda m: m["facade"].update(tile_size="big")), "facade tile_size 'big'"),
    "an overlap as large as the tile": (dict(meta=lambda m: m["facade"].update(tile_overlap=5000)),
                                        r"facade tile_overlap 5000 is not under tile_size"),
    "a loss naming a function": (dict(meta=lambda m: m["facade"].update(loss="os.system")),
                                 r"facade loss 'os\.system': one of mse"),
    "a negative learning rate": (dict(meta=lambda m: m["facade"].update(learning_rate=-1)),
                                 r"facade learning_rate -1: a positive number"),
    "a blur version in words": (dict(meta=lambda m: m["blur"].update(version="abc")),
                                r"damaged blurkit metadata \(blur \{'name': 'gaussian', 'version': 'abc'"),
    "an entry twice": (dict(extra={"config.json": b"{}"}), r"the archive holds 'config\.json' twice"),
    "an unexpected entry": (dict(extra={"notes\x1b[2K.txt": b"hello"}),
                            r"unexpected entry 'notes\\x1b\[2K\.txt' in the archive"),
    "an encrypted entry": (dict(encrypted=METADATA_NAME),
                           r"damaged or unreadable model file \(RuntimeError: .*encrypted"),
    "weights declaring a gigabyte they do not store": (
        dict(weights=h5_bytes(lambda f: f.create_dataset("layers/x/vars/0", shape=(16384, 16384), dtype="f4"))),
        r"its weights declare 1,073,741,824 bytes but the file stores \d+"),
    "weights with a soft link": (
        dict(weights=h5_bytes(lambda f: (f.create_dataset("layers/x/vars/0", data=[1.0]),
                                    f.__setitem__("layers/y", __import__("h5py").SoftLink("/layers/x"))))),
        r"refusing weights with a link \(/layers/y\) to another object or file"),
    "weights with an external link": (
        dict(weights=h5_bytes(lambda f: f.__setitem__("layers", __import__("h5py").ExternalLink("other.h5", "/")))),
        r"refusing weights with a link \(/layers\) to another object or file"),
    "a 400-digit integer in the metadata": (
        dict(meta_raw=b'{"format": "blurkit-model", "format_version": 1, "facade": {"learning_rate": 1'
             + b"0" * 400 + b"}}"),
        r"unreadable blurkit metadata \(number 10000000000000000000\.\.\. is out of range\)"),
    "padding of 100000 rows, nested": (
        dict(config=lambda c: _first_conv(c)["config"].update(kernel_constraint={
            "module": "keras.layers", "class_name": "ZeroPadding2D", "config": {"padding": [[100000, 0], [0, 0]]}})),
        r"refusing a ZeroPadding2D layer with padding \[\[100000, 0\], \[0, 0\]\] \(at most 4096"),
    "weights stored in another file": (
        dict(weights=h5_bytes(lambda f: f.create_dataset("layers/x/vars/0", shape=(4,), dtype="f4",
                                                    external=[("/etc/hostname", 0, 16)]))),
        r"refusing weights with a dataset \(/layers/x/vars/0\) stored in other files"),
}


@pytest.mark.parametrize("name", list(UNTRUSTED))
def test_untrusted_model_files_are_refused(model_file, tmp_path, name):
    edit, match = UNTRUSTED[name]
    path = rewrite_model(model_file, tmp_path / "untrusted.keras", **edit)
    with pytest.raises(ModelFileError, match=match) as info:
        Deblurrer.load(path)
    assert "untrusted.keras" in str(info.value) and "\n" not in str(info.value)
    assert not SENTINEL.exists()


#: Files only blurkit's own check refuses: Keras (3.15) loads a Lambda named "layers.Lambda" in module "keras",
#: and builds a 3000 x 3000 kernel (gigabytes) before it finds that the weights do not fit.
BLURKIT_ONLY = {"Lambda under a dotted name", "a 3000 x 3000 kernel", "padding of 100000 rows, nested"}


@pytest.mark.parametrize("name", [n for n, (edit, _) in UNTRUSTED.items() if "config" in edit
                                  and n not in BLURKIT_ONLY])
def test_keras_safe_mode_alone_also_refuses(model_file, tmp_path, name, monkeypatch):
    """Defence in depth: without blurkit's config check, Keras (safe mode) still refuses these files."""
    import blurkit.deblurrer as bd

    monkeypatch.setattr(bd, "_check_keras_config", lambda *args, **kwargs: None)
    path = rewrite_model(model_file, tmp_path / "untrusted.keras", **UNTRUSTED[name][0])
    with pytest.raises(ModelFileError, match="untrusted.keras: Keras could not load the model safely"):
        Deblurrer.load(path)
    assert not SENTINEL.exists()


def test_plugin_objects_registered_with_keras_are_allowed(model_file, tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="reliability_test_plugin")
    class PluginInit(keras.initializers.GlorotUniform):
        pass

    def edit(cfg):
        _first_conv(cfg)["config"]["kernel_initializer"] = {
            "module": "some_plugin.initializers", "class_name": "PluginInit", "config": {},
            "registered_name": "reliability_test_plugin>PluginInit"}

    loaded = Deblurrer.load(rewrite_model(model_file, tmp_path / "plugin.keras", config=edit))
    assert any(type(getattr(layer, "kernel_initializer", None)).__name__ == "PluginInit"
               for layer in loaded.model.layers)


def test_plugin_functions_registered_with_keras_are_allowed(model_file, tmp_path):
    """A registered activation function loads, saved as Keras 3.7+ saves it ("package>name") or as older
    releases did (its bare name)."""
    import keras

    @keras.saving.register_keras_serializable(package="reliability_test_plugin")
    def plugin_act(x):
        return keras.ops.relu(x)

    saved = keras.saving.serialize_keras_object(plugin_act)
    assert saved["config"] == "reliability_test_plugin>plugin_act"
    for name, fn in (("new", saved["config"]), ("old", "plugin_act")):
        def edit(cfg, fn=fn):
            _first_conv(cfg)["config"]["activation"] = {**saved, "config": fn}

        loaded = Deblurrer.load(rewrite_model(model_file, tmp_path / f"plugin-{name}.keras", config=edit))
        assert any(getattr(layer, "activation", None) is plugin_act for layer in loaded.model.layers), name


# ------------------------------------------------------------------------------------- property tests
_LOSSLESS = {".png": (8, 16), ".tif": (8, 16), ".bmp": (8,)}


@st.composite
def _lossless_case(draw):
    suffix = draw(st.sampled_from(sorted(_LOSSLESS)))
    bits = draw(st.sampled_from(_LOSSLESS[suffix]))
    channels = draw(st.sampled_from([None, 3]))
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    dtype = np.uint8 if bits == 8 else np.uint16
    shape = (h, w) if channels is None else (h, w, channels)
    return suffix, draw(arrays(dtype, shape))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(_lossless_case())
def test_lossless_round_trip(case):
    suffix, image = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{suffix}"
        write_image(path, image)
        back = read_image(path)
        assert back.dtype == image.dtype and back.shape == image.shape
        np.testing.assert_array_equal(back, image)
        assert os.listdir(folder) == [path.name]


@settings(max_examples=25, deadline=None, database=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 30), st.integers(1, 30), st.just(4))))
def test_png_rgba_round_trip(image):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.png"
        write_image(path, image)
        np.testing.assert_array_equal(read_image(path, alpha="keep"), image)


def test_model_file_entries_are_bounded_before_anything_is_inflated(model_file, tmp_path, monkeypatch):
    """A file of a few hundred kilobytes declared gigabytes (zip "bombs" as assets or weights, thousands of
    entries): testzip inflated them all before any check, and Keras copied every entry to a temporary folder
    on each load. Sizes and counts are now checked from the archive's directory; the limits are lowered here
    so that the test files stay small."""
    import blurkit.deblurrer as bd

    monkeypatch.setattr(bd, "MAX_ASSET_BYTES", 1000)
    monkeypatch.setattr(bd, "MAX_ASSETS", 2)
    cases = {
        "asset folders": (dict(extra={f"assets/d{i}/": b"" for i in range(3)}),  # Keras makes each one
                          r"too many or too large assets \(3 files, 0 bytes"),
        "big asset": (dict(extra={"assets/junk": bytes(5000)}), r"entry assets/junk is too large \(5,000 bytes "
                                                                 r"uncompressed; at most 1,000\)"),
        "many assets": (dict(extra={f"assets/{i}": b"x" for i in range(3)}), r"too many or too large assets \(3 "
                                                                             r"files, 3 bytes; at most 2"),
        "assets too large together": (dict(extra={f"assets/{i}": bytes(600) for i in range(2)}),
                                      r"too many or too large assets \(2 files, 1,200 bytes"),
    }
    for name, (edit, match) in cases.items():
        with pytest.raises(ModelFileError, match=match):
            Deblurrer.load(rewrite_model(model_file, tmp_path / f"{name}.keras", **edit))
    ok = Deblurrer.load(rewrite_model(model_file, tmp_path / "two assets.keras", extra={"assets/a": b"1", "assets/b": b"2"}))
    assert ok.model.count_params() == Deblurrer.load(model_file).model.count_params()
    size = zipfile.ZipFile(model_file).getinfo("model.weights.h5").file_size
    monkeypatch.setattr(bd, "MAX_WEIGHTS_BYTES", size - 1)
    with pytest.raises(ModelFileError, match=rf"entry model\.weights\.h5 is too large \({size:,} bytes"):
        Deblurrer.load(model_file)
    # a training state's weights hold Adam's two moments per weight too: up to 4 times the model's limit
    state = rewrite_model(model_file, tmp_path / "last.keras", meta=lambda m: m.update(resume={"epoch": 1}))
    assert Deblurrer.read_metadata(state)["resume"] == {"epoch": 1}
    monkeypatch.setattr(bd, "MAX_WEIGHTS_BYTES", size // 4 - 1)
    with pytest.raises(ModelFileError, match=r"entry model\.weights\.h5 is too large"):
        Deblurrer.read_metadata(state)


def test_loading_copies_nothing_to_the_temporary_folder(model_file, tmp_path, monkeypatch):
    """Keras extracted every entry of a model file (blurkit's metadata makes four, and Keras takes a fourth as
    assets) to a new temporary folder on each load, removed after it: 7 MB written per load of a preset."""
    import tempfile

    made = []
    real = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **kw: made.append(real(*a, **kw)) or made[-1])
    Deblurrer.load(model_file)
    Deblurrer.from_preset("gaussian-v1")
    assert made == []


def test_models_that_cannot_restore_images_are_refused_at_load(tmp_path, monkeypatch):
    """A model that returns another number of channels, or has two outputs, loaded and then failed (or gave
    another image) at predict; a damaged weights file's reason was cut at a colon. Such a model is refused
    by the Deblurrer too: the files are made here with that check off."""
    import keras

    import blurkit.deblurrer as bd

    def saved(model, name):
        with pytest.raises(ValueError, match=r"^model: "):
            Deblurrer(model=model)
        with monkeypatch.context() as m:
            m.setattr(bd, "_model_problem", lambda model: None)
            return Deblurrer(model=model).save(tmp_path / f"{name}.keras")

    grey_out = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(1, 3, padding="same")])
    inp = keras.Input((None, None, 3))
    two = keras.Model(inp, [keras.layers.Conv2D(3, 3, padding="same")(inp), inp])
    four = keras.Sequential([keras.Input((None, None, 4)), keras.layers.Conv2D(4, 3, padding="same")])
    for model, name, match in ((grey_out, "grey", r"it takes 3 channels and returns 1"),
                               (two, "two", r"it has 1 inputs and 2 outputs"),
                               (four, "four", r"it takes 4 channels and returns 4")):
        path = saved(model, name)
        with pytest.raises(ModelFileError, match=rf"{name}\.keras: {match} .*; it cannot restore images$"):
            Deblurrer.load(path)
    good = Deblurrer(model=keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 3, padding="same")])
                     ).save(tmp_path / "ok.keras")
    weights = zipfile.ZipFile(good).read("model.weights.h5")

    def grown(f):  # the same weights, the 3x3 kernel stored as 5x5
        import io

        import h5py

        with h5py.File(io.BytesIO(weights), "r") as src:
            def copy(name, item):
                if isinstance(item, h5py.Dataset):
                    data = item[()]
                    f.create_dataset(name, data=np.zeros((5, 5, 3, 3), data.dtype) if data.ndim == 4 else data)
                else:
                    f.require_group(name)
            src.visititems(copy)
    bad = rewrite_model(good, tmp_path / "shape.keras", weights=h5_bytes(grown))
    with pytest.raises(ModelFileError, match=r"could not be loaded\. Example error message for object <Conv2D "
                                             r"name=\w+, built=True>: \S"):
        Deblurrer.load(bad)


def test_untrusted_install_hints_are_not_repeated(model_file, tmp_path):
    """A file names where its missing blur came from; blurkit repeated it, so a stranger's file could show
    terminal escape codes, line breaks or "pip install" of anything. Only the forms blurkit writes are."""
    def evil(m):
        m["blur"]["name"] = "motionx"
        m["components"] = {"blur": "plugin blurkit-official\x1b[2K\rOK: 1.0: pip install evil"}

    d = Deblurrer.load(rewrite_model(model_file, tmp_path / "hint.keras", meta=evil))
    assert "\x1b" not in d.blur.missing and "pip install" not in d.blur.missing and "\n" not in d.blur.missing

    def honest(m):
        m["blur"]["name"] = "motionx"
        m["components"] = {"blur": "plugin blurkit-motionx 1.2"}

    d = Deblurrer.load(rewrite_model(model_file, tmp_path / "hint.keras", meta=honest))
    assert "(from plugin blurkit-motionx 1.2: pip install blurkit-motionx)" in d.blur.missing


def test_every_file_a_deblurrer_saves_loads_again(tmp_path):
    """The load-time bounds are those the Deblurrer and the builders keep: an autoencoder whose Dense layer has
    more than 65,536 units, tiles of 8 pixels and a fixed input of 8 were saved and then refused as
    "damaged"; what load would refuse is now refused when built or saved instead."""
    import keras

    from blurkit.models import autoencoder

    big_dense = Deblurrer(model=autoencoder(input_size=192, filters=(2, 2, 128), latent_dim=2))
    assert max(getattr(layer, "units", 0) for layer in big_dense.model.layers) == 73728
    cases = {"dense": big_dense,
             "tiles": Deblurrer(model="unet", model_options=TINY, tile_size=8, tile_overlap=2, estimate_tile=8),
             "tiny fixed input": Deblurrer(model=autoencoder(input_size=8, filters=(2,), latent_dim=2))}
    for name, d in cases.items():
        if name == "tiles":  # it loads; a file's tiles under 32 are raised to 32, with a warning (audit F6)
            with pytest.warns(UserWarning, match=r"tiles\.keras: its tile settings .* using tile_size 32"):
                loaded = Deblurrer.load(d.save(tmp_path / f"{name}.keras"))
            assert (loaded.tile_size, loaded.estimate_tile, loaded.patch_size) == (32, 32, d.patch_size)
            continue
        loaded = Deblurrer.load(d.save(tmp_path / f"{name}.keras"))
        assert (loaded.tile_size, loaded.patch_size) == (d.tile_size, d.patch_size), name
    with pytest.raises(ValueError, match=r"^tile_size must be at most 16,384, got 20000$"):
        Deblurrer(model="unet", model_options=TINY, tile_size=20000)
    wide = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(3, 301, padding="same")])
    with pytest.raises(ValueError, match=r"cannot save: the model: refusing a Conv2D layer with kernel_size "
                                         r"[\[(]301, 301[\])] .*Deblurrer\.load would refuse the file"):
        Deblurrer(model=wide).save(tmp_path / "wide.keras")
    assert not (tmp_path / "wide.keras").exists()


# --- permissions of saved models and cached arrays: those a plain open(path, "w") would leave ---------------
def test_saving_over_a_model_keeps_its_mode_and_group(tmp_path):
    """`chmod 600 model.keras` and the next save (a checkpoint, `blurkit train -o`) gave 0644; a group set
    with chgrp was lost. Both stay (the group where the writer may give it: root here)."""
    d = Deblurrer(model="unet", model_options=TINY)
    path = d.save(tmp_path / "model.keras")
    os.chmod(path, 0o600)
    d.save(path)
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        import grp

        gid = next((g.gr_gid for g in grp.getgrall() if g.gr_gid != path.stat().st_gid), None)
        if gid is not None:
            os.chown(path, -1, gid)
            os.chmod(path, 0o640)
            d.save(path)
            assert (oct(path.stat().st_mode & 0o777), path.stat().st_gid) == (oct(0o640), gid)
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


def test_a_new_model_follows_the_umask_at_the_time_of_the_save(tmp_path):
    """The umask was read once, at import: a process that tightened it afterwards still saved 0644 models."""
    d = Deblurrer(model="unet", model_options=TINY)
    old = os.umask(0o077)
    try:
        d.save(tmp_path / "private.keras")
        os.umask(0o002)
        d.save(tmp_path / "shared.keras")
    finally:
        os.umask(old)
    assert oct((tmp_path / "private.keras").stat().st_mode & 0o777) == oct(0o600)
    assert oct((tmp_path / "shared.keras").stat().st_mode & 0o777) == oct(0o664)


def test_saving_to_a_link_replaces_the_link(tmp_path):
    """`model.keras -> runs/v3.keras`: the save replaces the link with the model, and runs/v3.keras is left as
    it was (blurkit never writes through a link: docs/reliability.md)."""
    (tmp_path / "runs").mkdir()
    first = Deblurrer(model="unet", model_options=TINY)
    real = first.save(tmp_path / "runs" / "v3.keras")
    before = real.read_bytes()
    link = tmp_path / "model.keras"
    link.symlink_to(os.path.join("runs", "v3.keras"))
    second = Deblurrer(model="unet", model_options={**TINY, "width": 8})
    assert second.save(link) == link
    assert not link.is_symlink() and Deblurrer.read_metadata(link)["model"]["config"]["width"] == 8
    assert real.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.keras", "runs"] and os.listdir(tmp_path / "runs") == ["v3.keras"]


def test_a_cached_array_keeps_the_mode_of_the_one_it_replaces_and_follows_the_umask(tmp_path):
    """The pipeline's .npy cache is written like every other output."""
    from blurkit.data.pipeline import _save_array

    path = tmp_path / "cache" / "a.npy"
    old = os.umask(0o027)
    try:
        _save_array(path, np.zeros((2, 3), np.uint8))
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)
    os.chmod(path, 0o444)
    _save_array(path, np.ones((2, 3), np.uint8))
    assert oct(path.stat().st_mode & 0o777) == oct(0o444) and np.load(path).sum() == 6
    link = tmp_path / "cache" / "b.npy"
    link.symlink_to("a.npy")
    _save_array(link, np.full((2, 3), 2, np.uint8))
    assert not link.is_symlink() and np.load(link).sum() == 12 and np.load(path).sum() == 6  # replaced
    assert sorted(os.listdir(path.parent)) == ["a.npy", "b.npy"]

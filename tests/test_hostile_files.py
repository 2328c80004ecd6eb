"""Hostile and malformed data files: linked pair folders, bombs Pillow cannot size, damaged shard indexes,
huge or sparse files, FIFOs and devices. Every file here is small and nothing large is ever decoded: a spy
on ``cv2.imdecode`` fails a test that would decode a refused file."""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurkit.cli.main import main
from blurkit.data import io as bio
from blurkit.data.io import ImageReadError, list_images, read_image, write_image
from blurkit.data.pairs import folder_conflict, make_pairs, remove_previous
from blurkit.data.shards import read_index

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
needs_links = pytest.mark.skipif(os.name == "nt", reason="needs symbolic links without privileges")


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------
class Plain:
    """A blur that leaves the image as it is (the pairs' content does not matter here)."""

    def __call__(self, image, seed=None):
        return {"image": image, "kernel": np.ones((1, 1)), "params": {}}


@pytest.fixture
def no_decode(monkeypatch):
    """Fail the test if OpenCV decodes anything (a refused bomb must never reach the decoder)."""

    def refuse(*args, **kwargs):
        raise AssertionError("cv2.imdecode was called")

    monkeypatch.setattr(cv2, "imdecode", refuse)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _ztxt_bomb(width: int, height: int) -> bytes:
    """A PNG declaring ``width`` x ``height`` whose zTXt chunk inflates past Pillow's 1 MB text limit, so
    Pillow cannot open it (libpng can); its pixel data is a token (it is never to be decoded)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    ztxt = b"Comment\x00\x00" + zlib.compress(b"A" * (2 * 2**20), 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"zTXt", ztxt)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


def _pillow_opens(data: bytes) -> bool:
    import io

    from PIL import Image

    try:
        Image.open(io.BytesIO(data))
    except Exception:  # noqa: BLE001 - any refusal counts
        return False
    return True


def _encoded(suffix: str, image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(suffix, image)
    assert ok
    return buffer.tobytes()


def _unblocking(fifo: Path, call, timeout: float = 10.0):
    """Run ``call()`` in a thread; if it is still blocked on ``fifo`` after ``timeout`` seconds (the old
    behaviour: ``open`` waits for a writer), open the FIFO's other end to release it and fail."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):  # whichever end it waits on
            try:
                os.close(os.open(fifo, flags))
            except OSError:
                pass
        thread.join(5)
        pytest.fail(f"blocked on the FIFO {fifo} for {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# --------------------------------------------------------------------------------------------------
# F1: make-pairs through a linked sharp/ or blurred/
# --------------------------------------------------------------------------------------------------
@needs_links
@pytest.mark.parametrize("side", ["sharp", "blurred"])
def test_replace_refuses_a_linked_pair_folder_and_deletes_nothing(tmp_path, side):
    clean, out, victim = tmp_path / "photos", tmp_path / "recv", tmp_path / "victim"
    write_image(clean / "t0.png", np.full((8, 8, 3), 90, np.uint8))
    write_image(victim / "precious.png", np.full((4, 4, 3), 7, np.uint8))
    write_image(victim / "t0.png", np.full((4, 4, 3), 8, np.uint8))  # a file a new pair would write over
    before = {p.name: p.read_bytes() for p in victim.iterdir()}
    out.mkdir()
    (out / ("blurred" if side == "sharp" else "sharp")).mkdir()
    (out / side).symlink_to(victim, target_is_directory=True)
    (out / "manifest.jsonl").write_text('{"file": "precious.png"}\n')

    with pytest.raises(ValueError, match=rf"{side} is a link to .*victim"):
        make_pairs(clean, out, blur=Plain(), progress=False, replace=True)
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before
    assert (out / "manifest.jsonl").is_file()
    with pytest.raises(ValueError, match=rf"{side} is a link to"):
        remove_previous(out)
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before


@needs_links
def test_make_pairs_refuses_a_linked_pair_folder_without_replace(tmp_path, capsys):
    clean, out, victim = tmp_path / "photos", tmp_path / "recv", tmp_path / "victim"
    write_image(clean / "t0.png", np.full((8, 8, 3), 90, np.uint8))
    victim.mkdir()
    out.mkdir()
    (out / "sharp").mkdir()
    (out / "blurred").symlink_to(victim, target_is_directory=True)

    assert "blurred is a link to" in (folder_conflict(clean, out) or "")
    with pytest.raises(ValueError, match="blurred is a link to"):
        make_pairs(clean, out, blur=Plain(), progress=False)
    assert main(["make-pairs", str(clean), str(out), "--replace", "--no-progress"]) == 2
    assert f"{out / 'blurred'} is a link to {os.path.realpath(victim)}" in capsys.readouterr().err
    assert not list(victim.iterdir()) and not list((out / "sharp").iterdir())


# --------------------------------------------------------------------------------------------------
# F2: the size is checked before decoding when Pillow cannot read the header
# --------------------------------------------------------------------------------------------------
def test_a_png_pillow_refuses_is_sized_from_its_header_before_decoding(tmp_path, no_decode):
    data = _ztxt_bomb(5000, 4000)
    assert not _pillow_opens(data)  # the case: Pillow gives no size
    path = tmp_path / "bomb.png"
    path.write_bytes(data)
    with pytest.raises(ImageReadError, match=r"5000x4000 = 20,000,000 pixels, more than max_pixels=1,000,000"):
        read_image(path, max_pixels=1_000_000)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_float_and_32_bit_rgb_tiffs_are_sized_before_decoding(tmp_path, monkeypatch, dtype):
    image = np.linspace(0, 1, 60 * 50 * 3).reshape(60, 50, 3).astype(dtype)
    data = _encoded(".tif", image)
    assert not _pillow_opens(data)  # Pillow has no mode for them
    path = tmp_path / "wide.tif"
    path.write_bytes(data)
    calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: calls.append(1) or real(*a))
    with pytest.raises(ImageReadError, match=r"50x60 = 3,000 pixels, more than max_pixels=2,999"):
        read_image(path, max_pixels=2_999)
    assert not calls
    read = read_image(path, max_pixels=3_000)  # within the limit: still read (float32 TIFFs are supported)
    assert calls and read.shape == (60, 50, 3)
    assert read.dtype == (np.float32 if dtype == np.float32 else np.uint16)
    if dtype == np.float32:
        np.testing.assert_array_equal(read, image[:, :, ::-1])  # written as BGR


def test_container_sizes():
    rgb = np.zeros((6, 5, 3), np.uint8)
    for suffix in (".png", ".tif", ".jpg", ".bmp", ".webp", ".pam"):
        assert bio._container_size(_encoded(suffix, rgb)) == (5, 6), suffix
    assert bio._container_size(_encoded(".hdr", rgb.astype(np.float32))) == (5, 6)
    lossless = cv2.imencode(".webp", rgb, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    assert lossless[12:16] == b"VP8L" and bio._container_size(lossless) == (5, 6)
    big = bytearray(_encoded(".tif", rgb))
    assert bio._container_size(bytes(big[:10])) is None  # cut short
    assert bio._container_size(b"hello") is None


def test_a_format_pillow_cannot_size_is_read_only_without_max_pixels(tmp_path, monkeypatch):
    """Without a size from any header, max_pixels cannot be checked before decoding: refused (as not
    readable), and decoded only when the caller turns the check off."""
    data = _encoded(".pam", np.zeros((6, 5, 3), np.uint8))
    assert not _pillow_opens(data)
    path = tmp_path / "a.pam"
    path.write_bytes(data)
    monkeypatch.setattr(bio, "_container_size", lambda data: None)  # a format blurkit cannot size
    calls = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda *a: calls.append(1) or real(*a))
    with pytest.raises(ImageReadError, match="not an image, or a format blurkit cannot read"):
        read_image(path)
    assert not calls
    assert read_image(path, max_pixels=None).shape == (6, 5, 3)


# --------------------------------------------------------------------------------------------------
# F8: shards.json entries
# --------------------------------------------------------------------------------------------------
_SHARD = "shard-00000-of-00001.tfrecord"


def _shard_folder(tmp_path: Path, shards: list) -> Path:
    folder = tmp_path / "shards"
    folder.mkdir(parents=True)
    (folder / _SHARD).write_bytes(b"")  # an empty TFRecord file: 0 records
    index = {"format": "blurkit-shards", "format_version": 1, "total": 0, "shards": shards}
    (folder / "shards.json").write_text(json.dumps(index))
    return folder


def test_a_plain_shard_index_reads(tmp_path):
    assert read_index(_shard_folder(tmp_path, [{"file": _SHARD, "records": 0, "bytes": 0}]))["total"] == 0
    assert read_index(_shard_folder(tmp_path / "old", [{"file": _SHARD, "records": 0}]))["total"] == 0


@pytest.mark.parametrize("entry", [
    _SHARD,  # a string, not an object
    {"records": 0, "bytes": 0},  # no file
    {"file": 5, "records": 0, "bytes": 0},
    {"file": "/dev/null", "records": 0, "bytes": 0},
    {"file": os.path.abspath(os.sep + _SHARD), "records": 0, "bytes": 0},
    {"file": f"../shards/{_SHARD}", "records": 0, "bytes": 0},
    {"file": ".", "records": 0, "bytes": 0},
    {"file": _SHARD, "records": "0", "bytes": 0},
    {"file": _SHARD, "records": -1, "bytes": 0},
    {"file": _SHARD, "records": True, "bytes": 0},
    {"file": _SHARD, "bytes": 0},  # no records
    {"file": _SHARD, "records": 0, "bytes": 0.0},
], ids=["str", "nofile", "fileint", "devnull", "abs", "dotdot", "dot", "records-str", "records-neg",
        "records-bool", "norecords", "bytes-float"])
def test_a_damaged_shard_entry_is_refused_naming_the_index(tmp_path, entry):
    folder = _shard_folder(tmp_path, [entry])
    with pytest.raises(ValueError, match=r"shards\.json: damaged shard index"):
        read_index(folder)


@needs_fifo
def test_a_fifo_listed_in_the_index_is_refused_not_opened(tmp_path):
    folder = _shard_folder(tmp_path, [{"file": _SHARD, "records": 0, "bytes": 0},
                                      {"file": "pipe.tfrecord", "records": 0, "bytes": 0}])
    os.mkfifo(folder / "pipe.tfrecord")
    with pytest.raises(ValueError, match=r"shards\.json: damaged shard index \('pipe\.tfrecord' is not a regular"):
        _unblocking(folder / "pipe.tfrecord", lambda: read_index(folder))


# --------------------------------------------------------------------------------------------------
# F9: huge or sparse files; out of memory
# --------------------------------------------------------------------------------------------------
def test_a_file_larger_than_max_pixels_allows_is_refused_before_reading(tmp_path, monkeypatch, no_decode):
    path = tmp_path / "sparse.png"
    limit = 16 * 1000 + 64 * 2**20  # documented: 16 bytes a pixel and 64 MiB
    with open(path, "wb") as fh:
        fh.write(_encoded(".png", np.zeros((4, 4, 3), np.uint8)))
    os.truncate(path, limit + 1)  # sparse: no disk used

    def no_read(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(ImageReadError, match=rf"file is {limit + 1:,} bytes, more than an image of "
                                             r"max_pixels=1,000 can take"):
        read_image(path, max_pixels=1000)


def test_a_file_at_the_size_limit_is_read(tmp_path):
    path = tmp_path / "padded.png"
    data = _encoded(".png", np.full((4, 4, 3), 50, np.uint8))
    path.write_bytes(data + b"\0" * (16 * 1000 + 64 * 2**20 - len(data)))  # trailing bytes after IEND
    assert read_image(path, max_pixels=1000).shape == (4, 4, 3)


def test_out_of_memory_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_image(path, np.zeros((4, 4, 3), np.uint8))

    def oom(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(bio, "decode_image", oom)
    with pytest.raises(MemoryError, match=rf"out of memory reading {path}"):
        read_image(path)


# --------------------------------------------------------------------------------------------------
# FIFOs and devices named as images
# --------------------------------------------------------------------------------------------------
@needs_fifo
def test_read_image_refuses_a_fifo_instead_of_waiting(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match=r"pipe\.png: not a regular file"):
        _unblocking(fifo, lambda: read_image(fifo))


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_read_image_refuses_a_device(tmp_path):
    with pytest.raises(ImageReadError, match="/dev/null: not a regular file"):
        read_image("/dev/null")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/fd")
def test_read_image_reads_a_pipe_this_process_has_open():
    """``/dev/stdin`` style: a descriptor the process holds is read, not refused."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, _encoded(".png", np.full((3, 2, 3), 9, np.uint8)))
        os.close(write_end)
        assert read_image(f"/proc/self/fd/{read_end}").shape == (3, 2, 3)
    finally:
        os.close(read_end)


@needs_fifo
def test_a_fifo_named_on_the_command_line_is_not_a_regular_file(tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=rf"not a regular file: {fifo}"):
        list_images(fifo)
    assert main(["deblur", str(tmp_path / "model.keras"), str(fifo), "-o", str(tmp_path / "out")]) == 2
    assert f"not a regular file: {fifo}" in capsys.readouterr().err  # it was "no such file or folder"


def test_shard_checks_a_file_before_reading_it(tmp_path, monkeypatch):
    """`blurkit shard` read each file whole before any check (Path.read_bytes): a sparse 20 GB "photo" filled
    memory, a FIFO named like an image was waited on. It checks them as read_image does."""
    from blurkit.data.shards import _check

    big = tmp_path / "sparse.png"
    big.write_bytes(_encoded(".png", np.zeros((4, 4, 3), np.uint8)))
    os.truncate(big, 16 * 1000 + 64 * 2**20 + 1)

    def no_read(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(ImageReadError, match="more than an image of max_pixels=1,000 can take"):
        _check(big, "sparse.png", "decode", 1000)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.png"
        os.mkfifo(fifo)
        with pytest.raises(ImageReadError, match="not a regular file"):
            _check(fifo, "pipe.png", "header", None)
    good = tmp_path / "good.png"
    good.write_bytes(_encoded(".png", np.zeros((5, 7, 3), np.uint8)))
    assert _check(good, "good.png", "header", 1000)[1] == {"format": "png", "height": 5, "width": 7}

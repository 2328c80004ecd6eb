"""Hostile and malformed data files: linked pair folders, bombs Pillow cannot size, damaged shard indexes,
huge or sparse files, FIFOs and devices. Every file here is small and nothing large is ever decoded: a spy
on ``cv2.imdecode`` fails a test that would decode a refused file."""

from __future__ import annotations

import json
import os
import re
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


def _refuse_reading(monkeypatch) -> None:
    """Fail if a file is opened or read: ``_read_file`` opens with ``os.open`` and reads with ``_read_upto``."""

    def no_read(*args, **kwargs):
        raise AssertionError("the file was opened or read")

    monkeypatch.setattr(bio, "_read_upto", no_read)
    monkeypatch.setattr(bio.os, "open", no_read)


def _decode_spy(monkeypatch) -> list:
    """Record each ``cv2.imdecode`` call (and decode as usual): a refused file must leave it empty."""
    calls: list = []
    real = cv2.imdecode

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(cv2, "imdecode", spy)
    return calls


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


_W, _H = 40, 25  # 1,000 pixels: every bomb below is refused at max_pixels=999 (or read as a 1x1 decoy)


def _hdr() -> bytes:
    data = _encoded(".hdr", np.full((_H, _W, 3), 0.5, np.float32))
    assert b"\n\n-Y 25 +X 40\n" in data
    return data


def _hdr_two_spaces_and_decoy() -> bytes:
    """OpenCV reads ``-Y  25 +X 40`` (sscanf takes any white space); a decoy size line comes later."""
    return _hdr().replace(b"\n-Y 25 +X", b"\n-Y  25 +X", 1) + b"\n\n-Y 1 +X 1\n"


def _hdr_long_line_and_decoy() -> bytes:
    """A 127-byte header line: OpenCV's fgets(buf, 128) reads its newline as a blank line, so the next line is
    the size it decodes; the first blank line in the file is a decoy's."""
    data = _hdr()
    at = data.index(b"\n\n")
    return data[: at + 1] + b"#" + b"c" * 126 + b"\n" + data[at + 2:] + b"\n\n-Y 1 +X 1\n"


def _float_tiff(length_entries: list, extra: bytes = b"") -> bytes:
    """A little-endian float32 RGB TIFF of _W x _H (Pillow cannot open it) with ``length_entries`` as its
    ImageLength entries (tag 257), last before the next-IFD offset; ``extra`` is stored at offset 20."""
    pixels = np.full((_H, _W, 3), 0.25, np.float32).tobytes()
    head = struct.pack("<HHH", 32, 32, 32) + struct.pack("<HHH", 3, 3, 3) + extra  # at 8 and 14, then 20
    data_at = 8 + len(head)
    entries = [(256, 3, 1, struct.pack("<HH", _W, 0)), (258, 3, 3, struct.pack("<I", 8)),
               (259, 3, 1, struct.pack("<HH", 1, 0)), (262, 3, 1, struct.pack("<HH", 2, 0)),
               (273, 4, 1, struct.pack("<I", data_at)), (277, 3, 1, struct.pack("<HH", 3, 0)),
               (278, 4, 1, struct.pack("<I", _H)), (279, 4, 1, struct.pack("<I", len(pixels))),
               (284, 3, 1, struct.pack("<HH", 1, 0)), (339, 3, 3, struct.pack("<I", 14))] + length_entries
    ifd = (struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI", *e[:3]) + e[3] for e in entries)
           + struct.pack("<I", 0))
    return b"II*\x00" + struct.pack("<I", data_at + len(pixels)) + head + pixels + ifd


def _tiff_long8_length() -> bytes:
    """ImageLength as LONG8 (type 16) in a classic TIFF: 8 bytes do not fit the entry, so libtiff reads them
    at the offset the entry holds (20: the real height); read inline, they are that offset."""
    return _float_tiff([(257, 16, 1, struct.pack("<I", 20))], extra=struct.pack("<Q", _H))


def _tiff_ifd_typed_then_small_length() -> bytes:
    """ImageLength twice: first as type IFD (13), which libtiff takes as an integer, then a small LONG."""
    return _float_tiff([(257, 13, 1, struct.pack("<I", _H)), (257, 4, 1, struct.pack("<I", 1))])


_HOSTILE = {
    "hdr-two-spaces-then-decoy": (_hdr_two_spaces_and_decoy, r"40x25 = 1,000 pixels, more than max_pixels=999"),
    "hdr-127-byte-line-then-decoy": (_hdr_long_line_and_decoy, "not an image, or a format blurkit cannot read"),
    "tiff-long8-length": (_tiff_long8_length, r"40x25 = 1,000 pixels, more than max_pixels=999"),
    "tiff-ifd-typed-then-long-length": (_tiff_ifd_typed_then_small_length, "not an image, or a format blurkit"),
    "bigtiff-offset-over-2-63": (lambda: b"MM\x00+\x00\x08\x00\x00" + struct.pack(">Q", 2**63 + 5) + b"\0" * 64,
                                  "not an image, or a format blurkit cannot read"),
    "pam-5000-digits": (lambda: b"P7\nWIDTH " + b"9" * 5000 + b"\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\n"
                        b"ENDHDR\n" + b"\0" * 64, "not an image, or a format blurkit cannot read"),
    "hdr-5000-digits": (lambda: b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y " + b"9" * 5000 + b" +X 1\n" + b"\0" * 64,
                        "not an image, or a format blurkit cannot read"),
    "pam-width-twice": (lambda: b"P7\nWIDTH 1\nHEIGHT 1\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nWIDTH %d\nHEIGHT %d\n"
                        b"ENDHDR\n" % (_W, _H) + b"\7" * (_W * _H * 3), "not an image, or a format blurkit"),
}


@pytest.mark.parametrize("kind", list(_HOSTILE))
def test_a_hostile_header_is_refused_before_decoding(tmp_path, monkeypatch, kind):
    """Each header here made blurkit check a size other than the one OpenCV decodes (a decoy HDR size line,
    a TIFF tag read from the wrong place or given twice, a PAM field given twice) or raise something other
    than ImageReadError (a BigTIFF offset of 2**63 or more: OverflowError; thousands of digits: ValueError),
    which aborted make-pairs and shard. Each is now refused, naming the file, before anything is decoded."""
    make, reason = _HOSTILE[kind]
    data = make()
    assert not _pillow_opens(data)  # the case: only blurkit's own header reader sizes it
    path = tmp_path / f"{kind}.img"
    path.write_bytes(data)
    calls = _decode_spy(monkeypatch)
    with pytest.raises(ImageReadError, match=rf"{re.escape(kind)}\.img: .*{reason}"):
        read_image(path, max_pixels=999)
    with pytest.raises(ImageReadError, match=reason):
        bio.decode_image(data, name="x", max_pixels=999)
    assert not calls


def test_a_hostile_file_is_skipped_by_make_pairs_not_fatal(tmp_path, capsys):
    folder = tmp_path / "in"
    write_image(folder / "good.png", np.full((8, 8, 3), 90, np.uint8))
    (folder / "big.tif").write_bytes(_HOSTILE["bigtiff-offset-over-2-63"][0]())
    (folder / "pam.png").write_bytes(_HOSTILE["pam-5000-digits"][0]())
    assert main(["make-pairs", str(folder), str(tmp_path / "out"), "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "big.tif" in err and "pam.png" in err and "Traceback" not in err


def test_header_readers_never_raise_on_mutated_or_cut_headers():
    """Every format's header, cut at each length and with bytes of it changed at random (seeded), gives a
    size or None: never an exception (which would escape decode_image as something other than
    ImageReadError)."""
    rng = np.random.default_rng(0)
    rgb = np.zeros((6, 5, 3), np.uint8)
    samples = [_encoded(s, rgb) for s in (".png", ".tif", ".jpg", ".bmp", ".webp", ".pam")]
    samples += [_encoded(".hdr", rgb.astype(np.float32)), _encoded(".pfm", rgb.astype(np.float32))]
    samples += [_float_tiff([(257, 4, 1, struct.pack("<I", _H))]), _tiff_long8_length()]
    samples += [make() for make, _ in _HOSTILE.values()]
    for data in samples:
        for cut in range(min(len(data), 200)):
            _check_size(bio._container_size(data[:cut]))
        head = min(len(data), 96)
        for _ in range(300):
            mutated = bytearray(data[:4096])
            for at in rng.integers(0, head, size=rng.integers(1, 4)):
                mutated[at] = int(rng.choice([0, 0x2B, 0xFF, 0x80, 0x0A, 0x20, 0x39, int(rng.integers(256))]))
            _check_size(bio._container_size(bytes(mutated)))


def _check_size(size) -> None:
    assert size is None or (len(size) == 2 and all(isinstance(v, int) and v >= 0 for v in size)), size


def test_container_sizes_agree_with_what_opencv_decodes():
    """The size blurkit checks is the size OpenCV then decodes, for every format it reads a header of
    (big-endian and top-down variants included)."""
    rgb = np.zeros((6, 5, 3), np.uint8)
    files = {s: _encoded(s, rgb) for s in (".png", ".tif", ".jpg", ".bmp", ".webp", ".pam")}
    files[".hdr"] = _encoded(".hdr", rgb.astype(np.float32))
    files[".pfm"] = _encoded(".pfm", rgb.astype(np.float32))
    files["grey.pfm"] = _encoded(".pfm", rgb[:, :, 0].astype(np.float32))
    files["float.tif"] = _float_tiff([(257, 4, 1, struct.pack("<I", _H))])
    files["long8.tif"] = _tiff_long8_length()
    files["ifd-typed.tif"] = _float_tiff([(257, 13, 1, struct.pack("<I", _H))])
    bmp = bytearray(files[".bmp"])
    bmp[22:26] = struct.pack("<i", -6)  # top-down
    files["topdown.bmp"] = bytes(bmp)
    for name, data in files.items():
        size = bio._container_size(data)
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        assert decoded is not None and size == (decoded.shape[1], decoded.shape[0]), name


def test_a_colour_pfm_reads_with_max_pixels(tmp_path, monkeypatch):
    """Pillow reads only grey PFM (``Pf``): a colour one (``PF``) is sized from its own header, read within
    max_pixels, and refused over it before decoding (it was refused as not an image)."""
    image = np.linspace(0, 1, _H * _W * 3, dtype=np.float32).reshape(_H, _W, 3)
    data = _encoded(".pfm", image)
    assert data.startswith(b"PF\n") and not _pillow_opens(data)
    path = tmp_path / "colour.pfm"
    path.write_bytes(data)
    calls = _decode_spy(monkeypatch)
    with pytest.raises(ImageReadError, match=r"40x25 = 1,000 pixels, more than max_pixels=999"):
        read_image(path, max_pixels=999)
    assert not calls
    read = read_image(path, max_pixels=1000)
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, image[:, :, ::-1])  # written as BGR


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
    limit = 32 * 1000 + 64 * 2**20  # documented: 32 bytes a pixel (float64 RGBA) and 64 MiB
    with open(path, "wb") as fh:
        fh.write(_encoded(".png", np.zeros((4, 4, 3), np.uint8)))
    os.truncate(path, limit + 1)  # sparse: no disk used

    _refuse_reading(monkeypatch)
    with pytest.raises(ImageReadError, match=rf"file is {limit + 1:,} bytes, larger than blurkit reads with "
                                             rf"max_pixels=1,000 \({limit:,} bytes: 32 bytes a pixel.*multi-page "
                                             r"TIFF counts all its pages\); pass a larger max_pixels \(or "
                                             r"max_pixels=None\)"):
        read_image(path, max_pixels=1000)


def test_a_file_at_the_size_limit_is_read(tmp_path):
    """At 32 bytes a pixel and 64 MiB (a float64 RGBA TIFF of max_pixels is 32 bytes a pixel: it was refused
    at 16, with a message saying no image of max_pixels could be that large)."""
    path = tmp_path / "padded.png"
    path.write_bytes(_encoded(".png", np.full((4, 4, 3), 50, np.uint8)))
    os.truncate(path, 32 * 1000 + 64 * 2**20)  # trailing (sparse) bytes after IEND
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
    os.truncate(big, 32 * 1000 + 64 * 2**20 + 1)

    with monkeypatch.context() as patch:
        _refuse_reading(patch)
        with pytest.raises(ImageReadError, match="larger than blurkit reads with max_pixels=1,000"):
            _check(big, "sparse.png", "decode", 1000)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "pipe.png"
        os.mkfifo(fifo)
        with pytest.raises(ImageReadError, match="not a regular file"):
            _check(fifo, "pipe.png", "header", None)
    good = tmp_path / "good.png"
    good.write_bytes(_encoded(".png", np.zeros((5, 7, 3), np.uint8)))
    assert _check(good, "good.png", "header", 1000)[1] == {"format": "png", "height": 5, "width": 7}

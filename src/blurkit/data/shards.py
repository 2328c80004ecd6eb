"""TFRecord shards of encoded images: write them once, stream them at training time.

A million small files are slow to list and to open, above all on network storage. ``blurkit shard SRC
OUT`` (or :func:`write_shards`) packs the images into a few large files that ``tf.data`` reads
sequentially, in parallel, and that spread evenly over training workers.

Layout of a shard folder::

    OUT/shard-00000-of-00004.tfrecord    # uncompressed TFRecord files of tf.train.Example records
    OUT/shard-00001-of-00004.tfrecord
    ...
    OUT/shards.json                      # the index, written last: the folder is complete when it exists

Each record is a ``tf.train.Example`` with the features

* ``image/encoded`` (bytes): the source file's bytes, unchanged (no re-encoding, so no quality loss
  and no growth: a JPEG stays a JPEG, a 16-bit PNG stays 16-bit);
* ``image/filename`` (bytes, UTF-8): the path relative to the source folder (POSIX separators); a file
  name that is not valid UTF-8 is stored as its bytes on disk (:func:`read_example` gives it back as
  Python names it, with ``surrogateescape``);
* ``image/format`` (bytes): ``png``, ``jpeg``, ``tiff``, ... as the file's header says;
* ``image/height``, ``image/width`` (int64): the size of the decoded, upright image.

``shards.json`` holds ``{"format": "blurkit-shards", "format_version": 1, "total": N, "shards": [{"file",
"records", "bytes"}, ...], "source", "shard_size", "check", "shuffled", "seed", "skipped": [{"file",
"reason"}], "created"}``; readers take the record counts from it, and refuse a shard whose size changed
since or whose records (counted by walking their headers, 8 bytes read per record) are not as many.

Every image is checked before it is stored (``check="decode"``: fully decoded, the way training will
decode it, so truncated files are caught; ``check="header"``: only the header is parsed, faster, catches
files that are not images at all). Files that fail are skipped and listed in the summary and the index.
The files are shuffled (seeded) before they are cut into shards, so each shard is a random sample and a
validation split can hold out whole shards. Shards are written to hidden temporary files and renamed
into place at the end, then the index is written atomically; an interrupted run leaves the folder as it
was, or without an index (never an index pointing at half-written shards). A run holds a lock on
``OUT/.shards.lock`` (removed when it ends; a killed run's is free): a second run into the same folder is
refused rather than removing the first's temporary shards or mixing its own in.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from blurkit.data.io import write_image
    >>> from blurkit.data.shards import read_index, write_shards
    >>> root = Path(tempfile.mkdtemp())
    >>> for i in range(5):
    ...     write_image(root / "photos" / f"{i}.png", np.full((8, 8, 3), 50 * i, np.uint8))
    >>> _ = (root / "photos" / "broken.png").write_bytes(b"not a png")
    >>> summary = write_shards(root / "photos", root / "shards", shard_size=2, progress=False)
    >>> summary["written"], [s["file"] for s in summary["shards"]], summary["skipped"][0]["file"]
    (5, ['shard-00000-of-00003.tfrecord', 'shard-00001-of-00003.tfrecord', 'shard-00002-of-00003.tfrecord'], 'broken.png')
    >>> read_index(root / "shards")["total"]
    5
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import stat
import struct
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from blurkit._lock import Lock
from blurkit.data.io import (
    DEFAULT_MAX_PIXELS,
    STALE_TEMP_SECONDS,
    ImageReadError,
    PathLike,
    _read_file,
    _read_header,
    atomic_write_text,
    decode_image,
    list_images,
    replace_file,
)

__all__ = [
    "INDEX_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "SHARD_SUFFIX",
    "shard_name",
    "write_shards",
    "read_index",
    "is_shard_dir",
    "is_shard_path",
    "count_records",
    "count_all",
    "record_offsets",
    "read_example",
]

#: The index file of a shard folder.
INDEX_NAME = "shards.json"
#: ``format`` and ``format_version`` stored in the index (readers refuse newer versions).
FORMAT = "blurkit-shards"
FORMAT_VERSION = 1
#: Suffix of shard files (resolve_source takes files, lists and globs with it as TFRecord shards).
SHARD_SUFFIX = ".tfrecord"
#: The lock file a run holds in OUT (:mod:`blurkit._lock`): a second run into the same folder is refused.
LOCK_NAME = ".shards.lock"

_SHARD_FILE = re.compile(r"shard-\d{5,}-of-\d{5,}\.tfrecord")
_TEMP_FILE = re.compile(r"\.shard-\d{5,}\.[a-z0-9_]{8}\.tmp")
_CHECKS = ("decode", "header")


def shard_name(index: int, total: int) -> str:
    """The file name of shard ``index`` of ``total``.

    Examples:
        >>> shard_name(3, 12)
        'shard-00003-of-00012.tfrecord'
    """
    return f"shard-{index:05d}-of-{total:05d}{SHARD_SUFFIX}"


def is_shard_path(path: PathLike) -> bool:
    """Whether ``path`` ends with ``.tfrecord`` (case-insensitive).

    Examples:
        >>> is_shard_path("out/shard-00000-of-00002.tfrecord"), is_shard_path("a.png")
        (True, False)
    """
    return Path(os.fspath(path)).suffix.lower() == SHARD_SUFFIX


def is_shard_dir(path: PathLike) -> bool:
    """Whether ``path`` is a folder holding a shard index (``shards.json``)."""
    p = Path(os.fspath(path))
    return p.is_dir() and (p / INDEX_NAME).is_file()


# --------------------------------------------------------------------------------------------------
# Reading: the TFRecord framing is simple enough to walk without TensorFlow
# --------------------------------------------------------------------------------------------------
def _walk(path: Path) -> Iterator[int]:
    """Offsets of the records of an (uncompressed) TFRecord file; reads 8 bytes per record.

    A record is ``uint64 length, uint32 crc(length), data[length], uint32 crc(data)`` (little endian).
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        pos = 0
        while pos < size:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError(f"{path}: truncated TFRecord file (a record header is cut at byte {pos})")
            (length,) = struct.unpack("<Q", head)
            end = pos + 16 + length
            if end > size:
                raise ValueError(f"{path}: truncated TFRecord file (a record at byte {pos} runs past the end)")
            yield pos
            pos = end
            fh.seek(pos)


def count_records(path: PathLike) -> int:
    """Number of records in a TFRecord file, found by walking the record headers (no data is read).

    Raises:
        ValueError: The file is truncated (or not an uncompressed TFRecord file).
    """
    return sum(1 for _ in _walk(Path(os.fspath(path))))


def count_all(paths: list[Path]) -> list[int]:
    """:func:`count_records` of each file, several files at a time.

    The walk is one small read per record, so on cold or network storage it waits on latency, not
    bandwidth: threads overlap those waits (about 5 ms per 1000 records from the page cache, 0.1 s per
    1000 from a cold local disk, one file at a time).
    """
    if len(paths) <= 1:
        return [count_records(p) for p in paths]
    with ThreadPoolExecutor(min(8, len(paths))) as pool:
        return list(pool.map(count_records, paths))


def record_offsets(path: PathLike) -> list[int]:
    """Byte offset of every record of a TFRecord file (for random access with :func:`read_example`)."""
    return list(_walk(Path(os.fspath(path))))


def read_example(path: PathLike, offset: int) -> tuple[bytes, str]:
    """``(encoded image bytes, relative name)`` of the record at byte ``offset`` of a shard file.

    The name is decoded as UTF-8 with ``surrogateescape``: a file name that is not UTF-8 comes back as
    :func:`os.fsdecode` gives it, as it was listed when the shard was written.
    """
    import tensorflow as tf

    with open(os.fspath(path), "rb") as fh:
        fh.seek(offset)
        (length,) = struct.unpack("<Q", fh.read(8))
        fh.seek(4, os.SEEK_CUR)
        example = tf.train.Example.FromString(fh.read(length))
    feature = example.features.feature
    name = feature["image/filename"].bytes_list.value[0].decode("utf-8", "surrogateescape")
    return feature["image/encoded"].bytes_list.value[0], name


def _check_entry(shard: Any, index_path: Path) -> None:
    """Refuse a ``shards`` entry of the index that is not ``{"file", "records", "bytes"}`` as
    :func:`write_shards` writes them: ``file`` a plain file name in the folder (no folder part, no ``..``),
    ``records`` and ``bytes`` (which older indexes may lack) whole numbers of at least 0."""
    if not isinstance(shard, dict):
        raise ValueError(f"{index_path}: damaged shard index (a shard entry is {shard!r:.80}, not an object)")
    name = shard.get("file")
    if (not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0:")
            or not is_shard_path(name)):
        raise ValueError(f"{index_path}: damaged shard index (shard file {name!r:.80} is not a .tfrecord file "
                         "name in its folder)")
    for key in ("records", "bytes"):
        value = shard.get(key, 0 if key == "bytes" else None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{index_path}: damaged shard index ({key} of {name!r} is {value!r:.80}, not a "
                             "whole number)")


def read_index(folder: PathLike, *, check_records: bool = True) -> dict[str, Any]:
    """Read and check the index of a shard folder.

    Every shard it lists must exist with the size the index recorded, and (``check_records``) hold the
    number of records the index says: readers take their image counts from the index, so a count that
    was edited would make them read wrong records, or fail mid-training.

    Args:
        folder: The shard folder (holding ``shards.json``).
        check_records: Walk every shard's record headers to check its count (:func:`count_all`: 8 bytes
            read per record, about 5 ms per 1000 records from the page cache and 0.1 s per 1000 from a
            cold local disk, several shards at a time). False checks only the sizes.

    Returns:
        The index (see the module documentation for its keys).

    Raises:
        FileNotFoundError: No index, or a listed shard is missing.
        ValueError: Not a blurkit shard index, a newer format version, a damaged shard entry (not an object;
            a ``file`` that is not a ``.tfrecord`` name in the folder, or not a regular file; ``records`` or
            ``bytes`` not a whole number), a shard changed since, or one whose record count differs from the
            index's (the message names the shard and both counts).
    """
    folder = Path(os.fspath(folder))
    index_path = folder / INDEX_NAME
    if not index_path.is_file():
        raise FileNotFoundError(f"no shard index {index_path} (write shards with `blurkit shard SRC {folder}`)")
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{index_path}: not a JSON shard index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("shards"), list):
        raise ValueError(f"{index_path}: not a blurkit shard index (expected format {FORMAT!r})")
    version = index.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:  # true, 0, -1, "1", none
        raise ValueError(f"{index_path}: damaged shard index (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{index_path}: shard format version {version!r} is newer than this blurkit reads "
            f"({FORMAT_VERSION}); upgrade blurkit"
        )
    for shard in index["shards"]:
        _check_entry(shard, index_path)
        path = folder / shard["file"]
        try:
            info = path.stat()  # before anything opens it: a FIFO would block the open
        except FileNotFoundError:
            raise FileNotFoundError(f"{index_path} lists {shard['file']}, which is missing") from None
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{index_path}: damaged shard index ({shard['file']!r} is not a regular file)")
        size = info.st_size
        if "bytes" in shard and size != shard["bytes"]:
            raise ValueError(
                f"{path} has {size} bytes but the index says {shard['bytes']}: it changed after "
                f"`blurkit shard` wrote it; write the shards again"
            )
    if check_records:
        paths = [folder / shard["file"] for shard in index["shards"]]
        for path, shard, found in zip(paths, index["shards"], count_all(paths), strict=True):
            if found != shard.get("records"):
                raise ValueError(
                    f"{path} holds {found} records but {index_path} says {shard.get('records')!r}: the "
                    f"index was changed after `blurkit shard` wrote it; write the shards again"
                )
    return index


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------
def _check(path: Path, name: str, check: str, max_pixels: int | None) -> tuple[bytes, dict[str, Any]]:
    """Read a file and check it is an image: ``(bytes, {"format", "height", "width"})``. The file is checked
    before it is read, as :func:`~blurkit.data.io.read_image` does: a regular file of at most what an image of
    ``max_pixels`` can take."""
    data = _read_file(str(path), max_pixels)
    header = _read_header(data, name, max_pixels) if data else None
    fmt = (header.format if header is not None and header.format else path.suffix.lstrip(".")).lower()
    if check == "decode":
        image = decode_image(data, name=name, max_pixels=max_pixels)
        h, w = image.shape[:2]
    else:
        if not data:
            raise ImageReadError(name, "empty file (0 bytes)")
        if header is None:
            raise ImageReadError(name, "not an image (the header is not one blurkit recognises)")
        w, h = header.size
        if header.orientation in (5, 6, 7, 8):
            h, w = w, h
    return data, {"format": fmt, "height": int(h), "width": int(w)}


def _example(data: bytes, name: str, info: dict[str, Any]) -> bytes:
    import tensorflow as tf

    def b(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def i(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "image/encoded": b(data),
        "image/filename": b(name.encode("utf-8", "surrogateescape")),  # a name that is not UTF-8: its bytes
        "image/format": b(info["format"].encode("ascii", "replace")),
        "image/height": i(info["height"]),
        "image/width": i(info["width"]),
    }
    # deterministic: the features in one order, so that two runs write the same bytes (checksums, DVC)
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def _names(paths: list[Path], src: Any) -> list[str]:
    """Names to store: relative to the source folder, else to the files' common folder."""
    single = src if isinstance(src, (str, os.PathLike)) else None
    root = Path(os.fspath(single)) if single is not None and Path(os.fspath(single)).is_dir() else None
    if root is None:
        try:
            root = Path(os.path.commonpath([os.path.abspath(p.parent) for p in paths]))
        except ValueError:  # different drives
            return [p.as_posix() for p in paths]
        return [Path(os.path.abspath(p)).relative_to(root).as_posix() for p in paths]
    return [p.relative_to(root).as_posix() for p in paths]


def _under(real: str, folder_real: str) -> bool:
    """Whether the real path ``real`` lies strictly under the real folder ``folder_real``."""
    return real.startswith(folder_real.rstrip(os.sep) + os.sep)


def _remove_stale(out: Path) -> None:
    now = time.time()
    for entry in os.scandir(out):
        if _TEMP_FILE.fullmatch(entry.name):
            try:
                if now - entry.stat().st_mtime > STALE_TEMP_SECONDS:
                    os.unlink(entry.path)
            except OSError:
                pass


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_shards(
    src: Any,
    out_dir: PathLike,
    *,
    shard_size: int = 256,
    check: str = "decode",
    shuffle: bool = True,
    seed: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Pack images into TFRecord shards of their encoded bytes, plus an index (``shards.json``).

    Args:
        src: Anything :func:`blurkit.data.io.list_images` takes: a folder (scanned recursively), a glob
            pattern, a text list file (``.txt``/``.lst``), an image file, or a list of those.
        out_dir: Output folder (created). Shards and an index from an earlier run there are replaced;
            other files are left alone.
        shard_size: Images per shard. Aim for shards of 100-200 MB (TensorFlow's advice): about 1000
            phone JPEGs of 150 kB, or 50 camera photos of 3 MB; and at least as many shards as training
            workers (each worker reads whole shards).
        check: ``"decode"`` (default) decodes every image as training will (slow, catches truncated and
            corrupt files); ``"header"`` only parses the header (fast, catches non-images).
        shuffle: Shuffle the files (seeded) before cutting them into shards, so every shard is a random
            sample of the data (needed for a fair validation split that holds out whole shards).
        seed: Seed of that shuffle.
        max_pixels: Skip images with more pixels than this (decompression-bomb guard); None for no limit.
        workers: Threads that read and check files in parallel (default: the number of CPUs, at most 8).
        progress: Show a tqdm progress bar.

    Returns:
        A summary: ``written`` (images stored), ``total`` (image files found), ``skipped`` (list of
        ``{"file", "reason"}``), ``shards`` (list of ``{"file", "records", "bytes"}``), ``out_dir``,
        ``index`` (path of ``shards.json``), ``bytes`` and ``seconds``. When no image could be stored
        nothing is written (``written == 0``, ``shards == []``, ``index`` is None).

    Raises:
        FileNotFoundError, ValueError: From listing ``src`` (missing, no images), or a bad argument.
        OSError: Writing failed (``cannot write shards to OUT: No space left on device``, say); the
            temporary files are removed and the folder is left as it was, or without an index.
        blurkit._lock.Busy: (an ``OSError``) another run is writing shards to ``out_dir``: it holds the lock
            file ``OUT/.shards.lock`` (removed when a run ends) for the whole run; nothing is written.
    """
    import tensorflow as tf

    from blurkit._progress import bar as progress_bar

    start = time.perf_counter()
    if int(shard_size) < 1:
        raise ValueError(f"shard_size must be a positive number of images, got {shard_size}")
    if check not in _CHECKS:
        raise ValueError(f"check must be one of {', '.join(_CHECKS)}, got {check!r}")
    out = Path(os.fspath(out_dir))
    out_real = os.path.realpath(out)
    folders = [Path(os.fspath(s)) for s in (src if isinstance(src, (list, tuple)) else [src])
               if isinstance(s, (str, os.PathLike)) and Path(os.fspath(s)).is_dir()]
    for folder in folders:
        if os.path.realpath(folder) == out_real:
            raise ValueError(f"the output folder {out} is the source folder {folder}: write the shards to "
                             "another folder")
    paths = list_images(src)
    if any(_under(out_real, os.path.realpath(folder)) for folder in folders):
        # a source folder holds OUT: what the scan found in OUT is not a source (for a source inside OUT, or
        # files named by a glob or a list, nothing is left out: shards and the index are not images)
        paths = [p for p in paths if not _under(os.path.realpath(p), out_real)]
    if not paths:
        raise ValueError(f"no images to shard in {src}")
    names = _names(paths, src)
    order = np.random.default_rng(seed).permutation(len(paths)) if shuffle else np.arange(len(paths))
    jobs = [(paths[i], names[i]) for i in order]
    workers = max(1, int(workers or min(8, os.cpu_count() or 1)))
    out.mkdir(parents=True, exist_ok=True)

    temps: list[tuple[Path, int]] = []  # (temporary file, records), in shard order
    skipped: list[dict[str, str]] = []
    writer: Any = None
    count = 0

    def open_next() -> Any:
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".shard-{len(temps):05d}.", suffix=".tmp")
        os.close(fd)
        temps.append((Path(tmp), 0))
        return tf.io.TFRecordWriter(tmp)

    def load(job: tuple[Path, str]) -> tuple[str, bytes | None, Any]:
        path, name = job
        try:
            data, info = _check(path, name, check, max_pixels)
        except (ImageReadError, OSError) as exc:  # the reason without the file's name (listed beside it)
            return name, None, exc.reason if isinstance(exc, ImageReadError) else str(exc)
        return name, data, info

    bar: Any = None
    # held for the run: another run into OUT is refused, and so never removes this one's temporary shards,
    # finished early in a long run, as stale; taken right before the try whose finally lets go of it
    lock = Lock(out / LOCK_NAME, out, "shard run").acquire()
    try:
        bar = progress_bar(total=len(jobs), desc="shard", unit="img", disable=not progress)
        _remove_stale(out)
        with ThreadPoolExecutor(workers) as pool:
            for chunk in _chunks(jobs, workers * 4):  # bounded memory: a few files per thread at a time
                for name, data, info in pool.map(load, chunk):
                    bar.update(1)
                    if data is None:
                        skipped.append({"file": name, "reason": info})
                        bar.set_postfix(skipped=len(skipped))
                        continue
                    if writer is None:
                        writer = open_next()
                    writer.write(_example(data, name, info))
                    count += 1
                    temps[-1] = (temps[-1][0], temps[-1][1] + 1)
                    if temps[-1][1] == shard_size:
                        writer.close()
                        writer = None
        if writer is not None:
            writer.close()
            writer = None
        bar.close()

        shards: list[dict[str, Any]] = []
        index_path = out / INDEX_NAME
        if temps:
            total = len(temps)
            final = [shard_name(i, total) for i in range(total)]
            for tmp, _ in temps:  # the data are on disk before any rename
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
            index_path.unlink(missing_ok=True)  # from here until the new index, the folder is incomplete
            for (tmp, records), fname in zip(temps, final, strict=True):
                replace_file(tmp, out / fname)  # mkstemp made it 0600; an earlier run's shard keeps its mode
                shards.append({"file": fname, "records": records, "bytes": (out / fname).stat().st_size})
            keep = set(final)
            for entry in os.scandir(out):  # shards of an earlier run that the new index does not list
                if _SHARD_FILE.fullmatch(entry.name) and entry.name not in keep:
                    os.unlink(entry.path)
            index = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "total": count,
                "shards": shards,
                "source": _describe(src),
                "shard_size": int(shard_size),
                "check": check,
                "shuffled": bool(shuffle),
                "seed": int(seed),
                "skipped": skipped,
                "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            }
            atomic_write_text(index_path, json.dumps(index, indent=1) + "\n")
    except tf.errors.OpError as exc:  # TFRecordWriter's: ResourceExhaustedError "TMP; No space left on device"
        raise _write_error(out, exc.message.rsplit("; ", 1)[-1] or type(exc).__name__, None) from None
    except OSError as exc:  # the sources' read errors are handled in load(): this is writing (fsync, rename)
        raise _write_error(out, exc.strerror or str(exc), exc.errno) from None
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            try:
                writer.close()
            except tf.errors.OpError:
                pass  # a full disk fails the final flush too: the error raised above says why
        for tmp, _ in temps:
            if tmp.exists():
                tmp.unlink()
        lock.release()
    return {
        "written": count,
        "total": len(jobs),
        "skipped": skipped,
        "shards": shards,
        "out_dir": str(out),
        "index": str(index_path) if shards else None,
        "bytes": sum(s["bytes"] for s in shards),
        "seconds": round(time.perf_counter() - start, 3),
    }


def _write_error(out: Path, reason: str, errno: int | None) -> OSError:
    """``OSError("cannot write shards to OUT: REASON")``: one line naming the folder, not the temporary file."""
    error = OSError(f"cannot write shards to {out}: {reason}")
    error.errno = errno
    return error


def _describe(src: Any) -> Any:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, (list, tuple)):
        return [os.fspath(s) for s in src]
    return type(src).__name__

"""``tf.data`` pipelines that make (blurred, sharp) training pairs on the fly.

Three kinds of training data go through the same pipeline:

* **sharp photos** (a folder, a file, a glob pattern, a text file listing paths, a list of those, or an
  array of sharp images): every visit of an image cuts random patches, applies a random flip/rotation,
  and blurs each patch with the blur generator using freshly sampled parameters (seeded);
* **TFRecord shards** of sharp photos written by ``blurkit shard`` (:mod:`blurkit.data.shards`): the
  shard folder, one shard file, a glob of them or a list of them; treated like sharp photos;
* **pairs of folders** ``(blurred_dir, sharp_dir)`` matched by relative path (``blurkit make-pairs``
  output, or a camera's blurred/sharp captures): aligned random patches from both, same augmentation;
* **pairs of arrays** ``(blurred, sharp)`` like the tutorial: same as pair folders, in memory.

Nothing is loaded whole into memory for file sources: the pipeline streams item indices (or shard
records), files are decoded in parallel (``num_parallel_calls=AUTOTUNE``), a few patches are cut per
decoded image, and batches are prefetched. Shards are read with ``tf.data.TFRecordDataset``, interleaved
over up to 8 shard files at a time; the shard order is shuffled every epoch and the records go through a
bounded shuffle buffer (``shuffle_buffer`` encoded images).

Blurring a patch gives exactly what blurring the whole photo and then cropping would give: the patch is
cut with a margin of the kernel's radius around it (clipped to the photo), blurred with the generator's
border mode, and the margin is dropped. So the training data matches full-image inference.

All randomness flows from one ``seed``: the file order per epoch, the patch positions, the augmentation
and the blur parameters. Two runs with the same seed see the same batches.

Several workers (``num_shards``, ``shard_index``) each read a disjoint part: item indices for files and
arrays, whole shard files for TFRecords (single records when there are fewer shard files than workers),
so every image is seen once per epoch across the workers. Validation splits (:func:`split_source`) are
deterministic and never share an image between the sides.

``cache="folder"`` keeps every decoded image in a local folder (one ``.npy`` per image, memory-mapped
when read back so only the patch regions are read), for data on slow storage or expensive to decode.
Patches, augmentation and blur are drawn afresh from the cached image on every visit.

Examples:
    >>> import numpy as np
    >>> from blurkit.blurs import GaussianBlur
    >>> from blurkit.data.pipeline import make_dataset, resolve_source, split_source
    >>> photos = np.random.default_rng(0).integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)
    >>> train, val = split_source(resolve_source(photos), 0.2, seed=0)
    >>> len(train), len(val)
    (4, 1)
    >>> ds = make_dataset(train, GaussianBlur(), patch_size=16, batch_size=4, patches_per_image=2)
    >>> [tuple(x.shape) for x in next(iter(ds))]
    [(4, 16, 16, 3), (4, 16, 16, 3)]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from blurkit._limits import DEFAULT_MAX_PIXELS

__all__ = [
    "Source",
    "resolve_source",
    "split",
    "split_source",
    "make_dataset",
    "check_readable",
    "items_for",
    "steps_for",
    "match_pairs",
    "to_channels",
]


@dataclass
class Source:
    """Training data resolved to a list of items.

    Attributes:
        kind: ``"sharp"`` (blur on the fly), ``"pairs"`` (blurred and sharp given) or ``"records"``
            (TFRecord shards of sharp photos, blurred on the fly).
        items: For files, paths (``"sharp"``) or ``(blurred, sharp)`` path pairs; for arrays, indices;
            for records, the shard files.
        sharp: In-memory sharp images (array sources), else None.
        blurred: In-memory blurred images (array pair sources), else None.
        counts: Records, images in each shard file of ``items``; else None.
        keep: Records, the images used when not all are (a per-record split or subset): their global
            numbers, counting the records of ``items`` in order; None for all.
    """

    kind: str
    items: list
    sharp: Any = None
    blurred: Any = None
    counts: list[int] | None = None
    keep: np.ndarray | None = field(default=None, compare=False, repr=False)

    def subset(self, idx: Sequence[int]) -> Source:
        """The items at positions ``idx`` (for records, images ``idx`` of this source)."""
        if self.kind == "records":
            chosen = self._records()[np.asarray(idx, dtype=np.int64)]
            return Source(self.kind, list(self.items), counts=list(self.counts or []), keep=chosen)
        return Source(self.kind, [self.items[i] for i in idx], self.sharp, self.blurred)

    def shards(self, idx: Sequence[int]) -> Source:
        """Records: the shard files at positions ``idx``, with all their images."""
        if self.kind != "records" or self.keep is not None:
            raise ValueError("shards() takes whole shard files of an unfiltered records source")
        counts = self.counts or []
        return Source(self.kind, [self.items[i] for i in idx], counts=[counts[i] for i in idx])

    def _records(self) -> np.ndarray:
        if self.keep is not None:
            return self.keep
        return np.arange(sum(self.counts or []), dtype=np.int64)

    def locate(self, i: int) -> tuple[int, int]:
        """Records: ``(shard number in items, position in that shard)`` of image ``i`` of this source."""
        g = int(self._records()[i])
        starts = np.cumsum([0, *(self.counts or [])])
        shard = int(np.searchsorted(starts, g, side="right")) - 1
        return shard, g - int(starts[shard])

    def name(self, i: int) -> str:
        """What reports call item ``i``: its path (a pair's sharp file), ``SHARD#POSITION`` for a record, ``#i``
        for arrays."""
        if self.sharp is not None:
            return f"#{i}"
        if self.kind == "records":
            shard, pos = self.locate(i)
            return f"{self.items[shard]}#{pos}"
        item = self.items[i]
        return str(item[1] if isinstance(item, tuple) else item)  # not the tuple's repr

    def digest(self) -> str:
        """A short hash of which items this source holds (for a resumed run to check its data)."""
        h = hashlib.sha256(json.dumps([self.kind, [str(i) for i in self.items], self.counts]).encode())
        if self.keep is not None:
            h.update(np.ascontiguousarray(self.keep, dtype="<i8").tobytes())
        return h.hexdigest()[:16]

    def __len__(self) -> int:
        if self.kind == "records":
            return len(self.keep) if self.keep is not None else sum(self.counts or [])
        return len(self.items)


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or (isinstance(x, list) and bool(x) and isinstance(x[0], np.ndarray))


_CHANNELS = (1, 2, 3, 4)  # grey, grey + alpha, RGB, RGBA: what to_channels converts


def _as_image_list(x: Any, what: str) -> list[np.ndarray]:
    """In-memory images as a list, their channel counts, dtypes and values checked (:func:`_check_values`)."""
    if isinstance(x, np.ndarray):
        if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in _CHANNELS and x.shape[0] > 4):
            images = [x]
        elif x.ndim in (3, 4):
            images = list(x)
        else:
            raise ValueError(f"{what}: expected (H,W), (H,W,C) or (N,H,W,C) images, got shape {x.shape}")
        if x.ndim == 4:
            _check_channels(x, what)
        _check_values(x, what)
        return images
    images = list(x)
    for i, image in enumerate(images):
        a = np.asarray(image)
        if a.ndim not in (2, 3):
            raise ValueError(f"{what}[{i}]: expected an (H,W) or (H,W,C) image, got shape {a.shape}")
        _check_channels(a, f"{what}[{i}]")
        _check_values(a, f"{what}[{i}]")
    return images


def _check_channels(a: np.ndarray, what: str) -> None:
    """Refuse channel counts :func:`to_channels` cannot convert now, not as a TensorFlow traceback mid-fit."""
    if a.ndim > 2 and a.shape[-1] not in _CHANNELS:
        raise ValueError(f"{what}: images need 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels, "
                         f"got {a.shape[-1]} (shape {a.shape})")


def _check_values(a: np.ndarray, what: str) -> None:
    """Refuse, before training or scoring, what would otherwise go wrong deep in a TensorFlow pipeline or give
    meaningless numbers: dtypes other than uint8, uint16, float and bool (int64 is what a list of ints
    becomes), NaN or infinite values, and float images far outside [0, 1] (a [0, 255] float image)."""
    from blurkit.metrics.functional import check_unit_float

    if a.dtype in (np.uint8, np.uint16, np.bool_) or a.size == 0:
        return
    if a.dtype.kind != "f":
        raise ValueError(f"{what}: images must be uint8, uint16 or float in [0, 1], got dtype {a.dtype} "
                         "(convert with .astype(np.uint8), or to float and divide by 255)")
    check_unit_float(a, what)


def _by_stem(folder: Path) -> dict[str, list[Path]]:
    """The images under ``folder`` grouped by relative path without extension."""
    from blurkit.data.io import list_images

    found: dict[str, list[Path]] = {}
    for p in list_images(folder):
        found.setdefault(p.relative_to(folder).with_suffix("").as_posix(), []).append(p)
    return found


def match_pairs(
    blurred_dir: str | os.PathLike, sharp_dir: str | os.PathLike
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Match files of two folders by relative path without extension.

    Files of one folder that differ only in extension (``x.jpg`` and ``x.png``) are left out, with their
    partner in the other folder: which of them pairs with it is ambiguous.

    Returns:
        ``(pairs, problems)``: matched ``(blurred, sharp)`` paths, and one message per file that has no
        partner (it names the file) or per name shared by several files (it names them all).

    Raises:
        ValueError: No pair matched at all.
    """
    bdir, sdir = Path(blurred_dir), Path(sharp_dir)
    blurred, sharp = _by_stem(bdir), _by_stem(sdir)
    problems = []
    shared = {k for side in (blurred, sharp) for k, files in side.items() if len(files) > 1}
    for k in sorted(shared):
        # training on a guessed pair could teach the model a wrong mapping: leave the name out and say so
        files = " and ".join(str(p) for p in [*blurred.pop(k, []), *sharp.pop(k, [])])
        problems.append(f"{files}: several files named {k!r} without extension, so which pair up is ambiguous "
                        "(rename or remove the extra ones)")
    pairs = [(blurred[k][0], sharp[k][0]) for k in sorted(blurred.keys() & sharp.keys())]
    problems += [f"{blurred[k][0]}: no sharp partner in {sdir}" for k in sorted(blurred.keys() - sharp.keys())]
    problems += [f"{sharp[k][0]}: no blurred partner in {bdir}" for k in sorted(sharp.keys() - blurred.keys())]
    if not pairs:
        left_out = f" (left out: {'; '.join(problems[: len(shared)])})" if shared else ""
        raise ValueError(f"no matching file names between {bdir} and {sdir}{left_out}")
    return pairs, problems


def _records_source(data: Any) -> Source | None:
    """A records :class:`Source` when ``data`` names TFRecord shards, else None.

    Shards are: a folder with a shard index (``shards.json``), a ``.tfrecord`` file, a glob pattern
    ending in ``.tfrecord``, or a list of those.
    """
    import glob

    from blurkit.data.io import is_image_path
    from blurkit.data.shards import INDEX_NAME, count_all, is_shard_path, read_index

    if isinstance(data, (list, tuple)):
        if not data or not all(isinstance(d, (str, os.PathLike)) for d in data):
            return None
        if all(is_image_path(d) for d in data):  # the common case, without a stat per path
            return None
        parts = [_records_source(d) for d in data]
        if all(part is None for part in parts):
            return None
        if any(part is None for part in parts):
            raise ValueError("a list of sources cannot mix TFRecord shards with image files or folders")
        files: list[Path] = []
        counts: list[int] = []
        for part in parts:
            for f, c in zip(part.items, part.counts, strict=True):  # type: ignore[union-attr,arg-type]
                if f not in files:
                    files.append(f)
                    counts.append(c)
        return Source("records", files, counts=counts)
    if not isinstance(data, (str, os.PathLike)):
        return None
    text = os.fspath(data)
    path = Path(text)
    if path.is_dir():
        if not (path / INDEX_NAME).is_file():
            return None
        index = read_index(path)
        files = [path / s["file"] for s in index["shards"]]
        counts = [int(s["records"]) for s in index["shards"]]
    elif path.is_file():
        if not is_shard_path(path):
            return None
        files = [path]
        counts = count_all(files)  # walks the record headers (an index beside them is not trusted)
    elif any(c in text for c in "*?[") and is_shard_path(text):
        files = [Path(m) for m in sorted(glob.glob(text, recursive=True)) if os.path.isfile(m)]
        if not files:
            raise FileNotFoundError(f"no files match pattern {text}")
        counts = count_all(files)  # walks the record headers (an index beside them is not trusted)
    else:
        return None
    if sum(counts) == 0:
        raise ValueError(f"no images in the TFRecord shards of {text}")
    return Source("records", files, counts=counts)


def resolve_source(data: Any, name: str = "data") -> Source:
    """Turn what a user passes to ``fit``/``evaluate`` into a :class:`Source`.

    Args:
        data: A folder / file / glob / text list (``.txt``, ``.lst``) / list of paths of sharp photos;
            TFRecord shards (a folder written by ``blurkit shard``, ``.tfrecord`` files, a glob or a
            list of them); an array (or list of arrays) of sharp images; a tuple
            ``(blurred_dir, sharp_dir)``; or a tuple ``(blurred, sharp)`` of arrays.
        name: The argument ``data`` was given as, for the messages about bad arrays (``validation``).

    Returns:
        The :class:`Source`; ``len()`` of it is the number of images (of pairs for pair data), for
        a shard folder taken from its index (checked against the shards' record headers), for shard
        files named directly counted from their record headers.

    Raises:
        FileNotFoundError: A path does not exist, or a pattern matches nothing.
        ValueError: No images, a text list with a bad line (the message names the list and the line),
            a folder holding shards without an index or with an index that does not match them (a
            changed size or record count), mixed shards and images.
        TypeError: ``data`` is none of the above.

    Examples:
        >>> import numpy as np
        >>> src = resolve_source(np.zeros((3, 20, 20, 3), np.uint8))
        >>> src.kind, len(src)
        ('sharp', 3)
    """
    from blurkit.data.io import list_images

    if isinstance(data, tuple) and len(data) == 2:
        b, s = data
        if _is_array(b) and _is_array(s):
            side = "" if name == "data" else f"{name} "
            bl, sl = _as_image_list(b, f"{side}blurred"), _as_image_list(s, f"{side}sharp")
            if len(bl) != len(sl):
                raise ValueError(f"blurred and sharp hold different numbers of images: {len(bl)} vs {len(sl)}")
            for i, (x, y) in enumerate(zip(bl, sl, strict=True)):
                if x.shape[:2] != y.shape[:2]:
                    raise ValueError(f"pair {i}: blurred {x.shape} and sharp {y.shape} differ in size")
            return Source("pairs", list(range(len(sl))), sharp=sl, blurred=bl)
        if (isinstance(b, (str, os.PathLike)) and isinstance(s, (str, os.PathLike))
                and Path(b).is_dir() and Path(s).is_dir()):
            pairs, problems = match_pairs(b, s)
            for msg in problems:
                warnings.warn(f"skipping {msg}", stacklevel=3)
            return Source("pairs", pairs)
    if _is_array(data):
        images = _as_image_list(data, name)  # once: it checks every value
        return Source("sharp", list(range(len(images))), sharp=images)
    records = _records_source(data)
    if records is not None:
        return records
    if isinstance(data, (str, os.PathLike, list, tuple)):
        try:
            return Source("sharp", list_images(data if not isinstance(data, tuple) else list(data)))
        except ValueError:
            from blurkit.data.shards import INDEX_NAME, SHARD_SUFFIX

            folder = Path(data) if isinstance(data, (str, os.PathLike)) else None
            if folder is not None and folder.is_dir() and any(folder.glob(f"*{SHARD_SUFFIX}")):
                raise ValueError(
                    f"{folder} holds {SHARD_SUFFIX} files but no {INDEX_NAME} (an interrupted `blurkit "
                    f"shard`?): write the shards again, or pass the pattern '{folder / ('*' + SHARD_SUFFIX)}'"
                ) from None
            raise
    raise TypeError(
        "data must be a folder, file, glob or list of sharp photos, an array of sharp images, "
        f"(blurred_dir, sharp_dir) or (blurred_array, sharp_array); got {type(data).__name__}"
    )


def split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic train/validation split of ``n`` items (pairs stay together: items are pairs).

    At least one item goes to each side when ``n >= 2`` and ``fraction > 0``. The same ``(n, fraction,
    seed)`` always gives the same split, and the two sides never share an item.

    Examples:
        >>> split(10, 0.2, seed=0)
        ([0, 1, 2, 3, 5, 7, 8, 9], [4, 6])
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"the validation fraction (fit's validation_split) must be in [0, 1), got {fraction!r}")
    if fraction == 0 or n < 2:
        return list(range(n)), []
    k = min(n - 1, max(1, round(n * fraction)))
    perm = np.random.default_rng(seed).permutation(n)
    val = sorted(int(i) for i in perm[:k])
    train = sorted(int(i) for i in perm[k:])
    return train, val


def split_source(source: Source, fraction: float, seed: int) -> tuple[Source, Source | None]:
    """Deterministic, leak-free train/validation split of any source: ``(train, validation or None)``.

    Files, pairs and arrays are split item by item with :func:`split` (``source.subset`` of its two
    index lists), so pairs stay together. TFRecord shards are split by whole shard files when there are
    enough of them for the fraction (``shards * fraction >= 1``): the held-out share is then rounded to
    whole shards, and validation reads only its own shards. With fewer shard files (say 1 or 2 shards
    and 10 %), whole files would hold out far too much, so the split is per image instead: :func:`split`
    over the image numbers, and both sides read all shards and filter them (validation then costs a
    pass over all shards). Either way the same ``(source, fraction, seed)`` gives the same split, and
    no image is on both sides.

    Args:
        source: From :func:`resolve_source`.
        fraction: Share of the items for validation, in ``[0, 1)``; 0 gives no validation side.
        seed: Seed of the split.

    Returns:
        ``(train, validation)``; validation is None when it would be empty (``fraction == 0`` or a
        single item).

    Examples:
        >>> import numpy as np
        >>> train, val = split_source(resolve_source(np.zeros((10, 8, 8), np.uint8)), 0.2, seed=0)
        >>> train.items, val.items
        ([0, 1, 2, 3, 5, 7, 8, 9], [4, 6])
    """
    if source.kind == "records" and source.keep is None:
        files = len(source.items)
        if not 0 <= fraction < 1:
            raise ValueError(f"the validation fraction (fit's validation_split) must be in [0, 1), got {fraction!r}")
        if fraction == 0:
            return source, None
        if files >= 2 and files * fraction >= 1:
            tr, va = split(files, fraction, seed)
            return source.shards(tr), source.shards(va)
    tr, va = split(len(source), fraction, seed)
    if source.kind == "records" and not va:
        return source, None
    return source.subset(tr), (source.subset(va) if va else None)


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Float (H,W,C) image with ``channels`` channels: grey is repeated, RGB is converted to luma.

    Alpha is dropped first, as :func:`~blurkit.data.io.read_image` drops it from files: grey + alpha
    (2 channels) becomes grey, RGBA becomes RGB.
    """
    if image.ndim == 2:
        image = image[..., None]
    c = image.shape[-1]
    if c in (2, 4):
        image, c = image[..., : c - 1], c - 1
    if c == channels:
        return image
    if channels == 3 and c == 1:
        return np.repeat(image, 3, axis=-1)
    if channels == 1 and c == 3:
        w = np.asarray([0.299, 0.587, 0.114], dtype=image.dtype)
        return (image @ w)[..., None].astype(image.dtype)
    raise ValueError(f"cannot convert a {c}-channel image to {channels} channels")


_DIHEDRAL = 8  # identity, 3 rotations, and the 4 flipped versions


def _augment(a: np.ndarray, b: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    if k >= 4:
        a, b = a[:, ::-1], b[:, ::-1]
    r = k % 4
    return np.rot90(a, r), np.rot90(b, r)


_SEED_MASK = 0x7FFFFFFFFFFFFFFF
# what reading one item may raise for a bad file (ImageReadError is a ValueError): skipped, not fatal
_READ_ERRORS = (OSError, ValueError)
_CACHE_VERSION = 1
_CYCLE = 8  # shard files read at a time (fixed, so the record order does not depend on the machine)


def _cache_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([_CACHE_VERSION, *parts]).encode()).hexdigest()


_NPY_HEADER_LOCK = threading.Lock()
"""Held while a cached ``.npy`` is opened: NumPy parses its header with ``ast.literal_eval``, and Python 3.11
builds syntax trees with state shared between threads, so the reader threads of ``tf.data`` opening cache
files at once failed now and then with "SystemError: AST constructor recursion depth mismatch" (CPython
gh-106905). Opening is a header read and a memory map: the lock costs nothing measurable."""


def _open_cached(path: Path) -> np.ndarray:
    """A cached ``.npy`` memory-mapped, its header parsed under :data:`_NPY_HEADER_LOCK` (and once more on
    the spurious ``SystemError`` of CPython gh-106905, should a thread outside the lock, TensorFlow's
    autograph say, have been building a syntax tree at the same time)."""
    for attempt in (1, 2):
        try:
            with _NPY_HEADER_LOCK:
                return np.load(path, mmap_mode="r", allow_pickle=False)
        except SystemError as exc:
            if attempt == 2 or "recursion depth mismatch" not in str(exc):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _file_key(path: Path | str) -> list[Any]:
    """What identifies a file's content for the cache: real path, size and modification time."""
    info = os.stat(path)
    return [os.path.realpath(path), info.st_size, info.st_mtime_ns]


def _save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` to ``path`` atomically (a hidden temporary file renamed over it)."""
    from blurkit.data.io import replace_file, temp_prefix

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(array), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())  # renamed only once on disk: a power cut cannot leave a zero-filled .npy
        replace_file(tmp, path)  # not mkstemp's 0600: a cache a team shares must be readable by its users
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _PatchMaker:
    """The numpy side of the pipeline: decode, cut, augment and blur (runs in tf.numpy_function).

    With a ``cache`` folder, decoded images are kept there (see :func:`make_dataset`) and read back
    memory-mapped; patches are then cut from the mapped file, so only their regions are read.
    """

    def __init__(self, source: Source, blur, patch_size: int, patches: int, channels: int, augment: bool,
                 max_pixels: int | None, cache: str | os.PathLike | None = None, role: str = "training",
                 unreadable: dict[int, str] | None = None, streamed: int | None = None) -> None:
        self.source, self.blur = source, blur
        self.patch, self.patches, self.channels = patch_size, patches, channels
        self.augment, self.max_pixels = augment, max_pixels
        self.cache = None if cache is None else Path(os.fspath(cache))
        self.role = role  # "training" or "validation", for the messages
        # item index (global record number for shards) -> why it was skipped; a copy, since reader threads
        # add to it
        self.unreadable: dict[int, str] = dict(unreadable or {})
        # records: how many this stream reads per pass, and which of them it found unreadable, so that a
        # stream where none can be decoded stops with an error instead of filtering forever
        self._streamed = streamed
        self._stream_bad: set[int] = set()
        self._unreadable_lock = threading.Lock()  # reader threads find bad files at the same time
        self._shard_keys: dict[int, list[Any]] = {}
        self._offsets: dict[int, list[int]] = {}
        self._cache_failed = False
        self._warned_small = False  # an image much smaller than the patch is warned about once

    # ---------------------------------------------------------------------------------- loading
    def _kw(self) -> dict[str, Any]:
        return {"max_pixels": self.max_pixels}

    def _through_cache(self, key: str, decode: Callable[[], np.ndarray], name: str) -> np.ndarray:
        """The cached image for ``key`` (memory-mapped), or ``decode()`` stored under ``key``."""
        if self.cache is None:
            return decode()
        path = self.cache / key[:2] / f"{key}.npy"
        try:
            image = _open_cached(path)
        except FileNotFoundError:
            image = None
        except (OSError, ValueError, EOFError):  # torn or foreign file: decode again and replace it
            image = None
        if image is not None:
            from blurkit.data.io import ImageReadError, _too_big

            h, w = image.shape[:2]
            if self.max_pixels is not None and h * w > self.max_pixels:
                raise ImageReadError(name, _too_big((w, h), h * w, self.max_pixels))
            return image
        image = decode()
        try:
            _save_array(path, image)
        except OSError as exc:
            if not self._cache_failed:
                self._cache_failed = True
                warnings.warn(f"cannot write the data cache in {self.cache} ({exc}); training goes on "
                              "without caching", stacklevel=2)
        return image

    def _read(self, path: Path) -> np.ndarray:
        """Read one image file; an :class:`~blurkit.data.io.ImageReadError` names its whole path."""
        from blurkit.data.io import read_image

        if self.cache is None:
            return read_image(path, **self._kw())
        key = _cache_key("file", *_file_key(path))
        return self._through_cache(key, lambda: read_image(path, **self._kw()), str(path))

    def _skip(self, key: int, why: str, message: str) -> None:
        """Remember that item (or record) ``key`` is unreadable, and warn ``message`` the first time only.

        Several reader threads may meet the same bad file at once: the check and the update are one
        step, so each is reported exactly once per :class:`_PatchMaker` (once per training run).
        """
        with self._unreadable_lock:
            first = key not in self.unreadable
            if first:
                self.unreadable[key] = why
        if first:
            warnings.warn(message, stacklevel=3)

    def _record(self, shard: int, pos: int, data: bytes, name: str) -> np.ndarray:
        """Decode record ``pos`` of shard file ``shard`` (its bytes are ``data``), through the cache."""
        from blurkit.data.io import decode_image

        if self.cache is None:
            return decode_image(data, name=name, **self._kw())
        if shard not in self._shard_keys:
            self._shard_keys[shard] = _file_key(self.source.items[shard])
        key = _cache_key("record", *self._shard_keys[shard], pos)
        return self._through_cache(key, lambda: decode_image(data, name=name, **self._kw()), name)

    def _load_readable(self, index: int) -> tuple[np.ndarray | None, np.ndarray]:
        """:meth:`_load`, but an unreadable file is reported once and replaced by the next readable item.

        Raising inside ``tf.numpy_function`` would abort training with a TensorFlow traceback (and can
        leave TensorFlow's worker threads stuck at interpreter exit), so bad files are skipped instead,
        as ``blurkit deblur`` does. :meth:`check_readable` catches the case where nothing can be read
        before the pipeline runs.
        """
        n = len(self.source)
        for k in range(n):
            j = (index + k) % n
            if self._key(j) in self.unreadable:
                continue
            try:
                return self._load(j)
            except _READ_ERRORS as exc:
                self._skip_item(j, exc)
        shown = [self.unreadable[j] for j in sorted(self.unreadable)[:3]]
        more = f"; and {n - len(shown)} more" if n > len(shown) else ""
        raise ValueError(f"none of the {n} {self.role} items can be read: {'; '.join(shown)}{more}")

    def _key(self, index: int) -> int:
        """What :attr:`unreadable` calls item ``index``: the index, or for records the global record number
        (the streamed records know only that)."""
        keep = self.source.keep
        return int(keep[index]) if self.source.kind == "records" and keep is not None else index

    def _skip_item(self, index: int, exc: Exception) -> None:
        """Report item ``index`` (of the source) as unreadable because of ``exc``."""
        from blurkit.data.io import _advised

        if self.source.kind == "records":
            shard, pos = self.source.locate(index)
            self._skip_record(self._key(index), shard, pos, exc)
        else:
            why = _advised(str(exc), "Deblurrer.fit")
            self._skip(index, why, f"skipping unreadable {self.role} item: {why}")

    def _skip_record(self, number: int, shard: int, pos: int, exc: Exception) -> None:
        """Report record ``pos`` of shard file ``shard`` (global ``number``) as unreadable because of ``exc``."""
        from blurkit.data.io import _advised

        # SHARD#POSITION, as Source.name says
        why = f"{self.source.items[shard]}#{pos}: {_advised(str(exc), 'Deblurrer.fit')}"
        self._skip(number, why, f"skipping unreadable {self.role} record: {why}")

    def check_readable(self) -> None:
        """Read items in order until one can be read (each unreadable one is warned about, once).

        Records are read by random access (:meth:`_load`), as the stream would decode them.

        Raises:
            ValueError: None of the items can be read; the message names them and says why.
        """
        if self.source.sharp is None:
            self._load_readable(0)

    def _load(self, index: int) -> tuple[np.ndarray | None, np.ndarray]:
        """Return ``(blurred or None, sharp)`` native-dtype images for item ``index``.

        They may be read-only memory-mapped arrays (from the cache). Records are read by random access
        (the shard's record offsets are found once), for :meth:`blurkit.Deblurrer.evaluate`; training
        streams them instead (:meth:`record`).
        """
        s = self.source
        if s.sharp is not None:  # arrays: items are indices into them (a subset keeps the full lists)
            item = s.items[index]
            return (s.blurred[item] if s.blurred is not None else None), s.sharp[item]
        if s.kind == "records":
            from blurkit.data.shards import read_example, record_offsets

            shard, pos = s.locate(index)
            if shard not in self._offsets:
                self._offsets[shard] = record_offsets(s.items[shard])
            data, name = read_example(s.items[shard], self._offsets[shard][pos])
            return None, self._record(shard, pos, data, name)
        item = s.items[index]
        if s.kind == "pairs":
            b, sh = self._read(item[0]), self._read(item[1])
            if b.shape[:2] != sh.shape[:2]:
                raise ValueError(f"{item[0]} {b.shape[:2]} and {item[1]} {sh.shape[:2]} differ in size")
            return b, sh
        return None, self._read(item)

    # ---------------------------------------------------------------------------------- cutting
    def _prepare(self, img: np.ndarray) -> np.ndarray:
        from blurkit.data.io import to_float

        x = to_channels(to_float(img), self.channels)
        return x

    def _pad(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        ph, pw = max(0, self.patch - h), max(0, self.patch - w)
        if ph or pw:
            mode: Literal["reflect", "symmetric"] = "reflect" if h > ph and w > pw else "symmetric"
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode=mode)
        return img

    def _cut(self, blurred: np.ndarray | None, sharp: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Cut, blur and augment the patches of one image (native dtype, maybe memory-mapped).

        Only the patch regions (plus the blur margin) are converted to float, so a memory-mapped cached
        image is only read where patches fall; the values are those of converting the whole image.
        """
        n, p, prep = self.patches, self.patch, self._prepare
        h, w = sharp.shape[:2]
        if h < p or w < p:  # small image: convert and pad it whole
            if min(h, p) * min(w, p) * 4 < p * p:  # the image covers under a quarter of its patches
                with self._unreadable_lock:  # reader threads cut patches at once: said once
                    first, self._warned_small = not self._warned_small, True
                if first:
                    warnings.warn(f"patch_size {p} is much larger than a {self.role} image of {h}x{w} pixels: it "
                                  f"is padded to {max(h, p)}x{max(w, p)} by mirroring, so most of each {p}x{p} "
                                  "patch cut from it is mirrored copies; a patch_size at most the photos' shorter "
                                  "side trains faster on what they show", stacklevel=2)
            sharp = self._pad(prep(np.asarray(sharp)))
            if blurred is not None:
                blurred = self._pad(prep(np.asarray(blurred)))
            h, w = sharp.shape[:2]
        whole: np.ndarray | None = None
        out_b = np.empty((n, p, p, self.channels), np.float32)
        out_s = np.empty((n, p, p, self.channels), np.float32)
        for i in range(n):
            y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            s = prep(sharp[y : y + p, x : x + p])
            if blurred is not None:
                b = prep(blurred[y : y + p, x : x + p])
            else:
                params = self.blur.sample(rng)
                k = self.blur.kernel(params)
                ry, rx = k.shape[0] // 2, k.shape[1] // 2
                if params.get("border") == "wrap" and (y < ry or x < rx or y + p + ry > h or x + p + rx > w):
                    # circular borders bring in the opposite side of the photo: wrap-pad, then blur the
                    # patch plus its margin (only the margin sees the region's own border handling)
                    if whole is None:
                        whole = prep(np.asarray(sharp))
                    pad = np.pad(whole, ((ry, ry), (rx, rx), (0, 0)), mode="wrap")
                    region = self.blur.apply(pad[y : y + p + 2 * ry, x : x + p + 2 * rx], params, kernel=k, rng=rng)
                    b = region[ry : ry + p, rx : rx + p]
                else:
                    y0, x0 = max(0, y - ry), max(0, x - rx)
                    y1, x1 = min(h, y + p + ry), min(w, x + p + rx)
                    region = self.blur.apply(prep(sharp[y0:y1, x0:x1]), params, kernel=k, rng=rng)
                    b = region[y - y0 : y - y0 + p, x - x0 : x - x0 + p]
            if self.augment:
                b, s = _augment(b, s, int(rng.integers(_DIHEDRAL)))
            out_b[i], out_s[i] = b, s
        return out_b, out_s

    def __call__(self, index: np.int64, seed: np.int64) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(seed) & _SEED_MASK)
        blurred, sharp = self._load_readable(int(index))
        return self._cut(blurred, sharp, rng)

    def once(self, index: np.int64, seed: np.int64) -> tuple[np.ndarray, np.ndarray, np.bool_]:
        """Patches of item ``index`` itself, for a single pass: ``(blurred, sharp, ok)``.

        An unreadable item gives ``ok=False`` (and zero patches, dropped by the pipeline) with one
        warning, rather than the next readable item: a validation pass scores every readable item once.
        """
        rng = np.random.default_rng(int(seed) & _SEED_MASK)
        i = int(index)
        if self._key(i) not in self.unreadable:
            try:
                blurred, sharp = self._load(i)
            except _READ_ERRORS as exc:
                self._skip_item(i, exc)
            else:
                b, s = self._cut(blurred, sharp, rng)
                return b, s, np.bool_(True)
        return self._dropped()

    def record(self, number: np.int64, data: bytes, name: bytes,
               seed: np.int64) -> tuple[np.ndarray, np.ndarray, np.bool_]:
        """Patches of one streamed shard record: ``(blurred, sharp, ok)``.

        ``number`` counts the records of all shard files of the source in order. A record that cannot
        be decoded gives ``ok=False`` (and zero patches, dropped by the pipeline) with one warning; one
        known to be unreadable is not decoded again.

        Raises:
            ValueError: Every record this stream reads is unreadable (a repeating stream would otherwise
                drop records forever without yielding a batch).
        """
        rng = np.random.default_rng(int(seed) & _SEED_MASK)
        g = int(number)
        if g not in self.unreadable:
            label = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            starts = np.cumsum([0, *(self.source.counts or [])])
            shard = int(np.searchsorted(starts, g, side="right")) - 1
            try:
                sharp = self._record(shard, g - int(starts[shard]), data, label or f"record {g}")
            except _READ_ERRORS as exc:
                self._skip_record(g, shard, g - int(starts[shard]), exc)
            else:
                b, s = self._cut(None, sharp, rng)
                return b, s, np.bool_(True)
        with self._unreadable_lock:
            self._stream_bad.add(g)
            hopeless = self._streamed is not None and len(self._stream_bad) >= self._streamed
        if hopeless:
            shown = [self.unreadable[j] for j in sorted(self._stream_bad)[:3]]
            raise ValueError(f"none of the {self._streamed} {self.role} records this worker reads can be "
                             f"read: {'; '.join(shown)}")
        return self._dropped()

    def _dropped(self) -> tuple[np.ndarray, np.ndarray, np.bool_]:
        """What :meth:`once` and :meth:`record` give for an unreadable item: zero patches, ``ok=False`` (the
        pipeline filters them out)."""
        zero = np.zeros((self.patches, self.patch, self.patch, self.channels), np.float32)
        return zero, zero, np.bool_(False)


def _record_plan(source: Source, num_shards: int, shard_index: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """What one worker reads of a records source: ``(shard files, kept record numbers or None, images)``.

    Workers take whole shard files (``files[shard_index::num_shards]``) when there are at least as many
    files as workers, else every ``num_shards``-th image; a split's ``keep`` filter applies on top.
    """
    counts = np.asarray(source.counts or [], np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    files = np.arange(len(counts), dtype=np.int64)
    chosen = source.keep
    if num_shards > 1:
        if len(files) >= num_shards:
            files = files[shard_index::num_shards]
        else:
            chosen = (chosen if chosen is not None else np.arange(starts[-1], dtype=np.int64))[shard_index::num_shards]
    if chosen is None:
        return files, None, int(counts[files].sum())
    owner = np.searchsorted(starts, chosen, side="right") - 1
    mine = np.isin(owner, files)
    chosen = np.asarray(chosen, np.int64)[mine]
    return np.intersect1d(files, owner[mine]), chosen, int(len(chosen))


def items_for(source: Source, num_shards: int = 1, shard_index: int = 0) -> int:
    """Images (or pairs) that worker ``shard_index`` of ``num_shards`` reads per epoch.

    Over all workers these add up to ``len(source)``: items are dealt out one by one
    (``shard_index::num_shards``), TFRecord shards file by file (image by image when there are fewer
    files than workers). Use it with :func:`steps_for` for a worker's steps per epoch.

    Examples:
        >>> src = resolve_source(np.zeros((5, 8, 8), np.uint8))
        >>> [items_for(src, 2, i) for i in range(2)]
        [3, 2]
    """
    if num_shards < 1 or not 0 <= shard_index < num_shards:
        raise ValueError(f"need 0 <= shard_index < num_shards, got shard_index={shard_index}, num_shards={num_shards}")
    if source.kind == "records":
        return _record_plan(source, num_shards, shard_index)[2]
    return len(range(shard_index, len(source), num_shards))


def _record_patches(source: Source, maker: _PatchMaker, *, seed: Any, shuffle: bool, repeat: bool,
                    num_shards: int, shard_index: int, shuffle_buffer: int, shape: tuple[int, ...]):
    """Dataset of ``(blurred, sharp)`` patch stacks, one per streamed shard record."""
    import tensorflow as tf

    files, chosen, _ = _record_plan(source, num_shards, shard_index)
    counts = np.asarray(source.counts, np.int64)
    starts = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64))
    paths = tf.constant([os.fspath(f) for f in source.items])
    ids = tf.data.Dataset.from_tensor_slices(tf.constant(files, tf.int64))
    if shuffle:
        ids = ids.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ids = ids.repeat()

    def read(f):
        first = tf.gather(starts, f)
        return tf.data.TFRecordDataset(tf.gather(paths, f)).enumerate().map(lambda pos, rec: (first + pos, rec))

    recs = ids.interleave(read, cycle_length=max(1, min(len(files), _CYCLE)), block_length=1,
                          num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if chosen is not None:
        mask = np.zeros(int(counts.sum()), bool)
        mask[chosen] = True
        mask_t = tf.constant(mask)
        recs = recs.filter(lambda g, rec: tf.gather(mask_t, g))
    if shuffle:
        recs = recs.shuffle(max(1, int(shuffle_buffer)), seed=seed + 2, reshuffle_each_iteration=True)
    ds = tf.data.Dataset.zip((recs, tf.data.Dataset.random(seed=seed)))
    spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/filename": tf.io.FixedLenFeature([], tf.string, default_value="")}

    def cut(rec, s):
        g, serialized = rec
        ex = tf.io.parse_single_example(serialized, spec)
        b, sh, ok = tf.numpy_function(maker.record, [g, ex["image/encoded"], ex["image/filename"], s],
                                      [tf.float32, tf.float32, tf.bool], stateful=False)
        return tf.ensure_shape(b, shape), tf.ensure_shape(sh, shape), tf.ensure_shape(ok, ())

    ds = ds.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.filter(_readable).map(_pair)


def _readable(blurred: Any, sharp: Any, ok: Any) -> Any:
    """Keep the patches of items that could be read (named, not lambdas: AutoGraph cannot convert two lambdas
    on one line and warned about each, every time a one-pass pipeline was built)."""
    return ok


def _pair(blurred: Any, sharp: Any, ok: Any) -> tuple[Any, Any]:
    return blurred, sharp


def make_dataset(
    source: Source,
    blur=None,
    *,
    patch_size: int = 64,
    batch_size: int = 16,
    patches_per_image: int = 4,
    channels: int = 3,
    augment: bool = True,
    shuffle: bool = True,
    repeat: bool = True,
    seed: int = 0,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    num_shards: int = 1,
    shard_index: int = 0,
    cache: str | os.PathLike | None = None,
    shuffle_buffer: int = 256,
    role: str = "training",
    unreadable: dict[int, str] | None = None,
):
    """Build a ``tf.data.Dataset`` of ``(blurred, sharp)`` float32 batches in [0, 1].

    Args:
        source: From :func:`resolve_source` (or one side of :func:`split_source`).
        blur: A blur generator (needed for sharp photos and TFRecord shards).
        patch_size: Side of the square patches; images smaller than that are reflect-padded up to it.
        batch_size: Patches per batch.
        patches_per_image: Patches cut from each decoded image on each visit.
        channels: 1 or 3; images are converted (grey repeated, colour to luma).
        augment: Random flips and 90-degree rotations (the 8 symmetries of the square).
        shuffle: Shuffle the items (for shards: the shard files, then the records in a buffer) every
            epoch, and the patches within a buffer.
        repeat: Repeat forever (training: an unreadable item is replaced by the next readable one);
            otherwise one pass (validation) over the readable items, each once: an unreadable item is
            skipped, so the pass may hold fewer batches than ``len(source)`` suggests.
        seed: Seeds everything; the same seed gives the same batches. May be a scalar tensor.
        max_pixels: Refuse images with more pixels than this (decompression-bomb guard; None: no limit).
        num_shards: Number of workers reading the data (e.g. ``input_context.num_input_pipelines``).
        shard_index: Which worker this dataset is for (``input_context.input_pipeline_id``). Workers
            get disjoint parts that together cover every image once per epoch: item indices
            ``shard_index::num_shards`` (sharded before shuffling), or for TFRecords whole shard files
            ``shard_index::num_shards``, falling back to every ``num_shards``-th image when there are
            fewer shard files than workers (each worker then reads all files and skips the others'
            records). :func:`items_for` says how many items a worker gets.
        cache: A folder for an on-disk cache of the decoded images (created; for data on slow storage
            or expensive to decode). Each decoded image is stored as one ``.npy`` file, written
            atomically, keyed by the source file's real path, size and modification time (for shards:
            the shard file's and the record's position), so a changed file is decoded again, never
            served stale. Cached images are read back memory-mapped: only the patch regions are read.
            Patches, augmentation and blur still differ on every visit, since caching happens before
            patch cutting. The cache never shrinks: delete the folder to reclaim the space (it needs
            about ``height * width * channels`` bytes per 8-bit image). Array sources ignore it.
            Workers may share a folder.
        shuffle_buffer: TFRecords: records (encoded images) in the record shuffle buffer; memory is
            about this many times the mean file size.
        role: ``"training"`` or ``"validation"``: what the warnings and errors call the items.
        unreadable: What :func:`check_readable` returned for this source: the readability check is then
            not run again (it may be traced, in a ``flat_map`` say, where its error would reach the user
            wrapped in AutoGraph's traceback), and the items it found unreadable are not warned about
            again. None (default): check here.

    Returns:
        A dataset yielding ``(blurred, sharp)`` tensors of shape ``(batch, patch, patch, channels)``.

    Raises:
        ValueError: No images, no blur for sharp photos, a bad ``num_shards``/``shard_index``, a
            worker that would get no image, or items (files or shard records) of which none can be read
            (checked here unless ``unreadable`` is given, by reading them in order until one can be; each
            unreadable one is warned about once).
    """
    import tensorflow as tf

    if len(source) == 0:
        raise ValueError("no training images")
    if source.kind in ("sharp", "records") and blur is None:
        raise ValueError("sharp-only data needs a blur generator to make the blurred inputs")
    local = items_for(source, num_shards, shard_index)
    if local == 0:
        raise ValueError(f"worker {shard_index} of {num_shards} gets none of the {len(source)} training items; "
                         "use fewer workers or more data")
    maker = _PatchMaker(source, blur, patch_size, patches_per_image, channels, augment, max_pixels,
                        cache=cache if source.sharp is None else None, role=role, unreadable=unreadable,
                        streamed=local)
    if unreadable is None:
        maker.check_readable()  # a one-line error now, not a TensorFlow traceback from inside the pipeline
    shape = (patches_per_image, patch_size, patch_size, channels)
    if source.kind == "records":
        ds = _record_patches(source, maker, seed=seed, shuffle=shuffle, repeat=repeat, num_shards=num_shards,
                             shard_index=shard_index, shuffle_buffer=shuffle_buffer, shape=shape)
    else:
        idx = tf.data.Dataset.range(len(source))
        if num_shards > 1:
            idx = idx.shard(num_shards, shard_index)
        if shuffle:
            idx = idx.shuffle(local, seed=seed, reshuffle_each_iteration=True)
        if repeat:
            idx = idx.repeat()
        seeds = tf.data.Dataset.random(seed=seed)
        ds = tf.data.Dataset.zip((idx, seeds))

        def cut(i, s):
            b, sh = tf.numpy_function(maker, [i, s], [tf.float32, tf.float32], stateful=False)
            return tf.ensure_shape(b, shape), tf.ensure_shape(sh, shape)

        def cut_once(i, s):
            b, sh, ok = tf.numpy_function(maker.once, [i, s], [tf.float32, tf.float32, tf.bool], stateful=False)
            return tf.ensure_shape(b, shape), tf.ensure_shape(sh, shape), tf.ensure_shape(ok, ())

        if repeat:
            ds = ds.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        else:  # one pass: an unreadable item is dropped, not replaced by another scored twice
            ds = ds.map(cut_once, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            ds = ds.filter(_readable).map(_pair)
    ds = ds.unbatch()
    if shuffle:
        ds = ds.shuffle(max(batch_size * 8, patches_per_image * 16), seed=seed + 1)
    ds = ds.batch(batch_size, drop_remainder=repeat)
    return ds.prefetch(tf.data.AUTOTUNE)


def check_readable(source: Source, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                   role: str = "training") -> dict[int, str]:
    """Read the items of ``source`` in order until one can be read, as :func:`make_dataset` does first.

    Shard records are read by random access. Each unreadable item met is warned about, once. Run it
    outside any traced function and pass the result to ``make_dataset(unreadable=...)``, so that the
    error below reaches the user as a plain one-line ``ValueError``.

    Args:
        source: From :func:`resolve_source` (or one side of :func:`split_source`).
        max_pixels: As for :func:`make_dataset`.
        role: ``"training"`` or ``"validation"``, for the messages.

    Returns:
        The unreadable items met before the first readable one: ``{index (record number for shards):
        reason}``; empty for arrays (nothing to read).

    Raises:
        ValueError: None of the items can be read (``none of the N training items can be read: ...``,
            naming the first three and why).
    """
    maker = _PatchMaker(source, None, 1, 1, 3, False, max_pixels, role=role)
    maker.check_readable()
    return dict(maker.unreadable)


def steps_for(n_items: int, patches_per_image: int, batch_size: int) -> int:
    """Batches that visit every image once (an epoch)."""
    return max(1, math.ceil(n_items * patches_per_image / batch_size))

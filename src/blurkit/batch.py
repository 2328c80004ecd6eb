"""Deblur many image files, streaming: reading and writing overlap with the model, memory stays bounded.

:func:`deblur_files` is the engine behind ``blurkit deblur``. It takes ``(source, destination)`` pairs
lazily (a generator of tens of thousands of files starts at once) and runs three stages at the same time:

* **read**: ``workers`` reader threads decode the next files (OpenCV and Pillow release the GIL), at most
  ``prefetch`` files ahead of the model;
* **restore**: the calling thread runs ``deblurrer.predict`` on one image at a time, in input order;
* **write**: ``workers`` writer threads encode the results and write them atomically (a temporary file
  renamed over the target, see :func:`blurkit.data.io.write_image`), at most ``prefetch`` results queued.

So at most ``2 * prefetch + 1`` decoded images are in memory at once: ``prefetch`` inputs (one of them in
the model), the model's output, and ``prefetch`` outputs waiting to be written (plus the encoder's working
copy in each writer thread). With the defaults (``prefetch=4``) and 12-megapixel RGB photos that is
9 x 36 MB = 324 MB of images, whatever the number of files, on top of the model's own working memory (one
tile). ``workers=0`` does each file from start to
end in the calling thread (read, restore, write), one at a time: the same results, without overlap.

A file that cannot be read, restored or written is recorded with its reason and the batch goes on.
Ctrl-C stops reading new files, lets the results already computed be written, and raises
:class:`Interrupted` carrying the :class:`Summary` so far; since every output is written atomically, an
interrupted (or killed) run never leaves a half-written image, and ``skip_existing=True`` resumes it.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from blurkit.batch import deblur_files, folder_jobs
    >>> from blurkit.data.io import read_image, write_image
    >>> class Invert:  # anything with a predict(image) -> image method, e.g. a blurkit.Deblurrer
    ...     def predict(self, image):
    ...         return 255 - image
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ["a.png", "sub/b.png"]:
    ...     write_image(root / "in" / name, np.zeros((4, 6, 3), np.uint8))
    >>> _ = (root / "in" / "c.png").write_bytes(b"not a png")
    >>> summary = deblur_files(Invert(), folder_jobs(root / "in", root / "out"))
    >>> print(summary)
    done 2, skipped 0 (already there), failed 1
    >>> summary.failed  # doctest: +ELLIPSIS
    [(PosixPath('.../in/c.png'), 'not an image, ...')]
    >>> int(read_image(root / "out" / "sub" / "b.png").min())
    255
    >>> print(deblur_files(Invert(), folder_jobs(root / "in", root / "out"), skip_existing=True))
    done 0, skipped 2 (already there), failed 1
"""

from __future__ import annotations

import collections
import errno
import inspect
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blurkit._limits import DEFAULT_MAX_PIXELS  # not blurkit.data.io's: that imports OpenCV

__all__ = ["Summary", "Interrupted", "deblur_files", "folder_jobs", "iter_images", "count_images"]

PathLike = str | os.PathLike



@dataclass
class Summary:
    """What a batch did: files written, skipped (output already there) and failed (with the reason).

    Attributes:
        done: Outputs written.
        skipped: Files left alone because their output already existed (``skip_existing=True``).
        failed: ``(source, reason)`` for each file that could not be read, restored or written, in input
            order.
        interrupted: The batch was stopped by Ctrl-C before the end.
        left: Files neither read nor restored because a write had found their output's file system full
            (``ENOSPC``), over quota (``EDQUOT``) or read-only (``EROFS``): their writes would fail too, each
            after its photo was restored for nothing. Outputs on other file systems are still written.
        left_why: The write error that left them (empty when none did).
        seconds: Wall time of the batch.

    Examples:
        >>> from blurkit.batch import Summary
        >>> print(Summary(done=3, skipped=1))
        done 3, skipped 1 (already there), failed 0
    """

    done: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)
    interrupted: bool = False
    left: int = 0
    left_why: str = ""
    seconds: float = 0.0

    @property
    def total(self) -> int:
        """Files handled: done + skipped + failed."""
        return self.done + self.skipped + len(self.failed)

    def __str__(self) -> str:
        left = f", left {self.left} (output file system full or read-only)" if self.left else ""
        return f"done {self.done}, skipped {self.skipped} (already there), failed {len(self.failed)}{left}"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`deblur_files`; ``summary`` says what was done before.

    It is a :class:`KeyboardInterrupt`, so code that does not look for it stops as usual. ``signum`` is the
    signal that stopped it (``SIGINT``, or ``SIGTERM`` as the CLI turns it into an interruption).
    """

    def __init__(self, summary: Summary, signum: int = signal.SIGINT) -> None:
        super().__init__(str(summary))
        self.summary = summary
        self.signum = int(signum)


# --------------------------------------------------------------------------------------------------
# Listing files lazily
# --------------------------------------------------------------------------------------------------
def iter_images(folder: PathLike, unlisted: dict[str, str] | None = None) -> Iterator[Path]:
    """The image files under ``folder``, recursively, one at a time: the first comes at once.

    The same files in the same order as :func:`blurkit.data.io.list_images` (both walk the folder with
    :func:`blurkit.data.io.iter_files`: sorted by relative path; hidden files and folders skipped;
    symbolic links to folders followed, each real folder once), but without listing the whole tree first:
    only one folder's entries are held at a time.

    Args:
        folder: The folder to scan.
        unlisted: Receives ``{sub-folder: reason}`` for each sub-folder that cannot be listed, instead of
            the warning (see :func:`blurkit.data.io.iter_files`).

    Yields:
        Paths of image files (suffix in :data:`blurkit.data.io.IMAGE_EXTENSIONS`).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from blurkit.batch import iter_images
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ["b.png", "a/z.JPG", "notes.txt", ".hidden.png"]:
        ...     (root / name).parent.mkdir(exist_ok=True)
        ...     _ = (root / name).write_bytes(b"")
        >>> [p.relative_to(root).as_posix() for p in iter_images(root)]
        ['a/z.JPG', 'b.png']
    """
    from blurkit.data.io import is_image_path, iter_files

    return (p for p in iter_files(folder, unlisted=unlisted) if is_image_path(p.name))


def count_images(folder: PathLike) -> int:
    """How many files :func:`iter_images` yields (a directory walk; no file is opened).

    Examples:
        >>> import tempfile
        >>> from blurkit.batch import count_images
        >>> count_images(tempfile.mkdtemp())
        0
    """
    return sum(1 for _ in iter_images(folder))


def folder_jobs(
    source: PathLike, out: PathLike, *, suffix: str = "", ext: str | None = None,
    unlisted: dict[str, str] | None = None,
) -> Iterator[tuple[Path, Path]]:
    """``(source file, output file)`` pairs for a folder (recursively) or one file, lazily.

    Relative names and formats are kept: ``source/sub/a.jpg`` goes to ``out/sub/a<suffix>.jpg``; a single
    file goes into the folder ``out``. Formats blurkit reads but does not write become JPEG for HEIC/HEIF
    (camera photos) and PNG otherwise (a GIF, a file without an extension: lossless, and alpha is kept).

    Args:
        source: A folder or an image file.
        out: The output folder.
        suffix: Added to each output name, before the extension.
        ext: The outputs' extension (``".png"``), i.e. their format; None keeps each source's.
        unlisted: As for :func:`iter_images`.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from blurkit.batch import folder_jobs
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "sub").mkdir()
        >>> _ = (root / "sub" / "a.jpg").write_bytes(b"")
        >>> [(s.name, d.as_posix()) for s, d in folder_jobs(root, "out", suffix="_sharp")]
        [('a.jpg', 'out/sub/a_sharp.jpg')]
        >>> [d.as_posix() for _, d in folder_jobs(root, "out", ext=".png")]
        ['out/sub/a.png']
        >>> [d.as_posix() for name in ("IMG_1.HEIC", "anim.gif", "scan") for _, d in folder_jobs(name, "out")]
        ['out/IMG_1.jpg', 'out/anim.png', 'out/scan.png']
    """
    from blurkit.data.io import WRITE_EXTENSIONS

    def kept(name: Path) -> str:
        if ext or name.suffix.lower() in WRITE_EXTENSIONS:
            return ext or name.suffix
        return ".jpg" if name.suffix.lower() in (".heic", ".heif") else ".png"

    src, dst = Path(os.fspath(source)), Path(os.fspath(out))
    if not src.is_dir():
        yield src, dst / (src.stem + suffix + kept(src))
        return
    for f in iter_images(src, unlisted):
        rel = f.relative_to(src)
        yield f, dst / rel.with_name(rel.stem + suffix + kept(rel))


# --------------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------------
class _Inline:
    """An executor that runs each task at once in the calling thread (``workers=0``)."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - kept in the future, like a thread pool does
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass


def tile_bar(deblurrer: Any, progress: bool) -> dict:
    """The keyword arguments that ask ``deblurrer.predict`` for its bar of a large photo's tiles (half a
    minute for 12 MP on a laptop CPU): ``{"progress": True}`` where ``progress`` and its ``predict`` takes
    it (a :class:`~blurkit.Deblurrer`'s does), else none, so anything with a ``predict(image)`` serves. None
    either when the bars are log lines (:func:`blurkit._progress.log_lines`): a bar below another one."""
    from blurkit import _progress

    if not progress or _progress.logging():
        return {}
    try:
        takes = "progress" in inspect.signature(deblurrer.predict).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin, a C extension)
        takes = False
    return {"progress": True} if takes else {}


#: Write errors after which no other output on the same file system can be written: those are left unread.
_FATAL_WRITE = frozenset(getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS") if hasattr(errno, name))


def _nearest(folder: Path, ask: Callable[[Path], Any], otherwise: Any) -> Any:
    """``ask(folder)``, or, for a folder not made yet, ``ask`` of its nearest existing parent (``otherwise``
    when none answers)."""
    for probe in (folder, *folder.parents):
        try:
            return ask(probe)
        except OSError:
            continue
    return otherwise


def _device(folder: Path) -> int | None:
    """The file system (``st_dev``) ``folder`` is on, or will be once made: its nearest existing folder's."""
    return _nearest(folder, lambda p: os.stat(p).st_dev, None)


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` (or, not made yet, its nearest existing folder) is on a read-only mount. Without
    ``statvfs`` (Windows), every folder is taken for one once a write found a read-only file system."""
    if not hasattr(os, "statvfs"):
        return True
    return _nearest(folder, lambda p: bool(os.statvfs(p).f_flag & os.ST_RDONLY), True)


def _reason(exc: BaseException) -> str:
    """Why a file failed, listed beside it: an unreadable file's reason without its name."""
    from blurkit.data.io import ImageReadError

    if isinstance(exc, ImageReadError):
        return exc.reason
    if isinstance(exc, (ValueError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def deblur_files(
    deblurrer: Any,
    jobs: Iterable[tuple[PathLike, PathLike]],
    *,
    workers: int = 2,
    prefetch: int = 4,
    skip_existing: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    total: int | Callable[[], int | None] | None = None,
    progress: bool = False,
    metadata: bool = True,
    quality: int = 95,
) -> Summary:
    """Deblur image files, reading and writing in threads while the model runs (see the module's notes).

    Each source is read with :func:`~blurkit.data.io.read_image` (alpha kept, EXIF orientation applied),
    restored with ``deblurrer.predict`` in the calling thread, in input order, and written with
    :func:`~blurkit.data.io.write_image` (format from the destination's suffix, atomically, parent folders
    created), with the source's colour profile and EXIF data when the destination is a JPEG, PNG or WebP
    file (:mod:`blurkit.data.metadata`). Outputs keep the source's sample type where the format can hold
    it: 8 or 16 bits, float32 in TIFF (16 bits in PNG), grey + alpha in PNG. A failure is recorded in the
    summary (a write error names the destination) and the batch goes on. After a write that failed because
    its file system is full, over quota or read-only, the files whose outputs are on that file system are left
    unread (each would be restored for nothing, and its write fail): :attr:`Summary.left` counts them.

    Args:
        deblurrer: A :class:`~blurkit.Deblurrer`, or any object whose ``predict(image)`` returns the
            restored image.
        jobs: ``(source, destination)`` pairs, e.g. from :func:`folder_jobs`; consumed lazily, only as
            far as ``prefetch`` ahead of the model.
        workers: Reader threads, and as many writer threads. ``0``: no threads, each file is read,
            restored and written before the next one is read.
        prefetch: Files read ahead of the model, and results queued for writing, at most (so at most
            ``2 * prefetch + 1`` decoded images in memory). Ignored with ``workers=0``.
        skip_existing: Leave files whose destination already exists (resume an interrupted batch).
        max_pixels: Refuse images with more pixels than this before decoding them (``None``: no limit).
        total: The number of jobs for the progress bar (rate and time left); ``len(jobs)`` when it has
            one. A function is asked again at each step until it returns a number, e.g. the result of a
            count running in another thread.
        progress: Show a tqdm progress bar (on stderr) with the rate and the time left, and, while a large
            image is restored in tiles, a second bar of its tiles (when ``deblurrer.predict`` takes
            ``progress``, as :meth:`blurkit.Deblurrer.predict` does).
        metadata: Copy each source's ICC colour profile and EXIF block (orientation reset to upright, as
            the pixels are) to its destination. ``False`` writes the pixels alone.
        quality: JPEG and WebP quality of the outputs (1-100); a lossless WebP source gives a lossless
            WebP output whatever ``metadata`` says.

    Returns:
        The :class:`Summary`: done, skipped, failed (with reasons, in input order), left (on a file system a
        write found full or read-only, with the error), seconds.

    Raises:
        Interrupted: Ctrl-C; its ``summary`` holds what was done. Outputs being written are finished,
            nothing is left half-written.
        ValueError: ``workers`` < 0, ``prefetch`` < 1 or ``quality`` outside 1..100.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from blurkit.batch import deblur_files
        >>> from blurkit.data.io import write_image
        >>> class Same:
        ...     def predict(self, image):
        ...         return image
        >>> root = Path(tempfile.mkdtemp())
        >>> write_image(root / "a.png", np.zeros((4, 6), np.uint8))
        >>> jobs = [(root / "a.png", root / "out" / "a.png"), (root / "missing.png", root / "out" / "m.png")]
        >>> s = deblur_files(Same(), jobs, workers=0)
        >>> s.done, [(p.name, why[:9]) for p, why in s.failed]
        (1, [('missing.png', '[Errno 2]')])
    """
    from blurkit.deblurrer import _need_tensorflow

    _need_tensorflow("predict")  # once, before any file is read (each one failed alike)
    if int(workers) < 0:
        raise ValueError(f"workers must be 0 (no threads) or more, got {workers}")
    if int(prefetch) < 1:
        raise ValueError(f"prefetch must be at least 1, got {prefetch}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    from blurkit.data.io import read_image, write_image
    from blurkit.data.metadata import read_metadata

    if total is None and isinstance(jobs, Sized):
        total = len(jobs)
    from blurkit.deblurrer import naming

    depth = int(prefetch) if workers else 1
    summary = Summary()
    failures: list[tuple[int, Path, str]] = []
    start = time.perf_counter()
    bar = _Bar(progress, total)
    tiles = tile_bar(deblurrer, progress)

    def read(src: Path, dst: Path) -> Any:
        image = read_image(src, max_pixels=max_pixels, alpha="keep")
        # the metadata is read to be copied, or, for a WebP output, to know whether the source is lossless
        return image, read_metadata(src) if metadata or dst.suffix.lower() == ".webp" else None

    def write(dst: Path, out: Any, meta: Any) -> None:
        # a float image (from a float TIFF) stays float32 in TIFF, and keeps 16 bits in PNG rather than 8
        deep = getattr(getattr(out, "dtype", None), "kind", "") == "f" and dst.suffix.lower() == ".png"
        if deep:  # an HDR file's values above 1 (warned about when it was read) cannot be stored in PNG: clipped
            out = np.clip(out, 0, 1)  # here, as asked for with --format png (write_image refuses them)
        lossless = meta is not None and meta.lossless and dst.suffix.lower() == ".webp"
        write_image(dst, out, metadata=meta if metadata else None, quality=quality, bits=16 if deep else None,
                    lossless=lossless)

    def fail(i: int, src: Path, exc: BaseException) -> None:
        failures.append((i, src, _reason(exc)))
        bar.step(summary, len(failures))

    reads: collections.deque[tuple[int, Path, Path, Future]] = collections.deque()
    writes: list[tuple[int, Path, Path, Future]] = []
    full: set[int | None] = set()  # file systems (st_dev) a write found full or over quota
    # a write found its file system read-only: each output folder's own mount is asked (a read-only bind mount
    # shares its st_dev with the writable file system around it)
    read_only = False
    known: dict[Path, bool] = {}  # output folder -> whether its outputs are left

    def dead(dst: Path) -> bool:
        """Whether ``dst`` is on a file system a write found full, over quota or read-only."""
        if not full and not read_only:
            return False
        if os.path.islink(dst):  # an output that is a link: its target's file system (a link to /dev/full)
            return _device(dst) in full or (read_only and _read_only(dst))
        if dst.parent not in known:
            known[dst.parent] = _device(dst.parent) in full or (read_only and _read_only(dst.parent))
        return known[dst.parent]

    def leave() -> None:
        summary.left += 1
        bar.step(summary, len(failures))

    def reap(block: bool = False) -> None:
        """Account for finished writes; with ``block``, wait for at least one first."""
        nonlocal read_only
        if block and writes:
            wait([f for *_, f in writes], return_when=FIRST_COMPLETED)
        pending = []
        for i, src, dst, fut in writes:
            if not fut.done():
                pending.append((i, src, dst, fut))
            elif (exc := fut.exception()) is not None:
                fail(i, src, exc)
                if isinstance(exc, OSError) and exc.errno in _FATAL_WRITE:
                    if exc.errno == errno.EROFS:
                        read_only = True
                    else:
                        full.add(_device(dst if os.path.islink(dst) else dst.parent))
                    known.clear()  # looked up again: a folder made meanwhile may be another mount
                    summary.left_why = summary.left_why or _reason(exc)
            else:
                summary.done += 1
                bar.step(summary, len(failures))
        writes[:] = pending

    def restore_next() -> None:
        """Restore the oldest file read and queue its result for writing."""
        i, src, dst, fut = reads.popleft()
        if dead(dst):  # read ahead before its file system was found full: left, as the files not yet read
            fut.cancel()
            leave()
            return
        try:
            image, meta = fut.result()
            with naming(src):  # a Deblurrer's warnings about the image name its file
                out = deblurrer.predict(image, **tiles)
        except Exception as exc:  # noqa: BLE001 - one bad image must not stop the batch
            fail(i, src, exc)
            return
        while len(writes) >= depth:
            reap(block=True)
        writes.append((i, src, dst, writers.submit(write, dst, out, meta)))

    readers = ThreadPoolExecutor(workers, thread_name_prefix="blurkit-read") if workers else _Inline()
    writers = ThreadPoolExecutor(workers, thread_name_prefix="blurkit-write") if workers else _Inline()
    try:
        for i, (src, dst) in enumerate(jobs):
            src, dst = Path(os.fspath(src)), Path(os.fspath(dst))
            if skip_existing and dst.exists():
                summary.skipped += 1
                bar.step(summary, len(failures))
                continue
            while len(reads) >= depth:
                restore_next()
                reap()
            if dead(dst):  # checked after the wait above, which may have found its file system full
                leave()
                continue
            reads.append((i, src, dst, readers.submit(read, src, dst)))
        while reads:
            restore_next()
            reap()
        while writes:
            reap(block=True)
    except KeyboardInterrupt as exc:
        summary.interrupted = True
        for *_, fut in reads:
            fut.cancel()
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True)  # results already computed are written (each write is atomic)
        reap()
        raise Interrupted(_finish(summary, failures, start, bar), getattr(exc, "signum", signal.SIGINT)) from None
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True)
        bar.close()
    return _finish(summary, failures, start, bar)


def _finish(summary: Summary, failures: list[tuple[int, Path, str]], start: float, bar: _Bar) -> Summary:
    summary.failed = [(src, why) for _, src, why in sorted(failures, key=lambda f: f[0])]
    summary.seconds = time.perf_counter() - start
    bar.close()
    return summary


class _Bar:
    """A tqdm bar (or nothing) that picks up the total once it is known, with done/skipped/failed counts."""

    def __init__(self, enabled: bool, total: int | Callable[[], int | None] | None) -> None:
        self.total = total
        self.bar = None
        if enabled:
            from blurkit._progress import bar

            known = total if isinstance(total, int) else None
            self.bar = bar(total=known, unit="img", desc="deblur", dynamic_ncols=True)

    def step(self, summary: Summary, failed: int) -> None:
        if self.bar is None:
            return
        if self.bar.total is None and callable(self.total):
            n = self.total()
            if n is not None:
                self.bar.total = n
        if summary.skipped or failed:
            self.bar.set_postfix_str(f"skipped {summary.skipped}, failed {failed}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

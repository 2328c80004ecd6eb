"""Image files in and out: folder scanning, safe decoding, atomic writing and dtype conversions.

Conventions used everywhere in blurkit:

* Arrays are RGB(A) in channel-last order, ``(H, W, 3)``, or ``(H, W)`` for grayscale and ``(H, W, 2)`` for
  grey + alpha (OpenCV's BGR order never leaves this module).
* Images keep their sample type: 8-bit files give ``uint8``, 16-bit PNG/TIFF give ``uint16``, float TIFFs
  give ``float32`` (values as stored). :func:`to_float` maps integers to ``float32`` in ``[0, 1]``
  (``uint8 / 255``, ``uint16 / 65535``) and :func:`from_float` maps back (rounding and clipping).
* Reading never trusts the file: the pixel count is checked from the header before anything is decoded
  (decompression-bomb guard), EXIF orientation is applied, and every failure is an
  :class:`ImageReadError` that names the file and says why.
* Writing is atomic: the file is encoded in memory, written to a temporary file in the target folder,
  flushed to disk and renamed over the target, so a reader (or a crash) never sees half a file.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from blurkit.data.io import list_images, read_image, write_image
    >>> folder = Path(tempfile.mkdtemp())
    >>> image = np.zeros((4, 6, 3), np.uint8)
    >>> write_image(folder / "sub" / "b.png", image)
    >>> write_image(folder / "a.jpg", image)
    >>> [p.relative_to(folder).as_posix() for p in list_images(folder)]
    ['a.jpg', 'sub/b.png']
    >>> read_image(folder / "sub" / "b.png").shape
    (4, 6, 3)
"""

from __future__ import annotations

import contextlib
import functools
import glob
import io
import math
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

import cv2
import numpy as np

from blurkit import _limits

__all__ = [
    "IMAGE_EXTENSIONS",
    "LIST_EXTENSIONS",
    "DEFAULT_MAX_PIXELS",
    "ImageReadError",
    "is_image_path",
    "list_images",
    "read_image",
    "decode_image",
    "is_list_path",
    "read_list",
    "write_image",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "to_float",
    "from_float",
]

PathLike = str | os.PathLike

#: Suffixes (lower case) recognised as images by :func:`is_image_path` and :func:`list_images`. HEIC/HEIF
#: (iPhone photos) are read when the ``pillow-heif`` package is installed (``pip install "blurkit[heif]"``).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif")

#: Suffixes :func:`write_image` writes (OpenCV's encoders; HEIC/HEIF are read only).
WRITE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

_HEIF_SUFFIXES = (".heic", ".heif")

#: Largest image :func:`read_image` decodes by default, in pixels (width x height). It is Pillow's
#: decompression-bomb error threshold: about 179 million pixels, e.g. 13 000 x 13 000. The default of every
#: reader's ``max_pixels`` (``Deblurrer.predict``, ``fit``, ``evaluate``, ...); ``None`` there means no limit.
DEFAULT_MAX_PIXELS: int = _limits.DEFAULT_MAX_PIXELS

# Suffixes that can store 16 bits per sample (others are written as 8-bit).
_SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
# Pillow modes that OpenCV decodes wrongly or into types we do not return: decode them with Pillow.
_PIL_DECODED_MODES = {"CMYK", "YCbCr", "LAB", "HSV", "I", "F", "I;32", "I;32S", "I;32B", "I;16S", "I;16BS"}


class ImageReadError(ValueError):
    """A file could not be read as an image; the message names the file and the reason.

    Args:
        path: The file (as named to the reader: its path, or the name given to :func:`decode_image`); or,
            with no ``reason``, the whole message (a raiser written before the two were apart).
        reason: Why it could not be read.

    Attributes:
        path: The file, as given (None when only a message was given).
        reason: Why, without the file's name (the message is ``"{path}: {reason}"``).

    Examples:
        >>> from blurkit.data.io import ImageReadError, decode_image
        >>> try:
        ...     decode_image(b"", name="photos/empty.jpg")
        ... except ImageReadError as exc:
        ...     print(exc.path, "|", exc.reason)
        photos/empty.jpg | empty file (0 bytes)
    """

    def __init__(self, path: str | os.PathLike | None, reason: str | None = None) -> None:
        if reason is None:  # one argument: the whole message
            path, reason = None, str(path)
        path = None if path is None else os.fspath(path)
        super().__init__(path, reason)  # both in args: the error pickles (a worker process's, say)
        self.path, self.reason = path, reason

    def __str__(self) -> str:
        return self.reason if self.path is None else f"{self.path}: {self.reason}"


# --------------------------------------------------------------------------------------------------
# Paths and folders
# --------------------------------------------------------------------------------------------------
def is_image_path(path: PathLike) -> bool:
    """Whether ``path`` ends with an image suffix from :data:`IMAGE_EXTENSIONS` (case-insensitive).

    Only the last suffix counts, and the file itself is not opened.

    Args:
        path: A file name or path.

    Returns:
        True for ``photo.png`` or ``PHOTO.JPG``; False for ``photo.png.txt`` or ``png``.

    Examples:
        >>> from blurkit.data.io import is_image_path
        >>> is_image_path("PHOTO.JPG"), is_image_path("photo.png.txt"), is_image_path("dir/.png")
        (True, False, False)
    """
    return Path(os.fspath(path)).suffix.lower() in IMAGE_EXTENSIONS


#: Suffixes (lower case) of text files that list images, one path per line (see :func:`read_list`).
LIST_EXTENSIONS: tuple[str, ...] = (".txt", ".lst")


def is_list_path(path: PathLike) -> bool:
    """Whether ``path`` names a text list of images (suffix ``.txt`` or ``.lst``, case-insensitive).

    Examples:
        >>> from blurkit.data.io import is_list_path
        >>> is_list_path("train.txt"), is_list_path("val.LST"), is_list_path("a.png")
        (True, True, False)
    """
    return Path(os.fspath(path)).suffix.lower() in LIST_EXTENSIONS


def read_list(path: PathLike, recursive: bool = True) -> list[Path]:
    """The images named by a text list file: one path per line.

    Each line is an image file, a folder (scanned like :func:`list_images` does) or a glob pattern.
    Relative paths are relative to the list file's folder, so a list can travel with its data. Blank
    lines and lines starting with ``#`` are ignored, and surrounding spaces are stripped. An image listed
    twice is returned once (first-seen order), so a train/validation split cannot put it on both sides.
    Lines are read one at a time and each is checked with one ``stat``, about what scanning a folder
    of the same size costs.

    A listed file that does not exist is an error naming the list file and the line: a list is written
    on purpose, so a missing entry is a mistake to fix, not a file to skip silently. (A listed file that
    exists but cannot be decoded is skipped during training with a warning, like in a folder.)

    Args:
        path: The list file (UTF-8 text; a byte-order mark is allowed).
        recursive: Scan sub-folders of listed folders.

    Returns:
        The image paths, in list order.

    Raises:
        FileNotFoundError: The list file, or a listed path, does not exist (the message says
            ``LIST line N: ...``).
        ValueError: A listed file has no image suffix, a listed folder or pattern holds no image, a line
            names another list file, or the list names no image at all.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from blurkit.data.io import read_list
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ["a.png", "sub/b.jpg", "sub/c.png"]:
        ...     (root / name).parent.mkdir(exist_ok=True)
        ...     _ = (root / name).write_bytes(b"")
        >>> _ = (root / "train.txt").write_text("# training photos\\na.png\\n\\nsub/*.jpg\\na.png\\n")
        >>> [p.relative_to(root).as_posix() for p in read_list(root / "train.txt")]
        ['a.png', 'sub/b.jpg']
        >>> _ = (root / "bad.txt").write_text("a.png\\nmissing.png\\n")
        >>> read_list(root / "bad.txt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: .../bad.txt line 2: no such file: missing.png (looked for .../missing.png)
    """
    path = Path(os.fspath(path))
    base = path.parent
    seen: set[str] = set()
    out: list[Path] = []
    raw = path.read_bytes()  # FileNotFoundError names the list
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"  # PowerShell 5's `>` writes UTF-16
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        before = raw[: exc.start].decode(encoding, "replace")
        bad_line = before.replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1
        shown = "UTF-16" if encoding == "utf-16" else "UTF-8"
        raise ValueError(f"{path} line {bad_line}: not {shown} text ({exc.reason}); save the list as UTF-8") from None
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        where = f"{path} line {number}"
        target = Path(entry).expanduser()
        if not target.is_absolute():
            target = base / target
        if is_list_path(target):
            raise ValueError(f"{where}: a list file cannot name another list ({entry})")
        try:
            mode = os.stat(target).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and stat.S_ISREG(mode):
            if not is_image_path(target):
                raise ValueError(
                    f"{where}: not an image file name: {entry} (expected one of {', '.join(IMAGE_EXTENSIONS)})"
                )
            found = [target]
        elif mode is None and not _has_magic(entry):
            raise FileNotFoundError(f"{where}: no such file: {entry} (looked for {target})")
        else:  # a folder or a glob pattern
            try:
                found = list_images(target if mode is not None else str(target), recursive=recursive)
            except (FileNotFoundError, ValueError) as exc:
                raise type(exc)(f"{where}: {exc}") from None
        for p in found:
            key = os.path.abspath(p)
            if key not in seen:
                seen.add(key)
                out.append(p)
    if not out:
        raise ValueError(f"list file {path} names no images (one path per line; # starts a comment)")
    return out


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def iter_files(root: PathLike, recursive: bool = True, unlisted: dict[str, str] | None = None) -> Iterator[Path]:
    """Every file under ``root``, lazily, sorted by relative path: the first comes at once.

    One folder's entries are held at a time. Hidden files and folders (name starting with ``.``) are
    skipped, and so is what is not a regular file (broken links, sockets). Symbolic links to folders are
    followed, but each real folder is visited once, so link cycles cannot loop; real folders are
    preferred over links to them.

    A sub-folder that cannot be listed (no permission, a network file system's I/O error) is left out with a
    warning naming it and the reason, not silently; ``root`` itself raises the ``OSError``. With
    ``unlisted``, such a folder is recorded there instead (``{folder: reason}``), for a caller that reports
    it (``blurkit deblur`` counts it as a failure).
    """
    root = Path(os.fspath(root))
    visited = {os.path.realpath(root)}

    def is_dir(entry: os.DirEntry) -> bool:
        try:
            return entry.is_dir()  # follows symbolic links
        except OSError:
            return False

    def walk(path: str) -> Iterator[Path]:
        try:
            with os.scandir(path) as it:
                entries = [e for e in it if not _is_hidden(e.name)]
        except OSError as exc:
            if path == os.fspath(root):
                raise
            if unlisted is not None:
                unlisted[path] = str(exc.strerror or exc)
            else:
                warnings.warn(f"cannot list folder {path} ({exc.strerror or exc}): the files in it are left out",
                              stacklevel=3)
            return
        dirs = {e.name for e in entries if is_dir(e)}
        keep: set[str] = set()
        if recursive:  # every sub-folder of this folder is claimed before any is entered, as os.walk does
            # Real folders first, then links, so a link never hides the real folder's name.
            for e in sorted((e for e in entries if e.name in dirs), key=lambda e: (e.is_symlink(), e.name)):
                real = os.path.realpath(e.path)
                if real not in visited:
                    visited.add(real)
                    keep.add(e.name)
        for e in sorted(entries, key=lambda e: e.name):
            if e.name in dirs:
                if e.name in keep:
                    yield from walk(e.path)
            elif os.path.isfile(e.path):
                yield Path(e.path)

    yield from walk(os.fspath(root))


def _scan_folder(root: Path, recursive: bool) -> tuple[list[Path], list[Path]]:
    """Files under ``root`` (see :func:`iter_files`): (images, other files), both sorted by relative path."""
    images: list[Path] = []
    others: list[Path] = []
    for path in iter_files(root, recursive):
        (images if is_image_path(path.name) else others).append(path)
    return images, others


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def list_images(source: PathLike | Iterable[PathLike], recursive: bool = True) -> list[Path]:
    """Image files from a folder, a single file, a glob pattern, a text list file, or a list of those.

    Folders are scanned for files whose suffix is in :data:`IMAGE_EXTENSIONS` (case-insensitive). The
    result is sorted by relative path so it is the same on every machine. Hidden files and folders are
    skipped, folders named like images (``shots.png/``) are not files and are skipped, and symbolic links
    to folders are followed with each real folder visited once (link cycles cannot loop). Duplicates in a
    list of sources are returned once, in first-seen order.

    Args:
        source: A folder, an image file, a glob pattern (``"data/**/*.png"``; ``**`` matches
            sub-folders), a text file listing images (``.txt`` or ``.lst``, one path per line, see
            :func:`read_list`), or a list/tuple of those.
        recursive: Scan sub-folders of folders (glob patterns follow their own ``**``).

    Returns:
        The image paths.

    Raises:
        FileNotFoundError: A path does not exist, or a pattern matches nothing.
        ValueError: A folder or pattern holds no image files, a single file has no image suffix, or ``source``
            is not a regular file (a FIFO, a device).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from blurkit.data.io import list_images
        >>> root = Path(tempfile.mkdtemp())
        >>> for name in ["b.PNG", "a.jpg", "notes.txt", ".hidden.png", "x.png.txt"]:
        ...     _ = (root / name).write_bytes(b"")
        >>> [p.name for p in list_images(root)]
        ['a.jpg', 'b.PNG']
        >>> [p.name for p in list_images(str(root / "*.jpg"))]
        ['a.jpg']
        >>> list_images(root / "missing")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: no such file or folder: .../missing
    """
    if isinstance(source, (list, tuple)):
        seen: set[Path] = set()
        out: list[Path] = []
        if not source:
            raise ValueError("no image sources given (empty list)")
        for item in source:
            for path in list_images(item, recursive=recursive):
                key = path.absolute()
                if key not in seen:
                    seen.add(key)
                    out.append(path)
        return out

    text = os.fspath(source)  # type: ignore[arg-type]
    path = Path(text)
    if path.is_dir():
        images, _ = _scan_folder(path, recursive)
        if not images:
            raise ValueError(
                f"no images found in folder {path} (looked for {', '.join(IMAGE_EXTENSIONS)}"
                f"{', recursively' if recursive else ''})"
            )
        return images
    if path.is_file():
        if is_list_path(path):
            return read_list(path, recursive=recursive)
        if not is_image_path(path):
            raise ValueError(
                f"not an image file name: {path} (expected one of {', '.join(IMAGE_EXTENSIONS)})"
            )
        return [path]
    if _has_magic(text):
        matches = sorted(glob.glob(text, recursive=True))
        if not matches:
            raise FileNotFoundError(f"no files match pattern {text}")
        images = [Path(m) for m in matches if is_image_path(m) and os.path.isfile(m)]
        if not images:
            raise ValueError(f"no image files match pattern {text}")
        return images
    if path.exists():  # a FIFO, a device or a socket (or a link to one): never read as an image
        raise ValueError(f"not a regular file: {path}")
    raise FileNotFoundError(f"no such file or folder: {path}")


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------
_cv_log_lock = threading.Lock()
_cv_log_depth = 0
_cv_log_saved: int | None = None


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines while decoding; we report failures ourselves."""
    global _cv_log_depth, _cv_log_saved
    logging_mod = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_mod is None:  # pragma: no cover - very old OpenCV
        yield
        return
    with _cv_log_lock:
        if _cv_log_depth == 0:
            _cv_log_saved = logging_mod.getLogLevel()
            logging_mod.setLogLevel(logging_mod.LOG_LEVEL_SILENT)
        _cv_log_depth += 1
    try:
        yield
    finally:
        with _cv_log_lock:
            _cv_log_depth -= 1
            if _cv_log_depth == 0 and _cv_log_saved is not None:
                logging_mod.setLogLevel(_cv_log_saved)


class _Header:
    """What Pillow learned from the header (without decoding the pixels)."""

    def __init__(self, image: Any) -> None:
        self.pil = image
        self.size: tuple[int, int] = image.size
        self.mode: str = image.mode
        self.format: str | None = image.format
        # Both decoders turn a TIFF upright themselves (its orientation is a TIFF tag, not EXIF data):
        # applying the tag again would turn it twice.
        tiff = image.format == "TIFF"
        tag = _exif_orientation(image)
        self.orientation: int = 1 if tiff else tag
        # ... except OpenCV's 8-bit tiled TIFF reader, which gets the mirroring orientations wrong; Pillow
        # gets them right at 8 bits (16-bit and float TIFFs go through another OpenCV reader, which is right).
        self.needs_pil: bool = tiff and tag != 1 and _is_tiled_8_bit(image)


def _exif_orientation(image: Any) -> int:
    """The EXIF orientation (1-8) of an image opened by Pillow; 1 when there is none or it is broken.

    Only EXIF counts: ``getexif()`` falls back on an XMP ``tiff:Orientation``, which browsers and OpenCV
    ignore, so a photo with only that was read turned a quarter from how every viewer shows it (and its
    output, written upright without the XMP, showed turned). Read from the raw EXIF block instead; for PNG
    that also avoids ``getexif()`` decoding the whole image when the eXIf chunk follows the pixel data.
    """
    try:
        exif: Any
        if image.format == "TIFF":  # the orientation is a tag of the image's own IFD
            exif = {0x0112: image.tag_v2.get(0x0112, 1)}
        else:
            raw = image.info.get("exif")
            if not raw:
                return 1
            from PIL import Image

            exif = Image.Exif()
            exif.load(raw)
        value = int(exif.get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a readable image unreadable
        return 1
    return value if 1 <= value <= 8 else 1


def _is_tiled_8_bit(image: Any) -> bool:
    """Whether a TIFF (opened by Pillow) stores tiles of at most 8 bits per sample."""
    try:
        tags = image.tag_v2
        bits = tags.get(258, (1,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return 322 in tags and max(int(b) for b in bits) <= 8
    except Exception:  # noqa: BLE001 - a damaged tag: leave the file to OpenCV, as before
        return False


_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


@functools.cache
def _register_heif() -> bool:
    """Register ``pillow-heif``'s Pillow plugin once, when it is installed; whether it is. (Two threads
    may both register it the first time: registering again replaces the plugin by itself.)"""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


def _open_pil(data: bytes | IO[bytes]) -> Any:
    """``PIL.Image.open`` of ``data`` (bytes, or a binary file open for reading) without Pillow's
    decompression-bomb check, so without its warning.

    :func:`_read_header` applies ``max_pixels`` itself. Pillow warns above half its own limit, and
    silencing that with ``warnings.catch_warnings`` is not an option: it swaps the process-wide warnings
    filters, so in reader threads it drops other threads' warnings, and two readers leaving their blocks
    in the wrong order leave "ignore everything" installed for good. The format plugins are tried as
    ``Image.open`` tries them: those already registered, then the rest once they are loaded.

    Raises:
        PIL.UnidentifiedImageError: No plugin recognises the data; other errors as ``Image.open``.
    """
    from PIL import Image, UnidentifiedImageError

    _register_heif()
    fp = io.BytesIO(data) if isinstance(data, bytes) else data
    prefix = fp.read(16)
    tried: set[str] = set()
    for load in (Image.preinit, Image.init):
        load()
        for fmt in list(Image.ID):
            if fmt in tried:
                continue
            tried.add(fmt)
            factory, accept = Image.OPEN[fmt]
            try:
                known = not accept or accept(prefix)
            except (struct.error, IndexError, ValueError, TypeError):  # some unpack more bytes than a tiny file has
                continue
            if not known or isinstance(known, str):  # a string is Pillow's "known, but not supported"
                continue
            fp.seek(0)
            try:
                return factory(fp, "")
            except (SyntaxError, IndexError, TypeError, struct.error):
                continue
    raise UnidentifiedImageError("cannot identify image file")


def _read_header(data: bytes, name: str, max_pixels: int | None) -> _Header | None:
    """Open the header with Pillow and enforce ``max_pixels``; None when Pillow cannot parse it.

    Nothing here touches the warnings filters (see :func:`_open_pil`): reader threads call it. Pillow's
    own warnings about a damaged file (say ``Corrupt EXIF data`` for a truncated TIFF) go through the
    filters like any other warning.
    """
    return _checked_header(data, name, max_pixels)[0]


def _checked_header(data: bytes, name: str, max_pixels: int | None) -> tuple[_Header | None, bool]:
    """:func:`_read_header`, and whether Pillow found the image's size (so ``max_pixels`` was applied)."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        return None, False
    try:
        header = _Header(_open_pil(data))
    except Image.DecompressionBombError as exc:  # some plugins check sizes while opening
        found = _BOMB_PIXELS.search(str(exc))
        pixels = int(found.group(1)) if found else None
        if max_pixels is not None and (pixels is None or pixels > max_pixels):
            raise ImageReadError(name, _too_big(None, pixels, max_pixels)) from None
        return None, pixels is not None  # the caller allowed it: let OpenCV decode it
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Warning):
        # (a Warning: Pillow's complaint about the file, made an error by the warnings filters)
        return None, False
    width, height = header.size
    pixels = max(1, width) * max(1, height)
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and pixels > 2 * limit:  # Pillow would refuse it: never decode it with Pillow
        if max_pixels is not None and pixels > max_pixels:
            raise ImageReadError(name, _too_big(None, pixels, max_pixels))
        return None, True  # the caller allowed it: let OpenCV decode it
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(name, _too_big(header.size, width * height, max_pixels))
    return header, True


def _container_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` read from the file's own header, for the formats OpenCV decodes that Pillow may not
    open (a PNG with a text chunk Pillow refuses, a float or 32-bit RGB TIFF): PNG, TIFF and BigTIFF (the
    first page, the one OpenCV decodes), JPEG, BMP, WebP, PAM, PFM and Radiance HDR. None when the format is
    none of those, or its header is cut short, damaged, or open to two readings (a size tag given twice, a
    header line OpenCV would read differently): with ``max_pixels`` such a file is refused, never decoded.
    It never raises on hostile data."""
    try:
        if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
            width, height = struct.unpack_from(">II", data, 16)
            return width, height
        if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff_size(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM":
            if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2's header: unsigned 16-bit sizes
                return struct.unpack_from("<HH", data, 18)
            width, height = struct.unpack_from("<ii", data, 18)
            return abs(width), abs(height)  # a negative height: stored top row first
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"P7\n"):
            return _pam_size(data)
        if data.startswith((b"PF\n", b"Pf\n")):
            return _pfm_size(data)
        if data.startswith((b"#?RADIANCE", b"#?RGBE")):
            return _hdr_size(data)
    except (struct.error, OverflowError, ValueError, IndexError):  # cut short, or numbers no file holds
        return None
    return None


_HEADER_SPAN = 65536
"""How far into a PAM or Radiance HDR file its header is looked for (a longer header: size unknown)."""

_PAM_FIELD = re.compile(rb"(WIDTH|HEIGHT)[ \t]+(\d{1,10})[ \t\r]*")


def _pam_size(data: bytes) -> tuple[int, int] | None:
    """The ``WIDTH`` and ``HEIGHT`` of a PAM header (``P7``, lines up to ``ENDHDR``). Each must be given once,
    as ``NAME digits`` on its own line; a field given twice, a line OpenCV may split or read otherwise (over
    200 bytes, a NUL), or a number over 10 digits: None."""
    sizes: dict[bytes, int] = {}
    for line in data[3:_HEADER_SPAN].split(b"\n"):
        if line == b"ENDHDR" or line == b"ENDHDR\r":
            return (sizes[b"WIDTH"], sizes[b"HEIGHT"]) if len(sizes) == 2 else None
        if len(line) > 200 or b"\0" in line:
            return None
        words = line.split()
        if not words or words[0].startswith(b"#"):
            continue
        if words[0].upper() == b"ENDHDR":  # an end marker OpenCV might read, written otherwise
            return None
        if words[0].upper().startswith((b"WIDTH", b"HEIGHT")):
            found = _PAM_FIELD.fullmatch(line)
            if found is None or found.group(1) in sizes:
                return None
            sizes[found.group(1)] = int(found.group(2))
    return None  # no ENDHDR


_PFM_SIZE = re.compile(rb"P[Ff]\n(\d{1,10})\s(\d{1,10})\s")


def _pfm_size(data: bytes) -> tuple[int, int] | None:
    """The size of a PFM file (``PF`` colour, ``Pf`` grey): ``width height`` after the first line, each
    number ended by one white-space character, as OpenCV reads them; anything else (two spaces, a sign,
    over 10 digits): None."""
    found = _PFM_SIZE.match(data)
    return (int(found.group(1)), int(found.group(2))) if found else None


_HDR_SIZE = re.compile(rb"-Y\s*\+?(\d{1,10})(?!\d)\s*\+X\s*\+?(\d{1,10})(?!\d)")


def _hdr_size(data: bytes) -> tuple[int, int] | None:
    """The size of a Radiance HDR file, read as OpenCV's ``RGBE_ReadHeader`` reads it: header lines (read with
    a 128-byte ``fgets``) up to the first blank one, then ``-Y height +X width`` on the next line (the only
    orientation OpenCV reads; ``sscanf`` takes any white space). Nothing further into the file is looked at.
    A header line of 127 bytes or more (which that ``fgets`` splits, making a blank line of its end), a NUL in
    a line, or no size on that very line: None."""
    at = 0
    while True:
        end = data.find(b"\n", at, at + 127)  # a line of at most 126 bytes and its newline
        if end < 0 or at > _HEADER_SPAN or b"\0" in data[at:end]:
            return None
        line, at = data[at:end], end + 1
        if not line:  # the blank line: the size is on the next one
            break
    end = data.find(b"\n", at, at + 127)
    found = _HDR_SIZE.match(data, at, end) if end >= 0 and b"\0" not in data[at:end] else None
    return (int(found.group(2)), int(found.group(1))) if found else None


_TIFF_INTEGERS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q", 17: "q", 18: "Q"}
"""The TIFF field types libtiff reads an ``ImageWidth`` or ``ImageLength`` from (BYTE, SHORT, LONG, their
signed kinds, IFD, LONG8, SLONG8, IFD8), as ``struct`` formats."""


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """The ``ImageWidth`` and ``ImageLength`` tags of a TIFF's first page, read as libtiff reads them: a value
    held in the entry when it fits (4 bytes, 8 in a BigTIFF), else at the offset the entry holds. None when
    the directory is cut short, either tag is missing or given twice, or an entry is not one integer of a
    type libtiff takes (so libtiff could read a size other than this one)."""
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack_from(order + "H", data, 2)[0] == 43
    if big:
        offset = struct.unpack_from(order + "Q", data, 8)[0]
        if offset >= len(data):
            return None
        count = struct.unpack_from(order + "Q", data, offset)[0]
        first, step, value_at, room, pointer = offset + 8, 20, 12, 8, "Q"
    else:
        offset = struct.unpack_from(order + "I", data, 4)[0]
        if offset >= len(data):
            return None
        count = struct.unpack_from(order + "H", data, offset)[0]
        first, step, value_at, room, pointer = offset + 2, 12, 8, 4, "I"
    if first + count * step > len(data):  # a directory cut short: libtiff refuses it, or reads what is there
        return None
    sizes: dict[int, int] = {}
    for at in range(first, first + count * step, step):
        tag, kind = struct.unpack_from(order + "HH", data, at)
        if tag not in (256, 257):
            continue
        if tag in sizes or kind not in _TIFF_INTEGERS:  # twice, or a type blurkit does not read
            return None
        values = struct.unpack_from(order + pointer, data, at + 4)[0]
        if values != 1:
            return None
        fmt = order + _TIFF_INTEGERS[kind]
        where = at + value_at
        if struct.calcsize(fmt) > room:  # not in the entry: at the offset it holds
            where = struct.unpack_from(order + pointer, data, where)[0]
            if where >= len(data):
                return None
        value = struct.unpack_from(fmt, data, where)[0]
        if value <= 0:
            return None
        sizes[tag] = value
    return (sizes[256], sizes[257]) if len(sizes) == 2 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """The size in a JPEG's start-of-frame segment (walked to as :func:`_is_truncated_jpeg` walks)."""
    at, size = 2, len(data)
    while True:
        at = data.find(b"\xff", at)
        while 0 <= at < size - 1 and data[at + 1] == 0xFF:  # fill bytes
            at += 1
        if at < 0 or at + 4 > size:
            return None
        marker = data[at + 1]
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            at += 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            height, width = struct.unpack_from(">HH", data, at + 5)
            return (width, height) if width and height else None  # 0: a height only a later DNL gives
        if marker in (0xD9, 0xDA):  # the end, or a scan, before any frame
            return None
        at += 2 + struct.unpack_from(">H", data, at + 2)[0]


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """The canvas size of a WebP file (its first chunk: ``VP8X``, ``VP8 `` or ``VP8L``)."""
    kind = data[12:16]
    if kind == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8 ":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        (bits,) = struct.unpack_from("<I", data, 21)
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


_TOO_BIG_ADVICE = "pass a larger max_pixels (or max_pixels=None) to read_image"
"""The advice of a too-big image's reason; callers other than ``read_image`` replace it with their own."""


def _advised(message: str, where: str) -> str:
    """``message`` with a too-big image's advice naming ``where`` (say ``Deblurrer.fit``, whose ``max_pixels``
    the user can raise) instead of ``read_image``, which the user did not call."""
    return message.replace(_TOO_BIG_ADVICE, _TOO_BIG_ADVICE.replace("read_image", where))


def _too_big(size: tuple[int, int] | None, pixels: int | None, limit: int) -> str:
    what = (
        f"{size[0]}x{size[1]} = {pixels:,} pixels" if size else f"{pixels:,} pixels" if pixels else "too big"
    )
    return (
        f"image is {what}, more than max_pixels={limit:,} (decompression-bomb guard); {_TOO_BIG_ADVICE} if you "
        "trust this file"
    )


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn the stored pixels the way EXIF ``orientation`` (1-8) says they are displayed."""
    if orientation == 2:
        image = image[:, ::-1]
    elif orientation == 3:
        image = image[::-1, ::-1]
    elif orientation == 4:
        image = image[::-1]
    elif orientation == 5:
        image = image.swapaxes(0, 1)
    elif orientation == 6:
        image = np.rot90(image, -1)
    elif orientation == 7:
        image = np.rot90(image, 2).swapaxes(0, 1)
    elif orientation == 8:
        image = np.rot90(image, 1)
    return np.ascontiguousarray(image)


def _normalise_dtype(image: np.ndarray, name: str) -> np.ndarray:
    """uint8/uint16 pass; floats become float32 as stored (a warning when they leave [0, 1]; refused when any is
    NaN or infinite); wider integers are clipped to uint16."""
    if image.dtype in (np.uint8, np.uint16):
        return image
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32, copy=False)
        lo, hi = float(image.min()), float(image.max())  # NaN propagates: no boolean copy of the image
        if not (math.isfinite(lo) and math.isfinite(hi)):
            # nothing can be blurred, restored or scored with them: one NaN made a whole training run NaN
            bad = int(np.count_nonzero(~np.isfinite(image)))
            raise ImageReadError(name, f"{bad:,} float sample{'s' * (bad != 1)} NaN or infinite; blurkit needs "
                                       "finite values in [0, 1] (replace them, e.g. with numpy.nan_to_num)")
        if not (0.0 <= lo and hi <= 1.0):
            warnings.warn(
                f"{name}: float samples outside [0, 1] (min {lo:g}, max {hi:g}), kept as stored; blurkit's "
                "models work on [0, 1] images: scale or tone-map the file to [0, 1] first",
                stacklevel=4,
            )
        return image
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, 0, 65535).astype(np.uint16)
    raise ImageReadError(name, f"unsupported sample type {image.dtype}")


def _decode_cv2(data: bytes) -> np.ndarray | None:
    buffer = np.frombuffer(data, dtype=np.uint8)
    with _quiet_opencv():
        try:
            decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
        except cv2.error:
            return None
    if decoded is None:
        return None
    if decoded.ndim == 3:
        if decoded.shape[2] == 1:
            decoded = decoded[:, :, 0]
        elif decoded.shape[2] in (3, 4):
            # BGR(A) to RGB(A): cvtColor writes a new array in one pass, about 20x faster than a reversed view
            # made contiguous later (half the time of reading a JPEG went there); the same values
            rgb = decoded.shape[2] == 3
            try:
                decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB if rgb else cv2.COLOR_BGRA2RGBA)
            except cv2.error:  # a depth cvtColor does not take
                decoded = decoded[:, :, ::-1] if rgb else decoded[:, :, [2, 1, 0, 3]]
    return decoded


def _decode_pil(image: Any) -> np.ndarray:
    """Decode with Pillow to RGB, RGBA, L or 16-bit grayscale (raises Pillow's errors)."""
    mode = image.mode
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if mode.startswith("I;16") and mode not in ("I;16S", "I;16BS"):
        array = np.asarray(image)
        return array.astype(np.uint16)
    if mode in ("I", "F", "I;32", "I;32S", "I;32B", "I;16S", "I;16BS"):
        return np.asarray(image.convert("F") if mode == "F" else image)
    if has_alpha:
        return np.asarray(image.convert("RGBA"))
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunks(fp: IO[bytes]) -> Iterator[tuple[bytes, int]]:
    """The chunks of the PNG file ``fp`` (at its start) before its pixel data (``IDAT``), where the standard
    puts the ones that describe the pixels: ``(type, length)`` with ``fp`` at the chunk's data (the caller
    may read it and its CRC; the next chunk is found by the length). Nothing for other files."""
    if fp.read(8) != _PNG_SIGNATURE:
        return
    while True:
        head = fp.read(8)
        if len(head) < 8 or head[4:] in (b"IDAT", b"IEND"):
            return
        (length,), start = struct.unpack(">I", head[:4]), fp.tell()
        yield head[4:], length
        fp.seek(start + length + 4)  # past the data and the CRC


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    """A PNG chunk: its length, type, data and CRC."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _is_grey_alpha(data: bytes, header: _Header | None) -> bool:
    """Whether the file stores grey + alpha, from its header: the colour type in a PNG's IHDR chunk (4;
    Pillow calls a 16-bit one ``RGBA``; or 0, grey, with a transparent grey level), else Pillow's mode
    (``LA``)."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR":
        return len(data) > 25 and (data[25] == 4 or _png_grey_key(data) is not None)
    return header is not None and header.mode in ("LA", "La")


def _png_grey_key(data: bytes) -> int | None:
    """The transparent grey level of a grey PNG (colour type 0 with a ``tRNS`` chunk), scaled as the decoders
    scale 1, 2 and 4-bit samples to 8 bits; None for other files. (OpenCV ignores such a ``tRNS`` chunk.)"""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33 or data[25] != 0:
        return None
    depth = data[24]
    if depth not in (1, 2, 4, 8, 16):  # a damaged header: the decoders will say so
        return None
    fp = io.BytesIO(data)
    for kind, length in _png_chunks(fp):  # tRNS comes before the pixel data
        if kind == b"tRNS":
            value = fp.read(2)
            if length < 2 or len(value) < 2:
                return None
            (key,) = struct.unpack(">H", value)
            return key * (255 // ((1 << depth) - 1)) if depth < 8 else key
    return None


# In a JPEG's entropy-coded data a 0xFF byte is followed by 0x00 (a literal 0xFF), a restart marker
# (0xD0-0xD7) or more 0xFF fill bytes; anything else is the marker that ends the scan.
_JPEG_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _is_truncated_jpeg(data: bytes) -> bool:
    """A JPEG whose stream ends before its end-of-image marker.

    The marker segments are walked from the start, each scan's coded data skipped up to the marker after
    it, until the end-of-image marker: bytes after it (a Motion Photo's video) are never looked at, and a
    stray ``FF D9`` in an EXIF thumbnail or inside a segment does not count.
    """
    if not data.startswith(b"\xff\xd8"):
        return False
    at = 2
    size = len(data)
    while True:
        at = data.find(b"\xff", at)  # as libjpeg does, skip stray bytes before a marker
        while 0 <= at < size - 1 and data[at + 1] == 0xFF:  # fill bytes
            at += 1
        if at < 0 or at + 1 >= size:
            return True
        marker = data[at + 1]
        if marker == 0xD9:
            return False
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length (0x00: a stray byte pair
            at += 2  # between segments, which libjpeg skips as "extraneous bytes" and decodes the file)
            continue
        if at + 4 > size:
            return True
        at += 2 + struct.unpack_from(">H", data, at + 2)[0]  # the length counts itself, not the marker
        if marker == 0xDA:  # start of scan: its coded data runs to the next marker
            found = _JPEG_SCAN_END.search(data, at)
            if found is None:
                return True
            at = found.start()


def read_image(
    path: PathLike,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    alpha: Literal["drop", "keep"] = "drop",
) -> np.ndarray:
    """Read an image file into an RGB(A) or grayscale array, safely.

    The file is read as bytes (so non-ASCII and space-containing names work on every platform) and its
    header is checked against ``max_pixels`` before any pixel is decoded. Decoding uses OpenCV (Pillow
    for CMYK and other modes OpenCV gets wrong, and as a fallback). The orientation tag (EXIF, or a
    TIFF's own tag) is applied once, so the array is upright as a photo viewer shows it.

    Args:
        path: The image file (any format OpenCV or Pillow reads whose size blurkit can read from its header
            when ``max_pixels`` is set; the suffix is not checked).
        max_pixels: Refuse images with more than this many pixels (width x height), checked from the
            header before decoding (Pillow's reading of it, or blurkit's own of a PNG, TIFF, JPEG, BMP,
            WebP, PAM, PFM or Radiance HDR header Pillow cannot read; a file whose size no header gives, or
            gives ambiguously, is refused), and files larger than ``32 * max_pixels`` bytes plus 64 MiB (an
            uncompressed float64 RGBA image of that size, and metadata; a multi-page TIFF counts all its
            pages, though only the first is read), checked before the file is read. ``None`` disables both
            checks (OpenCV keeps its own limit, the ``OPENCV_IO_MAX_IMAGE_PIXELS`` environment variable,
            2**30 by default, read once when OpenCV is loaded).
        alpha: What to do with a transparency channel: ``"drop"`` (default) returns RGB (or grayscale
            for grey + alpha), ``"keep"`` returns ``(H, W, 4)`` RGBA, or ``(H, W, 2)`` grey + alpha for a
            grey + alpha file (PNG colour type 4, Pillow mode ``LA``: told from the header; also a grey
            PNG with a transparent grey level, its alpha 0 there and opaque elsewhere). Images without
            alpha are the same either way. Palette images become RGB (RGBA with ``"keep"`` when they have
            transparency).

    Returns:
        ``(H, W, 3)`` RGB, ``(H, W)`` grayscale, ``(H, W, 4)`` RGBA or ``(H, W, 2)`` grey + alpha;
        ``uint8`` for 8-bit files, ``uint16`` for 16-bit ones and ``float32`` for float TIFFs (values as
        stored; a warning naming the file when they leave ``[0, 1]``, the range blurkit's models work
        in). 32-bit integer TIFFs become ``uint16`` (clipped). CMYK becomes RGB.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IsADirectoryError: ``path`` is a folder.
        ImageReadError: The file is not a regular file (a FIFO or a device: refused, not waited on; one
            this process has open, such as ``/dev/stdin``, is read), is empty, too large for ``max_pixels``,
            not an image (or in an unsupported format), truncated or corrupt, larger than ``max_pixels``,
            or a float image with NaN or infinite samples; the message names the file (``path`` as given)
            and the reason, and so do its ``path`` and ``reason``.
        MemoryError: Out of memory reading or decoding it (the message names the file).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from blurkit.data.io import read_image, write_image
        >>> folder = Path(tempfile.mkdtemp())
        >>> write_image(folder / "été 1.png", np.full((2, 3, 4), 200, np.uint8))
        >>> read_image(folder / "été 1.png").shape, read_image(folder / "été 1.png", alpha="keep").shape
        ((2, 3, 3), (2, 3, 4))
        >>> _ = (folder / "notes.jpg").write_text("hello")
        >>> read_image(folder / "notes.jpg")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        blurkit.data.io.ImageReadError: .../notes.jpg: not an image, or a format blurkit cannot read ...
    """
    _check_decode_args(alpha, max_pixels)
    name = os.fspath(path)  # errors and warnings name the file as given, as FileNotFoundError does
    try:
        return decode_image(_read_file(name, max_pixels), name=name, max_pixels=max_pixels, alpha=alpha)
    except MemoryError:
        raise MemoryError(f"out of memory reading {name}") from None


def _max_file_bytes(max_pixels: int) -> int:
    """The largest image file :func:`read_image` reads with ``max_pixels``: 32 bytes a pixel (an uncompressed
    float64 RGBA image of ``max_pixels`` pixels, the widest samples OpenCV reads) and 64 MiB for metadata (a
    Motion Photo's video, say). A multi-page TIFF counts whole, though only its first page is read.

    Examples:
        >>> from blurkit.data.io import DEFAULT_MAX_PIXELS
        >>> round(_max_file_bytes(DEFAULT_MAX_PIXELS) / 2**30, 2)  # GiB
        5.4
    """
    return 32 * max_pixels + 64 * 2**20


def _too_large_file(size: str, limit: int, max_pixels: int) -> str:
    """The reason for a file over :func:`_max_file_bytes`: a file-size limit, what it allows, and what to do."""
    return (f"file is {size} bytes, larger than blurkit reads with max_pixels={max_pixels:,} ({limit:,} bytes: "
            "32 bytes a pixel, an uncompressed float64 RGBA image, and 64 MiB of metadata; a multi-page TIFF "
            f"counts all its pages); {_TOO_BIG_ADVICE} if you trust this file")


def _read_file(name: str, max_pixels: int | None) -> bytes:
    """The bytes of the file ``name``, checked before they are read: a regular file (a FIFO or a device is
    refused, not waited on or read without end; one this process has open, ``/dev/stdin`` say, is read) of
    at most :func:`_max_file_bytes` (with ``max_pixels``)."""
    info = os.stat(name)  # FileNotFoundError names the file
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(f"{name} is a folder, not an image file")
    limit = None if max_pixels is None else _max_file_bytes(max_pixels)
    fd = None if stat.S_ISREG(info.st_mode) else open_descriptor(name)
    if not stat.S_ISREG(info.st_mode) and fd is None:
        raise ImageReadError(name, "not a regular file (a FIFO, a device or a socket): not read")
    if limit is not None and max_pixels is not None and stat.S_ISREG(info.st_mode) and info.st_size > limit:
        raise ImageReadError(name, _too_large_file(f"{info.st_size:,}", limit, max_pixels))
    # O_NONBLOCK: a FIFO put in its place since the stat is not waited on (reading it fails or gives nothing)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | (getattr(os, "O_NONBLOCK", 0) if fd is None else 0)
    with open(os.dup(fd) if fd is not None else os.open(name, flags), "rb") as fh:
        info = os.fstat(fh.fileno())
        if fd is None and not stat.S_ISREG(info.st_mode):
            raise ImageReadError(name, "not a regular file (a FIFO, a device or a socket): not read")
        data = _read_upto(fh, None if limit is None else limit + 1, info.st_size)
    if limit is not None and max_pixels is not None and len(data) > limit:
        raise ImageReadError(name, _too_large_file(f"more than {limit:,}", limit, max_pixels))
    return data


def _read_upto(fh: IO[bytes], cap: int | None, size: int) -> bytes:
    """The bytes of ``fh`` up to ``cap`` (all of them with None): one read of ``size`` (what the file holds)
    and one more byte, then 1 MiB at a time if there is more (a file that grew, a pipe). A read of ``cap``
    bytes at once would take that much memory first, whatever the file holds."""
    data = fh.read(size + 1 if cap is None else min(size + 1, cap))
    if len(data) <= size or (cap is not None and len(data) >= cap):  # the end, or the cap
        return data
    parts, total = [data], len(data)
    while cap is None or total < cap:
        chunk = fh.read(2**20 if cap is None else min(2**20, cap - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return b"".join(parts)


def _check_decode_args(alpha: str, max_pixels: int | None) -> None:
    """The argument checks of :func:`read_image` and :func:`decode_image` (before any file is touched)."""
    if alpha not in ("drop", "keep"):
        raise ValueError(f"alpha must be 'drop' or 'keep', got {alpha!r}")
    _limits.check_max_pixels(max_pixels)


def decode_image(
    data: bytes,
    *,
    name: str = "<bytes>",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    alpha: Literal["drop", "keep"] = "drop",
) -> np.ndarray:
    """Decode the bytes of an encoded image file, exactly as :func:`read_image` decodes a file.

    This is :func:`read_image` without the file: the same header check against ``max_pixels``, EXIF
    orientation, 16-bit and alpha handling. Training reads TFRecord shards of encoded files through it
    (see :mod:`blurkit.data.shards`).

    Args:
        data: The encoded file (PNG, JPEG, TIFF, ... as stored on disk).
        name: What error messages call the image (a file name).
        max_pixels: As for :func:`read_image`.
        alpha: As for :func:`read_image`.

    Returns:
        The same array :func:`read_image` returns for a file holding ``data``.

    Raises:
        ImageReadError: Empty, not an image, truncated or corrupt, or larger than ``max_pixels``.

    Examples:
        >>> import cv2
        >>> import numpy as np
        >>> from blurkit.data.io import decode_image
        >>> ok, png = cv2.imencode(".png", np.zeros((2, 3), np.uint16))
        >>> decode_image(png.tobytes()).dtype, decode_image(png.tobytes()).shape
        (dtype('uint16'), (2, 3))
        >>> decode_image(b"hello", name="notes.png")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        blurkit.data.io.ImageReadError: notes.png: not an image, or a format blurkit cannot read ...
    """
    _check_decode_args(alpha, max_pixels)
    data = bytes(data) if not isinstance(data, bytes) else data
    if not data:
        raise ImageReadError(name, "empty file (0 bytes)")

    header, sized = _checked_header(data, name, max_pixels)
    if not sized and max_pixels is not None:  # Pillow could not say: the size from the container, else refused
        size = _container_size(data)
        if size is None:
            raise _unreadable(name)
        if size[0] * size[1] > max_pixels:
            raise ImageReadError(name, _too_big(size, size[0] * size[1], max_pixels))
    image: np.ndarray | None = None
    if header is not None and (header.mode in _PIL_DECODED_MODES or header.needs_pil):
        try:
            image = _decode_pil(header.pil)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageReadError(name, f"truncated or corrupt image ({exc})") from None
    else:
        if _is_truncated_jpeg(data):
            raise ImageReadError(name, "truncated or corrupt JPEG (no end-of-image marker)")
        image = _decode_cv2(data)
        if image is None and header is not None:
            # OpenCV failed on something Pillow recognised: let Pillow try, it says what is wrong.
            try:
                image = _decode_pil(header.pil)
            except (OSError, ValueError, SyntaxError, EOFError) as exc:
                raise ImageReadError(
                    name, f"truncated or corrupt {header.format or 'image'} ({exc})"
                ) from None
    if image is None:
        raise _unreadable(name)
    if max_pixels is not None and image.shape[0] * image.shape[1] > max_pixels:  # header-less fallback
        raise ImageReadError(
            name, _too_big((image.shape[1], image.shape[0]), image.shape[0] * image.shape[1], max_pixels)
        )

    image = _normalise_dtype(image, name)
    key = _png_grey_key(data) if image.ndim == 2 and alpha == "keep" else None
    if key is not None:  # grey with a transparent level: grey + alpha, as palette and RGB files get alpha
        opaque = np.iinfo(image.dtype).max if image.dtype.kind == "u" else 1
        image = np.dstack([image, np.where(image == key, 0, opaque).astype(image.dtype)])
    if image.ndim == 3 and image.shape[2] == 4 and _is_grey_alpha(data, header):
        image = image[:, :, [0, 3]]  # OpenCV expands grey + alpha to BGRA (three equal colour channels)
    if image.ndim == 3 and alpha == "drop":
        if image.shape[2] == 2:
            image = image[:, :, 0]
        elif image.shape[2] == 4:
            image = image[:, :, :3]
    if header is not None and header.orientation != 1:
        image = _apply_orientation(image, header.orientation)
    _warn_if_several_frames(header, name)
    return np.ascontiguousarray(image)


def _unreadable(name: str) -> ImageReadError:
    """The error for data no decoder reads (or, with ``max_pixels``, whose size no header gives)."""
    if Path(name).suffix.lower() in _HEIF_SUFFIXES and not _register_heif():
        return ImageReadError(name, 'reading HEIC/HEIF photos needs pillow-heif: pip install "blurkit[heif]"')
    return ImageReadError(
        name, "not an image, or a format blurkit cannot read (supported: "
        f"{', '.join(IMAGE_EXTENSIONS)}), or corrupt"
    )


# Formats whose extra frames are pages or an animation. (A camera JPEG often carries a preview as a second
# MPO frame: nothing to warn about.)
_MULTI_FRAME_FORMATS = ("TIFF", "GIF", "WEBP", "PNG")


def _warn_if_several_frames(header: _Header | None, name: str) -> None:
    """Warn that only the first frame is read when the file holds more (counted from the headers:
    Pillow walks a TIFF's page list or a GIF's blocks, and reads an animated WebP's or PNG's frame count,
    decoding no frame)."""
    if header is None or header.format not in _MULTI_FRAME_FORMATS:
        return
    try:
        frames = int(getattr(header.pil, "n_frames", 1))
    except Exception:  # noqa: BLE001 - a damaged later frame must not stop the first one being read
        return
    if frames > 1:
        warnings.warn(f"{name}: has {frames} frames; blurkit restores the first only", stacklevel=4)


# --------------------------------------------------------------------------------------------------
# Atomic writing
# --------------------------------------------------------------------------------------------------
_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask now (a process may tighten it after importing blurkit: a service, a script's
    ``os.umask(0o077)``), read at each write. On Linux from the ``Umask:`` line of ``/proc/self/status``
    (reading it changes nothing, so other threads are unaffected); elsewhere (macOS, BSD, Windows, a Linux
    before 4.7) set and put back at once, under a lock (a thread outside blurkit creating a file in between
    would get 022). A guess of 022 made outputs world-readable for a user whose umask is 077."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def set_file_mode(path: PathLike, like: PathLike | None = None) -> None:
    """Give ``path``, a temporary file made by :func:`tempfile.mkstemp` (0600) that is about to replace
    ``like``, the permissions a plain ``open(like, "w")`` would leave: where ``like`` is a regular file
    already (not a link: links are replaced, see :func:`atomic_open`), its mode bits (less set-user-ID and
    set-group-ID) and, where allowed, its group, and when the writer is root its owner too; else ``0666``
    less the umask at this moment. A file of another user that a non-root writer replaces (its folder is
    writable) becomes the writer's, and gets the umask's mode, not its old one: a private 0600 would lock its
    owner out. Where the file system cannot store them (a FAT or exFAT drive on Linux refuses the change) the
    file is left as it is; a group the writer is not in is left out (only root may give a file away)."""
    info = None
    if like is not None:
        try:
            info = os.lstat(like)  # a link is replaced, not followed
        except (OSError, ValueError):
            info = None
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    mine = info is not None and (not hasattr(os, "geteuid") or root or info.st_uid == os.geteuid())
    if info is not None and stat.S_ISREG(info.st_mode) and mine:
        mode = stat.S_IMODE(info.st_mode) & ~(stat.S_ISUID | stat.S_ISGID)
        if hasattr(os, "chown"):  # not on Windows
            with contextlib.suppress(OSError):
                now = os.stat(path)
                if root and (now.st_uid, now.st_gid) != (info.st_uid, info.st_gid):
                    os.chown(path, info.st_uid, info.st_gid)  # as open() as root leaves a user's file: theirs
                elif now.st_gid != info.st_gid:
                    os.chown(path, -1, info.st_gid)
    else:
        mode = 0o666 & ~_umask()
    try:
        os.chmod(path, mode)
    except OSError:
        pass


def replace_file(tmp: PathLike, target: PathLike) -> None:
    """Rename ``tmp`` (a finished temporary file in ``target``'s folder) over ``target`` with the permissions
    a plain ``open(target, "w")`` would have left (:func:`set_file_mode`): every atomic write of blurkit
    ends here. A ``target`` that is a symbolic link is replaced by the file, never written through. If the
    rename fails, ``tmp`` is made writable again, so that the caller can delete it (Windows refuses to delete
    a read-only file: a read-only target's mode made it one)."""
    set_file_mode(tmp, target)
    try:
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IREAD | stat.S_IWRITE)
        raise


#: A hidden temporary file of a killed atomic write (``.NAME.XXXXXXXX.tmp``) older than this many seconds
#: is deleted by the next atomic write of the same ``NAME``; a younger one may belong to a write still
#: running in another process.
STALE_TEMP_SECONDS = 600


_TEMP_SCANS: dict[tuple[str, str], tuple[float, dict[str, list[str]]]] = {}
_TEMP_SCANS_LOCK = threading.Lock()


def folded(path: Any) -> str:
    """``path`` as a file system that ignores letter case names it (APFS and NTFS by default): each
    character case-folded where that gives one character (σ and ς, ſ and s alike), else lowered (so ``ß``
    stays apart from ``ss``, as those file systems keep it), in Unicode's composed form (APFS also ignores
    the form; NTFS does not, so two names apart only in form are taken as one there: a clash refused rather
    than a file lost)."""
    import unicodedata

    text = unicodedata.normalize("NFC", str(path))
    return "".join(f if len(f := c.casefold()) == 1 else c.lower() for c in text)


def case_blind(folder: PathLike) -> bool:
    """Whether the file system of ``folder`` (or of its nearest existing parent) ignores letter case, as
    macOS' and Windows' do by default: a probe file is made and looked for under another case."""
    here = Path(folder).resolve()
    while not here.is_dir() and here != here.parent:
        here = here.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=".blurkit-case-", dir=here)
    except OSError:
        return False
    os.close(fd)
    try:
        name = Path(probe).name
        return os.path.exists(os.path.join(here, name.upper()))
    finally:
        os.unlink(probe)


def temp_stem(name: str) -> str:
    """The part of a temporary file's name (``.STEM.XXXXXXXX.tmp``) that stands for the file ``name`` it will
    become: ``name`` itself, or for a name of more than 100 bytes its first 60 bytes and a hash of the whole,
    so that the temporary name fits where ``name`` fits (file names stop at 255 bytes, Windows paths at 260
    characters; a long valid name failed with "File name too long" after the work).

    Examples:
        >>> temp_stem("a.png")
        'a.png'
        >>> long = "x" * 240 + ".png"
        >>> len(temp_stem(long)), temp_stem(long) == temp_stem(long), temp_stem(long)[:3]
        (73, True, 'xxx')
    """
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate, as in an invalid UTF-16 name from Windows
        raw = name.encode("utf-8", "surrogatepass")
    if len(raw) <= 100:
        return name
    import hashlib

    head = raw[:60].decode("utf-8", "ignore")  # whole, valid characters only (the hash tells names apart)
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:12]}"


def temp_prefix(name: str) -> str:
    """The start of the temporary file's (or folder's) name that an atomic write of ``name`` makes first,
    ``.STEM.`` (:func:`temp_stem`), for :func:`tempfile.mkstemp`; :func:`temp_pattern` finds them.

    Examples:
        >>> temp_prefix("a.png")
        '.a.png.'
    """
    return f".{temp_stem(name)}."


def temp_pattern(suffix: str) -> re.Pattern:
    """The names of the temporary files an atomic write of ``NAME`` makes first, ``.NAME.XXXXXXXX`` +
    ``suffix`` (``tempfile.mkstemp``'s eight characters); group 1 is ``NAME``.

    Examples:
        >>> temp_pattern(".tmp").fullmatch(".a.png.k3j_9x0q.tmp").group(1)
        'a.png'
    """
    return re.compile(rf"\.(.+)\.[a-z0-9_]{{8}}{re.escape(suffix)}")


def _remove_stale_temps(path: Path, suffix: str, max_age: float = STALE_TEMP_SECONDS) -> int:
    """Delete ``.NAME.XXXXXXXX<suffix>`` files beside ``path`` older than ``max_age`` seconds.

    Those are what :func:`tempfile.mkstemp` (8 random characters) made for ``path`` in a process that was
    killed before it could rename or delete them. Returns how many were deleted.

    A folder is listed once per process (again after ``max_age`` seconds), not once per write: writing
    tens of thousands of files into one folder would otherwise list it that many times. What a killed
    write of *this* process could leave is not an issue (writes clean up after themselves unless the
    process dies), and the next process lists the folder afresh.
    """
    import time

    now = time.time()
    key = (str(path.parent), suffix)
    with _TEMP_SCANS_LOCK:
        scan = _TEMP_SCANS.get(key)
        if scan is None or now - scan[0] > max_age:
            pattern = temp_pattern(suffix)
            try:
                names = os.listdir(path.parent)
            except OSError:
                return 0
            found: dict[str, list[str]] = {}
            for name in names:
                m = pattern.fullmatch(name)
                if m:
                    found.setdefault(m.group(1), []).append(name)
            scan = (now, found)
            _TEMP_SCANS[key] = scan
        candidates = scan[1].pop(temp_stem(path.name), [])
    removed = 0
    for name in candidates:
        tmp = path.parent / name
        try:
            if now - tmp.lstat().st_mtime > max_age:
                tmp.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def blocking_file(path: PathLike) -> Path | None:
    """The file standing where a folder of ``path`` must be (its nearest existing ancestor, when that is not
    a folder), or None.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> root = Path(tempfile.mkdtemp()); _ = (root / "notes").write_text("x")
        >>> blocking_file(root / "notes" / "a" / "b.png") == root / "notes", blocking_file(root / "a" / "b.png")
        (True, None)
    """
    for parent in Path(os.fspath(path)).parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def make_parent(path: PathLike, verb: str = "write") -> None:
    """Create the folder of ``path`` (and its parents); a file in the way is named.

    Raises:
        NotADirectoryError: ``cannot <verb> PATH: FILE is a file, not a folder`` (instead of ``mkdir``'s bare
            ``FileExistsError``/``NotADirectoryError`` naming only the file).
    """
    path = Path(os.fspath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = blocking_file(path) or path.parent
        raise NotADirectoryError(f"cannot {verb} {path}: {blocker} is a file, not a folder") from None


def _about_target(exc: OSError, path: Path) -> OSError:
    """``exc`` (an error writing the hidden temporary file, or one naming no file) made to name ``path``, the
    file the caller asked for, with the same error number and text: ``[Errno 13] Permission denied: PATH``.
    """
    if exc.errno is None or exc.strerror is None:
        return OSError(f"cannot write {path}: {exc}")
    return OSError(exc.errno, exc.strerror, os.fspath(path))  # the errno picks the subclass (PermissionError...)


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: PathLike, mode: Literal["w", "wb"] = "wb", *, encoding: str = "utf-8"
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` only when the ``with`` block succeeds.

    The temporary file is created next to ``path`` (hidden: ``.NAME.XXXXXXXX.tmp``, so :func:`list_images`
    ignores it), flushed and fsynced on success, then renamed over ``path`` with :func:`os.replace`
    (atomic on POSIX and Windows). On any error it is deleted and ``path`` is left as it was. A process
    killed mid-write (``kill -9``, power cut) leaves ``path`` intact and at most that hidden temporary
    file, which the next write of ``path`` deletes once it is older than :data:`STALE_TEMP_SECONDS`.
    Parent folders are created. The result has the permissions a plain ``open(path, "w")`` would leave
    (:func:`set_file_mode`): a file of the writer's that it replaces keeps its mode and group, a new one gets
    ``0666`` less the umask at the time of the write. A ``path`` that is a symbolic link to a file is
    replaced by the new file, and the file it led to is left as it was (unlike ``open``): an output folder
    holding a link to an input photo, or a link another user planted in a shared folder, cannot make blurkit
    write over the file it leads to.

    A ``path`` that is there and is not a file (a device, a pipe or a socket, or a link to one: ``/dev/null``,
    a FIFO) is written directly, and one that names an open file descriptor of this process (``/dev/stdout``,
    ``/proc/self/fd/1``, the ``/dev/fd/N`` of a shell's ``>(...)``, through links) is written through that
    descriptor, where it is (a redirection with ``>>`` appends): renaming a file over either would replace
    the device, the pipe or the link with an ordinary file.

    An :class:`OSError` that names the temporary file, or one raised after the ``with`` block (flushing,
    renaming) that names no file, is raised again naming ``path`` instead, with the same error number and
    text (the original error is its ``__cause__``): ``[Errno 13] Permission denied: 'out/a.png'``.

    Args:
        path: The file to write.
        mode: ``"wb"`` for bytes or ``"w"`` for text.
        encoding: Text encoding for ``mode="w"`` (newlines are written as given, not translated).

    Yields:
        The open temporary file.

    Examples:
        >>> import tempfile, os
        >>> from pathlib import Path
        >>> from blurkit.data.io import atomic_open
        >>> target = Path(tempfile.mkdtemp()) / "log.jsonl"
        >>> with atomic_open(target, "w") as fh:
        ...     _ = fh.write("line 1\\n")
        ...     _ = fh.write("line 2\\n")
        >>> target.read_text(), os.listdir(target.parent)
        ('line 1\\nline 2\\n', ['log.jsonl'])
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(os.fspath(path))
    fd = open_descriptor(path)
    if fd is not None or is_special_file(path):
        in_block = False
        try:
            if fd is not None:
                for stream in (sys.stdout, sys.stderr):  # what was printed before comes first
                    with contextlib.suppress(AttributeError, OSError, ValueError):
                        if stream.fileno() == fd:
                            stream.flush()
            raw = os.dup(fd) if fd is not None else os.open(path, os.O_WRONLY)
            direct: IO[Any] = (os.fdopen(raw, "wb") if mode == "wb"
                               else os.fdopen(raw, "w", encoding=encoding, newline=""))
            with direct:
                in_block = True
                yield direct
                in_block = False
        except OSError as exc:  # opening it, or the write at closing (a full device): named as asked for
            if in_block or exc.filename is not None:
                raise
            raise _about_target(exc, path) from exc
        return
    folder = path.parent
    make_parent(path)
    _remove_stale_temps(path, ".tmp")
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=temp_prefix(path.name), suffix=".tmp")
    except OSError as exc:  # it names the temporary file it tried to create
        raise _about_target(exc, path) from exc
    tmp = Path(tmp_name)
    in_block = False
    try:
        if mode == "wb":
            fh: IO[Any] = os.fdopen(fd, "wb")
        else:
            fh = os.fdopen(fd, "w", encoding=encoding, newline="")
        with fh:
            in_block = True
            yield fh
            in_block = False
            fh.flush()
            os.fsync(fh.fileno())
        replace_file(tmp, path)  # with the permissions open(path, "w") would have left
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and (
            tmp_name in (exc.filename, exc.filename2) or (exc.filename is None and not in_block)
        ):
            raise _about_target(exc, path) from exc
        raise
    _fsync_folder(folder)


#: ``/proc/self/fd/N``, ``/proc/PID/fd/N``, ``/dev/fd/N``: a file descriptor's name.
_FD_NAME = re.compile(r"^/(?:proc/(self|\d+)/fd|dev/fd)/(\d+)$")


def open_descriptor(path: PathLike) -> int | None:
    """The file descriptor of this process that ``path`` names, directly or through links (``/dev/stdout``
    is a link to ``/proc/self/fd/1``; a shell's ``>(...)`` gives ``/dev/fd/63``), or None.

    Examples:
        >>> open_descriptor("/proc/self/fd/1"), open_descriptor("/dev/fd/2"), open_descriptor("out.json")
        (1, 2, None)
    """
    name = os.fspath(path)
    for _ in range(40):  # the kernel's limit on links in a row
        match = _FD_NAME.match(os.path.normpath(name))
        if match:
            pid = match.group(1)
            return int(match.group(2)) if pid in (None, "self") or int(pid) == os.getpid() else None
        try:
            target = os.readlink(name)
        except (OSError, ValueError):  # not a link (or not there)
            return None
        name = os.path.join(os.path.dirname(name), target)
    return None


def is_special_file(path: PathLike) -> bool:
    """Whether ``path`` is there and is neither a regular file nor a folder (a device, a pipe, a socket), or is
    a link to one: what :func:`atomic_open` writes directly instead of replacing.

    Examples:
        >>> import os, tempfile
        >>> is_special_file(os.devnull), is_special_file(tempfile.mkdtemp()), is_special_file("no/such/file")
        (True, False, False)
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); parent folders are created.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from blurkit.data.io import atomic_write_bytes
        >>> target = Path(tempfile.mkdtemp()) / "a" / "b.bin"
        >>> atomic_write_bytes(target, b"\\x00\\x01")
        >>> target.read_bytes()
        b'\\x00\\x01'
    """
    with atomic_open(path, "wb") as fh:
        try:
            fh.write(data)
        except OSError as exc:  # say a full disk: name the file being written
            raise _about_target(exc, Path(os.fspath(path))) from exc


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_open`); newlines are not translated.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from blurkit.data.io import atomic_write_text
        >>> target = Path(tempfile.mkdtemp()) / "card.json"
        >>> atomic_write_text(target, '{"name": "unet"}\\n')
        >>> target.read_text()
        '{"name": "unet"}\\n'
    """
    atomic_write_bytes(path, text.encode(encoding))  # the same bytes as a text file without newline translation


# --------------------------------------------------------------------------------------------------
# Writing images
# --------------------------------------------------------------------------------------------------
def _to_storable(image: np.ndarray, suffix: str, bits: int | None, name: str = "the image") -> np.ndarray:
    """Convert to what the format can store: uint8/uint16 (float32 in TIFF) with 1, 3 or 4 channels, or 2
    (grey + alpha) in PNG. ``name`` (the file's) is named in the errors about values."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)):
        raise ValueError(
            f"expected an image of shape (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4), got {image.shape}"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"cannot write an empty image of shape {image.shape}")
    if bits not in (None, 8, 16):
        raise ValueError(f"bits must be 8, 16 or None, got {bits!r}")
    can16 = suffix in _SIXTEEN_BIT_SUFFIXES
    if bits == 16 and not can16:
        raise ValueError(f"{suffix} files cannot store 16 bits; use .png or .tif")

    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif np.issubdtype(image.dtype, np.floating):
        finite = bool(np.isfinite(image).all())  # one pass over a valid image; which kind only on failure
        if not finite and np.isnan(image).any():
            raise ValueError(f"cannot write {name}: the image contains NaN")
        if bits is None and suffix in (".tif", ".tiff"):  # stored as it is: infinity too, and read back refused
            if not finite:
                raise ValueError(f"cannot write {name}: the image contains infinite values (a float TIFF keeps "
                                 "values as they are, and read_image refuses non-finite ones)")
            image = image.astype(np.float32, copy=False)
        else:
            from blurkit.metrics.functional import FLOAT_HIGH, FLOAT_LOW

            lo, hi = float(image.min()), float(image.max())
            if lo < FLOAT_LOW or hi > FLOAT_HIGH:  # a [0, 255] float image came out white, silently
                raise ValueError(f"cannot write {name}: float samples far outside [0, 1] (min {lo:g}, max {hi:g}); "
                                 "scale them to [0, 1] first (a [0, 255] float image: / 255, or .astype(np.uint8))"
                                 ", or write a .tif, which keeps floats as they are")
            image = from_float(image, np.uint16 if bits == 16 else np.uint8)
    elif image.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"unsupported image dtype {image.dtype}: use uint8, uint16 or floats in [0, 1] "
            "(convert with blurkit.data.io.from_float)"
        )
    if image.dtype == np.uint16 and (bits == 8 or not can16):
        image = from_float(to_float(image), np.uint8)
    elif image.dtype == np.uint8 and bits == 16:
        image = image.astype(np.uint16) * 257
    if image.ndim == 3 and image.shape[2] == 4 and suffix in (".jpg", ".jpeg"):
        image = image[:, :, :3]  # JPEG has no alpha
    elif image.ndim == 3 and image.shape[2] == 2 and suffix != ".png":
        # grey + alpha: JPEG has no alpha; OpenCV writes other formats with 1, 3 or 4 channels only
        image = image[:, :, 0] if suffix in (".jpg", ".jpeg") else image[:, :, [0, 0, 0, 1]]
    return image


def _encode_grey_alpha_png(image: np.ndarray) -> bytes:
    """A PNG file (colour type 4: grey + alpha) of an ``(H, W, 2)`` uint8 or uint16 array.

    OpenCV encodes 1, 3 or 4 channels only, and Pillow writes grey + alpha in 8 bits only, so the few
    chunks are written here: every row with the "Up" filter, zlib level 6.
    """
    height, width = image.shape[:2]
    depth = 16 if image.dtype == np.uint16 else 8
    rows = np.ascontiguousarray(image, ">u2" if depth == 16 else np.uint8).reshape(height, -1).view(np.uint8)
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # "Up": each byte minus the one above it (modulo 256)
    filtered[:, 1:] = rows
    filtered[1:, 1:] -= rows[:-1]

    header = struct.pack(">IIBBBBB", width, height, depth, 4, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def write_image(
    path: PathLike,
    image: np.ndarray,
    *,
    quality: int = 95,
    bits: int | None = None,
    metadata: Any = None,
    lossless: bool | None = None,
) -> None:
    """Write an RGB(A) or grayscale array to an image file, atomically.

    The format comes from the suffix (one of :data:`WRITE_EXTENSIONS`, any case). The image is encoded in
    memory and written with :func:`atomic_write_bytes`, so ``path`` is either the old file or the complete
    new one, never half a file; parent folders are created.

    Args:
        path: Target file.
        image: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` grey + alpha, ``(H, W, 3)`` RGB or ``(H, W, 4)``
            RGBA; ``uint8``, ``uint16`` or floats in ``[0, 1]`` (clipped, then rounded to 8 bits, or to 16
            with ``bits=16``; values below -0.5 or above 1.5, a [0, 255] float image say, are refused). Grey + alpha is written as such in PNG; JPEG drops the alpha (grey), BMP,
            TIFF and WebP get RGBA with three equal colour channels (OpenCV's encoders).
        quality: JPEG / WebP quality, 1-100 (ignored by lossless formats and lossless WebP).
        bits: Force 8 or 16 bits per sample. By default ``uint16`` stays 16-bit in PNG/TIFF and becomes
            8-bit (``round(x / 257)``) in JPEG/BMP/WebP, which cannot store more; floats are written as
            ``float32`` in TIFF (values as they are, not clipped: what :func:`read_image` gives for a float
            TIFF; ``float64``, e.g. scikit-image's results, is rounded to ``float32``, not to 8 bits) and
            become 8-bit in the other formats.
        metadata: A :class:`blurkit.data.metadata.Metadata` (e.g. :func:`~blurkit.data.metadata.read_metadata`
            of the photo this image was made from): its colour profile and EXIF block are embedded in
            JPEG, PNG and WebP files (the profile only when it fits: RGB for colour, grey for grey
            images); other formats are written without them. A lossless WebP's metadata
            (``metadata.lossless``) makes a WebP output lossless (see ``lossless``).
        lossless: WebP only: ``True`` writes a lossless WebP (``quality`` ignored; the colour under fully
            transparent pixels may change, as libwebp does by default), ``False`` a lossy one at
            ``quality``, ``None`` (default) follows ``metadata.lossless`` (lossy without metadata). PNG,
            TIFF and BMP are always lossless; ``True`` is an error for JPEG, which cannot be.

    Raises:
        ValueError: Unknown suffix, bad shape or dtype, NaN values (or infinite ones in a float TIFF, which
            :func:`read_image` would refuse), floats far outside [0, 1] for an integer format, ``bits=16``
            for an 8-bit format, or ``lossless=True`` for JPEG.
            The message names the file.
        OSError: The file could not be written (the target is left untouched).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import numpy as np
        >>> from blurkit.data.io import read_image, write_image
        >>> folder = Path(tempfile.mkdtemp())
        >>> write_image(folder / "ramp.png", np.linspace(0, 1, 12).reshape(3, 4), bits=16)
        >>> read_image(folder / "ramp.png").dtype
        dtype('uint16')
        >>> write_image(folder / "ramp.gif", np.zeros((3, 4)))
        Traceback (most recent call last):
        ...
        ValueError: cannot write ramp.gif: unknown image suffix '.gif' (use one of .jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp)
    """
    path = Path(os.fspath(path))
    suffix = path.suffix.lower()
    if suffix not in WRITE_EXTENSIONS:
        raise ValueError(
            f"cannot write {path.name}: unknown image suffix {path.suffix!r} (use one of {', '.join(WRITE_EXTENSIONS)})"
        )
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    if lossless and suffix in (".jpg", ".jpeg"):
        raise ValueError(f"cannot write {path.name} losslessly: JPEG is lossy (use .png or .webp)")
    if lossless is None:
        lossless = bool(getattr(metadata, "lossless", False))
    array = _to_storable(image, suffix, bits, path.name)
    if array.ndim == 3 and array.shape[2] == 2:  # grey + alpha, PNG only (see _to_storable)
        data = _encode_grey_alpha_png(array)
    else:
        bgr = array
        if array.ndim == 3:
            bgr = array[:, :, [2, 1, 0]] if array.shape[2] == 3 else array[:, :, [2, 1, 0, 3]]
        params: list[int] = []
        if suffix in (".jpg", ".jpeg"):
            params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        elif suffix == ".webp":  # OpenCV writes lossless WebP for a quality above 100
            params = [cv2.IMWRITE_WEBP_QUALITY, 101 if lossless else int(quality)]
        elif suffix in (".tif", ".tiff"):  # lossless: OpenCV before 4.13 wrote colour float32 as SGILOG
            params = [cv2.IMWRITE_TIFF_COMPRESSION, cv2.IMWRITE_TIFF_COMPRESSION_LZW]  # (LogLuv), 1 % off
        ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(bgr), params)
        if not ok:  # pragma: no cover - OpenCV raises rather than returning False in practice
            raise ValueError(f"OpenCV could not encode {path.name} as {suffix}")
        data = encoded.tobytes()
    if metadata:
        from blurkit.data.metadata import embed

        data = embed(data, suffix, metadata, array)
    atomic_write_bytes(path, data)


# --------------------------------------------------------------------------------------------------
# dtype conversions
# --------------------------------------------------------------------------------------------------
def to_float(image: np.ndarray) -> np.ndarray:
    """An image as ``float32`` in ``[0, 1]``: ``uint8 / 255``, ``uint16 / 65535``, floats unchanged.

    Floats are only cast to ``float32`` (their values are not checked or clipped); bools map to 0 and 1.

    Examples:
        >>> import numpy as np
        >>> from blurkit.data.io import to_float
        >>> to_float(np.array([0, 51, 255], np.uint8))
        array([0. , 0.2, 1. ], dtype=float32)
        >>> to_float(np.array([65535], np.uint16))
        array([1.], dtype=float32)
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535.0)
    if image.dtype == np.bool_ or np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32)
    raise ValueError(f"to_float: expected uint8, uint16 or float image, got {image.dtype}")


def from_float(x: np.ndarray, like_dtype: Any = np.uint8) -> np.ndarray:
    """Convert a ``[0, 1]`` float image to ``like_dtype`` (the inverse of :func:`to_float`).

    Integer targets are scaled (``* 255`` for ``uint8``, ``* 65535`` for ``uint16``), rounded to nearest
    and clipped, so out-of-range values saturate; NaN becomes 0. Float targets are a plain cast.

    Args:
        x: Float image (anything array-like).
        like_dtype: Target dtype: ``np.uint8``, ``np.uint16``, a float dtype, or an array whose dtype
            to use.

    Examples:
        >>> import numpy as np
        >>> from blurkit.data.io import from_float
        >>> from_float(np.array([-0.5, 0.2, 0.5, 1.5]), np.uint8)
        array([  0,  51, 128, 255], dtype=uint8)
    """
    dtype = like_dtype.dtype if isinstance(like_dtype, np.ndarray) else np.dtype(like_dtype)
    x = np.asarray(x)
    if dtype == np.uint8 or dtype == np.uint16:
        top = 255.0 if dtype == np.uint8 else 65535.0
        scaled = np.nan_to_num(x.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0) * top
        return np.clip(np.rint(scaled), 0, top).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    raise ValueError(f"from_float: target dtype must be uint8, uint16 or a float type, got {dtype}")

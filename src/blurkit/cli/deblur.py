"""``blurkit deblur``: restore photos with a model file or a shipped preset.

Without a model file the shipped presets are used, so ``blurkit deblur photo.jpg -o sharp.png`` works right
after installing: per photo, ``--preset auto`` (the default) picks ``gaussian-v1-noisy`` when the photo shows
sensor noise or JPEG block artefacts and the default preset ``gaussian-v1`` otherwise
(:func:`blurkit.presets.choose_preset`); the summary says how many photos went to each.

Folders are processed recursively, keeping relative names and formats. Files are
streamed through :func:`blurkit.batch.deblur_files`: folders are listed lazily (the first image starts at
once, the total for the progress bar is counted in the background), ``--io-workers`` threads read and
write files while the model runs, and at most about ``2 * --prefetch + 1`` decoded images are in memory
whatever the number of files. Outputs are written atomically, so an interrupted run (Ctrl-C, or killed)
never leaves a half-written image, and ``--skip-existing`` resumes it. Nothing is written over an input
(see :func:`_plan`). Progress is a bar on a terminal, and in a log file a plain line every 30 s of a longer
run (none with ``--quiet``); the summary line is printed in any case. Unreadable files (empty, truncated,
not images, decompression bombs above ``--max-pixels``) and images that cannot be restored are reported and
skipped, the rest of the batch goes on; the summary lists each failure with its reason. Transparency is
kept (the alpha channel is passed through unchanged, except in JPEG outputs); EXIF orientation is applied,
so outputs are upright.

Exit status: 0 when every image was written (or was already there), 3 when some files failed and the others
were written (or were already there: a ``--skip-existing`` rerun of a batch with one bad file), 1 when every
file failed, 2 for a usage error, 130 when interrupted (Ctrl-C), 143 when terminated (SIGTERM). Photos
left unread because a write found their output's file system full, over quota or read-only count as failed
(outputs elsewhere are still written; ``--skip-existing`` goes on once there is room). So
``blurkit deblur in -o out && upload out`` uploads only a complete batch, and a
script that accepts a partial one tests for 3.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from blurkit.cli._common import add_max_pixels, add_threads
from blurkit.cli._common import file_id as _ident

PARTIAL = 3
"""The exit status when some files failed and the others were restored or already there (the failures are
listed on stderr)."""

FORMATS = ("png", "jpg", "jpeg", "tif", "tiff", "webp", "bmp")
"""What ``--format`` takes (in any case, with or without the dot: ``PNG``, ``.png``)."""


#: Memory of a deblur (resident): TensorFlow and a preset, and per pixel of a tile. Measured on 12- and 24-MP
#: photos with the presets (benchmarks/README.md, "Memory"): 1.9 GB at tile size 1536, 1.3 GB at 768, 1.1 at 512.
BASE_BYTES, TILE_PIXEL_BYTES = 1.0e9, 390


def _available_memory(root: str = "/") -> int | None:
    """The memory this process can still take, in bytes, on Linux: MemAvailable, or less where a container's
    memory limit (cgroup v2 ``memory.max``, v1 ``memory.limit_in_bytes``) leaves less than that (a container
    sees its host's MemAvailable, and is killed at its own limit). None elsewhere, or unknown. ``root``: where
    ``/proc`` and ``/sys`` are (tests)."""
    found = []
    try:
        with open(os.path.join(root, "proc/meminfo"), encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (("sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory.current"),
                         ("sys/fs/cgroup/memory/memory.limit_in_bytes", "sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(os.path.join(root, limit), encoding="ascii") as fh:
                text = fh.read().strip()
            if text == "max" or int(text) >= 2**60:  # no limit (v1 writes a huge number)
                continue
            with open(os.path.join(root, usage), encoding="ascii") as fh:
                found.append(max(0, int(text) - int(fh.read().strip())))
            break
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def memory_note(tile: int | None, fixed: int | None = None, available: int | None = None) -> str | None:
    """A warning when a deblur at tile size ``tile`` needs more memory than is available (``available``, else
    :func:`_available_memory`): the run would be killed by the system, or abort, without a word from blurkit.
    Names the tile size that fits. None when it fits, where the free memory is not known, or for a restorer
    that does not tile (no ``tile``).

    Examples:
        >>> memory_note(1536, available=8 * 10**9) is None
        True
        >>> memory_note(1536, available=int(1.5e9))
        'deblurring at --tile-size 1536 takes about 1.9 GB of memory, and 1.5 GB is available: --tile-size 896 takes about 1.3 GB'
    """
    if tile is None or fixed:  # a fixed-size model's tiles are small
        return None
    available = _available_memory() if available is None else available
    if available is None:
        return None
    need = BASE_BYTES + TILE_PIXEL_BYTES * tile * tile
    if need <= available:
        return None
    fits = int(((0.9 * available - BASE_BYTES) / TILE_PIXEL_BYTES) ** 0.5 // 128 * 128) if available > BASE_BYTES \
        else 0
    advice = (f"--tile-size {fits} takes about {(BASE_BYTES + TILE_PIXEL_BYTES * fits * fits) / 1e9:.1f} GB"
              if fits >= 256 else "close other programs, or use a machine with more memory")
    return (f"deblurring at --tile-size {tile} takes about {need / 1e9:.1f} GB of memory, and "
            f"{available / 1e9:.1f} GB is available: {advice}")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "deblur",
        # argparse made "[MODEL] INPUT [[MODEL] INPUT ...]" of it: one model, first, if any
        usage="%(prog)s [-h] [MODEL] INPUT [INPUT ...] -o OUT [options]",
        help="deblur photos (files or folders)",
        description="Deblur photos with MODEL (a .keras file from `blurkit train`) or, when no model file "
        "is given, with the shipped presets: per photo, gaussian-v1-noisy for noisy or JPEG-compressed "
        "photos and gaussian-v1 for the others (--preset auto).",
        epilog="exit status: 0 every image written (or already there), 3 some files failed (listed on "
        "stderr) and the others written (or already there), 1 every file failed (files left unread on a full or "
        "read-only output file system count as failed), 2 a usage error, "
        "130 interrupted, 143 terminated",
    )
    p.add_argument("paths", nargs="+", metavar="[MODEL] INPUT",
                   help="optional model file, then image files or folders (searched recursively, outputs "
                   "keep their relative names; hidden files and folders, names starting with '.', are "
                   "skipped)")
    p.add_argument("-o", "--out", required=True, help="output file (one input) or folder")
    p.add_argument("--preset", metavar="NAME",
                   help="use this shipped preset (see `blurkit list presets`), or 'auto' (the default "
                   "without a model file): per photo, gaussian-v1-noisy when it shows sensor noise or JPEG "
                   "blocks, else gaussian-v1")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave outputs that already exist (when all do, no model is loaded)")
    p.add_argument("--suffix", default="",
                   help="add this to output file names (before the extension; not to an output given as a file "
                   "name). With --out the input folder, it is required, and input files already ending in it "
                   "whose outputs would go beside them (in that folder, or given one by one, e.g. by a shell "
                   "glob) are skipped as earlier outputs")
    p.add_argument("--format", metavar="EXT", choices=FORMATS, type=_format_name,
                   help="write the restorations as EXT files (png, jpg, tif, webp or bmp, in any case, with "
                   "or without the dot) instead of each input's own format, e.g. png to keep JPEG inputs "
                   "from being compressed again")
    p.add_argument("--quality", type=int, default=95, metavar="Q",
                   help="JPEG and WebP quality of the outputs, 1-100 (default 95; a lossless WebP input gives a "
                        "lossless WebP output)")
    p.add_argument("--tile-size", type=int, help="restore images above TILE_SIZE^2 pixels in tiles of at most "
                   "that side (default: the model's; 1536 for the presets and new models); smaller tiles take less "
                   "memory, at little cost in time: with the presets about 1.9 GB at 1536, 1.3 GB at 768, 1.1 GB "
                   "at 512 (warned when more than the free memory)")
    add_max_pixels(p, "refuse")
    add_threads(p)
    p.add_argument("--io-workers", type=int, default=2, metavar="N",
                   help="threads reading files ahead of the model, and as many writing results, so that "
                   "file I/O overlaps with deblurring (default 2; 0: one file after the other)")
    p.add_argument("--prefetch", type=int, default=4, metavar="N",
                   help="files read ahead of the model, and results waiting to be written, at most: about "
                   "2N+1 decoded images in memory (default 4)")
    p.add_argument("--ensemble", type=int, default=1, choices=(1, 2, 4, 8), metavar="N",
                   help="average the restorations of N flips/rotations of each image (1, 2, 4 or 8; "
                   "N times slower, slightly sharper; default 1)")
    p.add_argument("--sigma", type=float, metavar="S",
                   help="the Gaussian blur's sigma in pixels, when it is known: deconvolve S instead of the "
                   "model's own estimate (non-blind; models with a blur estimator, e.g. the default preset, "
                   "0.3 to 3.5)")
    p.add_argument("--no-metadata", action="store_true",
                   help="do not copy each input's colour profile and EXIF data (camera, date, GPS, ...) to "
                   "its output; by default they are copied into JPEG, PNG and WebP outputs, the EXIF "
                   "orientation set to upright like the pixels")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="no progress (a bar on a terminal; in a log, a line every 30 s of a longer run); the "
                        "one-line summary and failures are still printed")
    p.set_defaults(func=run)
    return p


def _format_name(text: str) -> str:
    """``--format``: the extension in lower case, without a leading dot.

    Examples:
        >>> _format_name(".PNG"), _format_name("Jpg")
        ('png', 'jpg')
    """
    return text.strip().lower().removeprefix(".")


def _check_suffix(suffix: str) -> None:
    """Refuse a ``--suffix`` that is not part of a file name: one with a path separator (``_s/x`` names a
    subfolder, ``/../x`` one outside ``--out``), a NUL, or a ``.`` / ``..`` of its own; and one with a
    character Windows refuses in names (``<>:"|?*`` and control characters: ``a:x.png`` is a hidden stream of
    a file ``a`` on NTFS), on every system, so that a command works the same everywhere."""
    from blurkit.cli.main import CLIError

    if any(c and c in suffix for c in ("/", os.sep, os.altsep, "\0")) or suffix in (".", ".."):
        raise CLIError(f"--suffix {suffix!r}: must be the end of a file name (e.g. _sharp), without a path "
                       "separator, and not . or ..")
    bad = sorted({c for c in suffix if c in '<>:"|?*\\' or ord(c) < 32})
    if bad:
        raise CLIError(f"--suffix {suffix!r}: {' '.join(map(repr, bad))} cannot be in a file name on Windows; "
                       "use letters, digits, - or _")


class _Left:
    """Inputs that a plan leaves out for one reason: how many, and the first few (to name them)."""

    SHOWN = 3

    def __init__(self) -> None:
        self.n: int = 0
        self.first: list = []

    def add(self, path) -> None:
        self.n += 1
        if len(self.first) < self.SHOWN:
            self.first.append(path)

    def discard(self, path) -> None:
        """Take back one :meth:`add` of ``path``."""
        self.n -= 1
        if path in self.first:
            self.first.remove(path)

    def names(self) -> str:
        """The first few paths, and ``...`` when there are more.

        Examples:
            >>> left = _Left()
            >>> for name in "abcd":
            ...     left.add(name + ".png")
            >>> left.n, left.names()
            (4, 'a.png, b.png, c.png, ...')
        """
        return ", ".join(map(str, self.first)) + (", ..." if self.n > len(self.first) else "")


class _Plan:
    """What :func:`_plan` found: the jobs, and the inputs it leaves out.

    Attributes:
        jobs: ``(source, destination)`` pairs, lazily.
        count: Counts the jobs (a directory walk).
        earlier: Inputs ending in ``--suffix`` whose outputs go beside them: earlier outputs, not restored.
        unread: Images in an ``--out`` inside an input folder (or reached through a link in one): not read as
            input.
        kept: Those of them that this run would write over: left as they are, since blurkit cannot tell
            its earlier outputs from photos there.
        holder: The input folder that ``--out`` is inside of, or None.
        kept_now: How many jobs were dropped so far because their output is one of ``kept``.
        unlisted: ``{folder: reason}`` for the sub-folders of the inputs that cannot be listed (no permission,
            say): failures, since their images are left out.
        foreign: ``{output: (source, reason)}`` for the outputs beside their photos that would write over an
            image that is not an earlier output (:func:`_not_its_output`): failures, left as they are.
    """

    def __init__(self) -> None:
        # typed: iter(()) alone is an Iterator[Never], and mypy's verdict on its use varied from run to run
        self.jobs: Iterator[tuple[Path, Path]] = iter(())
        self.count: Callable[[], int] = lambda: 0
        self.earlier, self.unread, self.kept = _Left(), _Left(), _Left()
        self.unlisted: dict[str, str] = {}
        self.foreign: dict[str, tuple] = {}
        self.holder: Path | None = None
        self.kept_now = 0


def _plan(inputs: list[str], out: str, suffix: str, ext: str | None = None) -> _Plan:
    """The (source, destination) pairs, lazily, a function counting them (a directory walk), and what is
    left out.

    A single file may go to a file, everything else goes to a folder. Every input is checked before the
    first pair is made, and no output may replace an input:

    * ``--out`` the input folder itself needs a ``--suffix``; input files already ending in it whose outputs
      go beside them (a folder's, or files given one by one, e.g. by a shell glob, in ``--out``) are then
      taken as earlier outputs and left out;
    * an output folder inside an input folder is not read as input, and, without a ``--suffix``, an image
      already in it that an output would replace is left as it is (blurkit cannot tell its earlier outputs
      from photos there; with a ``--suffix``, files ending in it are earlier outputs, as beside the photos).

    The same file given twice (``photos photos/a.png``) is restored once. With ``ext`` (``--format``) the
    outputs get that extension (without it, formats blurkit cannot write become JPEG for HEIC and PNG
    otherwise: :func:`blurkit.batch.folder_jobs`). Inputs that would share an output (``a.jpg`` and ``a.png``
    with ``--format png``, ``a.heic`` and ``a.jpg``, or ``a/x.png`` and ``b/x.png`` from two input folders)
    are refused before any work, after a walk of the inputs.
    """
    from pathlib import Path

    from blurkit.batch import folder_jobs
    from blurkit.cli._common import check_output
    from blurkit.cli.main import CLIError
    from blurkit.data.io import WRITE_EXTENSIONS, case_blind, folded, is_image_path

    paths: list[Path] = []
    given: set[Path] = set()
    for item in _expanded(inputs):
        p = Path(item)
        if p.exists() and not p.is_dir() and not p.is_file():  # a FIFO or a device: never waited on or read
            raise CLIError(f"not a regular file: {p}")
        if not p.is_dir() and not p.is_file():
            from blurkit.presets import AUTO, list_presets

            hint = f" ({item} is a preset: --preset {item})" if item in (*list_presets(), AUTO) else ""
            raise CLIError(f"no such file or folder: {p}{hint}")
        key = Path(os.path.abspath(p))  # not resolved: a link to a photo is restored under its own name
        if key not in given:  # the same file or folder given twice is restored once
            given.add(key)
            paths.append(p)
    folders = [p for p in paths if p.is_dir()]
    paths = [p for p in paths if p.is_dir() or not any(_listed(p, q) for q in folders)]
    outp = Path(out)
    single = len(paths) == 1 and paths[0].is_file()
    if not outp.is_dir():
        if single and outp.suffix and not is_image_path(outp):
            raise CLIError(f"--out {out}: not an image file name (use .png, .jpg, .tif, ...) or a folder")
        if not single and is_image_path(outp):
            raise CLIError(f"--out {out}: several images need an output folder, not an image file name")
    to_file = single and is_image_path(outp) and not outp.is_dir()
    if to_file and ext:
        raise CLIError(f"--format: the output file name {out} already gives the format; drop one of them")
    if to_file and outp.suffix.lower() not in WRITE_EXTENSIONS:
        raise CLIError(f"--out {out}: blurkit reads {outp.suffix} files but cannot write them; use one of "
                       f"{', '.join(WRITE_EXTENSIONS)}")
    check_output(outp, "--out", folder=not to_file)
    real_out = outp.resolve()
    # Paths are compared as files, by identity, not by name: on macOS' and Windows' file systems (and FAT
    # or exFAT drives, SMB shares, bind mounts) `photos` and `Photos` are one folder, and the name test
    # alone let the restorations replace the photos.
    for p in paths:
        if p.is_file():
            dst = outp if to_file else next(folder_jobs(p, outp, suffix=suffix, ext=ext))[1]
            if _same(dst, p):
                raise CLIError(f"--out {out}: the restoration of {p} would replace it; give another output "
                               "or a --suffix")
        elif _same(p, outp) and not suffix:
            raise CLIError(f"--out {out} is the input folder {p}: the restorations would replace the photos; "
                           "give another folder, or a --suffix to write them beside the photos")
    plan = _Plan()
    plan.holder = next((p for p in folders if (parts := _below(real_out, p))  # not a hidden folder: listed
                        and not any(n.startswith(".") for n in parts)), None)
    out_id = _ident(real_out)

    @functools.lru_cache(maxsize=4096)
    def ids_up(folder: Path) -> frozenset:
        """The identities of a listed file's folder and of the folders above it (once per folder)."""
        real = folder.resolve()
        return frozenset(i for i in map(_ident, (real, *real.parents)) if i is not None)

    @functools.lru_cache(maxsize=64)
    def ident_of(root: Path) -> tuple[int, int] | None:
        return out_id if root == real_out else _ident(root)

    def within(folder: Path, root: Path) -> bool:
        root_id = ident_of(root)
        return root_id is not None and root_id in ids_up(folder)

    def walk():
        """``(source, destination, why)``: ``why`` is None for a job, else the reason it is left out."""
        for p in paths:
            if to_file:
                yield p, outp, None
                continue
            real = p.resolve()
            beside = _same(p, outp) if p.is_dir() else _same(p.parent, outp)
            inside = p.is_dir() and bool(_below(real_out, p))  # --out is inside this input folder
            for f, d in folder_jobs(p, outp, suffix=suffix, ext=ext, unlisted=plan.unlisted):
                if beside and suffix and f.stem.endswith(suffix):  # beside the photos: an earlier output
                    yield f, d, "earlier"
                elif (p.is_dir() and not beside and within(f.parent, real_out)
                      and (inside or not within(f.parent, real))):
                    # the output folder is not input, whether inside the input folder or reached through a
                    # link in it (photos/link -> ../out): its files would be restored again, and the outputs
                    # written meanwhile too (the walk is lazy). An input folder inside --out is read as usual.
                    yield f, d, "unread"
                else:
                    yield f, d, None

    # refused before any work: a.jpg and a.png would both become a.png with --format png, a.heic (written as
    # JPEG) and a.jpg both a.jpg, a/x.png and b/x.png from two folders both out/x.png. A walk of the inputs
    # that keeps one hash per output (a million photos: tens of MB, freed at once); the names on a clash.
    # The same walk counts the inputs left out, and finds the images in an --out inside an input folder that
    # an output would replace: without a --suffix, nothing tells an earlier output there from a photo.
    kept: set[str] = set()
    if not to_file:
        name_of = folded if case_blind(outp) else str  # one file for two names there: A.png and a.png
        seen: set[int] = set()
        earlier: set[int] = set()
        for src, dst, why in walk():
            if why == "earlier":
                plan.earlier.add(src)
                earlier.add(hash(str(src)))
                continue
            if why == "unread":
                plan.unread.add(src)
                continue
            h = hash(name_of(dst))
            if h in seen:
                _clash(((f, d) for f, d, w in walk() if w is None), dst, ext, name_of)
            seen.add(h)
            if plan.holder is not None and not suffix and dst.exists():
                plan.kept.add(dst)
                kept.add(str(dst))
            elif suffix and dst.is_file() and _same(dst.parent, src.parent):
                # beside the photo, a file of the output's name was taken as an earlier output: unless it is
                # not even the photo's size, which no output of it has (a photo named beach_sharp.png)
                why = _not_its_output(src, dst, suffix)
                if why:
                    plan.foreign[str(dst)] = (src, why)
        for name in plan.foreign:  # another image, not an earlier output: its failure line says so
            if hash(name) in earlier:
                plan.earlier.discard(Path(name))

    def jobs():
        for src, dst, why in walk():
            if why is None and str(dst) not in plan.foreign:
                if str(dst) in kept:
                    plan.kept_now += 1
                    continue
                yield src, dst

    def count() -> int:
        excluded = kept | plan.foreign.keys()
        return sum(1 for _, dst, why in walk() if why is None and str(dst) not in excluded)

    plan.jobs, plan.count = jobs(), count
    return plan


def _not_its_output(src, dst, suffix: str) -> str | None:
    """Why ``dst``, an existing file named as ``src``'s output beside it, cannot be an earlier output of
    ``src``: its pixel size differs (either way round: an output is written upright). None when it may be,
    or when the headers cannot tell (the file is then written over, as an earlier output is)."""
    from PIL import Image

    try:
        with Image.open(src) as a, Image.open(dst) as b:
            (w, h), (ow, oh) = a.size, b.size
    except Exception:  # noqa: BLE001 - any file Pillow cannot open: no evidence either way
        return None
    if sorted((w, h)) == sorted((ow, oh)):
        return None
    return (f"{dst.name} is already there and {ow}x{oh}, not the size of {src.name} ({w}x{h}): not an earlier "
            f"output of it but another image whose name ends in --suffix {suffix}; left as it is (choose another "
            "--suffix, or move it)")


def _listed(file, folder) -> bool:
    """Whether listing the input ``folder`` gives ``file`` itself, under its own name (so the same output):
    ``photos/a.png`` given beside ``photos``."""
    from blurkit.data.io import is_image_path

    name = file.name
    return (not name.startswith(".") and is_image_path(name) and (folder / name).is_file()
            and (folder / name).resolve() == file.resolve())


def _clash(jobs: Iterable[tuple[Path, Path]], dst: Path, ext: str | None,
           name_of: Callable[[Any], str] = str) -> None:
    """Raise the error for two inputs of ``jobs`` that would both be written to ``dst`` (if two are): to the
    same name, or to names that ``name_of`` makes one (letter case, on a file system that ignores it)."""
    from blurkit.cli.main import CLIError

    pairs = [(src, d) for src, d in jobs if name_of(d) == name_of(dst)]
    if len(pairs) < 2:
        return  # two outputs with the same hash, not the same name
    (first, one), (src, other) = pairs[:2]
    how = ""
    if first.parent != src.parent:
        how = ", or deblur them to separate folders"
    elif ext and first.suffix.lower() != src.suffix.lower():
        how = ", or leave --format out"
    if one == other:
        raise CLIError(f"{first} and {src} would both be written to {dst}: rename one{how}")
    raise CLIError(f"{first} and {src} would both be written to {one} and {other}, one file on this file system "
                   f"(it ignores letter case): rename one{how}")


def _expanded(inputs: Iterable[str]) -> list[str]:
    """The inputs with wildcard patterns that name no file expanded, as a Unix shell does and Windows' shells
    do not (``blurkit deblur *.jpg -o out`` in cmd.exe or PowerShell): ``*``, ``?``, ``[...]``, and ``**``
    for sub-folders, in sorted order. A pattern that matches nothing stays as it is (and is reported missing).
    """
    import glob

    out: list[str] = []
    for item in inputs:
        if any(c in item for c in "*?[") and not os.path.exists(item):
            found = sorted(glob.glob(item, recursive=True))
            if found:
                out.extend(found)
                continue
        out.append(item)
    return out


def _same(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether ``a`` and ``b`` are one file or folder: one real path, or one identity (a link, a bind mount,
    another letter case on a file system that ignores it)."""
    if Path(a).resolve() == Path(b).resolve():
        return True
    one = _ident(a)
    return one is not None and one == _ident(b)


def _below(path: str | os.PathLike, folder: str | os.PathLike) -> tuple[str, ...]:
    """The parts of the real ``path`` below ``folder`` when ``folder`` is one of its parent folders (by
    identity, as :func:`_same`), else ``()``."""
    real, top = Path(path).resolve(), _ident(folder)
    if top is None:
        return ()
    for up in real.parents:
        if _ident(up) == top:
            return real.relative_to(up).parts
    return ()


def _count_in_background(count):
    """Start ``count()`` in a daemon thread; returns a function giving its result, or None until then."""
    import threading

    result: list[int] = []

    def work() -> None:
        try:
            result.append(count())
        except OSError:
            pass

    threading.Thread(target=work, name="blurkit-count", daemon=True).start()
    return lambda: result[0] if result else None


def run(args: argparse.Namespace) -> int:
    import itertools
    import sys
    from pathlib import Path

    from blurkit.cli._common import check_sigma, flag_reason, load_deblurrer, progress_shown, shown
    from blurkit.cli.main import CLIError, interrupt_status

    paths = list(args.paths)
    if (Path(paths[0]) / "saved_model.pb").is_file():  # `blurkit export`'s folder, not photos
        raise CLIError(f"{paths[0]} is a SavedModel (blurkit export), not photos: deblur takes a .keras "
                       "model file; serve a SavedModel with tf.saved_model.load")
    if paths[0].lower().endswith((".h5", ".hdf5")):  # no photo format: a model, but one blurkit cannot load
        raise CLIError(f"{paths[0]}: a legacy Keras HDF5 model; deblur takes a .keras model file saved by "
                       "blurkit (Deblurrer.save, blurkit train)")
    model = paths.pop(0) if paths[0].lower().endswith(".keras") else None
    for path in paths:
        if path.lower().endswith(".keras"):
            raise CLIError(f"{path} is a model file: the MODEL comes first "
                           "(blurkit deblur MODEL INPUT... -o OUT)")
    if not paths:
        raise CLIError("no input images given")
    if model and args.preset:
        raise CLIError("give a model file or --preset, not both")
    if not 1 <= args.quality <= 100:
        raise CLIError(f"--quality must be in 1..100, got {args.quality}")
    if args.tile_size is not None and args.tile_size < 16:
        raise CLIError(f"--tile-size must be at least 16, got {args.tile_size}")
    _check_suffix(args.suffix)
    ext = None if args.format is None else "." + {"jpeg": "jpg", "tiff": "tif"}.get(args.format, args.format)
    plan = _plan(paths, args.out, args.suffix, ext)
    first = next(plan.jobs, None)
    if first is None and not plan.kept.n and not plan.foreign and not plan.unlisted:
        if plan.earlier.n:
            raise CLIError(f"nothing to restore in {', '.join(paths)}: {plan.earlier.names()} "
                           f"end{'s' * (plan.earlier.n == 1)} in --suffix {args.suffix}, so "
                           f"{'is an earlier output' if plan.earlier.n == 1 else 'are earlier outputs'}")
        raise CLIError(f"no images found in {', '.join(paths)}")
    # with --skip-existing, the jobs whose output is already there, up to the first with work: when every output
    # is there (a finished run started again, a cron job) nothing needs the model, and TensorFlow and a preset
    # took 20 s to load (options checked on the model, such as --sigma, are then not checked)
    there: list[tuple[Path, Path]] = []
    while args.skip_existing and first is not None and Path(first[1]).exists():
        there.append(first)
        first = next(plan.jobs, None)
    jobs: Iterator[Any] = itertools.chain(there, [] if first is None else [first], plan.jobs)  # counted there

    from blurkit.batch import Interrupted, deblur_files

    if args.max_pixels < 1:
        raise CLIError(f"--max-pixels must be a positive number of pixels, got {args.max_pixels}")
    if args.io_workers < 0:
        raise CLIError(f"--io-workers must be 0 (no overlap) or more, got {args.io_workers}")
    if args.prefetch < 1:
        raise CLIError(f"--prefetch must be at least 1, got {args.prefetch}")
    def setup(d):
        """``d`` with the command's options (checked on the first model, so before any file is read)."""
        if args.tile_size:
            if d.fixed_size:
                raise CLIError(f"--tile-size: this model only takes {d.fixed_size}x{d.fixed_size} inputs")
            d.tile_size = int(args.tile_size)
            d.tile_overlap = min(d.tile_overlap, d.tile_size // 4)
        if args.sigma is not None:
            check_sigma(d, args.sigma, "--sigma")
        if not warned:
            warned.append(True)
            note = memory_note(getattr(d, "tile_size", None), getattr(d, "fixed_size", None))  # any restorer
            if note:
                print(f"blurkit deblur: warning: {note}", file=sys.stderr)
        return d if args.ensemble == 1 and args.sigma is None else _Options(d, args.ensemble, args.sigma)

    warned: list[bool] = []

    from blurkit.presets import AUTO, DEFAULT_PRESET

    auto = model is None and args.preset in (None, AUTO)
    if plan.kept.n and not args.skip_existing:
        print(f"blurkit deblur: {shown(_kept(plan, args.out))}", file=sys.stderr)
    bars = not args.quiet and progress_shown()  # on a terminal, or a line now and then in a log
    stop = None  # the Interrupted that ended the run early, if one did
    if first is None:  # nothing to restore, only outputs already there or failures to report: no model to load
        from blurkit.batch import Summary
        from blurkit.cli._common import check_model

        # a mistyped model is an error, though it is not loaded (auto: the shipped presets)
        check_model(model, None if args.preset == AUTO else args.preset, metadata=True)
        summary, restorer = Summary(skipped=len(there)), None
    else:
        if auto:
            restorer = _Auto(lambda name: setup(load_deblurrer(None, name)), first=DEFAULT_PRESET)
        else:
            tiles = {"tile_size": "--tile-size", "tile_overlap": "--tile-size"}  # setup() sets both
            restorer = setup(load_deblurrer(model, args.preset, options=tiles,
                                            given=frozenset(tiles) if args.tile_size else frozenset()))
        try:
            summary = deblur_files(restorer, jobs, workers=args.io_workers, prefetch=args.prefetch,
                                   skip_existing=args.skip_existing, max_pixels=args.max_pixels,
                                   total=_count_in_background(plan.count) if bars else None,
                                   progress=bars, metadata=not args.no_metadata, quality=args.quality)
        except Interrupted as exc:
            summary, stop = exc.summary, exc
    summary.skipped += plan.kept_now  # left as they are, as with --skip-existing
    # a sub-folder that cannot be listed: its images are not even known, so it is one failure
    summary.failed += [(Path(folder), f"cannot list this folder ({why}): the images in it are left out")
                       for folder, why in sorted(plan.unlisted.items())]
    summary.failed += sorted(plan.foreign.values())
    print(summary)  # one line, kept with --quiet (which silences the progress bars)
    for note in _notes(plan, args.out, args.suffix):
        print(shown(note))  # paths: a name that is not UTF-8 would fail on a strict stdout
    if auto and restorer is not None and restorer.counts and not args.quiet:
        print("presets (auto): " + ", ".join(f"{n} for {c} image{'s' * (c != 1)}"
                                             for n, c in sorted(restorer.counts.items())))
    for src, why in summary.failed:
        print(shown(f"  failed: {src}: {flag_reason(why)}"), file=sys.stderr)  # a name that is not UTF-8: \xNN
    if summary.interrupted:
        again = "" if args.skip_existing else " with --skip-existing"
        print(f"interrupted after {summary.total} files ({summary}); run the same command{again} to go on",
              file=sys.stderr)
        return interrupt_status(stop)
    if summary.left:  # a full or read-only file system: its other outputs would have failed alike, each restored
        n = summary.left
        print(shown(f"{n} file{'s' * (n != 1)} left unread: a write found {'their' if n != 1 else 'its'} output's "
                    f"file system full or read-only ({summary.left_why}); make room there, or give an --out that can "
                    f"be written, then run the same command{'' if args.skip_existing else ' with --skip-existing'} "
                    "to go on"), file=sys.stderr)
    if not summary.failed and not summary.left:
        return 0
    return PARTIAL if summary.done or summary.skipped else 1


def _kept(plan: _Plan, out: str) -> str:
    """The line saying which images in ``--out`` are left as they are, and why (:class:`_Plan`)."""
    n, them = plan.kept.n, "it" if plan.kept.n == 1 else "them"
    return (f"{n} image{'s' * (n != 1)} in --out {out} left as {'it is' if n == 1 else 'they are'}, not "
            f"written over: {plan.kept.names()} (--out is inside the input folder {plan.holder}, where blurkit "
            f"cannot tell its earlier outputs from photos; delete {them}, or give an --out outside "
            f"{plan.holder})")


def _notes(plan: _Plan, out: str, suffix: str) -> list[str]:
    """The lines after the summary on the inputs that :func:`_plan` left out, if any."""
    notes = []
    if plan.earlier.n:
        n = plan.earlier.n
        notes.append(f"left out {n} input{'s' * (n != 1)} ending in --suffix {suffix}, taken as earlier "
                     f"output{'s' * (n != 1)}: {plan.earlier.names()}")
    if plan.unread.n:
        n = plan.unread.n
        where = f"inside the input folder {plan.holder}" if plan.holder is not None else \
            "reached through a link in an input folder"
        notes.append(f"not read as input: {n} image{'s' * (n != 1)} in --out {out}, {where}")
    return notes


class _Options:
    """A Deblurrer whose ``predict(image, progress)`` passes ``ensemble`` and ``sigma`` on to
    ``Deblurrer.predict`` (``progress``: the bar over a large image's tiles, as ``Deblurrer.predict``'s)."""

    def __init__(self, deblurrer, ensemble: int, sigma: float | None) -> None:
        self.deblurrer, self.ensemble, self.sigma = deblurrer, ensemble, sigma

    def predict(self, image, progress: bool = False):
        from blurkit.batch import tile_bar

        return self.deblurrer.predict(image, ensemble=self.ensemble, sigma=self.sigma,
                                      **tile_bar(self.deblurrer, progress))


class _Auto:
    """Per image, the preset :func:`blurkit.presets.choose_preset` names, each loaded once by ``load(name)``
    (``first`` at once, so that a bad option fails before any file is read); ``counts`` per preset."""

    def __init__(self, load, first: str) -> None:
        import collections

        self.load, self.models = load, {first: load(first)}
        self.counts: collections.Counter[str] = collections.Counter()

    def predict(self, image, progress: bool = False):
        from blurkit.batch import tile_bar
        from blurkit.presets import choose_preset

        name = choose_preset(image)
        if name not in self.models:
            self.models[name] = self.load(name)
        out = self.models[name].predict(image, **tile_bar(self.models[name], progress))
        self.counts[name] += 1  # once restored: not an image that failed, or was stopped by Ctrl-C
        return out

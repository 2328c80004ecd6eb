"""Make (blurred, sharp) training pairs from a folder of sharp photos.

:func:`make_pairs` reads every image under a folder, optionally resizes it, blurs it with a registered
blur generator and writes::

    OUT_DIR/
      sharp/<relative name>.png      the (resized, upright) sharp image
      blurred/<relative name>.png    the same image blurred
      manifest.jsonl                 one JSON object per pair: how it was made
      manifest.jsonl.partial         the same, of a run in progress or interrupted (see below)

Outputs are PNG whatever the source format: PNG is lossless and stores 8- and 16-bit grayscale, RGB and
RGBA, so 16-bit sources (PNG, TIFF) stay 16-bit. The sub-folder structure is kept; when two sources would
get the same output name (``a.jpg`` and ``a.png``), both keep their suffix (``a.jpg.png``, ``a.png.png``).
Alpha is dropped, grayscale stays grayscale, EXIF orientation is applied.

Each image gets its own seed, derived from the run seed and its relative path (:func:`image_seed`), so a
re-run gives byte-identical files and adding or removing other images changes nothing for this one.

Files that cannot be read (corrupt, truncated, not really images) are skipped and reported, never abort
the run. The manifest is written ahead of the pairs: each pair's line is appended to
``manifest.jsonl.partial``, flushed and fsynced *before* its files are written (``blurred/`` first,
``sharp/`` last; each file atomically), so every file a run wrote is listed even when the run is killed
(Ctrl-C, ``kill -9``); a pair cut in half has only its blurred side, which the pair reader
skips with a warning. At the end the partial manifest is renamed to ``manifest.jsonl`` (atomic; it
replaces an earlier one). An interrupted run leaves the previous ``manifest.jsonl``, if any, untouched,
and its own ``manifest.jsonl.partial``; a run that writes no pair writes no manifest. As the outputs are
deterministic, simply run it again with ``replace=True`` (``blurkit make-pairs --replace``).

A run holds a lock on ``OUT_DIR/.make-pairs.lock`` (:mod:`blurkit._lock`) from before it looks at what the
folder holds until it ends; the file is removed then, and a killed run's is free. A second run into the same
folder is refused (:class:`blurkit._lock.Busy`, an ``OSError``): it neither takes the first's partial
manifest for an interrupted run's nor, with ``replace=True``, deletes its pairs. :func:`in_progress` names
the run holding it.

Writing into a folder that holds the pairs of an earlier run would mix the two: files of the earlier run
that this one does not write stay in ``sharp/`` and ``blurred/`` and training would use them.
:func:`previous_outputs` says what an output folder already holds (``blurkit make-pairs`` refuses such a
folder), and ``make_pairs(..., replace=True)`` first deletes the files the earlier manifests
(``manifest.jsonl`` and ``manifest.jsonl.partial``) list, and those manifests, and nothing else.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from blurkit.data.io import write_image
    >>> from blurkit.data.pairs import make_pairs
    >>> class BoxBlur:  # any callable returning {"image", "kernel", "params"} works
    ...     def __call__(self, image, seed=None):
    ...         return {"image": image, "kernel": np.ones((1, 1)), "params": {}}
    >>> root = Path(tempfile.mkdtemp())
    >>> write_image(root / "clean" / "cat.jpg", np.zeros((8, 8, 3), np.uint8))
    >>> summary = make_pairs(root / "clean", root / "pairs", blur=BoxBlur(), progress=False)
    >>> summary["written"], sorted(p.name for p in (root / "pairs").iterdir())
    (1, ['blurred', 'manifest.jsonl', 'sharp'])
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from blurkit._lock import Lock, holder
from blurkit.data.io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    PathLike,
    _scan_folder,
    case_blind,
    folded,
    read_image,
    temp_pattern,
    temp_stem,
    write_image,
)

__all__ = ["make_pairs", "image_seed", "build_blur", "describe_blur", "parse_size", "previous_outputs",
           "remove_previous", "folder_conflict", "in_progress"]

MANIFEST_NAME = "manifest.jsonl"
#: The manifest of a run in progress, or of an interrupted run: a line per pair, written before its files.
PARTIAL_NAME = MANIFEST_NAME + ".partial"
#: The lock file a run holds in OUT_DIR (:mod:`blurkit._lock`; removed when the run ends, free when it is killed).
LOCK_NAME = ".make-pairs.lock"
_PAIR_FOLDERS = ("sharp", "blurred")
_TEMP_FILE = temp_pattern(".tmp")  # what atomic_open writes NAME to first


def image_seed(seed: int, name: str) -> int:
    """The seed of one image: a stable hash of the run ``seed`` and its relative ``name``, in ``[0, 2**32)``.

    Args:
        seed: The run seed.
        name: The image's path relative to the input folder, with ``/`` separators. It is hashed as UTF-8;
            a file name that is not valid UTF-8 (decoded by Python with ``surrogateescape``) is hashed as
            its bytes on disk.

    Examples:
        >>> from blurkit.data.pairs import image_seed
        >>> image_seed(0, "a/cat.png") == image_seed(0, "a/cat.png") != image_seed(1, "a/cat.png")
        True
    """
    digest = hashlib.sha256(f"{int(seed)}\x00{name}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:4], "big")


def parse_size(size: int | tuple[int, int] | list[int] | None) -> tuple[int, int] | None:
    """Normalise a resize target to ``(width, height)``: ``128`` means ``(128, 128)``.

    Examples:
        >>> from blurkit.data.pairs import parse_size
        >>> parse_size(128), parse_size((160, 120)), parse_size(None)
        ((128, 128), (160, 120), None)
    """
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        pair: tuple[Any, ...] = (int(size), int(size))
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        pair = tuple(size)
    else:
        raise ValueError(f"size must be an int or a (width, height) pair, got {size!r}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in pair):
        raise ValueError(f"size must hold positive integers, got {size!r}")
    return int(pair[0]), int(pair[1])


def build_blur(blur: Any, options: dict[str, Any] | None = None) -> Any:
    """A blur generator from a registry name and options, or an already-built one unchanged.

    Raises:
        blurkit.registry.UnknownComponentError: Unknown name (the message lists the available ones).
        TypeError: Options the blur does not take, or ``blur`` is neither a name nor callable.
        ValueError: Options given with an already-built blur, or option values the blur refuses.
    """
    if isinstance(blur, str):
        from blurkit.registry import BLURS

        return BLURS.create(blur, **dict(options or {}))
    if options:
        raise ValueError("blur_options only apply when blur is given by name")
    if not callable(blur):
        raise TypeError(f"blur must be a registered name or a callable blur generator, got {blur!r}")
    return blur


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, os.PathLike):
        return Path(value).as_posix()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def describe_blur(
    blur: Any, name: str | None = None, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"name", "version", "config"}`` of a blur generator, for manifests.

    Uses :func:`blurkit.blurs.serialize_blur` when it knows the object; otherwise falls back to the
    object's ``name``/``version`` attributes and ``get_config()`` (or the given ``options``).
    """
    try:
        from blurkit.blurs import serialize_blur
    except ImportError:
        serialize_blur = None  # type: ignore[assignment]
    if serialize_blur is not None:
        try:
            described = dict(serialize_blur(blur))
        except (AttributeError, TypeError, KeyError, ValueError):
            described = None
        if described is not None:
            return json.loads(json.dumps(described, default=_jsonable))
    get_config = getattr(blur, "get_config", None)
    config = get_config() if callable(get_config) else dict(options or {})
    return json.loads(
        json.dumps(
            {
                "name": getattr(blur, "name", None) or name or type(blur).__name__,
                "version": getattr(blur, "version", None),
                "config": config,
            },
            default=_jsonable,
        )
    )


def _output_names(rels: list[str], fold: Callable[[str], str] = str) -> dict[str, str]:
    """Relative output name (``.png``) of each relative source name, keeping suffixes on clashes; ``fold``
    gives the name the output's file system sees (:func:`blurkit.data.io.folded` where it ignores case:
    ``A.jpg`` and ``a.png`` would both be ``a.png`` there)."""
    plain = {rel: str(Path(rel).with_suffix(".png").as_posix()) for rel in rels}
    counts = Counter(fold(out) for out in plain.values())
    names = {rel: (out if counts[fold(out)] == 1 else f"{rel}.png") for rel, out in plain.items()}
    if len({fold(n) for n in names.values()}) != len(names):  # A.png and a.png where case is ignored
        clashes = sorted(n for n, c in Counter(fold(n) for n in names.values()).items() if c > 1)
        where = "" if fold is str else " (on this file system, which ignores letter case)"
        raise ValueError(f"several input files map to the same output name{where}: {', '.join(clashes)}")
    return names


def _reason(exc: BaseException) -> str:
    """Why a file could not be read, without its name (listed beside it)."""
    if isinstance(exc, ImageReadError):
        return exc.reason
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _inside(path: Path, folder_real: str) -> bool:
    real = os.path.realpath(path)
    return real == folder_real or real.startswith(folder_real.rstrip(os.sep) + os.sep)


def _is_inside(path: PathLike, folder: PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, symbolic links resolved."""
    return _inside(Path(os.fspath(path)), os.path.realpath(folder))


def _linked_pair_folder(out: Path) -> str | None:
    """Why ``out``'s ``sharp/`` or ``blurred/`` cannot hold pairs: it is a symbolic link (or a junction), or
    otherwise not the folder of that name inside ``out`` once links are resolved; None when both are fine
    (or missing). Writing or deleting pairs there would write or delete files outside ``out``."""
    for side in _PAIR_FOLDERS:
        folder = out / side
        real = os.path.realpath(folder)
        if folder.is_symlink() or real != os.path.join(os.path.realpath(out), side):
            return (f"{folder} is a link to {real}: pairs are written and deleted only inside {out}; remove "
                    "the link, or choose another OUT_DIR")
    return None


def folder_conflict(clean_dir: PathLike, out_dir: PathLike) -> str | None:
    """Why ``out_dir`` cannot be the output folder of the input folder ``clean_dir``, or None if it can.

    The pairs are images written to ``OUT_DIR/sharp/`` and ``OUT_DIR/blurred/``: an input folder that is
    ``out_dir`` itself, or lies inside one of those pair folders, would read them back (or, skipping
    them, find no input). An ``out_dir`` inside ``clean_dir`` is fine (it is not scanned), and so is a
    ``clean_dir`` elsewhere inside ``out_dir``. A ``sharp/`` or ``blurred/`` that is a symbolic link (to
    anywhere) is refused: the pairs would be written, and ``replace`` would delete, outside ``out_dir``.

    Examples:
        >>> from blurkit.data.pairs import folder_conflict
        >>> folder_conflict("photos", "pairs") is None, folder_conflict("photos", "photos/pairs") is None
        (True, True)
        >>> folder_conflict("photos", "photos")
        'the output folder photos is the input folder photos: choose another OUT_DIR'
    """
    clean, out = Path(os.fspath(clean_dir)), Path(os.fspath(out_dir))
    linked = _linked_pair_folder(out)
    if linked:
        return linked
    if os.path.realpath(clean) == os.path.realpath(out):
        return f"the output folder {out} is the input folder {clean}: choose another OUT_DIR"
    for side in _PAIR_FOLDERS:
        if _is_inside(clean, out / side):
            return (f"the input folder {clean} is inside {out / side}, where the pairs are written: choose "
                    "another OUT_DIR")
    return None


def previous_outputs(out_dir: PathLike) -> list[str]:
    """What of an earlier run's output ``out_dir`` holds: its manifests, and non-empty pair folders.

    Args:
        out_dir: An output folder of :func:`make_pairs` (it need not exist).

    Returns:
        Descriptions such as ``["manifest.jsonl", "sharp/ (3 entries)"]`` (``"manifest.jsonl.partial"``
        names the manifest of an interrupted run, or of a run in progress: :func:`in_progress`); empty when ``out_dir`` is missing or holds none of
        ``manifest.jsonl``, ``manifest.jsonl.partial``, a non-empty ``sharp/`` or a non-empty
        ``blurred/``.
    """
    out = Path(os.fspath(out_dir))
    found = [name for name in (MANIFEST_NAME, PARTIAL_NAME) if (out / name).exists()]
    for side in _PAIR_FOLDERS:
        try:
            with os.scandir(out / side) as it:
                entries = sum(1 for _ in it)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if entries:
            found.append(f"{side}/ ({entries} entr{'y' if entries == 1 else 'ies'})")
    return found


def in_progress(out_dir: PathLike) -> str | None:
    """The run writing pairs to ``out_dir`` now, as ``"make-pairs run (pid 4242)"``, or None when there is none.

    A run holds a lock on ``OUT_DIR/.make-pairs.lock`` while it writes (:func:`make_pairs`), so a
    ``manifest.jsonl.partial`` there is a run in progress when this names one, and an interrupted run's
    otherwise. Only looks: nothing is made or deleted.
    """
    held = holder(Path(os.fspath(out_dir)) / LOCK_NAME)
    if held is None:
        return None
    pid, owner = held
    return (owner or "make-pairs run") + (f" (pid {pid})" if pid else "")


def _listed(manifest: Path, out: Path) -> list[Path]:
    """The files under ``sharp/`` and ``blurred/`` that the records of ``manifest`` name (checked).

    The last line of a partial manifest may be cut short (the run was killed while appending it): as the
    line was not complete when its pair's files would have been written, it names no file and is left out.
    """
    targets: list[Path] = []
    partial = manifest.name == PARTIAL_NAME
    with open(manifest, encoding="utf-8", newline="") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip() or (partial and not line.endswith("\n")):  # blank, or the cut-short last
                continue
            targets += _record_targets(manifest, number, line, out)
    return targets


def _record_targets(manifest: Path, number: int, line: str, out: Path) -> list[Path]:
    """The two files that line ``number`` of ``manifest`` names (checked)."""
    targets: list[Path] = []
    try:
        name = json.loads(line)["file"]
    except (ValueError, TypeError, KeyError):
        name = None
    if not isinstance(name, str) or not name:
        raise ValueError(f"{manifest} line {number}: not a make-pairs record (no \"file\"); "
                         "delete the old pairs yourself")
    for side in _PAIR_FOLDERS:
        folder = out / side
        target = folder / name
        real = os.path.join(os.path.realpath(out), side)  # not the link's target, if the folder is a link
        if Path(name).is_absolute() or not _inside(target, real) or os.path.realpath(target) == real:
            raise ValueError(f"{manifest} line {number}: {name!r} is not a file under {side}/; "
                             "delete the old pairs yourself")
        targets.append(target)
    return targets


def _killed_writes(targets: list[Path]) -> list[Path]:
    """The temporary files (``.NAME.XXXXXXXX.tmp``) that killed atomic writes of ``targets`` left."""
    wanted: dict[Path, set[str]] = {}
    for target in targets:
        wanted.setdefault(target.parent, set()).add(temp_stem(target.name))  # as its temporary file names it
    found: list[Path] = []
    for folder, names in wanted.items():
        try:
            with os.scandir(folder) as it:
                entries = [entry.name for entry in it if entry.name.startswith(".")]
        except OSError:  # missing, or not a folder
            continue
        for entry in entries:
            match = _TEMP_FILE.fullmatch(entry)
            if match and match.group(1) in names:
                found.append(folder / entry)
    return found


def remove_previous(out_dir: PathLike) -> int:
    """Delete the pairs that the manifests of ``out_dir`` list, then those manifests; nothing else.

    The manifests are ``manifest.jsonl`` (a completed run) and ``manifest.jsonl.partial`` (a run that was
    interrupted: it lists every pair that run began to write). Each record's ``file`` is deleted from
    ``sharp/`` and ``blurred/`` (missing ones are fine), with the hidden temporary file of a write of it
    that was killed (``.NAME.XXXXXXXX.tmp``, see :func:`blurkit.data.io.atomic_open`), and sub-folders left
    empty by that are removed. Files no manifest lists are kept. The manifests are checked whole before
    anything is deleted.

    Args:
        out_dir: An output folder of :func:`make_pairs`.

    Returns:
        The number of files deleted (the manifests included); 0 without a manifest.

    Raises:
        ValueError: A manifest line is not a record of :func:`make_pairs`, or names a file outside
            ``sharp/`` or ``blurred/``, or one of those is a symbolic link (nothing is deleted then).
    """
    out = Path(os.fspath(out_dir))
    linked = _linked_pair_folder(out)
    if linked:
        raise ValueError(linked)
    manifests = [out / name for name in (MANIFEST_NAME, PARTIAL_NAME) if (out / name).is_file()]
    targets = [target for manifest in manifests for target in _listed(manifest, out)]
    targets += _killed_writes(targets)
    removed = 0
    folders: set[Path] = set()
    for target in targets:
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        removed += 1
        folders.update(p for p in target.parents
                       if p not in (out / "sharp", out / "blurred") and out in p.parents)
    for manifest in manifests:
        manifest.unlink()
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):  # deepest first
        try:
            folder.rmdir()
        except OSError:  # not empty (holds files the manifest does not list) or gone
            pass
    return removed + len(manifests)


def make_pairs(
    clean_dir: PathLike,
    out_dir: PathLike,
    *,
    blur: Any = "gaussian",
    blur_options: dict[str, Any] | None = None,
    seed: int = 0,
    size: int | tuple[int, int] | None = None,
    progress: bool = True,
    replace: bool = False,
) -> dict[str, Any]:
    """Blur every image of ``clean_dir`` and write the (blurred, sharp) pairs to ``out_dir``.

    See the module documentation for the output layout, naming, seeding and manifest format. Each line
    of ``manifest.jsonl`` is ``{"file", "source", "width", "height", "seed", "blur": {"name",
    "version", "config"}, "params", "kernel"}``: ``file`` is the output name under ``sharp/`` and
    ``blurred/``, ``source`` the input's relative path, ``params`` what the blur sampled for this image
    and ``kernel`` the blur kernel as nested lists. The lines are appended to ``manifest.jsonl.partial``
    ahead of the pair files, which is renamed to ``manifest.jsonl`` at the end; no pair, no manifest.

    Args:
        clean_dir: Folder of sharp images (scanned recursively, hidden files skipped, see
            :func:`blurkit.data.io.list_images`). If ``out_dir`` is inside it, it is not scanned.
        out_dir: Output folder (created; existing files of the same names are replaced, other files
            are kept: see ``replace``). It may not be ``clean_dir``, nor hold ``clean_dir`` inside its
            ``sharp/`` or ``blurred/`` (see :func:`folder_conflict`).
        blur: A registered blur name (see ``blurkit.BLURS.list()``) or a blur generator object.
        blur_options: Constructor options for a blur given by name, e.g. ``{"sigma": (0.5, 3.0)}``.
        seed: Run seed; each image's seed is :func:`image_seed` ``(seed, relative path)``.
        size: Resize to ``size x size`` (int) or ``(width, height)`` with ``cv2.INTER_AREA`` before
            blurring (the tutorial uses 128). ``None`` (default) keeps the full resolution.
        progress: Show a tqdm progress bar.
        replace: Before writing, delete the pairs of the earlier run (or runs) in ``out_dir`` that its
            ``manifest.jsonl`` and ``manifest.jsonl.partial`` list, and those manifests
            (:func:`remove_previous`), so no stale pair of it is left behind. Other files are never
            deleted. The inputs are checked first. Needed when ``out_dir`` holds the
            ``manifest.jsonl.partial`` of an interrupted run.

    Returns:
        A summary: ``written`` (pairs written), ``skipped`` (list of ``{"file", "reason"}`` for files
        that could not be read or blurred), ``ignored`` (files without an image suffix), ``total``
        (image files found), ``out_dir``, ``manifest`` (its path; None when no pair was written),
        ``blur`` (name, version, config), ``seed``, ``size`` and ``seconds``.

    Raises:
        FileNotFoundError: ``clean_dir`` does not exist.
        NotADirectoryError: ``clean_dir`` is not a folder.
        ValueError: No image files in ``clean_dir``, ``out_dir`` is ``clean_dir`` (or holds it in a pair
            folder), a bad ``size``/blur option, without ``replace`` a ``manifest.jsonl.partial`` in
            ``out_dir``, or (with ``replace``) an old manifest that does not list make-pairs records.
        blurkit._lock.Busy: (an ``OSError``) another run is writing to ``out_dir``; nothing was done.
        OSError: Writing failed (a full disk), or the partial manifest was removed during the run.
        blurkit.registry.UnknownComponentError: Unknown blur name.
    """
    import cv2

    from blurkit._progress import bar as progress_bar

    start = time.perf_counter()
    clean = Path(os.fspath(clean_dir))
    out = Path(os.fspath(out_dir))
    if not clean.exists():
        raise FileNotFoundError(f"input folder not found: {clean}")
    if not clean.is_dir():
        raise NotADirectoryError(f"input is not a folder: {clean}")
    target = parse_size(size)
    blur_obj = build_blur(blur, blur_options)
    description = describe_blur(blur_obj, blur if isinstance(blur, str) else None, blur_options)

    conflict = folder_conflict(clean, out)
    if conflict:
        raise ValueError(conflict)

    images, others = _scan_folder(clean, recursive=True)
    # the outputs are not read back: OUT_DIR when it lies inside CLEAN_DIR, else (CLEAN_DIR inside OUT_DIR,
    # elsewhere than the pair folders) only the pair folders, which cannot hold it (folder_conflict)
    excluded = [os.path.realpath(out / side) for side in _PAIR_FOLDERS]
    if not _is_inside(clean, out):
        excluded.append(os.path.realpath(out))
    images = [p for p in images if not any(_inside(p, real) for real in excluded)]
    others = [p for p in others if not any(_inside(p, real) for real in excluded)]
    if not images:
        raise ValueError(
            f"no images found in {clean} (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)"
        )
    rels = [p.relative_to(clean).as_posix() for p in images]
    names = _output_names(rels, folded if case_blind(out) else str)
    partial = out / PARTIAL_NAME
    made = not out.exists()
    # held for the whole run, before anything there is looked at or deleted: another run into OUT_DIR is
    # refused (it took this run's partial manifest for an interrupted run's; with replace it deleted the pairs)
    lock = Lock(out / LOCK_NAME, out, "make-pairs run").acquire()
    written = 0
    skipped: list[dict[str, str]] = []
    log: IO[str] | None = None
    bar: Any = None
    try:
        if replace:
            remove_previous(out)
        elif partial.exists():
            raise ValueError(
                f"{out} holds {PARTIAL_NAME}, the manifest of an interrupted run whose pairs are still there; "
                "pass replace=True to delete them first (blurkit make-pairs --replace)"
            )
        bar = progress_bar(total=len(images), desc="make-pairs", unit="image", disable=not progress)
        for path, rel in zip(images, rels, strict=True):
            bar.update(1)
            try:
                image = read_image(path)
            except (ImageReadError, OSError) as exc:
                skipped.append({"file": rel, "reason": _reason(exc)})
                bar.set_postfix(skipped=len(skipped))
                continue
            if target is not None:
                image = cv2.resize(image, target, interpolation=cv2.INTER_AREA)
            seed_i = image_seed(seed, rel)
            try:
                result = blur_obj(image, seed=seed_i)
            except ValueError as exc:
                skipped.append({"file": rel, "reason": f"blur failed: {exc}"})
                bar.set_postfix(skipped=len(skipped))
                continue
            blurred = np.asarray(result["image"])
            if image.dtype.kind == "f":  # HDR: write_image refuses it in the pairs' 8-bit files (it was clipped
                # to white, silently); the blurred side too (its noise can cross 1.5): skipped, by name
                from blurkit.metrics.functional import FLOAT_HIGH, FLOAT_LOW

                lo, hi = min(image.min(), blurred.min()), max(image.max(), blurred.max())
                if lo < FLOAT_LOW or hi > FLOAT_HIGH:
                    skipped.append({"file": rel, "reason": f"float samples outside [0, 1] (min {lo:g}, max {hi:g}"
                                    ") cannot be stored in 8-bit pairs: scale or tone-map it first"})
                    bar.set_postfix(skipped=len(skipped))
                    continue
            if blurred.shape != image.shape:
                raise ValueError(
                    f"blur {description['name']!r} returned shape {blurred.shape} for an image of shape "
                    f"{image.shape} ({rel})"
                )
            kernel = np.asarray(result["kernel"], dtype=np.float64)
            name = names[rel]
            record = {
                "file": name,
                "source": rel,
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "seed": seed_i,
                "blur": description,
                "params": result.get("params", {}),
                "kernel": kernel.tolist(),
            }
            line = json.dumps(record, default=_jsonable) + "\n"
            if log is None:  # created with the first pair: a run that writes none leaves no manifest
                out.mkdir(parents=True, exist_ok=True)
                log = open(partial, "x", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
            # write-ahead: the pair is listed, durably, before its files exist; blurred first, sharp
            # last, so a pair cut in half has no sharp side (the pair reader skips it)
            log.write(line)
            log.flush()
            os.fsync(log.fileno())
            write_image(out / "blurred" / name, blurred)
            write_image(out / "sharp" / name, image)
            written += 1
        if log is not None:
            log.close()
            try:
                os.replace(partial, out / MANIFEST_NAME)  # atomic: the run is complete
            except FileNotFoundError as exc:
                raise FileNotFoundError(exc.errno, f"{partial} was removed during the run (not by another "
                                        "make-pairs: it is refused while this one runs), so the pairs written "
                                        "are listed nowhere; run again") from exc
    finally:
        if bar is not None:
            bar.close()
        if log is not None:
            log.close()
        lock.release()
        if made and not written:  # the folder was made for the lock: a run that writes no pair leaves none
            with contextlib.suppress(OSError):
                out.rmdir()

    return {
        "written": written,
        "skipped": skipped,
        "ignored": [p.relative_to(clean).as_posix() for p in others],
        "total": len(images),
        "out_dir": str(out),
        "manifest": str(out / MANIFEST_NAME) if written else None,
        "blur": description,
        "seed": int(seed),
        "size": list(target) if target else None,
        "seconds": round(time.perf_counter() - start, 3),
    }

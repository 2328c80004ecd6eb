"""Make (blurred, sharp) training pairs from a folder of sharp photos.

:func:`make_pairs` reads every image under a folder, optionally resizes it, blurs it with a registered
blur generator and writes::

    OUT_DIR/
      sharp/<relative name>.png      the (resized, upright) sharp image
      blurred/<relative name>.png    the same image blurred
      manifest.jsonl                 one JSON object per pair: how it was made

Outputs are PNG whatever the source format: PNG is lossless and stores 8- and 16-bit grayscale, RGB and
RGBA, so 16-bit sources (PNG, TIFF) stay 16-bit. The sub-folder structure is kept; when two sources would
get the same output name (``a.jpg`` and ``a.png``), both keep their suffix (``a.jpg.png``, ``a.png.png``).
Alpha is dropped, grayscale stays grayscale, EXIF orientation is applied.

Each image gets its own seed, derived from the run seed and its relative path (:func:`image_seed`), so a
re-run gives byte-identical files and adding or removing other images changes nothing for this one.

Files that cannot be read (corrupt, truncated, not really images) are skipped and reported, never abort
the run. The manifest is streamed line by line into a hidden temporary file next to it and renamed into
place at the end (atomic): an interrupted run leaves the previous manifest, if any, untouched; as the
outputs are deterministic, simply run it again (``blurkit make-pairs`` needs ``--replace`` for that).

Writing into a folder that holds the pairs of an earlier run would mix the two: files of the earlier run
that this one does not write stay in ``sharp/`` and ``blurred/`` and training would use them.
:func:`previous_outputs` says what an output folder already holds (``blurkit make-pairs`` refuses such a
folder), and ``make_pairs(..., replace=True)`` first deletes the files the earlier manifest lists, and
that manifest, and nothing else.

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

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from blurkit.data.io import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    PathLike,
    _scan_folder,
    atomic_open,
    read_image,
    write_image,
)

__all__ = ["make_pairs", "image_seed", "build_blur", "describe_blur", "parse_size", "previous_outputs",
           "remove_previous"]

MANIFEST_NAME = "manifest.jsonl"


def image_seed(seed: int, name: str) -> int:
    """The seed of one image: a stable hash of the run ``seed`` and its relative ``name``, in ``[0, 2**32)``.

    Args:
        seed: The run seed.
        name: The image's path relative to the input folder, with ``/`` separators.

    Examples:
        >>> from blurkit.data.pairs import image_seed
        >>> image_seed(0, "a/cat.png") == image_seed(0, "a/cat.png") != image_seed(1, "a/cat.png")
        True
    """
    digest = hashlib.sha256(f"{int(seed)}\x00{name}".encode()).digest()
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
        serialize_blur = None
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


def _output_names(rels: list[str]) -> dict[str, str]:
    """Relative output name (``.png``) of each relative source name, keeping suffixes on clashes."""
    plain = {rel: str(Path(rel).with_suffix(".png").as_posix()) for rel in rels}
    counts = Counter(plain.values())
    names = {rel: (out if counts[out] == 1 else f"{rel}.png") for rel, out in plain.items()}
    if len(set(names.values())) != len(names):  # pragma: no cover - needs a name like 'a.jpg.png' too
        clashes = sorted(n for n, c in Counter(names.values()).items() if c > 1)
        raise ValueError(f"several input files map to the same output name: {', '.join(clashes)}")
    return names


def _reason(exc: BaseException, path: Path) -> str:
    text = str(exc) if not isinstance(exc, OSError) or not exc.strerror else exc.strerror
    prefix = f"{path.name}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def _inside(path: Path, folder_real: str) -> bool:
    real = os.path.realpath(path)
    return real == folder_real or real.startswith(folder_real.rstrip(os.sep) + os.sep)


def previous_outputs(out_dir: PathLike) -> list[str]:
    """What of an earlier run's output ``out_dir`` holds: its manifest, and non-empty pair folders.

    Args:
        out_dir: An output folder of :func:`make_pairs` (it need not exist).

    Returns:
        Descriptions such as ``["manifest.jsonl", "sharp/ (3 entries)"]``; empty when ``out_dir`` is
        missing or holds none of ``manifest.jsonl``, a non-empty ``sharp/`` or a non-empty ``blurred/``.
    """
    out = Path(os.fspath(out_dir))
    found = [MANIFEST_NAME] if (out / MANIFEST_NAME).exists() else []
    for side in ("sharp", "blurred"):
        try:
            with os.scandir(out / side) as it:
                entries = sum(1 for _ in it)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if entries:
            found.append(f"{side}/ ({entries} entr{'y' if entries == 1 else 'ies'})")
    return found


def remove_previous(out_dir: PathLike) -> int:
    """Delete the pairs that ``out_dir/manifest.jsonl`` lists, then that manifest; nothing else.

    Each record's ``file`` is deleted from ``sharp/`` and ``blurred/`` (missing ones are fine), and
    sub-folders left empty by that are removed. Files the manifest does not list are kept. The whole
    manifest is checked before anything is deleted.

    Args:
        out_dir: An output folder of :func:`make_pairs`.

    Returns:
        The number of files deleted (the manifest included); 0 without a manifest.

    Raises:
        ValueError: A manifest line is not a record of :func:`make_pairs`, or names a file outside
            ``sharp/`` or ``blurred/`` (nothing is deleted then).
    """
    out = Path(os.fspath(out_dir))
    manifest = out / MANIFEST_NAME
    if not manifest.is_file():
        return 0
    targets: list[Path] = []
    with open(manifest, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                name = json.loads(line)["file"]
            except (ValueError, TypeError, KeyError):
                name = None
            if not isinstance(name, str) or not name:
                raise ValueError(f"{manifest} line {number}: not a make-pairs record (no \"file\"); "
                                 "delete the old pairs yourself")
            for side in ("sharp", "blurred"):
                folder = out / side
                target = folder / name
                if Path(name).is_absolute() or not _inside(target, os.path.realpath(folder)) \
                        or os.path.realpath(target) == os.path.realpath(folder):
                    raise ValueError(f"{manifest} line {number}: {name!r} is not a file under {side}/; "
                                     "delete the old pairs yourself")
                targets.append(target)
    removed = 0
    folders: set[Path] = set()
    for target in targets:
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        removed += 1
        folders.update(p for p in target.parents if p not in (out / "sharp", out / "blurred") and out in p.parents)
    manifest.unlink()
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):  # deepest first
        try:
            folder.rmdir()
        except OSError:  # not empty (holds files the manifest does not list) or gone
            pass
    return removed + 1


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
    and ``kernel`` the blur kernel as nested lists.

    Args:
        clean_dir: Folder of sharp images (scanned recursively, hidden files skipped, see
            :func:`blurkit.data.io.list_images`). If ``out_dir`` is inside it, it is not scanned.
        out_dir: Output folder (created; existing files of the same names are replaced, other files
            are kept: see ``replace``).
        blur: A registered blur name (see ``blurkit.BLURS.list()``) or a blur generator object.
        blur_options: Constructor options for a blur given by name, e.g. ``{"sigma": (0.5, 3.0)}``.
        seed: Run seed; each image's seed is :func:`image_seed` ``(seed, relative path)``.
        size: Resize to ``size x size`` (int) or ``(width, height)`` with ``cv2.INTER_AREA`` before
            blurring (the tutorial uses 128). ``None`` (default) keeps the full resolution.
        progress: Show a tqdm progress bar.
        replace: Before writing, delete the pairs of the earlier run in ``out_dir`` that its
            ``manifest.jsonl`` lists, and that manifest (:func:`remove_previous`), so no stale pair of
            it is left behind. Other files are never deleted. The inputs are checked first.

    Returns:
        A summary: ``written`` (pairs written), ``skipped`` (list of ``{"file", "reason"}`` for files
        that could not be read or blurred), ``ignored`` (files without an image suffix), ``total``
        (image files found), ``out_dir``, ``manifest``, ``blur`` (name, version, config), ``seed``,
        ``size`` and ``seconds``.

    Raises:
        FileNotFoundError: ``clean_dir`` does not exist.
        NotADirectoryError: ``clean_dir`` is not a folder.
        ValueError: No image files in ``clean_dir``, a bad ``size``/blur option, or (with
            ``replace``) an old manifest that does not list make-pairs records.
        blurkit.registry.UnknownComponentError: Unknown blur name.
    """
    import cv2
    from tqdm.auto import tqdm

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

    images, others = _scan_folder(clean, recursive=True)
    out_real = os.path.realpath(out)
    images = [p for p in images if not _inside(p, out_real)]
    others = [p for p in others if not _inside(p, out_real)]
    if not images:
        raise ValueError(
            f"no images found in {clean} (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)"
        )
    rels = [p.relative_to(clean).as_posix() for p in images]
    names = _output_names(rels)
    if replace:
        remove_previous(out)

    written = 0
    skipped: list[dict[str, str]] = []
    bar = tqdm(total=len(images), desc="make-pairs", unit="image", disable=not progress)
    try:
        with atomic_open(out / MANIFEST_NAME, "w") as manifest:
            for path, rel in zip(images, rels, strict=True):
                bar.update(1)
                try:
                    image = read_image(path)
                except (ImageReadError, OSError) as exc:
                    skipped.append({"file": rel, "reason": _reason(exc, path)})
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
                if blurred.shape != image.shape:
                    raise ValueError(
                        f"blur {description['name']!r} returned shape {blurred.shape} for an image of shape "
                        f"{image.shape} ({rel})"
                    )
                kernel = np.asarray(result["kernel"], dtype=np.float64)
                name = names[rel]
                write_image(out / "sharp" / name, image)
                write_image(out / "blurred" / name, blurred)
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
                manifest.write(json.dumps(record, default=_jsonable) + "\n")
                written += 1
    finally:
        bar.close()

    return {
        "written": written,
        "skipped": skipped,
        "ignored": [p.relative_to(clean).as_posix() for p in others],
        "total": len(images),
        "out_dir": str(out),
        "manifest": str(out / MANIFEST_NAME),
        "blur": description,
        "seed": int(seed),
        "size": list(target) if target else None,
        "seconds": round(time.perf_counter() - start, 3),
    }

"""``tf.data`` pipelines that make (blurred, sharp) training pairs on the fly.

Three kinds of training data go through the same pipeline:

* **sharp photos** (a folder, a file, a glob pattern or a list of paths, or an array of sharp images):
  every visit of an image cuts random patches, applies a random flip/rotation, and blurs each patch with
  the blur generator using freshly sampled parameters (seeded);
* **pairs of folders** ``(blurred_dir, sharp_dir)`` matched by relative path (``blurkit make-pairs``
  output, or a camera's blurred/sharp captures): aligned random patches from both, same augmentation;
* **pairs of arrays** ``(blurred, sharp)`` like the tutorial: same as pair folders, in memory.

Nothing is loaded whole into memory for file sources: files are decoded in parallel
(``num_parallel_calls=AUTOTUNE``), a few patches are cut per decoded image, and batches are prefetched.

Blurring a patch gives exactly what blurring the whole photo and then cropping would give: the patch is
cut with a margin of the kernel's radius around it (clipped to the photo), blurred with the generator's
border mode, and the margin is dropped. So the training data matches full-image inference.

All randomness flows from one ``seed``: the file order per epoch, the patch positions, the augmentation
and the blur parameters. Two runs with the same seed see the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Source", "resolve_source", "split", "make_dataset", "match_pairs", "to_channels"]


@dataclass
class Source:
    """Training data resolved to a list of items.

    Attributes:
        kind: ``"sharp"`` (blur on the fly) or ``"pairs"`` (blurred and sharp given).
        items: For files, paths (``"sharp"``) or ``(blurred, sharp)`` path pairs; for arrays, indices.
        sharp: In-memory sharp images (array sources), else None.
        blurred: In-memory blurred images (array pair sources), else None.
    """

    kind: str
    items: list
    sharp: Any = None
    blurred: Any = None

    def subset(self, idx: Sequence[int]) -> Source:
        return Source(self.kind, [self.items[i] for i in idx], self.sharp, self.blurred)

    def __len__(self) -> int:
        return len(self.items)


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or (isinstance(x, list) and x and isinstance(x[0], np.ndarray))


def _as_image_list(x: Any, what: str) -> list[np.ndarray]:
    if isinstance(x, np.ndarray):
        if x.ndim == 2 or (x.ndim == 3 and x.shape[-1] in (1, 3, 4) and x.shape[0] > 4):
            return [x]
        if x.ndim in (3, 4):
            return list(x)
        raise ValueError(f"{what}: expected (H,W), (H,W,C) or (N,H,W,C) images, got shape {x.shape}")
    return list(x)


def match_pairs(blurred_dir: str | Path, sharp_dir: str | Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Match files of two folders by relative path without extension.

    Returns:
        ``(pairs, problems)``: matched ``(blurred, sharp)`` paths, and one message per file that has no
        partner (it names the file).

    Raises:
        ValueError: No pair matched at all.
    """
    from blurkit.data.io import list_images

    bdir, sdir = Path(blurred_dir), Path(sharp_dir)
    blurred = {p.relative_to(bdir).with_suffix("").as_posix(): p for p in list_images(bdir)}
    sharp = {p.relative_to(sdir).with_suffix("").as_posix(): p for p in list_images(sdir)}
    pairs = [(blurred[k], sharp[k]) for k in sorted(blurred.keys() & sharp.keys())]
    problems = [f"{blurred[k]}: no sharp partner in {sdir}" for k in sorted(blurred.keys() - sharp.keys())]
    problems += [f"{sharp[k]}: no blurred partner in {bdir}" for k in sorted(sharp.keys() - blurred.keys())]
    if not pairs:
        raise ValueError(f"no matching file names between {bdir} and {sdir}")
    return pairs, problems


def resolve_source(data: Any) -> Source:
    """Turn what a user passes to ``fit``/``evaluate`` into a :class:`Source`.

    Args:
        data: A folder / file / glob / list of paths of sharp photos; an array (or list of arrays) of
            sharp images; a tuple ``(blurred_dir, sharp_dir)``; or a tuple ``(blurred, sharp)`` of arrays.
    """
    from blurkit.data.io import list_images

    if isinstance(data, tuple) and len(data) == 2:
        b, s = data
        if _is_array(b) and _is_array(s):
            bl, sl = _as_image_list(b, "blurred"), _as_image_list(s, "sharp")
            if len(bl) != len(sl):
                raise ValueError(f"blurred and sharp hold different numbers of images: {len(bl)} vs {len(sl)}")
            for i, (x, y) in enumerate(zip(bl, sl, strict=True)):
                if x.shape[:2] != y.shape[:2]:
                    raise ValueError(f"pair {i}: blurred {x.shape} and sharp {y.shape} differ in size")
            return Source("pairs", list(range(len(sl))), sharp=sl, blurred=bl)
        if isinstance(b, (str, Path)) and isinstance(s, (str, Path)) and Path(b).is_dir() and Path(s).is_dir():
            pairs, problems = match_pairs(b, s)
            for msg in problems:
                import warnings

                warnings.warn(f"skipping {msg}", stacklevel=3)
            return Source("pairs", pairs)
    if _is_array(data):
        return Source("sharp", list(range(len(_as_image_list(data, "data")))), sharp=_as_image_list(data, "data"))
    if isinstance(data, (str, Path, list, tuple)):
        return Source("sharp", list_images(data if not isinstance(data, tuple) else list(data)))
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
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    if fraction == 0 or n < 2:
        return list(range(n)), []
    k = min(n - 1, max(1, round(n * fraction)))
    perm = np.random.default_rng(seed).permutation(n)
    val = sorted(int(i) for i in perm[:k])
    train = sorted(int(i) for i in perm[k:])
    return train, val


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Float (H,W,C) image with ``channels`` channels: grey is repeated, RGB(A) is converted to luma."""
    if image.ndim == 2:
        image = image[..., None]
    c = image.shape[-1]
    if c == 4:
        image, c = image[..., :3], 3
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


class _PatchMaker:
    """The numpy side of the pipeline: decode, cut, augment and blur (runs in tf.numpy_function)."""

    def __init__(self, source: Source, blur, patch_size: int, patches: int, channels: int, augment: bool,
                 max_pixels: int | None) -> None:
        self.source, self.blur = source, blur
        self.patch, self.patches, self.channels = patch_size, patches, channels
        self.augment, self.max_pixels = augment, max_pixels
        self.unreadable: dict[int, str] = {}  # item index -> why it was skipped

    def _load_readable(self, index: int) -> tuple[np.ndarray | None, np.ndarray]:
        """:meth:`_load`, but an unreadable file is reported once and replaced by the next readable item.

        Raising inside ``tf.numpy_function`` would abort training with a TensorFlow traceback (and can
        leave TensorFlow's worker threads stuck at interpreter exit), so bad files are skipped instead,
        as ``blurkit deblur`` does.
        """
        import warnings

        from blurkit.data.io import ImageReadError

        n = len(self.source)
        for k in range(n):
            j = (index + k) % n
            if j in self.unreadable:
                continue
            try:
                return self._load(j)
            except (ImageReadError, OSError, ValueError) as exc:
                self.unreadable[j] = str(exc)
                warnings.warn(f"skipping unreadable training item: {exc}", stacklevel=2)
        raise ValueError(f"none of the {n} training items can be read")

    def _load(self, index: int) -> tuple[np.ndarray | None, np.ndarray]:
        """Return ``(blurred or None, sharp)`` native-dtype images for item ``index``."""
        from blurkit.data.io import read_image

        s = self.source
        kw = {} if self.max_pixels is None else {"max_pixels": self.max_pixels}
        item = s.items[index]
        if s.sharp is not None:  # arrays: items are indices into them (a subset keeps the full lists)
            return (s.blurred[item] if s.blurred is not None else None), s.sharp[item]
        if s.kind == "pairs":
            b, sh = read_image(item[0], **kw), read_image(item[1], **kw)
            if b.shape[:2] != sh.shape[:2]:
                raise ValueError(f"{item[0]} {b.shape[:2]} and {item[1]} {sh.shape[:2]} differ in size")
            return b, sh
        return None, read_image(item, **kw)

    def _prepare(self, img: np.ndarray) -> np.ndarray:
        from blurkit.data.io import to_float

        x = to_channels(to_float(img), self.channels)
        return x

    def _pad(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        ph, pw = max(0, self.patch - h), max(0, self.patch - w)
        if ph or pw:
            mode = "reflect" if h > ph and w > pw else "symmetric"
            img = np.pad(img, ((0, ph), (0, pw), (0, 0)), mode=mode)
        return img

    def __call__(self, index: np.int64, seed: np.int64) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(seed) & 0x7FFFFFFFFFFFFFFF)
        blurred, sharp = self._load_readable(int(index))
        sharp = self._pad(self._prepare(sharp))
        if blurred is not None:
            blurred = self._pad(self._prepare(blurred))
        h, w = sharp.shape[:2]
        n, p = self.patches, self.patch
        out_b = np.empty((n, p, p, self.channels), np.float32)
        out_s = np.empty((n, p, p, self.channels), np.float32)
        for i in range(n):
            y, x = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
            s = sharp[y : y + p, x : x + p]
            if blurred is not None:
                b = blurred[y : y + p, x : x + p]
            else:
                params = self.blur.sample(rng)
                k = self.blur.kernel(params)
                ry, rx = k.shape[0] // 2, k.shape[1] // 2
                if params.get("border") == "wrap" and (y < ry or x < rx or y + p + ry > h or x + p + rx > w):
                    # circular borders bring in the opposite side of the photo: wrap-pad, then blur the
                    # patch plus its margin (only the margin sees the region's own border handling)
                    pad = np.pad(sharp, ((ry, ry), (rx, rx), (0, 0)), mode="wrap")
                    region = self.blur.apply(pad[y : y + p + 2 * ry, x : x + p + 2 * rx], params, kernel=k, rng=rng)
                    b = region[ry : ry + p, rx : rx + p]
                else:
                    y0, x0 = max(0, y - ry), max(0, x - rx)
                    y1, x1 = min(h, y + p + ry), min(w, x + p + rx)
                    region = self.blur.apply(sharp[y0:y1, x0:x1], params, kernel=k, rng=rng)
                    b = region[y - y0 : y - y0 + p, x - x0 : x - x0 + p]
            if self.augment:
                b, s = _augment(b, s, int(rng.integers(_DIHEDRAL)))
            out_b[i], out_s[i] = b, s
        return out_b, out_s


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
    max_pixels: int | None = None,
):
    """Build a ``tf.data.Dataset`` of ``(blurred, sharp)`` float32 batches in [0, 1].

    Args:
        source: From :func:`resolve_source` (or one side of :func:`split`).
        blur: A blur generator (needed when ``source.kind == "sharp"``).
        patch_size: Side of the square patches; images smaller than that are reflect-padded up to it.
        batch_size: Patches per batch.
        patches_per_image: Patches cut from each decoded image on each visit.
        channels: 1 or 3; images are converted (grey repeated, colour to luma).
        augment: Random flips and 90-degree rotations (the 8 symmetries of the square).
        shuffle: Shuffle the files every epoch and the patches within a buffer.
        repeat: Repeat forever (training); otherwise one pass (validation).
        seed: Seeds everything; the same seed gives the same batches.
        max_pixels: Refuse images with more pixels than this (decompression-bomb guard).

    Returns:
        A dataset yielding ``(blurred, sharp)`` tensors of shape ``(batch, patch, patch, channels)``.
    """
    import tensorflow as tf

    if len(source) == 0:
        raise ValueError("no training images")
    if source.kind == "sharp" and blur is None:
        raise ValueError("sharp-only data needs a blur generator to make the blurred inputs")
    maker = _PatchMaker(source, blur, patch_size, patches_per_image, channels, augment, max_pixels)
    n = len(source)
    idx = tf.data.Dataset.range(n)
    if shuffle:
        idx = idx.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        idx = idx.repeat()
    seeds = tf.data.Dataset.random(seed=seed)
    ds = tf.data.Dataset.zip((idx, seeds))

    def cut(i, s):
        b, sh = tf.numpy_function(maker, [i, s], [tf.float32, tf.float32], stateful=False)
        shape = (patches_per_image, patch_size, patch_size, channels)
        return tf.ensure_shape(b, shape), tf.ensure_shape(sh, shape)

    ds = ds.map(cut, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.unbatch()
    if shuffle:
        ds = ds.shuffle(max(batch_size * 8, patches_per_image * 16), seed=seed + 1)
    ds = ds.batch(batch_size, drop_remainder=repeat)
    return ds.prefetch(tf.data.AUTOTUNE)


def steps_for(n_items: int, patches_per_image: int, batch_size: int) -> int:
    """Batches that visit every image once (an epoch)."""
    return max(1, math.ceil(n_items * patches_per_image / batch_size))

"""Run a model over an image of any size in overlapping tiles blended with a smooth window.

Tiles overlap by ``overlap`` pixels. Inside each overlap the two tiles are cross-faded with a raised-cosine
ramp whose weights add up to exactly 1; the outer quarter of the overlap on each side is given weight 0,
so the pixels a tile computes next to its own border (where the network saw padding instead of the
neighbouring image content) never reach the output.

Memory is bounded by the tile size, not the image size. The image is never copied or converted as a
whole: each tile is cut (and reflect-padded at the image's bottom and right edge) on its own and turned
into float32 by ``prepare``; results are accumulated in a band one tile high, and each band of rows is
finished (``finish``: e.g. rounded to uint8) and written into ``out`` as soon as no later tile touches it.
The blending weights are normalised per axis beforehand (the 2-D weight is the outer product of two 1-D
windows, so their sum is too), so there is no normalisation buffer and no division pass.

With ``fit=True`` (the default) the tile sides are fitted to the image: the fewest tiles of at most
``tile`` pixels that cover each side, each shrunk to the smallest size that still leaves ``overlap``
between neighbours. A 2048x1536 image at ``tile=512, overlap=64`` is computed on 1.27x its pixels instead
of 1.67x with fixed 512-pixel tiles (:func:`plan_tiles` gives the tiles; ``pixel_inflation`` the ratio).

Models that downsample (a U-Net with ``n`` stride-2 levels) are only shift-invariant by multiples of
``2**n``: a tile starting at an odd offset is computed on a different sampling grid than the whole image
and gives a visibly different result. ``align`` puts every tile start (and side) on a multiple of it (the
image is reflect-padded at the bottom and right to a multiple of ``align`` first, as the model itself does).

Examples:
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((300, 200, 3), dtype=np.float32)
    >>> out = tiled_apply(lambda batch: batch, image, tile=128, overlap=32)
    >>> bool(np.allclose(out, image, atol=1e-6))
    True
    >>> plan = plan_tiles(1536, 2048, tile=512, overlap=64, align=8)
    >>> (plan.tile_h, plan.tile_w, len(plan.ys), len(plan.xs)), round(plan.pixel_inflation, 2)
    ((432, 464, 4, 5), 1.27)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np

__all__ = ["tile_starts", "fit_tile", "plan_tiles", "TilePlan", "window_1d", "tiled_apply",
           "pad_bottom_right", "pad_to_multiple"]


def pad_bottom_right(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pad an (H, W, C) image at the bottom and right to ``(h, w)``: by reflection ("reflect", like the
    models' :class:`~blurkit.models.layers.PadToMultiple`) when the image is large enough, else
    "symmetric" (which works for any size, even one pixel)."""
    h0, w0 = image.shape[:2]
    ph, pw = max(0, h - h0), max(0, w - w0)
    if not (ph or pw):
        return image
    mode: Literal["reflect", "symmetric"] = "reflect" if h0 > ph and w0 > pw else "symmetric"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Pad an (H, W, C) image at the bottom and right so both sides are multiples of ``multiple``."""
    h, w = image.shape[:2]
    return pad_bottom_right(image, -(-h // multiple) * multiple, -(-w // multiple) * multiple)


def _pad_maps(rows: np.ndarray, cols: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The row and column indices of :func:`pad_bottom_right` to ``(h, w)`` of an image whose rows and
    columns are ``rows`` and ``cols``: the padding as index maps, without copying any pixel."""
    h0, w0 = len(rows), len(cols)
    ph, pw = max(0, h - h0), max(0, w - w0)
    if not (ph or pw):
        return rows, cols
    mode: Literal["reflect", "symmetric"] = "reflect" if h0 > ph and w0 > pw else "symmetric"
    return np.pad(rows, (0, ph), mode=mode), np.pad(cols, (0, pw), mode=mode)


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` overlap.

    With ``align > 1`` every start is a multiple of ``align``; ``length`` and ``tile`` must then be
    multiples of it too (the overlap is rounded up to a multiple of ``align``, but stays below ``tile``).

    Examples:
        >>> tile_starts(300, 128, 32)
        [0, 86, 172]
        >>> tile_starts(304, 128, 64, align=8)
        [0, 56, 120, 176]
    """
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    if align > 1:
        if length % align or tile % align:
            raise ValueError(f"length ({length}) and tile ({tile}) must be multiples of align ({align})")
        units = tile // align
        ov = min(-(-overlap // align), units - 1)
        return [s * align for s in tile_starts(length // align, units, ov)]
    if length <= tile:
        return [0]
    n = int(np.ceil((length - overlap) / (tile - overlap)))
    # spread the tiles evenly so every overlap is at least `overlap`
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def fit_tile(length: int, tile: int, overlap: int, align: int = 1) -> int:
    """The smallest tile side (a multiple of ``align``, at most ``tile``) that covers ``length`` with
    as few tiles as tiles of side ``tile`` would, at least ``overlap`` apart.

    ``length`` and ``tile`` must be multiples of ``align``. The pixels computed along this axis drop from
    ``n * tile`` to about ``length + (n - 1) * overlap``.

    Examples:
        >>> fit_tile(2048, 512, 64), fit_tile(2048, 512, 64, align=8), fit_tile(300, 512, 64)
        (461, 464, 300)
        >>> tile_starts(2048, 464, 64, align=8)
        [0, 400, 792, 1184, 1584]
    """
    if length <= tile:
        return length
    if align > 1:
        if length % align or tile % align:
            raise ValueError(f"length ({length}) and tile ({tile}) must be multiples of align ({align})")
        units = tile // align
        ov = min(-(-overlap // align), units - 1)
        return fit_tile(length // align, units, ov) * align
    n = -(-(length - overlap) // (tile - overlap))
    return min(tile, -(-(length + (n - 1) * overlap) // n))


class TilePlan(NamedTuple):
    """Where :func:`tiled_apply` puts its tiles (see :func:`plan_tiles`)."""

    height: int  #: image height after padding (to ``tile`` for fixed-size models, to a multiple of ``align``)
    width: int
    tile_h: int  #: tile side along y (every tile has the same shape)
    tile_w: int
    ys: list[int]  #: tile starts along y
    xs: list[int]
    overlap: int
    pixel_inflation: float  #: pixels computed per image pixel


def plan_tiles(h: int, w: int, *, tile: int, overlap: int, align: int = 1, pad_to_tile: bool = False,
               fit: bool = True) -> TilePlan:
    """The tiles :func:`tiled_apply` runs on an ``h x w`` image (same arguments).

    Examples:
        >>> p = plan_tiles(768, 1024, tile=512, overlap=64)
        >>> p.tile_h, p.tile_w, p.ys, p.xs, p.pixel_inflation
        (416, 384, [0, 352], [0, 320, 640], 1.21875)
        >>> plan_tiles(768, 1024, tile=512, overlap=64, fit=False).pixel_inflation  # 6 tiles of 512x512
        2.0
    """
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    hh, ww = (max(tile, h), max(tile, w)) if pad_to_tile else (h, w)
    align = max(1, int(align))
    if align > 1:
        tile = max(align, tile - tile % align)
        hh, ww = -(-hh // align) * align, -(-ww // align) * align
    overlap = min(overlap, tile - 1)
    if fit and not pad_to_tile:
        th, tw = fit_tile(hh, tile, overlap, align), fit_tile(ww, tile, overlap, align)
    else:
        th, tw = min(tile, hh), min(tile, ww)
    ys = tile_starts(hh, th, overlap, align) if hh > th else [0]
    xs = tile_starts(ww, tw, overlap, align) if ww > tw else [0]
    return TilePlan(hh, ww, th, tw, ys, xs, overlap, len(ys) * len(xs) * th * tw / (h * w))


def _ramp(n: int) -> np.ndarray:
    """Weights rising from 0 to 1 over ``n`` pixels; ``ramp + ramp[::-1] == 1``."""
    if n <= 0:
        return np.zeros(0, np.float32)
    margin = n // 4
    inner = n - 2 * margin
    t = (np.arange(inner) + 0.5) / inner
    up = 0.5 - 0.5 * np.cos(np.pi * t)
    return np.concatenate([np.zeros(margin), up, np.ones(margin)]).astype(np.float32)


def window_1d(starts: list[int], i: int, tile: int, length: int) -> np.ndarray:
    """Blending weights of tile ``i`` along one axis (its actual overlaps with its neighbours)."""
    size = min(tile, length)
    w = np.ones(size, np.float32)
    if i > 0:
        ov = starts[i - 1] + size - starts[i]
        w[:ov] = _ramp(ov)
    if i < len(starts) - 1:
        ov = starts[i] + size - starts[i + 1]
        w[size - ov :] = np.minimum(w[size - ov :], _ramp(ov)[::-1])
    return w


def _normalised_windows(starts: list[int], tile: int, length: int) -> list[np.ndarray]:
    """:func:`window_1d` of every tile, divided by their sum at each pixel: the weights add up to 1."""
    wins = [window_1d(starts, i, tile, length) for i in range(len(starts))]
    total = np.zeros(length, np.float32)
    for s, win in zip(starts, wins, strict=True):
        total[s : s + len(win)] += win
    total = np.maximum(total, np.float32(1e-12))
    return [win / total[s : s + len(win)] for s, win in zip(starts, wins, strict=True)]


def _index(m: np.ndarray, start: int, size: int, limit: int) -> slice | np.ndarray:
    """``m[start:start + size]`` as a slice when it is a plain run of indices (no padding in it)."""
    end = start + size
    if end <= limit and m[start] == start and m[end - 1] == end - 1:
        return slice(start, end)
    return m[start:end]


def tiled_apply(
    fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    *,
    tile: int,
    overlap: int,
    batch: int = 1,
    pad_to_tile: bool = False,
    align: int = 1,
    progress: Callable[[int], None] | None = None,
    fit: bool = True,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    finish: Callable[[np.ndarray], np.ndarray] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Apply ``fn`` (a batch ``(B,th,tw,C) -> (B,th,tw,C')`` function) to ``image`` (H,W,C) tile by tile.

    Args:
        fn: The model call, on float32 batches.
        image: The image (H, W, C), of any dtype when ``prepare`` converts it; else float (it is turned
            into float32 one tile at a time).
        tile: Largest tile side.
        overlap: Overlap between neighbouring tiles (the blend region).
        batch: Tiles run per call of ``fn``.
        pad_to_tile: Reflect-pad images smaller than ``tile`` up to it (models with a fixed input size);
            tiles are then exactly ``tile`` pixels square.
        align: Start every tile on a multiple of this (the downsampling factor of the model); the tile
            sides are multiples of it and the image is reflect-padded (tile by tile) at the bottom and
            right to a multiple of it.
        progress: Called after each call of ``fn`` with the number of tiles that call finished (an
            increment, as ``tqdm``'s ``update`` takes).
        fit: Fit the tile sides to the image (see :func:`fit_tile`); ignored with ``pad_to_tile``.
        prepare: Turns one tile cut from ``image`` (H', W', C) into the model's float32 input (default:
            a float32 copy).
        finish: Turns a band of finished float32 output rows (R, W, C') into the values written into
            ``out`` (it may work in place, and may change the number of channels to ``out``'s).
        out: Where to write the result, (H, W, C_out) of any dtype; by default a new float32 array.

    Returns:
        ``out``: the blended output, same height and width as ``image``.
    """
    h0, w0 = image.shape[:2]
    plan = plan_tiles(h0, w0, tile=tile, overlap=overlap, align=align, pad_to_tile=pad_to_tile, fit=fit)
    th, tw, ys, xs = plan.tile_h, plan.tile_w, plan.ys, plan.xs
    rows, cols = np.arange(h0), np.arange(w0)
    if pad_to_tile:
        rows, cols = _pad_maps(rows, cols, max(tile, h0), max(tile, w0))
    rows, cols = _pad_maps(rows, cols, plan.height, plan.width)
    wys, wxs = _normalised_windows(ys, th, plan.height), _normalised_windows(xs, tw, plan.width)
    if prepare is None:
        def prepare(crop: np.ndarray) -> np.ndarray:
            return crop.astype(np.float32)

    def cut(y: int, x: int) -> np.ndarray:
        r, c = _index(rows, y, th, h0), _index(cols, x, tw, w0)
        if isinstance(r, slice) and isinstance(c, slice):
            return prepare(image[r, c])
        if isinstance(r, slice):
            return prepare(image[r][:, c])
        return prepare(image[r][:, c] if isinstance(c, slice) else image[np.ix_(r, c)])

    state: dict = {"acc": None, "top": 0, "out": out}  # acc: rows [top, top + th) of the padded output

    def emit(stop: int) -> None:
        """Finish the rows [top, stop) of the band and drop them."""
        acc, top = state["acc"], state["top"]
        end = min(stop, h0)
        if end > top:
            block = acc[: end - top, :w0]
            state["out"][top:end] = block if finish is None else finish(block)
        keep = top + th - stop
        if keep > 0:
            acc[:keep] = acc[stop - top : stop - top + keep]
        acc[max(keep, 0) :] = 0.0
        state["top"] = stop

    def add(iy: int, ix: int, res: np.ndarray) -> None:
        if state["acc"] is None:
            state["acc"] = np.zeros((th, plan.width, res.shape[-1]), np.float32)
            if state["out"] is None:
                state["out"] = np.empty((h0, w0, res.shape[-1]), np.float32)
        if ys[iy] != state["top"]:  # a new row of tiles: everything above its start is final
            emit(ys[iy])
        weight = np.multiply.outer(wys[iy], wxs[ix])[..., None]
        state["acc"][:, xs[ix] : xs[ix] + tw] += res * weight

    pending: list[tuple[int, int]] = []

    def flush() -> None:
        crops = [cut(ys[iy], xs[ix]) for iy, ix in pending]
        res = np.asarray(fn(crops[0][None] if len(crops) == 1 else np.stack(crops)))
        for (iy, ix), r in zip(pending, res, strict=True):
            add(iy, ix, r)
        if progress is not None:
            progress(len(pending))
        pending.clear()

    for iy in range(len(ys)):
        for ix in range(len(xs)):
            pending.append((iy, ix))
            if len(pending) == batch:
                flush()
    if pending:
        flush()
    emit(plan.height)
    return state["out"]

"""Run a model over an image of any size in overlapping tiles blended with a smooth window.

Tiles overlap by ``overlap`` pixels. Inside each overlap the two tiles are cross-faded with a raised-cosine
ramp whose weights add up to exactly 1; the outer quarter of the overlap on each side is given weight 0,
so the pixels a tile computes next to its own border (where the network saw padding instead of the
neighbouring image content) never reach the output. Memory is bounded by the tile size and the number of
tiles run at once, not by the image size.

Models that downsample (a U-Net with ``n`` stride-2 levels) are only shift-invariant by multiples of
``2**n``: a tile starting at an odd offset is computed on a different sampling grid than the whole image
and gives a visibly different result. ``align`` puts every tile start on a multiple of it (the image is
reflect-padded at the bottom and right to a multiple of ``align`` first, as the model itself does).

Examples:
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((300, 200, 3), dtype=np.float32)
    >>> out = tiled_apply(lambda batch: batch, image, tile=128, overlap=32)
    >>> bool(np.allclose(out, image, atol=1e-6))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

__all__ = ["tile_starts", "window_1d", "tiled_apply", "pad_bottom_right", "pad_to_multiple"]


def pad_bottom_right(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pad an (H, W, C) image at the bottom and right to ``(h, w)``: by reflection ("reflect", like the
    models' :class:`~blurkit.models.layers.PadToMultiple`) when the image is large enough, else
    "symmetric" (which works for any size, even one pixel)."""
    h0, w0 = image.shape[:2]
    ph, pw = max(0, h - h0), max(0, w - w0)
    if not (ph or pw):
        return image
    mode = "reflect" if h0 > ph and w0 > pw else "symmetric"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Pad an (H, W, C) image at the bottom and right so both sides are multiples of ``multiple``."""
    h, w = image.shape[:2]
    return pad_bottom_right(image, -(-h // multiple) * multiple, -(-w // multiple) * multiple)


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


def _tiles(h: int, w: int, tile: int, overlap: int, align: int = 1) -> Iterator[tuple[int, int, np.ndarray]]:
    ys, xs = tile_starts(h, tile, overlap, align), tile_starts(w, tile, overlap, align)
    for iy, y in enumerate(ys):
        wy = window_1d(ys, iy, tile, h)
        for ix, x in enumerate(xs):
            yield y, x, np.outer(wy, window_1d(xs, ix, tile, w))


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
) -> np.ndarray:
    """Apply ``fn`` (a batch ``(B,t,t,C) -> (B,t,t,C)`` function) to ``image`` (H,W,C) tile by tile.

    Args:
        fn: The model call, on float32 batches.
        image: Float32 image (H, W, C).
        tile: Tile side.
        overlap: Overlap between neighbouring tiles (the blend region).
        batch: Tiles run per call of ``fn``.
        pad_to_tile: Reflect-pad images smaller than ``tile`` up to it (models with a fixed input size).
        align: Start every tile on a multiple of this (the downsampling factor of the model); the tile
            side is rounded down to a multiple of it and the image reflect-padded at the bottom and right
            to a multiple of it.
        progress: Called with the number of tiles finished after each call of ``fn``.

    Returns:
        The blended output, same shape as ``image``.
    """
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
    h0, w0 = image.shape[:2]
    if pad_to_tile and (h0 < tile or w0 < tile):
        image = pad_bottom_right(image, max(tile, h0), max(tile, w0))
    align = max(1, int(align))
    if align > 1:
        tile = max(align, tile - tile % align)
        image = pad_to_multiple(image, align)
    h, w, c = image.shape
    out = np.zeros((h, w, c), np.float32)
    norm = np.zeros((h, w, 1), np.float32)
    pending: list[tuple[int, int, np.ndarray]] = []

    def flush() -> None:
        crops = np.stack([image[y : y + tile, x : x + tile] for y, x, _ in pending]).astype(np.float32)
        res = np.asarray(fn(crops))
        for (y, x, wt), r in zip(pending, res, strict=True):
            out[y : y + tile, x : x + tile] += r * wt[..., None]
            norm[y : y + tile, x : x + tile] += wt[..., None]
        if progress is not None:
            progress(len(pending))
        pending.clear()

    for t in _tiles(h, w, tile, min(overlap, tile - 1), align):
        pending.append(t)
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    out /= np.maximum(norm, 1e-12)
    return out[:h0, :w0]

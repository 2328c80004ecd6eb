"""Run a model over an image of any size in overlapping tiles blended with a smooth window.

Tiles overlap by ``overlap`` pixels. Inside each overlap the two tiles are cross-faded with a raised-cosine
ramp whose weights add up to exactly 1; the outer quarter of the overlap on each side is given weight 0,
so the pixels a tile computes next to its own border (where the network saw padding instead of the
neighbouring image content) never reach the output. Memory is bounded by the tile size and the number of
tiles run at once, not by the image size.

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

__all__ = ["tile_starts", "window_1d", "tiled_apply"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` overlap.

    Examples:
        >>> tile_starts(300, 128, 32)
        [0, 86, 172]
    """
    if tile <= overlap:
        raise ValueError(f"tile ({tile}) must be larger than overlap ({overlap})")
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


def _tiles(h: int, w: int, tile: int, overlap: int) -> Iterator[tuple[int, int, np.ndarray]]:
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
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
        progress: Called with the number of tiles finished after each call of ``fn``.

    Returns:
        The blended output, same shape as ``image``.
    """
    h0, w0 = image.shape[:2]
    if pad_to_tile and (h0 < tile or w0 < tile):
        ph, pw = max(0, tile - h0), max(0, tile - w0)
        mode = "reflect" if h0 > ph and w0 > pw else "symmetric"
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)
    h, w, c = image.shape
    out = np.zeros((h, w, c), np.float32)
    norm = np.zeros((h, w, 1), np.float32)
    pending: list[tuple[int, int, np.ndarray]] = []

    def flush() -> None:
        crops = np.stack([image[y : y + tile, x : x + tile] for y, x, _ in pending]).astype(np.float32)
        res = np.asarray(fn(crops))
        for (y, x, wt), r in zip(pending, res):
            out[y : y + tile, x : x + tile] += r * wt[..., None]
            norm[y : y + tile, x : x + tile] += wt[..., None]
        if progress is not None:
            progress(len(pending))
        pending.clear()

    for t in _tiles(h, w, tile, overlap):
        pending.append(t)
        if len(pending) == batch:
            flush()
    if pending:
        flush()
    out /= np.maximum(norm, 1e-12)
    return out[:h0, :w0]

"""Choosing a preset per photo: clean 8-bit file, or one with sensor noise or JPEG artefacts.

``gaussian-v1`` was trained on blurred photos rounded to 8 bits and nothing else; ``gaussian-v1-noisy`` also
on noisy and JPEG-compressed ones. Each loses where the other wins (README, "Noisy and compressed photos"),
so ``blurkit deblur`` without a model file reads two signs off each photo and picks:

* :func:`noise_level` — the standard deviation of white noise in the photo, from the quietest places of its
  finest wavelet detail (a blurred photo has almost no detail left there, so what remains is noise);
* :func:`blockiness` — how much JPEG's 8x8 block grid shows: the step across block edges in flat places,
  over the same step at the seven other offsets.

:func:`choose_preset` returns ``gaussian-v1-noisy`` when either sign is above its threshold
(:data:`NOISE_THRESHOLD`, :data:`BLOCK_THRESHOLD`), else the default. The thresholds were chosen for the best
mean PSNR of the chosen preset on 384-px crops of 24 of the training photos (every eighth), blurred with sigma
0.5 to 3, clean or degraded as ``benchmarks/robustness.py`` does (``python benchmarks/auto_thresholds.py
--data ../shared/data/train --every 8 --search``); the model card of ``gaussian-v1-noisy`` gives the results on
the validation photos and the second test set, where nothing was chosen.

Both measures use numpy only and take any image blurkit takes: ``(H, W)`` or ``(H, W, C)``, uint8, uint16 or
float in [0, 1]; an alpha channel is ignored.

Examples:
    >>> import numpy as np
    >>> from blurkit.presets.auto import choose_preset, noise_level
    >>> rng = np.random.default_rng(0)
    >>> flat = np.full((128, 128, 3), 0.5, np.float32)
    >>> round(noise_level(flat + rng.normal(0, 0.02, flat.shape).astype(np.float32)), 3)
    0.02
    >>> choose_preset(flat), choose_preset(flat + rng.normal(0, 0.02, flat.shape))
    ('gaussian-v1', 'gaussian-v1-noisy')
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["NOISE_THRESHOLD", "BLOCK_THRESHOLD", "NOISY_PRESET", "noise_level", "blockiness", "choose_preset"]

#: Above this :func:`noise_level` (standard deviation, fraction of the data range; 1.1 levels of 255) a photo
#: goes to :data:`NOISY_PRESET`.
NOISE_THRESHOLD = 0.0043
#: Above this :func:`blockiness` (levels of 255) a photo goes to :data:`NOISY_PRESET`.
BLOCK_THRESHOLD = 0.16
#: The preset for photos with noise or JPEG artefacts.
NOISY_PRESET = "gaussian-v1-noisy"

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_TILE = 4  # Haar coefficients per tile side: 8x8 pixels
_QUANTILE = 10  # percent: the quietest tiles
# The 10th percentile of the RMS of 16 standard normal values (sqrt(chi2_16.ppf(0.1) / 16)), so that pure
# white noise of standard deviation s reads s.
_Q10_RMS = 0.7629
_FLAT = 2.0  # levels of 255: "flat" where the neighbouring steps are smaller
_BUDGET = 1 << 21  # pixels read at most (2.1 MP): larger photos are read in tiles (time and memory bounded)
_SAMPLE = 256  # their side


def _image(image: Any) -> np.ndarray:
    """The array as ``(H, W, C)``, C 1 or 3 (alpha dropped; a view), after checking shape and dtype."""
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W) or (H, W, C) image with 1-4 channels, got shape {x.shape}")
    if x.dtype.kind in "iub" and x.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected a uint8, uint16 or float image, got dtype {x.dtype}")
    return x[..., :-1] if x.shape[-1] in (2, 4) else x


def _float(x: np.ndarray, top: float = 1.0) -> np.ndarray:
    """float32 in [0, ``top``] (uint8 at ``top`` 255: the values unchanged)."""
    if x.dtype in (np.uint8, np.uint16):
        peak = 255 if x.dtype == np.uint8 else 65535
        return x.astype(np.float32) if peak == top else x.astype(np.float32) * np.float32(top / peak)
    return np.asarray(x, np.float32) * np.float32(top) if top != 1 else np.asarray(x, np.float32)


def _regions(x: np.ndarray) -> list[np.ndarray]:
    """What the measures read: the whole image up to :data:`_BUDGET` pixels, else tiles of 256 px spread
    over it on a grid, :data:`_BUDGET` pixels in all, each starting on a multiple of 16 px (so that JPEG's
    8x8 blocks and 16x16 colour blocks stay aligned)."""
    h, w = x.shape[:2]
    if h * w <= _BUDGET:
        return [x]
    th, tw = min(_SAMPLE, h), min(_SAMPLE, w)
    n = _BUDGET // (th * tw)
    ny = max(1, min(h // th, n, round(math.sqrt(n * h / w))))
    nx = max(1, min(w // tw, n // ny))
    tops = sorted({int(t) // 16 * 16 for t in np.linspace(0, h - th, ny)})
    lefts = sorted({int(v) // 16 * 16 for v in np.linspace(0, w - tw, nx)})
    return [x[t : t + th, v : v + tw] for t in tops for v in lefts]


def _tile_rms(plane: np.ndarray) -> np.ndarray:
    """The finest diagonal Haar detail of one plane (standard deviation s for white noise of s), its RMS per
    8x8-pixel tile."""
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    p = plane[:h, :w]
    hh = (p[0::2, 0::2] - p[0::2, 1::2] - p[1::2, 0::2] + p[1::2, 1::2]) / 2
    th, tw = hh.shape[0] // _TILE, hh.shape[1] // _TILE
    tiles = hh[: th * _TILE, : tw * _TILE].reshape(th, _TILE, tw, _TILE)
    return np.sqrt(np.mean(np.square(tiles, dtype=np.float64), axis=(1, 3))).ravel()


def _quiet(planes: list[np.ndarray]) -> float:
    """The noise standard deviation of the planes: the quietest tiles' level (10th percentile of
    :func:`_tile_rms`), scaled so that white noise reads its own deviation."""
    rms = np.concatenate([_tile_rms(p) for p in planes])
    return float(np.percentile(rms, _QUANTILE)) / _Q10_RMS if rms.size else 0.0


def noise_level(image: Any) -> float:
    """Estimate the standard deviation of the white noise in an image, as a fraction of the data range.

    Read off the finest diagonal Haar wavelet detail, in the 10 % quietest 8x8 tiles (a robust estimate in
    the spirit of Donoho's median absolute deviation; blur leaves almost no detail at that scale, so what
    remains is noise). For a colour image the estimate must show both in the luma and in the two colour
    differences (R-G, B-G): fine texture is mostly the same in all three channels, sensor noise is not, so a
    textured but clean photo reads low. Grey images, or RGB ones whose channels are equal, use the one plane.
    Photos above 2 megapixels are read in 32 tiles of 256x256 px spread over them.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``; uint8, uint16 or float in [0, 1]; alpha ignored.

    Returns:
        The per-channel noise standard deviation (0 for images under 16 px on a side). 8-bit rounding alone
        reads about 0.001.

    Raises:
        ValueError: Not an image array.
    """
    raw = _image(image)
    if min(raw.shape[:2]) < 16:
        return 0.0
    parts = [_float(r) for r in _regions(raw)]
    if raw.shape[-1] == 1 or all(np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2])
                                 for x in parts):
        return _quiet([x[..., 0] for x in parts])
    luma = _quiet([x @ _LUMA for x in parts]) / float(np.sqrt(np.sum(_LUMA**2)))  # white noise s: s
    chroma = (_quiet([(x[..., 0] - x[..., 1]) / np.sqrt(2) for x in parts])
              + _quiet([(x[..., 2] - x[..., 1]) / np.sqrt(2) for x in parts])) / 2
    return min(luma, chroma)


def blockiness(image: Any) -> float:
    """How strongly JPEG's 8x8 block grid shows in an image, in levels of 255 (about 0 without it).

    In flat places (both neighbouring steps under 2 levels), the step across each column boundary minus
    the mean of its two neighbouring steps is averaged per offset modulo 8; the score is that average at
    the offset of JPEG's block edges (between columns 7 and 8, 15 and 16, ...) minus the median at the seven
    other offsets; the same for rows; the smaller of the two, as JPEG's grid shows both ways (a pattern in one
    direction, such as interlaced rows, does not count). Texture raises every offset alike, so only a grid
    that starts at the image's corner counts: a JPEG decoded as it is, not one cropped or resized after.
    Photos above 2 megapixels are read in 32 tiles of 256x256 px spread over them, on the grid.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``; uint8, uint16 or float in [0, 1]; alpha ignored (colour images
            are read as luma, as JPEG codes them).

    Returns:
        The score; 0 for images under 32 px on a side.

    Raises:
        ValueError: Not an image array.
    """
    raw = _image(image)
    if min(raw.shape[:2]) < 32:
        return 0.0
    sums, counts = np.zeros((2, 8)), np.zeros((2, 8))
    for part in _regions(raw):
        x = _float(part, 255.0)
        g = x @ _LUMA if x.shape[-1] == 3 else x[..., 0]
        for k, a in enumerate((g, g.T)):
            d = np.abs(np.diff(a, axis=1))  # d[:, j]: the step between columns j and j + 1
            n = (d.shape[1] - 2) // 8 * 8
            for o in range(8):
                j = np.arange(1 + o, 1 + n, 8)
                step, beside = d[:, j], (d[:, j - 1] + d[:, j + 1]) / 2
                excess = (step - beside)[beside < _FLAT]
                sums[k, o] += float(np.sum(excess, dtype=np.float64))
                counts[k, o] += excess.size
    per_offset = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    edge = per_offset[:, 6]  # j = 7 + 8k: between columns 7 and 8
    others = np.median(np.delete(per_offset, 6, axis=1), axis=1)
    return float(np.min(edge - others))


def choose_preset(image: Any) -> str:
    """The shipped preset for this photo: :data:`NOISY_PRESET` when :func:`noise_level` or
    :func:`blockiness` is above its threshold, else the default preset.

    Args:
        image: The photo as it will be given to the preset (before any restoration).

    Returns:
        A preset name for :meth:`blurkit.Deblurrer.from_preset`.
    """
    from blurkit.presets import DEFAULT_PRESET

    if noise_level(image) > NOISE_THRESHOLD or blockiness(image) > BLOCK_THRESHOLD:
        return NOISY_PRESET
    return DEFAULT_PRESET

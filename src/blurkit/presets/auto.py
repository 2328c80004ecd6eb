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


def _planes(image: Any, top: float = 1.0) -> np.ndarray:
    """``(H, W, C)`` float32 in [0, ``top``] without alpha; C is 1 or 3 (uint8 at ``top`` 255: unchanged)."""
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an (H, W) or (H, W, C) image with 1-4 channels, got shape {x.shape}")
    if x.shape[-1] in (2, 4):
        x = x[..., :-1]  # alpha
    if x.dtype in (np.uint8, np.uint16):
        peak = 255 if x.dtype == np.uint8 else 65535
        return x.astype(np.float32) if peak == top else x.astype(np.float32) * np.float32(top / peak)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        raise ValueError(f"expected a uint8, uint16 or float image, got dtype {x.dtype}")
    return np.asarray(x, np.float32) * np.float32(top) if top != 1 else np.asarray(x, np.float32)


def _quiet_rms(plane: np.ndarray) -> float:
    """The noise standard deviation of one plane: the finest diagonal Haar detail, RMS per 8x8-pixel tile,
    the quietest tiles' level (10th percentile), scaled so that white noise reads its own deviation."""
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    p = plane[:h, :w]
    hh = (p[0::2, 0::2] - p[0::2, 1::2] - p[1::2, 0::2] + p[1::2, 1::2]) / 2  # std s for white noise of s
    th, tw = hh.shape[0] // _TILE, hh.shape[1] // _TILE
    if th * tw == 0:
        return 0.0
    tiles = hh[: th * _TILE, : tw * _TILE].reshape(th, _TILE, tw, _TILE)
    rms = np.sqrt(np.mean(np.square(tiles, dtype=np.float64), axis=(1, 3)))
    return float(np.percentile(rms, _QUANTILE)) / _Q10_RMS


def noise_level(image: Any) -> float:
    """Estimate the standard deviation of the white noise in an image, as a fraction of the data range.

    Read off the finest diagonal Haar wavelet detail, in the 10 % quietest 8x8 tiles (a robust estimate in
    the spirit of Donoho's median absolute deviation; blur leaves almost no detail at that scale, so what
    remains is noise). For a colour image the estimate must show both in the luma and in the two colour
    differences (R-G, B-G): fine texture is mostly the same in all three channels, sensor noise is not, so a
    textured but clean photo reads low. Grey images, or RGB ones whose channels are equal, use the one plane.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``; uint8, uint16 or float in [0, 1]; alpha ignored.

    Returns:
        The per-channel noise standard deviation (0 for images under 16 px on a side). 8-bit rounding alone
        reads about 0.001.

    Raises:
        ValueError: Not an image array.
    """
    x = _planes(image)
    if min(x.shape[:2]) < 16:
        return 0.0
    if x.shape[-1] == 1 or (np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2])):
        return _quiet_rms(x[..., 0])
    luma = _quiet_rms(x @ _LUMA) / float(np.sqrt(np.sum(_LUMA**2)))  # white noise of s per channel: s
    chroma = (_quiet_rms((x[..., 0] - x[..., 1]) / np.sqrt(2))
              + _quiet_rms((x[..., 2] - x[..., 1]) / np.sqrt(2))) / 2
    return min(luma, chroma)


def blockiness(image: Any) -> float:
    """How strongly JPEG's 8x8 block grid shows in an image, in levels of 255 (about 0 without it).

    In flat places (both neighbouring steps under 2 levels), the step across each column boundary minus
    the mean of its two neighbouring steps is averaged per offset modulo 8; the score is that average at
    the offset of JPEG's block edges (between columns 7 and 8, 15 and 16, ...) minus the median at the seven
    other offsets; the same for rows; the smaller of the two, as JPEG's grid shows both ways (a pattern in one
    direction, such as interlaced rows, does not count). Texture raises every offset alike, so only a grid
    that starts at the image's corner counts: a JPEG decoded as it is, not one cropped or resized after.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``; uint8, uint16 or float in [0, 1]; alpha ignored (colour images
            are read as luma, as JPEG codes them).

    Returns:
        The score; 0 for images under 32 px on a side.

    Raises:
        ValueError: Not an image array.
    """
    x = _planes(image, 255.0)
    if min(x.shape[:2]) < 32:
        return 0.0
    g = x @ _LUMA if x.shape[-1] == 3 else x[..., 0]
    scores = []
    for a in (g, g.T):
        d = np.abs(np.diff(a, axis=1))  # d[:, j]: the step between columns j and j + 1
        n = (d.shape[1] - 2) // 8 * 8
        per_offset = []
        for o in range(8):
            j = np.arange(1 + o, 1 + n, 8)
            step, beside = d[:, j], (d[:, j - 1] + d[:, j + 1]) / 2
            flat = beside < _FLAT
            per_offset.append(float(np.mean((step - beside)[flat])) if flat.any() else 0.0)
        edge = per_offset[6]  # j = 7 + 8k: between columns 7 and 8
        scores.append(edge - float(np.median(per_offset[:6] + per_offset[7:])))
    return float(min(scores))


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

"""Linear motion blur: an anti-aliased line segment of sampled length and direction.

Border convention: ``border="reflect"`` (default) is :func:`numpy.pad`'s "reflect" (``dcb|abcd|cba``,
``cv2.BORDER_REFLECT_101``); see :mod:`blurkit.blurs.functional` for the others.

Examples:
    >>> import numpy as np
    >>> from blurkit.blurs import MotionBlur
    >>> out = MotionBlur(length=5, angle=0)(np.zeros((16, 16), np.uint8), seed=0)
    >>> out["kernel"].shape
    (1, 5)
"""

from __future__ import annotations

import math

import numpy as np

from blurkit.blurs.base import Blur, Range, check_range, draw, jsonable
from blurkit.blurs.functional import MAX_KERNEL_SIZE, _check_size, _offsets, motion_kernel
from blurkit.registry import register_blur

__all__ = ["MotionBlur"]


@register_blur("motion")
class MotionBlur(Blur):
    """Uniform linear motion blur (camera shake along a straight line).

    The kernel is a ``length`` x 1 pixel segment through the centre, each pixel weighted by the area it
    covers (supersampled), so lengths are sub-pixel accurate and the image is not shifted.

    Args:
        length: Length of the motion in pixels, >= 1, fixed or ``(low, high)``.
        angle: Direction in degrees, counter-clockwise as displayed (0 horizontal, 90 vertical), fixed
            or range.
        **kwargs: ``border``, ``noise``, ``shot``, ``quantize``, ``jpeg``, ``seed``; see :class:`~blurkit.blurs.base.Blur`.

    Examples:
        >>> blur = MotionBlur(length=(3, 15), angle=(0, 180), seed=0)
        >>> k = blur.kernel(blur.sample())
        >>> bool(abs(k.sum() - 1) < 1e-12), k.shape[0] % 2, k.shape[1] % 2
        (True, 1, 1)
    """

    name = "motion"
    version = 1

    def __init__(self, length: Range = (3, 15), angle: Range = (0, 180), **kwargs) -> None:
        super().__init__(**kwargs)
        self.length = check_range("length", length, minimum=1)
        self.angle = check_range("angle", angle)
        # the largest kernel it can draw, checked now: a file's length of 1e7 loaded, then failed on every
        # image without naming the file. Over its angles, not on an axis only: length 718 draws a 509-px
        # kernel at 45 degrees, 717 px at 0 (review-hm 5)
        longest = float(max(np.atleast_1d(self.length)))
        angles = np.atleast_1d(self.angle)
        _check_size(_largest_kernel(longest, float(min(angles)), float(max(angles))), f"length {longest:g}")

    def sample_kernel(self, rng: np.random.Generator) -> dict:
        return {"length": draw(rng, self.length), "angle": draw(rng, self.angle)}

    def kernel(self, params: dict) -> np.ndarray:
        return motion_kernel(params["length"], params.get("angle", 0.0))

    def get_config(self) -> dict:
        return {"length": jsonable(self.length), "angle": jsonable(self.angle), **super().get_config()}


def _kernel_side(length: float, angle: float) -> int:
    """The larger side of ``motion_kernel(length, angle)``, by its formula, without drawing it: its frame, less
    each empty border it drops, found by sampling the frame's outer columns and rows only."""
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    half = length / 2
    rx = max(math.ceil(round(half * abs(c) + 0.5 * abs(s) + 0.5, 9)) - 1, 0)
    ry = max(math.ceil(round(half * abs(s) + 0.5 * abs(c) + 0.5, 9)) - 1, 0)
    if 2 * max(rx, ry) - 1 > MAX_KERNEL_SIZE:  # too large whatever border it drops: not sampled (1e7 px)
        return 2 * max(rx, ry) + 1
    o = _offsets()

    def touched(xs: np.ndarray, ys: np.ndarray) -> bool:
        x, y = np.meshgrid(xs, ys)
        return bool(((np.abs(x * c + y * s) <= half) & (np.abs(-x * s + y * c) <= 0.5)).any())

    ys = (np.arange(-ry, ry + 1)[:, None] + o).reshape(-1)
    xs = (np.arange(-rx, rx + 1)[:, None] + o).reshape(-1)
    while ry > 0 and not touched(xs, ry + o):  # motion_kernel's top row (and, point-symmetric, bottom)
        ry -= 1
    while rx > 0 and not touched(-rx + o, ys):  # its left column (and right)
        rx -= 1
    return 2 * max(rx, ry) + 1


def _largest_kernel(length: float, low: float, high: float) -> int:
    """The largest :func:`_kernel_side` of a line of ``length`` at an angle from ``low`` to ``high`` degrees.

    The line reaches farthest along x (``half * |cos t| + 0.5 * |sin t|``) and y (its twin) at ``t = k * 90 +-
    atan(0.5 / half)`` degrees, next to the axes, so those inside the range and the range's ends are the
    angles tried (the kernel repeats every 180 degrees)."""
    off = math.degrees(math.atan2(0.5, length / 2))
    if high - low >= 180:
        low, high = -off, 180 - off
    tries = {low, high}
    for k in range(math.floor(low / 90) - 1, math.ceil(high / 90) + 2):
        tries.update(a for a in (k * 90 - off, k * 90, k * 90 + off) if low <= a <= high)
    return max(_kernel_side(length, a) for a in tries)

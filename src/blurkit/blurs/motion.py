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
from blurkit.blurs.functional import _check_size, motion_kernel
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
        # the longest kernel it can draw, checked now (its side on an axis, the largest for that length): a
        # file's length of 1e7 loaded, then failed on every image without naming the file
        longest = max(np.atleast_1d(self.length))
        _check_size(2 * math.ceil(round(longest / 2 + 0.5, 9)) - 1, f"length {longest:g}")

    def sample_kernel(self, rng: np.random.Generator) -> dict:
        return {"length": draw(rng, self.length), "angle": draw(rng, self.angle)}

    def kernel(self, params: dict) -> np.ndarray:
        return motion_kernel(params["length"], params.get("angle", 0.0))

    def get_config(self) -> dict:
        return {"length": jsonable(self.length), "angle": jsonable(self.angle), **super().get_config()}

"""Defocus blur: an anti-aliased disk (pillbox) of sampled radius.

Border convention: ``border="reflect"`` (default) is :func:`numpy.pad`'s "reflect" (``dcb|abcd|cba``,
``cv2.BORDER_REFLECT_101``); see :mod:`blurkit.blurs.functional` for the others.

Examples:
    >>> import numpy as np
    >>> from blurkit.blurs import DefocusBlur
    >>> DefocusBlur(radius=3.0)(np.zeros((16, 16)), seed=0)["kernel"].shape
    (7, 7)
"""

from __future__ import annotations

import math

import numpy as np

from blurkit.blurs.base import Blur, Range, check_range, draw, jsonable
from blurkit.blurs.functional import _check_size, disk_kernel
from blurkit.registry import register_blur

__all__ = ["DefocusBlur"]


@register_blur("defocus")
class DefocusBlur(Blur):
    """Out-of-focus blur: a uniform disk, its boundary pixels weighted by covered area.

    Args:
        radius: Disk radius in pixels, >= 0, fixed or ``(low, high)``.
        **kwargs: ``border``, ``noise``, ``shot``, ``quantize``, ``jpeg``, ``seed``; see :class:`~blurkit.blurs.base.Blur`.

    Examples:
        >>> blur = DefocusBlur(radius=(1.0, 5.0), seed=0)
        >>> p = blur.sample()
        >>> 1.0 <= p["radius"] < 5.0, bool(abs(blur.kernel(p).sum() - 1) < 1e-12)
        (True, True)
    """

    name = "defocus"
    version = 1

    def __init__(self, radius: Range = (1.0, 5.0), **kwargs) -> None:
        super().__init__(**kwargs)
        self.radius = check_range("radius", radius, minimum=0)
        widest = max(np.atleast_1d(self.radius))  # the largest kernel it can draw, checked now
        _check_size(2 * max(math.ceil(widest + 0.5) - 1, 0) + 1, f"radius {widest:g}")

    def sample_kernel(self, rng: np.random.Generator) -> dict:
        return {"radius": draw(rng, self.radius)}

    def kernel(self, params: dict) -> np.ndarray:
        return disk_kernel(params["radius"])

    def get_config(self) -> dict:
        return {"radius": jsonable(self.radius), **super().get_config()}

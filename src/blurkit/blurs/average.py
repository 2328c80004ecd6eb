"""Average (box) blur of a sampled odd size.

Border convention: ``border="reflect"`` (default) is :func:`numpy.pad`'s "reflect" (``dcb|abcd|cba``,
``cv2.BORDER_REFLECT_101``); see :mod:`blurkit.blurs.functional` for the others.

Examples:
    >>> import numpy as np
    >>> from blurkit.blurs import AverageBlur
    >>> AverageBlur(size=3)(np.eye(3), seed=0)["image"].round(3)[0]
    array([0.556, 0.333, 0.444])
"""

from __future__ import annotations

import numpy as np

from blurkit.blurs.base import Blur, check_range, jsonable
from blurkit.blurs.functional import _check_size, box_kernel
from blurkit.registry import register_blur

__all__ = ["AverageBlur"]


@register_blur("average")
class AverageBlur(Blur):
    """Box blur: each pixel becomes the mean of a ``size`` x ``size`` square.

    Args:
        size: Odd side length, or a ``(low, high)`` range from which odd sizes are drawn uniformly.
        **kwargs: ``border``, ``noise``, ``shot``, ``quantize``, ``jpeg``, ``seed``; see :class:`~blurkit.blurs.base.Blur`.

    Examples:
        >>> blur = AverageBlur(size=(3, 9), seed=0)
        >>> sorted({blur.sample()["size"] for _ in range(50)})
        [3, 5, 7, 9]
    """

    name = "average"
    version = 1

    def __init__(self, size: int | tuple[int, int] = (3, 9), **kwargs) -> None:
        super().__init__(**kwargs)
        checked = check_range("size", size, minimum=1, integer=True)  # an int or a pair of ints
        if isinstance(checked, tuple):
            low, high = checked
            first = low if low % 2 else low + 1
            if first > high:
                raise ValueError(f"size range ({low}, {high}) holds no odd size")
        elif checked % 2 == 0:
            raise ValueError(f"size must be odd, got {checked}")
        largest = checked[1] if isinstance(checked, tuple) else checked
        _check_size(largest, f"size {largest}")  # now, not on every image (a file's size of 999999 loaded)
        self.size: int | tuple[int, int] = checked

    def sample_kernel(self, rng: np.random.Generator) -> dict:
        if isinstance(self.size, int):
            return {"size": self.size}
        low, high = self.size
        first = low if low % 2 else low + 1
        count = (high - first) // 2 + 1
        return {"size": int(first + 2 * rng.integers(count))}

    def kernel(self, params: dict) -> np.ndarray:
        return box_kernel(params["size"])

    def get_config(self) -> dict:
        return {"size": jsonable(self.size), **super().get_config()}

"""A demo blurkit plugin: the ``vertical`` blur and the ``mae`` metric (see pyproject.toml).

Plugins need no import-time registration: blurkit finds these objects through their entry points.
"""

from __future__ import annotations

import numpy as np

from blurkit.blurs.base import Blur, check_range, jsonable
from blurkit.metrics.functional import prepare

__all__ = ["VerticalBlur", "NotGaussian", "mae"]


class VerticalBlur(Blur):
    """Vertical box blur: each pixel becomes the mean of an odd-length column around it.

    Args:
        length: Odd column length, fixed or a ``(low, high)`` range from which odd lengths are drawn.
        **kwargs: ``border``, ``noise``, ``quantize``, ``seed``; see :class:`blurkit.blurs.base.Blur`.
    """

    name = "vertical"
    version = 1

    def __init__(self, length: int | tuple[int, int] = (3, 9), **kwargs) -> None:
        super().__init__(**kwargs)
        length = check_range("length", length, minimum=1, integer=True)
        low = length[0] if isinstance(length, tuple) else length
        high = length[1] if isinstance(length, tuple) else length
        if low + (low % 2 == 0) > high:
            raise ValueError(f"length {length!r} holds no odd length")
        self.length = length

    def sample_kernel(self, rng: np.random.Generator) -> dict:
        if isinstance(self.length, int):
            return {"length": self.length}
        low, high = self.length
        first = low if low % 2 else low + 1
        return {"length": int(first + 2 * rng.integers((high - first) // 2 + 1))}

    def kernel(self, params: dict) -> np.ndarray:
        n = int(params["length"])
        return np.full((n, 1), 1.0 / n)

    def get_config(self) -> dict:
        return {"length": jsonable(self.length), **super().get_config()}


class NotGaussian(VerticalBlur):
    """Offered as ``gaussian``, a built-in name: blurkit's own ``gaussian`` must win."""

    name = "gaussian"


def mae(y_true, y_pred) -> float:
    """Mean absolute error, averaged per image over a batch (blurkit's scaling conventions)."""
    t, p = prepare(y_true, y_pred)
    axes = tuple(range(1, t.ndim)) if t.ndim == 4 else None
    return float(np.mean(np.mean(np.abs(t - p), axis=axes)))


mae.best = 0.0
mae.higher_is_better = False

"""Gaussian blur: isotropic, or anisotropic and rotated; the library's default blur.

Border convention: ``border="reflect"`` (default) is :func:`numpy.pad`'s "reflect" (``dcb|abcd|cba``,
``cv2.BORDER_REFLECT_101``); see :mod:`blurkit.blurs.functional` for the others.

Examples:
    >>> import numpy as np
    >>> from blurkit.blurs import GaussianBlur
    >>> out = GaussianBlur(sigma=1.0)(np.zeros((16, 16), np.float32), seed=0)
    >>> out["params"]["sigma"], out["kernel"].shape
    (1.0, (7, 7))
"""

from __future__ import annotations

import math

import numpy as np

from blurkit.blurs.base import Blur, Range, check_range, draw, jsonable
from blurkit.blurs.functional import _check_size, gaussian_kernel
from blurkit.registry import register_blur

__all__ = ["GaussianBlur"]


@register_blur("gaussian")
class GaussianBlur(Blur):
    """Gaussian blur with sampled standard deviations and rotation.

    Args:
        sigma: Standard deviation in pixels (along the rotated x axis when ``sigma_y`` is given), >= 0,
            fixed or ``(low, high)``.
        sigma_y: Standard deviation across, fixed or range, or None for an isotropic kernel.
        angle: Rotation in degrees, counter-clockwise as displayed, fixed or range; used only when
            ``sigma_y`` is given.
        ksize: Odd kernel size, or None for ``2 * ceil(3 * max(sigma, sigma_y)) + 1`` (at least 3) from
            the sampled values.
        **kwargs: ``border``, ``noise``, ``shot``, ``quantize``, ``jpeg``, ``seed``; see :class:`~blurkit.blurs.base.Blur`.

    Examples:
        >>> import numpy as np
        >>> blur = GaussianBlur(sigma=(2.0, 4.0), sigma_y=0.5, angle=(0, 180), seed=1)
        >>> p = blur.sample()
        >>> sorted(p)
        ['angle', 'border', 'ksize', 'noise_sigma', 'quantize', 'sigma', 'sigma_y']
        >>> k = blur.kernel(p)
        >>> k.shape == (p["ksize"], p["ksize"]), bool(abs(k.sum() - 1) < 1e-12)
        (True, True)
    """

    name = "gaussian"
    version = 1

    def __init__(
        self,
        sigma: Range = (0.3, 3.5),
        sigma_y: Range | None = None,
        angle: Range = 0.0,
        ksize: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.sigma = check_range("sigma", sigma, minimum=0)
        self.sigma_y = None if sigma_y is None else check_range("sigma_y", sigma_y, minimum=0)
        self.angle = check_range("angle", angle)
        if ksize is not None:
            checked = check_range("ksize", ksize, minimum=1, integer=True)
            if not isinstance(checked, int):
                raise ValueError(f"ksize must be one odd integer, got {list(checked)}")
            ksize = checked
            if ksize % 2 == 0:
                raise ValueError(f"ksize must be odd, got {ksize}")
        self.ksize = ksize
        # the largest kernel it can draw, checked now: a typo (sigma=1000) failed on every image, not here
        widest = max(max(np.atleast_1d(r)) for r in (self.sigma, self.sigma_y or 0.0))
        _check_size(ksize or 2 * math.ceil(3 * widest) + 1, f"sigma {widest:g}" if ksize is None else f"ksize {ksize}")

    def sample_kernel(self, rng: np.random.Generator) -> dict:
        sigma = draw(rng, self.sigma)
        if self.sigma_y is None:
            sigma_y, angle = sigma, 0.0
        else:
            sigma_y, angle = draw(rng, self.sigma_y), draw(rng, self.angle)
        ksize = self.ksize or max(2 * math.ceil(3 * max(sigma, sigma_y)) + 1, 3)
        return {"sigma": sigma, "sigma_y": sigma_y, "angle": angle, "ksize": int(ksize)}

    def kernel(self, params: dict) -> np.ndarray:
        return gaussian_kernel(
            params["sigma"], params.get("sigma_y"), params.get("angle", 0.0), params.get("ksize")
        )

    def get_config(self) -> dict:
        return {
            "sigma": jsonable(self.sigma),
            "sigma_y": jsonable(self.sigma_y),
            "angle": jsonable(self.angle),
            "ksize": self.ksize,
            **super().get_config(),
        }

"""Blur generators: seeded, configurable, registered in ``blurkit.BLURS``.

Each generator samples parameters per image, makes a kernel and applies it with OpenCV, returning
``{"image", "kernel", "params"}``. Built-ins: ``"gaussian"`` (the default), ``"motion"``, ``"average"``
and ``"defocus"``; plugins add more through the ``blurkit.blurs`` entry-point group.

Border convention: ``border="reflect"`` (default) is :func:`numpy.pad`'s "reflect" (``dcb|abcd|cba``,
``cv2.BORDER_REFLECT_101``); also "symmetric", "edge", "constant" (zeros) and "wrap" (circular).

Examples:
    >>> import numpy as np
    >>> from blurkit.blurs import blur
    >>> img = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    >>> out = blur(img, "motion", seed=1, length=7)
    >>> out.shape, out.dtype
    ((32, 32, 3), dtype('float32'))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blurkit._lazy import attach

# name -> module; imported on first access (PEP 562). Eager imports here would make pytest's
# importlib-mode doctest collection execute each submodule twice and register its class twice.
_LAZY = {
    "Blur": "blurkit.blurs.base",
    "serialize_blur": "blurkit.blurs.base",
    "deserialize_blur": "blurkit.blurs.base",
    "GaussianBlur": "blurkit.blurs.gaussian",
    "MotionBlur": "blurkit.blurs.motion",
    "AverageBlur": "blurkit.blurs.average",
    "DefocusBlur": "blurkit.blurs.defocus",
}

__all__ = [
    "Blur",
    "serialize_blur",
    "deserialize_blur",
    "GaussianBlur",
    "MotionBlur",
    "AverageBlur",
    "DefocusBlur",
    "blur",
]

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from blurkit.blurs.average import AverageBlur
    from blurkit.blurs.base import Blur, deserialize_blur, serialize_blur
    from blurkit.blurs.defocus import DefocusBlur
    from blurkit.blurs.gaussian import GaussianBlur
    from blurkit.blurs.motion import MotionBlur


# not for type checkers: they would take any name as an attribute (Any) instead of these lazy ones
if not TYPE_CHECKING:
    __getattr__, __dir__ = attach(__name__, _LAZY, __all__, globals())


def blur(image: np.ndarray, name: str = "gaussian", seed: int | None = None, **options) -> np.ndarray:
    """Blur an image with the registered generator ``name``; return only the blurred image.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16 or float.
        name: Registry name of the blur (see ``blurkit.BLURS.list()``).
        seed: Same seed, same result; None draws fresh parameters.
        **options: Constructor arguments of the blur (``sigma=2.0``, ``noise=0.01``, ...).

    Returns:
        The blurred image, same shape and dtype.

    Examples:
        >>> import numpy as np
        >>> blur(np.full((4, 4), 200, np.uint8), sigma=1.5, seed=0).tolist()[0]
        [200, 200, 200, 200]
    """
    from blurkit.registry import BLURS

    return BLURS.create(name, **options)(image, seed=seed)["image"]

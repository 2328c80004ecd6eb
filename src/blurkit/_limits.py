"""Limits shared by the readers, kept apart so that modules which only name them import no OpenCV."""

from __future__ import annotations

import numbers
from typing import Any

#: The default ``max_pixels`` of every reader (:func:`blurkit.data.io.read_image`, ``Deblurrer.predict``,
#: ``fit``, ``evaluate``, ...): Pillow's decompression-bomb limit, about 13000 x 13000 pixels. ``None`` there
#: means no limit.
DEFAULT_MAX_PIXELS: int = 178_956_970


def check_max_pixels(max_pixels: Any) -> None:
    """Refuse a ``max_pixels`` that is not None or a positive whole number (a bool, a string, 2.5), before any
    file is read: the check of every reader.

    Examples:
        >>> check_max_pixels(None), check_max_pixels(1000)
        (None, None)
        >>> check_max_pixels(True)
        Traceback (most recent call last):
        ...
        ValueError: max_pixels must be a positive whole number of pixels or None, got True
    """
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral)
                                   or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive whole number of pixels or None, got {max_pixels!r}")

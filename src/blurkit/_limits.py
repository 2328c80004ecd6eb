"""Limits shared by the readers, kept apart so that modules which only name them import no OpenCV."""

from __future__ import annotations

#: The default ``max_pixels`` of every reader (:func:`blurkit.data.io.read_image`, ``Deblurrer.predict``,
#: ``fit``, ``evaluate``, ...): Pillow's decompression-bomb limit, about 13000 x 13000 pixels. ``None`` there
#: means no limit.
DEFAULT_MAX_PIXELS: int = 178_956_970

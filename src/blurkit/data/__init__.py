"""Image I/O, folder scanning and (blurred, sharp) pair generation.

Everything here is NumPy + OpenCV; nothing imports TensorFlow.

Examples:
    >>> from blurkit.data import IMAGE_EXTENSIONS, is_image_path
    >>> ".png" in IMAGE_EXTENSIONS and is_image_path("a/B.TIFF")
    True
"""

from __future__ import annotations

from blurkit.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageReadError,
    atomic_open,
    atomic_write_bytes,
    atomic_write_text,
    from_float,
    is_image_path,
    list_images,
    read_image,
    to_float,
    write_image,
)
from blurkit.data.metadata import Metadata, read_metadata
from blurkit.data.pairs import image_seed, make_pairs

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "Metadata",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "from_float",
    "image_seed",
    "is_image_path",
    "list_images",
    "make_pairs",
    "read_image",
    "read_metadata",
    "to_float",
    "write_image",
]

"""Argument checks and a building rule shared by the model builders (standard library only)."""

from __future__ import annotations

import contextlib
import numbers
import threading
from collections.abc import Iterator

_FORMAT_LOCK = threading.RLock()


def int_arg(name: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int if it is an integer (a Python or NumPy one, not a bool) of at least ``minimum``, else
    a ValueError naming ``name``.

    Examples:
        >>> int_arg("width", 8)
        8
        >>> int_arg("depth", -1, minimum=0)
        Traceback (most recent call last):
        ...
        ValueError: depth must be an int >= 0, got -1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


@contextlib.contextmanager
def channels_last() -> Iterator[None]:
    """Build with Keras' ``image_data_format`` at ``"channels_last"``, whatever a user's ``~/.keras/keras.json``
    (or ``keras.config.set_image_data_format``) says, and put it back afterwards: blurkit's models take
    ``(batch, height, width, channels)`` images, and their layers record the format they were built with (a
    keras.json of ``channels_first`` made the convolutions read an image's width as its channels: the U-Nets
    failed to build with a bare ``TypeError``, the autoencoder built a model of 2048 output channels).
    A context manager, and a decorator as ``@channels_last()`` (the built-in builders). Builds under it hold
    one lock (an ``RLock``: a builder may call another), so threads building at once cannot switch the
    setting under each other; Keras code of the user's that builds channels-first layers in another thread
    meanwhile would get channels-last ones (Keras keeps one setting per process). :class:`~blurkit.Deblurrer`
    builds any registered builder (a plugin's too) under it."""
    import keras

    with _FORMAT_LOCK:  # the whole build, whatever the setting: another thread's build may switch it
        before = keras.config.image_data_format()
        keras.config.set_image_data_format("channels_last")
        try:
            yield
        finally:
            keras.config.set_image_data_format(before)

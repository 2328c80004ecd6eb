"""Argument checks shared by the model builders (standard library only)."""

from __future__ import annotations

import numbers


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

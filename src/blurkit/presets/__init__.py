"""Pretrained models shipped inside the package (nothing is downloaded at run time).

A preset is a blurkit ``.keras`` file in this folder; its name is the file name without the suffix.
Each one has a model card in ``docs/`` (architecture, training data and licences, recipe, results).

Examples:
    >>> from blurkit.presets import list_presets
    >>> isinstance(list_presets(), list)
    True
"""

from __future__ import annotations

import difflib
from pathlib import Path

__all__ = ["DEFAULT_PRESET", "list_presets", "preset_path"]

DEFAULT_PRESET = "gaussian-v1"
_HERE = Path(__file__).resolve().parent


def list_presets() -> list[str]:
    """Names of the presets shipped with this installation, sorted."""
    return sorted(p.stem for p in _HERE.glob("*.keras"))


def preset_path(name: str = DEFAULT_PRESET) -> Path:
    """The file of preset ``name``.

    Raises:
        KeyError: No such preset; the message lists the shipped ones and the closest name.
    """
    path = _HERE / f"{name}.keras"
    if not path.is_file():
        names = list_presets()
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown preset {name!r}{hint} Shipped presets: {', '.join(names) or '(none)'}")
    return path

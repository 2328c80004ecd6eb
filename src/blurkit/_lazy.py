"""Lazy module attributes (PEP 562), in the spirit of scikit-image's ``lazy_loader.attach``.

Examples:
    >>> getattr_, dir_ = attach("demo", {"sqrt": "math"}, ["sqrt"], {})
    >>> getattr_("sqrt")(9.0)
    3.0
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def attach(
    package: str,
    lazy: Mapping[str, str],
    names: Sequence[str],
    namespace: dict[str, Any],
    submodules: Sequence[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a module whose attributes ``lazy`` maps to their modules.

    Args:
        package: The module's name: the package of ``submodules``, and for error messages.
        lazy: Attribute name -> module that defines it (imported on first access).
        names: What ``dir()`` lists (the module's ``__all__``).
        namespace: The module's ``globals()``; a loaded attribute is cached there.
        submodules: Sub-modules reachable as attributes (``package.name``), imported on first access.
    """

    def __getattr__(name: str) -> Any:
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")  # the import sets the attribute
        if name in lazy:
            value = getattr(importlib.import_module(lazy[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__

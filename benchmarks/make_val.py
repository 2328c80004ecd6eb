"""Rebuild the validation photos (``../shared/data/val``) that the README's and the model cards' tables use.

The seven photos ship with Python packages: five with scikit-image (a blurkit dependency) and two with
scikit-learn (not one: the ``bench`` extra brings it, ``pip install -e ".[bench]"`` in a clone). They are written as lossless PNG, pixel
for pixel the arrays ``skimage.data`` and ``sklearn.datasets.load_sample_image`` return, which is what the
folder the tables were measured on holds (checked against it photo by photo, 2026-12-06)::

    python benchmarks/make_val.py val          # then: python benchmarks/quality.py --data val

Without scikit-learn the five scikit-image photos are written and the command fails, naming the two
missing ones and the extra (a table over five photos is not the published one). scikit-learn 1.4.2 (the
``bench`` extra's floor, the first release for NumPy 2) and later give the same pixels.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

SKIMAGE = {
    "astronaut": lambda data: data.astronaut(),
    "chelsea": lambda data: data.chelsea(),
    "coffee": lambda data: data.coffee(),
    "rocket": lambda data: data.rocket(),
    "motorcycle_left": lambda data: data.stereo_motorcycle()[0],
}
SKLEARN = ("china", "flower")
#: How to get scikit-learn, in the error: the extra of pyproject.toml that brings it.
INSTALL = 'pip install -e ".[bench]"'


def photos() -> tuple[dict[str, Callable[[], np.ndarray] | None], str | None]:
    """Name -> a function returning the photo (uint8 RGB), or None where scikit-learn cannot be imported;
    and why not (None when it can)."""
    from skimage import data

    out: dict[str, Callable[[], np.ndarray] | None] = {n: (lambda f=f: f(data)) for n, f in SKIMAGE.items()}
    why = None
    try:
        from sklearn.datasets import load_sample_image
    except ImportError as exc:  # not installed, or installed without one of its own dependencies
        load_sample_image = None
        why = "which is not installed" if _absent("sklearn") else f"which cannot be imported ({exc})"
    for name in SKLEARN:
        out[name] = None if load_sample_image is None else (lambda n=name: load_sample_image(f"{n}.jpg"))
    return out, why


def _absent(name: str) -> bool:
    """Whether no module ``name`` can be found (not installed, or blocked with None in ``sys.modules``)."""
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):  # a module of that name without a spec: there, if odd
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the PNG photos into (created if missing)")
    args = parser.parse_args(argv)
    from blurkit.data.io import write_image

    args.out.mkdir(parents=True, exist_ok=True)
    missing = []
    found, why = photos()
    for name, load in found.items():
        if load is None:
            missing.append(name)
            continue
        path = args.out / f"{name}.png"
        write_image(path, np.asarray(load(), np.uint8))
        print(f"wrote {path}")
    if missing:
        print(f"make_val: {', '.join(missing)} come with scikit-learn, {why}: the bench extra brings it "
              f"({INSTALL} in a clone of blurkit), then run this again", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

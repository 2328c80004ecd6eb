"""Rebuild the validation photos (``../shared/data/val``) that the README's and the model cards' tables use.

The seven photos ship with Python packages: five with scikit-image (a blurkit dependency) and two with
scikit-learn (not one: ``pip install scikit-learn`` to get them). They are written as lossless PNG, pixel
for pixel the arrays ``skimage.data`` and ``sklearn.datasets.load_sample_image`` return, which is what the
folder the tables were measured on holds (checked against it photo by photo, 2026-12-06)::

    python benchmarks/make_val.py val          # then: python benchmarks/quality.py --data val

Without scikit-learn the five scikit-image photos are written and the command fails, naming the two
missing ones (a table over five photos is not the published one).
"""

from __future__ import annotations

import argparse
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


def photos() -> dict[str, Callable[[], np.ndarray] | None]:
    """Name -> a function returning the photo (uint8 RGB), or None where scikit-learn is not installed."""
    from skimage import data

    out: dict[str, Callable[[], np.ndarray] | None] = {n: (lambda f=f: f(data)) for n, f in SKIMAGE.items()}
    try:
        from sklearn.datasets import load_sample_image
    except ImportError:
        load_sample_image = None
    for name in SKLEARN:
        out[name] = None if load_sample_image is None else (lambda n=name: load_sample_image(f"{n}.jpg"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the PNG photos into (created if missing)")
    args = parser.parse_args(argv)
    from blurkit.data.io import write_image

    args.out.mkdir(parents=True, exist_ok=True)
    missing = []
    for name, load in photos().items():
        if load is None:
            missing.append(name)
            continue
        path = args.out / f"{name}.png"
        write_image(path, np.asarray(load(), np.uint8))
        print(f"wrote {path}")
    if missing:
        print(f"make_val: {', '.join(missing)} come with scikit-learn, which is not installed "
              "(pip install scikit-learn, then run this again)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

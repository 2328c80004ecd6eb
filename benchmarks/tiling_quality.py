"""What tiling costs in quality: a model run whole against tile by tile, and where the blur estimate comes from.

Photos larger than ``tile_size**2`` pixels are restored in overlapping tiles. A model made of a blur
estimator and a restorer (``wiener_unet``, the default preset) can estimate the blur once per photo (what
``Deblurrer.predict`` does: one estimate on the whole photo, or above ``estimate_tile`` (1536 px) the median
of the estimates on tiles of at most that side; the same whatever the restoration tiles) or tile by tile
(each tile's own estimate: the model run as a whole on each tile, what blurkit did before 2026-11-26). This
script measures both against the whole photo in one restorer call (with the photo estimate), so the "photo
estimate" columns show what the seams alone cost.

Images: the validation photos (0.15-0.37 MP: tiles of 256 and 384 px cut them into 2-6 tiles) and a
2048x1536 mosaic of 512x512 crops of them (reflect-padded where a photo is smaller: 12 cells with hard
edges between them), which the default 1536-px tiles cut in two (``--data DIR``: that folder's photos, the first rows labelled
with its name). Blur and metrics as in
``benchmarks/quality.py`` (Gaussian sigma 1, 2, 3, reflect border, 8-bit quantization, seed 0; PSNR on RGB,
data range 1); means over the photos.

Usage::

    python benchmarks/tiling_quality.py                       # the default preset on ../shared/data/val
    python benchmarks/tiling_quality.py --model m.keras --data photos/ --sigmas 1 3
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def mosaic(photos: list[np.ndarray], rows: int = 3, cols: int = 4, cell: int = 512) -> np.ndarray:
    """A ``rows*cell x cols*cell`` image of centre crops of the photos, in turn (reflect-padded if small)."""
    out = np.empty((rows * cell, cols * cell, 3), np.float32)
    for k in range(rows * cols):
        p = photos[k % len(photos)]
        h, w = p.shape[:2]
        y, x = max(0, (h - cell) // 2), max(0, (w - cell) // 2)
        crop = p[y : y + cell, x : x + cell]
        crop = np.pad(crop, ((0, cell - crop.shape[0]), (0, cell - crop.shape[1]), (0, 0)), mode="reflect")
        r, c = divmod(k, cols)
        out[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = crop
    return out


def photos_label(data: str) -> str:
    """The first rows' label: the ``--data`` folder's name ("val photos" for the default ``../shared/data/val``,
    as in the model card's table), or "skimage samples"."""
    return "skimage samples" if data == "skimage" else f"{Path(data).resolve().name} photos"


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from quality import BLUR_SEED, load_photos, protocol_parser  # the protocol of benchmarks/quality.py
    from train_preset import load_or_preset

    p = protocol_parser(__doc__, "a .keras file (default: the gaussian-v1 preset)")
    p.add_argument("--overlap", type=int, default=64)
    args = p.parse_args(argv)

    from blurkit.classical import blur_gaussian
    from blurkit.metrics import psnr

    d = load_or_preset(args.model)
    photos = [img for _, img in load_photos(Path(args.data), None, None)]
    sets = {photos_label(args.data): (photos, (384, 256)), "2048x1536 mosaic": ([mosaic(photos)], (1536, 1024))}
    split = d._split() is not None
    print(f"model: {args.model or 'gaussian-v1 preset'}; overlap {args.overlap}; mean PSNR in dB; "
          f"'photo' = one blur estimate per photo, 'tile' = each tile's own")
    cols = [f"{size} tiles, {mode}" for size in ("large", "small")
            for mode in (("photo estimate", "own estimates") if split else ("own estimates",))]
    print("| images (large, small tile) | sigma | whole | " + " | ".join(cols) + " |")
    print("|---|---:|" + "---:|" * (1 + len(cols)))
    for name, (images, tiles) in sets.items():
        for sigma in args.sigmas:
            blurred = [blur_gaussian(x, sigma, seed=BLUR_SEED)[0].astype(np.float32) for x in images]

            def score(tile: int | None, per_photo: bool = True, images=images, blurred=blurred) -> float:
                d.tile_size, d.tile_overlap = tile or 1 << 15, args.overlap
                d._infer_fn = None
                if not per_photo:
                    d._build_functions()
                    d._split_fns = None  # the model as a whole on each tile
                return float(np.mean([psnr(x, d.predict(b)) for x, b in zip(images, blurred, strict=True)]))

            row = [score(None)]
            for t in tiles:
                row += [score(t, True), score(t, False)] if split else [score(t, False)]
            print(f"| {name} ({tiles[0]}, {tiles[1]} px) | {sigma:g} | " + " | ".join(f"{v:.2f}" for v in row) + " |",
                  flush=True)
    return 0


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

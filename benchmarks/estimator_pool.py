"""Does the blur estimator gain from learning *where* to read the blur? (an experiment for issue 4)

The ``gaussian-v1`` estimator averages its convolutional features over the whole photo, so large smooth
areas (a sky, an out-of-focus background) pull its sigma down while the blur to undo shows in the sharp
parts; the model card's oracle tables trace most of the blind estimate's loss to such photos. This script
continues the estimator's supervised training (stage 4a of ``train_preset.py``: 8 crops of 128 to 512 px,
the 8 flips/rotations, squared error of log sigma, Adam with cosine decay) from a trained ``wiener_unet``
file, either as it is (``--pool mean``, the control) or with attention pooling (``--pool attention``:
``wiener_unet(estimator_pool="attention")``, whose zero-initialised logit convolution starts as the mean, so
both runs start from the same function). The restorer is kept frozen; only the estimator changes.

Usage::

    python benchmarks/estimator_pool.py --pool attention --data ../shared/data/train --out att.keras
    python benchmarks/estimator_pool.py --pool mean --data ../shared/data/train --out mean.keras
    python benchmarks/oracle_sigma.py --model att.keras [--data skimage]   # blind PSNR, log-sigma errors

Both runs see the same batches (``--seed``). Nothing is selected on validation photos: the last step is kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_preset import VARY  # noqa: E402


def with_pool(d, pool: str):
    """Rebuild a Deblurrer's ``wiener_unet`` with ``estimator_pool=pool``, every layer's weights copied by
    name (a new attention convolution keeps its zero start, so the outputs are unchanged)."""
    from train_preset import copy_weights, parts, rebuild

    old = rebuild(d, estimator_pool=pool)
    for new, prev in zip(parts(d.model)[:2], parts(old)[:2], strict=True):
        copy_weights(new, prev, new_layers=("est_attention",))
    return d


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", default=None, help="a wiener_unet .keras file (default: the gaussian-v1 preset)")
    p.add_argument("--data", required=True, help="folder of sharp training photos")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--pool", choices=("mean", "attention"), required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--sides", type=int, nargs="+", default=[128, 192, 256, 384, 512])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--over-weight", type=float, default=1.0,
                   help="weight of over-estimates of sigma in the squared log-sigma error (default 1)")
    p.add_argument("--vary", nargs="+", default=(), choices=VARY, metavar="KIND",
                   help=f"make the photos look like other cameras' before the blur: any of {', '.join(VARY)} "
                        "(train_preset._vary; default none)")
    p.add_argument("--sharpen-amount", type=float, nargs=2, default=(0.3, 1.5), metavar=("LO", "HI"),
                   help="range of the unsharp-mask amounts of --vary sharpen (default 0.3 1.5)")
    p.add_argument("--leaves-fraction", type=float, default=0.5, metavar="P",
                   help="with --vary leaves: the fraction of patches replaced by dead leaves (default 0.5)")
    args = p.parse_args(argv)

    from train_preset import load_or_preset, train_estimator

    from blurkit.data.io import list_images

    t0 = time.time()
    d = load_or_preset(args.init)
    with_pool(d, args.pool)
    curve = train_estimator(d.model, list_images(args.data), args.steps, args.seed, sides=tuple(args.sides),
                            batch=args.batch, learning_rate=args.lr, augment=True,
                            over_weight=args.over_weight, vary=args.vary,
                            sharpen_amount=tuple(args.sharpen_amount), leaves=args.leaves_fraction)
    minutes = (time.time() - t0) / 60
    d.training = {**d.training, "estimator_pool": {
        "command": "python benchmarks/estimator_pool.py " + " ".join(argv or sys.argv[1:]),
        "minutes": round(minutes, 1), "final_loss": round(sum(curve[-100:]) / len(curve[-100:]), 5)}}
    d.save(args.out)
    print(f"wrote {args.out} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

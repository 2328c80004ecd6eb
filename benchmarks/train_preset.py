"""Retrain a shipped preset from a folder of sharp photos: the recipe behind ``gaussian-v1``.

Usage (the exact command that produced the shipped files is in docs/model-card-gaussian-v1.md)::

    python benchmarks/train_preset.py --data ../shared/data/train --val ../shared/data/val \
        --preset gaussian-v1 --out src/blurkit/presets/gaussian-v1.keras

Recipe: Gaussian blur with sigma sampled per patch from U(0.3, 3.5), reflect border, the blurred patch
quantized to 8 bits (as a camera file would be); random patches with the 8 flips/rotations; Adam with a
cosine learning-rate decay over the epochs; the checkpoint with the best validation loss (patches of the
validation photos, fixed seed) is kept. Runs on the CPU (and on a GPU when TensorFlow sees one).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

RECIPES = {
    # the default preset: residual U-Net
    "gaussian-v1": {
        "model": "unet",
        "model_options": {"width": 24, "depth": 3, "blocks": 1},
        "patch_size": 96,
        "batch_size": 8,
        "patches_per_image": 8,
        "learning_rate": 1e-3,
        "loss": "l1",
        "epochs": 60,
        "steps_per_epoch": 100,
    },
    # small fast preset
    "gaussian-small-v1": {
        "model": "unet",
        "model_options": {"width": 12, "depth": 3, "blocks": 1},
        "patch_size": 96,
        "batch_size": 8,
        "patches_per_image": 8,
        "learning_rate": 1e-3,
        "loss": "l1",
        "epochs": 40,
        "steps_per_epoch": 100,
    },
}
BLUR = {"sigma": (0.3, 3.5), "border": "reflect", "quantize": True}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    p.add_argument("--data", default=str(here.parent.parent / "shared" / "data" / "train"))
    p.add_argument("--val", default=str(here.parent.parent / "shared" / "data" / "val"))
    p.add_argument("--preset", default="gaussian-v1", choices=sorted(RECIPES))
    p.add_argument("--out", help="model file (default: src/blurkit/presets/PRESET.keras)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (quick trials)")
    p.add_argument("--steps-per-epoch", type=int, help="override the recipe's steps per epoch")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import keras

    from blurkit import Deblurrer
    from blurkit.cli._common import parse_options

    r = dict(RECIPES[args.preset])
    r["model_options"] = {**r["model_options"], **parse_options(args.model_option, "--model-option")}
    epochs = args.epochs or r["epochs"]
    steps = args.steps_per_epoch or r["steps_per_epoch"]
    out = Path(args.out or here.parent / "src" / "blurkit" / "presets" / f"{args.preset}.keras")
    for d in (args.data, args.val):
        if not Path(d).is_dir():
            sys.exit(f"error: no such folder {d} (pass --data/--val)")

    d = Deblurrer(model=r["model"], model_options=r["model_options"], blur="gaussian", blur_options=BLUR,
                  loss=r["loss"], learning_rate=r["learning_rate"], patch_size=r["patch_size"],
                  batch_size=r["batch_size"], patches_per_image=r["patches_per_image"], seed=args.seed)
    print(d, flush=True)
    lr0, lr_min = r["learning_rate"], r["learning_rate"] * 0.01

    def cosine(epoch: int, lr: float) -> float:
        return lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(math.pi * epoch / epochs))

    t0 = time.time()
    d.fit(args.data, validation=args.val, epochs=epochs, steps_per_epoch=steps, reduce_lr=False,
          callbacks=[keras.callbacks.LearningRateScheduler(cosine)], checkpoint=out, verbose=2)
    minutes = (time.time() - t0) / 60
    best = Deblurrer.load(out)
    best.training.update({"recipe": args.preset, "train_minutes": round(minutes, 1),
                          "command": "python benchmarks/train_preset.py " + " ".join(argv or sys.argv[1:]),
                          "blur": {k: list(v) if isinstance(v, tuple) else v for k, v in BLUR.items()}})
    best.save(out)
    curves = best.plot_history(here.parent / "docs" / f"{args.preset}-curves.png")
    print(json.dumps({"preset": args.preset, "file": str(out), "minutes": round(minutes, 1),
                      "best_validation": best.validation, "curves": str(curves)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retrain a shipped preset from a folder of sharp photos: the recipe behind ``gaussian-v1``.

Usage (the exact command that produced the shipped files is in docs/model-card-gaussian-v1.md)::

    python benchmarks/train_preset.py --data ../shared/data/train --val ../shared/data/val \
        --preset gaussian-v1 --out src/blurkit/presets/gaussian-v1.keras

Recipe: Gaussian blur with sigma sampled per patch from U(0.3, 3.5), reflect border, the blurred patch
quantized to 8 bits (as a camera file would be); random patches with the 8 flips/rotations.

For ``wiener_unet`` models, two stages:

1. the blur estimator (spectrum + conv features -> sigma, Wiener balance) is trained alone, supervised with
   the sigma used to blur each patch (squared error of log sigma: relative errors matter) (patch sides 64-256 so it works on any tile size) and a fixed balance
   of 1e-4 (the balance that is best for scikit-image's Wiener on these photos); trained end to end from
   the start, the estimator collapses to a "gentle" Wiener and leaves all the work to the U-Net;
2. the estimator is frozen and the whole model is trained end to end (L1) with Adam and a cosine
   learning-rate decay; the checkpoint with the best validation loss (patches of the validation photos,
   fixed seed) is kept;
3. fine-tuning (estimator still frozen) on larger patches (160 px) with the per-image PSNR loss
   (``psnr_loss``, ``10 log10 MSE`` per patch): an L1 or MSE loss summed over patches is dominated by
   the strongly blurred ones (large errors), which left mild blur (sigma ~1) under-trained; a log-MSE
   per patch weighs every patch's relative improvement alike. A second cosine decay; best validation
   checkpoint kept.

``--from-stage2 FILE`` runs stage 3 alone from a stage-2 model (how the shipped file was made: the
stage-2 model of the command in the model card, then stage 3).

Runs on the CPU (and on a GPU when TensorFlow sees one).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

RECIPES = {
    # the default preset: sigma estimator + Wiener deconvolution + residual U-Net refinement
    "gaussian-v1": {
        "model": "wiener_unet",
        "model_options": {"width": 24, "depth": 3, "blocks": 1, "estimator_width": 16,
                          "scales": (1.0, 0.8, 1.25, 0.65, 1.55)},
        "patch_size": 96,
        "batch_size": 8,
        "patches_per_image": 8,
        "learning_rate": 1e-3,
        "loss": "l1",
        "epochs": 50,
        "steps_per_epoch": 100,
        # stage 3 (see the module docstring)
        "finetune": {"loss": "psnr_loss", "patch_size": 160, "batch_size": 4, "patches_per_image": 4,
                     "learning_rate": 2e-4, "epochs": 32, "steps_per_epoch": 150},
    },
}
# small fast preset: the same recipe at half the width
RECIPES["gaussian-small-v1"] = {
    **RECIPES["gaussian-v1"],
    "model_options": {**RECIPES["gaussian-v1"]["model_options"], "width": 12, "estimator_width": 8},
    "epochs": 40,
}
BLUR = {"sigma": (0.3, 3.5), "border": "reflect", "quantize": True}
ESTIMATOR_STEPS = 3000
ESTIMATOR_BALANCE_LOG10 = -4.0


def train_estimator(model, photos: list, steps: int, seed: int, sigma_range=(0.3, 3.5)) -> list[float]:
    """Stage 1: supervised training of a ``wiener_unet``'s blur estimator; returns the loss curve."""
    import keras
    import numpy as np

    from blurkit.blurs import GaussianBlur
    from blurkit.data.io import read_image, to_float

    wiener = model.get_layer("wiener")
    (slo, shi), (blo, bhi) = wiener.sigma_range, wiener.log_balance_range
    est = keras.Model(model.input, model.get_layer("est_params").output)
    t_bal = (ESTIMATOR_BALANCE_LOG10 - blo) / (bhi - blo)

    def loss(y_true, y_pred):  # relative error of sigma (log), + the balance target
        sigma = slo + (shi - slo) * keras.ops.sigmoid(y_pred[:, 0])
        return keras.ops.mean((keras.ops.log(sigma) - keras.ops.log(y_true[:, 0])) ** 2) + keras.ops.mean(
            (keras.ops.sigmoid(y_pred[:, 1]) - y_true[:, 1]) ** 2)

    lr = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=max(1, steps), alpha=0.01)
    est.compile(optimizer=keras.optimizers.Adam(lr), loss=loss, jit_compile=False)
    rng = np.random.default_rng(seed)
    blur = GaussianBlur(sigma=tuple(sigma_range), border="reflect", quantize=True)
    cache: dict[int, np.ndarray] = {}
    curve = []
    for step in range(steps):
        side = int(rng.choice([64, 96, 128, 192, 256]))
        xs, ys = [], []
        for _ in range(16):
            i = int(rng.integers(len(photos)))
            if i not in cache:
                cache[i] = to_float(read_image(photos[i]))
                if cache[i].ndim == 2:
                    cache[i] = np.repeat(cache[i][..., None], 3, axis=-1)
            img = cache[i]
            h, w = img.shape[:2]
            s = min(side, h, w)
            y, x = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
            params = blur.sample(rng)
            out = blur.apply(img[y : y + s, x : x + s], params, rng=rng)
            if s < side:
                out = np.pad(out, ((0, side - s), (0, side - s), (0, 0)), mode="symmetric")
            xs.append(out)
            ys.append([params["sigma"], t_bal])
        curve.append(float(est.train_on_batch(np.stack(xs).astype("float32"), np.asarray(ys, "float32"))))
        if step % 100 == 0 or step == steps - 1:
            print(f"estimator step {step}: loss {np.mean(curve[-100:]):.4f}", flush=True)
    for layer in model.layers:
        if layer.name.startswith("est_"):
            layer.trainable = False
    return curve


def cosine_from(start: int, epochs: int, lr0: float):
    """A cosine decay from ``lr0`` to ``lr0 / 100`` over epochs ``[start, start + epochs)``."""
    lr_min = lr0 * 0.01

    def schedule(epoch: int, lr: float) -> float:
        return lr_min + 0.5 * (lr0 - lr_min) * (1 + math.cos(math.pi * (epoch - start) / epochs))

    return schedule


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    p.add_argument("--data", default=str(here.parent.parent / "shared" / "data" / "train"))
    p.add_argument("--val", default=str(here.parent.parent / "shared" / "data" / "val"))
    p.add_argument("--preset", default="gaussian-v1", choices=sorted(RECIPES))
    p.add_argument("--out", help="model file (default: src/blurkit/presets/PRESET.keras)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (quick trials)")
    p.add_argument("--steps-per-epoch", type=int, help="override the recipe's steps per epoch")
    p.add_argument("--estimator-steps", type=int, default=ESTIMATOR_STEPS, help="stage-1 steps (wiener_unet)")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default=str(here.parent / "runs"), help="per-epoch resume state (git-ignored)")
    p.add_argument("--from-stage2", metavar="FILE", help="skip stages 1-2: fine-tune (stage 3) this model")
    p.add_argument("--finetune-epochs", type=int, help="override stage 3's epochs (quick trials)")
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

    work = Path(args.work_dir)
    t0 = time.time()
    prior: dict = {}
    if args.from_stage2:
        d = Deblurrer.load(args.from_stage2)
        prior = dict(d.training)
    else:
        d = Deblurrer(model=r["model"], model_options=r["model_options"], blur="gaussian", blur_options=BLUR,
                      loss=r["loss"], learning_rate=r["learning_rate"], patch_size=r["patch_size"],
                      batch_size=r["batch_size"], patches_per_image=r["patches_per_image"], seed=args.seed)
        print(d, flush=True)
        if r["model"] == "wiener_unet":
            from blurkit.data.io import list_images

            train_estimator(d.model, list_images(args.data), args.estimator_steps, args.seed)
            d.compile()  # the estimator is frozen now
        stage2 = out if not r.get("finetune") else work / f"{args.preset}-stage2.keras"
        d.fit(args.data, validation=args.val, epochs=epochs, steps_per_epoch=steps, reduce_lr=False,
              callbacks=[keras.callbacks.LearningRateScheduler(cosine_from(0, epochs, r["learning_rate"]))],
              checkpoint=stage2, checkpoint_dir=work / f"{args.preset}.resume", verbose=2)
        d = Deblurrer.load(stage2)
    ft = r.get("finetune")
    if ft:
        for layer in d.model.layers:
            if layer.name.startswith("est_"):
                layer.trainable = False
        d.loss, d.patch_size, d.batch_size = ft["loss"], ft["patch_size"], ft["batch_size"]
        d.patches_per_image, d.learning_rate = ft["patches_per_image"], ft["learning_rate"]
        d.compile()
        n = args.finetune_epochs or ft["epochs"]
        start = len(d.history.get("loss", []))
        d.fit(args.data, validation=args.val, epochs=n, steps_per_epoch=ft["steps_per_epoch"], reduce_lr=False,
              callbacks=[keras.callbacks.LearningRateScheduler(cosine_from(start, n, ft["learning_rate"]))],
              checkpoint=out, checkpoint_dir=work / f"{args.preset}-stage3.resume", verbose=2)
    minutes = (time.time() - t0) / 60
    best = Deblurrer.load(out)
    command = "python benchmarks/train_preset.py " + " ".join(argv or sys.argv[1:])
    info = {"recipe": args.preset, "train_minutes": round(minutes, 1), "command": command,
            "blur": {k: list(v) if isinstance(v, tuple) else v for k, v in BLUR.items()}}
    if prior:  # stage 3 alone: say how the stage-2 model was made, and count its time too
        info.update({"stage2_command": prior.get("command"), "stage3_minutes": round(minutes, 1),
                     "train_minutes": round(float(prior.get("train_minutes") or 0) + minutes, 1)})
    best.training.update(info)
    best.save(out)
    curves = best.plot_history(here.parent / "docs" / f"{args.preset}-curves.png")
    print(json.dumps({"preset": args.preset, "file": str(out), "minutes": round(minutes, 1),
                      "best_validation": best.validation, "curves": str(curves)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retrain a shipped preset from a folder of sharp photos: the recipe behind ``gaussian-v1``.

Usage (the exact command that produced the shipped files is in docs/model-card-gaussian-v1.md)::

    python benchmarks/train_preset.py --data ../shared/data/train --val ../shared/data/val \
        --preset gaussian-v1 --out src/blurkit/presets/gaussian-v1.keras

Recipe: Gaussian blur with sigma sampled per patch from U(0.3, 3.5), reflect border, the blurred patch
quantized to 8 bits (as a camera file would be); random patches with the 8 flips/rotations.

For ``wiener_unet`` models, five stages (the model card says how the shipped file went through them):

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

4. context: the model is split into its two parts, ``estimator`` (image -> blur parameters) and
   ``restorer`` (image, parameters -> restored image). The estimator's training continues on larger,
   flipped/rotated patches (sides 128-512: more context, steadier estimates); then it is frozen and the
   restorer alone is trained (PSNR loss, 160-px patches) with the parameters that the estimator gives on
   the 384-px crop around each patch, as it does at inference on a whole photo rather than on the patch.
   The checkpoint with the best mean PSNR on the full validation photos (sigma 1, 2, 3) is kept.

5. joint: ``benchmarks/train_joint.py`` trains the estimator (supervised with the true sigma) and the restorer
   (PSNR loss, with the estimator's current estimates on the 384-px context crop) together, in batches of 32,
   for 16,000 steps (warm-up, then cosine decay from 5e-4); the end of the schedule is kept (no selection).
   It runs on any Keras backend; the shipped file was trained on a GPU with JAX. ``--joint-only FILE`` runs
   stage 5 alone from FILE (how the shipped file was last trained); ``--joint-steps 0`` stops after stage 4.

``--from-stage2 FILE`` runs stages 3-5 from a stage-2 model; ``--from-stage3 FILE`` runs stages 4-5;
``--estimator-only FILE`` keeps FILE's restorer and trains the recipe's estimator for it from scratch (stage 1,
then stage 4a for ``new_estimator_steps``): how the shipped file got its wider estimator (``estimator_width``
16 -> 32; the commands of every step are in the model card); ``--restorer-only FILE`` keeps FILE's estimator
(frozen) and trains its restorer further with that estimator's estimates (stage 4b alone, data seed
``--seed + 2``): a restorer that was trained with another estimator's estimates learns the new one's errors.

Stages 1-4 run on TensorFlow (CPU, or a GPU when TensorFlow sees one); stage 5 on any Keras backend
(``KERAS_BACKEND=jax python benchmarks/train_preset.py --joint-only FILE ...`` on a GPU).
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
        "model_options": {"width": 24, "depth": 3, "blocks": 1, "estimator_width": 32,
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
        # stage 4 (see the module docstring)
        "context": {"estimator_steps": 3000, "estimator_sides": (128, 192, 256, 384, 512), "estimator_batch": 8,
                    # --estimator-only: stage 4a's steps and sides for a new estimator after stage 1
                    "new_estimator_steps": 2000, "new_estimator_sides": (128, 192, 256, 384),
                    "estimator_learning_rate": 3e-4, "steps": 6000, "context": 384, "patch_size": 160,
                    "batch_size": 4, "learning_rate": 2e-4, "eval_every": 600},
        # stage 5 (benchmarks/train_joint.py): both parts together, large batches; the schedule by steps
        "joint": {"steps": 16000, "batch": 32, "context": 384, "patch": 192, "lr": 5e-4, "seed": 5},
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


def load_or_preset(path):
    """The Deblurrer saved at ``path``, or the ``gaussian-v1`` preset where ``path`` is empty (the benchmark
    scripts' default model)."""
    from blurkit import Deblurrer

    return Deblurrer.load(path) if path else Deblurrer.from_preset("gaussian-v1")


def parts(model):
    """A ``wiener_unet``'s ``(estimator, restorer, wiener layer)``."""
    restorer = model.get_layer("restorer")
    return model.get_layer("estimator"), restorer, restorer.get_layer("wiener")


def nested(d):
    """Give a Deblurrer holding a flat ``wiener_unet`` (files saved before 2026-11-26) the nested model.

    The model is rebuilt from its spec (now an ``estimator`` and a ``restorer`` sub-model) and every layer's
    weights are copied by name; the outputs are the same.
    """
    from blurkit.registry import MODELS

    if "restorer" in {layer.name for layer in d.model.layers}:
        return d
    model = MODELS.create(d.model_spec["name"], **d.model_spec["config"])
    for sub in parts(model)[:2]:
        copy_weights(sub, d.model)
    d.model, d._infer_fn = model, None
    return d


def rebuild(d, **changes):
    """Replace a Deblurrer's ``wiener_unet`` with a new, untrained (nested) one of its builder, its config
    updated by ``changes`` (recorded in ``d.model_spec``); returns the old model, to copy weights from."""
    from blurkit.registry import MODELS

    nested(d)
    old = d.model
    config = {**d.model_spec["config"], **changes}
    d.model, d._infer_fn = MODELS.create(d.model_spec["name"], **config), None
    d.model_spec = {"name": d.model_spec["name"], "config": config}
    return old


def copy_weights(new, old, new_layers=()) -> None:
    """Set every layer with weights of model ``new`` to the weights of ``old``'s layer of that name; only the
    layers named in ``new_layers`` may be missing from ``old`` (they keep their start)."""
    have = {layer.name: layer for layer in old.layers}
    for layer in new.layers:
        if layer.weights and layer.name not in new_layers:
            layer.set_weights(have[layer.name].get_weights())


def new_estimator(d, estimator_width: int):
    """Give a Deblurrer's ``wiener_unet`` a new, untrained estimator of ``estimator_width``.

    The restorer's weights are copied by name; the estimator starts from scratch (its output layer at
    zero). The model's config records the new width.
    """
    old = rebuild(d, estimator_width=int(estimator_width))
    copy_weights(parts(d.model)[1], parts(old)[1])
    return d


def estimator_loss(wiener, over_weight: float = 1.0):
    """The estimator's loss per image (stages 1, 4a and 5): the squared error of log sigma (``y_true[:, 0]``
    is the true sigma: relative errors matter) plus that of the Wiener balance, whose target is always
    ``ESTIMATOR_BALANCE_LOG10``. ``wiener`` is the model's ``GaussianWiener`` layer (it maps the raw outputs).
    ``over_weight`` multiplies the log-sigma term where sigma is over-estimated (deconvolving with too large a
    sigma costs more than with too small a one; the recipe's stages use 1)."""
    from keras import ops

    blo, bhi = wiener.log_balance_range
    target = (ESTIMATOR_BALANCE_LOG10 - blo) / (bhi - blo)

    def loss(y_true, y_pred):
        sigma = wiener.blur_parameters(y_pred)[0]
        error = ops.log(sigma) - ops.log(y_true[:, 0])
        if over_weight != 1.0:
            error = error * ops.where(error > 0, float(over_weight) ** 0.5, 1.0)
        return error**2 + (ops.sigmoid(y_pred[:, 1]) - target) ** 2

    return loss


def _square(photos: list, cache: dict, rng, side: int):
    """A random square crop, of side ``side`` or the photo's shorter side if less, of a random photo
    (decoded as float RGB once, into ``cache``)."""
    from blurkit.data.io import read_image, to_float
    from blurkit.data.pipeline import to_channels

    i = int(rng.integers(len(photos)))
    if i not in cache:
        cache[i] = to_channels(to_float(read_image(photos[i])), 3)
    img = cache[i]
    h, w = img.shape[:2]
    s = min(side, h, w)
    y, x = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
    return img[y : y + s, x : x + s]


def _pad_square(image, side: int):
    """``image`` (s x s) mirrored out to ``side x side`` at the bottom and right (unchanged if s == side)."""
    import numpy as np

    s = image.shape[0]
    return image if s == side else np.pad(image, ((0, side - s), (0, side - s), (0, 0)), mode="symmetric")


def _flip(patch, k: int):
    """One of the 8 flips/rotations of a square patch."""
    import numpy as np

    patch = np.rot90(patch, k % 4)
    return np.ascontiguousarray(patch[:, ::-1] if k >= 4 else patch)


VARY = ("scale", "leaves", "noise", "sharpen", "jpeg")


def dead_leaves(side: int, rng, palette, *, rmin: float = 1.0, rmax: float | None = None, cover: float = 3.0,
                supersample: int = 2):
    """A ``side x side`` dead-leaves image: opaque discs of random colours dropped one over another.

    The classic synthetic stand-in for natural images (Lee, Mumford and Huang 2001; used to train restoration
    networks by Achddou et al., "Synthetic images as a regularity prior for image restoration neural
    networks", 2021): radii drawn with density ``r^-3`` over ``[rmin, rmax]`` px make it scale-invariant, with
    sharp edges between flat areas, the structure a blur estimator should read, and none of a photo's own
    softness or in-camera sharpening. Discs are drawn, anti-aliased, at ``supersample`` times the size and
    area-downscaled, so the edges are as sharp as a well-sampled photo's. The colours are drawn from the
    pixels of ``palette`` (an (H, W, 3) image, e.g. the photo crop it replaces); enough discs are dropped to
    cover the image ``cover`` times over on average. Returns float32 RGB in [0, 1].

    Examples:
        >>> import numpy as np
        >>> im = dead_leaves(64, np.random.default_rng(0), np.random.default_rng(1).random((8, 8, 3)))
        >>> im.shape, im.dtype, 0 <= im.min() <= im.max() <= 1
        ((64, 64, 3), dtype('float32'), True)
    """
    import cv2
    import numpy as np

    rmax = float(rmax if rmax is not None else max(2.0 * rmin, side / 4))
    mean_area = 2 * np.pi * rmin**2 * np.log(rmax / rmin) / (1 - (rmin / rmax) ** 2)
    n = max(1, int(cover * side * side / mean_area))
    lo, hi = rmin**-2, rmax**-2
    radii = (lo - rng.random(n) * (lo - hi)) ** -0.5  # inverse CDF of density r^-3 on [rmin, rmax]
    centres = rng.uniform(-0.1 * side, 1.1 * side, (n, 2))
    colours = np.asarray(palette, np.float32).reshape(-1, 3)
    colours = colours[rng.integers(len(colours), size=n + 1)]
    big, unit = side * supersample, 16 * supersample  # 4 fractional bits (cv2 shift=4)
    canvas = np.empty((big, big, 3), np.float32)
    canvas[:] = colours[n]
    for (cx, cy), r, c in zip(np.round(centres * unit).astype(int), np.round(radii * unit).astype(int),
                              colours[:n].tolist(), strict=True):
        cv2.circle(canvas, (int(cx), int(cy)), max(int(r), 8), c, -1, cv2.LINE_AA, 4)
    out = cv2.resize(canvas, (side, side), interpolation=cv2.INTER_AREA) if supersample > 1 else canvas
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


def _vary(photos: list, cache: dict, rng, vrng, side: int, kinds=("scale", "noise", "jpeg"),
          sharpen_amount=(0.3, 1.5), leaves: float = 0.5):
    """:func:`_square`, made to look more like other cameras' photos, before the blur (as in photos that were
    processed before anyone blurred them). ``vrng`` draws these choices, so ``rng`` draws the same crops and
    blurs as without them. Each of ``kinds`` (of :data:`VARY`, applied in that order) happens with probability
    1/2 (``leaves``: with probability ``leaves``): ``scale`` downscales the photo by a factor in [0.5, 1)
    (area interpolation: more detail per pixel), ``leaves`` replaces the crop by a :func:`dead_leaves` image
    coloured from it, ``noise`` adds sensor-like Gaussian noise (standard deviation 0.002 to 0.02),
    ``sharpen`` an in-camera unsharp mask (radius 0.5 to 2 px, amount drawn from ``sharpen_amount``) and
    ``jpeg`` a JPEG round trip (quality 60 to 95)."""
    import cv2
    import numpy as np

    unknown = set(kinds) - set(VARY)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; choose from {VARY}")
    f = float(vrng.uniform(0.5, 1.0)) if "scale" in kinds and vrng.random() < 0.5 else 1.0
    patch = _square(photos, cache, rng, int(np.ceil(side / f)))
    if f < 1.0:
        n = min(side, max(8, round(patch.shape[0] * f)))
        patch = cv2.resize(patch, (n, n), interpolation=cv2.INTER_AREA)
    if "leaves" in kinds and vrng.random() < leaves:
        patch = dead_leaves(patch.shape[0], vrng, patch)
    if "noise" in kinds and vrng.random() < 0.5:
        patch = np.clip(patch + vrng.normal(0.0, vrng.uniform(0.002, 0.02), patch.shape), 0.0, 1.0)
    if "sharpen" in kinds and vrng.random() < 0.5:
        radius, amount = vrng.uniform(0.5, 2.0), vrng.uniform(*sharpen_amount)
        soft = cv2.GaussianBlur(patch, (0, 0), radius, borderType=cv2.BORDER_REFLECT)
        patch = np.clip(patch + amount * (patch - soft), 0.0, 1.0)
    if "jpeg" in kinds and vrng.random() < 0.5:
        bgr = np.round(patch[..., ::-1] * 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(vrng.integers(60, 96))])
        if not ok:
            raise RuntimeError(f"OpenCV could not JPEG-encode a {bgr.shape} patch")
        patch = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] / 255.0
    return np.ascontiguousarray(patch, dtype=np.float32)


def train_estimator(model, photos: list, steps: int, seed: int, sigma_range=(0.3, 3.5), *,
                    sides=(64, 96, 128, 192, 256), batch: int = 16, learning_rate: float = 1e-3,
                    augment: bool = False, over_weight: float = 1.0, vary=(), sharpen_amount=(0.3, 1.5),
                    leaves: float = 0.5) -> list[float]:
    """Stage 1 (and 4a): supervised training of a ``wiener_unet``'s blur estimator; returns the loss curve.

    ``augment`` adds the 8 flips/rotations of each patch; ``over_weight`` is :func:`estimator_loss`'s;
    ``vary`` names the kinds of :func:`_vary` to draw the patches with (rescaled, noisy, sharpened,
    JPEG-compressed photos, dead leaves; none by default), ``sharpen_amount`` its range of unsharp-mask
    amounts, ``leaves`` the fraction of patches replaced by dead leaves.
    """
    import keras
    import numpy as np

    from blurkit.blurs import GaussianBlur

    estimator, _, wiener = parts(model)
    estimator.trainable = True
    est = keras.Model(estimator.inputs, estimator.outputs)  # compiled, not the sub-model saved with the model
    lr = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps), alpha=0.01)
    est.compile(optimizer=keras.optimizers.Adam(lr), loss=estimator_loss(wiener, over_weight),
                jit_compile=False)
    rng, vrng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    blur = GaussianBlur(sigma=tuple(sigma_range), border="reflect", quantize=True)
    cache: dict[int, np.ndarray] = {}
    curve = []
    for step in range(steps):
        side = int(rng.choice(list(sides)))
        xs, ys = [], []
        for _ in range(batch):
            patch = (_vary(photos, cache, rng, vrng, side, vary, sharpen_amount, leaves) if vary
                     else _square(photos, cache, rng, side))
            if augment:
                patch = _flip(patch, int(rng.integers(8)))
            params = blur.sample(rng)
            xs.append(_pad_square(blur.apply(patch, params, rng=rng), side))
            ys.append([params["sigma"]])
        curve.append(float(est.train_on_batch(np.stack(xs).astype("float32"), np.asarray(ys, "float32"))))
        if step % 100 == 0 or step == steps - 1:
            print(f"estimator step {step}: loss {np.mean(curve[-100:]):.4f}", flush=True)
    estimator.trainable = False
    return curve


def train_restorer(d, photos: list, val: list, *, steps: int, context: int, patch_size: int, batch_size: int,
                   learning_rate: float, eval_every: int, out, seed: int = 0, sigmas=(1.0, 2.0, 3.0)) -> dict:
    """Stage 4b: the restorer alone, with the frozen estimator's parameters for a ``context``-px crop.

    Every ``eval_every`` steps the whole model is evaluated on the full validation photos (mean PSNR over
    ``sigmas``) and the best is saved to ``out`` (only if it beats the starting model). Returns the best
    validation PSNRs.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from blurkit.blurs import GaussianBlur
    from blurkit.classical import blur_gaussian
    from blurkit.metrics import psnr
    from blurkit.metrics.losses import get_loss

    estimator, restorer, _ = parts(d.model)
    estimator.trainable, restorer.trainable = False, True
    opt = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.01))
    psnr_loss = get_loss("psnr_loss")  # per image: 10 log10 MSE
    estimate = tf.function(lambda x: estimator(x, training=False), reduce_retracing=True)

    @tf.function
    def step(x, p, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(psnr_loss.call(y, restorer([x, p], training=True)))
        grads = tape.gradient(loss, restorer.trainable_variables)
        opt.apply_gradients(zip(grads, restorer.trainable_variables, strict=True))
        return loss

    vblur = {s: [blur_gaussian(x, s)[0].astype("float32") for x in val] for s in sigmas}  # as quality.py

    def evaluate() -> dict:
        d._infer_fn = None
        return {s: float(np.mean([psnr(x, d.predict(b)) for x, b in zip(val, vblur[s], strict=True)]))
                for s in sigmas}

    best = evaluate()
    best_mean = float(np.mean(list(best.values())))
    print("stage 4 start: " + " ".join(f"{k:g}:{v:.3f}" for k, v in best.items()), flush=True)
    rng = np.random.default_rng(seed)
    blur = GaussianBlur(sigma=(0.3, 3.5), border="reflect", quantize=True)
    cache: dict[int, np.ndarray] = {}
    losses: list[float] = []
    for it in range(steps):
        ctx, xs, ys = [], [], []
        for _ in range(batch_size):
            crop = _flip(_square(photos, cache, rng, context), int(rng.integers(8)))
            s = crop.shape[0]
            b = blur.apply(crop, blur.sample(rng), rng=rng).astype("float32")
            py, px = int(rng.integers(s - patch_size + 1)), int(rng.integers(s - patch_size + 1))
            xs.append(b[py : py + patch_size, px : px + patch_size])
            ys.append(crop[py : py + patch_size, px : px + patch_size])
            ctx.append(_pad_square(b, context))
        params = estimate(np.stack(ctx))
        losses.append(float(step(np.stack(xs), params, np.stack(ys).astype("float32"))))
        if it % 100 == 0:
            print(f"stage 4 step {it}: loss {np.mean(losses[-100:]):.3f}", flush=True)
        if (it + 1) % eval_every == 0 or it == steps - 1:
            r = evaluate()
            mean, flag = float(np.mean(list(r.values()))), ""
            if mean > best_mean:
                best, best_mean, flag = r, mean, " (best, saved)"
                d.save(out)
            print(f"stage 4 eval {it + 1}: " + " ".join(f"{k:g}:{v:.3f}" for k, v in r.items()) + flag,
                  flush=True)
    return best


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
    p.add_argument("--steps-per-epoch", type=int, help="override the steps per epoch of stages 2 and 3")
    p.add_argument("--estimator-steps", type=int, default=ESTIMATOR_STEPS, help="stage-1 steps (wiener_unet)")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", default=str(here.parent / "runs"), help="per-epoch resume state (git-ignored)")
    p.add_argument("--from-stage2", metavar="FILE", help="skip stages 1-2: stages 3-4 from this model")
    p.add_argument("--from-stage3", metavar="FILE", help="skip stages 1-3: stage 4 from this model")
    p.add_argument("--estimator-only", metavar="FILE",
                   help="keep this model's restorer, give it the recipe's estimator and train that alone (stage 1, "
                        "then stage 4a with new_estimator_steps)")
    p.add_argument("--restorer-only", metavar="FILE",
                   help="keep this model's estimator (frozen) and train its restorer further with that estimator's "
                        "estimates (stage 4b alone)")
    p.add_argument("--finetune-epochs", type=int, help="override stage 3's epochs (quick trials)")
    p.add_argument("--context-steps", type=int, help="override stage 4's steps (both parts; quick trials)")
    p.add_argument("--joint-only", metavar="FILE", help="stage 5 alone (train_joint.py) from this model")
    p.add_argument("--joint-steps", type=int, help="override stage 5's steps (0 skips it; quick trials)")
    p.add_argument("--joint-minutes", type=float,
                   help="run stage 5 for this wall-clock budget instead of its steps (as on the GPU)")
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
    info_cx = None  # stage 4's best validation PSNRs, where it ran
    starts = (args.from_stage2, args.from_stage3, args.estimator_only, args.restorer_only, args.joint_only)
    if sum(bool(f) for f in starts) > 1:
        sys.exit("error: pass at most one of --from-stage2, --from-stage3, --estimator-only, --restorer-only "
                 "and --joint-only")

    def joint(init) -> None:  # stage 5, on the file `init`, written to `out`
        if str(here) not in sys.path:
            sys.path.insert(0, str(here))
        import train_joint

        j = r["joint"]
        length = (["--minutes", str(args.joint_minutes)] if args.joint_minutes
                  else ["--steps", str(args.joint_steps if args.joint_steps is not None else j["steps"])])
        train_joint.main(["--init", str(init), "--data", args.data, "--out", str(out), *length,
                          "--batch", str(j["batch"]), "--context", str(j["context"]), "--patch", str(j["patch"]),
                          "--lr", str(j["lr"]), "--seed", str(j["seed"])])

    if args.joint_only:  # the model's history and metadata stay; train_joint.py adds its own ("joint")
        joint(args.joint_only)
        return 0
    start_file = args.from_stage2 or args.from_stage3 or args.restorer_only
    if args.estimator_only:
        from blurkit.data.io import list_images

        d = new_estimator(nested(Deblurrer.load(args.estimator_only)), r["model_options"]["estimator_width"])
        prior = dict(d.training)
        train_estimator(d.model, list_images(args.data), args.estimator_steps, args.seed)  # stage 1; 4a below
    elif start_file:
        d = Deblurrer.load(start_file)
        if d.model_spec and d.model_spec["name"] == "wiener_unet":
            nested(d)
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
    later = args.estimator_only or args.restorer_only
    ft = None if args.from_stage3 or later else r.get("finetune")
    if ft:
        if r["model"] == "wiener_unet":
            parts(d.model)[0].trainable = False
        d.loss, d.patch_size, d.batch_size = ft["loss"], ft["patch_size"], ft["batch_size"]
        d.patches_per_image, d.learning_rate = ft["patches_per_image"], ft["learning_rate"]
        d.compile()
        n = args.finetune_epochs or ft["epochs"]
        start = len(d.history.get("loss", []))
        d.fit(args.data, validation=args.val, epochs=n, steps_per_epoch=args.steps_per_epoch or ft["steps_per_epoch"],
              reduce_lr=False,
              callbacks=[keras.callbacks.LearningRateScheduler(cosine_from(start, n, ft["learning_rate"]))],
              checkpoint=out, checkpoint_dir=work / f"{args.preset}-stage3.resume", verbose=2)
        d = Deblurrer.load(out)
    if r.get("context"):  # stage 4: 4a alone with --estimator-only, 4b alone with --restorer-only
        cx = r["context"]
        from blurkit.data.io import list_images, read_image, to_float
        from blurkit.data.pipeline import to_channels

        photos = list_images(args.data)
        if not args.restorer_only:
            steps4a, sides = ((cx["new_estimator_steps"], cx["new_estimator_sides"]) if args.estimator_only
                              else (cx["estimator_steps"], cx["estimator_sides"]))  # a new estimator's own
            train_estimator(d.model, photos, args.context_steps or steps4a, args.seed + 1, sides=sides,
                            batch=cx["estimator_batch"], learning_rate=cx["estimator_learning_rate"], augment=True)
        d.save(out)  # the restorer's training below keeps this unless it beats it on the validation photos
        if not args.estimator_only:
            val = [to_channels(to_float(read_image(f)), 3) for f in list_images(args.val)]
            n = args.context_steps or cx["steps"]
            info_cx = train_restorer(d, photos, val, steps=n, context=cx["context"], patch_size=cx["patch_size"],
                                     batch_size=cx["batch_size"], learning_rate=cx["learning_rate"],
                                     eval_every=min(n, cx["eval_every"]), out=out,
                                     seed=args.seed + 2 if args.restorer_only else args.seed)
    if r.get("joint") and not later and args.joint_steps != 0:  # stage 5, from stage 4's best
        joint(out)
    minutes = (time.time() - t0) / 60
    best = Deblurrer.load(out)
    command = "python benchmarks/train_preset.py " + " ".join(argv or sys.argv[1:])
    info = {"recipe": args.preset, "train_minutes": round(minutes, 1), "command": command,
            "blur": {k: list(v) if isinstance(v, tuple) else v for k, v in BLUR.items()}}
    if later:  # the model's history stays; say how the part kept was made, and count its time too
        kept, key = ("restorer", "estimator") if args.estimator_only else ("estimator", "restorer")
        info = {**prior, **info, f"{kept}_command": prior.get("command"), f"{key}_minutes": round(minutes, 1),
                "train_minutes": round(float(prior.get("train_minutes") or 0) + minutes, 1)}
    elif prior:  # later stages alone: say how the model they started from was made, and count its time too
        key = "stage3" if args.from_stage3 else "stage2"
        info.update({f"{key}_command": prior.get("command"), f"after_{key}_minutes": round(minutes, 1),
                     "train_minutes": round(float(prior.get("train_minutes") or 0) + minutes, 1)})
    if info_cx:
        info["stage4_validation_psnr"] = {f"sigma {k:g}": round(v, 3) for k, v in info_cx.items()}
    best.training.update(info)
    best.save(out)
    shipped = out.resolve() == (here.parent / "src" / "blurkit" / "presets" / f"{args.preset}.keras").resolve()
    curves = None  # a model that was never fitted by Keras (e.g. --from-stage3 on one built by hand) has none
    if best.history.get("loss"):
        curves = best.plot_history(here.parent / "docs" / f"{args.preset}-curves.png" if shipped
                                   else out.with_name(out.stem + "-curves.png"))
    print(json.dumps({"preset": args.preset, "file": str(out), "minutes": round(minutes, 1),
                      "best_validation": best.validation, "stage4_validation_psnr": info.get("stage4_validation_psnr"),
                      "curves": str(curves) if curves else None}, indent=1))
    return 0


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

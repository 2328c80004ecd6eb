"""Stage 5 of the ``gaussian-v1`` recipe: estimator and restorer trained together in large batches, on any
Keras backend (TensorFlow on a CPU, JAX on a GPU).

Usage::

    python benchmarks/train_joint.py --init src/blurkit/presets/gaussian-v1.keras --data ../shared/data/train \
        --out runs/joint.keras --steps 20000
    KERAS_BACKEND=jax python benchmarks/train_joint.py --init ... --data ... --out ... --minutes 7   # on a GPU

What it does: a ``wiener_unet`` file (``--init``) is trained further, both parts at once, on random crops of
the photos in ``--data`` (Gaussian blur, sigma from U(0.3, 3.5) per crop, reflect border, 8-bit
quantization, the 8 flips/rotations, as in ``train_preset.py``):

* each sample is a ``--context`` crop (384 px) and a ``--patch`` (192 px) at a random place inside it;
* the **estimator** sees the blurred context crop and is supervised with the crop's true sigma (squared
  error of log sigma, and the fixed Wiener balance of 1e-4, as in stage 1);
* the **restorer** restores the blurred patch with the parameters the estimator gives for the context crop,
  as it does at inference on a whole photo, with the per-image PSNR loss (``10 log10 MSE``). The estimate
  enters the restorer through a stop-gradient, so the restorer learns to use the estimate and the estimator
  learns only from the true sigma, and at every step the restorer sees the estimator's current estimates
  (``--freeze-estimator`` trains the restorer alone);
* ``--jitter TAU`` multiplies the sigma the restorer is given by ``exp(N(0, TAU))`` per sample. On its
  training photos the estimator errs less than on new ones (log-sigma RMS error 0.05-0.09 against
  0.11-0.14 on the val photos), so without it the restorer learns to trust estimates more than it should.
* ``--noise STD`` and ``--jpeg Q`` (``--degrade F``, default 0.5): a fraction F of the blurred crops get
  Gaussian noise of standard deviation U(0, STD) and, drawn apart, a fraction F a JPEG round trip at
  quality U(Q, 95), as camera files do; the targets are unchanged. The ``gaussian-v1-noisy`` preset was
  made with ``--noise 0.02 --jpeg 50`` (``docs/model-card-gaussian-v1-noisy.md``).

One Adam optimizer; the learning rate warms up over the first 2 % of the run, then follows a cosine decay to
1 % of ``--lr``. The run's length is ``--steps``, or, with ``--minutes``, a wall-clock budget for the whole run
(loading and compiling included): the schedule then advances with the elapsed fraction of the time left
after the first chunk (set once per chunk of ``--chunk`` steps), so a faster machine takes more steps. Files: ``--out`` (the final model, a normal blurkit ``.keras`` file with
the run recorded in its ``training`` metadata under ``joint``; the ``--init`` file's own ``joint`` record, if
any, moves to the list ``joint_before``) and, with ``--keep``, copies at those fractions of the run
(``--out`` with ``-f60`` etc. added to the name). Nothing here selects on validation photos: compare the
files with ``benchmarks/quality.py --model FILE``.

Batches are made on the CPU by ``--workers`` threads (OpenCV releases the GIL), ahead of the training step,
from a random generator seeded by ``(--seed, step)``: a run of fixed ``--steps`` sees the same batches
whatever the number of workers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train_preset import _flip, _pad_square, estimator_loss, parts  # noqa: E402

from blurkit.blurs.functional import jpeg  # noqa: E402  (OpenCV's round trip, 4:2:0 chroma)

SIGMA_RANGE = (0.3, 3.5)


def load_photos(folder, min_side: int = 1) -> list[np.ndarray]:
    """Every photo in ``folder`` as an RGB uint8 array (decoded once); each at least ``min_side`` px."""
    from blurkit.data.io import list_images, read_image
    from blurkit.data.pipeline import to_channels

    out = []
    for f in list_images(folder):
        img = read_image(f)
        if img.dtype != np.uint8:
            raise SystemExit(f"error: {f}: training photos must be 8-bit (got {img.dtype})")
        if min(img.shape[:2]) < min_side:
            raise SystemExit(f"error: {f}: {img.shape[0]}x{img.shape[1]} px, smaller than the {min_side}-px "
                             "patch (--patch)")
        try:
            img = to_channels(img, 3)  # grey repeated, alpha dropped
        except ValueError as e:
            raise SystemExit(f"error: {f}: {e}") from None
        out.append(np.ascontiguousarray(img))
    return out


def add_noise(image: np.ndarray, std: float, rng) -> np.ndarray:
    """A uint8 image plus Gaussian noise of standard deviation ``std`` (of the [0, 1] data range), rounded
    and clipped back to uint8: a sensor's noise, then the file's 8 bits."""
    return np.clip(np.rint(image + rng.normal(0.0, 255.0 * std, image.shape)), 0, 255).astype(np.uint8)


def degrade(blurred: np.ndarray, rng, noise: float, quality: int | None, fraction: float) -> np.ndarray:
    """A blurred uint8 crop as a camera file might hold it: with probability ``fraction`` each,
    :func:`add_noise` (standard deviation from U(0, ``noise``)) and :func:`jpeg` (quality from
    U(``quality``, 95)), in that order. ``rng`` is the degradations' own generator."""
    out = blurred
    draw = rng.random(4)
    if noise > 0 and draw[0] < fraction:
        out = add_noise(out, noise * draw[1], rng)
    if quality is not None and draw[2] < fraction:
        out = jpeg(out, round(quality + (95 - quality) * draw[3]))
    return out


def make_batch(photos: list[np.ndarray], seed: int, step: int, batch: int, context: int, patch: int,
               jitter: float = 0.0, noise: float = 0.0, jpeg: int | None = None, fraction: float = 0.5):
    """Batch ``step``: ``((context crops, patches), (sharp patches, [sigma, 0]))``, uint8 images (the estimator's
    loss reads the sigma; the second column is not used). With ``jitter`` > 0 the inputs have a third
    array, (batch, 1) log-factors from N(0, jitter) for the sigma the restorer is given (``--jitter``),
    drawn from their own generator: the crops and blurs are those of the same step without jitter.
    ``noise``, ``jpeg`` and ``fraction``: each blurred crop is passed through :func:`degrade`, with a
    generator of its own, so the crops and blurs are again those of the same step without them.

    A square crop of side ``min(context, h, w)`` of a random photo, one of its 8 flips/rotations, blurred
    (Gaussian, sigma from U(0.3, 3.5), reflect border, 8-bit) and mirrored out to ``context`` px if the
    photo is smaller; the patch is a random ``patch``-px window of the blurred crop, the target the same
    window of the sharp one.
    """
    from blurkit.blurs import GaussianBlur

    rng = np.random.default_rng([seed, step])
    rough = np.random.default_rng([seed, step, 3]) if noise > 0 or jpeg is not None else None
    blur = GaussianBlur(sigma=SIGMA_RANGE, border="reflect", quantize=True)
    ctx = np.empty((batch, context, context, 3), np.uint8)
    xs = np.empty((batch, patch, patch, 3), np.uint8)
    ys = np.empty((batch, patch, patch, 3), np.uint8)
    target = np.empty((batch, 2), np.float32)
    for i in range(batch):
        img = photos[int(rng.integers(len(photos)))]
        h, w = img.shape[:2]
        s = min(context, h, w)
        if s < patch:
            raise ValueError(f"a training photo is {h}x{w} px, smaller than the {patch}-px patch")
        y0, x0 = int(rng.integers(h - s + 1)), int(rng.integers(w - s + 1))
        crop = _flip(img[y0 : y0 + s, x0 : x0 + s], int(rng.integers(8)))
        params = blur.sample(rng)
        blurred = blur.apply(crop, params, rng=rng)
        if rough is not None:
            blurred = degrade(blurred, rough, noise, jpeg, fraction)
        py, px = int(rng.integers(s - patch + 1)), int(rng.integers(s - patch + 1))
        xs[i] = blurred[py : py + patch, px : px + patch]
        ys[i] = crop[py : py + patch, px : px + patch]
        ctx[i] = _pad_square(blurred, context)
        target[i] = (params["sigma"], 0.0)
    if jitter > 0:
        factors = np.random.default_rng([seed, step, 2]).normal(0.0, jitter, (batch, 1)).astype(np.float32)
        return (ctx, xs, factors), (ys, target)
    return (ctx, xs), (ys, target)


def jittered(params, log_factor, wiener):
    """Raw estimator ``params`` (B, 2) whose sigma is multiplied by ``exp(log_factor[:, 0])`` (kept inside the
    ``wiener`` layer's sigma range); the balance is unchanged."""
    from keras import ops

    lo, hi = wiener.sigma_range
    sigma = wiener.blur_parameters(params)[0] * ops.exp(log_factor[:, 0])
    u = ops.clip((sigma - lo) / (hi - lo), 1e-4, 1.0 - 1e-4)
    return ops.stack([ops.log(u) - ops.log(1.0 - u), params[:, 1]], axis=1)


def joint_model(model, context: int, patch: int, estimator_weight: float, freeze_estimator: bool,
                freeze_restorer: bool = False, through: bool = False, jitter: bool = False):
    """The training graph around a ``wiener_unet``'s two parts (shares their weights); compiled.

    ``through``: the estimate enters the restorer without the stop-gradient, so the restorer's loss trains
    the estimator too (towards the sigma the restorer does best with, not only the true one). ``jitter``:
    a third input, (B, 1) log-factors that multiply the sigma the restorer is given (see :func:`jittered`);
    the estimator's loss still reads its own output.
    """
    import keras
    from keras import ops

    from blurkit.metrics.losses import get_loss

    estimator, restorer, wiener = parts(model)
    estimator.trainable, restorer.trainable = not freeze_estimator, not freeze_restorer
    ctx_in = keras.Input((context, context, 3), dtype="uint8", name="context")
    patch_in = keras.Input((patch, patch, 3), dtype="uint8", name="patch")
    params = estimator(keras.layers.Rescaling(1 / 255, name="ctx_float")(ctx_in))
    fixed = params if through else keras.layers.Lambda(ops.stop_gradient, name="stop_gradient")(params)
    inputs = [ctx_in, patch_in]
    if jitter:
        factor_in = keras.Input((1,), dtype="float32", name="log_factor")
        fixed = keras.layers.Lambda(lambda a: jittered(a[0], a[1], wiener), name="jitter")([fixed, factor_in])
        inputs.append(factor_in)
    restored = restorer([keras.layers.Rescaling(1 / 255, name="patch_float")(patch_in), fixed])
    train = keras.Model(inputs, [restored, params], name="joint")

    psnr = get_loss("psnr_loss")

    def psnr_loss(y_true, y_pred):  # per image: 10 log10 MSE, of the uint8 targets as [0, 1]
        return psnr.call(ops.cast(y_true, "float32") / 255.0, y_pred)

    train.compile(optimizer=keras.optimizers.Adam(1e-4), loss=[psnr_loss, estimator_loss(wiener)],
                  loss_weights=[1.0, 0.0 if freeze_estimator else float(estimator_weight)],
                  jit_compile=keras.backend.backend() == "jax")
    return train


def fractions(text: str) -> list[float]:
    """``--keep``: comma-separated fractions of the run in (0, 1), sorted."""
    try:
        values = sorted(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected fractions like 0.5,0.75, got {text!r}") from None
    if any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"fractions must be between 0 and 1, got {text!r}")
    return values


def learning_rate(frac: float, lr: float, warmup: float = 0.02) -> float:
    """Linear warm-up from ``lr / 10`` over ``warmup`` of the run, then cosine decay to ``lr / 100``."""
    if frac < warmup:
        return lr * (0.1 + 0.9 * frac / warmup)
    t = min(1.0, (frac - warmup) / (1.0 - warmup))
    return lr * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", required=True, help="the wiener_unet .keras file to start from")
    p.add_argument("--data", required=True, help="folder of sharp training photos")
    p.add_argument("--out", required=True, help="the trained model (.keras)")
    length = p.add_mutually_exclusive_group(required=True)
    length.add_argument("--steps", type=int, help="length of the run in steps")
    length.add_argument("--minutes", type=float,
                        help="length of the whole run in wall-clock minutes, loading and compiling included")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--context", type=int, default=384)
    p.add_argument("--patch", type=int, default=192)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--estimator-weight", type=float, default=1.0)
    p.add_argument("--freeze-estimator", action="store_true")
    p.add_argument("--freeze-restorer", action="store_true", help="train the estimator alone")
    p.add_argument("--through", action="store_true",
                   help="no stop-gradient: the restorer's PSNR loss trains the estimator as well as its "
                        "sigma loss (weighted by --estimator-weight)")
    p.add_argument("--jitter", type=float, default=0.0,
                   help="multiply the sigma the restorer is given by exp(N(0, JITTER)) per sample, so it learns "
                        "to restore when the blind estimate is off (the estimator's loss is unchanged; 0: off)")
    p.add_argument("--noise", type=float, default=0.0, metavar="STD",
                   help="add Gaussian noise (standard deviation from U(0, STD) of the data range) to a "
                        "fraction (--degrade) of the blurred crops, as a camera sensor does (0: off)")
    p.add_argument("--jpeg", type=int, metavar="QUALITY",
                   help="JPEG-compress a fraction (--degrade) of the blurred crops, quality from "
                        "U(QUALITY, 95)")
    p.add_argument("--degrade", type=float, default=0.5, metavar="FRACTION",
                   help="the fraction of crops given noise, and (drawn apart) JPEG (default 0.5)")
    p.add_argument("--chunk", type=int, default=100, help="steps between learning-rate updates and log lines")
    p.add_argument("--keep", type=fractions, default=[],
                   help="also keep the model at these fractions of the run, e.g. 0.6,0.8")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args(argv)
    if not args.jitter >= 0:
        p.error(f"--jitter must be >= 0, got {args.jitter}")
    if not 0 <= args.noise <= 0.5:
        p.error(f"--noise must be in [0, 0.5], got {args.noise}")
    if args.jpeg is not None and not 1 <= args.jpeg <= 95:
        p.error(f"--jpeg must be in [1, 95], got {args.jpeg}")
    if not 0 <= args.degrade <= 1:
        p.error(f"--degrade must be in [0, 1], got {args.degrade}")
    t_start = time.time()

    import keras

    from blurkit import Deblurrer

    out = Path(args.out)
    if out.suffix != ".keras":
        sys.exit(f"error: --out must end in .keras, got {out}")
    d = Deblurrer.load(args.init)
    if not d.model_spec or d.model_spec.get("name") != "wiener_unet":
        sys.exit(f"error: {args.init} is not a wiener_unet model")
    photos = load_photos(args.data, args.patch)
    print(f"backend {keras.backend.backend()}, {len(photos)} photos, batch {args.batch} x "
          f"({args.context} context, {args.patch} patch)", flush=True)
    if args.freeze_estimator and args.freeze_restorer:
        sys.exit("error: --freeze-estimator and --freeze-restorer leave nothing to train")
    train = joint_model(d.model, args.context, args.patch, args.estimator_weight, args.freeze_estimator,
                        args.freeze_restorer, args.through, args.jitter > 0)
    keep = list(args.keep)
    kept: list[str] = []
    pool = ThreadPoolExecutor(max(1, args.workers))
    ahead = 2 * max(1, args.workers)
    futures = {}

    def batch(step: int):
        for s in range(step, step + ahead):
            if s not in futures:
                futures[s] = pool.submit(make_batch, photos, args.seed, s, args.batch, args.context, args.patch,
                                         args.jitter, args.noise, args.jpeg, args.degrade)
        return futures.pop(step).result()

    def chunk_data(start: int, n: int):
        for s in range(start, start + n):
            yield batch(s)

    step, t_train, log, frac = 0, None, [], 0.0
    while frac < 1.0:
        lr = learning_rate(frac, args.lr)
        train.optimizer.learning_rate = lr
        n = args.chunk if args.steps is None else min(args.chunk, args.steps - step)
        hist = train.fit(chunk_data(step, n), steps_per_epoch=n, epochs=1, shuffle=False, verbose=0).history
        if t_train is None:  # the first chunk includes compiling: the schedule's clock starts after it
            t_train = time.time()
        step += n
        if args.steps is not None:
            frac = step / args.steps
        else:
            frac = (time.time() - t_train) / max(1e-6, t_start + 60 * args.minutes - t_train)
        row = {"step": step, "lr": lr, "seconds": round(time.time() - t_start, 1),
               **{k: float(v[-1]) for k, v in hist.items()}}
        log.append(row)
        print(json.dumps(row), flush=True)
        while keep and frac >= keep[0]:
            f = keep.pop(0)
            path = out.with_name(f"{out.stem}-f{round(100 * f)}.keras")
            final = d.training
            d.training = {**final, "joint_kept_at_step": step}  # this copy only
            d.save(path)
            d.training = final
            kept.append(str(path))
            print(f"kept {path} at step {step}", flush=True)
    pool.shutdown(cancel_futures=True)
    seconds = time.time() - t_start
    try:
        devices = [str(v) for v in keras.distribution.list_devices()]
    except Exception:  # noqa: BLE001 - only recorded for the record
        devices = []
    rate = (step - log[0]["step"]) / max(1e-6, time.time() - t_train)
    earlier = [*d.training.get("joint_before", []), d.training["joint"]] if "joint" in d.training else []
    d.training = {**d.training, **({"joint_before": earlier} if earlier else {}), "joint": {
        "command": "python benchmarks/train_joint.py " + " ".join(argv or sys.argv[1:]),
        "backend": keras.backend.backend(), "steps": step, "minutes": round(seconds / 60, 1),
        "batch": args.batch, "context": args.context, "patch": args.patch, "lr": args.lr,
        "freeze_estimator": bool(args.freeze_estimator), "freeze_restorer": bool(args.freeze_restorer),
        "through": bool(args.through), "jitter": args.jitter, "noise": args.noise, "jpeg": args.jpeg,
        "degrade": args.degrade, "seed": args.seed, "devices": devices,
        "steps_per_second": round(rate, 2)}}
    d.save(out)
    print(json.dumps({"file": str(out), "kept": kept, "steps": step, "minutes": round(seconds / 60, 1),
                      "steps_per_second": round(rate, 2), "devices": devices, "last": log[-1]}), flush=True)
    return 0


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

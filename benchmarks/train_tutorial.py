"""Train the classic Keras deblurring tutorial's autoencoder with the tutorial's recipe (a baseline row).

Usage (about half an hour on a 2-core CPU; the model file is about 140 MB, keep it out of git)::

    python benchmarks/train_tutorial.py --data ../shared/data/train --out /work/runs/tutorial-autoencoder.keras
    python benchmarks/quality.py --tutorial /work/runs/tutorial-autoencoder.keras

The recipe, as in the tutorial:

* the ``autoencoder`` model with its default configuration, which is the tutorial's architecture (128x128x3
  input, strided convolutions 64-128-256, a 256-d dense bottleneck, transposed convolutions back,
  sigmoid output; 34,951,683 parameters);
* every photo resized WHOLE to 128x128 (``cv2.INTER_AREA``, aspect ratio not kept), and one blurred copy
  of it made once, before training; the pairs are fitted as in-memory arrays;
* Adam (learning rate 1e-3), MSE loss, 100 epochs, batch size 32, and the tutorial's ReduceLROnPlateau
  (factor sqrt(0.1), patience 5, min_lr 0.5e-6); the final weights are kept (no checkpoint selection).

Where it differs, so the comparison with the presets is fair:

* the photos are the presets' training photos (``--data``, default ``../shared/data/train``);
* the tutorial blurred with one fixed Gaussian blur; here each photo gets its own sigma drawn from the
  presets' range U(0.3, 3.5) (kernel ``2*ceil(3 sigma)+1``, reflect border, 8-bit quantization), seeded,
  so the model is trained on the blurs it is evaluated on;
* the tutorial validated on its training pairs; here 10 % of the photos are held out (seeded split) and
  ReduceLROnPlateau watches their loss;
* blurkit's pipeline applies random flips and 90-degree rotations to each (blurred, sharp) pair, which the
  tutorial did not.

The model is saved without the optimizer state (it is only needed to resume training).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORK = Path(__file__).resolve().parents[1].parent
BLUR = {"sigma": (0.3, 3.5), "border": "reflect", "quantize": True}


def load_pairs(data: str | Path, size: int, max_images: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(blurred, sharp)`` float32 arrays ``(N, size, size, 3)``: photos resized whole, blurred once."""
    import cv2

    from blurkit.data.io import list_images, read_image, to_float
    from blurkit.data.pipeline import to_channels
    from blurkit.registry import BLURS

    paths = list_images(data)
    if max_images is not None:
        paths = paths[: int(max_images)]
    blur = BLURS.create("gaussian", **BLUR)
    rng = np.random.default_rng(seed)
    sharp, blurred = [], []
    for p in paths:
        img = to_channels(to_float(read_image(p)), 3)
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        img = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)  # an 8-bit 128x128 photo, as the tutorial's
        sharp.append(img)
        blurred.append(blur(img, seed=rng)["image"])
    return (np.stack(blurred).astype(np.float32) / 255, np.stack(sharp).astype(np.float32) / 255)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(WORK / "shared" / "data" / "train"), help="sharp photos")
    p.add_argument("--out", default=str(WORK / "runs" / "tutorial-autoencoder.keras"),
                   help="model file (default: %(default)s; about 140 MB, never commit it)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--size", type=int, default=128, help="the tutorial's input size")
    p.add_argument("--max-images", type=int, help="only the first N photos (quick trials)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not Path(args.data).exists():
        sys.exit(f"error: no such folder {args.data} (pass --data DIR)")
    out = Path(args.out)
    if out.suffix != ".keras":
        sys.exit(f"error: --out must end in .keras, got {out}")

    from blurkit import Deblurrer

    t0 = time.time()
    blurred, sharp = load_pairs(args.data, args.size, args.max_images, args.seed)
    print(f"{len(sharp)} photos from {args.data} resized to {args.size}x{args.size} and blurred "
          f"(sigma U{BLUR['sigma']}, quantized) in {time.time() - t0:.0f} s", flush=True)

    d = Deblurrer(model="autoencoder", model_options={"input_size": args.size}, blur="gaussian",
                  blur_options=BLUR, loss="mse", learning_rate=args.learning_rate, batch_size=args.batch_size,
                  patches_per_image=1, seed=args.seed)
    print(d, flush=True)
    t1 = time.time()
    import keras

    # the tutorial keeps its final weights; saving them after every epoch also keeps a usable file (and the
    # number of epochs reached, in its metadata) if a long CPU run is stopped early
    keep = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: d.save(out))
    d.fit((blurred, sharp), epochs=args.epochs, validation_split=0.1, reduce_lr=True, verbose=2, callbacks=[keep])
    minutes = (time.time() - t1) / 60
    command = "python benchmarks/train_tutorial.py " + " ".join(sys.argv[1:] if argv is None else argv)
    d.training.update({
        "recipe": "tutorial", "train_minutes": round(minutes, 1), "command": command,
        "data": str(args.data), "images": int(len(sharp)), "resize": f"whole photo to {args.size}x{args.size}, "
        "cv2.INTER_AREA", "blur": {k: list(v) if isinstance(v, tuple) else v for k, v in BLUR.items()},
        "blur_seed": args.seed,
    })
    d.compile()  # a fresh, unbuilt optimizer: the file keeps the weights only (3x smaller)
    d.save(out)
    size_mb = out.stat().st_size / 1e6
    print(json.dumps({"file": str(out), "size_mb": round(size_mb, 1), "train_minutes": round(minutes, 1),
                      "epochs": len(d.history.get("loss", [])), "final_validation": d.validation},
                     indent=1))
    print(f"trained in {minutes:.1f} min; wrote {out} ({size_mb:.0f} MB; do not commit it)")
    return 0


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

"""What moves a ``wiener_unet`` model's blind sigma estimate besides the blur? (a diagnostic for issue 4)

Each photo is first processed the way a camera or an editor might have processed it *before* the blur, then
blurred as in ``benchmarks/quality.py`` (Gaussian, reflect border, 8-bit quantization, seed 0), and the
model's estimator reads its sigma off the whole photo. A perfect blind estimator would print the true sigma
in every column: the processing happened before the blur, so it is part of the "sharp" photo. Columns:

* ``as is``: the photo unchanged;
* ``sharpened r1 a1`` / ``r1 a2``: unsharp masking with radius 1 and amount 1 or 2 (in-camera sharpening;
  ``blurkit.classical.unsharp``, which works around scikit-image's ``channel_axis=-1`` bug);
* ``half size``: downscaled 2x (area interpolation: more detail per pixel);
* ``soft 0.6``: a Gaussian blur of sigma 0.6 first (a soft lens): the true total sigma is then
  ``sqrt(sigma**2 + 0.36)``, printed as the target;
* ``dark x0.3``: intensities times 0.3 (an under-exposed photo, where the 8-bit rounding weighs more).

Usage::

    python benchmarks/estimator_probe.py                          # the gaussian-v1 preset, ../shared/data/val
    python benchmarks/estimator_probe.py --model m.keras --data photos/ --sigmas 1 2
"""

from __future__ import annotations

import sys
from pathlib import Path

PROCESSING = ("as is", "sharpened r1 a1", "sharpened r1 a2", "half size", "soft 0.6", "dark x0.3")


def process(image, kind: str):
    """The photo (float RGB in [0, 1]) processed as the column ``kind`` says."""
    import cv2
    import numpy as np

    from blurkit.classical import blur_gaussian, unsharp

    if kind == "as is":
        out = image
    elif kind.startswith("sharpened"):
        out = unsharp(image, radius=1.0, amount=float(kind[-1]))
    elif kind == "half size":
        out = cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    elif kind == "soft 0.6":
        out = blur_gaussian(image, 0.6, seed=0)[0]
    elif kind == "dark x0.3":
        out = image * 0.3
    else:
        raise ValueError(f"unknown processing {kind!r}; choose from {PROCESSING}")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from quality import BLUR_SEED, load_photos, protocol_parser  # the protocol of benchmarks/quality.py
    from train_preset import load_or_preset, parts

    p = protocol_parser(__doc__, "a wiener_unet .keras file (default: the gaussian-v1 preset)", sigmas=(1.0, 2.0))
    args = p.parse_args(argv)

    import keras
    import numpy as np

    from blurkit.classical import blur_gaussian

    d = load_or_preset(args.model)
    estimator, _, wiener = parts(d.model)

    def estimate(blurred) -> float:
        raw = estimator.predict(blurred[None], verbose=0)
        return float(keras.ops.convert_to_numpy(wiener.blur_parameters(raw)[0])[0])

    named = load_photos(Path(args.data), None, None)
    print(f"{len(named)} photos from {args.data}; {args.model or 'gaussian-v1'}; the blind sigma estimate of "
          "the whole photo after each processing (then the blur)")
    print("| photo | sigma | " + " | ".join(PROCESSING) + " |")
    print("|---|---:|" + "---:|" * len(PROCESSING))
    errors = {k: [] for k in PROCESSING}
    for name, image in named:
        for sigma in args.sigmas:
            cells = []
            for kind in PROCESSING:
                target = float(np.hypot(sigma, 0.6)) if kind == "soft 0.6" else sigma
                got = estimate(blur_gaussian(process(image, kind), sigma, seed=BLUR_SEED)[0].astype(np.float32))
                errors[kind].append(np.log(got / target))
                cells.append(f"{got:.2f}" + (f" ({target:.2f})" if target != sigma else ""))
            print(f"| {name} | {sigma:g} | " + " | ".join(cells) + " |", flush=True)
    print("| **mean of log(estimate / target)** | | "
          + " | ".join(f"{np.mean(errors[k]):+.3f}" for k in PROCESSING) + " |")
    return 0


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

"""Robustness benchmark: blurred photos as camera files hold them, with sensor noise or JPEG compression.

The quality benchmark (``benchmarks/quality.py``) blurs clean photos and only quantizes them to 8 bits. Real
files also carry sensor noise and JPEG artefacts, which a deconvolution amplifies. This script blurs the
same photos the same way (Gaussian, reflect border, 8-bit, seed 0), then degrades each blurred image:

* ``8-bit``: nothing more (the quality benchmark's input);
* ``noise S``: additive Gaussian noise of standard deviation S of the data range (0.005, 0.01, 0.02 are
  1.3, 2.6 and 5.1 levels of 255: a good camera at base ISO to a phone in dim light), then 8 bits again;
* ``JPEG Q``: OpenCV's JPEG encoder at quality Q (4:2:0 chroma), decoded again.

Rows: each (sigma, degradation). Columns (mean PSNR / SSIM over the photos, as in the quality benchmark):
the degraded input; scikit-image's Wiener with the TRUE kernel and its balance tuned per row on these same
photos (so it is told the noise level too); each shipped preset and each ``--model``, blind (``predict``)
and given the true sigma (``predict(sigma=...)``); with both shipped presets, ``presets auto``: per photo, the
blind restoration of the preset :func:`blurkit.presets.choose_preset` picks for the degraded 8-bit input (what
``blurkit deblur`` does without a model file; the rows record how many photos went to each). Nothing is tuned
for the models here. A second table gives each
model's blind sigma estimates (``estimate_sigma``): the geometric mean of estimate / true sigma over the
photos (above 1: over-estimated), and the RMS of the log of that ratio.

Usage::

    python benchmarks/robustness.py                           # ../shared/data/val, the shipped presets
    python benchmarks/robustness.py --data skimage --model robust.keras --json /tmp/r.json
    python benchmarks/robustness.py --max-images 2 --sigmas 2 --noise 0.01 --jpeg   # a quick trial

``--noise`` and ``--jpeg`` with no value mean none: the quick trial above rates 8-bit and noise 0.01, no JPEG
(``--noise 0.01`` alone does the same). Without either option, every default level of both; with one of them
only, none of the other. The ``8-bit`` row is always there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from quality import BLUR_SEED, DEFAULT_DATA, SIGMAS, fmt_sigma, load_photos, machine, versions  # noqa: E402
from train_joint import add_noise  # noqa: E402

from blurkit.blurs.functional import jpeg  # noqa: E402

NOISE = (0.005, 0.01, 0.02)
JPEG_QUALITY = (90, 75, 50)
DEFAULT_JSON = HERE / "results" / "robustness.json"


def degradations(noise, qualities) -> list[tuple[str, object]]:
    """``(name, fn(uint8 image, rng) -> uint8 image)`` for each degradation, the clean 8-bit file first."""
    out = [("8-bit", lambda u, rng: u)]
    out += [(f"noise {s:g}", lambda u, rng, s=s: add_noise(u, s, rng)) for s in noise]
    out += [(f"JPEG {q}", lambda u, rng, q=q: jpeg(u, q)) for q in qualities]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help="folder of sharp photos, or 'skimage' (see benchmarks/quality.py; default: "
                        "%(default)s)")
    p.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS),
                   help="blur sigmas (default 1 2 3)")
    p.add_argument("--model", action="append", default=[], metavar="FILE", help="a model file (repeatable)")
    p.add_argument("--no-presets", action="store_true", help="leave out the shipped presets")
    p.add_argument("--max-images", type=int, help="only the first N photos")
    p.add_argument("--noise", type=float, nargs="*",
                   help="noise levels (default 0.005 0.01 0.02; with --jpeg alone, none; a bare --noise, "
                        "with no value, means none too)")
    p.add_argument("--jpeg", type=int, nargs="*",
                   help="JPEG qualities (default 90 75 50; with --noise alone, none; a bare --jpeg, "
                        "with no value, means none too: no JPEG rows)")
    p.add_argument("--json", default=str(DEFAULT_JSON),
                   help="results file (default: %(default)s, the committed numbers of the README's table: "
                        "give another for any other run)")
    args = p.parse_args(argv)
    noise = NOISE if args.noise is None else tuple(args.noise)
    qualities = JPEG_QUALITY if args.jpeg is None else tuple(args.jpeg)
    if args.noise is not None and args.jpeg is None:
        qualities = ()
    if args.jpeg is not None and args.noise is None:
        noise = ()
    if any(not s > 0 for s in args.sigmas):
        sys.exit(f"error: sigmas must be positive, got {args.sigmas}")
    if any(not 0 < s <= 0.5 for s in noise) or any(not 1 <= q <= 100 for q in qualities):
        sys.exit(f"error: noise levels must be in (0, 0.5] and JPEG qualities in [1, 100], got {noise} and "
                 f"{qualities}")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from blurkit import Deblurrer
    from blurkit.classical import DEFAULT_BALANCES, blur_gaussian, tune, wiener
    from blurkit.data.io import atomic_write_text
    from blurkit.metrics.functional import psnr, ssim
    from blurkit.presets import AUTO, DEFAULT_PRESET, choose_preset, list_presets
    from blurkit.presets.auto import NOISY_PRESET

    files = args.model
    for f in files:
        if not Path(f).is_file():
            sys.exit(f"error: no such model file {f}")
    data = Path(args.data)
    if args.data != "skimage" and not data.exists():
        sys.exit(f"error: no such folder {data} (pass --data DIR)")
    photos = load_photos(data, args.max_images, None)
    models = [] if args.no_presets else [(f"preset {n}", Deblurrer.from_preset(n)) for n in list_presets()]
    models += [(f"model {Path(f).name}", Deblurrer.load(f)) for f in files]
    kinds = degradations(noise, qualities)
    print(f"{len(photos)} photos from {data}; {len(kinds)} degradations x {len(args.sigmas)} sigmas",
          flush=True)

    rows, t0 = [], time.time()
    for sigma in args.sigmas:
        # (image, kernel) per photo, the image with 8-bit values
        blurred = [blur_gaussian(x, sigma, seed=BLUR_SEED) for _, x in photos]
        for name, fn in kinds:
            inputs, files = [], []
            for i, (b, _) in enumerate(blurred):
                rng = np.random.default_rng([BLUR_SEED, i, round(1000 * sigma)])  # one draw, every method
                u = fn(np.rint(b * 255).astype(np.uint8), rng)
                files.append(u)
                inputs.append(u.astype(np.float32) / 255)
            examples = [(y, x, k) for y, (_, x), (_, k) in zip(inputs, photos, blurred, strict=True)]
            balance, _ = tune(lambda b, k, c: wiener(b, k, balance=c), examples, DEFAULT_BALANCES)
            outs = {"input": inputs,
                    "Wiener, true kernel": [wiener(y, k, balance=balance) for y, _, k in examples]}
            estimates = {}
            for label, d in models:
                outs[f"{label}, blind"] = [d.predict(y) for y in inputs]
                outs[f"{label}, given sigma"] = [d.predict(y, sigma=sigma) for y in inputs]
                logs = np.log([d.estimate_sigma(y) / sigma for y in inputs])
                estimates[label] = {"ratio": float(np.exp(np.mean(logs))),
                                    "rms": float(np.sqrt(np.mean(logs**2)))}
            picks = None
            if all(f"preset {n}, blind" in outs for n in (DEFAULT_PRESET, NOISY_PRESET)):
                picks = [choose_preset(u) for u in files]  # the 8-bit file, as blurkit deblur reads it
                outs[f"presets {AUTO}, blind"] = [outs[f"preset {n}, blind"][i] for i, n in enumerate(picks)]
            scores = {m: {"psnr": float(np.mean([psnr(x, r) for (_, x), r in zip(photos, rs, strict=True)])),
                          "ssim": float(np.mean([ssim(x, r) for (_, x), r in zip(photos, rs, strict=True)]))}
                      for m, rs in outs.items()}
            rows.append({"sigma": sigma, "degradation": name, "wiener_balance": balance, "scores": scores,
                         "estimates": estimates})
            if picks is not None:
                rows[-1]["auto_picks"] = {n: picks.count(n) for n in (DEFAULT_PRESET, NOISY_PRESET)}
            chosen = f"; auto chose {rows[-1]['auto_picks']}" if picks is not None else ""
            print(f"sigma {sigma:g}, {name}: " + ", ".join(f"{m} {v['psnr']:.2f}" for m, v in scores.items())
                  + f"{chosen} ({time.time() - t0:.0f} s)", flush=True)

    table = format_table(rows)
    print("\nMean PSNR (dB) / SSIM; Wiener's balance tuned per row on these photos, the models blind or "
          "given the true sigma, not tuned\n")
    print(table)
    estimates = format_estimates(rows) if models else None
    if estimates:
        print("\nThe blind sigma estimates: geometric mean of estimate / true sigma over the photos "
              "(RMS of its log)\n")
        print(estimates)
    out = {"benchmark": "robustness", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "command": "python benchmarks/robustness.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "machine": machine(), "versions": versions(), "data": str(data),
           "images": [n for n, _ in photos],
           "blur": {"name": "gaussian", "border": "reflect", "quantize": True, "seed": BLUR_SEED},
           "rows": rows, "table_markdown": table,
           "estimates_markdown": estimates}
    atomic_write_text(args.json, json.dumps(out, indent=1, allow_nan=False) + "\n")
    print(f"\nwrote {args.json}")
    return 0


def format_table(rows: list[dict]) -> str:
    """Markdown: one row per (sigma, degradation); ``PSNR / SSIM`` per method."""
    return _markdown(rows, "scores", lambda v: f"{v['psnr']:.2f} / {v['ssim']:.3f}")


def format_estimates(rows: list[dict]) -> str:
    """Markdown: one row per (sigma, degradation); per model, the estimates' geometric-mean ratio to the true
    sigma and the RMS of their log error."""
    return _markdown(rows, "estimates", lambda v: f"{v['ratio']:.3f} ({v['rms']:.3f})")


def _markdown(rows: list[dict], key: str, cell) -> str:
    """One row per (sigma, degradation), a column per name in ``row[key]``, each ``cell(row[key][name])``."""
    names = list(rows[0][key])
    lines = ["| sigma | file | " + " | ".join(names) + " |", "|---:|---|" + "---:|" * len(names)]
    for r in rows:
        cells = [cell(r[key][n]) for n in names]
        lines.append(f"| {fmt_sigma(r['sigma'])} | {r['degradation']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

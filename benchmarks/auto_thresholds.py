"""How well ``blurkit deblur``'s per-photo preset choice works, and where its thresholds come from.

Without a model file, ``blurkit deblur`` restores each photo with ``gaussian-v1-noisy`` when
:func:`blurkit.presets.auto.noise_level` or :func:`~blurkit.presets.auto.blockiness` is above its threshold,
else with ``gaussian-v1`` (:func:`blurkit.presets.choose_preset`). This script makes the cases: a centre crop
of each photo (``--crop``, default 384 px), Gaussian blur sigma 0.5 / 1 / 2 / 3 (reflect border, 8 bits, as
in ``benchmarks/quality.py``), then clean, or with noise 0.002 / 0.005 / 0.01 / 0.02 (standard deviation of
the data range, 8 bits again), or a JPEG of quality 95 / 90 / 75 / 50 (as ``benchmarks/robustness.py``
degrades). For each case it records both measures and the PSNR of both presets (blind), then:

* ``--search``: the thresholds that maximise the mean PSNR of the chosen preset over all cases (each kind --
  clean, noise, JPEG -- weighted alike), on a grid (of the pairs that tie, the middle one); the shipped ones
  were chosen so, on every eighth of the 190 training photos (``--data ../shared/data/train --every 8
  --search``);
* always: a table per kind and sigma of the mean PSNR of ``gaussian-v1``, ``gaussian-v1-noisy``, the
  choice (the shipped thresholds, or the searched ones with ``--search``) and the better of the two per case
  (the best any choice could do), and the share of cases sent to the noisy preset.

Usage::

    python benchmarks/auto_thresholds.py --data ../shared/data/train --every 8 --search   # 8 min, 2 CPU cores
    python benchmarks/auto_thresholds.py                       # ../shared/data/val, the shipped thresholds
    python benchmarks/auto_thresholds.py --data skimage --json /tmp/auto-skimage.json
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

from quality import BLUR_SEED, DEFAULT_DATA, load_photos, machine, versions  # noqa: E402
from train_joint import add_noise  # noqa: E402

from blurkit.blurs.functional import jpeg  # noqa: E402

SIGMAS = (0.5, 1.0, 2.0, 3.0)
NOISE = (0.002, 0.005, 0.01, 0.02)
QUALITIES = (95, 90, 75, 50)
KINDS = ("clean", "noise", "JPEG")
NOISE_GRID = np.round(np.arange(0.0015, 0.0100001, 0.0001), 4)
BLOCK_GRID = np.round(np.arange(0.05, 0.4001, 0.01), 2)


def crop(image: np.ndarray, side: int) -> np.ndarray:
    """The centre ``side`` x ``side`` crop (the whole image where it is smaller)."""
    h, w = image.shape[:2]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return np.ascontiguousarray(image[top:top + side, left:left + side])


def summarise(cases: list[dict], noise_t: float, block_t: float, per_sigma: bool = True) -> dict:
    """Per kind and (``per_sigma``) per (kind, sigma): mean PSNR of each preset, of the choice and of the
    better one per case, and the share of cases the choice sends to the noisy preset."""
    out = {}
    keys = [(k, None) for k in KINDS] + ([(k, s) for k in KINDS for s in SIGMAS] if per_sigma else [])
    for key in keys:
        sel = [c for c in cases if c["kind"] == key[0] and (key[1] is None or c["sigma"] == key[1])]
        if not sel:
            continue
        noisy = np.array([c["noise_level"] > noise_t or c["blockiness"] > block_t for c in sel])
        a = np.array([c["psnr_default"] for c in sel])
        b = np.array([c["psnr_noisy"] for c in sel])
        out[f"{key[0]}" if key[1] is None else f"{key[0]}, sigma {key[1]:g}"] = {
            "cases": len(sel), "default": float(a.mean()), "noisy": float(b.mean()),
            "choice": float(np.where(noisy, b, a).mean()), "best": float(np.maximum(a, b).mean()),
            "to_noisy": float(noisy.mean())}
    return out


def search(cases: list[dict]) -> tuple[float, float]:
    """The grid thresholds with the best mean over the kinds of the chosen preset's mean PSNR. Many pairs tie
    (no case lies between them): of the tied pairs, the one nearest the middle of their range, so that the
    threshold sits between the classes it separates rather than at the edge of one."""
    scores = {}
    for t in NOISE_GRID:
        for b in BLOCK_GRID:
            s = summarise(cases, float(t), float(b), per_sigma=False)
            scores[(float(t), float(b))] = round(float(np.mean([s[k]["choice"] for k in KINDS if k in s])), 6)
    top = max(scores.values())
    tied = np.array([pair for pair, v in scores.items() if v == top])
    middle = np.median(tied, axis=0)
    span = np.ptp(tied, axis=0) + np.array([NOISE_GRID[1] - NOISE_GRID[0], BLOCK_GRID[1] - BLOCK_GRID[0]])
    t, b = tied[np.argmin(np.sum(((tied - middle) / span) ** 2, axis=1))]
    return float(t), float(b)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder of sharp photos, or 'skimage' "
                   "(default: %(default)s)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="only every Nth photo (default: all)")
    p.add_argument("--crop", type=int, default=384, metavar="PX", help="centre crop side (default 384)")
    p.add_argument("--search", action="store_true", help="search the thresholds on these cases")
    p.add_argument("--json", help="write the cases and tables here")
    args = p.parse_args(argv)
    if args.every < 1 or args.crop < 32:
        sys.exit(f"error: --every must be at least 1 and --crop at least 32, got {args.every} and "
                 f"{args.crop}")
    data = Path(args.data)
    if args.data != "skimage" and not data.exists():
        sys.exit(f"error: no such folder {data} (pass --data DIR)")

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from blurkit import Deblurrer
    from blurkit.classical import blur_gaussian
    from blurkit.data.io import atomic_write_text
    from blurkit.metrics.functional import psnr
    from blurkit.presets import DEFAULT_PRESET
    from blurkit.presets.auto import BLOCK_THRESHOLD, NOISE_THRESHOLD, NOISY_PRESET, blockiness, noise_level

    photos = [(n, crop(x, args.crop)) for n, x in load_photos(data, None, None)[:: args.every]]
    default, noisy = Deblurrer.from_preset(DEFAULT_PRESET), Deblurrer.from_preset(NOISY_PRESET)
    print(f"{len(photos)} photos from {data}, {args.crop}-px crops", flush=True)
    cases, t0 = [], time.time()
    for sigma in SIGMAS:
        for i, (name, x) in enumerate(photos):
            clean = np.rint(blur_gaussian(x, sigma, seed=BLUR_SEED)[0] * 255).astype(np.uint8)
            versions_ = [("clean", "8-bit", clean)]
            for s in NOISE:
                rng = np.random.default_rng([BLUR_SEED, i, round(1000 * sigma), round(1e4 * s)])
                versions_.append(("noise", f"noise {s:g}", add_noise(clean, s, rng)))
            versions_ += [("JPEG", f"JPEG {q}", jpeg(clean, q)) for q in QUALITIES]
            for kind, label, u in versions_:
                y = u.astype(np.float32) / 255
                cases.append({"photo": name, "sigma": sigma, "kind": kind, "file": label,
                              "noise_level": noise_level(u), "blockiness": blockiness(u),
                              "psnr_default": float(psnr(x, default.predict(y))),
                              "psnr_noisy": float(psnr(x, noisy.predict(y)))})
        print(f"sigma {sigma:g} done ({time.time() - t0:.0f} s)", flush=True)

    noise_t, block_t = search(cases) if args.search else (NOISE_THRESHOLD, BLOCK_THRESHOLD)
    table = summarise(cases, noise_t, block_t)
    md = format_table(table)
    which = "searched on these cases" if args.search else "shipped"
    print(f"\nthresholds ({which}): noise_level > {noise_t:g} or blockiness > {block_t:g}\n")
    print(md)
    if args.json:
        out = {"benchmark": "auto_thresholds",
               "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "command": "python benchmarks/auto_thresholds.py "
                          + " ".join(sys.argv[1:] if argv is None else argv),
               "machine": machine(), "versions": versions(), "data": str(data), "crop": args.crop,
               "thresholds": {"noise_level": noise_t, "blockiness": block_t, "searched": args.search},
               "table": table, "table_markdown": md, "cases": cases}
        atomic_write_text(args.json, json.dumps(out, indent=1, allow_nan=False) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def format_table(table: dict) -> str:
    """Markdown: a row per kind (and per kind and sigma); mean PSNR of each column, share sent to the noisy
    preset."""
    lines = ["| inputs | cases | gaussian-v1 | gaussian-v1-noisy | choice | better of the two | to noisy |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, v in table.items():
        lines.append(f"| {name} | {v['cases']} | {v['default']:.2f} | {v['noisy']:.2f} | {v['choice']:.2f} | "
                     f"{v['best']:.2f} | {100 * v['to_noisy']:.0f} % |")
    return "\n".join(lines)


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

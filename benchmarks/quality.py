"""Quality benchmark: blurkit's models against the classical baselines, on full-resolution photos.

Usage::

    python benchmarks/quality.py                                   # ../shared/data/val, every shipped preset
    python benchmarks/quality.py --tutorial /work/runs/tutorial-autoencoder.keras --model my.keras
    python benchmarks/quality.py --data DIR --max-images 2 --max-side 256 --json /tmp/q.json   # quick trial
    python benchmarks/quality.py --data skimage --json skimage.json   # a second test set, not the val photos
    python benchmarks/quality.py --border crop --json crop.json       # borders blurred with real content

Protocol (printed beside the table and stored in the JSON):

* Sharp photos at full resolution (unless ``--max-side`` downscales them, for quick trials only), RGB,
  8-bit files read as float in [0, 1]. ``--data skimage`` takes, instead of a folder, the ten sample images
  that ship with scikit-image and are not among the validation photos (``SKIMAGE_SAMPLES``: greyscale ones
  as RGB): a second test set that no training or selection has seen, with textures, microscopy and astronomy
  beside photos.
* Gaussian blur with sigma 1, 2 and 3, kernel size ``2 * ceil(3 * sigma) + 1``, reflect border
  (``numpy.pad`` "reflect"), then 8-bit quantization (``quantize=True``). Each (photo, sigma) is blurred
  once, with a fixed seed, and the same blurred image is given to every method.
* ``--border crop``: the photo is blurred whole as above, then ``ceil(3 * max sigma)`` pixels are cut from
  every side of the blurred and of the sharp image, so that the blurred border pixels hold real content
  from beyond the frame, as in a camera. With the default (``reflect``) the border was made by the very
  rule Wiener's and Richardson-Lucy's padding (and the models' training blurs) assume, an "inverse
  crime" that makes the borders easier than a camera's for every method.
* PSNR over all pixels and the three RGB channels, data range 1. SSIM per scikit-image with
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``, per channel and averaged
  (``blurkit.metrics.functional.psnr`` / ``ssim``). Both are means over the photos.
* Rows: the blurred input; unsharp masking (scikit-image, blind; radius and amount tuned per sigma on these
  same photos); Wiener (scikit-image, given the TRUE kernel; balance tuned per sigma on these same photos);
  Richardson-Lucy (scikit-image, TRUE kernel, 30 iterations); both reflect-padded against border ringing
  (``blurkit.classical``); the tutorial's autoencoder (``--tutorial``); every shipped preset and every
  ``--model``. The models are blind: they get the blurred image only, and are applied with
  ``Deblurrer.predict`` (tiled where the image is large or the model has a fixed input size). Both sides
  have seen the default photos (``../shared/data/val``): the classical rows are tuned on them, and the
  presets' checkpoints were selected on them (their model cards); ``--data skimage`` is the set nothing
  was tuned or selected on.
* ``--tune-rl`` adds a Richardson-Lucy row whose iteration count is tuned per sigma on these same photos,
  as Wiener's balance is (among ``RL_TUNED_ITERATIONS``, each photo deconvolved once up to the largest, the
  iterates kept on the way): the issue's protocol fixes 30 iterations, which is far from converged.
* ``--ensemble N`` adds a row per preset and per ``--model`` file restored with ``predict(ensemble=N)``: the
  average of N flipped/rotated restorations (test-time augmentation, N times the time).
* ``--given-sigma`` adds a row per preset and per ``--model`` file given the true sigma
  (``predict(sigma=...)``: non-blind, the information the Wiener and Richardson-Lucy rows get; with
  ``--ensemble``, also both together). Only a model with a blur estimator feeding a Gaussian Wiener layer
  (``wiener_unet``, as the presets) can be given the sigma, within the sigmas it was built for: for any other
  the script prints a note and leaves its given-sigma rows out. Neither option applies to the tutorial
  autoencoder (``--tutorial``), whose one row is the tutorial's recipe as it stands (a note says so).
* Seconds per megapixel: wall-clock time of each restoration on this machine's CPU, median over all
  (photo, sigma) runs of the method (models after one untimed warm-up call); the JSON also has the
  median per sigma (``seconds_per_megapixel_by_sigma``).
* Paired against Wiener: per sigma, each row's PSNR minus Wiener's photo by photo, their mean with a 95 %
  bootstrap interval (10,000 resamples of the photos, seeded), the photos where the row is ahead in PSNR
  and in SSIM, and the two-sided Wilcoxon signed-rank p-value of the PSNR differences
  (``paired_vs_wiener`` in the JSON; ``python benchmarks/paired.py FILE`` prints it for any results
  file). With 7 photos an interval that includes 0 means "not shown".
* ``paired_vs_wiener`` and ``seconds_per_megapixel_by_sigma`` came on 2026-12-07: of the committed files in
  ``benchmarks/results/``, ``quality-crop.json`` and ``quality-skimage-crop.json`` have them, the eight older
  ``quality*.json`` do not (they were not rewritten). Every file has ``per_image`` (each photo and sigma's
  PSNR, SSIM and seconds), from which ``python benchmarks/paired.py FILE`` computes the paired table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "val"
DEFAULT_JSON = HERE / "results" / "quality.json"
SKIMAGE_SAMPLES = ("brick", "camera", "clock", "coins", "grass", "gravel", "hubble_deep_field",
                   "immunohistochemistry", "moon", "retina")  # in scikit-image's wheel, not in ../shared/data/val
SIGMAS = (1.0, 2.0, 3.0)
BLUR_SEED = 0
RL_ITERATIONS = 30
RL_TUNED_ITERATIONS = (30, 100, 300, 1000)  # --tune-rl: the counts tried (30 is the protocol's row)
UNSHARP_RADII = (0.5, 1.0, 2.0, 3.0, 5.0)
UNSHARP_AMOUNTS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
UNSHARP_GRID = tuple((r, a) for r in UNSHARP_RADII for a in UNSHARP_AMOUNTS)

PROTOCOL = [
    "full-resolution photos (downscaled only with --max-side), RGB, 8-bit read as float [0, 1]",
    "Gaussian blur sigma {sigmas}, kernel 2*ceil(3*sigma)+1, reflect border, 8-bit quantization; "
    "each (photo, sigma) blurred once (seed 0) and given to every method",
    "PSNR on RGB, data range 1; SSIM per scikit-image (gaussian_weights=True, sigma=1.5, "
    "use_sample_covariance=False, data_range=1, per channel); means over photos",
    "Wiener and Richardson-Lucy get the TRUE kernel (non-blind) and reflect padding; Wiener's balance and "
    "unsharp's radius/amount are tuned per sigma ON THESE SAME PHOTOS (max mean PSNR); models are blind "
    "unless the row says 'given the true sigma'",
    "s/MP: seconds per megapixel on this CPU, median over (photo, sigma) runs",
]


def protocol_parser(doc: str, model_help: str, sigmas=SIGMAS) -> argparse.ArgumentParser:
    """The arguments every script that measures one model under this protocol takes: ``--model`` (a file;
    without it, the gaussian-v1 preset: :func:`train_preset.load_or_preset`), ``--data`` (a folder, or
    ``skimage``) and ``--sigmas``; the script adds its own."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help=model_help)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--sigmas", type=float, nargs="+", default=list(sigmas))
    return p


# ---------------------------------------------------------------------------------------------- data
def load_photos(data: Path, max_images: int | None, max_side: int | None) -> list[tuple[str, np.ndarray]]:
    """``(name, float32 RGB image)`` for each photo of ``data`` (``skimage``: :data:`SKIMAGE_SAMPLES`),
    optionally downscaled (INTER_AREA)."""
    import cv2

    from blurkit.data.io import list_images, read_image, to_float
    from blurkit.data.pipeline import to_channels

    if str(data) == "skimage":
        from skimage import data as samples

        paths = list(SKIMAGE_SAMPLES)  # names only: the images come from scikit-image
        read = {n: getattr(samples, n) for n in SKIMAGE_SAMPLES}
    else:
        paths, read = list_images(data), {}
    if max_images is not None:
        paths = paths[: max(0, int(max_images))]
    photos = []
    for p in paths:
        img = to_channels(to_float(read[p]() if read else read_image(p)), 3)
        h, w = img.shape[:2]
        if max_side and max(h, w) > max_side:
            s = max_side / max(h, w)
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        name = p if read else p.relative_to(data).as_posix() if data.is_dir() else p.name
        photos.append((name, np.ascontiguousarray(np.clip(img, 0, 1), dtype=np.float32)))
    if not photos:
        raise SystemExit(f"error: no photos in {data}")
    return photos


# -------------------------------------------------------------------------------------------- methods
class Method:
    """One row: ``restore(blurred, kernel, sigma) -> restored`` plus its per-sigma parameters."""

    def __init__(self, name: str, restore, *, kind: str, params: dict | None = None, warmup: bool = False,
                 info: dict | None = None) -> None:
        self.name, self.restore, self.kind = name, restore, kind
        self.params = params or {}
        self.warmup = warmup
        self.info = info or {}


def model_methods(name: str, path: str | Path | None, preset: str | None, kind: str,
                  ensemble: int | None = None, given_sigma: bool = False,
                  sigmas: list[float] | None = None) -> list[Method]:
    """The model's row, with ``ensemble`` a row for ``predict(ensemble=...)``, and with ``given_sigma`` a row
    for ``predict(sigma=the true sigma)`` (and one for both); one model loaded. The given-sigma rows are left
    out, with a note on stdout, when the model cannot be given one of ``sigmas`` (no blur estimator feeding a
    Gaussian Wiener layer, or a sigma outside those it was built for: the library's reason is printed)."""
    from blurkit import Deblurrer

    d = Deblurrer.from_preset(preset) if preset else Deblurrer.load(path)
    if given_sigma:
        try:
            for s in sigmas or []:
                d._sigma_param(s, "--given-sigma")  # what predict(sigma=s) checks, before any photo
        except ValueError as exc:
            print(f"note: {name}: no given-sigma row ({exc})", flush=True)
            given_sigma = False
    spec = d.model_spec or {}
    info = {"file": str(path or getattr(d, "source", "")), "model": spec.get("name"),
            "params": int(d.model.count_params()), "fixed_size": d.fixed_size, "tile_size": d.tile_size,
            "training": {k: d.training.get(k) for k in ("recipe", "epochs", "data", "train_minutes")
                         if k in d.training}}
    rows = [Method(name, lambda b, k, s: d.predict(b), kind=kind, warmup=True, info=info)]
    if ensemble:
        rows.append(Method(f"{name}, x{ensemble} self-ensemble", lambda b, k, s: d.predict(b, ensemble=ensemble),
                           kind=kind, warmup=True, params={"ensemble": ensemble}, info=info))
    if given_sigma:
        rows.append(Method(f"{name}, given the true sigma", lambda b, k, s: d.predict(b, sigma=s),
                           kind="model, non-blind", warmup=True, params={"sigma": "true"}, info=info))
    if given_sigma and ensemble:
        rows.append(Method(f"{name}, x{ensemble} self-ensemble, given the true sigma",
                           lambda b, k, s: d.predict(b, ensemble=ensemble, sigma=s), kind="model, non-blind",
                           warmup=True, params={"ensemble": ensemble, "sigma": "true"}, info=info))
    return rows


def rl_iterates(image: Any, kernel: np.ndarray, counts: list[int]) -> dict[int, np.ndarray]:
    """``blurkit.classical.richardson_lucy(image, kernel, iterations=n)`` for every ``n`` in ``counts``, from
    one run of the largest: scikit-image's iteration (``restoration.richardson_lucy``, the same float32
    operations in the same order), each count's iterate kept, then padded, cropped and clipped as
    ``richardson_lucy`` does. The same arrays to the last bit (``tests/test_recipe.py``) for the cost of the
    largest count alone."""
    from scipy.signal import convolve

    from blurkit.classical import _check_kernel, _per_channel

    k = _check_kernel(kernel).astype(np.float32)
    mirror = np.flip(k)
    counts = sorted({int(n) for n in counts})
    kept: dict[int, list[np.ndarray]] = {n: [] for n in counts}

    def run(plane: np.ndarray) -> np.ndarray:
        im = np.full(plane.shape, 0.5, dtype=np.float32)
        for i in range(1, counts[-1] + 1):
            conv = convolve(im, k, mode="same") + 1e-12
            im *= convolve(plane / conv, mirror, mode="same")
            if i in kept:
                kept[i].append(im.copy())
        return im

    pad = 2 * max(k.shape)  # richardson_lucy's default padding
    _per_channel(image, "reflect", pad, run)
    out = {}
    for n in counts:
        planes = iter(kept[n])  # the channels' iterates, in the order _per_channel visits them
        out[n] = _per_channel(image, "reflect", pad, lambda _, planes=planes: next(planes))
    return out


def fmt_sigma(s: float) -> str:
    return f"{s:g}"


# ------------------------------------------------------------------------------------------ machine
def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {"processor": platform.processor(), "cpu_model": model, "cpu_count": os.cpu_count(),
            "usable_cpus": affinity, "platform": platform.platform(), "python": platform.python_version()}


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("blurkit", "numpy", "scipy", "scikit-image", "opencv-python-headless", "tensorflow",
                 "tensorflow-cpu", "keras"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA),
                   help="folder of sharp photos, or 'skimage' for scikit-image's sample images that are not in the "
                        "default folder (default: %(default)s)")
    p.add_argument("--tutorial", metavar="FILE", help="the tutorial autoencoder (.keras, benchmarks/train_tutorial.py)")
    p.add_argument("--model", action="append", default=[], metavar="FILE", help="extra model file (repeatable)")
    p.add_argument("--no-presets", action="store_true", help="leave out the shipped presets")
    p.add_argument("--max-images", type=int, help="only the first N photos")
    p.add_argument("--max-side", type=int, help="downscale photos to this longest side (quick trials only)")
    p.add_argument("--sigmas", type=float, nargs="+", default=list(SIGMAS), help="blur sigmas (default 1 2 3)")
    p.add_argument("--json", default=str(DEFAULT_JSON),
                   help="results file (default: %(default)s, the committed numbers of the README's table: "
                        "give another for any other run)")
    p.add_argument("--ensemble", type=int, choices=(2, 4, 8),
                   help="also rate each preset and --model file with predict(ensemble=N) (flips/rotations "
                        "averaged; not the --tutorial autoencoder)")
    p.add_argument("--tune-rl", action="store_true",
                   help="also a Richardson-Lucy row with its iterations tuned per sigma on these photos "
                        f"(among {', '.join(map(str, RL_TUNED_ITERATIONS))}; slow: up to 1000 iterations)")
    p.add_argument("--rl-iterations", type=int, nargs="+", metavar="N",
                   help="the iteration counts --tune-rl tries (default "
                        f"{' '.join(map(str, RL_TUNED_ITERATIONS))})")
    p.add_argument("--given-sigma", action="store_true",
                   help="also rate each preset and --model file given the true sigma (predict(sigma=...), "
                        "non-blind); a model that cannot be given it (no blur estimator) gets a note instead "
                        "of the row; not the --tutorial autoencoder")
    p.add_argument("--border", choices=("reflect", "crop"), default="reflect",
                   help="reflect: blur with a reflect border (the issue's protocol, default); crop: blur the "
                        "whole photo, then cut ceil(3 * max sigma) px from every side of the blurred and the "
                        "sharp image (border pixels blurred with real content, as in a camera)")
    args = p.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from blurkit.classical import DEFAULT_BALANCES, blur_gaussian, richardson_lucy, tune, unsharp, wiener
    from blurkit.data.io import atomic_write_text
    from blurkit.metrics.functional import psnr, ssim
    from blurkit.presets import list_presets

    data = Path(args.data)
    if args.data != "skimage" and not data.exists():
        sys.exit(f"error: no such folder {data} (pass --data DIR)")
    for f in [args.tutorial, *args.model]:
        if f and not Path(f).is_file():
            sys.exit(f"error: no such model file {f}")
    sigmas = [float(s) for s in args.sigmas]
    if any(not (s > 0 and math.isfinite(s)) for s in sigmas):
        sys.exit(f"error: sigmas must be positive, got {args.sigmas}")
    photos = load_photos(data, args.max_images, args.max_side)
    print(f"{len(photos)} photos from {data}: " + ", ".join(f"{n} {im.shape[1]}x{im.shape[0]}" for n, im in photos),
          flush=True)

    # every (photo, sigma) blurred exactly once; every method gets these arrays
    cases = []  # (photo index, sigma, blurred, kernel)
    margin = max(math.ceil(3 * s) for s in sigmas) if args.border == "crop" else 0
    for i, (_, sharp) in enumerate(photos):
        if min(sharp.shape[:2]) <= 2 * margin:
            sys.exit(f"error: {photos[i][0]} is too small for --border crop ({margin} px cut from each side)")
        for s in sigmas:
            b, k = blur_gaussian(sharp, s, seed=BLUR_SEED)
            cases.append((i, s, crop(b, margin), k))
    photos = [(n, crop(im, margin)) for n, im in photos]

    def examples(s: float):
        return [(b, photos[i][1], k) for i, ss, b, k in cases if ss == s]

    # tuning (on the same photos; see the protocol)
    t0 = time.time()
    tuning: dict[str, dict] = {"wiener_balance": {}, "unsharp_radius_amount": {}}
    balance, unsharp_params = {}, {}
    for s in sigmas:
        best, scores = tune(lambda b, k, c: wiener(b, k, balance=c), examples(s), DEFAULT_BALANCES)
        balance[s] = best
        tuning["wiener_balance"][fmt_sigma(s)] = {f"{c:g}": round(v, 3) for c, v in scores.items()}
        best_u, scores_u = tune(lambda b, k, c: unsharp(b, *c), examples(s), UNSHARP_GRID)
        unsharp_params[s] = best_u
        tuning["unsharp_radius_amount"][fmt_sigma(s)] = {f"{r:g},{a:g}": round(v, 3)
                                                          for (r, a), v in scores_u.items()}
        edge = " (edge of the grid!)" if best in (DEFAULT_BALANCES[0], DEFAULT_BALANCES[-1]) else ""
        edge_u = (" (edge of the grid!)" if best_u[0] in (UNSHARP_RADII[0], UNSHARP_RADII[-1])
                  or best_u[1] in (UNSHARP_AMOUNTS[0], UNSHARP_AMOUNTS[-1]) else "")
        print(f"sigma {s:g}: Wiener balance {best:g}{edge}; unsharp radius {best_u[0]:g}, "
              f"amount {best_u[1]:g}{edge_u}", flush=True)
    rl_best: dict[float, int] = {}
    counts = sorted(set(args.rl_iterations or RL_TUNED_ITERATIONS))
    if any(n < 1 for n in counts):
        sys.exit(f"error: --rl-iterations must be at least 1, got {args.rl_iterations}")
    if args.tune_rl:  # one run per (photo, sigma) up to the largest count: every count's result on the way
        tuning["richardson_lucy_iterations"] = {}
        for s in sigmas:
            found = [(rl_iterates(b, k, counts), sharp) for b, sharp, k in examples(s)]
            scores_rl = {n: float(np.mean([psnr(sharp, r[n]) for r, sharp in found])) for n in counts}
            rl_best[s] = max(counts, key=lambda n: scores_rl[n])
            tuning["richardson_lucy_iterations"][fmt_sigma(s)] = {str(n): round(v, 3) for n, v in scores_rl.items()}
            edge = " (edge of the grid!)" if rl_best[s] == counts[-1] else ""
            print(f"sigma {s:g}: Richardson-Lucy iterations {rl_best[s]}{edge}", flush=True)
    print(f"tuning took {time.time() - t0:.0f} s", flush=True)

    methods = [
        Method("blurred input", lambda b, k, s: b, kind="reference"),
        Method("unsharp mask (tuned on these photos)", lambda b, k, s: unsharp(b, *unsharp_params[s]),
               kind="classical, blind",
               params={fmt_sigma(s): {"radius": r, "amount": a} for s, (r, a) in unsharp_params.items()}),
        Method(WIENER,
               lambda b, k, s: wiener(b, k, balance=balance[s]), kind="classical, non-blind",
               params={fmt_sigma(s): {"balance": v, "pad": "reflect"} for s, v in balance.items()}),
        Method(f"Richardson-Lucy, true kernel ({RL_ITERATIONS} it.)",
               lambda b, k, s: richardson_lucy(b, k, iterations=RL_ITERATIONS), kind="classical, non-blind",
               params={"iterations": RL_ITERATIONS, "pad": "reflect"}),
    ]
    if args.tune_rl:
        methods.append(Method("Richardson-Lucy, true kernel (iterations tuned on these photos)",
                              lambda b, k, s: richardson_lucy(b, k, iterations=rl_best[s]), kind="classical, non-blind",
                              params={fmt_sigma(s): {"iterations": n, "pad": "reflect"} for s, n in rl_best.items()}))
    if args.tutorial:
        methods += model_methods("tutorial autoencoder", args.tutorial, None, "model, blind")
        if args.ensemble or args.given_sigma:
            flags = " and ".join(f for f, on in (("--ensemble", args.ensemble), ("--given-sigma", args.given_sigma))
                                 if on)
            print(f"note: {flags} rate the presets and --model files, not the tutorial autoencoder (one row, "
                  "its recipe as it stands)", flush=True)
    if not args.no_presets:
        for name in list_presets():
            methods += model_methods(f"preset {name}", None, name, "model, blind", args.ensemble,
                                     args.given_sigma, sigmas)
    for f in args.model:
        methods += model_methods(f"model {Path(f).name}", f, None, "model, blind", args.ensemble,
                                 args.given_sigma, sigmas)

    results = []
    for m in methods:
        t_m = time.time()
        if m.warmup:
            m.restore(cases[0][2], cases[0][3], cases[0][1])
        per_case, spm = [], []
        for i, s, b, k in cases:
            t = time.perf_counter()
            r = m.restore(b, k, s)
            elapsed = time.perf_counter() - t
            sharp = photos[i][1]
            r = np.asarray(r, np.float32)
            per_case.append({"image": photos[i][0], "sigma": s, "psnr": psnr(sharp, r), "ssim": ssim(sharp, r),
                             "seconds": round(elapsed, 4)})
            spm.append((s, elapsed / (sharp.shape[0] * sharp.shape[1] / 1e6)))
        scores = {fmt_sigma(s): {k: float(np.mean([c[k] for c in per_case if c["sigma"] == s]))
                                 for k in ("psnr", "ssim")} for s in sigmas}
        timed = m.kind != "reference"
        results.append({"name": m.name, "kind": m.kind, "params": m.params, "info": m.info, "scores": scores,
                        "seconds_per_megapixel": float(np.median([t for _, t in spm])) if timed else None,
                        "seconds_per_megapixel_by_sigma": {
                            fmt_sigma(s): float(np.median([t for ss, t in spm if ss == s])) for s in sigmas}
                        if timed else None,
                        "per_image": per_case})
        print(f"  {m.name}: done in {time.time() - t_m:.0f} s", flush=True)

    table = format_table(results, sigmas)
    against = paired_vs(results, WIENER)
    mp = np.median([im.shape[0] * im.shape[1] / 1e6 for _, im in photos])
    mach = machine()
    print()
    print("Protocol:")
    for line in PROTOCOL:
        print(f"- {line.format(sigmas=', '.join(fmt_sigma(s) for s in sigmas))}")
    print(f"- {len(photos)} photos from {data} (median {mp:.2f} MP)"
          + (f", downscaled to max side {args.max_side}" if args.max_side else ""))
    print("- Wiener balance per sigma: " + ", ".join(f"{fmt_sigma(s)}: {balance[s]:g}" for s in sigmas)
          + f" (grid {', '.join(f'{c:g}' for c in DEFAULT_BALANCES)})")
    print("- unsharp (radius, amount) per sigma: "
          + ", ".join(f"{fmt_sigma(s)}: ({r:g}, {a:g})" for s, (r, a) in unsharp_params.items()))
    print(f"- machine: {mach['cpu_model'] or mach['processor'] or 'unknown CPU'}, {mach['cpu_count']} CPUs "
          f"({mach['usable_cpus']} usable), shared with other work: timings are indicative")
    print()
    print(table)
    if against:
        print()
        print(format_paired(against))

    out = {
        "benchmark": "quality",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]) if argv is None
        else "python benchmarks/quality.py " + " ".join(argv),
        "machine": mach,
        "versions": versions(),
        "protocol": {
            "lines": [line.format(sigmas=", ".join(fmt_sigma(s) for s in sigmas)) for line in PROTOCOL],
            "data": str(data), "images": [{"name": n, "width": im.shape[1], "height": im.shape[0]}
                                          for n, im in photos],
            "max_side": args.max_side, "sigmas": sigmas, "blur": {"name": "gaussian", "border": "reflect",
                                                                  "quantize": True, "seed": BLUR_SEED},
            "border": {"mode": args.border, "cut_px": margin},
            "psnr": {"channels": "RGB", "data_range": 1},
            "ssim": {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1,
                     "channels": "per channel, averaged"},
        },
        "tuning": tuning,
        "methods": results,
        "paired_vs_wiener": against,
        "table_markdown": table,
    }
    atomic_write_text(args.json, json.dumps(out, indent=1, allow_nan=False) + "\n")
    print(f"\nwrote {args.json}")
    return 0


def crop(image: np.ndarray, margin: int) -> np.ndarray:
    """``image`` less ``margin`` pixels on every side (``--border crop``); a contiguous copy."""
    return np.ascontiguousarray(image[margin:image.shape[0] - margin, margin:image.shape[1] - margin])


WIENER = "Wiener, true kernel (balance tuned on these photos)"
PAIRED_RESAMPLES = 10_000


def paired(diffs: list[float], seed: int = 0) -> dict[str, Any]:
    """The mean of paired differences (one per photo), its 95 % percentile bootstrap interval
    (:data:`PAIRED_RESAMPLES` resamples of the photos, seeded), and the two-sided Wilcoxon signed-rank
    p-value (scipy's exact distribution for small samples; None for fewer than 2 photos or all zero)."""
    from scipy.stats import wilcoxon

    d = np.asarray(diffs, np.float64)
    if len(d) < 2:  # one photo (or none) tells nothing of the spread
        return {"mean": float(d.mean()) if len(d) else None, "ci95": None, "n": int(len(d)), "wilcoxon_p": None}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (PAIRED_RESAMPLES, len(d)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    p = float(wilcoxon(d).pvalue) if np.any(d != 0) else None
    return {"mean": float(d.mean()), "ci95": [float(low), float(high)], "n": int(len(d)), "wilcoxon_p": p}


def paired_vs(results: list[dict], reference: str) -> dict[str, dict]:
    """Every non-reference row against the row named ``reference``, per sigma, photo by photo: the PSNR
    differences (:func:`paired`), and on how many photos the row is ahead in PSNR and in SSIM. Empty when
    there is no such row."""
    ref = next((r for r in results if r["name"] == reference), None)
    if ref is None:
        return {}
    base = {(c["image"], c["sigma"]): c for c in ref["per_image"]}
    out: dict[str, dict] = {}
    for r in results:
        if r is ref or r["kind"] == "reference":
            continue
        by_sigma: dict[str, dict] = {}
        for s in sorted({c["sigma"] for c in r["per_image"]}):
            pairs = [(c, base[(c["image"], s)]) for c in r["per_image"] if c["sigma"] == s]
            stats = paired([c["psnr"] - b["psnr"] for c, b in pairs])
            stats["ahead_psnr"] = sum(c["psnr"] > b["psnr"] for c, b in pairs)
            stats["ahead_ssim"] = sum(c["ssim"] > b["ssim"] for c, b in pairs)
            by_sigma[fmt_sigma(s)] = stats
        out[r["name"]] = by_sigma
    return out


def format_paired(against: dict[str, dict], reference: str = "Wiener") -> str:
    """Markdown: per row and sigma, the mean PSNR gain over ``reference`` with its 95 % interval, the
    photos ahead (PSNR, SSIM) and the Wilcoxon p-value."""
    sigmas = sorted({s for by_sigma in against.values() for s in by_sigma}, key=float)
    head = ["method"] + [f"σ={s}: dB over {reference} [95 % CI]; ahead PSNR, SSIM; p" for s in sigmas]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---" * len(sigmas) + "|"]
    for name, by_sigma in against.items():
        cells = [name]
        for s in sigmas:
            st = by_sigma.get(s)
            if st is None or st["mean"] is None:
                cells.append("–")
                continue
            p = "–" if st["wilcoxon_p"] is None else f"{st['wilcoxon_p']:.3f}"
            ci = "–" if st["ci95"] is None else f"{st['ci95'][0]:+.2f}, {st['ci95'][1]:+.2f}"
            cells.append(f"{st['mean']:+.2f} [{ci}]; {st['ahead_psnr']}/{st['n']}, {st['ahead_ssim']}/{st['n']}; {p}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_table(results: list[dict], sigmas: list[float]) -> str:
    """Markdown: one row per method; PSNR / SSIM per sigma; seconds per megapixel."""
    head = ["method"]
    for s in sigmas:
        head += [f"σ={fmt_sigma(s)} PSNR", f"σ={fmt_sigma(s)} SSIM"]
    head.append("s/MP")
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for r in results:
        cells = [r["name"]]
        for s in sigmas:
            sc = r["scores"][fmt_sigma(s)]
            cells += [f"{sc['psnr']:.2f}", f"{sc['ssim']:.4f}"]
        t = r["seconds_per_megapixel"]
        cells.append("–" if t is None else f"{t:.2f}" if t < 100 else f"{t:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

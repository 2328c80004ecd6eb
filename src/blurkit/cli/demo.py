"""``blurkit demo``: see what blurkit does, right after installing, with nothing to download.

It takes the sample photos that ship with scikit-image (astronaut, coffee, chelsea, rocket), blurs them
with a Gaussian blur (sigma 2 by default, kernel ``2*ceil(3 sigma)+1``, reflect border, 8-bit
quantization, fixed seed), and restores them twice: with the default pretrained preset (or ``--preset`` /
``--model``), which sees only the blurred photo, and with scikit-image's Wiener filter, which is given the
TRUE blur kernel and a fixed balance (``blurkit.classical.DEFAULT_WIENER_BALANCE`` = 1e-4, the best value
for 8-bit Gaussian blur with sigma 1-3 on these photos). It prints PSNR / SSIM / seconds per photo and
their means, and writes one figure per photo (blurred | Wiener | blurkit | sharp) to ``--out``.

``--given-sigma`` adds a like-for-like column, and a panel before the sharp one in each figure: the model
given the true sigma (``Deblurrer.predict(x, sigma=...)``, for models with a Gaussian blur estimator such as
the presets), the information Wiener is given.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "demo",
        help="deblur scikit-image's sample photos and compare with Wiener (no download)",
        description="Blur scikit-image's sample photos (Gaussian, sigma 2, 8-bit), restore them with the "
        "default pretrained preset and with a Wiener filter that is given the true kernel, print PSNR / "
        "SSIM / seconds, and write a blurred | Wiener | blurkit | sharp figure per photo.",
    )
    p.add_argument("--preset", help="use this shipped preset instead of the default one")
    p.add_argument("--model", metavar="FILE", help="use this model file (.keras) instead of a preset")
    p.add_argument("--sigma", type=float, default=2.0, help="Gaussian blur sigma in pixels (default 2)")
    p.add_argument("--balance", type=float, help="Wiener balance (default 1e-4, tuned for 8-bit Gaussian blur)")
    p.add_argument("--max-side", type=int, default=512,
                   help="downscale the photos to this longest side, 0 for none (default 512)")
    p.add_argument("--given-sigma", action="store_true",
                   help="also restore each photo with the model given the true sigma, like for like with "
                        "Wiener (models with a Gaussian blur estimator, such as the presets): a column of the "
                        "table and a panel of each figure")
    p.add_argument("--out", default="blurkit-demo", help="folder for the figures (default ./blurkit-demo)")
    from blurkit.cli._common import add_threads

    add_threads(p)
    p.set_defaults(func=run)
    return p


def _photos(max_side: int) -> list[tuple[str, np.ndarray]]:
    import sys

    import cv2
    from skimage import data

    out = []
    for name in SAMPLES:
        try:
            img = getattr(data, name)()
        except Exception as exc:  # noqa: BLE001 - a photo missing from a trimmed install is skipped
            print(f"blurkit demo: skipping skimage.data.{name} ({exc})", file=sys.stderr)
            continue
        h, w = img.shape[:2]
        if max_side and max(h, w) > max_side:
            s = max_side / max(h, w)
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        out.append((name, img))
    return out


def format_table(rows: list[dict]) -> str:
    """Markdown table: one row per photo and a mean row (with the "given sigma" columns where the rows have
    them)."""
    given = "given" in rows[0]
    cols = [("blurred", "psnr"), ("blurred", "ssim"), ("wiener", "psnr"), ("wiener", "ssim"),
            ("blurkit", "psnr"), ("blurkit", "ssim")] + [("given", "psnr"), ("given", "ssim")] * given + [
            ("wiener", "seconds"), ("blurkit", "seconds")]
    head = ["photo", "size", "blurred PSNR", "SSIM", "Wiener PSNR", "SSIM", "blurkit PSNR", "SSIM"] + [
            "blurkit given sigma PSNR", "SSIM"] * given + ["Wiener s", "blurkit s"]
    lines = ["| " + " | ".join(head) + " |", "|---|---" + "|---:" * (len(head) - 2) + "|"]

    def cell(v: float, what: str) -> str:
        return f"{v:.2f}" if what == "psnr" else f"{v:.4f}" if what == "ssim" else f"{v:.2f}"

    for r in rows:
        lines.append(f"| {r['photo']} | {r['size']} | " + " | ".join(cell(r[m][w], w) for m, w in cols) + " |")
    mean = {m: {w: sum(r[m][w] for r in rows) / len(rows) for _, w in cols} for m, _ in cols}
    lines.append("| **mean** | | " + " | ".join(cell(mean[m][w], w) for m, w in cols) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import math
    import time
    from pathlib import Path

    from blurkit.cli._common import check_output, check_sigma, load_deblurrer
    from blurkit.cli.main import CLIError

    if args.model and args.preset:
        raise CLIError("give either --model FILE or --preset NAME, not both")
    if not (math.isfinite(args.sigma) and 0 < args.sigma <= 20):
        raise CLIError(f"--sigma must be in (0, 20], got {args.sigma}")
    if args.max_side < 0 or 0 < args.max_side < 16:
        raise CLIError(f"--max-side must be 0 (no downscaling) or at least 16, got {args.max_side}")
    if args.balance is not None and not (math.isfinite(args.balance) and args.balance > 0):
        raise CLIError(f"--balance must be > 0, got {args.balance}")
    preset = None
    if args.model:
        label = f"model {args.model}"
    else:
        from blurkit import __version__
        from blurkit.presets import DEFAULT_PRESET, list_presets

        if not list_presets():
            raise CLIError(
                f"no pretrained preset is shipped with this installation (blurkit {__version__}), so there is "
                "nothing to demonstrate by default; run `blurkit demo --model FILE` with a model trained by "
                "`blurkit train`")
        preset = args.preset or DEFAULT_PRESET
        label = f"preset {preset}"
    check_output(args.out, "--out", folder=True)
    d = load_deblurrer(args.model, preset)
    if args.given_sigma:
        check_sigma(d, args.sigma, "--sigma (with --given-sigma)")

    from blurkit.classical import DEFAULT_WIENER_BALANCE, blur_gaussian, wiener
    from blurkit.metrics.functional import psnr, ssim
    from blurkit.plots import plot_comparison

    balance = args.balance or DEFAULT_WIENER_BALANCE
    photos = _photos(args.max_side)
    if not photos:
        raise CLIError("could not load any of scikit-image's sample photos (is scikit-image installed fully?)")
    out = Path(args.out)
    name = (d.model_spec or {}).get("name", type(d.model).__name__)
    print(f"blurkit demo: {len(photos)} scikit-image sample photos"
          + (f" (longest side at most {args.max_side} px)" if args.max_side else "")
          + f", Gaussian blur sigma {args.sigma:g} (reflect border, 8-bit quantized)")
    print(f"blurkit: {label} ({name}, {d.model.count_params():,} parameters), given the blurred photo only")
    if args.given_sigma:
        print(f"blurkit given sigma: the same model told the true sigma {args.sigma:g} "
              "(its sigma estimate replaced, its Wiener balance still estimated)")
    print(f"Wiener: scikit-image restoration.wiener given the TRUE kernel, balance {balance:g}, reflect-padded")
    print("PSNR: RGB, data range 1 (dB); SSIM: scikit-image (gaussian_weights, sigma 1.5, per channel)",
          flush=True)

    # warm-up, untimed: the model's first call traces it, Wiener's first call imports scikit-image's parts
    warm, warm_kernel = blur_gaussian(photos[0][1][:64, :64], args.sigma)  # large enough to read the blur off
    d.predict(warm)
    wiener(warm, warm_kernel, balance=balance)
    rows = []
    for photo, sharp in photos:
        blurred, kernel = blur_gaussian(sharp, args.sigma, seed=0)
        t = time.perf_counter()
        w = wiener(blurred, kernel, balance=balance)
        tw = time.perf_counter() - t
        t = time.perf_counter()
        r = d.predict(blurred)
        tr = time.perf_counter() - t
        row: dict[str, Any] = {"photo": photo, "size": f"{sharp.shape[1]}x{sharp.shape[0]}"}
        results = [("blurred", blurred, 0.0), ("wiener", w, tw), ("blurkit", r, tr)]
        if args.given_sigma:
            results.append(("given", d.predict(blurred, sigma=args.sigma), 0.0))
        for key, img, sec in results:
            row[key] = {"psnr": psnr(sharp, img), "ssim": ssim(sharp, img), "seconds": sec}
        rows.append(row)
        panels = [img for _, img, _ in results] + [sharp]  # blurred, Wiener, blurkit (, given), sharp
        titles = [f"blurred (σ={args.sigma:g}) {row['blurred']['psnr']:.2f} dB",
                  f"Wiener, true kernel {row['wiener']['psnr']:.2f} dB",
                  f"blurkit {row['blurkit']['psnr']:.2f} dB"]
        titles += [f"blurkit given σ {row['given']['psnr']:.2f} dB"] if args.given_sigma else []
        titles.append("sharp")
        plot_comparison(panels, titles, out / f"{photo}.png", zoom=128)
    print()
    print(format_table(rows))
    print()
    given = " | blurkit given sigma" * args.given_sigma
    print(f"figures (blurred | Wiener | blurkit{given} | sharp): {out.resolve()}")
    return 0

"""``blurkit evaluate``: score a model against the blurred input on held-out photos."""

from __future__ import annotations

import argparse
import math
from typing import Any

from blurkit.cli._common import add_max_pixels, add_threads

#: The exit status when some images could not be read (or scored) and the others were: the scores leave them
#: out (they are listed on stderr). As ``blurkit deblur``'s 3; 1 when none could be read.
SOME_SKIPPED = 3


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="score a model on photos (model vs blurred input)",
        description="Blur each sharp photo with the model's blur generator (seeded, full resolution), "
        "restore it, and print PSNR / SSIM / MSE / accuracy for the model and for the blurred input.",
        epilog="exit status: 0 every image scored, 3 some could not be read or scored (listed on stderr; the "
        "scores leave them out), 1 none could be read, 2 a usage error",
    )
    p.add_argument("model", help="model file (.keras) or preset name")
    p.add_argument("data", nargs="?", help="folder (or file / glob) of sharp photos")
    p.add_argument("--pairs", nargs=2, metavar=("BLURRED_DIR", "SHARP_DIR"), help="evaluate on pairs")
    p.add_argument("--max-images", type=int, metavar="N", help="score the first N images (pairs) only")
    p.add_argument("--blur", help="blur generator for the sharp photos (see `blurkit list blurs`; default: the "
                                  "model's own, what it was trained on)")
    p.add_argument("--blur-option", action="append", metavar="KEY=VALUE",
                   help="blur option, repeatable; without --blur it changes the model's own blur")
    p.add_argument("--sigma", metavar="S|LOW:HIGH",
                   help="the Gaussian blur's sigma, fixed (2) or drawn per image (0.5:3); short for "
                        "--blur-option sigma=...")
    p.add_argument("--ensemble", type=int, default=1, choices=(1, 2, 4, 8),
                   help="self-ensemble: average over this many flips/rotations (default 1)")
    p.add_argument("--metric", action="append", default=[], metavar="NAME",
                   help="also score this registered metric (a plugin's; see `blurkit list metrics`), repeatable")
    p.add_argument("--known-sigma", action="store_true",
                   help="give the model each photo's true sigma (non-blind; isotropic Gaussian blur and a "
                        "model with a blur estimator)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the blur of the sharp photos, with each photo's index (default 0: the inputs of "
                        "the model cards' scores; the model's own seed plays no part)")
    p.add_argument("--json", dest="json_out", metavar="FILE",
                   help="write the scores (with per-image rows) to this JSON file, or to stdout with '-' (the "
                        "table then goes to stderr); strict JSON: a non-finite score, the PSNR of an image "
                        "restored exactly, is written as null")
    p.add_argument("--crop-border", type=int, default=0, metavar="N",
                   help="leave N pixels on every side out of the scores (BasicSR's crop_border; default 0): "
                        "each photo is restored whole, then cut before scoring")
    add_max_pixels(p, "skip")
    add_threads(p)
    p.add_argument("--figure", help="write a blurred | restored | sharp grid (one row per image) here")
    p.add_argument("--figure-images", type=int, default=4, metavar="N", help="rows of the figure (default 4)")
    p.set_defaults(func=run)
    return p


FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
"""What ``--figure`` can write (matplotlib's formats that image viewers and browsers open)."""


def format_table(scores: dict) -> str:
    """A Markdown table: one row per side (model, blurred input), one column per metric (the built-in ones,
    then any other the scores hold)."""
    cols = ["psnr", "ssim", "mse", "accuracy", "channel_accuracy"]
    cols += [c for c in scores["model"] if c not in cols]
    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for side, label in (("model", "model"), ("blurred", "blurred input")):
        row = scores[side]
        lines.append(f"| {label} | " + " | ".join(
            f"{row[c]:.2f}" if c in ("psnr", "psnr_y") else f"{row[c]:.4f}" if c != "mse" else f"{row[c]:.2e}"
            for c in cols) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    import warnings
    from pathlib import Path

    from blurkit.cli._common import (
        check_output,
        count,
        error_text,
        flag_reason,
        load_named,
        parse_blur_options,
        progress_shown,
    )
    from blurkit.cli.main import CLIError

    if bool(args.data) == bool(args.pairs):
        raise CLIError("give either DATA (sharp photos) or --pairs BLURRED_DIR SHARP_DIR")
    blur_options = parse_blur_options(args)
    from blurkit.data.io import open_descriptor

    # '-', or a name of this process's stdout (/dev/stdout): the JSON alone there
    to_stdout = args.json_out == "-" or (bool(args.json_out) and open_descriptor(args.json_out) == 1)
    out = sys.stderr if to_stdout else sys.stdout  # the table and the summary: not in the JSON on stdout
    if args.json_out and not to_stdout:
        check_output(args.json_out, "--json")
    if args.figure:  # checked now, not after the evaluation
        check_output(args.figure, "--figure")
        suffix = Path(args.figure).suffix.lower()
        if suffix not in FIGURE_SUFFIXES:
            raise CLIError(f"--figure {args.figure}: write a {', '.join(FIGURE_SUFFIXES)} file")
    for flag, value in (("--max-images", args.max_images), ("--max-pixels", args.max_pixels)):
        if value is not None and value < 1:
            raise CLIError(f"{flag} must be at least 1, got {value}")
    if args.crop_border < 0:
        raise CLIError(f"--crop-border must be 0 or more, got {args.crop_border}")
    if args.figure_images < 1:
        raise CLIError(f"--figure-images must be at least 1, got {args.figure_images}")
    d = load_named(args.model)
    data = tuple(args.pairs) if args.pairs else args.data
    kept: dict[int, Any] = {}  # the figure's restorations, kept as they are scored (not restored again)

    def keep(row: dict, restored: Any) -> None:
        if args.figure and len(kept) < args.figure_images:
            import numpy as np

            kept[row["index"]] = np.round(np.clip(restored, 0, 1) * 65535).astype(np.uint16)  # half a float32

    try:
        with warnings.catch_warnings():  # unreadable files are listed below, once
            warnings.filterwarnings("ignore", message="skipping (unreadable )?image")
            # a bar on a terminal; in a log file (where a bar is frames joined by \r) a line every 30 s
            scores = d.evaluate(data, per_image=True, max_images=args.max_images, progress=progress_shown(),
                                blur=args.blur, blur_options=blur_options or None, ensemble=args.ensemble,
                                known_sigma=args.known_sigma, metrics=args.metric, seed=args.seed,
                                max_pixels=args.max_pixels, crop_border=args.crop_border,
                                on_image=keep)
    except (FileNotFoundError, ValueError, TypeError, KeyError) as exc:
        # not a usage error (2): no image could be read, or the model cannot restore any
        failed = isinstance(exc, ValueError) and str(exc).startswith(("none of the", "the model's output"))
        raise CLIError(error_text(exc), status=1 if failed else 2) from None
    how = "".join([f", ensemble x{args.ensemble}" if args.ensemble > 1 else "",
                   ", the true sigma given" if args.known_sigma else "",
                   f", {args.crop_border} px border left out of the scores" if args.crop_border else ""])
    if args.pairs:
        print(f"{count(scores['images'], 'pair')} from {args.pairs[0]} and {args.pairs[1]}{how}", file=out)
    else:
        options = ", ".join(f"{k}={v}" for k, v in scores["blur"]["config"].items() if v is not None)
        print(f"{count(scores['images'], 'image')}, blur {scores['blur']['name']} ({options or 'no options'}) "
              f"(seed {scores['seed']}, with each image's index){how}", file=out)
    for row in scores["skipped"]:
        print(f"  skipped: {flag_reason(row['error'])}", file=sys.stderr)
    print(format_table(scores), file=out)
    print(_gain_line(scores), file=out)
    if args.json_out:
        from blurkit.data.io import atomic_write_text
        from blurkit.deblurrer import _jsonable

        scores = {"run": _provenance(args, d), **scores}
        text = json.dumps(_jsonable(scores), indent=1, allow_nan=False)
        if to_stdout:
            print(text, flush=True)
        else:
            atomic_write_text(args.json_out, text)
    if args.figure:
        from blurkit.blurs import deserialize_blur
        from blurkit.plots import plot_comparison

        panels, titles = [], []
        rows = min(args.figure_images, scores["images"])
        blur = None if args.pairs else deserialize_blur(scores["blur"])
        for row in scores["per_image"][:rows]:  # the same blurred inputs as the scores above (seeded per image)
            b, s = d.test_pair(data, row["index"], blur=blur, seed=args.seed,
                               max_pixels=args.max_pixels)
            name = Path(row["image"]).name
            panels += [b, kept[row["index"]], s]
            titles += [f"{name}: blurred {row['blurred']['psnr']:.2f} dB", f"restored {row['model']['psnr']:.2f} dB",
                       "sharp"]
        plot_comparison(panels, titles, Path(args.figure), rows=rows, zoom=128)
        cut = f" (PSNR in its titles without the {args.crop_border} px border)" if args.crop_border else ""
        print(f"figure: {args.figure}{cut}", file=out)
    if scores["skipped"]:  # scored without them: not the promise of exit status 0, that every image was
        return SOME_SKIPPED
    return 0


def _provenance(args: argparse.Namespace, d) -> dict:
    """What the JSON needs besides the scores for someone to rerun them: the model (its file's SHA-256), the
    data, the date and the package versions (the blur, its seed and each image's drawn parameters are in the
    scores)."""
    import datetime as dt

    from blurkit.deblurrer import _versions
    from blurkit.presets import DEFAULT_PRESET

    digest = (d._loaded or {}).get("sha256")  # of the file as it was loaded
    return {"model": args.model or DEFAULT_PRESET, "model_sha256": digest,
            "data": list(args.pairs) if args.pairs else args.data, "max_images": args.max_images,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "versions": _versions()}


def _gain_line(scores: dict) -> str:
    """The PSNR gain line. The gain is over the images whose two PSNRs are finite (``gain_images``); the
    others are counted and said why (a blurred image equal to its sharp one: sigma 0, a flat photo, a pair
    of the same file).

    Examples:
        >>> row = lambda m, b: {"model": {"psnr": m}, "blurred": {"psnr": b}}
        >>> _gain_line({"gain_db": 1.5, "gain_images": 1, "images": 1, "per_image": [row(31.5, 30.0)]})
        'gain: +1.50 dB PSNR'
        >>> _gain_line({"gain_db": 1.5, "gain_images": 1, "images": 2,
        ...             "per_image": [row(31.5, 30.0), row(60.0, math.inf)]})
        'gain: +1.50 dB PSNR over 1 of the 2 images (1 blurred image equals its sharp one: PSNR inf)'
        >>> _gain_line({"gain_db": math.nan, "gain_images": 0, "images": 1,
        ...             "per_image": [row(math.nan, 30.0)]})
        'gain: none to measure (1 image without a PSNR)'
    """
    if scores["gain_images"] == scores["images"]:
        return f"gain: {scores['gain_db']:+.2f} dB PSNR"
    rows = scores.get("per_image") or []
    same = [sum(r[side]["psnr"] == math.inf for r in rows) for side in ("blurred", "model")]
    notes = [f"{k} {what} image{'s' * (k != 1)} equal{'s' * (k == 1)} {'its' if k == 1 else 'their'} sharp "
             f"one{'s' * (k != 1)}: PSNR inf" for k, what in zip(same, ("blurred", "restored"), strict=True) if k]
    infinite = sum(math.inf in (r["blurred"]["psnr"], r["model"]["psnr"]) for r in rows)
    other = scores["images"] - scores["gain_images"] - infinite  # NaN (a score not computed), -inf
    notes += [f"{other} image{'s' * (other != 1)} without a PSNR"] if other else []
    why = "; ".join(notes) or "no image scored"
    if not scores["gain_images"]:
        return f"gain: none to measure ({why})"
    k, n = scores["gain_images"], scores["images"]
    return f"gain: {scores['gain_db']:+.2f} dB PSNR over {k} of the {n} images ({why})"

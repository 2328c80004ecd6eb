"""How much of a ``wiener_unet`` model's error is the blind sigma estimate? Force the true sigma and compare.

For each sigma, the photos are blurred as in ``benchmarks/quality.py`` (Gaussian, reflect border, 8-bit
quantization, seed 0) and restored three ways: blind (``Deblurrer.predict``, with the photo's estimate made as
it makes it: see ``Deblurrer.estimate_tile``), with the estimator's sigma output replaced by the true sigma
(times 0.9, 1.0 and 1.1), and the Wiener step alone (the model's first hypothesis, before the U-Net
refinement) with the blind estimate. Prints mean PSNR (RGB, data range 1) and the blind estimate's error:
the RMS over the photos of log(estimated sigma / true sigma), and how many photos it over-estimates by more
than 5 % (the costly direction).

Usage::

    python benchmarks/oracle_sigma.py                      # the default preset on ../shared/data/val
    python benchmarks/oracle_sigma.py --model m.keras --data photos/ --sigmas 1 2 3
    python benchmarks/oracle_sigma.py --per-photo          # and which photos the estimate costs most
    python benchmarks/oracle_sigma.py --data skimage --tile-estimates   # estimates from 256/384-px tiles
    python benchmarks/oracle_sigma.py --estimate-tile 384   # blind: median over tiles of at most 384 px
    python benchmarks/oracle_sigma.py --reblur             # pick sigma by re-blur consistency (a test)
    python benchmarks/oracle_sigma.py --edge-estimates     # a classical estimate read off the edges (a test)
    python benchmarks/oracle_sigma.py --reestimate         # pick sigma by re-estimating the restoration (a test)
    python benchmarks/oracle_sigma.py --average            # average restorations over sigma factors (a test)
    python benchmarks/oracle_sigma.py --scale-estimates    # estimate sigma on the photo halved (a test)

``--tile-estimates`` adds a table: each photo restored (whole, by the restorer) with its estimate made on the
whole photo, or as the median, upper quartile or maximum of the estimates on tiles of the given sides. It
tests, without training, whether the blur is better read off some parts of a photo than off all of it.
Its "whole photo" column is the blind model again for photos no larger than the model's ``estimate_tile``.
Its tiles are exactly N px (or the photo's side where shorter), spread evenly to cover the photo
(``plan_tiles(..., overlap=0, fit=False)``); the facade's ``estimate_tile`` tiles are instead fitted to the
photo without overlap.

``--reblur`` adds a table: each photo restored (whole) with the blind sigma times each factor of a grid
(0.8 to 1.3), each restoration blurred again with the sigma it assumed (no quantization), and the factor whose
re-blurred image is closest to the blurred input (RMS) picked, over 0.9-1.2 and over the whole grid. It
tests, without training, whether data consistency can correct the blind estimate at test time; the best
factor of the grid per photo (chosen with the sharp photo) bounds what any such rule could gain.

``--reestimate`` adds a table: each photo restored (whole) with the blind sigma times each factor of
:data:`REESTIMATE_FACTORS` (0.75 to 1.45), the model's own estimator run on each restoration, and the factor
picked from those re-estimates: the smallest factor whose re-estimate is within 2 % (or 5 %) of the lowest
(the least deconvolution after which the estimator sees no blur left), or the factor of the lowest
re-estimate times 0.85. It tests, without training, whether the estimator can tell an under-restored photo
from a fully restored one; the grid's best factor per photo (chosen with the sharp photo) bounds any rule.

``--average`` adds a table: each photo restored (whole) with the blind sigma times each factor of a set
(:data:`AVERAGE_SETS`), and the restorations averaged: a posterior mean over the estimate's uncertainty
instead of one guess. It tests, without training, whether hedging over sigma gains where the estimate errs
more than it costs where the estimate is right.

``--edge-estimates`` adds a table: each photo restored (``predict(sigma=...)``) with a classical,
training-free estimate of sigma read off its strongest edges (:func:`edge_sigma`: the gradient ratio of the
image and the image blurred again, after Zhuo and Sim, "Defocus map estimation from a single image", Pattern
Recognition 2011), and with the geometric mean of that and the model's estimate. It tests whether reading
the blur off edges, not off the whole photo, corrects the learned estimate where smooth areas pull it down.

``--scale-estimates`` adds a table: each blurred photo (cropped to even sides) halved by ``cv2.INTER_AREA``
(each pixel the mean of a 2x2 block), the model's blind estimate (``estimate_sigma``) made on the half-size
photo and taken back to full-size pixels, ``2 * sqrt(s_half^2 - AREA_VARIANCE)`` (the 2x2 mean adds a 2-px
box, a variance of 0.25 full-size px^2 = :data:`AREA_VARIANCE` half-size px^2 on each axis; measured on
Gaussian line and edge profiles, 0.0625-0.065 for sigma 1-3), then the photo restored (``predict(sigma=...)``)
with that estimate and with its geometric mean with the model's; for each estimate the table gives its
log-sigma RMS error, its mean log error (bias) and the photos it over-estimates by more than 5 %. It tests
whether the estimator, which reads photos halved before the blur close to the truth
(``benchmarks/estimator_probe.py``), reads the blur better at half scale, where a camera's own sharpening and
softness shrink against the blur.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from quality import BLUR_SEED, load_photos, protocol_parser  # the protocol of benchmarks/quality.py
    from train_preset import load_or_preset, nested, parts

    p = protocol_parser(__doc__, "a wiener_unet .keras file (default: the gaussian-v1 preset)")
    p.add_argument("--per-photo", action="store_true",
                   help="also print each photo's estimate and its PSNR blind and with the true sigma")
    p.add_argument("--tile-estimates", type=int, nargs="*", metavar="SIDE",
                   help="also restore each photo with its estimate taken from tiles of these sides (default 256 "
                        "384): the median, upper quartile and maximum of the tiles' estimates")
    p.add_argument("--reblur", action="store_true",
                   help="also pick each photo's sigma from a grid of factors of the blind estimate by re-blur "
                        "consistency (see above)")
    p.add_argument("--edge-estimates", action="store_true",
                   help="also restore each photo with a classical sigma estimate read off its edges "
                        "(see above)")
    p.add_argument("--reestimate", action="store_true",
                   help="also pick each photo's sigma from a grid of factors of the blind estimate by the "
                        "model's estimate on each restoration (see above)")
    p.add_argument("--average", action="store_true",
                   help="also restore each photo at several factors of the blind sigma and average the "
                        "restorations (see above)")
    p.add_argument("--scale-estimates", action="store_true",
                   help="also restore each photo with the model's estimate on the photo halved in size, taken "
                        "back to full-size pixels (see above)")
    p.add_argument("--estimate-tile", type=int, metavar="N",
                   help="the blind model's estimate tile (Deblurrer.estimate_tile; default: the model's)")
    args = p.parse_args(argv)

    import keras
    import numpy as np

    from blurkit.classical import blur_gaussian
    from blurkit.metrics import psnr

    d = load_or_preset(args.model)
    if args.estimate_tile:
        d.estimate_tile = args.estimate_tile
    named = load_photos(Path(args.data), None, None)
    photos = [img for _, img in named]
    _, restorer, wiener = parts(nested(d).model)
    slo, shi = wiener.sigma_range
    base = keras.Model(restorer.inputs, wiener.output)
    print(f"{len(photos)} photos from {args.data}; estimate tile {d.estimate_tile} px; mean PSNR in dB")
    print("| sigma | blind | true sigma x0.9 | true sigma | true sigma x1.1 | Wiener step alone (blind) "
          "| log-sigma RMS error | over-estimated > 5 % |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    per_photo, tiled, reblurred, edged, reestimated, reestimate_curves, averaged = [], [], [], [], [], [], []
    halved = []
    sides = [] if args.tile_estimates is None else (args.tile_estimates or [256, 384])
    for sigma in args.sigmas:
        blurred = [blur_gaussian(x, sigma, seed=BLUR_SEED)[0].astype(np.float32) for x in photos]
        scores = {"blind": [psnr(x, d.predict(b)) for x, b in zip(photos, blurred, strict=True)]}
        for factor in (0.9, 1.0, 1.1):  # the estimator's sigma replaced, its balance kept
            scores[factor] = [psnr(x, d.predict(b, sigma=sigma * factor))
                              for x, b in zip(photos, blurred, strict=True)]
        estimate, restore = d._split()
        # (1, 2) raw parameters of each photo, as predict finds them
        blind = [d._estimate_photo(b, lambda c: np.ascontiguousarray(c, np.float32), estimate) for b in blurred]
        guess = keras.ops.convert_to_numpy(wiener.blur_parameters(np.concatenate(blind))[0])  # estimated sigmas
        error = np.log(guess / sigma)
        row = [np.mean(v) for v in scores.values()]
        row.append(np.mean([psnr(x, np.clip(base.predict([b[None], p], verbose=0)[0, ..., :3], 0, 1))
                            for x, b, p in zip(photos, blurred, blind, strict=True)]))
        print(f"| {sigma:g} | " + " | ".join(f"{v:.2f}" for v in row)
              + f" | {_rms(error):.3f} | {_over(error)} of {len(error)} |", flush=True)
        per_photo += [(name, sigma, g, b, t)
                      for (name, _), g, b, t in zip(named, guess, scores["blind"], scores[1.0], strict=True)]
        if sides:
            tiled.append((sigma, tile_estimates(photos, blurred, estimate, restore, sides, psnr)))
        if args.edge_estimates:
            edge = np.clip([edge_sigma(b) for b in blurred], slo, shi)
            both = np.sqrt(edge * guess)
            cells = [np.mean(scores["blind"])]
            for est in (edge, both):
                cells.append(np.mean([psnr(x, d.predict(b, sigma=float(e)))
                                      for x, b, e in zip(photos, blurred, est, strict=True)]))
            cells += [_rms(np.log(est / sigma)) for est in (guess, edge, both)]
            edged.append((sigma, cells))
        if args.scale_estimates:
            half = np.clip([half_scale_sigma(d, b) for b in blurred], slo, shi)
            both = np.sqrt(half * guess)
            table = np.array([[s, *(psnr(x, d.predict(b, sigma=float(e))) for e in es)]
                              for x, b, s, *es in zip(photos, blurred, scores["blind"], half, both, strict=True)])
            errors = [np.log(est / sigma) for est in (guess, half, both)]
            over = " / ".join(str(_over(e)) for e in errors)
            halved.append((sigma, table, [_rms(e) for e in errors] + [np.mean(e) for e in errors], over))
        if args.reblur:
            table = reblur_search(photos, blurred, blind, guess, restore, wiener, psnr)
            reblurred.append((sigma, (table, scores[1.0])))
        if args.average:
            averaged.append((sigma, average_search(photos, blurred, blind, guess, restore, wiener, psnr)))
        if args.reestimate:
            table, curves = reestimate_search(d, photos, blurred, blind, guess, restore, estimate, wiener, psnr)
            reestimated.append((sigma, table))
            reestimate_curves += [(name, sigma, c) for (name, _), c in zip(named, curves, strict=True)]
    if sides:
        names = ["whole photo"] + [f"{a} of {s}-px tiles" for s in sides for a in ("median", "upper quartile", "max")]
        print("\nBlind PSNR with the photo's estimate made on the whole photo or from tiles (of exactly that side, "
              "or the photo's side where shorter, evenly spread to cover it)")
        print("| sigma | " + " | ".join(names) + " |")
        print("|---:|" + "---:|" * len(names))
        for sigma, per in tiled:
            print(f"| {sigma:g} | " + " | ".join(f"{np.mean(v):.2f}" for v in per) + " |")
        print("\nPhotos restored better than with the whole-photo estimate (PSNR higher by more than 0.005 dB)")
        print("| sigma | " + " | ".join(names[1:]) + " |")
        print("|---:|" + "---:|" * (len(names) - 1))
        for sigma, per in tiled:
            wins = [int(np.sum(np.array(v) > np.array(per[0]) + 0.005)) for v in per[1:]]
            print(f"| {sigma:g} | " + " | ".join(f"{k} of {len(per[0])}" for k in wins) + " |")
    if args.reblur:
        names = ["blind", "re-blur pick, 0.9-1.2", "re-blur pick, 0.8-1.3", "best factor (oracle)", "true sigma"]
        print(f"\nBlind sigma times a factor in {', '.join(f'{k:g}' for k in REBLUR_FACTORS)}, picked by the "
              "smallest RMS between the input and the restoration blurred again with its sigma: mean PSNR, and "
              "photos better / worse than blind (by more than 0.005 dB)")
        print("| sigma | " + " | ".join(names) + " |")
        print("|---:|" + "---:|" * len(names))
        for sigma, (table, true) in reblurred:
            cells = [*_against_blind(table), f"{np.mean(true):.2f}"]
            print(f"| {sigma:g} | " + " | ".join(cells) + " |")
    if args.reestimate:
        names = ["blind", "knee, 2 %", "knee, 5 %", "lowest re-estimate x0.85", "best factor (oracle)"]
        print(f"\nBlind sigma times a factor in {REESTIMATE_FACTORS[0]:g}-{REESTIMATE_FACTORS[-1]:g} (step 0.05), "
              "picked by the model's estimate on each restoration: mean PSNR, and photos better / worse than "
              "blind (by more than 0.005 dB)")
        print("| sigma | " + " | ".join(names) + " |")
        print("|---:|" + "---:|" * len(names))
        for sigma, table in reestimated:
            print(f"| {sigma:g} | " + " | ".join(_against_blind(table)) + " |")
    if args.average:
        names = ["blind", *AVERAGE_SETS]
        print("\nRestorations at the blind sigma times each factor of a set, averaged: mean PSNR, and photos "
              "better / worse than blind (by more than 0.005 dB)")
        print("| sigma | " + " | ".join(names) + " |")
        print("|---:|" + "---:|" * len(names))
        for sigma, table in averaged:
            print(f"| {sigma:g} | " + " | ".join(_against_blind(table)) + " |")
    if args.edge_estimates:
        print("\nSigma read off the edges (edge_sigma: gradient ratio at the strongest edges), and its geometric "
              "mean with the model's estimate: mean PSNR, and the log-sigma RMS error of each estimate")
        print("| sigma | blind | edge estimate | geometric mean | RMS error, model | RMS error, edges "
              "| RMS error, geometric mean |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for sigma, cells in edged:
            print(f"| {sigma:g} | " + " | ".join(f"{v:.2f}" for v in cells[:3]) + " | "
                  + " | ".join(f"{v:.3f}" for v in cells[3:]) + " |")
    if args.scale_estimates:
        print("\nSigma estimated by the model on the photo halved (INTER_AREA) and taken back to full-size pixels, "
              "and its geometric mean with the model's estimate: mean PSNR (photos better / worse than blind by "
              "more than 0.005 dB), the log-sigma RMS error of each estimate and the mean log error (bias)")
        print("| sigma | blind | half-scale estimate | geometric mean | RMS error, model | RMS error, half scale "
              "| RMS error, geometric mean | mean error, model | mean error, half scale | mean error, geometric mean "
              "| over-estimated > 5 %, model / half scale / geometric mean |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for sigma, table, errors, over in halved:
            print(f"| {sigma:g} | " + " | ".join(_against_blind(table)) + " | "
                  + " | ".join(f"{v:+.3f}" if i >= 3 else f"{v:.3f}" for i, v in enumerate(errors)) + f" | {over} |")
    if args.per_photo:
        print("\n| photo | sigma | estimated sigma | blind | true sigma | lost to the estimate |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, sigma, guess, blind, true in sorted(per_photo, key=lambda r: (r[0], r[1])):
            print(f"| {name} | {sigma:g} | {guess:.3f} | {blind:.2f} | {true:.2f} | {true - blind:+.2f} |")
        if reestimate_curves:
            print("\nRe-estimated sigma on each restoration, per factor of the blind sigma (best factor in bold)")
            print("| photo | sigma | " + " | ".join(f"x{k:.2f}" for k in REESTIMATE_FACTORS) + " |")
            print("|---|---:|" + "---:|" * len(REESTIMATE_FACTORS))
            for name, sigma, (again, scores) in sorted(reestimate_curves, key=lambda r: (r[0], r[1])):
                best = int(np.argmax(scores))
                cells = [f"**{v:.3f}**" if i == best else f"{v:.3f}" for i, v in enumerate(again)]
                print(f"| {name} | {sigma:g} | " + " | ".join(cells) + " |")
    return 0


def edge_sigma(image, probe: float = 1.0, top: float = 0.5) -> float:
    """A classical estimate of a uniform Gaussian blur's sigma, read off the strongest edges of ``image``.

    At a step edge blurred by sigma, the gradient magnitude falls by ``sqrt(sigma^2 + probe^2) / sigma`` when
    the image is blurred again by ``probe`` (Zhuo and Sim 2011), so ``sigma = probe / sqrt(R^2 - 1)`` with
    ``R`` the ratio of the two gradient magnitudes. Taken on the luminance, at Canny edges whose gradient is
    in the upper ``1 - top`` of the edges' gradients, and the median over them. It reads the total blur of
    an edge, so a photo's own softness adds to it, and lines or textures are not steps.
    """
    import cv2
    import numpy as np

    g = cv2.cvtColor(np.asarray(image, np.float32), cv2.COLOR_RGB2GRAY).astype(np.float64)

    def grad(im):
        gx = cv2.Sobel(im, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
        gy = cv2.Sobel(im, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
        return np.hypot(gx, gy)

    g1 = grad(g)
    k = 2 * int(np.ceil(4 * probe)) + 1
    g2 = grad(cv2.GaussianBlur(g, (k, k), probe, borderType=cv2.BORDER_REFLECT))
    edges = cv2.Canny(np.clip(g * 255 + 0.5, 0, 255).astype(np.uint8), 20, 60, L2gradient=True) > 0
    if edges.sum() < 50:  # hardly any edge: the strongest 1 % of the gradients
        edges = g1 >= np.quantile(g1, 0.99)
    at = edges & (g1 >= np.quantile(g1[edges], top))
    ratio = g1[at] / np.maximum(g2[at], 1e-9)
    return float(np.median(probe / np.sqrt(np.maximum(ratio**2 - 1, 1e-6))))


AREA_VARIANCE = 0.0625
"""``--scale-estimates``: the variance, in half-size px^2, that halving by 2x2 means adds (a 2-px box)."""


def half_scale_sigma(d, b) -> float:
    """The model's blind estimate of ``b``'s sigma made on ``b`` halved (2x2 means, ``cv2.INTER_AREA``; odd
    sides cropped by a pixel), in full-size pixels: ``2 * sqrt(s_half^2 - AREA_VARIANCE)``, at least 0.02."""
    import cv2
    import numpy as np

    h, w = (n - n % 2 for n in b.shape[:2])
    small = cv2.resize(np.ascontiguousarray(b[:h, :w]), (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    s = d.estimate_sigma(small)
    return float(2 * np.sqrt(max(s**2 - AREA_VARIANCE, 1e-4)))


def _rms(error) -> float:
    """The root mean square of log-sigma errors ``log(estimate / sigma)``."""
    import numpy as np

    return float(np.sqrt(np.mean(np.square(error))))


def _over(error, by: float = 1.05) -> int:
    """How many of the log-sigma errors are over-estimates by more than ``by`` (5 %)."""
    import numpy as np

    return int(np.sum(np.asarray(error) > np.log(by)))


def _against_blind(table) -> list[str]:
    """Table cells for an (n, k) array of PSNRs whose first column is blind: its mean, then each other
    column's mean and the photos it restores better / worse than blind (by more than 0.005 dB)."""
    import numpy as np

    cells = [f"{np.mean(table[:, 0]):.2f}"]
    for col in range(1, table.shape[1]):
        better = int(np.sum(table[:, col] > table[:, 0] + 0.005))
        worse = int(np.sum(table[:, col] < table[:, 0] - 0.005))
        cells.append(f"{np.mean(table[:, col]):.2f} ({better} / {worse})")
    return cells


def _restore_at(restore, wiener, b, raw, sigma: float):
    """``b`` restored (whole) by the facade's traced ``restore`` with the photo's raw blind parameters
    ``raw`` but the sigma ``sigma``, clipped just inside the model's range; the restoration and that sigma."""
    import numpy as np

    slo, shi = wiener.sigma_range
    s = float(np.clip(sigma, slo + 1e-3, shi - 1e-3))
    q = raw.copy()
    q[0, 0] = wiener.raw_sigma(s)
    return restore(b[None], q).numpy()[0], s


REBLUR_FACTORS = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2, 1.25, 1.3)


def reblur_search(photos, blurred, blind, guess, restore, wiener, psnr):
    """An (n, 4) array of each photo's PSNR: blind; with the factor of :data:`REBLUR_FACTORS` picked by
    re-blur consistency over 0.9-1.2, and over all of them; with the grid's best factor (chosen with the sharp
    photo: an upper bound for any rule that picks among these factors). Restorations by the facade's traced
    ``restore``, whole; ``blind`` the raw parameters and ``guess`` the sigma of each photo's blind estimate."""
    import numpy as np

    from blurkit.registry import BLURS

    factors = np.array(REBLUR_FACTORS)
    near = (factors > 0.9 - 1e-9) & (factors < 1.2 + 1e-9)
    rows = []
    for x, b, p, s0 in zip(photos, blurred, blind, guess, strict=True):
        rms, scores = [], []
        for k in factors:
            y, s = _restore_at(restore, wiener, b, p, s0 * k)
            again = BLURS.create("gaussian", sigma=s, border="reflect", quantize=False)(y)["image"]
            rms.append(float(np.sqrt(np.mean((again - b) ** 2))))
            scores.append(psnr(x, y))
        rms, scores = np.array(rms), np.array(scores)
        one = int(np.argmin(np.abs(factors - 1.0)))
        pick_near = np.flatnonzero(near)[np.argmin(rms[near])]
        rows.append([scores[one], scores[pick_near], scores[np.argmin(rms)], scores.max()])
    return np.array(rows)


AVERAGE_SETS = {
    "x0.95 (one)": (0.95,),
    "0.95 / 1 / 1.05": (0.95, 1.0, 1.05),
    "0.9 / 1 / 1.1": (0.9, 1.0, 1.1),
    "0.9 / 0.95 / 1": (0.9, 0.95, 1.0),
    "0.85 to 1.15 (7)": (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15),
}
"""``--average``: the factors of the blind sigma whose restorations are averaged, by column name."""


def average_search(photos, blurred, blind, guess, restore, wiener, psnr):
    """An (n, 1 + len(AVERAGE_SETS)) array of each photo's PSNR: blind, then the mean of its restorations at
    the blind sigma times each set's factors. Restorations by the facade's traced ``restore``, whole; ``blind``
    the raw parameters and ``guess`` the sigma of each photo's blind estimate."""
    import numpy as np

    factors = sorted({k for ks in AVERAGE_SETS.values() for k in ks} | {1.0})
    rows = []
    for x, b, p, s0 in zip(photos, blurred, blind, guess, strict=True):
        ys = {k: _restore_at(restore, wiener, b, p, s0 * k)[0] for k in factors}
        rows.append([psnr(x, ys[1.0])] + [psnr(x, np.mean([ys[k] for k in ks], axis=0))
                                           for ks in AVERAGE_SETS.values()])
    return np.array(rows)


REESTIMATE_FACTORS = tuple(round(0.75 + 0.05 * i, 2) for i in range(15))


def reestimate_search(d, photos, blurred, blind, guess, restore, estimate, wiener, psnr):
    """An (n, 5) array of each photo's PSNR, and each photo's (re-estimates, PSNRs) over the factors.

    The PSNRs: blind; with the factor of :data:`REESTIMATE_FACTORS` picked by the model's estimate on each
    restoration (the knee at 2 % and 5 %: the smallest factor whose re-estimate is within that of the lowest;
    the lowest re-estimate's factor times 0.85, rounded to the grid); with the grid's best factor (chosen
    with the sharp photo). Restorations by the facade's traced ``restore``, whole; re-estimates as
    ``predict`` makes its estimates."""
    import keras
    import numpy as np

    factors = np.array(REESTIMATE_FACTORS)
    one = int(np.argmin(np.abs(factors - 1.0)))
    rows, curves = [], []
    for x, b, p, s0 in zip(photos, blurred, blind, guess, strict=True):
        again, scores = [], []
        for k in factors:
            y, _ = _restore_at(restore, wiener, b, p, s0 * k)  # already clipped to [0, 1] by ``restore``
            scores.append(psnr(x, y))
            raw = d._estimate_photo(y, lambda c: np.ascontiguousarray(c, np.float32), estimate)
            again.append(float(keras.ops.convert_to_numpy(wiener.blur_parameters(raw)[0]).ravel()[0]))
        scores, excess = np.array(scores), np.log(again) - np.log(min(again))
        knees = [int(np.flatnonzero(excess <= tol)[0]) for tol in (np.log(1.02), np.log(1.05))]
        scaled = int(np.argmin(np.abs(factors - 0.85 * factors[int(np.argmin(again))])))
        rows.append([scores[one], *scores[knees], scores[scaled], scores.max()])
        curves.append((again, scores))
    return np.array(rows), curves


def tile_estimates(photos, blurred, estimate, restore, sides, psnr) -> list[list[float]]:
    """PSNR of each photo restored (the facade's traced ``restore``, whole) with: its estimate on the whole
    photo, then for each tile side the median, upper quartile and maximum of the estimates (the traced
    ``estimate``) on tiles of that side (raw parameters; the mapping to sigma is monotonic, so these are the
    median etc. of the sigmas)."""
    import numpy as np

    from blurkit.tiling import plan_tiles

    def tiles(b, t):
        plan = plan_tiles(*b.shape[:2], tile=t, overlap=0, fit=False)  # exactly t px, evenly spread
        return [b[y : y + plan.tile_h, x : x + plan.tile_w] for y in plan.ys for x in plan.xs]

    scores: list[list[float]] = [[] for _ in range(1 + 3 * len(sides))]
    for x, b in zip(photos, blurred, strict=True):
        params = [estimate(b[None]).numpy()[0]]
        for t in sides:
            found = np.stack([estimate(np.ascontiguousarray(c)[None]).numpy()[0] for c in tiles(b, t)])
            params += [np.median(found, axis=0), np.quantile(found, 0.75, axis=0), found.max(axis=0)]
        for i, q in enumerate(params):
            y = restore(b[None], q[None].astype(np.float32)).numpy()[0]
            scores[i].append(psnr(x, y))
    return scores


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

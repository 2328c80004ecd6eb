"""The results tables of the README, the model cards and benchmarks/README.md agree with the results JSONs.

Every figure of those tables is recomputed from the committed `benchmarks/results/*.json`, formatted as the
benchmark script that wrote the JSON formats it (PSNR `.2f`, SSIM `.4f` or `.3f`, s/MP `.2f` below 100 and
`.0f` above, ...) and compared with its Markdown cell as a string, one test per cell: a doc edited by hand,
or a results file rerun without updating the docs, turns that cell red. Bold (`**`) and code (`) marks are
dropped before comparing; where the bold marks the best restoration of a row, a pseudo-column "bold" checks
that it still does.

A cell that holds several figures (a gain range, a speed target with its details) is compared figure by
figure: `numbers(cell)` lists its numbers in order and the expected tuple gives each of them (None: a number
that is not a result, such as an image size). A row label that holds figures (iteration counts, numbers of
photos) is checked too (pseudo-column "label", or the label itself is built from the JSON).

Not checked, for want of a JSON (the scripts behind them print tables and write no results file):
4 columns of gaussian-v1's oracle table (`benchmarks/oracle_sigma.py`, see `oracle`), its "what has been
tried" table (the runs of docs/gaussian-v1-experiments.md) and its tiling table
(`benchmarks/tiling_quality.py`); in benchmarks/README.md, every table but the targets. `UNCHECKED` lists
the tables of the README and the model cards that are left out, so that a new one must be placed.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIGMAS = ("1", "2", "3")


@functools.cache
def load(name: str) -> dict:
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def method(name: str, file: str) -> dict:
    """One method of a `benchmarks/quality.py` results file, by its name there."""
    found = [m for m in load(file)["methods"] if m["name"] == name]
    assert len(found) == 1, f"{file}.json has {len(found)} methods named {name!r}"
    return found[0]


def robust(file: str = "robustness") -> dict[str, dict]:
    """The rows of a `benchmarks/robustness.py` results file, by "sigma | file"."""
    return {f"{r['sigma']:g} | {r['degradation']}": r for r in load(file)["rows"]}


def plain(cell: str) -> str:
    return cell.replace("**", "").replace("`", "").strip()


def numbers(text: str) -> list[str]:
    """The numbers of a cell, signs kept; digits inside a word (uint8) or after an x (2000x1500) are not."""
    return re.findall(r"(?<![\w.])[+-]?\d+(?:\.\d+)?", text)


def smp(seconds: float | None) -> str:
    """Seconds per megapixel as `benchmarks/quality.py` prints them."""
    return "–" if seconds is None else f"{seconds:.2f}" if seconds < 100 else f"{seconds:.0f}"


def scores(name: str, file: str, sigmas=SIGMAS, speed: bool = True) -> dict:
    """A row of a quality table: PSNR and SSIM per sigma, and s/MP."""
    m = method(name, file)
    row = {}
    for s in sigmas:
        row[f"σ={s} PSNR"] = f"{m['scores'][s]['psnr']:.2f}"
        row[f"σ={s} SSIM"] = f"{m['scores'][s]['ssim']:.4f}"
    if speed:
        row["s/MP"] = smp(m["seconds_per_megapixel"])
    return row


RL = "Richardson-Lucy, true kernel (iterations tuned on these photos)"
RL30 = "Richardson-Lucy, true kernel (30 it.)"
WIENER = "Wiener, true kernel (balance tuned on these photos)"
UNSHARP = "unsharp mask (tuned on these photos)"
X8 = "preset gaussian-v1, x8 self-ensemble"


def smp_at(name: str, file: str, sigmas: str) -> float:
    """Median seconds per megapixel of one method over its runs at ``sigmas`` (files written before
    quality.py stored ``seconds_per_megapixel_by_sigma``: from their per-image seconds and image sizes)."""
    sizes = {im["name"]: im["width"] * im["height"] / 1e6 for im in load(file)["protocol"]["images"]}
    runs = [c["seconds"] / sizes[c["image"]] for c in method(name, file)["per_image"]
            if f"{c['sigma']:g}" in sigmas]
    return float(np.median(runs))


def tuned_rl() -> dict:
    """Richardson-Lucy with tuned iterations: sigma 1 from quality-rl, sigma 2 and 3 from quality-rl-3000
    (s/MP: sigma 1's runs, then those of sigma 2 and 3, which share an iteration count)."""
    one, two = method(RL, "quality-rl"), method(RL, "quality-rl-3000")
    row = {**scores(RL, "quality-rl", "1", speed=False), **scores(RL, "quality-rl-3000", "23", speed=False)}
    row["s/MP"] = f"{smp(smp_at(RL, 'quality-rl', '1'))} / {smp(two['seconds_per_megapixel'])}"
    assert smp_at(RL, "quality-rl-3000", "23") == pytest.approx(two["seconds_per_megapixel"], rel=1e-5)  # seconds
    # are stored to 0.1 ms
    its = [one["params"]["1"], two["params"]["2"], two["params"]["3"]]
    row["label"] = "({} / {} / {})".format(*(i["iterations"] for i in its))
    return row


def rl30(file: str) -> dict:
    return {**scores(RL30, file), "label": f"({method(RL30, file)['params']['iterations']} it."}


QUALITY = ("method", "σ=1 PSNR", "σ=1 SSIM", "σ=2 PSNR", "σ=2 SSIM", "σ=3 PSNR", "σ=3 SSIM", "s/MP")

# The results table of the validation photos (README and gaussian-v1's card): quality.json, and the rows
# added later from quality-rl(-3000).json and quality-noisy.json. A key ending in "..." is a label's start.
VAL = [
    ("blurred input", lambda: scores("blurred input", "quality")),
    ("unsharp mask (tuned on these photos)", lambda: scores(UNSHARP, "quality")),
    ("skimage Wiener, true kernel (balance tuned on these photos)", lambda: scores(WIENER, "quality")),
    ("skimage Richardson-Lucy, true kernel (30 it....", lambda: rl30("quality")),
    ("skimage Richardson-Lucy, true kernel, iterations tuned on these photos...", tuned_rl),
    ("tutorial autoencoder (its recipe...", lambda: scores("tutorial autoencoder", "quality")),
    ("gaussian-v1 preset (blind)", lambda: scores("preset gaussian-v1", "quality")),
    ("gaussian-v1, x8 self-ensemble (blind...", lambda: scores(X8, "quality")),
]
NOISY_ROW = ("gaussian-v1-noisy preset (blind...", lambda: scores("model robust.keras", "quality-noisy"))

# The like-for-like table of gaussian-v1's card: quality-given-sigma.json (and the s/MP of that run).
GIVEN = [
    ("skimage Wiener, true kernel (balance tuned on these photos)",
     lambda: scores(WIENER, "quality-given-sigma")),
    ("gaussian-v1 (blind)", lambda: scores("preset gaussian-v1", "quality-given-sigma")),
    ("gaussian-v1, given the true sigma",
     lambda: scores("preset gaussian-v1, given the true sigma", "quality-given-sigma")),
    ("gaussian-v1, x8 self-ensemble, given the true sigma",
     lambda: scores("preset gaussian-v1, x8 self-ensemble, given the true sigma", "quality-given-sigma")),
]

# The second test set (scikit-image's other sample images): quality-skimage.json.
SKIMAGE = [
    ("blurred input", lambda: scores("blurred input", "quality-skimage")),
    ("unsharp mask (tuned on these images)", lambda: scores(UNSHARP, "quality-skimage")),
    ("skimage Wiener, true kernel (balance tuned on these images)",
     lambda: scores(WIENER, "quality-skimage")),
    ("skimage Richardson-Lucy, true kernel (30 it.)", lambda: rl30("quality-skimage")),
    ("tutorial autoencoder", lambda: scores("tutorial autoencoder", "quality-skimage")),
    ("gaussian-v1 preset (blind)", lambda: scores("preset gaussian-v1", "quality-skimage")),
    ("gaussian-v1, x8 self-ensemble (blind)", lambda: scores(X8, "quality-skimage")),
    ("gaussian-v1 before stage 5 (blind)",
     lambda: scores("model gaussian-v1-262e852.keras", "quality-skimage")),
]


def oracle(s: str) -> dict:
    """The oracle table of gaussian-v1's card comes from `benchmarks/oracle_sigma.py`, which writes no JSON.

    Three of its columns are measurements that committed JSONs hold too, on the same photos, blur and seed:
    "blind" is `Deblurrer.predict` (quality.json), "true sigma" the preset given the true sigma
    (quality-given-sigma.json), the RMS error the blind estimate's on the 8-bit files (robustness.json). The
    other four, "true sigma x0.9", "true sigma x1.1", "Wiener step alone (blind)" and "over-estimated > 5 %",
    have no JSON and are not checked.
    """
    given = method("preset gaussian-v1, given the true sigma", "quality-given-sigma")
    return {
        "blind": f"{method('preset gaussian-v1', 'quality')['scores'][s]['psnr']:.2f}",
        "true sigma": f"{given['scores'][s]['psnr']:.2f}",
        "log-sigma RMS error": f"{robust()[f'{s} | 8-bit']['estimates']['preset gaussian-v1']['rms']:.3f}",
    }


ORACLE = ("sigma", "blind", "true sigma x0.9", "true sigma", "true sigma x1.1", "Wiener step alone (blind)",
          "log-sigma RMS error", "over-estimated > 5 %")

FILES = ("8-bit", "noise 0.005", "noise 0.01", "noise 0.02", "JPEG 90", "JPEG 75", "JPEG 50")
DEFAULT, NOISY = "preset gaussian-v1, blind", "preset gaussian-v1-noisy, blind"


def bold(row: dict, columns: dict[str, str]) -> str:
    """The columns (doc names) with the row's best PSNR as printed, as the pseudo-column "bold" lists them."""
    best = max(f"{row['scores'][m]['psnr']:.2f}" for m in columns.values())
    return ", ".join(c for c, m in columns.items() if f"{row['scores'][m]['psnr']:.2f}" == best)


def readme_noisy(file: str) -> dict:
    """The README's camera-file table: sigma 2 of robustness.json, PSNR; bold: the best restorations."""
    r = robust()[f"2 | {file}"]
    cols = {"Wiener, true kernel (told the noise)": "Wiener, true kernel", "gaussian-v1": DEFAULT,
            "gaussian-v1-noisy": NOISY, "blurkit deblur (picks per photo)": "presets auto, blind"}
    row = {c: f"{r['scores'][m]['psnr']:.2f}" for c, m in {"input": "input", **cols}.items()}
    return {**row, "bold": bold(r, cols)}


def card_noisy(key: str) -> dict:
    """The noisy card's robustness table: robustness.json, "PSNR / SSIM" as robustness.py prints them.

    The card says "the best of the three restorations in bold": the pseudo-column "bold" checks it.
    """
    r = robust()[key]
    cols = {"Wiener, true kernel": "Wiener, true kernel", "gaussian-v1": DEFAULT, "gaussian-v1-noisy": NOISY}
    row = {c: f"{r['scores'][m]['psnr']:.2f} / {r['scores'][m]['ssim']:.3f}"
           for c, m in {"input": "input", **cols}.items()}
    return {**row, "bold": bold(r, cols)}


def estimates(key: str) -> dict:
    e = robust()[key]["estimates"]
    cols = {"gaussian-v1": "preset gaussian-v1", "gaussian-v1-noisy": "preset gaussian-v1-noisy"}
    return {c: f"{e[m]['ratio']:.3f} ({e[m]['rms']:.3f})" for c, m in cols.items()}


def noisy_given() -> dict:
    """gaussian-v1-noisy given the true sigma on clean files: the 8-bit rows of robustness.json."""
    row = {}
    for s in SIGMAS:
        v = robust()[f"{s} | 8-bit"]["scores"]["preset gaussian-v1-noisy, given sigma"]
        row[f"σ={s} PSNR"], row[f"σ={s} SSIM"] = f"{v['psnr']:.2f}", f"{v['ssim']:.4f}"
    return row


CLEAN = [
    ("skimage Wiener, true kernel (balance tuned on these photos)",
     lambda: scores(WIENER, "quality", speed=False)),
    ("gaussian-v1 (blind)", lambda: scores("preset gaussian-v1", "quality", speed=False)),
    ("gaussian-v1-noisy (blind)", lambda: scores("model robust.keras", "quality-noisy", speed=False)),
    ("gaussian-v1-noisy, given the true sigma", noisy_given),
]


def gains() -> dict[str, tuple]:
    """The noisy card's "which preset" gains: default over noisy on the 8-bit rows of robustness.json, and the
    range of noisy over default on its noisy and JPEG rows."""
    d = {k: r["scores"][DEFAULT]["psnr"] - r["scores"][NOISY]["psnr"] for k, r in robust().items()}
    degraded = [-v for k, v in d.items() if not k.endswith("8-bit")]
    return {"clean": (*(f"{d[f'{s} | 8-bit']:+.2f}" for s in SIGMAS), None, None, None),  # "at sigma 1 / 2 / 3"
            "degraded": (f"{min(degraded):+.2f}", f"{max(degraded):+.2f}")}


WHY = "why (val photos, blind, mean PSNR gain over the other preset)"
PRESET = [
    ("clean (a render...", lambda: {WHY: gains()["clean"]}),
    ("from a camera or phone...", lambda: {WHY: gains()["degraded"]}),
]

AUTO_FILES = {"training": "auto-thresholds-train", "val": "auto-thresholds",
              "second-set": "auto-thresholds-skimage"}
AUTO_KINDS = {"clean": "clean", "noisy": "noise", "JPEG": "JPEG"}


def auto_key(kind: str, photos: str) -> str:
    """A row label of the thresholds table, with its number of photos (the JSON's cases' distinct photos)."""
    n = len({c["photo"] for c in load(AUTO_FILES[photos])["cases"]})
    return f"{kind}, sigma 0.5-3 | {n} {photos} crops"


def auto(kind: str, photos: str) -> dict:
    v = load(AUTO_FILES[photos])["table"][AUTO_KINDS[kind]]
    row = {c: f"{v[k]:.2f}" for c, k in (("gaussian-v1", "default"), ("gaussian-v1-noisy", "noisy"),
                                         ("choice", "choice"), ("better", "best"))}
    return {**row, "to noisy": f"{100 * v['to_noisy']:.0f} %"}


def speed(*path: str):
    v = load("speed")["results"]
    for p in path:
        v = v[p]
    return v


def target(name: str) -> dict:
    found = [t for t in load("speed")["targets"] if t["target"] == name]
    assert len(found) == 1, f"speed.json has {len(found)} targets named {name!r}"
    return found[0]


def target_row(names: dict[str, str], extra) -> dict:
    """A row of benchmarks/README.md's targets table: goal and status of speed.json's targets (one or two),
    and the measured figures: each target's, formatted, then the `extra` ones from speed.json's results."""
    ts = [target(n) for n in names]
    assert len({t["goal"] for t in ts}) == 1 and len({t["status"] for t in ts}) == 1, names
    measured = tuple(format(t["measured"], f) for t, f in zip(ts, names.values(), strict=True))
    return {"goal": ts[0]["goal"], "status": ts[0]["status"], "measured": measured + tuple(extra())}


def blur_others() -> tuple[str, str]:
    """The range of the blur speed-ups other than the worst one (motion uint8)."""
    ups = [v["speedup"] for k, v in speed("blur").items() if k != "motion uint8"]
    return f"{min(ups):.0f}", f"{max(ups):.0f}"


OVERHEAD = "facade overhead over model.predict"
TARGETS = [
    ("default preset inference, fraction of matmul peak...",
     {"default model inference, fraction of matmul peak": ".1f"},
     lambda: (f"{speed('inference', 'preset:gaussian-v1 2048x1536 facade', 'gflops'):.1f}",
              f"{speed('roofline', 'tensorflow', 'gflops'):.0f}")),
    ("default preset inference, seconds per megapixel...",
     {"default model inference, seconds per megapixel": ".2f"}, tuple),
    (f"{OVERHEAD} (512x512 / 2048x1536)...",
     {f"{OVERHEAD} (512x512)": "+.1f", f"{OVERHEAD} (2048x1536)": "+.1f"}, tuple),
    ("facade overhead over a bare tf.function...",
     {"facade overhead over a bare tf.function (512x512)": "+.1f"}, tuple),
    ("tiled over untiled...", {"tiled over untiled, same image": "+.1f"},
     lambda: (str(speed("tiling", "tiled-small", "tile_size")),
              f"{100 * (speed('tiling', 'tiled-small', 'ratio') - 1):+.0f}")),
    ("peak memory, 8000x6000 photo...", {"peak memory, 8000x6000 photo": ".2f"},
     lambda: (None, f"{speed('big_images', '2000x1500', 'peak_rss_gb'):.2f}")),
    ("input pipeline / training consumption...", {"input pipeline / training consumption": ".0f"},
     lambda: (f"{speed('pipeline', 'make_dataset', 'pairs_per_s'):.0f}",
              f"{speed('train_step', 'model:unet', 'images_per_s'):.1f}")),
    ("input pipeline / tutorial loader", {"input pipeline / tutorial loader": ".1f"}, tuple),
    ("blur generation / skimage-scipy, worst blur and dtype",
     {"blur generation / skimage-scipy (worst case)": ".1f"}, blur_others),
    ('python -c "import blurkit"', {"python -c 'import blurkit'": ".3f"}, tuple),
    ("blurkit --help", {"blurkit --help": ".3f"}, tuple),
]

CARD, NOISY_CARD = "docs/model-card-gaussian-v1.md", "docs/model-card-gaussian-v1-noisy.md"
part = functools.partial


def finetuned(row: str) -> dict:
    """gaussian-v1's card, "Fine-tuning it for a known blur": `blurkit evaluate` JSONs of the preset and of
    the preset fine-tuned at sigma 2 (benchmarks/results/finetune-s2.json), and quality.json's Wiener."""
    runs = load("finetune-s2")["evaluate"]
    wiener = method("Wiener, true kernel (balance tuned on these photos)", "quality")
    out = {}
    for s in ("1", "2"):
        if row == "Wiener, true kernel":
            psnr, ssim = wiener["scores"][s]["psnr"], wiener["scores"][s]["ssim"]
        else:
            run = runs["ft-s2" if row.startswith("fine-tuned") else "gaussian-v1"][s]
            side = run["blurred"] if row == "blurred input" else run["model"]
            psnr, ssim = side["psnr"], side["ssim"]
        out[f"sigma {s}"] = f"{psnr:.2f} / {ssim:.4f}"
    return out


FINETUNED = ("blurred input", "Wiener, true kernel", "gaussian-v1 (blind)", "fine-tuned at sigma 2 (blind)")

# (name, doc, header, which of the doc's tables with that header (0: the first), label columns, rows);
# rows: (key, expected), the key a label (or a function giving it), expected a function giving
# {column: the cell as the doc should print it}.
TABLES = [
    ("readme-results", "README.md", QUALITY, 0, 1, [*VAL, NOISY_ROW]),
    ("readme-noisy", "README.md",
     ("file", "input", "Wiener, true kernel (told the noise)", "gaussian-v1", "gaussian-v1-noisy",
      "blurkit deblur (picks per photo)"), 0, 1, [(f, part(readme_noisy, f)) for f in FILES]),
    ("card-results", CARD, QUALITY, 0, 1, VAL),
    ("card-given-sigma", CARD, QUALITY, 1, 1, GIVEN),
    ("card-skimage", CARD, QUALITY, 2, 1, SKIMAGE),
    ("card-oracle", CARD, ORACLE, 0, 1, [(s, part(oracle, s)) for s in SIGMAS]),
    ("card-finetuned", CARD, ("val photos, mean PSNR / SSIM", "sigma 1", "sigma 2"), 0, 1,
     [(r, part(finetuned, r)) for r in FINETUNED]),
    ("noisy-preset", NOISY_CARD, ("the photo", "use", WHY), 0, 1, PRESET),
    ("noisy-auto", NOISY_CARD,
     ("cases", "photos", "gaussian-v1", "gaussian-v1-noisy", "choice", "better", "to noisy"), 0, 2,
     [(part(auto_key, k, p), part(auto, k, p)) for p in AUTO_FILES for k in AUTO_KINDS]),
    ("noisy-robustness", NOISY_CARD,
     ("sigma", "file", "input", "Wiener, true kernel", "gaussian-v1", "gaussian-v1-noisy"), 0, 2,
     [(f"{s} | {f}", part(card_noisy, f"{s} | {f}")) for s in SIGMAS for f in FILES]),
    ("noisy-estimates", NOISY_CARD, ("sigma", "file", "gaussian-v1", "gaussian-v1-noisy"), 0, 2,
     [(f"{s} | {f}", part(estimates, f"{s} | {f}")) for s in SIGMAS for f in FILES]),
    ("noisy-clean", NOISY_CARD, QUALITY[:-1], 0, 1, CLEAN),
    ("bench-targets", "benchmarks/README.md", ("target", "goal", "measured", "status"), 0, 1,
     [(k, part(target_row, n, e)) for k, n, e in TARGETS]),
]

# The other tables of the README and the model cards, by the first cell of their header, and why.
UNCHECKED = {
    ("README.md", "component"): "the registries' contents, not results",
    (CARD, "what (date)"): "the runs of docs/gaussian-v1-experiments.md, which have no committed JSON",
    (CARD, "images (large, small tile)"): "benchmarks/tiling_quality.py writes no JSON",
}

# Cells known to disagree with their JSON: (table, row key, column) -> why. Each is an xfail(strict=True).
KNOWN: dict[tuple[str, str, str], str] = {}


class Table:
    def __init__(self, doc: str, line: int, rows: list[list[str]]):
        self.doc, self.line, self.header, self.body = doc, line, [plain(c) for c in rows[0]], rows[2:]


def split(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse(doc: str, text: str) -> list[Table]:
    """The Markdown tables of a text (indented ones too), each with the line number of its header."""
    found, block = [], []
    for i, line in enumerate([*text.splitlines(), ""], 1):
        if line.strip().startswith("|"):
            block.append((i, line))
            continue
        if len(block) >= 2 and set(block[1][1].replace("|", "").strip()) <= set("-: "):
            found.append(Table(doc, block[0][0], [split(cells) for _, cells in block]))
        block = []
    return found


@functools.cache
def tables(doc: str) -> list[Table]:
    return parse(doc, (ROOT / doc).read_text(encoding="utf-8"))


def table(doc: str, header: tuple, nth: int) -> Table:
    same = [t for t in tables(doc) if tuple(t.header) == header]
    assert len(same) > nth, f"{doc}: no table #{nth} with the header {' | '.join(header)}"
    return same[nth]


def matches(key: str, label: str) -> bool:
    """A key ending in "..." matches the labels it starts; other keys match exactly."""
    return label.startswith(key[:-3]) if key.endswith("...") else label == key


def label(row: list[str], keys: int) -> str:
    return " | ".join(plain(c) for c in row[:keys])


def cases() -> list:
    out = []
    for name, doc, header, nth, keys, rows in TABLES:
        for key, row in rows:
            try:
                key = key() if callable(key) else key
                expected = row()
            except Exception as e:  # a missing JSON key fails its tests, not the collection
                key, expected = key if isinstance(key, str) else repr(key), {"(json)": e}
            for col, want in expected.items():
                ident = re.sub(r"[^\w.:|=+/ -]", "", f"{name}:{key[:40]}:{col[:20]}".replace("σ=", "s"))
                why = KNOWN.get((name, key, col))
                marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
                cell = (name, doc, header, nth, keys, key, col, want)
                out.append(pytest.param(cell, id=ident, marks=marks))
    return out


def check(name, doc, header, nth, keys, key, col, want):
    """Assert that the doc prints `want` in the cell (row `key`, column `col`) of its table."""
    if isinstance(want, Exception):
        raise want
    t = table(doc, header, nth)
    found = [r for r in t.body if matches(key, label(r, keys))]
    assert len(found) == 1, f"{doc}:{t.line} ({name}): {len(found)} rows match {key!r}"
    row = found[0]
    where = f"{doc}:{t.line + 2 + t.body.index(row)} ({name}), row {key!r}, column {col!r}"
    if col == "label":
        assert want in label(row, keys), f"{where}: the label should say {want!r}"
    elif col == "bold":
        got = ", ".join(h for h, c in zip(t.header, row, strict=True) if c.startswith("**"))
        assert got == want, f"{where}: bold on {got!r}, the best in the JSON: {want!r}"
    elif isinstance(want, tuple):
        figures = numbers(plain(row[t.header.index(col)]))
        assert len(figures) == len(want), f"{where}: the doc has {figures}, the JSON gives {list(want)}"
        got = [f if w is not None else None for f, w in zip(figures, want, strict=True)]
        assert got == list(want), f"{where}: the doc has {figures}, the JSON gives {list(want)}"
    else:
        got = plain(row[t.header.index(col)])
        assert got == want, f"{where}: the doc says {got!r}, the JSON gives {want!r}"


@pytest.mark.parametrize("cell", cases())
def test_cell_matches_json(cell):
    check(*cell)


@pytest.mark.parametrize("spec", TABLES, ids=[t[0] for t in TABLES])
def test_every_row_has_a_source(spec):
    """Each row of a checked table is matched by exactly one key of its spec: none added or left out."""
    name, doc, header, nth, keys, rows = spec
    t = table(doc, header, nth)
    wanted = [k() if callable(k) else k for k, _ in rows]
    for r in t.body:
        hits = [k for k in wanted if matches(k, label(r, keys))]
        assert len(hits) == 1, f"{doc}:{t.line} ({name}): row {label(r, keys)!r} matches {hits or 'no key'}"
    assert len(t.body) == len(wanted), f"{doc}:{t.line} ({name}): {len(t.body)} rows, {len(wanted)} keys"


@pytest.mark.parametrize("doc", ["README.md", CARD, NOISY_CARD])
def test_every_table_is_checked_or_excused(doc):
    """A new table in the README or a model card must be given a source (TABLES) or a reason (UNCHECKED)."""
    checked = {(tuple(h), n) for _, d, h, n, _, _ in TABLES if d == doc}
    seen: dict[tuple, int] = {}
    for t in tables(doc):
        nth = seen[tuple(t.header)] = seen.get(tuple(t.header), -1) + 1
        assert (tuple(t.header), nth) in checked or (doc, t.header[0]) in UNCHECKED, \
            f"{doc}:{t.line}: a table neither checked against a JSON nor in UNCHECKED"


def test_a_wrong_figure_fails():
    """The check itself: the README with one figure changed in its last digit fails, on that figure."""
    key, col = "gaussian-v1 preset (blind)", "σ=1 PSNR"
    want = scores("preset gaussian-v1", "quality")[col]
    cell = ("readme-results", "README.md", QUALITY, 0, 1, key, col, want)
    check(*cell)
    t = table("README.md", QUALITY, 0)
    row = next(r for r in t.body if label(r, 1) == key)
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    n = t.line + 2 + t.body.index(row)
    good = row[QUALITY.index(col)]
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    lines[n - 1] = lines[n - 1].replace(f"| {good} |", f"| {bad} |", 1)
    wrong = {"README.md": parse("README.md", "\n".join(lines))}
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(globals(), "tables", wrong.__getitem__)
        with pytest.raises(AssertionError, match=f"the doc says '{bad}'"):
            check(*cell)


def test_numbers():
    assert numbers("1.88 GB (2000x1500: 1.30 GB)") == ["1.88", "2000", "1.30"]
    assert numbers("9.4x (motion uint8; others 12-42x)") == ["9.4", "12", "42"]
    assert numbers("-16.3 % / +6.0 %") == ["-16.3", "+6.0"]

"""Paired comparison of a quality results file's rows against Wiener, photo by photo.

Usage::

    python benchmarks/paired.py benchmarks/results/quality.json [MORE.json ...]

For each file written by ``benchmarks/quality.py`` (any of them: the statistics come from its
``per_image`` scores, so files written before the paired table was added work too), prints per sigma each
row's mean PSNR difference to "Wiener, true kernel" with a 95 % bootstrap interval, on how many photos it
is ahead in PSNR and in SSIM, and the Wilcoxon signed-rank p-value (``quality.paired_vs``). Nothing is
recomputed from images and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import quality  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="results files of benchmarks/quality.py")
    args = p.parse_args(argv)
    for f in args.files:
        try:
            results = json.loads(Path(f).read_text(encoding="utf-8"))["methods"]
        except (OSError, ValueError, KeyError) as exc:
            sys.exit(f"error: {f}: not a quality results file ({exc})")
        against = quality.paired_vs(results, quality.WIENER)
        print(f"{f}:")
        print(quality.format_paired(against) if against else "  (no Wiener row)")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

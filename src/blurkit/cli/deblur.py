"""``blurkit deblur``: restore photos with a model file or a shipped preset.

Without a model file the default preset is used, so ``blurkit deblur photo.jpg -o sharp.png`` works right
after installing. Folders are processed recursively, keeping relative names and formats. Outputs are
written atomically, so an interrupted run never leaves a half-written image, and ``--skip-existing``
resumes it. Unreadable files (empty, truncated, not images, decompression bombs above ``--max-pixels``)
and images that cannot be restored are reported and skipped, the rest of the batch goes on; the summary
lists each failure with its reason. Transparency is kept (the alpha channel is passed through unchanged,
except in JPEG outputs); EXIF orientation is applied, so outputs are upright.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "deblur",
        help="deblur photos (files or folders)",
        description="Deblur photos with MODEL (a .keras file from `blurkit train`) or, when no model file "
        "is given, with the default pretrained preset.",
    )
    p.add_argument("paths", nargs="+", metavar="[MODEL] INPUT", help="optional model file, then files/folders")
    p.add_argument("-o", "--out", required=True, help="output file (one input) or folder")
    p.add_argument("--preset", help="use this shipped preset (see `blurkit deblur --list-presets`)")
    p.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist")
    p.add_argument("--suffix", default="", help="add this to output file names (before the extension)")
    p.add_argument("--tile-size", type=int, help="restore images above TILE_SIZE^2 pixels in tiles")
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help="refuse images of more than N pixels before decoding them (decompression-bomb guard; "
                   "default 178956970, about 13000x13000)")
    p.add_argument("--quiet", "-q", action="store_true")
    p.set_defaults(func=run)
    return p


def _plan(inputs: list[str], out: str, suffix: str):
    """(source, destination) pairs; a single file may go to a file, everything else to a folder."""
    from pathlib import Path

    from blurkit.cli.main import CLIError
    from blurkit.data.io import is_image_path, list_images

    outp = Path(out)
    single = len(inputs) == 1 and Path(inputs[0]).is_file()
    if not outp.is_dir():
        if single and outp.suffix and not is_image_path(outp):
            raise CLIError(f"--out {out}: not an image file name (use .png, .jpg, .tif, ...) or a folder")
        if not single and is_image_path(outp):
            raise CLIError(f"--out {out}: several images need an output folder, not an image file name")
    jobs = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in list_images(p):
                rel = f.relative_to(p)
                jobs.append((f, outp / rel.with_name(rel.stem + suffix + rel.suffix)))
        elif p.is_file():
            if len(inputs) == 1 and is_image_path(outp) and not outp.is_dir():
                jobs.append((p, outp))
            else:
                jobs.append((p, outp / (p.stem + suffix + p.suffix)))
        else:
            raise CLIError(f"no such file or folder: {item}")
    return jobs


def run(args: argparse.Namespace) -> int:
    import sys

    from blurkit.cli._common import load_deblurrer
    from blurkit.cli.main import CLIError

    paths = list(args.paths)
    model = paths.pop(0) if paths[0].endswith(".keras") else None
    if not paths:
        raise CLIError("no input images given")
    if model and args.preset:
        raise CLIError("give a model file or --preset, not both")
    jobs = _plan(paths, args.out, args.suffix)
    if not jobs:
        raise CLIError(f"no images found in {', '.join(paths)}")

    from tqdm.auto import tqdm

    from blurkit.data.io import DEFAULT_MAX_PIXELS, read_image, write_image

    max_pixels = DEFAULT_MAX_PIXELS if args.max_pixels is None else args.max_pixels
    if max_pixels < 1:
        raise CLIError(f"--max-pixels must be a positive number of pixels, got {args.max_pixels}")
    d = load_deblurrer(model, args.preset)
    if args.tile_size:
        if d.fixed_size:
            raise CLIError(f"--tile-size: this model only takes {d.fixed_size}x{d.fixed_size} inputs")
        if args.tile_size < 16:
            raise CLIError(f"--tile-size must be at least 16, got {args.tile_size}")
        d.tile_size = int(args.tile_size)
        d.tile_overlap = min(d.tile_overlap, d.tile_size // 4)
    done, skipped, failed = 0, 0, []
    bar = tqdm(jobs, disable=args.quiet, unit="img", desc="deblur")
    for src, dst in bar:
        if args.skip_existing and dst.exists():
            skipped += 1
            continue
        try:
            image = read_image(src, max_pixels=max_pixels, alpha="keep")
            write_image(dst, d.predict(image))
            done += 1
        except (ValueError, OSError) as exc:  # ImageReadError is a ValueError; messages name the file
            failed.append((src, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one bad image must not stop the batch
            failed.append((src, f"{type(exc).__name__}: {exc}"))
    if not args.quiet:
        print(f"done {done}, skipped {skipped} (already there), failed {len(failed)}")
    for src, why in failed:
        print(f"  failed: {src}: {why}", file=sys.stderr)
    return 0 if done or skipped else 1

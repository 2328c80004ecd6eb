"""``blurkit shard``: pack a folder (glob, or text list) of photos into TFRecord shards for training.

The shards hold each file's encoded bytes unchanged plus its relative name, and ``OUT/shards.json``
indexes them; see :mod:`blurkit.data.shards` for the format. Train on them with ``blurkit train OUT`` or
``Deblurrer.fit("OUT")``.
"""

from __future__ import annotations

import argparse
import sys

from blurkit.cli._common import check_output, flag_reason
from blurkit.cli._common import shown as _shown

_MAX_LISTED = 20


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``shard`` command."""
    parser = subparsers.add_parser(
        "shard",
        help="pack images into TFRecord shards for training at scale",
        description=(
            "Check every image of SRC (a folder, scanned recursively; a glob pattern in quotes; or a "
            ".txt/.lst file listing one path per line) and write OUT/shard-NNNNN-of-NNNNN.tfrecord files "
            "holding the encoded files unchanged, plus the index OUT/shards.json. Unreadable files are "
            "skipped and listed. Files are shuffled (seeded) before they are cut into shards."
        ),
        epilog="exit status: 0 every image stored, 3 some files could not be read (listed on stderr and in "
        "the index) and the others stored, 1 none could be, 2 a usage error",
    )
    parser.add_argument("src", metavar="SRC", help="folder, glob pattern or text list of images")
    parser.add_argument("out_dir", metavar="OUT", help="output folder (created; earlier shards there are replaced)")
    parser.add_argument(
        "--shard-size", type=int, default=256, metavar="N",
        help="images per shard (default 256); aim for shards of 100-200 MB and at least one per worker",
    )
    parser.add_argument(
        "--check", choices=("decode", "header"), default="decode",
        help="decode: decode every image as training will (default, catches truncated files); "
             "header: only parse the header (faster)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the file shuffle (default 0)")
    parser.add_argument("--no-shuffle", action="store_true", help="keep the sorted file order")
    parser.add_argument(
        "--max-pixels", type=int, default=None, metavar="N",
        help="skip images with more pixels than this (default: the decompression-bomb limit, ~179 M)",
    )
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="threads reading and checking files (default: CPUs, at most 8)")
    parser.add_argument(
        "--no-progress", action="store_true",
        help="no progress (a bar on a terminal; in a log, a line every 30 s of a longer run); the summary "
        "is still printed",
    )
    parser.set_defaults(func=run)
    return parser


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def _reason(why: str) -> str:
    """A skipped file's reason as the CLI prints it: naming ``--max-pixels`` where the library's message names
    ``read_image``'s ``max_pixels`` (as ``blurkit deblur`` does), and printable whatever the terminal.

    Examples:
        >>> _reason("image is 9 pixels, more than max_pixels=4; pass a larger max_pixels (or "
        ...         "max_pixels=None) to read_image if you trust this file")
        'image is 9 pixels, more than --max-pixels 4; pass a larger --max-pixels if you trust this file'
    """
    return _shown(flag_reason(why))


def run(args: argparse.Namespace) -> int:
    """Run ``shard``; returns 0 when every image was stored, 3 when some could not be read, 1 when none."""
    from pathlib import Path

    from blurkit._lock import Busy
    from blurkit.cli._common import progress_shown, quiet_tensorflow
    from blurkit.cli.main import CLIError
    from blurkit.data.io import DEFAULT_MAX_PIXELS
    from blurkit.data.shards import write_shards

    for flag, value in (("--shard-size", args.shard_size), ("--max-pixels", args.max_pixels),
                        ("--workers", args.workers)):
        if value is not None and value < 1:
            raise CLIError(f"{flag} must be a positive integer, got {value}")
    src = args.src
    if not any(c in src for c in "*?[") and not Path(src).exists():
        raise CLIError(f"no such file or folder: {src}")
    if Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():
        raise CLIError(f"output is not a folder: {args.out_dir}")
    check_output(args.out_dir, "OUT", folder=True)  # a file in the way of it, or a folder it cannot write in
    quiet_tensorflow()  # the shards are TFRecord files: TensorFlow's start-up lines, hidden as in every command
    try:
        summary = write_shards(
            src,
            args.out_dir,
            shard_size=args.shard_size,
            check=args.check,
            shuffle=not args.no_shuffle,
            seed=args.seed,
            max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
            workers=args.workers,
            progress=not args.no_progress and progress_shown(),  # on a terminal, or a line now and then
        )
    except Busy as exc:  # another run writes OUT: this one wrote nothing
        raise CLIError(f"{exc}: wait for it to end, or write to another OUT", status=1) from None
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    # a failed write (a full disk) is an OSError naming OUT and the reason: main prints it in one line, status 1

    shards = summary["shards"]
    if shards:
        print(
            f"wrote {summary['written']} of {summary['total']} images in {len(shards)} "
            f"shard{'s' if len(shards) != 1 else ''} ({_size(summary['bytes'])}) to {summary['out_dir']} "
            f"(index {Path(summary['index']).name}) in {summary['seconds']:.1f} s"
        )
    skipped = summary["skipped"]
    if skipped:  # on stderr, as `blurkit deblur` and `blurkit evaluate` report the files they skip
        print(f"skipped {len(skipped)} unreadable file{'s' if len(skipped) != 1 else ''}:", file=sys.stderr)
        for item in skipped[:_MAX_LISTED]:
            print(f"  {_shown(item['file'])}: {_reason(item['reason'])}", file=sys.stderr)
        if len(skipped) > _MAX_LISTED:
            print(f"  ... and {len(skipped) - _MAX_LISTED} more (all are listed in the index)", file=sys.stderr)
    if summary["written"] == 0:
        print("blurkit shard: error: no image could be stored; nothing was written", file=sys.stderr)
        return 1
    return 3 if skipped else 0  # as blurkit deblur: some failed, the others were done

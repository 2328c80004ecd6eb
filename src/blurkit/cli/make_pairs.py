"""``blurkit make-pairs``: blur a folder of sharp photos into (blurred, sharp) training pairs.

Values of ``--sigma`` and ``--blur-option`` are parsed by :func:`blurkit.cli._common.parse_value`: ``2`` is a
fixed number, ``0.5:3`` a ``(low, high)`` range sampled per image, other text JSON (``true``,
``[1, 2]``) or, failing that, a plain string (``reflect``).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from blurkit.cli._common import check_output
from blurkit.cli._common import shown as _shown

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_LISTED = 20


def _parse_size(text: str | None) -> int | tuple[int, int] | None:
    from blurkit.cli.main import CLIError

    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match or int(match.group(1)) <= 0 or (match.group(2) is not None and int(match.group(2)) <= 0):
        raise CLIError(
            f"--size: expected a positive integer like 128 or WIDTHxHEIGHT like 160x120, got {text!r}"
        )
    if match.group(2) is None:
        return int(match.group(1))
    return int(match.group(1)), int(match.group(2))


def _blur_options(args: argparse.Namespace) -> dict[str, Any]:
    from blurkit.cli._common import parse_sigma, parse_value
    from blurkit.cli.main import CLIError

    options: dict[str, Any] = {}
    for item in args.option or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise CLIError(f"--blur-option: expected KEY=VALUE with KEY a name, got {item!r}")
        if key == "seed":
            raise CLIError("--blur-option seed=...: use --seed (each image gets its own seed derived from it)")
        if key in options:
            raise CLIError(f"--blur-option {key} given twice")
        options[key] = parse_value(value, f"--blur-option {key}")
    if args.sigma is not None:
        if "sigma" in options:
            raise CLIError("give sigma either with --sigma or with --blur-option sigma=..., not both")
        options["sigma"] = parse_sigma(args.sigma)
    return options


class _OldOption(argparse._AppendAction):
    """``--option``/``-o KEY=VALUE``, the old spelling of ``--blur-option``; ``-o pairs/`` (no ``=``), every other
    command's output flag, is refused with the command's form instead of being taken as a blur option (the
    error was "the following arguments are required: OUT_DIR")."""

    def __call__(self, parser, namespace, values, option_string=None):
        if "=" not in str(values):
            parser.error(f"{option_string} {values}: make-pairs writes to OUT_DIR, its second argument "
                         f"(blurkit make-pairs CLEAN_DIR OUT_DIR); blur options are --blur-option KEY=VALUE")
        super().__call__(parser, namespace, values, option_string)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``make-pairs`` command."""
    parser = subparsers.add_parser(
        "make-pairs",
        help="blur a folder of sharp images into (blurred, sharp) training pairs",
        description=(
            "Blur every image under CLEAN_DIR (recursively) and write OUT_DIR/sharp/, OUT_DIR/blurred/ "
            "(PNG, same relative names) and OUT_DIR/manifest.jsonl (blur, sampled parameters, kernel and "
            "seed of each pair). Unreadable files are reported and skipped. The same --seed gives the "
            "same files. OUT_DIR must not hold pairs of an earlier run (a manifest.jsonl, the "
            "manifest.jsonl.partial of an interrupted run, or files in sharp/ or blurred/), which training "
            "would otherwise mix in; --replace deletes the files the old manifests list, and those "
            "manifests, first (no other file)."
        ),
        epilog="exit status: 0 every image made a pair, 3 some files could not be read (listed on stderr) "
        "and the others did, 1 none could be (or writing failed, or another make-pairs is writing OUT_DIR), 2 a "
        "usage error",
    )
    parser.add_argument("clean_dir", metavar="CLEAN_DIR", help="folder of sharp images")
    parser.add_argument(
        "out_dir", metavar="OUT_DIR", help="output folder (created; must not hold an earlier run's pairs)"
    )
    parser.add_argument(
        "--blur", default="gaussian", help="blur generator name (see `blurkit list`); default gaussian"
    )
    parser.add_argument(
        "--sigma", default=None, metavar="S|LO:HI", help="blur sigma: 2 (fixed) or 0.5:3 (sampled per image)"
    )
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument(
        "--size",
        default=None,
        metavar="N|WxH",
        help="resize to NxN (or WxH) with INTER_AREA before blurring, e.g. 128; default: full resolution",
    )
    parser.add_argument(
        "--blur-option",
        dest="option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="other blur option (repeatable, as for `blurkit train`); VALUE is JSON or a LO:HI range, e.g. "
        "--blur-option length=5:15",
    )
    # The names this option had before it took `blurkit train`'s: still accepted, no longer shown (``-o``
    # is every other command's output: `-o pairs/` is refused as such, not taken as a blur option).
    parser.add_argument("--option", "-o", dest="option", action=_OldOption, help=argparse.SUPPRESS)
    parser.add_argument(
        "--replace",
        action="store_true",
        help="OUT_DIR holds pairs of an earlier run: delete the files its manifest.jsonl (or the "
        "manifest.jsonl.partial of an interrupted run) lists, and that manifest, before writing (other files "
        "are kept)",
    )
    parser.add_argument(
        "--no-progress", action="store_true",
        help="no progress (a bar on a terminal; in a log, a line every 30 s of a longer run); the summary "
        "is still printed",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``make-pairs``; returns 0 if every image made a pair, 3 if some could not be read, 1 if none."""
    from pathlib import Path

    from blurkit._lock import Busy
    from blurkit.cli._common import plugins_quiet, progress_shown
    from blurkit.cli.main import CLIError
    from blurkit.data.pairs import (
        MANIFEST_NAME,
        PARTIAL_NAME,
        build_blur,
        folder_conflict,
        in_progress,
        make_pairs,
        previous_outputs,
    )
    from blurkit.registry import UnknownComponentError

    options = _blur_options(args)
    size = _parse_size(args.size)
    clean = Path(args.clean_dir)
    if not clean.exists():
        raise CLIError(f"input folder not found: {clean}")
    if not clean.is_dir():
        raise CLIError(f"input is not a folder: {clean}")
    try:
        with plugins_quiet():  # a plugin's blur, from a module that imports Keras, starts TensorFlow
            build_blur(args.blur, options)  # fail early with a clear message
    except UnknownComponentError as exc:
        raise CLIError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        if args.sigma is not None and isinstance(exc, TypeError) and "'sigma'" in str(exc):
            raise CLIError(f"--sigma is for the gaussian blur; blur {args.blur!r} has no sigma (set its own "
                           "options with --blur-option KEY=VALUE)") from None
        raise CLIError(f"invalid options for blur {args.blur!r}: {exc}") from None
    check_output(args.out_dir, "OUT_DIR", folder=True)  # a file in the way of it, or a folder it cannot write in
    conflict = folder_conflict(clean, args.out_dir)
    if conflict:
        raise CLIError(conflict)
    running = in_progress(args.out_dir)
    if running:  # its partial manifest is no interrupted run's, and --replace would delete its pairs
        raise CLIError(f"another {running} is writing {args.out_dir}: wait for it to end, or choose another "
                       "OUT_DIR", status=1)
    previous = previous_outputs(args.out_dir)
    manifests = [name for name in (MANIFEST_NAME, PARTIAL_NAME) if name in previous]
    if previous and not manifests:
        # files in sharp/ or blurred/ that no manifest lists: --replace would delete none of them
        raise CLIError(
            f"{args.out_dir} already holds pairs that no manifest lists ({', '.join(previous)}): training "
            "would mix them in and --replace deletes only the pairs a manifest lists; delete them yourself, "
            "or choose another OUT_DIR"
        )
    if previous and not args.replace:
        run_of = "an interrupted run" if PARTIAL_NAME in manifests else "an earlier run"
        raise CLIError(
            f"{args.out_dir} already holds the output of {run_of} ({', '.join(previous)}); pass --replace "
            f"to delete the pairs {' and '.join(manifests)} list{'s' if len(manifests) == 1 else ''} first, "
            "or choose another OUT_DIR"
        )

    try:
        summary = make_pairs(
            clean,
            args.out_dir,
            blur=args.blur,
            blur_options=options,
            seed=args.seed,
            size=size,
            progress=not args.no_progress and progress_shown(),  # on a terminal, or a line now and then
            replace=args.replace,
        )
    except Busy as exc:  # started since the look above: this run did nothing
        raise CLIError(f"{exc}: wait for it to end, or choose another OUT_DIR", status=1) from None
    except ValueError as exc:  # what the checks before any pair refuse (no images, a bad old manifest)
        raise CLIError(str(exc)) from None
    # an OSError (a write failed, a folder removed meanwhile: the work had started) is main's: one line, status 1

    out = summary["out_dir"]
    where = " (sharp/, blurred/, manifest.jsonl)" if summary["written"] else ""  # no pair, no manifest
    print(f"wrote {summary['written']} of {summary['total']} pairs to {_shown(out)}{where} in "
          f"{summary['seconds']:.1f} s")
    skipped = summary["skipped"]
    if skipped:
        # on stderr, as deblur, evaluate and shard report theirs: stdout stays the run's own output
        print(f"skipped {len(skipped)} unreadable file{'s' if len(skipped) != 1 else ''}:", file=sys.stderr)
        for item in skipped:
            print(f"  {_shown(item['file'])}: {_shown(item['reason'])}", file=sys.stderr)
    ignored = summary["ignored"]
    if ignored:
        shown = ", ".join(_shown(name) for name in ignored[:_MAX_LISTED]) + (
            f", ... ({len(ignored) - _MAX_LISTED} more)" if len(ignored) > _MAX_LISTED else ""
        )
        print(
            f"ignored {len(ignored)} file{'s' if len(ignored) != 1 else ''} without an image suffix: {shown}"
        )
    if summary["written"] == 0:
        print("blurkit make-pairs: error: no pairs were written", file=sys.stderr)
        return 1
    return 3 if skipped else 0  # as blurkit deblur: some failed, the others were done

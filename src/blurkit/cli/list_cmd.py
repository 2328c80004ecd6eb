"""``blurkit list``: every registered blur, model and metric, and where each comes from; shipped presets."""

from __future__ import annotations

import argparse

#: The summary of a component whose docstring ``python -OO`` dropped.
OPTIMIZED = "(no description: python -OO drops docstrings)"


def plain(text: str) -> str:
    """A docstring line as a terminal shows it: reST literals and roles without their markup.

    Examples:
        >>> plain("mean of a ``size`` x ``size`` square, as :func:`~blurkit.classical.wiener` does")
        'mean of a size x size square, as wiener does'
    """
    import re

    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"\1", text)  # :func:`~a.b.name` -> name
    return re.sub(r"``([^`]+)``", r"\1", text)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "list",
        help="list registered blurs, models and metrics, and the shipped presets",
        description="List every registered blur generator, model builder and metric, built-in or plugin, "
        "and the pretrained presets shipped with blurkit (for `blurkit deblur --preset NAME`; the default one "
        "is marked; without a model file or --preset, `blurkit deblur` picks one per photo).",
    )
    p.add_argument(
        "kind", nargs="?", choices=["blurs", "models", "metrics", "presets"], help="only this kind"
    )
    p.add_argument("--pattern", default="*", help="fnmatch pattern on names (default: *)")
    p.add_argument("--json", action="store_true",
                   help="print JSON instead of a table: a list of one row per component (kind, name, source, "
                   "object, summary)")
    p.add_argument("--failed", action="store_true",
                   help="also list the installed plugins that could not be loaded (each gives a warning on stderr "
                   "anyway): with --json, as rows of kind \"failed\" (with \"of\": the kind they would be, and "
                   "\"error\"); without --failed, the JSON holds components of the kinds asked for only")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from blurkit.cli._common import plugins_quiet
    from blurkit.registry import BLURS, METRICS, MODELS

    registries = {"blurs": BLURS, "models": MODELS, "metrics": METRICS}
    kinds = [args.kind] if args.kind else [*registries, "presets"]
    registries = {k: v for k, v in registries.items() if k in kinds}
    rows = []
    failed = []
    for kind, reg in registries.items():
        with plugins_quiet():  # a plugin module that imports Keras starts TensorFlow
            entries = reg.entries(args.pattern)
        # installed plugins that could not be loaded (a PluginWarning on stderr says so too), when asked for: rows
        # of their own kind, so that a reader of the JSON that takes every row of "blurs" as a usable blur (as
        # `list blurs --json` always gave) is not misled
        failed += [{"kind": "failed", "of": kind, "name": f.name, "source": f.source, "object": f.value,
                    "summary": f"could not be loaded: {f.reason}", "error": f.reason}
                   for f in (reg.failures(args.pattern) if args.failed else [])]
        for e in entries:
            doc = (getattr(e.obj, "__doc__", None) or "").strip().splitlines()
            rows.append(
                {
                    "kind": kind,
                    "name": e.name,
                    "source": e.source,
                    "object": f"{e.module}:{getattr(e.obj, '__qualname__', e.name)}",
                    "summary": plain(doc[0]) if doc else OPTIMIZED if sys.flags.optimize >= 2 else "",
                }
            )
    if "presets" in kinds:
        rows.extend(_preset_rows(args.pattern))
    if args.json:
        print(json.dumps(rows + failed, indent=2))
        return 0
    for kind in kinds:
        print(f"{kind}:")
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            print("  (none)")
        sources = [r["source"] + (", default" if r.get("default") else "") for r in mine]
        width = max((len(r["name"]) for r in mine), default=0)
        swidth = max((len(s) for s in sources), default=0)
        for r, source in zip(mine, sources, strict=True):
            print(f"  {r['name']:<{width}}  {source:<{swidth}}  {r['summary']}")
    if args.failed:
        print("failed:")
        if not failed:
            print("  (none)")
        width = max((len(r["name"]) for r in failed), default=0)
        for r in failed:
            print(f"  {r['name']:<{width}}  {r['of']}, {r['source']} ({r['object']}): {r['summary']}")
    return 0


def _preset_rows(pattern: str) -> list[dict]:
    """Rows of the shipped presets whose names match ``pattern``, from their metadata (no TensorFlow)."""
    import fnmatch

    from blurkit.presets import describe_preset, list_presets

    rows = []
    for name in list_presets():
        if fnmatch.fnmatchcase(name, pattern):
            info = describe_preset(name)
            rows.append({"kind": "presets", "name": name, "source": "shipped", "object": info["path"],
                         "summary": info["summary"], "default": info["default"]})
    return rows

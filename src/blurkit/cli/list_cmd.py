"""``blurkit list``: every registered blur, model and metric, and where each comes from."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "list",
        help="list registered blurs, models and metrics",
        description="List every registered blur generator, model builder and metric, built-in or plugin.",
    )
    p.add_argument("kind", nargs="?", choices=["blurs", "models", "metrics"], help="only this registry")
    p.add_argument("--pattern", default="*", help="fnmatch pattern on names (default: *)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import json

    from blurkit.registry import BLURS, METRICS, MODELS

    registries = {"blurs": BLURS, "models": MODELS, "metrics": METRICS}
    if args.kind:
        registries = {args.kind: registries[args.kind]}
    rows = []
    for kind, reg in registries.items():
        for e in reg.entries(args.pattern):
            doc = (getattr(e.obj, "__doc__", None) or "").strip().splitlines()
            rows.append(
                {
                    "kind": kind,
                    "name": e.name,
                    "source": e.source,
                    "object": f"{e.module}:{getattr(e.obj, '__qualname__', e.name)}",
                    "summary": doc[0] if doc else "",
                }
            )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for kind in registries:
        print(f"{kind}:")
        mine = [r for r in rows if r["kind"] == kind]
        if not mine:
            print("  (none)")
        width = max((len(r["name"]) for r in mine), default=0)
        swidth = max((len(r["source"]) for r in mine), default=0)
        for r in mine:
            print(f"  {r['name']:<{width}}  {r['source']:<{swidth}}  {r['summary']}")
    return 0

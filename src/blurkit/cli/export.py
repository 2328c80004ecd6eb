"""``blurkit export``: a model as a TensorFlow SavedModel that restores images without blurkit."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export",
        help="write a model as a TensorFlow SavedModel (serving without blurkit)",
        description="Write MODEL (a .keras file, or a shipped preset's name; default: the default preset) as "
        "a TensorFlow SavedModel folder: endpoints serve (uint8 images (N, H, W, C) in and out), "
        "serve_float (float32 in [0, 1]) and, for models with a blur estimator, serve_sigma (images and "
        "each one's known blur sigma), each image restored as Deblurrer.predict restores it, with its blur "
        "estimate, padding, tiling (photos over 1536x1536 pixels) and rounding in the graph. It loads with "
        "tf.saved_model.load alone, without blurkit.",
    )
    p.add_argument("model", nargs="?", help="model file (.keras) or preset name (default: the default preset)")
    p.add_argument("-o", "--out", required=True, help="the SavedModel folder to write (new or empty)")
    from blurkit.cli._common import add_threads

    add_threads(p)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from blurkit.cli._common import check_output, load_named
    from blurkit.cli.main import CLIError

    out = check_output(args.out, "--out", folder=True)
    if out.is_dir() and any(out.iterdir()):
        raise CLIError(f"--out {out}: the folder is not empty; export writes a new folder")
    d = load_named(args.model)
    try:
        d.export(out)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    name = args.model or "the default preset"
    endpoints = ", ".join(f"{e}: {ENDPOINTS[e]}" if e in ENDPOINTS else e for e in _endpoints(out))
    print(f"exported {name} to {out} (SavedModel; endpoints {endpoints})")
    return 0


ENDPOINTS = {"serve": "uint8", "serve_float": "float32 in [0, 1]",
             "serve_sigma": "uint8 and each image's known sigma"}
"""What the endpoints that :func:`blurkit.export.export_saved_model` writes take, as the message says it."""


def _endpoints(path: Path) -> list[str]:
    """The endpoints of the SavedModel written to ``path`` (its signatures, less ``serving_default`` and
    TensorFlow's own ``__...`` ones): those of :data:`ENDPOINTS` first, in its order, then any other."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    names = {n for graph in saved.meta_graphs for n in graph.signature_def
             if n != "serving_default" and not n.startswith("__")}
    return [n for n in ENDPOINTS if n in names] + sorted(names - set(ENDPOINTS))

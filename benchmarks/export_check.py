"""Does the exported SavedModel (``Deblurrer.export``, ``blurkit export``) restore photos as blurkit does?

    python benchmarks/export_check.py                          # the default preset on ../shared/data/val
    python benchmarks/export_check.py --model m.keras --data photos/ --sigma 1.5
    python benchmarks/export_check.py --tflite           # and whether TFLite can convert it
    python benchmarks/export_check.py --mosaic 4000x3000 # and one 12 MP photo: tiles, time, peak memory

Each photo (8-bit RGB, full resolution) is blurred (Gaussian, reflect border, 8-bit, seed 0) and restored by
``Deblurrer.predict`` and by the exported model's ``serve`` endpoint, loaded with ``tf.saved_model.load``.
Prints a Markdown row per photo: its size, the largest difference between the two restorations (levels of
255) and the number of pixels that differ, and the median seconds of each (after one warm-up call); for
models with a blur estimator also the largest difference between ``serve_sigma`` and
``predict(sigma=...)`` given the true sigma.
``--mosaic WxH`` also restores one photo of that size (the first photo mirrored side by side and repeated,
blurred the same way) with each of the two, each in a process of its own, and prints the largest difference
and each one's seconds and peak resident memory (the process's, model and photo included); photos over
``Deblurrer.tile_size**2`` pixels are restored in tiles by both.
``--tflite`` also converts the ``serve_float`` endpoint with ``tf.lite.TFLiteConverter``, with TFLite's
built-in operators only and then with TensorFlow ops allowed (``SELECT_TF_OPS``, the "Flex" delegate), and
says which worked (and, for the first failure, which operators it lacked). It measures; it asserts nothing
(``tests/test_export.py`` holds the checks).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from quality import DEFAULT_DATA
    from train_preset import load_or_preset

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a .keras file (default: the gaussian-v1 preset)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="a folder of photos")
    p.add_argument("--sigma", type=float, default=2.0, help="Gaussian blur sigma (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    p.add_argument("--tflite", action="store_true", help="also try converting the export to TFLite")
    p.add_argument("--mosaic", metavar="WxH", help="also restore one photo of this size made of the first")
    p.add_argument("--_run", nargs=3, help=argparse.SUPPRESS)  # predict|serve MODEL_OR_DIR PHOTO.npy (a child)
    args = p.parse_args(argv)
    if args._run:
        return _child(*args._run)

    import numpy as np
    import tensorflow as tf

    from blurkit.data.io import list_images, read_image
    from blurkit.registry import BLURS

    d = load_or_preset(args.model)
    blur = BLURS.create("gaussian", sigma=args.sigma, border="reflect", quantize=True)
    with tempfile.TemporaryDirectory() as tmp:
        served = tf.saved_model.load(str(d.export(Path(tmp) / "model")))

        def timed(fn):
            out = fn()
            seconds = []
            for _ in range(max(1, args.repeats)):
                start = time.perf_counter()
                fn()
                seconds.append(time.perf_counter() - start)
            return out, statistics.median(seconds)

        known = "serve_sigma" in served.signatures
        print(f"{args.model or 'gaussian-v1'} on {args.data}, Gaussian blur sigma {args.sigma:g}")
        print("| photo | size | largest difference (levels) | pixels that differ | predict s | serve s |"
              + (" given the sigma: largest difference |" if known else ""))
        print("|---|---|---:|---:|---:|---:|" + ("---:|" if known else ""))
        for path in list_images(Path(args.data)):
            image = read_image(path)  # uint8 or uint16, grey or RGB (alpha dropped)
            if image.dtype != np.uint8:
                image = np.rint(image / 257.0).astype(np.uint8)  # serve takes 8-bit images
            if image.ndim == 2:
                image = image[..., None]
            if image.shape[-1] < d.channels:  # a grey photo for a colour model
                image = np.repeat(image, d.channels, axis=-1)
            elif image.shape[-1] > d.channels:  # a colour photo for a grey model: its mean
                image = np.rint(image.mean(axis=-1, keepdims=True)).astype(np.uint8)
            blurred = blur(image, seed=0)["image"]
            want, t_predict = timed(lambda b=blurred: d.predict(b))
            got, t_serve = timed(lambda b=blurred: served.serve(b[None]).numpy()[0])
            diff = np.abs(got.astype(np.int32) - want.astype(np.int32))
            row = (f"| {path.name} | {image.shape[1]}x{image.shape[0]} | {int(diff.max())} | "
                   f"{int((diff > 0).sum())} | {t_predict:.2f} | {t_serve:.2f} |")
            if known:
                sigma = tf.constant([args.sigma], tf.float64)
                given = served.serve_sigma(blurred[None], sigma).numpy()[0].astype(np.int32)
                row += f" {int(np.abs(given - d.predict(blurred, sigma=args.sigma)).max())} |"
            print(row, flush=True)
        if args.mosaic:
            mosaic(args, blur, Path(tmp))
        if args.tflite:
            tflite(Path(tmp) / "model")
    return 0


def mosaic(args: argparse.Namespace, blur, tmp: Path) -> None:
    """Restore one large photo with predict and with serve, each in a child process; print a row."""
    import json
    import subprocess

    import numpy as np

    from blurkit.data.io import list_images, read_image

    w, h = (int(v) for v in args.mosaic.lower().split("x"))
    first = next(iter(list_images(Path(args.data))))
    image = read_image(first)
    image = np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]  # grey: as RGB
    if image.dtype != np.uint8:
        image = np.rint(image / 257.0).astype(np.uint8)
    pair = np.concatenate([image, image[:, ::-1]], axis=1)
    big = np.tile(pair, (-(-h // pair.shape[0]), -(-w // pair.shape[1]), 1))[:h, :w]
    big = blur(np.ascontiguousarray(big), seed=0)["image"]
    np.save(tmp / "big.npy", big)
    found = {}
    for how, model in (("predict", args.model or "gaussian-v1"), ("serve", str(tmp / "model"))):
        done = subprocess.run([sys.executable, __file__, "--_run", how, model, str(tmp / "big.npy")],
                              capture_output=True, text=True, check=True)
        found[how] = json.loads(done.stdout.strip().splitlines()[-1])
    a, b = (np.load(tmp / f"big.{how}.npy").astype(np.int32) for how in ("predict", "serve"))
    diff = np.abs(a - b)
    print(f"\n{first.name} mirrored and repeated to {w}x{h} ({w * h / 1e6:.1f} MP), one run each in its own "
          "process:\n| largest difference (levels) | pixels that differ | predict s | serve s | predict peak "
          "memory | serve peak memory |\n|---:|---:|---:|---:|---:|---:|")
    print(f"| {int(diff.max())} | {int((diff > 0).sum())} | {found['predict']['seconds']:.1f} | "
          f"{found['serve']['seconds']:.1f} | {found['predict']['peak_gb']:.2f} GB | {found['serve']['peak_gb']:.2f} GB |")


def _child(how: str, model: str, photo: str) -> int:
    """One restoration of the photo in this process: prints its seconds and the process's peak memory."""
    import json
    import resource

    import numpy as np

    image = np.load(photo)
    start = time.perf_counter()
    if how == "predict":
        from train_preset import load_or_preset

        out = load_or_preset(None if model == "gaussian-v1" else model).predict(image)
    else:
        import tensorflow as tf

        served = tf.saved_model.load(model)  # kept in a variable: its weights go with it
        out = served.serve(image[None]).numpy()[0]
    seconds = time.perf_counter() - start
    np.save(photo.replace(".npy", f".{how}.npy"), out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # kB on Linux
    print(json.dumps({"seconds": seconds, "peak_gb": peak}))
    return 0


def tflite(path: Path) -> None:
    """Try converting the SavedModel's ``serve_float`` endpoint to TFLite; print what happened."""
    import re

    import tensorflow as tf

    for label, ops in [("built-in operators only", [tf.lite.OpsSet.TFLITE_BUILTINS]),
                       ("TensorFlow ops allowed (Flex)", [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS])]:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(path), signature_keys=["serve_float"])
        converter.target_spec.supported_ops = ops
        try:
            flat = converter.convert()
        except Exception as exc:  # noqa: BLE001 - the converter's errors are what this reports
            lacking = sorted(set(re.findall(r"'(tf\.\w+)' op is neither a custom op nor a flex op", str(exc))))
            print(f"TFLite, {label}: failed" + (f" (operators it lacks: {', '.join(lacking)})" if lacking else
                                               f": {str(exc).splitlines()[0][:200]}"))
            continue
        print(f"TFLite, {label}: converted, {len(flat) / 1e6:.1f} MB")


if __name__ == "__main__":
    from _util import quiet_tensorflow

    quiet_tensorflow()  # TensorFlow's start-up lines hidden, as in the blurkit commands
    sys.exit(main())

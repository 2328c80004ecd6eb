"""Speed of inference: the machine's matmul peak, every preset and model, execution paths, tiling, big photos.

These benchmarks measure and report (pytest-benchmark rows, ``extra_info`` and the end-of-session summary);
they never assert a timing. See benchmarks/README.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from _util import (
    BIG_SIZES,
    INFER_SIZES,
    MATMUL_N,
    QUICK,
    ROUND_BUDGET_S,
    TILING_IMAGE,
    TILINGS,
    attach,
    default_preset_architecture,
    default_subject,
    efficiency,
    lookup,
    make_photo,
    mp,
    photo,
    plan_rounds,
    record,
    subject,
    subject_names,
    timed,
)

SMALL, BIG = list(INFER_SIZES)


def tile_inflation(h: int, w: int, tile: int, overlap: int, fixed: bool = False, align: int = 1) -> float:
    """Pixels the model computes per image pixel when the facade restores an ``h x w`` image: 1 for one
    whole-image call, else the tiles :func:`blurkit.tiling.plan_tiles` places (fitted to the image and
    aligned to the model's downsampling factor; fixed-input models: tiles of exactly their size)."""
    from blurkit.tiling import plan_tiles

    if not fixed and h * w <= tile * tile:
        return 1.0
    return plan_tiles(h, w, tile=tile, overlap=overlap, align=align, pad_to_tile=fixed,
                      fit=not fixed).pixel_inflation


# ------------------------------------------------------------------------------------- 1. roofline
@pytest.mark.parametrize("lib", ["numpy", "tensorflow"])
def test_roofline(benchmark, peak, lib):
    """float32 GFLOP/s of an n x n matmul: the practical peak every model's figure is compared with."""
    n = MATMUL_N
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    if lib == "numpy":
        def fn():
            return a @ b
    else:
        import tensorflow as tf

        ta, tb = tf.constant(a), tf.constant(b)
        f = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)))

        def fn():
            return f(ta, tb).numpy()
    t = timed(benchmark, fn, rounds=3 if QUICK else 8, warmup=1)
    best = 2 * n**3 / t["min"] / 1e9
    vals = {"gflops": max(best, lookup("roofline", lib, "gflops") or 0.0), "gflops_median": 2 * n**3 / t["median"] / 1e9,
            "n": n, "seconds": t["median"]}
    record("roofline", lib, **vals)
    attach(benchmark, **vals)


# ------------------------------------------------------------------------------------ 2. inference
INFER_CASES = [(s, size, path) for s in subject_names() for size in INFER_SIZES for path in ("facade", "keras")]


@pytest.mark.parametrize("name,size,path", INFER_CASES, ids=[f"{s}-{z}-{p}" for s, z, p in INFER_CASES])
def test_inference(benchmark, peak, name, size, path):
    """Megapixels/s of one RGB photo, batch 1: ``Deblurrer.predict`` (uint8 in, uint8 out, tiling as the
    facade decides) against the bare ``model.predict`` on the float image (fixed-input models: on
    non-overlapping tiles)."""
    sub = subject(name)
    h, w = INFER_SIZES[size]
    img = photo(h, w)
    d = sub.deblurrer
    fixed = sub.fixed is not None
    infl = (tile_inflation(h, w, d.tile_size, d.tile_overlap, fixed, getattr(d, "tile_align", 1))
            if path == "facade"
            else (sub.plain_input(img).shape[0] * sub.fixed**2 / (h * w) if fixed else 1.0))
    prev = lookup("inference", f"{name} {SMALL} {path}", "seconds")
    est = None if prev is None else prev * (h * w) / np.prod(INFER_SIZES[SMALL]) * infl
    if size == SMALL:
        rounds, warmup = (2 if QUICK else 3), 1
    else:
        rounds, warmup = plan_rounds(est)
    if path == "facade":
        def fn():
            return d.predict(img)
    else:
        fn = sub.plain_predict(img)
    t = timed(benchmark, fn, rounds=rounds, warmup=warmup)
    if path == "facade":
        assert t["result"].shape == img.shape and t["result"].dtype == img.dtype
    s = t["median"]
    vals = {"seconds": s, "mp_per_s": mp(img.shape) / s, "s_per_mp": s / mp(img.shape), "size": f"{w}x{h}",
            "path": "Deblurrer.predict" if path == "facade" else "model.predict", "rounds": t["rounds"],
            "pixel_inflation": infl, **sub.info(), **efficiency(sub.flops_per_pixel, h * w, s)}
    if path == "keras" and name == default_subject():
        # the facade's overhead from paired rounds: facade and bare model calls alternate (each warm
        # already), so a change of load hits both; median of the per-round ratios facade / model.predict
        plain = sub.plain_predict(img)
        ratios = []
        for _ in range(1 if QUICK else 3):
            t0 = time.perf_counter()
            d.predict(img)
            t1 = time.perf_counter()
            plain()
            ratios.append((t1 - t0) / (time.perf_counter() - t1))
        vals.update(facade_ratio=float(np.median(ratios)), paired_rounds=len(ratios))
    record("inference", f"{name} {size} {path}", **vals)
    attach(benchmark, **vals)


# ---------------------------------------------------------------------------- 2b. execution paths
PATHS = ["facade", "keras_predict", "eager", "tf_function", "tf_function_xla", "onnxruntime"]


def _onnx_fn(model, x):
    ort = pytest.importorskip("onnxruntime")
    tf2onnx = pytest.importorskip("tf2onnx")
    import tensorflow as tf

    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=[tf.TensorSpec(x.shape, tf.float32)],
                                              opset=17)
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - tf2onnx does not convert every Keras 3 model
        pytest.skip(f"ONNX conversion failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    name = sess.get_inputs()[0].name
    return lambda: sess.run(None, {name: x})[0]


@pytest.mark.parametrize("path", PATHS)
def test_execution_path(benchmark, peak, path):
    """The default model on the small photo through each way of running a Keras model (batch 1, float
    input prepared beforehand except for the facade, which takes the uint8 photo)."""
    name = default_subject()
    sub = subject(name)
    h, w = INFER_SIZES[SMALL]
    img = photo(h, w)
    x = sub.plain_input(img)
    model = sub.model
    first = None
    if path == "facade":
        def fn():
            return sub.deblurrer.predict(img)
    elif path == "keras_predict":
        def fn():
            return model.predict(x, verbose=0)
    elif path == "eager":
        def fn():
            return model(x, training=False).numpy()
    elif path in ("tf_function", "tf_function_xla"):
        import tensorflow as tf

        f = tf.function(lambda t: model(t, training=False), jit_compile=path.endswith("xla"))
        t0 = time.perf_counter()
        try:
            f(x)
            first = time.perf_counter() - t0  # tracing (and XLA compilation)
        except Exception as exc:  # noqa: BLE001 - XLA cannot compile every op
            pytest.skip(f"{path} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")

        def fn():
            return f(x).numpy()
    else:
        t0 = time.perf_counter()
        fn = _onnx_fn(model, x)
        first = time.perf_counter() - t0  # conversion and session creation
    prev = lookup("inference", f"{name} {SMALL} facade", "seconds")
    rounds, _ = plan_rounds(prev)
    t = timed(benchmark, fn, rounds=max(rounds, 2), warmup=1)
    s = t["median"]
    vals = {"seconds": s, "mp_per_s": mp(img.shape) / s, "first_call_s": first or t["first"], "rounds": t["rounds"],
            "size": f"{w}x{h}", **sub.info(), **efficiency(sub.flops_per_pixel, h * w, s)}
    record("paths", path, **vals)
    base = lookup("paths", "facade", "seconds")
    if base:
        record("paths", path, ratio=s / base, note="ratio: time / facade's")
    attach(benchmark, **vals)


# ------------------------------------------------------------------------ 2c. facade overhead, paired
def test_facade_overhead(benchmark, peak):
    """The facade against the bare compiled model on the small photo, called alternately in every round.

    Three calls per round: ``Deblurrer.predict`` (uint8 in and out), the facade's own compiled function on
    the prepared float batch (``Deblurrer._infer``: traced once for any shape) and a ``tf.function``
    traced for this one shape (what ``test_execution_path[tf_function]`` times). Separate cases run
    seconds or minutes apart, so a change of load between them reads as overhead (the facade case once
    read +34 % against a 4 % difference of the same call in another case of the same run); here a change
    of load hits all three alike. Ratios are medians of the per-round ratios.
    """
    import tensorflow as tf

    name = default_subject()
    sub = subject(name)
    d, model = sub.deblurrer, sub.model
    h, w = INFER_SIZES[SMALL]
    img = photo(h, w)
    x = sub.plain_input(img)
    if sub.fixed is not None:
        pytest.skip("a fixed-input model: the facade tiles, the bare model does not")
    bare = tf.function(lambda t: model(t, training=False))
    bare(x)  # trace for this shape
    calls = {"facade": lambda: d.predict(img), "engine": lambda: d._infer(x), "tf_function": lambda: bare(x).numpy()}
    times: dict[str, list[float]] = {k: [] for k in calls}

    def one_round():
        for k, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)

    prev = lookup("inference", f"{name} {SMALL} facade", "seconds")
    rounds = 3 if QUICK else 9 if prev is None else max(5, min(15, int(ROUND_BUDGET_S / (3 * prev))))
    timed(benchmark, one_round, rounds=rounds, warmup=1)
    kept = {k: v[1:] for k, v in times.items()}  # drop the warm-up round

    def paired(a: str, b: str) -> float:
        return statistics.median(ta / tb for ta, tb in zip(kept[a], kept[b], strict=True))

    med = {k: statistics.median(v) for k, v in kept.items()}
    vals = {"seconds": med["facade"], "engine_s": med["engine"], "tf_function_s": med["tf_function"],
            "ratio": paired("facade", "tf_function"), "ratio_engine": paired("engine", "tf_function"),
            "ratio_wrapper": paired("facade", "engine"), "rounds": len(kept["facade"]), "size": f"{w}x{h}",
            "note": "ratio: facade / tf.function, paired rounds", **sub.info(),
            **efficiency(sub.flops_per_pixel, h * w, med["facade"])}
    record("facade_overhead", SMALL, **vals)
    attach(benchmark, **vals)


# ------------------------------------------------------------------------------ 2d. tiled vs untiled
@pytest.mark.parametrize("variant", list(TILINGS))
def test_tiling(benchmark, peak, variant):
    """The same photo through ``Deblurrer.predict`` whole, and in tiles (the default tile size, and a small
    one). ``pixel_inflation`` is the pixels the model computes per image pixel (overlaps)."""
    name = default_subject()
    sub = subject(name)
    if sub.fixed:
        pytest.skip("a fixed-input model is always tiled")
    d = sub.deblurrer
    h, w = TILING_IMAGE
    img = photo(h, w)
    cfg = TILINGS[variant]
    tile, overlap = (max(h, w), 0) if cfg is None else cfg
    infl = tile_inflation(h, w, tile, overlap, align=getattr(d, "tile_align", 1))
    base = lookup("tiling", "untiled", "seconds")
    small = lookup("inference", f"{name} {SMALL} facade", "seconds")
    est = (base * infl if base else
           small * (h * w) / np.prod(INFER_SIZES[SMALL]) * infl if small else None)
    rounds, warmup = plan_rounds(est)
    saved = d.tile_size, d.tile_overlap
    d.tile_size, d.tile_overlap = tile, overlap
    try:
        t = timed(benchmark, lambda: d.predict(img), rounds=rounds, warmup=warmup)
    finally:
        d.tile_size, d.tile_overlap = saved
    s = t["median"]
    vals = {"seconds": s, "mp_per_s": mp(img.shape) / s, "tile_size": None if cfg is None else tile,
            "tile_overlap": None if cfg is None else overlap, "pixel_inflation": infl, "size": f"{w}x{h}",
            "rounds": t["rounds"], **sub.info(), **efficiency(sub.flops_per_pixel, h * w, s)}
    if cfg is not None:
        # the ratio from paired rounds: untiled and tiled calls alternate (after one warm-up call of each,
        # so per-shape set-up costs are out), and a change of load hits both; median of per-round ratios
        pairs = 3 if variant == "tiled-default" else 2
        if QUICK:
            pairs = 1

        def call(size: int, lap: int) -> float:
            d.tile_size, d.tile_overlap = size, lap
            t0 = time.perf_counter()
            d.predict(img)
            return time.perf_counter() - t0

        try:
            call(max(h, w), 0), call(tile, overlap)
            ratios = [call(tile, overlap) / call(max(h, w), 0) for _ in range(pairs)]
        finally:
            d.tile_size, d.tile_overlap = saved
        vals.update(ratio=float(np.median(ratios)), paired_rounds=pairs,
                    note="ratio: time / untiled, median of paired rounds")
    record("tiling", variant, **vals)
    attach(benchmark, **vals)


# --------------------------------------------------------------------------------- 3. big photos
_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time

    def peak_kib():
        # VmHWM: this process's own high-water mark. ru_maxrss is not: Linux carries the high-water mark
        # of the address space that exec replaced into it, i.e. the RSS of the pytest process that
        # spawned this one (TensorFlow and every model loaded so far), which read 3.5 GB before any photo.
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    t0 = time.perf_counter()
    spec = json.loads(sys.argv[1])
    import numpy as np
    from blurkit import Deblurrer
    if spec.get("preset"):
        d = Deblurrer.from_preset(spec["preset"])
    else:
        d = Deblurrer(model=spec["model"], model_options=spec["model_options"])
    d.predict(np.zeros((48, 64, 3), np.uint8))  # trace the inference function once
    ready = time.perf_counter() - t0
    rss_ready = peak_kib()
    t = time.perf_counter()
    out = d.predict(spec["path"])  # decode + deblur, as `blurkit deblur` does (without writing)
    seconds = time.perf_counter() - t
    peak = peak_kib()
    from blurkit.models.flops import flops_per_pixel
    try:
        fpp = flops_per_pixel(d.model, 256, 256)
    except TypeError:
        fpp = None
    print("RESULT " + json.dumps({"seconds": seconds, "startup_s": ready, "peak_rss_kib": peak,
                                  "ready_rss_kib": rss_ready, "shape": list(out.shape),
                                  "dtype": str(out.dtype), "flops_per_pixel": fpp,
                                  "tile_size": d.tile_size, "tile_overlap": d.tile_overlap,
                                  "tile_align": getattr(d, "tile_align", 1)}))
    """
)

BIG_CASES = [pytest.param(k, marks=[pytest.mark.huge] if i == 1 else [], id=k) for i, k in enumerate(BIG_SIZES)]


@pytest.mark.parametrize("size", BIG_CASES)
def test_big_photo(benchmark, peak, tmp_path_factory, size):
    """Deblur a JPEG photo file with the default preset in a fresh process: time and peak resident memory
    (``VmHWM`` of that process: TensorFlow, the model, the decoded photo and every buffer; not ``ru_maxrss``,
    which in a spawned process starts at the RSS of the pytest process that spawned it).

    Without a shipped preset, an untrained model of the default preset's architecture stands in (same cost).
    The 8000x6000 case is marked ``huge``: ``-m "not huge"`` or ``BLURKIT_BENCH_SKIP_HUGE=1`` skips it.
    """
    import cv2

    from blurkit.presets import DEFAULT_PRESET, list_presets

    h, w = BIG_SIZES[size]
    path = tmp_path_factory.mktemp("big") / f"photo-{w}x{h}.jpg"
    ok = cv2.imwrite(str(path), cv2.cvtColor(make_photo(h, w), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    if DEFAULT_PRESET in list_presets():
        spec = {"preset": DEFAULT_PRESET}
        label = f"preset:{DEFAULT_PRESET}"
    else:
        spec = default_preset_architecture()
        label = f"model:{spec['model']} {spec['model_options']} (untrained, {DEFAULT_PRESET} architecture)"
    spec["path"] = str(path)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

    def child():
        proc = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(spec)], capture_output=True, text=True,
                              env=env, timeout=300 if QUICK else 1200)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not lines:
            raise RuntimeError(f"child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(lines[-1][len("RESULT "):])

    t = timed(benchmark, child, rounds=1)
    res = t["result"]
    assert res["shape"] == [h, w, 3] and res["dtype"] == "uint8"
    s = res["seconds"]
    vals = {"seconds": s, "mp_per_s": h * w / 1e6 / s, "s_per_mp": s / (h * w / 1e6), "size": f"{w}x{h}",
            "peak_rss_gb": res["peak_rss_kib"] * 1024 / 1e9, "ready_rss_gb": res["ready_rss_kib"] * 1024 / 1e9,
            "startup_s": res["startup_s"], "process_s": t["median"], "subject": label,
            "flops_per_pixel": res["flops_per_pixel"],
            "pixel_inflation": tile_inflation(h, w, res["tile_size"], res["tile_overlap"], align=res["tile_align"]),
            **efficiency(res["flops_per_pixel"], h * w, s)}
    record("big_images", size, **vals)
    attach(benchmark, **vals)

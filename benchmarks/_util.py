"""Shared helpers of the speed benchmarks: sizes, test photos, timing, the machine's peak, the results.

Everything here measures and reports; nothing asserts a timing. ``BLURKIT_BENCH_QUICK=1`` shrinks every
size and round count so the whole suite runs in a couple of minutes (a smoke test of the benchmarks
themselves: its numbers mean nothing).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def quiet_tensorflow(argv: list[str] | None = None) -> None:
    """For a script's ``__main__``, before ``main()``: import TensorFlow with its start-up lines hidden, as the
    ``blurkit`` commands do (:func:`blurkit.cli._common.quiet_tensorflow`: stderr captured while it starts;
    ``TF_CPP_MIN_LOG_LEVEL`` 0 or 1 still shows every line, and an unset one becomes 3). Nothing the scripts
    compute changes, nor what they time: TensorFlow's CPU allocator stays its default here (the commands
    switch to BFC, the same bytes a little faster), so the scripts keep timing the library as a Python program
    calls it, as their published timings did. Nothing is done for ``--help`` (no TensorFlow to start), nor
    under another Keras backend (``KERAS_BACKEND=jax``), which does not start TensorFlow for it."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        return
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "false")  # TensorFlow's default, kept
    from blurkit.cli._common import quiet_tensorflow as quiet

    quiet()


#: Tiny sizes and few rounds: checks that the benchmarks run, numbers are meaningless.
QUICK = _flag("BLURKIT_BENCH_QUICK")
#: Skip the 8000x6000 photo (also: ``-m "not huge"``).
SKIP_HUGE = _flag("BLURKIT_BENCH_SKIP_HUGE")

# (height, width) of the test images; "huge" is the big-photo memory test.
if QUICK:
    INFER_SIZES = {"512x512": (64, 64), "2048x1536": (96, 128)}
    TILING_IMAGE = (96, 128)
    TILINGS = {"untiled": None, "tiled-default": (64, 16), "tiled-small": (48, 16)}
    BIG_SIZES = {"2000x1500": (150, 200), "8000x6000": (600, 800)}
    BLUR_IMAGE = (192, 256)
    MATMUL_N = 512
    PHOTOS, PHOTO_SIZE = 8, (192, 256)
    PIPE_BATCHES = 4
    TRAIN_PATCH, TRAIN_BATCH = 32, 2
    STARTUP_ROUNDS = 3
else:
    INFER_SIZES = {"512x512": (512, 512), "2048x1536": (1536, 2048)}
    # larger than one default tile (1536**2 pixels), so the facade's default setting does tile it
    TILING_IMAGE = (1536, 2048)
    # (tile_size, tile_overlap); "tiled-default" is the facade's default tiling (see _facade_tiling)
    TILINGS = {"untiled": None, "tiled-default": None, "tiled-small": (256, 64)}
    BIG_SIZES = {"2000x1500": (1500, 2000), "8000x6000": (6000, 8000)}
    BLUR_IMAGE = (1536, 2048)
    MATMUL_N = 3072
    PHOTOS, PHOTO_SIZE = 40, (480, 640)  # like the training set: 640 px PNGs
    PIPE_BATCHES = 48
    TRAIN_PATCH, TRAIN_BATCH = None, None  # None: the Deblurrer's defaults
    STARTUP_ROUNDS = 7



def _facade_tiling() -> tuple[int, int]:
    """``(tile_size, tile_overlap)``: the ``Deblurrer``'s defaults (read from its signature)."""
    import inspect

    from blurkit.deblurrer import Deblurrer

    params = inspect.signature(Deblurrer.__init__).parameters
    return int(params["tile_size"].default), int(params["tile_overlap"].default)


if TILINGS["tiled-default"] is None:
    TILINGS["tiled-default"] = _facade_tiling()

#: Seconds a parametrized case should spend in its timed rounds (the first call is not counted).
ROUND_BUDGET_S = 4.0 if QUICK else 15.0


# ------------------------------------------------------------------------------------------- results
#: section -> case name -> measured values; printed at the end of the session and written as JSON.
RESULTS: dict[str, dict[str, dict[str, Any]]] = {}


def record(section: str, name: str, **values: Any) -> dict[str, Any]:
    """Store one case's values (JSON-able) for the end-of-session summary."""
    row = RESULTS.setdefault(section, {}).setdefault(name, {})
    row.update({k: _plain(v) for k, v in values.items()})
    return row


def lookup(section: str, name: str, key: str) -> Any:
    return RESULTS.get(section, {}).get(name, {}).get(key)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def attach(benchmark: Any, **values: Any) -> None:
    """Put ``values`` into pytest-benchmark's ``extra_info`` (shown in its JSON and ``--benchmark-json``)."""
    for k, v in values.items():
        benchmark.extra_info[k] = _plain(v)


# ------------------------------------------------------------------------------------------- timing
def timed(benchmark: Any, fn: Callable[[], Any], *, rounds: int, warmup: int = 0) -> dict[str, Any]:
    """Run ``fn`` with ``benchmark.pedantic`` and time every call ourselves.

    Our own timings make the numbers available to the summary (and work with ``--benchmark-disable``).

    Returns:
        ``{"median", "min", "rounds", "first"}`` in seconds (``first``: the first call, warm-up included,
        i.e. tracing/compilation when the function was not called before), plus ``"result"``.
    """
    times: list[float] = []
    last: list[Any] = [None]

    def run() -> Any:
        t = time.perf_counter()
        last[0] = fn()
        times.append(time.perf_counter() - t)
        return last[0]

    benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup, iterations=1)
    kept = times[warmup:] or times
    return {"median": statistics.median(kept), "min": min(kept), "rounds": len(kept), "first": times[0],
            "result": last[0]}


def plan_rounds(estimate_s: float | None, budget_s: float = ROUND_BUDGET_S, most: int = 5) -> tuple[int, int]:
    """``(rounds, warmup)`` for a case expected to take ``estimate_s`` per call.

    Expensive cases (over a third of the budget) run once without warm-up: their callers make sure the
    code was traced on another shape beforehand.
    """
    if estimate_s is None or estimate_s > budget_s / 3:
        return 1, 0
    return max(2, min(most, int(budget_s / max(estimate_s, 1e-6)))), 1


# ------------------------------------------------------------------------------------------ images
@functools.cache
def _sources() -> tuple[np.ndarray, ...]:
    """Colour photos bundled with scikit-image (no download)."""
    from skimage import data

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field"):
        try:
            img = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a missing or downloadable image is just skipped
            continue
        if img.ndim == 3 and img.shape[2] >= 3:
            out.append(np.ascontiguousarray(img[..., :3]))
    return tuple(out)


def make_photo(height: int, width: int, index: int = 0, seed: int = 0) -> np.ndarray:
    """A uint8 RGB photo of the requested size: a random crop of a scikit-image photo, resized."""
    import cv2

    src = _sources()[index % len(_sources())]
    rng = np.random.default_rng(seed * 1000 + index)
    h, w = src.shape[:2]
    ch = int(rng.integers(h // 2, h + 1))
    cw = min(w, max(1, int(round(ch * width / height))))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = src[y : y + ch, x : x + cw]
    interp = cv2.INTER_AREA if height * width < ch * cw else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(crop, (width, height), interpolation=interp))


@functools.lru_cache(maxsize=16)
def photo(height: int, width: int) -> np.ndarray:
    """The benchmarks' standard uint8 RGB test photo of a size (the astronaut, resized); read-only."""
    import cv2

    src = _sources()[0]
    interp = cv2.INTER_AREA if height * width < src.shape[0] * src.shape[1] else cv2.INTER_CUBIC
    out = cv2.resize(src, (width, height), interpolation=interp)
    out.setflags(write=False)
    return out


def mp(shape: tuple[int, ...]) -> float:
    """Megapixels of an (H, W, ...) shape."""
    return shape[0] * shape[1] / 1e6


# ------------------------------------------------------------------------------------ the roofline
def matmul_gflops_numpy(n: int, rounds: int = 5) -> float:
    """Best float32 GFLOP/s of an ``n x n`` NumPy matmul (2 n^3 FLOPs)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    a @ b
    best = min(_once(lambda: a @ b) for _ in range(rounds))
    return 2 * n**3 / best / 1e9


def matmul_gflops_tf(n: int, rounds: int = 5) -> float:
    """Best float32 GFLOP/s of an ``n x n`` TensorFlow matmul in a compiled ``tf.function``."""
    import tensorflow as tf

    a = tf.random.uniform((n, n), dtype=tf.float32, seed=1)
    b = tf.random.uniform((n, n), dtype=tf.float32, seed=2)
    f = tf.function(lambda x, y: tf.reduce_sum(tf.linalg.matmul(x, y)))  # reduce: keep the copy out
    f(a, b).numpy()
    best = min(_once(lambda: f(a, b).numpy()) for _ in range(rounds))
    return 2 * n**3 / best / 1e9


def _once(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# ------------------------------------------------------------------------------------ the machine
def machine() -> dict[str, Any]:
    """CPU model, cores, memory, OS and Python of this machine."""
    cpu = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = [f for f in line.split(":", 1)[1].split() if f.startswith(("avx", "fma", "amx"))]
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cpu_flags": sorted(flags), "logical_cores": os.cpu_count(), "usable_cores": usable,
            "memory_gib": mem, "load_average_1min_at_end": load, "os": platform.platform(),
            "python": sys.version.split()[0]}


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("blurkit", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scipy", "scikit-image",
                 "opencv-python-headless", "onnxruntime", "tf2onnx", "pytest-benchmark"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=False, allow_nan=False, default=str) + "\n"


# ----------------------------------------------------------------------------------------- subjects
class Subject:
    """A model under test: a loaded :class:`~blurkit.Deblurrer` and its FLOPs per pixel.

    Names are ``"preset:<name>"`` (a shipped preset) or ``"model:<name>"`` (a registered builder at its
    default options, untrained: speed does not depend on the weights).
    """

    def __init__(self, name: str) -> None:
        from blurkit import Deblurrer
        from blurkit.models.flops import flops_per_pixel

        kind, _, ident = name.partition(":")
        if kind == "preset":
            self.deblurrer = Deblurrer.from_preset(ident)
        elif kind == "model":
            self.deblurrer = Deblurrer(model=ident)
        else:
            raise ValueError(f"subject names are preset:NAME or model:NAME, got {name!r}")
        self.name = name
        self.model = self.deblurrer.model
        self.fixed: int | None = self.deblurrer.fixed_size
        self.channels = self.deblurrer.channels
        try:
            self.flops_per_pixel: float | None = float(flops_per_pixel(self.model, 256, 256))
        except TypeError:  # a subclassed plugin model: no count
            self.flops_per_pixel = None
        self.params = int(self.model.count_params())
        self._warm()

    def _warm(self) -> None:
        """Trace the facade's function and Keras' predict function on two small shapes.

        Both then accept any size without retracing, so even single-round cases time the steady state.
        """
        from blurkit.deblurrer import MIN_ESTIMATE_SIDE

        side = self.fixed or MIN_ESTIMATE_SIDE  # not smaller: a blind estimate below it warns
        for h, w in ((side, side), (side + 8, side + 16)):
            self.deblurrer.predict(photo(h, w))
            self.plain_predict(photo(h, w))()

    def plain_input(self, image: np.ndarray) -> np.ndarray:
        """``image`` (uint8 HWC) as the bare model's float32 input batch.

        Fully convolutional models get the whole image, batch 1. Fixed-input models (the autoencoder) get
        the image reflect-padded to a multiple of their size and cut into non-overlapping tiles: the
        cheapest way to cover it with a bare model call (no overlap, no blending).
        """
        x = image.astype(np.float32) / 255.0
        if self.fixed is None:
            return x[None]
        s = self.fixed
        h, w, c = x.shape
        ph, pw = -h % s, -w % s
        if ph or pw:
            x = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > max(ph, pw) else "symmetric")
        hh, ww = x.shape[0] // s, x.shape[1] // s
        return np.ascontiguousarray(x.reshape(hh, s, ww, s, c).transpose(0, 2, 1, 3, 4).reshape(-1, s, s, c))

    def plain_predict(self, image: np.ndarray) -> Callable[[], Any]:
        x = self.plain_input(image)
        return lambda: self.model.predict(x, verbose=0)

    def info(self) -> dict[str, Any]:
        return {"subject": self.name, "params": self.params, "flops_per_pixel": self.flops_per_pixel,
                "fixed_input": self.fixed}


_SUBJECTS: dict[str, Subject] = {}


def subject(name: str) -> Subject:
    """The loaded subject ``name`` (cached for the session)."""
    if name not in _SUBJECTS:
        _SUBJECTS[name] = Subject(name)
    return _SUBJECTS[name]


def subject_names() -> list[str]:
    """Every shipped preset, then every registered model (plugins included)."""
    from blurkit.presets import list_presets
    from blurkit.registry import MODELS

    return [f"preset:{p}" for p in list_presets()] + [f"model:{m}" for m in MODELS.list()]


def default_model_name() -> str:
    import inspect

    from blurkit.deblurrer import Deblurrer

    return str(inspect.signature(Deblurrer.__init__).parameters["model"].default)


def default_subject() -> str:
    """The default preset when shipped, else the default model (``Deblurrer()``'s) untrained."""
    from blurkit.presets import DEFAULT_PRESET, list_presets

    if DEFAULT_PRESET in list_presets():
        return f"preset:{DEFAULT_PRESET}"
    return f"model:{default_model_name()}"


def default_preset_architecture() -> dict[str, Any]:
    """``{"model", "model_options"}`` of the default preset's recipe (benchmarks/train_preset.py)."""
    import importlib.util

    from blurkit.presets import DEFAULT_PRESET

    fallback = {"model": "unet", "model_options": {"width": 24, "depth": 3, "blocks": 1}}
    try:
        spec = importlib.util.spec_from_file_location("_bk_train_preset", HERE / "train_preset.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        recipe = module.RECIPES[DEFAULT_PRESET]
        return {"model": recipe["model"], "model_options": dict(recipe["model_options"])}
    except Exception:  # noqa: BLE001 - the script may change; the recipe above is its current value
        return fallback


def peak_gflops() -> float | None:
    """The practical peak measured in this session (best of NumPy and TensorFlow matmul), if measured."""
    vals = [v.get("gflops") for v in RESULTS.get("roofline", {}).values() if v.get("gflops")]
    return max(vals) if vals else None


def efficiency(fpp: float | None, pixels: float, seconds: float) -> dict[str, Any]:
    """Achieved GFLOP/s on the image's own pixels and the fraction of the session's matmul peak.

    Tiling overlap and padding are work the model does on top: they lower the achieved figure.
    """
    if not fpp or seconds <= 0:
        return {"gflops": None, "fraction_of_peak": None}
    gflops = fpp * pixels / seconds / 1e9
    peak = peak_gflops()
    return {"gflops": gflops, "fraction_of_peak": gflops / peak if peak else None}

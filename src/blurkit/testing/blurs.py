"""Contract checks for blur generators: run :func:`check_blur` on your own :class:`~blurkit.blurs.Blur`.

blurkit's test-suite runs it over every name in ``blurkit.BLURS``, plugins included.

Examples:
    >>> from blurkit.testing.blurs import check_blur
    >>> check_blur("gaussian")
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import numpy as np

__all__ = ["check_blur"]

_SHAPES = ((23, 18), (23, 18, 1), (23, 18, 3), (2, 23, 18, 3))
_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
_BASE_ARGS = ("border", "noise", "shot", "quantize", "jpeg", "seed")  # Blur.__init__'s arguments


def _image(shape: tuple, dtype: Any, seed: int = 12345) -> np.ndarray:
    """A deterministic test image: smooth ramps plus texture, over the full range of ``dtype``."""
    rng = np.random.default_rng(seed)
    h, w = shape[1:3] if len(shape) == 4 else shape[:2]
    ramp = np.add.outer(np.linspace(0, 1, h), np.linspace(0, 1, w)) / 2
    if len(shape) > 2:
        ramp = ramp[..., None]
    x = 0.5 * rng.random(shape) + 0.5 * ramp
    x[..., 0, 0] = 0.0
    x.reshape(-1)[-1] = 1.0
    if np.dtype(dtype).kind == "u":
        return np.rint(x * np.iinfo(dtype).max).astype(dtype)
    return x.astype(dtype)


def _json(obj: Any, what: str, label: str) -> str:
    try:
        return json.dumps(obj, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{label}: {what} must be JSON-serializable, got {obj!r} ({exc})") from None


def _resolve(blur: Any) -> tuple[Any, str]:
    from blurkit.blurs.base import Blur
    from blurkit.registry import BLURS

    expected = None
    if isinstance(blur, str):
        expected, blur = blur, BLURS.get(blur)
    if isinstance(blur, type):
        if not issubclass(blur, Blur):
            raise AssertionError(f"{blur.__name__} must subclass blurkit.blurs.Blur")
        try:
            blur = blur()
        except Exception as exc:
            raise AssertionError(
                f"{blur.__name__}() must work with default arguments, raised {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(blur, Blur):
        raise AssertionError(f"check_blur needs a registry name, Blur class or instance, got {blur!r}")
    label = f"blur {blur.name!r} ({type(blur).__name__})"
    if not isinstance(blur.name, str) or not blur.name:
        raise AssertionError(f"{type(blur).__name__}.name must be a non-empty string, got {blur.name!r}")
    if expected is not None and blur.name != expected:
        raise AssertionError(f"{label}: registered as {expected!r} but its name is {blur.name!r}")
    if not isinstance(blur.version, int) or blur.version < 1:
        raise AssertionError(f"{label}: version must be an int >= 1, got {blur.version!r}")
    return blur, label


def _check_kernel(k: Any, params: dict, label: str) -> None:
    where = f"{label}: kernel for params {params}"
    if not isinstance(k, np.ndarray):
        raise AssertionError(f"{where} must be a numpy array, got {type(k).__name__}")
    if k.ndim != 2:
        raise AssertionError(f"{where} must be 2D, got shape {k.shape}")
    if k.dtype != np.float64:
        raise AssertionError(f"{where} must be float64, got {k.dtype}")
    if k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise AssertionError(f"{where} must have odd height and width, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise AssertionError(f"{where} must be finite")
    if k.min() < 0:
        raise AssertionError(f"{where} must be non-negative, min is {k.min():g}")
    if abs(k.sum() - 1.0) > 1e-6:
        raise AssertionError(f"{where} must sum to 1 (+-1e-6), sums to {k.sum():.9f}")


def _check_params(blur: Any, seeds: tuple, label: str) -> None:
    for seed in seeds:
        drawn = blur.sample_kernel(np.random.default_rng(seed))
        if not isinstance(drawn, dict):
            raise AssertionError(f"{label}: sample_kernel() must return a dict of JSON-able kernel parameters, "
                                 f"got {type(drawn).__name__}")
        p = blur.sample(seed)
        if not isinstance(p, dict):
            raise AssertionError(f"{label}: sample() must return a dict, got {type(p).__name__}")
        text = _json(p, "sample() params", label)
        if _json(blur.sample(seed), "sample() params", label) != text:
            raise AssertionError(f"{label}: sample({seed}) must give the same params every time")
        if _json(blur.sample(np.random.default_rng(seed)), "params", label) != text:
            raise AssertionError(f"{label}: sample({seed}) and sample(default_rng({seed})) must agree")
        for key in ("noise_sigma", "quantize", "border"):
            if key not in p:
                raise AssertionError(f"{label}: sample() params must record {key!r}, got keys {sorted(p)}")
        if p["border"] != blur.border:
            raise AssertionError(f"{label}: params border {p['border']!r} != blur.border {blur.border!r}")
        k = blur.kernel(p)
        _check_kernel(k, p, label)
        if not np.array_equal(k, blur.kernel(json.loads(text))):
            raise AssertionError(f"{label}: kernel(params) must be the same for the same (JSON) params")


def _noisy(p: dict) -> bool:
    """The params add noise (so apply's output depends on the generator): additive or shot noise."""
    return float(p.get("noise_sigma", 0.0)) != 0 or float(p.get("shot_noise", 0.0)) != 0


def _tolerance(dtype: np.dtype, quantize: bool, lo: float, hi: float) -> float:
    if dtype == np.uint16 and quantize:
        return 129.0  # rounding to multiples of 257
    if dtype.kind == "u":
        return 0.0
    tol = 1e-5 * max(1.0, abs(lo), abs(hi))
    return tol + (0.5 / 255 if quantize else 0.0)


def _check_range(out: np.ndarray, x: np.ndarray, p: dict, what: str, label: str) -> None:
    """Output within the input's value range (no noise), or within the dtype/[0, 1] range."""
    if x.dtype.kind == "f" and x.min() >= 0 and x.max() <= 1 and (out.min() < 0 or out.max() > 1):
        raise AssertionError(
            f"{label}: {what} in [0, 1] must stay in [0, 1], got [{out.min():g}, {out.max():g}]"
        )
    if _noisy(p) or p.get("jpeg_quality") is not None:  # noise, JPEG ringing
        return
    lo, hi = float(x.min()), float(x.max())
    if p.get("border") == "constant":
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    tol = _tolerance(x.dtype, bool(p.get("quantize")), lo, hi)
    if out.min() < lo - tol or out.max() > hi + tol:
        raise AssertionError(
            f"{label}: without noise, {what} must stay within the input range [{lo:g}, {hi:g}], "
            f"got [{float(out.min()):g}, {float(out.max()):g}] (params {p})"
        )


def _check_call(blur: Any, label: str) -> None:
    for dtype in _DTYPES:
        for shape in _SHAPES:
            x = _image(shape, dtype)
            before = x.copy()
            what = f"{np.dtype(dtype).name} image of shape {shape}"
            r = blur(x, seed=0)
            if not np.array_equal(x, before):
                raise AssertionError(f"{label}: calling on a {what} must not modify the input")
            if not isinstance(r, dict) or set(r) != {"image", "kernel", "params"}:
                got = sorted(r) if isinstance(r, dict) else type(r).__name__
                raise AssertionError(
                    f"{label}: a call must return {{'image', 'kernel', 'params'}}, got {got}"
                )
            out = r["image"]
            if not isinstance(out, np.ndarray) or out.shape != x.shape or out.dtype != x.dtype:
                seen = (getattr(out, "shape", None), getattr(out, "dtype", type(out).__name__))
                raise AssertionError(f"{label}: a {what} must keep shape and dtype, got {seen}")
            if not np.isfinite(out).all():
                raise AssertionError(f"{label}: output for a {what} must be finite")
            again = blur(x, seed=0)
            if not np.array_equal(out, again["image"]):
                raise AssertionError(f"{label}: the same seed must give the same image ({what})")
            if len(shape) == 4:
                for key in ("kernel", "params"):
                    if not isinstance(r[key], list) or len(r[key]) != shape[0]:
                        raise AssertionError(
                            f"{label}: for an (N, H, W, C) batch, {key!r} must be a list of N={shape[0]}"
                        )
                for i, (k, p) in enumerate(zip(r["kernel"], r["params"], strict=True)):
                    _check_kernel(k, p, label)
                    if not np.array_equal(k, again["kernel"][i]):
                        raise AssertionError(f"{label}: the same seed must give the same kernels ({what})")
                    _check_range(out[i], x[i], p, f"image {i} of a {what}", label)
                    if not _noisy(p) and not np.array_equal(out[i], blur.apply(x[i], p, k)):
                        raise AssertionError(
                            f"{label}: batch image {i} must equal apply(image, params[{i}], kernel[{i}])"
                        )
            else:
                _check_kernel(r["kernel"], r["params"], label)
                if not np.array_equal(r["kernel"], again["kernel"]):
                    raise AssertionError(f"{label}: the same seed must give the same kernel ({what})")
                _check_range(out, x, r["params"], f"a {what}", label)
    # floats are taken in any range; they are not clipped to [0, 1] then
    x = (_image((23, 18, 3), np.float32) * 300 - 50).astype(np.float32)
    r = blur(x, seed=1)
    if r["image"].dtype != np.float32 or not np.isfinite(r["image"]).all():
        raise AssertionError(f"{label}: a float image in [-50, 250] must give finite float32 output")
    _check_range(r["image"], x, r["params"], "a float image in [-50, 250]", label)


def _check_config(blur: Any, label: str) -> None:
    from blurkit.blurs.base import deserialize_blur, serialize_blur
    from blurkit.registry import BLURS

    config = blur.get_config()
    if not isinstance(config, dict):
        raise AssertionError(f"{label}: get_config() must return a dict, got {type(config).__name__}")
    text = _json(config, "get_config()", label)
    names = [
        n
        for n, p in inspect.signature(type(blur).__init__).parameters.items()
        if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = [n for n in (*names, *_BASE_ARGS) if n not in config]
    if missing:
        raise AssertionError(f"{label}: get_config() must hold every init argument; missing {missing}")
    try:
        clone = type(blur).from_config(json.loads(text))
    except Exception as exc:
        raise AssertionError(
            f"{label}: from_config(get_config()) raised {type(exc).__name__}: {exc}; config {text}"
        ) from exc
    if type(clone) is not type(blur) or _json(clone.get_config(), "get_config()", label) != text:
        raise AssertionError(
            f"{label}: from_config(get_config()).get_config() must equal get_config(): "
            f"{clone.get_config()} != {config}"
        )
    x = _image((23, 18, 3), np.float32)
    for seed in (3, 4):
        a, b = blur(x, seed=seed), clone(x, seed=seed)
        if not np.array_equal(a["image"], b["image"]) or not np.array_equal(a["kernel"], b["kernel"]):
            raise AssertionError(f"{label}: a rebuilt blur must give the same output for seed={seed}")
    seeded = dict(json.loads(text), seed=123)
    a, b = type(blur).from_config(seeded), type(blur).from_config(seeded)
    for _ in range(2):
        if not np.array_equal(a(x)["image"], b(x)["image"]):
            raise AssertionError(f"{label}: two instances made with seed=123 must give the same sequence")
    if blur.name in BLURS and BLURS.get(blur.name) is type(blur):
        saved = json.loads(_json(serialize_blur(blur), "serialize_blur()", label))
        back = deserialize_blur(saved)
        if type(back) is not type(blur) or _json(back.get_config(), "config", label) != text:
            raise AssertionError(f"{label}: deserialize_blur(serialize_blur(blur)) must give the same blur")


def _check_energy(blur: Any, label: str) -> None:
    base = {k: v for k, v in blur.sample(5).items() if k not in ("jpeg_quality", "shot_noise")}  # the blur alone
    for border in ("reflect", "symmetric", "edge", "wrap"):
        p = dict(base, noise_sigma=0.0, quantize=False, border=border)
        for value, dtype in ((0.37, np.float32), (200, np.uint8), (40000, np.uint16)):
            x = np.full((23, 18, 3), value, dtype)
            out = blur.apply(x, p)
            err = float(np.abs(out.astype(np.float64) - value).max())
            if err > (1e-5 if x.dtype.kind == "f" else 0):
                raise AssertionError(
                    f"{label}: a constant {x.dtype} image must stay constant (border {border!r}), "
                    f"max change {err:g} for params {p}"
                )
    x = _image((23, 18, 3), np.float64)
    out = blur.apply(x, dict(base, noise_sigma=0.0, quantize=False, border="wrap"))
    if abs(out.sum() - x.sum()) > 1e-4 * x.size:
        raise AssertionError(
            f"{label}: with border 'wrap' blurring must keep the image's sum (energy): "
            f"{x.sum():.6f} -> {out.sum():.6f}"
        )


def check_blur(blur: Any, seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> None:
    """Check that a blur generator honours the contract blurkit relies on.

    Checks determinism per seed (same kernel, params and image), kernels (2D float64, odd sizes, finite,
    non-negative, sum to 1 within 1e-6), outputs for ``(H, W)``, ``(H, W, C)`` and ``(N, H, W, C)`` inputs
    in uint8, uint16, float32 and float64 (same shape and dtype, finite, value range kept, one kernel per
    batch image), the ``get_config`` -> ``from_config`` -> ``get_config`` JSON round trip with identical
    outputs, ``serialize_blur``/``deserialize_blur`` for registered blurs, and that blurring neither creates
    nor loses energy (a constant image stays constant; circular blurring keeps the sum).

    Args:
        blur: A registry name (``"gaussian"``), a :class:`~blurkit.blurs.Blur` subclass (built with
            default arguments) or an instance.
        seeds: Seeds used for the parameter and kernel checks.

    Raises:
        AssertionError: The first broken rule, with a message naming the blur, the rule and the values.

    Examples:
        >>> from blurkit.blurs import MotionBlur
        >>> check_blur(MotionBlur(length=(1, 30), noise=0.02, quantize=True))
    """
    blur, label = _resolve(blur)
    _check_params(blur, tuple(seeds), label)
    _check_call(blur, label)
    _check_config(blur, label)
    _check_energy(blur, label)

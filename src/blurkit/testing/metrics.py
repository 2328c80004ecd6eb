"""Contract checks for metrics: :func:`check_metric`.

A blurkit metric is a function ``(y_true, y_pred) -> float`` following the conventions of
:mod:`blurkit.metrics.functional` (integer images scaled by their dtype's maximum, float images in [0, 1],
``(H, W)``, ``(H, W, C)`` and ``(N, H, W, C)`` inputs, batches averaged per image, shape mismatch is a
``ValueError``). A metric may declare ``best`` (its value for identical images), ``higher_is_better``
and ``symmetric`` as function attributes; the built-ins do.

Examples:
    >>> import numpy as np
    >>> from blurkit.metrics import prepare
    >>> def mae(y_true, y_pred):
    ...     t, p = prepare(y_true, y_pred)
    ...     axes = tuple(range(1, t.ndim)) if t.ndim == 4 else None
    ...     return float(np.mean(np.mean(np.abs(t - p), axis=axes)))
    >>> mae.best = 0.0
    >>> check_metric(mae, keras=False)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["check_metric"]

SIZE = 32  # images are SIZE x SIZE: larger than the 11x11 SSIM window


def _images(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A smooth uint8 image and a noisy, slightly shifted copy of it."""
    t = rng.random(shape)
    # Smooth along the two spatial axes so SSIM sees structure.
    axes = (-3, -2) if len(shape) >= 3 else (0, 1)
    for ax in axes:
        t = (t + np.roll(t, 1, axis=ax) + np.roll(t, 2, axis=ax)) / 3
    t = (t - t.min()) / (t.max() - t.min())
    p = np.clip(t + rng.normal(0, 0.03, shape) + 0.01, 0, 1)
    return np.round(t * 255).astype(np.uint8), np.round(p * 255).astype(np.uint8)


def _close(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def _expect(condition: object, message: str) -> None:
    """Raise ``AssertionError(message)`` unless ``condition``: an ``assert`` statement that ``python -O`` keeps
    (it strips ``assert``, and a broken metric passed the checks)."""
    if not condition:
        raise AssertionError(message)


def _call(fn: Callable, label: str, t: Any, p: Any) -> float:
    try:
        value = fn(t, p)
    except Exception as exc:
        raise AssertionError(f"{label}: raised {type(exc).__name__}: {exc}") from exc
    _expect(isinstance(value, float), (
        f"{label}: must return a Python float, got {type(value).__name__} {value!r}"
    ))
    return value


def check_metric(
    metric: str | Callable,
    *,
    best: float | None = None,
    symmetric: bool | None = None,
    keras: bool = True,
    seed: int = 0,
) -> None:
    """Check that ``metric`` follows blurkit's metric contract; raise ``AssertionError`` if not.

    Checks, on 32x32 images:

    1. uint8 and float inputs of shape ``(H, W)``, ``(H, W, 3)`` and ``(N, H, W, 3)`` give a finite Python
       ``float``; ``uint8`` input equals the same image as ``float / 255`` (and ``uint16`` as ``/ 65535``).
    2. A batch gives the mean of the per-image values.
    3. Identical images give the best value (``best``, else ``metric.best``; when neither is known, the
       value for identical images must be at least as good as for the noisy pair, in one direction).
    4. Swapping ``y_true`` and ``y_pred`` gives the same value, unless the metric is not ``symmetric``.
    5. Different shapes raise ``ValueError`` naming both shapes.
    6. With ``keras=True``: ``keras_metric(metric)`` works in ``model.compile(metrics=...)`` and
       ``model.evaluate`` on a tiny near-identity Keras model (uneven batches included) and gives the NumPy
       value of the predictions within 1e-3 (relative 1e-4).

    Args:
        metric: A registry name or a metric function.
        best: The value for identical images; defaults to ``metric.best`` when the function has it.
        symmetric: Whether the metric is symmetric; defaults to ``metric.symmetric``, else True.
        keras: Also run the Keras check (imports TensorFlow; about a second).
        seed: Seed of the test images.

    Raises:
        AssertionError: The contract is broken; the message says which check and the values.
    """
    from blurkit.metrics.keras import metric_name
    from blurkit.registry import METRICS

    fn = METRICS.get(metric) if isinstance(metric, str) else metric
    name = metric_name(metric)
    _expect(callable(fn), f"metric {name!r} is not callable: {fn!r}")
    if best is None:
        best = getattr(fn, "best", None)
    if symmetric is None:
        symmetric = getattr(fn, "symmetric", True)
    rng = np.random.default_rng(seed)

    for shape in [(SIZE, SIZE), (SIZE, SIZE, 3), (3, SIZE, SIZE, 3)]:
        t8, p8 = _images(rng, shape)
        tf_, pf = t8 / 255.0, p8 / 255.0
        where = f"metric {name!r} on {shape}"
        v8 = _call(fn, f"{where} uint8", t8, p8)
        vf = _call(fn, f"{where} float64", tf_, pf)
        v32 = _call(fn, f"{where} float32", tf_.astype(np.float32), pf.astype(np.float32))
        v16 = _call(fn, f"{where} uint16", t8.astype(np.uint16) * 257, p8.astype(np.uint16) * 257)
        _expect(math.isfinite(v8), f"{where}: value must be finite for different images, got {v8}")
        _expect(_close(v8, vf, 1e-9, 1e-12), (
            f"{where}: uint8 input must equal the same image as float / 255, got {v8} (uint8) vs {vf} (float)"
        ))
        _expect(_close(v16, vf, 1e-9, 1e-12), (
            f"{where}: uint16 input must equal the same image as float / 65535, got {v16} vs {vf}"
        ))
        _expect(_close(v32, vf, 1e-4, 1e-5), f"{where}: float32 and float64 inputs differ: {v32} vs {vf}")

        same = _call(fn, f"{where} identical images", t8, t8)
        if best is not None:
            _expect(_close(same, best, 1e-9, 1e-9), (
                f"{where}: identical images must give the best value {best}, got {same}"
            ))
        else:
            worse = [_call(fn, f"{where} float", tf_, np.clip(tf_ + d, 0, 1)) for d in (0.05, -0.2)]
            _expect(all(same <= w for w in worse) or all(same >= w for w in worse), (
                f"{where}: identical images must give the best value, got {same} vs {worse} for different "
                "images (declare metric.best to check it exactly)"
            ))
        if symmetric:
            swapped = _call(fn, f"{where} swapped", p8, t8)
            _expect(_close(swapped, v8, 1e-9, 1e-12), (
                f"{where}: metric must be symmetric, got {v8} vs {swapped} with y_true and y_pred swapped "
                "(set metric.symmetric = False if that is intended)"
            ))
        if len(shape) == 4:
            each = [_call(fn, f"{where} image {i}", t8[i], p8[i]) for i in range(shape[0])]
            mean = float(np.mean(each))
            _expect(_close(v8, mean, 1e-9, 1e-12), (
                f"{where}: a batch must give the mean of the per-image values, got {v8} vs mean {mean} of {each}"
            ))

    t8, _ = _images(rng, (SIZE, SIZE, 3))
    try:
        fn(t8, t8[..., :1])
    except ValueError as exc:
        msg = str(exc)
        _expect("(32, 32, 3)" in msg and "(32, 32, 1)" in msg, (
            f"metric {name!r}: the ValueError for different shapes must name both shapes, got {msg!r}"
        ))
    else:
        raise AssertionError(f"metric {name!r}: shapes (32, 32, 3) and (32, 32, 1) must raise ValueError")

    if keras:
        _check_keras(metric, fn, name, rng)


def _check_keras(metric: str | Callable, fn: Callable, name: str, rng: np.random.Generator) -> None:
    import keras

    from blurkit.metrics.keras import keras_metric

    # Continuous (tie-free) float images so argmax-type metrics are not at the mercy of tie-breaking.
    t = rng.random((5, SIZE, SIZE, 3)).astype(np.float32)
    x = np.clip(t + rng.normal(0, 0.05, t.shape), 0, 1).astype(np.float32)

    inputs = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(3, 1)
    outputs = conv(inputs)
    conv.set_weights([0.9 * np.eye(3, dtype=np.float32)[None, None], np.full((3,), 0.05, np.float32)])
    model = keras.Model(inputs, outputs)
    km = keras_metric(metric)
    _expect(km.name == name, f"keras_metric({name!r}).name must be {name!r}, got {km.name!r}")
    jit = "auto" if getattr(km, "supports_jit", True) else False
    model.compile(loss="mse", metrics=[km], jit_compile=jit)
    try:
        logs = model.evaluate(x, t, batch_size=2, verbose=0, return_dict=True)
    except Exception as exc:
        raise AssertionError(
            f"metric {name!r}: model.evaluate with keras_metric failed: {type(exc).__name__}: {exc}"
        ) from exc
    _expect(name in logs, f"metric {name!r}: model.evaluate logs have no {name!r}: {sorted(logs)}")
    got = float(logs[name])
    pred = np.asarray(model.predict(x, batch_size=5, verbose=0), np.float64)
    want = fn(t.astype(np.float64), pred)
    _expect(_close(got, want, 1e-4, 1e-3), (
        f"metric {name!r}: Keras evaluate gives {got}, the NumPy metric on the predictions gives {want}"
    ))

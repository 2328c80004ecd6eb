"""Keras metric objects for any registered metric (built-in or plugin).

:func:`keras_metric` turns a metric name or function into a ``keras.metrics.Metric`` for
``model.compile(metrics=[...])``. It uses the metric's tensor implementation (``fn.keras_fn``) when it
has one; a plain NumPy function (what a plugin author writes) is wrapped with ``tf.numpy_function``.

The Keras object reports the mean over *images* of the metric: each batch's value is weighted by its
batch size, so ``model.evaluate`` gives the same number as the NumPy metric on the whole data set, even with
a smaller last batch. With sample weights (one per image, or per pixel: then their mean per image), it is
the weighted mean of each image's value, as Keras' own metrics weigh samples; an image of weight 0 is left
out (even one whose PSNR is infinite). Keras passes sample weights only to ``compile(weighted_metrics=[...])``:
the same objects under ``metrics=`` report the unweighted mean. (Passing a built-in function directly,
``compile(metrics=[blurkit.metrics.psnr])``, also trains, but Keras then averages over batches without
weighting, and a model saved with it does not reload: Keras cannot find the function by name.)

The class, ``MeanMetric``, is registered as ``"blurkit>MeanMetric"`` and its config holds only the
metric's registry name and keyword arguments, so saved models reload with whatever implementation the
name resolves to. It is defined on first use, so importing this module does not import Keras; call
:func:`custom_objects` (or any function here) before ``keras.models.load_model`` in a fresh process.

NumPy-wrapped metrics cannot run inside XLA: their objects have ``supports_jit = False``, and a model
compiled with them needs ``jit_compile=False`` (Keras turns XLA on by default when a GPU is present).

Examples:
    >>> from blurkit.metrics import keras_metric
    >>> m = keras_metric("psnr")
    >>> m.name, m.get_config()["metric"]
    ('psnr', 'psnr')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from blurkit.registry import METRICS

__all__ = ["keras_metric", "keras_metrics", "custom_objects", "metric_name"]

_CLASSES: dict[str, type] = {}


def metric_name(metric: str | Callable) -> str:
    """The registry name of ``metric`` (a name, or a registered function); else the function's name.

    Examples:
        >>> from blurkit.metrics import psnr
        >>> metric_name(psnr), metric_name("ssim")
        ('psnr', 'ssim')
    """
    if isinstance(metric, str):
        return metric
    for entry in METRICS.entries():
        if entry.obj is metric:
            return entry.name
    return getattr(metric, "__name__", type(metric).__name__)


def _resolve(metric: str | Callable) -> tuple[str, Callable]:
    if isinstance(metric, str):
        return metric, METRICS.get(metric)
    if not callable(metric):
        raise TypeError(
            f"a metric is a registry name or a function (y_true, y_pred) -> float, got {metric!r}"
        )
    return metric_name(metric), metric


def _check_options(key: str, fn: Callable, kwargs: dict) -> None:
    """Refuse options the metric function does not take, now (they failed at the first batch, naming a private
    function), naming them and those it takes."""
    import inspect

    try:
        params = list(inspect.signature(fn).parameters.values())[2:]  # after (y_true, y_pred)
    except (TypeError, ValueError):  # no signature to tell by
        return
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    takes = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(takes))
    if unknown:
        raise TypeError(f"metric {key!r} takes no option{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                        f"its options: {', '.join(takes) or '(none)'}")


def _numpy_wrapper(fn: Callable, kwargs: dict) -> Callable:
    def call(y_true, y_pred):
        import tensorflow as tf

        def run(t, p):
            return np.asarray(fn(t, p, **kwargs), dtype=np.float32)

        value = tf.numpy_function(run, [y_true, y_pred], tf.float32, stateful=False)
        value.set_shape(())
        return value

    return call


def _define() -> dict[str, type]:
    if _CLASSES:
        return _CLASSES
    import keras
    import tensorflow as tf

    @keras.saving.register_keras_serializable(package="blurkit")
    class MeanMetric(keras.metrics.Metric):
        """Mean over images of a blurkit metric (see :func:`blurkit.metrics.keras_metric`).

        Args:
            metric: Registry name of the metric, or the function itself.
            kwargs: Keyword arguments passed to the metric on every call (``{"tol": 0.01}``).
            name: Name shown in logs; defaults to the metric's name.
            dtype: Dtype of the state variables.
        """

        def __init__(
            self,
            metric: str | Callable = "psnr",
            kwargs: dict | None = None,
            name: str | None = None,
            dtype: Any = None,
        ) -> None:
            key, fn = _resolve(metric)
            _check_options(key, fn, dict(kwargs or {}))
            super().__init__(name=name or key, dtype=dtype)
            self.metric = key
            self.metric_kwargs = dict(kwargs or {})
            keras_fn = getattr(fn, "keras_fn", None)
            if keras_fn is not None:
                kw = self.metric_kwargs
                self._fn = lambda t, p: keras_fn(t, p, **kw)
                self.supports_jit = True
            else:
                self._fn = _numpy_wrapper(fn, self.metric_kwargs)
                self.supports_jit = False
            higher = getattr(fn, "higher_is_better", None)
            if higher is not None:  # read by EarlyStopping / ModelCheckpoint(mode="auto")
                self._direction = "up" if higher else "down"
            self.total = self.add_variable(shape=(), initializer="zeros", name="total")
            self.count = self.add_variable(shape=(), initializer="zeros", name="count")

        def update_state(self, y_true, y_pred, sample_weight=None):
            y_true, y_pred = tf.convert_to_tensor(y_true), tf.convert_to_tensor(y_pred)
            batch = y_pred.shape.rank == 4
            if sample_weight is None:  # the batch's mean, counted once per image
                value = tf.cast(self._fn(y_true, y_pred), self.dtype)
                weight = tf.cast(tf.shape(y_pred)[0], self.dtype) if batch else tf.constant(1.0, self.dtype)
                total = value * weight
            else:
                weight = tf.cast(sample_weight, self.dtype)
                if weight.shape.rank and weight.shape.rank > 1:  # per-pixel weights: one weight per image
                    weight = tf.reduce_mean(weight, axis=list(range(1, weight.shape.rank)))
                if batch:  # each image's value, weighted by its own weight
                    values = tf.map_fn(lambda tp: tf.cast(self._fn(tp[0][None], tp[1][None]), self.dtype),
                                       (y_true, y_pred), fn_output_signature=self.dtype)
                    weight = tf.broadcast_to(tf.reshape(weight, [-1]), tf.shape(values))
                    # a weight of 0 leaves its image out, even one whose value is inf (PSNR of an exact
                    # restoration): inf * 0 would make the whole mean NaN
                    total = tf.reduce_sum(tf.where(weight != 0, values * weight, tf.zeros_like(values)))
                else:
                    value = tf.cast(self._fn(y_true, y_pred), self.dtype)
                    total = tf.where(tf.reduce_sum(weight) != 0, value * tf.reduce_sum(weight), 0.0)
                weight = tf.reduce_sum(weight)
            self.total.assign_add(total)
            self.count.assign_add(weight)

        def result(self):
            return tf.math.divide_no_nan(self.total, self.count)

        def reset_state(self):
            self.total.assign(0.0)
            self.count.assign(0.0)

        def get_config(self) -> dict:
            return {**super().get_config(), "metric": self.metric, "kwargs": dict(self.metric_kwargs)}

    MeanMetric.__qualname__ = "MeanMetric"
    _CLASSES["blurkit>MeanMetric"] = MeanMetric
    return _CLASSES


def custom_objects() -> dict[str, type]:
    """Define (and register with Keras) the metric class; returns ``{"blurkit>MeanMetric": class}``.

    Call it before ``keras.models.load_model`` in a process that has not built a blurkit metric yet,
    or pass the result as ``custom_objects``.
    """
    return dict(_define())


def keras_metric(metric: str | Callable, *, name: str | None = None, **kwargs: Any):
    """A ``keras.metrics.Metric`` reporting the mean over images of ``metric``.

    Args:
        metric: A registry name (``"psnr"``, a plugin's name) or a function ``(y_true, y_pred) -> float``.
            Its tensor implementation ``metric.keras_fn`` is used when present; otherwise the NumPy
            function runs through ``tf.numpy_function`` (then ``jit_compile=False`` is needed).
        name: Name in the training logs; defaults to the metric's registry name.
        **kwargs: Passed to the metric on every call (``keras_metric("accuracy", tol=0.01)``).

    Returns:
        A ``MeanMetric`` instance, serializable as the metric name plus ``kwargs``. A function that is not
        registered is named by its ``__name__``: the metric trains and reports, but a saved model compiled
        with it loads only where that name is registered (:func:`blurkit.registry.register_metric`).

    Raises:
        blurkit.registry.UnknownComponentError: ``metric`` is an unknown name.
        TypeError: ``metric`` is neither a name nor a function, or ``kwargs`` has an option it does not take.

    Examples:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 3, padding="same")])
        >>> model.compile(optimizer="adam", loss="mse", metrics=[keras_metric("psnr")])
        >>> keras_metric("accuracy", tol=0.01).get_config()["kwargs"]
        {'tol': 0.01}
        >>> keras_metric("psnr", tol=0.01)
        Traceback (most recent call last):
        ...
        TypeError: metric 'psnr' takes no option 'tol'; its options: (none)
    """
    cls = _define()["blurkit>MeanMetric"]
    return cls(metric, kwargs=kwargs, name=name)


def keras_metrics(names: str | Callable | Iterable[str | Callable]) -> list:
    """:func:`keras_metric` for each of ``names`` (one name or function is accepted too).

    Examples:
        >>> [m.name for m in keras_metrics(["psnr", "ssim"])]
        ['psnr', 'ssim']
    """
    if isinstance(names, str) or callable(names):
        names = [names]
    return [keras_metric(n) for n in names]


if TYPE_CHECKING:  # pragma: no cover
    MeanMetric: Any  # a keras.metrics.Metric subclass, defined when first used (Keras is imported then)
else:
    def __getattr__(name: str):
        if name == "MeanMetric":
            return _define()["blurkit>MeanMetric"]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

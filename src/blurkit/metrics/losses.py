"""Keras training losses for deblurring, available by name through :func:`get_loss`.

================  ==============================================================================
name              per-image value (images as float in [0, 1]; Keras averages over the batch)
================  ==============================================================================
``mse``           mean of ``(y_true - y_pred) ** 2``
``l1``            mean of ``|y_true - y_pred|``
``charbonnier``   mean of ``sqrt((y_true - y_pred) ** 2 + eps ** 2)``, ``eps=1e-3`` (a smooth L1)
``psnr_loss``     ``-PSNR = 10 log10(MSE + 1e-10)`` in dB (data range 1; bounded at -100 dB)
================  ==============================================================================

The classes (``MSE``, ``L1``, ``Charbonnier``, ``PSNRLoss``) are registered with Keras under the package
``"blurkit"`` (``"blurkit>Charbonnier"``) and store only their constructor arguments. They are defined on
first use, so importing this module does not import Keras; call :func:`custom_objects` (or
:func:`get_loss`) before ``keras.models.load_model`` in a fresh process.

Examples:
    >>> from blurkit.metrics.losses import LOSSES
    >>> LOSSES
    ('mse', 'l1', 'charbonnier', 'psnr_loss')
    >>> get_loss("charbonier")
    Traceback (most recent call last):
    ...
    blurkit.registry.UnknownComponentError: unknown loss 'charbonier'; did you mean 'charbonnier'? Available: mse, l1, charbonnier, psnr_loss
"""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

from blurkit.registry import UnknownComponentError

__all__ = ["get_loss", "check_loss", "custom_objects", "LOSSES"]

LOSSES = ("mse", "l1", "charbonnier", "psnr_loss")
"""The loss names :func:`get_loss` knows."""

_CLASSES: dict[str, type] = {}  # loss name -> class


def _define() -> dict[str, type]:
    if _CLASSES:
        return _CLASSES
    import keras
    from keras import ops  # any Keras backend

    def per_image(x):  # mean over every axis but the batch axis
        rank = len(x.shape)
        return ops.mean(x, axis=tuple(range(1, rank))) if rank > 1 else x

    class _Base(keras.losses.Loss):
        default_name = ""

        def __init__(
            self, name: str | None = None, reduction: str = "sum_over_batch_size", dtype: Any = None
        ):
            super().__init__(name=name or self.default_name, reduction=reduction, dtype=dtype)

        def get_config(self) -> dict:
            config = super().get_config()  # name and reduction (Keras 3.15); every init argument here:
            config.setdefault("dtype", self.dtype)
            return config

        def _diff(self, y_true, y_pred):
            return ops.cast(y_true, "float32") - ops.cast(y_pred, "float32")

    @keras.saving.register_keras_serializable(package="blurkit")
    class MSE(_Base):
        """Mean squared error per image."""

        default_name = "mse"

        def call(self, y_true, y_pred):
            return per_image(ops.square(self._diff(y_true, y_pred)))

    @keras.saving.register_keras_serializable(package="blurkit")
    class L1(_Base):
        """Mean absolute error per image."""

        default_name = "l1"

        def call(self, y_true, y_pred):
            return per_image(ops.abs(self._diff(y_true, y_pred)))

    @keras.saving.register_keras_serializable(package="blurkit")
    class Charbonnier(_Base):
        """Charbonnier loss ``mean(sqrt(d**2 + eps**2))``, a differentiable L1.

        Args:
            eps: Smoothing constant; below about ``eps`` the loss is quadratic.
        """

        default_name = "charbonnier"

        def __init__(self, eps: float = 1e-3, **kwargs: Any):
            super().__init__(**kwargs)
            if not eps > 0:
                raise ValueError(f"charbonnier eps must be > 0, got {eps}")
            self.eps = float(eps)

        def call(self, y_true, y_pred):
            d = self._diff(y_true, y_pred)
            return per_image(ops.sqrt(ops.square(d) + self.eps**2))

        def get_config(self) -> dict:
            return {**super().get_config(), "eps": self.eps}

    @keras.saving.register_keras_serializable(package="blurkit")
    class PSNRLoss(_Base):
        """Negative PSNR per image in dB (data range 1): ``10 log10(MSE + 1e-10)``."""

        default_name = "psnr_loss"

        def call(self, y_true, y_pred):
            err = per_image(ops.square(self._diff(y_true, y_pred)))
            return 10.0 * ops.log(err + 1e-10) / math.log(10.0)

    for cls in (MSE, L1, Charbonnier, PSNRLoss):
        cls.__qualname__ = cls.__name__  # readable reprs instead of "_define.<locals>.MSE"
    _CLASSES.update({"mse": MSE, "l1": L1, "charbonnier": Charbonnier, "psnr_loss": PSNRLoss})
    return _CLASSES


def check_loss(name: Any) -> str:
    """``name`` if it is one of :data:`LOSSES` (without importing Keras), else :class:`UnknownComponentError`."""
    if name not in LOSSES:
        close = difflib.get_close_matches(str(name), LOSSES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownComponentError(f"unknown loss {name!r}{hint or '.'} Available: {', '.join(LOSSES)}")
    return name


def get_loss(name: str, /, **kwargs: Any):
    """A new Keras loss by name.

    Args:
        name: One of :data:`LOSSES`: ``"mse"``, ``"l1"``, ``"charbonnier"``, ``"psnr_loss"``.
        **kwargs: Constructor arguments (``eps`` for charbonnier; ``name``, ``reduction``, ``dtype``).

    Returns:
        A ``keras.losses.Loss`` instance.

    Raises:
        UnknownComponentError: ``name`` is not a known loss; the message lists the available ones.
        TypeError: An argument the loss does not take (the message names it and lists those it takes).

    Examples:
        >>> get_loss("charbonnier", eps=1e-2).get_config()["eps"]
        0.01
        >>> get_loss("mse", eps=1e-2)
        Traceback (most recent call last):
        ...
        TypeError: loss 'mse' takes no option 'eps'; its options: name, reduction, dtype
    """
    from blurkit.registry import options_error

    cls = _define()[check_loss(name)]
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise options_error("loss", name, cls, kwargs, exc) from None


def custom_objects() -> dict[str, type]:
    """Define (and register with Keras) the loss classes; returns ``{"blurkit>Charbonnier": class, ...}``."""
    return {f"blurkit>{cls.__name__}": cls for cls in _define().values()}


if TYPE_CHECKING:  # pragma: no cover
    # keras.losses.Loss subclasses, defined when first used (Keras is imported then)
    MSE: Any
    L1: Any
    Charbonnier: Any
    PSNRLoss: Any
else:
    def __getattr__(name: str):
        if name in ("MSE", "L1", "Charbonnier", "PSNRLoss"):
            return {cls.__name__: cls for cls in _define().values()}[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

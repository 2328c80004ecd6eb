"""Image-quality metrics, their Keras wrappers, and training losses.

* :mod:`blurkit.metrics.functional`: the registered metrics ``mse``, ``psnr``, ``ssim``, ``accuracy``,
  ``channel_accuracy``, ``psnr_y`` and ``ssim_y`` (on luma, as papers report), for NumPy arrays (Python
  float) and TensorFlow tensors (scalar tensor). Its module docstring states the conventions: integer images scaled by their dtype's maximum, float images in
  [0, 1], data range 1, PSNR on RGB, SSIM per channel (scikit-image settings), batches averaged per image.
* :mod:`blurkit.metrics.keras`: :func:`keras_metric` makes a serializable ``keras.metrics.Metric`` from any
  registered metric or plain NumPy function.
* :mod:`blurkit.metrics.losses`: :func:`get_loss` for ``mse``, ``l1``, ``charbonnier`` and ``psnr_loss``.

Importing this package does not import TensorFlow or Keras.

Examples:
    >>> import numpy as np
    >>> from blurkit import metrics
    >>> sorted(n for n in metrics.METRICS.list() if n in metrics.__all__)
    ['accuracy', 'channel_accuracy', 'mse', 'psnr', 'psnr_y', 'ssim', 'ssim_y']
    >>> metrics.psnr(np.zeros((8, 8)), np.full((8, 8), 0.1))
    20.0
"""

from __future__ import annotations

from blurkit.metrics import keras as _keras
from blurkit.metrics import losses as _losses
from blurkit.metrics.functional import (
    accuracy,
    channel_accuracy,
    is_numpy,
    mse,
    prepare,
    psnr,
    psnr_y,
    ssim,
    ssim_y,
)
from blurkit.metrics.keras import keras_metric, keras_metrics, metric_name
from blurkit.metrics.losses import LOSSES, get_loss
from blurkit.registry import METRICS, register_metric

__all__ = [
    "mse",
    "psnr",
    "psnr_y",
    "ssim",
    "ssim_y",
    "accuracy",
    "channel_accuracy",
    "prepare",
    "is_numpy",
    "keras_metric",
    "keras_metrics",
    "metric_name",
    "get_loss",
    "LOSSES",
    "custom_objects",
    "METRICS",
    "register_metric",
]


def custom_objects() -> dict[str, type]:
    """Register blurkit's Keras metric and loss classes; returns them keyed by registered name.

    Call it before ``keras.models.load_model`` in a process that has not built them yet (or pass the
    result as ``custom_objects=``). It imports Keras.
    """
    return {**_keras.custom_objects(), **_losses.custom_objects()}

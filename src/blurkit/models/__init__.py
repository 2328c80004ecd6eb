"""Model builders (registered in :data:`blurkit.registry.MODELS`), custom layers and a FLOPs counter.

Importing this package does not import TensorFlow: each builder imports Keras when it is called, and the
custom layers (:mod:`blurkit.models.layers`) are loaded on first attribute access.

Built-in models:
    - ``"autoencoder"``: :func:`~blurkit.models.autoencoder.autoencoder`, the tutorial's fixed-size
      convolutional autoencoder (34,951,683 parameters by default).
    - ``"unet"``: :func:`~blurkit.models.unet.unet`, a residual U-Net with a global residual.
    - ``"nafnet"``: :func:`~blurkit.models.nafnet.nafnet`, NAFNet (Chen et al. 2022), CPU-sized.
    - ``"wiener_unet"``: :func:`~blurkit.models.wiener.wiener_unet`, a blur estimator, a Wiener
      deconvolution layer and a U-Net refiner: the architecture of the shipped presets.

Examples:
    >>> from blurkit.models import unet, flops_per_pixel
    >>> model = unet(width=4, depth=1, blocks=1)
    >>> model.input_shape
    (None, None, None, 3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blurkit._lazy import attach
from blurkit.models.autoencoder import autoencoder
from blurkit.models.flops import flops_by_layer, flops_per_pixel
from blurkit.models.nafnet import nafnet
from blurkit.models.unet import unet
from blurkit.models.wiener import wiener_unet

_LAYERS = (
    "PadToMultiple", "CropToReference", "SimpleGate", "ChannelScale", "PixelShuffle", "GaussianWiener",
    "RadialSpectrum", "TakeChannels", "SoftmaxPool2D",
)

__all__ = [
    "autoencoder",
    "unet",
    "nafnet",
    "wiener_unet",
    "flops_per_pixel",
    "flops_by_layer",
    "PadToMultiple",
    "CropToReference",
    "SimpleGate",
    "ChannelScale",
    "PixelShuffle",
    "GaussianWiener",
    "RadialSpectrum",
    "TakeChannels",
    "SoftmaxPool2D",
    "custom_objects",
]

if TYPE_CHECKING:  # pragma: no cover
    from blurkit.models.layers import (
        ChannelScale,
        CropToReference,
        GaussianWiener,
        PadToMultiple,
        PixelShuffle,
        RadialSpectrum,
        SimpleGate,
        SoftmaxPool2D,
        TakeChannels,
    )


# not for type checkers: they would take any name as an attribute (Any) instead of these lazy ones
if not TYPE_CHECKING:
    __getattr__, __dir__ = attach(__name__, dict.fromkeys(_LAYERS, "blurkit.models.layers"), __all__, globals())


def custom_objects() -> dict[str, type]:
    """Register every Keras object blurkit's models and training use (its layers, metric and loss classes) and
    return them by registered name, for ``keras.saving.load_model`` of a model built with blurkit but saved
    from your own Keras code (``Deblurrer.load`` does this itself).

    Keras finds such objects only once they are registered, and blurkit registers them when it first needs
    them (building a model, making a metric), so a fresh process that only imported blurkit could not load
    the file (Keras' message names the model's class, not the missing layer). It imports Keras.

    Examples:
        >>> objects = custom_objects()
        >>> "blurkit>PadToMultiple" in objects and "blurkit>MeanMetric" in objects
        True
    """
    import keras

    import blurkit.models.layers  # noqa: F401  (registers the layers as it is imported)
    from blurkit.metrics import custom_objects as training_objects

    return {**{k: v for k, v in keras.saving.get_custom_objects().items() if k.startswith("blurkit>")},
            **training_objects()}

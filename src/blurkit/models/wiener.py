"""``wiener_unet``: blind Gaussian deblurring as estimate -> Wiener deconvolution -> learned refinement.

A blind network has to find out how blurred the photo is before it can undo the blur. This model makes
that step explicit, in the spirit of Deep Wiener Deconvolution (Dong et al., NeurIPS 2020):

1. an **estimator** predicts, per image (or per tile), the Gaussian blur's sigma and a Wiener balance from
   the image's radially averaged log power spectrum (:class:`~blurkit.models.layers.RadialSpectrum`: a
   Gaussian blur bends it by ``-4 pi^2 sigma^2 f^2``) and pooled convolutional features;
2. a differentiable **Wiener deconvolution** (:class:`~blurkit.models.layers.GaussianWiener`, FFT-based,
   reflect-padded) inverts that Gaussian blur;
3. a residual **U-Net** sees the Wiener result and the blurred input and predicts a correction that removes
   the ringing, amplified noise and estimation error of step 2 (its last convolution starts at zero, so
   the untrained model is "Wiener with the estimated kernel").

Everything is trained end to end from (blurred, sharp) pairs: the estimator learns sigma without ever
being told it. The model is specific to Gaussian blur (the Wiener step assumes a Gaussian kernel); use
``unet`` or ``nafnet`` for other blurs.

Keras is imported inside the builder, so importing this module (and listing the models) stays light.
"""

from __future__ import annotations

from blurkit.models._checks import channels_last
from blurkit.models._checks import int_arg as _int_arg
from blurkit.models.unet import unet_body
from blurkit.registry import register_model

__all__ = ["wiener_unet"]


@register_model("wiener_unet")
@channels_last()
def wiener_unet(
    channels: int = 3,
    width: int = 24,
    depth: int = 3,
    blocks: int = 1,
    kernel_size: int = 3,
    estimator_width: int = 16,
    sigma_range: tuple[float, float] = (0.3, 3.5),
    log_balance_range: tuple[float, float] = (-6.0, -1.0),
    pad: int = 64,
    scales: tuple[float, ...] = (1.0,),
    spectrum_bins: int = 16,
    estimator_pool: str = "mean",
):
    """Build the blind Gaussian deblurring model: sigma estimator + Wiener layer + residual U-Net.

    Args:
        channels: Image channels (3 for RGB, 1 for grayscale).
        width: U-Net channels at full resolution; level ``l`` has ``width * 2**l``.
        depth: U-Net downsamplings.
        blocks: Residual blocks per U-Net level.
        kernel_size: U-Net convolution kernel size (odd).
        estimator_width: Channels of the estimator's first layer (doubling over its 4 stride-2 layers, at
            most 4x).
        sigma_range: Sigmas the estimator can predict (the training blur's range).
        log_balance_range: log10 range of the Wiener balance.
        pad: Reflect padding of the Wiener step.
        scales: Sigma hypotheses as multiples of the estimate (the first is the residual base), e.g.
            ``(1.0, 0.75, 1.33)``: the U-Net sees one deconvolution per hypothesis, which makes the model
            robust to errors of the estimate.
        spectrum_bins: Frequency rings of the estimator's spectrum descriptor.
        estimator_pool: How the estimator pools its convolutional features over the image: ``"mean"``
            (global average) or ``"attention"`` (weights from a learned 1x1 convolution, softmax over the
            image: :class:`~blurkit.models.layers.SoftmaxPool2D`; its convolution starts at zero, i.e. as
            the mean, so a ``"mean"`` model's weights carry over unchanged). Tried on the ``gaussian-v1``
            preset's estimator, it did no better than the mean (docs/model-card-gaussian-v1.md).

    Returns:
        A functional ``keras.Model`` named ``"wiener_unet"``, input ``(None, None, None, channels)`` float32
        in [0, 1], output of the same shape (not clipped; the facade clips). It is made of two sub-models,
        ``model.get_layer("estimator")`` (image -> the 2 raw blur parameters) and
        ``model.get_layer("restorer")`` (``[image, parameters]`` -> restored image), so the blur can be
        estimated once for a whole photo and the restoration run tile by tile with that estimate (what
        :class:`~blurkit.Deblurrer` does for large photos), or a restorer trained with estimates made on
        more context than its patch.

    Examples:
        >>> import numpy as np
        >>> model = wiener_unet(width=4, depth=1, estimator_width=4)
        >>> x = np.random.default_rng(0).random((1, 21, 18, 3), dtype="float32")
        >>> model.predict(x, verbose=0).shape
        (1, 21, 18, 3)
    """
    channels = _int_arg("channels", channels)
    width = _int_arg("width", width)
    depth = _int_arg("depth", depth, minimum=0)
    blocks = _int_arg("blocks", blocks, minimum=0)
    kernel_size = _int_arg("kernel_size", kernel_size)
    estimator_width = _int_arg("estimator_width", estimator_width)
    spectrum_bins = _int_arg("spectrum_bins", spectrum_bins, minimum=2)  # 8.9 was cut to 8 silently
    pad = _int_arg("pad", pad, minimum=0)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    if estimator_pool not in ("mean", "attention"):
        raise ValueError(f"estimator_pool must be 'mean' or 'attention', got {estimator_pool!r}")
    import keras

    from blurkit.models.layers import (
        CropToReference,
        GaussianWiener,
        PadToMultiple,
        RadialSpectrum,
        SoftmaxPool2D,
        TakeChannels,
    )

    inputs = keras.Input((None, None, channels), dtype="float32", name="blurred")
    # 1. estimator: full-resolution features (the blur lives in the finest detail), then stride-2 stages
    e = keras.layers.Conv2D(estimator_width, 3, padding="same", activation="relu", name="est_conv0")(inputs)
    for i in range(4):
        e = keras.layers.Conv2D(estimator_width * min(2 ** (i + 1), 4), 3, strides=2, padding="same",
                                activation="relu", name=f"est_conv{i + 1}")(e)
    if estimator_pool == "attention":
        logits = keras.layers.Conv2D(1, 1, kernel_initializer="zeros", name="est_attention")(e)
        e = SoftmaxPool2D(name="est_pool")([e, logits])
    else:
        e = keras.layers.GlobalAveragePooling2D(name="est_pool")(e)
    spectrum = RadialSpectrum(bins=spectrum_bins, name="est_spectrum")(inputs)
    e = keras.layers.Concatenate(name="est_features")([e, spectrum])
    e = keras.layers.Dense(4 * estimator_width, activation="relu", name="est_dense")(e)
    params = keras.layers.Dense(2, kernel_initializer="zeros", name="est_params")(e)
    estimator = keras.Model(inputs, params, name="estimator")

    # 2. Wiener deconvolution with the estimated Gaussian kernel, 3. residual U-Net refinement of it
    image = keras.Input((None, None, channels), dtype="float32", name="image")
    given = keras.Input((2,), dtype="float32", name="params")
    wiener = GaussianWiener(sigma_range=tuple(sigma_range), log_balance_range=tuple(log_balance_range),
                            pad=pad, scales=tuple(scales), name="wiener")([image, given])
    both = keras.layers.Concatenate(name="stack")([wiener, image])
    padded = PadToMultiple(2**depth, mode="reflect", name="pad")(both)
    x = unet_body(padded, width, depth, blocks, kernel_size)
    correction = keras.layers.Conv2D(channels, kernel_size, padding="same", kernel_initializer="zeros",
                                     bias_initializer="zeros", name="tail")(x)
    if len(scales) > 1:
        wiener = TakeChannels(channels, name="wiener_base")(wiener)
    base = PadToMultiple(2**depth, mode="reflect", name="pad_wiener")(wiener)
    restored = keras.layers.Add(name="refine")([base, correction])
    outputs = CropToReference(name="crop")([restored, image])
    restorer = keras.Model([image, given], outputs, name="restorer")
    return keras.Model(inputs, restorer([inputs, estimator(inputs)]), name="wiener_unet")

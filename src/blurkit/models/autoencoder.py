"""The convolutional autoencoder of the classic Keras deblurring tutorial.

A fixed-size encoder/decoder: strided convolutions down to a dense latent vector and transposed
convolutions back up, with a sigmoid output. It is the simplest baseline (no skip connections, so it blurs
fine detail) and works on one input size only; :class:`blurkit.Deblurrer` tiles larger images for it.

Keras is imported inside the builder, so importing this module (and listing the models) stays light.
"""

from __future__ import annotations

from collections.abc import Sequence

from blurkit.models._checks import channels_last
from blurkit.models._checks import int_arg as _positive_int
from blurkit.registry import register_model

__all__ = ["autoencoder"]


@register_model("autoencoder")
@channels_last()
def autoencoder(
    input_size: int = 128,
    channels: int = 3,
    filters: Sequence[int] = (64, 128, 256),
    kernel_size: int = 3,
    latent_dim: int = 256,
):
    """Build the tutorial's convolutional autoencoder.

    Layout (defaults in brackets): ``Input (128, 128, 3)`` → one ``Conv2D`` per entry of ``filters``
    [64, 128, 256] (stride 2, ReLU, same padding) → ``Flatten`` → ``Dense(latent_dim)`` [256, linear] →
    ``Dense(s * s * filters[-1])`` with ``s = input_size / 2**len(filters)`` [16 * 16 * 256] → ``Reshape`` →
    one ``Conv2DTranspose`` per entry of reversed ``filters`` (stride 2, ReLU) → ``Conv2DTranspose(channels)``
    (stride 1, sigmoid). The default model has exactly 34,951,683 parameters, almost all in the two dense
    layers.

    Args:
        input_size: Height and width of the (square) input; must be divisible by ``2**len(filters)``.
        channels: Image channels (3 for RGB, 1 for grayscale).
        filters: Encoder widths, one strided convolution each; the decoder mirrors them.
        kernel_size: Kernel size of every convolution.
        latent_dim: Size of the dense bottleneck vector.

    Returns:
        A functional ``keras.Model`` named ``"autoencoder"`` mapping float32 images in [0, 1] of shape
        ``(B, input_size, input_size, channels)`` to the same shape, in (0, 1) (sigmoid).

    Raises:
        ValueError: An argument is out of range or ``input_size`` is not divisible by ``2**len(filters)``.

    Examples:
        >>> model = autoencoder(input_size=16, channels=1, filters=(4, 8), latent_dim=8)
        >>> model.output_shape
        (None, 16, 16, 1)
        >>> model.count_params()
        3433
    """
    input_size = _positive_int("input_size", input_size)
    channels = _positive_int("channels", channels)
    kernel_size = _positive_int("kernel_size", kernel_size)
    latent_dim = _positive_int("latent_dim", latent_dim)
    if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence) or not filters:
        raise ValueError(f"filters must be a non-empty sequence of positive ints, got {filters!r}")
    filters = [_positive_int("filters[]", f) for f in filters]
    factor = 2 ** len(filters)
    if input_size % factor:
        raise ValueError(
            f"input_size={input_size} must be divisible by 2**len(filters)={factor} "
            f"(one stride-2 convolution per filter)"
        )

    import keras

    inputs = keras.Input((input_size, input_size, channels), dtype="float32", name="blurred")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(
            f, kernel_size, strides=2, activation="relu", padding="same", name=f"encoder_conv{i}"
        )(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(latent_dim, name="latent")(x)
    side = input_size // factor
    x = keras.layers.Dense(side * side * filters[-1], name="decoder_dense")(x)
    x = keras.layers.Reshape((side, side, filters[-1]), name="reshape")(x)
    for i, f in enumerate(reversed(filters)):
        x = keras.layers.Conv2DTranspose(
            f, kernel_size, strides=2, activation="relu", padding="same", name=f"decoder_deconv{i}"
        )(x)
    outputs = keras.layers.Conv2DTranspose(
        channels, kernel_size, activation="sigmoid", padding="same", name="output"
    )(x)
    return keras.Model(inputs, outputs, name="autoencoder")

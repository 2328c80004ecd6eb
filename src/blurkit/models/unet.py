"""A small residual U-Net for deblurring.

Fully convolutional (any input size): the builder pads the input by reflection to a multiple of
``2**depth`` with :class:`~blurkit.models.layers.PadToMultiple` and crops the output back with
:class:`~blurkit.models.layers.CropToReference`. The network predicts a correction that is added to the
blurred input (global residual); the last convolution starts at zero, so the untrained model is exactly the
identity, which makes training start from "return the input" and converge faster.

The output is not clipped inside the model (clipping would stop gradients for out-of-range pixels during
training); :class:`blurkit.Deblurrer` clips predictions to [0, 1].

Keras is imported inside the builder, so importing this module (and listing the models) stays light.
"""

from __future__ import annotations

from blurkit.models._checks import channels_last
from blurkit.models._checks import int_arg as _int_arg
from blurkit.registry import register_model

__all__ = ["unet"]


def _residual_block(x, filters: int, kernel_size: int, name: str):
    """``x + conv(relu(conv(x)))`` at constant width."""
    import keras

    y = keras.layers.Conv2D(filters, kernel_size, padding="same", activation="relu", name=f"{name}_conv1")(x)
    y = keras.layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_conv2")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def unet_body(x, width: int, depth: int, blocks: int, kernel_size: int):
    """The U-Net between its input and its output convolution (shared with ``wiener_unet``).

    ``Conv2D(width)`` head, ``depth`` encoder levels of ``blocks`` residual blocks each followed by a 2x2
    stride-2 convolution doubling the width, ``blocks`` residual blocks at the bottom, and ``depth`` decoder
    levels (2x2 stride-2 transposed convolution, additive skip, ``blocks`` residual blocks). Sides of ``x``
    must be multiples of ``2**depth``.
    """
    import keras

    x = keras.layers.Conv2D(width, kernel_size, padding="same", name="head")(x)
    skips = []
    for level in range(depth):
        for b in range(blocks):
            x = _residual_block(x, width * 2**level, kernel_size, name=f"enc{level}_block{b}")
        skips.append(x)
        x = keras.layers.Conv2D(width * 2 ** (level + 1), 2, strides=2, name=f"down{level}")(x)
    for b in range(blocks):
        x = _residual_block(x, width * 2**depth, kernel_size, name=f"middle_block{b}")
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(width * 2**level, 2, strides=2, name=f"up{level}")(x)
        x = keras.layers.Add(name=f"skip{level}")([x, skips[level]])
        for b in range(blocks):
            x = _residual_block(x, width * 2**level, kernel_size, name=f"dec{level}_block{b}")
    return x


@register_model("unet")
@channels_last()
def unet(channels: int = 3, width: int = 32, depth: int = 3, blocks: int = 2, kernel_size: int = 3):
    """Build a residual U-Net with a global residual connection.

    Layout: reflect-pad to a multiple of ``2**depth`` → ``Conv2D(width)`` head → for each of ``depth``
    encoder levels, ``blocks`` residual blocks (conv-ReLU-conv + identity skip) at ``width * 2**level``
    channels, then a 2x2 stride-2 convolution doubling the width → ``blocks`` residual blocks at the bottom →
    for each decoder level, a 2x2 stride-2 ``Conv2DTranspose`` halving the width, an additive skip from the
    encoder level, and ``blocks`` residual blocks → a zero-initialised ``Conv2D(channels)`` whose output is
    added to the padded input → crop back to the input size. No normalisation layers, so the model behaves
    the same on any batch size.

    Args:
        channels: Image channels (3 for RGB, 1 for grayscale).
        width: Channels at full resolution; level ``l`` has ``width * 2**l``.
        depth: Number of downsamplings (0 gives a plain residual CNN).
        blocks: Residual blocks per level (encoder, bottom and decoder alike).
        kernel_size: Kernel size of the head, residual-block and tail convolutions (odd).

    Returns:
        A functional ``keras.Model`` named ``"unet"`` with input ``(None, None, None, channels)`` (float32 in
        [0, 1]) and an output of the same shape; the output is not clipped. Inputs must be at least
        ``2**depth // 2 + 1`` pixels on each side (reflect padding).

    Raises:
        ValueError: An argument is out of range.

    Examples:
        >>> import numpy as np
        >>> model = unet(channels=1, width=4, depth=2, blocks=1)
        >>> model.count_params()
        8961
        >>> x = np.random.default_rng(0).random((1, 13, 21, 1), dtype="float32")
        >>> y = model.predict(x, verbose=0)
        >>> y.shape, bool(np.allclose(y, x))  # zero-initialised tail: the identity before training
        ((1, 13, 21, 1), True)
    """
    channels = _int_arg("channels", channels)
    width = _int_arg("width", width)
    depth = _int_arg("depth", depth, minimum=0)
    blocks = _int_arg("blocks", blocks, minimum=0)
    kernel_size = _int_arg("kernel_size", kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")

    import keras

    from blurkit.models.layers import CropToReference, PadToMultiple

    inputs = keras.Input((None, None, channels), dtype="float32", name="blurred")
    padded = PadToMultiple(2**depth, mode="reflect", name="pad")(inputs)
    x = unet_body(padded, width, depth, blocks, kernel_size)
    correction = keras.layers.Conv2D(
        channels,
        kernel_size,
        padding="same",
        kernel_initializer="zeros",
        bias_initializer="zeros",
        name="tail",
    )(x)
    restored = keras.layers.Add(name="global_residual")([padded, correction])
    outputs = CropToReference(name="crop")([restored, inputs])
    return keras.Model(inputs, outputs, name="unet")

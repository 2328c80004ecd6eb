"""NAFNet: a nonlinear-activation-free U-Net for image restoration.

After Chen, Chu, Zhang and Sun, "Simple Baselines for Image Restoration" (ECCV 2022). The building block
(``NAFBlock``) replaces activations by SimpleGate (split the channels, multiply the halves) and attention by
Simplified Channel Attention (global average pool → 1x1 conv → multiply). Each of its two residual
branches is scaled by a learnable per-channel factor that starts at zero, so every block starts as the
identity.

Differences from the reference PyTorch code, all deliberate: the last convolution is zero-initialised too,
so the untrained model is exactly the identity (as for :func:`blurkit.models.unet.unet`); no dropout; the
input is reflect-padded (not zero-padded) to a multiple of ``2**len(enc_blocks)``; PixelShuffle uses
TensorFlow's channel order. The output is not clipped inside the model; :class:`blurkit.Deblurrer` clips.

Keras is imported inside the builder, so importing this module (and listing the models) stays light.
"""

from __future__ import annotations

from collections.abc import Sequence

from blurkit.models._checks import channels_last
from blurkit.models._checks import int_arg as _int_arg
from blurkit.registry import register_model

__all__ = ["nafnet"]


def _int_list(name: str, value: object) -> list[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{name} must be a sequence of ints >= 0, got {value!r}")
    return [_int_arg(f"{name}[{i}]", v, minimum=0) for i, v in enumerate(value)]


def _naf_block(x, channels: int, name: str):
    """One NAFBlock at constant width ``channels``."""
    import keras

    from blurkit.models.layers import ChannelScale, SimpleGate

    layers = keras.layers
    # Spatial mixing branch.
    y = layers.LayerNormalization(axis=-1, epsilon=1e-6, name=f"{name}_norm1")(x)
    y = layers.Conv2D(2 * channels, 1, name=f"{name}_conv1")(y)
    y = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dwconv")(y)
    y = SimpleGate(name=f"{name}_gate1")(y)
    attention = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_sca_pool")(y)
    attention = layers.Conv2D(channels, 1, name=f"{name}_sca_conv")(attention)
    y = layers.Multiply(name=f"{name}_sca")([y, attention])
    y = layers.Conv2D(channels, 1, name=f"{name}_conv3")(y)
    y = ChannelScale(0.0, name=f"{name}_beta")(y)
    x = layers.Add(name=f"{name}_add1")([x, y])
    # Channel mixing (feed-forward) branch.
    y = layers.LayerNormalization(axis=-1, epsilon=1e-6, name=f"{name}_norm2")(x)
    y = layers.Conv2D(2 * channels, 1, name=f"{name}_conv4")(y)
    y = SimpleGate(name=f"{name}_gate2")(y)
    y = layers.Conv2D(channels, 1, name=f"{name}_conv5")(y)
    y = ChannelScale(0.0, name=f"{name}_gamma")(y)
    return layers.Add(name=f"{name}_add2")([x, y])


@register_model("nafnet")
@channels_last()
def nafnet(
    channels: int = 3,
    width: int = 16,
    enc_blocks: Sequence[int] = (1, 1, 2),
    middle_blocks: int = 2,
    dec_blocks: Sequence[int] = (1, 1, 1),
):
    """Build a NAFNet (Chen et al. 2022) sized for CPU use by default.

    Layout: reflect-pad to a multiple of ``2**len(enc_blocks)`` → 3x3 ``Conv2D(width)`` intro → for each
    encoder level ``i``, ``enc_blocks[i]`` NAFBlocks, then a 2x2 stride-2 convolution doubling the width →
    ``middle_blocks`` NAFBlocks → for each decoder level (deepest first), a 1x1 convolution doubling the
    channels and a 2x PixelShuffle (halving the width), an additive skip from the encoder, and
    ``dec_blocks[i]`` NAFBlocks (``dec_blocks[0]`` is the deepest level, as in the reference code) → a
    zero-initialised 3x3 ``Conv2D(channels)`` whose output is added to the padded input → crop back.

    NAFBlock: ``x + beta * conv1x1(SCA(SimpleGate(dwconv3x3(conv1x1_2x(LayerNorm(x))))))``, then
    ``x + gamma * conv1x1(SimpleGate(conv1x1_2x(LayerNorm(x))))``, with LayerNorm over channels (eps 1e-6),
    SCA = multiply by ``conv1x1(global_average_pool(.))``, and per-channel ``beta``, ``gamma`` initialised to
    0. There are no nonlinear activations.

    Args:
        channels: Image channels (3 for RGB, 1 for grayscale).
        width: Channels at full resolution; doubled at each encoder level.
        enc_blocks: NAFBlocks per encoder level; its length is the number of downsamplings.
        middle_blocks: NAFBlocks at the lowest resolution.
        dec_blocks: NAFBlocks per decoder level, deepest first; same length as ``enc_blocks``.

    Returns:
        A functional ``keras.Model`` named ``"nafnet"`` with input ``(None, None, None, channels)`` (float32 in
        [0, 1]) and an output of the same shape; the output is not clipped. Inputs must be at least
        ``2**len(enc_blocks) // 2 + 1`` pixels on each side (reflect padding).

    Raises:
        ValueError: An argument is out of range or ``dec_blocks`` and ``enc_blocks`` differ in length.

    Examples:
        >>> import numpy as np
        >>> model = nafnet(channels=1, width=4, enc_blocks=(1,), middle_blocks=1, dec_blocks=(1,))
        >>> model.count_params()
        1541
        >>> model.predict(np.zeros((1, 9, 15, 1), "float32"), verbose=0).shape
        (1, 9, 15, 1)
    """
    channels = _int_arg("channels", channels)
    width = _int_arg("width", width)
    middle_blocks = _int_arg("middle_blocks", middle_blocks, minimum=0)
    enc_blocks = _int_list("enc_blocks", enc_blocks)
    dec_blocks = _int_list("dec_blocks", dec_blocks)
    if len(enc_blocks) != len(dec_blocks):
        raise ValueError(
            f"enc_blocks and dec_blocks must have the same length (one entry per level), "
            f"got {len(enc_blocks)} and {len(dec_blocks)}"
        )

    import keras

    from blurkit.models.layers import CropToReference, PadToMultiple, PixelShuffle

    levels = len(enc_blocks)
    inputs = keras.Input((None, None, channels), dtype="float32", name="blurred")
    padded = PadToMultiple(2**levels, mode="reflect", name="pad")(inputs)
    x = keras.layers.Conv2D(width, 3, padding="same", name="intro")(padded)
    skips = []
    chan = width
    for level, n in enumerate(enc_blocks):
        for b in range(n):
            x = _naf_block(x, chan, name=f"enc{level}_block{b}")
        skips.append(x)
        x = keras.layers.Conv2D(2 * chan, 2, strides=2, name=f"down{level}")(x)
        chan *= 2
    for b in range(middle_blocks):
        x = _naf_block(x, chan, name=f"middle_block{b}")
    for i, n in enumerate(dec_blocks):
        level = levels - 1 - i
        x = keras.layers.Conv2D(2 * chan, 1, use_bias=False, name=f"up{level}_conv")(x)
        x = PixelShuffle(2, name=f"up{level}_shuffle")(x)
        chan //= 2
        x = keras.layers.Add(name=f"skip{level}")([x, skips[level]])
        for b in range(n):
            x = _naf_block(x, chan, name=f"dec{level}_block{b}")
    correction = keras.layers.Conv2D(
        channels,
        3,
        padding="same",
        kernel_initializer="zeros",
        bias_initializer="zeros",
        name="ending",
    )(x)
    restored = keras.layers.Add(name="global_residual")([padded, correction])
    outputs = CropToReference(name="crop")([restored, inputs])
    return keras.Model(inputs, outputs, name="nafnet")

"""Custom Keras layers used by blurkit's model builders.

Every layer here is registered under ``package="blurkit"`` and returns all of its init arguments from
``get_config()``, so models that use them save to ``.keras`` and load with ``safe_mode=True`` (blurkit never
uses ``Lambda`` layers). All of them are channels-last and backend-agnostic (``keras.ops`` only).

This module imports Keras at import time; the model modules import it inside their builder functions so
that listing the registered models does not import TensorFlow.

FLOPs: none of these layers multiplies by a weight matrix, so :func:`blurkit.models.flops.flops_per_pixel`
counts them as zero (elementwise work is ignored). A plugin layer can report its own count by defining
``compute_flops(input_shapes, output_shapes) -> float``.

Examples:
    >>> import numpy as np
    >>> from blurkit.models.layers import CropToReference, PadToMultiple
    >>> x = np.zeros((1, 5, 7, 3), "float32")
    >>> padded = PadToMultiple(4)(x)
    >>> tuple(padded.shape)
    (1, 8, 8, 3)
    >>> tuple(CropToReference()([padded, x]).shape)
    (1, 5, 7, 3)
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["PadToMultiple", "CropToReference", "SimpleGate", "ChannelScale", "PixelShuffle"]

_PAD_MODES = ("reflect", "symmetric", "constant")


def _round_up(size: int | None, multiple: int) -> int | None:
    return None if size is None else -(-size // multiple) * multiple


@keras.saving.register_keras_serializable(package="blurkit")
class PadToMultiple(keras.layers.Layer):
    """Pad the bottom and right edges so height and width become multiples of ``multiple``.

    Used before a U-Net-like encoder whose ``n`` downsamplings need sides divisible by ``2**n``; pair it
    with :class:`CropToReference` to cut the output back to the input's size.

    Args:
        multiple: The side lengths are rounded up to a multiple of this.
        mode: ``"reflect"`` (default; needs each side longer than its padding, i.e. sides of at least
            ``multiple // 2 + 1`` pixels are always safe), ``"symmetric"`` or ``"constant"`` (zeros).
        **kwargs: Standard layer arguments (``name``, ``dtype``...).
    """

    def __init__(self, multiple: int = 8, mode: str = "reflect", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(multiple, int) or isinstance(multiple, bool) or multiple < 1:
            raise ValueError(f"multiple must be a positive int, got {multiple!r}")
        if mode not in _PAD_MODES:
            raise ValueError(f"mode must be one of {_PAD_MODES}, got {mode!r}")
        self.multiple = multiple
        self.mode = mode

    def call(self, inputs):
        if self.multiple == 1:
            return inputs
        shape = ops.shape(inputs)
        pad_h = (self.multiple - shape[1] % self.multiple) % self.multiple
        pad_w = (self.multiple - shape[2] % self.multiple) % self.multiple
        return ops.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode=self.mode)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, _round_up(h, self.multiple), _round_up(w, self.multiple), c)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multiple": self.multiple, "mode": self.mode}


@keras.saving.register_keras_serializable(package="blurkit")
class CropToReference(keras.layers.Layer):
    """Crop ``inputs[0]`` to the height and width of ``inputs[1]`` (keeping the top-left corner).

    The inverse of :class:`PadToMultiple`. Called on a list ``[tensor, reference]``.

    Args:
        **kwargs: Standard layer arguments.
    """

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shape):
        x_shape, ref_shape = input_shape
        return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])


@keras.saving.register_keras_serializable(package="blurkit")
class SimpleGate(keras.layers.Layer):
    """NAFNet's SimpleGate: split the channels in two halves and multiply them (``C -> C / 2``).

    Args:
        **kwargs: Standard layer arguments.
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and channels % 2:
            raise ValueError(f"SimpleGate needs an even number of channels, got {channels}")

    def call(self, inputs):
        a, b = ops.split(inputs, 2, axis=-1)
        return a * b

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1]
        return (*input_shape[:-1], None if channels is None else channels // 2)


@keras.saving.register_keras_serializable(package="blurkit")
class ChannelScale(keras.layers.Layer):
    """Multiply by a learnable per-channel scale (NAFNet's ``beta`` / ``gamma``, "LayerScale").

    With the default ``init_value=0`` a residual branch ``x + ChannelScale()(f(x))`` starts as the identity.

    Args:
        init_value: Initial value of every scale.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, init_value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_value = float(init_value)

    def build(self, input_shape):
        self.scale = self.add_weight(
            name="scale",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init_value),
            trainable=True,
        )

    def call(self, inputs):
        return inputs * ops.cast(self.scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "init_value": self.init_value}


@keras.saving.register_keras_serializable(package="blurkit")
class PixelShuffle(keras.layers.Layer):
    """Depth-to-space upsampling: ``(B, H, W, C * r * r) -> (B, H * r, W * r, C)``.

    Uses ``keras.ops.depth_to_space`` (TensorFlow's channel order, which differs from PyTorch's
    ``nn.PixelShuffle``; it only matters when porting PyTorch weights).

    Args:
        block_size: The upsampling factor ``r``.
        **kwargs: Standard layer arguments.
    """

    def __init__(self, block_size: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
            raise ValueError(f"block_size must be a positive int, got {block_size!r}")
        self.block_size = block_size

    def call(self, inputs):
        return ops.depth_to_space(inputs, self.block_size)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        r = self.block_size
        if c is not None and c % (r * r):
            raise ValueError(f"PixelShuffle({r}) needs channels divisible by {r * r}, got {c}")
        return (
            b,
            None if h is None else h * r,
            None if w is None else w * r,
            None if c is None else c // (r * r),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "block_size": self.block_size}

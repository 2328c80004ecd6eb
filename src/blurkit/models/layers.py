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

import numbers
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = ["PadToMultiple", "CropToReference", "SimpleGate", "ChannelScale", "PixelShuffle", "GaussianWiener", "RadialSpectrum", "TakeChannels", "SoftmaxPool2D"]

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
        if not isinstance(multiple, numbers.Integral) or isinstance(multiple, bool) or not 1 <= multiple <= 1024:
            raise ValueError(f"multiple must be an int from 1 to 1024, got {multiple!r}")
        if mode not in _PAD_MODES:
            raise ValueError(f"mode must be one of {_PAD_MODES}, got {mode!r}")
        self.multiple: int = int(multiple)
        self.mode: str = mode

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


@keras.saving.register_keras_serializable(package="blurkit")
class GaussianWiener(keras.layers.Layer):
    """Wiener deconvolution of a Gaussian blur whose sigma and balance are inputs (differentiable).

    Inputs ``[image, params]``: ``image`` (B, H, W, C) and ``params`` (B, 2) raw values that are mapped to
    ``sigma = lo + (hi - lo) * sigmoid(params[:, 0])`` and ``log10(balance) = lo + (hi - lo) *
    sigmoid(params[:, 1])`` within ``sigma_range`` and ``log_balance_range``. The image is reflect-padded by
    ``pad`` pixels (at most its size minus one), deconvolved in the Fourier domain with
    ``conj(K) / (|K|^2 + balance |L|^2)`` where ``L`` is the 5-point Laplacian (scikit-image's ``wiener``
    regulariser), and cropped back.

    The kernel is blurkit's Gaussian: sampled ``exp(-x^2 / 2 sigma^2)`` on ``|x| <= ceil(3 sigma)``,
    normalised, separable. Its transfer function is computed analytically for the padded size
    (``K(f) = w(0) + 2 sum_x w(x) cos(2 pi f x / N)``), so any image size works and the result is exactly
    the circular deconvolution of the padded image.

    Args:
        sigma_range: Range of the sigma the layer can produce.
        log_balance_range: Range of log10 of the Wiener balance (noise-to-signal ratio).
        pad: Reflect padding before the FFT (reduces the circular-boundary ringing).
        scales: Sigma hypotheses, as multiples of the estimated sigma: one deconvolution each, stacked
            along the channels (``C * len(scales)`` output channels, the first scale's first). Several
            hypotheses make a model robust to errors of the sigma estimate.
        **kwargs: Standard layer arguments.

    Examples:
        >>> import numpy as np
        >>> layer = GaussianWiener()
        >>> y = layer([np.zeros((1, 20, 30, 3), "float32"), np.zeros((1, 2), "float32")])
        >>> tuple(y.shape)
        (1, 20, 30, 3)
    """

    def __init__(
        self,
        sigma_range: Sequence[float] = (0.3, 3.5),
        log_balance_range: Sequence[float] = (-6.0, -1.0),
        pad: int = 64,
        scales: Sequence[float] = (1.0,),
        **kwargs: Any,
    ) -> None:
        # float32 whatever the global policy: FFTs and the Wiener filter's division near the transfer function's
        # zeros in float16 fail (the float32 frequency grids meet float16 images) and would lose the detail
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        scales = tuple(float(v) for v in scales)
        if not scales or min(scales) <= 0:
            raise ValueError(f"scales must be positive sigma multipliers, got {scales!r}")
        self.scales = scales
        lo, hi = (float(v) for v in sigma_range)
        if not 0 < lo < hi:
            raise ValueError(f"sigma_range must satisfy 0 < low < high, got {sigma_range!r}")
        blo, bhi = (float(v) for v in log_balance_range)
        if not blo < bhi:
            raise ValueError(f"log_balance_range must satisfy low < high, got {log_balance_range!r}")
        if not isinstance(pad, numbers.Integral) or isinstance(pad, bool) or not 0 <= pad <= 1024:
            raise ValueError(f"pad must be an int from 0 to 1024, got {pad!r}")
        self.sigma_range: tuple[float, float] = (lo, hi)
        self.log_balance_range: tuple[float, float] = (blo, bhi)
        self.pad: int = int(pad)
        self.radius: int = int(np.ceil(3 * hi))

    def blur_parameters(self, params):
        """The ``(sigma, balance)`` (each of shape (B,)) that raw ``params`` (B, 2) stand for (see above)."""
        lo, hi = self.sigma_range
        blo, bhi = self.log_balance_range
        return (lo + (hi - lo) * ops.sigmoid(params[:, 0]),
                ops.power(10.0, blo + (bhi - blo) * ops.sigmoid(params[:, 1])))

    def raw_sigma(self, sigma: float) -> float:
        """The raw sigma parameter that :meth:`blur_parameters` maps to ``sigma`` (the inverse of its sigmoid
        onto ``sigma_range``; sigmas at or beyond the range's ends give its ends, to within 1e-6 of it)."""
        lo, hi = self.sigma_range
        t = min(max((float(sigma) - lo) / (hi - lo), 1e-6), 1 - 1e-6)
        return float(np.log(t / (1 - t)))

    def _transfer(self, sigma, n):
        """Real transfer function (B, n) of the 1-D kernel of each image's sigma for a length-n DFT."""
        x = ops.arange(self.radius + 1, dtype="float32")  # 0..R
        s = ops.expand_dims(sigma, -1)
        w = ops.exp(-(x**2) / (2.0 * s**2)) * ops.cast(x <= ops.ceil(3.0 * s), "float32")
        w = w / (2.0 * ops.sum(w, axis=-1, keepdims=True) - w[:, :1])  # normalise the symmetric kernel
        f = ops.arange(n, dtype="float32")
        phase = 2.0 * np.pi * ops.expand_dims(f, -1) * ops.expand_dims(x, 0) / ops.cast(n, "float32")  # (n, R+1)
        coef = ops.concatenate([w[:, :1], 2.0 * w[:, 1:]], axis=-1)  # (B, R+1)
        # a sum of products, not a matmul: backends may run float32 matmuls at reduced precision (TF32 on
        # GPUs), and near the transfer function's zeros the Wiener filter is sensitive to its error
        return ops.sum(ops.expand_dims(coef, 1) * ops.expand_dims(ops.cos(phase), 0), axis=-1)  # (B, n)

    def call(self, inputs):
        image, params = inputs
        shape = ops.shape(image)
        h, w = shape[1], shape[2]
        # Python ints where the shape is static (JAX needs static pad widths), tensors where it is not (TF)
        ph = min(self.pad, h - 1) if isinstance(h, int) else ops.minimum(self.pad, h - 1)
        pw = min(self.pad, w - 1) if isinstance(w, int) else ops.minimum(self.pad, w - 1)
        x = ops.pad(image, [[0, 0], [ph, ph], [pw, pw], [0, 0]], mode="reflect")
        hp, wp = h + 2 * ph, w + 2 * pw
        lo, hi = self.sigma_range
        sigma, balance = self.blur_parameters(params)
        # Laplacian regulariser, as scikit-image's wiener: |L|^2 with L the 5-point Laplacian's transfer
        ly = 2.0 - 2.0 * ops.cos(2.0 * np.pi * ops.arange(hp, dtype="float32") / ops.cast(hp, "float32"))
        lx = 2.0 - 2.0 * ops.cos(2.0 * np.pi * ops.arange(wp, dtype="float32") / ops.cast(wp, "float32"))
        lap = ops.expand_dims(ly, -1) + ops.expand_dims(lx, 0)  # (Hp, Wp)
        reg = ops.reshape(balance, (-1, 1, 1)) * lap * lap
        xc = ops.transpose(x, (0, 3, 1, 2))  # (B, C, Hp, Wp)
        re, im = ops.fft2((xc, ops.zeros_like(xc)))
        outs = []
        for scale in self.scales:  # one deconvolution per sigma hypothesis
            s = ops.clip(sigma * scale, lo, hi)
            k = ops.expand_dims(self._transfer(s, hp), -1) * ops.expand_dims(self._transfer(s, wp), 1)
            g = ops.expand_dims(k / (k * k + reg), 1)  # (B, 1, Hp, Wp)
            y, _ = ops.ifft2((re * g, im * g))
            outs.append(y)
        out = ops.transpose(ops.concatenate(outs, axis=1), (0, 2, 3, 1))
        return out[:, ph : ph + h, pw : pw + w, :]

    def compute_output_shape(self, input_shapes):
        b, h, w, c = input_shapes[0]
        return (b, h, w, None if c is None else c * len(self.scales))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "sigma_range": list(self.sigma_range),
            "log_balance_range": list(self.log_balance_range),
            "pad": self.pad,
            "scales": list(self.scales),
        }


@keras.saving.register_keras_serializable(package="blurkit")
class RadialSpectrum(keras.layers.Layer):
    """Radially averaged log power spectrum of each image: a blur-level descriptor, ``(B, H, W, C) -> (B, bins)``.

    The image is averaged over channels, its mean removed, a separable Hann window applied (to keep the
    image border from leaking power into high frequencies), then ``log(power + eps)`` is averaged in
    ``bins`` rings of radial frequency (0 to Nyquist) and the first ring's value subtracted (so the
    descriptor does not depend on contrast). A Gaussian blur of sigma multiplies the power by
    ``exp(-4 pi^2 sigma^2 f^2)``, and natural photos have power close to ``f**-alpha``, so the rings carry
    sigma almost linearly: a small dense head reads it off.

    Args:
        bins: Number of frequency rings.
        eps: Added to the power before the logarithm (about the 8-bit quantization noise floor).
        **kwargs: Standard layer arguments.

    Examples:
        >>> import numpy as np
        >>> tuple(RadialSpectrum(bins=8)(np.random.default_rng(0).random((2, 32, 40, 3), dtype="float32")).shape)
        (2, 8)
    """

    def __init__(self, bins: int = 16, eps: float = 1e-7, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # an FFT of the image: float32 under a mixed-precision policy too
        super().__init__(**kwargs)
        if not isinstance(bins, numbers.Integral) or isinstance(bins, bool) or not 2 <= bins <= 1024:
            raise ValueError(f"bins must be an int from 2 to 1024, got {bins!r}")
        self.bins: int = int(bins)
        self.eps: float = float(eps)

    def call(self, inputs):
        shape = ops.shape(inputs)
        h, w = shape[1], shape[2]
        gray = ops.mean(inputs, axis=-1)
        gray = gray - ops.mean(gray, axis=(1, 2), keepdims=True)
        hf, wf = ops.cast(h, "float32"), ops.cast(w, "float32")
        wy = 0.5 - 0.5 * ops.cos(2.0 * np.pi * (ops.arange(h, dtype="float32") + 0.5) / hf)
        wx = 0.5 - 0.5 * ops.cos(2.0 * np.pi * (ops.arange(w, dtype="float32") + 0.5) / wf)
        x = gray * ops.expand_dims(wy, -1) * ops.expand_dims(wx, 0)
        re, im = ops.fft2((x, ops.zeros_like(x)))
        logp = ops.log(re * re + im * im + self.eps * hf * wf)  # (B, H, W)
        fy = ops.arange(h, dtype="float32") / hf
        fy = ops.minimum(fy, 1.0 - fy)
        fx = ops.arange(w, dtype="float32") / wf
        fx = ops.minimum(fx, 1.0 - fx)
        r = ops.sqrt(ops.expand_dims(fy, -1) ** 2 + ops.expand_dims(fx, 0) ** 2) / 0.5  # 1.0 = Nyquist
        ring = ops.cast(ops.minimum(ops.floor(r * self.bins), self.bins - 1), "int32")  # corners -> last ring
        ring = ops.reshape(ring, (-1,))
        values = ops.transpose(ops.reshape(logp, (shape[0], -1)))  # (H*W, B)
        sums = ops.segment_sum(values, ring, num_segments=self.bins)  # (bins, B)
        counts = ops.segment_sum(ops.ones_like(ring, dtype="float32"), ring, num_segments=self.bins)
        mean = ops.transpose(sums / ops.maximum(ops.expand_dims(counts, -1), 1.0))  # (B, bins)
        return mean - mean[:, :1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.bins)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "bins": self.bins, "eps": self.eps}


@keras.saving.register_keras_serializable(package="blurkit")
class TakeChannels(keras.layers.Layer):
    """The first ``count`` channels of a tensor (a safe-mode-friendly slice).

    Args:
        count: Number of leading channels to keep.
        **kwargs: Standard layer arguments.

    Examples:
        >>> import numpy as np
        >>> tuple(TakeChannels(3)(np.zeros((1, 4, 4, 9), "float32")).shape)
        (1, 4, 4, 3)
    """

    def __init__(self, count: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        self.count = count

    def call(self, inputs):
        return inputs[..., : self.count]

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.count)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "count": self.count}


@keras.saving.register_keras_serializable(package="blurkit")
class SoftmaxPool2D(keras.layers.Layer):
    """Attention pooling: ``[features (B, H, W, C), logits (B, H, W, 1)] -> (B, C)``.

    The features are averaged over the image with weights ``softmax(logits)`` taken over all ``H * W``
    positions, so a network can learn which parts of an image to read a global quantity off (e.g. the blur
    from the textured regions, not the smooth sky). With all logits equal (e.g. a zero-initialised logit
    convolution) it is exactly global average pooling.

    Args:
        **kwargs: Standard layer arguments.

    Examples:
        >>> import numpy as np
        >>> f = np.arange(8, dtype="float32").reshape(1, 2, 2, 2)
        >>> np.asarray(SoftmaxPool2D()([f, np.zeros((1, 2, 2, 1), "float32")])).tolist()
        [[3.0, 4.0]]
    """

    def call(self, inputs):
        features, logits = inputs
        shape = ops.shape(logits)
        weights = ops.reshape(ops.softmax(ops.reshape(logits, (shape[0], -1)), axis=-1), shape)
        return ops.sum(features * weights, axis=(1, 2))

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], input_shapes[0][-1])

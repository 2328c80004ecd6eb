"""Image-quality metrics for NumPy arrays and TensorFlow tensors.

A metric is a function ``(y_true, y_pred) -> float``. The built-ins (``mse``, ``psnr``, ``ssim``,
``accuracy``, ``channel_accuracy``, and the luma ``psnr_y`` and ``ssim_y`` of papers' tables) are registered
in :data:`blurkit.METRICS`; a plugin metric is any function with the same signature and conventions.

Conventions (every number blurkit reports uses them):

* **Scale.** Integer images are divided by their dtype's maximum (``uint8`` by 255, ``uint16`` by 65535);
  float images are taken as already in ``[0, 1]`` (they are not clipped or rescaled). The data range is
  therefore always 1, and a ``uint8`` image gives exactly the same value as ``image / 255``.
* **Shapes.** ``(H, W)`` grayscale, ``(H, W, C)`` colour, ``(N, H, W, C)`` batch. A batch gives the mean
  over images of the per-image value (so PSNR of a batch is the mean PSNR, not the PSNR of the mean
  squared error). Both images must have the same shape, else ``ValueError`` naming both shapes.
* **Colour.** PSNR is computed over all pixels and channels of the RGB image (no conversion to Y). SSIM is
  computed per channel and averaged (scikit-image convention). ``psnr_y`` is BasicSR's ``test_y_channel``
  PSNR: on the luma of ITU-R BT.601 (Y of YCbCr, 16-235), which super-resolution papers report (deblurring
  tables such as NAFNet's GoPro numbers are RGB PSNR, ``psnr``); it is higher than RGB PSNR (by 1.7 dB for the default preset on the val photos at sigma 2).
  ``ssim_y`` is the matching SSIM (BasicSR's ``calculate_ssim`` with ``test_y_channel``).
* **SSIM.** Wang et al. (2004) with the scikit-image settings ``gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1``: an 11x11 Gaussian window (sigma 1.5 truncated at 3.5
  sigma), ``K1=0.01``, ``K2=0.03``, population covariance, and the mean taken over the region where the
  window fits inside the image (a 5-pixel border is cropped, as scikit-image does). Images must be at
  least 11x11.

The NumPy implementations return a Python ``float`` and use float64; they take anything NumPy reads as an
array (arrays, lists, PIL images). Each built-in also accepts TensorFlow and Keras tensors: it then runs its
tensor implementation, exposed as ``fn.keras_fn``, which returns a scalar float32 tensor and can be used
inside ``model.compile(metrics=[...])`` and XLA-compiled steps. The tensor implementations expect float
images in ``[0, 1]`` and do not check them (a graph cannot raise on values; integer tensors are scaled like
NumPy ones): score a tensor's ``.numpy()`` for the checks. They treat a rank-3 tensor as one
``(H, W, C)`` image. The tensor SSIM uses the same window and the same valid region as scikit-image, so
it differs from the NumPy value only by float32 rounding (about 1e-6).

Each built-in also carries ``best`` (its value for identical images), ``higher_is_better`` and
``symmetric`` attributes, which :func:`blurkit.testing.check_metric` reads.

Examples:
    >>> import numpy as np
    >>> from blurkit.metrics.functional import mse, psnr, ssim
    >>> a = np.zeros((16, 16), np.uint8)
    >>> b = np.full((16, 16), 51, np.uint8)  # 0.2 after scaling
    >>> round(mse(a, b), 6)
    0.04
    >>> round(psnr(a, b), 4)
    13.9794
    >>> psnr(a, a)
    inf
    >>> ssim(b, b)
    1.0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from blurkit.registry import register_metric

_F = TypeVar("_F", bound=Callable[..., Any])

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
    "SIGMA",
    "TRUNCATE",
    "WIN_SIZE",
    "K1",
    "K2",
]

SIGMA = 1.5
"""Standard deviation of the SSIM Gaussian window."""
TRUNCATE = 3.5
"""The SSIM window is truncated at ``TRUNCATE * SIGMA`` (scikit-image's value)."""
RADIUS = int(TRUNCATE * SIGMA + 0.5)  # 5, as in scipy.ndimage.gaussian_filter
WIN_SIZE = 2 * RADIUS + 1
"""Side of the SSIM window: 11."""
K1 = 0.01
K2 = 0.03
ACC_SLACK = 1e-6  # absorbs float rounding in |a - b| <= tol (far below 1/65535)
FLOAT_LOW, FLOAT_HIGH = -0.5, 1.5
"""Float images are taken as [0, 1]: values below ``FLOAT_LOW`` or above ``FLOAT_HIGH`` (a [0, 255] image, say)
are refused by the metrics, ``fit``, ``evaluate`` and ``write_image`` (overshoot within them is allowed)."""


# -- helpers ----------------------------------------------------------------------------------------
def is_numpy(x: Any) -> bool:
    """True for anything but a TensorFlow or Keras tensor or variable (the NumPy path): NumPy arrays and
    scalars, lists, Python numbers, PIL images (a PIL image went down the tensor path: a tensor came back
    instead of a float, and its values were not checked)."""
    return not type(x).__module__.startswith(("tensorflow", "keras", "tf_keras"))


_INT_MESSAGE = (
    "integer images must be uint8 (0..255) or uint16 (0..65535), got {dtype}: its scale is ambiguous (a Python "
    "list of ints is int64, whose maximum is 2**63 - 1); convert it, e.g. np.asarray(x, np.uint8), or pass "
    "floats in [0, 1]"
)


def check_unit_float(a: np.ndarray, what: str = "") -> None:
    """Refuse float images far outside [0, 1] (below -0.5 or above 1.5: overshoot allowed, as
    ``Deblurrer.predict`` allows it; a [0, 255] image is not) and NaN or infinite values; ``what`` (an
    argument's name) starts the message. The metrics' rule, and ``Deblurrer.fit`` / ``evaluate``'s for arrays.
    """
    if not a.size:
        return
    lo, hi = float(a.min()), float(a.max())
    prefix = f"{what}: " if what else ""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{prefix}images contain NaN or infinite values")
    if lo < FLOAT_LOW or hi > FLOAT_HIGH:
        raise ValueError(f"{prefix}float images are taken as [0, 1] (data range 1), got values {lo:g}..{hi:g}: "
                         "divide a [0, 255] image by 255 (or pass it as uint8)")


def _to_float(x: Any, copy: bool = True) -> np.ndarray:
    """``x`` as float64 in blurkit's scale; without ``copy``, a float64 array is returned as it is."""
    a = np.asarray(x)
    if a.dtype == bool:
        return a.astype(np.float64)
    if a.dtype in (np.uint8, np.uint16):
        out = a.astype(np.float64)
        out /= np.iinfo(a.dtype).max  # in place: one image-sized array, not two
        return out
    if np.issubdtype(a.dtype, np.integer):
        raise TypeError(_INT_MESSAGE.format(dtype=a.dtype))
    if np.issubdtype(a.dtype, np.floating):
        check_unit_float(a)
        return a.astype(np.float64, copy=copy)
    raise TypeError(f"expected a numeric image, got dtype {a.dtype}")


def prepare(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate two images and return them as float64 arrays in blurkit's scale.

    Plugin metrics can start with this call to follow blurkit's conventions.

    Args:
        y_true: Reference image, ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``: float (taken as [0, 1]),
            uint8, uint16 or bool.
        y_pred: Restored image of the same shape.

    Returns:
        ``(y_true, y_pred)`` as float64; uint8 / uint16 images divided by 255 / 65535.

    Raises:
        ValueError: The shapes differ or the rank is not 2, 3 or 4; a rank-3 array with more than 4 values on
            its last axis (a stack of grey images ``(N, H, W)``, which would be scored as one image of N x H
            pixels with W channels: pass ``(N, H, W, 1)``; an image with more channels: ``(1, H, W, C)``); a
            float image with values far outside
            [0, 1] (below -0.5 or above 1.5: a [0, 255] image, say, which would score about -42 dB) or
            NaN / infinite ones.
        TypeError: Another integer dtype (int64, from a list of ints, say: its scale is ambiguous) or a
            non-numeric one.

    Examples:
        >>> import numpy as np
        >>> t, p = prepare(np.array([[0, 255]], np.uint8), np.array([[0.0, 0.5]]))
        >>> t.tolist(), p.tolist()
        ([[0.0, 1.0]], [[0.0, 0.5]])
        >>> prepare(np.zeros((4, 4)), np.zeros((4, 5)))
        Traceback (most recent call last):
        ...
        ValueError: y_true and y_pred must have the same shape, got (4, 4) and (4, 5)
    """
    return _prepare(y_true, y_pred)


def _prepare(y_true: Any, y_pred: Any, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """:func:`prepare`; without ``copy``, float64 inputs are returned as they are (the built-in metrics, which
    only read them: a copy of each was two image-sized arrays more)."""
    t, p = _to_float(y_true, copy), _to_float(y_pred, copy)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {t.shape} and {p.shape}")
    if t.ndim not in (2, 3, 4):
        raise ValueError(f"expected an image (H, W), (H, W, C) or a batch (N, H, W, C), got shape {t.shape}")
    if t.ndim == 3 and t.shape[-1] > 4:
        raise ValueError(f"shape {t.shape}: an (H, W, C) image has at most 4 channels; for a stack of grey images "
                         "pass (N, H, W, 1) (x[..., None]), for an image with more channels (1, H, W, C)")
    if not t.size:
        raise ValueError(f"empty images (shape {t.shape}): nothing to score")
    return t, p


def _image_axes(a: np.ndarray) -> tuple[int, ...]:
    """Axes of one image: everything but the batch axis of a rank-4 array."""
    return tuple(range(1, a.ndim)) if a.ndim == 4 else tuple(range(a.ndim))


def _meta(keras_fn: Callable, best: float, higher_is_better: bool, symmetric: bool = True
          ) -> Callable[[_F], _F]:
    def deco(fn: _F) -> _F:
        marked: Any = fn  # a function with attributes
        marked.keras_fn = keras_fn
        marked.best = best
        marked.higher_is_better = higher_is_better
        marked.symmetric = symmetric
        return fn

    return deco


def _gauss_1d() -> np.ndarray:
    """The normalised 11-tap Gaussian of scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5)."""
    x = np.arange(-RADIUS, RADIUS + 1, dtype=np.float64)
    g = np.exp(-0.5 * x**2 / SIGMA**2)
    return g / g.sum()


# -- tensor implementations --------------------------------------------------------------------------
def _tensor_pair(y_true: Any, y_pred: Any):
    """Both inputs as float32 ``(N, H, W, C)`` tensors in [0, 1], shapes checked where known."""
    import tensorflow as tf

    def to_float(x):
        x = tf.convert_to_tensor(x)
        if x.dtype in (tf.uint8, tf.uint16):
            return tf.cast(x, tf.float32) / float(x.dtype.max)
        if x.dtype.is_integer:
            raise TypeError(_INT_MESSAGE.format(dtype=x.dtype.name))
        if x.dtype == tf.bool:
            return tf.cast(x, tf.float32)
        return tf.cast(x, tf.float32)

    t, p = to_float(y_true), to_float(y_pred)
    if not t.shape.is_compatible_with(p.shape):
        raise ValueError(
            f"y_true and y_pred must have the same shape, got {tuple(t.shape)} and {tuple(p.shape)}"
        )
    rank = p.shape.rank if p.shape.rank is not None else t.shape.rank
    if rank == 2:
        t, p = t[None, :, :, None], p[None, :, :, None]
    elif rank == 3:
        t, p = t[None], p[None]
    elif rank != 4:
        raise ValueError(
            f"expected an image (H, W), (H, W, C) or a batch (N, H, W, C), got shape {tuple(p.shape)}"
        )
    return t, p


def _mse_tf(y_true: Any, y_pred: Any):
    import tensorflow as tf

    t, p = _tensor_pair(y_true, y_pred)
    return tf.reduce_mean(tf.square(t - p))


def _psnr_of_tf(d: Any):
    """The mean over a ``(N, H, W, C)`` batch of differences of each image's PSNR (data range 1)."""
    import tensorflow as tf

    err = tf.reduce_mean(tf.square(d), axis=[1, 2, 3])
    per_image = -10.0 * tf.math.log(err) / math.log(10.0)  # inf where err == 0
    return tf.reduce_mean(per_image)


def _psnr_tf(y_true: Any, y_pred: Any):
    t, p = _tensor_pair(y_true, y_pred)
    return _psnr_of_tf(t - p)


def _ssim_tf(y_true: Any, y_pred: Any):
    import tensorflow as tf

    t, p = _tensor_pair(y_true, y_pred)
    known = [d for d in (t.shape[1], t.shape[2], p.shape[1], p.shape[2]) if d is not None]
    if known and min(known) < WIN_SIZE:  # as the NumPy ssim (unknown sizes: TensorFlow's error at run time)
        raise ValueError(f"ssim needs images of at least {WIN_SIZE}x{WIN_SIZE} pixels, got shape "
                         f"{tuple(p.shape)}")
    shape = tf.shape(t)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]

    def planes(x):  # (N, H, W, C) -> (N * C, H, W, 1): one plane per channel
        return tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [-1, h, w, 1])

    x, y = planes(t), planes(p)
    stack = tf.concat([x, y, x * x, y * y, x * y], axis=-1)
    g = tf.constant(_gauss_1d(), tf.float32)
    kv = tf.tile(tf.reshape(g, [WIN_SIZE, 1, 1, 1]), [1, 1, 5, 1])
    kh = tf.tile(tf.reshape(g, [1, WIN_SIZE, 1, 1]), [1, 1, 5, 1])
    # VALID separable filtering == scikit-image's reflect-padded filter followed by its 5-pixel crop.
    f = tf.nn.depthwise_conv2d(stack, kv, [1, 1, 1, 1], "VALID")
    f = tf.nn.depthwise_conv2d(f, kh, [1, 1, 1, 1], "VALID")
    ux, uy, uxx, uyy, uxy = tf.unstack(f, axis=-1)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = K1**2, K2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    per_plane = tf.reduce_mean(s, axis=[1, 2])
    per_image = tf.reduce_mean(tf.reshape(per_plane, [n, c]), axis=1)
    return tf.reduce_mean(per_image)


def _accuracy_tf(y_true: Any, y_pred: Any, tol: float = 2 / 255):
    import tensorflow as tf

    t, p = _tensor_pair(y_true, y_pred)
    return tf.reduce_mean(tf.cast(tf.abs(t - p) <= tol + ACC_SLACK, tf.float32))


def _channel_accuracy_tf(y_true: Any, y_pred: Any):
    import tensorflow as tf

    t, p = _tensor_pair(y_true, y_pred)
    return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(t, axis=-1), tf.argmax(p, axis=-1)), tf.float32))


# -- built-in metrics --------------------------------------------------------------------------------
@register_metric("mse")
@_meta(_mse_tf, best=0.0, higher_is_better=False)
def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error over all pixels and channels (lower is better; 0 for identical images).

    Integer images are scaled by their dtype's maximum, float images are taken as in [0, 1]; a batch
    ``(N, H, W, C)`` gives the mean over images (equal to the mean over all values). Tensors go to the
    tensor implementation ``mse.keras_fn``.

    Args:
        y_true: Reference image ``(H, W)``, ``(H, W, C)`` or batch ``(N, H, W, C)``.
        y_pred: Restored image, same shape.

    Returns:
        The MSE as a Python float (a scalar tensor for tensor inputs).

    Raises:
        ValueError: The shapes differ.

    Examples:
        >>> import numpy as np
        >>> mse(np.zeros((8, 8)), np.full((8, 8), 0.5))
        0.25
    """
    if not (is_numpy(y_true) and is_numpy(y_pred)):
        return _mse_tf(y_true, y_pred)
    t, p = _prepare(y_true, y_pred, copy=False)
    return float(np.mean(_squared_error(t, p)))


@register_metric("psnr")
@_meta(_psnr_tf, best=math.inf, higher_is_better=True)
def psnr(y_true: Any, y_pred: Any) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(1 / MSE)`` with data range 1 (higher is better).

    Computed over all pixels and channels of an RGB image (no Y conversion), the same as
    ``skimage.metrics.peak_signal_noise_ratio(y_true, y_pred, data_range=1)`` on the scaled images.
    A batch ``(N, H, W, C)`` gives the mean of the per-image PSNRs. Identical images give ``inf``.
    Tensors go to ``psnr.keras_fn`` (per-image PSNR averaged over the batch).

    Args:
        y_true: Reference image ``(H, W)``, ``(H, W, C)`` or batch ``(N, H, W, C)``; integer images are
            scaled by their dtype's maximum, float images taken as in [0, 1].
        y_pred: Restored image, same shape.

    Returns:
        PSNR in dB as a Python float (``inf`` for identical images).

    Raises:
        ValueError: The shapes differ.

    Examples:
        >>> import numpy as np
        >>> psnr(np.zeros((8, 8)), np.full((8, 8), 0.1))
        20.0
        >>> batch = np.stack([np.full((8, 8, 3), 0.1), np.full((8, 8, 3), 0.01)])
        >>> psnr(np.zeros_like(batch), batch)  # mean of 20 dB and 40 dB
        30.0
    """
    if not (is_numpy(y_true) and is_numpy(y_pred)):
        return _psnr_tf(y_true, y_pred)
    t, p = _prepare(y_true, y_pred, copy=False)
    return _psnr_of(_squared_error(t, p))


#: Rows of an image whose differences are squared at a time (:func:`_squared_error`).
_ROW_BAND = 512


def _squared_error(t: np.ndarray, p: np.ndarray) -> np.ndarray | float:
    """Each image's mean squared difference (a float, or an array for a batch), computed in bands of
    :data:`_ROW_BAND` rows so that no temporary the image's size is made (two float64 copies of a 24 MP
    photo's differences were 1.2 GB). Equal to ``np.mean((t - p) ** 2, image axes)`` to rounding."""
    if t.ndim == 4:
        return np.asarray([_squared_error(a, b) for a, b in zip(t, p, strict=True)])
    return sum(float(np.vdot(d, d)) for d in (a - b for a, b in _row_bands(t, p))) / t.size  # no squared copy


def _row_bands(t: np.ndarray, p: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The same bands of :data:`_ROW_BAND` rows of ``t`` and ``p``, image by image for a batch."""
    for a, b in zip(t, p, strict=True) if t.ndim == 4 else [(t, p)]:
        for r in range(0, a.shape[0], _ROW_BAND):
            yield a[r: r + _ROW_BAND], b[r: r + _ROW_BAND]


def _psnr_of(d: np.ndarray | float) -> float:
    """The PSNR (data range 1) of an image's mean squared error ``d`` (:func:`_squared_error`), or the mean
    of each image's for a batch (an array of them)."""
    err = np.atleast_1d(d)
    with np.errstate(divide="ignore"):
        per_image = -10.0 * np.log10(err)
    return float(np.mean(per_image))


#: BT.601 luma of [0, 1] RGB scaled to [0, 1] (BasicSR's ``rgb2ycbcr(y_only=True)`` / 255, without its +16
#: offset, which cancels in a difference).
_Y_WEIGHTS = (65.481 / 255, 128.553 / 255, 24.966 / 255)


def _luma(x: Any, metric: str, offset: float = 16 / 255) -> Any:
    """BasicSR's ``rgb2ycbcr(y_only=True)`` / 255 of RGB images (the last axis kept, one channel), or grey images
    as they are; ``x`` a float ``(..., H, W, C)`` NumPy array or ``(N, H, W, C)`` tensor. ``offset`` 0 for a
    difference of images (Y's offset cancels in it); ``metric`` names the caller in the error."""
    if x.shape[-1] == 1:
        return x
    if x.shape[-1] != 3:
        raise ValueError(f"{metric} needs RGB or grey images, got {x.shape[-1]} channels (shape {tuple(x.shape)})")
    if is_numpy(x):
        return x @ np.asarray(_Y_WEIGHTS)[:, None] + offset
    import tensorflow as tf

    return tf.tensordot(x, tf.constant(_Y_WEIGHTS, x.dtype), axes=[[3], [0]])[..., None] + offset


def _psnr_y_tf(y_true: Any, y_pred: Any):
    t, p = _tensor_pair(y_true, y_pred)
    return _psnr_of_tf(_luma(t - p, "psnr_y", offset=0.0))


@register_metric("psnr_y")
@_meta(_psnr_y_tf, best=math.inf, higher_is_better=True)
def psnr_y(y_true: Any, y_pred: Any) -> float:
    """PSNR in dB on the luma (Y of YCbCr, ITU-R BT.601) of RGB images, BasicSR's ``test_y_channel``.

    What super-resolution papers report (BasicSR's and KAIR's ``test_y_channel``), and some deblurring ones;
    the deblurring tables of NAFNet and BasicSR (GoPro, HIDE, RealBlur) are RGB PSNR, :func:`psnr` (their
    test configurations say ``test_y_channel: false``). Each RGB image is reduced to
    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (R, G, B in [0, 1]; Y in [16, 235]) and the PSNR taken with a
    data range of 255 on it; grey images are used as they are. Unlike BasicSR, the images are not rounded to
    8 bits first and no border is cropped (``crop_border=0``; super-resolution papers crop the scale factor's
    pixels: crop both images before calling to match them).
    Y weighs green most and drops chroma, where restoration errors are largest, so it reads higher than RGB
    :func:`psnr`. A batch gives the mean of the per-image values; identical images give ``inf``.

    Args:
        y_true: Reference image ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or a batch of them.
        y_pred: Restored image, same shape.

    Returns:
        The Y-channel PSNR in dB as a Python float.

    Raises:
        ValueError: The shapes differ, or the images have 2 or 4 channels (alpha: drop it first).

    Examples:
        >>> import numpy as np
        >>> round(psnr_y(np.zeros((8, 8, 3)), np.full((8, 8, 3), 0.1)), 4)  # Y moves by 0.1 * 219 / 255
        21.3219
        >>> psnr_y(np.zeros((8, 8)), np.full((8, 8), 0.1))  # grey: the image itself
        20.0
    """
    if not (is_numpy(y_true) and is_numpy(y_pred)):
        return _psnr_y_tf(y_true, y_pred)
    t, p = _prepare(y_true, y_pred, copy=False)
    d = t - p
    y = _luma(d, "psnr_y", offset=0.0) if d.ndim >= 3 else d  # the luma keeps the image's rank
    return _psnr_of(np.mean(y**2, axis=_image_axes(y)))


#: Rows of the SSIM map computed at a time (:func:`_ssim_one`): scikit-image holds about 15 float64 arrays of
#: the image's size, 4.3 GB for a 24-megapixel photo in one piece.
_SSIM_BAND = 256


def _ssim_one(t: np.ndarray, p: np.ndarray) -> float:
    """scikit-image's SSIM of one image (data range 1, Gaussian window), channel by channel and in bands of
    :data:`_SSIM_BAND` map rows, so that its memory does not grow with the image's height and channels.

    Each band is given to ``structural_similarity`` with the window's half-width (5 rows) of the image above
    and below it, which scikit-image crops from the map it averages: every SSIM value is computed from the
    same pixels by the same filters as on the whole image, and the mean is their area-weighted mean (equal to
    scikit-image's to about 1e-15).
    """
    from skimage.metrics import structural_similarity

    if min(t.shape[0], t.shape[1]) < WIN_SIZE:
        raise ValueError(f"ssim needs images of at least {WIN_SIZE}x{WIN_SIZE} pixels, got shape {t.shape}")
    if t.ndim == 3:  # scikit-image's channel_axis=-1: the mean of the channels' SSIMs
        return float(np.mean([_ssim_one(t[..., c], p[..., c]) for c in range(t.shape[-1])]))
    pad = (WIN_SIZE - 1) // 2
    kw = dict(data_range=1.0, gaussian_weights=True, sigma=SIGMA, use_sample_covariance=False)
    h = t.shape[0]
    total = 0.0
    for a in range(pad, h - pad, _SSIM_BAND):  # map rows [a, b), from image rows [a - pad, b + pad): at least
        b = min(a + _SSIM_BAND, h - pad)      # 1 + 2 * pad = WIN_SIZE rows, as the window needs
        total += structural_similarity(t[a - pad: b + pad], p[a - pad: b + pad], **kw) * (b - a)
    return float(total / (h - 2 * pad))


@register_metric("ssim")
@_meta(_ssim_tf, best=1.0, higher_is_better=True)
def ssim(y_true: Any, y_pred: Any) -> float:
    """Structural similarity (Wang et al. 2004), scikit-image convention (higher is better; 1 is best).

    Exactly ``skimage.metrics.structural_similarity(y_true, y_pred, channel_axis=-1, data_range=1,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`` on the scaled float64 images: an
    11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), K1=0.01, K2=0.03, population covariance,
    a 5-pixel border cropped, computed per channel and averaged. A batch ``(N, H, W, C)`` gives the mean
    of the per-image SSIMs. Tensors go to ``ssim.keras_fn``, which uses the same window and region (float32).

    Args:
        y_true: Reference image ``(H, W)``, ``(H, W, C)`` or batch ``(N, H, W, C)``, at least 11x11;
            integer images are scaled by their dtype's maximum, float images taken as in [0, 1].
        y_pred: Restored image, same shape.

    Returns:
        SSIM as a Python float (1.0 for identical images).

    Raises:
        ValueError: The shapes differ or the images are smaller than 11x11.

    Examples:
        >>> import numpy as np
        >>> x = np.linspace(0, 1, 32 * 32).reshape(32, 32)
        >>> ssim(x, x)
        1.0
        >>> round(ssim(x, 0.5 * x), 4)
        0.6796
    """
    if not (is_numpy(y_true) and is_numpy(y_pred)):
        return _ssim_tf(y_true, y_pred)
    t, p = _prepare(y_true, y_pred, copy=False)
    if t.ndim == 4:
        return float(np.mean([_ssim_one(a, b) for a, b in zip(t, p, strict=True)]))
    return _ssim_one(t, p)


def _ssim_y_tf(y_true: Any, y_pred: Any):
    t, p = _tensor_pair(y_true, y_pred)
    return _ssim_tf(_luma(t, "ssim_y"), _luma(p, "ssim_y"))


@register_metric("ssim_y")
@_meta(_ssim_y_tf, best=1.0, higher_is_better=True)
def ssim_y(y_true: Any, y_pred: Any) -> float:
    """SSIM on the luma (Y of YCbCr, ITU-R BT.601) of RGB images, BasicSR's ``calculate_ssim(test_y_channel=True)``.

    The companion of :func:`psnr_y`, for the SSIM column of papers' tables: each RGB image is reduced to
    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` (Y in [16, 235], the offset kept: SSIM depends on it) and
    :func:`ssim`'s window and constants applied with a data range of 255 (BasicSR's 11x11 Gaussian window of
    sigma 1.5, population covariance and valid region are scikit-image's settings that :func:`ssim` uses).
    Grey images are used as they are; no border is cropped and nothing is rounded to 8 bits first.

    Args:
        y_true: Reference image ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or a batch of them, at least 11x11.
        y_pred: Restored image, same shape.

    Returns:
        The Y-channel SSIM as a Python float (1.0 for identical images).

    Raises:
        ValueError: The shapes differ, the images are smaller than 11x11, or they have 2 or 4 channels.

    Examples:
        >>> import numpy as np
        >>> x = np.linspace(0, 1, 32 * 32 * 3).reshape(32, 32, 3)
        >>> ssim_y(x, x)
        1.0
        >>> round(ssim_y(x, 0.5 * x), 4), round(ssim(x, 0.5 * x), 4)  # on Y, on RGB
        (0.7428, 0.6796)
    """
    if not (is_numpy(y_true) and is_numpy(y_pred)):
        return _ssim_y_tf(y_true, y_pred)
    t, p = _prepare(y_true, y_pred, copy=False)
    if t.ndim == 2:
        return _ssim_one(t, p)
    ty, py = _luma(t, "ssim_y")[..., 0], _luma(p, "ssim_y")[..., 0]
    if ty.ndim == 3:
        return float(np.mean([_ssim_one(a, b) for a, b in zip(ty, py, strict=True)]))
    return _ssim_one(ty, py)


@register_metric("accuracy")
@_meta(_accuracy_tf, best=1.0, higher_is_better=True)
def accuracy(y_true: Any, y_pred: Any, tol: float = 2 / 255) -> float:
    """Fraction of pixel values restored to within ``tol`` of the truth (higher is better; 1 is best).

    This is the restoration-meaningful accuracy: each value (every pixel and channel) counts as correct
    when ``|y_true - y_pred| <= tol`` on the [0, 1] scale; the default ``tol = 2/255`` accepts an error
    of up to two 8-bit grey levels. It is *not* the accuracy Keras reports for ``metrics=["acc"]`` on an
    image model (that one is :func:`channel_accuracy`). A batch gives the mean over images.

    Args:
        y_true: Reference image ``(H, W)``, ``(H, W, C)`` or batch ``(N, H, W, C)``; integer images are
            scaled by their dtype's maximum, float images taken as in [0, 1].
        y_pred: Restored image, same shape.
        tol: Largest accepted absolute error on the [0, 1] scale (inclusive).

    Returns:
        The fraction in [0, 1] as a Python float.

    Raises:
        ValueError: The shapes differ, or ``tol`` is negative.

    Examples:
        >>> import numpy as np
        >>> t = np.array([[10, 10, 10, 10]], np.uint8)
        >>> p = np.array([[10, 12, 13, 200]], np.uint8)
        >>> accuracy(t, p)  # 0 and 2 grey levels off pass, 3 and 190 fail
        0.5
        >>> accuracy(t, p, tol=3 / 255)
        0.75
    """
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 <= tol < math.inf:
        raise ValueError(f"tol must be a number >= 0 (an error on the [0, 1] scale), got {tol!r}")  # -1 gave 0.0
    if not (is_numpy(y_true) and is_numpy(y_pred)):
        return _accuracy_tf(y_true, y_pred, tol=tol)
    t, p = _prepare(y_true, y_pred, copy=False)
    within = sum(np.count_nonzero(np.abs(a - b) <= tol + ACC_SLACK) for a, b in _row_bands(t, p))
    return float(within / t.size)


@register_metric("channel_accuracy")
@_meta(_channel_accuracy_tf, best=1.0, higher_is_better=True)
def channel_accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of pixels whose brightest colour channel is the same (the tutorial's ``"acc"``).

    This reproduces what Keras reports for ``model.compile(metrics=["acc"])`` on an RGB image model:
    Keras treats the last axis as class scores and computes categorical accuracy, i.e. whether
    ``argmax`` over the colour channels of the prediction equals that of the truth, averaged over
    pixels. The "78.07 % accuracy" in the original tutorial is this number. It says little about
    restoration quality (any prediction with the right dominant channel scores 1); prefer
    :func:`psnr`, :func:`ssim` or :func:`accuracy`. For grayscale images it is always 1. Ties go to
    the first channel (NumPy's ``argmax``).

    Args:
        y_true: Reference image ``(H, W, C)`` or batch ``(N, H, W, C)`` (``(H, W)`` is one channel).
        y_pred: Restored image, same shape.

    Returns:
        The fraction of matching pixels in [0, 1] as a Python float.

    Raises:
        ValueError: The shapes differ.

    Examples:
        >>> import numpy as np
        >>> t = np.array([[[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]]])
        >>> p = np.array([[[0.5, 0.4, 0.1], [0.6, 0.2, 0.5]]])
        >>> channel_accuracy(t, p)
        0.5
    """
    if not (is_numpy(y_true) and is_numpy(y_pred)):
        return _channel_accuracy_tf(y_true, y_pred)
    t, p = _prepare(y_true, y_pred, copy=False)
    if t.ndim == 2:
        return 1.0
    return float(np.mean(np.argmax(t, axis=-1) == np.argmax(p, axis=-1)))

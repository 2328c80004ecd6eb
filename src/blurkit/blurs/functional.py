"""Blur kernels and an OpenCV convolution, as plain functions on NumPy arrays.

Kernels are 2D ``float64`` arrays with odd height and width, non-negative, summing to 1, centred on the
middle pixel. Rows grow downward as in an image; angles are in degrees, counter-clockwise as displayed
(0 is horizontal, 90 vertical).

Border convention (``border`` argument), named after :func:`numpy.pad` modes:

============  ==============================  ===================  =====================
border        pixels beyond the edge           OpenCV               scipy.ndimage mode
============  ==============================  ===================  =====================
"reflect"     ``dcb|abcd|cba`` (default)       BORDER_REFLECT_101   "mirror"
"symmetric"   ``cba|abcd|dcb``                 BORDER_REFLECT       "reflect"
"edge"        ``aaa|abcd|ddd``                 BORDER_REPLICATE     "nearest"
"constant"    ``000|abcd|000``                 BORDER_CONSTANT      "constant" (cval=0)
"wrap"        ``bcd|abcd|abc`` (circular)      np.pad, then filter  "grid-wrap"
============  ==============================  ===================  =====================

Examples:
    >>> import numpy as np
    >>> from blurkit.blurs.functional import box_kernel, convolve
    >>> convolve(np.eye(3, dtype=np.float32), box_kernel(3), border="wrap").round(3)
    array([[0.333, 0.333, 0.333],
           [0.333, 0.333, 0.333],
           [0.333, 0.333, 0.333]], dtype=float32)
"""

from __future__ import annotations

import math
from typing import cast

import cv2
import numpy as np

__all__ = [
    "BORDERS",
    "gaussian_kernel",
    "motion_kernel",
    "box_kernel",
    "disk_kernel",
    "MAX_KERNEL_SIZE",
    "convolve",
    "jpeg",
]

#: border name -> OpenCV border type ("wrap" is padded with NumPy first).
BORDERS = {
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
    "edge": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
    "wrap": None,
}

_SUPERSAMPLE = 16  # sub-pixel samples per axis for anti-aliased kernels
MAX_KERNEL_SIZE = 513
"""The largest kernel side, in pixels, the kernels here make (a Gaussian of sigma 85.3, a disk of radius 256):
a typo like ``sigma=1e6`` is refused by name instead of asking for terabytes."""


def _check_size(size: int, what: str) -> None:
    if size > MAX_KERNEL_SIZE:
        raise ValueError(f"{what} makes a {size}-px kernel, more than the {MAX_KERNEL_SIZE} px blurkit's kernels "
                         "go to")


def check_border(border: str) -> str:
    """Return ``border`` if it is a known border name, else raise a ValueError listing them."""
    if border not in BORDERS:
        names = ", ".join(repr(b) for b in BORDERS)
        raise ValueError(f"border must be one of {names}, got {border!r}")
    return border


def _gaussian_1d(sigma: float, size: int) -> np.ndarray:
    # Same formula as cv2.getGaussianKernel(size, sigma) for sigma > 0.
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    if sigma < 1e-3:  # exp(-1 / (2 sigma^2)) is 0 in float64: the identity (and no 0 / 0)
        g = (x == 0).astype(np.float64)
    else:
        g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def gaussian_kernel(
    sigma: float, sigma_y: float | None = None, angle: float = 0.0, ksize: int | None = None
) -> np.ndarray:
    """Gaussian kernel, isotropic or anisotropic and rotated.

    Args:
        sigma: Standard deviation in pixels (along the rotated x axis when ``sigma_y`` is given); 0 gives
            the identity kernel.
        sigma_y: Standard deviation across, or None for an isotropic kernel.
        angle: Rotation of the ``sigma`` axis in degrees, counter-clockwise as displayed.
        ksize: Odd kernel size; defaults to ``2 * ceil(3 * max(sigma, sigma_y)) + 1``, at least 3.

    Returns:
        A ``(ksize, ksize)`` float64 kernel summing to 1. Unrotated kernels equal the outer product of
        ``cv2.getGaussianKernel(ksize, sigma_y)`` and ``cv2.getGaussianKernel(ksize, sigma)``: the
        Gaussian sampled at pixel centres, whose own standard deviation is smaller than ``sigma`` below 0.8
        (0.09 px at 0.3, 0.46 at 0.5, 0.70 at 0.7).

    Examples:
        >>> gaussian_kernel(1.0).shape
        (7, 7)
        >>> k = gaussian_kernel(3.0, 1.0, angle=90)
        >>> k.shape, bool(k[:, 9].sum() > k[9, :].sum())  # long axis is vertical
        ((19, 19), True)
    """
    sigma_y = sigma if sigma_y is None else sigma_y
    if sigma < 0 or sigma_y < 0:
        raise ValueError(f"sigma must be >= 0, got {min(sigma, sigma_y)}")
    if ksize is None:
        if not math.isfinite(max(sigma, sigma_y)):
            raise ValueError(f"sigma must be finite, got {max(sigma, sigma_y)}")
        ksize = max(2 * math.ceil(3 * max(sigma, sigma_y)) + 1, 3)
    ksize = int(ksize)
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"ksize must be odd, got {ksize}")
    _check_size(ksize, f"sigma {max(sigma, sigma_y):g} with ksize {ksize}")
    turns = (angle % 180.0) / 90.0
    if sigma == sigma_y or turns in (0.0, 1.0):
        sx, sy = (sigma, sigma_y) if turns == 0.0 else (sigma_y, sigma)
        return np.outer(_gaussian_1d(sy, ksize), _gaussian_1d(sx, ksize))
    r = (ksize - 1) / 2
    x = np.arange(ksize, dtype=np.float64) - r
    x, y = np.meshgrid(x, -x)  # y grows upward
    t = math.radians(angle)
    u = x * math.cos(t) + y * math.sin(t)
    v = -x * math.sin(t) + y * math.cos(t)
    sx, sy = max(sigma, 1e-3), max(sigma_y, 1e-3)
    k = np.exp(-(u * u) / (2 * sx * sx) - (v * v) / (2 * sy * sy))
    return k / k.sum()


def _offsets() -> np.ndarray:
    return (np.arange(_SUPERSAMPLE) + 0.5) / _SUPERSAMPLE - 0.5


def motion_kernel(length: float, angle: float = 0.0) -> np.ndarray:
    """Linear motion kernel: an anti-aliased line segment of ``length`` pixels, centred.

    The line is a ``length`` x 1 pixel rectangle; each kernel pixel gets the fraction of its area that
    the rectangle covers (16 x 16 supersampling). So a horizontal or vertical line of odd integer length is
    an exact box (an even length covers half a pixel at each end: ``length=4`` is ``[.5, 1, 1, 1, .5] / 4``),
    and the kernel is point-symmetric, with its centroid on the centre pixel (the image is not shifted).
    Along the motion its variance is about ``(length**2 + 1) / 12`` px^2 for long lines (the segment's plus
    the 1-px width's); the kernel's own, sampled on the pixel grid, is exactly ``(length**2 - 1) / 12`` for
    odd lengths on the axes (2.0 for ``length=5``) and 1.5 for ``length=4``.
    At 0 and 90 degrees the width lies on the pixel grid and adds no blur across the motion; at other
    angles it reaches into the neighbouring pixels, about 0.16 px^2 of variance across the motion (a
    Gaussian sigma of 0.4 px), so ``length=1`` is the identity only on the axes.

    Args:
        length: Length of the motion in pixels, >= 1.
        angle: Direction in degrees, counter-clockwise as displayed (0 horizontal, 90 vertical).

    Returns:
        A float64 kernel with odd height and width, summing to 1.

    Examples:
        >>> motion_kernel(3, 0).round(3)
        array([[0.333, 0.333, 0.333]])
        >>> motion_kernel(5, 90).shape
        (5, 1)
    """
    if not (length >= 1 and math.isfinite(length)):
        raise ValueError(f"length must be a finite number >= 1, got {length}")
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    half = length / 2
    # half extents of the rectangle; a pixel at i overlaps it when i - 0.5 < extent
    # (rounded so that cos(180) = -1 + 1e-16 does not add a row of zeros)
    rx = max(math.ceil(round(half * abs(c) + 0.5 * abs(s) + 0.5, 9)) - 1, 0)
    ry = max(math.ceil(round(half * abs(s) + 0.5 * abs(c) + 0.5, 9)) - 1, 0)
    _check_size(2 * max(rx, ry) - 1, f"length {length:g}")  # the least it can be: an empty frame is dropped
    o = _offsets()
    xs = (np.arange(-rx, rx + 1)[:, None] + o).reshape(-1)  # sub-pixel x positions
    ys = (np.arange(ry, -ry - 1, -1)[:, None] + o).reshape(-1)  # upward y, top row first
    x, y = np.meshgrid(xs, ys)
    u = x * c + y * s
    v = -x * s + y * c
    inside = (np.abs(u) <= half) & (np.abs(v) <= 0.5)
    n = _SUPERSAMPLE
    cover = inside.reshape(2 * ry + 1, n, 2 * rx + 1, n).sum(axis=(1, 3)).astype(np.float64)
    # pixels the rectangle touches by less than one subsample: an empty frame (the kernel is point-symmetric)
    while cover.shape[0] > 1 and not cover[0].any():
        cover = cover[1:-1]
    while cover.shape[1] > 1 and not cover[:, 0].any():
        cover = cover[:, 1:-1]
    _check_size(max(cover.shape), f"length {length:g}")
    return cover / cover.sum()


def box_kernel(size: int) -> np.ndarray:
    """Box (average) kernel of odd ``size``.

    Examples:
        >>> box_kernel(3).sum()
        np.float64(1.0)
    """
    size = int(size)
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd, got {size}")
    _check_size(size, f"size {size}")
    return np.full((size, size), 1.0 / (size * size))


def disk_kernel(radius: float) -> np.ndarray:
    """Defocus (pillbox) kernel: a disk of ``radius`` pixels with anti-aliased edges.

    Each pixel gets the fraction of its area inside the disk; boundary pixels are supersampled 16 x 16.

    Args:
        radius: Disk radius in pixels, >= 0 (0 is the identity).

    Returns:
        A ``(2r + 1, 2r + 1)`` float64 kernel, ``r = ceil(radius + 0.5) - 1``, summing to 1.

    Examples:
        >>> k = disk_kernel(2.0)
        >>> k.shape, bool(k[2, 2] == k.max())
        ((5, 5), True)
    """
    if not (radius >= 0 and math.isfinite(radius)):
        raise ValueError(f"radius must be a finite number >= 0, got {radius}")
    _check_size(2 * max(math.ceil(radius + 0.5) - 1, 0) + 1, f"radius {radius:g}")
    r = max(math.ceil(radius + 0.5) - 1, 0)
    ax = np.arange(-r, r + 1, dtype=np.float64)
    x, y = np.meshgrid(ax, ax)
    near = np.hypot(np.maximum(np.abs(x) - 0.5, 0), np.maximum(np.abs(y) - 0.5, 0))
    far = np.hypot(np.abs(x) + 0.5, np.abs(y) + 0.5)
    cover = (far <= radius).astype(np.float64)
    edge = (near < radius) & (far > radius)
    if edge.any():
        o = _offsets()
        sx = x[edge][:, None, None] + o[None, :, None]
        sy = y[edge][:, None, None] + o[None, None, :]
        cover[edge] = (sx * sx + sy * sy <= radius * radius).mean(axis=(1, 2))
    if cover.sum() == 0:  # radius below the sub-pixel spacing
        cover[r, r] = 1.0
    return cover / cover.sum()


def _separate(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(column, row) factors when ``kernel`` is their outer product (rank 1), else None."""
    col, row = kernel.sum(axis=1), kernel.sum(axis=0)
    total = kernel.sum()
    if total <= 0 or kernel.min() < 0:
        return None
    col, row = col / total, row
    if np.allclose(np.outer(col, row), kernel, rtol=0, atol=1e-12 * max(float(np.abs(kernel).max()), 1e-300)):
        return col, row
    return None


def _convolve2d(image: np.ndarray, kernel: np.ndarray, border: str) -> np.ndarray:
    """Convolve one (H, W) or (H, W, C) float image."""
    channels = image.shape[2] if image.ndim == 3 else 1
    if channels > 4:  # OpenCV caps channels (512); filter groups of 4 to stay safe
        parts = [_convolve2d(image[..., i : i + 4], kernel, border) for i in range(0, channels, 4)]
        return np.concatenate(parts, axis=-1)
    flipped = np.ascontiguousarray(kernel[::-1, ::-1])
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    src = image
    if border == "wrap":
        pad = ((ph, ph), (pw, pw)) + ((0, 0),) * (image.ndim - 2)
        src = np.pad(image, pad, mode="wrap")
        flag = cv2.BORDER_CONSTANT
    else:
        flag = cast(int, BORDERS[border])  # only "wrap" has none, handled above
    src = np.ascontiguousarray(src)
    factors = _separate(flipped)
    if factors is not None:
        col, row = factors
        # integers are converted to float32 while filtering (same result, no float copy of the input)
        depth = -1 if src.dtype.kind == "f" else cv2.CV_32F
        out = cv2.sepFilter2D(src, depth, row, col, borderType=flag)
    else:  # filter2D's integer-to-float path is slow (3x): convert first
        src = src if src.dtype.kind == "f" else src.astype(np.float32)
        out = cv2.filter2D(src, -1, flipped, borderType=flag)
    if border == "wrap":
        out = out[ph : ph + image.shape[0], pw : pw + image.shape[1]]
    return out.reshape(image.shape)


def convolve(image: np.ndarray, kernel: np.ndarray, border: str = "reflect") -> np.ndarray:
    """Convolve an image (true convolution, not correlation) with a 2D kernel using OpenCV.

    Separable kernels (outer products, such as unrotated Gaussians and boxes) use ``cv2.sepFilter2D``;
    others use ``cv2.filter2D`` with the kernel flipped. The result equals
    ``scipy.ndimage.convolve(image, kernel)`` with the matching border mode (see the module docstring),
    applied to each channel.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)`` array. float32 and float64 are kept; other
            dtypes are computed and returned as float32 (uint8 and uint16 with a separable kernel without
            a float copy: OpenCV converts them while filtering).
        kernel: 2D kernel with odd height and width.
        border: How pixels beyond the edge are filled: "reflect", "symmetric", "edge", "constant", "wrap".

    Returns:
        The filtered image, same shape.

    Examples:
        >>> import numpy as np
        >>> img = np.zeros((5, 5), np.float32)
        >>> img[2, 2] = 1
        >>> k = np.array([[0.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])
        >>> convolve(img, k)[2]  # convolution shifts the impulse to the right
        array([0. , 0. , 0.5, 0.5, 0. ], dtype=float32)
    """
    check_border(border)
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"kernel must be 2D with odd height and width, got shape {kernel.shape}")
    image = np.asarray(image)
    if image.dtype not in (np.float32, np.float64, np.uint8, np.uint16):
        image = image.astype(np.float32)
    if image.ndim == 4:
        return np.stack([_convolve2d(im, kernel, border) for im in image]) if len(image) else image.copy()
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W), (H, W, C) or (N, H, W, C), got shape {image.shape}")
    return _convolve2d(image, kernel, border)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """An image after a JPEG round trip, as a camera or phone would save it.

    OpenCV's encoder at ``quality`` (1-100; 4:2:0 chroma subsampling for colour, as most cameras write),
    decoded again. JPEG holds 8 bits: uint8 images keep their dtype, uint16 ones come back as multiples of
    257, float ones (taken as [0, 1]) as multiples of 1/255. One or three colour channels; a last channel
    after them (alpha: 2 or 4 channels) passes through unchanged. A batch ``(N, H, W, C)`` is compressed
    image by image.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``; uint8, uint16 or float.
        quality: JPEG quality, 1 (smallest file) to 100.

    Returns:
        The decoded image, same shape and dtype.

    Raises:
        ValueError: A quality outside 1-100, or a channel count JPEG cannot hold (more than 4).

    Examples:
        >>> import numpy as np
        >>> ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
        >>> out = jpeg(ramp, 50)
        >>> out.shape, out.dtype, bool(0 < np.abs(out.astype(int) - ramp).max() < 16)
        ((64, 64), dtype('uint8'), True)
    """
    if isinstance(quality, bool) or not float(quality).is_integer() or not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be an integer from 1 to 100, got {quality!r}")
    image = np.asarray(image)
    if image.ndim == 4:
        return np.stack([jpeg(im, quality) for im in image]) if len(image) else image.copy()
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W), (H, W, C) or (N, H, W, C), got shape {image.shape}")
    x = image[..., None] if image.ndim == 2 else image
    colour = {1: 1, 2: 1, 3: 3, 4: 3}.get(x.shape[-1])
    if colour is None:
        raise ValueError(f"JPEG holds 1 or 3 colour channels (and alpha), got {x.shape[-1]} channels")
    dtype = image.dtype
    if dtype == np.uint8:
        u8 = x[..., :colour]
    elif dtype == np.uint16:
        u8 = np.rint(x[..., :colour] / 257.0).astype(np.uint8)
    else:
        u8 = np.rint(np.clip(x[..., :colour], 0, 1) * 255).astype(np.uint8)
    planes = np.ascontiguousarray(u8[..., ::-1] if colour == 3 else u8[..., 0])  # OpenCV: BGR
    ok, data = cv2.imencode(".jpg", planes, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {planes.shape} image as JPEG")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR if colour == 3 else cv2.IMREAD_GRAYSCALE)
    if decoded is None:
        raise RuntimeError(f"OpenCV could not decode the JPEG it encoded from a {planes.shape} image")
    decoded = decoded[..., ::-1] if colour == 3 else decoded[..., None]
    if dtype == np.uint8:
        values = decoded
    elif dtype == np.uint16:
        values = decoded.astype(np.uint16) * np.uint16(257)
    else:
        values = (decoded / 255.0).astype(dtype)
    out = x.copy()
    out[..., :colour] = values
    return out.reshape(image.shape)

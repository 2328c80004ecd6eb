"""Classical (non-learned) deblurring baselines: the methods a user would otherwise reach for.

* :func:`wiener` and :func:`richardson_lucy` are *non-blind*: they are given the true blur kernel (blurkit's
  blur generators return it), which a learned model never sees. They wrap scikit-image's
  ``restoration.wiener`` and ``restoration.richardson_lucy``, applied channel by channel, on the image
  padded at its borders (``pad="reflect"``, numpy's ``dcb|abcd|cba``, the convention blurkit's blurs use)
  and cropped back afterwards. Without the padding, scikit-image's Wiener filter (an FFT, hence circular)
  wraps the left edge into the right one, and Richardson-Lucy (zero-padded convolutions) darkens the
  borders; both ring there.
* :func:`unsharp` is the *blind* everyday sharpener, scikit-image's ``filters.unsharp_mask``.
* :func:`tune_wiener_balance` and :func:`tune` choose parameters by mean PSNR on example images.

Every function takes ``(H, W)`` or ``(H, W, C)`` images of dtype uint8, uint16 or float (taken as [0, 1])
and returns the same shape and dtype (computed in float32, clipped to [0, 1]). scikit-image is imported
inside the functions, so ``import blurkit`` stays light.

Examples:
    >>> import numpy as np
    >>> from blurkit.classical import blur_gaussian, wiener
    >>> from blurkit.metrics.functional import psnr
    >>> x = np.linspace(0, 1, 48)
    >>> sharp = (np.sin(12 * x)[:, None] * np.cos(9 * x)[None, :] * 0.4 + 0.5).astype(np.float32)
    >>> blurred, kernel = blur_gaussian(sharp, sigma=2.0)
    >>> restored = wiener(blurred, kernel, balance=1e-3)
    >>> restored.shape, restored.dtype, psnr(sharp, restored) > psnr(sharp, blurred)
    ((48, 48), dtype('float32'), True)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import numpy as np

__all__ = [
    "DEFAULT_BALANCES",
    "DEFAULT_WIENER_BALANCE",
    "blur_gaussian",
    "wiener",
    "richardson_lucy",
    "unsharp",
    "tune",
    "tune_wiener_balance",
]

#: The balance grid that :func:`tune_wiener_balance` searches by default.
DEFAULT_BALANCES: tuple[float, ...] = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)

#: A fixed Wiener balance for Gaussian blur with sigma 1-3 on 8-bit (quantized, otherwise noise-free)
#: images, used by ``blurkit demo``: the value :func:`tune_wiener_balance` picks over
#: :data:`DEFAULT_BALANCES` at sigma 1, 2 and 3 on scikit-image's astronaut and coffee photos (it is the
#: best at each sigma separately too). Noisy images need a larger balance.
DEFAULT_WIENER_BALANCE: float = 1e-4

_PAD_MODES = ("reflect", "symmetric", "edge", "wrap")


def _check_kernel(kernel: Any) -> np.ndarray:
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or min(k.shape) < 1:
        raise ValueError(f"kernel must be a non-empty 2D array, got shape {k.shape}")
    if not np.all(np.isfinite(k)) or k.min() < 0 or k.sum() <= 0:
        raise ValueError("kernel must be finite and non-negative with a positive sum")
    return k / k.sum()


def _planes(image: Any) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``image`` as float32 (H, W, C) in [0, 1] and the function mapping a result back to its form."""
    from blurkit.data.io import from_float, to_float

    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or min(arr.shape[:2]) < 1 or (arr.ndim == 3 and arr.shape[-1] < 1):
        raise ValueError(f"expected an image (H, W) or (H, W, C), got shape {arr.shape}")
    x = to_float(arr)
    squeeze = arr.ndim == 2
    x = x[..., None] if squeeze else x

    def back(y: np.ndarray) -> np.ndarray:
        y = np.clip(y, 0.0, 1.0)
        y = y[..., 0] if squeeze else y
        return from_float(y, arr.dtype)

    return x, back


def _per_channel(
    image: Any, pad: str | None, pad_width: int,
    fn: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    if pad is not None and pad not in _PAD_MODES:
        raise ValueError(f"pad must be one of {', '.join(_PAD_MODES)} or None, got {pad!r}")
    if int(pad_width) < 0:
        raise ValueError(f"pad_width must be >= 0, got {pad_width}")
    x, back = _planes(image)
    p = 0 if pad is None else int(pad_width)
    h, w = x.shape[:2]
    out = np.empty(x.shape, np.float32)
    for c in range(x.shape[-1]):
        plane = np.pad(x[..., c], p, mode=cast(Any, pad)) if p else x[..., c]  # p > 0: a mode
        out[..., c] = fn(np.ascontiguousarray(plane, dtype=np.float32))[p : p + h, p : p + w]
    return back(out)


def blur_gaussian(image: Any, sigma: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blur ``image`` the way blurkit's benchmarks do; return ``(blurred, kernel)``.

    Gaussian blur with standard deviation ``sigma`` (kernel size ``2 * ceil(3 * sigma) + 1``), reflect
    border, then 8-bit quantization (``quantize=True``), as a camera file would be: the same
    ``blurkit.BLURS.create("gaussian", sigma=sigma, border="reflect", quantize=True)`` that trains the
    presets. Without noise the result does not depend on ``seed``.

    Args:
        image: An image of any dtype, ``(H, W)`` or ``(H, W, C)``.
        sigma: The blur's standard deviation in pixels, one number (a range is for training blurs:
            ``BLURS.create("gaussian", sigma=(lo, hi))`` draws one per image).
        seed: Seeds the blur's random parts (none here).

    Returns:
        ``(blurred, kernel)``: the blurred image in ``image``'s dtype and shape, and the 2-D kernel (PSF).

    Raises:
        TypeError: ``sigma`` is not one number.

    Examples:
        >>> import numpy as np
        >>> b, k = blur_gaussian(np.zeros((16, 16, 3), np.uint8), 2.0)
        >>> b.shape, b.dtype, k.shape
        ((16, 16, 3), dtype('uint8'), (13, 13))
    """
    from blurkit.registry import BLURS

    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real):  # "2" was taken, (1, 2) failed in float()
        raise TypeError(f"sigma must be one number (pixels), got {type(sigma).__name__} {sigma!r}")
    out = BLURS.create("gaussian", sigma=float(sigma), border="reflect", quantize=True)(image, seed=seed)
    return out["image"], out["kernel"]


def wiener(
    image: Any,
    kernel: Any,
    balance: float = DEFAULT_WIENER_BALANCE,
    pad: str | None = "reflect",
    *,
    pad_width: int | None = None,
) -> np.ndarray:
    """Wiener-Hunt deconvolution with a known kernel (scikit-image ``restoration.wiener``), per channel.

    Args:
        image: Blurred image ``(H, W)`` or ``(H, W, C)``, uint8, uint16 or float in [0, 1].
        kernel: The blur kernel (2D, non-negative; normalised to sum 1 here).
        balance: Regularisation weight of scikit-image's Laplacian prior: larger is smoother and rings
            less, smaller is sharper and amplifies noise (8-bit quantization is noise). The default is
            tuned for Gaussian blur (:data:`DEFAULT_WIENER_BALANCE`; :func:`tune_wiener_balance`). Kernels
            whose spectrum has zeros need a larger one: on scikit-image's astronaut, 8-bit, a motion blur
            of length 9 at 30 degrees (24.3 dB blurred) is restored to 14.3 dB at the default, 27.9 at
            1e-2; a defocus disk of radius 3 (25.8 dB) to 21.5, 31.0 at 1e-3. Choose it on example images
            with :func:`tune`.
        pad: Border padding before the (circular, FFT-based) filtering, cropped afterwards: a
            :func:`numpy.pad` mode ("reflect", the default, "symmetric", "edge", "wrap"), or None for none.
        pad_width: Pixels added on each side; default four times the kernel size (the filter's response
            reaches further than the kernel when ``balance`` is small).

    Returns:
        The restored image, same shape and dtype as ``image``.

    Examples:
        >>> import numpy as np
        >>> k = np.ones((3, 3)) / 9
        >>> out = wiener(np.full((20, 20, 3), 128, np.uint8), k, balance=0.01)
        >>> out.shape, out.dtype, int(out.min()), int(out.max())
        ((20, 20, 3), dtype('uint8'), 128, 128)
    """
    from skimage import restoration

    k = _check_kernel(kernel)
    if not balance > 0:
        raise ValueError(f"balance must be > 0, got {balance}")

    def one(plane: np.ndarray) -> np.ndarray:
        return restoration.wiener(plane, k, float(balance), clip=False)

    return _per_channel(image, pad, 4 * max(k.shape) if pad_width is None else pad_width, one)


def richardson_lucy(
    image: Any,
    kernel: Any,
    iterations: int = 30,
    pad: str | None = "reflect",
    *,
    pad_width: int | None = None,
) -> np.ndarray:
    """Richardson-Lucy deconvolution with a known kernel (scikit-image ``restoration.richardson_lucy``).

    Runs ``restoration.richardson_lucy(plane, kernel, num_iter=iterations, clip=False)`` on each channel
    of the padded image; the result is cropped and clipped to [0, 1].

    Args:
        image: Blurred image ``(H, W)`` or ``(H, W, C)``, uint8, uint16 or float in [0, 1].
        kernel: The blur kernel (2D, non-negative; normalised to sum 1 here).
        iterations: Number of iterations (more is sharper and noisier).
        pad: Border padding (scikit-image's convolutions assume zeros outside the image): a
            :func:`numpy.pad` mode, default "reflect", or None for none.
        pad_width: Pixels added on each side; default twice the kernel size. The zero border's error
            travels inwards with the iterations: twice the size is enough at tens of iterations (30: within
            3.5e-4 of an 8x pad on a 160-px crop at sigma 1), not at thousands (2000: up to 0.03-0.04, 0.03
            dB of PSNR on that crop at sigma 1 and 3); give a wider pad for long runs.

    Returns:
        The restored image, same shape and dtype as ``image``.

    Examples:
        >>> import numpy as np
        >>> flat, kernel = blur_gaussian(np.full((32, 32), 0.5, np.float32), sigma=1.0)
        >>> out = richardson_lucy(flat, kernel)
        >>> out.shape, out.dtype, bool(np.allclose(out, flat, atol=1e-3))
        ((32, 32), dtype('float32'), True)
    """
    from skimage import restoration

    k = _check_kernel(kernel)
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 1:
        raise ValueError(f"iterations must be a whole number >= 1, got {iterations!r}")  # 2.7 ran 2

    def one(plane: np.ndarray) -> np.ndarray:
        return restoration.richardson_lucy(plane, k.astype(np.float32), num_iter=int(iterations), clip=False)

    return _per_channel(image, pad, 2 * max(k.shape) if pad_width is None else pad_width, one)


def unsharp(image: Any, radius: float = 2.0, amount: float = 1.0) -> np.ndarray:
    """Unsharp masking (scikit-image ``filters.unsharp_mask``): blind, needs no kernel.

    ``image + amount * (image - gaussian(image, radius))``, each channel separately (reflect border),
    clipped to [0, 1].

    Args:
        image: ``(H, W)`` or ``(H, W, C)``, uint8, uint16 or float in [0, 1].
        radius: Standard deviation of the Gaussian that makes the mask.
        amount: Strength of the sharpening.

    Returns:
        The sharpened image, same shape and dtype as ``image``.

    Examples:
        >>> import numpy as np
        >>> step = np.repeat([[0.25] * 4 + [0.75] * 4], 8, axis=0)
        >>> out = unsharp(step, radius=1.0, amount=1.0)
        >>> out.shape, out.dtype, bool(out[0, 3] < 0.25 and out[0, 4] > 0.75)
        ((8, 8), dtype('float64'), True)
    """
    from skimage import filters

    if not radius > 0 or not amount >= 0:
        raise ValueError(f"radius must be > 0 and amount >= 0, got radius={radius}, amount={amount}")
    x, back = _planes(image)
    # channel_axis must be positive: scikit-image (0.22-0.26 at least) fills only the first rows and
    # leaves the rest uninitialised for channel_axis=-1 (scikit-image issue #7264, fix in PR #8085).
    y = filters.unsharp_mask(x, radius=float(radius), amount=float(amount), preserve_range=True,
                             channel_axis=x.ndim - 1)
    return back(y.astype(np.float32))


def tune(
    restore: Callable[[np.ndarray, np.ndarray, Any], np.ndarray],
    examples: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    candidates: Sequence[Any],
) -> tuple[Any, dict[Any, float]]:
    """The candidate parameter with the best mean PSNR over ``examples``.

    Args:
        restore: ``restore(blurred, kernel, candidate) -> restored``.
        examples: ``(blurred, sharp, kernel)`` triples.
        candidates: Parameter values to try (numbers, tuples, ...; hashable).

    Returns:
        ``(best, {candidate: mean PSNR in dB})``; ties go to the first candidate.

    Examples:
        >>> import numpy as np
        >>> s = np.linspace(0, 1, 64).reshape(8, 8)
        >>> best, scores = tune(lambda b, k, c: np.clip(b * c, 0, 1), [(s, s, None)], [0.5, 1.0, 2.0])
        >>> best, scores[1.0]
        (1.0, inf)
    """
    from blurkit.metrics.functional import psnr

    examples = list(examples)
    candidates = list(candidates)
    if not examples or not candidates:
        raise ValueError("tune needs at least one example and one candidate")
    scores = {c: float(np.mean([psnr(s, restore(b, k, c)) for b, s, k in examples])) for c in candidates}
    best = max(candidates, key=lambda c: scores[c])
    return best, scores


def tune_wiener_balance(
    sharp_images: Iterable[Any],
    sigma_values: float | Iterable[float] | np.ndarray,
    candidates: Sequence[float] = DEFAULT_BALANCES,
    *,
    pad: str | None = "reflect",
    return_scores: bool = False,
) -> float | tuple[float, dict[float, float]]:
    """Choose :func:`wiener`'s ``balance`` for Gaussian blur: best mean PSNR over images and sigmas.

    Each sharp image is blurred with :func:`blur_gaussian` at each sigma (reflect border, 8-bit
    quantization) and restored with the true kernel for every candidate balance.

    Args:
        sharp_images: Sharp images (use validation photos, not test photos).
        sigma_values: One sigma or several (the balance is chosen for all of them together).
        candidates: Balances to try; default :data:`DEFAULT_BALANCES`.
        pad: Passed to :func:`wiener`.
        return_scores: Also return ``{balance: mean PSNR}``.

    Returns:
        The best balance (and the scores when ``return_scores``).

    Examples:
        >>> import numpy as np
        >>> x = np.linspace(0, 1, 40)
        >>> sharp = (np.sin(10 * x)[:, None] * np.sin(7 * x)[None, :] * 0.4 + 0.5).astype(np.float32)
        >>> best, scores = tune_wiener_balance([sharp], 2.0, [1e-3, 1.0], return_scores=True)
        >>> best, scores[1e-3] > scores[1.0]
        (0.001, True)
    """
    values: Iterable[Any] = (np.atleast_1d(cast(Any, sigma_values))  # (NumPy 2.0's stubs refuse the union)
                             if np.isscalar(sigma_values) or isinstance(sigma_values, np.ndarray)
                             else cast(Iterable[Any], sigma_values))  # a list, a tuple, a generator, a set
    sigmas = [float(s) for s in values]
    if not sigmas or any(not (s > 0 and math.isfinite(s)) for s in sigmas):
        raise ValueError(f"sigma_values must be positive numbers, got {sigma_values!r}")
    examples = []
    for img in sharp_images:
        for s in sigmas:
            b, k = blur_gaussian(img, s)
            examples.append((b, img, k))
    best, scores = tune(lambda b, k, c: wiener(b, k, balance=c, pad=pad), examples, candidates)
    return (best, scores) if return_scores else best

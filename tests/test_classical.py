"""The classical baselines: Wiener / Richardson-Lucy with the true kernel, unsharp masking, tuning."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from blurkit.classical import (
    DEFAULT_BALANCES,
    blur_gaussian,
    richardson_lucy,
    tune,
    tune_wiener_balance,
    unsharp,
    wiener,
)
from blurkit.metrics.functional import psnr


def _small(image: np.ndarray, side: int = 128) -> np.ndarray:
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return _small(data.astronaut())


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    from skimage import data

    return _small(data.camera())


def _border(a: np.ndarray, m: int = 10) -> np.ndarray:
    mask = np.ones(a.shape[:2], bool)
    mask[m:-m, m:-m] = False
    return a[mask]


RESTORERS = {
    "wiener": lambda b, k, **kw: wiener(b, k, balance=1e-4, **kw),
    "richardson_lucy": lambda b, k, **kw: richardson_lucy(b, k, **kw),
}


@pytest.mark.parametrize("method", sorted(RESTORERS))
def test_true_kernel_beats_blurred_input(photo, method):
    blurred, kernel = blur_gaussian(photo, 2.0)
    restored = RESTORERS[method](blurred, kernel)
    assert psnr(photo, restored) > psnr(photo, blurred) + 1.5


@pytest.mark.parametrize("method", sorted(RESTORERS))
def test_reflect_padding_avoids_border_ringing(photo, method):
    blurred, kernel = blur_gaussian(photo, 2.0)
    padded = RESTORERS[method](blurred, kernel)
    plain = RESTORERS[method](blurred, kernel, pad=None)
    padded_border, plain_border = psnr(_border(photo), _border(padded)), psnr(_border(photo), _border(plain))
    assert padded_border > plain_border + 3.0
    # and the padded border is restored about as well as the whole image, not worse than the blurred one
    assert padded_border > psnr(_border(photo), _border(blurred))


@pytest.mark.parametrize("method", sorted(RESTORERS))
def test_grayscale(gray, method):
    blurred, kernel = blur_gaussian(gray, 2.0)
    restored = RESTORERS[method](blurred, kernel)
    assert restored.shape == gray.shape and restored.dtype == np.uint8
    assert psnr(gray, restored) > psnr(gray, blurred) + 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40, 48), (40, 48, 1), (40, 48, 3)])
def test_dtype_and_shape_preserved(photo, dtype, shape):
    x = photo[: shape[0], : shape[1]]
    x = x[..., 0] if len(shape) == 2 else x[..., :1] if shape[-1] == 1 else x
    if dtype == np.uint16:
        x = x.astype(np.uint16) * 257
    elif dtype != np.uint8:
        x = (x / 255.0).astype(dtype)
    blurred, kernel = blur_gaussian(x, 1.5)
    for out in (wiener(blurred, kernel), richardson_lucy(blurred, kernel, iterations=5), unsharp(blurred)):
        assert out.shape == x.shape and out.dtype == x.dtype
        if dtype in (np.float32, np.float64):
            assert 0.0 <= out.min() and out.max() <= 1.0


def test_uint8_and_float_give_the_same_result(photo):
    blurred, kernel = blur_gaussian(photo, 2.0)
    a = wiener(blurred, kernel).astype(np.float64) / 255
    b = wiener(blurred.astype(np.float32) / 255, kernel)
    assert np.abs(a - b).max() <= 0.5 / 255 + 1e-6


def test_kernel_is_normalised(photo):
    blurred, kernel = blur_gaussian(photo, 1.0)
    np.testing.assert_array_equal(wiener(blurred, kernel * 7), wiener(blurred, kernel))


def test_unsharp_sharpens_and_amount_zero_is_identity(photo):
    blurred, _ = blur_gaussian(photo, 1.0)
    np.testing.assert_array_equal(unsharp(blurred, radius=1.0, amount=0.0), blurred)
    assert psnr(photo, unsharp(blurred, radius=1.0, amount=1.0)) > psnr(photo, blurred)


def test_unsharp_is_per_channel(photo):
    # guards against scikit-image issue #7264 (channel_axis=-1 leaves most of the output uninitialised)
    x = photo[:48, :40]
    out = unsharp(x, radius=1.5, amount=0.7)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], unsharp(x[..., c], radius=1.5, amount=0.7))


def test_tune_wiener_balance(photo):
    best, scores = tune_wiener_balance([photo[:64, :64]], [1.0, 2.0], [1e-4, 1e-3, 0.3], return_scores=True)
    assert best in (1e-4, 1e-3) and set(scores) == {1e-4, 1e-3, 0.3}
    assert scores[best] == max(scores.values()) and scores[0.3] < scores[best]
    assert tune_wiener_balance([photo[:32, :32]], 2.0, [1e-3]) == 1e-3
    assert 1e-4 in DEFAULT_BALANCES


def test_tune_generic():
    s = np.linspace(0, 1, 256).reshape(16, 16)
    best, scores = tune(lambda b, k, c: np.clip(b + c, 0, 1), [(s, s, None)], [0.1, 0.0, -0.05])
    assert best == 0.0 and scores[0.0] == np.inf
    with pytest.raises(ValueError, match="at least one"):
        tune(lambda b, k, c: b, [], [1])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x, k: wiener(x, k, balance=0), "balance"),
        (lambda x, k: wiener(x, k, pad="mirror"), "pad must be"),
        (lambda x, k: wiener(x, k, pad_width=-1), "pad_width"),
        (lambda x, k: wiener(x, k[0]), "2D"),
        (lambda x, k: wiener(x, -k), "non-negative"),
        (lambda x, k: richardson_lucy(x, k, iterations=0), "iterations"),
        (lambda x, k: wiener(x[None, None], k), "expected an image"),
        (lambda x, k: unsharp(x, radius=0), "radius"),
        (lambda x, k: tune_wiener_balance([x], -1.0), "sigma_values"),
    ],
)
def test_argument_errors(call, match):
    x, k = np.zeros((16, 16), np.float32), np.ones((3, 3)) / 9
    with pytest.raises(ValueError, match=match):
        call(x, k)


def test_import_is_light():
    code = "import sys, blurkit.classical; print('skimage' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- mutation-audit pins: defaults and tie-breaking, as golden values ---------------------------------
def _astronaut_crop_blurred():
    from skimage import data

    sharp = data.astronaut()[:128, :128]
    blurred, kernel = blur_gaussian(sharp, 2.0)
    return sharp, blurred, kernel


def _outer_band(x: np.ndarray, px: int = 8) -> np.ndarray:
    mask = np.ones(x.shape[:2], bool)
    mask[px:-px, px:-px] = False
    return x[mask]


def test_wiener_default_pad_width_is_four_kernel_sizes():
    """Pins :func:`wiener`'s documented default ``pad_width``: four times the kernel size.

    The default must give exactly the result of ``pad_width=4 * size``, and its outer 8-px band a golden
    PSNR (36.50 dB; with one kernel size of padding the band drops to 27.3 dB: the filter's response
    reaches past the kernel and rings at the borders).
    """
    sharp, blurred, kernel = _astronaut_crop_blurred()
    assert kernel.shape == (13, 13)
    default = wiener(blurred, kernel)
    np.testing.assert_array_equal(default, wiener(blurred, kernel, pad_width=4 * kernel.shape[0]))
    assert psnr(_outer_band(sharp), _outer_band(default)) == pytest.approx(36.4987, abs=0.01)


def test_wiener_default_balance_golden_psnr():
    """Pins the default balance (:data:`DEFAULT_WIENER_BALANCE`, 1e-4) through a golden PSNR.

    The default Wiener on astronaut's top-left 128 px crop, Gaussian sigma 2, 8-bit: 37.69 dB (1e-3 would
    give 38.93). ``blurkit demo`` and the docs quote restorations made with this default.
    """
    from blurkit.classical import DEFAULT_WIENER_BALANCE

    sharp, blurred, kernel = _astronaut_crop_blurred()
    assert DEFAULT_WIENER_BALANCE == 1e-4
    assert psnr(sharp, wiener(blurred, kernel)) == pytest.approx(37.6873, abs=0.01)


def test_tune_ties_go_to_the_first_candidate():
    """Pins :func:`tune`'s documented tie-break: among equal scores, the first candidate wins.

    Every candidate restores the image exactly (all scores inf), so the first in the given order must be
    returned, whichever order that is.
    """
    s = np.linspace(0, 1, 256).reshape(16, 16)
    examples = [(s, s, None)]
    for candidates in ([3, 1, 2], [2, 3, 1]):
        best, scores = tune(lambda b, k, c: b, examples, candidates)
        assert all(v == np.inf for v in scores.values())
        assert best == candidates[0]

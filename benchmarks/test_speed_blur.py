"""Speed of blur generation: every registered blur against scikit-image / SciPy doing the same blur.

Each blur is created with its default options and called with a fixed seed, so every call draws the same
parameters; the reference convolves with that very kernel and the matching border mode, on the same uint8 or
float32 photo, and returns the same dtype. The results are checked to agree (a correctness assertion); the
timings are only reported.
"""

from __future__ import annotations

import numpy as np
import pytest
from _util import BLUR_IMAGE, QUICK, attach, lookup, mp, photo, record, timed

from blurkit.registry import BLURS

#: blurkit border name -> scipy.ndimage mode (see blurkit.blurs.functional).
NDIMAGE_MODE = {"reflect": "mirror", "symmetric": "reflect", "edge": "nearest", "constant": "constant",
                "wrap": "grid-wrap"}
SEED = 0


def _cases() -> list[tuple[str, str, str]]:
    out = []
    for name in BLURS.list():
        for dtype in ("uint8", "float32"):
            for impl in ("blurkit", "scipy") + (("skimage",) if name == "gaussian" else ()):
                out.append((name, dtype, impl))
    return out


CASES = _cases()


def _image(dtype: str) -> np.ndarray:
    img = photo(*BLUR_IMAGE)
    return img if dtype == "uint8" else (img / np.float32(255)).astype(np.float32)


def _finish(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    """What blurkit does to the float result: round and clip integers, clip [0, 1] floats."""
    if like.dtype == np.uint8:
        return np.clip(np.rint(y), 0, 255).astype(np.uint8)
    return np.clip(y, 0, 1).astype(like.dtype)


def _reference(impl: str, img: np.ndarray, params: dict, kernel: np.ndarray):
    """A function doing the same blur with scipy.ndimage.convolve or skimage.filters.gaussian."""
    mode = NDIMAGE_MODE[params.get("border", "reflect")]
    if impl == "scipy":
        from scipy import ndimage

        k3 = kernel[:, :, None] if img.ndim == 3 else kernel

        def fn():
            return _finish(ndimage.convolve(img.astype(np.float32), k3, mode=mode), img)

        return fn
    from skimage.filters import gaussian

    sigma, sigma_y = params.get("sigma"), params.get("sigma_y", params.get("sigma"))
    if sigma is None or sigma != sigma_y or sigma < 1e-3:
        pytest.skip("skimage.filters.gaussian only does isotropic Gaussians")
    radius = (kernel.shape[0] - 1) // 2
    truncate = radius / sigma  # scipy's radius is int(truncate * sigma + 0.5): exactly blurkit's kernel

    def fn():
        y = gaussian(img, sigma=sigma, mode=mode, truncate=truncate, preserve_range=True,
                     channel_axis=-1 if img.ndim == 3 else None)
        return _finish(y, img)

    return fn


@pytest.mark.parametrize("name,dtype,impl", CASES, ids=[f"{n}-{d}-{i}" for n, d, i in CASES])
def test_blur(benchmark, name, dtype, impl):
    """Megapixels/s of ``blur(photo, seed=0)`` (sample, kernel, convolve, round) and of the reference."""
    try:
        blur = BLURS.create(name)
    except Exception as exc:  # noqa: BLE001 - a plugin blur may need arguments
        pytest.skip(f"cannot create blur {name!r} with default options: {exc}")
    img = _image(dtype)
    params = blur.sample(np.random.default_rng(SEED))
    kernel = blur.kernel(params)
    if impl == "blurkit":
        def fn():
            return blur(img, seed=SEED)["image"]
    else:
        if params.get("noise_sigma") or params.get("quantize"):
            pytest.skip("the references do not add noise or quantize")
        fn = _reference(impl, img, params, kernel)
    rounds = 2 if QUICK else (10 if impl == "blurkit" else 3)
    t = timed(benchmark, fn, rounds=rounds, warmup=1)
    out = t["result"]
    assert out.shape == img.shape and out.dtype == img.dtype
    if impl != "blurkit":
        mine = blur(img, seed=SEED)["image"]
        if dtype == "uint8":  # float32 (OpenCV) vs float64 (SciPy) sums: at most one rounding step apart
            diff = np.abs(mine.astype(np.int16) - out.astype(np.int16))
            assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
        else:
            np.testing.assert_allclose(mine, out, rtol=0, atol=1e-4)
    s = t["median"]
    key = f"{name} {dtype}"
    record("blur", key, **{f"{impl}_s": s, f"{impl}_mp_per_s": mp(img.shape) / s},
           kernel=list(kernel.shape), size=f"{img.shape[1]}x{img.shape[0]}",
           params={k: v for k, v in params.items() if k not in ("border", "noise_sigma", "quantize")},
           border=params.get("border"))
    mine_s = lookup("blur", key, "blurkit_s")
    refs = [lookup("blur", key, f"{r}_s") for r in ("scipy", "skimage")]
    refs = [r for r in refs if r]
    if mine_s and refs:
        record("blur", key, speedup=min(refs) / mine_s, mp_per_s=mp(img.shape) / mine_s,
               note="speedup: fastest reference / blurkit")
    attach(benchmark, seconds=s, mp_per_s=mp(img.shape) / s, kernel=list(kernel.shape),
           speedup=lookup("blur", key, "speedup"))

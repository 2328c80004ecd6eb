"""The Wiener layers against scikit-image, and the blur-level descriptor."""

from __future__ import annotations

import numpy as np
import pytest

from blurkit.classical import blur_gaussian, wiener
from blurkit.metrics.functional import psnr


def _raw(value: float, lo: float, hi: float) -> float:
    """The pre-sigmoid value that the layers map to ``value`` within ``(lo, hi)``."""
    t = (value - lo) / (hi - lo)
    return float(np.log(t / (1 - t)))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()[100:260, 120:300].astype(np.float32) / 255


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_gaussian_wiener_matches_skimage_with_true_kernel(photo, sigma):
    from blurkit.models.layers import GaussianWiener

    blurred, kernel = blur_gaussian(photo, sigma, seed=0)
    blurred = blurred.astype(np.float32)
    layer = GaussianWiener(pad=64)
    params = np.array([[_raw(sigma, 0.3, 3.5), _raw(-4.0, -6.0, -1.0)]], np.float32)
    ours = np.clip(np.asarray(layer([blurred[None], params]))[0], 0, 1)
    ref = np.clip(wiener(blurred, kernel, balance=1e-4), 0, 1)
    assert psnr(photo, ours) > psnr(photo, blurred) + 2.0  # it really deconvolves
    # same filter (kernel, Laplacian regulariser, balance); only the padding differs slightly
    assert abs(psnr(photo, ours) - psnr(photo, ref)) < 0.3
    assert np.mean(np.abs(ours - ref)) < 3e-3


def _wiener_reference(image: np.ndarray, sigma: float, balance: float, pad: int, radius: int) -> np.ndarray:
    """The layer's filter with NumPy's full complex 2-D FFT in float64: reflect pad, deconvolve, crop."""
    h, w = image.shape[:2]
    ph, pw = min(pad, h - 1), min(pad, w - 1)
    x = np.pad(image.astype(np.float64), ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    hp, wp = x.shape[:2]
    t = np.arange(radius + 1)
    weights = np.exp(-(t**2) / (2 * sigma**2)) * (t <= np.ceil(3 * sigma))
    weights /= 2 * weights.sum() - weights[0]

    def transfer(n: int) -> np.ndarray:
        return weights[0] + 2 * (weights[1:] * np.cos(2 * np.pi * np.outer(np.arange(n), t[1:]) / n)).sum(-1)

    k = np.outer(transfer(hp), transfer(wp))
    lap = ((2 - 2 * np.cos(2 * np.pi * np.arange(hp) / hp))[:, None]
           + (2 - 2 * np.cos(2 * np.pi * np.arange(wp) / wp))[None])
    g = k / (k * k + balance * lap * lap)
    y = np.real(np.fft.ifft2(np.fft.fft2(x, axes=(0, 1)) * g[..., None], axes=(0, 1)))
    return y[ph : ph + h, pw : pw + w]


@pytest.mark.parametrize("shape", [(37, 52), (40, 33), (2, 1), (1, 1)])
def test_gaussian_wiener_matches_float64_reference(shape):
    """Golden values: the layer (float32, analytic transfer functions) against the same filter in float64
    NumPy, for every sigma hypothesis and for images smaller than the padding."""
    from blurkit.models.layers import GaussianWiener

    image = np.random.default_rng(5).random((*shape, 3), dtype=np.float32)
    layer = GaussianWiener(pad=16, scales=(1.0, 0.7))
    sigma, log_balance = 1.7, -3.0
    params = np.array([[_raw(sigma, 0.3, 3.5), _raw(log_balance, -6.0, -1.0)]], np.float32)
    ours = np.asarray(layer([image[None], params]))[0]
    for i, scale in enumerate((1.0, 0.7)):
        ref = _wiener_reference(image, sigma * scale, 10.0**log_balance, 16, layer.radius)
        np.testing.assert_allclose(ours[..., 3 * i : 3 * i + 3], ref, atol=2e-5)


def test_gaussian_wiener_any_size_and_gradients():
    import tensorflow as tf

    from blurkit.models.layers import GaussianWiener

    layer = GaussianWiener()
    for h, w in [(1, 1), (5, 3), (67, 93)]:
        x = tf.constant(np.random.default_rng(0).random((2, h, w, 3), dtype=np.float32))
        p = tf.Variable(tf.zeros((2, 2)))
        with tf.GradientTape() as tape:
            y = layer([x, p])
            loss = tf.reduce_mean(y**2)
        assert tuple(y.shape) == (2, h, w, 3)
        g = tape.gradient(loss, p).numpy()
        assert np.all(np.isfinite(g)) and np.all(np.isfinite(y.numpy()))


def test_gaussian_wiener_validates_arguments():
    from blurkit.models.layers import GaussianWiener

    with pytest.raises(ValueError, match="sigma_range"):
        GaussianWiener(sigma_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="log_balance_range"):
        GaussianWiener(log_balance_range=(-1.0, -2.0))
    with pytest.raises(ValueError, match="pad"):
        GaussianWiener(pad=-1)


def test_radial_spectrum_orders_blur_levels(photo):
    """More blur -> less high-frequency power: the descriptor that lets the estimator read sigma."""
    from blurkit.models.layers import RadialSpectrum

    layer = RadialSpectrum(bins=16)
    feats = [np.asarray(layer(blur_gaussian(photo, s, seed=0)[0][None].astype(np.float32)))[0]
             for s in (0.5, 1.0, 2.0, 3.0)]
    high = [f[4:10].mean() for f in feats]  # mid-to-high frequency rings
    assert all(a > b for a, b in zip(high, high[1:], strict=False)), high
    assert all(f[0] == 0 for f in feats)  # contrast-normalised by the first ring
    # contrast changes shift the whole spectrum, which the first ring removes (above the noise floor)
    dimmer = np.asarray(layer((photo * 0.5)[None]))[0]
    assert np.allclose(dimmer[:4], np.asarray(layer(photo[None]))[0][:4], atol=0.05)


def test_sigma_hypotheses_stack_deconvolutions(photo):
    """``scales`` gives one deconvolution per sigma hypothesis; the first equals the single-scale layer."""
    from blurkit.models.layers import GaussianWiener

    blurred = blur_gaussian(photo, 2.0, seed=0)[0][None].astype(np.float32)
    params = np.array([[_raw(2.0, 0.3, 3.5), _raw(-4.0, -6.0, -1.0)]], np.float32)
    multi = np.asarray(GaussianWiener(scales=(1.0, 0.5, 1.5))([blurred, params]))
    single = np.asarray(GaussianWiener()([blurred, params]))
    assert multi.shape == (1, *photo.shape[:2], 9)
    np.testing.assert_allclose(multi[..., :3], single, atol=1e-5)
    under, right, over = (psnr(photo, np.clip(multi[0, ..., i : i + 3], 0, 1)) for i in (3, 0, 6))
    assert right > under and right > over  # the true sigma is the best hypothesis
    with pytest.raises(ValueError, match="scales"):
        GaussianWiener(scales=())


def test_wiener_unet_with_hypotheses_round_trips(tmp_path):
    import keras

    from blurkit.registry import MODELS

    model = MODELS.create("wiener_unet", width=4, depth=1, estimator_width=4, scales=(1.0, 0.8, 1.25))
    x = np.random.default_rng(1).random((1, 37, 29, 3), dtype=np.float32)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert loaded.get_layer("restorer").get_layer("wiener").scales == (1.0, 0.8, 1.25)


def test_raw_sigma_inverts_blur_parameters():
    """``GaussianWiener.raw_sigma`` is the inverse of ``blur_parameters``' sigma mapping over the sigma range,
    and gives the range's ends for sigmas at or beyond them."""
    from blurkit.models.layers import GaussianWiener

    layer = GaussianWiener(sigma_range=(0.3, 3.5))
    for sigma in (0.35, 1.0, 2.2, 3.45):
        raw = layer.raw_sigma(sigma)
        back = np.asarray(layer.blur_parameters(np.array([[raw, 0.0]], "float32"))[0])[0]
        assert back == pytest.approx(sigma, abs=1e-5)
    assert layer.raw_sigma(1.0) < layer.raw_sigma(2.0)
    for sigma, end in ((0.3, 0.3), (0.1, 0.3), (3.5, 3.5), (9.0, 3.5)):
        back = np.asarray(layer.blur_parameters(np.array([[layer.raw_sigma(sigma), 0.0]], "float32"))[0])[0]
        assert back == pytest.approx(end, abs=1e-4)


def test_wiener_unet_is_estimator_then_restorer():
    """The blur can be estimated on one image (a whole photo) and used to restore another (a tile of it)."""
    from blurkit.registry import MODELS

    model = MODELS.create("wiener_unet", width=4, depth=1, estimator_width=4)
    estimator, restorer = model.get_layer("estimator"), model.get_layer("restorer")
    rng = np.random.default_rng(2)
    for layer in (estimator.get_layer("est_params"), restorer.get_layer("tail")):  # not the zero init
        layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()])
    x = rng.random((1, 40, 36, 3), dtype=np.float32)
    params = estimator.predict(x, verbose=0)
    assert params.shape == (1, 2)
    whole = model.predict(x, verbose=0)
    np.testing.assert_allclose(restorer.predict([x, params], verbose=0), whole, atol=1e-5)
    # another blur estimate gives another restoration: the restorer really uses the parameters
    other = restorer.predict([x, params + np.float32([2.0, -2.0])], verbose=0)
    assert np.abs(other - whole).mean() > 1e-3
    assert not set(map(id, estimator.weights)) & set(map(id, restorer.weights))  # two separate parts
    assert len(estimator.weights) + len(restorer.weights) == len(model.weights)


def test_wiener_unet_attention_pool_starts_as_the_mean(tmp_path):
    """``estimator_pool="attention"`` adds only a zero-started logit convolution: with a mean model's weights
    it computes the same; trained logits change the estimate; the file loads in safe mode."""
    import keras

    from blurkit.registry import MODELS

    mean = MODELS.create("wiener_unet", width=4, depth=1, estimator_width=4)
    att = MODELS.create("wiener_unet", width=4, depth=1, estimator_width=4, estimator_pool="attention")
    rng = np.random.default_rng(5)
    for a, m in ((att.get_layer("estimator"), mean.get_layer("estimator")),
                 (att.get_layer("restorer"), mean.get_layer("restorer"))):
        have = {layer.name: layer for layer in m.layers}
        for layer in a.layers:
            if layer.weights and layer.name != "est_attention":
                if layer.name == "est_params":  # not the zero init, so the estimate depends on the pooling
                    have[layer.name].set_weights([rng.normal(0, 0.3, w.shape).astype("float32")
                                                  for w in layer.get_weights()])
                layer.set_weights(have[layer.name].get_weights())
    x = rng.random((2, 40, 36, 3), dtype=np.float32)
    x[:, :, :18] = 0.5  # a flat half and a textured half: where the estimator looks matters
    est, est_mean = att.get_layer("estimator"), mean.get_layer("estimator")
    np.testing.assert_allclose(est.predict(x, verbose=0), est_mean.predict(x, verbose=0), atol=1e-5)
    pooled = keras.Model(est.inputs, est.get_layer("est_pool").output)
    before = pooled.predict(x, verbose=0)
    conv = est.get_layer("est_attention")  # trained logits: the pooled features are no longer the mean
    conv.set_weights([rng.normal(0, 100.0, w.shape).astype("float32") for w in conv.get_weights()])
    assert np.abs(pooled.predict(x, verbose=0) - before).max() > 0.1 * np.abs(before).max()
    path = tmp_path / "att.keras"
    att.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), att.predict(x, verbose=0), atol=1e-6)
    with pytest.raises(ValueError, match="estimator_pool"):
        MODELS.create("wiener_unet", estimator_pool="max")

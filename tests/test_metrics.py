"""Metrics: registry-generated contract tests, golden values vs scikit-image, Keras/tensor agreement."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from blurkit.metrics import (
    METRICS,
    accuracy,
    channel_accuracy,
    custom_objects,
    get_loss,
    keras_metric,
    keras_metrics,
    mse,
    psnr,
    ssim,
)
from blurkit.registry import UnknownComponentError
from blurkit.testing.metrics import check_metric

PHOTOS = ["astronaut", "camera", "coffee", "chelsea"]
SKIMAGE_SSIM = dict(data_range=1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


@pytest.fixture(scope="module")
def pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(sharp, blurred) uint8 photos: skimage.data blurred with cv2.GaussianBlur (sigma 2)."""
    import cv2
    from skimage import data

    out = {}
    for name in PHOTOS:
        img = getattr(data, name)()
        out[name] = img, cv2.GaussianBlur(img, (0, 0), 2.0)
    return out


def _mae(y_true, y_pred) -> float:
    """A plugin-style plain NumPy metric (no tensor implementation), following the conventions."""
    from blurkit.metrics import prepare

    t, p = prepare(y_true, y_pred)
    axes = tuple(range(1, t.ndim)) if t.ndim == 4 else None
    return float(np.mean(np.mean(np.abs(t - p), axis=axes)))


_mae.best = 0.0
_mae.higher_is_better = False


MAE = "bk_test_mae"  # not "mae": a real plugin of that name may be installed, and must not be replaced


@pytest.fixture
def mae_plugin():
    METRICS.register(MAE, _mae, source="plugin test 0")
    yield _mae
    METRICS.unregister(MAE)


# -- contract, generated from the registry ----------------------------------------------------------
@pytest.mark.parametrize("name", METRICS.list())
def test_contract(name):
    check_metric(name)


def test_contract_plugin(mae_plugin):
    check_metric(MAE)


def test_contract_catches_unscaled_metric():
    def bad(y_true, y_pred):
        return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))

    with pytest.raises(AssertionError, match="uint8 input must equal"):
        check_metric(bad, keras=False)


def test_the_contract_checks_hold_under_python_optimize():
    """``python -O`` strips ``assert`` statements: check_metric passed a metric returning a NumPy float (and
    any other breach) there. Its checks raise AssertionError themselves."""
    code = ("import numpy as np\n"
            "from blurkit.testing import check_metric\n"
            "def bad(t, p):\n"
            "    if np.shape(t) != np.shape(p): raise ValueError(f'{np.shape(t)} vs {np.shape(p)}')\n"
            "    return np.float32('nan')\n"
            "try:\n"
            "    check_metric(bad, keras=False)\n"
            "except AssertionError as exc:\n"
            "    print('refused:', exc)\n")
    proc = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "refused:" in proc.stdout and "must return a Python float" in proc.stdout


def test_import_is_light():
    code = (
        "import sys, blurkit, blurkit.metrics, blurkit.metrics.functional; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- golden values vs scikit-image ------------------------------------------------------------------
@pytest.mark.parametrize("photo", PHOTOS)
def test_golden_vs_skimage(pairs, photo):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    sharp, blurred = pairs[photo]
    t, p = sharp / 255.0, blurred / 255.0
    channel_axis = -1 if sharp.ndim == 3 else None
    want_psnr = peak_signal_noise_ratio(t, p, data_range=1)
    want_ssim = structural_similarity(t, p, channel_axis=channel_axis, **SKIMAGE_SSIM)
    assert abs(psnr(sharp, blurred) - want_psnr) < 1e-3
    assert abs(ssim(sharp, blurred) - want_ssim) < 1e-4
    assert abs(mse(sharp, blurred) - np.mean((t - p) ** 2)) < 1e-12
    assert 0.0 < accuracy(sharp, blurred) < 1.0


def test_batch_is_mean_of_images(pairs):
    sharp, blurred = pairs["astronaut"]
    crops = [(slice(0, 64), slice(0, 64)), (slice(200, 264), slice(300, 364))]
    t = np.stack([sharp[c] for c in crops])
    p = np.stack([blurred[c] for c in crops])
    for fn in (mse, psnr, ssim, accuracy, channel_accuracy):
        assert fn(t, p) == pytest.approx(np.mean([fn(a, b) for a, b in zip(t, p, strict=True)]), rel=1e-12)


@pytest.mark.parametrize("name", ["mse", "psnr", "ssim", "accuracy", "channel_accuracy"])
def test_float_images_far_outside_0_1_or_not_finite_are_refused(name):
    """A [0, 255] float image against a uint8 one would score about -42 dB PSNR without a word (scikit-image
    refuses it too, asking for data_range); overshoot up to half the range is accepted, as predict accepts it."""
    fn = METRICS.get(name)
    u8 = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"float images are taken as \[0, 1\].*divide a \[0, 255\] image by 255"):
        fn(u8, u8.astype(np.float32))
    nan = u8 / 255.0
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        fn(u8, nan)
    over = u8 / 255.0
    over[0, 0, 0] = 1.2
    assert np.isfinite(fn(u8, over))


@pytest.mark.parametrize("name", ["mse", "psnr", "ssim", "accuracy", "channel_accuracy"])
def test_pil_images_are_scored_as_numpy_arrays(name):
    """A PIL image went down the tensor path: a tf.Tensor came back instead of the documented float, and the
    NumPy checks were skipped."""
    from PIL import Image

    fn = METRICS.get(name)
    a = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = a[::-1].copy()
    got = fn(Image.fromarray(a), Image.fromarray(b))
    assert type(got) is float and got == fn(a, b)
    with pytest.raises(ValueError, match="NaN or infinite"):
        fn(Image.fromarray(np.full((16, 16), np.nan, np.float32)), Image.fromarray(a[..., 0].astype(np.float32)))


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(8, 8, 3\) and \(8, 8\)"):
        psnr(np.zeros((8, 8, 3)), np.zeros((8, 8)))


def test_psnr_y_is_the_bt601_luma_psnr_of_basicsr_and_skimage():
    """``psnr_y`` (BasicSR's test_y_channel) equals scikit-image's PSNR on the Y of ``rgb2ycbcr`` (16-235, data
    range 255), NumPy and tensor alike; grey images are scored as they are; alpha is refused."""
    import tensorflow as tf
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio

    from blurkit.metrics import psnr_y

    rng = np.random.default_rng(4)
    t = rng.random((2, 24, 20, 3))
    p = np.clip(t + rng.normal(0, 0.05, t.shape), 0, 1)
    want = [peak_signal_noise_ratio(rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0], data_range=255)
            for a, b in zip(t, p, strict=True)]
    assert psnr_y(t[0], p[0]) == pytest.approx(want[0], abs=1e-9)
    assert psnr_y(t, p) == pytest.approx(np.mean(want), abs=1e-9)
    assert float(psnr_y(tf.constant(t, tf.float32), tf.constant(p, tf.float32))) == pytest.approx(np.mean(want),
                                                                                                   abs=1e-3)
    assert psnr_y(t[0], p[0]) > psnr(t[0], p[0])  # the luma averages the channels' independent errors
    assert psnr_y(t[0, ..., 0], p[0, ..., 0]) == psnr(t[0, ..., 0], p[0, ..., 0])
    with pytest.raises(ValueError, match="RGB or grey"):
        psnr_y(rng.random((16, 16, 4)), rng.random((16, 16, 4)))


def test_ssim_y_is_the_bt601_luma_ssim_of_basicsr_and_skimage():
    """``ssim_y`` (BasicSR's calculate_ssim with test_y_channel) equals scikit-image's SSIM, with blurkit's
    settings, on the Y of ``rgb2ycbcr`` (16-235, data range 255), NumPy and tensor alike; grey images are scored
    as they are; alpha is refused."""
    import tensorflow as tf
    from skimage.color import rgb2ycbcr
    from skimage.metrics import structural_similarity

    from blurkit.metrics import ssim, ssim_y

    rng = np.random.default_rng(5)
    t = rng.random((2, 24, 20, 3))
    p = np.clip(t + rng.normal(0, 0.05, t.shape), 0, 1)
    want = [structural_similarity(rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0], data_range=255,
                                  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for a, b in zip(t, p, strict=True)]
    assert ssim_y(t[0], p[0]) == pytest.approx(want[0], abs=1e-12)
    assert ssim_y(t, p) == pytest.approx(np.mean(want), abs=1e-12)
    assert ssim_y((t * 255).round().astype(np.uint8), (p * 255).round().astype(np.uint8)) == pytest.approx(
        np.mean(want), abs=2e-3)
    assert float(ssim_y(tf.constant(t, tf.float32), tf.constant(p, tf.float32))) == pytest.approx(np.mean(want),
                                                                                                   abs=1e-5)
    assert ssim_y(t[0, ..., :1], p[0, ..., :1]) == ssim(t[0, ..., :1], p[0, ..., :1])
    assert ssim_y(t[0, ..., 0], p[0, ..., 0]) == ssim(t[0, ..., 0], p[0, ..., 0])
    with pytest.raises(ValueError, match="RGB or grey"):
        ssim_y(rng.random((16, 16, 4)), rng.random((16, 16, 4)))


def test_a_stack_of_grey_images_is_refused_not_scored_as_one_image():
    """(N, H, W) grey images were read as one (H, W, C) image with W channels (12 grey 64x64 images: 34.46 dB
    instead of their mean 36.33; SSIM over the wrong axes)."""
    rng = np.random.default_rng(0)
    sharp = rng.random((12, 16, 16))
    noisy = np.clip(sharp + rng.normal(0, 0.02, sharp.shape), 0, 1)
    for fn in (psnr, ssim):
        with pytest.raises(ValueError, match=r"\(12, 16, 16\).*\(N, H, W, 1\)"):
            fn(sharp, noisy)
        per_image = np.mean([fn(a, b) for a, b in zip(sharp, noisy, strict=True)])
        assert fn(sharp[..., None], noisy[..., None]) == pytest.approx(per_image)
    assert np.isfinite(psnr(sharp[:, :, :4], noisy[:, :, :4]))  # up to 4 channels: an (H, W, C) image


@pytest.mark.parametrize("name", METRICS.list())
def test_integer_images_other_than_uint8_and_uint16_are_refused(name):
    """A list of ints (int64) would be scaled by 2**63 - 1: a near-zero MSE, a PSNR of hundreds of dB."""
    import tensorflow as tf

    fn = METRICS.get(name)
    rng = np.random.default_rng(5)
    t8 = rng.integers(0, 256, (12, 12), dtype=np.uint8)
    p8 = np.clip(t8 + rng.integers(-9, 10, t8.shape), 0, 255).astype(np.uint8)
    for t, p in ((t8.tolist(), p8.tolist()), (t8.astype(np.int32), p8.astype(np.int32))):
        with pytest.raises(TypeError, match="must be uint8 .* or uint16 .*, got int"):
            fn(t, p)
    assert fn(t8, p8) == pytest.approx(fn(t8 / 255.0, p8 / 255.0), rel=1e-9)
    assert fn(t8.astype(np.uint16) * 257, p8.astype(np.uint16) * 257) == pytest.approx(fn(t8, p8), rel=1e-9)
    batch = lambda a: tf.constant(a[None, ..., None])  # noqa: E731
    with pytest.raises(TypeError, match="got int32"):
        fn.keras_fn(batch(t8.astype(np.int32)), batch(p8.astype(np.int32)))
    assert float(np.mean(fn.keras_fn(batch(t8), batch(p8)))) == pytest.approx(fn(t8, p8), rel=1e-5, abs=1e-6)


def test_accuracy_definitions():
    t = np.array([[[200, 10, 0], [10, 10, 10], [0, 0, 255]]], np.uint8)
    p = np.array([[[150, 11, 0], [12, 10, 7], [0, 0, 254]]], np.uint8)
    # 7 of 9 values within 2 grey levels (off: 50 and 3).
    assert accuracy(t, p) == pytest.approx(7 / 9)
    assert accuracy(t, p, tol=0) == pytest.approx(4 / 9)
    # argmax per pixel: red == red; grey (10, 10, 10) ties to channel 0 == red of (12, 10, 7); blue == blue.
    assert channel_accuracy(t, p) == 1.0


# -- tensors and Keras ------------------------------------------------------------------------------
@pytest.mark.parametrize("photo", PHOTOS)
def test_tensor_matches_numpy(pairs, photo):
    import tensorflow as tf

    sharp, blurred = pairs[photo]
    t = tf.constant(sharp.astype(np.float32) / 255)
    p = tf.constant(blurred.astype(np.float32) / 255)
    # The tensor SSIM uses the same window and valid region as skimage: only float32 rounding differs.
    assert abs(float(psnr(t, p)) - psnr(sharp, blurred)) < 1e-3
    assert abs(float(ssim(t, p)) - ssim(sharp, blurred)) < 1e-4
    assert abs(float(mse(t, p)) - mse(sharp, blurred)) < 1e-6
    assert abs(float(accuracy(t, p)) - accuracy(sharp, blurred)) < 1e-6
    if sharp.ndim == 3:
        assert abs(float(channel_accuracy(t, p)) - channel_accuracy(sharp, blurred)) < 1e-6
    # uint8 tensors are scaled like uint8 arrays.
    assert abs(float(psnr(tf.constant(sharp), tf.constant(blurred))) - psnr(sharp, blurred)) < 1e-3


def test_tensor_batch_is_per_image_mean(pairs):
    import tensorflow as tf

    sharp, blurred = pairs["astronaut"]
    t = np.stack([sharp[:128, :128], sharp[300:428, 200:328]]) / 255.0
    p = np.stack([blurred[:128, :128], np.clip(blurred[300:428, 200:328] / 255.0 + 0.1, 0, 1) * 255]) / 255.0
    tt, pt = tf.constant(t, tf.float32), tf.constant(p, tf.float32)
    assert float(psnr(tt, pt)) == pytest.approx(psnr(t, p), abs=1e-3)
    assert float(ssim(tt, pt)) == pytest.approx(ssim(t, p), abs=1e-4)
    assert psnr(t, p) != pytest.approx(-10 * np.log10(mse(t, p)), abs=1e-2)  # not PSNR of the batch MSE
    assert float(psnr(tt, tt)) == np.inf


def test_tensor_ssim_refuses_images_below_its_window_as_numpy_does():
    import tensorflow as tf

    small = np.zeros((2, 10, 12, 3), np.float32)
    for a in (small, tf.constant(small)):
        with pytest.raises(ValueError, match=r"ssim needs images of at least 11x11 pixels"):
            ssim(a, a)


def test_channel_accuracy_is_keras_categorical_accuracy(pairs):
    import keras

    sharp, blurred = pairs["coffee"]
    t = sharp.astype(np.float32)[None] / 255
    p = blurred.astype(np.float32)[None] / 255
    want = float(np.mean(keras.ops.convert_to_numpy(keras.metrics.categorical_accuracy(t, p))))
    assert channel_accuracy(t, p) == pytest.approx(want, abs=1e-6)
    assert float(channel_accuracy.keras_fn(t, p)) == pytest.approx(want, abs=1e-6)


def _tiny_model(size: int = 32):
    import keras

    inputs = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(3, 1)
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([0.9 * np.eye(3, dtype=np.float32)[None, None], np.full((3,), 0.05, np.float32)])
    return model


@pytest.fixture(scope="module")
def xy():
    rng = np.random.default_rng(1)
    t = rng.random((5, 32, 32, 3)).astype(np.float32)
    return np.clip(t + rng.normal(0, 0.05, t.shape), 0, 1).astype(np.float32), t


def test_builtin_functions_compile_directly(xy):
    x, y = xy
    model = _tiny_model()
    model.compile(loss="mse", metrics=[psnr, ssim])
    logs = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0)
    assert logs["psnr"] == pytest.approx(psnr(y, pred), abs=1e-3)
    assert logs["ssim"] == pytest.approx(ssim(y, pred), abs=1e-4)


def test_keras_metrics_under_xla(xy):
    """All tensor implementations compile with XLA (Keras turns it on by default on GPUs)."""
    x, y = xy
    model = _tiny_model()
    names = [n for n in METRICS.list() if hasattr(METRICS.get(n), "keras_fn")]
    model.compile(loss="mse", metrics=keras_metrics(names), jit_compile=True)
    logs = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    pred = model.predict(x, verbose=0).astype(np.float64)
    for n in names:
        assert logs[n] == pytest.approx(METRICS.get(n)(y, pred), rel=1e-4, abs=1e-4), n


@pytest.mark.parametrize("jit", [False, True])
def test_keras_metrics_weigh_each_image_by_its_sample_weight(xy, mae_plugin, jit):
    """As Keras' own metrics (``compile(weighted_metrics=...)``): a weight 0 leaves an image out, weights 2 and
    1 count an image twice, per-pixel weights count by their mean per image; and ``update_state`` takes NumPy
    arrays as well as tensors."""
    x, y = xy
    model = _tiny_model()
    names = [n for n in METRICS.list() if hasattr(METRICS.get(n), "keras_fn")] + ([] if jit else [MAE])
    # Keras hands sample weights to weighted_metrics (not to metrics); the loss must take per-image weights too
    model.compile(loss=get_loss("mse"), weighted_metrics=keras_metrics(names), jit_compile=jit)
    pred = model.predict(x, verbose=0).astype(np.float64)
    w = np.array([1.0, 0.0, 2.0, 1.0, 0.0], np.float32)
    logs = model.evaluate(x, y, sample_weight=w, batch_size=2, verbose=0, return_dict=True)
    for n in names:
        per_image = [METRICS.get(n)(y[i : i + 1], pred[i : i + 1]) for i in range(len(y))]
        assert logs[n] == pytest.approx(np.average(per_image, weights=w), rel=1e-4, abs=1e-4), n
        m = keras_metric(n)
        m.update_state(y, pred.astype(np.float32))  # NumPy in
        assert float(m.result()) == pytest.approx(METRICS.get(n)(y, pred), rel=1e-4, abs=1e-4), n
        m.reset_state()
        pixels = np.broadcast_to(w[:, None, None], y.shape[:3])
        m.update_state(y, pred.astype(np.float32), sample_weight=pixels)
        assert float(m.result()) == pytest.approx(np.average(per_image, weights=w), rel=1e-4, abs=1e-4), n


def test_a_zero_weight_leaves_out_an_image_whose_psnr_is_infinite():
    """``inf * 0`` made the whole weighted PSNR NaN when an exactly restored image had weight 0."""
    rng = np.random.default_rng(3)
    y = rng.random((4, 16, 16, 3)).astype(np.float32)
    pred = y.copy()
    pred[2:] = np.clip(y[2:] + rng.normal(0, 0.05, y[2:].shape), 0, 1)  # the first two are exact
    want = np.mean([METRICS.get("psnr")(y[i], pred[i]) for i in (2, 3)])
    for weights in ([0.0, 0.0, 1.0, 1.0], np.broadcast_to(np.array([0.0, 0.0, 1.0, 1.0])[:, None, None], (4, 16, 16))):
        m = keras_metric("psnr")
        m.update_state(y, pred, sample_weight=np.asarray(weights, np.float32))
        assert float(m.result()) == pytest.approx(want, rel=1e-5)
    m = keras_metric("psnr")
    m.update_state(y[0], pred[0], sample_weight=np.float32(0.0))  # one image, weight 0: nothing counted
    m.update_state(y[2], pred[2], sample_weight=np.float32(1.0))
    assert float(m.result()) == pytest.approx(METRICS.get("psnr")(y[2], pred[2]), rel=1e-5)


def test_plugin_numpy_metric_in_keras(xy, mae_plugin):
    x, y = xy
    model = _tiny_model()
    by_name, by_fn = keras_metric(MAE), keras_metric(_mae, name="mae_fn")
    assert by_name.supports_jit is False
    model.compile(loss="mse", metrics=[by_name, by_fn], jit_compile=False)
    logs = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    want = _mae(y, model.predict(x, verbose=0))
    assert logs[MAE] == pytest.approx(want, rel=1e-5)
    assert logs["mae_fn"] == pytest.approx(want, rel=1e-5)
    assert by_fn.get_config()["metric"] == MAE  # the registered name, found from the function


def test_keras_metric_config_and_errors(mae_plugin):
    import keras

    m = keras_metric("accuracy", tol=0.01)
    config = m.get_config()
    assert (
        config["metric"] == "accuracy" and config["kwargs"] == {"tol": 0.01} and config["name"] == "accuracy"
    )
    clone = type(m).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(m))
    assert restored.get_config() == config and restored.supports_jit
    assert keras_metric(MAE).get_config()["metric"] == MAE
    assert keras_metric("psnr")._direction == "up" and keras_metric("mse")._direction == "down"
    with pytest.raises(UnknownComponentError, match="did you mean 'psnr'"):
        keras_metric("psnrr")


def test_losses():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(2)
    t = rng.random((2, 16, 16, 3)).astype(np.float32)
    p = np.clip(t + rng.normal(0, 0.1, t.shape), 0, 1).astype(np.float32)
    d = t.astype(np.float64) - p
    assert float(get_loss("mse")(t, p)) == pytest.approx(np.mean(d**2), rel=1e-5)
    assert float(get_loss("l1")(t, p)) == pytest.approx(np.mean(np.abs(d)), rel=1e-5)
    want = np.mean(np.sqrt(d**2 + 1e-4))
    assert float(get_loss("charbonnier", eps=1e-2)(t, p)) == pytest.approx(want, rel=1e-5)
    assert float(get_loss("psnr_loss")(t, p)) == pytest.approx(-psnr(t, p), abs=1e-3)
    assert np.isfinite(float(get_loss("psnr_loss")(t, t)))
    # gradients flow through every loss
    for name in ["mse", "l1", "charbonnier", "psnr_loss"]:
        loss = get_loss(name)
        assert loss.name == name
        v = tf.Variable(p)
        with tf.GradientTape() as tape:
            value = loss(t, v)
        assert np.isfinite(tape.gradient(value, v).numpy()).all(), name
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert type(again) is type(loss) and again.get_config() == loss.get_config()
    assert get_loss("charbonnier", eps=0.5).get_config()["eps"] == 0.5
    with pytest.raises(UnknownComponentError, match="Available: mse, l1, charbonnier, psnr_loss"):
        get_loss("ssim")
    # every constructor argument round-trips through the config, the loss's own name included
    named = get_loss("l1", name="my_l1", reduction="sum", dtype="float16")
    again = type(named).from_config(named.get_config())
    assert (again.name, again.reduction, again.dtype) == ("my_l1", "sum", "float16")


@pytest.mark.filterwarnings("error:Data has no positive values")
def test_unknown_loss_is_refused_at_construction_and_every_loss_trains_from_the_cli(tmp_path):
    """``Deblurrer(loss=...)`` checks the name at once; the CLI offers exactly the known losses."""
    from blurkit import Deblurrer
    from blurkit.cli.main import main
    from blurkit.metrics.losses import LOSSES

    with pytest.raises(UnknownComponentError, match="did you mean 'psnr_loss'"):
        Deblurrer(model="unet", loss="psnr")
    photos = tmp_path / "photos"
    photos.mkdir()
    from blurkit.data.io import write_image

    write_image(photos / "a.png", (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8))
    for name in LOSSES:
        out = tmp_path / f"{name}.keras"
        assert main(["train", str(photos), "--model", "unet", "--model-option", "width=4", "--model-option",
                     "depth=1", "--loss", name, "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
                     "--patch-size", "16", "--out", str(out)]) == 0
        assert Deblurrer.read_metadata(out)["facade"]["loss"] == name
        assert out.with_suffix(".png").stat().st_size > 0  # the curves, on a linear axis for psnr_loss (< 0)


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_saved_model_round_trip(tmp_path, xy):
    """A .keras file with blurkit metrics and loss reloads in a fresh process after custom_objects()."""
    x, y = xy
    model = _tiny_model()
    model.compile(loss=get_loss("charbonnier"), metrics=keras_metrics(["psnr", "ssim"]))
    objects = custom_objects()
    assert {"blurkit>MeanMetric", "blurkit>Charbonnier", "blurkit>PSNRLoss"} <= set(objects)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    model.save(tmp_path / "tiny.keras")
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    code = (
        "import json, sys, warnings, numpy as np, keras, blurkit.metrics as m; warnings.simplefilter('ignore'); "
        "m.custom_objects(); d = sys.argv[1]; model = keras.models.load_model(d + '/tiny.keras'); "
        "print(json.dumps(model.evaluate(np.load(d + '/x.npy'), np.load(d + '/y.npy'), verbose=0, "
        "return_dict=True)))"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    after = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(after) == {"loss", "psnr", "ssim"}
    assert after == pytest.approx(before, rel=1e-5)


def test_metrics_work_in_bands_equal_to_the_whole_image(monkeypatch):
    """SSIM is computed channel by channel in bands of map rows, and the squared errors and accuracy in bands
    of image rows; with bands of a few rows (down to one) the values are scikit-image's and NumPy's on the
    whole image, for grey, colour and batches, heights that the bands do not divide included."""
    from skimage.metrics import structural_similarity

    import blurkit.metrics.functional as fn

    rng = np.random.default_rng(3)
    for shape in [(11, 11), (12, 30), (61, 47, 3), (2, 33, 29, 3), (40, 31, 1)]:
        t = rng.random(shape)
        p = np.clip(t + rng.normal(0, 0.1, shape), 0, 1)
        images = list(zip(t, p, strict=True)) if len(shape) == 4 else [(t, p)]
        want_ssim = np.mean([structural_similarity(a, b, channel_axis=-1 if a.ndim == 3 else None, **SKIMAGE_SSIM)
                             for a, b in images])
        want_mse = np.mean((t - p) ** 2)
        want_psnr = np.mean([-10 * np.log10(np.mean((a - b) ** 2)) for a, b in images])
        want_acc = np.mean(np.abs(t - p) <= 2 / 255 + fn.ACC_SLACK)
        for band in (1, 4, 7, 1000):
            monkeypatch.setattr(fn, "_SSIM_BAND", band)
            monkeypatch.setattr(fn, "_ROW_BAND", band)
            assert abs(ssim(t, p) - want_ssim) < 1e-12, (shape, band)
            assert abs(mse(t, p) - want_mse) < 1e-15 and abs(psnr(t, p) - want_psnr) < 1e-10, (shape, band)
            assert accuracy(t, p) == pytest.approx(want_acc, abs=1e-15), (shape, band)


def test_metrics_on_a_large_photo_need_few_copies_of_it():
    """``evaluate`` of one 24 MP photo took 5.6 GB, most of it scikit-image's SSIM on all channels at once
    (about 15 float64 arrays of the image's size) and float64 temporaries of the differences. Measured with
    tracemalloc (NumPy reports its buffers to it), in units of the image's float64 size."""
    import tracemalloc

    rng = np.random.default_rng(0)
    t = rng.random((1200, 800, 3))
    p = np.clip(t + 0.05, 0, 1)
    for metric, most in ((ssim, 2.5), (psnr, 1.5), (mse, 1.5), (accuracy, 1.5)):
        tracemalloc.start()
        try:
            metric(t, p)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < most * t.nbytes, (metric.__name__, peak / t.nbytes)


def test_uint16_tensors_are_scaled_by_65535_like_uint16_arrays(pairs):
    """Pins that the tensor path of the metrics scales uint16 inputs by 65535, as the NumPy path does.

    16-bit photos (and the Keras metric fed uint16 batches) must score the same in TensorFlow as in NumPy:
    a scale taken from uint8 (255) would put values up to 257 into the "[0, 1]" formulas and give a PSNR
    off by tens of dB. Checked for psnr, ssim and mse on tensors, and for ``keras_metric("psnr")``.
    """
    import tensorflow as tf

    sharp, blurred = pairs["astronaut"]
    rng = np.random.default_rng(0)
    a = sharp[:64, :64].astype(np.uint16) * 257 + rng.integers(0, 257, (64, 64, 3), dtype=np.uint16)
    b = blurred[:64, :64].astype(np.uint16) * 257 + rng.integers(0, 257, (64, 64, 3), dtype=np.uint16)
    ta, tb = tf.constant(a), tf.constant(b)
    assert float(psnr(ta, tb)) == pytest.approx(psnr(a, b), rel=1e-5)
    assert float(ssim(ta, tb)) == pytest.approx(ssim(a, b), rel=1e-4)
    assert float(mse(ta, tb)) == pytest.approx(mse(a, b), rel=1e-4)
    m = keras_metric("psnr")
    m.update_state(tf.constant(a[None]), tf.constant(b[None]))
    assert float(m.result()) == pytest.approx(psnr(a, b), rel=1e-5)

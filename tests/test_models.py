"""Model builders: the registry-generated contract, architecture specifics, custom layers and FLOPs."""

from __future__ import annotations

import random
import subprocess
import sys

import keras
import numpy as np
import pytest

from blurkit.models import autoencoder, flops_by_layer, flops_per_pixel, nafnet, unet
from blurkit.models.layers import (
    ChannelScale,
    CropToReference,
    PadToMultiple,
    PixelShuffle,
    SimpleGate,
    SoftmaxPool2D,
)
from blurkit.registry import MODELS
from blurkit.testing.models import check_model

# Tiny configs for the contract check (it trains each model for a few dozen steps). Models without an
# entry (plugins) are checked with their defaults.
TINY = {
    "autoencoder": {"input_size": 16, "filters": (8, 16), "latent_dim": 16},
    "unet": {"width": 4, "depth": 2, "blocks": 1},
    "nafnet": {"width": 4, "enc_blocks": (1,), "middle_blocks": 1, "dec_blocks": (1,)},
    "wiener_unet": {"width": 4, "depth": 1, "blocks": 1, "estimator_width": 4},
}
TINY_FCN = {
    "unet": {"width": 4, "depth": 2, "blocks": 1},
    "nafnet": {"width": 4, "enc_blocks": (1, 1), "middle_blocks": 1, "dec_blocks": (1, 1)},
}


@pytest.mark.parametrize("name", MODELS.list())
def test_model_contract(name):
    np.random.seed(123)
    random.seed(123)
    before = np.random.get_state()[1].copy(), random.getstate()
    report = check_model(name, **TINY.get(name, {}))
    assert report["final_loss"] < 0.5 * report["initial_loss"]
    # the check seeds the process to be reproducible, and puts the global states back: a plugin author's
    # tests after it stay independent of it
    assert np.array_equal(np.random.get_state()[1], before[0]) and random.getstate() == before[1]


@pytest.mark.parametrize("name", MODELS.list())
def test_models_are_channels_last_whatever_keras_config_says(name):
    """A user's keras.json with "image_data_format": "channels_first" made the U-Nets fail to build with a bare
    TypeError and the autoencoder build a model of 2048 output channels: every builder builds channels-last
    models (images in and out of the same shape), and puts the user's setting back."""
    keras.config.set_image_data_format("channels_first")
    try:
        model = MODELS.create(name, **TINY.get(name, {}))
        assert keras.config.image_data_format() == "channels_first"  # the user's, put back
    finally:
        keras.config.set_image_data_format("channels_last")
    side = model.input_shape[1] or 24
    x = np.random.default_rng(0).random((1, side, side, 3), np.float32)
    assert model.input_shape[-1] == 3 and model.output_shape[-1] == 3
    assert model(x).shape == (1, side, side, 3)


def test_channels_last_builds_hold_in_threads_and_for_any_builder():
    """The setting is process-wide: threads building at once switched it under each other (one build in 15
    failed with the bare TypeError); and a plugin's builder, not decorated, failed the same way under
    channels_first. Builds hold one lock, and Deblurrer builds every builder channels-last."""
    import threading

    from blurkit.deblurrer import _seeded_build

    def plugin(channels: int = 3):
        x = keras.Input((None, None, channels))
        return keras.Model(x, keras.layers.Conv2D(channels, 3, padding="same")(x))

    keras.config.set_image_data_format("channels_first")
    errors: list[BaseException] = []

    def build() -> None:
        try:
            for _ in range(3):
                m = MODELS.create("unet", **TINY["unet"])
                assert m.output_shape[-1] == 3
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=build) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        model = _seeded_build(plugin, {}, 0)
        assert keras.config.image_data_format() == "channels_first"
    finally:
        keras.config.set_image_data_format("channels_last")
    assert not errors, errors
    assert model(np.zeros((1, 8, 10, 3), np.float32)).shape == (1, 8, 10, 3)


def test_listing_models_does_not_import_tensorflow():
    code = (
        "import sys; from blurkit.registry import MODELS; import blurkit.models; "
        "assert {'autoencoder', 'unet', 'nafnet'} <= set(MODELS.list()); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'heavy import'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- autoencoder ------------------------------------------------------------------------------------
def test_autoencoder_default_is_the_tutorial_model():
    model = autoencoder()
    assert model.count_params() == 34_951_683
    assert model.input_shape == (None, 128, 128, 3)
    assert model.output_shape == (None, 128, 128, 3)
    assert model.get_layer("latent").units == 256
    assert model.get_layer("output").activation.__name__ == "sigmoid"


def test_autoencoder_output_in_unit_range_and_grayscale():
    model = autoencoder(input_size=16, channels=1, filters=(4,), latent_dim=4)
    y = keras.ops.convert_to_numpy(model(np.random.default_rng(0).random((2, 16, 16, 1), dtype="float32")))
    assert y.shape == (2, 16, 16, 1)
    assert (y >= 0).all() and (y <= 1).all()


@pytest.mark.parametrize(
    "kwargs",
    [{"input_size": 20, "filters": (4, 8, 16)}, {"filters": ()}, {"latent_dim": 0}, {"channels": True}],
)
def test_autoencoder_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        autoencoder(**kwargs)


# -- fully convolutional models: pad / crop, residual, grayscale ---------------------------------------
@pytest.mark.parametrize("name", sorted(TINY_FCN))
@pytest.mark.parametrize("size", [(5, 7), (17, 30), (67, 93)])
@pytest.mark.parametrize("channels", [1, 3])
def test_fcn_is_identity_at_init_on_odd_sizes(name, size, channels):
    # The last convolution is zero-initialised, so padding, cropping and the global residual must
    # reproduce the input exactly, whatever its size.
    model = MODELS.create(name, channels=channels, **TINY_FCN[name])
    assert model.input_shape == (None, None, None, channels)
    x = np.random.default_rng(1).random((2, *size, channels), dtype="float32")
    y = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(y, x, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TINY_FCN))
def test_fcn_correction_is_added_to_the_input(name):
    model = MODELS.create(name, **TINY_FCN[name])
    last = model.get_layer("tail" if name == "unet" else "ending")
    kernel, bias = last.get_weights()
    assert not kernel.any() and not bias.any()
    last.set_weights([kernel, bias + 0.25])  # a constant correction
    x = np.random.default_rng(2).random((1, 11, 13, 3), dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), x + 0.25, atol=1e-6)


def test_unet_architecture():
    model = unet(width=8, depth=3, blocks=2)
    assert model.get_layer("pad").multiple == 8
    assert model.get_layer("middle_block1_conv2").filters == 64
    assert model.get_layer("enc0_block0_conv1").filters == 8
    assert model.get_layer("up0").filters == 8


def test_nafnet_architecture():
    model = nafnet(width=8, enc_blocks=(1, 2), middle_blocks=1, dec_blocks=(3, 1))
    assert model.get_layer("pad").multiple == 4
    names = [layer.name for layer in model.layers]
    # dec_blocks[0] is the deepest level, as in the reference code.
    assert "dec1_block2_conv1" in names and "dec0_block1_conv1" not in names
    assert model.get_layer("middle_block0_conv1").filters == 2 * 32
    beta = model.get_layer("enc0_block0_beta")
    assert isinstance(beta, ChannelScale) and not beta.get_weights()[0].any()
    assert not any(
        getattr(layer, "activation", None) not in (None, keras.activations.linear) for layer in model.layers
    )


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (unet, {"kernel_size": 2}),
        (unet, {"depth": -1}),
        (unet, {"width": 0}),
        (nafnet, {"enc_blocks": (1, 1), "dec_blocks": (1,)}),
        (nafnet, {"enc_blocks": "11"}),
    ],
)
def test_fcn_rejects_bad_arguments(builder, kwargs):
    with pytest.raises(ValueError):
        builder(**kwargs)


# -- custom layers ------------------------------------------------------------------------------------
def test_pad_to_multiple_reflects_and_crop_inverts():
    x = np.arange(2 * 5 * 6 * 2, dtype="float32").reshape(2, 5, 6, 2)
    padded = keras.ops.convert_to_numpy(PadToMultiple(4)(x))
    np.testing.assert_array_equal(padded, np.pad(x, [(0, 0), (0, 3), (0, 2), (0, 0)], mode="reflect"))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(CropToReference()([padded, x])), x)
    assert PadToMultiple(4).compute_output_shape((None, 5, None, 2)) == (None, 8, None, 2)


def test_simple_gate_pixel_shuffle_channel_scale():
    x = np.random.default_rng(3).random((1, 2, 3, 8), dtype="float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(SimpleGate()(x)), x[..., :4] * x[..., 4:])
    shuffled = keras.ops.convert_to_numpy(PixelShuffle(2)(x))
    assert shuffled.shape == (1, 4, 6, 2)
    np.testing.assert_array_equal(shuffled[0, 1, 1], x[0, 0, 0, 6:8])  # TF depth_to_space order
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ChannelScale(0.5)(x)), 0.5 * x)


def test_softmax_pool_weights_positions():
    """Equal logits give the mean over the image; a dominant logit picks its position; weights sum to 1."""
    rng = np.random.default_rng(4)
    f = rng.random((2, 3, 5, 4), dtype="float32")
    mean = keras.ops.convert_to_numpy(SoftmaxPool2D()([f, np.full((2, 3, 5, 1), 0.7, "float32")]))
    np.testing.assert_allclose(mean, f.mean(axis=(1, 2)), rtol=1e-6)
    logits = np.zeros((2, 3, 5, 1), "float32")
    logits[0, 2, 1], logits[1, 0, 4] = 50.0, 50.0
    picked = keras.ops.convert_to_numpy(SoftmaxPool2D()([f, logits]))
    np.testing.assert_allclose(picked, [f[0, 2, 1], f[1, 0, 4]], rtol=1e-5)
    logits = rng.normal(0, 2, (2, 3, 5, 1)).astype("float32")
    ones = keras.ops.convert_to_numpy(SoftmaxPool2D()([np.ones_like(f), logits]))
    np.testing.assert_allclose(ones, 1.0, rtol=1e-5)
    assert SoftmaxPool2D().compute_output_shape([(None, None, None, 4), (None, None, None, 1)]) == (None, 4)


@pytest.mark.parametrize(
    "layer",
    [
        PadToMultiple(16, mode="symmetric"),
        CropToReference(),
        SimpleGate(),
        ChannelScale(0.3),
        PixelShuffle(3),
        SoftmaxPool2D(),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    assert keras.saving.get_registered_name(type(layer)) == f"blurkit>{type(layer).__name__}"


def test_layers_validate_arguments():
    with pytest.raises(ValueError, match="multiple"):
        PadToMultiple(0)
    with pytest.raises(ValueError, match="mode"):
        PadToMultiple(4, mode="wrap")
    with pytest.raises(ValueError, match="even"):
        SimpleGate()(np.zeros((1, 2, 2, 3), "float32"))


# -- FLOPs ------------------------------------------------------------------------------------------
def _single(layer, shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize(
    "layer, shape, expected",
    [
        (keras.layers.Conv2D(8, 3, padding="same"), (None, None, 5), 2 * 3 * 3 * 5 * 8),
        (keras.layers.Conv2D(8, 5, padding="same", use_bias=False), (None, None, 2), 2 * 5 * 5 * 2 * 8),
        (keras.layers.DepthwiseConv2D(3, padding="same"), (None, None, 6), 2 * 3 * 3 * 6),
        (keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same"), (None, None, 6), 2 * 3 * 3 * 6 * 4),
        (keras.layers.Conv2D(8, 2, strides=2), (None, None, 3), 2 * 2 * 2 * 3 * 8 / 4),
        (keras.layers.Dense(7), (None, None, 3), 2 * 3 * 7),
    ],
    ids=["conv3", "conv5", "depthwise", "transpose_s2", "conv_s2", "dense"],
)
def test_flops_of_single_layers(layer, shape, expected):
    assert flops_per_pixel(_single(layer, shape), 16, 24) == pytest.approx(expected)


def test_flops_fixed_size_model_and_size_independence():
    model = autoencoder(input_size=16, channels=1, filters=(4,), latent_dim=4)
    # conv 3x3 1->4 on 8x8, dense 256->4, dense 4->256, deconv 4->4 on 8x8 inputs, deconv 4->1 on 16x16.
    expected = 2 * (9 * 4 * 64 + 256 * 4 + 4 * 256 + 9 * 4 * 4 * 64 + 9 * 4 * 256) / 256
    assert flops_per_pixel(model) == flops_per_pixel(model, 999, 333) == pytest.approx(expected)
    net = unet(width=4, depth=2, blocks=1)
    assert flops_per_pixel(net, 32, 32) == pytest.approx(flops_per_pixel(net, 64, 48))
    table = flops_by_layer(nafnet(width=4, enc_blocks=(1,), middle_blocks=1, dec_blocks=(1,)), 8, 8)
    assert table["enc0_block0_dwconv"] == 2 * 9 * 8 * 64
    assert table["pad"] == table["enc0_block0_gate1"] == 0


def test_flops_rejects_subclassed_models():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(3, 3, padding="same")

        def call(self, x):
            return self.conv(x)

    net = Net()
    net(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(TypeError, match="functional"):
        flops_per_pixel(net)


# -- the harness catches broken models ------------------------------------------------------------------
class _Unregistered(keras.layers.Layer):
    def call(self, x):
        return x


def _lambda_model():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Lambda(lambda t: t * 1.0)(inputs))


def _unregistered_model():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, _Unregistered()(inputs))


def _shrinking_model():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, keras.layers.Conv2D(3, 3)(inputs))


def _not_a_model():
    return "model"


@pytest.mark.parametrize(
    "builder, message",
    [
        (_lambda_model, "Lambda"),
        (_unregistered_model, "not registered"),
        (_shrinking_model, "output shape"),
        (_not_a_model, "keras.Model"),
    ],
)
def test_check_model_rejects_broken_models(builder, message):
    MODELS.register("_broken_test_model", builder, override=True)
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    try:
        with pytest.raises(AssertionError, match=message):
            check_model("_broken_test_model")
        assert np.array_equal(np.random.get_state()[1], before)  # put back on failure too
    finally:
        MODELS.unregister("_broken_test_model")


def test_models_run_under_a_mixed_precision_policy():
    """Under ``mixed_float16`` the wiener_unet's FFT layers met float16 images with their float32 frequency
    grids and failed at the first call; they now compute in float32 whatever the global policy."""
    x = np.random.default_rng(0).random((1, 24, 28, 3)).astype("float32")
    previous = keras.mixed_precision.global_policy()
    try:
        for name, options in (("wiener_unet", {"width": 4, "depth": 1, "estimator_width": 4}),
                              ("unet", {"width": 4, "depth": 1})):
            keras.mixed_precision.set_global_policy("mixed_float16")
            mixed = MODELS.create(name, **options)
            rng = np.random.default_rng(1)  # the zero-initialised layers (the tails: an identity) given weights
            mixed.set_weights([w if w.any() else rng.normal(0, 0.02, w.shape).astype(w.dtype)
                               for w in mixed.get_weights()])
            y = np.asarray(mixed(x), np.float32)
            assert y.shape == x.shape and np.isfinite(y).all(), name
            assert np.abs(y - x).mean() > 0.01, name  # not the identity: the comparison below sees the model
            # The same weights under float32 give the same image up to float16 rounding (1.9e-3 seen for the
            # wiener_unet, whose untrained outputs reach 6.6; 2.4e-4 for the unet).
            keras.mixed_precision.set_global_policy("float32")
            reference = MODELS.create(name, **options)
            reference.set_weights(mixed.get_weights())
            np.testing.assert_allclose(y, np.asarray(reference(x)), atol=5e-3, err_msg=name)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_a_model_saved_by_keras_loads_in_a_fresh_process_after_custom_objects(tmp_path):
    """A blurkit model compiled with blurkit's metrics and loss and saved with Keras could not be loaded by
    ``keras.saving.load_model`` in a process that had only imported blurkit (its layers and classes are
    registered when first used); ``blurkit.models.custom_objects()`` registers them all."""
    from blurkit.metrics import get_loss, keras_metrics

    model = MODELS.create("wiener_unet", width=4, depth=1, estimator_width=4)
    model.compile(optimizer="adam", loss=get_loss("charbonnier"), metrics=keras_metrics(["psnr", "ssim_y"]))
    x = np.random.default_rng(1).random((1, 24, 28, 3)).astype("float32")
    model.save(tmp_path / "m.keras")
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np, keras, blurkit.models\n"
            "blurkit.models.custom_objects()\n"
            "m = keras.saving.load_model(sys.argv[1])\n"
            "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))\n"
            "print(type(m.loss).__name__, sorted(x.name for x in m.metrics if x.name in ('psnr', 'ssim_y')))\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras"), str(tmp_path / "x.npy"),
                           str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0))
    assert done.stdout.split()[0] == "Charbonnier"

"""The Deblurrer facade: fit on every data form, predict anything, evaluate, save/load, figures."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.data.io import read_image, write_image
from blurkit.deblurrer import METADATA_NAME, ModelFileError
from helpers import SMALL_BLIND, finish, start

TINY = {"width": 4, "depth": 1, "blocks": 1}
FAST = {"patch_size": 32, "batch_size": 2, "patches_per_image": 2}
CURVES = {"loss", "psnr", "ssim", "val_loss", "val_psnr", "val_ssim"}


def _small(img: np.ndarray, size=(64, 48)) -> np.ndarray:
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    for name, img in [("astronaut.png", data.astronaut()), ("cat.jpg", data.chelsea()),
                      ("coffee.png", data.coffee()), ("sub/camera.png", data.camera())]:
        write_image(root / name, _small(img))
    return root


@pytest.fixture(scope="module")
def pair_dirs(photo_dir, tmp_path_factory):
    from blurkit.data.pairs import make_pairs

    out = tmp_path_factory.mktemp("pairs")
    summary = make_pairs(photo_dir, out, blur="gaussian", blur_options={"sigma": (0.5, 3.0)}, progress=False)
    assert summary["written"] == 4
    return out / "blurred", out / "sharp"


@pytest.fixture(scope="module")
def arrays():
    """(blurred, sharp) uint8 arrays of four small photos."""
    from skimage import data

    from blurkit.blurs import GaussianBlur

    sharp = np.stack([_small(data.astronaut()), _small(data.chelsea()), _small(data.coffee()),
                      _small(data.rocket())])
    blurred = GaussianBlur(sigma=2.0)(sharp, seed=0)["image"]
    return blurred, sharp


@pytest.fixture(scope="module")
def trained(photo_dir):
    """A tiny U-Net trained for a few steps (no longer the identity)."""
    d = Deblurrer(model="unet", blur="gaussian", blur_options={"sigma": (0.5, 3.0)}, model_options=TINY, **FAST)
    d.fit(photo_dir, epochs=1, steps_per_epoch=3, verbose=0)
    return d


def _check_history(d: Deblurrer, hist, epochs_before: int) -> None:
    assert CURVES <= set(hist.history)
    assert CURVES <= set(d.history)
    for k in CURVES:
        assert len(d.history[k]) == epochs_before + 1
        assert all(math.isfinite(v) for v in d.history[k])
    assert d.history["loss"][-1] > 0 and 0 < d.history["val_psnr"][-1] < 100
    assert set(d.validation) >= {"loss", "psnr", "ssim"}
    assert d.training["epochs"] == epochs_before + 1


# ----------------------------------------------------------------------------------------- fit
@pytest.mark.parametrize("form", ["folder", "array_pairs", "dir_pairs", "sharp_array", "image_list"])
def test_fit_on_each_data_form(form, photo_dir, pair_dirs, arrays):
    data = {
        "folder": photo_dir,
        "array_pairs": arrays,
        "dir_pairs": pair_dirs,
        "sharp_array": arrays[1],
        "image_list": [arrays[1][0], _small(arrays[1][1], (50, 70)), arrays[1][2][..., 0]],
    }[form]
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    hist = d.fit(data, epochs=1, steps_per_epoch=2, validation_split=0.25, verbose=0)
    _check_history(d, hist, 0)
    n = 3 if form == "image_list" else 4
    assert d.training["train_items"] + d.training["validation_items"] == n
    assert d.training["validation_items"] == 1


def test_fit_accumulates_history_and_checkpoints(photo_dir, tmp_path):
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    ckpt = tmp_path / "best.keras"
    d.fit(photo_dir, epochs=1, steps_per_epoch=1, checkpoint=ckpt, verbose=0)
    hist = d.fit(photo_dir, epochs=1, steps_per_epoch=1, early_stopping=3, verbose=0)
    _check_history(d, hist, 1)
    assert hist.epoch == [1]
    assert ckpt.is_file() and Deblurrer.read_metadata(ckpt)["history"]["loss"] == d.history["loss"][:1]


class _Spoil:
    """A Keras callback that, from epoch ``start`` (0-based) on, spoils the weights before the epoch trains:
    NaN ones (a diverged run), or noise added (epochs worse than the one before)."""

    def __new__(cls, start: int, how: str):
        import keras

        class Spoil(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch >= start:
                    rng = np.random.default_rng(epoch)
                    self.model.set_weights([np.full_like(w, np.nan) if how == "nan" else
                                            w + rng.normal(0, 0.5, w.shape).astype(w.dtype)
                                            for w in self.model.get_weights()])

        return Spoil()


class _AtTheLastStepOfEpoch2:
    """A Keras callback that changes the weights (``change`` of each array) after the last of epoch 2's two
    steps: a divergence the epoch's loss does not show."""

    def __new__(cls, change):
        import keras

        class Change(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if self.epoch == 1 and batch == 1:
                    self.model.set_weights([change(w) for w in self.model.get_weights()])

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

        return Change()


def _inflated(w: np.ndarray) -> np.ndarray:
    """Every weight 1e12 times larger: still finite, the outputs not."""
    return w * np.float32(1e12)


def test_a_diverged_run_stops_and_nothing_of_it_is_saved_loaded_or_run(photo_dir, tmp_path, monkeypatch):
    """A loss that went NaN (a learning rate too high) was trained on for every epoch left, the model saved,
    reported as fine, and restored every photo to black ("done"). fit now stops at that epoch (recorded in
    the history; the checkpoint and training state are the epochs before), save refuses NaN weights, load
    refuses such a file, and predict refuses such a model."""
    import blurkit.deblurrer as module
    from blurkit.deblurrer import TrainingDivergedError

    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    ckpt = tmp_path / "best.keras"
    with pytest.raises(TrainingDivergedError, match=r"^training diverged: the loss of epoch 2 is nan, and the "
                                                    r"weights are no longer finite; lower the learning rate"):
        d.fit(photo_dir, epochs=4, steps_per_epoch=1, checkpoint=ckpt, verbose=0, callbacks=[_Spoil(1, "nan")])
    assert len(d.history["loss"]) == 2 and math.isnan(d.history["loss"][1])
    assert len(Deblurrer.read_metadata(ckpt)["history"]["loss"]) == 1  # epoch 1, the last finite one
    assert len(Deblurrer.read_metadata(tmp_path / "best.resume" / "last.keras")["history"]["loss"]) == 1
    with pytest.raises(ValueError, match=r"not saving nan\.keras: its weights hold [\d,]+ NaN or infinite "
                                         r"values \(a diverged training run, say"):
        d.save(tmp_path / "nan.keras")
    assert not (tmp_path / "nan.keras").exists()
    with pytest.raises(ValueError, match=r"this model cannot restore images: its weights hold"):
        d.predict(np.zeros((16, 16, 3), np.uint8))
    monkeypatch.setattr(module, "_broken_weights", lambda model: None)  # written as an older blurkit did
    d.save(tmp_path / "nan.keras")
    monkeypatch.undo()
    with pytest.raises(ModelFileError, match=r"nan\.keras: its weights hold [\d,]+ NaN or infinite values .*; it "
                                             r"cannot restore images"):
        Deblurrer.load(tmp_path / "nan.keras")


def test_early_stopping_leaves_the_best_epoch_and_says_which(photo_dir, tmp_path):
    """Keras' restore_best_weights puts the best epoch's weights back at the end of the run, but the
    Deblurrer kept the last epoch's validation scores, and a file saved then claimed the last epoch (the CLI
    printed "saved: epoch 3 of 3" for epoch 2's weights). The validation scores are now the best epoch's and
    ``training["weights_epoch"]`` says which epoch the weights are."""
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    ckpt = tmp_path / "best.keras"
    d.fit(photo_dir, epochs=5, steps_per_epoch=2, checkpoint=ckpt, early_stopping=2, verbose=0,
          callbacks=[_Spoil(1, "noise")])  # every epoch after the first is made worse
    val_loss = d.history["val_loss"]
    best = int(np.argmin(val_loss))
    assert best == 0 and len(val_loss) == 3  # stopped early, two epochs after the best
    assert d.training["weights_epoch"] == best + 1 and d.training["epochs"] == 3
    assert d.validation["loss"] == val_loss[best] and d.validation["psnr"] == d.history["val_psnr"][best]
    x = np.random.default_rng(1).integers(0, 256, (24, 20, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.predict(x), Deblurrer.load(ckpt).predict(x))  # the best epoch's weights
    meta = Deblurrer.read_metadata(d.save(tmp_path / "after.keras"))
    assert meta["training"]["weights_epoch"] == 1 and meta["validation"]["loss"] == val_loss[best]


def test_a_builder_without_channels_sets_them_unless_they_are_asked_for():
    """A builder without a ``channels`` option that builds grey models worked with the default channels; it
    was refused once asking for other channels than the model's was ("built a model for 1-channel images,
    not channels=3"). Only channels given explicitly are checked."""
    from blurkit.models.unet import unet
    from blurkit.registry import MODELS

    MODELS.register("test-grey-only", lambda width=4: unet(channels=1, width=width, depth=1, blocks=1))
    try:
        assert Deblurrer(model="test-grey-only", **FAST).channels == 1
        with pytest.raises(ValueError, match=r"built a model for 1-channel images, not channels=3"):
            Deblurrer(model="test-grey-only", channels=3, **FAST)
    finally:
        MODELS.unregister("test-grey-only")


def test_a_divergence_after_the_last_step_of_an_epoch_is_caught_and_early_stopping_weights_come_back(
        photo_dir, tmp_path):
    """The last step of an epoch can break the weights while the epoch's loss is finite: the training state's
    save then failed with a plain "not saving last.keras". And the error skipped Keras' on_train_end, so early
    stopping's best weights never came back (the fit docstring says they do), and a predict built before the
    fit ran the NaN model to black images. Now: TrainingDivergedError, the best epoch's weights, and predict
    on them."""
    from blurkit.deblurrer import TrainingDivergedError

    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    x = np.random.default_rng(2).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    d.predict(x)  # its traced functions exist before the fit
    with pytest.raises(TrainingDivergedError, match=r"^training diverged: after epoch 2 the weights hold NaN or "
                                                    r"infinite values; lower the learning rate"):
        d.fit(photo_dir, epochs=3, steps_per_epoch=2, checkpoint=tmp_path / "m.keras", early_stopping=5,
              verbose=0, callbacks=[_AtTheLastStepOfEpoch2(lambda w: np.full_like(w, np.nan))])
    assert d.training["weights_epoch"] == 1 and math.isfinite(d.history["loss"][1])
    np.testing.assert_array_equal(d.predict(x), Deblurrer.load(tmp_path / "m.keras").predict(x))


def test_finite_weights_that_give_nan_outputs_are_a_divergence_and_predict_refuses_them(photo_dir, tmp_path):
    """Weights finite but too large (a learning rate of 1e4) make NaN of any photo: the run was saved as a
    success ("saved: epoch 1 of 1") and deblur wrote black images, "done". fit now stops at that epoch, predict
    refuses the NaN output, and a fit of the NaN weights a divergence leaves is refused with what to do (the
    lower learning rate it advised was blamed)."""
    from blurkit.deblurrer import TrainingDivergedError

    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    with pytest.raises(TrainingDivergedError, match=r"^training diverged: after epoch 2 the model's output on a "
                                                    r"test image is NaN or infinite"):
        d.fit(photo_dir, epochs=3, steps_per_epoch=2, checkpoint=tmp_path / "m.keras", validation_split=0,
              verbose=0, callbacks=[_AtTheLastStepOfEpoch2(_inflated)])
    assert len(Deblurrer.read_metadata(tmp_path / "m.keras")["history"]["loss"]) == 1  # epoch 1's
    with pytest.raises(ValueError, match=r"the model's output holds NaN values: its weights are finite"):
        d.predict(np.full((24, 20, 3), 128, np.uint8))
    d.model.set_weights([np.full_like(w, np.nan) for w in d.model.get_weights()])
    with pytest.raises(ValueError, match=r"weights hold [\d,]+ NaN or infinite values \(a diverged run's, say\): "
                                         r"load the last checkpoint"):
        d.fit(photo_dir, epochs=1, steps_per_epoch=1, verbose=0)


def test_a_non_finite_validation_loss_is_a_divergence(photo_dir, tmp_path):
    """With validation, epoch 1's val_loss was nan and training went on (its state saved to go on from)."""
    from blurkit.deblurrer import TrainingDivergedError

    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    with pytest.raises(TrainingDivergedError, match=r"^training diverged: the validation loss of epoch 2 is "
                                                    r"(nan|inf): the model's outputs are no longer finite"):
        d.fit(photo_dir, epochs=3, steps_per_epoch=2, checkpoint_dir=tmp_path / "state", verbose=0,
              callbacks=[_AtTheLastStepOfEpoch2(_inflated)])
    assert len(Deblurrer.read_metadata(tmp_path / "state" / "last.keras")["history"]["loss"]) == 1


def test_the_output_probe_runs_at_the_training_size(photo_dir, tmp_path):
    """The divergence check's test image was 64 x 64 whatever the model trains at: a valid model that takes
    its patch size but not 64 (seven halvings, no padding of its own) crashed the run after epoch 1, with no
    checkpoint."""
    import keras

    from blurkit.registry import MODELS

    def halvings(channels=3):
        x = keras.Input((None, None, channels))
        h = keras.layers.Conv2D(channels, 3, padding="same")(x)
        for _ in range(7):
            h = keras.layers.MaxPooling2D()(h)
        for _ in range(7):
            h = keras.layers.UpSampling2D()(h)
        return keras.Model(x, keras.layers.Add()([x, h]))

    MODELS.register("test-halvings", halvings)
    try:
        d = Deblurrer(model="test-halvings", patch_size=128, batch_size=2, patches_per_image=1)
        d.fit(photo_dir, epochs=1, steps_per_epoch=1, checkpoint=tmp_path / "m.keras", validation_split=0,
              verbose=0)
    finally:
        MODELS.unregister("test-halvings")
    assert (tmp_path / "m.keras").is_file()


def test_a_training_state_written_before_the_optimizer_was_recorded_resumes(photo_dir, tmp_path):
    """The resumed settings gained the optimizer's class; a state saved by the release before (an upgraded
    job restarting) was refused as "a run with different optimizer (saved None, now 'Adam')"."""
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    d.fit(photo_dir, epochs=2, steps_per_epoch=1, checkpoint_dir=tmp_path / "state", verbose=0, time_limit=1e-9)
    state = tmp_path / "state" / "last.keras"
    old = _rewrite(state, tmp_path / "old.keras", meta=lambda m: m["resume"]["settings"].pop("optimizer"))
    os.replace(old, state)
    again = Deblurrer(model="unet", model_options=TINY, **FAST)
    again.fit(photo_dir, epochs=2, steps_per_epoch=1, checkpoint_dir=tmp_path / "state", resume=True, verbose=0)
    assert len(again.history["loss"]) == 2


@pytest.fixture
def mixed_precision():
    """Keras' global mixed_float16 policy for one test (the float32 default again after it)."""
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_precision_training_trains_every_layer(photo_dir, mixed_precision):
    """Keras wraps the optimizer in a LossScaleOptimizer, which divides the gradients by its scale: blurkit's
    training step took them of the unscaled loss, they underflowed in float16, and every layer but the last
    stayed exactly as it was, with a normal-looking loss curve."""
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    before = [v.numpy() for v in d.model.trainable_variables]
    d.fit(photo_dir, epochs=1, steps_per_epoch=2, validation_split=0, verbose=0)
    kernels = [(v, b) for v, b in zip(d.model.trainable_variables, before, strict=True) if b.ndim > 1]
    still = [v.path for v, b in kernels if np.array_equal(v.numpy(), b)]
    assert len(kernels) > 3 and not still, still


def test_a_mixed_precision_model_restores_16_bit_photos_and_exports(mixed_precision, tmp_path):
    """Its float16 output times 65535 overflowed to inf and was written as 0: a bright sky came out black,
    "done" (images of at most one tile). And export failed (float16 output times float32 tile weights)."""
    from blurkit.export import export_saved_model

    d = Deblurrer(model="unet", model_options=TINY, **FAST)  # a fresh residual U-Net: close to the identity
    img = np.full((48, 40, 3), 20000, np.uint16)
    img[:16] = 65535
    out = d.predict(img)
    assert out.dtype == np.uint16 and out[:12].min() > 60000, out[:12].min()
    export_saved_model(d, tmp_path / "exported")
    assert (tmp_path / "exported" / "saved_model.pb").is_file()


def test_fit_without_validation(arrays):
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    hist = d.fit(arrays[1], epochs=1, steps_per_epoch=1, validation_split=0, verbose=0)
    assert {"loss", "psnr", "ssim"} <= set(hist.history) and "val_loss" not in hist.history
    assert d.training["validation_items"] == 0


def test_fit_with_separate_validation(photo_dir, arrays):
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    hist = d.fit(arrays, epochs=1, steps_per_epoch=1, validation=photo_dir, verbose=0)
    assert CURVES <= set(hist.history)
    assert d.training["train_items"] == 4 and d.training["validation_items"] == 4


def test_fit_refuses_bad_arrays_and_counts_before_training(arrays):
    """What would otherwise fail deep in the tf.data pipeline (int64), train silently to NaN weights (NaN
    inputs), train on a scale 255 times too large (a [0, 255] float image) or do nothing (epochs=0) is refused
    first, naming the argument."""
    blurred, sharp = arrays
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    before = [w.copy() for w in d.model.get_weights()]
    nan = blurred.astype(np.float32) / 255
    nan[1, 3, 3, 0] = np.nan
    for data, match in [((nan, sharp), r"^blurred: images contain NaN"),
                        ((blurred.astype(np.float32), sharp), r"^blurred: float images are taken as \[0, 1\]"),
                        ((blurred, sharp.astype(np.int64)), r"^sharp: images must be uint8, uint16 or float"),
                        ([sharp[0], sharp[1].astype(np.float64) * 255], r"^data\[1\]: float images"),
                        (sharp.astype(np.int32), r"^data: images must be")]:
        with pytest.raises(ValueError, match=match):
            d.fit(data, epochs=1, verbose=0)
        with pytest.raises(ValueError, match=match):
            d.evaluate(data)
    for val, match in [((nan, sharp), r"^validation blurred: images contain NaN"),  # was "blurred: ..."
                       (sharp.astype(np.int32), r"^validation: images must be")]:  # was "data: ..."
        with pytest.raises(ValueError, match=match):
            d.fit((blurred, sharp), validation=val, epochs=1, verbose=0)
    for kw in ({"epochs": 0}, {"epochs": -1}, {"epochs": 1.5}, {"steps_per_epoch": 0}):
        with pytest.raises(ValueError, match=f"{next(iter(kw))} must be a whole number of at least 1"):
            d.fit((blurred, sharp), verbose=0, **kw)
    assert all((a == b).all() for a, b in zip(before, d.model.get_weights(), strict=True))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="channels"):
        Deblurrer(channels=2)
    with pytest.raises(ValueError, match="tile_overlap"):
        Deblurrer(model_options=TINY, tile_size=64, tile_overlap=64)
    with pytest.raises(ValueError, match="patch_size"):
        Deblurrer(model_options=TINY, patch_size=0)


def test_constructor_arguments_of_the_wrong_kind_are_refused_naming_them():
    """A notebook audit found each of these accepted, or failing later without naming the argument: blur=3
    trained into a TensorFlow 'PyFuncStateless' error; patch_size=40.9 became 40 and "64" was taken;
    learning_rate=0 trained a whole epoch without moving a weight, -1 diverged; model=3 said "'int' object has
    no attribute 'input_shape'"."""
    def refused(error, match, **kw):
        with pytest.raises(error, match=match):
            Deblurrer(**{"model": "unet", "model_options": TINY, **kw})

    refused(TypeError, r"^blur must be a registered blur name .*got int 3", blur=3)
    refused(TypeError, r"^model must be a registered builder name .*got int 3", model=3)
    refused(TypeError, r"^model_options must be a dict of options, got int 4", model_options=4)
    refused(TypeError, r"^blur_options must be a dict of options, got list", blur_options=[("sigma", 2)])
    for arg, bad in (("patch_size", 40.9), ("patch_size", "64"), ("batch_size", None), ("tile_overlap", "8"),
                     ("tile_size", 100.5), ("patches_per_image", 2.5), ("estimate_tile", True)):
        refused(TypeError, rf"^{arg} must be a whole number, got \w+ {re.escape(repr(bad))}$", **{arg: bad})
    for bad in (0, -1, float("nan"), float("inf"), "abc", True):
        refused(ValueError, rf"^learning_rate must be a positive finite number, got {re.escape(repr(bad))}$",
                learning_rate=bad)
    for bad, kept in ((1e-50, "0"), (1e39, "inf")):  # float32, the optimizer's variable: nothing moved, or NaN
        refused(ValueError, rf"^learning_rate {re.escape(repr(bad))} is {kept} as the float32 the optimizer keeps it in",
                learning_rate=bad)
    refused(ValueError, r"^tile_overlap must be >= 0, got -1", tile_overlap=-1)
    d = Deblurrer(model="unet", model_options=TINY, patch_size=64.0, learning_rate=np.float32(1e-3))
    assert d.patch_size == 64 and type(d.patch_size) is int and d.learning_rate == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number, got -1"):
        d.compile(learning_rate=-1)


def test_seed_is_checked_and_named():
    """NumPy's own error for a seed it cannot take ("Seed must be between 0 and 2**32 - 1") did not say which
    argument it was."""
    for bad in (-1, 2**32, True, 1.5, "3"):
        with pytest.raises(ValueError, match=r"^seed must be a whole number from 0 to 2\*\*32 - 1"):
            Deblurrer(model="unet", model_options=TINY, seed=bad)
    assert Deblurrer(model="unet", model_options=TINY, seed=2**32 - 1).seed == 2**32 - 1


def test_blur_options_need_a_blur_name():
    """With a Blur instance or a serialized blur, blur_options used to be dropped silently."""
    from blurkit.blurs import GaussianBlur, serialize_blur

    for blur in (GaussianBlur(), serialize_blur(GaussianBlur())):
        with pytest.raises(ValueError, match="blur_options go with a blur name"):
            Deblurrer(model="unet", model_options=TINY, blur=blur, blur_options={"sigma": 3.0})
        empty = Deblurrer(model="unet", model_options=TINY, blur=blur, blur_options={})
        assert empty.blur.sigma == (0.3, 3.5)
    assert Deblurrer(model="unet", model_options=TINY, blur_options={"sigma": 3.0}).blur.sigma == 3.0


def test_checkpoint_suffix_is_checked_before_training(photo_dir, tmp_path):
    """It used to fail only when the first epoch's model was saved."""
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    before = [w.copy() for w in d.model.get_weights()]
    with pytest.raises(ValueError, match=r"checkpoint: model files end in \.keras, got 'best\.h5'"):
        d.fit(photo_dir, epochs=1, steps_per_epoch=1, verbose=0, checkpoint=tmp_path / "best.h5")
    assert d.history == {} and not getattr(d.model, "compiled", False)
    assert all((a == b).all() for a, b in zip(before, d.model.get_weights(), strict=True))
    assert os.listdir(tmp_path) == []


@pytest.mark.filterwarnings("ignore:.*holds the state of another run")  # the state beside the checkpoint
def test_a_later_fit_keeps_a_better_checkpoint(photo_dir, tmp_path):
    """A second fit with the same checkpoint replaces the model there only with a better one (it used to
    start from scratch and save its first epoch, however bad); another run's file is replaced as before."""
    ckpt = tmp_path / "best.keras"
    kw = dict(steps_per_epoch=2, validation_split=0.25, verbose=0, checkpoint=ckpt)
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    d.fit(photo_dir, epochs=2, **kw)
    best = min(d.history["val_loss"])
    assert Deblurrer.read_metadata(ckpt)["validation"]["loss"] == best
    # a bad continuation: wrecked weights that do not learn (finite, far worse)
    rng = np.random.default_rng(0)
    d.model.set_weights([w + rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in d.model.get_weights()])
    d.model.optimizer.learning_rate.assign(0.0)
    d.fit(photo_dir, epochs=1, **kw)
    worse = d.history["val_loss"][2]
    assert len(d.history["val_loss"]) == 3 and math.isfinite(worse) and worse > best
    saved = Deblurrer.read_metadata(ckpt)
    assert saved["validation"]["loss"] == best and len(saved["history"]["loss"]) <= 2

    other = Deblurrer(model="unet", model_options=TINY, seed=1, **FAST)
    other.fit(photo_dir, epochs=1, **kw)
    assert Deblurrer.read_metadata(ckpt)["history"]["val_loss"] == other.history["val_loss"]


# ------------------------------------------------------------------------------------- predict
def test_predict_keeps_dtype_and_range(trained):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (67, 93, 3), dtype=np.uint8)
    out8 = trained.predict(u8)
    assert out8.shape == (67, 93, 3) and out8.dtype == np.uint8
    ref = trained.predict(u8.astype(np.float32) / 255)  # float [0, 1] -> float [0, 1]
    assert ref.dtype == np.float32 and 0 <= ref.min() and ref.max() <= 1
    assert not np.allclose(ref, u8 / 255, atol=1e-3)  # the trained model does something
    assert np.abs(out8.astype(int) - np.rint(ref * 255)).max() <= 1

    out16 = trained.predict(u8.astype(np.uint16) * 257)
    assert out16.dtype == np.uint16 and out16.max() > 255
    np.testing.assert_allclose(out16 / 65535, ref, atol=2e-4)

    f255 = trained.predict(u8.astype(np.float32))  # float [0, 255] -> float [0, 255]
    assert f255.dtype == np.float32 and f255.max() > 1 and f255.max() <= 255
    np.testing.assert_allclose(f255 / 255, ref, atol=1e-4)

    f64 = trained.predict(u8 / 255.0)
    assert f64.dtype == np.float64
    np.testing.assert_allclose(f64, ref, atol=1e-5)

    # overshoot (a cubic resize, a sharpening) leaves the range as it is and is clipped: one pixel at 1.003 does
    # not make a [0, 1] image a [0, 255] one, nor 256.5 a [0, 255] image a [0, 65535] one
    over = u8.astype(np.float32) / 255
    over[0, 0, 0], over[1, 1, 1] = 1.003, -0.01
    np.testing.assert_allclose(trained.predict(over), trained.predict(np.clip(over, 0, 1)), atol=1e-6)
    over255 = u8.astype(np.float32)
    over255[0, 0, 0] = 256.5
    np.testing.assert_allclose(trained.predict(over255), trained.predict(np.clip(over255, 0, 255)), atol=1e-3)

    big = u8.astype(np.float16) * np.float16(200)  # a [0, 65535]-range float16 image: scaled without overflow
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        half = trained.predict(big[:, :, :1])
    ref_half = trained.predict((u8[:, :, :1].astype(np.float32) * 200) / 65535) * 65535
    assert half.dtype == np.float16 and np.abs(half.astype(np.float32) - ref_half).max() < 64


@pytest.mark.parametrize("shape", [(67, 93), (1, 1), (1, 6, 3), (3, 2), (5, 7, 3), (33, 17, 1)])
def test_predict_any_size(trained, shape):
    x = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    y = trained.predict(x)
    assert y.shape == x.shape and y.dtype == np.uint8
    # the values: the model on the image in [0, 1] (a grey one as three equal channels), padded at the bottom
    # and right to the model's multiple by reflection (by symmetry when a side is too short to reflect),
    # clipped and cropped back (a grey result is the channels' mean), then rounded to uint8
    h, w = shape[:2]
    unit = x.reshape(h, w, -1).astype(np.float32) / 255
    grey = unit.shape[-1] != trained.channels
    model_in = np.repeat(unit, trained.channels, axis=-1) if grey else unit
    ph, pw = -h % trained.tile_align, -w % trained.tile_align
    mode = "reflect" if h > ph and w > pw else "symmetric"
    padded = np.pad(model_in, ((0, ph), (0, pw), (0, 0)), mode=mode)
    ref = np.clip(np.asarray(trained.model(padded[None], training=False))[0, :h, :w], 0, 1)
    ref = ref.mean(axis=-1, keepdims=True) if grey else ref
    if h * w > 12:
        assert np.abs(ref - unit).max() > 0.01  # the trained model is not the identity (2.5 levels)
    np.testing.assert_allclose(y.reshape(ref.shape), ref * 255, atol=0.5 + 1e-3)  # rounded, float noise


def test_predict_progress_counts_the_tiles_of_a_large_image(trained, astronaut, monkeypatch):
    """``predict(progress=True)`` shows a bar of the tiles while an image over ``tile_size**2`` pixels is
    restored (a 12 MP photo took half a minute with no sign of life), every tile of every ensemble pass
    counted; a small image shows none, and the result is the same."""
    import tqdm.auto

    from blurkit.tiling import plan_tiles

    bars = []

    class Bar:
        def __init__(self, total, **kw):
            self.total, self.n, self.closed = total, 0, False
            bars.append(self)

        def update(self, n=1):
            self.n += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    d = Deblurrer(model="unet", model_options=TINY, tile_size=48, tile_overlap=8, **FAST)  # not the fixture's
    d.model.set_weights(trained.model.get_weights())
    image = np.ascontiguousarray(astronaut[:90, :130])
    plan = plan_tiles(90, 130, tile=48, overlap=8, align=d.tile_align)
    tiles = len(plan.ys) * len(plan.xs)
    want = d.predict(image)
    np.testing.assert_array_equal(d.predict(image, progress=True), want)
    d.predict(image, progress=True, ensemble=2)
    assert [(b.total, b.n, b.closed) for b in bars] == [(tiles, tiles, True), (2 * tiles, 2 * tiles, True)]
    d.predict(image[:40, :40], progress=True)  # one tile: no bar
    assert len(bars) == 2 and tiles > 1


def test_predict_grayscale_with_a_colour_model(trained, camera):
    grey = _small(camera, (93, 67))
    out = trained.predict(grey)
    assert trained.channels == 3 and out.shape == (67, 93) and out.dtype == np.uint8
    rgb = trained.predict(np.repeat(grey[..., None], 3, axis=-1))
    assert np.abs(out.astype(int) - rgb.astype(float).mean(axis=-1)).max() <= 1


def test_predict_keeps_alpha(trained, astronaut):
    rgb = _small(astronaut, (61, 45))
    alpha = np.random.default_rng(2).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    out = trained.predict(np.dstack([rgb, alpha]))
    assert out.shape == (45, 61, 4)
    np.testing.assert_array_equal(out[..., 3], alpha)
    np.testing.assert_array_equal(out[..., :3], trained.predict(rgb))


def test_predict_batches_lists_and_paths(trained, tmp_path, astronaut):
    a, b = _small(astronaut, (40, 30)), _small(astronaut, (57, 31))
    batch = trained.predict(np.stack([a, a[::-1]]))
    assert batch.shape == (2, 30, 40, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[0], trained.predict(a))
    out = trained.predict([a, b, b[..., 0]])
    assert isinstance(out, list) and [o.shape for o in out] == [(30, 40, 3), (31, 57, 3), (31, 57)]
    write_image(tmp_path / "photo.png", b)
    from_path = trained.predict(tmp_path / "photo.png")
    assert isinstance(from_path, np.ndarray)
    np.testing.assert_array_equal(from_path, trained.predict(b))
    np.testing.assert_array_equal(trained.predict(str(tmp_path / "photo.png")), from_path)
    # a float batch has one value range: here [0, 255], though its second photo (nearly black) lies in [0, 1]
    f = np.stack([a, a // 200]).astype(np.float32)
    assert f[1].max() <= 1
    np.testing.assert_allclose(trained.predict(f), trained.predict(f / 255) * 255, atol=2e-3)


def test_predict_self_ensemble(trained, astronaut):
    """``ensemble=n`` averages the restorations of the first n flips/rotations, each turned back."""
    from blurkit.deblurrer import DIHEDRAL

    x = _small(astronaut, (45, 33))
    f = x.astype(np.float32) / 255
    assert len(set(DIHEDRAL)) == 8
    for n in (2, 4, 8):
        views = []
        for rot, flip in DIHEDRAL[:n]:
            y = trained.predict(np.ascontiguousarray(np.rot90(f[:, ::-1] if flip else f, rot)))
            y = np.rot90(y, -rot)
            views.append(y[:, ::-1] if flip else y)
        expected = np.mean(views, axis=0)
        got = trained.predict(f, ensemble=n)
        assert got.shape == f.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert np.abs(got - trained.predict(f)).max() > 1e-4  # the tiny model is not equivariant: it averages
        u8 = trained.predict(x, ensemble=n)  # uint8 in, uint8 out, rounded once after averaging
        assert u8.dtype == np.uint8 and np.abs(u8.astype(float) - expected * 255).max() <= 0.5 + 1e-3
    rgba = np.dstack([x, np.full(x.shape[:2], 7, np.uint8)])
    out = trained.predict(rgba, ensemble=8)
    assert (out[..., 3] == 7).all() and np.abs(out[..., :3].astype(int) - trained.predict(x, ensemble=8)).max() == 0
    assert trained.predict(x[..., 0], ensemble=4).shape == x.shape[:2]
    for bad in (3, 0, True, 16):
        with pytest.raises(ValueError, match="ensemble"):
            trained.predict(x, ensemble=bad)


@pytest.mark.parametrize("bad, match", [
    (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
    (np.full((8, 8, 3), np.inf), "NaN or infinite"),
    (np.zeros(8), "expected an image"),
    (np.zeros((1, 1, 8, 8, 3)), "expected an image"),
    (np.zeros((8, 8, 5)), "expected an image"),
    (np.zeros((8, 8, 3), bool), "dtype bool"),
    (np.full((8, 8, 3), -3, np.int64), "outside"),
    (np.full((8, 8, 3), -0.6), "float images"),  # below [0, 1] by more than half its range
    (np.full((8, 8, 3), 1e6), "float images"),
    (np.zeros((0, 8, 3), np.uint8), "empty"),
])
def test_predict_bad_input(trained, bad, match):
    with pytest.raises(ValueError, match=match):
        trained.predict(bad)


def test_predict_says_what_it_cannot_take(trained, tmp_path):
    """A text-mode file said "UnicodeDecodeError: 'utf-8' codec can't decode byte 0x89" (read() failed before
    the binary-mode check); a generator and img.tolist() said "expected an image ... got shape ()" (the list
    was recursed into, row by row and pixel by pixel)."""
    x = np.zeros((12, 16, 3), np.uint8)
    write_image(tmp_path / "a.png", x)
    with open(tmp_path / "a.png") as text, pytest.raises(TypeError, match=r"opened in binary mode \('rb'\)"):
        trained.predict(text)
    with open(tmp_path / "a.png", "rb") as binary:
        assert trained.predict(binary).shape == x.shape
    import gzip
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:  # binary readers whose mode is not 'rb'
        archive.write(tmp_path / "a.png", "a.png")
    (tmp_path / "a.png.gz").write_bytes(gzip.compress((tmp_path / "a.png").read_bytes()))
    with zipfile.ZipFile(tmp_path / "a.zip") as archive, archive.open("a.png") as member:  # mode 'r'
        assert trained.predict(member).shape == x.shape
    with gzip.open(tmp_path / "a.png.gz") as packed:  # mode 1 (an int) on Python 3.11
        assert trained.predict(packed).shape == x.shape
    blind = _wiener_facade()  # estimate_sigma needs a blur estimator
    for d, method in ((trained, "predict"), (blind, "estimate_sigma")):
        with pytest.raises(TypeError, match=rf"^{method} takes an image, a path or a list of them, not a generator"):
            getattr(d, method)(i for i in [x])
        with pytest.raises(TypeError, match=rf"^{method}: lists of lists are not images"):
            getattr(d, method)(x.tolist())
    assert [y.shape for y in trained.predict([x, x[:8]])] == [x.shape, (8, 16, 3)]  # a list of images still


def test_predict_missing_or_unreadable_file(trained, tmp_path):
    with pytest.raises(FileNotFoundError):
        trained.predict(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_text("hello")
    with pytest.raises(ValueError, match="bad.png"):
        trained.predict(tmp_path / "bad.png")


def test_one_channel_model_restores_colour_channel_by_channel():
    d = Deblurrer(model="unet", model_options=TINY, channels=1)
    assert d.channels == 1
    x = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(d.predict(x), x)  # untrained: the identity, channel by channel
    assert d.predict(x[..., 0]).shape == (20, 30)


# ------------------------------------------------------------------------------- the user's Keras set-up
def test_fit_refuses_half_precision_weights():
    """A keras.json with "floatx": "float16" (or keras.config.set_dtype_policy("float16")) builds float16
    weights: training diverged, and the error advised a lower learning rate. fit refuses them, naming the
    dtype policy and mixed_float16; a model built under float32 trains as before."""
    import keras

    keras.config.set_dtype_policy("float16")
    try:
        d = Deblurrer(model="unet", model_options=TINY, **FAST)
    finally:
        keras.config.set_dtype_policy("float32")
    assert {str(w.dtype) for w in d.model.trainable_weights} == {"float16"}
    photos = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"this model's weights are float16 \(it was built under a "
                                         r"half-precision dtype policy.*mixed_float16"):
        d.fit(photos, epochs=1, steps_per_epoch=1, validation_split=0, verbose=0)
    assert d.history == {}
    keras.config.set_dtype_policy("mixed_float16")  # float16 compute, float32 weights: trains
    try:
        mixed = Deblurrer(model="unet", model_options=TINY, **FAST)
        assert {str(w.dtype) for w in mixed.model.trainable_weights} == {"float32"}
        mixed.fit(photos, epochs=1, steps_per_epoch=1, validation_split=0, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    assert len(mixed.history["loss"]) == 1 and math.isfinite(mixed.history["loss"][0])


def test_the_deblurrer_says_it_needs_keras_tensorflow_backend(monkeypatch, tmp_path):
    """Under KERAS_BACKEND=jax predict, estimate_sigma, fit, evaluate and export failed deep in Keras ("Cannot
    convert a symbolic tf.Tensor to a numpy array"); each now names the backend and what to set. (Building,
    loading and saving work on any backend: the presets' GPU recipe trains with JAX.)"""
    import keras

    d = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 1, "blocks": 1, "estimator_width": 4},
                  **FAST)
    photo = np.zeros((32, 32, 3), np.uint8)
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    calls = {"predict": lambda: d.predict(photo), "estimate_sigma": lambda: d.estimate_sigma(photo),
             "fit": lambda: d.fit(photo[None], epochs=1, verbose=0), "evaluate": lambda: d.evaluate([photo]),
             "export": lambda: d.export(tmp_path / "served")}
    from blurkit.batch import deblur_files
    from blurkit.export import export_saved_model

    calls["export_saved_model"] = lambda: export_saved_model(d, tmp_path / "served")
    calls["deblur_files"] = lambda: deblur_files(d, [(tmp_path / "in.png", tmp_path / "out" / "in.png")])
    for method, call in calls.items():
        name = {"export_saved_model": "export", "deblur_files": "predict"}.get(method, method)
        with pytest.raises(RuntimeError, match=rf"^Deblurrer\.{name} runs on Keras' TensorFlow backend; this "
                                               r"process's Keras runs on 'jax' .*KERAS_BACKEND=tensorflow"):
            call()
    assert not (tmp_path / "served").exists() and not (tmp_path / "out").exists()
    again = Deblurrer.load(d.save(tmp_path / "m.keras"))  # loading and saving need no TensorFlow backend
    assert [w.shape for w in again.model.weights] == [w.shape for w in d.model.weights]


def test_a_keras_backend_that_is_not_installed_is_named(tmp_path):
    """A keras.json naming "backend": "jax" on a machine without JAX failed with Keras' own "No module named
    'jax'" from inside its backend; loading or building a Deblurrer now says what to set."""
    import subprocess

    from helpers import source_env

    home = tmp_path / "keras-home"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "jax", "floatx": "float32", "epsilon": 1e-7,
                                                 "image_data_format": "channels_last"}))
    code = ("from blurkit import Deblurrer\n"
            "for make in (Deblurrer.from_preset, Deblurrer):\n"
            "    try:\n"
            "        make()\n"
            "    except ImportError as exc:\n"
            "        print(exc)\n")
    try:
        import jax  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("JAX is installed here: Keras runs on it")
    env = source_env(KERAS_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("Keras is set to run on 'jax' (KERAS_BACKEND, or \"backend\" in "
                                                   "~/.keras/keras.json), which is not installed") and
                                   line.endswith("set KERAS_BACKEND=tensorflow before Keras is imported")
                                   for line in lines), lines


# ------------------------------------------------------------------------------------ evaluate
def test_evaluate_scores_model_and_blurred(trained, photo_dir):
    scores = trained.evaluate(photo_dir)
    metrics = {"psnr", "ssim", "mse", "accuracy", "channel_accuracy"}
    assert set(scores["model"]) == metrics and set(scores["blurred"]) == metrics
    assert scores["images"] == 4
    assert scores["gain_db"] == pytest.approx(scores["model"]["psnr"] - scores["blurred"]["psnr"])
    assert scores["gain_images"] == 4
    for side in ("model", "blurred"):
        assert 5 < scores[side]["psnr"] < 60 and 0 < scores[side]["ssim"] <= 1
        assert 0 <= scores[side]["accuracy"] <= 1 and 0 < scores[side]["mse"] < 1
    assert scores["model"] != scores["blurred"]
    assert trained.evaluate(photo_dir) == scores  # deterministic


def test_evaluate_gain_is_over_the_images_with_a_finite_psnr(trained):
    """A flat photo is unchanged by a blur quantized to 8 bits: its blurred PSNR is infinite, and so is the
    mean. The gain is over the other images (it was -inf), and NaN when none is left."""
    from skimage import data

    flat, photo = np.full((40, 40, 3), 128, np.uint8), data.astronaut()[:64, :64]
    q = {"quantize": True}
    scores = trained.evaluate([photo, flat], per_image=True, blur_options=q)  # the photo first: its blur alone
    rows = scores["per_image"]
    assert rows[1]["blurred"]["psnr"] == math.inf and scores["blurred"]["psnr"] == math.inf
    assert scores["images"] == 2 and scores["gain_images"] == 1
    assert scores["gain_db"] == pytest.approx(rows[0]["model"]["psnr"] - rows[0]["blurred"]["psnr"])
    assert scores["gain_db"] == trained.evaluate([photo], blur_options=q)["gain_db"]
    alone = trained.evaluate([flat], blur_options=q)
    assert math.isnan(alone["gain_db"]) and alone["gain_images"] == 0 and alone["images"] == 1


def test_evaluate_skips_an_image_too_small_to_score(trained, photo_dir, tmp_path):
    """An image below SSIM's 11x11 window is skipped, named, like an unreadable file; the others are scored."""
    import shutil

    src = tmp_path / "photos"
    shutil.copytree(photo_dir, src)
    write_image(src / "zz_tiny.png", np.full((3, 7, 3), 90, np.uint8))
    with pytest.warns(UserWarning, match=r"skipping image: .*zz_tiny\.png: 3x7 px is too small to score"):
        scores = trained.evaluate(src)
    assert scores["images"] == 4 and [Path(r["image"]).name for r in scores["skipped"]] == ["zz_tiny.png"]
    assert scores["model"] == trained.evaluate(photo_dir)["model"]


def test_evaluate_crop_border_scores_the_images_without_their_border(trained):
    """crop_border (BasicSR's): each photo is restored whole, then the sharp, restored and blurred images are
    cut by as much on every side before every metric; the restored image given to on_image is whole."""
    from skimage import data

    from blurkit.metrics import psnr, ssim

    photos = [data.astronaut()[:64, :80], data.chelsea()[:50, :70]]
    whole: list = []
    scores = trained.evaluate(photos, per_image=True, crop_border=7, on_image=lambda row, r: whole.append(r))
    assert scores["crop_border"] == 7 and trained.evaluate(photos)["crop_border"] == 0
    assert scores["per_image"][0]["blur"] == trained.evaluate(photos, per_image=True)["per_image"][0]["blur"]
    for i, (row, restored) in enumerate(zip(scores["per_image"], whole, strict=True)):
        b, s = trained.test_pair(photos, i)
        assert restored.shape == s.shape  # whole
        cut = (slice(7, -7), slice(7, -7))
        assert row["model"]["psnr"] == pytest.approx(float(psnr(s[cut], restored[cut])), abs=1e-9)
        assert row["model"]["ssim"] == pytest.approx(float(ssim(s[cut], restored[cut])), abs=1e-9)
        assert row["blurred"]["psnr"] == pytest.approx(float(psnr(s[cut], b[cut])), abs=1e-9)
        assert row["blurred"]["psnr"] != pytest.approx(float(psnr(s, b)), abs=1e-3)  # the border did count
    assert scores["model"]["psnr"] == pytest.approx(np.mean([r["model"]["psnr"] for r in scores["per_image"]]))
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=r"crop_border must be a whole number of pixels, 0 or more"):
            trained.evaluate(photos, crop_border=bad)


def test_evaluate_skips_an_image_too_small_once_its_border_is_cut(trained):
    """An image of 30 px with 10 px cut from each side leaves 10: below SSIM's window, skipped and named."""
    from skimage import data

    photos = [data.astronaut()[:64, :64], data.camera()[:30, :60]]
    with pytest.warns(UserWarning, match=r"30x60 px is too small to score \(SSIM needs at least 11x11 left "
                                         r"after the 10 px border is cut\)"):
        scores = trained.evaluate(photos, crop_border=10)
    assert scores["images"] == 1 and [r["index"] for r in scores["skipped"]] == [1]
    assert trained.evaluate(photos, crop_border=9)["images"] == 2  # 12 px left


def test_evaluate_skips_a_float_image_it_cannot_score(trained, photo_dir, tmp_path):
    """A float TIFF with samples above 1 (HDR) is read with a warning, and scoring it raised "float images are
    taken as [0, 1]": `blurkit evaluate` stopped (exit 2) without naming the file. One with NaN samples said
    "images contain NaN or infinite values". Both are skipped now, named, and the other photos scored."""
    import shutil

    src = tmp_path / "photos"
    shutil.copytree(photo_dir, src)
    hdr = np.linspace(0, 3.5, 40 * 48 * 3, dtype=np.float32).reshape(40, 48, 3)
    write_image(src / "zz_hdr.tif", hdr)
    nan = np.full((40, 48, 3), 0.5, np.float32)
    nan[5:9, 5:9] = np.nan
    (src / "zz_nan.tif").write_bytes(cv2.imencode(".tif", nan)[1].tobytes())  # write_image refuses NaN
    with pytest.warns(UserWarning) as caught:
        scores = trained.evaluate(src)
    messages = [str(w.message) for w in caught]
    assert any(re.search(r"skipping image: .*zz_hdr\.tif: float samples outside \[0, 1\] \(min 0, max 3\.5\) "
                         r"cannot be scored", m) for m in messages), messages
    assert any(re.search(r"skipping unreadable image: .*zz_nan\.tif: 48 float samples NaN or infinite", m)
               for m in messages), messages
    assert scores["images"] == 4
    assert [Path(r["image"]).name for r in scores["skipped"]] == ["zz_hdr.tif", "zz_nan.tif"]
    assert scores["model"] == trained.evaluate(photo_dir)["model"]


def test_evaluate_scores_a_grey_photo_as_predict_returns_it(trained, tmp_path):
    """A colour model restores a grey photo as three equal channels and returns their mean: that grey image is
    scored (it was the three channels, which predict never returns; channel_accuracy was then below 1)."""
    from skimage import data

    from blurkit.metrics import psnr

    grey = np.ascontiguousarray(data.camera()[100:164, 120:200])
    write_image(tmp_path / "grey.png", grey)
    scores = trained.evaluate(tmp_path, per_image=True)
    b, s = trained.test_pair(tmp_path, 0)
    assert b.shape == s.shape == (64, 80, 1)
    restored = trained.predict(b)
    assert restored.shape == (64, 80, 1)
    row = scores["per_image"][0]
    assert row["model"]["psnr"] == pytest.approx(psnr(s, restored), abs=1e-9)
    assert row["model"]["channel_accuracy"] == row["blurred"]["channel_accuracy"] == 1.0


def test_evaluate_pairs_and_arrays(trained, pair_dirs, arrays):
    on_pairs = trained.evaluate(pair_dirs)
    assert on_pairs["images"] == 4 and on_pairs == trained.evaluate(pair_dirs)
    rows = trained.evaluate(pair_dirs, per_image=True)["per_image"]  # each pair named by its sharp file
    assert all(Path(r["image"]).is_file() and Path(pair_dirs[1]) in Path(r["image"]).parents for r in rows)
    b, s = trained.test_pair(pair_dirs, 0)
    assert b.dtype == s.dtype == np.float32 and b.shape == s.shape and not np.array_equal(b, s)
    on_arrays = trained.evaluate(arrays)
    assert on_arrays["images"] == 4
    # the same sharp photos blurred here with the facade's blur, seeded per image: repeatable
    assert trained.evaluate(arrays[1]) == trained.evaluate(arrays[1])


def test_evaluate_blurs_alike_whatever_the_model_seed(arrays):
    """The evaluation blur is seeded by evaluate's own ``seed`` and the image index, not by the model's seed
    (models trained with different seeds used to be scored on different inputs); ``seed=0`` gives the inputs
    a seed-0 model got before (the presets' published scores: their seed is 0)."""
    from blurkit.blurs import GaussianBlur
    from blurkit.data.io import to_float

    sharp = arrays[1]
    d0, d1 = (Deblurrer(model="unet", model_options=TINY, blur_options={"sigma": (0.5, 3.0)}, seed=seed)
              for seed in (0, 1))
    r0, r1 = d0.evaluate(sharp, per_image=True), d1.evaluate(sharp, per_image=True)
    assert r0["blurred"] == r1["blurred"]
    assert [r["blur"] for r in r0["per_image"]] == [r["blur"] for r in r1["per_image"]]
    for i in range(len(sharp)):
        b, s = d1.test_pair(sharp, i)
        np.testing.assert_array_equal(b, d0.test_pair(sharp, i)[0])
        # the old formula, seed * 1_000_003 + index, with the model seed 0
        old = GaussianBlur(sigma=(0.5, 3.0))(to_float(sharp[i]).astype(np.float32), seed=i)["image"]
        np.testing.assert_array_equal(b, np.asarray(old, np.float32))
    other = d0.evaluate(sharp, per_image=True, seed=5)
    assert [r["blur"] for r in other["per_image"]] != [r["blur"] for r in r0["per_image"]]
    assert not np.array_equal(d0.test_pair(sharp, 0, seed=5)[0], d0.test_pair(sharp, 0)[0])
    for bad in (-1, 2**32, 1.5):
        with pytest.raises(ValueError, match="^seed must be"):
            d0.evaluate(sharp, seed=bad)


def test_evaluate_skips_a_pair_of_different_sizes(trained, pair_dirs, tmp_path):
    """As fit does (it used to abort the evaluation), without hiding other errors."""
    import shutil

    from blurkit.blurs import GaussianBlur

    blurred, sharp = tmp_path / "blurred", tmp_path / "sharp"
    shutil.copytree(pair_dirs[0], blurred)
    shutil.copytree(pair_dirs[1], sharp)
    odd = sorted(sharp.rglob("*.png"))[0]
    write_image(odd, np.zeros((30, 40, 3), np.uint8))
    with pytest.warns(UserWarning, match="differ in size"):
        scores = trained.evaluate((blurred, sharp))
    assert scores["images"] == 3 and len(scores["skipped"]) == 1
    row = scores["skipped"][0]
    assert "differ in size" in row["error"] and odd.name in row["image"]

    class Failing(GaussianBlur):
        def __call__(self, image, seed=None):
            raise ValueError("a bug in the blur")

    with pytest.raises(ValueError, match="a bug in the blur"):
        trained.evaluate(pair_dirs[1], blur=Failing())


def test_evaluate_with_another_blur_and_the_self_ensemble(trained, arrays):
    """``blur`` / ``blur_options`` choose what the sharp photos are blurred with (recorded in the result, the
    drawn parameters per image); ``ensemble`` scores ``predict(ensemble=...)``'s restorations."""
    from blurkit.blurs import GaussianBlur, serialize_blur

    photos = list(arrays[1][:2])  # sharp photos
    fixed = trained.evaluate(photos, blur_options={"sigma": 2.0}, per_image=True)
    assert fixed["blur"] == serialize_blur(GaussianBlur(**{**trained.blur.get_config(), "sigma": 2.0}))
    assert [row["blur"]["sigma"] for row in fixed["per_image"]] == [2.0, 2.0]
    assert fixed == trained.evaluate(photos, blur=GaussianBlur(**{**trained.blur.get_config(), "sigma": 2.0}),
                                     per_image=True)
    own = trained.evaluate(photos, per_image=True)
    assert own["blur"] == serialize_blur(trained.blur) and own["blurred"] != fixed["blurred"]
    motion = trained.evaluate(photos, blur="motion", blur_options={"length": 9}, per_image=True)
    assert motion["blur"]["name"] == "motion" and motion["per_image"][0]["blur"]["length"] == 9
    four = trained.evaluate(photos, blur_options={"sigma": 2.0}, ensemble=4, per_image=True)
    assert four["ensemble"] == 4 and four["blurred"] == fixed["blurred"] and four["model"] != fixed["model"]
    b, s = trained.test_pair(photos, 0, blur=GaussianBlur(**{**trained.blur.get_config(), "sigma": 2.0}))
    from blurkit.metrics import psnr

    assert four["per_image"][0]["model"]["psnr"] == pytest.approx(psnr(s, trained.predict(b, ensemble=4)), abs=1e-4)
    with pytest.raises(ValueError, match="ensemble must be 1, 2, 4 or 8"):
        trained.evaluate(photos, ensemble=3)
    with pytest.raises(ValueError, match="not with a Blur instance"):
        trained.evaluate(photos, blur=GaussianBlur(), blur_options={"sigma": 1.0})
    with pytest.raises(TypeError, match="blur must be"):
        trained.evaluate(photos, blur=3)
    with pytest.raises(ValueError, match="the blur of given pairs"):
        trained.evaluate(arrays, blur_options={"sigma": 1.0})


def test_evaluate_scores_registered_metrics_by_name(trained, photo_dir, capsys):
    """A plugin's metric (registered by name) is scored beside the built-in ones, by the library and the CLI."""
    from blurkit.cli.main import main
    from blurkit.metrics import prepare
    from blurkit.registry import METRICS, UnknownComponentError

    def mae(y_true, y_pred):
        t, p = prepare(y_true, y_pred)
        return float(np.mean(np.abs(t - p)))

    METRICS.register("test_mae", mae, source="plugin test 0")
    try:
        scores = trained.evaluate(photo_dir, metrics=["test_mae"], per_image=True)
        assert scores["model"]["psnr"] == trained.evaluate(photo_dir)["model"]["psnr"]
        b, s = trained.test_pair(photo_dir, 0)
        assert scores["per_image"][0]["model"]["test_mae"] == pytest.approx(mae(s, trained.predict(b)), abs=1e-6)
        assert scores["blurred"]["test_mae"] > 0
        with pytest.raises(UnknownComponentError, match="nope"):
            trained.evaluate(photo_dir, metrics=["nope"])
        path = trained.save(photo_dir.parent / "for_metric.keras")
        capsys.readouterr()
        assert main(["evaluate", str(path), str(photo_dir), "--metric", "test_mae", "--max-images", "1"]) == 0
        assert "| psnr | ssim | mse | accuracy | channel_accuracy | test_mae |" in capsys.readouterr().out
    finally:
        METRICS.unregister("test_mae")


@pytest.mark.filterwarnings(SMALL_BLIND)
def test_evaluate_with_the_known_sigma(arrays, pair_dirs):
    """``known_sigma=True`` scores ``predict(b, sigma=<the sigma b was blurred with>)``: per image, with a
    sigma drawn per image; refused (before any image is read) where there is no one known sigma."""
    from blurkit.metrics import psnr

    d = _wiener_facade(blur_options={"sigma": (0.5, 3.0), "quantize": True})
    photos = [a[:40, :48] for a in arrays[1][:3]]
    known = d.evaluate(photos, known_sigma=True, per_image=True)
    blind = d.evaluate(photos, per_image=True)
    assert known["known_sigma"] and not blind["known_sigma"] and known["blurred"] == blind["blurred"]
    sigmas = [row["blur"]["sigma"] for row in known["per_image"]]
    assert len(set(sigmas)) == 3 and all(0.5 <= x <= 3.0 for x in sigmas)
    for i, row in enumerate(known["per_image"]):
        b, s = d.test_pair(photos, i)
        assert row["model"]["psnr"] == pytest.approx(psnr(s, d.predict(b, sigma=sigmas[i])), abs=1e-4)
        assert row["model"]["psnr"] != pytest.approx(psnr(s, d.predict(b)), abs=1e-4)
    with pytest.raises(ValueError, match="the blur of given pairs"):
        d.evaluate(pair_dirs, known_sigma=True)
    with pytest.raises(ValueError, match="isotropic Gaussian"):
        d.evaluate(photos, known_sigma=True, blur="motion")
    with pytest.raises(ValueError, match="isotropic Gaussian"):
        d.evaluate(photos, known_sigma=True, blur_options={"sigma_y": 1.0})
    with pytest.raises(ValueError, match=r"the blur's sigma must be a number from 0\.3 to 3\.5"):
        d.evaluate(photos, known_sigma=True, blur_options={"sigma": (1.0, 5.0)})
    plain = Deblurrer(model="unet", model_options={"width": 4, "depth": 1})
    with pytest.raises(ValueError, match="no Gaussian blur estimator"):
        plain.evaluate(photos, known_sigma=True)


# ---------------------------------------------------------------------------------- save / load
def test_save_load_round_trip(trained, tmp_path):
    path = trained.save(tmp_path / "model.keras")
    assert path == tmp_path / "model.keras" and sorted(os.listdir(tmp_path)) == ["model.keras"]
    loaded = Deblurrer.load(path)
    x = np.random.default_rng(4).integers(0, 256, (41, 57, 3), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.predict(x), trained.predict(x))
    big = np.random.default_rng(5).random((140, 150, 3), dtype=np.float32)
    assert (loaded.tile_size, loaded.tile_overlap) == (trained.tile_size, trained.tile_overlap)
    previous = trained.tile_size, trained.tile_overlap  # a module fixture: later tests get it back unchanged
    trained.tile_size, trained.tile_overlap = loaded.tile_size, loaded.tile_overlap = 64, 16
    try:
        np.testing.assert_array_equal(loaded.predict(big), trained.predict(big))  # tiled
    finally:
        trained.tile_size, trained.tile_overlap = previous
    meta = Deblurrer.read_metadata(path)
    assert meta["model"] == {"name": "unet", "config": {**TINY, "channels": 3}}
    assert meta["blur"]["name"] == "gaussian" and meta["blur"]["config"]["sigma"] == [0.5, 3.0]
    assert meta["history"] == trained.history and CURVES <= set(meta["history"])
    assert {"blurkit", "keras", "numpy"} <= set(meta["versions"])
    assert loaded.history == trained.history and loaded.training == trained.training
    assert loaded.model_spec == trained.model_spec
    assert loaded.blur.get_config() == trained.blur.get_config()
    assert (loaded.patch_size, loaded.batch_size, loaded.channels) == (32, 2, 3)
    with pytest.raises(ValueError, match=r"\.keras"):
        trained.save(tmp_path / "model.h5")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"cannot save .*afile/sub/m\.keras: .*afile is a file, not a folder"):
        trained.save(tmp_path / "afile" / "sub" / "m.keras")


def _h5_datasets(path: os.PathLike) -> dict[str, int]:
    """Every dataset in a .keras file's weights: name -> number of values."""
    import io

    import h5py

    found: dict[str, int] = {}
    with zipfile.ZipFile(path) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as h5:
        h5.visititems(lambda name, obj: found.update({name: obj.size}) if isinstance(obj, h5py.Dataset) else None)
    return found


def test_saved_model_holds_weights_not_optimizer_state(trained, tmp_path):
    """A model file has the weights only (Adam's moments would double it); the state for resuming keeps them,
    and the trained model keeps its optimizer."""
    optimizer = trained.model.optimizer
    saved = _h5_datasets(trained.save(tmp_path / "m.keras"))
    assert trained.model.optimizer is optimizer and optimizer.iterations.numpy() > 0
    assert not [n for n in saved if n.startswith("optimizer")], sorted(saved)
    assert sum(saved.values()) == trained.model.count_params()
    trained._write(tmp_path / "state.keras", resume={"epoch": 1})
    state = _h5_datasets(tmp_path / "state.keras")
    assert sum(v for n, v in state.items() if n.startswith("optimizer")) > 2 * trained.model.count_params()


def test_save_float16_weights_halves_the_file_and_loads_as_float32(trained, tmp_path):
    """``save(weights_dtype="float16")`` stores every float32 weight rounded to float16 (about half the
    file); the loaded model computes in float32 with exactly those rounded values, and trains further."""
    import io

    import h5py

    full = trained.save(tmp_path / "full.keras")
    half = trained.save(tmp_path / "half.keras", weights_dtype="float16")
    with zipfile.ZipFile(half) as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r") as h5:
        stored = []
        h5.visititems(lambda n, o: stored.append((o.dtype, o.nbytes)) if isinstance(o, h5py.Dataset) else None)
    assert stored and {dtype for dtype, _ in stored} == {np.dtype("float16")}
    assert sum(n for _, n in stored) == 2 * trained.model.count_params()  # half of float32's bytes
    assert _h5_datasets(half) == _h5_datasets(full)  # the same arrays, the same sizes
    assert Deblurrer.read_metadata(half)["weights_dtype"] == "float16"
    assert "weights_dtype" not in Deblurrer.read_metadata(full)
    loaded = Deblurrer.load(half)
    assert {w.dtype for w in loaded.model.weights} == {"float32"}
    for mine, theirs in zip(loaded.model.get_weights(), trained.model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs.astype(np.float16).astype(np.float32))
    x = np.random.default_rng(4).random((41, 57, 3), dtype=np.float32)
    assert 0 < np.abs(loaded.predict(x) - trained.predict(x)).max() < 0.01
    with pytest.raises(ValueError, match="weights_dtype must be 'float32' or 'float16'"):
        trained.save(tmp_path / "x.keras", weights_dtype="bfloat16")
    assert not (tmp_path / "x.keras").exists()


def test_save_float16_refuses_weights_beyond_its_range(tmp_path):
    d = Deblurrer(model="unet", model_options=TINY, seed=0)
    layer = next(layer for layer in d.model.layers if len(layer.get_weights()) == 2)
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, np.full_like(bias, 7e4)])
    with pytest.raises(ValueError, match="exceeds float16's range"):
        d.save(tmp_path / "big.keras", weights_dtype="float16")
    assert os.listdir(tmp_path) == []  # no file, no temporary file left behind
    d.save(tmp_path / "big.keras")  # float32 keeps them


def test_loaded_model_trains_further(trained, tmp_path, arrays):
    loaded = Deblurrer.load(trained.save(tmp_path / "m.keras"))
    hist = loaded.fit(arrays, epochs=1, steps_per_epoch=1, verbose=0)
    assert hist.epoch == [1] and len(loaded.history["loss"]) == 2


def test_load_compiled_is_ready_without_an_optimizer_warning(trained, tmp_path, arrays, recwarn):
    """Files hold no optimizer state; ``load(compile=True)`` compiles afresh instead of letting Keras
    restore nothing and warn "Skipping variable loading for optimizer"."""
    loaded = Deblurrer.load(trained.save(tmp_path / "m.keras"), compile=True)
    assert loaded.model.compiled and loaded.model.optimizer is not None
    assert float(loaded.model.optimizer.learning_rate.numpy()) == pytest.approx(trained.learning_rate)
    assert not [w for w in recwarn if "optimizer" in str(w.message).lower()], [str(w.message) for w in recwarn]
    loaded.fit(arrays, epochs=1, steps_per_epoch=1, verbose=0)
    assert len(loaded.history["loss"]) == 2


def test_save_is_atomic(trained, tmp_path, monkeypatch):
    path = trained.save(tmp_path / "model.keras")
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(trained.model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        trained.save(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]  # no temporary file left behind
    with pytest.raises(OSError):
        trained.save(tmp_path / "new.keras")
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]
    monkeypatch.undo()
    Deblurrer.load(path)


def _rewrite(src, dst, *, meta=None, raw=None, extra=None):
    """Copy a saved model, replacing its blurkit.json and/or adding entries."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename == METADATA_NAME:
                if raw is None:
                    m = json.loads(zin.read(info))
                    meta(m)
                    raw = json.dumps(m)
                zout.writestr(METADATA_NAME, raw)
            else:
                zout.writestr(info, zin.read(info))
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("saved") / "good.keras")


def _bad_files(saved, folder):
    data = saved.read_bytes()
    (folder / "text.keras").write_text("this is not a model")
    (folder / "truncated.keras").write_bytes(data[: len(data) // 2])
    (folder / "cut_end.keras").write_bytes(data[:-40])
    (folder / "empty.keras").write_bytes(b"")
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(folder / "plain.keras", "w") as zout:
        for info in zin.infolist():
            if info.filename != METADATA_NAME:
                zout.writestr(info, zin.read(info))
    _rewrite(saved, folder / "traversal.keras", meta=lambda m: None, extra={"../../evil.txt": "x"})
    _rewrite(saved, folder / "traversal2.keras", meta=lambda m: None, extra={"assets\\..\\..\\evil": "x"})
    _rewrite(saved, folder / "nan.keras", raw='{"format": "blurkit-model", "format_version": 1, "x": NaN}')
    _rewrite(saved, folder / "newer.keras", meta=lambda m: m.update(format_version=99))
    _rewrite(saved, folder / "badversion.keras", meta=lambda m: m.update(format_version="one"))
    _rewrite(saved, folder / "notours.keras", meta=lambda m: m.update(format="something-else"))
    _rewrite(saved, folder / "badjson.keras", raw="{not json")
    _rewrite(saved, folder / "badspec.keras", meta=lambda m: m.update(model="unet"))
    _rewrite(saved, folder / "badfacade.keras", meta=lambda m: m.update(facade=[1, 2]))
    _rewrite(saved, folder / "badcomponents.keras", meta=lambda m: m.update(components="plugin x"))


@pytest.mark.parametrize("name, match", [
    ("text.keras", "not a .keras model file"),
    ("truncated.keras", "truncated"),
    ("cut_end.keras", "truncated"),
    ("empty.keras", "not a .keras model file"),
    ("plain.keras", "without blurkit metadata"),
    ("traversal.keras", "unsafe entry name"),
    ("traversal2.keras", "unsafe entry name"),
    ("nan.keras", "NaN"),
    ("newer.keras", "newer blurkit"),
    ("badversion.keras", "format_version"),
    ("notours.keras", "not a blurkit model"),
    ("badjson.keras", "unreadable blurkit metadata"),
    ("badspec.keras", "damaged blurkit metadata"),
    ("badfacade.keras", "damaged blurkit metadata"),
    ("badcomponents.keras", "damaged blurkit metadata"),
    ("missing.keras", "no such model file"),
])
def test_read_metadata_errors(saved, tmp_path, name, match):
    _bad_files(saved, tmp_path)
    for fn in (Deblurrer.read_metadata, Deblurrer.load):
        with pytest.raises(ModelFileError, match=match) as info:
            fn(tmp_path / name)
        assert name in str(info.value)
        assert "\n" not in str(info.value)


def test_fine_tuning_a_file_whose_blur_is_not_installed_names_it(saved, tmp_path):
    """train --init FILE --sigma 2, FILE's blur a plugin's not installed here: it said "blur 'no-such-blur'
    takes no option 'sigma'; its options: (none)"; it now says the blur is not installed. Another blur
    (--blur gaussian) fine-tunes it."""
    from blurkit.cli import train as train_cmd
    from blurkit.cli.main import build_parser

    path = _rewrite(saved, tmp_path / "needs_plugin.keras", meta=_from_a_plugin)
    args = build_parser().parse_args(["train", str(tmp_path), "--init", str(path), "--sigma", "2"])
    with pytest.raises(ModelFileError, match=r"its blur generator 'no-such-blur' \(from plugin bk-extra 0\.2: "
                                             r"pip install bk-extra\) is not installed"):
        train_cmd._fine_tuned(args, {"sigma": 2.0})
    args = build_parser().parse_args(["train", str(tmp_path), "--init", str(path), "--blur", "gaussian"])
    d = train_cmd._fine_tuned(args, {"sigma": 2.0})
    assert d.blur.name == "gaussian" and d.blur.get_config()["sigma"] == 2.0


def _from_a_plugin(meta: dict) -> None:
    meta["model"]["name"] = "no-such-builder"
    meta["blur"] = {"name": "no-such-blur", "version": 2, "config": {"width": 3}}
    meta["components"] = {"model": "plugin bk-extra 0.2", "blur": "plugin bk-extra 0.2"}


def test_a_file_whose_builder_or_blur_is_not_installed_restores_photos(saved, tmp_path, arrays):
    """The architecture is in the file, so a model whose builder and blur came from a plugin not installed
    here restores photos as it did (before, loading it was refused); a blur generator is needed only to make
    training and test pairs from sharp photos: fit and evaluate on those refuse, naming the package to
    install; given pairs need none; saving the model again keeps what the file recorded."""
    path = _rewrite(saved, tmp_path / "needs_plugin.keras", meta=_from_a_plugin)
    d = Deblurrer.load(path)
    blurred, sharp = arrays
    np.testing.assert_array_equal(d.predict(blurred[:2]), Deblurrer.load(saved).predict(blurred[:2]))
    missing = (r"needs_plugin\.keras: its blur generator 'no-such-blur' \(from plugin bk-extra 0\.2: pip install "
               r"bk-extra\) is not installed; the model restores photos without it, but training and evaluating")
    for call in (lambda: d.fit(sharp, epochs=1, steps_per_epoch=1, verbose=0),
                 lambda: d.fit(arrays, validation=sharp, epochs=1, steps_per_epoch=1, verbose=0),
                 lambda: d.evaluate(sharp[:1]),
                 lambda: d.evaluate(sharp[:1], blur_options={"width": 2}),
                 lambda: d.blur.sample(), lambda: d.blur(sharp[0], seed=0)):
        with pytest.raises(ModelFileError, match=missing):
            call()
    assert d.evaluate(arrays)["images"] == 4
    assert d.evaluate(sharp[:1], blur="gaussian")["images"] == 1
    d.fit(arrays, epochs=1, steps_per_epoch=1, verbose=0)
    meta = Deblurrer.read_metadata(d.save(tmp_path / "again.keras"))
    assert meta["blur"] == {"name": "no-such-blur", "version": 2, "config": {"width": 3}}
    assert meta["components"] == {"model": "plugin bk-extra 0.2", "blur": "plugin bk-extra 0.2"}
    assert meta["model"]["name"] == "no-such-builder"


def test_a_layer_that_is_not_installed_is_refused_naming_the_plugin_of_the_model(saved, tmp_path):
    """A plugin model's custom layer is registered by its plugin: the refusal says which package to install."""
    first = _rewrite(saved, tmp_path / "meta.keras", meta=_from_a_plugin)
    path = tmp_path / "layer.keras"
    with zipfile.ZipFile(first) as zin, zipfile.ZipFile(path, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                cfg = json.loads(data)
                conv = next(la for la in cfg["config"]["layers"] if la["class_name"] == "Conv2D")
                conv.update(class_name="Sharpen", module="bk_extra.layers", registered_name="bk_extra>Sharpen")
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    with pytest.raises(ModelFileError, match=r"layer\.keras: refusing to load: its config names bk_extra\.layers\."
                                             r"Sharpen, .*; the model's builder comes from plugin bk-extra 0\.2: "
                                             r"pip install bk-extra\)$"):
        Deblurrer.load(path)


def test_a_file_whose_blur_the_installed_blur_of_its_name_cannot_rebuild_restores_photos(saved, tmp_path, arrays):
    """Another plugin's blur of the same name (or a damaged config) cannot rebuild the saved blur: loading was
    refused outright ("cannot rebuild its blur generator"), so a model whose weights are intact could not even
    restore photos. It now loads as for a blur that is not installed, and what needs the blur says why."""

    def elsewhere(meta: dict) -> None:
        meta["blur"] = {"name": "gaussian", "version": 1, "config": {"length": 9}}  # another 'gaussian''s options
        meta["components"] = {"model": "built-in", "blur": "plugin bk-other 1.0"}

    path = _rewrite(saved, tmp_path / "other_gaussian.keras", meta=elsewhere)
    d = Deblurrer.load(path)
    blurred, sharp = arrays
    np.testing.assert_array_equal(d.predict(blurred[:1]), Deblurrer.load(saved).predict(blurred[:1]))
    assert repr(d.blur) == "<blur 'gaussian', cannot be rebuilt>"
    with pytest.raises(ModelFileError, match=r"other_gaussian\.keras: its blur generator 'gaussian' \(from plugin "
                                             r"bk-other 1\.0: pip install bk-other\) cannot be rebuilt by the "
                                             r"installed blur of that name \(built-in: .*length.*\); the model "
                                             r"restores photos without it"):
        d.evaluate(sharp[:1])
    assert d.evaluate(sharp[:1], blur="gaussian")["images"] == 1
    assert Deblurrer.read_metadata(d.save(tmp_path / "again.keras"))["blur"]["config"] == {"length": 9}


def test_a_builder_that_ignores_channels_is_refused_not_obeyed_silently():
    """A registered builder without a ``channels`` option builds what it builds: ``channels=1`` gave a colour
    model (``d.channels`` 3) without a word."""
    from blurkit.models.unet import unet
    from blurkit.registry import MODELS

    def colour_only(width=4, depth=1, blocks=1):
        return unet(channels=3, width=width, depth=depth, blocks=blocks)

    MODELS.register("test-colour-only", colour_only)
    try:
        with pytest.raises(ValueError, match=r"model 'test-colour-only' built a model for 3-channel images, not "
                                             r"channels=1: pass channels=3"):
            Deblurrer(model="test-colour-only", channels=1, **FAST)
        assert Deblurrer(model="test-colour-only", **FAST).channels == 3
    finally:
        MODELS.unregister("test-colour-only")


def test_a_model_that_load_would_refuse_is_not_saved(tmp_path):
    """``save`` wrote a model with a Lambda layer, which ``load`` (safe mode) then refused: a file nobody could
    load. It is refused before anything is written."""
    import keras

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 1.0)(inputs))
    d = Deblurrer(model=model, **FAST)
    with pytest.raises(ValueError, match=r"cannot save a model with a Lambda layer .*Deblurrer\.load \(Keras "
                                         r"safe mode\) would refuse the file; write the operation as a registered "
                                         r"custom layer"):
        d.save(tmp_path / "lambda.keras")
    assert os.listdir(tmp_path) == []


def test_saved_files_record_where_their_components_come_from(saved, tmp_path):
    from blurkit.blurs import GaussianBlur
    from blurkit.registry import BLURS

    assert Deblurrer.read_metadata(saved)["components"] == {"model": "built-in", "blur": "built-in"}

    @BLURS.register("test-mine")
    class Mine(GaussianBlur):
        name = "test-mine"

    try:
        d = Deblurrer(model="unet", model_options=TINY, blur="test-mine", **FAST)
        path = d.save(tmp_path / "mine.keras")
        assert Deblurrer.read_metadata(path)["components"] == {"model": "built-in",
                                                               "blur": f"user module {__name__}"}
    finally:
        BLURS.unregister("test-mine")
    with pytest.raises(ModelFileError, match=rf"'test-mine' \(registered by user module {__name__}: import "
                                             rf"{__name__} before loading the file, in Python; the command line "
                                             r"cannot import it\) is not installed"):
        Deblurrer.load(path).evaluate(np.zeros((1, 32, 32, 3), np.uint8))


def test_lambda_layer_is_refused_on_load(tmp_path, monkeypatch):
    import keras

    import blurkit.deblurrer

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 0.5)(inputs))
    d = Deblurrer(model=model)
    assert d.model_spec is None
    # save refuses it now (test_a_model_that_load_would_refuse_is_not_saved): written as an older blurkit did
    monkeypatch.setattr(blurkit.deblurrer, "_check_savable", lambda model: None)
    path = d.save(tmp_path / "lambda.keras")
    assert Deblurrer.read_metadata(path)["model"] is None  # the metadata itself is fine
    with pytest.raises(ModelFileError, match="lambda.keras.*(Lambda|safely)") as info:
        Deblurrer.load(path)
    assert "\n" not in str(info.value)


def test_prebuilt_model_round_trip(tmp_path):
    from blurkit.models import unet

    d = Deblurrer(model=unet(channels=1, width=4, depth=1, blocks=1), channels=3)
    assert d.channels == 1 and d.model_spec is None
    loaded = Deblurrer.load(d.save(tmp_path / "m.keras"))
    x = np.random.default_rng(6).integers(0, 256, (20, 25), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.predict(x), d.predict(x))


PLUGIN_WITH_A_LAYER = """
import keras


@keras.saving.register_keras_serializable(package="bk_layer_plugin")
class Halve(keras.layers.Layer):
    def call(self, x):
        return x * 0.5


def halved(channels=3):
    inputs = keras.Input((None, None, channels))
    return keras.Model(inputs, Halve()(inputs))
"""


def test_load_imports_the_plugin_that_registers_a_layer(tmp_path, monkeypatch):
    """In a fresh process a plugin's layer is registered only once its module is imported: load used to
    refuse the file ("not a registered Keras object") unless a registry lookup had imported the plugins."""
    from importlib import metadata

    import keras

    from blurkit import registry

    (tmp_path / "bk_layer_plugin.py").write_text(PLUGIN_WITH_A_LAYER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import bk_layer_plugin

    d = Deblurrer(model=bk_layer_plugin.halved())  # a built model: its file names no builder
    path = d.save(tmp_path / "halve.keras")
    x = np.random.default_rng(0).random((16, 16, 3)).astype(np.float32)
    expected = d.predict(x)
    # as in a fresh process: the module not imported, so the layer not registered
    del keras.saving.get_custom_objects()["bk_layer_plugin>Halve"]
    monkeypatch.delitem(sys.modules, "bk_layer_plugin")
    plugin = metadata.EntryPoint("halved", "bk_layer_plugin:halved", "blurkit.models")
    real = metadata.entry_points

    def entry_points(**kw):
        return (plugin,) if kw.get("group") == "blurkit.models" else real(**kw)

    monkeypatch.setattr(registry.metadata, "entry_points", entry_points)
    registries = (registry.MODELS, registry.BLURS, registry.METRICS)
    for r in registries:
        r.reload_plugins()
    try:
        loaded = Deblurrer.load(path)
        np.testing.assert_array_equal(loaded.predict(x), expected)
        assert registry.MODELS.find("halved")["source"].startswith("plugin")
    finally:
        keras.saving.get_custom_objects().pop("bk_layer_plugin>Halve", None)
        for r in registries:
            r.reload_plugins()  # forget the test plugin (the real entry points are scanned again when needed)


def test_loaded_history_has_nan_where_the_saved_file_has_null(arrays, tmp_path):
    """The file writes NaN as null (strict JSON); load used to give None back, and ``min`` then raised
    TypeError."""
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    d.fit(arrays[1], epochs=1, steps_per_epoch=1, validation_split=0, reduce_lr=False, verbose=0)
    d.fit(arrays[1], epochs=1, steps_per_epoch=1, validation_split=0.25, verbose=0)
    path = d.save(tmp_path / "m.keras")
    assert Deblurrer.read_metadata(path)["history"]["val_loss"][0] is None
    loaded = Deblurrer.load(path)
    val = loaded.history["val_loss"]
    assert math.isnan(val[0]) and val[1] == d.history["val_loss"][1]
    assert np.nanmin(loaded.history["val_loss"]) == d.history["val_loss"][1]
    assert all(isinstance(v, float) for seq in loaded.history.values() for v in seq)


def test_assigning_a_model_replaces_the_one_predict_uses():
    """predict kept calling the old model (its traced functions), with its channels and tiling."""
    import keras

    x = np.random.default_rng(1).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    d = Deblurrer(model="unet", model_options=TINY, tile_size=64, tile_overlap=8)
    first = d.predict(x)
    inputs = keras.Input((None, None, 1))
    grey = keras.Model(inputs, keras.layers.Rescaling(0.5)(inputs))  # not the identity an untrained U-Net is
    d.model = grey
    ref = Deblurrer(model=grey, tile_size=64, tile_overlap=8)
    assert (d.channels, d.tile_align, d.fixed_size) == (1, ref.tile_align, None)
    assert d.tile_align != Deblurrer(model="unet", model_options=TINY).tile_align
    np.testing.assert_array_equal(d.predict(x), ref.predict(x))
    np.testing.assert_array_equal(d.predict(x), np.rint(x * 0.5).astype(np.uint8))
    assert not np.array_equal(d.predict(x), first)
    small = {"input_size": 32, "filters": (4, 8), "latent_dim": 8}
    fixed = Deblurrer(model="autoencoder", model_options=small).model
    d.model = fixed
    assert (d.fixed_size, d.tile_size, d.patch_size, d.channels) == (32, 32, 32, 3)
    np.testing.assert_array_equal(d.predict(x), Deblurrer(model=fixed).predict(x))
    d.model = grey  # back to any size: the sizes asked for, not the old input size
    assert (d.fixed_size, d.tile_size, d.tile_overlap, d.patch_size) == (None, 64, 8, 96)


def test_a_compiled_model_keeps_its_optimizer_and_its_learning_rate_is_recorded(arrays, recwarn):
    """fit trains a model compiled by the user with its own optimizer: learning_rate= is then not used, and
    is warned about; the learning rate recorded is the one used (it used to be the unused one)."""
    import keras

    def compiled():
        m = Deblurrer(model="unet", model_options=TINY).model
        m.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
        return m

    told = r"its own optimizer \(learning rate 0\.0001\).*learning_rate=0\.01 is not used"
    with pytest.warns(UserWarning, match=told):
        d = Deblurrer(model=compiled(), learning_rate=1e-2, **FAST)
    assert d.learning_rate == 1e-4
    d.fit(arrays, epochs=1, steps_per_epoch=1, verbose=0)
    assert d.training["learning_rate"] == 1e-4 and d.metadata()["facade"]["learning_rate"] == 1e-4
    recwarn.clear()
    quiet = Deblurrer(model=compiled(), **FAST)  # no learning_rate given: nothing to warn about
    quiet.fit(arrays, epochs=1, steps_per_epoch=1, verbose=0)
    assert quiet.training["learning_rate"] == 1e-4
    assert not [w for w in recwarn if "optimizer" in str(w.message)]
    # compiled after construction: warned at fit
    late = Deblurrer(model="unet", model_options=TINY, learning_rate=1e-2, **FAST)
    late.model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    with pytest.warns(UserWarning, match="its own optimizer"):
        late.fit(arrays, epochs=1, steps_per_epoch=1, verbose=0)
    assert late.training["learning_rate"] == 1e-4
    late.compile()  # what the warning advises: blurkit's Adam at the learning rate asked for, and recorded
    assert float(np.asarray(late.model.optimizer.learning_rate)) == pytest.approx(1e-2)
    late.fit(arrays, epochs=1, steps_per_epoch=1, verbose=0)
    assert late.learning_rate == late.training["learning_rate"] == 1e-2
    late.compile(learning_rate=3e-3)
    assert late.learning_rate == 3e-3


# ------------------------------------------------------------------------------------- figures
def test_figures(trained, tmp_path, photo_dir):
    from blurkit.plots import plot_comparison, plot_history

    curves = trained.plot_history(tmp_path / "curves.png")
    assert curves.stat().st_size > 1000 and curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_image(curves).ndim == 3
    b, s = trained.test_pair(photo_dir, 0)
    r = trained.predict(b)
    comp = plot_comparison([b, r, s], ["blurred", "restored", "sharp"], tmp_path / "sub" / "cmp.png")
    assert comp.stat().st_size > 1000 and comp.read_bytes()[:4] == b"\x89PNG"
    grey = plot_comparison([s[..., 0], (s * 255).astype(np.uint8)], ["a", "b"], tmp_path / "g.png")
    assert grey.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cmp.png", "curves.png", "g.png", "sub"]
    with pytest.raises(ValueError, match="history"):
        plot_history({"learning_rate": [0.1]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="titles"):
        plot_comparison([b], ["a", "b"], tmp_path / "y.png")


# ------------------------------------------------------------------------------------ end to end
def test_done_when(photo_dir, pair_dirs, arrays, tmp_path):
    """The issue's acceptance snippet, at tiny sizes."""
    d = Deblurrer(model="unet", blur="gaussian", blur_options={"sigma": (0.5, 3.0)}, model_options=TINY, **FAST)
    d.fit(photo_dir, epochs=1, steps_per_epoch=2, verbose=0)
    d.fit(arrays, epochs=1, steps_per_epoch=2, verbose=0)
    d.fit(pair_dirs, epochs=1, steps_per_epoch=2, verbose=0)
    assert len(d.history["loss"]) == 3 and CURVES <= set(d.history)
    restored = d.predict(photo_dir / "cat.jpg")
    assert restored.shape == read_image(photo_dir / "cat.jpg").shape and restored.dtype == np.uint8
    scores = d.evaluate(photo_dir)
    assert scores["images"] == 4 and set(scores) >= {"model", "blurred", "gain_db"}
    p = d.save(tmp_path / "deblur.keras")
    again = Deblurrer.load(p)
    np.testing.assert_array_equal(again.predict(photo_dir / "cat.jpg"), restored)
    assert again.evaluate(photo_dir) == scores
    assert again.history == d.history


_SEEDED_RUN = """
import json, sys
import numpy as np
from blurkit import Deblurrer
rng = np.random.default_rng(0)
x = rng.random((6, 40, 40, 3), dtype=np.float32)
d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1}, patch_size=32, batch_size=2,
              seed=int(sys.argv[1]))
first = float(np.sum(d.model.weights[0].numpy()))
d.fit((x, x), epochs=1, steps_per_epoch=2, verbose=0)
print(json.dumps({"first": first, "loss": d.history["loss"], "val": d.history.get("val_loss")}))
"""


def test_seed_fixes_initial_weights_and_training():
    """``seed`` seeds the initial weights without touching NumPy's global state, and a run repeats exactly in
    a new process."""
    state = np.random.get_state()[1].copy()
    a, b, c = (Deblurrer(model="unet", model_options=TINY, seed=s) for s in (3, 3, 4))
    assert np.array_equal(np.random.get_state()[1], state)
    for wa, wb in zip(a.model.weights, b.model.weights, strict=True):
        np.testing.assert_array_equal(wa.numpy(), wb.numpy())
    assert not np.array_equal(a.model.weights[0].numpy(), c.model.weights[0].numpy())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # the two runs side by side (half the wait where cores are free): each process is seeded on its own and
    # keeps its state in its own temporary folders, so running together changes nothing in either
    done = finish(*(start([sys.executable, "-c", _SEEDED_RUN, "7"], env=env) for _ in range(2)), timeout=600)
    for run in done:
        assert run.returncode == 0, run.stderr[-2000:]
    runs = [json.loads(run.stdout.strip().splitlines()[-1]) for run in done]
    assert runs[0] == runs[1]


# ------------------------------------------------------------------------------ a known blur (non-blind)
def _wiener_facade(**kw) -> Deblurrer:
    """A tiny ``wiener_unet`` facade whose estimator and restorer are not at their zero init."""
    d = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 1, "estimator_width": 4}, **kw)
    rng = np.random.default_rng(5)
    for layer in (d.model.get_layer("estimator").get_layer("est_params"),
                  d.model.get_layer("restorer").get_layer("tail")):
        layer.set_weights([rng.normal(0, 0.2, w.shape).astype("float32") for w in layer.get_weights()])
    return d


def _sigma_raw(sigma: float, lo: float = 0.3, hi: float = 3.5) -> float:
    t = (sigma - lo) / (hi - lo)
    return math.log(t / (1 - t))


@pytest.mark.filterwarnings(SMALL_BLIND)
def test_predict_with_a_known_sigma_deconvolves_that_sigma():
    """``predict(x, sigma=s)`` is the model with its estimator's sigma output replaced by ``s`` (the balance
    still estimated): the same as a copy of the model whose estimator outputs that sigma for every image,
    whole, tiled, in a batch and under the self-ensemble."""
    d = _wiener_facade()
    rng = np.random.default_rng(8)
    x = (rng.random((60, 72, 3), dtype=np.float32) * 0.8 + 0.1).astype(np.float32)
    wiener = d.model.get_layer("restorer").get_layer("wiener")
    fixed = _wiener_facade()
    est = fixed.model.get_layer("estimator").get_layer("est_params")
    kernel, bias = est.get_weights()
    kernel[:, 0], bias[0] = 0.0, _sigma_raw(2.2)  # this copy's estimate of sigma is 2.2 whatever the image
    est.set_weights([kernel, bias])
    assert float(np.asarray(wiener.blur_parameters(np.array([[_sigma_raw(2.2), 0.0]], "float32"))[0])[0]) \
        == pytest.approx(2.2, abs=1e-5)
    assert fixed.estimate_sigma(x) == pytest.approx(2.2, abs=1e-5)
    got = d.predict(x, sigma=2.2)
    assert np.abs(got - fixed.predict(x)).max() < 1e-5
    assert np.abs(got - d.predict(x)).mean() > 1e-3  # the estimate (not 2.2) gives another restoration
    assert np.abs(got - d.predict(x, sigma=0.8)).mean() > 1e-3
    batch = np.stack([x, x[::-1]])
    assert np.abs(d.predict(batch, sigma=2.2) - fixed.predict(batch)).max() < 1e-5
    assert np.abs(d.predict(x, sigma=2.2, ensemble=4) - fixed.predict(x, ensemble=4)).max() < 1e-5
    u8 = (x * 255).astype(np.uint8)
    assert (d.predict(u8, sigma=2.2) == fixed.predict(u8)).all()
    for f in (d, fixed):
        f.tile_size, f.tile_overlap = 32, 8  # tiled: every tile gets the given sigma
    assert np.abs(d.predict(x, sigma=2.2) - fixed.predict(x)).max() < 1e-5
    tiny = x[:6, :5]  # below the model's padding: the padded path
    assert np.abs(d.predict(tiny, sigma=2.2) - fixed.predict(tiny)).max() < 1e-5


def test_estimate_sigma_is_what_blind_predict_deconvolves():
    d = _wiener_facade()
    rng = np.random.default_rng(9)
    x = (rng.random((50, 64, 3), dtype=np.float32) * 0.8 + 0.1).astype(np.float32)
    s = d.estimate_sigma(x)
    assert isinstance(s, float) and 0.3 <= s <= 3.5
    assert np.abs(d.predict(x, sigma=s) - d.predict(x)).max() < 1e-5
    # any form of input: uint8, alpha ignored, a batch or a list, a file
    u8 = (x * 255).astype(np.uint8)
    assert d.estimate_sigma(u8) == pytest.approx(d.estimate_sigma(u8.astype(np.float32) / 255), abs=1e-5)
    rgba = np.concatenate([u8, np.full(u8.shape[:2] + (1,), 7, np.uint8)], axis=-1)
    assert d.estimate_sigma(rgba) == pytest.approx(d.estimate_sigma(u8), abs=1e-6)
    many = d.estimate_sigma(np.stack([x, x[:, ::-1]]))
    assert isinstance(many, list) and len(many) == 2 and many[0] == pytest.approx(s, abs=1e-6)
    f = np.stack([x * 255, x * 0.5]).astype(np.float32)  # one range for the batch: [0, 255]
    assert d.estimate_sigma(f) == pytest.approx(d.estimate_sigma(f / 255), abs=1e-5)
    grey = x.mean(axis=-1)
    assert d.estimate_sigma(grey) == pytest.approx(d.estimate_sigma(np.repeat(grey[..., None], 3, -1)), abs=1e-6)
    assert d.estimate_sigma([x, grey])[1] == pytest.approx(d.estimate_sigma(grey), abs=1e-6)
    # a crop too small to read the blur off is estimated with a warning, blind predict too (once per image, at
    # the caller's line, whatever the views, channels or tiles); 50x64 is not
    grey_model = _wiener_facade(channels=1)
    for call in (d.estimate_sigma, d.predict, lambda im: d.predict(im, ensemble=8), grey_model.estimate_sigma,
                 grey_model.predict):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(x)
            call(x[:30, :40])
            call(x[:6, :5])  # below the model's padding: the padded path
        said = [w for w in caught if "too small" in str(w.message)]
        assert [str(w.message).split(" is too small")[0] for w in said] == ["a 30x40 image", "a 6x5 image"], call
        assert "give its sigma" in str(said[0].message) and all(w.filename == __file__ for w in said)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d.predict(x[:30, :40], sigma=2.0)  # the sigma given: nothing to estimate, nothing to say
        d.predict(x[:6, :5], sigma=2.0, ensemble=8)
        Deblurrer(model="unet", model_options=TINY).predict(x[:30, :40])  # no estimator: nothing read off blind
    assert not [w for w in caught if "too small" in str(w.message)]


def test_a_too_small_image_is_named_in_its_warning(tmp_path):
    """The warning about an image too small to read its blur off names its file: given to predict or
    estimate_sigma as a path or a file object, and in a folder run (blurkit deblur), whose reader threads
    decode the photos the calling thread restores; an array, which has no name, is not named."""
    from blurkit.batch import deblur_files
    from blurkit.data.io import write_image

    d = _wiener_facade()
    x = np.random.default_rng(0).random((30, 40, 3)).astype(np.float32)
    write_image(tmp_path / "tiny.png", x)
    write_image(tmp_path / "fine.png", np.random.default_rng(1).random((64, 64, 3)).astype(np.float32))
    tiny = str(tmp_path / "tiny.png")

    def said(call) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        return [str(w.message) for w in caught if "too small" in str(w.message)]

    for call in (lambda: d.predict(tiny), lambda: d.estimate_sigma(tiny), lambda: d.predict(Path(tiny)),
                 lambda: d.predict([tmp_path / "fine.png", tiny])):
        assert [m.split(" the blind")[0] for m in said(call)] == [
            f"a 30x40 image is too small to read its blur off reliably ({tiny};"]
    with open(tiny, "rb") as f:
        assert f"({tiny};" in said(lambda: d.predict(f))[0]
    assert said(lambda: d.predict(x))[0].startswith("a 30x40 image is too small to read its blur off reliably "
                                                    "(the blind")
    jobs = [(tmp_path / n, tmp_path / "out" / n) for n in ("fine.png", "tiny.png")]
    messages = said(lambda: deblur_files(d, jobs, workers=2))
    assert len(messages) == 1 and f"({tmp_path / 'tiny.png'};" in messages[0]


def test_the_preset_reads_the_blur_it_was_trained_for():
    """The shipped preset's estimate of a Gaussian blur on a photo it was not trained on (scikit-image's
    astronaut, 256x256 crop; sigmas inside the training range) is within 15 % of the truth, and deconvolving
    the true sigma beats the blurred input."""
    from skimage import data

    from blurkit.classical import blur_gaussian
    from blurkit.metrics import psnr

    d = Deblurrer.from_preset("gaussian-v1")
    sharp = data.astronaut()[:256, 128:384]
    for sigma in (1.0, 2.0, 3.0):
        blurred = blur_gaussian(sharp, sigma, seed=0)[0]
        assert abs(math.log(d.estimate_sigma(blurred) / sigma)) < math.log(1.15), sigma
        assert psnr(sharp / 255, d.predict(blurred, sigma=sigma) / 255) > psnr(sharp / 255, blurred / 255) + 1.0


def test_the_noisy_preset_is_for_noisy_and_compressed_photos_and_the_default_for_clean_ones():
    """What the two presets' model cards say, on a photo neither was trained on (scikit-image's astronaut,
    256x256 crop): blurred with sigma 1, 2 and 3, then given sensor noise (2.55 of 255 levels) or saved as
    a JPEG of quality 75, ``gaussian-v1-noisy`` restores it better than the default; left clean (8-bit),
    the default does better."""
    from skimage import data

    from blurkit.blurs.functional import jpeg
    from blurkit.classical import blur_gaussian
    from blurkit.metrics import psnr

    default, noisy = Deblurrer.from_preset("gaussian-v1"), Deblurrer.from_preset("gaussian-v1-noisy")
    sharp = data.astronaut()[:256, 128:384]
    for sigma in (1.0, 2.0, 3.0):
        clean = blur_gaussian(sharp, sigma, seed=0)[0]
        grain = np.random.default_rng(0).normal(0.0, 2.55, clean.shape)
        rough = np.clip(np.rint(clean + grain), 0, 255).astype(np.uint8)
        compressed = jpeg(clean, 75)

        def gain(d, y):
            return psnr(sharp / 255, d.predict(y) / 255) - psnr(sharp / 255, y / 255)

        assert gain(default, clean) > gain(noisy, clean) + 0.2, sigma
        for y in (rough, compressed):
            assert gain(noisy, y) > gain(default, y) + 0.5 and gain(noisy, y) > 1.0, sigma


def test_known_sigma_errors_name_the_argument():
    d = _wiener_facade()
    x = np.full((32, 32, 3), 0.5, np.float32)
    for bad in (0.1, 3.6, -1, float("nan"), True, "2", [2.0]):
        with pytest.raises(ValueError, match=r"sigma must be a number from 0\.3 to 3\.5"):
            d.predict(x, sigma=bad)
    plain = Deblurrer(model="unet", model_options={"width": 4, "depth": 1})
    with pytest.raises(ValueError, match=r"^sigma: this model \(unet\) has no Gaussian blur estimator"):
        plain.predict(x, sigma=2.0)
    with pytest.raises(ValueError, match=r"^estimate_sigma: this model \(unet\)"):
        plain.estimate_sigma(x)
    with pytest.raises(ValueError, match="expected an image"):
        d.estimate_sigma(np.zeros((4, 4, 5), np.float32))
    d.fixed_size = 32  # as for a plugin's estimator + restorer model built for one input size: run whole only
    with pytest.raises(ValueError, match=r"^sigma: a model with a fixed input size \(32 px\)"):
        d.predict(x, sigma=2.0)


def test_a_model_file_named_in_capitals_is_refused_with_what_to_do(saved, tmp_path):
    """`M.KERAS` passed blurkit's checks and failed in Keras with "File format not supported ... only supports
    V3 `.keras` files"."""
    path = tmp_path / "M.KERAS"
    path.write_bytes(saved.read_bytes())
    assert Deblurrer.read_metadata(path)["format"] == "blurkit-model"
    with pytest.raises(ModelFileError, match=r"M\.KERAS: Keras loads model files whose name ends in \.keras "
                                             r"\(lower case\): rename it"):
        Deblurrer.load(path)


@pytest.mark.filterwarnings(SMALL_BLIND)
def test_threads_predicting_on_a_fresh_instance_get_what_one_thread_gets():
    """Threads that predict at once on a fresh (or just loaded) instance built its traced functions together,
    and one could find the blur estimator's functions not yet set: it restored blind, dropping the sigma it was
    given, or estimate_sigma raised TypeError. The switch interval is shortened to make that window likely."""
    import threading

    d = Deblurrer(model="wiener_unet", model_options={"width": 4, "depth": 1, "estimator_width": 4})
    rng = np.random.default_rng(0)
    images = [rng.random((24 + 4 * i, 28, 3)).astype(np.float32) for i in range(4)]
    want = [d.predict(x, sigma=2.5) for x in images] + [d.estimate_sigma(x) for x in images]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(6):
            d._split_fns = d._infer_fn = None  # as the model setter and every load leave them
            got, errors = [None] * 8, []

            def work(i, got=got, errors=errors):
                try:
                    x = images[i % 4]
                    got[i] = d.predict(x, sigma=2.5) if i < 4 else d.estimate_sigma(x)
                except Exception as exc:  # noqa: BLE001 - collected and reported below
                    errors.append(exc)

            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            for i in range(4):
                np.testing.assert_array_equal(got[i], want[i])
            assert got[4:] == want[4:]
    finally:
        sys.setswitchinterval(interval)


def test_a_deblurrer_made_before_a_fork_refuses_to_run_in_the_child(monkeypatch):
    """TensorFlow does not survive os.fork: a child's first predict hung for ever (gunicorn --preload, a
    'fork' process pool). The instance knows the process it was made in and says what to do instead."""
    d = Deblurrer(model="unet", model_options=TINY)
    x = np.zeros((16, 16, 3), np.float32)
    assert d.predict(x).shape == x.shape
    real = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: real + 1)  # as a forked child sees it
    with pytest.raises(RuntimeError, match=r"made in another process, before this one forked from it.*'spawn' or 'forkserver'"):
        d.predict(x)
    monkeypatch.undo()
    assert d.predict(x).shape == x.shape


def test_predict_takes_an_encoded_file_as_bytes_or_a_binary_file_object(tmp_path):
    """A service has a request's bytes, not a path: predict(bytes) failed with "expected an image ... got shape
    ()". Bytes and binary file objects are decoded as read_image decodes a file, max_pixels included."""
    import io

    d = Deblurrer(model="unet", model_options=TINY)
    img = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)
    write_image(tmp_path / "a.png", img)
    data = (tmp_path / "a.png").read_bytes()
    want = d.predict(tmp_path / "a.png")
    for given in (data, bytearray(data), memoryview(data), io.BytesIO(data)):
        np.testing.assert_array_equal(d.predict(given), want)
    with open(tmp_path / "a.png", "rb") as fh:
        np.testing.assert_array_equal(d.predict(fh), want)
    np.testing.assert_array_equal(d.predict([data, img])[0], want)
    with pytest.raises(ValueError, match=r"<bytes>: image is 50x40 = 2,000 pixels, more than max_pixels=100"):
        d.predict(data, max_pixels=100)
    with open(tmp_path / "a.png", encoding="latin-1") as fh, pytest.raises(TypeError, match="binary mode"):
        d.predict(fh)


def test_a_model_with_a_long_valid_name_saves(tmp_path):
    """`train --out <236 characters>.keras` trained an epoch, then failed: its temporary file's name was 20
    bytes longer than the file system takes."""
    path = tmp_path / ("m" * 236 + ".keras")
    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1})
    assert d.save(path) == path and Deblurrer.load(path).channels == 3
    assert os.listdir(tmp_path) == [path.name]


def test_a_deblurrer_goes_to_a_spawned_worker(tmp_path):
    """multiprocessing's spawn (the default on Windows and macOS) pickles what it sends: a preset failed in
    the worker with "Could not locate class 'RadialSpectrum'", and with the layers imported by hand with "made
    before the process forked" (it was not). A Deblurrer now travels as its saved file's bytes."""
    import pickle
    import subprocess
    import sys

    d = Deblurrer.from_preset("gaussian-v1")
    photo = (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)
    sent = tmp_path / "sent.pickle"
    sent.write_bytes(pickle.dumps((d, photo)))
    from helpers import source_env

    code = ("import pickle, sys; import numpy as np\n"  # a fresh interpreter: nothing of blurkit imported yet
            f"d, photo = pickle.loads(open({str(sent)!r}, 'rb').read())\n"
            "np.save(sys.stdout.buffer, d.predict(photo))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300,
                          env=source_env(TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    import io

    np.testing.assert_array_equal(np.load(io.BytesIO(proc.stdout)), d.predict(photo))
    import copy  # pickling goes through a saved file; copy.copy stays the usual shallow copy

    d.note = "mine"
    shallow = copy.copy(d)
    assert shallow.model is d.model and shallow.note == "mine"
    deep = copy.deepcopy(d)  # after a predict: its traced functions could not be copied (FuncGraph)
    assert deep.model is not d.model and deep.note == "mine"
    np.testing.assert_array_equal(deep.predict(photo), d.predict(photo))


def test_a_pickled_deblurrer_keeps_the_file_it_was_loaded_from(tmp_path):
    """A Deblurrer travels pickled as a temporary file's bytes: the copy names the file the original came from
    (source, and the training record's init of a fit in a worker), not that temporary file; one built in
    memory none."""
    import pickle

    from blurkit.presets import SHA256

    preset = pickle.loads(pickle.dumps(Deblurrer.from_preset("gaussian-v1")))
    assert preset.source.endswith("gaussian-v1.keras") and Path(preset.source).is_file()
    assert preset._loaded["preset"] == "gaussian-v1" and preset._loaded["sha256"] == SHA256["gaussian-v1"]
    built = pickle.loads(pickle.dumps(Deblurrer(model="unet", model_options=TINY, **FAST)))
    assert built.source is None and built._loaded is None
    built.fit(np.zeros((2, 32, 32, 3), np.uint8), epochs=1, steps_per_epoch=1, validation_split=0, verbose=0)
    assert "init" not in built.training


def test_assigning_another_model_drops_the_file_it_was_loaded_from(tmp_path):
    """training["init"] names the file the weights started from: a model assigned after loading is not it."""
    d = Deblurrer.load(Deblurrer(model="unet", model_options=TINY, **FAST).save(tmp_path / "m.keras"))
    assert d._loaded["file"] == str(tmp_path / "m.keras")
    d.model = Deblurrer(model="unet", model_options={**TINY, "width": 8}).model
    assert d._loaded is None
    d.fit(np.zeros((2, 32, 32, 3), np.uint8), epochs=1, steps_per_epoch=1, validation_split=0, verbose=0)
    assert "init" not in d.training


def test_resume_names_of_files_on_two_drives(monkeypatch):
    """On Windows a list naming files on C: and D: has no common folder (os.path.commonpath raises
    ValueError): every fit with a state folder would have failed at its start. They keep absolute names."""
    import os

    from blurkit import deblurrer

    def no_common(paths):
        raise ValueError("Paths don't have the same drive")

    monkeypatch.setattr(deblurrer.os.path, "commonpath", no_common)
    names = deblurrer._relative_names(["c/a.png", "d/b.png"])
    assert names == [os.path.abspath("c/a.png").replace(os.sep, "/"), os.path.abspath("d/b.png").replace(os.sep, "/")]


# -- mutation-audit pins: value scales, the self-ensemble's order, batch scales, the saved tile overlap ------
def test_an_int64_image_of_8_bit_values_is_restored_as_its_uint8_twin(trained, astronaut):
    """Pins the scale of integer images other than uint8/uint16: 255 when their maximum is at most 255.

    An 8-bit photo held as int64 (what ``np.asarray`` of Python ints gives) must restore to the same values
    as the uint8 photo, in int64: taking every non-uint8 integer image as 16-bit would read it 257 times too
    dark.
    """
    x = _small(astronaut, (45, 33))
    got = trained.predict(x.astype(np.int64))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, trained.predict(x).astype(np.int64))


def test_a_two_view_self_ensemble_averages_the_image_and_its_mirror(trained, astronaut):
    """Pins the order of :data:`~blurkit.deblurrer.DIHEDRAL` as :meth:`Deblurrer.predict` documents it: 2 adds
    the mirror image, 4 the two 180-degree turns.

    ``ensemble=2`` must equal the mean of the restorations of the image and of its left-right mirror
    (mirrored back), built here from literal flips rather than from DIHEDRAL, so that a reordered table (a
    quarter turn second, say) fails.
    """
    from blurkit.deblurrer import DIHEDRAL

    f = _small(astronaut, (45, 33)).astype(np.float32) / 255
    mirror = trained.predict(np.ascontiguousarray(f[:, ::-1]))[:, ::-1]
    expected = (trained.predict(f) + mirror) / 2
    np.testing.assert_allclose(trained.predict(f, ensemble=2), expected, atol=1e-6)
    assert DIHEDRAL[:2] == ((0, False), (0, True))
    assert {rot for rot, _ in DIHEDRAL[:4]} == {0, 2}


def _dark_first_batch(astronaut) -> tuple[np.ndarray, np.ndarray]:
    """A float batch in [0, 255] whose first photo is dark (values 0 and 1 only), and its uint8 photos."""
    a = _small(astronaut, (64, 48))
    photos = np.stack([a // 200, a])
    return photos.astype(np.float32), photos


def test_a_batch_is_scaled_by_all_its_images_not_by_its_first(trained, astronaut):
    """Pins that a float batch gets one value range from *all* its images (as predict documents).

    The first photo of this [0, 255] batch is dark (its maximum 1 would make it a [0, 1] image alone): it
    must be restored as the [0, 255] image it is (as its uint8 twin is, to within uint8 rounding), and the
    second as it is alone. Taking the range from the first image would clip the second to white.
    """
    batch, photos = _dark_first_batch(astronaut)
    out = trained.predict(batch)
    assert out.shape == batch.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[1], trained.predict(batch[1]), atol=1e-4)
    assert np.abs(out[0] - trained.predict(photos[0]).astype(np.float32)).max() <= 0.5 + 1e-3


def test_estimate_sigma_of_a_batch_scales_it_by_all_its_images(astronaut):
    """Pins the same batch-wide range for :meth:`Deblurrer.estimate_sigma`: each photo of a dark-first
    [0, 255] float batch is estimated as its uint8 twin alone (the second photo would otherwise be white)."""
    from blurkit.classical import blur_gaussian

    d = Deblurrer.from_preset("gaussian-v1")
    a = blur_gaussian(astronaut[:128, :128], 2.0, seed=0)[0]
    photos = np.stack([a // 200, a])
    got = d.estimate_sigma(photos.astype(np.float32))
    assert len(got) == 2
    assert got[0] == pytest.approx(d.estimate_sigma(photos[0]), abs=1e-4)
    assert got[1] == pytest.approx(d.estimate_sigma(photos[1]), abs=1e-4)


def test_a_non_default_tile_overlap_survives_save_and_load(tmp_path):
    """Pins that the saved facade's ``tile_overlap`` is read back on load (not replaced by the default), so a
    model saved for a tiling restores photos with the same tiles."""
    from blurkit.deblurrer import DEFAULT_TILE_OVERLAP

    d = Deblurrer(model="unet", model_options=TINY, tile_size=48, tile_overlap=8)
    assert DEFAULT_TILE_OVERLAP != 8
    loaded = Deblurrer.load(d.save(tmp_path / "m.keras"))
    assert (loaded.tile_size, loaded.tile_overlap) == (48, 8)

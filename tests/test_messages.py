"""Messages a new user meets first: loading a preset by its name as a file, predict's size guard, and what
``blurkit train`` says about the epochs and the train/validation split."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.cli.main import main
from blurkit.data.io import ImageReadError, write_image

TINY_TRAIN = ["--model-option", "width=4", "--model-option", "depth=1", "--model-option", "blocks=1",
              "--epochs", "1", "--steps-per-epoch", "1", "--patch-size", "32", "--batch-size", "2"]


def _photos(folder, n: int):
    rng = np.random.default_rng(0)
    for i in range(n):
        write_image(folder / f"p{i}.png", rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    return folder


# ------------------------------------------------------------------------------------------ presets
def test_loading_a_preset_name_as_a_file_says_how_to_load_the_preset(tmp_path, monkeypatch):
    """``Deblurrer.load("gaussian-v1")`` said only "no such model file"."""
    from blurkit.deblurrer import ModelFileError
    from blurkit.presets import list_presets

    monkeypatch.chdir(tmp_path)  # no file of that name here
    for name in list_presets():
        with pytest.raises(ModelFileError, match=rf'^{name}: no such model file; {name} is a preset: '
                                                 rf'Deblurrer\.from_preset\("{name}"\)$'):
            Deblurrer.load(name)
    with pytest.raises(ModelFileError, match=r"^gaussian-v2: no such model file$"):  # not a preset: no hint
        Deblurrer.load("gaussian-v2")


def test_from_preset_says_which_presets_there_are():
    from blurkit.presets import list_presets

    doc = Deblurrer.from_preset.__doc__
    assert all(f'"{name}"' in doc for name in list_presets()) and "blurkit list presets" in doc


# ------------------------------------------------------------------------------------------ predict
def test_an_image_over_max_pixels_names_the_max_pixels_of_the_method_called(tmp_path):
    """From predict the advice was to "pass a larger max_pixels (or max_pixels=None) to read_image": a function
    the user did not call, and None, which is predict's default limit, not no limit."""
    d = Deblurrer.from_preset("gaussian-v1")  # estimate_sigma needs its blur estimator
    path = _photos(tmp_path, 1) / "p0.png"
    tail = ("(decompression-bomb guard); pass a larger max_pixels (or max_pixels=None) to Deblurrer.{} if you trust "
            "this file")
    for call, method in ((lambda x: d.predict(x, max_pixels=100), "predict"),
                         (lambda x: d.estimate_sigma(x, max_pixels=100), "estimate_sigma")):
        with open(path, "rb") as fh:
            for x, name in ((path, str(path)), (path.read_bytes(), "<bytes>"), (fh, str(path))):
                with pytest.raises(ImageReadError) as err:
                    call(x)
                assert str(err.value) == (f"{name}: image is 64x48 = 3,072 pixels, more than max_pixels=100 "
                                          + tail.format(method))
                assert err.value.path == name
    with pytest.raises(ImageReadError, match="not an image"):  # other reasons pass unchanged
        d.predict(b"not an image")


def test_fit_and_evaluate_name_their_own_max_pixels(tmp_path, capsys):
    """fit and evaluate passed read_image's advice on ("pass a larger max_pixels (or max_pixels=None) to
    read_image"), and evaluate and ``blurkit train``/``evaluate`` had no limit to raise. Each now takes
    ``max_pixels`` (``--max-pixels``), checked before any file is read, and its messages name it."""
    import sys
    import warnings

    photos = _photos(tmp_path / "photos", 2)
    write_image(photos / "small.png", np.zeros((40, 40, 3), np.uint8))  # 1,600 pixels: under the limit below
    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1}, patch_size=16, batch_size=2)
    big = "image is 64x48 = 3,072 pixels, more than max_pixels=2,000 (decompression-bomb guard); "
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d.fit(photos, epochs=1, steps_per_epoch=1, validation_split=0, max_pixels=2000, verbose=0)
    said = sorted(str(w.message) for w in caught if "skipping" in str(w.message))
    assert said == [f"skipping unreadable training item: {photos / f'p{i}.png'}: {big}pass a larger max_pixels "
                    "(or max_pixels=None) to Deblurrer.fit if you trust this file" for i in (0, 1)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = d.evaluate(photos, max_pixels=2000)
    assert scores["images"] == 1 and [row["error"] for row in scores["skipped"]] == [
        f"{photos / f'p{i}.png'}: {big}pass a larger max_pixels (or max_pixels=None) to Deblurrer.evaluate if you "
        "trust this file"
        for i in (0, 1)]
    assert d.evaluate(photos)["images"] == 3  # the default limit takes them all
    for bad in (0, -5, 2.5, True, "100"):
        for method in (lambda **kw: d.fit(photos, epochs=1, **kw), lambda **kw: d.evaluate(photos, **kw)):
            with pytest.raises(ValueError, match=r"max_pixels must be a positive whole number of pixels or None"):
                method(max_pixels=bad)
    # the command line names its flag, in the skipped lines and in the warnings
    model = tmp_path / "m.keras"
    d.save(model)
    assert main(["evaluate", str(model), str(photos), "--max-pixels", "2000"]) == 3  # one skipped
    err = capsys.readouterr().err
    assert f"  skipped: {photos / 'p0.png'}: image is 64x48 = 3,072 pixels, more than --max-pixels 2,000 " \
           "(decompression-bomb guard); pass a larger --max-pixels if you trust this file" in err

    def shown(message, category, filename, lineno, file=None, line=None):  # as Python shows them, outside pytest
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = shown
        assert main(["train", str(photos), *TINY_TRAIN, "--patch-size", "16", "--val-split", "0",
                     "--max-pixels", "2000", "-o", str(tmp_path / "t.keras")]) == 0
    err = capsys.readouterr().err
    assert f"warning: skipping unreadable training item: {photos / 'p1.png'}: image is 64x48 = 3,072 pixels, " \
           "more than --max-pixels 2,000 (decompression-bomb guard); pass a larger --max-pixels if you trust" in err
    assert "max_pixels" not in err and "Deblurrer" not in err
    for command in (["evaluate", str(model), str(photos)], ["train", str(photos), "-o", str(tmp_path / "u.keras")]):
        assert main([*command, "--max-pixels", "0"]) == 2
        assert "--max-pixels must be at least 1, got 0" in capsys.readouterr().err


def test_max_pixels_none_means_no_limit_everywhere(tmp_path, monkeypatch):
    """``max_pixels=None`` disabled read_image's limit but meant the default limit in Deblurrer.predict,
    estimate_sigma and fit, so a trusted image over it could not be restored from its file at all. Now every
    reader defaults to DEFAULT_MAX_PIXELS and None is no limit; what each passes on to the decoders is
    recorded here (an image over 179 million pixels is too big to make in a test)."""
    import inspect

    import blurkit.data.io as io
    from blurkit.batch import deblur_files
    from blurkit.data.pipeline import check_readable, make_dataset, resolve_source

    for fn in (Deblurrer.predict, Deblurrer.estimate_sigma, Deblurrer.fit, Deblurrer.evaluate, io.read_image,
               io.decode_image, deblur_files, make_dataset, check_readable):
        assert inspect.signature(fn).parameters["max_pixels"].default == io.DEFAULT_MAX_PIXELS, fn
    given = []
    real_read, real_decode = io.read_image, io.decode_image
    monkeypatch.setattr(io, "read_image", lambda *a, **kw: given.append(kw.get("max_pixels", "default"))
                        or real_read(*a, **kw))
    monkeypatch.setattr(io, "decode_image", lambda *a, **kw: given.append(kw.get("max_pixels", "default"))
                        or real_decode(*a, **kw))
    path = _photos(tmp_path / "photos", 1) / "p0.png"
    d = Deblurrer.from_preset("gaussian-v1")
    for limit in (None, 5000, io.DEFAULT_MAX_PIXELS):
        given.clear()
        d.predict(path, max_pixels=limit)
        d.predict(path.read_bytes(), max_pixels=limit)
        d.estimate_sigma(path, max_pixels=limit)
        d.evaluate(path.parent, max_pixels=limit)
        check_readable(resolve_source(path.parent), max_pixels=limit)
        assert len(given) >= 5 and set(given) == {limit}, (limit, given)


# ------------------------------------------------------------------------------------------ train
def test_train_says_how_the_photos_were_split_once_before_training(tmp_path, capsys):
    """``train`` said "for 1 epochs", and nothing of the split: how many photos it found, and that a single
    photo trains with no validation (the curves and the saved epoch then follow the training loss)."""
    out = tmp_path / "m.keras"
    assert main(["train", str(_photos(tmp_path / "three", 3)), *TINY_TRAIN, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"for 1 epoch -> {out} " in printed and "1 epochs" not in printed
    lines = printed.splitlines()
    assert lines.count("3 photos: 2 training, 1 validation") == 1
    assert lines.index("3 photos: 2 training, 1 validation") < next(
        i for i, ln in enumerate(lines) if ln.startswith("saved "))
    assert main(["train", str(_photos(tmp_path / "one", 1)), *TINY_TRAIN, "-o", str(out), "--overwrite"]) == 0
    assert ("1 photo: no validation split (needs at least 2); the curves show the training loss only"
            in capsys.readouterr().out.splitlines())
    assert main(["train", str(tmp_path / "one"), *TINY_TRAIN, "-o", str(out), "--quiet", "--overwrite"]) == 0
    assert capsys.readouterr().out == ""


def test_train_split_line_for_each_way_of_choosing_validation():
    from blurkit.cli.train import _split_line

    def line(train: int, val: int, **args) -> str:
        d = SimpleNamespace(training={"train_items": train, "validation_items": val})
        return _split_line(d, SimpleNamespace(**{"pairs": None, "validation": None, "val_split": 0.1, **args}))

    assert line(7, 1) == "8 photos: 7 training, 1 validation"
    assert line(9, 1, pairs=("b", "s")) == "10 pairs: 9 training, 1 validation"
    assert line(8, 0, val_split=0.0) == ("8 photos: no validation split (--val-split 0); the curves show the "
                                         "training loss only")
    assert line(1, 0, pairs=("b", "s")).startswith("1 pair: no validation split (needs at least 2)")
    assert line(8, 3, validation="val/") == "8 photos for training, 3 for validation (val/)"


def test_train_summary_says_one_epoch_in_the_singular(tmp_path, monkeypatch):
    from blurkit.cli.train import _summary

    monkeypatch.setattr(Deblurrer, "read_metadata", staticmethod(lambda path: {"history": {"loss": [0.1]}}))
    d = SimpleNamespace(training={"epochs": 2}, validation={})
    assert _summary(d, tmp_path / "m.keras", 5, 1, False).splitlines()[0] == (
        "stopped early after epoch 2 of 5: no better training loss for 1 epoch")


# ------------------------------------------------------------------------------------------ arguments
def test_arguments_of_the_wrong_kind_are_refused_by_name():
    """From an audit of the API reference: arguments that were cut silently (8.9 bins to 8, 2.7 iterations to
    2, 1.5 images to 1), taken when they cannot mean anything (a tolerance of -1 scored 0, early stopping
    after -1 epochs trained on, "2" as a sigma), or refused in a message naming a private function or no
    argument; and NumPy integers refused where Python ones are taken."""
    from blurkit.blurs import deserialize_blur
    from blurkit.classical import blur_gaussian, richardson_lucy
    from blurkit.metrics import accuracy, keras_metric
    from blurkit.metrics.losses import get_loss
    from blurkit.models import unet, wiener_unet
    from blurkit.models.layers import PadToMultiple

    photos = [np.zeros((16, 16, 3), np.float32)] * 3
    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1}, patch_size=16, batch_size=2)
    refused = [
        (lambda: wiener_unet(spectrum_bins=8.9), ValueError, r"^spectrum_bins must be an int >= 2, got 8\.9$"),
        (lambda: accuracy(np.zeros((2, 2)), np.zeros((2, 2)), tol=-1), ValueError, r"^tol must be a number >= 0 "),
        (lambda: richardson_lucy(np.zeros((8, 8)), np.ones((3, 3)) / 9, iterations=2.7), ValueError,
         r"^iterations must be a whole number >= 1, got 2\.7$"),
        (lambda: blur_gaussian(np.zeros((8, 8)), (1, 2)), TypeError, r"^sigma must be one number \(pixels\), got "
                                                                      r"tuple \(1, 2\)$"),
        (lambda: blur_gaussian(np.zeros((8, 8)), "2"), TypeError, r"^sigma must be one number"),
        (lambda: d.evaluate(photos, max_images=0), ValueError, r"^max_images must be a whole number of at least 1"),
        (lambda: d.evaluate(photos, max_images=1.5), ValueError, r"^max_images must be a whole number"),
        (lambda: d.fit(photos, early_stopping=-1), ValueError, r"^early_stopping must be a whole number of epochs"),
        (lambda: d.fit(photos, early_stopping="3"), ValueError, r"^early_stopping must be a whole number of epochs"),
        (lambda: d.fit(photos, validation_split=1.5), ValueError, r"^the validation fraction \(fit's "
                                                                  r"validation_split\) must be in \[0, 1\), got 1\.5$"),
        (lambda: deserialize_blur({"name": "gaussian", "config": {"sigmaa": 2}}), TypeError,
         r"^blur 'gaussian' takes no option 'sigmaa'; its options: sigma, "),
        (lambda: Deblurrer(blur={"name": "gaussian", "config": {"sigmaa": 2}}), TypeError,
         r"^blur 'gaussian' takes no option 'sigmaa'"),
        (lambda: keras_metric("psnr", foo=1), TypeError, r"^metric 'psnr' takes no option 'foo'; its options: \(none\)$"),
        (lambda: keras_metric("accuracy", tols=1), TypeError, r"^metric 'accuracy' takes no option 'tols'; its "
                                                              r"options: tol$"),
        (lambda: get_loss("mse", eps=1), TypeError, r"^loss 'mse' takes no option 'eps'; its options: "),
    ]
    for call, kind, message in refused:
        with pytest.raises(kind, match=message):
            call()
    # what they take
    assert d.evaluate(photos, max_images=2)["images"] == 2
    assert accuracy(np.zeros((2, 2)), np.zeros((2, 2)), tol=0) == 1.0
    assert keras_metric("accuracy", tol=np.float32(0.01)).get_config()["kwargs"] == {"tol": np.float32(0.01)}
    model = unet(width=np.int64(4), depth=np.int32(1), blocks=1)
    assert model.count_params() == unet(width=4, depth=1, blocks=1).count_params()
    layer = PadToMultiple(np.int64(8))
    assert type(layer.get_config()["multiple"]) is int  # a NumPy int would not go into the model's JSON
    assert type(wiener_unet(width=4, depth=1, estimator_width=4, spectrum_bins=np.int64(8))
                .get_layer("estimator").get_layer("est_spectrum").bins) is int


def test_the_luma_metrics_are_exported_with_the_others():
    from blurkit.metrics import functional

    registered = set(functional.__all__) & {"mse", "psnr", "psnr_y", "ssim", "ssim_y", "accuracy", "channel_accuracy"}
    assert registered == {"mse", "psnr", "psnr_y", "ssim", "ssim_y", "accuracy", "channel_accuracy"}


def test_the_review_of_the_max_pixels_and_metric_checks(tmp_path, capsys, monkeypatch):
    """From the review of this session's change: predict, estimate_sigma, test_pair and read_image check
    max_pixels as fit and evaluate do (True was a limit of 1 pixel, "100" a bare TypeError); metrics of empty
    images are an error (a ZeroDivisionError after the banded rewrite, NaN before); an inner naming(None)
    keeps the outer name; a folder named like a preset does not hide the preset."""
    import warnings

    from blurkit.data.io import read_image
    from blurkit.deblurrer import _warn_too_small, naming
    from blurkit.metrics import accuracy, mse, psnr

    path = _photos(tmp_path / "photos", 1) / "p0.png"
    d = Deblurrer.from_preset("gaussian-v1")
    readers = (lambda **kw: d.predict(path, **kw), lambda **kw: d.estimate_sigma(path, **kw),
               lambda **kw: d.test_pair(path.parent, 0, **kw), lambda **kw: read_image(path, **kw))
    for bad in (True, "100", 2.5, 0):
        for reader in readers:
            with pytest.raises(ValueError, match=r"max_pixels must be a positive whole number of pixels or None"):
                reader(max_pixels=bad)
    with pytest.raises(ImageReadError, match=r"more than max_pixels=100 "):
        d.test_pair(path.parent, 0, max_pixels=100)
    for metric in (mse, psnr, accuracy):
        with pytest.raises(ValueError, match=r"empty images \(shape \(0, 5\)\)"):
            metric(np.zeros((0, 5)), np.zeros((0, 5)))
    with naming("outer.png"), naming(None), warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        _warn_too_small(30, 40)
    assert "(outer.png;" in str(said[0].message)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gaussian-v1").mkdir()  # an earlier `blurkit deblur ... -o gaussian-v1/`
    assert main(["evaluate", "gaussian-v1", str(path), "--sigma", "2"]) == 0
    capsys.readouterr()

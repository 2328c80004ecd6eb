"""Deblurrer.export / blurkit export: a SavedModel that restores images as predict does, without blurkit."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.cli.main import main
from blurkit.deblurrer import ModelFileError
from helpers import SMALL_BLIND

TINY = {
    "unet": dict(model="unet", model_options={"width": 4, "depth": 2}),
    "wiener_unet": dict(model="wiener_unet", model_options={"width": 4, "depth": 2, "estimator_width": 4}),
    "grey unet": dict(model="unet", model_options={"width": 4, "depth": 2}, channels=1),
}
SIZES = [(37, 50), (5, 3), (1, 1), (9, 120)]  # odd sizes; smaller than the stride; one pixel; a thin strip


def _batched_as_alone(got: np.ndarray, want: np.ndarray) -> None:
    """An image served in a batch of two is restored as alone, to the 8-bit rounding of float sums: a batch runs
    other float kernels than one image (oneDNN on an AMD EPYC: one level in 1 of 66,300 values). An image mixed
    with the other one, or restored with its sigma, is off by far more."""
    got, want = got.astype(int), want.astype(int)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1 and np.mean(got != want) < 1e-3


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def wiener_export(tmp_path_factory) -> SimpleNamespace:
    """The tiny wiener_unet (a blur estimator, as the presets) saved as ``m.keras`` and exported once with
    ``blurkit export`` to a folder ``deblur`` (an export takes seconds), for the tests that serve that model:
    ``model`` and ``served`` (the paths), ``status`` and ``out`` (the command's exit status and stdout)."""
    root = tmp_path_factory.mktemp("wiener")
    model, served = root / "m.keras", root / "deblur"
    Deblurrer(**TINY["wiener_unet"]).save(model)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["export", str(model), "-o", str(served)])
    return SimpleNamespace(model=model, served=served, status=status, out=printed.getvalue())


def _images(astronaut: np.ndarray, channels: int) -> list[np.ndarray]:
    image = astronaut if channels == 3 else astronaut[:, :, 1:2]
    return [np.ascontiguousarray(image[60 : 60 + h, 100 : 100 + w]) for h, w in SIZES]


@pytest.mark.parametrize("name", list(TINY))
@pytest.mark.filterwarnings(SMALL_BLIND)
def test_export_serves_what_predict_returns(name, astronaut, tmp_path, request):
    import tensorflow as tf

    if name == "wiener_unet":  # the module's export of this model (``Deblurrer.export`` of the file it loads)
        exported = request.getfixturevalue("wiener_export")
        d, path = Deblurrer.load(exported.model), exported.served
    else:
        d = Deblurrer(**TINY[name])
        path = d.export(tmp_path / "deblur")
    served = tf.saved_model.load(str(path))
    assert {"serve", "serve_float", "serving_default"} <= set(served.signatures)
    with pytest.raises(ModelFileError, match=r"deblur: a folder, not a \.keras model file \(a SavedModel"):
        Deblurrer.load(path)  # what to do with it instead
    for image in _images(astronaut, d.channels):
        want = d.predict(image)
        got = served.serve(image[None]).numpy()[0]
        assert got.dtype == np.uint8 and got.shape == image.shape
        np.testing.assert_array_equal(got, want)  # to the last bit
        unit = image.astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(served.serve_float(unit[None]).numpy()[0], d.predict(unit))
    image = _images(astronaut, d.channels)[0]
    pair = np.stack([image, image[::-1, ::-1]])
    _batched_as_alone(served.serve(pair).numpy()[1], d.predict(pair[1]))  # a batch: each its own
    if name != "wiener_unet":
        assert "serve_sigma" not in served.signatures  # no blur estimator: no known-blur endpoint
        return
    for image in _images(astronaut, 3)[:2]:
        for sigma in (1.5, 2.3, 0.1):  # 0.1: below the model's range, taken as its end (predict: refused)
            got = served.serve_sigma(image[None], tf.constant([sigma], tf.float64)).numpy()[0]
            np.testing.assert_array_equal(got, d.predict(image, sigma=max(sigma, 0.3)))
    sigmas = tf.constant([1.0, 3.0], tf.float64)  # one sigma per image of the batch
    both = served.serve_sigma(pair, sigmas).numpy()
    _batched_as_alone(both[0], d.predict(pair[0], sigma=1.0))
    _batched_as_alone(both[1], d.predict(pair[1], sigma=3.0))
    for bad in (float("nan"), float("inf")):  # not a black image: an error, as predict refuses them
        with pytest.raises(tf.errors.InvalidArgumentError, match="sigma must be finite"):
            served.serve_sigma(pair, tf.constant([1.0, bad], tf.float64))
    # what a service's client gets wrong: errors that say so (they came from inside the graph: "paddings must
    # be less than the dimension size", "ConcatOp : Dimension 0 ..."), not a result (sigma 0 or -1 was taken
    # as 0.3, one NaN made the whole image NaN, a [0, 255] float image came back clipped)
    for sigmas, message in (([0.0, 1.0], "sigma must be positive"), ([-1.0, 1.0], "sigma must be positive"),
                            ([1.0], "one sigma per image")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            served.serve_sigma(pair, tf.constant(sigmas, tf.float64))
    unit = pair.astype(np.float32) / np.float32(255)
    for bad, message in ((np.float32("nan"), "images must be finite"), (np.float32(255), r"in \[0, 1\]")):
        spoiled = unit.copy()
        spoiled[0, 3, 4, 1] = bad
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            served.serve_float(spoiled)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least 1 x 1 pixels"):
        served.serve(np.zeros((1, 0, 5, 3), np.uint8))
    for endpoint, empty in ((served.serve, np.zeros((0, 9, 7, 3), np.uint8)),
                            (served.serve_float, np.zeros((0, 9, 7, 3), np.float32))):
        assert endpoint(empty).numpy().shape == (0, 9, 7, 3)
    assert served.serve_sigma(np.zeros((0, 9, 7, 3), np.uint8), tf.constant([], tf.float64)).shape[0] == 0


@pytest.mark.parametrize("name", ["unet", "wiener_unet"])
@pytest.mark.filterwarnings(SMALL_BLIND)
def test_export_tiles_large_images_as_predict(name, astronaut, tmp_path):
    """Images over ``tile_size**2`` pixels are restored in predict's tiles (the same tiles, blending windows
    and sums) with one blur estimate read off ``estimate_tile`` tiles (their median): bit for bit what predict
    returns, where the tiles and the estimate's tiles change the result."""
    import tensorflow as tf

    d = Deblurrer(**TINY[name], tile_size=48, tile_overlap=12, estimate_tile=40)
    rng = np.random.default_rng(5)
    for v in d.model.weights:  # away from the init, so that where the tiles fall shows in the result
        v.assign(v.numpy() + rng.normal(0, 0.03, v.shape).astype("float32"))
    whole = Deblurrer(**TINY[name])
    whole.model.set_weights(d.model.get_weights())
    served = tf.saved_model.load(str(d.export(tmp_path / "deblur")))
    wide = np.tile(astronaut, (1, 2, 1))
    # one tile with the estimate's median; 3x4 and 2x7 tiles; a strip thinner than the stride; a column
    for h, w in [(45, 50), (130, 170), (61, 300), (3, 900), (200, 49)]:
        image = np.ascontiguousarray(wide[:h, :w])
        want = d.predict(image)
        np.testing.assert_array_equal(served.serve(image[None]).numpy()[0], want)
        unit = image.astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(served.serve_float(unit[None]).numpy()[0], d.predict(unit))
        if h * w > 48**2 or name == "wiener_unet":  # restored whole, or its blur estimated whole: not the same
            assert not np.array_equal(want, whole.predict(image))
    image = np.ascontiguousarray(wide[100:230, 200:370])
    pair = np.stack([image, image[::-1]])
    _batched_as_alone(served.serve(pair).numpy()[1], d.predict(pair[1]))  # a batch: each its own
    if name == "wiener_unet":
        got = served.serve_sigma(image[None], tf.constant([1.5], tf.float64)).numpy()[0]
        np.testing.assert_array_equal(got, d.predict(image, sigma=1.5))


def test_export_tile_plan_is_plan_tiles_for_every_side():
    """The graph's tile starts, sides and blending windows are ``tiling.plan_tiles``' and its windows' for
    every side length (the first version rounded the starts twice: 3x953 px at tile 48 put a tile at 456
    instead of 452, and sides from 32529 px at the default settings)."""
    import tensorflow as tf

    from blurkit.export import _plan, _windows
    from blurkit.tiling import _normalised_windows, plan_tiles

    settings = [(48, 12, 4), (48, 12, 1), (40, 0, 1), (8, 2, 16), (1536, 64, 16), (1536, 0, 1)]
    for tile, overlap, align in settings:
        sides = [*range(1, 300), *range(300, 1200, 7), 953] if tile < 100 else [*range(1, 40000, 211), 32529, 33830]
        for side in sides:
            want = plan_tiles(side, 1, tile=tile, overlap=overlap, align=align)
            padded, size, starts = _plan(tf.constant(side), tile, overlap, align)
            got = (int(padded), int(size), starts.numpy().tolist())
            assert got == (want.height, want.tile_h, want.ys), (tile, overlap, align, side)
            if tile < 100 and side % 7 == 0:
                wins = _windows(starts, size, padded).numpy()
                np.testing.assert_array_equal(wins, np.stack(_normalised_windows(want.ys, want.tile_h, want.height)))


@pytest.mark.filterwarnings(SMALL_BLIND)
def test_exported_model_loads_without_blurkit(astronaut, wiener_export, tmp_path):
    """Another process, where ``import blurkit`` fails, serves the preset-like model: no Python code needed."""
    d, path = Deblurrer.load(wiener_export.model), wiener_export.served
    image = _images(astronaut, 3)[0]
    np.save(tmp_path / "image.npy", image)
    code = (
        "import sys, json, numpy as np\n"
        "sys.modules['blurkit'] = None\n"
        "import tensorflow as tf\n"
        f"m = tf.saved_model.load({str(path)!r})\n"
        f"y = m.signatures['serving_default'](images=tf.constant(np.load({str(tmp_path / 'image.npy')!r})[None]))\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in y.items()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (served,) = json.loads(done.stdout.strip().splitlines()[-1]).values()
    np.testing.assert_array_equal(np.array(served, np.uint8)[0], d.predict(image))


def test_export_errors_and_leftovers(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="fully convolutional"):
        Deblurrer(model="autoencoder", model_options={"input_size": 32, "filters": [4], "latent_dim": 8}).export(
            tmp_path / "ae")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    d = Deblurrer(**TINY["unet"])
    with pytest.raises(ValueError, match="not an empty folder"):
        d.export(busy)
    for dots in (".", "..", busy / ".."):  # failed after the tracing, on the rename ("Invalid argument: '.'")
        with pytest.raises(ValueError, match="name the folder to write"):
            d.export(dots)
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    from keras.export import ExportArchive

    def fail(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(type(ExportArchive()), "write_out", fail)  # ExportArchive() is the backend's class
    # what exports killed before their rename left (hidden folders named as exports name them): an old one
    # is removed, a young one (maybe another export in progress) and other names are kept; so are the user's
    # own hidden folders beside the export (a backup `.new.previous`: 8 characters after the name, as a
    # temporary folder's, which removed them)
    for name, age in ((".new.k3j_9x0q.blurkit-export", 7200), (".new.young_12.blurkit-export", 0),
                      (".other.k3j_9x0q.blurkit-export", 7200), (".new.previous", 7200), (".new.20251201", 7200)):
        (tmp_path / name / "model").mkdir(parents=True)
        os.utime(tmp_path / name, (time.time() - age, time.time() - age))
    with pytest.raises(OSError, match="disk full"):
        d.export(tmp_path / "new")
    # no half-written folder, no temporary one of this export
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".new.20251201", ".new.previous", ".new.young_12.blurkit-export", ".other.k3j_9x0q.blurkit-export", "busy"]


@pytest.mark.filterwarnings(SMALL_BLIND)
def test_cli_export(astronaut, wiener_export, tmp_path, capsys):
    import tensorflow as tf

    model = wiener_export.model  # saved, then exported with main(["export", model, "-o", served])
    assert wiener_export.status == 0
    assert f"exported {model}" in wiener_export.out
    image = _images(astronaut, 3)[0]
    served = tf.saved_model.load(str(wiener_export.served))
    np.testing.assert_array_equal(served.serve(image[None]).numpy()[0], Deblurrer.load(model).predict(image))
    assert main(["export", str(model), "-o", str(wiener_export.served)]) == 2  # not empty any more
    assert "not empty" in capsys.readouterr().err
    assert main(["export", "gaussian-v9", "-o", str(tmp_path / "x")]) == 2
    assert "gaussian-v1" in capsys.readouterr().err  # the presets it has

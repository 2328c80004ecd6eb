"""What loading a model file checks, done without waste (the performance audit of 2026-12-07, F1).

The weights were walked through a zip entry, which on Python 3.11 reads again from its start at every backward
seek (1,600 seeks, 0.3 s of a 7 MB preset's load); the variables of one architecture were counted again at each
load (0.15 s). Both checks still refuse what they refused.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

import blurkit.deblurrer as deblurrer
from blurkit import Deblurrer
from blurkit.deblurrer import ModelFileError
from blurkit.presets import list_presets, preset_path
from helpers import h5_bytes, rewrite_model


@pytest.fixture(autouse=True)
def _only_blurkit_classes(monkeypatch):
    """As in a new process: classes that other tests in this worker registered with Keras are set aside (while
    there are any, no count is kept)."""
    import keras

    registered = keras.saving.get_custom_objects()
    for name in [k for k in registered if not str(k).startswith("blurkit>")]:
        monkeypatch.delitem(registered, name)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1}, patch_size=16)
    return d.save(tmp_path_factory.mktemp("model") / "tiny.keras")


def _archive(path: Path) -> io.BytesIO:
    return deblurrer._open_model_file(path, keras_copy=True)[1]


def test_the_weights_are_walked_without_seeking_in_a_zip_entry(model_file, monkeypatch):
    seeks = []
    real = zipfile.ZipExtFile.seek

    def seek(self, *args):
        seeks.append(args)
        return real(self, *args)

    monkeypatch.setattr(zipfile.ZipExtFile, "seek", seek)
    fill = deblurrer._check_weights(_archive(model_file), model_file)
    assert seeks == [] and fill > 0


def test_the_walk_in_place_counts_what_the_entry_holds(model_file):
    """The in-place walk sees the datasets h5py sees in the entry itself (same bytes, same count)."""
    import h5py

    archive = _archive(model_file)
    with zipfile.ZipFile(archive) as zf:
        data = zf.read("model.weights.h5")
    values = []
    with h5py.File(io.BytesIO(data), "r") as h5:
        h5.visititems(lambda _, item: values.append(item.size) if isinstance(item, h5py.Dataset) else None)
    assert deblurrer._check_weights(archive, model_file) == 4 * sum(values)  # float32 weights, 4 bytes each
    assert archive.tell() == 0 and archive.write(b"") == 0  # left at its start, and writable (no view held)


def test_the_view_reads_and_seeks_as_a_bytes_file():
    data = bytes(range(256)) * 40
    rng = np.random.default_rng(0)
    ref, view = io.BytesIO(data), deblurrer._View(memoryview(data))
    for _ in range(300):
        whence = int(rng.integers(0, 3))
        offset = int(rng.integers(-200, 200)) if whence else int(rng.integers(0, len(data) + 50))
        if (whence == io.SEEK_CUR and ref.tell() + offset < 0) or (whence == io.SEEK_END and len(data) + offset < 0):
            offset = -offset
        assert view.seek(offset, whence) == ref.seek(offset, whence)
        n = int(rng.integers(0, 500))
        assert view.read(n) == ref.read(n) and view.tell() == ref.tell()
    with pytest.raises(ValueError):
        view.seek(-1)


def test_one_architecture_saved_twice_is_counted_once():
    """The two presets share an architecture; their configs differ only in Keras' shared-object ids (memory
    addresses when they were saved), which the count's key numbers in order."""
    import json

    configs = [json.loads(zipfile.ZipFile(preset_path(name)).read("config.json")) for name in list_presets()[:2]]
    assert len(configs) == 2 and configs[0] != configs[1]
    assert deblurrer._config_key(configs[0]) == deblurrer._config_key(configs[1])
    other = json.loads(json.dumps(configs[0]).replace('"filters": 32', '"filters": 33', 1))
    assert other != configs[0] and deblurrer._config_key(other) != deblurrer._config_key(configs[0])


def test_a_counted_architecture_still_refuses_weights_too_small_for_it(model_file, tmp_path, monkeypatch):
    """A guard: the count kept from an earlier load is held against each file's own weights."""
    wide = Deblurrer(model="unet", model_options={"width": 32, "depth": 1, "blocks": 1}, patch_size=16)
    wide_file = wide.save(tmp_path / "wide.keras")  # 0.5 MB of variables: more than the slack of 256 kB
    monkeypatch.setattr(deblurrer, "_COUNTED", {})
    Deblurrer.load(wide_file)
    assert len(deblurrer._COUNTED) == 1
    small = rewrite_model(wide_file, tmp_path / "small.keras",
                          weights=h5_bytes(lambda f: f.create_dataset("w", data=np.zeros(4, np.float32))))
    with pytest.raises(ModelFileError, match=r"small\.keras: its model's variables need [\d,]+ bytes but its "
                                             r"weights fill 16 \(a damaged or crafted model file\)"):
        Deblurrer.load(small)
    assert len(deblurrer._COUNTED) == 1


def test_the_count_is_bounded_and_a_failed_one_not_kept(model_file, monkeypatch):
    monkeypatch.setattr(deblurrer, "_COUNTED", {str(i): i for i in range(deblurrer._COUNTED_MAX)})
    with pytest.raises(ModelFileError):
        deblurrer._check_variable_sizes({"class_name": "NoSuchLayer", "config": {}}, 0, "x.keras")
    assert list(deblurrer._COUNTED) == [str(i) for i in range(deblurrer._COUNTED_MAX)]  # nothing kept
    Deblurrer.load(model_file)
    assert len(deblurrer._COUNTED) == deblurrer._COUNTED_MAX and "0" not in deblurrer._COUNTED  # the oldest


def _dense(name: str, units: int, fan_in: int, sid) -> dict:
    import keras

    cfg = keras.saving.serialize_keras_object(keras.layers.Dense(units, name=name))
    cfg["build_config"] = {"input_shape": [None, fan_in]}
    cfg["shared_object_id"] = sid
    return cfg


# review-s16a 1: a key shared by configs Keras builds differently let a harmless-looking file's count stand
# for a crafted one's (256 MiB allocated where the count refuses the file)
COLLISIONS = {
    # Keras' map of shared objects compares ids as Python does: 1.0 is 1, so "b" is "a" in the first config
    "a float id": ({"a": _dense("a", 8, 8, 1.0), "b": _dense("b", 64, 64, 1)},
                   {"a": _dense("a", 8, 8, 1.0), "b": _dense("b", 64, 64, 2)}),
    # Keras builds a shared object where it first meets it: order matters, sorting the keys lost it
    "the order": ({"a": _dense("a", 8, 8, 7), "b": _dense("b", 64, 64, 7)},
                  {"b": _dense("b", 64, 64, 7), "a": _dense("a", 8, 8, 7)}),
}


@pytest.mark.parametrize("name", list(COLLISIONS))
def test_configs_keras_builds_differently_have_different_keys(name):
    first, second = COLLISIONS[name]
    assert deblurrer._config_key(first) != deblurrer._config_key(second)


def test_a_file_keras_refuses_leaves_no_count_and_a_crafted_one_is_counted(model_file, tmp_path, monkeypatch):
    """A primer whose count passes but which Keras cannot load is not kept: the crafted file is counted."""
    monkeypatch.setattr(deblurrer, "_COUNTED", {})
    big = 2048  # 16 MiB of kernel against a few kB of weights
    primer = rewrite_model(model_file, tmp_path / "primer.keras",
                           config=lambda cfg: {"a": _dense("a", 8, 8, 7), "b": _dense("b", big, big, 7)})
    crafted = rewrite_model(model_file, tmp_path / "crafted.keras",
                            config=lambda cfg: {"b": _dense("b", big, big, 7), "a": _dense("a", 8, 8, 7)})
    with pytest.raises(ModelFileError, match="primer.keras: Keras could not load"):
        Deblurrer.load(primer)
    assert deblurrer._COUNTED == {}
    with pytest.raises(ModelFileError, match=r"crafted\.keras: its model's variables need"):
        Deblurrer.load(crafted)


def test_a_config_naming_classes_from_elsewhere_is_not_kept():
    """A plugin's class may be registered anew in the process (a notebook): its count is made at each load."""
    plugin = {"module": "myplugin.layers", "class_name": "Wide", "config": {}, "registered_name": "myplugin>Wide"}
    renamed = {"module": "keras.layers", "class_name": "Dense", "config": {}, "registered_name": "myplugin>Wide"}
    ours = {"module": "blurkit.models.layers", "class_name": "PadToMultiple", "config": {},
            "registered_name": "blurkit>PadToMultiple"}
    named = {"module": "keras.layers", "class_name": "myplugin>Wide", "config": {}, "registered_name": None}
    assert deblurrer._config_key(plugin) is None and deblurrer._config_key(renamed) is None
    assert deblurrer._config_key(named) is None
    assert deblurrer._config_key(ours) is not None and len(deblurrer._config_key(ours)) == 64  # a hash


def test_the_count_is_kept_safely_from_many_threads(monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(deblurrer, "_COUNTED", {})

    def churn(k: int) -> None:
        for i in range(2000):
            deblurrer._remember_count((f"{k}-{i % 40}", i))
            with deblurrer._COUNTED_LOCK:
                deblurrer._COUNTED.get(f"{k}-{i % 7}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(churn, range(4)))
    assert len(deblurrer._COUNTED) == deblurrer._COUNTED_MAX


def test_no_count_is_kept_while_other_classes_are_registered_with_keras(monkeypatch):
    """review-s16b 4: a class the user registers may stand for a name the config uses (a plain "Dense")."""
    import keras

    ours = {"module": "keras.layers", "class_name": "Dense", "config": {"units": 4}, "registered_name": None}
    assert deblurrer._config_key(ours) is not None
    monkeypatch.setitem(keras.saving.get_custom_objects(), "Dense", object)
    assert deblurrer._config_key(ours) is None


def test_the_key_follows_the_image_data_format(monkeypatch):
    import keras

    cfg = {"module": "keras.layers", "class_name": "Conv2D", "config": {"data_format": None}, "registered_name": None}
    before = deblurrer._config_key(cfg)
    monkeypatch.setattr(keras.config, "image_data_format", lambda: "channels_first")
    assert deblurrer._config_key(cfg) != before

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
    assert list(deblurrer._COUNTED) == [str(i) for i in range(deblurrer._COUNTED_MAX)]
    Deblurrer.load(model_file)
    assert len(deblurrer._COUNTED) == deblurrer._COUNTED_MAX and "0" not in deblurrer._COUNTED  # the oldest

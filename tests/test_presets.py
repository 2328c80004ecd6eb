"""The shipped presets are the published ones: a preset's weights never change under its name
(docs/compatibility.md), so a result published with "gaussian-v1" can be rerun with any release."""

import hashlib

import numpy as np
import pytest

from blurkit.presets import SHA256, list_presets, preset_path


def test_the_shipped_preset_files_are_the_published_ones():
    assert list_presets() == sorted(SHA256)  # a new preset is added to the table, under a new name
    for name, digest in SHA256.items():
        assert hashlib.sha256(preset_path(name).read_bytes()).hexdigest() == digest, name


# Recorded when the presets were published (TensorFlow 2.21, Keras 3.15, x86-64 CPU): the restoration of a crop
# of scikit-image's astronaut blurred with sigma 2 (seed 0), and the sigma read off it. Other CPUs and thread
# counts differ in the 6th digit or so; the tolerances leave room for a GPU's TF32 arithmetic (a relative 1e-3
# change of every weight moves them about 0.003-0.015 dB and 0.001-0.006) and are far below what retrained
# weights move (the two presets are 0.78 dB and 0.21 apart).
GOLDEN = {"gaussian-v1": (31.5971, 1.9475), "gaussian-v1-noisy": (30.8205, 2.1573)}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_a_preset_restores_a_fixed_photo_as_when_it_was_published(name):
    from skimage import data

    from blurkit import Deblurrer, psnr
    from blurkit.classical import blur_gaussian

    sharp = data.astronaut()[96:224, 160:288]
    blurred = blur_gaussian(sharp, 2.0, seed=0)[0].astype(np.float32) / 255
    d = Deblurrer.from_preset(name)
    restored_psnr, sigma = GOLDEN[name]
    assert psnr(sharp, d.predict(blurred)) == pytest.approx(restored_psnr, abs=0.03)
    assert d.estimate_sigma(blurred) == pytest.approx(sigma, abs=0.01)

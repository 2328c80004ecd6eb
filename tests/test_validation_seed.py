"""The validation inputs of ``fit`` (the patches of the validation images, the blur drawn for each) do not depend
on the training ``seed`` (the determinism audit, F3: an identity model scored 31.27 dB with seed 5 and 28.63 dB
with seed 6 on the same validation array), and a run resumed from a training state written before that keeps
validating as its run did (docs/compatibility.md); it records the seed it goes on with
(tests/test_validation_seed_record.py)."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from blurkit import Deblurrer
from helpers import rewrite_model

#: An untrained U-Net: its last convolution is zero, the identity, so its scores are those of the inputs; the
#: tiny learning rate keeps it so (runs with other seeds train on other batches).
TINY = dict(model="unet", model_options=dict(width=4, depth=1, blocks=1), patch_size=16, batch_size=2,
            patches_per_image=1, learning_rate=1e-12)
FIT = dict(steps_per_epoch=1, verbose=0)
OLD = Path(__file__).parent / "data" / "old"


def _photos(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)  # 32 x 32, with edges for the blur to soften


PHOTOS, VAL = _photos(3, 1), _photos(2, 2)


def _scored(d: Deblurrer, data, validation, split: float, seeds: tuple[int, ...]) -> list[float]:
    """The validation loss of ``d``'s model on the validation pipeline ``fit`` builds with each of ``seeds``,
    summed as ``fit`` sums it."""
    import tensorflow as tf

    from blurkit.metrics.losses import get_loss
    from blurkit.training import step_functions

    val_for = d._datasets(data, validation, split, None)[3]
    _, eval_step = step_functions(d.model, get_loss(d.loss), tf.distribute.get_strategy(), d.batch_size)
    totals = [sum(eval_step(x, y).numpy() for x, y in val_for(seed)) for seed in seeds]
    return [float(total[0] / total[3]) for total in totals]


def test_runs_that_differ_only_in_seed_are_validated_on_the_same_inputs():
    """The same model, fit with seed 0 and with seed 6 on the same validation array, scores the same: seed 0
    validates on the inputs it always did (seed + 7919 until 2026-12-08), and so does seed 6 now."""
    scores = {}
    weights = None
    for seed in (0, 6):
        d = Deblurrer(**TINY, seed=seed)
        if weights is None:
            weights = d.model.get_weights()
        d.model.set_weights(weights)  # the same model: only the seed differs
        d.fit(PHOTOS, validation=VAL, epochs=1, **FIT)
        scores[seed] = (d.history["val_loss"][0], d.history["val_psnr"][0], d.history["val_ssim"][0])
    assert scores[6] == pytest.approx(scores[0], rel=1e-6)


def test_a_training_state_of_form_2_goes_on_validating_as_its_run_did(tmp_path):
    """A state written before the validation seed was fixed (settings_version 2, here a new state's record
    rewritten) resumes with that run's validation inputs, seed + 7919; the states it writes are of form 3, as a
    new run's, and record that seed (``training["validation_seed"]``), which says how to go on validating."""
    from blurkit.deblurrer import VALIDATION_SEED

    assert VALIDATION_SEED == 0 + 7919  # the old formula at seed 0: seed-0 runs keep their validation inputs
    d = Deblurrer(**TINY, seed=6)
    d.fit(PHOTOS, validation=VAL, epochs=1, checkpoint_dir=tmp_path / "new", **FIT)
    first = d.history["val_loss"][0]
    assert Deblurrer.read_metadata(tmp_path / "new" / "last.keras")["resume"]["settings_version"] == 3
    state = tmp_path / "old" / "last.keras"
    state.parent.mkdir()

    def form_2(m: dict) -> None:  # as written before 2026-12-08: no recorded validation seed
        m["resume"]["settings_version"] = 2
        del m["training"]["validation_seed"]

    rewrite_model(tmp_path / "new" / "last.keras", state, meta=form_2)
    r = Deblurrer(**TINY, seed=6)
    r.fit(PHOTOS, validation=VAL, epochs=2, checkpoint_dir=state.parent, resume=True, **FIT)
    assert r.training["resumed_at_epoch"] == 1 and r.history["val_loss"][0] == first
    old, fixed = _scored(r, PHOTOS, VAL, 0, (6 + 7919, VALIDATION_SEED))
    assert r.history["val_loss"][1] == pytest.approx(old, rel=1e-6)
    assert fixed == pytest.approx(first, rel=1e-6) and old != pytest.approx(first, rel=1e-3)  # other inputs
    meta = Deblurrer.read_metadata(state)
    assert meta["resume"]["settings_version"] == 3 and meta["training"]["validation_seed"] == 6 + 7919


def test_a_real_state_of_an_earlier_release_validates_with_its_runs_seed(tmp_path):
    """The in-memory run of c5294e5 (2026-11-26, tests/data/old/; seed 5, a validation split), resumed: its
    second epoch is validated on the inputs its first was, seed 5 + 7919, not on the fixed seed's."""
    spec = importlib.util.spec_from_file_location("make_files", OLD / "make_files.py")
    assert spec is not None and spec.loader is not None
    make_files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_files)
    state = tmp_path / "state" / "last.keras"
    state.parent.mkdir()
    state.write_bytes(gzip.decompress((OLD / "c5294e5-arrays-last.keras.gz").read_bytes()))
    init, fit = make_files.ARRAYS_RUN
    images = np.stack(make_files.photos())
    d = Deblurrer(**init)
    with pytest.warns(UserWarning, match="written by an earlier blurkit"):
        d.fit(images, checkpoint_dir=state.parent, resume=True, **fit)
    assert d.training["resumed_at_epoch"] == 1 and init["seed"] == 5
    from blurkit.deblurrer import VALIDATION_SEED

    old, fixed = _scored(d, images, None, fit["validation_split"], (5 + 7919, VALIDATION_SEED))
    assert d.history["val_loss"][1] == pytest.approx(old, rel=1e-6) and old != pytest.approx(fixed, rel=1e-3)
    meta = Deblurrer.read_metadata(state)
    assert meta["resume"]["settings_version"] == 3 and meta["training"]["validation_seed"] == 5 + 7919

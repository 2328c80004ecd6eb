"""A run records the seed of its validation inputs (``training["validation_seed"]``), and a run that goes on
from another's history keeps that run's seed, not only one resumed from a training state (review1 F4.1: a
Deblurrer that resumed a state of before 2026-12-08 and was fit again, or a file of an earlier release trained
further, validated on other inputs than its history's, and its best checkpoint was replaced because the inputs
changed, not the model)."""

from __future__ import annotations

import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.deblurrer import VALIDATION_SEED, ModelFileError
from helpers import rewrite_model

#: An untrained U-Net whose last convolution is zero (the identity) and a learning rate that keeps it so:
#: its validation loss is that of the validation inputs (tests/test_validation_seed.py).
TINY = dict(model="unet", model_options=dict(width=4, depth=1, blocks=1), patch_size=16, batch_size=2,
            patches_per_image=1, learning_rate=1e-12)
FIT = dict(steps_per_epoch=1, verbose=0)


def _photos(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)  # 32 x 32, with edges for the blur to soften


PHOTOS, VAL = _photos(3, 1), _photos(2, 2)


def _scored(d: Deblurrer, seeds: tuple[int, ...]) -> list[float]:
    """The validation loss of ``d``'s model on the validation pipeline of VAL that ``fit`` builds with each of
    ``seeds``, summed as ``fit`` sums it."""
    import tensorflow as tf

    from blurkit.metrics.losses import get_loss
    from blurkit.training import step_functions

    val_for = d._datasets(PHOTOS, VAL, 0, None)[3]
    _, eval_step = step_functions(d.model, get_loss(d.loss), tf.distribute.get_strategy(), d.batch_size)
    totals = [sum(eval_step(x, y).numpy() for x, y in val_for(seed)) for seed in seeds]
    return [float(total[0] / total[3]) for total in totals]


def _unrecorded(m: dict) -> None:
    """A record of before 2026-12-08, which named no validation seed."""
    m["training"].pop("validation_seed", None)


def test_a_resumed_old_state_fit_again_in_the_process_keeps_validating_on_its_runs_inputs(tmp_path):
    """review1 F4.1's repro: a state of form 2 (a new state rewritten, without a recorded seed) resumed, then the
    same Deblurrer fit again without a state: the epochs of both fits are validated on seed + 7919's inputs,
    the resumed epoch's, and the seed is recorded for the run after them."""
    d = Deblurrer(**TINY, seed=6)
    d.fit(PHOTOS, validation=VAL, epochs=1, checkpoint_dir=tmp_path / "new", **FIT)
    assert d.training["validation_seed"] == VALIDATION_SEED  # a new run's, whatever its seed
    first = d.history["val_loss"][0]
    (tmp_path / "old").mkdir()

    def form_2(m: dict) -> None:
        m["resume"]["settings_version"] = 2
        _unrecorded(m)

    rewrite_model(tmp_path / "new" / "last.keras", tmp_path / "old" / "last.keras", meta=form_2)
    r = Deblurrer(**TINY, seed=6)
    r.fit(PHOTOS, validation=VAL, epochs=2, checkpoint_dir=tmp_path / "old", resume=True, **FIT)
    resumed = r.history["val_loss"][1]  # on 6 + 7919's inputs (tests/test_validation_seed.py)
    assert resumed != pytest.approx(first, rel=1e-3)
    assert r.training["validation_seed"] == 6 + 7919
    r.fit(PHOTOS, validation=VAL, epochs=2, **FIT)  # the same process, no state: goes on from its history
    assert len(r.history["val_loss"]) == 4
    assert r.history["val_loss"][2:] == pytest.approx([resumed, resumed], rel=1e-5)
    assert r.training["validation_seed"] == 6 + 7919


def test_a_file_of_an_earlier_release_trained_further_validates_on_its_runs_inputs(tmp_path):
    """A model file whose training record names no validation seed (before 2026-12-08; here a new file
    rewritten, its seed set to 6) was validated with seed + 7919: fit on the loaded file goes on with those
    inputs. A new run records VALIDATION_SEED in its file."""
    d = Deblurrer(**TINY, seed=0)
    d.fit(PHOTOS, validation=VAL, epochs=1, **FIT)
    d.save(tmp_path / "new.keras")
    assert Deblurrer.read_metadata(tmp_path / "new.keras")["training"]["validation_seed"] == VALIDATION_SEED

    def earlier(m: dict) -> None:
        _unrecorded(m)
        m["training"]["seed"] = m["facade"]["seed"] = 6

    old = rewrite_model(tmp_path / "new.keras", tmp_path / "old.keras", meta=earlier)
    e = Deblurrer.load(old)
    assert e.seed == 6 and "validation_seed" not in e.training
    e.fit(PHOTOS, validation=VAL, epochs=1, **FIT)
    assert len(e.history["val_loss"]) == 2 and e.training["validation_seed"] == 6 + 7919
    seed_6, fixed = _scored(e, (6 + 7919, VALIDATION_SEED))
    assert seed_6 != pytest.approx(fixed, rel=1e-3)  # other inputs
    assert e.history["val_loss"][1] == pytest.approx(seed_6, rel=1e-5)


@pytest.mark.parametrize("value", ["7919", 7919.0, True, -1, 2**32 + 7919, None])
def test_a_damaged_validation_seed_is_refused_naming_the_file(tmp_path, value):
    """A recorded validation seed that no run can have used (not a whole number from 0 to 2**32 - 1 + 7919) is
    refused as damaged, naming the file, as the history's values are: a run that continues the file uses it."""
    d = Deblurrer(**TINY)
    d.training = {"seed": 0, "validation_seed": VALIDATION_SEED}
    d.save(tmp_path / "new.keras")
    bad = rewrite_model(tmp_path / "new.keras", tmp_path / "bad.keras",
                        meta=lambda m: m["training"].update(validation_seed=value))
    with pytest.raises(ModelFileError, match=r"bad\.keras: damaged blurkit metadata \(training validation_seed "):
        Deblurrer.load(bad)

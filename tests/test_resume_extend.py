"""``fit(resume=True)`` after a run that ended: one that got to its end goes on to a larger ``epochs`` as the longer
run would have, with or without early stopping; one that stopped early is not trained further, and says so.

An audit (F2) found a finished run with ``early_stopping`` silently trained nothing when resumed with more epochs
(its state was saved again at the end of the run, as "stopped", with the best weights), while the same run without
early stopping was extended. Runs on CPU are deterministic: the extended run's weights and history are compared
bit for bit with the straight run's. In memory, a tiny U-Net, one step an epoch.

The data and learning rate are chosen so that the validation loss of epochs 1-4 goes down, down, up, up (checked
below): the best epoch of a 3-epoch run is epoch 2, not its last; with a patience of 1 the run stops early after
epoch 3.

Reproduce: ``pytest tests/test_resume_extend.py -q``.
"""

from __future__ import annotations

import shutil
import warnings

import keras
import numpy as np
import pytest

from blurkit import Deblurrer
from helpers import rewrite_model

TINY = {"width": 4, "depth": 1, "blocks": 1}
FAST = {"patch_size": 16, "batch_size": 2, "patches_per_image": 1, "learning_rate": 0.05, "seed": 3}
FIT = {"steps_per_epoch": 1, "validation_split": 0.4, "verbose": 0}
PHOTOS = np.kron(np.random.default_rng(0).random((5, 6, 6, 3)), np.ones((1, 4, 4, 1))).astype(np.float32)


def _new() -> Deblurrer:
    return Deblurrer(model="unet", model_options=TINY, **FAST)


class LastWeights(keras.callbacks.Callback):
    """Keeps the weights of the last epoch trained (Keras puts early stopping's best ones back after it)."""

    weights: list = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights = self.model.get_weights()


def _same_weights(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _same_end(a: Deblurrer, b: Deblurrer) -> None:
    """The same model as a run ended: weights, history, the epoch of the weights and their scores."""
    assert _same_weights(a.model.get_weights(), b.model.get_weights())
    assert a.history == b.history
    assert a.training.get("weights_epoch") == b.training.get("weights_epoch")
    assert a.validation == b.validation


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 3-epoch run with early stopping (patience 5) that got to its end: its best epoch is 2."""
    state_dir = tmp_path_factory.mktemp("finished")
    d = _new()
    d.fit(PHOTOS, epochs=3, early_stopping=5, checkpoint_dir=state_dir, **FIT)
    val = d.history["val_loss"]
    assert val[1] < val[0] and val[2] > val[1], val  # the premise: the best epoch is not the last
    assert d.training["weights_epoch"] == 2 and d.validation["loss"] == val[1]
    return d, state_dir


def _copy_state(state_dir, tmp_path):
    shutil.copytree(state_dir, tmp_path / "state")
    return tmp_path / "state"


def test_a_finished_run_with_early_stopping_goes_on_like_the_longer_run(finished, tmp_path):
    state_dir = _copy_state(finished[1], tmp_path)
    resumed, last = _new(), LastWeights()
    hist = resumed.fit(PHOTOS, epochs=4, early_stopping=5, checkpoint_dir=state_dir, resume=True,
                       callbacks=[last], **FIT)
    assert hist.epoch == [3] and resumed.training["resumed_at_epoch"] == 3
    straight, straight_last = _new(), LastWeights()
    straight.fit(PHOTOS, epochs=4, early_stopping=5, callbacks=[straight_last], **FIT)
    _same_end(resumed, straight)  # the best epoch's weights, early stopping's carried on
    assert _same_weights(last.weights, straight_last.weights)  # and the last epoch trained as in the straight run
    assert int(resumed.model.optimizer.iterations) == int(straight.model.optimizer.iterations) == 4


def test_resuming_a_finished_run_with_its_epochs_gives_the_model_it_ended_with(finished, tmp_path):
    """The state keeps the last epoch's weights to go on from; with nothing left to train, early stopping's best
    weights are put back, as at the end of the run, with their epoch and validation scores."""
    run, saved = finished
    state_dir = _copy_state(saved, tmp_path)
    resumed = _new()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resumed.fit(PHOTOS, epochs=3, early_stopping=5, checkpoint_dir=state_dir, resume=True,
                           **FIT).epoch == []
    assert not [w for w in caught if "stopped" in str(w.message)]  # nothing to say: it got to the epochs asked for
    _same_end(resumed, run)
    assert resumed.training["resumed_at_epoch"] == 3 and resumed.training["epochs"] == 3

    # a state written at the end of a run by an earlier blurkit says "stopped": still not trained further
    old = rewrite_model(saved / "last.keras", tmp_path / "old.keras", meta=lambda m: m["resume"].update(stopped=True))
    shutil.copy(old, state_dir / "last.keras")
    resumed = _new()
    with pytest.warns(UserWarning, match=r"last\.keras: that run stopped after epoch 3, and resume=True does not "
                                         r"train a stopped run further: no epoch trained, though epochs asks for 1 "
                                         r"more$"):
        assert resumed.fit(PHOTOS, epochs=4, early_stopping=5, checkpoint_dir=state_dir, resume=True,
                           **FIT).epoch == []
    _same_end(resumed, run)


def test_a_finished_run_without_early_stopping_goes_on_like_the_longer_run(tmp_path):
    d = _new()
    d.fit(PHOTOS, epochs=3, checkpoint_dir=tmp_path / "state", **FIT)
    resumed = _new()
    assert resumed.fit(PHOTOS, epochs=4, checkpoint_dir=tmp_path / "state", resume=True, **FIT).epoch == [3]
    straight = _new()
    straight.fit(PHOTOS, epochs=4, **FIT)
    _same_end(resumed, straight)
    assert "weights_epoch" not in resumed.training


def test_a_run_that_stopped_early_is_not_trained_further_and_says_so(tmp_path):
    run = _new()
    run.fit(PHOTOS, epochs=4, early_stopping=1, checkpoint_dir=tmp_path / "state", **FIT)
    assert len(run.history["loss"]) == 3 and run.training["weights_epoch"] == 2  # stopped early, at its best
    resumed = _new()
    with pytest.warns(UserWarning, match=r"last\.keras: that run stopped early \(early stopping\) after epoch 3, "
                                         r"and resume=True does not train a stopped run further: no epoch "
                                         r"trained, though epochs asks for 3 more$") as caught:
        hist = resumed.fit(PHOTOS, epochs=6, early_stopping=1, checkpoint_dir=tmp_path / "state", resume=True, **FIT)
    assert [w.filename for w in caught if "stopped" in str(w.message)] == [__file__]  # once, at the caller
    assert hist.epoch == [] and resumed.training["resumed_at_epoch"] == 3 and resumed.training["epochs"] == 3
    _same_end(resumed, run)

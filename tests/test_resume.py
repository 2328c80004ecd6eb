"""Training survives ``kill -9``: ``fit(resume=True)`` and ``blurkit train --resume`` continue a killed run.

Each test trains a tiny U-Net in a subprocess that SIGKILLs itself in the middle of epoch 3 (a callback,
so the moment is deterministic: two epochs done and saved, the third half-way), resumes in this process,
and compares with an uninterrupted run. The data of an epoch depends only on ``(seed, epoch)``, the
optimizer state and the callbacks' state are restored, so the curves agree to float32 round-off:
the stated tolerance is a relative 1e-4 on every validation loss (measured: bit-identical on CPU).

Reproduce: ``pytest tests/test_resume.py -q``.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.data.io import write_image

TINY = {"width": 4, "depth": 1, "blocks": 1}
FAST = {"patch_size": 16, "batch_size": 2, "patches_per_image": 2, "learning_rate": 0.01}
EPOCHS, STEPS, KILL_EPOCH = 4, 3, 2  # the kill comes in the middle of the third epoch (index 2)
RTOL = 1e-4

# Runs in the subprocess: wraps Deblurrer.fit so that the run SIGKILLs itself in epoch KILL_EPOCH.
KILLER = textwrap.dedent("""
    import os, signal, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from blurkit import Deblurrer

    class KillMidEpoch(keras.callbacks.Callback):
        epoch = -1

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == {kill_epoch} and batch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

    original_fit = Deblurrer.fit

    def fit(self, *args, callbacks=(), **kwargs):
        return original_fit(self, *args, callbacks=[*callbacks, KillMidEpoch()], **kwargs)

    Deblurrer.fit = fit
    keras.utils.set_random_seed(0)
""")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        smooth = rng.random((6, 8, 3))
        img = np.kron(smooth, np.ones((5, 5, 1)))  # 30x40 blocky photos: something to deblur
        write_image(root / f"p{i}.png", img)
    return root


def _run_killed(code: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "killed_run.py"
    script.write_text(KILLER.format(kill_epoch=KILL_EPOCH) + textwrap.dedent(code))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-3000:])
    return proc


def _fit_kwargs(state_dir):
    return dict(epochs=EPOCHS, steps_per_epoch=STEPS, validation_split=0.34, verbose=0, early_stopping=10,
                checkpoint_dir=state_dir)


def _new() -> Deblurrer:
    return Deblurrer(model="unet", model_options=TINY, **FAST)


@pytest.fixture(scope="module")
def straight(photos, tmp_path_factory) -> Deblurrer:
    """The uninterrupted run, from the initial weights that ``keras.utils.set_random_seed(0)`` gives
    (as in the killed runs, library and command line)."""
    import keras

    keras.utils.set_random_seed(0)
    d = _new()
    d.fit(photos, **_fit_kwargs(tmp_path_factory.mktemp("straight")))
    assert len(d.history["val_loss"]) == EPOCHS
    assert d.history["val_loss"][-1] != d.history["val_loss"][0]  # it did train
    return d


def test_fit_resumes_a_killed_run(photos, straight, tmp_path):
    state_dir = tmp_path / "state"
    _run_killed(f"""
        d = Deblurrer(model="unet", model_options={TINY!r}, **{FAST!r})
        d.fit({str(photos)!r}, epochs={EPOCHS}, steps_per_epoch={STEPS}, validation_split=0.34, verbose=0,
              early_stopping=10, checkpoint_dir={str(state_dir)!r})
    """, tmp_path)
    state = Deblurrer.read_metadata(state_dir / "last.keras")
    assert state["resume"]["epoch"] == KILL_EPOCH and len(state["history"]["loss"]) == KILL_EPOCH
    assert set(state["resume"]["callbacks"]) == {"reduce_lr", "early_stopping"}
    assert sorted(os.listdir(state_dir)) == ["last.keras"]

    resumed = _new()  # its own random weights: the saved ones replace them
    hist = resumed.fit(photos, resume=True, **_fit_kwargs(state_dir))
    assert hist.epoch == list(range(KILL_EPOCH, EPOCHS))
    assert resumed.training["resumed_at_epoch"] == KILL_EPOCH
    assert len(resumed.history["val_loss"]) == EPOCHS
    np.testing.assert_allclose(resumed.history["val_loss"], straight.history["val_loss"], rtol=RTOL)
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"], rtol=RTOL)
    for a, b in zip(resumed.model.get_weights(), straight.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)
    assert int(resumed.model.optimizer.iterations) == int(straight.model.optimizer.iterations) == EPOCHS * STEPS

    # a finished run is not trained again
    again = _new()
    assert again.fit(photos, resume=True, **_fit_kwargs(state_dir)).epoch == []
    assert again.history == resumed.history


def test_a_time_limit_pauses_the_run_and_resume_goes_on(photos, straight, tmp_path):
    """A job's wall time: ``time_limit`` stops after the epoch that passes it, as a pause (the state is kept
    resumable, ``training["time_limit_reached"]``), and fits with ``resume=True`` end where the uninterrupted
    run ends."""
    import keras

    state_dir = tmp_path / "state"
    keras.utils.set_random_seed(0)
    d = _new()
    d.fit(photos, time_limit=1e-9, **_fit_kwargs(state_dir))  # stops after every epoch
    assert d.training["time_limit_reached"] and d.training["epochs"] == 1
    assert Deblurrer.read_metadata(state_dir / "last.keras")["resume"]["stopped"] is False
    for done in range(2, EPOCHS + 1):
        d = _new()
        d.fit(photos, resume=True, time_limit=1e-9, **_fit_kwargs(state_dir))
        assert d.training["epochs"] == done and d.training.get("time_limit_reached", False) == (done < EPOCHS)
    np.testing.assert_allclose(d.history["val_loss"], straight.history["val_loss"], rtol=RTOL)
    with pytest.raises(ValueError, match="time_limit must be a positive number of minutes"):
        d.fit(photos, time_limit=0, **_fit_kwargs(state_dir))


def test_resume_refuses_fewer_epochs_than_the_run_has_trained(photos, tmp_path):
    """``--resume --epochs 1`` on a run paused after 2 epochs trained nothing, said "saved: epoch 2 of 2", and
    the CLI then removed the training state: the run could not go on any more. It is refused, and the state
    kept."""
    state_dir = tmp_path / "state"
    for _ in range(2):  # two paused fits: the state is after epoch 2 of EPOCHS
        _new().fit(photos, resume=True, time_limit=1e-9, **_fit_kwargs(state_dir))
    assert Deblurrer.read_metadata(state_dir / "last.keras")["resume"]["epoch"] == 2
    with pytest.raises(ValueError, match=r"cannot resume from .*last\.keras: that run has trained 2 epochs, more "
                                         r"than the 1 asked for; ask for more than 2 to go on"):
        _new().fit(photos, resume=True, **{**_fit_kwargs(state_dir), "epochs": 1})
    assert Deblurrer.read_metadata(state_dir / "last.keras")["resume"]["epoch"] == 2
    assert _new().fit(photos, resume=True, **{**_fit_kwargs(state_dir), "epochs": 2}).epoch == []  # got there


def test_a_refused_resume_leaves_the_deblurrer_as_it_was(photos, tmp_path):
    """The refusal of too few epochs came after the saved weights and history were loaded: the same object
    then could not follow the message's advice ("this Deblurrer has 2 epochs of history")."""
    state_dir = tmp_path / "state"
    for _ in range(2):
        _new().fit(photos, resume=True, time_limit=1e-9, **_fit_kwargs(state_dir))
    d = _new()
    before = [w.copy() for w in d.model.get_weights()]
    with pytest.raises(ValueError, match=r"has trained 2 epochs, more than the 1 asked for; ask for more than 2"):
        d.fit(photos, resume=True, **{**_fit_kwargs(state_dir), "epochs": 1})
    assert d.history == {} and all(np.array_equal(a, b) for a, b in zip(before, d.model.get_weights(), strict=True))
    assert d.fit(photos, resume=True, time_limit=1e-9, **{**_fit_kwargs(state_dir), "epochs": 3}).epoch == [2]


def test_the_model_file_cannot_be_the_training_state_file(photos, tmp_path):
    d = _new()
    with pytest.raises(ValueError, match="is the file the training state is kept in"):
        d.fit(photos, epochs=1, verbose=0, checkpoint=tmp_path / "ck" / "last.keras", checkpoint_dir=tmp_path / "ck")
    assert not (tmp_path / "ck").exists()


def test_history_keeps_one_value_per_epoch_for_every_key(photos, tmp_path):
    """Validation in the second fit only: its values sit at epochs 2-3, NaN before (not at epochs 1-2), in
    memory, in a saved file (as null) and in the curves."""
    d = _new()
    d.fit(photos, epochs=1, steps_per_epoch=1, validation_split=0, reduce_lr=False, verbose=0)
    d.fit(photos, epochs=2, steps_per_epoch=1, validation_split=0.34, verbose=0)
    assert {len(v) for v in d.history.values()} == {3}
    assert np.isnan(d.history["val_loss"][0]) and np.isfinite(d.history["val_loss"][1:]).all()
    assert np.isnan(d.history["learning_rate"][0])  # reduce_lr=False: Keras logged none in the first fit
    path = d.save(tmp_path / "m.keras")
    assert Deblurrer.read_metadata(path)["history"]["val_loss"][0] is None  # strict JSON in the file
    saved = Deblurrer.load(path)
    assert math.isnan(saved.history["val_loss"][0]) and len(saved.history["loss"]) == 3  # NaN again
    assert saved.plot_history(tmp_path / "curves.png").stat().st_size > 1000


def test_resume_refuses_a_different_run(photos, tmp_path):
    d = Deblurrer(model="unet", model_options=TINY, **FAST)
    state_dir = tmp_path / "state"
    d.fit(photos, epochs=1, steps_per_epoch=1, verbose=0, checkpoint_dir=state_dir)
    other = Deblurrer(model="unet", model_options=TINY, **{**FAST, "batch_size": 3})
    with pytest.raises(ValueError, match="different batch_size"):
        other.fit(photos, epochs=2, steps_per_epoch=1, verbose=0, checkpoint_dir=state_dir, resume=True)
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        d.fit(photos, epochs=1, resume=True)
    with pytest.warns(UserWarning, match="cannot resume") as caught:  # without resume=True: a new run
        hist = d.fit(photos, epochs=1, steps_per_epoch=1, verbose=0, checkpoint_dir=state_dir)
    assert "resume=True" not in str(caught[0].message)  # it would fail: d has trained since
    assert hist.epoch == [1] and Deblurrer.read_metadata(state_dir / "last.keras")["resume"]["run_start"] == 1
    with pytest.raises(ValueError, match="started after epoch 1, but this Deblurrer has 2 epochs"):
        d.fit(photos, epochs=1, steps_per_epoch=1, verbose=0, checkpoint_dir=state_dir, resume=True)
    wider = Deblurrer(model="unet", model_options={**TINY, "width": 8}, **FAST)
    with pytest.raises(ValueError, match="different model, weights"):
        wider.fit(photos, epochs=1, steps_per_epoch=1, verbose=0, checkpoint_dir=state_dir, resume=True)


def test_cli_train_resume(photos, straight, tmp_path, capsys):
    from blurkit.cli.main import main

    out = tmp_path / "run" / "m.keras"
    argv = ["train", str(photos), "--model-option", "width=4", "--model-option", "depth=1",
            "--model-option", "blocks=1", "--epochs", str(EPOCHS), "--steps-per-epoch", str(STEPS),
            "--patch-size", "16", "--batch-size", "2", "--patches-per-image", "2", "--lr", "0.01",
            "--val-split", "0.34", "--early-stopping", "10", "-o", str(out)]
    _run_killed(f"""
        from blurkit.cli.main import main
        main({[*argv, "-q"]!r})
    """, tmp_path)
    state = tmp_path / "run" / "m.resume" / "last.keras"
    assert Deblurrer.read_metadata(state)["resume"]["epoch"] == KILL_EPOCH
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert f"resuming from {state}" in capsys.readouterr().out
    assert not state.parent.exists()  # removed once the run completed
    assert sorted(os.listdir(out.parent)) == ["m.keras", "m.png"]
    # m.keras is the best epoch's model, with the history up to that epoch; its training record has the
    # whole run's (the resumed part too), the epochs run and which of them its weights are
    saved = Deblurrer.read_metadata(out)
    best = int(np.argmin(straight.history["val_loss"])) + 1
    run = len(straight.history["val_loss"])
    assert len(saved["history"]["val_loss"]) == best
    np.testing.assert_allclose(saved["history"]["val_loss"], straight.history["val_loss"][:best], rtol=RTOL)
    assert saved["validation"]["loss"] == pytest.approx(straight.history["val_loss"][best - 1], rel=RTOL)
    if best < run:  # (the last epoch the best: the file's own history is the run's)
        assert saved["training"]["weights_epoch"] == best and saved["training"]["epochs"] == run
        np.testing.assert_allclose(saved["training"]["run_history"]["val_loss"], straight.history["val_loss"],
                                   rtol=RTOL)


def test_fit_without_resume_says_whether_resume_would_continue(photos, tmp_path):
    """The warning of a fit that overwrites a training state suggests resume=True only when it would work (it
    used to suggest it always, and to say "starting afresh" for a Deblurrer that trains on)."""
    state_dir = tmp_path / "state"
    kw = dict(epochs=1, steps_per_epoch=1, verbose=0, checkpoint_dir=state_dir)
    d = _new()
    d.fit(photos, **kw)
    with pytest.warns(UserWarning, match=r"holds the state of an earlier run; this run trains on from the "
                                         r"model's current weights and overwrites it \(pass resume=True"):
        _new().fit(photos, **kw)  # a new Deblurrer with the same settings: resume=True would continue
    assert _new().fit(photos, resume=True, **kw).epoch == []  # and it does (that run is done)
    with pytest.warns(UserWarning) as caught:
        d.fit(photos, **kw)  # d has trained an epoch since that run started
    message = str(caught[0].message)
    assert "cannot resume (that run started after epoch 0, but this Deblurrer has 1 epochs" in message
    assert "resume=True" not in message and "afresh" not in message
    with pytest.raises(ValueError, match="started after epoch 1, but this Deblurrer has 0 epochs"):
        _new().fit(photos, resume=True, **kw)


def test_resume_checks_the_content_of_arrays(tmp_path):
    """Arrays are told apart by shape, dtype and content, not only by their number (other arrays of the same
    count used to resume the run as if they were its data); the same arrays still resume it."""
    sharp = np.kron(np.random.default_rng(1).random((4, 6, 8, 3)), np.ones((1, 5, 5, 1))).astype(np.float32)
    state_dir = tmp_path / "state"
    kw = dict(epochs=2, steps_per_epoch=1, verbose=0, checkpoint_dir=state_dir, time_limit=1e-9)
    _new().fit(sharp, **kw)  # paused after epoch 1
    for other in (np.zeros_like(sharp), sharp.astype(np.float64), sharp[:, :, :-5]):
        with pytest.raises(ValueError, match="cannot resume from .*different train_items"):
            _new().fit(other, resume=True, **kw)
    d = _new()
    assert d.fit(sharp, resume=True, **kw).epoch == [1] and len(d.history["loss"]) == 2


def test_resumed_history_has_nan_where_the_state_has_null(photos, tmp_path):
    """The state file writes NaN as null; a resumed run used to get None back."""
    state_dir = tmp_path / "state"
    d = _new()
    d.fit(photos, epochs=1, steps_per_epoch=1, validation_split=0, reduce_lr=False, verbose=0)
    first = {k: v[:1] for k, v in d.history.items()}
    kw = dict(epochs=1, steps_per_epoch=1, validation_split=0.34, verbose=0, checkpoint_dir=state_dir)
    d.fit(photos, **kw)
    assert Deblurrer.read_metadata(state_dir / "last.keras")["history"]["val_loss"][0] is None
    resumed = _new()
    resumed.history = first  # the same first epoch: the saved run started after it
    assert resumed.fit(photos, resume=True, **kw).epoch == []
    val = resumed.history["val_loss"]
    assert math.isnan(val[0]) and val[1] == d.history["val_loss"][1]


def test_resume_takes_the_data_folder_however_it_is_spelled(photos, tmp_path, monkeypatch):
    """A state saved by `train photos ...` could not be resumed by `train ./photos/ ...` nor by the absolute
    path (a job restarted from another directory): "different data", and the advice to delete the state. The
    data is now its files' names below their common folder; a real difference shows the values."""
    import shutil

    here = tmp_path / "work"
    shutil.copytree(photos, here / "photos")
    monkeypatch.chdir(here)
    ckpt = tmp_path / "m.keras"
    kw = dict(epochs=1, steps_per_epoch=1, checkpoint=ckpt, verbose=0, validation_split=0)
    _new().fit("photos", **kw)
    state = tmp_path / "m.resume" / "last.keras"
    shutil.copy(state, tmp_path / "saved-state.keras")
    for spelling in ("./photos/", str(here / "photos"), "photos"):
        shutil.copy(tmp_path / "saved-state.keras", state)
        d = _new()
        assert d.fit(spelling, resume=True, **{**kw, "epochs": 2}).epoch == [1]
    shutil.copy(tmp_path / "saved-state.keras", state)
    shutil.copytree(here / "photos", here / "card-2")  # another folder of the same file names: other data
    with pytest.raises(ValueError, match="different train_items"):
        _new().fit("card-2", resume=True, **{**kw, "epochs": 2})
    other = Deblurrer(model="unet", model_options=TINY, **{**FAST, "learning_rate": 0.02})
    with pytest.raises(ValueError, match=r"different learning_rate \(saved 0\.01, now 0\.02\); give the saved "
                                         r"run's settings and data to continue it"):
        other.fit("photos", resume=True, **{**kw, "epochs": 2})

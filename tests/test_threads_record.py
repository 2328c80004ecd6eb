"""Reproducibility across thread counts (determinism audit of 2026-12-08): another count of CPU threads sums in
another order, so a training state records the count its run used and a resume with another says so (it was
accepted silently, and the run was no longer the uninterrupted one bit for bit); ``blurkit train
--deterministic`` turns on TensorFlow's op determinism."""

from __future__ import annotations

import numpy as np
import pytest

import blurkit.deblurrer as deblurrer
from blurkit import Deblurrer
from blurkit.cli.main import main

TINY = {"model": "unet", "model_options": {"width": 4, "depth": 1, "blocks": 1}, "patch_size": 16, "batch_size": 2}


def _fit(tmp_path, epochs: int, resume: bool = False) -> Deblurrer:
    images = np.random.default_rng(0).random((4, 24, 24, 3)).astype(np.float32)
    d = Deblurrer(**TINY)
    d.fit(images, epochs=epochs, steps_per_epoch=1, verbose=0, checkpoint_dir=tmp_path / "state", resume=resume)
    return d


def test_a_resume_on_another_thread_count_says_so(tmp_path, monkeypatch, recwarn):
    first = _fit(tmp_path, 1)
    assert first.training["threads"] == deblurrer._cpu_threads() >= 1
    assert Deblurrer.read_metadata(tmp_path / "state" / "last.keras")["training"]["threads"] == first.training["threads"]
    same = _fit(tmp_path, 2, resume=True)  # the same count: nothing said
    assert not [w for w in recwarn if "CPU thread" in str(w.message)]
    assert same.training["resumed_at_epoch"] == 1
    saved = same.training["threads"]
    monkeypatch.setattr(deblurrer, "_cpu_threads", lambda: saved + 3)
    with pytest.warns(UserWarning, match=rf"training state in .*state with {saved + 3} CPU threads, and its run used {saved}: "
                                         rf"it goes on, .* blurkit train --threads {saved}"):
        again = _fit(tmp_path, 3, resume=True)
    assert again.training["threads"] == saved + 3 and len(again.history["loss"]) == 3


def test_the_thread_count_follows_tensorflows_setting_then_the_environment(monkeypatch):
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU"):
        pytest.skip("on a GPU no count is recorded")
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: 0)
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "3")
    assert deblurrer._cpu_threads() == 3
    monkeypatch.setattr(tf.config.threading, "get_intra_op_parallelism_threads", lambda: 5)
    assert deblurrer._cpu_threads() == 5


def test_train_deterministic_turns_on_op_determinism(tmp_path, monkeypatch):
    import tensorflow as tf

    called: list[bool] = []
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: called.append(True))

    def no_fit(self, *args, **kwargs):  # the flag is what is tested, not a training run
        raise KeyboardInterrupt

    monkeypatch.setattr(Deblurrer, "fit", no_fit)
    (tmp_path / "photos").mkdir()
    from blurkit.data.io import write_image

    write_image(tmp_path / "photos" / "a.png", np.zeros((20, 20, 3), np.float32))
    argv = ["train", str(tmp_path / "photos"), "--out", str(tmp_path / "m.keras"), "-q", "--model-option", "width=4"]
    assert main([*argv, "--deterministic"]) == 130
    assert called == [True]
    assert main([*argv, "--overwrite"]) == 130
    assert called == [True]  # not without the flag


def test_a_resume_that_trains_nothing_says_nothing_of_threads(tmp_path, monkeypatch, recwarn):
    """Review of 2026-12-08, C: it said the weights would differ, when no weight changes."""
    done = _fit(tmp_path, 1)
    monkeypatch.setattr(deblurrer, "_cpu_threads", lambda: done.training["threads"] + 1)
    again = _fit(tmp_path, 1, resume=True)
    assert len(again.history["loss"]) == 1
    assert not [w for w in recwarn if "CPU thread" in str(w.message)]


def test_a_resume_on_another_device_kind_says_so(tmp_path, monkeypatch):
    """Review of 2026-12-08, D: a run's state resumed on a GPU (or a GPU run's on a CPU) was silent, though the
    weights then differ more than with another thread count."""
    first = _fit(tmp_path, 1)
    assert first.training["device"] == deblurrer._device_kind()
    monkeypatch.setattr(deblurrer, "_device_kind", lambda: "GPU" if first.training["device"] == "CPU" else "CPU")
    monkeypatch.setattr(deblurrer, "_cpu_threads", lambda: None)  # as on a GPU
    with pytest.warns(UserWarning, match=r"training state in .*state on a (GPU|CPU), and its run trained on a "
                                         r"(CPU|GPU): it goes on, but the operations compute in another order"):
        again = _fit(tmp_path, 2, resume=True)
    assert again.training["device"] != first.training["device"] and "threads" not in again.training


def test_a_gpu_resume_without_the_runs_op_determinism_says_so(tmp_path, monkeypatch):
    """Review of 2026-12-08, F: --deterministic was recorded nowhere, so a resumed GPU job that dropped it lost
    its repeatability silently (on a CPU it changes nothing, and nothing is said)."""
    monkeypatch.setattr(deblurrer, "_device_kind", lambda: "GPU")
    monkeypatch.setattr(deblurrer, "_cpu_threads", lambda: None)
    monkeypatch.setattr(deblurrer, "_op_determinism", lambda: True)
    first = _fit(tmp_path, 1)
    assert first.training["deterministic"] is True
    monkeypatch.setattr(deblurrer, "_op_determinism", lambda: False)
    with pytest.warns(UserWarning, match=r"state without TensorFlow's op determinism, and its run trained with it "
                                         r"\(blurkit train --deterministic\)"):
        _fit(tmp_path, 2, resume=True)

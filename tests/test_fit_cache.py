"""A second ``fit`` of one Deblurrer reuses the compiled step functions of the first (scale audit of 2026-12-08,
F4: every ``fit`` traced them again, seconds each, and the graphs of every earlier one stayed in memory, about
12 MiB a ``fit`` in a notebook or a sweep), and trains exactly as before."""

from __future__ import annotations

import numpy as np
import pytest

import blurkit.training as training
from blurkit import Deblurrer

TINY = {"model": "unet", "model_options": {"width": 4, "depth": 1, "blocks": 1}, "patch_size": 16, "batch_size": 2}


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((4, 24, 24, 3)).astype(np.float32)


@pytest.fixture
def built(monkeypatch) -> list[int]:
    """Counts the step functions built."""
    calls: list[int] = []
    real = training.step_functions

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "step_functions", counted)
    return calls


def test_a_second_fit_traces_nothing_again_and_trains_as_one_longer_fit(images, built):
    d = Deblurrer(**TINY)
    d.fit(images, epochs=1, steps_per_epoch=2, verbose=0)
    d.fit(images, epochs=1, steps_per_epoch=2, verbose=0)
    assert len(built) == 1
    assert d._train_cache["functions"][0].experimental_get_tracing_count() == 1
    once = Deblurrer(**TINY)
    once.fit(images, epochs=2, steps_per_epoch=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(d.model.get_weights(), once.model.get_weights(), strict=True))
    assert d.history["loss"] == once.history["loss"]


def test_another_loss_optimizer_or_model_gets_new_functions(images, built):
    d = Deblurrer(**TINY)
    d.fit(images, epochs=1, steps_per_epoch=1, verbose=0)
    d.loss = "l1"  # the compiled optimizer kept: the loss alone differs
    d.fit(images, epochs=1, steps_per_epoch=1, verbose=0)
    assert len(built) == 2
    d.compile()  # a new optimizer
    d.fit(images, epochs=1, steps_per_epoch=1, verbose=0)
    assert len(built) == 3
    d.model = Deblurrer(**TINY).model
    assert d._train_cache == {}  # the old model's functions and graphs let go


def test_a_layer_frozen_between_fits_is_not_trained(images, built):
    """Review of 2026-12-08, F3.1: the functions read the trainable variables when traced, and the cache kept
    the first fit's, so a layer frozen since was still trained."""
    d = Deblurrer(**TINY)
    d.fit(images, epochs=1, steps_per_epoch=1, verbose=0)
    layer = next(layer for layer in d.model.layers if layer.weights)
    layer.trainable = False
    before = [w.copy() for w in layer.get_weights()]
    d.fit(images, epochs=1, steps_per_epoch=1, verbose=0)
    assert len(built) == 2
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.get_weights(), strict=True))


def test_compile_lets_the_old_optimizers_functions_go(images):
    d = Deblurrer(**TINY)
    d.fit(images, epochs=1, steps_per_epoch=1, verbose=0)
    assert d._train_cache
    d.compile()
    assert d._train_cache == {}

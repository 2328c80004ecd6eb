"""The contract every model builder registered in :data:`blurkit.registry.MODELS` must meet.

:func:`check_model` builds a model from a config and raises ``AssertionError`` with a clear message on the
first broken rule. The rules are what :class:`blurkit.Deblurrer` relies on:

1. the builder is called with keyword arguments only, JSON-able values (the facade stores them as JSON and
   rebuilds from them, so sequences come back as lists), and returns a ``keras.Model``;
2. one float32 input ``(B, H, W, C)`` and an output of the same shape, finite;
3. fully convolutional models (``H`` and ``W`` None) work on odd sizes (67 x 93); builders that take a
   ``channels`` argument work with 1 and 3 channels;
4. no ``Lambda`` layers; every custom layer is registered with
   ``@keras.saving.register_keras_serializable``, returns all its init arguments from ``get_config()``, and
   ``from_config(get_config())`` gives the same config;
5. ``model.save("m.keras")`` then ``keras.saving.load_model(path, safe_mode=True)`` gives the same class and
   the same outputs (atol 1e-6);
6. the model can learn: on one small batch (a contrast change, which any restoration model can represent),
   Adam lowers the MSE loss by more than half within :data:`FIT_STEPS` steps.

Use a tiny config: the check trains the model. It seeds Python, NumPy and the backend
(``keras.utils.set_random_seed``) so that it is reproducible, and puts Python's and NumPy's global random
states back when it returns (the tests that follow it in a process stay independent of it).

Examples:
    >>> from blurkit.testing import check_model
    >>> report = check_model("unet", width=4, depth=1, blocks=1)
    >>> report["fully_convolutional"], report["final_loss"] < 0.5 * report["initial_loss"]
    (True, True)
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random
import tempfile
from typing import Any

import numpy as np

__all__ = ["check_model", "FIT_STEPS", "FIT_LEARNING_RATE", "FIT_REDUCTION", "ODD_SIZE"]

#: Height and width used to check fully convolutional models on sizes that are not powers of two.
ODD_SIZE = (67, 93)
#: Size of the square images used for the other checks of fully convolutional models.
CHECK_SIZE = 32
#: Maximum number of Adam steps of the overfitting check.
FIT_STEPS = 100
#: Learning rate of the overfitting check.
FIT_LEARNING_RATE = 1e-2
#: The overfitting check passes once the loss is below this fraction of its initial value.
FIT_REDUCTION = 0.5
#: Tolerance when comparing the outputs of a saved and reloaded model.
SAVE_ATOL = 1e-6


def _fail(name: str, message: str) -> AssertionError:
    return AssertionError(f"model {name!r}: {message}")


def _build(name: str, builder: Any, config: dict[str, Any]) -> Any:
    import keras

    try:
        model = builder(**config)
    except Exception as exc:
        raise _fail(name, f"building with config {config} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise _fail(name, f"the builder must return a keras.Model, got {type(model).__name__}")
    return model


def _input_spec(name: str, model: Any) -> tuple[int | None, int | None, int]:
    if not getattr(model, "inputs", None):
        raise _fail(
            name, f"a {type(model).__name__} has no defined input; build a functional or Sequential model"
        )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise _fail(
            name,
            f"a model needs exactly one input and one output, got {len(model.inputs)} and {len(model.outputs)}",
        )
    shape = tuple(model.inputs[0].shape)
    if len(shape) != 4 or shape[3] is None:
        raise _fail(name, f"the input must be (B, H, W, C) with a known C, got {shape}")
    dtype = str(model.inputs[0].dtype)
    if dtype != "float32":
        raise _fail(name, f"the input must be float32, got {dtype}")
    height, width = shape[1], shape[2]
    if (height is None) != (width is None):
        raise _fail(name, f"height and width must be both fixed or both None, got {shape}")
    return height, width, shape[3]


def _images(rng: np.random.Generator, n: int, height: int, width: int, channels: int) -> np.ndarray:
    """Blocky random images in [0.2, 0.8]: an 8 x 8 grid of random grey levels per channel."""
    coarse = rng.random((n, 8, 8, channels), dtype=np.float32)
    rows = np.arange(height) * 8 // height
    cols = np.arange(width) * 8 // width
    return 0.2 + 0.6 * coarse[:, rows][:, :, cols]


def _forward(name: str, model: Any, x: np.ndarray) -> np.ndarray:
    import keras

    try:
        y = keras.ops.convert_to_numpy(model(x, training=False))
    except Exception as exc:
        raise _fail(
            name, f"calling it on a batch of shape {x.shape} raised {type(exc).__name__}: {exc}"
        ) from exc
    if y.shape != x.shape:
        raise _fail(name, f"output shape {y.shape} differs from input shape {x.shape}")
    if not np.all(np.isfinite(y)):
        raise _fail(name, f"non-finite outputs on an input of shape {x.shape}")
    return y


def _walk_layers(model: Any):
    import keras

    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk_layers(layer)


def _check_layers(name: str, model: Any) -> None:
    import keras

    for layer in _walk_layers(model):
        cls = type(layer)
        if isinstance(layer, keras.layers.Lambda):
            raise _fail(
                name,
                f"layer {layer.name!r} is a Lambda layer, which load_model(safe_mode=True) refuses; "
                "write the op as a registered custom layer",
            )
        if cls.__module__.split(".")[0] == "keras":
            continue
        registered = keras.saving.get_registered_name(cls)
        if keras.saving.get_registered_object(registered) is not cls:
            raise _fail(
                name,
                f"custom layer {cls.__qualname__} ({layer.name!r}) is not registered; decorate it with "
                '@keras.saving.register_keras_serializable(package="...")',
            )
        config = layer.get_config()
        try:
            json.dumps(config)
        except TypeError as exc:
            raise _fail(name, f"get_config() of {cls.__qualname__} is not JSON-able: {exc}") from exc
        params = inspect.signature(cls.__init__).parameters.values()
        missing = [
            p.name
            for p in params
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in config
        ]
        if missing:
            raise _fail(name, f"get_config() of {cls.__qualname__} lacks init argument(s) {missing}")
        try:
            again = cls.from_config(config).get_config()
        except Exception as exc:
            raise _fail(
                name, f"{cls.__qualname__}.from_config(get_config()) raised {type(exc).__name__}: {exc}"
            ) from exc
        if again != config:
            raise _fail(name, f"{cls.__qualname__} config does not round-trip: {config} != {again}")


def _check_saving(name: str, model: Any, x: np.ndarray, expected: np.ndarray) -> None:
    import keras

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        try:
            model.save(path)
            loaded = keras.saving.load_model(path, safe_mode=True)
        except Exception as exc:
            raise _fail(
                name, f"save / load_model(safe_mode=True) failed: {type(exc).__name__}: {exc}"
            ) from exc
    if type(loaded) is not type(model):
        raise _fail(name, f"reloaded as {type(loaded).__name__}, saved as {type(model).__name__}")
    got = _forward(name, loaded, x)
    err = float(np.max(np.abs(got - expected)))
    if err > SAVE_ATOL:
        raise _fail(name, f"the reloaded model's outputs differ by up to {err:.3g} (tolerance {SAVE_ATOL})")


def _check_overfit(name: str, model: Any, sharp: np.ndarray) -> tuple[float, float, int]:
    import keras

    blurred = 0.25 + 0.5 * sharp  # a contrast loss: the model must learn y = 2x - 0.5
    # No XLA (its compile time dwarfs a few steps on a CPU); building the optimizer's slots up front
    # spares the second trace that tf.function makes when variables are created during the first one.
    model.compile(optimizer=keras.optimizers.Adam(FIT_LEARNING_RATE), loss="mse", jit_compile=False)
    model.optimizer.build(model.trainable_variables)
    initial = loss = math.nan
    for step in range(FIT_STEPS + 1):
        # train_on_batch returns the loss of the forward pass before its update.
        loss = float(np.asarray(model.train_on_batch(blurred, sharp)).reshape(-1)[0])
        if not math.isfinite(loss):
            raise _fail(name, f"training loss became {loss} at step {step}")
        if step == 0:
            initial = loss
            if initial <= 0:
                raise _fail(name, f"initial training loss is {initial}; nothing to learn")
        elif loss < FIT_REDUCTION * initial:
            return initial, loss, step
    raise _fail(
        name,
        f"cannot overfit one batch: MSE {initial:.4g} -> {loss:.4g} after {FIT_STEPS} Adam steps "
        f"(lr {FIT_LEARNING_RATE}); expected a drop of more than {1 - FIT_REDUCTION:.0%}",
    )


def check_model(name: str, **config: Any) -> dict[str, Any]:
    """Check that the registered model builder ``name`` meets blurkit's model contract.

    Args:
        name: A name in :data:`blurkit.registry.MODELS` (built-in or plugin).
        **config: Keyword arguments for the builder; keep the model tiny (it is trained for a few steps).

    Returns:
        A report: ``{"name", "params", "input_shape", "fully_convolutional", "initial_loss", "final_loss",
        "steps"}``.

    Raises:
        AssertionError: The model breaks the contract; the message says which rule and how.
    """
    import keras

    from blurkit.registry import MODELS

    builder = MODELS.get(name)
    try:
        stored = json.loads(json.dumps(config))  # what the facade gets back from a saved file
    except TypeError as exc:
        raise _fail(name, f"config values must be JSON-able: {exc}") from exc
    saved = random.getstate(), np.random.get_state()
    try:
        keras.utils.set_random_seed(0)
        return _check(name, builder, stored)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])


def _check(name: str, builder: Any, stored: dict) -> dict[str, Any]:
    """:func:`check_model`'s checks, with the random states seeded."""
    rng = np.random.default_rng(0)
    model = _build(name, builder, stored)
    height, width, channels = _input_spec(name, model)
    fully_conv = height is None
    if fully_conv:
        height = width = CHECK_SIZE
        x = _images(rng, 2, *ODD_SIZE, channels)
        _forward(name, model, x)
    assert height is not None and width is not None  # a fixed-size model fixes both
    x = _images(rng, 2, height, width, channels)
    y = _forward(name, model, x)

    try:
        takes_channels = "channels" in inspect.signature(builder).parameters
    except (TypeError, ValueError):
        takes_channels = False
    if takes_channels:
        for c in {1, 3} - {channels}:
            other = _build(name, builder, {**stored, "channels": c})
            if _input_spec(name, other)[2] != c:
                raise _fail(name, f"channels={c} built a model with input {tuple(other.inputs[0].shape)}")
            size = ODD_SIZE if fully_conv else (height, width)
            _forward(name, other, _images(rng, 1, *size, c))

    _check_layers(name, model)
    _check_saving(name, model, x, y)
    initial, final, steps = _check_overfit(name, model, x)
    return {
        "name": name,
        "params": int(model.count_params()),
        "input_shape": tuple(model.inputs[0].shape),
        "fully_convolutional": fully_conv,
        "initial_loss": initial,
        "final_loss": final,
        "steps": steps,
    }

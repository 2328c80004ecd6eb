"""The :class:`Deblurrer` facade: fit / predict / evaluate / save / load.

A ``Deblurrer`` holds a Keras model built by a registered builder and the blur generator that makes its
training data, and takes care of everything around them: the ``tf.data`` pipeline, the train/validation
split, sensible training defaults, whole-image or tiled inference at any size, evaluation against the
blurred input, and a single ``.keras`` file that carries the model together with the metadata needed to
rebuild the facade.

Examples:
    >>> import numpy as np
    >>> from blurkit import Deblurrer
    >>> d = Deblurrer(model="unet", model_options={"width": 8, "depth": 2, "blocks": 1})
    >>> photo = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    >>> d.predict(photo).shape, d.predict(photo).dtype
    ((40, 50, 3), dtype('uint8'))
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import io
import json
import math
import numbers
import os
import re
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, cast, overload

import numpy as np

from blurkit._limits import DEFAULT_MAX_PIXELS, check_max_pixels
from blurkit.presets import DEFAULT_PRESET

if TYPE_CHECKING:
    from blurkit.data.pipeline import Source

#: One image to decode: a path, an encoded file's bytes, or a binary file object.
_Encoded = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]

__all__ = ["Deblurrer", "ModelFileError", "TrainingDivergedError", "METADATA_NAME", "FORMAT"]

#: Serialises the building of a Deblurrer's traced inference functions: threads that predict on a fresh (or
#: just loaded) instance at once build them once, and none sees one function published without the other.
_BUILD_LOCK = threading.Lock()
#: The tile progress bar of the ``predict(progress=True)`` running in this thread (another thread's predict
#: on the same instance must not advance it).
_TILES = threading.local()
#: The file (or name) of the image being restored in this thread or task, for the warnings about it: set by
#: :meth:`Deblurrer.predict` and :meth:`Deblurrer.estimate_sigma` for a path, and by :func:`naming` (a folder
#: run restores arrays its reader threads decoded). A context variable: other threads do not see it.
_NAME: contextvars.ContextVar[str | None] = contextvars.ContextVar("blurkit_image_name", default=None)

METADATA_NAME = "blurkit.json"
FORMAT = "blurkit-model"
FORMAT_VERSION = 1
#: Largest JSON entry (blurkit metadata, Keras config) read from a model file, in bytes (uncompressed).
MAX_JSON_BYTES = 16 * 2**20
#: Largest weights entry of a model file (``model.weights.h5``, or a training state's best weights), in bytes
#: uncompressed: 2**30, a model of 268 million float32 weights (the shipped presets hold 1.7 million). A
#: larger declared size is refused before anything is inflated.
MAX_WEIGHTS_BYTES = 2**30
#: A training state's weights entry holds the optimizer's variables too (Adam: two per weight): up to this many
#: times :data:`MAX_WEIGHTS_BYTES`.
_STATE_WEIGHTS_FACTOR = 4
#: Most asset files (``assets/...``, a custom layer's own files) a model file may hold, and their largest
#: total size uncompressed, in bytes.
MAX_ASSETS, MAX_ASSET_BYTES = 64, 64 * 2**20
#: The entries of a ``.keras`` archive that Keras reads (beside ``assets/``).
_KERAS_ENTRIES = ("config.json", "metadata.json", "model.weights.h5")
#: What reading a damaged, encrypted or oddly compressed archive raises (zipfile's RuntimeError for an
#: encrypted entry, NotImplementedError for a compression method it lacks).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # the first 8 bytes of the HDF5 files Keras writes
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError, zipfile.LargeZipFile)
RESUME_NAME = "last.keras"
_TEMP_SUFFIX = ".tmp.keras"
_BEST_WEIGHTS_ENTRY = "blurkit_resume/best_weights.npz"
#: The form of a training state's ``settings`` record, kept beside it (``resume.settings_version``). A state
#: without one was written before it was recorded (2026-12-07): its record may hold ``data`` (the path as
#: typed), a blur without the options added since, and item digests of an earlier form, which
#: :func:`_saved_settings` reads as this release writes them. A state of a later form is refused as written by a
#: newer blurkit, not as another run's. Raise it when a setting's form changes, and convert the older form there.
#: 3 since 2026-12-08, when the validation seed became fixed (:data:`VALIDATION_SEED`): a state of form 1 or 2
#: validated with ``seed + 7919``. Since then the validation seed a run uses is recorded on its own
#: (``training["validation_seed"]``, :func:`_validation_seed`), and says nothing of the settings' form.
RESUME_SETTINGS_VERSION = 3
#: The seed of ``fit``'s validation pipeline (the patches of the validation images, and the blur drawn for each):
#: fixed, not the training ``seed``, so that runs that differ only in ``seed`` are validated on the same inputs.
#: Until 2026-12-08 it was ``seed + 7919``: seed-0 runs keep their validation inputs. A run records the one it
#: used (``training["validation_seed"]``), and a run that continues one keeps it (:func:`_validation_seed`).
VALIDATION_SEED = 7919
#: The largest validation seed a run can have used: ``seed + 7919`` at the largest ``seed``.
_MAX_VALIDATION_SEED = 2**32 - 1 + 7919
#: Inference tiling defaults (an inference setting of this library version, not part of a trained model:
#: :meth:`Deblurrer.from_preset` applies them to the shipped presets whatever their files say).
DEFAULT_TILE_SIZE = 1536
DEFAULT_TILE_OVERLAP = 64
#: Side of the tiles a blur estimator + restorer model reads a photo's blur off (the median of their
#: estimates): photos up to this side get one estimate on the whole photo. Reading it off 384-px tiles
#: (the default preset's training crops) was measured and not adopted (model card: no gain over 207 photos).
DEFAULT_ESTIMATE_TILE = 1536
#: The shortest side the blind blur estimate is read off with some reliability. The default preset's estimate
#: on crops of scikit-image's astronaut and coffee (median of three crops, sigma 1 / 2 / 3): at 16-32 px it
#: erred by up to 60 % and hardly moved with the true sigma; at 48 px it rose with it, within 30 %; at 128 px
#: within 10 %. Smaller photos are still estimated, with a warning.
MIN_ESTIMATE_SIDE = 48
#: The 8 flips/rotations of the self-ensemble (``predict(ensemble=...)``), as (quarter turns, mirrored first):
#: the first 2 and 4 keep the image's shape (and so its tiles).
DIHEDRAL = ((0, False), (0, True), (2, False), (2, True), (1, False), (1, True), (3, False), (3, True))
EVAL_METRICS = ("psnr", "ssim", "mse", "accuracy", "channel_accuracy")


class ModelFileError(ValueError):
    """A model file that is not a blurkit model, is damaged, or needs components that are not installed."""


class FileSettingWarning(UserWarning):
    """A model file's setting that :meth:`Deblurrer.load` changes, as this release cannot take it (an older
    blurkit's file, or a careless or crafted one): its tile sizes or its seed. ``settings`` names the facade
    settings changed (``tile_size``, ``tile_overlap``, ``estimate_tile``, ``seed``), so that a caller that sets
    them itself (``blurkit deblur --tile-size``) can leave the warning out; ``text`` is the message without its
    last words, ``advice`` (how to choose them in Python)."""

    def __init__(self, text: str, settings: Iterable[str], advice: str) -> None:
        super().__init__(f"{text} ({advice})")
        self.text, self.settings, self.advice = text, frozenset(settings), advice


class TrainingDivergedError(ValueError):
    """:meth:`Deblurrer.fit` stopped because the training diverged: the loss or the validation loss became NaN
    or infinite, or the weights, or the model's output on a test image. The epoch is in
    :attr:`Deblurrer.history`, but no checkpoint or training state of it is written; the Deblurrer keeps the
    diverged weights (early stopping's best ones, if it ran), so go on from the last checkpoint."""


def _non_finite(model: Any) -> int:
    """How many of ``model``'s weight values are NaN or infinite (one variable at a time: no copy of them
    all, which a large model's checkpoints would pay for at every save)."""
    bad = 0
    for v in model.weights:
        w = np.asarray(v)
        bad += int(w.size - np.count_nonzero(np.isfinite(w)))
    return bad


def _finite(output: np.ndarray) -> np.ndarray:
    """``output`` of the model (clipped to [0, 1]: an infinity is 0 or 1 there), refused if it holds NaN: a
    model whose weights are finite but too large (a diverged training run) restored every photo to black."""
    if not np.isfinite(output).all():
        raise ValueError("the model's output holds NaN values: its weights are finite but it cannot restore "
                         "images (a diverged training run, say: train again with a lower learning rate)")
    return output


def _finite_output(model: Any, size: int) -> bool:
    """Whether ``model``'s output on a fixed test image (``size`` pixels square, the size it trains at, unless
    its input has a fixed size) is finite; True when the model cannot be run so (it is not for this check to
    stop a run whose training steps work)."""
    try:
        shape = model.inputs[0].shape
        probe = np.random.default_rng(0).random((1, shape[1] or size, shape[2] or size, shape[-1]), dtype=np.float32)
        return bool(np.isfinite(np.asarray(model(probe, training=False), dtype=np.float32)).all())
    except Exception:  # noqa: BLE001 - a model that takes no such input: not probed
        return True


def _broken_weights(model: Any) -> str | None:
    """Why ``model`` can be neither saved nor run (its weights hold NaN or infinite values), or None."""
    bad = _non_finite(model)
    if not bad:
        return None
    return (f"its weights hold {bad:,} NaN or infinite value{'s' * (bad != 1)} (a diverged training run, say: "
            "train again with a lower learning rate)")


def _provenance(registry: Any, name: Any, obj: Any = None) -> str | None:
    """Where the component ``name`` of ``registry`` comes from (``"built-in"``, ``"plugin DIST VERSION"``,
    ``"user module MOD"``), as saved files record it; None when it is not registered.

    With ``obj`` (the class of the blur a Deblurrer holds), where that object comes from: the registry's word
    when it is the object registered under ``name``; otherwise its own module's, ``"built-in"`` for blurkit's
    and ``"user module MOD"`` for any other (a class never registered under its name, or one that another
    registration replaced). A blur is never recorded as the one registered under its name when it is not
    that one: :meth:`Deblurrer.load` rebuilds a saved blur from the blur of its name only where the sources
    agree (:func:`_source_key`).

    A component registered with a ``source`` of its own that is neither ``"built-in"`` nor a plugin's is
    recorded as what it is, the user's (``"user module MOD"``), and a script that multiprocessing's spawn or
    forkserver runs again as ``__mp_main__`` in a worker as the ``__main__`` it is in the parent.
    """
    from blurkit.registry import BUILTIN, UnknownComponentError

    try:
        entry = registry.entry(name)
    except (UnknownComponentError, TypeError):
        entry = None
    if obj is not None and (entry is None or entry.obj is not obj):
        module = getattr(obj, "__module__", None) or "?"
        return BUILTIN if module.split(".")[0] == "blurkit" else f"user module {_main(module)}"
    if entry is None:
        return None
    if entry.source == BUILTIN or entry.source.startswith("plugin "):
        return entry.source
    return f"user module {_main(entry.module)}"


def _main(module: str) -> str:
    """``module``, with ``__mp_main__`` (the parent's ``__main__`` as multiprocessing's spawn and forkserver run
    it again in a worker) as ``__main__``."""
    return "__main__" if module == "__mp_main__" else module


_PLUGIN_SOURCE = r"plugin ([A-Za-z0-9][A-Za-z0-9._-]{0,99}) ([A-Za-z0-9][A-Za-z0-9.+!_-]{0,49})"
_USER_SOURCE = r"user module ([A-Za-z_][\w.]{0,199})"


def _source_key(source: Any) -> tuple[str, str] | None:
    """What a recorded provenance names, for comparing two (a plugin's version aside: an upgrade of the same
    package rebuilds its blur, through the blur's own ``version``): ``("plugin", "my-plugin")``, ``("user",
    "")``, ``("built-in", "")``; None for no provenance, or a text blurkit does not write.

    Every ``"user module ..."`` text is the same key, whatever the module (``__main__``, ``__mp_main__``, a
    package path or the script's, ``<run_path>``): a blur the user registers is their own choice, and the same
    class is often imported under other module names (a notebook's class moved into a module, ``myblurs`` vs
    ``proj.myblurs``). What is told apart is where a blur comes from: built in, a plugin (by distribution), or
    the user."""
    if not isinstance(source, str):
        return None
    if source == "built-in":
        return ("built-in", "")
    if source.startswith("user module "):
        return ("user", "")
    if m := re.fullmatch(_PLUGIN_SOURCE, source):
        return ("plugin", re.sub(r"[-_.]+", "-", m.group(1)).lower())
    if m := re.fullmatch(r"plugin (\S+)", source):  # an entry point without a distribution: its object
        return ("plugin", m.group(1))
    return None


def _install_hint(source: Any) -> str:
    """What to do about a missing component that a file says came from ``source``: ``"from plugin X 1.0: pip
    install X"`` (``"from plugin X 1.0, installed here"`` when it is: installing it again would not help),
    ``"registered by user module M: import M before loading the file, in Python; ..."``; empty when the file
    does not say."""
    from importlib import metadata

    if not isinstance(source, str) or not source or source == "built-in":
        return ""
    # the file is a stranger's: only the forms blurkit writes, with plain names, are repeated (another text
    # could carry terminal escape codes, line breaks, or a command to install something else)
    if m := re.fullmatch(_PLUGIN_SOURCE, source):
        dist, version = m.groups()
        try:
            installed = metadata.version(dist)
        except metadata.PackageNotFoundError:
            return f"from {source}: pip install {dist}"
        except Exception:  # noqa: BLE001 - a damaged installation: say nothing of it
            return f"from {source}"
        return f"from {source}, installed here" if installed == version else \
            f"from {source}; {dist} {installed} is installed here"
    if m := re.fullmatch(_USER_SOURCE, source):
        if m.group(1) == "__main__":
            return (f"registered by {source}, the script that saved it: register it again before loading the "
                    "file, in Python; the command line cannot")
        return (f"registered by {source}: import {m.group(1)} before loading the file, in Python; the command "
                "line cannot import it")
    return ""


#: What else a caller can do about a saved blur it cannot use (:func:`_check_blur_installed`): train or
#: evaluate with another blur, said the way that caller takes one.
_OTHER_BLUR = {
    "fit": "or train with another blur: assign it to the Deblurrer's blur before fit "
           "(d.blur = blurkit.BLURS.create(NAME, ...))",
    "train": "or train with another blur: --blur NAME",
    "evaluate": "or give evaluate another blur: blur= in Python, --blur on the command line",
    "": "or use another blur: assign it to the Deblurrer's blur to train, or give evaluate blur= (--blur on the "
        "command line)",
}


def _missing_blur(saved: dict, path: Any, source: Any, problem: str | None = None, *, failed: str | None = None,
                  installed: str | None = None, refused: str | None = None) -> Any:
    """A stand-in for a saved blur generator that is not installed (or, with ``problem``, that the installed
    blur of its name cannot rebuild: another plugin's blur of that name, say; with ``failed``, whose plugin is
    installed but could not be loaded, and why; with ``installed``, where the blur installed under its name
    comes from when that is not where the saved one came from; with ``refused``, why this release's built-in
    blur of its name refuses the saved options, which an older blurkit took): the model restores photos without
    it (a blur is only needed to make training and test pairs), it is saved again as it was, and what needs it
    (:meth:`Deblurrer.fit`, :meth:`Deblurrer.evaluate` on sharp photos) raises a :class:`ModelFileError` that
    says what to install, or, for refused options, to give another blur (nothing to install makes them
    drawable)."""
    from blurkit.blurs import Blur

    hint = _install_hint(source)
    if failed is not None:
        state, fix, short = f"is installed but could not be loaded ({failed})", "make it load", "cannot be loaded"
    elif installed is not None:
        state = f"differs from the blur installed under that name here ({installed}), which is not used in its place"
        fix, short = "install or register the blur it was saved with", "cannot be rebuilt"
    elif refused is not None:
        state = (f"has options this blurkit refuses ({refused}; an older blurkit may have taken them; this one's "
                 f"built-in {saved.get('name')!r} cannot draw from them)")
        fix, short = "", "options refused"
    elif problem is not None:
        state = f"cannot be rebuilt by the installed blur of that name ({problem})"
        fix, short = "install the blur it was saved with", "cannot be rebuilt"
    else:
        state, fix, short = "is not installed", "install it", "not installed"
    why = (f"{path}: its blur generator {saved.get('name')!r}{f' ({hint})' if hint else ''} {state}; the "
           "model restores photos without it, but training and evaluating on sharp photos need it")

    def message(use: str = "") -> str:
        other = _OTHER_BLUR[use]
        return f"{why} ({fix}, {other})" if fix else f"{why} ({other.removeprefix('or ')})"

    class MissingBlur(Blur):
        name = str(saved.get("name"))
        version = int(saved.get("version", 1))
        missing = message()

        def __init__(self) -> None:  # no base __init__: nothing of the saved config is checked or used
            pass

        @staticmethod
        def needed_by(use: str) -> str:
            """The message for ``use`` (``"fit"``, ``"train"``, ``"evaluate"``): its own way to another blur."""
            return message(use)

        def sample(self, rng: Any = None) -> dict:
            raise ModelFileError(self.missing)

        def sample_kernel(self, rng: Any) -> dict:
            raise ModelFileError(self.missing)

        def kernel(self, params: dict) -> np.ndarray:
            raise ModelFileError(self.missing)

        def get_config(self) -> dict:
            return dict(saved.get("config") or {})

        def __repr__(self) -> str:
            return f"<blur {self.name!r}, {short}>"

    return MissingBlur()


def _check_blur_installed(blur: Any, use: str = "") -> None:
    """Raise the :class:`ModelFileError` of a saved blur that cannot be used (:func:`_missing_blur`), said for
    ``use``: ``"fit"``, ``"train"`` (the command line's) or ``"evaluate"``."""
    why = getattr(blur, "missing", None)
    if why:
        needed_by = getattr(blur, "needed_by", None)
        raise ModelFileError(needed_by(use) if callable(needed_by) else why)


def _device_kind() -> str:
    """``"GPU"`` when TensorFlow sees one (the model's operations run there), else ``"CPU"``: a training state
    records it, as a resume on the other computes in another order."""
    import tensorflow as tf

    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def _op_determinism() -> bool | None:
    """Whether TensorFlow's op determinism is on (``tf.config.experimental.enable_op_determinism``, ``blurkit
    train --deterministic``): a training state records it. None where this TensorFlow does not say (the reader
    is not public)."""
    try:
        from tensorflow.python.framework import config
    except ImportError:  # pragma: no cover - another TensorFlow layout
        return None
    enabled = getattr(config, "is_op_determinism_enabled", None)
    return bool(enabled()) if callable(enabled) else None


def _cpu_threads() -> int:
    """The threads TensorFlow's operations run on a CPU (``fit`` asks on a CPU only: a GPU's kernels do not
    depend on them): a training state records them, as another count sums in another order (docs/data.md). TensorFlow's
    setting, else ``TF_NUM_INTRAOP_THREADS``, else the CPUs this process may run on (``taskset``, a batch
    scheduler's allocation), as TensorFlow chooses."""
    import tensorflow as tf

    n = tf.config.threading.get_intra_op_parallelism_threads()
    if n > 0:
        return int(n)
    env = os.environ.get("TF_NUM_INTRAOP_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _machine_change(restored: dict, device: str, threads: int | None, deterministic: bool | None) -> str | None:
    """How a resumed run trains on another machine than the run of the training state ``restored`` (from
    :meth:`Deblurrer._restore_state`): another device kind, on a GPU without (or with) its op determinism, or
    another count of CPU threads; each computes in another order, so the weights are no longer the
    uninterrupted run's. The end of a warning's text, or None when nothing changed (or nothing was recorded)."""
    saved = restored.get("threads")
    saved = saved if isinstance(saved, int) and not isinstance(saved, bool) and saved > 0 else None
    # a state of 2026-12-08 before the device was recorded: a thread count was recorded on a CPU only
    was = restored.get("device") if restored.get("device") in ("CPU", "GPU") else "CPU" if saved else None
    if was is not None and was != device:
        return (f"on a {device}, and its run trained on a {was}: it goes on, but the operations compute in another "
                "order, so the weights will not be bit for bit an uninterrupted run's")
    if device == "GPU" and isinstance(restored.get("deterministic"), bool) and deterministic is not None \
            and restored["deterministic"] != deterministic:
        how = ("with", "without") if restored["deterministic"] else ("without", "with")
        return (f"{how[1]} TensorFlow's op determinism, and its run trained {how[0]} it (blurkit train "
                "--deterministic): it goes on, but the weights will not be those of a repeatable run")
    if threads is not None and saved is not None and saved != threads:
        return (f"with {threads} CPU thread{'s' * (threads != 1)}, and its run used {saved}: it goes on, but "
                "TensorFlow sums in another order, so the weights will not be bit for bit an uninterrupted run's "
                f"(give it {saved} threads: blurkit train --threads {saved}, or TF_NUM_INTRAOP_THREADS={saved})")
    return None


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("blurkit", "keras", "tensorflow", "tensorflow-cpu", "jax", "numpy", "opencv-python-headless"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _store_weights_as(path: str | os.PathLike, dtype: str) -> None:
    """Rewrite the Keras archive ``path`` with the float32 arrays of its ``model.weights.h5`` stored as
    ``dtype`` (see :meth:`Deblurrer.save`); every other entry and array is copied unchanged."""
    import h5py

    limit = float(np.finfo(dtype).max)

    def copy(src: Any, dst: Any) -> None:
        dst.attrs.update(src.attrs)
        for name, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(name))
                continue
            value = item[()]
            if getattr(value, "dtype", None) == np.float32:
                if value.size and float(np.abs(value).max()) > limit:
                    raise ValueError(f"weight {item.name} exceeds {dtype}'s range ({limit:g}); "
                                     "save it as float32")
                value = value.astype(dtype)
            dst.create_dataset(name, data=value).attrs.update(item.attrs)

    name = "model.weights.h5"
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        data = {info.filename: zf.read(info) for info in infos}
    if name not in data:
        raise ValueError(f"{path}: no {name} in the Keras archive")
    out = io.BytesIO()
    with h5py.File(io.BytesIO(data[name]), "r") as src, h5py.File(out, "w") as dst:
        copy(src, dst)
    data[name] = out.getvalue()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info in infos:
            zf.writestr(info, data[info.filename])


def _history_from_json(history: Any) -> dict[str, list[float]]:
    """A history as saved (a non-finite value, an epoch without that key included, written as null) back as
    :attr:`Deblurrer.history` held it: None is NaN again, so ``min``/``np.nanmin`` work on a loaded one."""
    return {str(k): [math.nan if x is None else x for x in v] if isinstance(v, list) else v
            for k, v in (history or {}).items()}


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


class Deblurrer:
    """Train and apply a deblurring model.

    Args:
        model: A registered model builder name (``"unet"``, ``"nafnet"``, ``"autoencoder"``,
            ``"wiener_unet"``, the presets' architecture, or a plugin's) or an already built ``keras.Model``
            (then ``model_options`` is ignored).
        blur: A registered blur generator name, or a blur generator instance; makes the training inputs
            from sharp photos and the test inputs in :meth:`evaluate`.
        model_options: Keyword arguments of the model builder.
        blur_options: Keyword arguments of the blur generator given by name (e.g. ``{"sigma": (0.5, 3.0)}``);
            with a blur instance or a serialized blur, ValueError (build the instance with them).
        channels: 3 for colour models, 1 for greyscale models (colour images are then restored channel by
            channel). Default: 3, or what a model builder without a ``channels`` option builds (given
            explicitly, a builder's model for other channels is refused).
        loss: ``"mse"`` (default), ``"l1"``, ``"charbonnier"`` or ``"psnr_loss"`` (see
            :mod:`blurkit.metrics.losses`).
        learning_rate: Adam's initial learning rate (default 1e-3). A ``model`` that is already compiled (by
            you) keeps its own optimizer and loss settings when :meth:`fit` trains it: this attribute, and the
            training record, then take that optimizer's learning rate, and a different ``learning_rate``
            given here is warned about (once) and not used. To train it with blurkit's Adam, call
            :meth:`compile` first.
        patch_size: Training patch side; fixed-input models (the autoencoder) always use their input size.
        batch_size: Training batch size.
        patches_per_image: Patches cut from a photo each time it is decoded.
        tile_size: Images larger than ``tile_size**2`` pixels are restored in overlapping tiles of at most
            this side, fitted to the image so the overlaps cost little (fixed-input models always tile at
            their input size). Memory grows with the tile's area (about 400 bytes per tile pixel for the
            default preset, on top of about 0.7 GB for TensorFlow and the model): deblurring an 8000x6000
            JPEG with the default preset peaks at about 1.9 GB of resident memory with 1536 tiles (the
            default; the decoded photo and the output are 0.3 GB of it). Smaller tiles cost time: each
            tile pays the model's own border padding (the Wiener step's FFTs), and tiles overlap.
        tile_overlap: Overlap between tiles.
        estimate_tile: Models made of a blur estimator and a restorer (``wiener_unet``, the default preset)
            estimate the blur once per photo, as the median of the estimates on tiles of this side that
            cover it (a photo no larger than this on either side: one estimate on the whole photo), and
            restore the whole photo, or every one of its tiles, with it, so the result does not depend on
            ``tile_size``. It bounds the estimator's memory as ``tile_size`` bounds the restorer's (the
            estimator needs less per pixel). Other models ignore it.
        seed: Seeds the model's initial weights (when ``model`` is a builder name), the validation split and
            the training pipeline: the same seed, data and settings train the same model in a new process. A
            whole number from 0 to 2**32 - 1. It does not seed the validation inputs (their patches and blurs:
            :data:`VALIDATION_SEED`) nor :meth:`evaluate`'s blur (its own ``seed``), so runs with different
            seeds are validated, and their models scored, on the same inputs (with ``validation_split``, which
            items are held out still depends on it). Building the model calls
            ``keras.utils.set_random_seed(seed)``: Python's and NumPy's random states are put back after it,
            TensorFlow's global seed (``tf.random.set_seed``) is left at ``seed`` (TensorFlow has no public
            way to read the previous one back); seed it again after making a Deblurrer if you rely on it.
    """

    #: The file a Deblurrer was loaded from (:meth:`load`), else None.
    source: str | None = None
    #: What :meth:`fit` records as the weights it started from (``training["init"]``): the file's name and
    #: SHA-256, and the preset's name for a shipped one; None for a model built here.
    _loaded: dict[str, Any] | None = None
    _saved_components: dict[str, Any] | None = None  # the loaded file's component provenance

    def __init__(
        self,
        model: str | Any = "unet",
        blur: str | Any = "gaussian",
        *,
        model_options: dict | None = None,
        blur_options: dict | None = None,
        channels: int | None = None,
        loss: str = "mse",
        learning_rate: float | None = None,
        patch_size: int = 96,
        batch_size: int = 16,
        patches_per_image: int = 4,
        tile_size: int = DEFAULT_TILE_SIZE,
        tile_overlap: int = DEFAULT_TILE_OVERLAP,
        estimate_tile: int = DEFAULT_ESTIMATE_TILE,
        seed: int = 0,
    ) -> None:
        from blurkit.blurs import Blur, deserialize_blur
        from blurkit.metrics.functional import WIN_SIZE
        from blurkit.metrics.losses import check_loss
        from blurkit.registry import BLURS, MODELS, options_error

        _import_keras()
        check_loss(loss)  # now, not at the first fit
        _check_seed(seed)  # now, named: NumPy's own message (building the model) does not say which argument
        asked, channels = channels, 3 if channels is None else channels
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        for arg, v in (("patch_size", patch_size), ("batch_size", batch_size), ("tile_size", tile_size),
                       ("patches_per_image", patches_per_image), ("estimate_tile", estimate_tile),
                       ("tile_overlap", tile_overlap)):
            _check_whole(v, arg)  # 40.9 was cut to 40 and "64" taken; None ended in int()'s bare TypeError
            lo, hi = _FACADE_RANGES[arg]  # a saved file is refused outside these (load)
            if int(v) < lo:
                raise ValueError(f"{arg} must be >= {lo}, got {v}")
            if int(v) > hi and arg != "patch_size":  # patch_size: the tensor-size check below (< 2**16)
                raise ValueError(f"{arg} must be at most {hi:,}, got {v}")
        for arg, opts in (("model_options", model_options), ("blur_options", blur_options)):
            if opts is not None and not isinstance(opts, Mapping):
                raise TypeError(f"{arg} must be a dict of options, got {type(opts).__name__} {opts!r}")
        if not isinstance(model, str) and getattr(model, "input_shape", None) is None:
            raise TypeError(f"model must be a registered builder name (see blurkit.MODELS.list()) or a Keras "
                            f"model with a known input shape (built), got {type(model).__name__} {model!r}")
        if learning_rate is not None:
            _check_learning_rate(learning_rate)
        if int(patch_size) < WIN_SIZE:
            raise ValueError(f"patch_size must be at least {WIN_SIZE} (the window of the SSIM metric training "
                             f"reports), got {patch_size}")
        values = int(patch_size) ** 2 * int(batch_size) * channels
        if values >= 2**31:  # a typo (patch_size=100000) ended in a TensorFlow traceback
            raise ValueError(f"a batch of {batch_size} patches of {patch_size}x{patch_size}x{channels} is "
                             f"{values:,} values, more than a TensorFlow tensor holds (2**31): lower patch_size "
                             "or batch_size")
        if not 0 <= tile_overlap < tile_size:
            raise ValueError(f"tile_overlap must be in [0, tile_size), got {tile_overlap}")
        problem = _patches_problem(int(patches_per_image), int(patch_size), channels)
        if problem:
            raise ValueError(f"{problem}: lower patches_per_image or patch_size")
        self.channels = channels
        self.loss = loss
        self.learning_rate = 1e-3 if learning_rate is None else float(learning_rate)
        self._lr_asked = None if learning_rate is None else float(learning_rate)  # compile() goes back to it
        self._optimizer = None  # the optimizer self.learning_rate is the learning rate of (_adopt_optimizer)
        self.batch_size = int(batch_size)
        self.patches_per_image = int(patches_per_image)
        self.tile_overlap = int(tile_overlap)
        self.estimate_tile = int(estimate_tile)
        self.seed = int(seed)
        self.history: dict[str, list[float]] = {}
        self.validation: dict[str, float] = {}
        self.training: dict[str, Any] = {}

        if isinstance(blur, str):
            self.blur = BLURS.create(blur, **(blur_options or {}))
        elif blur_options:  # they would be dropped silently: the instance (or config) is built already
            raise ValueError("blur_options go with a blur name, not with a Blur instance or a serialized "
                             "blur: build the instance with them (or put them in its config)")
        elif isinstance(blur, dict):
            self.blur = deserialize_blur(blur)
        elif isinstance(blur, Blur):
            self.blur = blur
        else:  # it failed only when used: in fit as a TensorFlow 'PyFuncStateless' error
            raise TypeError(f"blur must be a registered blur name (see blurkit.BLURS.list()), a Blur instance or "
                            f"a serialized blur (dict), got {type(blur).__name__} {blur!r}")

        self.patch_size = int(patch_size)
        self.tile_size = int(tile_size)
        self.fixed_size: int | None = None
        spec: dict | None = None
        if isinstance(model, str):
            opts = dict(model_options or {})
            builder = MODELS.get(model)
            import inspect

            if "channels" in inspect.signature(builder).parameters:
                opts.setdefault("channels", channels)
            spec = {"name": model, "config": opts}
            try:
                model = _seeded_build(builder, opts, self.seed)
            except Exception as exc:  # a builder may refuse an option value with any exception
                unknown = options_error(MODELS.noun, model, builder, opts, exc) if isinstance(exc, TypeError) else exc
                if unknown is not exc:  # an option it does not take: named, with those it takes
                    raise unknown from None
                better = _build_error(model, opts, exc)
                if better is exc:
                    raise
                raise better from exc
        self.model = model  # sets channels, fixed_size and the sizes a fixed-size model dictates
        if spec is not None and asked is not None and self.channels != asked:  # a builder without the option
            raise ValueError(f"model {spec['name']!r} built a model for {self.channels}-channel images, not "
                             f"channels={asked}: pass channels={self.channels}, or a builder that takes "
                             "channels")
        self.model_spec: dict | None = spec
        self._adopt_optimizer()

    @property
    def model(self) -> Any:
        """The Keras model. Assigning another one makes this Deblurrer use it from then on: its channels,
        input size (tile and patch size, for a fixed-size model) and downsampling factor are taken from it,
        and, if it is compiled, its optimizer is the one :meth:`fit` uses (see ``learning_rate``).
        :attr:`model_spec` (the builder and options saved files record) is left as it is: set it to the new
        model's, or to None for a model no registered builder made."""
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        problem = _model_problem(model)
        if problem:  # met at predict otherwise, as a broadcasting error (or another image returned)
            raise ValueError(f"model: {problem}")
        shape = model.input_shape
        fixed = None
        if shape[1] is not None and shape[2] is not None:
            if shape[1] != shape[2]:
                raise ValueError(f"fixed-size models must take square inputs, got {shape[1:3]}")
            fixed = int(shape[1])
        was_fixed = getattr(self, "fixed_size", None)
        self._model = model
        self.channels = int(shape[-1])
        self.fixed_size = fixed
        if not was_fixed:  # the sizes asked for (a fixed-size model replaces them while it is the model)
            self._sizes = (self.patch_size, self.tile_size, self.tile_overlap)
        if fixed:
            self.patch_size = self.tile_size = fixed
            self.tile_overlap = min(self._sizes[2], fixed // 4)
        elif was_fixed:  # the sizes were the old model's input size: back to those asked for
            self.patch_size, self.tile_size, self.tile_overlap = self._sizes
        self.tile_align = _tile_align(model)
        # the traced inference functions call the old model: rebuilt on the next use (see _build_functions)
        self._split_fns: tuple[Callable, Callable] | None = None
        self._infer_fn: Callable | None = None
        self._train_cache: dict = {}  # fit's traced step functions (blurkit.training.train's cache)
        self._pid = os.getpid()  # TensorFlow's state does not survive a fork (see _check_process)
        self._strategy = None  # the tf.distribute strategy the model was moved to by fit, if any
        self._loaded = None  # another model's weights: not those of the file this one was loaded from

    # ------------------------------------------------------------------------------------ training
    def _datasets(self, data: Any, validation: Any, validation_split: float, max_pixels: int | None,
                  cache: str | os.PathLike | None = None):
        """``(train_src, val_src, train_for, val_for)``: ``train_for(first, end, steps)`` is the training dataset.

        It yields exactly ``steps`` batches for each epoch in ``[first, end)``, and an epoch's batches
        depend only on ``(seed, epoch)`` (:func:`_epoch_seed`): a run resumed at epoch ``first`` sees the
        same data as the uninterrupted run did. ``val_for(seed)`` is the validation dataset drawn with
        ``seed`` (:data:`VALIDATION_SEED`, or the seed of the run being continued: :func:`_validation_seed`); None without
        validation items.
        """
        import tensorflow as tf

        from blurkit.data.pipeline import check_readable, make_dataset, resolve_source, split_source

        src = resolve_source(data)
        val_src: Source | None
        if validation is not None:
            train_src, val_src = src, resolve_source(validation, "validation")
        else:
            train_src, val_src = split_source(src, validation_split, self.seed)
        common: dict[str, Any] = dict(patch_size=self.patch_size, channels=self.channels, max_pixels=max_pixels)
        if len(train_src) == 0:
            raise ValueError("no training images")
        # read each side up to its first readable item here, untraced: make_dataset runs inside a traced
        # flat_map below, where its error would reach the user wrapped in AutoGraph's "in user code" text
        train_bad = check_readable(train_src, max_pixels=max_pixels)
        val_bad = None
        if val_src is not None and len(val_src):
            val_bad = check_readable(val_src, max_pixels=max_pixels, role="validation")

        def seeded(seeds: list[int], build: Any, batches: int | None):
            """``build(seed)`` for each seed, one after the other, independent of TF's global seed.

            ``build`` is traced once, in its own graph; clearing that graph's seed makes the data
            independent of ``keras.utils.set_random_seed`` (with a global seed of 0, tf.data could not
            even take a tensor seed: its get_seed compares it as a Python bool). ``batches`` is the
            length the dataset is declared to have, or None for one not known in advance.
            """

            def traced(seed):
                tf.compat.v1.get_default_graph().seed = None
                return build(seed)

            ds = tf.data.Dataset.from_tensor_slices(tf.constant(seeds, tf.int64)).flat_map(traced)
            if batches is None:
                return ds
            return ds.apply(tf.data.experimental.assert_cardinality(batches))  # a known length

        def train_for(first: int, end: int, steps: int, context: Any = None):
            """Epochs ``[first, end)``; with a ``tf.distribute.InputContext``, this worker's share.

            A worker reads its own files (``make_dataset(num_shards=, shard_index=)``), makes batches
            of ``global batch / workers`` and splits each into per-replica batches (``rebatch``): on
            one worker, step ``k`` covers exactly the images of the single-device step ``k``.
            """
            pipelines = context.num_input_pipelines if context is not None else 1
            index = context.input_pipeline_id if context is not None else 0
            shards: dict[str, Any] = {"num_shards": pipelines, "shard_index": index}
            batch = self.batch_size // pipelines
            epoch_seeds = [_epoch_seed(self.seed, e) for e in range(first, end)]
            # each worker its own random stream (patch positions, blur parameters); worker 0 keeps the
            # single-device one
            ds = seeded(epoch_seeds, lambda s: make_dataset(
                train_src, self.blur, batch_size=batch, patches_per_image=self.patches_per_image,
                seed=s + index * 1_000_003, cache=cache, unreadable=train_bad, **shards, **common).take(steps),
                len(epoch_seeds) * steps)
            if context is not None and context.num_replicas_in_sync > pipelines:
                ds = ds.rebatch(context.get_per_replica_batch_size(self.batch_size), drop_remainder=True)
            return ds.prefetch(tf.data.AUTOTUNE)

        def val_for(seed: int):
            assert val_src is not None  # returned only with one
            # no declared length: a validation pass skips the items (files or shard records) that cannot be
            # decoded, so that each readable one is scored once; its scores are the mean over those, the
            # same set every epoch
            return seeded([seed], lambda s: make_dataset(
                val_src, self.blur, batch_size=self.batch_size, patches_per_image=4, augment=False,
                shuffle=False, repeat=False, seed=s, role="validation", unreadable=val_bad, **common), None)

        has_val = val_src is not None and val_bad is not None  # (val_bad is checked for a val_src)
        return train_src, val_src, train_for, val_for if has_val else None

    def compile(self, learning_rate: float | None = None) -> None:
        """Compile the model with Adam, the configured loss, and PSNR/SSIM metrics (replacing the optimizer
        of a model compiled before)."""
        import keras

        from blurkit.metrics.keras import keras_metric
        from blurkit.metrics.losses import get_loss

        if learning_rate is None:  # the one given to the constructor, not a user-compiled optimizer's
            learning_rate = self._lr_asked if self._lr_asked is not None else self.learning_rate
        _check_learning_rate(learning_rate)
        lr = self.learning_rate = self._lr_asked = float(learning_rate)  # the record says what is used
        self.model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr),
            loss=get_loss(self.loss),
            metrics=[keras_metric("psnr"), keras_metric("ssim")],
        )
        self._optimizer = self.model.optimizer
        self._train_cache = {}  # fit's functions of the old optimizer, and its moments, let go

    def _adopt_optimizer(self, stacklevel: int = 3) -> None:
        """Take the learning rate of an optimizer the model was compiled with outside blurkit (fit trains with
        it as it is): warn, once per optimizer, if ``learning_rate`` was given and differs."""
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or optimizer is self._optimizer or not getattr(self.model, "compiled", False):
            return
        self._optimizer = optimizer
        try:
            # str: the shortest text of the variable's float32 value (1e-4, not 9.9999997e-05)
            lr = float(str(np.asarray(optimizer.learning_rate)[()]))
        except (TypeError, ValueError, AttributeError, IndexError):  # no plain learning rate
            return
        if self._lr_asked is not None and not math.isclose(lr, self._lr_asked, rel_tol=1e-6):
            warnings.warn(f"the model is compiled with its own optimizer (learning rate {lr:g}), which fit "
                          f"uses: learning_rate={self._lr_asked:g} is not used (call Deblurrer.compile() "
                          "to train with blurkit's Adam at it)", stacklevel=stacklevel)
        self.learning_rate = lr

    def fit(
        self,
        data: Any,
        *,
        epochs: int = 10,
        steps_per_epoch: int | None = None,
        validation: Any = None,
        validation_split: float = 0.1,
        callbacks: Sequence[Any] = (),
        early_stopping: int | None = None,
        checkpoint: str | os.PathLike | None = None,
        reduce_lr: bool = True,
        verbose: int | str = "auto",
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        resume: bool = False,
        checkpoint_dir: str | os.PathLike | None = None,
        strategy: Any = None,
        cache: str | os.PathLike | None = None,
        time_limit: float | None = None,
    ) -> Any:  # keras.callbacks.History (Keras has no type information to name it by)
        """Train on sharp photos, on existing pairs, or on arrays; on one device or with ``tf.distribute``.

        Training state is saved after every epoch when ``checkpoint`` or ``checkpoint_dir`` is given:
        ``CHECKPOINT_DIR/last.keras`` holds the weights, the optimizer state (moments, step count,
        learning rate), the epoch, the history and the state of the learning-rate and early-stopping
        callbacks, written atomically. ``resume=True`` continues from it after a crash or a
        ``kill -9``: the data of each epoch depends only on ``(seed, epoch)``, so the resumed run
        sees the batches the uninterrupted run would have seen and ends with the same weights (up to
        floating-point non-determinism of multi-threaded CPU kernels).

        Args:
            data: A folder / file / glob / list of sharp photos, an array of sharp images,
                ``(blurred_dir, sharp_dir)`` or ``(blurred_array, sharp_array)``.
            epochs: Passes over the training images.
            steps_per_epoch: Batches per epoch; default visits each training image once.
            validation: Separate validation data (same forms as ``data``); default: a split of ``data`` by
                ``seed`` that never shares an image (or pair) with the training side. Its patches and blurs
                are drawn with :data:`VALIDATION_SEED`, whatever ``seed``: runs that differ only in ``seed``
                are validated on the same inputs. A run records the seed it used (``training["validation_seed"]``),
                and one that continues another keeps that one's: a resumed state's, or, when this Deblurrer
                already has a history (an earlier ``fit``, a loaded file), that of the run that wrote it
                (``seed + 7919`` for a run of before 2026-12-08), so that the history and the best checkpoint
                keep comparing values measured on the same inputs.
            validation_split: Fraction of ``data`` held out when ``validation`` is None (0 for none).
            callbacks: Extra Keras callbacks, passed through (their own state is not saved for resume).
            early_stopping: Stop after this many epochs without improvement (None or 0: never). The model
                ends with the weights of its best epoch (Keras' ``restore_best_weights``, early stop or not):
                ``training["weights_epoch"]`` says which, and :attr:`validation` holds that epoch's scores.
            checkpoint: Save the best model so far (a blurkit ``.keras`` file, atomically) at this path
                (checked before training: ValueError for another suffix). A file there saved by an earlier
                ``fit`` of this Deblurrer (its history the start of this one's, chosen by the same monitored
                loss) is replaced only by a better epoch; any other file by this run's first epoch.
            reduce_lr: The tutorial's ReduceLROnPlateau (factor sqrt(0.1), patience 5, min_lr 0.5e-6).
            verbose: Keras' verbosity: 0 silent, 1 or ``"auto"`` a progress bar, 2 one line per epoch (for
                logs), and during an epoch a line at most every 30 s (:data:`blurkit._progress.LOG_INTERVAL`).
            max_pixels: Skip (with a warning) images with more pixels than this, checked before decoding
                them; default :data:`blurkit.data.io.DEFAULT_MAX_PIXELS` (about 13000 x 13000), None: no limit.
            resume: Continue the run whose state is in the checkpoint folder up to ``epochs`` epochs of
                that run, as if it had been asked for them: a run that got to its end goes on to a larger
                ``epochs`` as the longer run would have (early stopping's counters and best weights too); one
                that stopped early is not trained further (a warning says so when ``epochs`` asks for more).
                With nothing left to train the model ends as the saved run ended (the best epoch's weights
                with ``early_stopping``). With no saved state, start afresh. The saved run must have used the
                same model, blur, data (files by their folder's name and their names in it, however the
                folder's path is written; in-memory arrays by shape, dtype and content) and training
                settings, and have started at this Deblurrer's epoch count, else ValueError. Without
                ``resume``, existing state is overwritten, with a warning (which says whether ``resume=True``
                would have continued it).
            checkpoint_dir: Folder for the per-epoch training state; default ``NAME.resume/`` beside
                ``checkpoint`` (``model.keras`` -> ``model.resume/last.keras``); none without either.
            strategy: A ``tf.distribute.Strategy`` (``MirroredStrategy``, ``MultiWorkerMirroredStrategy``;
                see :func:`blurkit.training.make_strategy`), created before this Deblurrer. The model
                is moved into its scope (weights kept; optimizer state starts afresh unless
                resumed). ``batch_size`` is the global batch (split over the replicas; it must be a
                multiple of their number) and the learning rate is used as given: with the same global
                batch a distributed run follows the single-device one. Only the chief writes
                ``checkpoint`` and the training state; other workers write to a temporary folder
                that is removed. See docs/distributed.md.
            cache: Folder for an on-disk cache of the decoded training images (for slow storage);
                see :func:`blurkit.data.pipeline.make_dataset`.
            time_limit: Minutes: stop at the end of the first epoch past it (a job's wall time). The stop
                is a pause, not an early stop: with a checkpoint folder, ``resume=True`` goes on from
                there; ``training["time_limit_reached"]`` says it happened.

        Returns:
            The Keras ``History`` of this call; :attr:`history` accumulates over calls. :attr:`training`
            records the run's data and settings, and, for a model loaded from a file (:meth:`load`,
            :meth:`from_preset`: fine-tuning), ``training["init"]``: that file's name (or the preset's) and
            SHA-256, the weights this training started from (a resumed run's: those its state records;
            assigning another :attr:`model` drops it).

        Raises:
            TrainingDivergedError: The training loss became NaN or infinite: the epoch is recorded in
                :attr:`history`, and the last checkpoint and training state (the epochs before) are kept.
            ValueError: Bad arguments or data, or ``resume`` with a saved run that cannot be continued
                (other settings, or more epochs trained than ``epochs``).

        Example:
            Sharp photos in, pairs made on the fly (here a tiny model, two steps, an array of photos);
            a second ``fit`` goes on from the first:

            >>> import numpy as np
            >>> from skimage import data
            >>> from blurkit import Deblurrer
            >>> photos = np.stack([data.astronaut()[:96, :96], data.coffee()[:96, :96], data.chelsea()[:96, :96]])
            >>> d = Deblurrer(model="unet", model_options={"width": 8, "depth": 2, "blocks": 1},
            ...               blur_options={"sigma": (0.5, 2.0)}, patch_size=48, batch_size=2)
            >>> history = d.fit(photos, epochs=2, steps_per_epoch=1, validation_split=0.34, verbose=0)
            >>> len(history.history["loss"]), sorted(d.history)[:3]
            (2, ['learning_rate', 'loss', 'psnr'])
            >>> _ = d.fit(photos, epochs=1, steps_per_epoch=1, validation_split=0.34, verbose=0)
            >>> len(d.history["loss"])
            3
        """
        import shutil

        import keras
        import tensorflow as tf

        from blurkit.data.pipeline import steps_for
        from blurkit.metrics.losses import get_loss
        from blurkit.training import broadcast_weights, in_multi_worker_mode, is_chief, train, worker_temp_dir

        _need_tensorflow("fit")
        for arg, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 1):
                raise ValueError(f"{arg} must be a whole number of at least 1, got {value!r}")
        if time_limit is not None and (isinstance(time_limit, bool) or not time_limit > 0):
            raise ValueError(f"time_limit must be a positive number of minutes, got {time_limit!r}")
        check_max_pixels(max_pixels)
        if early_stopping is not None and (isinstance(early_stopping, bool) or not isinstance(
                early_stopping, numbers.Integral) or early_stopping < 0):  # -1 trained on, "x" failed in int()
            raise ValueError(f"early_stopping must be a whole number of epochs (0 or None: off), got "
                             f"{early_stopping!r}")
        if checkpoint is not None and Path(checkpoint).suffix != ".keras":  # now, not after the first epoch
            raise ValueError(f"checkpoint: model files end in .keras, got {Path(checkpoint).name!r}")
        state_dir = _state_dir(checkpoint, checkpoint_dir)
        if checkpoint is not None or state_dir is not None:
            # now, and once: a Lambda layer failed the first save, after a whole epoch (the checkpoints and
            # the training state are written without the check)
            _check_savable(self.model)
        if checkpoint is not None and state_dir is not None \
                and Path(checkpoint).resolve() == (state_dir / RESUME_NAME).resolve():
            raise ValueError(f"checkpoint {checkpoint} is the file the training state is kept in "
                             f"({state_dir / RESUME_NAME}): save the model elsewhere")
        if resume and state_dir is None:
            raise ValueError("resume=True needs checkpoint_dir= (or checkpoint=, beside which the training "
                             "state is kept)")
        half = sorted({str(v.dtype) for v in self.model.trainable_weights} & {"float16", "bfloat16"})
        if half:  # every step's update is below their precision: the loss went NaN, "lower the learning rate"
            raise ValueError(f"this model's weights are {' and '.join(half)} (it was built under a half-precision "
                             "dtype policy: keras.config.set_dtype_policy, or floatx in ~/.keras/keras.json): "
                             "training in half precision diverges. Build it under float32, or under "
                             "keras.config.set_dtype_policy('mixed_float16') for half-precision compute with "
                             "float32 weights")
        bad = 0 if resume else _non_finite(self.model)  # a resumed run loads the saved state's weights
        if bad:  # a fit after a TrainingDivergedError: the lower learning rate it advises was blamed for these
            raise ValueError(f"this model's weights hold {bad:,} NaN or infinite value{'s' * (bad != 1)} (a "
                             "diverged run's, say): load the last checkpoint (Deblurrer.load) and fit that with "
                             "a lower learning rate")
        strategy = strategy or self._strategy or tf.distribute.get_strategy()
        replicas = int(strategy.num_replicas_in_sync)
        if self.batch_size % replicas:
            raise ValueError(f"batch_size {self.batch_size} is the global batch and must be a multiple of the "
                             f"{replicas} replicas of the strategy")
        train_src, val_src, train_for, val_for = self._datasets(data, validation, validation_split, max_pixels,
                                                                cache)
        if any(src is not None and src.kind != "pairs" for src in (train_src, val_src)):
            _check_blur_installed(self.blur, "fit")  # sharp photos are blurred with it (pairs need none)
        if strategy is not self._strategy and strategy is not tf.distribute.get_strategy():
            self._move_to(strategy)
        with strategy.scope():
            if not getattr(self.model, "compiled", False) or self.model.optimizer is None:
                self.compile()
            self._adopt_optimizer()  # a model compiled by the user: its learning rate is the one recorded
            if not self.model.optimizer.built:
                self.model.optimizer.build(self.model.trainable_variables)
        monitor = "val_loss" if val_for is not None else "loss"
        steps = steps_per_epoch or steps_for(len(train_src), self.patches_per_image, self.batch_size)
        run_start = len(self.history.get("loss", []))
        # only with a state folder: the digest of in-memory data reads all of it
        settings = None if state_dir is None else _settings(self, data, train_src, val_src, steps, monitor,
                                                            reduce_lr, early_stopping)
        restored = None
        if state_dir is not None and settings is not None and (state_dir / RESUME_NAME).is_file():
            if resume:
                with strategy.scope():
                    restored = self._restore_state(state_dir / RESUME_NAME, settings, run_start, end=run_start
                                                   + int(epochs), sources=(train_src, val_src))
            else:
                warnings.warn(_overwrite_message(state_dir / RESUME_NAME, settings, run_start, (train_src, val_src)),
                              stacklevel=2)
        if in_multi_worker_mode(strategy):  # every worker starts from the chief's weights
            broadcast_weights(self.model, strategy)
        end = run_start + int(epochs)
        first = run_start
        validation_seed = _validation_seed(self.seed, restored, self.training if run_start else None, self.history)
        if restored is not None:
            first = end if restored.get("stopped") else max(run_start, int(restored["epoch"]))
        self.training = {
            "data": _describe_data(data),
            "train_items": len(train_src),
            "validation_items": len(val_src) if val_src is not None else 0,
            "epochs": end,
            "steps_per_epoch": steps,
            "batch_size": self.batch_size,
            "patch_size": self.patch_size,
            "patches_per_image": self.patches_per_image,
            "loss": self.loss,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "validation_seed": validation_seed,
            "validation": None if validation is None else _describe_data(validation),
            "validation_split": None if validation is not None else validation_split,
            "early_stopping": int(early_stopping) if early_stopping else None,
            "reduce_lr": bool(reduce_lr),
        }
        if replicas > 1:
            self.training["replicas"] = replicas
        # what the run trains on: another device kind or CPU thread count computes in another order
        device = _device_kind()
        threads, deterministic = None if device == "GPU" else _cpu_threads(), _op_determinism()
        self.training["device"] = device
        if deterministic is not None:
            self.training["deterministic"] = deterministic
        if threads is not None:
            self.training["threads"] = threads
        changed = None if restored is None or first >= end else _machine_change(restored, device, threads,
                                                                                 deterministic)
        if changed:
            warnings.warn(f"resuming the training state in {state_dir} {changed}", stacklevel=2)
        # the file the weights started from (a fine-tuned preset's says which); a resumed run's is its state's
        init = restored.get("init") if restored is not None else self._loaded
        if init is not None:
            self.training["init"] = dict(init)
        if restored is not None:
            self.training["resumed_at_epoch"] = int(restored["epoch"])
        if first >= end:  # nothing left to do: the saved run got to `end` epochs, or stopped early
            assert restored is not None  # end > run_start
            self._end_resumed(restored, state_dir / RESUME_NAME if state_dir is not None else None, end)
            hist = keras.callbacks.History()
            hist.history, hist.epoch = {}, []
            self.training["epochs"] = len(self.history.get("loss", []))
            return hist
        scratch = None
        if not is_chief(strategy):  # TensorFlow's practice: non-chief workers write to a temporary folder
            scratch = Path(worker_temp_dir())
            checkpoint = None if checkpoint is None else scratch / Path(checkpoint).name
            state_dir = None if state_dir is None else scratch / "state"
        tracked: dict[str, Any] = {}
        if reduce_lr:
            tracked["reduce_lr"] = keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=math.sqrt(0.1), patience=5, min_lr=0.5e-6, verbose=0)
        if early_stopping:
            tracked["early_stopping"] = keras.callbacks.EarlyStopping(
                monitor=monitor, patience=int(early_stopping), restore_best_weights=True)
        cbs: list[Any] = list(tracked.values())
        own = _callbacks(self, checkpoint, monitor, state_dir=state_dir, run_start=run_start, end=end,
                         settings=settings, tracked=tracked, restored=restored, time_limit=time_limit,
                         best=_checkpoint_best(checkpoint, self.history, monitor, run_start))
        cbs.extend(own[:1])
        cbs.extend(callbacks)
        cbs.extend(own[1:])  # the time limit, then the training state, after every other callback
        val = None if val_for is None else val_for(validation_seed)
        try:
            hist = train(self.model, get_loss(self.loss), lambda ctx: train_for(first, end, steps, ctx),
                         strategy=strategy, global_batch=self.batch_size, steps=steps, initial_epoch=first,
                         epochs=end, validation=val, callbacks=cbs, verbose=verbose, cache=self._train_cache)
        except TrainingDivergedError:
            # Keras' on_train_end did not run: put early stopping's best weights back as it would have; and
            # let predict check the weights again (its traced functions may have been built before)
            es = tracked.get("early_stopping")
            if es is not None and es.best_weights is not None:
                self.model.set_weights(es.best_weights)
                self.training["weights_epoch"] = int(es.best_epoch) + 1
            self._infer_fn = self._split_fns = None
            raise
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        self.training["epochs"] = len(self.history.get("loss", []))
        es = tracked.get("early_stopping")
        if time_limit is not None and self.training["epochs"] < end and not (es and es.stopped_epoch):
            self.training["time_limit_reached"] = True
        if es is not None and es.best_weights is not None:
            self._at_best_epoch(int(es.best_epoch))  # Keras has put its weights back
        return hist

    def _at_best_epoch(self, best: int, weights: list[np.ndarray] | None = None) -> None:
        """The end of a run with early stopping: the model is its best epoch ``best`` (counted from 0 over this
        Deblurrer's epochs), as Keras' ``restore_best_weights`` leaves it at the end of any run, early stop or
        not. Puts ``weights`` (that epoch's) back when given (a resume that had nothing left to train: Keras did
        not run), records the epoch (``training["weights_epoch"]``) and gives the model that epoch's validation
        scores, not the last one's."""
        if weights is not None:
            self.model.set_weights(weights)
        self.training["weights_epoch"] = best + 1
        val = {k[4:]: v[best] for k, v in self.history.items() if k.startswith("val_") and best < len(v)}
        if val and all(math.isfinite(x) for x in val.values()):
            self.validation = val

    def _end_resumed(self, restored: dict, state_file: Path | None, end: int) -> None:
        """A resumed run with no epoch left to train ends as the saved run ended: with early stopping's best
        weights when its state holds them (the state keeps the last epoch's weights, to go on from). A run that
        stopped before ``end`` (an early stop) is not trained further: a warning says so."""
        saved = int(restored["epoch"])
        es = (restored.get("callbacks") or {}).get("early_stopping") or {}
        if restored.get("stopped") and saved < end:
            how = " early (early stopping)" if es.get("stopped_epoch") else ""
            warnings.warn(f"{state_file}: that run stopped{how} after epoch {saved}, and resume=True does not "
                          f"train a stopped run further: no epoch trained, though epochs asks for {end - saved} "
                          "more", stacklevel=_outside_stacklevel())
        if restored.get("best_weights") is not None:  # saved with early stopping's record, its best epoch
            self._at_best_epoch(int(es.get("best_epoch") or 0), restored["best_weights"])

    def _move_to(self, strategy: Any) -> None:
        """Rebuild the model inside ``strategy.scope()`` (mirrored variables), keeping its weights."""
        import keras

        weights = self.model.get_weights()
        with strategy.scope():
            clone = keras.models.clone_model(self.model)
            clone.set_weights(weights)
        loaded = self._loaded
        self.model = clone
        self._strategy, self._loaded = strategy, loaded  # the same weights

    def _restore_state(self, state_file: Path, settings: dict, run_start: int, end: int,
                       sources: tuple[Any, Any] = (None, None)) -> dict:
        """Load the training state saved by :func:`_callbacks` into this facade; returns its record.

        Refused (ValueError, before anything is loaded) for another run's state, and for a run that did not
        stop early but has trained more than ``end`` epochs: resuming would train nothing, and ``blurkit train``
        would then remove the state of a run that could go on. A damaged or crafted state is refused as a
        :class:`ModelFileError` naming the file, before any epoch runs: it gets :meth:`load`'s checks (its
        entries; its weights' declared sizes and links, read from the checked in-memory copy), and its
        callback record and best weights are checked against this model (:func:`_check_state_record`,
        :func:`_best_weights`). ``sources`` (the run's training and validation :class:`Source`) let a state
        written by an earlier release be compared by its own form of their digests (:func:`_saved_settings`)."""
        meta, archive = _open_model_file(state_file, keras_copy=True, state=True)
        assert archive is not None  # keras_copy=True
        problem = _resume_problem(state_file, meta, settings, run_start, sources)
        if problem is not None:
            raise ValueError(f"cannot resume from {state_file}: {problem}; give the saved run's settings and "
                             "data to continue it, or delete it (or use another checkpoint_dir) to start afresh")
        state = meta["resume"]
        if not state.get("stopped") and int(state["epoch"]) > end:
            done = int(state["epoch"]) - run_start
            raise ValueError(f"cannot resume from {state_file}: that run has trained {done} epochs, more than the "
                             f"{end - run_start} asked for; ask for more than {done} to go on")
        _check_weights(archive, state_file)
        best_weights = _best_weights(state_file, self.model)
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        try:
            self.model.load_weights(archive)  # the copy checked above (its name ends in .keras: _ArchiveCopy)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types; report them clearly
            raise ValueError(f"cannot resume from {state_file}: its weights do not fit this model "
                             f"({_keras_error(exc)})") from None
        self.history = _history_from_json(meta.get("history"))
        self.validation = dict(meta.get("validation") or {})
        state = dict(state)
        # from that run's training record: the weights it started from, what it trained on (_device_kind,
        # _cpu_threads, _op_determinism), and its validation seed (checked when the file was opened)
        training = meta.get("training") or {}
        for key in ("init", "threads", "device", "deterministic", "validation_seed"):
            state[key] = training.get(key)
        state["best_weights"] = best_weights
        return state

    # ---------------------------------------------------------------------------------- inference
    def _build_functions(self) -> None:
        """Trace-once functions of the current model (rebuilt whenever ``_infer_fn`` is reset to None).

        ``_infer_fn``: the model, clipped to [0, 1] inside the traced function. ``_split_fns``: for a model
        made of a blur ``estimator`` and a ``restorer`` sub-model (``wiener_unet``), ``(estimate, restore)``
        (image -> blur parameters; image, parameters -> clipped restoration), else None.

        Thread-safe: built once under a lock, into locals, and published ``_split_fns`` first, so a thread that
        sees ``_infer_fn`` also sees its ``_split_fns`` (predict on one instance from several threads, as a
        service does; before, a thread could find the split functions still None and restore blind, dropping
        a ``sigma`` it was given).
        """
        import tensorflow as tf

        with _BUILD_LOCK:
            if self._infer_fn is not None:  # another thread built them while this one waited
                return
            model = self.model
            broken = _broken_weights(model)
            if broken:  # every output would be NaN: black images, "done"
                raise ValueError(f"this model cannot restore images: {broken}")
            spec = tf.TensorSpec([None, None, None, self.channels], tf.float32)
            # float32 out whatever the model computes in: a model trained under a mixed-precision policy keeps
            # float16 layers when loaded, and a float16 output times 65535 (a 16-bit photo) overflowed to inf
            infer = tf.function(lambda x: tf.clip_by_value(tf.cast(model(x, training=False), tf.float32), 0.0, 1.0),
                                input_signature=[spec], reduce_retracing=True, autograph=False)
            split = None
            if {"estimator", "restorer"} <= {layer.name for layer in getattr(model, "layers", [])}:
                estimator, restorer = model.get_layer("estimator"), model.get_layer("restorer")
                pspec = tf.TensorSpec([None, int(estimator.outputs[0].shape[-1])], tf.float32)
                estimate = tf.function(lambda x: tf.cast(estimator(x, training=False), tf.float32),
                                       input_signature=[spec], reduce_retracing=True, autograph=False)
                restore = tf.function(
                    lambda x, p: tf.clip_by_value(tf.cast(restorer([x, p], training=False), tf.float32), 0.0, 1.0),
                    input_signature=[spec, pspec], reduce_retracing=True, autograph=False)
                split = (estimate, restore)
            self._split_fns = split
            self._infer_fn = infer

    def _check_process(self) -> None:
        """Refuse to run in a process forked after the model was made: TensorFlow's runtime does not survive
        ``os.fork`` (its threads stay in the parent), and the first call in the child would hang for ever."""
        if getattr(self, "_pid", os.getpid()) != os.getpid():
            raise RuntimeError(
                "this Deblurrer was made in another process, before this one forked from it, and TensorFlow "
                "cannot run in a forked child (it would hang): make the Deblurrer in the worker process itself, "
                "or start workers with multiprocessing's 'spawn' or 'forkserver' method, which send it as a "
                "saved file (gunicorn: no --preload)")

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """The model on a float32 batch, clipped to [0, 1] inside the traced function."""
        self._check_process()
        infer = self._infer_fn
        if infer is None:
            self._build_functions()
            infer = cast(Callable, self._infer_fn)
        return _finite(infer(np.ascontiguousarray(batch, dtype=np.float32)).numpy())

    def _split(self) -> tuple[Any, Any] | None:
        """``(estimate, restore)`` for an estimator + restorer model (see ``_build_functions``), else None."""
        self._check_process()
        if self._infer_fn is None:
            self._build_functions()
        return self._split_fns

    def _estimate_photo(self, x: np.ndarray, prepare: Callable[[np.ndarray], np.ndarray], estimate: Any
                        ) -> np.ndarray:
        """The blur parameters of a whole photo: the median of the estimates on ``estimate_tile`` tiles.

        The blur is taken as uniform over the photo. The tiles (as few as tiles of that side need, shrunk
        to cover the photo without overlap: the estimator reads each pixel about once) are laid out by
        :func:`~blurkit.tiling.plan_tiles`; a photo no larger than ``estimate_tile`` on either side is one
        tile, the whole photo. One estimate from many tiles is steadier than each tile's own (a tile of sky
        or wall says little about the blur), and neighbouring restoration tiles then get the same
        deconvolution, so nothing changes across their seams. A photo too small for the model's own reflect
        padding is padded here first, as :meth:`_restore_into` pads it.
        """
        from blurkit.tiling import pad_to_multiple, plan_tiles

        h, w = x.shape[:2]
        if 2 * min(h, w) <= self.tile_align:
            return estimate(pad_to_multiple(prepare(x), self.tile_align)[None]).numpy()
        plan = plan_tiles(h, w, tile=self.estimate_tile, overlap=0)
        found = [estimate(prepare(x[y : y + plan.tile_h, x0 : x0 + plan.tile_w])[None]).numpy()[0]
                 for y in plan.ys for x0 in plan.xs]
        return np.median(np.stack(found), axis=0).astype(np.float32)[None]

    def _wiener_layer(self, what: str) -> Any:
        """The Gaussian Wiener layer that the model's blur estimator feeds.

        Raises:
            ValueError: The model has none (it is not a ``wiener_unet``); the message starts with ``what``.
        """
        from blurkit.models.layers import GaussianWiener

        layers = {layer.name: layer for layer in getattr(self.model, "layers", [])}
        if "estimator" in layers and "restorer" in layers:
            for layer in layers["restorer"].layers:
                if isinstance(layer, GaussianWiener):
                    return layer
        name = (self.model_spec or {}).get("name", type(self.model).__name__)
        raise ValueError(f"{what}: this model ({name}) has no Gaussian blur estimator; only a model with a "
                         "blur estimator and a Gaussian Wiener step (wiener_unet, e.g. the gaussian-v1 preset) "
                         "has one")

    def _sigma_param(self, sigma: float, name: str = "sigma") -> float:
        """The estimator's raw sigma output that makes the model deconvolve a known Gaussian ``sigma``.

        Raises:
            ValueError: The model has no blur estimator feeding a Gaussian Wiener layer (``wiener_unet``),
                or ``sigma`` is not a number within the sigmas it was built for (the message names the
                argument ``name``).
        """
        wiener = self._wiener_layer(name)
        lo, hi = wiener.sigma_range
        if self.fixed_size:
            raise ValueError(f"{name}: a model with a fixed input size ({self.fixed_size} px) cannot be given "
                             "the blur")
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) \
                or not lo <= float(sigma) <= hi:
            raise ValueError(f"{name} must be a number from {lo:g} to {hi:g} (the Gaussian blur sigmas, in "
                             f"pixels, this model was built for), got {sigma!r}")
        return wiener.raw_sigma(sigma)

    def _restore_into(self, x: np.ndarray, out: np.ndarray, scale: float = 1.0, grey: bool = False,
                      sigma: float | None = None) -> None:
        """Restore ``x`` (H, W, C), any dtype with values in [0, ``scale``], into ``out`` (its dtype).

        C is the model's channels, or 1 with ``grey`` (a colour model on a grey image: the channel is
        repeated and the result averaged back). The conversion to float32 [0, 1] and back is done tile by
        tile (whole images up to ``tile_size**2`` pixels are one tile), so memory is bounded by the tile
        size whatever the image's size and dtype. ``sigma``: the raw sigma parameter (:meth:`_sigma_param`)
        that replaces the estimated one, or None (blind).
        """
        def prepare(crop: np.ndarray) -> np.ndarray:
            return _unit_tile(crop, scale, 3 if grey else 1)

        def finish(y: np.ndarray) -> np.ndarray:
            return _from_unit_tile(y, scale, out.dtype, grey)

        h, w = x.shape[:2]
        whole = self.fixed_size is None and h * w <= self.tile_size**2
        if whole and 2 * min(h, w) <= self.tile_align:
            # too small for the model's own reflect padding (PadToMultiple): pad it here instead
            from blurkit.tiling import pad_to_multiple

            padded = pad_to_multiple(prepare(x), self.tile_align)[None]
            if sigma is None:
                y = self._infer(padded)
            else:
                estimate, restore = cast(tuple, self._split())  # sigma=: checked to be a split model
                params = self._estimate_photo(x, prepare, estimate)
                params[:, 0] = sigma
                y = _finite(restore(padded, params).numpy())
            out[...] = finish(y[0, :h, :w])
            return
        split = None if self.fixed_size else self._split()
        if split is None:
            if whole:
                out[...] = finish(self._infer(prepare(x)[None])[0])
            else:
                tiled_apply_model(self, x, prepare=prepare, finish=finish, out=out)
            return
        estimate, restore = split
        params = self._estimate_photo(x, prepare, estimate)
        if sigma is not None:
            params[:, 0] = sigma

        def run(b: np.ndarray) -> np.ndarray:
            return _finite(restore(np.ascontiguousarray(b, np.float32), np.repeat(params, len(b), axis=0)).numpy())

        if whole:
            out[...] = finish(run(prepare(x)[None])[0])
        else:
            tiled_apply_model(self, x, prepare=prepare, finish=finish, out=out, fn=run)

    def _restore_channels(self, img: np.ndarray, out: np.ndarray, scale: float = 1.0,
                          sigma: float | None = None) -> None:
        """Restore an image with 1..4 channels (or none) into ``out`` using the model's channels."""
        squeeze = img.ndim == 2
        x, o = (img[..., None], out[..., None]) if squeeze else (img, out)
        c = self._colour_channels(x.shape[-1], "restore")  # grey+alpha / RGBA: alpha is kept as it is
        if c < x.shape[-1]:
            o[..., -1] = x[..., -1]
            x, o = x[..., :-1], o[..., :-1]
        if self.channels == c:
            self._restore_into(x, o, scale, sigma=sigma)
        elif self.channels == 1:
            for i in range(c):
                self._restore_into(x[..., i : i + 1], o[..., i : i + 1], scale, sigma=sigma)
        else:
            self._restore_into(x, o, scale, grey=True, sigma=sigma)

    def _colour_channels(self, c: int, verb: str) -> int:
        """The colour channels of an image with ``c`` channels (2 and 4 end in alpha), checked against the
        model's: the same number, any number for a grey model, or grey for a colour model."""
        if c in (2, 4):
            c -= 1
        if not (self.channels == c or self.channels == 1 or (self.channels == 3 and c == 1)):
            raise ValueError(f"cannot {verb} a {c}-channel image with a {self.channels}-channel model")
        return c

    def _predict_array(self, arr: np.ndarray, out: np.ndarray | None = None, ensemble: int = 1,
                       sigma: float | None = None, scale: float | None = None) -> np.ndarray:
        """Restore one (H, W) / (H, W, C) array into ``out`` (a new array like it by default), averaged over
        the first ``ensemble`` of the :data:`DIHEDRAL` flips/rotations; ``sigma`` as in
        :meth:`_restore_into`; ``scale`` maps the image to [0, 1] (None: from its dtype and values)."""
        if scale is None:
            scale = _unit_scale(arr)
        if sigma is None and self.fixed_size is None and self._split() is not None:  # the blur read off blind
            _warn_too_small(*arr.shape[:2])
        if out is None:
            out = np.empty(arr.shape, arr.dtype)
        with self._tile_bar(arr, ensemble):
            return self._predict_views(arr, out, ensemble, sigma, scale)

    @contextlib.contextmanager
    def _tile_bar(self, arr: np.ndarray, ensemble: int) -> Any:
        """While ``predict(progress=True)`` restores an image in tiles: a progress bar of its tiles (on stderr,
        removed when done), which the tiled passes advance."""
        from blurkit import _progress

        h, w = arr.shape[:2]
        if (not getattr(_TILES, "show", False) or (self.fixed_size is None and h * w <= self.tile_size**2)
                or _progress.logging()):  # a bar below another one: not in a log's lines
            yield
            return
        from tqdm.auto import tqdm

        from blurkit.tiling import plan_tiles

        plan = plan_tiles(h, w, tile=self.tile_size, overlap=self.tile_overlap, align=self.tile_align,
                          pad_to_tile=self.fixed_size is not None, fit=self.fixed_size is None)
        c = arr.shape[-1] if arr.ndim == 3 else 1
        passes = ensemble * (min(c, 3) if self.channels == 1 and c >= 3 else 1)  # a grey model: each colour
        bar = tqdm(total=len(plan.ys) * len(plan.xs) * passes, desc=f"{w}x{h} px", unit="tile", leave=False)
        _TILES.progress = bar.update
        try:
            yield
        finally:
            _TILES.progress = None
            bar.close()

    def _predict_views(self, arr: np.ndarray, out: np.ndarray, ensemble: int, sigma: float | None,
                       scale: float) -> np.ndarray:
        """:meth:`_predict_array`'s work: the image, or the average of its flipped/rotated restorations."""
        if ensemble == 1:
            self._restore_channels(arr, out, scale, sigma)
            return out
        acc = np.zeros(arr.shape, np.float32)
        for rot, flip in DIHEDRAL[:ensemble]:
            view = np.rot90(arr[:, ::-1] if flip else arr, rot)
            y = np.empty(view.shape, np.float32)
            self._restore_channels(view, y, scale, sigma)  # float32 in the image's own range (not rounded)
            y = np.rot90(y, -rot)
            acc += y[:, ::-1] if flip else y
        acc /= np.float32(ensemble)
        out[...] = _from_unit_tile(acc, 1.0, out.dtype)  # already in the image's range: rounded for integers
        return out

    @overload
    def predict(self, x: list[Any] | tuple[Any, ...], *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                ensemble: int = 1, sigma: float | None = None, progress: bool = False) -> list[Any]: ...

    @overload
    def predict(self, x: np.ndarray | _Encoded, *, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                ensemble: int = 1, sigma: float | None = None, progress: bool = False) -> np.ndarray: ...

    def predict(self, x: Any, *, max_pixels: int | None = DEFAULT_MAX_PIXELS, ensemble: int = 1,
                sigma: float | None = None, progress: bool = False) -> Any:
        """Deblur images of any size, dtype and range.

        Args:
            x: A path (file), an encoded file's bytes or a binary file object (a request's upload), an
                image array (H,W) / (H,W,C), a batch (N,H,W,C), or a list of those (sizes may differ).
                uint8 and uint16 images are scaled by their maximum; float images are
                taken as [0, 1] if they lie within it, else as [0, 255] (or [0, 65535]) images (a batch
                array as a whole, a list image by image), with half a range to spare for overshoot (a
                [0, 1] image with values up to 1.5 is still one; values outside the range are clipped).
            max_pixels: Refuse files (and bytes) with more pixels than this before decoding them (default
                :data:`~blurkit.data.io.DEFAULT_MAX_PIXELS`, about 13000 x 13000; None: no limit); arrays are
                decoded already and not checked.
            ensemble: Self-ensemble (the "x8" test-time augmentation of image restoration papers): restore
                the image under this many of the 8 flips/rotations (1, 2, 4 or 8; in the order of
                :data:`DIHEDRAL`: 2 adds the mirror image, 4 the two 180-degree turns), undo each and
                average. Costs ``ensemble`` times the time, plus two float32 arrays of the image's size; gains a
                little (the default preset on the validation photos, ``ensemble=8``: +0.11 / +0.12 /
                +0.09 dB PSNR at sigma 1 / 2 / 3; the model card's table).
            sigma: The Gaussian blur's sigma in pixels, when it is known (a measured or calibrated PSF, or a
                blur you made): the model deconvolves this sigma instead of the one it estimates (non-blind;
                the Wiener balance is still estimated from the image). Only for models with a blur
                estimator (``wiener_unet``, e.g. the ``gaussian-v1`` preset), within the sigmas they were
                built for (0.3 to 3.5 for the preset). See :meth:`estimate_sigma` for the model's own
                estimate. None (the default): blind; an image under :data:`MIN_ESTIMATE_SIDE` (48) pixels on
                a side is too small to read its blur off, and is restored with a warning saying so.
            progress: Show a progress bar of the tiles (on stderr, removed when the image is done) while an
                image larger than ``tile_size**2`` pixels is restored: a 12-megapixel photo takes half a
                minute on a laptop CPU.

        Returns:
            The restored image(s), in the input's form: same shape, dtype and value range; a path gives
            the restored array (uint8 or uint16 as decoded). The image is converted to float32 and back
            one tile at a time, so memory stays bounded by the tile size (plus the output itself).

        Raises:
            ValueError: A bad ``ensemble`` or ``sigma`` (checked before any image is read), or an image
                that cannot be restored (its shape is named).

        Examples:
            >>> import numpy as np
            >>> from blurkit import Deblurrer
            >>> d = Deblurrer.from_preset("gaussian-v1")
            >>> blurred = np.full((64, 64, 3), 0.5, np.float32)
            >>> d.predict(blurred, sigma=1.5).shape  # the blur is known: deconvolve sigma 1.5
            (64, 64, 3)
        """
        _need_tensorflow("predict")
        if isinstance(ensemble, bool) or ensemble not in (1, 2, 4, 8):
            raise ValueError(f"ensemble must be 1, 2, 4 or 8 (flips/rotations averaged), got {ensemble!r}")
        check_max_pixels(max_pixels)
        raw = None if sigma is None else self._sigma_param(sigma)
        with _tile_bars(progress):
            return self._predict(x, max_pixels, ensemble, raw)

    def _predict(self, x: Any, max_pixels: int | None, ensemble: int, sigma: float | None) -> Any:
        """:meth:`predict` after its arguments are checked; ``sigma`` the raw parameter or None."""
        if _is_encoded(x):
            with naming(_name_of(x)):
                return self._predict(_read(x, max_pixels, "predict"), None, ensemble, sigma)
        _check_images(x, "predict")
        if isinstance(x, (list, tuple)):
            return [self._predict(i, max_pixels, ensemble, sigma) for i in x]
        arr = np.asarray(x)
        if arr.ndim == 4:
            scale = _batch_scale(arr)  # one value range for the whole batch, as for one image
            out = np.empty(arr.shape, arr.dtype)
            for one, dst in zip(arr, out, strict=True):
                self._predict_array(one, dst, ensemble, sigma, scale)
            return out
        return self._predict_array(arr, ensemble=ensemble, sigma=sigma)

    @overload
    def estimate_sigma(self, x: list[Any] | tuple[Any, ...], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
                       ) -> list[Any]: ...

    @overload
    def estimate_sigma(self, x: _Encoded, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> float: ...

    @overload  # an array: a float for an image, a list for a batch
    def estimate_sigma(self, x: np.ndarray, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Any: ...

    def estimate_sigma(self, x: Any, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Any:
        """The Gaussian blur sigma, in pixels, that the model reads off an image (what :meth:`predict`
        deconvolves when it is not given a ``sigma``).

        One estimate per photo, made as :meth:`predict` makes it (see ``estimate_tile``). A grey image on a
        colour model is read as grey RGB; a colour image on a grey model gives the median of its channels'
        estimates; an alpha channel is ignored. An image under :data:`MIN_ESTIMATE_SIDE` (48) pixels on a
        side is estimated with a warning: its blur cannot be read off reliably.

        Args:
            x: A path, an encoded file's bytes or a binary file object, an image array (H,W) / (H,W,C), a
                batch (N,H,W,C), or a list of those.
            max_pixels: As in :meth:`predict`.

        Returns:
            The sigma of an image; a list of them for a batch or a list (a list holding a batch holds its
            list: one result per item, as :meth:`predict` gives).

        Raises:
            ValueError: The model has no blur estimator (only ``wiener_unet`` models have one), or an image
                it cannot read (its shape is named).

        Examples:
            >>> import numpy as np
            >>> from skimage import data
            >>> from blurkit import Deblurrer
            >>> from blurkit.classical import blur_gaussian
            >>> blurred = blur_gaussian(data.astronaut()[:256, :256], 2.0, seed=0)[0]
            >>> round(Deblurrer.from_preset("gaussian-v1").estimate_sigma(blurred), 1)
            2.0
        """
        _need_tensorflow("estimate_sigma")
        wiener = self._wiener_layer("estimate_sigma")  # a model without an estimator: refused before reading
        check_max_pixels(max_pixels)
        if _is_encoded(x):
            with naming(_name_of(x)):
                return self.estimate_sigma(_read(x, max_pixels, "estimate_sigma"))
        _check_images(x, "estimate_sigma")
        if isinstance(x, (list, tuple)):
            return [self.estimate_sigma(i, max_pixels=max_pixels) for i in x]
        arr = np.asarray(x)
        if arr.ndim == 4:
            scale = _batch_scale(arr)
            return [self._estimate_one(one, scale, wiener) for one in arr]
        return self._estimate_one(arr, _unit_scale(arr), wiener)

    def _estimate_one(self, arr: np.ndarray, scale: float, wiener: Any) -> float:
        """:meth:`estimate_sigma` of one (H, W) / (H, W, C) image that ``scale`` maps to [0, 1]; ``wiener`` the
        model's Wiener layer (its ``blur_parameters`` read the sigma off the estimator's output)."""
        _warn_too_small(*arr.shape[:2])
        img = arr[..., None] if arr.ndim == 2 else arr
        c = self._colour_channels(img.shape[-1], "read")
        img = img[..., :c]  # without alpha
        if self.channels == c:
            views, repeat = [img], 1
        elif self.channels == 1:
            views, repeat = [img[..., i : i + 1] for i in range(c)], 1
        else:  # grey on a colour model
            views, repeat = [img], 3
        estimate, _ = cast(tuple, self._split())  # called for split models only

        def prepare(crop: np.ndarray) -> np.ndarray:
            return _unit_tile(crop, scale, repeat)

        found = [float(np.asarray(wiener.blur_parameters(self._estimate_photo(v, prepare, estimate))[0])[0])
                 for v in views]
        return float(np.median(found))

    # --------------------------------------------------------------------------------- evaluation
    def test_pair(self, data: Any, index: int = 0, *, blur: Any = None, seed: int = 0,
                  max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, np.ndarray]:
        """The ``(blurred, sharp)`` float32 images that :meth:`evaluate` scores for item ``index``.

        Sharp photos are blurred at full resolution with the blur generator (``blur``, or the model's own),
        seeded by the item's index and ``seed`` (as :meth:`evaluate`'s ``seed``), not by the model's own
        seed, so every model evaluated with the same blur and ``seed`` sees the same inputs. ``max_pixels`` as
        in :meth:`evaluate`.
        """
        from blurkit.data.pipeline import Source, resolve_source

        _check_seed(seed)
        check_max_pixels(max_pixels)
        src = data if isinstance(data, Source) else resolve_source(data)
        blurred, sharp = self._load_pair(src, index, max_pixels)
        b, s, _ = self._test_pair(blurred, sharp, index, self.blur if blur is None else blur, seed)
        return b, s

    def _load_pair(self, src: Any, index: int, max_pixels: int | None = DEFAULT_MAX_PIXELS
                   ) -> tuple[np.ndarray | None, np.ndarray]:
        """Item ``index`` of ``src`` as read (files over ``max_pixels`` refused): ``(blurred or None, sharp)``.

        Raises:
            ImageReadError, OSError: A file cannot be read.
            ValueError: The item itself is bad (a pair of files of different sizes, a damaged record); the
                pipeline raises nothing else while reading an item, and training skips all three alike.
        """
        from blurkit.data.pipeline import _PatchMaker

        return _PatchMaker(src, None, 1, 1, self.channels, False, max_pixels)._load(index)

    def _test_pair(self, blurred: np.ndarray | None, sharp: np.ndarray, index: int, blur: Any, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, dict | None]:
        """:meth:`test_pair` of the item read by :meth:`_load_pair`, with the blur's drawn parameters (None
        for a given pair).

        A grey photo stays grey (blurred as such) for a colour model too: :meth:`predict` restores it as
        three equal channels and returns their mean, and that grey image, what a user gets, is scored.
        """
        from blurkit.data.io import to_float
        from blurkit.data.pipeline import to_channels

        grey = sharp.ndim == 2 or sharp.shape[-1] in (1, 2)  # grey, or grey + alpha (its alpha is dropped)
        channels = 1 if grey else self.channels
        s = to_channels(to_float(sharp), channels).astype(np.float32)
        if blurred is None:
            # the formula of the model's seed before evaluate had its own: seed 0 keeps the old inputs (those
            # of the shipped presets' published scores, whose seed is 0)
            out = blur(s, seed=int(seed) * 1_000_003 + index)
            b, params = out["image"], out["params"]
        else:
            b, params = to_channels(to_float(blurred), channels), None
        return np.asarray(b, np.float32), s, params

    def _eval_blur(self, blur: Any, blur_options: dict | None) -> Any:
        """The blur generator :meth:`evaluate` uses: ``blur`` (a name or an instance) or the model's own, with
        ``blur_options`` set."""
        from blurkit.blurs import Blur
        from blurkit.registry import BLURS, options_error

        if blur is None:
            if not blur_options:
                return self.blur
            try:
                return type(self.blur).from_config({**self.blur.get_config(), **blur_options})
            except TypeError as exc:
                raise options_error(BLURS.noun, self.blur.name, type(self.blur), blur_options, exc) from None
        if isinstance(blur, str):
            return BLURS.create(blur, **(blur_options or {}))
        if not isinstance(blur, Blur):
            raise TypeError(f"blur must be a blur generator's name or a Blur instance, got {blur!r}")
        if blur_options:
            raise ValueError("blur_options go with a blur name (or the model's own blur), not with a Blur "
                             "instance: build the instance with them")
        return blur

    def _check_known_sigma(self, blur: Any) -> None:
        """Check, before any image is read, that :meth:`evaluate` can give the model each image's true sigma."""
        if getattr(blur, "name", None) != "gaussian" or getattr(blur, "sigma_y", None) is not None:
            raise ValueError(f"known_sigma needs an isotropic Gaussian blur (the model deconvolves one sigma), "
                             f"got {blur!r}")
        for end in np.atleast_1d(blur.sigma):
            self._sigma_param(float(end), "the blur's sigma")

    def evaluate(self, data: Any, *, per_image: bool = False, max_images: int | None = None,
                 progress: bool = False, blur: Any = None, blur_options: dict | None = None,
                 ensemble: int = 1, known_sigma: bool = False, metrics: Sequence[str] = (), seed: int = 0,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS, crop_border: int = 0,
                 on_image: Callable[[dict, np.ndarray], Any] | None = None) -> dict[str, Any]:
        """Score the model against the blurred input, image by image at full resolution.

        Args:
            data: Sharp photos (blurred here with the blur generator, seeded by ``seed`` and the image's index
                so every model sees the same inputs) or pairs, in any form :meth:`fit` accepts.
            per_image: Include every image's scores.
            max_images: Only the first ``max_images`` images.
            progress: Show a progress bar.
            blur: The blur generator for sharp photos: a registered name or a :class:`~blurkit.blurs.Blur`;
                None (default): the model's own (:attr:`blur`, what it was trained on).
            blur_options: Options of ``blur`` given by name, or, with ``blur=None``, options that replace
                those of the model's own blur (e.g. ``{"sigma": 2.0}``: its Gaussian at one sigma, as the
                model card's table).
            ensemble: As in :meth:`predict` (1, 2, 4 or 8 flips/rotations averaged).
            known_sigma: Give the model each image's true blur sigma (``predict(sigma=...)``, non-blind)
                instead of letting it estimate one: how much of the error is the blind estimate's. Needs
                sharp photos, an isotropic Gaussian blur and a model with a blur estimator.
            metrics: Registered metric names (a plugin's, say) scored besides the five built-in ones.
            seed: Seeds the blur of sharp photos, with each image's index (0 to 2**32 - 1): the same ``seed``,
                blur and photos give the same inputs whatever the model (its own ``seed`` plays no part). 0
                gives the inputs of the model cards' scores. Given pairs ignore it.
            max_pixels: As in :meth:`fit`.
            crop_border: Pixels left out of the scores on every side of the image (BasicSR's
                ``crop_border``; default 0, none): each image is restored whole, then the sharp, restored and
                blurred images are cut by as much before every metric, so the scores leave out the border,
                where a restoration pays for the frame's edge (what the border mode invented beyond it).
                An image left smaller than SSIM's 11x11 window is skipped, as one too small to score.
            on_image: Called after each image is scored, with its row (as in ``per_image``) and the restored
                image that was scored (float32, the blurred input's shape, whole: not cut by
                ``crop_border``): to keep some for a figure, or to write them, without restoring them again.

        Returns:
            ``{"model": {metric: mean}, "blurred": {metric: mean}, "gain_db": psnr gain, "gain_images": k,
            "images": n, "skipped": [...], "blur": the blur generator (``serialize_blur``; None for pairs),
            "seed" (None for pairs), "ensemble", "known_sigma", "crop_border"}`` (plus ``"per_image"``: each image's name,
            ``index`` in ``data``, scores and, for sharp photos, ``"blur"``: the parameters drawn for it, e.g.
            its ``sigma``).
            Metrics: PSNR (dB, RGB, data range 1), SSIM (scikit-image convention), MSE, accuracy (within
            2/255) and channel_accuracy (the tutorial's measure). An unreadable file, or an image smaller than
            SSIM's 11x11 window, is warned about and listed in ``skipped`` (name, index, reason); the means
            are over the others; so is a pair of files of different sizes. ``gain_db`` is the mean of the
            images' PSNR gains over the ``gain_images`` of them whose two PSNRs are finite: a blurred image
            equal to its sharp one (sigma 0, a flat photo) has an infinite PSNR, and its row and the PSNR
            means say so, but it leaves the gain over the others measured (NaN when none is left). With
            every PSNR finite, it is the model's mean PSNR minus the blurred input's.

        Raises:
            ValueError: No image to evaluate, or none can be read (the message names them and says why); a
                bad ``ensemble``, ``blur_options``, ``known_sigma``, ``seed`` or ``crop_border`` setting
                (checked before any image is read).

        Examples:
            >>> from skimage import data
            >>> from blurkit import Deblurrer
            >>> d = Deblurrer.from_preset("gaussian-v1")
            >>> photos = [data.camera()[:128, :128]]
            >>> blind = d.evaluate(photos, blur_options={"sigma": 2.0})
            >>> known = d.evaluate(photos, blur_options={"sigma": 2.0}, known_sigma=True)
            >>> blind["gain_db"] > 0 and known["gain_db"] > 0
            True
        """
        from blurkit.blurs import serialize_blur
        from blurkit.data.pipeline import resolve_source
        from blurkit.registry import METRICS

        _need_tensorflow("evaluate")
        if isinstance(ensemble, bool) or ensemble not in (1, 2, 4, 8):
            raise ValueError(f"ensemble must be 1, 2, 4 or 8 (flips/rotations averaged), got {ensemble!r}")
        _check_seed(seed)
        check_max_pixels(max_pixels)
        if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, numbers.Integral)
                                       or max_images < 1):  # 0 said "no images to evaluate", 1.5 took 1
            raise ValueError(f"max_images must be a whole number of at least 1 (or None: all), got {max_images!r}")
        if isinstance(crop_border, bool) or not isinstance(crop_border, numbers.Integral) or crop_border < 0:
            raise ValueError(f"crop_border must be a whole number of pixels, 0 or more, got {crop_border!r}")
        crop_border = int(crop_border)
        src = resolve_source(data)
        if src.kind == "pairs" and (blur is not None or blur_options or known_sigma):
            raise ValueError("blur, blur_options and known_sigma are for sharp photos blurred here: the blur of "
                             "given pairs is fixed and unknown")
        if blur is None and src.kind != "pairs":  # the model's own blurs the photos (given pairs need none)
            _check_blur_installed(self.blur, "evaluate")
        blur = self._eval_blur(blur, blur_options)
        if known_sigma:
            self._check_known_sigma(blur)
        names = list(dict.fromkeys([*EVAL_METRICS, *([metrics] if isinstance(metrics, str) else metrics)]))
        fns = {m: METRICS.get(m) for m in names}  # an unknown name: UnknownComponentError, before any image
        n = len(src) if max_images is None else min(len(src), max_images)
        rows: list[dict[str, Any]] = []
        skipped: list[dict[str, Any]] = []
        with _tile_bars(progress):  # and a bar of a large photo's tiles, as predict(progress=True) shows
            self._score_all(src, n, rows, skipped, progress, max_pixels, blur, seed, known_sigma, ensemble, fns,
                            on_image, crop_border)
        if not rows:
            if skipped:
                why = "; ".join(row["error"] for row in skipped[:3])
                raise ValueError(f"none of the {n} images can be read or scored: {why}"
                                 + (f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""))
            raise ValueError("no images to evaluate")
        out: dict[str, Any] = {
            side: {m: float(np.mean([r[side][m] for r in rows])) for m in names}
            for side in ("model", "blurred")
        }
        # The gain is over the images whose two PSNRs are finite: one blurred image equal to its sharp one
        # (sigma 0, a flat photo) has an infinite PSNR, and would make the gain over all of them -inf.
        finite = [r["model"]["psnr"] - r["blurred"]["psnr"] for r in rows
                  if math.isfinite(r["model"]["psnr"]) and math.isfinite(r["blurred"]["psnr"])]
        out["gain_db"] = float(np.mean(finite)) if finite else math.nan
        out["gain_images"] = len(finite)
        out["images"] = len(rows)
        out["skipped"] = skipped
        out["blur"] = None if src.kind == "pairs" else serialize_blur(blur)
        out["seed"] = None if src.kind == "pairs" else int(seed)
        out["ensemble"], out["known_sigma"], out["crop_border"] = ensemble, bool(known_sigma), crop_border
        if per_image:
            out["per_image"] = rows
        return out

    def _score_all(self, src: Any, n: int, rows: list, skipped: list, progress: bool, max_pixels: int | None,
                   blur: Any, seed: int, known_sigma: bool, ensemble: int, fns: dict, on_image: Any,
                   crop: int = 0) -> None:
        """:meth:`evaluate`'s loop over the first ``n`` items of ``src``: appends each scored image's row to
        ``rows`` (and calls ``on_image`` with it and the restored image), and what it skips, and why, to
        ``skipped``; the scores leave out ``crop`` pixels on every side."""
        from blurkit._progress import bar
        from blurkit.data.io import ImageReadError, _advised
        from blurkit.metrics.functional import WIN_SIZE

        for i in bar(range(n), disable=not progress, desc="evaluate", unit="img"):
            try:
                blurred, sharp = self._load_pair(src, i, max_pixels)
            except (ImageReadError, OSError, ValueError) as exc:  # reported and skipped, as fit and deblur do
                # (only reading is guarded: the ValueErrors of reading are about this item, see _load_pair)
                why: str | None = _advised(str(exc), "Deblurrer.evaluate")
                skipped.append({"image": src.name(i), "index": i, "error": why})
                warnings.warn(f"skipping unreadable image: {why}", stacklevel=3)
                continue
            b, s, params = self._test_pair(blurred, sharp, i, blur, seed)
            lo, hi = min(float(s.min()), float(b.min())), max(float(s.max()), float(b.max()))
            why = None
            if min(s.shape[:2]) - 2 * crop < WIN_SIZE:  # SSIM cannot score it: skipped like an unreadable file
                why = (f"{src.name(i)}: {s.shape[0]}x{s.shape[1]} px is too small to score (SSIM needs at least "
                       f"{WIN_SIZE}x{WIN_SIZE}" + (f" left after the {crop} px border is cut" if crop else "") + ")")
            elif not (0.0 <= lo and hi <= 1.0):  # a float file (HDR, say): the metrics' data range is 1
                why = (f"{src.name(i)}: float samples outside [0, 1] (min {lo:g}, max {hi:g}) cannot be scored "
                       "with data range 1: scale or tone-map the file to [0, 1] first")
            if why is not None:
                skipped.append({"image": src.name(i), "index": i, "error": why})
                warnings.warn(f"skipping image: {why}", stacklevel=3)
                continue
            raw = self._sigma_param(cast(dict, params)["sigma"]) if known_sigma else None  # blurred here
            r = self._predict_array(b, ensemble=ensemble, sigma=raw, scale=1.0)  # b is float32 in [0, 1]
            cut = (slice(crop, s.shape[0] - crop), slice(crop, s.shape[1] - crop))  # the whole image at 0
            sc, rc, bc = s[cut], r[cut], b[cut]
            rows.append({"image": src.name(i), "index": i,
                         "model": {m: float(fn(sc, rc)) for m, fn in fns.items()},
                         "blurred": {m: float(fn(sc, bc)) for m, fn in fns.items()}}
                        | ({} if params is None else {"blur": params}))
            if on_image is not None:
                on_image(rows[-1], r)

    # ------------------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, Any]:
        """The JSON metadata stored beside the weights in a saved file."""
        from blurkit.blurs import serialize_blur

        return _jsonable({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model_spec,
            "blur": serialize_blur(self.blur),
            "components": self._components(),
            "facade": {
                "channels": self.channels, "loss": self.loss, "learning_rate": self.learning_rate,
                "patch_size": self.patch_size, "batch_size": self.batch_size,
                "patches_per_image": self.patches_per_image, "tile_size": self.tile_size,
                "tile_overlap": self.tile_overlap, "estimate_tile": self.estimate_tile, "seed": self.seed,
            },
            "training": self.training,
            "history": self.history,
            "validation": self.validation,
            "versions": _versions(),
            "saved": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        })

    def _components(self) -> dict[str, str | None]:
        """Where this model's builder and blur generator come from (a plugin names its package), so that a
        file loaded where one is missing can say what to install; a loaded file's entries are kept when the
        component is not installed here. The blur's is its class's (:func:`_provenance`): a blur that is not
        the one registered under its name is recorded as what it is, not as that one."""
        from blurkit.registry import BLURS, MODELS

        saved = getattr(self, "_saved_components", None) or {}
        name = (self.model_spec or {}).get("name")
        return {
            "model": _provenance(MODELS, name) or saved.get("model") if name else None,
            "blur": saved.get("blur") if getattr(self.blur, "missing", None)
            else _provenance(BLURS, self.blur.name, type(self.blur)),
        }

    def export(self, path: str | os.PathLike) -> Path:
        """Write the model as a TensorFlow SavedModel folder that restores images without blurkit.

        Endpoints ``serve`` (``uint8`` images ``(N, H, W, C)`` in and out), ``serve_float`` (``float32``
        in [0, 1]) and, for models with a blur estimator, ``serve_sigma`` (a known blur, as
        ``predict(sigma=...)``); each image restored as :meth:`predict` restores it (to the last bit, one
        image per call), whole or in tiles of this Deblurrer's ``tile_size``. Details: :mod:`blurkit.export`.

        Args:
            path: A new (or empty) folder.

        Returns:
            The folder.

        Raises:
            ValueError: A fixed-input-size model, or ``path`` is not a new or empty folder.

        Example:
            >>> import tempfile, os
            >>> import numpy as np
            >>> import tensorflow as tf
            >>> from blurkit import Deblurrer
            >>> d = Deblurrer(model="unet", model_options={"width": 8, "depth": 2, "blocks": 1})
            >>> folder = d.export(os.path.join(tempfile.mkdtemp(), "deblur"))
            >>> served = tf.saved_model.load(str(folder))  # what a service without blurkit does
            >>> photo = np.random.default_rng(0).integers(0, 256, (1, 40, 50, 3), dtype=np.uint8)
            >>> np.array_equal(served.serve(photo).numpy()[0], d.predict(photo[0]))
            True
        """
        from blurkit.export import export_saved_model

        return export_saved_model(self, path)  # which checks Keras' backend first

    def save(self, path: str | os.PathLike, *, weights_dtype: str = "float32") -> Path:
        """Write one ``.keras`` file (weights, architecture and blurkit metadata).

        The optimizer's state is left out (with Adam it would double the file's size for nothing a user of
        the model needs); training resumes from its own state files (``fit(checkpoint_dir=...)``), which
        keep it.

        Args:
            path: The file to write (``.keras``).
            weights_dtype: ``"float32"`` (default), or ``"float16"`` to store the float32 weights at half
                precision: half the file size, for shipping a model. The model still computes in float32:
                :meth:`load` (Keras) casts the stored values into its float32 variables. Each weight is
                rounded to 11 significant bits (relative error at most 2**-11; weights below 6e-5 keep less).
                On a 5.6-million-parameter ``wiener_unet`` (a 22.5 MB file, 10.5 MB so stored) that moved the
                restoration of a blurred astronaut by at most 9.4e-4 (on [0, 1]) and its PSNR by 0.001 dB.
                Weights beyond float16's range (65504) raise ``ValueError``.

        The file is written to a hidden temporary file in the same folder (``.NAME.XXXXXXXX.tmp.keras``),
        fsynced and renamed into place, so an interrupted save (even ``kill -9`` or a power cut) never
        damages an existing file: ``path`` is the old file or the complete new one. The file gets the
        usual permissions (``0666`` minus the umask). Temporary files of this pattern left by killed saves
        are removed by the next save to the same path once they are older than
        :data:`blurkit.data.io.STALE_TEMP_SECONDS` (10 minutes; younger ones may belong to a save still
        running in another process).

        The file records the blur by its ``name`` and where its class comes from. A blur that is not the one
        registered under its name (a subclass never registered, or the built-in while your own is registered
        in its place) is recorded as what it is, with a ``UserWarning``: :meth:`load` rebuilds it only where
        the blur registered under that name comes from the same place.

        Example:
            >>> import tempfile, os
            >>> import numpy as np
            >>> from blurkit import Deblurrer
            >>> d = Deblurrer(model="unet", model_options={"width": 8, "depth": 2, "blocks": 1})
            >>> path = d.save(os.path.join(tempfile.mkdtemp(), "mine.keras"))
            >>> again = Deblurrer.load(path)
            >>> photo = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
            >>> np.array_equal(again.predict(photo), d.predict(photo)), again.blur.name
            (True, 'gaussian')
        """
        if weights_dtype not in ("float32", "float16"):
            raise ValueError(f"weights_dtype must be 'float32' or 'float16', got {weights_dtype!r}")
        _check_savable(self.model)
        _warn_unregistered_blur(self.blur, path)
        return self._write(path, weights_dtype=weights_dtype)

    def _write(self, path: str | os.PathLike, *, resume: dict | None = None,
               entries: dict[str, bytes] | None = None, weights_dtype: str = "float32") -> Path:
        """:meth:`save`, optionally adding a ``resume`` metadata section and extra archive entries, without
        :func:`_check_savable` (``fit`` runs it once when it starts, for the checkpoints and training state its
        callbacks write through here: the model's layers do not change while it trains)."""
        from blurkit.data.io import (
            _about_target,
            _fsync_folder,
            _remove_stale_temps,
            make_parent,
            replace_file,
            temp_prefix,
        )

        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"model files end in .keras, got {path.name!r}")
        broken = _broken_weights(self.model)
        if broken:
            raise ValueError(f"not saving {path.name}: {broken}")
        make_parent(path, "save")
        meta = self.metadata()
        if weights_dtype != "float32":
            meta["weights_dtype"] = weights_dtype
        if resume is not None:
            meta["resume"] = _jsonable(resume)
        text = json.dumps(meta, indent=1, allow_nan=False)
        _remove_stale_temps(path.with_name(path.stem), _TEMP_SUFFIX)
        try:
            fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.stem), suffix=_TEMP_SUFFIX, dir=path.parent)
        except OSError as exc:  # it names the temporary file it tried to make
            raise _about_target(exc, path) from exc
        os.close(fd)
        optimizer = getattr(self.model, "optimizer", None)
        try:
            if resume is None and optimizer is not None:
                self.model.optimizer = None  # weights only: Adam's two moments per weight stay out
            try:
                self.model.save(tmp)
            finally:
                if optimizer is not None:
                    self.model.optimizer = optimizer
            if weights_dtype != "float32":
                _store_weights_as(tmp, weights_dtype)
            with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(METADATA_NAME, text)
                for name, data in (entries or {}).items():
                    zf.writestr(name, data)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            replace_file(tmp, path)  # the permissions open(path, "w") would have left, not mkstemp's 0600
        except OSError as exc:  # a full disk: Keras' error names no file, or the temporary one
            if exc.filename in (None, tmp) or exc.filename2 == tmp:
                raise _about_target(exc, path) from exc
            raise
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _fsync_folder(path.parent)
        return path

    @staticmethod
    def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
        """Read and check the blurkit metadata of a model file without loading the model.

        Raises:
            ModelFileError: Missing, not a zip, damaged, unsafe entry names, or not a blurkit model.
        """
        return _open_model_file(path)[0]

    @classmethod
    def load(cls, path: str | os.PathLike, *, compile: bool = False) -> Deblurrer:
        """Load a file written by :meth:`save`, never executing code from it (Keras safe mode).

        Args:
            path: The ``.keras`` file.
            compile: Also compile the model for further training (:meth:`compile`: the saved loss, Adam at
                the saved learning rate). Files hold no optimizer state, so the optimizer starts afresh
                (:meth:`fit` with ``checkpoint_dir`` is what resumes a run exactly). :meth:`fit` compiles an
                uncompiled model itself.

        Raises:
            ModelFileError: The file is not a blurkit model, is damaged, or needs a blur, model or layer
                that is not installed (the message names it).

        Example:
            A round trip is :meth:`save`'s example; a file that is not a model is refused by name:

            >>> import tempfile, os
            >>> from blurkit import Deblurrer
            >>> path = os.path.join(tempfile.mkdtemp(), "notes.keras")
            >>> _ = open(path, "w").write("not a model")
            >>> try:
            ...     Deblurrer.load(path)
            ... except Exception as exc:
            ...     print(type(exc).__name__, str(exc).startswith(path))
            ModelFileError True
        """
        _import_keras()
        import blurkit.models.layers  # noqa: F401  (registers blurkit's custom layers)
        from blurkit.blurs import deserialize_blur
        from blurkit.registry import BLURS, BUILTIN, UnknownComponentError

        meta, archive = _open_model_file(path, keras_copy=True)
        assert archive is not None  # keras_copy=True
        if Path(path).suffix != ".keras":  # Keras reads .keras files only, and only in lower case
            raise ModelFileError(f"{path}: Keras loads model files whose name ends in .keras (lower case): "
                                 "rename it")
        spec = meta.get("model")
        components = meta.get("components") or {}
        # The model builder need not be installed: the architecture is in the file (its name is only
        # recorded). Custom layers must be, which _check_keras_config says.
        saved_blur = meta.get("blur")
        if not isinstance(saved_blur, dict) or not isinstance(saved_blur.get("name"), str):
            raise ModelFileError(f"{path}: its metadata holds no blur generator (got {_shown_text(saved_blur)})")
        version = saved_blur.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or not isinstance(saved_blur.get("config", {}),
                                                                                       dict):
            raise ModelFileError(f"{path}: damaged blurkit metadata (blur {_shown_text(saved_blur)})")
        recorded = components.get("blur")
        try:
            blur = deserialize_blur(saved_blur)
        except UnknownComponentError:
            # a plugin that is installed but could not be loaded: installing it would not help; say why
            failed = "; ".join(f"{f.source}: {f.reason}" for f in BLURS.failures() if f.name == saved_blur["name"])
            blur = _missing_blur(saved_blur, path, recorded, failed=failed or None)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # the blur of that name is installed but cannot rebuild this config: another plugin's blur of the
            # name, a version it cannot upgrade, a damaged config, or, for a built-in, a value its checks refuse
            # that an older blurkit took (a motion length of 600: kernels are capped at 513 px since 2026-12-06).
            # The model itself is intact.
            installed = _provenance(BLURS, saved_blur["name"])
            if (installed == BUILTIN and type(exc) is ValueError and _source_key(recorded) in (None, _source_key(BUILTIN))
                    and version <= int(getattr(BLURS.entry(saved_blur["name"]).obj, "version", 1))):
                blur = _missing_blur(saved_blur, path, recorded, refused=str(exc))
            else:
                blur = _missing_blur(saved_blur, path, recorded, f"{installed}: {exc}" if installed else str(exc))
        else:
            # The blur installed under the name rebuilt the config, but it is another one than the file's when
            # it comes from elsewhere (another plugin's, the built-in where the user's own was saved): training
            # with it would use another degradation than the file names, silently. Files that record no
            # provenance (older blurkit versions) are rebuilt as they were.
            installed = _provenance(BLURS, saved_blur["name"])
            key = _source_key(recorded)
            if key is not None and key != _source_key(installed):
                blur = _missing_blur(saved_blur, path, recorded, installed=installed)
        config = _check_keras_config(path, components.get("model"), archive)
        counted = _check_variable_sizes(config, _check_weights(archive, path), path)
        facade = _checked_facade(meta.get("facade") or {}, path)
        try:
            # compiled below, by blurkit: Keras' compile=True warns about the optimizer state files lack
            model = _keras_load(archive, path)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types; report them all clearly
            raise ModelFileError(f"{path}: Keras could not load the model safely: {_keras_error(exc)}") from None
        broken = _broken_weights(model) or _model_problem(model)
        if broken:
            raise ModelFileError(f"{path}: {broken}; it cannot restore images")
        _remember_count(counted)
        d = cls.__new__(cls)
        d._from_parts(model, blur, spec, facade)
        _bound_tiles(d, path)
        d.history = _history_from_json(meta.get("history"))
        d.validation = meta.get("validation") or {}
        d.training = meta.get("training") or {}
        d.source = str(path)
        d._loaded = {"file": str(path), "sha256": _sha256(path)}
        d._saved_components = components
        if compile:
            d.compile()
        return d

    def _from_parts(self, model: Any, blur: Any, spec: dict | None, facade: dict) -> None:
        self.blur = blur
        self.loss = facade.get("loss", "mse")
        self.learning_rate = float(facade.get("learning_rate", 1e-3))
        self._lr_asked, self._optimizer = None, None
        self.batch_size = int(facade.get("batch_size", 16))
        self.patches_per_image = int(facade.get("patches_per_image", 4))
        self.seed = int(facade.get("seed", 0))
        self.patch_size = int(facade.get("patch_size", 96))
        self.tile_size = int(facade.get("tile_size", DEFAULT_TILE_SIZE))
        self.tile_overlap = int(facade.get("tile_overlap", DEFAULT_TILE_OVERLAP))
        self.estimate_tile = int(facade.get("estimate_tile", DEFAULT_ESTIMATE_TILE))
        self.model = model  # as in __init__: channels, fixed_size and what a fixed size dictates
        self.model_spec = spec

    @classmethod
    def from_preset(cls, name: str = DEFAULT_PRESET) -> Deblurrer:
        """Load a pretrained model shipped inside the package (nothing is downloaded).

        The preset runs with this library's inference settings (``DEFAULT_TILE_SIZE``,
        ``DEFAULT_TILE_OVERLAP``, ``DEFAULT_ESTIMATE_TILE``), not the values its file recorded when it was
        saved: they belong to the library version, not to the trained weights.

        Args:
            name: ``"gaussian-v1"`` (the default, for clean photos) or ``"gaussian-v1-noisy"`` (for photos
                with sensor noise or JPEG compression); :func:`blurkit.presets.choose_preset` picks one of
                the two for a given photo, as ``blurkit deblur`` does. ``blurkit list presets`` (or
                :func:`blurkit.presets.list_presets`) lists those installed.

        Raises:
            KeyError: No such preset; the message lists the shipped ones and the closest name.

        Example:
            >>> from skimage import data
            >>> from blurkit import Deblurrer
            >>> from blurkit.classical import blur_gaussian
            >>> from blurkit.metrics import psnr
            >>> sharp = data.astronaut()[100:228, 150:278]  # her face
            >>> blurred = blur_gaussian(sharp, 2.0, seed=0)[0]
            >>> restored = Deblurrer.from_preset("gaussian-v1").predict(blurred)
            >>> round(psnr(blurred, sharp), 1), round(psnr(restored, sharp), 1)
            (24.8, 31.5)
        """
        from blurkit.presets import preset_path

        d = cls.load(preset_path(name))
        if d._loaded is not None:  # the preset by name (its install path is this machine's)
            d._loaded = {"preset": name, "sha256": d._loaded["sha256"]}
        if d.fixed_size is None:
            d.tile_size, d.tile_overlap = DEFAULT_TILE_SIZE, DEFAULT_TILE_OVERLAP
        d.estimate_tile = DEFAULT_ESTIMATE_TILE
        return d

    # ------------------------------------------------------------------------------------ figures
    def plot_history(self, path: str | os.PathLike) -> Path:
        """Write the training curves (loss and PSNR per epoch, training vs validation) to a PNG."""
        from blurkit.plots import plot_history

        return plot_history(self.history, path, loss=self.loss if isinstance(self.loss, str) else None)

    def __reduce__(self) -> tuple:
        """Pickling, as multiprocessing's ``spawn`` and ``forkserver`` (the default on Windows and macOS) send
        an object to a worker: the Deblurrer travels as the bytes of the file :meth:`save` writes and is
        rebuilt by :meth:`load` (safe mode: the bytes execute no code), its settings, history and weights
        kept; a compiled optimizer's state stays behind, as in a saved file.

        Example:
            >>> import pickle
            >>> import numpy as np
            >>> from blurkit import Deblurrer
            >>> d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1}, tile_size=256)
            >>> again = pickle.loads(pickle.dumps(d))
            >>> photo = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
            >>> np.array_equal(again.predict(photo), d.predict(photo)), again.tile_size
            (True, 256)
        """
        import tempfile

        _check_savable(self.model)
        with tempfile.TemporaryDirectory() as tmp:  # no warning of an unregistered blur: a path nobody chose
            path = self._write(Path(tmp) / "deblurrer.keras")
            data = path.read_bytes()
        return _unpickle, (data, self.source, self._loaded)

    def __copy__(self) -> Deblurrer:
        """A shallow copy, as for any object (the same model); pickling alone goes through a saved file."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo: dict) -> Deblurrer:
        """A deep copy of every attribute, as for any object (the model, its optimizer and compile state
        included); pickling alone goes through a saved file."""
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            # the traced functions run this instance's model (and cannot be copied): the copy traces its own
            setattr(new, key, None if key in ("_infer_fn", "_split_fns") else {} if key == "_train_cache"
                    else copy.deepcopy(value, memo))
        return new

    def __repr__(self) -> str:
        name = self.model_spec["name"] if self.model_spec else type(self.model).__name__
        return (f"Deblurrer(model={name!r}, blur={getattr(self.blur, 'name', type(self.blur).__name__)!r}, "
                f"channels={self.channels}, params={self.model.count_params():,})")


def _import_keras() -> None:
    """Import Keras, saying what to do when its configured backend is not installed (a keras.json naming
    ``jax`` on a machine without JAX failed with Keras' own "No module named 'jax'")."""
    try:
        import keras  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name not in ("jax", "jaxlib", "torch"):
            raise
        raise ImportError(f"Keras is set to run on {exc.name!r} (KERAS_BACKEND, or \"backend\" in "
                          "~/.keras/keras.json), which is not installed; blurkit runs on Keras' TensorFlow "
                          "backend: set KERAS_BACKEND=tensorflow before Keras is imported") from None


def _need_tensorflow(method: str) -> None:
    """Refuse, by name, to run ``Deblurrer.<method>`` on a Keras backend other than TensorFlow: restoring and
    training are ``tf.function`` and ``tf.data`` code, which failed deep in Keras under JAX ("Cannot convert a
    symbolic tf.Tensor to a numpy array"). Building, loading and saving a model work on any backend (the
    presets' GPU recipe trains with JAX, outside the Deblurrer)."""
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(f"Deblurrer.{method} runs on Keras' TensorFlow backend; this process's Keras runs on "
                           f"{backend!r} (KERAS_BACKEND, or \"backend\" in ~/.keras/keras.json): set "
                           "KERAS_BACKEND=tensorflow before Keras is imported")


def _seeded_build(builder: Callable[..., Any], options: dict, seed: int) -> Any:
    """``builder(**options)`` with Keras' random state seeded (``keras.utils.set_random_seed``), so the initial
    weights depend on ``seed`` only; Python's and NumPy's global random states are put back afterwards."""
    import random

    import keras

    from blurkit.models._checks import channels_last

    saved = random.getstate(), np.random.get_state()
    try:
        keras.utils.set_random_seed(int(seed))
        with channels_last():  # a plugin's builder too (the built-in ones are already)
            return builder(**options)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])


#: The exception types :func:`_build_error` makes again with the model's name and options in their message:
#: built-in ones whose only state is that message (not KeyError, which quotes it; not OSError, AttributeError
#: or ImportError, whose errno, filename, name ... would be lost).
_REBUILT_ERRORS = (ValueError, TypeError, RuntimeError, NotImplementedError, RecursionError, IndexError,
                   ArithmeticError, ZeroDivisionError, OverflowError, FloatingPointError, AssertionError)


def _build_error(name: str, options: dict, exc: Exception) -> Exception:
    """The exception to raise when model builder ``name`` called with ``options`` raised ``exc``: for a built-in
    type of :data:`_REBUILT_ERRORS` holding its message alone, one of the same type whose message names the
    model and its options (a builder's own, ``'<=' not supported between instances of 'str' and 'int'``, says
    neither); otherwise ``exc`` itself, unchanged but for that text as a note (its type, attributes and
    traceback kept)."""
    text = f"model {name!r} with options {options!r} failed to build: {type(exc).__name__}: {exc}"
    better = None
    if type(exc) in _REBUILT_ERRORS and len(exc.args) <= 1 and not vars(exc):  # vars: attributes, notes
        better = type(exc)(text)
        if str(better) != text:
            better = None
    if better is None:
        exc.add_note(text)
        return exc
    return better


def _is_encoded(x: Any) -> bool:
    """Whether ``x`` is an image still to decode: a path, an encoded file's bytes, or a binary file object."""
    return isinstance(x, (str, os.PathLike, bytes, bytearray, memoryview)) or callable(getattr(x, "read", None))


def _check_images(x: Any, method: str) -> None:
    """Refuse what :meth:`Deblurrer.predict` (``method``) would misread, naming what was given: nested lists
    (``img.tolist()``: each row, then each pixel, was taken as an image) and iterators such as generators
    (``np.asarray`` made a 0-d object array of them); both ended in "expected an image ... got shape ()"."""
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], (list, tuple, int, float, np.number)):
        raise TypeError(f"{method}: {type(x).__name__}s of {type(x[0]).__name__}s are not images: a list is of "
                        "images (arrays, paths, ...); pass np.asarray(...) for one image as nested lists")
    if isinstance(x, Iterator):
        raise TypeError(f"{method} takes an image, a path or a list of them, not a {type(x).__name__}: pass "
                        "list(...) of it")


def _read(x: Any, max_pixels: int | None, method: str = "predict") -> np.ndarray:
    """Decode what :func:`_is_encoded` accepts, as :func:`blurkit.data.io.read_image` reads a file, for the
    Deblurrer ``method`` named in the messages: an image over ``max_pixels`` is refused with the advice to
    pass a larger ``max_pixels`` to that method (not to ``read_image``, which the user did not call)."""
    from blurkit.data.io import ImageReadError, _advised, decode_image, read_image

    kw: dict[str, Any] = {"max_pixels": max_pixels}
    try:
        if isinstance(x, (str, os.PathLike)):
            return read_image(x, **kw)
        if isinstance(x, (bytes, bytearray, memoryview)):
            return decode_image(bytes(x), **kw)
        if isinstance(x, io.TextIOBase):  # read() would fail first, on a PNG's 0x89 byte (UnicodeDecodeError),
            # before the check below could say what is wrong (not from `mode`: a zip member's is 'r', gzip's an int)
            raise TypeError(f"a file object given to {method} must be opened in binary mode ('rb')")
        data = x.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"a file object given to {method} must be opened in binary mode "
                            f"(got {type(data).__name__})")
        return decode_image(bytes(data), name=str(getattr(x, "name", "<stream>")), **kw)
    except ImageReadError as exc:
        # io's advice names read_image
        reason = _advised(exc.reason, f"Deblurrer.{method}")
        if reason == exc.reason:
            raise
        raise ImageReadError(exc.path, reason) from None


def _preset_hint(path: Path) -> str:
    """For a missing model file named exactly as a shipped preset: the way to load that preset."""
    from blurkit.presets import list_presets

    name = str(path)
    return f'; {name} is a preset: Deblurrer.from_preset("{name}")' if name in list_presets() else ""


def tiled_apply_model(
    d: Deblurrer,
    x: np.ndarray,
    *,
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
    finish: Callable[[np.ndarray], np.ndarray] | None = None,
    out: np.ndarray | None = None,
    fn: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`~blurkit.tiling.tiled_apply` with the facade's model and tiling settings.

    Fully convolutional models get tiles fitted to the image (fewest tiles of at most ``tile_size``,
    shrunk to the least overlap); fixed-input models get tiles of exactly their size, four per call.
    ``prepare``, ``finish`` and ``out`` are passed on (per-tile conversion, per-band output); ``fn``
    replaces the model call (default: the facade's ``_infer``).
    """
    from blurkit.tiling import tiled_apply

    return tiled_apply(fn or d._infer, x, tile=d.tile_size, overlap=d.tile_overlap,
                       batch=4 if d.fixed_size else 1, pad_to_tile=d.fixed_size is not None,
                       align=d.tile_align, fit=d.fixed_size is None, prepare=prepare, finish=finish, out=out,
                       progress=getattr(_TILES, "progress", None))


def _tile_align(model: Any) -> int:
    """The model's downsampling factor: the largest ``PadToMultiple`` multiple in it (1 if none).

    Strided models are shift-invariant only by multiples of it, so tiles must start on such multiples
    for the tiled result to match the whole-image one.
    """
    align, stack = 1, list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        if type(layer).__name__ == "PadToMultiple":
            align = max(align, int(getattr(layer, "multiple", 1)))
        stack.extend(getattr(layer, "layers", []))
    return align


@contextlib.contextmanager
def _tile_bars(progress: bool) -> Iterator[None]:
    """Show a bar of a large photo's tiles (see :meth:`Deblurrer._tile_bar`) in the block, in this thread only
    (another thread's predict on the same Deblurrer must not draw one)."""
    _TILES.show = bool(progress)
    try:
        yield
    finally:
        _TILES.show = False


@contextlib.contextmanager
def naming(name: str | os.PathLike | None) -> Iterator[None]:
    """Name the image that :meth:`Deblurrer.predict` restores inside the block (in this thread), so that its
    warnings say which file they are about: a batch restores arrays decoded elsewhere. ``None`` changes nothing.

    Examples:
        >>> import warnings
        >>> from blurkit.deblurrer import _warn_too_small
        >>> with naming("shots/tiny.png"), warnings.catch_warnings(record=True) as said:
        ...     warnings.simplefilter("always")
        ...     _warn_too_small(30, 40)
        >>> str(said[0].message).split(" the blind")[0]
        'a 30x40 image is too small to read its blur off reliably (shots/tiny.png;'
    """
    if name is None:  # nothing to say: an outer name stays
        yield
        return
    token = _NAME.set(os.fsdecode(name))
    try:
        yield
    finally:
        _NAME.reset(token)


def _name_of(x: Any) -> str | None:
    """The name of what :func:`_is_encoded` accepts: a path as given, a file object's ``name``, else None."""
    if isinstance(x, (str, os.PathLike)):
        return os.fsdecode(x)
    name = getattr(x, "name", None)
    return name if isinstance(name, str) else None


def _warn_too_small(h: int, w: int) -> None:
    """Warn, at the caller's line outside blurkit, that the blur of an ``h`` x ``w`` image is read off blind
    below :data:`MIN_ESTIMATE_SIDE` (once per image, whatever the views, channels or tiles it takes), naming
    its file where :func:`naming` (or a path given to ``predict``) says it."""
    if min(h, w) < MIN_ESTIMATE_SIDE:
        name = _NAME.get()
        warnings.warn(f"a {h}x{w} image is too small to read its blur off reliably ({f'{name}; ' if name else ''}"
                      f"the blind estimate needs "
                      f"about {MIN_ESTIMATE_SIDE} pixels on each side): give its sigma (predict(..., sigma=S), "
                      "blurkit deblur --sigma S; to score: known_sigma=True, --known-sigma)",
                      stacklevel=_outside_stacklevel())


def _outside_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside the blurkit package."""
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _unit_scale(arr: np.ndarray) -> float:
    """Check one image's shape ((H, W) or (H, W, C) with C in 1..4, not empty), dtype and values; the scale
    that maps it to [0, 1] (no copy of the image is made).

    uint8 is 255, uint16 65535; other integers 255 when their maximum is at most 255, else 65535; floats
    1, 255 or 65535, the smallest whose range their maximum fits in with half a range to spare: values a little
    beyond it (the overshoot of a cubic resize or a sharpening, e.g. 1.003 in a [0, 1] image) are clipped as
    the image is read, instead of one pixel above 1 making it a [0, 255] image.
    """
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4)):
        raise ValueError(f"expected an image (H,W), (H,W,C) with C in 1..4, or a batch; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"empty image of shape {arr.shape}")
    dtype = arr.dtype
    if dtype == np.bool_ or dtype.kind not in "uif":
        raise ValueError(f"unsupported image dtype {dtype}; use uint8, uint16 or float")
    if dtype.kind in "ui":
        if dtype not in (np.uint8, np.uint16):
            least, most = int(arr.min()), int(arr.max())
            if least < 0 or most > 65535:
                raise ValueError(f"integer image of dtype {dtype} has values outside [0, 65535] "
                                 f"({least}..{most})")
        return 255.0 if dtype == np.uint8 or (dtype != np.uint16 and int(arr.max()) <= 255) else 65535.0
    low, high = arr.min(), arr.max()  # NaN propagates through min/max: no boolean copy of the image needed
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("image contains NaN or infinite values")
    lo, hi = float(low), float(high)
    scale = next((r for r in (1.0, 255.0, 65535.0) if hi <= 1.5 * r), None)
    if scale is None or lo < -0.5 * scale:
        raise ValueError(f"float images must lie in [0, 1], [0, 255] or [0, 65535] (give or take half the range, "
                         f"clipped), got {lo}..{hi}")
    return scale


def _batch_scale(arr: np.ndarray) -> float:
    """:func:`_unit_scale` of a batch ``(N, H, W, C)``: one scale for all its images, from all their values (a
    dark photo in a [0, 255] float batch is not taken as a [0, 1] image)."""
    if arr.shape[0] == 0:
        raise ValueError(f"empty batch of shape {arr.shape}")
    _unit_scale(arr[0])  # shape and dtype, named by one image's shape
    return _unit_scale(arr.reshape(-1, *arr.shape[2:]))


def _unit_tile(crop: np.ndarray, scale: float, repeat: int = 1) -> np.ndarray:
    """One tile of the image as the model's float32 [0, 1] input (one new array; float values beyond the range
    clipped)."""
    if crop.dtype.kind == "f":
        y = crop.astype(np.float32)  # first: a float16 image divided by 65535 in float16 overflows
        if scale != 1.0:
            y /= np.float32(scale)
        np.clip(y, 0.0, 1.0, out=y)
    else:
        y = crop.astype(np.float32)
        y /= np.float32(scale)
    return np.repeat(y, repeat, axis=-1) if repeat > 1 else y


def _from_unit_tile(y: np.ndarray, scale: float, dtype: np.dtype, mean: bool = False) -> np.ndarray:
    """A float32 [0, 1] result (a tile or a band of rows) as values of ``dtype`` (in place when possible):
    integers are rounded and clipped, floats scaled back; ``mean`` averages the channels (grey images)."""
    if mean:
        y = y.mean(axis=-1, keepdims=True)
    if dtype.kind in "ui":
        y = np.multiply(y, np.float32(scale), out=y if y.flags.writeable else None)
        np.rint(y, out=y)
        np.clip(y, 0, np.iinfo(dtype).max, out=y)
    elif scale != 1.0:
        y = np.multiply(y, np.float32(scale), out=y if y.flags.writeable else None)
    return y


def _unpickle(data: bytes, source: str | None = None, loaded: dict | None = None) -> Deblurrer:
    """A Deblurrer from the bytes :meth:`Deblurrer.__reduce__` sent (a saved file's), with the file the
    original was loaded from (None for one built in memory), not the temporary file it travelled in."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "deblurrer.keras"
        path.write_bytes(data)
        d = Deblurrer.load(path)
    d.source, d._loaded = source, loaded
    return d


def _describe_data(data: Any) -> Any:
    if isinstance(data, (str, os.PathLike)):
        return str(data)
    if isinstance(data, tuple) and all(isinstance(d, (str, os.PathLike)) for d in data):
        return [str(d) for d in data]
    return type(data).__name__


def _state_dir(checkpoint: str | os.PathLike | None, checkpoint_dir: str | os.PathLike | None) -> Path | None:
    """Where :meth:`Deblurrer.fit` keeps the per-epoch training state (None: nowhere)."""
    if checkpoint_dir is not None:
        return Path(checkpoint_dir)
    if checkpoint is not None:
        c = Path(checkpoint)
        return c.with_name(c.stem + ".resume")
    return None


def _epoch_seed(seed: int, epoch: int) -> int:
    """The pipeline seed of one training epoch: a stable hash of the run seed and the epoch, in [0, 2**62)."""
    import hashlib

    digest = hashlib.sha256(f"blurkit-epoch\x00{int(seed)}\x00{int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def _hash_array(h: Any, a: np.ndarray) -> None:
    """Add an array's shape, dtype and bytes to the hash ``h``.

    SHA-256 (OpenSSL's, about 1 GB/s on one core; BLAKE2b measured half that speed here) reads every byte: a
    resumable fit on in-memory arrays costs about a second per GB of them, once per ``fit``.
    """
    h.update(json.dumps([list(a.shape), a.dtype.str]).encode())
    h.update(np.ascontiguousarray(a).data.cast("B"))


def _check_whole(value: Any, name: str) -> None:
    """Refuse a size that is not a whole number (a float with a fraction, a string, a bool, None), naming it:
    ``int()`` cut 40.9 to 40 silently and took ``"64"``. A float such as ``64.0`` is accepted."""
    whole = isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating)) and
                                                     math.isfinite(value) and float(value).is_integer())
    if isinstance(value, (bool, np.bool_)) or not whole:
        raise TypeError(f"{name} must be a whole number, got {type(value).__name__} {value!r}")


def _check_learning_rate(value: Any) -> None:
    """Refuse a learning rate that cannot train: 0 (nothing moves, silently), negative or infinite (the run
    diverges), NaN, or not a number, naming the argument."""
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not number or not 0 < value < math.inf:
        raise ValueError(f"learning_rate must be a positive finite number, got {value!r}")
    try:
        with np.errstate(over="ignore"):
            kept = float(np.float32(value))  # the optimizer keeps it in a float32 variable: 1e-50 became 0
    except OverflowError:  # an int beyond any float
        kept = math.inf
    if not 0 < kept < math.inf:
        raise ValueError(f"learning_rate {value!r} is {kept:g} as the float32 the optimizer keeps it in: "
                         "give one from about 1e-45 to 3e38")


def _check_seed(seed: Any, name: str = "seed") -> None:
    """Refuse a seed NumPy's global random state (``keras.utils.set_random_seed``) cannot take, naming it."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"{name} must be a whole number from 0 to 2**32 - 1, got {seed!r}")


def _settings(d: Deblurrer, data: Any, train_src: Any, val_src: Any, steps: int, monitor: str,
              reduce_lr: bool, early_stopping: int | None) -> dict:
    """What a resumed run must share with the saved one (as JSON would give it back)."""
    from blurkit.blurs import serialize_blur

    def digest(src: Any) -> str | None:
        if src is None:
            return None
        if src.kind == "records":  # an image-by-image split of shards keeps the shard list on both sides
            return src.digest()
        h = _names_digest(_relative_names(src.items))
        if src.sharp is not None:  # in-memory images: their indices say nothing of what they hold
            for i in src.items:
                for side in (src.blurred, src.sharp):
                    if side is not None:
                        _hash_array(h, side[i])
        return h.hexdigest()[:16]

    out = {
        # the data by its files' names below their common folder (not the path as typed: `./photos/` and
        # `/abs/photos` are one folder, and a job may restart from another directory or mount point)
        "model": d.model_spec, "weights": [list(w.shape) for w in d.model.weights], "blur": serialize_blur(d.blur),
        "train_items": digest(train_src), "validation_items": digest(val_src),
        "steps_per_epoch": steps, "batch_size": d.batch_size, "patch_size": d.patch_size,
        "patches_per_image": d.patches_per_image, "channels": d.channels, "loss": d.loss,
        "learning_rate": d.learning_rate, "seed": d.seed, "monitor": monitor, "reduce_lr": bool(reduce_lr),
        "early_stopping": int(early_stopping or 0),
        # its state is restored variable by variable: another optimizer, or the LossScaleOptimizer a mixed-precision
        # policy wraps it in (more variables), had Keras skip the saved state with a warning, the run going on
        "optimizer": type(d.model.optimizer).__name__,
    }
    return json.loads(json.dumps(_jsonable(out)))


def _sha256(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    import hashlib

    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _relative_names(items: list[Any], form: int = 3) -> list[Any]:
    """File items as the name of the folder all of them are in (its real name, through links, in lower
    case) followed by their names below it (``["photos", "a.png", "sub/b.png"]``: ``photos``, ``./photos/``
    and ``/abs/photos`` alike, wherever the job starts; another folder of the same file names, a second
    card's ``IMG_0001.JPG``..., differs if its folder's name does); ``(blurred, sharp)`` pairs as their names
    below the folder both sides are in (``blurred/a.png``); in-memory items (indices) as strings. Files on
    several drives (Windows) keep their absolute names.

    ``form`` gives the names as earlier releases gave them, for the training states they wrote
    (:func:`_earlier_digests`): 0, each item's ``str()`` (the paths as the data was typed; before 2026-12-07
    11:36, 72cb4e9); 1, the names below the common folder, without its name (to 12:05, ce3e4c1); 2, the folder's
    name as its path gives it (not through links, in its own letter case) first, pairs included (to 12:23,
    0d12e7f); 3, this release's."""
    if form == 0:
        return [str(i) for i in items]
    paths = [Path(p) for i in items for p in (i if isinstance(i, tuple) else (i,)) if isinstance(p, (str, os.PathLike))]
    if not paths or len(paths) != sum(len(i) if isinstance(i, tuple) else 1 for i in items):
        return [str(i) for i in items]
    real = {p: Path(os.path.abspath(p)) for p in paths}  # no file system calls: millions of files
    try:
        root = Path(os.path.commonpath([r.parent for r in real.values()]))
    except ValueError:  # C:\ and D:\
        return [[real[Path(p)].as_posix() for p in i] if isinstance(i, tuple) else real[Path(i)].as_posix()
                for i in items]

    def name(p: Any) -> str:
        return real[Path(p)].relative_to(root).as_posix()

    if form in (1, 2):
        names = [[name(p) for p in i] if isinstance(i, tuple) else name(i) for i in items]
        return names if form == 1 else [root.name, *names]
    if any(isinstance(i, tuple) for i in items):  # pairs: their names start with their two folders' names
        return [[name(p) for p in i] for i in items]
    from blurkit.data.io import folded

    # the folder's own name, through links and in one letter case (a case-insensitive disk: one call)
    return [folded(Path(os.path.realpath(root)).name), *(name(i) for i in items)]


def _names_digest(names: list[Any]) -> Any:
    """The SHA-256 object a data digest starts from: its items' names (:func:`_relative_names`) as JSON."""
    import hashlib

    return hashlib.sha256(json.dumps(names).encode())


def _earlier_digests(src: Any) -> dict[str, str]:
    """The digests earlier releases recorded for the data ``src`` in a training state (``train_items``,
    ``validation_items``), each with what it could not check ("" where it checked all of it): its file names in
    each earlier form (:func:`_relative_names`; form 1, names below the folder, could not check the folder's
    name), and, for in-memory images, the digest of their indices alone (before 2026-12-06 16:03, a80e7f6, the
    images' content was not part of it: such a state can only be checked by the number and split of the
    images). Shards' digests have not changed."""
    if src is None or src.kind == "records":
        return {}
    forms: dict[str, str] = {}
    for form in (2, 1, 0):  # the stricter form wins where two give one digest
        loose = "the images themselves" if src.sharp is not None else "the folder's name" if form == 1 else ""
        forms[_names_digest(_relative_names(src.items, form)).hexdigest()[:16]] = loose
    return forms


def _shown_setting(value: Any) -> str | None:
    """A setting's value short enough to show in a message, else None."""
    if value is None or isinstance(value, (bool, int, float)) or (isinstance(value, str) and len(value) <= 40):
        return repr(value) if isinstance(value, str) else str(value)
    return None


def _saved_settings(state: dict, settings: dict | None, sources: tuple[Any, Any], state_file: Any = None) -> dict:
    """The settings record of the training state ``state`` in this release's form, to compare with the run's
    ``settings`` (whose data are ``sources``, its training and validation :class:`Source`).

    The saved blur is rebuilt and serialized again, so that options added since it was saved (``shot``,
    ``jpeg``) appear with their defaults, as they do in the run's blur (one that cannot be rebuilt here is
    compared as saved). A missing ``optimizer`` is the run's (not recorded before 1e35a49: Adam or the user's
    own, outside a mixed-precision policy). A record without a ``settings_version``
    (:data:`RESUME_SETTINGS_VERSION`) was written before 2026-12-07: its ``data`` (the path as typed, dropped in
    72cb4e9) is left out, and an item digest of an earlier form (:func:`_earlier_digests`) that matches the
    run's data is taken as the run's."""
    from blurkit.blurs import deserialize_blur, serialize_blur

    saved = dict(state["settings"])
    settings = settings or {}
    if isinstance(saved.get("blur"), dict):
        try:
            saved["blur"] = json.loads(json.dumps(_jsonable(serialize_blur(deserialize_blur(saved["blur"])))))
        except Exception:  # noqa: BLE001 - a plugin's blur may raise anything; compared as saved, it differs
            pass
    if "optimizer" not in saved and settings.get("optimizer") != "LossScaleOptimizer":
        saved["optimizer"] = settings.get("optimizer")
    if state.get("settings_version", 1) >= 2:
        return saved
    saved.pop("data", None)
    for key, src in zip(("train_items", "validation_items"), sources, strict=True):
        forms = _earlier_digests(src)
        if saved.get(key) != settings.get(key) and saved.get(key) in forms:
            saved[key] = settings.get(key)
            if forms[saved_digest := state["settings"][key]]:
                warnings.warn(f"{state_file or 'the training state'}: written by an earlier blurkit, which recorded "
                              f"too little of the data to check {forms[saved_digest]} ({key}): resuming it on this "
                              "data, as that blurkit did; make sure it is the saved run's", UserWarning, stacklevel=5)
    return saved


def _resume_problem(state_file: Path, meta: dict, settings: dict | None, run_start: int,
                    sources: tuple[Any, Any] = (None, None)) -> str | None:
    """Why the training state ``meta`` (read from ``state_file``) cannot be resumed by a run with ``settings``
    (on the data ``sources``: its training and validation :class:`Source`) that starts after ``run_start``
    epochs; None if it can. A state written by an earlier release is compared in this release's form
    (:func:`_saved_settings`).

    Raises:
        ModelFileError: The file holds no training state, or one whose settings record is of a later form than
            this release reads (:data:`RESUME_SETTINGS_VERSION`).
    """
    state = meta.get("resume")
    if not state or not isinstance(state.get("epoch"), int) or not isinstance(state.get("settings"), dict):
        raise ModelFileError(f"{state_file}: not a blurkit training state (no resume record)")
    _check_state_record(state_file, state)
    version = state.get("settings_version", 1)  # a whole number from 1: _check_state_record
    if version > RESUME_SETTINGS_VERSION:
        raise ModelFileError(f"{state_file}: training state saved by a newer blurkit (settings version {version}; "
                             f"this one reads up to {RESUME_SETTINGS_VERSION}): upgrade blurkit to resume it")
    saved = _saved_settings(state, settings, sources, state_file)
    if saved != settings:
        changed = sorted(k for k in set(settings or {}) | set(saved) if (settings or {}).get(k) != saved.get(k))
        shown = []
        for k in changed:
            was, now = _shown_setting(saved.get(k)), _shown_setting((settings or {}).get(k))
            shown.append(f"{k} (saved {was}, now {now})" if was is not None and now is not None else k)
        return f"it was saved by a run with different {', '.join(shown)}"
    if state.get("run_start") != run_start:
        return (f"that run started after epoch {state.get('run_start')}, but this Deblurrer has {run_start} "
                "epochs of history")
    return None


def _validation_seed(seed: int, restored: dict | None, earlier: dict | None, history: dict) -> int:
    """The seed of a run's validation pipeline (``fit``'s ``training["validation_seed"]``): that of the run it
    continues, whose early-stopping and learning-rate counters, history and best checkpoint hold values
    measured on its inputs; :data:`VALIDATION_SEED` for a new run.

    A run resumed from a training state (``restored``, from :meth:`Deblurrer._restore_state`) takes the seed its
    state records, or, in a state that records none (written before 2026-12-08, when ``settings_version``
    said it), ``seed + 7919`` for one of form 1 or 2 and :data:`VALIDATION_SEED` for one of form 3. A run that
    goes on from the history of an earlier one (``earlier``, that run's training record: an earlier ``fit`` of
    this Deblurrer, or the file it was loaded from) takes the seed it records, or, in a record of before
    2026-12-08, ``seed + 7919`` with that run's ``seed``, unless its ``history`` holds no validation score to
    compare with. The recorded seeds were checked when their file was opened (:func:`_open_model_file`)."""
    if restored is not None:
        saved = restored.get("validation_seed")
        if saved is not None:
            return int(saved)
        return VALIDATION_SEED if restored.get("settings_version", 1) >= 3 else seed + 7919
    if earlier is not None:
        saved = earlier.get("validation_seed")
        if saved is not None:
            return int(saved)
        if any(k.startswith("val_") for k in history):
            run_seed = earlier.get("seed")
            if isinstance(run_seed, bool) or not isinstance(run_seed, int) or not 0 <= run_seed < 2**32:
                run_seed = seed  # a record without one (or not one a Deblurrer takes): this Deblurrer's
            return run_seed + 7919
    return VALIDATION_SEED


def _check_validation_seed(training: dict, path: Any) -> None:
    """Refuse a training record whose ``validation_seed`` is not a whole number a run can have used (from 0 to
    :data:`_MAX_VALIDATION_SEED`), naming the file: a run that continues this one validates with it."""
    if "validation_seed" not in training:
        return
    value = training["validation_seed"]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_VALIDATION_SEED:
        raise ModelFileError(f"{path}: damaged blurkit metadata (training validation_seed {_shown_text(value)})")


def _number_or_null(v: Any) -> bool:
    """Whether ``v``, read from a file's JSON, is a number (not a bool) or null: a score or a best value."""
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _check_state_record(state_file: Path, state: dict) -> None:
    """Refuse a training-state record whose fields are not what :func:`_callbacks` writes (whole epochs, a
    number or null for a best value, whole counters for the callbacks' waits), naming the file: they are put
    into Keras' callbacks as they are, and a string there failed in a traceback after an epoch's work."""

    def whole(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    bad = next((f"{k} {_shown_text(state.get(k))}" for k in ("epoch", "run_start", "end")
                if k in state and not whole(state[k])), None)
    if bad is None and "settings_version" in state and not (whole(state["settings_version"])
                                                          and state["settings_version"] >= 1):
        bad = f"settings_version {_shown_text(state['settings_version'])}"
    if bad is None and not isinstance(state.get("stopped", False), bool):
        bad = f"stopped {_shown_text(state['stopped'])}"
    if bad is None and not _number_or_null(state.get("recorder_best")):
        bad = f"recorder_best {_shown_text(state['recorder_best'])}"
    callbacks = state.get("callbacks") or {}
    if bad is None and not isinstance(callbacks, dict):
        bad = f"callbacks {_shown_text(callbacks)}"
    for name, saved in callbacks.items() if bad is None else ():
        if name not in _TRACKED_STATE or not isinstance(saved or {}, dict):
            bad = f"callbacks {_shown_text(name)}: {_shown_text(saved)}"
            break
        for attr, v in (saved or {}).items():
            if attr not in _TRACKED_STATE[name] or not (_number_or_null(v) if attr == "best" else whole(v)):
                bad = f"{name} {attr} {_shown_text(v)}"
                break
        if bad is not None:
            break
    if bad is not None:
        raise ModelFileError(f"{state_file}: damaged training state ({bad})")


def _best_weights(state_file: Path, model: Any) -> list[np.ndarray] | None:
    """The early-stopping best weights a training state holds (None if it holds none), each checked against
    ``model``'s weights (their number, shapes, a numeric dtype, and the stored size of each array, before it is
    inflated: ``.npz`` members may be compressed), so that a damaged one is refused, naming the file."""
    try:
        with zipfile.ZipFile(state_file) as zf:
            if _BEST_WEIGHTS_ENTRY not in zf.namelist():
                return None
            data = io.BytesIO(zf.read(_BEST_WEIGHTS_ENTRY))  # at most MAX_WEIGHTS_BYTES (_check_entries)
        expected = [tuple(w.shape) for w in model.weights]
        with zipfile.ZipFile(data) as npz:
            names = npz.namelist()
            if sorted(names) != sorted(f"w{i}.npy" for i in range(len(expected))):
                raise ValueError(f"{len(names)} arrays for a model of {len(expected)} weights")
            for i, shape in enumerate(expected):
                info = npz.getinfo(f"w{i}.npy")
                if info.file_size > 8 * math.prod(shape) + 4096:  # float64 at most, and a header
                    raise ValueError(f"array w{i} declares {info.file_size:,} bytes")
                with npz.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                        else np.lib.format.read_array_header_2_0
                    got, _, dtype = read(fh)
                if tuple(got) != shape or dtype.kind not in "fiub":
                    raise ValueError(f"array w{i} is {dtype} {tuple(got)}, the model's weight {shape}")
        data.seek(0)
        with np.load(data, allow_pickle=False) as arrays:
            return [arrays[f"w{i}"] for i in range(len(expected))]
    except (*_ZIP_ERRORS, ValueError, KeyError) as exc:
        raise ModelFileError(f"{state_file}: damaged training state (best weights: {exc})") from None


def _overwrite_message(state_file: Path, settings: dict, run_start: int,
                       sources: tuple[Any, Any] = (None, None)) -> str:
    """The warning of a ``fit`` without ``resume`` that finds a training state in its folder."""
    what = "this run trains on from the model's current weights and overwrites it"
    try:
        problem = _resume_problem(state_file, Deblurrer.read_metadata(state_file), settings, run_start, sources)
    except ModelFileError as exc:
        return f"{state_file} holds no training state this run can resume ({exc}); {what}"
    if problem is None:
        return (f"{state_file} holds the state of an earlier run; {what} (pass resume=True to continue that "
                "run)")
    return f"{state_file} holds the state of another run, which this one cannot resume ({problem}); {what}"


def _checkpoint_best(checkpoint: str | os.PathLike | None, history: dict, monitor: str, run_start: int
                     ) -> float:
    """The ``monitor`` value of the model at ``checkpoint`` if an earlier ``fit`` of the Deblurrer whose
    ``history`` is given saved it there, choosing by ``monitor``; else inf (any other file is replaced).

    That file was saved at its last epoch, so its history is the start of ``history`` (as JSON: NaN is
    null) and its last ``val_loss`` is a number when validation chose it (else ``loss`` did).
    """
    if checkpoint is None or run_start == 0 or not Path(checkpoint).is_file():
        return math.inf
    try:
        saved = Deblurrer.read_metadata(checkpoint).get("history") or {}
    except ModelFileError:
        return math.inf
    n = len(saved.get("loss") or [])
    if not 0 < n <= run_start or any(k not in history for k in saved):
        return math.inf
    if json.loads(json.dumps(_jsonable({k: history[k][:n] for k in saved}))) != saved:
        return math.inf  # another run's model

    def last(key: str) -> float | None:
        v = (saved.get(key) or [None] * n)[n - 1]
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    chosen_by = "val_loss" if last("val_loss") is not None else "loss"
    value = last(monitor)
    return value if chosen_by == monitor and value is not None else math.inf


_TRACKED_STATE = {"reduce_lr": ("best", "wait", "cooldown_counter"),
                  "early_stopping": ("best", "wait", "best_epoch", "stopped_epoch")}


def _callbacks(deblurrer: Deblurrer, checkpoint: str | os.PathLike | None, monitor: str, *,
               state_dir: Path | None = None, run_start: int = 0, end: int = 0, settings: dict | None = None,
               tracked: dict[str, Any] | None = None, restored: dict | None = None,
               time_limit: float | None = None, best: float = math.inf) -> list[Any]:
    """Blurkit's own callbacks: ``[Recorder]``, then the time limit (with ``time_limit``), then the
    training-state saver (with ``state_dir``).

    The recorder appends each epoch to ``deblurrer.history`` (every key one value per epoch: NaN where an
    epoch had none, e.g. no validation in an earlier ``fit``), keeps ``deblurrer.training["epochs"]`` at
    the epochs trained, and saves the best model so far at ``checkpoint`` (better than ``best``: the value of
    the model already there, :func:`_checkpoint_best`). The time limit stops training at the end of the first
    epoch past ``time_limit`` minutes, as a pause the saver records as resumable. The saver (put after every
    other callback) writes ``state_dir/last.keras`` at the end of each epoch: model, optimizer state,
    history, and the state of the ``tracked`` Keras callbacks
    (ReduceLROnPlateau, EarlyStopping with its best weights). With ``restored`` (from
    :meth:`Deblurrer._restore_state`) it puts that callback state back when training begins.
    """
    import keras

    tracked_cbs: dict[str, Any] = tracked or {}

    class Recorder(keras.callbacks.Callback):
        """Appends every epoch's logs to the facade's history, so checkpoints carry the curves."""

        def __init__(self) -> None:
            super().__init__()
            self.best = best

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            done = max((len(v) for v in deblurrer.history.values()), default=0)  # epochs recorded before
            for k, v in logs.items():
                seq = deblurrer.history.setdefault(k, [])
                seq.extend([math.nan] * (done - len(seq)))  # a key new in this fit: NaN before it
                seq.append(float(v))
            for seq in deblurrer.history.values():
                seq.extend([math.nan] * (done + 1 - len(seq)))  # a key this epoch has not: NaN
            deblurrer.training["epochs"] = done + 1
            loss = logs.get("loss")
            bad = None
            if loss is not None and not math.isfinite(float(loss)):
                bad = f"the loss of epoch {done + 1} is {float(loss)}, and the weights are no longer finite"
            elif _non_finite(self.model):  # the last step of an epoch can break them with a finite epoch loss
                bad = f"after epoch {done + 1} the weights hold NaN or infinite values"
            elif logs.get("val_loss") is not None:  # scored on real images: the outputs are finite or not
                if not math.isfinite(float(logs["val_loss"])):
                    bad = (f"the validation loss of epoch {done + 1} is {float(logs['val_loss'])}: the model's "
                           "outputs are no longer finite")
            elif not _finite_output(self.model, deblurrer.patch_size):  # finite weights too large: NaN outputs
                bad = f"after epoch {done + 1} the model's output on a test image is NaN or infinite"
            if bad is not None:
                # no checkpoint or training state of this epoch (the ones before are kept), and no more epochs
                raise TrainingDivergedError(
                    f"training diverged: {bad}; lower the learning rate (it is {deblurrer.learning_rate:g})")
            if any(k.startswith("val_") for k in logs):
                deblurrer.validation = {k[4:]: float(v) for k, v in logs.items() if k.startswith("val_")}
            value = logs.get(monitor)
            if checkpoint is not None and value is not None and value < self.best:
                self.best = float(value)
                # its config was checked when fit began; "running": a checkpoint written while the run trains,
                # which `blurkit train --resume` tells from a finished run's model (not in the training state)
                deblurrer.training["running"] = True
                try:
                    deblurrer._write(checkpoint)
                finally:
                    deblurrer.training.pop("running", None)

    recorder = Recorder()
    own: list[Any] = [recorder]
    if time_limit is not None:
        import time

        limit = time_limit  # a float, in the class below as well

        class TimeLimit(keras.callbacks.Callback):
            def on_train_begin(self, logs: dict | None = None) -> None:
                self.start = time.monotonic()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                if epoch + 1 < end and time.monotonic() - self.start >= limit * 60:
                    self.model.stop_training = True

        own.append(TimeLimit())
    if state_dir is None:
        return own
    state_file = state_dir / RESUME_NAME

    def paused(model: Any) -> bool:
        """Training was stopped by the time limit (this worker's clock, or another's agreed by all-reduce): a
        pause that resume goes on from, unlike an early stop, the end of the run."""
        es = tracked_cbs.get("early_stopping")
        return time_limit is not None and bool(model.stop_training) and not (es and es.stopped_epoch)

    class TrainingState(keras.callbacks.Callback):
        """Saves (and on resume restores) everything needed to continue the run after a crash."""

        def on_train_begin(self, logs: dict | None = None) -> None:
            if restored is None:
                return
            best = restored.get("recorder_best")
            recorder.best = math.inf if best is None else float(best)
            for name, cb in tracked_cbs.items():
                saved = (restored.get("callbacks") or {}).get(name) or {}
                for attr in _TRACKED_STATE[name]:
                    if attr in saved:
                        value = saved[attr]
                        if attr == "best" and value is None and getattr(cb, "best", None) is not None:
                            value = cb.best  # a non-finite best was stored as null: keep the reset value
                        setattr(cb, attr, value)
                if name == "early_stopping" and restored.get("best_weights") is not None:
                    cb.best_weights = restored["best_weights"]

        def _save(self, epoch: int, stopped: bool) -> None:
            state = {"epoch": epoch, "run_start": run_start, "end": end, "stopped": stopped,
                     "settings": settings, "settings_version": RESUME_SETTINGS_VERSION,
                     "recorder_best": recorder.best,
                     "callbacks": {name: {a: getattr(cb, a, None) for a in _TRACKED_STATE[name]}
                                   for name, cb in tracked_cbs.items()}}
            entries = {}
            es = tracked_cbs.get("early_stopping")
            if es is not None and es.best_weights is not None:
                buf = io.BytesIO()
                arrays: dict[str, Any] = {f"w{i}": np.asarray(w) for i, w in enumerate(es.best_weights)}
                np.savez(buf, **arrays)
                entries[_BEST_WEIGHTS_ENTRY] = buf.getvalue()
            deblurrer._write(state_file, resume=state, entries=entries)

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            # `stopped`: an early stop (or another callback's), not the time limit's pause nor the run's end.
            # Not saved again at the end of the run, when Keras' EarlyStopping has put the best weights back:
            # the state keeps the last epoch's weights to go on from (a longer run), and the best ones in their
            # own entry, which a resume with nothing left to train puts back (Deblurrer._end_resumed)
            self._save(epoch + 1, bool(self.model.stop_training) and not paused(self.model))

    return [*own, TrainingState()]


# ------------------------------------------------------------------------------- untrusted files
def _open_model_file(path: str | os.PathLike, keras_copy: bool = False, state: bool = False
                     ) -> tuple[dict[str, Any], io.BytesIO | None]:
    """The checked blurkit metadata of model file ``path`` and, with ``keras_copy``, :func:`_keras_archive`'s
    copy of its Keras entries, both from one open of the file, after its entries are checked
    (:func:`_check_entries`): what Keras reads is what was checked, even if the file is replaced meanwhile.

    The weights are at most :data:`MAX_WEIGHTS_BYTES`; only a training state being resumed (``state``, from
    :meth:`Deblurrer._restore_state`) may hold :data:`_STATE_WEIGHTS_FACTOR` times as much (the optimizer's
    moments), and so may a file whose metadata says it is one when nothing is inflated into memory (no
    ``keras_copy``: :meth:`Deblurrer.read_metadata`). What a file says of itself never raises the limit of a
    model it is loaded as. The weights entry must start as an HDF5 file does, checked before it is inflated."""
    path = Path(path)
    if path.is_dir():
        exported = " (a SavedModel from Deblurrer.export: serve it with tf.saved_model.load)" \
            if (path / "saved_model.pb").is_file() else ""
        raise ModelFileError(f"{path}: a folder, not a .keras model file{exported}")
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file{_preset_hint(path)}")
    if not path.is_file():  # a FIFO, a device: reading it could wait forever
        raise ModelFileError(f"{path}: not a regular file")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head.startswith(b"PK\x03\x04"):  # starts like a zip, but its directory is missing
            raise ModelFileError(f"{path}: damaged or truncated model file (no zip directory)")
        if head == _HDF5_SIGNATURE:
            raise ModelFileError(f"{path}: a legacy Keras HDF5 (.h5) model, not a .keras model file: blurkit "
                                 "loads the .keras files it saves (Deblurrer.save, blurkit train)")
        raise ModelFileError(f"{path}: not a .keras model file (not a zip archive)")
    archive = None
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            for n in names:
                if n.startswith(("/", "\\")) or ".." in n.replace("\\", "/").split("/") or ":" in n:
                    raise ModelFileError(f"{path}: refusing unsafe entry name {n!r} in the archive")
            _check_entries(zf, path)  # before anything is inflated (testzip inflates every entry)
            if METADATA_NAME not in names:
                raise ModelFileError(f"{path}: a Keras file without blurkit metadata ({METADATA_NAME})")
            meta = _read_json_entry(zf, METADATA_NAME, path, "blurkit metadata")
            weights = zf.getinfo("model.weights.h5").file_size if "model.weights.h5" in names else 0
            said_state = not keras_copy and isinstance(meta, dict) and bool(meta.get("resume"))
            limit = MAX_WEIGHTS_BYTES * (_STATE_WEIGHTS_FACTOR if state or said_state else 1)
            if weights > limit:
                raise ModelFileError(f"{path}: entry model.weights.h5 is too large ({weights:,} bytes "
                                     f"uncompressed; at most {limit:,})")
            if weights:
                with zf.open("model.weights.h5") as fh:  # 8 bytes inflated, not the whole entry
                    if fh.read(8) != _HDF5_SIGNATURE:
                        raise ModelFileError(f"{path}: damaged weights (model.weights.h5 is not an HDF5 file)")
            if keras_copy:  # copying reads every entry and checks its CRC as testzip would
                archive = _keras_archive(zf)
            elif zf.testzip() is not None:
                raise ModelFileError(f"{path}: damaged archive (CRC error)")
    except _ZIP_ERRORS as exc:
        raise _unreadable(path, exc) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a blurkit model file")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"{path}: damaged blurkit metadata (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: saved by a newer blurkit (format {version}); upgrade blurkit")
    spec = meta.get("model")
    if spec is not None and not (isinstance(spec, dict) and isinstance(spec.get("name"), str)
                                 and isinstance(spec.get("config", {}), dict)):
        raise ModelFileError(f"{path}: damaged blurkit metadata (model {spec!r})")
    for key in ("blur", "facade", "training", "history", "validation", "resume", "components"):
        if not isinstance(meta.get(key) or {}, dict):
            raise ModelFileError(f"{path}: damaged blurkit metadata ({key} is not an object)")
    _check_scores(meta, path)
    _check_validation_seed(meta.get("training") or {}, path)
    return meta, archive


def _check_scores(meta: dict, path: Any) -> None:
    """Refuse a ``history`` that is not a dict of lists of numbers (null: an epoch without the value) or a
    ``validation`` that is not a dict of numbers, naming the file: :meth:`Deblurrer.fit` and
    :meth:`Deblurrer.plot_history` failed on them later, in tracebacks that named nothing."""

    for key, values in (meta.get("history") or {}).items():
        if not isinstance(values, list) or not all(_number_or_null(v) for v in values):
            raise ModelFileError(f"{path}: damaged blurkit metadata (history {_shown_text(key)}: a list of "
                                 f"numbers expected, got {_shown_text(values)})")
    for key, value in (meta.get("validation") or {}).items():
        if not _number_or_null(value):
            raise ModelFileError(f"{path}: damaged blurkit metadata (validation {_shown_text(key)}: a number "
                                 f"expected, got {_shown_text(value)})")


def _check_entries(zf: zipfile.ZipFile, path: Any) -> None:
    """Refuse an archive whose entries are not those of a model file, or larger than a model file's, from its
    directory alone (nothing is inflated): a few hundred kilobytes could otherwise declare gigabytes that
    ``testzip`` and Keras would inflate, and Keras copies every entry of an archive with more than its own
    three to a temporary folder.

    Allowed: Keras' ``config.json``, ``metadata.json`` and ``model.weights.h5``, blurkit's metadata, a
    training state's best weights, and up to :data:`MAX_ASSETS` asset entries (``assets/...``, folders
    included), each name once, within :data:`MAX_JSON_BYTES`, :data:`MAX_WEIGHTS_BYTES` (times
    :data:`_STATE_WEIGHTS_FACTOR` for the weights of a training state, told by its metadata afterwards) and
    :data:`MAX_ASSET_BYTES`.
    """
    seen: set[str] = set()
    assets = asset_bytes = 0
    for info in zf.infolist():
        name = info.filename
        if name in seen:
            raise ModelFileError(f"{path}: the archive holds {name!r} twice (a model file holds each entry once)")
        seen.add(name)
        if name in ("config.json", "metadata.json", METADATA_NAME):
            limit = MAX_JSON_BYTES
        elif name == "model.weights.h5":  # a model's at most MAX_WEIGHTS_BYTES: checked with its metadata
            limit = MAX_WEIGHTS_BYTES * _STATE_WEIGHTS_FACTOR
        elif name == _BEST_WEIGHTS_ENTRY:
            limit = MAX_WEIGHTS_BYTES
        elif name.startswith("assets/"):
            assets += 1  # folders too: Keras makes each one
            asset_bytes += info.file_size
            limit = MAX_ASSET_BYTES
        else:
            raise ModelFileError(f"{path}: unexpected entry {_shown_text(name)} in the archive (a model file holds "
                                 f"{', '.join(_KERAS_ENTRIES)}, {METADATA_NAME}, assets/ and, for a training "
                                 f"state, {_BEST_WEIGHTS_ENTRY} only)")
        if info.file_size > limit:
            raise ModelFileError(f"{path}: entry {name} is too large ({info.file_size:,} bytes uncompressed; "
                                 f"at most {limit:,})")
    if assets > MAX_ASSETS or asset_bytes > MAX_ASSET_BYTES:
        raise ModelFileError(f"{path}: too many or too large assets ({assets:,} files, {asset_bytes:,} bytes; at "
                             f"most {MAX_ASSETS} and {MAX_ASSET_BYTES:,})")


def _shown_text(value: Any, limit: int = 80) -> str:
    """A value read from a file (JSON: a string, number, list, dict...), safe to print on one line: its
    ``repr`` (control characters and terminal escape codes escaped), cut to about ``limit`` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _keras_archive(zf: zipfile.ZipFile) -> io.BytesIO:
    """The entries of an open model file ``zf`` (checked by :func:`_check_entries`) that Keras reads, as a new
    in-memory archive (stored, not compressed): Keras then reads what blurkit checked, not the file again
    (which could have been replaced meanwhile), and copies no entry to a temporary folder (it does so for an
    archive of more than three entries, which blurkit's metadata makes every file)."""
    import shutil

    out = _ArchiveCopy()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in zf.infolist():
            if info.filename in _KERAS_ENTRIES or info.filename.startswith("assets/"):
                if info.is_dir():
                    dst.writestr(info.filename, b"")
                    continue
                # streamed: one copy in memory, not a bytes object and then the copy of it
                with zf.open(info) as src, dst.open(info.filename, "w",
                                                    force_zip64=info.file_size >= zipfile.ZIP64_LIMIT) as to:
                    shutil.copyfileobj(src, to, 2**20)  # the CRC is checked as the entry ends
    out.seek(0)
    return out


class _ArchiveCopy(io.BytesIO):
    """:func:`_keras_archive`'s in-memory archive. Keras' ``load_weights`` picks its reader by the name's suffix
    and opens a ``.keras`` one with :class:`zipfile.ZipFile`, which takes a file object: the name it sees ends
    in ``.keras``, so a training state's checked weights are read from this copy, not from its file again."""

    def __str__(self) -> str:
        return "checked-copy.keras"


def _unreadable(path: Any, exc: BaseException) -> ModelFileError:
    """The error for a model file whose archive cannot be read (damaged, encrypted, oddly compressed)."""
    return ModelFileError(f"{path}: damaged or unreadable model file ({type(exc).__name__}: {exc})")


class _View(io.RawIOBase):
    """A read-only, seekable file over a memory view, without copying it (:func:`_entry_view`)."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view, self._pos = view, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), len(self._view) - self._pos))
        b[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos


@contextlib.contextmanager
def _entry_view(archive: io.BytesIO, info: zipfile.ZipInfo) -> Iterator[IO[bytes]]:
    """A stored entry of the in-memory archive :func:`_keras_archive` makes, as a file over the archive's own
    bytes (no copy); its reader's seeks cost nothing (on Python 3.11 a zip entry's backward seek reads it again
    from the start). Another entry (compressed) is opened from the archive as usual."""
    if info.compress_type != zipfile.ZIP_STORED:  # pragma: no cover - _keras_archive stores every entry
        with zipfile.ZipFile(archive) as zf, zf.open(info) as fh:
            yield fh
        return
    buffer = archive.getbuffer()
    try:
        header = bytes(buffer[info.header_offset:info.header_offset + 30])  # the local file header
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise ValueError(f"no local header for {info.filename}")
        start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") \
            + int.from_bytes(header[28:30], "little")
        if start + info.file_size > len(buffer):
            raise ValueError(f"{info.filename} runs past the end of the archive")
        view = buffer[start:start + info.file_size]
        try:
            with _View(view) as fh:
                yield cast(IO[bytes], fh)
        finally:
            view.release()
    finally:
        buffer.release()


def _check_weights(archive: io.BytesIO, path: Any) -> int:
    """Refuse a weights file (``model.weights.h5``) whose datasets declare more bytes than it stores (an
    HDF5 dataset holding only a fill value can declare gigabytes, allocated when Keras reads it), or that
    reads data from other files (external storage, virtual datasets, external links).

    Returns:
        The bytes of variables its datasets can fill (0 without a weights entry), which bounds the model's
        variables (:func:`_check_variable_sizes`): a float dataset's declared values at 4 bytes each, or its
        own size where that is more (a float16 file's weights fill float32 variables; a float64 one's,
        float64), any other dataset's (a seed generator's state) its own bytes."""
    import h5py

    fill = 0

    def walk(group: Any) -> tuple[int, str | None]:
        """Bytes its datasets declare, and what is wrong with it, following hard links only."""
        nonlocal fill
        declared = 0
        for key in group:
            link = group.get(key, getlink=True)
            name = f"{group.name.rstrip('/')}/{key}"
            if not isinstance(link, h5py.HardLink):  # a soft or external link: h5py's visit skips them
                return declared, f"a link ({name}) to another object or file"
            item = group[key]
            if isinstance(item, h5py.Group):
                more, problem = walk(item)
                declared += more
                if problem:
                    return declared, problem
            elif isinstance(item, h5py.Dataset):
                if item.external or item.is_virtual:
                    return declared, f"a dataset ({name}) stored in other files"
                declared += int(item.size) * item.dtype.itemsize
                # bytes, not values: bool padding (1 byte a value, compressed 1000:1) filled float64
                # variables 8 times its size (review-hm 1)
                per = max(item.dtype.itemsize, 4) if item.dtype.kind == "f" else item.dtype.itemsize
                fill += int(item.size) * per
        return declared, None

    with zipfile.ZipFile(archive) as zf:
        if "model.weights.h5" not in zf.namelist():
            return 0  # Keras says what is missing
        info = zf.getinfo("model.weights.h5")
        stored = info.file_size
        try:
            # walked in place: h5py seeks back and forth, and Python 3.11's zip entries read again from their
            # start at each backward seek (1,600 seeks, 0.3 s, for a 7 MB preset)
            with _entry_view(archive, info) as fh, h5py.File(fh, "r") as h5:
                declared, problem = walk(h5)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(f"{path}: unreadable weights (model.weights.h5: {exc})") from None
    archive.seek(0)
    if problem:
        raise ModelFileError(f"{path}: refusing weights with {problem}")
    if declared > stored + 2**20:
        raise ModelFileError(f"{path}: its weights declare {declared:,} bytes but the file stores {stored:,} "
                             "(a damaged or crafted weights file)")
    return fill


#: Bounds on a model file's layer settings, far beyond any image model's (a kernel of 3000 x 3000 took 4 GB
#: before Keras could refuse the file; PadToMultiple(4096) padded a 40 x 50 photo to 4096 x 4096).
#: Every setting that sizes a variable or an output is bounded: an Embedding's ``input_dim`` and
#: ``output_dim``, a Resizing's ``height``/``width``, a RepeatVector's ``n``, attention heads, ... (the sizes
#: of a whole model, which these do not bound, are :func:`_check_variable_sizes`').
_LAYER_BOUNDS = {"kernel_size": 255, "pool_size": 255, "strides": 255, "dilation_rate": 255, "size": 255,
                 "padding": 4096, "cropping": 4096, "filters": 2**16, "units": 2**24, "multiple": 1024,
                 "pad": 1024, "bins": 1024, "block_size": 64, "output_padding": 255, "depth_multiplier": 256,
                 "input_dim": 2**16, "output_dim": 2**16, "num_tokens": 2**16, "max_tokens": 2**16,
                 "num_bins": 1024, "height": 4096, "width": 4096, "n": 4096, "target_shape": 2**16,
                 "num_heads": 256, "key_dim": 4096, "value_dim": 4096, "output_sequence_length": 4096}


def _check_layer_sizes(config: Any, path: Any) -> None:
    """Refuse layer settings of a Keras config past :data:`_LAYER_BOUNDS` before Keras builds (and allocates)
    the layers. This bounds what one setting can cost, not a whole model's size: load files from strangers
    in a process whose memory is limited."""
    for node in _config_nodes(config):
        inner = node.get("config")
        if not isinstance(node.get("class_name"), str) or not isinstance(inner, dict):
            continue
        for key, bound in _LAYER_BOUNDS.items():
            value = inner.get(key)
            values, nested = [], [value]
            while nested:  # ((top, bottom), (left, right)) as well as 3 and [3, 3]
                v = nested.pop()
                nested.extend(v) if isinstance(v, (list, tuple)) else values.append(v)
            if any(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > bound for v in values):
                raise ModelFileError(f"{path}: refusing a {node['class_name']} layer with {key} {value!r} (at most "
                                     f"{bound}: larger is no image model's, and building it could exhaust memory)")
        scales = inner.get("scales")
        if isinstance(scales, list) and len(scales) > 16:
            raise ModelFileError(f"{path}: refusing a {node['class_name']} layer with {len(scales)} scales "
                                 "(at most 16)")


#: Bytes of model variables a weights file may lack (a seed generator's state, say) before the file is
#: refused. With :data:`MAX_WEIGHTS_BYTES` this bounds what a model file's variables take: at most 2 GiB
#: (1 GiB of float16 weights filling float32 variables).
_UNSTORED_BYTES = 2**18
#: The message of the error Keras raises when a layer makes a variable from a value (``self.w =
#: keras.Variable(array)`` in ``build``) inside a stateless scope.
_STATELESS_VALUE = "create a variable while in a stateless scope"


def _variable_bytes(variable: Any) -> int:
    """Bytes a Keras variable takes when allocated: its shape's product times its dtype's size (8 for a
    dtype numpy does not know, the most any takes)."""
    name = str(getattr(variable, "dtype", "float32"))
    try:
        size = np.dtype(name).itemsize
    except TypeError:
        bits = re.search(r"(\d+)$", name)
        size = int(bits.group(1)) // 8 if bits else 8
    return math.prod(variable.shape) * max(size, 1)


#: The bytes of variables counted per model config in this process (:func:`_check_variable_sizes`), so that
#: loading the same architecture again (the second preset of ``--preset auto``, checkpoints of one run) skips
#: the rebuild (0.15 s for a preset). Kept only once the file has loaded; a few keys (hashes) at most, the
#: oldest forgotten first; shared by threads under :data:`_COUNTED_LOCK`.
_COUNTED: dict[str, int] = {}
_COUNTED_MAX = 16
_COUNTED_LOCK = threading.Lock()


def _config_key(config: Any) -> str | None:
    """A key for the variables ``config`` makes, or ``None`` when it cannot be trusted to say (a layer of a
    module other than Keras' and blurkit's: a plugin's class may be registered anew in the process).

    Two configs share a key only if Keras deserializes them alike: Keras' ``shared_object_id`` values (memory
    addresses of the process that saved the file) are numbered in order of appearance, compared as Keras' map
    of them compares them (``1 == 1.0``), the order of the config kept (Keras builds a shared object where it
    first meets it), and Keras' version, float type and dtype policy included (a layer without its own dtype
    follows them; the image data format too). So one architecture saved twice (the two presets) has one key.
    None too while classes other than blurkit's are registered with Keras (``register_keras_serializable``):
    one of them may stand for a name the config uses. (A ``keras.saving.CustomObjectScope`` is not seen:
    loading under one that changes a class between two loads of one config reuses the first count.)"""
    import hashlib

    import keras

    ids: dict[Any, int] = {}
    foreign = []

    def canon(x: Any) -> Any:
        if isinstance(x, dict):
            module, registered = x.get("module"), x.get("registered_name")
            if isinstance(module, str) and module.split(".")[0] not in ("keras", "blurkit"):
                foreign.append(module)
            if isinstance(registered, str) and not registered.startswith("blurkit>") \
                    and registered != x.get("class_name"):  # Keras resolves a registered name first
                foreign.append(registered)
            name = x.get("class_name")
            if isinstance(name, str) and ">" in name and not name.startswith("blurkit>"):  # a registered name too
                foreign.append(name)
            return {k: ids.setdefault(v, len(ids)) if k == "shared_object_id" and _hashable(v) else canon(v)
                    for k, v in x.items()}
        if isinstance(x, list):
            return [canon(v) for v in x]
        return x

    text = json.dumps([getattr(keras, "__version__", ""), keras.config.floatx(), keras.config.image_data_format(),
                       getattr(keras.config.dtype_policy(), "name", ""), canon(config)])
    # a class registered by the user under any name can stand for a Keras one of that name: not kept then
    custom = any(not str(k).startswith("blurkit>") for k in keras.saving.get_custom_objects())
    return None if foreign or custom else hashlib.sha256(text.encode()).hexdigest()


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _remember_count(counted: tuple[str, int] | None) -> None:
    """Keep :func:`_check_variable_sizes`' count once its file has loaded."""
    if counted is None:
        return
    with _COUNTED_LOCK:
        _COUNTED.pop(counted[0], None)
        while len(_COUNTED) >= _COUNTED_MAX:
            del _COUNTED[next(iter(_COUNTED))]
        _COUNTED[counted[0]] = counted[1]


def _check_variable_sizes(config: Any, stored: int, path: Any) -> tuple[str, int] | None:
    """Refuse a model whose variables need more bytes than its weights file can fill (``stored``, from
    :func:`_check_weights`), before Keras allocates them: Keras creates and initialises every variable when it
    rebuilds a model, before it reads a weight, so a config of a few kB (an ``Embedding(2**19, 1536)``, two
    Conv2D layers of 65,536 filters) asked for gigabytes and crashed the process. The model is rebuilt here
    under ``keras.StatelessScope(initialize_variables=False)``, where variables are shapes only, and then
    dropped; each variable counts its shape times its dtype's size (a float64 variable 8 bytes a value), the
    weights their float values at 4 bytes each (so files saved with float16 weights load).

    Two cases are let through to Keras uncounted, the per-setting :data:`_LAYER_BOUNDS` still applying: a
    Keras without the private modules this uses (``keras.src.backend.common.global_state``,
    ``keras.src.saving.serialization_lib``), with a warning; and a model with a layer that makes a variable
    from a value (``self.w = keras.Variable(array)`` in ``build``: it cannot be made without its value, so
    not in a stateless scope; ``add_weight(shape, initializer=...)`` is counted), once the variables made
    before it are within the bound."""
    import importlib

    import keras

    key = _config_key(config)
    with _COUNTED_LOCK:
        known = _COUNTED.get(key) if key is not None else None
    if known is not None:
        _refuse_variables(known, stored, path, False)
        return None
    try:  # private modules: a Keras that moves them loads files without this count, not with an ImportError
        global_state = importlib.import_module("keras.src.backend.common.global_state")
        serialization_lib = importlib.import_module("keras.src.saving.serialization_lib")
        get, put = global_state.get_global_attribute, global_state.set_global_attribute
        sharing, deserialize = serialization_lib.ObjectSharingScope, serialization_lib.deserialize_keras_object
        stateless = keras.StatelessScope
    except (ImportError, AttributeError) as exc:
        warnings.warn(f"{path}: not counting the model's variables before loading it (this Keras "
                      f"{getattr(keras, '__version__', '?')} lacks what blurkit counts them with: {exc}); "
                      "its layer settings are still bounded", UserWarning, stacklevel=3)
        return None

    pending = list(get("uninitialized_variables", None) or [])
    value_made = False
    try:
        with stateless(initialize_variables=False), sharing():
            # uncompiled, as _keras_load's is (compiling makes a loss and metrics from values)
            deserialize({**config, "compile_config": None}, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types; report them all clearly
        if _STATELESS_VALUE not in str(exc):
            put("uninitialized_variables", pending)
            raise ModelFileError(f"{path}: Keras could not load the model safely: {_keras_error(exc)}") from None
        value_made = True  # a layer made a variable from a value: Keras loads it; what came before is counted
    try:
        # every variable made meanwhile, a layer's outside the model's graph too (Keras builds those as well)
        created = (get("uninitialized_variables", None) or [])[len(pending):]
        needed = sum(_variable_bytes(v) for v in created)
    finally:  # never initialised: not by the next stateless scope to close either
        put("uninitialized_variables", pending)
    _refuse_variables(needed, stored, path, value_made)
    # a complete count (one cut short by a value-made variable is made again), kept once the file has loaded
    return (key, needed) if key is not None and not value_made else None


def _refuse_variables(needed: int, stored: int, path: Any, value_made: bool) -> None:
    """:func:`_check_variable_sizes`' verdict: refuse variables of ``needed`` bytes that weights of ``stored``
    bytes cannot fill."""
    if needed > stored + _UNSTORED_BYTES:
        more = " before a layer that makes one from a value" if value_made else ""
        raise ModelFileError(f"{path}: its model's variables need {needed:,} bytes{more} but its weights fill "
                             f"{stored:,} (a damaged or crafted model file)")


def _keras_load(archive: io.BytesIO, path: Any) -> Any:
    """Keras' loader (safe mode, uncompiled) on :func:`_keras_archive`'s copy; on a Keras whose loader does not
    take a file object, on the file ``path``."""
    import keras

    try:
        from keras.src.saving import saving_lib
    except ImportError:  # pragma: no cover - every Keras 3 so far has it
        saving_lib = None
    if saving_lib is None or not callable(getattr(saving_lib, "load_model", None)):
        return keras.saving.load_model(path, compile=False, safe_mode=True)  # pragma: no cover
    return saving_lib.load_model(archive, compile=False, safe_mode=True)


#: The facade settings a model file records, with the range blurkit accepts from a file (10**9 turned tiling,
#: and its memory bound, off). The constructor enforces the same ranges, so that every file a Deblurrer saves
#: loads again. Older constructors took more (to 2026-12-07): a file's tile sizes above the range are lowered to
#: its top and a seed of 2**32 or more is taken modulo 2**32, with a warning (:func:`_checked_facade`); another
#: whole number outside it is refused as outside what this blurkit accepts, not as damaged.
_FACADE_RANGES = {"batch_size": (1, 2**20), "patches_per_image": (1, 2**20), "seed": (0, 2**32 - 1),
                  "patch_size": (1, 2**16), "tile_size": (1, 2**14), "tile_overlap": (0, 2**14),
                  "estimate_tile": (1, 2**14), "channels": (1, 4)}
#: The tile settings of :data:`_FACADE_RANGES` a file may hold above the range (``tile_size=10**6`` meant
#: "never tile" until 2026-12-07): they bound time and memory, and are lowered to the range's top.
_FILE_LOWERED_TILES = ("tile_size", "tile_overlap", "estimate_tile")


def _outside(path: Any, what: str) -> ModelFileError:
    """The error of a model file whose metadata holds a well-formed value this release does not accept (an
    older blurkit may have written it), naming the file: not "damaged"."""
    return ModelFileError(f"{path}: blurkit metadata outside what this blurkit accepts ({what}; written by an "
                          "older blurkit?)")


#: The most bytes the float32 patches cut from one training photo may take (blurred and sharp):
#: ``patches_per_image * patch_size**2 * channels * 8``. The defaults take 0.9 MB.
MAX_PATCH_BYTES = 2**30


def _patches_problem(patches: int, patch: int, channels: int) -> str | None:
    """Why ``patches`` patches of ``patch`` pixels a side per photo are too many for memory, or None: training
    cuts them all from each photo at once (two float32 arrays), and 2**20 patches of 32 pixels tried to
    allocate 24 GiB per photo (12 GiB each), then failed in a traceback."""
    size = patches * patch**2 * channels * 8
    if size <= MAX_PATCH_BYTES:
        return None
    return (f"{patches:,} patches of {patch}x{patch}x{channels} per photo take {size / 2**30:,.1f} GiB as float32 "
            f"pairs, more than {MAX_PATCH_BYTES / 2**30:g} GiB")


#: The least tile side blurkit takes from a model file, restoring and estimating (a file's tile of 1 made
#: a 600 x 800 photo 480,000 tiles, more than two minutes against 20 s; tiles of 32 with the largest overlap
#: a file may give, half the tile, make a 24-megapixel photo about 94,000): smaller ones are raised to it, with
#: a warning. Tiles change time and memory, and the restoration slightly where they meet (a model sees less
#: of the photo around a tile's edge: a file of tile 16 restored the audit's test photo up to 2 levels of 255
#: apart). Deblurrer(tile_size=...) itself takes smaller ones, for callers who ask for them.
_FILE_MIN_TILE = 32


def _bound_tiles(d: Deblurrer, path: Any) -> None:
    """Refuse a patch size the constructor would refuse, and raise the tile sizes a model file gave ``d``
    (loaded from ``path``) to :data:`_FILE_MIN_TILE` (and the model's alignment) and lower its overlap to half
    the tile, warning about it: a crafted or careless file could otherwise make deblurring take days. A
    fixed-size model's tile and patch are its input size (not the file's), at least :data:`_MIN_FIXED_INPUT`
    (:func:`_model_problem` refuses smaller)."""
    from blurkit.metrics.functional import WIN_SIZE

    if d.fixed_size:
        return
    if d.patch_size < WIN_SIZE:  # Deblurrer(patch_size=...)'s minimum: train refused it, not load
        raise _outside(path, f"facade patch_size {d.patch_size}: at least {WIN_SIZE}, the window of the SSIM "
                             "metric training reports")
    tile = max(d.tile_size, _FILE_MIN_TILE, d.tile_align)
    overlap = min(d.tile_overlap, tile // 2)
    estimate = max(d.estimate_tile, _FILE_MIN_TILE)
    if (tile, overlap, estimate) == (d.tile_size, d.tile_overlap, d.estimate_tile):
        return
    changed = [k for k, old, new in (("tile_size", d.tile_size, tile), ("tile_overlap", d.tile_overlap, overlap),
                                     ("estimate_tile", d.estimate_tile, estimate)) if old != new]
    warnings.warn(FileSettingWarning(
        f"{path}: its tile settings (tile_size {d.tile_size}, tile_overlap {d.tile_overlap}, estimate_tile "
        f"{d.estimate_tile}) would make deblurring slow; using tile_size {tile}, tile_overlap {overlap}, "
        f"estimate_tile {estimate}; tiles also change the restoration slightly where they meet", changed,
        "set them on the Deblurrer to choose"), stacklevel=3)
    d.tile_size, d.tile_overlap, d.estimate_tile = tile, overlap, estimate
    d._sizes = (d.patch_size, tile, overlap)


def _checked_facade(facade: dict, path: Any) -> dict:
    """The facade settings of a model file's metadata, each checked (a whole number in its range of
    :data:`_FACADE_RANGES`, a known loss, a positive finite learning rate, an overlap under the tile), so
    that a damaged or crafted value is refused here, naming the file, not met later in a traceback.

    Settings older constructors took are read as this release can use them, with a warning: tile sizes above
    the range (:data:`_FILE_LOWERED_TILES`) are lowered to its top, and a seed of 2**32 or more (which
    constructors took until 2026-12-06) is taken modulo 2**32. Another whole number outside its range is
    refused as outside what this blurkit accepts (:func:`_outside`); a value of another type as damaged."""
    from blurkit.metrics.losses import LOSSES

    out = dict(facade)
    lowered = {}
    for key, (lo, hi) in _FACADE_RANGES.items():
        if key not in out:
            continue
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise ModelFileError(f"{path}: damaged blurkit metadata (facade {key} {_shown_text(v)}: a whole number "
                                 f"from {lo} to {hi} expected)")
        if v > hi and key in _FILE_LOWERED_TILES:
            lowered[key] = v
        elif v > hi and key == "seed":
            out[key] = v % 2**32
            warnings.warn(FileSettingWarning(
                f"{path}: its seed {v} is more than the {hi} this blurkit takes (an older blurkit took it); using "
                f"seed {out[key]} (the seed modulo 2**32), which draws other training patches and blurs, and "
                "splits off other validation images, than the seed did there", ["seed"],
                "set seed on the Deblurrer to choose"), stacklevel=3)
        elif not lo <= v <= hi:
            raise _outside(path, f"facade {key} {v}: a whole number from {lo} to {hi}")
    if "loss" in out and out["loss"] not in LOSSES:
        raise ModelFileError(f"{path}: damaged blurkit metadata (facade loss {_shown_text(out['loss'])}: one of "
                             f"{', '.join(LOSSES)} expected)")
    lr = out.get("learning_rate", 1e-3)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ModelFileError(f"{path}: damaged blurkit metadata (facade learning_rate {_shown_text(lr)}: a "
                             "positive number expected)")
    tile, overlap = out.get("tile_size", DEFAULT_TILE_SIZE), out.get("tile_overlap", DEFAULT_TILE_OVERLAP)
    if not overlap < tile:
        raise ModelFileError(f"{path}: damaged blurkit metadata (facade tile_overlap {overlap} is not under "
                             f"tile_size {tile})")
    if lowered:
        top = _FACADE_RANGES["tile_size"][1]
        out.update(dict.fromkeys(lowered, top))
        # the overlap at most half the tile, as load makes it (_bound_tiles): lowered here, in this one warning
        half = out.get("tile_size", DEFAULT_TILE_SIZE) // 2
        used = list(lowered)
        if out.get("tile_overlap", DEFAULT_TILE_OVERLAP) > half:
            out["tile_overlap"] = half
            if "tile_overlap" not in used:
                used.append("tile_overlap")
        warnings.warn(FileSettingWarning(
            f"{path}: its {', '.join(f'{k} {v}' for k, v in lowered.items())} "
            f"{'is' if len(lowered) == 1 else 'are'} more than the {top} this blurkit takes (an older blurkit took "
            f"{'it' if len(lowered) == 1 else 'them'}); using {', '.join(f'{k} {out[k]}' for k in used)}: a photo "
            "larger than that is restored in tiles, which bounds memory and can change the restoration slightly "
            "where tiles meet", used, "set them on the Deblurrer to choose"), stacklevel=3)
    patch, channels = out.get("patch_size", 96), out.get("channels", 3)
    problem = _patches_problem(out.get("patches_per_image", 4), patch, channels)
    if problem is None and patch**2 * out.get("batch_size", 16) * channels >= 2**31:
        problem = f"a batch of {out.get('batch_size', 16)} patches of {patch} pixels is more than a tensor holds"
    if problem:
        raise _outside(path, f"facade: {problem}")
    return out


#: The least fixed input side of a Deblurrer's model (a fixed-size model restores photos in tiles of its input
#: size): a file's ``Input((1, 1, 3))`` made a 600 x 800 photo 480,000 tiles, as a file's tile of 1 did
#: (:data:`_FILE_MIN_TILE`). 8 is the smallest the project's tests build a fixed-size autoencoder with (a
#: 24-megapixel photo is about 670,000 tiles of 8, run 4 at a time); the constructor holds to it too, so that
#: every file a Deblurrer saves loads again.
_MIN_FIXED_INPUT = 8


def _model_problem(model: Any) -> str | None:
    """Why a loaded Keras model cannot be a Deblurrer's (it restores one image batch into one of the same
    shape), or None: one input and one output, both (batch, height, width, channels), 1 or 3 channels in
    and as many out, a fixed input square, at least :data:`_MIN_FIXED_INPUT` pixels and as large as the
    output, and the output as large as the input (a model that resizes every tile to a fixed size is
    refused: its memory does not follow the tile's)."""
    try:
        ins, outs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        return "it is not a model with known inputs and outputs"
    if len(ins) != 1 or len(outs) != 1:
        return f"it has {len(ins)} inputs and {len(outs)} outputs (a deblurring model has one of each)"
    i, o = tuple(ins[0].shape), tuple(outs[0].shape)
    if len(i) != 4 or len(o) != 4:
        return f"its input {i} and output {o} are not image batches (batch, height, width, channels)"
    if i[-1] not in (1, 3) or o[-1] != i[-1]:
        return f"it takes {i[-1]} channels and returns {o[-1]} (a deblurring model takes 1 or 3 and returns as many)"
    if i[1] is not None and i[2] is not None and (i[1] != i[2] or o[1:3] != i[1:3]):
        return f"its fixed input {i[1]}x{i[2]} is not square or its output {o[1]}x{o[2]} not of that size"
    if i[1] is not None and isinstance(i[1], int) and i[1] < _MIN_FIXED_INPUT:
        return (f"its fixed input {i[1]}x{i[2]} is under {_MIN_FIXED_INPUT} pixels (it would restore photos in "
                f"tiles of {i[1]} pixels: hours for one photo)")
    if (i[1] is None or i[2] is None) and o[1:3] != i[1:3]:  # a Resizing to 20000 x 20000 for any input
        return f"its output size {o[1]}x{o[2]} does not follow its input's {i[1]}x{i[2]}"
    return None


def _keras_error(exc: BaseException) -> str:
    """The telling part of a Keras loading error, on one line (Keras nests the cause in a long message, and
    may put it on the line after an "Example error message for object ...:")."""
    text = str(exc).strip()
    if "Exception encountered:" in text:
        text = text.rsplit("Exception encountered:", 1)[1].strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()] if text else [type(exc).__name__]
    line = lines[0]
    if line.endswith(":") and len(lines) > 1:  # the cause is on the next line
        line = f"{line} {lines[1]}"
    for cut in (" Make sure custom classes", " Full object config", " config="):
        line = line.split(cut, 1)[0]
    return line if len(line) <= 300 else line[:297] + "..."


def _read_json_entry(zf: zipfile.ZipFile, name: str, path: Any, what: str) -> Any:
    """Parse one JSON entry of a model archive strictly: size-capped, UTF-8, standard JSON only.

    No NaN/Infinity constants, no duplicate keys, at most :data:`MAX_JSON_BYTES` bytes (checked while
    reading, so a compressed "zip bomb" entry is never inflated in full) and no nesting deep enough to
    exhaust the parser. Nothing is unpickled or evaluated.
    """
    info = zf.getinfo(name)
    if info.file_size > MAX_JSON_BYTES:
        raise ModelFileError(f"{path}: {what} is too large ({info.file_size:,} bytes; "
                             f"at most {MAX_JSON_BYTES:,})")
    with zf.open(info) as fh:
        raw = fh.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise ModelFileError(f"{path}: {what} is too large (more than {MAX_JSON_BYTES:,} bytes)")

    def no_constants(c: str) -> Any:
        raise ValueError(f"non-standard JSON constant {c}")

    def finite(text: str) -> float:  # 1e400 is standard JSON, and infinite as a float
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"number {text[:20]} is out of range")
        return value

    def small(text: str) -> int:  # a 400-digit integer is standard JSON too, and no float can hold it
        if len(text.lstrip("-")) > 30:
            raise ValueError(f"number {text[:20]}... is out of range")
        return int(text)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=no_constants, object_pairs_hook=no_duplicates,
                          parse_float=finite, parse_int=small)
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{path}: unreadable {what} (not UTF-8: {exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise ModelFileError(f"{path}: unreadable {what} (nested too deeply)") from None
    except ValueError as exc:
        raise ModelFileError(f"{path}: unreadable {what} ({exc})") from None


#: Keras classes that run code or read other files when a model is rebuilt: never loaded (TorchModuleWrapper
#: unpickles a torch module from its config, JaxLayer and FlaxLayer wrap Python functions; Keras' safe mode
#: refuses them too, but blurkit's check does not rely on it).
_REFUSED_CLASSES = {"Lambda", "__lambda__", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"}
_KERAS_FUNCTION_MODULES = ("activations", "losses", "metrics", "initializers", "regularizers", "constraints")


def _check_keras_config(path: Any, model_source: Any, archive: io.BytesIO) -> Any:
    """Refuse a ``.keras`` file whose ``config.json`` names code outside Keras, blurkit and registered objects.

    Keras' own safe mode refuses Lambda layers, imports only Keras modules by name and refuses lookup
    layers' vocabulary files; this check does not rely on any of it: every object named in the config must
    come from ``keras``/``blurkit`` or be registered with ``keras.saving.register_keras_serializable``
    (installed plugins), Lambda / TFSMLayer layers are refused outright, and so is any layer whose
    ``vocabulary`` is a file path. Installed plugins
    (every registry's entry points) are imported first when the config names an object not yet registered:
    a plugin's layer is registered as its module is imported, which in a fresh process nothing else may
    have done yet.

    ``model_source`` is where the file says its model builder came from (``"plugin DIST VERSION"``); a refusal
    names it, since the plugin that built a model is the one that registers its layers. ``archive`` is what is
    read (:func:`_keras_archive`'s copy of the file's entries), ``path`` what messages call it. Layer settings
    are bounded too (:func:`_check_layer_sizes`). Returns the config.
    """
    import keras

    try:
        with zipfile.ZipFile(archive) as zf:
            if "config.json" not in zf.namelist():
                raise ModelFileError(f"{path}: not a .keras model file (no config.json)")
            config = _read_json_entry(zf, "config.json", path, "Keras config")
    except _ZIP_ERRORS as exc:
        raise _unreadable(path, exc) from None
    archive.seek(0)
    registered = keras.saving.get_custom_objects()
    scanned = False
    for node in _config_nodes(config):
        cls_name = node.get("class_name")
        refused = _refused(node)
        if refused:
            raise ModelFileError(f"{path}: refusing to load {refused}; blurkit never loads those")
        module = node.get("module")
        if not isinstance(module, str) or not isinstance(cls_name, str):
            continue
        if _known_object(node, module, cls_name, registered):
            continue
        if not scanned:
            # plugins register their Keras objects when imported: import them (installed code, which blurkit
            # imports for any registry lookup anyway), once, and only for a file that needs them
            scanned = True
            _load_plugins()
            registered = keras.saving.get_custom_objects()
            if _known_object(node, module, cls_name, registered):
                continue
        what = node.get("config") if cls_name == "function" else cls_name
        hint = _install_hint(model_source)
        if hint:
            hint = f"; the model's builder comes {hint}" if hint.startswith("from ") else f"; its builder was {hint}"
        raise ModelFileError(
            f"{path}: refusing to load: its config names {module}.{what}, which is not part of Keras or "
            f"blurkit nor a registered Keras object (blurkit never imports code named by a model file{hint})")
    _check_layer_sizes(config, path)
    return config


def _config_nodes(config: Any) -> Iterator[dict]:
    """Every dict in a Keras config (a layer's, its config's, a nested object's), depth first."""
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
            yield node


def _refused(node: dict) -> str | None:
    """Why blurkit refuses to load the Keras config entry ``node`` (``"a Lambda layer (...)"``), or None."""
    cls_name = node.get("class_name")
    # by the last part of the name: Keras resolves "layers.Lambda" in module "keras" to keras.layers.Lambda
    last = cls_name.rsplit(".", 1)[-1] if isinstance(cls_name, str) else None
    if last == "__lambda__":
        return "a __lambda__ function (Python bytecode stored in the file)"
    if last in _REFUSED_CLASSES:
        return f"a {last} layer (it runs code stored in the file or loads other files)"
    inner = node.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("vocabulary"), str):
        # a lookup layer (StringLookup, IntegerLookup, TextVectorization) would read that file, or URL, as it
        # is built (Keras refuses it in safe mode only from 3.12)
        return f"a {cls_name} layer whose vocabulary is a file to read outside the model file"
    return None


def _warn_unregistered_blur(blur: Any, path: Any) -> None:
    """Warn that ``blur`` is not the blur registered under its name, so that :meth:`Deblurrer.load` will not
    rebuild it from that name (:func:`_provenance` records where its class comes from)."""
    from blurkit.registry import BLURS

    if getattr(blur, "missing", None):  # a loaded file's blur that is not installed: saved again as it was
        return
    own, registered = _provenance(BLURS, blur.name, type(blur)), _provenance(BLURS, blur.name)
    if own == registered:
        return
    cls = type(blur)
    there = f"not the blur registered under that name ({registered})" if registered else \
        "and no blur is registered under that name"
    warnings.warn(f"{path}: its blur {blur.name!r} is {cls.__module__}.{cls.__qualname__} ({own}), {there}; "
                  f"loading the file rebuilds it only where the blur registered as {blur.name!r} comes from the "
                  "same place (built in, the same plugin, or your own registration; elsewhere the model restores "
                  "photos, but cannot train or evaluate with its own blur)",
                  UserWarning, stacklevel=_outside_stacklevel())


def _check_savable(model: Any) -> None:
    """Refuse, before anything is written, a model whose file :meth:`Deblurrer.load` would refuse (a Lambda
    layer, or a layer setting past :data:`_LAYER_BOUNDS`): saving it would only produce a file nobody can
    load safely."""
    import keras

    config = keras.saving.serialize_keras_object(model)
    for node in _config_nodes(config):
        refused = _refused(node)
        if refused:
            raise ValueError(f"cannot save a model with {refused}: Deblurrer.load (Keras safe mode) would "
                             "refuse the file; write the operation as a registered custom layer "
                             "(keras.saving.register_keras_serializable)")
    try:
        _check_layer_sizes(config, "the model")
    except ModelFileError as exc:
        raise ValueError(f"cannot save: {exc}; Deblurrer.load would refuse the file") from None


def _known_object(node: dict, module: str, cls_name: str, registered: dict) -> bool:
    """Whether a config entry naming ``module``/``cls_name`` is Keras', blurkit's or a registered object."""
    import keras

    if module.split(".", 1)[0] in ("keras", "blurkit"):
        return True
    if cls_name == "function":
        # Keras finds a function by its name (``config``), never by ``registered_name``: check that name
        fn = node.get("config")
        return isinstance(fn, str) and (
            fn in registered  # a plugin's function, saved as "package>name"
            or (">" not in fn and any(k.endswith(">" + fn) for k in registered))  # saved by Keras <= 3.6
            or (module == "builtins"  # a Keras built-in function saved by name ("relu")
                and any(hasattr(getattr(keras, m, None), fn) for m in _KERAS_FUNCTION_MODULES)))
    return node.get("registered_name") in registered


def _load_plugins() -> None:
    """Import every installed plugin of every registry (blurs, models, metrics)."""
    from blurkit.registry import BLURS, METRICS, MODELS

    for registry in (MODELS, BLURS, METRICS):
        registry.list()  # scans the registry's entry points once per process

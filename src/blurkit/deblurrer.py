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

import datetime as _dt
import json
import math
import os
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Deblurrer", "ModelFileError", "METADATA_NAME", "FORMAT"]

METADATA_NAME = "blurkit.json"
FORMAT = "blurkit-model"
FORMAT_VERSION = 1
EVAL_METRICS = ("psnr", "ssim", "mse", "accuracy", "channel_accuracy")


class ModelFileError(ValueError):
    """A model file that is not a blurkit model, is damaged, or needs components that are not installed."""


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("blurkit", "keras", "tensorflow", "tensorflow-cpu", "numpy", "opencv-python-headless"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


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
        model: A registered model builder name (``"unet"``, ``"nafnet"``, ``"autoencoder"``, or a plugin)
            or an already built ``keras.Model`` (then ``model_options`` is ignored).
        blur: A registered blur generator name, or a blur generator instance; makes the training inputs
            from sharp photos and the test inputs in :meth:`evaluate`.
        model_options: Keyword arguments of the model builder.
        blur_options: Keyword arguments of the blur generator (e.g. ``{"sigma": (0.5, 3.0)}``).
        channels: 3 for colour models, 1 for greyscale models (colour images are then restored channel by
            channel).
        loss: ``"mse"`` (default), ``"l1"``, ``"charbonnier"`` or ``"psnr"``.
        learning_rate: Adam's initial learning rate.
        patch_size: Training patch side; fixed-input models (the autoencoder) always use their input size.
        batch_size: Training batch size.
        patches_per_image: Patches cut from a photo each time it is decoded.
        tile_size: Images larger than ``tile_size**2`` pixels are restored in overlapping tiles of this
            side (fixed-input models always tile at their input size).
        tile_overlap: Overlap between tiles.
        seed: Seeds the split, the pipeline and the evaluation blur.
    """

    def __init__(
        self,
        model: str | Any = "unet",
        blur: str | Any = "gaussian",
        *,
        model_options: dict | None = None,
        blur_options: dict | None = None,
        channels: int = 3,
        loss: str = "mse",
        learning_rate: float = 1e-3,
        patch_size: int = 96,
        batch_size: int = 16,
        patches_per_image: int = 4,
        tile_size: int = 512,
        tile_overlap: int = 64,
        seed: int = 0,
    ) -> None:
        from blurkit.blurs import deserialize_blur
        from blurkit.registry import BLURS, MODELS

        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        for arg, v in (("patch_size", patch_size), ("batch_size", batch_size), ("tile_size", tile_size),
                       ("patches_per_image", patches_per_image)):
            if int(v) < 1:
                raise ValueError(f"{arg} must be >= 1, got {v}")
        if not 0 <= tile_overlap < tile_size:
            raise ValueError(f"tile_overlap must be in [0, tile_size), got {tile_overlap}")
        self.channels = channels
        self.loss = loss
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.patches_per_image = int(patches_per_image)
        self.tile_overlap = int(tile_overlap)
        self.seed = int(seed)
        self.history: dict[str, list[float]] = {}
        self.validation: dict[str, float] = {}
        self.training: dict[str, Any] = {}

        if isinstance(blur, str):
            self.blur = BLURS.create(blur, **(blur_options or {}))
        elif isinstance(blur, dict):
            self.blur = deserialize_blur(blur)
        else:
            self.blur = blur

        if isinstance(model, str):
            opts = dict(model_options or {})
            self.model_spec: dict | None = {"name": model, "config": opts}
            builder = MODELS.get(model)
            import inspect

            if "channels" in inspect.signature(builder).parameters:
                opts.setdefault("channels", channels)
            self.model_spec["config"] = opts
            self.model = builder(**opts)
        else:
            self.model_spec = None
            self.model = model
        shape = self.model.input_shape
        self.fixed_size: int | None = None
        if shape[1] is not None and shape[2] is not None:
            if shape[1] != shape[2]:
                raise ValueError(f"fixed-size models must take square inputs, got {shape[1:3]}")
            self.fixed_size = int(shape[1])
        if shape[-1] != channels:
            self.channels = int(shape[-1])
        self.patch_size = self.fixed_size or int(patch_size)
        self.tile_size = self.fixed_size or int(tile_size)
        if self.fixed_size:
            self.tile_overlap = min(self.tile_overlap, self.fixed_size // 4)
        self.tile_align = _tile_align(self.model)
        self._infer_fn = None

    # ------------------------------------------------------------------------------------ training
    def _datasets(self, data: Any, validation: Any, validation_split: float, max_pixels: int | None):
        from blurkit.data.pipeline import make_dataset, resolve_source, split

        src = resolve_source(data)
        if validation is not None:
            train_src, val_src = src, resolve_source(validation)
        else:
            tr, va = split(len(src), validation_split, self.seed)
            train_src, val_src = src.subset(tr), (src.subset(va) if va else None)
        common = dict(patch_size=self.patch_size, channels=self.channels, max_pixels=max_pixels)
        train = make_dataset(train_src, self.blur, batch_size=self.batch_size,
                             patches_per_image=self.patches_per_image, seed=self.seed, **common)
        val = None
        if val_src is not None and len(val_src):
            val = make_dataset(val_src, self.blur, batch_size=self.batch_size, patches_per_image=4,
                               augment=False, shuffle=False, repeat=False, seed=self.seed + 7919, **common)
        return train_src, val_src, train, val

    def compile(self, learning_rate: float | None = None) -> None:
        """Compile the model with Adam, the configured loss, and PSNR/SSIM metrics."""
        import keras

        from blurkit.metrics.keras import keras_metric
        from blurkit.metrics.losses import get_loss

        lr = self.learning_rate if learning_rate is None else float(learning_rate)
        self.model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr),
            loss=get_loss(self.loss),
            metrics=[keras_metric("psnr"), keras_metric("ssim")],
        )

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
        max_pixels: int | None = None,
    ):
        """Train on sharp photos, on existing pairs, or on arrays.

        Args:
            data: A folder / file / glob / list of sharp photos, an array of sharp images,
                ``(blurred_dir, sharp_dir)`` or ``(blurred_array, sharp_array)``.
            epochs: Passes over the training images.
            steps_per_epoch: Batches per epoch; default visits each training image once.
            validation: Separate validation data (same forms as ``data``); default: a seeded split of
                ``data`` that never shares an image (or pair) with the training side.
            validation_split: Fraction of ``data`` held out when ``validation`` is None (0 for none).
            callbacks: Extra Keras callbacks, passed through.
            early_stopping: Stop after this many epochs without improvement (restores the best weights).
            checkpoint: Save the best model so far (a blurkit ``.keras`` file, atomically) at this path.
            reduce_lr: The tutorial's ReduceLROnPlateau (factor sqrt(0.1), patience 5, min_lr 0.5e-6).
            verbose: Keras' verbosity (progress bar).
            max_pixels: Refuse images with more pixels than this.

        Returns:
            The Keras ``History`` of this call; :attr:`history` accumulates over calls.
        """
        import keras

        from blurkit.data.pipeline import steps_for

        train_src, val_src, train, val = self._datasets(data, validation, validation_split, max_pixels)
        if not getattr(self.model, "compiled", False) or self.model.optimizer is None:
            self.compile()
        monitor = "val_loss" if val is not None else "loss"
        cbs: list[Any] = []
        if reduce_lr:
            cbs.append(keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=math.sqrt(0.1), patience=5, min_lr=0.5e-6, verbose=0))
        if early_stopping:
            cbs.append(keras.callbacks.EarlyStopping(
                monitor=monitor, patience=int(early_stopping), restore_best_weights=True))
        cbs.extend(_callbacks(self, checkpoint, monitor))
        cbs.extend(callbacks)
        steps = steps_per_epoch or steps_for(len(train_src), self.patches_per_image, self.batch_size)
        start = len(self.history.get("loss", []))
        self.training = {
            "data": _describe_data(data),
            "train_items": len(train_src),
            "validation_items": len(val_src) if val_src is not None else 0,
            "epochs": start + int(epochs),
            "steps_per_epoch": steps,
            "batch_size": self.batch_size,
            "patch_size": self.patch_size,
            "patches_per_image": self.patches_per_image,
            "loss": self.loss,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
        }
        hist = self.model.fit(train, validation_data=val, epochs=start + int(epochs), initial_epoch=start,
                              steps_per_epoch=steps, callbacks=cbs, verbose=verbose, shuffle=False)
        self.training["epochs"] = len(self.history.get("loss", []))
        return hist

    # ---------------------------------------------------------------------------------- inference
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self._infer_fn is None:
            import tensorflow as tf

            model = self.model
            spec = tf.TensorSpec([None, None, None, self.channels], tf.float32)
            self._infer_fn = tf.function(lambda x: model(x, training=False), input_signature=[spec],
                                         reduce_retracing=True)
        return np.clip(self._infer_fn(np.ascontiguousarray(batch, dtype=np.float32)).numpy(), 0.0, 1.0)

    def _restore(self, x: np.ndarray) -> np.ndarray:
        """Restore one float32 (H, W, C) image whose C equals the model's channels."""
        h, w = x.shape[:2]
        if self.fixed_size is None and h * w <= self.tile_size**2:
            if 2 * min(h, w) <= self.tile_align:
                # too small for the model's own reflect padding (PadToMultiple): pad it here instead
                from blurkit.tiling import pad_to_multiple

                return self._infer(pad_to_multiple(x, self.tile_align)[None])[0, :h, :w]
            return self._infer(x[None])[0]
        return tiled_apply_model(self, x)

    def _restore_any(self, img: np.ndarray) -> np.ndarray:
        """Restore a float32 image with any number of channels (1..4) using the model's channels."""
        squeeze = img.ndim == 2
        x = img[..., None] if squeeze else img
        c = x.shape[-1]
        alpha = None
        if c in (2, 4):  # grey+alpha / RGBA: alpha is kept as it is
            x, alpha = x[..., :-1], x[..., -1:]
            c -= 1
        if self.channels == c:
            y = self._restore(x)
        elif self.channels == 3 and c == 1:
            y = self._restore(np.repeat(x, 3, axis=-1)).mean(axis=-1, keepdims=True)
        elif self.channels == 1:
            y = np.concatenate([self._restore(x[..., i : i + 1]) for i in range(c)], axis=-1)
        else:
            raise ValueError(f"cannot restore a {c}-channel image with a {self.channels}-channel model")
        if alpha is not None:
            y = np.concatenate([y, alpha], axis=-1)
        return y[..., 0] if squeeze else y

    def predict(self, x: Any, *, max_pixels: int | None = None) -> Any:
        """Deblur images of any size, dtype and range.

        Args:
            x: A path (file), an image array (H,W) / (H,W,C), a batch (N,H,W,C), or a list of those
                (sizes may differ). uint8 and uint16 images are scaled by their maximum; float images are
                taken as [0, 1] if they lie within it, else as [0, 255] (or [0, 65535]) images.
            max_pixels: Refuse files with more pixels than this before decoding them.

        Returns:
            The restored image(s), in the input's form: same shape, dtype and value range; a path gives
            the restored array (uint8 or uint16 as decoded).
        """
        from blurkit.data.io import read_image

        if isinstance(x, (str, os.PathLike)):
            kw = {} if max_pixels is None else {"max_pixels": max_pixels}
            return self.predict(read_image(x, **kw))
        if isinstance(x, (list, tuple)):
            return [self.predict(i, max_pixels=max_pixels) for i in x]
        arr = np.asarray(x)
        if arr.ndim == 4:
            return np.stack([self.predict(i) for i in arr]) if len(arr) else arr.copy()
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 2, 3, 4)):
            raise ValueError(f"expected an image (H,W), (H,W,C) with C in 1..4, or a batch; got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"empty image of shape {arr.shape}")
        f, restore = _to_unit(arr)
        return restore(self._restore_any(f))

    # --------------------------------------------------------------------------------- evaluation
    def test_pair(self, data: Any, index: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The ``(blurred, sharp)`` float32 images that :meth:`evaluate` scores for item ``index``.

        Sharp photos are blurred at full resolution with the blur generator, seeded by the item's index,
        so every model evaluated with the same blur sees the same inputs.
        """
        from blurkit.data.io import to_float
        from blurkit.data.pipeline import Source, _PatchMaker, resolve_source, to_channels

        src = data if isinstance(data, Source) else resolve_source(data)
        blurred, sharp = _PatchMaker(src, self.blur, 1, 1, self.channels, False, None)._load(index)
        s = to_channels(to_float(sharp), self.channels).astype(np.float32)
        if blurred is None:
            b = self.blur(s, seed=self.seed * 1_000_003 + index)["image"]
        else:
            b = to_channels(to_float(blurred), self.channels)
        return np.asarray(b, np.float32), s

    def evaluate(self, data: Any, *, per_image: bool = False, max_images: int | None = None,
                 progress: bool = False) -> dict[str, Any]:
        """Score the model against the blurred input, image by image at full resolution.

        Args:
            data: Sharp photos (blurred here with the blur generator, seeded per image so every model sees
                the same inputs) or pairs, in any form :meth:`fit` accepts.
            per_image: Include every image's scores.
            max_images: Only the first ``max_images`` images.
            progress: Show a progress bar.

        Returns:
            ``{"model": {metric: mean}, "blurred": {metric: mean}, "gain_db": psnr gain, "images": n}``
            (plus ``"per_image"``). Metrics: PSNR (dB, RGB, data range 1), SSIM (scikit-image convention),
            MSE, accuracy (within 2/255) and channel_accuracy (the tutorial's measure).
        """
        from tqdm.auto import tqdm

        from blurkit.data.pipeline import resolve_source
        from blurkit.registry import METRICS

        src = resolve_source(data)
        n = len(src) if max_images is None else min(len(src), int(max_images))
        fns = {m: METRICS.get(m) for m in EVAL_METRICS}
        rows = []
        for i in tqdm(range(n), disable=not progress, desc="evaluate", unit="img"):
            b, s = self.test_pair(src, i)
            r = self._restore_any(b)
            name = str(src.items[i]) if src.sharp is None else f"#{i}"
            rows.append({"image": name,
                         "model": {m: float(fn(s, r)) for m, fn in fns.items()},
                         "blurred": {m: float(fn(s, b)) for m, fn in fns.items()}})
        if not rows:
            raise ValueError("no images to evaluate")
        out: dict[str, Any] = {
            side: {m: float(np.mean([r[side][m] for r in rows])) for m in EVAL_METRICS}
            for side in ("model", "blurred")
        }
        out["gain_db"] = out["model"]["psnr"] - out["blurred"]["psnr"]
        out["images"] = len(rows)
        if per_image:
            out["per_image"] = rows
        return out

    # ------------------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, Any]:
        """The JSON metadata stored beside the weights in a saved file."""
        from blurkit.blurs import serialize_blur

        return _jsonable({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model_spec,
            "blur": serialize_blur(self.blur),
            "facade": {
                "channels": self.channels, "loss": self.loss, "learning_rate": self.learning_rate,
                "patch_size": self.patch_size, "batch_size": self.batch_size,
                "patches_per_image": self.patches_per_image, "tile_size": self.tile_size,
                "tile_overlap": self.tile_overlap, "seed": self.seed,
            },
            "training": self.training,
            "history": self.history,
            "validation": self.validation,
            "versions": _versions(),
            "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        })

    def save(self, path: str | os.PathLike) -> Path:
        """Write one ``.keras`` file (weights, architecture, optimizer state and blurkit metadata).

        The file is written to a temporary name in the same folder and renamed into place, so an
        interrupted save never damages an existing file.
        """
        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"model files end in .keras, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps(self.metadata(), indent=1, allow_nan=False)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.keras", dir=path.parent)
        os.close(fd)
        try:
            self.model.save(tmp)
            with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(METADATA_NAME, meta)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @staticmethod
    def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
        """Read and check the blurkit metadata of a model file without loading the model.

        Raises:
            ModelFileError: Missing, not a zip, damaged, unsafe entry names, or not a blurkit model.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file")
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as fh:
                if fh.read(4) == b"PK\x03\x04":  # starts like a zip, but its directory is missing
                    raise ModelFileError(f"{path}: damaged or truncated model file (no zip directory)")
            raise ModelFileError(f"{path}: not a .keras model file (not a zip archive)")
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                for n in names:
                    if n.startswith(("/", "\\")) or ".." in n.replace("\\", "/").split("/") or ":" in n:
                        raise ModelFileError(f"{path}: refusing unsafe entry name {n!r} in the archive")
                if zf.testzip() is not None:
                    raise ModelFileError(f"{path}: damaged archive (CRC error)")
                if METADATA_NAME not in names:
                    raise ModelFileError(f"{path}: a Keras file without blurkit metadata ({METADATA_NAME})")
                raw = zf.read(METADATA_NAME)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ModelFileError(f"{path}: damaged or truncated model file ({exc})") from None

        def _no_constants(c: str) -> Any:
            raise ValueError(f"non-standard JSON constant {c}")

        try:
            meta = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ModelFileError(f"{path}: unreadable blurkit metadata ({exc})") from None
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
        for key in ("blur", "facade", "training", "history", "validation"):
            if not isinstance(meta.get(key) or {}, dict):
                raise ModelFileError(f"{path}: damaged blurkit metadata ({key} is not an object)")
        return meta

    @classmethod
    def load(cls, path: str | os.PathLike, *, compile: bool = False) -> Deblurrer:
        """Load a file written by :meth:`save`, never executing code from it (Keras safe mode).

        Raises:
            ModelFileError: The file is not a blurkit model, is damaged, or needs a blur, model or layer
                that is not installed (the message names it).
        """
        import keras

        import blurkit.models.layers  # noqa: F401  (registers blurkit's custom layers)
        from blurkit.blurs import deserialize_blur
        from blurkit.registry import MODELS, UnknownComponentError

        meta = cls.read_metadata(path)
        spec = meta.get("model")
        if spec and spec.get("name") not in MODELS:
            raise ModelFileError(
                f"{path}: needs model builder {spec.get('name')!r}, which is not installed "
                f"(available: {', '.join(MODELS.list())})")
        try:
            blur = deserialize_blur(meta["blur"])
        except (UnknownComponentError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{path}: cannot rebuild its blur generator: {exc}") from None
        try:
            model = keras.saving.load_model(path, compile=compile, safe_mode=True)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types; report them all clearly
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{path}: Keras could not load the model safely: {msg}") from None
        facade = dict(meta.get("facade") or {})
        d = cls.__new__(cls)
        d._from_parts(model, blur, spec, facade)
        d.history = meta.get("history") or {}
        d.validation = meta.get("validation") or {}
        d.training = meta.get("training") or {}
        d.source = str(path)
        return d

    def _from_parts(self, model: Any, blur: Any, spec: dict | None, facade: dict) -> None:
        self.model, self.blur, self.model_spec = model, blur, spec
        self.channels = int(model.input_shape[-1])
        self.loss = facade.get("loss", "mse")
        self.learning_rate = float(facade.get("learning_rate", 1e-3))
        self.batch_size = int(facade.get("batch_size", 16))
        self.patches_per_image = int(facade.get("patches_per_image", 4))
        self.seed = int(facade.get("seed", 0))
        shape = model.input_shape
        self.fixed_size = int(shape[1]) if shape[1] is not None and shape[2] is not None else None
        self.patch_size = self.fixed_size or int(facade.get("patch_size", 96))
        self.tile_size = self.fixed_size or int(facade.get("tile_size", 512))
        self.tile_overlap = int(facade.get("tile_overlap", 64))
        if self.fixed_size:
            self.tile_overlap = min(self.tile_overlap, self.fixed_size // 4)
        self.tile_align = _tile_align(model)
        self._infer_fn = None

    @classmethod
    def from_preset(cls, name: str = "gaussian-v1") -> Deblurrer:
        """Load a pretrained model shipped inside the package (nothing is downloaded)."""
        from blurkit.presets import preset_path

        return cls.load(preset_path(name))

    # ------------------------------------------------------------------------------------ figures
    def plot_history(self, path: str | os.PathLike) -> Path:
        """Write the training curves (loss and PSNR per epoch, training vs validation) to a PNG."""
        from blurkit.plots import plot_history

        return plot_history(self.history, path)

    def __repr__(self) -> str:
        name = self.model_spec["name"] if self.model_spec else type(self.model).__name__
        return (f"Deblurrer(model={name!r}, blur={getattr(self.blur, 'name', type(self.blur).__name__)!r}, "
                f"channels={self.channels}, params={self.model.count_params():,})")


def tiled_apply_model(d: Deblurrer, x: np.ndarray) -> np.ndarray:
    from blurkit.tiling import tiled_apply

    return tiled_apply(d._infer, x, tile=d.tile_size, overlap=d.tile_overlap,
                       batch=4 if d.fixed_size else 1, pad_to_tile=d.fixed_size is not None,
                       align=d.tile_align)


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


def _to_unit(arr: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Float32 [0, 1] view of ``arr`` and the function that maps a result back to ``arr``'s form."""
    dtype = arr.dtype
    if dtype == np.bool_ or dtype.kind not in "uif":
        raise ValueError(f"unsupported image dtype {dtype}; use uint8, uint16 or float")
    if dtype.kind in "ui":
        if dtype not in (np.uint8, np.uint16):
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 65535:
                raise ValueError(f"integer image of dtype {dtype} has values outside [0, 65535] ({lo}..{hi})")
        scale = 255.0 if dtype == np.uint8 or (dtype != np.uint16 and int(arr.max()) <= 255) else 65535.0
        f = arr.astype(np.float32) / scale
        info_max = np.iinfo(dtype).max

        def back_int(y: np.ndarray) -> np.ndarray:
            return np.clip(np.rint(y * scale), 0, info_max).astype(dtype)

        return f, back_int
    if not np.all(np.isfinite(arr)):
        raise ValueError("image contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 65535.0:
        raise ValueError(f"float images must lie in [0, 1], [0, 255] or [0, 65535], got {lo}..{hi}")
    scale = 1.0 if hi <= 1.0 else 255.0 if hi <= 255.0 else 65535.0
    f = (arr / scale).astype(np.float32)

    def back_float(y: np.ndarray) -> np.ndarray:
        return (y * scale).astype(dtype)

    return f, back_float


def _describe_data(data: Any) -> Any:
    if isinstance(data, (str, os.PathLike)):
        return str(data)
    if isinstance(data, tuple) and all(isinstance(d, (str, os.PathLike)) for d in data):
        return [str(d) for d in data]
    return type(data).__name__


def _callbacks(deblurrer: Deblurrer, checkpoint: str | os.PathLike | None, monitor: str) -> list[Any]:
    """Callbacks that record each epoch into ``deblurrer.history`` and save the best model so far."""
    import keras

    class Recorder(keras.callbacks.Callback):
        """Appends every epoch's logs to the facade's history, so checkpoints carry the curves."""

        def __init__(self) -> None:
            super().__init__()
            self.best = math.inf

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = logs or {}
            for k, v in logs.items():
                deblurrer.history.setdefault(k, []).append(float(v))
            if any(k.startswith("val_") for k in logs):
                deblurrer.validation = {k[4:]: float(v) for k, v in logs.items() if k.startswith("val_")}
            value = logs.get(monitor)
            if checkpoint is not None and value is not None and value < self.best:
                self.best = float(value)
                deblurrer.save(checkpoint)

    return [Recorder()]

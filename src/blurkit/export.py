"""Ship a model without blurkit: a TensorFlow SavedModel that restores whole images.

:func:`export_saved_model` (``Deblurrer.export``, ``blurkit export``) writes the model's graph with the
steps around it that ``Deblurrer.predict`` does in NumPy: the conversion from and to 8-bit, the padding of
images smaller than the network's stride, the blur estimate made once per image (models with an
estimator, such as the presets), the crop and the clipping. The result is a standard SavedModel (signatures
``serve``, ``serve_float``, ``serve_sigma`` where the model has an estimator, and ``serving_default``) that loads with ``tf.saved_model.load`` alone: neither
blurkit nor its Python layer classes are needed, and no Python code is stored in it. TFLite converts it
only with TensorFlow ops allowed (the FFTs of the presets' Wiener step are not TFLite built-ins), so an app
needs the Flex delegate (``benchmarks/export_check.py --tflite``); TensorFlow Serving, TF.js and ONNX were
not tried.

Endpoints (also the SavedModel's signatures, ``serve`` the default one):

* ``serve(images)``: ``uint8`` ``(N, H, W, C)`` in, ``uint8`` out, any H and W from 1. A tensor of another
  dtype is refused, but a NumPy array of another dtype is cast to ``uint8`` by TensorFlow without a check
  (a [0, 1] float photo becomes black, 300 becomes 44): convert first, or use ``serve_float``.
* ``serve_float(images)``: ``float32`` ``(N, H, W, C)`` in [0, 1], ``float32`` out (NaN in, NaN out: it
  does not check values as ``Deblurrer.predict`` does).
* ``serve_sigma(images, sigma)``, models with a Gaussian blur estimator (the presets): as ``serve``, with
  each image's known blur (``float64`` ``(N,)``, in pixels) deconvolved instead of the estimated one, as
  ``Deblurrer.predict(image, sigma=...)`` does; sigmas outside the model's range (0.3 to 3.5 for the
  presets) are taken as its nearest end, and a NaN or infinite one is an error (``InvalidArgumentError``).

C is the model's channels (3 for the presets). An image is restored whole: for images up to
``Deblurrer.tile_size`` (1536 px) on a side the result is ``Deblurrer.predict``'s to the last bit, one image
per call (in a batch of several, a few values may differ by one level: the batched convolutions round
differently); larger ones need the memory of one pass over the whole image (the presets: about 400 bytes
per pixel on CPU, some 5 GB for a 12 MP photo), and their blur estimate is made on the whole image
rather than as the median over 1536-px tiles. Tiling, self-ensembles, alpha channels and grey images for a
colour model stay in ``Deblurrer.predict``.

Examples:
    >>> import tempfile
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> from blurkit import Deblurrer
    >>> d = Deblurrer(model="unet", model_options={"width": 4, "depth": 2})
    >>> path = d.export(tempfile.mkdtemp() + "/deblur")
    >>> served = tf.saved_model.load(str(path))
    >>> image = np.random.default_rng(0).integers(0, 256, (1, 37, 50, 3), dtype=np.uint8)
    >>> bool((served.serve(image).numpy()[0] == d.predict(image[0])).all())
    True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["export_saved_model"]


def _fold(n: Any, size: Any, symmetric: Any) -> Any:
    """Indices 0..n-1 folded into 0..size-1 as ``np.pad(mode="reflect"|"symmetric")`` repeats them."""
    import tensorflow as tf

    i = tf.range(n)
    period = tf.where(symmetric, 2 * size, tf.maximum(2 * size - 2, 1))
    j = tf.math.floormod(i, period)
    far = tf.where(symmetric, 2 * size - 1 - j, 2 * size - 2 - j)
    return tf.where(j < size, j, far)


def _pad_bottom_right(x: Any, multiple: int) -> Any:
    """``blurkit.tiling.pad_to_multiple`` in TensorFlow, for a batch: reflect, or symmetric where a side is
    not longer than its padding."""
    import tensorflow as tf

    h, w = tf.shape(x)[1], tf.shape(x)[2]
    ph, pw = (-h) % multiple, (-w) % multiple
    symmetric = tf.logical_not(tf.logical_and(h > ph, w > pw))
    x = tf.gather(x, _fold(h + ph, h, symmetric), axis=1)
    return tf.gather(x, _fold(w + pw, w, symmetric), axis=2)


def export_saved_model(deblurrer: Any, path: str | os.PathLike) -> Path:
    """Write ``deblurrer``'s model as a TensorFlow SavedModel folder (see the module's notes).

    Args:
        deblurrer: A :class:`blurkit.Deblurrer` (trained, loaded or a preset).
        path: The folder to write; it must not exist yet, or be empty. It is written under a temporary
            name beside it and renamed when complete.

    Returns:
        The folder.

    Raises:
        ValueError: The model takes a fixed input size (the tutorial autoencoder): it cannot restore
            images of any size, so there is nothing size-free to export; or ``path`` holds files.
    """
    import shutil
    import tempfile

    import numpy as np
    import tensorflow as tf
    from keras.export import ExportArchive

    if deblurrer.fixed_size:
        raise ValueError(f"this model only takes {deblurrer.fixed_size}x{deblurrer.fixed_size} images; "
                         "export restores images of any size, so it needs a fully convolutional model")
    path = Path(os.fspath(path))
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"{path}: exists and is not an empty folder; export writes a new folder")
    align, c = int(deblurrer.tile_align), int(deblurrer.channels)
    # predict's own traced functions (clipped to [0, 1]): the whole model, or its blur estimator and restorer
    split = deblurrer._split()
    if split is not None:
        lo, hi = deblurrer._wiener_layer("export").sigma_range

    def restore(x: Any, sigma: Any = None) -> Any:
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        small = 2 * tf.minimum(h, w) <= align  # too small for the model's own reflect padding: pad here
        padded = tf.cond(small, lambda: _pad_bottom_right(x, align), lambda: x)
        if split is None:
            y = deblurrer._infer_fn(padded)
        else:
            estimate, restore_with = split
            params = estimate(padded)
            if sigma is not None:  # GaussianWiener.raw_sigma, in float64 as predict computes it
                sigma = tf.debugging.assert_all_finite(tf.cast(sigma, tf.float64), "sigma must be finite")
                t = tf.clip_by_value((sigma - lo) / (hi - lo), 1e-6, 1 - 1e-6)
                raw = tf.cast(tf.math.log(t / (1 - t)), tf.float32)
                params = tf.concat([raw[:, None], params[:, 1:]], axis=1)
            y = restore_with(padded, params)
        return y[:, :h, :w, :]

    # uint8 / 255 as predict computes it: a traced division by a constant becomes a multiplication by its
    # reciprocal, which differs in the last bit for 126 of the 256 values
    levels = tf.constant(np.arange(256, dtype=np.float32) / np.float32(255))

    def to_uint8(y: Any) -> Any:
        return tf.cast(tf.clip_by_value(tf.round(y * 255.0), 0.0, 255.0), tf.uint8)

    def serve(images: Any) -> Any:
        return to_uint8(restore(tf.gather(levels, tf.cast(images, tf.int32))))

    def serve_float(images: Any) -> Any:
        return restore(images)

    def serve_sigma(images: Any, sigma: Any) -> Any:
        return to_uint8(restore(tf.gather(levels, tf.cast(images, tf.int32)), sigma))

    uint8 = tf.TensorSpec([None, None, None, c], tf.uint8)
    archive = ExportArchive()
    archive.track(deblurrer.model)
    archive.add_endpoint("serve", serve, input_signature=[uint8])
    archive.add_endpoint("serve_float", serve_float, input_signature=[tf.TensorSpec([None, None, None, c], tf.float32)])
    if split is not None:
        archive.add_endpoint("serve_sigma", serve_sigma, input_signature=[uint8, tf.TensorSpec([None], tf.float64)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        archive.write_out(str(tmp / "model"), verbose=False)
        if path.exists():
            path.rmdir()
        (tmp / "model").rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path

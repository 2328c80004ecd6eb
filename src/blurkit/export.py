"""Ship a model without blurkit: a TensorFlow SavedModel that restores whole images.

:func:`export_saved_model` (``Deblurrer.export``, ``blurkit export``) writes the model's graph with the
steps around it that ``Deblurrer.predict`` does in NumPy: the conversion from and to 8-bit, the padding of
images smaller than the network's stride, the blur estimate made once per image (models with an
estimator, such as the presets), the crop and the clipping. The result is a standard SavedModel (signatures
``serve``, ``serve_float``, ``serve_sigma`` where the model has an estimator, and ``serving_default``) that loads with ``tf.saved_model.load`` alone: neither
blurkit nor its Python layer classes are needed, and no Python code is stored in it. TFLite converts it
only with TensorFlow ops allowed (``SELECT_TF_OPS``), for every model, not only the presets: the tiling's
window arithmetic (float64), the blur estimate's loop and the presets' FFTs are not TFLite built-ins, so an
app needs the Flex delegate (``benchmarks/export_check.py --tflite``; pip's ``tf.lite.Interpreter`` cannot
run it). Loaded the way TensorFlow Serving loads a model (``saved_model_cli run`` on each signature) it
gives predict's pixels; TensorFlow Serving itself, TF.js and ONNX were not tried.

Endpoints (also the SavedModel's signatures, ``serve`` the default one):

* ``serve(images)``: ``uint8`` ``(N, H, W, C)`` in, ``uint8`` out, any H and W from 1. A tensor of another
  dtype is refused, but a NumPy array of another dtype is cast to ``uint8`` by TensorFlow without a check
  (a [0, 1] float photo becomes black, 300 becomes 44): convert first, or use ``serve_float``.
* ``serve_float(images)``: ``float32`` ``(N, H, W, C)`` in [0, 1], ``float32`` out. NaN or infinite values
  and values below -0.5 or above 1.5 (a [0, 255] image) are an error (``InvalidArgumentError``), as
  ``Deblurrer.predict`` refuses non-finite values (one NaN would make every output value NaN).
* ``serve_sigma(images, sigma)``, models with a Gaussian blur estimator (the presets): as ``serve``, with
  each image's known blur (``float64`` ``(N,)``, in pixels) deconvolved instead of the estimated one, as
  ``Deblurrer.predict(image, sigma=...)`` does; positive sigmas outside the model's range (0.3 to 3.5 for
  the presets) are taken as its nearest end, and a sigma of 0 or less, NaN or infinite, or a count of sigmas
  other than N, is an error (``InvalidArgumentError``).

Every endpoint returns an empty batch for an empty one (N = 0) and refuses images of 0 pixels in height
or width.

C is the model's channels (3 for the presets). The graph restores an image as ``Deblurrer.predict``
does, to the last bit, one image per call (in a batch of several, a few values may differ by one level:
the batched convolutions round differently): an image of up to ``Deblurrer.tile_size**2`` pixels (1536 x
1536) whole, a larger one in predict's overlapping tiles (the same tiles, blending windows and sums, so
memory is bounded by the tile as in predict: a 12 MP photo peaks at about 2.3 GB of resident memory with the
default preset, predict at 1.7 GB; ``benchmarks/export_check.py --mosaic``), and the blur of a photo larger than
``Deblurrer.estimate_tile`` on a side read off such tiles, their estimates' median. The tile sizes are those
of the Deblurrer when it is exported. Self-ensembles, alpha channels and grey images for a colour model
stay in ``Deblurrer.predict``. Keep the loaded object in a variable while you call it (``m =
tf.saved_model.load(path); m.serve(images)``): TensorFlow frees its weights with it, and
``tf.saved_model.load(path).serve(images)`` fails with "Called a function referencing variables which have
been deleted".

Examples:
    >>> import tempfile
    >>> import numpy as np
    >>> import tensorflow as tf
    >>> from blurkit import Deblurrer
    >>> d = Deblurrer(model="unet", model_options={"width": 4, "depth": 2})
    >>> image = np.random.default_rng(0).integers(0, 256, (1, 37, 50, 3), dtype=np.uint8)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = d.export(folder + "/deblur")
    ...     served = tf.saved_model.load(str(path))
    ...     bool((served.serve(image).numpy()[0] == d.predict(image[0])).all())
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


def _ceil_div(a: Any, b: Any) -> Any:
    import tensorflow as tf

    return tf.math.floordiv(a + b - 1, b)


def _tile_starts(length: Any, tile: Any, overlap: int, align: int) -> Any:
    """:func:`blurkit.tiling.tile_starts` in TensorFlow (``length`` and ``tile`` multiples of ``align``):
    the same starts, from the same float64 division and round-half-to-even."""
    import tensorflow as tf

    units, size = length // align, tile // align
    ov = tf.minimum(-(-overlap // align), size - 1)
    n = tf.maximum(_ceil_div(units - ov, size - ov), 1)
    n = tf.where(units <= size, 1, n)
    # one division of the integer product, as Python's i * (length - tile) / (n - 1): i * ((L - T) / (n - 1))
    # rounds twice and moves a start by a unit where the quotient is near k + 0.5 (sides of ~15 tiles and more)
    i = tf.range(n)
    exact = tf.cast(i * (units - size), tf.float64) / tf.cast(tf.maximum(n - 1, 1), tf.float64)
    return tf.cast(tf.round(exact), tf.int32) * align


def _fit_tile(length: Any, tile: int, overlap: int, align: int) -> Any:
    """:func:`blurkit.tiling.fit_tile` in TensorFlow."""
    import tensorflow as tf

    units, size = length // align, tile // align
    ov = min(-(-overlap // align), size - 1)
    n = _ceil_div(units - ov, size - ov)
    fitted = tf.minimum(size, _ceil_div(units + (n - 1) * ov, tf.maximum(n, 1))) * align
    return tf.where(length <= tile, length, fitted)


def _plan(length: Any, tile: int, overlap: int, align: int) -> tuple[Any, Any, Any]:
    """One axis of :func:`blurkit.tiling.plan_tiles` (``fit=True``): the padded length, tile side, starts."""
    import tensorflow as tf

    align = max(1, align)
    if align > 1:
        tile = max(align, tile - tile % align)
    padded = _ceil_div(length, align) * align
    overlap = min(overlap, tile - 1)
    side = _fit_tile(padded, tile, overlap, align)
    starts = tf.cond(padded > side, lambda: _tile_starts(padded, side, overlap, align),
                     lambda: tf.zeros([1], tf.int32))
    return padded, side, starts


def _ramp_at(p: Any, n: Any) -> Any:
    """``blurkit.tiling._ramp(n)[p]`` (float64), elementwise."""
    import numpy as np
    import tensorflow as tf

    margin = n // 4
    inner = tf.maximum(n - 2 * margin, 1)
    t = (tf.cast(p - margin, tf.float64) + 0.5) / tf.cast(inner, tf.float64)
    up = 0.5 - 0.5 * tf.cos(np.pi * t)
    return tf.where(p < margin, tf.zeros_like(up), tf.where(p >= n - margin, tf.ones_like(up), up))


def _windows(starts: Any, side: Any, length: Any) -> Any:
    """:func:`blurkit.tiling._normalised_windows` in TensorFlow: ``(n, side)`` float32 blending weights."""
    import tensorflow as tf

    n = tf.shape(starts)[0]
    p = tf.range(side)[None, :]
    nxt = tf.concat([starts[1:], [length]], axis=0)[:, None]  # a last tile has no right neighbour
    prev = tf.concat([[-side], starts[:-1]], axis=0)[:, None]
    s = starts[:, None]
    left_ov, right_ov = prev + side - s, s + side - nxt  # <= 0: no neighbour on that side
    left = tf.where(p < left_ov, tf.cast(_ramp_at(p, left_ov), tf.float32), 1.0)
    q = side - 1 - p  # the mirrored ramp on the right
    right = tf.where(q < right_ov, tf.cast(_ramp_at(q, right_ov), tf.float32), 1.0)
    wins = tf.minimum(left, right)

    def add(i: Any, total: Any) -> tuple[Any, Any]:
        placed = tf.pad(wins[i], [[starts[i], length - starts[i] - side]])
        return i + 1, total + placed

    _, total = tf.while_loop(lambda i, _: i < n, add, (0, tf.zeros([length], tf.float32)), parallel_iterations=1)
    total = tf.maximum(total, 1e-12)
    return wins / tf.gather(total, s + p)


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

    from blurkit.deblurrer import _need_tensorflow

    _need_tensorflow("export")  # export_saved_model(d, ...) as d.export(...)
    if deblurrer.fixed_size:
        raise ValueError(f"this model only takes {deblurrer.fixed_size}x{deblurrer.fixed_size} images; "
                         "export restores images of any size, so it needs a fully convolutional model")
    path = Path(os.fspath(path))
    if path.name in ("", ".."):  # ".", "..", "/" (pathlib drops the "." of "a/.")
        raise ValueError(f"{path}: name the folder to write (export writes a new folder and renames it into "
                         "place, so it cannot be . or ..)")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise ValueError(f"{path}: exists and is not an empty folder; export writes a new folder")
    align, c = int(deblurrer.tile_align), int(deblurrer.channels)
    # predict's own traced functions (clipped to [0, 1]): the whole model, or its blur estimator and restorer
    split = deblurrer._split()
    if split is not None:
        lo, hi = deblurrer._wiener_layer("export").sigma_range

    tile, overlap, estimate_tile = int(deblurrer.tile_size), int(deblurrer.tile_overlap), int(deblurrer.estimate_tile)
    if not 0 <= overlap < tile:  # predict refuses it too (plan_tiles); the graph would clamp it silently
        raise ValueError(f"tile_overlap must be in [0, tile_size), got {overlap} with tile_size {tile}")

    def run(x: Any, params: Any) -> Any:
        return deblurrer._infer_fn(x) if split is None else split[1](x, params)

    def estimate_photo(x: Any) -> Any:
        """``Deblurrer._estimate_photo``: the median of the estimates on ``estimate_tile`` tiles."""
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        _, th, ys = _plan(h, estimate_tile, 0, 1)
        _, tw, xs = _plan(w, estimate_tile, 0, 1)
        nx, count = tf.size(xs), tf.size(ys) * tf.size(xs)

        def one(k: Any, found: Any) -> tuple[Any, Any]:
            y, x0 = ys[k // nx], xs[k % nx]
            return k + 1, found.write(k, split[0](x[:, y : y + th, x0 : x0 + tw]))

        found = tf.TensorArray(tf.float32, size=count)
        _, found = tf.while_loop(lambda k, _: k < count, one, (0, found), parallel_iterations=1)
        ordered = tf.sort(found.stack(), axis=0)
        return tf.where(count % 2 == 1, ordered[count // 2],
                        (ordered[tf.maximum(count // 2 - 1, 0)] + ordered[count // 2]) / 2.0)

    def tiled(x: Any, params: Any) -> Any:
        """``tiling.tiled_apply`` as ``Deblurrer.predict`` runs it: the same tiles, windows and sums."""
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        hp, th, ys = _plan(h, tile, overlap, align)
        wp, tw, xs = _plan(w, tile, overlap, align)
        x = _pad_bottom_right(x, align)
        wy, wx = _windows(ys, th, hp), _windows(xs, tw, wp)
        nx, count = tf.size(xs), tf.size(ys) * tf.size(xs)

        def one(k: Any, acc: Any) -> tuple[Any, Any]:
            iy, ix = k // nx, k % nx
            y, x0 = ys[iy], xs[ix]
            weight = (wy[iy][:, None] * wx[ix][None, :])[None, :, :, None]
            part = run(x[:, y : y + th, x0 : x0 + tw], params) * weight
            part = tf.pad(part, [[0, 0], [y, hp - y - th], [x0, wp - x0 - tw], [0, 0]])
            return k + 1, tf.ensure_shape(acc + part, [None, None, None, c])

        acc = tf.zeros(tf.stack([tf.shape(x)[0], hp, wp, c]), tf.float32)
        _, acc = tf.while_loop(lambda k, _: k < count, one, (0, tf.ensure_shape(acc, [None, None, None, c])),
                               parallel_iterations=1)
        return acc[:, :h, :w, :]

    def restore(x: Any, sigma: Any = None) -> Any:
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        small = 2 * tf.minimum(h, w) <= align  # too small for the model's own reflect padding: pad here
        whole = tf.cast(h, tf.int64) * tf.cast(w, tf.int64) <= tile**2
        padded = tf.cond(tf.logical_and(small, whole), lambda: _pad_bottom_right(x, align), lambda: x)
        params = None
        if split is not None:
            params = tf.cond(small, lambda: split[0](_pad_bottom_right(x, align)), lambda: estimate_photo(x))
            if sigma is not None:  # GaussianWiener.raw_sigma, in float64 as predict computes it (serve_sigma
                # checked the values)
                t = tf.clip_by_value((tf.cast(sigma, tf.float64) - lo) / (hi - lo), 1e-6, 1 - 1e-6)
                raw = tf.cast(tf.math.log(t / (1 - t)), tf.float32)
                params = tf.concat([raw[:, None], params[:, 1:]], axis=1)
        return tf.cond(whole, lambda: run(padded, params)[:, :h, :w, :], lambda: tiled(x, params))

    # uint8 / 255 as predict computes it: a traced division by a constant becomes a multiplication by its
    # reciprocal, which differs in the last bit for 126 of the 256 values
    levels = tf.constant(np.arange(256, dtype=np.float32) / np.float32(255))

    def to_uint8(y: Any) -> Any:
        return tf.cast(tf.clip_by_value(tf.round(y * 255.0), 0.0, 255.0), tf.uint8)

    def checked(images: Any, restore_them: Any) -> Any:
        """``restore_them()`` of a batch of at least 1 x 1 pixels (an error that says so, not one from inside
        the graph); an empty batch gives an empty batch."""
        shape = tf.shape(images)
        sized = tf.debugging.assert_greater(tf.minimum(shape[1], shape[2]), 0,
                                            message="images must be at least 1 x 1 pixels")
        with tf.control_dependencies([sized]):
            return tf.cond(shape[0] > 0, restore_them, lambda: tf.zeros_like(images))

    def serve(images: Any) -> Any:
        return checked(images, lambda: to_uint8(restore(tf.gather(levels, tf.cast(images, tf.int32)))))

    def serve_float(images: Any) -> Any:
        finite = tf.debugging.assert_all_finite(images, "images must be finite (a NaN or infinite value)")
        low = tf.debugging.assert_greater_equal(tf.reduce_min(images), -0.5,
                                                message="serve_float takes images in [0, 1]")
        high = tf.debugging.assert_less_equal(tf.reduce_max(images), 1.5,
                                              message="serve_float takes images in [0, 1] (not [0, 255])")
        with tf.control_dependencies([low, high]):
            return checked(finite, lambda: restore(finite))

    def serve_sigma(images: Any, sigma: Any) -> Any:
        count = tf.debugging.assert_equal(tf.size(sigma), tf.shape(images)[0],
                                          message="serve_sigma takes one sigma per image")
        sigma = tf.debugging.assert_all_finite(sigma, "sigma must be finite")
        positive = tf.debugging.assert_positive(sigma, message="sigma must be positive")
        with tf.control_dependencies([count, positive]):
            return checked(images, lambda: to_uint8(restore(tf.gather(levels, tf.cast(images, tf.int32)), sigma)))

    uint8 = tf.TensorSpec([None, None, None, c], tf.uint8)
    archive = ExportArchive()
    archive.track(deblurrer.model)
    archive.add_endpoint("serve", serve, input_signature=[uint8])
    archive.add_endpoint("serve_float", serve_float, input_signature=[tf.TensorSpec([None, None, None, c], tf.float32)])
    if split is not None:
        archive.add_endpoint("serve_sigma", serve_sigma, input_signature=[uint8, tf.TensorSpec([None], tf.float64)])
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_folders(path)
    from blurkit.data.io import temp_prefix

    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path.name), suffix=_TEMP_SUFFIX, dir=path.parent))
    try:
        archive.write_out(str(tmp / "model"), verbose=False)
        if path.exists():
            path.rmdir()
        (tmp / "model").rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


_TEMP_SUFFIX = ".blurkit-export"
"""The end of an export's temporary folder's name: only folders so named are ever removed (a user's own
``.NAME.previous`` beside the export is not blurkit's)."""


def _remove_stale_folders(path: Path) -> None:
    """Delete the hidden folders (``.NAME.XXXXXXXX.blurkit-export``) that exports to ``path`` killed before
    their rename left beside it, once older than :data:`blurkit.data.io.STALE_TEMP_SECONDS` (a younger one
    may be another export's, in progress). Nothing else is removed."""
    import shutil
    import time

    from blurkit.data.io import STALE_TEMP_SECONDS, temp_pattern, temp_stem

    pattern, now = temp_pattern(_TEMP_SUFFIX), time.time()
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if not match or match.group(1) != temp_stem(path.name):
            continue
        try:
            if entry.is_dir(follow_symlinks=False) and \
                    now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
                shutil.rmtree(entry.path)
        except OSError:
            pass

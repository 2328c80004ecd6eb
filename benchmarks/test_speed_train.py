"""Speed of training: the input pipeline against the tutorial's loader and the model's appetite, and one
training step of every registered model.

The pipeline and the model are timed apart; during ``fit`` they share the same cores, so the ratio
"pipeline / training consumption" says whether the model could ever be starved, not how a real run splits
its time.
"""

from __future__ import annotations

import gc
import inspect
import time

import numpy as np
import pytest
from _util import (
    PHOTO_SIZE,
    PHOTOS,
    PIPE_BATCHES,
    QUICK,
    TRAIN_BATCH,
    TRAIN_PATCH,
    attach,
    efficiency,
    make_photo,
    plan_rounds,
    record,
    timed,
)

from blurkit.registry import MODELS


def _defaults() -> dict:
    from blurkit.deblurrer import Deblurrer

    sig = inspect.signature(Deblurrer.__init__).parameters
    return {k: sig[k].default for k in ("model", "blur", "patch_size", "batch_size", "patches_per_image")}


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory):
    """A folder of PNG photos like the training set's (640x480), cut from scikit-image's photos."""
    import cv2

    folder = tmp_path_factory.mktemp("photos")
    h, w = PHOTO_SIZE
    for i in range(PHOTOS):
        img = make_photo(h, w, index=i, seed=1)
        assert cv2.imwrite(str(folder / f"photo{i:03d}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return folder


# ---------------------------------------------------------------------------------- 5. input pipeline
def test_pipeline_make_dataset(benchmark, photo_folder):
    """(blurred, sharp) patch pairs per second from the folder through ``make_dataset`` with the
    ``Deblurrer``'s defaults (default blur, patch size, batch size, patches per image)."""
    from blurkit.data.pipeline import make_dataset, resolve_source
    from blurkit.registry import BLURS

    d = _defaults()
    patch, batch = TRAIN_PATCH or d["patch_size"], TRAIN_BATCH or d["batch_size"]
    ds = make_dataset(resolve_source(str(photo_folder)), BLURS.create(d["blur"]), patch_size=patch,
                      batch_size=batch, patches_per_image=d["patches_per_image"], seed=0)
    holder = [iter(ds)]
    for _ in range(3):  # start the worker threads, fill the shuffle buffer
        next(holder[0])

    def pull():
        for _ in range(PIPE_BATCHES):
            b, s = next(holder[0])
        return tuple(b.shape), tuple(s.shape)

    t = timed(benchmark, pull, rounds=2 if QUICK else 3, warmup=1)
    holder.clear()  # drop the iterator: its prefetching threads must not compete with later benchmarks
    del ds
    gc.collect()
    assert t["result"][0] == (batch, patch, patch, 3)
    s = t["median"]
    pairs = PIPE_BATCHES * batch / s
    vals = {"pairs_per_s": pairs, "photos_decoded_per_s": pairs / d["patches_per_image"], "seconds": s,
            "patch_size": patch, "batch_size": batch, "patches_per_image": d["patches_per_image"],
            "photos": PHOTOS, "photo_size": f"{PHOTO_SIZE[1]}x{PHOTO_SIZE[0]} png"}
    record("pipeline", "make_dataset", **vals)
    attach(benchmark, **vals)


def test_pipeline_tutorial_loader(benchmark, photo_folder):
    """The tutorial's loader: a Python loop of ``keras.utils.load_img(target_size=(128, 128))`` and
    ``img_to_array`` over the folder. It makes one sharp 128x128 image per photo and no blurred partner,
    so images/s here is compared with pairs/s there (generous to the tutorial)."""
    import keras

    files = sorted(photo_folder.glob("*.png"))

    def load():
        images = []
        for f in files:
            images.append(keras.utils.img_to_array(keras.utils.load_img(f, target_size=(128, 128))))
        return np.array(images)

    t = timed(benchmark, load, rounds=3 if QUICK else 5, warmup=1)
    assert t["result"].shape == (len(files), 128, 128, 3)
    s = t["median"]
    vals = {"images_per_s": len(files) / s, "seconds": s, "photos": len(files)}
    record("pipeline", "tutorial_loader", **vals)
    attach(benchmark, **vals)


# ---------------------------------------------------------------------------------- 6. training step
TRAIN_CASES = MODELS.list()


@pytest.mark.parametrize("name", TRAIN_CASES)
def test_train_step(benchmark, peak, name):
    """Images (patches) per second of the training step ``Deblurrer.fit`` runs
    (:func:`blurkit.training.step_functions`, on one device) for each registered model at its default
    width, at the ``Deblurrer``'s default patch and batch size (fixed-input models: their input size).
    For the default model this is the rate at which training consumes the pipeline's pairs. The default
    model is also timed through Keras' ``model.train_on_batch`` in the same test (``keras_seconds``)."""
    import tensorflow as tf

    from blurkit import Deblurrer
    from blurkit.metrics.losses import get_loss
    from blurkit.training import step_functions

    d = Deblurrer(model=name)
    d.compile()
    patch = d.fixed_size or TRAIN_PATCH or d.patch_size
    batch = TRAIN_BATCH or d.batch_size
    rng = np.random.default_rng(0)
    y = rng.random((batch, patch, patch, d.channels), np.float32)
    x = (0.5 * y + 0.5 * y.mean()).astype(np.float32)
    strategy = tf.distribute.get_strategy()
    train_step, _ = step_functions(d.model, get_loss(d.loss), strategy, batch)
    batches = iter(tf.data.Dataset.from_tensors((x, y)).repeat())

    def step():
        return train_step(batches).numpy()

    t0 = time.perf_counter()
    step()  # builds the optimizer and traces the training function
    first = time.perf_counter() - t0
    rounds, _ = plan_rounds(first / 2)
    t = timed(benchmark, step, rounds=max(2, rounds), warmup=0)
    s = t["median"]
    try:
        from blurkit.models.flops import flops_per_pixel

        fpp = flops_per_pixel(d.model, 256, 256)
    except TypeError:
        fpp = None
    eff = efficiency(3 * fpp if fpp else None, batch * patch * patch, s)  # backward ~ 2x forward
    vals = {"images_per_s": batch / s, "seconds": s, "first_call_s": first, "patch_size": patch,
            "batch_size": batch, "params": int(d.model.count_params()), "flops_per_pixel": fpp,
            "rounds": t["rounds"], **eff}
    if name == Deblurrer().model_spec["name"]:  # the default model: also through Keras, alternating
        d.model.train_on_batch(x, y)
        ours, keras_t = [], []
        for _ in range(max(2, min(t["rounds"], 5))):
            t0 = time.perf_counter()
            step()
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            d.model.train_on_batch(x, y)
            keras_t.append(time.perf_counter() - t0)
        vals.update(keras_seconds=float(np.median(keras_t)),
                    vs_keras=float(np.median(np.array(ours) / np.array(keras_t))))
    record("train_step", f"model:{name}", **vals)
    attach(benchmark, **vals)

"""Helpers shared by several test files (imported as ``helpers``: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

SMALL_BLIND = "ignore:a .* image is too small to read its blur off:UserWarning"
"""A ``pytest.mark.filterwarnings`` filter for tests that restore images under 48 px blind on purpose (shapes,
padding, strips): the warning is right there, and is tested where it is the subject."""


def changing_unet(options: dict[str, Any], photo: np.ndarray) -> Any:
    """A tiny U-Net Deblurrer that changes images.

    Untrained, a U-Net's last convolution is zero: the exact identity, under which an image written
    unrestored looks restored. Small random weights and a bias there make it a restoration that differs pixel
    by pixel and channel by channel. That is checked here on the Keras model itself (on ``photo``, uint8 RGB),
    so a ``predict`` that passes images through is caught by the tests that use it, not here.
    """
    import keras

    from blurkit import Deblurrer

    d = Deblurrer(model="unet", model_options=options)
    tail = d.model.get_layer("tail")
    kernel, bias = tail.get_weights()
    assert not kernel.any() and not bias.any()  # the identity at init
    tail.set_weights([np.random.default_rng(0).normal(0, 0.005, kernel.shape).astype("float32"), bias + 0.02])
    x = photo[None].astype(np.float32) / 255
    change = keras.ops.convert_to_numpy(d.model(x)) - x
    assert 2 / 255 < np.abs(change).mean() < 20 / 255 and np.ptp(change.mean(axis=(0, 1, 2))) > 1 / 255
    return d


def levels(a: np.ndarray, b: np.ndarray) -> float:
    """The mean absolute difference of two images of one dtype, in 8-bit levels (floats: [0, 1] images)."""
    scale = 257.0 if a.dtype == np.uint16 else 1.0 if a.dtype.kind in "ui" else 1 / 255
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean() / scale)


def start(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start ``argv`` with its stdout and stderr captured as text; :func:`finish` waits for it."""
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(*procs: subprocess.Popen[str], timeout: float = 300) -> list[subprocess.CompletedProcess[str]]:
    """Wait for processes started together (``subprocess.run``'s result for each; all killed after
    ``timeout`` seconds or a failure, as ``subprocess.run(timeout=...)`` kills)."""
    done = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return done


def source_env(**extra: str) -> dict[str, str]:
    """The environment for a fresh Python process that imports this checkout's blurkit (``src`` first on
    ``PYTHONPATH``), with ``extra`` variables added."""
    paths = [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), **extra}


def rewrite_model(src: Path, dst: Path, *, config=None, meta_raw: bytes | None = None, meta=None, drop=(),
             extra: dict[str, bytes] | None = None, weights: bytes | None = None, encrypted: str | None = None
             ) -> Path:
    """Copy a saved model, editing its Keras config or its blurkit.json (``meta``: functions of the parsed
    JSON), replacing its weights, dropping the entries ``drop`` names, adding ``extra`` entries (beside any of
    that name: drop it to replace it), or flagging entry ``encrypted`` as encrypted."""
    import json
    import zipfile

    from blurkit.deblurrer import METADATA_NAME

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename in drop:
                continue
            if info.filename == "config.json" and config is not None:
                cfg = json.loads(data)
                data = json.dumps(config(cfg) or cfg).encode()
            if info.filename == METADATA_NAME and meta is not None:
                m = json.loads(data)
                data = json.dumps(meta(m) or m).encode()
            if info.filename == METADATA_NAME and meta_raw is not None:
                data = meta_raw
            if info.filename == "model.weights.h5" and weights is not None:
                data = weights
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    if encrypted is not None:  # set its "encrypted" flag (zipfile writes none): reading it needs a password
        raw = bytearray(dst.read_bytes())
        with zipfile.ZipFile(dst) as zf:
            local = zf.getinfo(encrypted).header_offset
        raw[local + 6] |= 0x1
        at = raw.index(b"PK\x01\x02")  # the central directory: find the entry's record
        while raw[at + 46: at + 46 + len(encrypted)] != encrypted.encode():
            at = raw.index(b"PK\x01\x02", at + 4)
        raw[at + 8] |= 0x1
        dst.write_bytes(bytes(raw))
    return dst


def h5_bytes(build: Any) -> bytes:
    """An HDF5 file made by ``build(h5py.File)``, as bytes."""
    import io

    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
    return buf.getvalue()


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def bench(name: str) -> Any:
    """The script ``benchmarks/NAME.py`` as a module (the folder is on ``sys.path`` only while it imports)."""
    import importlib
    import sys

    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))

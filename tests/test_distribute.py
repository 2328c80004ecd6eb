"""Distributed training with ``tf.distribute``, for real on this CPU machine (nothing mocked).

* ``MirroredStrategy`` over 2 logical CPU devices: the same short run as on one device, with the same
  global batch, gives the same loss curves. Stated tolerance: a relative 1e-4 on every epoch's training
  and validation loss (measured: about 1e-7, float32 round-off of the gradient all-reduce).
* ``MultiWorkerMirroredStrategy`` with 2 worker processes on 127.0.0.1 (free ports, a TF_CONFIG each),
  through ``blurkit train --distribute multiworker``: both finish, both end with bit-identical weights,
  only the chief writes the model (and its curves), and the model loads and predicts. Bounded in time;
  the processes are always killed.

Each case runs in subprocesses: logical devices and collective ops must be configured before TensorFlow
starts, which has already happened in the pytest process. Reproduce: ``pytest tests/test_distribute.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from blurkit.data.io import write_image

TIMEOUT = 300  # seconds for a whole subprocess run (about 20-60 s on a 2-core CPU)
RTOL = 1e-4
TINY = ["--model", "unet", "--model-option", "width=4", "--model-option", "depth=1", "--model-option", "blocks=1"]

MIRRORED = textwrap.dedent("""
    import json, os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from skimage import data
    from blurkit import Deblurrer

    photos = [img[::4, ::4] for img in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())]

    def run(strategy, batch_size=8):
        keras.utils.set_random_seed(0)
        d = Deblurrer("unet", model_options={"width": 4, "depth": 1, "blocks": 1}, patch_size=16,
                      batch_size=batch_size, patches_per_image=4, learning_rate=0.01, seed=0)
        d.fit(photos, epochs=3, steps_per_epoch=4, validation_split=0.25, verbose=0, strategy=strategy)
        return d

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one, two = run(None), run(mirrored)
    try:
        run(mirrored, batch_size=7)
        odd = None
    except ValueError as exc:
        odd = str(exc)
    print("RESULT " + json.dumps({"one": one.history, "two": two.history, "replicas": two.training.get("replicas"),
                                 "odd": odd, "restored": two.predict(photos[0]).shape == photos[0].shape}))
""")

# A worker: `blurkit train` with the weights' digest printed after fit (to compare the workers).
WORKER = textwrap.dedent("""
    import hashlib, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    from blurkit.deblurrer import Deblurrer

    original = Deblurrer.fit

    def fit(self, *args, **kwargs):
        hist = original(self, *args, **kwargs)
        blob = b"".join(np.asarray(w, np.float32).tobytes() for w in self.model.get_weights())
        print("WEIGHTS", hashlib.sha256(blob).hexdigest(), flush=True)
        print("HISTORY", self.history["loss"], self.history.get("val_loss"), flush=True)
        return hist

    Deblurrer.fit = fit
    from blurkit.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):  # held open together, so the ports differ
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _kill(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait(timeout=30)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        write_image(root / f"p{i}.png", np.kron(rng.random((6, 8, 3)), np.ones((5, 5, 1))))
    return root


def test_mirrored_matches_single_device(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT,
                          env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    one, two = out["one"], out["two"]
    assert out["replicas"] == 2 and out["restored"]
    for key in ("loss", "val_loss", "psnr", "val_psnr"):
        assert len(one[key]) == len(two[key]) == 3
        np.testing.assert_allclose(two[key], one[key], rtol=RTOL, err_msg=key)
    assert one["loss"][0] != one["loss"][-1]  # it did train
    assert "batch_size 7" in out["odd"] and "multiple" in out["odd"]


def test_multiworker_two_processes(photos, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out" / "model.keras"
    args = ["train", str(photos), *TINY, "--patch-size", "16", "--batch-size", "4", "--patches-per-image", "2",
            "--epochs", "2", "--steps-per-epoch", "3", "--val-split", "0.34", "--distribute", "multiworker",
            "--out", str(out)]
    procs = []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            procs.append(subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True, env=_env(TF_CONFIG=tf_config),
                                          start_new_session=True, cwd=tmp_path))
        results = [p.communicate(timeout=TIMEOUT) for p in procs]
    finally:
        _kill(procs)
    for p, (_, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr[-3000:]
    digests = [next(x for x in stdout.splitlines() if x.startswith("WEIGHTS")) for stdout, _ in results]
    histories = [next(x for x in stdout.splitlines() if x.startswith("HISTORY")) for stdout, _ in results]
    assert digests[0] == digests[1], "the workers ended with different weights"
    assert histories[0] == histories[1]
    assert "saved" in results[0][0] and "saved" not in results[1][0]  # only the chief reports and writes
    assert out.is_file() and out.with_suffix(".png").is_file()
    assert not out.with_name("model.resume").exists()  # the chief removed the finished run's state

    from blurkit import Deblurrer

    d = Deblurrer.load(out)
    assert d.training["epochs"] == 2 and d.training["replicas"] == 2
    img = np.random.default_rng(1).random((24, 20, 3)).astype(np.float32)
    assert d.predict(img).shape == img.shape


def test_multiworker_needs_tf_config(photos, tmp_path, monkeypatch, capsys):
    from blurkit.cli.main import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["train", str(photos), *TINY, "--distribute", "multiworker", "--out", str(tmp_path / "m.keras")]) == 2
    assert "TF_CONFIG" in capsys.readouterr().err


def test_cli_mirrored_on_local_devices(photos, tmp_path):
    """``--distribute mirrored`` on this host (its one CPU device): trains, writes the model and curves."""
    from blurkit import Deblurrer
    from blurkit.cli.main import main

    out = tmp_path / "m.keras"
    assert main(["train", str(photos), *TINY, "--patch-size", "16", "--batch-size", "4", "--epochs", "2",
                 "--steps-per-epoch", "2", "--distribute", "mirrored", "--out", str(out), "-q"]) == 0
    d = Deblurrer.load(out)  # the best epoch's model (by validation loss): its history ends at that epoch
    assert d.training["epochs"] == 2 and 1 <= len(d.history["loss"]) <= 2
    assert out.with_suffix(".png").is_file()

"""``blurkit deblur --skip-existing`` when every output is already there (a finished run started again, a cron
job over a folder) finds nothing to do without loading a model: it imported TensorFlow and loaded a preset
first, about 20 s, whatever the folder (scale audit of 2026-12-08, F5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from blurkit.data.io import write_image

CODE = """
import sys
from blurkit.cli.main import main
status = main(sys.argv[1:])
print("tensorflow imported" if "tensorflow" in sys.modules else "tensorflow not imported")
sys.exit(status)
"""


def _deblur(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CODE, "deblur", *argv], capture_output=True, text=True,
                          timeout=300)


def test_nothing_left_to_restore_loads_no_model(tmp_path: Path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    for name in ("a.png", "b.png", "sub/c.png"):
        image = np.random.default_rng(len(name)).random((12, 10, 3)).astype(np.float32)
        write_image(photos / name, image)
        write_image(out / name, image)  # an earlier run's output
    done = _deblur(str(photos), "-o", str(out), "--skip-existing")
    assert done.returncode == 0, done.stderr
    assert "done 0, skipped 3 (already there), failed 0" in done.stdout
    assert "tensorflow not imported" in done.stdout


def test_outputs_there_before_one_missing_are_counted_once(tmp_path: Path, monkeypatch, capsys):
    """The jobs looked at before the model is loaded are handed on, not lost or counted twice (a stand-in
    model: the counts are the CLI's)."""
    import blurkit.cli._common as common
    from blurkit.cli.main import main

    class Same:
        def predict(self, image):
            return image

    photos, out = tmp_path / "photos", tmp_path / "out"
    for name in ("a.png", "b.png", "c.png", "d.png"):
        write_image(photos / name, np.full((6, 5, 3), 0.5, np.float32))
    for name in ("a.png", "b.png", "d.png"):
        write_image(out / name, np.zeros((6, 5, 3), np.float32))
    monkeypatch.setattr(common, "load_deblurrer", lambda *a, **k: Same())
    assert main(["deblur", str(photos), "-o", str(out), "--skip-existing", "-q"]) == 0
    assert "done 1, skipped 3 (already there), failed 0" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "d.png"]


def test_with_nothing_to_restore_a_bad_model_is_still_an_error(tmp_path: Path):
    """Review of 2026-12-08, F2.1: a missing model file, an unknown preset or a file that is no model were
    taken (exit 0, "skipped 3") once every output was there, though they need no TensorFlow to refuse."""
    photos, out = tmp_path / "photos", tmp_path / "out"
    image = np.zeros((8, 8, 3), np.float32)
    write_image(photos / "a.png", image)
    write_image(out / "a.png", image)
    (tmp_path / "junk.keras").write_text("junk")
    for argv, said in (([str(tmp_path / "missing.keras")], "model file not found"),
                       (["--preset", "gaussian-v9"], "gaussian-v9"),
                       ([str(tmp_path / "junk.keras")], "not a .keras model file")):
        done = _deblur(*argv, str(photos), "-o", str(out), "--skip-existing")
        assert done.returncode == 2 and said in done.stderr, (argv, done.stderr)
        assert "tensorflow not imported" in done.stdout

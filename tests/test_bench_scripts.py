"""The benchmark scripts' own messages and options (benchmarks/*.py), on tiny inputs; the results they measure are
in benchmarks/results/ and the docs (tests/test_docs_numbers.py)."""

from __future__ import annotations

import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest

from helpers import BENCHMARKS, bench, changing_unet

ROOT = Path(__file__).resolve().parents[1]


def test_make_val_names_the_extra_that_brings_scikit_learn(tmp_path, monkeypatch, capsys):
    """china and flower need scikit-learn: the error names the ``bench`` extra, which has it (``dev``, what CI
    installs, does not), and tells "not installed" from "installed but not importable"."""
    make_val = bench("make_val")
    monkeypatch.setattr(make_val, "SKIMAGE", {})  # the scikit-image photos are tested in test_recipe.py
    monkeypatch.setitem(sys.modules, "sklearn", None)  # not installed, whatever this machine has
    assert make_val.main([str(tmp_path / "val")]) == 1
    err = capsys.readouterr().err
    assert "china, flower come with scikit-learn, which is not installed" in err
    assert make_val.INSTALL in err and make_val.INSTALL == 'pip install -e ".[bench]"'

    broken = types.ModuleType("sklearn")
    broken.__path__ = []  # a package whose datasets module fails to import (a dependency of its own missing)
    monkeypatch.setitem(sys.modules, "sklearn", broken)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert make_val.main([str(tmp_path / "val")]) == 1
    assert "which cannot be imported (" in capsys.readouterr().err

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert [r for r in extras["bench"] if r.startswith("scikit-learn")]
    assert not [r for r in extras["dev"] if r.startswith("scikit-learn")]


def test_quality_ensemble_and_given_sigma_rate_model_files_too(tmp_path, astronaut, capsys):
    """``--ensemble`` and ``--given-sigma`` add their rows for every ``--model`` file as for the presets; a model
    that cannot be given the sigma (no blur estimator) gets a note instead of those rows, and the tutorial
    autoencoder's row stays one row, with a note saying so."""
    import json

    from blurkit.data.io import write_image
    from blurkit.presets import preset_path

    quality = bench("quality")
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "a.png", astronaut[200:264, 200:264])
    unet = changing_unet({"width": 4, "depth": 1, "blocks": 1}, astronaut[::8, ::8]).save(tmp_path / "unet.keras")
    preset = str(preset_path("gaussian-v1"))  # a model file with a blur estimator
    out = tmp_path / "q.json"
    assert quality.main(["--data", str(photos), "--no-presets", "--sigmas", "2", "--ensemble", "2", "--given-sigma",
                         "--tutorial", str(unet), "--model", str(unet), "--model", preset, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "note: --ensemble and --given-sigma rate the presets and --model files, not the tutorial" in printed
    assert "note: model unet.keras: no given-sigma row (--given-sigma: this model (unet) has no Gaussian" in printed
    res = json.loads(out.read_text())
    names = [m["name"] for m in res["methods"]][4:]  # after the blurred input and the classical rows
    assert names == ["tutorial autoencoder", "model unet.keras", "model unet.keras, x2 self-ensemble",
                     "model gaussian-v1.keras", "model gaussian-v1.keras, x2 self-ensemble",
                     "model gaussian-v1.keras, given the true sigma",
                     "model gaussian-v1.keras, x2 self-ensemble, given the true sigma"]
    given = next(m for m in res["methods"] if m["name"] == "model gaussian-v1.keras, given the true sigma")
    assert given["kind"] == "model, non-blind" and given["params"] == {"sigma": "true"}
    assert {"paired_vs_wiener", "methods", "protocol"} <= set(res)
    assert np.isfinite(given["per_image"][0]["psnr"])


def test_tiling_quality_labels_its_photo_rows_after_data(tmp_path):
    """The first rows are labelled with the ``--data`` folder's name: "val photos" for the default folder (the
    model card's table), not for any other."""
    tiling = bench("tiling_quality")
    quality = bench("quality")
    assert tiling.photos_label(str(quality.DEFAULT_DATA)) == "val photos"
    assert tiling.photos_label(str(tmp_path / "tiny")) == "tiny photos"
    assert tiling.photos_label("skimage") == "skimage samples"


def test_which_committed_quality_files_have_the_newer_keys():
    """quality.py's help and benchmarks/README.md name the committed files that have ``paired_vs_wiener`` and
    ``seconds_per_megapixel_by_sigma`` (added 2026-12-07): exactly those two; every file has ``per_image``."""
    import json

    newer = set()
    for path in sorted((BENCHMARKS / "results").glob("quality*.json")):
        res = json.loads(path.read_text())
        assert all(m["per_image"] for m in res["methods"]), path.name
        has = ["paired_vs_wiener" in res,
               all("seconds_per_megapixel_by_sigma" in m for m in res["methods"])]
        assert has[0] == has[1], path.name  # both or neither
        if has[0]:
            newer.add(path.name)
    assert newer == {"quality-crop.json", "quality-skimage-crop.json"}
    for doc in (bench("quality").__doc__, (BENCHMARKS / "README.md").read_text()):
        assert "`quality-crop.json` and `quality-skimage-crop.json`" in " ".join(doc.replace("``", "`").split())


def test_scripts_hide_tensorflows_start_up_lines_as_the_commands_do():
    """Every script that runs TensorFlow calls ``_util.quiet_tensorflow`` before ``main()`` (the commands'
    :func:`blurkit.cli._common.quiet_tensorflow`); in a process of its own it leaves stderr clean with
    ``TF_CPP_MIN_LOG_LEVEL=3`` and keeps TensorFlow's default CPU allocator (the scripts' timings)."""
    import os
    import subprocess

    no_tensorflow = {"make_val.py", "paired.py"}  # scikit-image / JSON only
    for path in sorted(BENCHMARKS.glob("*.py")):
        if path.name.startswith(("test_", "_")) or path.name in {"conftest.py", *no_tensorflow}:
            continue
        main_block = path.read_text().split('if __name__ == "__main__":')[-1]
        assert "quiet_tensorflow()" in main_block.split("sys.exit(main())")[0], path.name
    code = ("import os, sys; sys.path.insert(0, sys.argv[1]); import _util; _util.quiet_tensorflow([]); "
            "import tensorflow as tf; tf.constant(1.0) + 1; print(os.environ['TF_CPU_ALLOCATOR_USE_BFC'])")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CPU_ALLOCATOR_USE_BFC", None)
    done = subprocess.run([sys.executable, "-c", code, str(BENCHMARKS)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "false" and done.stderr == ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))

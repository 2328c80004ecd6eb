"""The benchmark scripts' own messages and options (benchmarks/*.py), on tiny inputs; the results they measure are
in benchmarks/results/ and the docs (tests/test_docs_numbers.py)."""

from __future__ import annotations

import importlib
import sys
import tomllib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def bench(name: str):
    """The script ``benchmarks/NAME.py`` as a module (the folder is on ``sys.path`` only while it imports)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))

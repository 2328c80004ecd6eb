"""A model file's settings that loading changes (``FileSettingWarning``: tile sizes an older blurkit took, a seed
of 2**32 or more), said once, and on the command line in the command's terms (left alone in the notes of
2026-12-07: a file with both tile and overlap out of range warned twice, and ``blurkit deblur old.keras
--tile-size 512`` warned about the file's tile size it does not use, and its seed, which deblur never draws
with, both saying "set it on the Deblurrer", which a command-line user cannot).

The file is ``tests/data/old/c5294e5-edge.keras.gz`` (tile_size 10**6, seed 2**40, a motion blur of length 3 to
600), written by commit c5294e5 (``tests/data/old/README.md``).
"""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest

from blurkit import Deblurrer
from blurkit.cli.main import main
from blurkit.data.io import write_image
from blurkit.deblurrer import FileSettingWarning
from helpers import rewrite_model

EDGE = Path(__file__).parent / "data" / "old" / "c5294e5-edge.keras.gz"


@pytest.fixture(scope="module")
def edge(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("old") / "edge.keras"
    path.write_bytes(gzip.decompress(EDGE.read_bytes()))
    return path


def _said(call) -> tuple[object, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        out = call()
    return out, said


def test_a_tile_and_overlap_out_of_range_are_said_in_one_warning(edge, tmp_path):
    """The tile was lowered to 16384 with one warning, then the overlap 16000 (in range, but over half of that
    tile) to 8192 with a second, which named the file's tile_size as 16384."""
    path = rewrite_model(edge, tmp_path / "wide.keras", meta=lambda m: m["facade"].update(
        tile_size=10**6, tile_overlap=16000, seed=5))
    d, said = _said(lambda: Deblurrer.load(path))
    tiles = [w for w in said if "tile" in str(w.message)]
    assert len(tiles) == 1, [str(w.message) for w in said]
    assert tiles[0].category is FileSettingWarning
    assert tiles[0].message.settings == {"tile_size", "tile_overlap"}
    assert "its tile_size 1000000 is more than the 16384 this blurkit takes" in str(tiles[0].message)
    assert "using tile_size 16384, tile_overlap 8192:" in str(tiles[0].message)
    assert str(tiles[0].message).endswith("(set them on the Deblurrer to choose)")
    assert (d.tile_size, d.tile_overlap) == (16384, 8192)


def test_the_seed_warning_is_a_file_setting_warning(edge):
    _, said = _said(lambda: Deblurrer.load(edge))
    seed = [w for w in said if "its seed" in str(w.message)]
    assert len(seed) == 1 and seed[0].category is FileSettingWarning
    assert seed[0].message.settings == {"seed"}


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "p.png"
    write_image(path, np.random.default_rng(0).random((40, 48, 3)).astype(np.float32))
    return path


def _texts(said: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in said]


def test_deblur_with_tile_size_says_nothing_of_the_files_tile_size_or_seed(edge, photo, tmp_path):
    status, said = _said(lambda: main(["deblur", str(edge), str(photo), "-o", str(tmp_path / "o"),
                                       "--tile-size", "512", "--quiet"]))
    assert status == 0 and (tmp_path / "o" / "p.png").is_file()
    texts = _texts(said)
    assert not [t for t in texts if "its tile" in t or "its seed" in t], texts


def test_deblur_without_tile_size_names_the_option_not_the_deblurrer(edge, photo, tmp_path):
    status, said = _said(lambda: main(["deblur", str(edge), str(photo), "-o", str(tmp_path / "o"), "--quiet"]))
    assert status == 0
    texts = _texts(said)
    tiles = [t for t in texts if "its tile_size 1000000" in t]
    assert len(tiles) == 1, texts
    assert tiles[0].endswith("tiles meet (--tile-size sets tile_size)")
    assert not [t for t in texts if "Deblurrer" in t or "its seed" in t], texts
    assert [w.category for w in said if "its tile_size" in str(w.message)] == [UserWarning]  # "warning:" shown


def test_evaluate_says_the_tile_size_without_advice_and_not_the_seed(edge, photo):
    status, said = _said(lambda: main(["evaluate", str(edge), str(photo), "--blur", "gaussian", "--sigma", "1"]))
    assert status == 0
    texts = _texts(said)
    tiles = [t for t in texts if "its tile_size 1000000" in t]
    assert len(tiles) == 1 and tiles[0].endswith("where tiles meet"), texts
    assert not [t for t in texts if "Deblurrer" in t or "its seed" in t], texts


def test_under_warnings_as_errors_the_warnings_left_out_do_not_stop_deblur(edge, photo, tmp_path):
    """Review of 2026-12-08, F1.1: under -W error the seed warning the command leaves out was raised inside
    load, a traceback (exit 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status = main(["deblur", str(edge), str(photo), "-o", str(tmp_path / "o"), "--tile-size", "512", "--quiet"])
    assert status == 0 and (tmp_path / "o" / "p.png").is_file()


def test_warnings_of_a_load_that_fails_are_still_said(monkeypatch, tmp_path):
    """Review of 2026-12-08, F1.2: the warnings recorded before a load failed were dropped."""
    from blurkit.cli._common import load_deblurrer
    from blurkit.cli.main import CLIError
    from blurkit.deblurrer import ModelFileError

    def failing(path):
        warnings.warn("the plugin 'x' could not be imported", UserWarning, stacklevel=1)
        raise ModelFileError(f"{path}: damaged")

    monkeypatch.setattr(Deblurrer, "load", staticmethod(failing))
    (tmp_path / "m.keras").write_bytes(b"")
    with pytest.warns(UserWarning, match="the plugin 'x' could not be imported"), pytest.raises(CLIError, match="damaged"):
        load_deblurrer(str(tmp_path / "m.keras"))

"""Files written by earlier blurkit commits, read by this one (docs/compatibility.md, "Files"; the compatibility
audit of 2026-12-07, findings F1, F2, F3, F5, F6).

The files in ``tests/data/old/`` were written by the commits their names start with (``tests/data/old/README.md``
gives each command; ``make_files.py`` is the script): training states of interrupted runs, and a model file
whose settings that commit's constructor took. They are gzipped (a ``.keras`` archive stores its weights
uncompressed); each test unpacks what it uses.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from blurkit import BLURS, Deblurrer
from blurkit.cli.main import main
from blurkit.deblurrer import ModelFileError
from helpers import rewrite_model

OLD = Path(__file__).parent / "data" / "old"
_spec = importlib.util.spec_from_file_location("make_files", OLD / "make_files.py")
assert _spec is not None and _spec.loader is not None
make_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_files)

#: The command of the interrupted runs (``make_files.py Photos train ...``, in a folder holding ``Photos/``).
TRAIN = ("train Photos --model unet --model-option width=4 --model-option depth=1 --model-option blocks=1 "
         "--epochs 2 --steps-per-epoch 1 --batch-size 2 --patch-size 16 --patches-per-image 1 --val-split 0.34 "
         "--seed 5 --out out/model.keras").split()


def _unpack(name: str, dest: Path) -> Path:
    """The old file ``tests/data/old/NAME.gz``, unpacked to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(gzip.decompress((OLD / f"{name}.gz").read_bytes()))
    return dest


def _run_folder(tmp_path: Path, commit: str, monkeypatch: pytest.MonkeyPatch, folder: str = "Photos") -> None:
    """``tmp_path`` as the folder the interrupted run of ``commit`` ran in (the current directory): its photos,
    the same names and bytes, in ``folder``, and its training state in ``out/model.resume/``."""
    import cv2

    (tmp_path / folder).mkdir()
    for i, photo in enumerate(make_files.photos()):
        cv2.imwrite(str(tmp_path / folder / f"p{i}.png"), photo)
    _unpack(f"{commit}-train-last.keras", tmp_path / "out" / "model.resume" / "last.keras")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("commit", [
    "c5294e5",  # 2026-11-26: the data's path recorded, the item digests of str(path), a blur without shot/jpeg
    "9dfc73a",  # 2026-12-07 11:54: the digests of the names below the folder, without its name
    "ce3e4c1",  # 2026-12-07 12:05: the folder's name as typed first (Photos, not photos)
])
def test_a_training_state_of_an_earlier_release_resumes(tmp_path, monkeypatch, capsys, commit):
    """F1: every state written before 2026-12-07 12:23 was refused as "saved by a run with different blur, data,
    train_items, validation_items" when the same command was given again with --resume."""
    _run_folder(tmp_path, commit, monkeypatch)
    code = main([*TRAIN, "--resume"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "resuming from out/model.resume/last.keras" in out and "Epoch 2/2" in out and "Epoch 1/2" not in out
    meta = Deblurrer.read_metadata(tmp_path / "out" / "model.keras")
    assert meta["training"]["resumed_at_epoch"] == 1 and len(meta["history"]["loss"]) == 2


def test_an_earlier_releases_state_is_still_refused_for_another_run(tmp_path, monkeypatch, capsys):
    """Reading old records in this release's form accepts the same run only: another batch size, or photos in
    another folder, are refused, naming them, and nothing of the old record's form (it named blur and data too)."""
    _run_folder(tmp_path, "c5294e5", monkeypatch)
    batch = TRAIN.index("--batch-size") + 1
    assert main([*TRAIN[:batch], "1", *TRAIN[batch + 1:], "--resume"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"saved by a run with different batch_size \(saved 2, now 1\); give the saved run's", err), err
    (tmp_path / "Photos").rename(tmp_path / "Other")
    assert main([*["Other" if a == "Photos" else a for a in TRAIN], "--resume"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"different train_items \(saved '\w+', now '\w+'\), validation_items \(saved", err), err


def test_a_state_that_did_not_record_its_folder_resumes_from_another_with_a_warning(tmp_path, monkeypatch, capsys):
    """review-s16c 1: 9dfc73a recorded the names below the folder only, so photos of those names in another
    folder resume as that release did; it is said now, naming what could not be checked."""
    _run_folder(tmp_path, "9dfc73a", monkeypatch, folder="Other")
    with pytest.warns(UserWarning, match=r"written by an earlier blurkit, which recorded too little of the data to "
                                         r"check the folder's name \(train_items\)"):
        assert main([*["Other" if a == "Photos" else a for a in TRAIN], "--resume"]) == 0


def test_an_in_memory_training_state_of_an_earlier_release_resumes(tmp_path):
    """F1, Deblurrer.fit(checkpoint_dir=..., resume=True) on arrays: the state of c5294e5 (2026-11-26) recorded
    the images' indices only, not their content (a80e7f6 added it): it is checked by what it recorded.
    The states the resumed run writes are of this release's form (3) and record the validation seed it goes on
    with, that run's: 5 + 7919 (tests/test_validation_seed.py)."""
    state = _unpack("c5294e5-arrays-last.keras", tmp_path / "state" / "last.keras")
    init, fit = make_files.ARRAYS_RUN
    images = np.stack(make_files.photos())
    d = Deblurrer(**init)
    with pytest.raises(ValueError, match=r"different train_items \(saved '\w+', now '\w+'\)"):
        d.fit(images[:2], checkpoint_dir=state.parent, resume=True, **fit)
    with pytest.warns(UserWarning, match=r"last\.keras: written by an earlier blurkit, which recorded too little of "
                                         r"the data to check the images themselves \(train_items\)"):
        d.fit(images, checkpoint_dir=state.parent, resume=True, **fit)
    assert d.training["resumed_at_epoch"] == 1 and len(d.history["loss"]) == 2
    meta = Deblurrer.read_metadata(state)
    assert meta["resume"]["settings_version"] == 3 and meta["training"]["validation_seed"] == 5 + 7919


def test_a_training_state_of_a_newer_settings_form_is_refused_as_newer(tmp_path):
    """F8's cure for later releases: a state whose settings record is of a form this release does not know is
    refused as saved by a newer blurkit, not as "saved by a run with different ..." (delete it, that said)."""
    old = _unpack("c5294e5-arrays-last.keras", tmp_path / "old.keras")
    (tmp_path / "state").mkdir()
    state = rewrite_model(old, tmp_path / "state" / "last.keras", meta=lambda m: m["resume"].update(settings_version=4))
    init, fit = make_files.ARRAYS_RUN
    with pytest.raises(ModelFileError, match=r"last\.keras: training state saved by a newer blurkit \(settings "
                                             r"version 4; this one reads up to 3\): upgrade blurkit to resume it"):
        Deblurrer(**init).fit(np.stack(make_files.photos()), checkpoint_dir=state.parent, resume=True, **fit)


@pytest.mark.parametrize("value", ["2", 0, True, 2.0])
def test_a_damaged_settings_version_is_refused_naming_the_file(tmp_path, value):
    old = _unpack("c5294e5-arrays-last.keras", tmp_path / "old.keras")
    (tmp_path / "state").mkdir()
    state = rewrite_model(old, tmp_path / "state" / "last.keras",
                          meta=lambda m: m["resume"].update(settings_version=value))
    init, fit = make_files.ARRAYS_RUN
    with pytest.raises(ModelFileError, match=r"last\.keras: damaged training state \(settings_version "):
        Deblurrer(**init).fit(np.stack(make_files.photos()), checkpoint_dir=state.parent, resume=True, **fit)


@pytest.fixture(scope="module")
def edge_file(tmp_path_factory) -> Path:
    """c5294e5's model file of tile_size 10**6, seed 2**40 and a motion blur of length 3 to 600."""
    return _unpack("c5294e5-edge.keras", tmp_path_factory.mktemp("old") / "edge.keras")


def test_an_old_files_tile_size_and_seed_are_taken_with_a_warning(edge_file, tmp_path):
    """F2: they were refused as "damaged blurkit metadata (facade tile_size 1000000: a whole number from 1 to
    16384 expected)" (and the seed likewise), though c5294e5 wrote them and trained with them."""
    with pytest.warns(UserWarning) as caught:
        d = Deblurrer.load(edge_file)
    said = [str(w.message) for w in caught]
    assert any(re.search(r"edge\.keras: its tile_size 1000000 is more than the 16384 this blurkit takes \(an older "
                         r"blurkit took it\); using tile_size 16384: .* can change the restoration slightly where "
                         r"tiles meet", s) for s in said), said
    assert any(re.search(r"edge\.keras: its seed 1099511627776 is more than the 4294967295 this blurkit takes .*; "
                         r"using seed 0 \(the seed modulo 2\*\*32\)", s) for s in said), said
    assert (d.tile_size, d.tile_overlap, d.seed) == (16384, 64, 0)
    photo = make_files.photos()[0]
    assert d.predict(photo).shape == photo.shape
    big = rewrite_model(edge_file, tmp_path / "big.keras", meta=lambda m: m["facade"].update(
        tile_size=10**6, tile_overlap=20000, estimate_tile=10**6, seed=5))
    with pytest.warns(UserWarning, match=r"big\.keras: its tile_size 1000000, tile_overlap 20000, estimate_tile "
                                         r"1000000 are more than the 16384 this blurkit takes .* using tile_size "
                                         r"16384, tile_overlap 8192, estimate_tile 16384"):
        d = Deblurrer.load(big)
    assert (d.tile_size, d.tile_overlap, d.estimate_tile, d.seed) == (16384, 8192, 16384, 5)


@pytest.mark.parametrize("facade, said", [
    ({"patch_size": 4}, r"facade patch_size 4: at least 11, the window of the SSIM metric training reports"),
    ({"batch_size": 0}, r"facade batch_size 0: a whole number from 1 to 1048576"),
    ({"patches_per_image": 2**20, "patch_size": 32}, r"facade: 1,048,576 patches of 32x32x3 per photo"),
])
def test_a_well_formed_setting_this_release_does_not_take_is_not_called_damaged(edge_file, tmp_path, facade, said):
    """F2, F6: a patch size of 4 (c5294e5 saved one) was refused as "damaged blurkit metadata"."""
    path = rewrite_model(edge_file, tmp_path / "outside.keras",
                         meta=lambda m: m["facade"].update(tile_size=256, seed=5, **facade))
    with pytest.raises(ModelFileError, match=rf"outside\.keras: blurkit metadata outside what this blurkit accepts "
                                             rf"\({said}.*; written by an older blurkit\?\)$"):
        Deblurrer.load(path)


def test_a_setting_that_is_no_number_is_still_damaged(edge_file, tmp_path):
    """Guard (passes before the fix too): only well-formed values are told "outside what this blurkit accepts"."""
    path = rewrite_model(edge_file, tmp_path / "words.keras",
                         meta=lambda m: m["facade"].update(tile_size="big", seed=5))
    with pytest.raises(ModelFileError, match=r"words\.keras: damaged blurkit metadata \(facade tile_size 'big'"):
        Deblurrer.load(path)


def test_an_old_files_builtin_blur_with_refused_options_says_to_give_another_blur(edge_file, tmp_path):
    """F3: a motion length of 600 (601-px kernels; capped at 513 px since 2026-12-06) loads with a stand-in, and
    fit and evaluate said "install the blur it was saved with": it is the built-in, which no install changes.
    (The file's tile size and seed set to ones every release takes: they are F2's.)"""
    path = rewrite_model(edge_file, tmp_path / "edge.keras", meta=lambda m: m["facade"].update(tile_size=256, seed=5))
    d = Deblurrer.load(path)
    assert repr(d.blur) == "<blur 'motion', options refused>"
    images = np.stack(make_files.photos())
    refused = (r"edge\.keras: its blur generator 'motion' has options this blurkit refuses \(length 600 makes a "
               r"601-px kernel, more than the 513 px blurkit's kernels go to; an older blurkit may have taken them; "
               r"this one's built-in 'motion' cannot draw from them\); the model restores photos without it, but ")
    with pytest.raises(ModelFileError, match=refused + r".*\(give evaluate another blur: blur= in Python, --blur") as e:
        d.evaluate(images)
    assert "install" not in str(e.value)
    with pytest.raises(ModelFileError, match=refused + r".*\(train with another blur: .*d\.blur = "):
        d.fit(images, epochs=1)
    d.blur = BLURS.create("motion", length=(3, 9))  # what the message says works
    assert d.evaluate(images[:2])["images"] == 2


def test_the_small_tile_warning_says_tiles_change_the_restoration(edge_file, tmp_path):
    """F5: it said only that the file's tiles "would make deblurring slow"; a file of tile 16 restored the audit's
    photo up to 2 levels apart once raised to 32."""
    path = rewrite_model(edge_file, tmp_path / "tiles.keras",
                         meta=lambda m: m["facade"].update(tile_size=16, tile_overlap=4, seed=5))
    with pytest.warns(UserWarning, match=r"tiles\.keras: its tile settings .* would make deblurring slow; using "
                                         r"tile_size 32, .* tiles also change the restoration slightly where they "
                                         r"meet"):
        Deblurrer.load(path)

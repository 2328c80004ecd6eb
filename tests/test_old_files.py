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

from blurkit import Deblurrer
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


def test_an_in_memory_training_state_of_an_earlier_release_resumes(tmp_path):
    """F1, Deblurrer.fit(checkpoint_dir=..., resume=True) on arrays: the state of c5294e5 (2026-11-26) recorded
    the images' indices only, not their content (a80e7f6 added it): it is checked by what it recorded.
    A state this release writes records the form of its settings (settings_version 2)."""
    state = _unpack("c5294e5-arrays-last.keras", tmp_path / "state" / "last.keras")
    init, fit = make_files.ARRAYS_RUN
    images = np.stack(make_files.photos())
    d = Deblurrer(**init)
    with pytest.raises(ValueError, match=r"different train_items \(saved '\w+', now '\w+'\)"):
        d.fit(images[:2], checkpoint_dir=state.parent, resume=True, **fit)
    d.fit(images, checkpoint_dir=state.parent, resume=True, **fit)
    assert d.training["resumed_at_epoch"] == 1 and len(d.history["loss"]) == 2
    assert Deblurrer.read_metadata(state)["resume"]["settings_version"] == 2


def test_a_training_state_of_a_newer_settings_form_is_refused_as_newer(tmp_path):
    """F8's cure for later releases: a state whose settings record is of a form this release does not know is
    refused as saved by a newer blurkit, not as "saved by a run with different ..." (delete it, that said)."""
    old = _unpack("c5294e5-arrays-last.keras", tmp_path / "old.keras")
    (tmp_path / "state").mkdir()
    state = rewrite_model(old, tmp_path / "state" / "last.keras", meta=lambda m: m["resume"].update(settings_version=3))
    init, fit = make_files.ARRAYS_RUN
    with pytest.raises(ModelFileError, match=r"last\.keras: training state saved by a newer blurkit \(settings "
                                             r"version 3; this one reads up to 2\): upgrade blurkit to resume it"):
        Deblurrer(**init).fit(np.stack(make_files.photos()), checkpoint_dir=state.parent, resume=True, **fit)

"""make_pairs and ``blurkit make-pairs``: pairs, manifest, skipping bad files, reproducibility."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurkit.blurs import Blur
from blurkit.cli.main import main
from blurkit.data.io import read_image, write_image
from blurkit.data.pairs import image_seed, make_pairs
from blurkit.registry import BLURS


class FakeBlur(Blur):
    """A tiny Gaussian blur with the generator interface (stands in for the real ones): a ``Blur`` subclass, as
    the registry requires, that makes its pairs itself (``__call__``) without the base class's machinery."""

    name = "testblur"
    version = 3

    def __init__(self, sigma=1.0, seed=None, **extra):
        self.sigma, self.seed, self.extra = sigma, seed, extra

    def get_config(self):
        return {"sigma": list(self.sigma) if isinstance(self.sigma, tuple) else self.sigma, **self.extra}

    def __call__(self, image, seed=None):
        rng = np.random.default_rng(seed)
        sigma = float(rng.uniform(*self.sigma)) if isinstance(self.sigma, tuple) else float(self.sigma)
        k1 = cv2.getGaussianKernel(2 * int(np.ceil(3 * sigma)) + 1, sigma)
        kernel = k1 @ k1.T
        blurred = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
        return {"image": blurred, "kernel": kernel, "params": {"sigma": np.float64(sigma)}}

    def sample_kernel(self, rng):  # not used: __call__ does it all
        raise NotImplementedError

    def kernel(self, params):
        raise NotImplementedError


@pytest.fixture
def testblur():
    BLURS.list()  # load the built-ins first so the fake is not overridden later
    BLURS.register("testblur", FakeBlur, override=True)
    yield FakeBlur
    BLURS.unregister("testblur")


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    return {
        "rgb": np.ascontiguousarray(data.astronaut()[::4, ::4]),  # 128x128
        "coffee": np.ascontiguousarray(data.coffee()[::4, ::4]),  # 100x150
        "gray": np.ascontiguousarray(data.camera()[::4, ::4]),
    }


GOOD = ["a.png", "sub/b.jpg", "sub/deep/c.tif", "été 1.PNG", "deep16.png"]
BAD = {"bad.jpg": "not an image", "empty.png": "empty file", "trunc.png": "truncated"}


@pytest.fixture
def clean(tmp_path, photos):
    root = tmp_path / "clean"
    write_image(root / "a.png", photos["rgb"])
    write_image(root / "sub" / "b.jpg", photos["coffee"])
    write_image(root / "sub" / "deep" / "c.tif", photos["gray"])
    write_image(root / "été 1.PNG", photos["coffee"])
    write_image(root / "deep16.png", photos["rgb"].astype(np.uint16) * 257)
    (root / "bad.jpg").write_text("not a picture")
    (root / "empty.png").write_bytes(b"")
    data = cv2.imencode(".png", photos["rgb"])[1].tobytes()
    (root / "trunc.png").write_bytes(data[: len(data) // 2])
    (root / "notes.txt").write_text("ignored")
    return root


def _png(rel: str) -> str:
    return str(Path(rel).with_suffix(".png").as_posix())


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _manifest(out: Path) -> list[dict]:
    return _manifest_lines(out / "manifest.jsonl")


def _manifest_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_cli_writes_pairs_and_reports_bad_files(clean, tmp_path, testblur, capsys):
    out = tmp_path / "pairs"
    rc = main(
        [
            "make-pairs",
            str(clean),
            str(out),
            "--blur",
            "testblur",
            "--sigma",
            "0.5:3",
            "--seed",
            "3",
            "--no-progress",
            "--blur-option",
            "mode=reflect",
            "--blur-option",
            "strength=[1, 2]",
        ]
    )
    printed = capsys.readouterr()
    stdout, stderr = printed.out, printed.err
    assert rc == 3  # some files failed and the others made pairs: deblur's exit status for it
    assert f"wrote {len(GOOD)} of {len(GOOD) + len(BAD)} pairs" in stdout
    assert f"skipped {len(BAD)} unreadable files" in stderr and "skipped" not in stdout
    for name, reason in BAD.items():
        assert f"  {name}: " in stderr and reason in stderr.split(f"  {name}: ")[1].splitlines()[0]
    assert "ignored 1 file without an image suffix: notes.txt" in stdout

    expected = sorted(_png(r) for r in GOOD)
    sharp = sorted(p.relative_to(out / "sharp").as_posix() for p in (out / "sharp").rglob("*.png"))
    blurred = sorted(p.relative_to(out / "blurred").as_posix() for p in (out / "blurred").rglob("*.png"))
    assert sharp == blurred == expected
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left

    records = _manifest(out)
    assert sorted(r["file"] for r in records) == expected
    for r in records:
        assert set(r) == {"file", "source", "width", "height", "seed", "blur", "params", "kernel"}
        kernel = np.array(r["kernel"])
        assert kernel.ndim == 2 and abs(kernel.sum() - 1) < 1e-9
        assert r["seed"] == image_seed(3, r["source"])
        assert r["blur"] == {
            "name": "testblur",
            "version": 3,
            "config": {"sigma": [0.5, 3.0], "mode": "reflect", "strength": [1, 2]},
        }
        assert 0.5 <= r["params"]["sigma"] <= 3.0
        image = read_image(out / "sharp" / r["file"])
        assert (r["height"], r["width"]) == image.shape[:2]
        assert read_image(out / "blurred" / r["file"]).shape == image.shape

    # sharp copies are the decoded sources, losslessly; 16 bits and grayscale are kept
    for rel in GOOD:
        np.testing.assert_array_equal(read_image(out / "sharp" / _png(rel)), read_image(clean / rel))
    assert read_image(out / "sharp" / "deep16.png").dtype == np.uint16
    assert read_image(out / "blurred" / "deep16.png").dtype == np.uint16
    assert read_image(out / "sharp" / "sub/deep/c.png").ndim == 2


def test_same_seed_same_files(clean, tmp_path, testblur):
    args = ["--blur", "testblur", "--sigma", "0.5:3", "--no-progress"]
    assert main(["make-pairs", str(clean), str(tmp_path / "one"), *args, "--seed", "7"]) == 3
    assert main(["make-pairs", str(clean), str(tmp_path / "two"), *args, "--seed", "7"]) == 3
    assert main(["make-pairs", str(clean), str(tmp_path / "three"), *args, "--seed", "8"]) == 3
    one, two, three = (_files(tmp_path / n) for n in ("one", "two", "three"))
    assert one == two
    assert one["manifest.jsonl"] != three["manifest.jsonl"]
    assert one["blurred/a.png"] != three["blurred/a.png"]
    assert one["sharp/a.png"] == three["sharp/a.png"]


def test_blur_option_old_names_still_work(clean, tmp_path, testblur, capsys):
    """``--blur-option`` as in ``blurkit train``; ``--option`` and ``-o``, its names before, still accepted."""
    args = ["--blur", "testblur", "--sigma", "1", "--no-progress"]
    for name, flag in [("new", "--blur-option"), ("long", "--option"), ("short", "-o")]:
        assert main(["make-pairs", str(clean), str(tmp_path / name), *args, flag, "mode=reflect"]) == 3
    new = _files(tmp_path / "new")
    assert b'"mode": "reflect"' in new["manifest.jsonl"]
    assert new == _files(tmp_path / "long") == _files(tmp_path / "short")
    with pytest.raises(SystemExit):
        main(["make-pairs", "--help"])
    shown = capsys.readouterr().out
    assert "--blur-option KEY=VALUE" in shown and "--option" not in shown


def test_size_option(clean, tmp_path, testblur, capsys):
    out = tmp_path / "small"
    assert (
        main(["make-pairs", str(clean), str(out), "--blur", "testblur", "--size", "64", "--no-progress"]) == 3
    )
    for path in list((out / "sharp").rglob("*.png")) + list((out / "blurred").rglob("*.png")):
        assert read_image(path).shape[:2] == (64, 64)
    assert all((r["width"], r["height"]) == (64, 64) for r in _manifest(out))
    out2 = tmp_path / "wide"
    assert (
        main(["make-pairs", str(clean), str(out2), "--blur", "testblur", "--size", "48x32", "--no-progress"])
        == 3
    )
    assert read_image(out2 / "sharp" / "a.png").shape == (32, 48, 3)
    assert main(["make-pairs", str(clean), str(out2), "--blur", "testblur", "--size", "0"]) == 2
    assert "--size" in capsys.readouterr().err


def test_size_matches_tutorial_resize(tmp_path, photos, testblur):
    write_image(tmp_path / "in" / "x.png", photos["coffee"])
    make_pairs(tmp_path / "in", tmp_path / "out", blur="testblur", size=128, progress=False)
    expected = cv2.resize(photos["coffee"], (128, 128), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "sharp" / "x.png"), expected)


def test_missing_and_empty_folders(tmp_path, testblur, capsys):
    missing = tmp_path / "no such photos"
    assert main(["make-pairs", str(missing), str(tmp_path / "out"), "--blur", "testblur"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    assert main(["make-pairs", str(empty), str(tmp_path / "out"), "--blur", "testblur"]) == 2
    err = capsys.readouterr().err
    assert "no images found" in err and str(empty) in err
    file_arg = empty / "readme.txt"
    assert main(["make-pairs", str(file_arg), str(tmp_path / "out"), "--blur", "testblur"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_float_tiff_with_nan_is_skipped_not_fatal(tmp_path, photos, capsys):
    """It stopped the run ("error: cannot write an image containing NaN", exit 2, no file named) and left
    manifest.jsonl.partial behind; it is now one skipped file among the others."""
    write_image(tmp_path / "in" / "a.png", photos["gray"])
    holes = np.full((20, 24, 3), 0.5, np.float32)
    holes[3, 4] = np.nan
    cv2.imwrite(str(tmp_path / "in" / "b.tif"), holes)
    out = tmp_path / "out"
    assert main(["make-pairs", str(tmp_path / "in"), str(out), "--sigma", "1", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "skipped 1 unreadable file" in err and "b.tif: 3 float samples NaN or infinite" in err, err
    assert [r["file"] for r in _manifest(out)] == ["a.png"] and not (out / "manifest.jsonl.partial").exists()


def test_a_float_tiff_far_outside_the_unit_range_is_skipped_by_name(tmp_path, photos, capsys):
    """An HDR float TIFF (values up to 4) was blurred and written to 8-bit PNG pairs clipped to white; write_image
    now refuses such floats, so make-pairs skips the photo, naming it and its range, and writes the others."""
    write_image(tmp_path / "in" / "a.png", photos["gray"])
    cv2.imwrite(str(tmp_path / "in" / "hdr.tif"), np.linspace(0, 4, 20 * 24 * 3, dtype=np.float32).reshape(20, 24, 3))
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="outside"):  # read_image's own warning about the range
        assert main(["make-pairs", str(tmp_path / "in"), str(out), "--sigma", "1", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "hdr.tif: float samples outside [0, 1] (min 0, max 4) cannot be stored in 8-bit pairs" in err, err
    assert [r["file"] for r in _manifest(out)] == ["a.png"] and not (out / "manifest.jsonl.partial").exists()
    # within the bounds, but the blur's noise takes the blurred side past them: skipped too, not a stopped run
    cv2.imwrite(str(tmp_path / "in" / "hdr.tif"), np.full((20, 24, 3), 1.45, np.float32))
    with pytest.warns(UserWarning, match="outside"):
        assert main(["make-pairs", str(tmp_path / "in"), str(tmp_path / "out2"), "--sigma", "1", "--blur-option",
                     "noise=0.1", "--no-progress"]) == 3
    assert "hdr.tif: float samples outside [0, 1] (min " in capsys.readouterr().err
    assert [r["file"] for r in _manifest(tmp_path / "out2")] == ["a.png"]


def test_all_files_bad_exit_1(tmp_path, testblur, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jpg").write_text("nope")
    assert (
        main(
            ["make-pairs", str(tmp_path / "in"), str(tmp_path / "out"), "--blur", "testblur", "--no-progress"]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "x.jpg: not an image" in captured.err and "no pairs were written" in captured.err


def test_user_errors(clean, tmp_path, testblur, capsys):
    out = str(tmp_path / "out")
    assert main(["make-pairs", str(clean), out, "--blur", "testblurr"]) == 2
    assert "did you mean 'testblur'" in capsys.readouterr().err
    assert main(["make-pairs", str(clean), out, "--blur", "testblur", "--sigma", "wide"]) == 2
    assert "--sigma" in capsys.readouterr().err
    assert main(["make-pairs", str(clean), out, "--blur", "testblur", "--sigma", "1:2:3"]) == 2
    assert "--sigma: bad range '1:2:3'" in capsys.readouterr().err
    assert main(["make-pairs", str(clean), out, "--blur", "testblur", "--blur-option", "length=5:x"]) == 2
    assert "--blur-option length: bad range '5:x'" in capsys.readouterr().err
    # -o, the old name of --blur-option, is every other command's output flag: without a KEY=VALUE it is taken
    # for one (it was a blur option, then "the following arguments are required: OUT_DIR")
    for argv in ([str(clean), out, "--blur", "testblur", "-o", "novalue"], [str(clean), "-o", out]):
        with pytest.raises(SystemExit) as exit_:
            main(["make-pairs", *argv])
        assert exit_.value.code == 2
        assert "make-pairs writes to OUT_DIR, its second argument (blurkit make-pairs CLEAN_DIR OUT_DIR); blur " \
               "options are --blur-option KEY=VALUE" in capsys.readouterr().err
    assert main(["make-pairs", str(clean), out, "--blur", "testblur", "--blur-option", "novalue"]) == 2
    assert "--blur-option: expected KEY=VALUE" in capsys.readouterr().err
    assert main(["make-pairs", str(clean), out, "--blur", "testblur", "-o", "seed=3"]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(["make-pairs", str(clean), out, "--blur", "testblur", "--sigma", "1", "-o", "sigma=2"]) == 2
    capsys.readouterr()
    assert not Path(out).exists()


def test_sigma_with_a_blur_that_has_none(clean, tmp_path, capsys):
    """--sigma is the Gaussian blur's: with another blur it is a usage error naming both (was the TypeError
    of the blur's constructor)."""
    out = tmp_path / "out"
    assert main(["make-pairs", str(clean), str(out), "--blur", "motion", "--sigma", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("blurkit make-pairs: error: --sigma") and "'motion'" in err and "gaussian" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_real_gaussian(tmp_path, photos):
    pytest.importorskip("blurkit.blurs.gaussian")
    write_image(tmp_path / "in" / "x.png", photos["rgb"])
    write_image(tmp_path / "in" / "g.png", photos["gray"])
    rc = main(
        [
            "make-pairs",
            str(tmp_path / "in"),
            str(tmp_path / "out"),
            "--blur",
            "gaussian",
            "--sigma",
            "2",
            "--no-progress",
        ]
    )
    assert rc == 0
    records = _manifest(tmp_path / "out")
    assert len(records) == 2
    for r in records:
        assert r["blur"]["name"] == "gaussian" and r["blur"]["version"] >= 1
        assert r["blur"]["config"]["sigma"] == 2.0
        assert abs(np.sum(r["kernel"]) - 1) < 1e-9
    sharp = read_image(tmp_path / "out" / "sharp" / "x.png")
    blurred = read_image(tmp_path / "out" / "blurred" / "x.png")
    assert blurred.shape == sharp.shape and blurred.std() < sharp.std()


def test_library_api(tmp_path, photos):
    root = tmp_path / "in"
    write_image(root / "a.jpg", photos["rgb"])
    write_image(root / "a.png", photos["rgb"])  # same stem: both keep their suffix
    write_image(root / "out" / "old.png", photos["rgb"])  # the output folder inside the input is skipped
    summary = make_pairs(root, root / "out", blur=FakeBlur(sigma=1.0), seed=1, progress=False)
    assert summary["written"] == 2 and summary["skipped"] == [] and summary["total"] == 2
    assert summary["blur"] == {"name": "testblur", "version": 3, "config": {"sigma": 1.0}}
    assert sorted(p.name for p in (root / "out" / "sharp").iterdir()) == ["a.jpg.png", "a.png.png"]
    again = make_pairs(root, root / "out", blur=FakeBlur(sigma=1.0), seed=1, progress=False)
    assert again["written"] == 2  # the previous outputs were not picked up as inputs
    with pytest.raises(ValueError, match="size"):
        make_pairs(root, tmp_path / "x", blur=FakeBlur(), size=(0, 3), progress=False)
    with pytest.raises(ValueError, match="blur_options"):
        make_pairs(root, tmp_path / "x", blur=FakeBlur(), blur_options={"sigma": 1}, progress=False)


def test_interrupted_run_keeps_old_manifest(tmp_path, photos):
    root = tmp_path / "in"
    write_image(root / "a.png", photos["rgb"])
    write_image(root / "b.png", photos["rgb"])
    out = tmp_path / "out"
    make_pairs(root, out, blur=FakeBlur(), progress=False)
    before = (out / "manifest.jsonl").read_bytes()

    class Exploding(FakeBlur):
        def __call__(self, image, seed=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_pairs(root, out, blur=Exploding(sigma=5.0), progress=False)
    assert (out / "manifest.jsonl").read_bytes() == before
    assert sorted(os.listdir(out)) == ["blurred", "manifest.jsonl", "sharp"]


def test_image_seed_is_stable():
    assert image_seed(0, "a/b.png") == image_seed(0, "a/b.png")
    assert len({image_seed(s, n) for s in range(3) for n in ("a.png", "b.png", "c/a.png")}) == 9
    assert 0 <= image_seed(123, "x") < 2**32


def test_cli_refuses_an_out_dir_with_an_earlier_run(clean, tmp_path, testblur, capsys):
    out = tmp_path / "pairs"
    args = ["--blur", "testblur", "--no-progress"]
    assert main(["make-pairs", str(clean), str(out), *args]) == 3
    before = _files(out)
    capsys.readouterr()
    assert main(["make-pairs", str(clean), str(out), *args, "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(out) in err and "--replace" in err
    assert _files(out) == before  # nothing written
    # pair folders with files but no manifest (say a run interrupted before its manifest was renamed)
    (out / "manifest.jsonl").unlink()
    assert main(["make-pairs", str(clean), str(out), *args]) == 2
    assert "sharp/" in capsys.readouterr().err
    # empty pair folders are fine
    empty = tmp_path / "empty"
    (empty / "sharp").mkdir(parents=True)
    (empty / "blurred").mkdir()
    assert main(["make-pairs", str(clean), str(empty), *args]) == 3


def test_cli_replace_deletes_only_the_files_of_the_old_manifest(tmp_path, photos, testblur, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    for name in ("a.png", "sub/old.png", "both.png"):
        write_image(first / name, photos["gray"])
    for name in ("b.png", "both.png"):
        write_image(second / name, photos["rgb"])
    out = tmp_path / "pairs"
    args = ["--blur", "testblur", "--no-progress"]
    assert main(["make-pairs", str(first), str(out), *args]) == 0
    write_image(out / "sharp" / "mine.png", photos["gray"])  # not listed by the manifest: kept
    (out / "notes.txt").write_text("keep me")
    assert main(["make-pairs", str(second), str(out), *args, "--replace"]) == 0
    assert sorted(_files(out)) == ["blurred/b.png", "blurred/both.png", "manifest.jsonl", "notes.txt",
                                   "sharp/b.png", "sharp/both.png", "sharp/mine.png"]
    assert not (out / "sharp" / "sub").exists()  # emptied by the deletion
    assert [r["source"] for r in _manifest(out)] == ["b.png", "both.png"]
    assert read_image(out / "sharp" / "both.png").shape == photos["rgb"].shape
    # the same run again into its own output, with --replace, gives the same files
    before = _files(out)
    capsys.readouterr()
    assert main(["make-pairs", str(second), str(out), *args, "--replace"]) == 0
    assert _files(out) == before


def test_replace_refuses_a_manifest_naming_files_elsewhere(tmp_path, photos, testblur, capsys):
    write_image(tmp_path / "in" / "a.png", photos["gray"])
    out = tmp_path / "pairs"
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    (out / "sharp").mkdir(parents=True)
    (out / "sharp" / "x.png").write_bytes(b"x")
    lines = [json.dumps({"file": "x.png"}), json.dumps({"file": "../../victim.png"})]
    (out / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["make-pairs", str(tmp_path / "in"), str(out), "--blur", "testblur", "--replace"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "victim.png" in err and len(err.strip().splitlines()) == 1
    assert victim.read_bytes() == b"precious" and (out / "sharp" / "x.png").exists()
    (out / "manifest.jsonl").write_text("not json\n")
    assert main(["make-pairs", str(tmp_path / "in"), str(out), "--blur", "testblur", "--replace"]) == 2
    assert "line 1" in capsys.readouterr().err and (out / "sharp" / "x.png").exists()


def test_help_mentions_replace(capsys):
    with pytest.raises(SystemExit):
        main(["make-pairs", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--replace" in text and "earlier run" in text


def _non_utf8_name(folder: Path, name: bytes) -> Path:
    """``folder / name`` for a file name that is not UTF-8 (skips where the file system refuses one)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))
    try:
        path.write_bytes(b"")
    except (OSError, UnicodeError):  # macOS and Windows keep names in Unicode
        pytest.skip("this file system refuses file names that are not UTF-8")
    path.unlink()
    return path


def test_replace_after_an_interrupted_run_leaves_exactly_the_new_pairs(tmp_path, photos, testblur,
                                                                       monkeypatch, capsys):
    """Each pair is listed in manifest.jsonl.partial before its files are written, so --replace deletes
    everything an interrupted run wrote (it deleted nothing: the manifest was only written at the end, and
    the stale pairs, of another sigma, stayed in the folders training reads)."""
    import blurkit.data.pairs as pairs

    first, second = tmp_path / "first", tmp_path / "second"
    for name in ("a.png", "b.png", "sub/c.png", "d.png"):
        write_image(first / name, photos["gray"])
    for name in ("x.png", "y.png"):
        write_image(second / name, photos["rgb"])
    out = tmp_path / "pairs"
    args = ["--blur", "testblur", "--no-progress"]
    real, calls = pairs.write_image, []

    def interrupted(*a, **k):  # Ctrl-C while writing the third file: one pair and a half are on disk
        calls.append(a[0])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(pairs, "write_image", interrupted)
    assert main(["make-pairs", str(first), str(out), *args, "--sigma", "3"]) != 0
    monkeypatch.undo()
    # the half-written pair has its blurred side only, which the pair reader skips; both are listed
    assert sorted(_files(out)) == ["blurred/a.png", "blurred/b.png", "manifest.jsonl.partial", "sharp/a.png"]
    assert [r["file"] for r in _manifest_lines(out / "manifest.jsonl.partial")] == ["a.png", "b.png"]

    capsys.readouterr()
    assert main(["make-pairs", str(second), str(out), *args]) == 2  # refused, naming the partial manifest
    err = capsys.readouterr().err
    assert "interrupted run" in err and "manifest.jsonl.partial" in err and "--replace" in err
    assert main(["make-pairs", str(second), str(out), *args, "--sigma", "1", "--replace"]) == 0
    assert sorted(_files(out)) == ["blurred/x.png", "blurred/y.png", "manifest.jsonl", "sharp/x.png",
                                   "sharp/y.png"]
    assert [r["source"] for r in _manifest(out)] == ["x.png", "y.png"]


def test_a_completed_run_commits_the_partial_manifest(tmp_path, photos, testblur):
    """The manifest a completed run leaves is the one it always left: the same lines, no partial file."""
    write_image(tmp_path / "in" / "a.png", photos["gray"])
    write_image(tmp_path / "in" / "b.png", photos["rgb"])
    summary = make_pairs(tmp_path / "in", tmp_path / "out", blur=FakeBlur(), seed=2, progress=False)
    assert sorted(os.listdir(tmp_path / "out")) == ["blurred", "manifest.jsonl", "sharp"]
    assert summary["manifest"] == str(tmp_path / "out" / "manifest.jsonl")
    records = _manifest(tmp_path / "out")
    assert [r["file"] for r in records] == ["a.png", "b.png"] and records[1]["seed"] == image_seed(2, "b.png")
    # without replace, a partial manifest of an interrupted run is refused: its pairs would stay unlisted
    (tmp_path / "out" / "manifest.jsonl.partial").write_text(json.dumps({"file": "a.png"}) + "\n")
    with pytest.raises(ValueError, match="manifest.jsonl.partial"):
        make_pairs(tmp_path / "in", tmp_path / "out", blur=FakeBlur(), progress=False)


def test_replace_reads_a_partial_manifest_cut_short(tmp_path, photos, testblur):
    """A run killed while appending a line leaves it cut short: its pair was not written yet, and --replace
    deletes what the complete lines list."""
    write_image(tmp_path / "in" / "new.png", photos["gray"])
    out = tmp_path / "pairs"
    for side in ("sharp", "blurred"):
        write_image(out / side / "old.png", photos["gray"])
    (out / "blurred" / "half.png").write_bytes(b"x")
    (out / "sharp" / ".half.png.x1y2z3_4.tmp").write_bytes(b"x")  # its killed write: deleted too
    (out / "sharp" / ".mine.png.x1y2z3_4.tmp").write_bytes(b"x")  # not listed: kept
    line = json.dumps({"file": "old.png", "source": "old.png"}) + "\n" + json.dumps({"file": "half.png"}) + "\n"
    (out / "manifest.jsonl.partial").write_text(line + '{"file": "never-writ')
    assert main(["make-pairs", str(tmp_path / "in"), str(out), "--blur", "testblur", "--no-progress",
                 "--replace"]) == 0
    assert sorted(_files(out)) == ["blurred/new.png", "manifest.jsonl", "sharp/.mine.png.x1y2z3_4.tmp",
                                   "sharp/new.png"]


def test_no_pair_written_leaves_no_manifest(tmp_path, photos, testblur, capsys):
    """A run that writes no pair (every blur failed) commits no empty manifest, which blocked the next run."""
    write_image(tmp_path / "in" / "a.png", photos["gray"])
    out = tmp_path / "out"

    class Failing(FakeBlur):
        name = "failingblur"

        def __call__(self, image, seed=None):
            raise ValueError("sigma too large")

    BLURS.register("failingblur", Failing, override=True)
    try:
        assert main(["make-pairs", str(tmp_path / "in"), str(out), "--blur", "failingblur", "--no-progress"]) == 1
    finally:
        BLURS.unregister("failingblur")
    assert "blur failed: sigma too large" in capsys.readouterr().err
    assert not (out / "manifest.jsonl").exists() and not (out / "manifest.jsonl.partial").exists()
    assert main(["make-pairs", str(tmp_path / "in"), str(out), "--blur", "testblur", "--no-progress"]) == 0
    assert [r["file"] for r in _manifest(out)] == ["a.png"]
    summary = make_pairs(tmp_path / "in", tmp_path / "none", blur=Failing(), progress=False)
    assert summary["written"] == 0 and summary["manifest"] is None


def test_pairs_no_manifest_lists_are_refused_even_with_replace(tmp_path, photos, testblur, capsys):
    """--replace deletes only what a manifest lists: pair folders holding files no manifest lists are
    refused with a message saying so (it said "delete the pairs its manifest lists", then --replace
    deleted nothing and kept them in the training folders)."""
    write_image(tmp_path / "in" / "a.png", photos["gray"])
    out = tmp_path / "out"
    write_image(out / "sharp" / "stale.png", photos["gray"])
    for extra in ([], ["--replace"]):
        assert main(["make-pairs", str(tmp_path / "in"), str(out), "--blur", "testblur", *extra]) == 2
        err = capsys.readouterr().err
        assert "no manifest lists" in err and "sharp/ (1 entry)" in err and "its manifest lists" not in err
    assert _files(out) == {"sharp/stale.png": (out / "sharp" / "stale.png").read_bytes()}


def test_a_file_name_that_is_not_utf8(tmp_path, photos, testblur, capsys):
    """A file name that is not UTF-8 aborted the run ('utf-8' codec can't encode character '\\udce9'):
    it is paired, its seed hashes its bytes on disk, and ordinary names keep their seeds."""
    clean = tmp_path / "in"
    odd = _non_utf8_name(clean, b"caf\xe9.png")
    write_image(odd, photos["gray"])
    write_image(clean / "été.png", photos["rgb"])
    (_non_utf8_name(clean, b"bad\xff.jpg")).write_text("not a picture")
    out = tmp_path / "out"
    assert main(["make-pairs", str(clean), str(out), "--blur", "testblur", "--no-progress"]) == 3
    printed = capsys.readouterr()
    assert "wrote 2 of 3 pairs" in printed.out and "  bad\\xff.jpg: not an image" in printed.err
    assert sorted(os.listdir(os.fsencode(out / "sharp"))) == [b"caf\xe9.png", "été.png".encode()]
    records = {r["source"]: r for r in _manifest(out)}
    assert records[odd.name]["seed"] == image_seed(0, odd.name)
    assert records[odd.name]["file"] == odd.name
    # the seed of a UTF-8 name is what it always was; a name that is not UTF-8 hashes its bytes
    for name, raw in [("été.png", "été.png".encode()), (odd.name, b"caf\xe9.png")]:
        digest = __import__("hashlib").sha256(b"0\x00" + raw).digest()
        assert image_seed(0, name) == int.from_bytes(digest[:4], "big")
    assert records["été.png"]["seed"] == 3007342415  # as before: pairs stay reproducible
    # and --replace finds it again through the manifest
    assert main(["make-pairs", str(clean), str(out), "--blur", "testblur", "--no-progress", "--replace"]) == 3
    assert sorted(os.listdir(os.fsencode(out / "blurred"))) == [b"caf\xe9.png", "été.png".encode()]


def test_out_dir_is_or_holds_the_input_folder(tmp_path, photos, testblur, monkeypatch, capsys):
    """OUT_DIR the input folder is refused saying so (it said "no images found"); an input folder inside
    OUT_DIR (`make-pairs photos .`) is read (its images were all left out as outputs)."""
    photos_dir = tmp_path / "photos"
    write_image(photos_dir / "a.png", photos["gray"])
    args = ["--blur", "testblur", "--no-progress"]
    assert main(["make-pairs", str(photos_dir), str(photos_dir), *args]) == 2
    err = capsys.readouterr().err
    assert "is the input folder" in err and "no images" not in err
    assert sorted(os.listdir(photos_dir)) == ["a.png"]
    monkeypatch.chdir(tmp_path)
    assert main(["make-pairs", "photos", ".", *args]) == 0
    assert sorted(_files(tmp_path)) == ["blurred/a.png", "manifest.jsonl", "photos/a.png", "sharp/a.png"]
    assert main(["make-pairs", "sharp", ".", *args, "--replace"]) == 2  # would read its own outputs back
    assert "is inside sharp" in capsys.readouterr().err
    with pytest.raises(ValueError, match="is the input folder"):
        make_pairs(photos_dir, photos_dir / ".", blur=FakeBlur(), progress=False)


def test_outputs_apart_only_in_letter_case_are_kept_apart_where_case_is_ignored(tmp_path, monkeypatch):
    """A.jpg and a.png became A.png and a.png: one file on macOS and Windows, so one pair replaced the other
    and the manifest held two records of it. Where the output's file system ignores case (probed), such
    outputs keep their suffixes, as equal names do; names equal but for case are refused."""
    from blurkit.data import pairs
    from blurkit.data.io import folded

    assert pairs._output_names(["A.jpg", "a.png", "b.png"]) == {"A.jpg": "A.png", "a.png": "a.png", "b.png": "b.png"}
    assert pairs._output_names(["A.jpg", "a.png", "b.png"], folded) == {
        "A.jpg": "A.jpg.png", "a.png": "a.png.png", "b.png": "b.png"}
    with pytest.raises(ValueError, match=r"same output name \(on this file system, which ignores letter case\)"):
        pairs._output_names(["A.png", "a.png"], folded)
    src = tmp_path / "src"
    src.mkdir()
    write_image(src / "A.jpg", np.full((16, 16, 3), 90, np.uint8))
    write_image(src / "a.png", np.full((16, 16, 3), 200, np.uint8))
    monkeypatch.setattr(pairs, "case_blind", lambda folder: True)
    make_pairs(src, tmp_path / "out", seed=0)
    assert sorted(p.name for p in (tmp_path / "out" / "sharp").iterdir()) == ["A.jpg.png", "a.png.png"]

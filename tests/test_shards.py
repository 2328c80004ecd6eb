"""Data at any size: text lists, TFRecord shards (``blurkit shard``), splits, worker sharding, cache."""

from __future__ import annotations

import json
import os
import re
import warnings

import cv2
import numpy as np
import pytest

import blurkit.data.io as bio
from blurkit.blurs import GaussianBlur
from blurkit.cli.main import main
from blurkit.data.io import ImageReadError, write_image
from blurkit.data.pipeline import (
    _PatchMaker,
    items_for,
    make_dataset,
    resolve_source,
    split,
    split_source,
)
from blurkit.data.shards import (
    INDEX_NAME,
    count_records,
    read_example,
    read_index,
    record_offsets,
    write_shards,
)

BLUR = GaussianBlur(sigma=(0.5, 2.0))
LEVELS = [10, 40, 70, 100, 130, 160, 190, 220]  # one flat grey level per synthetic image


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Five small real photos (one in a sub-folder)."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    for name, img in [("astronaut.png", data.astronaut()), ("cat.jpg", data.chelsea()),
                      ("coffee.png", data.coffee()), ("sub/camera.png", data.camera()),
                      ("rocket.png", data.rocket())]:
        write_image(root / name, cv2.resize(img, (40, 32), interpolation=cv2.INTER_AREA))
    return root


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """Eight flat grey images whose level tells which image a patch came from."""
    root = tmp_path_factory.mktemp("flat")
    for v in LEVELS:
        write_image(root / f"v{v:03d}.png", np.full((24, 20, 3), v, np.uint8))
    return root


@pytest.fixture(scope="module")
def flat_shards(flat, tmp_path_factory):
    """The flat images in shards of 2 (4 shard files) and in one shard."""
    out = tmp_path_factory.mktemp("flat_shards")
    write_shards(flat, out / "four", shard_size=2, progress=False)
    write_shards(flat, out / "one", shard_size=100, progress=False)
    return out


def _levels(ds) -> list[int]:
    """The image (grey level) of every sharp patch of a finite dataset."""
    out = []
    for _, s in ds:
        s = s.numpy()
        for patch in s:
            assert np.ptp(patch) < 1e-6
            out.append(int(round(float(patch[0, 0, 0]) * 255)))
    return out


def _one_pass(src, **kw):
    kw = {"patch_size": 8, "batch_size": 4, "patches_per_image": 1, "repeat": False, "augment": False, **kw}
    return make_dataset(src, BLUR, **kw)


# ------------------------------------------------------------------------------------ text lists
def test_text_list_source(photos, tmp_path):
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    rel = os.path.relpath(photos / "cat.jpg", listing.parent)
    listing.write_text(
        "# training photos\n\n"
        f"{rel}\n"                                   # relative to the list's folder
        f"  {photos / 'astronaut.png'}  \n"          # absolute, surrounding spaces
        f"{photos / 'sub'}\n"                        # a folder
        f"{photos / '*.png'}\n"                      # a glob (astronaut again: returned once)
        f"{photos / 'cat.jpg'}\n",                   # a duplicate
        encoding="utf-8",
    )
    src = resolve_source(str(listing))
    names = [p.name for p in src.items]
    assert src.kind == "sharp" and names == ["cat.jpg", "astronaut.png", "camera.png", "coffee.png", "rocket.png"]
    assert all(p.is_file() for p in src.items)
    assert [p.name for p in bio.list_images(listing)] == names  # list_images reads lists too
    lst = tmp_path / "val.LST"
    lst.write_text(f"{photos / 'rocket.png'}\n")
    assert [p.name for p in resolve_source(lst).items] == ["rocket.png"]
    batch = next(iter(make_dataset(src, BLUR, patch_size=16, batch_size=2, patches_per_image=1)))
    assert batch[0].shape == (2, 16, 16, 3)


def test_text_list_errors_name_the_list_and_line(photos, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{photos / 'cat.jpg'}\n# comment\nmissing.png\n")
    with pytest.raises(FileNotFoundError, match=r"bad\.txt line 3: no such file: missing\.png"):
        resolve_source(bad)
    notes = tmp_path / "notes.md"
    notes.write_text("hello")
    (tmp_path / "suffix.txt").write_text(f"{notes}\n")
    with pytest.raises(ValueError, match=r"suffix\.txt line 1: not an image file name"):
        resolve_source(tmp_path / "suffix.txt")
    (tmp_path / "nested.txt").write_text("bad.txt\n")
    with pytest.raises(ValueError, match="cannot name another list"):
        resolve_source(tmp_path / "nested.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="names no images"):
        resolve_source(tmp_path / "empty.txt")
    (tmp_path / "glob.txt").write_text(f"{photos / 'nothing*.png'}\n")
    with pytest.raises(FileNotFoundError, match=r"glob\.txt line 1: no files match"):
        resolve_source(tmp_path / "glob.txt")


# ------------------------------------------------------------------------------- blurkit shard
def test_shard_command_end_to_end(photos, tmp_path, capsys):
    import tensorflow as tf

    src = tmp_path / "src"
    for p in bio.list_images(photos):
        dst = src / p.relative_to(photos)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(p.read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (src / "notes.txt").write_text("not an image")  # no image suffix: not looked at
    out = tmp_path / "shards"
    assert main(["shard", str(src), str(out), "--shard-size", "2", "--no-progress"]) == 3  # some failed, as deblur
    printed = capsys.readouterr()
    assert "wrote 5 of 6 images in 3 shards" in printed.out
    # the skipped files on stderr, as blurkit deblur and evaluate report theirs
    assert "skipped 1 unreadable file:" in printed.err and "broken.png" in printed.err
    assert "broken.png" not in printed.out

    names = ["shard-00000-of-00003.tfrecord", "shard-00001-of-00003.tfrecord", "shard-00002-of-00003.tfrecord"]
    assert sorted(os.listdir(out)) == sorted([*names, INDEX_NAME])  # no temporary files left
    index = json.loads((out / INDEX_NAME).read_text())
    assert index["format"] == "blurkit-shards" and index["format_version"] == 1
    assert index["total"] == 5 and index["source"] == str(src) and index["check"] == "decode"
    assert [s["file"] for s in index["shards"]] == names and [s["records"] for s in index["shards"]] == [2, 2, 1]
    assert all(s["bytes"] == (out / s["file"]).stat().st_size for s in index["shards"])
    assert [s["file"] for s in index["skipped"]] == ["broken.png"] and index["skipped"][0]["reason"]
    assert oct((out / names[0]).stat().st_mode & 0o777) == oct(0o666 & ~bio._umask())

    stored = {}
    for name in names:
        assert count_records(out / name) == sum(1 for _ in tf.data.TFRecordDataset(str(out / name)))
        for offset in record_offsets(out / name):
            data, rel = read_example(out / name, offset)
            stored[rel] = data
    expected = {p.relative_to(src).as_posix(): p for p in bio.list_images(src) if p.name != "broken.png"}
    assert sorted(stored) == sorted(expected) and "sub/camera.png" in stored
    for rel, data in stored.items():
        assert data == expected[rel].read_bytes()  # the original bytes, not re-encoded

    # a second run replaces the shards of the first one, and may use the header check
    assert main(["shard", str(src), str(out), "--shard-size", "10", "--check", "header", "--no-progress"]) == 3
    assert sorted(os.listdir(out)) == sorted([INDEX_NAME, "shard-00000-of-00001.tfrecord"])
    assert read_index(out)["total"] == 5


def test_shard_command_errors(tmp_path, capsys):
    def error(argv, *names):
        capsys.readouterr()
        assert main(argv) == 2
        lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("blurkit shard: error: ")
        assert all(str(n) in lines[0] for n in names)

    error(["shard", str(tmp_path / "missing"), str(tmp_path / "out")], tmp_path / "missing")
    (tmp_path / "a.png").write_bytes(b"junk")
    error(["shard", str(tmp_path), str(tmp_path / "out"), "--shard-size", "0"], "--shard-size")
    error(["shard", str(tmp_path / "none*.png"), str(tmp_path / "out")], "none*.png")
    capsys.readouterr()
    assert main(["shard", str(tmp_path), str(tmp_path / "out"), "--no-progress"]) == 1  # nothing readable
    assert "a.png" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_an_index_of_another_format_version_is_refused_by_what_it_is(flat, tmp_path):
    """A newer version asks for an upgrade; a version that no blurkit writes (true, 0, -1, a string) is damage:
    true and 0 were read as version 1 or 0 and the shards used."""
    from blurkit.data.shards import INDEX_NAME, read_index

    out = tmp_path / "out"
    write_shards(flat, out, shard_size=4, progress=False)
    index = json.loads((out / INDEX_NAME).read_text())
    for version, message in ((2, "newer than this blurkit reads"), (True, "damaged shard index"),
                             (0, "damaged shard index"), (-1, "damaged shard index"), ("1", "damaged shard index")):
        (out / INDEX_NAME).write_text(json.dumps({**index, "format_version": version}))
        with pytest.raises(ValueError, match=message):
            read_index(out)
    (out / INDEX_NAME).write_text(json.dumps(index))
    assert read_index(out)["total"] == index["total"]


def test_interrupted_shard_run_leaves_the_old_shards(flat, tmp_path, monkeypatch):
    import blurkit.data.shards as shards

    out = tmp_path / "out"
    write_shards(flat, out, shard_size=4, progress=False)
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    calls = []
    real = shards._example

    def failing(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(shards, "_example", failing)
    with pytest.raises(KeyboardInterrupt):
        write_shards(flat, out, shard_size=2, progress=False)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before  # untouched, no temporary files


# ------------------------------------------------------------------------------ records sources
def test_records_sources(flat, flat_shards, tmp_path):
    four = flat_shards / "four"
    src = resolve_source(four)
    assert src.kind == "records" and len(src) == 8 and src.counts == [2, 2, 2, 2] and len(src.items) == 4
    assert len(resolve_source(str(four / "*.tfrecord"))) == 8
    assert len(resolve_source([four / "shard-00000-of-00004.tfrecord", str(four / "shard-0000[23]*.tfrecord")])) == 6
    assert len(resolve_source(four / "shard-00001-of-00004.tfrecord")) == 2
    bare = tmp_path / "bare"  # shards without their index: records are counted once
    bare.mkdir()
    for f in src.items:
        (bare / f.name).write_bytes(f.read_bytes())
    glob_src = resolve_source(str(bare / "*.tfrecord"))
    assert glob_src.counts == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="no shards.json"):
        resolve_source(bare)
    with pytest.raises(ValueError, match="cannot mix"):
        resolve_source([four / "shard-00000-of-00004.tfrecord", flat / "v010.png"])
    changed = tmp_path / "changed"
    changed.mkdir()
    for f in [*src.items, four / INDEX_NAME]:
        (changed / f.name).write_bytes(f.read_bytes())
    with open(changed / src.items[0].name, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ValueError, match="changed after"):
        resolve_source(changed)
    with pytest.raises(ValueError, match="truncated"):
        count_records(changed / src.items[0].name)

    # random access (what Deblurrer.evaluate uses) gives the images of the source files
    maker = _PatchMaker(src, BLUR, 8, 1, 3, False, None)
    seen = set()
    for i in range(len(src)):
        _, image = maker._load(i)
        assert "#" in src.name(i)
        seen.add(int(image[0, 0, 0]))
    assert seen == set(LEVELS)


def test_record_batches_shapes_and_determinism(photos, tmp_path):
    write_shards(photos, tmp_path / "s", shard_size=2, progress=False)
    src = resolve_source(tmp_path / "s")

    def batches(seed):
        ds = make_dataset(src, BLUR, patch_size=16, batch_size=4, patches_per_image=2, seed=seed)
        return [(b.numpy(), s.numpy()) for b, s in ds.take(3)]

    a, b, c = batches(5), batches(5), batches(6)
    assert a[0][0].shape == a[0][1].shape == (4, 16, 16, 3) and a[0][0].dtype == np.float32
    assert all(0 <= x.min() and x.max() <= 1 for pair in a for x in pair)
    for (ab, asharp), (bb, bsharp) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ab, bb)
        np.testing.assert_array_equal(asharp, bsharp)
    assert not np.array_equal(a[0][1], c[0][1])
    grey = make_dataset(src, BLUR, patch_size=16, batch_size=2, channels=1)
    assert next(iter(grey))[0].shape == (2, 16, 16, 1)
    with pytest.raises(ValueError, match="blur generator"):
        make_dataset(src, None)


def test_records_one_epoch_visits_every_image_once(flat_shards):
    for kind in ("four", "one"):
        src = resolve_source(flat_shards / kind)
        assert sorted(_levels(_one_pass(src, seed=3))) == LEVELS
        assert sorted(_levels(_one_pass(src, shuffle=False))) == LEVELS


# ------------------------------------------------------------------------------------------ split
def test_split_source_matches_split_for_items(flat):
    src = resolve_source(flat)
    for fraction, seed in [(0.2, 0), (0.5, 3), (0.0, 1)]:
        tr, va = split(len(src), fraction, seed)
        train, val = split_source(src, fraction, seed)
        assert train.items == src.subset(tr).items
        assert (val is None) if not va else (val.items == src.subset(va).items)


def test_split_source_records_is_leak_free(flat_shards):
    four = resolve_source(flat_shards / "four")
    train, val = split_source(four, 0.25, seed=0)  # 4 shards * 0.25 >= 1: one whole shard held out
    assert len(val.items) == 1 and val.keep is None and len(train.items) == 3
    assert not set(train.items) & set(val.items) and len(train) + len(val) == 8
    assert split_source(four, 0.25, seed=0)[1].items == val.items
    one = resolve_source(flat_shards / "one")
    train, val = split_source(one, 0.25, seed=1)  # a single shard: split per record
    assert len(train) == 6 and len(val) == 2
    assert not set(train.keep) & set(val.keep)
    seen_train, seen_val = _levels(_one_pass(train)), _levels(_one_pass(val))
    assert len(seen_train) == 6 and len(seen_val) == 2
    assert sorted(seen_train + seen_val) == LEVELS
    again = split_source(one, 0.25, seed=1)[1]
    assert sorted(_levels(_one_pass(again))) == sorted(seen_val)  # deterministic
    assert split_source(one, 0.0, seed=1) == (one, None)
    assert train.digest() != val.digest() and train.digest() == split_source(one, 0.25, seed=1)[0].digest()


# ----------------------------------------------------------------------------- worker sharding
@pytest.mark.parametrize("kind", ["files", "four", "one"])
def test_workers_get_disjoint_parts_covering_everything(kind, flat, flat_shards):
    src = resolve_source(flat if kind == "files" else flat_shards / kind)
    parts = []
    for worker in range(3 if kind == "four" else 2):  # "four": 4 shard files over 3 workers
        workers = 3 if kind == "four" else 2
        levels = _levels(_one_pass(src, num_shards=workers, shard_index=worker, seed=worker))
        assert len(levels) == items_for(src, workers, worker) > 0
        parts.append(set(levels))
    for i in range(len(parts)):
        for j in range(i):
            assert not parts[i] & parts[j]
    assert set().union(*parts) == set(LEVELS)
    with pytest.raises(ValueError, match="shard_index"):
        make_dataset(src, BLUR, num_shards=2, shard_index=2)


def test_workers_of_a_split(flat_shards):
    train, _ = split_source(resolve_source(flat_shards / "one"), 0.25, seed=1)
    a = _levels(_one_pass(train, num_shards=2, shard_index=0))
    b = _levels(_one_pass(train, num_shards=2, shard_index=1))
    assert len(a) == len(b) == 3 and not set(a) & set(b)
    assert sorted(a + b) == sorted(_levels(_one_pass(train)))


# ------------------------------------------------------------------------------------------ cache
def _counting(monkeypatch, name):
    calls = []
    real = getattr(bio, name)

    def wrapper(*args, **kwargs):
        calls.append(args[0] if name == "read_image" else kwargs.get("name"))
        return real(*args, **kwargs)

    monkeypatch.setattr(bio, name, wrapper)
    return calls


def test_cache_serves_later_epochs_and_is_never_stale(photos, tmp_path, monkeypatch):
    data = tmp_path / "data"
    for p in bio.list_images(photos)[:3]:
        data.mkdir(exist_ok=True)
        (data / p.name).write_bytes(p.read_bytes())
    src = resolve_source(data)
    cache = tmp_path / "cache"
    kw = {"patch_size": 16, "batch_size": 3, "patches_per_image": 2}
    plain = [b.numpy() for b, _ in make_dataset(src, BLUR, seed=1, **kw).take(2)]
    reads = _counting(monkeypatch, "read_image")
    first = [b.numpy() for b, _ in make_dataset(src, BLUR, seed=1, cache=cache, **kw).take(2)]
    assert len(reads) == 3 and len(list(cache.rglob("*.npy"))) == 3
    for x, y in zip(plain, first, strict=True):
        np.testing.assert_array_equal(x, y)  # caching changes nothing in the batches
    reads.clear()
    second = [b.numpy() for b, _ in make_dataset(src, BLUR, seed=1, cache=cache, **kw).take(2)]
    assert reads == []  # a new dataset (the next epoch) reads the cache, not the files
    for x, y in zip(plain, second, strict=True):
        np.testing.assert_array_equal(x, y)
    other = [b.numpy() for b, _ in make_dataset(src, BLUR, seed=2, cache=cache, **kw).take(1)]
    assert reads == [] and not np.array_equal(other[0], plain[0])  # patches and blur still vary

    # a changed file is decoded again, and its new content is used
    target = src.items[0]
    write_image(target, np.full((32, 40, 3), 77, np.uint8))
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    maker = _PatchMaker(src, BLUR, 16, 1, 3, False, None, cache=cache)
    reads.clear()
    _, image = maker._load(0)
    assert reads == [target] and int(image.max()) == 77
    reads.clear()
    _, image = maker._load(0)
    assert reads == [] and isinstance(image, np.memmap) and int(image.max()) == 77
    assert not list(cache.rglob("*.tmp"))

    # served by the cache and refused there as too big: named by its whole path, as a read file is
    small = _PatchMaker(src, BLUR, 16, 1, 3, False, 100, cache=cache)
    with pytest.raises(ImageReadError) as info:
        small._load(0)
    assert reads == [] and info.value.path == str(target) and "max_pixels=100" in info.value.reason


def test_cache_for_records_and_pairs(flat, photos, tmp_path, monkeypatch):
    write_shards(flat, tmp_path / "s", shard_size=3, progress=False)
    src = resolve_source(tmp_path / "s")
    decodes = _counting(monkeypatch, "decode_image")
    assert sorted(_levels(_one_pass(src, cache=tmp_path / "c"))) == LEVELS
    assert len(decodes) == 8
    decodes.clear()
    assert sorted(_levels(_one_pass(src, cache=tmp_path / "c", seed=9))) == LEVELS
    assert decodes == []

    from blurkit.data.pairs import make_pairs

    make_pairs(photos, tmp_path / "pairs", blur_options={"sigma": 1.0}, progress=False)
    pairs = resolve_source((tmp_path / "pairs" / "blurred", tmp_path / "pairs" / "sharp"))
    reads = _counting(monkeypatch, "read_image")
    kw = {"patch_size": 16, "batch_size": 4, "patches_per_image": 1, "repeat": False, "cache": tmp_path / "pc"}
    first = [b.numpy() for b, _ in make_dataset(pairs, **kw)]
    assert len(reads) == 10
    reads.clear()
    again = [b.numpy() for b, _ in make_dataset(pairs, **kw)]
    assert reads == [] and all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))


@pytest.mark.parametrize("border, patch", [("reflect", 12), ("wrap", 12), ("reflect", 48)])
def test_patches_from_the_cache_equal_patches_from_the_file(border, patch, photos, tmp_path):
    """Memory-mapped cached images give the same patches: interior, wrap borders, padded small images."""
    src = resolve_source(photos / "astronaut.png")
    blur = GaussianBlur(sigma=(1.0, 3.0), border=border)
    outputs = []
    for cache in (None, tmp_path / "c", tmp_path / "c"):  # no cache, filling it, reading it back
        maker = _PatchMaker(src, blur, patch, 6, 3, augment=True, max_pixels=None, cache=cache)
        outputs.append(maker(np.int64(0), np.int64(4)))
    for b, s in outputs[1:]:
        np.testing.assert_array_equal(b, outputs[0][0])
        np.testing.assert_array_equal(s, outputs[0][1])


def test_epochs_built_from_tensor_seeds(flat_shards, tmp_path):
    """The Deblurrer builds each epoch inside ``flat_map`` from a tensor seed: records and cache work there."""
    import tensorflow as tf

    src, _ = split_source(resolve_source(flat_shards / "one"), 0.25, seed=0)

    def epochs(first_seed):
        def build(seed):
            tf.compat.v1.get_default_graph().seed = None
            return make_dataset(src, BLUR, patch_size=8, batch_size=3, patches_per_image=1, seed=seed,
                                cache=tmp_path / "c", num_shards=2, shard_index=1).take(2)

        seeds = tf.data.Dataset.from_tensor_slices(tf.constant([first_seed, first_seed + 1], tf.int64))
        return [np.concatenate([b.numpy(), s.numpy()]) for b, s in seeds.flat_map(build)]

    a, b, other = epochs(11), epochs(11), epochs(21)
    assert len(a) == 4 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # and the seeds are used: other seeds give other batches (blurred and sharp patches compared together)
    assert len(other) == 4 and not any(np.array_equal(x, y) for x, y in zip(a, other, strict=True))


# ------------------------------------------------------------------------------ bad records, bad index, full disk
def _truncated_png(path, seed: int = 0) -> None:
    """Half of a PNG: its header parses (``check="header"`` lets it into shards) but it cannot be decoded."""
    whole = cv2.imencode(".png", np.random.default_rng(seed).integers(0, 256, (24, 20, 3), dtype=np.uint8))[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(whole.tobytes()[: len(whole) // 2])


@pytest.fixture(scope="module")
def bad_records(flat, tmp_path_factory):
    """Shards (header check, one image each) of three flat images and two truncated PNGs (``mixed_shards``),
    of three truncated PNGs only (``allbad_shards``), and of the eight flat images (``train_shards``)."""
    root = tmp_path_factory.mktemp("bad_records")
    (root / "mixed").mkdir()
    for v in LEVELS[:3]:
        (root / "mixed" / f"v{v:03d}.png").write_bytes((flat / f"v{v:03d}.png").read_bytes())
    for i in range(2):
        _truncated_png(root / "mixed" / f"trunc{i}.png", seed=i)
    for i in range(3):
        _truncated_png(root / "allbad" / f"trunc{i}.png", seed=i)
    for name in ("mixed", "allbad"):
        summary = write_shards(root / name, root / f"{name}_shards", shard_size=1, check="header", progress=False)
        assert not summary["skipped"]
    write_shards(flat, root / "train_shards", shard_size=4, progress=False)
    return root


def _tiny():
    from blurkit import Deblurrer

    return Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1}, patch_size=16, batch_size=4)


@pytest.mark.parametrize("kind", ["files", "records"])
def test_a_validation_pass_scores_each_readable_item_once(kind, flat, bad_records):
    """Unreadable validation items (files or shard records) are skipped with a 'validation' warning, not
    replaced by another item scored twice, and the validation dataset declares no length it cannot keep."""
    val = bad_records / "mixed" if kind == "files" else bad_records / "mixed_shards"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, val_src, _, val_for = _tiny()._datasets(flat, val, 0, None)
        levels = _levels(val_for(7919))
    assert len(val_src) == 5
    assert sorted(levels) == sorted(LEVELS[:3] * 4)  # 4 patches of each readable image, none of a bad one
    messages = [str(w.message) for w in caught if "skipping unreadable" in str(w.message)]
    word = "item" if kind == "files" else "record"
    assert len(messages) == 2 and all(m.startswith(f"skipping unreadable validation {word}: ") for m in messages)
    assert sorted(re.search(r"trunc(\d)\.png: truncated", m)[1] for m in messages) == ["0", "1"]


def test_training_goes_on_past_an_unreadable_validation_record(bad_records):
    """A validation record that cannot be decoded used to fail the first validation pass ('expected to
    contain 5 elements but contained only 4')."""
    d = _tiny()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d.fit(bad_records / "train_shards", validation=bad_records / "mixed_shards", epochs=2,
              steps_per_epoch=2, verbose=0)
    assert len(d.history["val_loss"]) == 2 and all(np.isfinite(d.history["val_psnr"]))
    assert sum("skipping unreadable validation record" in str(w.message) for w in caught) == 2


def test_shards_of_which_no_record_can_be_read_are_an_error_before_training(bad_records):
    """Records are read in order until one can be, as files are: none gives the plain ValueError naming
    them (training used to filter the bad records out forever)."""
    shards = bad_records / "allbad_shards"
    src = resolve_source(shards)
    with pytest.warns(UserWarning, match="skipping unreadable training record"):
        with pytest.raises(ValueError, match="none of the 3 training items can be read") as info:
            make_dataset(src, BLUR, patch_size=8, batch_size=2)
    for i in range(3):  # SHARD#POSITION: the file inside the shard, and why
        assert re.search(rf"{re.escape(str(src.items[i]))}#0: trunc\d\.png: truncated or corrupt PNG", str(info.value))
    from blurkit.data.pipeline import check_readable

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="none of the 3 validation items"):
            check_readable(src, role="validation")
        with pytest.raises(ValueError) as info:
            _tiny().fit(shards, epochs=1, steps_per_epoch=2, validation_split=0, verbose=0)
    assert str(info.value).startswith("none of the 3 training items can be read: ")


def test_mixed_shards_are_checked_up_to_the_first_readable_record(bad_records):
    from blurkit.data.pipeline import check_readable

    src = resolve_source(bad_records / "mixed_shards")
    names = [read_example(src.items[i], 0)[1] for i in range(len(src))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = check_readable(src)
    first_good = next(i for i, n in enumerate(names) if not n.startswith("trunc"))
    assert sorted(found) == list(range(first_good)) and len(caught) == first_good


def test_a_stream_of_unreadable_records_stops_instead_of_spinning(bad_records):
    """Safety net behind the check (a worker whose own shards are all bad): the repeating stream raises
    once every record it reads has failed, rather than dropping records forever."""
    import threading

    import tensorflow as tf

    src = resolve_source(bad_records / "allbad_shards")
    ds = make_dataset(src, BLUR, patch_size=8, batch_size=2, unreadable={})  # the check skipped
    outcome = []

    def first_batch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                next(iter(ds))
            except tf.errors.OpError as exc:
                outcome.append(str(exc))

    reader = threading.Thread(target=first_batch, daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "the stream of unreadable records spins forever"
    assert outcome and "none of the 3 training records this worker reads can be read" in outcome[0]


def test_an_index_whose_record_counts_were_edited_is_refused(flat_shards, tmp_path):
    """The byte sizes still match, so only walking the record headers catches it (it used to fail
    mid-training with 'indices = 4 is not in [0, 4)', or train on a wrong count silently)."""
    edited = tmp_path / "edited"
    edited.mkdir()
    four = flat_shards / "four"
    for f in four.iterdir():
        (edited / f.name).write_bytes(f.read_bytes())
    index = json.loads((four / INDEX_NAME).read_text())
    index["shards"][1]["records"] = 3
    (edited / INDEX_NAME).write_text(json.dumps(index))
    shard = edited / "shard-00001-of-00004.tfrecord"
    for read in (lambda: read_index(edited), lambda: resolve_source(edited)):
        with pytest.raises(ValueError, match="holds 2 records but .*says 3") as info:
            read()
        assert str(shard) in str(info.value)
    assert read_index(edited, check_records=False)["shards"][1]["records"] == 3  # sizes only
    # files named directly are counted, so the edited index beside them is not trusted either
    assert resolve_source(str(edited / "*.tfrecord")).counts == [2, 2, 2, 2]
    assert resolve_source(shard).counts == [2]


def test_a_full_disk_is_a_one_line_error_and_leaves_no_temporary_file(flat, tmp_path, monkeypatch, capsys):
    import tensorflow as tf

    real = tf.io.TFRecordWriter

    class FullDisk:
        """A TFRecordWriter on a disk that fills up at the third record."""

        writes = 0

        def __init__(self, path):
            self.path, self.inner = path, real(path)

        def write(self, record):
            FullDisk.writes += 1
            if FullDisk.writes == 3:
                raise tf.errors.ResourceExhaustedError(None, None, f"{self.path}; No space left on device")
            self.inner.write(record)

        def close(self):
            self.inner.close()

    monkeypatch.setattr(tf.io, "TFRecordWriter", FullDisk)
    out = tmp_path / "out"
    assert main(["shard", str(flat), str(out), "--shard-size", "2", "--no-progress"]) == 1  # as any OSError
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert lines == [f"blurkit shard: error: cannot write shards to {out}: No space left on device"]
    assert os.listdir(out) == []
    with pytest.raises(OSError, match="cannot write shards to .*: No space left on device"):
        FullDisk.writes = 0
        write_shards(flat, out, shard_size=2, progress=False)


def test_shard_a_file_name_that_is_not_utf8(photos, tmp_path, capsys):
    """A file name that is not UTF-8 aborted the run ('utf-8' codec can't encode character '\\udce9'): it is
    stored as its bytes on disk and read back as Python names the file; UTF-8 names are stored as before."""
    src = tmp_path / "src"
    src.mkdir()
    odd = os.fsdecode(os.path.join(os.fsencode(src), b"caf\xe9.png"))
    try:
        with open(odd, "wb") as fh:
            fh.write((photos / "coffee.png").read_bytes())
    except (OSError, UnicodeError):  # macOS and Windows keep names in Unicode
        pytest.skip("this file system refuses file names that are not UTF-8")
    (src / "été.png").write_bytes((photos / "rocket.png").read_bytes())
    with open(os.fsdecode(os.path.join(os.fsencode(src), b"bad\xff.png")), "wb") as fh:
        fh.write(b"not an image")
    out = tmp_path / "shards"
    assert main(["shard", str(src), str(out), "--no-progress"]) == 3
    printed = capsys.readouterr()
    assert "wrote 2 of 3 images" in printed.out and "  bad\\xff.png: " in printed.err
    shard = out / "shard-00000-of-00001.tfrecord"
    stored = dict(read_example(shard, offset)[::-1] for offset in record_offsets(shard))
    assert sorted(stored) == sorted([os.path.basename(odd), "été.png"])
    assert stored[os.path.basename(odd)] == (photos / "coffee.png").read_bytes()
    raw = shard.read_bytes()
    assert b"caf\xe9.png" in raw and "été.png".encode() in raw  # the bytes on disk; UTF-8 as before
    assert read_index(out)["skipped"][0]["file"] == os.fsdecode(b"bad\xff.png")
    assert len(resolve_source(out)) == 2


def test_shard_out_is_or_holds_the_source_folder(photos, tmp_path, monkeypatch, capsys):
    """OUT the source folder is refused saying so (it said "no images to shard"); a source folder inside
    OUT (`blurkit shard photos .`) is read (its images were all left out as OUT's)."""
    src = tmp_path / "photos"
    src.mkdir()
    (src / "cat.jpg").write_bytes((photos / "cat.jpg").read_bytes())
    assert main(["shard", str(src), str(src), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is the source folder" in err and "no images" not in err and os.listdir(src) == ["cat.jpg"]
    monkeypatch.chdir(tmp_path)
    assert main(["shard", "photos", ".", "--no-progress"]) == 0
    assert read_index(tmp_path)["total"] == 1
    # OUT inside the source folder is still left out of it
    (src / "shards").mkdir()
    write_image(src / "shards" / "stray.png", np.zeros((4, 4), np.uint8))
    assert write_shards(src, src / "shards", progress=False)["written"] == 1


def test_shard_max_pixels_reason_names_the_flag(photos, tmp_path, capsys):
    """The reason a file is above --max-pixels names the flag, as `blurkit deblur` does (it named
    read_image's max_pixels), on stderr with the other skipped files."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.png").write_bytes((photos / "coffee.png").read_bytes())  # 40x32 = 1,280 pixels
    assert main(["shard", str(src), str(tmp_path / "out"), "--max-pixels", "800", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "a.png: image is 40x32 = 1,280 pixels, more than --max-pixels 800" in err
    assert "pass a larger --max-pixels if you trust this file" in err
    assert "read_image" not in err and "max_pixels" not in err


def test_two_shard_runs_write_the_same_bytes(photos, tmp_path):
    """The records were equal but not their bytes (protobuf wrote the features in another order each run):
    checksums and data-versioning tools saw a change where there was none."""
    import subprocess
    import sys

    runs = [tmp_path / "one", tmp_path / "two"]
    args = ["shard", str(photos), "--shard-size", "2", "--workers", "1", "--no-progress"]
    assert main([*args[:2], str(runs[0]), *args[2:]]) == 0
    from helpers import source_env  # the second run in another process: its own order

    proc = subprocess.run([sys.executable, "-m", "blurkit", *args[:2], str(runs[1]), *args[2:]], env=source_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in runs[0].glob("*.tfrecord"))
    assert files and files == sorted(p.name for p in runs[1].glob("*.tfrecord"))
    for name in files:
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name

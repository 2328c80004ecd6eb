"""The tf.data training pipeline: data forms, deterministic split and batches, patch blurring."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from blurkit.blurs import GaussianBlur
from blurkit.data.io import write_image
from blurkit.data.pipeline import _PatchMaker, make_dataset, resolve_source, split, steps_for, to_channels


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    for name, img in [("astronaut.png", data.astronaut()), ("cat.jpg", data.chelsea()),
                      ("coffee.png", data.coffee()), ("sub/camera.png", data.camera()),
                      ("rocket.png", data.rocket())]:
        write_image(root / name, cv2.resize(img, (64, 48), interpolation=cv2.INTER_AREA))
    return root


@pytest.fixture(scope="module")
def pair_dirs(photo_dir, tmp_path_factory):
    from blurkit.data.pairs import make_pairs

    out = tmp_path_factory.mktemp("pairs")
    make_pairs(photo_dir, out, blur="gaussian", blur_options={"sigma": 1.5}, progress=False)
    return out / "blurred", out / "sharp"


class RecordingBlur(GaussianBlur):
    """A Gaussian blur that remembers the parameters it sampled."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.log: list[dict] = []

    def sample(self, rng=None):
        params = super().sample(rng)
        self.log.append(params)
        return params


# ------------------------------------------------------------------------------------------ split
def test_split_is_deterministic_and_disjoint():
    for n in (2, 3, 10, 57):
        for seed in (0, 1, 12345):
            train, val = split(n, 0.2, seed)
            assert (train, val) == split(n, 0.2, seed)
            assert not set(train) & set(val)
            assert sorted(train + val) == list(range(n))
            assert 1 <= len(val) <= n - 1
    assert split(10, 0.2, 0) != split(10, 0.2, 1)
    assert split(10, 0.2, 0) == ([0, 1, 2, 3, 5, 7, 8, 9], [4, 6])
    assert split(1, 0.5, 0) == ([0], []) and split(5, 0.0, 0) == ([0, 1, 2, 3, 4], [])
    with pytest.raises(ValueError, match="fraction"):
        split(10, 1.0, 0)


def test_split_keeps_pairs_together(pair_dirs):
    src = resolve_source(pair_dirs)
    assert src.kind == "pairs" and len(src) == 5
    train, val = split(len(src), 0.4, seed=3)
    tr, va = src.subset(train), src.subset(val)
    for b, s in tr.items + va.items:
        assert b.relative_to(pair_dirs[0]) == s.relative_to(pair_dirs[1])
    assert not {s for _, s in tr.items} & {s for _, s in va.items}
    assert len(tr) + len(va) == 5


def test_array_subsets_use_their_own_images():
    """Regression: a split of in-memory arrays trained on the first images instead of the subset's."""
    images = np.stack([np.full((40, 40, 3), v, np.float32) for v in (0.1, 0.3, 0.5, 0.7, 0.9)])
    src = resolve_source((images * 0.5, images))
    train, val = split(len(src), 0.4, seed=0)
    for part in (train, val):
        ds = make_dataset(src.subset(part), batch_size=4, patch_size=16, patches_per_image=2,
                          repeat=False, shuffle=False, augment=False)
        seen_sharp, seen_blurred = set(), set()
        for b, s in ds:
            seen_sharp |= {round(float(v), 3) for v in np.unique(s.numpy())}
            seen_blurred |= {round(float(v), 3) for v in np.unique(b.numpy())}
        assert seen_sharp == {round(float(images[i, 0, 0, 0]), 3) for i in part}
        assert seen_blurred == {round(float(images[i, 0, 0, 0]) * 0.5, 3) for i in part}


# ---------------------------------------------------------------------------------- data forms
def test_resolve_source_forms(photo_dir, pair_dirs):
    folder = resolve_source(photo_dir)
    assert folder.kind == "sharp" and len(folder) == 5 and folder.sharp is None
    assert resolve_source(str(photo_dir / "cat.jpg")).items == [photo_dir / "cat.jpg"]
    assert len(resolve_source(str(photo_dir / "*.png"))) == 3
    pairs = resolve_source((str(pair_dirs[0]), str(pair_dirs[1])))
    assert pairs.kind == "pairs" and len(pairs) == 5
    arr = resolve_source(np.zeros((3, 20, 20, 3), np.uint8))
    assert arr.kind == "sharp" and len(arr) == 3
    one = resolve_source(np.zeros((20, 30, 3), np.uint8))
    assert len(one) == 1
    mixed = resolve_source([np.zeros((20, 30, 3), np.uint8), np.zeros((25, 20), np.uint8)])
    assert len(mixed) == 2
    ap = resolve_source((np.zeros((2, 20, 20, 3)), np.ones((2, 20, 20, 3))))
    assert ap.kind == "pairs" and len(ap) == 2
    with pytest.raises(ValueError, match="different numbers"):
        resolve_source((np.zeros((2, 20, 20, 3)), np.ones((3, 20, 20, 3))))
    with pytest.raises(ValueError, match="differ in size"):
        resolve_source(([np.zeros((20, 20, 3))], [np.ones((21, 20, 3))]))
    with pytest.raises(FileNotFoundError):
        resolve_source(photo_dir / "missing")
    with pytest.raises(TypeError, match="data must be"):
        resolve_source(42)


class FsPath:
    """A minimal ``os.PathLike`` that is not a ``pathlib.Path`` (as other path libraries make)."""

    def __init__(self, path):
        self.path = str(path)

    def __fspath__(self) -> str:
        return self.path


def test_pathlike_folders_that_are_not_paths(photo_dir, pair_dirs):
    """Regression: a tuple of two such folders was read as one list of sharp photos, not as pairs."""
    pairs = resolve_source((FsPath(pair_dirs[0]), FsPath(pair_dirs[1])))
    assert pairs.kind == "pairs" and len(pairs) == 5
    assert all(b.relative_to(pair_dirs[0]) == s.relative_to(pair_dirs[1]) for b, s in pairs.items)
    folder = resolve_source(FsPath(photo_dir))
    assert folder.kind == "sharp" and len(folder) == 5


def test_pathlike_options_are_written_as_paths():
    from blurkit.data.pairs import describe_blur

    def box(image, seed=None):
        return {"image": image, "kernel": np.ones((1, 1)), "params": {}}

    described = describe_blur(box, "box", {"psf": FsPath("kernels/psf.png")})
    assert described["config"] == {"psf": "kernels/psf.png"}


def test_match_pairs_reports_files_that_share_a_name(tmp_path):
    """Regression: of sharp/x.jpg and sharp/x.png one was dropped without a word and the other paired."""
    from blurkit.data.pipeline import match_pairs

    img = np.zeros((8, 8, 3), np.uint8)
    for name in ("blurred/x.png", "blurred/y.png", "sharp/x.jpg", "sharp/x.png", "sharp/y.png", "sharp/z.png"):
        write_image(tmp_path / name, img)
    b, s = tmp_path / "blurred", tmp_path / "sharp"
    pairs, problems = match_pairs(b, s)
    assert pairs == [(b / "y.png", s / "y.png")]  # which sharp x pairs with blurred/x.png is ambiguous
    assert problems == [f"{b / 'x.png'} and {s / 'x.jpg'} and {s / 'x.png'}: several files named 'x' without "
                        "extension, so which pair up is ambiguous (rename or remove the extra ones)",
                        f"{s / 'z.png'}: no blurred partner in {b}"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(resolve_source((b, s))) == 1
    assert [str(w.message) for w in caught] == [f"skipping {m}" for m in problems]
    (b / "y.png").unlink()
    with pytest.raises(ValueError, match=r"no matching file names .*\(left out: .*x\.jpg and .*x\.png"):
        match_pairs(b, s)


def test_batches_shape_dtype_range(photo_dir, pair_dirs):
    blur = GaussianBlur(sigma=(0.5, 3.0))
    for data in (photo_dir, pair_dirs, np.zeros((3, 20, 24), np.uint8)):  # images smaller than the patch
        ds = make_dataset(resolve_source(data), blur, patch_size=32, batch_size=4, patches_per_image=2)
        b, s = next(iter(ds))
        assert b.shape == s.shape == (4, 32, 32, 3)
        assert b.dtype.name == s.dtype.name == "float32"
        assert 0 <= float(np.min(b)) and float(np.max(b)) <= 1 and float(np.max(s)) <= 1
    grey = make_dataset(resolve_source(photo_dir), blur, patch_size=16, batch_size=2, channels=1)
    assert next(iter(grey))[0].shape == (2, 16, 16, 1)
    with pytest.raises(ValueError, match="blur generator"):
        make_dataset(resolve_source(photo_dir), None)
    assert steps_for(10, 4, 16) == 3 and steps_for(1, 1, 16) == 1


def test_an_image_much_smaller_than_the_patch_is_warned_about_once():
    """A patch far larger than the photos trains on mirrored copies at the patch's cost (a 3000-px patch on
    200-px photos took 167 s a step, silently); it is padded as before, and said once."""
    small = np.zeros((2, 20, 24), np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = make_dataset(resolve_source(small), GaussianBlur(), patch_size=64, batch_size=2, patches_per_image=1)
        for b, _ in ds.take(3):
            assert b.shape == (2, 64, 64, 3)  # padded, as before
    said = [str(w.message) for w in caught if "patch_size" in str(w.message)]
    assert len(said) == 1 and "patch_size 64 is much larger than a training image of 20x24 pixels" in said[0]
    with warnings.catch_warnings(record=True) as caught:  # padded by less than 3/4 of the patch: no warning
        warnings.simplefilter("always")
        next(iter(make_dataset(resolve_source(small), GaussianBlur(), patch_size=32, batch_size=2)))
    assert not [w for w in caught if "patch_size" in str(w.message)]
    thin = np.zeros((1, 10, 300), np.uint8)  # a large image, but a strip: 10 of each patch's 64 rows are its own
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        next(iter(make_dataset(resolve_source(thin), GaussianBlur(), patch_size=64, batch_size=2)))
    assert [str(w.message) for w in caught if "patch_size" in str(w.message)] == [
        "patch_size 64 is much larger than a training image of 10x300 pixels: it is padded to 64x300 by mirroring, "
        "so most of each 64x64 patch cut from it is mirrored copies; a patch_size at most the photos' shorter side "
        "trains faster on what they show"]


def test_to_channels():
    rgb = np.random.default_rng(0).random((4, 5, 3), dtype=np.float32)
    assert to_channels(rgb[..., 0], 3).shape == (4, 5, 3)
    np.testing.assert_allclose(to_channels(rgb, 1)[..., 0], rgb @ np.array([0.299, 0.587, 0.114]), atol=1e-6)
    assert to_channels(np.dstack([rgb, rgb[..., :1]]), 3).shape == (4, 5, 3)
    grey_alpha = np.dstack([rgb[..., 0], rgb[..., 1]])  # alpha dropped, as of RGBA
    np.testing.assert_array_equal(to_channels(grey_alpha, 3), np.repeat(rgb[..., :1], 3, axis=-1))
    np.testing.assert_array_equal(to_channels(grey_alpha, 1), rgb[..., :1])


@pytest.mark.parametrize("channels", [1, 3])
def test_grey_alpha_arrays_give_batches_of_the_model_channels(channels, tmp_path):
    """Regression: (N,H,W,2) arrays crashed in the pipeline ("cannot convert a 2-channel image")."""
    grey = np.random.default_rng(0).integers(0, 256, (1, 40, 40), dtype=np.uint8)
    arrays = np.stack([grey, np.full_like(grey, 7)], axis=-1)  # an alpha far from the grey values
    assert len(resolve_source(arrays[0])) == 1  # one (H,W,2) image, not 40 images 2 pixels wide
    write_image(tmp_path / "la.png", arrays[0])  # the same image as a grey + alpha PNG

    def batches(data):
        ds = make_dataset(resolve_source(data), GaussianBlur(), patch_size=16, batch_size=4, patches_per_image=4,
                          channels=channels, seed=3)
        return [x.numpy() for x in next(iter(ds))]

    expected = batches(grey)
    assert [x.shape for x in expected] == [(4, 16, 16, channels)] * 2
    for data in (arrays, tmp_path / "la.png"):  # alpha dropped from arrays as from files
        for got, want in zip(batches(data), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    blurred, sharp = batches((arrays, arrays))
    assert blurred.shape == sharp.shape == (4, 16, 16, channels)
    np.testing.assert_array_equal(blurred, sharp)


def test_unsupported_channel_counts_are_refused_naming_the_argument():
    five = np.zeros((2, 20, 20, 5), np.uint8)
    with pytest.raises(ValueError, match=r"^data: images need 1 \(grey\), 2 \(grey \+ alpha\), 3 \(RGB\) or 4 "
                                         r"\(RGBA\) channels, got 5 \(shape \(2, 20, 20, 5\)\)"):
        resolve_source(five)
    with pytest.raises(ValueError, match=r"^sharp: images need .* got 5"):
        resolve_source((np.zeros((2, 20, 20, 3), np.uint8), five))
    with pytest.raises(ValueError, match=r"^blurred\[1\]: images need .* got 6"):
        resolve_source(([np.zeros((20, 20), np.uint8), np.zeros((20, 20, 6), np.uint8)], [np.zeros((20, 20))] * 2))
    with pytest.raises(ValueError, match=r"^data\[0\]: expected an \(H,W\) or \(H,W,C\) image"):
        resolve_source([five])


# ------------------------------------------------------------------------------------ determinism
def _first_batches(source, seed, n=2):
    ds = make_dataset(source, GaussianBlur(sigma=(0.5, 3.0), noise=0.01), patch_size=32, batch_size=4,
                      patches_per_image=2, seed=seed)
    return [(b.numpy(), s.numpy()) for b, s in ds.take(n)]


@pytest.mark.parametrize("form", ["folder", "pairs", "arrays"])
def test_same_seed_same_batches(form, photo_dir, pair_dirs):
    rng = np.random.default_rng(0)
    data = {"folder": photo_dir, "pairs": pair_dirs,
            "arrays": rng.integers(0, 256, (4, 50, 60, 3), dtype=np.uint8)}[form]
    src = resolve_source(data)
    a, b, c = _first_batches(src, 7), _first_batches(src, 7), _first_batches(src, 8)
    for (ab, asharp), (bb, bsharp) in zip(a, b, strict=True):
        np.testing.assert_array_equal(ab, bb)
        np.testing.assert_array_equal(asharp, bsharp)
    assert not np.array_equal(a[0][0], c[0][0])


# ---------------------------------------------------------------------------- patch blurring
def _locate(patch: np.ndarray, image: np.ndarray) -> tuple[int, int]:
    p = patch.shape[0]
    hits = [(y, x) for y in range(image.shape[0] - p + 1) for x in range(image.shape[1] - p + 1)
            if np.array_equal(image[y : y + p, x : x + p], patch)]
    assert len(hits) == 1
    return hits[0]


@pytest.mark.parametrize("border", ["reflect", "wrap"])
def test_blurred_patch_equals_blurring_the_whole_photo_then_cropping(border):
    """The pipeline blurs a patch with a margin; that must equal blurring the full photo and cropping."""
    p = 32
    image = np.random.default_rng(5).random((72, 90, 3), dtype=np.float32)  # noise: patches are unique
    blur = RecordingBlur(sigma=(1.0, 3.0), border=border)
    maker = _PatchMaker(resolve_source(image), blur, p, 8, 3, augment=False, max_pixels=None)
    interior = near_border = 0
    for seed in range(3):
        blur.log.clear()
        blurred, sharp = maker(np.int64(0), np.int64(seed))
        assert len(blur.log) == 8
        for i, params in enumerate(blur.log):
            y, x = _locate(sharp[i], image)
            r = blur.kernel(params).shape[0] // 2
            if y >= r and x >= r and y + p + r <= image.shape[0] and x + p + r <= image.shape[1]:
                interior += 1
            else:
                near_border += 1
            whole = blur.apply(image, params)
            np.testing.assert_allclose(blurred[i], whole[y : y + p, x : x + p], atol=1e-5,
                                       err_msg=f"patch at {(y, x)}, radius {r}, border {border}")
    assert interior and near_border  # both cases were checked


def test_blurred_patch_of_a_photo_file(photo_dir):
    """Same check on a real (uint8, decoded) photo and the gaussian blur's default reflect border."""
    from blurkit.data.io import read_image, to_float

    blur = RecordingBlur(sigma=(0.5, 3.0))
    src = resolve_source(photo_dir / "astronaut.png")
    image = to_float(read_image(photo_dir / "astronaut.png"))
    blurred, sharp = _PatchMaker(src, blur, 24, 6, 3, augment=False, max_pixels=None)(np.int64(0), np.int64(1))
    for i, params in enumerate(blur.log):
        y, x = _locate(sharp[i], image)
        np.testing.assert_allclose(blurred[i], blur.apply(image, params)[y : y + 24, x : x + 24], atol=1e-5)



def _bad_photo_folder(root, good: int = 6):
    """``good`` small photos plus four unreadable files: text, empty, half a PNG, and a float TIFF with a NaN
    (which made a whole training run NaN before it was refused)."""
    rng = np.random.default_rng(0)
    for i in range(good):
        write_image(root / f"good{i}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    (root / "fake.png").write_text("not an image")
    (root / "zero.png").write_bytes(b"")
    whole = cv2.imencode(".png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))[1].tobytes()
    (root / "half.png").write_bytes(whole[: len(whole) // 2])
    holes = rng.random((40, 40, 3), dtype=np.float32)
    holes[7, 9, 2] = np.nan
    cv2.imwrite(str(root / "nan.tif"), holes)
    return {"fake.png": "not an image", "zero.png": "empty file", "half.png": "truncated or corrupt PNG",
            "nan.tif": "1 float sample NaN or infinite"}


def test_unreadable_files_are_warned_once_each_from_many_threads(tmp_path):
    """Reader threads that hit the same bad file at once warn about it once, naming its path and why."""
    import sys
    import threading

    bad = _bad_photo_folder(tmp_path)
    source = resolve_source(tmp_path)
    maker = _PatchMaker(source, GaussianBlur(), 16, 1, 3, augment=False, max_pixels=None)
    threads = 12
    barrier = threading.Barrier(threads)

    def work(t):
        for i in range(len(source)):
            barrier.wait()
            maker(np.int64(i), np.int64(t))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    finally:
        sys.setswitchinterval(interval)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == len(bad), messages
    for name, why in bad.items():
        assert sum(f"skipping unreadable training item: {tmp_path / name}: {why}" in m for m in messages) == 1
    assert sorted(maker.unreadable) == sorted(source.items.index(tmp_path / n) for n in bad)


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_fit_warns_once_per_unreadable_file(tmp_path, batch_size):
    from blurkit import Deblurrer

    bad = _bad_photo_folder(tmp_path)
    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1}, batch_size=batch_size, patch_size=16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d.fit(tmp_path, epochs=2, steps_per_epoch=3, validation_split=0, verbose=0)
    assert np.isfinite(d.history["loss"]).all(), d.history  # the NaN TIFF did not reach the model
    messages = [str(w.message) for w in caught if "skipping unreadable" in str(w.message)]
    assert len(messages) == len(bad), messages
    for name, why in bad.items():
        assert sum(f"{tmp_path / name}: {why}" in m for m in messages) == 1, name


def test_no_readable_item_is_an_error_before_the_pipeline_runs(tmp_path):
    bad = _bad_photo_folder(tmp_path, good=0)
    with pytest.raises(ValueError, match="none of the 4 training items can be read") as info, \
            pytest.warns(UserWarning, match="skipping unreadable training item"):
        make_dataset(resolve_source(tmp_path), GaussianBlur(), patch_size=16, batch_size=2)
    for name in sorted(bad)[:3]:  # the first three, by name, and how many more
        assert f"{tmp_path / name}: {bad[name]}" in str(info.value)
    assert str(info.value).endswith("; and 1 more")


def test_fit_with_no_readable_item_raises_the_value_error(tmp_path):
    from blurkit import Deblurrer

    (tmp_path / "zero.png").write_bytes(b"")
    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1}, batch_size=2, patch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"none of the 1 training items can be read: .*zero\.png: empty"):
            d.fit(tmp_path, epochs=1, steps_per_epoch=1, validation_split=0, verbose=0)


def test_readability_check_reads_only_up_to_the_first_good_item(tmp_path, monkeypatch):
    _bad_photo_folder(tmp_path)
    loads = []
    real = _PatchMaker._load
    monkeypatch.setattr(_PatchMaker, "_load", lambda self, i: loads.append(i) or real(self, i))
    source = resolve_source(tmp_path)  # fake.png, good0..5, half.png, nan.tif, zero.png
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_dataset(source, GaussianBlur(), patch_size=16, batch_size=2)
    assert loads == [0, 1]  # fake.png (warned once), then good0.png
    assert [str(w.message) for w in caught] == [f"skipping unreadable training item: {tmp_path / 'fake.png'}: "
                                               "not an image, or a format blurkit cannot read (supported: .jpg, "
                                               ".jpeg, .png, .bmp, .tif, .tiff, .webp, .heic, .heif), or corrupt"]

def test_pairs_stay_aligned_through_augmentation():
    sharp = np.random.default_rng(0).random((3, 40, 40, 3), dtype=np.float32)
    ds = make_dataset(resolve_source((sharp * 0.5, sharp)), patch_size=16, batch_size=6, patches_per_image=2)
    for b, s in ds.take(3):
        np.testing.assert_allclose(b.numpy(), s.numpy() * 0.5, atol=1e-6)


def test_unreadable_training_file_is_skipped_with_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / f"{i}.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    ds = make_dataset(resolve_source(tmp_path), GaussianBlur(), patch_size=16, batch_size=2,
                      patches_per_image=1, shuffle=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = [b.numpy() for b, _ in ds.take(4)]
    assert len(batches) == 4 and all(np.isfinite(b).all() for b in batches)
    assert any("bad.png" in str(w.message) for w in caught)


def test_fit_gives_the_plain_message_when_no_item_can_be_read(tmp_path):
    """The check runs untraced, before the datasets are built inside a flat_map: the ValueError is the
    one-line message, not AutoGraph's 'in user code:' traceback text around it."""
    from blurkit import Deblurrer

    train, val = tmp_path / "train", tmp_path / "val"
    write_image(train / "good.png", np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    val.mkdir()
    _bad_photo_folder(val, good=0)
    d = Deblurrer(model="unet", model_options={"width": 4, "depth": 1, "blocks": 1}, batch_size=4, patch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as info:
            d.fit(val, epochs=1, steps_per_epoch=1, validation_split=0, verbose=0)
        assert str(info.value).startswith("none of the 4 training items can be read: ")
        assert "\n" not in str(info.value)
        with pytest.raises(ValueError) as info:
            d.fit(train, validation=val, epochs=1, steps_per_epoch=1, verbose=0)
        assert str(info.value).startswith("none of the 4 validation items can be read: ")
        assert "\n" not in str(info.value)


def test_a_cached_image_is_opened_again_after_pythons_spurious_ast_error(tmp_path, monkeypatch):
    """CPython 3.11's syntax-tree builder shares state between threads: tf.data's reader threads opening
    cache files at once (NumPy parses a .npy header with ast.literal_eval) failed a CI run with
    "SystemError: AST constructor recursion depth mismatch" (gh-106905). Headers are parsed one thread at a
    time, and that error is retried once; any other SystemError is not."""
    from blurkit.data import pipeline

    path = tmp_path / "x.npy"
    np.save(path, np.arange(6, dtype=np.uint8).reshape(2, 3))
    real, calls = np.load, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=42, after=39)")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline.np, "load", flaky)
    assert pipeline._open_cached(path).tolist() == [[0, 1, 2], [3, 4, 5]] and len(calls) == 2

    def broken(*args, **kwargs):
        raise SystemError("something else")

    monkeypatch.setattr(pipeline.np, "load", broken)
    with pytest.raises(SystemError, match="something else"):
        pipeline._open_cached(path)
    assert not pipeline._NPY_HEADER_LOCK.locked()


# ---------------------------------------------------------------- mutation-audit pins (exact values)
def test_split_rounds_the_validation_share_to_the_nearest_item():
    """Pins that the validation share is ``round(n * fraction)`` items, not truncated.

    8 items at 20 % hold out 2 (1.6 rounds up), 9 at 30 % hold out 3 (2.7): truncating would hold out one
    item fewer, and a 20 % split of 8 would validate on a single photo.
    """
    assert len(split(8, 0.2, 0)[1]) == 2
    assert len(split(9, 0.3, 0)[1]) == 3
    assert len(split(10, 0.25, 0)[1]) == 2  # 2.5: round half to even, as Python's round


def test_augmentation_draws_all_eight_symmetries_of_the_square():
    """Pins that augmentation draws from all 8 symmetries of the square (rotations and flipped rotations).

    A 16 x 16 ramp (every pixel distinct) cut as 64 full-size patches with no blur shows each symmetry as a
    distinct patch: all 8 must appear, each a rotation of the image or of its mirror; drawing from the 4
    rotations only would never flip.
    """
    image = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    maker = _PatchMaker(resolve_source(image), GaussianBlur(sigma=0.0), 16, 64, 1, augment=True, max_pixels=None)
    blurred, sharp = maker(np.int64(0), np.int64(0))
    np.testing.assert_array_equal(blurred, sharp)  # sigma 0: the same symmetry on both
    x = image[0].astype(np.float32) / 255
    symmetries = {np.rot90(m, r).tobytes() for m in (x, x[:, ::-1]) for r in range(4)}
    seen = {patch[..., 0].tobytes() for patch in sharp}
    assert len(symmetries) == 8 and seen == symmetries


@pytest.mark.parametrize(("h", "w", "mode"), [(10, 12, "reflect"), (6, 7, "symmetric")])
def test_small_images_are_padded_at_the_bottom_and_right_by_mirroring(h, w, mode):
    """Pins how an image smaller than the patch is padded: at the bottom and right, by mirroring.

    A 10 x 12 image with patch 16 is padded by ``numpy.pad`` mode "reflect" (``dcb|abcd|cba``); one less
    than half the patch on a side (6 x 7) by "symmetric", which can pad beyond the image's own size.
    Repeating the edge pixels instead would train on flat smears.
    """
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (1, h, w), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 6 x 7 image is much smaller than the patch: said, not tested here
        maker = _PatchMaker(resolve_source(image), GaussianBlur(sigma=0.0), 16, 2, 1, augment=False,
                            max_pixels=None)
        _, sharp = maker(np.int64(0), np.int64(0))
    want = np.pad(image[0].astype(np.float32) / 255, ((0, 16 - h), (0, 16 - w)), mode=mode)
    for patch in sharp:
        np.testing.assert_array_equal(patch[..., 0], want)

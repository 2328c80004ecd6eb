"""Image I/O: listing, safe reading, atomic writing, dtype conversions (files made in tmp_path)."""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from blurkit.data import io as bio
from blurkit.data.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageReadError,
    atomic_write_bytes,
    atomic_write_text,
    from_float,
    is_image_path,
    list_images,
    read_image,
    to_float,
    write_image,
)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    """A 64x80 crop of the astronaut: small, colourful and asymmetric (orientation shows)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:164, 180:260])


@pytest.fixture(scope="module")
def gray() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.camera()[100:164, 180:260])


def _mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


# ---------------------------------------------------------------------------------------------- paths
def test_is_image_path():
    assert is_image_path("a.png") and is_image_path("PHOTO.JPG") and is_image_path(Path("x/y.TiFf"))
    assert is_image_path("z.webp") and is_image_path("z.jpeg") and is_image_path("z.bmp")
    assert not is_image_path("photo.png.txt")
    assert not is_image_path("png") and not is_image_path("a.gif") and not is_image_path("notes")
    assert is_image_path("IMG_0001.HEIC") and is_image_path("z.heif")  # read (with pillow-heif), not written
    assert set(bio.WRITE_EXTENSIONS) == {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
    assert set(IMAGE_EXTENSIONS) == set(bio.WRITE_EXTENSIONS) | {".heic", ".heif"}


def _touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_list_images_folder(tmp_path):
    for name in [
        "b.png",
        "A.JPG",
        "sub/c.tif",
        "sub/deep/d.webp",
        "x.png.txt",
        "notes.txt",
        ".hidden.png",
        ".git/e.png",
        "z.jpeg",
    ]:
        _touch(tmp_path / name)
    (tmp_path / "dir.png").mkdir()  # a folder named like an image
    _touch(tmp_path / "dir.png" / "inside.bmp")
    found = [p.relative_to(tmp_path).as_posix() for p in list_images(tmp_path)]
    assert found == ["A.JPG", "b.png", "dir.png/inside.bmp", "sub/c.tif", "sub/deep/d.webp", "z.jpeg"]
    assert found == [p.relative_to(tmp_path).as_posix() for p in list_images(str(tmp_path))]  # deterministic
    top = [p.name for p in list_images(tmp_path, recursive=False)]
    assert top == ["A.JPG", "b.png", "z.jpeg"]


def test_list_images_file_glob_and_list(tmp_path):
    a = _touch(tmp_path / "a.png")
    b = _touch(tmp_path / "sub" / "b.jpg")
    _touch(tmp_path / "sub" / "c.txt")
    assert list_images(a) == [a]
    assert list_images(str(tmp_path / "**" / "*.jpg")) == [b]
    assert list_images(str(tmp_path / "sub" / "*")) == [b]  # the .txt is filtered out
    assert list_images([a, tmp_path / "sub", a]) == [a, b]  # duplicates once, first-seen order
    with pytest.raises(ValueError, match="c.txt"):
        list_images(tmp_path / "sub" / "c.txt")
    with pytest.raises(FileNotFoundError, match="nothing"):
        list_images(str(tmp_path / "nothing*.png"))


def test_list_images_missing_and_empty(tmp_path):
    missing = tmp_path / "no such folder"
    with pytest.raises(FileNotFoundError, match="no such folder"):
        list_images(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    _touch(empty / "readme.txt")
    with pytest.raises(ValueError, match="empty"):
        list_images(empty)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_list_images_symlink_loop_and_broken_link(tmp_path):
    root = tmp_path / "root"
    _touch(root / "a" / "x.png")
    _touch(root / "y.png")
    try:
        os.symlink(root, root / "a" / "loop")  # a/loop -> root: a cycle
        os.symlink(root / "a", root / "a" / "self")  # a/self -> a
        os.symlink(root / "gone.png", root / "broken.png")  # dangling
        os.symlink(root / "a", root / "link_to_a")  # a second route to a real folder
    except OSError:
        pytest.skip("cannot create symlinks here")
    found = [p.relative_to(root).as_posix() for p in list_images(root)]
    assert found == ["a/x.png", "y.png"]


def test_list_images_non_ascii_and_uppercase(tmp_path, rgb):
    names = ["été photo 写真.png", "PHOTO.JPG", "Снимок 1.TIFF"]
    for name in names:
        write_image(tmp_path / name, rgb)
    assert sorted(p.name for p in list_images(tmp_path)) == sorted(names)
    for name in names:
        assert read_image(tmp_path / name).shape == rgb.shape


# ---------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(
    ("suffix", "tolerance"),
    [
        (".png", 0),
        (".bmp", 0),
        (".tif", 0),
        (".tiff", 0),
        (".jpg", 4),
        (".jpeg", 4),
        (".webp", 4),
        (".PNG", 0),
    ],
)
def test_round_trip_rgb(tmp_path, rgb, suffix, tolerance):
    path = tmp_path / f"img{suffix}"
    write_image(path, rgb)
    back = read_image(path)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    assert _mad(back, rgb) <= tolerance
    if tolerance == 0:
        np.testing.assert_array_equal(back, rgb)
    # channel order: compare with an independent decoder
    with Image.open(path) as im:
        assert _mad(back, np.asarray(im.convert("RGB"))) <= 2


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".jpg", ".webp"])
def test_round_trip_gray(tmp_path, gray, suffix):
    path = tmp_path / f"g{suffix}"
    write_image(path, gray)
    back = read_image(path)
    assert back.dtype == np.uint8
    if suffix == ".webp":  # WebP has no grayscale: it comes back as equal RGB channels
        assert back.shape in (gray.shape, (*gray.shape, 3))
        back = back if back.ndim == 2 else back[..., 0]
    assert back.shape == gray.shape
    assert _mad(back, gray) <= (0 if suffix in (".png", ".bmp", ".tif") else 4)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_round_trip_16_bit(tmp_path, suffix, channels):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65536, size=(20, 30, 3) if channels == 3 else (20, 30), dtype=np.uint16)
    path = tmp_path / f"deep{suffix}"
    write_image(path, image)
    back = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, image)


def test_16_bit_written_by_pillow_keeps_16_bits(tmp_path):
    image = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(image).save(tmp_path / "p.png")
    back = read_image(tmp_path / "p.png")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif"])
def test_rgba_drop_and_keep(tmp_path, rgb, suffix):
    alpha = np.tile(np.linspace(0, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    rgba = np.dstack([rgb, alpha])
    path = tmp_path / f"a{suffix}"
    write_image(path, rgba, quality=100)
    dropped = read_image(path)
    kept = read_image(path, alpha="keep")
    assert dropped.shape == rgb.shape and kept.shape == rgba.shape
    tol = 0 if suffix != ".webp" else 4
    assert _mad(dropped, rgb) <= tol and _mad(kept, rgba) <= tol
    np.testing.assert_array_equal(kept[..., :3], dropped)
    with pytest.raises(ValueError, match="alpha"):
        read_image(path, alpha="blend")


def test_rgb_without_alpha_ignores_keep(tmp_path, rgb):
    write_image(tmp_path / "a.png", rgb)
    back = read_image(tmp_path / "a.png", alpha="keep")
    assert back.shape == rgb.shape and back.dtype == rgb.dtype
    np.testing.assert_array_equal(back, rgb)  # PNG is lossless


def test_palette_png(tmp_path, rgb):
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    back = read_image(tmp_path / "p.png")
    assert back.shape == rgb.shape and back.dtype == np.uint8
    np.testing.assert_array_equal(back, np.asarray(pal.convert("RGB")))
    pal.save(tmp_path / "pt.png", transparency=0)
    kept = read_image(tmp_path / "pt.png", alpha="keep")
    assert kept.shape == (*rgb.shape[:2], 4)
    with Image.open(tmp_path / "pt.png") as im:
        np.testing.assert_array_equal(kept, np.asarray(im.convert("RGBA")))
    assert (kept[..., 3] == 0).any() and (kept[..., 3] == 255).any()
    assert read_image(tmp_path / "pt.png").shape == rgb.shape


def test_grey_alpha_and_bilevel(tmp_path, gray):
    la = Image.fromarray(np.dstack([gray, np.full_like(gray, 128)]), mode="LA")
    la.save(tmp_path / "la.png")
    dropped = read_image(tmp_path / "la.png")
    assert dropped.shape == gray.shape
    np.testing.assert_array_equal(dropped, gray)
    kept = read_image(tmp_path / "la.png", alpha="keep")
    assert kept.shape == (*gray.shape, 2) and (kept[..., 1] == 128).all()  # grey stays grey (was RGBA)
    np.testing.assert_array_equal(kept[..., 0], gray)
    Image.fromarray(gray > 100).save(tmp_path / "bw.png")
    bw = read_image(tmp_path / "bw.png")
    assert bw.shape == gray.shape and set(np.unique(bw)) <= {0, 255}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_alpha_png_round_trip(tmp_path, dtype):
    """(H, W, 2) arrays are written as grey + alpha PNGs (colour type 4) and read back as they were, at 8
    and 16 bits; the file is told from its header, not from equal channels (an RGBA PNG of grey pixels
    stays RGBA)."""
    top = np.iinfo(dtype).max
    la = np.random.default_rng(1).integers(0, top + 1, (9, 13, 2)).astype(dtype)
    la[0, 0], la[-1, -1] = (0, top), (top, 0)
    path = tmp_path / "la.png"
    write_image(path, la)
    data = path.read_bytes()
    assert data[24:26] == bytes([8 * np.dtype(dtype).itemsize, 4])  # IHDR bit depth, colour type 4
    np.testing.assert_array_equal(read_image(path, alpha="keep"), la)
    np.testing.assert_array_equal(read_image(path), la[..., 0])
    other = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # another decoder reads the same file
    assert other.dtype == dtype and other.shape == (9, 13, 4)
    np.testing.assert_array_equal(other[..., [0, 3]], la)
    if dtype == np.uint8:
        np.testing.assert_array_equal(np.asarray(Image.open(path)), la)
    grey_rgba = np.dstack([la[..., 0]] * 3 + [la[..., 1]])
    write_image(tmp_path / "rgba.png", grey_rgba)
    assert read_image(tmp_path / "rgba.png", alpha="keep").shape == (9, 13, 4)


def test_grey_png_with_a_transparent_level_keeps_its_alpha(tmp_path, gray):
    # OpenCV ignores a grey PNG's tRNS chunk: its transparency used to be lost.
    deep = gray.astype(np.uint16) * 257
    bits = gray > 128
    cases = {  # name: (grey samples as decoded, transparent level as decoded, the level as stored)
        "g8.png": (gray, gray[0, 0], gray[0, 0]),
        "g16.png": (deep, deep[5, 5], deep[5, 5]),
        "g1.png": (bits.astype(np.uint8) * 255, 255, 1),  # 1-bit samples are read as 0 or 255
    }
    for name, (grey, key, stored) in cases.items():
        Image.fromarray(bits if name == "g1.png" else grey).save(tmp_path / name, transparency=int(stored))
        top = np.iinfo(grey.dtype).max
        back = read_image(tmp_path / name, alpha="keep")
        assert back.shape == (*gray.shape, 2) and back.dtype == grey.dtype, name
        np.testing.assert_array_equal(back[..., 0], grey, err_msg=name)
        np.testing.assert_array_equal(back[..., 1], np.where(grey == key, 0, top), err_msg=name)
        assert 0 < (back[..., 1] == 0).sum() < grey.size, name
        np.testing.assert_array_equal(read_image(tmp_path / name), grey, err_msg=name)  # alpha dropped
    Image.fromarray(np.dstack([gray] * 3)).save(tmp_path / "rgb.png", transparency=(0, 0, 0))  # as RGB gives
    assert read_image(tmp_path / "rgb.png", alpha="keep").shape == (*gray.shape, 4)


def test_grey_alpha_in_other_formats(tmp_path):
    la = np.dstack([np.arange(40, dtype=np.uint8).reshape(5, 8) * 6, np.full((5, 8), 77, np.uint8)])
    write_image(tmp_path / "la.jpg", la, quality=100)  # JPEG has no alpha: grey
    assert read_image(tmp_path / "la.jpg", alpha="keep").shape == (5, 8)
    for suffix in (".bmp", ".tif", ".webp"):  # OpenCV writes 1, 3 or 4 channels: RGBA of equal colours
        write_image(tmp_path / f"la{suffix}", la)
        back = read_image(tmp_path / f"la{suffix}", alpha="keep")
        assert back.shape == (5, 8, 4), suffix
        assert _mad(back, la[..., [0, 0, 0, 1]]) <= (3 if suffix == ".webp" else 0), suffix  # WebP is lossy


def test_cmyk_jpeg_and_tiff(tmp_path, rgb):
    for suffix in (".jpg", ".tif"):
        Image.fromarray(rgb).convert("CMYK").save(tmp_path / f"c{suffix}")
        back = read_image(tmp_path / f"c{suffix}")
        assert back.shape == rgb.shape and back.dtype == np.uint8
        assert _mad(back, rgb) < 4, suffix


def test_float_tiff_stays_float32(tmp_path, gray, rgb, recwarn):
    grey = gray.astype(np.float32) / 255.0
    Image.fromarray(grey, mode="F").save(tmp_path / "f.tif")  # decoded by Pillow
    back = read_image(tmp_path / "f.tif")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, grey)
    colour = rgb.astype(np.float32) / 255.0
    cv2.imwrite(str(tmp_path / "c.tif"), colour[:, :, ::-1])  # decoded by OpenCV
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif"), colour)
    assert not recwarn.list  # within [0, 1]: no warning


def test_float_tiff_outside_unit_range_is_kept_with_a_warning(tmp_path, rgb):
    linear = rgb.astype(np.float32) / 64.0  # linear / HDR data: up to about 4
    cv2.imwrite(str(tmp_path / "hdr.tif"), linear[:, :, ::-1])
    with pytest.warns(UserWarning, match=r"hdr\.tif: float samples outside \[0, 1\] .*kept as stored"):
        back = read_image(tmp_path / "hdr.tif")
    assert back.dtype == np.float32 and back.max() > 1
    np.testing.assert_array_equal(back, linear)


def test_a_float_image_with_nan_or_infinite_samples_is_refused_naming_the_file(tmp_path, rgb):
    """One NaN in a training TIFF made every loss and weight of a run NaN, with only the "outside [0, 1]"
    warning to show for it; make-pairs stopped at it ("cannot write an image containing NaN", no file named).
    Nothing can be blurred, restored or scored with such samples: reading refuses the file, so every caller
    skips it as an unreadable file, by name."""
    image = rgb.astype(np.float32) / 255.0
    image[2, 3, 1] = np.nan
    image[4, 5, :] = np.inf
    cv2.imwrite(str(tmp_path / "holes.tif"), image[:, :, ::-1])
    with pytest.raises(ImageReadError, match=r"holes\.tif: 4 float samples NaN or infinite; blurkit needs finite "
                                             r"values in \[0, 1\]") as info:
        read_image(tmp_path / "holes.tif")
    assert info.value.path == str(tmp_path / "holes.tif")
    image[4, 5, :] = 0.5
    cv2.imwrite(str(tmp_path / "one.tif"), image[:, :, ::-1])
    with pytest.raises(ImageReadError, match=r"1 float sample NaN or infinite"):
        read_image(tmp_path / "one.tif")


def test_float32_written_to_tiff_stays_float32(tmp_path, rgb):
    linear = rgb.astype(np.float32) / 64.0
    write_image(tmp_path / "f.tiff", linear)
    stored = cv2.imread(str(tmp_path / "f.tiff"), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.float32
    np.testing.assert_array_equal(stored[:, :, ::-1], linear)  # not clipped to [0, 1]
    write_image(tmp_path / "g.tif", linear[..., 0] / 4)
    assert cv2.imread(str(tmp_path / "g.tif"), cv2.IMREAD_UNCHANGED).dtype == np.float32
    write_image(tmp_path / "f16.tif", linear / 4, bits=16)  # asked for 16 bits
    assert read_image(tmp_path / "f16.tif").dtype == np.uint16
    write_image(tmp_path / "f.png", linear / 4)  # PNG holds no floats
    assert read_image(tmp_path / "f.png").dtype == np.uint8
    # float64 (scikit-image's results) and float16 are floats too: float32 in TIFF, not 8 bits as before
    for dtype in (np.float64, np.float16):
        unit = (linear / 4).astype(dtype)
        write_image(tmp_path / "f.tif", unit)
        np.testing.assert_array_equal(read_image(tmp_path / "f.tif"), unit.astype(np.float32))
    # a float TIFF keeps values as they are: an infinite one is refused, naming the file (read_image refuses it)
    linear[1, 2, 0] = np.inf
    with pytest.raises(ValueError, match=r"cannot write inf\.tif: the image contains infinite values"):
        write_image(tmp_path / "inf.tif", linear)
    with pytest.raises(ValueError, match=r"cannot write inf\.png: float samples far outside .*max inf"):
        write_image(tmp_path / "inf.png", linear)  # 8 bits: far outside [0, 1] (see test_write_dtypes)
    assert not (tmp_path / "inf.tif").exists() and not (tmp_path / "inf.png").exists()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(tmp_path, rgb, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rot.jpg"
    Image.fromarray(rgb).save(path, "JPEG", exif=exif, quality=100, subsampling=0)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    back = read_image(path)
    assert back.shape == expected.shape
    assert _mad(back, expected) < 2
    if orientation in (5, 6, 7, 8):
        assert back.shape[:2] == rgb.shape[1::-1]


# How a viewer shows stored pixels for each EXIF/TIFF orientation (checked against Pillow's exif_transpose).
_UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def test_an_xmp_orientation_alone_is_not_applied(tmp_path, rgb):
    """Pillow's ``getexif()`` takes an XMP ``tiff:Orientation`` when EXIF has none; browsers and OpenCV do not,
    so such a photo was read turned a quarter from how viewers show it, and its output, written upright
    without the XMP, showed turned. EXIF alone decides; with both, EXIF's wins as before."""
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF>'
           b'</x:xmpmeta>')
    path = tmp_path / "xmp.jpg"
    Image.fromarray(rgb).save(path, "JPEG", xmp=xmp, quality=100, subsampling=0)
    with Image.open(path) as im:
        assert im.getexif().get(0x0112) == 6  # what Pillow reports, from the XMP
    assert read_image(path).shape == rgb.shape  # as stored, as viewers show it
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.fromarray(rgb).save(path, "JPEG", xmp=xmp, exif=exif, quality=100, subsampling=0)
    assert _mad(read_image(path), _UPRIGHT[8](rgb)) < 2


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_is_applied_once(tmp_path, rgb, orientation):
    # Both decoders turn a TIFF upright themselves; the tag used to be applied a second time.
    tifffile = pytest.importorskip("tifffile")
    tag = [(0x0112, "H", 1, orientation, True)]
    exif = Image.Exif()
    exif[0x0112] = orientation
    reference = Image.fromarray(rgb)
    reference.getexif()[0x0112] = orientation
    assert np.array_equal(np.asarray(ImageOps.exif_transpose(reference)), _UPRIGHT[orientation](rgb))
    deep = rgb.astype(np.uint16) * 257
    grey = rgb[..., 1].astype(np.float32) / 255
    linear = deep / np.float32(65535)
    cases = {  # name: (stored array, how it is written)
        "pil8.tif": (rgb, lambda p: Image.fromarray(rgb).save(p, exif=exif)),
        "tiled8.tif": (rgb, lambda p: tifffile.imwrite(p, rgb, photometric="rgb", extratags=tag, tile=(32, 32))),
        "grey8.tif": (rgb[..., 0], lambda p: tifffile.imwrite(p, rgb[..., 0], extratags=tag, tile=(32, 32))),
        "deep16.tif": (deep, lambda p: tifffile.imwrite(p, deep, photometric="rgb", extratags=tag)),
        "tiled16.tif": (deep, lambda p: tifffile.imwrite(p, deep, photometric="rgb", extratags=tag, tile=(32, 32))),
        "float.tif": (grey, lambda p: Image.fromarray(grey, mode="F").save(p, exif=exif)),
        "rgbf.tif": (linear, lambda p: tifffile.imwrite(p, linear, photometric="rgb", extratags=tag)),
    }
    for name, (stored, write) in cases.items():
        write(tmp_path / name)
        back = read_image(tmp_path / name)
        expected = _UPRIGHT[orientation](stored)
        assert back.dtype == stored.dtype and back.shape == expected.shape, name
        np.testing.assert_array_equal(back, expected, err_msg=name)
    if orientation in (5, 6, 7, 8):
        assert back.shape[:2] == rgb.shape[1::-1]
    written = tmp_path / "out.tif"
    write_image(written, read_image(tmp_path / "pil8.tif"))
    with Image.open(written) as im:  # the output is upright: no tag that would make a viewer turn it again
        assert im.getexif().get(0x0112, 1) == 1


def test_files_with_several_frames_warn_that_the_first_is_read(tmp_path, rgb, recwarn):
    # Pages and animation frames after the first used to be dropped without a word.
    first, second = Image.fromarray(rgb), Image.fromarray(rgb[::-1].copy())
    for name, options in [("pages.tif", {}), ("anim.gif", {}), ("anim.webp", {"lossless": True})]:
        first.save(tmp_path / name, save_all=True, append_images=[second], **options)
        path = re.escape(str(tmp_path / name))  # named as given
        with pytest.warns(UserWarning, match=rf"^{path}: has 2 frames; blurkit restores the first only$"):
            back = read_image(tmp_path / name)
        assert back.shape == rgb.shape, name
        if name != "anim.gif":  # GIF's palette is lossy
            np.testing.assert_array_equal(back, rgb, err_msg=name)
    recwarn.clear()
    first.save(tmp_path / "one.tif")
    first.save(tmp_path / "one.webp", lossless=True)
    read_image(tmp_path / "one.tif")
    read_image(tmp_path / "one.webp")
    assert not recwarn.list  # one frame: no warning


def test_non_ascii_and_spaces_in_folder(tmp_path, rgb):
    path = tmp_path / "dossier été" / "日本 語" / "image finale.png"
    write_image(path, rgb)
    np.testing.assert_array_equal(read_image(path), rgb)
    np.testing.assert_array_equal(read_image(str(path)), rgb)


# ---------------------------------------------------------------------------------------------- bad files
def test_zero_byte_file(tmp_path):
    path = _touch(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match=r"empty\.png.*empty file"):
        read_image(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_truncated_files(tmp_path, rgb, suffix):
    ok, encoded = cv2.imencode(suffix, rgb)
    data = encoded.tobytes()
    path = _touch(tmp_path / f"cut{suffix}", data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match=rf"cut\{suffix}: .*(truncated|corrupt)"):
        read_image(path)


def test_jpeg_missing_end_marker(tmp_path, rgb):
    ok, encoded = cv2.imencode(".jpg", rgb)
    path = _touch(tmp_path / "noeoi.jpg", encoded.tobytes()[:-2])  # only the end-of-image marker cut
    with pytest.raises(ImageReadError, match="truncated"):
        read_image(path)


@pytest.mark.parametrize(
    "params",
    [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 4]],
    ids=["baseline", "progressive", "restart-markers"],
)
def test_jpeg_with_data_after_its_end_is_read(tmp_path, rgb, params):
    # A Motion Photo is a JPEG with a video after its end-of-image marker; stray FF DA / FF D9 pairs in the
    # video used to make it look truncated.
    ok, encoded = cv2.imencode(".jpg", rgb[:, :, ::-1], params)
    jpeg = encoded.tobytes()
    plain = read_image(_touch(tmp_path / "plain.jpg", jpeg))
    for seed in range(6):
        tail = np.random.default_rng(seed).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
        assert b"\xff\xda" in tail and b"\xff\xd9" in tail
        if seed % 2:  # the last marker pair in the file says "scan, then no end": the old test's worst case
            tail += b"\xff\xda\x00\x08"
        motion = _touch(tmp_path / f"motion{seed}.jpg", jpeg + tail)
        np.testing.assert_array_equal(read_image(motion), plain)
    for cut in (len(jpeg) - 2, len(jpeg) * 2 // 3):  # a JPEG that really lacks its end is still refused
        with pytest.raises(ImageReadError, match=r"cut\.jpg: truncated or corrupt JPEG"):
            read_image(_touch(tmp_path / "cut.jpg", jpeg[:cut]))
    app0 = 4 + int.from_bytes(jpeg[4:6], "big")  # a stray FF 00 after the first segment: libjpeg skips it
    stray = _touch(tmp_path / "stray.jpg", jpeg[:app0] + b"\xff\x00" + jpeg[app0:])
    np.testing.assert_array_equal(read_image(stray), plain)


@pytest.mark.parametrize("data", [b"a", b"ab", b"abc", b"\x89PN", b"BM", b"II*"])
def test_files_of_a_few_bytes_are_not_images(tmp_path, data):
    # Pillow's BMP plugin unpacks 4 bytes from the file's start to recognise it: a struct.error used to escape.
    path = _touch(tmp_path / "tiny.png", data)
    with pytest.raises(ImageReadError, match=r"tiny\.png: (not an image|truncated or corrupt)"):
        read_image(path)
    from blurkit.data.metadata import Metadata, read_metadata

    assert read_metadata(path) == Metadata()


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageReadError, match=r"notes\.jpg: not an image"):
        read_image(path)
    assert issubclass(ImageReadError, ValueError)


def test_read_errors_name_the_file_as_given_and_say_why_apart(tmp_path, monkeypatch):
    """``path`` and ``reason`` are the two halves of the message (callers listing files beside their
    reasons used to cut the name off the text), and the error survives pickling (a worker process's)."""
    import pickle

    (tmp_path / "sub").mkdir()
    _touch(tmp_path / "sub" / "notes.jpg", b"not a picture")
    monkeypatch.chdir(tmp_path)
    for given in ("sub/notes.jpg", Path("sub/notes.jpg"), tmp_path / "sub" / "notes.jpg"):
        with pytest.raises(ImageReadError) as info:
            read_image(given)
        exc = info.value
        assert exc.path == os.fspath(given) and exc.reason.startswith("not an image, or a format")
        assert str(exc) == f"{os.fspath(given)}: {exc.reason}"
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is ImageReadError and (back.path, back.reason, str(back)) == (exc.path, exc.reason, str(exc))
    old = ImageReadError("a.png: bad")  # one argument, as raisers wrote it before: the whole message
    back = pickle.loads(pickle.dumps(old))
    assert (old.path, old.reason, str(old)) == (back.path, back.reason, str(back)) == (None, "a.png: bad", "a.png: bad")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "nope.png")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(IsADirectoryError, match="d.png"):
        read_image(tmp_path / "d.png")


def _png_bomb(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR claims width x height (CRC fixed up)."""
    ok, encoded = cv2.imencode(".png", np.zeros((8, 8), np.uint8))
    data = bytearray(encoded.tobytes())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_decompression_bomb_refused_before_decoding(tmp_path, monkeypatch):
    path = _touch(tmp_path / "bomb.png", _png_bomb(60000, 60000))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a decompression bomb")

    monkeypatch.setattr(bio.cv2, "imdecode", no_decoding)
    with pytest.raises(ImageReadError, match=r"bomb\.png: .*3,600,000,000 pixels.*max_pixels=178,956,970"):
        read_image(path)
    # a bomb under Pillow's own limit, above ours
    path2 = _touch(tmp_path / "bomb2.png", _png_bomb(12000, 10000))
    with pytest.raises(ImageReadError, match=r"12000x10000 .*max_pixels=1,000,000.*max_pixels=None"):
        read_image(path2, max_pixels=1_000_000)
    assert DEFAULT_MAX_PIXELS == 178_956_970


def test_max_pixels(tmp_path, rgb):
    write_image(tmp_path / "a.png", rgb)
    with pytest.raises(ImageReadError, match="max_pixels=100"):
        read_image(tmp_path / "a.png", max_pixels=100)
    assert read_image(tmp_path / "a.png", max_pixels=rgb.shape[0] * rgb.shape[1]).shape == rgb.shape
    assert read_image(tmp_path / "a.png", max_pixels=None).shape == rgb.shape
    with pytest.raises(ValueError, match="max_pixels"):
        read_image(tmp_path / "a.png", max_pixels=0)


def test_opencv_fallback_when_pillow_cannot_open(tmp_path, rgb, monkeypatch):
    from PIL import UnidentifiedImageError

    write_image(tmp_path / "a.png", rgb)

    def cannot_open(*args, **kwargs):
        raise UnidentifiedImageError("nope")

    monkeypatch.setattr(Image, "open", cannot_open)
    monkeypatch.setattr(bio, "_open_pil", cannot_open)  # what read_image opens headers with
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb)
    with pytest.raises(ImageReadError, match="max_pixels=10"):  # still checked, after decoding
        read_image(tmp_path / "a.png", max_pixels=10)


# ---------------------------------------------------------------------------------------------- writing
def test_write_creates_folders_and_leaves_no_temp(tmp_path, rgb):
    target = tmp_path / "a" / "b" / "c.png"
    write_image(target, rgb)
    write_image(target, rgb[::-1])  # overwrite
    np.testing.assert_array_equal(read_image(target), rgb[::-1])
    assert [p.name for p in target.parent.iterdir()] == ["c.png"]
    assert _no_temp_files(tmp_path)
    mask = os.umask(0)
    os.umask(mask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_write_failure_keeps_old_file(tmp_path, rgb, monkeypatch):
    target = tmp_path / "keep.png"
    write_image(target, rgb)
    before = target.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(bio.os, "replace", crash)
    with pytest.raises(OSError, match="disk on fire"):
        write_image(target, np.zeros_like(rgb))
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_write_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    def crash(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(bio.os, "fsync", crash)
    with pytest.raises(OSError, match="fsync failed"):
        atomic_write_bytes(tmp_path / "x.bin", b"0" * 100_000)
    assert list(tmp_path.iterdir()) == []


def _refuse_temp_files(dir=None, prefix="", suffix=""):
    """What ``tempfile.mkstemp`` raises in a folder the user may not write to."""
    raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}nz2w6k4u{suffix}"))


def test_write_errors_name_the_target_not_the_temporary_file(tmp_path, rgb, monkeypatch):
    target = tmp_path / "x.png"
    monkeypatch.setattr(bio.tempfile, "mkstemp", _refuse_temp_files)
    with pytest.raises(PermissionError) as caught:
        write_image(target, rgb)
    assert str(caught.value) == f"[Errno 13] Permission denied: '{target}'"
    assert ".tmp" in str(caught.value.__cause__)  # the original error is kept as the cause
    monkeypatch.undo()

    def cross_device(src, dst):
        raise OSError(18, "Invalid cross-device link", str(src), None, str(dst))

    monkeypatch.setattr(bio.os, "replace", cross_device)
    with pytest.raises(OSError, match=r"^\[Errno 18\] Invalid cross-device link: '[^']*x\.png'$"):
        write_image(target, rgb)
    monkeypatch.undo()

    def io_error(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(bio.os, "fsync", io_error)
    with pytest.raises(OSError, match=r"^\[Errno 5\] Input/output error: '[^']*notes\.txt'$"):
        atomic_write_text(tmp_path / "notes.txt", "x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_errors_raised_inside_an_atomic_block_are_left_alone(tmp_path):
    with pytest.raises(FileNotFoundError) as caught:
        with bio.atomic_open(tmp_path / "out.txt", "w"):
            open(tmp_path / "other.txt")  # noqa: SIM115 - an error about another file
    assert caught.value.filename == str(tmp_path / "other.txt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a folder this user cannot write")
def test_read_only_folder_error_names_the_target(tmp_path, rgb):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match=r"locked/x\.png'$"):
            write_image(folder / "x.png", rgb)
    finally:
        folder.chmod(0o755)


def test_write_rejects_bad_input(tmp_path, rgb):
    with pytest.raises(ValueError, match=r"unknown image suffix '\.gif'"):
        write_image(tmp_path / "a.gif", rgb)
    with pytest.raises(ValueError, match="suffix"):
        write_image(tmp_path / "noext", rgb)
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="int64"):
        write_image(tmp_path / "a.png", np.zeros((4, 4), np.int64))
    with pytest.raises(ValueError, match=r"cannot write a\.png: the image contains NaN"):
        write_image(tmp_path / "a.png", np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="16 bits"):
        write_image(tmp_path / "a.jpg", np.zeros((4, 4)), bits=16)
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "a.jpg", rgb, quality=0)
    assert list(tmp_path.iterdir()) == []


def test_write_dtypes(tmp_path):
    ramp = np.linspace(0, 1, 256 * 3).reshape(3, 256)
    write_image(tmp_path / "f8.png", ramp)
    np.testing.assert_array_equal(read_image(tmp_path / "f8.png"), from_float(ramp, np.uint8))
    write_image(tmp_path / "f16.png", ramp, bits=16)
    back16 = read_image(tmp_path / "f16.png")
    assert back16.dtype == np.uint16
    np.testing.assert_array_equal(back16, from_float(ramp, np.uint16))
    write_image(tmp_path / "clip.png", np.array([[-0.4, 0.5, 1.4]]))  # a restoration's overshoot: clipped
    np.testing.assert_array_equal(read_image(tmp_path / "clip.png"), [[0, 128, 255]])
    # a [0, 255] float image (what predict returns for one) was written white, silently; refused, named
    with pytest.raises(ValueError, match=r"cannot write white\.png: float samples far outside \[0, 1\] "
                                         r"\(min 0, max 255\)"):
        write_image(tmp_path / "white.png", np.array([[0.0, 128.0, 255.0]], np.float32))
    with pytest.raises(ValueError, match=r"\(min -0\.6, max 0\.5\)"):
        write_image(tmp_path / "white.jpg", np.array([[-0.6, 0.5]]), bits=8)
    assert not (tmp_path / "white.png").exists()
    write_image(tmp_path / "hdr.tif", np.array([[0.0, 128.0, 255.0]], np.float32))  # a float TIFF keeps them
    assert read_image(tmp_path / "hdr.tif", max_pixels=None).max() == 255.0
    deep = np.array([[0, 257, 65535]], np.uint16)
    write_image(tmp_path / "d.jpg", np.repeat(deep, 8, axis=0), quality=100)  # 8-bit format: scaled down
    assert read_image(tmp_path / "d.jpg").dtype == np.uint8
    write_image(tmp_path / "d8.png", deep, bits=8)
    np.testing.assert_array_equal(read_image(tmp_path / "d8.png"), [[0, 1, 255]])
    write_image(tmp_path / "one.png", np.zeros((4, 5, 1), np.uint8))
    assert read_image(tmp_path / "one.png").shape == (4, 5)
    write_image(tmp_path / "rgba.jpg", np.zeros((4, 5, 4), np.uint8))  # alpha dropped for JPEG
    assert read_image(tmp_path / "rgba.jpg").shape == (4, 5, 3)


def test_atomic_text_and_bytes(tmp_path):
    atomic_write_text(tmp_path / "m" / "card.json", "{}\r\nünï\n")
    assert (tmp_path / "m" / "card.json").read_bytes() == "{}\r\nünï\n".encode()
    atomic_write_bytes(tmp_path / "m" / "card.json", b"new")
    assert (tmp_path / "m" / "card.json").read_bytes() == b"new"
    assert _no_temp_files(tmp_path)


# ---------------------------------------------------------------------------------------------- conversions
def test_to_float_and_back():
    u8 = np.arange(256, dtype=np.uint8)
    f = to_float(u8)
    assert f.dtype == np.float32 and f[0] == 0 and f[-1] == 1
    np.testing.assert_array_equal(from_float(f, np.uint8), u8)
    u16 = np.array([0, 1, 257, 65534, 65535], np.uint16)
    np.testing.assert_array_equal(from_float(to_float(u16), u16), u16)  # like an array
    x = np.array([0.25, 2.0], np.float64)
    assert to_float(x).dtype == np.float32 and to_float(x)[1] == 2.0  # floats unchanged
    np.testing.assert_array_equal(from_float(np.array([np.nan, -3, 0.5, 9]), np.uint8), [0, 0, 128, 255])
    assert from_float(np.array([0.5]), np.float32).dtype == np.float32
    with pytest.raises(ValueError):
        to_float(np.array([1], np.int32))
    with pytest.raises(ValueError):
        from_float(np.array([0.5]), np.int32)


def test_pillow_warning_not_leaked(tmp_path, recwarn):
    # Pillow warns above half its limit; read_image applies its own limit instead.
    path = _touch(tmp_path / "big.png", _png_bomb(10000, 10000))
    with pytest.raises(ImageReadError):
        read_image(path, max_pixels=50_000_000)
    assert not [w for w in recwarn if issubclass(w.category, Image.DecompressionBombWarning)]



def test_reading_in_threads_leaves_the_warnings_state_alone(tmp_path, rgb):
    """Readers in other threads never swap the process-wide warnings filters: no warning is lost meanwhile."""
    import sys
    import threading
    import warnings

    write_image(tmp_path / "a.png", rgb)
    _touch(tmp_path / "big.png", _png_bomb(10000, 10000))  # Pillow would warn about this one
    def read():
        for _ in range(40):
            read_image(tmp_path / "a.png")
            with pytest.raises(ImageReadError):
                read_image(tmp_path / "big.png", max_pixels=50_000_000)

    readers = [threading.Thread(target=read) for _ in range(4)]
    sent = 0
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so reads and warnings interleave
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            filters = list(warnings.filters)
            for t in readers:
                t.start()
            while any(t.is_alive() for t in readers):
                warnings.warn(f"main thread warning {sent}", stacklevel=1)
                sent += 1
            for t in readers:
                t.join()
            assert warnings.filters == filters
    finally:
        sys.setswitchinterval(interval)
    assert [str(w.message) for w in caught] == [f"main thread warning {i}" for i in range(sent)]

def test_image_bytes_via_pillow_roundtrip(tmp_path, rgb):
    """Files written by write_image open in Pillow with the same pixels (RGB order, not BGR)."""
    write_image(tmp_path / "a.png", rgb)
    with Image.open(io.BytesIO((tmp_path / "a.png").read_bytes())) as im:
        np.testing.assert_array_equal(np.asarray(im), rgb)


def test_atomic_writes_list_a_folder_once(tmp_path, monkeypatch):
    """Thousands of outputs in one folder: the stale-temporary-file check lists it once, not per write."""
    import os as _os

    from blurkit.data import io as bio

    calls = []
    real = _os.listdir
    monkeypatch.setattr(bio.os, "listdir", lambda p=".": calls.append(str(p)) or real(p))
    stale = tmp_path / ".img7.png.abcd1234.tmp"  # left by a killed write of an earlier process
    stale.write_bytes(b"partial")
    _os.utime(stale, (1, 1))
    img = np.zeros((4, 5, 3), np.uint8)
    for i in range(20):
        bio.write_image(tmp_path / f"img{i}.png", img)
    assert calls.count(str(tmp_path)) == 1
    assert not stale.exists() and len(list(tmp_path.glob("img*.png"))) == 20


def test_a_file_where_a_folder_must_be_is_named(tmp_path):
    """Every atomic write (images, JSON, figures) names the file standing where its folder must be."""
    from blurkit.data.io import atomic_write_text

    (tmp_path / "notes").write_text("x")
    for target in (tmp_path / "notes" / "a.json", tmp_path / "notes" / "sub" / "a.json"):
        with pytest.raises(NotADirectoryError, match=r"cannot write .*a\.json: .*notes is a file, not a folder"):
            atomic_write_text(target, "{}")
    with pytest.raises(NotADirectoryError, match="notes is a file"):
        write_image(tmp_path / "notes" / "x.png", np.zeros((4, 4), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


# ---------------------------------------------------------------------------------------------- HEIC
def _heic(path: Path, image: np.ndarray, **info) -> Path:
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, "HEIF", quality=95, **info)
    return path


def test_heic_photos_are_read_upright_with_their_metadata(tmp_path, rgb):
    """An iPhone-like HEIC: the rotation the file asks for applied (orientation 6 here), profile and EXIF kept."""
    from PIL import ImageCms

    from blurkit.data.metadata import read_metadata

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Apple", 6
    path = _heic(tmp_path / "IMG_0001.HEIC", rgb, exif=exif.tobytes(), icc_profile=srgb)
    assert list_images(tmp_path) == [path]
    image = read_image(path)
    assert image.shape == (rgb.shape[1], rgb.shape[0], 3) and image.dtype == np.uint8
    assert _mad(image, np.rot90(rgb, -1)) < 3  # turned once, clockwise, as orientation 6 says (lossy)
    meta = read_metadata(path)
    assert meta.icc_profile == srgb
    back = Image.Exif()
    back.load(meta.exif)
    assert back[0x010F] == "Apple" and back[0x0112] == 1
    with pytest.raises(ValueError, match="cannot write x.heic"):  # read only
        write_image(tmp_path / "x.heic", rgb)


def test_heic_without_pillow_heif_says_what_to_install(tmp_path, rgb, monkeypatch):
    path = _heic(tmp_path / "a.heic", rgb)
    monkeypatch.setattr(bio, "_register_heif", lambda: False)
    from PIL import Image as PILImage

    for fmt in [f for f in PILImage.ID if "HEI" in f or "AVIF" in f]:  # as if the plugin had never loaded
        monkeypatch.delitem(PILImage.OPEN, fmt, raising=False)
        monkeypatch.setattr(PILImage, "ID", [f for f in PILImage.ID if f != fmt])
    with pytest.raises(ImageReadError, match=r'a.heic: reading HEIC/HEIF photos needs pillow-heif: pip install "blurkit\[heif\]"'):
        read_image(path)


def test_a_sub_folder_that_cannot_be_listed_is_left_out_with_a_warning(tmp_path, monkeypatch):
    """A folder without read permission (or a network file system's I/O error) dropped its photos silently from
    every command; now a warning names it. The folder given itself raises the error (it said "no images")."""
    from blurkit.data import io as bio

    for name in ("a/x.png", "b/y.png", "z.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_image(tmp_path / name, np.zeros((4, 4), np.uint8))
    scandir = os.scandir

    def refuse_b(path):
        if os.path.basename(os.fspath(path)) == "b":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse_b)
    with pytest.warns(UserWarning, match=r"cannot list folder .*b \(Permission denied\): the files in it are left out"):
        assert [p.name for p in bio.list_images(tmp_path)] == ["x.png", "z.png"]
    with pytest.raises(PermissionError):
        bio.list_images(tmp_path / "b")
    unlisted: dict[str, str] = {}  # a caller that reports it itself (blurkit deblur: a failure): no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [p.name for p in bio.iter_files(tmp_path, unlisted=unlisted)] == ["x.png", "z.png"]
    assert unlisted == {str(tmp_path / "b"): "Permission denied"}


def test_file_modes_follow_the_umask_without_proc(tmp_path, monkeypatch):
    """Without /proc (macOS, BSD, Windows) the umask was guessed as 022: a user's 077 gave world-readable
    outputs. The umask is read with os.umask there. And a file system that refuses chmod (FAT on Linux) no
    longer fails the write."""
    import builtins

    from blurkit.data import io

    real_open = builtins.open

    def no_proc(file, *args, **kwargs):
        if str(file) == "/proc/self/status":
            raise FileNotFoundError(file)
        return real_open(file, *args, **kwargs)

    old = os.umask(0o077)
    try:
        monkeypatch.setattr(builtins, "open", no_proc)
        assert io._umask() == 0o077
    finally:
        os.umask(old)
    assert os.umask(old) == old  # put back as it was

    def refused(path, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(io.os, "chmod", refused)
    f = tmp_path / "x.bin"
    f.write_bytes(b"1")
    io.set_file_mode(f)  # no error


def test_a_long_valid_name_is_written_and_its_stale_temp_is_found(tmp_path):
    """A 250-byte file name is valid (the limit is 255), but its temporary file `.NAME.XXXXXXXX.tmp` was not:
    "File name too long" after the work (for `blurkit train`, after an epoch). The temporary name now stands
    for a long name by its start and a hash, and the stale-temp sweep looks for that."""
    import time

    from blurkit.data import io

    path = tmp_path / ("n" * 246 + ".png")  # 250 bytes: valid; its temporary name was 264
    io.write_image(path, np.zeros((4, 4), np.uint8))
    assert io.read_image(path).shape == (4, 4) and sorted(os.listdir(tmp_path)) == [path.name]
    stale = tmp_path / f".{io.temp_stem(path.name)}.abcd_123.tmp"  # what a killed write of it left
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    io._TEMP_SCANS.clear()
    io.write_image(path, np.ones((4, 4), np.uint8))
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_a_list_file_from_windows_tools_reads_or_says_why(tmp_path):
    """PowerShell 5's `>` writes UTF-16: such a list failed with "'utf-8' codec can't decode byte 0xff in
    position 0", naming no file. UTF-16 (with its byte-order mark) is read; other non-UTF-8 text is refused
    naming the list, the line and what to do."""
    from blurkit.data.io import read_list

    for name in ("a.png", "b.png"):
        io_write(tmp_path / name)
    (tmp_path / "utf16.txt").write_bytes("a.png\r\n# comment\r\nb.png\r\n".encode("utf-16"))
    assert [p.name for p in read_list(tmp_path / "utf16.txt")] == ["a.png", "b.png"]
    (tmp_path / "latin1.txt").write_bytes("a.png\nphoto-été.png\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt line 2: not UTF-8 text .*save the list as UTF-8"):
        read_list(tmp_path / "latin1.txt")
    (tmp_path / "cr.txt").write_bytes(b"a.png\rb.png\rphoto-\xe9t\xe9.png\r")  # old Mac line ends: line 3
    with pytest.raises(ValueError, match=r"cr\.txt line 3: not UTF-8 text"):
        read_list(tmp_path / "cr.txt")
    broken = "a.png\r\nb.png\r\n".encode("utf-16") + b"\x00\xd8"  # a UTF-16 list cut in a character
    (tmp_path / "cut16.txt").write_bytes(broken)
    with pytest.raises(ValueError, match=r"cut16\.txt line 3: not UTF-16 text"):
        read_list(tmp_path / "cut16.txt")


def io_write(path):
    from blurkit.data.io import write_image

    write_image(path, np.zeros((4, 4), np.uint8))


def test_case_folding_as_case_insensitive_file_systems_fold():
    """`folded` names files as APFS and NTFS do by default: letter case ignored (σ and ς, ſ and s alike, so a
    clash between them is refused), but ß kept apart from ss (two files there)."""
    from blurkit.data.io import folded

    assert folded("Photo.PNG") == folded("photo.png")
    assert folded("ΣΟΦΟΣ.png") == folded("σοφος.png") == folded("σοφoσ.png".replace("o", "ο"))
    assert folded("ſun.png") == folded("sun.png")
    assert folded("Straße.png") != folded("strasse.png")
    assert folded("e\u0301.png") == folded("\u00e9.png")  # decomposed and composed é


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
def test_a_name_of_an_open_descriptor_is_written_through_it(tmp_path):
    """``/dev/stdout`` is a link to ``/proc/self/fd/1``, which names the file stdout goes to: with stdout
    redirected to a file, the link resolved to a regular file, and the atomic write renamed its temporary file
    over the link (as root, over the real /dev/stdout), while stdout got nothing."""
    from blurkit.data.io import atomic_write_text, open_descriptor

    log = tmp_path / "stdout.txt"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, b"before\n")
        link = tmp_path / "out.json"
        link.symlink_to(f"/proc/self/fd/{fd}")
        assert open_descriptor(link) == fd
        atomic_write_text(link, '{"a": 1}\n')
        assert link.is_symlink() and log.read_text() == 'before\n{"a": 1}\n'  # appended, as >> does
        assert sorted(os.listdir(tmp_path)) == ["out.json", "stdout.txt"]
    finally:
        os.close(fd)


# --- permissions of atomic writes: those a plain open(path, "w") would leave ------------------------------
def _umask_now() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _other_gid(path: Path) -> int:
    """A group other than ``path``'s that this process may give the file (root: any), else skip."""
    if not hasattr(os, "chown") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("giving a file another group needs root")
    import grp

    mine = path.stat().st_gid
    others = sorted(g.gr_gid for g in grp.getgrall() if g.gr_gid != mine)
    if not others:
        pytest.skip("no other group on this machine")
    return others[0]


_WRITERS = {
    "write_image": lambda p, n: write_image(p, np.full((4, 5, 3), n, np.uint8)),
    "atomic_write_text": lambda p, n: bio.atomic_write_text(p, f"version {n}\n"),
    "atomic_write_bytes": lambda p, n: bio.atomic_write_bytes(p, bytes([n])),
}


@pytest.mark.parametrize("writer", list(_WRITERS))
def test_replacing_a_file_keeps_its_mode(tmp_path, writer):
    """A replaced file came back 0644 (0666 less the umask): `chmod 600 a.png` and the next `blurkit deblur
    -o a.png` made a private photo world-readable. It keeps its mode, as `open(path, "w")` does."""
    write = _WRITERS[writer]
    target = tmp_path / "a.png"
    write(target, 1)
    for mode in (0o600, 0o640, 0o604, 0o755):
        os.chmod(target, mode)
        write(target, 2)
        assert oct(target.stat().st_mode & 0o7777) == oct(mode)
    os.chmod(target, 0o4755)  # set-user-ID is not carried over to a file the writer now owns
    write(target, 3)
    assert oct(target.stat().st_mode & 0o7777) == oct(0o755)
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("writer", list(_WRITERS))
def test_replacing_a_file_keeps_its_group(tmp_path, writer):
    """`chgrp team a.png; chmod 640 a.png` and a rewrite gave 0644 root:root; the group stays (best effort)."""
    write = _WRITERS[writer]
    target = tmp_path / "a.png"
    write(target, 1)
    gid = _other_gid(target)
    os.chown(target, -1, gid)
    os.chmod(target, 0o640)
    write(target, 2)
    assert (oct(target.stat().st_mode & 0o777), target.stat().st_gid) == (oct(0o640), gid)


def test_root_replacing_a_users_file_leaves_it_theirs(tmp_path):
    """Root (a container writing into a user's bind-mounted folder) rewriting a user's private file made it
    root's, mode 0600 kept: its owner was locked out. As open() as root does, the file stays the user's."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root")
    import pwd

    user = next((u for u in pwd.getpwall() if u.pw_uid not in (0,) and u.pw_name == "nobody"), None)
    if user is None:
        pytest.skip("no user 'nobody' here")
    target = tmp_path / "a.txt"
    bio.atomic_write_text(target, "1")
    os.chown(target, user.pw_uid, user.pw_gid)
    os.chmod(target, 0o600)
    bio.atomic_write_text(target, "2")
    info = target.stat()
    assert (info.st_uid, info.st_gid, oct(info.st_mode & 0o777)) == (user.pw_uid, user.pw_gid, oct(0o600))


def test_a_non_root_writer_gives_another_users_file_the_umask_mode(tmp_path, monkeypatch):
    """A writer replacing a file it does not own (its folder is writable) makes the new file its own: the old
    private mode would lock the old owner out, so the new file gets 0666 less the umask, as a new file."""
    target = tmp_path / "a.txt"
    bio.atomic_write_text(target, "1")
    os.chmod(target, 0o600)
    monkeypatch.setattr(os, "geteuid", lambda: target.stat().st_uid + 12345)  # someone else's file
    old = os.umask(0o022)
    try:
        bio.atomic_write_text(target, "2")
    finally:
        os.umask(old)
    assert target.read_text() == "2" and oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_a_group_that_cannot_be_given_is_left_out(tmp_path, monkeypatch):
    """A user not in the old file's group cannot give it to the new one: the write still succeeds, with the
    old file's mode."""
    target = tmp_path / "a.txt"
    bio.atomic_write_text(target, "1")
    os.chown(target, -1, _other_gid(target))
    os.chmod(target, 0o640)
    tried = []

    def refused(*args):
        tried.append(args)
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refused)
    bio.atomic_write_text(target, "2")
    assert tried and target.read_text() == "2" and oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("writer", list(_WRITERS))
def test_new_files_follow_the_umask_at_the_time_of_the_write(tmp_path, writer):
    """The umask was read once, at import: a process that tightened it afterwards (a service, a script's
    os.umask(0o077)) still wrote 0644 files, where open() gives 0600."""
    write = _WRITERS[writer]
    old = os.umask(0o077)
    try:
        write(tmp_path / "private.png", 1)
        os.umask(0o027)
        write(tmp_path / "team.png", 1)
        os.umask(0)
        write(tmp_path / "open.png", 1)
    finally:
        os.umask(old)
    assert oct((tmp_path / "private.png").stat().st_mode & 0o777) == oct(0o600)
    assert oct((tmp_path / "team.png").stat().st_mode & 0o777) == oct(0o640)
    assert oct((tmp_path / "open.png").stat().st_mode & 0o777) == oct(0o666)
    assert _umask_now() == old


@pytest.mark.parametrize("writer", list(_WRITERS))
def test_a_symbolic_link_is_replaced_not_written_through(tmp_path, writer):
    """An output that is a link to a file is replaced by the new file, and the file it led to is left as it
    was: writing through it (as open() does) would let a link in an output folder make
    `blurkit deblur` overwrite an input photo, and a link another user planted in a shared sticky folder make
    it overwrite that user's choice of file (a plain open() is stopped there by fs.protected_symlinks). A
    dangling link and a link to itself are replaced alike."""
    write = _WRITERS[writer]
    (tmp_path / "store").mkdir()
    (tmp_path / "out").mkdir()
    real = tmp_path / "store" / "real.png"
    write(real, 1)
    before = real.read_bytes()
    link = tmp_path / "out" / "a.png"
    link.symlink_to(os.path.join("..", "store", "real.png"))
    write(link, 2)
    assert not link.is_symlink() and link.read_bytes() != before and real.read_bytes() == before
    for other in ("c.png", "loop.png"):
        odd = tmp_path / "out" / other
        odd.symlink_to(tmp_path / "store" / "new" / "c.png" if other == "c.png" else other)
        write(odd, 3)
        assert odd.is_file() and not odd.is_symlink()
    assert sorted(os.listdir(tmp_path / "store")) == ["real.png"] and _no_temp_files(tmp_path / "out")

"""Colour profiles and EXIF data: read from a photo's header, embedded in JPEG, PNG and WebP outputs."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from blurkit.batch import deblur_files
from blurkit.data.io import read_image, write_image
from blurkit.data.metadata import EMBED_SUFFIXES, Metadata, embed, read_metadata

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
GREY = SRGB[:16] + b"GRAY" + SRGB[20:]  # the header is what decides where a profile fits
CMYK = SRGB[:16] + b"CMYK" + SRGB[20:]


def _exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "ACME"  # camera maker
    exif[0x0132] = "2026:12:06 10:00:00"  # date and time
    exif[0x0112] = orientation
    return exif.tobytes()  # with JPEG's "Exif\0\0" prefix


def _tags(path) -> dict:
    return dict(Image.open(path).getexif())


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:164, 180:260])


def test_read_metadata_of_a_camera_jpeg(tmp_path, rgb):
    """The profile as stored; the EXIF block with every tag kept and the orientation set upright."""
    path = tmp_path / "camera.jpg"
    Image.fromarray(rgb).save(path, icc_profile=SRGB, exif=_exif(6))
    meta = read_metadata(path)
    assert meta.icc_profile == SRGB and meta.colour_space == "RGB"
    stored = _exif(6)[6:]
    assert meta.exif[:2] in (b"II", b"MM") and len(meta.exif) == len(stored)
    assert sum(a != b for a, b in zip(meta.exif, stored, strict=True)) == 1  # only the orientation's value changed
    exif = Image.Exif()
    exif.load(meta.exif)
    assert dict(exif) == {0x010F: "ACME", 0x0132: "2026:12:06 10:00:00", 0x0112: 1}
    assert read_image(path).shape == (80, 64, 3)  # the pixels were turned upright, so orientation 1 is right
    assert read_metadata(path.read_bytes()) == meta  # bytes give the same as the file


@pytest.mark.parametrize("orientation", [3, 5, 6, 7, 8])
def test_the_pixel_size_tags_follow_a_quarter_turn(tmp_path, rgb, orientation):
    """The Exif IFD's PixelXDimension and PixelYDimension describe the stored pixels: after a quarter turn
    upright (orientations 5-8, the mirrored 5 and 7 included) they are swapped with the pixels, after a half
    turn they stay; only they and the orientation change, in place."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "ACME", orientation
    sub = exif.get_ifd(0x8769)
    sub[0xA002], sub[0xA003] = rgb.shape[1], rgb.shape[0]  # the stored width and height (80 x 64)
    stored = exif.tobytes()
    path = tmp_path / "camera.jpg"
    Image.fromarray(rgb).save(path, exif=stored)
    meta = read_metadata(path)
    back = Image.Exif()
    back.load(meta.exif)
    height, width = read_image(path).shape[:2]
    assert back[0x0112] == 1 and dict(back.get_ifd(0x8769)) == {0xA002: width, 0xA003: height}
    assert (width, height) == ((64, 80) if orientation in (5, 6, 7, 8) else (80, 64))
    changed = sum(a != b for a, b in zip(meta.exif, stored[6:], strict=True))
    assert changed == (1 if orientation == 3 else 3)  # the orientation's byte; 80 <-> 64 in two more


def _block(order: str, dims: tuple[tuple[int, int], ...], exif_ifd: int | None = None) -> bytes:
    """A TIFF-structured EXIF block: orientation 6 and the Exif IFD's pixel width and height, each given as
    (TIFF type, value); ``exif_ifd`` overrides where the first IFD says the Exif IFD is."""
    fmt = {3: "H", 4: "I"}
    sub_at = 8 + 2 + 2 * 12 + 4
    head = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    ifd0 = struct.pack(order + "H", 2)
    ifd0 += struct.pack(order + "HHI", 0x0112, 3, 1) + struct.pack(order + "H", 6) + b"\0\0"
    ifd0 += struct.pack(order + "HHII", 0x8769, 4, 1, sub_at if exif_ifd is None else exif_ifd)
    ifd0 += struct.pack(order + "I", 0)
    sub = struct.pack(order + "H", len(dims))
    for tag, (kind, value) in zip((0xA002, 0xA003), dims, strict=True):
        sub += struct.pack(order + "HHI", tag, kind, 1) + struct.pack(order + fmt[kind], value).ljust(4, b"\0")
    return head + ifd0 + sub + struct.pack(order + "I", 0)


@pytest.mark.parametrize("order", ["<", ">"])
def test_the_pixel_size_swap_of_any_stored_type_or_a_damaged_exif_ifd(order):
    """Either byte order, SHORT or LONG sizes are swapped; a size the other's type cannot hold leaves both;
    an Exif IFD that is not there leaves them and keeps the block (orientation set upright)."""
    from blurkit.data.metadata import _upright

    def sizes(block: bytes) -> tuple[int, int]:
        exif = Image.Exif()
        exif.load(block)
        return exif[0x0112], tuple(exif.get_ifd(0x8769).values())

    assert sizes(_upright(_block(order, ((3, 4032), (3, 3024))))) == (1, (3024, 4032))
    assert sizes(_upright(_block(order, ((4, 4032), (4, 3024))))) == (1, (3024, 4032))
    assert sizes(_upright(_block(order, ((3, 4032), (4, 3024))))) == (1, (3024, 4032))
    assert sizes(_upright(_block(order, ((3, 4032), (4, 70000))))) == (1, (4032, 70000))  # 70000: no SHORT
    for damaged in (_block(order, ((3, 4032), (3, 3024)), exif_ifd=5000),  # past the end
                    _block(order, ((3, 4032), (3, 3024)))[:-10]):  # cut short
        upright = _upright(damaged)
        assert upright is not None and len(upright) == len(damaged)
        assert [a != b for a, b in zip(upright, damaged, strict=True)].count(True) == 1  # the orientation only


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("WEBP", ".webp"), ("TIFF", ".tif")])
def test_read_metadata_of_other_formats(tmp_path, rgb, fmt, suffix):
    path = tmp_path / f"photo{suffix}"
    Image.fromarray(rgb).save(path, fmt, icc_profile=SRGB, exif=_exif(3))
    meta = read_metadata(path)
    assert meta.icc_profile == SRGB
    if fmt == "TIFF":  # a TIFF's EXIF tags are its own structure: only the profile is taken
        assert meta.exif is None
    else:
        exif = Image.Exif()
        exif.load(meta.exif)
        assert exif[0x010F] == "ACME" and exif[0x0112] == 1


def test_files_without_metadata_or_with_damaged_metadata(tmp_path, rgb):
    plain = tmp_path / "plain.png"
    write_image(plain, rgb)
    assert read_metadata(plain) == Metadata() and not Metadata()
    assert read_metadata(b"\x89PNG not really") == Metadata()
    broken = tmp_path / "broken.jpg"
    Image.fromarray(rgb).save(broken, exif=b"Exif\x00\x00not a TIFF structure", icc_profile=b"short")
    assert read_metadata(broken) == Metadata()  # dropped, not an error
    assert read_image(broken).shape == rgb.shape
    with pytest.raises(FileNotFoundError):
        read_metadata(tmp_path / "missing.jpg")


@pytest.mark.parametrize("kind, count, kept", [(3, 1, True), (4, 1, True), (3, 2, False), (5, 1, False)])
def test_orientation_of_any_stored_type_is_set_upright_or_the_block_dropped(kind, count, kept):
    """A hand-made EXIF block (big-endian): Make, then Orientation 6 stored as SHORT, LONG, two SHORTs or
    a RATIONAL. SHORT and LONG are set to 1 in place; anything else drops the block rather than keep a
    tag that would turn the upright pixels again."""
    make = b"ACME\x00"
    offset = 8 + 2 + 2 * 12 + 4  # Make's 5 bytes do not fit in an entry: they follow the IFD
    entries = struct.pack(">HHII", 0x010F, 2, len(make), offset)
    value = struct.pack(">H", 6) + b"\x00\x00" if kind == 3 else struct.pack(">I", 6)
    entries += struct.pack(">HHI", 0x0112, kind, count) + value
    block = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 2) + entries + struct.pack(">I", 0) + make
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, "JPEG", exif=b"Exif\x00\x00" + block)
    meta = read_metadata(jpeg.getvalue())
    if not kept:
        assert meta.exif is None
        return
    exif = Image.Exif()
    exif.load(meta.exif)
    assert dict(exif) == {0x010F: "ACME", 0x0112: 1}


def _with_chunks(png: bytes, *chunks: tuple[bytes, bytes]) -> bytes:
    """``png`` with these (type, data) chunks inserted after IHDR."""
    import zlib

    added = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in chunks)
    return png[:33] + added + png[33:]


def test_a_png_s_gamma_and_chromaticities_go_to_png_outputs(tmp_path, rgb):
    """A linear PNG (gAMA 1.0) restored must not come back displayed as sRGB: gAMA, cHRM and sRGB are copied
    into PNG outputs as they were (sRGB left out beside an ICC profile, as the PNG standard asks); a chunk
    with a bad CRC is not copied; other formats have no place for them."""
    png = cv2.imencode(".png", rgb[..., ::-1])[1].tobytes()
    gama = (b"gAMA", struct.pack(">I", 100000))  # gamma 1.0: linear values
    chrm = (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))
    path = tmp_path / "linear.png"
    path.write_bytes(_with_chunks(png, gama, chrm, (b"sRGB", b"\x00")))
    meta = read_metadata(path)
    assert meta and [chunk[4:8] for chunk in meta.png_colour] == [b"gAMA", b"cHRM", b"sRGB"]
    out = tmp_path / "out.png"
    write_image(out, rgb, metadata=meta)
    info = Image.open(out).info
    assert info["gamma"] == 1.0 and info["chromaticity"][0] == pytest.approx(0.3127) and "srgb" in info
    np.testing.assert_array_equal(read_image(out), rgb)  # the pixels untouched
    write_image(out, rgb, metadata=Metadata(icc_profile=SRGB, png_colour=meta.png_colour))
    info = Image.open(out).info
    assert info["gamma"] == 1.0 and "srgb" not in info and info["icc_profile"] == SRGB
    write_image(tmp_path / "out.jpg", rgb, metadata=meta)  # no place for them: written without
    assert "gamma" not in Image.open(tmp_path / "out.jpg").info
    bad = _with_chunks(png, gama)
    at = 33 + 8 + 3  # the gamma value's last byte (after the chunk's length and type): its CRC fails
    bad = bad[:at] + bytes([bad[at] ^ 0xFF]) + bad[at + 1:]
    assert read_metadata(bad).png_colour is None
    assert read_metadata(png) == Metadata()  # OpenCV writes none of them


def test_a_cmyk_profile_is_dropped(tmp_path, rgb):
    """A CMYK file is read as RGB, so its profile no longer describes the pixels."""
    path = tmp_path / "print.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, icc_profile=CMYK)
    assert read_image(path).shape == rgb.shape
    assert read_metadata(path).icc_profile is None


@pytest.mark.parametrize("suffix", EMBED_SUFFIXES)
@pytest.mark.parametrize("kind", ["rgb", "rgba", "grey"])
def test_written_files_carry_the_metadata_and_the_same_pixels(tmp_path, rgb, suffix, kind):
    image = {"rgb": rgb, "rgba": np.dstack([rgb, np.arange(rgb.size // 3).reshape(rgb.shape[:2]) % 256]
                                           ).astype(np.uint8), "grey": rgb[:, :, 1]}[kind]
    profile = GREY if kind == "grey" else SRGB
    meta = Metadata(icc_profile=profile, exif=_exif(1)[6:])
    plain, tagged = tmp_path / f"plain{suffix}", tmp_path / f"tagged{suffix}"
    write_image(plain, image)
    write_image(tagged, image, metadata=meta)
    back = read_metadata(tagged)
    assert back.icc_profile == profile
    assert back.exif == meta.exif
    assert _tags(tagged)[0x010F] == "ACME"
    want = read_image(plain, alpha="keep")
    for got in (read_image(tagged, alpha="keep"), np.asarray(Image.open(tagged))):
        np.testing.assert_array_equal(got, want)  # the pixel data is untouched, Pillow decodes it too
    decoded = cv2.imdecode(np.frombuffer(tagged.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and decoded.shape[:2] == image.shape[:2]  # and OpenCV


def test_embedded_webp_keeps_its_alpha_and_canvas(tmp_path, rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    path, plain = tmp_path / "a.webp", tmp_path / "plain.webp"
    write_image(path, rgba, metadata=Metadata(icc_profile=SRGB))
    write_image(plain, rgba)
    data = path.read_bytes()
    assert data[12:16] == b"VP8X" and data[20] & 0x30 == 0x30  # ICC and alpha flags
    width, height = (int.from_bytes(data[24 + 3 * i:27 + 3 * i], "little") + 1 for i in range(2))
    assert (height, width) == rgba.shape[:2]
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    back = read_image(path, alpha="keep")
    np.testing.assert_array_equal(back, read_image(plain, alpha="keep"))
    np.testing.assert_array_equal(back[:, :, 3], rgba[:, :, 3])


def test_a_large_profile_spans_several_jpeg_segments(tmp_path, rgb):
    big = SRGB + bytes(range(256)) * 600  # 154 kB: three APP2 segments
    path = tmp_path / "big.jpg"
    write_image(path, rgb, metadata=Metadata(icc_profile=big))
    assert path.read_bytes().count(b"ICC_PROFILE\x00") == 3
    assert Image.open(path).info["icc_profile"] == big
    assert read_metadata(path).icc_profile == big


def test_what_does_not_fit_is_left_out(tmp_path, rgb):
    exif = _exif(1)[6:]
    grey_with_rgb = tmp_path / "grey.png"
    write_image(grey_with_rgb, rgb[:, :, 0], metadata=Metadata(icc_profile=SRGB, exif=exif))
    assert read_metadata(grey_with_rgb) == Metadata(exif=exif)  # an RGB profile on grey pixels: left out
    huge = exif + bytes(70_000)
    jpeg = tmp_path / "huge-exif.jpg"
    write_image(jpeg, rgb, metadata=Metadata(icc_profile=SRGB, exif=huge))
    assert read_metadata(jpeg) == Metadata(icc_profile=SRGB)  # over a JPEG segment: left out
    for suffix in (".tif", ".bmp"):  # formats without embedding: written plain
        path = tmp_path / f"plain{suffix}"
        write_image(path, rgb, metadata=Metadata(icc_profile=SRGB, exif=exif))
        assert read_metadata(path) == Metadata()
        np.testing.assert_array_equal(read_image(path), rgb)
    assert embed(b"not a file", ".tif", Metadata(icc_profile=SRGB), rgb) == b"not a file"
    with pytest.raises(ValueError, match="not a JPEG"):
        embed(b"not a file", ".jpg", Metadata(icc_profile=SRGB), rgb)


def test_a_grey_profile_fits_grey_alpha(tmp_path):
    la = np.dstack([np.arange(24, dtype=np.uint8).reshape(6, 4) * 10, np.full((6, 4), 99, np.uint8)])
    write_image(tmp_path / "la.png", la, metadata=Metadata(icc_profile=GREY))
    assert read_metadata(tmp_path / "la.png") == Metadata(icc_profile=GREY)
    np.testing.assert_array_equal(read_image(tmp_path / "la.png", alpha="keep"), la)
    write_image(tmp_path / "rgb-profile.png", la, metadata=Metadata(icc_profile=SRGB))
    assert read_metadata(tmp_path / "rgb-profile.png") == Metadata()  # an RGB profile on grey: left out


class _Invert:
    def predict(self, image):
        return 255 - image


@pytest.mark.parametrize("workers", [0, 2])
def test_deblur_files_copies_the_metadata(tmp_path, rgb, workers):
    src = tmp_path / "in" / "camera.jpg"
    src.parent.mkdir()
    Image.fromarray(rgb).save(src, icc_profile=SRGB, exif=_exif(8))
    jobs = [(src, tmp_path / "out" / "camera.jpg"), (src, tmp_path / "out" / "camera.png"),
            (src, tmp_path / "out" / "camera.tif")]
    assert deblur_files(_Invert(), jobs, workers=workers).done == 3
    for path in (tmp_path / "out" / "camera.jpg", tmp_path / "out" / "camera.png"):
        assert read_metadata(path) == read_metadata(src)
        assert _tags(path)[0x0112] == 1 and read_image(path).shape == (80, 64, 3)
    plain = [(src, tmp_path / "plain" / "camera.jpg")]
    assert deblur_files(_Invert(), plain, workers=workers, metadata=False).done == 1
    assert read_metadata(tmp_path / "plain" / "camera.jpg") == Metadata()
    assert "icc_profile" not in Image.open(io.BytesIO((tmp_path / "plain" / "camera.jpg").read_bytes())).info


def _bitstream(path) -> bytes:
    """The WebP bitstream chunk's name: ``VP8L`` for lossless, ``VP8 `` for lossy."""
    data = path.read_bytes()
    return next(data[i:i + 4] for i in range(12, len(data) - 4) if data[i:i + 4] in (b"VP8L", b"VP8 "))


@pytest.mark.parametrize("kind", ["rgb", "rgba", "grey"])
def test_a_lossless_webp_stays_lossless(tmp_path, rgb, kind):
    # The output used to be written lossy at quality 95 whatever the source was.
    image = {"rgb": rgb, "rgba": np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)]), "grey": rgb[..., 1]}[kind]
    src = tmp_path / "src.webp"
    Image.fromarray(image).save(src, lossless=True, exif=_exif(1))  # extended format: VP8X, then VP8L
    assert _bitstream(src) == b"VP8L"
    meta = read_metadata(src)
    assert meta.lossless and meta.exif is not None
    pixels = read_image(src, alpha="keep")
    np.testing.assert_array_equal(pixels, image if kind != "grey" else np.dstack([image] * 3))
    write_image(tmp_path / "out.webp", pixels, metadata=meta)
    assert _bitstream(tmp_path / "out.webp") == b"VP8L" and read_metadata(tmp_path / "out.webp").lossless
    np.testing.assert_array_equal(read_image(tmp_path / "out.webp", alpha="keep"), pixels)  # pixel-exact
    write_image(tmp_path / "lossy.webp", pixels, metadata=meta, lossless=False)  # asked for lossy
    assert _bitstream(tmp_path / "lossy.webp") == b"VP8 " and not read_metadata(tmp_path / "lossy.webp").lossless
    write_image(tmp_path / "bare.webp", pixels, lossless=True)  # without metadata
    assert _bitstream(tmp_path / "bare.webp") == b"VP8L"
    write_image(tmp_path / "plain.webp", pixels)  # the default stays lossy
    assert _bitstream(tmp_path / "plain.webp") == b"VP8 "
    write_image(tmp_path / "out.jpg", pixels, metadata=meta)  # a JPEG output is lossy as asked
    with pytest.raises(ValueError, match="JPEG is lossy"):
        write_image(tmp_path / "bad.jpg", pixels, lossless=True)


def test_deblur_files_keeps_a_lossless_webp_lossless(tmp_path, rgb):
    src = tmp_path / "in" / "a.webp"
    src.parent.mkdir()
    Image.fromarray(rgb).save(src, lossless=True)  # simple format: VP8L first
    Image.fromarray(rgb).save(tmp_path / "in" / "b.webp", quality=90)
    jobs = [(src, tmp_path / "out" / "a.webp"), (tmp_path / "in" / "b.webp", tmp_path / "out" / "b.webp")]
    assert deblur_files(_Invert(), jobs, workers=0).done == 2
    assert _bitstream(tmp_path / "out" / "a.webp") == b"VP8L"
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a.webp"), 255 - rgb)
    assert _bitstream(tmp_path / "out" / "b.webp") == b"VP8 " and not read_metadata(tmp_path / "in" / "b.webp")
    plain = [(src, tmp_path / "bare" / "a.webp")]  # --no-metadata: no EXIF or profile, but still lossless
    assert deblur_files(_Invert(), plain, workers=0, metadata=False).done == 1
    assert _bitstream(tmp_path / "bare" / "a.webp") == b"VP8L"

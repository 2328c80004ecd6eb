"""What a photo file says about its pixels besides the pixels: the colour profile and the EXIF data.

A restored photo should look like its input in a colour-managed viewer and keep its capture data
(camera, lens, date, exposure). :func:`read_metadata` takes the ICC colour profile and the EXIF block
from an image file's header, and :func:`blurkit.data.io.write_image` (``metadata=...``) embeds them in
JPEG, PNG and WebP files. ``blurkit deblur`` copies them from each input to its output
(``--no-metadata`` turns that off).

Conventions:

* :func:`blurkit.data.io.read_image` turns the pixels upright as EXIF orientation says, so the EXIF
  block returned here has its orientation reset to 1 (upright), and after a quarter turn its pixel width and
  height (PixelXDimension, PixelYDimension) swapped to match; every other byte is the file's own.
* A colour profile is kept only for the colour model the pixels are returned in: an RGB profile for
  colour images, a grey one for grey images. A CMYK file is read as RGB, so its CMYK profile is dropped.
* A lossless WebP input (``Metadata.lossless``) gives a lossless WebP output: restoring a photo must not add
  compression artefacts its source did not have.
* A PNG's own colour chunks (``gAMA`` gamma, ``cHRM`` chromaticities, ``sRGB``; ``Metadata.png_colour``) go
  to PNG outputs as they are (a linear PNG, gamma 1.0, must not come back displayed as sRGB); ``sRGB`` is
  left out beside an embedded ICC profile, as the PNG standard asks. Other formats have no place for them.
* TIFF and BMP outputs do not get the metadata (see :func:`embed`); nor do EXIF blocks larger than a
  JPEG segment (64 kB). XMP packets (editing software's ratings and edit history) and IPTC captions are
  not copied.

Examples:
    >>> import io, tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from PIL import Image, ImageCms
    >>> from blurkit.data.io import write_image
    >>> from blurkit.data.metadata import read_metadata
    >>> srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    >>> exif = Image.Exif()
    >>> exif[0x010F], exif[0x0112] = "ACME", 6  # camera maker; orientation: turn 90 degrees clockwise
    >>> folder = Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (6, 4)).save(folder / "in.jpg", icc_profile=srgb, exif=exif.tobytes())
    >>> meta = read_metadata(folder / "in.jpg")
    >>> meta.icc_profile == srgb, meta.colour_space
    (True, 'RGB')
    >>> write_image(folder / "out.png", np.zeros((6, 4, 3), np.uint8), metadata=meta)
    >>> written = Image.open(folder / "out.png")
    >>> written.info["icc_profile"] == srgb, dict(written.getexif())
    (True, {274: 1, 271: 'ACME'})
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

__all__ = ["Metadata", "read_metadata", "embed", "EMBED_SUFFIXES"]

#: Output suffixes :func:`embed` writes metadata into.
EMBED_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp")

_EXIF_PREFIX = b"Exif\x00\x00"
_ICC_PREFIX = b"ICC_PROFILE\x00"
_JPEG_SEGMENT = 65533  # largest payload of a JPEG marker segment (its 2-byte length counts itself)
_ICC_CHUNK = _JPEG_SEGMENT - len(_ICC_PREFIX) - 2
_PROFILE_SPACES = {b"RGB ": "RGB", b"GRAY": "GRAY"}


@dataclass(frozen=True)
class Metadata:
    """An image file's ICC colour profile and EXIF block (either may be ``None``), and whether it is a
    lossless WebP.

    Attributes:
        icc_profile: The ICC profile's bytes, RGB or grey only (see the module's conventions).
        exif: The EXIF block as TIFF-structured bytes (starting ``II*\\0`` or ``MM\\0*``, without JPEG's
            ``Exif\\0\\0`` prefix), its orientation reset to 1.
        lossless: The file is a lossless WebP (a ``VP8L`` bitstream): :func:`blurkit.data.io.write_image`
            writes a WebP file with this metadata losslessly too, so a restoration does not add the
            artefacts lossy compression would.
        png_colour: A PNG file's ``gAMA``, ``cHRM`` and ``sRGB`` chunks, each whole (length, type, data,
            CRC), in file order, for PNG outputs; ``None`` for other files and PNGs without them.
    """

    icc_profile: bytes | None = None
    exif: bytes | None = None
    lossless: bool = False
    png_colour: tuple[bytes, ...] | None = None

    @property
    def colour_space(self) -> str | None:
        """``"RGB"`` or ``"GRAY"``: the colour model of :attr:`icc_profile` (``None`` without one)."""
        return _profile_space(self.icc_profile) if self.icc_profile else None

    def __bool__(self) -> bool:
        return bool(self.icc_profile or self.exif or self.lossless or self.png_colour)


def _profile_space(profile: bytes) -> str | None:
    if len(profile) < 128 or profile[36:40] != b"acsp":
        return None
    return _PROFILE_SPACES.get(profile[16:20])


def _upright(exif: bytes) -> bytes | None:
    """``exif`` with its orientation (tag 0x0112 in the first IFD) set to 1; ``None`` if it is not EXIF.

    Only the orientation's value changes, in place, so maker notes and offsets stay valid; an orientation
    stored otherwise than as one SHORT or LONG gives ``None`` (better no EXIF than one that turns the
    upright pixels again). After a quarter turn (orientations 5 to 8) the Exif IFD's pixel width and height
    (PixelXDimension, PixelYDimension) are swapped too, in place, since they describe the stored pixels.
    """
    if exif.startswith(_EXIF_PREFIX):
        exif = exif[len(_EXIF_PREFIX):]
    if exif[:4] == b"II*\x00":
        order = "<"
    elif exif[:4] == b"MM\x00*":
        order = ">"
    else:
        return None
    try:
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        out = bytearray(exif)
        turned, exif_ifd = False, None
        for at, tag, kind, n in _entries(exif, order, ifd):
            if tag == 0x8769 and kind in (4, 13) and n == 1:  # the Exif IFD's offset
                (exif_ifd,) = struct.unpack_from(order + "I", exif, at)
            if tag != 0x0112:
                continue
            fmt = _one_number(order, kind, n)  # orientation: one SHORT (as the standard says) or LONG
            if fmt is None:  # one this cannot set upright: better no EXIF than one that turns the photo again
                return None
            turned = struct.unpack_from(fmt, exif, at)[0] in (5, 6, 7, 8)
            struct.pack_into(fmt, out, at, 1)
        if turned and exif_ifd is not None:
            try:
                _swap_dimensions(out, order, exif_ifd)
            except struct.error:  # a damaged Exif IFD: its sizes stay as they are (both are read before either
                pass  # is written), the block is kept
        return bytes(out)
    except struct.error:
        return None


def _entries(exif: bytes | bytearray, order: str, ifd: int) -> Iterator[tuple[int, int, int, int]]:
    """The entries of the IFD at offset ``ifd``: ``(where its value is, tag, TIFF type, count)`` each."""
    (count,) = struct.unpack_from(order + "H", exif, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        yield (entry + 8, *struct.unpack_from(order + "HHI", exif, entry))


def _one_number(order: str, kind: int, n: int) -> str | None:
    """The ``struct`` format of an entry's value if it is one SHORT or LONG (stored in the entry), else None."""
    return order + ("H" if kind == 3 else "I") if n == 1 and kind in (3, 4) else None


def _swap_dimensions(exif: bytearray, order: str, ifd: int) -> None:
    """Swap the values of PixelXDimension (0xA002) and PixelYDimension (0xA003) in the Exif IFD at ``ifd``,
    in place; left as they are unless both are there as one SHORT or LONG each that can hold the other's."""
    found = {}
    for at, tag, kind, n in _entries(exif, order, ifd):
        fmt = _one_number(order, kind, n)
        if tag in (0xA002, 0xA003) and fmt is not None:
            found[tag] = (at, fmt, struct.unpack_from(fmt, exif, at)[0])
    if len(found) < 2:
        return
    (x_at, x_fmt, x), (y_at, y_fmt, y) = found[0xA002], found[0xA003]
    if max(x, y) > 0xFFFF and "H" in (x_fmt[-1], y_fmt[-1]):
        return
    struct.pack_into(x_fmt, exif, x_at, y)
    struct.pack_into(y_fmt, exif, y_at, x)


def read_metadata(source: str | os.PathLike | bytes) -> Metadata:
    """The colour profile and EXIF block of an image file, from its header (no pixel is decoded).

    Args:
        source: An image file, or its bytes.

    Returns:
        A :class:`Metadata`: each part ``None`` when the file has none or it is damaged (not an ICC profile,
        not a TIFF-structured EXIF block); both for files Pillow cannot open (OpenCV may still read their
        pixels). For TIFF files only the profile is read (their EXIF tags are the file's own structure).
        For PNG files, an EXIF chunk after the pixel data is not read. ``lossless`` is True for a lossless
        WebP file.

    Raises:
        FileNotFoundError: ``source`` is a path that does not exist.

    Examples:
        >>> from blurkit.data.metadata import read_metadata
        >>> read_metadata(b"not an image")
        Metadata(icc_profile=None, exif=None, lossless=False, png_colour=None)
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_file(io.BytesIO(bytes(source)))
    with open(Path(os.fspath(source)), "rb") as fp:
        return _from_file(fp)


def _is_lossless_webp(fp: IO[bytes]) -> bool:
    """Whether ``fp`` (at its start) holds a WebP whose image is a ``VP8L`` (lossless) bitstream.

    The simple format starts with its bitstream chunk; the extended one (``VP8X``: with alpha, a profile or
    EXIF) has the profile and, for lossy images, the alpha (``ALPH``) chunk before it. Chunks are skipped
    by their sizes, so a large profile costs a seek. An animation (``ANMF`` frames) counts as lossy.
    """
    head = fp.read(12)
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return False
    for _ in range(16):  # the bitstream chunk comes among the first few
        chunk = fp.read(8)
        if len(chunk) < 8:
            return False
        kind, size = chunk[:4], struct.unpack_from("<I", chunk, 4)[0]
        if kind in (b"VP8L", b"VP8 ", b"ANMF"):
            return kind == b"VP8L"
        fp.seek(size + size % 2, io.SEEK_CUR)
    return False


_PNG_COLOUR = (b"gAMA", b"cHRM", b"sRGB")


def _png_colour(fp: IO[bytes]) -> tuple[bytes, ...] | None:
    """``fp``'s (at its start) ``gAMA``, ``cHRM`` and ``sRGB`` chunks, each whole, if it is a PNG with any; one
    whose CRC does not match its bytes is left out."""
    from blurkit.data.io import _png_chunk, _png_chunks

    found = []
    for kind, length in _png_chunks(fp):
        if kind in _PNG_COLOUR and length <= 2**24:
            body = fp.read(length + 4)  # the data and the CRC
            whole = _png_chunk(kind, body[:length])
            if len(body) == length + 4 and whole[-4:] == body[length:]:
                found.append(whole)
    return tuple(found) or None


def _from_file(fp: IO[bytes]) -> Metadata:
    from blurkit.data.io import _open_pil

    try:
        lossless = _is_lossless_webp(fp)
    except (OSError, ValueError):
        lossless = False
    fp.seek(0)
    try:
        png_colour = _png_colour(fp)
    except (OSError, ValueError, struct.error):
        png_colour = None
    fp.seek(0)
    try:
        image = _open_pil(fp)
        info = image.info
        profile = info.get("icc_profile") or None
        if profile is not None and _profile_space(profile) is None:
            profile = None  # CMYK, Lab, ...: such files are read as RGB
        exif = info.get("exif") if image.format != "TIFF" else None
        exif = _upright(exif) if exif else None
    except Exception:  # noqa: BLE001 - metadata is a courtesy: a damaged header must not stop a restoration
        return Metadata(lossless=lossless, png_colour=png_colour)
    return Metadata(icc_profile=profile, exif=exif, lossless=lossless, png_colour=png_colour)


def _fits(profile: bytes, image: np.ndarray) -> bool:
    grey = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 2))  # (H, W, 2): grey + alpha
    return _profile_space(profile) == ("GRAY" if grey else "RGB")


def embed(encoded: bytes, suffix: str, metadata: Metadata, image: np.ndarray) -> bytes:
    """Add ``metadata`` to an encoded JPEG, PNG or WebP file (the pixel data is not touched).

    :func:`blurkit.data.io.write_image` calls this with ``metadata=``. The profile is embedded only when
    its colour model fits ``image`` (the array that was encoded: RGB profiles for colour images, grey ones
    for grey images); an EXIF block over 64 kB is left out of JPEG files. Other suffixes are returned
    unchanged.

    Args:
        encoded: The file's bytes, as OpenCV's ``imencode`` writes them.
        suffix: ``".jpg"``, ``".jpeg"``, ``".png"`` or ``".webp"`` (others: returned unchanged).
        metadata: What to embed.
        image: The encoded image (its shape decides which profile fits and the WebP canvas).

    Returns:
        The file's bytes with the profile and EXIF block added.
    """
    profile = metadata.icc_profile if metadata.icc_profile and _fits(metadata.icc_profile, image) else None
    exif = metadata.exif
    suffix = suffix.lower()
    colour = metadata.png_colour if suffix == ".png" else None
    if not (profile or exif or colour) or suffix not in EMBED_SUFFIXES:
        return encoded
    if suffix in (".jpg", ".jpeg"):
        return _jpeg(encoded, profile, exif)
    if suffix == ".png":
        return _png(encoded, profile, exif, colour or ())
    return _webp(encoded, profile, exif, image)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _jpeg(data: bytes, profile: bytes | None, exif: bytes | None) -> bytes:
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    at = 2
    if data[2:4] == b"\xff\xe0":  # keep JFIF's APP0 first, as readers expect
        at = 4 + struct.unpack_from(">H", data, 4)[0]
    added = b""
    if exif and len(_EXIF_PREFIX) + len(exif) <= _JPEG_SEGMENT:
        added += _segment(0xE1, _EXIF_PREFIX + exif)
    if profile:
        chunks = [profile[i:i + _ICC_CHUNK] for i in range(0, len(profile), _ICC_CHUNK)]
        if len(chunks) <= 255:
            for i, chunk in enumerate(chunks, 1):
                added += _segment(0xE2, _ICC_PREFIX + bytes([i, len(chunks)]) + chunk)
    return data[:at] + added + data[at:]


def _png(data: bytes, profile: bytes | None, exif: bytes | None, colour: tuple[bytes, ...] = ()) -> bytes:
    from blurkit.data.io import _PNG_SIGNATURE, _png_chunk

    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG stream")
    at = 8 + 12 + struct.unpack_from(">I", data, 8)[0]  # after IHDR; these chunks must precede IDAT
    # sRGB and an ICC profile must not both be there
    added = b"".join(chunk for chunk in colour if not (profile and chunk[4:8] == b"sRGB"))
    if profile:
        added += _png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(profile))
    if exif:
        added += _png_chunk(b"eXIf", exif)
    return data[:at] + added + data[at:]


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)


def _webp(data: bytes, profile: bytes | None, exif: bytes | None, image: np.ndarray) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP stream")
    chunks = []
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at:at + 4], struct.unpack_from("<I", data, at + 4)[0]
        chunks.append((kind, data[at + 8:at + 8 + size]))
        at += 8 + size + size % 2
    if chunks and chunks[0][0] == b"VP8X":
        flags, canvas = chunks[0][1][0], chunks[0][1][4:10]
        chunks = chunks[1:]
    else:  # the simple format: the extended one's header is needed to carry metadata
        height, width = image.shape[:2]
        alpha = image.ndim == 3 and image.shape[2] == 4
        flags = 0x10 if alpha else 0
        canvas = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    chunks = [(k, p) for k, p in chunks if k not in (b"ICCP", b"EXIF")]
    if profile:
        flags |= 0x20
    if exif:
        flags |= 0x08
    body = b"WEBP" + _riff_chunk(b"VP8X", bytes([flags, 0, 0, 0]) + canvas)
    if profile:
        body += _riff_chunk(b"ICCP", profile)
    body += b"".join(_riff_chunk(k, p) for k, p in chunks)
    if exif:
        body += _riff_chunk(b"EXIF", exif)
    return b"RIFF" + struct.pack("<I", len(body)) + body

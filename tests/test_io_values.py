"""Image I/O: exact sample values through the dtype conversions of reading and writing (mutation-audit pins).

Small synthetic arrays written to ``tmp_path`` (PNG through :func:`write_image`, TIFF through Pillow and
tifffile), read back with :func:`read_image` / :func:`decode_image`: each test pins the value a plausible
slip in a conversion would change.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from blurkit.data.io import decode_image, read_image, write_image


def test_uint8_written_as_16_bits_is_scaled_by_257(tmp_path):
    """Pins 8 -> 16 bit widening as ``x * 257`` (255 -> 65535, full scale to full scale).

    ``x * 256`` would map white to 65280, which reads back as slightly grey in every 16-bit tool.
    """
    path = tmp_path / "u8.png"
    write_image(path, np.array([[0, 1, 128, 255]], np.uint8), bits=16)
    back = read_image(path)
    assert back.dtype == np.uint16
    assert back.tolist() == [[0, 257, 32896, 65535]]


def test_uint16_written_as_8_bits_rounds_to_the_nearest_level(tmp_path):
    """Pins 16 -> 8 bit narrowing as rounding ``x / 257``, not dropping the low byte.

    200 is nearer level 1 (257) than 0, and 65280 nearer 254 (65278) than 255; ``x >> 8`` gives 0 and 255.
    """
    path = tmp_path / "u16.png"
    write_image(path, np.array([[0, 200, 65280, 65535]], np.uint16), bits=8)
    back = read_image(path)
    assert back.dtype == np.uint8
    assert back.tolist() == [[0, 1, 254, 255]]


def test_32_bit_integer_tiff_is_clipped_into_uint16(tmp_path):
    """Pins that samples of a 32-bit integer TIFF are clipped to [0, 65535] before becoming uint16.

    Without the clip, -5 and 70000 wrap around to 65531 and 4464: a dark pixel turns white and a bright
    one dark.
    """
    path = tmp_path / "i32.tif"
    Image.fromarray(np.array([[-5, 70000, 300, 1]], np.int32), mode="I").save(path)
    back = read_image(path)
    assert back.dtype == np.uint16
    assert back.tolist() == [[0, 65535, 300, 1]]


def _rgba_tiff(dtype, values) -> bytes:
    tifffile = pytest.importorskip("tifffile")  # not a dependency of blurkit: tifffile writes these depths

    a = np.empty((2, 3, 4), dtype)
    a[...] = np.asarray(values, dtype)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, a, photometric="rgb", extrasamples=["unassalpha"])
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("dtype", "values", "want_dtype", "want"),
    [
        (np.float64, [0.1, 0.2, 0.3, 0.4], np.float32, [0.1, 0.2, 0.3, 0.4]),
        (np.int16, [100, 200, 300, 400], np.uint16, [100, 200, 300, 400]),
        (np.int32, [100, 200, 300, 400], np.uint16, [100, 200, 300, 400]),
    ],
)
def test_rgba_tiff_of_a_depth_cvtcolor_refuses_keeps_its_channel_order(dtype, values, want_dtype, want):
    """Pins the channel order of RGBA files that OpenCV decodes in a depth its colour conversion refuses.

    OpenCV decodes these TIFFs (float64, int16, int32) as BGRA, and ``cv2.cvtColor`` takes only 8-bit,
    16-bit and float32 images: the fallback reorders the channels itself and must give R, G, B, A (not
    A, R, G, B, nor B, G, R, A).
    """
    image = decode_image(_rgba_tiff(dtype, values), name="rgba.tif", alpha="keep")
    assert image.dtype == want_dtype and image.shape == (2, 3, 4)
    np.testing.assert_allclose(image.reshape(-1, 4), np.tile(want, (6, 1)), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_rgb_tiff_of_a_depth_cvtcolor_refuses_keeps_its_channel_order(dtype):
    """Pins the same fallback for 3-channel files: BGR decoded by OpenCV comes back R, G, B."""
    tifffile = pytest.importorskip("tifffile")

    a = np.empty((2, 3, 3), dtype)
    a[...] = np.asarray([0.25, 0.5, 0.75] if dtype == np.float64 else [10, 20, 30], dtype)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, a, photometric="rgb")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # values inside [0, 1]: no warning either
        image = decode_image(buffer.getvalue(), name="rgb.tif")
    np.testing.assert_allclose(image.reshape(-1, 3), np.tile(a[0, 0], (6, 1)), rtol=1e-6)

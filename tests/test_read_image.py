"""Image reading: every supported form gives one float array; every broken form a clear error."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from covidxray.errors import ImageReadError
from covidxray.imaging.read import read_image, read_thumbnail


def png_header_only(path, width, height):
    """A tiny PNG file that claims width x height: what a decompression bomb looks like up front."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_real_png_and_jpeg_read_as_unit_range_greyscale(real_png, real_jpeg):
    for path in (real_png, real_jpeg):
        image = read_image(path)
        assert image.ndim == 2 and image.dtype == np.float32
        assert 0.0 <= image.min() < image.max() <= 1.0


def test_colour_alpha_palette_and_16bit_forms_agree(real_png, tmp_path):
    grey = Image.open(real_png).convert("L")
    reference = read_image(real_png)
    forms = {
        "rgb.png": grey.convert("RGB"),
        "rgba.png": grey.convert("RGBA"),
        "palette.png": grey.convert("P"),
        "sixteen.png": Image.fromarray((np.asarray(grey, dtype=np.uint16) * 257)),
    }
    for name, image in forms.items():
        image.save(tmp_path / name)
        assert np.abs(read_image(tmp_path / name) - reference).max() < 0.02, name


@pytest.mark.parametrize("name, content, message", [
    ("empty.png", b"", "file is empty"),
    ("text.jpg", b"this is not an image\n" * 10, "not a JPEG image"),
    ("noise.png", bytes(range(256)) * 4, "not a PNG image"),
])
def test_broken_files_give_a_clear_reason(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageReadError, match=message) as error:
        read_image(tmp_path / name)
    assert name in str(error.value)


def test_truncated_png_is_reported(real_png, tmp_path):
    data = real_png.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png: truncated"):
        read_image(tmp_path / "cut.png")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ImageReadError, match="missing.png: file not found"):
        read_image(tmp_path / "missing.png")


def test_decompression_bomb_refused_before_decoding(tmp_path):
    png_header_only(tmp_path / "bomb.png", 40000, 40000)
    with pytest.raises(ImageReadError, match="40000x40000 pixels, over the limit"):
        read_image(tmp_path / "bomb.png")
    with pytest.raises(ImageReadError, match="over the limit"):
        read_thumbnail(tmp_path / "bomb.png")


def test_thumbnail_matches_a_downscaled_full_read(real_jpeg):
    thumb = read_thumbnail(real_jpeg, size=32)
    full = Image.fromarray((read_image(real_jpeg) * 255).astype(np.uint8)).resize((32, 32), Image.Resampling.BOX)
    assert thumb.shape == (32, 32)
    assert np.corrcoef(thumb.ravel(), np.asarray(full, np.float32).ravel())[0, 1] > 0.98

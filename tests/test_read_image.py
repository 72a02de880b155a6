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


def test_exif_orientation_is_applied_as_viewers_do(real_jpeg, tmp_path):
    """A phone JPEG stored sideways with EXIF orientation 6 reads upright, like its upright copy."""
    upright = Image.open(real_jpeg).convert("L")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # stored turned; orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    image = read_image(tmp_path / "phone.jpg")
    assert image.shape == (upright.height, upright.width)
    assert np.abs(image - np.asarray(upright, np.float32) / 255).mean() < 0.02


@pytest.mark.parametrize("suffix, format", [(".gif", "GIF"), (".webp", "WEBP"), (".bmp", "BMP"), (".tiff", "TIFF"),
                                            (".png", "PNG"), (".jpg", "JPEG")])
def test_every_listed_suffix_is_readable_and_listed_in_folders(real_png, tmp_path, suffix, format):
    from covidxray.imaging.read import IMAGE_SUFFIXES
    from covidxray.inference.predictor import expand_inputs

    assert suffix in IMAGE_SUFFIXES
    path = tmp_path / f"scan{suffix}"
    Image.open(real_png).convert("L").save(path, format=format, **({"lossless": True} if format == "WEBP" else {}))
    assert np.abs(read_image(path) - read_image(real_png)).mean() < 0.02
    assert expand_inputs([str(tmp_path)]) == [str(path)]


def test_formats_pillow_opens_but_covidxray_does_not_list_are_refused(real_png, tmp_path):
    Image.open(real_png).convert("L").save(tmp_path / "scan.ico", format="ICO")
    with pytest.raises(ImageReadError, match="scan.ico: not an image file that covidxray can read"):
        read_image(tmp_path / "scan.ico")


def test_sniffing_looks_at_the_first_bytes_of_a_whole_file(tmp_path, real_png):
    from covidxray.imaging.read import sniff_bytes

    from dicom_factory import radiograph_dataset, save

    grey = np.asarray(Image.open(real_png).convert("L"))
    whole = save(radiograph_dataset(grey), tmp_path / "x.dcm").read_bytes()
    assert sniff_bytes(whole) == "dicom" and sniff_bytes(whole[:132]) == "dicom"
    assert sniff_bytes(real_png.read_bytes()) == "png"


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path):
    from covidxray.imaging.read import MAX_FILE_BYTES

    with open(tmp_path / "huge.png", "wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ImageReadError, match="huge.png: file is 84 MB, over the limit"):
        read_image(tmp_path / "huge.png")

"""DICOM reading: every stored form of one real radiograph reads as the same picture; others refused.

Files are built from a real PNG radiograph with pydicom; every check goes through read_image.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, RLELossless

from covidxray.errors import ImageReadError
from covidxray.imaging.dicom import dicom_modality
from covidxray.imaging.read import read_image, read_thumbnail
from dicom_factory import (
    BASIC_TEXT_SR,
    PATIENT_ID,
    PATIENT_NAME,
    jpeg_baseline_dataset,
    radiograph_dataset,
    save,
)

IDENTIFYING_STRINGS = (PATIENT_NAME, PATIENT_ID, "Doe", "Jane", "19700101")


@pytest.fixture()
def grey8(real_png) -> np.ndarray:
    return np.asarray(Image.open(real_png).convert("L"))


@pytest.fixture()
def grey12(grey8) -> np.ndarray:
    """The same picture as 12-bit values in 16-bit words."""
    return np.round(grey8.astype(np.float64) * 4095 / 255).astype(np.uint16)


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def assert_private(message: str) -> None:
    for text in IDENTIFYING_STRINGS:
        assert text not in message, f"identifying text {text!r} leaked into: {message}"


def test_monochrome_forms_and_bit_depths_agree_with_the_png(real_png, grey8, grey12, tmp_path):
    reference = read_image(real_png)
    forms = {
        "mono2_8bit.dcm": radiograph_dataset(grey8),
        "mono2_12bit.dcm": radiograph_dataset(grey12, bits_stored=12),
        "mono1_8bit.dcm": radiograph_dataset(255 - grey8, photometric="MONOCHROME1"),
        "mono1_12bit.dcm": radiograph_dataset(4095 - grey12, bits_stored=12, photometric="MONOCHROME1"),
    }
    for name, dataset in forms.items():
        image = read_image(save(dataset, tmp_path / name))
        assert image.shape == reference.shape and image.dtype == np.float32, name
        assert 0.0 <= image.min() and image.max() <= 1.0, name
        assert mean_abs(image, reference) < 0.02, name


def test_monochrome1_is_inverted(grey8, tmp_path):
    image = read_image(save(radiograph_dataset(grey8, photometric="MONOCHROME1"), tmp_path / "m1.dcm"))
    assert mean_abs(image, 1.0 - grey8 / 255.0) < 0.01
    assert mean_abs(image, grey8 / 255.0) > 0.2


def test_bits_above_bits_stored_are_ignored(real_png, grey12, tmp_path):
    """Bits 12-15 may carry overlays or junk; only BitsStored bits are the pixel value."""
    dirty = grey12.copy()
    dirty[: dirty.shape[0] // 2] |= np.uint16(0xB000)
    image = read_image(save(radiograph_dataset(dirty, bits_stored=12), tmp_path / "dirty.dcm"))
    assert mean_abs(image, read_image(real_png)) < 0.02


def test_rescale_slope_and_intercept_agree(real_png, grey12, tmp_path):
    reference = read_image(real_png)
    dataset = radiograph_dataset(grey12, bits_stored=12)
    dataset.RescaleSlope, dataset.RescaleIntercept = 2, -1024
    assert mean_abs(read_image(save(dataset, tmp_path / "rescaled.dcm")), reference) < 0.02
    # A window is written in rescaled units: it only shows the whole picture if rescale came first.
    dataset.WindowCenter, dataset.WindowWidth = (-1024 + 4095 * 2 - 1024) / 2, 4095 * 2 + 1
    assert mean_abs(read_image(save(dataset, tmp_path / "rescaled_window.dcm")), reference) < 0.02


def test_window_gives_the_windowed_picture(grey12, tmp_path):
    center, width = 2400, 1200
    dataset = radiograph_dataset(grey12, bits_stored=12)
    dataset.WindowCenter, dataset.WindowWidth = center, width
    image = read_image(save(dataset, tmp_path / "window.dcm"))
    expected = np.clip((grey12 - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    assert np.abs(image - expected).max() < 1e-4
    assert mean_abs(image, grey12 / 4095) > 0.05  # differs from the unwindowed picture
    dataset.PhotometricInterpretation = "MONOCHROME1"
    inverted = read_image(save(dataset, tmp_path / "window_m1.dcm"))
    assert np.abs(inverted - (1 - expected)).max() < 1e-4


def test_rle_compressed_agrees_with_uncompressed(grey12, tmp_path):
    dataset = radiograph_dataset(grey12, bits_stored=12)
    plain = read_image(save(dataset, tmp_path / "plain.dcm"))
    dataset.compress(RLELossless)
    path = save(dataset, tmp_path / "rle.dcm")
    assert read_image(path).tobytes() == plain.tobytes()


def test_jpeg2000_lossless_agrees_with_uncompressed(grey12, tmp_path):
    from pydicom.pixels import get_encoder

    if not get_encoder(JPEG2000Lossless).is_available:
        pytest.skip("no JPEG 2000 encoder installed (pylibjpeg-openjpeg)")
    dataset = radiograph_dataset(grey12, bits_stored=12)
    plain = read_image(save(dataset, tmp_path / "plain.dcm"))
    dataset.compress(JPEG2000Lossless)
    assert np.abs(read_image(save(dataset, tmp_path / "j2k.dcm")) - plain).max() < 1e-6


def test_jpeg_baseline_agrees_with_the_png(real_png, grey8, tmp_path):
    from pydicom.pixels import get_decoder

    if not get_decoder(JPEGBaseline8Bit).is_available:
        pytest.skip("no JPEG Baseline decoder installed (pylibjpeg + pylibjpeg-libjpeg)")
    image = read_image(save(jpeg_baseline_dataset(grey8), tmp_path / "jpeg.dcm"))
    assert mean_abs(image, read_image(real_png)) < 0.02


def test_multi_frame_refused_without_identifying_text(grey8, tmp_path):
    dataset = radiograph_dataset(grey8)
    dataset.NumberOfFrames = 2
    dataset.PixelData = np.stack([grey8, grey8]).tobytes()
    path = save(dataset, tmp_path / "cine.dcm")
    with pytest.raises(ImageReadError, match="cine.dcm: DICOM file has 2 frames") as error:
        read_image(path)
    assert_private(str(error.value))


@pytest.mark.parametrize("sop_class, message", [
    (None, "no pixel data"),
    (BASIC_TEXT_SR, r"no pixel data \(not an image object \(Basic Text SR"),
])
def test_object_without_pixel_data_refused(grey8, tmp_path, sop_class, message):
    dataset = radiograph_dataset(grey8, **({"sop_class": sop_class} if sop_class else {}))
    del dataset.PixelData
    path = save(dataset, tmp_path / "report.dcm")
    with pytest.raises(ImageReadError, match=f"report.dcm: DICOM file has {message}") as error:
        read_image(path)
    assert_private(str(error.value))


def test_non_image_sop_class_refused_even_with_pixel_data(grey8, tmp_path):
    path = save(radiograph_dataset(grey8, sop_class=BASIC_TEXT_SR), tmp_path / "sr.dcm")
    with pytest.raises(ImageReadError, match="sr.dcm: DICOM object is a Basic Text SR"):
        read_image(path)


def test_truncated_pixel_data_refused(grey8, tmp_path):
    dataset = radiograph_dataset(grey8)
    dataset.PixelData = grey8.tobytes()[: grey8.size // 2]
    path = save(dataset, tmp_path / "short.dcm")
    with pytest.raises(ImageReadError, match="short.dcm: cannot decode DICOM pixel data") as error:
        read_image(path)
    assert_private(str(error.value))


@pytest.mark.parametrize("content, message", [
    (np.random.default_rng(5).bytes(4096), "not a DICOM file"),
    (b"\0" * 128 + b"DICM" + np.random.default_rng(6).bytes(2048), "(cannot parse DICOM header|DICOM file has no pixel data)"),
])
def test_random_bytes_named_dcm_refused(tmp_path, content, message):
    (tmp_path / "noise.dcm").write_bytes(content)
    with pytest.raises(ImageReadError, match=f"noise.dcm: {message}"):
        read_image(tmp_path / "noise.dcm")


def test_successful_read_and_thumbnail(grey8, tmp_path):
    path = save(radiograph_dataset(grey8), tmp_path / "ok.dcm")
    thumb = read_thumbnail(path, size=32)
    assert thumb.shape == (32, 32) and 0.1 < thumb.mean() < 0.9


def test_modality_read_from_header_only(grey8, tmp_path):
    ct = radiograph_dataset(grey8, modality="CT")
    ct.PixelData = b"\x00" * 10  # broken pixels: the header alone must suffice
    assert dicom_modality(save(ct, tmp_path / "ct.dcm")) == "CT"
    unknown = radiograph_dataset(grey8)
    del unknown.Modality
    assert dicom_modality(save(unknown, tmp_path / "unknown.dcm")) == ""
    (tmp_path / "junk.dcm").write_bytes(b"junk" * 100)
    with pytest.raises(ImageReadError, match="junk.dcm: not a DICOM file"):
        dicom_modality(tmp_path / "junk.dcm")


def test_no_window_shows_the_range_bits_stored_allows_not_a_stretch(grey8, tmp_path):
    """A dim, low-contrast radiograph stays dim, as in the PNG of the same values."""
    dim = (40 + grey8.astype(np.float64) * 0.4).round().astype(np.uint8)
    Image.fromarray(dim).save(tmp_path / "dim.png")
    as_png = read_image(tmp_path / "dim.png")
    as_12bit = read_image(save(radiograph_dataset(dim.astype(np.uint16) * 16, bits_stored=12), tmp_path / "dim.dcm"))
    assert mean_abs(as_12bit, as_png) < 0.02
    assert as_12bit.max() < 0.6


def test_in_memory_upload_reads_like_the_file(grey8, tmp_path):
    import io

    from covidxray.imaging.read import read_image_bytes

    path = save(radiograph_dataset(grey8, modality="CR"), tmp_path / "upload.dcm")
    data = path.read_bytes()
    assert read_image_bytes(data, "upload.dcm").tobytes() == read_image(path).tobytes()
    assert dicom_modality(io.BytesIO(data)) == "CR"
    with pytest.raises(ImageReadError, match="in-memory DICOM: not a DICOM file"):
        dicom_modality(io.BytesIO(b"not dicom" * 50))


def test_palette_colour_without_lookup_table_is_a_clean_error(grey8, tmp_path):
    from dicom_factory import palette_without_lut

    path = save(palette_without_lut(grey8), tmp_path / "palette.dcm")
    with pytest.raises(ImageReadError, match="palette.dcm: DICOM PALETTE COLOR image has no usable colour lookup table"):
        read_image(path)


def test_no_header_value_reaches_stderr_logs_or_messages(grey8, tmp_path, capfd, caplog):
    """An invalid UID (here carrying a name) in a file that fails to decode: pydicom would warn with it."""
    import logging

    from covidxray.imaging.read import read_image_bytes

    dataset = radiograph_dataset(grey8)
    secret_uid = "1.2.SMITH.JOHN.77"
    dataset.SOPInstanceUID = secret_uid
    dataset.StudyInstanceUID = secret_uid + ".9"
    dataset.PixelData = dataset.PixelData[:100]  # too short: decoding fails
    path = save(dataset, tmp_path / "bad.dcm")
    caplog.set_level(logging.DEBUG)
    caplog.clear()  # building the file warned about the UID; reading it must not
    capfd.readouterr()
    for read in (lambda: read_image(path), lambda: read_image_bytes(path.read_bytes(), "bad.dcm")):
        with pytest.raises(ImageReadError) as error:
            read()
        assert "bad.dcm" in str(error.value) and "SMITH" not in str(error.value)
        assert_private(str(error.value))
    captured = capfd.readouterr()
    assert "SMITH" not in captured.err + captured.out
    assert "SMITH" not in caplog.text


def test_modality_and_colour_come_with_the_pixels_for_paths_and_bytes(grey8, tmp_path):
    from covidxray.imaging.read import read_image_facts

    from dicom_factory import rgb_dataset

    path = save(radiograph_dataset(grey8, modality="ct "), tmp_path / "ct.dcm")
    assert read_image_facts(path).modality == "CT" == read_image_facts(path.read_bytes(), "ct.dcm").modality
    rgb = np.stack([grey8, np.roll(grey8, 40, axis=1), 255 - grey8], axis=-1)
    colour = save(rgb_dataset(rgb), tmp_path / "rgb.dcm")
    assert read_image_facts(colour).colourfulness > 0.2
    assert read_image_facts(colour.read_bytes(), "rgb.dcm").colourfulness == read_image_facts(colour).colourfulness


def test_hounsfield_units_are_told_from_the_values_and_radiographs_never_are(real_png, grey8, grey12, tmp_path):
    """Issue #25: a CT slice of signed HU, with no Modality and no window, says so through its facts."""
    from covidxray.imaging.read import read_image_facts

    from dicom_factory import hounsfield_ct_dataset

    ct = read_image_facts(save(hounsfield_ct_dataset(seed=3, size=256), tmp_path / "ct.dcm"))
    assert ct.modality == "" and ct.hounsfield_range is not None
    low, high = ct.hounsfield_range
    assert -1050 <= low <= -950 and 500 <= high <= 1100
    rescaled = radiograph_dataset(grey12, bits_stored=12)
    rescaled.RescaleSlope, rescaled.RescaleIntercept = 2, -1024  # negative values, but a radiograph's spread
    forms = [radiograph_dataset(grey8), radiograph_dataset(grey12, bits_stored=12), rescaled]
    for number, dataset in enumerate(forms):
        assert read_image_facts(save(dataset, tmp_path / f"xray-{number}.dcm")).hounsfield_range is None, number
    assert read_image_facts(real_png).hounsfield_range is None

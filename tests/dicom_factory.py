"""Build small DICOM files from a real radiograph, for the reader's tests.

Each file is a valid Part 10 file (preamble, file meta, Explicit VR Little Endian unless
compressed) carrying made-up identifying tags, so tests can check they never leak.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import DigitalXRayImageStorageForPresentation, JPEGBaseline8Bit

from covidxray.imaging.dicom_writing import new_dataset, put_pixels

PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "SECRET123"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"


def radiograph_dataset(
    pixels: np.ndarray,
    *,
    bits_stored: int | None = None,
    photometric: str = "MONOCHROME2",
    modality: str = "DX",
    sop_class: str = DigitalXRayImageStorageForPresentation,
) -> Dataset:
    """A single-frame greyscale dataset holding pixels (uint8 or uint16, rows x columns)."""
    dataset = new_dataset(sop_class)
    dataset.PatientName = PATIENT_NAME
    dataset.PatientID = PATIENT_ID
    dataset.PatientBirthDate = "19700101"
    dataset.Modality = modality
    return put_pixels(dataset, pixels, photometric, bits_stored)


def save(dataset: Dataset, path: Path) -> Path:
    dataset.save_as(path, enforce_file_format=True)
    return path


def jpeg_baseline_dataset(pixels: np.ndarray, quality: int = 95) -> Dataset:
    """An 8-bit dataset whose pixel data is one JPEG Baseline frame (encoded by Pillow)."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    dataset = radiograph_dataset(pixels)
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.PixelData = encapsulate([buffer.getvalue()])
    dataset["PixelData"].VR = "OB"
    dataset["PixelData"].is_undefined_length = True
    return dataset


def rgb_dataset(pixels: np.ndarray, modality: str = "OT") -> Dataset:
    """An 8-bit RGB dataset (rows x columns x 3), as a colour photograph stored as DICOM is."""
    dataset = radiograph_dataset(pixels[..., 0].copy(), modality=modality)
    dataset.SamplesPerPixel = 3
    dataset.PlanarConfiguration = 0
    dataset.PhotometricInterpretation = "RGB"
    dataset.PixelData = np.ascontiguousarray(pixels, np.uint8).tobytes()
    return dataset


def palette_without_lut(pixels: np.ndarray) -> Dataset:
    """A PALETTE COLOR dataset whose Palette Color Lookup Table Module is missing."""
    dataset = radiograph_dataset(pixels, modality="OT")
    dataset.PhotometricInterpretation = "PALETTE COLOR"
    return dataset

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


def hounsfield_ct_dataset(seed: int = 0, size: int = 512, intercept: float | None = None) -> Dataset:
    """An axial chest CT slice stored as signed Hounsfield units, with no Modality and no window.

    Air -1000 around the body, an ellipse of soft tissue (40) under a rim of fat (-100), two lungs
    of air (-850) with vessels, the heart, the aorta (contrast, 200), ribs (700), a vertebra
    (600-1000) and the table. PixelRepresentation 1 (signed int16); a Secondary Capture SOP class,
    so only the values say it is CT. intercept: written as RescaleIntercept when given (the stored
    values are then HU - intercept).
    """
    from pydicom.uid import SecondaryCaptureImageStorage

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    hu = np.full((size, size), -1000.0) + rng.normal(0, 8, (size, size))
    radius = ((xx - 0.5) / 0.42) ** 2 + ((yy - 0.52) / 0.3) ** 2
    hu[radius < 1] = 40 + rng.normal(0, 12, int((radius < 1).sum()))
    fat = (radius < 1) & (radius > 0.85)
    hu[fat] = -100 + rng.normal(0, 10, int(fat.sum()))
    for side in (-1, 1):
        lung = ((xx - 0.5 - side * 0.19) / 0.15) ** 2 + ((yy - 0.5) / 0.22) ** 2 < 1
        hu[lung] = -850 + rng.normal(0, 40, int(lung.sum()))
        for _ in range(30):
            cx, cy = 0.5 + side * 0.19 + rng.normal(0, 0.05), 0.5 + rng.normal(0, 0.08)
            hu[((xx - cx) ** 2 + (yy - cy) ** 2 < rng.uniform(2e-5, 1e-4)) & lung] = 30
    hu[((xx - 0.53) / 0.1) ** 2 + ((yy - 0.52) / 0.09) ** 2 < 1] = 45  # heart
    hu[(xx - 0.5) ** 2 + (yy - 0.66) ** 2 < 0.02 ** 2] = 200  # aorta
    hu[(xx - 0.5) ** 2 + (yy - 0.75) ** 2 < 0.045 ** 2] = rng.uniform(600, 1000)  # vertebra
    for angle in np.linspace(0.25, np.pi - 0.25, 8):
        for side in (-1, 1):
            cx, cy = 0.5 + side * np.cos(angle) * 0.4, 0.52 - np.sin(angle) * 0.28
            hu[(xx - cx) ** 2 + (yy - cy) ** 2 < 1.5e-4] = 700  # ribs
    hu[int(size * 0.86): int(size * 0.87)] = 200  # the table
    stored = np.clip(hu - (intercept or 0.0), -1024, 3071).astype(np.int16)
    dataset = new_dataset(SecondaryCaptureImageStorage)
    dataset.PatientName, dataset.PatientID = PATIENT_NAME, PATIENT_ID
    dataset.Rows, dataset.Columns = stored.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 1
    if intercept is not None:
        dataset.RescaleIntercept, dataset.RescaleSlope = intercept, 1
    dataset.PixelData = stored.tobytes()
    return dataset

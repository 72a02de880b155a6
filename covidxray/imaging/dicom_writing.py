"""Writing small DICOM files: the Part 10 wrapper and the pixel module, set the same way everywhere.

The gate's refusal corpus (gate.fit), the shipped sample (scripts/make_dicom_sample.py) and the
reader's tests (tests/dicom_factory.py) build their files with these two functions.
"""

from __future__ import annotations

import numpy as np


def new_dataset(sop_class: str, instance_uid: str | None = None):
    """An empty dataset of sop_class with its file meta (Explicit VR Little Endian, pydicom as the
    implementation); instance_uid defaults to a fresh UID."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = instance_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    return dataset


def put_pixels(dataset, pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None):
    """Set dataset's image pixel module from unsigned pixels.

    Args:
        dataset: the pydicom Dataset.
        pixels: rows x columns (grey) or rows x columns x 3 (RGB, interleaved); 8 or 16 bits allocated by dtype.
        photometric: the Photometric Interpretation.
        bits_stored: bits used of those allocated (default: all).
    """
    allocated = pixels.dtype.itemsize * 8
    dataset.Rows, dataset.Columns = pixels.shape[:2]
    dataset.SamplesPerPixel = 3 if pixels.ndim == 3 else 1
    if pixels.ndim == 3:
        dataset.PlanarConfiguration = 0
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = allocated
    dataset.BitsStored = bits_stored or allocated
    dataset.HighBit = dataset.BitsStored - 1
    dataset.PixelRepresentation = 0
    dataset.PixelData = np.ascontiguousarray(pixels).astype(f"<u{pixels.dtype.itemsize}").tobytes()
    return dataset

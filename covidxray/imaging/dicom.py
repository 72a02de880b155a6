"""Read a DICOM radiograph into float greyscale [0, 1] the way a viewer would display it.

Rescale (modality LUT) and windowing (VOI LUT) are applied, MONOCHROME1 is inverted so that
bone is always bright, and no patient-identifying tag is ever put into a message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from covidxray.errors import ImageReadError


def read_dicom(path: Path, max_pixels: int) -> np.ndarray:
    """Decode a single-frame greyscale DICOM image; refuse anything else with a reason."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path, force=False)
    except InvalidDicomError:
        raise ImageReadError(f"{path}: not a DICOM file (no DICM preamble)") from None
    except Exception as exc:  # pydicom raises many kinds on corrupt headers
        raise ImageReadError(f"{path}: cannot parse DICOM header ({type(exc).__name__})") from None
    if "PixelData" not in dataset:
        raise ImageReadError(f"{path}: DICOM file has no pixel data (not an image object)")
    rows, columns = int(dataset.get("Rows", 0)), int(dataset.get("Columns", 0))
    if rows * columns > max_pixels:
        raise ImageReadError(f"{path}: DICOM image is {columns}x{rows} pixels, over the limit of {max_pixels:,}")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageReadError(f"{path}: DICOM file has {frames} frames; covidxray reads single radiographs only")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    try:
        pixels = dataset.pixel_array
    except Exception as exc:
        raise ImageReadError(f"{path}: cannot decode DICOM pixel data ({exc})") from None
    if photometric in {"RGB", "YBR_FULL", "YBR_FULL_422"} or pixels.ndim == 3:
        from pydicom.pixels import convert_color_space  # noqa: F401  (pydicom >= 3)

        rgb = pixels.astype(np.float32)
        if photometric.startswith("YBR"):
            rgb = convert_color_space(pixels, photometric, "RGB").astype(np.float32)
        top = float(2 ** int(dataset.get("BitsStored", 8)) - 1)
        rgb = rgb / top
        return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_modality_lut(pixels, dataset)
    if "WindowCenter" in dataset or "VOILUTSequence" in dataset:
        values = apply_voi_lut(values, dataset)
    values = np.asarray(values, dtype=np.float32)
    low, high = float(values.min()), float(values.max())
    image = (values - low) / (high - low) if high > low else np.zeros_like(values)
    if photometric == "MONOCHROME1":
        image = 1.0 - image
    return image.astype(np.float32)

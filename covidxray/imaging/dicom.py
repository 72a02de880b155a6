"""Read a DICOM radiograph into float greyscale [0, 1] the way a viewer would display it.

Rescale (modality LUT) and windowing (VOI LUT) are applied, MONOCHROME1 is inverted so that
bone is always bright, and no patient-identifying tag is ever put into a message.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from covidxray.errors import ImageReadError

#: Tags whose values could identify a person. Their values are scrubbed from every message
#: (decoder errors can quote header text), and nothing else from the header is ever quoted.
IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "OtherPatientIDs",
    "OtherPatientNames", "PatientAddress", "PatientTelephoneNumbers", "PatientMotherBirthName",
    "MilitaryRank", "MedicalRecordLocator", "AccessionNumber", "StudyID", "InstitutionName",
    "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "StationName", "DeviceSerialNumber", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
    "IssuerOfPatientID", "PatientInsurancePlanCodeSequence", "ResponsiblePerson",
)

#: Without a window, stored values are scaled by the range BitsStored allows. When the pixels use
#: less than this fraction of it (a 12-bit image labelled 16-bit), their own min..max is used.
MIN_USED_FRACTION_OF_RANGE = 1 / 16

#: Colour photometric interpretations that pydicom returns as RGB.
COLOUR_PHOTOMETRIC = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR"}


def read_dicom(path: Path | BinaryIO, max_pixels: int) -> np.ndarray:
    """Decode a single-frame DICOM image into float32 [0, 1]; refuse anything else with a reason.

    Order of display transforms (PS3.3 C.11): stored value masked to BitsStored -> modality LUT
    (Rescale Slope/Intercept or Modality LUT Sequence) -> VOI LUT (window or LUT) -> MONOCHROME1
    inversion. Without a VOI the full range that BitsStored allows is shown.
    """
    path = _label(path)
    dataset = _read_header(path, stop_before_pixels=False)
    try:
        return _display_pixels(path, dataset, max_pixels)
    except ImageReadError as error:
        raise ImageReadError(_scrub(str(error), dataset)) from None


def dicom_modality(path: str | Path | BinaryIO) -> str:
    """The header's Modality (e.g. 'CR', 'DX', 'CT'), upper case, '' when absent; pixels not read.

    path may be an open binary file (an upload held in memory).
    """
    dataset = _read_header(_label(path), stop_before_pixels=True)
    return str(dataset.get("Modality", "") or "").strip().upper()


class _Labelled:
    """A file-like source that prints as its name (str/Path sources are used as they are)."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.name = source, str(getattr(source, "name", "") or "in-memory DICOM")

    def __str__(self) -> str:
        return self.name

    __format__ = lambda self, spec: format(self.name, spec)  # noqa: E731


def _label(source):
    if isinstance(source, (str, Path)) or type(source).__str__ is not object.__str__:
        return source
    return _Labelled(source)


def _read_header(path, *, stop_before_pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        source = path.source if isinstance(path, _Labelled) else path
        return pydicom.dcmread(source, force=False, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        raise ImageReadError(f"{path}: not a DICOM file (no DICM preamble)") from None
    except Exception as exc:  # pydicom raises many kinds on corrupt headers; its text may quote tags
        raise ImageReadError(f"{path}: cannot parse DICOM header ({type(exc).__name__})") from None


def _display_pixels(path: Path, dataset, max_pixels: int) -> np.ndarray:
    _refuse_non_images(path, dataset)
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    if rows < 2 or columns < 2:
        raise ImageReadError(f"{path}: DICOM image is {columns}x{rows} pixels, too small to be a radiograph")
    if rows * columns > max_pixels:
        raise ImageReadError(f"{path}: DICOM image is {columns}x{rows} pixels, over the limit of {max_pixels:,}")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageReadError(f"{path}: DICOM file has {frames} frames; covidxray reads single radiographs only")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    pixels = _decode(path, dataset)
    if photometric in COLOUR_PHOTOMETRIC or pixels.ndim == 3:
        return _colour_to_grey(path, dataset, pixels)
    if photometric not in {"MONOCHROME1", "MONOCHROME2"}:
        raise ImageReadError(f"{path}: DICOM photometric interpretation {photometric!r} is not supported")
    values, low, high = _modality_values(dataset, pixels)
    image = _voi(dataset, values, low, high)
    if photometric == "MONOCHROME1":
        image = 1.0 - image
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _refuse_non_images(path: Path, dataset) -> None:
    from pydicom.uid import UID

    sop_class = UID(str(dataset.get("SOPClassUID", "") or ""))
    kind = sop_class.name if sop_class and sop_class.is_valid else ""
    described = f" ({kind})" if kind and kind != str(sop_class) else ""
    if "PixelData" not in dataset:
        raise ImageReadError(f"{path}: DICOM file has no pixel data (not an image object{described})")
    if kind and kind != str(sop_class) and "Image" not in kind:
        raise ImageReadError(f"{path}: DICOM object is a {kind}, not an image")


def _decode(path: Path, dataset) -> np.ndarray:
    from pydicom.pixels import get_decoder

    file_meta = getattr(dataset, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax is not None and syntax.is_compressed:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            raise ImageReadError(f"{path}: DICOM transfer syntax {syntax.name} cannot be decoded by pydicom") from None
        if not decoder.is_available:
            raise ImageReadError(
                f"{path}: DICOM pixel data is compressed as {syntax.name} and no installed decoder "
                "handles it (install pylibjpeg, pylibjpeg-libjpeg and pylibjpeg-openjpeg)"
            )
    try:
        pixels = dataset.pixel_array
    except Exception as exc:  # decoder messages may quote header values: scrubbed by the caller
        raise ImageReadError(f"{path}: cannot decode DICOM pixel data ({_first_line(exc)})") from None
    if pixels.ndim not in (2, 3) or min(pixels.shape[:2]) < 2:
        raise ImageReadError(f"{path}: DICOM pixel data has shape {pixels.shape}, not a single 2-D image")
    return pixels


def _stored_range(dataset) -> tuple[float, float]:
    bits = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 8)) or 8)
    if int(dataset.get("PixelRepresentation", 0) or 0) == 1:
        return -float(2 ** (bits - 1)), float(2 ** (bits - 1) - 1)
    return 0.0, float(2**bits - 1)


def _modality_values(dataset, pixels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Pixels after the modality LUT, and the lowest and highest values the header allows."""
    from pydicom.pixels import apply_modality_lut

    bits = int(dataset.get("BitsStored", 0) or 0)
    if pixels.dtype.kind == "u" and 0 < bits < pixels.dtype.itemsize * 8:
        pixels = pixels & np.asarray(2**bits - 1, dtype=pixels.dtype)  # bits above BitsStored are not pixel
    low, high = _stored_range(dataset)
    if "ModalityLUTSequence" in dataset:
        values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
        lut_bits = int(dataset.ModalityLUTSequence[0].LUTDescriptor[2])
        return values, 0.0, float(2**lut_bits - 1)
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    values = pixels.astype(np.float64) * slope + intercept
    low, high = sorted((low * slope + intercept, high * slope + intercept))
    used_low, used_high = float(values.min()), float(values.max())
    if used_high - used_low < (high - low) * MIN_USED_FRACTION_OF_RANGE and used_high > used_low:
        low, high = used_low, used_high
    return values, low, high


def _voi(dataset, values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Apply the first window (or VOI LUT) of the header, giving [0, 1]; else scale low..high."""
    if "VOILUTSequence" in dataset:
        from pydicom.pixels import apply_voi

        item = dataset.VOILUTSequence[0]
        lut_bits = int(item.LUTDescriptor[2])
        mapped = np.asarray(apply_voi(values, dataset, index=0), dtype=np.float64)
        return mapped / float(2**lut_bits - 1)
    center, width = _first_number(dataset, "WindowCenter"), _first_number(dataset, "WindowWidth")
    if center is not None and width is not None and width > 0:
        function = str(dataset.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
        if function == "SIGMOID":
            return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
        if function == "LINEAR_EXACT":
            return np.clip((values - center) / width + 0.5, 0.0, 1.0)
        if width >= 1:  # LINEAR, PS3.3 C.11.2.1.2.1
            return np.clip((values - (center - 0.5)) / max(width - 1.0, 1e-9) + 0.5, 0.0, 1.0)
    if high <= low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def _first_number(dataset, keyword: str) -> float | None:
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value[0] if hasattr(value, "__len__") and not isinstance(value, str) else value)
    except (TypeError, ValueError, IndexError):
        return None


def _colour_to_grey(path: Path, dataset, pixels: np.ndarray) -> np.ndarray:
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR" and pixels.ndim == 2:
        from pydicom.pixels import apply_color_lut

        pixels = apply_color_lut(pixels, dataset)
        top = float(np.iinfo(pixels.dtype).max) if pixels.dtype.kind == "u" else 1.0
    else:
        top = float(2 ** int(dataset.get("BitsStored", 8) or 8) - 1)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise ImageReadError(f"{path}: DICOM colour pixel data has shape {pixels.shape}, expected rows x columns x 3")
    rgb = pixels.astype(np.float32) / top
    grey = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return np.clip(grey, 0.0, 1.0).astype(np.float32)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _scrub(message: str, dataset) -> str:
    """Remove the value of every identifying tag from message (belt and braces: none is quoted)."""
    from pydicom.multival import MultiValue
    from pydicom.sequence import Sequence

    for keyword in IDENTIFYING_KEYWORDS:
        value = dataset.get(keyword)
        if value is None or isinstance(value, Sequence):
            continue
        texts = [str(v) for v in value] if isinstance(value, MultiValue) else [str(value)]
        for text in texts:
            for piece in {text, text.replace("^", " ").strip(), *text.split("^")}:
                if len(piece) >= 3:
                    message = message.replace(piece, "[removed]")
    return message

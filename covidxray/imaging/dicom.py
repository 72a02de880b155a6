"""Read a DICOM radiograph into float greyscale [0, 1] the way a viewer would display it.

Rescale (modality LUT) and windowing (VOI LUT) are applied, MONOCHROME1 is inverted so that
bone is always bright. Sizes are checked from the header (Rows, Columns, frames, the embedded
JPEG frame's own header, the inflated length of a Deflated file) before anything is decoded, and
nothing from the header (no name, no UID, no decoder warning quoting one) reaches any message.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from covidxray.errors import ImageReadError
from covidxray.imaging.decoding import (
    MAX_FILE_BYTES,
    SNIFF_BYTES,
    ReadImage,
    check_decode_size,
    colour_measures,
    quiet_decoders,
)

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
#: Value representations holding free text, names, dates or UIDs: every such value is scrubbed.
TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "UR", "UI", "AE", "DA", "DT", "TM", "AS", "IS", "DS"}

#: Without a window, stored values are scaled by the range BitsStored allows. When the pixels use
#: less than this fraction of it (a 12-bit image labelled 16-bit), their own min..max is used.
MIN_USED_FRACTION_OF_RANGE = 1 / 16

#: Hounsfield units (hounsfield_range): a CT slice's values pile up in two narrow peaks, air around
#: the body (AIR_HU, about -1000) and soft tissue and water (TISSUE_HU, about 0): at least HU_MIN_SHARE
#: of its pixels in each and HU_PEAKS_SHARE in both together. A radiograph's values are detector
#: counts spread over their whole range, unsigned, with no negative rescale intercept.
AIR_HU = (-1050.0, -950.0)
TISSUE_HU = (-150.0, 150.0)
HU_MIN_SHARE = 0.05
HU_PEAKS_SHARE = 0.3

#: Colour photometric interpretations that pydicom returns as RGB.
COLOUR_PHOTOMETRIC = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR"}
KNOWN_PHOTOMETRIC = COLOUR_PHOTOMETRIC | {"MONOCHROME1", "MONOCHROME2"}
DEFLATED = "1.2.840.10008.1.2.1.99"
#: Largest dataset a Deflated file may inflate to (bounded while inflating).
MAX_INFLATED_BYTES = MAX_FILE_BYTES
#: Explicit-VR value representations with a 4-byte length (PS3.5 7.1.2).
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def read_dicom_facts(path: Path | BinaryIO, max_pixels: int) -> ReadImage:
    """Decode a single-frame DICOM image into float32 [0, 1], with the file's Modality and colour
    (covidxray.imaging.decoding.ReadImage); refuse anything else with a reason.

    Order of display transforms (PS3.3 C.11): stored value masked to BitsStored -> modality LUT
    (Rescale Slope/Intercept or Modality LUT Sequence) -> VOI LUT (window or LUT) -> MONOCHROME1
    inversion. Without a VOI the full range that BitsStored allows is shown.
    """
    path = _label(path)
    with quiet_decoders():
        dataset = _read_header(path, stop_before_pixels=False)
        try:
            image, colour, hounsfield = _display_pixels(path, dataset, max_pixels)
        except ImageReadError as error:
            raise ImageReadError(_scrub(str(error), dataset)) from None
    modality = str(dataset.get("Modality", "") or "").strip().upper()
    return ReadImage(image, "dicom", modality, *colour, hounsfield_range=hounsfield)


def dicom_modality(path: str | Path | BinaryIO) -> str:
    """The header's Modality (e.g. 'CR', 'DX', 'CT'), upper case, '' when absent; pixels not read.

    path may be an open binary file (an upload held in memory).
    """
    with quiet_decoders():
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


def _source(path):
    return path.source if isinstance(path, _Labelled) else path


def _head(path) -> bytes:
    """The first 64 KiB of the file (enough for the preamble and file meta group)."""
    source = _source(path)
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return handle.read(1 << 16)
    position = source.tell()
    head = source.read(1 << 16)
    source.seek(position)
    return head


def _meta_group(head: bytes) -> tuple[str, int]:
    """(TransferSyntaxUID, offset where the dataset starts) from the file meta group (explicit VR LE)."""
    offset, syntax = SNIFF_BYTES, ""
    while offset + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, offset)
        if group != 0x0002:
            break
        vr = head[offset + 4: offset + 6]
        if vr in _LONG_VRS:
            length, start = struct.unpack_from("<I", head, offset + 8)[0], offset + 12
        else:
            length, start = struct.unpack_from("<H", head, offset + 6)[0], offset + 8
        if element == 0x0010:
            syntax = head[start: start + length].decode("ascii", "replace").strip("\x00 ")
        offset = start + length
    return syntax, offset


def _read_header(path, *, stop_before_pixels: bool):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        head = _head(path)
        if head[128:132] == b"DICM":
            syntax, start = _meta_group(head)
            if syntax == DEFLATED:
                return _read_deflated(path, start)
        return pydicom.dcmread(_source(path), force=False, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        raise ImageReadError(f"{path}: not a DICOM file (no DICM preamble)") from None
    except ImageReadError:
        raise
    except Exception as exc:  # pydicom raises many kinds on corrupt headers; its text may quote tags
        raise ImageReadError(f"{path}: cannot parse DICOM header ({type(exc).__name__})") from None


def _read_deflated(path, start: int):
    """A Deflated Explicit VR Little Endian file, inflated with its length bounded while inflating."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset
    from pydicom.uid import ExplicitVRLittleEndian

    source = _source(path)
    if isinstance(source, (str, Path)):
        data = Path(source).read_bytes()  # its size was checked before reading
    else:
        position = source.tell()
        source.seek(0)
        data = source.read()
        source.seek(position)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(memoryview(data)[start:], MAX_INFLATED_BYTES)
    except zlib.error:
        raise ImageReadError(f"{path}: Deflated DICOM data is corrupt") from None
    if inflater.unconsumed_tail or (not inflater.eof and inflater.decompress(b"", 1)):
        raise ImageReadError(f"{path}: Deflated DICOM data inflates to more than {MAX_INFLATED_BYTES / 1e6:,.0f} MB "
                             "(refused while inflating: possible decompression bomb)")
    meta = FileMetaDataset(read_dataset(io.BytesIO(data[SNIFF_BYTES:start]), False, True))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = DicomBytesIO(inflated)
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    dataset = read_dataset(buffer, False, True)
    dataset.file_meta = meta
    dataset.set_original_encoding(False, True)
    return dataset


def _display_pixels(path: Path, dataset, max_pixels: int) -> tuple[np.ndarray, tuple[float, float], tuple[int, int] | None]:
    _refuse_non_images(path, dataset)
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    allocated = int(dataset.get("BitsAllocated", 8) or 8)
    # Decoded samples, plus one float32 working copy, plus the grey copy and float result.
    check_decode_size(path, columns, rows, samples * max(1, (allocated + 7) // 8) * frames + 4, max_pixels,
                      what="DICOM image")
    if frames > 1:
        raise ImageReadError(f"{path}: DICOM file has {frames} frames; covidxray reads single radiographs only")
    _check_compressed_frame(path, dataset, rows, columns, max_pixels)
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in KNOWN_PHOTOMETRIC:
        raise ImageReadError(f"{path}: DICOM photometric interpretation is not one covidxray reads "
                             "(MONOCHROME1, MONOCHROME2 or a colour one)")
    pixels = _decode(path, dataset)
    if photometric in COLOUR_PHOTOMETRIC or pixels.ndim == 3:
        return (*_colour_to_grey(path, dataset, pixels), None)
    values, low, high = _modality_values(dataset, pixels)
    can_be_negative = int(dataset.get("PixelRepresentation", 0) or 0) == 1 or float(dataset.get("RescaleIntercept", 0) or 0) < 0
    hounsfield = hounsfield_range(values) if can_be_negative and "ModalityLUTSequence" not in dataset else None
    del pixels
    image = _voi(dataset, values, low, high)
    if photometric == "MONOCHROME1":
        np.subtract(1.0, image, out=image)
    return np.clip(image, 0.0, 1.0, out=image).astype(np.float32, copy=False), (0.0, 0.0), hounsfield


def hounsfield_range(values: np.ndarray) -> tuple[int, int] | None:
    """(lowest, highest) typical value, rounded to tens, when values are the Hounsfield units of a CT slice.

    That is: at least HU_MIN_SHARE of the pixels are air (AIR_HU, about -1000), as many are soft tissue
    or water (TISSUE_HU, about 0), and HU_PEAKS_SHARE lie in the two peaks together. Projection
    radiographs store detector counts, which are never negative; the caller asks only for signed
    values or a negative rescale intercept (a radiograph whose header maps its black to exactly
    -1000 could still look like this; the gate trusts a header that names a radiograph modality).

    Args:
        values: the pixels after the modality rescale, before any window.

    Returns:
        The 0.5th and 99.5th percentiles, or None when the values are not Hounsfield units.
    """
    step = max(1, int(np.ceil(max(values.shape) / 256)))
    sample = np.asarray(values[::step, ::step], np.float32).ravel()
    if sample.size == 0:
        return None
    air = np.mean((sample >= AIR_HU[0]) & (sample <= AIR_HU[1]))
    tissue = np.mean((sample >= TISSUE_HU[0]) & (sample <= TISSUE_HU[1]))
    if min(air, tissue) < HU_MIN_SHARE or air + tissue < HU_PEAKS_SHARE:
        return None
    low, high = np.percentile(sample, [0.5, 99.5])
    return int(round(float(low), -1)), int(round(float(high), -1))


def _refuse_non_images(path: Path, dataset) -> None:
    from pydicom.uid import UID

    sop_class = UID(str(dataset.get("SOPClassUID", "") or ""))
    kind = sop_class.name if sop_class and sop_class.is_valid else ""
    described = f" ({kind})" if kind and kind != str(sop_class) else ""
    if "PixelData" not in dataset:
        raise ImageReadError(f"{path}: DICOM file has no pixel data (not an image object{described})")
    if kind and kind != str(sop_class) and "Image" not in kind:
        raise ImageReadError(f"{path}: DICOM object is a {kind}, not an image")


def _check_compressed_frame(path, dataset, rows: int, columns: int, max_pixels: int) -> None:
    """Refuse a compressed frame whose own header claims another size than Rows x Columns."""
    from pydicom.encaps import get_frame

    file_meta = getattr(dataset, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax is None or not syntax.is_compressed or str(syntax) == DEFLATED:
        return
    try:
        frame = get_frame(dataset.PixelData, 0, number_of_frames=1)
    except Exception:
        raise ImageReadError(f"{path}: DICOM compressed pixel data is malformed (no readable frame)") from None
    size = frame_size(bytes(frame[: 1 << 16]))
    if size is None:
        if str(syntax).startswith("1.2.840.10008.1.2.5"):  # RLE: the decoded size is Rows x Columns
            return
        raise ImageReadError(f"{path}: DICOM compressed frame has no image header that covidxray can check")
    width, height = size
    if (width, height) != (columns, rows):
        check_decode_size(path, width, height, 4, max_pixels, what="DICOM compressed frame")
        raise ImageReadError(f"{path}: DICOM compressed frame is {width}x{height} pixels but the header says "
                             f"{columns}x{rows} (refused before decoding)")


def frame_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG (SOFn, JPEG-LS SOF55) or JPEG 2000 (SIZ) frame header, else None."""
    if frame.startswith(b"\xff\xd8"):
        offset = 2
        while offset + 4 <= len(frame):
            if frame[offset] != 0xFF:
                return None
            marker = frame[offset + 1]
            if marker == 0xFF:
                offset += 1
                continue
            length = struct.unpack_from(">H", frame, offset + 2)[0]
            if (0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC)) or marker == 0xF7:
                if offset + 9 > len(frame):
                    return None
                height, width = struct.unpack_from(">HH", frame, offset + 5)
                return width, height
            if marker == 0xDA:
                return None
            offset += 2 + length
        return None
    siz = frame.find(b"\xff\x4f\xff\x51")
    if siz >= 0 and siz + 24 <= len(frame):
        x, y, x0, y0 = struct.unpack_from(">IIII", frame, siz + 8)
        return x - x0, y - y0
    return None


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
                "handles it (lossless JPEG needs the optional decoder: pip install 'covidxray[dicom-jpeg-lossless]')"
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
    """Pixels after the modality LUT (float32), and the lowest and highest values the header allows."""
    from pydicom.pixels import apply_modality_lut

    bits = int(dataset.get("BitsStored", 0) or 0)
    if pixels.dtype.kind == "u" and 0 < bits < pixels.dtype.itemsize * 8:
        pixels = pixels & np.asarray(2**bits - 1, dtype=pixels.dtype)  # bits above BitsStored are not pixel
    low, high = _stored_range(dataset)
    if "ModalityLUTSequence" in dataset:
        values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float32)
        lut_bits = int(dataset.ModalityLUTSequence[0].LUTDescriptor[2])
        return values, 0.0, float(2**lut_bits - 1)
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    values = pixels.astype(np.float32)
    if slope != 1:
        values *= slope
    if intercept != 0:
        values += intercept
    low, high = sorted((low * slope + intercept, high * slope + intercept))
    used_low, used_high = float(values.min()), float(values.max())
    if used_high - used_low < (high - low) * MIN_USED_FRACTION_OF_RANGE and used_high > used_low:
        low, high = used_low, used_high
    return values, low, high


def _voi(dataset, values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Apply the first window (or VOI LUT) of the header, giving float32 [0, 1]; else scale low..high.

    Works in place on values (float32) where it can.
    """
    if "VOILUTSequence" in dataset:
        from pydicom.pixels import apply_voi

        item = dataset.VOILUTSequence[0]
        lut_bits = int(item.LUTDescriptor[2])
        mapped = np.asarray(apply_voi(values, dataset, index=0), dtype=np.float32)
        mapped *= 1.0 / float(2**lut_bits - 1)
        return mapped
    center, width = _first_number(dataset, "WindowCenter"), _first_number(dataset, "WindowWidth")
    if center is not None and width is not None and width > 0:
        function = str(dataset.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
        if function == "SIGMOID":
            return (1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))).astype(np.float32)
        if function == "LINEAR_EXACT":
            values -= center
            values *= 1.0 / width
            values += 0.5
            return np.clip(values, 0.0, 1.0, out=values)
        if width >= 1:  # LINEAR, PS3.3 C.11.2.1.2.1
            values -= center - 0.5
            values *= 1.0 / max(width - 1.0, 1e-9)
            values += 0.5
            return np.clip(values, 0.0, 1.0, out=values)
    if high <= low:
        return np.zeros_like(values)
    values -= low
    values *= 1.0 / (high - low)
    return values


def _first_number(dataset, keyword: str) -> float | None:
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value[0] if hasattr(value, "__len__") and not isinstance(value, str) else value)
    except (TypeError, ValueError, IndexError):
        return None


def _colour_to_grey(path: Path, dataset, pixels: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    photometric = str(dataset.get("PhotometricInterpretation", "")).strip().upper()
    if photometric == "PALETTE COLOR" and pixels.ndim == 2:
        from pydicom.pixels import apply_color_lut

        try:
            pixels = apply_color_lut(pixels, dataset)
        except Exception:  # no or a broken Palette Color Lookup Table Module
            raise ImageReadError(f"{path}: DICOM PALETTE COLOR image has no usable colour lookup table") from None
        top = float(np.iinfo(pixels.dtype).max) if pixels.dtype.kind == "u" else 1.0
    else:
        top = float(2 ** int(dataset.get("BitsStored", 8) or 8) - 1)
    if pixels.ndim != 3 or pixels.shape[-1] != 3:
        raise ImageReadError(f"{path}: DICOM colour pixel data has shape {pixels.shape}, expected rows x columns x 3")
    step = max(1, int(np.ceil(max(pixels.shape[:2]) / 256)))
    colour = colour_measures(pixels[::step, ::step].astype(np.float32) / top)
    grey = pixels[..., 0] * np.float32(0.299 / top)
    grey += pixels[..., 1] * np.float32(0.587 / top)
    grey += pixels[..., 2] * np.float32(0.114 / top)
    return np.clip(grey, 0.0, 1.0, out=grey).astype(np.float32, copy=False), colour


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _header_texts(dataset) -> set[str]:
    """Every text, name, date, number-string and UID value of the header (and file meta)."""
    from pydicom.multival import MultiValue

    texts: set[str] = set()
    sources = [dataset] + ([dataset.file_meta] if getattr(dataset, "file_meta", None) is not None else [])
    for source in sources:
        for element in source.iterall():
            if element.VR not in TEXT_VRS and element.keyword not in IDENTIFYING_KEYWORDS:
                continue
            value = element.value
            for text in ([str(v) for v in value] if isinstance(value, (MultiValue, list, tuple)) else [str(value)]):
                texts.update(piece for piece in {text, text.strip(), text.replace("^", " ").strip(), *text.split("^")}
                             if len(piece.strip()) >= 3)
    return texts


def _scrub(message: str, dataset) -> str:
    """Remove every header text value from message (belt and braces: none is quoted on purpose)."""
    try:
        texts = _header_texts(dataset)
    except Exception:
        return message.split(":", 1)[0] + ": DICOM file could not be read"
    for text in sorted(texts, key=len, reverse=True):
        message = message.replace(text, "[removed]")
    return message

"""What every decoder shares: the size limits, the read result, in-memory files, quiet decoding.

read (PNG, JPEG and the rest by Pillow) and dicom (pydicom) both build on this module, so the
limits are one set of numbers and neither reader imports the other's internals.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from covidxray.errors import ImageReadError

#: Largest image we agree to decode (width x height). Radiographs are at most ~4300 x 4300
#: (18.5 Mpx); 6000 x 6000 leaves room, anything beyond is a decompression bomb or not a radiograph.
MAX_PIXELS = 36_000_000
#: Largest file read at all, checked on the file system before a byte is read. An uncompressed
#: 16-bit 4300 x 4300 DICOM is 37 MB.
MAX_FILE_BYTES = 80 * (1 << 20)
#: Largest memory that decoding one image may take (decoded pixels + the grey copy + the float
#: result), estimated from the header before decoding; keeps any one input under ~300 MB.
MAX_DECODE_BYTES = 300_000_000

DICOM_MAGIC_OFFSET = 128
#: Bytes that sniff_bytes needs from the start of a file.
SNIFF_BYTES = DICOM_MAGIC_OFFSET + 4

class NamedBytes(io.BytesIO):
    """An in-memory file that prints as its name, so errors about uploads name the upload."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name

    def __str__(self) -> str:
        return self.name

    __format__ = lambda self, spec: format(self.name, spec)  # noqa: E731


@dataclass
class ReadImage:
    """A decoded image and what its file says that the pixels alone do not.

    image: 2-D float32 [0, 1]. kind: the sniffed format ('png', 'jpeg', 'dicom', ...).
    modality: the DICOM Modality (upper case, stripped; '' when absent), None for other formats.
    colourfulness: mean chroma (max - min of R, G, B on [0, 1]) of a small copy; 0 for greyscale.
    hue_spread: 0 when all coloured pixels share one hue (a tinted radiograph), up to 1 when
    hues vary as in a photograph.
    hounsfield_range: for a DICOM whose values (after its rescale, before any window) are the
    Hounsfield units of a CT slice (signed, air near -1000 beside soft tissue near 0), their
    (lowest, highest) typical values, rounded; None for anything else.
    """

    image: np.ndarray
    kind: str
    modality: str | None = None
    colourfulness: float = 0.0
    hue_spread: float = 0.0
    hounsfield_range: tuple[int, int] | None = None


@contextmanager
def quiet_decoders() -> Iterator[None]:
    """Silence warnings and pydicom's log while a decoder runs: their text can quote header values.

    Process-wide state (the warning filters, the logger) is changed, so callers in different
    threads take turns.
    """
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logger = logging.getLogger("pydicom")
        was_disabled, logger.disabled = logger.disabled, True
        try:
            yield
        finally:
            logger.disabled = was_disabled


_QUIET_LOCK = threading.RLock()


def decode_budget(width: int, height: int, bytes_per_pixel: int, copies: int = 1) -> int:
    """Bytes that decoding width x height takes: copies of the decoded pixels, a grey copy, the float result.

    Args:
        width: pixels across.
        height: pixels down.
        bytes_per_pixel: of the decoded pixels.
        copies: decoded copies held at once.

    Returns:
        The bytes.
    """
    return width * height * (bytes_per_pixel * copies + 1 + 4)


def check_decode_size(label, width: int, height: int, bytes_per_pixel: int, max_pixels: int, copies: int = 1,
                      what: str = "image") -> None:
    """Refuse, before decoding, an image with too many pixels, too small a side, or too large a decode.

    Args:
        label: the file, named in the error.
        width: pixels across, from the header.
        height: pixels down, from the header.
        bytes_per_pixel: of the decoded pixels.
        max_pixels: the most pixels accepted.
        copies: decoded copies held at once.
        what: what is decoded ("image", "frame"), in the error.

    Raises:
        ImageReadError: saying which limit the file passes.
    """
    if width * height > max_pixels:
        raise ImageReadError(
            f"{label}: {what} is {width}x{height} pixels, over the limit of {max_pixels:,} "
            "(refused before decoding: possible decompression bomb)"
        )
    if width < 2 or height < 2:
        raise ImageReadError(f"{label}: {what} is {width}x{height} pixels, too small to be a radiograph")
    needed = decode_budget(width, height, bytes_per_pixel, copies)
    if needed > MAX_DECODE_BYTES:
        raise ImageReadError(
            f"{label}: {what} is {width}x{height} pixels and would take {needed / 1e6:,.0f} MB to decode, over the "
            f"limit of {MAX_DECODE_BYTES / 1e6:,.0f} MB (refused before decoding)"
        )


def colour_measures(rgb: np.ndarray) -> tuple[float, float]:
    """(mean chroma, hue spread) of an (h, w, 3) float [0, 1] array.

    Hue spread is 1 - |mean unit hue vector| over clearly coloured pixels, in the opponent plane
    (red-green, yellow-blue): a tint of one hue gives ~0, the mixed hues of a photograph more.
    """
    chroma = rgb.max(axis=-1) - rgb.min(axis=-1)
    coloured = chroma > 0.06
    if coloured.sum() < 16:
        return float(chroma.mean()), 0.0
    r, g, b = (rgb[..., i][coloured] for i in range(3))
    opponent = (r - g) + 1j * ((r + g) / 2 - b)
    unit = opponent / np.maximum(np.abs(opponent), 1e-6)
    return float(chroma.mean()), float(1.0 - np.abs(unit.mean()))

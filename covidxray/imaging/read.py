"""Read PNG, JPEG, DICOM (and BMP, TIFF, GIF, WebP) files into one float greyscale array in [0, 1].

Every command reads images through here, so limits are enforced once, before anything large is
read or decoded (file size from the file system, pixel counts and decoded bytes from the header),
and each failure names the file and the problem. Paths and in-memory files (uploads) take the
same route, so what the gate learns about a file (DICOM modality, colour) never depends on it.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from covidxray.errors import ImageReadError
from covidxray.imaging.decoding import (DICOM_MAGIC_OFFSET, MAX_FILE_BYTES, MAX_PIXELS, SNIFF_BYTES, NamedBytes,
                                        ReadImage, check_decode_size, colour_measures, quiet_decoders)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
#: Pillow formats read (besides DICOM, read by pydicom); folder listing uses the same list.
PILLOW_FORMATS = ("PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jpe", ".dcm", ".dicom", ".bmp", ".tif", ".tiff", ".gif", ".webp"}
DICOM_SUFFIXES = (".dcm", ".dicom")
#: Side of the copy on which colour is measured.
COLOUR_SIDE = 256


def sniff_format(path: Path) -> str:
    """Tell the real format from the first bytes: 'png', 'jpeg', 'dicom', 'gif', ... or 'other'."""
    with open(path, "rb") as handle:
        return sniff_bytes(handle.read(SNIFF_BYTES))


def sniff_bytes(data: bytes) -> str:
    """sniff_format for a file held in memory: only its first SNIFF_BYTES bytes are looked at."""
    head = bytes(data[:SNIFF_BYTES])
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if head[DICOM_MAGIC_OFFSET:SNIFF_BYTES] == b"DICM":
        return "dicom"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:2] == b"BM":
        return "bmp"
    return "other"


def check_file(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> Path:
    """Raise ImageReadError unless path is an existing, non-empty regular file of at most max_bytes."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    if not path.is_file():
        raise ImageReadError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise ImageReadError(f"{path}: file is empty (0 bytes)")
    if size > max_bytes:
        raise ImageReadError(f"{path}: file is {size / 1e6:,.0f} MB, over the limit of {max_bytes / 1e6:,.0f} MB for one image")
    return path


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return the image at path as a 2-D float32 array in [0, 1] (0 = black), fully decoded.

    Colour images are converted to luminance, alpha is composited on black, 16-bit images keep
    their precision, EXIF orientation is applied. DICOM goes through pydicom (covidxray.imaging.dicom).
    """
    return read_image_facts(path, max_pixels=max_pixels).image


def read_image_bytes(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """read_image for a file held in memory (an upload), never written to disk.

    Args:
        data: the file's bytes.
        name: the file's name, for its suffix and messages.
        max_pixels: the most pixels accepted.

    Returns:
        2-D float32 greyscale in [0, 1].
    """
    return read_image_facts(data, name, max_pixels=max_pixels).image


def read_image_facts(source: str | Path | bytes, name: str | None = None, max_pixels: int = MAX_PIXELS) -> ReadImage:
    """Decode a file with what the gate needs to know: the image, its Modality and colour.

    A path is checked for size before anything is read; bytes are checked for size too.

    Args:
        source: a path, or the file's bytes.
        name: the file's name for bytes (suffix and messages).
        max_pixels: the most pixels accepted.

    Returns:
        ReadImage.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "upload"
        if len(source) == 0:
            raise ImageReadError(f"{label}: file is empty (0 bytes)")
        if len(source) > MAX_FILE_BYTES:
            raise ImageReadError(f"{label}: file is {len(source) / 1e6:,.0f} MB, over the limit of {MAX_FILE_BYTES / 1e6:,.0f} MB for one image")
        kind = sniff_bytes(source)
        handle: Path | NamedBytes = NamedBytes(bytes(source), label)
        suffix = Path(label).suffix.lower()
    else:
        handle = check_file(source)
        kind = sniff_format(handle)
        suffix = handle.suffix.lower()
    if kind == "dicom" or (kind == "other" and suffix in DICOM_SUFFIXES):
        from covidxray.imaging.dicom import read_dicom_facts

        return read_dicom_facts(handle, max_pixels=max_pixels)
    return _read_raster(handle, kind, max_pixels)


#: Bytes per pixel that Pillow keeps for each mode (RGB and LA are stored in 4 bytes).
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


def _open_raster(path: Path | NamedBytes, kind: str, max_pixels: int) -> Image.Image:
    suffix = Path(str(path)).suffix.lower()
    if kind == "other" and suffix in {".png", ".jpg", ".jpeg", ".jpe"}:
        expected = "PNG" if suffix == ".png" else "JPEG"
        raise ImageReadError(f"{path}: named {suffix} but its content is not a {expected} image")
    try:
        with quiet_decoders():  # Pillow's own bomb warning names no file; ours below does
            image = Image.open(path, formats=PILLOW_FORMATS)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file that covidxray can read (PNG, JPEG, DICOM, BMP, TIFF, GIF, WebP)") from None
    except Image.DecompressionBombError as exc:  # Pillow's guard, on before ours for the largest claims
        size = _header_size(path)
        count = next((int(word.strip("(")) for word in str(exc).split() if word.strip("(").isdigit()), 0)
        claimed = f"{size[0]}x{size[1]}" if size else f"{count:,}"
        raise ImageReadError(f"{path}: image is {claimed} pixels, over the limit of {max_pixels:,} "
                             "(refused before decoding: possible decompression bomb)") from None
    except (OSError, ValueError, SyntaxError, struct.error) as exc:
        raise ImageReadError(f"{path}: cannot open image ({exc})") from None
    width, height = image.size
    try:
        check_decode_size(path, width, height, _MODE_BYTES.get(image.mode, 4), max_pixels)
        if _orientation(image) not in (0, 1):  # turning it upright takes a second copy
            check_decode_size(path, width, height, _MODE_BYTES.get(image.mode, 4), max_pixels, copies=2)
    except ImageReadError:
        image.close()
        raise
    return image


def _header_size(path: Path | NamedBytes) -> tuple[int, int] | None:
    """(width, height) that a PNG or JPEG header claims, read from its first bytes; None otherwise."""
    from covidxray.imaging.dicom import frame_size

    if isinstance(path, NamedBytes):
        head = path.getvalue()[: 1 << 16]
    else:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    if head.startswith(PNG_MAGIC) and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    return frame_size(head) if head.startswith(JPEG_MAGIC) else None


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1 = upright). For PNG only an eXIf chunk before the pixels is looked at:
    Pillow's getexif() would decode the whole image to look for one after them."""
    try:
        if image.format == "PNG":
            raw = image.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            return int(exif.get(0x0112, 1) or 1)
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        return 1


def _read_raster(path: Path | NamedBytes, kind: str, max_pixels: int) -> ReadImage:
    with _open_raster(path, kind, max_pixels) as image:
        try:
            image.load()
            upright = ImageOps.exif_transpose(image) if _orientation(image) not in (0, 1) else image
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            reason = "truncated or corrupt image data" if "truncated" in str(exc) else f"cannot decode ({exc})"
            raise ImageReadError(f"{path}: {reason}") from None
        colour, spread = colour_of(upright)
        return ReadImage(to_grey_float(upright), kind, None, colour, spread)


def colour_of(image: Image.Image) -> tuple[float, float]:
    """(colourfulness, hue_spread) of a decoded Pillow image, measured on a <= COLOUR_SIDE px copy."""
    if image.mode in {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        return 0.0, 0.0
    scale = min(1.0, COLOUR_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if scale < 1:
        smooth = image.mode in {"RGB", "RGBA", "RGBX", "RGBa"}
        image = image.resize(size, Image.Resampling.BOX if smooth else Image.Resampling.NEAREST)
    return colour_measures(np.asarray(image.convert("RGB"), np.float32) / 255.0)


def to_grey_float(image: Image.Image) -> np.ndarray:
    """Convert any PIL mode (1, L, P, RGB, RGBA, LA, I;16, I, F, ...) to float32 luminance in [0, 1].

    Alpha is composited on black, the background of a radiograph. Works in place where it can,
    so memory stays within decode_budget.
    """
    mode = image.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N"}:
        array = np.asarray(image).astype(np.float32)
        array *= 1.0 / 65535.0
        return array
    if mode == "I":
        array = np.asarray(image).astype(np.float32)
        array *= 1.0 / (65535.0 if array.max(initial=0) > 255 else 255.0)
        return np.clip(array, 0.0, 1.0, out=array)
    if mode == "F":
        array = np.asarray(image).astype(np.float32)
        low, high = float(array.min()), float(array.max())
        if high <= low:
            return np.zeros_like(array)
        array -= low
        array *= 1.0 / (high - low)
        return array
    if mode == "P" and ("transparency" in image.info or image.palette.mode == "RGBA"):
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in {"RGBA", "LA", "PA", "La", "RGBa"}:
        alpha = np.asarray(image.getchannel("A"))
        array = np.asarray(image.convert("L")).astype(np.float32)
        array *= alpha
        array *= 1.0 / (255.0 * 255.0)
        return array
    grey = image if mode == "L" else image.convert("L")  # ITU-R 601 luma
    array = np.asarray(grey).astype(np.float32)
    array *= 1.0 / 255.0
    return array


def read_thumbnail(path: str | Path, size: int = 64, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A size x size float greyscale thumbnail, decoded at reduced scale where JPEG allows.

    Same checks as read_image; used where only a small picture is needed (fingerprints), where
    decoding the full image would waste most of the time.

    Args:
        path: the image file.
        size: side of the thumbnail.
        max_pixels: the most pixels accepted.

    Returns:
        (size, size) float32 in [0, 1].
    """
    path = check_file(path)
    kind = sniff_format(path)
    if kind == "dicom" or (kind == "other" and path.suffix.lower() in DICOM_SUFFIXES):
        full = read_image(path, max_pixels)
        return to_grey_float(grey_picture(full).resize((size, size), Image.Resampling.BOX))
    with _open_raster(path, kind, max_pixels) as image:
        try:
            if kind == "jpeg":
                image.draft("L", (size * 2, size * 2))
            image.load()
            upright = ImageOps.exif_transpose(image) if _orientation(image) not in (0, 1) else image
            grey = grey_picture(to_grey_float(upright))
            return to_grey_float(grey.resize((size, size), Image.Resampling.BOX))
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            reason = "truncated or corrupt image data" if "truncated" in str(exc) else f"cannot decode ({exc})"
            raise ImageReadError(f"{path}: {reason}") from None


def grey_picture(image: np.ndarray) -> Image.Image:
    """An 8-bit Pillow picture of a [0, 1] float image (rounded), without a float temporary."""
    scaled = np.multiply(image, 255.0, dtype=np.float32)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    np.rint(scaled, out=scaled)
    return Image.fromarray(scaled.astype(np.uint8))

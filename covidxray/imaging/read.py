"""Read PNG, JPEG and DICOM files into one float greyscale array in [0, 1], with clear errors.

Every command reads images through here, so limits (decompression bombs, empty or truncated
files, text named .jpg) are enforced once and each failure names the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from covidxray.errors import ImageReadError

#: Largest image we agree to decode (width x height). Radiographs are at most ~4300 x 4300;
#: anything far beyond is a decompression bomb or not a radiograph.
MAX_PIXELS = 50_000_000

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
DICOM_MAGIC_OFFSET = 128
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".bmp", ".tif", ".tiff"}


class NamedBytes(io.BytesIO):
    """An in-memory file that prints as its name, so errors about uploads name the upload."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name

    def __str__(self) -> str:
        return self.name

    __format__ = lambda self, spec: format(self.name, spec)  # noqa: E731


def sniff_format(path: Path) -> str:
    """Tell the real format from the first bytes: 'png', 'jpeg', 'dicom' or 'other'."""
    with open(path, "rb") as handle:
        return sniff_bytes(handle.read(DICOM_MAGIC_OFFSET + 4))


def sniff_bytes(head: bytes) -> str:
    """sniff_format for bytes already in memory."""
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    if len(head) >= DICOM_MAGIC_OFFSET + 4 and head[DICOM_MAGIC_OFFSET:] == b"DICM":
        return "dicom"
    return "other"


def check_file(path: str | Path) -> Path:
    """Raise ImageReadError unless path is an existing, non-empty regular file."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    if not path.is_file():
        raise ImageReadError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: file is empty (0 bytes)")
    return path


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return the image at path as a 2-D float32 array in [0, 1] (0 = black), fully decoded.

    Colour images are converted to luminance, alpha is composited on black, 16-bit images keep
    their precision. DICOM files go through pydicom (see covidxray.imaging.dicom).
    """
    path = check_file(path)
    kind = sniff_format(path)
    if kind == "dicom" or path.suffix.lower() in {".dcm", ".dicom"}:
        from covidxray.imaging.dicom import read_dicom

        return read_dicom(path, max_pixels=max_pixels)
    return _read_raster(path, kind, max_pixels)


def read_image_bytes(data: bytes, name: str = "upload", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """read_image for a file held in memory (an upload), never written to disk."""
    if not data:
        raise ImageReadError(f"{name}: file is empty (0 bytes)")
    kind = sniff_bytes(data[: DICOM_MAGIC_OFFSET + 4])
    if kind == "dicom" or name.lower().endswith((".dcm", ".dicom")):
        from covidxray.imaging.dicom import read_dicom

        return read_dicom(NamedBytes(data, name), max_pixels=max_pixels)
    return _read_raster(NamedBytes(data, name), kind, max_pixels)


def image_size(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the header alone, after the same checks as read_image."""
    path = check_file(path)
    with _open_raster(path, sniff_format(path), max_pixels) as image:
        return image.size


def _open_raster(path: Path | NamedBytes, kind: str, max_pixels: int) -> Image.Image:
    suffix = Path(str(path)).suffix.lower()
    if kind == "other" and suffix in {".png", ".jpg", ".jpeg"}:
        expected = "PNG" if suffix == ".png" else "JPEG"
        raise ImageReadError(f"{path}: named {suffix} but its content is not a {expected} image")
    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file that covidxray can read") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"{path}: cannot open image ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageReadError(
            f"{path}: image is {width}x{height} pixels, over the limit of {max_pixels:,} "
            "(refused before decoding: possible decompression bomb)"
        )
    if width < 2 or height < 2:
        image.close()
        raise ImageReadError(f"{path}: image is {width}x{height} pixels, too small to be a radiograph")
    return image


def _read_raster(path: Path | NamedBytes, kind: str, max_pixels: int) -> np.ndarray:
    # PIL's own bomb guard would warn or raise with a message naming no file; ours runs first.
    Image.MAX_IMAGE_PIXELS = None
    with _open_raster(path, kind, max_pixels) as image:
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            reason = "truncated or corrupt image data" if "truncated" in str(exc) else f"cannot decode ({exc})"
            raise ImageReadError(f"{path}: {reason}") from None
        return to_grey_float(image)


def to_grey_float(image: Image.Image) -> np.ndarray:
    """Convert any PIL mode (1, L, P, RGB, RGBA, LA, I;16, I, F) to float32 luminance in [0, 1]."""
    mode = image.mode
    if mode in {"I;16", "I;16B", "I;16L", "I;16N"}:
        return np.asarray(image, dtype=np.float32) / 65535.0
    if mode == "I":
        array = np.asarray(image, dtype=np.float32)
        top = 65535.0 if array.max(initial=0) > 255 else 255.0
        return np.clip(array / top, 0.0, 1.0)
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        low, high = float(array.min()), float(array.max())
        return (array - low) / (high - low) if high > low else np.zeros_like(array)
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in {"RGBA", "LA", "PA"}:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        rgb = rgba[..., :3] * alpha  # composite on black, the background of a radiograph
        return _luminance(rgb)
    if mode == "L":
        return np.asarray(image, dtype=np.float32) / 255.0
    return _luminance(np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the weights PIL uses for 'L', so RGB and greyscale copies agree."""
    grey = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return grey.astype(np.float32)


def read_thumbnail(path: str | Path, size: int = 64, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A size x size float greyscale thumbnail, decoded at reduced scale where JPEG allows.

    Same checks as read_image; used where only a small picture is needed (fingerprints), where
    decoding the full image would waste most of the time.
    """
    path = check_file(path)
    kind = sniff_format(path)
    if kind == "dicom" or path.suffix.lower() in {".dcm", ".dicom"}:
        full = read_image(path, max_pixels)
        image = Image.fromarray((full * 255).astype(np.uint8))
        return to_grey_float(image.resize((size, size), Image.Resampling.BOX))
    Image.MAX_IMAGE_PIXELS = None
    with _open_raster(path, kind, max_pixels) as image:
        try:
            if kind == "jpeg":
                image.draft("L", (size * 2, size * 2))
            image.load()
            small = image if image.mode in {"L", "RGB", "RGBA", "P", "LA"} else Image.fromarray(
                (to_grey_float(image) * 255).astype(np.uint8))
            grey = Image.fromarray((to_grey_float(small) * 255).round().astype(np.uint8))
            return to_grey_float(grey.resize((size, size), Image.Resampling.BOX))
        except (OSError, ValueError, SyntaxError) as exc:
            reason = "truncated or corrupt image data" if "truncated" in str(exc) else f"cannot decode ({exc})"
            raise ImageReadError(f"{path}: {reason}") from None

"""Small files that would take a great deal of memory or time to decode: the reader must refuse them cheaply.

Each writer builds its file in streamed pieces, so making the file costs little even when
decoding it would cost gigabytes. Used by tests/test_input_bombs.py and benchmarks/input_bombs.py.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np

GIB = 1 << 30
ROOT = Path(__file__).resolve().parents[1]

#: Reads one file in a fresh process as predict (route 'path') or the web service ('bytes') does and
#: prints JSON: peak memory above the baseline after imports (MB), seconds, the error ('' when read), the shape.
READ_IN_CHILD = r"""
import json, resource, sys, time
from covidxray.inference.predictor import read_bytes_input, read_input
path, route = sys.argv[1], sys.argv[2]
data = open(path, "rb").read() if route == "bytes" else None
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
shape = None
try:
    item = read_input(path) if route == "path" else read_bytes_input(data, path.rsplit("/", 1)[-1])
    outcome = item.error
    shape = None if item.image is None else list(item.image.shape)
except Exception as exc:
    outcome = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps({"mb": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024,
                  "s": time.perf_counter() - start, "outcome": outcome, "shape": shape}))
"""


def read_in_fresh_process(path: Path, route: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run READ_IN_CHILD on path from the repository root (so this tree's covidxray is read)."""
    return subprocess.run([sys.executable, "-c", READ_IN_CHILD, str(path), route], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def rgba_png_of_zeros(path: Path, width: int = 7000, height: int = 7000) -> Path:
    """A valid RGBA PNG of zeros, width x height (7000 x 7000: ~190 kB, 196 MB as RGBA, under 50 Mpx)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 4 * width)  # filter byte + pixels
    pieces = [compressor.compress(row) for _ in range(height)] + [compressor.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", b"".join(pieces))
                     + _png_chunk(b"IEND", b""))
    return path


def sparse_png(path: Path, size: int = GIB) -> Path:
    """A small valid PNG padded (sparsely, on disk) to size bytes: reading it whole costs size bytes."""
    from PIL import Image

    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(path)
    with open(path, "r+b") as handle:
        handle.truncate(size)
    return path


def constant_jpeg(width: int, height: int) -> bytes:
    """A valid baseline greyscale JPEG of mid grey, width x height, built without encoding pixels.

    Every 8x8 block of mid grey codes as DC difference 0 ('00') and end-of-block ('1010') with
    the standard Huffman tables, so the scan is one 3-byte pattern per 4 blocks: 20000 x 20000
    takes 4.7 MB on disk and 400 MB decoded.
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(buffer, format="JPEG", quality=75)
    small = buffer.getvalue()
    sof = small.index(b"\xff\xc0")
    header = bytearray(small[: small.index(b"\xff\xda")])
    header[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    sos_length = struct.unpack(">H", small[small.index(b"\xff\xda") + 2: small.index(b"\xff\xda") + 4])[0]
    sos = small[small.index(b"\xff\xda"): small.index(b"\xff\xda") + 2 + sos_length]
    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    groups, left = divmod(blocks, 4)
    bits = "001010" * left
    tail = int((bits + "1" * (-len(bits) % 8)) or "0", 2).to_bytes((len(bits) + 7) // 8, "big") if bits else b""
    return bytes(header) + sos + b"\x28\xa2\x8a" * groups + tail + b"\xff\xd9"


def dicom_with_lying_jpeg_frame(path: Path, header_side: int = 512, frame_side: int = 20000) -> Path:
    """A JPEG Baseline DICOM whose header says header_side^2 and whose one frame is frame_side^2."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    from dicom_factory import radiograph_dataset, save

    dataset = radiograph_dataset(np.zeros((header_side, header_side), np.uint8))
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.PixelData = encapsulate([constant_jpeg(frame_side, frame_side)])
    dataset["PixelData"].VR = "OB"
    dataset["PixelData"].is_undefined_length = True
    return save(dataset, path)


def deflated_dicom(path: Path, inflated: int = GIB, rows: int = 512, columns: int = 512) -> Path:
    """A Deflated Explicit VR Little Endian DICOM whose dataset inflates to about inflated bytes.

    The header is an ordinary 8-bit radiograph of rows x columns; the pixel data element is
    inflated bytes of zeros (~1 MB on disk for 1 GiB).
    """
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    from dicom_factory import radiograph_dataset

    dataset = radiograph_dataset(np.zeros((rows, columns), np.uint8))
    meta = dataset.file_meta
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    del dataset.PixelData
    meta_buffer = DicomBytesIO()
    meta_buffer.is_little_endian, meta_buffer.is_implicit_VR = True, False
    write_file_meta_info(meta_buffer, meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, dataset)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    pieces = [compressor.compress(body.getvalue() + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, inflated))]
    chunk = b"\x00" * (1 << 20)
    for _ in range(inflated // len(chunk)):
        pieces.append(compressor.compress(chunk))
    pieces.append(compressor.compress(b"\x00" * (inflated % len(chunk))) + compressor.flush())
    path.write_bytes(b"\x00" * 128 + b"DICM" + meta_buffer.getvalue() + b"".join(pieces))
    return path


def uncompressed_dicom_claiming(path: Path, rows: int, columns: int, frames: int = 1) -> Path:
    """A tiny native DICOM whose header claims rows x columns x frames (its pixel data is short)."""
    from dicom_factory import radiograph_dataset, save

    dataset = radiograph_dataset(np.zeros((4, 4), np.uint8))
    dataset.Rows, dataset.Columns = rows, columns
    if frames > 1:
        dataset.NumberOfFrames = frames
    return save(dataset, path)


BOMBS = {
    "deflated DICOM, 1 GiB inflated": lambda folder: deflated_dicom(folder / "deflated.dcm"),
    "DICOM 512x512, JPEG frame 20000x20000": lambda folder: dicom_with_lying_jpeg_frame(folder / "lying-frame.dcm"),
    "RGBA PNG 7000x7000 of zeros": lambda folder: rgba_png_of_zeros(folder / "rgba-zeros.png"),
    "sparse 1 GiB .png": lambda folder: sparse_png(folder / "sparse.png"),
    "JPEG 20000x20000 (4.7 MB)": lambda folder: _write(folder / "huge.jpg", constant_jpeg(20000, 20000)),
    "DICOM header 60000x60000": lambda folder: uncompressed_dicom_claiming(folder / "claims.dcm", 60000, 60000),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path

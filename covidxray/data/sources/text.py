"""Reading a dataset's text tables: UTF-8 (with or without a BOM) and UTF-16 with a BOM, else one clear error.

Spreadsheet programs save CSV as UTF-8 with a byte-order mark or as UTF-16; both are read. Any
other encoding is refused with the offending byte and where it is, never decoded into garbage.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from covidxray.errors import DatasetError

BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def text_encoding(head: bytes) -> str:
    """The codec of a file starting with head: from its byte-order mark, else utf-8."""
    for bom, name in BOMS:
        if head.startswith(bom):
            return name
    return "utf-8"


def read_text(path: Path) -> str:
    """The whole text of path (a table), DatasetError naming the file when it cannot be decoded."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    encoding = text_encoding(data[:4])
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        where = f"byte 0x{data[exc.start]:02x} at offset {exc.start}" if encoding == "utf-8" else exc.reason
        raise DatasetError(f"{path}: not {encoding.upper().replace('-SIG', '')} text ({where}); "
                           "save it as UTF-8 (UTF-8 with a BOM and UTF-16 are read too)") from None


def first_line(path: Path, limit: int = 65536) -> str:
    """The first line of a text file, decoded as read_text would ('' when it cannot be)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(limit)
    except OSError:
        return ""
    encoding = text_encoding(head[:4])
    text = head.decode(encoding, errors="ignore")
    return text.splitlines()[0] if text else ""

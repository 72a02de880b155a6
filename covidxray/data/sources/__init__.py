"""One reader per native dataset layout, all with the same small interface.

A reader is a module with `LAYOUT` (its name), `detect(root) -> bool` and
`read(root) -> list[dict]` (manifest rows, see covidxray.data.schema). Adding a layout is adding
one module here and one line to READERS.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from covidxray.data.sources import cohen, csv_table, darkcovidnet, folder_per_class, radiography
from covidxray.errors import DatasetError

#: Tried in this order when the layout is not named; the generic folder reader comes last.
READERS: dict[str, ModuleType] = {
    module.LAYOUT: module for module in (csv_table, cohen, darkcovidnet, radiography, folder_per_class)
}


def detect_layout(root: Path) -> str:
    """Name of the first reader that recognises root, or a DatasetError saying what was looked for."""
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder")
    for name, reader in READERS.items():
        if reader.detect(root):
            return name
    raise DatasetError(
        f"{root}: no known dataset layout (looked for a metadata.csv, class folders such as "
        "COVID/Normal/Pneumonia, or a CSV with path and label columns); name one with --layout "
        f"({', '.join(READERS)})"
    )


def read_source(root: Path, layout: str | None = None) -> list[dict]:
    """Manifest rows for one dataset folder (or CSV), its layout detected unless named."""
    root = Path(root)
    name = layout or detect_layout(root)
    if name not in READERS:
        raise DatasetError(f"unknown layout '{name}'; known layouts: {', '.join(READERS)}")
    rows = READERS[name].read(root)
    if not rows:
        raise DatasetError(f"{root}: no images found for layout '{name}'")
    return rows

"""One reader per native dataset layout, all with the same small interface.

A reader is a module with `LAYOUT` (its name), `detect(root) -> bool` and
`read(root) -> list[dict]` (manifest rows, see covidxray.data.schema). Adding a layout is adding
one module here and one line to READERS.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from covidxray.data.sources import cohen, csv_table, darkcovidnet, folder_per_class, radiography, siim
from covidxray.data.sources.paths import exclude_outside
from covidxray.errors import DatasetError

#: Tried in this order when the layout is not named; the generic folder reader comes last.
READERS: dict[str, ModuleType] = {
    module.LAYOUT: module for module in (csv_table, cohen, siim, darkcovidnet, radiography, folder_per_class)
}


def detect_layout(root: Path) -> str:
    """Name of the first reader that recognises root, or a DatasetError saying what was looked for."""
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder")
    for name, reader in READERS.items():
        if reader.detect(root):
            return name
    raise DatasetError(
        f"{root}: no known dataset layout (looked for a metadata.csv, SIIM's "
        "train_study_level.csv and train_image_level.csv, class folders such as COVID/Normal/Pneumonia, "
        "or a CSV with path and label columns); name one with --layout "
        f"({', '.join(READERS)})"
    )


def read_source(root: Path, layout: str | None = None, siim_uncertain: bool = False,
                allow_outside_paths: bool = False) -> list[dict]:
    """Manifest rows for one dataset folder (or CSV), its layout detected unless named.

    siim_uncertain: keep SIIM's Indeterminate and Atypical grades as covid (default: excluded).
    Rows whose path lies outside the dataset folder (`../..`, `/etc/...`) get no label and the
    exclusion 'path outside the dataset folder'; allow_outside_paths keeps them, for a user's CSV only.
    """
    root = Path(root)
    name = layout or detect_layout(root)
    if name not in READERS:
        raise DatasetError(f"unknown layout '{name}'; known layouts: {', '.join(READERS)}")
    rows = siim.read(root, include_uncertain=siim_uncertain) if name == siim.LAYOUT else READERS[name].read(root)
    if not rows:
        raise DatasetError(f"{root}: no images found for layout '{name}'")
    return exclude_outside(rows, root, allow_outside=allow_outside_paths and name == csv_table.LAYOUT)

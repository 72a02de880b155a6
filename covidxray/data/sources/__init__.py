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

#: The user's own layouts: a CSV or a folder per class that the user wrote and named on the command
#: line. Their paths are the user's choice (absolute, or relative to the CSV's folder) and are read
#: as written; the escape guard (covidxray.data.sources.paths) is for the metadata files of the
#: public collections the other readers recognise, which came from elsewhere.
USER_LAYOUTS = frozenset({csv_table.LAYOUT, folder_per_class.LAYOUT})


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


def read_source(root: Path, layout: str | None = None, siim_uncertain: bool = False) -> list[dict]:
    """Manifest rows for one dataset folder (or CSV), its layout detected unless named.

    In a public collection's metadata (USER_LAYOUTS excepted), a row whose path lies outside the
    collection's folder (`../..`, `/etc/...`) gets no label and the exclusion 'path outside the
    dataset folder'. A user's CSV may list images anywhere: absolute paths, or paths relative to
    the CSV's own folder.

    Args:
        root: the dataset folder, or a CSV.
        layout: the layout's name (READERS); None detects it.
        siim_uncertain: keep SIIM's Indeterminate and Atypical grades as covid (default: excluded).

    Returns:
        One dict per image, manifest columns.
    """
    root = Path(root)
    name = layout or detect_layout(root)
    if name not in READERS:
        raise DatasetError(f"unknown layout '{name}'; known layouts: {', '.join(READERS)}")
    rows = siim.read(root, include_uncertain=siim_uncertain) if name == siim.LAYOUT else READERS[name].read(root)
    if not rows:
        raise DatasetError(f"{root}: no images found for layout '{name}'")
    return rows if name in USER_LAYOUTS else exclude_outside(rows, root)

"""The manifest's columns: one row per image, the same fields whatever the source layout.

Readers fill what their source knows and leave the rest empty, so that merging and filtering
sources is one line of pandas.
"""

from __future__ import annotations

import pandas as pd

MANIFEST_COLUMNS = [
    "path",              # absolute path of the image file
    "source",            # dataset name, e.g. covid-chestxray-dataset
    "patient_id",        # source-prefixed, e.g. cohen:123; empty when the source has none
    "finding",           # as the source wrote it (finding text or class folder)
    "label",             # covid / pneumonia / normal, or empty when unusable
    "exclusion",         # why label is empty
    "view",              # PA, AP, AP Supine, L, ... ; 'frontal' when only that is known
    "modality",          # X-ray, CT
    "sex",
    "age",
    "survival",
    "location",
    "date",
    "license",
    "severity_extent",   # geographic extent 0-8, mean of radiologists, where scored
    "severity_opacity",  # opacity 0-6
    "lung_mask",         # path of a binary lung mask, where the source has one
]

FRONTAL_VIEWS = {"PA", "AP", "AP SUPINE", "AP ERECT", "FRONTAL", "AP UPRIGHT"}


def empty_row() -> dict[str, str]:
    return {column: "" for column in MANIFEST_COLUMNS}


def as_manifest(rows: list[dict]) -> pd.DataFrame:
    """Build a manifest DataFrame from reader rows, every column present, as strings."""
    frame = pd.DataFrame(rows)
    for column in MANIFEST_COLUMNS:
        if column not in frame:
            frame[column] = ""
    extra = [column for column in frame.columns if column not in MANIFEST_COLUMNS]
    return frame[MANIFEST_COLUMNS + extra].fillna("").astype(str)


def read_table(path) -> pd.DataFrame:
    """Read a manifest or split CSV, every cell a string (empty, not NaN).

    covidxray writes absolute paths; a hand-made table's relative `path` or `lung_mask` is taken from
    the table's own folder, as a user's CSV source is (never from the working directory).
    """
    import os
    from pathlib import Path

    from covidxray.errors import DatasetError

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: table not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable CSV table ({exc})") from None
    missing = [column for column in ("path", "source", "label") if column not in frame]
    if missing:
        raise DatasetError(f"{path}: not a covidxray manifest, missing column(s) {', '.join(missing)}")
    folder = os.path.dirname(os.path.abspath(path))
    for column in ("path", "lung_mask"):
        if column in frame:
            frame[column] = [value if not value or os.path.isabs(value) else os.path.join(folder, value)
                             for value in frame[column]]
    return frame


def is_frontal(view: str) -> bool:
    return view.strip().upper() in FRONTAL_VIEWS


def with_manifest_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """frame with every manifest column present (missing ones empty), so a hand-made table of
    only path, source and label can go through any step."""
    missing = [column for column in MANIFEST_COLUMNS if column not in frame]
    if not missing:
        return frame
    frame = frame.copy()
    for column in missing:
        frame[column] = ""
    return frame

"""Keep the images a public collection's metadata lists inside that collection's folder.

A downloaded metadata.csv can name any path (`../../etc/passwd`, `/etc/hostname`, a folder
`../../root`); such rows keep their place in the manifest, with no label and the exclusion
OUTSIDE_DATASET, so that no later step reads or copies them. Paths are compared after `..` is
resolved but without following symlinks: a dataset folder may hold links to its own images.
A user's own CSV or folder is not guarded: its paths are the user's (covidxray.data.sources.USER_LAYOUTS).
"""

from __future__ import annotations

import os
from pathlib import Path

OUTSIDE_DATASET = "path outside the dataset folder"


def dataset_folder(root: Path) -> Path:
    """The folder a source's paths must stay in: root itself, or the folder of a CSV root."""
    root = Path(os.path.abspath(root))
    return root.parent if root.is_file() else root


def is_inside(path: str, folder: Path) -> bool:
    """True when path, made absolute and normalised (no symlinks followed), lies within folder."""
    if not path or "\x00" in path:
        return False
    normal = os.path.normpath(os.path.join(folder, path))
    base = os.path.normpath(folder)
    return normal == base or normal.startswith(base.rstrip(os.sep) + os.sep)


def exclude_outside(rows: list[dict], root: Path) -> list[dict]:
    """Keep every row's files inside its dataset, so no collection's table can make covidxray read elsewhere.

    Args:
        rows: manifest rows of one source.
        root: the dataset folder (or a table file, whose folder counts).

    Returns:
        rows, those whose path lies outside excluded with OUTSIDE_DATASET, lung masks outside dropped.
    """
    folders = {dataset_folder(root)}
    real = Path(os.path.realpath(root))  # readers resolve root; compare against both spellings
    folders.add(real.parent if real.is_file() else real)
    for row in rows:
        if row.get("lung_mask") and not any(is_inside(row["lung_mask"], f) for f in folders):
            row["lung_mask"] = ""
        if any(is_inside(row.get("path", ""), f) for f in folders):
            continue
        row["label"], row["exclusion"] = "", OUTSIDE_DATASET
    return rows

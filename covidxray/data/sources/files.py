"""Finding image files in a folder tree: sorted, hidden files skipped, images only."""

from __future__ import annotations

import os
from pathlib import Path

from covidxray.imaging.read import IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """Every image file below folder (recursive), sorted so that manifests are deterministic."""
    found = []
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        found.extend(
            Path(directory) / name
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES
        )
    return sorted(found)


def class_folders(root: Path) -> list[Path]:
    """The immediate sub-folders of root, sorted, hidden ones skipped."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

"""Build the manifest: every dataset folder read by its layout's reader into one table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from covidxray.data.schema import as_manifest
from covidxray.data.sources import READERS, detect_layout, read_source
from covidxray.errors import DatasetError


def expand_roots(roots: list[Path]) -> list[Path]:
    """Each root as given, or, for a folder holding several datasets, the datasets inside it."""
    expanded = []
    for root in map(Path, roots):
        if not root.is_dir() or any(reader.detect(root) for reader in READERS.values()):
            expanded.append(root)
            continue
        inner = [child for child in sorted(root.iterdir()) if child.is_dir() and any(r.detect(child) for r in READERS.values())]
        if not inner:
            detect_layout(root)  # raises the error that says what was looked for
        expanded.extend(inner)
    return expanded


def build_manifest(roots: list[Path], layouts: list[str] | None = None) -> pd.DataFrame:
    """One row per image listed by any of roots; layouts (one per root) override detection."""
    if not layouts:
        roots = expand_roots(roots)
    elif len(layouts) != len(roots):
        raise DatasetError(f"{len(layouts)} --layout given for {len(roots)} dataset folders; give one per folder or none")
    rows: list[dict] = []
    for index, root in enumerate(roots):
        layout = layouts[index] if layouts else None
        rows.extend(read_source(Path(root), layout))
    manifest = as_manifest(rows)
    return manifest.drop_duplicates(subset="path", keep="first").reset_index(drop=True)


def label_counts(manifest: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Images per group (default: source) and label, 'excluded' for rows without a label."""
    by = by or ["source"]
    labels = manifest["label"].where(manifest["label"] != "", "excluded")
    table = pd.crosstab([manifest[c] for c in by], labels)
    table["total"] = table.sum(axis=1)
    return table

"""Build the manifest: every dataset folder read by its layout's reader into one table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from covidxray.data.schema import as_manifest
from covidxray.data.sources import READERS, detect_layout, read_source
from covidxray.errors import DatasetError


@dataclass
class RootScan:
    """The dataset folders found under the roots given, and the sub-folders passed over, with why."""

    datasets: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _recognised(folder: Path) -> bool:
    return any(reader.detect(folder) for reader in READERS.values())


def scan_roots(roots: list[Path]) -> RootScan:
    """Each root as given, or, for a folder holding several datasets, the datasets inside it.

    A sub-folder of such a folder whose layout is unknown is named in `skipped`, never dropped
    without a word (a new collection in an unexpected layout would otherwise vanish).
    """
    scan = RootScan()
    for root in map(Path, roots):
        if not root.is_dir() or _recognised(root):
            scan.datasets.append(root)
            continue
        children = [child for child in sorted(root.iterdir()) if child.is_dir() and not child.name.startswith(".")]
        inner = [child for child in children if _recognised(child)]
        if not inner:
            detect_layout(root)  # raises the error that says what was looked for
        scan.datasets.extend(inner)
        scan.skipped.extend((child, "no known dataset layout inside (see `covidxray data manifest --help`)")
                            for child in children if child not in inner)
    return scan


def expand_roots(roots: list[Path]) -> list[Path]:
    """The dataset folders of scan_roots (the skipped ones dropped)."""
    return scan_roots(roots).datasets


def build_manifest(roots: list[Path], layouts: list[str] | None = None, siim_uncertain: bool = False) -> pd.DataFrame:
    """One row per image listed by any of roots.

    Args:
        roots: dataset folders, CSV tables, or folders holding several datasets (searched one level).
        layouts: one layout per root, overriding detection.
        siim_uncertain: keep SIIM's Indeterminate and Atypical grades, as covid.

    Returns:
        The manifest (covidxray.data.schema columns), one row per distinct path.
    """
    if not layouts:
        roots = expand_roots(roots)
    elif len(layouts) != len(roots):
        raise DatasetError(f"{len(layouts)} --layout given for {len(roots)} dataset folders; give one per folder or none")
    rows: list[dict] = []
    for index, root in enumerate(roots):
        layout = layouts[index] if layouts else None
        rows.extend(read_source(Path(root), layout, siim_uncertain))
    manifest = as_manifest(rows)
    return manifest.drop_duplicates(subset="path", keep="first").reset_index(drop=True)


def read_datasets(roots: list[Path], layouts: list[str] | None = None,
                  siim_uncertain: bool = False) -> tuple[pd.DataFrame, list[tuple[Path, str]]]:
    """build_manifest, with every sub-folder it passed over and why (scan_roots), so none vanishes unsaid.

    Args:
        roots: dataset folders, CSV tables, or folders holding several datasets.
        layouts: one layout per root, overriding detection (then no folder is searched).
        siim_uncertain: keep SIIM's Indeterminate and Atypical grades, as covid.

    Returns:
        (the manifest, [(sub-folder skipped, why)]).
    """
    skipped: list[tuple[Path, str]] = []
    if not layouts:
        scan = scan_roots(roots)
        roots, skipped = scan.datasets, scan.skipped
    return build_manifest(roots, layouts, siim_uncertain), skipped


def count_tables(manifest: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The counts a person reads after building a manifest, each with its title: images per source
    and label, per grade where a source grades, and why rows have no label."""
    from covidxray.data.conflicts import GRADED_SOURCES

    tables = [("images per source and label (excluded = no usable label)", label_counts(manifest))]
    graded = manifest[manifest["source"].isin(GRADED_SOURCES)]
    if len(graded):
        tables.append(("graded sources: images per grade and label", label_counts(graded, ["source", "finding"])))
    reasons = manifest.loc[manifest["label"] == "", "exclusion"].value_counts()
    if len(reasons):
        tables.append(("why images have no label", reasons.to_frame("images")))
    return tables


def label_counts(manifest: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Images per group (default: source) and label, 'excluded' for rows without a label."""
    by = by or ["source"]
    labels = manifest["label"].where(manifest["label"] != "", "excluded")
    table = pd.crosstab([manifest[c] for c in by], labels)
    table["total"] = table.sum(axis=1)
    return table

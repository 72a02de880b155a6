"""The seed study's segregation step: copy the images of one finding and view into a folder.

Copies only (the source is never touched), refuses to write into a source folder or over an
existing file, and writes a manifest of what was copied beside the images.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pandas as pd

from covidxray.data.schema import is_frontal, with_manifest_columns
from covidxray.data.sources.paths import OUTSIDE_DATASET
from covidxray.errors import CovidxrayError
from covidxray.paths.outputs import check_output, manifest_guard


def matches_finding(finding: str, label: str, wanted: str) -> bool:
    """True when wanted names the finding (flat or any part of a path-style one) or the label.

    Args:
        finding: the row's finding as written.
        label: the row's label.
        wanted: what the user asked for (a finding or a label, any case).

    Returns:
        Whether the row matches.
    """
    wanted = wanted.strip().lower()
    parts = {p.strip().lower() for p in finding.replace(",", "/").split("/")}
    return wanted in parts or wanted == finding.strip().lower() or wanted == label.lower()


def matches_view(view: str, wanted: str) -> bool:
    """Exact view (PA, AP, L, ...) or 'frontal' for any frontal view."""
    wanted = wanted.strip().lower()
    return view.strip().lower() == wanted or (wanted == "frontal" and is_frontal(view))


def select_images(manifest: pd.DataFrame, finding: str, view: str | None, out_dir: Path) -> pd.DataFrame:
    """Copy the images of one finding and view into a folder, with a manifest of the copies.

    Rows excluded for a path outside their dataset folder are never copied; a manifest with only
    path, source and label is enough (missing columns count as empty).

    Args:
        manifest: the rows to choose from.
        finding: a finding as written or a label.
        view: a view (PA, AP, L, ...) or 'frontal'; None for any.
        out_dir: the folder to copy into (created; never overwritten).

    Returns:
        The manifest rows of the copies (path = the copy).
    """
    manifest = with_manifest_columns(manifest)
    out_dir = Path(out_dir)
    roots, _ = manifest_guard(manifest)
    check_output(out_dir, roots, what="selection")  # before anything is written
    chosen = manifest[[matches_finding(f, l, finding) for f, l in zip(manifest["finding"], manifest["label"])]]
    chosen = chosen[chosen["exclusion"] != OUTSIDE_DATASET]
    if view:
        chosen = chosen[[matches_view(v, view) for v in chosen["view"]]]
    chosen = chosen[[_regular_file(p) for p in chosen["path"]]]
    if chosen.empty:
        raise CovidxrayError(f"no existing image has finding '{finding}'" + (f" and view '{view}'" if view else ""))
    out_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    names = chosen["path"].map(lambda p: Path(p).name)
    clash = names.duplicated(keep=False)
    for (_, row), name, clashes in zip(chosen.iterrows(), names, clash):
        target = out_dir / (f"{row['source']}__{name}" if clashes else name)
        if target.exists() or target.is_symlink():
            raise CovidxrayError(f"{target}: already exists; covidxray never overwrites files, choose an empty folder")
        try:
            shutil.copy2(row["path"], target)
        except OSError as exc:
            raise CovidxrayError(f"{row['path']}: cannot copy it ({exc.strerror or exc})") from None
        record = row.to_dict()
        record["original_path"], record["path"] = row["path"], str(target)
        copied.append(record)
    result = pd.DataFrame(copied)
    result.to_csv(out_dir / "selected.csv", index=False)
    return result


def _regular_file(path: str) -> bool:
    """True for an existing regular file (a symlink to one counts); False for loops, folders, devices."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False

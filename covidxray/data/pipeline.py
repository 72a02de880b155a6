"""The data pipelines as functions: prepare (the whole pipeline, `covidxray data prepare`) and split_manifest.

Each reads the sources only, checks every output before it writes, and returns what it wrote and
counted; the commands in covidxray.data.command only print it. Long steps (verify, dedupe) show
their progress bars on stderr as they go.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import pandas as pd

    from covidxray.data.split import SplitSettings

__all__ = ["PreparedData", "SplitOutcome", "WrittenTable", "prepare", "split_manifest"]


@dataclass(frozen=True)
class WrittenTable:
    """One CSV a pipeline wrote: what it is, where, and how many rows."""

    what: str
    path: Path
    rows: int


@dataclass(frozen=True)
class PreparedData:
    """What prepare wrote and counted.

    The paths are in out (grade_conflicts and split_loso are None when not written); images are the
    manifest's rows, kept those clean kept, conflicts the copies excluded because a radiologist's
    grade outranks their label. written lists every table in the order written; tables holds the
    counts a person reads, each with its title, in pipeline order; skipped the sub-folders of a
    folder of datasets that hold no known layout, with why; notes what the split could not do
    (a part without a class, from too few patients).
    """

    out: Path
    manifest: Path
    charts: Path
    verify_report: Path
    clean: Path
    duplicate_clusters: Path
    duplicate_pairs: Path
    grade_conflicts: Path | None
    split: Path
    split_loso: Path | None
    images: int
    kept: int
    conflicts: int
    written: tuple[WrittenTable, ...]
    tables: tuple[tuple[str, "pd.DataFrame"], ...]
    skipped: tuple[tuple[Path, str], ...]
    seconds: float
    notes: tuple[str, ...] = ()


def prepare(roots: Sequence[str | Path], out: str | Path = "prepared", holdout: Sequence[str] | None = None,
            seed: int = 0, siim_uncertain: bool = False, workers: int | None = None) -> PreparedData:
    """The whole data pipeline: manifest, charts, verify, clean, dedupe (grades outrank folder labels), split.

    Args:
        roots: dataset folders in their native layouts, a CSV with path,label columns, or a folder holding several.
        out: folder for every table and chart; never inside a dataset.
        holdout: also write split-loso.csv, holding these sources out entirely as `external`.
        seed: seed of the split; the same seed gives the same split.
        siim_uncertain: keep SIIM's Indeterminate and Atypical grades, as covid (default: excluded).
        workers: processes for verify and dedupe (default: all cores, up to 8).

    Returns:
        PreparedData: the paths written and the counts. A step that keeps almost nothing stops
        with a DatasetError naming the input and the commonest reasons.
    """
    from covidxray.data.charts import HTML_NAME, make_charts
    from covidxray.data.clean import check_kept, clean_manifest
    from covidxray.data.conflicts import prefer_graded_copies
    from covidxray.data.dedupe import cluster_summary, find_duplicates
    from covidxray.data.manifest import count_tables, read_datasets
    from covidxray.data.split import SplitSettings, assign_splits, split_counts, split_gaps
    from covidxray.data.tables import guard_outputs, write_table
    from covidxray.data.verify import verify_manifest

    started = time.perf_counter()
    roots, out = [Path(root) for root in roots], Path(out)
    guard_outputs(None, roots, (out, "prepared folder"))
    manifest, skipped = read_datasets(roots, None, siim_uncertain)
    guard_outputs(manifest, roots, (out, "prepared folder"))
    out.mkdir(parents=True, exist_ok=True)
    written: list[WrittenTable] = []
    tables: list[tuple[str, pd.DataFrame]] = []

    def write(frame: pd.DataFrame, name: str, what: str) -> Path:
        path = out / name
        written.append(WrittenTable(what, path, write_table(frame, path, what)))
        return path

    write(manifest, "manifest.csv", "manifest")
    tables += count_tables(manifest)
    make_charts(manifest, out / "charts")
    report, verified = verify_manifest(manifest, workers)
    write(report, "verify-report.csv", "verification report")
    kept, dropped = clean_manifest(verified)
    tables.append((f"clean: {len(verified)} rows read, {len(kept)} kept", dropped.to_frame("rows dropped")))
    check_kept(len(verified), len(kept), dropped, ", ".join(map(str, roots)))
    write(kept, "clean.csv", "clean manifest")
    deduped, pairs = find_duplicates(kept, workers=workers)
    write(cluster_summary(deduped), "duplicate-clusters.csv", "duplicate clusters")
    write(pairs, "duplicate-pairs.csv", "duplicate pairs")
    across = pairs[pairs["source_a"] != pairs["source_b"]]
    if len(across):
        tables.append(("duplicate pairs across collections", across.groupby(["source_a", "source_b"]).size().to_frame("pairs")))
    deduped, conflicts = prefer_graded_copies(deduped)
    conflicts_path = None
    if len(conflicts):
        conflicts_path = write(conflicts, "grade-conflicts.csv", "grade conflicts")
        tables.append(("copies whose label conflicts with a radiologist's grade (the grade is kept)",
                       conflicts.groupby(["other_source", "other_label", "grade"]).size().to_frame("copies excluded")))
    split = assign_splits(deduped, SplitSettings(seed=seed))
    split_path = write(split, "split.csv", "split")
    tables.append(("images per split, source and label", split_counts(split)))
    loso_path = None
    if holdout:
        loso = assign_splits(deduped, SplitSettings(seed=seed), tuple(holdout))
        loso_path = write(loso, "split-loso.csv", "leave-one-source-out split")
        tables.append((f"leave-one-source-out split ({', '.join(holdout)} external)", split_counts(loso)))
    return PreparedData(
        out=out, manifest=out / "manifest.csv", charts=out / "charts" / HTML_NAME, verify_report=out / "verify-report.csv",
        clean=out / "clean.csv", duplicate_clusters=out / "duplicate-clusters.csv",
        duplicate_pairs=out / "duplicate-pairs.csv", grade_conflicts=conflicts_path, split=split_path,
        split_loso=loso_path, images=len(manifest), kept=len(kept), conflicts=len(conflicts), written=tuple(written),
        tables=tuple(tables), skipped=tuple(skipped), seconds=time.perf_counter() - started,
        notes=tuple(split_gaps(split)))


@dataclass(frozen=True)
class SplitOutcome:
    """What split_manifest made: the split table; whether duplicates had to be found first (the
    manifest had no dup_cluster column); how many copies a radiologist's grade excluded."""

    split: "pd.DataFrame"
    found_duplicates: bool
    conflicts: int


def split_manifest(table: "pd.DataFrame", settings: "SplitSettings | None" = None, holdout: Sequence[str] = (),
                   dedupe: bool = True, workers: int | None = None) -> SplitOutcome:
    """Split by patient (and duplicate cluster) into train/val/test, stratified by source and label.

    Args:
        table: a manifest, ideally from `data dedupe` (its dup_cluster column).
        settings: fractions and seed (default: SplitSettings(), 0.70/0.15/0.15, seed 0).
        holdout: sources left out entirely as `external` (their duplicates elsewhere `excluded`).
        dedupe: find duplicates first when the table has no dup_cluster column.
        workers: processes for finding duplicates.

    Returns:
        SplitOutcome, whose split is the table with group and split columns.
    """
    from covidxray.data.conflicts import prefer_graded_copies
    from covidxray.data.dedupe import find_duplicates
    from covidxray.data.split import SplitSettings, assign_splits

    found = "dup_cluster" not in table and dedupe
    if found:
        table, _ = find_duplicates(table, workers=workers)
    conflicts = 0
    if "dup_cluster" in table:
        table, excluded = prefer_graded_copies(table)
        conflicts = len(excluded)
    split = assign_splits(table, settings or SplitSettings(), tuple(holdout))
    return SplitOutcome(split, found, conflicts)

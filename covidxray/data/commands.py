"""`covidxray data ...`: the seed study's data steps as commands that only ever read the source."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from covidxray.errors import CovidxrayError

data_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)

ROOTS = typer.Argument(..., help="Dataset folders (or a CSV with path,label columns), or a folder holding several.")


def read_table(path: Path):
    """covidxray.data.schema.read_table, imported when needed (pandas is slow to import)."""
    from covidxray.data.schema import read_table as read

    return read(path)


def write_table(frame: "pd.DataFrame", path: Path, what: str) -> None:
    """Write a CSV, refusing to overwrite any image or table that a source lists."""
    from covidxray.console import console
    path = Path(path)
    if path.exists() and path.resolve().name == "metadata.csv":
        raise CovidxrayError(f"{path}: refusing to overwrite a dataset's metadata.csv")
    if "path" in frame and str(path.resolve()) in set(frame["path"]):
        raise CovidxrayError(f"{path}: refusing to overwrite a listed image")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    console.print(f"wrote {what}: {path} ({len(frame)} rows)")


@data_app.command("manifest")
def manifest_command(
    roots: list[Path] = ROOTS,
    out: Path = typer.Option(Path("manifest.csv"), "--out", "-o", help="Manifest CSV to write."),
    layout: Optional[list[str]] = typer.Option(None, "--layout", help="Layout of each ROOT, in order (default: detected). Known: covid-chestxray-dataset, darkcovidnet, covid19-radiography-database, folder, csv."),
) -> None:
    """Read each dataset in its native layout into one manifest: one row per image, with labels."""
    from covidxray.console import print_frame
    from covidxray.data.manifest import build_manifest, label_counts

    manifest = build_manifest(roots, layout)
    write_table(manifest, out, "manifest")
    print_frame(label_counts(manifest), "images per source and label (excluded = no usable label)")
    reasons = manifest.loc[manifest["label"] == "", "exclusion"].value_counts()
    if len(reasons):
        print_frame(reasons.to_frame("images"), "why images have no label")


@data_app.command("charts")
def charts_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV."),
    out: Path = typer.Option(Path("charts"), "--out", "-o", help="Folder for the PNG charts and charts.html."),
) -> None:
    """Chart the metadata: finding, label, age, sex, survival, view, modality, country, source."""
    from covidxray.console import console
    from covidxray.data.charts import make_charts

    page = make_charts(read_table(manifest), out)
    console.print(f"wrote charts: {page}")


@data_app.command("verify")
def verify_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV."),
    report: Path = typer.Option(Path("verify-report.csv"), "--report", help="CSV of path, status, reason."),
    out: Path = typer.Option(Path("verified.csv"), "--out", "-o", help="Manifest with status, reason, width, height."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
) -> None:
    """Open every listed image; report missing and unreadable files with the reason."""
    import pandas as pd
    from covidxray.console import print_frame
    from covidxray.data.verify import verify_manifest

    table, verified = verify_manifest(read_table(manifest), workers)
    write_table(table, report, "verification report")
    write_table(verified, out, "verified manifest")
    print_frame(pd.crosstab(verified["source"], verified["status"]), "images per source and status")
    bad = table[table["status"] != "ok"]
    if len(bad):
        print_frame(bad["reason"].value_counts().to_frame("images"), "problems found")


@data_app.command("clean")
def clean_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV (verified, or it is verified now)."),
    out: Path = typer.Option(Path("clean.csv"), "--out", "-o", help="Manifest of the rows that can serve."),
    keep_lateral: bool = typer.Option(False, "--keep-lateral", help="Keep lateral and unknown views."),
) -> None:
    """Drop rows with no usable label, not X-ray, not frontal, or a missing/unreadable image."""
    from covidxray.console import print_frame
    from covidxray.data.clean import clean_manifest
    from covidxray.data.verify import verify_manifest

    table = read_table(manifest)
    if "status" not in table:
        _, table = verify_manifest(table)
    kept, counts = clean_manifest(table, keep_lateral)
    print_frame(counts.to_frame("rows dropped"), f"{len(table)} rows read, {len(kept)} kept")
    write_table(kept, out, "clean manifest")


@data_app.command("select")
def select_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV."),
    finding: str = typer.Option(..., "--finding", help="Finding as written (COVID-19, Streptococcus, ...) or a label (covid, pneumonia, normal)."),
    view: Optional[str] = typer.Option(None, "--view", help="View (PA, AP, AP Supine, L) or 'frontal'."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to copy the images into (created; never overwritten)."),
) -> None:
    """Copy the images of one finding and view into a folder, with a manifest of the copies."""
    from covidxray.console import console
    from covidxray.data.select import select_images

    copied = select_images(read_table(manifest), finding, view, out)
    console.print(f"copied {len(copied)} images into {out}; list in {Path(out) / 'selected.csv'}")


@data_app.command("dedupe")
def dedupe_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV."),
    out: Path = typer.Option(Path("deduped.csv"), "--out", "-o", help="Manifest with a dup_cluster column."),
    clusters: Path = typer.Option(Path("duplicate-clusters.csv"), "--clusters", help="One row per cluster, with label conflicts."),
    pairs: Path = typer.Option(Path("duplicate-pairs.csv"), "--pairs", help="Every linked pair with its evidence."),
    max_hamming: int = typer.Option(8, "--max-hamming", help="Most differing bits of the 64-bit perceptual hash."),
    min_correlation: float = typer.Option(0.96, "--min-correlation", help="Least correlation of 16x16 thumbnails."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
) -> None:
    """Find the same radiograph under other names and sizes; report clusters and label conflicts."""
    from covidxray.console import console, print_frame
    from covidxray.data.dedupe import DedupeSettings, cluster_summary, find_duplicates

    settings = DedupeSettings(max_hamming=max_hamming, min_correlation=min_correlation)
    deduped, pair_table = find_duplicates(read_table(manifest), settings, workers)
    summary = cluster_summary(deduped)
    write_table(deduped, out, "manifest with duplicate clusters")
    write_table(summary, clusters, "duplicate clusters")
    write_table(pair_table, pairs, "duplicate pairs")
    if len(pair_table):
        across = pair_table.groupby(["source_a", "source_b"]).size().to_frame("pairs")
        print_frame(across, "duplicate pairs by sources")
    console.print(f"{len(summary)} clusters holding {int(summary['images'].sum()) if len(summary) else 0} images; "
                  f"{int(summary['label_conflict'].sum()) if len(summary) else 0} clusters with conflicting labels")


@data_app.command("split")
def split_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV, ideally from `data dedupe` (else duplicates are found now)."),
    out: Path = typer.Option(Path("split.csv"), "--out", "-o", help="Manifest with group and split columns."),
    seed: int = typer.Option(0, "--seed", help="Seed of the deal; the same seed gives the same split."),
    val: float = typer.Option(0.15, "--val", help="Fraction of images for validation."),
    test: float = typer.Option(0.15, "--test", help="Fraction of images for test."),
    holdout: Optional[list[str]] = typer.Option(None, "--holdout", help="Leave this source out as 'external' (repeatable)."),
    dedupe: bool = typer.Option(True, "--dedupe/--no-dedupe", help="Find duplicates first when the manifest has no dup_cluster column."),
) -> None:
    """Split by patient (and duplicate cluster) into train/val/test, stratified by source and label."""
    from covidxray.console import console, print_frame
    from covidxray.data.dedupe import find_duplicates
    from covidxray.data.split import SplitSettings, assign_splits, split_counts

    table = read_table(manifest)
    if "dup_cluster" not in table and dedupe:
        console.print("no dup_cluster column: finding duplicates first (run `covidxray data dedupe` to keep them)")
        table, _ = find_duplicates(table)
    settings = SplitSettings(train=1.0 - val - test, val=val, test=test, seed=seed)
    result = assign_splits(table, settings, tuple(holdout or ()))
    write_table(result, out, "split")
    print_frame(split_counts(result), "images per split, source and label")


@data_app.command("prepare")
def prepare_command(
    roots: list[Path] = ROOTS,
    out: Path = typer.Option(Path("prepared"), "--out", "-o", help="Folder for every table and chart."),
    seed: int = typer.Option(0, "--seed"),
    holdout: Optional[str] = typer.Option(None, "--holdout", help="Also write split-loso.csv holding this source out."),
) -> None:
    """Run the whole data pipeline: manifest, charts, verify, clean, dedupe, split."""
    from covidxray.console import console, print_frame
    from covidxray.data.charts import make_charts
    from covidxray.data.clean import clean_manifest
    from covidxray.data.dedupe import cluster_summary, find_duplicates
    from covidxray.data.manifest import build_manifest, label_counts
    from covidxray.data.split import SplitSettings, assign_splits, split_counts
    from covidxray.data.verify import verify_manifest

    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    manifest = build_manifest(roots)
    write_table(manifest, out / "manifest.csv", "manifest")
    print_frame(label_counts(manifest), "images per source and label (excluded = no usable label)")
    make_charts(manifest, out / "charts")
    report, verified = verify_manifest(manifest)
    write_table(report, out / "verify-report.csv", "verification report")
    kept, dropped = clean_manifest(verified)
    print_frame(dropped.to_frame("rows dropped"), f"clean: {len(verified)} rows read, {len(kept)} kept")
    write_table(kept, out / "clean.csv", "clean manifest")
    deduped, pairs = find_duplicates(kept)
    write_table(cluster_summary(deduped), out / "duplicate-clusters.csv", "duplicate clusters")
    write_table(pairs, out / "duplicate-pairs.csv", "duplicate pairs")
    split = assign_splits(deduped, SplitSettings(seed=seed))
    write_table(split, out / "split.csv", "split")
    print_frame(split_counts(split), "images per split, source and label")
    if holdout:
        loso = assign_splits(deduped, SplitSettings(seed=seed), (holdout,))
        write_table(loso, out / "split-loso.csv", "leave-one-source-out split")
        print_frame(split_counts(loso), f"leave-one-source-out split ({holdout} external)")
    console.print(f"data pipeline done in {time.perf_counter() - started:.1f} s; charts in {out / 'charts' / 'charts.html'}")


@data_app.command("pack")
def pack_command(
    splits: list[Path] = typer.Argument(..., help="Split CSV(s); the images of their chosen parts go into one pack."),
    out: Path = typer.Option(..., "--out", "-o", help="Pack file to write (.npz)."),
    parts: Optional[list[str]] = typer.Option(None, "--part", help="Split parts to pack (repeatable; default: train and val)."),
    max_side: int = typer.Option(256, "--max-side", help="Longest side of each stored image, in pixels."),
    quality: int = typer.Option(92, "--quality", help="JPEG quality of each stored image."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
) -> None:
    """Shrink the images a training run reads into one portable file, to train where the datasets are not."""
    import os

    from covidxray.console import console, progress
    from covidxray.data.dataset import split_part
    from covidxray.data.pack import write_pack
    from covidxray.hashing import sha256_file

    chosen = parts or ["train", "val"]
    paths: set[str] = set()
    for split in splits:
        table = read_table(split)
        for part in chosen:
            paths.update(split_part(table, part, split)["path"])
    note = {"splits": {str(split): sha256_file(split) for split in splits}, "parts": chosen}
    with progress() as bar:
        task = bar.add_task("packing images", total=len(paths))
        summary = write_pack(paths, out, max_side, quality, workers or os.cpu_count() or 1, note,
                             progress=lambda: bar.advance(task))
    for reason in list(summary.unreadable.values())[:5]:
        console.print(f"[yellow]skipped[/] {reason}", highlight=False)
    console.print(f"packed {summary.images} images ({len(summary.unreadable)} unreadable skipped) into {summary.path}: "
                  f"{summary.megabytes:.1f} MB", highlight=False)

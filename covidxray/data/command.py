"""`covidxray data ...`: the data steps as commands that only ever read the source.

Each command parses its options, calls the step (covidxray.data: prepare, split_manifest, pack_splits
and the step modules) and prints what it wrote and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

#: The `covidxray data` group, mounted by covidxray.cli.
app = typer.Typer(name="data", help="Build, check, chart, deduplicate and split datasets.", no_args_is_help=True,
                  pretty_exceptions_enable=False)

ROOTS = typer.Argument(..., help="Dataset folders, or your CSV with path,label[,patient_id] columns (paths absolute or relative to the CSV), or a folder holding several.")
SIIM_UNCERTAIN = typer.Option(False, "--siim-uncertain", help="Keep SIIM's Indeterminate and Atypical grades, as covid (default: excluded).")


def read_table(path: Path):
    """covidxray.data.schema.read_table, imported when needed (pandas is slow to import)."""
    from covidxray.data.schema import read_table as read

    return read(path)


def write_table(frame, path: Path, what: str, roots=(), inputs=()) -> None:
    """covidxray.data.tables.write_table, then the line saying what was written."""
    from covidxray.console import console
    from covidxray.data.tables import write_table as write

    rows = write(frame, path, what, roots, inputs)
    console.print(f"wrote {what}: {path} ({rows} rows)")


def print_tables(tables) -> None:
    """Each (title, frame) of a step's counts, as a table on stdout."""
    from covidxray.console import print_frame

    for title, frame in tables:
        print_frame(frame, title)


def print_skipped(skipped) -> None:
    from covidxray.console import console

    for folder, reason in skipped:
        console.print(f"[yellow]skipped[/] {folder}: {reason}", highlight=False)


@app.command("manifest")
def manifest_command(
    roots: list[Path] = ROOTS,
    out: Path = typer.Option(Path("manifest.csv"), "--out", "-o", help="Manifest CSV to write."),
    layout: Optional[list[str]] = typer.Option(None, "--layout", help="Layout of each ROOT, in order (default: detected). Known: covid-chestxray-dataset, siim-covid19-detection, darkcovidnet, covid19-radiography-database, folder, csv."),
    siim_uncertain: bool = SIIM_UNCERTAIN,
    allow_absolute_paths: bool = typer.Option(False, "--allow-absolute-paths", hidden=True, help="No longer needed: a CSV ROOT's paths (absolute, or relative to the CSV) are always read."),
) -> None:
    """Read each dataset in its native layout into one manifest: one row per image, with labels.

    A CSV ROOT (path,label[,patient_id]) is yours: its paths may be absolute or relative to the CSV's folder.
    A public collection's metadata may not name files outside the collection's folder (such rows are excluded).
    """
    from covidxray.data.manifest import count_tables, read_datasets
    from covidxray.data.tables import guard_outputs

    guard_outputs(None, list(roots), (out, "manifest"))
    manifest, skipped = read_datasets(roots, layout, siim_uncertain)
    print_skipped(skipped)
    write_table(manifest, out, "manifest", roots, roots)
    print_tables(count_tables(manifest))


@app.command("charts")
def charts_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV."),
    out: Path = typer.Option(Path("charts"), "--out", "-o", help="Folder for the PNG charts and charts.html."),
) -> None:
    """Chart the metadata: finding, label, age, sex, survival, view, modality, country, source."""
    from covidxray.console import console
    from covidxray.data.charts import make_charts
    from covidxray.data.tables import guard_outputs

    table = read_table(manifest)
    guard_outputs(table, manifest, (out, "charts"))
    page = make_charts(table, out)
    console.print(f"wrote charts: {page}")


@app.command("verify")
def verify_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV."),
    report: Path = typer.Option(Path("verify-report.csv"), "--report", help="CSV of path, status, reason."),
    out: Path = typer.Option(Path("verified.csv"), "--out", "-o", help="Manifest with status, reason, width, height."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
) -> None:
    """Open every listed image; report missing and unreadable files with the reason."""
    import pandas as pd
    from covidxray.console import print_frame
    from covidxray.data.tables import guard_outputs
    from covidxray.data.verify import verify_manifest

    listed = read_table(manifest)
    guard_outputs(listed, manifest, (report, "verification report"), (out, "verified manifest"))
    table, verified = verify_manifest(listed, workers)
    write_table(table, report, "verification report", inputs=[manifest])
    write_table(verified, out, "verified manifest", inputs=[manifest])
    print_frame(pd.crosstab(verified["source"], verified["status"]), "images per source and status")
    bad = table[table["status"] != "ok"]
    if len(bad):
        print_frame(bad["reason"].value_counts().to_frame("images"), "problems found")


@app.command("clean")
def clean_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV (verified, or it is verified now)."),
    out: Path = typer.Option(Path("clean.csv"), "--out", "-o", help="Manifest of the rows that can serve."),
    keep_lateral: bool = typer.Option(False, "--keep-lateral", help="Keep lateral and unknown views."),
) -> None:
    """Drop rows with no usable label, not X-ray, not frontal, or a missing/unreadable image."""
    from covidxray.console import print_frame
    from covidxray.data.clean import check_kept, clean_manifest
    from covidxray.data.tables import guard_outputs
    from covidxray.data.verify import verify_manifest

    table = read_table(manifest)
    guard_outputs(table, manifest, (out, "clean manifest"))
    if "status" not in table:
        _, table = verify_manifest(table)
    kept, counts = clean_manifest(table, keep_lateral)
    print_frame(counts.to_frame("rows dropped"), f"{len(table)} rows read, {len(kept)} kept")
    check_kept(len(table), len(kept), counts, str(manifest))
    write_table(kept, out, "clean manifest", inputs=[manifest])


@app.command("select")
def select_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV."),
    finding: str = typer.Option(..., "--finding", help="Finding as written (COVID-19, Streptococcus, ...) or a label (covid, pneumonia, normal)."),
    view: Optional[str] = typer.Option(None, "--view", help="View (PA, AP, AP Supine, L) or 'frontal'."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to copy the images into (created; never overwritten)."),
) -> None:
    """Copy the images of one finding and view into a folder, with a manifest of the copies."""
    from covidxray.console import console
    from covidxray.data.select import select_images
    from covidxray.data.tables import guard_outputs

    table = read_table(manifest)
    guard_outputs(table, manifest, (out, "selection"))
    copied = select_images(table, finding, view, out)
    console.print(f"copied {len(copied)} images into {out}; list in {Path(out) / 'selected.csv'}")


@app.command("dedupe")
def dedupe_command(
    manifest: Path = typer.Argument(..., help="Manifest CSV."),
    out: Path = typer.Option(Path("deduped.csv"), "--out", "-o", help="Manifest with a dup_cluster column."),
    clusters: Optional[Path] = typer.Option(None, "--clusters", help="One row per cluster, with label conflicts (default: duplicate-clusters.csv beside --out)."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Every linked pair with its evidence (default: duplicate-pairs.csv beside --out)."),
    max_hamming: int = typer.Option(8, "--max-hamming", help="Most differing bits of the 64-bit perceptual hash."),
    min_correlation: float = typer.Option(0.96, "--min-correlation", help="Least correlation of 16x16 thumbnails."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
) -> None:
    """Find the same radiograph under other names and sizes; report clusters and label conflicts."""
    from covidxray.console import console, print_frame
    from covidxray.data.dedupe import DedupeSettings, cluster_summary, find_duplicates
    from covidxray.data.tables import guard_outputs

    settings = DedupeSettings(max_hamming=max_hamming, min_correlation=min_correlation)
    clusters = clusters or out.with_name("duplicate-clusters.csv")
    pairs = pairs or out.with_name("duplicate-pairs.csv")
    table = read_table(manifest)
    guard_outputs(table, manifest, (out, "manifest with duplicate clusters"), (clusters, "duplicate clusters"),
                  (pairs, "duplicate pairs"))
    deduped, pair_table = find_duplicates(table, settings, workers)
    summary = cluster_summary(deduped)
    write_table(deduped, out, "manifest with duplicate clusters", inputs=[manifest])
    write_table(summary, clusters, "duplicate clusters", inputs=[manifest])
    write_table(pair_table, pairs, "duplicate pairs", inputs=[manifest])
    if len(pair_table):
        across = pair_table.groupby(["source_a", "source_b"]).size().to_frame("pairs")
        print_frame(across, "duplicate pairs by sources")
    console.print(f"{len(summary)} clusters holding {int(summary['images'].sum()) if len(summary) else 0} images; "
                  f"{int(summary['label_conflict'].sum()) if len(summary) else 0} clusters with conflicting labels")


@app.command("split")
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
    from covidxray.data.pipeline import split_manifest
    from covidxray.data.split import SplitSettings, split_counts, split_gaps
    from covidxray.data.tables import guard_outputs

    table = read_table(manifest)
    guard_outputs(table, manifest, (out, "split"))
    settings = SplitSettings(train=1.0 - val - test, val=val, test=test, seed=seed)
    result = split_manifest(table, settings, holdout or (), dedupe)
    if result.found_duplicates:
        console.print("no dup_cluster column: duplicates were found first (run `covidxray data dedupe` to keep them)")
    if result.conflicts:
        console.print(f"{result.conflicts} copies conflict with a radiologist's grade: excluded, the grade kept")
    write_table(result.split, out, "split", inputs=[manifest])
    print_frame(split_counts(result.split), "images per split, source and label")
    for note in split_gaps(result.split):
        console.print(f"[yellow]split:[/] {note}", highlight=False)


@app.command("prepare")
def prepare_command(
    roots: list[Path] = ROOTS,
    out: Path = typer.Option(Path("prepared"), "--out", "-o", help="Folder for every table and chart."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split; the same seed gives the same split."),
    holdout: Optional[list[str]] = typer.Option(None, "--holdout", help="Also write split-loso.csv holding this source out entirely (repeatable)."),
    siim_uncertain: bool = SIIM_UNCERTAIN,
) -> None:
    """Run the whole data pipeline: manifest, charts, verify, clean, dedupe, split."""
    from covidxray.console import console
    from covidxray.data.pipeline import prepare

    result = prepare(roots, out, holdout, seed=seed, siim_uncertain=siim_uncertain)
    print_skipped(result.skipped)
    for table in result.written:
        console.print(f"wrote {table.what}: {table.path} ({table.rows} rows)")
    print_tables(result.tables)
    if not result.conflicts:
        console.print("no copy conflicts with a radiologist's grade")
    for note in result.notes:
        console.print(f"[yellow]split:[/] {note}", highlight=False)
    console.print(f"data pipeline done in {result.seconds:.1f} s; charts in {result.charts}")


@app.command("pack")
def pack_command(
    splits: list[Path] = typer.Argument(..., help="Split CSV(s); the images of their chosen parts go into one pack."),
    out: Path = typer.Option(..., "--out", "-o", help="Pack file to write (.npz)."),
    parts: Optional[list[str]] = typer.Option(None, "--part", help="Split parts to pack (repeatable; default: train and val)."),
    max_side: int = typer.Option(256, "--max-side", help="Longest side of each stored image, in pixels."),
    quality: int = typer.Option(92, "--quality", help="JPEG quality of each stored image."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes (default: all cores)."),
) -> None:
    """Shrink the images a training run reads into one portable file, to train where the datasets are not."""
    from covidxray.console import console
    from covidxray.data.pack import pack_splits

    summary = pack_splits(splits, out, parts or ["train", "val"], max_side, quality, workers)
    for reason in list(summary.unreadable.values())[:5]:
        console.print(f"[yellow]skipped[/] {reason}", highlight=False)
    console.print(f"packed {summary.images} images ({len(summary.unreadable)} unreadable skipped) into {summary.path}: "
                  f"{summary.megabytes:.1f} MB", highlight=False)

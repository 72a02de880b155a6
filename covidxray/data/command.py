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


def guard_outputs(table, source: Path | list[Path], *outputs: tuple[Path, str]) -> None:
    """Before anything is written: refuse each (output, what) inside the datasets that table lists
    (or the dataset folders given, source as a list) or over the table read (source as a path)."""
    from covidxray.paths.outputs import check_outputs, manifest_guard

    if isinstance(source, list):
        roots, inputs = list(source), list(source)
        if table is not None:
            roots += manifest_guard(table)[0]
    else:
        roots, inputs = manifest_guard(table, source)
    check_outputs(outputs, roots, inputs)


def write_table(frame: "pd.DataFrame", path: Path, what: str, roots=(), inputs=()) -> None:
    """Write a CSV; never inside a dataset (roots, and the folders of the images frame lists) nor over an input."""
    from covidxray.console import console
    from covidxray.paths.outputs import check_output, dataset_roots_of

    path = Path(path)
    if path.exists() and path.resolve().name == "metadata.csv":
        raise CovidxrayError(f"{path}: refusing to overwrite a dataset's metadata.csv")
    listed = dataset_roots_of(frame["path"]) if "path" in frame else []
    check_output(path, [*roots, *listed], inputs, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    console.print(f"wrote {what}: {path} ({len(frame)} rows)")


@data_app.command("manifest")
def manifest_command(
    roots: list[Path] = ROOTS,
    out: Path = typer.Option(Path("manifest.csv"), "--out", "-o", help="Manifest CSV to write."),
    layout: Optional[list[str]] = typer.Option(None, "--layout", help="Layout of each ROOT, in order (default: detected). Known: covid-chestxray-dataset, siim-covid19-detection, darkcovidnet, covid19-radiography-database, folder, csv."),
    siim_uncertain: bool = typer.Option(False, "--siim-uncertain", help="Keep SIIM's Indeterminate and Atypical grades, as covid (default: excluded)."),
    allow_absolute_paths: bool = typer.Option(False, "--allow-absolute-paths", help="A CSV ROOT may list images outside its own folder (absolute or ../ paths); otherwise they are excluded."),
) -> None:
    """Read each dataset in its native layout into one manifest: one row per image, with labels."""
    guard_outputs(None, list(roots), (out, "manifest"))
    manifest = read_manifest(roots, layout, siim_uncertain, allow_absolute_paths)
    write_table(manifest, out, "manifest", roots, roots)
    print_manifest_counts(manifest)


SIIM_UNCERTAIN = typer.Option(False, "--siim-uncertain", help="Keep SIIM's Indeterminate and Atypical grades, as covid (default: excluded).")


def read_manifest(roots: list[Path], layouts: Optional[list[str]], siim_uncertain: bool, allow_outside_paths: bool = False):
    """build_manifest, naming every sub-folder it passed over and why."""
    from covidxray.console import console
    from covidxray.data.manifest import build_manifest, scan_roots

    if not layouts:
        scan = scan_roots(roots)
        for folder, reason in scan.skipped:
            console.print(f"[yellow]skipped[/] {folder}: {reason}", highlight=False)
        roots = scan.datasets
    return build_manifest(roots, layouts, siim_uncertain, allow_outside_paths)


def print_manifest_counts(manifest) -> None:
    """Images per source and label, per graded finding where a source grades, and why rows have no label."""
    from covidxray.console import print_frame
    from covidxray.data.conflicts import GRADED_SOURCES
    from covidxray.data.manifest import label_counts

    print_frame(label_counts(manifest), "images per source and label (excluded = no usable label)")
    graded = manifest[manifest["source"].isin(GRADED_SOURCES)]
    if len(graded):
        print_frame(label_counts(graded, ["source", "finding"]), "graded sources: images per grade and label")
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

    table = read_table(manifest)
    guard_outputs(table, manifest, (out, "charts"))
    page = make_charts(table, out)
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

    listed = read_table(manifest)
    guard_outputs(listed, manifest, (report, "verification report"), (out, "verified manifest"))
    table, verified = verify_manifest(listed, workers)
    write_table(table, report, "verification report", inputs=[manifest])
    write_table(verified, out, "verified manifest", inputs=[manifest])
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
    from covidxray.data.clean import check_kept, clean_manifest
    from covidxray.data.verify import verify_manifest

    table = read_table(manifest)
    guard_outputs(table, manifest, (out, "clean manifest"))
    if "status" not in table:
        _, table = verify_manifest(table)
    kept, counts = clean_manifest(table, keep_lateral)
    print_frame(counts.to_frame("rows dropped"), f"{len(table)} rows read, {len(kept)} kept")
    check_kept(len(table), len(kept), counts, str(manifest))
    write_table(kept, out, "clean manifest", inputs=[manifest])


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

    table = read_table(manifest)
    guard_outputs(table, manifest, (out, "selection"))
    copied = select_images(table, finding, view, out)
    console.print(f"copied {len(copied)} images into {out}; list in {Path(out) / 'selected.csv'}")


@data_app.command("dedupe")
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
    guard_outputs(table, manifest, (out, "split"))
    if "dup_cluster" not in table and dedupe:
        console.print("no dup_cluster column: finding duplicates first (run `covidxray data dedupe` to keep them)")
        table, _ = find_duplicates(table)
    if "dup_cluster" in table:
        from covidxray.data.conflicts import prefer_graded_copies

        table, conflicts = prefer_graded_copies(table)
        if len(conflicts):
            console.print(f"{len(conflicts)} copies conflict with a radiologist's grade: excluded, the grade kept")
    settings = SplitSettings(train=1.0 - val - test, val=val, test=test, seed=seed)
    result = assign_splits(table, settings, tuple(holdout or ()))
    write_table(result, out, "split", inputs=[manifest])
    print_frame(split_counts(result), "images per split, source and label")


def settle_grade_conflicts(deduped, pairs, report: Path):
    """Apply covidxray.data.conflicts.prefer_graded_copies; print what crossed sources and what conflicted."""
    from covidxray.console import console, print_frame
    from covidxray.data.conflicts import prefer_graded_copies

    across = pairs[pairs["source_a"] != pairs["source_b"]]
    if len(across):
        counted = across.groupby(["source_a", "source_b"]).size().to_frame("pairs")
        print_frame(counted, "duplicate pairs across collections")
    settled, conflicts = prefer_graded_copies(deduped)
    if len(conflicts):
        write_table(conflicts, report, "grade conflicts")
        table = conflicts.groupby(["other_source", "other_label", "grade"]).size().to_frame("copies excluded")
        print_frame(table, "copies whose label conflicts with a radiologist's grade (the grade is kept)")
    else:
        console.print("no copy conflicts with a radiologist's grade")
    return settled


@data_app.command("prepare")
def prepare_command(
    roots: list[Path] = ROOTS,
    out: Path = typer.Option(Path("prepared"), "--out", "-o", help="Folder for every table and chart."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split; the same seed gives the same split."),
    holdout: Optional[list[str]] = typer.Option(None, "--holdout", help="Also write split-loso.csv holding this source out entirely (repeatable)."),
    siim_uncertain: bool = SIIM_UNCERTAIN,
) -> None:
    """Run the whole data pipeline: manifest, charts, verify, clean, dedupe, split."""
    from covidxray.console import console, print_frame
    from covidxray.data.charts import make_charts
    from covidxray.data.clean import check_kept, clean_manifest
    from covidxray.data.dedupe import cluster_summary, find_duplicates
    from covidxray.data.split import SplitSettings, assign_splits, split_counts
    from covidxray.data.verify import verify_manifest

    started = time.perf_counter()
    guard_outputs(None, list(roots), (out, "prepared folder"))
    manifest = read_manifest(roots, None, siim_uncertain)
    guard_outputs(manifest, list(roots), (out, "prepared folder"))
    out.mkdir(parents=True, exist_ok=True)
    write_table(manifest, out / "manifest.csv", "manifest")
    print_manifest_counts(manifest)
    make_charts(manifest, out / "charts")
    report, verified = verify_manifest(manifest)
    write_table(report, out / "verify-report.csv", "verification report")
    kept, dropped = clean_manifest(verified)
    print_frame(dropped.to_frame("rows dropped"), f"clean: {len(verified)} rows read, {len(kept)} kept")
    check_kept(len(verified), len(kept), dropped, ", ".join(map(str, roots)))
    write_table(kept, out / "clean.csv", "clean manifest")
    deduped, pairs = find_duplicates(kept)
    write_table(cluster_summary(deduped), out / "duplicate-clusters.csv", "duplicate clusters")
    write_table(pairs, out / "duplicate-pairs.csv", "duplicate pairs")
    deduped = settle_grade_conflicts(deduped, pairs, out / "grade-conflicts.csv")
    split = assign_splits(deduped, SplitSettings(seed=seed))
    write_table(split, out / "split.csv", "split")
    print_frame(split_counts(split), "images per split, source and label")
    if holdout:
        loso = assign_splits(deduped, SplitSettings(seed=seed), tuple(holdout))
        write_table(loso, out / "split-loso.csv", "leave-one-source-out split")
        print_frame(split_counts(loso), f"leave-one-source-out split ({', '.join(holdout)} external)")
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
    from covidxray.data.fingerprint import split_fingerprint
    from covidxray.hashing import sha256_file

    chosen = parts or ["train", "val"]
    paths: set[str] = set()
    for split in splits:
        table = read_table(split)
        guard_outputs(table, split, (out, "pack"))
        for part in chosen:
            paths.update(split_part(table, part, split)["path"])
    note = {"splits": {str(split): sha256_file(split) for split in splits}, "parts": chosen,
            "split_fingerprints": {str(split): split_fingerprint(split) for split in splits}}
    with progress() as bar:
        task = bar.add_task("packing images", total=len(paths))
        summary = write_pack(paths, out, max_side, quality, workers or os.cpu_count() or 1, note,
                             progress=lambda: bar.advance(task))
    for reason in list(summary.unreadable.values())[:5]:
        console.print(f"[yellow]skipped[/] {reason}", highlight=False)
    console.print(f"packed {summary.images} images ({len(summary.unreadable)} unreadable skipped) into {summary.path}: "
                  f"{summary.megabytes:.1f} MB", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the data group to the CLI app."""
    app.add_typer(data_app, name="data", help="Build, check, chart, deduplicate and split datasets.")

"""`covidxray evaluate`, `covidxray model-card` and `covidxray compare`: thin commands over the evaluation pipelines.

Each parses its options, calls covidxray.evaluation (evaluate, build_model_card, compare_reports) and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

#: The commands of this module, mounted at the top level of the CLI (covidxray.cli).
app = typer.Typer(pretty_exceptions_enable=False)


def default_report_folder(checkpoint: Path) -> Path:
    """reports/<folder>-<stem> of a checkpoint (runs/a/best.pt -> reports/a-best), so two runs' reports never
    overwrite each other; reports/ is ignored by git."""
    checkpoint = Path(checkpoint)
    folder = checkpoint.resolve().parent.name
    return Path("reports") / (f"{folder}-{checkpoint.stem}" if folder else checkpoint.stem)


@app.command("evaluate")
def evaluate_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) written by `covidxray train`."),
    split: Path = typer.Option(..., "--split", help="split.csv from `covidxray data split`, or any labelled manifest (with --part all)."),
    part: Optional[list[str]] = typer.Option(None, "--part", help="Part(s) to evaluate: test (default), val, external, all. Repeatable."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for report.html, summary.md, metrics.json (default: reports/<checkpoint's folder>-<checkpoint's stem>, e.g. reports/run1-best, under the reports/ folder that .gitignore leaves out)."),
    resamples: int = typer.Option(1000, "--resamples", help="Patient-bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (same seed, same numbers)."),
    audits: bool = typer.Option(True, "--audits/--no-audits", help="Run the shortcut audits and the Grad-CAM montage."),
) -> None:
    """Metrics with patient-bootstrap CIs, per source, calibration, shortcut audits; one HTML report."""
    from covidxray.console import console, print_frame
    from covidxray.evaluation.pipeline import evaluate
    from covidxray.evaluation.report import part_tables, yardstick_tables

    out = out or default_report_folder(checkpoint)
    result = evaluate(checkpoint, split, part or ["test"], out, audits=audits, resamples=resamples, seed=seed)
    for name, measured in result.parts.items():
        headline, sources = part_tables(measured)
        within, targets = yardstick_tables(measured)
        print_frame(within, f"{name}: within-hospital yardstick (decides)", index=False)
        if len(targets):
            print_frame(targets, f"{name}: shortcut figures against their targets", index=False)
        print_frame(headline, f"{name}: {measured.n_images} images, {measured.n_patients} patients (mixed sources)", index=False)
        print_frame(sources, f"{name}: per source", index=False)
    console.print(f"wrote {result.files['html']}, {result.files['summary']}, {result.files['metrics']}")


@app.command("model-card")
def model_card_command(
    internal: Path = typer.Option(..., "--internal", help="Report folder of the shipped model on the internal test part."),
    external: Optional[Path] = typer.Option(None, "--external", help="Report folder of the same recipe on a held-out source."),
    baseline: Optional[list[Path]] = typer.Option(None, "--baseline", help="Report folders of baselines (seed-cnn), repeatable."),
    script: Optional[Path] = typer.Option(None, "--script", help="The script that reproduces the model; its commands go into the card."),
    how: Optional[list[str]] = typer.Option(None, "--how", help="How the script was run, when not plainly (steps before it, its settings); repeatable."),
    out: Path = typer.Option(Path("MODEL_CARD.md"), "--out", "-o", help="Model card to write (Markdown)."),
    readme: Optional[Path] = typer.Option(None, "--readme", help="Also copy the card's yardstick into this README's marked block."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="The recipe's name, for a model trained before records named it."),
) -> None:
    """Write a model card whose every figure comes from the reports' metrics.json."""
    from covidxray.console import console
    from covidxray.evaluation.model_card import build_model_card

    written = build_model_card(internal, out, external, baseline or [], script, how or [], readme, recipe)
    console.print(f"wrote {written}")
    if readme:
        console.print(f"copied its yardstick into {readme}")


@app.command("compare")
def compare_command(
    reports: list[Path] = typer.Argument(..., help="Report folders written by `covidxray evaluate`."),
    out: Path = typer.Option(Path("comparison.md"), "--out", "-o", help="Markdown table to write."),
) -> None:
    """Side by side: within-hospital AUROCs, then mixed-source AUROC, sensitivity, specificity (with CIs), per part."""
    from covidxray.console import console, print_frame
    from covidxray.evaluation.compare import compare_reports

    frame = compare_reports(reports, out)
    print_frame(frame, "comparison (95% CIs from patient bootstrap)", index=False)
    console.print(f"wrote {out}")

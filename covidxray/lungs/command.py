"""`covidxray lungs train` and `covidxray severity fit`: build the bundled lung and severity models.

Both print their held-out figures (with n and patient-bootstrap CIs), the ones quoted in
docs/lungs-and-severity.md, and write a self-contained weights file. Two groups, lungs_app and
severity_app, mounted at the top level through this module's nameless `app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from covidxray import RESEARCH_NOTICE
from covidxray.errors import CovidxrayError
from covidxray.paths.outputs import check_release

#: `covidxray lungs ...`
lungs_app = typer.Typer(name="lungs", help="Lung segmentation: train the U-Net and report its figures on held-out patients.",
                        no_args_is_help=True, pretty_exceptions_enable=False)
#: `covidxray severity ...`
severity_app = typer.Typer(name="severity", help="COVID-19 severity scores (geographic extent 0-8, opacity 0-6): fit and cross-validate.",
                           no_args_is_help=True, pretty_exceptions_enable=False)
#: What covidxray.cli mounts: nameless, so its two groups sit at the top level (`covidxray lungs`, `covidxray severity`).
app = typer.Typer(pretty_exceptions_enable=False)
app.add_typer(lungs_app)
app.add_typer(severity_app)
RELEASE = typer.Option(False, "--release", help="Allow --out inside covidxray/weights, replacing the model the package ships.")


@lungs_app.command("train")
def lungs_train_command(
    data: Path = typer.Option(..., "--data", help="covid-chestxray-dataset folder (images/, metadata.csv, annotations/v7labs-lung-masks/)."),
    out: Path = typer.Option(Path("lungs-unet.pt"), "--out", help="Weights file to write (never the bundled one unless --release)."),
    epochs: int = typer.Option(40, "--epochs", help="Training epochs."),
    size: int = typer.Option(128, "--size", help="Side of the square network input in pixels."),
    held_out: float = typer.Option(0.2, "--held-out", help="Share of patients held out for the reported figures."),
    seed: int = typer.Option(0, "--seed", help="Seed for the patient split, initialisation and augmentation."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads."),
    release: bool = RELEASE,
) -> None:
    """Train the lung U-Net on hand masks of train patients; print Dice and HD95 on held-out patients."""
    import pandas as pd
    from covidxray.console import console, print_frame
    from covidxray.lungs.segmenter_training import train_segmenter

    trained = train_segmenter(data, out, epochs, size, held_out, seed, threads, release)
    console.print(f"{trained.train_images + trained.held_out_images} masked images ({len(trained.empty_masks)} empty masks "
                  f"set aside): train {trained.train_images} images of {trained.train_patients} patients, held out "
                  f"{trained.held_out_images} images of {trained.held_out_patients} patients")
    table = pd.DataFrame([{"metric": name, "value": f"{e.value:.3f}", "95% CI (patients)": f"[{e.ci_low:.3f}, {e.ci_high:.3f}]",
                           "images": e.n, "patients (held out)": trained.scored_patients} for name, e in trained.figures.items()])
    print_frame(table, f"lung segmentation on held-out patients (HD95 in pixels at stored size), {epochs} epochs at {size} px", index=False)
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    console.print(RESEARCH_NOTICE, style="italic")


@severity_app.command("fit")
def severity_fit_command(
    data: Path = typer.Option(..., "--data", help="covid-chestxray-dataset folder (images/, annotations/covid-severity-scores.csv)."),
    out: Path = typer.Option(Path("severity.npz"), "--out", help="Severity model file to write (.npz; never the bundled one unless --release)."),
    segmenter: Optional[Path] = typer.Option(None, "--segmenter", help="Lung-segmenter weights; default: the bundled ones."),
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="Also read this checkpoint's penultimate features; "
                                              "the model then serves only that classifier (others get the lungs-only model)."),
    folds: int = typer.Option(5, "--folds", help="Patient-grouped cross-validation folds."),
    seed: int = typer.Option(0, "--seed", help="Seed for folds and bootstrap."),
    release: bool = RELEASE,
) -> None:
    """Cross-validate severity regression by patient, print MAE / r / R² with CIs, then fit on all and save."""
    from covidxray.console import console, print_frame
    from covidxray.lungs.mask_pairs import check_collection
    from covidxray.lungs.severity_fit import ANCHOR_NOTE, fit_severity
    from covidxray.paths.outputs import check_output

    check_release(out, release, "severity model")
    check_collection(data, "annotations/covid-severity-scores.csv")
    check_output(out, [data], [p for p in (segmenter, classifier) if p], "severity model")
    if classifier is not None and not classifier.is_file():
        raise CovidxrayError(f"{classifier}: classifier checkpoint not found")
    result = fit_severity(data, out, segmenter, folds, seed, classifier)
    console.print(result.header)
    print_frame(result.table, "severity, patient-grouped cross-validation (95% CIs by patient bootstrap)", index=False)
    console.print(ANCHOR_NOTE)
    console.print(f"wrote {out}")
    console.print(RESEARCH_NOTICE, style="italic")

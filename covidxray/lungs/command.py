"""`covidxray lungs train` and `covidxray severity fit`: build the bundled lung and severity models.

Both print their held-out figures (with n and patient-bootstrap CIs), the ones quoted in
docs/lungs-and-severity.md, and write a self-contained weights file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from covidxray import RESEARCH_NOTICE
from covidxray.errors import CovidxrayError
from covidxray.paths.outputs import check_release

LUNGS_HELP = "Lung segmentation: train the U-Net and report its figures on held-out patients."
lungs_app = typer.Typer(help=LUNGS_HELP, no_args_is_help=True)
severity_app = typer.Typer(help="COVID-19 severity scores (geographic extent 0-8, opacity 0-6).", no_args_is_help=True)
RELEASE = typer.Option(False, "--release", help="Allow --out inside covidxray/weights, replacing the model the package ships.")


def check_collection(data: Path, needed: str) -> Path:
    """data as given, when it is a folder holding needed (relative to it); else one line saying what --data wants."""
    from covidxray.errors import DatasetError

    if not Path(data).is_dir():
        raise DatasetError(f"{data}: no such folder; --data wants the covid-chestxray-dataset folder "
                           f"(relative paths are taken from the current folder, {Path.cwd()})")
    if not (Path(data) / needed).exists():
        raise DatasetError(f"{data}: no {needed} here; --data wants the covid-chestxray-dataset folder")
    return Path(data)


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
    from covidxray.console import console, print_frame, progress
    from covidxray.lungs.segmenter import LungSegmenter, LungSettings
    from covidxray.lungs.segmenter_evaluation import score_segmenter
    from covidxray.lungs.mask_pairs import drop_empty_masks, find_masked_images, split_by_patient
    from covidxray.lungs.segmenter_training import LungTrainConfig, load_pairs, save_segmenter, train_unet

    import pandas as pd
    from covidxray.paths.outputs import check_output

    check_release(out, release, "lung weights")
    check_collection(data, "annotations/v7labs-lung-masks")
    check_output(out, [data], what="lung weights")
    pairs, empty = drop_empty_masks(find_masked_images(data))
    train_pairs, held_pairs = split_by_patient(pairs, held_out, seed)
    console.print(f"{len(pairs)} masked images ({len(empty)} empty masks set aside): train {len(train_pairs)} images of "
                  f"{len({p.patient_id for p in train_pairs})} patients, held out {len(held_pairs)} images of "
                  f"{len({p.patient_id for p in held_pairs})} patients")
    config = LungTrainConfig(settings=LungSettings(size=size), epochs=epochs, seed=seed, threads=threads)
    images, masks = load_pairs(train_pairs, size)
    with progress() as bar:
        task = bar.add_task("training", total=epochs)
        network, losses = train_unet(images, masks, config, lambda epoch, loss: bar.update(
            task, advance=1, description=f"training (loss {loss:.3f})"))
    record = {
        "data": str(data), "empty_masks": empty, "epochs": epochs, "seed": seed, "losses": [round(v, 5) for v in losses],
        "train_images": len(train_pairs), "train_patients": len({p.patient_id for p in train_pairs}),
        "held_out_patients": sorted({p.patient_id for p in held_pairs}),
        "held_out_images": [p.name for p in held_pairs],
    }
    save_segmenter(out, network, config.settings, record)
    scores = score_segmenter(LungSegmenter.load(out), held_pairs)
    summary = scores.summary(seed=seed)
    record["held_out_figures"] = {name: estimate.as_dict() for name, estimate in summary.items()}
    record["held_out_dice"] = {name: round(float(d), 4) for name, d in zip(scores.names, scores.dice)}
    save_segmenter(out, network, config.settings, record)
    patients = len(set(scores.patients))
    table = pd.DataFrame([{"metric": name, "value": f"{e.value:.3f}", "95% CI (patients)": f"[{e.ci_low:.3f}, {e.ci_high:.3f}]",
                           "images": e.n, "patients (held out)": patients} for name, e in summary.items()])
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
    from covidxray.paths.outputs import check_output
    from covidxray.lungs.severity_fit import ANCHOR_NOTE, fit_severity

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


def register(app: typer.Typer) -> None:
    """Add the `lungs` and `severity` command groups to the CLI app."""
    app.add_typer(lungs_app, name="lungs", help=LUNGS_HELP)
    app.add_typer(severity_app, name="severity", help="COVID-19 severity scores: fit and cross-validate.")

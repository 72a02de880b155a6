"""`covidxray train`: train a registered network on a split file into a run directory.

Options map one to one onto TrainConfig; every failure is a CovidxrayError printed as one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def guard_run_output(out: Path, split: Path, what: str, inputs: list[Path] = ()) -> None:
    """Refuse an output inside the split's datasets or over the split (or another input), before training."""
    from covidxray.data.schema import read_table
    from covidxray.paths.outputs import check_output, manifest_guard

    roots, listed = manifest_guard(read_table(split), split) if Path(split).is_file() else ([], [str(split)])
    check_output(out, roots, [*listed, *inputs], what)


def register(app: typer.Typer) -> None:
    """Add train and calibrate to the CLI app."""
    _register_calibrate(app)

    @app.command("train")
    def train_command(
        model: str = typer.Option(..., "--model", help="Registered network: seed-cnn, xray-cnn, densenet121, efficientnet-b0."),
        task: str = typer.Option("binary", "--task", help="binary (covid vs not-covid) or 3class (covid / pneumonia / normal)."),
        split: Path = typer.Option(..., "--split", help="Split CSV written by `covidxray data split`."),
        out: Path = typer.Option(..., "--out", help="Run directory: best.pt, last.pt, history.csv, curves.png."),
        epochs: int = typer.Option(10, "--epochs", help="Most epochs to train (early stopping may end sooner)."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Default: the model's recipe (seed-cnn: 6)."),
        lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate; default: the model's recipe."),
        seed: int = typer.Option(0, "--seed", help="Seed for initialisation, sampling and augmentation."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
        workers: int = typer.Option(0, "--workers", help="DataLoader and cache-decoding worker processes."),
        cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Decoded-image cache (default ~/.cache/covidxray)."),
        train_part: str = typer.Option("train", "--train-part", help="Value of the split column to train on."),
        val_part: str = typer.Option("val", "--val-part", help="Value of the split column to validate on."),
        max_images_per_part: Optional[int] = typer.Option(None, "--max-images-per-part", help="Random subset per part, for quick runs."),
        patience: int = typer.Option(5, "--patience", help="Stop after this many epochs without a better val AUROC."),
        sampler: str = typer.Option("shuffle", "--sampler", help="shuffle, class-balanced or source-balanced."),
        size: Optional[int] = typer.Option(None, "--size", help="Input side in pixels; default: the model's."),
        equalise: Optional[bool] = typer.Option(None, "--equalise/--no-equalise", help="Histogram equalisation; default: the model's."),
        crop_border: Optional[float] = typer.Option(None, "--crop-border", help="Fraction cut from each side; default: the model's."),
        augmentation: Optional[str] = typer.Option(None, "--augmentation", help="none, seed, radiograph, radiograph-strong or source-erasing (also stretches, re-compresses, blurs resolution, blanks an edge); default: the model's."),
        threads: Optional[int] = typer.Option(None, "--threads", help="torch threads per process; default: cores / local processes."),
        lung_crop: Optional[bool] = typer.Option(None, "--lung-crop/--no-lung-crop", help="Cut each image to the lungs found by the bundled segmenter; default: the model's."),
        hide_outside_lungs: Optional[bool] = typer.Option(None, "--hide-outside-lungs/--keep-outside-lungs", help="Fill everything outside the bundled segmenter's lung mask with the lungs' median, in training and in every later read of the model; default: the model's."),
        pack: Optional[Path] = typer.Option(None, "--pack", help="Read images from a pack (`covidxray data pack`) instead of the source files, e.g. on a GPU machine without the datasets."),
        width: Optional[int] = typer.Option(None, "--width", help="Base channel count of xray-cnn (default 24; 32 is 1.8x the compute)."),
        teacher: Optional[Path] = typer.Option(None, "--teacher", help="Distil from this trained checkpoint (same split file), e.g. a GPU-trained DenseNet-121."),
        distill_weight: float = typer.Option(0.5, "--distill-weight", help="Share of the loss given to matching the teacher, in (0, 1]."),
        distill_temperature: float = typer.Option(2.0, "--distill-temperature", help="Softening temperature of the distillation term."),
        source_adversary: float = typer.Option(0.0, "--source-adversary", help="Weight of a gradient-reversed head that predicts the source from the features (0: off), so the network drops hospital cues."),
    ) -> None:
        """Train a network; writes best.pt (self-contained checkpoint), last.pt, history.csv and curves.png."""
        from covidxray.console import console
        from covidxray.training.loop import TrainConfig, train

        guard_run_output(out, split, "run directory")
        result = train(TrainConfig(
            model=model, task=task, split=split, out=out, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
            resume=resume, workers=workers, cache_dir=cache_dir, train_part=train_part, val_part=val_part,
            max_images_per_part=max_images_per_part, patience=patience, sampler=sampler, size=size,
            equalise=equalise, crop_border=crop_border, augmentation=augmentation, threads=threads,
            lung_crop=lung_crop, hide_outside_lungs=hide_outside_lungs, pack=pack, width=width, teacher=teacher, distill_weight=distill_weight,
            distill_temperature=distill_temperature, source_adversary=source_adversary,
        ))
        import os

        if os.environ.get("RANK", "0") == "0":
            console.print(f"best val AUROC {result.best_val_auroc:.4f} at epoch {result.best_epoch}; "
                          f"checkpoint {result.best_path}", highlight=False)


def _register_calibrate(app: typer.Typer) -> None:
    """Add the calibrate command to the CLI app."""

    @app.command("calibrate")
    def calibrate_command(
        checkpoint: Path = typer.Argument(..., help="Checkpoint (.pt) written by `covidxray train`."),
        split: Path = typer.Option(..., "--split", help="Split CSV whose validation part the calibration is fitted on."),
        out: Path = typer.Option(..., "--out", "-o", help="Where to write the recalibrated copy (the input is kept)."),
        part: str = typer.Option("val", "--part", help="Validation part to fit on (test and external are refused)."),
    ) -> None:
        """Refit temperature, logit bias and threshold on validation images read from the original files."""
        from covidxray.console import console
        from covidxray.training.recalibrate import recalibrate

        guard_run_output(out, split, "recalibrated checkpoint", [checkpoint])
        result = recalibrate(checkpoint, split, out, part)
        console.print(f"fitted on {result.images} '{part}' images (AUROC {result.val_auroc:.4f}): temperature "
                      f"{result.temperature:.3f}, logit bias {result.bias:+.3f}, threshold {result.threshold:.4f}; "
                      f"wrote {result.path}", highlight=False)

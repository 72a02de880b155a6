"""`covidxray train`, `covidxray recipes` and `covidxray calibrate`: a named recipe trained into a run directory.

What is trained comes from a registered recipe (--recipe), changed by a recipe file (--config) and
--set; the options are the run's own settings. Every failure is a CovidxrayError printed as one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from covidxray.training.recipes import DEFAULT_RECIPE, list_recipes

__all__ = ["app", "guard_run_output"]

app = typer.Typer(pretty_exceptions_enable=False)


def guard_run_output(out: Path, split: Path, what: str, inputs: list[Path] = ()) -> None:
    """Refuse an output inside the split's datasets or over the split (or another input), before training.

    Args:
        out: the file or folder about to be written.
        split: the split CSV whose dataset folders must stay untouched.
        what: what out is, for the message ("run directory").
        inputs: other files out must not overwrite.
    """
    from covidxray.data.schema import read_table
    from covidxray.paths.outputs import check_output, manifest_guard

    roots, listed = manifest_guard(read_table(split), split) if Path(split).is_file() else ([], [str(split)])
    check_output(out, roots, [*listed, *inputs], what)


@app.command("train")
def train_command(
    split: Path = typer.Option(..., "--split", help="Split CSV from `covidxray data split`."),
    out: Path = typer.Option(..., "--out", help="Run folder: best.pt, last.pt, history.csv, curves.png."),
    recipe: Optional[str] = typer.Option(
        None, "--recipe", metavar="NAME",
        help=f"Recipe: {', '.join(list_recipes())} (`covidxray recipes`); default: {DEFAULT_RECIPE}, the bundled model's."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="TOML", help="Recipe file changing recipe fields."),
    settings: Optional[List[str]] = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="Change one recipe field, e.g. patience=8; wins over --config."),
    epochs: Optional[int] = typer.Option(
        None, "--epochs", help="Most epochs (default: the recipe's); stops sooner once the within-hospital "
                               "val AUROC has not improved for `patience` epochs."),
    seed: int = typer.Option(0, "--seed", help="Seed for initialisation, sampling and augmentation."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    teacher: Optional[Path] = typer.Option(None, "--teacher", metavar="CKPT",
                                           help="Distil from this checkpoint (same split)."),
    pack: Optional[Path] = typer.Option(None, "--pack", help="Read images from `covidxray data pack`'s file."),
    workers: int = typer.Option(0, "--workers", help="DataLoader and cache-decoding processes."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads; default: cores / processes."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Decoded-image cache (~/.cache/covidxray)."),
    max_images_per_part: Optional[int] = typer.Option(None, "--max-images-per-part", metavar="N",
                                                      help="Random subset per part, for quick runs."),
    model: Optional[str] = typer.Option(None, "--model", hidden=True, help="Removed: name a recipe with --recipe."),
) -> None:
    """Train a recipe; writes best.pt (self-contained checkpoint), last.pt, history.csv and curves.png."""
    import os

    from covidxray.console import console
    from covidxray.training.loop import TrainConfig, train
    from covidxray.training.recipes import RecipeError, resolve_recipe

    if model is not None:
        raise RecipeError(f"--model is gone from train: name a recipe (--recipe {model} trains that network's own "
                          f"recipe, --recipe {DEFAULT_RECIPE} the bundled model's) or set architecture with --set")
    chosen = resolve_recipe(recipe, config, settings or (), epochs=epochs)
    guard_run_output(out, split, "run directory")
    main_process = os.environ.get("RANK", "0") == "0"
    if main_process:
        changes = chosen.differences()
        changed = f", changed: {', '.join(f'{key}={value}' for key, value in changes.items())}" if changes else ""
        console.print(f"recipe `{chosen.name}`{changed}: {chosen.summary()}", highlight=False)
    result = train(TrainConfig(split, out, chosen, seed=seed, resume=resume, workers=workers, threads=threads,
                               cache_dir=cache_dir, pack=pack, teacher=teacher, max_images_per_part=max_images_per_part))
    if main_process:
        console.print(f"best {result.selection or 'validation score'} {result.best_val_auroc:.4f} at epoch "
                      f"{result.best_epoch}; checkpoint {result.best_path}", highlight=False)


@app.command("recipes", epilog="Example: [bold]covidxray recipes default --set epochs=20 > my-recipe.toml[/bold]")
def recipes_command(
    name: Optional[str] = typer.Argument(None, help="Print this recipe as a recipe file (TOML)."),
    config: Optional[Path] = typer.Option(None, "--config", metavar="TOML", help="Apply this recipe file first."),
    settings: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Then change one field."),
) -> None:
    """List the registered training recipes, or print one (with changes) as a recipe file to start from."""
    from covidxray.training.recipes import RECIPES, recipe_toml, resolve_recipe

    if name is None and config is None and not settings:
        for entry in list_recipes():
            print(f"{entry}: {RECIPES[entry].why}\n    {RECIPES[entry].summary()}")
        return
    print(recipe_toml(resolve_recipe(name, config, settings or ())), end="")


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

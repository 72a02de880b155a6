"""`covidxray validate` and `covidxray adapt`: a model measured on your own labelled films, and fitted to them honestly.

Heavy modules are imported inside the commands, so that the CLI starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(pretty_exceptions_enable=False)

SITE_HELP = ("Your labelled films: a CSV with columns path,label[,patient_id] (paths absolute or relative to the CSV's "
             "folder; label covid, not-covid, normal or pneumonia), or a folder with one sub-folder per class "
             "(covid/, normal/, not-covid/, ...).")


def _guarded_site(site_path: Path, out: Path, model: Optional[Path], what: str):
    """The site, read, once out is known to write neither into its image folders nor over an input."""
    from covidxray.errors import CovidxrayError
    from covidxray.paths.outputs import check_output, dataset_roots_of, resolved
    from covidxray.paths.weights import WEIGHTS_DIR
    from covidxray.site.sites import read_site

    site = read_site(site_path)
    roots = sorted(set(site.image_folders) | set(dataset_roots_of(site.films["path"])))
    check_output(out, roots, [*site.inputs, *([model] if model else [])], what, folder_kind="site's image folder")
    weights = WEIGHTS_DIR.resolve()
    if resolved(out) == weights or weights in resolved(out).parents:
        raise CovidxrayError(f"{out}: refusing to write the {what} into the bundled weights ({weights}), which hold the "
                             "models covidxray ships; choose another --out")
    return site


@app.command("validate", epilog="Example: [bold]covidxray validate mine.csv --out site-check[/bold]")
def validate_command(
    site: Path = typer.Argument(..., help=SITE_HELP),
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint (.pt) to check; default: the bundled model."),
    out: Path = typer.Option(Path("site-check"), "--out", "-o", help="Folder for report.html, site-check.json, films.csv, scored.csv."),
    sensitivity: Optional[list[float]] = typer.Option(None, "--sensitivity", help="Sensitivity whose threshold to show (repeatable; default 0.90 and 0.95)."),
    resamples: int = typer.Option(1000, "--resamples", help="Patient-bootstrap resamples for the 95% CIs (evaluate's default)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap (same seed, same numbers)."),
    backend: str = typer.Option("auto", "--backend", help="auto (the fresh ONNX export, as predict), torch or onnx."),
    gate_warnings: bool = typer.Option(True, "--gate-warnings/--no-gate-warnings", help="As predict: count the gate's warnings."),
) -> None:
    """How good is the model on your films: AUROC, sensitivity, specificity, calibration, each with n and a 95% CI; the
    gate's refusals; the thresholds for a wanted sensitivity; a verdict in plain words; one HTML report."""
    from covidxray.console import console, print_rows
    from covidxray.evaluation.report import metric_name
    from covidxray.site.report_html import cell
    from covidxray.site.validate import DEFAULT_SENSITIVITIES, check_site, write_check

    chosen = _guarded_site(site, out, model, "site check")
    check = check_site(chosen, model, tuple(sensitivity or DEFAULT_SENSITIVITIES), resamples, seed, backend, gate_warnings)
    written = write_check(check, out, str(model) if model else str(check.screened.model["path"]))
    rows = [[metric_name(k), cell(check.metrics[k])] for k in ("roc_auc", "sensitivity", "specificity") if k in check.metrics]
    if check.calibration:
        rows.append(["ECE", cell(check.calibration["ece"])])
    rows += [[f"{p.name}: threshold, specificity", f"{p.threshold.value:.4f}, {cell(p.specificity)}"]
             for p in check.operating_points if p.target_sensitivity]
    print_rows(["figure", "value [95% CI] (n)"], rows, f"site check: {chosen.name}")
    for line in check.verdict:
        console.print(f"- {line}", highlight=False, soft_wrap=True)
    console.print(f"wrote {written['html']}, {written['json']}, {written['films']}, {written['scored']}", highlight=False, soft_wrap=True)


@app.command("adapt", epilog="Example: [bold]covidxray adapt mine.csv --sensitivity 0.90 --out site-model[/bold]")
def adapt_command(
    site: Path = typer.Argument(..., help=SITE_HELP),
    model: Optional[Path] = typer.Option(None, "--model", help="Checkpoint (.pt) to adapt; default: the bundled model."),
    out: Path = typer.Option(Path("site-model"), "--out", "-o", help="Folder for site-model.pt, MODEL_CARD.md, report.html, adapt.json."),
    sensitivity: float = typer.Option(0.90, "--sensitivity", help="The sensitivity the site's threshold is fitted to reach."),
    scheme: str = typer.Option("auto", "--scheme", help="split (fit on half the patients, report on the other), crossfit (k folds by patient), or auto (split from 400 patients up)."),
    folds: int = typer.Option(5, "--folds", help="Folds of the cross-fitting (by patient)."),
    resamples: int = typer.Option(1000, "--resamples", help="Patient-bootstrap resamples for the 95% CIs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and of the bootstrap."),
    backend: str = typer.Option("auto", "--backend", help="auto (the fresh ONNX export, as predict), torch or onnx."),
) -> None:
    """Fit the threshold (at the sensitivity you name) and the calibration on part of your films, report on films
    it never saw (by patient), and write a site model (same weights) with its own model card."""
    from covidxray.console import console, print_rows
    from covidxray.site.adapt import adapt_site, write_adaptation
    from covidxray.site.report_html import cell

    chosen = _guarded_site(site, out, model, "site model")
    adaptation = adapt_site(chosen, model, sensitivity, scheme, folds, resamples, seed, backend)
    written = write_adaptation(adaptation, out)
    held = adaptation.held_out
    rows = [[name, cell(held["bundled"][key]), cell(held["adapted"][key])]
            for name, key in (("ECE", "ece"), ("Brier", "brier"), ("sensitivity", "sensitivity"), ("specificity", "specificity"))]
    rows.append(["ECE adapted - bundled", "", cell(held["ece_difference"])])
    print_rows(["on films not fitted on", "as shipped", "adapted"], rows, f"site adaptation: {chosen.name} ({adaptation.scheme_text})")
    for line in adaptation.verdict:
        console.print(f"- {line}", highlight=False, soft_wrap=True)
    console.print(f"wrote {written['model']}, {written['card']}, {written['html']}, {written['json']}", highlight=False, soft_wrap=True)

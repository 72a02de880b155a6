"""`covidxray predict` and `covidxray export`: screening files from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from covidxray import RESEARCH_NOTICE


def register(app: typer.Typer) -> None:
    """Add predict and export to the CLI app."""

    @app.command("predict")
    def predict_command(
        paths: list[str] = typer.Argument(..., help="Image files (PNG, JPEG, DICOM), folders (searched recursively) or globs."),
        model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint; default: the model bundled with covidxray."),
        output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write results to .csv or .json."),
        heatmaps: Optional[Path] = typer.Option(None, "--heatmaps", help="Folder for Grad-CAM overlays (PNG), one per screened image."),
        gate: bool = typer.Option(True, "--gate/--no-gate", help="Flag inputs that are not frontal chest radiographs instead of scoring them."),
        backend: str = typer.Option("auto", "--backend", help="auto (ONNX Runtime when an exported model exists), torch or onnx."),
        batch_size: int = typer.Option(16, "--batch-size", help="Images per model call."),
    ) -> None:
        """Screen X-rays: calibrated probabilities, decision, input-gate flags; one row per input."""
        # Only light modules here: start-up time is most of the time for one image (no pandas, no torch).
        from covidxray.console import console, print_rows, progress
        from covidxray.predict import Predictor, expand_inputs

        files = expand_inputs(paths)
        if not files:
            raise typer.BadParameter("no input files found")
        predictor = Predictor(model, use_gate=gate, backend=backend)
        rows, failed = [], 0
        if heatmaps:
            heatmaps.mkdir(parents=True, exist_ok=True)
        with progress() as bar:
            task = bar.add_task("screening", total=len(files))
            for number, (result, item) in enumerate(predictor.screen_paths(files, batch_size)):
                rows.append(result.as_row(predictor.labels))
                failed += bool(result.error)
                if heatmaps and item.image is not None and result.p_covid is not None:
                    _write_heatmap(predictor, item, result, heatmaps / f"{number:04d}-{Path(item.name).stem}.png")
                bar.advance(task)
        columns = [c for c in SHOWN_COLUMNS if c in rows[0] and (not c.startswith("severity_") or any(r[c] is not None for r in rows))]
        shown = [[_cell(column, row.get(column)) for column in columns] for row in rows]
        print_rows(columns, shown, f"{predictor.name} ({predictor.backend}); threshold {predictor.info.threshold:.3f}")
        console.print(RESEARCH_NOTICE, style="italic")
        if output:
            output.parent.mkdir(parents=True, exist_ok=True)
            if output.suffix.lower() == ".json":
                output.write_text(json.dumps({"notice": RESEARCH_NOTICE, "model": predictor.name, "results": rows}, indent=2))
            else:
                _write_csv(rows, output)
            console.print(f"wrote {output}")
        if failed:
            console.print(f"{failed} of {len(files)} inputs could not be read")
            raise typer.Exit(1)

    @app.command("export")
    def export_command(
        model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint; default: the bundled model."),
        onnx: bool = typer.Option(False, "--onnx", help="Write an ONNX model and its .onnx.json sidecar (default: beside the checkpoint)."),
        lungs: bool = typer.Option(False, "--lungs", help="With --onnx: also export the lung U-Net (severity, outlines) beside its weights."),
        lungs_weights: Optional[Path] = typer.Option(None, "--lungs-weights", help="Lung U-Net weights for --lungs; default: the bundled ones."),
        slim: bool = typer.Option(False, "--slim", help="Write a checkpoint for shipping: no optimiser state, float16 storage."),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write (required with --slim)."),
    ) -> None:
        """Export to ONNX (predict then runs by ONNX Runtime, without torch), or slim a checkpoint for shipping.

        `covidxray export --onnx --lungs` regenerates the files shipped in covidxray/weights/.
        """
        from covidxray.console import console
        from covidxray.predict import DEFAULT_MODEL

        if onnx == slim:
            raise typer.BadParameter("choose one of --onnx or --slim")
        if (lungs or lungs_weights) and not onnx:
            raise typer.BadParameter("--lungs goes with --onnx")
        if slim:
            from covidxray.training.checkpoint import slim_checkpoint

            if out is None:
                raise typer.BadParameter("--slim needs --out")
            path = slim_checkpoint(model or DEFAULT_MODEL, out)
            console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
            return
        from covidxray.export import export_lungs_onnx, export_onnx

        path, difference = export_onnx(model or DEFAULT_MODEL, out)
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and its sidecar; "
                      f"max |p_torch - p_onnx| on the check images: {difference:.2e}")
        if lungs or lungs_weights:
            path, flipped = export_lungs_onnx(lungs_weights)
            console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and its sidecar; "
                          f"mask pixels differing from torch on the check images: {flipped}")


#: Columns of the table printed by predict, in order; each shown when any row has a value.
SHOWN_COLUMNS = ("path", "p_covid", "p_pneumonia", "p_normal", "prediction", "severity_extent", "severity_opacity",
                 "input_flags", "error")


def _cell(column: str, value) -> str:
    if value is None or value != value:
        return ""
    if column == "path":
        return Path(value).name
    if column.startswith("p_"):
        return f"{value:.3f}"
    return str(value)


def _write_csv(rows: list[dict], path: Path) -> None:
    """The rows as CSV, as pandas' to_csv writes them (None as an empty field)."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _write_heatmap(predictor, item, result, path: Path) -> None:
    from covidxray.explain.overlay import overlay

    target = result.prediction if result.prediction in predictor.labels else "covid"
    mask = predictor.lung_mask(item.image, result)
    overlay(item.image, predictor.heatmap(item.image, target), lung_mask=mask).save(path)

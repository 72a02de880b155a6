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
        gate: bool = typer.Option(True, "--gate/--no-gate", help="Refuse inputs that are not frontal chest radiographs instead of scoring them."),
        gate_warnings: bool = typer.Option(True, "--gate-warnings/--no-gate-warnings", help="Warn (input_status 'warning') on unusual but plausible radiographs; --no-gate-warnings keeps only refusals."),
        backend: str = typer.Option("auto", "--backend", help="auto (ONNX Runtime when an exported model exists), torch or onnx."),
        batch_size: int = typer.Option(16, "--batch-size", help="Images per model call."),
    ) -> None:
        """Screen X-rays: calibrated probabilities, decision, input-gate flags; one row per input."""
        # Only light modules here: start-up time is most of the time for one image (no pandas, no torch).
        from covidxray.console import console, print_rows, progress
        from covidxray.inference.predictor import Predictor, expand_inputs

        files = expand_inputs(paths)
        if not files:
            raise typer.BadParameter("no input files found")
        check_prediction_outputs(paths, files, output, heatmaps)
        predictor = Predictor(model, use_gate=gate, backend=backend, gate_warnings=gate_warnings)
        rows, failed = [], 0
        if heatmaps:
            heatmaps.mkdir(parents=True, exist_ok=True)
        with progress() as bar:
            task = bar.add_task("screening", total=len(files))
            for number, (result, item) in enumerate(predictor.screen_paths(files, batch_size)):
                if heatmaps and item.image is not None and result.p_covid is not None:
                    try:
                        _write_heatmap(predictor, item, result, heatmaps / heatmap_name(number, item.name))
                    except Exception as exc:  # noqa: BLE001 - the row says the map failed; the batch goes on
                        from covidxray.inference.predictor import unexpected

                        result.error = f"{item.name}: heat map not written ({unexpected(exc)})"
                rows.append(printable_row(result.as_row(predictor.labels)))
                failed += bool(result.error)
                bar.advance(task)
        columns = [c for c in SHOWN_COLUMNS if c in rows[0] and (not c.startswith("severity_") or any(r[c] is not None for r in rows))]
        shown = [[_cell(column, row.get(column)) for column in columns] for row in rows]
        print_rows(columns, shown, f"{predictor.name} ({predictor.backend}); threshold {predictor.info.threshold:.3f}")
        console.print(RESEARCH_NOTICE, style="italic")
        if output:
            if output.suffix.lower() == ".json":
                listed = [{**row, "input_flags": [f for f in (row.get("input_flags") or "").split(";") if f]} for row in rows]
                text = json.dumps({"notice": RESEARCH_NOTICE, "model": predictor.name, "results": listed}, indent=2)  # flags a list, as in the API
            else:
                text = _csv_text(rows)
            _write_whole(output, text)
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
        from covidxray.inference.predictor import DEFAULT_MODEL

        if onnx == slim:
            raise typer.BadParameter("choose one of --onnx or --slim")
        if (lungs or lungs_weights) and not onnx:
            raise typer.BadParameter("--lungs goes with --onnx")
        if slim:
            from covidxray.inference.checkpoint import slim_checkpoint

            if out is None:
                raise typer.BadParameter("--slim needs --out")
            path = slim_checkpoint(model or DEFAULT_MODEL, out)
            console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
            return
        from covidxray.inference.export import export_lungs_onnx, export_onnx

        path, difference = export_onnx(model or DEFAULT_MODEL, out)
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) and its sidecar; "
                      f"max |p_torch - p_onnx| on the check images: {difference:.2e}")
        if lungs or lungs_weights:
            path, flipped = export_lungs_onnx(lungs_weights)
            console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) and its sidecar; "
                          f"mask pixels differing from torch on the check images: {flipped}")


#: Columns of the table printed by predict, in order; each shown when any row has a value.
SHOWN_COLUMNS = ("path", "p_covid", "p_pneumonia", "p_normal", "prediction", "severity_extent", "severity_opacity",
                 "input_status", "input_flags", "error")


def _cell(column: str, value) -> str:
    if value is None or value != value:
        return ""
    if column == "path":
        return Path(value).name
    if column.startswith("p_"):
        return f"{value:.3f}"
    return str(value)


#: Output suffixes of --output; anything else is refused (a typo could name an input image).
OUTPUT_SUFFIXES = (".csv", ".json")
#: Longest stem, in UTF-8 bytes, kept in a heat map's file name (file systems allow 255 bytes a name).
HEATMAP_STEM_BYTES = 120


def check_prediction_outputs(arguments: list[str], files: list[str], output: Path | None, heatmaps: Path | None) -> None:
    """Before anything is written: --output is .csv or .json, no input and not inside a folder given
    as input; --heatmaps is not inside a folder given as input (the maps would be read as inputs
    next time) nor the folder of an input file (a map could land over an image named like one)."""
    from covidxray.errors import CovidxrayError
    from covidxray.paths.outputs import OutputRefused, check_output, resolved

    folders = [item for item in arguments if Path(item).is_dir()]
    if output is not None:
        if output.suffix.lower() not in OUTPUT_SUFFIXES:
            raise CovidxrayError(f"{output}: --output must end in .csv or .json")
        check_output(output, folders, files, "results", "input folder")
    if heatmaps is not None:
        check_output(heatmaps, folders, files, "heat maps", "input folder")
        target = resolved(heatmaps)
        for file in files:
            if resolved(Path(file).parent) == target:
                raise OutputRefused(f"{heatmaps}: refusing to write the heat maps inside the input folder of {file}; "
                                    "covidxray never writes into source data, choose a path outside it")


def printable(text: str) -> str:
    """text with any undecodable bytes of a file name (surrogate escapes) written as \\xNN, so it prints and saves as UTF-8."""
    if not isinstance(text, str):
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def printable_row(row: dict) -> dict:
    return {key: printable(value) for key, value in row.items()}


def heatmap_name(number: int, name: str) -> str:
    """NNNN-<stem>.png: the stem made printable, without control characters, and short enough for any file system."""
    import re

    stem = re.sub(r"[\x00-\x1f\x7f/\\]", "_", printable(Path(name).stem)) or "image"
    stem = stem.encode("utf-8")[:HEATMAP_STEM_BYTES].decode("utf-8", "ignore")
    return f"{number:04d}-{stem}.png"


def _csv_text(rows: list[dict]) -> str:
    """The rows as CSV, as pandas' to_csv writes them (None as an empty field)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _write_whole(path: Path, text: str) -> None:
    """Write text to path all at once (a temporary file beside it, then renamed): never a file cut off mid-way."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_heatmap(predictor, item, result, path: Path) -> None:
    """The Grad-CAM overlay with the lung outline, captioned: file name, probability and decision,
    a colour key saying what the map means, and the research notice."""
    from covidxray.explain.overlay import captioned, heatmap_key, overlay, result_lines

    target = result.prediction if result.prediction in predictor.labels else "covid"
    mask = predictor.lung_mask(item.image, result)
    picture = overlay(item.image, predictor.heatmap(item.image, target), lung_mask=mask)
    captioned(picture, printable(Path(item.name).name), result_lines(result, predictor.labels),
              heatmap_key(target, outline=mask is not None), RESEARCH_NOTICE).save(path)

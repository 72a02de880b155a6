"""`covidxray predict` and `covidxray export`: screening files from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

#: The commands of this module, mounted at the top level of the CLI (covidxray.cli).
app = typer.Typer(pretty_exceptions_enable=False)


@app.command("predict")
def predict_command(
    paths: Optional[list[str]] = typer.Argument(None, help="Image files (PNG, JPEG, DICOM), folders (searched recursively) or globs."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="Checkpoint; default: the model bundled with covidxray."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write every row to .csv, .jsonl or .parquet as screening goes, or to one .json document."),
    files_from: Optional[Path] = typer.Option(None, "--files-from", help="Text file listing one input per line ('-': standard input); with or instead of PATHS."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: screen only the K-th of N equal shares of the inputs (e.g. 2/4), one share per machine or job."),
    resume: bool = typer.Option(False, "--resume", help="Skip the inputs whose rows --output already holds and add the rest to it."),
    heatmaps: Optional[Path] = typer.Option(None, "--heatmaps", help="Folder for Grad-CAM overlays (PNG), one per screened image."),
    gate: bool = typer.Option(True, "--gate/--no-gate", help="Refuse inputs that are not frontal chest radiographs instead of scoring them."),
    gate_warnings: bool = typer.Option(True, "--gate-warnings/--no-gate-warnings", help="Warn (status 'warned') on unusual but plausible radiographs; --no-gate-warnings keeps only refusals."),
    backend: str = typer.Option("auto", "--backend", help="auto (ONNX Runtime when an exported model exists), torch or onnx."),
    batch_size: int = typer.Option(16, "--batch-size", help="Images per model call."),
    dask: Optional[str] = typer.Option(None, "--dask", help="Screen on a Dask cluster: a scheduler address (tcp://host:8786) or local:N for N local worker processes."),
) -> None:
    """Screen X-rays: calibrated probabilities, decision, input-gate flags; one row per input."""
    # Only light modules here: start-up time is most of the time for one image (no pandas, no torch).
    from covidxray.inference.screening_run import run_screening

    run_screening(paths or [], model=model, output=output, files_from=files_from, shard=shard, resume=resume,
                  heatmaps=heatmaps, gate=gate, gate_warnings=gate_warnings, backend=backend,
                  batch_size=batch_size, dask=dask)

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

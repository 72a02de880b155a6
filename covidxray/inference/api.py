"""The Python API's front door: load_model() gives a Predictor ready to screen (see Predictor.screen).

The CLI's predict and the web service are thin layers over the same Predictor.
"""

from __future__ import annotations

from pathlib import Path

from covidxray.inference.predictor import Predictor


def load_model(model: str | Path | None = None, *, backend: str = "auto", gate: bool = True,
               gate_warnings: bool = True, severity: bool = True) -> Predictor:
    """The bundled default model (or the checkpoint at `model`) with its input gate and severity.

    backend: "auto" (the fresh ONNX export when there is one, else PyTorch), "torch" or "onnx".
    gate=False scores every input without asking whether it is a frontal chest radiograph;
    gate_warnings=False keeps the gate's refusals and drops its warnings.
    """
    return Predictor(model, use_gate=gate, backend=backend, severity=severity, gate_warnings=gate_warnings)

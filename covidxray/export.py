"""Export a checkpoint's network to ONNX, for fast inference with ONNX Runtime.

The exported graph takes (N, 1, S, S) float images in [0, 1] already resized as the checkpoint's
Preprocessing says, and returns logits; the intensity check and calibration stay in Python,
so both backends answer alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from covidxray.errors import CovidxrayError


class _ExportableScreener(nn.Module):
    """The screener's door transforms (standardise, repeat channels) and network, without the
    data-dependent range check, which cannot be traced into a graph."""

    def __init__(self, screener: nn.Module) -> None:
        super().__init__()
        self.door = screener.door
        self.network = screener.network

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network(self.door.convert(batch))


def export_onnx(checkpoint: Path, out: Path | None = None, check_images: int = 4) -> tuple[Path, float]:
    """Write the ONNX model (default: beside the checkpoint) and return (path, max |Δp|) on random inputs."""
    from covidxray.training.calibration import probabilities
    from covidxray.training.checkpoint import load_checkpoint

    classifier = load_checkpoint(checkpoint)
    out = Path(out) if out else Path(checkpoint).with_suffix(".onnx")
    size = classifier.preprocessing.size
    model = _ExportableScreener(classifier.screener).eval()
    example = torch.rand(2, 1, size, size)
    torch.onnx.export(model, (example,), str(out), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    try:
        import onnxruntime
    except ImportError:
        return out, float("nan")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    batch = torch.rand(check_images, 1, size, size)
    with torch.no_grad():
        expected = probabilities(model(batch).numpy(), classifier.task, classifier.temperature)
    got = probabilities(session.run(None, {"image": batch.numpy()})[0], classifier.task, classifier.temperature)
    difference = float(np.abs(expected - got).max())
    if difference > 1e-4:
        raise CovidxrayError(f"{out}: ONNX probabilities differ from PyTorch by {difference:.2e} (> 1e-4)")
    return out, difference

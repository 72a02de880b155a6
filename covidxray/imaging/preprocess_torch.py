"""The model's door and the screener: the torch half of covidxray.imaging.preprocess.

Apart from covidxray.imaging.preprocess, so that the numpy preprocessing (all the ONNX fast path
needs) can be imported without torch.
"""

from __future__ import annotations

import torch

from covidxray.imaging.preprocess import IntensityRangeError, Preprocessing, check_intensity


class ModelInput(torch.nn.Module):
    """The model's door: checks [0, 1], then repeats channels and standardises as configured.

    Takes (N, 1, H, W) float in [0, 1]; returns (N, channels, H, W) in the network's convention.
    """

    def __init__(self, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.channels = preprocessing.channels
        self.per_image = preprocessing.intensity == "per-image"

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        check_intensity(batch, "model input")
        if batch.ndim != 4 or batch.shape[1] != 1:
            raise IntensityRangeError(f"model input must be (N, 1, H, W) greyscale, got shape {tuple(batch.shape)}")
        return self.convert(batch)

    def convert(self, batch: torch.Tensor) -> torch.Tensor:
        """The conversion alone, after the checks (traceable, for ONNX export)."""
        if self.per_image:
            mean = batch.mean(dim=(1, 2, 3), keepdim=True)
            std = batch.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
            batch = (batch - mean) / std
        if self.channels == 3:
            batch = batch.expand(-1, 3, -1, -1)
        return batch


class Screener(torch.nn.Module):
    """A network behind its door check: (N, 1, H, W) in [0, 1] -> logits (N, outputs)."""

    def __init__(self, network: torch.nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.door = ModelInput(preprocessing)
        self.network = network

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.network(self.door(batch))

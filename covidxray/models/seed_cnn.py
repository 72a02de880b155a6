"""The seed study's CNN, layer for layer: the baseline row of every comparison.

Keras original: 150x150 RGB in [0, 1], RMSprop, binary cross-entropy, batch 6, shear/zoom/flip.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SEED_INPUT_SIZE", "SeedCNN"]

SEED_INPUT_SIZE = 150


class SeedCNN(nn.Module):
    """Four 3x3 'valid' convolutions (32/64/128/256, ReLU), 2x2 max-pooling after the first two,
    flatten, dense 32 without activation, dropout 0.25, dense num_outputs (logits; the sigmoid
    is in the loss and in predict_proba).

    Takes (N, in_channels, size, size); returns (N, num_outputs) logits.
    """

    def __init__(self, num_outputs: int = 1, in_channels: int = 3, size: int = SEED_INPUT_SIZE) -> None:
        """Args:
            num_outputs: logits per image.
            in_channels: 3, as the seed's RGB input.
            size: input side, which sizes the dense layer (at least 18).
        """
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3), nn.ReLU(),
            nn.Conv2d(128, 256, 3), nn.ReLU(),
        )
        side = ((size - 2) // 2 - 2) // 2 - 4
        if side < 1:
            raise ValueError(f"seed-cnn needs inputs of at least 18 pixels, not {size}")
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(256 * side * side, 32), nn.Dropout(0.25), nn.Linear(32, num_outputs),
        )

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(batch))

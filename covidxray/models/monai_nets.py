"""Stronger networks trained from scratch on one-channel radiographs: MONAI's and a small CNN.

No pretrained weights are used (none can be downloaded here); all take (N, 1, H, W).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["XrayCNN", "densenet121", "efficientnet_b0"]


def densenet121(num_outputs: int = 1, in_channels: int = 1, dropout: float = 0.0) -> nn.Module:
    """MONAI DenseNet-121, 2-D, from scratch.

    Args:
        num_outputs: logits per image.
        in_channels: 1 for greyscale radiographs.
        dropout: dropout probability inside the dense blocks.

    Returns:
        The network, taking (N, in_channels, H, W).
    """
    from monai.networks.nets import DenseNet121

    return DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=num_outputs, dropout_prob=dropout)


def efficientnet_b0(num_outputs: int = 1, in_channels: int = 1) -> nn.Module:
    """MONAI EfficientNet-B0, 2-D, from scratch (dropout 0.2 before the classifier, as published)."""
    from monai.networks.nets import EfficientNetBN

    return EfficientNetBN(
        "efficientnet-b0", pretrained=False, progress=False, spatial_dims=2,
        in_channels=in_channels, num_classes=num_outputs,
    )


def _block(channels_in: int, channels_out: int, stride: int = 2) -> nn.Sequential:
    """conv 3x3 stride 2 + BN + ReLU, then conv 3x3 + BN + ReLU: halves the side. With stride 1 both
    convolutions are dilated by 2 instead, so the block sees as far but keeps the side (a finer final map)."""
    dilation = 1 if stride == 2 else 2
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True),
        nn.Conv2d(channels_out, channels_out, 3, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True),
    )


class XrayCNN(nn.Module):
    """A small, fast CNN for CPU training: five stride-2 stages (the last optionally dilated instead) with batch norm, global average
    pooling (so any input size works and no dense layer can memorise position), dropout, linear.

    Takes (N, in_channels, H, W); returns (N, num_outputs) logits. About 1.9 M parameters at width 24.
    """

    def __init__(self, num_outputs: int = 1, in_channels: int = 1, width: int = 24, dropout: float = 0.3,
                 last_stride: int = 2) -> None:
        """Args:
            num_outputs: logits per image.
            in_channels: 1 for greyscale radiographs.
            width: channels of the first stage; the five stages have 1, 2, 4, 8 and 12 times as many.
            dropout: before the linear layer.
            last_stride: 2, or 1 for a dilated last stage: a final feature map of side/16 (10 x 10 at
                160 px) instead of side/32, so class maps can tell the lungs from what lies between them.
        """
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, not {last_stride}")
        widths = [width, width * 2, width * 4, width * 8, width * 12]
        stages, previous = [], in_channels
        for number, channels in enumerate(widths):
            stages.append(_block(previous, channels, last_stride if number == len(widths) - 1 else 2))
            previous = channels
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(previous, num_outputs))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(batch))

"""Class activation maps of a network whose head is global average pooling and a linear layer (xray-cnn).

For such a head, Grad-CAM of a logit *is* that layer's weights applied to the last feature maps,
and the logit is the mean of its map plus the bias. So the same maps serve the ONNX export (heat
maps without torch) and training (a penalty on evidence that lies outside the lungs).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["cam_linear", "class_activation_maps"]


def cam_linear(network: nn.Module) -> nn.Linear | None:
    """The head's linear layer when the network is `features` then a head of global average pooling,
    flatten, dropout and linear; None for any other shape (no exact class map exists)."""
    features, head = getattr(network, "features", None), getattr(network, "head", None)
    if not isinstance(features, nn.Module) or not isinstance(head, nn.Sequential) or len(head) < 3:
        return None
    pool, flatten, *middle, linear = list(head)
    pooled = isinstance(pool, nn.AdaptiveAvgPool2d) and pool.output_size in (1, (1, 1))
    if pooled and isinstance(flatten, nn.Flatten) and isinstance(linear, nn.Linear) \
            and all(isinstance(module, nn.Dropout) for module in middle):
        return linear
    return None


def class_activation_maps(linear: nn.Linear, feature_maps: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) last feature maps -> (N, outputs, h, w): each output's weights applied at every position."""
    return torch.einsum("kc,nchw->nkhw", linear.weight, feature_maps)

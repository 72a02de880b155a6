"""A penalty on class evidence outside the lungs ("right for the right reasons", Ross et al. 2017).

The heat maps of a pooled-linear network are its class activation maps, and its logits are their
means: a network whose maps are bright under the heart or over the abdomen decides on what lies
there. This penalty is the share of each image's class-map mass (absolute, so evidence for and
against counts) that falls outside the bundled segmenter's lung mask, averaged over the batch, times
a weight. It needs the lung masks in the input's frame (covidxray.data.dataset.ImageCache.load_lungs)
and a network with `features` and a pooled-linear head (xray-cnn). Used for training only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from covidxray.errors import CovidxrayError
from covidxray.models.class_maps import cam_linear, class_activation_maps

__all__ = ["LungEvidencePenalty", "outside_share"]


def outside_share(class_maps: torch.Tensor, lung_masks: torch.Tensor) -> torch.Tensor:
    """(N, K, h, w) class maps and (N, 1, H, W) lung shares in [0, 1] -> (N, K): the share of each map's
    absolute mass outside the lungs (the masks averaged down to the maps' cells)."""
    inside = F.adaptive_avg_pool2d(lung_masks.float(), class_maps.shape[-2:])
    mass = class_maps.float().abs()
    return (mass * (1.0 - inside)).sum(dim=(2, 3)) / (mass.sum(dim=(2, 3)) + 1e-6)


class LungEvidencePenalty:
    """Keeps the last feature maps of each forward pass; `loss(lung_masks)` is weight x their class maps'
    mean share outside the lungs."""

    def __init__(self, network: nn.Module, weight: float) -> None:
        """Args:
            network: the network being trained (a hook on its `features` keeps their output).
            weight: multiplies the share (0..1) in the training loss.
        """
        self.linear = cam_linear(network)
        if self.linear is None:
            raise CovidxrayError("lung_evidence needs a network whose head is global average pooling and a linear "
                                 "layer (xray-cnn), so that its heat maps are its class activation maps")
        self.weight = float(weight)
        self._maps: torch.Tensor | None = None
        network.features.register_forward_hook(self._keep)

    def _keep(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        self._maps = output

    def share(self, lung_masks: torch.Tensor) -> torch.Tensor:
        """The mean share of class-map mass outside the lungs in the last forward pass (a 0-d tensor)."""
        if self._maps is None:
            raise RuntimeError("LungEvidencePenalty used before a forward pass of the network")
        return outside_share(class_activation_maps(self.linear, self._maps), lung_masks).mean()

    def loss(self, lung_masks: torch.Tensor) -> torch.Tensor:
        """weight x share: what is added to the classification loss."""
        return self.weight * self.share(lung_masks)

"""An adversarial source head: the network is trained so that its features cannot tell the hospital.

A small head predicts each training image's source from the network's penultimate features (and
the image's label, so that only source information beyond what the label explains is penalised);
its gradient reaches the network reversed (Ganin & Lempitsky's gradient reversal), so the network
is pushed to drop source cues. The head is used for training only and never saved in a checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SourceAdversary"]


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient multiplied by -1 backward."""

    @staticmethod
    def forward(ctx, features: torch.Tensor) -> torch.Tensor:
        return features.view_as(features)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        return -gradient


class SourceAdversary(nn.Module):
    """Source classifier on the input of the network's last linear layer, behind a gradient reversal.

    Call `loss(class_indices, source_indices)` after each forward pass of the network; it returns
    weight x cross-entropy of the source prediction (the reversal makes the network maximise it).
    """

    def __init__(self, network: nn.Module, sources: int, classes: int, weight: float) -> None:
        """Args:
            network: the network being trained; a hook on its last linear layer keeps that layer's input.
            sources: number of sources to tell apart.
            classes: the network's outputs (1 for binary; the label goes in one-hot with at least 2).
            weight: multiplies the source loss (and so the reversed gradient).
        """
        super().__init__()
        linears = [module for module in network.modules() if isinstance(module, nn.Linear)]
        if not linears:
            raise ValueError("the network has no linear layer whose input could feed a source head")
        self.classes, self.weight = max(classes, 2), float(weight)
        self.head = nn.Sequential(nn.Linear(linears[-1].in_features + self.classes, 64), nn.ReLU(), nn.Linear(64, sources))
        self._features: torch.Tensor | None = None
        linears[-1].register_forward_pre_hook(self._keep)

    def _keep(self, _module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self._features = inputs[0]

    def loss(self, class_indices: torch.Tensor, source_indices: torch.Tensor) -> torch.Tensor:
        """weight x cross-entropy of the source predicted from the last forward pass's features and labels."""
        if self._features is None:
            raise RuntimeError("SourceAdversary.loss called before a forward pass of the network")
        label = F.one_hot(class_indices.long(), self.classes).to(self._features.dtype)
        logits = self.head(torch.cat([_ReverseGradient.apply(self._features.float()), label.float()], dim=1))
        return self.weight * F.cross_entropy(logits, source_indices.long())

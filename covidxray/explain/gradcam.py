"""Grad-CAM heat maps for any registered network, through MONAI's implementation.

The target is the last convolution of the network, found by walking its modules, so a new
architecture needs no code here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from covidxray.imaging.preprocess import prepare_array


def last_conv_layer(model: nn.Module) -> str:
    """Dotted name of the Grad-CAM target: the stage that holds the model's last Conv2d, when that
    stage is a Sequential (conv, batch norm, ReLU), else the last Conv2d itself.

    The stage's output is what the classifier head reads. The raw convolution is not: a batch norm
    with a negative scale between them can turn every channel's weighted sum negative, and Grad-CAM's
    ReLU then gives an empty map even for an image read as covid.
    """
    modules = dict(model.named_modules())
    names = [name for name, module in modules.items() if isinstance(module, nn.Conv2d)]
    if not names:
        raise ValueError("the network has no Conv2d layer for Grad-CAM")
    parent = names[-1].rpartition(".")[0]
    return parent if parent and isinstance(modules[parent], nn.Sequential) else names[-1]


def gradcam_maps(classifier, images: list[np.ndarray], class_name: str = "covid") -> list[np.ndarray]:
    """One heat map in [0, 1] per image, at model-input resolution, for class_name.

    For single-logit (binary) models the covid logit is the target; a map 'for not_covid' is
    the map of the negated logit. The map is upsampled as MONAI's GradCAM does (bilinear), then
    scaled to [0, 1] with its brightest cell the strongest evidence (covidxray.explain.cam.scaled_heat,
    the same steps as the ONNX path's).
    """
    from covidxray.explain.cam import scaled_heat

    size = classifier.preprocessing.size
    return [scaled_heat(raw, size) for raw in gradcam_activation_maps(classifier, images, class_name)]


def gradcam_activation_maps(classifier, images: list[np.ndarray], class_name: str = "covid") -> list[np.ndarray]:
    """Grad-CAM before upsampling and scaling: ReLU of the gradient-weighted last feature maps, (h, w) each.

    What the ONNX export's class activation maps are checked against (covidxray.inference.export).
    """
    classifier.screener.eval()
    if classifier.task == "binary":
        target, sign = 0, (1.0 if class_name == "covid" else -1.0)
    else:
        target, sign = classifier.labels.index(class_name), 1.0
    cam = _cam_for(classifier, sign)
    maps = []
    for image in images:
        batch = torch.from_numpy(prepare_array(np.asarray(image, np.float32), classifier.preprocessing))[None, None]
        with torch.enable_grad():
            maps.append(cam.compute_map(batch, class_idx=target).detach().numpy()[0, 0])
    return maps


def _cam_for(classifier, sign: float):
    """One GradCAM per classifier and sign, built once: building it re-walks and re-hooks the network."""
    from monai.visualize import GradCAM

    cache = classifier.__dict__.setdefault("_gradcam", {})
    if sign not in cache:
        model = _Signed(classifier.screener, sign).eval()  # MONAI restores the wrapper's mode after each map
        # Only compute_map is used: MONAI's own __call__ post-processes with default_normalizer, which maps
        # (min, max) to (1, 0) and so flips the map (the brightest region would be the one that drove the
        # score least); gradcam_maps upsamples and scales it itself.
        cache[sign] = GradCAM(nn_module=model, target_layers=f"inner.{last_conv_layer(classifier.screener)}")
    return cache[sign]


class _Signed(nn.Module):
    """Multiplies the logits by a sign, so Grad-CAM of a single logit can explain either class."""

    def __init__(self, inner: nn.Module, sign: float) -> None:
        super().__init__()
        self.inner, self.sign = inner, sign

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.inner(batch) * self.sign

"""Heat maps without torch: for a network whose head is global average pooling and a linear layer
(xray-cnn), Grad-CAM of a logit *is* the class activation map, the last feature maps weighted by the
head's weights. The ONNX export outputs those maps (`class_maps`); this module turns them into the
same [0, 1] map Grad-CAM gives (ReLU, bilinear upsampling as torch does it, min-max), and places any
model-input map back on the radiograph it explains (a lung crop's map inside the lung box).
"""

from __future__ import annotations

import numpy as np

__all__ = ["class_evidence", "class_map", "on_image", "scaled_heat", "upsample_bilinear"]


def _axis_weights(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower index, upper index, upper weight) per target position: torch's bilinear, align_corners=False."""
    position = np.maximum((np.arange(target) + 0.5) * (source / target) - 0.5, 0.0)
    lower = np.minimum(np.floor(position).astype(int), source - 1)
    upper = np.minimum(lower + 1, source - 1)
    return lower, upper, (position - lower).astype(np.float32)


def upsample_bilinear(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 2-D map resized to shape as torch.nn.functional.interpolate(mode='bilinear', align_corners=False) does."""
    values = np.asarray(values, np.float32)
    top, bottom, row_weight = _axis_weights(values.shape[0], shape[0])
    left, right, column_weight = _axis_weights(values.shape[1], shape[1])
    rows = values[top] * (1 - row_weight[:, None]) + values[bottom] * row_weight[:, None]
    return rows[:, left] * (1 - column_weight[None]) + rows[:, right] * column_weight[None]


def class_evidence(class_maps: np.ndarray, task: str, labels: tuple[str, ...], class_name: str) -> np.ndarray:
    """The evidence for class_name in one image's class activation maps, (h, w), ReLU'd: what Grad-CAM
    weights and sums (the binary model's other class is its negated logit's)."""
    if task == "binary":
        raw = class_maps[0] * (1.0 if class_name == "covid" else -1.0)
    else:
        raw = class_maps[labels.index(class_name)]
    return np.maximum(raw, 0.0)


def scaled_heat(evidence: np.ndarray, size: int) -> np.ndarray:
    """Low-resolution evidence as a (size, size) heat map in [0, 1] (Grad-CAM's upsampling, then min-max);
    zeros when there is none."""
    heat = upsample_bilinear(evidence, (size, size))
    low, high = float(heat.min()), float(heat.max())
    return ((heat - low) / (high - low) if high > low else np.zeros_like(heat)).astype(np.float32)


def class_map(class_maps: np.ndarray, task: str, labels: tuple[str, ...], class_name: str, size: int) -> np.ndarray:
    """The [0, 1] heat map of class_name from one image's class activation maps, as Grad-CAM draws it.

    Args:
        class_maps: (outputs, h, w): each output's weights applied to the last feature maps.
        task: "binary" (one covid logit: another class's map is the negated logit's) or "3class".
        labels: the model's labels.
        class_name: the class the map explains.
        size: the model's input side, the map's side.

    Returns:
        (size, size) float32 in [0, 1]; zeros when nothing in the image drove that class up.
    """
    return scaled_heat(class_evidence(class_maps, task, labels, class_name), size)


def on_image(heat: np.ndarray, image_shape: tuple[int, int], preprocessing, lung_mask: np.ndarray | None = None) -> np.ndarray:
    """A model-input map placed on the radiograph it explains, at the radiograph's size.

    The model saw the region covidxray.imaging.preprocess.model_region gives (the lung box of a lung-crop
    model, the image less its border for crop_border); the map is stretched over that region only, and the
    rest of the radiograph gets 0 (the model never saw it).

    Args:
        heat: (S, S) map in [0, 1], model-input frame.
        image_shape: (rows, columns) of the radiograph as read.
        preprocessing: the checkpoint's Preprocessing.
        lung_mask: the radiograph's lung mask (any size); needed for a lung-crop model.

    Returns:
        (rows, columns) float32 in [0, 1].
    """
    from PIL import Image

    from covidxray.imaging.preprocess import model_region

    rows, columns = image_shape
    if lung_mask is not None and lung_mask.shape != (rows, columns):  # a mask found on another copy of the image
        lung_mask = np.asarray(Image.fromarray(np.asarray(lung_mask, np.uint8) * 255).resize(
            (columns, rows), Image.Resampling.NEAREST)) > 127
    region = model_region((rows, columns), preprocessing, lung_mask)
    height, width = len(range(rows)[region[0]]), len(range(columns)[region[1]])
    placed = np.zeros((rows, columns), np.float32)
    stretched = Image.fromarray(np.asarray(heat, np.float32)).resize((width, height), Image.Resampling.BILINEAR)
    placed[region] = np.clip(np.asarray(stretched, np.float32), 0.0, 1.0)
    return placed
